/* test-server.c — server and client end to end: every request type, progress events, the
 * zero-copy quantize, a hostile client beside a good one, SO_PEERCRED refusal, a SIGKILLed
 * client reclaimed (descriptors and mappings), connections that never say hello closed at
 * their deadline, and the client seeing the daemon die. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qlab-shm.h"
#include "ring-private.h"
#include "qlab-quant.h"
#include "shm-test-daemon.h"

typedef struct fixture {
    char dir[64], path[128];
    shm_test_daemon d;
    qlab_shm_server *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    shm_test_daemon_init(&f->d);
    strcpy(f->dir, "/tmp/qlab-shm-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/qlabd.sock", f->dir);
    qlab_shm_server_opts o = QLAB_SHM_SERVER_OPTS_DEFAULT;
    o.max_data_size = 64u << 20;
    assert_int_equal(qlab_shm_server_new(f->path, &shm_test_handlers, &f->d, &o, &f->s), 0);
    assert_int_equal(qlab_shm_server_start(f->s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qlab_shm_server_free(f->s);
    shm_test_daemon_fini(&f->d);
    assert_int_equal(access(f->path, F_OK), -1);    /* socket unlinked */
    rmdir(f->dir);
    free(f);
    return 0;
}

static void wait_clients(qlab_shm_server *s, unsigned n)
{
    for (int i = 0; i < 5000 && qlab_shm_server_clients(s) != n; i++)
        usleep(1000);
    assert_int_equal(qlab_shm_server_clients(s), n);
}

static void test_requests(void **state)
{
    fixture *f = *state;
    qlab_shm_client *c;
    qlab_err err = { 0 };
    uint64_t id = 0;

    assert_int_equal(qlab_shm_connect(f->path, NULL, &c), 0);
    assert_int_equal(qlab_shm_submit_path(c, "/x/fashion-mlp.yaml", &id, &err), 0);
    assert_int_equal(id, 1);
    char last[QLAB_PROTO_PATH_MAX];
    shm_test_last(&f->d, 0, last, sizeof(last));
    assert_string_equal(last, "/x/fashion-mlp.yaml");
    const char *yaml = "name: t\nbits: [4, 8]\n";
    assert_int_equal(qlab_shm_submit_yaml(c, yaml, strlen(yaml), &id, &err), 0);
    assert_int_equal(id, 2);
    shm_test_last(&f->d, 1, last, sizeof(last));
    assert_string_equal(last, yaml);

    /* the handler's error text reaches the client */
    assert_int_equal(qlab_shm_submit_path(c, "/x/bad.yaml", &id, &err), -EINVAL);
    assert_string_equal(err.msg, "/x/bad.yaml:12:5: unknown calibration");
    qlab_err_clear(&err);
    assert_int_equal(qlab_shm_cancel(c, 2, &err), 0);
    assert_int_equal(qlab_shm_cancel(c, 99, &err), -ENOENT);
    assert_string_equal(err.msg, "no experiment 99");

    qlab_exp_info info;
    assert_int_equal(qlab_shm_status(c, 2, &info, NULL), 0);
    assert_int_equal(info.id, 2);
    assert_string_equal(info.name, "exp-2");
    assert_true(info.best_accuracy == 0.52f);

    qlab_exp_info infos[4];
    assert_int_equal(qlab_shm_list(c, infos, 4, NULL), 2);
    assert_int_equal(infos[1].id, 2);
    assert_int_equal(infos[1].best_total_bytes, 2000);

    /* PING echoes its bytes */
    static qlab_msg req, rep;
    qlab_msg_init(&req, QLAB_MSG_PING);
    req.u.ping.len = QLAB_PING_MAX;
    for (unsigned i = 0; i < QLAB_PING_MAX; i++)
        req.u.ping.bytes[i] = (uint8_t)(i * 7);
    assert_int_equal(qlab_shm_client_call(c, &req, &rep, 5000), 0);
    assert_int_equal(rep.type, QLAB_MSG_PONG);
    assert_int_equal(rep.u.ping.len, QLAB_PING_MAX);
    assert_memory_equal(rep.u.ping.bytes, req.u.ping.bytes, QLAB_PING_MAX);

    /* a reply type sent to the daemon is refused, not a crash */
    qlab_msg_init(&req, QLAB_MSG_REPLY);
    assert_int_equal(qlab_shm_client_call(c, &req, &rep, 5000), 0);
    assert_int_equal(rep.u.reply.status, -EPROTO);
    assert_int_equal(atomic_load(&f->d.submits), 3);
    qlab_shm_client_free(c);
}

