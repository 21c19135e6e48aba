/* gpu.cuh - private interface of the GPU backend (backends/gpu/), compiled as CUDA (nvcc) or
 * as HIP (clang) from the same files.
 *
 * The files, llm.c's split (kernel -> launcher -> op):
 *   gpu_backend.cu  device, memory, events, the ops table, the module/registry entry points
 *   gpu_ops.cu      every op but the GEMMs: generators, casts, norms, rope, attention, ...
 *   gpu_gemm.cu     matmul / matmul_batched: GEMV for decode, cuBLASLt/hipBLASLt/rocBLAS,
 *                   and the built-in tiled GEMM used where no vendor BLAS is available
 *   gpu_serve.cu    attention_paged: varlen attention over the serve workload's paged KV cache
 *   gpu_moe.cu      Mixture-of-Experts (router, permutation, grouped GEMM, combine) and MLA
 *   gpu_train.cu    the training ops: backward of every op, cross-entropy, AdamW, MoE backward
 * Everything but the extern "C" entry points lives in namespace HB_GPU_NS, so the CUDA and the
 * HIP objects can be linked into one program (HB_BACKEND_DL=OFF) without clashes.
 *
 * Semantics are those of the CPU backend (backends/cpu/cpu_ops.c) op for op; where the GPU
 * computes differently (parallel reductions, FMA) the results agree within the per-dtype bounds
 * of `hetbench verify`. Generators, casts and the fp8 quantisation (codes and scales) are
 * bit-exact: they run the same HB_HOSTDEV functions of dtype.h / fp8.h as the CPU, with IEEE
 * divisions where it divides. fp8 (e4m3, e5m2) never uses the hardware's conversions, so it is
 * OCP fp8 on NVIDIA and AMD alike (MI300's native e4m3 is the FNUZ variant). */
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
#include "../backend.h" // defines: hb_backend, hb_backend_ops, the op args (ops.h), hb_tensor, dtype.h
#include "../fp8.h"     // defines: hb_e4m3_to_f32, hb_f32_to_e4m3, e5m2 likewise
}

namespace HB_GPU_NS {

/* ---- context ---- */

enum gemm_impl { GEMM_BUILTIN = 0, GEMM_LT = 1, GEMM_ROCBLAS = 2 };

struct lt_cache; /* gpu_gemm.cu: heuristic results of recent matmul shapes */

/* Backend-private state (be->ctx). Used by one host thread at a time, like the stream it owns:
 * scratch buffers are reused by consecutive ops in stream order, so they need no lock. Scales
 * travel in the tensors (tensor.h); nothing here holds a hidden scale. */
struct gpu_ctx {
    int device;
    cudaStream_t stream;
    int warp_size;          /* 32 on NVIDIA, 64 on CDNA, 32 on RDNA: from the device */
    int n_sm;               /* SMs / CUs */
    int cc_major, cc_minor; /* CUDA compute capability; on HIP the gfx major/minor */
    size_t smem_optin;      /* largest dynamic shared memory per block (opt-in) */
    int fp8_gemm;           /* fp8 e4m3 tensor-core GEMMs with per-tensor scales through the
                               vendor library (sm_89+ with cuBLASLt) */
    int fp8_block_gemm;     /* ... and with DeepSeek-V3 block scales, 1 x 128 activation tiles
                               by 128 x 128 weight blocks (sm_90 with cuBLASLt >= 12.9) */
    int attn_simt;          /* HETBENCH_GPU_ATTN=simt at open: no tensor-core attention */
    gemm_impl gemm;

