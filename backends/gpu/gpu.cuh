/* gpu.cuh - private interface of the GPU backend (backends/gpu/), compiled as CUDA (nvcc) or
 * as HIP (clang) from the same files.
 *
 * Three files, llm.c's split (kernel -> launcher -> op):
 *   gpu_backend.cu  device, memory, events, the ops table, the module/registry entry points
 *   gpu_ops.cu      every op but the GEMMs: generators, casts, norms, rope, attention, ...
 *   gpu_gemm.cu     matmul / matmul_batched: GEMV for decode, cuBLASLt/hipBLASLt/rocBLAS,
 *                   and the built-in tiled GEMM used where no vendor BLAS is available
 * Everything but the extern "C" entry points lives in namespace HB_GPU_NS, so the CUDA and the
 * HIP objects can be linked into one program (HB_BACKEND_DL=OFF) without clashes.
 *
 * Semantics are those of the CPU backend (backends/cpu/cpu_ops.c) op for op; where the GPU
 * computes differently (parallel reductions, FMA) the results agree within the per-dtype bounds
 * of `hetbench verify`. Generators and casts are bit-exact: they run the same HB_HOSTDEV
 * functions of dtype.h / fp8.h as the CPU. */
#ifndef HB_GPU_CUH
#define HB_GPU_CUH

#define HB_HOSTDEV __host__ __device__

#if defined(HB_GPU_HIP)
#include "vendor/hip.h"  // defines: the HIP spellings of the CUDA names used here
#elif defined(HB_GPU_CUDA)
#include "vendor/cuda.h" // defines: cuda_runtime.h, cublasLt.h
#else
#error "compile backends/gpu with -DHB_GPU_CUDA or -DHB_GPU_HIP"
#endif

#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "../backend.h" // defines: hb_backend, hb_backend_ops, hb_gemm_batched, hb_status, dtype.h
#include "fp8.h"        // defines: hb_e4m3_to_f32, hb_f32_to_e4m3
}

namespace HB_GPU_NS {

/* ---- context ---- */

enum gemm_impl { GEMM_BUILTIN = 0, GEMM_LT = 1, GEMM_ROCBLAS = 2 };

struct lt_cache; /* gpu_gemm.cu: heuristic results of recent matmul shapes */

/* Backend-private state (be->ctx). Used by one host thread at a time, like the stream it owns:
 * scratch buffers are reused by consecutive ops in stream order, so they need no lock. */
struct gpu_ctx {
    int device;
    cudaStream_t stream;
    int warp_size;          /* 32 on NVIDIA, 64 on CDNA, 32 on RDNA: from the device */
    int n_sm;               /* SMs / CUs */
    int cc_major, cc_minor; /* CUDA compute capability; on HIP the gfx major/minor */
    size_t smem_optin;      /* largest dynamic shared memory per block (opt-in) */
    int fp8_gemm;           /* fp8 e4m3 GEMMs available (sm_89+ with cuBLASLt) */
    int attn_simt;          /* HETBENCH_GPU_ATTN=simt at open: no tensor-core attention */
    gemm_impl gemm;

    void *scratch;          /* cast of activations for vendor GEMMs (bf16/f16/fp8) */
    size_t scratch_bytes;
    float *a32;             /* f32 copy of a bf16/f16/fp8 matmul A for the GEMV/built-in GEMM */
    size_t a32_bytes;
    float *att_part;        /* attention split-K partials */
    size_t att_part_bytes;
    float *rope_tab;        /* rope cos/sin table */
    size_t rope_tab_bytes;
    float *fp8_scale;       /* device: [0] amax bits of the activations, [1] their scale,
                               [2] 1.0f (the scale of an A already stored in e4m3) */

