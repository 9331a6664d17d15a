/* qlab-live.c — QlabLive (see qlab-live.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "qlab-live.h"
#include "qlab-shm.h"

/* While disconnected, look for a daemon this often; and never start attempts closer than
 * MIN_GAP apart, however often the window asks (it asks on every database change). */
#define RETRY_S 3
#define MIN_GAP_US G_USEC_PER_SEC
#define SOCK_MAX 108 /* sizeof(sockaddr_un.sun_path) */

struct QlabLive {
    char *db_dir;
    char socket[SOCK_MAX];
    QlabLiveFunc on_results, on_state;
    gpointer user_data;
    qlab_shm_client *client; /* owned by the main thread once connected */
    qlab_msg *msg; /* receive buffer (a message is ~4 KiB: not on the stack) */
    guint event_src, hup_src, retry_src;
    GCancellable *attempt; /* non-NULL while a connection attempt runs */
    gint64 last_attempt;
    guint64 n_events, n_batches;
};

/* One attempt: up to two socket paths, tried in order by a worker thread. */
typedef struct attempt {
    char path[2][SOCK_MAX];
    int connected; /* index into path, -1 */
} attempt;

static int connect_one(const char *path, qlab_shm_client **out)
{
    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    /* The GUI only listens: a small command ring and data area; events come through the
     * eventfd, which GLib can poll (the futex it cannot). */
    o.sq_entries = 8;
    o.data_size = 64u << 10;
    o.eventfd_notify = true;
    qlab_shm_client *c;
    int r = qlab_shm_connect(path, &o, &c);
    if (r < 0)
        return r;
    r = qlab_shm_subscribe(c, 0, true, NULL);
    if (r < 0) {
        qlab_shm_client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* Worker thread: the hello and the SUBSCRIBE call wait for the daemon's answers (seconds,
 * if it is busy or hung), which the main loop must never do. */
static void connect_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    attempt *a = data;
    qlab_shm_client *c = NULL;
    int r = -ENOENT;
    a->connected = -1;
    for (int i = 0; i < 2 && r < 0; i++)
        if (a->path[i][0] && (r = connect_one(a->path[i], &c)) == 0)
            a->connected = i;
    if (r < 0)
        g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(-r), "%s: %s",
                                a->path[0], g_strerror(-r));
    else
        g_task_return_pointer(task, c, (GDestroyNotify)qlab_shm_client_free);
}

static void disconnect(QlabLive *live)
{
    /* Sources first: GLib must stop polling the fds before they are closed. */
    g_clear_handle_id(&live->event_src, g_source_remove);
    g_clear_handle_id(&live->hup_src, g_source_remove);
    g_clear_pointer(&live->client, qlab_shm_client_free);
}

/* Reads every queued message; calls on_results once when any event (or changed) says the
 * database changed. FALSE when the daemon is gone or its ring is unreadable.
 *
 * Uses recv rather than next_event: next_event retries on -EPROTO, which a corrupt ring
 * returns forever, and the main loop must not spin. Events the SUBSCRIBE call buffered are
 * covered by the reload that follows every connection. */
static gboolean drain(QlabLive *live, gboolean changed)
{
    int r;
    for (;;) {
        r = qlab_shm_client_recv(live->client, live->msg, 0);
        if (r == -EBADMSG || r == -EMSGSIZE)
            continue; /* one malformed message, consumed: skip it */
        if (r < 0)
            break;
        if (live->msg->type != QLAB_MSG_EVENT)
            continue; /* a late reply */
        const qlab_event *ev = &live->msg->u.event;
        live->n_events++;
        /* RUN_STARTED changes nothing the window shows; the others are published after
         * their commit. Lost events (dropped) may have been any of them. */
        if (ev->dropped || ev->kind == QLAB_EVENT_RUN_FINISHED ||
            ev->kind == QLAB_EVENT_EXPERIMENT_STARTED ||
            ev->kind == QLAB_EVENT_EXPERIMENT_FINISHED)
            changed = TRUE;
    }
    if (changed) {
        live->n_batches++;
        live->on_results(live->user_data);
    }
    return r == -ETIMEDOUT || r == -EAGAIN;
}

static gboolean on_event_fd(int fd, GIOCondition cond, gpointer data)
{
    QlabLive *live = data;
    /* Reset the eventfd before draining: a message the daemon pushes after the drain found
     * the ring empty signals it again, so no event waits unseen. The daemon made it
     * non-blocking; with G_IO_IN set the read cannot block anyway. */
    guint64 count;
    ssize_t k = read(fd, &count, sizeof(count));
    (void)k;
    if (!drain(live, FALSE)) {
        disconnect(live);
        live->on_state(live->user_data);
    }
    return G_SOURCE_CONTINUE; /* disconnect() already removed it if need be */
}

