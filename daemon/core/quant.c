/* quant.c — quantize / dequantize / fake-quantize drivers: walk the tensor in fixed tiles
 * on all cores, cut each tile into spans of constant (scale, zero point), and hand the
 * spans to the kernel table. */
#include "core-private.h"
#include "parallel.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct layout {
    size_t rows, cols, n, G, ngr;
    qlab_granularity gran;
} layout;

static void layout_init(layout *L, size_t rows, size_t cols, const qlab_qconfig *cfg)
{
    L->rows = rows;
    L->cols = cols;
    L->n = rows * cols;
    L->gran = cfg->granularity;
    L->G = cfg->granularity == QLAB_GRAN_GROUP ? (size_t)cfg->group_size : cols;
    L->ngr = L->G ? (cols + L->G - 1) / L->G : 0;
}

/* End of the span of constant parameters that contains element i; its block in *blk. */
static size_t span_end(const layout *L, size_t i, size_t *blk)
{
    if (L->gran == QLAB_GRAN_TENSOR) {
        *blk = 0;
        return L->n;
    }
    size_t r = i / L->cols, c = i % L->cols;
    if (L->gran == QLAB_GRAN_CHANNEL) {
        *blk = r;
        return (r + 1) * L->cols;
    }
    size_t g = c / L->G, ce = (g + 1) * L->G;
    *blk = r * L->ngr + g;
    return r * L->cols + (ce < L->cols ? ce : L->cols);
}

int qlab_fq_args_init(qlab_fq_args *a, float scale, int32_t zp, int bits)
{
    int32_t qmin, qmax;
    if (qlab_qrange(bits, &qmin, &qmax) < 0 || !(scale > 0.0f) || !isfinite(scale) ||
        zp < qmin || zp > qmax)
        return -EINVAL;
    memset(a, 0, sizeof(*a));
    a->scale = scale;
    a->inv_scale = 1.0f / scale;
    a->izp = zp;
    a->zp = (float)zp;
    a->qmin = (float)qmin;
    a->qmax = (float)qmax;
    return 0;
}

enum job_kind { JOB_QUANTIZE, JOB_DEQUANTIZE, JOB_FAKE };

typedef struct job {
    enum job_kind kind;
    const qlab_quant_dsp *dsp;
    layout L;
    const qlab_fq_args *args;   /* one per block */
    const float *x;
    const int16_t *codes_in;
    int16_t *codes;
    float *y;
    int inplace;                /* y == x: streaming stores would evict lines just read */
    qlab_fq_stats *tile_stats;  /* JOB_FAKE: one per tile */
    uint64_t *hist;             /* JOB_FAKE with histogram: nbins per chunk */
    int nbins;
    float hist_lo, hist_inv_width;
    int bad[64 + 1];            /* per chunk: input not finite */
} job;

static void stats_add(qlab_fq_stats *t, const qlab_fq_stats *s)
{
    t->sum_e2 += s->sum_e2;
    t->sum_x2 += s->sum_x2;
    t->sum_xe += s->sum_xe;
    t->max_abs_err = s->max_abs_err > t->max_abs_err ? s->max_abs_err : t->max_abs_err;
    t->nclip += s->nclip;
}

