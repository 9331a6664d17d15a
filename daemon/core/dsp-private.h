/* dsp-private.h — the kernel table of the quantization core (dav1d style): one struct of
 * function pointers filled with the scalar reference first, then overwritten by each ISA
 * level the CPU supports. Every SIMD kernel must give the same bits as its scalar version,
 * including the floating-point sums of qlab_fq_stats (see the lane rule below). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Sums over a span are accumulated in 8 double lanes: element i (counted from the start of
 * the span) goes to lane i % 8, in order, as one fused multiply-add per term
 * (acc = fma(a, b, acc): exact on every CPU, one instruction with FMA); the lanes are then
 * combined as ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7)). An AVX2 loop with two __m256d
 * accumulators follows exactly this order, so scalar and SIMD agree bit for bit, and the
 * result does not depend on how many threads share the work. */
#define QLAB_LANES 8

/* Three sums give all metrics: with y = x + e, sum y^2 = x2 + 2 xe + e2 and
 * sum x*y = x2 + xe (no cancellation: xe is small next to x2). */
typedef struct qlab_fq_stats {
    double sum_e2;     /* sum e^2, e = y - x computed in float32 */
    double sum_x2;     /* sum x^2 */
    double sum_xe;     /* sum x*e */
    float max_abs_err; /* max |y - x| */
    uint64_t nclip;    /* elements with nearbyint(x*inv)+zp outside [qmin, qmax] */
} qlab_fq_stats;

enum { QLAB_STREAM_OFF, QLAB_STREAM_FENCED, QLAB_STREAM_UNFENCED };

/* One block's parameters, prepared once (inv_scale = 1.0f / scale in float32). */
typedef struct qlab_fq_args {
    float scale, inv_scale, zp, qmin, qmax;
    int32_t izp;
    /* Outputs are large and not read back soon: SIMD kernels may use non-temporal stores
     * (same values, no read-for-ownership of the destination). QLAB_STREAM_FENCED: the
     * kernel ends with a store fence; QLAB_STREAM_UNFENCED: the caller fences once after
     * many spans (on the same thread, before the results are published). */
    int stream;
    /* Error histogram (NULL when not wanted): bin = (int)clamp((e - lo) * inv_width,
     * 0, nbins - 1), all in float32. */
    uint64_t *hist;
    int nbins;
    float hist_lo, hist_inv_width;
} qlab_fq_args;

typedef struct qlab_quant_dsp {
    /* q[i] = clamp(nearbyintf(x[i] * a->inv_scale) + a->zp, qmin, qmax) (NaN -> qmin);
     * returns nonzero when some x[i] is NaN or Inf. */
    int (*quantize)(const float *x, size_t n, const qlab_fq_args *a, int16_t *q);
    /* y[i] = (float)(q[i] - zp) * scale */
    void (*dequantize)(const int16_t *q, size_t n, const qlab_fq_args *a, float *y);
    /* y = dequantize(quantize(x)) (y may be NULL), stats overwritten, hist accumulated;
     * in the same pass the codes quantize(x) to q16 (int16) and / or q8 (int8, for bits
     * <= 8), each may be NULL. */
    void (*fake_quant)(const float *x, size_t n, const qlab_fq_args *a, float *y,
                       int16_t *q16, int8_t *q8, qlab_fq_stats *st);
    /* min and max of x (n >= 1); returns nonzero when some x[i] is NaN or Inf. */
    int (*minmax)(const float *x, size_t n, float *mn, float *mx);
    /* max |x[i]| (0 for n == 0); returns nonzero when some x[i] is NaN or Inf. */
    int (*absmax)(const float *x, size_t n, float *amax);
    /* hist[(int)min(|x| * scale, nbins - 1)]++ for finite x (scale = nbins / hist_max). */
    void (*abs_hist)(const float *x, size_t n, float scale, int nbins, uint64_t *hist);
    /* Order-preserving keys of x (of |x| when absval; see select.c): adds to *below the
     * number with key < klo; writes the keys with klo <= key <= klo + kspan to out, in
     * order, while fewer than cap are written, and adds their total count (written or not)
     * to *inside; returns nonzero when some x[i] is NaN or Inf. */
    int (*key_scan)(const float *x, size_t n, int absval, uint32_t klo, uint32_t kspan,
                    size_t *below, uint32_t *out, size_t cap, size_t *inside);
} qlab_quant_dsp;

/* Fills c for the given CPU flags (qlab_cpu_flags() bits). */
void qlab_quant_dsp_init(qlab_quant_dsp *c, unsigned flags);
void qlab_quant_dsp_init_x86(qlab_quant_dsp *c, unsigned flags);

/* The table for qlab_cpu_flags(), built once. */
const qlab_quant_dsp *qlab_quant_dsp_get(void);

/* Order-preserving uint32 key of a float: |x| -> its bits without the sign; x -> negative
 * values bit-inverted, others with the sign bit set. */
static inline uint32_t qlab_key_of_bits(uint32_t u, int absval)
{
    if (absval)
        return u & 0x7fffffffu;
    return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
}

/* The lane combination shared by the scalar and SIMD kernels. */
static inline double qlab_lanes_sum(const double l[QLAB_LANES])
{
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

static inline int qlab_hist_bin(float e, const qlab_fq_args *a)
{
    float v = (e - a->hist_lo) * a->hist_inv_width;
    float top = (float)(a->nbins - 1);
    v = v > 0.0f ? v : 0.0f;     /* maxps/minps order: NaN -> bin 0 */
    v = v < top ? v : top;
    return (int)v;
}
