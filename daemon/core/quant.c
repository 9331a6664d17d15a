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
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

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
    const qlab_fq_args *args;   /* one per block (NULL with inline calibration) */
    const float *x;
    const int16_t *codes_in;
    int16_t *codes;
    float *y;
    int16_t *q16;               /* JOB_FAKE: codes written in the same pass, or NULL */
    int8_t *q8;
    int inplace;                /* y == x: streaming stores would evict lines just read */
    /* JOB_FAKE with inline calibration (cal_cfg not NULL): each block is calibrated just
     * before its first span is processed, while it is still in cache, and its parameters
     * go to cal_p (see run_tiles). */
    const qlab_qconfig *cal_cfg;
    qlab_qparams *cal_p;
    int cal_stream;
    qlab_fq_stats *tile_stats;  /* JOB_FAKE: one per tile */
    uint64_t *hist;             /* JOB_FAKE with histogram: nbins per chunk */
    int nbins;
    float hist_lo, hist_inv_width;
    int bad[64 + 1];            /* per chunk: input not finite */
    int err[64 + 1];            /* per chunk: first calibration error */
    size_t ntiles, batch;       /* tiles are claimed `batch` at a time ... */
    size_t next_tile;           /* ... from this counter (atomic) */
} job;

static void stats_add(qlab_fq_stats *t, const qlab_fq_stats *s)
{
    t->sum_e2 += s->sum_e2;
    t->sum_x2 += s->sum_x2;
    t->sum_xe += s->sum_xe;
    t->max_abs_err = s->max_abs_err > t->max_abs_err ? s->max_abs_err : t->max_abs_err;
    t->nclip += s->nclip;
}

/* Calibrates block blk into *a for the batch of tiles that starts at element cbeg. The
 * batch that holds the block's first element stores its parameters; a block that straddles
 * a batch boundary is also calibrated by the next batch (the same deterministic result),
 * which does not store them, so no two threads write the same entry. */
static int calibrate_inline(job *J, size_t blk, size_t cbeg, qlab_fq_args *a)
{
    const layout *L = &J->L;
    size_t r = blk / L->ngr, g = blk % L->ngr;
    size_t off = r * L->cols + g * L->G;
    size_t len = L->cols - g * L->G < L->G ? L->cols - g * L->G : L->G;
    float s;
    int32_t zp;
    int e = qlab_calibrate_block(J->x + off, len, J->cal_cfg, &s, &zp);
    if (e == 0)
        e = qlab_fq_args_init(a, s, zp, J->cal_cfg->bits);
    if (e < 0)
        return e;
    a->stream = J->cal_stream;
    if (off >= cbeg) {
        J->cal_p->scale[blk] = s;
        J->cal_p->zero_point[blk] = zp;
    }
    return 0;
}

/* Whether a span's output is streamed (when the job streams at all). Measured with
 * per-channel int8 of 4M floats in rows of 256..16384 values: a span whose
 * output starts on a 32-byte boundary and is a whole number of vectors is streamed entirely
 * and pays from 4 KiB of output on; below that the switches between streamed and cached
 * stores cost more than they save. A span that needs head or tail elements (ordinary
 * stores into cache lines shared with streamed ones) pays only from 8192 values on. */
#define STREAM_SPAN_MIN ((size_t)8192)
#define STREAM_CLEAN_MIN_BYTES ((size_t)4096)

static int stream_span(const void *out, size_t elsize, size_t len)
{
    size_t bytes = len * elsize;
    return len >= STREAM_SPAN_MIN ||
           ((uintptr_t)out % 32 == 0 && bytes % 32 == 0 && bytes >= STREAM_CLEAN_MIN_BYTES);
}

/* Makes this thread's non-temporal stores globally visible (they are weakly ordered): once
 * per batch of tiles, after all its spans, instead of once per span. */
