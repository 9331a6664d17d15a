/* experiment-schema.c — the experiment file's libcyaml schema, and libcyaml's errors
 * turned into "file:line:col: message".
 *
 * The schema follows libcyaml's planner example: structs first (experiment-private.h),
 * then `static const` schema with one comment per key; enums through cyaml_strval_t;
 * unknown keys rejected. Values qlab parses itself ("group:32", "percentile:99.9",
 * "fp32") are strings here and are checked in experiment-check.c. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "experiment-private.h"

/* ------------------------------------------------------------------------------------ */
/* Schema                                                                               */
/* ------------------------------------------------------------------------------------ */

static const cyaml_strval_t layer_kind_strings[] = {
    { "linear",    QLAB_LAYER_LINEAR },
    { "conv2d",    QLAB_LAYER_CONV2D },
    { "relu",      QLAB_LAYER_RELU },
    { "maxpool2d", QLAB_LAYER_MAXPOOL2D },
    { "flatten",   QLAB_LAYER_FLATTEN },
};

static const cyaml_strval_t scheme_strings[] = {
    { "symmetric",  QLAB_SCHEME_SYMMETRIC },
    { "asymmetric", QLAB_SCHEME_ASYMMETRIC },
};

#define STR_OPT(key, st, member) \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, st, member, 0, \
                           CYAML_UNLIMITED)

static const cyaml_schema_field_t layer_fields[] = {
    /* kind: what the layer computes (required). */
    CYAML_FIELD_ENUM("kind", CYAML_FLAG_STRICT, qlab_raw_layer, kind, layer_kind_strings,
                     CYAML_ARRAY_LEN(layer_kind_strings)),
    /* name: the layer's name in results and overrides ("fc1"). */
    STR_OPT("name", qlab_raw_layer, name),
    /* weight: tensor name in the safetensors file (default NAME.weight). */
    STR_OPT("weight", qlab_raw_layer, weight),
    /* bias: tensor name (default NAME.bias when the file has it; "" for none). */
    STR_OPT("bias", qlab_raw_layer, bias),
    /* stride: conv2d (default 1) and maxpool2d (default kernel). */
    CYAML_FIELD_INT_PTR("stride", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_layer,
                        stride),
    /* padding: conv2d zero padding on each side (default 0). */
    CYAML_FIELD_INT_PTR("padding", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_layer,
                        padding),
    /* kernel: maxpool2d window (required for maxpool2d). */
    CYAML_FIELD_INT_PTR("kernel", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_layer,
                        kernel),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t layer_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, qlab_raw_layer, layer_fields),
};

static const cyaml_schema_field_t norm_fields[] = {
    /* mean: subtracted from pixels scaled to [0, 1]. */
    CYAML_FIELD_FLOAT("mean", CYAML_FLAG_DEFAULT, qlab_raw_norm, mean),
    /* std: then divided by (must be > 0). */
    CYAML_FIELD_FLOAT("std", CYAML_FLAG_DEFAULT, qlab_raw_norm, std),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t int_entry = {
    CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int),
};

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_value_t scheme_entry = {
    CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, int, scheme_strings,
                     CYAML_ARRAY_LEN(scheme_strings)),
};

