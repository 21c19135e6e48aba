/* gpu_gemm.cu - matmul and matmul_batched on the GPU.
 *
 * matmul: out (M, N) = beta * out + a (M, K) @ w (N, K)^T (+ bias), a f32 (or in w's dtype), w in
 * f32/bf16/f16 or fp8 e4m3/e5m2 with no, per-tensor or bm x bk block scales (ops.h).
 *   M <= 8 (decode)  gemv_kernel: streams each weight row once with 16-byte loads and computes all
 *                    M dot products from it, f32 activations straight from memory: bound by the
 *                    weight bytes, like the CPU's GEMV path. fp8: each 16-code chunk's dot
 *                    product is scaled by its block's scale.
 *   M > 8            the vendor GEMM: cuBLASLt (NVIDIA) / hipBLASLt (ROCm >= 6, same code through
 *                    vendor/hip.h) / rocBLAS, with the activations cast once to the weight dtype
 *                    (f32 weights: no cast) and f32 accumulation and output. fp8 e4m3 on cuBLASLt:
 *                    the activations quantised on the device (matmul_fp8), per tensor on sm_89+,
 *                    in 1 x 128 tiles against 128 x 128 weight blocks on sm_90 (cuBLASLt >= 12.9).
 *   otherwise        gemm_tiled_kernel, the portable built-in GEMM (64 x 64 tiles, f32 FMA; fp8
 *                    codes dequantised as they are loaded): every fp8 recipe on every GPU.
 * matmul_batched (f32): the vendor GEMM, or the built-in one.
 * device_info.gemm_impl names the engine of the last GEMM (M > 8; at open: the device's), so a
 * built-in figure is never taken for a vendor one. HETBENCH_GPU_GEMM=builtin (read when a device
 * is opened) forces the built-in GEMM, e.g. to check it against the CPU on hardware that has a
 * vendor library. */
#include "gpu.cuh"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cuBLASLt >= 12.9 (CUDA 12.9, 13.x) has DeepSeek-style block-scaled fp8 GEMMs on sm_90:
 * cublasLt.h's cublasLtMatmulMatrixScale_t CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F (one f32 per
 * 128 elements along K) and CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F (one per 128 x 128),
 * set with CUBLASLT_MATMUL_DESC_{A,B}_SCALE_MODE. */
#if defined(HB_GPU_CUDA) && HB_HAVE_LT && defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120900
#define HB_LT_BLOCK_SCALES 1
#else
#define HB_LT_BLOCK_SCALES 0
#endif

namespace HB_GPU_NS {

static const int THREADS = 256;

#define GRID_STRIDE(i, n)                                                             \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);         \
         i += (int64_t)gridDim.x * blockDim.x)

/* ==== small kernels: epilogue-only GEMMs and casts ==== */

/* out = beta * out + bias (beta == 0 overwrites: out may hold garbage), for batch matrices. */
__global__ void scale_bias_kernel(float *out, int64_t ldo, int64_t stride, const float *bias,
                                  int64_t M, int64_t N, int64_t batch, float beta) {
    GRID_STRIDE(idx, batch * M * N) {
        const int64_t n = idx % N, m = (idx / N) % M, z = idx / (M * N);
        float *o = out + z * stride + m * ldo + n;
        const float b = bias ? bias[n] : 0.0f;
        *o = beta == 0.0f ? b : beta * *o + b;
    }
}

static hb_status scale_bias(hb_backend *be, float *out, int64_t ldo, int64_t stride,
                            const float *bias, int64_t M, int64_t N, int64_t batch, float beta) {
    gpu_ctx *c = ctx_of(be);
    const int64_t n = batch * M * N;
    if (n <= 0) return HB_OK;
    scale_bias_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(out, ldo, stride, bias, M,
                                                                          N, batch, beta);
    LAUNCH_CHECK(be, "matmul epilogue");
    return HB_OK;
}

/* dst (M, K) packed = a (M, K, lda apart) in dtype dt (bf16/f16), the CPU's rounding. VEC: 4
 * elements per thread (K, lda multiples of 4, a 16-byte aligned). */
template <int VEC>
__global__ void cast_rows_kernel(void *dst, hb_dtype dt, const float *a, int64_t lda, int64_t M,
                                 int64_t K) {
    const int64_t kv = K / VEC;
    GRID_STRIDE(idx, M * kv) {
        const int64_t m = idx / kv, k = (idx % kv) * VEC, o = m * K + k;
        if (VEC == 4) {
            const float4 v = *(const float4 *)(a + m * lda + k);
            if (dt == HB_F32) {
                *(float4 *)((float *)dst + o) = v;
            } else {
                uint2 p;
                p.x = pack_half2(dt, v.x, v.y);
                p.y = pack_half2(dt, v.z, v.w);
                *(uint2 *)((uint16_t *)dst + o) = p;
            }
        } else {
            st_any(dst, dt, o, a[m * lda + k]);
        }
    }
}

/* ==== GEMV: M <= 8 ==== */

/* Weights of one 16-byte chunk as f32: 4 (f32), 8 (bf16, f16) or 16 (fp8 codes), little-endian. */
template <int DT>
static __device__ __forceinline__ void unpack16(const uint4 r, float *f) {
    const uint32_t u[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if constexpr (DT == HB_F32) {
            f[i] = __uint_as_float(u[i]);
        } else if constexpr (DT == HB_BF16) {
            f[2 * i] = __uint_as_float(u[i] << 16);
            f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
        } else if constexpr (DT == HB_F16) {
            f[2 * i] = f16_bits_to_f32(u[i] & 0xffffu);
            f[2 * i + 1] = f16_bits_to_f32(u[i] >> 16);
        } else if constexpr (DT == HB_FP8_E5M2) {
#pragma unroll
            for (int b = 0; b < 4; b++) f[4 * i + b] = hb_e5m2_to_f32((uint8_t)(u[i] >> (8 * b)));
        } else {
#pragma unroll
            for (int b = 0; b < 4; b++) f[4 * i + b] = hb_e4m3_to_f32((uint8_t)(u[i] >> (8 * b)));
        }
    }
}

template <int DT> struct wtype {
    static constexpr bool fp8 = DT == HB_FP8_E4M3 || DT == HB_FP8_E5M2;
    static constexpr int esz = DT == HB_F32 ? 4 : fp8 ? 1 : 2;
    static constexpr int epv = 16 / esz; /* elements per 16-byte chunk */
};

