/* ring-private.h — layout of a client's shared memory and the SPSC ring primitives.
 *
 * One memfd per client:
 *
 *   [0, 4096)            qlab_shm_hdr: magic, version, sizes and offsets (magic written last)
 *   [sq_off, ...)        command ring, client -> daemon: qlab_ring_ctl + sq_entries slots
 *   [cq_off, ...)        completion/event ring, daemon -> client: qlab_ring_ctl + cq_entries
 *   [data_off, +size)    data area (tensors, YAML text, listings), page aligned
 *
 * Rings follow liburing: free-running unsigned 32-bit head (consumer) and tail (producer),
 * slot = index & (entries - 1), so the fill level is always tail - head even after the
 * counters wrap around 2^32. The producer writes the slot, then publishes it with a release
 * store of tail; the consumer reads tail with acquire, reads the slot, then releases it with
 * a release store of head. Each index sits on its own cache line so the two sides do not
 * bounce one line between cores on every message.
 *
 * The values in shared memory are advisory for a peer we do not trust: each side keeps its
 * own copy of the index it owns and of the ring geometry, and checks the other's index
 * (0 <= tail - head <= entries) before using it.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QLAB_SHM_MAGIC   0x514c4142534d3031ull /* "QLABSM01" */
#define QLAB_SHM_VERSION 1u
#define QLAB_CACHELINE   64u
#define QLAB_SLOT_SIZE   4096u

/* liburing's barrier.h, in C11 atomics. */
#define READ_ONCE(x)          atomic_load_explicit(&(x), memory_order_relaxed)
#define WRITE_ONCE(x, v)      atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define load_acquire(p)       atomic_load_explicit((p), memory_order_acquire)
#define store_release(p, v)   atomic_store_explicit((p), (v), memory_order_release)
#define smp_mb()              atomic_thread_fence(memory_order_seq_cst)

/* ring flags (word written by the consumer, read by the producer) */
#define QLAB_RING_NEED_WAKEUP 1u  /* consumer is about to sleep: producer must wake it */
#define QLAB_RING_EVENTFD     2u  /* consumer polls its eventfd (GLib): signal it too */

typedef struct qlab_ring_ctl {
    _Alignas(QLAB_CACHELINE) _Atomic uint32_t head;  /* consumer-owned; futex word of a full ring */
    _Alignas(QLAB_CACHELINE) _Atomic uint32_t tail;  /* producer-owned; futex of an empty ring */
    _Alignas(QLAB_CACHELINE) _Atomic uint32_t flags; /* consumer: QLAB_RING_* */
    _Atomic uint32_t prod_waiting;                   /* producer sleeps on head (ring full) */
    _Alignas(QLAB_CACHELINE) unsigned char slots[];
} qlab_ring_ctl;

typedef struct qlab_shm_hdr {
    _Atomic uint64_t magic;       /* QLAB_SHM_MAGIC, stored last with release */
    uint32_t version, slot_size;
    uint32_t sq_entries, cq_entries;
    uint64_t sq_off, cq_off;
    uint64_t data_off, data_size;
    uint64_t total_size;
    uint64_t client_id;
} qlab_shm_hdr;

/* A process-private view of one ring: geometry copied once, the own index cached. */
typedef struct qlab_ring {
    qlab_ring_ctl *ctl;
    uint32_t entries, mask, slot_size;
    uint32_t local;    /* producer: next tail; consumer: next head */
    uint32_t cached;   /* the peer's index as last loaded: re-read only when it could
                        * change our answer, saving a cache-line transfer per message */
    bool producer_never_sleeps;  /* consumer side: skip the wake-up fence on release */
} qlab_ring;

static inline unsigned char *qlab_ring_slot(const qlab_ring *r, uint32_t idx)
{
    return r->ctl->slots + (size_t)(idx & r->mask) * r->slot_size;
}

static inline size_t qlab_ring_bytes(uint32_t entries, uint32_t slot_size)
{
    return sizeof(qlab_ring_ctl) + (size_t)entries * slot_size;
}

void qlab_ring_attach(qlab_ring *r, void *ctl, uint32_t entries, uint32_t slot_size,
                      bool producer);

/* Producer. qlab_ring_prod_slot returns the next free slot or NULL when full (or -EPROTO
 * through *err when the consumer's head is impossible); qlab_ring_prod_commit publishes it.
 * commit returns the consumer's QLAB_RING_* flags: wake it when any is set. */
unsigned char *qlab_ring_prod_slot(qlab_ring *r, int *err);
uint32_t qlab_ring_prod_commit(qlab_ring *r);
uint32_t qlab_ring_prod_space(qlab_ring *r, int *err);

/* Consumer. qlab_ring_cons_slot returns the oldest message or NULL when empty;
 * qlab_ring_cons_release frees it. release returns true when the producer sleeps on it. */
const unsigned char *qlab_ring_cons_slot(qlab_ring *r, int *err);
bool qlab_ring_cons_release(qlab_ring *r);

/* Futex helpers on a shared (not PRIVATE) word: both processes map the same memfd pages. */
int qlab_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void qlab_futex_wake(_Atomic uint32_t *word);

/* Waiting on the consumer side of an empty ring: spin up to spin_ns, then sleep on the tail
 * futex at most sleep_ns per call. Returns 1 when a message is there, 0 on timeout. */
int qlab_ring_wait_nonempty(qlab_ring *r, int64_t spin_ns, int64_t sleep_ns);
/* Producer side of a full ring, same contract. */
int qlab_ring_wait_space(qlab_ring *r, int64_t spin_ns, int64_t sleep_ns);

int64_t qlab_now_ns(void);

static inline void qlab_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}
