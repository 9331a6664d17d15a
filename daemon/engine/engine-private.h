/* engine-private.h — what the engine's files share. */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "qlab-engine.h"
#include "qlab-model.h"
#include "qlab-quant.h"
#include "qlab-store.h"

/* ---- compare.c ---------------------------------------------------------------------- */

typedef struct qlab_compare {
    size_t n;
    double mse, sqnr_db, cosine, max_abs_error;
    double lo, hi;               /* histogram range: [-max_abs_error, max_abs_error] */
} qlab_compare;

/* Metrics of got against ref; when nbins > 0, hist receives the histogram of got - ref.
 * -EDOM when got holds NaN or Inf. */
int qlab_compare_f32(const float *ref, const float *got, size_t n, int nbins, uint64_t *hist,
                     qlab_compare *out);

#define QLAB_REF_BATCH 256

/* ---- context.c: what an experiment's runs share ---------------------------------------- */

struct qlab_act_stats;

typedef struct qlab_exp_ctx {
    int64_t experiment_id;
    pthread_mutex_t mu;          /* guards lazy parts (activation statistics) */
    int refs;

    char *name;
    qlab_model *model;
    qlab_dataset *test;
    char *train_images, *train_labels;   /* for activation calibration */
    int calib_samples;
    uint64_t calib_seed;

    double fp32_accuracy;
    int64_t fp32_bytes;
    char model_sha256[65];

    /* Fixed batch: the first ref_n test images, normalised, and the FP32 output of every
     * layer on it (capture[i]: ref_n * layers[i].out_size floats). */
    size_t ref_n;
    float *ref_input;
    float **ref_capture;

    struct qlab_act_stats *act;  /* activation statistics, collected on first need (mu) */
    int act_error;               /* the collection's error, so it is not retried per run */
} qlab_exp_ctx;

/* Builds the context of a stored experiment (loads its YAML again from the store, so a
 * restarted daemon can resume). Measures the FP32 baseline on first build and records it. */
int qlab_exp_ctx_new(qlab_exp_ctx **out, qlab_store *store, int64_t experiment_id,
                     qlab_err *err);
void qlab_exp_ctx_free(qlab_exp_ctx *c);

/* ---- run.c: one point of the sweep -------------------------------------------------- */

typedef struct qlab_run_output {
    qlab_run_result res;         /* points into the arrays below */
    qlab_layer_result *layers;
    qlab_hist_result *hists;
    uint64_t *hist_counts;       /* nhists * nbins */
    char kernel[16];
} qlab_run_output;

int qlab_run_eval(qlab_exp_ctx *ctx, const qlab_run_config *rc, int hist_bins,
                  qlab_run_output *out, qlab_err *err);
void qlab_run_output_clear(qlab_run_output *o);

/* The configuration of one layer: the run's, changed by the run's overrides (parsed
 * JSON, may be NULL) for that layer. Returns 1 when the layer stays FP32, 0 when *cfg is
 * to be applied, < 0 on a bad override. */
struct json_object;
int qlab_run_layer_config(const qlab_run_config *rc, struct json_object *ov, const char *layer,
                          qlab_qconfig *cfg, qlab_err *err);

/* "4b asym group:32 mse", "8b sym channel minmax a8 minmax" */
void qlab_run_label(const qlab_run_config *rc, char *buf, size_t len);
