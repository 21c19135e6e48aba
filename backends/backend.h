/* backend.h - the ops table every backend fills (the ggml shape: function pointers + context).
 *
 * Contract
 * - Pointers passed to ops are device pointers obtained from alloc() (plus offsets); the CPU
 *   backend's device memory is host memory.
 * - Every function returns hb_status; a failing backend writes a message to be->err.
 * - Optional members may be NULL: the public wrappers (hb_op_*) then return HB_ERR_UNSUPPORTED,
 *   so a missing op is reported, never faked.
 * - Ops are asynchronous with respect to the host on GPU backends; sync() and events order them.
 * - Layouts are row-major. Activations are f32 (a GEMM's A may also be stored in the weight
 *   dtype: matmul's `adt`). Weight matrices are stored in `wdt` (f32, bf16, f16, fp8 e4m3 where
 *   supported) and are (N, K): out = a @ w^T, as torch.nn.Linear stores them. Norm weights and
 *   biases are f32. The KV cache is stored in `kvt` (f32, bf16, f16): see attention.
 * - Sizes and offsets are int64_t (large models overflow int). */
#ifndef HB_BACKEND_H
#define HB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../harness/status.h"
#include "dtype.h"

/* 2: matmul takes the activations' dtype (adt); kv_store and attention the cache's (kvt). */
#define HB_BACKEND_API_VERSION 2

typedef struct hb_backend hb_backend;
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

/* Strided batched f32 GEMM, row-major: C_i = alpha * op(A_i) @ op(B_i) + beta * C_i,
 * op(A_i) is (M, K), op(B_i) is (K, N), i in [0, batch). */
typedef struct hb_gemm_batched {
    int trans_a, trans_b;
    int64_t m, n, k, batch;
    float alpha, beta;
    const float *a; int64_t lda, stride_a;
    const float *b; int64_t ldb, stride_b;
    float *c; int64_t ldc, stride_c;
} hb_gemm_batched;

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

    /* generators: dst[i] = cast(offset + scale * hb_rng_pm1(seed, i)) */
    hb_status (*fill_random)(hb_backend *be, void *dst, hb_dtype dt, int64_t n, uint64_t seed,
                             float scale, float offset);
    /* dst[i] = hb_rng_u64(seed, i) % vocab */
    hb_status (*fill_tokens)(hb_backend *be, int32_t *dst, int64_t n, uint64_t seed, int64_t vocab);
    hb_status (*convert)(hb_backend *be, void *dst, hb_dtype dst_dt, const void *src, hb_dtype src_dt,
                         int64_t n);

    /* out (B*T, C) = wte[tokens] (+ wpe[pos0 + t] if wpe) */
    hb_status (*embedding)(hb_backend *be, float *out, const int32_t *tokens, const void *wte,
                           const void *wpe, hb_dtype wdt, int64_t B, int64_t T, int64_t pos0,
                           int64_t C);
    /* out (N, C) = in / rms(in) * w */
    hb_status (*rmsnorm)(hb_backend *be, float *out, const float *in, const float *w, int64_t N,
                         int64_t C, float eps);
    /* out (N, C) = (in - mean) / std * w + b */
    hb_status (*layernorm)(hb_backend *be, float *out, const float *in, const float *w,
                           const float *b, int64_t N, int64_t C, float eps);
    /* out[m, n] = beta * out[m, n] + sum_k a[m, k] * w[n, k] (+ bias[n]);
     * a (M, K) rows lda apart stored in adt, out (f32) rows ldo apart, w (N, K) contiguous in wdt.
     * adt is HB_F32 (a bf16/f16 GEMM then rounds a to wdt first, an fp8 one quantises it with
     * a per-tensor scale amax/448) or wdt itself (a GEMM of two wdt operands, scales 1: the
     * gemm workload, which measures the GEMM alone). Accumulation in f32. */
    hb_status (*matmul)(hb_backend *be, float *out, int64_t ldo, const void *a, int64_t lda,
                        hb_dtype adt, const void *w, hb_dtype wdt, const float *bias, int64_t M,
                        int64_t N, int64_t K, float beta);
    hb_status (*matmul_batched)(hb_backend *be, const hb_gemm_batched *g);
    /* In place on x (B*T rows, ldx apart; H heads of D at the start of each row): rotate-half
     * RoPE (GPT-NeoX / Hugging Face Llama convention) at positions pos0 + t. */
    hb_status (*rope)(hb_backend *be, float *x, int64_t ldx, int64_t B, int64_t T, int64_t pos0,
                      int64_t H, int64_t D, float theta);
    /* Caches are (B, S, Hkv, D) in kvt (f32, bf16, f16); k and v are f32 (B*T rows, ld apart,
     * Hkv*D each), rounded to kvt (to nearest even); writes positions pos0..pos0+T-1. */
    hb_status (*kv_store)(hb_backend *be, void *k_cache, void *v_cache, hb_dtype kvt,
                          const float *k, const float *v, int64_t ld, int64_t B, int64_t T,
                          int64_t pos0, int64_t Hkv, int64_t D, int64_t S);
    /* Causal grouped-query attention over the cache: query t of batch b (position pos0 + t)
     * attends to cache positions 0..pos0+t; head h uses kv head h / (Hq / Hkv);
     * scale 1/sqrt(D). q rows ldq apart, out rows ldo apart, Hq*D each, f32.
     * kvt = f32: everything f32. kvt = bf16/f16 (FlashAttention's precision): both products
     * take operands in kvt - q is rounded to kvt, and so are the softmax numerators
     * p = exp(s - max) before p @ v (the max may be a running one: GPU kernels round p
     * relative to the max seen so far, within kvt's rounding of the reference); the sums, the
     * softmax normaliser (of the unrounded p) and the output are f32. */
    hb_status (*attention)(hb_backend *be, float *out, int64_t ldo, const float *q, int64_t ldq,
                           const void *k_cache, const void *v_cache, hb_dtype kvt, int64_t B,
                           int64_t T, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t D,
                           int64_t S);
    /* out (N, F) = silu(in[:, :F]) * in[:, F:], in (N, 2F) */
    hb_status (*swiglu)(hb_backend *be, float *out, const float *in, int64_t N, int64_t F);
    /* out = gelu_tanh(in) */
    hb_status (*gelu)(hb_backend *be, float *out, const float *in, int64_t n);
    /* out = a + s * b (residual add with s = 1; STREAM triad) */
    hb_status (*add)(hb_backend *be, float *out, const float *a, const float *b, float s, int64_t n);
    /* row-wise softmax, (rows, cols) */
    hb_status (*softmax)(hb_backend *be, float *out, const float *in, int64_t rows, int64_t cols);
    /* out[r] = index of the max of row r (the lowest index on ties); rows ld apart */
    hb_status (*argmax)(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
                        int64_t cols);
    /* temperature sampling with u = hb_rng_unit(seed, step * rows + r); temperature <= 0 is argmax */
    hb_status (*sample)(hb_backend *be, int32_t *out, const float *logits, int64_t ld, int64_t rows,
                        int64_t cols, float temperature, uint64_t seed, uint64_t step);
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

/* ---- checked wrappers: NULL op -> HB_ERR_UNSUPPORTED ---- */
#define HB_OP(be, op, ...) \
    ((be)->ops->op ? (be)->ops->op((be), __VA_ARGS__) : hb_op_unsupported((be), #op))
hb_status hb_op_unsupported(hb_backend *be, const char *op);

#endif
