/* bench-fp32.c — FP32 evaluation of the shipped CNN on the 10,000 Fashion-MNIST test
 * images: qlab (both cores) against PyTorch (2 threads) measured in the same run.
 * Usage: bench-model-fp32 [python bench_torch.py]; prints the best of 5 runs of qlab at each
 * convolution level up to the one in use (im2col + OpenBLAS "blas", then the direct AVX2
 * and AVX-512 kernels; QLAB_CPU caps it), the best of 3 of PyTorch, and the speed ratio of
 * the level in use. The CPU time of each best run (all threads) is
 * printed too: on a machine other jobs share, wall times swing with their load, while the
 * CPU-time ratio still says how much work each side does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model-private.h"
#include "qlab-config.h"
#include "qlab-model.h"

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *root = getenv("QLAB_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/data/fmnist-cnn.safetensors",
             root && *root ? root : QLAB_SOURCE_ROOT);
    qlab_err err = {0};
    qlab_dataset *ds;
    qlab_model *m;
    if (qlab_dataset_load_fmnist(&ds, NULL, 0, &err) < 0 ||
        qlab_model_load(&m, path, NULL, &err) < 0) {
        fprintf(stderr, "bench-model-fp32: %s\n", err.msg);
        return 1;
    }
    /* every convolution level this CPU has, best last (it is the one compared) */
    double best = 1e30, best_cpu = 0, acc = 0;
    const int top = (int)qlab_conv_level_current();
    for (int lv = 0; lv <= top; lv++) {
        if (!qlab_conv_level_supported((qlab_conv_level)lv))
            continue;
        qlab_conv_set_level((qlab_conv_level)lv);
        best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now(), c0 = cpu_now();
            if (qlab_model_accuracy(m, ds, NULL, &acc, &err) < 0) {
                fprintf(stderr, "bench-model-fp32: %s\n", err.msg);
                return 1;
            }
            double t = now() - t0, c = cpu_now() - c0;
            if (t < best) {
                best = t;
                best_cpu = c;
            }
        }
        printf("qlab    FP32 CNN, %zu images, conv %-6s: %.4f s (best of 5, CPU %.3f s), "
               "accuracy %.2f %%\n",
               ds->n, qlab_conv_level_name((qlab_conv_level)lv), best, best_cpu, acc);
    }
    if (argc >= 3) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "'%s' '%s'", argv[1], argv[2]);
        FILE *p = popen(cmd, "r");
        double tt = 0, tacc = 0, tcpu = 0;
        if (!p || fscanf(p, "torch %lf %lf %lf", &tt, &tacc, &tcpu) != 3) {
            fprintf(stderr, "bench-model-fp32: could not run %s\n", cmd);
            if (p)
                pclose(p);
            return 1;
        }
        pclose(p);
        printf("PyTorch FP32 CNN, 2 threads, batch 1000: %.4f s (best of 3, CPU %.3f s), "
               "accuracy %.2f %%\n",
               tt, tcpu, tacc);
        printf("speed-up qlab (conv %s) / PyTorch: %.2fx wall (target >= 5x), %.2fx CPU time\n",
               qlab_conv_level_name((qlab_conv_level)top), tt / best,
               tcpu / best_cpu);
    }
    qlab_model_free(m);
    qlab_dataset_free(ds);
    return 0;
}
