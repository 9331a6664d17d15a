/* qlab-store.h — the SQLite results database (PRODUCT.md §6; schema in schema.sql).
 *
 * One writer (qlabd or `qlab run`) opens the file read-write: WAL mode, foreign keys on,
 * busy_timeout, and PRAGMA user_version migrations applied. Readers (the CLI, the GUI)
 * open it with QLAB_STORE_READONLY and see one consistent snapshot per call.
 *
 * Every write call is exactly one transaction, under the store's mutex, so one qlab_store
 * may be shared by the engine's worker threads. Functions return 0 (or a count where
 * stated) or a negative errno and fill the optional `err` with the SQLite message;
 * -EBUSY when the database stayed locked past the busy timeout, -EIO for other SQLite
 * failures, -ENOENT for a missing experiment or run. Output parameters are written only on
 * success. Nothing here prints.
 *
 * Units: accuracy in percent (0..100), bytes as PRODUCT.md §3 counts them, times as
 * ISO 8601 UTC text. A double that is NULL in the database reads as NAN, an integer as -1.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "qlab-err.h"
#include "qlab-quant.h"

#define QLAB_STORE_SCHEMA_VERSION 1

typedef struct qlab_store qlab_store;
typedef struct sqlite3 sqlite3;

enum {
    QLAB_STORE_READONLY = 1 << 0, /* readers: no migrations, no writes */
};

typedef enum qlab_status {
    QLAB_STATUS_PENDING,
    QLAB_STATUS_RUNNING,
    QLAB_STATUS_DONE,
    QLAB_STATUS_FAILED,
    QLAB_STATUS_CANCELLED,
} qlab_status;

/* "pending", "running", "done", "failed", "cancelled" (the database's words). */
const char *qlab_status_name(qlab_status s);
int qlab_status_parse(const char *s, qlab_status *out);

/* The schema as embedded in the program (the text of schema.sql). */
extern const char qlab_store_schema_sql[];

/* Opens (creating if needed) the database at path. A new or older database is migrated to
 * QLAB_STORE_SCHEMA_VERSION; a newer one is refused (-EPROTONOSUPPORT). READONLY requires
 * an existing database at the current version. */
int qlab_store_open(qlab_store **out, const char *path, unsigned flags, qlab_err *err);
void qlab_store_close(qlab_store *s); /* accepts NULL */
/* The connection, for ad-hoc read queries (e.g. the GUI's). Do not write through it. */
sqlite3 *qlab_store_db(qlab_store *s);

/* ---------------------------------------------------------------------------------- */
/* Runs and experiments as written                                                      */
/* ---------------------------------------------------------------------------------- */

/* One point of a sweep: what the grid expander (qlab-experiment.h) produces and what a
 * worker needs to run it. */
typedef struct qlab_run_config {
    qlab_qconfig weights;    /* bits, scheme, granularity (+ group size), calibration (+ P) */
    int act_bits;            /* 0: FP32 activations; else per-tensor asymmetric act_bits */
    qlab_qconfig act;        /* activations: .calibration and .percentile (when act_bits) */
    char *overrides;         /* JSON object {"fc1": {"bits": 8}, "fc3": "fp32"} or NULL */
    char *config;            /* canonical configuration string (what config_hash hashes) */
    char config_hash[17];    /* 16 lowercase hex digits, FNV-1a 64 of config */
} qlab_run_config;

void qlab_run_config_clear(qlab_run_config *c); /* frees overrides and config */

typedef struct qlab_experiment_new {
    const char *name;
    const char *yaml;        /* file contents, stored verbatim */
    const char *yaml_path;   /* may be NULL */
    const char *config_hash; /* experiment hash (qlab_experiment.config_hash) */
    const char *model_path;
    const char *model_sha256; /* may be NULL: set later with qlab_store_set_baseline */
    const char *dataset;
    int calib_samples;
    uint64_t calib_seed;
    int workers;             /* 0: NULL (one per core) */
    const char *qlab_version; /* NULL: QLAB_VERSION */
    const char *kernel;      /* may be NULL */
} qlab_experiment_new;