    void *lt;               /* cublasLtHandle_t / hipblasLtHandle_t / rocblas_handle, or NULL */
    void *workspace;        /* vendor GEMM workspace */
    size_t workspace_bytes;
    lt_cache *cache;
};

static inline gpu_ctx *ctx_of(hb_backend *be) { return (gpu_ctx *)be->ctx; }

/* ---- errors: a message in be->err, a status up ---- */

hb_status fail(hb_backend *be, hb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Translates a runtime error (clears it where it is not sticky). */
hb_status fail_rt(hb_backend *be, cudaError_t e, const char *what, const char *file, int line);

#define GPU_TRY(be, call)                                                    \
    do {                                                                     \
        cudaError_t gpu_e_ = (call);                                         \
        if (gpu_e_ != cudaSuccess)                                           \
            return fail_rt((be), gpu_e_, #call, __FILE__, __LINE__);         \
    } while (0)

/* HB_TRY without its trace: status.c's hb_trace is not part of a loadable module, which must
 * resolve every symbol on its own. */
#define TRY(expr)                                                            \
    do {                                                                     \
        hb_status try_s_ = (expr);                                           \
        if (try_s_ != HB_OK) return try_s_;                                  \
    } while (0)

/* After a kernel launch: launch errors (bad configuration, no kernel image for the device). */
#define LAUNCH_CHECK(be, name) GPU_TRY(be, cudaGetLastError())

/* Makes the backend's device current for this host thread (cheap when it already is). */
#define GPU_ENTER(be) GPU_TRY(be, cudaSetDevice(ctx_of(be)->device))

/* Grows a device buffer to at least `need` bytes; waits for the stream first, since a previous
 * op may still read the old buffer. */
hb_status ensure_buffer(hb_backend *be, void **buf, size_t *bytes, size_t need);

/* Grid size for a grid-stride loop over n items with `threads` per block. */
static inline unsigned grid_for(const gpu_ctx *c, int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    int64_t cap = (int64_t)c->n_sm * 32;
    if (blocks > cap) blocks = cap;
    return (unsigned)(blocks > 0 ? blocks : 1);
}

static inline int is_aligned(const void *p, size_t a) { return ((uintptr_t)p % a) == 0; }

const char *dtype_name(hb_dtype dt);

/* ---- device helpers ---- */

/* f16 -> f32, exact for every pattern (branch-free selects, no table, no loop). */
static __device__ __forceinline__ float f16_bits_to_f32(uint32_t h) {
    const uint32_t sign = (h & 0x8000u) << 16, e = h & 0x7c00u, m = h & 0x3ffu;
    float sub = (float)m * 5.9604644775390625e-8f; /* m * 2^-24: exact */
    uint32_t bits = e == 0x7c00u ? (0x7f800000u | (m << 13)) : (((h & 0x7fffu) << 13) + 0x38000000u);
    float r = e == 0 ? sub : __uint_as_float(bits);
    return __uint_as_float(__float_as_uint(r) | sign);
}

/* Element i of a weight tensor in storage dtype DT, as f32. */
template <int DT>
static __device__ __forceinline__ float ld_w(const void *p, int64_t i) {
    if (DT == HB_F32) return ((const float *)p)[i];
    if (DT == HB_BF16) return __uint_as_float((uint32_t)((const uint16_t *)p)[i] << 16);
    if (DT == HB_F16) return f16_bits_to_f32(((const uint16_t *)p)[i]);
    return hb_e4m3_to_f32(((const uint8_t *)p)[i]);
}

/* The same with the dtype known at run time (bandwidth-bound element-wise kernels). */
static __device__ __forceinline__ float ld_any(const void *p, hb_dtype dt, int64_t i) {
    switch (dt) {
    case HB_F32: return ld_w<HB_F32>(p, i);
    case HB_BF16: return ld_w<HB_BF16>(p, i);
    case HB_F16: return ld_w<HB_F16>(p, i);
    default: return ld_w<HB_FP8_E4M3>(p, i);
    }
}

/* Stores v in dtype dt with the CPU's rounding (bit-exact). */
static __device__ __forceinline__ void st_any(void *p, hb_dtype dt, int64_t i, float v) {
    switch (dt) {
    case HB_F32: ((float *)p)[i] = v; break;
    case HB_BF16: ((uint16_t *)p)[i] = hb_f32_to_bf16(v); break;
    case HB_F16: ((uint16_t *)p)[i] = hb_f32_to_f16(v); break;
    default: ((uint8_t *)p)[i] = hb_f32_to_e4m3(v); break;
    }
}

/* Two f32 -> one register of two bf16/f16 values (lo in the low half), the CPU's rounding:
 * the packed stores of casts and KV caches, and the operands of the tensor-core attention. */
static __device__ __forceinline__ uint32_t pack_half2(hb_dtype dt, float lo, float hi) {
    if (dt == HB_BF16) return (uint32_t)hb_f32_to_bf16(lo) | ((uint32_t)hb_f32_to_bf16(hi) << 16);
    return (uint32_t)hb_f32_to_f16(lo) | ((uint32_t)hb_f32_to_f16(hi) << 16);
}

/* Reductions. Block sizes are multiples of the warp size (they are multiples of 64 here, so
 * they are on every device), and at most 1024 threads: at most 32 warps. */
static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = warpSize >> 1; o > 0; o >>= 1) v += hb_shfl_xor(v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = warpSize >> 1; o > 0; o >>= 1) v = fmaxf(v, hb_shfl_xor(v, o));
    return v;
}
/* Every thread of the block gets the same value; sh holds >= 32 floats. */
static __device__ __forceinline__ float block_sum(float v, float *sh) {
    const int ws = warpSize, lane = threadIdx.x % ws, wid = threadIdx.x / ws,
              nw = blockDim.x / ws;
    v = warp_sum(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    float r = 0.0f;
    for (int i = 0; i < nw; i++) r += sh[i];
    __syncthreads(); /* sh may be reused right away */
    return r;
}
static __device__ __forceinline__ float block_max(float v, float *sh) {
    const int ws = warpSize, lane = threadIdx.x % ws, wid = threadIdx.x / ws,
              nw = blockDim.x / ws;
    v = warp_max(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; i++) r = fmaxf(r, sh[i]);
    __syncthreads();
    return r;
}

/* ---- ops (signatures of hb_backend_ops) ---- */

hb_status op_fill_random(hb_backend *be, void *dst, hb_dtype dt, int64_t n, uint64_t seed,
                         float scale, float offset);
hb_status op_fill_tokens(hb_backend *be, int32_t *dst, int64_t n, uint64_t seed, int64_t vocab);
hb_status op_convert(hb_backend *be, void *dst, hb_dtype dst_dt, const void *src, hb_dtype src_dt,
                     int64_t n);
hb_status op_embedding(hb_backend *be, float *out, const int32_t *tokens, const void *wte,
                       const void *wpe, hb_dtype wdt, int64_t B, int64_t T, int64_t pos0,
                       int64_t C);
hb_status op_rmsnorm(hb_backend *be, float *out, const float *in, const float *w, int64_t N,
                     int64_t C, float eps);
hb_status op_layernorm(hb_backend *be, float *out, const float *in, const float *w,
                       const float *b, int64_t N, int64_t C, float eps);
hb_status op_matmul(hb_backend *be, float *out, int64_t ldo, const void *a, int64_t lda,
                    hb_dtype adt, const void *w, hb_dtype wdt, const float *bias, int64_t M,
                    int64_t N, int64_t K, float beta);
hb_status op_matmul_batched(hb_backend *be, const hb_gemm_batched *g);
hb_status op_rope(hb_backend *be, float *x, int64_t ldx, int64_t B, int64_t T, int64_t pos0,
                  int64_t H, int64_t D, float theta);
hb_status op_kv_store(hb_backend *be, void *k_cache, void *v_cache, hb_dtype kvt, const float *k,
                      const float *v, int64_t ld, int64_t B, int64_t T, int64_t pos0, int64_t Hkv,
                      int64_t D, int64_t S);
hb_status op_attention(hb_backend *be, float *out, int64_t ldo, const float *q, int64_t ldq,
                       const void *k_cache, const void *v_cache, hb_dtype kvt, int64_t B,
                       int64_t T, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t D, int64_t S);
hb_status op_swiglu(hb_backend *be, float *out, const float *in, int64_t N, int64_t F);
hb_status op_gelu(hb_backend *be, float *out, const float *in, int64_t n);
hb_status op_add(hb_backend *be, float *out, const float *a, const float *b, float s, int64_t n);
hb_status op_softmax(hb_backend *be, float *out, const float *in, int64_t rows, int64_t cols);
hb_status op_argmax(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
                    int64_t cols);
hb_status op_sample(hb_backend *be, int32_t *out, const float *logits, int64_t ld, int64_t rows,
                    int64_t cols, float temperature, uint64_t seed, uint64_t step);

/* ---- GEMM engine lifetime (gpu_gemm.cu) ---- */

/* Creates the vendor BLAS handle and workspace (or settles on the built-in GEMM); fills
 * ctx->gemm and describes the library in `lib` (e.g. "cuBLASLt 130000"). */
hb_status gemm_init(hb_backend *be, char *lib, size_t lib_len);
void gemm_fini(gpu_ctx *c);

} // namespace HB_GPU_NS

#endif
