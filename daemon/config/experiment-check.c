/* experiment-check.c — qlab's own checks of a loaded experiment, and the conversion of
 * the raw (as written) structs into qlab_experiment.
 *
 * Checks run in file order of the keys (name, model, dataset, calibration, sweep,
 * overrides, exclude, workers) so that the first error a user sees is the first one in
 * the file. Each error is located with the position map. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment-private.h"
#include "qlab-model.h"
#include "qlab-config.h"

#define MAX_CALIB_SAMPLES 60000 /* Fashion-MNIST's training set */
#define MAX_WORKERS 256
#define MAX_HEADER (100u << 20) /* safetensors header JSON, as huggingface's reader */

typedef struct ctx {
    qlab_experiment *e;
    const qlab_ymap *map;
    const char *file;
    qlab_err *err;
    json_object *header;        /* the model's safetensors header, when readable */
    const char *model_as_written;
} ctx;

#define FAIL(c, path, ...) qlab_exp_errorf((c)->map, (c)->file, (c)->err, -EINVAL, path, 0, \
                                           __VA_ARGS__)
#define FAIL_KEY(c, path, ...) qlab_exp_errorf((c)->map, (c)->file, (c)->err, -EINVAL, path, \
                                               1, __VA_ARGS__)

static char *resolve(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || !dir || !dir[0])
        return strdup(p);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

static int oom(ctx *c)
{
    return qlab_err_set(c->err, -ENOMEM, "%s: out of memory", c->file);
}

/* Reads the JSON header of a safetensors file (u64 little-endian length, then JSON). */
static int read_header(const char *path, json_object **out, const char **why)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    *why = NULL;
    if (!f)
        return -errno;
    if (fread(len8, 1, 8, f) != 8) {
        fclose(f);
        *why = "too short for a safetensors file";
        return -EINVAL;
    }
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | len8[i];
    if (len == 0 || len > MAX_HEADER) {
        fclose(f);
        *why = "not a safetensors file (bad header length)";
        return -EINVAL;
    }
    char *buf = malloc(len + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    buf[got] = '\0';
    json_object *j = got == len ? json_tokener_parse(buf) : NULL;
    free(buf);
    if (!j || !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        *why = "not a safetensors file (bad JSON header)";
        return -EINVAL;
    }
    *out = j;
    return 0;
}

static int has_tensor(const ctx *c, const char *name)
{
    json_object *t;
    return !c->header || (strcmp(name, "__metadata__") != 0 &&
                          json_object_object_get_ex(c->header, name, &t));
}

