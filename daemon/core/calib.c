/* calib.c — how each block's threshold T (symmetric) or range [lo, hi] (asymmetric) is
 * chosen: minmax, percentile, mse, entropy (PRODUCT.md §3), then the §3 formulas. */
#include "core-private.h"
#include "parallel.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- mse: the clip ratio r in (0, 1] minimising the quantization MSE -------------------
 * The candidate range is r * [lo, hi] (symmetric: T = r * max|x|). Search: a grid of 20
 * ratios r = 0.05, 0.10, ..., 1.00, then golden-section refinement on [r* - 0.05,
 * r* + 0.05] around the best grid point (12 steps, bracket 0.1 * 0.618^12 ~ 3e-4). The MSE
 * is not unimodal in r in general (rounding makes it ragged), so the grid finds the basin
 * and the refinement only polishes; the best point evaluated anywhere wins, and r = 1
 * (min/max) is always a candidate, so mse is never worse than minmax on this data.
 * Blocks above 2^18 values are searched on a deterministic strided sample of 2^18 values
 * (each evaluation is a full fake-quant pass; 32 passes over 16M values would cost ~1 s). */
#define MSE_SAMPLE ((size_t)1 << 18)

typedef struct mse_ctx {
    const float *x;
    size_t n;
    const qlab_qconfig *cfg;
    double lo, hi;
} mse_ctx;

static int mse_at(const mse_ctx *c, double r, double *sse)
{
    float s;
    int32_t zp;
    qlab_fq_args a;
    qlab_fq_stats st;
    int e = qlab_params_from_range(r * c->lo, r * c->hi, c->cfg->bits, c->cfg->scheme, &s, &zp);
    if (e < 0)
        return e;
    if ((e = qlab_fq_args_init(&a, s, zp, c->cfg->bits)) < 0)
        return e;
    if ((e = qlab_fq_span(c->x, c->n, &a, NULL, &st)) < 0)
        return e;
    *sse = st.sum_e2;
    return 0;
}

static int mse_search(const float *x, size_t n, const qlab_qconfig *cfg, double lo, double hi,
                      double *rbest)
{
    float *sample = NULL;
    mse_ctx c = { .x = x, .n = n, .cfg = cfg, .lo = lo, .hi = hi };
    if (n > MSE_SAMPLE) {
        sample = malloc(MSE_SAMPLE * sizeof(*sample));
        if (!sample)
            return -ENOMEM;
        size_t stride = n / MSE_SAMPLE;
        for (size_t i = 0; i < MSE_SAMPLE; i++)
            sample[i] = x[i * stride];
        c.x = sample;
        c.n = MSE_SAMPLE;
    }
    int r = 0;
    double best = INFINITY, br = 1.0, v;
    for (int i = 20; i >= 1 && r == 0; i--) {
        double ratio = i / 20.0;
        if ((r = mse_at(&c, ratio, &v)) == 0 && v < best) {
            best = v;
            br = ratio;
        }
    }
    const double g = 0.6180339887498949;
    double a = fmax(br - 0.05, 1e-3), b = fmin(br + 0.05, 1.0);
    double x1 = b - g * (b - a), x2 = a + g * (b - a), f1 = 0, f2 = 0;
    if (r == 0)
        r = mse_at(&c, x1, &f1);
    if (r == 0)
        r = mse_at(&c, x2, &f2);
    for (int it = 0; it < 12 && r == 0; it++) {
        if (f1 < best) { best = f1; br = x1; }
        if (f2 < best) { best = f2; br = x2; }
        if (f1 <= f2) {
            b = x2; x2 = x1; f2 = f1;
            x1 = b - g * (b - a);
            r = mse_at(&c, x1, &f1);
        } else {
            a = x1; x1 = x2; f1 = f2;
            x2 = a + g * (b - a);
            r = mse_at(&c, x2, &f2);
        }
    }
    if (r == 0) {
        if (f1 < best) { best = f1; br = x1; }
        if (f2 < best) { br = x2; }
        *rbest = br;
    }
    free(sample);
    return r;
}

