/* test-store.c — the results database: schema and migrations, the frontier view, the
 * writer's transactions, crash-resume and read-only readers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "qlab-config.h"
#include "store-private.h"
#include "store-test-util.h"

typedef struct fixture {
    char dir[256], path[300];
    qlab_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tmpdb_path(f->path, sizeof f->path, f->dir, sizeof f->dir);
    qlab_err err = { 0 };
    if (qlab_store_open(&f->s, f->path, 0, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qlab_store_close(f->s);
    tmpdb_remove(f->dir);
    free(f);
    return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -999;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    buf[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* Creates an experiment with n made-up runs; returns its id. */
static int64_t new_experiment(qlab_store *s, int n, int64_t *run_ids)
{
    qlab_run_config *runs = calloc((size_t)n, sizeof *runs);
    for (int i = 0; i < n; i++)
        make_run(&runs[i], i);
    qlab_experiment_new e = { .name = "t", .yaml = "name: t\n", .config_hash = "abc",
                              .model_path = "/m.safetensors", .model_sha256 = "00ff",
                              .calib_samples = 1000, .calib_seed = 7 };
    int64_t id = 0;
    qlab_err err = { 0 };
    int r = qlab_store_create_experiment(s, &e, runs, (size_t)n, &id, run_ids, &err);
    if (r < 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < n; i++)
        qlab_run_config_clear(&runs[i]);
    free(runs);
    return id;
}

static void finish(qlab_store *s, int64_t run_id, double acc, int64_t bytes)
{
    qlab_run_result res = { .accuracy = acc, .weight_bytes = bytes - 100,
                            .total_bytes = bytes, .sqnr_db = NAN, .mse = NAN,
                            .eval_ms = 1.0, .kernel = "avx2" };
    qlab_err err = { 0 };
    if (qlab_store_finish_run(s, run_id, &res, &err) < 0)
        fail_msg("%s", err.msg);
}

static void claim_all(qlab_store *s, int64_t exp, int n)
{
    for (int i = 0; i < n; i++) {
        qlab_claim c;
        assert_int_equal(qlab_store_claim_run(s, exp, &c, NULL), 1);
        qlab_run_config_clear(&c.cfg);
    }
}

/* ---------------------------------------------------------------------------------- */

static void test_schema_fresh(void **state)
{
    fixture *f = *state;
    sqlite3 *db = qlab_store_db(f->s);
    char buf[64];
    assert_int_equal(query_int(db, "PRAGMA user_version"), QLAB_STORE_SCHEMA_VERSION);
    query_text(db, "PRAGMA journal_mode", buf, sizeof buf);
    assert_string_equal(buf, "wal");
    assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
    /* PRODUCT.md §6's fixed names. */
    const char *cols[] = {
        "experiments.id", "experiments.name", "experiments.yaml", "experiments.config_hash",
        "experiments.model_path", "experiments.model_sha256", "experiments.dataset",
        "experiments.status", "experiments.created_at", "experiments.finished_at",
        "experiments.fp32_accuracy", "experiments.fp32_bytes", "experiments.runs_total",
        "experiments.runs_done", "experiments.calib_samples", "experiments.calib_seed",
        "experiments.qlab_version", "experiments.kernel", "experiments.error",
        "runs.id", "runs.experiment_id", "runs.bits", "runs.scheme", "runs.granularity",
        "runs.group_size", "runs.calibration", "runs.percentile", "runs.act_bits",
        "runs.act_calibration", "runs.status", "runs.accuracy", "runs.accuracy_delta",
        "runs.weight_bytes", "runs.total_bytes", "runs.compression", "runs.sqnr_db",
        "runs.mse", "runs.eval_ms", "runs.kernel", "runs.simulated", "runs.config_hash",
        "runs.overrides", "runs.started_at", "runs.finished_at", "runs.error",
        "runs.manifest", "layer_metrics.run_id", "layer_metrics.layer",
        "layer_metrics.kind", "layer_metrics.params", "layer_metrics.bytes",
        "layer_metrics.bits", "layer_metrics.weight_mse", "layer_metrics.weight_sqnr_db",
        "layer_metrics.max_abs_error", "layer_metrics.cosine",
        "layer_metrics.clip_fraction", "layer_metrics.output_sqnr_db",
        "layer_metrics.output_mse", "layer_metrics.output_cosine", "histograms.run_id",
        "histograms.layer", "histograms.tensor", "histograms.lo", "histograms.hi",
        "histograms.nbins", "histograms.counts", "frontier.id", "frontier.accuracy",
        "frontier.total_bytes", "frontier.experiment_id",
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        char table[32], sql[160];
        const char *dot = strchr(cols[i], '.');
        snprintf(table, sizeof table, "%.*s", (int)(dot - cols[i]), cols[i]);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'", table,
                 dot + 1);
        if (query_int(db, sql) != 1)
            fail_msg("missing column %s", cols[i]);
    }
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"
                                   " AND name = 'frontier'"), 1);
    /* The frontier must not expose its helper columns. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_table_info('frontier')"),
                     query_int(db, "SELECT count(*) FROM pragma_table_info('runs')"));
    const char *idx[] = { "runs_by_status", "runs_by_experiment", "runs_done_by_bytes" };
    for (size_t i = 0; i < 3; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                 " AND name = '%s'", idx[i]);
        assert_int_equal(query_int(db, sql), 1);
    }
}

/* The embedded schema is schema.sql, byte for byte. */
static void test_schema_embedded(void **state)
{
    (void)state;
    const char *root = getenv("QLAB_SOURCE_ROOT");
    char p[512];
    snprintf(p, sizeof p, "%s/daemon/store/schema.sql", root ? root : QLAB_SOURCE_ROOT);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, qlab_store_schema_sql);
}

