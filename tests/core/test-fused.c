/* test-fused.c — qlab_fake_quant_codes (calibration, codes, dequantized tensor and metrics
 * in one pass; per-channel / per-group min/max blocks calibrated inline) against the
 * separate steps it replaces: qlab_calibrate, then qlab_fake_quant_params and
 * qlab_quantize with those parameters. Every output must be the same bits, at 1 and 2
 * threads, on shapes whose rows straddle the drivers' tiles and thread batches. */
#include "test-util.h"

#include <errno.h>
#include <float.h>

#include "parallel.h"
#include "qlab-quant.h"

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform values with exact zeros of both signs, a few outliers (clipping under mse). */
static void fill(float *x, size_t n, uint64_t seed, float spread)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng(&seed);
        float v = (float)((double)(r >> 11) / 9007199254740992.0 - 0.3) * spread;
        if ((r & 255) == 0)
            v = 0.0f;
        else if ((r & 255) == 1)
            v = -0.0f;
        else if ((r & 1023) == 2)
            v *= 50.0f;
        x[i] = v;
    }
}

static int same_metric(double a, double b)
{
    return !memcmp(&a, &b, sizeof(a));
}

static void compare_metrics(const qlab_metrics *a, const qlab_metrics *b, const char *what)
{
    if (a->n != b->n || !same_metric(a->mse, b->mse) || !same_metric(a->sqnr_db, b->sqnr_db) ||
        !same_metric(a->max_abs_error, b->max_abs_error) || !same_metric(a->cosine, b->cosine) ||
        !same_metric(a->clip_fraction, b->clip_fraction))
        fail_msg("%s: metrics differ: mse %.17g/%.17g sqnr %.17g/%.17g cos %.17g/%.17g", what,
                 a->mse, b->mse, a->sqnr_db, b->sqnr_db, a->cosine, b->cosine);
}

typedef struct shape {
    size_t rows, cols;
} shape;

/* 17 x 1031 and 300 x 777: rows straddle 16K tiles; 5 x 70001: blocks above the inline
 * limit (separate calibration); 2048 x 512: many batches per thread. */
static const shape shapes[] = { { 1, 1 }, { 3, 5 }, { 17, 1031 }, { 300, 777 },
                                { 5, 70001 }, { 2048, 512 } };

/* yoff: the fused output starts yoff floats after a 64-byte boundary (streaming stores,
 * used from 4M values on, take whole aligned spans or peel). */
static void one_case(const float *x, size_t rows, size_t cols, const qlab_qconfig *cfg,
                     size_t yoff, const char *what)
{
    size_t n = rows * cols;
    float *ybuf = aligned_alloc(64, (n + yoff + 16) / 16 * 64);
    float *y = ybuf + yoff, *yr = malloc(n * 4), *yi = malloc(n * 4);
    int16_t *c16 = malloc(n * 2), *cr = malloc(n * 2);
    int8_t *c8 = malloc(n);
    qlab_qparams p = {0}, pr = {0};
    qlab_metrics m = {0}, mr = {0};
    const int narrow = cfg->bits <= 8;

    /* The separate steps. */
    assert_int_equal(qlab_calibrate(x, rows, cols, cfg, &pr), 0);
    assert_int_equal(qlab_fake_quant_params(x, rows, cols, cfg, &pr, yr, &mr), 0);
    assert_int_equal(qlab_quantize(x, rows, cols, cfg, &pr, cr), 0);

    memset(c16, 0x5a, n * 2);
    memset(c8, 0x5a, n);
    assert_int_equal(qlab_fake_quant_codes(x, rows, cols, cfg, y, c16, narrow ? c8 : NULL, &p,
                                           &m), 0);
    assert_int_equal(p.nblocks, pr.nblocks);
    if (memcmp(p.scale, pr.scale, p.nblocks * 4) ||
        memcmp(p.zero_point, pr.zero_point, p.nblocks * 4))
        fail_msg("%s: parameters differ from qlab_calibrate", what);
    if (memcmp(y, yr, n * 4))
        fail_msg("%s: dequantized tensor differs", what);
    if (memcmp(c16, cr, n * 2))
        fail_msg("%s: int16 codes differ from qlab_quantize", what);
    for (size_t i = 0; narrow && i < n; i++)
        if (c8[i] != (int8_t)cr[i])
            fail_msg("%s: int8 code %zu is %d, expected %d", what, i, c8[i], cr[i]);
    compare_metrics(&m, &mr, what);

    /* qlab_fake_quant takes the same path without codes; in place (no inline calibration)
     * gives the same tensor. */
    qlab_metrics mf = {0};
    assert_int_equal(qlab_fake_quant(x, rows, cols, cfg, yi, NULL, &mf), 0);
    compare_metrics(&mf, &mr, what);
    if (memcmp(yi, yr, n * 4))
        fail_msg("%s: qlab_fake_quant differs", what);
    memcpy(yi, x, n * 4);
    memset(c16, 0x5a, n * 2);
    assert_int_equal(qlab_fake_quant_codes(yi, rows, cols, cfg, yi, c16, NULL, NULL, &mf), 0);
    compare_metrics(&mf, &mr, what);
    if (memcmp(yi, yr, n * 4) || memcmp(c16, cr, n * 2))
        fail_msg("%s: in-place results differ", what);

    qlab_qparams_free(&p);
    qlab_qparams_free(&pr);
    free(ybuf), free(yr), free(yi), free(c16), free(cr), free(c8);
}

