/* test-fault-engine.c — the real engine, in process, with faults injected through
 * -Wl,--wrap= (see meson.build): sqlite3_step failing with SQLITE_FULL and SQLITE_BUSY
 * inside qlab_store_finish_run, malloc/calloc failing inside a run and inside an
 * experiment's set-up, and the model file disappearing after the experiment was submitted
 * (before its set-up, and mid-sweep). Each time: no crash, no partial row (a run is 'done'
 * with all its layer metrics and histograms, or 'failed' with an error and none of them),
 * PRAGMA integrity_check ok, and the engine goes on serving the next experiment.
 *
 * The test set is cut to 512 images (written as plain IDX files) to keep runs short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine-private.h"
#include "fault-util.h"
#include "qlab-engine.h"
#include "qlab-model.h"

/* ---- the wrapped functions ---------------------------------------------------------- */

int __real_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_step(sqlite3_stmt *st);
int __real_qlab_store_finish_run(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                                 qlab_err *err);
int __wrap_qlab_store_finish_run(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                                 qlab_err *err);
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
int __real_qlab_run_eval(qlab_exp_ctx *ctx, const qlab_run_config *rc, int hist_bins,
                         qlab_run_output *out, qlab_err *err);
int __wrap_qlab_run_eval(qlab_exp_ctx *ctx, const qlab_run_config *rc, int hist_bins,
                         qlab_run_output *out, qlab_err *err);
int __real_qlab_exp_ctx_new(qlab_exp_ctx **out, qlab_store *store, int64_t experiment_id,
                            qlab_err *err);
int __wrap_qlab_exp_ctx_new(qlab_exp_ctx **out, qlab_store *store, int64_t experiment_id,
                            qlab_err *err);

#define MAX_CALLS 64
enum { STEP_OK, STEP_FULL, STEP_BUSY };
enum { AT_FIRST, AT_MIDDLE, AT_LAST };
typedef struct step_fault {
    int kind;                     /* STEP_* */
    int at;                       /* AT_*, relative to the steps of an unfaulted call */
} step_fault;

/* finish_run faults, by call index (one experiment at a time, one worker). */
static step_fault finish_plan[MAX_CALLS];
static _Atomic int finish_calls;
static int finish_steps[MAX_CALLS];   /* sqlite3_step calls each finish_run made */
static int finish_fired[MAX_CALLS];
static _Thread_local int in_finish = -1;  /* call index while inside finish_run */
static _Thread_local int step_no;

/* malloc faults: inside the n-th qlab_run_eval (or qlab_exp_ctx_new), the k-th allocation
 * fails (-1: none). */
static int eval_fail_at[MAX_CALLS];
static int eval_fired[MAX_CALLS];
static _Atomic int eval_calls;
static int ctx_fail_at = -1;
static int ctx_fired;
static _Thread_local int alloc_countdown = -1;
static _Thread_local int *alloc_fired;
static _Thread_local int alloc_window;    /* 1 inside a wrapped eval / set-up */
static _Thread_local int alloc_seen;      /* allocations seen in the current window */
static int eval_allocs[MAX_CALLS];        /* allocations of each clean eval */
static int ctx_allocs;                    /* allocations of the last set-up */

/* The model vanishes: before the next context build, or before the n-th eval. */
static char vanish_path[512];
static int vanish_before_ctx;
static int vanish_before_eval = -1;

static int target_step(int call, int at)
{
    int n = finish_steps[0] > 0 ? finish_steps[0] : 1;
    (void)call;
    return at == AT_FIRST ? 0 : at == AT_MIDDLE ? n / 2 : n - 1;
}

int __wrap_sqlite3_step(sqlite3_stmt *st)
{
    if (in_finish >= 0) {
        const step_fault *f = &finish_plan[in_finish];
        int no = step_no++;
        if (f->kind != STEP_OK && no == target_step(in_finish, f->at)) {
            finish_fired[in_finish] = 1;
            return f->kind == STEP_FULL ? SQLITE_FULL : SQLITE_BUSY;
        }
    }
    return __real_sqlite3_step(st);
}