static void run_tiles(void *ctx, size_t tb, size_t te, unsigned chunk)
{
    job *J = ctx;
    const qlab_quant_dsp *d = J->dsp;
    for (size_t t = tb; t < te; t++) {
        size_t b = t * QLAB_TILE, e = b + QLAB_TILE < J->L.n ? b + QLAB_TILE : J->L.n;
        qlab_fq_stats ts = {0};
        for (size_t i = b; i < e;) {
            size_t blk, se = span_end(&J->L, i, &blk);
            if (se > e)
                se = e;
            const qlab_fq_args *a = &J->args[blk];
            switch (J->kind) {
            case JOB_QUANTIZE:
                if (d->quantize(J->x + i, se - i, a, J->codes + i))
                    J->bad[chunk] = 1;
                break;
            case JOB_DEQUANTIZE:
                d->dequantize(J->codes_in + i, se - i, a, J->y + i);
                break;
            case JOB_FAKE: {
                qlab_fq_args la = *a;
                qlab_fq_stats ss;
                if (J->inplace)
                    la.stream = 0;
                if (J->hist) {
                    la.hist = J->hist + (size_t)chunk * (size_t)J->nbins;
                    la.nbins = J->nbins;
                    la.hist_lo = J->hist_lo;
                    la.hist_inv_width = J->hist_inv_width;
                }
                d->fake_quant(J->x + i, se - i, &la, J->y ? J->y + i : NULL, &ss);
                stats_add(&ts, &ss);
                break;
            }
            }
            i = se;
        }
        if (J->tile_stats)
            J->tile_stats[t] = ts;
    }
}

/* Runs J over the whole tensor; for JOB_FAKE combines tile sums in tile order into *st and
 * chunk histograms into hist_out. */
static int run_job(job *J, qlab_fq_stats *st, uint64_t *hist_out)
{
    size_t ntiles = (J->L.n + QLAB_TILE - 1) / QLAB_TILE;
    /* Chunk indexes are below qlab_threads() <= 64; size for the bound, not the current
     * setting, which another thread may change meanwhile. */
    const unsigned maxc = 64;
    memset(J->bad, 0, sizeof(J->bad));
    J->tile_stats = NULL;
    J->hist = NULL;
    if (J->kind == JOB_FAKE) {
        J->tile_stats = calloc(ntiles ? ntiles : 1, sizeof(*J->tile_stats));
        if (!J->tile_stats)
            return -ENOMEM;
        if (hist_out) {
            J->hist = calloc((size_t)(maxc + 1) * (size_t)J->nbins, sizeof(uint64_t));
            if (!J->hist) {
                free(J->tile_stats);
                return -ENOMEM;
            }
        }
    }
    qlab_parallel_for(ntiles, QLAB_TILE_GRAIN, 1, run_tiles, J);
    int r = 0;
    for (unsigned c = 0; c <= 64; c++)
        if (J->bad[c])
            r = -EDOM;
    if (r == 0 && J->kind == JOB_FAKE) {
        qlab_fq_stats s = {0};
        for (size_t t = 0; t < ntiles; t++)
            stats_add(&s, &J->tile_stats[t]);
        if (!isfinite(s.sum_x2))
            r = -EDOM;
        *st = s;
        if (hist_out)
            for (unsigned c = 0; c <= maxc; c++)
                for (int k = 0; k < J->nbins; k++)
                    hist_out[k] += J->hist[(size_t)c * (size_t)J->nbins + (size_t)k];
    }
    free(J->tile_stats);
    free(J->hist);
    J->tile_stats = NULL;
    J->hist = NULL;
    return r;
}

static int check_shape(size_t rows, size_t cols, const qlab_qconfig *cfg,
                       const qlab_qparams *p)
{
    if (qlab_qconfig_validate(cfg) < 0)
        return -EINVAL;
    if (cols && rows > SIZE_MAX / cols)
        return -EINVAL;
    if (p && p->nblocks != qlab_qparams_nblocks(rows, cols, cfg))
        return -EINVAL;
    return 0;
}

/* Outputs above this many values do not stay in cache anyway: stream them. */
#define STREAM_MIN ((size_t)1 << 22)

static int make_args(const qlab_qconfig *cfg, const qlab_qparams *p, size_t n,
                     qlab_fq_args **out)
{
    qlab_fq_args *a = calloc(p->nblocks ? p->nblocks : 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t b = 0; b < p->nblocks; b++) {
        int r = qlab_fq_args_init(&a[b], p->scale[b], p->zero_point[b], cfg->bits);
        if (r < 0) {
            free(a);
            return r;
        }
        a[b].stream = n >= STREAM_MIN;
    }
    *out = a;
    return 0;
}

