/* qgemm-avx2.c — 6 x 16 int8 GEMM tile with vpmaddwd (built with -mavx2 only).
 *
 * Exactness: A' and W are int8 (or u8 for A') values sign-/zero-extended to int16, so
 * every vpmaddwd lane computes a0*w0 + a1*w1 with |a| <= 255, |w| <= 128: each product
 * is at most 32640 in magnitude and the pair sum at most 65280, formed in int32 by the
 * instruction (vpmaddwd only wraps for -32768 * -32768 twice, impossible here). The
 * int32 accumulation is exact while |sum| < 2^31, i.e. for k <= QLAB_QGEMM_K_MAX.
 * vpmaddubsw is deliberately not used: it saturates pair sums to int16 (255*127*2 =
 * 64770 > 32767), the error oneDNN's AVX2 u8s8s32 shows on full-range input. */
#include <immintrin.h>
#include <string.h>

#include "qgemm-epilogue-private.h"

static inline __m256i bcast_pair(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

void qlab_qgemm_tile_avx2(const qgemm_tile *t)
{
    const unsigned char *a[QGEMM_MR];
    for (size_t r = 0; r < QGEMM_MR; r++)
        a[r] = (const unsigned char *)t->a + (r < t->mr ? r : 0) * t->a_stride;
    const int16_t *w = t->w;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
            c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t g = 0; g < t->kgroups; g++, w += 2 * QGEMM_NR) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + QGEMM_NR));
        const size_t off = 4 * g;   /* two int16 per group */
        __m256i b;
        b = bcast_pair(a[0] + off);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(b, w0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(b, w1));
        b = bcast_pair(a[1] + off);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(b, w0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(b, w1));
        b = bcast_pair(a[2] + off);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(b, w0));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(b, w1));
        b = bcast_pair(a[3] + off);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(b, w0));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(b, w1));
        b = bcast_pair(a[4] + off);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(b, w0));
        c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(b, w1));
        b = bcast_pair(a[5] + off);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(b, w0));
        c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(b, w1));
    }
    const __m256i acc[QGEMM_MR][2] = {
        {c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
    };
    for (size_t r = 0; r < t->mr; r++)
        qgemm_store_row(t, r, acc[r][0], acc[r][1]);
}
