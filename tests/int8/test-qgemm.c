/* test-qgemm.c — every int8 GEMM level against the scalar reference (checkasm style):
 * awkward shapes, full-range codes where int16 pair sums would saturate, non-zero and
 * extreme zero points, asymmetric weights, u8 input, and the requantizing epilogue
 * against a float64 reference. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parallel.h"
#include "qlab-int8.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void fill(int8_t *p, size_t n, int mode)
{
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case 0: p[i] = (int8_t)(rnd() & 0xFF); break;           /* uniform full range */
        case 1: p[i] = -128; break;
        case 2: p[i] = 127; break;
        default: p[i] = (rnd() & 1) ? 127 : -128; break;       /* extremes only */
        }
    }
}

/* 2 and 14 leave 2 rows in the last tile (the 2-row AVX512-VNNI body), 1/3/17/33/127
 * the other remainders of 6- and 12-row tiles; none is a multiple of 16 columns or 4 k */
static const size_t dims[] = {1, 2, 3, 14, 17, 33, 127};
#define NDIMS (sizeof dims / sizeof dims[0])

/* One shape at one level: s32 with zero points (symmetric and asymmetric weights),
 * u8 input, and s8 output, each against the reference. */
static void check_shape(qlab_int8_isa isa, size_t m, size_t n, size_t k, int amode, int wmode,
                        int32_t a_zp, int asym)
{
    if (!qlab_int8_isa_supported(isa))
        return;     /* levels are a set: a CPU may lack one below its best */
    assert_int_equal(qlab_int8_set_isa(isa), 0);
    size_t lda = k + (m & 3);       /* exercise a row stride larger than k */
    int8_t *a = malloc(m * lda), *w = malloc(n * k);
    int32_t *c = malloc(m * n * sizeof(int32_t)), *ref = malloc(m * n * sizeof(int32_t));
    int8_t *c8 = malloc(m * n);
    float *ws = malloc(n * sizeof(float)), *bias = malloc(n * sizeof(float));
    int32_t *wz = malloc(n * sizeof(int32_t));
    assert_non_null(a && w && c && ref && c8 && ws && bias && wz);
    fill(a, m * lda, amode);
    fill(w, n * k, wmode);
    for (size_t j = 0; j < n; j++) {
        ws[j] = 0.001f + (float)(rnd() % 1000) * 1e-5f;
        bias[j] = ((float)(rnd() % 2001) - 1000.0f) * 0.01f;
        wz[j] = asym ? (int32_t)(rnd() % 256) - 128 : 0;
    }
    qlab_requant rq = {
        .in_scale = 0.02f, .in_zp = a_zp, .w_scale = ws, .w_scale_count = n,
        .w_zp = asym ? wz : NULL, .bias = bias, .out_scale = 0.05f + (float)k * 0.01f,
        .out_zp = -7, .relu = (int)(m & 1), .qmin = -128, .qmax = 127,
    };
    qlab_qgemm *g = NULL;
    assert_int_equal(qlab_qgemm_pack(w, n, k, &rq, &g), 0);
    assert_int_equal(qlab_qgemm_isa(g), isa);

    qlab_qgemm_ref_s32(a, m, lda, a_zp, w, n, k, asym ? wz : NULL, n, ref, n);
    memset(c, 0x55, m * n * sizeof(int32_t));
    assert_int_equal(qlab_qgemm_s32(g, a, m, lda, c, n), 0);
    for (size_t i = 0; i < m * n; i++)
        if (c[i] != ref[i])
            fail_msg("%s m=%zu n=%zu k=%zu zp=%d asym=%d: c[%zu]=%d ref=%d",
                     qlab_int8_isa_name(isa), m, n, k, a_zp, asym, i, c[i], ref[i]);

    /* The same bytes read as u8 with zero point a_zp + 128 mean the same reals. */
    uint8_t *au = malloc(m * lda);
    assert_non_null(au);
    for (size_t i = 0; i < m * lda; i++)
        au[i] = (uint8_t)(a[i] + 128);
    memset(c, 0x55, m * n * sizeof(int32_t));
    assert_int_equal(qlab_qgemm_u8_s32(g, au, m, lda, c, n), 0);
    assert_memory_equal(c, ref, m * n * sizeof(int32_t));
    /* u8 in, u8 out: the requantized codes + 128 */
    uint8_t *cu = malloc(m * n);
    assert_non_null(cu);
    assert_int_equal(qlab_qgemm_u8(g, au, m, lda, cu, n), 0);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            assert_int_equal(cu[i * n + j], qlab_requant_one(ref[i * n + j], j, &rq) + 128);
    free(cu);
    free(au);

    assert_int_equal(qlab_qgemm_s8(g, a, m, lda, c8, n), 0);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int8_t want = qlab_requant_one(ref[i * n + j], j, &rq);
            if (c8[i * n + j] != want)
                fail_msg("%s requant m=%zu n=%zu k=%zu at (%zu,%zu): %d want %d",
                         qlab_int8_isa_name(isa), m, n, k, i, j, c8[i * n + j], want);
        }
    qlab_qgemm_free(g);
    free(a); free(w); free(c); free(ref); free(c8); free(ws); free(bias); free(wz);
}

