/* store-write.c — the writer's transactions: new experiments, claiming runs, results.
 *
 * Each public function is one transaction under the store's mutex. BEGIN IMMEDIATE takes
 * the write lock up front, so a transaction never fails half-way on a lock upgrade; any
 * failure rolls the whole transaction back (a finished run is all or nothing). */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-config.h"
#include "store-private.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static int begin(qlab_store *s, qlab_err *err)
{
    if (s->flags & QLAB_STORE_READONLY)
        return qlab_err_set(err, -EROFS, "the database was opened read-only");
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_exec(s->db, "BEGIN IMMEDIATE", err);
    if (r < 0)
        pthread_mutex_unlock(&s->lock);
    return r;
}

/* Commits when r >= 0, else rolls back; returns r (or the commit's error). */
static int end(qlab_store *s, int r, qlab_err *err)
{
    if (r >= 0) {
        int c = qlab_store_exec(s->db, "COMMIT", err);
        if (c < 0)
            r = c;
    }
    if (r < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Runs one parameterised statement; bind() fills the parameters. */
static int run_stmt(sqlite3 *db, const char *sql, qlab_err *err, const char *what,
                    sqlite3_stmt **keep)
{
    sqlite3_stmt *st;
    int r = qlab_store_prepare(db, sql, &st, err);
    if (r < 0)
        return r;
    if (keep) {
        *keep = st;
        return 0;
    }
    r = qlab_store_step_done(db, st, err, what);
    sqlite3_finalize(st);
    return r;
}

static int bind_run_config(sqlite3_stmt *st, int first, const qlab_run_config *c)
{
    const qlab_qconfig *w = &c->weights;
    int i = first;
    sqlite3_bind_int(st, i++, w->bits);
    sqlite3_bind_text(st, i++, qlab_store_scheme_str(w->scheme), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, qlab_store_granularity_str(w->granularity), -1, SQLITE_STATIC);
    if (w->granularity == QLAB_GRAN_GROUP)
        sqlite3_bind_int(st, i++, w->group_size);
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_text(st, i++, qlab_store_calibration_str(w->calibration), -1, SQLITE_STATIC);
    qlab_store_bind_real(st, i++, w->calibration == QLAB_CALIB_PERCENTILE ? w->percentile
                                                                          : NAN);
    if (c->act_bits > 0) {
        sqlite3_bind_int(st, i++, c->act_bits);
        sqlite3_bind_text(st, i++, qlab_store_calibration_str(c->act.calibration), -1,
                          SQLITE_STATIC);
        qlab_store_bind_real(st, i++, c->act.calibration == QLAB_CALIB_PERCENTILE
                                          ? c->act.percentile : NAN);
    } else {
        sqlite3_bind_null(st, i++);
        sqlite3_bind_null(st, i++);
        sqlite3_bind_null(st, i++);
    }
    qlab_store_bind_text(st, i++, c->overrides);
    qlab_store_bind_text(st, i++, c->config ? c->config : "");
    sqlite3_bind_text(st, i++, c->config_hash, -1, SQLITE_TRANSIENT);
    return i;
}

int qlab_store_create_experiment(qlab_store *s, const qlab_experiment_new *e,
                                 const qlab_run_config *runs, size_t n,
                                 int64_t *experiment_id, int64_t *run_ids, qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    r = run_stmt(s->db,
                 "INSERT INTO experiments (name, yaml, yaml_path, config_hash, model_path,"
                 " model_sha256, dataset, status, calib_samples, calib_seed, workers,"
                 " qlab_version, kernel) VALUES (?,?,?,?,?,?,?,'pending',?,?,?,?,?)",
                 err, NULL, &st);
    if (r < 0)
        goto out;
    qlab_store_bind_text(st, 1, e->name ? e->name : "");
    qlab_store_bind_text(st, 2, e->yaml ? e->yaml : "");
    qlab_store_bind_text(st, 3, e->yaml_path);
    qlab_store_bind_text(st, 4, e->config_hash ? e->config_hash : "");
    qlab_store_bind_text(st, 5, e->model_path ? e->model_path : "");
    qlab_store_bind_text(st, 6, e->model_sha256);
    qlab_store_bind_text(st, 7, e->dataset);
    sqlite3_bind_int(st, 8, e->calib_samples);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)e->calib_seed);
    if (e->workers > 0)
        sqlite3_bind_int(st, 10, e->workers);
    qlab_store_bind_text(st, 11, e->qlab_version ? e->qlab_version : QLAB_VERSION);
    qlab_store_bind_text(st, 12, e->kernel);
    r = qlab_store_step_done(s->db, st, err, "inserting the experiment");
    sqlite3_finalize(st);
    st = NULL;
    if (r < 0)
        goto out;
    id = sqlite3_last_insert_rowid(s->db);

    r = run_stmt(s->db,
                 "INSERT INTO runs (experiment_id, seq, bits, scheme, granularity, group_size,"
                 " calibration, percentile, act_bits, act_calibration, act_percentile,"
                 " overrides, config, config_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 err, NULL, &st);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        bind_run_config(st, 3, &runs[i]);
        r = qlab_store_step_done(s->db, st, err, "inserting a run");
        if (r < 0) {
            qlab_err_prefix(err, "run %zu (%s)", i, runs[i].config ? runs[i].config : "");
            goto out;
        }
        if (run_ids)
            run_ids[i] = sqlite3_last_insert_rowid(s->db);
    }
out:
    sqlite3_finalize(st);
    r = end(s, r, err);
    if (r >= 0)
        *experiment_id = id;
    return r;
}

