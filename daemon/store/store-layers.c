/* store-layers.c — reading a run's per-layer metrics and error histograms back. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

static void text_col(sqlite3_stmt *st, int i, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
}

static double real_col(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static int read_layer(sqlite3_stmt *st, void *row)
{
    qlab_layer_row *l = row;
    memset(l, 0, sizeof *l);
    text_col(st, 0, l->layer, sizeof l->layer);
    text_col(st, 1, l->kind, sizeof l->kind);
    l->position = sqlite3_column_int(st, 2);
    l->params = sqlite3_column_int64(st, 3);
    l->bytes = sqlite3_column_int64(st, 4);
    l->bits = sqlite3_column_int(st, 5);
    text_col(st, 6, l->scheme, sizeof l->scheme);
    text_col(st, 7, l->granularity, sizeof l->granularity);
    l->group_size = sqlite3_column_int(st, 8);
    double *v[] = { &l->weight_mse, &l->weight_sqnr_db, &l->max_abs_error, &l->cosine,
                    &l->clip_fraction, &l->output_sqnr_db, &l->output_mse,
                    &l->output_cosine };
    for (int k = 0; k < 8; k++)
        *v[k] = real_col(st, 9 + k);
    return 0;
}

static void clear_nothing(void *row)
{
    (void)row;
}

int qlab_store_layer_metrics(qlab_store *s, int64_t run_id, qlab_layer_row **rows, size_t *n,
                             qlab_err *err)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_prepare(s->db,
                               "SELECT layer, kind, position, params, bytes, bits, scheme,"
                               " granularity, group_size, weight_mse, weight_sqnr_db,"
                               " max_abs_error, cosine, clip_fraction, output_sqnr_db,"
                               " output_mse, output_cosine FROM layer_metrics"
                               " WHERE run_id = ? ORDER BY position",
                               &st, err);
    if (r >= 0) {
        sqlite3_bind_int64(st, 1, run_id);
        r = qlab_store_collect(s, st, sizeof **rows, read_layer, clear_nothing,
                               (void **)rows, n, err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int read_hist(sqlite3_stmt *st, void *row)
{
    qlab_hist_row *h = row;
    memset(h, 0, sizeof *h);
    text_col(st, 0, h->layer, sizeof h->layer);
    text_col(st, 1, h->tensor, sizeof h->tensor);
    h->lo = sqlite3_column_double(st, 2);
    h->hi = sqlite3_column_double(st, 3);
    int nbins = sqlite3_column_int(st, 4);
    const unsigned char *b = sqlite3_column_blob(st, 5);
    int len = sqlite3_column_bytes(st, 5);
    /* The schema's CHECK guarantees len == 4 * nbins; stay safe if it was bypassed. */
    if (nbins < 0 || len < 0 || len / 4 < nbins)
        nbins = len > 0 ? len / 4 : 0;
    h->counts = calloc(nbins > 0 ? (size_t)nbins : 1, sizeof *h->counts);
    if (!h->counts)
        return -ENOMEM;
    for (int i = 0; i < nbins; i++)
        h->counts[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                       (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
    h->nbins = nbins;
    return 0;
}

static void clear_hist(void *row)
{
    qlab_hist_row *h = row;
    free(h->counts);
    h->counts = NULL;
}

int qlab_store_histograms(qlab_store *s, int64_t run_id, qlab_hist_row **rows, size_t *n,
                          qlab_err *err)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->lock);
    int r = qlab_store_prepare(s->db,
                               "SELECT h.layer, h.tensor, h.lo, h.hi, h.nbins, h.counts"
                               " FROM histograms AS h LEFT JOIN layer_metrics AS m"
                               " ON m.run_id = h.run_id AND m.layer = h.layer"
                               " WHERE h.run_id = ? ORDER BY m.position, h.layer, h.tensor"
                               " DESC",
                               &st, err);
    if (r >= 0) {
        sqlite3_bind_int64(st, 1, run_id);
        r = qlab_store_collect(s, st, sizeof **rows, read_hist, clear_hist, (void **)rows, n,
                               err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

void qlab_hist_rows_free(qlab_hist_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].counts);
    free(rows);
}
