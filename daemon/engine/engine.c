/* engine.c — the worker pool: claim a pending run from the database, evaluate it, write it
 * back in one transaction, tell the listener. See qlab-engine.h for the recovery story. */
#include "engine-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parallel.h"
#include "qlab-experiment.h"

#define MAX_CTX 8

struct ctx_slot {
    int64_t experiment_id;
    qlab_exp_ctx *ctx;           /* NULL while being built */
    int building;
    int users;
    int failed;                  /* the context could not be built: experiment failed */
};

struct qlab_engine {
    qlab_store *store;
    qlab_engine_opts opts;
    int nworkers;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work;         /* workers wait for runs (kick) */
    pthread_cond_t changed;      /* waiters: a run or a context changed state */
    int stopping;
    int busy;                    /* workers currently evaluating */
    struct ctx_slot slots[MAX_CTX];
    int64_t announced[64];       /* experiments whose FINISHED event was sent (ring) */
    unsigned nannounced;
    int64_t own[64];             /* only_own: experiments submitted here */
    unsigned nown;
};

/* One claim: any experiment's oldest pending run, or (only_own) one of ours. */
static int claim(qlab_engine *e, qlab_claim *cl, qlab_err *err)
{
    if (!e->opts.only_own)
        return qlab_store_claim_run(e->store, 0, cl, err);
    pthread_mutex_lock(&e->mu);
    unsigned n = e->nown < 64 ? e->nown : 64;
    int64_t ids[64];
    memcpy(ids, e->own, n * sizeof(ids[0]));
    pthread_mutex_unlock(&e->mu);
    for (unsigned i = 0; i < n; i++) {
        int r = qlab_store_claim_run(e->store, ids[i], cl, err);
        if (r != 0)
            return r;
    }
    return 0;
}

static void emit(qlab_engine *e, qlab_engine_event *ev)
{
    if (e->opts.on_event)
        e->opts.on_event(e->opts.event_ctx, ev);
}

static void emit_log(qlab_engine *e, int64_t exp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit_log(qlab_engine *e, int64_t exp, const char *fmt, ...)
{
    qlab_engine_event ev = { .type = QLAB_EV_LOG, .experiment_id = exp };
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev.message, sizeof(ev.message), fmt, ap);
    va_end(ap);
    emit(e, &ev);
}

static void counts(qlab_engine *e, int64_t exp, qlab_engine_event *ev, qlab_status *status)
{
    qlab_experiment_row row = { 0 };
    if (qlab_store_get_experiment(e->store, exp, &row, NULL) == 0) {
        ev->runs_done = row.runs_done + row.runs_failed;
        ev->runs_total = row.runs_total - row.runs_cancelled;
        if (status)
            *status = row.status;
        if (ev->type == QLAB_EV_EXPERIMENT_STARTED || ev->type == QLAB_EV_EXPERIMENT_FINISHED)
            snprintf(ev->label, sizeof(ev->label), "%s", row.name ? row.name : "");
        if (ev->type == QLAB_EV_EXPERIMENT_FINISHED) {
            ev->accuracy = row.fp32_accuracy;
            if (row.error)
                snprintf(ev->message, sizeof(ev->message), "%s", row.error);
        }
        qlab_experiment_row_clear(&row);
    } else if (status) {
        *status = QLAB_STATUS_FAILED;
    }
}

