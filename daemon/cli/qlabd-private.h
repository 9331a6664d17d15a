/* qlabd-private.h — what qlabd's files share. */
#pragma once

#include <limits.h>

#include "qlab-engine.h"
#include "qlab-err.h"
#include "qlab-store.h"

typedef struct qlabd {
    char db_path[PATH_MAX];
    char socket_path[PATH_MAX];
    qlab_store *store;
    qlab_engine *engine;
    void *ipc;                   /* the shared-memory server (qlabd-ipc.c) */
} qlabd;

/* One line to stderr (the log), with a UTC timestamp. Thread-safe. */
void qlabd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* qlabd-ipc.c: serve clients over the shared-memory rings. sock NULL: the default place
 * ($XDG_RUNTIME_DIR/qlab/qlabd.sock, else dbdir/qlabd.sock). */
int qlabd_ipc_start(qlabd *d, const char *sock, const char *dbdir, qlab_err *err);
void qlabd_ipc_stop(qlabd *d);
/* Forwards an engine event to subscribed clients (safe before start / after stop). */
void qlabd_ipc_event(qlabd *d, const qlab_engine_event *ev);
