/* run.c — one point of a sweep: quantize the weights as configured, evaluate accuracy on the
 * whole test set, and measure every weighted layer's weight and output error.
 *
 * Weight metrics come from the core's fused fake-quant pass. Output metrics compare each
 * weighted layer's output on the context's fixed batch with the FP32 model's output there;
 * the error accumulates through the layers, which is what a user needs to see where
 * accuracy goes. The run-level sqnr_db / mse are over all quantized weights together
 * (sum of squared errors over sum of squares, from each layer's fused pass).
 */
#include "engine-private.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qlab-act.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void qlab_run_label(const qlab_run_config *rc, char *buf, size_t len)
{
    const qlab_qconfig *w = &rc->weights;
    char gran[32];
    if (w->granularity == QLAB_GRAN_GROUP)
        snprintf(gran, sizeof(gran), "group:%d", w->group_size);
    else
        snprintf(gran, sizeof(gran), "%s", qlab_granularity_name(w->granularity));
    char cal[32];
    if (w->calibration == QLAB_CALIB_PERCENTILE)
        snprintf(cal, sizeof(cal), "percentile:%g", w->percentile);
    else
        snprintf(cal, sizeof(cal), "%s", qlab_calibration_name(w->calibration));
    int n = snprintf(buf, len, "%db %s %s %s", w->bits,
                     w->scheme == QLAB_SCHEME_SYMMETRIC ? "sym" : "asym", gran, cal);
    if (rc->act_bits > 0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " a%d %s", rc->act_bits,
                 qlab_calibration_name(rc->act.calibration));
}

int qlab_run_layer_config(const qlab_run_config *rc, struct json_object *ov, const char *layer,
                          qlab_qconfig *cfg, qlab_err *err)
{
    *cfg = rc->weights;
    if (!ov)
        return 0;
    struct json_object *v;
    if (!json_object_object_get_ex(ov, layer, &v))
        return 0;
    if (json_object_is_type(v, json_type_string)) {
        if (!strcmp(json_object_get_string(v), "fp32"))
            return 1;
        return qlab_err_set(err, -EINVAL, "override of layer %s: '%s' is not fp32 or a mapping",
                            layer, json_object_get_string(v));
    }
    if (!json_object_is_type(v, json_type_object))
        return qlab_err_set(err, -EINVAL, "override of layer %s is not a mapping", layer);
    json_object_object_foreach(v, key, val) {
        int r = 0;
        if (!strcmp(key, "bits")) {
            if (json_object_is_type(val, json_type_string) &&
                !strcmp(json_object_get_string(val), "fp32"))
                return 1;
            cfg->bits = json_object_get_int(val);
        } else if (!strcmp(key, "scheme")) {
            r = qlab_config_parse_scheme(json_object_get_string(val), cfg);
        } else if (!strcmp(key, "granularity")) {
            r = qlab_config_parse_granularity(json_object_get_string(val), cfg);
        } else if (!strcmp(key, "calibration")) {
            r = qlab_config_parse_calibration(json_object_get_string(val), cfg);
        } else if (!strcmp(key, "fp32")) {
            if (json_object_get_boolean(val))
                return 1;
        }
        if (r < 0)
            return qlab_err_set(err, r, "override of layer %s: bad %s", layer, key);
    }
    if (qlab_qconfig_validate(cfg) < 0)
        return qlab_err_set(err, -EINVAL, "override of layer %s: invalid configuration", layer);
    return 0;
}

void qlab_run_output_clear(qlab_run_output *o)
{
    if (!o)
        return;
    free(o->layers);
    free(o->hists);
    free(o->hist_counts);
    memset(o, 0, sizeof(*o));
}

static double nan_if_inf(double v)
{
    /* SQLite stores +Inf fine, but JSON and most plots do not: an exact layer gets a large
     * finite SQNR instead (documented in the README). */
    if (isinf(v))
        return v > 0 ? 999.0 : -999.0;
    return v;
}

