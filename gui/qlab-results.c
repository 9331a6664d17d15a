/* qlab-results.c — read-only queries behind the plots (see qlab-results.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-results.h"

static int db_error(sqlite3 *db, qlab_err *err, const char *what)
{
    return qlab_err_set(err, -EIO, "%s: %s", what, sqlite3_errmsg(db));
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

static double real_or_nan(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* The database stores accuracy in percent (schema.sql: runs.accuracy 0..100,
 * experiments.fp32_accuracy); the plot works in fractions. This is the one conversion. */
static double percent_to_fraction(double percent)
{
    return percent / 100.0;
}

int qlab_results_open(const char *path, sqlite3 **out, qlab_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = qlab_err_set(err, rc == SQLITE_CANTOPEN ? -ENOENT : -EIO, "%s: %s", path,
                             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    /* The writer holds its lock only for one run's transaction; wait rather than fail. */
    sqlite3_busy_timeout(db, 2000);
    /* Opening is lazy: check now that this is a qlab database, with a clear message. */
    sqlite3_stmt *st = NULL;
    int tables = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE name IN "
                           "('experiments','runs','layer_metrics','histograms')",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        tables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (tables != 4) {
        int r = qlab_err_set(err, -EINVAL, "%s: not a qlab results database (%s)", path,
                             tables < 0 ? sqlite3_errmsg(db) : "its tables are missing");
        sqlite3_close(db);
        return r;
    }
    *out = db;
    return 0;
}

int qlab_results_data_version(sqlite3 *db, int64_t *version)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

#define EXP_COLS                                                                                   \
    "SELECT id, name, status, runs_total, runs_done, runs_failed, fp32_accuracy, "                 \
    "fp32_bytes FROM experiments "

static void exp_row(sqlite3_stmt *st, qlab_results_exp *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->name = dup_col(st, 1);
    r->status = dup_col(st, 2);
    r->runs_total = sqlite3_column_int64(st, 3);
    r->runs_done = sqlite3_column_int64(st, 4);
    r->runs_failed = sqlite3_column_int64(st, 5);
    r->fp32_accuracy = percent_to_fraction(real_or_nan(st, 6));
    r->fp32_bytes = sqlite3_column_double(st, 7);
}

void qlab_results_exps_free(qlab_results_exp *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].name);
        free(rows[i].status);
    }
    free(rows);
}

int qlab_results_experiments(sqlite3 *db, qlab_results_exp **rows, size_t *n, qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, EXP_COLS "ORDER BY id DESC", -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "experiments");
    qlab_results_exp *v = NULL;
    size_t m = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap) {
            cap = cap ? cap * 2 : 16;
            qlab_results_exp *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                sqlite3_finalize(st);
                qlab_results_exps_free(v, m);
                return qlab_err_set(err, -ENOMEM, "experiments: out of memory");
            }
            v = nv;
        }
        exp_row(st, &v[m++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        qlab_results_exps_free(v, m);
        return db_error(db, err, "experiments");
    }
    *rows = v;
    *n = m;
    return 0;
}

int qlab_results_experiment(sqlite3 *db, int64_t id, qlab_results_exp *row, qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, EXP_COLS "WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "experiment");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        exp_row(st, row);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return qlab_err_set(err, -ENOENT, "no experiment with id %lld", (long long)id);
    return rc == SQLITE_ROW ? 0 : db_error(db, err, "experiment");
}

