/* progress.h - the progress line of `hetbench run` on a terminal (rank 0, stderr):
 *   [3/10] decode tiny bf16 B=8 ... · 412 iterations · 0:42 elapsed · ETA 1:10
 * redrawn twice a second by a thread of its own, so that it moves during a long case. The ETA is
 * the estimate of the cases left (hb_case_estimate_s) scaled by how the finished cases compared
 * with their estimates. Nothing is drawn when disabled (stderr not a terminal, --no-progress,
 * --json): logs stay clean. */
#ifndef HB_PROGRESS_H
#define HB_PROGRESS_H

#include <stdatomic.h>
#include <stdint.h>

#include "status.h"

typedef struct hb_progress hb_progress;

/* est_s[i]: the estimate of case i (n entries; copied). *out is NULL when disabled. */
hb_status hb_progress_start(int enabled, int n, const double *est_s, hb_progress **out);
/* Case `index` (label) starts: its iteration counter is reset. */
void hb_progress_begin(hb_progress *p, int index, const char *prefix, const char *label);
/* The case is over: the line is cleared (before the table prints its row) and its time counted. */
void hb_progress_end(hb_progress *p, int index);
/* The counter the measurement loop updates (NULL when p is NULL). */
_Atomic int64_t *hb_progress_iters(hb_progress *p);
void hb_progress_stop(hb_progress *p); /* NULL is a no-op; clears the line */

#endif
