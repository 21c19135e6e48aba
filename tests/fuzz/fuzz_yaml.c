/* fuzz_yaml.c - libFuzzer target: one input as a prices file and as a claims file (the two
 * readers over results/ycfg.c). The loaders take a path, so the input goes to a temporary
 * file first. Any input must load or give one-line HB_ERR_INPUT; a crash, sanitizer report or
 * leak is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/report.h"

static const char *input_path(void) {
    static char path[64]; /* one per process: libFuzzer runs one input at a time */
    if (!path[0]) snprintf(path, sizeof path, "/tmp/hb-fuzz-yaml-%d.yaml", (int)getpid());
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = input_path();
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    hb_err e = {{0}};
    hb_prices *p = NULL;
    if (hb_prices_load(path, &p, &e) != HB_OK && strchr(e.msg, '\n')) abort();
    hb_prices_free(p);
    hb_claims *c = NULL;
    e.msg[0] = '\0';
    if (hb_claims_load(path, &c, &e) != HB_OK && strchr(e.msg, '\n')) abort();
    hb_claims_free(c);
    return 0;
}
