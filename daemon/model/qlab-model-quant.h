/* qlab-model-quant.h — weight-only quantization of a model: fake-quantized weights,
 * evaluation, per-layer metrics and memory, and export of the quantized model.
 *
 * Configurations per layer: `overrides` (optional) has one entry per layer index
 * (m->nlayers entries, unweighted layers ignored); a NULL entry takes `cfg`. When `cfg`
 * is NULL too, that layer stays FP32 (e.g. quantize one layer at a time). Biases always
 * stay FP32 and count 4 bytes per value (PRODUCT.md §3). */
#pragma once

#include "qlab-model.h"
#include "qlab-quant.h"

typedef struct qlab_wo_layer {
    size_t layer;               /* index in m->layers */
    char name[64];
    int quantized;              /* 0: kept FP32 */
    qlab_qconfig cfg;           /* valid when quantized */
    size_t rows, cols;          /* weight as [out, in * kh * kw] */
    size_t params;              /* weight + bias values */
    size_t weight_bytes;        /* qlab_quant_bytes, or 4 per value when FP32 */
    size_t bias_bytes;          /* 4 per value */
    qlab_metrics metrics;       /* weight error (hist NULL); zero when FP32 */
} qlab_wo_layer;

typedef struct qlab_wo_result {
    double accuracy;            /* top-1 in percent */
    size_t correct, total;
    size_t bytes;               /* sum of weight_bytes + bias_bytes */
    size_t fp32_bytes;          /* 4 * all parameters */
    size_t nlayers;             /* weighted layers */
    qlab_wo_layer *layers;
} qlab_wo_result;

/* The fake-quantized weights: weights[i] is NULL for unweighted or FP32 layers, else a
 * malloc'd copy of layer i's weight after quantize-dequantize. Pass `weights` as
 * qlab_forward_opts.weights. */
typedef struct qlab_wo_weights {
    size_t nlayers;
    float **weights;
} qlab_wo_weights;

/* Fake-quantizes every weighted layer's weight with qlab_fake_quant (fused metrics). res
 * (optional) receives per-layer metrics and bytes (accuracy fields left 0). Errors name
 * the layer and tensor. */
int qlab_weight_only_prepare(const qlab_model *m, const qlab_qconfig *cfg,
                             const qlab_qconfig *const *overrides, qlab_wo_weights *w,
                             qlab_wo_result *res, qlab_err *err);
void qlab_wo_weights_clear(qlab_wo_weights *w);

/* prepare + accuracy over all of ds (FP32 activations, same inference path). */
int qlab_eval_weight_only(const qlab_model *m, const qlab_dataset *ds, const qlab_qconfig *cfg,
                          const qlab_qconfig *const *overrides, qlab_wo_result *res,
                          qlab_err *err);
void qlab_wo_result_clear(qlab_wo_result *res);

/* Writes the weight-only quantized model as safetensors: per quantized layer
 * "<weight>.qcodes" (U8, the packed codes, qlab_pack_codes), "<weight>.scale" (F32, one
 * per block), for asymmetric "<weight>.zero_point" (I8, or I16 for 16 bits); biases and
 * FP32 layers as F32 under their own names. __metadata__ carries the layer list
 * (qlab.layers, qlab.input, qlab.mean, qlab.std) and per layer "qlab.quant.<weight>" =
 * {"bits","scheme","granularity","group_size","calibration","percentile","shape"}.
 * *data_bytes (optional) = size of the data section = qlab_wo_result.bytes. */
int qlab_model_export_weight_only(const qlab_model *m, const qlab_qconfig *cfg,
                                  const qlab_qconfig *const *overrides, const char *path,
                                  size_t *data_bytes, qlab_err *err);

/* The model's layer list as the JSON qlab.layers metadata string (malloc'd). */
char *qlab_model_layers_json(const qlab_model *m);
