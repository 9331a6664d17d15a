/* model.c — sequential model description: a layer list (from a spec or the safetensors
 * __metadata__) bound to the file's tensors, with every shape checked layer by layer. */
#include "qlab-model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static const char *const kind_names[QLAB_LAYER_KIND_COUNT] = {
    [QLAB_LAYER_LINEAR] = "linear",
    [QLAB_LAYER_CONV2D] = "conv2d",
    [QLAB_LAYER_RELU] = "relu",
    [QLAB_LAYER_MAXPOOL2D] = "maxpool2d",
    [QLAB_LAYER_FLATTEN] = "flatten",
};

const char *qlab_layer_kind_name(qlab_layer_kind k)
{
    return (unsigned)k < QLAB_LAYER_KIND_COUNT ? kind_names[k] : "?";
}

int qlab_layer_kind_parse(const char *s, qlab_layer_kind *out)
{
    for (int i = 0; i < QLAB_LAYER_KIND_COUNT; i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (qlab_layer_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

void qlab_model_spec_clear(qlab_model_spec *spec)
{
    if (!spec)
        return;
    free(spec->layers);
    memset(spec, 0, sizeof *spec);
}

static int json_int_field(json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -EINVAL;
    *out = json_object_get_int(v);
    return 0;
}

static int json_str_field(json_object *o, const char *key, char *out, size_t cap)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -EINVAL;
    const char *s = json_object_get_string(v);
    if (strlen(s) >= cap)
        return -ENAMETOOLONG;
    snprintf(out, cap, "%s", s);
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int qlab_model_spec_from_metadata(qlab_model_spec *spec, const qlab_safetensors *st,
                                  qlab_err *err)
{
    const char *p = st->path;
    const char *layers = qlab_st_meta(st, "qlab.layers");
    if (!layers)
        return qlab_err_set(err, -ENOENT,
                            "%s: no layer list (no qlab.layers in __metadata__; describe the "
                            "layers in the experiment instead)",
                            p);
    qlab_model_spec s = {0};
    json_object *root = json_tokener_parse(layers);
    int r = 0;
    if (!root || !json_object_is_type(root, json_type_array)) {
        r = qlab_err_set(err, -EINVAL, "%s: __metadata__ qlab.layers is not a JSON array", p);
        goto out;
    }
    s.nlayers = json_object_array_length(root);
    s.layers = calloc(s.nlayers ? s.nlayers : 1, sizeof *s.layers);
    if (!s.layers) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s.nlayers; i++) {
        json_object *o = json_object_array_get_idx(root, i), *k;
        qlab_layer_spec *l = &s.layers[i];
        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "kind", &k) || !json_object_is_type(k, json_type_string)) {
            r = qlab_err_set(err, -EINVAL, "%s: qlab.layers[%zu] has no \"kind\"", p, i);
            goto out;
        }
        if (qlab_layer_kind_parse(json_object_get_string(k), &l->kind) < 0) {
            r = qlab_err_set(err, -EINVAL, "%s: qlab.layers[%zu]: unknown kind '%s'", p, i,
                             json_object_get_string(k));
            goto out;
        }
        if (json_str_field(o, "name", l->name, sizeof l->name) < 0 ||
            json_str_field(o, "weight", l->weight, sizeof l->weight) < 0 ||
            json_str_field(o, "bias", l->bias, sizeof l->bias) < 0 ||
            json_int_field(o, "stride", &l->stride) < 0 ||
            json_int_field(o, "padding", &l->padding) < 0 ||
            json_int_field(o, "kernel", &l->kernel) < 0) {
            r = qlab_err_set(err, -EINVAL, "%s: qlab.layers[%zu]: a field has the wrong type", p,
                             i);
            goto out;
        }
    }
    const char *in = qlab_st_meta(st, "qlab.input");
    if (in && sscanf(in, "[%d,%d,%d]", &s.in_c, &s.in_h, &s.in_w) != 3) {
        r = qlab_err_set(err, -EINVAL, "%s: qlab.input '%s' is not [C,H,W]", p, in);
        goto out;
    }
    const char *mean = qlab_st_meta(st, "qlab.mean"), *std = qlab_st_meta(st, "qlab.std");
    s.std = 1.0f;
    if ((mean && parse_float(mean, &s.mean) < 0) || (std && parse_float(std, &s.std) < 0)) {
        r = qlab_err_set(err, -EINVAL, "%s: qlab.mean / qlab.std is not a number", p);
        goto out;
    }
out:
    json_object_put(root);
    if (r < 0) {
        qlab_model_spec_clear(&s);
        return r;
    }
    *spec = s;
    return 0;
}

