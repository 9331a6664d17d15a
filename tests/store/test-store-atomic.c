/* test-store-atomic.c — a finished run is written whole or not at all.
 *
 * Linked with -Wl,--wrap=sqlite3_step: the store's every statement step goes through
 * __wrap_sqlite3_step, which fails the k-th one with SQLITE_IOERR. For every k up to the
 * number of steps a call makes, the database must be exactly as before the call. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store-test-util.h"

int __real_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_step(sqlite3_stmt *st);

static int step_count, fail_at = -1;

int __wrap_sqlite3_step(sqlite3_stmt *st)
{
    if (++step_count == fail_at)
        return SQLITE_IOERR;
    return __real_sqlite3_step(st);
}

/* A digest of everything a failed call could have touched. */
static void snapshot(sqlite3 *db, char *buf, size_t size)
{
    const char *sql =
        "SELECT (SELECT group_concat(id || status || coalesce(accuracy, '') ||"
        " coalesce(manifest, '') || attempts, ';') FROM runs) || '|' ||"
        " (SELECT group_concat(id || status || runs_done || runs_failed || runs_total ||"
        " coalesce(finished_at, ''), ';') FROM experiments) || '|' ||"
        " (SELECT count(*) FROM layer_metrics) || '|' || (SELECT count(*) FROM histograms)";
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    fail_at = -1;
    assert_int_equal(__real_sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static void test_finish_run_is_atomic(void **state)
{
    (void)state;
    char dir[256], path[300];
    tmpdb_path(path, sizeof path, dir, sizeof dir);
    qlab_store *s;
    qlab_err err = { 0 };
    assert_int_equal(qlab_store_open(&s, path, 0, &err), 0);
    sqlite3 *db = qlab_store_db(s);

    qlab_run_config runs[2];
    make_run(&runs[0], 0);
    make_run(&runs[1], 1);
    qlab_experiment_new e = { .name = "atomic", .yaml = "", .config_hash = "h",
                              .model_path = "m" };
    int64_t exp, ids[2];

    /* Creating an experiment: all of it or nothing. */
    char before[4096], after[4096];
    snapshot(db, before, sizeof before);
    int k;
    for (k = 1;; k++) {
        step_count = 0;
        fail_at = k;
        qlab_err_clear(&err);
        int r = qlab_store_create_experiment(s, &e, runs, 2, &exp, ids, &err);
        fail_at = -1;
        if (r == 0)
            break;
        assert_int_equal(r, -EIO);
        snapshot(db, after, sizeof after);
        assert_string_equal(before, after);
    }
    assert_true(k > 3); /* the experiment and two runs were each one step */
    qlab_run_config_clear(&runs[0]);
    qlab_run_config_clear(&runs[1]);

    qlab_claim c;
    assert_int_equal(qlab_store_claim_run(s, exp, &c, &err), 1);
    qlab_run_config_clear(&c.cfg);
    assert_int_equal(qlab_store_claim_run(s, exp, &c, &err), 1);
    qlab_run_config_clear(&c.cfg);

    uint64_t counts[3] = { 1, 2, 3 };
    qlab_layer_result layers[3] = {
        { .layer = "fc1", .kind = "linear", .position = 0, .bits = 4 },
        { .layer = "fc2", .kind = "linear", .position = 2, .bits = 4 },
        { .layer = "fc3", .kind = "linear", .position = 4, .bits = 0 },
    };
    qlab_hist_result hists[2] = {
        { .layer = "fc1", .tensor = "weight", .lo = -1, .hi = 1, .nbins = 3, .counts = counts },
        { .layer = "fc1", .tensor = "output", .lo = -1, .hi = 1, .nbins = 3, .counts = counts },
    };
    qlab_run_result res = { .accuracy = 80, .weight_bytes = 10, .total_bytes = 20,
                            .kernel = "scalar", .nlayers = 3, .layers = layers, .nhists = 2,
                            .hists = hists };
    snapshot(db, before, sizeof before);
    for (k = 1;; k++) {
        step_count = 0;
        fail_at = k;
        int r = qlab_store_finish_run(s, ids[1], &res, &err);
        fail_at = -1;
        if (r == 0)
            break;
        assert_int_equal(r, -EIO);
        snapshot(db, after, sizeof after);
        assert_string_equal(before, after);
    }
    /* run row + 3 layers + 2 histograms + completion check = 7 steps, each failed once */
    assert_int_equal(k, 8);
    snapshot(db, after, sizeof after);
    assert_string_not_equal(before, after);
    assert_non_null(strstr(after, "|3|2"));
    qlab_store_close(s);
    tmpdb_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finish_run_is_atomic),
    };
    return cmocka_run_group_tests_name("store-atomic", tests, NULL, NULL);
}
