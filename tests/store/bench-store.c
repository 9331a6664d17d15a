/* bench-store.c — how fast the store does what the daemon and the GUI ask of it.
 *
 * Prints: creating a 20,000-run experiment (one transaction), finishing runs through
 * qlab_store_finish_run (6 layers + 12 histograms of 64 bins each, one transaction per
 * run, as the engine does), and the frontier view (window functions) against the
 * textbook NOT EXISTS query on the same data — the peer it replaced — with the ratio, on
 * random runs and on runs that are all on the front. Usage: bench-store [DIR] (default $TMPDIR). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qlab-store.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int64_t make_experiment(qlab_store *s, size_t n, double *ms)
{
    static size_t serial; /* hashes unique across experiments: they get merged below */
    qlab_run_config *runs = calloc(n, sizeof *runs);
    for (size_t i = 0; i < n; i++) {
        runs[i].weights.bits = 2 + (int)(i % 7);
        runs[i].weights.granularity = QLAB_GRAN_GROUP;
        runs[i].weights.group_size = 32;
        char buf[64];
        snprintf(buf, sizeof buf, "bench-%zu", i);
        runs[i].config = strdup(buf);
        snprintf(runs[i].config_hash, sizeof runs[i].config_hash, "%016zx", serial++);
    }
    qlab_experiment_new e = { .name = "bench", .yaml = "", .config_hash = "b",
                              .model_path = "m", .calib_samples = 1000 };
    int64_t id;
    qlab_err err = { 0 };
    double t0 = now_ms();
    if (qlab_store_create_experiment(s, &e, runs, n, &id, NULL, &err) < 0) {
        fprintf(stderr, "bench-store: %s\n", err.msg);
        exit(1);
    }
    *ms = now_ms() - t0;
    for (size_t i = 0; i < n; i++)
        qlab_run_config_clear(&runs[i]);
    free(runs);
    return id;
}

static double time_query(sqlite3 *db, const char *sql, int64_t exp, int *rows)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench-store: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_bind_int64(st, 1, exp);
    double t0 = now_ms();
    *rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        (*rows)++;
    double ms = now_ms() - t0;
    sqlite3_finalize(st);
    return ms;
}