static void test_levels_random_shapes(void **state)
{
    (void)state;
    for (int isa = 0; isa <= (int)qlab_int8_isa_best(); isa++)
        for (size_t im = 0; im < NDIMS; im++)
            for (size_t in = 0; in < NDIMS; in++)
                for (size_t ik = 0; ik < NDIMS; ik++)
                    check_shape((qlab_int8_isa)isa, dims[im], dims[in], dims[ik], 0, 0,
                                (int32_t)(rnd() % 256) - 128, (int)((im + in + ik) & 1));
}

/* -128 * -128 summed over k = 4099: every int16 pair sum (32768) and the running total
 * are beyond int16, and a vpmaddubsw kernel on u8 = 255 would saturate. */
static void test_full_range(void **state)
{
    (void)state;
    static const int32_t zps[] = {0, -128, 127, 5};
    for (int isa = 0; isa <= (int)qlab_int8_isa_best(); isa++)
        for (int amode = 1; amode <= 3; amode++)
            for (int wmode = 1; wmode <= 3; wmode++)
                for (size_t z = 0; z < 4; z++)
                    check_shape((qlab_int8_isa)isa, 7, 19, 4099, amode, wmode, zps[z], 0);
    for (int isa = 0; isa <= (int)qlab_int8_isa_best(); isa++)
        check_shape((qlab_int8_isa)isa, 13, 40, 32768, 3, 3, -128, 1);
}

/* Larger shapes take the multi-threaded paths (row split and panel split). */
static void test_threads(void **state)
{
    (void)state;
    unsigned th = qlab_threads();
    qlab_set_threads(2);
    for (int isa = 1; isa <= (int)qlab_int8_isa_best(); isa++) {
        /* above the serial thresholds (2^24 multiply-adds, 2^27 for AMX with full tiles
         * of rows): row split (two shapes: AMX's per-thread tile configurations, with
         * and without a remainder tile of rows), then panel split */
        check_shape((qlab_int8_isa)isa, 301, 70, 1000, 0, 0, 3, 0);
        check_shape((qlab_int8_isa)isa, 600, 300, 1000, 0, 0, 3, 0);
        check_shape((qlab_int8_isa)isa, 601, 300, 1001, 3, 3, -7, 0);
        check_shape((qlab_int8_isa)isa, 3, 2100, 4000, 0, 0, -100, 1);
    }
    qlab_set_threads(th);
}

/* The epilogue against float64: v = acc * in_s * w_s / out_s + bias / out_s. float32
 * arithmetic may land on the other side of a .5 boundary, so codes may differ by one
 * only where the float64 value is within 1e-3 of a boundary; elsewhere they are equal. */
