/* qlabd — the qlab daemon: owns the results database, runs experiments with a worker pool,
 * serves clients over shared memory (shm/), logs one line per event to stderr.
 *
 * Recovery: everything the daemon must remember is in the database. At start, runs left
 * 'running' by a previous daemon (killed, crashed, power cut) go back to 'pending' and the
 * workers pick them up; finished runs were committed one transaction each, so none is lost
 * or redone. One writer per database: qlabd holds an exclusive flock on DB.lock, each
 * `qlab run` a shared one (cmd-run.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db-lock.h"
#include "qlab-config.h"
#include "qlab-engine.h"
#include "qlab-int8.h"
#include "qlab-model.h"
#include "qlabd-private.h"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void qlabd_log(const char *fmt, ...)
{
    char ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "%s.%03ldZ qlabd[%d]: ", ts, now.tv_nsec / 1000000, (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
    va_end(ap);
}

static void on_event(void *ctx, const qlab_engine_event *ev)
{
    qlabd *d = ctx;
    char b[32];
    switch (ev->type) {
    case QLAB_EV_EXPERIMENT_STARTED:
        qlabd_log("experiment %lld '%s' started: FP32 %.2f%%, %lld bytes, %d runs",
                  (long long)ev->experiment_id, ev->label, ev->accuracy,
                  (long long)ev->total_bytes, ev->runs_total);
        break;
    case QLAB_EV_RUN_STARTED:
        break;   /* one line per run is enough: logged when it ends */
    case QLAB_EV_RUN_FINISHED:
        snprintf(b, sizeof(b), "%lld", (long long)ev->total_bytes);
        qlabd_log("experiment %lld run %lld (%s) done: %.2f%%, %s bytes, %.0f ms [%d/%d]",
                  (long long)ev->experiment_id, (long long)ev->run_id, ev->label, ev->accuracy,
                  b, ev->eval_ms, ev->runs_done, ev->runs_total);
        break;
    case QLAB_EV_RUN_FAILED:
        qlabd_log("experiment %lld run %lld (%s) failed: %s", (long long)ev->experiment_id,
                  (long long)ev->run_id, ev->label, ev->message);
        break;
    case QLAB_EV_EXPERIMENT_FINISHED:
        qlabd_log("experiment %lld '%s' finished: %s, %d/%d runs%s%s",
                  (long long)ev->experiment_id, ev->label,
                  qlab_status_name((qlab_status)ev->status), ev->runs_done, ev->runs_total,
                  ev->message[0] ? ": " : "", ev->message);
        break;
    case QLAB_EV_LOG:
        qlabd_log("%s", ev->message);
        break;
    }
    qlabd_ipc_event(d, ev);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qlabd [--db PATH] [--workers N] [--foreground|--daemon] [--log FILE]\n"
            "\n"
            "The qlab daemon: runs experiments submitted with `qlab submit`, writes every run\n"
            "to the SQLite database (default ./qlab.db) and serves clients through shared\n"
            "memory. Stops cleanly on SIGTERM or SIGINT; resumes unfinished experiments when\n"
            "started again.\n"
            "\n"
            "  --db PATH        results database (created if missing)\n"
            "  --workers N      runs evaluated at once (default: one per core)\n"
            "  --foreground     stay attached, log to stderr (default)\n"
            "  --daemon         detach once serving; log to --log (default DB.log)\n"
            "  --socket PATH    where clients connect (default $XDG_RUNTIME_DIR/qlab/qlabd.sock,\n"
            "                   or qlabd.sock beside the database)\n");
}

/* Detaches; the parent exits 0 only when the child reports it is serving. */
static int daemonize(int *ready_fd)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0) {
        close(p[1]);
        char c = 1;
        ssize_t k = read(p[0], &c, 1);
        _exit(k == 1 && c == 0 ? 0 : 1);
    }
    close(p[0]);
    setsid();
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);
    *ready_fd = p[1];
    return 0;
}

