/* test-daemon-cli.c — qlabd and the qlab client end to end, through the shared-memory
 * rings: submit --wait with live progress and the frontier at the end, list, status,
 * cancel, the one-line errors (no daemon; daemon gone; bad YAML), and a client killed
 * with SIGKILL mid-watch: the daemon keeps serving and its descriptor count (memfds,
 * sockets, eventfds) returns to what it was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "qlab-config.h"

static const char *qlabd_path, *qlab_path;
static char tmpdir[256], dbpath[512], sockpath[512], logpath[512];
static pid_t daemon_pid;

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Runs a shell command line, captures stdout+stderr into out; returns the exit status. */
static int sh(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t len, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void wait_log(const char *needle)
{
    char line[2048];
    for (int t = 0; t < 500; t++) {
        FILE *f = fopen(logpath, "r");
        int found = 0;
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, needle))
                found = 1;
        if (f)
            fclose(f);
        if (found)
            return;
        sleep_ms(20);
    }
    fail_msg("qlabd log never said '%s'", needle);
}

static void start_daemon(void)
{
    daemon_pid = fork();
    assert_true(daemon_pid >= 0);
    if (daemon_pid == 0) {
        execl(qlabd_path, qlabd_path, "--db", dbpath, "--workers", "2", "--foreground",
              "--log", logpath, "--socket", sockpath, (char *)NULL);
        _exit(127);
    }
    /* this daemon's own start line: the log also holds earlier daemons' */
    char needle[64];
    snprintf(needle, sizeof(needle), "qlabd[%d]: qlabd ", (int)daemon_pid);
    wait_log(needle);
}

static void stop_daemon(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        int st;
        waitpid(daemon_pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        daemon_pid = 0;
    }
}

static void write_yaml(const char *name, const char *sweep)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    const char *src = getenv("QLAB_SOURCE_ROOT");
    fprintf(f, "name: %s\nmodel:\n  path: %s/data/fmnist-mlp.safetensors\nsweep:\n%s", name,
            src ? src : QLAB_SOURCE_ROOT, sweep);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/qlab-cli-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/qlab.db", tmpdir);
    snprintf(sockpath, sizeof(sockpath), "%s/qlabd.sock", tmpdir);
    snprintf(logpath, sizeof(logpath), "%s/qlabd.log", tmpdir);
    setenv("QLAB_SOCKET", sockpath, 1);
    setenv("QLAB_DB", dbpath, 1);
    write_yaml("small.yaml", "  bits: [4, 8]\n  scheme: [symmetric, asymmetric]\n"
                             "  granularity: [channel]\n  calibration: [minmax]\n");
    write_yaml("long.yaml", "  bits: [2, 3, 4, 5, 6, 7, 8]\n  scheme: [symmetric, asymmetric]\n"
                            "  granularity: [tensor, channel, \"group:32\"]\n"
                            "  calibration: [minmax, mse, entropy]\n");
    write_yaml("bad.yaml", "  bits: [4, 33]\n  scheme: [symmetric]\n"
                           "  granularity: [channel]\n  calibration: [minmax]\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, NULL, 0);
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_no_daemon(void **state)
{
    (void)state;
    char out[4096];
    int rc = sh(out, sizeof(out), "%s submit %s/small.yaml 2>&1", qlab_path, tmpdir);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "qlab: no qlabd is running"));
    assert_non_null(strstr(out, "qlabd --db"));
    /* One line. */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_submit_wait_and_commands(void **state)
{
    (void)state;
    start_daemon();
    char out[16384];
    int rc = sh(out, sizeof(out), "%s ping 2>&1", qlab_path);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "qlabd answers"));

    rc = sh(out, sizeof(out), "%s submit %s/small.yaml --wait 2>&1", qlab_path, tmpdir);
    if (rc != 0)
        fail_msg("submit --wait: %s", out);
    /* The id, the progress, and the frontier at the end. */
    assert_true(out[0] == '1' && out[1] == '\n');
    assert_non_null(strstr(out, "4/4"));
    assert_non_null(strstr(out, "experiment 1 done"));
    assert_non_null(strstr(out, "frontier of experiment 1 (small.yaml)"));

    rc = sh(out, sizeof(out), "%s list 2>&1", qlab_path);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "small.yaml"));
    assert_non_null(strstr(out, "done"));
    rc = sh(out, sizeof(out), "%s status 1 2>&1", qlab_path);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "4 done"));

    /* A bad experiment: one line naming file:line:col, exit 1, nothing stored. */
    rc = sh(out, sizeof(out), "%s submit %s/bad.yaml 2>&1", qlab_path, tmpdir);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "bad.yaml:5:"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    rc = sh(out, sizeof(out), "%s status 2 2>&1", qlab_path);
    assert_int_not_equal(rc, 0);

    /* Cancel a long experiment: pending runs go, status says cancelled. */
    rc = sh(out, sizeof(out), "%s submit %s/long.yaml 2>&1", qlab_path, tmpdir);
    assert_int_equal(rc, 0);
    int64_t id = atoll(out);
    assert_true(id == 2);
    sleep_ms(300);
    rc = sh(out, sizeof(out), "%s cancel %lld 2>&1", qlab_path, (long long)id);
    if (rc != 0)
        fail_msg("cancel: %s", out);
    sleep_ms(1500);
    rc = sh(out, sizeof(out), "%s status %lld 2>&1", qlab_path, (long long)id);
    assert_non_null(strstr(out, "cancelled"));

    /* qlab quant through the daemon's shared memory equals the in-process result: the
     * same JSON (parameters, metrics, histogram) and the same dequantized bytes. */
    const char *src = getenv("QLAB_SOURCE_ROOT");
    char a[8192], b[8192];
    rc = sh(a, sizeof(a), "%s quant %s/tests/core/fixtures/demo.npy --bits 3 --scheme "
                          "asymmetric --granularity group:32 --calibration mse --json "
                          "--out %s/d.npy 2>&1", qlab_path, src ? src : QLAB_SOURCE_ROOT, tmpdir);
    assert_int_equal(rc, 0);
    rc = sh(b, sizeof(b), "%s quant %s/tests/core/fixtures/demo.npy --bits 3 --scheme "
                          "asymmetric --granularity group:32 --calibration mse --json "
                          "--out %s/l.npy --local 2>&1", qlab_path, src ? src : QLAB_SOURCE_ROOT,
            tmpdir);
    assert_int_equal(rc, 0);
    assert_string_equal(a, b);
    rc = sh(out, sizeof(out), "cmp %s/d.npy %s/l.npy 2>&1", tmpdir, tmpdir);
    assert_int_equal(rc, 0);
    stop_daemon();
}

