/* qlab-int8.h — real integer inference: exact int8 GEMM / conv kernels with a fused
 * requantizing epilogue, activation calibration statistics, and W8A8 model evaluation.
 *
 * Arithmetic (PRODUCT.md §3): activations are signed int8, per-tensor asymmetric
 * (scale, zp); weights are signed int8 per-channel or per-tensor, symmetric (zp = 0) or
 * asymmetric. The GEMM computes, exactly for every 8-bit input,
 *
 *     acc[m][n] = sum_k (a[m][k] - a_zp) * (w[n][k] - w_zp[n])          (int32)
 *
 * and the requantizing epilogue (fbgemm's float-bias convention) is
 *
 *     v = ((float)acc + bias[n] / (in_scale * w_scale[n])) * (in_scale * w_scale[n] / out_scale)
 *     q = clamp(nearbyintf(v) + out_zp, relu ? max(out_zp, qmin) : qmin, qmax)
 *
 * with float32 operations in exactly that order in every ISA, so all levels give the
 * same bytes. Exactness of each ISA's accumulation is argued next to its kernel.
 *
 * Use: qlab_act_collect() once per model (1000 training images through FP32, statistics
 * for every calibration method and width), then qlab_eval_w8a8() once per configuration
 * (weights quantized and packed, the 10k test images run through int8 layers).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "qlab-err.h"
#include "qlab-model.h"
#include "qlab-quant.h"

/* ---- ISA levels ------------------------------------------------------------------- */

typedef enum qlab_int8_isa {
    QLAB_INT8_SCALAR = 0,   /* the reference: plain C loops on the unpacked weights */
    QLAB_INT8_AVX2,         /* vpmaddwd on sign-extended int16 pairs */
    QLAB_INT8_AVXVNNI,      /* vpdpbusd (VEX, ymm) on u8 = s8 ^ 0x80 quads */
    QLAB_INT8_AVX512VNNI,   /* vpdpbusd (EVEX, zmm), same packing as AVX-VNNI */
    QLAB_INT8_AMX,          /* AMX-INT8 tdpbusd on 16 x 64 tiles, same packing */
    QLAB_INT8_ISA_COUNT
} qlab_int8_isa;

/* "scalar", "avx2", "avxvnni", "avx512vnni", "amx". */
const char *qlab_int8_isa_name(qlab_int8_isa isa);

/* Best level this CPU supports (cpuid + xgetbv, read once), lowered by the environment
 * variable QLAB_CPU=scalar|avx2|avxvnni|avx512vnni|amx when set (the best supported
 * level not above the one named). AMX also needs the kernel's permission for the tile
 * data (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+), asked for once here. */
qlab_int8_isa qlab_int8_isa_best(void);

/* Level used by objects packed from now on (default qlab_int8_isa_best()). Returns
 * -ENOTSUP when the CPU lacks it (or it was not compiled). Tests use it to compare every
 * level. */
int qlab_int8_isa_supported(qlab_int8_isa isa);
int qlab_int8_set_isa(qlab_int8_isa isa);
qlab_int8_isa qlab_int8_isa_current(void);

/* ---- GEMM with packed weights ------------------------------------------------------ */

/* Requantization of one layer's output (all pointers borrowed during qlab_qgemm_pack). */
typedef struct qlab_requant {
    float in_scale;
    int32_t in_zp;              /* activation zero point of the GEMM input */
    const float *w_scale;       /* n entries (per-channel) or 1 (per-tensor) */
    size_t w_scale_count;
    const int32_t *w_zp;        /* NULL: symmetric weights; else w_scale_count entries */
    const float *bias;          /* n entries or NULL */
    float out_scale;
    int32_t out_zp;
    int relu;                   /* clamp below at out_zp (fused ReLU) */
    int32_t qmin, qmax;         /* output code range, normally -128..127 */
} qlab_requant;

typedef struct qlab_qgemm qlab_qgemm;

/* Packs W (n x k, row-major: PyTorch Linear [out, in], or Conv2d [out, in*kh*kw]) for
 * the current ISA level, with the requantization folded into per-column constants.
 * rq may be NULL (then only the s32 outputs are usable, with in_zp = 0 and w_zp = 0).
 * k is limited so that the exact sum fits int32: |a - a_zp| <= 255 and |w| <= 128 give
 * k * 32640 < 2^31 for k <= QLAB_QGEMM_K_MAX; asymmetric weights (|w - w_zp| <= 255)
 * allow k <= QLAB_QGEMM_K_MAX_ASYM. -EINVAL beyond. */
#define QLAB_QGEMM_K_MAX 65536
#define QLAB_QGEMM_K_MAX_ASYM 32768
int qlab_qgemm_pack(const int8_t *w, size_t n, size_t k, const qlab_requant *rq,
                    qlab_qgemm **out);
