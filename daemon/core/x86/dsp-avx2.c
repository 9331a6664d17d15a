/* dsp-avx2.c — AVX2 versions of the quantization kernels. Each must return exactly what
 * its scalar reference in dsp.c returns: _mm256_round_ps(TO_NEAREST) is nearbyintf in the
 * default rounding mode (half to even); the clamp happens in float before the (then exact)
 * conversion to int32; sums use the 8-lane order and the explicit fused multiply-adds of
 * dsp-private.h (and this file is built with -ffp-contract=off, so that no other multiply
 * and add is fused behind our back: x * inv_scale must round before nearbyint). */
#include "dsp-avx2.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* clamp(nearbyint(x * inv) + zp) as float, and the unclamped value. */
static inline __m256 quant8(__m256 x, __m256 inv, __m256 zp, __m256 qmin, __m256 qmax,
                            __m256 *raw)
{
    __m256 r = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(x, inv), ROUND_NEAREST), zp);
    *raw = r;
    return _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
}

static inline int16_t quant1(float x, const qlab_fq_args *a)
{
    float v = nearbyintf(x * a->inv_scale) + a->zp;
    v = v > a->qmin ? v : a->qmin;
    v = v < a->qmax ? v : a->qmax;
    return (int16_t)v;
}

/* Elements to do one by one so that dst + i is 32-byte aligned (for streaming stores). */
static inline size_t peel_to_32(const void *dst, size_t elsize, size_t n)
{
    size_t mis = (uintptr_t)dst & 31;
    size_t k = mis ? (32 - mis) / elsize : 0;
    if (mis % elsize)
        k = n;   /* cannot align: no streaming */
    return k < n ? k : n;
}

/* A float is NaN or Inf exactly when its exponent bits are all ones. */
static inline __m256i nonfinite8(__m256 x)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), expo), expo);
}

/* 16 values: quantized and packed to int16 in order; non-finite lanes or-ed into *bad. */
static inline __m256i quant16(const float *x, __m256 inv, __m256 zp, __m256 qmin, __m256 qmax,
                              __m256i *bad)
{
    _mm_prefetch((const char *)x + 2048, _MM_HINT_T0);   /* see qlab_fake_quant_f32_avx2 */
    __m256 raw, x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
    *bad = _mm256_or_si256(*bad, _mm256_or_si256(nonfinite8(x0), nonfinite8(x1)));
    __m256i q0 = _mm256_cvttps_epi32(quant8(x0, inv, zp, qmin, qmax, &raw));
    __m256i q1 = _mm256_cvttps_epi32(quant8(x1, inv, zp, qmin, qmax, &raw));
    /* packs works per 128-bit lane: [q0lo q1lo q0hi q1hi] -> reorder the 64-bit quarters. */
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
}

int qlab_quantize_f32_s16_avx2(const float *x, size_t n, const qlab_fq_args *a, int16_t *q)
{
    const __m256 inv = _mm256_set1_ps(a->inv_scale), zp = _mm256_set1_ps(a->zp);
    const __m256 qmin = _mm256_set1_ps(a->qmin), qmax = _mm256_set1_ps(a->qmax);
    __m256i bad = _mm256_setzero_si256();
    int sbad = 0;
    size_t i = 0;
    if (a->stream) {
        for (size_t k = peel_to_32(q, 2, n); i < k; i++) {
            q[i] = quant1(x[i], a);
            sbad |= !isfinite(x[i]);
        }
        for (; i + 16 <= n; i += 16)
            _mm256_stream_si256((__m256i *)(q + i), quant16(x + i, inv, zp, qmin, qmax, &bad));
        _mm_sfence();
    }
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(q + i), quant16(x + i, inv, zp, qmin, qmax, &bad));
    for (; i < n; i++) {
        q[i] = quant1(x[i], a);
        sbad |= !isfinite(x[i]);
    }
    return sbad || !_mm256_testz_si256(bad, bad);
}

