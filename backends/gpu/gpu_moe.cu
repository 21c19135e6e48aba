/* gpu_moe.cu - the Mixture-of-Experts and multi-head latent attention ops on the GPU (ops.h):
 * moe_route, moe_permute, matmul_grouped, moe_combine, mla_attention. The specification is the
 * CPU's (backends/cpu/cpu_moe.c); this file computes the same things in parallel:
 *
 *   moe_route       one block per token row: scores (softmax / sigmoid) and choice values in
 *                   shared memory, the softmax sum in double in the CPU's order (one thread: E
 *                   terms), group scores one thread per group, the top-k as ranks in the
 *                   order (choice desc, expert index asc): the CPU's repeated "largest, lowest
 *                   index on ties" selection, so the ids are the CPU's bit for bit on ties
 *   moe_permute     the CPU's stable counting sort: one block per expert ranks its slots in
 *                   slot order (per-thread contiguous segments + one scan), one thread turns
 *                   the counts into offsets, one block per slot copies its token's row
 *   matmul_grouped  decode (<= 8 rows in all, f32/bf16/f16 experts): one grouped GEMV launch
 *                   that reads the offsets on the device; otherwise the expert offsets read
 *                   back to the host (one small copy and a stream sync), then one matmul per
 *                   expert with rows through the existing engine
 *                   (gpu_gemm.cu): the GEMV for <= 8 rows, cuBLASLt (or the built-in GEMM) for
 *                   more, every weight dtype and scale recipe matmul has. CUDA 13.0's cuBLASLt
 *                   has no grouped GEMM; cuBLAS's cublasGemmGroupedBatchedEx would add a
 *                   libcublas dependency, needs the sizes on the host as well, and has no fp8
 *                   scales (backends/GPU.md)
 *   moe_combine     one block per token row, the k terms summed in order j = 0, 1, ...
 *   mla_attention   latents stored into the cache, wkv_b dequantised to f32 (the CPU's
 *                   definition), then
 *                     prefill (absorb 0): K_nope/V materialised per sequence by one matmul,
 *                       attention over them;
 *                     decode (absorb 1): q_lat = W_UK_h^T q_nope_h for all heads by one
 *                       strided batched GEMM, attention over the latent cache itself, the
 *                       output W_UV_h o_lat by a second batched GEMM;
 *                   the attention kernel: one block per (query, head), positions split across
 *                   the warps, online softmax per warp, warps merged in shared memory. */
#include "gpu.cuh"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace HB_GPU_NS {

static unsigned moe_rows_grid(int64_t rows) {
    return (unsigned)(rows < 1 ? 1 : rows < 65535 * 16 ? rows : 65535 * 16);
}

/* ==== router ==== */

static const int ROUTE_THREADS = 128;

/* The router's order: a before b when a's value is larger, or equal with a lower index. NaN
 * ranks as -inf (the order stays total, so the ids are always k distinct experts; the CPU's
 * selection with NaN scores is not specified beyond that). */
static __device__ __forceinline__ bool route_before(float va, int64_t ia, float vb, int64_t ib) {
    va = isnan(va) ? -INFINITY : va;
    vb = isnan(vb) ? -INFINITY : vb;
    return va > vb || (va == vb && ia < ib);
}

/* Rows n of logits (N, E), ld apart -> ids, weights (N, k). Dynamic shared memory: pop[E]
 * (double, zipf popularity), s[E] scores, cv[E] choice values, sel[k] the chosen experts. */
