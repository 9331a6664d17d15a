/* cmd-ipc.c — commands that talk to a running qlabd through the shared-memory rings:
 * submit, watch, cancel, ping. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "progress.h"
#include "qlab-cli.h"
#include "qlab-shm.h"

/* Connects to the daemon serving this user's (or --db's folder's) socket. Prints the
 * one-line error itself. */
int qlab_cli_connect(const char *db, qlab_shm_client **out)
{
    char dbpath[4096], dir[4096], sock[4096];
    if (qlab_cli_db_path(db, dbpath, sizeof(dbpath)) < 0)
        return -EINVAL;
    snprintf(dir, sizeof(dir), "%s", dbpath);
    char *d = dirname(dir);
    int r = qlab_shm_socket_path(d, false, sock, sizeof(sock));
    if (r < 0) {
        fprintf(stderr, "qlab: cannot tell where qlabd listens: %s\n", strerror(-r));
        return r;
    }
    r = qlab_shm_connect(sock, NULL, out);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        fprintf(stderr, "qlab: no qlabd is running (no daemon at %s); start one with "
                        "'qlabd --db %s --daemon', or use 'qlab run FILE.yaml'\n",
                sock, dbpath);
        return r;
    }
    if (r == -EACCES) {
        fprintf(stderr, "qlab: qlabd at %s refused this user\n", sock);
        return r;
    }
    if (r < 0) {
        fprintf(stderr, "qlab: cannot connect to qlabd at %s: %s\n", sock, strerror(-r));
        return r;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x == 0 || s[0] == '-') {
        fprintf(stderr, "qlab: '%s' is not an experiment id\n", s);
        return -1;
    }
    *v = x;
    return 0;
}

static const char *exp_status_name(uint32_t s)
{
    switch (s) {
    case QLAB_EXP_PENDING: return "pending";
    case QLAB_EXP_RUNNING: return "running";
    case QLAB_EXP_DONE: return "done";
    case QLAB_EXP_FAILED: return "failed";
    case QLAB_EXP_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

/* Follows an experiment's events with a progress display until it finishes. Returns the
 * exit status: 0 when it ended done, 1 otherwise. */
static int follow(qlab_shm_client *c, uint64_t id, const char *db, int frontier)
{
    qlab_err err = { 0 };
    qlab_exp_info info;
    int r = qlab_shm_status(c, id, &info, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: experiment %llu: %s\n", (unsigned long long)id, err.msg);
        return 1;
    }
    qlab_progress p;
    qlab_progress_init(&p, stderr, (int64_t)id);
    qlab_progress_set(&p, (int)(info.runs_done + info.runs_failed), (int)info.runs_total);
    uint32_t status = info.status;
    while (status == QLAB_EXP_PENDING || status == QLAB_EXP_RUNNING) {
        qlab_event ev;
        r = qlab_shm_client_next_event(c, &ev, 1000);
        if (r == -ETIMEDOUT) {
            /* Quiet for a second (start-up, a slow run): ask, in case an event was lost. */
            if (qlab_shm_status(c, id, &info, &err) < 0)
                break;
            status = info.status;
            qlab_progress_set(&p, (int)(info.runs_done + info.runs_failed), (int)info.runs_total);
            continue;
        }
        if (r < 0) {
            if (p.tty)
                fputc('\n', stderr);
            fprintf(stderr, "qlab: lost qlabd while watching experiment %llu (%s); it resumes "
                            "when qlabd starts again\n",
                    (unsigned long long)id, r == -ECONNRESET ? "daemon stopped" : strerror(-r));
            return 1;
        }
        if (ev.experiment_id != id)
            continue;
        if (ev.dropped) {
            /* Counters come from the daemon; nothing to reconstruct. */
        }
        switch (ev.kind) {
        case QLAB_EVENT_RUN_FINISHED:
            qlab_progress_run(&p, (int)ev.runs_done, (int)ev.runs_total, (int)ev.bits,
                              ev.status < 0 ? -1.0 : ev.accuracy, (int64_t)ev.total_bytes);
            break;
        case QLAB_EVENT_EXPERIMENT_FINISHED:
            if (qlab_shm_status(c, id, &info, &err) == 0)
                status = info.status;
            else
                status = QLAB_EXP_DONE;
            qlab_progress_set(&p, (int)ev.runs_done, (int)ev.runs_total);
            break;
        default:
            break;
        }
    }
    qlab_progress_end(&p, exp_status_name(status));
    if (status == QLAB_EXP_FAILED) {
        fprintf(stderr, "qlab: experiment %llu failed (qlab status %llu --db ... tells why)\n",
                (unsigned long long)id, (unsigned long long)id);
        return 1;
    }
    if (frontier)
        return qlab_cli_print_frontier_db(db, (int64_t)id, "table");
    return status == QLAB_EXP_DONE ? 0 : 1;
}

int qlab_cmd_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        { "wait", no_argument, NULL, 'w' },
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *db = NULL;
    int wait = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "w", opts, NULL)) != -1) {
        switch (c) {
        case 'w': wait = 1; break;
        case 'd': db = optarg; break;
        case 'h':
            printf("usage: qlab submit FILE.yaml [--wait] [--db PATH]\n\n"
                   "Hands the experiment to the running qlabd and prints its id. With --wait,\n"
                   "shows live progress (runs done / total, rate, ETA, best accuracy at each\n"
                   "bit-width) and ends with the frontier.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "qlab: submit: which experiment file? (qlab submit FILE.yaml)\n");
        return 2;
    }
    char path[PATH_MAX];
    if (!realpath(argv[optind], path)) {
        fprintf(stderr, "qlab: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    qlab_shm_client *cl;
    if (qlab_cli_connect(db, &cl) < 0)
        return 1;
    qlab_err err = { 0 };
    /* Subscribe before submitting, so that no event of the new experiment is missed. */
    if (wait && qlab_shm_subscribe(cl, 0, true, &err) < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg);
        qlab_shm_client_free(cl);
        return 1;
    }
    uint64_t id = 0;
    int r = qlab_shm_submit_path(cl, path, &id, &err);
    if (r < 0) {
        /* The daemon's message already names file:line:col. */
        fprintf(stderr, "qlab: %s\n", err.msg);
        qlab_shm_client_free(cl);
        return 1;
    }
    printf("%llu\n", (unsigned long long)id);
    fflush(stdout);
    int rc = 0;
    if (wait)
        rc = follow(cl, id, db, 1);
    qlab_shm_client_free(cl);
    return rc;
}

int qlab_cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd')
            db = optarg;
        else if (c == 'h') {
            printf("usage: qlab watch [ID] [--db PATH]\n\n"
                   "Shows the live progress of an experiment (default: the newest one still\n"
                   "running) until it finishes.\n");
            return 0;
        } else
            return 2;
    }
    uint64_t id = 0;
    if (optind < argc && parse_u64(argv[optind], &id) < 0)
        return 2;
    qlab_shm_client *cl;
    if (qlab_cli_connect(db, &cl) < 0)
        return 1;
    qlab_err err = { 0 };
    if (qlab_shm_subscribe(cl, id, true, &err) < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg);
        qlab_shm_client_free(cl);
        return 1;
    }
    if (id == 0) {
        qlab_exp_info infos[256];
        int n = qlab_shm_list(cl, infos, 256, &err);
        if (n < 0) {
            fprintf(stderr, "qlab: %s\n", err.msg);
            qlab_shm_client_free(cl);
            return 1;
        }
        for (int i = 0; i < n && i < 256; i++)
            if ((infos[i].status == QLAB_EXP_RUNNING || infos[i].status == QLAB_EXP_PENDING) &&
                infos[i].id > id)
                id = infos[i].id;
        if (id == 0) {
            fprintf(stderr, "qlab: no experiment is running (qlab list shows them all)\n");
            qlab_shm_client_free(cl);
            return 1;
        }
    }
    fprintf(stderr, "watching experiment %llu\n", (unsigned long long)id);
    int rc = follow(cl, id, db, 0);
    qlab_shm_client_free(cl);
    return rc;
}

