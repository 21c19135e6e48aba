/* cmd_power.c - `hetbench power`: not in this build yet. */
#include <stdio.h>

#include "commands.h"

int hb_cmd_power(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "hetbench power: not available in this version\n");
    return 2;
}