__global__ void __launch_bounds__(128)
moe_route_kernel(int32_t *ids, float *weights, const float *logits, int64_t ld, int64_t N,
                 int64_t E, const float *bias, int kind, int64_t k, int64_t G, int64_t topk_group,
                 int norm, float scale, int mode, float zipf_s, uint64_t seed, int64_t row0) {
    extern __shared__ double route_sm[];
    __shared__ float red[32];
    __shared__ float gs[256]; /* n_group <= 256 (ops.c) */
    __shared__ unsigned char keep[256];
    __shared__ double dsum;
    double *pop = route_sm;
    float *s = (float *)(route_sm + E), *cv = s + E;
    int32_t *sel = (int32_t *)(cv + E);
    const int tid = threadIdx.x, nt = blockDim.x;
    const int64_t per = G > 1 ? E / G : E;
    if (mode == HB_ROUTING_ZIPF)
        for (int64_t e = tid; e < E; e += nt) pop[e] = pow((double)(e + 1), -(double)zipf_s);
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *lg = logits + n * ld;
        const int64_t r = row0 + n;
        if (kind == HB_ROUTER_SOFTMAX) {
            float mx = -INFINITY;
            for (int64_t e = tid; e < E; e += nt) mx = fmaxf(mx, lg[e]);
            mx = block_max(mx, red);
            for (int64_t e = tid; e < E; e += nt) s[e] = expf(lg[e] - mx);
            __syncthreads();
            if (tid == 0) { /* the CPU's sum: double, in expert order */
                double sum = 0.0;
                for (int64_t e = 0; e < E; e++) sum += s[e];
                dsum = sum;
            }
            __syncthreads();
            const float inv = (float)(1.0 / dsum);
            for (int64_t e = tid; e < E; e += nt) s[e] *= inv;
        } else {
            for (int64_t e = tid; e < E; e += nt) s[e] = 1.0f / (1.0f + expf(-lg[e]));
        }
        for (int64_t e = tid; e < E; e += nt) cv[e] = bias ? s[e] + bias[e] : s[e];
        __syncthreads();
        if (mode == HB_ROUTING_MODEL) {
            if (G > 1) {
                /* a group's score: its largest choice value plus its second largest */
                for (int64_t g = tid; g < G; g += nt) {
                    const float *cg = cv + g * per;
                    int64_t i1 = 0;
                    for (int64_t i = 1; i < per; i++)
                        if (cg[i] > cg[i1]) i1 = i;
                    float second = -INFINITY;
                    for (int64_t i = 0; i < per; i++)
                        if (i != i1 && cg[i] > second) second = cg[i];
                    gs[g] = per > 1 ? cg[i1] + second : cg[i1];
                }
                __syncthreads();
                for (int64_t g = tid; g < G; g += nt) {
                    int64_t rank = 0;
                    for (int64_t g2 = 0; g2 < G; g2++) rank += route_before(gs[g2], g2, gs[g], g);
                    keep[g] = rank < topk_group;
                }
                __syncthreads();
            }
            for (int64_t e = tid; e < E; e += nt) {
                if (G > 1 && !keep[e / per]) continue;
                int64_t rank = 0;
                for (int64_t e2 = 0; e2 < E; e2++)
                    rank += (G <= 1 || keep[e2 / per]) && route_before(cv[e2], e2, cv[e], e);
                if (rank < k) sel[rank] = (int32_t)e;
            }
        } else if (mode == HB_ROUTING_BALANCED) {
            for (int64_t j = tid; j < k; j += nt) sel[j] = (int32_t)((r * k + j) % E);
        } else if (tid == 0) { /* zipf: the CPU's draws, cv as the "not drawn yet" flags */
            double total = 0.0;
            for (int64_t e = 0; e < E; e++) {
                total += pop[e];
                cv[e] = 1.0f;
            }
            for (int64_t j = 0; j < k; j++) {
                const double u = (double)hb_rng_unit(seed, (uint64_t)(r * k + j)) * total;
                double acc = 0.0;
                int64_t pick = -1, last = -1;
                for (int64_t e = 0; e < E; e++) {
                    if (cv[e] == 0.0f) continue;
                    last = e;
                    acc += pop[e];
                    if (u < acc) {
                        pick = e;
                        break;
                    }
                }
                if (pick < 0) pick = last;
                sel[j] = (int32_t)pick;
                cv[pick] = 0.0f;
                total -= pop[pick];
            }
        }
        __syncthreads();
        if (tid == 0) { /* weights: the chosen scores, normalised (double sum), scaled */
            double sum = 0.0;
            for (int64_t j = 0; j < k; j++) sum += s[sel[j]];
            const float inv = norm ? (float)(1.0 / (sum + 1e-20)) : 1.0f;
            for (int64_t j = 0; j < k; j++) {
                ids[n * k + j] = sel[j];
                weights[n * k + j] = s[sel[j]] * inv * scale;
            }
        }
        __syncthreads(); /* s, cv, sel are the next row's */
    }
}

hb_status op_moe_route(hb_backend *be, const hb_moe_route_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), E = hb_tensor_cols(&a->logits);
    const int64_t ld = hb_tensor_ld(&a->logits), k = a->top_k;
    if (N <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    const size_t smem = (size_t)E * (sizeof(double) + 2 * sizeof(float)) + (size_t)k * sizeof(int32_t);
    if (smem > 48 * 1024)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: moe_route: %lld experts need %zu bytes of shared memory (at most 48 KiB)",
                    HB_GPU_NAME, (long long)E, smem);
    moe_route_kernel<<<moe_rows_grid(N), ROUTE_THREADS, smem, c->stream>>>(
        a->ids, a->weights, (const float *)a->logits.data, ld, N, E, (const float *)a->bias.data, (int)a->kind, k,
        a->n_group, a->topk_group, a->norm, a->scale, (int)a->mode, a->zipf_s, a->seed, a->row0);
    LAUNCH_CHECK(be, "moe_route");
    return HB_OK;
}

