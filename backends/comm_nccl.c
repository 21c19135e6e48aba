/* comm_nccl.c - hb_comm over NCCL / RCCL, dlopen'ed (see comm_nccl.h). */
#include "comm_nccl.h"

#include <dlfcn.h> // defines: dlopen, dlsym, dlerror, dlclose
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the NCCL 2.x API subset (nccl.h), declared here: no SDK needed ---- */
typedef int nccl_result;   /* ncclResult_t: ncclSuccess = 0 */
typedef void *nccl_comm;   /* ncclComm_t */
typedef void *nccl_stream; /* cudaStream_t / hipStream_t */
typedef struct { char internal[HB_NCCL_ID_BYTES]; } nccl_id;
enum { NCCL_INT32 = 2, NCCL_FLOAT16 = 6, NCCL_FLOAT32 = 7, NCCL_FLOAT64 = 8, NCCL_BFLOAT16 = 9 }; /* ncclDataType_t */
enum { NCCL_SUM = 0, NCCL_MAX = 2 };                                                             /* ncclRedOp_t */

struct hb_nccl_lib {
    void *dl;
    char impl[8];       /* "nccl", "rccl" */
    char version[160];
    nccl_result (*get_version)(int *);
    nccl_result (*get_unique_id)(nccl_id *);
    nccl_result (*comm_init_rank)(nccl_comm *, int, nccl_id, int);
    nccl_result (*comm_destroy)(nccl_comm);
    const char *(*error_string)(nccl_result);
    nccl_result (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm, nccl_stream);
    nccl_result (*all_gather)(const void *, void *, size_t, int, nccl_comm, nccl_stream);
    nccl_result (*reduce_scatter)(const void *, void *, size_t, int, int, nccl_comm, nccl_stream);
    nccl_result (*broadcast)(const void *, void *, size_t, int, int, nccl_comm, nccl_stream);
    nccl_result (*send)(const void *, size_t, int, int, nccl_comm, nccl_stream);
    nccl_result (*recv)(void *, size_t, int, int, nccl_comm, nccl_stream);
    nccl_result (*group_start)(void);
    nccl_result (*group_end)(void);
};

hb_status hb_nccl_load(const char *backend, hb_nccl_lib **out, hb_err *err) {
    *out = NULL;
    const int hip = strcmp(backend, "hip") == 0;
    if (!hip && strcmp(backend, "cuda") != 0)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "backend '%s' has no collective library (NCCL: cuda, RCCL: hip)",
                       backend);
    const char *env = getenv(hip ? "HETBENCH_RCCL_LIBRARY" : "HETBENCH_NCCL_LIBRARY");
    const char *path = env && *env ? env : hip ? "librccl.so.1" : "libnccl.so.2";
    hb_nccl_lib *l = calloc(1, sizeof *l);
    if (!l) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    snprintf(l->impl, sizeof l->impl, "%s", hip ? "rccl" : "nccl");
    dlerror();
    l->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        const char *e = dlerror();
        free(l);
        return hb_errf(err, HB_ERR_UNSUPPORTED, "cannot load %s %s: %s (set %s to its path)", hip ? "RCCL" : "NCCL", path,
                       e ? e : "dlopen failed", hip ? "HETBENCH_RCCL_LIBRARY" : "HETBENCH_NCCL_LIBRARY");
    }
#define SYM_(field, name)                                                                                   \
    do {                                                                                                    \
        void *p_ = dlsym(l->dl, name);                                                                      \
        if (!p_) {                                                                                          \
            dlclose(l->dl);                                                                                 \
            free(l);                                                                                        \
            return hb_errf(err, HB_ERR_UNSUPPORTED, "%s has no %s (not an NCCL 2.x library)", path, name); \
        }                                                                                                   \
        memcpy(&l->field, &p_, sizeof p_); /* object pointer -> function pointer, POSIX style */           \
    } while (0)
    SYM_(get_version, "ncclGetVersion");
    SYM_(get_unique_id, "ncclGetUniqueId");
    SYM_(comm_init_rank, "ncclCommInitRank");
    SYM_(comm_destroy, "ncclCommDestroy");
    SYM_(error_string, "ncclGetErrorString");
    SYM_(all_reduce, "ncclAllReduce");
    SYM_(all_gather, "ncclAllGather");
    SYM_(reduce_scatter, "ncclReduceScatter");
    SYM_(broadcast, "ncclBroadcast");
    SYM_(send, "ncclSend");
    SYM_(recv, "ncclRecv");
    SYM_(group_start, "ncclGroupStart");
    SYM_(group_end, "ncclGroupEnd");