static const char *meta(const ctx *c, const char *key)
{
    json_object *m, *v;
    if (!c->header || !json_object_object_get_ex(c->header, "__metadata__", &m) ||
        !json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int check_int(ctx *c, const char *path, const int *v, int lo, int hi, int def,
                     int *out)
{
    if (!v) {
        *out = def;
        return 0;
    }
    if (*v < lo || *v > hi)
        return FAIL(c, path, "%s must be between %d and %d, not %d",
                    strrchr(path, '.') ? strrchr(path, '.') + 1 : path, lo, hi, *v);
    *out = *v;
    return 0;
}

static int build_layer(ctx *c, const qlab_raw_layer *rl, size_t i, qlab_layer_spec *ls)
{
    char p[96];
    int weighted = rl->kind == QLAB_LAYER_LINEAR || rl->kind == QLAB_LAYER_CONV2D;
    memset(ls, 0, sizeof *ls);
    ls->kind = (qlab_layer_kind)rl->kind;
    const char *kind = rl->kind == QLAB_LAYER_LINEAR ? "linear"
                       : rl->kind == QLAB_LAYER_CONV2D ? "conv2d"
                       : rl->kind == QLAB_LAYER_RELU ? "relu"
                       : rl->kind == QLAB_LAYER_MAXPOOL2D ? "maxpool2d" : "flatten";
    struct { const char *key; int present; } keys[] = {
        { "weight", rl->weight != NULL }, { "bias", rl->bias != NULL },
        { "stride", rl->stride != NULL }, { "padding", rl->padding != NULL },
        { "kernel", rl->kernel != NULL },
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int allowed = weighted ? k < 2 || (rl->kind == QLAB_LAYER_CONV2D && k < 4)
                               : rl->kind == QLAB_LAYER_MAXPOOL2D && k >= 2;
        if (keys[k].present && !allowed) {
            snprintf(p, sizeof p, "model.layers[%zu].%s", i, keys[k].key);
            return FAIL_KEY(c, p, "'%s' does not apply to a %s layer", keys[k].key, kind);
        }
    }
    if (rl->name) {
        snprintf(p, sizeof p, "model.layers[%zu].name", i);
        if (!rl->name[0] || strlen(rl->name) >= sizeof ls->name)
            return FAIL(c, p, "layer name must be 1 to %zu characters", sizeof ls->name - 1);
        snprintf(ls->name, sizeof ls->name, "%s", rl->name);
    }
    if (weighted) {
        if (!rl->name && !rl->weight) {
            snprintf(p, sizeof p, "model.layers[%zu]", i);
            return FAIL(c, p, "a %s layer needs a name or a weight", kind);
        }
        if ((rl->weight && strlen(rl->weight) >= sizeof ls->weight) ||
            (rl->bias && strlen(rl->bias) >= sizeof ls->bias)) {
            snprintf(p, sizeof p, "model.layers[%zu]", i);
            return FAIL(c, p, "tensor names must be shorter than %zu characters",
                        sizeof ls->weight);
        }
        if (rl->weight)
            snprintf(ls->weight, sizeof ls->weight, "%s", rl->weight);
        else
            snprintf(ls->weight, sizeof ls->weight, "%s.weight", rl->name);
        if (!rl->name) {
            /* "fc1.weight" -> "fc1", as PyTorch names parameters. */
            snprintf(ls->name, sizeof ls->name, "%s", rl->weight);
            char *dot = strrchr(ls->name, '.');
            if (dot && dot != ls->name)
                *dot = '\0';
        }
        snprintf(p, sizeof p, "model.layers[%zu].%s", i, rl->weight ? "weight" : "name");
        if (!has_tensor(c, ls->weight))
            return FAIL(c, p, "tensor '%s' not found in %s", ls->weight,
                        c->model_as_written);
        if (rl->bias) {
            snprintf(ls->bias, sizeof ls->bias, "%s", rl->bias);
            snprintf(p, sizeof p, "model.layers[%zu].bias", i);
            if (ls->bias[0] && !has_tensor(c, ls->bias))
                return FAIL(c, p, "tensor '%s' not found in %s", ls->bias,
                            c->model_as_written);
        } else {
            char b[sizeof ls->name + 8];
            snprintf(b, sizeof b, "%s.bias", ls->name);
            if (c->header && has_tensor(c, b))
                snprintf(ls->bias, sizeof ls->bias, "%s", b);
        }
    }
    snprintf(p, sizeof p, "model.layers[%zu].stride", i);
    int r = check_int(c, p, rl->stride, 1, 64, 0, &ls->stride);
    snprintf(p, sizeof p, "model.layers[%zu].padding", i);
    if (r >= 0)
        r = check_int(c, p, rl->padding, 0, 64, 0, &ls->padding);
    snprintf(p, sizeof p, "model.layers[%zu].kernel", i);
    if (r >= 0)
        r = check_int(c, p, rl->kernel, 1, 64, 0, &ls->kernel);
    if (r >= 0 && rl->kind == QLAB_LAYER_MAXPOOL2D && !rl->kernel) {
        snprintf(p, sizeof p, "model.layers[%zu]", i);
        return FAIL(c, p, "a maxpool2d layer needs a kernel");
    }
    if (r >= 0 && rl->kind == QLAB_LAYER_MAXPOOL2D && !ls->stride)
        ls->stride = ls->kernel;
    if (r >= 0 && rl->kind == QLAB_LAYER_CONV2D && !ls->stride)
        ls->stride = 1;
    return r;
}

/* Names of the weighted layers, from the YAML or the file's metadata, for overrides. */
static int weighted_names(ctx *c, char names[][64], size_t max)
{
    size_t n = 0;
    qlab_experiment *e = c->e;
    if (e->has_layers) {
        for (size_t i = 0; i < e->spec.nlayers && n < max; i++)
            if (e->spec.layers[i].weight[0])
                snprintf(names[n++], 64, "%s", e->spec.layers[i].name);
        return (int)n;
    }
    const char *ls = meta(c, "qlab.layers");
    json_object *arr = ls ? json_tokener_parse(ls) : NULL;
    for (size_t i = 0; arr && i < json_object_array_length(arr) && n < max; i++) {
        json_object *l = json_object_array_get_idx(arr, i), *w, *v;
        if (!json_object_object_get_ex(l, "weight", &w))
            continue;
        if (json_object_object_get_ex(l, "name", &v)) {
            snprintf(names[n++], 64, "%s", json_object_get_string(v));
        } else {
            /* Unnamed: the weight's prefix, as the model loader names it. */
            const char *wn = json_object_get_string(w), *dot = strrchr(wn, '.');
            int len = dot && dot != wn ? (int)(dot - wn) : (int)strlen(wn);
            snprintf(names[n++], 64, "%.*s", len, wn);
        }
    }
    json_object_put(arr);
    return (int)n;
}

/* The whole model, loaded once as the engine will load it (every tensor's dtype, span and
 * values, every layer's shapes), so that a model that cannot run is refused when the file
 * is loaded, located at the layer at fault (its messages name it: "layer 'fc2': ...") or
 * at model.path, and never becomes a failed experiment in the database. */
static int check_model_loads(ctx *c)
{
    qlab_experiment *e = c->e;
    qlab_model *mdl = NULL;
    qlab_err merr = { 0 };
    int r = qlab_model_load(&mdl, e->model_path, e->has_layers ? &e->spec : NULL, &merr);
    if (r >= 0) {
        qlab_model_free(mdl);
        return 0;
    }
    if (r == -ENOMEM)
        return oom(c);
    char where[48] = "model.path";
    const char *q = merr.msg[0] ? strstr(merr.msg, "layer '") : NULL;
    if (q && e->has_layers) {
        char name[64];
        size_t n = strcspn(q + 7, "'");
        if (n < sizeof name) {
            memcpy(name, q + 7, n);
            name[n] = '\0';
            for (size_t i = 0; i < e->spec.nlayers; i++) {
                const qlab_layer_spec *l = &e->spec.layers[i];
                size_t pre = strcspn(l->weight, ".");
                if (!strcmp(l->name, name) ||
                    (!l->name[0] && pre == n && !strncmp(l->weight, name, n))) {
                    snprintf(where, sizeof where, "model.layers[%zu]", i);
                    break;
                }
            }
        }
    }
    return FAIL(c, where, "%s", merr.msg[0] ? merr.msg : strerror(-r));
}

static int build_model(ctx *c, const qlab_raw_model *m)
{
    qlab_experiment *e = c->e;
    const char *why;
    if (!m->path[0])
        return FAIL(c, "model.path", "model path is empty");
    c->model_as_written = m->path;
    e->model_path = resolve(e->dir, m->path);
    if (!e->model_path)
        return oom(c);
    int r = read_header(e->model_path, &c->header, &why);
    if (r == -ENOMEM)
        return oom(c);
    if (r < 0)
        return FAIL(c, "model.path", "cannot read model '%s': %s", m->path,
                    why ? why : strerror(-r));
    /* Stored canonical ("/x/data/m.safetensors", not "/x/experiments/../data/..."). */
    char *canon = realpath(e->model_path, NULL);
    if (canon) {
        free(e->model_path);
        e->model_path = canon;
    }
    if (m->input) {
        if (m->input_count != 3)
            return FAIL(c, "model.input", "input must be [channels, height, width], not %u "
                        "values", m->input_count);
        for (unsigned i = 0; i < 3; i++) {
            char p[32];
            snprintf(p, sizeof p, "model.input[%u]", i);
            if (m->input[i] < 1 || m->input[i] > 4096)
                return FAIL(c, p, "input sizes must be between 1 and 4096, not %d",
                            m->input[i]);
        }
        e->spec.in_c = m->input[0];
        e->spec.in_h = m->input[1];
        e->spec.in_w = m->input[2];
        e->has_input = 1;
    }
    if (m->normalize) {
        if (!(m->normalize->std > 0.0f))
            return FAIL(c, "model.normalize.std", "std must be greater than 0, not %g",
                        (double)m->normalize->std);
        e->spec.mean = m->normalize->mean;
        e->spec.std = m->normalize->std;
        e->has_norm = 1;
    }
    if (!m->layers) {
        if (!meta(c, "qlab.layers"))
            return FAIL(c, "model.path", "'%s' has no layer list in its __metadata__: "
                        "describe them under model.layers", m->path);
        return check_model_loads(c);
    }
    if (m->layers_count == 0)
        return FAIL_KEY(c, "model.layers", "model.layers is empty");
    e->has_layers = 1;
    e->spec.layers = calloc(m->layers_count, sizeof *e->spec.layers);
    if (!e->spec.layers)
        return oom(c);
    e->spec.nlayers = m->layers_count;
    for (unsigned i = 0; i < m->layers_count; i++) {
        r = build_layer(c, &m->layers[i], i, &e->spec.layers[i]);
        if (r < 0)
            return r;
        for (unsigned j = 0; j < i; j++) {
            if (e->spec.layers[i].name[0] &&
                strcmp(e->spec.layers[i].name, e->spec.layers[j].name) == 0) {
                char p[48];
                snprintf(p, sizeof p, "model.layers[%u]", i);
                return FAIL(c, p, "two layers are named '%s'", e->spec.layers[i].name);
            }
        }
    }
    return check_model_loads(c);
}

/* dir: the dataset folder (resolved) and shown: as written, for messages. */
static int check_file(ctx *c, char **dst, const char *dir, const char *shown_dir,
                      const char *name, const char *path, const char *key)
{
    char *joined = NULL;
    if (dir) {
        if (asprintf(&joined, "%s/%s", dir, name) < 0)
            return oom(c);
    } else {
        joined = resolve(c->e->dir, name);
        if (!joined)
            return oom(c);
    }
    if (access(joined, R_OK) < 0) {
        int r = FAIL(c, path, "cannot read %s '%s%s%s': %s", key, dir ? shown_dir : "",
                     dir ? "/" : "", name, strerror(errno));
        free(joined);
        return r;
    }
    *dst = joined;
    return 0;
}

static int build_dataset(ctx *c, const qlab_raw_dataset *d)
{
    qlab_experiment *e = c->e;
    const char *dir_path = d && d->dir ? "dataset.dir" : "dataset";
    char *dir = d && d->dir ? resolve(e->dir, d->dir) : strdup(QLAB_FASHION_MNIST_DIR);
    if (!dir)
        return oom(c);
    e->dataset = dir;
    const char *shown = d && d->dir ? d->dir : QLAB_FASHION_MNIST_DIR;
    struct {
        const char *key, *def;
        char *given;
        char **dst;
    } f[] = {
        { "train_images", "train-images-idx3-ubyte.gz", d ? d->train_images : NULL,
          &e->train_images },
        { "train_labels", "train-labels-idx1-ubyte.gz", d ? d->train_labels : NULL,
          &e->train_labels },
        { "test_images", "t10k-images-idx3-ubyte.gz", d ? d->test_images : NULL,
          &e->test_images },
        { "test_labels", "t10k-labels-idx1-ubyte.gz", d ? d->test_labels : NULL,
          &e->test_labels },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "dataset.%s", f[i].key);
        int r = f[i].given ? check_file(c, f[i].dst, NULL, NULL, f[i].given, path, f[i].key)
                           : check_file(c, f[i].dst, dir, shown, f[i].def, dir_path,
                                        f[i].key);
        if (r < 0)
            return r;
    }
    return 0;
}

static int calib_error(ctx *c, const char *path, const char *s, int r, const char *what)
{
    if (r == -ERANGE)
        return FAIL(c, path, "percentile must be a number in (0, 100], not '%s'", s + 11);
    return FAIL(c, path, "unknown %s '%s' (expected minmax, percentile:P, mse or entropy)",
                what, s);
}

static int parse_axis_calib(ctx *c, char **words, unsigned n, const char *axis,
                            qlab_qconfig **out, size_t *nout)
{
    char path[64];
    *out = calloc(n, sizeof **out);
    if (!*out)
        return oom(c);
    for (unsigned i = 0; i < n; i++) {
        snprintf(path, sizeof path, "sweep.%s[%u]", axis, i);
        int r = qlab_exp_parse_calibration(words[i], &(*out)[i]);
        if (r < 0)
            return calib_error(c, path, words[i], r, "calibration");
    }
    *nout = n;
    return 0;
}

static int gran_error(ctx *c, const char *path, const char *s, int r)
{
    if (r == -ERANGE)
        return FAIL(c, path, "group size must be a positive integer, not '%s'", s + 6);
    return FAIL(c, path, "unknown granularity '%s' (expected tensor, channel or group:G)", s);
}

static int empty_axis(ctx *c, const char *axis)
{
    char path[64];
    snprintf(path, sizeof path, "sweep.%s", axis);
    return FAIL_KEY(c, path, "sweep axis '%s' is empty: list at least one value", axis);
}

/* libcyaml leaves an empty sequence NULL, as if the key were absent: ask the map. */
static int axis_empty(ctx *c, const void *values, unsigned count, const char *axis)
{
    char path[64];
    snprintf(path, sizeof path, "sweep.%s", axis);
    return count == 0 && (values || qlab_ymap_find(c->map, path));
}

static int build_sweep(ctx *c, const qlab_raw_sweep *s)
{
    qlab_experiment *e = c->e;
    char path[64];
    if (s->bits_count == 0)
        return empty_axis(c, "bits");
    e->bits = calloc(s->bits_count, sizeof *e->bits);
    if (!e->bits)
        return oom(c);
    for (unsigned i = 0; i < s->bits_count; i++) {
        snprintf(path, sizeof path, "sweep.bits[%u]", i);
        if (!qlab_exp_valid_bits(s->bits[i]))
            return FAIL(c, path, "bits must be 2 to 8 or 16, not %d", s->bits[i]);
        e->bits[i] = s->bits[i];
    }
    e->n_bits = s->bits_count;

    if (axis_empty(c, s->scheme, s->scheme_count, "scheme"))
        return empty_axis(c, "scheme");
    e->n_schemes = s->scheme ? s->scheme_count : 1;
    e->schemes = calloc(e->n_schemes, sizeof *e->schemes);
    if (!e->schemes)
        return oom(c);
    for (size_t i = 0; s->scheme && i < e->n_schemes; i++)
        e->schemes[i] = (qlab_scheme)s->scheme[i];

    if (axis_empty(c, s->granularity, s->granularity_count, "granularity"))
        return empty_axis(c, "granularity");
    e->n_granularities = s->granularity ? s->granularity_count : 1;
    e->granularities = calloc(e->n_granularities, sizeof *e->granularities);
    if (!e->granularities)
        return oom(c);
    for (size_t i = 0; s->granularity && i < e->n_granularities; i++) {
        snprintf(path, sizeof path, "sweep.granularity[%zu]", i);
        int r = qlab_exp_parse_granularity(s->granularity[i], &e->granularities[i]);
        if (r < 0)
            return gran_error(c, path, s->granularity[i], r);
    }

    int r;
    if (axis_empty(c, s->calibration, s->calibration_count, "calibration"))
        return empty_axis(c, "calibration");
    if (s->calibration) {
        r = parse_axis_calib(c, s->calibration, s->calibration_count, "calibration",
                             &e->calibrations, &e->n_calibrations);
        if (r < 0)
            return r;
    } else {
        e->calibrations = calloc(1, sizeof *e->calibrations);
        if (!e->calibrations)
            return oom(c);
        e->n_calibrations = 1;
    }

    if (axis_empty(c, s->activations, s->activations_count, "activations"))
        return empty_axis(c, "activations");
    e->n_act_bits = s->activations ? s->activations_count : 1;
    e->act_bits = calloc(e->n_act_bits, sizeof *e->act_bits);
    if (!e->act_bits)
        return oom(c);
    for (size_t i = 0; s->activations && i < e->n_act_bits; i++) {
        snprintf(path, sizeof path, "sweep.activations[%zu]", i);
        if (qlab_exp_parse_activations(s->activations[i], &e->act_bits[i]) < 0)
            return FAIL(c, path, "unknown activations '%s' (expected fp32 or intN, N 2 to 8 "
                        "or 16)", s->activations[i]);
    }

    if (axis_empty(c, s->act_calibration, s->act_calibration_count, "act_calibration"))
        return empty_axis(c, "act_calibration");
    if (s->act_calibration)
        return parse_axis_calib(c, s->act_calibration, s->act_calibration_count,
                                "act_calibration", &e->act_calibrations,
                                &e->n_act_calibrations);
    e->act_calibrations = calloc(1, sizeof *e->act_calibrations);
    if (!e->act_calibrations)
        return oom(c);
    e->n_act_calibrations = 1;
    return 0;
}

static int build_overrides(ctx *c, const qlab_raw_override *o, unsigned n)
{
    qlab_experiment *e = c->e;
    char names[256][64], path[64];
    int nn = weighted_names(c, names, 256);
    e->overrides = calloc(n ? n : 1, sizeof *e->overrides);
    if (!e->overrides)
        return oom(c);
    for (unsigned i = 0; i < n; i++) {
        qlab_exp_override *ov = &e->overrides[i];
        int found = 0;
        for (int k = 0; k < nn; k++)
            found |= strcmp(names[k], o[i].layer) == 0;
        snprintf(path, sizeof path, "overrides[%u].layer", i);
        if (!found) {
            char list[512];
            size_t used = 0;
            list[0] = '\0';
            for (int k = 0; k < nn; k++)
                used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used
                                                                         : 0,
                                         "%s%s", k ? ", " : "", names[k]);
            return FAIL(c, path, "no weighted layer '%s' to override (layers: %s)",
                        o[i].layer, list);
        }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(e->overrides[j].layer, o[i].layer) == 0)
                return FAIL(c, path, "layer '%s' is overridden twice", o[i].layer);
        snprintf(ov->layer, sizeof ov->layer, "%s", o[i].layer);
        if (!o[i].bits && !o[i].scheme && !o[i].granularity && !o[i].calibration) {
            snprintf(path, sizeof path, "overrides[%u]", i);
            return FAIL(c, path, "override of '%s' sets nothing (give bits, scheme, "
                        "granularity or calibration)", o[i].layer);
        }
        if (o[i].bits) {
            char *end;
            long b = strtol(o[i].bits, &end, 10);
            snprintf(path, sizeof path, "overrides[%u].bits", i);
            if (strcmp(o[i].bits, "fp32") == 0)
                ov->fp32 = 1;
            else if (end == o[i].bits || *end || !qlab_exp_valid_bits(b))
                return FAIL(c, path, "bits must be 2 to 8, 16 or fp32, not '%s'", o[i].bits);
            else
                ov->bits = (int)b;
        }
        if (o[i].scheme) {
            ov->has_scheme = 1;
            ov->cfg.scheme = (qlab_scheme)*o[i].scheme;
        }
        if (o[i].granularity) {
            snprintf(path, sizeof path, "overrides[%u].granularity", i);
            int r = qlab_exp_parse_granularity(o[i].granularity, &ov->cfg);
            if (r < 0)
                return gran_error(c, path, o[i].granularity, r);
            ov->has_granularity = 1;
        }
        if (o[i].calibration) {
            snprintf(path, sizeof path, "overrides[%u].calibration", i);
            int r = qlab_exp_parse_calibration(o[i].calibration, &ov->cfg);
            if (r < 0)
                return calib_error(c, path, o[i].calibration, r, "calibration");
            ov->has_calibration = 1;
        }
    }
    e->n_overrides = n;
    return 0;
}

