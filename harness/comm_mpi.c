/* comm_mpi.c - hb_comm over MPI (see comm_mpi.h). Counts above INT_MAX travel in chunks of a
 * contiguous datatype where the collective allows it; all_to_all uses MPI_Alltoallv with int
 * counts (refused above INT_MAX elements per peer).
 *
 * Every collective is the non-blocking MPI form, waited for with MPI_Test until the comm's
 * deadline_s (comm.h): a rank of the group that died or hangs inside the collective then fails
 * it on the others (the comm is lost) instead of holding them - rank 0, the coordinator,
 * included - until their watchdog ends them. Polling yields the core now and then: ranks
 * oversubscribe cores in the tests. */
#include "comm_mpi.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/dtype.h"

/* bf16 and f16 sums and maxima: f32 arithmetic, rounded once per pairwise combination (made
 * per communicator: MPI_Op_create is local and cheap). */

static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = hb_f32_to_bf16(hb_bf16_to_f32(a[i]) + hb_bf16_to_f32(b[i]));
}
static void bf16_max(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        if (hb_bf16_to_f32(a[i]) > hb_bf16_to_f32(b[i])) b[i] = a[i];
}
static void f16_sum(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = hb_f32_to_f16(hb_f16_to_f32(a[i]) + hb_f16_to_f32(b[i]));
}
static void f16_max(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        if (hb_f16_to_f32(a[i]) > hb_f16_to_f32(b[i])) b[i] = a[i];
}

typedef struct mpi_ctx {
    MPI_Comm comm;
    hb_comm *owner; /* for error messages (an hb_comm does not move after init) */
    MPI_Op bf16_sum, bf16_max, f16_sum, f16_max;
    int *a2a; /* all_to_all's int counts and displacements (4 x size): they must outlive a
                 request left pending by a lost collective */
} mpi_ctx;

