/* qgemm-avx512vnni.c — 12 x 16 int8 GEMM tile with AVX512-VNNI vpdpbusd on zmm (built
 * with -mavx2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni only).
 *
 * Same packed layout as the AVX-VNNI kernel (KR = 4, a 16-column group is 64 bytes: one
 * zmm), so one load of W and one vpdpbusd per row and group. Exactness is the AVX-VNNI
 * argument (qgemm-avxvnni.c): four u8 x s8 products summed into int32 without
 * intermediate saturation, exact for k <= QLAB_QGEMM_K_MAX. The epilogue does on one zmm
 * what the shared AVX2 one does on two ymm: the same float32 operations in the same
 * order (cvtdq2ps, add bias/ws, mul, cvtps2dq under the default MXCSR, wrapping add of
 * the zero point, clamp), so the bytes equal every other level's.
 *
 * Speed: with A already u8 (packed, or u8 input) the broadcast is a pure load
 * (vpbroadcastd from memory); the s8-in-place variant needs the ^ 0x80 on a GPR and a
 * broadcast from it, which is a port-5 uop competing with vpdpbusd, hence two
 * specialisations of one inline body. */
#include <immintrin.h>
#include <string.h>

#include "qgemm-epi512.h"
#include "qgemm-private.h"

#define MR QGEMM_MR_512

static inline __attribute__((always_inline)) __m512i bcast(const unsigned char *p, uint32_t x,
                                                           int do_xor)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32((int32_t)(do_xor ? v ^ x : v));
}

/* R rows (a compile-time constant in each instantiation, so the accumulators stay in
 * registers): tiles with few valid rows (GEMV, edges) run a narrower body instead of
 * computing MR rows and discarding most. */
static inline __attribute__((always_inline)) void tile(const qgemm_tile *t, int do_xor,
                                                       const size_t R)
{
    const unsigned char *a[MR];
    for (size_t r = 0; r < R; r++)
        a[r] = (const unsigned char *)t->a + (r < t->mr ? r : 0) * t->a_stride;
    const int8_t *w = t->w;
    const uint32_t ax = t->a_xor;
    __m512i c[MR];
#pragma GCC unroll 12
    for (size_t r = 0; r < R; r++)
        c[r] = _mm512_setzero_si512();
    for (size_t off = 0, end = 4 * t->kgroups; off < end; off += 4, w += 4 * QGEMM_NR) {
        const __m512i wv = _mm512_loadu_si512((const void *)w);
#pragma GCC unroll 12
        for (size_t r = 0; r < R; r++)
            c[r] = _mm512_dpbusd_epi32(c[r], bcast(a[r] + off, ax, do_xor), wv);
    }
    qgemm_epi e;
    qgemm_epi_load(t, &e);
    for (size_t r = 0; r < t->mr; r++)
        qgemm_store_row(t, &e, r, c[r]);
}

#define TILE_R(R)                                                                           \
    static void tile_##R(const qgemm_tile *t)                                               \
    {                                                                                       \
        if (t->a_xor)                                                                       \
            tile(t, 1, R);                                                                  \
        else                                                                                \
            tile(t, 0, R);                                                                  \
    }
TILE_R(1)
TILE_R(2)
TILE_R(4)
TILE_R(8)
TILE_R(12)

void qlab_qgemm_tile_avx512vnni(const qgemm_tile *t)
{
    if (t->mr <= 1)
        tile_1(t);
    else if (t->mr <= 2)
        tile_2(t);
    else if (t->mr <= 4)
        tile_4(t);
    else if (t->mr <= 8)
        tile_8(t);
    else
        tile_12(t);
}
