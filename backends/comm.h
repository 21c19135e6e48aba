/* comm.h - the one communication interface of rank groups (DESIGN.md §11): all_reduce,
 * all_gather, reduce_scatter, all_to_all (with counts), broadcast, barrier over the ranks of
 * one group. Implementations: MPI for CPU ranks (harness/comm_mpi.c, the reference), NCCL and
 * RCCL for GPU ranks (not yet: a GPU rank with a group > 1 is refused before dispatch).
 *
 * Contract: buffers are device memory of the rank's backend that the implementation can
 * read (the CPU's for MPI); send == recv is the in-place form where a collective has one
 * (all_reduce, all_gather with send = recv + rank * n, reduce_scatter with recv = send +
 * rank * n, all_to_all with send = recv and equal send and recv counts, broadcast always). Counts are elements of the dtype. Every call is collective:
 * each rank of the group makes the same calls in the same order. A failure returns
 * HB_ERR_BACKEND with the library's message in the comm's err.
 *
 * Workloads call the hb_comm_* wrappers, which also keep, per case, the number of calls, the
 * bytes each rank sent and the time each took (the /summary comm columns). */
#ifndef HB_COMM_H
#define HB_COMM_H

#include <stdint.h>

#include "../harness/status.h"

/* Element types a collective moves. bf16 and f16 sums accumulate in f32 and round to the
 * dtype once per combining step (as NCCL's kernels do). */
typedef enum hb_cdt { HB_CDT_F32 = 0, HB_CDT_BF16, HB_CDT_F16, HB_CDT_F64, HB_CDT_I32, HB_CDT_COUNT } hb_cdt;
typedef enum hb_redop { HB_REDOP_SUM = 0, HB_REDOP_MAX } hb_redop;

typedef enum hb_comm_op {
    HB_COMM_ALL_REDUCE = 0,
    HB_COMM_ALL_GATHER,
    HB_COMM_REDUCE_SCATTER,
    HB_COMM_ALL_TO_ALL,
    HB_COMM_BROADCAST,
    HB_COMM_BARRIER,
    HB_COMM_N_OPS
} hb_comm_op;

const char *hb_comm_op_name(hb_comm_op op);     /* "all_reduce", ... */
int hb_comm_op_parse(const char *s, hb_comm_op *out); /* 0 ok, -1 unknown (barrier is not a benchmark op) */
int64_t hb_cdt_size(hb_cdt t);

typedef struct hb_comm_ops {
    /* recv[i] = op over ranks of send[i], i < n */
    hb_status (*all_reduce)(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op);
    /* recv[r n + i] = send of rank r [i], i < n */
    hb_status (*all_gather)(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt);
    /* recv[i] = op over ranks of send[rank n + i], i < n */
    hb_status (*reduce_scatter)(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op);
    /* rank r sends send_counts[p] elements from send + send_displs[p] to each rank p and
     * receives recv_counts[p] into recv + recv_displs[p] (counts and displacements in elements) */
    hb_status (*all_to_all)(void *ctx, const void *send, const int64_t *send_counts, const int64_t *send_displs,
                            void *recv, const int64_t *recv_counts, const int64_t *recv_displs, hb_cdt dt);
    hb_status (*broadcast)(void *ctx, void *buf, int64_t n, hb_cdt dt, int root);
    hb_status (*barrier)(void *ctx);
} hb_comm_ops;

/* Per collective: calls, bytes this rank sent into it (its send buffer, the nccl-tests
 * "size" of the op), seconds inside it (host wall clock around the call, which for MPI is the
 * whole collective). */
typedef struct hb_comm_stats {
    int64_t calls[HB_COMM_N_OPS];
    double bytes[HB_COMM_N_OPS];
    double time_s[HB_COMM_N_OPS];
} hb_comm_stats;

/* Injected faults: CORRUPT flips a bit of the first element of every output after the
 * collective; ERROR makes the next collective report a failure after it completed; ABORT and
 * HANG end the rank (abort()) or block it for good (until the worker's watchdog ends it) inside
 * its next collective, the other ranks of the group having entered theirs. */
enum { HB_COMM_FAULT_CORRUPT = 1, HB_COMM_FAULT_ERROR = 2, HB_COMM_FAULT_ABORT = 3, HB_COMM_FAULT_HANG = 4 };

/* A rank group's communicator, made by the harness before dispatch (owned by it). */
typedef struct hb_comm {
    const char *impl;      /* "mpi", "nccl", "rccl" */
    int id;                /* the group's index among the job's groups of this size */
    int rank, size;        /* this rank's index in the group, the group's size */
    const hb_comm_ops *ops;
    void *ctx;
    hb_comm_stats stats;   /* reset by the worker before each case */
    int fault;             /* testing aid (HETBENCH_FAULT, set by the worker per case): HB_COMM_FAULT_* */
    /* A rank lost inside a collective (dead or hung) would keep the others of its group waiting
     * for ever: an implementation waits for a collective at most until deadline_s
     * (CLOCK_MONOTONIC seconds, set by the worker before each case; 0: no limit), then fails it
     * with HB_ERR_BACKEND and sets lost. The communicator is then unusable (the collective
     * never completes): every later call on it fails at once, lost stays set for the run. */
    double deadline_s;
    int lost;
    char err[256];         /* the last failure's message */
} hb_comm;

/* The wrappers: validate the arguments (HB_ERR_INTERNAL on a negative count or a bad root),
 * call the implementation, count. */
hb_status hb_comm_all_reduce(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op);
hb_status hb_comm_all_gather(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt);
hb_status hb_comm_reduce_scatter(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op);
hb_status hb_comm_all_to_all(hb_comm *c, const void *send, const int64_t *send_counts, const int64_t *send_displs,
                             void *recv, const int64_t *recv_counts, const int64_t *recv_displs, hb_cdt dt);
hb_status hb_comm_broadcast(hb_comm *c, void *buf, int64_t n, hb_cdt dt, int root);
hb_status hb_comm_barrier(hb_comm *c);

/* Sums over the ops of the stats: calls, bytes, seconds. */
void hb_comm_stats_total(const hb_comm_stats *s, int64_t *calls, double *bytes, double *time_s);

#endif