static void test_migrations(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    const qlab_store_migration steps[] = {
        { 1, "CREATE TABLE a (x INTEGER);" },
        { 2, "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a VALUES (1, 'one');" },
        { 3, "CREATE TABLE c (z); SELECT no_such_function();" },
    };
    qlab_err err = { 0 };
    assert_int_equal(qlab_store_migrate_steps(db, steps, 2, &err), 2);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a WHERE y = 'one'"), 1);
    /* Re-running applies nothing (the INSERT of step 2 would double the row). */
    assert_int_equal(qlab_store_migrate_steps(db, steps, 2, &err), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
    /* A failing step leaves the database at its old version, with nothing of the step. */
    assert_true(qlab_store_migrate_steps(db, steps, 3, &err) < 0);
    assert_non_null(strstr(err.msg, "migration to schema version 3"));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'c'"), 0);
    /* A newer database is refused. */
    qlab_err_clear(&err);
    assert_int_equal(qlab_store_migrate_steps(db, steps, 1, &err), -EPROTONOSUPPORT);
    assert_string_equal(err.msg, "database schema version 2 is newer than this qlab's (1)");
    sqlite3_close(db);
}

static void test_open_newer_and_reader(void **state)
{
    fixture *f = *state;
    qlab_err err = { 0 };
    qlab_store *r;
    /* A reader of an empty file is told it is no qlab database. */
    char dir[256], path[300];
    tmpdb_path(path, sizeof path, dir, sizeof dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "CREATE TABLE x (y)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(qlab_store_open(&r, path, QLAB_STORE_READONLY, &err), -ENOENT);
    /* A writer refuses a database from a newer qlab. */
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    qlab_err_clear(&err);
    assert_int_equal(qlab_store_open(&r, path, 0, &err), -EPROTONOSUPPORT);
    assert_non_null(strstr(err.msg, "version 99 is newer"));
    tmpdb_remove(dir);

    /* A reader beside the writer sees committed data and cannot write. */
    int64_t exp = new_experiment(f->s, 3, NULL);
    assert_int_equal(qlab_store_open(&r, f->path, QLAB_STORE_READONLY, &err), 0);
    qlab_experiment_row *rows;
    size_t n;
    assert_int_equal(qlab_store_list_experiments(r, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, exp);
    assert_int_equal(rows[0].runs_total, 3);
    assert_int_equal(rows[0].runs_pending, 3);
    assert_int_equal(rows[0].calib_seed, 7);
    assert_string_equal(rows[0].qlab_version, QLAB_VERSION);
    qlab_experiment_rows_free(rows, n);
    qlab_claim c;
    assert_int_equal(qlab_store_claim_run(r, 0, &c, &err), -EROFS);
    qlab_store_close(r);
}

/* Brute-force Pareto front: i is on it when no j has acc >= and bytes <=, one strict. */
static int dominated(const double *acc, const int64_t *bytes, int n, int i)
{
    for (int j = 0; j < n; j++) {
        if (j != i && acc[j] >= acc[i] && bytes[j] <= bytes[i] &&
            (acc[j] > acc[i] || bytes[j] < bytes[i]))
            return 1;
    }
    return 0;
}

static void test_frontier_hand_made(void **state)
{
    fixture *f = *state;
    /* (accuracy, bytes) of runs 0..8: 0 and 1 are dominated by 2; 2 and 3 tie (neither
     * is strictly better: both kept); 4 is alone at the small end; 5 is dominated by 6,
     * of equal size and better; 7 and 8 tie at the top. Run 9 fails and run 10 stays
     * pending: neither may appear. */
    const double acc[] = { 80, 85, 88, 88, 60, 70, 75, 99, 99 };
    const int64_t bytes[] = { 500, 400, 300, 300, 100, 200, 200, 1000, 1000 };
    int64_t ids[11];
    int64_t exp = new_experiment(f->s, 11, ids);
    claim_all(f->s, exp, 10);
    for (int i = 0; i < 9; i++)
        finish(f->s, ids[i], acc[i], bytes[i]);
    assert_int_equal(qlab_store_fail_run(f->s, ids[9], "boom", NULL), 0);
    /* Another experiment's better run must not shadow this one's. */
    int64_t other[1];
    int64_t exp2 = new_experiment(f->s, 1, other);
    claim_all(f->s, exp2, 1);
    finish(f->s, other[0], 100, 1);

    qlab_run_row *rows;
    size_t n;
    assert_int_equal(qlab_store_frontier(f->s, exp, &rows, &n, NULL), 0);
    /* Expected, smallest first: e(100, 60), g(200, 75), c and d (300, 88), h and i
     * (1000, 99). */
    const int64_t want[] = { ids[4], ids[6], ids[2], ids[3], ids[7], ids[8] };
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rows[i].id, want[i]);
    qlab_run_rows_free(rows, n);
    assert_int_equal(qlab_store_frontier(f->s, exp2, &rows, &n, NULL), 0);
    assert_int_equal(n, 1);
    qlab_run_rows_free(rows, n);
}

static void test_frontier_random(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    double acc[N];
    int64_t bytes[N], ids[N];
    int64_t exp = new_experiment(f->s, N, ids);
    claim_all(f->s, exp, N);
    srand(12345);
    for (int i = 0; i < N; i++) {
        /* Coarse values so that ties in both coordinates happen often. */
        acc[i] = 50 + rand() % 40;
        bytes[i] = 1000 * (1 + rand() % 30);
        finish(f->s, ids[i], acc[i], bytes[i]);
    }
    int expect = 0;
    for (int i = 0; i < N; i++)
        expect += !dominated(acc, bytes, N, i);
    qlab_run_row *rows;
    size_t n;
    assert_int_equal(qlab_store_frontier(f->s, exp, &rows, &n, NULL), 0);
    assert_int_equal(n, expect);
    for (size_t k = 0; k < n; k++) {
        int i = (int)(rows[k].id - ids[0]);
        assert_false(dominated(acc, bytes, N, i));
        assert_true(close_to(rows[k].accuracy, acc[i], 0));
    }
    qlab_run_rows_free(rows, n);
}

static void test_lifecycle(void **state)
{
    fixture *f = *state;
    qlab_err err = { 0 };
    int64_t ids[3];
    int64_t exp = new_experiment(f->s, 3, ids);
    sqlite3 *db = qlab_store_db(f->s);
    assert_int_equal(qlab_store_set_baseline(f->s, exp, 88.5, 1000000, "cafe", "avx2", &err),
                     0);

    qlab_claim c;
    assert_int_equal(qlab_store_claim_run(f->s, exp, &c, &err), 1);
    assert_int_equal(c.run_id, ids[0]);
    assert_int_equal(c.attempts, 1);
    assert_int_equal(c.cfg.weights.bits, 2);
    assert_int_equal(c.cfg.weights.granularity, QLAB_GRAN_GROUP);
    assert_int_equal(c.cfg.weights.group_size, 32);
    assert_int_equal(c.cfg.weights.calibration, QLAB_CALIB_PERCENTILE);
    assert_true(close_to(c.cfg.weights.percentile, 99.9, 0));
    assert_int_equal(c.cfg.act_bits, 0);
    assert_string_equal(c.cfg.config, "run-0");
    assert_string_equal(c.cfg.config_hash, "0000000000001000");
    qlab_run_config_clear(&c.cfg);

    uint64_t counts[4] = { 1, 300, 0x1ffffffffull, 7 };
    qlab_layer_result layers[2] = {
        { .layer = "fc1", .kind = "linear", .position = 1, .params = 200704, .bytes = 50000,
          .bits = 2, .scheme = QLAB_SCHEME_SYMMETRIC, .granularity = QLAB_GRAN_GROUP,
          .group_size = 32, .weight_mse = 0.5, .weight_sqnr_db = 12.5, .max_abs_error = 0.1,
          .cosine = 0.99, .clip_fraction = 0.001, .output_sqnr_db = 10, .output_mse = 0.2,
          .output_cosine = NAN },
        { .layer = "fc2", .kind = "linear", .position = 3, .params = 32768, .bytes = 131072,
          .bits = 0, .weight_mse = NAN, .weight_sqnr_db = NAN, .max_abs_error = NAN,
          .cosine = NAN, .clip_fraction = NAN, .output_sqnr_db = NAN, .output_mse = NAN,
          .output_cosine = NAN },
    };
    qlab_hist_result hist = { .layer = "fc1", .tensor = "weight", .lo = -0.5, .hi = 0.5,
                              .nbins = 4, .counts = counts };
    qlab_run_result res = { .accuracy = 80.25, .weight_bytes = 50000, .total_bytes = 250000,
                            .weight_params = 200000, .sqnr_db = 11, .mse = 0.01,
                            .eval_ms = 12.5, .kernel = "avx2", .simulated = 0, .nlayers = 2,
                            .layers = layers, .nhists = 1, .hists = &hist };
    assert_int_equal(qlab_store_finish_run(f->s, ids[0], &res, &err), 0);
    /* A second finish of the same run is refused. */
    qlab_err_clear(&err);
    assert_int_equal(qlab_store_finish_run(f->s, ids[0], &res, &err), -ESTALE);
    assert_non_null(strstr(err.msg, "is done, not running"));

    char sql[512], buf[512];
    snprintf(sql, sizeof sql, "SELECT accuracy_delta * 1000, compression * 1000,"
             " bits_per_weight * 1000, status, kernel FROM runs WHERE id = %lld",
             (long long)ids[0]);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(close_to(sqlite3_column_double(st, 0), -8250, 1e-6));  /* 80.25 - 88.5 */
    assert_true(close_to(sqlite3_column_double(st, 1), 4000, 1e-6));   /* 1e6 / 250000 */
    assert_true(close_to(sqlite3_column_double(st, 2), 2000, 1e-6));   /* 8*50000/200000 */
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "done");
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "avx2");
    sqlite3_finalize(st);

    snprintf(sql, sizeof sql, "SELECT json_extract(manifest, '$.qlab_version') || ' ' ||"
             " json_extract(manifest, '$.kernel') || ' ' || json_extract(manifest,"
             " '$.model_sha256') || ' ' || json_extract(manifest, '$.calib_seed') || ' ' ||"
             " json_extract(manifest, '$.calib_samples') || ' ' || json_extract(manifest,"
             " '$.config_hash') FROM runs WHERE id = %lld", (long long)ids[0]);
    query_text(db, sql, buf, sizeof buf);
    assert_string_equal(buf, QLAB_VERSION " avx2 cafe 7 1000 0000000000001000");

    snprintf(sql, sizeof sql, "SELECT group_concat(layer || ':' || position || ':' ||"
             " coalesce(bits, 'fp32') || ':' || coalesce(granularity, '-') || ':' ||"
             " coalesce(output_cosine, 'null'), ' ') FROM (SELECT * FROM layer_metrics"
             " WHERE run_id = %lld ORDER BY position)", (long long)ids[0]);
    query_text(db, sql, buf, sizeof buf);
    assert_string_equal(buf, "fc1:1:2:group:null fc2:3:fp32:-:null");

    /* Histogram counts: u32 little-endian, saturated. */
    snprintf(sql, sizeof sql, "SELECT hex(counts) || ' ' || nbins || ' ' || lo || ' ' || hi"
             " FROM histograms WHERE run_id = %lld", (long long)ids[0]);
    query_text(db, sql, buf, sizeof buf);
    assert_string_equal(buf, "010000002C010000FFFFFFFF07000000 4 -0.5 0.5");

    /* Read back through the API. */
    qlab_layer_row *lr;
    size_t nl;
    assert_int_equal(qlab_store_layer_metrics(f->s, ids[0], &lr, &nl, &err), 0);
    assert_int_equal(nl, 2);
    assert_string_equal(lr[0].layer, "fc1");
    assert_int_equal(lr[0].bits, 2);
    assert_string_equal(lr[0].granularity, "group");
    assert_int_equal(lr[0].group_size, 32);
    assert_true(close_to(lr[0].weight_sqnr_db, 12.5, 0));
    assert_true(isnan(lr[0].output_cosine));
    assert_int_equal(lr[1].bits, 0);
    assert_string_equal(lr[1].scheme, "");
    assert_int_equal(lr[1].params, 32768);
    free(lr);
    qlab_hist_row *hr;
    size_t nh;
    assert_int_equal(qlab_store_histograms(f->s, ids[0], &hr, &nh, &err), 0);
    assert_int_equal(nh, 1);
    assert_string_equal(hr[0].tensor, "weight");
    assert_int_equal(hr[0].nbins, 4);
    assert_int_equal(hr[0].counts[1], 300);
    assert_int_equal(hr[0].counts[2], UINT32_MAX);
    assert_true(close_to(hr[0].lo, -0.5, 0));
    qlab_hist_rows_free(hr, nh);

    /* Failure, then cancellation of the rest. */
    assert_int_equal(qlab_store_claim_run(f->s, 0, &c, &err), 1);
    qlab_run_config_clear(&c.cfg);
    assert_int_equal(qlab_store_fail_run(f->s, c.run_id, "NaN in fc2.weight", &err), 0);
    assert_int_equal(qlab_store_cancel_experiment(f->s, exp, &err), 1);
    assert_int_equal(qlab_store_cancel_experiment(f->s, exp, &err), -EALREADY);
    assert_int_equal(qlab_store_claim_run(f->s, 0, &c, &err), 0);

    qlab_experiment_row e;
    assert_int_equal(qlab_store_get_experiment(f->s, exp, &e, &err), 0);
    assert_int_equal(e.status, QLAB_STATUS_CANCELLED);
    assert_int_equal(e.runs_total, 3);
    assert_int_equal(e.runs_done, 1);
    assert_int_equal(e.runs_failed, 1);
    assert_int_equal(e.runs_cancelled, 1);
    assert_true(close_to(e.fp32_accuracy, 88.5, 0));
    assert_string_equal(e.model_sha256, "cafe");
    assert_string_equal(e.yaml, "name: t\n");
    assert_true(e.started_at[0] && e.finished_at[0]);
    qlab_experiment_row_clear(&e);
    assert_int_equal(qlab_store_get_experiment(f->s, 999, &e, &err), -ENOENT);

    qlab_run_row *rows;
    size_t n;
    assert_int_equal(qlab_store_list_runs(f->s, exp, QLAB_STATUS_FAILED, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].error, "NaN in fc2.weight");
    assert_true(isnan(rows[0].accuracy));
    qlab_run_rows_free(rows, n);
    assert_int_equal(qlab_store_list_runs(f->s, exp, -1, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].status, QLAB_STATUS_DONE);
    assert_int_equal(rows[2].status, QLAB_STATUS_CANCELLED);
    qlab_run_rows_free(rows, n);
}

