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
        if (a->stream != QLAB_STREAM_UNFENCED)
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
        if (a->stream != QLAB_STREAM_UNFENCED)
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
                          int16_t *q16, int8_t *q8, double *e2, double *x2, double *xe,
                          float *me, uint64_t *nclip)
{
    size_t l = i % 8;
    float r = nearbyintf(x[i] * a->inv_scale) + a->zp;
    float qv = r > a->qmin ? r : a->qmin;
    qv = qv < a->qmax ? qv : a->qmax;
    int32_t q = (int32_t)qv;
    float v = (float)(q - a->izp) * a->scale;
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
    if (q16)
        q16[i] = (int16_t)q;
    if (q8)
        q8[i] = (int8_t)q;
    if (a->hist)
        a->hist[qlab_hist_bin(e, a)]++;
}

/* Histogram counts are kept in four interleaved local copies while the span is processed
 * (a run of equal bins would otherwise serialise on one counter's store-to-load path),
 * then added to a->hist; the totals are those of the scalar kernel. */
#define LOCAL_BINS 256

/* The clip count is kept in eight 32-bit lanes (one compare and one subtract per vector)
 * and flushed to the 64-bit total at least every 2^30 values, long before a lane could
 * overflow. */
#define CLIP_FLUSH ((size_t)1 << 30)

enum { Y_NONE, Y_STORE, Y_STREAM };
enum { C_S16 = 1, C_S8 = 2 };

/* The fused loop, instantiated per output kind (ymode: none / stores / streaming stores;
 * cmode: which code arrays) so that the loop carries no per-vector tests for them, and
 * without the error histogram (hmode 0): its constants would otherwise take registers
 * that the accumulators need (with too few, one accumulator lives on the stack and each
 * iteration waits on a store and a reload). With the histogram, one instantiation takes
 * ymode and cmode at run time.
 *
 * Per vector: q = clamp(round(x * inv) + zp) in float; the value is clipped exactly when
 * clamping changed it (raw != q, ordered: a NaN raw is not counted, as in the scalar
 * (raw < qmin) | (raw > qmax)); y = (q - zp) * scale with q - zp computed in float, exact
 * (integers below 2^17), so the same as the scalar (float)(q - izp) * scale. */
