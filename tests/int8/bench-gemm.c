/* bench-gemm.c — qlab's int8 GEMM against OpenBLAS sgemm and oneDNN u8s8s32, measured in
 * the same run at 1 and 2 threads, plus oneDNN's error on full-range u8 input (the
 * int16-saturation trap) against the exact reference, where qlab's error is 0.
 * With a source dir argument (meson passes it) it also times full-model evaluation,
 * FP32 against W8A8, on the 10k test images (bench-eval.c).
 *
 * Times are the best of several repetitions of a loop lasting >= 50 ms (the machine is
 * shared; the best is the least disturbed). GOP/s counts 2*M*N*K operations. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#ifdef QLAB_BENCH_DNNL
#include <dnnl.h>
/* oneDNN here uses OpenMP; resolved at run time from the libgomp that libdnnl pulls in. */
extern void omp_set_num_threads(int n) __attribute__((weak));
#endif

#include "bench-private.h"
#include "parallel.h"
#include "qlab-int8.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_cpu_last;

double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_best(void (*fn)(void *), void *ctx, double min_loop)
{
    double best = 1e30, best_cpu = 1e30;
    fn(ctx);    /* warm-up: page faults, packing caches, thread start */
    for (int rep = 0; rep < 5; rep++) {
        int iters = 0;
        double t0 = bench_now(), c0 = bench_cpu_now(), t;
        do {
            fn(ctx);
            iters++;
            t = bench_now() - t0;
        } while (t < min_loop);
        double c = bench_cpu_now() - c0;
        if (t / iters < best)
            best = t / iters;
        if (c / iters < best_cpu)
            best_cpu = c / iters;
    }
    bench_cpu_last = best_cpu;
    return best;
}

typedef struct gemm_case {
    size_t m, k, n;
    int8_t *a8;
    uint8_t *au;
    int8_t *w;
    float *af, *wf, *cf;
    int32_t *c;
    qlab_qgemm *g;
} gemm_case;

/* u8 input, as oneDNN gets: the same bytes, the same (exact) result semantics */
static void run_qlab(void *p)
{
    gemm_case *x = p;
    qlab_qgemm_u8_s32(x->g, x->au, x->m, x->k, x->c, x->n);
}

static void run_sgemm(void *p)
{
    gemm_case *x = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)x->m, (int)x->n, (int)x->k, 1.0f,
                x->af, (int)x->k, x->wf, (int)x->k, 0.0f, x->cf, (int)x->n);
}

#ifdef QLAB_BENCH_DNNL
static void run_dnnl(void *p)
{
    gemm_case *x = p;
    int32_t co = 0;
    dnnl_gemm_u8s8s32('N', 'T', 'F', (dnnl_dim_t)x->m, (dnnl_dim_t)x->n, (dnnl_dim_t)x->k, 1.0f,
                      x->au, (dnnl_dim_t)x->k, 0, x->w, (dnnl_dim_t)x->k, 0, 0.0f, x->c,
                      (dnnl_dim_t)x->n, &co);
}
#endif

static void set_threads(unsigned t)
{
    qlab_set_threads(t);
    openblas_set_num_threads((int)t);
#ifdef QLAB_BENCH_DNNL
    if (omp_set_num_threads)
        omp_set_num_threads((int)t);
#endif
}

/* Largest |C - exact| over the whole matrix for u8 A = 255 .. (random high bytes) and
 * W = -128/127: the inputs where u8 x s8 pair sums exceed int16. */
