/* w8a8.c — whole-model integer evaluation: int8 activations between layers, int8 x int8
 * GEMMs with fused requantization, dequantizing only the logits; other activation widths
 * by fake-quant in the FP32 path (simulated).
 *
 * Plan: one entry per model layer. A weighted layer carries its packed GEMM (weights
 * quantized by the core, permuted to the channels-last order, requantization constants
 * folded in); relu fused into the preceding GEMM is skipped; maxpool/flatten/relu act on
 * codes. Images run in batches of BATCH, batches split over both cores, each core with
 * its own buffers and the GEMMs run serially inside it (no nested fork-join; a caller
 * that is already parallel, e.g. an engine worker with qlab_parallel_set_serial(1), gets
 * everything on its own thread). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "qgemm-private.h"
#include "w8a8-private.h"
#include "qlab-int8.h"

#define BATCH 64
#define MAX_CHUNKS 64

typedef struct plan_layer {
    qlab_layer_kind kind;
    int skip;                   /* relu already fused into the previous GEMM */
    qlab_qgemm *g;
    float scale;                /* output activation params */
    int32_t zp;
} plan_layer;

typedef struct plan {
    const qlab_model *m;
    plan_layer *l;
    uint8_t lut[256];           /* pixel -> input code + 128 */
    float in_scale;
    int32_t in_zp;
    size_t max_cols;            /* im2col bytes per image */
    size_t max_padded;          /* padded conv input bytes per image */
} plan;

void qlab_w8a8_config_init(qlab_w8a8_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    qlab_qconfig_init(&cfg->weights);
    cfg->weights.bits = 8;
    cfg->weights.scheme = QLAB_SCHEME_SYMMETRIC;
    cfg->weights.granularity = QLAB_GRAN_CHANNEL;
    cfg->weights.calibration = QLAB_CALIB_MINMAX;
    cfg->act_bits = 8;
    cfg->act_calib = QLAB_CALIB_MINMAX;
    cfg->act_percentile = 99.99;
}

void qlab_w8a8_result_clear(qlab_w8a8_result *res)
{
    if (!res)
        return;
    free(res->layers);
    memset(res, 0, sizeof *res);
}

int w8a8_fused_relu(const qlab_model *m, size_t i)
{
    return i + 1 < m->nlayers && m->layers[i + 1].kind == QLAB_LAYER_RELU;
}

/* Activation params at every layer output: computed at quantization points (input,
 * weighted layers and their fused relu), inherited elsewhere. */
static int act_params(const qlab_model *m, const qlab_act_stats *st, const qlab_w8a8_config *cfg,
                      qlab_w8a8_result *res, qlab_err *err)
{
    double lo, hi;
    int r = qlab_act_range(&st->points[0], cfg->act_calib, cfg->act_percentile, cfg->act_bits,
                           &lo, &hi);
    if (r == 0)
        r = qlab_params_from_range(lo, hi, cfg->act_bits, QLAB_SCHEME_ASYMMETRIC,
                                   &res->in_scale, &res->in_zp);
    if (r < 0)
        return qlab_err_set(err, r, "activation calibration of the model input failed");
    float scale = res->in_scale;
    int32_t zp = res->in_zp;
    double plo = lo, phi = hi;
    for (size_t i = 0; i < m->nlayers; i++) {
        qlab_w8a8_layer *o = &res->layers[i];
        const qlab_layer *l = &m->layers[i];
        int at = qlab_layer_is_weighted(l) ||
                 (l->kind == QLAB_LAYER_RELU && i > 0 && qlab_layer_is_weighted(&m->layers[i - 1]));
        if (at) {
            /* a weighted layer followed by relu takes the post-relu statistics */
            size_t point = qlab_layer_is_weighted(l) && w8a8_fused_relu(m, i) ? i + 2 : i + 1;
            r = qlab_act_range(&st->points[point], cfg->act_calib, cfg->act_percentile,
                               cfg->act_bits, &plo, &phi);
            if (r == 0)
                r = qlab_params_from_range(plo, phi, cfg->act_bits, QLAB_SCHEME_ASYMMETRIC,
                                           &scale, &zp);
            if (r < 0)
                return qlab_err_set(err, r, "activation calibration of layer %s failed",
                                    l->name);
        }
        o->quantized = at;
        o->scale = scale;
        o->zp = zp;
        o->lo = plo;
        o->hi = phi;
    }
    return 0;
}

