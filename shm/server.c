/* server.c — the daemon side's loop: polls the command rings, dispatches to the daemon's
 * handlers, pushes replies and progress events back, sleeps in epoll when idle. The socket
 * side (accept, SO_PEERCRED, memfd hand-over, teardown) is in server-conn.c.
 *
 * One thread runs the loop; it is the only producer of every client's reply ring and the
 * only consumer of every command ring, so the rings stay single-producer single-consumer.
 * Other threads reach clients only through qlab_shm_server_publish's mutex-guarded queue.
 *
 * Trust: a client controls every byte of its memfd. We keep our own ring geometry and
 * indices, copy each message once before validating it, never block on a client, and
 * drop a client whose ring indices are impossible. Its death shows on the socket (EPOLLHUP
 * / EOF), after which its mapping and descriptors are released.
 */
#include "qlab-shm.h"
#include "server-private.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void ctl_kick(qlab_shm_server *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->ctl, &one, sizeof(one));
    (void)n;                      /* EAGAIN: the counter is already non-zero, we wake anyway */
}

void qlab_shm_server_stop(qlab_shm_server *s)
{
    atomic_store(&s->stop, 1);
    ctl_kick(s);
}

unsigned qlab_shm_server_clients(qlab_shm_server *s)
{
    return atomic_load(&s->nready);
}

int qlab_shm_server_publish(qlab_shm_server *s, const qlab_event *ev)
{
    pthread_mutex_lock(&s->qlock);
    if (s->evq_tail - s->evq_head >= EVQ_CAP) {
        pthread_mutex_unlock(&s->qlock);
        return -EAGAIN;
    }
    s->evq[s->evq_tail++ % EVQ_CAP] = *ev;
    atomic_store(&s->evq_count, s->evq_tail - s->evq_head);
    pthread_mutex_unlock(&s->qlock);
    /* Pairs with the loop's store of sleeping + smp_mb + re-check of evq_count: either it
     * sees our event, or we see it sleeping and kick it. The mutex unlock is only a release,
     * hence the full fence. */
    smp_mb();
    if (atomic_load_explicit(&s->sleeping, memory_order_relaxed))
        ctl_kick(s);
    return 0;
}

static void conn_wake(conn *c)
{
    uint64_t one = 1;

    if (c->wake_flags & QLAB_RING_NEED_WAKEUP)
        qlab_futex_wake(&c->cq.ctl->tail);
    if (c->wake_flags & QLAB_RING_EVENTFD) {
        ssize_t n = write(c->notify, &one, sizeof(one));
        (void)n;                  /* EAGAIN: counter saturated, the client is woken anyway */
    }
    c->wake_flags = 0;
}

/* Pushes an encoded message; false when the ring is full. Kills the client on corruption. */
static bool conn_push(qlab_shm_server *s, conn *c, const qlab_msg *m)
{
    int err = 0;
    unsigned char *slot = qlab_ring_prod_slot(&c->cq, &err);

    if (err < 0) {
        qlab_srv_conn_kill(s, c);
        return false;
    }
    if (!slot)
        return false;
    if (qlab_proto_encode(m, slot, c->cq.slot_size) < 0)
        return false;
    c->wake_flags |= qlab_ring_prod_commit(&c->cq);
    return true;
}

static bool subscribed(const conn *c, uint64_t exp)
{
    if (c->sub_all)
        return true;
    for (unsigned i = 0; i < c->nsubs; i++)
        if (c->subs[i] == exp)
            return true;
    return false;
}

static int do_subscribe(conn *c, const qlab_msg_subscribe *m)
{
    if (m->experiment_id == 0) {
        c->sub_all = m->on;
        if (!m->on)
            c->nsubs = 0;
        return 0;
    }
    for (unsigned i = 0; i < c->nsubs; i++) {
        if (c->subs[i] == m->experiment_id) {
            if (!m->on)
                c->subs[i] = c->subs[--c->nsubs];
            return 0;
        }
    }
    if (!m->on)
        return 0;
    if (c->nsubs == MAX_SUBS)
        return -ENOSPC;
    c->subs[c->nsubs++] = m->experiment_id;
    return 0;
}

static int call(qlab_shm_handler fn, qlab_shm_server *s, const qlab_shm_request *rq,
                qlab_msg_reply *rep)
{
    return fn ? fn(s->ud, rq, rep) : -ENOSYS;
}

