/* qlab-shm.h — qlab's shared-memory IPC: the daemon side (server) and the client side.
 *
 * Set-up goes through a Unix socket; after it, requests, replies and progress events travel
 * through two single-producer single-consumer rings in a memfd the daemon creates for each
 * client, and tensors through a data area in that same memfd (no copy through the kernel).
 * The socket stays open only to tell each side that the other died.
 *
 * Every function returns 0 (or a count) or a negative errno, and never logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlab-err.h"
#include "qlab-proto.h"

#define QLAB_SHM_SOCKET_NAME "qlabd.sock"

/* The socket path: $QLAB_SOCKET when set; else $XDG_RUNTIME_DIR/qlab/qlabd.sock (with
 * create, the qlab folder is made 0700, and an existing one must be ours); else
 * fallback_dir/qlabd.sock (the database's folder). -ENAMETOOLONG when buf is too small,
 * -ENOENT with no runtime dir and no fallback_dir. */
int qlab_shm_socket_path(const char *fallback_dir, bool create, char *buf, size_t size);

/* ------------------------------------------------------------------------- server ---- */

typedef struct qlab_shm_server qlab_shm_server;

/* What a handler sees of a request. Everything here is private memory, except data: the
 * client's data area, which the client may rewrite at any moment. Handlers read tensors
 * from it as untrusted numbers (NaN, Inf, values changing mid-read are all possible) and
 * never keep pointers into it after returning. */
typedef struct qlab_shm_request {
    const qlab_msg *msg;          /* decoded and validated */
    uint64_t        client_id;
    unsigned char  *data;
    size_t          data_size;
    const char     *yaml;         /* SUBMIT YAML: a private NUL-terminated copy; else NULL */
    size_t          yaml_len;
} qlab_shm_request;

/* A handler returns 0 or -errno, which becomes reply->status; it fills reply->value, ->u and
 * (on failure) ->text with one line for the user, e.g. "x.yaml:12:5: unknown calibration".
 * Handlers run on the server thread: they must be short (queue long work elsewhere).
 * A NULL handler answers -ENOSYS. */
typedef int (*qlab_shm_handler)(void *userdata, const qlab_shm_request *req,
                                qlab_msg_reply *reply);

typedef struct qlab_shm_handlers {
    qlab_shm_handler submit;      /* value: the new experiment id */
    qlab_shm_handler cancel;
    qlab_shm_handler status;      /* u.info */
    qlab_shm_handler list;        /* qlab_exp_info records at msg->u.list.out_off; value: count */
    qlab_shm_handler quant;       /* zero-copy: see qlab_msg_quant; u.metrics */
    qlab_shm_handler subscribe;   /* optional: the server records subscriptions itself */
    void (*client_gone)(void *userdata, uint64_t client_id);  /* optional */
} qlab_shm_handlers;

typedef struct qlab_shm_server_opts {
    int64_t  spin_ns;             /* poll the rings this long after the last work before
                                   * sleeping in epoll (default 50 us); < 0: never sleep */
    int      busy_poll_cpu;       /* >= 0: pin the server thread to this CPU */
    uint32_t max_clients;         /* default 64 */
    uint64_t max_data_size;       /* largest data area a client may ask for (default 1 GiB) */
    int64_t  hello_timeout_ns;    /* a connection that has not sent its hello by then is
                                   * closed, so silent connections cannot hold the client
                                   * slots (default 5 s); <= 0: wait forever */
} qlab_shm_server_opts;

#define QLAB_SHM_SERVER_OPTS_DEFAULT \
    { .spin_ns = 50000, .busy_poll_cpu = -1, .max_clients = 64, .max_data_size = 1ull << 30, \
      .hello_timeout_ns = 5000000000ll }

/* Binds path (a stale socket of a dead daemon is replaced; -EADDRINUSE when a daemon
 * answers there). handlers and userdata are used from the server thread. opts may be NULL. */
int qlab_shm_server_new(const char *path, const qlab_shm_handlers *handlers, void *userdata,
                        const qlab_shm_server_opts *opts, qlab_shm_server **out);

/* Serves until qlab_shm_server_stop(); returns 0 or a fatal -errno (epoll failure). */
int qlab_shm_server_run(qlab_shm_server *s);
/* Runs qlab_shm_server_run on a new thread. */
int qlab_shm_server_start(qlab_shm_server *s);
/* Asks the loop to return; thread-safe and async-signal-safe. */
void qlab_shm_server_stop(qlab_shm_server *s);
/* Stops and joins a started server, drops every client, unlinks the socket. NULL is fine. */
void qlab_shm_server_free(qlab_shm_server *s);

