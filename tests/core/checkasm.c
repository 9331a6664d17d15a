/* checkasm.c — every kernel level the CPU offers against the scalar reference, bit for bit
 * (dav1d's tests/checkasm idea): random data of awkward lengths, denormals, signed zeros,
 * huge values, exact rounding ties, and the NaN/Inf flag of the reductions. */
#include "test-util.h"

#include <float.h>
#include <time.h>

#include "cpu-private.h"
#include "core-private.h"
#include "qlab-quant.h"

static qlab_quant_dsp ref, levels[4];
static const char *level_names[4];
static int nlevels;

static const size_t lengths[] = { 0, 1, 7, 8, 9, 15, 16, 17, 31, 1023, ((size_t)1 << 20) + 3 };
#define NLEN (sizeof(lengths) / sizeof(lengths[0]))

static float rand_float(uint64_t *s, int kind)
{
    uint64_t r = rng_next(s);
    uint32_t u;
    float f;
    switch (kind) {
    case 0:   /* ordinary */
        return rng_normal(s) * 3.0f;
    case 1:   /* denormals, both signs */
        u = (uint32_t)(r & 0x007fffff) | (uint32_t)(r >> 32 & 0x80000000u);
        memcpy(&f, &u, 4);
        return f;
    case 2:   /* signed zeros among small values */
        return (r & 3) == 0 ? 0.0f : (r & 3) == 1 ? -0.0f : rng_normal(s) * 1e-3f;
    case 3:   /* huge magnitudes */
        return ((r & 1) ? -1.0f : 1.0f) * FLT_MAX * ((float)((r >> 8 & 0xffff) + 1) / 65536.0f);
    case 5:   /* NaN and Inf among ordinary values: defined results, flagged by the sums */
        if ((r & 63) == 0)
            return (r & 64) ? NAN : (r & 128) ? INFINITY : -INFINITY;
        return rng_normal(s);
    default:  /* exact ties k + 0.5 (with scale 1), and everything above mixed */
        if ((r & 7) < 4)
            return (float)((int)(r >> 16 & 511) - 256) + 0.5f;
        return rand_float(s, (int)(r >> 40) % 4);
    }
}

static void fill(float *x, size_t n, int kind, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rand_float(&seed, kind);
}

static void args_for(qlab_fq_args *a, int bits, int which)
{
    const float scales[] = { 0.05f, 1.0f, FLT_EPSILON, 3.0e37f, 0.0123456789f };
    int32_t qmin, qmax;
    qlab_qrange(bits, &qmin, &qmax);
    int32_t zp = which == 4 ? qmin : which == 2 ? qmax : which == 1 ? 0 : (qmin + qmax) / 3;
    assert_int_equal(qlab_fq_args_init(a, scales[which], zp, bits), 0);
}

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof(a));
}

static void compare_stats(const qlab_fq_stats *a, const qlab_fq_stats *b, const char *what)
{
    if (!same_double(a->sum_e2, b->sum_e2) || !same_double(a->sum_x2, b->sum_x2) ||
        !same_double(a->sum_xe, b->sum_xe) ||
        /* max |e| of a span with NaN is unspecified (maxps is not symmetric in NaN); the
         * drivers never use it then (the sums report -EDOM). */
        (isfinite(a->sum_x2) && !same_bits(a->max_abs_err, b->max_abs_err)) ||
        a->nclip != b->nclip)
        fail_msg("%s: stats differ: e2 %.17g/%.17g x2 %.17g/%.17g maxe %g/%g clip %llu/%llu",
                 what, a->sum_e2, b->sum_e2, a->sum_x2, b->sum_x2, (double)a->max_abs_err,
                 (double)b->max_abs_err, (unsigned long long)a->nclip,
                 (unsigned long long)b->nclip);
}

