/* test-experiment-bad.c — every malformed experiment file in bad/ gives exactly the
 * one-line "file:line:col: message" listed for it in bad/EXPECTED. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlab-config.h"
#include "qlab-experiment.h"

static void test_bad_files(void **state)
{
    (void)state;
    const char *root = getenv("QLAB_SOURCE_ROOT");
    char dir[512], table[600];
    snprintf(dir, sizeof dir, "%s/tests/store/bad", root ? root : QLAB_SOURCE_ROOT);
    snprintf(table, sizeof table, "%s/EXPECTED", dir);
    /* Paths in messages are as given: load from inside the folder, as a user would. */
    assert_int_equal(chdir(dir), 0);
    FILE *f = fopen(table, "r");
    assert_non_null(f);
    char line[1024];
    int cases = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char file[256];
        snprintf(file, sizeof file, "%.*s", (int)strcspn(line, ":"), line);
        qlab_experiment *e = NULL;
        qlab_err err = { 0 };
        int r = qlab_experiment_load(&e, file, &err);
        cases++;
        if (r >= 0) {
            print_error("%s: loaded, expected: %s\n", file, line);
            qlab_experiment_free(e);
            failures++;
        } else if (strcmp(err.msg, line) != 0) {
            print_error("%s:\n  got      %s\n  expected %s\n", file, err.msg, line);
            failures++;
        } else if (strchr(err.msg, '\n')) {
            failures++;
        }
    }
    fclose(f);
    /* Every .yaml in the folder is in the table. */
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        files += n > 5 && strcmp(de->d_name + n - 5, ".yaml") == 0;
    }
    closedir(d);
    assert_int_equal(files, cases);
    assert_true(cases >= 30);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("experiment-bad", tests, NULL, NULL);
}
