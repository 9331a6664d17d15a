/* client.c — the client side: connect, map the rings, send requests, wait for replies and
 * progress events, notice the daemon's death through the socket. */
#include "qlab-shm.h"
#include "shm-private.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define EVBUF      256u                  /* events kept while call() waits for its reply */
#define SLICE_NS   (50 * 1000 * 1000)    /* longest futex sleep between liveness checks */
#define SPIN_SLICE (1000 * 1000)         /* busy-poll: check liveness every 1 ms */
#define HELLO_MS   5000

struct qlab_shm_client {
    int sock, bell, notify;
    void *map;
    size_t map_size;
    qlab_ring sq, cq;
    unsigned char *data;
    size_t data_size;
    uint64_t id, next_req;
    int64_t spin_ns;
    bool dead;
    qlab_event evbuf[EVBUF];
    uint32_t ev_head, ev_tail, ev_lost;
};

int qlab_shm_client_alive(qlab_shm_client *c)
{
    struct pollfd p = { .fd = c->sock, .events = POLLIN | POLLRDHUP };

    if (c->dead)
        return -ECONNRESET;
    /* The daemon never writes after the hello: readability means EOF, i.e. it died. */
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))) {
        c->dead = true;
        return -ECONNRESET;
    }
    return 0;
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : qlab_now_ns() + (int64_t)timeout_ms * 1000000;
}

/* Waits up to timeout_ms (-1: forever) for the reply ring to hold a message. The first
 * spin reads no clock: on the fast path a reply lands within it, and the timeout only
 * starts counting after it (spin_ns at most late). */
static int wait_cq(qlab_shm_client *c, int timeout_ms)
{
    if (timeout_ms == 0)
        return qlab_ring_cons_slot(&c->cq, NULL) ? 0 : -ETIMEDOUT;
    if (c->spin_ns != 0 &&
        qlab_ring_wait_nonempty(&c->cq, c->spin_ns < 0 ? SPIN_SLICE : c->spin_ns, 0))
        return 0;
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        int r = qlab_shm_client_alive(c);
        if (r < 0)
            return r;
        int64_t left = deadline == INT64_MAX ? INT64_MAX : deadline - qlab_now_ns();
        if (left <= 0)
            return qlab_ring_cons_slot(&c->cq, NULL) ? 0 : -ETIMEDOUT;
        /* busy-poll: spin in 1 ms slices; else sleep on the futex in <= 50 ms slices,
         * checking between slices that the daemon still lives */
        if (qlab_ring_wait_nonempty(&c->cq, c->spin_ns < 0 ? SPIN_SLICE : 0,
                                    c->spin_ns < 0 ? 0 : (left < SLICE_NS ? left : SLICE_NS)))
            return 0;
    }
}

int qlab_shm_client_recv(qlab_shm_client *c, qlab_msg *out, int timeout_ms)
{
    int err = 0, r;
    const unsigned char *slot = qlab_ring_cons_slot(&c->cq, &err);

    if (!slot && err == 0) {
        if (c->dead)
            return -ECONNRESET;
        r = wait_cq(c, timeout_ms);
        if (r < 0)
            return r;
        slot = qlab_ring_cons_slot(&c->cq, &err);
    }
    /* A corrupt ring is fatal and says so with -EIO: nothing was consumed, so a caller
     * that skipped it like an undecodable message (which is consumed) would spin. */
    if (err < 0 || !slot)
        return err < 0 ? -EIO : -EAGAIN;
    r = qlab_proto_decode(slot, c->cq.slot_size, out, c->data_size);
    if (qlab_ring_cons_release(&c->cq))
        qlab_futex_wake(&c->cq.ctl->head);
    return r;
}