static void quant_kernels(void **state)
{
    size_t maxn = lengths[NLEN - 1] + 8;
    float *x = malloc(maxn * 4), *y0 = malloc(maxn * 4), *y1 = malloc(maxn * 4);
    int16_t *q0 = malloc(maxn * 2), *q1 = malloc(maxn * 2);
    int16_t *c0 = malloc(maxn * 2), *c1 = malloc(maxn * 2);
    int8_t *b0 = malloc(maxn), *b1 = malloc(maxn), *q8 = malloc(maxn);
    const int bitsv[] = { 2, 4, 8, 16 };
    int checked = 0;
    for (int l = 0; l < nlevels; l++)
        for (size_t li = 0; li < NLEN; li++)
            for (int kind = 0; kind < 7; kind++)
                for (int b = 0; b < 4; b++)
                    for (int w = 0; w < 5; w++) {
                        size_t n = lengths[li];
                        /* The 1M case once per kind and width: enough to cover the tiles. */
                        if (n > 4096 && w != 0)
                            continue;
                        char what[128];
                        snprintf(what, sizeof(what), "%s n=%zu kind=%d bits=%d args=%d",
                                 level_names[l], n, kind, bitsv[b], w);
                        qlab_fq_args a;
                        args_for(&a, bitsv[b], w);
                        /* Unaligned start: offset by one float. */
                        float *xs = x + (li & 1);
                        fill(xs, n, kind, 1000 + li * 31 + (uint64_t)kind * 7 + (uint64_t)b);
                        int f0 = ref.quantize(xs, n, &a, q0);
                        int f1 = levels[l].quantize(xs, n, &a, q1);
                        if (memcmp(q0, q1, n * 2) || !f0 != !f1)
                            fail_msg("%s: quantize differs", what);
                        ref.dequantize(q0, n, &a, y0);
                        levels[l].dequantize(q0, n, &a, y1);
                        if (memcmp(y0, y1, n * 4))
                            fail_msg("%s: dequantize differs", what);
                        uint64_t h0[37] = {0}, h1[37] = {0};
                        qlab_fq_args ha = a;
                        ha.hist = h0;
                        ha.nbins = 37;
                        ha.hist_lo = -a.scale;
                        ha.hist_inv_width = 37.0f / (2.0f * a.scale);
                        qlab_fq_stats s0, s1;
                        /* The codes of the fused pass are those of quantize, in int16 and
                         * (bits <= 8) in int8. */
                        const int narrow = bitsv[b] <= 8;
                        for (size_t i = 0; i < n; i++)
                            q8[i] = (int8_t)q0[i];
                        memset(c0, 0x55, n * 2);
                        memset(b0, 0x55, n);
                        ref.fake_quant(xs, n, &ha, y0, c0, narrow ? b0 : NULL, &s0);
                        if (memcmp(c0, q0, n * 2) || (narrow && memcmp(b0, q8, n)))
                            fail_msg("%s: scalar fake_quant codes differ from quantize", what);
                        ha.hist = h1;
                        memset(c1, 0x55, n * 2);
                        memset(b1, 0x55, n);
                        levels[l].fake_quant(xs, n, &ha, y1, c1, narrow ? b1 : NULL, &s1);
                        if (memcmp(y0, y1, n * 4))
                            fail_msg("%s: fake_quant output differs", what);
                        if (memcmp(c1, q0, n * 2) || (narrow && memcmp(b1, q8, n)))
                            fail_msg("%s: fake_quant codes differ", what);
                        compare_stats(&s0, &s1, what);
                        /* Non-finite input is visible in the sums (the drivers' -EDOM). */
                        int nonfin = 0;
                        for (size_t i = 0; i < n; i++)
                            nonfin |= !isfinite(xs[i]);
                        assert_int_equal(nonfin, !isfinite(s0.sum_x2));
                        assert_int_equal(nonfin, !!f0);
                        if (memcmp(h0, h1, sizeof(h0)))
                            fail_msg("%s: error histogram differs", what);
                        /* Without output and histogram the sums are the same. */
                        levels[l].fake_quant(xs, n, &a, NULL, NULL, NULL, &s1);
                        compare_stats(&s0, &s1, what);
                        /* Codes only (each kind alone), no dequantized output. */
                        memset(c1, 0x55, n * 2);
                        levels[l].fake_quant(xs, n, &a, NULL, c1, NULL, &s1);
                        compare_stats(&s0, &s1, what);
                        if (memcmp(c1, q0, n * 2))
                            fail_msg("%s: fake_quant int16 codes alone differ", what);
                        if (narrow) {
                            /* int8 codes at an odd address, with the output */
                            memset(b1, 0x55, n + 1);
                            levels[l].fake_quant(xs, n, &a, y1, NULL, b1 + 1, &s1);
                            compare_stats(&s0, &s1, what);
                            if (memcmp(b1 + 1, q8, n) || memcmp(y0, y1, n * 4))
                                fail_msg("%s: fake_quant int8 codes alone differ", what);
                        }
                        /* Streaming stores, output misaligned by 0..3 floats, codes too. */
                        qlab_fq_args sa = a;
                        sa.stream = 1;
                        float *ys = y1 + (li % 4);
                        int16_t *cs = c1 + (li % 3);
                        memset(c1, 0x55, n * 2);
                        memset(b1, 0x55, n);
                        levels[l].fake_quant(xs, n, &sa, ys, cs, narrow ? b1 : NULL, &s1);
                        compare_stats(&s0, &s1, what);
                        if (memcmp(y0, ys, n * 4))
                            fail_msg("%s: streaming fake_quant output differs", what);
                        if (memcmp(cs, q0, n * 2) || (narrow && memcmp(b1, q8, n)))
                            fail_msg("%s: streaming fake_quant codes differ", what);
                        int16_t *qs = q1 + (li % 3);
                        f1 = levels[l].quantize(xs, n, &sa, qs);
                        if (memcmp(q0, qs, n * 2) || !f0 != !f1)
                            fail_msg("%s: streaming quantize differs", what);
                        levels[l].dequantize(q0, n, &sa, ys);
                        ref.dequantize(q0, n, &a, y0);
                        if (memcmp(y0, ys, n * 4))
                            fail_msg("%s: streaming dequantize differs", what);
                        checked++;
                    }
    assert_true(checked > 0);
    free(x), free(y0), free(y1), free(q0), free(q1);
    free(c0), free(c1), free(b0), free(b1), free(q8);
}