/* ==== permutation ==== */

static const int PERM_THREADS = 256;

/* Block e: rows[s] = the rank of slot s among expert e's slots (slot order), offsets[e + 1] =
 * their count. Thread i takes a contiguous segment of slots, so ranks follow slot order after
 * one exclusive scan of the per-thread counts. Slots with an id outside 0..E-1 are skipped. */
__global__ void __launch_bounds__(256)
moe_rank_kernel(int32_t *rows, int32_t *offsets, const int32_t *ids, int64_t S, int64_t E) {
    __shared__ int32_t cnt[1024];
    const int tid = threadIdx.x, nt = blockDim.x;
    const int64_t seg = (S + nt - 1) / nt, s0 = tid * seg, s1 = s0 + seg < S ? s0 + seg : S;
    for (int64_t e = blockIdx.x; e < E; e += gridDim.x) {
        int32_t n = 0;
        for (int64_t s = s0; s < s1; s++) n += ids[s] == e;
        cnt[tid] = n;
        __syncthreads();
        if (tid == 0) {
            int32_t acc = 0;
            for (int i = 0; i < nt; i++) {
                const int32_t x = cnt[i];
                cnt[i] = acc;
                acc += x;
            }
            offsets[e + 1] = acc;
        }
        __syncthreads();
        int32_t rk = cnt[tid];
        for (int64_t s = s0; s < s1; s++)
            if (ids[s] == e) rows[s] = rk++;
        __syncthreads(); /* cnt is the next expert's */
    }
}

/* offsets (E + 1): counts in offsets[1..E] -> their running sums, offsets[0] = 0 (E terms on
 * one thread: a few hundred experts). */
__global__ void moe_offsets_kernel(int32_t *offsets, int64_t E) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    offsets[0] = 0;
    for (int64_t e = 0; e < E; e++) offsets[e + 1] += offsets[e];
}

/* Block per slot s: rows[s] += offsets[ids[s]] (the rank becomes the row), then the row of
 * token s / k into xp. */
__global__ void __launch_bounds__(256)
moe_gather_kernel(float *xp, int32_t *rows, const int32_t *offsets, const int32_t *ids, const float *x,
                  int64_t ldx, int64_t S, int64_t k, int64_t C, int64_t E) {
    for (int64_t s = blockIdx.x; s < S; s += gridDim.x) {
        const int32_t id = ids[s];
        if (id < 0 || id >= E) continue; /* the same s for the whole block: no divergence */
        const int64_t r = (int64_t)offsets[id] + rows[s];
        __syncthreads(); /* every thread has read rows[s] */
        if (threadIdx.x == 0) rows[s] = (int32_t)r;
        const float *src = x + (s / k) * ldx;
        float *dst = xp + r * C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
    }
}

hb_status op_moe_permute(hb_backend *be, const hb_moe_permute_args *a) {
    const int64_t k = a->top_k, E = a->n_experts, N = hb_tensor_rows(&a->x), C = hb_tensor_cols(&a->x);
    const int64_t S = N * k;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    /* offsets[1..E] are written by the rank kernel (one block per expert, every expert) */
    moe_rank_kernel<<<moe_rows_grid(E), PERM_THREADS, 0, c->stream>>>(a->rows, a->offsets, a->ids, S, E);
    LAUNCH_CHECK(be, "moe_permute (ranks)");
    moe_offsets_kernel<<<1, 64, 0, c->stream>>>(a->offsets, E);
    LAUNCH_CHECK(be, "moe_permute (offsets)");
    if (S <= 0) return HB_OK;
    moe_gather_kernel<<<moe_rows_grid(S), PERM_THREADS, 0, c->stream>>>(
        (float *)a->xp.data, a->rows, a->offsets, a->ids, (const float *)a->x.data, hb_tensor_ld(&a->x), S, k, C, E);
    LAUNCH_CHECK(be, "moe_permute (gather)");
    return HB_OK;
}

/* ==== grouped GEMM ==== */

/* Decode (a has <= 8 rows, so every expert has <= 8): one launch, the offsets read on the
 * device, no host round trip. Block (x, e): warp w computes weight row n = x nw + w of expert
 * e against the expert's rows, lanes along K (coalesced), f32 accumulation as matmul's GEMV.
 * Experts without rows leave at once. f32/bf16/f16 weights (fp8 quantises a per expert first:
 * the per-expert path). */
