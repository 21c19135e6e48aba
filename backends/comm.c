/* comm.c - the hb_comm wrappers: argument checks, then the implementation, then the per-case
 * counters (calls, bytes, seconds) that /summary's comm columns report. */
#include "comm.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *const op_names[HB_COMM_N_OPS] = {"all_reduce", "all_gather", "reduce_scatter",
                                                    "all_to_all", "broadcast", "barrier"};

const char *hb_comm_op_name(hb_comm_op op) { return op >= 0 && op < HB_COMM_N_OPS ? op_names[op] : "?"; }

int hb_comm_op_parse(const char *s, hb_comm_op *out) {
    for (int i = 0; i < HB_COMM_BARRIER; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *out = (hb_comm_op)i;
            return 0;
        }
    return -1;
}

int64_t hb_cdt_size(hb_cdt t) {
    switch (t) {
    case HB_CDT_F32: case HB_CDT_I32: return 4;
    case HB_CDT_BF16: case HB_CDT_F16: return 2;
    case HB_CDT_F64: return 8;
    default: return 0;
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* HETBENCH_FAULT kind=comm_error: the collective completes, then fails on this rank (once),
 * as a library error detected after the data moved would */
static int injected_error(hb_comm *c, hb_comm_op op) {
    if (c->fault != HB_COMM_FAULT_ERROR) return 0;
    c->fault = 0;
    snprintf(c->err, sizeof c->err, "%s %s: injected fault (HETBENCH_FAULT kind=comm_error)", c->impl, op_names[op]);
    return 1;
}

/* HETBENCH_FAULT kind=comm_abort / comm_hang: the rank dies or blocks inside the collective
 * (the group's other ranks are in theirs); the hang ends with the worker's watchdog */
static void injected_loss(const hb_comm *c) {
    if (c->fault == HB_COMM_FAULT_ABORT) abort();
    if (c->fault == HB_COMM_FAULT_HANG)
        for (;;) pause();
}

/* HETBENCH_FAULT kind=corrupt: one bit of the output's first element flipped */
static void corrupt(const hb_comm *c, void *out, int64_t n) {
    if (c->fault == HB_COMM_FAULT_CORRUPT && n > 0) ((unsigned char *)out)[1] ^= 0x01;
}

static hb_status count(hb_comm *c, hb_comm_op op, double bytes, double t0, hb_status s) {
    c->stats.calls[op]++;
    c->stats.bytes[op] += bytes;
    c->stats.time_s[op] += now_s() - t0;
    if (s != HB_OK && !c->err[0]) snprintf(c->err, sizeof c->err, "%s %s failed", c->impl, op_names[op]);
    return s;
}

static hb_status bad(hb_comm *c, const char *what) {
    snprintf(c->err, sizeof c->err, "%s: %s", c->impl, what);
    return HB_ERR_INTERNAL;
}

hb_status hb_comm_all_reduce(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    if (n < 0 || hb_cdt_size(dt) == 0) return bad(c, "all_reduce: negative count or unknown dtype");
    injected_loss(c);
    const double t0 = now_s();
    hb_status s = c->ops->all_reduce(c->ctx, send, recv, n, dt, op);
    if (s == HB_OK && injected_error(c, HB_COMM_ALL_REDUCE)) s = HB_ERR_BACKEND;
    corrupt(c, recv, n);
    return count(c, HB_COMM_ALL_REDUCE, (double)n * (double)hb_cdt_size(dt), t0, s);
}

hb_status hb_comm_all_gather(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt) {
    if (n < 0 || hb_cdt_size(dt) == 0) return bad(c, "all_gather: negative count or unknown dtype");
    injected_loss(c);
    const double t0 = now_s();
    hb_status s = c->ops->all_gather(c->ctx, send, recv, n, dt);
    if (s == HB_OK && injected_error(c, HB_COMM_ALL_GATHER)) s = HB_ERR_BACKEND;
    corrupt(c, recv, n);
    return count(c, HB_COMM_ALL_GATHER, (double)n * (double)hb_cdt_size(dt), t0, s);
}

hb_status hb_comm_reduce_scatter(hb_comm *c, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    if (n < 0 || hb_cdt_size(dt) == 0) return bad(c, "reduce_scatter: negative count or unknown dtype");
    injected_loss(c);
    const double t0 = now_s();
    hb_status s = c->ops->reduce_scatter(c->ctx, send, recv, n, dt, op);
    if (s == HB_OK && injected_error(c, HB_COMM_REDUCE_SCATTER)) s = HB_ERR_BACKEND;
    corrupt(c, recv, n);
    return count(c, HB_COMM_REDUCE_SCATTER, (double)n * c->size * (double)hb_cdt_size(dt), t0, s);
}

hb_status hb_comm_all_to_all(hb_comm *c, const void *send, const int64_t *send_counts, const int64_t *send_displs,
                             void *recv, const int64_t *recv_counts, const int64_t *recv_displs, hb_cdt dt) {
    double n = 0;
    for (int p = 0; p < c->size; p++) {
        if (send_counts[p] < 0 || recv_counts[p] < 0 || send_displs[p] < 0 || recv_displs[p] < 0)
            return bad(c, "all_to_all: negative count or displacement");
        n += (double)send_counts[p];
    }
    injected_loss(c);
    const double t0 = now_s();
    hb_status s = c->ops->all_to_all(c->ctx, send, send_counts, send_displs, recv, recv_counts, recv_displs, dt);
    if (s == HB_OK && injected_error(c, HB_COMM_ALL_TO_ALL)) s = HB_ERR_BACKEND;
    corrupt(c, recv, recv_counts[0]);
    return count(c, HB_COMM_ALL_TO_ALL, n * (double)hb_cdt_size(dt), t0, s);
}

hb_status hb_comm_broadcast(hb_comm *c, void *buf, int64_t n, hb_cdt dt, int root) {
    if (n < 0 || root < 0 || root >= c->size || hb_cdt_size(dt) == 0) return bad(c, "broadcast: bad count or root");
    injected_loss(c);
    const double t0 = now_s();
    hb_status s = c->ops->broadcast(c->ctx, buf, n, dt, root);
    if (s == HB_OK && injected_error(c, HB_COMM_BROADCAST)) s = HB_ERR_BACKEND;
    corrupt(c, buf, n);
    return count(c, HB_COMM_BROADCAST, (double)n * (double)hb_cdt_size(dt), t0, s);
}

hb_status hb_comm_barrier(hb_comm *c) {
    injected_loss(c);
    const double t0 = now_s();
    return count(c, HB_COMM_BARRIER, 0, t0, c->ops->barrier(c->ctx));
}

void hb_comm_stats_total(const hb_comm_stats *s, int64_t *calls, double *bytes, double *time_s) {
    *calls = 0;
    *bytes = *time_s = 0;
    for (int i = 0; i < HB_COMM_N_OPS; i++) {
        *calls += s->calls[i];
        *bytes += s->bytes[i];
        *time_s += s->time_s[i];
    }
}