static void test_experiment_done_when_all_finished(void **state)
{
    fixture *f = *state;
    int64_t ids[2];
    int64_t exp = new_experiment(f->s, 2, ids);
    claim_all(f->s, exp, 2);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT status FROM experiments WHERE id = %lld",
             (long long)exp);
    char buf[32];
    finish(f->s, ids[0], 50, 10);
    query_text(qlab_store_db(f->s), sql, buf, sizeof buf);
    assert_string_equal(buf, "running");
    assert_int_equal(qlab_store_fail_run(f->s, ids[1], "x", NULL), 0);
    query_text(qlab_store_db(f->s), sql, buf, sizeof buf);
    assert_string_equal(buf, "done");
    /* A baseline measured after the runs finished still fills their derived columns. */
    assert_int_equal(qlab_store_set_baseline(f->s, exp, 60, 400, NULL, NULL, NULL), 0);
    snprintf(sql, sizeof sql, "SELECT accuracy_delta * 100 + compression FROM runs"
             " WHERE id = %lld", (long long)ids[0]);
    assert_int_equal(query_int(qlab_store_db(f->s), sql), -1000 + 40);
}

/* A daemon killed with runs in flight: they go back to pending and run again, once. */
static void test_resume(void **state)
{
    fixture *f = *state;
    qlab_err err = { 0 };
    int64_t ids[5];
    int64_t exp = new_experiment(f->s, 5, ids);
    claim_all(f->s, exp, 2);
    finish(f->s, ids[0], 70, 100);
    /* "Crash": close with run 1 still running, reopen. */
    qlab_store_close(f->s);
    assert_int_equal(qlab_store_open(&f->s, f->path, 0, &err), 0);
    assert_int_equal(qlab_store_requeue_running(f->s, &err), 1);
    assert_int_equal(qlab_store_requeue_running(f->s, &err), 0);
    qlab_claim c;
    assert_int_equal(qlab_store_claim_run(f->s, 0, &c, &err), 1);
    assert_int_equal(c.run_id, ids[1]);
    assert_int_equal(c.attempts, 2);
    qlab_run_config_clear(&c.cfg);
    /* The finished run is never handed out again. */
    for (int i = 2; i < 5; i++) {
        assert_int_equal(qlab_store_claim_run(f->s, 0, &c, &err), 1);
        assert_int_equal(c.run_id, ids[i]);
        qlab_run_config_clear(&c.cfg);
    }
    assert_int_equal(qlab_store_claim_run(f->s, 0, &c, &err), 0);

    /* The same configuration cannot be inserted twice in one experiment... */
    sqlite3 *db = qlab_store_db(f->s);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO runs (experiment_id, seq, bits, scheme,"
             " granularity, calibration, config, config_hash) VALUES (%lld, 9, 4,"
             " 'symmetric', 'tensor', 'minmax', 'x', '0000000000001000')", (long long)exp);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL) & 0xff, SQLITE_CONSTRAINT);
    /* ...and a grid with a duplicate is refused whole: no experiment, no run. */
    int64_t before = query_int(db, "SELECT count(*) FROM runs");
    qlab_run_config runs[3];
    for (int i = 0; i < 3; i++)
        make_run(&runs[i], i);
    snprintf(runs[2].config_hash, sizeof runs[2].config_hash, "%s", runs[0].config_hash);
    qlab_experiment_new e = { .name = "dup", .yaml = "", .config_hash = "h",
                              .model_path = "m" };
    int64_t id = -5;
    qlab_err_clear(&err);
    assert_int_equal(qlab_store_create_experiment(f->s, &e, runs, 3, &id, NULL, &err),
                     -EEXIST);
    assert_int_equal(id, -5);
    assert_non_null(strstr(err.msg, "run 2 (run-2)"));
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), before);
    assert_int_equal(query_int(db, "SELECT count(*) FROM experiments WHERE name = 'dup'"), 0);
    for (int i = 0; i < 3; i++)
        qlab_run_config_clear(&runs[i]);
    char ok[16];
    query_text(db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_fresh, setup, teardown),
        cmocka_unit_test(test_schema_embedded),
        cmocka_unit_test(test_migrations),
        cmocka_unit_test_setup_teardown(test_open_newer_and_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frontier_hand_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frontier_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_done_when_all_finished, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
