/* act.c — activation statistics and simulated activation quantization (see qlab-act.h). */
#include "qlab-act.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-int8.h"

struct qlab_act_sim {
    const float *const *wq;
    size_t nlayers;
    int bits;
    qlab_qconfig cfg;            /* per-tensor asymmetric at act bits */
    float *scale;                /* per layer: parameters of that layer's input */
    int32_t *zp;
    unsigned char *on;           /* 1 for weighted layers */
};

void qlab_act_ctx_free(qlab_exp_ctx *c)
{
    if (c && c->act) {
        qlab_act_stats_free(c->act);
        c->act = NULL;
    }
}

void qlab_act_free(qlab_act_sim *a)
{
    if (!a)
        return;
    free(a->scale);
    free(a->zp);
    free(a->on);
    free(a);
}

static int ensure_stats(qlab_exp_ctx *ctx, qlab_err *err)
{
    int r = 0;
    pthread_mutex_lock(&ctx->mu);
    if (ctx->act) {
        r = 0;
    } else if (ctx->act_error) {
        r = qlab_err_set(err, ctx->act_error, "activation calibration failed earlier");
    } else {
        qlab_dataset *train = NULL;
        r = qlab_dataset_load(&train, ctx->train_images, ctx->train_labels, err);
        if (r >= 0) {
            size_t n = ctx->calib_samples > 0 ? (size_t)ctx->calib_samples
                                              : QLAB_CALIB_DEFAULT_IMAGES;
            if (n > train->n)
                n = train->n;
            r = qlab_act_collect(ctx->model, train, n, ctx->calib_seed, &ctx->act, err);
            qlab_dataset_free(train);
        }
        if (r < 0)
            ctx->act_error = r;
    }
    pthread_mutex_unlock(&ctx->mu);
    return r;
}

int qlab_act_prepare(qlab_exp_ctx *ctx, const qlab_run_config *rc, const float *const *wq,
                     qlab_act_sim **out, qlab_err *err)
{
    int r = ensure_stats(ctx, err);
    if (r < 0)
        return r;
    const qlab_model *m = ctx->model;
    qlab_act_sim *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->wq = wq;
    a->nlayers = m->nlayers;
    a->bits = rc->act_bits;
    qlab_qconfig_init(&a->cfg);
    a->cfg.bits = rc->act_bits;
    a->cfg.scheme = QLAB_SCHEME_ASYMMETRIC;
    a->cfg.granularity = QLAB_GRAN_TENSOR;
    a->scale = calloc(m->nlayers, sizeof(float));
    a->zp = calloc(m->nlayers, sizeof(int32_t));
    a->on = calloc(m->nlayers, 1);
    if (!a->scale || !a->zp || !a->on) {
        qlab_act_free(a);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->nlayers; i++) {
        if (!qlab_layer_is_weighted(&m->layers[i]))
            continue;
        /* Point i of the statistics is the input of layer i. */
        r = qlab_act_qparams(&ctx->act->points[i], rc->act.calibration, rc->act.percentile,
                             rc->act_bits, &a->scale[i], &a->zp[i]);
        if (r < 0) {
            qlab_act_free(a);
            return qlab_err_set(err, r, "layer %s: cannot calibrate its input activations",
                                m->layers[i].name);
        }
        a->on[i] = 1;
    }
    *out = a;
    return 0;
}

static void sim_hook(void *hctx, const qlab_model *m, size_t layer, int stage, float *buf,
                     size_t n, size_t per_sample, unsigned chunk)
{
    (void)m;
    (void)chunk;
    qlab_act_sim *a = hctx;
    if (stage != 0 || layer >= a->nlayers || !a->on[layer])
        return;
    qlab_qparams p = { .nblocks = 1, .scale = &a->scale[layer], .zero_point = &a->zp[layer] };
    /* Per-tensor parameters: the whole buffer is one block. The hook runs inside the
     * forward pass's own thread split, so this call must not spawn more work: it runs
     * serially in the calling thread (the pool runs nested calls inline). */
    qlab_fake_quant_params(buf, 1, n * per_sample, &a->cfg, &p, buf, NULL);
}

void qlab_act_hook(qlab_act_sim *a, qlab_forward_opts *fo)
{
    fo->hook = sim_hook;
    fo->hook_ctx = a;
}

/* The int8 library evaluates whole-model quantized inference the way an int8 runtime
 * runs it (activations requantized at every layer's output, ReLU fused): on integer
 * kernels for 8-bit weights and activations, by fake-quant at the same points otherwise.
 * It takes one weight configuration for every layer, per tensor or per channel; runs with
 * per-layer overrides or per-group weights use the engine's own simulation instead. */
static int w8a8_path(qlab_exp_ctx *ctx, const qlab_run_config *rc, double *accuracy,
                     int *simulated, char *kernel, size_t kernel_len, qlab_err *err)
{
    if ((rc->overrides && *rc->overrides) || rc->weights.granularity == QLAB_GRAN_GROUP)
        return -ENOTSUP;
    qlab_w8a8_config wc;
    qlab_w8a8_config_init(&wc);
    wc.weights = rc->weights;
    wc.act_bits = rc->act_bits;
    wc.act_calib = rc->act.calibration;
    wc.act_percentile = rc->act.percentile;
    wc.simulate = !(rc->weights.bits == 8 && rc->act_bits == 8);
    qlab_w8a8_result res = { 0 };
    int r = qlab_eval_w8a8(ctx->model, ctx->act, ctx->test, &wc, NULL, &res, err);
    if (r < 0)
        return r;
    *accuracy = res.accuracy;
    *simulated = res.simulated;
    snprintf(kernel, kernel_len, "%s",
             res.simulated ? qlab_cpu_level_name() : qlab_int8_isa_name(res.isa));
    qlab_w8a8_result_clear(&res);
    return 0;
}

int qlab_act_accuracy(qlab_exp_ctx *ctx, qlab_act_sim *a, const qlab_run_config *rc,
                      double *accuracy, int *simulated, char *kernel, size_t kernel_len,
                      qlab_err *err)
{
    qlab_err werr = { 0 };
    int r0 = w8a8_path(ctx, rc, accuracy, simulated, kernel, kernel_len, &werr);
    if (r0 == 0)
        return 0;
    if (r0 != -ENOTSUP) {
        if (err)
            *err = werr;
        return r0;
    }
    qlab_forward_opts fo = { .weights = a->wq };
    qlab_act_hook(a, &fo);
    int r = qlab_model_accuracy(ctx->model, ctx->test, &fo, accuracy, err);
    if (r < 0)
        return r;
    *simulated = 1;
    snprintf(kernel, kernel_len, "%s", qlab_cpu_level_name());
    return 0;
}
