/* fake_nccl.c - a stand-in libnccl.so.2 for the tests: the NCCL 2.x entry points hetbench calls
 * (backends/comm_nccl.c), over MPI on host memory (the process has MPI initialised), so that
 * the bootstrapping, the calls made and the error paths run without a GPU.
 *
 *   FAKE_NCCL_LOG=PREFIX     every call appended to PREFIX.<world rank> as one line:
 *                            "<function> <its counts, dtype, op, root/peer> inplace=<0|1> stream=<pointer>"
 *   FAKE_NCCL_FAIL=NAME      function NAME (e.g. ncclAllReduce, ncclCommInitRank) returns
 *                            ncclSystemError (2) without doing anything (read at every call)
 *   FAKE_NCCL_VERSION=CODE   what ncclGetVersion returns (default 22105: 2.21.5)
 *
 * ncclCommInitRank splits MPI_COMM_WORLD by a hash of the unique id: every rank of the job
 * calls it at the same time (hetbench makes all groups of one size together). bf16/f16 sums
 * are taken in f32 in rank order, rounded after each addition; ncclSend/ncclRecv only between
 * ncclGroupStart and ncclGroupEnd, which runs them (MPI_Isend/Irecv, Waitall). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/dtype.h" // defines: hb_bf16_to_f32, hb_f32_to_bf16, hb_f16_to_f32, hb_f32_to_f16

typedef struct { char internal[128]; } ncclUniqueId;
typedef struct fake_comm {
    MPI_Comm comm;
    int rank, size;
} fake_comm;
typedef fake_comm *ncclComm_t;
typedef int ncclResult_t;
enum { ncclSuccess = 0, ncclSystemError = 2, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };
enum { ncclInt32 = 2, ncclFloat16 = 6, ncclFloat32 = 7, ncclFloat64 = 8, ncclBfloat16 = 9 };
enum { ncclSum = 0, ncclMax = 2 };

#define EXPORT __attribute__((visibility("default")))

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void logf_(const char *fmt, ...) {
    const char *p = getenv("FAKE_NCCL_LOG");
    if (!p || !*p) return;
    int wr = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    char path[512];
    snprintf(path, sizeof path, "%s.%d", p, wr);
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static int failing(const char *name) {
    const char *f = getenv("FAKE_NCCL_FAIL");
    return f && strcmp(f, name) == 0;
}

static size_t esize(int dt) {
    switch (dt) {
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclFloat64: return 8;
    default: return 4;
    }
}

EXPORT ncclResult_t ncclGetVersion(int *v) {
    const char *e = getenv("FAKE_NCCL_VERSION");
    *v = e && *e ? atoi(e) : 22105;
    return ncclSuccess;
}

EXPORT const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclSystemError: return "unhandled system error (fake NCCL)";
    case ncclInvalidArgument: return "invalid argument (fake NCCL)";
    case ncclInvalidUsage: return "invalid usage (fake NCCL)";
    default: return "unknown result code (fake NCCL)";
    }
}

EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static unsigned counter;
    if (failing("ncclGetUniqueId")) return ncclSystemError;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "fake-nccl pid %d counter %u", (int)getpid(), ++counter);
    logf_("ncclGetUniqueId");
    return ncclSuccess;
}

EXPORT ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (failing("ncclCommInitRank")) return ncclSystemError;
    uint32_t h = 2166136261u; /* FNV-1a of the id: the split colour */
    for (size_t i = 0; i < sizeof id.internal; i++) h = (h ^ (unsigned char)id.internal[i]) * 16777619u;
    int wr = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    fake_comm *c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    MPI_Comm_split(MPI_COMM_WORLD, (int)(h & 0x7fffffff), rank, &c->comm);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    logf_("ncclCommInitRank nranks=%d rank=%d", nranks, rank);
    if (c->size != nranks || c->rank != rank) {
        MPI_Comm_free(&c->comm);
        free(c);
        return ncclInvalidArgument;
    }
    *comm = c;
    return ncclSuccess;
}

EXPORT ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (!c) return ncclInvalidArgument;
    logf_("ncclCommDestroy");
    MPI_Comm_free(&c->comm);
    free(c);
    return ncclSuccess;
}

/* recv[i] = op over ranks (in rank order) of send[i] */
static ncclResult_t reduce(const void *send, void *recv, size_t n, int dt, int op, fake_comm *c) {
    if (dt == ncclFloat32 || dt == ncclFloat64 || dt == ncclInt32) {
        MPI_Datatype t = dt == ncclFloat32 ? MPI_FLOAT : dt == ncclFloat64 ? MPI_DOUBLE : MPI_INT32_T;
        return MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)n, t, op == ncclSum ? MPI_SUM : MPI_MAX,
                             c->comm) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
    }
    uint16_t *all = malloc(n * 2 * (size_t)c->size);
    if (!all) return ncclSystemError;
    MPI_Allgather(send, (int)(n * 2), MPI_BYTE, all, (int)(n * 2), MPI_BYTE, c->comm);
    uint16_t *out = recv;
    for (size_t i = 0; i < n; i++) {
        uint16_t acc = all[i];
        for (int r = 1; r < c->size; r++) {
            const uint16_t b = all[(size_t)r * n + i];
            const float x = dt == ncclBfloat16 ? hb_bf16_to_f32(acc) : hb_f16_to_f32(acc);
            const float y = dt == ncclBfloat16 ? hb_bf16_to_f32(b) : hb_f16_to_f32(b);
            if (op == ncclSum) acc = dt == ncclBfloat16 ? hb_f32_to_bf16(x + y) : hb_f32_to_f16(x + y);
            else if (y > x) acc = b;
        }
        out[i] = acc;
    }
    free(all);
    return ncclSuccess;
}