int qlab_cmd_cancel(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: qlab cancel ID\n\nCancels the experiment's pending runs; runs already "
               "running finish and are kept.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "qlab: cancel: which experiment? (qlab cancel ID)\n");
        return 2;
    }
    uint64_t id;
    if (parse_u64(argv[1], &id) < 0)
        return 2;
    qlab_shm_client *cl;
    if (qlab_cli_connect(NULL, &cl) < 0)
        return 1;
    qlab_err err = { 0 };
    int r = qlab_shm_cancel(cl, id, &err);
    qlab_shm_client_free(cl);
    if (r < 0) {
        fprintf(stderr, "qlab: cancel %llu: %s\n", (unsigned long long)id, err.msg);
        return 1;
    }
    printf("experiment %llu cancelled\n", (unsigned long long)id);
    return 0;
}

/* ping: is a daemon there, and how fast do the rings answer. */
int qlab_cmd_ping(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    qlab_shm_client *cl;
    if (qlab_cli_connect(NULL, &cl) < 0)
        return 1;
    qlab_msg *m = malloc(2 * sizeof(*m));
    if (!m) {
        qlab_shm_client_free(cl);
        return 1;
    }
    double best = INFINITY;
    int rc = 0;
    for (int i = 0; i < 10; i++) {
        qlab_msg_init(m, QLAB_MSG_PING);
        m->u.ping.len = 8;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = qlab_shm_client_call(cl, m, m + 1, 2000);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (r < 0) {
            fprintf(stderr, "qlab: ping: %s\n", strerror(-r));
            rc = 1;
            break;
        }
        double us = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
        if (us < best)
            best = us;
    }
    if (rc == 0)
        printf("qlabd answers: best round trip %.1f us over 10 pings\n", best);
    free(m);
    qlab_shm_client_free(cl);
    return rc;
}
