#include "parallel.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define QLAB_MAX_THREADS 64

static _Thread_local int tls_serial;
static unsigned g_threads;          /* 0 = not yet decided */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void decide_threads(void)
{
    const char *s = getenv("QLAB_THREADS");
    long n = 0;
    if (s && *s)
        n = strtol(s, NULL, 10);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    if (n > QLAB_MAX_THREADS)
        n = QLAB_MAX_THREADS;
    if (__atomic_load_n(&g_threads, __ATOMIC_RELAXED) == 0)
        __atomic_store_n(&g_threads, (unsigned)n, __ATOMIC_RELAXED);
}

unsigned qlab_threads(void)
{
    pthread_once(&g_once, decide_threads);
    return __atomic_load_n(&g_threads, __ATOMIC_RELAXED);
}

void qlab_set_threads(unsigned n)
{
    pthread_once(&g_once, decide_threads);
    if (n < 1)
        n = 1;
    if (n > QLAB_MAX_THREADS)
        n = QLAB_MAX_THREADS;
    __atomic_store_n(&g_threads, n, __ATOMIC_RELAXED);
}

void qlab_parallel_set_serial(int serial)
{
    tls_serial = serial;
}

/* One job at a time goes through the pool; the mutex `g_call` serialises callers. Workers
 * wait on `g_cv` for a new generation number, run their chunk, and the last to finish
 * signals `g_done`. All shared job fields are written under `g_mu` before the broadcast,
 * so the mutex provides the ordering; no atomics are needed beyond it. */
static pthread_mutex_t g_call = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static unsigned g_started;          /* pool threads created */
static uint64_t g_gen;
static unsigned g_pending;
static struct {
    qlab_range_fn fn;
    void *ctx;
    size_t n, chunk;
    unsigned nchunks;
} g_job;

static void run_chunk(unsigned c)
{
    size_t b = (size_t)c * g_job.chunk;
    size_t e = b + g_job.chunk;
    if (e > g_job.n)
        e = g_job.n;
    if (b < e)
        g_job.fn(g_job.ctx, b, e, c);
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;   /* 1..g_started */
    uint64_t seen = 0;
    tls_serial = 1;                           /* nested calls run inline */
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (g_gen == seen)
            pthread_cond_wait(&g_cv, &g_mu);
        seen = g_gen;
        if (id < g_job.nchunks) {
            pthread_mutex_unlock(&g_mu);
            run_chunk(id);
            pthread_mutex_lock(&g_mu);
            if (--g_pending == 0)
                pthread_cond_signal(&g_done);
        }
    }
    return NULL;
}

unsigned qlab_parallel_for(size_t n, size_t grain, size_t align, qlab_range_fn fn, void *ctx)
{
    if (n == 0)
        return 0;
    unsigned t = qlab_threads();
    if (align == 0)
        align = 1;
    if (grain == 0)
        grain = 1;
    size_t maxc = n / grain;
    if (tls_serial || t <= 1 || maxc <= 1) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    if (maxc < t)
        t = (unsigned)maxc;
    size_t chunk = (n + t - 1) / t;
    chunk = (chunk + align - 1) / align * align;
    unsigned nchunks = (unsigned)((n + chunk - 1) / chunk);
    if (nchunks <= 1) {
        fn(ctx, 0, n, 0);
        return 1;
    }

    pthread_mutex_lock(&g_call);
    pthread_mutex_lock(&g_mu);
    while (g_started + 1 < nchunks) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&th, &at, worker, (void *)(uintptr_t)(g_started + 1));
        pthread_attr_destroy(&at);
        if (r != 0)
            break;
        g_started++;
    }
    if (nchunks > g_started + 1) {
        /* Could not create threads: the caller runs the rest of the chunks itself below. */
    }
    g_job.fn = fn;
    g_job.ctx = ctx;
    g_job.n = n;
    g_job.chunk = chunk;
    unsigned pooled = nchunks <= g_started + 1 ? nchunks : g_started + 1;
    g_job.nchunks = pooled;
    g_pending = pooled - 1;
    g_gen++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);

    int was = tls_serial;
    tls_serial = 1;
    run_chunk(0);
    for (unsigned c = pooled; c < nchunks; c++)
        run_chunk(c);
    tls_serial = was;

    pthread_mutex_lock(&g_mu);
    while (g_pending > 0)
        pthread_cond_wait(&g_done, &g_mu);
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_call);
    return nchunks;
}