EXPORT ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, int dt, int op, ncclComm_t c, void *stream) {
    if (failing("ncclAllReduce")) return ncclSystemError;
    logf_("ncclAllReduce count=%zu dt=%d op=%d inplace=%d stream=%p", count, dt, op, send == recv, stream);
    return reduce(send, recv, count, dt, op, c);
}

EXPORT ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, int dt, ncclComm_t c, void *stream) {
    if (failing("ncclAllGather")) return ncclSystemError;
    const size_t nb = count * esize(dt);
    const int inplace = send == (const char *)recv + (size_t)c->rank * nb;
    logf_("ncclAllGather sendcount=%zu dt=%d inplace=%d stream=%p", count, dt, inplace, stream);
    return MPI_Allgather(inplace ? MPI_IN_PLACE : send, (int)nb, MPI_BYTE, recv, (int)nb, MPI_BYTE, c->comm) == MPI_SUCCESS
               ? ncclSuccess
               : ncclSystemError;
}

EXPORT ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, int dt, int op, ncclComm_t c,
                                      void *stream) {
    if (failing("ncclReduceScatter")) return ncclSystemError;
    const size_t es = esize(dt), n = count * (size_t)c->size;
    const int inplace = recv == (const char *)send + (size_t)c->rank * count * es;
    logf_("ncclReduceScatter recvcount=%zu dt=%d op=%d inplace=%d stream=%p", count, dt, op, inplace, stream);
    char *tmp = malloc(n * es);
    if (!tmp) return ncclSystemError;
    memcpy(tmp, send, n * es);
    ncclResult_t r = reduce(tmp, tmp, n, dt, op, c);
    if (r == ncclSuccess) memmove(recv, tmp + (size_t)c->rank * count * es, count * es);
    free(tmp);
    return r;
}

EXPORT ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, int dt, int root, ncclComm_t c,
                                  void *stream) {
    if (failing("ncclBroadcast")) return ncclSystemError;
    logf_("ncclBroadcast count=%zu dt=%d root=%d inplace=%d stream=%p", count, dt, root, send == recv, stream);
    if (c->rank == root && send != recv) memcpy(recv, send, count * esize(dt));
    return MPI_Bcast(recv, (int)(count * esize(dt)), MPI_BYTE, root, c->comm) == MPI_SUCCESS ? ncclSuccess
                                                                                            : ncclSystemError;
}

/* ncclSend / ncclRecv, queued between ncclGroupStart and ncclGroupEnd */
enum { MAX_P2P = 256 };
static struct {
    int depth, n;
    struct { int send; void *buf; size_t nbytes; int peer; fake_comm *c; } op[MAX_P2P];
} grp;

EXPORT ncclResult_t ncclGroupStart(void) {
    grp.depth++;
    return ncclSuccess;
}

static ncclResult_t queue(int send, const void *buf, size_t count, int dt, int peer, ncclComm_t c, void *stream) {
    logf_("%s count=%zu dt=%d peer=%d stream=%p", send ? "ncclSend" : "ncclRecv", count, dt, peer, stream);
    if (grp.depth == 0 || grp.n == MAX_P2P || peer < 0 || peer >= c->size) return ncclInvalidUsage;
    grp.op[grp.n].send = send;
    grp.op[grp.n].buf = (void *)buf;
    grp.op[grp.n].nbytes = count * esize(dt);
    grp.op[grp.n].peer = peer;
    grp.op[grp.n].c = c;
    grp.n++;
    return ncclSuccess;
}

EXPORT ncclResult_t ncclSend(const void *buf, size_t count, int dt, int peer, ncclComm_t c, void *stream) {
    if (failing("ncclSend")) return ncclSystemError;
    return queue(1, buf, count, dt, peer, c, stream);
}

EXPORT ncclResult_t ncclRecv(void *buf, size_t count, int dt, int peer, ncclComm_t c, void *stream) {
    if (failing("ncclRecv")) return ncclSystemError;
    return queue(0, buf, count, dt, peer, c, stream);
}

EXPORT ncclResult_t ncclGroupEnd(void) {
    if (grp.depth == 0) return ncclInvalidUsage;
    if (--grp.depth > 0) return ncclSuccess;
    MPI_Request rq[MAX_P2P];
    for (int i = 0; i < grp.n; i++) {
        if (grp.op[i].send)
            MPI_Isend(grp.op[i].buf, (int)grp.op[i].nbytes, MPI_BYTE, grp.op[i].peer, 77, grp.op[i].c->comm, &rq[i]);
        else
            MPI_Irecv(grp.op[i].buf, (int)grp.op[i].nbytes, MPI_BYTE, grp.op[i].peer, 77, grp.op[i].c->comm, &rq[i]);
    }
    int rc = MPI_Waitall(grp.n, rq, MPI_STATUSES_IGNORE);
    logf_("ncclGroupEnd ops=%d", grp.n);
    grp.n = 0;
    return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
