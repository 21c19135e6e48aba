/* stats.c - descriptive statistics and bootstrap CIs (see stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/dtype.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double hb_percentile_sorted(const double *s, int64_t n, double q) {
    if (n <= 0) return NAN;
    double h = (double)(n - 1) * q / 100.0;
    int64_t i = (int64_t)floor(h);
    if (i >= n - 1) return s[n - 1];
    return s[i] + (h - (double)i) * (s[i + 1] - s[i]);
}

void hb_stats_compute(const double *x, int64_t n, hb_stats *o) {
    o->n = n;
    if (n <= 0) {
        o->mean = o->median = o->p5 = o->p95 = o->min = o->max = o->stddev = o->cv = NAN;
        return;
    }
    double *s = malloc((size_t)n * sizeof *s);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    o->mean = sum / (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - o->mean) * (x[i] - o->mean);
    o->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    o->cv = o->mean != 0 ? o->stddev / o->mean : NAN;
    if (!s) { /* no memory for the sort: order statistics unknown */
        o->median = o->p5 = o->p95 = o->min = o->max = NAN;
        return;
    }
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    o->min = s[0];
    o->max = s[n - 1];
    o->median = hb_percentile_sorted(s, n, 50);
    o->p5 = hb_percentile_sorted(s, n, 5);
    o->p95 = hb_percentile_sorted(s, n, 95);
    free(s);
}

void hb_bootstrap_rate_ci(const double *x, int64_t n, double per_iter, int n_boot, uint64_t seed,
                          double *lo, double *hi) {
    *lo = *hi = NAN;
    if (n < 2 || n_boot < 2) return;
    double *rates = malloc((size_t)n_boot * sizeof *rates);
    if (!rates) return;
    for (int b = 0; b < n_boot; b++) {
        double sum = 0;
        for (int64_t i = 0; i < n; i++)
            sum += x[hb_rng_u64(seed, (uint64_t)b * (uint64_t)n + (uint64_t)i) % (uint64_t)n];
        rates[b] = per_iter * (double)n / sum;
    }
    qsort(rates, (size_t)n_boot, sizeof *rates, cmp_double);
    *lo = hb_percentile_sorted(rates, n_boot, 2.5);
    *hi = hb_percentile_sorted(rates, n_boot, 97.5);
    free(rates);
}

int64_t hb_block_len(int64_t n) {
    if (n <= 1) return 1;
    int64_t l = (int64_t)ceil(cbrt((double)n) - 1e-9);
    return l < 1 ? 1 : l > n ? n : l;
}

void hb_repeat_rate(const double *x, int64_t n, const int64_t *rep_iters, int n_reps, double per_iter,
                    int n_boot, uint64_t seed, double *median, double *lo, double *hi, double *min,
                    double *max) {
    *median = *lo = *hi = *min = *max = NAN;
    if (n_reps < 2 || n_boot < 2 || n_reps > HB_MAX_REPEAT) return;
    double rate[HB_MAX_REPEAT], pick[HB_MAX_REPEAT];
    int64_t start[HB_MAX_REPEAT + 1];
    int64_t at = 0;
    for (int r = 0; r < n_reps; r++) {
        if (rep_iters[r] <= 0 || at + rep_iters[r] > n) return;
        double sum = 0;
        for (int64_t i = 0; i < rep_iters[r]; i++) sum += x[at + i];
        start[r] = at;
        at += rep_iters[r];
        rate[r] = per_iter * (double)rep_iters[r] / sum;
    }
    if (at != n) return;
    start[n_reps] = n;
    memcpy(pick, rate, (size_t)n_reps * sizeof *rate);
    qsort(pick, (size_t)n_reps, sizeof *pick, cmp_double);
    *median = hb_percentile_sorted(pick, n_reps, 50);
    *min = pick[0];
    *max = pick[n_reps - 1];
    /* prefix sums: every block sum in O(1) */
    double *cum = malloc((size_t)(n + 1) * sizeof *cum);
    double *meds = malloc((size_t)n_boot * sizeof *meds);
    if (!cum || !meds) {
        free(cum);
        free(meds);
        return;
    }
    cum[0] = 0;
    for (int64_t i = 0; i < n; i++) cum[i + 1] = cum[i] + x[i];
    uint64_t ctr = 0;
    for (int b = 0; b < n_boot; b++) {
        for (int r = 0; r < n_reps; r++) {
            int w = (int)(hb_rng_u64(seed, ctr++) % (uint64_t)n_reps);
            const int64_t nw = start[w + 1] - start[w], len = hb_block_len(nw);
            const int64_t n_blocks = (nw + len - 1) / len, n_starts = nw - len + 1;
            double sum = 0;
            for (int64_t k = 0; k < n_blocks; k++) {
                int64_t s0 = start[w] + (int64_t)(hb_rng_u64(seed ^ 0xb10c, ctr++) % (uint64_t)n_starts);
                sum += cum[s0 + len] - cum[s0];
            }
            pick[r] = per_iter * (double)(n_blocks * len) / sum;
        }
        qsort(pick, (size_t)n_reps, sizeof *pick, cmp_double);
        meds[b] = hb_percentile_sorted(pick, n_reps, 50);
    }
    qsort(meds, (size_t)n_boot, sizeof *meds, cmp_double);
    *lo = hb_percentile_sorted(meds, n_boot, 2.5);
    *hi = hb_percentile_sorted(meds, n_boot, 97.5);
    free(cum);
    free(meds);
}