static void reductions(void **state)
{
    size_t maxn = lengths[NLEN - 1] + 8;
    float *x = malloc(maxn * 4);
    for (int l = 0; l < nlevels; l++)
        for (size_t li = 1; li < NLEN; li++)
            for (int kind = 0; kind < 5; kind++) {
                size_t n = lengths[li];
                fill(x, n, kind, 77 + li + (uint64_t)kind * 1000);
                float mn0, mx0, mn1, mx1, a0, a1;
                int b0 = ref.minmax(x, n, &mn0, &mx0), b1 = levels[l].minmax(x, n, &mn1, &mx1);
                assert_int_equal(b0, 0);
                assert_int_equal(b1, 0);
                assert_true(mn0 == mn1 && mx0 == mx1);   /* == : -0 and +0 are the same min */
                b0 = ref.absmax(x, n, &a0);
                b1 = levels[l].absmax(x, n, &a1);
                assert_true(b0 == 0 && b1 == 0 && same_bits(a0, a1));
                uint64_t h0[2048] = {0}, h1[2048] = {0};
                float sc = a0 > 0 ? fminf(2048.0f / a0, FLT_MAX) : 1.0f;
                ref.abs_hist(x, n, sc, 2048, h0);
                levels[l].abs_hist(x, n, sc, 2048, h1);
                assert_memory_equal(h0, h1, sizeof(h0));
                /* Percentile keys: count and gather against the reference, brackets
                 * from everything to nothing, both key kinds. */
                uint32_t *k0 = malloc(n * 4), *k1 = malloc(n * 4);
                const uint32_t brackets[][2] = { { 0, UINT32_MAX }, { 0x3f000000u, 0x01000000u },
                                                 { 0x80000000u, 0x7fffffffu }, { 5, 0 },
                                                 { 0xbf800000u, 0x40000000u } };
                for (int ab = 0; ab < 2; ab++)
                    for (int bk = 0; bk < 5; bk++) {
                        uint32_t lo = brackets[bk][0], span = brackets[bk][1];
                        size_t c0 = 0, i0 = 0, c1 = 0, i1 = 0, c2 = 0, i2 = 0;
                        int f0 = ref.key_scan(x, n, ab, lo, span, &c0, k0, n, &i0);
                        int f1 = levels[l].key_scan(x, n, ab, lo, span, &c1, k1, n, &i1);
                        assert_true(f0 == 0 && f1 == 0 && c0 == c1 && i0 == i1);
                        assert_memory_equal(k0, k1, i0 * 4);
                        /* A small cap: the same counts, only the first keys written. */
                        size_t cap = i0 / 3;
                        memset(k1, 0, n * 4);
                        levels[l].key_scan(x, n, ab, lo, span, &c2, k1, cap, &i2);
                        assert_true(c2 == c0 && i2 == i0);
                        assert_memory_equal(k0, k1, cap * 4);
                        if (cap < n)
                            assert_int_equal(k1[cap], 0);
                    }
                free(k0);
                free(k1);
                /* NaN / Inf anywhere (first, middle lane, tail) raise the flag. */
                const float bad[] = { NAN, INFINITY, -INFINITY };
                const size_t at[] = { 0, n / 2, n - 1 };
                for (int b = 0; b < 3; b++)
                    for (int k = 0; k < 3; k++) {
                        float keep = x[at[k]];
                        x[at[k]] = bad[b];
                        assert_int_not_equal(levels[l].minmax(x, n, &mn1, &mx1), 0);
                        assert_int_not_equal(levels[l].absmax(x, n, &a1), 0);
                        size_t cb = 0, ci = 0;
                        uint32_t dummy[1];
                        assert_int_not_equal(levels[l].key_scan(x, n, k & 1, 0, 10, &cb, dummy,
                                                                0, &ci), 0);
                        x[at[k]] = keep;
                    }
            }
    free(x);
}

