/* cmd_verify.c - `hetbench verify`: not in this build yet. */
#include <stdio.h>

#include "commands.h"

int hb_cmd_verify(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "hetbench verify: not available in this version\n");
    return 2;
}