static hb_status mpi_fail(void *ctx, const char *what, int rc) {
    hb_comm *c = ((mpi_ctx *)ctx)->owner;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    snprintf(c->err, sizeof c->err, "MPI %s: %.200s", what, msg);
    return HB_ERR_BACKEND;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A lost comm fails every call at once (a collective of it never completed). */
static hb_status lost_fail(void *ctx, const char *what) {
    hb_comm *c = ((mpi_ctx *)ctx)->owner;
    if (!c->err[0]) /* the case's first message (the missed deadline) stays */
        snprintf(c->err, sizeof c->err, "MPI %s: the group's communicator was lost earlier in this run (a rank of "
                 "the group died or hung inside a collective)", what);
    return HB_ERR_BACKEND;
}

/* Completes a started collective (rc: what starting it returned) by the comm's deadline. */
static hb_status wait_req(void *ctx, const char *what, int rc, MPI_Request *rq) {
    hb_comm *c = ((mpi_ctx *)ctx)->owner;
    if (rc != MPI_SUCCESS) return mpi_fail(ctx, what, rc);
    if (c->deadline_s <= 0) {
        rc = MPI_Wait(rq, MPI_STATUS_IGNORE);
        return rc == MPI_SUCCESS ? HB_OK : mpi_fail(ctx, what, rc);
    }
    for (unsigned i = 1;; i++) {
        int done = 0;
        rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(ctx, what, rc);
        if (done) return HB_OK;
        if (i % 64 == 0) {
            sched_yield();
            if (now_s() > c->deadline_s) {
                c->lost = 1; /* the request stays pending: the comm is unusable from now on */
                snprintf(c->err, sizeof c->err, "MPI %s: not complete at the case deadline (--case-timeout): a rank of "
                         "the group died or hangs inside it; the group is lost", what);
                return HB_ERR_BACKEND;
            }
        }
    }
}

#define HB_TRY_QUIET_MPI(expr)              \
    do {                                    \
        hb_status q_ = (expr);              \
        if (q_ != HB_OK) return q_;         \
    } while (0)
#define LOST_CHECK(ctx, what) \
    do { if (((mpi_ctx *)(ctx))->owner->lost) return lost_fail(ctx, what); } while (0)

static MPI_Datatype mpi_type(hb_cdt t) {
    switch (t) {
    case HB_CDT_F32: return MPI_FLOAT;
    case HB_CDT_F64: return MPI_DOUBLE;
    case HB_CDT_I32: return MPI_INT32_T;
    default: return MPI_UINT16_T; /* bf16, f16: bits, combined by the user ops */
    }
}

static MPI_Op mpi_op(const void *ctx, hb_cdt t, hb_redop op) {
    const mpi_ctx *x = ctx;
    if (t == HB_CDT_BF16) return op == HB_REDOP_SUM ? x->bf16_sum : x->bf16_max;
    if (t == HB_CDT_F16) return op == HB_REDOP_SUM ? x->f16_sum : x->f16_max;
    return op == HB_REDOP_SUM ? MPI_SUM : MPI_MAX;
}

#define CHUNK ((int64_t)1 << 30)
#define MPI_CTX(ctx) (((mpi_ctx *)(ctx))->comm)

static hb_status m_all_reduce(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    const size_t es = (size_t)hb_cdt_size(dt);
    for (int64_t o = 0; o < n; o += CHUNK) {
        const int k = (int)(n - o < CHUNK ? n - o : CHUNK);
        char *r = (char *)recv + (size_t)o * es;
        const void *s = send == recv ? MPI_IN_PLACE : (const char *)send + (size_t)o * es;
        MPI_Request rq;
        LOST_CHECK(ctx, "Allreduce");
        int rc = MPI_Iallreduce(s, r, k, mpi_type(dt), mpi_op(ctx, dt, op), MPI_CTX(ctx), &rq);
        HB_TRY_QUIET_MPI(wait_req(ctx, "Allreduce", rc, &rq));
    }
    return HB_OK;
}

/* A count above INT_MAX is sent as blocks of a contiguous type of `unit` elements. */
static hb_status blocked(int64_t n, hb_cdt dt, MPI_Datatype *t, int *k) {
    if (n <= INT_MAX) {
        *t = mpi_type(dt);
        *k = (int)n;
        return HB_OK;
    }
    if (n % 1024) return HB_ERR_UNSUPPORTED;
    MPI_Type_contiguous(1024 * (int)hb_cdt_size(dt), MPI_BYTE, t);
    MPI_Type_commit(t);
    *k = (int)(n / 1024);
    return *k < 0 ? HB_ERR_UNSUPPORTED : HB_OK;
}

static hb_status m_all_gather(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt) {
    MPI_Datatype t;
    int k, rank;
    MPI_Comm_rank(MPI_CTX(ctx), &rank);
    if (blocked(n, dt, &t, &k) != HB_OK) return mpi_fail(ctx, "Allgather (count above INT_MAX, not a multiple of 1024)", MPI_ERR_COUNT);
    const int inplace = send == (const char *)recv + (size_t)rank * (size_t)n * (size_t)hb_cdt_size(dt);
    MPI_Request rq;
    hb_status s = HB_OK;
    if (((mpi_ctx *)ctx)->owner->lost) s = lost_fail(ctx, "Allgather");
    else s = wait_req(ctx, "Allgather", MPI_Iallgather(inplace ? MPI_IN_PLACE : send, k, t, recv, k, t, MPI_CTX(ctx), &rq), &rq);
    if (n > INT_MAX) MPI_Type_free(&t);
    return s;
}

static hb_status m_reduce_scatter(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    if (n > INT_MAX) return mpi_fail(ctx, "Reduce_scatter_block (count above INT_MAX)", MPI_ERR_COUNT);
    int rank;
    MPI_Comm_rank(MPI_CTX(ctx), &rank);
    /* in place: recv is send's own block; MPI's in-place form leaves the result at the start */
    const int inplace = recv == (const char *)send + (size_t)rank * (size_t)n * (size_t)hb_cdt_size(dt);
    MPI_Request rq;
    LOST_CHECK(ctx, "Reduce_scatter_block");
    int rc = MPI_Ireduce_scatter_block(inplace ? MPI_IN_PLACE : send, inplace ? (void *)send : recv, (int)n,
                                       mpi_type(dt), mpi_op(ctx, dt, op), MPI_CTX(ctx), &rq);
    HB_TRY_QUIET_MPI(wait_req(ctx, "Reduce_scatter_block", rc, &rq));
    if (inplace && rank > 0) memmove(recv, send, (size_t)n * (size_t)hb_cdt_size(dt));
    return HB_OK;
}

static hb_status m_all_to_all(void *ctx, const void *send, const int64_t *sc, const int64_t *sd, void *recv,
                              const int64_t *rc_, const int64_t *rd, hb_cdt dt) {
    int size;
    MPI_Comm_size(MPI_CTX(ctx), &size);
    int *isc = ((mpi_ctx *)ctx)->a2a, *isd = isc + size, *irc = isd + size, *ird = irc + size;
    for (int p = 0; p < size; p++) {
        if (sc[p] > INT_MAX || sd[p] > INT_MAX || rc_[p] > INT_MAX || rd[p] > INT_MAX)
            return mpi_fail(ctx, "Alltoallv (a count or displacement above INT_MAX)", MPI_ERR_COUNT);
        isc[p] = (int)sc[p], isd[p] = (int)sd[p], irc[p] = (int)rc_[p], ird[p] = (int)rd[p];
    }
    /* in place (send == recv): MPI takes the data from recv with recv's counts */
    MPI_Request rq;
    LOST_CHECK(ctx, "Alltoallv");
    int rc = MPI_Ialltoallv(send == recv ? MPI_IN_PLACE : send, isc, isd, mpi_type(dt), recv, irc, ird, mpi_type(dt),
                            MPI_CTX(ctx), &rq);
    return wait_req(ctx, "Alltoallv", rc, &rq);
}

static hb_status m_broadcast(void *ctx, void *buf, int64_t n, hb_cdt dt, int root) {
    const size_t es = (size_t)hb_cdt_size(dt);
    for (int64_t o = 0; o < n; o += CHUNK) {
        const int k = (int)(n - o < CHUNK ? n - o : CHUNK);
        MPI_Request rq;
        LOST_CHECK(ctx, "Bcast");
        int rc = MPI_Ibcast((char *)buf + (size_t)o * es, k, mpi_type(dt), root, MPI_CTX(ctx), &rq);
        HB_TRY_QUIET_MPI(wait_req(ctx, "Bcast", rc, &rq));
    }
    return HB_OK;
}

static hb_status m_barrier(void *ctx) {
    MPI_Request rq;
    LOST_CHECK(ctx, "Barrier");
    return wait_req(ctx, "Barrier", MPI_Ibarrier(MPI_CTX(ctx), &rq), &rq);
}

static const hb_comm_ops mpi_ops = {
    .all_reduce = m_all_reduce,
    .all_gather = m_all_gather,
    .reduce_scatter = m_reduce_scatter,
    .all_to_all = m_all_to_all,
    .broadcast = m_broadcast,
    .barrier = m_barrier,
};

hb_status hb_comm_mpi_init(hb_comm *c, MPI_Comm comm, int id, hb_err *err) {
    memset(c, 0, sizeof *c);
    mpi_ctx *x = calloc(1, sizeof *x);
    if (!x) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    x->comm = comm;
    x->owner = c;
    int n = 0;
    MPI_Comm_size(comm, &n);
    if (!(x->a2a = malloc((size_t)(4 * n) * sizeof *x->a2a))) {
        free(x);
        return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    }
    MPI_Op_create(bf16_sum, 1, &x->bf16_sum);
    MPI_Op_create(bf16_max, 1, &x->bf16_max);
    MPI_Op_create(f16_sum, 1, &x->f16_sum);
    MPI_Op_create(f16_max, 1, &x->f16_max);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    c->impl = "mpi";
    c->id = id;
    c->ops = &mpi_ops;
    c->ctx = x;
    return HB_OK;
}

void hb_comm_mpi_free(hb_comm *c) {
    mpi_ctx *x = c ? c->ctx : NULL;
    if (!x) return;
    MPI_Op_free(&x->bf16_sum);
    MPI_Op_free(&x->bf16_max);
    MPI_Op_free(&x->f16_sum);
    MPI_Op_free(&x->f16_max);
    free(x->a2a);
    free(x);
    c->ctx = NULL;
}

hb_status hb_comm_nccl_bootstrap(hb_comm *c, hb_nccl_lib *lib, hb_backend *be, MPI_Comm mc, int group_id, hb_err *err) {
    int grank = 0, gsize = 1;
    MPI_Comm_rank(mc, &grank);
    MPI_Comm_size(mc, &gsize);
    struct {
        int status;
        char id[HB_NCCL_ID_BYTES];
        char msg[400];
    } b;
    memset(&b, 0, sizeof b);
    if (grank == 0) {
        hb_err e = {{0}};
        b.status = hb_nccl_unique_id(lib, b.id, &e);
        snprintf(b.msg, sizeof b.msg, "%.399s", e.msg);
    }
    MPI_Bcast(&b, (int)sizeof b, MPI_BYTE, 0, mc);
    if (b.status != HB_OK) return hb_errf(err, (hb_status)b.status, "group %d: %s", group_id, b.msg);
    return hb_comm_nccl_init(c, lib, be, b.id, gsize, grank, group_id, err);
}
