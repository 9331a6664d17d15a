/* infer-nhwc.c — the fast path of the forward pass, used when no layer output is captured
 * or hooked: spatial activations are kept channels-last (NHWC), and converted to PyTorch's
 * NCHW flatten order (c*H*W + h*W + w) only at flatten.
 *
 * With a direct convolution kernel (conv-direct.c, AVX2 or AVX-512), the leading run of
 * conv2d / relu / maxpool2d layers goes sample by sample: each sample's activations (the
 * shipped CNN's largest is 28 x 28 x 16 floats, 50 KiB) stay in the core's cache from one
 * layer to the next, and conv -> relu -> maxpool is one pass. The layers from the first
 * flatten or linear on run over the whole mini-batch, linear through OpenBLAS sgemm.
 *
 * Without one (QLAB_CPU=scalar, or a CPU without AVX2) every layer runs over the
 * mini-batch: im2col copies whole runs of C channels per kernel tap, one sgemm per conv
 * layer, col[B*oh*ow, K] x W'[out, K]^T, writes NHWC directly, and pooling vectorises over
 * channels. Conv weights are reordered once per call from [out, C, kh, kw] to
 * [out, kh, kw, C] (BLAS) or packed into a qlab_conv_plan (direct).
 *
 * Either way the results equal the NCHW path's up to float summation order. */
#include "model-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

static float *conv_weight_nhwc(const qlab_layer *l, const float *w)
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
 * im2col and the direct kernels need no bounds checks. */