/* The weights of one 16-byte chunk as f32: 4 (f32) or 8 (bf16, f16), little-endian. */
template <int DT>
static __device__ __forceinline__ void unpack_chunk(const uint4 r, float *f) {
    const uint32_t u[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (DT == HB_F32) {
            f[i] = __uint_as_float(u[i]);
        } else if (DT == HB_BF16) {
            f[2 * i] = __uint_as_float(u[i] << 16);
            f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
        } else {
            f[2 * i] = f16_bits_to_f32(u[i] & 0xffffu);
            f[2 * i + 1] = f16_bits_to_f32(u[i] >> 16);
        }
    }
}

template <int DT>
__global__ void __launch_bounds__(256)
grouped_gemv_kernel(float *out, const float *a, const void *w, const int32_t *offsets, int64_t N, int64_t K, int64_t R,
                    int vec) {
    constexpr int EPV = DT == HB_F32 ? 4 : 8; /* elements per 16-byte chunk */
    const int ws = warpSize, lane = threadIdx.x % ws, nw = blockDim.x / ws;
    const int64_t e = blockIdx.y, r0 = offsets[e], r1 = offsets[e + 1];
    const int64_t n = (int64_t)blockIdx.x * nw + threadIdx.x / ws;
    if (r1 <= r0 || r0 < 0 || r1 > R || n >= N) return; /* whole warps: no shuffle is left waiting */
    const int M = (int)(r1 - r0);
    const int64_t wrow = (e * N + n) * K;
    float acc[8];
#pragma unroll
    for (int m = 0; m < 8; m++) acc[m] = 0.0f;
    int64_t k0 = 0;
    if (vec) { /* 16-byte loads of the weight row: K * esz % 16 == 0, w 16-byte aligned */
        const uint4 *wr = (const uint4 *)((const char *)w + wrow * (DT == HB_F32 ? 4 : 2));
        const int64_t nv = K / EPV;
        for (int64_t v = lane; v < nv; v += ws) {
            float wf[EPV];
            unpack_chunk<DT>(wr[v], wf);
#pragma unroll
            for (int m = 0; m < 8; m++)
                if (m < M) {
                    const float *ar = a + (r0 + m) * K + v * EPV;
#pragma unroll
                    for (int i = 0; i < EPV; i++) acc[m] += ar[i] * wf[i];
                }
        }
        k0 = nv * EPV;
    }
    for (int64_t k = k0 + lane; k < K; k += ws) {
        const float wk = ld_w<DT>(w, wrow + k);
#pragma unroll
        for (int m = 0; m < 8; m++)
            if (m < M) acc[m] += a[(r0 + m) * K + k] * wk;
    }
    for (int m = 0; m < M; m++) { /* M is the same for the whole warp */
        const float v = warp_sum(acc[m]);
        if (lane == 0) out[(r0 + m) * N + n] = v;
    }
}

static hb_status grouped_gemv(hb_backend *be, const hb_matmul_grouped_args *a, int64_t E, int64_t N, int64_t K,
                              int64_t R) {
    gpu_ctx *c = ctx_of(be);
    const int threads = 256, nw = threads / c->warp_size;
    const dim3 grid((unsigned)((N + nw - 1) / nw), (unsigned)E);
    float *out = (float *)a->out.data;
    const float *x = (const float *)a->a.data;
    const int vec = is_aligned(a->w.data, 16) && (K * hb_dtype_size(a->w.dt)) % 16 == 0;
    switch (a->w.dt) {
    case HB_F32: grouped_gemv_kernel<HB_F32><<<grid, threads, 0, c->stream>>>(out, x, a->w.data, a->offsets, N, K, R, vec); break;
    case HB_BF16: grouped_gemv_kernel<HB_BF16><<<grid, threads, 0, c->stream>>>(out, x, a->w.data, a->offsets, N, K, R, vec); break;
    default: grouped_gemv_kernel<HB_F16><<<grid, threads, 0, c->stream>>>(out, x, a->w.data, a->offsets, N, K, R, vec); break;
    }
    LAUNCH_CHECK(be, "matmul_grouped (gemv)");
    return HB_OK;
}

