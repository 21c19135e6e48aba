/* gpu_serve.cu - the serving ops of the GPU backend (ops.h): attention_paged, varlen causal
 * grouped-query attention over a paged KV cache (the serve workload's continuous batch). The
 * CPU's hb_cpu_attention_paged (backends/cpu/cpu_serve.c) is the specification.
 *
 * The kernel is the decode attention of gpu_ops.cu (attn_split_kernel: flash-decoding) with the
 * key address looked up in the block table: one block of 128 threads per (key chunk, query
 * head, row); each warp walks keys with the head dimension across its lanes (a key row is
 * Hkv*D contiguous elements inside its block, so loads stay coalesced), online softmax per warp
 * (running max m, sum l, output rescaled by exp(m_old - m_new)), the warps combined in shared
 * memory, and when a row's keys are split over several blocks a combine kernel merges the
 * chunks. Row i's keys are positions 0..pos[i] of sequence seq[i]: the host does not know the
 * positions (device data), so the split is sized for the longest a sequence can be
 * (max_blocks * block_size), and the chunks past a row's last key return at once.
 *
 * Precision is attention's (the same bounds in `hetbench verify`): bf16/f16 caches round q and
 * p to the cache type before their products, p relative to the running max; fp8 caches compute
 * as a bf16 cache of codes, with the per-tensor scales (device pointers) on the f32 sums.
 *
 * block_table, seq and pos are device arrays: checking them on the host would cost a copy and a
 * sync per call. An index outside its range (a sequence, a position past max_blocks, a block id
 * outside the cache) is never dereferenced: that row's output is NaN (the CPU returns an
 * error), which `verify` and a serve run's fingerprint would show. */
#include "gpu.cuh"

#include <math.h>

