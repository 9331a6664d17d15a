/* cmd-run.c — `qlab run FILE.yaml`: the daemon's engine in this process, for scripts and
 * CI. Writes to the same kind of database, shows progress, prints the frontier at the end.
 *
 * Ctrl-C (SIGINT), SIGTERM or SIGHUP cancel the experiment instead of killing the process:
 * the runs in flight finish, the pending ones are marked cancelled, the frontier of what
 * finished is printed, and the exit status is 128 + the signal. Without this the database
 * would keep the experiment 'running' until a qlabd started on it. A second signal kills
 * at once (what finished is already committed). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "db-lock.h"
#include "progress.h"
#include "qlab-cli.h"
#include "qlab-engine.h"
#include "qlab-experiment.h"

struct run_state {
    pthread_mutex_t mu;
    qlab_progress prog;
    int quiet;
    int64_t id;
};

static void on_event(void *ctx, const qlab_engine_event *ev)
{
    struct run_state *st = ctx;
    pthread_mutex_lock(&st->mu);
    switch (ev->type) {
    case QLAB_EV_EXPERIMENT_STARTED:
        qlab_progress_fp32(&st->prog, ev->accuracy);
        if (!st->quiet) {
            char b[32];
            qlab_format_bytes(ev->total_bytes, b, sizeof(b));
            fprintf(stderr, "%sFP32 baseline: %.2f%% top-1, %s; %d runs\n",
                    st->prog.tty ? "\r\033[K" : "", ev->accuracy, b, ev->runs_total);
        }
        break;
    case QLAB_EV_RUN_FINISHED:
        if (!st->quiet)
            qlab_progress_run(&st->prog, ev->runs_done, ev->runs_total, ev->bits, ev->accuracy,
                              ev->total_bytes);
        break;
    case QLAB_EV_RUN_FAILED:
        if (!st->quiet) {
            fprintf(stderr, "%srun %lld (%s) failed: %s\n", st->prog.tty ? "\r\033[K" : "",
                    (long long)ev->run_id, ev->label, ev->message);
            qlab_progress_run(&st->prog, ev->runs_done, ev->runs_total, ev->bits, -1, 0);
        }
        break;
    case QLAB_EV_LOG:
        fprintf(stderr, "%sqlab: %s\n", st->prog.tty ? "\r\033[K" : "", ev->message);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&st->mu);
}

/* The signal watcher: the handler (in whatever thread the kernel picks, OpenBLAS's own
 * included) only writes the signal number to a pipe; a thread reads it and cancels. It
 * lives from after the database is open until the experiment has ended, and every exit
 * of qlab_cmd_run in between stops it (watch_stop restores the previous handlers). */
struct watch {
    pthread_t thread;
    int running;                /* thread started */
    pthread_mutex_t mu;
    qlab_engine *engine;        /* under mu */
    int64_t id;                 /* under mu: 0 until submitted */
    int sig;                    /* under mu: the first signal */
    atomic_int done;
};

static struct watch g_watch = { .mu = PTHREAD_MUTEX_INITIALIZER };
static int g_sigpipe[2] = { -1, -1 };
static const int g_sigs[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction g_old[3];
static int g_installed[3];

static const char *sig_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t k = write(g_sigpipe[1], &b, 1);
    (void)k;
    errno = saved;
}