hb_status op_matmul_grouped(hb_backend *be, const hb_matmul_grouped_args *a) {
    const int64_t E = a->w.ne[0], Nw = a->w.ne[1], K = a->w.ne[2], R = hb_tensor_rows(&a->a);
    const int64_t esz = hb_dtype_size(a->w.dt);
    const hb_dtype wdt = a->w.dt;
    if (wdt != HB_F32 && wdt != HB_BF16 && wdt != HB_F16 && !hb_dtype_is_fp8(wdt))
        return fail(be, HB_ERR_UNSUPPORTED, "%s: op 'matmul_grouped' does not support dtype %s", HB_GPU_NAME,
                    dtype_name(wdt));
    if (E <= 0 || R <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    if (R <= 8 && E <= 65535 && (Nw + 3) / 4 <= INT_MAX && (wdt == HB_F32 || wdt == HB_BF16 || wdt == HB_F16))
        return grouped_gemv(be, a, E, Nw, K, R);
    /* the per-expert row counts decide the launches: read them back (E + 1 int32) */
    int32_t *off = (int32_t *)malloc((size_t)(E + 1) * sizeof *off);
    if (!off) return fail(be, HB_ERR_NOMEM, "%s: matmul_grouped: cannot allocate %lld offsets", HB_GPU_NAME, (long long)(E + 1));
    cudaError_t ce = cudaMemcpyAsync(off, a->offsets, (size_t)(E + 1) * sizeof *off, cudaMemcpyDeviceToHost, c->stream);
    if (ce == cudaSuccess) ce = cudaStreamSynchronize(c->stream);
    if (ce != cudaSuccess) {
        free(off);
        return fail_rt(be, ce, "matmul_grouped: reading the expert offsets", __FILE__, __LINE__);
    }
    const int block = a->w.q.kind == HB_QUANT_BLOCK;
    const int64_t bm = block && a->w.q.bm > 0 ? a->w.q.bm : 1, bk = block && a->w.q.bk > 0 ? a->w.q.bk : 1;
    const int64_t scols = (K + bk - 1) / bk;
    hb_status st = HB_OK;
    for (int64_t e = 0; e < E && st == HB_OK; e++) {
        const int64_t r0 = off[e], n = (int64_t)off[e + 1] - r0;
        if (n <= 0) continue;
        if (r0 < 0 || r0 + n > R) {
            st = fail(be, HB_ERR_INPUT, "%s: matmul_grouped: expert %lld owns rows %lld..%lld of %lld (offsets)",
                      HB_GPU_NAME, (long long)e, (long long)r0, (long long)(r0 + n - 1), (long long)R);
            break;
        }
        hb_matmul_args m;
        memset(&m, 0, sizeof m);
        m.out = hb_t2((float *)a->out.data + r0 * Nw, HB_F32, n, Nw, Nw);
        m.a = hb_t2((const float *)a->a.data + r0 * K, HB_F32, n, K, K);
        m.w = hb_t2((const char *)a->w.data + e * Nw * K * esz, wdt, Nw, K, K);
        if (a->w.q.kind == HB_QUANT_TENSOR) {
            m.w.q.kind = HB_QUANT_TENSOR;
            m.w.q.scale = a->w.q.scale;
        } else if (block) {
            m.w.q.kind = HB_QUANT_BLOCK;
            m.w.q.bm = bm;
            m.w.q.bk = bk;
            m.w.q.scale = a->w.q.scale + e * (Nw / bm) * scols;
        }
        st = op_matmul(be, &m);
    }
    free(off);
    return st;
}

/* ==== combine ==== */

__global__ void __launch_bounds__(256)
moe_combine_kernel(float *out, int64_t ldo, const float *y, const int32_t *rows, const float *w, int64_t N,
                   int64_t C, int64_t k, float beta) {
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        float *o = out + n * ldo;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            float acc = beta == 0.0f ? 0.0f : beta * o[c];
            for (int64_t j = 0; j < k; j++) acc += w[n * k + j] * y[(int64_t)rows[n * k + j] * C + c];
            o[c] = acc;
        }
    }
}

hb_status op_moe_combine(hb_backend *be, const hb_moe_combine_args *a) {
    const int64_t N = hb_tensor_rows(&a->out), C = hb_tensor_cols(&a->out), ldo = hb_tensor_ld(&a->out);
    if (N <= 0 || C <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    moe_combine_kernel<<<moe_rows_grid(N), 256, 0, c->stream>>>((float *)a->out.data, ldo, (const float *)a->y.data,
                                                               a->rows, a->weights, N, C, a->top_k, a->beta);
    LAUNCH_CHECK(be, "moe_combine");
    return HB_OK;
}

/* ==== multi-head latent attention ==== */

static const int MLA_THREADS = 128;

/* cache[(b S + pos0 + t) Dl + i] = latent[(b T + t) ldl + i], rounded to the cache dtype */
__global__ void mla_store_kernel(void *cache, hb_dtype ct, const float *lat, int64_t ldl, int64_t T, int64_t S,
                                 int64_t pos0, int64_t Dl, int64_t n) {
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = idx % Dl, row = idx / Dl, b = row / T, t = row % T;
        st_any(cache, ct, (b * S + pos0 + t) * Dl + i, lat[row * ldl + i]);
    }
}

