/* qgemm-avxvnni.c — 6 x 16 int8 GEMM tile with AVX-VNNI vpdpbusd (built with -mavx2
 * -mavxvnni only).
 *
 * Exactness: vpdpbusd multiplies four u8 (A' = a ^ 0x80 = a + 128 for s8 input) by four
 * s8 (W) per lane and adds the four products to the int32 accumulator with no
 * intermediate rounding or saturation (Intel SDM: the non-"s" form wraps only in the
 * final int32 add). |255 * -128| * 4 = 130560 per instruction, so the int32 sum is exact
 * while k * 32640 < 2^31, i.e. for k <= QLAB_QGEMM_K_MAX. The +128 shift is removed
 * exactly by the driver's column correction -(128 + a_zp) * sum_k w[n][k]. */
#include <immintrin.h>
#include <string.h>

#include "qgemm-epilogue-private.h"

/* do_xor is a compile-time constant in each specialisation: without it the broadcast
 * is a pure load (vpbroadcastd from memory), with it a GPR xor + a port-5 broadcast. */
static inline __attribute__((always_inline)) __m256i bcast_quad(const unsigned char *p,
                                                                uint32_t x, int do_xor)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32((int32_t)(do_xor ? v ^ x : v));
}

#define DP(c, b, w) c = _mm256_dpbusd_avx_epi32(c, b, w)

static inline __attribute__((always_inline)) void tile(const qgemm_tile *t, int do_xor)
{
    const unsigned char *a[QGEMM_MR];
    for (size_t r = 0; r < QGEMM_MR; r++)
        a[r] = (const unsigned char *)t->a + (r < t->mr ? r : 0) * t->a_stride;
    const int8_t *w = t->w;
    const uint32_t ax = t->a_xor;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
            c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t g = 0; g < t->kgroups; g++, w += 4 * QGEMM_NR) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 2 * QGEMM_NR));
        const size_t off = 4 * g;   /* four u8 per group */
        __m256i b;
        b = bcast_quad(a[0] + off, ax, do_xor);
        DP(c00, b, w0);
        DP(c01, b, w1);
        b = bcast_quad(a[1] + off, ax, do_xor);
        DP(c10, b, w0);
        DP(c11, b, w1);
        b = bcast_quad(a[2] + off, ax, do_xor);
        DP(c20, b, w0);
        DP(c21, b, w1);
        b = bcast_quad(a[3] + off, ax, do_xor);
        DP(c30, b, w0);
        DP(c31, b, w1);
        b = bcast_quad(a[4] + off, ax, do_xor);
        DP(c40, b, w0);
        DP(c41, b, w1);
        b = bcast_quad(a[5] + off, ax, do_xor);
        DP(c50, b, w0);
        DP(c51, b, w1);
    }
    const __m256i acc[QGEMM_MR][2] = {
        {c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
    };
    for (size_t r = 0; r < t->mr; r++)
        qgemm_store_row(t, r, acc[r][0], acc[r][1]);
}

void qlab_qgemm_tile_avxvnni(const qgemm_tile *t)
{
    if (t->a_xor)
        tile(t, 1);
    else
        tile(t, 0);
}