/* Inserts the experiment and its n pending runs in one transaction (run seq = index).
 * *experiment_id receives the new id; run_ids (optional, n entries) the runs' ids. Two runs
 * with the same config_hash are an error (-EEXIST): the expander de-duplicates. */
int qlab_store_create_experiment(qlab_store *s, const qlab_experiment_new *e,
                                 const qlab_run_config *runs, size_t n,
                                 int64_t *experiment_id, int64_t *run_ids, qlab_err *err);

/* A claimed run: its ids and configuration (free strings with qlab_run_config_clear). */
typedef struct qlab_claim {
    int64_t run_id;
    int64_t experiment_id;
    int seq;
    int attempts;            /* 1 on the first claim, more after crash-resumes */
    qlab_run_config cfg;
} qlab_claim;

/* Marks the oldest pending run (of experiment_id, or of any experiment when it is 0)
 * 'running' and its experiment 'running'. Returns 1 with *out filled, 0 when nothing is
 * pending. */
int qlab_store_claim_run(qlab_store *s, int64_t experiment_id, qlab_claim *out,
                         qlab_err *err);

/* At daemon start: every 'running' run goes back to 'pending' (its worker died with the
 * previous daemon). Returns the number of runs re-queued. */
int qlab_store_requeue_running(qlab_store *s, qlab_err *err);

/* Per-layer results of a run. Doubles that are NAN are stored as NULL. */
typedef struct qlab_layer_result {
    const char *layer;       /* "fc1" */
    const char *kind;        /* "linear" */
    int position;            /* index in the model */
    int64_t params, bytes;
    int bits;                /* 0: layer kept in FP32 */
    qlab_scheme scheme;      /* when bits > 0 */
    qlab_granularity granularity;
    int group_size;
    double weight_mse, weight_sqnr_db, max_abs_error, cosine, clip_fraction;
    double output_sqnr_db, output_mse, output_cosine;
} qlab_layer_result;

/* An error histogram: nbins counts over [lo, hi]; stored as nbins little-endian u32
 * (counts above UINT32_MAX saturate). tensor: "weight" or "output". */
typedef struct qlab_hist_result {
    const char *layer;
    const char *tensor;
    double lo, hi;
    int nbins;
    const uint64_t *counts;
} qlab_hist_result;

typedef struct qlab_run_result {
    double accuracy;         /* percent */
    int64_t weight_bytes, total_bytes;
    int64_t weight_params;   /* quantizable weights, for bits_per_weight; 0: NULL */
    double sqnr_db, mse, eval_ms;
    const char *kernel;      /* "avx2", "scalar", ... */
    int simulated;           /* 1: fake-quant, 0: integer kernels */
    size_t nlayers;
    const qlab_layer_result *layers;
    size_t nhists;
    const qlab_hist_result *hists;
} qlab_run_result;

/* In one transaction: the run row (accuracy_delta, compression and bits_per_weight
 * derived; the JSON manifest {qlab_version, kernel, model_sha256, calib_seed,
 * calib_samples, config_hash, config} built), its layer_metrics and histograms, and the
 * experiment marked 'done' when no run of it is pending or running any more. On any
 * failure nothing is written. -ESTALE when the run is not 'running'. */
int qlab_store_finish_run(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                          qlab_err *err);

/* running -> failed with the message (the sweep goes on). */
int qlab_store_fail_run(qlab_store *s, int64_t run_id, const char *error, qlab_err *err);

/* The experiment becomes 'cancelled' and its pending runs 'cancelled'; runs already
 * running finish normally. Returns the number of runs cancelled. -EALREADY when the
 * experiment had already ended. */
int qlab_store_cancel_experiment(qlab_store *s, int64_t experiment_id, qlab_err *err);

/* The experiment could not run at all (model unreadable, ...): status 'failed' with the
 * error, pending runs 'cancelled'. */
