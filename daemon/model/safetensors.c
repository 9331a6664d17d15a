/* safetensors.c — reads Hugging Face safetensors files: an unsigned 64-bit little-endian
 * header length H, H bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {str: str}}, then the data section; offsets are relative to its start.
 *
 * The file is mapped read-only; aligned F32 tensors are used in place, F16/BF16 (and F32
 * that a foreign writer left misaligned) are converted into owned float copies. Every
 * check a malicious or truncated file could fail is made before any tensor is exposed. */
#include "qlab-model.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

static const struct {
    const char *name;
    size_t size;
    int is_float;
} dtype_info[QLAB_DTYPE_COUNT] = {
    [QLAB_DTYPE_F32] = {"F32", 4, 1},
    [QLAB_DTYPE_F16] = {"F16", 2, 1},
    [QLAB_DTYPE_BF16] = {"BF16", 2, 1},
    [QLAB_DTYPE_U8] = {"U8", 1, 0},
    [QLAB_DTYPE_I8] = {"I8", 1, 0},
    [QLAB_DTYPE_I16] = {"I16", 2, 0},
    [QLAB_DTYPE_I32] = {"I32", 4, 0},
};

const char *qlab_dtype_name(qlab_dtype t)
{
    return (unsigned)t < QLAB_DTYPE_COUNT ? dtype_info[t].name : "?";
}

size_t qlab_dtype_size(qlab_dtype t)
{
    return (unsigned)t < QLAB_DTYPE_COUNT ? dtype_info[t].size : 0;
}

static int dtype_parse(const char *s, qlab_dtype *out)
{
    for (int i = 0; i < QLAB_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (qlab_dtype)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* IEEE binary16 -> binary32, exact (every half is representable as a float). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        /* subnormal: value = man * 2^-24, normalise it */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void qlab_st_close(qlab_safetensors *st)
{
    if (!st)
        return;
    if (st->owned) {
        for (size_t i = 0; i < st->ntensors; i++)
            free(st->owned[i]);
        free(st->owned);
    }
    for (size_t i = 0; i < st->nmeta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->tensors);
    if (st->map && st->map != MAP_FAILED)
        munmap(st->map, st->map_len);
    free(st->path);
    free(st);
}

const qlab_tensor *qlab_st_find(const qlab_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->ntensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

const char *qlab_st_meta(const qlab_safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}

static int get_u64(json_object *o, uint64_t *out)
{
    if (!json_object_is_type(o, json_type_int))
        return -EINVAL;
    int64_t v = json_object_get_int64(o);
    if (v < 0)
        return -EINVAL;
    *out = (uint64_t)v;
    return 0;
}

static int parse_metadata(qlab_safetensors *st, json_object *md, qlab_err *err)
{
    if (!json_object_is_type(md, json_type_object))
        return qlab_err_set(err, -EINVAL, "%s: __metadata__ is not a JSON object", st->path);
    size_t n = (size_t)json_object_object_length(md);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return -ENOMEM;
    json_object_object_foreach(md, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return qlab_err_set(err, -EINVAL, "%s: __metadata__ value of '%s' is not a string",
                                st->path, key);
        st->meta_keys[st->nmeta] = strdup(key);
        st->meta_values[st->nmeta] = strdup(json_object_get_string(val));
        st->nmeta++;
        if (!st->meta_keys[st->nmeta - 1] || !st->meta_values[st->nmeta - 1])
            return -ENOMEM;
    }
    return 0;
}

/* Fills t from its header entry; offsets are checked against data_len here, overlaps
 * later (they need all tensors). */
static int parse_tensor(qlab_safetensors *st, const char *name, json_object *desc,
                        size_t data_len, unsigned flags, qlab_tensor *t, qlab_err *err)
{
    const char *p = st->path;
    json_object *jd, *js, *jo;
    if (strlen(name) >= QLAB_NAME_MAX)
        return qlab_err_set(err, -EINVAL, "%s: tensor name '%.40s...' is too long", p, name);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!json_object_is_type(desc, json_type_object) ||
        !json_object_object_get_ex(desc, "dtype", &jd) ||
        !json_object_object_get_ex(desc, "shape", &js) ||
        !json_object_object_get_ex(desc, "data_offsets", &jo) ||
        !json_object_is_type(jd, json_type_string) || !json_object_is_type(js, json_type_array) ||
        !json_object_is_type(jo, json_type_array))
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': header entry needs dtype, shape and data_offsets",
                            p, name);
    const char *ds = json_object_get_string(jd);
    if (dtype_parse(ds, &t->dtype) < 0)
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': unsupported dtype '%s' (qlab reads F32, F16, BF16)",
                            p, name, ds);
    if (!dtype_info[t->dtype].is_float && !(flags & QLAB_ST_ALLOW_INT))
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': dtype %s is not a float type (F32, F16, BF16)",
                            p, name, ds);
    size_t nd = json_object_array_length(js);
    if (nd > QLAB_TENSOR_MAX_DIMS)
        return qlab_err_set(err, -EINVAL, "%s: tensor '%s': %zu dimensions (at most %d)", p,
                            name, nd, QLAB_TENSOR_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (get_u64(json_object_array_get_idx(js, i), &d) < 0)
            return qlab_err_set(err, -EINVAL, "%s: tensor '%s': shape has a non-integer entry",
                                p, name);
        t->shape[i] = (int64_t)d;
        if (d && numel > SIZE_MAX / d)
            overflow = 1;
        numel *= d;
    }
    uint64_t begin, end;
    if (json_object_array_length(jo) != 2 ||
        get_u64(json_object_array_get_idx(jo, 0), &begin) < 0 ||
        get_u64(json_object_array_get_idx(jo, 1), &end) < 0 || end < begin)
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end",
                            p, name);
    size_t esz = dtype_info[t->dtype].size;
    if (overflow || numel > SIZE_MAX / esz || numel * esz != end - begin)
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': shape x dtype %s is %zu bytes but data_offsets "
                            "span %llu bytes",
                            p, name, ds, overflow ? SIZE_MAX : numel * esz,
                            (unsigned long long)(end - begin));
    if (end > data_len)
        return qlab_err_set(err, -EINVAL,
                            "%s: tensor '%s': data_offsets [%llu, %llu) lie outside the data "
                            "section (%zu bytes; truncated file?)",
                            p, name, (unsigned long long)begin, (unsigned long long)end, data_len);
    t->numel = numel;
    t->offset = (size_t)begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const qlab_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Sets t->f32 (in place or converted) and rejects NaN/Inf. */