/* dst (L, dc) f32 = the first dc elements of cache rows b S .. b S + L - 1 (Dl apart) */
__global__ void mla_widen_kernel(float *dst, const void *cache, hb_dtype ct, int64_t base, int64_t Dl, int64_t dc,
                                 int64_t n) {
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x)
        dst[idx] = ld_any(cache, ct, base + (idx / dc) * Dl + idx % dc);
}

/* One block per (head h = blockIdx.x, query row n = n0 + blockIdx.y): query t = n % T of
 * sequence b = n / T attends positions 0..pos0+t. The heads of one row are consecutive blocks,
 * so they run together and read the same cache rows: from DRAM once, the other heads from L2. Positions are split across the warps (one
 * position per warp at a time, its dot product across the lanes), each warp keeps an online
 * softmax (max m, sum l, accumulator o[dv] in shared memory), the warps are merged at the end.
 *   ABS = 1: the key and the value of position s are the latent c_s (dk = dv = dc, cache
 *            dtype CT); qk is q_lat (f32).
 *   ABS = 0: key K_nope (dk = dn) and value V (dv) from kv (f32, rows ldkv apart, head h at
 *            h * hkv); qk is q_nope.
 * Both add q_pe . k_pe, k_pe = cache row [dc, dc + dr). out[n ldo + h ho + i] = o_i / l. */
template <int CT, int ABS>
__global__ void __launch_bounds__(128)
mla_attn_kernel(float *out, int64_t ldo, int64_t ho, const float *qk, int64_t ldqk, int64_t hqk, const float *qr,
                int64_t ldqr, const void *cache, int64_t S, int64_t Dl, int64_t dc, int64_t dr, const float *kv,
                int64_t ldkv, int64_t hkv, int64_t dk, int64_t dv, int64_t T, int64_t pos0, int64_t n0, float scale) {
    extern __shared__ float mla_sm[]; /* q[dk + dr], m[nw], l[nw], o[nw][dv] */
    const int ws = warpSize, lane = threadIdx.x % ws, wid = threadIdx.x / ws, nw = blockDim.x / ws;
    const int64_t n = n0 + blockIdx.y, b = n / T, t = n % T, h = blockIdx.x, L = pos0 + t + 1;
    float *qs = mla_sm, *sm_m = qs + dk + dr, *sm_l = sm_m + nw, *sm_o = sm_l + nw;
    for (int64_t i = threadIdx.x; i < dk; i += blockDim.x) qs[i] = qk[n * ldqk + h * hqk + i];
    for (int64_t i = threadIdx.x; i < dr; i += blockDim.x) qs[dk + i] = qr[n * ldqr + h * dr + i];
    float *o = sm_o + wid * dv;
    for (int64_t i = lane; i < dv; i += ws) o[i] = 0.0f;
    __syncthreads();
    float m = -INFINITY, l = 0.0f;
    for (int64_t s = wid; s < L; s += nw) {
        const int64_t cr = (b * S + s) * Dl;
        float d = 0.0f;
        if (ABS) {
            for (int64_t i = lane; i < dc; i += ws) d += qs[i] * ld_w<CT>(cache, cr + i);
        } else {
            const float *kr = kv + s * ldkv + h * hkv;
            for (int64_t i = lane; i < dk; i += ws) d += qs[i] * kr[i];
        }
        for (int64_t i = lane; i < dr; i += ws) d += qs[dk + i] * ld_w<CT>(cache, cr + dc + i);
        const float sc = warp_sum(d) * scale;
        const float mn = fmaxf(m, sc), corr = expf(m - mn), p = expf(sc - mn);
        l = l * corr + p;
        if (ABS) {
            for (int64_t i = lane; i < dv; i += ws) o[i] = o[i] * corr + p * ld_w<CT>(cache, cr + i);
        } else {
            const float *vr = kv + s * ldkv + h * hkv + dk;
            for (int64_t i = lane; i < dv; i += ws) o[i] = o[i] * corr + p * vr[i];
        }
        m = mn;
    }
    if (lane == 0) {
        sm_m[wid] = m;
        sm_l[wid] = l;
    }
    __syncthreads();
    float M = -INFINITY, Ls = 0.0f;
    for (int w = 0; w < nw; w++) M = fmaxf(M, sm_m[w]);
    for (int w = 0; w < nw; w++)
        if (sm_m[w] != -INFINITY) Ls += sm_l[w] * expf(sm_m[w] - M);
    for (int64_t i = threadIdx.x; i < dv; i += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < nw; w++)
            if (sm_m[w] != -INFINITY) acc += sm_o[w * dv + i] * expf(sm_m[w] - M);
        out[n * ldo + h * ho + i] = acc / Ls;
    }
}