/* The scales of fp8 weights (N, K): scale of (n, k) at s[(n / bm) * sc + k / bk]; s NULL = 1
 * (fp8 codes without scales). One (bm, bk) = (N, K) block is a per-tensor scale. */
struct wscales {
    const float *s;
    int64_t bm, bk, sc;
};
static __device__ __forceinline__ float wscale_at(const wscales &q, int64_t n, int64_t k) {
    return q.s ? q.s[(n / q.bm) * q.sc + k / q.bk] : 1.0f;
}

/* Each warp computes R weight rows, ws/R lanes per row along K; MT >= M accumulators per lane.
 * Every lane reads 16 contiguous bytes of its row per step, so a row group reads whole lines.
 * fp8: each 16-code chunk lies in one scale block (bk % 16 == 0 when vec), and its f32 dot
 * product is scaled before it joins the accumulator. */
template <int MT, int R, int DT>
__global__ void __launch_bounds__(256)
gemv_kernel(float *out, int64_t ldo, const float *a, int64_t lda, const void *w, const wscales wq,
            const float *bias, int M, int64_t N, int64_t K, float beta, int vec) {
    const int ws = warpSize, lane = threadIdx.x % ws, lpr = ws / R;
    const int g = lane / lpr, sl = lane % lpr;
    const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / ws;
    const int64_t n = warp * R + g;
    const bool live = n < N; /* no early return: the shuffles below need every lane */
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m] = 0.0f;
    if (live) {
        constexpr int EPV = wtype<DT>::epv, ESZ = wtype<DT>::esz;
        int64_t k_done = 0;
        if (vec) {
            const int64_t nv = K / EPV;
            const uint4 *wr = (const uint4 *)((const char *)w + n * K * ESZ);
#pragma unroll 4
            for (int64_t v = sl; v < nv; v += lpr) {
                float wf[EPV];
                unpack16<DT>(wr[v], wf);
                const int64_t k = v * EPV;
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (m < M) {
                        const float4 *ar = (const float4 *)(a + m * lda + k);
                        float d = 0.0f; /* fp8: the chunk's dot product, then scaled */
                        float &sum = wtype<DT>::fp8 ? d : acc[m];
#pragma unroll
                        for (int e = 0; e < EPV / 4; e++) {
                            const float4 av = ar[e];
                            sum += av.x * wf[4 * e] + av.y * wf[4 * e + 1] + av.z * wf[4 * e + 2] +
                                   av.w * wf[4 * e + 3];
                        }
                        if constexpr (wtype<DT>::fp8) acc[m] += d * wscale_at(wq, n, k);
                    }
                }
            }
            k_done = nv * EPV;
        }
        for (int64_t k = k_done + sl; k < K; k += lpr) {
            float wk = ld_w<DT>(w, n * K + k);
            if constexpr (wtype<DT>::fp8) wk *= wscale_at(wq, n, k);
#pragma unroll
            for (int m = 0; m < MT; m++)
                if (m < M) acc[m] += a[m * lda + k] * wk;
        }
    }
#pragma unroll
    for (int m = 0; m < MT; m++)
        for (int o = lpr >> 1; o > 0; o >>= 1) acc[m] += hb_shfl_xor(acc[m], o);
    if (live && sl == 0) {
#pragma unroll
        for (int m = 0; m < MT; m++) {
            if (m < M) {
                const float v = acc[m] + (bias ? bias[n] : 0.0f);
                float *o = out + m * ldo + n;
                *o = beta == 0.0f ? v : beta * *o + v;
            }
        }
    }
}

template <int MT, int R, int DT>
static hb_status launch_gemv(hb_backend *be, float *out, int64_t ldo, const float *a, int64_t lda,
                             const void *w, const wscales &wq, const float *bias, int64_t M,
                             int64_t N, int64_t K, float beta) {
    gpu_ctx *c = ctx_of(be);
    const int esz = wtype<DT>::esz;
    const int vec = is_aligned(w, 16) && (K * esz) % 16 == 0 && is_aligned(a, 16) && lda % 4 == 0 &&
                    (!wtype<DT>::fp8 || !wq.s || wq.bk % wtype<DT>::epv == 0);
    const int64_t rows_per_block = (int64_t)(THREADS / c->warp_size) * R;
    const int64_t blocks = (N + rows_per_block - 1) / rows_per_block;
    if (blocks > INT_MAX) return fail(be, HB_ERR_UNSUPPORTED, "%s: matmul: N too large", HB_GPU_NAME);
    gemv_kernel<MT, R, DT><<<(unsigned)blocks, THREADS, 0, c->stream>>>(out, ldo, a, lda, w, wq, bias,
                                                                        (int)M, N, K, beta, vec);
    LAUNCH_CHECK(be, "matmul (gemv)");
    return HB_OK;
}

template <int DT>
static hb_status gemv(hb_backend *be, float *out, int64_t ldo, const float *a, int64_t lda,
                      const void *w, const wscales &wq, const float *bias, int64_t M, int64_t N,
                      int64_t K, float beta) {
    if (M == 1) return launch_gemv<1, 1, DT>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
    if (M == 2) return launch_gemv<2, 2, DT>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
    if (M <= 4) return launch_gemv<4, 4, DT>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
    return launch_gemv<8, 4, DT>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
}

/* ==== built-in tiled GEMM ==== */

/* Row-major, batched: C_z = alpha * op(A_z) @ op(B_z) + beta * C_z (+ bias[n]); A f32, B in DT.
 * fp8 B (matmul: op(B) = w^T, w (N, K)): each code is dequantised as it is loaded (code * its
 * block's scale, rounded once in f32 as the CPU dequantises its panels), so every product and
 * partial sum is f32: the promotion DeepSeek-V3 (sec. 3.3) asks of fp8 tensor cores every 128
 * of K holds at every step here. */
struct tiled_args {
    int trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t lda, stride_a;
    const void *b;
    int64_t ldb, stride_b; /* in elements */
    float *c;
    int64_t ldc, stride_c;
    const float *bias;
    wscales bq; /* fp8 B: the weights' scales (trans_b = 1 only) */
};

enum { TBM = 64, TBN = 64, TBK = 16 };

