/* make-fixture — writes a GUI fixture database: make-fixture OUT.db SCHEMA.sql [BIG_RUNS]
 * (the store's schema, accuracy in percent as qlabd writes it; see gui-fixture.h). */
#include <stdio.h>
#include <stdlib.h>

#include "gui-fixture.h"

int main(int argc, char **argv)
{
    char msg[256];
    if (argc < 3) {
        fprintf(stderr, "usage: make-fixture OUT.db SCHEMA.sql [BIG_RUNS]\n");
        return 2;
    }
    if (fixture_create(argv[1], argv[2], argc > 3 ? atol(argv[3]) : 0, msg) < 0) {
        fprintf(stderr, "make-fixture: %s\n", msg);
        return 1;
    }
    return 0;
}