#undef SYM_
    int v = 0;
    nccl_result r = l->get_version(&v);
    if (r != 0) {
        hb_errf(err, HB_ERR_UNSUPPORTED, "%s: ncclGetVersion: %s", path, l->error_string(r));
        dlclose(l->dl);
        free(l);
        return HB_ERR_UNSUPPORTED;
    }
    /* NCCL_VERSION(X, Y, Z): X 10000 + Y 100 + Z since 2.9, X 1000 + Y 100 + Z before */
    const int major = v >= 10000 ? v / 10000 : v / 1000, minor = v >= 10000 ? v % 10000 / 100 : v % 1000 / 100;
    snprintf(l->version, sizeof l->version, "%s %d.%d.%d (%.120s)", hip ? "RCCL" : "NCCL", major, minor, v % 100, path);
    *out = l;
    return HB_OK;
}

/* The library itself stays loaded (no dlclose): NCCL can leave threads behind (a failed
 * ncclCommInitRank's included) that crash if their code is unmapped; the process ends soon. */
void hb_nccl_unload(hb_nccl_lib *l) {
    free(l);
}

const char *hb_nccl_version(const hb_nccl_lib *l) { return l->version; }
const char *hb_nccl_impl(const hb_nccl_lib *l) { return l->impl; }

hb_status hb_nccl_unique_id(hb_nccl_lib *l, void *id, hb_err *err) {
    nccl_id u;
    memset(&u, 0, sizeof u);
    nccl_result r = l->get_unique_id(&u);
    if (r != 0) return hb_errf(err, HB_ERR_BACKEND, "%s ncclGetUniqueId: %s", l->impl, l->error_string(r));
    memcpy(id, u.internal, sizeof u.internal);
    return HB_OK;
}

/* ---- the comm ---- */
typedef struct nccl_ctx {
    hb_nccl_lib *lib;
    hb_comm *owner;
    hb_backend *be;
    nccl_comm comm;
    nccl_stream stream;
    int rank, size;
    void *one;                /* device int32 for the barrier */
    void *scratch;            /* device: in-place all_to_all's copy of the send data */
    size_t scratch_bytes;
} nccl_ctx;

static hb_status fail(nccl_ctx *x, const char *what, nccl_result r) {
    snprintf(x->owner->err, sizeof x->owner->err, "%s %s: %s", x->lib->impl, what, x->lib->error_string(r));
    return HB_ERR_BACKEND;
}

static int nccl_type(hb_cdt t) {
    switch (t) {
    case HB_CDT_F32: return NCCL_FLOAT32;
    case HB_CDT_BF16: return NCCL_BFLOAT16;
    case HB_CDT_F16: return NCCL_FLOAT16;
    case HB_CDT_F64: return NCCL_FLOAT64;
    default: return NCCL_INT32;
    }
}

/* the ops' inputs are ready (before) and the collective done (after): a sync of the stream */
static hb_status ready(nccl_ctx *x) {
    hb_status s = x->be->ops->sync(x->be);
    if (s != HB_OK) snprintf(x->owner->err, sizeof x->owner->err, "%s: stream sync: %.200s", x->lib->impl, x->be->err);
    return s;
}

static hb_status finish(nccl_ctx *x, const char *what, nccl_result r) {
    if (r != 0) return fail(x, what, r);
    return ready(x);
}

static hb_status n_all_reduce(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    nccl_ctx *x = ctx;
    HB_TRY(ready(x));
    return finish(x, "ncclAllReduce", x->lib->all_reduce(send, recv, (size_t)n, nccl_type(dt),
                                                         op == HB_REDOP_SUM ? NCCL_SUM : NCCL_MAX, x->comm, x->stream));
}

/* in place: send == recv + rank n, NCCL's own in-place form */
static hb_status n_all_gather(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt) {
    nccl_ctx *x = ctx;
    HB_TRY(ready(x));
    return finish(x, "ncclAllGather", x->lib->all_gather(send, recv, (size_t)n, nccl_type(dt), x->comm, x->stream));
}

/* in place: recv == send + rank n, NCCL's own in-place form */
static hb_status n_reduce_scatter(void *ctx, const void *send, void *recv, int64_t n, hb_cdt dt, hb_redop op) {
    nccl_ctx *x = ctx;
    HB_TRY(ready(x));
    return finish(x, "ncclReduceScatter",
                  x->lib->reduce_scatter(send, recv, (size_t)n, nccl_type(dt), op == HB_REDOP_SUM ? NCCL_SUM : NCCL_MAX,
                                         x->comm, x->stream));
}

/* ncclSend / ncclRecv to and from every rank in one group call; in place (send == recv), the
 * send data is copied into a scratch buffer first (NCCL has no in-place all_to_all) */
