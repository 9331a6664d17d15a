/* bench-kernels.c — throughput of the quantization core against this machine's copy floor,
 * measured in the same run (meson `benchmark()`; run by `meson test --benchmark`).
 *
 *   bench-kernels [PATH-TO-qlab [PATH-TO-python3-with-numpy]]
 *
 * For 1M and 16M floats at 1 and 2 threads: memcpy of the same floats (the floor), then
 * per-tensor int8 quantize, dequantize and fused fake-quant + metrics with given
 * parameters, and the whole qlab_fake_quant (min/max calibration + fused pass). Each
 * figure is the best of several repetitions; "x floor" is time / copy time at the same
 * thread count (bytes differ: quantize reads 4 and writes 2 bytes per value, copy 4 + 4).
 * Then percentile:99.9 of 16M floats; per-channel and per-group:128 int8 of 1024 x 4096
 * floats through the fused qlab_fake_quant_codes against qlab_fake_quant + qlab_quantize
 * (what a QUANT request used to cost); and `qlab quant` end to end on a 4096x4096 .npy file
 * against the seed's numpy way on the same file (when python3 with numpy is given). */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parallel.h"
#include "qlab-npy.h"
#include "qlab-quant.h"

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct copy_ctx {
    float *dst;
    const float *src;
} copy_ctx;

static void copy_chunk(void *ctx, size_t b, size_t e, unsigned chunk)
{
    copy_ctx *c = ctx;
    memcpy(c->dst + b, c->src + b, (e - b) * sizeof(float));
}

enum { K_COPY, K_QUANT, K_DEQUANT, K_FAKE, K_FAKE_CAL, K_N };
static const char *knames[K_N] = { "copy (floor)", "quantize int8", "dequantize int8",
                                   "fake-quant+metrics", "fake-quant+calib+metrics" };
static const double kbytes[K_N] = { 8, 6, 6, 8, 12 };   /* bytes moved per value */

static double run_kernel(int k, size_t n, float *x, float *y, int16_t *q,
                         const qlab_qconfig *cfg, const qlab_qparams *p)
{
    double t0 = now();
    int r = 0;
    qlab_metrics m = {0};
    switch (k) {
    case K_COPY: {
        copy_ctx c = { y, x };
        qlab_parallel_for(n, (size_t)1 << 18, 16, copy_chunk, &c);
        break;
    }
    case K_QUANT:
        r = qlab_quantize(x, 1, n, cfg, p, q);
        break;
    case K_DEQUANT:
        r = qlab_dequantize(q, 1, n, cfg, p, y);
        break;
    case K_FAKE:
        r = qlab_fake_quant_params(x, 1, n, cfg, p, y, &m);
        break;
    case K_FAKE_CAL:
        r = qlab_fake_quant(x, 1, n, cfg, y, NULL, &m);
        break;
    }
    double t = now() - t0;
    if (r < 0) {
        fprintf(stderr, "bench: kernel %s failed: %d\n", knames[k], r);
        exit(1);
    }
    return t;
}

/* CPU seconds (user + system) used by waited-for children so far: on a shared machine
 * wall time includes waiting for a core, CPU time does not. */
static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int spawn_wait(char *const argv[], const char *devnull_out)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (devnull_out)
        posix_spawn_file_actions_addopen(&fa, 1, devnull_out, 0x241 /* O_WRONLY|O_CREAT|O_TRUNC */, 0644);
    pid_t pid;
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -r;
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Best wall time of reps runs (the output file removed before each, so that no run pays
 * for truncating the previous one), and the best CPU time in *cpu. */
