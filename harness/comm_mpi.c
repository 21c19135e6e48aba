/* comm_mpi.c - hb_comm over MPI (see comm_mpi.h). Counts above INT_MAX travel in chunks of a
 * contiguous datatype where the collective allows it; all_to_all uses MPI_Alltoallv with int
 * counts (refused above INT_MAX elements per peer). */
#include "comm_mpi.h"

#include <limits.h>
#include <stdio.h>
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
} mpi_ctx;

static hb_status mpi_fail(void *ctx, const char *what, int rc) {
    hb_comm *c = ((mpi_ctx *)ctx)->owner;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    snprintf(c->err, sizeof c->err, "MPI %s: %.200s", what, msg);
    return HB_ERR_BACKEND;
}

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
        int rc = MPI_Allreduce(s, r, k, mpi_type(dt), mpi_op(ctx, dt, op), MPI_CTX(ctx));
        if (rc != MPI_SUCCESS) return mpi_fail(ctx, "Allreduce", rc);
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
    int rc = MPI_Allgather(inplace ? MPI_IN_PLACE : send, k, t, recv, k, t, MPI_CTX(ctx));
    if (n > INT_MAX) MPI_Type_free(&t);
    return rc == MPI_SUCCESS ? HB_OK : mpi_fail(ctx, "Allgather", rc);
}

static hb_status m_reduce_scatter(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    if (n > INT_MAX) return mpi_fail(ctx, "Reduce_scatter_block (count above INT_MAX)", MPI_ERR_COUNT);
    int rank;
    MPI_Comm_rank(MPI_CTX(ctx), &rank);
    /* in place: recv is send's own block; MPI's in-place form leaves the result at the start */
    const int inplace = recv == (const char *)send + (size_t)rank * (size_t)n * (size_t)hb_cdt_size(dt);
    int rc = MPI_Reduce_scatter_block(inplace ? MPI_IN_PLACE : send, inplace ? (void *)send : recv, (int)n,
                                      mpi_type(dt), mpi_op(ctx, dt, op), MPI_CTX(ctx));
    if (rc != MPI_SUCCESS) return mpi_fail(ctx, "Reduce_scatter_block", rc);
    if (inplace && rank > 0) memmove(recv, send, (size_t)n * (size_t)hb_cdt_size(dt));
    return HB_OK;
}

static hb_status m_all_to_all(void *ctx, const void *send, const int64_t *sc, const int64_t *sd, void *recv,
                              const int64_t *rc_, const int64_t *rd, hb_cdt dt) {
    int size;
    MPI_Comm_size(MPI_CTX(ctx), &size);
    int isc[size], isd[size], irc[size], ird[size];
    for (int p = 0; p < size; p++) {
        if (sc[p] > INT_MAX || sd[p] > INT_MAX || rc_[p] > INT_MAX || rd[p] > INT_MAX)
            return mpi_fail(ctx, "Alltoallv (a count or displacement above INT_MAX)", MPI_ERR_COUNT);
        isc[p] = (int)sc[p], isd[p] = (int)sd[p], irc[p] = (int)rc_[p], ird[p] = (int)rd[p];
    }
    /* in place (send == recv): MPI takes the data from recv with recv's counts */
    int rc = MPI_Alltoallv(send == recv ? MPI_IN_PLACE : send, isc, isd, mpi_type(dt), recv, irc, ird, mpi_type(dt),
                           MPI_CTX(ctx));
    return rc == MPI_SUCCESS ? HB_OK : mpi_fail(ctx, "Alltoallv", rc);
}

static hb_status m_broadcast(void *ctx, void *buf, int64_t n, hb_cdt dt, int root) {
    const size_t es = (size_t)hb_cdt_size(dt);
    for (int64_t o = 0; o < n; o += CHUNK) {
        const int k = (int)(n - o < CHUNK ? n - o : CHUNK);
        int rc = MPI_Bcast((char *)buf + (size_t)o * es, k, mpi_type(dt), root, MPI_CTX(ctx));
        if (rc != MPI_SUCCESS) return mpi_fail(ctx, "Bcast", rc);
    }
    return HB_OK;
}

static hb_status m_barrier(void *ctx) {
    int rc = MPI_Barrier(MPI_CTX(ctx));
    return rc == MPI_SUCCESS ? HB_OK : mpi_fail(ctx, "Barrier", rc);
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
    free(x);
    c->ctx = NULL;
}
