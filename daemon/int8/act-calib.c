/* act-calib.c — activation statistics for calibration: collected once from N training
 * images through the FP32 model, from which every (method, bit-width) range is derived.
 *
 * Histogram: QLAB_ACT_BINS bins of width 2R / BINS over [-R, R), R = 2^e. Doubling R maps
 * old bin pairs onto one new bin exactly (the old range is the middle half of the new one),
 * so a histogram grown in steps equals the one built at the final range from the start
 * (up to values within one ulp of a bin edge). Per-thread histograms merge the same way. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "qlab-int8.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int qlab_calib_indices(size_t total, size_t n, uint64_t seed, uint32_t *out)
{
    if (!out || n > total || total > UINT32_MAX)
        return -EINVAL;
    uint32_t *perm = malloc(total * sizeof(uint32_t));
    if (!perm)
        return -ENOMEM;
    for (size_t i = 0; i < total; i++)
        perm[i] = (uint32_t)i;
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)(splitmix64(&s) % (total - i));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        out[i] = perm[i];
    }
    free(perm);
    return 0;
}

static void grow(qlab_act_hist *h, double range)
{
    while (h->range < range) {
        uint64_t nb[QLAB_ACT_BINS] = {0};
        /* old bin i covers [-R + i w, ...); in the doubled range it lies in new bin
         * BINS/4 + i/2 */
        for (size_t i = 0; i < QLAB_ACT_BINS; i++)
            nb[QLAB_ACT_BINS / 4 + i / 2] += h->bins[i];
        memcpy(h->bins, nb, sizeof nb);
        h->range *= 2;
    }
}

int qlab_act_hist_add(qlab_act_hist *h, const float *x, size_t n)
{
    if (n == 0)
        return 0;
    float mn = x[0], mx = x[0];
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return -EDOM;
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    double amax = fmax(fabs((double)mn), fabs((double)mx));
    if (h->count == 0) {
        h->min = mn;
        h->max = mx;
        h->range = 0x1p-20;
        memset(h->bins, 0, sizeof h->bins);
    } else {
        h->min = fmin(h->min, mn);
        h->max = fmax(h->max, mx);
    }
    /* |x| == R would fall outside [-R, R): grow until strictly inside */
    if (amax >= h->range)
        grow(h, nextafter(amax, INFINITY));
    double inv = QLAB_ACT_BINS / (2 * h->range);
    for (size_t i = 0; i < n; i++) {
        long b = (long)floor(((double)x[i] + h->range) * inv);
        b = b < 0 ? 0 : b >= QLAB_ACT_BINS ? QLAB_ACT_BINS - 1 : b;
        h->bins[b]++;
    }
    h->count += n;
    return 0;
}

void qlab_act_hist_merge(qlab_act_hist *dst, const qlab_act_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0) {
        *dst = *src;
        return;
    }
    qlab_act_hist tmp = *src;
    if (tmp.range < dst->range)
        grow(&tmp, dst->range);
    else
        grow(dst, tmp.range);
    for (size_t i = 0; i < QLAB_ACT_BINS; i++)
        dst->bins[i] += tmp.bins[i];
    dst->min = fmin(dst->min, src->min);
    dst->max = fmax(dst->max, src->max);
    dst->count += src->count;
}

/* Value below which a fraction q of the mass lies, counts spread uniformly in each bin,
 * clamped to the exact [min, max]. */
static double hist_quantile(const qlab_act_hist *h, double q)
{
    double target = q * (double)h->count, acc = 0, w = 2 * h->range / QLAB_ACT_BINS;
    for (size_t i = 0; i < QLAB_ACT_BINS; i++) {
        double c = (double)h->bins[i];
        if (c > 0 && acc + c >= target) {
            double v = -h->range + w * ((double)i + (target - acc) / c);
            return fmin(fmax(v, h->min), h->max);
        }
        acc += c;
    }
    return h->max;
}

/* Quantization MSE of the histogram (bin centres) with range [lo, hi] at `bits`. */
static double hist_mse(const qlab_act_hist *h, double lo, double hi, int bits)
{
    float scale;
    int32_t zp, qmin, qmax;
    if (qlab_params_from_range(lo, hi, bits, QLAB_SCHEME_ASYMMETRIC, &scale, &zp) < 0 ||
        qlab_qrange(bits, &qmin, &qmax) < 0)
        return INFINITY;
    double w = 2 * h->range / QLAB_ACT_BINS, err = 0;
    float inv = 1.0f / scale;
    for (size_t i = 0; i < QLAB_ACT_BINS; i++) {
        if (!h->bins[i])
            continue;
        float x = (float)(-h->range + w * ((double)i + 0.5));
        float q = nearbyintf(x * inv) + (float)zp;
        q = q < (float)qmin ? (float)qmin : q > (float)qmax ? (float)qmax : q;
        double d = (double)((q - (float)zp) * scale) - x;
        err += d * d * (double)h->bins[i];
    }
    return err;
}