template <int DT>
__global__ void __launch_bounds__(256) gemm_tiled_kernel(const tiled_args g, int64_t z0) {
    __shared__ __align__(16) float As[TBK][TBM + 4];
    __shared__ __align__(16) float Bs[TBK][TBN + 4];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t m0 = (int64_t)blockIdx.y * TBM, n0 = (int64_t)blockIdx.x * TBN;
    const int64_t z = z0 + blockIdx.z;
    const float *A = g.a + z * g.stride_a;
    const char *Bz = (const char *)g.b + z * g.stride_b * wtype<DT>::esz;
    float *C = g.c + z * g.stride_c;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int64_t k0 = 0; k0 < g.k; k0 += TBK) {
        /* loads run along each operand's contiguous dimension */
        for (int e = tid; e < TBM * TBK; e += 256) {
            const int mm = g.trans_a ? e % TBM : e / TBK, kk = g.trans_a ? e / TBM : e % TBK;
            const int64_t gm = m0 + mm, gk = k0 + kk;
            float v = 0.0f;
            if (gm < g.m && gk < g.k) v = g.trans_a ? A[gk * g.lda + gm] : A[gm * g.lda + gk];
            As[kk][mm] = v;
        }
        for (int e = tid; e < TBN * TBK; e += 256) {
            const int nn = g.trans_b ? e / TBK : e % TBN, kk = g.trans_b ? e % TBK : e / TBN;
            const int64_t gn = n0 + nn, gk = k0 + kk;
            float v = 0.0f;
            if (gn < g.n && gk < g.k) {
                v = ld_w<DT>(Bz, g.trans_b ? gn * g.ldb + gk : gk * g.ldb + gn);
                if constexpr (wtype<DT>::fp8) v *= wscale_at(g.bq, gn, gk);
            }
            Bs[kk][nn] = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TBK; kk++) {
            const float4 a4 = *(const float4 *)&As[kk][ty * 4];
            const float4 b4 = *(const float4 *)&Bs[kk][tx * 4];
            const float av[4] = {a4.x, a4.y, a4.z, a4.w}, bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int64_t gm = m0 + ty * 4 + i;
        if (gm >= g.m) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t gn = n0 + tx * 4 + j;
            if (gn >= g.n) continue;
            const float v = g.alpha * acc[i][j] + (g.bias ? g.bias[gn] : 0.0f);
            float *o = C + gm * g.ldc + gn;
            *o = g.beta == 0.0f ? v : g.beta * *o + v;
        }
    }
}

static hb_status gemm_tiled(hb_backend *be, hb_dtype dt, const tiled_args *g, int64_t batch) {
    gpu_ctx *c = ctx_of(be);
    const int64_t gx = (g->n + TBN - 1) / TBN, gy = (g->m + TBM - 1) / TBM;
    if (gx > INT_MAX || gy > 65535)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: built-in GEMM: M=%lld too large", HB_GPU_NAME,
                    (long long)g->m);
    for (int64_t z0 = 0; z0 < batch; z0 += 65535) { /* gridDim.z is at most 65535 */
        const int64_t nz = batch - z0 < 65535 ? batch - z0 : 65535;
        dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)nz);
        switch (dt) {
        case HB_F32: gemm_tiled_kernel<HB_F32><<<grid, 256, 0, c->stream>>>(*g, z0); break;
        case HB_BF16: gemm_tiled_kernel<HB_BF16><<<grid, 256, 0, c->stream>>>(*g, z0); break;
        case HB_F16: gemm_tiled_kernel<HB_F16><<<grid, 256, 0, c->stream>>>(*g, z0); break;
        case HB_FP8_E5M2: gemm_tiled_kernel<HB_FP8_E5M2><<<grid, 256, 0, c->stream>>>(*g, z0); break;
        default: gemm_tiled_kernel<HB_FP8_E4M3><<<grid, 256, 0, c->stream>>>(*g, z0); break;
        }
        LAUNCH_CHECK(be, "matmul (built-in)");
    }
    return HB_OK;
}

/* ==== vendor GEMM: cuBLASLt / hipBLASLt ==== */

/* One column-major problem: D (m, n) = alpha op(A) op(B) + beta C (+ bias[m]), C = D f32,
 * batched with strides; the row-major ops are mapped onto it by their callers. */
struct lt_problem {
    int trans_a, trans_b;
    int64_t m, n, k, batch;
    hb_dtype ta, tb; /* A and B storage types (the same, or both fp8) */
    const void *A;
    int64_t lda, sa;
    const void *B;
    int64_t ldb, sb;
    float *C;
    int64_t ldc, sc;
    float alpha, beta;
    const float *bias;
    /* fp8 (both operands e4m3): how the scales are given, and their device pointers (NULL = 1)
     * LT_SCALE_TENSOR  one f32 each
     * LT_SCALE_BLOCK   A (the weights) in 128 x 128 blocks, ceil(m / 128) rows of
     *                  roundup(ceil(k / 128), 4) scales; B (the activations) in 1 x 128 tiles,
     *                  ceil(k / 128) rows of roundup(n, 4): cuBLASLt's BLK128x128_32F and
     *                  VEC128_32F layouts (scales K-block-major for A, n-major for B) */
    int scale_mode;
    const float *a_scale, *b_scale;
};

enum { LT_SCALE_NONE = 0, LT_SCALE_TENSOR = 1, LT_SCALE_BLOCK = 2 };

#if HB_HAVE_LT

enum { LT_CACHE_N = 32, LT_WORKSPACE = 32 << 20 /* cuBLASLt's recommendation for Hopper */ };

/* What determines the algorithm: everything but the pointers (their alignment included). */
struct lt_key {
    int trans_a, trans_b, ta, tb, has_bias, beta_zero, scale_mode;
    int align_a, align_b, align_c, align_bias;
    int64_t m, n, k, batch, lda, ldb, ldc, sa, sb, sc;
};

struct lt_entry {
    int used;
    uint64_t last;
    lt_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    int has_algo; /* 0: the library has no algorithm for this problem (use the built-in GEMM) */
};

struct lt_cache {
    uint64_t tick;
    lt_entry e[LT_CACHE_N];
};

static void lt_entry_clear(lt_entry *e) {
    if (e->op) cublasLtMatmulDescDestroy(e->op);
    if (e->la) cublasLtMatrixLayoutDestroy(e->la);
    if (e->lb) cublasLtMatrixLayoutDestroy(e->lb);
    if (e->lc) cublasLtMatrixLayoutDestroy(e->lc);
    memset(e, 0, sizeof *e);
}

