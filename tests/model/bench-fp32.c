/* bench-fp32.c — FP32 evaluation of the shipped CNN on the 10,000 Fashion-MNIST test
 * images: qlab (both cores, OpenBLAS) against PyTorch (2 threads) measured in the same run.
 * Usage: bench-model-fp32 [python bench_torch.py]; prints the best of 5 (qlab) and 3
 * (PyTorch) runs and the speed ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qlab-config.h"
#include "qlab-model.h"

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
    double best = 1e30, acc = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        if (qlab_model_accuracy(m, ds, NULL, &acc, &err) < 0) {
            fprintf(stderr, "bench-model-fp32: %s\n", err.msg);
            return 1;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("qlab    FP32 CNN, %zu images: %.4f s (best of 5), accuracy %.2f %%\n", ds->n, best,
           acc);
    if (argc >= 3) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "'%s' '%s'", argv[1], argv[2]);
        FILE *p = popen(cmd, "r");
        double tt = 0, tacc = 0;
        if (!p || fscanf(p, "torch %lf %lf", &tt, &tacc) != 2) {
            fprintf(stderr, "bench-model-fp32: could not run %s\n", cmd);
            if (p)
                pclose(p);
            return 1;
        }
        pclose(p);
        printf("PyTorch FP32 CNN, 2 threads, batch 1000: %.4f s (best of 3), accuracy %.2f %%\n",
               tt, tacc);
        printf("speed-up qlab / PyTorch: %.2fx (target >= 5x)\n", tt / best);
    }
    qlab_model_free(m);
    qlab_dataset_free(ds);
    return 0;
}