int qlab_store_claim_run(qlab_store *s, int64_t experiment_id, qlab_claim *out,
                         qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    qlab_claim c = { 0 };
    int found = 0;
    r = run_stmt(s->db,
                 experiment_id > 0
                     ? "SELECT id, experiment_id, seq, attempts, " QLAB_RUN_CONFIG_COLUMNS
                       " FROM runs WHERE status = 'pending' AND experiment_id = ?"
                       " ORDER BY id LIMIT 1"
                     : "SELECT id, experiment_id, seq, attempts, " QLAB_RUN_CONFIG_COLUMNS
                       " FROM runs WHERE status = 'pending' ORDER BY id LIMIT 1",
                 err, NULL, &st);
    if (r < 0)
        goto out;
    if (experiment_id > 0)
        sqlite3_bind_int64(st, 1, experiment_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        goto out;
    if (rc != SQLITE_ROW) {
        r = qlab_store_sqlerr(s->db, rc, err, "looking for a pending run");
        goto out;
    }
    c.run_id = sqlite3_column_int64(st, 0);
    c.experiment_id = sqlite3_column_int64(st, 1);
    c.seq = sqlite3_column_int(st, 2);
    c.attempts = sqlite3_column_int(st, 3) + 1;
    r = qlab_store_read_run_config(st, 4, &c.cfg);
    if (r < 0) {
        r = qlab_err_set(err, r, "out of memory");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    r = run_stmt(s->db,
                 "UPDATE runs SET status = 'running', attempts = attempts + 1,"
                 " started_at = " NOW ", finished_at = NULL, error = NULL WHERE id = ?",
                 err, NULL, &st);
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, c.run_id);
    r = qlab_store_step_done(s->db, st, err, "claiming a run");
    sqlite3_finalize(st);
    st = NULL;
    if (r < 0)
        goto out;
    r = run_stmt(s->db,
                 "UPDATE experiments SET status = 'running',"
                 " started_at = coalesce(started_at, " NOW ")"
                 " WHERE id = ? AND status = 'pending'",
                 err, NULL, &st);
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, c.experiment_id);
    r = qlab_store_step_done(s->db, st, err, "starting the experiment");
    found = 1;
out:
    sqlite3_finalize(st);
    r = end(s, r, err);
    if (r < 0 || !found) {
        qlab_run_config_clear(&c.cfg);
        return r < 0 ? r : 0;
    }
    *out = c;
    return 1;
}

int qlab_store_requeue_running(qlab_store *s, qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    r = run_stmt(s->db,
                 "UPDATE runs SET status = 'pending', started_at = NULL"
                 " WHERE status = 'running'",
                 err, "re-queueing running runs", NULL);
    if (r >= 0)
        r = sqlite3_changes(s->db);
    return end(s, r, err);
}

