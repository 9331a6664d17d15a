/* qlab-results.h — read-only queries on the results database (PRODUCT §6) for the plot
 * views: experiments, the finished runs of one experiment as plot points, and one run's
 * details, per-layer metrics and error histograms. Plain SQLite, no toolkit: qlab-gui calls
 * these from worker threads, `qlab plot` from main(). Each function uses the connection it
 * is given from one thread at a time. */
#pragma once

#include <sqlite3.h>
#include <stdint.h>

#include "qlab-err.h"
#include "qlab-plot.h"

typedef struct qlab_results_exp {
    int64_t id;
    char *name;
    char *status;
    int64_t runs_total, runs_done, runs_failed;
    double fp32_accuracy; /* fraction 0..1 (the database's percent / 100); NaN: not measured */
    double fp32_bytes; /* 0 when unknown */
} qlab_results_exp;

typedef struct qlab_results_layer {
    char *layer, *kind;
    int64_t params, bytes;
    int bits; /* 0: kept in FP32 */
    double weight_sqnr_db, output_sqnr_db, weight_mse, max_abs_error, cosine, clip_fraction;
} qlab_results_layer;

typedef struct qlab_results_hist {
    char *layer;
    char *tensor; /* "weight" or "output" */
    double lo, hi;
    size_t nbins;
    uint32_t *counts;
} qlab_results_hist;

typedef struct qlab_results_run {
    int64_t id;
    char *summary; /* "key: value" lines: configuration, accuracy ("86.57%"), accuracy_delta
                    * ("-1.59 pp"), bytes, kernel, ... */
    char *manifest; /* JSON text or NULL */
    qlab_results_layer *layers; /* in model order */
    size_t n_layers;
    qlab_results_hist *hists; /* in model order, weight before output */
    size_t n_hists;
} qlab_results_run;

/* Opens path read-only (never creates it) with a busy timeout. */
int qlab_results_open(const char *path, sqlite3 **out, qlab_err *err);
/* PRAGMA data_version: changes when another connection commits. */
int qlab_results_data_version(sqlite3 *db, int64_t *version);

int qlab_results_experiments(sqlite3 *db, qlab_results_exp **rows, size_t *n, qlab_err *err);
void qlab_results_exps_free(qlab_results_exp *rows, size_t n);
/* One experiment as a row; -ENOENT when there is no such id. */
int qlab_results_experiment(sqlite3 *db, int64_t id, qlab_results_exp *row, qlab_err *err);

/* The done runs with an accuracy, all flagged visible, plus the FP32 baseline and title.
 * The database stores accuracy in percent; points and baseline come back as fractions
 * (qlab_plot_point.accuracy, 0..1). out is cleared first; normalise it before drawing. */
int qlab_results_load_runs(sqlite3 *db, int64_t experiment_id, qlab_plot_data *out, qlab_err *err);

/* The experiment a run belongs to; -ENOENT when there is no such run. */
int qlab_results_run_experiment(sqlite3 *db, int64_t run_id, int64_t *experiment_id,
                                qlab_err *err);
int qlab_results_run_detail(sqlite3 *db, int64_t run_id, qlab_results_run *out, qlab_err *err);
void qlab_results_run_clear(qlab_results_run *d);
