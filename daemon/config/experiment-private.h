/* experiment-private.h — what the experiment loader's files share. */
#pragma once

#include <stddef.h>

#include "qlab-experiment.h"

/* Where every node of the YAML document is: built by a pass over libyaml's events, so
 * that errors found after libcyaml has loaded the data (and libcyaml's own, whose
 * backtrace positions are those of the last event it read) can name the exact line. */
typedef enum { QLAB_YNODE_SCALAR, QLAB_YNODE_SEQUENCE, QLAB_YNODE_MAPPING } qlab_ynode_kind;

typedef struct qlab_ynode {
    char *path;                 /* "", "model", "model.layers[1].kind", "sweep.bits[0]" */
    qlab_ynode_kind kind;
    int line, col;              /* the value, 1-based */
    int key_line, key_col;      /* its key (mapping fields), else the value's position */
    char *value;                /* scalars: the text */
    int quoted;                 /* scalars: written in quotes */
} qlab_ynode;

typedef struct qlab_ymap {
    qlab_ynode *nodes;          /* in document order */
    size_t n, cap;
} qlab_ymap;

/* Parses buf; a YAML syntax error becomes "file:line:col: message" in err (-EINVAL). */
int qlab_ymap_build(qlab_ymap *m, const char *buf, size_t len, const char *file,
                    qlab_err *err);
void qlab_ymap_free(qlab_ymap *m);
/* First node with this path, or NULL. */
const qlab_ynode *qlab_ymap_find(const qlab_ymap *m, const char *path);
/* First node with this path whose key comes after (line, col), or NULL. */
const qlab_ynode *qlab_ymap_find_after(const qlab_ymap *m, const char *path, int line,
                                       int col);
/* Location of path or of its closest existing parent; 1:1 when nothing matches. */
void qlab_ymap_locate(const qlab_ymap *m, const char *path, int use_key, int *line,
                      int *col);

/* Loads buf with libcyaml into the raw structs (experiment-schema.c) and turns its
 * errors into "file:line:col: message". Also checks every scalar strictly against the
 * schema's type. *raw is freed with qlab_exp_raw_free. */
struct qlab_exp_raw;
int qlab_exp_raw_load(struct qlab_exp_raw **raw, const char *buf, size_t len,
                      const qlab_ymap *map, const char *file, qlab_err *err);
void qlab_exp_raw_free(struct qlab_exp_raw *raw);

/* Raw (as written) experiment: strings where qlab parses the value itself. */
typedef struct qlab_raw_layer {
    int kind;                   /* qlab_layer_kind */
    char *name, *weight, *bias;
    int *stride, *padding, *kernel;
} qlab_raw_layer;

typedef struct qlab_raw_norm {
    float mean, std;
} qlab_raw_norm;

typedef struct qlab_raw_model {
    char *path;
    int *input;
    unsigned input_count;
    qlab_raw_norm *normalize;
    qlab_raw_layer *layers;
    unsigned layers_count;
} qlab_raw_model;

typedef struct qlab_raw_dataset {
    char *dir;
    char *train_images, *train_labels, *test_images, *test_labels;
} qlab_raw_dataset;

typedef struct qlab_raw_calibration {
    int *samples;
    unsigned long long *seed;
} qlab_raw_calibration;

typedef struct qlab_raw_sweep {
    int *bits;                  unsigned bits_count;
    int *scheme;                unsigned scheme_count;
    char **granularity;         unsigned granularity_count;
    char **calibration;         unsigned calibration_count;
    char **activations;         unsigned activations_count;
    char **act_calibration;     unsigned act_calibration_count;
} qlab_raw_sweep;

typedef struct qlab_raw_override {
    char *layer;
    char *bits;                 /* an integer or "fp32" */
    int *scheme;
    char *granularity;
    char *calibration;
} qlab_raw_override;

typedef struct qlab_raw_exclude {
    int *bits;
    int *scheme;
    char *granularity;
    char *calibration;
    char *activations;
    char *act_calibration;
} qlab_raw_exclude;

typedef struct qlab_exp_raw {
    char *name;
    char *description;
    qlab_raw_model *model;
    qlab_raw_dataset *dataset;
    qlab_raw_calibration *calibration;
    qlab_raw_sweep *sweep;
    qlab_raw_override *overrides;   unsigned overrides_count;
    qlab_raw_exclude *exclude;      unsigned exclude_count;
    int *workers;
} qlab_exp_raw;

/* Value checks and conversion of the raw structs into e (experiment-check.c). */
int qlab_exp_build(qlab_experiment *e, const qlab_exp_raw *raw, const qlab_ymap *map,
                   qlab_err *err);

/* Error at a key path: "file:line:col: message" (experiment.c). */
int qlab_exp_errorf(const qlab_ymap *map, const char *file, qlab_err *err, int code,
                    const char *path, int use_key, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Parsers shared by the checks and the expansion; -EINVAL on a bad string. */
int qlab_exp_parse_granularity(const char *s, qlab_qconfig *cfg);
int qlab_exp_parse_calibration(const char *s, qlab_qconfig *cfg);
int qlab_exp_parse_activations(const char *s, int *act_bits);
int qlab_exp_valid_bits(long bits);

/* Canonical spellings (the configuration string's words). */
void qlab_exp_format_granularity(const qlab_qconfig *c, char *buf, size_t size);
void qlab_exp_format_calibration(const qlab_qconfig *c, char *buf, size_t size);