void qlab_pad_nhwc(const float *restrict in, size_t n, int c, int h, int w, int p,
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

/* conv -> relu -> maxpool after the sgemm: relu(max_window(y) + bias) equals
 * max_window(relu(y + bias)) because the bias is constant per channel and relu is
 * monotonic (NaN propagates through both), so bias and relu run on the pooled output,
 * a quarter of the size. y: conv output [n, oh, ow, c] without bias; out: [n, ph, pw, c]. */
static void bias_relu_pool_nhwc(const float *restrict y, size_t n, const qlab_layer *pool,
                                const float *restrict bias, float *restrict out)
{
    maxpool_nhwc(y, n, pool, out);
    const size_t c = (size_t)pool->in_c, pix = n * (size_t)pool->out_h * pool->out_w;
    for (size_t p = 0; p < pix; p++) {
        float *restrict d = out + p * c;
        for (size_t ci = 0; ci < c; ci++) {
            const float v = d[ci] + (bias ? bias[ci] : 0.0f);
            d[ci] = v < 0.0f ? 0.0f : v;
        }
    }
}

/* col holds the im2col matrix followed by the padded input (col_floats). */
static void conv_nhwc(const float *in, size_t n, const qlab_layer *l, const float *wr,
                      const float *bias, float *out, float *col)
{
    const size_t rows = n * (size_t)l->out_h * l->out_w;
    const int o = l->rows, k = l->cols, p = l->padding;
    const float *src = in;
    if (p > 0) {
        float *padded = col + rows * (size_t)k;
        qlab_pad_nhwc(in, n, l->in_c, l->in_h, l->in_w, p, padded);
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

static size_t col_floats(const qlab_model *m, size_t mb)
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

void qlab_nhwc_clear(qlab_nhwc *f)
{
    if (f->wr)
        for (size_t i = 0; i < f->m->nlayers; i++)
            free(f->wr[i]);
    if (f->wperm)
        for (size_t i = 0; i < f->m->nlayers; i++)
            free(f->wperm[i]);
    free(f->wperm);
    f->wperm = NULL;
    if (f->plan)
        for (size_t i = 0; i < f->m->nlayers; i++)
            qlab_conv_plan_clear(&f->plan[i]);
    free(f->wr);
    free(f->plan);
    free(f->wt);
    f->wr = NULL;
    f->plan = NULL;
    f->wt = NULL;
}

static int is_spatial(qlab_layer_kind k)
{
    return k == QLAB_LAYER_CONV2D || k == QLAB_LAYER_RELU || k == QLAB_LAYER_MAXPOOL2D;
}

/* Plans for the per-sample segment; sizes its scratch: two ping-pong activations, the
 * padded input and the kernel's conv output (when it pools or pads channels). */
static int prepare_direct(qlab_nhwc *f)
{
    const qlab_model *m = f->m;
    f->plan = calloc(m->nlayers, sizeof *f->plan);
    if (!f->plan)
        return -ENOMEM;
    size_t seg = 0;
    while (seg < m->nlayers && is_spatial(m->layers[seg].kind))
        seg++;
    size_t pad = 0, tmp = 0;
    for (size_t i = 0; i < seg; i++) {
        const qlab_layer *l = &m->layers[i];
        if (l->kind != QLAB_LAYER_CONV2D)
            continue;
        const int relu = i + 1 < seg && m->layers[i + 1].kind == QLAB_LAYER_RELU;
        const size_t pi = i + 1 + (size_t)relu;
        const qlab_layer *pool =
            pi < seg && m->layers[pi].kind == QLAB_LAYER_MAXPOOL2D ? &m->layers[pi] : NULL;
        qlab_conv_plan *p = &f->plan[i];
        int r = qlab_conv_plan_init(p, l, f->wt[i], l->bias ? l->bias->f32 : NULL, relu, pool);
        if (r < 0)
            return r;
        if (qlab_conv_plan_pad_floats(p) > pad)
            pad = qlab_conv_plan_pad_floats(p);
        if (qlab_conv_plan_tmp_floats(p) > tmp)
            tmp = qlab_conv_plan_tmp_floats(p);
    }
    f->seg_end = seg;
    f->pad_floats = pad;
    f->sample_floats = 2 * m->max_act + pad + tmp;
    return 0;
}

/* Follows the walk's layout (qlab_run_layers_nhwc): where a flatten would transpose an
 * NHWC activation into PyTorch's c*H*W + h*W + w order for the linear layer after it,
 * that layer's columns are permuted once instead, from c*HW + p to p*C + c. */
static int prepare_flatten(qlab_nhwc *f)
{
    const qlab_model *m = f->m;
    f->wperm = calloc(m->nlayers, sizeof *f->wperm);
    if (!f->wperm)
        return -ENOMEM;
    int nhwc = f->conv && f->seg_end > 0;
    for (size_t i = f->conv ? f->seg_end : 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        const size_t hw = (size_t)l->in_h * l->in_w, c = (size_t)l->in_c;
        if (l->kind == QLAB_LAYER_CONV2D) {
            nhwc = 1;
        } else if (l->kind == QLAB_LAYER_FLATTEN || l->kind == QLAB_LAYER_LINEAR) {
            if (l->kind == QLAB_LAYER_FLATTEN && nhwc && c > 1 && hw > 1 &&
                i + 1 < m->nlayers && m->layers[i + 1].kind == QLAB_LAYER_LINEAR) {
                const qlab_layer *lin = &m->layers[i + 1];
                const size_t rows = (size_t)lin->rows, cols = (size_t)lin->cols;
                const float *w = f->wt[i + 1];
                float *d = malloc(rows * cols * sizeof *d);
                if (!d)
                    return -ENOMEM;
                for (size_t o = 0; o < rows; o++)
                    for (size_t ch = 0; ch < c; ch++)
                        for (size_t p = 0; p < hw; p++)
                            d[o * cols + p * c + ch] = w[o * cols + ch * hw + p];
                f->wperm[i + 1] = d;
            }
            nhwc = 0;
        }
    }
    return 0;
}

int qlab_nhwc_prepare(qlab_nhwc *f, const qlab_model *m, const float *const *weights)
{
    memset(f, 0, sizeof *f);
    f->m = m;
    f->wt = calloc(m->nlayers, sizeof *f->wt);
    if (!f->wt)
        return -ENOMEM;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (l->weight)
            f->wt[i] = weights && weights[i] ? weights[i] : l->weight->f32;
    }
    f->conv = qlab_conv_kernel(qlab_conv_level_current());
    int r;
    if (f->conv) {
        r = prepare_direct(f);
    } else {
        r = 0;
        f->wr = calloc(m->nlayers, sizeof *f->wr);
        if (!f->wr)
            r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < m->nlayers; i++) {
            const qlab_layer *l = &m->layers[i];
            if (l->kind == QLAB_LAYER_CONV2D && !(f->wr[i] = conv_weight_nhwc(l, f->wt[i])))
                r = -ENOMEM;
        }
    }
    if (r == 0)
        r = prepare_flatten(f);
    if (r < 0)
        qlab_nhwc_clear(f);
    return r;
}

size_t qlab_nhwc_scratch_floats(const qlab_nhwc *f, size_t mb)
{
    return f->conv ? f->sample_floats : col_floats(f->m, mb);
}

/* Layers [0, seg_end) on one NCHW sample; the NHWC result goes to dst. */
static void run_sample(const qlab_nhwc *f, const float *in, float *dst, float *scratch)
{
    const qlab_model *m = f->m;
    float *b0 = scratch, *b1 = b0 + m->max_act, *pad = b1 + m->max_act;
    float *tmp = pad + f->pad_floats;
    const float *cur = in;
    if (m->in_c > 1 && (size_t)m->in_h * m->in_w > 1) {
        transpose_samples(in, 1, (size_t)m->in_c, (size_t)m->in_h * m->in_w, b0);
        cur = b0;
    }
    size_t size = m->in_size;
    for (size_t i = 0; i < f->seg_end; i++) {
        const qlab_layer *l = &m->layers[i];
        float *out = cur == b0 ? b1 : b0;
        switch (l->kind) {
        case QLAB_LAYER_CONV2D: {
            const qlab_conv_plan *p = &f->plan[i];
            const float *src = cur;
            if (p->pad > 0) {
                qlab_pad_nhwc(cur, 1, p->c, p->h, p->w, p->pad, pad);
                src = pad;
            }
            f->conv(p, src, out, tmp);
            i += (size_t)p->relu + (p->pool_k > 0);
            break;
        }
        case QLAB_LAYER_MAXPOOL2D:
            maxpool_nhwc(cur, 1, l, out);
            break;
        default: /* relu */
            if (cur != b0 && cur != b1) {
                memcpy(out, cur, l->in_size * sizeof *out);
                cur = out;
            }
            qlab_relu_f32((float *)cur, l->in_size);
            size = l->out_size;
            continue;
        }
        cur = out;
        size = m->layers[i].out_size;
    }
    memcpy(dst, cur, size * sizeof *dst);
}

float *qlab_run_layers_nhwc(const qlab_nhwc *f, float *act0, float *act1, float *scratch,
                            size_t n)
{
    const qlab_model *m = f->m;
    float *cur = act0, *nxt = act1;
    int nhwc = 0;   /* cur holds a channels-last spatial activation */
    size_t first = 0;
    if (f->conv && f->seg_end > 0) {
        const size_t out = m->layers[f->seg_end - 1].out_size;
        for (size_t s = 0; s < n; s++)
            run_sample(f, act0 + s * m->in_size, act1 + s * out, scratch);
        cur = act1;
        nxt = act0;
        nhwc = 1;
        first = f->seg_end;
    }
    for (size_t i = first; i < m->nlayers; i++) {
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
                conv_nhwc(cur, n, l, f->wr[i], NULL, nxt, scratch);
                bias_relu_pool_nhwc(nxt, n, &m->layers[i + 2], bias, cur);
                i += 2;
                swap = 0;
                break;
            }
            conv_nhwc(cur, n, l, f->wr[i], bias, nxt, scratch);
            break;
        case QLAB_LAYER_MAXPOOL2D:
            if (nhwc || l->in_c == 1)
                maxpool_nhwc(cur, n, l, nxt);
            else
                qlab_maxpool2d_f32(cur, n, l->in_c, l->in_h, l->in_w, l->kernel, l->stride, nxt);
            break;
        case QLAB_LAYER_FLATTEN:
            if (nhwc && l->in_c > 1 && hw > 1 && !(i + 1 < m->nlayers && f->wperm[i + 1]))
                transpose_samples(cur, n, hw, (size_t)l->in_c, nxt);
            else
                swap = 0;   /* already in order, or the next layer's columns are permuted */
            nhwc = 0;
            break;
        case QLAB_LAYER_LINEAR:
            /* build_layers admits linear only on flat or 1x1 inputs: layouts agree */
            qlab_linear_f32(cur, n, l->cols, f->wperm[i] ? f->wperm[i] : f->wt[i], bias,
                            l->rows, nxt);
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
    /* build_layers requires a flat last layer, so the logits are in order */
    return cur;
}
