/* bench-shm.c — shared-memory rings against a Unix socket, in the same run:
 *   1. round trip of 64-byte and 4 KiB messages (p50, p99, max): rings spinning (busy-poll
 *      on both sides), rings sleeping (futex / eventfd every time), Unix SEQPACKET ping-pong;
 *   2. progress-event throughput (publish -> server thread -> client ring);
 *   3. a 16 MiB float32 tensor quantized through the data area vs the same request with the
 *      tensor and results copied through a Unix stream socket.
 * Usage: bench-shm [iterations]. Prints ratios; the machine is shared, so rerun if noisy. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qlab-shm.h"
#include "ring-private.h"
#include "shm-test-daemon.h"

typedef struct stats {
    double p50, p99, max;
} stats;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static stats summarize(int64_t *t, size_t n)
{
    qsort(t, n, sizeof(*t), cmp_i64);
    return (stats){ t[n / 2] / 1e3, t[(size_t)(n * 0.99)] / 1e3, t[n - 1] / 1e3 };
}

static void die(const char *what, int r)
{
    fprintf(stderr, "bench-shm: %s: %s\n", what, strerror(-r));
    exit(1);
}

static stats ring_rtt(const char *path, uint32_t total, size_t iters, int64_t client_spin)
{
    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    qlab_shm_client *c;
    static qlab_msg req, rep;
    int64_t *t = malloc(iters * sizeof(*t));
    int r;

    o.spin_ns = client_spin;
    o.data_size = 4096;
    if ((r = qlab_shm_connect(path, &o, &c)) < 0)
        die("connect", r);
    qlab_msg_init(&req, QLAB_MSG_PING);
    req.u.ping.len = total - QLAB_MSG_HDR_SIZE;
    memset(req.u.ping.bytes, 0x5a, req.u.ping.len);
    for (size_t i = 0; i < iters + iters / 10; i++) {
        int64_t t0 = qlab_now_ns();
        if ((r = qlab_shm_client_call(c, &req, &rep, 10000)) < 0)
            die("call", r);
        int64_t dt = qlab_now_ns() - t0;
        if (i >= iters / 10)          /* the first tenth warms caches and the scheduler */
            t[i - iters / 10] = dt;
    }
    stats s = summarize(t, iters);
    free(t);
    qlab_shm_client_free(c);
    return s;
}

static void *echo_thread(void *arg)
{
    int fd = *(int *)arg;
    static _Thread_local char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 || write(fd, buf, (size_t)n) != n)
            return NULL;
    }
}

static stats sock_rtt(size_t len, size_t iters)
{
    int sv[2];
    pthread_t t;
    char buf[8192];
    int64_t *ts = malloc(iters * sizeof(*ts));

    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
        die("socketpair", -errno);
    pthread_create(&t, NULL, echo_thread, &sv[1]);
    memset(buf, 0x5a, len);
    for (size_t i = 0; i < iters + iters / 10; i++) {
        int64_t t0 = qlab_now_ns();
        if (write(sv[0], buf, len) != (ssize_t)len || read(sv[0], buf, sizeof(buf)) != (ssize_t)len)
            die("socket ping-pong", -EIO);
        int64_t dt = qlab_now_ns() - t0;
        if (i >= iters / 10)
            ts[i - iters / 10] = dt;
    }
    close(sv[0]);
    pthread_join(t, NULL);
    close(sv[1]);
    stats s = summarize(ts, iters);
    free(ts);
    return s;
}

typedef struct pub {
    qlab_shm_server *s;
    uint32_t n;
} pub;

static void *publisher(void *arg)
{
    pub *p = arg;
    for (uint32_t i = 0; i < p->n; i++) {
        qlab_event e = { .kind = QLAB_EVENT_RUN_FINISHED, .experiment_id = 1, .run_id = i };
        while (qlab_shm_server_publish(p->s, &e) == -EAGAIN)
            sched_yield();
    }
    return NULL;
}

static void event_throughput(qlab_shm_server *s, const char *path, uint32_t n)
{
    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    qlab_shm_client *c;
    qlab_event ev;
    pthread_t t;
    uint64_t got = 0, dropped = 0;
    int r;

    o.cq_entries = 4096;
    o.data_size = 4096;
    if ((r = qlab_shm_connect(path, &o, &c)) < 0 || (r = qlab_shm_subscribe(c, 0, true, NULL)) < 0)
        die("connect/subscribe", r);
    pub p = { s, n };
    int64_t t0 = qlab_now_ns();
    pthread_create(&t, NULL, publisher, &p);
    while (got + dropped < n) {
        if ((r = qlab_shm_client_next_event(c, &ev, 2000)) < 0)
            break;
        got++;
        dropped += ev.dropped;
    }
    double dt = (qlab_now_ns() - t0) / 1e9;
    pthread_join(t, NULL);
    printf("events: %u published, %llu received, %llu dropped, %.2f M events/s\n", n,
           (unsigned long long)got, (unsigned long long)dropped, (double)got / dt / 1e6);
    qlab_shm_client_free(c);
}

