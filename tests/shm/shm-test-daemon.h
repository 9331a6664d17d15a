/* shm-test-daemon.h — a toy daemon behind the shm server for the tests and the benchmark:
 * SUBMIT returns ids 1, 2, ...; STATUS / LIST report them; QUANT is the real one
 * (qlab_shm_quant_core over daemon/core). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "qlab-shm.h"
#include "qlab-shm-quant.h"

typedef struct shm_test_daemon {
    _Atomic unsigned long submits, cancels, statuses, lists, quants, gone;
    uint64_t next_id;
    qlab_shm_quant_scratch scratch;
    /* written by the server thread, read by the test: a lock, because the ring's own
     * ordering goes through a second mapping ThreadSanitizer cannot connect */
    pthread_mutex_t lock;
    char last_path[QLAB_PROTO_PATH_MAX];
    char last_yaml[256];
} shm_test_daemon;

extern const qlab_shm_handlers shm_test_handlers;

void shm_test_daemon_init(shm_test_daemon *d);
void shm_test_daemon_fini(shm_test_daemon *d);

/* Copies d->last_path (which = 0) or d->last_yaml (which = 1) under the lock. */
void shm_test_last(shm_test_daemon *d, int which, char *buf, size_t size);