int main(int argc, char **argv)
{
    const char *t = argc > 1 ? argv[1] : getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/qlab-bench-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/bench.db", dir);
    qlab_store *s;
    qlab_err err = { 0 };
    if (qlab_store_open(&s, path, 0, &err) < 0) {
        fprintf(stderr, "bench-store: %s\n", err.msg);
        return 1;
    }
    double ms;
    int64_t exp = make_experiment(s, 20000, &ms);
    printf("create experiment, 20000 runs:   %8.1f ms (%.0f runs/s)\n", ms,
           20000 / (ms / 1e3));

    /* Finish 2000 runs the way the engine does. */
    enum { FINISH = 2000, NLAYERS = 6, NHISTS = 12, NBINS = 64 };
    uint64_t counts[NBINS];
    for (int b = 0; b < NBINS; b++)
        counts[b] = (uint64_t)(b * 37 % 1000);
    qlab_layer_result layers[NLAYERS];
    qlab_hist_result hists[NHISTS];
    char names[NLAYERS][8];
    for (int l = 0; l < NLAYERS; l++) {
        snprintf(names[l], sizeof names[l], "fc%d", l + 1);
        layers[l] = (qlab_layer_result){ .layer = names[l], .kind = "linear", .position = l,
                                         .params = 1000, .bytes = 500, .bits = 4,
                                         .weight_mse = 0.1, .weight_sqnr_db = 20,
                                         .max_abs_error = 0.2, .cosine = 0.99,
                                         .clip_fraction = 0, .output_sqnr_db = 18,
                                         .output_mse = 0.3, .output_cosine = 0.98 };
        hists[2 * l] = (qlab_hist_result){ names[l], "weight", -1, 1, NBINS, counts };
        hists[2 * l + 1] = (qlab_hist_result){ names[l], "output", -1, 1, NBINS, counts };
    }
    double t0 = now_ms();
    for (int i = 0; i < FINISH; i++) {
        qlab_claim c;
        if (qlab_store_claim_run(s, exp, &c, &err) != 1)
            return 1;
        qlab_run_config_clear(&c.cfg);
        qlab_run_result res = { .accuracy = 50 + (i * 7919 % 4000) / 100.0,
                                .weight_bytes = 1000 + i * 104729 % 50000,
                                .total_bytes = 2000 + i * 104729 % 50000, .kernel = "avx2",
                                .nlayers = NLAYERS, .layers = layers, .nhists = NHISTS,
                                .hists = hists };
        if (qlab_store_finish_run(s, c.run_id, &res, &err) < 0) {
            fprintf(stderr, "bench-store: %s\n", err.msg);
            return 1;
        }
    }
    ms = now_ms() - t0;
    printf("claim + finish run (6 layers, 12 histograms): %.3f ms each (%.0f runs/s)\n",
           ms / FINISH, FINISH / (ms / 1e3));

    /* Frontier: 100,000 done runs with random (accuracy, bytes) in one experiment, and
     * 10,000 whose accuracy grows with their size (every run on the front: the
     * NOT EXISTS peer's worst case; at 100,000 it takes over a minute). */
    for (int k = 0; k < 4; k++)
        make_experiment(s, 20000, &ms);
    int64_t mono = make_experiment(s, 10000, &ms);
    sqlite3 *db = qlab_store_db(s);
    char *msg = NULL;
    int rc = sqlite3_exec(db, "UPDATE runs SET experiment_id = 1 WHERE experiment_id BETWEEN 2 AND 5;"
                     "UPDATE runs SET status = 'done', accuracy = 50 + abs(random() % 4000)"
                     " / 100.0, total_bytes = 1000 + abs(random() % 1000000)"
                     " WHERE experiment_id = 1 AND status <> 'done';"
                     "UPDATE runs SET status = 'done', accuracy = 50 + seq * 0.004,"
                     " total_bytes = 1000 + seq * 10 WHERE experiment_id = 6",
                 NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "bench-store: %s\n", msg);
        return 1;
    }
    const char *naive =
        "SELECT id FROM runs AS r WHERE experiment_id = ?1 AND status = 'done' AND NOT"
        " EXISTS (SELECT 1 FROM runs AS o WHERE o.experiment_id = r.experiment_id AND"
        " o.status = 'done' AND o.accuracy >= r.accuracy AND o.total_bytes <= r.total_bytes"
        " AND (o.accuracy > r.accuracy OR o.total_bytes < r.total_bytes))";
    const int64_t sets[2] = { exp, mono };
    const char *what[2] = { "100000 random runs", "10000 runs, all on the front" };
    int mismatch = 0;
    for (int k = 0; k < 2; k++) {
        int rows_view, rows_naive;
        double v = time_query(db, "SELECT * FROM frontier WHERE experiment_id = ?1", sets[k],
                              &rows_view);
        double nv = time_query(db, naive, sets[k], &rows_naive);
        printf("frontier of %s: view %.1f ms, NOT EXISTS %.1f ms (%d and %d rows), "
               "NOT EXISTS / view = %.2f\n", what[k], v, nv, rows_view, rows_naive, nv / v);
        mismatch |= rows_view != rows_naive;
    }
    qlab_experiment_row *list;
    size_t n;
    t0 = now_ms();
    qlab_store_list_experiments(s, &list, &n, &err);
    printf("list experiments (%zu, 110000 runs): %.2f ms\n", n, now_ms() - t0);
    qlab_experiment_rows_free(list, n);
    qlab_store_close(s);
    const char *ext[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s%s", path, ext[i]);
        unlink(p);
    }
    rmdir(dir);
    return mismatch ? 2 : 0;
}
