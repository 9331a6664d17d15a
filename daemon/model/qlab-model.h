/* qlab-model.h — models and data: safetensors, IDX datasets, sequential MLP/CNN models,
 * FP32 inference (OpenBLAS) and weight-only quantized evaluation.
 *
 * Conventions: functions return 0 (or a count) on success and a negative errno on
 * failure; output parameters are written only on success; where the user must be told
 * which file, tensor or layer is at fault, an optional `qlab_err *` receives one line.
 *
 * Layouts are PyTorch's: Linear weight [out, in], Conv2d weight [out, in, kh, kw],
 * activations NCHW, flatten order c*H*W + h*W + w. A weighted layer's weight is therefore
 * also a row-major matrix [rows = out, cols = in (* kh * kw)], which is what the
 * quantization core's per-channel (axis 0) and per-group (along cols) granularities use.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "qlab-err.h"

/* ---------------------------------------------------------------------------------- */
/* safetensors                                                                         */
/* ---------------------------------------------------------------------------------- */

typedef enum qlab_dtype {
    QLAB_DTYPE_F32,
    QLAB_DTYPE_F16,
    QLAB_DTYPE_BF16,
    QLAB_DTYPE_U8,
    QLAB_DTYPE_I8,
    QLAB_DTYPE_I16,
    QLAB_DTYPE_I32,
    QLAB_DTYPE_COUNT
} qlab_dtype;

/* "F32", "U8", ... and the size of one element in bytes. */
const char *qlab_dtype_name(qlab_dtype t);
size_t qlab_dtype_size(qlab_dtype t);

#define QLAB_TENSOR_MAX_DIMS 8
#define QLAB_NAME_MAX 128

typedef struct qlab_tensor {
    char name[QLAB_NAME_MAX];
    qlab_dtype dtype;           /* dtype in the file */
    int ndim;
    int64_t shape[QLAB_TENSOR_MAX_DIMS];
    size_t numel;
    const void *raw;            /* the bytes in the file (mapped), nbytes long */
    size_t nbytes;
    size_t offset;              /* of raw from the start of the data section */
    /* Float tensors as float32: points into the mapping when the file holds aligned F32,
     * else to a converted copy (F16, BF16, unaligned F32). NULL for integer dtypes. */
    const float *f32;
} qlab_tensor;

typedef struct qlab_safetensors {
    char *path;
    size_t ntensors;
    qlab_tensor *tensors;       /* in the order of their data offsets */
    size_t nmeta;
    char **meta_keys;           /* __metadata__, string to string */
    char **meta_values;
    /* private */
    void *map;
    size_t map_len;
    float **owned;              /* converted copies, one slot per tensor (may be NULL) */
} qlab_safetensors;

enum {
    /* Accept integer dtypes (U8, I8, I16, I32) as well: for reading back exported
     * quantized models. Without it, only F32/F16/BF16 are accepted (a model's weights). */
    QLAB_ST_ALLOW_INT = 1 << 0,
};

/* Maps and validates `path`: header length within the file, JSON header, each tensor's
 * dtype known, shape product x dtype size == end - begin, offsets inside the data section,
 * no two tensors overlapping, every float value finite. Errors name the file and tensor. */
int qlab_st_open(qlab_safetensors **out, const char *path, unsigned flags, qlab_err *err);
void qlab_st_close(qlab_safetensors *st);
const qlab_tensor *qlab_st_find(const qlab_safetensors *st, const char *name);
/* NULL when the key is absent. */
const char *qlab_st_meta(const qlab_safetensors *st, const char *key);

/* Writer: tensors are added in order (the data pointer must stay valid until save),
 * metadata keys/values are copied. The data section is the concatenation of the tensors'
 * bytes with no padding, so its size is exactly the sum of their nbytes. */
typedef struct qlab_st_writer qlab_st_writer;
int qlab_st_writer_new(qlab_st_writer **out);
int qlab_st_writer_add(qlab_st_writer *w, const char *name, qlab_dtype dtype, int ndim,
                       const int64_t *shape, const void *data, size_t nbytes);
int qlab_st_writer_meta(qlab_st_writer *w, const char *key, const char *value);
/* Writes the file (atomically: temp file + rename); *data_bytes (optional) receives the
 * size of the data section. */
