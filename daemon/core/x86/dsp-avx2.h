/* dsp-avx2.h — AVX2+FMA kernels (dsp-avx2.c is the only file built with -mavx2 -mfma). */
#pragma once

#include "../dsp-private.h"

int qlab_quantize_f32_s16_avx2(const float *x, size_t n, const qlab_fq_args *a, int16_t *q);
void qlab_dequantize_s16_f32_avx2(const int16_t *q, size_t n, const qlab_fq_args *a, float *y);
void qlab_fake_quant_f32_avx2(const float *x, size_t n, const qlab_fq_args *a, float *y,
                              int16_t *q16, int8_t *q8, qlab_fq_stats *st);
int qlab_minmax_f32_avx2(const float *x, size_t n, float *mn, float *mx);
int qlab_absmax_f32_avx2(const float *x, size_t n, float *amax);
void qlab_abs_hist_f32_avx2(const float *x, size_t n, float scale, int nbins, uint64_t *hist);
int qlab_key_scan_f32_avx2(const float *x, size_t n, int absval, uint32_t klo, uint32_t kspan,
                           size_t *below, uint32_t *out, size_t cap, size_t *inside);