static int build_excludes(ctx *c, const qlab_raw_exclude *x, unsigned n)
{
    qlab_experiment *e = c->e;
    char path[64];
    e->excludes = calloc(n ? n : 1, sizeof *e->excludes);
    if (!e->excludes)
        return oom(c);
    for (unsigned i = 0; i < n; i++) {
        qlab_exp_exclude *ex = &e->excludes[i];
        snprintf(ex->key_path, sizeof ex->key_path, "exclude[%u]", i);
        if (x[i].bits) {
            snprintf(path, sizeof path, "exclude[%u].bits", i);
            if (!qlab_exp_valid_bits(*x[i].bits))
                return FAIL(c, path, "bits must be 2 to 8 or 16, not %d", *x[i].bits);
            ex->w.bits = *x[i].bits;
            ex->set |= QLAB_EXCL_BITS;
        }
        if (x[i].scheme) {
            ex->w.scheme = (qlab_scheme)*x[i].scheme;
            ex->set |= QLAB_EXCL_SCHEME;
        }
        if (x[i].granularity) {
            snprintf(path, sizeof path, "exclude[%u].granularity", i);
            int r = qlab_exp_parse_granularity(x[i].granularity, &ex->w);
            if (r < 0)
                return gran_error(c, path, x[i].granularity, r);
            ex->set |= QLAB_EXCL_GRANULARITY;
        }
        if (x[i].calibration) {
            snprintf(path, sizeof path, "exclude[%u].calibration", i);
            int r = qlab_exp_parse_calibration(x[i].calibration, &ex->w);
            if (r < 0)
                return calib_error(c, path, x[i].calibration, r, "calibration");
            ex->set |= QLAB_EXCL_CALIBRATION;
        }
        if (x[i].activations) {
            snprintf(path, sizeof path, "exclude[%u].activations", i);
            if (qlab_exp_parse_activations(x[i].activations, &ex->act_bits) < 0)
                return FAIL(c, path, "unknown activations '%s' (expected fp32 or intN, N 2 "
                            "to 8 or 16)", x[i].activations);
            ex->set |= QLAB_EXCL_ACTIVATIONS;
        }
        if (x[i].act_calibration) {
            snprintf(path, sizeof path, "exclude[%u].act_calibration", i);
            int r = qlab_exp_parse_calibration(x[i].act_calibration, &ex->act);
            if (r < 0)
                return calib_error(c, path, x[i].act_calibration, r, "calibration");
            ex->set |= QLAB_EXCL_ACT_CALIBRATION;
        }
        if (!ex->set)
            return FAIL(c, ex->key_path, "an exclusion must name at least one key (it "
                        "would exclude every run)");
    }
    e->n_excludes = n;
    return 0;
}