int __wrap_qlab_store_finish_run(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                                 qlab_err *err)
{
    int call = finish_calls++;
    if (call >= MAX_CALLS)
        return __real_qlab_store_finish_run(s, run_id, res, err);
    in_finish = call;
    step_no = 0;
    int r = __real_qlab_store_finish_run(s, run_id, res, err);
    finish_steps[call] = step_no;
    in_finish = -1;
    return r;
}

static int alloc_should_fail(void)
{
    if (alloc_window)
        alloc_seen++;
    if (alloc_countdown < 0)
        return 0;
    if (alloc_countdown-- == 0) {
        *alloc_fired = 1;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    if (alloc_should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (alloc_should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

int __wrap_qlab_run_eval(qlab_exp_ctx *ctx, const qlab_run_config *rc, int hist_bins,
                         qlab_run_output *out, qlab_err *err)
{
    int call = eval_calls++;
    if (call == vanish_before_eval)
        assert_int_equal(unlink(vanish_path), 0);
    if (call < MAX_CALLS && eval_fail_at[call] >= 0) {
        alloc_countdown = eval_fail_at[call];
        alloc_fired = &eval_fired[call];
    }
    alloc_window = 1;
    alloc_seen = 0;
    int r = __real_qlab_run_eval(ctx, rc, hist_bins, out, err);
    alloc_window = 0;
    alloc_countdown = -1;
    if (call < MAX_CALLS)
        eval_allocs[call] = alloc_seen;
    return r;
}

int __wrap_qlab_exp_ctx_new(qlab_exp_ctx **out, qlab_store *store, int64_t experiment_id,
                            qlab_err *err)
{
    if (vanish_before_ctx) {
        vanish_before_ctx = 0;
        assert_int_equal(unlink(vanish_path), 0);
    }
    if (ctx_fail_at >= 0) {
        alloc_countdown = ctx_fail_at;
        alloc_fired = &ctx_fired;
        ctx_fail_at = -1;
    }
    alloc_window = 1;
    alloc_seen = 0;
    int r = __real_qlab_exp_ctx_new(out, store, experiment_id, err);
    alloc_window = 0;
    alloc_countdown = -1;
    ctx_allocs = alloc_seen;
    return r;
}

/* An error line must say something: not empty, not ending in a dangling "prefix: ".
 * With -DSTRICT_MESSAGES (test fault-engine-messages, expected to fail until fixed) this
 * is asserted; otherwise poor lines are only printed. */
static void check_message(const char *what, const char *msg)
{
    size_t n = strlen(msg);
    int poor = n == 0 || (n >= 1 && msg[n - 1] == ' ') || (n >= 1 && msg[n - 1] == ':');
    if (poor)
        print_message("POOR MESSAGE (%s): '%s'\n", what, msg);
#ifdef STRICT_MESSAGES
    assert_false(poor);
#endif
}

/* ---- fixture -------------------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char images[256], labels[256], db[256];
    qlab_store *store;
    qlab_engine *engine;
} fixture;

static void reset_faults(void)
{
    memset(finish_plan, 0, sizeof finish_plan);
    memset(finish_fired, 0, sizeof finish_fired);
    memset(eval_fired, 0, sizeof eval_fired);
    for (int i = 0; i < MAX_CALLS; i++)
        eval_fail_at[i] = -1;
    finish_calls = 0;
    eval_calls = 0;
    ctx_fail_at = -1;
    ctx_fired = 0;
    vanish_before_ctx = 0;
    vanish_before_eval = -1;
}

static void write_idx(const char *path, const uint8_t *data, int ndim, const uint32_t *dims)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t magic[4] = { 0, 0, 8, (uint8_t)ndim };
    fwrite(magic, 1, 4, f);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        uint8_t be[4] = { (uint8_t)(dims[i] >> 24), (uint8_t)(dims[i] >> 16),
                          (uint8_t)(dims[i] >> 8), (uint8_t)dims[i] };
        fwrite(be, 1, 4, f);
        n *= dims[i];
    }
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/qlab-fault-engine-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    qlab_dataset *ds = NULL;
    qlab_err err = { 0 };
    assert_int_equal(qlab_dataset_load_fmnist(&ds, NULL, 0, &err), 0);
    const uint32_t n = 512;
    uint32_t idims[3] = { n, (uint32_t)ds->h, (uint32_t)ds->w }, ldims[1] = { n };
    snprintf(f->images, sizeof f->images, "%s/t-images", f->dir);
    snprintf(f->labels, sizeof f->labels, "%s/t-labels", f->dir);
    write_idx(f->images, ds->images, 3, idims);
    write_idx(f->labels, ds->labels, 1, ldims);
    qlab_dataset_free(ds);
    snprintf(f->db, sizeof f->db, "%s/qlab.db", f->dir);
    assert_int_equal(qlab_store_open(&f->store, f->db, 0, &err), 0);
    qlab_engine_opts o = { .workers = 1, .only_own = 1 };
    assert_int_equal(qlab_engine_new(&f->engine, f->store, &o, &err), 0);
    reset_faults();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qlab_engine_free(f->engine);
    qlab_store_close(f->store);
    fault_rmtree(f->dir);
    free(f);
    return 0;
}

/* Submits an experiment on `model` (NULL: the shipped MLP) over `bits`, waits for it. */
static int64_t run_experiment(fixture *f, const char *name, const char *model,
                              const char *bits)
{
    char model_path[512], yaml[2048];
    if (model)
        snprintf(model_path, sizeof model_path, "%s", model);
    else
        snprintf(model_path, sizeof model_path, "%s/data/fmnist-mlp.safetensors",
                 fault_source_root());
    int n = snprintf(yaml, sizeof yaml,
                     "name: %s\nmodel:\n  path: %s\ndataset:\n  test_images: %s\n"
                     "  test_labels: %s\nsweep:\n  bits: %s\n  scheme: [symmetric]\n"
                     "  granularity: [channel]\n  calibration: [minmax]\n",
                     name, model_path, f->images, f->labels, bits);
    int64_t id = 0;
    qlab_err err = { 0 };
    int r = qlab_engine_submit_text(f->engine, yaml, (size_t)n, f->dir, "fault.yaml", &id,
                                    &err);
    if (r < 0)
        fail_msg("submit: %s", err.msg);
    assert_int_equal(qlab_engine_wait(f->engine, id), 0);
    return id;
}

typedef struct run_state {
    char status[16];
    char error[512];
    int64_t metrics, hists;
} run_state;

/* Status, error and row counts of the seq-th run of experiment id. */
static void get_run(fixture *f, int64_t id, int seq, run_state *rs)
{
    sqlite3 *db = qlab_store_db(f->store);
    sqlite3_stmt *st = NULL;
    const char *sql =
        "SELECT r.status, coalesce(r.error, ''),"
        " (SELECT count(*) FROM layer_metrics m WHERE m.run_id = r.id),"
        " (SELECT count(*) FROM histograms h WHERE h.run_id = r.id)"
        " FROM runs r WHERE r.experiment_id = ? AND r.seq = ?";
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, seq);
    assert_int_equal(__real_sqlite3_step(st), SQLITE_ROW);
    snprintf(rs->status, sizeof rs->status, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(rs->error, sizeof rs->error, "%s", (const char *)sqlite3_column_text(st, 1));
    rs->metrics = sqlite3_column_int64(st, 2);
    rs->hists = sqlite3_column_int64(st, 3);
    sqlite3_finalize(st);
}

/* A run is whole: done with a metrics row per weighted layer (the MLP has 3) and its
 * histograms, or failed/running with an error and nothing else. */
static void assert_whole(const run_state *rs)
{
    if (!strcmp(rs->status, "done")) {
        assert_int_equal(rs->metrics, 3);
        assert_true(rs->hists > 0);
    } else {
        assert_int_equal(rs->metrics, 0);
        assert_int_equal(rs->hists, 0);
    }
}

static void experiment_state(fixture *f, int64_t id, char *status, size_t n, char *error,
                             size_t en)
{
    qlab_experiment_row row = { 0 };
    assert_int_equal(qlab_store_get_experiment(f->store, id, &row, NULL), 0);
    snprintf(status, n, "%s", qlab_status_name(row.status));
    snprintf(error, en, "%s", row.error ? row.error : "");
    qlab_experiment_row_clear(&row);
}

/* The engine still serves: a clean one-run experiment finishes with its metrics. */
static void assert_still_serving(fixture *f, const char *name)
{
    reset_faults();
    int64_t id = run_experiment(f, name, NULL, "[8]");
    run_state rs;
    get_run(f, id, 0, &rs);
    assert_string_equal(rs.status, "done");
    assert_whole(&rs);
    assert_true(fault_integrity_ok(qlab_store_db(f->store)));
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_step_fails_in_finish_run(void **state)
{
    fixture *f = *state;
    /* call 0 counts the steps of a clean finish_run; then FULL / BUSY at its first,
     * middle and last step */
    finish_plan[1] = (step_fault){ STEP_FULL, AT_FIRST };
    finish_plan[2] = (step_fault){ STEP_FULL, AT_MIDDLE };
    finish_plan[3] = (step_fault){ STEP_FULL, AT_LAST };
    finish_plan[4] = (step_fault){ STEP_BUSY, AT_FIRST };
    finish_plan[5] = (step_fault){ STEP_BUSY, AT_LAST };
    int64_t id = run_experiment(f, "step-faults", NULL, "[2, 3, 4, 5, 6, 7, 8]");
    assert_true(finish_steps[0] >= 2);
    for (int seq = 0; seq < 7; seq++) {
        run_state rs;
        get_run(f, id, seq, &rs);
        print_message("run %d: fault %d/%d fired %d -> %s (%lld metrics) %s\n", seq,
                      finish_plan[seq].kind, finish_plan[seq].at, finish_fired[seq], rs.status,
                      (long long)rs.metrics, rs.error);
        assert_whole(&rs);
        if (finish_plan[seq].kind == STEP_OK) {
            assert_string_equal(rs.status, "done");
        } else {
            assert_true(finish_fired[seq]);
            assert_string_equal(rs.status, "failed");
            assert_true(rs.error[0] != '\0');
        }
    }
    assert_true(fault_integrity_ok(qlab_store_db(f->store)));
    assert_still_serving(f, "after-step-faults");
}

static void test_malloc_fails_in_run(void **state)
{
    fixture *f = *state;
    /* a clean 8-run sweep counts the allocations of each run ... */
    const char *grid = "[2, 3, 4, 5, 6, 7, 8, 16]";
    run_experiment(f, "malloc-count", NULL, grid);
    int most = 0;
    for (int i = 0; i < 8; i++)
        most = eval_allocs[i] > most ? eval_allocs[i] : most;
    print_message("allocations per run: up to %d\n", most);
    assert_true(most > 0);
    /* ... then the same sweep fails one allocation per run, the k-th, k covering every
     * allocation from 0 to `most` over a few sweeps */
    int stride = 1, failed = 0, fired_total = 0;
    for (int k0 = 0, round = 0; k0 <= most; k0 += 8 * stride, round++) {
        reset_faults();
        for (int i = 0; i < 8; i++)
            eval_fail_at[i] = k0 + i * stride;
        char name[32];
        snprintf(name, sizeof name, "malloc-in-run-%d", round);
        int64_t id = run_experiment(f, name, NULL, grid);
        for (int seq = 0; seq < 8; seq++) {
            run_state rs;
            get_run(f, id, seq, &rs);
            assert_whole(&rs);
            fired_total += eval_fired[seq];
            if (strcmp(rs.status, "done") != 0) {
                assert_string_equal(rs.status, "failed");
                check_message("run with a failed allocation", rs.error);
                failed++;
            } else if (eval_fired[seq]) {
                print_message("allocation %d of run %d failed, run still done\n",
                              eval_fail_at[seq], seq);
            }
        }
        assert_true(fault_integrity_ok(qlab_store_db(f->store)));
    }
    print_message("%d allocations failed, %d runs failed cleanly\n", fired_total, failed);
    assert_true(failed >= 1);
    assert_still_serving(f, "after-malloc-in-run");
}

static void test_malloc_fails_in_setup(void **state)
{
    fixture *f = *state;
    run_experiment(f, "setup-count", NULL, "[8]");
    int total = ctx_allocs;
    print_message("allocations in an experiment's set-up: %d (each one fails once)\n",
                  total);
    assert_true(total > 0);
    int stride = 1;
    for (int k = 0; k <= total; k += stride) {
        reset_faults();
        ctx_fail_at = k;
        char name[32];
        snprintf(name, sizeof name, "malloc-in-setup-%d", k);
        int64_t id = run_experiment(f, name, NULL, "[4, 8]");
        char status[16], error[512];
        experiment_state(f, id, status, sizeof status, error, sizeof error);
        for (int seq = 0; seq < 2; seq++) {
            run_state rs;
            get_run(f, id, seq, &rs);
            assert_whole(&rs);
            if (!strcmp(status, "failed"))
                assert_string_not_equal(rs.status, "done");
        }
        if (ctx_fired && strcmp(status, "done") != 0) {
            assert_string_equal(status, "failed");
            check_message("set-up with a failed allocation", error);
        }
        assert_true(fault_integrity_ok(qlab_store_db(f->store)));
    }
    assert_still_serving(f, "after-malloc-in-setup");
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void test_model_vanishes(void **state)
{
    fixture *f = *state;
    char shipped[512];
    snprintf(shipped, sizeof shipped, "%s/data/fmnist-mlp.safetensors", fault_source_root());
    snprintf(vanish_path, sizeof vanish_path, "%s/model.safetensors", f->dir);

    /* deleted after the submission, before the engine reads it */
    copy_file(shipped, vanish_path);
    vanish_before_ctx = 1;
    int64_t id = run_experiment(f, "vanish-before", vanish_path, "[4, 8]");
    char status[16], error[512];
    experiment_state(f, id, status, sizeof status, error, sizeof error);
    print_message("model deleted before set-up -> experiment %s: %s\n", status, error);
    assert_string_equal(status, "failed");
    assert_non_null(strstr(error, vanish_path));
    for (int seq = 0; seq < 2; seq++) {
        run_state rs;
        get_run(f, id, seq, &rs);
        assert_whole(&rs);
        assert_string_not_equal(rs.status, "done");
    }
    assert_still_serving(f, "after-vanish-before");

    /* deleted mid-sweep: the engine holds the model it loaded, the sweep completes */
    copy_file(shipped, vanish_path);
    reset_faults();
    vanish_before_eval = 1;
    id = run_experiment(f, "vanish-mid", vanish_path, "[4, 6, 8]");
    experiment_state(f, id, status, sizeof status, error, sizeof error);
    print_message("model deleted mid-sweep -> experiment %s %s\n", status, error);
    for (int seq = 0; seq < 3; seq++) {
        run_state rs;
        get_run(f, id, seq, &rs);
        assert_whole(&rs);
        assert_string_equal(rs.status, "done");
    }
    assert_int_equal(access(vanish_path, F_OK), -1);
    assert_still_serving(f, "after-vanish-mid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_step_fails_in_finish_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malloc_fails_in_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malloc_fails_in_setup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_vanishes, setup, teardown),
    };
    return cmocka_run_group_tests_name("fault-engine", tests, NULL, NULL);
}
