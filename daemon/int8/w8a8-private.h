/* w8a8-private.h — shared by w8a8.c (plan, integer run, entry point) and w8a8-check.c
 * (per-layer metrics against FP32, and the simulated fake-quant path). */
#pragma once

#include "qlab-int8.h"

/* 1 when layer i is followed by a relu (fused into its requantization). */
int w8a8_fused_relu(const qlab_model *m, size_t i);

/* Output of layer l viewed as c channels x hw pixels (the order the int8 path stores). */
void w8a8_out_shape(const qlab_layer *l, size_t *c, size_t *hw);

/* Metrics of deq against ref (n values); clip fraction at (scale, zp, bits). */
void w8a8_metrics(const float *ref, const float *deq, size_t n, float scale, int32_t zp,
                  int bits, qlab_metrics *mt);

/* Every layer's output for the first s test images (base: forward options or NULL). */
int w8a8_fp32_capture(const qlab_model *m, const qlab_dataset *test, size_t s,
                      const qlab_forward_opts *base, float **cap, qlab_err *err);
void **w8a8_alloc_caps(const qlab_model *m, size_t s, size_t elem);
void w8a8_free_caps(void **cap, size_t n);

/* The layer whose output stands for layer i in the metrics (its fused relu). */
size_t w8a8_metric_src(const qlab_model *m, size_t i);

/* Simulated evaluation: fake-quant weights and activations in the FP32 path. */
int w8a8_eval_simulated(const qlab_model *m, const qlab_dataset *test,
                        const qlab_w8a8_config *cfg, int32_t *pred, qlab_w8a8_result *res,
                        qlab_err *err);
