/* safetensors-writer.c — writes safetensors files (format in safetensors.c).
 *
 * The data section is the tensors' bytes back to back, without alignment padding, so
 * its size is exactly the sum of the tensors' sizes: the memory qlab reports for a
 * quantized model (packed codes + scales + zero points + FP32 biases) is the size of what
 * this writes. The JSON header is padded with spaces to a multiple of 8 bytes, as the
 * reference implementation does. */
#include "qlab-model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

typedef struct st_entry {
    char name[QLAB_NAME_MAX];
    qlab_dtype dtype;
    int ndim;
    int64_t shape[QLAB_TENSOR_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_entry;

struct qlab_st_writer {
    size_t n, cap;
    st_entry *e;
    json_object *meta;
};

int qlab_st_writer_new(qlab_st_writer **out)
{
    qlab_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->meta = json_object_new_object();
    if (!w->meta) {
        free(w);
        return -ENOMEM;
    }
    *out = w;
    return 0;
}

void qlab_st_writer_free(qlab_st_writer *w)
{
    if (!w)
        return;
    json_object_put(w->meta);
    free(w->e);
    free(w);
}

int qlab_st_writer_add(qlab_st_writer *w, const char *name, qlab_dtype dtype, int ndim,
                       const int64_t *shape, const void *data, size_t nbytes)
{
    if ((unsigned)dtype >= QLAB_DTYPE_COUNT || ndim < 0 || ndim > QLAB_TENSOR_MAX_DIMS ||
        strlen(name) >= QLAB_NAME_MAX || strcmp(name, "__metadata__") == 0)
        return -EINVAL;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -EINVAL;
        numel *= (size_t)shape[i];
    }
    if (numel * qlab_dtype_size(dtype) != nbytes)
        return -EINVAL;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return -EEXIST;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_entry *e = realloc(w->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        w->e = e;
        w->cap = cap;
    }
    st_entry *e = &w->e[w->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nbytes;
    return 0;
}

int qlab_st_writer_meta(qlab_st_writer *w, const char *key, const char *value)
{
    json_object *v = json_object_new_string(value);
    if (!v)
        return -ENOMEM;
    if (json_object_object_add(w->meta, key, v) < 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static json_object *build_header(const qlab_st_writer *w, size_t *data_len)
{
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_entry *e = &w->e[i];
        json_object *d = json_object_new_object(), *shape = json_object_new_array(),
                    *offs = json_object_new_array();
        if (!d || !shape || !offs)
            goto fail_entry;
        json_object_object_add(d, "dtype", json_object_new_string(qlab_dtype_name(e->dtype)));
        for (int k = 0; k < e->ndim; k++)
            json_object_array_add(shape, json_object_new_int64(e->shape[k]));
        json_object_object_add(d, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + e->nbytes)));
        json_object_object_add(d, "data_offsets", offs);
        json_object_object_add(root, e->name, d);
        off += e->nbytes;
        continue;
fail_entry:
        json_object_put(d);
        json_object_put(shape);
        json_object_put(offs);
        json_object_put(root);
        return NULL;
    }
    if (json_object_object_length(w->meta) > 0)
        json_object_object_add(root, "__metadata__", json_object_get(w->meta));
    *data_len = off;
    return root;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

int qlab_st_writer_save(qlab_st_writer *w, const char *path, size_t *data_bytes, qlab_err *err)
{
    size_t data_len = 0;
    json_object *root = build_header(w, &data_len);
    if (!root)
        return -ENOMEM;
    const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    size_t jlen = strlen(js);
    size_t hlen = (jlen + 7) / 8 * 8;
    char *tmp = NULL;
    int r = 0;
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        json_object_put(root);
        return -ENOMEM;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        r = qlab_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    static const char spaces[8] = "        ";
    r = write_all(f, len8, 8);
    if (r == 0)
        r = write_all(f, js, jlen);
    if (r == 0)
        r = write_all(f, spaces, hlen - jlen);
    for (size_t i = 0; r == 0 && i < w->n; i++)
        r = write_all(f, w->e[i].data, w->e[i].nbytes);
    if (fclose(f) != 0 && r == 0)
        r = -EIO;
    if (r < 0) {
        unlink(tmp);
        r = qlab_err_set(err, r, "%s: write failed", path);
        goto out;
    }
    if (rename(tmp, path) < 0) {
        r = qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (data_bytes)
        *data_bytes = data_len;
out:
    free(tmp);
    json_object_put(root);
    return r;
}