int qlab_quantize(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                  const qlab_qparams *p, int16_t *codes)
{
    int r = check_shape(rows, cols, cfg, p);
    if (r < 0 || !p || (rows * cols != 0 && (!x || !codes)))
        return r < 0 ? r : -EINVAL;
    job J = { .kind = JOB_QUANTIZE, .dsp = qlab_quant_dsp_get(), .x = x, .codes = codes };
    layout_init(&J.L, rows, cols, cfg);
    qlab_fq_args *a;
    if ((r = make_args(cfg, p, rows * cols, &a)) < 0)
        return r;
    J.args = a;
    r = run_job(&J, NULL, NULL);
    free(a);
    return r;
}

int qlab_dequantize(const int16_t *codes, size_t rows, size_t cols, const qlab_qconfig *cfg,
                    const qlab_qparams *p, float *out)
{
    int r = check_shape(rows, cols, cfg, p);
    if (r < 0 || !p || (rows * cols != 0 && (!out || !codes)))
        return r < 0 ? r : -EINVAL;
    job J = { .kind = JOB_DEQUANTIZE, .dsp = qlab_quant_dsp_get(), .codes_in = codes,
              .y = out };
    layout_init(&J.L, rows, cols, cfg);
    qlab_fq_args *a;
    if ((r = make_args(cfg, p, rows * cols, &a)) < 0)
        return r;
    J.args = a;
    r = run_job(&J, NULL, NULL);
    free(a);
    return r;
}

static void fill_metrics(qlab_metrics *m, const qlab_fq_stats *s, size_t n)
{
    m->n = n;
    m->mse = n ? s->sum_e2 / (double)n : 0.0;
    m->sqnr_db = s->sum_e2 > 0.0 ? 10.0 * log10(s->sum_x2 / s->sum_e2) : INFINITY;
    m->max_abs_error = s->max_abs_err;
    /* y = x + e: <x, y> = x2 + xe, |y|^2 = x2 + 2 xe + e2. */
    double xy = s->sum_x2 + s->sum_xe;
    double y2 = fmax(s->sum_x2 + 2.0 * s->sum_xe + s->sum_e2, 0.0);
    if (s->sum_x2 == 0.0 && y2 == 0.0)
        m->cosine = 1.0;
    else if (s->sum_x2 == 0.0 || y2 == 0.0)
        m->cosine = 0.0;
    else
        m->cosine = fmin(fmax(xy / sqrt(s->sum_x2 * y2), -1.0), 1.0);
    m->clip_fraction = n ? (double)s->nclip / (double)n : 0.0;
}

/* The fused pass (and, for an automatic histogram range, a second one). */
static int fake_with_args(job *J, float *out, qlab_metrics *m)
{
    qlab_fq_stats s;
    int want_hist = m && m->hist && m->nbins > 0;
    int auto_range = want_hist && !(m->hist_lo < m->hist_hi);
    J->kind = JOB_FAKE;
    J->dsp = qlab_quant_dsp_get();
    J->y = out;
    J->inplace = out == J->x;
    J->nbins = 0;
    if (want_hist && !auto_range) {
        J->nbins = m->nbins;
        J->hist_lo = m->hist_lo;
        J->hist_inv_width = (float)m->nbins / (m->hist_hi - m->hist_lo);
    }
    uint64_t *h = NULL;
    if (want_hist) {
        h = calloc((size_t)m->nbins, sizeof(*h));
        if (!h)
            return -ENOMEM;
    }
    int r;
    if (!auto_range) {
        r = run_job(J, &s, h);
    } else {
        /* Pass 1: the sums and the largest error (no output, so that x is still intact
         * when out == x); pass 2: the histogram over [-max, max], writing out. */
        J->y = NULL;
        r = run_job(J, &s, NULL);
        if (r == 0) {
            float w = s.max_abs_err > FLT_MIN ? s.max_abs_err : FLT_MIN;
            qlab_fq_stats s2;
            J->y = out;
            J->nbins = m->nbins;
            J->hist_lo = -w;
            J->hist_inv_width = (float)m->nbins / (2.0f * w);
            r = run_job(J, &s2, h);
            if (r == 0) {
                m->hist_lo = -w;
                m->hist_hi = w;
            }
        }
    }
    if (r == 0 && m) {
        fill_metrics(m, &s, J->L.n);
        if (want_hist)
            for (int k = 0; k < m->nbins; k++)
                m->hist[k] += h[k];
    }
    free(h);
    return r;
}

