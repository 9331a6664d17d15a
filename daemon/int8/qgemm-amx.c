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
 * that width. Tile configurations are loaded per thread only when the shape (rows, tail)
 * changes; qlab_qgemm_amx_release() ends a GEMM (TILERELEASE returns the tile state to
 * its init state, so the core does not carry it). */
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

/* Tiles: 0 = C (mr x 16 int32), 1 = A (mr x 64 bytes), 2 = B (16 x 64), 3 = A tail
 * (mr x tail bytes), 4 = B tail (tail / 4 x 64). */
static _Thread_local int cur_rows = -1, cur_tail = -1;

static void configure(int rows, int tail)
{
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    c.rows[0] = (uint8_t)rows;
    c.colsb[0] = 64;
    c.rows[1] = (uint8_t)rows;
    c.colsb[1] = 64;
    c.rows[2] = 16;
    c.colsb[2] = 64;
    if (tail) {
        c.rows[3] = (uint8_t)rows;
        c.colsb[3] = (uint16_t)tail;
        c.rows[4] = (uint8_t)(tail / 4);
        c.colsb[4] = 64;
    }
    _tile_loadconfig(&c);
    cur_rows = rows;
    cur_tail = tail;
}

void qlab_qgemm_amx_release(void)
{
    if (cur_rows >= 0) {
        _tile_release();
        cur_rows = cur_tail = -1;
    }
}

void qlab_qgemm_tile_amx(const qgemm_tile *t)
{
    const size_t kbytes = 4 * t->kgroups;           /* kp */
    const size_t full = kbytes / 64, tail = kbytes % 64;
    const int rows = (int)t->mr;
    if (rows != cur_rows || (int)tail != cur_tail)
        configure(rows, (int)tail);
    const unsigned char *a = t->a;
    const int8_t *w = t->w;
    const size_t lda = t->a_stride;
    _tile_zero(0);
    for (size_t c = 0; c < full; c++) {
        _tile_loadd(1, a + 64 * c, lda);
        _tile_loadd(2, w + 64 * 16 * c, 64);
        _tile_dpbusd(0, 1, 2);
    }
    if (tail) {
        _tile_loadd(3, a + 64 * full, lda);
        _tile_loadd(4, w + 64 * 16 * full, 64);
        _tile_dpbusd(0, 3, 4);
    }
    int32_t acc[16][16] __attribute__((aligned(64)));
    _tile_stored(0, acc, 64);
    qgemm_epi e;
    qgemm_epi_load(t, &e);
    for (int r = 0; r < rows; r++)
        qgemm_store_row(t, &e, (size_t)r, _mm512_load_si512((const void *)acc[r]));
}
