/* npy.c — NumPy .npy reader (float32/float64, little-endian, C order, 1-4 dims) and
 * float32 writer. Format: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for
 * 2.x/3.x), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}
 * padded with spaces and '\n', then the raw data. */
#include "qlab-npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20)

void qlab_npy_free(qlab_npy *npy)
{
    if (!npy)
        return;
    if (npy->map)
        munmap(npy->map, npy->map_len);
    else
        free(npy->data);
    npy->map = NULL;
    npy->map_len = 0;
    npy->data = NULL;
    npy->n = 0;
    npy->ndim = 0;
}

/* Finds the value that follows 'key': in the header dict; NULL if absent. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) {
        snprintf(pat, sizeof(pat), "\"%s\"", key);
        p = strstr(h, pat);
    }
    if (!p)
        return NULL;
    p += strlen(pat);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static int parse_header(const char *path, const char *h, int *elsize, qlab_npy *out,
                        qlab_err *err)
{
    const char *d = dict_value(h, "descr"), *f = dict_value(h, "fortran_order"),
               *s = dict_value(h, "shape");
    if (!d || !f || !s || (*d != '\'' && *d != '"'))
        return qlab_err_set(err, -EINVAL, "%s: bad .npy header", path);
    char q = *d++;
    const char *de = strchr(d, q);
    if (!de || de - d > 16)
        return qlab_err_set(err, -EINVAL, "%s: bad .npy header (descr)", path);
    char descr[20];
    memcpy(descr, d, (size_t)(de - d));
    descr[de - d] = '\0';
    if (!strcmp(descr, "<f4"))
        *elsize = 4;
    else if (!strcmp(descr, "<f8"))
        *elsize = 8;
    else
        return qlab_err_set(err, -ENOTSUP,
                            "%s: unsupported dtype '%s' (need float32 or float64, little-endian)",
                            path, descr);
    if (!strncmp(f, "True", 4))
        return qlab_err_set(err, -EINVAL,
                            "%s: Fortran-order array not supported (save it in C order)", path);
    if (strncmp(f, "False", 5))
        return qlab_err_set(err, -EINVAL, "%s: bad .npy header (fortran_order)", path);
    if (*s != '(')
        return qlab_err_set(err, -EINVAL, "%s: bad .npy header (shape)", path);
    s++;
    int nd = 0;
    size_t n = 1;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == ')')
            break;
        if (!isdigit((unsigned char)*s))
            return qlab_err_set(err, -EINVAL, "%s: bad .npy header (shape)", path);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || v > SIZE_MAX)
            return qlab_err_set(err, -EINVAL, "%s: bad .npy header (shape)", path);
        if (nd == QLAB_NPY_MAX_DIMS)
            return qlab_err_set(err, -EINVAL, "%s: more than %d dimensions", path,
                                QLAB_NPY_MAX_DIMS);
        if (v && n > SIZE_MAX / 8 / v)
            return qlab_err_set(err, -EINVAL, "%s: shape too large", path);
        n *= (size_t)v;
        out->shape[nd++] = (size_t)v;
        s = end;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == ',')
            s++;
        else if (*s != ')')
            return qlab_err_set(err, -EINVAL, "%s: bad .npy header (shape)", path);
    }
    if (nd == 0)
        return qlab_err_set(err, -EINVAL, "%s: 0-dimensional array (need 1 to %d dimensions)",
                            path, QLAB_NPY_MAX_DIMS);
    out->ndim = nd;
    out->n = n;
    return 0;
}

/* Large tensors get 2 MiB-aligned memory advised for transparent huge pages: filling 64 MiB
 * then takes 32 page faults instead of 16384 (Debian's default THP mode is "madvise"). */
float *qlab_npy_alloc_f32(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    const size_t huge = (size_t)2 << 20;
    if (bytes < 2 * huge)
        return malloc(bytes);
    void *p = NULL;
    if (posix_memalign(&p, huge, (bytes + huge - 1) / huge * huge) != 0)
        return NULL;
    madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
    return p;
}

/* Reads and parses the header; on success the stream is at the first data byte, whose
 * offset goes to *data_off. */
static int read_header(const char *path, FILE *fp, qlab_npy *r, int *elsize, size_t *data_off,
                       qlab_err *err)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, NPY_MAGIC, 6))
        return qlab_err_set(err, -EINVAL, "%s: not a .npy file (bad magic)", path);
    uint32_t hlen;
    size_t pre_len = 10;
    if (pre[6] == 1) {
        hlen = pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2)
            return qlab_err_set(err, -EIO, "%s: truncated .npy header", path);
        hlen = pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        pre_len = 12;
    } else {
        return qlab_err_set(err, -ENOTSUP, "%s: unsupported .npy version %d.%d", path, pre[6],
                            pre[7]);
    }
    if (hlen > NPY_MAX_HEADER)
        return qlab_err_set(err, -EINVAL, "%s: bad .npy header (length %u)", path, hlen);
    char *hdr = malloc(hlen + 1);
    if (!hdr)
        return -ENOMEM;
    int ret = 0;
    if (fread(hdr, 1, hlen, fp) != hlen) {
        ret = qlab_err_set(err, -EIO, "%s: truncated .npy header", path);
    } else {
        hdr[hlen] = '\0';
        ret = parse_header(path, hdr, elsize, r, err);
    }
    free(hdr);
    *data_off = pre_len + hlen;
    return ret;
}