/* Sends EXPERIMENT_FINISHED once per experiment, when it has nothing pending or running. */
static void maybe_finished(qlab_engine *e, int64_t exp)
{
    qlab_engine_event ev = { .type = QLAB_EV_EXPERIMENT_FINISHED, .experiment_id = exp };
    qlab_status st;
    counts(e, exp, &ev, &st);
    if (st == QLAB_STATUS_PENDING || st == QLAB_STATUS_RUNNING)
        return;
    pthread_mutex_lock(&e->mu);
    for (unsigned i = 0; i < e->nannounced && i < 64; i++)
        if (e->announced[i] == exp) {
            pthread_mutex_unlock(&e->mu);
            return;
        }
    e->announced[e->nannounced++ % 64] = exp;
    /* The context is no longer needed once nobody uses it. */
    for (int i = 0; i < MAX_CTX; i++) {
        struct ctx_slot *s = &e->slots[i];
        if (s->experiment_id == exp && s->users == 0 && !s->building) {
            qlab_exp_ctx_free(s->ctx);
            memset(s, 0, sizeof(*s));
        }
    }
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->mu);
    ev.status = (int)st;
    emit(e, &ev);
}

/* Returns the context of exp, building it on first use (one builder; others wait).
 * NULL when it cannot be built (the experiment is then marked failed). */
static qlab_exp_ctx *ctx_get(qlab_engine *e, int64_t exp)
{
    pthread_mutex_lock(&e->mu);
    for (;;) {
        struct ctx_slot *free_slot = NULL, *s = NULL;
        for (int i = 0; i < MAX_CTX; i++) {
            if (e->slots[i].experiment_id == exp)
                s = &e->slots[i];
            else if (!free_slot && e->slots[i].experiment_id == 0)
                free_slot = &e->slots[i];
        }
        if (s && s->failed) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        if (s && s->ctx) {
            s->users++;
            qlab_exp_ctx *c = s->ctx;
            pthread_mutex_unlock(&e->mu);
            return c;
        }
        if (s && s->building) {
            pthread_cond_wait(&e->changed, &e->mu);
            continue;
        }
        if (!free_slot) {
            /* Evict an idle context of another experiment. */
            for (int i = 0; i < MAX_CTX; i++)
                if (e->slots[i].users == 0 && !e->slots[i].building) {
                    qlab_exp_ctx_free(e->slots[i].ctx);
                    memset(&e->slots[i], 0, sizeof(e->slots[i]));
                    free_slot = &e->slots[i];
                    break;
                }
            if (!free_slot) {
                pthread_cond_wait(&e->changed, &e->mu);
                continue;
            }
        }
        free_slot->experiment_id = exp;
        free_slot->building = 1;
        pthread_mutex_unlock(&e->mu);

        qlab_err err = { 0 };
        qlab_exp_ctx *c = NULL;
        int r = qlab_exp_ctx_new(&c, e->store, exp, &err);

        pthread_mutex_lock(&e->mu);
        free_slot->building = 0;
        if (r < 0) {
            free_slot->failed = 1;
            pthread_cond_broadcast(&e->changed);
            pthread_mutex_unlock(&e->mu);
            if (!err.msg[0])
                snprintf(err.msg, sizeof(err.msg), "%s", strerror(-r));
            /* The FINISHED event carries the error (one line in every log). */
            qlab_store_fail_experiment(e->store, exp, err.msg, NULL);
            maybe_finished(e, exp);
            return NULL;
        }
        free_slot->ctx = c;
        free_slot->users = 1;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->mu);

        qlab_engine_event ev = { .type = QLAB_EV_EXPERIMENT_STARTED, .experiment_id = exp,
                          .accuracy = c->fp32_accuracy, .total_bytes = c->fp32_bytes };
        counts(e, exp, &ev, NULL);
        emit(e, &ev);
        return c;
    }
}

static void ctx_put(qlab_engine *e, int64_t exp)
{
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < MAX_CTX; i++)
        if (e->slots[i].experiment_id == exp && e->slots[i].users > 0)
            e->slots[i].users--;
    pthread_mutex_unlock(&e->mu);
}

