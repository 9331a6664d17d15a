/* infer.c — FP32 inference: linear through OpenBLAS sgemm; conv2d through the direct
 * AVX2 / AVX-512 kernels (conv-direct.c) or im2col + sgemm; relu, maxpool2d.
 *
 * Parallelism: one worker per core (qlab_parallel_for) takes mini-batches of QLAB_MB
 * samples from a shared counter and runs them with OpenBLAS single-threaded inside, so
 * the cores never contend for OpenBLAS's own pool. Splitting the batch beats threading
 * each sgemm because the matrices are small (the CNN's conv2 is 32 x 144 x 196 per
 * sample); measured on the shipped CNN, 10,000 images, on a busy machine, im2col level:
 * 0.28-0.53 s this way against 0.57-0.62 s with one worker and OpenBLAS on 2 threads.
 *
 * Two layer walks: run_layers below (NCHW, PyTorch's layout) serves hooks and per-layer
 * captures; without them the faster channels-last walk in infer-nhwc.c runs (on the
 * shipped CNN: 0.12 s with the AVX-512 kernel, 0.16 s AVX2, 0.23 s im2col + sgemm; see
 * tests/model/bench-fp32.c). Here convolution is im2col over a whole mini-batch:
 * col[K = c*kh*kw][B * oh*ow], one sgemm W[out, K] x col -> tmp[out][B * oh*ow], then a
 * copy into NCHW fused with the bias. */
#include "model-private.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "parallel.h"

/* Samples per mini-batch: keeps conv2's im2col buffer (144 x 32 x 196 floats, 3.6 MB)
 * about L2-and-L3 sized while giving sgemm a wide N. */
#define QLAB_MB 32

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

/* Locals and restrict everywhere: the project builds with -fno-strict-aliasing, so a float
 * store would otherwise force reloads of every bound through memory and block
 * vectorisation. */
