/* dryrun.h - `hetbench run --dry-run`: the expanded cases with their memory estimate, whether
 * each fits this rank's device, and an estimated duration; nothing runs and nothing is written.
 * The same per-case estimate gives the progress line its ETA. */
#ifndef HB_DRYRUN_H
#define HB_DRYRUN_H

#include <stdio.h>

#include "../backends/backend.h"
#include "../results/results.h"
#include "plan.h"

/* Estimated wall time of one case on `dev`: per window (repeat of them) the warm-up and timed
 * iterations (at least min_iters and min_seconds, at most max_iters) of an iteration time
 * max(FLOPs / peak FLOP/s, bytes / peak B/s), plus a set-up allowance (0.2 s + the case's
 * memory filled at 1 GB/s). Without the device's
 * ceilings the iteration time is unknown: the estimate is then min_seconds per window and
 * *lower_bound is set. */
double hb_case_estimate_s(const hb_case *c, const hb_device_row *dev, int *lower_bound);

/* Prints the dry run to `out`: one line per case (id, label, memory, fits, estimated s) and
 * the total (idle baseline, ceilings, cases; `ranks` x for a serial schedule). idle_seconds is
 * 0 when the device has no meter (no baseline is measured then). */
hb_status hb_run_dry(hb_backend *be, const hb_device_row *dev, const hb_plan *plan, int ranks, int serial,
                     double idle_seconds, int calibrate, FILE *out, hb_err *err);

#endif