static const cyaml_schema_field_t model_fields[] = {
    /* path: the .safetensors file, relative to the experiment file (required). */
    CYAML_FIELD_STRING_PTR("path", CYAML_FLAG_POINTER, qlab_raw_model, path, 0,
                           CYAML_UNLIMITED),
    /* input: [channels, height, width] of one sample (default from the file, else
     * [1, 28, 28]). */
    CYAML_FIELD_SEQUENCE("input", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_model,
                         input, &int_entry, 0, CYAML_UNLIMITED),
    /* normalize: {mean, std} applied to inputs (default from the file). */
    CYAML_FIELD_MAPPING_PTR("normalize", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            qlab_raw_model, normalize, norm_fields),
    /* layers: the sequential model, in order (default: the file's __metadata__). */
    CYAML_FIELD_SEQUENCE("layers", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_model,
                         layers, &layer_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t dataset_fields[] = {
    /* dir: folder with Fashion-MNIST's four IDX files (default Debian's). */
    STR_OPT("dir", qlab_raw_dataset, dir),
    /* train_images, train_labels, test_images, test_labels: explicit IDX files. */
    STR_OPT("train_images", qlab_raw_dataset, train_images),
    STR_OPT("train_labels", qlab_raw_dataset, train_labels),
    STR_OPT("test_images", qlab_raw_dataset, test_images),
    STR_OPT("test_labels", qlab_raw_dataset, test_labels),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t calibration_fields[] = {
    /* samples: training images run through the FP32 model to calibrate activations. */
    CYAML_FIELD_INT_PTR("samples", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                        qlab_raw_calibration, samples),
    /* seed: which samples (a fixed seed makes runs reproducible). */
    CYAML_FIELD_UINT_PTR("seed", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         qlab_raw_calibration, seed),
    CYAML_FIELD_END
};

#define SEQ_OPT(key, st, member, entry) \
    CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, st, member, entry, 0, \
                         CYAML_UNLIMITED)

static const cyaml_schema_field_t sweep_fields[] = {
    /* bits: weight bit-widths, each 2..8 or 16 (required). */
    CYAML_FIELD_SEQUENCE("bits", CYAML_FLAG_POINTER, qlab_raw_sweep, bits, &int_entry, 0,
                         CYAML_UNLIMITED),
    /* scheme: symmetric and/or asymmetric (default [symmetric]). */
    SEQ_OPT("scheme", qlab_raw_sweep, scheme, &scheme_entry),
    /* granularity: tensor, channel, group:G (default [tensor]). */
    SEQ_OPT("granularity", qlab_raw_sweep, granularity, &string_entry),
    /* calibration: minmax, percentile:P, mse, entropy (default [minmax]). */
    SEQ_OPT("calibration", qlab_raw_sweep, calibration, &string_entry),
    /* activations: fp32 (weight-only) or intN (default [fp32]). */
    SEQ_OPT("activations", qlab_raw_sweep, activations, &string_entry),
    /* act_calibration: calibrations for integer activations (default [minmax]). */
    SEQ_OPT("act_calibration", qlab_raw_sweep, act_calibration, &string_entry),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t override_fields[] = {
    /* layer: name of a weighted layer (required). */
    CYAML_FIELD_STRING_PTR("layer", CYAML_FLAG_POINTER, qlab_raw_override, layer, 0,
                           CYAML_UNLIMITED),
    /* bits: fixed bit-width for this layer, or fp32 to keep it unquantized. */
    STR_OPT("bits", qlab_raw_override, bits),
    /* scheme, granularity, calibration: fixed for this layer. */
    CYAML_FIELD_ENUM_PTR("scheme", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                         qlab_raw_override, scheme, scheme_strings,
                         CYAML_ARRAY_LEN(scheme_strings)),
    STR_OPT("granularity", qlab_raw_override, granularity),
    STR_OPT("calibration", qlab_raw_override, calibration),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t override_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, qlab_raw_override, override_fields),
};

static const cyaml_schema_field_t exclude_fields[] = {
    /* A run matching every key given here is left out of the sweep. */
    CYAML_FIELD_INT_PTR("bits", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_raw_exclude,
                        bits),
    CYAML_FIELD_ENUM_PTR("scheme", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                         qlab_raw_exclude, scheme, scheme_strings,
                         CYAML_ARRAY_LEN(scheme_strings)),
    STR_OPT("granularity", qlab_raw_exclude, granularity),
    STR_OPT("calibration", qlab_raw_exclude, calibration),
    STR_OPT("activations", qlab_raw_exclude, activations),
    STR_OPT("act_calibration", qlab_raw_exclude, act_calibration),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t exclude_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, qlab_raw_exclude, exclude_fields),
};

static const cyaml_schema_field_t experiment_fields[] = {
    /* name: shown by `qlab list` and the GUI (required). */
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, qlab_exp_raw, name, 0,
                           CYAML_UNLIMITED),
    /* description: free text for the reader. */
    STR_OPT("description", qlab_exp_raw, description),
    /* model: the model file and its layers (required). */
    CYAML_FIELD_MAPPING_PTR("model", CYAML_FLAG_POINTER, qlab_exp_raw, model, model_fields),
    /* dataset: where the images are (default Debian's Fashion-MNIST). */
    CYAML_FIELD_MAPPING_PTR("dataset", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_exp_raw,
                            dataset, dataset_fields),
    /* calibration: sample count and seed for activation statistics. */
    CYAML_FIELD_MAPPING_PTR("calibration", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            qlab_exp_raw, calibration, calibration_fields),
    /* sweep: the axes whose product is the set of runs (required). */
    CYAML_FIELD_MAPPING_PTR("sweep", CYAML_FLAG_POINTER, qlab_exp_raw, sweep, sweep_fields),
    /* overrides: per-layer settings applied to every run. */
    SEQ_OPT("overrides", qlab_exp_raw, overrides, &override_schema),
    /* exclude: combinations left out of the grid. */
    SEQ_OPT("exclude", qlab_exp_raw, exclude, &exclude_schema),
    /* workers: parallel runs (default: one per core). */
    CYAML_FIELD_INT_PTR("workers", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, qlab_exp_raw,
                        workers),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t experiment_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, qlab_exp_raw, experiment_fields),
};

