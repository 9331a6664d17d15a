/* test-cli.c — `qlab quant` end to end: the built binary (argv[1]) on the demo tensor must
 * write torch's fake quantization bit for bit, print the JSON keys of PRODUCT §5, and fail
 * with exactly one "qlab: FILE: ..." line and a non-zero status on bad input or flags. */
#include "test-util.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qlab-npy.h"
#include "qlab-quant.h"

extern char **environ;
static const char *qlab_bin;

/* Runs qlab with args; captures stdout and stderr into malloc'd strings. */
static int run(const char *const *args, char **out, char **err)
{
    char o[] = "/tmp/qlab-cli-out-XXXXXX", e[] = "/tmp/qlab-cli-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    assert_true(fo >= 0 && fe >= 0);
    const char *argv[16] = { qlab_bin };
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fo, 1);
    posix_spawn_file_actions_adddup2(&fa, fe, 2);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, qlab_bin, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(fo);
    close(fe);
    size_t len;
    *out = slurp(o, &len);
    *out = realloc(*out, len + 1);
    (*out)[len] = '\0';
    *err = slurp(e, &len);
    *err = realloc(*err, len + 1);
    (*err)[len] = '\0';
    unlink(o);
    unlink(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void matches_torch(void **state)
{
    char outp[] = "/tmp/qlab-cli-npy-XXXXXX";
    int fd = mkstemp(outp);
    close(fd);
    char in[4096];
    snprintf(in, sizeof(in), "%s", fixture("demo.npy"));
    const char *args[] = { "quant", in, "--bits", "4", "--scheme", "asymmetric",
                           "--granularity", "channel", "--calibration", "minmax", "--out",
                           outp, "--json", NULL };
    char *o, *e;
    assert_int_equal(run(args, &o, &e), 0);
    assert_string_equal(e, "");
    const char *keys[] = { "\"scale\": [", "\"zero_point\": [", "\"mse\":", "\"sqnr_db\":",
                           "\"max_abs_error\":", "\"cosine\":", "\"clip_fraction\":",
                           "\"bytes\": 4416,", "\"fp32_bytes\": 32768,", "\"kernel\":" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!strstr(o, keys[i]))
            fail_msg("JSON lacks %s:\n%s", keys[i], o);
    qlab_err err = {0};
    qlab_npy a = {0}, b = {0};
    assert_int_equal(qlab_npy_read(outp, &a, &err), 0);
    assert_int_equal(qlab_npy_read(fixture("demo-q4-asym-channel.npy"), &b, &err), 0);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.data, b.data, a.n * 4);
    qlab_npy_free(&a);
    qlab_npy_free(&b);
    free(o);
    free(e);

    /* The human summary names the level and the memory. */
    const char *args2[] = { "quant", in, "--bits", "8", "--calibration", "percentile:99.9",
                            NULL };
    assert_int_equal(run(args2, &o, &e), 0);
    assert_non_null(strstr(o, "sqnr"));
    assert_non_null(strstr(o, "memory         8196 bytes"));
    free(o);
    free(e);
    unlink(outp);
}

/* A clipping calibration (two passes for the histogram, output over the input) gives what
 * the library gives in-process. */
static void matches_library(void **state)
{
    char outp[] = "/tmp/qlab-cli-npy-XXXXXX";
    int fd = mkstemp(outp);
    close(fd);
    char in[4096];
    snprintf(in, sizeof(in), "%s", fixture("demo.npy"));
    const char *args[] = { "quant", in, "--bits", "5", "--scheme", "asymmetric",
                           "--granularity", "group:48", "--calibration", "percentile:99",
                           "--out", outp, NULL };
    char *o, *e;
    assert_int_equal(run(args, &o, &e), 0);
    qlab_err err = {0};
    qlab_npy a = {0}, t = {0};
    assert_int_equal(qlab_npy_read(outp, &a, &err), 0);
    assert_int_equal(qlab_npy_read(in, &t, &err), 0);
    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    cfg.bits = 5;
    cfg.scheme = QLAB_SCHEME_ASYMMETRIC;
    cfg.granularity = QLAB_GRAN_GROUP;
    cfg.group_size = 48;
    cfg.calibration = QLAB_CALIB_PERCENTILE;
    cfg.percentile = 99.0;
    float *y = malloc(t.n * 4);
    qlab_metrics m = {0};
    assert_int_equal(qlab_fake_quant(t.data, t.shape[0], t.n / t.shape[0], &cfg, y, NULL, &m), 0);
    assert_memory_equal(a.data, y, t.n * 4);
    assert_true(m.clip_fraction > 0.0);
    char want[64];
    snprintf(want, sizeof(want), "clipped        %.4f%%", 100.0 * m.clip_fraction);
    assert_non_null(strstr(o, want));
    free(y);
    free(o);
    free(e);
    qlab_npy_free(&a);
    qlab_npy_free(&t);
    unlink(outp);
}

static void one_line_errors(void **state)
{
    struct {
        const char *file, *flag, *val, *words;
    } cases[] = {
        { "bad-nan.npy", NULL, NULL, "NaN or Inf" },
        { "bad-f16.npy", NULL, NULL, "unsupported dtype" },
        { "bad-fortran.npy", NULL, NULL, "Fortran" },
        { "bad-truncated.npy", NULL, NULL, "truncated" },
        { "demo.npy", "--bits", "9", "bad --bits" },
        { "demo.npy", "--calibration", "precentile:99", "bad --calibration" },
        { "demo.npy", "--calibration", "percentile:101", "bad --calibration" },
        { "demo.npy", "--granularity", "group:0", "bad --granularity" },
        { "demo.npy", "--frobnicate", NULL, "unknown option" },
        { "missing.npy", NULL, NULL, "No such file" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char in[4096];
        snprintf(in, sizeof(in), "%s", fixture(cases[i].file));
        const char *args[] = { "quant", in, cases[i].flag, cases[i].val, NULL };
        char *o, *e;
        int st = run(args, &o, &e);
        if (st == 0 || strncmp(e, "qlab: ", 6) || !strstr(e, cases[i].words) ||
            strchr(e, '\n') != e + strlen(e) - 1)
            fail_msg("case %zu: status %d, stderr '%s'", i, st, e);
        if (!cases[i].flag)   /* file errors name the file */
            assert_non_null(strstr(e, cases[i].file));
        assert_string_equal(o, "");
        free(o);
        free(e);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test-core-cli PATH-TO-qlab\n");
        return 2;
    }
    qlab_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_torch),
        cmocka_unit_test(matches_library),
        cmocka_unit_test(one_line_errors),
    };
    return cmocka_run_group_tests_name("core-cli-quant", tests, NULL, NULL);
}
