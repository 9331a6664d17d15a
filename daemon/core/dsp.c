/* dsp.c — scalar reference kernels (the truth every SIMD variant is tested against) and
 * the dispatch ladder. */
#include "cpu-private.h"
#include "dsp-private.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* Quantize one value: round half to even in the default FP environment (nearbyintf), add
 * the zero point, clamp in float (a product may be huge or infinite for finite inputs, so
 * clamp before converting). The clamp is written as maxps/minps compute it, so a NaN
 * becomes qmin here and in the SIMD kernels alike (no undefined conversion; the drivers
 * detect NaN from the sums and report -EDOM). Returns the unclamped value through *raw
 * for the clip count. */
static inline float quant1(float x, const qlab_fq_args *a, float *raw)
{
    float q = nearbyintf(x * a->inv_scale) + a->zp;
    *raw = q;
    q = q > a->qmin ? q : a->qmin;
    q = q < a->qmax ? q : a->qmax;
    return q;
}

static int quantize_c(const float *x, size_t n, const qlab_fq_args *a, int16_t *q)
{
    float raw;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        q[i] = (int16_t)quant1(x[i], a, &raw);
        bad |= !isfinite(x[i]);
    }
    return bad;
}

static void dequantize_c(const int16_t *q, size_t n, const qlab_fq_args *a, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (float)((int32_t)q[i] - a->izp) * a->scale;
}

static void fake_quant_c(const float *x, size_t n, const qlab_fq_args *a, float *y,
                         int16_t *q16, int8_t *q8, qlab_fq_stats *st)
{
    double e2[QLAB_LANES] = {0}, x2[QLAB_LANES] = {0}, xe[QLAB_LANES] = {0};
    float maxe = 0.0f;
    uint64_t nclip = 0;
    for (size_t i = 0; i < n; i++) {
        float raw;
        int32_t q = (int32_t)quant1(x[i], a, &raw);
        float v = (float)(q - a->izp) * a->scale;
        float e = v - x[i];
        nclip += (raw < a->qmin) | (raw > a->qmax);
        float ae = fabsf(e);
        maxe = ae > maxe ? ae : maxe;
        double de = e, dx = x[i];
        size_t l = i % QLAB_LANES;
        e2[l] = fma(de, de, e2[l]);
        x2[l] = fma(dx, dx, x2[l]);
        xe[l] = fma(dx, de, xe[l]);
        if (y)
            y[i] = v;
        if (q16)
            q16[i] = (int16_t)q;
        if (q8)
            q8[i] = (int8_t)q;
        if (a->hist)
            a->hist[qlab_hist_bin(e, a)]++;
    }
    st->sum_e2 = qlab_lanes_sum(e2);
    st->sum_x2 = qlab_lanes_sum(x2);
    st->sum_xe = qlab_lanes_sum(xe);
    st->max_abs_err = maxe;
    st->nclip = nclip;
}

static int minmax_c(const float *x, size_t n, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        bad |= !isfinite(x[i]);
    }
    *mn = lo;
    *mx = hi;
    return bad;
}

static int absmax_c(const float *x, size_t n, float *amax)
{
    float m = 0.0f;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        m = v > m ? v : m;
        bad |= !isfinite(x[i]);
    }
    *amax = m;
    return bad;
}

static void abs_hist_c(const float *x, size_t n, float scale, int nbins, uint64_t *hist)
{
    float top = (float)(nbins - 1);
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(x[i]) * scale;
        v = v > top ? top : v;
        hist[(int)v]++;
    }
}

static int key_scan_c(const float *x, size_t n, int absval, uint32_t klo, uint32_t kspan,
                      size_t *below, uint32_t *out, size_t cap, size_t *inside)
{
    size_t b = 0, m = *inside;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
        uint32_t k = qlab_key_of_bits(u, absval);
        b += k < klo;
        if ((uint32_t)(k - klo) <= kspan) {
            if (m < cap)
                out[m] = k;
            m++;
        }
    }
    *below += b;
    *inside = m;
    return bad != 0;
}

void qlab_quant_dsp_init(qlab_quant_dsp *c, unsigned flags)
{
    c->quantize = quantize_c;
    c->dequantize = dequantize_c;
    c->fake_quant = fake_quant_c;
    c->minmax = minmax_c;
    c->absmax = absmax_c;
    c->abs_hist = abs_hist_c;
    c->key_scan = key_scan_c;
#if defined(__x86_64__) || defined(__i386__)
    qlab_quant_dsp_init_x86(c, flags);
#endif
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static qlab_quant_dsp g_dsp;

static void init_global(void)
{
    qlab_quant_dsp_init(&g_dsp, qlab_cpu_flags());
}

const qlab_quant_dsp *qlab_quant_dsp_get(void)
{
    pthread_once(&g_once, init_global);
    return &g_dsp;
}
