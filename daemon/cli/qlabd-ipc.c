/* qlabd-ipc.c — qlabd's side of the shared-memory protocol: the request handlers (they
 * run on the shm server's thread, so each is short: submitting an experiment only loads
 * and expands the YAML and inserts its runs; the workers do the rest) and the bridge from
 * engine events to subscribed clients. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-quant.h"
#include "qlab-shm-quant.h"
#include "qlab-shm.h"
#include "qlabd-private.h"

/* Copies src into dst, cut to fit: wire strings are shorter than our messages, and the
 * start of a message (file:line:col) matters most. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void reply_err(qlab_msg_reply *rep, const qlab_err *err, int r)
{
    copy_cut(rep->text, sizeof(rep->text), err->msg[0] ? err->msg : strerror(-r));
}

static int h_submit(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    qlabd *d = ud;
    qlab_err err = { 0 };
    int64_t id = 0;
    int r;
    if (req->msg->u.submit.kind == QLAB_SUBMIT_PATH)
        r = qlab_engine_submit_file(d->engine, req->msg->u.submit.path, &id, &err);
    else
        r = qlab_engine_submit_text(d->engine, req->yaml, req->yaml_len, NULL,
                                    "submitted.yaml", &id, &err);
    if (r < 0) {
        reply_err(rep, &err, r);
        qlabd_log("submit refused: %s", rep->text);
        return r;
    }
    qlabd_log("experiment %lld submitted (%s)", (long long)id,
              req->msg->u.submit.kind == QLAB_SUBMIT_PATH ? req->msg->u.submit.path
                                                          : "inline YAML");
    rep->value = (uint64_t)id;
    return 0;
}

static int h_cancel(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    qlabd *d = ud;
    qlab_err err = { 0 };
    int r = qlab_engine_cancel(d->engine, (int64_t)req->msg->u.cancel.experiment_id, &err);
    if (r < 0) {
        if (r == -ENOENT)
            snprintf(rep->text, sizeof(rep->text), "no experiment %llu",
                     (unsigned long long)req->msg->u.cancel.experiment_id);
        else if (r == -EALREADY)
            snprintf(rep->text, sizeof(rep->text), "experiment %llu has already ended",
                     (unsigned long long)req->msg->u.cancel.experiment_id);
        else
            reply_err(rep, &err, r);
        return r;
    }
    qlabd_log("experiment %llu cancelled by a client: %d pending runs dropped",
              (unsigned long long)req->msg->u.cancel.experiment_id, r);
    rep->value = (uint64_t)r;
    return 0;
}

static uint32_t status_code(qlab_status s)
{
    switch (s) {
    case QLAB_STATUS_PENDING: return QLAB_EXP_PENDING;
    case QLAB_STATUS_RUNNING: return QLAB_EXP_RUNNING;
    case QLAB_STATUS_DONE: return QLAB_EXP_DONE;
    case QLAB_STATUS_FAILED: return QLAB_EXP_FAILED;
    case QLAB_STATUS_CANCELLED: return QLAB_EXP_CANCELLED;
    }
    return 0;
}

static void fill_info(qlabd *d, const qlab_experiment_row *row, qlab_exp_info *info)
{
    memset(info, 0, sizeof(*info));
    info->id = (uint64_t)row->id;
    info->status = status_code(row->status);
    info->runs_total = (uint32_t)(row->runs_total - row->runs_cancelled);
    info->runs_done = (uint32_t)row->runs_done;
    info->runs_failed = (uint32_t)row->runs_failed;
    info->best_accuracy = NAN;
    snprintf(info->name, sizeof(info->name), "%s", row->name ? row->name : "");
    /* Best accuracy: the frontier's most accurate (= largest) run. */
    qlab_run_row *rows = NULL;
    size_t n = 0;
    if (qlab_store_frontier(d->store, row->id, &rows, &n, NULL) == 0 && n > 0) {
        info->best_accuracy = (float)rows[n - 1].accuracy;
        info->best_total_bytes = (uint64_t)rows[n - 1].total_bytes;
    }
    qlab_run_rows_free(rows, n);
}

static int h_status(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    qlabd *d = ud;
    qlab_err err = { 0 };
    qlab_experiment_row row = { 0 };
    int r = qlab_store_get_experiment(d->store, (int64_t)req->msg->u.status.experiment_id,
                                      &row, &err);
    if (r < 0) {
        if (r == -ENOENT)
            snprintf(rep->text, sizeof(rep->text), "no experiment %llu",
                     (unsigned long long)req->msg->u.status.experiment_id);
        else
            reply_err(rep, &err, r);
        return r;
    }
    fill_info(d, &row, &rep->u.info);
    qlab_experiment_row_clear(&row);
    return 0;
}

