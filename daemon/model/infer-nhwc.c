/* infer-nhwc.c — the fast path of the forward pass, used when no layer output is captured
 * or hooked: spatial activations are kept channels-last (NHWC) so that
 *   - im2col copies whole runs of C channels per kernel tap (patch rows are contiguous),
 *   - one sgemm per conv layer, col[B*oh*ow, K] x W'[out, K]^T, writes NHWC directly,
 *   - max pooling vectorises over channels,
 * and converts to PyTorch's NCHW flatten order (c*H*W + h*W + w) only at flatten.
 * Conv weights are reordered once per call from [out, C, kh, kw] to [out, kh, kw, C].
 * The results equal the NCHW path's up to float summation order. */
#include "model-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

float *qlab_conv_weight_nhwc(const qlab_layer *l, const float *w)
{
    const int o = l->rows, c = l->in_c, kh = l->kh, kw = l->kw;
    float *r = malloc((size_t)l->rows * (size_t)l->cols * sizeof *r);
    if (!r)
        return NULL;
    for (int oc = 0; oc < o; oc++)
        for (int ci = 0; ci < c; ci++)
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++)
                    r[(((size_t)oc * kh + ki) * kw + kj) * c + ci] =
                        w[(((size_t)oc * c + ci) * kh + ki) * kw + kj];
    return r;
}

/* Copies in [n, h, w, c] into pad [n, h + 2p, w + 2p, c] with a zero border, so that
 * im2col needs no bounds checks. */
static void pad_nhwc(const float *restrict in, size_t n, int c, int h, int w, int p,
                     float *restrict out)
{
    const int ph = h + 2 * p, pw = w + 2 * p;
    const size_t prow = (size_t)pw * c, row = (size_t)w * c;
    for (size_t b = 0; b < n; b++) {
        float *o = out + b * (size_t)ph * prow;
        const float *src = in + b * (size_t)h * row;
        for (size_t t = 0; t < (size_t)p * prow; t++)
            o[t] = 0.0f;
        for (int y = 0; y < h; y++) {
            float *restrict d = o + (size_t)(y + p) * prow;
            const float *restrict sr = src + (size_t)y * row;
            for (size_t t = 0; t < (size_t)p * c; t++)
                d[t] = 0.0f;
            for (size_t t = 0; t < row; t++)
                d[(size_t)p * c + t] = sr[t];
            for (size_t t = (size_t)p * c + row; t < prow; t++)
                d[t] = 0.0f;
        }
        float *tail = o + (size_t)(h + p) * prow;
        for (size_t t = 0; t < (size_t)p * prow; t++)
            tail[t] = 0.0f;
    }
}

/* col[(b, oy, ox), (ki, kj, ci)] from a padded NHWC input [n, ph, pw, c]: each kernel row
 * is kw*C contiguous floats of the input. */
static void im2col_nhwc(const float *restrict in, size_t n, int c, int ph, int pw, int kh, int kw,
                        int stride, int oh, int ow, float *restrict col)
{
    const size_t krow = (size_t)kw * c, prow = (size_t)pw * c;
    float *restrict d = col;
    for (size_t b = 0; b < n; b++) {
        const float *src = in + b * (size_t)ph * prow;
        for (int oy = 0; oy < oh; oy++) {
            const float *srow = src + (size_t)oy * stride * prow;
            for (int ox = 0; ox < ow; ox++) {
                const float *s0 = srow + (size_t)ox * stride * c;
                for (int ki = 0; ki < kh; ki++, d += krow) {
                    const float *restrict sk = s0 + (size_t)ki * prow;
                    if (krow == 3) {
                        /* 3x3 kernels on one channel (a first conv layer) */
                        memcpy(d, sk, 3 * sizeof *d);
                    } else {
                        for (size_t t = 0; t < krow; t++)
                            d[t] = sk[t];
                    }
                }
            }
        }
    }
}

/* conv -> relu -> maxpool fused after the sgemm: relu(max_window(y) + bias) equals
 * max_window(relu(y + bias)) because the bias is constant per channel and relu is
 * monotonic (NaN propagates through both), so the full-resolution bias and relu passes
 * are skipped. y: conv output [n, oh, ow, c] without bias; out: [n, ph, pw, c]. */
