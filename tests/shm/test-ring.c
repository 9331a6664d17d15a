/* test-ring.c — the SPSC ring alone: empty, full, wrap-around of the free-running indices,
 * and a two-thread stress test (every message once, in order) over one mapping and over two
 * mappings of the same memfd. Build with -Db_sanitize=thread to run it under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring-private.h"

#define ENTRIES 8u
#define SLOT    64u

typedef struct fixture {
    int fd;
    size_t size;
    void *a, *b;    /* two mappings of one memfd */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->size = qlab_ring_bytes(ENTRIES, SLOT);
    f->fd = memfd_create("ring-test", MFD_CLOEXEC);
    assert_true(f->fd >= 0);
    assert_int_equal(ftruncate(f->fd, (off_t)f->size), 0);
    f->a = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    f->b = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    assert_true(f->a != MAP_FAILED && f->b != MAP_FAILED);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    munmap(f->a, f->size);
    munmap(f->b, f->size);
    close(f->fd);
    free(f);
    return 0;
}

static void test_empty_full(void **state)
{
    fixture *f = *state;
    qlab_ring p, c;
    int err = 0;

    qlab_ring_attach(&p, f->a, ENTRIES, SLOT, true);
    qlab_ring_attach(&c, f->b, ENTRIES, SLOT, false);
    assert_null(qlab_ring_cons_slot(&c, &err));
    assert_int_equal(err, 0);
    assert_int_equal(qlab_ring_prod_space(&p, &err), ENTRIES);
    for (uint32_t i = 0; i < ENTRIES; i++) {
        unsigned char *s = qlab_ring_prod_slot(&p, &err);
        assert_non_null(s);
        s[0] = (unsigned char)i;
        qlab_ring_prod_commit(&p);
    }
    assert_null(qlab_ring_prod_slot(&p, &err));     /* full */
    assert_int_equal(err, 0);
    assert_int_equal(qlab_ring_wait_space(&p, 1000, 1000000), 0);   /* times out */
    for (uint32_t i = 0; i < ENTRIES; i++) {
        const unsigned char *s = qlab_ring_cons_slot(&c, &err);
        assert_non_null(s);
        assert_int_equal(s[0], i);
        qlab_ring_cons_release(&c);
    }
    assert_null(qlab_ring_cons_slot(&c, &err));     /* empty again */
    assert_int_equal(qlab_ring_wait_nonempty(&c, 1000, 1000000), 0);
}

/* Start both indices just below 2^32 so they wrap during the test. */
static void test_wraparound(void **state)
{
    fixture *f = *state;
    qlab_ring p, c;
    int err = 0;
    qlab_ring_ctl *ctl = f->a;

    atomic_store(&ctl->head, UINT32_MAX - 3);
    atomic_store(&ctl->tail, UINT32_MAX - 3);
    qlab_ring_attach(&p, f->a, ENTRIES, SLOT, true);
    qlab_ring_attach(&c, f->b, ENTRIES, SLOT, false);
    for (uint32_t round = 0; round < 5; round++) {
        for (uint32_t i = 0; i < ENTRIES; i++) {
            unsigned char *s = qlab_ring_prod_slot(&p, &err);
            assert_non_null(s);
            memcpy(s, &i, sizeof(i));
            qlab_ring_prod_commit(&p);
        }
        assert_null(qlab_ring_prod_slot(&p, &err));
        for (uint32_t i = 0; i < ENTRIES; i++) {
            const unsigned char *s = qlab_ring_cons_slot(&c, &err);
            uint32_t v;
            assert_non_null(s);
            memcpy(&v, s, sizeof(v));
            assert_int_equal(v, i);
            qlab_ring_cons_release(&c);
        }
        assert_null(qlab_ring_cons_slot(&c, &err));
    }
    assert_true(atomic_load(&ctl->tail) < 64);      /* it did wrap */
    assert_int_equal(atomic_load(&ctl->tail), atomic_load(&ctl->head));
}