/* ------------------------------------------------------------------------------------ */
/* Schema walk: which schema value a path like "model.layers[1].kind" names            */
/* ------------------------------------------------------------------------------------ */

static const cyaml_schema_value_t *schema_at(const char *path)
{
    const cyaml_schema_value_t *v = &experiment_schema;
    const char *p = path;
    while (*p) {
        if (*p == '[') {
            if (v->type != CYAML_SEQUENCE)
                return NULL;
            v = v->sequence.entry;
            p = strchr(p, ']');
            if (!p)
                return NULL;
            p++;
            continue;
        }
        if (*p == '.')
            p++;
        size_t len = strcspn(p, ".[");
        if (v->type != CYAML_MAPPING)
            return NULL;
        const cyaml_schema_field_t *f = v->mapping.fields;
        while (f->key && (strlen(f->key) != len || strncmp(f->key, p, len) != 0))
            f++;
        if (!f->key)
            return NULL;
        v = &f->value;
        p += len;
    }
    return v;
}

/* "a, b, c": the keys of a mapping or the words of an enum. */
static void list_words(const cyaml_schema_value_t *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (v && v->type == CYAML_MAPPING) {
        for (const cyaml_schema_field_t *f = v->mapping.fields; f->key; f++)
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
                                     used ? ", " : "", f->key);
    } else if (v && v->type == CYAML_ENUM) {
        for (uint32_t i = 0; i < v->enumeration.count; i++)
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
                                     used ? ", " : "", v->enumeration.strings[i].str);
    }
}

static const char *last_key(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* The key a value belongs to, for messages: "bits" for "sweep.bits[2]". */
static void key_name(const char *path, char *buf, size_t size)
{
    const char *k = last_key(path);
    size_t len = strcspn(k, "[");
    if (len >= size)
        len = size - 1;
    memcpy(buf, k, len);
    buf[len] = '\0';
}

static const char *type_words(cyaml_type_e t)
{
    switch (t) {
    case CYAML_INT:
    case CYAML_UINT:     return "an integer";
    case CYAML_FLOAT:    return "a number";
    case CYAML_BOOL:     return "true or false";
    case CYAML_STRING:   return "a single value";
    case CYAML_MAPPING:  return "a mapping (key: value lines)";
    case CYAML_SEQUENCE: return "a list";
    default:             return "a value";
    }
}

/* ------------------------------------------------------------------------------------ */
/* libcyaml's log, captured and translated                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct log_buf {
    char text[4096];
    size_t len;
} log_buf;

/* libcyaml's log: kept (ERROR level only) for translate(); never printed. */
__attribute__((format(printf, 3, 0)))
static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    log_buf *lb = ctx;
    if (level < CYAML_LOG_ERROR || lb->len >= sizeof lb->text - 1)
        return;
    int w = vsnprintf(lb->text + lb->len, sizeof lb->text - lb->len, fmt, args);
    if (w > 0)
        lb->len += (size_t)w < sizeof lb->text - lb->len ? (size_t)w
                                                         : sizeof lb->text - lb->len - 1;
}

typedef struct bt_frame {
    char field[64];             /* "" for "in mapping" / entries */
    int entry;                  /* sequence entry, 1-based; 0 otherwise */
    int line, col;
} bt_frame;