static cudaDataType_t lt_type(hb_dtype dt) {
    switch (dt) {
    case HB_BF16: return CUDA_R_16BF;
    case HB_F16: return CUDA_R_16F;
#if defined(HB_GPU_CUDA)
    case HB_FP8_E4M3: return CUDA_R_8F_E4M3;
#endif
    default: return CUDA_R_32F;
    }
}

/* Largest power of two (<= 256) dividing the address: what cuBLASLt may assume. */
static int ptr_align(const void *p, int64_t stride_bytes) {
    uintptr_t u = (uintptr_t)p | (uintptr_t)(stride_bytes > 0 ? stride_bytes : 0) | 256u;
    return (int)(u & (~u + 1));
}

#define LT_TRY(be, call)                                                                     \
    do {                                                                                     \
        cublasStatus_t lt_s_ = (call);                                                       \
        if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                                  \
            return fail((be), HB_ERR_BACKEND, "%s: %s failed (status %d) at %s:%d", HB_GPU_NAME, \
                        #call, (int)lt_s_, __FILE__, __LINE__);                             \
    } while (0)

static hb_status lt_layout(hb_backend *be, cublasLtMatrixLayout_t *l, hb_dtype dt, int64_t rows,
                           int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
    LT_TRY(be, cublasLtMatrixLayoutCreate(l, lt_type(dt), (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        const int32_t bc = (int32_t)batch;
        LT_TRY(be, cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc,
                                                    sizeof bc));
        LT_TRY(be, cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                    &stride, sizeof stride));
    }
    return HB_OK;
}

/* Builds the descriptors of a cache entry and asks the heuristic for the best algorithm. */
static hb_status lt_plan(hb_backend *be, lt_entry *e, const lt_problem *p) {
    gpu_ctx *c = ctx_of(be);
    const lt_key *k = &e->key;
    LT_TRY(be, cublasLtMatmulDescCreate(&e->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opa = k->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = k->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (k->has_bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                  sizeof epi));
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                  &p->bias, sizeof p->bias));
    }
#if defined(HB_GPU_CUDA)
    if (k->scale_mode != LT_SCALE_NONE) {
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                  &p->a_scale, sizeof p->a_scale));
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                  &p->b_scale, sizeof p->b_scale));
    }
#if HB_LT_BLOCK_SCALES
    if (k->scale_mode == LT_SCALE_BLOCK) {
        const int32_t am = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
        const int32_t bm = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &am,
                                                  sizeof am));
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bm,
                                                  sizeof bm));
    }
#endif
#endif
    TRY(lt_layout(be, &e->la, p->ta, k->trans_a ? k->k : k->m, k->trans_a ? k->m : k->k, k->lda,
                     k->batch, k->sa));
    TRY(lt_layout(be, &e->lb, p->tb, k->trans_b ? k->n : k->k, k->trans_b ? k->k : k->n, k->ldb,
                     k->batch, k->sb));
    TRY(lt_layout(be, &e->lc, HB_F32, k->m, k->n, k->ldc, k->batch, k->sc));

    cublasLtMatmulPreference_t pref = NULL;
    LT_TRY(be, cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t wsb = c->workspace_bytes;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
#if defined(HB_GPU_CUDA)
    const uint32_t al[3] = {(uint32_t)k->align_a, (uint32_t)k->align_b, (uint32_t)k->align_c};
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                  &al[0], sizeof al[0]);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                  &al[1], sizeof al[1]);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                  &al[2], sizeof al[2]);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                  &al[2], sizeof al[2]);
#endif
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    memset(&res, 0, sizeof res);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)c->lt, e->op, e->la, e->lb, e->lc,
                                            e->lc, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    /* no algorithm (an unusual alignment, an fp8 shape the library rejects): built-in GEMM */
    e->has_algo = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (e->has_algo) e->algo = res.algo;
    return HB_OK;
}

/* Runs p with the vendor library; *ran = 0 when it has no algorithm for the problem. */
static hb_status lt_run(hb_backend *be, const lt_problem *p, int *ran) {
    gpu_ctx *c = ctx_of(be);
    lt_cache *cache = c->cache;
    *ran = 0;
    const int esa = (int)hb_dtype_size(p->ta), esb = (int)hb_dtype_size(p->tb);
    lt_key key;
    memset(&key, 0, sizeof key); /* padding too: keys are compared with memcmp */
    key.trans_a = p->trans_a;
    key.trans_b = p->trans_b;
    key.ta = p->ta;
    key.tb = p->tb;
    key.has_bias = p->bias != NULL;
    key.beta_zero = p->beta == 0.0f;
    key.scale_mode = p->scale_mode;
    key.align_a = ptr_align(p->A, p->batch > 1 ? p->sa * esa : 0);
    key.align_b = ptr_align(p->B, p->batch > 1 ? p->sb * esb : 0);
    key.align_c = ptr_align(p->C, p->batch > 1 ? p->sc * 4 : 0);
    key.align_bias = p->bias ? ptr_align(p->bias, 0) : 0;
    key.m = p->m, key.n = p->n, key.k = p->k, key.batch = p->batch;
    key.lda = p->lda, key.ldb = p->ldb, key.ldc = p->ldc;
    key.sa = p->sa, key.sb = p->sb, key.sc = p->sc;

    lt_entry *e = NULL, *victim = &cache->e[0];
    for (int i = 0; i < LT_CACHE_N; i++) {
        lt_entry *x = &cache->e[i];
        if (x->used && memcmp(&x->key, &key, sizeof key) == 0) {
            e = x;
            break;
        }
        if (!x->used || (victim->used && x->last < victim->last)) victim = x;
    }
    if (!e) {
        lt_entry_clear(victim);
        victim->used = 1;
        victim->key = key;
        hb_status s = lt_plan(be, victim, p);
        if (s != HB_OK) {
            lt_entry_clear(victim);
            return s;
        }
        e = victim;
    }
    e->last = ++cache->tick;
    if (!e->has_algo) return HB_OK;
    if (p->bias)
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p->bias,
                                                  sizeof p->bias));
#if defined(HB_GPU_CUDA)
    if (key.scale_mode != LT_SCALE_NONE) {
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                  &p->a_scale, sizeof p->a_scale));
        LT_TRY(be, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                  &p->b_scale, sizeof p->b_scale));
    }