static void dispatch(qlab_shm_server *s, conn *c, const qlab_msg *m, qlab_msg *out)
{
    qlab_msg_reply *rep = &out->u.reply;
    qlab_shm_request rq = { .msg = m, .client_id = c->id, .data = c->data,
                            .data_size = c->data_size };
    char *yaml = NULL;
    int r;

    switch (m->type) {
    case QLAB_MSG_SUBMIT:
        if (m->u.submit.kind == QLAB_SUBMIT_YAML) {
            /* One private copy, so the parser never sees the text change under it. */
            yaml = malloc(m->u.submit.yaml_len + 1);
            if (!yaml) {
                r = -ENOMEM;
                break;
            }
            memcpy(yaml, c->data + m->u.submit.yaml_off, m->u.submit.yaml_len);
            yaml[m->u.submit.yaml_len] = '\0';
            rq.yaml = yaml;
            rq.yaml_len = m->u.submit.yaml_len;
        }
        r = call(s->h.submit, s, &rq, rep);
        break;
    case QLAB_MSG_CANCEL:    r = call(s->h.cancel, s, &rq, rep); break;
    case QLAB_MSG_STATUS:    r = call(s->h.status, s, &rq, rep); break;
    case QLAB_MSG_LIST:      r = call(s->h.list, s, &rq, rep); break;
    case QLAB_MSG_QUANT:     r = call(s->h.quant, s, &rq, rep); break;
    case QLAB_MSG_SUBSCRIBE:
        r = do_subscribe(c, &m->u.subscribe);
        if (r == 0 && s->h.subscribe)
            r = s->h.subscribe(s->ud, &rq, rep);
        break;
    default:
        r = -EPROTO;              /* a daemon-to-client type sent to us */
        break;
    }
    free(yaml);
    if (r > 0)
        r = 0;
    if (r < -4095)
        r = -EINVAL;
    rep->status = r;
    rep->text[QLAB_PROTO_TEXT_MAX - 1] = '\0';
    rep->u.info.name[QLAB_PROTO_NAME_MAX - 1] = '\0';
    if (r == 0)
        rep->text[0] = '\0';
}

/* Serves up to BATCH commands of one client; returns how many. */
static unsigned serve_conn(qlab_shm_server *s, conn *c)
{
    static _Thread_local qlab_msg m, out;
    unsigned done = 0;
    int err = 0;

    while (done < BATCH && c->state == C_READY) {
        /* Take a command only when its reply is sure to fit: we never wait on a client. */
        if (qlab_ring_prod_space(&c->cq, &err) == 0) {
            if (err < 0)
                qlab_srv_conn_kill(s, c);
            break;
        }
        const unsigned char *slot = qlab_ring_cons_slot(&c->sq, &err);
        if (err < 0) {
            qlab_srv_conn_kill(s, c);
            break;
        }
        if (!slot)
            break;
        m.type = QLAB_MSG_NONE;
        m.id = 0;
        int r = qlab_proto_decode(slot, c->sq.slot_size, &m, c->data_size);
        /* decode copied everything it needs: the slot can go back to the client now */
        if (qlab_ring_cons_release(&c->sq))
            qlab_futex_wake(&c->sq.ctl->head);

        if (m.type == QLAB_MSG_PING && r == 0) {
            m.type = QLAB_MSG_PONG;   /* echo the private copy as it is */
            conn_push(s, c, &m);
            done++;
            continue;
        }
        {
            qlab_msg_init(&out, QLAB_MSG_REPLY);
            out.id = m.id;
            if (r < 0) {
                out.u.reply.status = r;
                /* The decoder's code says which check failed; the message says it in
                 * words, with the one size the client can act on. */
                if (r == -EBADMSG)
                    snprintf(out.u.reply.text, sizeof(out.u.reply.text),
                             "malformed message: an offset or length leaves the %zu-byte data "
                             "area, ranges overlap, or a field is out of range", c->data_size);
                else if (r == -EMSGSIZE)
                    snprintf(out.u.reply.text, sizeof(out.u.reply.text),
                             "malformed message: wrong length for its type");
                else
                    snprintf(out.u.reply.text, sizeof(out.u.reply.text),
                             "malformed message: unknown type %u", (unsigned)m.type);
            } else {
                dispatch(s, c, &m, &out);
            }
        }
        conn_push(s, c, &out);
        done++;
    }
    if (c->wake_flags && c->state == C_READY)
        conn_wake(c);
    return done;
}

static unsigned drain_events(qlab_shm_server *s)
{
    static _Thread_local qlab_event batch[256];
    static _Thread_local qlab_msg m;
    unsigned n = 0;

    if (atomic_load_explicit(&s->evq_count, memory_order_relaxed) == 0)
        return 0;
    pthread_mutex_lock(&s->qlock);
    while (n < 256 && s->evq_head != s->evq_tail)
        batch[n++] = s->evq[s->evq_head++ % EVQ_CAP];
    atomic_store(&s->evq_count, s->evq_tail - s->evq_head);
    pthread_mutex_unlock(&s->qlock);

    for (unsigned k = 0; k < s->nconns; k++) {
        conn *c = s->conns[k];
        if (c->state != C_READY)
            continue;
        for (unsigned i = 0; i < n; i++) {
            if (!subscribed(c, batch[i].experiment_id))
                continue;
            qlab_msg_init(&m, QLAB_MSG_EVENT);
            m.u.event = batch[i];
            m.u.event.label[QLAB_PROTO_NAME_MAX - 1] = '\0';
            m.u.event.dropped = c->dropped;
            /* keep one slot for a reply so a client flooded with events still progresses */
            int err = 0;
            if (qlab_ring_prod_space(&c->cq, &err) > 1 && conn_push(s, c, &m))
                c->dropped = 0;
            else
                c->dropped++;
            if (c->state != C_READY)
                break;
        }
        if (c->wake_flags && c->state == C_READY)
            conn_wake(c);
    }
    return n;
}