static void test_events(void **state)
{
    fixture *f = *state;
    qlab_shm_client *a, *b;
    qlab_event ev;

    assert_int_equal(qlab_shm_connect(f->path, NULL, &a), 0);
    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    o.eventfd_notify = true;
    o.cq_entries = 16;
    assert_int_equal(qlab_shm_connect(f->path, &o, &b), 0);
    assert_int_equal(qlab_shm_subscribe(a, 0, true, NULL), 0);   /* all experiments */
    assert_int_equal(qlab_shm_subscribe(b, 5, true, NULL), 0);   /* only experiment 5 */

    for (uint32_t i = 0; i < 10; i++) {
        qlab_event e = { .kind = QLAB_EVENT_RUN_FINISHED, .experiment_id = 4 + i % 2,
                         .run_id = 100 + i, .runs_done = i + 1, .runs_total = 10, .bits = 4,
                         .accuracy = 0.5f + 0.01f * (float)i, .total_bytes = 1000 + i };
        snprintf(e.label, sizeof(e.label), "run %u", i);
        assert_int_equal(qlab_shm_server_publish(f->s, &e), 0);
    }
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(qlab_shm_client_next_event(a, &ev, 5000), 0);
        assert_int_equal(ev.run_id, 100 + i);
        assert_int_equal(ev.kind, QLAB_EVENT_RUN_FINISHED);
        assert_true(ev.accuracy == 0.5f + 0.01f * (float)i);
        assert_int_equal(ev.dropped, 0);
    }
    /* b: the eventfd became readable, and only experiment 5's events came */
    uint64_t cnt = 0;
    for (int i = 0; i < 1000 && read(qlab_shm_client_event_fd(b), &cnt, 8) != 8; i++)
        usleep(1000);
    assert_true(cnt >= 1);
    for (uint32_t i = 1; i < 10; i += 2) {
        assert_int_equal(qlab_shm_client_next_event(b, &ev, 5000), 0);
        assert_int_equal(ev.experiment_id, 5);
        assert_int_equal(ev.run_id, 100 + i);
    }
    assert_int_equal(qlab_shm_client_next_event(b, &ev, 20), -ETIMEDOUT);

    /* b's ring holds 16: 40 events without reading lose some, and it is told how many */
    for (uint32_t i = 0; i < 40; i++) {
        qlab_event e = { .kind = QLAB_EVENT_RUN_STARTED, .experiment_id = 5, .run_id = i };
        assert_int_equal(qlab_shm_server_publish(f->s, &e), 0);
    }
    usleep(100000);
    uint32_t got = 0, lost = 0;
    while (qlab_shm_client_next_event(b, &ev, 50) == 0) {
        got++;
        lost += ev.dropped;
    }
    /* one slot stays free for replies: 15 delivered now, plus the drop count carried by the
     * next event, which is not published yet */
    assert_int_equal(got, 15);
    qlab_event e = { .kind = QLAB_EVENT_EXPERIMENT_FINISHED, .experiment_id = 5 };
    assert_int_equal(qlab_shm_server_publish(f->s, &e), 0);
    assert_int_equal(qlab_shm_client_next_event(b, &ev, 5000), 0);
    assert_int_equal(ev.kind, QLAB_EVENT_EXPERIMENT_FINISHED);
    assert_int_equal(ev.dropped + lost, 25);
    qlab_shm_client_free(a);
    qlab_shm_client_free(b);
}

static void fill_tensor(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)rand_r(&seed) / (float)RAND_MAX - 0.5f) * 4.0f;
}