void qlab_qgemm_free(qlab_qgemm *g);
qlab_int8_isa qlab_qgemm_isa(const qlab_qgemm *g);

/* C (m x n int32, row stride ldc) = exact acc above, for A (m x k int8, row stride lda),
 * with the zero points given at pack time. Uses qlab_parallel_for (both cores). */
int qlab_qgemm_s32(const qlab_qgemm *g, const int8_t *a, size_t m, size_t lda,
                   int32_t *c, size_t ldc);

/* C (m x n int8) = requantized acc (fused epilogue). */
int qlab_qgemm_s8(const qlab_qgemm *g, const int8_t *a, size_t m, size_t lda,
                  int8_t *c, size_t ldc);

/* Same on a u8 input (A's bytes read as unsigned, zero point in_zp in 0..255): the
 * oneDNN u8s8s32 convention, used by the benchmark. */
int qlab_qgemm_u8_s32(const qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda,
                      int32_t *c, size_t ldc);

/* u8 in, u8 out: A's bytes are u8 codes (zero point in_zp + 128) and C receives the
 * requantized codes + 128 (the quint8 bytes of the same grid, PyTorch's activation
 * storage). The VNNI kernels read such A in place with pure load broadcasts, which is
 * why the W8A8 path keeps its activations this way. */
int qlab_qgemm_u8(const qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda, uint8_t *c,
                  size_t ldc);

/* Scalar truth for tests: acc with explicit zero points, unpacked W (n x k). */
void qlab_qgemm_ref_s32(const int8_t *a, size_t m, size_t lda, int32_t a_zp,
                        const int8_t *w, size_t n, size_t k, const int32_t *w_zp,
                        size_t w_zp_count, int32_t *c, size_t ldc);

/* Requantizes one accumulator the way every level does (see top of file). */
int8_t qlab_requant_one(int32_t acc, size_t col, const qlab_requant *rq);

/* ---- int8 layers on HWC tensors ---------------------------------------------------------
 * Between layers the integer path keeps each image as h x w x c (channels last), so that an
 * im2col row is kh*kw contiguous runs of c codes and a GEMM output row (one pixel, all
 * output channels) is already the next layer's layout. Weights are permuted once, at pack
 * time, to match: conv [oc][kh][kw][c], and a linear layer after flatten gets its columns
 * reordered from PyTorch's c*H*W + h*W + w to (h*W + w)*C + c. */

/* Copies an h x w x c image into the middle of an (h + 2 pad) x (w + 2 pad) x c one whose
 * border holds pad_value (the input zero point = the code of 0.0). */
void qlab_pad_hwc_s8(const int8_t *img, size_t h, size_t w, size_t c, size_t pad,
                     int8_t pad_value, int8_t *out);

/* im2col of one already padded image (h x w x c int8) for a kh x kw kernel: oh*ow rows
 * of kh*kw*c codes, ld bytes apart (ld >= kh*kw*c; a multiple of 4 lets the AVX-VNNI GEMM
 * read the rows in place; the bytes past kh*kw*c are unspecified codes from the image).
 * Works in 16-byte copies: img needs QLAB_IM2COL_SLACK readable bytes after its end and
 * cols as many writable bytes after its last row. */
#define QLAB_IM2COL_SLACK 16
void qlab_im2col_hwc_s8(const int8_t *img, size_t h, size_t w, size_t c, size_t kh,
                        size_t kw, size_t stride, int8_t *cols, size_t ld);

/* Max pooling (no padding, floor mode) of one h x w x c image; codes are monotone in the
 * real value, so this equals pooling the reals and keeps (scale, zp). */
void qlab_maxpool_hwc_s8(const int8_t *in, size_t h, size_t w, size_t c, size_t k,
                         size_t stride, int8_t *out);

/* In-place ReLU on codes: max(q, zp). */
void qlab_relu_s8(int8_t *x, size_t n, int8_t zp);

/* The same two on u8 codes (code + 128; zp given as a u8 code too). */
void qlab_maxpool_hwc_u8(const uint8_t *in, size_t h, size_t w, size_t c, size_t k,
                         size_t stride, uint8_t *out);
void qlab_relu_u8(uint8_t *x, size_t n, uint8_t zp);

/* ---- activation calibration statistics -------------------------------------------------- */

/* Streaming statistics of one activation tensor: exact min/max and a signed histogram of
 * QLAB_ACT_BINS bins over [-range, range), range a power of two that doubles (merging bin
 * pairs, so no count moves across an edge) when a larger |x| arrives. Every calibration
 * method and bit-width is derived from it without running the images again. */
#define QLAB_ACT_BINS 4096
typedef struct qlab_act_hist {
    double min, max;
    uint64_t count;
    double range;
    uint64_t bins[QLAB_ACT_BINS];
} qlab_act_hist;