static void tell_ready(int fd, char status)
{
    if (fd >= 0) {
        ssize_t k = write(fd, &status, 1);
        (void)k;
        close(fd);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "workers", required_argument, NULL, 'w' },
        { "foreground", no_argument, NULL, 'f' },
        { "daemon", no_argument, NULL, 'D' },
        { "log", required_argument, NULL, 'l' },
        { "socket", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    /* Signals are taken by the main thread only (sigwait), from the very start; every
     * thread created later inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *db = "qlab.db", *logfile = NULL, *sock = NULL;
    int workers = 0, detach = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "qlabd: --workers takes a number from 1 to 64, not '%s'\n",
                        optarg);
                return 2;
            }
            workers = (int)v;
            break;
        }
        case 'f': detach = 0; break;
        case 'D': detach = 1; break;
        case 'l': logfile = optarg; break;
        case 's': sock = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("qlabd %s\n", QLAB_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qlabd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    /* Absolute paths: the daemon may chdir, and clients are told where the db is. */
    qlabd d = { 0 };
    char dbdir[PATH_MAX];
    {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s", db);
        char *dn = dirname(tmp);
        if (!realpath(dn, dbdir)) {
            fprintf(stderr, "qlabd: %s: folder does not exist\n", db);
            return 1;
        }
        snprintf(tmp, sizeof(tmp), "%s", db);
        int n = snprintf(d.db_path, sizeof(d.db_path), "%s/%s", dbdir, basename(tmp));
        if (n < 0 || (size_t)n >= sizeof(d.db_path)) {
            fprintf(stderr, "qlabd: %s: path too long\n", db);
            return 1;
        }
    }

    char lockpath[PATH_MAX + 8];
    snprintf(lockpath, sizeof(lockpath), "%s.lock", d.db_path);
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        if (lockfd >= 0)
            qlab_db_lock_pid(lockfd, pid, sizeof(pid));
        /* a shared holder is `qlab run` (cmd-run.c), which writes no pid */
        if (lockfd >= 0 && flock(lockfd, LOCK_SH | LOCK_NB) == 0)
            fprintf(stderr, "qlabd: `qlab run` is writing %s: start qlabd when it has "
                    "finished\n", d.db_path);
        else
            fprintf(stderr, "qlabd: %s is already served by another qlabd%s%s%s\n",
                    d.db_path, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        return 1;
    }

    int ready_fd = -1;
    if (detach) {
        char deflog[PATH_MAX + 8];
        snprintf(deflog, sizeof(deflog), "%s.log", d.db_path);
        const char *lf = logfile ? logfile : deflog;
        int lfd = open(lf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (lfd < 0) {
            fprintf(stderr, "qlabd: %s: %s\n", lf, strerror(errno));
            return 1;
        }
        if (daemonize(&ready_fd) < 0) {
            fprintf(stderr, "qlabd: cannot detach: %s\n", strerror(errno));
            return 1;
        }
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        close(nul);
        close(lfd);
    } else if (logfile) {
        int lfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (lfd < 0) {
            fprintf(stderr, "qlabd: %s: %s\n", logfile, strerror(errno));
            return 1;
        }
        dup2(lfd, 2);
        close(lfd);
    }
    {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(lockfd, 0) == 0 && pwrite(lockfd, pid, (size_t)n, 0) < 0)
            qlabd_log("cannot write the pid to %s", lockpath);
    }


    qlab_err err = { 0 };
    int r = qlab_store_open(&d.store, d.db_path, 0, &err);
    if (r < 0) {
        qlabd_log("cannot open %s: %s", d.db_path, err.msg[0] ? err.msg : strerror(-r));
        tell_ready(ready_fd, 1);
        return 1;
    }
    r = qlab_store_requeue_running(d.store, &err);
    if (r < 0) {
        qlabd_log("cannot requeue interrupted runs: %s", err.msg);
        tell_ready(ready_fd, 1);
        return 1;
    }
    if (r > 0)
        qlabd_log("resuming: %d interrupted run%s back in the queue", r, r == 1 ? "" : "s");

    qlab_engine_opts eo = { .workers = workers, .on_event = on_event, .event_ctx = &d };
    r = qlab_engine_new(&d.engine, d.store, &eo, &err);
    if (r < 0) {
        qlabd_log("cannot start the engine: %s", err.msg[0] ? err.msg : strerror(-r));
        qlab_store_close(d.store);
        tell_ready(ready_fd, 1);
        return 1;
    }
    r = qlabd_ipc_start(&d, sock, dbdir, &err);
    if (r < 0) {
        qlabd_log("cannot serve clients: %s", err.msg[0] ? err.msg : strerror(-r));
        qlab_engine_free(d.engine);
        qlab_store_close(d.store);
        tell_ready(ready_fd, 1);
        return 1;
    }
    qlabd_log("qlabd %s serving %s with %d worker%s, kernels %s (int8 %s, FP32 conv %s), "
              "socket %s", QLAB_VERSION, d.db_path,
              workers > 0 ? workers : (int)sysconf(_SC_NPROCESSORS_ONLN),
              workers == 1 ? "" : "s", qlab_cpu_level_name(),
              qlab_int8_isa_name(qlab_int8_isa_current()), qlab_model_conv_kernel(),
              d.socket_path);
    tell_ready(ready_fd, 0);

    int sig = 0;
    sigwait(&set, &sig);
    qlabd_log("%s: stopping after the runs in progress", strsignal(sig));
    qlabd_ipc_stop(&d);
    qlab_engine_free(d.engine);
    qlab_store_close(d.store);
    qlabd_log("stopped");
    close(lockfd);   /* the lock file stays: unlinking it would race a starting daemon */
    return 0;
}
