/* config.c — quantization configuration: defaults, validation, parsing of the CLI / YAML
 * spellings, block counts and the §3 parameter formulas. */
#include "qlab-quant.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void qlab_qconfig_init(qlab_qconfig *cfg)
{
    cfg->bits = 8;
    cfg->scheme = QLAB_SCHEME_SYMMETRIC;
    cfg->granularity = QLAB_GRAN_TENSOR;
    cfg->group_size = 128;
    cfg->calibration = QLAB_CALIB_MINMAX;
    cfg->percentile = 99.9;
}

int qlab_qrange(int bits, int32_t *qmin, int32_t *qmax)
{
    if (!((bits >= 2 && bits <= 8) || bits == 16))
        return -EINVAL;
    *qmin = -(INT32_C(1) << (bits - 1));
    *qmax = (INT32_C(1) << (bits - 1)) - 1;
    return 0;
}

int qlab_qconfig_validate(const qlab_qconfig *cfg)
{
    int32_t a, b;
    if (!cfg || qlab_qrange(cfg->bits, &a, &b) < 0)
        return -EINVAL;
    if (cfg->scheme != QLAB_SCHEME_SYMMETRIC && cfg->scheme != QLAB_SCHEME_ASYMMETRIC)
        return -EINVAL;
    if (cfg->granularity != QLAB_GRAN_TENSOR && cfg->granularity != QLAB_GRAN_CHANNEL &&
        cfg->granularity != QLAB_GRAN_GROUP)
        return -EINVAL;
    if (cfg->granularity == QLAB_GRAN_GROUP && cfg->group_size <= 0)
        return -EINVAL;
    switch (cfg->calibration) {
    case QLAB_CALIB_MINMAX:
    case QLAB_CALIB_MSE:
    case QLAB_CALIB_ENTROPY:
        break;
    case QLAB_CALIB_PERCENTILE:
        if (!(cfg->percentile > 0.0 && cfg->percentile <= 100.0))
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    return 0;
}

size_t qlab_qparams_nblocks(size_t rows, size_t cols, const qlab_qconfig *cfg)
{
    if (qlab_qconfig_validate(cfg) < 0)
        return 0;
    switch (cfg->granularity) {
    case QLAB_GRAN_TENSOR:
        return 1;
    case QLAB_GRAN_CHANNEL:
        return rows;
    case QLAB_GRAN_GROUP:
        return rows * ((cols + (size_t)cfg->group_size - 1) / (size_t)cfg->group_size);
    }
    return 0;
}

int qlab_qparams_alloc(qlab_qparams *p, size_t nblocks)
{
    float *s = malloc((nblocks ? nblocks : 1) * sizeof(*s));
    int32_t *z = malloc((nblocks ? nblocks : 1) * sizeof(*z));
    if (!s || !z) {
        free(s);
        free(z);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nblocks; i++) {
        s[i] = 1.0f;
        z[i] = 0;
    }
    p->nblocks = nblocks;
    p->scale = s;
    p->zero_point = z;
    return 0;
}

void qlab_qparams_free(qlab_qparams *p)
{
    if (!p)
        return;
    free(p->scale);
    free(p->zero_point);
    p->scale = NULL;
    p->zero_point = NULL;
    p->nblocks = 0;
}

size_t qlab_packed_bytes(size_t n, int bits)
{
    /* ceil(n * bits / 8) without overflowing n * bits. */
    return n / 8 * (size_t)bits + ((n % 8) * (size_t)bits + 7) / 8;
}

size_t qlab_quant_bytes(size_t rows, size_t cols, const qlab_qconfig *cfg)
{
    size_t nb = qlab_qparams_nblocks(rows, cols, cfg);
    if (nb == 0 && rows * cols != 0)
        return 0;
    size_t bytes = qlab_packed_bytes(rows * cols, cfg->bits) + 4 * nb;
    if (cfg->scheme == QLAB_SCHEME_ASYMMETRIC)
        bytes += nb * (cfg->bits == 16 ? 2 : 1);
    return bytes;
}

/* The §3 formulas, in float32 like torch's observers (scale = range / levels computed on
 * float tensors), so that users who compare with PyTorch see the same numbers. */
int qlab_params_from_range(double lo, double hi, int bits, qlab_scheme scheme,
                           float *scale, int32_t *zero_point)
{
    int32_t qmin, qmax;
    if (qlab_qrange(bits, &qmin, &qmax) < 0 || !(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return -EINVAL;
    float s;
    int32_t zp = 0;
    if (scheme == QLAB_SCHEME_SYMMETRIC) {
        float t = (float)fmax(fabs(lo), fabs(hi));
        s = t / (float)qmax;
    } else if (scheme == QLAB_SCHEME_ASYMMETRIC) {
        float flo = (float)fmin(lo, 0.0), fhi = (float)fmax(hi, 0.0);
        float range = fhi - flo;
        if (isinf(range))   /* |lo| and |hi| near FLT_MAX: do the division in double */
            s = (float)(((double)fhi - (double)flo) / (double)(qmax - qmin));
        else
            s = range / (float)(qmax - qmin);
        if (!(s >= FLT_EPSILON))
            s = FLT_EPSILON;
        float z = (float)qmin - nearbyintf(flo / s);
        z = z < (float)qmin ? (float)qmin : z;
        z = z > (float)qmax ? (float)qmax : z;
        zp = (int32_t)z;
    } else {
        return -EINVAL;
    }
    if (!(s >= FLT_EPSILON))
        s = FLT_EPSILON;
    *scale = s;
    *zero_point = zp;
    return 0;
}

int qlab_config_parse_scheme(const char *s, qlab_qconfig *cfg)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "symmetric"))
        cfg->scheme = QLAB_SCHEME_SYMMETRIC;
    else if (!strcmp(s, "asymmetric"))
        cfg->scheme = QLAB_SCHEME_ASYMMETRIC;
    else
        return -EINVAL;
    return 0;
}

