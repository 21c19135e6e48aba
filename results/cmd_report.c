/* cmd_report.c - `hetbench report|check|compare`: not in this build yet. */
#include <stdio.h>

#include "../harness/commands.h"

static int unavailable(const char *name) {
    fprintf(stderr, "hetbench %s: not available in this version\n", name);
    return 2;
}

int hb_cmd_report(int argc, char **argv) { (void)argc, (void)argv; return unavailable("report"); }
int hb_cmd_check(int argc, char **argv) { (void)argc, (void)argv; return unavailable("check"); }
int hb_cmd_compare(int argc, char **argv) { (void)argc, (void)argv; return unavailable("compare"); }
