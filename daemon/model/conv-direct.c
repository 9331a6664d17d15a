/* conv-direct.c — direct FP32 convolution on channels-last (NHWC) samples, one sample per
 * call, with bias, relu and max pooling fused. Compiled once per ISA (meson.build):
 * QLAB_CONV_VW = 16 with -mavx512f gives qlab_conv_direct_avx512, QLAB_CONV_VW = 8 with
 * -mavx2 -mfma gives qlab_conv_direct_avx2; conv.c picks one at run time.
 *
 * Why not im2col + sgemm: for the small layers of the models qlab sees (the shipped CNN's
 * conv2 is 16 -> 32 channels, 3x3, on 14x14) the im2col matrix is 9x the input, sgemm then
 * packs it again, and the GEMM's N (the output channels) is only 16 or 32 wide. Here the
 * padded input is read in place: a register tile holds T output pixels of one row by NV
 * vectors of output channels, and each step of the reduction over (ki, kj, ci) loads NV
 * weight vectors and broadcasts T input values into T x NV fused multiply-adds. With
 * T x NV accumulators (up to 24 of AVX-512's 32 registers) the loop is bound by the FMA
 * units, not by loads.
 *
 * Sums run over ki, then kj and ci together (a kernel row of the padded input is kw * C
 * contiguous floats), one FMA per term; the bias is added last, as sgemm + bias would. */
#include "model-private.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#if QLAB_CONV_VW == 16
typedef __m512 V;
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
/* MAXPS(src1, src2) = src1 > src2 ? src1 : src2, so a NaN in src2 survives */
#define VRELU(x) _mm512_max_ps(_mm512_setzero_ps(), (x))
#define VMAXNAN(a, b)                                                                      \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((b), (b), _CMP_UNORD_Q), _mm512_max_ps((b), (a)), \
                         (b))
#define FN(name) name##_avx512
/* accumulator tile widths per NV (index NV): T x NV <= 24 of 32 zmm registers */
static const int tmax[5] = {0, 16, 12, 8, 6};
#define NVMAX 4         /* vectors of output channels per block */
#elif QLAB_CONV_VW == 8
typedef __m256 V;
#define VW 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VRELU(x) _mm256_max_ps(_mm256_setzero_ps(), (x))
#define VMAXNAN(a, b)                                                                      \
    _mm256_blendv_ps(_mm256_max_ps((b), (a)), (b), _mm256_cmp_ps((b), (b), _CMP_UNORD_Q))
#define FN(name) name##_avx2
/* T x NV <= 12 of 16 ymm registers, leaving room for NV weight vectors and a broadcast
 * (wider blocks, NV 3 or 4, would spill under clang, which keeps the weights in registers) */
static const int tmax[3] = {0, 12, 6};
#define NVMAX 2
#else
#error "QLAB_CONV_VW must be 8 or 16"
#endif

enum { TMAX = 16 };

/* Full unrolling of the loops over T and NV (constants once tile() is inlined), so that the
 * accumulators live in registers: GCC and clang spell the pragma differently. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

typedef struct tile_args {
    const float *in;      /* padded input at the tile's first window */
    size_t xs;            /* floats between horizontally adjacent windows (stride * C) */
    size_t prow;          /* floats per padded input row */
    int kh;
    int krow;             /* kw * C: one kernel row, contiguous in the input */
    const float *w;       /* packed weights at the block's first channel */
    size_t op;            /* floats per packed weight row (padded out channels) */
    const float *bias;    /* at the block's first channel */
    int relu;
    float *out;           /* output at the tile's first pixel and the block's first channel */
    size_t ostep;         /* floats between adjacent output pixels */
} tile_args;

/* acc [T * NV], wv and bv [NV]: arrays of exactly that size in the caller (TILE_FN), so
 * that once the loops are unrolled every element is a register (clang promotes only
 * exactly sized arrays). */
static inline __attribute__((always_inline)) void tile(const tile_args *a, const int NV,
                                                       const int T, V *restrict acc,
                                                       V *restrict wv, V *restrict bv)
{
UNROLL
    for (int t = 0; t < T; t++)
UNROLL
        for (int v = 0; v < NV; v++)
            acc[t * NV + v] = VZERO();
    const float *restrict wp = a->w;
    const size_t xs = a->xs, op = a->op;
    const int krow = a->krow;
    for (int ki = 0; ki < a->kh; ki++) {
        const float *restrict ip = a->in + (size_t)ki * a->prow;
        for (int k = 0; k < krow; k++, wp += op) {
UNROLL
            for (int v = 0; v < NV; v++)
                wv[v] = VLOAD(wp + v * VW);
UNROLL
            for (int t = 0; t < T; t++) {
                const V b = VSET1(ip[(size_t)t * xs + k]);
UNROLL
                for (int v = 0; v < NV; v++)
                    acc[t * NV + v] = VFMA(b, wv[v], acc[t * NV + v]);
            }
        }
    }
UNROLL
    for (int v = 0; v < NV; v++)
        bv[v] = VLOAD(a->bias + v * VW);
UNROLL
    for (int t = 0; t < T; t++) {
UNROLL
        for (int v = 0; v < NV; v++) {
            V y = VADD(acc[t * NV + v], bv[v]);
            if (a->relu)
                y = VRELU(y);
            VSTORE(a->out + (size_t)t * a->ostep + v * VW, y);
        }
    }
}

