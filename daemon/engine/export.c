/* export.c — a finished run's weights as a quantized safetensors model. */
#include "engine-private.h"

#include <json-c/json.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-experiment.h"
#include "qlab-model-quant.h"

static int run_experiment_id(qlab_store *s, int64_t run_id, int64_t *exp, qlab_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(qlab_store_db(s), "SELECT experiment_id FROM runs WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return qlab_err_set(err, -EIO, "%s", sqlite3_errmsg(qlab_store_db(s)));
    sqlite3_bind_int64(st, 1, run_id);
    int r = sqlite3_step(st) == SQLITE_ROW ? 0 : -ENOENT;
    if (r == 0)
        *exp = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (r < 0)
        qlab_err_set(err, r, "no run %lld", (long long)run_id);
    return r;
}

int qlab_engine_export_run(qlab_store *store, int64_t run_id, const char *path,
                           size_t *data_bytes, int64_t *total_bytes, qlab_err *err)
{
    int64_t exp_id = 0;
    int r = run_experiment_id(store, run_id, &exp_id, err);
    if (r < 0)
        return r;
    qlab_experiment_row row = { 0 };
    qlab_run_row *runs = NULL;
    size_t nruns = 0;
    qlab_experiment *x = NULL;
    qlab_model *m = NULL;
    struct json_object *ov = NULL;
    qlab_qconfig *cfgs = NULL;
    const qlab_qconfig **over = NULL;
    const qlab_run_row *run = NULL;

    if ((r = qlab_store_get_experiment(store, exp_id, &row, err)) < 0)
        goto out;
    if ((r = qlab_store_list_runs(store, exp_id, -1, &runs, &nruns, err)) < 0)
        goto out;
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].id == run_id)
            run = &runs[i];
    if (!run) {
        r = qlab_err_set(err, -ENOENT, "no run %lld", (long long)run_id);
        goto out;
    }
    if (run->status != QLAB_STATUS_DONE) {
        r = qlab_err_set(err, -EINVAL, "run %lld is %s, not done", (long long)run_id,
                         qlab_status_name(run->status));
        goto out;
    }
    /* The model as the experiment described it, from the stored YAML. */
    {
        char *pathcopy = row.yaml_path ? strdup(row.yaml_path) : NULL;
        const char *name = row.yaml_path ? row.yaml_path : row.name;
        r = qlab_experiment_load_buffer(&x, row.yaml, strlen(row.yaml), name,
                                        pathcopy ? dirname(pathcopy) : NULL, err);
        free(pathcopy);
        if (r < 0)
            goto out;
    }
    if ((r = qlab_model_load(&m, x->model_path, x->has_layers ? &x->spec : NULL, err)) < 0)
        goto out;
    if (run->cfg.overrides && *run->cfg.overrides &&
        !(ov = json_tokener_parse(run->cfg.overrides))) {
        r = qlab_err_set(err, -EINVAL, "run %lld: overrides are not JSON", (long long)run_id);
        goto out;
    }
    /* Per layer: its configuration, or NULL (with cfg NULL) for an FP32 layer. */
    cfgs = calloc(m->nlayers, sizeof(*cfgs));
    over = calloc(m->nlayers, sizeof(*over));
    if (!cfgs || !over) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m->nlayers; i++) {
        if (!qlab_layer_is_weighted(&m->layers[i]))
            continue;
        r = qlab_run_layer_config(&run->cfg, ov, m->layers[i].name, &cfgs[i], err);
        if (r < 0)
            goto out;
        over[i] = r == 1 ? NULL : &cfgs[i];
    }
    r = qlab_model_export_weight_only(m, NULL, over, path, data_bytes, err);
    if (r >= 0 && total_bytes)
        *total_bytes = run->total_bytes;
out:
    if (ov)
        json_object_put(ov);
    free(cfgs);
    free(over);
    qlab_model_free(m);
    qlab_experiment_free(x);
    qlab_run_rows_free(runs, nruns);
    qlab_experiment_row_clear(&row);
    return r < 0 ? r : 0;
}
