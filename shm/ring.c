/* ring.c — single-producer single-consumer ring over shared memory, and its waiting.
 *
 * Memory ordering (each pair is named at both ends):
 *   (A) producer: slot writes, then store_release(tail)   pairs with (B)
 *   (B) consumer: load_acquire(tail), then slot reads     pairs with (A)
 *   (C) consumer: slot reads, then store_release(head)    pairs with (D)
 *   (D) producer: load_acquire(head), then slot writes    pairs with (C)
 * Wake-ups (Dekker pattern, one side at least sees the other):
 *   (E) sleeping consumer: store flags |= NEED_WAKEUP; smp_mb(); re-read tail; futex_wait
 *   (F) producer: store_release(tail); smp_mb(); read flags; wake if NEED_WAKEUP
 *   If (E)'s re-read misses the new tail, (F)'s flag read must see NEED_WAKEUP; and the
 *   futex itself re-checks tail == expected in the kernel, so a wake between the re-read
 *   and the sleep is not lost either. Same for a producer sleeping on a full ring (G/H).
 */
#include "ring-private.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t qlab_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void qlab_ring_attach(qlab_ring *r, void *ctl, uint32_t entries, uint32_t slot_size,
                      bool producer)
{
    r->ctl = ctl;
    r->entries = entries;
    r->mask = entries - 1;
    r->slot_size = slot_size;
    /* Our own index starts from what the shared word says: 0 for a fresh ring. */
    r->local = producer ? READ_ONCE(r->ctl->tail) : READ_ONCE(r->ctl->head);
    r->cached = r->local;
    r->producer_never_sleeps = false;
}

uint32_t qlab_ring_prod_space(qlab_ring *r, int *err)
{
    uint32_t used = r->local - r->cached;

    if (used + 2 <= r->entries)   /* room enough by the old head; it only moves forward */
        return r->entries - used;
    /* (D) pairs with (C): once we see the consumer's head, its reads of those slots are
     * done and we may overwrite them. */
    uint32_t head = load_acquire(&r->ctl->head);
    used = r->local - head;
    if (used > r->entries) {      /* head ahead of tail or too far behind: corrupt */
        if (err)
            *err = -EPROTO;
        return 0;
    }
    r->cached = head;
    return r->entries - used;
}

unsigned char *qlab_ring_prod_slot(qlab_ring *r, int *err)
{
    if (qlab_ring_prod_space(r, err) == 0)
        return NULL;
    return qlab_ring_slot(r, r->local);
}

uint32_t qlab_ring_prod_commit(qlab_ring *r)
{
    r->local++;
    /* (A) pairs with (B): the slot contents are visible before the new tail. */
    store_release(&r->ctl->tail, r->local);
    /* (F) pairs with (E): order the tail store before the flag load. */
    smp_mb();
    return READ_ONCE(r->ctl->flags);
}

const unsigned char *qlab_ring_cons_slot(qlab_ring *r, int *err)
{
    if (r->cached != r->local)    /* published by a tail we already acquired */
        return qlab_ring_slot(r, r->local);
    /* (B) pairs with (A): slot reads come after we saw the tail that published them. */
    uint32_t tail = load_acquire(&r->ctl->tail);
    uint32_t avail = tail - r->local;

    if (avail == 0)
        return NULL;
    if (avail > r->entries) {
        if (err)
            *err = -EPROTO;
        return NULL;
    }
    r->cached = tail;
    return qlab_ring_slot(r, r->local);
}

bool qlab_ring_cons_release(qlab_ring *r)
{
    r->local++;
    /* (C) pairs with (D): our reads of the slot are done before the producer reuses it. */
    store_release(&r->ctl->head, r->local);
    /* A producer that never sleeps on a full ring (the daemon) needs no wake-up, so the
     * full fence below, ~30 ns on every message, is skipped. */
    if (r->producer_never_sleeps)
        return false;
    /* (H) pairs with (G): order the head store before reading prod_waiting. */
    smp_mb();
    return READ_ONCE(r->ctl->prod_waiting) != 0;
}

int qlab_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected,
                     timeout_ns >= 0 ? &ts : NULL, NULL, 0);
    return r < 0 ? -errno : 0;
}

void qlab_futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int qlab_ring_wait_nonempty(qlab_ring *r, int64_t spin_ns, int64_t sleep_ns)
{
    int64_t t0 = 0;
    uint32_t tail;

    for (unsigned i = 0;; i++) {
        if (load_acquire(&r->ctl->tail) != r->local)
            return 1;
        if (spin_ns <= 0)
            break;
        /* The clock (~20 ns) is read only every 64 spins, and first after 64 of them: a
         * message that comes quickly never pays for it. */
        if ((i & 63) == 63) {
            int64_t now = qlab_now_ns();
            if (t0 == 0)
                t0 = now;
            else if (now - t0 >= spin_ns)
                break;
        }
        qlab_cpu_relax();
    }
    if (sleep_ns == 0)
        return 0;

    /* (E) pairs with (F): announce, full fence, re-check, then sleep. */
    atomic_fetch_or_explicit(&r->ctl->flags, QLAB_RING_NEED_WAKEUP, memory_order_relaxed);
    smp_mb();
    tail = load_acquire(&r->ctl->tail);
    if (tail == r->local)
        qlab_futex_wait(&r->ctl->tail, tail, sleep_ns);
    atomic_fetch_and_explicit(&r->ctl->flags, ~QLAB_RING_NEED_WAKEUP, memory_order_relaxed);
    return load_acquire(&r->ctl->tail) != r->local;
}

int qlab_ring_wait_space(qlab_ring *r, int64_t spin_ns, int64_t sleep_ns)
{
    int64_t t0 = qlab_now_ns();
    uint32_t head;

    for (unsigned i = 0;; i++) {
        if (qlab_ring_prod_space(r, NULL) > 0)
            return 1;
        if (spin_ns <= 0 || ((i & 63) == 63 && qlab_now_ns() - t0 >= spin_ns))
            break;
        qlab_cpu_relax();
    }
    if (sleep_ns == 0)
        return 0;

    /* (G) pairs with (H): announce, full fence, re-check head, sleep on it. */
    WRITE_ONCE(r->ctl->prod_waiting, 1);
    smp_mb();
    head = load_acquire(&r->ctl->head);
    if (r->local - head >= r->entries)
        qlab_futex_wait(&r->ctl->head, head, sleep_ns);
    WRITE_ONCE(r->ctl->prod_waiting, 0);
    return qlab_ring_prod_space(r, NULL) > 0;
}