#endif
    const cublasStatus_t st =
        cublasLtMatmul((cublasLtHandle_t)c->lt, e->op, &p->alpha, p->A, e->la, p->B, e->lb, &p->beta,
                       p->C, e->lc, p->C, e->lc, &e->algo, c->workspace, c->workspace_bytes, c->stream);
    if (st != CUBLAS_STATUS_SUCCESS && key.scale_mode != LT_SCALE_NONE &&
        (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE)) {
        /* a scaled fp8 problem the heuristic accepted but the call refuses (nothing ran): the
         * built-in GEMM from now on for this shape */
        e->has_algo = 0;
        return HB_OK;
    }
    LT_TRY(be, st);
    *ran = 1;
    return HB_OK;
}

#elif defined(HB_HAVE_ROCBLAS)

struct lt_cache {
    int unused;
};

static rocblas_datatype rb_type(hb_dtype dt) {
    switch (dt) {
    case HB_BF16: return rocblas_datatype_bf16_r;
    case HB_F16: return rocblas_datatype_f16_r;
    default: return rocblas_datatype_f32_r;
    }
}

/* rocBLAS gemm_ex: column-major like cuBLASLt; no bias epilogue (applied before, beta = 1). */
static hb_status lt_run(hb_backend *be, const lt_problem *p, int *ran) {
    gpu_ctx *c = ctx_of(be);
    *ran = 0;
    if (hb_dtype_is_fp8(p->ta) || p->m > INT_MAX || p->n > INT_MAX || p->k > INT_MAX ||
        p->lda > INT_MAX || p->ldb > INT_MAX || p->ldc > INT_MAX || p->batch > INT_MAX)
        return HB_OK;
    if (p->bias) return HB_OK; /* no bias epilogue: matmul folds the bias in before */
    float beta = p->beta;
    rocblas_handle h = (rocblas_handle)c->lt;
    const rocblas_operation oa = p->trans_a ? rocblas_operation_transpose : rocblas_operation_none;
    const rocblas_operation ob = p->trans_b ? rocblas_operation_transpose : rocblas_operation_none;
    rocblas_status st;
    if (p->batch > 1)
        st = rocblas_gemm_strided_batched_ex(
            h, oa, ob, (rocblas_int)p->m, (rocblas_int)p->n, (rocblas_int)p->k, &p->alpha, p->A,
            rb_type(p->ta), (rocblas_int)p->lda, p->sa, p->B, rb_type(p->tb), (rocblas_int)p->ldb,
            p->sb, &beta, p->C, rocblas_datatype_f32_r, (rocblas_int)p->ldc, p->sc, p->C,
            rocblas_datatype_f32_r, (rocblas_int)p->ldc, p->sc, (rocblas_int)p->batch,
            rocblas_datatype_f32_r, rocblas_gemm_algo_standard, 0, 0);
    else
        st = rocblas_gemm_ex(h, oa, ob, (rocblas_int)p->m, (rocblas_int)p->n, (rocblas_int)p->k,
                             &p->alpha, p->A, rb_type(p->ta), (rocblas_int)p->lda, p->B,
                             rb_type(p->tb), (rocblas_int)p->ldb, &beta, p->C,
                             rocblas_datatype_f32_r, (rocblas_int)p->ldc, p->C,
                             rocblas_datatype_f32_r, (rocblas_int)p->ldc, rocblas_datatype_f32_r,
                             rocblas_gemm_algo_standard, 0, 0);
    if (st != rocblas_status_success)
        return fail(be, HB_ERR_BACKEND, "%s: rocblas_gemm_ex failed: %s", HB_GPU_NAME,
                    rocblas_status_to_string(st));
    *ran = 1;
    return HB_OK;
}

#else /* no vendor GEMM: the built-in kernel serves every shape */

struct lt_cache {
    int unused;
};

static hb_status lt_run(hb_backend *be, const lt_problem *p, int *ran) {
    (void)be;
    (void)p;
    *ran = 0;
    return HB_OK;
}

#endif

/* ==== GEMM engine lifetime ==== */

hb_status gemm_init(hb_backend *be, char *lib, size_t lib_len) {
    gpu_ctx *c = ctx_of(be);
    c->gemm = GEMM_BUILTIN;
    c->fp8_gemm = 0;
    c->fp8_block_gemm = 0;
    const char *force = getenv("HETBENCH_GPU_GEMM");
    if (force && strcmp(force, "builtin") == 0) {
        snprintf(lib, lib_len, "built-in GEMM (HETBENCH_GPU_GEMM=builtin)");
        return HB_OK;
    }
#if HB_HAVE_LT
    cublasLtHandle_t h = NULL;
    if (cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        snprintf(lib, lib_len, "built-in GEMM (%sLt init failed)", HB_GPU_NAME);
        return HB_OK;
    }
    c->lt = (void *)h;
    c->cache = (lt_cache *)calloc(1, sizeof *c->cache);
    if (!c->cache) return fail(be, HB_ERR_NOMEM, "%s: out of host memory", HB_GPU_NAME);
    c->workspace_bytes = LT_WORKSPACE;
    GPU_TRY(be, cudaMalloc(&c->workspace, c->workspace_bytes));
    c->gemm = GEMM_LT;
#if defined(HB_GPU_CUDA)
    /* fp8 tensor cores: Ada (sm_89) and Hopper/Blackwell (sm_90+); block scales (1 x 128 by
     * 128 x 128) on Hopper only, from cuBLASLt 12.9 (Blackwell has the MX formats instead) */
    const size_t ltv = cublasLtGetVersion();
    c->fp8_gemm = c->cc_major > 8 || (c->cc_major == 8 && c->cc_minor >= 9);
    c->fp8_block_gemm = HB_LT_BLOCK_SCALES && c->cc_major == 9 && ltv >= 120900;
    snprintf(lib, lib_len, "cuBLASLt %zu%s", ltv,
             c->fp8_block_gemm ? ", fp8 block 128" : c->fp8_gemm ? ", fp8 tensor" : "");
#else
    snprintf(lib, lib_len, "hipBLASLt");
#endif
#elif defined(HB_HAVE_ROCBLAS)
    rocblas_handle h = NULL;
    if (rocblas_create_handle(&h) != rocblas_status_success) {
        snprintf(lib, lib_len, "built-in GEMM (rocBLAS init failed)");
        return HB_OK;
    }
    rocblas_set_stream(h, c->stream);
    c->lt = (void *)h;
    c->gemm = GEMM_ROCBLAS;
    snprintf(lib, lib_len, "rocBLAS");
#else
    snprintf(lib, lib_len, "built-in GEMM (no vendor BLAS)");
#endif
    return HB_OK;
}