static void fused_matches_steps(void **state)
{
    size_t maxn = 0;
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
        maxn = shapes[s].rows * shapes[s].cols > maxn ? shapes[s].rows * shapes[s].cols : maxn;
    float *x = malloc(maxn * 4);
    const int bitsv[] = { 4, 8, 16 };
    const qlab_granularity grans[] = { QLAB_GRAN_TENSOR, QLAB_GRAN_CHANNEL, QLAB_GRAN_GROUP };
    const qlab_calibration cals[] = { QLAB_CALIB_MINMAX, QLAB_CALIB_MSE };
    int checked = 0;
    for (unsigned thr = 1; thr <= 2; thr++) {
        qlab_set_threads(thr);
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
            for (int g = 0; g < 3; g++)
                for (int sch = 0; sch < 2; sch++)
                    for (int b = 0; b < 3; b++)
                        for (int c = 0; c < 2; c++) {
                            size_t rows = shapes[s].rows, cols = shapes[s].cols;
                            /* mse searches per block: keep it to the small shapes */
                            if (cals[c] == QLAB_CALIB_MSE && rows * cols > 20000)
                                continue;
                            qlab_qconfig cfg;
                            qlab_qconfig_init(&cfg);
                            cfg.bits = bitsv[b];
                            cfg.scheme = sch ? QLAB_SCHEME_ASYMMETRIC : QLAB_SCHEME_SYMMETRIC;
                            cfg.granularity = grans[g];
                            cfg.group_size = s & 1 ? 128 : 100;
                            cfg.calibration = cals[c];
                            fill(x, rows * cols, 99 + s * 7 + (uint64_t)g, (float)(g + 1));
                            char what[160];
                            snprintf(what, sizeof(what),
                                     "threads=%u %zux%zu %s %s bits=%d %s", thr, rows, cols,
                                     qlab_granularity_name(cfg.granularity),
                                     qlab_scheme_name(cfg.scheme), cfg.bits,
                                     qlab_calibration_name(cfg.calibration));
                            one_case(x, rows, cols, &cfg, s & 1, what);
                            checked++;
                        }
    }
    qlab_set_threads(2);
    assert_true(checked > 100);
    free(x);
}

/* 4M values: the size from which outputs are streamed, rows of 4096 (each row a whole
 * number of aligned vectors, or not), per channel and per group of 128, at 2 threads. */
static void fused_large(void **state)
{
    const size_t rows = 1024, cols = 4096, n = rows * cols;
    float *x = malloc(n * 4);
    fill(x, n, 17, 1.0f);
    qlab_set_threads(2);
    for (int k = 0; k < 3; k++) {
        qlab_qconfig cfg;
        qlab_qconfig_init(&cfg);
        cfg.granularity = k == 2 ? QLAB_GRAN_GROUP : QLAB_GRAN_CHANNEL;
        cfg.group_size = 128;
        cfg.scheme = k == 1 ? QLAB_SCHEME_ASYMMETRIC : QLAB_SCHEME_SYMMETRIC;
        char what[64];
        snprintf(what, sizeof(what), "4M values, case %d", k);
        one_case(x, rows, cols, &cfg, k == 1 ? 1 : 0, what);
    }
    free(x);
}

