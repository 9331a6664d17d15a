/* select.c — exact percentiles by O(n) selection (numpy's default "linear" method).
 *
 * numpy: h = (n - 1) * (P / 100), k0 = floor(h), k1 = min(k0 + 1, n - 1), g = h - k0,
 * d = (float)(v[k1] - v[k0]) (float32), result = g < 0.5 ? v[k0] + d * g
 * : v[k1] - d * (1 - g) (float64), where v is x sorted.
 *
 * Floats are mapped to order-preserving uint32 keys (|x|: the bits without the sign; x:
 * negative values bit-inverted, positive ones with the sign bit set) and selected as
 * integers. For large inputs a sample of 32768 keys (256 runs of 128) brackets the ranks
 * k0..k1 by keys [klo, khi] with a margin of 3 sqrt(m) sample positions (six standard
 * deviations of a sample quantile); one counting pass and one gathering pass (both on all
 * cores) keep only the ~3% of keys inside the bracket, and quickselect finishes there. If
 * the bracket misses the ranks (adversarial periodic data), the whole key array is
 * selected instead: the result is exact either way. */
#include "core-private.h"
#include "parallel.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_M ((size_t)32768)
#define SAMPLE_BLOCKS ((size_t)256)
#define SMALL_N ((size_t)65536)

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline uint32_t key_of(float f, int absval)
{
    return qlab_key_of_bits(f2u(f), absval);
}

