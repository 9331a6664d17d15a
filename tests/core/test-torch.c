/* test-torch.c — the core against PyTorch and NumPy reference vectors (gen_fixtures.py):
 * torch.fake_quantize_per_{tensor,channel}_affine bit for bit for every bit-width, scheme
 * and granularity, with qlab's own min/max calibration; np.percentile exactly. */
#include "test-util.h"

#include "parallel.h"
#include "qlab-quant.h"

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static void take(rd *r, void *dst, size_t n)
{
    assert_true((size_t)(r->end - r->p) >= n);
    memcpy(dst, r->p, n);
    r->p += n;
}

static void check_case(rd *r, int *ncases)
{
    int32_t h[7];
    take(r, h, sizeof(h));
    int bits = h[0], asym = h[1], gran = h[2], G = h[3];
    size_t rows = (size_t)h[4], cols = (size_t)h[5], nb = (size_t)h[6], n = rows * cols;
    float *x = malloc(n * 4), *sc = malloc(nb * 4), *ref = malloc(n * 4), *y = malloc(n * 4),
          *y2 = malloc(n * 4);
    int32_t *zp = malloc(nb * 4);
    int16_t *codes = malloc(n * 2);
    take(r, x, n * 4);
    take(r, sc, nb * 4);
    take(r, zp, nb * 4);
    take(r, ref, n * 4);

    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    cfg.bits = bits;
    cfg.scheme = asym ? QLAB_SCHEME_ASYMMETRIC : QLAB_SCHEME_SYMMETRIC;
    cfg.granularity = gran == 0 ? QLAB_GRAN_TENSOR : gran == 1 ? QLAB_GRAN_CHANNEL
                                                               : QLAB_GRAN_GROUP;
    cfg.group_size = G;
    assert_int_equal(qlab_qparams_nblocks(rows, cols, &cfg), nb);

    qlab_qparams p = {0};
    qlab_metrics m = {0};
    assert_int_equal(qlab_fake_quant(x, rows, cols, &cfg, y, &p, &m), 0);
    assert_int_equal(p.nblocks, nb);
    for (size_t b = 0; b < nb; b++) {
        if (!same_bits(p.scale[b], sc[b]) || p.zero_point[b] != zp[b])
            fail_msg("bits %d %s gran %d block %zu: scale %.9g zp %d, torch-side %.9g %d", bits,
                     asym ? "asym" : "sym", gran, b, (double)p.scale[b], p.zero_point[b],
                     (double)sc[b], zp[b]);
    }
    /* Quantize + dequantize separately must give the same bits as the fused pass. */
    assert_int_equal(qlab_quantize(x, rows, cols, &cfg, &p, codes), 0);
    assert_int_equal(qlab_dequantize(codes, rows, cols, &cfg, &p, y2), 0);
    int32_t qmin, qmax;
    qlab_qrange(bits, &qmin, &qmax);
    for (size_t i = 0; i < n; i++) {
        if (!same_bits(y[i], ref[i]))
            fail_msg("bits %d %s gran %d [%zu]: x %.9g -> %.9g, torch %.9g", bits,
                     asym ? "asym" : "sym", gran, i, (double)x[i], (double)y[i], (double)ref[i]);
        assert_true(same_bits(y2[i], ref[i]));
        assert_true(codes[i] >= qmin && codes[i] <= qmax);
    }
    qlab_qparams_free(&p);
    free(x), free(sc), free(ref), free(y), free(y2), free(zp), free(codes);
    (*ncases)++;
}

static void torch_fake_quant(void **state)
{
    size_t len;
    uint8_t *buf = slurp(fixture("torch_fq.bin"), &len);
    assert_non_null(buf);
    rd r = { buf, buf + len };
    char magic[4];
    uint32_t count;
    take(&r, magic, 4);
    take(&r, &count, 4);
    assert_memory_equal(magic, "QLFQ", 4);
    int ncases = 0;
    for (uint32_t i = 0; i < count; i++)
        check_case(&r, &ncases);
    assert_int_equal(ncases, 54);
    assert_true(r.p == r.end);
    free(buf);
}

static void numpy_percentile(void **state)
{
    size_t len;
    uint8_t *buf = slurp(fixture("percentile.bin"), &len);
    assert_non_null(buf);
    rd r = { buf, buf + len };
    char magic[4];
    uint32_t count;
    take(&r, magic, 4);
    take(&r, &count, 4);
    assert_memory_equal(magic, "QLPC", 4);
    for (uint32_t s = 0; s < count; s++) {
        uint32_t n, np;
        take(&r, &n, 4);
        take(&r, &np, 4);
        float *x = malloc(n * 4);
        take(&r, x, n * 4);
        for (uint32_t k = 0; k < np; k++) {
            double ref[3], a, v;
            take(&r, ref, sizeof(ref));
            assert_int_equal(qlab_percentile(x, n, ref[0], 1, &a), 0);
            assert_int_equal(qlab_percentile(x, n, ref[0], 0, &v), 0);
            if (a != ref[1] || v != ref[2])
                fail_msg("n %u p %g: |x| %.17g vs numpy %.17g, x %.17g vs numpy %.17g", n,
                         ref[0], a, ref[1], v, ref[2]);
        }
        free(x);
    }
    free(buf);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The bracketed selection path (n > 65536) on data built to defeat the sample: a periodic
 * pattern whose strided sample sees only one phase still gives the exact order statistic. */
static void percentile_adversarial(void **state)
{
    size_t n = 300007;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = (i % 9 == 0) ? 1000.0f + (float)(i % 1000) : (float)(i % 97) * 0.01f;
    /* Reference: sort a copy. */
    float *s = malloc(n * sizeof(float));
    memcpy(s, x, n * sizeof(float));
    qsort(s, n, sizeof(float), cmp_float);
    const double ps[] = { 0.0, 12.5, 50.0, 88.0, 89.0, 99.9, 100.0 };
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        double h = (double)(n - 1) * (ps[k] / 100.0), v;
        size_t i0 = (size_t)floor(h), i1 = i0 + 1 < n ? i0 + 1 : n - 1;
        double g = h - (double)i0;
        float d = s[i1] - s[i0];
        double ref = g < 0.5 ? (double)s[i0] + (double)d * g : (double)s[i1] - (double)d * (1 - g);
        assert_int_equal(qlab_percentile(x, n, ps[k], 0, &v), 0);
        assert_true(v == ref);
    }
    free(s);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(torch_fake_quant),
        cmocka_unit_test(numpy_percentile),
        cmocka_unit_test(percentile_adversarial),
    };
    return cmocka_run_group_tests_name("core-torch", tests, NULL, NULL);
}
