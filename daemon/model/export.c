/* export.c — writes a weight-only quantized model as safetensors whose data section is
 * exactly the memory qlab reports (PRODUCT.md §3): packed codes, F32 scales, zero points
 * for asymmetric schemes, F32 biases and FP32 layers. */
#include "qlab-model-quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

char *qlab_model_layers_json(const qlab_model *m)
{
    json_object *arr = json_object_new_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string(qlab_layer_kind_name(l->kind)));
        if (l->weight) {
            json_object_object_add(o, "name", json_object_new_string(l->name));
            json_object_object_add(o, "weight", json_object_new_string(l->weight->name));
            if (l->bias)
                json_object_object_add(o, "bias", json_object_new_string(l->bias->name));
        }
        if (l->kind == QLAB_LAYER_CONV2D) {
            json_object_object_add(o, "stride", json_object_new_int(l->stride));
            json_object_object_add(o, "padding", json_object_new_int(l->padding));
        } else if (l->kind == QLAB_LAYER_MAXPOOL2D) {
            json_object_object_add(o, "kernel", json_object_new_int(l->kernel));
            json_object_object_add(o, "stride", json_object_new_int(l->stride));
        }
        json_object_array_add(arr, o);
    }
    char *s = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return s;
}

static char *quant_json(const qlab_qconfig *c, const qlab_tensor *w)
{
    json_object *o = json_object_new_object(), *shape = json_object_new_array();
    json_object_object_add(o, "bits", json_object_new_int(c->bits));
    json_object_object_add(o, "scheme", json_object_new_string(qlab_scheme_name(c->scheme)));
    json_object_object_add(o, "granularity",
                           json_object_new_string(qlab_granularity_name(c->granularity)));
    json_object_object_add(o, "group_size", json_object_new_int(c->group_size));
    json_object_object_add(o, "calibration",
                           json_object_new_string(qlab_calibration_name(c->calibration)));
    json_object_object_add(o, "percentile", json_object_new_double(c->percentile));
    for (int k = 0; k < w->ndim; k++)
        json_object_array_add(shape, json_object_new_int64(w->shape[k]));
    json_object_object_add(o, "shape", shape);
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* Buffers the writer references until save. */
typedef struct export_bufs {
    size_t n, cap;
    void **p;
} export_bufs;

static void *keep(export_bufs *b, void *p)
{
    if (p && b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        void **np = realloc(b->p, cap * sizeof *np);
        if (!np) {
            free(p);
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    if (p)
        b->p[b->n++] = p;
    return p;
}

static int add_layer(qlab_st_writer *w, export_bufs *bufs, const qlab_layer *l,
                     const qlab_qconfig *c, qlab_err *err)
{
    const qlab_tensor *t = l->weight;
    size_t rows = (size_t)l->rows, cols = (size_t)l->cols, n = rows * cols;
    char name[QLAB_NAME_MAX + 16];
    qlab_qparams qp = {0};
    int r = qlab_calibrate(t->f32, rows, cols, c, &qp);
    if (r < 0)
        return qlab_err_set(err, r, "layer '%s', tensor '%s': calibration failed", l->name,
                            t->name);
    int16_t *codes = malloc(n * sizeof *codes);
    size_t pbytes = qlab_packed_bytes(n, c->bits);
    uint8_t *packed = keep(bufs, malloc(pbytes ? pbytes : 1));
    float *scales = keep(bufs, malloc(qp.nblocks * sizeof(float)));
    int zp16 = c->bits > 8;
    void *zps = keep(bufs, malloc(qp.nblocks * (zp16 ? 2 : 1)));
    if (!codes || !packed || !scales || !zps) {
        r = -ENOMEM;
        goto out;
    }
    r = qlab_quantize(t->f32, rows, cols, c, &qp, codes);
    if (r == 0)
        r = qlab_pack_codes(codes, n, c->bits, packed);
    if (r < 0) {
        r = qlab_err_set(err, r, "layer '%s', tensor '%s': quantization failed", l->name, t->name);
        goto out;
    }
    memcpy(scales, qp.scale, qp.nblocks * sizeof(float));
    for (size_t k = 0; k < qp.nblocks; k++) {
        if (zp16)
            ((int16_t *)zps)[k] = (int16_t)qp.zero_point[k];
        else
            ((int8_t *)zps)[k] = (int8_t)qp.zero_point[k];
    }
    int64_t sh = (int64_t)pbytes, sn = (int64_t)qp.nblocks;
    snprintf(name, sizeof name, "%s.qcodes", t->name);
    r = qlab_st_writer_add(w, name, QLAB_DTYPE_U8, 1, &sh, packed, pbytes);
    snprintf(name, sizeof name, "%s.scale", t->name);
    if (r == 0)
        r = qlab_st_writer_add(w, name, QLAB_DTYPE_F32, 1, &sn, scales, qp.nblocks * 4);
    snprintf(name, sizeof name, "%s.zero_point", t->name);
    if (r == 0 && c->scheme == QLAB_SCHEME_ASYMMETRIC)
        r = qlab_st_writer_add(w, name, zp16 ? QLAB_DTYPE_I16 : QLAB_DTYPE_I8, 1, &sn, zps,
                               qp.nblocks * (zp16 ? 2 : 1));
    if (r == 0) {
        char *qj = quant_json(c, t);
        snprintf(name, sizeof name, "qlab.quant.%s", t->name);
        r = qj ? qlab_st_writer_meta(w, name, qj) : -ENOMEM;
        free(qj);
    }
out:
    free(codes);
    qlab_qparams_free(&qp);
    return r;
}

int qlab_model_export_weight_only(const qlab_model *m, const qlab_qconfig *cfg,
                                  const qlab_qconfig *const *overrides, const char *path,
                                  size_t *data_bytes, qlab_err *err)
{
    qlab_st_writer *w;
    export_bufs *bufs = calloc(1, sizeof *bufs);
    if (!bufs)
        return -ENOMEM;
    int r = qlab_st_writer_new(&w);
    if (r < 0) {
        free(bufs);
        return r;
    }
    char *layers = qlab_model_layers_json(m);
    char tmp[64];
    r = layers ? qlab_st_writer_meta(w, "qlab.layers", layers) : -ENOMEM;
    snprintf(tmp, sizeof tmp, "[%d,%d,%d]", m->in_c, m->in_h, m->in_w);
    if (r == 0)
        r = qlab_st_writer_meta(w, "qlab.input", tmp);
    snprintf(tmp, sizeof tmp, "%.9g", (double)m->mean);
    if (r == 0)
        r = qlab_st_writer_meta(w, "qlab.mean", tmp);
    snprintf(tmp, sizeof tmp, "%.9g", (double)m->std);
    if (r == 0)
        r = qlab_st_writer_meta(w, "qlab.std", tmp);
    for (size_t i = 0; r == 0 && i < m->nlayers; i++) {
        const qlab_layer *l = &m->layers[i];
        if (!l->weight)
            continue;
        const qlab_qconfig *c = (overrides && overrides[i]) ? overrides[i] : cfg;
        if (c) {
            r = add_layer(w, bufs, l, c, err);
        } else {
            r = qlab_st_writer_add(w, l->weight->name, QLAB_DTYPE_F32, l->weight->ndim,
                                   l->weight->shape, l->weight->f32, 4 * l->weight->numel);
        }
        if (r == 0 && l->bias)
            r = qlab_st_writer_add(w, l->bias->name, QLAB_DTYPE_F32, 1, l->bias->shape,
                                   l->bias->f32, 4 * l->bias->numel);
    }
    if (r == 0)
        r = qlab_st_writer_save(w, path, data_bytes, err);
    else
        qlab_err_set(err, r, "%s: export failed", path);
    free(layers);
    qlab_st_writer_free(w);
    for (size_t k = 0; k < bufs->n; k++)
        free(bufs->p[k]);
    free(bufs->p);
    free(bufs);
    return r;
}
