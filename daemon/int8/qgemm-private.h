/* qgemm-private.h — the contract between the GEMM driver (qgemm.c) and the per-ISA
 * micro-kernels (qgemm-avx2.c, qgemm-avxvnni.c, each built in its own static library
 * with only that ISA's -m flags).
 *
 * Packed layouts (NR = 16 output columns per panel, KR = k values per group):
 *   W panel p, group g:  w[p*16 + j][g*KR + t] at element ((g*16 + j)*KR + t)
 *   A row r:             A'[r][k] at element k of a row of kp = round_up(k, KR) elements
 * Out-of-range weights and A' padding are 0, so padding adds nothing to the sums.
 * AVX2: KR = 2, elements int16 (A' = a sign- or zero-extended).
 * AVX-VNNI, AVX512-VNNI and AMX: KR = 4, elements uint8 for A' (a ^ 0x80 for s8 input, a
 *   for u8) and int8 W.
 *   When the caller's rows are long enough (lda >= kp) and no row sums are needed
 *   (symmetric weights), the kernel reads A in place and applies the ^ 0x80 itself
 *   (a_xor; AMX only for u8 input, as its tile loads cannot flip bits); bytes between k
 *   and kp meet zero weights, so their values do not matter.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define QGEMM_NR 16
#define QGEMM_MR 6              /* rows per tile of the AVX2 and AVX-VNNI kernels */
#define QGEMM_MR_512 12         /* rows per tile of the AVX512-VNNI kernel */
#define QGEMM_MR_AMX 16         /* rows per tile of the AMX kernel (a full tile) */

/* One MR x NR tile: raw R = sum_k A'[r][k] * W[n][k] in int32, then
 *   acc = R + colcorr[j] - (wz ? wz[j] * rowsum[r] : 0)   (wrapping int32)
 * and either stored as int32 (c32) or requantized to int8 (c8). */
typedef struct qgemm_tile {
    const void *a;              /* packed A' row 0 of the tile */
    size_t a_stride;            /* bytes between packed rows */
    uint32_t a_xor;             /* AVX-VNNI: 0x80808080 when A is read unpacked as s8 */
    const void *w;              /* packed panel */
    size_t kgroups;             /* kp / KR */
    size_t mr, nr;              /* valid rows (<= the kernel's MR) and columns (<= NR) */
    const int32_t *colcorr;     /* NR entries */
    const int32_t *wz;          /* NR entries or NULL */
    const int32_t *rowsum;      /* mr entries (read only when wz) */
    const float *mult;          /* NR entries (c8 only) */
    const float *bias_over;     /* NR entries (c8 only) */
    int32_t out_zp, lo, hi;
    int32_t *c32;               /* row 0 col 0 of the output tile, or NULL */
    int8_t *c8;
    uint8_t out_xor;            /* c8 bytes ^= out_xor (0x80: u8 codes) */
    size_t ldc;                 /* elements */
} qgemm_tile;

typedef void (*qgemm_tile_fn)(const qgemm_tile *t);

struct qlab_qgemm;
/* qlab_qgemm_u8 on the calling thread only: for callers that are themselves chunks of a
 * qlab_parallel_for (the pool runs one job at a time, so nesting would deadlock), without
 * touching the caller's qlab_parallel_set_serial state. */
int qgemm_u8_serial(const struct qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda,
                    uint8_t *c, size_t ldc);

void qlab_qgemm_tile_avx2(const qgemm_tile *t);
void qlab_qgemm_tile_avxvnni(const qgemm_tile *t);
void qlab_qgemm_tile_avx512vnni(const qgemm_tile *t);
void qlab_qgemm_tile_amx(const qgemm_tile *t);
/* Ends the AMX kernel's use of the tiles on this thread (after a GEMM's last tile). */
void qlab_qgemm_amx_release(void);

/* The exact scalar epilogue every ISA reproduces: float32 ops in this order, rounding
 * to nearest even, out-of-range floats become INT32_MIN as cvtps2dq does, wrapping add. */
static inline int8_t qgemm_requant_scalar(int32_t acc, float bias_over, float mult,
                                          int32_t out_zp, int32_t lo, int32_t hi)
{
    float f = (float)acc;
    f = f + bias_over;
    f = f * mult;
    int32_t q;
    if (f >= -2147483648.0f && f < 2147483648.0f)
        q = (int32_t)__builtin_nearbyintf(f);
    else
        q = INT32_MIN;
    q = (int32_t)((uint32_t)q + (uint32_t)out_zp);
    if (q < lo)
        q = lo;
    if (q > hi)
        q = hi;
    return (int8_t)q;
}
