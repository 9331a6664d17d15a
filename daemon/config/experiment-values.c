/* experiment-values.c — the sweep's value words: "group:32", "percentile:99.9", "int8".
 *
 * The core has parsers for the first two (qlab_config_parse_*), but the loader needs to
 * tell the user *why* a word is wrong ("group size 0", "percentile 101"), so it parses
 * them itself with the same grammar. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment-private.h"

int qlab_exp_valid_bits(long bits)
{
    return (bits >= 2 && bits <= 8) || bits == 16;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno)
        return -EINVAL;
    *out = v;
    return 0;
}

/* -EINVAL: unknown word; -ERANGE: a group size that is not a positive integer. */
int qlab_exp_parse_granularity(const char *s, qlab_qconfig *cfg)
{
    if (strcmp(s, "tensor") == 0) {
        cfg->granularity = QLAB_GRAN_TENSOR;
        cfg->group_size = 0;
        return 0;
    }
    if (strcmp(s, "channel") == 0) {
        cfg->granularity = QLAB_GRAN_CHANNEL;
        cfg->group_size = 0;
        return 0;
    }
    if (strncmp(s, "group:", 6) == 0) {
        long g;
        if (parse_long(s + 6, &g) < 0 || g < 1 || g > 1 << 20)
            return -ERANGE;
        cfg->granularity = QLAB_GRAN_GROUP;
        cfg->group_size = (int)g;
        return 0;
    }
    return -EINVAL;
}

/* -EINVAL: unknown word; -ERANGE: a percentile outside (0, 100] or not a number. */
int qlab_exp_parse_calibration(const char *s, qlab_qconfig *cfg)
{
    static const struct { const char *word; qlab_calibration c; } words[] = {
        { "minmax", QLAB_CALIB_MINMAX },
        { "mse", QLAB_CALIB_MSE },
        { "entropy", QLAB_CALIB_ENTROPY },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(s, words[i].word) == 0) {
            cfg->calibration = words[i].c;
            cfg->percentile = 0;
            return 0;
        }
    }
    if (strncmp(s, "percentile:", 11) == 0) {
        char *end;
        const char *p = s + 11;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -ERANGE;
        double v = strtod(p, &end);
        if (*end || !(v > 0.0 && v <= 100.0))
            return -ERANGE;
        cfg->calibration = QLAB_CALIB_PERCENTILE;
        cfg->percentile = v;
        return 0;
    }
    return -EINVAL;
}

int qlab_exp_parse_activations(const char *s, int *act_bits)
{
    long b;
    if (strcmp(s, "fp32") == 0) {
        *act_bits = 0;
        return 0;
    }
    if (strncmp(s, "int", 3) == 0 && parse_long(s + 3, &b) == 0 && qlab_exp_valid_bits(b)) {
        *act_bits = (int)b;
        return 0;
    }
    return -EINVAL;
}

void qlab_exp_format_granularity(const qlab_qconfig *c, char *buf, size_t size)
{
    if (c->granularity == QLAB_GRAN_GROUP)
        snprintf(buf, size, "group:%d", c->group_size);
    else
        snprintf(buf, size, "%s", c->granularity == QLAB_GRAN_CHANNEL ? "channel" : "tensor");
}

void qlab_exp_format_calibration(const qlab_qconfig *c, char *buf, size_t size)
{
    switch (c->calibration) {
    case QLAB_CALIB_PERCENTILE:
        /* %.15g: the shortest text that reads back as the same double for values typed by
         * hand, so "99.90" and "99.9" give one configuration string. */
        snprintf(buf, size, "percentile:%.15g", c->percentile);
        break;
    case QLAB_CALIB_MSE:     snprintf(buf, size, "mse"); break;
    case QLAB_CALIB_ENTROPY: snprintf(buf, size, "entropy"); break;
    default:                 snprintf(buf, size, "minmax"); break;
    }
}