void qlab_model_free(qlab_model *m)
{
    if (!m)
        return;
    qlab_st_close(m->st);
    free(m->layers);
    free(m);
}

size_t qlab_layer_params(const qlab_layer *l)
{
    return (l->weight ? l->weight->numel : 0) + (l->bias ? l->bias->numel : 0);
}

size_t qlab_model_weighted_layers(const qlab_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        n += m->layers[i].weight != NULL;
    return n;
}

long qlab_model_find_layer(const qlab_model *m, const char *name)
{
    for (size_t i = 0; i < m->nlayers; i++)
        if (strcmp(m->layers[i].name, name) == 0)
            return (long)i;
    return -ENOENT;
}

static void shape_str(const qlab_tensor *t, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* Binds the weight and bias of layer l (spec ls) and checks their shapes. */
static int bind_weights(const qlab_model *m, qlab_layer *l, const qlab_layer_spec *ls,
                        qlab_err *err)
{
    const char *p = m->st->path;
    char sh[96];
    if (!ls->weight[0])
        return qlab_err_set(err, -EINVAL, "%s: layer '%s' (%s) names no weight tensor", p,
                            l->name, kind_names[l->kind]);
    l->weight = qlab_st_find(m->st, ls->weight);
    if (!l->weight || !l->weight->f32)
        return qlab_err_set(err, -ENOENT, "%s: layer '%s': tensor '%s' is %s", p, l->name,
                            ls->weight, l->weight ? "not a float tensor" : "not in the file");
    const qlab_tensor *w = l->weight;
    shape_str(w, sh, sizeof sh);
    if (l->kind == QLAB_LAYER_LINEAR) {
        if (w->ndim != 2)
            return qlab_err_set(err, -EINVAL,
                                "%s: layer '%s': tensor '%s' has shape %s, a linear weight is "
                                "[out, in]",
                                p, l->name, w->name, sh);
        if (w->shape[1] != (int64_t)l->in_size || w->shape[0] < 1)
            return qlab_err_set(err, -EINVAL,
                                "%s: layer '%s': tensor '%s' has shape %s but the layer's input "
                                "has %zu features",
                                p, l->name, w->name, sh, l->in_size);
        l->rows = (int)w->shape[0];
        l->cols = (int)w->shape[1];
    } else {
        if (w->ndim != 4)
            return qlab_err_set(err, -EINVAL,
                                "%s: layer '%s': tensor '%s' has shape %s, a conv2d weight is "
                                "[out, in, kh, kw]",
                                p, l->name, w->name, sh);
        if (w->shape[1] != l->in_c || w->shape[0] < 1 || w->shape[2] < 1 || w->shape[3] < 1)
            return qlab_err_set(err, -EINVAL,
                                "%s: layer '%s': tensor '%s' has shape %s but the layer's input "
                                "has %d channels",
                                p, l->name, w->name, sh, l->in_c);
        l->kh = (int)w->shape[2];
        l->kw = (int)w->shape[3];
        l->rows = (int)w->shape[0];
        l->cols = (int)(w->shape[1] * w->shape[2] * w->shape[3]);
    }
    if (ls->bias[0]) {
        l->bias = qlab_st_find(m->st, ls->bias);
        if (!l->bias || !l->bias->f32)
            return qlab_err_set(err, -ENOENT, "%s: layer '%s': tensor '%s' is %s", p, l->name,
                                ls->bias, l->bias ? "not a float tensor" : "not in the file");
        if (l->bias->ndim != 1 || l->bias->shape[0] != l->rows) {
            shape_str(l->bias, sh, sizeof sh);
            return qlab_err_set(err, -EINVAL,
                                "%s: layer '%s': bias '%s' has shape %s, expected [%d]", p,
                                l->name, l->bias->name, sh, l->rows);
        }
    }
    return 0;
}

static void default_name(qlab_layer *l, const qlab_layer_spec *ls, size_t i)
{
    if (ls->name[0]) {
        snprintf(l->name, sizeof l->name, "%s", ls->name);
        return;
    }
    const char *dot = strrchr(ls->weight, '.');
    if (ls->weight[0] && dot && dot != ls->weight)
        snprintf(l->name, sizeof l->name, "%.*s", (int)(dot - ls->weight), ls->weight);
    else
        snprintf(l->name, sizeof l->name, "%s%zu", kind_names[ls->kind], i);
}

/* Walks the layers, propagating the per-sample shape (c, h, w; flat after flatten/linear). */
static int build_layers(qlab_model *m, const qlab_model_spec *spec, qlab_err *err)
{
    const char *p = m->st->path;
    int c = m->in_c, h = m->in_h, w = m->in_w, flat = 0;
    m->max_act = m->in_size;
    for (size_t i = 0; i < spec->nlayers; i++) {
        const qlab_layer_spec *ls = &spec->layers[i];
        qlab_layer *l = &m->layers[i];
        l->kind = ls->kind;
        default_name(l, ls, i);
        l->in_c = c;
        l->in_h = h;
        l->in_w = w;
        l->in_size = (size_t)c * h * w;
        int r;
        switch (ls->kind) {
        case QLAB_LAYER_LINEAR:
            if (!flat && (h != 1 || w != 1))
                return qlab_err_set(err, -EINVAL,
                                    "%s: layer '%s': linear after a [%d, %d, %d] activation; add a "
                                    "flatten layer before it",
                                    p, l->name, c, h, w);
            r = bind_weights(m, l, ls, err);
            if (r < 0)
                return r;
            c = l->rows;
            h = w = 1;
            flat = 1;
            break;
        case QLAB_LAYER_CONV2D:
            if (flat)
                return qlab_err_set(err, -EINVAL, "%s: layer '%s': conv2d after a flat activation",
                                    p, l->name);
            l->stride = ls->stride > 0 ? ls->stride : 1;
            l->padding = ls->padding;
            if (l->padding < 0)
                return qlab_err_set(err, -EINVAL, "%s: layer '%s': negative padding", p, l->name);
            r = bind_weights(m, l, ls, err);
            if (r < 0)
                return r;
            if (h + 2 * l->padding < l->kh || w + 2 * l->padding < l->kw)
                return qlab_err_set(err, -EINVAL,
                                    "%s: layer '%s': kernel %dx%d of tensor '%s' is larger than the "
                                    "padded %dx%d input",
                                    p, l->name, l->kh, l->kw, l->weight->name, h + 2 * l->padding,
                                    w + 2 * l->padding);
            c = l->rows;
            h = (h + 2 * l->padding - l->kh) / l->stride + 1;
            w = (w + 2 * l->padding - l->kw) / l->stride + 1;
            break;
        case QLAB_LAYER_MAXPOOL2D:
            l->kernel = ls->kernel;
            l->stride = ls->stride > 0 ? ls->stride : ls->kernel;
            if (flat || l->kernel < 1 || l->kernel > h || l->kernel > w || ls->padding != 0)
                return qlab_err_set(err, -EINVAL,
                                    "%s: layer '%s': maxpool2d kernel %d does not fit a [%d, %d, %d] "
                                    "input (padding unsupported)",
                                    p, l->name, l->kernel, c, h, w);
            h = (h - l->kernel) / l->stride + 1;
            w = (w - l->kernel) / l->stride + 1;
            break;
        case QLAB_LAYER_FLATTEN:
            c = c * h * w;
            h = w = 1;
            flat = 1;
            break;
        case QLAB_LAYER_RELU:
            break;
        default:
            return qlab_err_set(err, -EINVAL, "%s: layer %zu: unknown kind", p, i);
        }
        l->out_c = c;
        l->out_h = h;
        l->out_w = w;
        l->out_size = (size_t)c * h * w;
        if (l->out_size > m->max_act)
            m->max_act = l->out_size;
    }
    if (!flat || m->nlayers == 0)
        return qlab_err_set(err, -EINVAL,
                            "%s: the last layer must produce a flat [classes] vector", p);
    m->nclasses = (size_t)c;
    return 0;
}

int qlab_model_load(qlab_model **out, const char *path, const qlab_model_spec *spec,
                    qlab_err *err)
{
    qlab_model *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    qlab_model_spec md = {0};
    int r = qlab_st_open(&m->st, path, 0, err);
    if (r < 0)
        goto fail;
    if (!spec) {
        r = qlab_model_spec_from_metadata(&md, m->st, err);
        if (r < 0)
            goto fail;
        spec = &md;
    }
    m->in_c = spec->in_c > 0 ? spec->in_c : 1;
    m->in_h = spec->in_h > 0 ? spec->in_h : 28;
    m->in_w = spec->in_w > 0 ? spec->in_w : 28;
    m->in_size = (size_t)m->in_c * m->in_h * m->in_w;
    m->mean = spec->mean;
    m->std = spec->std != 0.0f ? spec->std : 1.0f;
    m->nlayers = spec->nlayers;
    m->layers = calloc(spec->nlayers ? spec->nlayers : 1, sizeof *m->layers);
    if (!m->layers) {
        r = -ENOMEM;
        goto fail;
    }
    r = build_layers(m, spec, err);
    if (r < 0)
        goto fail;
    qlab_model_spec_clear(&md);
    *out = m;
    return 0;
fail:
    qlab_model_spec_clear(&md);
    qlab_model_free(m);
    return r;
}
