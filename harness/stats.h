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

/* Repetitions (--repeat): rate_r = per_iter * n_r / sum(window r's times) for the n_reps
 * windows that split x (rep_iters[r] iterations each, in order). *median is the median of the
 * rates, *min / *max the extremes, [*lo, *hi] a two-level bootstrap 95% CI of the median: each
 * resample draws n_reps windows with replacement (run-to-run noise) and, within each drawn
 * window, a moving-block bootstrap of its iterations (blocks of hb_block_len(n_r) consecutive
 * iterations, so that a stall spanning several iterations - a preemption, a frequency dip -
 * is resampled as a whole instead of being averaged away as independent noise). NaN everywhere
 * if n_reps < 2 or the counts do not add up to n. */
void hb_repeat_rate(const double *x, int64_t n, const int64_t *rep_iters, int n_reps, double per_iter,
                    int n_boot, uint64_t seed, double *median, double *lo, double *hi, double *min,
                    double *max);

/* Block length of the moving-block bootstrap of a window of n iterations: ceil(n^(1/3)), the
 * usual order for estimating a mean (Hall, Horowitz & Jing 1995); 1 for n <= 1. */
int64_t hb_block_len(int64_t n);

/* Percentile q in [0, 100] of a sorted array. */
double hb_percentile_sorted(const double *sorted, int64_t n, double q);

#endif
