/* qlab-experiment.h — YAML experiment files (experiments/REFERENCE.md) and grid expansion.
 *
 * Loading is strict: the schema is libcyaml's (unknown keys rejected), scalars must be
 * exactly of their type ("3abc" is not an integer), and qlab then checks values and paths
 * (bits, percentiles, group sizes, that the model file and the tensors its layers name
 * exist, the dataset files). Every error is ONE line `file:line:col: message` in err, the
 * location being the key or value at fault. Relative paths resolve from the YAML file's
 * folder.
 *
 * Configuration hash: a run's canonical configuration string (qlab_run_config.config) is
 *   "bits=B scheme=S granularity=G calibration=C activations=A[ act_calibration=C]
 *    [ overrides=LAYER:SETTING/SETTING,LAYER:...]"
 * with G "tensor" | "channel" | "group:N", C "minmax" | "percentile:P" | "mse" | "entropy"
 * (P printed with %.15g, so 99.90 and 99.9 are the same run), A "fp32" | "intN"; the
 * act_calibration part appears only for integer activations (it means nothing for FP32, so
 * FP32 runs differing only in it are one run). config_hash is FNV-1a 64 of that string as
 * 16 lowercase hex digits. The experiment's hash is FNV-1a 64 over its model path, dataset,
 * calibration samples and seed and every run's configuration string, one per line.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "qlab-err.h"
#include "qlab-model.h"
#include "qlab-quant.h"
#include "qlab-store.h"

#define QLAB_EXPERIMENT_MAX_BYTES (1u << 20) /* YAML files larger than 1 MiB are refused */
#define QLAB_EXPERIMENT_MAX_RUNS  20000      /* runs one experiment may expand to */

/* A per-layer override applied to every run: the layer keeps FP32, or uses these settings
 * instead of the run's. */
typedef struct qlab_exp_override {
    char layer[64];
    int fp32;                     /* 1: this layer stays FP32 */
    int bits;                     /* 0: the run's bits */
    int has_scheme, has_granularity, has_calibration;
    qlab_qconfig cfg;             /* scheme / granularity + group_size / calibration + P */
} qlab_exp_override;

/* A combination left out of the grid: a run is excluded when it matches every field the
 * exclusion sets (the QLAB_EXCL_* bits of `set`). */
enum {
    QLAB_EXCL_BITS = 1 << 0,
    QLAB_EXCL_SCHEME = 1 << 1,
    QLAB_EXCL_GRANULARITY = 1 << 2,
    QLAB_EXCL_CALIBRATION = 1 << 3,
    QLAB_EXCL_ACTIVATIONS = 1 << 4,
    QLAB_EXCL_ACT_CALIBRATION = 1 << 5,
};

typedef struct qlab_exp_exclude {
    unsigned set;
    qlab_qconfig w;               /* bits, scheme, granularity, calibration */
    int act_bits;                 /* 0: fp32 */
    qlab_qconfig act;             /* calibration */
    char key_path[32];            /* "exclude[3]", for error locations */
} qlab_exp_exclude;

typedef struct qlab_experiment {
    char *name;
    char *path;                   /* the YAML file as given (used in messages) */
    char *abs_path;               /* its absolute path (NULL for buffers) */
    char *dir;                    /* folder relative paths resolve from */
    char *yaml;                   /* file contents (NUL-terminated) */
    size_t yaml_len;

    char *model_path;             /* resolved */
    int has_layers;               /* 0: layers, input and normalisation come from the
                                     model's __metadata__ (spec.nlayers == 0) */
    int has_input, has_norm;      /* model.input / model.normalize were given */
    qlab_model_spec spec;         /* layers (owned), input shape, mean/std */

    char *dataset;                /* folder (or NULL when the four files are given) */
    char *train_images, *train_labels, *test_images, *test_labels; /* resolved */

    int calib_samples;            /* default 1000 */
    uint64_t calib_seed;          /* default 0 */
    int workers;                  /* 0: one per core */

    /* Sweep axes, parsed, in file order (duplicates removed by expansion). */
    int *bits;                    size_t n_bits;
    qlab_scheme *schemes;         size_t n_schemes;
    qlab_qconfig *granularities;  size_t n_granularities; /* .granularity, .group_size */
    qlab_qconfig *calibrations;   size_t n_calibrations;  /* .calibration, .percentile */
    int *act_bits;                size_t n_act_bits;      /* 0: fp32 */
    qlab_qconfig *act_calibrations; size_t n_act_calibrations;

    qlab_exp_override *overrides; size_t n_overrides;
    qlab_exp_exclude *excludes;   size_t n_excludes;

    size_t n_runs;                /* after de-duplication and exclusions */
    char config_hash[17];

    void *priv;                   /* key locations (qlab_experiment_locate) */
} qlab_experiment;

/* Reads, validates and expands-to-count the experiment at path. */
int qlab_experiment_load(qlab_experiment **out, const char *path, qlab_err *err);
/* The same from memory (a submitted file): name is used in messages, base_dir resolves
 * relative paths (NULL: the current folder). */
int qlab_experiment_load_buffer(qlab_experiment **out, const char *yaml, size_t len,
                                const char *name, const char *base_dir, qlab_err *err);
void qlab_experiment_free(qlab_experiment *e); /* accepts NULL */

/* The de-duplicated grid, exclusions applied, in order bits > scheme > granularity >
 * calibration > activations > act_calibration (outermost first). runs is malloc'd: free
 * with qlab_run_configs_free. */
int qlab_experiment_expand(const qlab_experiment *e, qlab_run_config **runs, size_t *n,
                           qlab_err *err);
void qlab_run_configs_free(qlab_run_config *runs, size_t n);

/* Line and column (1-based) of a key path such as "model.layers[1].weight" or
 * "sweep.bits[2]": the value's position for sequence entries, the key's for mapping
 * fields. Falls back to the closest existing parent. Returns 0, or -ENOENT (1:1). */
int qlab_experiment_locate(const qlab_experiment *e, const char *key_path, int *line,
                           int *col);
/* Fills err with "file:line:col: message" located at key_path (for errors found later,
 * e.g. by the engine when it loads the model); returns code. */
int qlab_experiment_error(const qlab_experiment *e, qlab_err *err, int code,
                          const char *key_path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Fills n for qlab_store_create_experiment (pointers into e: keep e alive meanwhile).
 * qlab_version and kernel are left NULL. */
void qlab_experiment_to_new(const qlab_experiment *e, qlab_experiment_new *n);

/* FNV-1a 64 of n bytes. */
uint64_t qlab_fnv1a64(const void *data, size_t n);