/* Parses a whole decimal number; -EINVAL on trailing text, overflow or emptiness. */
static int parse_double(const char *s, double *out)
{
    char *end;
    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

int qlab_config_parse_granularity(const char *s, qlab_qconfig *cfg)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "tensor")) {
        cfg->granularity = QLAB_GRAN_TENSOR;
        return 0;
    }
    if (!strcmp(s, "channel")) {
        cfg->granularity = QLAB_GRAN_CHANNEL;
        return 0;
    }
    if (!strncmp(s, "group:", 6)) {
        const char *g = s + 6;
        char *end;
        if (*g < '0' || *g > '9')
            return -EINVAL;
        errno = 0;
        long v = strtol(g, &end, 10);
        if (*end || errno || v <= 0 || v > (1L << 30))
            return -EINVAL;
        cfg->granularity = QLAB_GRAN_GROUP;
        cfg->group_size = (int)v;
        return 0;
    }
    return -EINVAL;
}

int qlab_config_parse_calibration(const char *s, qlab_qconfig *cfg)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "minmax")) {
        cfg->calibration = QLAB_CALIB_MINMAX;
        return 0;
    }
    if (!strcmp(s, "mse")) {
        cfg->calibration = QLAB_CALIB_MSE;
        return 0;
    }
    if (!strcmp(s, "entropy")) {
        cfg->calibration = QLAB_CALIB_ENTROPY;
        return 0;
    }
    if (!strncmp(s, "percentile:", 11)) {
        double p;
        if (parse_double(s + 11, &p) < 0 || !(p > 0.0 && p <= 100.0))
            return -EINVAL;
        cfg->calibration = QLAB_CALIB_PERCENTILE;
        cfg->percentile = p;
        return 0;
    }
    return -EINVAL;
}

const char *qlab_scheme_name(qlab_scheme s)
{
    return s == QLAB_SCHEME_ASYMMETRIC ? "asymmetric" : "symmetric";
}

const char *qlab_granularity_name(qlab_granularity g)
{
    switch (g) {
    case QLAB_GRAN_CHANNEL:
        return "channel";
    case QLAB_GRAN_GROUP:
        return "group";
    default:
        return "tensor";
    }
}

const char *qlab_calibration_name(qlab_calibration c)
{
    switch (c) {
    case QLAB_CALIB_PERCENTILE:
        return "percentile";
    case QLAB_CALIB_MSE:
        return "mse";
    case QLAB_CALIB_ENTROPY:
        return "entropy";
    default:
        return "minmax";
    }
}
