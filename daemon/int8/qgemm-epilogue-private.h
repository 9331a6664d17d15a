/* qgemm-epilogue-private.h — the AVX2 tile epilogue shared by the AVX2 and AVX-VNNI
 * kernels (included only by files built with -mavx2). It reproduces
 * qgemm_requant_scalar() exactly: vcvtdq2ps and vcvtps2dq round to nearest even under the
 * default MXCSR (as (float) and nearbyintf do), out-of-range floats give INT32_MIN in
 * both, additions wrap, and the float ops run in the same order (no FMA contraction:
 * the add and the multiply are separate intrinsics). */
#pragma once

#include <immintrin.h>
#include <string.h>

#include "qgemm-private.h"

static inline __m256i qgemm_corr(__m256i acc, const qgemm_tile *t, size_t r, size_t half)
{
    acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(t->colcorr + 8 * half)));
    if (t->wz) {
        __m256i wz = _mm256_loadu_si256((const __m256i *)(t->wz + 8 * half));
        acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(wz, _mm256_set1_epi32(t->rowsum[r])));
    }
    return acc;
}

static inline __m256i qgemm_requant8(__m256i acc, const qgemm_tile *t, size_t half)
{
    __m256 f = _mm256_cvtepi32_ps(acc);
    f = _mm256_add_ps(f, _mm256_loadu_ps(t->bias_over + 8 * half));
    f = _mm256_mul_ps(f, _mm256_loadu_ps(t->mult + 8 * half));
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(t->out_zp));
    q = _mm256_max_epi32(q, _mm256_set1_epi32(t->lo));
    return _mm256_min_epi32(q, _mm256_set1_epi32(t->hi));
}

/* Stores row r of the tile from its two accumulators (columns 0-7 and 8-15). */
static inline void qgemm_store_row(const qgemm_tile *t, size_t r, __m256i a0, __m256i a1)
{
    a0 = qgemm_corr(a0, t, r, 0);
    a1 = qgemm_corr(a1, t, r, 1);
    if (t->c32) {
        int32_t *dst = t->c32 + r * t->ldc;
        if (t->nr == QGEMM_NR) {
            _mm256_storeu_si256((__m256i *)dst, a0);
            _mm256_storeu_si256((__m256i *)(dst + 8), a1);
        } else {
            int32_t tmp[QGEMM_NR];
            _mm256_storeu_si256((__m256i *)tmp, a0);
            _mm256_storeu_si256((__m256i *)(tmp + 8), a1);
            memcpy(dst, tmp, t->nr * sizeof(int32_t));
        }
        return;
    }
    __m256i q0 = qgemm_requant8(a0, t, 0), q1 = qgemm_requant8(a1, t, 1);
    /* packs interleaves 128-bit lanes: (q0 0-3, q1 0-3, q0 4-7, q1 4-7); the permute
     * restores column order. Values are already in [lo, hi], so no saturation. */
    __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
    __m128i b8 = _mm_packs_epi16(_mm256_castsi256_si128(w16),
                                 _mm256_extracti128_si256(w16, 1));
    b8 = _mm_xor_si128(b8, _mm_set1_epi8((char)t->out_xor));
    int8_t *dst = t->c8 + r * t->ldc;
    if (t->nr == QGEMM_NR) {
        _mm_storeu_si128((__m128i *)dst, b8);
    } else {
        int8_t tmp[QGEMM_NR];
        _mm_storeu_si128((__m128i *)tmp, b8);
        memcpy(dst, tmp, t->nr);
    }
}
