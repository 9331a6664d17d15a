/* dataset.c — IDX files (LeCun's MNIST format, which Fashion-MNIST reuses), gzip or plain
 * (zlib's gzread reads both): big-endian u32 magic 0x0000TTDD (TT = 0x08 unsigned byte,
 * DD = number of dimensions), DD big-endian u32 sizes, then the data. */
#include "qlab-model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "qlab-config.h"

typedef struct idx_file {
    int ndim;
    uint32_t dims[4];
    uint8_t *data;
    size_t len;
} idx_file;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_all(const char *path, uint8_t **out, size_t *len, qlab_err *err)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return qlab_err_set(err, errno ? -errno : -ENOMEM, "%s: %s", path,
                            errno ? strerror(errno) : "cannot open");
    gzbuffer(g, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    int r = 0;
    for (;;) {
        if (!buf) {
            r = -ENOMEM;
            break;
        }
        if (n == cap) {
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) {
                r = -ENOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        unsigned want = (unsigned)((cap - n) > (1u << 30) ? (1u << 30) : (cap - n));
        int got = gzread(g, buf + n, want);
        if (got < 0) {
            int zerr;
            const char *m = gzerror(g, &zerr);
            /* zlib's message already starts with the path. */
            r = qlab_err_set(err, -EIO, "%s", m);
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    gzclose(g);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int idx_read(const char *path, idx_file *f, qlab_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = read_all(path, &buf, &len, err);
    if (r < 0)
        return r;
    if (len < 4 || buf[0] != 0 || buf[1] != 0 || buf[2] != 0x08 || buf[3] < 1 || buf[3] > 4) {
        free(buf);
        return qlab_err_set(err, -EINVAL, "%s: not an unsigned-byte IDX file (bad magic)", path);
    }
    f->ndim = buf[3];
    size_t hdr = 4 + 4 * (size_t)f->ndim, total = 1;
    if (len < hdr) {
        free(buf);
        return qlab_err_set(err, -EINVAL, "%s: truncated IDX header", path);
    }
    for (int i = 0; i < f->ndim; i++) {
        f->dims[i] = be32(buf + 4 + 4 * i);
        if (__builtin_mul_overflow(total, (size_t)f->dims[i], &total)) {
            free(buf);
            return qlab_err_set(err, -EINVAL, "%s: IDX dimensions are too large", path);
        }
    }
    if (len - hdr != total) {
        free(buf);
        return qlab_err_set(err, -EINVAL, "%s: IDX dimensions need %zu bytes of data, file has %zu",
                            path, total, len - hdr);
    }
    memmove(buf, buf + hdr, total);
    f->data = buf;
    f->len = total;
    return 0;
}

void qlab_dataset_free(qlab_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}

int qlab_dataset_load(qlab_dataset **out, const char *images_path, const char *labels_path,
                      qlab_err *err)
{
    idx_file im = {0}, lb = {0};
    int r = idx_read(images_path, &im, err);
    if (r < 0)
        return r;
    r = idx_read(labels_path, &lb, err);
    if (r < 0) {
        free(im.data);
        return r;
    }
    qlab_dataset *ds = NULL;
    if (im.ndim != 3 || lb.ndim != 1) {
        r = qlab_err_set(err, -EINVAL, "%s: expected images [N, H, W] and labels [N]",
                         im.ndim != 3 ? images_path : labels_path);
        goto fail;
    }
    if (im.dims[0] != lb.dims[0]) {
        r = qlab_err_set(err, -EINVAL, "%s: %u labels for %u images in %s", labels_path,
                         lb.dims[0], im.dims[0], images_path);
        goto fail;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds) {
        r = -ENOMEM;
        goto fail;
    }
    ds->n = im.dims[0];
    ds->h = (int)im.dims[1];
    ds->w = (int)im.dims[2];
    ds->images = im.data;
    ds->labels = lb.data;
    *out = ds;
    return 0;
fail:
    free(im.data);
    free(lb.data);
    return r;
}

int qlab_dataset_load_fmnist(qlab_dataset **out, const char *dir, int train, qlab_err *err)
{
    char ip[4096], lp[4096];
    const char *pre = train ? "train" : "t10k";
    if (!dir)
        dir = QLAB_FASHION_MNIST_DIR;
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, pre);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, pre);
    return qlab_dataset_load(out, ip, lp, err);
}
