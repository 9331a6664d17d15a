/* context.c — what all runs of one experiment share: the model, the test set, the FP32
 * baseline, the FP32 outputs of every layer on a fixed batch, activation statistics.
 *
 * A context is rebuilt from the database (the stored YAML text and its path), never from
 * memory of a previous process, so a restarted daemon resumes an experiment exactly.
 */
#include "engine-private.h"

#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qlab-act.h"
#include "qlab-experiment.h"

/* sha256 of a file, as lowercase hex, through OpenSSL's EVP interface. */
static int file_sha256(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) {
        close(fd);
        return -ENOMEM;
    }
    int r = 0;
    unsigned char buf[1 << 16];
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (;;) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k < 0) {
            r = -errno;
            break;
        }
        if (k == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)k);
    }
    unsigned char dig[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, dig, &dl);
    EVP_MD_CTX_free(md);
    close(fd);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    return 0;
}

void qlab_exp_ctx_free(qlab_exp_ctx *c)
{
    if (!c)
        return;
    if (c->ref_capture && c->model)
        for (size_t i = 0; i < c->model->nlayers; i++)
            free(c->ref_capture[i]);
    free(c->ref_capture);
    free(c->ref_input);
    qlab_act_ctx_free(c);
    qlab_model_free(c->model);
    qlab_dataset_free(c->test);
    free(c->name);
    free(c->train_images);
    free(c->train_labels);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int qlab_exp_ctx_new(qlab_exp_ctx **out, qlab_store *store, int64_t experiment_id,
                     qlab_err *err)
{
    qlab_experiment_row row = { 0 };
    qlab_experiment *exp = NULL;
    qlab_exp_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->experiment_id = experiment_id;
    int r = qlab_store_get_experiment(store, experiment_id, &row, err);
    if (r < 0)
        goto fail;

    /* The stored YAML, with relative paths resolved from the original file's folder. */
    const char *name = row.yaml_path && *row.yaml_path ? row.yaml_path : row.name;
    char *pathcopy = strdup(name ? name : "experiment.yaml");
    if (!pathcopy) {
        r = -ENOMEM;
        goto fail;
    }
    char *dir = row.yaml_path && *row.yaml_path ? dirname(pathcopy) : NULL;
    r = qlab_experiment_load_buffer(&exp, row.yaml, strlen(row.yaml), name, dir, err);
    free(pathcopy);
    if (r < 0)
        goto fail;
    c->name = strdup(exp->name ? exp->name : "experiment");
    c->calib_samples = exp->calib_samples;
    c->calib_seed = exp->calib_seed;
    c->train_images = exp->train_images ? strdup(exp->train_images) : NULL;
    c->train_labels = exp->train_labels ? strdup(exp->train_labels) : NULL;

    r = qlab_model_load(&c->model, exp->model_path, exp->has_layers ? &exp->spec : NULL, err);
    if (r < 0) {
        /* The loader's message names the file and tensor; locate it at the YAML's
         * model.path so the user sees which experiment line led there. */
        char inner[QLAB_ERR_MSG_MAX];
        snprintf(inner, sizeof(inner), "%s", err && err->msg[0] ? err->msg : strerror(-r));
        qlab_err_clear(err);
        qlab_experiment_error(exp, err, r, "model.path", "%s", inner);
        goto fail;
    }
    if (!exp->has_layers) {
        if (exp->has_norm) {
            c->model->mean = exp->spec.mean;
            c->model->std = exp->spec.std;
        }
    }
    r = qlab_dataset_load(&c->test, exp->test_images, exp->test_labels, err);
    if (r < 0)
        goto fail;
    if (c->test->n == 0) {
        r = qlab_err_set(err, -EINVAL, "%s: the test set has no images", exp->test_images);
        goto fail;
    }
    for (size_t i = 0; i < c->test->n; i++)
        if (c->test->labels[i] >= c->model->nclasses) {
            r = qlab_err_set(err, -EINVAL, "%s: label %u of image %zu is not one of the "
                             "model's %zu classes", exp->test_labels, c->test->labels[i], i,
                             c->model->nclasses);
            goto fail;
        }
    if ((size_t)c->test->h * (size_t)c->test->w != c->model->in_size) {
        r = qlab_err_set(err, -EINVAL, "%s: test images are %dx%d but the model takes %zu values",
                         name, c->test->h, c->test->w, c->model->in_size);
        goto fail;
    }
    r = file_sha256(exp->model_path, c->model_sha256);
    if (r < 0) {
        qlab_err_set(err, r, "%s: cannot read", exp->model_path);
        goto fail;
    }

    /* FP32 baseline. */
    r = qlab_model_accuracy(c->model, c->test, NULL, &c->fp32_accuracy, err);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < c->model->nlayers; i++)
        c->fp32_bytes += (int64_t)qlab_layer_params(&c->model->layers[i]) * 4;
    r = qlab_store_set_baseline(store, experiment_id, c->fp32_accuracy, c->fp32_bytes,
                                c->model_sha256, qlab_cpu_level_name(), err);
    if (r < 0)
        goto fail;

    /* Reference outputs of every layer on the fixed batch. */
    c->ref_n = c->test->n < QLAB_REF_BATCH ? c->test->n : QLAB_REF_BATCH;
    c->ref_input = malloc(c->ref_n * c->model->in_size * sizeof(float));
    c->ref_capture = calloc(c->model->nlayers, sizeof(*c->ref_capture));
    if (!c->ref_input || !c->ref_capture) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < c->model->nlayers; i++) {
        c->ref_capture[i] = malloc(c->ref_n * c->model->layers[i].out_size * sizeof(float));
        if (!c->ref_capture[i]) {
            r = -ENOMEM;
            goto fail;
        }
    }
    r = qlab_model_normalise(c->model, c->test, 0, c->ref_n, c->ref_input);
    if (r < 0)
        goto fail;
    qlab_forward_opts fo = { .capture = c->ref_capture };
    r = qlab_model_forward(c->model, c->ref_input, c->ref_n, &fo, NULL, err);
    if (r < 0)
        goto fail;

    qlab_experiment_free(exp);
    qlab_experiment_row_clear(&row);
    *out = c;
    return 0;
fail:
    qlab_experiment_free(exp);
    qlab_experiment_row_clear(&row);
    qlab_exp_ctx_free(c);
    return r;
}