static inline __attribute__((always_inline)) void
fq_body(const float *x, size_t n, const qlab_fq_args *a, float *y, int16_t *q16, int8_t *q8,
        qlab_fq_stats *st, const int ymode, const int cmode, const int hmode)
{
    const __m256 inv = _mm256_set1_ps(a->inv_scale), zp = _mm256_set1_ps(a->zp);
    const __m256 qmin = _mm256_set1_ps(a->qmin), qmax = _mm256_set1_ps(a->qmax);
    const __m256 scale = _mm256_set1_ps(a->scale);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hlo = _mm256_set1_ps(a->hist_lo), hinv = _mm256_set1_ps(a->hist_inv_width);
    const __m256 htop = _mm256_set1_ps((float)(a->nbins - 1)), zero = _mm256_setzero_ps();
    __m256d e2l, e2h, x2l, x2h, xel, xeh;
    __m256 maxe = zero;
    uint64_t nclip = 0;
    size_t i = 0;
    uint32_t loc[4][LOCAL_BINS];
    /* Read once: the code stores may alias anything, which would otherwise reload it. */
    uint64_t *const hist = hmode ? a->hist : NULL;
    const int local = hist && a->nbins <= LOCAL_BINS;
    if (local)
        memset(loc, 0, sizeof(loc[0]) * 4);
    /* With streaming stores, y + i must be 32-byte aligned from the first vector on: the
     * first few elements are done one by one (same lane rule). */
    size_t head = ymode == Y_STREAM ? peel_to_32(y, 4, n) : 0;
    double e2[8] = {0}, x2[8] = {0}, xe[8] = {0};
    float me = 0.0f;
    for (; i < head; i++)
        fq_one(x, i, a, y, q16, q8, e2, x2, xe, &me, &nclip);
    /* The vector loop starts at element `head`, so its slot j carries lane (head + j) % 8:
     * load the lanes rotated, run, store them back rotated. Each lane then sums its
     * elements in index order, exactly as the scalar kernel does. */
    double t[8];
    if (head == 0) {
        /* The common case (every span of a per-channel tensor): no rotation. */
        e2l = e2h = x2l = x2h = xel = xeh = _mm256_setzero_pd();
    } else {
        for (int j = 0; j < 8; j++)
            t[j] = e2[(head + (size_t)j) & 7];
        e2l = _mm256_loadu_pd(t), e2h = _mm256_loadu_pd(t + 4);
        for (int j = 0; j < 8; j++)
            t[j] = x2[(head + (size_t)j) & 7];
        x2l = _mm256_loadu_pd(t), x2h = _mm256_loadu_pd(t + 4);
        for (int j = 0; j < 8; j++)
            t[j] = xe[(head + (size_t)j) & 7];
        xel = _mm256_loadu_pd(t), xeh = _mm256_loadu_pd(t + 4);
    }
    while (i + 8 <= n) {
        size_t lim = n - i > CLIP_FLUSH ? i + CLIP_FLUSH : n;
        __m256i vclip = _mm256_setzero_si256();
        for (; i + 8 <= lim; i += 8) {
            /* The loop body is long enough that the out-of-order window alone keeps few
             * loads in flight from DRAM: prefetch 2 KiB ahead (harmless past the end). */
            _mm_prefetch((const char *)(x + i) + 2048, _MM_HINT_T0);
            __m256 xv = _mm256_loadu_ps(x + i), raw;
            __m256 qf = quant8(xv, inv, zp, qmin, qmax, &raw);
            vclip = _mm256_sub_epi32(vclip,
                                     _mm256_castps_si256(_mm256_cmp_ps(raw, qf, _CMP_NEQ_OQ)));
            __m256 yv = _mm256_mul_ps(_mm256_sub_ps(qf, zp), scale);
            __m256 e = _mm256_sub_ps(yv, xv);
            maxe = _mm256_max_ps(maxe, _mm256_and_ps(e, absmask));
            /* The upper half converted from memory: a load instead of a shuffle. */
            __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));
            __m256d x1 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
            __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
            __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
            e2l = _mm256_fmadd_pd(d0, d0, e2l);
            e2h = _mm256_fmadd_pd(d1, d1, e2h);
            x2l = _mm256_fmadd_pd(x0, x0, x2l);
            x2h = _mm256_fmadd_pd(x1, x1, x2h);
            xel = _mm256_fmadd_pd(x0, d0, xel);
            xeh = _mm256_fmadd_pd(x1, d1, xeh);
            if (ymode == Y_STREAM)
                _mm256_stream_ps(y + i, yv);
            else if (ymode == Y_STORE)
                _mm256_storeu_ps(y + i, yv);
            if (cmode) {
                /* q is an integer in [qmin, qmax]: the conversion is exact, the packs do
                 * not saturate. */
                __m256i qi = _mm256_cvttps_epi32(qf);
                __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(qi),
                                            _mm256_extracti128_si256(qi, 1));
                if (cmode & C_S16)
                    _mm_storeu_si128((__m128i *)(q16 + i), w);
                if (cmode & C_S8)
                    _mm_storel_epi64((__m128i *)(q8 + i), _mm_packs_epi16(w, w));
            }
            if (hmode && hist) {
                __m256 b = _mm256_mul_ps(_mm256_sub_ps(e, hlo), hinv);
                b = _mm256_min_ps(_mm256_max_ps(b, zero), htop);
                int idx[8];
                _mm256_storeu_si256((__m256i *)idx, _mm256_cvttps_epi32(b));
                if (local) {
                    loc[0][idx[0]]++, loc[1][idx[1]]++, loc[2][idx[2]]++, loc[3][idx[3]]++;
                    loc[0][idx[4]]++, loc[1][idx[5]]++, loc[2][idx[6]]++, loc[3][idx[7]]++;
                } else {
                    for (int k = 0; k < 8; k++)
                        hist[idx[k]]++;
                }
            }
        }
        uint32_t c[8];
        _mm256_storeu_si256((__m256i *)c, vclip);
        for (int k = 0; k < 8; k++)
            nclip += c[k];
    }
    if (ymode == Y_STREAM && a->stream != QLAB_STREAM_UNFENCED)
        _mm_sfence();
    if (head == 0) {
        _mm256_storeu_pd(e2, e2l), _mm256_storeu_pd(e2 + 4, e2h);
        _mm256_storeu_pd(x2, x2l), _mm256_storeu_pd(x2 + 4, x2h);
        _mm256_storeu_pd(xe, xel), _mm256_storeu_pd(xe + 4, xeh);
    } else {
        _mm256_storeu_pd(t, e2l), _mm256_storeu_pd(t + 4, e2h);
        for (int j = 0; j < 8; j++)
            e2[(head + (size_t)j) & 7] = t[j];
        _mm256_storeu_pd(t, x2l), _mm256_storeu_pd(t + 4, x2h);
        for (int j = 0; j < 8; j++)
            x2[(head + (size_t)j) & 7] = t[j];
        _mm256_storeu_pd(t, xel), _mm256_storeu_pd(t + 4, xeh);
        for (int j = 0; j < 8; j++)
            xe[(head + (size_t)j) & 7] = t[j];
    }
    float vm = hmax8(maxe);
    me = vm > me ? vm : me;
    for (; i < n; i++)
        fq_one(x, i, a, y, q16, q8, e2, x2, xe, &me, &nclip);
    if (local)
        for (int k = 0; k < a->nbins; k++)
            hist[k] += (uint64_t)loc[0][k] + loc[1][k] + loc[2][k] + loc[3][k];
    st->sum_e2 = qlab_lanes_sum(e2);
    st->sum_x2 = qlab_lanes_sum(x2);
    st->sum_xe = qlab_lanes_sum(xe);
    st->max_abs_err = me;
    st->nclip = nclip;
}

#define FQ_CODES(ym)                                                                    \
    do {                                                                                \
        if (q16 && q8)                                                                  \
            fq_body(x, n, a, y, q16, q8, st, ym, C_S16 | C_S8, 0);                      \
        else if (q16)                                                                   \
            fq_body(x, n, a, y, q16, q8, st, ym, C_S16, 0);                             \
        else if (q8)                                                                    \
            fq_body(x, n, a, y, q16, q8, st, ym, C_S8, 0);                              \
        else                                                                            \
            fq_body(x, n, a, y, q16, q8, st, ym, 0, 0);                                 \
    } while (0)

void qlab_fake_quant_f32_avx2(const float *x, size_t n, const qlab_fq_args *a, float *y,
                              int16_t *q16, int8_t *q8, qlab_fq_stats *st)
{
    int ymode = y && a->stream && !((uintptr_t)y & 3) ? Y_STREAM : y ? Y_STORE : Y_NONE;
    if (a->hist)
        fq_body(x, n, a, y, q16, q8, st, ymode, (q16 ? C_S16 : 0) | (q8 ? C_S8 : 0), 1);
    else if (ymode == Y_STREAM)
        FQ_CODES(Y_STREAM);
    else if (ymode == Y_STORE)
        FQ_CODES(Y_STORE);
    else
        FQ_CODES(Y_NONE);
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
