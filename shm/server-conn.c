/* server-conn.c — the daemon's socket side: binding (taking over a dead daemon's socket),
 * accepting with SO_PEERCRED, the hello that hands a client its sealed memfd and eventfds,
 * and tearing a client down when its socket says it is gone. */
#include "server-private.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int qlab_srv_ep_add(qlab_shm_server *s, int fd, struct watch *w, uint32_t events)
{
    struct epoll_event e = { .events = events, .data.ptr = w };
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

void qlab_srv_conn_kill(qlab_shm_server *s, conn *c)
{
    if (c->state == C_DEAD)
        return;
    if (c->state == C_READY)
        atomic_fetch_sub(&s->nready, 1);
    c->state = C_DEAD;
    /* Freed after the current epoll batch: later events of this batch may still point here. */
    c->next_dead = s->dead;
    s->dead = c;
}

static void conn_free(qlab_shm_server *s, conn *c)
{
    if (c->map)
        munmap(c->map, c->map_size);
    if (c->sock >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, c->sock, NULL);
        close(c->sock);
    }
    if (c->bell >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, c->bell, NULL);
        close(c->bell);
    }
    if (c->notify >= 0)
        close(c->notify);
    free(c);
}

void qlab_srv_reap_dead(qlab_shm_server *s)
{
    while (s->dead) {
        conn *c = s->dead;
        s->dead = c->next_dead;
        for (unsigned i = 0; i < s->nconns; i++) {
            if (s->conns[i] == c) {
                s->conns[i] = s->conns[--s->nconns];
                break;
            }
        }
        if (s->h.client_gone && c->id)
            s->h.client_gone(s->ud, c->id);
        conn_free(s, c);
    }
}

void qlab_srv_accept(qlab_shm_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;               /* EAGAIN, or a transient error: retried on the next event */

        struct ucred cr;
        socklen_t cl = sizeof(cr);
        int status = 0;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid())
            status = -EACCES;
        else if (s->nconns >= s->o.max_clients)
            status = -EUSERS;
        if (status == 0 && s->nconns == s->cap) {
            unsigned ncap = s->cap ? s->cap * 2 : 8;
            conn **nc = realloc(s->conns, ncap * sizeof(*nc));
            if (!nc)
                status = -ENOMEM;
            else {
                s->conns = nc;
                s->cap = ncap;
            }
        }
        conn *c = status == 0 ? calloc(1, sizeof(*c)) : NULL;
        if (status == 0 && !c)
            status = -ENOMEM;
        if (status < 0) {
            qlab_hello_reply rep = { .magic = QLAB_HELLO_MAGIC, .version = QLAB_SHM_VERSION,
                                     .status = status };
            qlab_send_fds(fd, &rep, sizeof(rep), NULL, 0);
            close(fd);
            continue;
        }
        c->sock = fd;
        c->bell = c->notify = -1;
        c->state = C_HELLO;
        if (s->o.hello_timeout_ns > 0) {
            int64_t now = qlab_now_ns();
            /* saturating: a huge timeout means "never" (0), not a deadline in the past */
            c->hello_deadline = s->o.hello_timeout_ns > INT64_MAX - now
                                    ? 0 : now + s->o.hello_timeout_ns;
        }
        c->wsock = (struct watch){ W_SOCK, c };
        c->wbell = (struct watch){ W_BELL, c };
        if (qlab_srv_ep_add(s, fd, &c->wsock, EPOLLIN | EPOLLRDHUP) < 0) {
            close(fd);
            free(c);
            continue;
        }
        s->conns[s->nconns++] = c;
    }
}

/* The client's one datagram: sizes it wants. Answer with its memfd and eventfds. */
static void do_hello(qlab_shm_server *s, conn *c)
{
    qlab_hello h;
    qlab_layout l;
    int fds[3] = { -1, -1, -1 };
    qlab_hello_reply rep = { .magic = QLAB_HELLO_MAGIC, .version = QLAB_SHM_VERSION };

    ssize_t n = recv(c->sock, &h, sizeof(h), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n != (ssize_t)sizeof(h) || h.magic != QLAB_HELLO_MAGIC || h.version != QLAB_SHM_VERSION) {
        qlab_srv_conn_kill(s, c);
        return;
    }
    rep.status = qlab_layout_compute(&l, h.sq_entries, h.cq_entries, h.data_size,
                                     s->o.max_data_size);
    if (rep.status == 0) {
        c->id = ++s->next_id;
        fds[0] = qlab_segment_create(&l, c->id, &c->map);
        if (fds[0] < 0)
            rep.status = fds[0];
    }
    if (rep.status == 0) {
        c->map_size = l.total_size;
        c->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        c->notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->bell < 0 || c->notify < 0 || qlab_srv_ep_add(s, c->bell, &c->wbell, EPOLLIN) < 0)
            rep.status = -errno;
    }
    if (rep.status == 0) {
        fds[1] = c->bell;
        fds[2] = c->notify;
        rep.total_size = l.total_size;
        rep.client_id = c->id;
        qlab_ring_attach(&c->sq, (char *)c->map + l.sq_off, l.sq_entries, QLAB_SLOT_SIZE, false);
        qlab_ring_attach(&c->cq, (char *)c->map + l.cq_off, l.cq_entries, QLAB_SLOT_SIZE, true);
        c->data = (unsigned char *)c->map + l.data_off;
        c->data_size = l.data_size;
    }
    int r = qlab_send_fds(c->sock, &rep, sizeof(rep), fds, rep.status == 0 ? 3 : 0);
    if (fds[0] >= 0)
        close(fds[0]);            /* our mapping keeps the memory; the client holds the fd */
    if (r < 0 || rep.status < 0) {
        qlab_srv_conn_kill(s, c);
        return;
    }
    c->state = C_READY;
    atomic_fetch_add(&s->nready, 1);
}