static gboolean on_socket(int fd, GIOCondition cond, gpointer data)
{
    QlabLive *live = data;
    /* qlabd writes nothing after the hello: readable means end of file, i.e. it exited.
     * Its last events may still sit in the ring; the reload they ask for is merged with
     * the one the state change brings. */
    drain(live, FALSE);
    disconnect(live);
    live->on_state(live->user_data);
    return G_SOURCE_CONTINUE;
}

static void on_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    GError *error = NULL;
    qlab_shm_client *c = g_task_propagate_pointer(G_TASK(res), &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        /* live is gone; GTask frees an unclaimed client with its destroy notify. */
        g_error_free(error);
        return;
    }
    QlabLive *live = data;
    g_clear_object(&live->attempt);
    if (!c) {
        g_error_free(error); /* no daemon: stay on polling, retry later */
        return;
    }
    const attempt *a = g_task_get_task_data(G_TASK(res));
    g_strlcpy(live->socket, a->path[a->connected], sizeof(live->socket));
    live->client = c;
    live->event_src = g_unix_fd_add(qlab_shm_client_event_fd(c), G_IO_IN, on_event_fd, live);
    live->hup_src = g_unix_fd_add(qlab_shm_client_socket_fd(c), G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  on_socket, live);
    /* on_state reloads: that covers what the daemon wrote between the window's last load
     * and now, and the events the SUBSCRIBE call set aside. */
    live->on_state(live->user_data);
    if (!drain(live, FALSE)) {
        disconnect(live);
        live->on_state(live->user_data);
    }
}

static gboolean on_retry(gpointer data)
{
    QlabLive *live = data;
    if (!live->client)
        qlab_live_connect(live);
    return G_SOURCE_CONTINUE;
}

void qlab_live_connect(QlabLive *live)
{
    if (!live || live->client || live->attempt)
        return;
    gint64 now = g_get_monotonic_time();
    if (live->last_attempt && now - live->last_attempt < MIN_GAP_US)
        return;
    live->last_attempt = now;
    /* Paths are chosen here, on the main thread, which is the one that reads the
     * environment. The usual path, then (unless $QLAB_SOCKET names one) the database's
     * folder: a qlabd started without $XDG_RUNTIME_DIR listens there. */
    attempt *a = g_new0(attempt, 1);
    if (qlab_shm_socket_path(live->db_dir, false, a->path[0], SOCK_MAX) < 0)
        a->path[0][0] = '\0';
    if (!g_getenv("QLAB_SOCKET")) {
        int n = snprintf(a->path[1], SOCK_MAX, "%s/%s", live->db_dir, QLAB_SHM_SOCKET_NAME);
        if (n < 0 || n >= SOCK_MAX || !strcmp(a->path[0], a->path[1]))
            a->path[1][0] = '\0';
    }
    if (!live->socket[0])
        g_strlcpy(live->socket, a->path[0][0] ? a->path[0] : a->path[1], sizeof(live->socket));
    live->attempt = g_cancellable_new();
    GTask *task = g_task_new(NULL, live->attempt, on_connected, live);
    g_task_set_task_data(task, a, g_free);
    g_task_run_in_thread(task, connect_thread);
    g_object_unref(task);
}

QlabLive *qlab_live_new(const char *db_path, QlabLiveFunc on_results, QlabLiveFunc on_state,
                        gpointer user_data)
{
    QlabLive *live = g_new0(QlabLive, 1);
    live->db_dir = g_path_get_dirname(db_path);
    live->on_results = on_results;
    live->on_state = on_state;
    live->user_data = user_data;
    live->msg = g_new(qlab_msg, 1);
    live->retry_src = g_timeout_add_seconds(RETRY_S, on_retry, live);
    qlab_live_connect(live);
    return live;
}

void qlab_live_free(QlabLive *live)
{
    if (!live)
        return;
    if (live->attempt) {
        g_cancellable_cancel(live->attempt);
        g_clear_object(&live->attempt);
    }
    g_clear_handle_id(&live->retry_src, g_source_remove);
    disconnect(live);
    g_free(live->msg);
    g_free(live->db_dir);
    g_free(live);
}

gboolean qlab_live_is_connected(const QlabLive *live)
{
    return live && live->client != NULL;
}

const char *qlab_live_get_socket(const QlabLive *live)
{
    return live ? live->socket : "";
}

guint64 qlab_live_get_n_events(const QlabLive *live)
{
    return live ? live->n_events : 0;
}

guint64 qlab_live_get_n_batches(const QlabLive *live)
{
    return live ? live->n_batches : 0;
}