/* Marks the experiment of run_id done when none of its runs is pending or running. */
static int maybe_complete(qlab_store *s, int64_t run_id, qlab_err *err)
{
    sqlite3_stmt *st;
    int r = run_stmt(s->db,
                     "UPDATE experiments SET status = 'done', finished_at = " NOW
                     " WHERE id = (SELECT experiment_id FROM runs WHERE id = ?1)"
                     " AND status IN ('pending', 'running') AND NOT EXISTS (SELECT 1 FROM runs"
                     " WHERE experiment_id = experiments.id"
                     " AND status IN ('pending', 'running'))",
                     err, NULL, &st);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, run_id);
    r = qlab_store_step_done(s->db, st, err, "completing the experiment");
    sqlite3_finalize(st);
    return r;
}

/* -ESTALE when the update touched no row: the run is missing or not running. */
static int stale_run(qlab_store *s, int64_t run_id, qlab_err *err)
{
    sqlite3_stmt *st;
    int r = run_stmt(s->db, "SELECT status FROM runs WHERE id = ?", err, NULL, &st);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        r = qlab_err_set(err, -ESTALE, "run %lld is %s, not running", (long long)run_id,
                         (const char *)sqlite3_column_text(st, 0));
    else
        r = qlab_err_set(err, -ENOENT, "no run %lld", (long long)run_id);
    sqlite3_finalize(st);
    return r;
}

