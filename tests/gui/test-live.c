/* test-live — qlab-gui against a real qlabd, under a real X server (xvfb-run).
 * argv[1]: the qlabd executable.
 *
 * Starts qlabd on a fresh database in a temporary folder with its socket beside it
 * ($QLAB_SOCKET points the window there), opens the window, submits a two-run experiment
 * through the client library and checks that the chart gains each run once the daemon
 * reports it finished, plotted at the stored percent; then stops qlabd with SIGTERM and
 * checks the window falls back to fast polling, and finds a restarted daemon again. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <gtk/gtk.h>
#include <sqlite3.h>

#include "gui-fixture.h"
#include "qlab-shm.h"
#include "qlab-window.h"

static const char *qlabd_exe;
static char *tmpdir, *db_path, *sock_path;
static GPid qlabd_pid;
static qlab_shm_client *tc; /* the test's own client: submits, and sees the events */
static QlabWindow *win;
static guint tick_src;

static gboolean tick(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

/* Runs the main loop until cond(arg) holds or timeout_ms passed; returns cond's value.
 * tick_src wakes the loop every 10 ms so conditions on the test's own client are seen. */
static gboolean run_until(gboolean (*cond)(gpointer), gpointer arg, int timeout_ms)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (!cond(arg) && g_get_monotonic_time() < until)
        g_main_context_iteration(NULL, TRUE);
    return cond(arg);
}

static gboolean window_live(gpointer data)
{
    return qlab_window_is_live(win) == GPOINTER_TO_INT(data) && !qlab_window_is_busy(win);
}

/* Starts qlabd and waits until its socket answers. */
static int start_qlabd(void)
{
    const char *argv[] = {qlabd_exe, "--db",      db_path, "--socket", sock_path,
                          "--workers", "1",       "--foreground",      NULL};
    GError *error = NULL;
    if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                       &qlabd_pid, &error)) {
        fprintf(stderr, "qlabd: %s\n", error->message);
        g_error_free(error);
        return -1;
    }
    gint64 until = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
    qlab_shm_client *c = NULL;
    int r;
    while ((r = qlab_shm_connect(sock_path, NULL, &c)) < 0 && g_get_monotonic_time() < until)
        g_usleep(20000);
    if (r < 0) {
        fprintf(stderr, "qlabd does not answer at %s: %s\n", sock_path, g_strerror(-r));
        return -1;
    }
    qlab_shm_client_free(c);
    return 0;
}

/* SIGTERM, then the exit status (0 is a clean stop), or -1 after 20 s. */
static int stop_qlabd(void)
{
    if (!qlabd_pid)
        return 0;
    kill(qlabd_pid, SIGTERM);
    gint64 until = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
    int st = 0;
    pid_t r;
    while ((r = waitpid(qlabd_pid, &st, WNOHANG)) == 0 && g_get_monotonic_time() < until)
        g_usleep(10000);
    if (r == 0) {
        kill(qlabd_pid, SIGKILL);
        waitpid(qlabd_pid, &st, 0);
    }
    g_spawn_close_pid(qlabd_pid);
    qlabd_pid = 0;
    return r == 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qlab-live-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    g_setenv("XDG_CONFIG_HOME", tmpdir, TRUE);
    db_path = g_build_filename(tmpdir, "qlab.db", NULL);
    sock_path = g_build_filename(tmpdir, "qlabd.sock", NULL);
    g_setenv("QLAB_SOCKET", sock_path, TRUE);
    if (start_qlabd() < 0)
        return -1;
    int r = qlab_shm_connect(sock_path, NULL, &tc);
    if (r == 0)
        r = qlab_shm_subscribe(tc, 0, true, NULL);
    if (r < 0) {
        fprintf(stderr, "test client: %s\n", g_strerror(-r));
        return -1;
    }
    gtk_init();
    tick_src = g_timeout_add(10, tick, NULL);
    win = qlab_window_new(NULL);
    gtk_window_set_default_size(GTK_WINDOW(win), 1200, 800);
    gtk_window_present(GTK_WINDOW(win));
    qlab_window_open(win, db_path);
    return 0;
}

static int teardown(void **state)
{
    int st = stop_qlabd();
    if (st != 0)
        fprintf(stderr, "qlabd exit status %d\n", st);
    qlab_shm_client_free(tc);
    gtk_window_destroy(GTK_WINDOW(win));
    g_source_remove(tick_src);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    g_free(cmd);
    g_free(sock_path);
    g_free(db_path);
    g_free(tmpdir);
    return st == 0 ? 0 : -1;
}

static void test_connects(void **state)
{
    assert_true(run_until(window_live, GINT_TO_POINTER(TRUE), 10000));
    assert_string_equal(qlab_window_get_live_status(win), "live: qlabd");
    /* A fresh database: nothing to plot yet. */
    assert_int_equal(qlab_window_get_n_experiments(win), 0);
    const qlab_plot_data *d = qlab_chart_get_data(qlab_window_get_chart(win));
    assert_true(d == NULL || d->n == 0);
}

static gboolean chart_has_run(QlabChart *chart, gint64 run_id)
{
    const qlab_plot_data *d = qlab_chart_get_data(chart);
    for (size_t i = 0; d && i < d->n; i++)
        if (d->points[i].run_id == run_id)
            return TRUE;
    return FALSE;
}

static double db_double(const char *sql, gint64 arg)
{
    return fixture_query_double(db_path, sql, arg);
}

#define N_RUNS 2