int qlab_store_fail_experiment(qlab_store *s, int64_t experiment_id, const char *error,
                               qlab_err *err);

/* FP32 baseline, measured once per experiment. sha256/kernel may be NULL (kept). Runs
 * already done get their accuracy_delta and compression (re)computed from it. */
int qlab_store_set_baseline(qlab_store *s, int64_t experiment_id, double fp32_accuracy,
                            int64_t fp32_bytes, const char *model_sha256,
                            const char *kernel, qlab_err *err);

/* ---------------------------------------------------------------------------------- */
/* Queries (CLI, GUI)                                                                   */
/* ---------------------------------------------------------------------------------- */

typedef struct qlab_experiment_row {
    int64_t id;
    char *name, *yaml_path, *config_hash, *model_path, *model_sha256, *dataset;
    char *qlab_version, *kernel, *error;
    char *yaml;              /* only filled by qlab_store_get_experiment */
    qlab_status status;
    char created_at[32], started_at[32], finished_at[32]; /* "" when NULL */
    double fp32_accuracy;
    int64_t fp32_bytes;
    int runs_total, runs_done, runs_failed;
    int runs_pending, runs_running, runs_cancelled;
    int calib_samples;
    int64_t calib_seed;
    int workers;
} qlab_experiment_row;

typedef struct qlab_run_row {
    int64_t id, experiment_id;
    int seq;
    qlab_run_config cfg;
    qlab_status status;
    int attempts;
    double accuracy, accuracy_delta;
    int64_t weight_bytes, total_bytes;
    double compression, bits_per_weight, sqnr_db, mse, eval_ms;
    char kernel[16];
    int simulated;           /* -1 when NULL */
    char started_at[32], finished_at[32];
    char *error;
    char *manifest;
} qlab_run_row;

/* All experiments, newest first. */
int qlab_store_list_experiments(qlab_store *s, qlab_experiment_row **rows, size_t *n,
                                qlab_err *err);
int qlab_store_get_experiment(qlab_store *s, int64_t id, qlab_experiment_row *row,
                              qlab_err *err);
/* Runs of an experiment in grid order; status_filter < 0: all. */
int qlab_store_list_runs(qlab_store *s, int64_t experiment_id, int status_filter,
                         qlab_run_row **rows, size_t *n, qlab_err *err);
/* The frontier view's rows of an experiment, smallest total_bytes first. */
int qlab_store_frontier(qlab_store *s, int64_t experiment_id, qlab_run_row **rows,
                        size_t *n, qlab_err *err);

/* Per-layer metrics of a run, in model order. Doubles that are NULL read as NAN. */
typedef struct qlab_layer_row {
    char layer[64], kind[16];
    int position;
    int64_t params, bytes;
    int bits;                /* 0: layer kept in FP32 */
    char scheme[16], granularity[16]; /* "" for FP32 layers */
    int group_size;          /* 0 unless granularity is "group" */
    double weight_mse, weight_sqnr_db, max_abs_error, cosine, clip_fraction;
    double output_sqnr_db, output_mse, output_cosine;
} qlab_layer_row;

int qlab_store_layer_metrics(qlab_store *s, int64_t run_id, qlab_layer_row **rows, size_t *n,
                             qlab_err *err); /* free(rows) */

/* Error histograms of a run (counts decoded from the little-endian BLOB). */
typedef struct qlab_hist_row {
    char layer[64], tensor[8];
    double lo, hi;
    int nbins;
    uint32_t *counts;
} qlab_hist_row;

int qlab_store_histograms(qlab_store *s, int64_t run_id, qlab_hist_row **rows, size_t *n,
                          qlab_err *err);
void qlab_hist_rows_free(qlab_hist_row *rows, size_t n);

void qlab_experiment_row_clear(qlab_experiment_row *r);
void qlab_experiment_rows_free(qlab_experiment_row *rows, size_t n);
void qlab_run_row_clear(qlab_run_row *r);
void qlab_run_rows_free(qlab_run_row *rows, size_t n);