/* Queues a progress event for every client subscribed to ev->experiment_id (or to all).
 * Thread-safe: the server thread stays the only producer of each client's ring. Returns
 * -EAGAIN when the queue (4096 events) is full. A client whose ring is full loses the
 * event and learns how many it lost from the next one's `dropped`. */
int qlab_shm_server_publish(qlab_shm_server *s, const qlab_event *ev);

/* Connected clients (after set-up); for tests and `qlab status`. Thread-safe. */
unsigned qlab_shm_server_clients(qlab_shm_server *s);

/* ------------------------------------------------------------------------- client ---- */

typedef struct qlab_shm_client qlab_shm_client;

typedef struct qlab_shm_client_opts {
    uint32_t sq_entries;          /* power of two, 2..4096 (default 64) */
    uint32_t cq_entries;          /* power of two, 2..4096 (default 256) */
    uint64_t data_size;           /* bytes of data area (default 16 MiB) */
    int64_t  spin_ns;             /* spin before sleeping on the futex (default 20 us);
                                   * < 0: busy-poll, never sleep */
    bool     eventfd_notify;      /* also signal qlab_shm_client_event_fd() (GLib) */
} qlab_shm_client_opts;

#define QLAB_SHM_CLIENT_OPTS_DEFAULT \
    { .sq_entries = 64, .cq_entries = 256, .data_size = 16u << 20, .spin_ns = 20000, \
      .eventfd_notify = false }

/* Connects, checks the daemon runs as our uid, maps the rings. -ENOENT / -ECONNREFUSED
 * when no daemon listens, -EACCES when it refused us. opts may be NULL. */
int qlab_shm_connect(const char *path, const qlab_shm_client_opts *opts,
                     qlab_shm_client **out);
void qlab_shm_client_free(qlab_shm_client *c);

/* The data area: write tensors / YAML here, reference them by offset from its start. */
void *qlab_shm_client_data(qlab_shm_client *c, size_t *size);
uint64_t qlab_shm_client_id(const qlab_shm_client *c);

/* Sends m (m->id is assigned when 0), waiting up to timeout_ms (-1: forever) for room. */
int qlab_shm_client_send(qlab_shm_client *c, qlab_msg *m, int timeout_ms);
/* The next message of the daemon's ring (replies and events, unsorted). -ETIMEDOUT,
 * -ECONNRESET when the daemon died, -EIO when its ring is corrupt (fatal), -EBADMSG /
 * -EMSGSIZE / -EPROTO for one undecodable message (consumed; the next may be fine). */
int qlab_shm_client_recv(qlab_shm_client *c, qlab_msg *out, int timeout_ms);
/* Request/response: sends req, returns once its reply arrived (events received meanwhile
 * are kept for qlab_shm_client_next_event). Returns 0 once a reply came (look at
 * reply->u.reply.status), else as recv. */
int qlab_shm_client_call(qlab_shm_client *c, qlab_msg *req, qlab_msg *reply, int timeout_ms);
/* The next progress event (after SUBSCRIBE). */
int qlab_shm_client_next_event(qlab_shm_client *c, qlab_event *ev, int timeout_ms);

/* 0 while the daemon lives, -ECONNRESET once it is gone. */
int qlab_shm_client_alive(qlab_shm_client *c);
/* For a main loop (GLib): the eventfd signalled on each daemon message when opts asked
 * for eventfd_notify (read it to reset), and the socket, which hangs up when qlabd dies. */
int qlab_shm_client_event_fd(const qlab_shm_client *c);
int qlab_shm_client_socket_fd(const qlab_shm_client *c);

/* Convenience calls. They return the reply's status (0 or -errno) or a transport error;
 * on failure err (optional) gets the daemon's one-line text or a transport message. */
int qlab_shm_submit_path(qlab_shm_client *c, const char *path, uint64_t *experiment_id,
                         qlab_err *err);
int qlab_shm_submit_yaml(qlab_shm_client *c, const char *yaml, size_t len,
                         uint64_t *experiment_id, qlab_err *err);
int qlab_shm_cancel(qlab_shm_client *c, uint64_t experiment_id, qlab_err *err);
int qlab_shm_status(qlab_shm_client *c, uint64_t experiment_id, qlab_exp_info *info,
                    qlab_err *err);
/* Listing through the data area's last bytes; returns the count (may exceed cap). */
int qlab_shm_list(qlab_shm_client *c, qlab_exp_info *infos, size_t cap, qlab_err *err);
int qlab_shm_subscribe(qlab_shm_client *c, uint64_t experiment_id, bool on, qlab_err *err);
/* q's offsets refer to the data area, which already holds the input tensor. */
int qlab_shm_quant(qlab_shm_client *c, const qlab_msg_quant *q, qlab_quant_metrics *metrics,
                   qlab_err *err);
