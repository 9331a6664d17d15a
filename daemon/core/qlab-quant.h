/* qlab-quant.h — the quantization core: calibration, quantize / dequantize / fake-quantize,
 * fused error metrics, sub-byte packing and honest memory counting (PRODUCT.md §3).
 *
 * Semantics (fixed, bit-exact with torch.fake_quantize_per_{tensor,channel}_affine):
 *   qmin = -2^(b-1), qmax = 2^(b-1) - 1, b in {2..8, 16}
 *   inv_scale = 1.0f / scale                       (float32)
 *   q  = clamp(nearbyintf(x * inv_scale) + zp, qmin, qmax)   (round half to even)
 *   x' = (float)(q - zp) * scale                   (float32)
 *   symmetric : zp = 0, scale = T / qmax, T the calibrated threshold on |x|
 *   asymmetric: [lo, hi] widened to contain 0, scale = max((hi - lo) / (qmax - qmin), FLT_EPSILON),
 *               zp = clamp(qmin - nearbyint(lo / scale), qmin, qmax)
 *
 * A tensor is viewed as a matrix [rows, cols]: rows = shape[0] (the output channel), cols the
 * product of the other dimensions. One (scale, zero point) pair per block:
 *   QLAB_GRAN_TENSOR  1 block
 *   QLAB_GRAN_CHANNEL rows blocks (block r = row r)
 *   QLAB_GRAN_GROUP   rows * ceil(cols / G) blocks, block (r, g) = x[r, g*G .. min(cols, g*G+G))
 *                     (index r * ceil(cols/G) + g; the last group of a row may be partial)
 *
 * Every function returns 0 (or a count where stated) or a negative errno:
 *   -EINVAL bad configuration or arguments, -EDOM NaN or Inf in the input, -ENOMEM.
 * Output parameters are written only on success. Nothing here prints.
 * Large inputs are processed on all qlab_threads() cores; results (codes, outputs and
 * metrics) do not depend on the number of threads.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { QLAB_SCHEME_SYMMETRIC, QLAB_SCHEME_ASYMMETRIC } qlab_scheme;
typedef enum { QLAB_GRAN_TENSOR, QLAB_GRAN_CHANNEL, QLAB_GRAN_GROUP } qlab_granularity;
typedef enum {
    QLAB_CALIB_MINMAX,
    QLAB_CALIB_PERCENTILE,
    QLAB_CALIB_MSE,
    QLAB_CALIB_ENTROPY,
} qlab_calibration;

typedef struct qlab_qconfig {
    int bits;                     /* 2..8 or 16 */
    qlab_scheme scheme;
    qlab_granularity granularity;
    int group_size;               /* G, used when granularity == QLAB_GRAN_GROUP; > 0 */
    qlab_calibration calibration;
    double percentile;            /* P in (0, 100], used with QLAB_CALIB_PERCENTILE */
} qlab_qconfig;

/* The default: 8 bits, symmetric, per tensor, minmax, group 128, percentile 99.9. */
void qlab_qconfig_init(qlab_qconfig *cfg);

/* 0 if cfg is valid, else -EINVAL. */
int qlab_qconfig_validate(const qlab_qconfig *cfg);

/* qmin = -2^(bits-1), qmax = 2^(bits-1) - 1. -EINVAL for unsupported bits. */
int qlab_qrange(int bits, int32_t *qmin, int32_t *qmax);

/* Number of (scale, zero point) blocks for a [rows, cols] tensor, 0 on a bad config. */
size_t qlab_qparams_nblocks(size_t rows, size_t cols, const qlab_qconfig *cfg);

/* one scale/zero-point per block: 1 (tensor), rows (channel), rows*ceil(cols/G) (group) */
typedef struct qlab_qparams {
    size_t nblocks;
    float *scale;
    int32_t *zero_point;
} qlab_qparams;

/* Allocates nblocks entries (scale 1, zero point 0). */
int qlab_qparams_alloc(qlab_qparams *p, size_t nblocks);
void qlab_qparams_free(qlab_qparams *p);           /* accepts NULL / zeroed */

/* Error metrics of x' against x. hist: when the caller passes nbins > 0 and a hist array of
 * nbins counts, the error (x' - x) histogram is accumulated there over [hist_lo, hist_hi]
 * (values outside land in the first / last bin). If hist_lo >= hist_hi on input, the range
 * is chosen as [-max_abs_error, +max_abs_error] (a second pass) and written back. */
typedef struct qlab_metrics {
    uint64_t n;
    double mse;                   /* mean (x' - x)^2 */
    double sqnr_db;               /* 10 log10(sum x^2 / sum (x'-x)^2); +INFINITY if exact */
    double max_abs_error;
    double cosine;                /* <x, x'> / (|x| |x'|); 1 when both are zero */
    double clip_fraction;         /* fraction with nearbyint(x/s)+zp outside [qmin, qmax] */
    int nbins;
    float hist_lo, hist_hi;
    uint64_t *hist;               /* caller-provided nbins counts or NULL */
} qlab_metrics;