void gemm_fini(gpu_ctx *c) {
#if HB_HAVE_LT
    if (c->cache) {
        for (int i = 0; i < LT_CACHE_N; i++) lt_entry_clear(&c->cache->e[i]);
        free(c->cache);
        c->cache = NULL;
    }
    if (c->lt) cublasLtDestroy((cublasLtHandle_t)c->lt);
#elif defined(HB_HAVE_ROCBLAS)
    if (c->lt) rocblas_destroy_handle((rocblas_handle)c->lt);
#endif
    c->lt = NULL;
    if (c->workspace) (void)cudaFree(c->workspace);
    c->workspace = NULL;
}

/* ==== ops ==== */

/* Which engine ran the last GEMM (M > 8): device_info.gemm_impl says it, so a built-in figure
 * (an fp8 block GEMM the vendor library cannot take, a shape without an algorithm) is never
 * taken for a vendor one. */
static void note_gemm(hb_backend *be, int vendor) {
    snprintf(be->info.gemm_impl, sizeof be->info.gemm_impl, "%s", vendor ? HB_GEMM_VENDOR : "builtin");
}

/* The vendor GEMM for f32/bf16/f16 weights. A (M, K) is f32 (cast here to the weight dtype) or
 * already in wdt (used as it is). *ran = 0 when no vendor algorithm serves the shape; *folded =
 * 1 when out already holds beta * out + bias by then (the caller then accumulates onto it with
 * beta 1, no bias). */
static hb_status matmul_vendor(hb_backend *be, float *out, int64_t ldo, const void *a, int64_t lda,
                               hb_dtype adt, const void *w, hb_dtype wdt, const float *bias,
                               int64_t M, int64_t N, int64_t K, float beta, int *ran, int *folded) {
    gpu_ctx *c = ctx_of(be);
    *ran = 0;
    *folded = 0;
    if (c->gemm == GEMM_BUILTIN) return HB_OK;
    /* row-major out (M, N) = a (M, K) @ w^T  <=>  column-major out^T (N, M) = w^T' (N, K) @ a' (K, M):
     * A = w stored (K, N) column-major, transposed; B = a stored (K, M), not transposed */
    const void *b_op = a;
    int64_t ldb = lda;
    float beta_eff = beta;
    const float *bias_eff = bias;
    if (wdt != HB_F32 && adt == HB_F32) {
        TRY(ensure_buffer(be, &c->scratch, &c->scratch_bytes,
                             (size_t)(M * K * hb_dtype_size(wdt))));
        const float *af = (const float *)a;
        const int vec = K % 4 == 0 && lda % 4 == 0 && is_aligned(af, 16);
        const int64_t n = M * (vec ? K / 4 : K);
        if (vec)
            cast_rows_kernel<4><<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(
                c->scratch, wdt, af, lda, M, K);
        else
            cast_rows_kernel<1><<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(
                c->scratch, wdt, af, lda, M, K);
        LAUNCH_CHECK(be, "matmul (cast)");
        b_op = c->scratch;
        ldb = K;
    }
#if !HB_HAVE_LT
    if (bias_eff) { /* rocBLAS has no bias epilogue: fold it into out, then accumulate */
        TRY(scale_bias(be, out, ldo, 0, bias_eff, M, N, 1, beta_eff));
        beta_eff = 1.0f;
        bias_eff = NULL;
        *folded = 1;
    }
#endif
    lt_problem p;
    memset(&p, 0, sizeof p);
    p.trans_a = 1;
    p.trans_b = 0;
    p.m = N, p.n = M, p.k = K, p.batch = 1;
    p.ta = wdt, p.tb = wdt;
    p.A = w, p.lda = K;
    p.B = b_op, p.ldb = ldb;
    p.C = out, p.ldc = ldo;
    p.alpha = 1.0f, p.beta = beta_eff;
    p.bias = bias_eff;
    return lt_run(be, &p, ran);
}

/* dst (M, K) f32 packed = a (M, K, lda apart) in dt, exactly */
__global__ void widen_rows_kernel(float *dst, const void *a, hb_dtype dt, int64_t lda, int64_t M,
                                  int64_t K) {
    GRID_STRIDE(idx, M * K) {
        const int64_t m = idx / K, k = idx % K;
        dst[idx] = ld_any(a, dt, m * lda + k);
    }
}

/* f32 activations (M, K, lda apart) for the GEMV and the built-in GEMM: a itself, or a32
 * widened from bf16/f16 */
static hb_status f32_activations(hb_backend *be, const void *a, hb_dtype adt, int64_t lda, int64_t M,
                                 int64_t K, const float **af, int64_t *ldf) {
    gpu_ctx *c = ctx_of(be);
    *af = (const float *)a;
    *ldf = lda;
    if (adt == HB_F32) return HB_OK;
    TRY(ensure_buffer(be, (void **)&c->a32, &c->a32_bytes, (size_t)(M * K) * sizeof(float)));
    widen_rows_kernel<<<grid_for(c, M * K, THREADS), THREADS, 0, c->stream>>>(c->a32, a, adt, lda, M, K);
    LAUNCH_CHECK(be, "matmul (widen A)");
    *af = c->a32;
    *ldf = K;
    return HB_OK;
}

/* The GEMV (M <= 8) or the built-in GEMM on f32 activations (M, K, lda apart); wq for fp8 w. */
static hb_status matmul_simt(hb_backend *be, float *out, int64_t ldo, const float *a, int64_t lda,
                             const void *w, hb_dtype wdt, const wscales &wq, const float *bias,
                             int64_t M, int64_t N, int64_t K, float beta) {
    if (M <= 8) {
        switch (wdt) {
        case HB_F32: return gemv<HB_F32>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
        case HB_BF16: return gemv<HB_BF16>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
        case HB_F16: return gemv<HB_F16>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
        case HB_FP8_E5M2: return gemv<HB_FP8_E5M2>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
        default: return gemv<HB_FP8_E4M3>(be, out, ldo, a, lda, w, wq, bias, M, N, K, beta);
        }
    }
    note_gemm(be, 0);
    tiled_args g;
    memset(&g, 0, sizeof g);
    g.trans_a = 0, g.trans_b = 1;
    g.m = M, g.n = N, g.k = K;
    g.alpha = 1.0f, g.beta = beta;
    g.a = a, g.lda = lda, g.b = w, g.ldb = K, g.c = out, g.ldc = ldo, g.bias = bias;
    g.bq = wq;
    return gemm_tiled(be, wdt, &g, 1);
}

