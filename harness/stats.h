/* stats.h - descriptive statistics and bootstrap confidence intervals of rates. */
#ifndef HB_STATS_H
#define HB_STATS_H

#include <stdint.h>

#include "../results/results.h"

/* Sample statistics; percentiles by linear interpolation between order statistics (R type 7).
 * n == 0 gives NaN everywhere. */
void hb_stats_compute(const double *x, int64_t n, hb_stats *out);

/* Bootstrap 95% CI of the rate  per_iter * n / sum(x)  (x: iteration times): n_boot resamples
 * drawn with the counter-based generator from `seed` (deterministic). NaN if n < 2. */
void hb_bootstrap_rate_ci(const double *x, int64_t n, double per_iter, int n_boot, uint64_t seed,
                          double *lo, double *hi);

/* Percentile q in [0, 100] of a sorted array. */
double hb_percentile_sorted(const double *sorted, int64_t n, double q);

#endif
