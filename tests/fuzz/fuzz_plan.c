/* fuzz_plan.c - libFuzzer target: plan text (YAML) through hb_plan_from_string, the path
 * `run --plan` takes: parse, expand, resolve every case (sizes with overflow checks), emit
 * the canonical YAML and parse that again. Any input must give HB_OK or an error; a crash,
 * a sanitizer report, a leak or an error message with a newline is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    hb_plan p;
    hb_err e = {{0}};
    hb_status st = hb_plan_from_string(text, "fuzz.yaml", NULL, 0, &p, &e);
    if (st != HB_OK && strchr(e.msg, '\n')) abort(); /* messages are one line */
    if (st == HB_OK) {
        hb_plan q;
        /* the canonical form of an accepted plan must be accepted (it is what --resume reads) */
        if (hb_plan_from_string(p.yaml, "canonical", NULL, 0, &q, &e) != HB_OK || q.n_cases != p.n_cases) abort();
        hb_plan_free(&q);
    }
    hb_plan_free(&p);
    free(text);
    return 0;
}