static void test_quant_zero_copy(void **state)
{
    fixture *f = *state;
    qlab_shm_client *c;
    size_t size;
    const uint64_t rows = 64, cols = 256, n = rows * cols;

    assert_int_equal(qlab_shm_connect(f->path, NULL, &c), 0);
    unsigned char *data = qlab_shm_client_data(c, &size);
    assert_true(size >= (16u << 20));
    qlab_msg_quant q = { .bits = 4, .scheme = QLAB_PROTO_ASYMMETRIC,
        .granularity = QLAB_PROTO_GRAN_CHANNEL, .calibration = QLAB_PROTO_CALIB_MINMAX,
        .rows = rows,
        .cols = cols, .in_off = 0, .deq_off = n * 4, .codes_off = n * 8, .scales_off = n * 9,
        .scales_len = rows * 8 };
    fill_tensor((float *)data, n, 42);

    /* reference: the core in-process on private memory */
    float *xr = malloc(n * 4), *dref = malloc(n * 4);
    int16_t *cref = malloc(n * 2);
    memcpy(xr, data, n * 4);
    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    cfg.bits = 4;
    cfg.scheme = QLAB_SCHEME_ASYMMETRIC;
    cfg.granularity = QLAB_GRAN_CHANNEL;
    cfg.calibration = QLAB_CALIB_MINMAX;
    qlab_qparams p = { 0 };
    qlab_metrics mref = { 0 };
    assert_int_equal(qlab_fake_quant(xr, rows, cols, &cfg, dref, &p, &mref), 0);
    assert_int_equal(qlab_quantize(xr, rows, cols, &cfg, &p, cref), 0);

    qlab_quant_metrics m;
    assert_int_equal(qlab_shm_quant(c, &q, &m, NULL), 0);
    assert_memory_equal(data + q.deq_off, dref, n * 4);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(((int8_t *)(data + q.codes_off))[i], cref[i]);
    assert_memory_equal(data + q.scales_off, p.scale, rows * 4);
    assert_memory_equal(data + q.scales_off + rows * 4, p.zero_point, rows * 4);
    assert_true(m.mse == mref.mse && m.sqnr_db == mref.sqnr_db);
    assert_int_equal(m.nscales, rows);
    assert_int_equal(m.bytes, qlab_quant_bytes(rows, cols, &cfg));
    qlab_qparams_free(&p);
    free(xr);
    free(dref);
    free(cref);
    /* 4-bit asymmetric on U(-2, 2): every row's scale <= 4/15, error <= scale/2 */
    assert_true(m.max_abs_error <= 0.5 * 4.0 / 15.0 + 1e-6);
    assert_true(m.scale > 3.5f / 15.0f && m.scale <= 4.0f / 15.0f);
    assert_true(m.sqnr_db > 20.0 && m.sqnr_db < 30.0);

    /* known answer: symmetric int8 of {-1.27, 0.5, 1.27}: scale 0.01, codes -127, 50, 127 */
    float k[3] = { -1.27f, 0.5f, 1.27f };
    memcpy(data, k, sizeof(k));
    qlab_msg_quant q2 = { .bits = 8, .scheme = QLAB_PROTO_SYMMETRIC,
        .granularity = QLAB_PROTO_GRAN_TENSOR, .calibration = QLAB_PROTO_CALIB_MINMAX, .rows = 1,
        .cols = 3, .in_off = 0, .deq_off = 64, .codes_off = 128 };
    assert_int_equal(qlab_shm_quant(c, &q2, &m, NULL), 0);
    int8_t *codes = (int8_t *)(data + 128);
    assert_int_equal(codes[0], -127);
    assert_int_equal(codes[1], 50);
    assert_int_equal(codes[2], 127);
    assert_true(m.scale == 1.27f / 127.0f);

    /* an overlapping request is refused by the decoder, nothing written */
    q2.deq_off = 4;
    qlab_err err = { 0 };
    assert_int_equal(qlab_shm_quant(c, &q2, &m, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "leaves the 16777216-byte data area"));
    /* a NaN is refused with the daemon's one line */
    float bad[3] = { 1.0f, NAN, 2.0f };
    memcpy(data, bad, sizeof(bad));
    q2.deq_off = 64;
    qlab_err_clear(&err);
    assert_int_equal(qlab_shm_quant(c, &q2, &m, &err), -EDOM);
    assert_string_equal(err.msg, "tensor holds NaN or Inf");
    qlab_shm_client_free(c);
}

typedef struct hostile {
    qlab_shm_client *c;
    _Atomic int stop;
    unsigned long writes;
} hostile;

/* Writes random bytes over its own rings: first well-formed ring indices with garbage
 * messages, then everything (header, indices, flags). */