int qlab_results_load_runs(sqlite3 *db, int64_t experiment_id, qlab_plot_data *out, qlab_err *err)
{
    qlab_results_exp e;
    qlab_plot_data_clear(out);
    int r = qlab_results_experiment(db, experiment_id, &e, err);
    if (r < 0)
        return r;
    out->fp32_accuracy = e.fp32_accuracy;
    out->fp32_bytes = e.fp32_bytes;
    snprintf(out->title, sizeof(out->title), "%s (#%lld)", e.name ? e.name : "?", (long long)e.id);
    free(e.name);
    free(e.status);

    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, total_bytes, bits_per_weight, accuracy, bits, act_bits, "
                           "scheme, granularity, group_size, calibration FROM runs "
                           "WHERE experiment_id = ? AND status = 'done' "
                           "AND accuracy IS NOT NULL AND total_bytes IS NOT NULL ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "runs");
    sqlite3_bind_int64(st, 1, experiment_id);
    qlab_plot_point *v = NULL;
    size_t m = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap) {
            cap = cap ? cap * 2 : 256;
            qlab_plot_point *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                sqlite3_finalize(st);
                return qlab_err_set(err, -ENOMEM, "runs: out of memory");
            }
            v = nv;
        }
        qlab_plot_point *p = &v[m++];
        int s = qlab_plot_scheme_from_name((const char *)sqlite3_column_text(st, 6));
        int g = qlab_plot_granularity_from_name((const char *)sqlite3_column_text(st, 7));
        int c = qlab_plot_calibration_from_name((const char *)sqlite3_column_text(st, 9));
        *p = (qlab_plot_point){
            .run_id = sqlite3_column_int64(st, 0),
            .bytes = sqlite3_column_double(st, 1),
            .bpw = real_or_nan(st, 2),
            .accuracy = percent_to_fraction(sqlite3_column_double(st, 3)),
            .bits = (uint8_t)sqlite3_column_int(st, 4),
            .act_bits = (uint8_t)sqlite3_column_int(st, 5),
            .scheme = (uint8_t)(s < 0 ? 0 : s),
            .granularity = (uint8_t)(g < 0 ? 0 : g),
            .group_size = (uint16_t)sqlite3_column_int(st, 8),
            .calibration = (uint8_t)(c < 0 ? 0 : c),
            .flags = QLAB_POINT_VISIBLE,
        };
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        return db_error(db, err, "runs");
    }
    qlab_plot_data_set_points(out, v, m);
    return 0;
}

void qlab_results_run_clear(qlab_results_run *d)
{
    if (!d)
        return;
    free(d->summary);
    free(d->manifest);
    for (size_t i = 0; i < d->n_layers; i++) {
        free(d->layers[i].layer);
        free(d->layers[i].kind);
    }
    free(d->layers);
    for (size_t i = 0; i < d->n_hists; i++) {
        free(d->hists[i].layer);
        free(d->hists[i].tensor);
        free(d->hists[i].counts);
    }
    free(d->hists);
    memset(d, 0, sizeof(*d));
}

/* The run's own columns, one "name: value" line each, in the table's order, so columns a
 * later schema adds show up without a change here. */
static int run_summary(sqlite3 *db, int64_t run_id, qlab_results_run *out, qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT r.*, e.name AS experiment, e.fp32_accuracy, e.fp32_bytes "
                           "FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                           "WHERE r.id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "run");
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE
                   ? qlab_err_set(err, -ENOENT, "no run with id %lld", (long long)run_id)
                   : db_error(db, err, "run");
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sqlite3_finalize(st);
        return qlab_err_set(err, -ENOMEM, "run: out of memory");
    }
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const char *name = sqlite3_column_name(st, i);
        if (!strcmp(name, "manifest")) {
            free(out->manifest);
            out->manifest = dup_col(st, i);
            continue;
        }
        if (!strcmp(name, "config") || sqlite3_column_type(st, i) == SQLITE_NULL)
            continue;
        int is_acc = !strcmp(name, "accuracy") || !strcmp(name, "accuracy_delta") ||
                     !strcmp(name, "fp32_accuracy");
        int is_bytes = strstr(name, "bytes") != NULL;
        if (is_acc) {
            /* Printed as stored, in percent; the delta is a difference of percentages,
             * so percentage points: "accuracy: 86.57%", "accuracy_delta: -1.59 pp". */
            int delta = !strcmp(name, "accuracy_delta");
            fprintf(f, delta ? "%s: %+.2f pp\n" : "%s: %.2f%%\n", name,
                    sqlite3_column_double(st, i));
        } else if (is_bytes) {
            char b[32];
            qlab_plot_format_bytes(sqlite3_column_double(st, i), b, sizeof(b));
            fprintf(f, "%s: %lld (%s)\n", name, (long long)sqlite3_column_int64(st, i), b);
        } else if (sqlite3_column_type(st, i) == SQLITE_FLOAT) {
            fprintf(f, "%s: %.4g\n", name, sqlite3_column_double(st, i));
        } else {
            fprintf(f, "%s: %s\n", name, (const char *)sqlite3_column_text(st, i));
        }
    }
    sqlite3_finalize(st);
    if (fclose(f) != 0) {
        free(buf);
        return qlab_err_set(err, -ENOMEM, "run: out of memory");
    }
    out->summary = buf;
    return 0;
}