struct mla_launch {
    float *out;
    int64_t ldo, ho;
    const float *qk;
    int64_t ldqk, hqk;
    const float *qr;
    int64_t ldqr;
    const void *cache;
    int64_t S, Dl, dc, dr;
    const float *kv;
    int64_t ldkv, hkv, dk, dv, T, pos0, n0, rows, H;
    float scale;
};

template <int ABS>
static hb_status launch_mla(hb_backend *be, hb_dtype ct, const mla_launch &p) {
    gpu_ctx *c = ctx_of(be);
    const int nw = MLA_THREADS / c->warp_size;
    const size_t smem = (size_t)(p.dk + p.dr + 2 * nw + (int64_t)nw * p.dv) * sizeof(float);
    if (smem > 48 * 1024)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: mla_attention: latent/head width needs %zu bytes of shared memory (at most 48 KiB)",
                    HB_GPU_NAME, smem);
    if (p.H > INT_MAX)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: mla_attention: %lld heads", HB_GPU_NAME, (long long)p.H);
    for (int64_t r0 = 0; r0 < p.rows; r0 += 65535) { /* gridDim.y is at most 65535 */
        const int64_t nr = p.rows - r0 < 65535 ? p.rows - r0 : 65535;
        const dim3 grid((unsigned)p.H, (unsigned)nr);
        const int64_t n0 = p.n0 + r0;
#define MLA_K(CT)                                                                                                   \
    mla_attn_kernel<CT, ABS><<<grid, MLA_THREADS, smem, c->stream>>>(p.out, p.ldo, p.ho, p.qk, p.ldqk, p.hqk, p.qr, \
                                                                     p.ldqr, p.cache, p.S, p.Dl, p.dc, p.dr, p.kv, \
                                                                     p.ldkv, p.hkv, p.dk, p.dv, p.T, p.pos0, n0,   \
                                                                     p.scale)
        switch (ct) {
        case HB_F32: MLA_K(HB_F32); break;
        case HB_BF16: MLA_K(HB_BF16); break;
        case HB_F16: MLA_K(HB_F16); break;
        case HB_FP8_E5M2: MLA_K(HB_FP8_E5M2); break;
        default: MLA_K(HB_FP8_E4M3); break;
        }
#undef MLA_K
        LAUNCH_CHECK(be, "mla_attention");
    }
    return HB_OK;
}

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

