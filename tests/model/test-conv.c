/* test-conv.c — the direct convolution kernels (conv-direct.c) at every level this CPU has,
 * against a double-precision reference, over shapes that exercise every tile width and
 * channel block: 1 to 70 input channels, 1 to 80 output channels (multiples of the vector
 * width and not), 1x1 to 5x5 kernels (square and not), stride 1 to 3, padding 0 to 2, with
 * and without bias, relu and max pooling fused. Then the whole forward pass of the shipped
 * CNN at every level against the NCHW path, and NaN propagation as in PyTorch.
 *
 * Tolerance: each output is a sum of up to 70 x 25 products of values ~1 in float; the
 * reference is the same sum in double, so 1e-5 absolute + 1e-5 relative (a wrong weight or
 * a missed term is off by ~0.1). Pooling selects values: the reference pools the kernel's
 * own conv output (no pooling) and must match exactly. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model-private.h"
#include "model-test.h"
#include "qlab-model.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct shape {
    int c, h, w, o, kh, kw, stride, pad, bias, relu, pool_k, pool_s;
} shape;

/* A conv2d layer (and its pooling layer) as model.c's build_layers would make them. */
static void make_layers(const shape *s, qlab_layer *l, qlab_layer *pool)
{
    memset(l, 0, sizeof *l);
    l->kind = QLAB_LAYER_CONV2D;
    l->in_c = s->c;
    l->in_h = s->h;
    l->in_w = s->w;
    l->rows = s->o;
    l->kh = s->kh;
    l->kw = s->kw;
    l->cols = s->c * s->kh * s->kw;
    l->stride = s->stride;
    l->padding = s->pad;
    l->out_c = s->o;
    l->out_h = (s->h + 2 * s->pad - s->kh) / s->stride + 1;
    l->out_w = (s->w + 2 * s->pad - s->kw) / s->stride + 1;
    memset(pool, 0, sizeof *pool);
    pool->kind = QLAB_LAYER_MAXPOOL2D;
    pool->kernel = s->pool_k;
    pool->stride = s->pool_s;
    pool->in_c = pool->out_c = s->o;
    pool->in_h = l->out_h;
    pool->in_w = l->out_w;
    if (s->pool_k) {
        pool->out_h = (l->out_h - s->pool_k) / s->pool_s + 1;
        pool->out_w = (l->out_w - s->pool_k) / s->pool_s + 1;
    }
}

/* Reference conv (+bias, relu) in double on an NHWC sample, output [oh][ow][o]. */
static void ref_conv(const shape *s, const qlab_layer *l, const float *x, const float *w,
                     const float *b, float *y)
{
    for (int oy = 0; oy < l->out_h; oy++)
        for (int ox = 0; ox < l->out_w; ox++)
            for (int oc = 0; oc < s->o; oc++) {
                double acc = 0;
                for (int ci = 0; ci < s->c; ci++)
                    for (int ki = 0; ki < s->kh; ki++)
                        for (int kj = 0; kj < s->kw; kj++) {
                            int iy = oy * s->stride + ki - s->pad;
                            int ix = ox * s->stride + kj - s->pad;
                            if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                continue;
                            acc += (double)x[((size_t)iy * s->w + ix) * s->c + ci] *
                                   w[(((size_t)oc * s->c + ci) * s->kh + ki) * s->kw + kj];
                        }
                float v = (float)(acc + (b ? b[oc] : 0.0));
                if (s->relu)
                    v = v < 0 ? 0 : v;
                y[((size_t)oy * l->out_w + ox) * s->o + oc] = v;
            }
}

static void ref_pool(const qlab_layer *p, const float *y, float *out)
{
    const int c = p->in_c, k = p->kernel, st = p->stride;
    for (int py = 0; py < p->out_h; py++)
        for (int px = 0; px < p->out_w; px++)
            for (int ch = 0; ch < c; ch++) {
                float m = y[((size_t)py * st * p->in_w + (size_t)px * st) * c + ch];
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++) {
                        float v = y[(((size_t)py * st + ki) * p->in_w + (size_t)px * st + kj) * c + ch];
                        m = (v > m || v != v) ? v : m;
                    }
                out[((size_t)py * p->out_w + px) * c + ch] = m;
            }
}