static void im2col(const float *restrict in, size_t n, int c, int h, int w, int kh, int kw,
                   int stride, int pad, int oh, int ow, float *restrict col)
{
    const size_t ncols = n * (size_t)oh * ow, ohw = (size_t)oh * ow, hw = (size_t)h * w;
    for (int ci = 0; ci < c; ci++) {
        for (int ki = 0; ki < kh; ki++) {
            for (int kj = 0; kj < kw; kj++) {
                float *row = col + ((size_t)(ci * kh + ki) * kw + kj) * ncols;
                /* output columns ox with 0 <= ox*stride - pad + kj < w */
                int lo = pad - kj > 0 ? (pad - kj + stride - 1) / stride : 0;
                int hi = (w - 1 + pad - kj) >= 0 ? (w - 1 + pad - kj) / stride + 1 : 0;
                if (hi > ow)
                    hi = ow;
                if (lo > hi)
                    lo = hi;
                for (size_t b = 0; b < n; b++) {
                    const float *src = in + (b * (size_t)c + (size_t)ci) * hw;
                    float *dst = row + b * ohw;
                    for (int oy = 0; oy < oh; oy++) {
                        const int iy = oy * stride - pad + ki;
                        float *restrict d = dst + (size_t)oy * ow;
                        if (iy < 0 || iy >= h) {
                            memset(d, 0, (size_t)ow * sizeof *d);
                            continue;
                        }
                        const float *restrict s = src + (size_t)iy * w - pad + kj;
                        for (int ox = 0; ox < lo; ox++)
                            d[ox] = 0.0f;
                        if (stride == 1) {
                            memcpy(d + lo, s + lo, (size_t)(hi - lo) * sizeof *d);
                        } else {
                            for (int ox = lo; ox < hi; ox++)
                                d[ox] = s[(size_t)ox * stride];
                        }
                        for (int ox = hi; ox < ow; ox++)
                            d[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

/* col must hold c*kh*kw * n*oh*ow floats, out n*out_c*oh*ow; col's tail after the im2col
 * part is not used: the sgemm result goes to a second region of the same buffer. */
void qlab_conv2d_f32(const float *in, size_t n, int c, int h, int w, const float *weight,
                     const float *bias, int out_c, int kh, int kw, int stride, int padding,
                     float *out, float *col)
{
    int oh = (h + 2 * padding - kh) / stride + 1;
    int ow = (w + 2 * padding - kw) / stride + 1;
    size_t hw = (size_t)oh * ow, ncols = n * hw;
    int k = c * kh * kw;
    float *tmp = col + (size_t)k * ncols;
    im2col(in, n, c, h, w, kh, kw, stride, padding, oh, ow, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_c, (int)ncols, k, 1.0f, weight, k,
                col, (int)ncols, 0.0f, tmp, (int)ncols);
    for (int o = 0; o < out_c; o++) {
        const float bv = bias ? bias[o] : 0.0f;
        const float *src = tmp + (size_t)o * ncols;
        for (size_t b = 0; b < n; b++) {
            float *restrict dst = out + (b * (size_t)out_c + (size_t)o) * hw;
            const float *restrict s = src + b * hw;
            for (size_t i = 0; i < hw; i++)
                dst[i] = s[i] + bv;
        }
    }
}

void qlab_maxpool2d_f32(const float *in, size_t n, int c, int h, int w, int kernel, int stride,
                        float *out)
{
    const int oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1;
    const size_t planes = n * (size_t)c, hw = (size_t)h * w, ohw = (size_t)oh * ow;
    for (size_t p = 0; p < planes; p++) {
        const float *restrict src = in + p * hw;
        float *restrict dst = out + p * ohw;
        if (kernel == 2 && stride == 2) {
            for (int oy = 0; oy < oh; oy++) {
                const float *restrict r0 = src + (size_t)(2 * oy) * w, *restrict r1 = r0 + w;
                float *restrict d = dst + (size_t)oy * ow;
                for (int ox = 0; ox < ow; ox++) {
                    float m0 = qlab_max_nan(r0[2 * ox], r0[2 * ox + 1]);
                    float m1 = qlab_max_nan(r1[2 * ox], r1[2 * ox + 1]);
                    d[ox] = qlab_max_nan(m0, m1);
                }
            }
            continue;
        }
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                const float *s = src + (size_t)oy * stride * w + (size_t)ox * stride;
                float mx = s[0];
                for (int ki = 0; ki < kernel; ki++)
                    for (int kj = 0; kj < kernel; kj++)
                        mx = qlab_max_nan(mx, s[(size_t)ki * w + kj]);
                dst[(size_t)oy * ow + ox] = mx;
            }
        }
    }
}

void qlab_relu_f32(float *restrict x, size_t n)
{
    /* x > 0 ? x : 0 maps NaN to 0; PyTorch's relu keeps NaN, so compare the other way */
    for (size_t k = 0; k < n; k++)
        x[k] = x[k] < 0.0f ? 0.0f : x[k];
}

void qlab_linear_f32(const float *in, size_t n, int in_f, const float *weight,
                       const float *bias, int out_f, float *out)
{
    if (bias) {
        for (size_t b = 0; b < n; b++)
            memcpy(out + b * out_f, bias, (size_t)out_f * sizeof *out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, out_f, in_f, 1.0f, in, in_f,
                weight, in_f, bias ? 1.0f : 0.0f, out, out_f);
}

/* Workspace for one thread: two ping-pong activation buffers and the conv buffer. */
typedef struct workspace {
    float *act[2];
    float *col;
} workspace;

static size_t col_floats(const qlab_model *m, size_t mb)
{
    size_t need = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (l->kind != QLAB_LAYER_CONV2D)
            continue;
        size_t hw = (size_t)l->out_h * l->out_w;
        size_t f = ((size_t)l->cols + (size_t)l->rows) * mb * hw;
        if (f > need)
            need = f;
    }
    return need;
}

static int ws_alloc(workspace *ws, const qlab_model *m, size_t mb, const qlab_nhwc *fast)
{
    size_t col = fast ? qlab_nhwc_scratch_floats(fast, mb) : col_floats(m, mb);
    ws->act[0] = malloc(mb * m->max_act * sizeof(float));
    ws->act[1] = malloc(mb * m->max_act * sizeof(float));
    ws->col = col ? malloc(col * sizeof(float)) : NULL;
    if (!ws->act[0] || !ws->act[1] || (col && !ws->col)) {
        free(ws->act[0]);
        free(ws->act[1]);
        free(ws->col);
        return -ENOMEM;
    }
    return 0;
}

static void ws_free(workspace *ws)
{
    free(ws->act[0]);
    free(ws->act[1]);
    free(ws->col);
}

/* Runs the layers on n samples in ws->act[0] (normalised input); returns the buffer with
 * the logits. `first` is the index of the first sample (for captures). */
static float *run_layers(const qlab_model *m, const qlab_forward_opts *o, workspace *ws,
                         size_t n, size_t first, unsigned chunk)
{
    float *cur = ws->act[0], *nxt = ws->act[1];
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (o && o->hook)
            o->hook(o->hook_ctx, m, i, 0, cur, n, l->in_size, chunk);
        const float *wt = NULL;
        if (l->weight)
            wt = (o && o->weights && o->weights[i]) ? o->weights[i] : l->weight->f32;
        const float *bias = l->bias ? l->bias->f32 : NULL;
        int swap = 1;
        switch (l->kind) {
        case QLAB_LAYER_LINEAR:
            qlab_linear_f32(cur, n, l->cols, wt, bias, l->rows, nxt);
            break;
        case QLAB_LAYER_CONV2D:
            qlab_conv2d_f32(cur, n, l->in_c, l->in_h, l->in_w, wt, bias, l->rows, l->kh, l->kw,
                            l->stride, l->padding, nxt, ws->col);
            break;
        case QLAB_LAYER_MAXPOOL2D:
            qlab_maxpool2d_f32(cur, n, l->in_c, l->in_h, l->in_w, l->kernel, l->stride, nxt);
            break;
        case QLAB_LAYER_RELU:
            qlab_relu_f32(cur, n * l->in_size);
            swap = 0;
            break;
        default: /* flatten: NCHW is already c*H*W + h*W + w per sample */
            swap = 0;
            break;
        }
        if (swap) {
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
        if (o && o->hook)
            o->hook(o->hook_ctx, m, i, 1, cur, n, l->out_size, chunk);
        if (o && o->capture && o->capture[i])
            memcpy(o->capture[i] + first * l->out_size, cur, n * l->out_size * sizeof(float));
    }
    return cur;
}

static void make_lut(const qlab_model *m, float lut[256])
{
    /* Bit-exact with numpy float32: (p / 255.0f - mean) / std, each op rounded to float. */
    for (int p = 0; p < 256; p++)
        lut[p] = ((float)p / 255.0f - m->mean) / m->std;
}

int qlab_model_normalise(const qlab_model *m, const qlab_dataset *ds, size_t first, size_t n,
                         float *out)
{
    if (first > ds->n || n > ds->n - first || (size_t)ds->h * ds->w != m->in_size)
        return -EINVAL;
    float lut[256];
    make_lut(m, lut);
    const uint8_t *src = ds->images + first * m->in_size;
    for (size_t k = 0; k < n * m->in_size; k++)
        out[k] = lut[src[k]];
    return 0;
}

enum { MAX_CHUNKS = 64 };

typedef struct run_ctx {
    const qlab_model *m;
    const qlab_forward_opts *o;
    const float *input;         /* forward: normalised input */
    float *logits;
    const qlab_dataset *ds;     /* predict: the dataset */
    float lut[256];
    int32_t *pred;
    int fast;                   /* no hooks or captures: NHWC path */
    qlab_nhwc nhwc;             /* its weights and plans */
    size_t total;               /* samples */
    size_t next;                /* first sample of the next mini-batch (atomic) */
    size_t correct[MAX_CHUNKS];
    int err[MAX_CHUNKS];
} run_ctx;

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t k = 1; k < n; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

/* One worker per thread; [begin, end) are worker indices, not samples: each worker takes
 * the next mini-batch from a shared counter until none is left, so a core that the
 * machine's other load slows down simply does fewer mini-batches (a static split would
 * wait for the slowest half). */
static void run_worker(void *vctx, size_t begin, size_t end, unsigned chunk)
{
    run_ctx *c = vctx;
    const qlab_model *m = c->m;
    workspace ws;
    (void)begin;
    (void)end;
    if (ws_alloc(&ws, m, QLAB_MB, c->fast ? &c->nhwc : NULL) < 0) {
        c->err[chunk] = -ENOMEM;
        return;
    }
    for (;;) {
        size_t b = __atomic_fetch_add(&c->next, QLAB_MB, __ATOMIC_RELAXED);
        if (b >= c->total)
            break;
        size_t n = c->total - b < QLAB_MB ? c->total - b : QLAB_MB;
        if (c->ds) {
            const uint8_t *restrict src = c->ds->images + b * m->in_size;
            float *restrict dst = ws.act[0];
            const size_t cnt = n * m->in_size;
            for (size_t k = 0; k < cnt; k++)
                dst[k] = c->lut[src[k]];
        } else {
            memcpy(ws.act[0], c->input + b * m->in_size, n * m->in_size * sizeof(float));
        }
        const float *y = c->fast ? qlab_run_layers_nhwc(&c->nhwc, ws.act[0], ws.act[1], ws.col, n)
                                 : run_layers(m, c->o, &ws, n, b, chunk);
        if (c->logits)
            memcpy(c->logits + b * m->nclasses, y, n * m->nclasses * sizeof(float));
        if (c->ds) {
            for (size_t s = 0; s < n; s++) {
                size_t p = argmax(y + s * m->nclasses, m->nclasses);
                if (c->pred)
                    c->pred[b + s] = (int32_t)p;
                c->correct[chunk] += p == c->ds->labels[b + s];
            }
        }
    }
    ws_free(&ws);
}

static int run(run_ctx *c, size_t n)
{
    pthread_once(&blas_once, blas_single_thread);
    const qlab_forward_opts *o = c->o;
    c->fast = !o || (!o->hook && !o->capture);
    if (c->fast) {
        int r = qlab_nhwc_prepare(&c->nhwc, c->m, o ? o->weights : NULL);
        if (r < 0)
            return r;
    }
    /* below two mini-batches a second thread costs more than it saves */
    size_t workers = n > 2 * QLAB_MB ? qlab_threads() : 1;
    if (workers > MAX_CHUNKS)
        workers = MAX_CHUNKS;
    c->total = n;
    c->next = 0;
    unsigned used = qlab_parallel_for(workers, 1, 1, run_worker, c);
    if (c->fast)
        qlab_nhwc_clear(&c->nhwc);
    for (unsigned k = 0; k < used && k < MAX_CHUNKS; k++)
        if (c->err[k] < 0)
            return c->err[k];
    return 0;
}

static int check_model(const qlab_model *m, qlab_err *err)
{
    if (m->nlayers == 0)
        return qlab_err_set(err, -EINVAL, "%s: model has no layers", m->st->path);
    return 0;
}

int qlab_model_forward(const qlab_model *m, const float *input, size_t n,
                       const qlab_forward_opts *opts, float *logits, qlab_err *err)
{
    int r = check_model(m, err);
    if (r < 0)
        return r;
    run_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->m = m;
    c->o = opts;
    c->input = input;
    c->logits = logits;
    r = run(c, n);
    free(c);
    return r;
}

int qlab_model_predict(const qlab_model *m, const qlab_dataset *ds,
                       const qlab_forward_opts *opts, int32_t *pred, size_t *correct,
                       qlab_err *err)
{
    int r = check_model(m, err);
    if (r < 0)
        return r;
    if ((size_t)ds->h * ds->w != m->in_size)
        return qlab_err_set(err, -EINVAL, "dataset images are %dx%d but the model takes %d x %d x %d",
                            ds->h, ds->w, m->in_c, m->in_h, m->in_w);
    run_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->m = m;
    c->o = opts;
    c->ds = ds;
    c->pred = pred;
    make_lut(m, c->lut);
    r = run(c, ds->n);
    if (r == 0 && correct) {
        size_t t = 0;
        for (int k = 0; k < MAX_CHUNKS; k++)
            t += c->correct[k];
        *correct = t;
    }
    free(c);
    return r;
}

int qlab_model_accuracy(const qlab_model *m, const qlab_dataset *ds,
                        const qlab_forward_opts *opts, double *accuracy, qlab_err *err)
{
    size_t correct = 0;
    int r = qlab_model_predict(m, ds, opts, NULL, &correct, err);
    if (r < 0)
        return r;
    *accuracy = ds->n ? 100.0 * (double)correct / (double)ds->n : 0.0;
    return 0;
}