/* ---- 16 MiB tensor: data area vs socket copy ---- */

#define QN      (4u << 20)                 /* 4 Mi floats = 16 MiB */
#define QROWS   1024u

static qlab_msg_quant quant_params(void)
{
    return (qlab_msg_quant){ .bits = 8, .scheme = QLAB_PROTO_SYMMETRIC,
        .granularity = QLAB_PROTO_GRAN_CHANNEL, .calibration = QLAB_PROTO_CALIB_MINMAX,
        .rows = QROWS,
        .cols = QN / QROWS, .in_off = 0, .deq_off = (uint64_t)QN * 4,
        .codes_off = (uint64_t)QN * 8 };
}

static int read_all(int fd, void *buf, size_t n)
{
    for (size_t k = 0; k < n;) {
        ssize_t r = read(fd, (char *)buf + k, n - k);
        if (r <= 0)
            return -EIO;
        k += (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    for (size_t k = 0; k < n;) {
        ssize_t r = write(fd, (const char *)buf + k, n - k);
        if (r <= 0)
            return -EIO;
        k += (size_t)r;
    }
    return 0;
}

/* Private buffers laid out like a data area are page-aligned like one, so that in-process,
 * data area and socket peer run the core on the same alignment (malloc's 16-byte offset
 * would change how the rows' outputs can be streamed). */
static unsigned char *alloc_area(size_t size)
{
    return aligned_alloc(4096, (size + 4095) / 4096 * 4096);
}

/* The same core call on private memory laid out like a data area. */
static void quant_private(qlab_shm_quant_scratch *scr, unsigned char *buf, size_t size,
                          qlab_quant_metrics *m)
{
    static qlab_msg msg;
    qlab_msg_reply rep;
    msg.type = QLAB_MSG_QUANT;
    msg.u.quant = quant_params();
    qlab_shm_request rq = { .msg = &msg, .data = buf, .data_size = size };
    int r = qlab_shm_quant_core(scr, &rq, &rep);
    if (r < 0)
        die("quantize", r);
    *m = rep.u.metrics;
}

/* The socket peer: receives the tensor into private memory, quantizes, sends codes and the
 * dequantized tensor back — what a daemon without shared memory would do. */
static void *sock_quant_server(void *arg)
{
    int fd = *(int *)arg;
    qlab_msg_quant q = quant_params();
    unsigned char *buf = alloc_area((size_t)QN * 9);
    qlab_shm_quant_scratch scr = { 0 };
    qlab_quant_metrics m;
    for (;;) {
        if (read_all(fd, buf, (size_t)QN * 4) < 0)
            break;
        quant_private(&scr, buf, (size_t)QN * 9, &m);
        if (write_all(fd, &m, sizeof(m)) < 0 ||
            write_all(fd, buf + q.deq_off, (size_t)QN * 4) < 0 ||
            write_all(fd, buf + q.codes_off, QN) < 0)
            break;
    }
    qlab_shm_quant_scratch_free(&scr);
    free(buf);
    return NULL;
}

static void keep_min(int64_t *best, int64_t t0)
{
    int64_t dt = qlab_now_ns() - t0;
    *best = dt < *best ? dt : *best;
}

/* The four ways are interleaved round by round, so a burst of load from the machine's other
 * users hits them alike; each keeps its best round. */
static void quant_bench(const char *path, int reps)
{
    float *x = malloc((size_t)QN * 4), *deq = malloc((size_t)QN * 4);
    int8_t *codes = malloc(QN);
    unsigned char *priv = alloc_area((size_t)QN * 9);
    qlab_shm_quant_scratch scr = { 0 };
    unsigned seed = 3;
    for (size_t i = 0; i < QN; i++)
        x[i] = (float)rand_r(&seed) / (float)RAND_MAX - 0.5f;
    qlab_msg_quant q = quant_params();
    qlab_quant_metrics m;
    int64_t t_shm = INT64_MAX, t_shm_copy = INT64_MAX, t_sock = INT64_MAX, t_local = INT64_MAX;
    int r, sv[2];
    pthread_t t;

    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    qlab_shm_client *c;
    o.data_size = (uint64_t)QN * 9;
    if ((r = qlab_shm_connect(path, &o, &c)) < 0)
        die("connect", r);
    unsigned char *data = qlab_shm_client_data(c, NULL);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair", -errno);
    pthread_create(&t, NULL, sock_quant_server, &sv[1]);
    memcpy(priv, x, (size_t)QN * 4);

    for (int i = 0; i < reps; i++) {
        /* in-process, no IPC: the floor */
        int64_t t0 = qlab_now_ns();
        quant_private(&scr, priv, (size_t)QN * 9, &m);
        keep_min(&t_local, t0);

        /* zero-copy as meant: the client produced (loaded) its tensor in the data area, as
         * the socket client has it in its own memory before the timer starts; the results
         * are in the data area when the reply comes */
        memcpy(data, x, (size_t)QN * 4);
        t0 = qlab_now_ns();
        if ((r = qlab_shm_quant(c, &q, &m, NULL)) < 0)
            die("quant", r);
        keep_min(&t_shm, t0);

        /* pessimistic: the tensor lives elsewhere and is copied in first */
        t0 = qlab_now_ns();
        memcpy(data, x, (size_t)QN * 4);
        if ((r = qlab_shm_quant(c, &q, &m, NULL)) < 0)
            die("quant", r);
        keep_min(&t_shm_copy, t0);

        /* the socket: tensor there, metrics, dequantized tensor and codes back */
        t0 = qlab_now_ns();
        if (write_all(sv[0], x, (size_t)QN * 4) < 0 || read_all(sv[0], &m, sizeof(m)) < 0 ||
            read_all(sv[0], deq, (size_t)QN * 4) < 0 || read_all(sv[0], codes, QN) < 0)
            die("socket quant", -EIO);
        keep_min(&t_sock, t0);
    }
    if (memcmp(data + q.deq_off, priv + q.deq_off, (size_t)QN * 4) != 0 ||
        memcmp(deq, priv + q.deq_off, (size_t)QN * 4) != 0)
        die("results differ from in-process", -EIO);
    close(sv[0]);
    pthread_join(t, NULL);
    close(sv[1]);
    qlab_shm_client_free(c);

    printf("16 MiB quantize (int8 per-channel minmax, daemon/core kernels, best of %d): "
           "in-process %.2f ms, shm data area %.2f ms (%.2f ms with a memcpy of the tensor "
           "in), socket copy %.2f ms\n",
           reps, t_local / 1e6, t_shm / 1e6, t_shm_copy / 1e6, t_sock / 1e6);
    printf("  end to end: shm is %.2fx faster than the socket (%.2fx with the memcpy; "
           "target >= 3x); IPC overhead over in-process: shm %+.2f ms, socket %+.2f ms\n",
           (double)t_sock / (double)t_shm, (double)t_sock / (double)t_shm_copy,
           (t_shm - t_local) / 1e6, (t_sock - t_local) / 1e6);
    free(x);
    free(deq);
    free(codes);
    free(priv);
    qlab_shm_quant_scratch_free(&scr);
}

static qlab_shm_server *start_server(const char *path, int64_t spin, shm_test_daemon *d)
{
    qlab_shm_server_opts so = QLAB_SHM_SERVER_OPTS_DEFAULT;
    qlab_shm_server *s;
    int r;
    so.spin_ns = spin;
    so.max_data_size = 256u << 20;
    if ((r = qlab_shm_server_new(path, &shm_test_handlers, d, &so, &s)) < 0 ||
        (r = qlab_shm_server_start(s)) < 0)
        die("server", r);
    return s;
}

int main(int argc, char **argv)
{
    size_t iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    char dir[] = "/tmp/qlab-bench-XXXXXX", p_spin[96], p_sleep[96];
    static shm_test_daemon d1, d2;
    shm_test_daemon_init(&d1);
    shm_test_daemon_init(&d2);

    if (!mkdtemp(dir))
        die("mkdtemp", -errno);
    snprintf(p_spin, sizeof(p_spin), "%s/spin.sock", dir);
    snprintf(p_sleep, sizeof(p_sleep), "%s/sleep.sock", dir);

    printf("round trip, microseconds (p50 / p99 / max), %zu iterations each\n", iters);
    printf("%-6s %-28s %-28s %-28s %s\n", "size", "rings spinning", "rings sleeping",
           "unix socket", "socket/spin p50");
    /* one server at a time: a busy-polling one would steal a core from the others */
    uint32_t sizes[2] = { 64, 4096 };
    stats a[2], b[2], c[2];
    qlab_shm_server *spin = start_server(p_spin, -1, &d1);
    for (int k = 0; k < 2; k++)
        a[k] = ring_rtt(p_spin, sizes[k], iters, -1);
    qlab_shm_server_free(spin);
    qlab_shm_server *sleep = start_server(p_sleep, 0, &d2);
    for (int k = 0; k < 2; k++) {
        b[k] = ring_rtt(p_sleep, sizes[k], iters / 4, 0);
        c[k] = sock_rtt(sizes[k], iters);
    }
    for (int k = 0; k < 2; k++) {
        printf("%-6u %7.2f / %7.2f / %8.1f   %7.2f / %7.2f / %8.1f   "
               "%7.2f / %7.2f / %8.1f   %.1fx\n",
               sizes[k], a[k].p50, a[k].p99, a[k].max, b[k].p50, b[k].p99, b[k].max, c[k].p50,
               c[k].p99, c[k].max, c[k].p50 / a[k].p50);
    }

    event_throughput(sleep, p_sleep, 200000);
    quant_bench(p_sleep, 11);
    qlab_shm_server_free(sleep);
    shm_test_daemon_fini(&d1);
    shm_test_daemon_fini(&d2);
    rmdir(dir);
    return 0;
}
