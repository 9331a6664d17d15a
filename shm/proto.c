/* proto.c — encoding and the validating decoder of qlab's ring messages.
 *
 * The decoder is the daemon's only door for client bytes: it copies the header once, takes
 * the length from that copy, copies the payload once, and from then on looks only at the
 * private copy (no double fetch from shared memory).
 */
#include "qlab-proto.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

typedef struct wire_hdr {
    uint32_t type;
    uint32_t len;  /* total, header included */
    uint64_t id;
} wire_hdr;

_Static_assert(sizeof(wire_hdr) == QLAB_MSG_HDR_SIZE, "wire header is 16 bytes");
_Static_assert(sizeof(qlab_msg_submit) == 24 + QLAB_PROTO_PATH_MAX, "submit layout");
_Static_assert(sizeof(qlab_msg_quant) == 80, "quant layout");
_Static_assert(sizeof(qlab_quant_metrics) == 64, "metrics layout");
_Static_assert(sizeof(qlab_exp_info) == 104, "exp info layout");
_Static_assert(sizeof(qlab_event) == 152, "event layout");
_Static_assert(QLAB_MSG_HDR_SIZE + sizeof(qlab_msg_reply) <= QLAB_MSG_MAX, "reply fits a slot");
_Static_assert(QLAB_MSG_HDR_SIZE + sizeof(qlab_msg_submit) <= QLAB_MSG_MAX, "submit fits");

/* Payload bytes of a fixed-size message type; 0 for unknown types. PING is variable. */
static size_t payload_size(uint32_t type)
{
    switch (type) {
    case QLAB_MSG_SUBMIT:    return sizeof(qlab_msg_submit);
    case QLAB_MSG_CANCEL:
    case QLAB_MSG_STATUS:    return sizeof(qlab_msg_id);
    case QLAB_MSG_LIST:      return sizeof(qlab_msg_list);
    case QLAB_MSG_SUBSCRIBE: return sizeof(qlab_msg_subscribe);
    case QLAB_MSG_QUANT:     return sizeof(qlab_msg_quant);
    case QLAB_MSG_REPLY:     return sizeof(qlab_msg_reply);
    case QLAB_MSG_EVENT:     return sizeof(qlab_event);
    default:                 return 0;
    }
}

static const void *payload_ptr(const qlab_msg *m)
{
    return m->type == QLAB_MSG_PING || m->type == QLAB_MSG_PONG ? (const void *)m->u.ping.bytes
                                                                : (const void *)&m->u;
}

void qlab_msg_init(qlab_msg *m, qlab_msg_type type)
{
    memset(m, 0, offsetof(qlab_msg, u) + sizeof(qlab_msg_reply));
    m->type = type;
}

int qlab_proto_encode(const qlab_msg *m, void *buf, size_t size)
{
    size_t n;

    if (m->type == QLAB_MSG_PING || m->type == QLAB_MSG_PONG) {
        if (m->u.ping.len > QLAB_PING_MAX)
            return -EINVAL;
        n = m->u.ping.len;
    } else {
        n = payload_size(m->type);
        if (n == 0)
            return -EINVAL;
    }
    if (size < QLAB_MSG_HDR_SIZE + n)
        return -EMSGSIZE;

    wire_hdr h = { .type = m->type, .len = (uint32_t)(QLAB_MSG_HDR_SIZE + n), .id = m->id };
    memcpy(buf, &h, sizeof(h));
    memcpy((char *)buf + QLAB_MSG_HDR_SIZE, payload_ptr(m), n);
    return (int)h.len;
}

/* [off, off + len) inside [0, size), written so that no sum can wrap. */
static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static bool ranges_disjoint(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    /* Both ranges already lie inside the data area, so the sums cannot wrap. */
    return alen == 0 || blen == 0 || a + alen <= b || b + blen <= a;
}

