/* calls.c — one-line client calls over qlab_shm_client_call, for the CLI and the GUI. */
#include "qlab-shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 60000

static int transport_error(qlab_err *err, int r)
{
    if (r == -ECONNRESET)
        return qlab_err_set(err, r, "qlabd stopped (connection reset)");
    return qlab_err_set(err, r, "qlabd: %s", strerror(-r));
}

/* Sends req and returns the reply's status, with its text in err. */
static int roundtrip(qlab_shm_client *c, qlab_msg *req, qlab_msg *rep, qlab_err *err)
{
    int r = qlab_shm_client_call(c, req, rep, CALL_TIMEOUT_MS);

    if (r < 0)
        return transport_error(err, r);
    if (rep->type != QLAB_MSG_REPLY)
        return qlab_err_set(err, -EPROTO, "qlabd: unexpected reply");
    if (rep->u.reply.status < 0)
        return qlab_err_set(err, rep->u.reply.status, "%s",
                            rep->u.reply.text[0] ? rep->u.reply.text
                                                 : strerror(-rep->u.reply.status));
    return 0;
}

static qlab_msg *new_msg(qlab_msg_type type)
{
    qlab_msg *m = malloc(2 * sizeof(*m));   /* request and reply; qlab_msg is ~4 KiB */
    if (m)
        qlab_msg_init(m, type);
    return m;
}

int qlab_shm_submit_path(qlab_shm_client *c, const char *path, uint64_t *experiment_id,
                         qlab_err *err)
{
    qlab_msg *m = new_msg(QLAB_MSG_SUBMIT);
    int r;

    if (!m)
        return -ENOMEM;
    if (strlen(path) >= QLAB_PROTO_PATH_MAX) {
        free(m);
        return qlab_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
    }
    m->u.submit.kind = QLAB_SUBMIT_PATH;
    strcpy(m->u.submit.path, path);
    r = roundtrip(c, m, m + 1, err);
    if (r == 0 && experiment_id)
        *experiment_id = m[1].u.reply.value;
    free(m);
    return r;
}

int qlab_shm_submit_yaml(qlab_shm_client *c, const char *yaml, size_t len,
                         uint64_t *experiment_id, qlab_err *err)
{
    size_t size;
    unsigned char *data = qlab_shm_client_data(c, &size);
    qlab_msg *m;
    int r;

    if (len == 0 || len > size)
        return qlab_err_set(err, -EFBIG, "YAML text of %zu bytes does not fit the data area", len);
    if (!(m = new_msg(QLAB_MSG_SUBMIT)))
        return -ENOMEM;
    memcpy(data, yaml, len);
    m->u.submit.kind = QLAB_SUBMIT_YAML;
    m->u.submit.yaml_off = 0;
    m->u.submit.yaml_len = len;
    r = roundtrip(c, m, m + 1, err);
    if (r == 0 && experiment_id)
        *experiment_id = m[1].u.reply.value;
    free(m);
    return r;
}

int qlab_shm_cancel(qlab_shm_client *c, uint64_t experiment_id, qlab_err *err)
{
    qlab_msg *m = new_msg(QLAB_MSG_CANCEL);
    int r;

    if (!m)
        return -ENOMEM;
    m->u.cancel.experiment_id = experiment_id;
    r = roundtrip(c, m, m + 1, err);
    free(m);
    return r;
}

int qlab_shm_status(qlab_shm_client *c, uint64_t experiment_id, qlab_exp_info *info,
                    qlab_err *err)
{
    qlab_msg *m = new_msg(QLAB_MSG_STATUS);
    int r;

    if (!m)
        return -ENOMEM;
    m->u.status.experiment_id = experiment_id;
    r = roundtrip(c, m, m + 1, err);
    if (r == 0 && info)
        *info = m[1].u.reply.u.info;
    free(m);
    return r;
}

int qlab_shm_list(qlab_shm_client *c, qlab_exp_info *infos, size_t cap, qlab_err *err)
{
    size_t size;
    unsigned char *data = qlab_shm_client_data(c, &size);
    size_t bytes = cap * sizeof(qlab_exp_info);
    qlab_msg *m;
    int r;

    if (cap > size / sizeof(qlab_exp_info))
        return -EINVAL;
    if (!(m = new_msg(QLAB_MSG_LIST)))
        return -ENOMEM;
    /* the last bytes of the data area, 8-aligned because size is a multiple of a page */
    m->u.list.out_off = size - bytes;
    m->u.list.out_len = bytes;
    r = roundtrip(c, m, m + 1, err);
    if (r == 0) {
        uint64_t n = m[1].u.reply.value;
        size_t k = n < cap ? (size_t)n : cap;
        memcpy(infos, data + size - bytes, k * sizeof(*infos));
        for (size_t i = 0; i < k; i++)
            infos[i].name[QLAB_PROTO_NAME_MAX - 1] = '\0';
        r = n > INT32_MAX ? INT32_MAX : (int)n;
    }
    free(m);
    return r;
}

int qlab_shm_subscribe(qlab_shm_client *c, uint64_t experiment_id, bool on, qlab_err *err)
{
    qlab_msg *m = new_msg(QLAB_MSG_SUBSCRIBE);
    int r;

    if (!m)
        return -ENOMEM;
    m->u.subscribe.experiment_id = experiment_id;
    m->u.subscribe.on = on;
    r = roundtrip(c, m, m + 1, err);
    free(m);
    return r;
}

int qlab_shm_quant(qlab_shm_client *c, const qlab_msg_quant *q, qlab_quant_metrics *metrics,
                   qlab_err *err)
{
    qlab_msg *m = new_msg(QLAB_MSG_QUANT);
    int r;

    if (!m)
        return -ENOMEM;
    m->u.quant = *q;
    r = roundtrip(c, m, m + 1, err);
    if (r == 0 && metrics)
        *metrics = m[1].u.reply.u.metrics;
    free(m);
    return r;
}