static int h_list(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    qlabd *d = ud;
    qlab_err err = { 0 };
    qlab_experiment_row *rows = NULL;
    size_t n = 0;
    int r = qlab_store_list_experiments(d->store, &rows, &n, &err);
    if (r < 0) {
        reply_err(rep, &err, r);
        return r;
    }
    /* The decoder checked out_off + out_len inside the data area. */
    size_t cap = req->msg->u.list.out_len / sizeof(qlab_exp_info);
    for (size_t i = 0; i < n && i < cap; i++) {
        qlab_exp_info info;
        fill_info(d, &rows[i], &info);
        memcpy(req->data + req->msg->u.list.out_off + i * sizeof(info), &info, sizeof(info));
    }
    rep->value = n;
    qlab_experiment_rows_free(rows, n);
    return 0;
}

/* Zero-copy quantize: the shm library's core-backed handler checks every output range
 * against the request and the data area, and copies the tensor to private memory first
 * wherever a pass depends on the data (shm/qlab-shm-quant.h). It runs on the server
 * thread, whose scratch buffers it reuses. */
static qlab_shm_quant_scratch quant_scratch;

static int h_quant(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    (void)ud;
    return qlab_shm_quant_core(&quant_scratch, req, rep);
}

static void h_gone(void *ud, uint64_t client_id)
{
    (void)ud;
    qlabd_log("client %llu disconnected; its memory is reclaimed", (unsigned long long)client_id);
}

static const qlab_shm_handlers handlers = {
    .submit = h_submit,
    .cancel = h_cancel,
    .status = h_status,
    .list = h_list,
    .quant = h_quant,
    .client_gone = h_gone,
};

int qlabd_ipc_start(qlabd *d, const char *sock, const char *dbdir, qlab_err *err)
{
    int r;
    if (sock) {
        if (strlen(sock) >= sizeof(d->socket_path))
            return qlab_err_set(err, -ENAMETOOLONG, "%s: socket path too long", sock);
        snprintf(d->socket_path, sizeof(d->socket_path), "%s", sock);
    } else {
        r = qlab_shm_socket_path(dbdir, true, d->socket_path, sizeof(d->socket_path));
        if (r < 0)
            return qlab_err_set(err, r, "cannot choose a socket path: %s", strerror(-r));
    }
    qlab_shm_server *s = NULL;
    r = qlab_shm_server_new(d->socket_path, &handlers, d, NULL, &s);
    if (r == -EADDRINUSE)
        return qlab_err_set(err, r, "%s: another qlabd already listens there", d->socket_path);
    if (r < 0)
        return qlab_err_set(err, r, "%s: %s", d->socket_path, strerror(-r));
    r = qlab_shm_server_start(s);
    if (r < 0) {
        qlab_shm_server_free(s);
        return qlab_err_set(err, r, "cannot start the client thread: %s", strerror(-r));
    }
    __atomic_store_n(&d->ipc, s, __ATOMIC_RELEASE);
    return 0;
}

void qlabd_ipc_stop(qlabd *d)
{
    qlab_shm_server *s = __atomic_exchange_n(&d->ipc, NULL, __ATOMIC_ACQ_REL);
    qlab_shm_server_free(s);
    qlab_shm_quant_scratch_free(&quant_scratch);
}

void qlabd_ipc_event(qlabd *d, const qlab_engine_event *ev)
{
    qlab_shm_server *s = __atomic_load_n(&d->ipc, __ATOMIC_ACQUIRE);
    if (!s)
        return;
    qlab_event e = { 0 };
    switch (ev->type) {
    case QLAB_EV_EXPERIMENT_STARTED: e.kind = QLAB_EVENT_EXPERIMENT_STARTED; break;
    case QLAB_EV_RUN_STARTED: e.kind = QLAB_EVENT_RUN_STARTED; break;
    case QLAB_EV_RUN_FINISHED: e.kind = QLAB_EVENT_RUN_FINISHED; break;
    case QLAB_EV_RUN_FAILED: e.kind = QLAB_EVENT_RUN_FINISHED; e.status = -EIO; break;
    case QLAB_EV_EXPERIMENT_FINISHED:
        e.kind = QLAB_EVENT_EXPERIMENT_FINISHED;
        e.status = ev->status == QLAB_STATUS_DONE ? 0 : ev->status == QLAB_STATUS_CANCELLED
                                                        ? -ECANCELED : -EIO;
        break;
    default: return;
    }
    e.experiment_id = (uint64_t)ev->experiment_id;
    e.run_id = (uint64_t)(ev->run_id > 0 ? ev->run_id : 0);
    e.runs_done = (uint32_t)(ev->runs_done > 0 ? ev->runs_done : 0);
    e.runs_total = (uint32_t)(ev->runs_total > 0 ? ev->runs_total : 0);
    e.bits = (uint32_t)(ev->bits > 0 ? ev->bits : 0);
    e.act_bits = (uint32_t)(ev->act_bits > 0 ? ev->act_bits : 0);
    e.accuracy = (float)ev->accuracy;
    e.total_bytes = (uint64_t)(ev->total_bytes > 0 ? ev->total_bytes : 0);
    copy_cut(e.label, sizeof(e.label), ev->label);
    /* -EAGAIN (queue full) loses the event for everyone; the CLI re-reads status. */
    qlab_shm_server_publish(s, &e);
}