/* Point 0 is the model input (normalised), point i + 1 the output of layer i. */
typedef struct qlab_act_stats {
    size_t npoints;
    qlab_act_hist *points;
    size_t nimages;
    uint64_t seed;
    uint32_t *indices;          /* the training images used, in order */
} qlab_act_stats;

#define QLAB_CALIB_DEFAULT_IMAGES 1000
#define QLAB_CALIB_DEFAULT_SEED 20260101u

/* The n distinct training indices qlab draws with `seed`: a partial Fisher-Yates
 * shuffle of 0..total-1 driven by splitmix64 (j = i + next() % (total - i)), which
 * tests/int8/gen_fixtures.py reimplements so PyTorch sees the same images. */
int qlab_calib_indices(size_t total, size_t n, uint64_t seed, uint32_t *out);

/* Runs those n training images through the FP32 model once (both cores). */
int qlab_act_collect(const qlab_model *m, const qlab_dataset *train, size_t n, uint64_t seed,
                     qlab_act_stats **out, qlab_err *err);
void qlab_act_stats_free(qlab_act_stats *s);

/* Adds n values (NaN/Inf -> -EDOM) to h (h zeroed = empty). */
int qlab_act_hist_add(qlab_act_hist *h, const float *x, size_t n);
/* Adds src into dst (either may be empty). */
void qlab_act_hist_merge(qlab_act_hist *dst, const qlab_act_hist *src);

/* Calibrated range [lo, hi] of one tensor for `calib` at `bits` (percentile P from
 * `percentile`, linear interpolation inside histogram bins, so approximate to one bin
 * width; mse: the clip scaling of [min, max] minimising the quantization MSE of the
 * histogram at `bits`; entropy: TensorRT's KL threshold T on |x| (qlab_entropy_threshold),
 * range [max(min, -T), min(max, T)]). */
int qlab_act_range(const qlab_act_hist *h, qlab_calibration calib, double percentile,
                   int bits, double *lo, double *hi);
/* Per-tensor asymmetric (scale, zp) of PRODUCT §3 from that range. */
int qlab_act_qparams(const qlab_act_hist *h, qlab_calibration calib, double percentile,
                     int bits, float *scale, int32_t *zp);

/* ---- W8A8 evaluation ------------------------------------------------------------------- */

/* Activations are quantized at the model input and at every linear/conv output (after
 * its ReLU when a relu layer follows: the ReLU is fused, as PyTorch's LinearReLU /
 * ConvReLU2d observe the post-ReLU tensor); maxpool, flatten and unfused relu keep the
 * (scale, zp) of their input. The last layer's int8 output is the only thing dequantized
 * (argmax of codes = argmax of the dequantized logits, ties to the lowest class). */
typedef struct qlab_w8a8_config {
    qlab_qconfig weights;       /* bits 8 for the integer path; tensor or channel */
    int act_bits;               /* 8: integer kernels; other widths: simulated fake-quant */
    qlab_calibration act_calib;
    double act_percentile;      /* for QLAB_CALIB_PERCENTILE */
    size_t metric_samples;      /* first test images for per-layer metrics (0: none) */
    int simulate;               /* 1: fake-quant path even at 8 bits (cross-checks) */
} qlab_w8a8_config;

/* 8-bit per-channel symmetric minmax weights, int8 minmax activations, no metrics. */
void qlab_w8a8_config_init(qlab_w8a8_config *cfg);

typedef struct qlab_w8a8_layer {
    int quantized;              /* 1 where activations are (re)quantized at this output */
    float scale;                /* activation (scale, zp) of this layer's output */
    int32_t zp;
    double lo, hi;              /* the calibrated range behind them */
    /* this layer's output (after its fused ReLU; dequantized) against the FP32 model's,
     * over metric_samples images: n, mse, sqnr_db, max_abs_error, cosine, clip_fraction
     * (n = 0: not measured) */
    qlab_metrics metrics;
} qlab_w8a8_layer;

typedef struct qlab_w8a8_result {
    double accuracy;            /* percent */
    size_t correct, n;
    int simulated;              /* 1: activations fake-quantized in the FP32 path */
    qlab_int8_isa isa;          /* integer kernel level that ran (when !simulated) */
    float in_scale;
    int32_t in_zp;
    size_t nlayers;
    qlab_w8a8_layer *layers;    /* malloc'd: qlab_w8a8_result_clear */
} qlab_w8a8_result;

/* Evaluates the whole test set with weights quantized per cfg->weights and activations
 * calibrated from stats. pred (optional) receives test->n predictions. Integer path:
 * weights must be 8-bit, per-tensor or per-channel (-ENOTSUP otherwise). */
int qlab_eval_w8a8(const qlab_model *m, const qlab_act_stats *stats, const qlab_dataset *test,
                   const qlab_w8a8_config *cfg, int32_t *pred, qlab_w8a8_result *res,
                   qlab_err *err);
void qlab_w8a8_result_clear(qlab_w8a8_result *res);
