/* weight-only.c — weight-only quantized evaluation: each weight tensor goes through the
 * core's fused calibrate + quantize-dequantize + metrics pass; activations stay FP32 and
 * the fake-quantized weights replace the originals in the ordinary inference path. */
#include "qlab-model-quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qlab_wo_weights_clear(qlab_wo_weights *w)
{
    if (!w)
        return;
    if (w->weights)
        for (size_t i = 0; i < w->nlayers; i++)
            free(w->weights[i]);
    free(w->weights);
    memset(w, 0, sizeof *w);
}

void qlab_wo_result_clear(qlab_wo_result *res)
{
    if (!res)
        return;
    free(res->layers);
    memset(res, 0, sizeof *res);
}

static const char *quant_errstr(int r)
{
    switch (r) {
    case -EDOM:
        return "NaN or Inf in the weights";
    case -EINVAL:
        return "invalid quantization configuration";
    case -ENOMEM:
        return "out of memory";
    default:
        return "quantization failed";
    }
}

int qlab_weight_only_prepare(const qlab_model *m, const qlab_qconfig *cfg,
                             const qlab_qconfig *const *overrides, qlab_wo_weights *w,
                             qlab_wo_result *res, qlab_err *err)
{
    qlab_wo_weights ww = {.nlayers = m->nlayers};
    qlab_wo_result rr = {0};
    int r = 0;
    ww.weights = calloc(m->nlayers ? m->nlayers : 1, sizeof *ww.weights);
    rr.layers = calloc(m->nlayers ? m->nlayers : 1, sizeof *rr.layers);
    if (!ww.weights || !rr.layers) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (!l->weight)
            continue;
        const qlab_qconfig *c = (overrides && overrides[i]) ? overrides[i] : cfg;
        qlab_wo_layer *lr = &rr.layers[rr.nlayers++];
        lr->layer = i;
        snprintf(lr->name, sizeof lr->name, "%s", l->name);
        lr->rows = (size_t)l->rows;
        lr->cols = (size_t)l->cols;
        lr->params = qlab_layer_params(l);
        lr->bias_bytes = l->bias ? 4 * l->bias->numel : 0;
        rr.fp32_bytes += 4 * lr->params;
        if (!c) {
            lr->weight_bytes = 4 * l->weight->numel;
            rr.bytes += lr->weight_bytes + lr->bias_bytes;
            continue;
        }
        if (qlab_qconfig_validate(c) < 0) {
            r = qlab_err_set(err, -EINVAL, "layer '%s': invalid quantization configuration",
                             l->name);
            goto fail;
        }
        lr->quantized = 1;
        lr->cfg = *c;
        lr->weight_bytes = qlab_quant_bytes(lr->rows, lr->cols, c);
        rr.bytes += lr->weight_bytes + lr->bias_bytes;
        ww.weights[i] = malloc(l->weight->numel * sizeof(float));
        if (!ww.weights[i]) {
            r = -ENOMEM;
            goto fail;
        }
        r = qlab_fake_quant(l->weight->f32, lr->rows, lr->cols, c, ww.weights[i], NULL,
                            &lr->metrics);
        if (r < 0) {
            r = qlab_err_set(err, r, "%s: layer '%s', tensor '%s': %s", m->st->path, l->name,
                             l->weight->name, quant_errstr(r));
            goto fail;
        }
    }
    if (res)
        *res = rr;
    else
        free(rr.layers);
    if (w)
        *w = ww;
    else
        qlab_wo_weights_clear(&ww);
    return 0;
fail:
    qlab_wo_weights_clear(&ww);
    free(rr.layers);
    return r;
}

int qlab_eval_weight_only(const qlab_model *m, const qlab_dataset *ds, const qlab_qconfig *cfg,
                          const qlab_qconfig *const *overrides, qlab_wo_result *res,
                          qlab_err *err)
{
    qlab_wo_weights w;
    qlab_wo_result rr;
    int r = qlab_weight_only_prepare(m, cfg, overrides, &w, &rr, err);
    if (r < 0)
        return r;
    qlab_forward_opts o = {.weights = (const float *const *)w.weights};
    r = qlab_model_predict(m, ds, &o, NULL, &rr.correct, err);
    qlab_wo_weights_clear(&w);
    if (r < 0) {
        qlab_wo_result_clear(&rr);
        return r;
    }
    rr.total = ds->n;
    rr.accuracy = ds->n ? 100.0 * (double)rr.correct / (double)ds->n : 0.0;
    if (res)
        *res = rr;
    else
        qlab_wo_result_clear(&rr);
    return 0;
}
