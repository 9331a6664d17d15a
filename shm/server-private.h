/* server-private.h — the daemon side's state, shared by server.c (the loop, dispatch,
 * events) and server-conn.c (socket, accept, hand-over of the memfd, client teardown). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "qlab-shm.h"
#include "shm-private.h"

#define EVQ_CAP       4096u   /* publish queue */
#define BATCH         32u     /* commands served per client per pass (fairness) */
#define MAX_SUBS      16u

enum watch_kind { W_LISTEN, W_CTL, W_SOCK, W_BELL };

struct conn;
struct watch {
    enum watch_kind kind;
    struct conn *c;
};

enum conn_state { C_HELLO, C_READY, C_DEAD };

typedef struct conn {
    struct watch wsock, wbell;
    enum conn_state state;
    int64_t hello_deadline;       /* C_HELLO: killed at this qlab_now_ns() (0: never) */
    int sock, bell, notify;       /* bell: client wakes us; notify: we wake a GLib client */
    uint64_t id;
    void *map;
    size_t map_size;
    qlab_ring sq, cq;
    unsigned char *data;
    size_t data_size;
    uint32_t wake_flags;          /* consumer flags seen on our last commit to cq */
    uint32_t dropped;
    bool sub_all;
    unsigned nsubs;
    uint64_t subs[MAX_SUBS];
    struct conn *next_dead;
} conn;

struct qlab_shm_server {
    qlab_shm_handlers h;
    void *ud;
    qlab_shm_server_opts o;
    char path[108];
    int lfd, ep, ctl;
    struct watch wlisten, wctl;
    conn **conns;
    unsigned nconns, cap;
    _Atomic unsigned nready;
    uint64_t next_id;
    conn *dead;
    _Atomic uint32_t stop, sleeping;
    pthread_t thread;
    bool started;
    pthread_mutex_t qlock;
    qlab_event *evq;
    uint32_t evq_head, evq_tail;  /* under qlock */
    _Atomic uint32_t evq_count;
};

int qlab_srv_ep_add(qlab_shm_server *s, int fd, struct watch *w, uint32_t events);
/* Marks c dead; it is freed by qlab_srv_reap_dead after the current epoll batch. */
void qlab_srv_conn_kill(qlab_shm_server *s, conn *c);
void qlab_srv_reap_dead(qlab_shm_server *s);
/* Listening socket readable: accept, check SO_PEERCRED, wait for the hello. */
void qlab_srv_accept(qlab_shm_server *s);
/* Kills the connections whose hello is overdue at `now`; returns the next deadline of those
 * still waiting, or INT64_MAX. */
int64_t qlab_srv_hello_sweep(qlab_shm_server *s, int64_t now);
/* A client socket event: the hello, or the client's end. */
void qlab_srv_sock_event(qlab_shm_server *s, conn *c, uint32_t events);
