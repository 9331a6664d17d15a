/* test-int8-layers.c — int8 layers against plain references, and the activation
 * statistics (histogram growth and merging, every calibration method) against values
 * computed directly from the data. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qlab-int8.h"

static uint64_t rs = 12345;

static double urand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) * 0x1p-53;
}

/* pad + im2col on channels-last images against direct indexing, padding = zero point */
static void test_im2col(void **state)
{
    (void)state;
    const size_t h = 5, w = 6, c = 3, k = 3;
    for (size_t stride = 1; stride <= 2; stride++)
        for (size_t pad = 0; pad <= 1; pad++) {
            int8_t img[5 * 6 * 3];
            for (size_t i = 0; i < sizeof img; i++)
                img[i] = (int8_t)(i * 7 - 100);
            size_t hp = h + 2 * pad, wp = w + 2 * pad;
            int8_t *padded = calloc(hp * wp * c + QLAB_IM2COL_SLACK, 1);
            qlab_pad_hwc_s8(img, h, w, c, pad, -17, padded);
            size_t oh = (hp - k) / stride + 1, ow = (wp - k) / stride + 1;
            size_t ld = k * k * c + 3 * stride;   /* 30 and 33: rows with a tail */
            int8_t *cols = calloc(oh * ow * ld + QLAB_IM2COL_SLACK, 1);
            qlab_im2col_hwc_s8(padded, hp, wp, c, k, k, stride, cols, ld);
            for (size_t oy = 0; oy < oh; oy++)
                for (size_t ox = 0; ox < ow; ox++)
                    for (size_t ky = 0; ky < k; ky++)
                        for (size_t kx = 0; kx < k; kx++)
                            for (size_t ch = 0; ch < c; ch++) {
                                long iy = (long)(oy * stride + ky) - (long)pad;
                                long ix = (long)(ox * stride + kx) - (long)pad;
                                int out = iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w;
                                int8_t want =
                                    out ? -17 : img[((size_t)iy * w + (size_t)ix) * c + ch];
                                size_t at = (oy * ow + ox) * ld + (ky * k + kx) * c + ch;
                                assert_int_equal(cols[at], want);
                            }
            free(cols);
            free(padded);
        }
}

