/* w8a8-check.c — what the W8A8 evaluation measures besides accuracy: each layer's output
 * against the FP32 model's (metrics), and the simulated path used for activation widths
 * other than 8 (fake-quant in the FP32 forward pass, same quantization points and
 * parameters as the integer path, so at 8 bits it reproduces it). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "w8a8-private.h"

/* Output of layer i viewed as an image (c channels x hw pixels): flatten keeps its
 * input's shape, which is the order the integer path stores it in. */
void w8a8_out_shape(const qlab_layer *l, size_t *c, size_t *hw)
{
    if (l->kind == QLAB_LAYER_FLATTEN) {
        *c = (size_t)l->in_c;
        *hw = (size_t)l->in_h * l->in_w;
    } else {
        *c = (size_t)l->out_c;
        *hw = (size_t)l->out_h * l->out_w;
    }
    if (*c * *hw != l->out_size) {
        *c = l->out_size;
        *hw = 1;
    }
}

/* Metrics of x' (deq) against x (ref), both n values in the same order. */
void w8a8_metrics(const float *ref, const float *deq, size_t n, float scale, int32_t zp,
                    int bits, qlab_metrics *mt)
{
    int32_t qmin, qmax;
    qlab_qrange(bits, &qmin, &qmax);
    double se = 0, sx = 0, sxy = 0, sy = 0, mx = 0;
    size_t clip = 0;
    for (size_t k = 0; k < n; k++) {
        double x = ref[k], y = deq[k], d = y - x;
        se += d * d;
        sx += x * x;
        sy += y * y;
        sxy += x * y;
        mx = fabs(d) > mx ? fabs(d) : mx;
        float q = nearbyintf(ref[k] * (1.0f / scale)) + (float)zp;
        clip += q < (float)qmin || q > (float)qmax;
    }
    memset(mt, 0, sizeof *mt);
    mt->n = n;
    mt->mse = n ? se / (double)n : 0;
    mt->sqnr_db = se > 0 ? 10 * log10(sx / se) : INFINITY;
    mt->max_abs_error = mx;
    mt->cosine = sx > 0 && sy > 0 ? sxy / sqrt(sx * sy) : (sx == 0 && sy == 0 ? 1 : 0);
    mt->clip_fraction = n ? (double)clip / (double)n : 0;
}

/* The FP32 reference outputs of every layer for the first s test images. */
int w8a8_fp32_capture(const qlab_model *m, const qlab_dataset *test, size_t s,
                        const qlab_forward_opts *base, float **cap, qlab_err *err)
{
    float *in = malloc(s * m->in_size * sizeof(float));
    if (!in)
        return -ENOMEM;
    int r = qlab_model_normalise(m, test, 0, s, in);
    qlab_forward_opts o = base ? *base : (qlab_forward_opts){0};
    o.capture = cap;
    if (r == 0)
        r = qlab_model_forward(m, in, s, &o, NULL, err);
    free(in);
    return r;
}

void w8a8_free_caps(void **cap, size_t n)
{
    if (!cap)
        return;
    for (size_t i = 0; i < n; i++)
        free(cap[i]);
    free(cap);
}

void **w8a8_alloc_caps(const qlab_model *m, size_t s, size_t elem)
{
    void **cap = calloc(m->nlayers, sizeof(void *));
    if (!cap)
        return NULL;
    for (size_t i = 0; i < m->nlayers; i++)
        if (!(cap[i] = malloc(s * m->layers[i].out_size * elem))) {
            w8a8_free_caps(cap, m->nlayers);
            return NULL;
        }
    return cap;
}

/* The layer whose output stands for layer i in the metrics (its fused relu). */
size_t w8a8_metric_src(const qlab_model *m, size_t i)
{
    return qlab_layer_is_weighted(&m->layers[i]) && w8a8_fused_relu(m, i) ? i + 1 : i;
}

/* ---- simulated activations: fake-quant in the FP32 path ---- */

typedef struct sim_ctx {
    const qlab_model *m;
    const qlab_w8a8_result *res;
    int bits;
} sim_ctx;

static void fq(float *x, size_t n, float scale, int32_t zp, int bits)
{
    int32_t qmin, qmax;
    qlab_qrange(bits, &qmin, &qmax);
    float inv = 1.0f / scale;
    for (size_t k = 0; k < n; k++) {
        float q = nearbyintf(x[k] * inv) + (float)zp;
        q = q < (float)qmin ? (float)qmin : q > (float)qmax ? (float)qmax : q;
        x[k] = (q - (float)zp) * scale;
    }
}

static void sim_hook(void *ctx, const qlab_model *m, size_t layer, int stage, float *buf,
                     size_t n, size_t per_sample, unsigned chunk)
{
    const sim_ctx *c = ctx;
    if (stage == 0 && layer == 0) {
        fq(buf, n * per_sample, c->res->in_scale, c->res->in_zp, c->bits);
        return;
    }
    const qlab_w8a8_layer *o = &c->res->layers[layer];
    if (stage == 1 && o->quantized &&
        !(qlab_layer_is_weighted(&m->layers[layer]) && w8a8_fused_relu(m, layer)))
        fq(buf, n * per_sample, o->scale, o->zp, c->bits);
}

int w8a8_eval_simulated(const qlab_model *m, const qlab_dataset *test,
                          const qlab_w8a8_config *cfg, int32_t *pred, qlab_w8a8_result *res,
                          qlab_err *err)
{
    float **wq = calloc(m->nlayers, sizeof(float *));
    float **ref = NULL, **sim = NULL;
    int r = -ENOMEM;
    if (!wq)
        return -ENOMEM;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (!qlab_layer_is_weighted(l))
            continue;
        if (!(wq[i] = malloc(l->weight->numel * sizeof(float))))
            goto done;
        r = qlab_fake_quant(l->weight->f32, (size_t)l->rows, (size_t)l->cols, &cfg->weights,
                            wq[i], NULL, NULL);
        if (r < 0) {
            qlab_err_set(err, r, "layer %s: weight quantization failed", l->name);
            goto done;
        }
    }
    sim_ctx sc = {.m = m, .res = res, .bits = cfg->act_bits};
    qlab_forward_opts o = {.weights = (const float *const *)wq, .hook = sim_hook, .hook_ctx = &sc};
    size_t correct;
    r = qlab_model_predict(m, test, &o, pred, &correct, err);
    if (r < 0)
        goto done;
    res->correct = correct;
    size_t s = cfg->metric_samples < test->n ? cfg->metric_samples : test->n;
    if (s) {
        r = -ENOMEM;
        ref = (float **)w8a8_alloc_caps(m, s, sizeof(float));
        sim = (float **)w8a8_alloc_caps(m, s, sizeof(float));
        if (!ref || !sim)
            goto done;
        r = w8a8_fp32_capture(m, test, s, NULL, ref, err);
        if (r == 0)
            r = w8a8_fp32_capture(m, test, s, &o, sim, err);
        if (r < 0)
            goto done;
        for (size_t i = 0; i < m->nlayers; i++) {
            size_t src = w8a8_metric_src(m, i);
            w8a8_metrics(ref[src], sim[src], s * m->layers[src].out_size, res->layers[i].scale,
                    res->layers[i].zp, cfg->act_bits, &res->layers[i].metrics);
        }
    }
    r = 0;
done:
    w8a8_free_caps((void **)wq, m->nlayers);
    w8a8_free_caps((void **)ref, m->nlayers);
    w8a8_free_caps((void **)sim, m->nlayers);
    return r;
}