static hb_status n_all_to_all(void *ctx, const void *send, const int64_t *sc, const int64_t *sd, void *recv,
                              const int64_t *rc, const int64_t *rd, hb_cdt dt) {
    nccl_ctx *x = ctx;
    const size_t es = (size_t)hb_cdt_size(dt);
    HB_TRY(ready(x));
    if (send == recv) {
        size_t nb = 0;
        for (int p = 0; p < x->size; p++)
            if ((size_t)(sd[p] + sc[p]) * es > nb) nb = (size_t)(sd[p] + sc[p]) * es;
        if (nb > x->scratch_bytes) {
            x->be->ops->free(x->be, x->scratch);
            x->scratch = NULL;
            x->scratch_bytes = 0;
            if (x->be->ops->alloc(x->be, nb, &x->scratch) != HB_OK) {
                snprintf(x->owner->err, sizeof x->owner->err, "%s all_to_all: scratch of %zu bytes: %.160s",
                         x->lib->impl, nb, x->be->err);
                return HB_ERR_NOMEM;
            }
            x->scratch_bytes = nb;
        }
        if (nb > 0 && x->be->ops->copy(x->be, x->scratch, send, nb) != HB_OK) {
            snprintf(x->owner->err, sizeof x->owner->err, "%s all_to_all: copy: %.200s", x->lib->impl, x->be->err);
            return HB_ERR_BACKEND;
        }
        send = x->scratch;
    }
    nccl_result r = x->lib->group_start();
    if (r != 0) return fail(x, "ncclGroupStart", r);
    for (int p = 0; p < x->size && r == 0; p++) {
        if (sc[p] > 0) r = x->lib->send((const char *)send + (size_t)sd[p] * es, (size_t)sc[p], nccl_type(dt), p, x->comm, x->stream);
        if (r == 0 && rc[p] > 0)
            r = x->lib->recv((char *)recv + (size_t)rd[p] * es, (size_t)rc[p], nccl_type(dt), p, x->comm, x->stream);
    }
    nccl_result e = x->lib->group_end(); /* closes the group even after a failed call */
    if (r != 0) return fail(x, "ncclSend/ncclRecv", r);
    return finish(x, "ncclGroupEnd", e);
}

static hb_status n_broadcast(void *ctx, void *buf, int64_t n, hb_cdt dt, int root) {
    nccl_ctx *x = ctx;
    HB_TRY(ready(x));
    return finish(x, "ncclBroadcast", x->lib->broadcast(buf, buf, (size_t)n, nccl_type(dt), root, x->comm, x->stream));
}

/* NCCL has no barrier: an all-reduce of one int32 (complete on every rank when it returns) */
static hb_status n_barrier(void *ctx) {
    nccl_ctx *x = ctx;
    HB_TRY(ready(x));
    return finish(x, "ncclAllReduce (barrier)",
                  x->lib->all_reduce(x->one, x->one, 1, NCCL_INT32, NCCL_SUM, x->comm, x->stream));
}

static const hb_comm_ops nccl_ops = {
    .all_reduce = n_all_reduce,
    .all_gather = n_all_gather,
    .reduce_scatter = n_reduce_scatter,
    .all_to_all = n_all_to_all,
    .broadcast = n_broadcast,
    .barrier = n_barrier,
};

hb_status hb_comm_nccl_init(hb_comm *c, hb_nccl_lib *lib, hb_backend *be, const void *id, int nranks, int rank,
                            int group_id, hb_err *err) {
    memset(c, 0, sizeof *c);
    if (!be->ops->native_stream)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "%s: backend '%s' has no native stream for %s", lib->impl,
                       be->info.backend, lib->impl);
    nccl_ctx *x = calloc(1, sizeof *x);
    if (!x) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    x->lib = lib;
    x->owner = c;
    x->be = be;
    x->stream = be->ops->native_stream(be);
    x->rank = rank;
    x->size = nranks;
    if (be->ops->alloc(be, 256, &x->one) != HB_OK) {
        free(x);
        return hb_errf(err, HB_ERR_NOMEM, "%s: a 256-byte device buffer: %s", lib->impl, be->err);
    }
    nccl_id u;
    memcpy(u.internal, id, sizeof u.internal);
    nccl_result r = lib->comm_init_rank(&x->comm, nranks, u, rank);
    if (r != 0) {
        be->ops->free(be, x->one);
        free(x);
        return hb_errf(err, HB_ERR_BACKEND, "%s ncclCommInitRank (rank %d of %d, group %d): %s", lib->impl, rank, nranks,
                       group_id, lib->error_string(r));
    }
    c->impl = lib->impl;
    c->id = group_id;
    c->rank = rank;
    c->size = nranks;
    c->ops = &nccl_ops;
    c->ctx = x;
    return HB_OK;
}

void hb_comm_nccl_free(hb_comm *c) {
    nccl_ctx *x = c ? c->ctx : NULL;
    if (!x) return;
    x->lib->comm_destroy(x->comm);
    x->be->ops->free(x->be, x->one);
    x->be->ops->free(x->be, x->scratch);
    free(x);
    c->ctx = NULL;
}
