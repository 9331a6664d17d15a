/* test-kernels.c — conv2d, maxpool2d and the whole forward pass against PyTorch outputs
 * (tests/model/gen_fixtures.py: kernels.safetensors, tiny-cnn.safetensors).
 *
 * Tolerance: sgemm sums in a different order than PyTorch's convolution, so outputs agree
 * to float rounding of sums of ~20-60 terms of magnitude ~1: 1e-5 absolute + 1e-5 relative.
 * Max pooling only selects values and must be exact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model-test.h"
#include "qlab-model.h"

#define ATOL 1e-5
#define RTOL 1e-5

static qlab_safetensors *K;

static const qlab_tensor *kt(const char *name)
{
    const qlab_tensor *t = qlab_st_find(K, name);
    assert_non_null(t);
    return t;
}

static void conv_case(const char *out_name, int stride, int padding)
{
    const qlab_tensor *x = kt("conv.in"), *w = kt("conv.weight"), *b = kt("conv.bias");
    const qlab_tensor *ref = kt(out_name);
    int n = (int)x->shape[0], c = (int)x->shape[1], h = (int)x->shape[2], wd = (int)x->shape[3];
    int oc = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    int oh = (h + 2 * padding - kh) / stride + 1, ow = (wd + 2 * padding - kw) / stride + 1;
    assert_int_equal(ref->numel, (size_t)n * oc * oh * ow);
    float *out = calloc(ref->numel, sizeof *out);
    float *col = calloc((size_t)(c * kh * kw + oc) * n * oh * ow, sizeof *col);
    qlab_conv2d_f32(x->f32, (size_t)n, c, h, wd, w->f32, b->f32, oc, kh, kw, stride, padding, out,
                    col);
    assert_true(floats_close(out, ref->f32, ref->numel, ATOL, RTOL));
    free(out);
    free(col);
}

static void test_conv2d(void **state)
{
    (void)state;
    conv_case("conv.out_s2p1", 2, 1);
    conv_case("conv.out_s1p0", 1, 0);
}

static void pool_case(const char *out_name, int k, int s)
{
    const qlab_tensor *x = kt("pool.in"), *ref = kt(out_name);
    float *out = calloc(ref->numel, sizeof *out);
    qlab_maxpool2d_f32(x->f32, (size_t)x->shape[0], (int)x->shape[1], (int)x->shape[2],
                       (int)x->shape[3], k, s, out);
    assert_true(floats_close(out, ref->f32, ref->numel, 0, 0));
    free(out);
}

static void test_maxpool(void **state)
{
    (void)state;
    pool_case("pool.out_k3s2", 3, 2);
    pool_case("pool.out_k2s2", 2, 2);
}

/* Captured per-layer outputs (NCHW path) and the logits (NHWC fast path) of the tiny CNN
 * equal PyTorch's. */
static void test_tiny_forward(void **state)
{
    (void)state;
    qlab_model *m;
    qlab_err err = {0};
    assert_int_equal(qlab_model_load(&m, fixture("tiny-cnn.safetensors"), NULL, &err), 0);
    assert_int_equal(m->nlayers, 9);
    assert_int_equal(m->in_c, 3);
    const qlab_tensor *x = kt("tiny.in");
    size_t n = (size_t)x->shape[0];
    assert_int_equal(x->numel, n * m->in_size);

    float *cap[9];
    for (size_t i = 0; i < 9; i++)
        cap[i] = calloc(n * m->layers[i].out_size, sizeof(float));
    float *logits = calloc(n * m->nclasses, sizeof(float));
    qlab_forward_opts o = {.capture = cap};
    assert_int_equal(qlab_model_forward(m, x->f32, n, &o, logits, &err), 0);
    for (size_t i = 0; i < 9; i++) {
        char name[32];
        snprintf(name, sizeof name, "tiny.out%zu", i);
        const qlab_tensor *ref = kt(name);
        assert_int_equal(ref->numel, n * m->layers[i].out_size);
        if (!floats_close(cap[i], ref->f32, ref->numel, ATOL, RTOL))
            fail_msg("layer %zu (%s) differs from PyTorch", i, m->layers[i].name);
    }
    const qlab_tensor *last = kt("tiny.out8");
    assert_true(floats_close(logits, last->f32, last->numel, ATOL, RTOL));

    /* fast path (no captures): same logits */
    float *fast = calloc(n * m->nclasses, sizeof(float));
    assert_int_equal(qlab_model_forward(m, x->f32, n, NULL, fast, &err), 0);
    assert_true(floats_close(fast, last->f32, last->numel, ATOL, RTOL));

    /* weight replacement: conv2's weight scaled by 0 leaves only its bias after conv2 */
    const qlab_layer *c2 = &m->layers[3];
    float *zero = calloc(c2->weight->numel, sizeof(float));
    const float *repl[9] = {0};
    repl[3] = zero;
    qlab_forward_opts oz = {.weights = repl, .capture = cap};
    assert_int_equal(qlab_model_forward(m, x->f32, n, &oz, fast, &err), 0);
    for (size_t s = 0; s < n; s++)
        for (int c = 0; c < c2->out_c; c++)
            for (int p = 0; p < c2->out_h * c2->out_w; p++)
                assert_true(cap[3][(s * c2->out_c + c) * c2->out_h * c2->out_w + p] ==
                            c2->bias->f32[c]);
    /* and the fast path agrees with the capture path under replacement */
    float *fast2 = calloc(n * m->nclasses, sizeof(float));
    qlab_forward_opts oz2 = {.weights = repl};
    assert_int_equal(qlab_model_forward(m, x->f32, n, &oz2, fast2, &err), 0);
    assert_true(floats_close(fast2, fast, n * m->nclasses, ATOL, RTOL));

    free(zero);
    free(fast);
    free(fast2);
    free(logits);
    for (size_t i = 0; i < 9; i++)
        free(cap[i]);
    qlab_model_free(m);
}

typedef struct hook_ctx {
    size_t calls[9][2];
} hook_ctx;

static void count_hook(void *ctx, const qlab_model *m, size_t layer, int stage, float *buf,
                       size_t n, size_t per_sample, unsigned chunk)
{
    hook_ctx *h = ctx;
    (void)buf;
    (void)chunk;
    assert_int_equal(per_sample, stage ? m->layers[layer].out_size : m->layers[layer].in_size);
    __atomic_add_fetch(&h->calls[layer][stage], n, __ATOMIC_RELAXED);
}

static void test_hooks(void **state)
{
    (void)state;
    qlab_model *m;
    assert_int_equal(qlab_model_load(&m, fixture("tiny-cnn.safetensors"), NULL, NULL), 0);
    const qlab_tensor *x = kt("tiny.in");
    size_t n = (size_t)x->shape[0];
    hook_ctx h = {0};
    qlab_forward_opts o = {.hook = count_hook, .hook_ctx = &h};
    float *logits = calloc(n * m->nclasses, sizeof(float));
    assert_int_equal(qlab_model_forward(m, x->f32, n, &o, logits, NULL), 0);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(h.calls[i][0], n);
        assert_int_equal(h.calls[i][1], n);
    }
    assert_true(floats_close(logits, kt("tiny.out8")->f32, n * m->nclasses, ATOL, RTOL));
    free(logits);
    qlab_model_free(m);
}

static int setup(void **state)
{
    (void)state;
    qlab_err err = {0};
    if (qlab_st_open(&K, fixture("kernels.safetensors"), 0, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qlab_st_close(K);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_tiny_forward),
        cmocka_unit_test(test_hooks),
    };
    return cmocka_run_group_tests_name("model-kernels", tests, setup, teardown);
}