hb_status op_mla_attention(hb_backend *be, const hb_mla_attention_args *a) {
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, H = a->H, dn = a->dn, dr = a->dr, dv = a->dv;
    const int64_t S = a->cache.ne[1], Dl = a->cache.ne[2], dc = Dl - dr, dkv = dn + dv, N = B * T, L_all = pos0 + T;
    const int64_t ldq = hb_tensor_ld(&a->q), ldl = hb_tensor_ld(&a->latent), ldo = hb_tensor_ld(&a->out);
    const hb_dtype ct = a->cache.dt, wt = a->wkv_b.dt;
    if (ct != HB_F32 && ct != HB_BF16 && ct != HB_F16 && !hb_dtype_is_fp8(ct))
        return fail(be, HB_ERR_UNSUPPORTED, "%s: mla_attention: cache dtype %s", HB_GPU_NAME, dtype_name(ct));
    if (wt != HB_F32 && wt != HB_BF16 && wt != HB_F16 && !hb_dtype_is_fp8(wt))
        return fail(be, HB_ERR_UNSUPPORTED, "%s: mla_attention: wkv_b dtype %s", HB_GPU_NAME, dtype_name(wt));
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);

    /* the new positions into the cache, rounded to its dtype */
    const int64_t nst = N * Dl;
    mla_store_kernel<<<grid_for(c, nst, 256), 256, 0, c->stream>>>(a->cache.data, ct, (const float *)a->latent.data, ldl,
                                                                    T, S, pos0, Dl, nst);
    LAUNCH_CHECK(be, "mla_attention (cache store)");

    /* scratch: W f32 (H dkv, dc); absorbed: q_lat, o_lat (N, H dc); materialised: the latents
     * as f32 (L_all, dc) for a non-f32 cache, K_nope/V (L_all, H dkv) */
    const size_t nW = align256((size_t)(H * dkv * dc) * sizeof(float));
    const size_t nQ = a->absorb ? align256((size_t)(N * H * dc) * sizeof(float)) : 0;
    const size_t nLat = !a->absorb && ct != HB_F32 ? align256((size_t)(L_all * dc) * sizeof(float)) : 0;
    const size_t nKV = a->absorb ? 0 : align256((size_t)(L_all * H * dkv) * sizeof(float));
    TRY(ensure_buffer(be, &c->mla_buf, &c->mla_bytes, nW + 2 * nQ + nLat + nKV));
    char *base = (char *)c->mla_buf;
    float *W = (float *)base;
    float *ql = (float *)(base + nW), *ol = (float *)(base + nW + nQ);
    float *lat32 = (float *)(base + nW + 2 * nQ), *kv = (float *)(base + nW + 2 * nQ + nLat);

    /* wkv_b dequantised (convert's code x scale; bf16/f16 widened exactly) */
    const qgroups g = qgroups_of(&a->wkv_b);
    TRY(dequantise(be, W, HB_F32, a->wkv_b.data, wt, dc, a->wkv_b.q.kind == HB_QUANT_NONE ? NULL : a->wkv_b.q.scale, g));

    const float scale = 1.0f / sqrtf((float)(dn + dr));
    const float *q = (const float *)a->q.data;
    mla_launch p;
    memset(&p, 0, sizeof p);
    p.qr = q + H * dn, p.ldqr = ldq;
    p.cache = a->cache.data, p.S = S, p.Dl = Dl, p.dc = dc, p.dr = dr;
    p.T = T, p.pos0 = pos0, p.H = H, p.scale = scale;
    if (a->absorb) {
        /* q_lat (N, H dc): head h = q_nope_h (N, dn) @ W_UK_h (dn, dc) */
        hb_matmul_batched_args g1;
        memset(&g1, 0, sizeof g1);
        g1.m = N, g1.n = dc, g1.k = dn, g1.batch = H, g1.alpha = 1.0f, g1.beta = 0.0f;
        g1.a = q, g1.lda = ldq, g1.stride_a = dn;
        g1.b = W, g1.ldb = dc, g1.stride_b = dkv * dc;
        g1.c = ql, g1.ldc = H * dc, g1.stride_c = dc;
        TRY(op_matmul_batched(be, &g1));
        p.out = ol, p.ldo = H * dc, p.ho = dc;
        p.qk = ql, p.ldqk = H * dc, p.hqk = dc;
        p.dk = dc, p.dv = dc, p.n0 = 0, p.rows = N;
        TRY(launch_mla<1>(be, ct, p));
        /* out (N, H dv): head h = o_lat_h (N, dc) @ W_UV_h^T, W_UV_h (dv, dc) */
        hb_matmul_batched_args g2;
        memset(&g2, 0, sizeof g2);
        g2.trans_b = 1;
        g2.m = N, g2.n = dv, g2.k = dc, g2.batch = H, g2.alpha = 1.0f, g2.beta = 0.0f;
        g2.a = ol, g2.lda = H * dc, g2.stride_a = dc;
        g2.b = W + dn * dc, g2.ldb = dc, g2.stride_b = dkv * dc;
        g2.c = (float *)a->out.data, g2.ldc = ldo, g2.stride_c = dv;
        return op_matmul_batched(be, &g2);
    }
    for (int64_t b = 0; b < B; b++) {
        /* K_nope and V of every cached position of sequence b: (L_all, H dkv) = lat @ W^T */
        const float *lat = (const float *)a->cache.data + b * S * Dl;
        int64_t ldlat = Dl;
        if (ct != HB_F32) {
            const int64_t nl = L_all * dc;
            mla_widen_kernel<<<grid_for(c, nl, 256), 256, 0, c->stream>>>(lat32, a->cache.data, ct, b * S * Dl, Dl, dc, nl);
            LAUNCH_CHECK(be, "mla_attention (latents)");
            lat = lat32;
            ldlat = dc;
        }
        hb_matmul_args mm;
        memset(&mm, 0, sizeof mm);
        mm.out = hb_t2(kv, HB_F32, L_all, H * dkv, H * dkv);
        mm.a = hb_t2(lat, HB_F32, L_all, dc, ldlat);
        mm.w = hb_t2(W, HB_F32, H * dkv, dc, dc);
        TRY(op_matmul(be, &mm));
        p.out = (float *)a->out.data, p.ldo = ldo, p.ho = dv;
        p.qk = q, p.ldqk = ldq, p.hqk = dn;
        p.kv = kv, p.ldkv = H * dkv, p.hkv = dkv;
        p.dk = dn, p.dv = dv, p.n0 = b * T, p.rows = T;
        TRY(launch_mla<0>(be, ct, p));
    }
    return HB_OK;
}

} // namespace HB_GPU_NS
