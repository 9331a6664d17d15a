/* qgemm-epi512.h — the AVX-512 epilogue of an int8 GEMM tile, shared by the AVX512-VNNI
 * and AMX kernels (included only by files built with -mavx512f -mavx512bw -mavx512vl):
 * one zmm of 16 int32 accumulators per row -> column and zero-point corrections -> int32
 * store, or requantization to int8 with the float32 operations of qgemm_requant_scalar in
 * the same order, so every level gives the same bytes. */
#pragma once

#include <immintrin.h>
#include <string.h>

#include "qgemm-private.h"

/* The epilogue's per-tile constants, loaded once: the int8 stores may alias anything, so
 * the compiler would otherwise reload them from *t for every row. */
typedef struct qgemm_epi {
    __m512i colcorr, wz, zp, lo, hi;
    __m512 bias_over, mult;
    __m128i x;
    __mmask16 mask;
} qgemm_epi;

static inline void qgemm_epi_load(const qgemm_tile *t, qgemm_epi *e)
{
    /* All fields defined even where the s32 path leaves them unused (gcc's
     * -Wmaybe-uninitialized cannot see that the branches agree). */
    memset(e, 0, sizeof(*e));
    e->colcorr = _mm512_loadu_si512((const void *)t->colcorr);
    e->wz = t->wz ? _mm512_loadu_si512((const void *)t->wz) : _mm512_setzero_si512();
    e->mask = (__mmask16)((1u << t->nr) - 1);
    if (t->c8) {
        e->bias_over = _mm512_loadu_ps(t->bias_over);
        e->mult = _mm512_loadu_ps(t->mult);
        e->zp = _mm512_set1_epi32(t->out_zp);
        e->lo = _mm512_set1_epi32(t->lo);
        e->hi = _mm512_set1_epi32(t->hi);
        e->x = _mm_set1_epi8((char)t->out_xor);
    }
}

static inline void qgemm_store_row(const qgemm_tile *t, const qgemm_epi *e, size_t r,
                                   __m512i acc)
{
    acc = _mm512_add_epi32(acc, e->colcorr);
    if (t->wz)
        acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(e->wz, _mm512_set1_epi32(t->rowsum[r])));
    if (t->c32) {
        _mm512_mask_storeu_epi32(t->c32 + r * t->ldc, e->mask, acc);
        return;
    }
    __m512 f = _mm512_cvtepi32_ps(acc);
    f = _mm512_add_ps(f, e->bias_over);
    f = _mm512_mul_ps(f, e->mult);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), e->zp);
    q = _mm512_min_epi32(_mm512_max_epi32(q, e->lo), e->hi);
    /* values are in [lo, hi] within int8: the truncating down-convert is exact */
    __m128i b = _mm_xor_si128(_mm512_cvtepi32_epi8(q), e->x);
    _mm_mask_storeu_epi8(t->c8 + r * t->ldc, e->mask, b);
}

