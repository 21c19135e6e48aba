/* run.h - `hetbench run`: open the backend, check every case fits, measure the ceilings,
 * create the results file, then set up / measure / tear down each case, writing the file
 * after every case and printing a table row (or a JSON line). */
#ifndef HB_RUN_H
#define HB_RUN_H

#include <signal.h>
#include <stdio.h>

#include "../results/results.h"
#include "plan.h"

typedef struct hb_run_opts {
    const char *out_path;          /* results file */
    int force;                     /* overwrite out_path */
    const char *backend;           /* "auto", "cpu", "cuda", "hip" */
    int json;                      /* one JSON object per case on `out` instead of the table */
    int progress;                  /* progress line on stderr */
    int calibrate;                 /* measure gemm/stream ceilings when no datasheet peak */
    double power_hz;               /* power sampler rate, --power-hz */
    double idle_seconds;           /* idle baseline before the first case, --idle-seconds */
    const char *command_line;
    volatile sig_atomic_t *stop;   /* set by a signal handler */
    FILE *out;                     /* table / JSON (stdout) */
} hb_run_opts;

/* Returns HB_OK when every case ran (n_failed counts (case, rank) pairs that failed),
 * HB_ERR_INPUT / HB_ERR_TOO_LARGE for input errors found before anything ran (nothing written),
 * HB_ERR_INTERRUPTED when stopped by a signal (the file holds every completed case). */
hb_status hb_run(const hb_plan *plan, const hb_run_opts *o, int *n_failed, hb_err *err);

/* Builds the /summary row of one record (exposed for tests). */
void hb_summary_fill(const hb_case *c, const hb_cost *cost, const hb_record *rec,
                     const hb_device_row *dev, hb_summary_row *row);

/* Device row of an open backend (ceilings unset: NaN). */
void hb_device_row_fill(const hb_backend *be, int rank, hb_device_row *row);

#endif