static void report_level(void **state)
{
    /* The level in use is one of those tested, and QLAB_CPU=scalar is honoured. */
    const char *lv = qlab_cpu_level_name();
    const char *env = getenv("QLAB_CPU");
    if (env && !strcmp(env, "scalar"))
        assert_string_equal(lv, "scalar");
    int found = !strcmp(lv, "scalar");
    for (int l = 0; l < nlevels; l++)
        found |= !strcmp(lv, level_names[l]);
    assert_true(found);
    print_message("kernel levels tested against scalar:");
    for (int l = 0; l < nlevels; l++)
        print_message(" %s", level_names[l]);
    print_message("; in use: %s\n", lv);
}

/* checkasm-core --bench: each kernel at each level on 2^16 values (L2-resident), ns per
 * value, best of 200 runs. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(void)
{
    const size_t n = (size_t)1 << 16;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    int16_t *q = malloc(n * 2);
    int8_t *q8 = malloc(n);
    uint32_t *keys = malloc(n * 4);
    fill(x, n, 0, 42);
    qlab_fq_args a;
    args_for(&a, 8, 0);
    printf("%-12s %-8s %10s\n", "kernel", "level", "ns/value");
    for (int k = 0; k < 7; k++)
        for (int l = 0; l < nlevels; l++) {
            const qlab_quant_dsp *d = &levels[l];
            double best = INFINITY;
            for (int r = 0; r < 200; r++) {
                double t0 = now_s();
                qlab_fq_stats st;
                float mn, mx;
                size_t b = 0, in = 0;
                uint64_t h[64] = {0};
                switch (k) {
                case 0: d->quantize(x, n, &a, q); break;
                case 1: d->dequantize(q, n, &a, y); break;
                case 2: d->fake_quant(x, n, &a, y, NULL, NULL, &st); break;
                case 3: d->minmax(x, n, &mn, &mx); break;
                case 4: d->abs_hist(x, n, 8.0f, 64, h); break;
                case 6: d->fake_quant(x, n, &a, y, NULL, q8, &st); break;
                default: d->key_scan(x, n, 1, 0x3f000000u, 0x00800000u, &b, keys, n, &in); break;
                }
                double t = now_s() - t0;
                best = t < best ? t : best;
            }
            static const char *names[] = { "quantize", "dequantize", "fake_quant", "minmax",
                                           "abs_hist", "key_scan", "fq+codes8" };
            printf("%-12s %-8s %10.3f\n", names[k], level_names[l], best * 1e9 / (double)n);
        }
    free(x), free(y), free(q), free(q8), free(keys);
    return 0;
}

int main(int argc, char **argv)
{
    qlab_quant_dsp_init(&ref, 0);
    unsigned det = qlab_cpu_flags_detected();
    /* Each level on its own rung, like dav1d: scalar (against itself, as a sanity check of
     * the harness), then each ISA the machine has. */
    qlab_quant_dsp_init(&levels[nlevels], 0);
    level_names[nlevels++] = "scalar";
    if (det & QLAB_CPU_FLAG_AVX2) {
        qlab_quant_dsp_init(&levels[nlevels], QLAB_CPU_FLAG_AVX2);
        level_names[nlevels++] = "avx2";
    }
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quant_kernels),
        cmocka_unit_test(reductions),
        cmocka_unit_test(report_level),
    };
    return cmocka_run_group_tests_name("core-checkasm", tests, NULL, NULL);
}