static void test_runs_appear_as_they_finish(void **state)
{
    char *yaml = g_build_filename(tmpdir, "live.yaml", NULL);
    char *text = g_strdup_printf("name: gui-live\n"
                                 "model:\n"
                                 "  path: %s/data/fmnist-mlp.safetensors\n"
                                 "sweep:\n"
                                 "  bits: [4, 8]\n"
                                 "  scheme: [symmetric]\n"
                                 "  granularity: [channel]\n"
                                 "  calibration: [minmax]\n",
                                 g_getenv("QLAB_SOURCE_ROOT"));
    assert_true(g_file_set_contents(yaml, text, -1, NULL));
    g_free(text);
    guint64 batches0 = qlab_window_get_live_batches(win);
    uint64_t exp = 0;
    qlab_err err;
    qlab_err_clear(&err);
    int r = qlab_shm_submit_path(tc, yaml, &exp, &err);
    if (r < 0)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(r, 0);
    g_free(yaml);

    /* Each run the daemon reports finished must reach the chart: with qlabd connected the
     * safety poll runs every 5 s, so the events are what brings them within 4 s. */
    QlabChart *chart = qlab_window_get_chart(win);
    gint64 runs[N_RUNS], seen_at[N_RUNS], finished_at[N_RUNS];
    int finished = 0, seen = 0;
    size_t shown = 0;
    gint64 until = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;
    while (seen < N_RUNS && g_get_monotonic_time() < until) {
        g_main_context_iteration(NULL, TRUE);
        qlab_event ev;
        while (qlab_shm_client_next_event(tc, &ev, 0) == 0)
            if (ev.kind == QLAB_EVENT_RUN_FINISHED && ev.experiment_id == exp) {
                assert_int_equal(ev.status, 0);
                assert_true(finished < N_RUNS);
                runs[finished] = (gint64)ev.run_id;
                finished_at[finished++] = g_get_monotonic_time();
            }
        while (seen < finished && chart_has_run(chart, runs[seen]))
            seen_at[seen++] = g_get_monotonic_time();
        /* The chart only grows while runs finish. */
        size_t n = qlab_chart_get_data(chart) ? qlab_chart_get_data(chart)->n : 0;
        assert_true(n >= shown);
        shown = n;
    }
    assert_int_equal(finished, N_RUNS);
    assert_int_equal(seen, N_RUNS);
    for (int i = 0; i < N_RUNS; i++) {
        double lag = (double)(seen_at[i] - finished_at[i]) / 1e6;
        fprintf(stderr, "run %" G_GINT64_FORMAT ": on the chart %.3f s after its event\n",
                runs[i], lag);
        assert_true(lag < 4.0);
    }
    assert_true(qlab_window_get_live_batches(win) > batches0);
    assert_int_equal(qlab_window_get_experiment(win), (gint64)exp);

    /* The points are the stored runs, at the stored percent (a fraction inside). */
    const qlab_plot_data *d = qlab_chart_get_data(chart);
    assert_int_equal(d->n, N_RUNS);
    for (size_t i = 0; i < d->n; i++) {
        double acc = db_double("SELECT accuracy FROM runs WHERE id = ?", d->points[i].run_id);
        assert_true(acc > 50 && acc <= 100);
        assert_true(fabs(100 * d->points[i].accuracy - acc) < 1e-9);
    }
    assert_true(fabs(100 * d->fp32_accuracy -
                     db_double("SELECT fp32_accuracy FROM experiments WHERE id = ?",
                               (gint64)exp)) < 1e-9);
}

static gboolean chart_has_n(gpointer data)
{
    const qlab_plot_data *d = qlab_chart_get_data(qlab_window_get_chart(win));
    return d && d->n == GPOINTER_TO_SIZE(data) && !qlab_window_is_busy(win);
}

static void test_daemon_stops(void **state)
{
    assert_int_equal(stop_qlabd(), 0);
    /* The socket hangs up: back to polling, at the fast rate. */
    assert_true(run_until(window_live, GINT_TO_POINTER(FALSE), 5000));
    assert_string_equal(qlab_window_get_live_status(win), "live: polling");
    gint64 exp = qlab_window_get_experiment(win);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *sql = g_strdup_printf(
        "INSERT INTO runs(experiment_id, seq, bits, scheme, granularity, calibration, config,"
        " config_hash, status, accuracy, total_bytes, weight_bytes, bits_per_weight)"
        " VALUES (%" G_GINT64_FORMAT ", 99, 6, 'symmetric', 'channel', 'mse', 'by hand',"
        " 'feedfeedfeedfeed', 'done', 87.5, 180000, 178000, 6.05)",
        exp);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    g_free(sql);
    sqlite3_close(db);
    /* 500 ms polling finds it well before the 5 s of the connected state would. */
    assert_true(run_until(chart_has_n, GSIZE_TO_POINTER(N_RUNS + 1), 3000));
}

static void test_daemon_restarts(void **state)
{
    assert_int_equal(start_qlabd(), 0);
    /* The window retries every 3 s while disconnected. */
    assert_true(run_until(window_live, GINT_TO_POINTER(TRUE), 10000));
    assert_string_equal(qlab_window_get_live_status(win), "live: qlabd");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test-live QLABD\n");
        return 2;
    }
    qlabd_exe = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects),
        cmocka_unit_test(test_runs_appear_as_they_finish),
        cmocka_unit_test(test_daemon_stops),
        cmocka_unit_test(test_daemon_restarts),
    };
    return cmocka_run_group_tests_name("gui-live", tests, setup, teardown);
}
