/* bench-eval.c — full-model evaluation of the 10k test images, FP32 (OpenBLAS, qlab's
 * model library) against W8A8 (qlab's integer path), for both shipped models, at 1 and
 * 2 threads. W8A8 time includes quantizing and packing the weights (once per
 * configuration), not the calibration pass (once per model, shared by all configurations,
 * timed separately). */
#include <stdio.h>

#include "bench-private.h"
#include "parallel.h"
#include "qlab-int8.h"

typedef struct eval_case {
    const qlab_model *m;
    const qlab_dataset *test;
    const qlab_act_stats *st;
    qlab_w8a8_config cfg;
    double acc;
    int rc;
} eval_case;

static void run_fp32(void *p)
{
    eval_case *x = p;
    x->rc = qlab_model_accuracy(x->m, x->test, NULL, &x->acc, NULL);
}

static void run_w8a8(void *p)
{
    eval_case *x = p;
    qlab_w8a8_result r;
    x->rc = qlab_eval_w8a8(x->m, x->st, x->test, &x->cfg, NULL, &r, NULL);
    x->acc = r.accuracy;
    qlab_w8a8_result_clear(&r);
}

int bench_eval(const char *root)
{
    qlab_dataset *train = NULL, *test = NULL;
    qlab_err err = {0};
    if (qlab_dataset_load_fmnist(&train, NULL, 1, &err) < 0 ||
        qlab_dataset_load_fmnist(&test, NULL, 0, &err) < 0) {
        fprintf(stderr, "dataset: %s\n", err.msg);
        return 1;
    }
    printf("\nmodel evaluation, %zu test images (ms, best of 5; cpu = process CPU ms per "
           "evaluation, all threads)\n", test->n);
    printf("%-5s %3s %10s %10s %8s %10s %10s %10s %10s %11s\n", "model", "thr", "FP32 ms",
           "W8A8 ms", "speedup", "FP32 cpu", "W8A8 cpu", "FP32 acc", "W8A8 acc", "calib ms");
    static const char *const names[] = {"mlp", "cnn"};
    int fail = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/fmnist-%s.safetensors", root, names[i]);
        qlab_model *m = NULL;
        qlab_act_stats *st = NULL;
        if (qlab_model_load(&m, path, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            fail = 1;
            continue;
        }
        qlab_set_threads(2);
        double t0 = bench_now();
        if (qlab_act_collect(m, train, QLAB_CALIB_DEFAULT_IMAGES, QLAB_CALIB_DEFAULT_SEED, &st,
                             &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            qlab_model_free(m);
            fail = 1;
            continue;
        }
        double tcal = bench_now() - t0;
        eval_case x = {.m = m, .test = test, .st = st};
        qlab_w8a8_config_init(&x.cfg);
        for (unsigned th = 1; th <= 2; th++) {
            qlab_set_threads(th);
            double tf = bench_best(run_fp32, &x, 0.2), cf = bench_cpu_last;
            double facc = x.acc;
            double tq = bench_best(run_w8a8, &x, 0.2), cq = bench_cpu_last;
            fail |= x.rc < 0;
            printf("%-5s %3u %10.1f %10.1f %8.2f %10.1f %10.1f %9.2f%% %9.2f%% %11.1f\n",
                   names[i], th, tf * 1e3, tq * 1e3, tf / tq, cf * 1e3, cq * 1e3, facc, x.acc,
                   tcal * 1e3);
        }
        qlab_act_stats_free(st);
        qlab_model_free(m);
    }
    qlab_dataset_free(train);
    qlab_dataset_free(test);
    return fail;
}