int64_t qlab_srv_hello_sweep(qlab_shm_server *s, int64_t now)
{
    int64_t next = INT64_MAX;
    for (unsigned i = 0; i < s->nconns; i++) {
        conn *c = s->conns[i];
        if (c->state != C_HELLO || c->hello_deadline == 0)
            continue;
        if (c->hello_deadline > now) {
            if (c->hello_deadline < next)
                next = c->hello_deadline;
            continue;
        }
        /* Overdue. A hello that arrived while the server thread was busy (a long handler)
         * is still answered; only a connection with nothing to read is closed. */
        char b;
        if (recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            do_hello(s, c);
        else
            qlab_srv_conn_kill(s, c);
    }
    return next;
}

/* Anything after the hello, or EOF, ends the client: it has no reason to write. */
void qlab_srv_sock_event(qlab_shm_server *s, conn *c, uint32_t events)
{
    if (c->state == C_HELLO && !(events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))) {
        do_hello(s, c);
        return;
    }
    qlab_srv_conn_kill(s, c);
}

static int bind_socket(qlab_shm_server *s)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd, r;

    memcpy(a.sun_path, s->path, strlen(s->path) + 1);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (errno != EADDRINUSE)
            goto fail;
        /* Someone answers there: another daemon. Nobody: a dead daemon's socket file. */
        int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        r = probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (probe >= 0)
            close(probe);
        if (r) {
            close(fd);
            return -EADDRINUSE;
        }
        unlink(s->path);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            goto fail;
    }
    if (listen(fd, 64) < 0)
        goto fail;
    return fd;
fail:
    r = -errno;
    close(fd);
    return r;
}

int qlab_shm_server_new(const char *path, const qlab_shm_handlers *handlers, void *userdata,
                        const qlab_shm_server_opts *opts, qlab_shm_server **out)
{
    static const qlab_shm_server_opts defaults = QLAB_SHM_SERVER_OPTS_DEFAULT;
    qlab_shm_server *s;
    int r;

    if (!path || strlen(path) >= sizeof(s->path))
        return -ENAMETOOLONG;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->lfd = s->ep = s->ctl = -1;
    if (handlers)
        s->h = *handlers;
    s->ud = userdata;
    s->o = opts ? *opts : defaults;
    if (s->o.max_clients == 0)
        s->o.max_clients = defaults.max_clients;
    strcpy(s->path, path);
    pthread_mutex_init(&s->qlock, NULL);
    s->evq = calloc(EVQ_CAP, sizeof(*s->evq));
    if (!s->evq) {
        r = -ENOMEM;
        goto fail;
    }
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->ctl = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->ep < 0 || s->ctl < 0) {
        r = -errno;
        goto fail;
    }
    s->lfd = bind_socket(s);
    if (s->lfd < 0) {
        r = s->lfd;
        s->path[0] = '\0';        /* not ours: do not unlink it in free */
        goto fail;
    }
    s->wlisten = (struct watch){ W_LISTEN, NULL };
    s->wctl = (struct watch){ W_CTL, NULL };
    if ((r = qlab_srv_ep_add(s, s->lfd, &s->wlisten, EPOLLIN)) < 0 ||
        (r = qlab_srv_ep_add(s, s->ctl, &s->wctl, EPOLLIN)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    qlab_shm_server_free(s);
    return r;
}

void qlab_shm_server_free(qlab_shm_server *s)
{
    if (!s)
        return;
    if (s->started) {
        qlab_shm_server_stop(s);
        pthread_join(s->thread, NULL);
    }
    qlab_srv_reap_dead(s);
    for (unsigned i = 0; i < s->nconns; i++)
        conn_free(s, s->conns[i]);
    free(s->conns);
    if (s->lfd >= 0) {
        close(s->lfd);
        if (s->path[0])
            unlink(s->path);
    }
    if (s->ep >= 0)
        close(s->ep);
    if (s->ctl >= 0)
        close(s->ctl);
    free(s->evq);
    pthread_mutex_destroy(&s->qlock);
    free(s);
}