static void trap(void)
{
    const size_t m = 64, n = 64, k = 1024;
    uint8_t *au = malloc(m * k);
    int8_t *a8 = malloc(m * k), *w = malloc(n * k);
    int32_t *c = malloc(m * n * 4), *ref = malloc(m * n * 4);
    srand(7);
    for (size_t i = 0; i < m * k; i++) {
        au[i] = (uint8_t)(200 + rand() % 56);
        a8[i] = (int8_t)(au[i] - 128);
    }
    for (size_t i = 0; i < n * k; i++)
        w[i] = (rand() & 1) ? 127 : -128;
    /* exact: (au - 0) * w = (a8 + 128) * w, i.e. a8 with zero point -128 */
    qlab_qgemm_ref_s32(a8, m, k, -128, w, n, k, NULL, 1, ref, n);
    qlab_requant rq = {.in_scale = 1, .in_zp = -128, .w_scale = (const float[]){1.0f},
                       .w_scale_count = 1, .out_scale = 1, .qmin = -128, .qmax = 127};
    qlab_qgemm *g = NULL;
    long long qerr = -1, derr = -1;
    if (qlab_qgemm_pack(w, n, k, &rq, &g) == 0 && qlab_qgemm_u8_s32(g, au, m, k, c, n) == 0) {
        qerr = 0;
        for (size_t i = 0; i < m * n; i++)
            if (llabs((long long)c[i] - ref[i]) > qerr)
                qerr = llabs((long long)c[i] - ref[i]);
    }
    qlab_qgemm_free(g);
#ifdef QLAB_BENCH_DNNL
    int32_t co = 0;
    if (dnnl_gemm_u8s8s32('N', 'T', 'F', (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.0f, au,
                          (dnnl_dim_t)k, 0, w, (dnnl_dim_t)k, 0, 0.0f, c, (dnnl_dim_t)n,
                          &co) == dnnl_success) {
        derr = 0;
        for (size_t i = 0; i < m * n; i++)
            if (llabs((long long)c[i] - ref[i]) > derr)
                derr = llabs((long long)c[i] - ref[i]);
    }
#endif
    printf("\nfull-range u8 x s8 trap (64x1024x64, u8 in 200..255, w = +-127/-128):\n");
    printf("  max |C - exact|: qlab %lld, oneDNN u8s8s32 %s", qerr, derr < 0 ? "n/a" : "");
    if (derr >= 0)
        printf("%lld", derr);
    printf("\n");
    free(au); free(a8); free(w); free(c); free(ref);
}

static void gemm_table(void)
{
    static const size_t shapes[][3] = {
        {256, 784, 256}, {256, 256, 128}, {1024, 1024, 1024}, {1, 4096, 4096},
    };
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    printf("int8 GEMM, qlab kernel level: %s, oneDNN ISA cap: %s\n",
           qlab_int8_isa_name(qlab_int8_isa_current()), cap && *cap ? cap : "none");
    printf("GOP/s from wall time; at 1 thread also from process CPU time (robust when other\n"
           "processes share the cores): cpu q/sgemm, cpu q/oneDNN\n");
    printf("%-16s %3s %10s %10s %10s %9s %9s %9s %9s\n", "MxKxN", "thr", "qlab GOP/s", "sgemm",
           "oneDNN", "q/sgemm", "q/oneDNN", "cpu q/s", "cpu q/o");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_case x = {.m = shapes[s][0], .k = shapes[s][1], .n = shapes[s][2]};
        x.a8 = malloc(x.m * x.k);
        x.au = malloc(x.m * x.k);
        x.w = malloc(x.n * x.k);
        x.af = malloc(x.m * x.k * sizeof(float));
        x.wf = malloc(x.n * x.k * sizeof(float));
        x.cf = malloc(x.m * x.n * sizeof(float));
        x.c = malloc(x.m * x.n * sizeof(int32_t));
        for (size_t i = 0; i < x.m * x.k; i++) {
            x.a8[i] = (int8_t)(rand() % 256 - 128);
            x.au[i] = (uint8_t)(rand() % 128);  /* oneDNN's safe range: no saturation */
            x.af[i] = x.a8[i];
        }
        for (size_t i = 0; i < x.n * x.k; i++) {
            x.w[i] = (int8_t)(rand() % 256 - 128);
            x.wf[i] = x.w[i];
        }
        /* in_zp = -128: u8 zero point 0, as in the oneDNN call */
        qlab_requant rq = {.in_scale = 1, .in_zp = -128, .w_scale = (const float[]){1.0f},
                           .w_scale_count = 1, .out_scale = 1, .qmin = -128, .qmax = 127};
        if (qlab_qgemm_pack(x.w, x.n, x.k, &rq, &x.g) < 0) {
            printf("pack failed\n");
            exit(1);
        }
        double ops = 2.0 * (double)x.m * (double)x.n * (double)x.k;
        for (unsigned th = 1; th <= 2; th++) {
            set_threads(th);
            double tq = bench_best(run_qlab, &x, 0.05), cq = bench_cpu_last;
            double ts = bench_best(run_sgemm, &x, 0.05), cs = bench_cpu_last;
            double td = 0, cd = 0;
#ifdef QLAB_BENCH_DNNL
            td = bench_best(run_dnnl, &x, 0.05);
            cd = bench_cpu_last;
#endif
            char shape[32], dn[16] = "n/a", rd[16] = "n/a", cqs[16] = "-", cqd[16] = "-";
            snprintf(shape, sizeof shape, "%zux%zux%zu", x.m, x.k, x.n);
            if (td > 0) {
                snprintf(dn, sizeof dn, "%.1f", ops / td * 1e-9);
                snprintf(rd, sizeof rd, "%.2f", td / tq);
            }
            if (th == 1) {
                snprintf(cqs, sizeof cqs, "%.2f", cs / cq);
                if (td > 0)
                    snprintf(cqd, sizeof cqd, "%.2f", cd / cq);
            }
            printf("%-16s %3u %10.1f %10.1f %10s %9.2f %9s %9s %9s\n", shape, th,
                   ops / tq * 1e-9, ops / ts * 1e-9, dn, ts / tq, rd, cqs, cqd);
        }
        qlab_qgemm_free(x.g);
        free(x.a8); free(x.au); free(x.w); free(x.af); free(x.wf); free(x.cf); free(x.c);
    }
}

int main(int argc, char **argv)
{
    srand(1);
    /* QLAB_BENCH_EVAL_ONLY=1 skips the GEMM table (profiling the model evaluation) */
    const char *only = getenv("QLAB_BENCH_EVAL_ONLY");
    if (!only || !*only || *only == '0') {
        gemm_table();
        trap();
    }
    set_threads(2);
    if (argc > 1)
        return bench_eval(argv[1]);
    return 0;
}
