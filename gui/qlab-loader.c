/* qlab-loader.c — worker-thread loads and the data_version poller (see qlab-loader.h). */
#include <errno.h>

#include "qlab-loader.h"

void qlab_snapshot_free(QlabSnapshot *s)
{
    if (!s)
        return;
    qlab_results_exps_free(s->exps, s->n_exps);
    if (s->runs) {
        qlab_plot_data_clear(s->runs);
        g_free(s->runs);
    }
    g_free(s);
}

struct snapshot_req {
    char *path;
    gint64 experiment_id;
    qlab_plot_filter filter;
    enum qlab_plot_x x_mode;
    gboolean log_x;
};

static void snapshot_req_free(gpointer p)
{
    struct snapshot_req *r = p;
    g_free(r->path);
    g_free(r);
}

static void snapshot_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    struct snapshot_req *req = data;
    gint64 t0 = g_get_monotonic_time();
    qlab_err err;
    qlab_err_clear(&err);
    sqlite3 *db = NULL;
    QlabSnapshot *s = g_new0(QlabSnapshot, 1);
    s->experiment_id = req->experiment_id;
    int r = qlab_results_open(req->path, &db, &err);
    /* One read transaction: the list's counters and the runs come from one snapshot. */
    if (r == 0)
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (r == 0)
        r = qlab_results_experiments(db, &s->exps, &s->n_exps, &err);
    if (r == 0 && req->experiment_id >= 0) {
        s->runs = g_new(qlab_plot_data, 1);
        qlab_plot_data_init(s->runs);
        r = qlab_results_load_runs(db, req->experiment_id, s->runs, &err);
        if (r == 0) {
            qlab_plot_data_apply_filter(s->runs, &req->filter);
            r = qlab_plot_data_normalise(s->runs, req->x_mode, req->log_x);
        }
        if (r == -ENOENT) { /* the experiment went away: show the list only */
            qlab_plot_data_clear(s->runs);
            g_clear_pointer(&s->runs, g_free);
            s->experiment_id = -1;
            r = 0;
        }
    }
    if (db)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    s->elapsed_ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    if (r < 0) {
        qlab_snapshot_free(s);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s",
                                err.msg[0] ? err.msg : g_strerror(-r));
        return;
    }
    g_task_return_pointer(task, s, (GDestroyNotify)qlab_snapshot_free);
}

void qlab_load_snapshot_async(const char *db_path, gint64 experiment_id,
                              const qlab_plot_filter *filter, enum qlab_plot_x x_mode,
                              gboolean log_x, GCancellable *cancellable, GAsyncReadyCallback cb,
                              gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, cb, user_data);
    struct snapshot_req *req = g_new0(struct snapshot_req, 1);
    req->path = g_strdup(db_path);
    req->experiment_id = experiment_id;
    req->filter = *filter;
    req->x_mode = x_mode;
    req->log_x = log_x;
    g_task_set_task_data(task, req, snapshot_req_free);
    g_task_set_return_on_cancel(task, TRUE);
    g_task_run_in_thread(task, snapshot_thread);
    g_object_unref(task);
}

QlabSnapshot *qlab_load_snapshot_finish(GAsyncResult *res, GError **error)
{
    return g_task_propagate_pointer(G_TASK(res), error);
}

static void free_detail(gpointer p)
{
    qlab_results_run_clear(p);
    g_free(p);
}

static void detail_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    struct snapshot_req *req = data;
    qlab_err err;
    qlab_err_clear(&err);
    sqlite3 *db = NULL;
    qlab_results_run *d = g_new0(qlab_results_run, 1);
    int r = qlab_results_open(req->path, &db, &err);
    if (r == 0)
        r = qlab_results_run_detail(db, req->experiment_id, d, &err);
    sqlite3_close(db);
    if (r < 0) {
        g_free(d);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s",
                                err.msg[0] ? err.msg : g_strerror(-r));
        return;
    }
    g_task_return_pointer(task, d, free_detail);
}

void qlab_load_detail_async(const char *db_path, gint64 run_id, GCancellable *cancellable,
                            GAsyncReadyCallback cb, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, cb, user_data);
    struct snapshot_req *req = g_new0(struct snapshot_req, 1);
    req->path = g_strdup(db_path);
    req->experiment_id = run_id;
    g_task_set_task_data(task, req, snapshot_req_free);
    g_task_set_return_on_cancel(task, TRUE);
    g_task_run_in_thread(task, detail_thread);
    g_object_unref(task);
}

qlab_results_run *qlab_load_detail_finish(GAsyncResult *res, GError **error)
{
    return g_task_propagate_pointer(G_TASK(res), error);
}

struct QlabPoller {
    char *path;
    guint interval_ms;
    GThread *thread;
    GMutex lock;
    GCond cond;
    gboolean stop, wake;
    gint changes; /* atomic: bumped by the thread, consumed by the main-loop timeout */
    guint source;
    GSourceFunc on_change;
    gpointer user_data;
};

static gpointer poll_thread(gpointer data)
{
    QlabPoller *p = data;
    sqlite3 *db = NULL;
    gint64 last = -1;
    g_mutex_lock(&p->lock);
    while (!p->stop) {
        g_mutex_unlock(&p->lock);
        if (!db && qlab_results_open(p->path, &db, NULL) < 0)
            db = NULL;
        gint64 v;
        if (db && qlab_results_data_version(db, &v) == 0) {
            if (last >= 0 && v != last)
                g_atomic_int_inc(&p->changes);
            last = v;
        }
        g_mutex_lock(&p->lock);
        gint64 until = g_get_monotonic_time() + p->interval_ms * G_TIME_SPAN_MILLISECOND;
        /* wake: the interval changed; check now and wait by the new one. */
        while (!p->stop && !p->wake && g_cond_wait_until(&p->cond, &p->lock, until))
            ;
        p->wake = FALSE;
    }
    g_mutex_unlock(&p->lock);
    sqlite3_close(db);
    return NULL;
}

static gboolean poll_tick(gpointer data)
{
    QlabPoller *p = data;
    if (g_atomic_int_and(&p->changes, 0) != 0)
        p->on_change(p->user_data);
    return G_SOURCE_CONTINUE;
}

QlabPoller *qlab_poller_new(const char *db_path, guint interval_ms, GSourceFunc on_change,
                            gpointer user_data)
{
    QlabPoller *p = g_new0(QlabPoller, 1);
    p->path = g_strdup(db_path);
    p->interval_ms = interval_ms;
    p->on_change = on_change;
    p->user_data = user_data;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    p->thread = g_thread_new("qlab-poll", poll_thread, p);
    p->source = g_timeout_add(interval_ms, poll_tick, p);
    return p;
}

void qlab_poller_set_interval(QlabPoller *p, guint interval_ms)
{
    if (!p || p->interval_ms == interval_ms)
        return;
    g_mutex_lock(&p->lock);
    p->interval_ms = interval_ms;
    p->wake = TRUE;
    g_cond_signal(&p->cond);
    g_mutex_unlock(&p->lock);
    g_source_remove(p->source);
    p->source = g_timeout_add(interval_ms, poll_tick, p);
}

void qlab_poller_free(QlabPoller *p)
{
    if (!p)
        return;
    g_source_remove(p->source);
    g_mutex_lock(&p->lock);
    p->stop = TRUE;
    g_cond_signal(&p->cond);
    g_mutex_unlock(&p->lock);
    g_thread_join(p->thread);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
    g_free(p->path);
    g_free(p);
}