namespace HB_GPU_NS {

static const int PA_THREADS = 128; /* 4 warps (NVIDIA) or 2 wavefronts (CDNA) */
static const int PA_DPL = 8;       /* head dims per lane: D <= 8 * warpSize */
static const int PA_DMAX = 256;

/* x rounded to the operand type of a KT cache (bf16/f16; fp8 computes in bf16), as f32: the
 * CPU's round_to (cpu_kv.h) and gpu_ops.cu's round_kv */
template <int KT> static __device__ __forceinline__ float pa_round(float x) {
    if (KT == HB_BF16 || KT == HB_FP8_E4M3 || KT == HB_FP8_E5M2)
        return __uint_as_float((uint32_t)hb_f32_to_bf16(x) << 16);
    if (KT == HB_F16) return f16_bits_to_f32(hb_f32_to_f16(x));
    return x;
}

/* grid (n_rows * n_split, Hq): block x = row * n_split + chunk. part (n_rows, Hq, n_split,
 * 2 + D) when split: per chunk its max M, sum L and unnormalised output; NULL: out directly. */
template <int KT>
__global__ void __launch_bounds__(128)
paged_split_kernel(float *out, int64_t ldo, const float *q, int64_t ldq, const void *kc,
                   const void *vc, const float *ksc, const float *vsc, const int32_t *table,
                   int64_t mb, int64_t n_seqs, const int32_t *seq, const int32_t *pos,
                   int64_t n_blocks, int bs, int Hq, int Hkv, int D, int n_split, int64_t chunk,
                   float scale, float *part) {
    extern __shared__ float sm[]; /* m[nw], l[nw], o[nw][D], bad */
    const int ws = warpSize, lane = threadIdx.x % ws, wid = threadIdx.x / ws,
              nw = blockDim.x / ws;
    const int h = blockIdx.y;
    const int64_t row = blockIdx.x / n_split, ck = blockIdx.x % n_split;
    const int64_t s_id = seq[row], p_last = pos[row];
    const int bad_row = s_id < 0 || s_id >= n_seqs || p_last < 0 || p_last >= mb * bs;
    const int64_t L = bad_row ? 0 : p_last + 1; /* causal: keys 0..pos */
    const int64_t j0 = ck * chunk, j1 = j0 + chunk < L ? j0 + chunk : L;
    const int64_t kvw = (int64_t)Hkv * D, bw = (int64_t)bs * kvw;
    const int kvh = h / (Hq / Hkv);
    const int32_t *tab = table + (bad_row ? 0 : s_id) * mb;
    const float *qv = q + row * ldq + (int64_t)h * D;

    float qr[PA_DPL], o[PA_DPL];
#pragma unroll
    for (int i = 0; i < PA_DPL; i++) {
        const int d = lane + i * ws;
        qr[i] = d < D ? pa_round<KT>(qv[d]) : 0.0f;
        o[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    int bad = bad_row;
    const float sk = ksc ? *ksc : 1.0f;
    for (int64_t j = j0 + wid; j < j1; j += nw) {
        const int64_t blk = tab[j / bs];
        if (blk < 0 || blk >= n_blocks) { /* the same value on every lane: no divergence */
            bad = 1;
            break;
        }
        const int64_t r = blk * bw + (j % bs) * kvw + (int64_t)kvh * D;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < PA_DPL; i++) {
            const int d = lane + i * ws;
            if (d < D) s += qr[i] * ld_w<KT>(kc, r + d);
        }
        s = warp_sum(s) * sk * scale;
        const float mn = fmaxf(m, s);
        const float corr = expf(m - mn), p = expf(s - mn), pr = pa_round<KT>(p);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < PA_DPL; i++) {
            const int d = lane + i * ws;
            if (d < D) o[i] = o[i] * corr + pr * ld_w<KT>(vc, r + d);
        }
        m = mn;
    }
    /* combine the warps of the block */
    float *sm_m = sm, *sm_l = sm + nw, *sm_o = sm + 2 * nw, *sm_bad = sm + nw * (2 + D);
    if (threadIdx.x == 0) *sm_bad = 0.0f;
    __syncthreads();
    if (lane == 0) {
        sm_m[wid] = m;
        sm_l[wid] = l;
        if (bad) *sm_bad = 1.0f; /* any warp's flag: a benign race, every writer stores 1 */
    }
#pragma unroll
    for (int i = 0; i < PA_DPL; i++) {
        const int d = lane + i * ws;
        if (d < D) sm_o[wid * D + d] = o[i];
    }
    __syncthreads();
    const int any_bad = *sm_bad != 0.0f;
    float M = -INFINITY, Ls = 0.0f;
    for (int w = 0; w < nw; w++) M = fmaxf(M, sm_m[w]);
    for (int w = 0; w < nw; w++)
        if (sm_m[w] != -INFINITY) Ls += sm_l[w] * expf(sm_m[w] - M);
    if (any_bad) { /* NaN out, through the combine too (M finite, L NaN) */
        M = 0.0f;
        Ls = NAN;
    }
    float *pp = part ? part + ((row * Hq + h) * n_split + ck) * (int64_t)(D + 2) : NULL;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < nw; w++)
            if (sm_m[w] != -INFINITY) acc += sm_o[w * D + d] * expf(sm_m[w] - M);
        if (any_bad) acc = NAN;
        if (pp)
            pp[2 + d] = acc;
        else
            out[row * ldo + (int64_t)h * D + d] = acc / Ls * (vsc ? *vsc : 1.0f);
    }
    if (pp && threadIdx.x == 0) {
        pp[0] = M; /* -inf for a chunk past this row's last key */
        pp[1] = Ls;
    }
}

/* Merges the key chunks of each (row, head): grid (n_rows * Hq), block x = row * Hq + h. */
__global__ void paged_combine_kernel(float *out, int64_t ldo, const float *part, const float *vsc,
                                     int Hq, int D, int n_split) {
    const int64_t row = blockIdx.x / Hq;
    const int h = (int)(blockIdx.x % Hq);
    const float *p = part + (row * Hq + h) * n_split * (int64_t)(D + 2);
    float M = -INFINITY, Ls = 0.0f;
    for (int c = 0; c < n_split; c++) M = fmaxf(M, p[c * (D + 2)]);
    for (int c = 0; c < n_split; c++) {
        const float mc = p[c * (D + 2)];
        if (mc != -INFINITY) Ls += p[c * (D + 2) + 1] * expf(mc - M);
    }
    const float sv = vsc ? *vsc : 1.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < n_split; c++) {
            const float mc = p[c * (D + 2)];
            if (mc != -INFINITY) acc += p[c * (D + 2) + 2 + d] * expf(mc - M);
        }
        out[row * ldo + (int64_t)h * D + d] = acc / Ls * sv;
    }
}

