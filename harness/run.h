/* run.h - `hetbench run` across the ranks of MPI_COMM_WORLD (a singleton too).
 *
 * Before dispatch (collectives allowed, every failure agreed on by all ranks): placement and
 * binding (hwloc), backend, fit check, ceilings, /devices gathered on rank 0, file created.
 * Dispatch (no collective): rank 0 sends each case to the ranks, runs its own part, and
 * collects records point to point with a deadline, so a dead or hung rank is recorded as
 * `lost` and cannot stop the others' results from being written. */
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
    double case_timeout_s;         /* deadline for a rank's record, from dispatch; <= 0: default */
    int serial;                    /* --schedule serial: one rank at a time */
    int share_devices;             /* allow more ranks than devices */
    int resume;                    /* out_path exists: run only its missing/failed/lost pairs */
    int interleave;                /* --interleave: window k of every case, then window k+1 */
    int dry_run;                   /* --dry-run: list the cases, memory, fit, duration; run nothing */
} hb_run_opts;

/* Returns HB_OK when every case ran (n_failed counts (case, rank) pairs that failed),
 * HB_ERR_INPUT / HB_ERR_TOO_LARGE for input errors found before anything ran (nothing written),
 * HB_ERR_INTERRUPTED when stopped by a signal (the file holds every completed case). */
hb_status hb_run(const hb_plan *plan, const hb_run_opts *o, int *n_failed, hb_err *err);

/* `hetbench info`: where every rank of this job would run (collective over MPI_COMM_WORLD;
 * nothing is bound). rows (size entries) is malloc'ed on rank 0 only. */
typedef struct hb_rank_info {
    int32_t rank, local_rank, numa_node, has_device;
    char host[64];
    char backend[16];
    char device[128];        /* device model, or CPU model for a CPU rank */
    char pci_bus_id[32];
    char cpuset[256];
    char binding[96];        /* what `run` would do */
    char error[256];         /* placement or backend error, "" if none */
} hb_rank_info;

hb_status hb_info_ranks(const char *backend, int share, hb_rank_info **rows, int *n_rows);

/* The default deadline of a case: generous, scaled from its min_seconds. */
double hb_case_timeout_default(const hb_case *c);

#endif
