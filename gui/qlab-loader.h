/* qlab-loader.h — database work off the main loop: GTask-based loads and a poller thread
 * that watches PRAGMA data_version so the window reloads when the daemon commits a run. */
#pragma once

#include <gio/gio.h>

#include "qlab-results.h"

G_BEGIN_DECLS

typedef struct QlabSnapshot {
    qlab_results_exp *exps;
    size_t n_exps;
    gint64 experiment_id; /* -1: runs not requested */
    qlab_plot_data *runs; /* NULL when not requested */
    double elapsed_ms; /* time spent in the worker */
} QlabSnapshot;

void qlab_snapshot_free(QlabSnapshot *s);
/* Experiments, and the done runs of experiment_id when it is >= 0, in one worker task;
 * the runs come back filtered and normalised for the given axes, so the main thread only
 * swaps them in (sorting 100,000 runs for the front stays off the main loop). */
void qlab_load_snapshot_async(const char *db_path, gint64 experiment_id,
                              const qlab_plot_filter *filter, enum qlab_plot_x x_mode,
                              gboolean log_x, GCancellable *cancellable, GAsyncReadyCallback cb,
                              gpointer user_data);
QlabSnapshot *qlab_load_snapshot_finish(GAsyncResult *res, GError **error);

void qlab_load_detail_async(const char *db_path, gint64 run_id, GCancellable *cancellable,
                            GAsyncReadyCallback cb, gpointer user_data);
/* Caller frees with qlab_results_run_clear + g_free. */
qlab_results_run *qlab_load_detail_finish(GAsyncResult *res, GError **error);

/* Polls data_version on its own read-only connection in a thread; the main loop only
 * reads an atomic counter, so a slow or locked database never stalls it. on_change runs
 * on the main context (at most once per interval) after another connection committed. */
typedef struct QlabPoller QlabPoller;
QlabPoller *qlab_poller_new(const char *db_path, guint interval_ms, GSourceFunc on_change,
                            gpointer user_data);
/* Polls every interval_ms from now on (the window slows down while qlabd's events do the
 * work, and speeds up again when the daemon goes). */
void qlab_poller_set_interval(QlabPoller *p, guint interval_ms);
void qlab_poller_free(QlabPoller *p);

G_END_DECLS