void qlab_dequantize_s16_f32_avx2(const int16_t *q, size_t n, const qlab_fq_args *a, float *y)
{
    const __m256 scale = _mm256_set1_ps(a->scale);
    const __m256i izp = _mm256_set1_epi32(a->izp);
    size_t i = 0;
    if (a->stream) {
        for (size_t k = peel_to_32(y, 4, n); i < k; i++)
            y[i] = (float)((int32_t)q[i] - a->izp) * a->scale;
        for (; i + 8 <= n; i += 8) {
            __m256i v = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(q + i)));
            __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(v, izp));
            _mm256_stream_ps(y + i, _mm256_mul_ps(f, scale));
        }
        _mm_sfence();
    }
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(q + i)));
        __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(v, izp));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(f, scale));
    }
    for (; i < n; i++)
        y[i] = (float)((int32_t)q[i] - a->izp) * a->scale;
}

static inline void fma_pd(__m256d *lo, __m256d *hi, __m256 a, __m256 b)
{
    __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    __m256d a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(b));
    __m256d b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1));
    *lo = _mm256_fmadd_pd(a0, b0, *lo);
    *hi = _mm256_fmadd_pd(a1, b1, *hi);
}

static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float hmin8(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

/* One element the scalar way (head and tail of a span): lane i % 8, as in dsp.c. */
static inline void fq_one(const float *x, size_t i, const qlab_fq_args *a, float *y,
                          double *e2, double *x2, double *xe, float *me, uint64_t *nclip)
{
    size_t l = i % 8;
    float r = nearbyintf(x[i] * a->inv_scale) + a->zp;
    float qv = r > a->qmin ? r : a->qmin;
    qv = qv < a->qmax ? qv : a->qmax;
    float v = (float)((int32_t)qv - a->izp) * a->scale;
    float e = v - x[i];
    *nclip += (r < a->qmin) | (r > a->qmax);
    float ae = fabsf(e);
    *me = ae > *me ? ae : *me;
    double de = e, dx = x[i];
    e2[l] = fma(de, de, e2[l]);
    x2[l] = fma(dx, dx, x2[l]);
    xe[l] = fma(dx, de, xe[l]);
    if (y)
        y[i] = v;
    if (a->hist)
        a->hist[qlab_hist_bin(e, a)]++;
}

/* Histogram counts are kept in four interleaved local copies while the span is processed
 * (a run of equal bins would otherwise serialise on one counter's store-to-load path),
 * then added to a->hist; the totals are those of the scalar kernel. */
#define LOCAL_BINS 256

void qlab_fake_quant_f32_avx2(const float *x, size_t n, const qlab_fq_args *a, float *y,
                              qlab_fq_stats *st)
{
    const __m256 inv = _mm256_set1_ps(a->inv_scale), zp = _mm256_set1_ps(a->zp);
    const __m256 qmin = _mm256_set1_ps(a->qmin), qmax = _mm256_set1_ps(a->qmax);
    const __m256 scale = _mm256_set1_ps(a->scale);
    const __m256i izp = _mm256_set1_epi32(a->izp);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hlo = _mm256_set1_ps(a->hist_lo), hinv = _mm256_set1_ps(a->hist_inv_width);
    const __m256 htop = _mm256_set1_ps((float)(a->nbins - 1)), zero = _mm256_setzero_ps();
    __m256d e2l = _mm256_setzero_pd(), e2h = e2l, x2l = e2l, x2h = e2l, xel = e2l, xeh = e2l;
    __m256 maxe = zero;
    uint64_t nclip = 0;
    size_t i = 0;
    uint32_t loc[4][LOCAL_BINS];
    const int local = a->hist && a->nbins <= LOCAL_BINS;
    if (local)
        memset(loc, 0, sizeof(loc[0]) * 4);
    const int stream = y && a->stream && !((uintptr_t)y & 3);
    /* With streaming stores, y + i must be 32-byte aligned from the first vector on: the
     * first few elements are done one by one (same lane rule). */
    size_t head = stream ? peel_to_32(y, 4, n) : 0;
    double e2[8] = {0}, x2[8] = {0}, xe[8] = {0};
    float me = 0.0f;
    for (; i < head; i++)
        fq_one(x, i, a, y, e2, x2, xe, &me, &nclip);
    /* The vector loop starts at element `head`, so its slot j carries lane (head + j) % 8:
     * load the lanes rotated, run, store them back rotated. Each lane then sums its
     * elements in index order, exactly as the scalar kernel does. */
    double t[8];
    for (int j = 0; j < 8; j++)
        t[j] = e2[(head + (size_t)j) & 7];
    e2l = _mm256_loadu_pd(t), e2h = _mm256_loadu_pd(t + 4);
    for (int j = 0; j < 8; j++)
        t[j] = x2[(head + (size_t)j) & 7];
    x2l = _mm256_loadu_pd(t), x2h = _mm256_loadu_pd(t + 4);
    for (int j = 0; j < 8; j++)
        t[j] = xe[(head + (size_t)j) & 7];
    xel = _mm256_loadu_pd(t), xeh = _mm256_loadu_pd(t + 4);
    for (; i + 8 <= n; i += 8) {
        /* The loop body is long enough that the out-of-order window alone keeps few loads
         * in flight from DRAM: prefetch 2 KiB ahead (harmless past the end). */
        _mm_prefetch((const char *)(x + i) + 2048, _MM_HINT_T0);
        __m256 xv = _mm256_loadu_ps(x + i), raw;
        __m256 qf = quant8(xv, inv, zp, qmin, qmax, &raw);
        __m256 clip = _mm256_or_ps(_mm256_cmp_ps(raw, qmin, _CMP_LT_OQ),
                                   _mm256_cmp_ps(raw, qmax, _CMP_GT_OQ));
        nclip += (uint64_t)__builtin_popcount((unsigned)_mm256_movemask_ps(clip));
        __m256i qi = _mm256_sub_epi32(_mm256_cvttps_epi32(qf), izp);
        __m256 yv = _mm256_mul_ps(_mm256_cvtepi32_ps(qi), scale);
        __m256 e = _mm256_sub_ps(yv, xv);
        maxe = _mm256_max_ps(maxe, _mm256_and_ps(e, absmask));
        fma_pd(&e2l, &e2h, e, e);
        fma_pd(&x2l, &x2h, xv, xv);
        fma_pd(&xel, &xeh, xv, e);
        if (stream)
            _mm256_stream_ps(y + i, yv);
        else if (y)
            _mm256_storeu_ps(y + i, yv);
        if (a->hist) {
            __m256 b = _mm256_mul_ps(_mm256_sub_ps(e, hlo), hinv);
            b = _mm256_min_ps(_mm256_max_ps(b, zero), htop);
            int idx[8];
            _mm256_storeu_si256((__m256i *)idx, _mm256_cvttps_epi32(b));
            if (local) {
                loc[0][idx[0]]++, loc[1][idx[1]]++, loc[2][idx[2]]++, loc[3][idx[3]]++;
                loc[0][idx[4]]++, loc[1][idx[5]]++, loc[2][idx[6]]++, loc[3][idx[7]]++;
            } else {
                for (int k = 0; k < 8; k++)
                    a->hist[idx[k]]++;
            }
        }
    }
    if (stream)
        _mm_sfence();
    _mm256_storeu_pd(t, e2l), _mm256_storeu_pd(t + 4, e2h);
    for (int j = 0; j < 8; j++)
        e2[(head + (size_t)j) & 7] = t[j];
    _mm256_storeu_pd(t, x2l), _mm256_storeu_pd(t + 4, x2h);
    for (int j = 0; j < 8; j++)
        x2[(head + (size_t)j) & 7] = t[j];
    _mm256_storeu_pd(t, xel), _mm256_storeu_pd(t + 4, xeh);
    for (int j = 0; j < 8; j++)
        xe[(head + (size_t)j) & 7] = t[j];
    float vm = hmax8(maxe);
    me = vm > me ? vm : me;
    for (; i < n; i++)
        fq_one(x, i, a, y, e2, x2, xe, &me, &nclip);
    if (local)
        for (int k = 0; k < a->nbins; k++)
            a->hist[k] += (uint64_t)loc[0][k] + loc[1][k] + loc[2][k] + loc[3][k];
    st->sum_e2 = qlab_lanes_sum(e2);
    st->sum_x2 = qlab_lanes_sum(x2);
    st->sum_xe = qlab_lanes_sum(xe);
    st->max_abs_err = me;
    st->nclip = nclip;
}


int qlab_minmax_f32_avx2(const float *x, size_t n, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    int bad = 0;
    size_t i = 0;
    if (n >= 8) {
        __m256 vlo = _mm256_set1_ps(x[0]), vhi = vlo;
        __m256i vbad = _mm256_setzero_si256();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            vlo = _mm256_min_ps(vlo, v);
            vhi = _mm256_max_ps(vhi, v);
            vbad = _mm256_or_si256(vbad, nonfinite8(v));
        }
        lo = hmin8(vlo);
        hi = hmax8(vhi);
        bad = !_mm256_testz_si256(vbad, vbad);
    }
    for (; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        bad |= !isfinite(x[i]);
    }
    *mn = lo;
    *mx = hi;
    return bad;
}