int qlab_shm_client_send(qlab_shm_client *c, qlab_msg *m, int timeout_ms)
{
    int64_t deadline = 0;         /* read the clock only when the ring is full */
    unsigned char *slot;
    int err = 0, r;

    if (m->id == 0)
        m->id = ++c->next_req;
    while (!(slot = qlab_ring_prod_slot(&c->sq, &err))) {
        if (err < 0)
            return err;
        if (deadline == 0)
            deadline = deadline_of(timeout_ms);
        if ((r = qlab_shm_client_alive(c)) < 0)
            return r;
        int64_t left = deadline - qlab_now_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        qlab_ring_wait_space(&c->sq, c->spin_ns < 0 ? SPIN_SLICE : c->spin_ns,
                             c->spin_ns < 0 ? 0 : (left < SLICE_NS ? left : SLICE_NS));
    }
    r = qlab_proto_encode(m, slot, c->sq.slot_size);
    if (r < 0)
        return r;
    /* The daemon sleeps in epoll only after setting NEED_WAKEUP; ring its doorbell then. */
    if (qlab_ring_prod_commit(&c->sq) & QLAB_RING_NEED_WAKEUP) {
        uint64_t one = 1;
        ssize_t n = write(c->bell, &one, sizeof(one));
        (void)n;                  /* EAGAIN: the counter is saturated, it wakes anyway */
    }
    return 0;
}

static void keep_event(qlab_shm_client *c, const qlab_event *ev)
{
    if (c->ev_tail - c->ev_head == EVBUF) {
        c->ev_head++;
        c->ev_lost++;
    }
    c->evbuf[c->ev_tail++ % EVBUF] = *ev;
}

/* Milliseconds left until deadline, -1 for none. */
static int ms_left(int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t left = deadline - qlab_now_ns();
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

int qlab_shm_client_call(qlab_shm_client *c, qlab_msg *req, qlab_msg *reply, int timeout_ms)
{
    int64_t deadline = 0;
    int r;

    req->id = ++c->next_req;
    r = qlab_shm_client_send(c, req, timeout_ms);
    if (r < 0)
        return r;
    for (;;) {
        /* The first wait gets the whole timeout and the clock is read only if another
         * message (an event) comes first: no clock read on the fast path. */
        r = qlab_shm_client_recv(c, reply, deadline == 0 ? timeout_ms : ms_left(deadline));
        if (r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO)
            continue;             /* skip a message we cannot read; keep waiting for ours */
        if (r < 0)
            return r;
        if (reply->type == QLAB_MSG_EVENT)
            keep_event(c, &reply->u.event);
        else if (reply->id == req->id)
            return 0;
        /* else: the late reply of a call that timed out earlier */
        if (deadline == 0)
            deadline = deadline_of(timeout_ms);
    }
}

int qlab_shm_client_next_event(qlab_shm_client *c, qlab_event *ev, int timeout_ms)
{
    static _Thread_local qlab_msg m;
    int64_t deadline = deadline_of(timeout_ms);

    for (;;) {
        if (c->ev_head != c->ev_tail) {
            *ev = c->evbuf[c->ev_head++ % EVBUF];
            ev->dropped += c->ev_lost;
            c->ev_lost = 0;
            return 0;
        }
        int r = qlab_shm_client_recv(c, &m, ms_left(deadline));
        if (r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO)
            continue;
        if (r < 0)
            return r;
        if (m.type == QLAB_MSG_EVENT)
            keep_event(c, &m.u.event);
    }
}

static int do_connect(const char *path, int *out)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd, r;

    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    /* The daemon must be our own user: a stranger's socket gets none of our data. */
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid()) {
        close(fd);
        return -EACCES;
    }
    *out = fd;
    return 0;
}