static int insert_layers(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                         qlab_err *err)
{
    sqlite3_stmt *st;
    int r = run_stmt(s->db,
                     "INSERT INTO layer_metrics (run_id, position, layer, kind, params, bytes,"
                     " bits, scheme, granularity, group_size, weight_mse, weight_sqnr_db,"
                     " max_abs_error, cosine, clip_fraction, output_sqnr_db, output_mse,"
                     " output_cosine) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     err, NULL, &st);
    if (r < 0)
        return r;
    for (size_t i = 0; i < res->nlayers && r >= 0; i++) {
        const qlab_layer_result *l = &res->layers[i];
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int(st, 2, l->position);
        qlab_store_bind_text(st, 3, l->layer ? l->layer : "");
        qlab_store_bind_text(st, 4, l->kind ? l->kind : "");
        sqlite3_bind_int64(st, 5, l->params);
        sqlite3_bind_int64(st, 6, l->bytes);
        if (l->bits > 0) {
            sqlite3_bind_int(st, 7, l->bits);
            sqlite3_bind_text(st, 8, qlab_store_scheme_str(l->scheme), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 9, qlab_store_granularity_str(l->granularity), -1,
                              SQLITE_STATIC);
            if (l->granularity == QLAB_GRAN_GROUP)
                sqlite3_bind_int(st, 10, l->group_size);
        }
        const double v[] = { l->weight_mse, l->weight_sqnr_db, l->max_abs_error, l->cosine,
                             l->clip_fraction, l->output_sqnr_db, l->output_mse,
                             l->output_cosine };
        for (int k = 0; k < 8; k++)
            qlab_store_bind_real(st, 11 + k, v[k]);
        r = qlab_store_step_done(s->db, st, err, "inserting layer metrics");
    }
    sqlite3_finalize(st);
    return r;
}

static int insert_hists(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                        qlab_err *err)
{
    sqlite3_stmt *st;
    int r = run_stmt(s->db,
                     "INSERT INTO histograms (run_id, layer, tensor, lo, hi, nbins, counts)"
                     " VALUES (?,?,?,?,?,?,?)",
                     err, NULL, &st);
    if (r < 0)
        return r;
    for (size_t i = 0; i < res->nhists && r >= 0; i++) {
        const qlab_hist_result *h = &res->hists[i];
        if (h->nbins <= 0 || !h->counts) {
            r = qlab_err_set(err, -EINVAL, "histogram of %s has no bins", h->layer);
            break;
        }
        uint8_t *blob = malloc((size_t)h->nbins * 4);
        if (!blob) {
            r = qlab_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        /* Little-endian u32 whatever the host: the format is documented in schema.sql. */
        for (int b = 0; b < h->nbins; b++) {
            uint32_t c = h->counts[b] > UINT32_MAX ? UINT32_MAX : (uint32_t)h->counts[b];
            blob[4 * b] = (uint8_t)c;
            blob[4 * b + 1] = (uint8_t)(c >> 8);
            blob[4 * b + 2] = (uint8_t)(c >> 16);
            blob[4 * b + 3] = (uint8_t)(c >> 24);
        }
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, run_id);
        qlab_store_bind_text(st, 2, h->layer ? h->layer : "");
        qlab_store_bind_text(st, 3, h->tensor ? h->tensor : "");
        sqlite3_bind_double(st, 4, h->lo);
        sqlite3_bind_double(st, 5, h->hi);
        sqlite3_bind_int(st, 6, h->nbins);
        sqlite3_bind_blob(st, 7, blob, h->nbins * 4, free);
        r = qlab_store_step_done(s->db, st, err, "inserting a histogram");
    }
    sqlite3_finalize(st);
    return r;
}

int qlab_store_finish_run(qlab_store *s, int64_t run_id, const qlab_run_result *res,
                          qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    r = run_stmt(s->db,
                 "UPDATE runs SET status = 'done', accuracy = ?1, weight_bytes = ?2,"
                 " total_bytes = ?3, sqnr_db = ?4, mse = ?5, eval_ms = ?6, kernel = ?7,"
                 " simulated = ?8, finished_at = " NOW ", error = NULL,"
                 " accuracy_delta = ?1 - (SELECT fp32_accuracy FROM experiments AS e"
                 "   WHERE e.id = runs.experiment_id),"
                 " compression = (SELECT fp32_bytes FROM experiments AS e"
                 "   WHERE e.id = runs.experiment_id) * 1.0 / nullif(?3, 0),"
                 " bits_per_weight = CASE WHEN ?9 > 0 THEN 8.0 * ?2 / ?9 END,"
                 " manifest = (SELECT json_object('qlab_version', ?10, 'kernel', ?7,"
                 "   'model_sha256', e.model_sha256, 'calib_seed', e.calib_seed,"
                 "   'calib_samples', e.calib_samples, 'config_hash', runs.config_hash,"
                 "   'config', runs.config) FROM experiments AS e"
                 "   WHERE e.id = runs.experiment_id)"
                 " WHERE id = ?11 AND status = 'running'",
                 err, NULL, &st);
    if (r < 0)
        return end(s, r, err);
    qlab_store_bind_real(st, 1, res->accuracy);
    sqlite3_bind_int64(st, 2, res->weight_bytes);
    sqlite3_bind_int64(st, 3, res->total_bytes);
    qlab_store_bind_real(st, 4, res->sqnr_db);
    qlab_store_bind_real(st, 5, res->mse);
    qlab_store_bind_real(st, 6, res->eval_ms);
    qlab_store_bind_text(st, 7, res->kernel);
    sqlite3_bind_int(st, 8, res->simulated ? 1 : 0);
    sqlite3_bind_int64(st, 9, res->weight_params);
    sqlite3_bind_text(st, 10, QLAB_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, run_id);
    r = qlab_store_step_done(s->db, st, err, "recording the run");
    sqlite3_finalize(st);
    if (r >= 0 && sqlite3_changes(s->db) != 1)
        r = stale_run(s, run_id, err);
    if (r >= 0)
        r = insert_layers(s, run_id, res, err);
    if (r >= 0)
        r = insert_hists(s, run_id, res, err);
    if (r >= 0)
        r = maybe_complete(s, run_id, err);
    return end(s, r, err);
}

int qlab_store_fail_run(qlab_store *s, int64_t run_id, const char *error, qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    r = run_stmt(s->db,
                 "UPDATE runs SET status = 'failed', error = ?, finished_at = " NOW
                 " WHERE id = ? AND status = 'running'",
                 err, NULL, &st);
    if (r < 0)
        return end(s, r, err);
    qlab_store_bind_text(st, 1, error ? error : "unknown error");
    sqlite3_bind_int64(st, 2, run_id);
    r = qlab_store_step_done(s->db, st, err, "recording the failure");
    sqlite3_finalize(st);
    if (r >= 0 && sqlite3_changes(s->db) != 1)
        r = stale_run(s, run_id, err);
    if (r >= 0)
        r = maybe_complete(s, run_id, err);
    return end(s, r, err);
}

/* Ends experiment id with status (cancelled / failed): its pending runs are cancelled.
 * Returns how many. */
static int end_experiment(qlab_store *s, int64_t id, const char *status, const char *error,
                          qlab_err *err)
{
    sqlite3_stmt *st;
    int r = run_stmt(s->db, "SELECT status FROM experiments WHERE id = ?", err, NULL, &st);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *cur = (const char *)sqlite3_column_text(st, 0);
        if (cur && strcmp(cur, "pending") != 0 && strcmp(cur, "running") != 0)
            r = qlab_err_set(err, -EALREADY, "experiment %lld is already %s", (long long)id,
                             cur);
    } else if (rc == SQLITE_DONE) {
        r = qlab_err_set(err, -ENOENT, "no experiment %lld", (long long)id);
    } else {
        r = qlab_store_sqlerr(s->db, rc, err, "reading the experiment");
    }
    sqlite3_finalize(st);
    if (r < 0)
        return r;
    r = run_stmt(s->db,
                 "UPDATE runs SET status = 'cancelled', finished_at = " NOW ", error = ?"
                 " WHERE experiment_id = ? AND status = 'pending'",
                 err, NULL, &st);
    if (r < 0)
        return r;
    qlab_store_bind_text(st, 1, error);
    sqlite3_bind_int64(st, 2, id);
    r = qlab_store_step_done(s->db, st, err, "cancelling runs");
    sqlite3_finalize(st);
    if (r < 0)
        return r;
    int n = sqlite3_changes(s->db);
    r = run_stmt(s->db,
                 "UPDATE experiments SET status = ?, error = ?, finished_at = " NOW
                 " WHERE id = ?",
                 err, NULL, &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    qlab_store_bind_text(st, 2, error);
    sqlite3_bind_int64(st, 3, id);
    r = qlab_store_step_done(s->db, st, err, "ending the experiment");
    sqlite3_finalize(st);
    return r < 0 ? r : n;
}

int qlab_store_cancel_experiment(qlab_store *s, int64_t experiment_id, qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    return end(s, end_experiment(s, experiment_id, "cancelled", NULL, err), err);
}

int qlab_store_fail_experiment(qlab_store *s, int64_t experiment_id, const char *error,
                               qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    r = end_experiment(s, experiment_id, "failed", error ? error : "unknown error", err);
    return end(s, r < 0 ? r : 0, err);
}

int qlab_store_set_baseline(qlab_store *s, int64_t experiment_id, double fp32_accuracy,
                            int64_t fp32_bytes, const char *model_sha256,
                            const char *kernel, qlab_err *err)
{
    int r = begin(s, err);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    r = run_stmt(s->db,
                 "UPDATE experiments SET fp32_accuracy = ?, fp32_bytes = ?,"
                 " model_sha256 = coalesce(?, model_sha256), kernel = coalesce(?, kernel)"
                 " WHERE id = ?",
                 err, NULL, &st);
    if (r < 0)
        return end(s, r, err);
    qlab_store_bind_real(st, 1, fp32_accuracy);
    sqlite3_bind_int64(st, 2, fp32_bytes);
    qlab_store_bind_text(st, 3, model_sha256);
    qlab_store_bind_text(st, 4, kernel);
    sqlite3_bind_int64(st, 5, experiment_id);
    r = qlab_store_step_done(s->db, st, err, "recording the baseline");
    sqlite3_finalize(st);
    if (r >= 0 && sqlite3_changes(s->db) != 1)
        r = qlab_err_set(err, -ENOENT, "no experiment %lld", (long long)experiment_id);
    if (r < 0)
        return end(s, r, err);
    /* Runs finished before the baseline was known (or under an earlier measurement, after
     * a resume) get their derived columns from this one. */
    r = run_stmt(s->db,
                 "UPDATE runs SET accuracy_delta = accuracy - ?1,"
                 " compression = ?2 * 1.0 / nullif(total_bytes, 0)"
                 " WHERE experiment_id = ?3 AND status = 'done'",
                 err, NULL, &st);
    if (r < 0)
        return end(s, r, err);
    qlab_store_bind_real(st, 1, fp32_accuracy);
    sqlite3_bind_int64(st, 2, fp32_bytes);
    sqlite3_bind_int64(st, 3, experiment_id);
    r = qlab_store_step_done(s->db, st, err, "updating finished runs");
    sqlite3_finalize(st);
    return end(s, r, err);
}
