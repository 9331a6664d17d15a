/* bench-private.h — shared by the int8 benchmark's two files. */
#pragma once

double bench_now(void);
double bench_cpu_now(void);
/* Process CPU seconds per call of the last bench_best (best repetition): with one thread
 * it is the wall time minus what other processes took from this one, a check when the
 * machine is shared. */
extern double bench_cpu_last;
/* Best seconds per call of fn(ctx) over 5 repetitions of a loop of >= min_loop seconds. */
double bench_best(void (*fn)(void *), void *ctx, double min_loop);
/* Full-model evaluation FP32 vs W8A8 on the 10k test images; returns 0 or 1. */
int bench_eval(const char *source_root);
