/* store-read.c — the queries the CLI and the GUI make.
 *
 * Each query is one statement, hence one read transaction: in WAL mode it sees a single
 * committed state of the database even while the writer commits runs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

static int col_present(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) != SQLITE_NULL;
}

static char *dup_col(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    char *d = strdup((const char *)t);
    if (!d)
        *oom = 1;
    return d;
}

static void copy_col(sqlite3_stmt *st, int i, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
}

static double real_col(sqlite3_stmt *st, int i)
{
    return col_present(st, i) ? sqlite3_column_double(st, i) : NAN;
}

static int64_t int_col(sqlite3_stmt *st, int i)
{
    return col_present(st, i) ? sqlite3_column_int64(st, i) : -1;
}

static void qconfig_defaults(qlab_qconfig *c)
{
    memset(c, 0, sizeof *c);
    c->bits = 8;
    c->scheme = QLAB_SCHEME_SYMMETRIC;
    c->granularity = QLAB_GRAN_TENSOR;
    c->calibration = QLAB_CALIB_MINMAX;
}

int qlab_store_read_run_config(sqlite3_stmt *st, int first, qlab_run_config *c)
{
    int i = first, oom = 0;
    memset(c, 0, sizeof *c);
    qconfig_defaults(&c->weights);
    c->weights.bits = sqlite3_column_int(st, i++);
    const char *t = (const char *)sqlite3_column_text(st, i++);
    if (t && strcmp(t, "asymmetric") == 0)
        c->weights.scheme = QLAB_SCHEME_ASYMMETRIC;
    t = (const char *)sqlite3_column_text(st, i++);
    if (t && strcmp(t, "channel") == 0)
        c->weights.granularity = QLAB_GRAN_CHANNEL;
    else if (t && strcmp(t, "group") == 0)
        c->weights.granularity = QLAB_GRAN_GROUP;
    if (col_present(st, i))
        c->weights.group_size = sqlite3_column_int(st, i);
    i++;
    c->weights.calibration =
        qlab_store_calibration_parse((const char *)sqlite3_column_text(st, i++));
    if (col_present(st, i))
        c->weights.percentile = sqlite3_column_double(st, i);
    i++;
    /* Activations are per-tensor asymmetric (PRODUCT.md §3). */
    qconfig_defaults(&c->act);
    c->act.scheme = QLAB_SCHEME_ASYMMETRIC;
    if (col_present(st, i))
        c->act.bits = c->act_bits = sqlite3_column_int(st, i);
    i++;
    c->act.calibration =
        qlab_store_calibration_parse((const char *)sqlite3_column_text(st, i++));
    if (col_present(st, i))
        c->act.percentile = sqlite3_column_double(st, i);
    i++;
    c->overrides = dup_col(st, i++, &oom);
    c->config = dup_col(st, i++, &oom);
    copy_col(st, i++, c->config_hash, sizeof c->config_hash);
    if (oom) {
        qlab_run_config_clear(c);
        return -ENOMEM;
    }
    return i;
}

#define EXPERIMENT_COLUMNS \
    "id, name, yaml_path, config_hash, model_path, model_sha256, dataset, qlab_version," \
    " kernel, error, status, created_at, started_at, finished_at, fp32_accuracy," \
    " fp32_bytes, runs_total, runs_done, runs_failed, calib_samples, calib_seed, workers," \
    " (SELECT count(*) FROM runs WHERE experiment_id = e.id AND status = 'pending')," \
    " (SELECT count(*) FROM runs WHERE experiment_id = e.id AND status = 'running')," \
    " (SELECT count(*) FROM runs WHERE experiment_id = e.id AND status = 'cancelled')"