/* --- entropy: TensorRT's method on a 2048-bin histogram of |x| over [0, max|x|] ---------
 * TensorRT's 2048 bins assume large tensors. A small block (a group of 64 weights, a row of
 * 784) would leave almost every bin empty, and KL then only sees noise, so a block of n
 * values uses min(2048, max(2^(b-1), n / 16)) bins: about 16 values per bin or more, and
 * never fewer bins than quantized levels (then the threshold is max|x|, no clipping). */
#define ENTROPY_BINS 2048

typedef struct hist_job {
    const float *x;
    size_t n;
    float scale;
    uint64_t *h;    /* ENTROPY_BINS per chunk */
} hist_job;

static void hist_tiles(void *ctx, size_t tb, size_t te, unsigned chunk)
{
    hist_job *J = ctx;
    size_t b = tb * QLAB_TILE, e = te * QLAB_TILE < J->n ? te * QLAB_TILE : J->n;
    qlab_quant_dsp_get()->abs_hist(J->x + b, e - b, J->scale, ENTROPY_BINS,
                                   J->h + (size_t)chunk * ENTROPY_BINS);
}

int qlab_abs_histogram(const float *x, size_t n, int nbins, double hist_max, uint64_t *hist)
{
    if (nbins <= 0 || !(hist_max > 0.0) || !isfinite(hist_max) || (n && (!x || !hist)))
        return -EINVAL;
    /* A denormal hist_max would make the bin scale infinite, and 0 * inf is NaN. */
    float scale = (float)fmin(nbins / hist_max, FLT_MAX);
    if (nbins != ENTROPY_BINS) {
        qlab_quant_dsp_get()->abs_hist(x, n, scale, nbins, hist);
        return 0;
    }
    const unsigned maxc = 64;   /* chunk indexes are below qlab_threads() <= 64 */
    hist_job J = { .x = x, .n = n, .scale = scale };
    J.h = calloc((size_t)(maxc + 1) * ENTROPY_BINS, sizeof(uint64_t));
    if (!J.h)
        return -ENOMEM;
    qlab_parallel_for((n + QLAB_TILE - 1) / QLAB_TILE, QLAB_TILE_GRAIN, 1, hist_tiles, &J);
    for (unsigned c = 0; c <= maxc; c++)
        for (int k = 0; k < ENTROPY_BINS; k++)
            hist[k] += J.h[(size_t)c * ENTROPY_BINS + (size_t)k];
    free(J.h);
    return 0;
}

/* --- dispatch ------------------------------------------------------------------------ */
int qlab_calibrate_block(const float *x, size_t n, const qlab_qconfig *cfg, float *scale,
                         int32_t *zp)
{
    const int sym = cfg->scheme == QLAB_SCHEME_SYMMETRIC;
    double lo = 0.0, hi = 0.0;
    float mn = 0.0f, mx = 0.0f;
    int r = 0;
    if (n == 0)
        return qlab_params_from_range(0.0, 0.0, cfg->bits, cfg->scheme, scale, zp);
    if (cfg->calibration != QLAB_CALIB_PERCENTILE) {
        if ((r = qlab_range_minmax(x, n, &mn, &mx)) < 0)
            return r;
        lo = mn;
        hi = mx;
        if (sym) {
            hi = fmax(fabs(lo), fabs(hi));
            lo = -hi;
        }
    }
    switch (cfg->calibration) {
    case QLAB_CALIB_MINMAX:
        break;
    case QLAB_CALIB_PERCENTILE:
        if (sym) {
            if ((r = qlab_percentile(x, n, cfg->percentile, 1, &hi)) < 0)
                return r;
            lo = -hi;
        } else {
            if ((r = qlab_percentile(x, n, cfg->percentile, 0, &hi)) < 0)
                return r;
            if ((r = qlab_percentile(x, n, 100.0 - cfg->percentile, 0, &lo)) < 0)
                return r;
        }
        break;
    case QLAB_CALIB_MSE: {
        double rb = 1.0;
        if (hi - lo > 0.0) {
            if ((r = mse_search(x, n, cfg, sym ? -hi : fmin(lo, 0.0), sym ? hi : fmax(hi, 0.0),
                                &rb)) < 0)
                return r;
            lo = rb * (sym ? lo : fmin(lo, 0.0));
            hi = rb * (sym ? hi : fmax(hi, 0.0));
        }
        break;
    }
    case QLAB_CALIB_ENTROPY: {
        double amax = fmax(fabs(lo), fabs(hi)), t;
        size_t nb = n / 16, nq = (size_t)1 << (cfg->bits - 1);
        nb = nb < nq ? nq : nb;
        nb = nb > ENTROPY_BINS ? ENTROPY_BINS : nb;
        if (amax > 0.0) {
            uint64_t *h = calloc(nb, sizeof(*h));
            if (!h)
                return -ENOMEM;
            r = qlab_abs_histogram(x, n, (int)nb, amax, h);
            if (r == 0)
                r = qlab_entropy_threshold(h, (int)nb, amax, cfg->bits, &t);
            free(h);
            if (r < 0)
                return r;
            /* Asymmetric: the symmetric threshold clips both ends of the data's range. */
            lo = fmax(lo, -t);
            hi = fmin(hi, t);
        }
        break;
    }
    }
    return qlab_params_from_range(lo, hi, cfg->bits, cfg->scheme, scale, zp);
}