/* Maps the float32 data read-only (page-cache pages, no copy); 1 if done, 0 to read instead. */
static int map_data(const char *path, FILE *fp, size_t off, qlab_npy *r, qlab_err *err)
{
    struct stat st;
    size_t nbytes = r->n * sizeof(float);
    if (off % sizeof(float) || fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    if ((size_t)st.st_size < off + nbytes) {
        size_t got = (size_t)st.st_size > off ? (size_t)st.st_size - off : 0;
        return qlab_err_set(err, -EIO, "%s: truncated file: %zu of %zu data bytes", path, got,
                            nbytes);
    }
    void *base = mmap(NULL, off + nbytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fileno(fp), 0);
    if (base == MAP_FAILED)
        return 0;
    r->map = base;
    r->map_len = off + nbytes;
    r->data = (float *)((char *)base + off);
    return 1;
}

static int load(const char *path, int map, qlab_npy *out, qlab_err *err)
{
    qlab_npy r = {0};
    void *raw = NULL;       /* float64 staging buffer, NULL for float32 */
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
    int elsize = 4;
    size_t off = 0;
    int ret = read_header(path, fp, &r, &elsize, &off, err);
    if (ret < 0)
        goto out;
    if (map && elsize == 4 && (ret = map_data(path, fp, off, &r, err)) != 0) {
        if (ret > 0) {
            ret = 0;
            *out = r;
        }
        fclose(fp);
        return ret;
    }
    size_t nbytes = r.n * (size_t)elsize;
    /* The header's shape is a claim: check it against the file before allocating for it
     * (a 200-byte file must not make us ask for terabytes). */
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
        ((uint64_t)st.st_size < off || (uint64_t)st.st_size - off < nbytes)) {
        ret = qlab_err_set(err, -EIO, "%s: truncated file: %llu of %zu data bytes", path,
                           (unsigned long long)((uint64_t)st.st_size > off ? st.st_size - off : 0),
                           nbytes);
        goto out;
    }
    r.data = qlab_npy_alloc_f32(r.n);
    if (elsize == 8)
        raw = malloc(nbytes ? nbytes : 1);
    if (!r.data || (elsize == 8 && !raw)) {
        ret = -ENOMEM;
        goto out;
    }
    size_t got = fread(raw ? raw : (void *)r.data, 1, nbytes, fp);
    if (got != nbytes) {
        ret = qlab_err_set(err, -EIO, "%s: truncated file: %zu of %zu data bytes", path, got,
                           nbytes);
        goto out;
    }
    if (elsize == 8) {
        const double *dv = raw;
        for (size_t i = 0; i < r.n; i++)
            r.data[i] = (float)dv[i];
    }
    *out = r;
    r.data = NULL;
out:
    free(raw);
    free(r.data);
    fclose(fp);
    return ret;
}

int qlab_npy_read(const char *path, qlab_npy *out, qlab_err *err)
{
    return load(path, 0, out, err);
}

int qlab_npy_map(const char *path, qlab_npy *out, qlab_err *err)
{
    return load(path, 1, out, err);
}

int qlab_npy_write_f32(const char *path, const float *data, int ndim, const size_t *shape,
                       qlab_err *err)
{
    if (ndim < 1 || ndim > QLAB_NPY_MAX_DIMS || !shape)
        return qlab_err_set(err, -EINVAL, "%s: bad shape for .npy output", path);
    char dict[256];
    int len = snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(dict + len, sizeof(dict) - (size_t)len, "%zu,%s", shape[i],
                        i + 1 < ndim ? " " : "");
        n *= shape[i];
    }
    if (ndim > 1)
        len--;   /* "(3, 4)" but "(3,)" */
    len += snprintf(dict + len, sizeof(dict) - (size_t)len, "), }");
    /* Pad with spaces so that magic + length + dict + '\n' is a multiple of 64. */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 };
    size_t hlen = (size_t)len + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return qlab_err_set(err, -errno, "%s: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, (size_t)len, fp) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    ok = ok && fwrite(data, sizeof(float), n, fp) == n;
    if (fclose(fp) != 0)
        ok = 0;
    if (!ok)
        return qlab_err_set(err, -EIO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