/* A peer writing impossible indices is reported, never followed. */
static void test_corrupt_index(void **state)
{
    fixture *f = *state;
    qlab_ring p, c;
    int err = 0;
    qlab_ring_ctl *ctl = f->a;

    qlab_ring_attach(&p, f->a, ENTRIES, SLOT, true);
    qlab_ring_attach(&c, f->b, ENTRIES, SLOT, false);
    atomic_store(&ctl->tail, 1000);                 /* 1000 messages in an 8-slot ring */
    assert_null(qlab_ring_cons_slot(&c, &err));
    assert_int_equal(err, -EPROTO);
    err = 0;
    /* the producer re-reads head only when the ring looks nearly full: fill it first */
    for (uint32_t i = 0; i < ENTRIES - 1; i++) {
        assert_non_null(qlab_ring_prod_slot(&p, &err));
        qlab_ring_prod_commit(&p);
    }
    atomic_store(&ctl->head, 100);                  /* consumer ahead of producer */
    assert_int_equal(qlab_ring_prod_space(&p, &err), 0);
    assert_int_equal(err, -EPROTO);
}

#define STRESS_N 200000u
#define SLEEPY_N 20000u
/* a lost wake-up would cost this much: the sleeping test bounds its time well below */
#define SLEEPY_NS (10ll * 1000000000)

typedef struct stress {
    void *map;
    int sleepy;
    uint32_t n;
    uint64_t sum;
} stress;

static void *producer(void *arg)
{
    stress *st = arg;
    qlab_ring r;
    qlab_ring_attach(&r, st->map, ENTRIES, SLOT, true);
    for (uint32_t i = 0; i < st->n; i++) {
        unsigned char *s;
        while (!(s = qlab_ring_prod_slot(&r, NULL)))
            qlab_ring_wait_space(&r, st->sleepy ? 0 : 2000, st->sleepy ? SLEEPY_NS : 1000000);
        uint64_t v[2] = { i, (uint64_t)i * 2654435761u };
        memcpy(s, v, sizeof(v));
        if (qlab_ring_prod_commit(&r) & QLAB_RING_NEED_WAKEUP)
            qlab_futex_wake(&r.ctl->tail);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    stress *st = arg;
    qlab_ring r;
    int err = 0;
    qlab_ring_attach(&r, st->map, ENTRIES, SLOT, false);
    for (uint32_t i = 0; i < st->n; i++) {
        const unsigned char *s;
        while (!(s = qlab_ring_cons_slot(&r, &err)))
            qlab_ring_wait_nonempty(&r, st->sleepy ? 0 : 2000, st->sleepy ? SLEEPY_NS : 1000000);
        uint64_t v[2];
        memcpy(v, s, sizeof(v));
        if (qlab_ring_cons_release(&r))
            qlab_futex_wake(&r.ctl->head);
        /* once and in order: message i is exactly the i-th one consumed */
        if (v[0] != i || v[1] != (uint64_t)i * 2654435761u)
            return (void *)1;
        st->sum += v[0];
    }
    return err ? (void *)2 : NULL;
}

static void run_stress(void *pmap, void *cmap, int sleepy, uint32_t n)
{
    stress ps = { .map = pmap, .sleepy = sleepy, .n = n },
           cs = { .map = cmap, .sleepy = sleepy, .n = n };
    pthread_t tp, tc;
    void *rc;

    memset(pmap, 0, sizeof(qlab_ring_ctl));
    pthread_create(&tc, NULL, consumer, &cs);
    pthread_create(&tp, NULL, producer, &ps);
    pthread_join(tp, NULL);
    pthread_join(tc, &rc);
    assert_null(rc);
    assert_true(cs.sum == (uint64_t)n * (n - 1) / 2);
}

static void test_stress_one_mapping(void **state)
{
    fixture *f = *state;
    run_stress(f->a, f->a, 0, STRESS_N);
}

static void test_stress_two_mappings(void **state)
{
    fixture *f = *state;
    run_stress(f->a, f->b, 0, STRESS_N);
}

/* No spinning at all: every empty/full ring sleeps on the futex, so one lost wake-up
 * stalls a side for SLEEPY_NS, which the time bound catches. */
static void test_stress_sleeping(void **state)
{
    fixture *f = *state;
    int64_t t0 = qlab_now_ns();
    run_stress(f->a, f->b, 1, SLEEPY_N);
    assert_true(qlab_now_ns() - t0 < SLEEPY_NS / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stress_one_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stress_two_mappings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stress_sleeping, setup, teardown),
    };
    return cmocka_run_group_tests_name("shm-ring", tests, NULL, NULL);
}