static unsigned poll_rings(qlab_shm_server *s)
{
    unsigned work = drain_events(s);
    for (unsigned i = 0; i < s->nconns; i++)
        if (s->conns[i]->state == C_READY)
            work += serve_conn(s, s->conns[i]);
    return work;
}

static void set_need_wakeup(qlab_shm_server *s, bool on)
{
    for (unsigned i = 0; i < s->nconns; i++) {
        conn *c = s->conns[i];
        if (c->state != C_READY)
            continue;
        if (on)
            atomic_fetch_or_explicit(&c->sq.ctl->flags, QLAB_RING_NEED_WAKEUP,
                                     memory_order_relaxed);
        else
            atomic_fetch_and_explicit(&c->sq.ctl->flags, ~QLAB_RING_NEED_WAKEUP,
                                      memory_order_relaxed);
    }
}

static bool rings_pending(qlab_shm_server *s)
{
    if (atomic_load_explicit(&s->evq_count, memory_order_relaxed))
        return true;
    for (unsigned i = 0; i < s->nconns; i++) {
        conn *c = s->conns[i];
        if (c->state == C_READY && load_acquire(&c->sq.ctl->tail) != c->sq.local)
            return true;
    }
    return false;
}

static int handle_epoll(qlab_shm_server *s, int timeout_ms)
{
    struct epoll_event evs[64];
    /* a connection still owing its hello bounds the sleep: it is closed at its deadline */
    int64_t now = qlab_now_ns(), next = qlab_srv_hello_sweep(s, now);
    qlab_srv_reap_dead(s);
    if (next != INT64_MAX) {
        int64_t ms = (next - now) / 1000000 + 1;
        if (timeout_ms < 0 || ms < timeout_ms)
            timeout_ms = ms > INT32_MAX ? INT32_MAX : (int)ms;
    }
    int n = epoll_wait(s->ep, evs, 64, timeout_ms);

    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct watch *w = evs[i].data.ptr;
        uint64_t v;
        ssize_t k;
        switch (w->kind) {
        case W_LISTEN:
            qlab_srv_accept(s);
            break;
        case W_CTL:
            k = read(s->ctl, &v, sizeof(v));
            (void)k;
            break;
        case W_BELL:
            if (w->c->state != C_DEAD) {
                k = read(w->c->bell, &v, sizeof(v));
                (void)k;
            }
            break;
        case W_SOCK:
            if (w->c->state != C_DEAD)
                qlab_srv_sock_event(s, w->c, evs[i].events);
            break;
        }
    }
    qlab_srv_reap_dead(s);
    return n;
}

#define EPOLL_EVERY_NS 1000000   /* look at the sockets at least every 1 ms while busy */

int qlab_shm_server_run(qlab_shm_server *s)
{
    int64_t last_work = qlab_now_ns(), last_epoll = last_work;
    int r;

    if (s->o.busy_poll_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s->o.busy_poll_cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        unsigned work = poll_rings(s);
        qlab_srv_reap_dead(s);
        int64_t now = qlab_now_ns();
        /* New clients and deaths arrive on the sockets: even a server kept busy by the
         * rings must look there, or a dead client would never be reclaimed. */
        if (now - last_epoll >= EPOLL_EVERY_NS) {
            if ((r = handle_epoll(s, 0)) < 0)
                return r;
            last_epoll = now;
        }
        if (work) {
            last_work = now;
            continue;
        }
        if (s->o.spin_ns < 0 || now - last_work < s->o.spin_ns) {
            qlab_cpu_relax();
            continue;
        }
        /* Going to sleep. Pairs with the client's store_release(tail) + smp_mb + flags
         * read in qlab_ring_prod_commit, and with publish(): announce, fence, re-check. */
        set_need_wakeup(s, true);
        atomic_store_explicit(&s->sleeping, 1, memory_order_relaxed);
        smp_mb();
        if (!rings_pending(s) && !atomic_load_explicit(&s->stop, memory_order_relaxed))
            r = handle_epoll(s, -1);
        else
            r = 0;
        atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
        set_need_wakeup(s, false);
        if (r < 0)
            return r;
        last_work = last_epoll = qlab_now_ns();
    }
    return 0;
}

static void *server_thread(void *arg)
{
    qlab_shm_server_run(arg);
    return NULL;
}

int qlab_shm_server_start(qlab_shm_server *s)
{
    int r = pthread_create(&s->thread, NULL, server_thread, s);
    if (r)
        return -r;
    s->started = true;
    return 0;
}
