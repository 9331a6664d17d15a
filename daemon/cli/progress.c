#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void qlab_format_bytes(int64_t b, char *buf, size_t len)
{
    if (b < 0)
        snprintf(buf, len, "-");
    else if (b < 1024)
        snprintf(buf, len, "%lld B", (long long)b);
    else if (b < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(buf, len, "%.2f MiB", (double)b / (1024.0 * 1024.0));
}

void qlab_progress_init(qlab_progress *p, FILE *out, int64_t experiment_id)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->tty = isatty(fileno(out));
    p->experiment_id = experiment_id;
    p->t_start = now_s();
    p->last_decile = -1;
    p->fp32 = -1;
    for (int i = 0; i < 17; i++)
        p->best[i] = -1;
}

static void draw(qlab_progress *p, int force)
{
    double t = now_s();
    if (p->tty && !force && t - p->t_last_draw < 0.1)
        return;
    int decile = p->total ? p->done * 10 / p->total : 0;
    if (!p->tty && !force && decile == p->last_decile)
        return;
    if (!p->tty && p->done == p->last_done && p->last_decile >= 0)
        return;   /* a log gets each state once */
    p->last_done = p->done;
    p->last_decile = decile;
    p->t_last_draw = t;

    double el = t - p->t_start;
    double rate = el > 0 ? p->done / el : 0;
    int left = p->total - p->done;
    char eta[32] = "--:--";
    if (rate > 0 && left >= 0) {
        int s = (int)(left / rate + 0.5);
        snprintf(eta, sizeof(eta), "%d:%02d", s / 60, s % 60);
    }
    char bar[32];
    int width = 24;
    int fill = p->total ? p->done * width / p->total : 0;
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    char best[160] = "";
    size_t bl = 0;
    for (int b = 2; b <= 16 && bl < sizeof(best) - 16; b++)
        if (p->best[b] >= 0)
            bl += (size_t)snprintf(best + bl, sizeof(best) - bl, " %db:%.1f", b, p->best[b]);
    fprintf(p->out, "%s[%s] %d/%d  %.1f runs/s  ETA %s  best%%:%s%s", p->tty ? "\r\033[K" : "",
            bar, p->done, p->total, rate, eta, bl ? best : " -",
            p->failed ? "" : "");
    if (p->failed)
        fprintf(p->out, "  (%d failed)", p->failed);
    if (!p->tty)
        fputc('\n', p->out);
    fflush(p->out);
}

void qlab_progress_set(qlab_progress *p, int done, int total)
{
    p->done = done;
    p->total = total;
    draw(p, 0);
}

void qlab_progress_fp32(qlab_progress *p, double acc)
{
    p->fp32 = acc;
}

void qlab_progress_run(qlab_progress *p, int done, int total, int bits, double accuracy,
                       int64_t bytes)
{
    p->done = done;
    p->total = total;
    if (accuracy < 0)
        p->failed++;
    else if (bits >= 0 && bits <= 16 && accuracy > p->best[bits]) {
        p->best[bits] = accuracy;
        p->best_bytes[bits] = bytes;
    }
    draw(p, 0);
}

void qlab_progress_end(qlab_progress *p, const char *status)
{
    draw(p, 1);
    double el = now_s() - p->t_start;
    if (p->tty)
        fputc('\n', p->out);
    fprintf(p->out, "experiment %lld %s: %d/%d runs in %.1f s\n", (long long)p->experiment_id,
            status, p->done, p->total, el);
    fflush(p->out);
}