int qlab_st_writer_save(qlab_st_writer *w, const char *path, size_t *data_bytes, qlab_err *err);
void qlab_st_writer_free(qlab_st_writer *w);

/* ---------------------------------------------------------------------------------- */
/* Datasets (IDX, gzip or plain)                                                       */
/* ---------------------------------------------------------------------------------- */

typedef struct qlab_dataset {
    size_t n;
    int h, w;
    uint8_t *images;            /* n * h * w, row-major */
    uint8_t *labels;            /* n */
} qlab_dataset;

int qlab_dataset_load(qlab_dataset **out, const char *images_path, const char *labels_path,
                      qlab_err *err);
/* dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; dir NULL = QLAB_FASHION_MNIST_DIR. */
int qlab_dataset_load_fmnist(qlab_dataset **out, const char *dir, int train, qlab_err *err);
void qlab_dataset_free(qlab_dataset *ds);

/* ---------------------------------------------------------------------------------- */
/* Model description                                                                   */
/* ---------------------------------------------------------------------------------- */

typedef enum qlab_layer_kind {
    QLAB_LAYER_LINEAR,
    QLAB_LAYER_CONV2D,
    QLAB_LAYER_RELU,
    QLAB_LAYER_MAXPOOL2D,
    QLAB_LAYER_FLATTEN,
    QLAB_LAYER_KIND_COUNT
} qlab_layer_kind;

/* "linear", "conv2d", "relu", "maxpool2d", "flatten"; parse returns -EINVAL if unknown. */
const char *qlab_layer_kind_name(qlab_layer_kind k);
int qlab_layer_kind_parse(const char *s, qlab_layer_kind *out);

/* What the YAML loader (or the safetensors metadata) describes. Unused fields are 0 / "".
 * linear/conv2d: weight and bias name tensors (bias "" = none); name defaults to the
 * weight's prefix ("fc1" for "fc1.weight"). conv2d: stride (0 -> 1), padding; the kernel
 * size comes from the weight's shape (`kernel` is ignored). maxpool2d: kernel, stride
 * (0 -> kernel), padding must be 0. Unweighted layers are named kind + index ("relu1"). */
typedef struct qlab_layer_spec {
    qlab_layer_kind kind;
    char name[64];
    char weight[QLAB_NAME_MAX];
    char bias[QLAB_NAME_MAX];
    int stride, padding, kernel;
} qlab_layer_spec;

typedef struct qlab_model_spec {
    size_t nlayers;
    qlab_layer_spec *layers;
    int in_c, in_h, in_w;       /* input shape per sample (0 = 1 x 28 x 28) */
    float mean, std;            /* input normalisation: ((p / 255) - mean) / std; std 0 -> 1 */
} qlab_model_spec;

/* Parses the metadata layer list (data/README.md: "qlab.layers", "qlab.input",
 * "qlab.mean", "qlab.std"). The spec's layers are malloc'd: free with
 * qlab_model_spec_clear. */
int qlab_model_spec_from_metadata(qlab_model_spec *spec, const qlab_safetensors *st,
                                  qlab_err *err);
void qlab_model_spec_clear(qlab_model_spec *spec);

typedef struct qlab_layer {
    qlab_layer_kind kind;
    char name[64];              /* "fc1", or "relu3" etc. for unweighted layers */
    const qlab_tensor *weight;  /* NULL for unweighted layers */
    const qlab_tensor *bias;    /* NULL when the layer has none */
    int stride, padding, kernel;
    int in_c, in_h, in_w;       /* input per sample (linear: in_c = features, h = w = 1) */
    int out_c, out_h, out_w;    /* output per sample */
    size_t in_size, out_size;   /* per sample, in floats */
    int rows, cols;             /* weight as a matrix: [out, in * kh * kw] */
    int kh, kw;                 /* conv2d kernel */
} qlab_layer;

typedef struct qlab_model {
    qlab_safetensors *st;       /* owned */
    size_t nlayers;
    qlab_layer *layers;
    int in_c, in_h, in_w;
    float mean, std;
    size_t in_size;             /* in_c * in_h * in_w */
    size_t nclasses;            /* out_size of the last layer */
    size_t max_act;             /* largest activation per sample (for workspaces) */
} qlab_model;

