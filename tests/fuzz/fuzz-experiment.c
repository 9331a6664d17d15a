/* fuzz-experiment.c — libFuzzer target for the YAML experiment loader: parsing, the schema,
 * value checks and grid expansion. Relative paths resolve from QLAB_SOURCE_ROOT/data, so
 * seeds saying `path: fmnist-mlp.safetensors` reach the checks behind the model's
 * existence (layers, tensors, overrides, expansion). */
#include <stddef.h>
#include <stdint.h>

#include "qlab-config.h"
#include "qlab-experiment.h"
#include "qlab-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qlab_experiment *e = NULL;
    qlab_err err = {0};
    if (qlab_experiment_load_buffer(&e, (const char *)data, size, "fuzz.yaml",
                                    QLAB_SOURCE_ROOT "/data", &err) == 0) {
        qlab_run_config *runs = NULL;
        size_t n = 0;
        if (qlab_experiment_expand(e, &runs, &n, &err) == 0) {
            /* the count the loader reported is the grid's size */
            if (n != e->n_runs)
                __builtin_trap();
            qlab_run_configs_free(runs, n);
        }
        int line = 0, col = 0;
        (void)qlab_experiment_locate(e, "sweep.bits[1]", &line, &col);
        (void)qlab_experiment_locate(e, "model.layers[0].weight", &line, &col);
        qlab_experiment_free(e);
    } else if (err.msg[0] == '\0') {
        __builtin_trap(); /* every failure must tell the user something */
    }
    return 0;
}