static void *scribble(void *arg)
{
    hostile *h = arg;
    unsigned seed = 7;
    static _Thread_local qlab_msg m, junk;
    while (!atomic_load(&h->stop)) {
        qlab_msg_init(&m, QLAB_MSG_PING);
        m.u.ping.len = (uint32_t)rand_r(&seed) % QLAB_PING_MAX;
        for (uint32_t i = 0; i < m.u.ping.len; i++)
            m.u.ping.bytes[i] = (uint8_t)rand_r(&seed);
        m.type = (uint32_t)rand_r(&seed) % 80;      /* mostly malformed */
        int r = qlab_shm_client_send(h->c, &m, 10);
        if (r == -EINVAL)
            continue;             /* a type the encoder does not know: never left the process */
        if (r < 0)
            break;
        while (qlab_shm_client_recv(h->c, &junk, 0) == 0)
            ;
        h->writes++;
    }
    return NULL;
}

/* The raw memory of a client, via its data pointer and the fixed layout. */
static unsigned char *client_base(qlab_shm_client *c, size_t *total)
{
    size_t size;
    unsigned char *data = qlab_shm_client_data(c, &size);
    qlab_shm_hdr *h;
    /* the header page sits data_off bytes before the data; try each page boundary */
    for (unsigned char *p = data - 4096;; p -= 4096) {
        h = (qlab_shm_hdr *)p;
        if (atomic_load(&h->magic) == QLAB_SHM_MAGIC && p + h->data_off == data) {
            *total = h->total_size;
            return p;
        }
    }
}

static void test_hostile_client(void **state)
{
    fixture *f = *state;
    qlab_shm_client *good, *bad;
    hostile h = { 0 };
    pthread_t t;

    assert_int_equal(qlab_shm_connect(f->path, NULL, &good), 0);
    assert_int_equal(qlab_shm_connect(f->path, NULL, &bad), 0);
    h.c = bad;
    pthread_create(&t, NULL, scribble, &h);

    static qlab_msg req, rep;
    for (uint32_t i = 0; i < 3000; i++) {
        qlab_msg_init(&req, QLAB_MSG_PING);
        req.u.ping.len = 8 + i % 200;
        memset(req.u.ping.bytes, (int)(i & 0xff), req.u.ping.len);
        assert_int_equal(qlab_shm_client_call(good, &req, &rep, 5000), 0);
        assert_int_equal(rep.type, QLAB_MSG_PONG);
        assert_int_equal(rep.id, req.id);
        assert_int_equal(rep.u.ping.len, req.u.ping.len);
        assert_int_equal(rep.u.ping.bytes[req.u.ping.len - 1], i & 0xff);
    }
    atomic_store(&h.stop, 1);
    pthread_join(t, NULL);
    assert_true(h.writes > 10);

    /* now plain random bytes over the whole segment: indices, flags, header */
    size_t total;
    unsigned char *base = client_base(bad, &total);
    unsigned seed = 99;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < 2 * 4096 + 4096; i++)
            base[(size_t)rand_r(&seed) % total] = (unsigned char)rand_r(&seed);
        qlab_ring_ctl *sq = (qlab_ring_ctl *)(base + 4096);
        atomic_store(&sq->tail, (uint32_t)rand_r(&seed));
        qlab_msg_init(&req, QLAB_MSG_PING);
        req.u.ping.len = 16;
        assert_int_equal(qlab_shm_client_call(good, &req, &rep, 5000), 0);
        assert_int_equal(rep.id, req.id);
    }
    /* the corrupt client was dropped; the good one is still served */
    wait_clients(f->s, 1);
    assert_int_equal(qlab_shm_client_alive(bad), -ECONNRESET);
    uint64_t id;
    assert_int_equal(qlab_shm_submit_path(good, "/ok.yaml", &id, NULL), 0);
    qlab_shm_client_free(bad);
    qlab_shm_client_free(good);
}

