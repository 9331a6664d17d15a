/* model-private.h — shared between the inference files of the model library. */
#pragma once

#include "qlab-model.h"

/* max with PyTorch's NaN propagation: a NaN anywhere in a pooling window wins */
static inline float qlab_max_nan(float a, float b)
{
    return (b > a || b != b) ? b : a;
}

void qlab_relu_f32(float *x, size_t n);
/* out[n, out_f] = in[n, in_f] x weight[out_f, in_f]^T + bias */
void qlab_linear_f32(const float *in, size_t n, int in_f, const float *weight,
                     const float *bias, int out_f, float *out);

/* A conv2d layer (with the relu and max pooling that follow it, when they do) prepared for
 * the direct kernels of conv-direct.c, on one channels-last sample. */
typedef struct qlab_conv_plan {
    int c, h, w;                /* input (unpadded) */
    int pad, stride, kh, kw;
    int o, op;                  /* output channels; op rounded up to 16 */
    int oh, ow;                 /* conv output */
    int relu;                   /* relu fused */
    int pool_k, pool_s;         /* max pooling fused (pool_k 0: none) */
    int pool_oh, pool_ow;
    float *weight;              /* [kh][kw][c][op], channels past o zero */
    float *bias;                /* [op], zero when the layer has none */
} qlab_conv_plan;

/* in: the padded sample [h + 2 pad][w + 2 pad][c]; out: [oh][ow][o], or the pooled
 * [pool_oh][pool_ow][o]; tmp: qlab_conv_plan_tmp_floats floats. */
typedef void (*qlab_conv_fn)(const qlab_conv_plan *p, const float *in, float *out, float *tmp);

/* conv-direct.c, built per ISA (declared whether or not this build has them). */
void qlab_conv_direct_avx2(const qlab_conv_plan *p, const float *in, float *out, float *tmp);
void qlab_conv_direct_avx512(const qlab_conv_plan *p, const float *in, float *out, float *tmp);

/* Kernel levels for FP32 convolution. BLAS is im2col + OpenBLAS sgemm over a mini-batch
 * (infer-nhwc.c), used where no direct kernel runs; the others are conv-direct.c. */
typedef enum qlab_conv_level {
    QLAB_CONV_BLAS = 0,
    QLAB_CONV_AVX2,
    QLAB_CONV_AVX512,
    QLAB_CONV_LEVELS
} qlab_conv_level;

const char *qlab_conv_level_name(qlab_conv_level level);
int qlab_conv_level_supported(qlab_conv_level level);
/* The level inference uses: the best supported, capped by QLAB_CPU (scalar: BLAS, avx2,
 * avxvnni: AVX2), or the one qlab_conv_set_level chose (tests, benchmarks). */
qlab_conv_level qlab_conv_level_current(void);
int qlab_conv_set_level(qlab_conv_level level);   /* -ENOTSUP if the CPU lacks it */
qlab_conv_fn qlab_conv_kernel(qlab_conv_level level);   /* NULL for BLAS */

/* Builds p for conv layer l with weights w [o][c][kh][kw] and bias (or NULL); relu and pool
 * (or NULL) are fused. Returns 0 or -ENOMEM. */
int qlab_conv_plan_init(qlab_conv_plan *p, const qlab_layer *l, const float *w,
                        const float *bias, int relu, const qlab_layer *pool);
void qlab_conv_plan_clear(qlab_conv_plan *p);
size_t qlab_conv_plan_tmp_floats(const qlab_conv_plan *p);
size_t qlab_conv_plan_pad_floats(const qlab_conv_plan *p);
/* Copies the sample in [h][w][c] into pad [h + 2p][w + 2p][c] with a zero border. */
void qlab_pad_nhwc(const float *in, size_t n, int c, int h, int w, int p, float *out);

/* NHWC fast path (infer-nhwc.c), prepared once per call for the weights in use. */
typedef struct qlab_nhwc {
    const qlab_model *m;
    const float **wt;           /* per layer: the weights in use */
    float **wr;                 /* per layer: conv weights as [out, kh, kw, C] (BLAS level) */
    float **wperm;              /* per layer: a linear layer's weights with their columns in
                                 * channels-last order, when it follows the flatten of an
                                 * NHWC activation (that flatten then moves nothing) */
    qlab_conv_plan *plan;       /* per layer: direct-kernel plans (direct levels) */
    qlab_conv_fn conv;          /* the direct kernel, NULL at the BLAS level */
    size_t seg_end;             /* layers [0, seg_end) run sample by sample (direct) */
    size_t pad_floats;          /* the largest padded conv input of that segment */
    size_t sample_floats;       /* per-sample scratch of that segment */
} qlab_nhwc;

/* weights: per layer overrides (NULL entries or NULL: the model's own). */
int qlab_nhwc_prepare(qlab_nhwc *f, const qlab_model *m, const float *const *weights);
void qlab_nhwc_clear(qlab_nhwc *f);
/* Floats of per-thread scratch for mini-batches of mb samples. */
size_t qlab_nhwc_scratch_floats(const qlab_nhwc *f, size_t mb);
/* Runs n samples from act0 (normalised NCHW input). Returns the buffer (act0 or act1)
 * holding the logits. */
float *qlab_run_layers_nhwc(const qlab_nhwc *f, float *act0, float *act1, float *scratch,
                            size_t n);
