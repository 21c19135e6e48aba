/* worker.h - what every rank (rank 0 too) does with a case: fault injection, workload
 * setup, the timed window, teardown; and the rank's device: placement, backend, meter,
 * ceilings. No MPI here: the coordinator (run.c) moves the records. */
#ifndef HB_WORKER_H
#define HB_WORKER_H

#include <signal.h>

#include "../backends/meter.h"
#include "../results/results.h"
#include "measure.h"

/* HETBENCH_FAULT: a testing aid. ';'-separated faults "rank=R,case=C,kind=K" with
 * K = error (the case fails with a message), abort (the process aborts), hang (the process
 * stops answering), exit (the process exits 3), disk-full (rank 0 finds no room for the results
 * of the case when it is about to write them); in a rank group's case (backends/comm.h):
 * corrupt (every collective's output gets one wrong element on that rank), comm_error (the
 * rank's first collective completes and then reports an error there: the group fails the
 * case together), comm_abort / comm_hang (the rank aborts / blocks for good inside its first
 * collective: the others of its group fail theirs at the deadline, and the group is lost).
 * case=* or rank=* match any. */
typedef enum hb_fault_kind {
    HB_FAULT_NONE = 0, HB_FAULT_ERROR, HB_FAULT_ABORT, HB_FAULT_HANG, HB_FAULT_EXIT, HB_FAULT_DISK_FULL, HB_FAULT_CORRUPT,
    HB_FAULT_COMM_ERROR, HB_FAULT_COMM_ABORT, HB_FAULT_COMM_HANG
} hb_fault_kind;

typedef struct hb_fault {
    int rank;      /* -1: any */
    int case_id;   /* -1: any */
    hb_fault_kind kind;
} hb_fault;

#define HB_MAX_FAULTS 16

typedef struct hb_worker {
    int rank;
    hb_backend *be;
    hb_meter *meter;
    hb_device_row dev;            /* this rank's /devices row (ceilings included) */
    hb_measure_opts mo;
    int n_faults;
    hb_fault faults[HB_MAX_FAULTS];
    int last_case_id;             /* after this case the reference loop runs again (-1: never) */
    /* rank groups, one per distinct group size > 1 of the plan's cases (hb_case_group_size:
     * dp x tp x ep, collective's coll_ranks); ranks g*size .. g*size+size-1 form group g. run.c
     * makes their communicators before dispatch: this rank's group for each size */
#define HB_MAX_GROUPS 8
    int n_groups;
    int64_t group_size[HB_MAX_GROUPS];
    hb_comm groups[HB_MAX_GROUPS];
} hb_worker;

/* Parses HETBENCH_FAULT (NULL or "" = none); HB_ERR_INPUT with a message on a bad spec. */
hb_status hb_fault_parse(const char *spec, hb_fault *faults, int *n, hb_err *err);

/* Runs case c on this rank and fills rec (status ok | failed | interrupted). Returns
 * HB_ERR_INTERRUPTED when a stop was requested, else HB_OK (a failed case is a record, not an
 * error). */
hb_status hb_worker_run_case(hb_worker *w, const hb_case *c, hb_record *rec);

/* --interleave: adds one timed window (a record of a run with repeat 1) to the case's record
 * so far. An empty acc (status "") becomes a copy of win; later ok windows append their
 * iteration times (rep_iters[n_reps++]), add their window seconds, energy and interference
 * evidence (cpu_util recomputed over the sum) and take the end-of-window state; the power
 * trace stays the first window's. The first failed window makes the case failed with its
 * message. HB_ERR_NOMEM leaves acc as it was. */
hb_status hb_record_add_window(hb_record *acc, const hb_record *win);

/* Measures the device's gemm/stream ceilings into w->dev when it has no datasheet peak. */
hb_status hb_worker_calibrate(hb_worker *w, const hb_case *cases, int n_cases, int verbose, hb_err *err);

/* Every case (resolved: its cost.mem_bytes) must fit in the device's free memory. */
hb_status hb_worker_check_fit(hb_worker *w, const hb_case *cases, int n_cases, hb_err *err);
/* Probes each fp8 recipe of the plan (weights with their scales, an fp8 KV cache) with a tiny
 * op on this rank's device; one the backend does not support is an input error (exit 2,
 * naming the case, the device and the backend's reason) before anything runs. */
hb_status hb_worker_check_support(hb_worker *w, const hb_case *cases, int n_cases, hb_err *err);

#endif