static void test_maxpool_relu(void **state)
{
    (void)state;
    const size_t h = 5, w = 4, c = 2;
    int8_t in[5 * 4 * 2], out[2 * 2 * 2];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (int8_t)(urand() * 256 - 128);
    qlab_maxpool_hwc_s8(in, h, w, c, 2, 2, out);
    for (size_t oy = 0; oy < 2; oy++)
        for (size_t ox = 0; ox < 2; ox++)
            for (size_t ch = 0; ch < c; ch++) {
                int m = -129;
                for (size_t ky = 0; ky < 2; ky++)
                    for (size_t kx = 0; kx < 2; kx++) {
                        int v = in[((oy * 2 + ky) * w + ox * 2 + kx) * c + ch];
                        m = v > m ? v : m;
                    }
                assert_int_equal(out[(oy * 2 + ox) * c + ch], m);
            }
    /* the u8 versions on codes + 128 agree */
    uint8_t inu[5 * 4 * 2], outu[2 * 2 * 2];
    for (size_t i = 0; i < sizeof in; i++)
        inu[i] = (uint8_t)(in[i] + 128);
    qlab_maxpool_hwc_u8(inu, h, w, c, 2, 2, outu);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(outu[i], out[i] + 128);
    uint8_t ru[3] = {0, 122, 200};
    qlab_relu_u8(ru, 3, 123);
    assert_int_equal(ru[0], 123);
    assert_int_equal(ru[1], 123);
    assert_int_equal(ru[2], 200);
    int8_t r[5] = {-128, -6, -5, 0, 127};
    qlab_relu_s8(r, 5, -5);
    assert_int_equal(r[0], -5);
    assert_int_equal(r[1], -5);
    assert_int_equal(r[2], -5);
    assert_int_equal(r[3], 0);
    assert_int_equal(r[4], 127);
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* A histogram grown batch by batch (range doubling) equals one built in a single batch,
 * and merging two halves gives the same; min/max exact; percentiles within one bin. */
static void test_hist(void **state)
{
    (void)state;
    const size_t n = 100000;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        /* grows: the scale increases along the data, so the range doubles many times */
        double g = (urand() + urand() + urand() - 1.5) * (1 + (double)i / 1000);
        x[i] = (float)(g + 0.3 * (1 + (double)i / 1000));
    }
    qlab_act_hist *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    for (size_t i = 0; i < n; i += 1000)
        assert_int_equal(qlab_act_hist_add(a, x + i, 1000), 0);
    assert_int_equal(qlab_act_hist_add(b, x, n), 0);
    assert_int_equal(a->count, n);
    assert_true(a->range == b->range);
    assert_memory_equal(a->bins, b->bins, sizeof a->bins);
    assert_int_equal(qlab_act_hist_add(c, x + n / 2, n / 2), 0);
    qlab_act_hist *d = calloc(1, sizeof *d);
    assert_int_equal(qlab_act_hist_add(d, x, n / 2), 0);
    qlab_act_hist_merge(c, d);
    assert_memory_equal(c->bins, b->bins, sizeof b->bins);

    float *s = malloc(n * sizeof(float));
    memcpy(s, x, n * sizeof(float));
    qsort(s, n, sizeof(float), cmp_f);
    double lo, hi;
    assert_int_equal(qlab_act_range(a, QLAB_CALIB_MINMAX, 0, 8, &lo, &hi), 0);
    assert_true(lo == s[0] && hi == s[n - 1]);
    double binw = 2 * a->range / QLAB_ACT_BINS;
    assert_int_equal(qlab_act_range(a, QLAB_CALIB_PERCENTILE, 99.0, 8, &lo, &hi), 0);
    assert_true(fabs(hi - s[(size_t)(0.99 * (n - 1))]) <= binw);
    assert_true(fabs(lo - s[(size_t)(0.01 * (n - 1))]) <= binw);

    /* mse and entropy clip inside [min, max]; at 8 bits the mse clip of a long-tailed
     * distribution is tighter than minmax */
    assert_int_equal(qlab_act_range(a, QLAB_CALIB_MSE, 0, 8, &lo, &hi), 0);
    assert_true(lo >= s[0] && hi <= s[n - 1] && hi > 0);
    assert_int_equal(qlab_act_range(a, QLAB_CALIB_ENTROPY, 0, 8, &lo, &hi), 0);
    assert_true(lo >= s[0] && hi <= s[n - 1] && hi > 0);

    /* qparams follow PRODUCT §3 (asymmetric, widened to 0) */
    float scale;
    int32_t zp;
    assert_int_equal(qlab_act_qparams(a, QLAB_CALIB_MINMAX, 0, 8, &scale, &zp), 0);
    float want = (float)((s[n - 1] - fmin(s[0], 0)) / 255.0);
    assert_true(fabs(scale - want) <= 1e-6 * want);
    assert_int_equal(zp, (int32_t)(-128 - nearbyint(fmin(s[0], 0) / scale)));

    float bad = NAN;
    assert_int_equal(qlab_act_hist_add(a, &bad, 1), -EDOM);
    qlab_act_hist empty = {0};
    assert_int_equal(qlab_act_range(&empty, QLAB_CALIB_MINMAX, 0, 8, &lo, &hi), -EINVAL);
    free(x); free(s); free(a); free(b); free(c); free(d);
}

/* A constant zero tensor gives a finite, positive scale. */
static void test_hist_zero(void **state)
{
    (void)state;
    float z[64] = {0};
    qlab_act_hist *h = calloc(1, sizeof *h);
    assert_int_equal(qlab_act_hist_add(h, z, 64), 0);
    float scale;
    int32_t zp;
    for (int m = 0; m <= QLAB_CALIB_MSE; m++) {
        assert_int_equal(qlab_act_qparams(h, (qlab_calibration)m, 99.0, 8, &scale, &zp), 0);
        assert_true(isfinite(scale) && scale > 0);
    }
    free(h);
}

static void test_indices(void **state)
{
    (void)state;
    uint32_t a[1000], b[1000];
    assert_int_equal(qlab_calib_indices(60000, 1000, 7, a), 0);
    assert_int_equal(qlab_calib_indices(60000, 1000, 7, b), 0);
    assert_memory_equal(a, b, sizeof a);
    /* distinct and in range */
    uint8_t *seen = calloc(60000, 1);
    for (size_t i = 0; i < 1000; i++) {
        assert_true(a[i] < 60000);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
    }
    free(seen);
    assert_int_equal(qlab_calib_indices(10, 11, 7, a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_im2col),
        cmocka_unit_test(test_maxpool_relu),
        cmocka_unit_test(test_hist),
        cmocka_unit_test(test_hist_zero),
        cmocka_unit_test(test_indices),
    };
    return cmocka_run_group_tests_name("int8 layers and calibration", tests, NULL, NULL);
}