int qlab_act_range(const qlab_act_hist *h, qlab_calibration calib, double percentile,
                   int bits, double *lo, double *hi)
{
    int32_t qmin, qmax;
    if (!h || h->count == 0 || qlab_qrange(bits, &qmin, &qmax) < 0)
        return -EINVAL;
    double l = h->min, u = h->max;
    switch (calib) {
    case QLAB_CALIB_MINMAX:
        break;
    case QLAB_CALIB_PERCENTILE:
        if (!(percentile > 0 && percentile <= 100))
            return -EINVAL;
        l = hist_quantile(h, 1 - percentile / 100);
        u = hist_quantile(h, percentile / 100);
        break;
    case QLAB_CALIB_MSE: {
        /* 100 clip ratios of the widened [min, max]; the MSE curve of a unimodal
         * activation is smooth, 1 % steps are below one bin of gain. */
        double bl = fmin(l, 0), bu = fmax(u, 0), best = INFINITY;
        for (int s = 100; s >= 1; s--) {
            double f = s / 100.0, e = hist_mse(h, bl * f, bu * f, bits);
            if (e < best) {
                best = e;
                l = bl * f;
                u = bu * f;
            }
        }
        break;
    }
    case QLAB_CALIB_ENTROPY: {
        uint64_t *abs = calloc(QLAB_ACT_BINS / 2, sizeof(uint64_t));
        if (!abs)
            return -ENOMEM;
        /* fold: negative bin j covers |x| in (R - (j+1) w, R - j w] */
        for (size_t i = 0; i < QLAB_ACT_BINS / 2; i++)
            abs[i] = h->bins[QLAB_ACT_BINS / 2 + i] + h->bins[QLAB_ACT_BINS / 2 - 1 - i];
        double t;
        int r = qlab_entropy_threshold(abs, QLAB_ACT_BINS / 2, h->range, bits, &t);
        free(abs);
        if (r < 0)
            return r;
        l = fmax(l, -t);
        u = fmin(u, t);
        break;
    }
    default:
        return -EINVAL;
    }
    *lo = l;
    *hi = u;
    return 0;
}

int qlab_act_qparams(const qlab_act_hist *h, qlab_calibration calib, double percentile,
                     int bits, float *scale, int32_t *zp)
{
    double lo, hi;
    int r = qlab_act_range(h, calib, percentile, bits, &lo, &hi);
    if (r < 0)
        return r;
    return qlab_params_from_range(lo, hi, bits, QLAB_SCHEME_ASYMMETRIC, scale, zp);
}

typedef struct collect_ctx {
    size_t npoints;
    qlab_act_hist *per_chunk;   /* nchunks x npoints */
    int err;
} collect_ctx;

static void collect_hook(void *ctx, const qlab_model *m, size_t layer, int stage, float *buf,
                         size_t n, size_t per_sample, unsigned chunk)
{
    collect_ctx *c = ctx;
    size_t point;
    if (stage == 0 && layer == 0)
        point = 0;
    else if (stage == 1)
        point = layer + 1;
    else
        return;
    int r = qlab_act_hist_add(&c->per_chunk[chunk * c->npoints + point], buf, n * per_sample);
    if (r < 0)
        __atomic_store_n(&c->err, r, __ATOMIC_RELAXED);
}

void qlab_act_stats_free(qlab_act_stats *s)
{
    if (!s)
        return;
    free(s->points);
    free(s->indices);
    free(s);
}

int qlab_act_collect(const qlab_model *m, const qlab_dataset *train, size_t n, uint64_t seed,
                     qlab_act_stats **out, qlab_err *err)
{
    if (!m || !train || !out || n == 0 || n > train->n)
        return qlab_err_set(err, -EINVAL, "calibration: %zu images requested, %zu available",
                            n, train ? train->n : 0);
    unsigned nch = qlab_threads();
    qlab_act_stats *s = calloc(1, sizeof *s);
    collect_ctx c = {.npoints = m->nlayers + 1};
    float *input = NULL;
    int r = -ENOMEM;
    if (!s)
        return -ENOMEM;
    s->npoints = c.npoints;
    s->nimages = n;
    s->seed = seed;
    s->points = calloc(c.npoints, sizeof(qlab_act_hist));
    s->indices = malloc(n * sizeof(uint32_t));
    c.per_chunk = calloc((size_t)nch * c.npoints, sizeof(qlab_act_hist));
    input = malloc(n * m->in_size * sizeof(float));
    if (!s->points || !s->indices || !c.per_chunk || !input)
        goto fail;
    r = qlab_calib_indices(train->n, n, seed, s->indices);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        r = qlab_model_normalise(m, train, s->indices[i], 1, input + i * m->in_size);
        if (r < 0)
            goto fail;
    }
    qlab_forward_opts opts = {.hook = collect_hook, .hook_ctx = &c};
    r = qlab_model_forward(m, input, n, &opts, NULL, err);
    if (r == 0)
        r = c.err;
    if (r < 0) {
        if (r == -EDOM)
            qlab_err_set(err, r, "calibration: NaN or Inf in an activation");
        goto fail;
    }
    for (unsigned ch = 0; ch < nch; ch++)
        for (size_t p = 0; p < c.npoints; p++)
            qlab_act_hist_merge(&s->points[p], &c.per_chunk[ch * c.npoints + p]);
    free(c.per_chunk);
    free(input);
    *out = s;
    return 0;
fail:
    free(c.per_chunk);
    free(input);
    qlab_act_stats_free(s);
    return r;
}