int qlab_shm_connect(const char *path, const qlab_shm_client_opts *opts,
                     qlab_shm_client **out)
{
    static const qlab_shm_client_opts defaults = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    const qlab_shm_client_opts *o = opts ? opts : &defaults;
    qlab_hello hello = { .magic = QLAB_HELLO_MAGIC, .version = QLAB_SHM_VERSION,
                         .sq_entries = o->sq_entries, .cq_entries = o->cq_entries,
                         .data_size = o->data_size };
    qlab_hello_reply rep;
    qlab_layout l;
    int fds[3] = { -1, -1, -1 };
    unsigned nfds = 3;
    int r;

    qlab_shm_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->sock = c->bell = c->notify = -1;
    c->spin_ns = o->spin_ns;
    if ((r = do_connect(path, &c->sock)) < 0)
        goto fail;
    int send_err = 0;
    if (send(c->sock, &hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
        send_err = -errno;
        /* A server that refuses us (too many clients, another user) answers at accept and
         * closes, possibly before our hello lands: its answer, still queued, says why. */
        if (send_err != -EPIPE && send_err != -ECONNRESET) {
            r = send_err;
            goto fail;
        }
    }
    struct pollfd p = { .fd = c->sock, .events = POLLIN };
    r = poll(&p, 1, HELLO_MS);
    if (r <= 0) {
        r = send_err ? send_err : r == 0 ? -ETIMEDOUT : -errno;
        goto fail;
    }
    r = qlab_recv_fds(c->sock, &rep, sizeof(rep), fds, &nfds);
    if (r == -ECONNRESET) {
        /* The server closed with our hello unread (a refusal at accept): Linux reports
         * that once, ahead of the answer still queued for us; the next read gets it. */
        r = qlab_recv_fds(c->sock, &rep, sizeof(rep), fds, &nfds);
        if (r == 0)
            r = -ECONNRESET;
    }
    if (r == 0) {
        r = send_err ? send_err : -ECONNREFUSED;   /* closed without a word */
        goto fail;
    }
    if (r < 0) {
        r = send_err ? send_err : r;
        goto fail;
    }
    if (r != (int)sizeof(rep) || rep.magic != QLAB_HELLO_MAGIC || rep.version != QLAB_SHM_VERSION) {
        r = -EPROTO;
        goto fail;
    }
    if (rep.status < 0) {
        r = rep.status;
        goto fail;
    }
    if (nfds != 3) {
        r = -EPROTO;
        goto fail;
    }
    r = qlab_segment_attach(fds[0], rep.total_size, &l, &c->map);
    close(fds[0]);                /* the mapping is all we need */
    fds[0] = -1;
    if (r < 0)
        goto fail;
    c->map_size = l.total_size;
    c->bell = fds[1];
    c->notify = fds[2];
    c->id = rep.client_id;
    qlab_ring_attach(&c->sq, (char *)c->map + l.sq_off, l.sq_entries, QLAB_SLOT_SIZE, true);
    qlab_ring_attach(&c->cq, (char *)c->map + l.cq_off, l.cq_entries, QLAB_SLOT_SIZE, false);
    c->cq.producer_never_sleeps = true;   /* the daemon drops or defers, never waits */
    c->data = (unsigned char *)c->map + l.data_off;
    c->data_size = l.data_size;
    if (o->eventfd_notify)
        atomic_fetch_or(&c->cq.ctl->flags, QLAB_RING_EVENTFD);
    *out = c;
    return 0;

fail:
    for (unsigned i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    c->bell = c->notify = -1;
    qlab_shm_client_free(c);
    return r;
}

void qlab_shm_client_free(qlab_shm_client *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->map_size);
    if (c->sock >= 0)
        close(c->sock);
    if (c->bell >= 0)
        close(c->bell);
    if (c->notify >= 0)
        close(c->notify);
    free(c);
}

void *qlab_shm_client_data(qlab_shm_client *c, size_t *size)
{
    if (size)
        *size = c->data_size;
    return c->data;
}

uint64_t qlab_shm_client_id(const qlab_shm_client *c)
{
    return c->id;
}

int qlab_shm_client_event_fd(const qlab_shm_client *c)
{
    return c->notify;
}

int qlab_shm_client_socket_fd(const qlab_shm_client *c)
{
    return c->sock;
}