typedef struct calib_job {
    const float *x;
    size_t rows, cols, G, ngr;
    const qlab_qconfig *cfg;
    qlab_qparams *p;
    int err[65];
} calib_job;

static void calib_blocks(void *ctx, size_t bb, size_t be, unsigned chunk)
{
    calib_job *J = ctx;
    for (size_t b = bb; b < be; b++) {
        size_t r = b / J->ngr, g = b % J->ngr;
        size_t off = r * J->cols + g * J->G;
        size_t len = J->cols - g * J->G < J->G ? J->cols - g * J->G : J->G;
        int e = qlab_calibrate_block(J->x + off, len, J->cfg, &J->p->scale[b],
                                     &J->p->zero_point[b]);
        if (e < 0 && J->err[chunk] == 0)
            J->err[chunk] = e;
    }
}

int qlab_calibrate(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                   qlab_qparams *out)
{
    if (!out || qlab_qconfig_validate(cfg) < 0 || (cols && rows > SIZE_MAX / cols) ||
        (rows * cols != 0 && !x))
        return -EINVAL;
    qlab_qparams p;
    size_t nb = qlab_qparams_nblocks(rows, cols, cfg);
    int r = qlab_qparams_alloc(&p, cfg->granularity == QLAB_GRAN_TENSOR ? 1 : nb);
    if (r < 0)
        return r;
    if (cfg->granularity == QLAB_GRAN_TENSOR) {
        r = qlab_calibrate_block(x, rows * cols, cfg, &p.scale[0], &p.zero_point[0]);
    } else if (nb > 0) {
        calib_job J = { .x = x, .rows = rows, .cols = cols, .cfg = cfg, .p = &p };
        /* Block b is row b / ngr, values [g G, min(cols, g G + G)) of it, g = b % ngr; a
         * channel is one group as wide as the row. */
        J.G = cfg->granularity == QLAB_GRAN_GROUP ? (size_t)cfg->group_size : (cols ? cols : 1);
        J.ngr = (cols + J.G - 1) / J.G;
        if (J.ngr == 0)
            J.ngr = 1;
        size_t blen = cols < J.G ? cols : J.G;
        size_t grain = blen ? (QLAB_TILE * QLAB_TILE_GRAIN + blen - 1) / blen : nb;
        /* mse and entropy cost far more per value than a pass over memory: split finely. */
        if (cfg->calibration == QLAB_CALIB_MSE || cfg->calibration == QLAB_CALIB_ENTROPY)
            grain = 1;
        qlab_parallel_for(nb, grain, 1, calib_blocks, &J);
        for (int c = 0; c < 65 && r == 0; c++)
            r = J.err[c];
    }
    if (r < 0) {
        qlab_qparams_free(&p);
        return r;
    }
    *out = p;
    return 0;
}