static int expose_float(qlab_safetensors *st, size_t idx, qlab_err *err)
{
    qlab_tensor *t = &st->tensors[idx];
    if (!dtype_info[t->dtype].is_float)
        return 0;
    const float *f;
    if (t->dtype == QLAB_DTYPE_F32 && ((uintptr_t)t->raw % _Alignof(float)) == 0) {
        f = t->raw;
    } else {
        float *c = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (!c)
            return -ENOMEM;
        const uint8_t *r = t->raw;
        for (size_t i = 0; i < t->numel; i++) {
            if (t->dtype == QLAB_DTYPE_F32) {
                memcpy(&c[i], r + 4 * i, 4);
            } else {
                uint16_t h = (uint16_t)(r[2 * i] | (r[2 * i + 1] << 8));
                c[i] = t->dtype == QLAB_DTYPE_F16 ? half_to_float(h) : bf16_to_float(h);
            }
        }
        st->owned[idx] = c;
        f = c;
    }
    for (size_t i = 0; i < t->numel; i++) {
        if (!isfinite(f[i]))
            return qlab_err_set(err, -EINVAL, "%s: tensor '%s': element %zu is %s", st->path,
                                t->name, i, isnan(f[i]) ? "NaN" : "infinite");
    }
    t->f32 = f;
    return 0;
}

static int st_parse(qlab_safetensors *st, unsigned flags, qlab_err *err)
{
    const char *p = st->path;
    const uint8_t *base = st->map;
    size_t size = st->map_len;
    if (size < 8)
        return qlab_err_set(err, -EINVAL,
                            "%s: truncated: %zu bytes, shorter than the 8-byte header length", p,
                            size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | base[i];
    if (hlen > size - 8)
        return qlab_err_set(err, -EINVAL,
                            "%s: header length %llu extends beyond the file (%zu bytes)", p,
                            (unsigned long long)hlen, size);
    if (hlen > 100u << 20)
        return qlab_err_set(err, -EINVAL, "%s: header length %llu is implausibly large", p,
                            (unsigned long long)hlen);
    const char *hdr = (const char *)base + 8;
    size_t data_len = size - 8 - (size_t)hlen;
    const uint8_t *data = base + 8 + hlen;

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    json_object *root = json_tokener_parse_ex(tok, hdr, (int)hlen);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int r = 0;
    if (!root || jerr != json_tokener_success) {
        r = qlab_err_set(err, -EINVAL, "%s: header is not valid JSON (%s)", p,
                         jerr == json_tokener_continue ? "it ends in the middle of a value"
                                                       : json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = used; i < hlen; i++) {
        if (hdr[i] != ' ' && hdr[i] != '\0' && hdr[i] != '\n' && hdr[i] != '\t') {
            r = qlab_err_set(err, -EINVAL, "%s: header has trailing data after the JSON", p);
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        r = qlab_err_set(err, -EINVAL, "%s: header is not a JSON object", p);
        goto out;
    }
    size_t n = (size_t)json_object_object_length(root);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->owned = calloc(n ? n : 1, sizeof *st->owned);
    if (!st->tensors || !st->owned) {
        r = -ENOMEM;
        goto out;
    }
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            r = parse_metadata(st, val, err);
        } else {
            r = parse_tensor(st, key, val, data_len, flags, &st->tensors[st->ntensors], err);
            st->ntensors++;
        }
        if (r < 0)
            goto out;
    }
    qsort(st->tensors, st->ntensors, sizeof *st->tensors, cmp_offset);
    for (size_t i = 0; i + 1 < st->ntensors; i++) {
        const qlab_tensor *a = &st->tensors[i], *b = &st->tensors[i + 1];
        if (a->offset + a->nbytes > b->offset) {
            r = qlab_err_set(err, -EINVAL,
                             "%s: tensor '%s' [%zu, %zu) overlaps tensor '%s' [%zu, %zu)", p,
                             b->name, b->offset, b->offset + b->nbytes, a->name, a->offset,
                             a->offset + a->nbytes);
            goto out;
        }
    }
    for (size_t i = 0; i < st->ntensors; i++) {
        st->tensors[i].raw = data + st->tensors[i].offset;
        r = expose_float(st, i, err);
        if (r < 0)
            goto out;
    }
out:
    json_object_put(root);
    return r;
}

int qlab_st_open(qlab_safetensors **out, const char *path, unsigned flags, qlab_err *err)
{
    qlab_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->path = strdup(path);
    if (!st->path) {
        free(st);
        return -ENOMEM;
    }
    int r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        r = qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    st->map_len = (size_t)sb.st_size;
    if (st->map_len > 0) {
        st->map = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (st->map == MAP_FAILED) {
            r = qlab_err_set(err, -errno, "%s: mmap: %s", path, strerror(errno));
            st->map = NULL;
            close(fd);
            goto fail;
        }
    }
    close(fd);
    r = st_parse(st, flags, err);
    if (r < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    qlab_st_close(st);
    return r;
}