typedef void (*tile_fn)(const tile_args *a);

#define TILE_FN(NV, T)                                                                     \
    static void tile_##NV##_##T(const tile_args *a)                                        \
    {                                                                                      \
        V acc[(T) * (NV)], wv[NV], bv[NV];                                                 \
        tile(a, NV, T, acc, wv, bv);                                                       \
    }
#define TILE_ROW(NV)                                                                       \
    TILE_FN(NV, 1) TILE_FN(NV, 2) TILE_FN(NV, 3) TILE_FN(NV, 4) TILE_FN(NV, 5)             \
    TILE_FN(NV, 6) TILE_FN(NV, 7) TILE_FN(NV, 8) TILE_FN(NV, 9) TILE_FN(NV, 10)            \
    TILE_FN(NV, 11) TILE_FN(NV, 12) TILE_FN(NV, 13) TILE_FN(NV, 14) TILE_FN(NV, 15)        \
    TILE_FN(NV, 16)
TILE_ROW(1)
TILE_ROW(2)
#if NVMAX == 4
TILE_ROW(3)
TILE_ROW(4)
#endif
#define TILE_TAB(NV)                                                                       \
    {NULL,          tile_##NV##_1,  tile_##NV##_2,  tile_##NV##_3,  tile_##NV##_4,        \
     tile_##NV##_5, tile_##NV##_6,  tile_##NV##_7,  tile_##NV##_8,  tile_##NV##_9,        \
     tile_##NV##_10, tile_##NV##_11, tile_##NV##_12, tile_##NV##_13, tile_##NV##_14,      \
     tile_##NV##_15, tile_##NV##_16}
static const tile_fn tiles[NVMAX + 1][TMAX + 1] = {
    {NULL}, TILE_TAB(1), TILE_TAB(2),
#if NVMAX == 4
    TILE_TAB(3), TILE_TAB(4),
#endif
};

/* Max pooling (after the fused relu) of y [h][w][op] into out [oh][ow][o]; NaN wins, as in
 * PyTorch. */
static void pool(const qlab_conv_plan *p, const float *restrict y, float *restrict out)
{
    const int k = p->pool_k, s = p->pool_s, o = p->o, w = p->ow;
    const size_t op = (size_t)p->op;
    const int ov = o / VW * VW;
    for (int py = 0; py < p->pool_oh; py++) {
        for (int px = 0; px < p->pool_ow; px++) {
            const float *restrict s0 = y + ((size_t)py * s * w + (size_t)px * s) * op;
            float *restrict d = out + ((size_t)py * p->pool_ow + px) * (size_t)o;
            for (int c = 0; c < ov; c += VW) {
                V m = VLOAD(s0 + c);
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++)
                        m = VMAXNAN(m, VLOAD(s0 + ((size_t)ki * w + kj) * op + c));
                VSTORE(d + c, m);
            }
            for (int c = ov; c < o; c++) {
                float m = s0[c];
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++)
                        m = qlab_max_nan(m, s0[((size_t)ki * w + kj) * op + c]);
                d[c] = m;
            }
        }
    }
}

void FN(qlab_conv_direct)(const qlab_conv_plan *p, const float *in, float *out, float *tmp)
{
    const size_t prow = (size_t)(p->w + 2 * p->pad) * p->c;
    const size_t xs = (size_t)p->stride * p->c;
    const int direct = !p->pool_k && p->o == p->op;
    float *y = direct ? out : tmp;
    const size_t ostep = direct ? (size_t)p->o : (size_t)p->op;
    const int nvec = p->op / VW;
    tile_args a = {
        .xs = xs, .prow = prow, .kh = p->kh, .krow = p->kw * p->c, .op = (size_t)p->op,
        .relu = p->relu, .ostep = ostep,
    };
    for (int oy = 0; oy < p->oh; oy++) {
        const float *row = in + (size_t)oy * p->stride * prow;
        for (int v0 = 0; v0 < nvec; v0 += NVMAX) {
            const int nv = nvec - v0 < NVMAX ? nvec - v0 : NVMAX;
            const int tm = tmax[nv];
            const int ntiles = (p->ow + tm - 1) / tm;
            const int base = p->ow / ntiles, extra = p->ow % ntiles;
            a.w = p->weight + (size_t)v0 * VW;
            a.bias = p->bias + (size_t)v0 * VW;
            int x0 = 0;
            for (int ti = 0; ti < ntiles; ti++) {
                const int t = base + (ti < extra);
                a.in = row + (size_t)x0 * xs;
                a.out = y + ((size_t)oy * p->ow + x0) * ostep + (size_t)v0 * VW;
                tiles[nv][t](&a);
                x0 += t;
            }
        }
    }
    if (p->pool_k) {
        pool(p, tmp, out);
    } else if (!direct) {
        const size_t npix = (size_t)p->oh * p->ow;
        for (size_t i = 0; i < npix; i++)
            memcpy(out + i * p->o, tmp + i * p->op, (size_t)p->o * sizeof *out);
    }
}