static void bias_relu_pool_nhwc(const float *restrict y, size_t n, const qlab_layer *pool,
                                const float *restrict bias, float *restrict out)
{
    const int c = pool->in_c, h = pool->in_h, w = pool->in_w, k = pool->kernel;
    const int s = pool->stride, oh = pool->out_h, ow = pool->out_w;
    for (size_t b = 0; b < n; b++) {
        const float *src = y + b * (size_t)h * w * c;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                float *restrict d = out + ((b * oh + oy) * (size_t)ow + ox) * c;
                const float *restrict s0 = src + ((size_t)oy * s * w + (size_t)ox * s) * c;
                for (int ci = 0; ci < c; ci++)
                    d[ci] = s0[ci];
                for (int ki = 0; ki < k; ki++) {
                    for (int kj = 0; kj < k; kj++) {
                        const float *restrict p = s0 + ((size_t)ki * w + kj) * c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] = qlab_max_nan(d[ci], p[ci]);
                    }
                }
                for (int ci = 0; ci < c; ci++) {
                    const float v = d[ci] + (bias ? bias[ci] : 0.0f);
                    d[ci] = v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

/* col holds the im2col matrix followed by the padded input (qlab_nhwc_col_floats). */
static void conv_nhwc(const float *in, size_t n, const qlab_layer *l, const float *wr,
                      const float *bias, float *out, float *col)
{
    const size_t rows = n * (size_t)l->out_h * l->out_w;
    const int o = l->rows, k = l->cols, p = l->padding;
    const float *src = in;
    if (p > 0) {
        float *padded = col + rows * (size_t)k;
        pad_nhwc(in, n, l->in_c, l->in_h, l->in_w, p, padded);
        src = padded;
    }
    im2col_nhwc(src, n, l->in_c, l->in_h + 2 * p, l->in_w + 2 * p, l->kh, l->kw, l->stride,
                l->out_h, l->out_w, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, o, k, 1.0f, col, k, wr, k,
                0.0f, out, o);
    if (bias) {
        for (size_t r = 0; r < rows; r++) {
            float *restrict y = out + r * o;
            for (int j = 0; j < o; j++)
                y[j] += bias[j];
        }
    }
}

static void maxpool_nhwc(const float *restrict in, size_t n, const qlab_layer *l,
                         float *restrict out)
{
    const int c = l->in_c, h = l->in_h, w = l->in_w, k = l->kernel, s = l->stride;
    const int oh = l->out_h, ow = l->out_w;
    for (size_t b = 0; b < n; b++) {
        const float *src = in + b * (size_t)h * w * c;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                float *restrict d = out + ((b * oh + oy) * (size_t)ow + ox) * c;
                const float *restrict s0 = src + ((size_t)oy * s * w + (size_t)ox * s) * c;
                for (int ci = 0; ci < c; ci++)
                    d[ci] = s0[ci];
                for (int ki = 0; ki < k; ki++) {
                    for (int kj = 0; kj < k; kj++) {
                        const float *restrict p = s0 + ((size_t)ki * w + kj) * c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] = qlab_max_nan(d[ci], p[ci]);
                    }
                }
            }
        }
    }
}

/* NHWC -> NCHW per sample (also used for the input, the other way round, via swapped
 * strides). */
static void transpose_samples(const float *restrict in, size_t n, size_t rows, size_t cols,
                              float *restrict out)
{
    for (size_t b = 0; b < n; b++) {
        const float *s = in + b * rows * cols;
        float *d = out + b * rows * cols;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                d[c * rows + r] = s[r * cols + c];
    }
}

size_t qlab_nhwc_col_floats(const qlab_model *m, size_t mb)
{
    size_t need = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (l->kind != QLAB_LAYER_CONV2D)
            continue;
        size_t f = (size_t)l->cols * mb * l->out_h * l->out_w +
                   mb * (size_t)l->in_c * (l->in_h + 2 * l->padding) * (l->in_w + 2 * l->padding);
        if (f > need)
            need = f;
    }
    return need;
}

float *qlab_run_layers_nhwc(const qlab_model *m, const float *const *wr, const float *const *wt,
                            float *act0, float *act1, float *col, size_t n)
{
    float *cur = act0, *nxt = act1;
    int nhwc = 0;   /* cur holds a channels-last spatial activation */
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        const float *bias = l->bias ? l->bias->f32 : NULL;
        const size_t hw = (size_t)l->in_h * l->in_w;
        int swap = 1;
        switch (l->kind) {
        case QLAB_LAYER_CONV2D:
            if (!nhwc && l->in_c > 1) {
                transpose_samples(cur, n, (size_t)l->in_c, hw, nxt);
                float *t = cur;
                cur = nxt;
                nxt = t;
            }
            nhwc = 1;
            if (i + 2 < m->nlayers && m->layers[i + 1].kind == QLAB_LAYER_RELU &&
                m->layers[i + 2].kind == QLAB_LAYER_MAXPOOL2D) {
                conv_nhwc(cur, n, l, wr[i], NULL, nxt, col);
                bias_relu_pool_nhwc(nxt, n, &m->layers[i + 2], bias, cur);
                i += 2;
                swap = 0;
                break;
            }
            conv_nhwc(cur, n, l, wr[i], bias, nxt, col);
            break;
        case QLAB_LAYER_MAXPOOL2D:
            if (nhwc || l->in_c == 1)
                maxpool_nhwc(cur, n, l, nxt);
            else
                qlab_maxpool2d_f32(cur, n, l->in_c, l->in_h, l->in_w, l->kernel, l->stride, nxt);
            break;
        case QLAB_LAYER_FLATTEN:
            if (nhwc && l->in_c > 1 && hw > 1)
                transpose_samples(cur, n, hw, (size_t)l->in_c, nxt);
            else
                swap = 0;
            nhwc = 0;
            break;
        case QLAB_LAYER_LINEAR:
            /* build_layers admits linear only on flat or 1x1 inputs: layouts agree */
            qlab_linear_f32(cur, n, l->cols, wt[i], bias, l->rows, nxt);
            nhwc = 0;
            break;
        default:
            qlab_relu_f32(cur, n * l->in_size);
            swap = 0;
            break;
        }
        if (swap) {
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
    }
    return cur;
}