static void test_peercred_refused(void **state)
{
    fixture *f = *state;
    if (geteuid() != 0)
        skip();                   /* needs root to become another uid */
    chmod(f->dir, 0755);
    chmod(f->path, 0777);         /* let uid 65534 reach the socket: SO_PEERCRED must refuse */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        qlab_shm_client *c;
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(10);
        int r = qlab_shm_connect(f->path, NULL, &c);
        _exit(r == -EACCES ? 0 : 20 + (-r & 0xff));
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(qlab_shm_server_clients(f->s), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int count_client_maps(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, "memfd:qlab-client") != NULL;
    fclose(fp);
    return n;
}

static void test_sigkill_reclaimed(void **state)
{
    fixture *f = *state;
    int fds0 = count_fds(), maps0 = count_client_maps();
    unsigned long q0 = atomic_load(&f->d.quants);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        qlab_shm_client *c;
        qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
        o.data_size = 40u << 20;
        if (qlab_shm_connect(f->path, &o, &c) < 0)
            _exit(1);
        size_t size;
        float *x = qlab_shm_client_data(c, &size);
        const uint64_t n = 2u << 20;
        fill_tensor(x, n, 1);
        qlab_msg_quant q = { .bits = 8, .scheme = QLAB_PROTO_SYMMETRIC,
            .granularity = QLAB_PROTO_GRAN_TENSOR, .calibration = QLAB_PROTO_CALIB_MINMAX,
            .rows = 1,
            .cols = n, .in_off = 0, .deq_off = n * 4, .codes_off = n * 8 };
        for (;;)                  /* request after request until killed mid-way */
            qlab_shm_quant(c, &q, NULL, NULL);
    }
    wait_clients(f->s, 1);
    for (int i = 0; i < 5000 && atomic_load(&f->d.quants) < q0 + 2; i++)
        usleep(1000);
    assert_true(count_fds() > fds0);
    assert_true(count_client_maps() > maps0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    wait_clients(f->s, 0);
    for (int i = 0; i < 2000 && (count_fds() != fds0 || count_client_maps() != maps0); i++)
        usleep(1000);
    assert_int_equal(count_fds(), fds0);
    assert_int_equal(count_client_maps(), maps0);
    assert_true(atomic_load(&f->d.gone) >= 1);

    /* and the daemon serves the next client */
    qlab_shm_client *c;
    uint64_t id;
    assert_int_equal(qlab_shm_connect(f->path, NULL, &c), 0);
    assert_int_equal(qlab_shm_submit_path(c, "/after.yaml", &id, NULL), 0);
    qlab_shm_client_free(c);
}

static int raw_connect(const char path[64])
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Two silent connections fill a 2-client server: a real client is refused (-EUSERS) until
 * the hello deadline (200 ms) closes them, then it gets in. */
static void test_hello_timeout(void **state)
{
    (void)state;
    char dir[32] = "/tmp/qlab-shm-hello-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/qlabd.sock", dir);
    shm_test_daemon d;
    shm_test_daemon_init(&d);
    qlab_shm_server_opts o = QLAB_SHM_SERVER_OPTS_DEFAULT;
    o.max_clients = 2;
    o.hello_timeout_ns = 200000000;
    qlab_shm_server *s;
    assert_int_equal(qlab_shm_server_new(path, &shm_test_handlers, &d, &o, &s), 0);
    assert_int_equal(qlab_shm_server_start(s), 0);

    int64_t t0 = qlab_now_ns();
    int silent[2] = { raw_connect(path), raw_connect(path) };
    usleep(20000);              /* let the server accept both */
    qlab_shm_client *c = NULL;
    assert_int_equal(qlab_shm_connect(path, NULL, &c), -EUSERS);

    /* the server closes each silent socket: a read sees EOF */
    for (int i = 0; i < 2; i++) {
        char b;
        assert_int_equal(read(silent[i], &b, 1), 0);
        close(silent[i]);
    }
    int64_t waited = qlab_now_ns() - t0;
    assert_true(waited >= 190000000);           /* not before the deadline */
    assert_true(waited < 3000000000);           /* and not much after it */
    int r = -1;
    for (int i = 0; i < 500 && (r = qlab_shm_connect(path, NULL, &c)) == -EUSERS; i++)
        usleep(1000);
    assert_int_equal(r, 0);
    wait_clients(s, 1);
    /* a client that did say hello is not subject to the deadline */
    usleep(300000);
    wait_clients(s, 1);
    qlab_exp_info infos[4];
    qlab_err err = { 0 };
    assert_true(qlab_shm_list(c, infos, 4, &err) >= 0);
    qlab_shm_client_free(c);
    qlab_shm_server_free(s);
    shm_test_daemon_fini(&d);
    rmdir(dir);
}