static bool has_nul(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* a * b without wrap-around; false on overflow. */
static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

uint64_t qlab_proto_quant_nscales(const qlab_msg_quant *q)
{
    switch (q->granularity) {
    case QLAB_PROTO_GRAN_CHANNEL: return q->rows;
    case QLAB_PROTO_GRAN_GROUP:   /* a row's last group may be partial */
        return q->rows * (q->cols / q->group_size + (q->cols % q->group_size != 0));
    default:                return 1;
    }
}

static int check_quant(const qlab_msg_quant *q, uint64_t area)
{
    uint64_t n, fbytes, cbytes, sbytes;

    if (!((q->bits >= 2 && q->bits <= 8) || q->bits == 16))
        return -EBADMSG;
    if (q->scheme != QLAB_PROTO_SYMMETRIC && q->scheme != QLAB_PROTO_ASYMMETRIC)
        return -EBADMSG;
    if (q->granularity < QLAB_PROTO_GRAN_TENSOR || q->granularity > QLAB_PROTO_GRAN_GROUP)
        return -EBADMSG;
    if (q->calibration < QLAB_PROTO_CALIB_MINMAX || q->calibration > QLAB_PROTO_CALIB_ENTROPY)
        return -EBADMSG;
    if (q->calibration == QLAB_PROTO_CALIB_PERCENTILE &&
        !(isfinite(q->percentile) && q->percentile > 0.0f && q->percentile <= 100.0f))
        return -EBADMSG;
    if (q->granularity == QLAB_PROTO_GRAN_GROUP && q->group_size == 0)
        return -EBADMSG;
    if (q->rows == 0 || q->cols == 0 || !mul_ok(q->rows, q->cols, &n))
        return -EBADMSG;
    if (!mul_ok(n, sizeof(float), &fbytes) || !mul_ok(n, q->bits <= 8 ? 1 : 2, &cbytes))
        return -EBADMSG;
    if ((q->in_off | q->deq_off | q->scales_off) % 4 != 0 || (q->bits > 8 && q->codes_off % 2))
        return -EBADMSG;
    if (!range_ok(q->in_off, fbytes, area) || !range_ok(q->deq_off, fbytes, area) ||
        !range_ok(q->codes_off, cbytes, area))
        return -EBADMSG;
    if (q->scales_len != 0) {
        /* float scales then int32 zero points: 8 bytes per scale */
        if (!mul_ok(qlab_proto_quant_nscales(q), 8, &sbytes) || q->scales_len < sbytes ||
            !range_ok(q->scales_off, q->scales_len, area))
            return -EBADMSG;
    }
    if (!ranges_disjoint(q->in_off, fbytes, q->deq_off, fbytes) ||
        !ranges_disjoint(q->in_off, fbytes, q->codes_off, cbytes) ||
        !ranges_disjoint(q->deq_off, fbytes, q->codes_off, cbytes) ||
        !ranges_disjoint(q->in_off, fbytes, q->scales_off, q->scales_len))
        return -EBADMSG;
    return 0;
}

static int validate(const qlab_msg *m, uint64_t area)
{
    switch (m->type) {
    case QLAB_MSG_SUBMIT: {
        const qlab_msg_submit *s = &m->u.submit;
        if (s->flags != 0)
            return -EBADMSG;
        if (s->kind == QLAB_SUBMIT_PATH)
            return has_nul(s->path, sizeof(s->path)) && s->path[0] != '\0' ? 0 : -EBADMSG;
        if (s->kind == QLAB_SUBMIT_YAML)
            return s->yaml_len > 0 && range_ok(s->yaml_off, s->yaml_len, area) ? 0 : -EBADMSG;
        return -EBADMSG;
    }
    case QLAB_MSG_CANCEL:
    case QLAB_MSG_STATUS:
        return 0;
    case QLAB_MSG_LIST:
        return m->u.list.out_off % 8 == 0 && range_ok(m->u.list.out_off, m->u.list.out_len, area)
                   ? 0 : -EBADMSG;
    case QLAB_MSG_SUBSCRIBE:
        return m->u.subscribe.on <= 1 ? 0 : -EBADMSG;
    case QLAB_MSG_QUANT:
        return check_quant(&m->u.quant, area);
    case QLAB_MSG_REPLY: {
        const qlab_msg_reply *r = &m->u.reply;
        if (r->status > 0 || r->status < -4095 || !has_nul(r->text, sizeof(r->text)) ||
            !has_nul(r->u.info.name, sizeof(r->u.info.name)))
            return -EBADMSG;
        return 0;
    }
    case QLAB_MSG_EVENT: {
        const qlab_event *e = &m->u.event;
        if (e->kind < QLAB_EVENT_EXPERIMENT_STARTED || e->kind > QLAB_EVENT_EXPERIMENT_FINISHED)
            return -EBADMSG;
        return has_nul(e->label, sizeof(e->label)) ? 0 : -EBADMSG;
    }
    case QLAB_MSG_PING:
    case QLAB_MSG_PONG:
        return 0;
    default:
        return -EPROTO;
    }
}

int qlab_proto_decode(const void *slot, size_t len, qlab_msg *out, size_t data_area_size)
{
    wire_hdr h;
    size_t n;

    if (len < QLAB_MSG_HDR_SIZE)
        return -EMSGSIZE;
    memcpy(&h, slot, sizeof(h));    /* the one read of the header */
    if (h.len < QLAB_MSG_HDR_SIZE || h.len > len || h.len > QLAB_MSG_MAX)
        return -EMSGSIZE;
    n = h.len - QLAB_MSG_HDR_SIZE;

    out->type = h.type;
    out->len = h.len;
    out->id = h.id;
    if (h.type == QLAB_MSG_PING || h.type == QLAB_MSG_PONG) {
        out->u.ping.len = (uint32_t)n;
        memcpy(out->u.ping.bytes, (const char *)slot + QLAB_MSG_HDR_SIZE, n);
        return 0;
    }
    size_t want = payload_size(h.type);
    if (want == 0)
        return -EPROTO;
    if (n != want)
        return -EMSGSIZE;
    memcpy(&out->u, (const char *)slot + QLAB_MSG_HDR_SIZE, n);   /* the one read of the body */
    return validate(out, data_area_size);
}