/* Runs the kernel of `level` on shape s; nan_at >= 0 puts a NaN in that input element. */
static void run_case(qlab_conv_level level, const shape *s, long nan_at)
{
    qlab_layer l, pl;
    make_layers(s, &l, &pl);
    const size_t nin = (size_t)s->h * s->w * s->c, nw = (size_t)s->o * l.cols;
    const size_t nconv = (size_t)l.out_h * l.out_w * s->o;
    float *x = malloc(nin * sizeof *x), *w = malloc(nw * sizeof *w);
    float *b = malloc((size_t)s->o * sizeof *b);
    for (size_t i = 0; i < nin; i++)
        x[i] = frand();
    if (nan_at >= 0)
        x[nan_at] = NAN;
    for (size_t i = 0; i < nw; i++)
        w[i] = frand();
    for (int i = 0; i < s->o; i++)
        b[i] = frand();

    qlab_conv_plan p;
    assert_int_equal(qlab_conv_plan_init(&p, &l, w, s->bias ? b : NULL, s->relu,
                                         s->pool_k ? &pl : NULL), 0);
    float *pad = malloc((qlab_conv_plan_pad_floats(&p) + 1) * sizeof *pad);
    float *tmp = malloc((qlab_conv_plan_tmp_floats(&p) + 1) * sizeof *tmp);
    const size_t nout = s->pool_k ? (size_t)pl.out_h * pl.out_w * s->o : nconv;
    float *out = malloc((nout + 1) * sizeof *out);
    out[nout] = 12345.0f; /* sentinel: nothing written past the output */
    qlab_pad_nhwc(x, 1, s->c, s->h, s->w, s->pad, pad);
    qlab_conv_kernel(level)(&p, pad, out, tmp);
    assert_true(out[nout] == 12345.0f);

    float *ref = malloc(nconv * sizeof *ref);
    ref_conv(s, &l, x, w, s->bias ? b : NULL, ref);
    if (!s->pool_k) {
        if (nan_at < 0 && !floats_close(out, ref, nconv, 1e-5, 1e-5))
            fail_msg("%s: c %d %dx%d o %d k %dx%d s %d p %d", qlab_conv_level_name(level),
                     s->c, s->h, s->w, s->o, s->kh, s->kw, s->stride, s->pad);
        if (nan_at >= 0) {
            /* the outputs whose window holds the NaN are NaN, the others are not */
            size_t nans = 0;
            for (size_t i = 0; i < nconv; i++)
                nans += isnan(out[i]) != 0;
            size_t rnans = 0;
            for (size_t i = 0; i < nconv; i++)
                rnans += isnan(ref[i]) != 0;
            assert_true(nans > 0);
            assert_int_equal(nans, rnans);
        }
    } else {
        /* conv part: run again without pooling, compare; then pool exactly */
        qlab_conv_plan q;
        assert_int_equal(qlab_conv_plan_init(&q, &l, w, s->bias ? b : NULL, s->relu, NULL), 0);
        float *y = malloc(nconv * sizeof *y);
        qlab_conv_kernel(level)(&q, pad, y, tmp);
        if (nan_at < 0)
            assert_true(floats_close(y, ref, nconv, 1e-5, 1e-5));
        float *pref = malloc(nout * sizeof *pref);
        ref_pool(&pl, y, pref);
        for (size_t i = 0; i < nout; i++)
            if (!(out[i] == pref[i] || (isnan(out[i]) && isnan(pref[i]))))
                fail_msg("%s: pooled element %zu: %g vs %g", qlab_conv_level_name(level), i,
                         (double)out[i], (double)pref[i]);
        if (nan_at >= 0) {
            size_t nans = 0;
            for (size_t i = 0; i < nout; i++)
                nans += isnan(out[i]) != 0;
            assert_true(nans > 0);
        }
        qlab_conv_plan_clear(&q);
        free(y);
        free(pref);
    }
    qlab_conv_plan_clear(&p);
    free(x);
    free(w);
    free(b);
    free(pad);
    free(tmp);
    free(out);
    free(ref);
}