static double best_spawn(char *const argv[], int reps, const char *outfile, int *status,
                         double *cpu)
{
    double best = INFINITY;
    *cpu = INFINITY;
    for (int i = 0; i < reps; i++) {
        unlink(outfile);
        double c0 = children_cpu(), t0 = now();
        *status = spawn_wait(argv, "/dev/null");
        double t = now() - t0, c = children_cpu() - c0;
        if (*status != 0)
            return NAN;
        best = t < best ? t : best;
        *cpu = c < *cpu ? c : *cpu;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *qlab = argc > 1 ? argv[1] : NULL, *py = argc > 2 ? argv[2] : NULL;
    const size_t sizes[2] = { (size_t)1 << 20, (size_t)1 << 24 };
    size_t nmax = sizes[1];
    float *x = malloc(nmax * 4), *y = malloc(nmax * 4);
    int16_t *q = malloc(nmax * 2);
    if (!x || !y || !q)
        return 1;
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < nmax; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        x[i] = (float)((double)((s * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53 - 0.5) * 0.2f;
    }
    memset(y, 0, nmax * 4);   /* fault the pages in before timing */
    memset(q, 0, nmax * 2);

    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    qlab_qparams p = {0};
    if (qlab_calibrate(x, 1, nmax, &cfg, &p) < 0)
        return 1;

    printf("qlab core kernels, level %s, %u CPUs online\n", qlab_cpu_level_name(),
           qlab_threads());
    printf("%-26s %9s %3s %10s %9s %8s\n", "kernel", "values", "thr", "ms", "GB/s", "x floor");
    double quant16m_ratio[3] = {0}, floor1[2] = {0};
    for (int si = 0; si < 2; si++)
        for (unsigned th = 1; th <= 2; th++) {
            size_t n = sizes[si];
            int reps = si == 0 ? 60 : 9;
            qlab_set_threads(th);
            double floor_t = 0;
            for (int k = 0; k < K_N; k++) {
                double best = INFINITY;
                run_kernel(k, n, x, y, q, &cfg, &p);   /* warm-up */
                for (int r = 0; r < reps; r++) {
                    double t = run_kernel(k, n, x, y, q, &cfg, &p);
                    best = t < best ? t : best;
                }
                if (k == K_COPY)
                    floor_t = best;
                if (k == K_COPY && th == 1)
                    floor1[si] = best;
                if (k == K_QUANT && si == 1)
                    quant16m_ratio[th] = best / floor_t;
                printf("%-26s %9zu %3u %10.3f %9.2f %8.2f\n", knames[k], n, th, best * 1e3,
                       kbytes[k] * (double)n / best / 1e9, best / floor_t);
            }
        }

    for (unsigned th = 1; th <= 2; th++) {
        qlab_set_threads(th);
        double best = INFINITY, v = 0;
        for (int r = 0; r < 7; r++) {
            double t0 = now();
            if (qlab_percentile(x, nmax, 99.9, 1, &v) < 0)
                return 1;
            double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("%-26s %9zu %3u %10.3f   (target <= 30 ms; value %.6g)\n", "percentile:99.9 |x|",
               nmax, th, best * 1e3, v);
    }
    /* What a QUANT request of 16 MiB costs in the daemon: codes, dequantized tensor and
     * metrics of a per-channel (per-group) min/max int8 tensor, in one fused call against
     * the two calls it replaces. */
    const size_t rows = 1024, cols = 4096, nq = rows * cols;
    int8_t *c8 = malloc(nq);
    if (!c8)
        return 1;
    memset(c8, 0, nq);
    for (int g = 0; g < 2; g++)
        for (unsigned th = 1; th <= 2; th++) {
            qlab_qconfig pc;
            qlab_qconfig_init(&pc);
            pc.granularity = g ? QLAB_GRAN_GROUP : QLAB_GRAN_CHANNEL;
            pc.group_size = 128;
            qlab_set_threads(th);
            double fused = INFINITY, two = INFINITY;
            for (int r = 0; r < 9; r++) {
                qlab_metrics m = {0};
                qlab_qparams pp = {0};
                double t0 = now();
                if (qlab_fake_quant_codes(x, rows, cols, &pc, y, NULL, c8, NULL, &m) < 0)
                    return 1;
                double t1 = now();
                if (qlab_fake_quant(x, rows, cols, &pc, y, &pp, &m) < 0 ||
                    qlab_quantize(x, rows, cols, &pc, &pp, q) < 0)
                    return 1;
                double t2 = now();
                qlab_qparams_free(&pp);
                fused = t1 - t0 < fused ? t1 - t0 : fused;
                two = t2 - t1 < two ? t2 - t1 : two;
            }
            printf("%-26s %9zu %3u %10.3f   (fake_quant + quantize %.3f ms: %.2fx)\n",
                   g ? "group:128 fused codes8" : "per-channel fused codes8", nq, th,
                   fused * 1e3, two * 1e3, two / fused);
        }
    free(c8);

    qlab_set_threads(2);
    printf("per-tensor int8 quantize of 16M vs copy floor: %.2fx (1 thread), %.2fx (2 threads); "
           "target <= 1.25x\n", quant16m_ratio[1], quant16m_ratio[2]);

    /* The seed lesson's numpy code on the same data: per-kernel times measured inside
     * python (best of several), then the whole `qlab quant` against the whole script. */
    const char *in = "/tmp/qlab-bench-4096.npy", *out = "/tmp/qlab-bench-4096-q.npy";
    const char *npout = "/tmp/qlab-bench-4096-np.npy";
    size_t shape[2] = { 4096, 4096 };
    qlab_err err = {0};
    if ((qlab || py) && qlab_npy_write_f32(in, x, 2, shape, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    if (py) {
        static const char kern[] =
            "import sys, time\n"
            "import numpy as np\n"
            "x16 = np.load(sys.argv[1]).reshape(-1)\n"
            "def best(f, reps):\n"
            "    b = 1e9\n"
            "    for _ in range(reps):\n"
            "        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)\n"
            "    return b\n"
            "for n, reps in ((1 << 20, 20), (1 << 24, 3)):\n"
            "    x = x16[:n].copy()\n"
            "    scale = np.max(np.abs(x)) / 127.0\n"
            "    q = np.round(x / scale).clip(-128, 127).astype(np.int8)\n"
            "    tq = best(lambda: np.round(x / scale).clip(-128, 127).astype(np.int8), reps)\n"
            "    td = best(lambda: q.astype(np.float32) * scale, reps)\n"
            "    def fq():\n"
            "        s = np.max(np.abs(x)) / 127.0\n"
            "        d = np.round(x / s).clip(-128, 127).astype(np.int8).astype(np.float32) * s\n"
            "        return np.mean((d - x) ** 2), np.abs(x - d).mean()\n"
            "    tf = best(fq, reps)\n"
            "    print(n, tq, td, tf)\n";
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "'%s' -c '%s' %s", py, kern, in);
        FILE *f = popen(cmd, "r");
        size_t n;
        double tq, td, tf;
        printf("\nthe seed's numpy way on the same data (numpy, 1 thread, same metric order):\n");
        while (f && fscanf(f, "%zu %lf %lf %lf", &n, &tq, &td, &tf) == 4) {
            double fl = n == sizes[0] ? floor1[0] : floor1[1];
            printf("%-26s %9zu %3u %10.3f %9.2f %8.2f\n", "numpy quantize int8", n, 1u, tq * 1e3,
                   6.0 * (double)n / tq / 1e9, tq / fl);
            printf("%-26s %9zu %3u %10.3f %9.2f %8.2f\n", "numpy dequantize int8", n, 1u,
                   td * 1e3, 6.0 * (double)n / td / 1e9, td / fl);
            printf("%-26s %9zu %3u %10.3f %9.2f %8.2f\n", "numpy fake-quant+calib+mse", n, 1u,
                   tf * 1e3, 12.0 * (double)n / tf / 1e9, tf / fl);
        }
        if (f)
            pclose(f);
    }
    if (qlab) {
        int st;
        char *qargv[] = { (char *)qlab, "quant", (char *)in, "--bits", "8", "--scheme",
                          "symmetric", "--granularity", "tensor", "--calibration", "minmax",
                          "--out", (char *)out, NULL };
        double cq, tq = best_spawn(qargv, 5, out, &st, &cq);
        printf("\nend to end on a 4096x4096 float32 .npy (load, int8 symmetric per tensor, "
               "dequantize, metrics, save), best of 5 / 3, wall and CPU (user+sys):\n");
        printf("  qlab quant                        %8.1f ms wall %8.1f ms CPU%s\n", tq * 1e3,
               cq * 1e3, st ? "  (failed)" : "");
        if (py) {
            /* The seed lesson's numpy code (symmetric int8) with its error metric and the same
             * load/save; whole process (python start and numpy import included) and the
             * script's own time after the import. */
            static const char script[] =
                "import sys, time\n"
                "import numpy as np\n"
                "t0 = time.perf_counter()\n"
                "tensor = np.load(sys.argv[1])\n"
                "scale = np.max(np.abs(tensor)) / 127.0\n"
                "quantized = np.round(tensor / scale).clip(-128, 127).astype(np.int8)\n"
                "dequantized = quantized.astype(np.float32) * scale\n"
                "mse = np.mean((dequantized - tensor) ** 2)\n"
                "error = np.abs(tensor - dequantized).mean()\n"
                "np.save(sys.argv[2], dequantized.astype(np.float32))\n"
                "print(time.perf_counter() - t0)\n";
            char cmd[4096];
            snprintf(cmd, sizeof(cmd), "'%s' -c '%s' %s %s", py, script, in, npout);
            double tp = INFINITY, ti = INFINITY, cp = INFINITY;
            for (int r = 0; r < 3; r++) {
                unlink(npout);
                double c0 = children_cpu(), t0 = now(), v;
                FILE *f = popen(cmd, "r");
                if (!f || fscanf(f, "%lf", &v) != 1)
                    v = NAN;
                if (f)
                    pclose(f);
                double t = now() - t0, c = children_cpu() - c0;
                tp = t < tp ? t : tp;
                ti = v < ti ? v : ti;
                cp = c < cp ? c : cp;
            }
            if (isfinite(ti)) {
                printf("  seed numpy way, whole process     %8.1f ms wall %8.1f ms CPU   "
                       "qlab %.1fx faster (wall), %.1fx (CPU); target >= 5x\n",
                       tp * 1e3, cp * 1e3, tp / tq, cp / cq);
                printf("  seed numpy way, after the import  %8.1f ms wall            "
                       "qlab %.1fx faster (wall)\n", ti * 1e3, ti / tq);
            } else {
                printf("  seed numpy way: %s without numpy, skipped\n", py);
            }
            unlink(npout);
        }
        unlink(out);
    }
    unlink(in);
    qlab_qparams_free(&p);
    free(x);
    free(y);
    free(q);
    return 0;
}