/* Loads the model in `path` with the given spec, or (spec NULL) the layer list in its
 * __metadata__. Shapes are checked layer by layer: a missing tensor or a weight that does
 * not fit its layer is an error naming the layer and the tensor. */
int qlab_model_load(qlab_model **out, const char *path, const qlab_model_spec *spec,
                    qlab_err *err);
void qlab_model_free(qlab_model *m);

static inline int qlab_layer_is_weighted(const qlab_layer *l)
{
    return l->weight != NULL;
}
/* Weight + bias parameters of layer i (0 for unweighted layers). */
size_t qlab_layer_params(const qlab_layer *l);
/* Number of weighted layers. */
size_t qlab_model_weighted_layers(const qlab_model *m);
/* Index of the layer called `name` (qlab_layer.name), or -ENOENT. */
long qlab_model_find_layer(const qlab_model *m, const char *name);

/* ---------------------------------------------------------------------------------- */
/* Inference                                                                           */
/* ---------------------------------------------------------------------------------- */

/* Called during the forward pass on a layer's input (stage 0, before the layer runs; the
 * buffer may be modified, e.g. to fake-quantize activations) and output (stage 1).
 * `buf` holds `n` samples of `per_sample` floats. Calls come from several threads at once
 * (chunk = the calling thread's chunk index, < qlab_threads()); make the hook thread-safe. */
typedef void (*qlab_layer_hook)(void *ctx, const qlab_model *m, size_t layer, int stage,
                                float *buf, size_t n, size_t per_sample, unsigned chunk);

typedef struct qlab_forward_opts {
    /* Per layer index (nlayers entries, or NULL for none): a replacement for that layer's
     * weight (same numel, PyTorch layout), e.g. fake-quantized weights. NULL entries use
     * the model's own. Nothing is copied. */
    const float *const *weights;
    /* Per layer index (or NULL): buffers of n * layers[i].out_size floats that receive
     * that layer's output for every sample. */
    float *const *capture;
    qlab_layer_hook hook;
    void *hook_ctx;
} qlab_forward_opts;

/* Normalises samples [first, first + n) of ds into out (n * in_size floats). */
int qlab_model_normalise(const qlab_model *m, const qlab_dataset *ds, size_t first, size_t n,
                         float *out);

/* Runs n samples (input: n * in_size normalised floats; logits: n * nclasses, may be
 * NULL when only captures are wanted), split across both cores. opts may be NULL. */
int qlab_model_forward(const qlab_model *m, const float *input, size_t n,
                       const qlab_forward_opts *opts, float *logits, qlab_err *err);

/* Top-1 over all of ds: predictions (optional, ds->n entries) and number correct.
 * Ties between logits go to the lowest class index, as torch.argmax does. */
int qlab_model_predict(const qlab_model *m, const qlab_dataset *ds,
                       const qlab_forward_opts *opts, int32_t *pred, size_t *correct,
                       qlab_err *err);

/* The FP32 convolution kernel inference uses: "avx512", "avx2" (direct kernels) or
 * "blas" (im2col + OpenBLAS); QLAB_CPU caps it. */
const char *qlab_model_conv_kernel(void);

/* Accuracy in percent (100 * correct / n). */
int qlab_model_accuracy(const qlab_model *m, const qlab_dataset *ds,
                        const qlab_forward_opts *opts, double *accuracy, qlab_err *err);

/* Low-level kernels, exposed for tests (serial, NCHW):
 * conv2d via im2col + sgemm; out: n * out_c * oh * ow floats; col: a scratch buffer of
 * (c * kh * kw + out_c) * n * oh * ow floats. oh = (h + 2 padding - kh) / stride + 1. */
void qlab_conv2d_f32(const float *in, size_t n, int c, int h, int w, const float *weight,
                     const float *bias, int out_c, int kh, int kw, int stride, int padding,
                     float *out, float *col);
/* Max pooling (no padding, floor mode like PyTorch's default). */
void qlab_maxpool2d_f32(const float *in, size_t n, int c, int h, int w, int kernel,
                        int stride, float *out);