/* Quantizes layer i's weights, permutes them channels-last and packs them. */
static int pack_layer(const qlab_model *m, size_t i, const qlab_w8a8_config *cfg,
                      float in_scale, int32_t in_zp, const qlab_w8a8_layer *out,
                      qlab_qgemm **g, qlab_err *err)
{
    const qlab_layer *l = &m->layers[i];
    size_t rows = (size_t)l->rows, cols = (size_t)l->cols;
    qlab_qparams qp = {0};
    int16_t *codes = malloc(rows * cols * sizeof(int16_t));
    int8_t *w8 = malloc(rows * cols);
    int32_t qmin, qmax;
    int r = -ENOMEM;
    if (!codes || !w8)
        goto done;
    r = qlab_calibrate(l->weight->f32, rows, cols, &cfg->weights, &qp);
    if (r == 0)
        r = qlab_quantize(l->weight->f32, rows, cols, &cfg->weights, &qp, codes);
    if (r < 0) {
        qlab_err_set(err, r, "layer %s: weight quantization failed", l->name);
        goto done;
    }
    /* Source column for destination column j (channels-last order). */
    size_t c = 1, hw = 1;
    if (l->kind == QLAB_LAYER_CONV2D) {
        c = (size_t)l->in_c;
        hw = (size_t)l->kh * l->kw;
    } else if (i > 0 && l->in_c == (int)cols) {
        /* a linear layer: find the image shape it was flattened from */
        for (size_t p = i; p-- > 0;) {
            const qlab_layer *q = &m->layers[p];
            if (q->kind == QLAB_LAYER_FLATTEN) {
                c = (size_t)q->in_c;
                hw = (size_t)q->in_h * q->in_w;
                break;
            }
            if (q->kind != QLAB_LAYER_RELU)
                break;
        }
        if (c * hw != cols)
            c = 1, hw = cols;
    }
    for (size_t o = 0; o < rows; o++)
        for (size_t s = 0; s < hw; s++)
            for (size_t ch = 0; ch < c; ch++)
                w8[o * cols + s * c + ch] = (int8_t)codes[o * cols + ch * hw + s];
    qlab_qrange(8, &qmin, &qmax);
    qlab_requant rq = {
        .in_scale = in_scale, .in_zp = in_zp,
        .w_scale = qp.scale, .w_scale_count = qp.nblocks,
        .w_zp = cfg->weights.scheme == QLAB_SCHEME_ASYMMETRIC ? qp.zero_point : NULL,
        .bias = l->bias ? l->bias->f32 : NULL,
        .out_scale = out->scale, .out_zp = out->zp, .relu = w8a8_fused_relu(m, i),
        .qmin = qmin, .qmax = qmax,
    };
    r = qlab_qgemm_pack(w8, rows, cols, &rq, g);
    if (r < 0)
        qlab_err_set(err, r, "layer %s: packing int8 weights failed", l->name);
done:
    qlab_qparams_free(&qp);
    free(codes);
    free(w8);
    return r;
}

/* im2col row stride: a multiple of 4 so the AVX-VNNI kernel reads rows in place. */
static size_t im2col_ld(const qlab_layer *l)
{
    return ((size_t)l->cols + 3) / 4 * 4;
}

static void plan_free(plan *p)
{
    if (p->l)
        for (size_t i = 0; i < p->m->nlayers; i++)
            qlab_qgemm_free(p->l[i].g);
    free(p->l);
}