int qlab_exp_build(qlab_experiment *e, const qlab_exp_raw *raw, const qlab_ymap *map,
                   qlab_err *err)
{
    ctx c = { .e = e, .map = map, .file = e->path, .err = err };
    int r;
    if (!raw->name[0] || strlen(raw->name) > 200) {
        r = FAIL(&c, "name", "name must be 1 to 200 characters");
        goto out;
    }
    e->name = strdup(raw->name);
    if (!e->name) {
        r = oom(&c);
        goto out;
    }
    r = build_model(&c, raw->model);
    if (r >= 0)
        r = build_dataset(&c, raw->dataset);
    if (r >= 0) {
        const qlab_raw_calibration *cal = raw->calibration;
        r = check_int(&c, "calibration.samples", cal ? cal->samples : NULL, 1,
                      MAX_CALIB_SAMPLES, 1000, &e->calib_samples);
        e->calib_seed = cal && cal->seed ? *cal->seed : 0;
    }
    if (r >= 0)
        r = build_sweep(&c, raw->sweep);
    if (r >= 0)
        r = build_overrides(&c, raw->overrides, raw->overrides ? raw->overrides_count : 0);
    if (r >= 0)
        r = build_excludes(&c, raw->exclude, raw->exclude ? raw->exclude_count : 0);
    if (r >= 0)
        r = check_int(&c, "workers", raw->workers, 1, MAX_WORKERS, 0, &e->workers);
    if (r >= 0) {
        /* Counting the runs also checks the grid's size and the exclusions. */
        qlab_run_config *runs;
        size_t n;
        r = qlab_experiment_expand(e, &runs, &n, err);
        if (r >= 0) {
            uint64_t h = 14695981039346656037ull;
            char head[1024];
            int len = snprintf(head, sizeof head, "model=%s\ndataset=%s,%s,%s,%s\n"
                               "calib_samples=%d\ncalib_seed=%llu\n", e->model_path,
                               e->train_images, e->train_labels, e->test_images,
                               e->test_labels, e->calib_samples,
                               (unsigned long long)e->calib_seed);
            /* FNV-1a over the head and each run's string, chained. */
            for (int i = 0; i < len && i < (int)sizeof head; i++) {
                h ^= (unsigned char)head[i];
                h *= 1099511628211ull;
            }
            for (size_t i = 0; i < n; i++) {
                for (const char *p = runs[i].config; *p; p++) {
                    h ^= (unsigned char)*p;
                    h *= 1099511628211ull;
                }
                h ^= '\n';
                h *= 1099511628211ull;
            }
            snprintf(e->config_hash, sizeof e->config_hash, "%016llx", (unsigned long long)h);
            e->n_runs = n;
            qlab_run_configs_free(runs, n);
        }
    }
out:
    json_object_put(c.header);
    return r;
}
