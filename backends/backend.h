/* backend.h - the ops table every backend fills (the ggml shape: function pointers + context).
 *
 * Contract
 * - Ops take tensors (tensor.h: device pointer, dtype, shape, strides, quantisation) in one
 *   parameter struct per op; the catalogue and every op's semantics are in ops.h. Tensor
 *   pointers are device pointers obtained from alloc() (plus offsets); the CPU backend's
 *   device memory is host memory.
 * - Every function returns hb_status; a failing backend writes a message to be->err.
 * - Optional members may be NULL: the public wrappers (hb_op_*) then return HB_ERR_UNSUPPORTED,
 *   so a missing op is reported, never faked.
 * - Ops are asynchronous with respect to the host on GPU backends; sync() and events order them.
 * - Layouts are row-major. Activations are f32 (a GEMM's A may also be stored in the weight
 *   dtype). Weight matrices are (N, K): out = a @ w^T, as torch.nn.Linear stores them, in
 *   f32, bf16, f16 or fp8 e4m3 with scales. Norm weights and biases are f32. The KV cache is
 *   f32, bf16, f16 or fp8 with a per-tensor scale: see attention in ops.h.
 * - Sizes and offsets are int64_t (large models overflow int). */
#ifndef HB_BACKEND_H
#define HB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../harness/status.h"
#include "dtype.h"
#include "ops.h"    // defines: hb_tensor, the op parameter structs, HB_OP_LIST

/* 2: matmul takes the activations' dtype (adt); kv_store and attention the cache's (kvt).
 * 3: ops take tensors with quantisation in one parameter struct per op (ops.h); fp8 e4m3 and
 *    e5m2 with per-tensor, per-row and block scales. */
/* 4: native_stream (the stream a collective library enqueues on, after the ops). */
#define HB_BACKEND_API_VERSION 4

typedef struct hb_event hb_event; /* opaque, backend-defined */

/* What a device is; pci_bus_id is its identity (join key with hwloc and energy libraries). */
typedef struct hb_device_info {
    char backend[16];      /* "cpu", "cuda", "hip" */
    char vendor[32];       /* "AMD", "Intel", "NVIDIA", ... */
    char name[128];        /* device/CPU model name */
    char pci_bus_id[32];   /* "0000:17:00.0"; "" for the CPU */
    char driver[64];
    char runtime[128];     /* runtime/library versions, e.g. "OpenBLAS 0.3.21 (openmp)" */
    char gemm_impl[16];    /* openblas | cublaslt | hipblaslt | rocblas | builtin */
    int64_t mem_bytes;     /* total device memory */
    int n_compute_units;   /* cores / SMs / CUs */
    int warp_size;         /* 1 on the CPU */
    int n_threads;         /* CPU threads used by the backend */
} hb_device_info;

typedef struct hb_backend_ops {
    void (*destroy)(hb_backend *be);

    /* memory */
    hb_status (*mem_info)(hb_backend *be, int64_t *free_bytes, int64_t *total_bytes);
    hb_status (*alloc)(hb_backend *be, size_t nbytes, void **ptr);
    void (*free)(hb_backend *be, void *ptr); /* free(NULL) is a no-op */
    hb_status (*upload)(hb_backend *be, void *dst, const void *host_src, size_t nbytes);
    hb_status (*download)(hb_backend *be, void *host_dst, const void *src, size_t nbytes);
    hb_status (*copy)(hb_backend *be, void *dst, const void *src, size_t nbytes);

    /* ordering and timing */
    hb_status (*sync)(hb_backend *be);
    hb_status (*event_create)(hb_backend *be, hb_event **ev);
    void (*event_destroy)(hb_backend *be, hb_event *ev);
    hb_status (*event_record)(hb_backend *be, hb_event *ev);
    /* Waits for `end`, returns end - start in seconds. */
    hb_status (*event_elapsed)(hb_backend *be, hb_event *start, hb_event *end, double *seconds);

    /* the ops of the catalogue (ops.h), in HB_OP_LIST order */
#define HB_OP_MEMBER_(name, req) HB_OP_FN(name)
    HB_OP_LIST(HB_OP_MEMBER_)
#undef HB_OP_MEMBER_
    /* optional: the vendor stream the ops run on (cudaStream_t / hipStream_t), for a
     * collective library (NCCL, RCCL: backends/comm_nccl.c) to order its calls after the ops';
     * NULL member on backends without one (CPU) */
    void *(*native_stream)(hb_backend *be);
} hb_backend_ops;

struct hb_backend {
    int api_version;               /* HB_BACKEND_API_VERSION of the code that filled ops */
    const hb_backend_ops *ops;
    void *ctx;                     /* backend-private */
    hb_device_info info;
    char err[512];                 /* message of the last failure */
};

/* ---- registry (backends/registry.c) ---- */
typedef struct hb_backend_desc {
    const char *name;              /* "cpu", "cuda", "hip" */
    /* Opens device `index` of this backend; options string may be NULL. */
    hb_status (*open)(int index, hb_backend **out, hb_err *err);
    /* Number of devices, or a negative status with the reason in err (e.g. module not built). */
    int (*count)(hb_err *err);
} hb_backend_desc;

/* Known backends, including those not built (their count() says why). */
int hb_backend_registry(const hb_backend_desc **list);
const hb_backend_desc *hb_backend_find(const char *name);
hb_status hb_backend_open(const char *name, int index, hb_backend **out, hb_err *err);
void hb_backend_close(hb_backend *be); /* NULL is a no-op */

/* ---- checked wrappers ----
 * hb_op_<name>(be, args): a NULL member -> HB_ERR_UNSUPPORTED (reported, never faked); then
 * the shared argument checks (ops.c); then the backend. HB_OP(be, name, .field = ..., ...)
 * builds the parameter struct in place from designated initializers. */
hb_status hb_op_unsupported(hb_backend *be, const char *op);
#define HB_OP_WRAPPER_(name, req)                                                          \
    static inline hb_status hb_op_##name(hb_backend *be, const hb_##name##_args *a) {      \
        if (!be->ops->name) return hb_op_unsupported(be, #name);                           \
        hb_status s_ = hb_op_check_##name(be, a);                                          \
        return s_ != HB_OK ? s_ : be->ops->name(be, a);                                    \
    }
HB_OP_LIST(HB_OP_WRAPPER_)
#undef HB_OP_WRAPPER_
#define HB_OP(be, name, ...) hb_op_##name((be), &(const hb_##name##_args){__VA_ARGS__})
/* Whether backend `be` implements op `name` (a member is filled). */
#define HB_HAS_OP(be, name) ((be)->ops->name != NULL)

#endif