static int plan_build(plan *p, const qlab_model *m, const qlab_w8a8_config *cfg,
                      const qlab_w8a8_result *res, qlab_err *err)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->l = calloc(m->nlayers, sizeof *p->l);
    if (!p->l)
        return -ENOMEM;
    p->in_scale = res->in_scale;
    p->in_zp = res->in_zp;
    /* the input codes of each pixel value: normalise exactly as the FP32 path
     * (qlab_model_normalise), then quantize (PRODUCT §3) */
    float inv = 1.0f / res->in_scale;
    for (int v = 0; v < 256; v++) {
        float x = ((float)v / 255.0f - m->mean) / m->std;
        float q = nearbyintf(x * inv) + (float)res->in_zp;
        p->lut[v] = (uint8_t)((int)(q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q) + 128);
    }
    float scale = res->in_scale;
    int32_t zp = res->in_zp;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        p->l[i].kind = l->kind;
        if (l->kind == QLAB_LAYER_CONV2D) {
            size_t colb = (size_t)l->out_h * l->out_w * im2col_ld(l);
            size_t padb = (size_t)(l->in_h + 2 * l->padding) * (l->in_w + 2 * l->padding) *
                          (size_t)l->in_c;
            if (colb > p->max_cols)
                p->max_cols = colb;
            if (padb > p->max_padded)
                p->max_padded = padb;
        }
        if (qlab_layer_is_weighted(l)) {
            const qlab_w8a8_layer *out = &res->layers[w8a8_fused_relu(m, i) ? i + 1 : i];
            int r = pack_layer(m, i, cfg, scale, zp, out, &p->l[i].g, err);
            if (r < 0)
                return r;
            if (w8a8_fused_relu(m, i))
                p->l[i + 1].skip = 1;
        }
        scale = res->layers[i].scale;
        zp = res->layers[i].zp;
        p->l[i].scale = scale;
        p->l[i].zp = zp;
    }
    return 0;
}

typedef struct run_ctx {
    const plan *p;
    const qlab_dataset *ds;
    size_t first;               /* image offset in ds */
    int32_t *pred;
    uint8_t *const *capture;    /* per layer: n * out_size codes + 128 (channels-last) */
    size_t correct[MAX_CHUNKS];
    int err[MAX_CHUNKS];
} run_ctx;

/* Runs n images (channels-last input codes in cur) through the plan; returns the buffer
 * holding the logit codes. Activations are stored as u8 = code + 128 (quint8 bytes),
 * which the VNNI kernels read in place (qlab_qgemm_u8). */
static uint8_t *run_batch(const plan *p, uint8_t *cur, uint8_t *nxt, uint8_t *col,
                          uint8_t *padded, size_t n, uint8_t *const *capture, size_t first,
                          int *err)
{
    const qlab_model *m = p->m;
    int32_t zp = p->in_zp;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        const plan_layer *pl = &p->l[i];
        int swap = 1, r = 0;
        switch (l->kind) {
        case QLAB_LAYER_LINEAR:
            r = qgemm_u8_serial(pl->g, cur, n, (size_t)l->cols, nxt, (size_t)l->rows);
            break;
        case QLAB_LAYER_CONV2D: {
            size_t ohw = (size_t)l->out_h * l->out_w, ld = im2col_ld(l);
            size_t pad = (size_t)l->padding;
            for (size_t s = 0; s < n; s++) {
                /* bytes are bytes: the s8 layout helpers move u8 codes unchanged */
                qlab_pad_hwc_s8((const int8_t *)cur + s * l->in_size, (size_t)l->in_h,
                                (size_t)l->in_w, (size_t)l->in_c, pad, (int8_t)(zp ^ 0x80),
                                (int8_t *)padded);
                qlab_im2col_hwc_s8((const int8_t *)padded, (size_t)l->in_h + 2 * pad,
                                   (size_t)l->in_w + 2 * pad, (size_t)l->in_c, (size_t)l->kh,
                                   (size_t)l->kw, (size_t)l->stride, (int8_t *)col, ld);
                r = qgemm_u8_serial(pl->g, col, ohw, ld, nxt + s * l->out_size,
                                    (size_t)l->rows);
                if (r < 0)
                    break;
            }
            break;
        }
        case QLAB_LAYER_MAXPOOL2D:
            for (size_t s = 0; s < n; s++)
                qlab_maxpool_hwc_u8(cur + s * l->in_size, (size_t)l->in_h, (size_t)l->in_w,
                                    (size_t)l->in_c, (size_t)l->kernel, (size_t)l->stride,
                                    nxt + s * l->out_size);
            break;
        case QLAB_LAYER_RELU:
            if (!pl->skip)
                qlab_relu_u8(cur, n * l->in_size, (uint8_t)(zp + 128));
            swap = 0;
            break;
        default:
            swap = 0;
            break;
        }
        if (r < 0) {
            *err = r;
            return NULL;
        }
        if (swap) {
            uint8_t *t = cur;
            cur = nxt;
            nxt = t;
        }
        zp = pl->zp;
        if (capture && capture[i])
            memcpy(capture[i] + first * l->out_size, cur, n * l->out_size);
    }
    return cur;
}