static void test_client_sigkill_reclaimed(void **state)
{
    (void)state;
    start_daemon();
    sleep_ms(300);
    int base = count_fds(daemon_pid);
    assert_true(base > 0);
    pid_t c = fork();
    if (c == 0) {
        int nul = open("/dev/null", 1);
        dup2(nul, 1);
        dup2(nul, 2);
        char y[600];
        snprintf(y, sizeof(y), "%s/long.yaml", tmpdir);
        execl(qlab_path, qlab_path, "submit", y, "--wait", (char *)NULL);
        _exit(127);
    }
    /* Mid-watch: the client holds rings, a data area and an eventfd in the daemon. */
    sleep_ms(1500);
    int during = count_fds(daemon_pid);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    int after = -1;
    for (int t = 0; t < 100; t++) {
        after = count_fds(daemon_pid);
        if (after == base)
            break;
        sleep_ms(50);
    }
    printf("# qlabd fds: %d before, %d with the client, %d after its SIGKILL\n", base, during,
           after);
    assert_true(during > base);
    assert_int_equal(after, base);
    /* Still serving. */
    char out[4096];
    assert_int_equal(sh(out, sizeof(out), "%s ping 2>&1", qlab_path), 0);

    /* The daemon dies under a watching client: one line, non-zero. */
    pid_t w = fork();
    if (w == 0) {
        char o[600];
        snprintf(o, sizeof(o), "%s/watch.out", tmpdir);
        FILE *f = freopen(o, "w", stderr);
        (void)f;
        execl(qlab_path, qlab_path, "watch", (char *)NULL);
        _exit(127);
    }
    sleep_ms(800);
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, NULL, 0);
    daemon_pid = 0;
    int st;
    waitpid(w, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    char o[600], text[4096];
    snprintf(o, sizeof(o), "cat %s/watch.out", tmpdir);
    sh(text, sizeof(text), "%s", o);
    assert_non_null(strstr(text, "qlab: lost qlabd"));
}