/* ---- fp8 weights ----
 *
 * The CPU's definition (ops.h): the product of the dequantised operands, f32 accumulation. An
 * f32 A is quantised dynamically to w's dtype as convert would: one scale for w with a tensor
 * scale (or none), 1 x bk tiles for w with bm x bk blocks.
 *   M > 8, e4m3, cuBLASLt: the fp8 tensor cores, scales through the scale pointers: per tensor
 *       on sm_89+; 128 x 128 weight blocks with 1 x 128 activation tiles on sm_90 with cuBLASLt
 *       >= 12.9 (BLK128x128_32F x VEC128_32F, scale grids repacked to its layouts).
 *   otherwise: A dequantised to f32 (code * scale, as the CPU), then the GEMV (each 16-code
 *       chunk's dot product times its weight scale) or the built-in GEMM (codes dequantised as
 *       they are loaded): f32 throughout, on any GPU. */

/* Scales per 16 bytes of qscale, so that each grid starts 16-byte aligned (cuBLASLt). */
static int64_t round4(int64_t n) { return (n + 3) / 4 * 4; }

static hb_status matmul_fp8(hb_backend *be, const hb_matmul_args *x) {
    gpu_ctx *c = ctx_of(be);
    const int64_t M = hb_tensor_rows(&x->a), K = hb_tensor_cols(&x->a), N = hb_tensor_rows(&x->w);
    const int64_t ldo = hb_tensor_ld(&x->out);
    float *out = (float *)x->out.data;
    const float *bias = (const float *)x->bias.data;
    const hb_dtype wdt = x->w.dt;
    float beta = x->beta;
    const int wblock = x->w.q.kind == HB_QUANT_BLOCK;

    /* weight scales */
    wscales wq;
    wq.s = x->w.q.kind == HB_QUANT_NONE ? NULL : x->w.q.scale;
    wq.bm = wblock ? x->w.q.bm : N;
    wq.bk = wblock ? x->w.q.bk : K;
    wq.sc = (K + wq.bk - 1) / wq.bk;

    /* the vendor path, when it can take this problem */
    const int lt_block = wblock && c->fp8_block_gemm && wq.bm == 128 && wq.bk == 128;
    const int use_lt = M > 8 && c->gemm == GEMM_LT && wdt == HB_FP8_E4M3 && K % 16 == 0 &&
                       (wblock ? lt_block : c->fp8_gemm);

    /* A as fp8 codes (M, K, lda apart) with scales qa (groups of 1 x bk, or one) */
    const void *codes = x->a.data;
    int64_t lda = hb_tensor_ld(&x->a);
    qgroups qa;
    memset(&qa, 0, sizeof qa);
    qa.rows = M, qa.cols = K;
    qa.bm = wblock ? 1 : M, qa.bk = wblock ? wq.bk : K;
    qa.srows = (M + qa.bm - 1) / qa.bm, qa.scols = (K + qa.bk - 1) / qa.bk;
    /* scale layout: row-major, or cuBLASLt's VEC128 (n-major, n = M padded to 4) */
    qa.s_rs = use_lt && wblock ? 1 : qa.scols;
    qa.s_cs = use_lt && wblock ? round4(M) : 1;
    const int64_t na = (qa.srows - 1) * qa.s_rs + (qa.scols - 1) * qa.s_cs + 1;
    /* cuBLASLt's BLK128x128 grid: rows of round4(K blocks) scales */
    const int64_t wsr = (N + wq.bm - 1) / wq.bm, wsc4 = round4(wq.sc);
    const int w_repack = use_lt && wblock && (wq.sc != wsc4 || !is_aligned(wq.s, 16));
    TRY(ensure_buffer(be, (void **)&c->qscale, &c->qscale_bytes,
                      (size_t)(round4(na) + (w_repack ? wsr * wsc4 : 0)) * sizeof(float)));
    float *ascale = c->qscale;
    const float *as = NULL; /* A's scales in layout qa (NULL: an fp8 A without scales, 1) */
    if (x->a.dt == HB_F32) {
        TRY(ensure_buffer(be, &c->scratch, &c->scratch_bytes, (size_t)(M * K)));
        qsrc src;
        memset(&src, 0, sizeof src);
        src.p = x->a.data, src.dt = HB_F32, src.ld = lda;
        TRY(quantise(be, c->scratch, wdt, ascale, qa, src));
        codes = c->scratch;
        lda = K;
        as = ascale;
    } else if (x->a.q.kind != HB_QUANT_NONE) { /* A's own scales (ops.c checked they pair) */
        const qgroups own = qgroups_of(&x->a);
        if (qa.s_rs == own.s_rs && qa.s_cs == own.s_cs) {
            as = x->a.q.scale;
        } else {
            TRY(repack_scales(be, ascale, qa.s_rs, qa.s_cs, x->a.q.scale, own.s_rs, own.s_cs,
                              qa.srows, qa.scols));
            as = ascale;
        }
    }

    if (use_lt) {
        const float *wsp = wq.s;
        if (w_repack) {
            float *wpad = c->qscale + round4(na);
            TRY(repack_scales(be, wpad, wsc4, 1, wq.s, wq.sc, 1, wsr, wq.sc));
            wsp = wpad;
        }
        /* fp8 GEMMs take a bf16 bias only: fold out = beta * out + bias first */
        int folded = 0;
        if (bias || beta != 0.0f) {
            TRY(scale_bias(be, out, ldo, 0, bias, M, N, 1, beta));
            folded = 1;
        }
        lt_problem p;
        memset(&p, 0, sizeof p);
        p.trans_a = 1;
        p.trans_b = 0;
        p.m = N, p.n = M, p.k = K, p.batch = 1;
        p.ta = wdt, p.tb = wdt;
        p.A = x->w.data, p.lda = K;
        p.B = codes, p.ldb = lda;
        p.C = out, p.ldc = ldo;
        p.alpha = 1.0f, p.beta = folded ? 1.0f : 0.0f;
        p.scale_mode = wblock ? LT_SCALE_BLOCK : LT_SCALE_TENSOR;
        p.a_scale = wsp;
        p.b_scale = as;
        int ran = 0;
        TRY(lt_run(be, &p, &ran));
        if (ran) {
            note_gemm(be, 1);
            return HB_OK;
        }
        if (folded) { /* out holds beta * out + bias: accumulate onto it */
            beta = 1.0f;
            bias = NULL;
        }
    }

    /* SIMT: A dequantised to f32 (M, K), then the GEMV or the built-in GEMM */
    TRY(ensure_buffer(be, (void **)&c->a32, &c->a32_bytes, (size_t)(M * K) * sizeof(float)));
    TRY(dequantise(be, c->a32, HB_F32, codes, wdt, lda, as, qa));
    return matmul_simt(be, out, ldo, c->a32, K, x->w.data, wdt, wq, bias, M, N, K, beta);
}