/* Message line ("Load: " stripped) and backtrace frames, innermost first. */
static int parse_log(const char *text, char *msg, size_t msg_size, bt_frame *frames,
                     int max_frames)
{
    int n = 0;
    msg[0] = '\0';
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        size_t keep = len < sizeof line ? len : sizeof line - 1;
        memcpy(line, p, keep);
        line[keep] = '\0';
        bt_frame f = { 0 };
        if (strncmp(line, "Load: ", 6) == 0) {
            if (!msg[0] && strcmp(line + 6, "Backtrace:") != 0)
                snprintf(msg, msg_size, "%s", line + 6);
        } else if (sscanf(line, "  in mapping field '%63[^']' (line: %d, column: %d)",
                          f.field, &f.line, &f.col) == 3 ||
                   sscanf(line, "  in sequence entry '%d' (line: %d, column: %d)", &f.entry,
                          &f.line, &f.col) == 3 ||
                   sscanf(line, "  in mapping (line: %d, column: %d)", &f.line, &f.col) == 2 ||
                   sscanf(line, "  in sequence (line: %d, column: %d)", &f.line, &f.col) == 2) {
            if (n < max_frames)
                frames[n++] = f;
        }
        p += len + (eol ? 1 : 0);
    }
    return n;
}

/* Path of frames[from..n) (outermost last in the array). */
static void frames_path(const bt_frame *frames, int n, int from, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= from; i--) {
        if (frames[i].field[0])
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
                                     used ? "." : "", frames[i].field);
        else if (frames[i].entry > 0)
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "[%d]",
                                     frames[i].entry - 1);
    }
}

static int strict_integer(const char *s);

static int translate(const char *text, const qlab_ymap *map, const char *file, qlab_err *err)
{
    char msg[512], full[256], container[256], child[320], words[256], key[64];
    bt_frame frames[32];
    int n = parse_log(text, msg, sizeof msg, frames, 32);
    int line = n ? frames[0].line : 1, col = n ? frames[0].col : 1;
    frames_path(frames, n, 0, full, sizeof full);
    /* The innermost frame is the field being read (or the one read last) in the mapping
     * where the error is; the container is everything outside it. */
    frames_path(frames, n, n && frames[0].field[0] ? 1 : 0, container, sizeof container);
    const qlab_ynode *node;
    const char *arg;

    if ((arg = strstr(msg, "Unexpected key: ")) || (arg = strstr(msg, "already seen: "))) {
        int dup = msg[0] == 'M';
        arg = strchr(arg, ':') + 2;
        snprintf(child, sizeof child, "%s%s%s", container, container[0] ? "." : "", arg);
        node = qlab_ymap_find_after(map, child, line, col);
        if (!node)
            node = qlab_ymap_find(map, child);
        if (node) {
            line = node->key_line;
            col = node->key_col;
        }
        if (dup)
            return qlab_err_set(err, -EINVAL, "%s:%d:%d: duplicate key '%s'", file, line, col,
                                arg);
        list_words(schema_at(container), words, sizeof words);
        return qlab_err_set(err, -EINVAL, "%s:%d:%d: unknown key '%s' (expected one of: %s)",
                            file, line, col, arg, words);
    }
    if ((arg = strstr(msg, "Missing required mapping field: "))) {
        arg += strlen("Missing required mapping field: ");
        node = qlab_ymap_find(map, container);
        if (node) {
            line = node->key_line;
            col = node->key_col;
        }
        if (container[0])
            return qlab_err_set(err, -EINVAL, "%s:%d:%d: missing required key '%s' in %s",
                                file, line, col, arg, container);
        return qlab_err_set(err, -EINVAL, "%s:%d:%d: missing required key '%s'", file, line,
                            col, arg);
    }
    node = qlab_ymap_find(map, full);
    if (node) {
        line = node->line;
        col = node->col;
    }
    key_name(full, key, sizeof key);
    const cyaml_schema_value_t *v = schema_at(full);
    if (strncmp(msg, "Invalid ", 8) == 0 && node && node->value) {
        if (v && v->type == CYAML_ENUM) {
            list_words(v, words, sizeof words);
            return qlab_err_set(err, -EINVAL, "%s:%d:%d: unknown %s '%s' (expected one of: %s)",
                                file, line, col, key, node->value, words);
        }
        if (v && (v->type == CYAML_INT || v->type == CYAML_UINT) &&
            strict_integer(node->value))
            return qlab_err_set(err, -ERANGE, "%s:%d:%d: %s %s is out of range", file, line,
                                col, key, node->value);
        return qlab_err_set(err, -EINVAL, "%s:%d:%d: %s must be %s, not '%s'", file, line, col,
                            key, v ? type_words(v->type) : "a value", node->value);
    }
    if (strncmp(msg, "Expecting ", 10) == 0 && node) {
        const char *got = node->kind == QLAB_YNODE_SEQUENCE ? "a list"
                          : node->kind == QLAB_YNODE_MAPPING ? "a mapping"
                                                             : "a single value";
        return qlab_err_set(err, -EINVAL, "%s:%d:%d: %s must be %s, not %s", file, line, col,
                            key, v ? type_words(v->type) : "a value", got);
    }
    /* Anything else: libcyaml's own words, at its position. */
    if (msg[0])
        msg[0] = (char)tolower((unsigned char)msg[0]);
    return qlab_err_set(err, -EINVAL, "%s:%d:%d: %s", file, line, col,
                        msg[0] ? msg : "invalid experiment file");
}