static void cancel_locked(struct watch *w)
{
    qlab_err err = { 0 };
    fprintf(stderr, "\r\033[Kqlab: %s: cancelling experiment %lld; finished runs are kept "
            "(again to quit at once)\n", sig_name(w->sig), (long long)w->id);
    if (qlab_engine_cancel(w->engine, w->id, &err) < 0 && err.msg[0])
        fprintf(stderr, "qlab: %s\n", err.msg);
}

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    while (!atomic_load(&w->done)) {
        struct pollfd p = { .fd = g_sigpipe[0], .events = POLLIN };
        unsigned char b;
        if (poll(&p, 1, 100) <= 0 || read(g_sigpipe[0], &b, 1) != 1)
            continue;
        int sig = b;
        pthread_mutex_lock(&w->mu);
        if (w->sig) {
            pthread_mutex_unlock(&w->mu);
            signal(sig, SIG_DFL);
            raise(sig);
            _exit(128 + sig);
        }
        w->sig = sig;
        if (w->id > 0)
            cancel_locked(w);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

static void watch_stop(void)
{
    for (size_t i = 0; i < sizeof(g_sigs) / sizeof(g_sigs[0]); i++)
        if (g_installed[i]) {
            sigaction(g_sigs[i], &g_old[i], NULL);
            g_installed[i] = 0;
        }
    if (g_watch.running) {
        atomic_store(&g_watch.done, 1);
        pthread_join(g_watch.thread, NULL);
        g_watch.running = 0;
    }
    for (int i = 0; i < 2; i++)
        if (g_sigpipe[i] >= 0) {
            close(g_sigpipe[i]);
            g_sigpipe[i] = -1;
        }
}

/* Takes over the signals this process does not ignore (a shell starts background jobs
 * with SIGINT ignored: that stays so). Without a pipe or a thread, the defaults stay. */
static void watch_start(void)
{
    if (pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return;
    if (pthread_create(&g_watch.thread, NULL, watch_main, &g_watch) != 0) {
        watch_stop();
        return;
    }
    g_watch.running = 1;
    for (size_t i = 0; i < sizeof(g_sigs) / sizeof(g_sigs[0]); i++) {
        struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        if (sigaction(g_sigs[i], NULL, &g_old[i]) == 0 && g_old[i].sa_handler != SIG_IGN)
            g_installed[i] = sigaction(g_sigs[i], &sa, NULL) == 0;
    }
}

/* One writer per database (daemon/store/schema.sql). qlabd holds DB.lock exclusively for
 * its life; each `qlab run` holds it shared, so several can share a database but qlabd
 * cannot start under them (it would requeue their live runs) nor they under it. A `qlab
 * run` that gets the lock exclusively, however briefly, is the only writer alive: runs
 * left 'running' belong to a writer that died (kill -9, a crash) and go back to pending.
 * Returns the lock's descriptor (kept open: closing it releases the lock) or -1 after
 * saying why; *alone says whether it was exclusive at first. */
static int take_lock(const char *db, int *alone)
{
    char lockpath[4200];
    snprintf(lockpath, sizeof(lockpath), "%s.lock", db);
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "qlab: %s: %s\n", lockpath, strerror(errno));
        return -1;
    }
    *alone = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (*alone || flock(fd, LOCK_SH | LOCK_NB) == 0)
        return fd;
    char pid[32];
    qlab_db_lock_pid(fd, pid, sizeof(pid));
    fprintf(stderr, "qlab: %s is served by qlabd%s%s%s: submit to it with "
            "`qlab submit FILE --wait`, or give `qlab run` another --db\n", db,
            pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    close(fd);
    return -1;
}

int qlab_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "workers", required_argument, NULL, 'w' },
        { "quiet", no_argument, NULL, 'q' },
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *db = NULL, *format = "table";
    int workers = 0, quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'w': workers = atoi(optarg); break;
        case 'q': quiet = 1; break;
        case 'f': format = optarg; break;
        case 'h':
            printf("usage: qlab run FILE.yaml [--db PATH] [--workers N] [--quiet]\n"
                   "                [--format table|csv|json]\n\n"
                   "Runs the experiment in this process (no daemon) into the database\n"
                   "(default ./qlab.db), showing progress, then prints its frontier.\n"
                   "Ctrl-C (or SIGTERM, SIGHUP) cancels the experiment: runs in flight\n"
                   "finish, finished runs are kept, the exit status is 128 + the signal;\n"
                   "a second Ctrl-C quits at once.\n"
                   "A database has one writer: several `qlab run`s may share one, a qlabd\n"
                   "may not (use `qlab submit` there). Runs left running by a writer that\n"
                   "died are put back to pending when a `qlab run` finds itself alone.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "qlab: run: which experiment file? (qlab run FILE.yaml)\n");
        return 2;
    }
    const char *file = argv[optind];
    char path[4096];
    if (qlab_cli_db_path(db, path, sizeof(path)) < 0)
        return 1;

    /* Check the experiment before touching the database: a bad file leaves no trace. */
    qlab_err err = { 0 };
    qlab_experiment *x = NULL;
    int r = qlab_experiment_load(&x, file, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg[0] ? err.msg : strerror(-r));
        return 1;
    }
    if (workers <= 0)
        workers = x->workers;   /* the file's `workers:`, else one per core */
    qlab_experiment_free(x);

    int alone = 0, lockfd = take_lock(path, &alone);
    if (lockfd < 0)
        return 1;
    qlab_store *s = NULL;
    r = qlab_store_open(&s, path, 0, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s: %s\n", path, err.msg[0] ? err.msg : strerror(-r));
        close(lockfd);
        return 1;
    }
    if (alone) {
        r = qlab_store_requeue_running(s, &err);
        if (r > 0)
            fprintf(stderr, "qlab: %d run%s left running by a qlab run or qlabd that died %s "
                    "pending again; `qlabd --db %s` finishes their experiments\n", r,
                    r == 1 ? "" : "s", r == 1 ? "is" : "are", path);
        else if (r < 0)
            fprintf(stderr, "qlab: %s\n", err.msg);
        /* shared from now on, so other `qlab run`s may join (not atomic: a qlabd that
         * takes the lock in between wins, and this run stops) */
        if (flock(lockfd, LOCK_SH | LOCK_NB) < 0) {
            fprintf(stderr, "qlab: a qlabd started on %s meanwhile: submit to it with "
                    "`qlab submit FILE --wait`\n", path);
            qlab_store_close(s);
            close(lockfd);
            return 1;
        }
    }
    struct watch *w = &g_watch;
    watch_start();

    struct run_state st = { .quiet = quiet };
    pthread_mutex_init(&st.mu, NULL);
    qlab_progress_init(&st.prog, stderr, 0);
    qlab_engine_opts eo = { .workers = workers, .on_event = on_event, .event_ctx = &st,
                            .only_own = 1 };
    qlab_engine *e = NULL;
    r = qlab_engine_new(&e, s, &eo, &err);
    if (r < 0) {
        watch_stop();
        fprintf(stderr, "qlab: %s\n", err.msg[0] ? err.msg : strerror(-r));
        qlab_store_close(s);
        close(lockfd);
        return 1;
    }
    int64_t id = 0;
    r = qlab_engine_submit_file(e, file, &id, &err);
    if (r < 0) {
        qlab_engine_free(e);
        watch_stop();
        fprintf(stderr, "qlab: %s\n", err.msg[0] ? err.msg : strerror(-r));
        qlab_store_close(s);
        close(lockfd);
        return 1;
    }
    pthread_mutex_lock(&st.mu);
    st.prog.experiment_id = id;
    pthread_mutex_unlock(&st.mu);
    if (!quiet)
        fprintf(stderr, "experiment %lld submitted from %s into %s\n", (long long)id, file, path);
    pthread_mutex_lock(&w->mu);
    w->engine = e;
    w->id = id;
    if (w->sig)                 /* a signal came during the submission */
        cancel_locked(w);
    pthread_mutex_unlock(&w->mu);
    qlab_engine_wait(e, id);
    pthread_mutex_lock(&w->mu);
    w->engine = NULL;           /* the watcher must not cancel through a freed engine */
    w->id = 0;
    int sig = w->sig;
    pthread_mutex_unlock(&w->mu);
    /* The experiment has ended: from here a signal has its default effect again. */
    watch_stop();
    qlab_engine_free(e);

    qlab_experiment_row row = { 0 };
    int rc = 0;
    if (qlab_store_get_experiment(s, id, &row, &err) == 0) {
        if (!quiet)
            qlab_progress_end(&st.prog, qlab_status_name(row.status));
        if (row.status == QLAB_STATUS_FAILED) {
            fprintf(stderr, "qlab: experiment %lld failed: %s\n", (long long)id,
                    row.error ? row.error : "unknown error");
            rc = 1;
        }
        qlab_experiment_row_clear(&row);
    }
    if (rc == 0)
        rc = qlab_print_frontier(s, id, format, stdout);
    qlab_store_close(s);
    close(lockfd);
    pthread_mutex_destroy(&st.mu);
    return sig ? 128 + sig : rc;
}