hb_status op_attention_paged(hb_backend *be, const hb_attention_paged_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t n_blocks = a->k_cache.ne[0], bs = a->k_cache.ne[1];
    const int64_t Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3];
    const int64_t N = hb_tensor_rows(&a->q), Hq = D > 0 ? hb_tensor_cols(&a->q) / D : 0;
    const int64_t ldq = hb_tensor_ld(&a->q), ldo = hb_tensor_ld(&a->out), mb = a->max_blocks;
    const float *ksc = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale : NULL;
    const float *vsc = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale : NULL;
    if (kvt != HB_F32 && kvt != HB_BF16 && kvt != HB_F16 && kvt != HB_FP8_E4M3 &&
        kvt != HB_FP8_E5M2)
        return fail(be, HB_ERR_UNSUPPORTED,
                    "%s: attention_paged: KV cache dtype %s (f32, bf16, f16, fp8, e5m2)",
                    HB_GPU_NAME, dtype_name(kvt));
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0 || D <= 0 || bs <= 0 || ldq < Hq * D ||
        ldo < Hq * D)
        return fail(be, HB_ERR_INPUT,
                    "%s: attention_paged: bad shape Hq=%lld Hkv=%lld D=%lld block_size=%lld "
                    "ldq=%lld ldo=%lld",
                    HB_GPU_NAME, (long long)Hq, (long long)Hkv, (long long)D, (long long)bs,
                    (long long)ldq, (long long)ldo);
    if (N <= 0) return HB_OK;
    gpu_ctx *c = ctx_of(be);
    if (D > PA_DMAX || D > PA_DPL * c->warp_size)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention_paged: head dimension %lld > %d",
                    HB_GPU_NAME, (long long)D, PA_DMAX);
    if (Hq > 65535 || bs > INT32_MAX)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention_paged: more than 65535 heads",
                    HB_GPU_NAME);
    GPU_ENTER(be);
    /* the split as the decode attention's: ~4 blocks per SM, chunks of >= 64 keys, for the
     * longest context a sequence of max_blocks blocks can have */
    const int64_t Lmax = mb * bs, queries = N * Hq;
    int64_t n_split = ((int64_t)c->n_sm * 4 + queries - 1) / queries;
    const int64_t max_split = (Lmax + 63) / 64;
    if (n_split > max_split) n_split = max_split;
    if (n_split < 1) n_split = 1;
    const int64_t chunk = (Lmax + n_split - 1) / n_split;
    n_split = (Lmax + chunk - 1) / chunk;
    if (N * n_split > INT32_MAX || N * Hq > INT32_MAX)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention_paged: %lld rows are too many",
                    HB_GPU_NAME, (long long)N);
    float *part = NULL;
    if (n_split > 1) {
        TRY(ensure_buffer(be, (void **)&c->att_part, &c->att_part_bytes,
                          (size_t)(queries * n_split * (D + 2)) * sizeof(float)));
        part = c->att_part;
    }
    const float scale = (float)(1.0 / sqrt((double)D));
    const int nw = PA_THREADS / c->warp_size;
    const size_t smem = (size_t)(nw * (2 + D) + 1) * sizeof(float);
    dim3 grid((unsigned)(N * n_split), (unsigned)Hq);
    auto kern = kvt == HB_BF16       ? paged_split_kernel<HB_BF16>
                : kvt == HB_F16      ? paged_split_kernel<HB_F16>
                : kvt == HB_FP8_E4M3 ? paged_split_kernel<HB_FP8_E4M3>
                : kvt == HB_FP8_E5M2 ? paged_split_kernel<HB_FP8_E5M2>
                                     : paged_split_kernel<HB_F32>;
    kern<<<grid, PA_THREADS, smem, c->stream>>>(
        (float *)a->out.data, ldo, (const float *)a->q.data, ldq, a->k_cache.data,
        a->v_cache.data, ksc, vsc, a->block_table, mb, a->n_seqs, a->seq, a->pos, n_blocks,
        (int)bs, (int)Hq, (int)Hkv, (int)D, (int)n_split, chunk, scale, part);
    LAUNCH_CHECK(be, "attention_paged (split)");
    if (part) {
        paged_combine_kernel<<<(unsigned)(N * Hq), 128, 0, c->stream>>>(
            (float *)a->out.data, ldo, part, vsc, (int)Hq, (int)D, (int)n_split);
        LAUNCH_CHECK(be, "attention_paged (combine)");
    }
    return HB_OK;
}

} // namespace HB_GPU_NS