static void test_requant_float64(void **state)
{
    (void)state;
    float ws[3] = {0.0123f, 0.5f, 3e-4f};
    float bias[3] = {0.25f, -1.5f, 0.0f};
    for (int relu = 0; relu <= 1; relu++)
        for (int zp = -20; zp <= 20; zp += 20) {
            qlab_requant rq = {
                .in_scale = 0.0371f, .in_zp = 0, .w_scale = ws, .w_scale_count = 3,
                .bias = bias, .out_scale = 0.0417f, .out_zp = zp, .relu = relu,
                .qmin = -128, .qmax = 127,
            };
            for (int32_t acc = -200000; acc <= 200000; acc += 37)
                for (size_t j = 0; j < 3; j++) {
                    double v = (double)acc * rq.in_scale * ws[j] / rq.out_scale +
                               bias[j] / (double)rq.out_scale;
                    double r = nearbyint(v) + zp;
                    double lo = relu ? fmax(zp, -128) : -128;
                    r = fmin(fmax(r, lo), 127);
                    int q = qlab_requant_one(acc, j, &rq);
                    double frac = fabs(v - floor(v) - 0.5);
                    if (frac > 1e-3)
                        assert_int_equal(q, (int)r);
                    else
                        assert_true(fabs(q - r) <= 1);
                }
        }
    /* Round half to even, as PyTorch: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2. */
    float one = 1.0f;
    qlab_requant rq = {.in_scale = 1.0f, .w_scale = &one, .w_scale_count = 1,
                       .out_scale = 2.0f, .qmin = -128, .qmax = 127};
    assert_int_equal(qlab_requant_one(5, 0, &rq), 2);
    assert_int_equal(qlab_requant_one(7, 0, &rq), 4);
    assert_int_equal(qlab_requant_one(-5, 0, &rq), -2);
    assert_int_equal(qlab_requant_one(1000, 0, &rq), 127);
    assert_int_equal(qlab_requant_one(-1000, 0, &rq), -128);
}

/* QLAB_CPU caps the level (meson registers this program a second time with
 * QLAB_CPU=avx2); names are the ones qlab_int8_isa_name prints. */
static void test_cpu_env(void **state)
{
    (void)state;
    const char *env = getenv("QLAB_CPU");
    qlab_int8_isa best = qlab_int8_isa_best();
    assert_true(qlab_int8_isa_supported(best));
    if (env && strcmp(env, "scalar") == 0)
        assert_int_equal(best, QLAB_INT8_SCALAR);
    if (env && strcmp(env, "avx2") == 0 && qlab_int8_isa_supported(QLAB_INT8_AVX2))
        assert_int_equal(best, QLAB_INT8_AVX2);
    assert_string_equal(qlab_int8_isa_name(QLAB_INT8_AVX2), "avx2");
    assert_string_equal(qlab_int8_isa_name(QLAB_INT8_AVXVNNI), "avxvnni");
    assert_string_equal(qlab_int8_isa_name(QLAB_INT8_AVX512VNNI), "avx512vnni");
    assert_string_equal(qlab_int8_isa_name(QLAB_INT8_AMX), "amx");
}

static void test_bad_args(void **state)
{
    (void)state;
    int8_t w[4] = {0};
    qlab_qgemm *g = NULL;
    assert_int_equal(qlab_qgemm_pack(w, 0, 4, NULL, &g), -EINVAL);
    assert_int_equal(qlab_qgemm_pack(w, 1, QLAB_QGEMM_K_MAX + 1, NULL, &g), -EINVAL);
    assert_int_equal(qlab_qgemm_pack(w, 1, 4, NULL, &g), 0);
    int8_t a[4] = {0}, c8[1];
    assert_int_equal(qlab_qgemm_s8(g, a, 1, 4, c8, 1), -EINVAL);   /* no requant */
    qlab_qgemm_free(g);
    qlab_qgemm_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_random_shapes),
        cmocka_unit_test(test_full_range),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_requant_float64),
        cmocka_unit_test(test_cpu_env),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests_name("int8 qgemm", tests, NULL, NULL);
}
