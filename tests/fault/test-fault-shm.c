/* test-fault-shm.c — memfd_create and mmap failing in the shared-memory server and client
 * (linked with -Wl,--wrap=memfd_create,--wrap=mmap64): the client being set up gets an
 * error from qlab_shm_connect, no client is left half-connected on the server, and the
 * server goes on serving the next client (a QUANT round trip proves it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qlab-shm-quant.h"
#include "qlab-shm.h"

int __real_memfd_create(const char *name, unsigned flags);
int __wrap_memfd_create(const char *name, unsigned flags);
/* With _FILE_OFFSET_BITS=64 (meson's default) glibc's headers turn mmap into mmap64. */
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* Which calls fail: memfd_create (server side: it makes each client's segment), or the
 * MAP_SHARED mmap of the segment on the server thread or on the client's thread. */
enum { FAIL_NONE, FAIL_MEMFD, FAIL_MMAP_SERVER, FAIL_MMAP_CLIENT };
static _Atomic int fail_mode;
static _Atomic int fired;
static pthread_t client_thread;

int __wrap_memfd_create(const char *name, unsigned flags)
{
    if (fail_mode == FAIL_MEMFD) {
        fired++;
        errno = EMFILE;
        return -1;
    }
    return __real_memfd_create(name, flags);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int mode = fail_mode;
    if ((flags & MAP_SHARED) && fd >= 0 &&
        ((mode == FAIL_MMAP_SERVER && !pthread_equal(pthread_self(), client_thread)) ||
         (mode == FAIL_MMAP_CLIENT && pthread_equal(pthread_self(), client_thread)))) {
        fired++;
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap64(addr, len, prot, flags, fd, off);
}

static qlab_shm_quant_scratch scratch;

static int h_quant(void *ud, const qlab_shm_request *req, qlab_msg_reply *rep)
{
    (void)ud;
    return qlab_shm_quant_core(&scratch, req, rep);
}

static const qlab_shm_handlers handlers = { .quant = h_quant };

static void wait_clients(qlab_shm_server *s, unsigned n)
{
    for (int i = 0; i < 5000 && qlab_shm_server_clients(s) != n; i++)
        usleep(1000);
    assert_int_equal(qlab_shm_server_clients(s), n);
}

/* A full client session: connect, quantize 64 values, check the scale, disconnect. */
static void good_client(const char *path)
{
    qlab_shm_client *c = NULL;
    assert_int_equal(qlab_shm_connect(path, NULL, &c), 0);
    size_t size = 0;
    float *data = qlab_shm_client_data(c, &size);
    for (int i = 0; i < 64; i++)
        data[i] = (float)(i - 32) / 16.0f;    /* [-2, 1.94]: symmetric scale 2/127 */
    qlab_msg_quant q = { .bits = 8, .scheme = QLAB_PROTO_SYMMETRIC,
                         .granularity = QLAB_PROTO_GRAN_TENSOR,
                         .calibration = QLAB_PROTO_CALIB_MINMAX, .rows = 1, .cols = 64,
                         .in_off = 0, .codes_off = 4096, .deq_off = 8192 };
    qlab_quant_metrics m = { 0 };
    qlab_err err = { 0 };
    assert_int_equal(qlab_shm_quant(c, &q, &m, &err), 0);
    assert_true(fabsf(m.scale - 2.0f / 127.0f) < 1e-7f);
    qlab_shm_client_free(c);
}

static void test_setup_faults(void **state)
{
    (void)state;
    client_thread = pthread_self();
    char dir[] = "/tmp/qlab-fault-shm-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/qlabd.sock", dir);
    qlab_shm_server *s = NULL;
    assert_int_equal(qlab_shm_server_new(path, &handlers, NULL, NULL, &s), 0);
    assert_int_equal(qlab_shm_server_start(s), 0);

    good_client(path);
    static const int modes[] = { FAIL_MEMFD, FAIL_MMAP_SERVER, FAIL_MMAP_CLIENT };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        fired = 0;
        fail_mode = modes[i];
        qlab_shm_client *c = NULL;
        int r = qlab_shm_connect(path, NULL, &c);
        fail_mode = FAIL_NONE;
        print_message("fault %d: qlab_shm_connect = %d (%s)\n", modes[i], r, strerror(-r));
        assert_true(fired > 0);
        assert_true(r < 0);
        assert_null(c);
        wait_clients(s, 0);
        /* the server keeps serving */
        good_client(path);
        wait_clients(s, 0);
    }
    qlab_shm_server_free(s);
    qlab_shm_quant_scratch_free(&scratch);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_faults),
    };
    return cmocka_run_group_tests_name("fault-shm", tests, NULL, NULL);
}
