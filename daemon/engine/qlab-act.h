/* qlab-act.h — activation quantization for the engine's runs (engine-internal).
 *
 * Statistics of every layer's input are collected once per experiment, from the
 * experiment's calibration images run through the FP32 model (qlab_act_collect of the int8
 * library), the first time a run needs them. From them each run derives per-tensor
 * asymmetric parameters for its activation bit-width and calibration method. W8A8 runs use
 * the integer path when the int8 library provides it; every other width is simulated:
 * each weighted layer's input is fake-quantized with those parameters in the FP32 path.
 */
#pragma once

#include "engine-private.h"

typedef struct qlab_act_sim qlab_act_sim;

/* Collects the statistics if needed (once per context) and computes this run's parameters.
 * wq: the run's fake-quantized weights per layer (NULL entries: FP32). */
int qlab_act_prepare(qlab_exp_ctx *ctx, const qlab_run_config *rc, const float *const *wq,
                     qlab_act_sim **out, qlab_err *err);
/* Accuracy on the whole test set with quantized activations; *simulated tells which path
 * ran and kernel names it. */
int qlab_act_accuracy(qlab_exp_ctx *ctx, qlab_act_sim *a, const qlab_run_config *rc,
                      double *accuracy, int *simulated, char *kernel, size_t kernel_len,
                      qlab_err *err);
/* Installs the simulation hook in fo (for the per-layer output comparison). */
void qlab_act_hook(qlab_act_sim *a, qlab_forward_opts *fo);
void qlab_act_free(qlab_act_sim *a);            /* accepts NULL */
void qlab_act_ctx_free(qlab_exp_ctx *c);        /* frees the context's statistics */