    void *scratch;          /* activations cast / quantised for vendor GEMMs (bf16/f16/fp8) */
    size_t scratch_bytes;
    float *a32;             /* f32 copy of a bf16/f16/fp8 matmul A for the GEMV/built-in GEMM */
    size_t a32_bytes;
    float *qscale;          /* scales of a matmul's dynamically quantised A, and repacked
                               weight scales for the vendor GEMM */
    size_t qscale_bytes;
    float *att_part;        /* attention split-K partials */
    size_t att_part_bytes;
    float *rope_tab;        /* rope cos/sin table */
    size_t rope_tab_bytes;
    void *mla_buf;          /* mla_attention (gpu_moe.cu): f32 wkv_b, q/o latents, K/V */
    size_t mla_bytes;
    void *train_buf;        /* training ops (gpu_train.cu): norm / attention row statistics,
                               a bf16/f16 weight widened for matmul_backward */
    size_t train_bytes;

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

/* Element i of a tensor in storage dtype DT, as f32 (fp8: the code's value, unscaled). */
template <int DT>
static __device__ __forceinline__ float ld_w(const void *p, int64_t i) {
    if (DT == HB_F32) return ((const float *)p)[i];
    if (DT == HB_BF16) return __uint_as_float((uint32_t)((const uint16_t *)p)[i] << 16);
    if (DT == HB_F16) return f16_bits_to_f32(((const uint16_t *)p)[i]);
    if (DT == HB_FP8_E5M2) return hb_e5m2_to_f32(((const uint8_t *)p)[i]);
    return hb_e4m3_to_f32(((const uint8_t *)p)[i]);
}

/* The same with the dtype known at run time (bandwidth-bound element-wise kernels). */
static __device__ __forceinline__ float ld_any(const void *p, hb_dtype dt, int64_t i) {
    switch (dt) {
    case HB_F32: return ld_w<HB_F32>(p, i);
    case HB_BF16: return ld_w<HB_BF16>(p, i);
    case HB_F16: return ld_w<HB_F16>(p, i);
    case HB_FP8_E5M2: return ld_w<HB_FP8_E5M2>(p, i);
    default: return ld_w<HB_FP8_E4M3>(p, i);
    }
}

/* Stores v in dtype dt with the CPU's rounding (bit-exact; fp8 saturating, NaN kept). */
static __device__ __forceinline__ void st_any(void *p, hb_dtype dt, int64_t i, float v) {
    switch (dt) {
    case HB_F32: ((float *)p)[i] = v; break;
    case HB_BF16: ((uint16_t *)p)[i] = hb_f32_to_bf16(v); break;
    case HB_F16: ((uint16_t *)p)[i] = hb_f32_to_f16(v); break;
    case HB_FP8_E5M2: ((uint8_t *)p)[i] = hb_f32_to_e5m2(v); break;
    default: ((uint8_t *)p)[i] = hb_f32_to_e4m3(v); break;
    }
}

/* One f32 -> its fp8 code in dt (e4m3 or e5m2). */
static __device__ __forceinline__ uint32_t fp8_code(hb_dtype dt, float v) {
    return dt == HB_FP8_E5M2 ? hb_f32_to_e5m2(v) : hb_f32_to_e4m3(v);
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

/* ---- quantisation (tensor.h), shared by fill_random, convert and matmul (gpu_ops.cu) ---- */

/* Scale groups of a quantised (rows, cols) view: group (r / bm, c / bk), its scale at
 * scale[(r / bm) * s_rs + (c / bk) * s_cs] (row-major (ceil(rows/bm), ceil(cols/bk)) is s_rs =
 * that many columns, s_cs = 1; a vendor GEMM may want another layout). */
struct qgroups {
    int64_t rows, cols, bm, bk;
    int64_t srows, scols; /* number of groups down and across */
    int64_t s_rs, s_cs;   /* scale strides (elements) */
};

/* The groups of tensor t (t.q.kind != none), row-major scales, as hb_quant_block resolves them
 * (a loadable module resolves its own symbols, so ops.c's helper is not called). */
static inline qgroups qgroups_of(const hb_tensor *t) {
    qgroups g;
    g.rows = hb_tensor_rows(t);
    g.cols = hb_tensor_cols(t);
    g.bm = t->q.kind == HB_QUANT_BLOCK ? t->q.bm : t->q.kind == HB_QUANT_ROW ? 1 : g.rows;
    g.bk = t->q.kind == HB_QUANT_BLOCK ? t->q.bk : g.cols;
    if (g.bm < 1) g.bm = 1;
    if (g.bk < 1) g.bk = 1;
    g.srows = (g.rows + g.bm - 1) / g.bm;
    g.scols = (g.cols + g.bk - 1) / g.bk;
    g.s_rs = g.scols;
    g.s_cs = 1;
    return g;
}

/* Where quantise() reads its f32 values: an array (rows ld apart) in any dtype, or the
 * counter-based generator (element i = r * cols + c). */
struct qsrc {
    const void *p;
    hb_dtype dt;
    int64_t ld;
    int rng;
    uint64_t seed;
    float scale, offset;
};

/* dst (g.rows, g.cols; contiguous codes in fp8 dtype dt) and its scales: each group's scale is
 * amax / max(dt) (1 for an all-zero or non-finite group), its codes RNE(x / scale), saturating:
 * the CPU's quantise() bit for bit. Two passes over the source, no f32 temporary. */
hb_status quantise(hb_backend *be, void *dst, hb_dtype dt, float *scale, const qgroups &g,
                   const qsrc &src);
/* dst (g.rows, g.cols, contiguous) in dst_dt = code (rows ld apart) * scale of its group
 * (scale NULL: fp8 codes without scales, 1). */
hb_status dequantise(hb_backend *be, void *dst, hb_dtype dst_dt, const void *codes, hb_dtype dt,
                     int64_t ld, const float *scale, const qgroups &g);
/* dst[r * d_rs + c * d_cs] = src[r * s_rs + c * s_cs] for (rows, cols) f32 scales: repacks a
 * scale grid for a vendor GEMM (padding, transposition). */
hb_status repack_scales(hb_backend *be, float *dst, int64_t d_rs, int64_t d_cs, const float *src,
                        int64_t s_rs, int64_t s_cs, int64_t rows, int64_t cols);

/* ---- ops: op_<name>(hb_backend *, const hb_<name>_args *) for the whole catalogue ---- */

#define GPU_OP_DECL_(name, req) HB_OP_DECLARE(op_, name)
HB_OP_LIST(GPU_OP_DECL_) /* inference (gpu_ops, gpu_gemm, gpu_moe, gpu_serve) and training (gpu_train) */
#undef GPU_OP_DECL_
/* Optional ops this backend does not implement yet: declared weak, so an op without a
 * definition leaves its member of the ops table NULL (reported unsupported, never faked). */
#define GPU_OP_WEAK_(name) hb_status op_##name(hb_backend *be, const hb_##name##_args *a) __attribute__((weak));
#undef GPU_OP_WEAK_

/* ---- GEMM engine lifetime (gpu_gemm.cu) ---- */

/* Creates the vendor BLAS handle and workspace (or settles on the built-in GEMM); fills
 * ctx->gemm and describes the library in `lib` (e.g. "cuBLASLt 130000"). */
hb_status gemm_init(hb_backend *be, char *lib, size_t lib_len);
void gemm_fini(gpu_ctx *c);

} // namespace HB_GPU_NS

#endif
