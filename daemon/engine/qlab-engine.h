/* qlab-engine.h — the experiment engine: a YAML experiment in, a database of runs out.
 *
 * The engine owns no state that is not in the database: an experiment's pending runs live
 * in the `runs` table, and workers claim them one at a time (qlab_store_claim_run). So a
 * daemon killed at any point resumes where it stopped: runs that were 'running' go back to
 * 'pending' at start (qlab_store_requeue_running), finished runs are never redone (each is
 * written in one transaction), and the UNIQUE(experiment_id, config_hash) constraint keeps
 * every configuration once.
 *
 * Per experiment the engine loads the model and the test set once, measures the FP32
 * baseline once, keeps the FP32 outputs of every layer on a fixed batch of test images
 * (for the per-layer output metrics of every run), and collects activation statistics once
 * when some run quantizes activations.
 */
#pragma once

#include <stdint.h>

#include "qlab-err.h"
#include "qlab-store.h"

typedef struct qlab_engine qlab_engine;

typedef enum qlab_engine_event_type {
    QLAB_EV_EXPERIMENT_STARTED,  /* baseline measured, runs about to start */
    QLAB_EV_RUN_STARTED,
    QLAB_EV_RUN_FINISHED,
    QLAB_EV_RUN_FAILED,
    QLAB_EV_EXPERIMENT_FINISHED, /* no run pending or running (done, failed or cancelled) */
    QLAB_EV_LOG,                 /* a line for the daemon's log (message) */
} qlab_engine_event_type;

typedef struct qlab_engine_event {
    qlab_engine_event_type type;
    int64_t experiment_id;
    int64_t run_id;              /* run events */
    int runs_done, runs_total;   /* of the experiment, after this event */
    double accuracy;             /* run finished: percent; experiment started: FP32 */
    int64_t total_bytes;         /* run finished: bytes; experiment started: FP32 bytes */
    int bits, act_bits;
    int status;                  /* experiment finished: its qlab_status */
    double eval_ms;
    char label[96];              /* run: "4b asym group:32 mse"; experiment: its name */
    char message[QLAB_ERR_MSG_MAX]; /* failures and logs */
} qlab_engine_event;

/* Called from the engine's worker threads: must be thread-safe and quick. */
typedef void (*qlab_engine_event_fn)(void *ctx, const qlab_engine_event *ev);

typedef struct qlab_engine_opts {
    int workers;                 /* <= 0: one per online core */
    qlab_engine_event_fn on_event;      /* may be NULL */
    void *event_ctx;
    int ref_batch;               /* test images for per-layer output metrics; 0: 256 */
    int hist_bins;               /* error histogram bins; 0: 64 */
    int only_own;                /* 1: run only experiments submitted through this engine
                                    (`qlab run` beside a daemon); 0: every pending run */
} qlab_engine_opts;

/* The engine writes through `store` (it must outlive the engine). Workers start at once
 * and serve every experiment with pending runs, oldest first. */
int qlab_engine_new(qlab_engine **out, qlab_store *store, const qlab_engine_opts *opts,
                    qlab_err *err);
/* Stops after the runs in progress finish (they are written), joins the workers. */
void qlab_engine_free(qlab_engine *e);

/* Loads and checks the experiment file (errors as "file:line:col: message"), expands the
 * sweep and stores the experiment with all its runs pending. The workers pick it up. */
int qlab_engine_submit_file(qlab_engine *e, const char *path, int64_t *experiment_id,
                            qlab_err *err);
/* The same for YAML text; relative paths in it resolve against base_dir (NULL: cwd);
 * `name_for_errors` is what error lines start with. */
int qlab_engine_submit_text(qlab_engine *e, const char *yaml, size_t len, const char *base_dir,
                            const char *name_for_errors, int64_t *experiment_id,
                            qlab_err *err);

/* Pending runs of the experiment are cancelled; running ones finish. */
int qlab_engine_cancel(qlab_engine *e, int64_t experiment_id, qlab_err *err);

/* Blocks until the experiment has no pending or running run (0), or the engine stops
 * (-ECANCELED). experiment_id 0: until no experiment has work. */
int qlab_engine_wait(qlab_engine *e, int64_t experiment_id);

/* Wakes the workers (after runs were requeued or added behind the engine's back). */
void qlab_engine_kick(qlab_engine *e);

/* Writes the weights of a finished run as a quantized safetensors model (packed codes,
 * scales, zero points, FP32 biases; the layer list and each layer's configuration in
 * __metadata__). *data_bytes (optional) receives the size of its data section, which
 * equals the run's total_bytes: the memory qlab reports is what it writes. Activation
 * parameters of W8A8 runs are not exported. */
int qlab_engine_export_run(qlab_store *store, int64_t run_id, const char *path,
                           size_t *data_bytes, int64_t *total_bytes, qlab_err *err);