int qlab_absmax_f32_avx2(const float *x, size_t n, float *amax)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vm = _mm256_setzero_ps();
    __m256i vbad = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vm = _mm256_max_ps(vm, _mm256_and_ps(v, absmask));
        vbad = _mm256_or_si256(vbad, nonfinite8(v));
    }
    float m = hmax8(vm);
    int bad = !_mm256_testz_si256(vbad, vbad);
    for (; i < n; i++) {
        float v = fabsf(x[i]);
        m = v > m ? v : m;
        bad |= !isfinite(x[i]);
    }
    *amax = m;
    return bad;
}

void qlab_abs_hist_f32_avx2(const float *x, size_t n, float scale, int nbins, uint64_t *hist)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vs = _mm256_set1_ps(scale), top = _mm256_set1_ps((float)(nbins - 1));
    size_t i = 0;
    int idx[8];
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), vs);
        _mm256_storeu_si256((__m256i *)idx, _mm256_cvttps_epi32(_mm256_min_ps(v, top)));
        for (int k = 0; k < 8; k++)
            hist[idx[k]]++;
    }
    float ftop = (float)(nbins - 1);
    for (; i < n; i++) {
        float v = fabsf(x[i]) * scale;
        v = v > ftop ? ftop : v;
        hist[(int)v]++;
    }
}

