/* qlab-live.h — the GUI's link to a running qlabd (PRODUCT §7, §8 "live").
 *
 * Connects to the daemon's socket (qlab_shm_socket_path: $QLAB_SOCKET, else
 * $XDG_RUNTIME_DIR/qlab/qlabd.sock, else qlabd.sock beside the database) in a worker
 * thread, so a daemon that is slow to answer never stalls the main loop, and subscribes
 * to the progress events of every experiment. Once connected, everything runs on the main
 * context: a GLib source on the client's eventfd drains the events and reports, once per
 * batch, that results changed (a run finished, an experiment started or finished, or
 * events were lost); a source on the socket sees the daemon die (hang-up) and drops the
 * connection. While not connected it retries every few seconds and when asked to
 * (qlab_live_connect), so a qlabd started after the window is found. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct QlabLive QlabLive;
typedef void (*QlabLiveFunc)(gpointer user_data);

/* Starts a connection attempt for the database at db_path (its folder is the socket's
 * fallback location). on_results runs on the main context after a batch of events that
 * changed the database; on_state whenever the connection comes or goes. */
QlabLive *qlab_live_new(const char *db_path, QlabLiveFunc on_results, QlabLiveFunc on_state,
                        gpointer user_data);
/* Disconnects; an attempt in flight is abandoned (its result is freed when it ends). */
void qlab_live_free(QlabLive *live);
/* Tries to connect now unless connected, connecting, or the last attempt was under a
 * second ago (callers may ask on every database change). */
void qlab_live_connect(QlabLive *live);
gboolean qlab_live_is_connected(const QlabLive *live);
/* The socket of the current (or last tried) connection; "" before the first attempt. */
const char *qlab_live_get_socket(const QlabLive *live);
/* Progress events received, and batches that called on_results (for tests, status). */
guint64 qlab_live_get_n_events(const QlabLive *live);
guint64 qlab_live_get_n_batches(const QlabLive *live);

G_END_DECLS