static const shape shapes[] = {
    /* c   h   w   o  kh kw s  p  b  r  pk ps */
    {1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 2, 2},  /* the shipped CNN's conv1 */
    {16, 14, 14, 32, 3, 3, 1, 1, 1, 1, 2, 2}, /* and conv2 */
    {3, 12, 10, 8, 3, 3, 1, 1, 1, 1, 3, 2},
    {8, 5, 5, 6, 3, 3, 2, 1, 1, 1, 0, 0},
    {1, 9, 40, 1, 1, 1, 1, 0, 0, 0, 0, 0},   /* 1x1, one channel, 40 wide: many tiles */
    {5, 7, 33, 17, 3, 2, 1, 2, 1, 0, 0, 0},  /* 17 outputs: one full and one padded vector */
    {70, 6, 6, 80, 3, 3, 1, 1, 1, 1, 0, 0},  /* 5 vectors of 16: two channel blocks */
    {4, 11, 13, 48, 5, 5, 3, 2, 0, 1, 2, 1}, /* stride 3, overlapping pooling */
    {2, 4, 4, 64, 4, 4, 1, 0, 1, 0, 0, 0},   /* 1x1 output */
    {3, 17, 17, 24, 3, 3, 2, 0, 1, 1, 2, 2}, /* pooling that drops the last row */
    {6, 3, 50, 33, 1, 3, 1, 1, 1, 1, 0, 0},
    {16, 8, 8, 128, 3, 3, 1, 1, 1, 0, 0, 0},
};

static void test_levels_against_reference(void **state)
{
    (void)state;
    int ran = 0;
    for (int lv = QLAB_CONV_AVX2; lv < QLAB_CONV_LEVELS; lv++) {
        if (!qlab_conv_level_supported((qlab_conv_level)lv)) {
            printf("level %s: not on this CPU, skipped\n", qlab_conv_level_name(lv));
            continue;
        }
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            run_case((qlab_conv_level)lv, &shapes[i], -1);
        /* every tile width at each channel-block width */
        for (int o = 8; o <= 64; o += 8)
            for (int w = 1; w <= 34; w++) {
                shape s = {3, 2, w, o, 1, 3, 1, 1, 1, 0, 0, 0};
                run_case((qlab_conv_level)lv, &s, -1);
            }
        ran++;
    }
    if (!ran)
        skip();
}

static void test_nan_propagates(void **state)
{
    (void)state;
    int ran = 0;
    for (int lv = QLAB_CONV_AVX2; lv < QLAB_CONV_LEVELS; lv++) {
        if (!qlab_conv_level_supported((qlab_conv_level)lv))
            continue;
        shape plain = {4, 9, 9, 20, 3, 3, 1, 1, 1, 1, 0, 0};
        run_case((qlab_conv_level)lv, &plain, 4 * 40 + 2);
        shape pooled = {4, 9, 9, 20, 3, 3, 1, 1, 1, 1, 2, 2};
        run_case((qlab_conv_level)lv, &pooled, 4 * 40 + 2);
        ran++;
    }
    if (!ran)
        skip();
}

/* The shipped CNN on 300 test images: logits of the fast path at every level against the
 * NCHW path (hooks force it), and QLAB_CPU-independent levels all agree. */
static void noop_hook(void *ctx, const qlab_model *m, size_t layer, int stage, float *buf,
                      size_t n, size_t per_sample, unsigned chunk)
{
    (void)ctx, (void)m, (void)layer, (void)stage, (void)buf, (void)n, (void)per_sample;
    (void)chunk;
}

static void test_model_levels(void **state)
{
    (void)state;
    qlab_model *m;
    qlab_err err = {0};
    assert_int_equal(qlab_model_load(&m, data_file("fmnist-cnn.safetensors"), NULL, &err), 0);
    const size_t n = 300;
    float *x = malloc(n * m->in_size * sizeof *x);
    for (size_t i = 0; i < n * m->in_size; i++)
        x[i] = frand() * 2.0f;
    float *ref = malloc(n * m->nclasses * sizeof *ref);
    float *got = malloc(n * m->nclasses * sizeof *got);
    qlab_forward_opts hooked = {.hook = noop_hook};
    assert_int_equal(qlab_model_forward(m, x, n, &hooked, ref, &err), 0);
    for (int lv = 0; lv < QLAB_CONV_LEVELS; lv++) {
        if (!qlab_conv_level_supported((qlab_conv_level)lv))
            continue;
        assert_int_equal(qlab_conv_set_level((qlab_conv_level)lv), 0);
        assert_int_equal(qlab_conv_level_current(), lv);
        assert_int_equal(qlab_model_forward(m, x, n, NULL, got, &err), 0);
        if (!floats_close(got, ref, n * m->nclasses, 1e-4, 1e-5))
            fail_msg("level %s differs from the NCHW path", qlab_conv_level_name(lv));
    }
    free(x);
    free(ref);
    free(got);
    qlab_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_against_reference),
        cmocka_unit_test(test_nan_propagates),
        cmocka_unit_test(test_model_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