static int load_layers(sqlite3 *db, int64_t run_id, qlab_results_run *out, qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT layer, kind, params, bytes, bits, weight_sqnr_db, "
                           "output_sqnr_db, weight_mse, max_abs_error, cosine, clip_fraction "
                           "FROM layer_metrics WHERE run_id = ? ORDER BY position",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "layer_metrics");
    sqlite3_bind_int64(st, 1, run_id);
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_layers == cap) {
            cap = cap ? cap * 2 : 8;
            qlab_results_layer *nv = realloc(out->layers, cap * sizeof(*nv));
            if (!nv) {
                sqlite3_finalize(st);
                return qlab_err_set(err, -ENOMEM, "layer_metrics: out of memory");
            }
            out->layers = nv;
        }
        out->layers[out->n_layers++] = (qlab_results_layer){
            .layer = dup_col(st, 0),
            .kind = dup_col(st, 1),
            .params = sqlite3_column_int64(st, 2),
            .bytes = sqlite3_column_int64(st, 3),
            .bits = sqlite3_column_int(st, 4),
            .weight_sqnr_db = real_or_nan(st, 5),
            .output_sqnr_db = real_or_nan(st, 6),
            .weight_mse = real_or_nan(st, 7),
            .max_abs_error = real_or_nan(st, 8),
            .cosine = real_or_nan(st, 9),
            .clip_fraction = real_or_nan(st, 10),
        };
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(db, err, "layer_metrics");
}

static int load_hists(sqlite3 *db, int64_t run_id, qlab_results_run *out, qlab_err *err)
{
    sqlite3_stmt *st;
    /* Model order comes from layer_metrics; a histogram without metrics sorts last. */
    if (sqlite3_prepare_v2(db,
                           "SELECT h.layer, h.tensor, h.lo, h.hi, h.nbins, h.counts "
                           "FROM histograms h LEFT JOIN layer_metrics m "
                           "ON m.run_id = h.run_id AND m.layer = h.layer WHERE h.run_id = ? "
                           "ORDER BY coalesce(m.position, 1e9), h.layer, h.tensor DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "histograms");
    sqlite3_bind_int64(st, 1, run_id);
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t nbins = sqlite3_column_int64(st, 4);
        const unsigned char *blob = sqlite3_column_blob(st, 5);
        int blen = sqlite3_column_bytes(st, 5);
        /* The schema's CHECK keeps length = 4 * nbins; a hand-edited file may not. */
        if (nbins <= 0 || nbins > (1 << 24) || blen != 4 * nbins) {
            int r = qlab_err_set(err, -EINVAL,
                                 "histograms: run %lld layer %s: %d bytes for "
                                 "%lld bins",
                                 (long long)run_id, (const char *)sqlite3_column_text(st, 0), blen,
                                 (long long)nbins);
            sqlite3_finalize(st);
            return r;
        }
        if (out->n_hists == cap) {
            cap = cap ? cap * 2 : 8;
            qlab_results_hist *nv = realloc(out->hists, cap * sizeof(*nv));
            if (!nv) {
                sqlite3_finalize(st);
                return qlab_err_set(err, -ENOMEM, "histograms: out of memory");
            }
            out->hists = nv;
        }
        uint32_t *counts = malloc((size_t)nbins * sizeof(*counts));
        if (!counts) {
            sqlite3_finalize(st);
            return qlab_err_set(err, -ENOMEM, "histograms: out of memory");
        }
        for (int64_t i = 0; i < nbins; i++)
            counts[i] = (uint32_t)blob[4 * i] | (uint32_t)blob[4 * i + 1] << 8 |
                        (uint32_t)blob[4 * i + 2] << 16 | (uint32_t)blob[4 * i + 3] << 24;
        out->hists[out->n_hists++] = (qlab_results_hist){
            .layer = dup_col(st, 0),
            .tensor = dup_col(st, 1),
            .lo = sqlite3_column_double(st, 2),
            .hi = sqlite3_column_double(st, 3),
            .nbins = (size_t)nbins,
            .counts = counts,
        };
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_error(db, err, "histograms");
}

int qlab_results_run_experiment(sqlite3 *db, int64_t run_id, int64_t *experiment_id,
                                qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT experiment_id FROM runs WHERE id = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_error(db, err, "run");
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *experiment_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return qlab_err_set(err, -ENOENT, "no run with id %lld", (long long)run_id);
    return rc == SQLITE_ROW ? 0 : db_error(db, err, "run");
}

int qlab_results_run_detail(sqlite3 *db, int64_t run_id, qlab_results_run *out, qlab_err *err)
{
    memset(out, 0, sizeof(*out));
    out->id = run_id;
    /* One read transaction so the three queries see the same snapshot. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    int r = run_summary(db, run_id, out, err);
    if (r == 0)
        r = load_layers(db, run_id, out, err);
    if (r == 0)
        r = load_hists(db, run_id, out, err);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (r < 0)
        qlab_results_run_clear(out);
    return r;
}
