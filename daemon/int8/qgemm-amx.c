/* qgemm-amx.c — 16 x 16 int8 GEMM tile with AMX-INT8 TDPBUSD (built with -mamx-tile
 * -mamx-int8 and the AVX-512 flags of the shared epilogue only).
 *
 * Same packed layout as the VNNI kernels (KR = 4; a group of 4 k values for the 16
 * columns of a panel is 64 bytes), which is exactly AMX's B-tile row: 16 consecutive
 * groups (64 k values) are one 16 x 64-byte tile at stride 64. A rows are u8 (packed
 * A' or a u8 input read in place), 64 bytes of k per tile row at the caller's stride.
 * One TDPBUSD multiplies 16 rows x 64 k x 16 columns, summing u8 x s8 products into
 * int32 as vpdpbusd does (no intermediate saturation), so the accumulators equal the
 * VNNI kernels' and, through the shared AVX-512 epilogue (qgemm-epi512.h), the bytes do.
 *
 * The k tail (kp mod 64, a multiple of 4) runs on a second pair of tiles configured with
 * that width, and a last tile of fewer than 16 rows on a third set (see configure), so
 * the configuration is loaded once per thread and GEMM; qlab_qgemm_amx_release() ends a
 * GEMM (TILERELEASE returns the tile state to its init state, so the core does not carry
 * it). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qgemm-epi512.h"
#include "qgemm-private.h"

typedef struct __attribute__((aligned(64))) tilecfg {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

_Static_assert(sizeof(tilecfg) == 64, "the tile configuration is 64 bytes");

/* Tiles: 0 = C (16 x 16 int32), 1 = A (16 x 64 bytes), 2 = B (16 x 64), 3 = A tail
 * (16 x tail bytes), 4 = B tail (tail / 4 x 64); for a last tile of rem < 16 rows,
 * 5 = C, 6 = A and 7 = A tail with rem rows. One configuration serves a whole GEMM on a
 * thread (m = 16 q + rem), so it is loaded once per GEMM, not per tile. */
static _Thread_local int cur_rem = -1, cur_tail = -1;

static void configure(int rem, int tail)
{
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    const int rows[8] = {16, 16, 16, tail ? 16 : 0, tail / 4, rem, rem, tail ? rem : 0};
    const int cols[8] = {64, 64, 64, tail, tail ? 64 : 0, rem ? 64 : 0, rem ? 64 : 0,
                         rem ? tail : 0};
    for (int i = 0; i < 8; i++) {
        c.rows[i] = (uint8_t)(cols[i] ? rows[i] : 0);
        c.colsb[i] = (uint16_t)(rows[i] ? cols[i] : 0);
    }
    _tile_loadconfig(&c);
    cur_rem = rem;
    cur_tail = tail;
}

void qlab_qgemm_amx_release(void)
{
    if (cur_tail >= 0) {
        _tile_release();
        cur_rem = cur_tail = -1;
    }
}

/* C += A x B over full 64-byte k steps, then the tail; C stored to acc. Tile numbers are
 * literals in the instructions, hence a macro. */
#define AMX_TILE(TC, TA, TAT)                                                               \
    do {                                                                                    \
        _tile_zero(TC);                                                                     \
        for (size_t c = 0; c < full; c++) {                                                 \
            _tile_loadd(TA, a + 64 * c, lda);                                               \
            _tile_loadd(2, w + 64 * 16 * c, 64);                                            \
            _tile_dpbusd(TC, TA, 2);                                                        \
        }                                                                                   \
        if (tail) {                                                                         \
            _tile_loadd(TAT, a + 64 * full, lda);                                           \
            _tile_loadd(4, w + 64 * 16 * full, 64);                                         \
            _tile_dpbusd(TC, TAT, 4);                                                       \
        }                                                                                   \
        _tile_stored(TC, acc, 64);                                                          \
    } while (0)

void qlab_qgemm_tile_amx(const qgemm_tile *t)
{
    const size_t kbytes = 4 * t->kgroups;           /* kp */
    const size_t full = kbytes / 64, tail = kbytes % 64;
    const int rows = (int)t->mr;
    const int rem = rows == 16 ? (cur_rem < 0 ? 0 : cur_rem) : rows;
    if ((int)tail != cur_tail || rem != cur_rem)
        configure(rem, (int)tail);
    const unsigned char *a = t->a;
    const int8_t *w = t->w;
    const size_t lda = t->a_stride;
    int32_t acc[16][16] __attribute__((aligned(64)));
    if (rows == 16)
        AMX_TILE(0, 1, 3);
    else
        AMX_TILE(5, 6, 7);
    qgemm_epi e;
    qgemm_epi_load(t, &e);
    for (int r = 0; r < rows; r++)
        qgemm_store_row(t, &e, (size_t)r, _mm512_load_si512((const void *)acc[r]));
}