static void store_fence(void)
{
#if defined(__x86_64__)
    _mm_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static void run_tiles(void *ctx, size_t tb, size_t te, unsigned chunk)
{
    job *J = ctx;
    const qlab_quant_dsp *d = J->dsp;
    size_t cblk = SIZE_MAX;      /* the block whose parameters are in ca */
    qlab_fq_args ca;
    int streamed = 0;
    for (size_t t = tb; t < te; t++) {
        size_t b = t * QLAB_TILE, e = b + QLAB_TILE < J->L.n ? b + QLAB_TILE : J->L.n;
        qlab_fq_stats ts = {0};
        for (size_t i = b; i < e;) {
            size_t blk, se = span_end(&J->L, i, &blk);
            if (se > e)
                se = e;
            const qlab_fq_args *a;
            if (J->cal_cfg) {
                if (blk != cblk) {
                    int r = calibrate_inline(J, blk, tb * QLAB_TILE, &ca);
                    if (r < 0) {
                        J->err[chunk] = r;
                        goto out;
                    }
                    cblk = blk;
                }
                a = &ca;
            } else {
                a = &J->args[blk];
            }
            qlab_fq_args la = *a;
            if (la.stream) {
                int quant = J->kind == JOB_QUANTIZE;
                const void *o = quant ? (const void *)(J->codes + i)
                                      : J->y ? (const void *)(J->y + i) : NULL;
                if (J->inplace || !o || !stream_span(o, quant ? 2 : 4, se - i))
                    la.stream = QLAB_STREAM_OFF;
                else
                    la.stream = QLAB_STREAM_UNFENCED;
            }
            streamed |= la.stream != QLAB_STREAM_OFF;
            switch (J->kind) {
            case JOB_QUANTIZE:
                if (d->quantize(J->x + i, se - i, &la, J->codes + i))
                    J->bad[chunk] = 1;
                break;
            case JOB_DEQUANTIZE:
                d->dequantize(J->codes_in + i, se - i, &la, J->y + i);
                break;
            case JOB_FAKE: {
                qlab_fq_stats ss;
                if (J->hist) {
                    la.hist = J->hist + (size_t)chunk * (size_t)J->nbins;
                    la.nbins = J->nbins;
                    la.hist_lo = J->hist_lo;
                    la.hist_inv_width = J->hist_inv_width;
                }
                d->fake_quant(J->x + i, se - i, &la, J->y ? J->y + i : NULL,
                              J->q16 ? J->q16 + i : NULL, J->q8 ? J->q8 + i : NULL, &ss);
                stats_add(&ts, &ss);
                break;
            }
            }
            i = se;
        }
        if (J->tile_stats)
            J->tile_stats[t] = ts;
    }
out:
    if (streamed)
        store_fence();
}

/* Each thread (chunk) claims batches of consecutive tiles from a shared counter instead of
 * owning one fixed share: on a shared machine one of the threads may be descheduled for
 * milliseconds, and the others then take over its tiles instead of waiting for it. The sums
 * are kept per tile and combined in tile order, and histogram counts are integers, so the
 * results do not depend on which thread ran which tile. */
static void run_batches(void *ctx, size_t wb, size_t we, unsigned chunk)
{
    job *J = ctx;
    for (;;) {
        size_t tb = __atomic_fetch_add(&J->next_tile, J->batch, __ATOMIC_RELAXED);
        if (tb >= J->ntiles)
            return;
        run_tiles(J, tb, J->ntiles - tb > J->batch ? tb + J->batch : J->ntiles, chunk);
    }
}

/* Batches per thread: enough for one thread to absorb another's delay, few enough that
 * the counter and the blocks calibrated twice at batch edges cost nothing. */
#define BATCHES_PER_THREAD 8

/* Runs J over the whole tensor; for JOB_FAKE combines tile sums in tile order into *st and
 * chunk histograms into hist_out. */
static int run_job(job *J, qlab_fq_stats *st, uint64_t *hist_out)
{
    size_t ntiles = (J->L.n + QLAB_TILE - 1) / QLAB_TILE;
    /* Chunk indexes are below qlab_threads() <= 64; size for the bound, not the current
     * setting, which another thread may change meanwhile. */
    const unsigned maxc = 64;
    memset(J->bad, 0, sizeof(J->bad));
    memset(J->err, 0, sizeof(J->err));
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
    /* Below QLAB_TILE_GRAIN tiles per thread, fewer threads (one for a small tensor). */
    size_t nw = qlab_threads(), maxw = ntiles / QLAB_TILE_GRAIN;
    nw = nw < maxw ? nw : maxw;
    nw = nw ? nw : 1;
    J->ntiles = ntiles;
    J->next_tile = 0;
    J->batch = nw > 1 ? ntiles / (nw * BATCHES_PER_THREAD) : ntiles;
    J->batch = J->batch ? J->batch : 1;
    if (ntiles)
        qlab_parallel_for(nw, 1, 1, run_batches, J);
    int r = 0;
    for (unsigned c = 0; c <= 64; c++)
        if (J->bad[c] && r == 0)
            r = -EDOM;
    for (unsigned c = 0; c <= 64; c++)
        if (J->err[c] < 0) {
            r = J->err[c];
            break;
        }
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
        a[b].stream = n >= STREAM_MIN ? QLAB_STREAM_FENCED : QLAB_STREAM_OFF;
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
        int16_t *q16 = J->q16;
        int8_t *q8 = J->q8;
        J->y = NULL;
        J->q16 = NULL;
        J->q8 = NULL;
        r = run_job(J, &s, NULL);
        if (r == 0) {
            float w = s.max_abs_err > FLT_MIN ? s.max_abs_err : FLT_MIN;
            qlab_fq_stats s2;
            J->y = out;
            J->q16 = q16;
            J->q8 = q8;
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

/* Blocks of up to this many values (256 KiB, well inside L2) are calibrated inline under
 * min/max: each block's min and max, then its fused pass while it is still in cache, so the
 * tensor is read from memory once instead of twice. Larger blocks (and per-tensor) take
 * the separate, parallel calibration pass. */
#define INLINE_CAL_MAX ((size_t)1 << 16)

static int fake_quant_calibrated(const float *x, size_t rows, size_t cols,
                                 const qlab_qconfig *cfg, float *out, int16_t *q16,
                                 int8_t *q8, qlab_qparams *params, qlab_metrics *m)
{
    if (qlab_qconfig_validate(cfg) < 0 || (q8 && cfg->bits > 8) ||
        (cols && rows > SIZE_MAX / cols))
        return -EINVAL;
    const size_t n = rows * cols;
    job J = { .x = x, .q16 = q16, .q8 = q8 };
    layout_init(&J.L, rows, cols, cfg);
    qlab_qparams p = {0};
    qlab_fq_args *a = NULL;
    int r;
    /* In place, a block that straddles two batches would be read by one batch's calibration
     * while another thread's batch overwrites it. */
    int inline_cal = cfg->calibration == QLAB_CALIB_MINMAX &&
                     cfg->granularity != QLAB_GRAN_TENSOR && n > 0 && out != x &&
                     (J.L.G < cols ? J.L.G : cols) <= INLINE_CAL_MAX;
    if (inline_cal) {
        if (!x)
            return -EINVAL;
        if ((r = qlab_qparams_alloc(&p, qlab_qparams_nblocks(rows, cols, cfg))) < 0)
            return r;
        J.cal_cfg = cfg;
        J.cal_p = &p;
        J.cal_stream = n >= STREAM_MIN ? QLAB_STREAM_FENCED : QLAB_STREAM_OFF;
    } else {
        if ((r = qlab_calibrate(x, rows, cols, cfg, &p)) < 0)
            return r;
        if ((r = make_args(cfg, &p, n, &a)) < 0) {
            qlab_qparams_free(&p);
            return r;
        }
        J.args = a;
    }
    /* NaN and Inf are rejected by the calibration (separate or inline). */
    r = fake_with_args(&J, out, m);
    free(a);
    if (r == 0 && params)
        *params = p;
    else
        qlab_qparams_free(&p);
    return r;
}

int qlab_fake_quant(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                    float *out, qlab_qparams *params, qlab_metrics *m)
{
    return fake_quant_calibrated(x, rows, cols, cfg, out, NULL, NULL, params, m);
}

int qlab_fake_quant_codes(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                          float *out, int16_t *codes16, int8_t *codes8, qlab_qparams *params,
                          qlab_metrics *m)
{
    return fake_quant_calibrated(x, rows, cols, cfg, out, codes16, codes8, params, m);
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
    if (n <= QLAB_TILE * QLAB_TILE_GRAIN) {
        /* One chunk (what qlab_parallel_for would run inline), without the job record: a
         * per-channel or per-group calibration calls this once per block. */
        float lo, hi;
        if (qlab_quant_dsp_get()->minmax(x, n, &lo, &hi))
            return -EDOM;
        *mn = lo < x[0] ? lo : x[0];
        *mx = hi > x[0] ? hi : x[0];
        return 0;
    }
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