static int read_experiment(sqlite3_stmt *st, qlab_experiment_row *e, int with_yaml)
{
    int oom = 0, i = 0;
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, i++);
    e->name = dup_col(st, i++, &oom);
    e->yaml_path = dup_col(st, i++, &oom);
    e->config_hash = dup_col(st, i++, &oom);
    e->model_path = dup_col(st, i++, &oom);
    e->model_sha256 = dup_col(st, i++, &oom);
    e->dataset = dup_col(st, i++, &oom);
    e->qlab_version = dup_col(st, i++, &oom);
    e->kernel = dup_col(st, i++, &oom);
    e->error = dup_col(st, i++, &oom);
    qlab_status_parse((const char *)sqlite3_column_text(st, i++), &e->status);
    copy_col(st, i++, e->created_at, sizeof e->created_at);
    copy_col(st, i++, e->started_at, sizeof e->started_at);
    copy_col(st, i++, e->finished_at, sizeof e->finished_at);
    e->fp32_accuracy = real_col(st, i++);
    e->fp32_bytes = int_col(st, i++);
    e->runs_total = sqlite3_column_int(st, i++);
    e->runs_done = sqlite3_column_int(st, i++);
    e->runs_failed = sqlite3_column_int(st, i++);
    e->calib_samples = (int)int_col(st, i++);
    e->calib_seed = int_col(st, i++);
    e->workers = col_present(st, i) ? sqlite3_column_int(st, i) : 0;
    i++;
    e->runs_pending = sqlite3_column_int(st, i++);
    e->runs_running = sqlite3_column_int(st, i++);
    e->runs_cancelled = sqlite3_column_int(st, i++);
    if (with_yaml)
        e->yaml = dup_col(st, i++, &oom);
    if (oom) {
        qlab_experiment_row_clear(e);
        return -ENOMEM;
    }
    return 0;
}

void qlab_experiment_row_clear(qlab_experiment_row *e)
{
    if (!e)
        return;
    char *p[] = { e->name, e->yaml_path, e->config_hash, e->model_path, e->model_sha256,
                  e->dataset, e->qlab_version, e->kernel, e->error, e->yaml };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
    memset(e, 0, sizeof *e);
}

void qlab_experiment_rows_free(qlab_experiment_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        qlab_experiment_row_clear(&rows[i]);
    free(rows);
}

#define RUN_COLUMNS \
    "id, experiment_id, seq, status, attempts, accuracy, accuracy_delta, weight_bytes," \
    " total_bytes, compression, bits_per_weight, sqnr_db, mse, eval_ms, kernel, simulated," \
    " started_at, finished_at, error, manifest, " QLAB_RUN_CONFIG_COLUMNS

static int read_run(sqlite3_stmt *st, qlab_run_row *r)
{
    int oom = 0, i = 0;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, i++);
    r->experiment_id = sqlite3_column_int64(st, i++);
    r->seq = sqlite3_column_int(st, i++);
    qlab_status_parse((const char *)sqlite3_column_text(st, i++), &r->status);
    r->attempts = sqlite3_column_int(st, i++);
    r->accuracy = real_col(st, i++);
    r->accuracy_delta = real_col(st, i++);
    r->weight_bytes = int_col(st, i++);
    r->total_bytes = int_col(st, i++);
    r->compression = real_col(st, i++);
    r->bits_per_weight = real_col(st, i++);
    r->sqnr_db = real_col(st, i++);
    r->mse = real_col(st, i++);
    r->eval_ms = real_col(st, i++);
    copy_col(st, i++, r->kernel, sizeof r->kernel);
    r->simulated = (int)int_col(st, i++);
    copy_col(st, i++, r->started_at, sizeof r->started_at);
    copy_col(st, i++, r->finished_at, sizeof r->finished_at);
    r->error = dup_col(st, i++, &oom);
    r->manifest = dup_col(st, i++, &oom);
    if (qlab_store_read_run_config(st, i, &r->cfg) < 0)
        oom = 1;
    if (oom) {
        qlab_run_row_clear(r);
        return -ENOMEM;
    }
    return 0;
}

void qlab_run_row_clear(qlab_run_row *r)
{
    if (!r)
        return;
    qlab_run_config_clear(&r->cfg);
    free(r->error);
    free(r->manifest);
    memset(r, 0, sizeof *r);
}

void qlab_run_rows_free(qlab_run_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        qlab_run_row_clear(&rows[i]);
    free(rows);
}