static void run_range(void *vctx, size_t begin, size_t end, unsigned chunk)
{
    run_ctx *c = vctx;
    const plan *p = c->p;
    const qlab_model *m = p->m;
    uint8_t *a = malloc(BATCH * m->max_act), *b = malloc(BATCH * m->max_act);
    uint8_t *col = NULL, *padded = NULL;
    if (p->max_cols) {
        /* calloc: the slack and row tails are read (times zero weights) but never set */
        col = calloc(p->max_cols + QLAB_IM2COL_SLACK, 1);
        padded = calloc(p->max_padded + QLAB_IM2COL_SLACK, 1);
    }
    if (!a || !b || (p->max_cols && (!col || !padded))) {
        c->err[chunk] = -ENOMEM;
        goto out;
    }
    for (size_t s0 = begin; s0 < end; s0 += BATCH) {
        size_t n = end - s0 < BATCH ? end - s0 : BATCH;
        const uint8_t *src = c->ds->images + (c->first + s0) * m->in_size;
        const size_t hw = (size_t)m->in_h * m->in_w, ch = (size_t)m->in_c;
        const uint8_t *restrict lut = p->lut;
        uint8_t *restrict dst = a;
        if (ch == 1) {                      /* one channel: CHW is HWC */
            for (size_t k = 0; k < n * hw; k++)
                dst[k] = lut[src[k]];
        } else {
            for (size_t s = 0; s < n; s++)  /* CHW pixels -> HWC codes */
                for (size_t q = 0; q < ch; q++) {
                    const uint8_t *restrict sp = src + s * m->in_size + q * hw;
                    uint8_t *restrict dp = dst + s * m->in_size + q;
                    for (size_t k = 0; k < hw; k++)
                        dp[k * ch] = lut[sp[k]];
                }
        }
        uint8_t *y = run_batch(p, a, b, col, padded, n, c->capture, s0, &c->err[chunk]);
        if (!y)
            goto out;
        for (size_t s = 0; s < n; s++) {
            const uint8_t *v = y + s * m->nclasses;
            size_t best = 0;
            for (size_t k = 1; k < m->nclasses; k++)
                if (v[k] > v[best])
                    best = k;
            if (c->pred)
                c->pred[s0 + s] = (int32_t)best;
            c->correct[chunk] += best == c->ds->labels[c->first + s0 + s];
        }
    }
out:
    free(a);
    free(b);
    free(col);
    free(padded);
}

static int run_plan(const plan *p, const qlab_dataset *ds, size_t first, size_t n,
                    int32_t *pred, uint8_t *const *capture, size_t *correct)
{
    run_ctx c = {.p = p, .ds = ds, .first = first, .pred = pred, .capture = capture};
    unsigned used = qlab_parallel_for(n, BATCH, BATCH, run_range, &c);
    size_t total = 0;
    for (unsigned k = 0; k < used && k < MAX_CHUNKS; k++) {
        if (c.err[k] < 0)
            return c.err[k];
        total += c.correct[k];
    }
    *correct = total;
    return 0;
}