static inline float float_of(uint32_t k, int absval)
{
    if (absval)
        return u2f(k);
    return u2f((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

static inline int nonfinite(float f)
{
    return (f2u(f) & 0x7f800000u) == 0x7f800000u;
}

static void swap_u(uint32_t *a, uint32_t *b)
{
    uint32_t t = *a;
    *a = *b;
    *b = t;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Rearranges a so that a[k] is the k-th smallest, everything before <= it and everything
 * after >= it. Quickselect with a median-of-three pivot; after 2 log2(n) rounds without
 * converging it sorts what is left (introselect's guard against quadratic inputs). */
static void select_k(uint32_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    int budget = 2 * (int)(log2((double)n + 1.0) + 1);
    while (hi > lo) {
        if (budget-- <= 0 || hi - lo < 16) {
            qsort(a + lo, hi - lo + 1, sizeof(*a), cmp_u32);
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swap_u(&a[mid], &a[lo]);
        if (a[hi] < a[lo]) swap_u(&a[hi], &a[lo]);
        if (a[hi] < a[mid]) swap_u(&a[hi], &a[mid]);
        uint32_t pivot = a[mid];
        /* Hoare partition: [lo, j] <= pivot <= [j + 1, hi]. */
        size_t i = lo - 1, j = hi + 1;
        for (;;) {
            do i++; while (a[i] < pivot);
            do j--; while (a[j] > pivot);
            if (i >= j)
                break;
            swap_u(&a[i], &a[j]);
        }
        if (k <= j)
            hi = j;
        else
            lo = j + 1;
    }
}

/* Values of ranks k0 and k1 (k1 = k0 or k0 + 1) of the n keys in a (reordered). */
static void select_pair(uint32_t *a, size_t n, size_t k0, size_t k1, uint32_t *v0, uint32_t *v1)
{
    select_k(a, n, k0);
    *v0 = a[k0];
    if (k1 == k0) {
        *v1 = *v0;
        return;
    }
    uint32_t m = a[k0 + 1];
    for (size_t i = k0 + 2; i < n; i++)
        m = a[i] < m ? a[i] : m;
    *v1 = m;
}

/* One pass on all cores: each chunk counts the keys below the bracket and gathers those
 * inside into its own buffer, sized for twice the expected share; a chunk that finds more
 * rescans its range into an exact buffer afterwards. */
#define MAX_CHUNKS 65

typedef struct pct_job {
    const float *x;
    size_t n;
    int absval;
    uint32_t klo, kspan;      /* bracket: klo <= key <= klo + kspan */
    double frac;              /* expected fraction of keys inside */
    size_t below[MAX_CHUNKS], inside[MAX_CHUNKS], cap[MAX_CHUNKS], b[MAX_CHUNKS], e[MAX_CHUNKS];
    uint32_t *cand[MAX_CHUNKS];
    int bad[MAX_CHUNKS], used[MAX_CHUNKS];
} pct_job;

static void scan_tiles(void *ctx, size_t tb, size_t te, unsigned c)
{
    pct_job *J = ctx;
    size_t b = tb * QLAB_TILE, e = te * QLAB_TILE < J->n ? te * QLAB_TILE : J->n;
    J->used[c] = 1;
    J->b[c] = b;
    J->e[c] = e;
    J->cap[c] = (size_t)(2.0 * J->frac * (double)(e - b)) + 4096;
    J->cand[c] = malloc(J->cap[c] * sizeof(uint32_t));
    if (!J->cand[c])
        J->cap[c] = 0;
    J->bad[c] = qlab_quant_dsp_get()->key_scan(J->x + b, e - b, J->absval, J->klo, J->kspan,
                                               &J->below[c], J->cand[c], J->cap[c],
                                               &J->inside[c]);
}

/* Whole-array selection (small inputs and the fallback). */
static int select_all(const float *x, size_t n, int absval, size_t k0, size_t k1,
                      uint32_t *v0, uint32_t *v1)
{
    uint32_t *a = malloc(n * sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (nonfinite(x[i])) {
            free(a);
            return -EDOM;
        }
        a[i] = key_of(x[i], absval);
    }
    select_pair(a, n, k0, k1, v0, v1);
    free(a);
    return 0;
}

static int select_bracketed(const float *x, size_t n, int absval, size_t k0, size_t k1,
                            uint32_t *v0, uint32_t *v1)
{
    /* The sample: SAMPLE_BLOCKS runs of consecutive values spread evenly over x (runs are
     * kind to the memory system; any bias only costs the fallback, never exactness). */
    uint32_t *s = malloc(SAMPLE_M * sizeof(*s));
    if (!s)
        return -ENOMEM;
    const size_t run = SAMPLE_M / SAMPLE_BLOCKS;
    for (size_t b = 0; b < SAMPLE_BLOCKS; b++) {
        size_t start = (size_t)((double)b * (double)(n - run) / (double)(SAMPLE_BLOCKS - 1));
        for (size_t i = 0; i < run; i++)
            s[b * run + i] = key_of(x[start + i], absval);
    }
    const double margin = 3.0 * sqrt((double)SAMPLE_M);
    double p0 = (double)k0 * SAMPLE_M / (double)n - margin;
    double p1 = (double)k1 * SAMPLE_M / (double)n + margin;
    uint32_t klo = 0, khi = UINT32_MAX;
    /* Only two order statistics of the sample are needed: select them, no sort. */
    if (p0 >= 0.0) {
        select_k(s, SAMPLE_M, (size_t)p0);
        klo = s[(size_t)p0];
    }
    if (p1 < (double)(SAMPLE_M - 1)) {
        select_k(s, SAMPLE_M, (size_t)p1);
        khi = s[(size_t)p1];
    }
    free(s);

    size_t ntiles = (n + QLAB_TILE - 1) / QLAB_TILE;
    pct_job *J = calloc(1, sizeof(*J));
    if (!J)
        return -ENOMEM;
    J->x = x;
    J->n = n;
    J->absval = absval;
    J->klo = klo;
    J->kspan = khi - klo;
    J->frac = (p1 - p0) / (double)SAMPLE_M;
    qlab_parallel_for(ntiles, QLAB_TILE_GRAIN, 1, scan_tiles, J);
    size_t below = 0, inside = 0;
    int r = 0;
    for (int c = 0; c < MAX_CHUNKS; c++) {
        if (!J->used[c])
            continue;
        if (J->bad[c])
            r = -EDOM;
        below += J->below[c];
        inside += J->inside[c];
    }
    uint32_t *all = NULL;
    if (r == 0 && (below > k0 || below + inside <= k1)) {
        r = select_all(x, n, absval, k0, k1, v0, v1);   /* the bracket missed */
        goto out;
    }
    if (r == 0 && !(all = malloc((inside ? inside : 1) * sizeof(uint32_t))))
        r = -ENOMEM;
    size_t off = 0;
    for (int c = 0; r == 0 && c < MAX_CHUNKS; c++) {
        if (!J->used[c])
            continue;
        if (J->inside[c] <= J->cap[c]) {
            memcpy(all + off, J->cand[c], J->inside[c] * sizeof(uint32_t));
        } else {
            size_t bl = 0, m = 0;
            qlab_quant_dsp_get()->key_scan(x + J->b[c], J->e[c] - J->b[c], absval, J->klo,
                                           J->kspan, &bl, all + off, J->inside[c], &m);
        }
        off += J->inside[c];
    }
    if (r == 0)
        select_pair(all, inside, k0 - below, k1 - below, v0, v1);
out:
    free(all);
    for (int c = 0; c < MAX_CHUNKS; c++)
        free(J->cand[c]);
    free(J);
    return r;
}

int qlab_percentile(const float *x, size_t n, double p, int absval, double *result)
{
    if (n == 0 || !x || !(p >= 0.0 && p <= 100.0) || !result)
        return -EINVAL;
    double h = (double)(n - 1) * (p / 100.0);
    size_t k0 = (size_t)floor(h);
    if (k0 > n - 1)
        k0 = n - 1;
    size_t k1 = k0 + 1 < n ? k0 + 1 : n - 1;
    double g = h - (double)k0;
    uint32_t u0, u1;
    int r = n <= SMALL_N ? select_all(x, n, absval, k0, k1, &u0, &u1)
                         : select_bracketed(x, n, absval, k0, k1, &u0, &u1);
    if (r < 0)
        return r;
    float a = float_of(u0, absval), b = float_of(u1, absval);
    float d = b - a;
    *result = g < 0.5 ? (double)a + (double)d * g : (double)b - (double)d * (1.0 - g);
    return 0;
}
