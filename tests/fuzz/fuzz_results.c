/* fuzz_results.c - libFuzzer target: one input as a results file (.h5) through the reader
 * `report`, `check` and `compare` use (hb_report_load: the contained read, then grouping).
 * libhdf5 1.10's own crashes and hangs on corrupt files happen in the reading child and come
 * back as HB_ERR_INPUT (results/SCHEMA.md), so what remains a finding is hetbench's: a crash,
 * sanitizer report or leak in the parent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/hb-fuzz-results-%d.h5", (int)getpid());
    setenv("HETBENCH_READ_TIMEOUT", "5", 0);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    hb_err e = {{0}};
    hb_report *rep = NULL;
    const char *paths[1] = {path};
    if (hb_report_load(paths, 1, &rep, &e) != HB_OK && strchr(e.msg, '\n')) abort();
    hb_report_free(rep);
    return 0;
}
