/* test-crash-resume.c — qlabd killed with SIGKILL at 20 random points of a sweep,
 * restarted each time: the sweep completes, every run exists exactly once and is done
 * once, and the database passes PRAGMA integrity_check.
 *
 * The experiment is put into the database with the store and loader APIs (as qlabd would
 * on a submit); each qlabd start resumes it. The kill points are random over the
 * daemon's whole life (start-up, FP32 baseline, mid-run, mid-commit); the seed is
 * printed so a failure can be replayed with QLAB_CRASH_SEED. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "qlab-config.h"
#include "qlab-experiment.h"
#include "qlab-store.h"

#define NRUNS 168

static const char *qlabd_path;
static char tmpdir[256], dbpath[512];

static double query_double(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static pid_t start_daemon(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char logp[600];
        snprintf(logp, sizeof(logp), "%s/qlabd.log", tmpdir);
        char sock[600];
        snprintf(sock, sizeof(sock), "%s/qlabd.sock", tmpdir);
        execl(qlabd_path, qlabd_path, "--db", dbpath, "--workers", "2", "--foreground",
              "--log", logp, "--socket", sock, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Waits until the daemon's log says it serves (signals are then handled). */
static void wait_serving(pid_t pid)
{
    char logp[600], needle[64], line[1024];
    snprintf(logp, sizeof(logp), "%s/qlabd.log", tmpdir);
    snprintf(needle, sizeof(needle), "qlabd[%d]: qlabd ", (int)pid);
    for (int t = 0; t < 300; t++) {
        FILE *f = fopen(logp, "r");
        int found = 0;
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, needle) && strstr(line, " serving "))
                found = 1;
        if (f)
            fclose(f);
        if (found)
            return;
        sleep_ms(20);
    }
    fail_msg("qlabd %d did not start", (int)pid);
}

static int experiment_active(void)
{
    sqlite3 *db;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return 1;
    sqlite3_busy_timeout(db, 2000);
    int active = query_double(db, "SELECT count(*) FROM runs WHERE status IN "
                                  "('pending','running')") > 0;
    sqlite3_close(db);
    return active;
}

static void test_kill_loop(void **state)
{
    (void)state;
    const char *src = getenv("QLAB_SOURCE_ROOT");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/qlab-crash-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/qlab.db", tmpdir);

    /* 7 bit-widths x 2 schemes x 3 granularities x 4 calibrations = 168 runs: about 12 s
     * of work on 2 cores, long enough for 20 kills. */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: crash-resume\n"
             "model:\n  path: %s/data/fmnist-mlp.safetensors\n"
             "sweep:\n  bits: [2, 3, 4, 5, 6, 7, 8]\n  scheme: [symmetric, asymmetric]\n"
             "  granularity: [tensor, channel, \"group:64\"]\n"
             "  calibration: [minmax, mse, entropy, \"percentile:99.9\"]\n",
             src ? src : QLAB_SOURCE_ROOT);
    qlab_err err = { 0 };
    qlab_experiment *x = NULL;
    if (qlab_experiment_load_buffer(&x, yaml, strlen(yaml), "crash.yaml", NULL, &err) < 0)
        fail_msg("%s", err.msg);
    qlab_run_config *runs = NULL;
    size_t n = 0;
    assert_int_equal(qlab_experiment_expand(x, &runs, &n, &err), 0);
    assert_int_equal(n, NRUNS);
    qlab_store *s = NULL;
    assert_int_equal(qlab_store_open(&s, dbpath, 0, &err), 0);
    qlab_experiment_new ne = { .name = x->name, .yaml = x->yaml, .config_hash = x->config_hash,
                               .model_path = x->model_path, .dataset = x->dataset,
                               .calib_samples = x->calib_samples, .calib_seed = x->calib_seed };
    int64_t id;
    assert_int_equal(qlab_store_create_experiment(s, &ne, runs, n, &id, NULL, &err), 0);
    qlab_store_close(s);
    qlab_run_configs_free(runs, n);
    qlab_experiment_free(x);

    unsigned seed = (unsigned)time(NULL);
    const char *es = getenv("QLAB_CRASH_SEED");
    if (es)
        seed = (unsigned)strtoul(es, NULL, 10);
    printf("# kill loop seed %u (QLAB_CRASH_SEED to replay)\n", seed);
    srand(seed);

    int kills = 0;
    for (int i = 0; i < 20; i++) {
        pid_t pid = start_daemon();
        /* Start-up (loading the model, FP32 baseline) takes ~0.2-0.5 s, a run ~0.1 s:
         * 30..1000 ms covers start-up, calibration, runs and commits. */
        long ms = 30 + rand() % 970;
        sleep_ms(ms);
        if (kill(pid, SIGKILL) == 0)
            kills++;
        int st;
        waitpid(pid, &st, 0);
        if (!experiment_active())
            break; /* finished early: the remaining kills would test nothing new */
    }
    printf("# %d kills\n", kills);
    assert_true(kills >= 5);

    /* Final start: let it finish, then stop it cleanly with SIGTERM once it serves. */
    pid_t pid = start_daemon();
    wait_serving(pid);
    for (int t = 0; t < 1200 && experiment_active(); t++)
        sleep_ms(100);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stc;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stc, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stc), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stc, 0), "ok");
    sqlite3_finalize(stc);
    assert_true(query_double(db, "SELECT count(*) FROM runs") == NRUNS);
    assert_true(query_double(db, "SELECT count(*) FROM runs WHERE status='done'") == NRUNS);
    assert_true(query_double(db, "SELECT count(DISTINCT config_hash) FROM runs") == NRUNS);
    /* Every run's metrics are there exactly once: 3 layers each, 2 histograms per layer. */
    assert_true(query_double(db, "SELECT count(*) FROM layer_metrics") == NRUNS * 3);
    assert_true(query_double(db, "SELECT count(*) FROM histograms") == NRUNS * 6);
    assert_true(query_double(db, "SELECT count(*) FROM runs r WHERE (SELECT count(*) FROM "
                                 "layer_metrics l WHERE l.run_id = r.id) <> 3") == 0);
    assert_true(query_double(db, "SELECT status = 'done' FROM experiments") == 1);
    assert_true(query_double(db, "SELECT runs_done FROM experiments") == NRUNS);
    printf("# runs claimed more than once (resumed after a kill): %.0f\n",
           query_double(db, "SELECT count(*) FROM runs WHERE attempts > 1"));
    sqlite3_close(db);

    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-QLABD\n", argv[0]);
        return 2;
    }
    qlabd_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_loop),
    };
    return cmocka_run_group_tests_name("crash-resume", tests, NULL, NULL);
}