static int db_count(const char *db, const char *status)
{
    char out[256];
    if (sh(out, sizeof(out), "sqlite3 '%s' \"SELECT count(*) FROM runs WHERE status = '%s'\" "
           "2>/dev/null", db, status) != 0)
        return -1;
    return atoi(out);
}

/* Ctrl-C on `qlab run` (no daemon): the experiment is cancelled, not left 'running'; the
 * runs that finished stay, nothing is pending or running, the exit status is 130. */
static void test_run_interrupted(void **state)
{
    (void)state;
    char db[600], errf[600], y[600];
    snprintf(db, sizeof(db), "%s/run.db", tmpdir);
    snprintf(errf, sizeof(errf), "%s/run.err", tmpdir);
    snprintf(y, sizeof(y), "%s/long.yaml", tmpdir);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        signal(SIGINT, SIG_DFL);
        int nul = open("/dev/null", 1), e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(nul, 1);
        dup2(e, 2);
        execl(qlab_path, qlab_path, "run", y, "--db", db, "--workers", "2", (char *)NULL);
        _exit(127);
    }
    char out[4096];
    int done = 0;
    for (int t = 0; t < 600 && done < 3; t++) {
        sleep_ms(50);
        done = db_count(db, "done");
    }
    assert_true(done >= 3);
    kill(c, SIGINT);
    int st;
    waitpid(c, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 130);
    assert_int_equal(sh(out, sizeof(out), "sqlite3 '%s' \"SELECT status FROM experiments; "
                        "SELECT count(*) FROM runs WHERE status IN ('pending', 'running'); "
                        "SELECT count(*) >= 3 FROM runs WHERE status = 'done'; "
                        "SELECT count(*) > 0 FROM runs WHERE status = 'cancelled'; "
                        "PRAGMA integrity_check\"", db), 0);
    assert_string_equal(out, "cancelled\n0\n1\n1\nok\n");
    sh(out, sizeof(out), "cat '%s'", errf);
    assert_non_null(strstr(out, "qlab: SIGINT: cancelling experiment 1; finished runs are kept"));
}

/* One writer per database: qlabd refuses to start under a `qlab run`, `qlab run` refuses
 * under a qlabd (naming the way out), and runs a SIGKILLed `qlab run` left 'running' are
 * pending again at the next `qlab run`, which says so. */
static void test_run_single_writer(void **state)
{
    (void)state;
    char db[600], y[600], out[4096];
    snprintf(db, sizeof(db), "%s/orphan.db", tmpdir);
    snprintf(y, sizeof(y), "%s/long.yaml", tmpdir);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(qlab_path, qlab_path, "run", y, "--db", db, "--workers", "2", (char *)NULL);
        _exit(127);
    }
    int done = 0;
    for (int t = 0; t < 600 && done < 3; t++) {
        sleep_ms(50);
        done = db_count(db, "done");
    }
    assert_true(done >= 3);
    int rc = sh(out, sizeof(out), "%s --db '%s' --foreground --socket '%s/orphan.sock' 2>&1",
                qlabd_path, db, tmpdir);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "`qlab run` is writing"));
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    if (db_count(db, "running") == 0) /* killed between two runs: make one look interrupted */
        assert_int_equal(sh(out, sizeof(out), "sqlite3 '%s' \"UPDATE runs SET status = "
                            "'running' WHERE id = (SELECT min(id) FROM runs WHERE status = "
                            "'pending')\"", db), 0);
    assert_true(db_count(db, "running") > 0);

    rc = sh(out, sizeof(out), "%s run '%s/small.yaml' --db '%s' --quiet 2>&1", qlab_path,
            tmpdir, db);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "left running by a qlab run or qlabd that died"));
    assert_int_equal(db_count(db, "running"), 0);

    start_daemon();
    rc = sh(out, sizeof(out), "%s run '%s/small.yaml' --db '%s' 2>&1", qlab_path, tmpdir,
            dbpath);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "is served by qlabd (pid "));
    assert_non_null(strstr(out, "qlab submit FILE --wait"));
    stop_daemon();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s QLABD QLAB\n", argv[0]);
        return 2;
    }
    qlabd_path = argv[1];
    qlab_path = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_daemon),
        cmocka_unit_test(test_submit_wait_and_commands),
        cmocka_unit_test(test_client_sigkill_reclaimed),
        cmocka_unit_test(test_run_interrupted),
        cmocka_unit_test(test_run_single_writer),
    };
    return cmocka_run_group_tests_name("daemon-cli", tests, setup, teardown);
}
