/* test-experiment.c — the shipped experiments, grid expansion (counts, de-duplication,
 * exclusions, overrides), configuration hashes and error locations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlab-config.h"
#include "qlab-experiment.h"
#include "store-test-util.h"

static const char *root(void)
{
    const char *r = getenv("QLAB_SOURCE_ROOT");
    return r ? r : QLAB_SOURCE_ROOT;
}

static qlab_experiment *load_shipped(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/experiments/%s", root(), name);
    qlab_experiment *e = NULL;
    qlab_err err = { 0 };
    if (qlab_experiment_load(&e, p, &err) < 0)
        fail_msg("%s", err.msg);
    return e;
}

/* An experiment from text; relative paths resolve from experiments/. */
static int load_text(qlab_experiment **e, const char *yaml, qlab_err *err)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/experiments", root());
    return qlab_experiment_load_buffer(e, yaml, strlen(yaml), "x.yaml", dir, err);
}

static int load_text_n(qlab_experiment **e, const char *yaml, size_t len, qlab_err *err)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/experiments", root());
    return qlab_experiment_load_buffer(e, yaml, len, "x.yaml", dir, err);
}

static void test_fnv1a(void **state)
{
    (void)state;
    /* The reference FNV-1a 64 test vectors. */
    assert_true(qlab_fnv1a64("", 0) == 0xcbf29ce484222325ull);
    assert_true(qlab_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(qlab_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_shipped_mlp(void **state)
{
    (void)state;
    qlab_experiment *e = load_shipped("fashion-mlp.yaml");
    assert_string_equal(e->name, "fashion-mlp");
    assert_int_equal(e->n_runs, 7 * 2 * 4 * 5);
    assert_int_equal(e->has_layers, 0); /* from the file's __metadata__ */
    assert_int_equal(e->calib_samples, 1000);
    assert_int_equal(e->calib_seed, 1);
    assert_int_equal(access(e->model_path, R_OK), 0);
    assert_int_equal(access(e->test_labels, R_OK), 0);
    qlab_run_config *runs;
    size_t n;
    assert_int_equal(qlab_experiment_expand(e, &runs, &n, NULL), 0);
    assert_int_equal(n, 280);
    assert_string_equal(runs[0].config, "bits=2 scheme=symmetric granularity=tensor "
                        "calibration=minmax activations=fp32");
    assert_string_equal(runs[7].config, "bits=2 scheme=symmetric granularity=channel "
                        "calibration=percentile:99.99 activations=fp32");
    assert_string_equal(runs[279].config, "bits=8 scheme=asymmetric granularity=group:128 "
                        "calibration=entropy activations=fp32");
    assert_int_equal(runs[279].weights.group_size, 128);
    assert_int_equal(runs[279].weights.scheme, QLAB_SCHEME_ASYMMETRIC);
    assert_null(runs[0].overrides);
    int distinct = 1, per_bits[17] = { 0 };
    for (size_t i = 0; i < n; i++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx",
                 (unsigned long long)qlab_fnv1a64(runs[i].config, strlen(runs[i].config)));
        assert_string_equal(hex, runs[i].config_hash);
        per_bits[runs[i].weights.bits]++;
        for (size_t j = 0; j < i; j++)
            distinct &= strcmp(runs[i].config_hash, runs[j].config_hash) != 0;
    }
    assert_true(distinct);
    for (int b = 2; b <= 8; b++)
        assert_int_equal(per_bits[b], 40);
    qlab_run_configs_free(runs, n);
    qlab_experiment_free(e);
}

static void test_shipped_cnn_w8a8(void **state)
{
    (void)state;
    qlab_experiment *e = load_shipped("fashion-cnn.yaml");
    assert_int_equal(e->n_runs, 5 * 2 * 3 * 3 - 2 * 3);
    assert_int_equal(e->has_layers, 1);
    assert_int_equal(e->spec.nlayers, 10);
    const qlab_layer_spec *l = e->spec.layers;
    assert_int_equal(l[0].kind, QLAB_LAYER_CONV2D);
    assert_string_equal(l[0].weight, "conv1.weight");
    assert_string_equal(l[0].bias, "conv1.bias");
    assert_int_equal(l[0].stride, 1);
    assert_int_equal(l[0].padding, 1);
    assert_int_equal(l[5].kind, QLAB_LAYER_MAXPOOL2D);
    assert_int_equal(l[5].kernel, 2);
    assert_int_equal(l[5].stride, 2); /* defaults to the kernel */
    assert_string_equal(l[9].name, "fc2");
    assert_true(e->spec.std > 0.35f && e->spec.std < 0.36f);
    assert_int_equal(e->spec.in_h, 28);
    qlab_run_config *runs;
    size_t n;
    assert_int_equal(qlab_experiment_expand(e, &runs, &n, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        assert_false(runs[i].weights.bits == 2 &&
                     runs[i].weights.granularity == QLAB_GRAN_TENSOR);
        assert_string_equal(runs[i].overrides,
                            "{\"conv1\":{\"bits\":8},\"fc2\":{\"bits\":8,"
                            "\"granularity\":\"channel\"}}");
    }
    assert_non_null(strstr(runs[0].config, " overrides=conv1:bits=8,"
                                           "fc2:bits=8/granularity=channel"));
    qlab_run_configs_free(runs, n);
    qlab_experiment_free(e);

    e = load_shipped("fashion-w8a8.yaml");
    /* fp32 activations run once whatever act_calibration says. */
    assert_int_equal(e->n_runs, 2 * 1 * 2 * 2 * (1 + 3 * 3));
    assert_int_equal(qlab_experiment_expand(e, &runs, &n, NULL), 0);
    assert_string_equal(runs[1].config, "bits=4 scheme=symmetric granularity=tensor "
                        "calibration=minmax activations=int8 act_calibration=minmax");
    assert_int_equal(runs[1].act_bits, 8);
    assert_int_equal(runs[1].act.scheme, QLAB_SCHEME_ASYMMETRIC);
    assert_int_equal(runs[2].act.calibration, QLAB_CALIB_PERCENTILE);
    qlab_run_configs_free(runs, n);
    qlab_experiment_free(e);
}

static void test_dedup_and_exclusions(void **state)
{
    (void)state;
    qlab_experiment *e;
    qlab_err err = { 0 };
    const char *yaml =
        "name: d\n"
        "model: {path: ../data/fmnist-mlp.safetensors}\n"
        "sweep:\n"
        "  bits: [4, 4, 8]\n"
        "  granularity: [tensor, channel, \"group:32\", \"group:32\"]\n"
        "  calibration: [\"percentile:99.9\", \"percentile:99.90\", mse]\n"
        "  activations: [fp32, int8]\n"
        "  act_calibration: [minmax, entropy]\n"
        "exclude:\n"
        "  - {bits: 8, activations: int8}\n"
        "  - {granularity: \"group:32\", calibration: mse}\n";
    if (load_text(&e, yaml, &err) < 0)
        fail_msg("%s", err.msg);
    /* Distinct: bits {4, 8} x granularity {tensor, channel, group:32} x calibration
     * {percentile:99.9, mse} x activations {fp32, int8+minmax, int8+entropy} = 36.
     * The first exclusion removes bits 8 with int8: 3 x 2 x 2 = 12, leaving 24; the
     * second removes group:32 with mse among those: 3 (bits 4) + 1 (bits 8) = 4 -> 20. */
    assert_int_equal(e->n_runs, 20);
    assert_int_equal(e->calib_samples, 1000);
    assert_int_equal(e->workers, 0);
    qlab_experiment_free(e);
}

static void test_locate_and_error(void **state)
{
    (void)state;
    qlab_experiment *e;
    qlab_err err = { 0 };
    const char *yaml =
        "name: loc\n"
        "model:\n"
        "  path: ../data/fmnist-mlp.safetensors\n"
        "sweep:\n"
        "  bits: [2,  4]\n"
        "overrides:\n"
        "  - layer: fc3\n"
        "    bits: fp32\n";
    assert_int_equal(load_text(&e, yaml, &err), 0);
    int line, col;
    assert_int_equal(qlab_experiment_locate(e, "sweep.bits[1]", &line, &col), 0);
    assert_int_equal(line, 5);
    assert_int_equal(col, 14);
    assert_int_equal(qlab_experiment_locate(e, "model.path", &line, &col), 0);
    assert_int_equal(line, 3);
    assert_int_equal(col, 3);
    /* Missing paths fall back to their closest parent's key. */
    assert_int_equal(qlab_experiment_locate(e, "model.layers[3].weight", &line, &col),
                     -ENOENT);
    assert_int_equal(line, 2);
    assert_int_equal(col, 1);
    assert_int_equal(qlab_experiment_error(e, &err, -ENOENT, "overrides[0].layer",
                                           "layer %s vanished", "fc3"), -ENOENT);
    assert_string_equal(err.msg, "x.yaml:7:5: layer fc3 vanished");
    assert_int_equal(e->n_overrides, 1);
    assert_int_equal(e->overrides[0].fp32, 1);
    qlab_experiment_free(e);
}

static void test_limits(void **state)
{
    (void)state;
    qlab_experiment *e;
    qlab_err err = { 0 };
    size_t big = QLAB_EXPERIMENT_MAX_BYTES + 1;
    char *buf = malloc(big + 1);
    memset(buf, '#', big);
    buf[big] = '\0';
    assert_int_equal(qlab_experiment_load_buffer(&e, buf, big, "big.yaml", NULL, &err),
                     -EFBIG);
    assert_string_equal(err.msg, "big.yaml:1:1: file is 1048577 bytes, more than the limit "
                                 "of 1048576");
    free(buf);
    qlab_err_clear(&err);
    assert_int_equal(qlab_experiment_load(&e, "/nonexistent/x.yaml", &err), -ENOENT);
    assert_string_equal(err.msg, "/nonexistent/x.yaml: No such file or directory");
}

/* Random edits of a valid file never crash the loader, and every failure is one line
 * "x.yaml:LINE:COL: message" with LINE inside the file. */
static void test_mutations(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/experiments/fashion-cnn.yaml", root());
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static char orig[16384], buf[16384];
    size_t len = fread(orig, 1, sizeof orig - 1, f);
    fclose(f);
    int lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += orig[i] == '\n';
    static const char alphabet[] = ":-[]{},#&*!|>'\"% \n\t0123456789.abcxyz";
    unsigned seed = 4242;
    int failed = 0, loaded = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, orig, len);
        int edits = 1 + iter % 3;
        for (int k = 0; k < edits; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            buf[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        qlab_experiment *e = NULL;
        qlab_err err = { 0 };
        if (load_text_n(&e, buf, len, &err) == 0) {
            loaded++;
            qlab_experiment_free(e);
            continue;
        }
        failed++;
        int line = 0, col = 0, used = 0;
        if (sscanf(err.msg, "x.yaml:%d:%d: %n", &line, &col, &used) != 2 || used == 0 ||
            !err.msg[used] || strchr(err.msg, '\n') || line < 1 || line > lines + 1 ||
            col < 1)
            fail_msg("bad message for mutation %d: %s", iter, err.msg);
    }
    /* Both outcomes happen: the test exercises errors and successes. */
    assert_true(failed > 100);
    assert_true(loaded > 10);
}

/* An experiment file into the store: one experiment row with the file, 280 pending runs
 * whose configuration columns match the expansion. */
static void test_into_store(void **state)
{
    (void)state;
    char dir[256], path[300], p[512];
    tmpdb_path(path, sizeof path, dir, sizeof dir);
    qlab_store *s;
    qlab_err err = { 0 };
    assert_int_equal(qlab_store_open(&s, path, 0, &err), 0);
    snprintf(p, sizeof p, "%s/experiments/fashion-mlp.yaml", root());
    qlab_experiment *e;
    assert_int_equal(qlab_experiment_load(&e, p, &err), 0);
    assert_non_null(e->abs_path);
    assert_null(strstr(e->model_path, ".."));
    qlab_run_config *runs;
    size_t n;
    assert_int_equal(qlab_experiment_expand(e, &runs, &n, &err), 0);
    qlab_experiment_new en;
    qlab_experiment_to_new(e, &en);
    int64_t id;
    assert_int_equal(qlab_store_create_experiment(s, &en, runs, n, &id, NULL, &err), 0);
    qlab_experiment_row row;
    assert_int_equal(qlab_store_get_experiment(s, id, &row, &err), 0);
    assert_int_equal(row.runs_total, 280);
    assert_int_equal(row.runs_pending, 280);
    assert_string_equal(row.yaml, e->yaml);
    assert_string_equal(row.config_hash, e->config_hash);
    assert_string_equal(row.yaml_path, e->abs_path);
    assert_int_equal(row.calib_seed, 1);
    qlab_experiment_row_clear(&row);
    qlab_run_row *rows;
    size_t nr;
    assert_int_equal(qlab_store_list_runs(s, id, -1, &rows, &nr, &err), 0);
    assert_int_equal(nr, 280);
    for (size_t i = 0; i < nr; i++) {
        assert_string_equal(rows[i].cfg.config, runs[i].config);
        assert_string_equal(rows[i].cfg.config_hash, runs[i].config_hash);
        assert_int_equal(rows[i].cfg.weights.bits, runs[i].weights.bits);
        assert_int_equal(rows[i].cfg.weights.scheme, runs[i].weights.scheme);
        assert_int_equal(rows[i].cfg.weights.granularity, runs[i].weights.granularity);
        assert_int_equal(rows[i].cfg.weights.group_size, runs[i].weights.group_size);
        assert_int_equal(rows[i].cfg.weights.calibration, runs[i].weights.calibration);
        assert_true(rows[i].cfg.weights.percentile == runs[i].weights.percentile);
    }
    qlab_run_rows_free(rows, nr);
    /* Submitting the same file again is a new experiment, same hashes (no clash). */
    assert_int_equal(qlab_store_create_experiment(s, &en, runs, n, &id, NULL, &err), 0);
    qlab_run_configs_free(runs, n);
    qlab_experiment_free(e);
    qlab_store_close(s);
    tmpdb_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a),
        cmocka_unit_test(test_shipped_mlp),
        cmocka_unit_test(test_shipped_cnn_w8a8),
        cmocka_unit_test(test_dedup_and_exclusions),
        cmocka_unit_test(test_locate_and_error),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_into_store),
    };
    return cmocka_run_group_tests_name("experiment", tests, NULL, NULL);
}
