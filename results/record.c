/* record.c - ownership of hb_record's arrays. */
#include "results.h"

#include <stdio.h>
#include <stdlib.h>

void hb_record_free(hb_record *r) {
    if (!r) return;
    free(r->iter_seconds);
    free(r->power);
    free(r->loss);
    free(r->expert_tokens);
    free(r->generated);
    r->generated = NULL;
    r->gen_rows = r->gen_cols = 0;
    free(r->requests);
    r->requests = NULL;
    r->n_requests = 0;
    r->iter_seconds = NULL;
    r->power = NULL;
    r->loss = NULL;
    r->n_loss = r->n_loss_warmup = 0;
    r->expert_tokens = NULL;
    r->n_iters = 0;
    r->n_power = 0;
    r->n_moe_layers = r->n_experts = 0;
}

double hb_expert_imbalance(const int64_t *counts, int64_t layers, int64_t experts) {
    double worst = NAN;
    for (int64_t l = 0; counts && l < layers && experts > 0; l++) {
        int64_t mx = 0, sum = 0;
        for (int64_t e = 0; e < experts; e++) {
            sum += counts[l * experts + e];
            if (counts[l * experts + e] > mx) mx = counts[l * experts + e];
        }
        if (sum <= 0) continue;
        const double r = (double)mx * (double)experts / (double)sum;
        if (!(r <= worst)) worst = r;
    }
    return worst;
}

/* In bit order (results.h HB_TIMING_*); SCHEMA.md uses the same names. */
const char *hb_timing_flag_names(uint32_t flags, char *buf, int len) {
    static const char *const names[HB_TIMING_N_FLAGS] = {
        "interference", "steal", "cpu_contention", "high_cv", "rate_over_ceiling",
        "fits_in_cache", "short_window", "high_load", "no_evidence", "not_measured"};
    if (len <= 0) return buf;
    buf[0] = '\0';
    for (int i = 0, l = 0; i < 32 && l < len; i++) {
        if (!(flags & (1u << i))) continue;
        char other[16];
        snprintf(other, sizeof other, "bit%d", i);
        l += snprintf(buf + l, (size_t)(len - l), "%s%s", l ? "," : "", i < HB_TIMING_N_FLAGS ? names[i] : other);
    }
    return buf;
}