int qlab_run_eval(qlab_exp_ctx *ctx, const qlab_run_config *rc, int hist_bins,
                  qlab_run_output *out, qlab_err *err)
{
    const qlab_model *m = ctx->model;
    size_t nl = m->nlayers;
    size_t nw = qlab_model_weighted_layers(m);
    int r = 0;
    double t0 = now_ms();
    struct json_object *ov = NULL;
    float **wq = calloc(nl, sizeof(*wq));
    float **cap = calloc(nl, sizeof(*cap));
    qlab_run_output o = { 0 };
    o.layers = calloc(nw ? nw : 1, sizeof(*o.layers));
    o.hists = calloc(2 * (nw ? nw : 1), sizeof(*o.hists));
    o.hist_counts = calloc(2 * (nw ? nw : 1) * (size_t)hist_bins, sizeof(uint64_t));
    qlab_act_sim *act = NULL;
    if (!wq || !cap || !o.layers || !o.hists || !o.hist_counts) {
        r = -ENOMEM;
        goto out;
    }
    if (rc->overrides && *rc->overrides) {
        ov = json_tokener_parse(rc->overrides);
        if (!ov) {
            r = qlab_err_set(err, -EINVAL, "overrides are not valid JSON: %s", rc->overrides);
            goto out;
        }
    }

    /* 1. Weights: fake-quantize each weighted layer, with the fused metrics pass. */
    int64_t weight_bytes = 0, total_bytes = 0, weight_params = 0;
    double sum_err2 = 0, sum_x2 = 0, nq = 0;
    size_t li = 0, hi = 0;
    for (size_t i = 0; i < nl; i++) {
        const qlab_layer *L = &m->layers[i];
        if (!qlab_layer_is_weighted(L))
            continue;
        qlab_layer_result *lr = &o.layers[li++];
        size_t numel = (size_t)L->rows * (size_t)L->cols;
        int64_t bias_bytes = L->bias ? (int64_t)L->bias->numel * 4 : 0;
        lr->layer = L->name;
        lr->kind = qlab_layer_kind_name(L->kind);
        lr->position = (int)i;
        lr->params = (int64_t)qlab_layer_params(L);
        weight_params += (int64_t)numel;
        qlab_qconfig cfg;
        r = qlab_run_layer_config(rc, ov, L->name, &cfg, err);
        if (r < 0)
            goto out;
        if (r == 1) {
            /* FP32 layer: exact, 4 bytes per value. */
            lr->bits = 0;
            lr->bytes = (int64_t)numel * 4 + bias_bytes;
            lr->weight_mse = 0;
            lr->weight_sqnr_db = NAN;
            lr->max_abs_error = 0;
            lr->cosine = 1;
            lr->clip_fraction = 0;
            weight_bytes += (int64_t)numel * 4;
            total_bytes += lr->bytes;
            r = 0;
            continue;
        }
        wq[i] = malloc(numel * sizeof(float));
        if (!wq[i]) {
            r = -ENOMEM;
            goto out;
        }
        uint64_t *h = o.hist_counts + hi * (size_t)hist_bins;
        qlab_metrics mt = { .nbins = hist_bins, .hist = h, .hist_lo = 0, .hist_hi = 0 };
        r = qlab_fake_quant(L->weight->f32, (size_t)L->rows, (size_t)L->cols, &cfg, wq[i], NULL,
                            &mt);
        if (r < 0) {
            qlab_err_set(err, r, "layer %s (tensor %s): %s%s", L->name, L->weight->name,
                         r == -EDOM ? "weights hold NaN or Inf" : "cannot quantize weights: ",
                         r == -EDOM ? "" : strerror(-r));
            goto out;
        }
        size_t qb = qlab_quant_bytes((size_t)L->rows, (size_t)L->cols, &cfg);
        lr->bits = cfg.bits;
        lr->scheme = cfg.scheme;
        lr->granularity = cfg.granularity;
        lr->group_size = cfg.granularity == QLAB_GRAN_GROUP ? cfg.group_size : 0;
        lr->bytes = (int64_t)qb + bias_bytes;
        lr->weight_mse = mt.mse;
        lr->weight_sqnr_db = nan_if_inf(mt.sqnr_db);
        lr->max_abs_error = mt.max_abs_error;
        lr->cosine = mt.cosine;
        lr->clip_fraction = mt.clip_fraction;
        weight_bytes += (int64_t)qb;
        total_bytes += lr->bytes;
        sum_err2 += mt.mse * (double)mt.n;
        nq += (double)mt.n;
        for (size_t k = 0; k < numel; k++)
            sum_x2 += (double)L->weight->f32[k] * L->weight->f32[k];
        o.hists[hi] = (qlab_hist_result){ .layer = L->name, .tensor = "weight",
                                          .lo = mt.hist_lo, .hi = mt.hist_hi,
                                          .nbins = hist_bins, .counts = h };
        hi++;
    }

    /* 2. Activations: simulated (fake-quant of each weighted layer's input) unless the run
     * is W8A8 on the integer path. */
    qlab_forward_opts fo = { .weights = (const float *const *)wq };
    snprintf(o.kernel, sizeof(o.kernel), "%s", qlab_cpu_level_name());
    int simulated = 1;   /* weight-only: fake-quantized weights in the FP32 path */
    double accuracy = NAN;
    if (rc->act_bits > 0) {
        r = qlab_act_prepare(ctx, rc, (const float *const *)wq, &act, err);
        if (r < 0)
            goto out;
        r = qlab_act_accuracy(ctx, act, rc, &accuracy, &simulated, o.kernel, sizeof(o.kernel),
                              err);
        if (r < 0)
            goto out;
        qlab_act_hook(act, &fo);
    } else {
        r = qlab_model_accuracy(m, ctx->test, &fo, &accuracy, err);
        if (r < 0)
            goto out;
    }

    /* 3. Per-layer outputs on the fixed batch against FP32. */
    for (size_t i = 0; i < nl; i++) {
        cap[i] = malloc(ctx->ref_n * m->layers[i].out_size * sizeof(float));
        if (!cap[i]) {
            r = -ENOMEM;
            goto out;
        }
    }
    fo.capture = cap;
    r = qlab_model_forward(m, ctx->ref_input, ctx->ref_n, &fo, NULL, err);
    if (r < 0)
        goto out;
    li = 0;
    for (size_t i = 0; i < nl; i++) {
        const qlab_layer *L = &m->layers[i];
        if (!qlab_layer_is_weighted(L))
            continue;
        qlab_layer_result *lr = &o.layers[li++];
        uint64_t *h = o.hist_counts + hi * (size_t)hist_bins;
        qlab_compare c;
        r = qlab_compare_f32(ctx->ref_capture[i], cap[i], ctx->ref_n * L->out_size, hist_bins,
                             h, &c);
        if (r < 0) {
            qlab_err_set(err, r, "layer %s: quantized output holds NaN or Inf", L->name);
            goto out;
        }
        lr->output_sqnr_db = nan_if_inf(c.sqnr_db);
        lr->output_mse = c.mse;
        lr->output_cosine = c.cosine;
        o.hists[hi++] = (qlab_hist_result){ .layer = L->name, .tensor = "output", .lo = c.lo,
                                            .hi = c.hi, .nbins = hist_bins, .counts = h };
    }

    o.res.accuracy = accuracy;
    o.res.weight_bytes = weight_bytes;
    o.res.total_bytes = total_bytes;
    o.res.weight_params = weight_params;
    o.res.sqnr_db = nq > 0 ? (sum_err2 > 0 ? 10.0 * log10(sum_x2 / sum_err2) : 999.0) : NAN;
    o.res.mse = nq > 0 ? sum_err2 / nq : NAN;
    o.res.eval_ms = now_ms() - t0;
    o.res.kernel = o.kernel;
    o.res.simulated = simulated;
    o.res.nlayers = li;
    o.res.layers = o.layers;
    o.res.nhists = hi;
    o.res.hists = o.hists;
    *out = o;
    out->res.kernel = out->kernel;
    memset(&o, 0, sizeof(o));
    r = 0;
out:
    if (ov)
        json_object_put(ov);
    qlab_act_free(act);
    for (size_t i = 0; wq && i < nl; i++)
        free(wq[i]);
    for (size_t i = 0; cap && i < nl; i++)
        free(cap[i]);
    free(wq);
    free(cap);
    qlab_run_output_clear(&o);
    return r;
}