/* The error histogram with an automatic range (two passes) comes out as without codes. */
static void fused_histogram(void **state)
{
    const size_t rows = 40, cols = 999, n = rows * cols;
    float *x = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4);
    int8_t *c8 = malloc(n);
    int16_t *cr = malloc(n * 2);
    fill(x, n, 5, 2.0f);
    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    cfg.granularity = QLAB_GRAN_CHANNEL;
    uint64_t h[31] = {0}, hr[31] = {0};
    qlab_metrics m = { .nbins = 31, .hist = h }, mr = { .nbins = 31, .hist = hr };
    qlab_qparams p = {0};
    assert_int_equal(qlab_fake_quant(x, rows, cols, &cfg, yr, &p, &mr), 0);
    assert_int_equal(qlab_quantize(x, rows, cols, &cfg, &p, cr), 0);
    assert_int_equal(qlab_fake_quant_codes(x, rows, cols, &cfg, y, NULL, c8, NULL, &m), 0);
    compare_metrics(&m, &mr, "histogram");
    assert_memory_equal(h, hr, sizeof(h));
    assert_true(same_bits(m.hist_lo, mr.hist_lo) && same_bits(m.hist_hi, mr.hist_hi));
    assert_memory_equal(y, yr, n * 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c8[i], cr[i]);
    uint64_t total = 0;
    for (int k = 0; k < 31; k++)
        total += h[k];
    assert_int_equal(total, n);
    qlab_qparams_free(&p);
    free(x), free(y), free(yr), free(c8), free(cr);
}

static void fused_errors(void **state)
{
    const size_t rows = 64, cols = 1000, n = rows * cols;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    int16_t *c16 = malloc(n * 2);
    int8_t *c8 = malloc(n);
    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    const qlab_granularity grans[] = { QLAB_GRAN_TENSOR, QLAB_GRAN_CHANNEL, QLAB_GRAN_GROUP };
    const float bad[] = { NAN, INFINITY, -INFINITY };
    for (int g = 0; g < 3; g++)
        for (int b = 0; b < 3; b++) {
            fill(x, n, 3, 1.0f);
            x[n / 2 + 3] = bad[b];
            cfg.granularity = grans[g];
            qlab_qparams p = {0};
            assert_int_equal(qlab_fake_quant_codes(x, rows, cols, &cfg, y, c16, c8, &p, NULL),
                             -EDOM);
            assert_null(p.scale);   /* outputs are written only on success */
        }
    fill(x, n, 3, 1.0f);
    cfg.bits = 16;
    assert_int_equal(qlab_fake_quant_codes(x, rows, cols, &cfg, y, NULL, c8, NULL, NULL),
                     -EINVAL);
    assert_int_equal(qlab_fake_quant_codes(x, rows, cols, &cfg, y, c16, NULL, NULL, NULL), 0);
    cfg.bits = 9;
    assert_int_equal(qlab_fake_quant_codes(x, rows, cols, &cfg, y, c16, NULL, NULL, NULL),
                     -EINVAL);
    cfg.bits = 8;
    assert_int_equal(qlab_fake_quant_codes(x, SIZE_MAX / 2, 3, &cfg, y, c16, NULL, NULL, NULL),
                     -EINVAL);
    /* An empty tensor is fine. */
    qlab_qparams p = {0};
    cfg.granularity = QLAB_GRAN_CHANNEL;
    assert_int_equal(qlab_fake_quant_codes(NULL, 0, 5, &cfg, NULL, NULL, NULL, &p, NULL), 0);
    qlab_qparams_free(&p);
    free(x), free(y), free(c16), free(c8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fused_matches_steps),
        cmocka_unit_test(fused_large),
        cmocka_unit_test(fused_histogram),
        cmocka_unit_test(fused_errors),
    };
    return cmocka_run_group_tests_name("core-fused", tests, NULL, NULL);
}
