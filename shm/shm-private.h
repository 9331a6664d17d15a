/* shm-private.h — set-up handshake and the client memory segment, shared by server.c and
 * client.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring-private.h"

#define QLAB_HELLO_MAGIC  0x514c41424845ull   /* "QLABHE" */
#define QLAB_RING_MIN     2u
#define QLAB_RING_MAX     4096u
#define QLAB_PAGE         4096u

/* client -> daemon, first and only datagram the client sends */
typedef struct qlab_hello {
    uint64_t magic;
    uint32_t version;
    uint32_t sq_entries, cq_entries;
    uint32_t flags;
    uint64_t data_size;
} qlab_hello;

/* daemon -> client, with SCM_RIGHTS [memfd, doorbell eventfd, notify eventfd] when status 0 */
typedef struct qlab_hello_reply {
    uint64_t magic;
    uint32_t version;
    int32_t  status;
    uint64_t total_size;
    uint64_t client_id;
} qlab_hello_reply;

typedef struct qlab_layout {
    uint32_t sq_entries, cq_entries;
    uint64_t sq_off, cq_off, data_off, data_size, total_size;
} qlab_layout;

static inline bool qlab_pow2_in_range(uint32_t n)
{
    return n >= QLAB_RING_MIN && n <= QLAB_RING_MAX && (n & (n - 1)) == 0;
}

/* Computes offsets; -EINVAL for bad entries, -EFBIG for a data area over max_data. */
int qlab_layout_compute(qlab_layout *l, uint32_t sq_entries, uint32_t cq_entries,
                        uint64_t data_size, uint64_t max_data);

/* Daemon: a sealed memfd holding the layout with its header written (magic last).
 * Returns the fd and the mapping. */
int qlab_segment_create(const qlab_layout *l, uint64_t client_id, void **map);

/* Client: maps fd and checks its header against what it asked for. */
int qlab_segment_attach(int fd, uint64_t expect_size, qlab_layout *l, void **map);

/* Unix socket helpers */
int qlab_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Receives one datagram and up to *nfds fds (set to the count received). */
int qlab_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned *nfds);
