/* core-private.h — helpers shared by the files of the quantization core. */
#pragma once

#include "dsp-private.h"
#include "qlab-quant.h"

/* Work is split into fixed tiles of QLAB_TILE elements (a multiple of 8, 64 KiB of floats,
 * L2-resident); per-tile partial sums are combined in tile order, so results never depend
 * on the thread count. */
#define QLAB_TILE ((size_t)16384)

/* Tiles per parallel chunk below which one thread does everything (~256K elements). */
#define QLAB_TILE_GRAIN ((size_t)16)

/* Min / max / max|x| of x[0..n) on all cores; -EDOM on NaN or Inf. n >= 1. */
int qlab_range_minmax(const float *x, size_t n, float *mn, float *mx);

/* Fake-quantizes x[0..n) with one block's args on all cores, y may be NULL; st receives
 * the sums. -EDOM on NaN/Inf in x. */
int qlab_fq_span(const float *x, size_t n, const qlab_fq_args *a, float *y, qlab_fq_stats *st);

/* Fills a from (scale, zp); -EINVAL if scale is not finite and > 0 or zp out of range. */
int qlab_fq_args_init(qlab_fq_args *a, float scale, int32_t zp, int bits);

/* Calibrates one block x[0..n) (n may be 0): scale and zero point per cfg. */
int qlab_calibrate_block(const float *x, size_t n, const qlab_qconfig *cfg, float *scale,
                         int32_t *zp);