static int int8_metrics(const plan *p, const qlab_dataset *test, size_t s,
                        qlab_w8a8_result *res, qlab_err *err)
{
    const qlab_model *m = p->m;
    float **ref = (float **)w8a8_alloc_caps(m, s, sizeof(float));
    uint8_t **q = (uint8_t **)w8a8_alloc_caps(m, s, 1);
    float *deq = malloc(s * m->max_act * sizeof(float));
    size_t correct;
    int r = -ENOMEM;
    if (!ref || !q || !deq)
        goto done;
    r = w8a8_fp32_capture(m, test, s, NULL, ref, err);
    if (r == 0)
        r = run_plan(p, test, 0, s, NULL, q, &correct);
    if (r < 0)
        goto done;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_w8a8_layer *o = &res->layers[i];
        size_t c, hw, per = m->layers[i].out_size;
        w8a8_out_shape(&m->layers[i], &c, &hw);
        /* channels-last codes -> CHW reals */
        for (size_t n = 0; n < s; n++)
            for (size_t k = 0; k < hw; k++)
                for (size_t ch = 0; ch < c; ch++)
                    deq[n * per + ch * hw + k] =
                        (float)(q[i][n * per + k * c + ch] - 128 - o->zp) * o->scale;
        w8a8_metrics(ref[w8a8_metric_src(m, i)], deq, s * per, o->scale, o->zp, 8,
                &res->layers[i].metrics);
    }
done:
    w8a8_free_caps((void **)ref, m->nlayers);
    w8a8_free_caps((void **)q, m->nlayers);
    free(deq);
    return r;
}

int qlab_eval_w8a8(const qlab_model *m, const qlab_act_stats *stats, const qlab_dataset *test,
                   const qlab_w8a8_config *cfg, int32_t *pred, qlab_w8a8_result *res,
                   qlab_err *err)
{
    if (!m || !stats || !test || !cfg || !res || test->n == 0)
        return qlab_err_set(err, -EINVAL, "w8a8: missing model, statistics or data");
    if (stats->npoints != m->nlayers + 1)
        return qlab_err_set(err, -EINVAL, "w8a8: statistics are for another model (%zu points, "
                            "model has %zu layers)", stats->npoints, m->nlayers);
    if ((size_t)test->h * test->w * (size_t)m->in_c != m->in_size)
        return qlab_err_set(err, -EINVAL, "w8a8: images are %dx%d, model wants %zu values",
                            test->h, test->w, m->in_size);
    int32_t qmin, qmax;
    if (qlab_qrange(cfg->act_bits, &qmin, &qmax) < 0 || qlab_qconfig_validate(&cfg->weights) < 0)
        return qlab_err_set(err, -EINVAL, "w8a8: invalid configuration");
    int simulated = cfg->simulate || cfg->act_bits != 8;
    if (!simulated && (cfg->weights.bits != 8 || cfg->weights.granularity == QLAB_GRAN_GROUP))
        return qlab_err_set(err, -ENOTSUP, "w8a8: integer kernels need 8-bit per-tensor or "
                            "per-channel weights");
    qlab_w8a8_result out = {.n = test->n, .simulated = simulated, .nlayers = m->nlayers,
                            .isa = qlab_int8_isa_current()};
    out.layers = calloc(m->nlayers, sizeof *out.layers);
    if (!out.layers)
        return -ENOMEM;
    int r = act_params(m, stats, cfg, &out, err);
    if (r < 0)
        goto fail;
    if (simulated) {
        r = w8a8_eval_simulated(m, test, cfg, pred, &out, err);
    } else {
        plan p;
        r = plan_build(&p, m, cfg, &out, err);
        if (r == 0)
            r = run_plan(&p, test, 0, test->n, pred, NULL, &out.correct);
        size_t s = cfg->metric_samples < test->n ? cfg->metric_samples : test->n;
        if (r == 0 && s)
            r = int8_metrics(&p, test, s, &out, err);
        plan_free(&p);
    }
    if (r < 0)
        goto fail;
    out.accuracy = 100.0 * (double)out.correct / (double)out.n;
    *res = out;
    return 0;
fail:
    free(out.layers);
    return r;
}
