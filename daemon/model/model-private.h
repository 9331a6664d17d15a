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

/* NHWC fast path (infer-nhwc.c). */
float *qlab_conv_weight_nhwc(const qlab_layer *l, const float *w);
size_t qlab_nhwc_col_floats(const qlab_model *m, size_t mb);
/* wr: per layer, conv weights reordered to [out, kh, kw, C]; wt: per layer, the weights in
 * use (linear layers). Returns the buffer (act0 or act1) holding the logits. */
float *qlab_run_layers_nhwc(const qlab_model *m, const float *const *wr, const float *const *wt,
                            float *act0, float *act1, float *col, size_t n);
