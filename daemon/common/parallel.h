/* parallel.h — a small fork-join pool for the kernels (both cores of the machine).
 *
 * qlab_parallel_for(n, fn, ctx) splits [0, n) into at most qlab_threads() contiguous
 * chunks and calls fn(ctx, begin, end, chunk_index) for each, the calling thread taking
 * the first chunk. Work below `grain` items runs on the caller alone. The pool's threads
 * are created once, on first use, and reused; calls from several threads at once are
 * serialised (an engine worker that already runs in parallel should pass grain = SIZE_MAX
 * or call with threads = 1).
 */
#pragma once

#include <stddef.h>

typedef void (*qlab_range_fn)(void *ctx, size_t begin, size_t end, unsigned chunk);

/* Number of threads kernels use: QLAB_THREADS from the environment, else the number of
 * online CPUs (at most 64). */
unsigned qlab_threads(void);

/* Overrides qlab_threads() for the rest of the process (benchmarks: 1 and 2 threads). */
void qlab_set_threads(unsigned n);

/* Runs fn over [0, n) in up to qlab_threads() chunks; returns the number of chunks used.
 * Chunk boundaries are multiples of `align` (use 1 for none, e.g. 8 to keep SIMD lanes). */
unsigned qlab_parallel_for(size_t n, size_t grain, size_t align, qlab_range_fn fn, void *ctx);

/* Thread-local: while set, qlab_parallel_for in this thread runs everything inline.
 * Engine workers set it so that W workers x T kernel threads do not oversubscribe. */
void qlab_parallel_set_serial(int serial);
