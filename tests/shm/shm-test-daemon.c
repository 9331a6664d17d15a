/* shm-test-daemon.c — the toy daemon's handler table. */
#include "shm-test-daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void shm_test_daemon_init(shm_test_daemon *d)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
}

void shm_test_daemon_fini(shm_test_daemon *d)
{
    qlab_shm_quant_scratch_free(&d->scratch);
    pthread_mutex_destroy(&d->lock);
}

void shm_test_last(shm_test_daemon *d, int which, char *buf, size_t size)
{
    pthread_mutex_lock(&d->lock);
    snprintf(buf, size, "%s", which ? d->last_yaml : d->last_path);
    pthread_mutex_unlock(&d->lock);
}

static int h_submit(void *ud, const qlab_shm_request *rq, qlab_msg_reply *rep)
{
    shm_test_daemon *d = ud;
    const qlab_msg_submit *m = &rq->msg->u.submit;
    d->submits++;
    pthread_mutex_lock(&d->lock);
    if (m->kind == QLAB_SUBMIT_PATH)
        snprintf(d->last_path, sizeof(d->last_path), "%s", m->path);
    else
        snprintf(d->last_yaml, sizeof(d->last_yaml), "%s", rq->yaml);
    pthread_mutex_unlock(&d->lock);
    if (m->kind == QLAB_SUBMIT_PATH && strstr(m->path, "bad")) {
        /* a long path keeps its tail, the part that names the file */
        size_t n = strlen(m->path);
        const char *p = n > 200 ? m->path + n - 200 : m->path;
        snprintf(rep->text, sizeof(rep->text), "%.200s:12:5: unknown calibration", p);
        return -EINVAL;
    }
    rep->value = ++d->next_id;
    return 0;
}

static int h_cancel(void *ud, const qlab_shm_request *rq, qlab_msg_reply *rep)
{
    shm_test_daemon *d = ud;
    d->cancels++;
    uint64_t id = rq->msg->u.cancel.experiment_id;
    if (id == 0 || id > d->next_id) {
        snprintf(rep->text, sizeof(rep->text), "no experiment %llu", (unsigned long long)id);
        return -ENOENT;
    }
    return 0;
}

static void fill_info(qlab_exp_info *e, uint64_t id)
{
    memset(e, 0, sizeof(*e));
    e->id = id;
    e->status = QLAB_EXP_RUNNING;
    e->runs_total = 10;
    e->runs_done = (uint32_t)(id % 10);
    e->best_accuracy = 0.5f + 0.01f * (float)id;
    e->best_total_bytes = 1000 * id;
    snprintf(e->name, sizeof(e->name), "exp-%llu", (unsigned long long)id);
}

static int h_status(void *ud, const qlab_shm_request *rq, qlab_msg_reply *rep)
{
    shm_test_daemon *d = ud;
    d->statuses++;
    uint64_t id = rq->msg->u.status.experiment_id;
    if (id == 0 || id > d->next_id)
        return -ENOENT;
    fill_info(&rep->u.info, id);
    return 0;
}

static int h_list(void *ud, const qlab_shm_request *rq, qlab_msg_reply *rep)
{
    shm_test_daemon *d = ud;
    d->lists++;
    size_t cap = rq->msg->u.list.out_len / sizeof(qlab_exp_info);
    qlab_exp_info e;
    for (uint64_t i = 0; i < d->next_id && i < cap; i++) {
        fill_info(&e, i + 1);
        memcpy(rq->data + rq->msg->u.list.out_off + i * sizeof(e), &e, sizeof(e));
    }
    rep->value = d->next_id;
    return 0;
}

static int h_quant(void *ud, const qlab_shm_request *rq, qlab_msg_reply *rep)
{
    shm_test_daemon *d = ud;
    d->quants++;
    return qlab_shm_quant_core(&d->scratch, rq, rep);
}

static void h_gone(void *ud, uint64_t client_id)
{
    shm_test_daemon *d = ud;
    d->gone++;
}

const qlab_shm_handlers shm_test_handlers = {
    .submit = h_submit, .cancel = h_cancel, .status = h_status, .list = h_list,
    .quant = h_quant, .client_gone = h_gone,
};
