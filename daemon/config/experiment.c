/* experiment.c — loading an experiment file: read, map positions, libcyaml, checks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "experiment-private.h"

uint64_t qlab_fnv1a64(const void *data, size_t n)
{
    /* FNV-1a, 64-bit: offset basis 14695981039346656037, prime 1099511628211. */
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int qlab_exp_errorf(const qlab_ymap *map, const char *file, qlab_err *err, int code,
                    const char *path, int use_key, const char *fmt, ...)
{
    char msg[QLAB_ERR_MSG_MAX];
    int line = 1, col = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (map)
        qlab_ymap_locate(map, path, use_key, &line, &col);
    return qlab_err_set(err, code, "%s:%d:%d: %s", file, line, col, msg);
}

int qlab_experiment_locate(const qlab_experiment *e, const char *key_path, int *line,
                           int *col)
{
    const qlab_ymap *map = e->priv;
    const qlab_ynode *n = map ? qlab_ymap_find(map, key_path) : NULL;
    if (map)
        qlab_ymap_locate(map, key_path, !(n && strchr(key_path, '[') &&
                                          key_path[strlen(key_path) - 1] == ']'),
                         line, col);
    else
        *line = *col = 1;
    return n ? 0 : -ENOENT;
}

int qlab_experiment_error(const qlab_experiment *e, qlab_err *err, int code,
                          const char *key_path, const char *fmt, ...)
{
    char msg[QLAB_ERR_MSG_MAX];
    int line, col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qlab_experiment_locate(e, key_path, &line, &col);
    return qlab_err_set(err, code, "%s:%d:%d: %s", e->path, line, col, msg);
}

void qlab_experiment_to_new(const qlab_experiment *e, qlab_experiment_new *n)
{
    memset(n, 0, sizeof *n);
    n->name = e->name;
    n->yaml = e->yaml;
    n->yaml_path = e->abs_path;
    n->config_hash = e->config_hash;
    n->model_path = e->model_path;
    n->dataset = e->dataset;
    n->calib_samples = e->calib_samples;
    n->calib_seed = e->calib_seed;
    n->workers = e->workers;
}

void qlab_experiment_free(qlab_experiment *e)
{
    if (!e)
        return;
    if (e->priv) {
        qlab_ymap_free(e->priv);
        free(e->priv);
    }
    free(e->name);
    free(e->path);
    free(e->abs_path);
    free(e->dir);
    free(e->yaml);
    free(e->model_path);
    free(e->spec.layers);
    free(e->dataset);
    free(e->train_images);
    free(e->train_labels);
    free(e->test_images);
    free(e->test_labels);
    free(e->bits);
    free(e->schemes);
    free(e->granularities);
    free(e->calibrations);
    free(e->act_bits);
    free(e->act_calibrations);
    free(e->overrides);
    free(e->excludes);
    free(e);
}

int qlab_experiment_load_buffer(qlab_experiment **out, const char *yaml, size_t len,
                                const char *name, const char *base_dir, qlab_err *err)
{
    if (len > QLAB_EXPERIMENT_MAX_BYTES)
        return qlab_err_set(err, -EFBIG, "%s:1:1: file is %zu bytes, more than the limit of "
                            "%u", name, len, QLAB_EXPERIMENT_MAX_BYTES);
    if (memchr(yaml, '\0', len))
        return qlab_err_set(err, -EINVAL, "%s:1:1: not a text file (contains NUL bytes)",
                            name);
    qlab_experiment *e = calloc(1, sizeof *e);
    qlab_ymap *map = calloc(1, sizeof *map);
    int r = -ENOMEM;
    if (!e || !map)
        goto oom;
    e->priv = map;
    e->path = strdup(name);
    e->dir = strdup(base_dir && base_dir[0] ? base_dir : ".");
    e->yaml = malloc(len + 1);
    if (!e->path || !e->dir || !e->yaml)
        goto oom;
    memcpy(e->yaml, yaml, len);
    e->yaml[len] = '\0';
    e->yaml_len = len;
    r = qlab_ymap_build(map, yaml, len, name, err);
    if (r < 0)
        goto fail;
    qlab_exp_raw *raw = NULL;
    r = qlab_exp_raw_load(&raw, yaml, len, map, name, err);
    if (r < 0)
        goto fail;
    r = qlab_exp_build(e, raw, map, err);
    qlab_exp_raw_free(raw);
    if (r < 0)
        goto fail;
    *out = e;
    return 0;
oom:
    r = qlab_err_set(err, -ENOMEM, "%s: out of memory", name);
    if (!e)
        free(map);
fail:
    qlab_experiment_free(e);
    return r;
}

int qlab_experiment_load(qlab_experiment **out, const char *path, qlab_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return qlab_err_set(err, -EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > QLAB_EXPERIMENT_MAX_BYTES) {
        fclose(f);
        return qlab_err_set(err, -EFBIG, "%s:1:1: file is %lld bytes, more than the limit "
                            "of %u", path, (long long)sb.st_size, QLAB_EXPERIMENT_MAX_BYTES);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return qlab_err_set(err, -ENOMEM, "%s: out of memory", path);
    }
    size_t len = fread(buf, 1, (size_t)sb.st_size, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return qlab_err_set(err, -EIO, "%s: read error", path);
    }
    /* Relative paths inside resolve from the file's folder. */
    char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir) {
        free(buf);
        return qlab_err_set(err, -ENOMEM, "%s: out of memory", path);
    }
    int r = qlab_experiment_load_buffer(out, buf, len, path, dir, err);
    free(dir);
    free(buf);
    if (r == 0)
        (*out)->abs_path = realpath(path, NULL); /* NULL on failure: the path is optional */
    return r;
}