int qlab_fake_quant_params(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                           const qlab_qparams *p, float *out, qlab_metrics *m)
{
    int r = check_shape(rows, cols, cfg, p);
    if (r < 0 || !p || (rows * cols != 0 && !x))
        return r < 0 ? r : -EINVAL;
    job J = { .x = x };
    layout_init(&J.L, rows, cols, cfg);
    qlab_fq_args *a;
    if ((r = make_args(cfg, p, rows * cols, &a)) < 0)
        return r;
    J.args = a;
    /* No separate finiteness pass: a NaN or Inf in x makes sum x^2 non-finite (the kernels
     * are defined for them), which run_job reports as -EDOM. */
    r = fake_with_args(&J, out, m);
    free(a);
    return r;
}

int qlab_fake_quant(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                    float *out, qlab_qparams *params, qlab_metrics *m)
{
    qlab_qparams p = {0};
    int r = qlab_calibrate(x, rows, cols, cfg, &p);
    if (r < 0)
        return r;
    job J = { .x = x };
    layout_init(&J.L, rows, cols, cfg);
    qlab_fq_args *a;
    if ((r = make_args(cfg, &p, rows * cols, &a)) < 0) {
        qlab_qparams_free(&p);
        return r;
    }
    J.args = a;
    /* qlab_calibrate has already rejected NaN and Inf. */
    r = fake_with_args(&J, out, m);
    free(a);
    if (r == 0 && params)
        *params = p;
    else
        qlab_qparams_free(&p);
    return r;
}

int qlab_fq_span(const float *x, size_t n, const qlab_fq_args *a, float *y, qlab_fq_stats *st)
{
    job J = { .kind = JOB_FAKE, .dsp = qlab_quant_dsp_get(), .args = a, .x = x, .y = y };
    J.L.rows = 1;
    J.L.cols = n;
    J.L.n = n;
    J.L.gran = QLAB_GRAN_TENSOR;
    return run_job(&J, st, NULL);
}

typedef struct mm_job {
    const float *x;
    size_t n;
    float lo[65], hi[65];
    int bad[65], used[65];
} mm_job;

static void mm_tiles(void *ctx, size_t tb, size_t te, unsigned chunk)
{
    mm_job *J = ctx;
    size_t b = tb * QLAB_TILE, e = te * QLAB_TILE < J->n ? te * QLAB_TILE : J->n;
    J->bad[chunk] = qlab_quant_dsp_get()->minmax(J->x + b, e - b, &J->lo[chunk], &J->hi[chunk]);
    J->used[chunk] = 1;
}

int qlab_range_minmax(const float *x, size_t n, float *mn, float *mx)
{
    mm_job J = { .x = x, .n = n };
    size_t ntiles = (n + QLAB_TILE - 1) / QLAB_TILE;
    qlab_parallel_for(ntiles, QLAB_TILE_GRAIN, 1, mm_tiles, &J);
    float lo = x[0], hi = x[0];
    for (int c = 0; c < 65; c++) {
        if (!J.used[c])
            continue;
        if (J.bad[c])
            return -EDOM;
        lo = J.lo[c] < lo ? J.lo[c] : lo;
        hi = J.hi[c] > hi ? J.hi[c] : hi;
    }
    *mn = lo;
    *mx = hi;
    return 0;
}