/* The client learns of the daemon's death from the socket, in one clear error. */
static void test_daemon_death(void **state)
{
    char dir[] = "/tmp/qlab-shm-death-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/qlabd.sock", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static shm_test_daemon d;
        shm_test_daemon_init(&d);
        qlab_shm_server *s;
        if (qlab_shm_server_new(path, &shm_test_handlers, &d, NULL, &s) < 0)
            _exit(1);
        qlab_shm_server_run(s);
        _exit(0);
    }
    qlab_shm_client *c = NULL;
    for (int i = 0; i < 5000 && qlab_shm_connect(path, NULL, &c) < 0; i++)
        usleep(1000);
    assert_non_null(c);
    uint64_t id;
    assert_int_equal(qlab_shm_submit_path(c, "/a.yaml", &id, NULL), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    qlab_err err = { 0 };
    qlab_event ev;
    assert_int_equal(qlab_shm_client_next_event(c, &ev, 5000), -ECONNRESET);
    assert_int_equal(qlab_shm_submit_path(c, "/b.yaml", &id, &err), -ECONNRESET);
    assert_string_equal(err.msg, "qlabd stopped (connection reset)");
    qlab_shm_client_free(c);
    /* a dead daemon's socket is taken over by the next one */
    static shm_test_daemon d2;
    shm_test_daemon_init(&d2);
    qlab_shm_server *s2;
    assert_int_equal(qlab_shm_server_new(path, &shm_test_handlers, &d2, NULL, &s2), 0);
    qlab_shm_server_free(s2);
    shm_test_daemon_fini(&d2);
    rmdir(dir);
}

/* Both sides sleep on every message (no spinning): the server in epoll behind its
 * NEED_WAKEUP flag and doorbell, the client on the futex. A lost wake-up would leave a call
 * waiting for its 2 s timeout; 3000 calls in a row must all come back. */
static void test_sleeping_both_sides(void **state)
{
    char dir[] = "/tmp/qlab-shm-sleep-XXXXXX", path[128];
    static shm_test_daemon d;
    qlab_shm_server_opts so = QLAB_SHM_SERVER_OPTS_DEFAULT;
    qlab_shm_client_opts co = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    qlab_shm_server *s;
    qlab_shm_client *c;
    static qlab_msg req, rep;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/qlabd.sock", dir);
    shm_test_daemon_init(&d);
    so.spin_ns = 0;
    co.spin_ns = 0;
    assert_int_equal(qlab_shm_server_new(path, &shm_test_handlers, &d, &so, &s), 0);
    assert_int_equal(qlab_shm_server_start(s), 0);
    assert_int_equal(qlab_shm_connect(path, &co, &c), 0);
    int64_t t0 = qlab_now_ns();
    for (uint32_t i = 0; i < 3000; i++) {
        qlab_msg_init(&req, QLAB_MSG_PING);
        req.u.ping.len = 8;
        memcpy(req.u.ping.bytes, &i, 4);
        assert_int_equal(qlab_shm_client_call(c, &req, &rep, 2000), 0);
        assert_int_equal(rep.id, req.id);
        assert_memory_equal(rep.u.ping.bytes, &i, 4);
    }
    assert_true(qlab_now_ns() - t0 < 10ll * 1000000000);
    qlab_shm_client_free(c);
    qlab_shm_server_free(s);
    shm_test_daemon_fini(&d);
    rmdir(dir);
}

static void test_socket_path(void **state)
{
    char buf[256];
    unsetenv("QLAB_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/tmp", 1);
    assert_int_equal(qlab_shm_socket_path("/db", false, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/tmp/qlab/qlabd.sock");
    unsetenv("XDG_RUNTIME_DIR");
    assert_int_equal(qlab_shm_socket_path("/db", false, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/db/qlabd.sock");
    assert_int_equal(qlab_shm_socket_path(NULL, false, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(qlab_shm_socket_path("/db", false, buf, 8), -ENAMETOOLONG);
    char dir[] = "/tmp/qlab-shm-rt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("XDG_RUNTIME_DIR", dir, 1);
    assert_int_equal(qlab_shm_socket_path(NULL, true, buf, sizeof(buf)), 0);
    struct stat st;
    snprintf(buf, sizeof(buf), "%s/qlab", dir);
    assert_int_equal(stat(buf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    rmdir(buf);
    rmdir(dir);
    unsetenv("XDG_RUNTIME_DIR");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quant_zero_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peercred_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_reclaimed, setup, teardown),
        cmocka_unit_test(test_hello_timeout),
        cmocka_unit_test(test_daemon_death),
        cmocka_unit_test(test_sleeping_both_sides),
        cmocka_unit_test(test_socket_path),
    };
    return cmocka_run_group_tests_name("shm-server", tests, NULL, NULL);
}