static void run_one(qlab_engine *e, qlab_claim *cl)
{
    qlab_engine_event ev = { .type = QLAB_EV_RUN_STARTED, .experiment_id = cl->experiment_id,
                      .run_id = cl->run_id, .bits = cl->cfg.weights.bits,
                      .act_bits = cl->cfg.act_bits };
    qlab_run_label(&cl->cfg, ev.label, sizeof(ev.label));

    qlab_exp_ctx *c = ctx_get(e, cl->experiment_id);
    if (!c) {
        /* The experiment failed as a whole; its pending runs were cancelled. The claimed
         * run records the same failure. */
        qlab_store_fail_run(e->store, cl->run_id, "experiment could not start", NULL);
        maybe_finished(e, cl->experiment_id);
        return;
    }
    counts(e, cl->experiment_id, &ev, NULL);
    emit(e, &ev);

    qlab_err err = { 0 };
    qlab_run_output out = { 0 };
    int r = qlab_run_eval(c, &cl->cfg, e->opts.hist_bins, &out, &err);
    if (r >= 0) {
        r = qlab_store_finish_run(e->store, cl->run_id, &out.res, &err);
        if (r >= 0) {
            ev.type = QLAB_EV_RUN_FINISHED;
            ev.accuracy = out.res.accuracy;
            ev.total_bytes = out.res.total_bytes;
            ev.eval_ms = out.res.eval_ms;
        }
    }
    if (r < 0) {
        if (!err.msg[0])
            snprintf(err.msg, sizeof(err.msg), "%s", strerror(-r));
        /* A run that cannot be written stays 'running' if even this fails; the next start
         * of the daemon requeues it. */
        qlab_store_fail_run(e->store, cl->run_id, err.msg, NULL);
        ev.type = QLAB_EV_RUN_FAILED;
        snprintf(ev.message, sizeof(ev.message), "%s", err.msg);
    }
    qlab_run_output_clear(&out);
    ctx_put(e, cl->experiment_id);
    counts(e, cl->experiment_id, &ev, NULL);
    emit(e, &ev);
    maybe_finished(e, cl->experiment_id);
}

static void *worker(void *arg)
{
    qlab_engine *e = arg;
    /* With several workers each evaluates serially: the runs are the parallelism. */
    qlab_parallel_set_serial(e->nworkers > 1);
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        pthread_mutex_unlock(&e->mu);
        qlab_claim cl = { 0 };
        qlab_err err = { 0 };
        int r = claim(e, &cl, &err);
        pthread_mutex_lock(&e->mu);
        if (r < 0) {
            pthread_mutex_unlock(&e->mu);
            emit_log(e, 0, "cannot claim a run: %s", err.msg[0] ? err.msg : strerror(-r));
            pthread_mutex_lock(&e->mu);
        }
        if (r <= 0) {
            if (e->stopping)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->work, &e->mu, &ts);
            continue;
        }
        e->busy++;
        pthread_mutex_unlock(&e->mu);
        run_one(e, &cl);
        qlab_run_config_clear(&cl.cfg);
        pthread_mutex_lock(&e->mu);
        e->busy--;
        pthread_cond_broadcast(&e->changed);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int qlab_engine_new(qlab_engine **out, qlab_store *store, const qlab_engine_opts *opts,
                    qlab_err *err)
{
    qlab_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->store = store;
    if (opts)
        e->opts = *opts;
    if (e->opts.hist_bins <= 0)
        e->opts.hist_bins = 64;
    e->nworkers = e->opts.workers > 0 ? e->opts.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (e->nworkers < 1)
        e->nworkers = 1;
    if (e->nworkers > 64)
        e->nworkers = 64;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->changed, NULL);
    e->threads = calloc((size_t)e->nworkers, sizeof(pthread_t));
    if (!e->threads) {
        free(e);
        return -ENOMEM;
    }
    for (int i = 0; i < e->nworkers; i++) {
        int r = pthread_create(&e->threads[i], NULL, worker, e);
        if (r != 0) {
            e->nworkers = i;
            qlab_engine_free(e);
            return qlab_err_set(err, -r, "cannot start worker threads");
        }
    }
    *out = e;
    return 0;
}