/* x viewed as [rows, cols]: rows = shape[0] (output channel), cols = product of the rest.
 * qlab_calibrate allocates out (free with qlab_qparams_free). -EDOM on NaN/Inf. */
int qlab_calibrate(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                   qlab_qparams *out);
/* codes: rows*cols int16 (any bit-width fits). */
int qlab_quantize(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                  const qlab_qparams *p, int16_t *codes);
int qlab_dequantize(const int16_t *codes, size_t rows, size_t cols, const qlab_qconfig *cfg,
                    const qlab_qparams *p, float *out);

/* calibrate + quantize-dequantize + fused metrics in one call; out, m and params may each be
 * NULL; out may be x itself (in place). When params is not NULL it receives the calibrated
 * parameters (caller frees). On -EDOM the contents of out are unspecified. */
int qlab_fake_quant(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                    float *out, qlab_qparams *params, qlab_metrics *m);

/* qlab_fake_quant that also writes the codes of the same pass: codes16 (rows*cols int16)
 * and / or codes8 (rows*cols int8; -EINVAL if cfg->bits > 8), each may be NULL. Every
 * result is the same bits as qlab_fake_quant followed by qlab_quantize with the calibrated
 * parameters, in one quantization pass instead of two. out may be x (in place); the code
 * arrays must not overlap x or out. */
int qlab_fake_quant_codes(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                          float *out, int16_t *codes16, int8_t *codes8, qlab_qparams *params,
                          qlab_metrics *m);

/* Fake-quantize with given parameters (no calibration): e.g. activations with parameters
 * calibrated elsewhere. out and m may be NULL; out may be x (in place). NaN/Inf in x give
 * -EDOM (out is then unspecified). */
int qlab_fake_quant_params(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                           const qlab_qparams *p, float *out, qlab_metrics *m);

/* PRODUCT §3 honest memory: ceil(n*b/8) packed bytes + 4 bytes per scale + for asymmetric
 * 1 byte per zero point (2 for b = 16). 0 on a bad config. */
size_t qlab_quant_bytes(size_t rows, size_t cols, const qlab_qconfig *cfg);

/* Packs n codes (each in [qmin, qmax] of `bits`) as two's-complement bit fields, LSB first,
 * into ceil(n*bits/8) bytes; bits 8 and 16 are plain int8 / little-endian int16. */
int qlab_pack_codes(const int16_t *codes, size_t n, int bits, uint8_t *out);   /* ceil(n*bits/8) bytes */
int qlab_unpack_codes(const uint8_t *in, size_t n, int bits, int16_t *codes);
size_t qlab_packed_bytes(size_t n, int bits);

/* Scale and zero point from a calibrated range (the §3 formulas). Symmetric uses
 * T = max(|lo|, |hi|) (pass lo = -T, hi = T); asymmetric widens [lo, hi] to contain 0. */
int qlab_params_from_range(double lo, double hi, int bits, qlab_scheme scheme,
                           float *scale, int32_t *zero_point);

/* Exact percentile P in [0, 100] of x (of |x| when absval), numpy's default linear
 * interpolation, by O(n) selection. -EDOM on NaN/Inf, -EINVAL for n == 0. */
int qlab_percentile(const float *x, size_t n, double p, int absval, double *result);

/* Histogram of |x| over [0, hist_max] in nbins bins (|x| >= hist_max lands in the last bin);
 * counts are added to hist. */
int qlab_abs_histogram(const float *x, size_t n, int nbins, double hist_max, uint64_t *hist);

/* TensorRT KL-divergence threshold from a histogram of |x| over [0, hist_max] (2048 bins typ.) —
   also used for activations by the int8 helper, so keep it histogram-based and public. */
int qlab_entropy_threshold(const uint64_t *hist, int nbins, double hist_max, int bits, double *threshold);

int qlab_config_parse_granularity(const char *s, qlab_qconfig *cfg);  /* "tensor"|"channel"|"group:G" */
int qlab_config_parse_calibration(const char *s, qlab_qconfig *cfg);  /* "minmax"|"percentile:P"|"mse"|"entropy" */
int qlab_config_parse_scheme(const char *s, qlab_qconfig *cfg);       /* "symmetric"|"asymmetric" */
const char *qlab_scheme_name(qlab_scheme s);
const char *qlab_granularity_name(qlab_granularity g);     /* "tensor" "channel" "group" */
const char *qlab_calibration_name(qlab_calibration c);     /* "minmax" "percentile" ... */

const char *qlab_cpu_level_name(void);  /* "avx2" or "scalar" (what is in use, after QLAB_CPU) */

#ifdef __cplusplus
}
#endif