hb_status op_matmul(hb_backend *be, const hb_matmul_args *x) {
    const hb_dtype wdt = x->w.dt, adt = x->a.dt;
    const int64_t M = hb_tensor_rows(&x->a), K = hb_tensor_cols(&x->a), N = hb_tensor_rows(&x->w);
    const int64_t ldo = hb_tensor_ld(&x->out), lda_in = hb_tensor_ld(&x->a);
    float *out = (float *)x->out.data;
    const float *bias = (const float *)x->bias.data;
    float beta = x->beta;
    if (wdt != HB_F32 && wdt != HB_BF16 && wdt != HB_F16 && !hb_dtype_is_fp8(wdt))
        return fail(be, HB_ERR_UNSUPPORTED, "%s: op 'matmul' does not support dtype %s",
                    HB_GPU_NAME, dtype_name(wdt));
    if (adt != HB_F32 && adt != wdt)
        return fail(be, HB_ERR_INPUT,
                    "%s: matmul: activations in %s with %s weights (adt must be f32 or the "
                    "weight dtype)",
                    HB_GPU_NAME, dtype_name(adt), dtype_name(wdt));
    if (M < 0 || N < 0 || K < 0 || lda_in < K || ldo < N)
        return fail(be, HB_ERR_INPUT, "%s: matmul: bad shape M=%lld N=%lld K=%lld lda=%lld ldo=%lld",
                    HB_GPU_NAME, (long long)M, (long long)N, (long long)K, (long long)lda_in,
                    (long long)ldo);
    if (M == 0 || N == 0) return HB_OK;
    GPU_ENTER(be);
    if (K == 0) return scale_bias(be, out, ldo, 0, bias, M, N, 1, beta);
    if (hb_dtype_is_fp8(wdt)) return matmul_fp8(be, x);

    if (M > 8) {
        int ran = 0, folded = 0;
        TRY(matmul_vendor(be, out, ldo, x->a.data, lda_in, adt, x->w.data, wdt, bias, M, N, K, beta,
                          &ran, &folded));
        if (ran) {
            note_gemm(be, 1);
            return HB_OK;
        }
        if (folded) { /* out holds beta * out + bias: accumulate onto it */
            beta = 1.0f;
            bias = NULL;
        }
    }
    const float *a = NULL;
    int64_t lda = 0;
    TRY(f32_activations(be, x->a.data, adt, lda_in, M, K, &a, &lda));
    wscales none;
    memset(&none, 0, sizeof none);
    return matmul_simt(be, out, ldo, a, lda, x->w.data, wdt, none, bias, M, N, K, beta);
}

hb_status op_matmul_batched(hb_backend *be, const hb_matmul_batched_args *g) {

    const int64_t m = g->m, n = g->n, k = g->k;
    const int64_t cols_a = g->trans_a ? m : k, cols_b = g->trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0 || g->batch < 0 || g->lda < (cols_a > 1 ? cols_a : 1) ||
        g->ldb < (cols_b > 1 ? cols_b : 1) || g->ldc < (n > 1 ? n : 1))
        return fail(be, HB_ERR_INPUT,
                    "%s: matmul_batched: bad shape m=%lld n=%lld k=%lld lda=%lld ldb=%lld "
                    "ldc=%lld batch=%lld",
                    HB_GPU_NAME, (long long)m, (long long)n, (long long)k, (long long)g->lda,
                    (long long)g->ldb, (long long)g->ldc, (long long)g->batch);
    if (m == 0 || n == 0 || g->batch == 0) return HB_OK;
    GPU_ENTER(be);
    if (k == 0 || g->alpha == 0.0f) /* C = beta * C, beta = 0 overwriting garbage */
        return scale_bias(be, g->c, g->ldc, g->stride_c, NULL, m, n, g->batch, g->beta);

    /* row-major C (m, n) = op(A) op(B)  <=>  column-major C^T (n, m) = op(B)^T op(A)^T:
     * the library's A is our B, its B our A, with the same transposition flags */
    lt_problem p;
    memset(&p, 0, sizeof p);
    p.trans_a = g->trans_b;
    p.trans_b = g->trans_a;
    p.m = n, p.n = m, p.k = k, p.batch = g->batch;
    p.ta = HB_F32, p.tb = HB_F32;
    p.A = g->b, p.lda = g->ldb, p.sa = g->stride_b;
    p.B = g->a, p.ldb = g->lda, p.sb = g->stride_a;
    p.C = g->c, p.ldc = g->ldc, p.sc = g->stride_c;
    p.alpha = g->alpha, p.beta = g->beta;
    int ran = 0;
    if (ctx_of(be)->gemm != GEMM_BUILTIN) TRY(lt_run(be, &p, &ran));
    note_gemm(be, ran);
    if (ran) return HB_OK;
    tiled_args t;
    memset(&t, 0, sizeof t);
    t.trans_a = g->trans_a, t.trans_b = g->trans_b;
    t.m = m, t.n = n, t.k = k;
    t.alpha = g->alpha, t.beta = g->beta;
    t.a = g->a, t.lda = g->lda, t.stride_a = g->stride_a;
    t.b = g->b, t.ldb = g->ldb, t.stride_b = g->stride_b;
    t.c = g->c, t.ldc = g->ldc, t.stride_c = g->stride_c;
    return gemm_tiled(be, HB_F32, &t, g->batch);
}

} // namespace HB_GPU_NS