static int read_experiment_list(sqlite3_stmt *st, void *row)
{
    return read_experiment(st, row, 0);
}

static int read_run_any(sqlite3_stmt *st, void *row)
{
    return read_run(st, row);
}

int qlab_store_collect(qlab_store *s, sqlite3_stmt *st, size_t size, qlab_store_read_fn fn,
                       void (*clear)(void *), void **rows, size_t *n, qlab_err *err)
{
    char *arr = NULL;
    size_t count = 0, cap = 0;
    int r = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char *na = realloc(arr, ncap * size);
            if (!na) {
                r = -ENOMEM;
                break;
            }
            arr = na;
            cap = ncap;
        }
        r = fn(st, arr + count * size);
        if (r < 0)
            break;
        count++;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = qlab_store_sqlerr(s->db, rc, err, "reading results");
    else if (r == -ENOMEM)
        r = qlab_err_set(err, -ENOMEM, "out of memory");
    if (r < 0) {
        for (size_t i = 0; i < count; i++)
            clear(arr + i * size);
        free(arr);
        return r;
    }
    *rows = arr;
    *n = count;
    return 0;
}

static void clear_experiment(void *p)
{
    qlab_experiment_row_clear(p);
}

static void clear_run(void *p)
{
    qlab_run_row_clear(p);
}

int qlab_store_list_experiments(qlab_store *s, qlab_experiment_row **rows, size_t *n,
                                qlab_err *err)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_prepare(s->db,
                               "SELECT " EXPERIMENT_COLUMNS " FROM experiments AS e"
                               " ORDER BY id DESC",
                               &st, err);
    if (r >= 0) {
        r = qlab_store_collect(s, st, sizeof **rows, read_experiment_list, clear_experiment,
                    (void **)rows, n, err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int qlab_store_get_experiment(qlab_store *s, int64_t id, qlab_experiment_row *row,
                              qlab_err *err)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_prepare(s->db,
                               "SELECT " EXPERIMENT_COLUMNS ", yaml FROM experiments AS e"
                               " WHERE id = ?",
                               &st, err);
    if (r >= 0) {
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            r = read_experiment(st, row, 1);
            if (r < 0)
                qlab_err_set(err, r, "out of memory");
        } else if (rc == SQLITE_DONE) {
            r = qlab_err_set(err, -ENOENT, "no experiment %lld", (long long)id);
        } else {
            r = qlab_store_sqlerr(s->db, rc, err, "reading the experiment");
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int list_runs(qlab_store *s, const char *sql, int64_t experiment_id, int status,
                     qlab_run_row **rows, size_t *n, qlab_err *err)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_prepare(s->db, sql, &st, err);
    if (r >= 0) {
        sqlite3_bind_int64(st, 1, experiment_id);
        if (status >= 0)
            sqlite3_bind_text(st, 2, qlab_status_name((qlab_status)status), -1,
                              SQLITE_STATIC);
        r = qlab_store_collect(s, st, sizeof **rows, read_run_any, clear_run, (void **)rows, n, err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int qlab_store_list_runs(qlab_store *s, int64_t experiment_id, int status_filter,
                         qlab_run_row **rows, size_t *n, qlab_err *err)
{
    const char *sql = status_filter < 0
        ? "SELECT " RUN_COLUMNS " FROM runs WHERE experiment_id = ?1 ORDER BY seq"
        : "SELECT " RUN_COLUMNS " FROM runs WHERE experiment_id = ?1 AND status = ?2"
          " ORDER BY seq";
    return list_runs(s, sql, experiment_id, status_filter, rows, n, err);
}

int qlab_store_frontier(qlab_store *s, int64_t experiment_id, qlab_run_row **rows,
                        size_t *n, qlab_err *err)
{
    return list_runs(s,
                     "SELECT " RUN_COLUMNS " FROM frontier WHERE experiment_id = ?1"
                     " ORDER BY total_bytes, accuracy DESC, seq",
                     experiment_id, -1, rows, n, err);
}