/* ------------------------------------------------------------------------------------ */
/* Strict scalars: libcyaml 1.3.1 reads "3abc" as 3 and "2.5" as 2                      */
/* ------------------------------------------------------------------------------------ */

static int strict_integer(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == '\0';
}

static int strict_number(const char *s)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return 0;
    double d = strtod(s, &end);
    return *end == '\0' && isfinite(d);
}

static int check_scalars(const qlab_ymap *map, const char *file, qlab_err *err)
{
    char key[64];
    for (size_t i = 0; i < map->n; i++) {
        const qlab_ynode *n = &map->nodes[i];
        if (n->kind != QLAB_YNODE_SCALAR)
            continue;
        const cyaml_schema_value_t *v = schema_at(n->path);
        if (!v)
            continue;
        int ok = 1;
        if (v->type == CYAML_INT || v->type == CYAML_UINT)
            ok = !n->quoted && strict_integer(n->value) &&
                 !(v->type == CYAML_UINT && n->value[0] == '-');
        else if (v->type == CYAML_FLOAT)
            ok = !n->quoted && strict_number(n->value);
        if (!ok) {
            key_name(n->path, key, sizeof key);
            return qlab_err_set(err, -EINVAL, "%s:%d:%d: %s must be %s, not '%s'%s", file,
                                n->line, n->col, key,
                                v->type == CYAML_FLOAT ? "a number"
                                : v->type == CYAML_UINT ? "a non-negative integer"
                                                        : "an integer",
                                n->value, n->quoted ? " (a quoted string)" : "");
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */

static const cyaml_config_t base_config = {
    .log_level = CYAML_LOG_ERROR,
    .mem_fn = cyaml_mem,
    .flags = CYAML_CFG_NO_ALIAS,
};

int qlab_exp_raw_load(qlab_exp_raw **out, const char *buf, size_t len, const qlab_ymap *map,
                      const char *file, qlab_err *err)
{
    log_buf lb = { .len = 0 };
    cyaml_config_t cfg = base_config;
    cfg.log_fn = capture_log;
    cfg.log_ctx = &lb;
    lb.text[0] = '\0';
    qlab_exp_raw *raw = NULL;
    if (map->n == 0 || map->nodes[0].kind != QLAB_YNODE_MAPPING)
        return qlab_err_set(err, -EINVAL, "%s:%d:%d: an experiment file is a mapping of keys "
                            "(name, model, sweep, ...)", file,
                            map->n ? map->nodes[0].line : 1, map->n ? map->nodes[0].col : 1);
    cyaml_err_t e = cyaml_load_data((const uint8_t *)buf, len, &cfg, &experiment_schema,
                                    (cyaml_data_t **)&raw, NULL);
    if (e != CYAML_OK) {
        if (e == CYAML_ERR_OOM)
            return qlab_err_set(err, -ENOMEM, "%s: out of memory", file);
        return translate(lb.text, map, file, err);
    }
    int r = check_scalars(map, file, err);
    if (r < 0) {
        qlab_exp_raw_free(raw);
        return r;
    }
    *out = raw;
    return 0;
}

void qlab_exp_raw_free(qlab_exp_raw *raw)
{
    if (raw)
        cyaml_free(&base_config, &experiment_schema, raw, 0);
}