void qlab_engine_free(qlab_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_broadcast(&e->work);
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nworkers; i++)
        pthread_join(e->threads[i], NULL);
    for (int i = 0; i < MAX_CTX; i++)
        qlab_exp_ctx_free(e->slots[i].ctx);
    free(e->threads);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work);
    pthread_cond_destroy(&e->changed);
    free(e);
}

void qlab_engine_kick(qlab_engine *e)
{
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->work);
    pthread_mutex_unlock(&e->mu);
}

static int submit(qlab_engine *e, qlab_experiment *x, int64_t *experiment_id, qlab_err *err)
{
    qlab_run_config *runs = NULL;
    size_t n = 0;
    int r = qlab_experiment_expand(x, &runs, &n, err);
    if (r < 0)
        return r;
    char *abs_path = x->path ? realpath(x->path, NULL) : NULL;
    qlab_experiment_new ne = {
        .name = x->name,
        .yaml = x->yaml,
        .yaml_path = abs_path ? abs_path : x->path,
        .config_hash = x->config_hash,
        .model_path = x->model_path,
        .dataset = x->dataset ? x->dataset : x->test_images,
        .calib_samples = x->calib_samples,
        .calib_seed = x->calib_seed,
        .workers = x->workers,
        .kernel = qlab_cpu_level_name(),
    };
    r = qlab_store_create_experiment(e->store, &ne, runs, n, experiment_id, NULL, err);
    free(abs_path);
    qlab_run_configs_free(runs, n);
    if (r < 0)
        return r;
    pthread_mutex_lock(&e->mu);
    e->own[e->nown++ % 64] = *experiment_id;
    pthread_mutex_unlock(&e->mu);
    qlab_engine_kick(e);
    return 0;
}

int qlab_engine_submit_file(qlab_engine *e, const char *path, int64_t *experiment_id,
                            qlab_err *err)
{
    qlab_experiment *x = NULL;
    int r = qlab_experiment_load(&x, path, err);
    if (r < 0)
        return r;
    r = submit(e, x, experiment_id, err);
    qlab_experiment_free(x);
    return r;
}

int qlab_engine_submit_text(qlab_engine *e, const char *yaml, size_t len, const char *base_dir,
                            const char *name_for_errors, int64_t *experiment_id,
                            qlab_err *err)
{
    qlab_experiment *x = NULL;
    int r = qlab_experiment_load_buffer(&x, yaml, len, name_for_errors, base_dir, err);
    if (r < 0)
        return r;
    r = submit(e, x, experiment_id, err);
    qlab_experiment_free(x);
    return r;
}

int qlab_engine_cancel(qlab_engine *e, int64_t experiment_id, qlab_err *err)
{
    int r = qlab_store_cancel_experiment(e->store, experiment_id, err);
    if (r < 0)
        return r;
    maybe_finished(e, experiment_id);
    return r;
}

int qlab_engine_wait(qlab_engine *e, int64_t experiment_id)
{
    for (;;) {
        int active = 0;
        qlab_experiment_row *rows = NULL;
        size_t n = 0;
        if (experiment_id > 0) {
            qlab_experiment_row row = { 0 };
            if (qlab_store_get_experiment(e->store, experiment_id, &row, NULL) < 0)
                return -ENOENT;
            active = row.runs_pending + row.runs_running > 0;
            qlab_experiment_row_clear(&row);
        } else if (qlab_store_list_experiments(e->store, &rows, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++)
                active |= rows[i].runs_pending + rows[i].runs_running > 0;
            qlab_experiment_rows_free(rows, n);
        }
        pthread_mutex_lock(&e->mu);
        if (e->stopping) {
            pthread_mutex_unlock(&e->mu);
            return -ECANCELED;
        }
        if (!active && e->busy == 0) {
            pthread_mutex_unlock(&e->mu);
            return 0;
        }
        if (!active) {
            /* Runs finished in the store; their workers are emitting events. */
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->changed, &e->mu, &ts);
        pthread_mutex_unlock(&e->mu);
    }
}