/* Keys as in qlab_key_of_bits; unsigned compares are signed compares after flipping the
 * top bit. Counters are 32-bit lanes: spans are tiles of at most 2^31 values. */
static inline __m256i keys8(__m256i u, int absval)
{
    if (absval)
        return _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i m = _mm256_or_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32((int)0x80000000u));
    return _mm256_xor_si256(u, m);
}

static inline __m256i flip(__m256i v)
{
    return _mm256_xor_si256(v, _mm256_set1_epi32((int)0x80000000u));
}

int qlab_key_scan_f32_avx2(const float *x, size_t n, int absval, uint32_t klo, uint32_t kspan,
                           size_t *below, uint32_t *out, size_t cap, size_t *inside)
{
    const __m256i vlo = flip(_mm256_set1_epi32((int)klo));
    const __m256i vklo = _mm256_set1_epi32((int)klo);
    const __m256i vspan = flip(_mm256_set1_epi32((int)kspan));
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    __m256i cb = _mm256_setzero_si256(), bad = cb;
    size_t i = 0, m = *inside;
    for (; i + 8 <= n; i += 8) {
        _mm_prefetch((const char *)(x + i) + 2048, _MM_HINT_T0);
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(u, expo), expo));
        __m256i k = keys8(u, absval);
        /* below: k < klo; inside: (k - klo) <= kspan, i.e. not (k - klo) > kspan. */
        cb = _mm256_sub_epi32(cb, _mm256_cmpgt_epi32(vlo, flip(k)));
        __m256i outside = _mm256_cmpgt_epi32(flip(_mm256_sub_epi32(k, vklo)), vspan);
        unsigned mask = ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(outside)) & 0xffu;
        if (!mask)
            continue;
        uint32_t kk[8];
        _mm256_storeu_si256((__m256i *)kk, k);
        while (mask) {
            if (m < cap)
                out[m] = kk[__builtin_ctz(mask)];
            m++;
            mask &= mask - 1;
        }
    }
    uint32_t lb[8];
    _mm256_storeu_si256((__m256i *)lb, cb);
    size_t b = 0;
    for (int k = 0; k < 8; k++)
        b += lb[k];
    int isbad = !_mm256_testz_si256(bad, bad);
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        isbad |= (u & 0x7f800000u) == 0x7f800000u;
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
    return isbad;
}
