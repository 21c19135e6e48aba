/* gpu_ops.cu - every op of the GPU backend except the GEMMs (gpu_gemm.cu), and the fp8
 * quantisation kernels the GEMMs share (quantise, dequantise, repack_scales).
 *
 * Each op is three layers (llm.c): a kernel, a launcher that picks the grid and checks the
 * launch, and the op entry point, which unpacks its hb_<op>_args (row strides from the tensors)
 * and checks what the CPU reference checks beyond the shared checks of ops.c (same messages,
 * same HB_ERR_INPUT cases). Reference semantics: backends/cpu/cpu_ops.c.
 *
 * Kernels index with int64_t (a llama3-70b layer overflows int); grid-stride loops cap the grid
 * at 32 blocks per SM. Row-wise ops (norms, softmax, argmax, sample) run one block per row with
 * block reductions whose warp size is the device's (warpSize), never the literal 32. */
#include "gpu.cuh"

#include <limits.h>
#include <math.h>
#include <string.h>

namespace HB_GPU_NS {

static const int THREADS = 256; /* a multiple of 64: whole warps on every device */

static int dtype_ok(hb_dtype dt) {
    return dt == HB_F32 || dt == HB_BF16 || dt == HB_F16 || dt == HB_FP8_E4M3 || dt == HB_FP8_E5M2;
}

static hb_status dtype_unsupported(hb_backend *be, const char *op, hb_dtype dt) {
    return fail(be, HB_ERR_UNSUPPORTED, "%s: op '%s' does not support dtype %s", HB_GPU_NAME, op,
                dtype_name(dt));
}

#define GRID_STRIDE(i, n)                                                             \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);         \
         i += (int64_t)gridDim.x * blockDim.x)

/* ==== generators and casts ==== */

/* offset + scale * u as two separately rounded operations, as hb_rng_value on the CPU: nvcc
 * never contracts __fmul_rn/__fadd_rn into an FMA; clang (HIP) defaults to -ffp-contract=fast,
 * which would, so these helpers turn contraction off for their own operations (and the HIP
 * build uses -ffp-contract=on besides). */
static __device__ __forceinline__ float mul_rn(float a, float b) {
#if defined(__clang__)
#pragma clang fp contract(off)
    return a * b;
#else
    return __fmul_rn(a, b);
#endif
}
static __device__ __forceinline__ float add_rn(float a, float b) {
#if defined(__clang__)
#pragma clang fp contract(off)
    return a + b;
#else
    return __fadd_rn(a, b);
#endif
}
static __device__ __forceinline__ float rng_value(uint64_t seed, uint64_t i, float scale, float offset) {
    return add_rn(offset, mul_rn(scale, hb_rng_pm1(seed, i)));
}

__global__ void fill_random_kernel(void *dst, hb_dtype dt, int64_t n, uint64_t seed, float scale,
                                   float offset) {
    GRID_STRIDE(i, n) st_any(dst, dt, i, rng_value(seed, (uint64_t)i, scale, offset));
}

/* ---- quantisation: scales of amax / max(dt) per group, codes x / scale (tensor.h) ----
 *
 * Pass 1 (qamax_kernel): the groups on grid x, each split over grid y blocks; a warp reduces
 *   |x| as bits (order-preserving for non-negative floats; a NaN is above +inf) and its lane 0
 *   atomicMax-es them into the group's scale slot.
 * Pass 2 (qscale_kernel): each slot's amax bits become the scale, as the CPU's group_scale().
 * Pass 3 (qcodes_kernel): codes x / scale (a division, as the CPU: x * (1 / scale) would round
 *   differently), RNE and saturating. The source is read twice; the generator recomputes. */

static __device__ __forceinline__ float qsrc_at(const qsrc &s, int64_t r, int64_t c, int64_t cols) {
    return s.rng ? rng_value(s.seed, (uint64_t)(r * cols + c), s.scale, s.offset)
                 : ld_any(s.p, s.dt, r * s.ld + c);
}

__global__ void qamax_kernel(unsigned *bits, const qgroups g, const qsrc src) {
    const int64_t ngroups = g.srows * g.scols;
    for (int64_t gi = blockIdx.x; gi < ngroups; gi += gridDim.x) {
        const int64_t gr = gi / g.scols, gc = gi % g.scols;
        const int64_t r0 = gr * g.bm, c0 = gc * g.bk;
        const int64_t h = (r0 + g.bm < g.rows ? r0 + g.bm : g.rows) - r0;
        const int64_t w = (c0 + g.bk < g.cols ? c0 + g.bk : g.cols) - c0;
        unsigned mb = 0;
        for (int64_t e = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; e < h * w;
             e += (int64_t)gridDim.y * blockDim.x) {
            const unsigned u = __float_as_uint(fabsf(qsrc_at(src, r0 + e / w, c0 + e % w, g.cols)));
            mb = u > mb ? u : mb;
        }
        for (int o = warpSize >> 1; o > 0; o >>= 1) {
            const unsigned other = hb_shfl_xor(mb, o);
            mb = other > mb ? other : mb;
        }
        if (threadIdx.x % warpSize == 0 && mb) atomicMax(bits + gr * g.s_rs + gc * g.s_cs, mb);
    }
}

__global__ void qscale_kernel(float *scale, const qgroups g, float qmax) {
    GRID_STRIDE(gi, g.srows * g.scols) {
        float *s = scale + (gi / g.scols) * g.s_rs + (gi % g.scols) * g.s_cs;
        const float amax = __uint_as_float(*(const unsigned *)s);
        *s = (amax > 0.0f && amax <= 3.4028235e38f) ? amax / qmax : 1.0f;
    }
}

__global__ void qcodes_kernel(uint8_t *dst, hb_dtype dt, const float *scale, const qgroups g,
                              const qsrc src) {
    GRID_STRIDE(i, g.rows * g.cols) {
        const int64_t r = i / g.cols, c = i % g.cols;
        const float s = scale[(r / g.bm) * g.s_rs + (c / g.bk) * g.s_cs];
        dst[i] = (uint8_t)fp8_code(dt, qsrc_at(src, r, c, g.cols) / s);
    }
}

hb_status quantise(hb_backend *be, void *dst, hb_dtype dt, float *scale, const qgroups &g,
                   const qsrc &src) {
    gpu_ctx *c = ctx_of(be);
    const int64_t n = g.rows * g.cols, ngroups = g.srows * g.scols;
    if (n <= 0 || ngroups <= 0) return HB_OK;
    if (!hb_dtype_is_fp8(dt)) return dtype_unsupported(be, "quantise", dt);
    /* the scale grid's extent, padding included (a vendor layout may pad): zero = no amax yet */
    const int64_t extent = (g.srows - 1) * g.s_rs + (g.scols - 1) * g.s_cs + 1;
    GPU_TRY(be, cudaMemsetAsync(scale, 0, (size_t)extent * sizeof(float), c->stream));
    /* ~8 blocks per SM in all, each group split over enough blocks to get there */
    const int64_t per_group = ((g.bm < g.rows ? g.bm : g.rows) * (g.bk < g.cols ? g.bk : g.cols) +
                               THREADS - 1) / THREADS;
    int64_t split = ((int64_t)c->n_sm * 8 + ngroups - 1) / ngroups;
    if (split > per_group) split = per_group;
    if (split > 65535) split = 65535;
    if (split < 1) split = 1;
    const int64_t gx = ngroups < INT_MAX ? ngroups : INT_MAX;
    qamax_kernel<<<dim3((unsigned)gx, (unsigned)split), THREADS, 0, c->stream>>>((unsigned *)scale, g,
                                                                               src);
    LAUNCH_CHECK(be, "quantise (amax)");
    qscale_kernel<<<grid_for(c, ngroups, THREADS), THREADS, 0, c->stream>>>(scale, g,
                                                                            hb_dtype_fp8_max(dt));
    LAUNCH_CHECK(be, "quantise (scales)");
    qcodes_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>((uint8_t *)dst, dt, scale, g, src);
    LAUNCH_CHECK(be, "quantise (codes)");
    return HB_OK;
}

__global__ void dequant_kernel(void *dst, hb_dtype ddt, const void *codes, hb_dtype dt, int64_t ld,
                               const float *scale, const qgroups g) {
    GRID_STRIDE(i, g.rows * g.cols) {
        const int64_t r = i / g.cols, c = i % g.cols;
        const float x = ld_any(codes, dt, r * ld + c);
        st_any(dst, ddt, i, scale ? x * scale[(r / g.bm) * g.s_rs + (c / g.bk) * g.s_cs] : x);
    }
}

hb_status dequantise(hb_backend *be, void *dst, hb_dtype dst_dt, const void *codes, hb_dtype dt,
                     int64_t ld, const float *scale, const qgroups &g) {
    gpu_ctx *c = ctx_of(be);
    const int64_t n = g.rows * g.cols;
    if (n <= 0) return HB_OK;
    dequant_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(dst, dst_dt, codes, dt, ld,
                                                                        scale, g);
    LAUNCH_CHECK(be, "dequantise");
    return HB_OK;
}

__global__ void repack_kernel(float *dst, int64_t d_rs, int64_t d_cs, const float *src,
                              int64_t s_rs, int64_t s_cs, int64_t rows, int64_t cols) {
    GRID_STRIDE(i, rows * cols) {
        const int64_t r = i / cols, c = i % cols;
        dst[r * d_rs + c * d_cs] = src[r * s_rs + c * s_cs];
    }
}

hb_status repack_scales(hb_backend *be, float *dst, int64_t d_rs, int64_t d_cs, const float *src,
                        int64_t s_rs, int64_t s_cs, int64_t rows, int64_t cols) {
    gpu_ctx *c = ctx_of(be);
    if (rows <= 0 || cols <= 0) return HB_OK;
    repack_kernel<<<grid_for(c, rows * cols, THREADS), THREADS, 0, c->stream>>>(
        dst, d_rs, d_cs, src, s_rs, s_cs, rows, cols);
    LAUNCH_CHECK(be, "repack scales");
    return HB_OK;
}

hb_status op_fill_random(hb_backend *be, const hb_fill_random_args *a) {
    const hb_tensor *d = &a->dst;
    if (!dtype_ok(d->dt)) return dtype_unsupported(be, "fill_random", d->dt);
    const int64_t n = hb_tensor_numel(d);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    if (d->q.kind != HB_QUANT_NONE) { /* the quantisation of the generated f32 values */
        qsrc src;
        memset(&src, 0, sizeof src);
        src.rng = 1, src.seed = a->seed, src.scale = a->scale, src.offset = a->offset;
        return quantise(be, d->data, d->dt, d->q.scale, qgroups_of(d), src);
    }
    fill_random_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(d->data, d->dt, n, a->seed,
                                                                            a->scale, a->offset);
    LAUNCH_CHECK(be, "fill_random");
    return HB_OK;
}

__global__ void fill_tokens_kernel(int32_t *dst, int64_t n, uint64_t seed, int64_t vocab) {
    GRID_STRIDE(i, n) dst[i] = (int32_t)(hb_rng_u64(seed, (uint64_t)i) % (uint64_t)vocab);
}

hb_status op_fill_tokens(hb_backend *be, const hb_fill_tokens_args *a) {
    const int64_t n = a->n, vocab = a->vocab;
    if (vocab <= 0 || vocab > INT32_MAX)
        return fail(be, HB_ERR_INPUT, "%s: fill_tokens: vocab %lld out of range", HB_GPU_NAME,
                    (long long)vocab);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    fill_tokens_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(a->dst, n, a->seed, vocab);
    LAUNCH_CHECK(be, "fill_tokens");
    return HB_OK;
}

__global__ void convert_kernel(void *dst, hb_dtype ddt, const void *src, hb_dtype sdt, int64_t n) {
    /* every f16/bf16/fp8 value is exact in f32, so going through f32 rounds once (as the CPU) */
    GRID_STRIDE(i, n) st_any(dst, ddt, i, ld_any(src, sdt, i));
}

hb_status op_convert(hb_backend *be, const hb_convert_args *a) {
    const hb_dtype dst_dt = a->dst.dt, src_dt = a->src.dt;
    if (!dtype_ok(dst_dt)) return dtype_unsupported(be, "convert", dst_dt);
    if (!dtype_ok(src_dt)) return dtype_unsupported(be, "convert", src_dt);
    const int64_t n = hb_tensor_numel(&a->src);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    void *dst = a->dst.data;
    const void *src = a->src.data;
    if (a->dst.q.kind != HB_QUANT_NONE) { /* quantise dynamically (both contiguous: linear index) */
        const qgroups g = qgroups_of(&a->dst);
        qsrc s;
        memset(&s, 0, sizeof s);
        s.p = src, s.dt = src_dt, s.ld = g.cols;
        return quantise(be, dst, dst_dt, a->dst.q.scale, g, s);
    }
    if (a->src.q.kind != HB_QUANT_NONE) { /* dequantise: code * scale */
        const qgroups g = qgroups_of(&a->src);
        return dequantise(be, dst, dst_dt, src, src_dt, g.cols, a->src.q.scale, g);
    }
    if (dst_dt == src_dt) {
        if (dst == src) return HB_OK;
        GPU_TRY(be, cudaMemcpyAsync(dst, src, (size_t)n * (size_t)hb_dtype_size(dst_dt),
                                    cudaMemcpyDeviceToDevice, c->stream));
        return HB_OK;
    }
    convert_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(dst, dst_dt, src, src_dt, n);
    LAUNCH_CHECK(be, "convert");
    return HB_OK;
}

/* ==== embedding and norms ==== */

/* out (B*T, C, rows ldo apart) = wte[token] (+ wpe[pos0 + t]). The CPU rejects a token outside
 * the vocabulary before it starts; here the tokens live on the device and checking them would
 * cost a host round trip per step, so such a token's row is written as NaN: visible in every
 * check, never a value (and never a read outside wte). */
__global__ void embedding_kernel(float *out, int64_t ldo, const int32_t *tokens, const void *wte,
                                 const void *wpe, hb_dtype dt, int64_t N, int64_t T, int64_t pos0,
                                 int64_t C, int64_t V) {
    for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
        const int32_t tok = tokens[i];
        float *o = out + i * ldo;
        const int64_t row = (int64_t)tok * C, prow = (pos0 + i % T) * C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            float v = NAN;
            if (tok >= 0 && tok < V) {
                v = ld_any(wte, dt, row + c);
                if (wpe) v += ld_any(wpe, dt, prow + c);
            }
            o[c] = v;
        }
    }
}

static unsigned rows_grid(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? rows : 65535 * 16); }

hb_status op_embedding(hb_backend *be, const hb_embedding_args *a) {
    const hb_dtype wdt = a->wte.dt;
    if (!dtype_ok(wdt)) return dtype_unsupported(be, "embedding", wdt);
    const int64_t N = a->B * a->T, C = hb_tensor_cols(&a->wte), V = hb_tensor_rows(&a->wte);
    if (N <= 0 || C <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    embedding_kernel<<<rows_grid(N), THREADS, 0, c->stream>>>(
        (float *)a->out.data, hb_tensor_ld(&a->out), a->tokens, a->wte.data, a->wpe.data, wdt, N, a->T,
        a->pos0, C, V);
    LAUNCH_CHECK(be, "embedding");
    return HB_OK;
}

/* out (N, C) = in / sqrt(mean(in^2) + eps) * w: one block per row. The CPU sums in double; a
 * block of f32 partial sums over <= C/256 elements each is as accurate for C up to 64k. */
/* Row r sits at (r / n1) * s0 + (r % n1) * s1 (a 2-D view: n1 = N, s1 = ld; a 3-D one, e.g.
 * the heads inside qkv rows: n1 = heads, s0 = ld, s1 = D), for in (si) and out (so). */
__global__ void rmsnorm_kernel(float *out, int64_t so0, int64_t so1, const float *in, int64_t si0, int64_t si1,
                               int64_t n1, const float *w, int64_t N, int64_t C, float eps) {
    __shared__ float sh[32];
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const float *x = in + (r / n1) * si0 + (r % n1) * si1;
        float *o = out + (r / n1) * so0 + (r % n1) * so1;
        float ss = 0.0f;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
        ss = block_sum(ss, sh);
        const float inv = (float)(1.0 / sqrt((double)ss / (double)C + (double)eps));
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = x[c] * inv * (w ? w[c] : 1.0f);
    }
}

/* Block size for a row of C elements: enough threads for the row, at least 64. */
static int row_threads(int64_t C) {
    int t = 64;
    while (t < 1024 && t * 4 < C) t *= 2;
    return t;
}

hb_status op_rmsnorm(hb_backend *be, const hb_rmsnorm_args *a) {
    const int64_t N = hb_tensor_rows(&a->in), C = hb_tensor_cols(&a->in);
    if (C <= 0) return fail(be, HB_ERR_INPUT, "%s: rmsnorm: C = %lld", HB_GPU_NAME, (long long)C);
    if (N <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    if (a->in.ndim == 3 && (a->out.ndim != 3 || a->out.ne[1] != a->in.ne[1]))
        return fail(be, HB_ERR_INPUT, "%s: rmsnorm: a 3-D input needs a 3-D output of its shape", HB_GPU_NAME);
    const int three = a->in.ndim == 3;
    const int64_t n1 = three ? a->in.ne[1] : N;
    rmsnorm_kernel<<<rows_grid(N), row_threads(C), 0, c->stream>>>(
        (float *)a->out.data, three ? a->out.st[0] : 0, three ? a->out.st[1] : hb_tensor_ld(&a->out),
        (const float *)a->in.data, three ? a->in.st[0] : 0, three ? a->in.st[1] : hb_tensor_ld(&a->in), n1,
        (const float *)a->w.data, N, C, a->eps);
    LAUNCH_CHECK(be, "rmsnorm");
    return HB_OK;
}

/* out (N, C) = (in - mean) / sqrt(var + eps) * w + b, biased variance, two passes. */
__global__ void layernorm_kernel(float *out, int64_t ldo, const float *in, int64_t ldi, const float *w,
                                 const float *b, int64_t N, int64_t C, float eps) {
    __shared__ float sh[32];
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const float *x = in + r * ldi;
        float *o = out + r * ldo;
        float sum = 0.0f;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += x[c];
        sum = block_sum(sum, sh);
        const float mean = (float)((double)sum / (double)C);
        float ss = 0.0f;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            const float d = x[c] - mean;
            ss += d * d;
        }
        ss = block_sum(ss, sh);
        const float rstd = (float)(1.0 / sqrt((double)ss / (double)C + (double)eps));
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
            o[c] = (x[c] - mean) * rstd * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
    }
}

hb_status op_layernorm(hb_backend *be, const hb_layernorm_args *a) {
    const int64_t N = hb_tensor_rows(&a->in), C = hb_tensor_cols(&a->in);
    if (C <= 0) return fail(be, HB_ERR_INPUT, "%s: layernorm: C = %lld", HB_GPU_NAME, (long long)C);
    if (N <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    layernorm_kernel<<<rows_grid(N), row_threads(C), 0, c->stream>>>(
        (float *)a->out.data, hb_tensor_ld(&a->out), (const float *)a->in.data, hb_tensor_ld(&a->in),
        (const float *)a->w.data, (const float *)a->b.data, N, C, a->eps);
    LAUNCH_CHECK(be, "layernorm");
    return HB_OK;
}

/* ==== rope ==== */

/* table (T, D/2) of cos, then (T, D/2) of sin, of pos * theta^(-2i/D): in double, like the
 * CPU (an f32 angle at position ~8k is off by ~1e-3 rad). */
__global__ void rope_table_kernel(float *tab, int64_t T, int64_t half, int64_t D, int64_t pos0,
                                  float theta, hb_rope_scaling sc) {
    GRID_STRIDE(idx, T * half) {
        const int64_t t = idx / half, i = idx % half;
        const double freq = hb_rope_freq(i, D, (double)theta, sc);
        const double ang = (double)(pos0 + t) * freq;
        tab[idx] = (float)cos(ang) * hb_rope_mag(sc);
        tab[T * half + idx] = (float)sin(ang) * hb_rope_mag(sc);
    }
}

/* x rows (B*T, ldx apart), H heads of D: rotate the pairs (i, i + D/2) in place. */
__global__ void rope_apply_kernel(float *x, int64_t ldx, int64_t N, int64_t T, int64_t H,
                                  int64_t D, const float *tab) {
    const int64_t half = D / 2;
    GRID_STRIDE(idx, N * H * half) {
        const int64_t i = idx % half, rh = idx / half, h = rh % H, row = rh / H, t = row % T;
        float *v = x + row * ldx + h * D;
        const float cs = tab[t * half + i], sn = tab[T * half + t * half + i];
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs - x1 * sn;
        v[i + half] = x0 * sn + x1 * cs;
    }
}

/* Decode (few positions): the angles computed per element, in double as above, in one launch
 * (a decode step calls rope twice per layer; a table would double the launches). */
__global__ void rope_direct_kernel(float *x, int64_t ldx, int64_t N, int64_t T, int64_t H,
                                   int64_t D, int64_t pos0, float theta, hb_rope_scaling sc,
                                   const int32_t *pos) {
    const int64_t half = D / 2;
    GRID_STRIDE(idx, N * H * half) {
        const int64_t i = idx % half, rh = idx / half, h = rh % H, row = rh / H, t = row % T;
        const double freq = hb_rope_freq(i, D, (double)theta, sc);
        const double ang = (double)(pos ? (int64_t)pos[row] : pos0 + t) * freq; /* pos: per-row positions */
        const float cs = (float)cos(ang) * hb_rope_mag(sc), sn = (float)sin(ang) * hb_rope_mag(sc);
        float *v = x + row * ldx + h * D;
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs - x1 * sn;
        v[i + half] = x0 * sn + x1 * cs;
    }
}

static const int64_t ROPE_TABLE_MIN_T = 16;

hb_status op_rope(hb_backend *be, const hb_rope_args *a) {
    float *x = (float *)a->x.data;
    const int64_t ldx = hb_tensor_ld(&a->x), B = a->B, T = a->T, pos0 = a->pos0, H = a->H;
    const int64_t D = hb_tensor_cols(&a->x) / (H > 0 ? H : 1);
    const float theta = a->theta;
    if (D <= 0 || D % 2 != 0 || ldx < H * D || !(theta > 0.0f) || pos0 < 0)
        return fail(be, HB_ERR_INPUT,
                    "%s: rope: need even D > 0, ldx >= H*D, theta > 0, pos0 >= 0 "
                    "(D=%lld H=%lld ldx=%lld theta=%g pos0=%lld)",
                    HB_GPU_NAME, (long long)D, (long long)H, (long long)ldx, (double)theta,
                    (long long)pos0);
    if (B <= 0 || T <= 0 || H <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    const int64_t half = D / 2;
    if (T < ROPE_TABLE_MIN_T || a->pos) { /* per-row positions: no shared table */
        rope_direct_kernel<<<grid_for(c, B * T * H * half, THREADS), THREADS, 0, c->stream>>>(
            x, ldx, B * T, T, H, D, pos0, theta, a->scaling, a->pos);
        LAUNCH_CHECK(be, "rope");
        return HB_OK;
    }
    TRY(ensure_buffer(be, (void **)&c->rope_tab, &c->rope_tab_bytes,
                         (size_t)(T * D) * sizeof(float)));
    rope_table_kernel<<<grid_for(c, T * half, THREADS), THREADS, 0, c->stream>>>(
        c->rope_tab, T, half, D, pos0, theta, a->scaling);
    LAUNCH_CHECK(be, "rope table");
    rope_apply_kernel<<<grid_for(c, B * T * H * half, THREADS), THREADS, 0, c->stream>>>(
        x, ldx, B * T, T, H, D, c->rope_tab);
    LAUNCH_CHECK(be, "rope");
    return HB_OK;
}

/* ==== KV cache ==== */

/* (B*T rows, ldk / ldv apart, w = Hkv*D floats) -> caches (B, S, Hkv, D) in kvt at positions
 * pos0 + t, rounded as the CPU does; an fp8 cache stores the codes of x / scale, its static
 * per-tensor scales read on the device (sk, sv; NULL otherwise). VEC: 4 elements at a time (w,
 * ldk, ldv multiples of 4 and aligned pointers). */
template <int VEC>
__global__ void kv_store_kernel(void *kc, void *vc, hb_dtype kvt, const float *sk, const float *sv,
                                const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t N,
                                int64_t T, int64_t pos0, int64_t w, int64_t S, const int32_t *table,
                                const int32_t *seq, const int32_t *pos, int64_t mb) {
    const int64_t wv = w / VEC;
    const bool fp8 = hb_dtype_is_fp8(kvt);
    const float ks = fp8 ? *sk : 1.0f, vs = fp8 ? *sv : 1.0f;
    GRID_STRIDE(idx, N * wv) {
        const int64_t row = idx / wv, j = (idx % wv) * VEC, b = row / T, t = row % T;
        /* paged (table): the row's block and slot (S = the block size), as attention_paged reads them */
        const int64_t cell = table ? (int64_t)table[seq[row] * mb + pos[row] / S] * S + pos[row] % S : b * S + pos0 + t;
        const int64_t srck = row * ldk + j, srcv = row * ldv + j, dst = cell * w + j;
        if (VEC == 4 && kvt == HB_F32) {
            *(float4 *)((float *)kc + dst) = *(const float4 *)(k + srck);
            *(float4 *)((float *)vc + dst) = *(const float4 *)(v + srcv);
        } else if (VEC == 4 && fp8) { /* four codes in one 32-bit store */
            const float4 a = *(const float4 *)(k + srck), c = *(const float4 *)(v + srcv);
            *(uint32_t *)((uint8_t *)kc + dst) =
                fp8_code(kvt, a.x / ks) | fp8_code(kvt, a.y / ks) << 8 |
                fp8_code(kvt, a.z / ks) << 16 | fp8_code(kvt, a.w / ks) << 24;
            *(uint32_t *)((uint8_t *)vc + dst) =
                fp8_code(kvt, c.x / vs) | fp8_code(kvt, c.y / vs) << 8 |
                fp8_code(kvt, c.z / vs) << 16 | fp8_code(kvt, c.w / vs) << 24;
        } else if (VEC == 4) {
            const float4 a = *(const float4 *)(k + srck), c = *(const float4 *)(v + srcv);
            uint2 pk, pv;
            pk.x = pack_half2(kvt, a.x, a.y), pk.y = pack_half2(kvt, a.z, a.w);
            pv.x = pack_half2(kvt, c.x, c.y), pv.y = pack_half2(kvt, c.z, c.w);
            *(uint2 *)((uint16_t *)kc + dst) = pk;
            *(uint2 *)((uint16_t *)vc + dst) = pv;
        } else if (fp8) {
            st_any(kc, kvt, dst, k[srck] / ks);
            st_any(vc, kvt, dst, v[srcv] / vs);
        } else {
            st_any(kc, kvt, dst, k[srck]);
            st_any(vc, kvt, dst, v[srcv]);
        }
    }
}

static int kv_dtype_ok(hb_dtype t) {
    return t == HB_F32 || t == HB_BF16 || t == HB_F16 || t == HB_FP8_E4M3 || t == HB_FP8_E5M2;
}

hb_status op_kv_store(hb_backend *be, const hb_kv_store_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, S = a->k_cache.ne[1];
    const int64_t w = a->k_cache.ne[2] * a->k_cache.ne[3];
    const int64_t ldk = hb_tensor_ld(&a->k), ldv = hb_tensor_ld(&a->v);
    const float *k = (const float *)a->k.data, *v = (const float *)a->v.data;
    void *k_cache = a->k_cache.data, *v_cache = a->v_cache.data;
    if (!kv_dtype_ok(kvt))
        return fail(be, HB_ERR_UNSUPPORTED,
                    "%s: kv_store: KV cache dtype %s (f32, bf16, f16, fp8, e5m2)", HB_GPU_NAME,
                    dtype_name(kvt));
    if ((!a->block_table && (pos0 < 0 || pos0 + T > S)) || ldk < w || ldv < w ||
        (a->block_table && (!a->seq || !a->pos || a->max_blocks <= 0)))
        return fail(be, HB_ERR_INPUT,
                    "%s: kv_store: positions %lld..%lld outside the cache (S=%lld) or a row stride "
                    "(%lld, %lld) < Hkv*D %lld",
                    HB_GPU_NAME, (long long)pos0, (long long)(pos0 + T - 1), (long long)S,
                    (long long)ldk, (long long)ldv, (long long)w);
    if (B <= 0 || T <= 0 || w <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    const float *sk = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale : NULL;
    const float *sv = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale : NULL;
    const size_t cal = (size_t)hb_dtype_size(kvt) * 4; /* alignment of 4 cache elements */
    const int vec = w % 4 == 0 && ldk % 4 == 0 && ldv % 4 == 0 && is_aligned(k, 16) &&
                    is_aligned(v, 16) && is_aligned(k_cache, cal) && is_aligned(v_cache, cal);
    const int64_t n = B * T * (vec ? w / 4 : w);
    if (vec)
        kv_store_kernel<4><<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(
            k_cache, v_cache, kvt, sk, sv, k, ldk, v, ldv, B * T, T, pos0, w, S, a->block_table, a->seq, a->pos,
            a->max_blocks);
    else
        kv_store_kernel<1><<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(
            k_cache, v_cache, kvt, sk, sv, k, ldk, v, ldv, B * T, T, pos0, w, S, a->block_table, a->seq, a->pos,
            a->max_blocks);
    LAUNCH_CHECK(be, "kv_store");
    return HB_OK;
}

/* ==== attention ====
 *
 * Causal grouped-query attention over the KV cache (f32, bf16, f16, or fp8 e4m3/e5m2 with
 * per-tensor scales), online softmax (flash-attention's recurrence: running max m, running sum
 * l, output rescaled by exp(m_old - m_new)). With a bf16/f16 cache q and p are rounded to the
 * cache's type before their products (ops.h), whichever kernel runs; an fp8 cache computes as a
 * bf16 cache whose values are the codes, the scales (read on the device) applied to the f32
 * sums: s = scale_k * (q . k_code) / sqrt(D), out = scale_v * (p . v_code) / sum(p). The SIMT
 * kernels (split, tile) take fp8 caches; the tensor-core kernel is bf16/f16 only.
 *
 * Decode (T < ATT_TILE_MIN_T): attn_split_kernel, one block per (key chunk, head, query): each
 *   warp walks keys with the head dimension across its lanes (coalesced 128-byte rows), the
 *   warps of a block combine in shared memory, and when the keys are split over several blocks
 *   (flash-decoding: enough blocks to fill the device at batch 1) attn_combine_kernel merges
 *   the chunks. Bandwidth-bound on the cache.
 * Prefill: attn_tile_kernel, one block per (BQ queries, head, batch): Q, K, V tiles in shared
 *   memory, each thread a TQ x TK tile of scores and TQ x D/16 of the output; keys past the
 *   last query's position are never loaded. f32 FMA on CUDA cores / SIMDs (see backends/GPU.md).
 * Prefill with a bf16/f16 cache on NVIDIA sm_80+ (warp 32, D = 64 or 128): attn_mma_kernel,
 *   FlashAttention-2 on the tensor cores (mma.sync m16n8k16, f32 accumulators): 4 warps x 16
 *   queries, 64-key tiles in shared memory, scores and the output in registers. */

static const int ATT_THREADS = 128; /* split kernel: 4 warps (NVIDIA) or 2 wavefronts (CDNA) */
static const int ATT_DPL = 8;       /* split kernel: head dims per lane: D <= 8 * warpSize */
static const int ATT_DMAX = 256;    /* largest head dimension either kernel takes */
static const int64_t ATT_TILE_MIN_T = 16;

/* x rounded to the operand type of a KT cache (bf16/f16; an fp8 cache computes in bf16), as
 * f32; the CPU's rounding */
template <int KT> static __device__ __forceinline__ float round_kv(float x) {
    if (KT == HB_BF16 || KT == HB_FP8_E4M3 || KT == HB_FP8_E5M2)
        return __uint_as_float((uint32_t)hb_f32_to_bf16(x) << 16);
    if (KT == HB_F16) return f16_bits_to_f32(hb_f32_to_f16(x));
    return x;
}
static __device__ __forceinline__ float round_kv_rt(hb_dtype kvt, float x) {
    return kvt == HB_F16 ? round_kv<HB_F16>(x) : kvt == HB_F32 ? x : round_kv<HB_BF16>(x);
}
/* an fp8 cache's scale (a device pointer), 1 for the others */
static __device__ __forceinline__ float kv_scale(const float *s) { return s ? *s : 1.0f; }

template <int KT>
__global__ void __launch_bounds__(128)
attn_split_kernel(float *out, int64_t ldo, const float *q, int64_t ldq, const void *kc,
                  const void *vc, const float *ksc, const float *vsc, int64_t T, int64_t pos0,
                  int Hq, int Hkv, int D, int64_t S, int64_t chunk, float scale, float *part) {
    extern __shared__ float sm[]; /* m[nw], l[nw], o[nw][D] */
    const int ws = warpSize, lane = threadIdx.x % ws, wid = threadIdx.x / ws,
              nw = blockDim.x / ws;
    const int h = blockIdx.y;
    const int64_t row = blockIdx.z, b = row / T, t = row % T;
    const int64_t L = pos0 + t + 1; /* causal: keys 0..pos0+t */
    const int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < L ? j0 + chunk : L;
    const int64_t kvw = (int64_t)Hkv * D;
    const int kvh = h / (Hq / Hkv);
    const int64_t kb = b * S * kvw + (int64_t)kvh * D; /* element offset of key 0 */
    const float *qv = q + row * ldq + (int64_t)h * D;

    float qr[ATT_DPL], o[ATT_DPL];
#pragma unroll
    for (int i = 0; i < ATT_DPL; i++) {
        const int d = lane + i * ws;
        qr[i] = d < D ? round_kv<KT>(qv[d]) : 0.0f;
        o[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const float sk = kv_scale(ksc);
    for (int64_t j = j0 + wid; j < j1; j += nw) {
        const int64_t r = kb + j * kvw;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < ATT_DPL; i++) {
            const int d = lane + i * ws;
            if (d < D) s += qr[i] * ld_w<KT>(kc, r + d);
        }
        s = warp_sum(s) * sk * scale;
        const float mn = fmaxf(m, s);
        const float corr = expf(m - mn), p = expf(s - mn), pr = round_kv<KT>(p);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < ATT_DPL; i++) {
            const int d = lane + i * ws;
            if (d < D) o[i] = o[i] * corr + pr * ld_w<KT>(vc, r + d);
        }
        m = mn;
    }
    /* combine the warps of the block */
    float *sm_m = sm, *sm_l = sm + nw, *sm_o = sm + 2 * nw;
    if (lane == 0) {
        sm_m[wid] = m;
        sm_l[wid] = l;
    }
#pragma unroll
    for (int i = 0; i < ATT_DPL; i++) {
        const int d = lane + i * ws;
        if (d < D) sm_o[wid * D + d] = o[i];
    }
    __syncthreads();
    float M = -INFINITY, Ls = 0.0f;
    for (int w = 0; w < nw; w++) M = fmaxf(M, sm_m[w]);
    for (int w = 0; w < nw; w++)
        if (sm_m[w] != -INFINITY) Ls += sm_l[w] * expf(sm_m[w] - M);
    float *pp = part ? part + ((row * Hq + h) * gridDim.x + blockIdx.x) * (int64_t)(D + 2) : NULL;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < nw; w++)
            if (sm_m[w] != -INFINITY) acc += sm_o[w * D + d] * expf(sm_m[w] - M);
        if (pp)
            pp[2 + d] = acc;
        else
            out[row * ldo + (int64_t)h * D + d] = acc / Ls * kv_scale(vsc);
    }
    if (pp && threadIdx.x == 0) {
        pp[0] = M; /* -inf for a chunk past this query's last key */
        pp[1] = Ls;
    }
}

/* Merges the key chunks of each (query, head): part (B*T, Hq, n_split, 2 + D). */
__global__ void attn_combine_kernel(float *out, int64_t ldo, const float *part, const float *vsc,
                                    int Hq, int D, int n_split) {
    const int h = blockIdx.x;
    const int64_t row = blockIdx.y;
    const float *p = part + (row * Hq + h) * n_split * (int64_t)(D + 2);
    float M = -INFINITY, Ls = 0.0f;
    for (int c = 0; c < n_split; c++) M = fmaxf(M, p[c * (D + 2)]);
    for (int c = 0; c < n_split; c++) {
        const float mc = p[c * (D + 2)];
        if (mc != -INFINITY) Ls += p[c * (D + 2) + 1] * expf(mc - M);
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < n_split; c++) {
            const float mc = p[c * (D + 2)];
            if (mc != -INFINITY) acc += p[c * (D + 2) + 2 + d] * expf(mc - M);
        }
        out[row * ldo + (int64_t)h * D + d] = acc / Ls * kv_scale(vsc);
    }
}

/* 256 threads as 16 x 16: thread (ty, tx) owns queries ty*TQ .. ty*TQ+TQ-1 of the tile, keys
 * tx + 16 j of each key tile, and output dims tx + 16 j. Shared rows are D + 1 floats apart,
 * so the 16 lanes of a row group read 16 different banks. */
template <int BQ, int BK, int DMAX>
__global__ void __launch_bounds__(256)
attn_tile_kernel(float *out, int64_t ldo, const float *q, int64_t ldq, const void *kc,
                 const void *vc, hb_dtype kvt, const float *ksc, const float *vsc, int64_t T,
                 int64_t pos0, int Hq, int Hkv, int D, int64_t S, float scale) {
    constexpr int TQ = BQ / 16, TK = BK / 16, ND = DMAX / 16;
    extern __shared__ float smem[];
    const int P = D + 1;
    float *Qs = smem, *Ks = Qs + BQ * P, *Vs = Ks + BK * P, *Ps = Vs + BK * P; /* Ps (BQ, BK+1) */
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z, t0 = (int64_t)blockIdx.x * BQ;
    const int64_t kvw = (int64_t)Hkv * D;
    const int kvh = h / (Hq / Hkv);
    const int64_t kb = b * S * kvw + (int64_t)kvh * D; /* element offset of key 0 */

    for (int idx = tid; idx < BQ * D; idx += 256) {
        const int r = idx / D, d = idx % D;
        const int64_t t = t0 + r;
        Qs[r * P + d] = t < T ? round_kv_rt(kvt, q[(b * T + t) * ldq + (int64_t)h * D + d]) : 0.0f;
    }
    float m[TQ], l[TQ], o[TQ][ND];
#pragma unroll
    for (int i = 0; i < TQ; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < ND; j++) o[i][j] = 0.0f;
    }
    const int64_t tend = t0 + BQ < T ? t0 + BQ : T;
    const int64_t Lmax = pos0 + tend; /* keys the tile's last query attends */
    const float sk = kv_scale(ksc), sv = kv_scale(vsc);
    for (int64_t k0 = 0; k0 < Lmax; k0 += BK) {
        __syncthreads(); /* Qs written / the previous tiles no longer read */
        for (int idx = tid; idx < BK * D; idx += 256) {
            const int r = idx / D, d = idx % D;
            const int64_t j = k0 + r;
            const int ok = j < Lmax;
            Ks[r * P + d] = ok ? ld_any(kc, kvt, kb + j * kvw + d) : 0.0f;
            Vs[r * P + d] = ok ? ld_any(vc, kvt, kb + j * kvw + d) : 0.0f;
        }
        __syncthreads();
        float s[TQ][TK];
#pragma unroll
        for (int i = 0; i < TQ; i++)
#pragma unroll
            for (int j = 0; j < TK; j++) s[i][j] = 0.0f;
        for (int d = 0; d < D; d++) {
            float qf[TQ], kf[TK];
#pragma unroll
            for (int i = 0; i < TQ; i++) qf[i] = Qs[(ty * TQ + i) * P + d];
#pragma unroll
            for (int j = 0; j < TK; j++) kf[j] = Ks[(tx + 16 * j) * P + d];
#pragma unroll
            for (int i = 0; i < TQ; i++)
#pragma unroll
                for (int j = 0; j < TK; j++) s[i][j] += qf[i] * kf[j];
        }
#pragma unroll
        for (int i = 0; i < TQ; i++) {
            /* rows past T (the tile's padding) get position pos0 + t too: finite, never stored */
            const int64_t qpos = pos0 + t0 + ty * TQ + i;
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < TK; j++) {
                const int64_t key = k0 + tx + 16 * j;
                s[i][j] = key <= qpos ? s[i][j] * sk * scale : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
            for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, hb_shfl_xor(mx, off));
            const float mn = fmaxf(m[i], mx); /* finite: key 0 is in the first tile */
            const float corr = expf(m[i] - mn);
            float rs = 0.0f;
#pragma unroll
            for (int j = 0; j < TK; j++) {
                s[i][j] = expf(s[i][j] - mn);
                rs += s[i][j];
            }
            for (int off = 8; off > 0; off >>= 1) rs += hb_shfl_xor(rs, off);
            l[i] = l[i] * corr + rs;
            m[i] = mn;
#pragma unroll
            for (int j = 0; j < ND; j++) o[i][j] *= corr;
#pragma unroll
            for (int j = 0; j < TK; j++)
                Ps[(ty * TQ + i) * (BK + 1) + tx + 16 * j] = round_kv_rt(kvt, s[i][j]);
        }
        __syncthreads();
        const int kn = Lmax - k0 < BK ? (int)(Lmax - k0) : BK;
        for (int k = 0; k < kn; k++) {
            float pf[TQ];
#pragma unroll
            for (int i = 0; i < TQ; i++) pf[i] = Ps[(ty * TQ + i) * (BK + 1) + k];
#pragma unroll
            for (int j = 0; j < ND; j++) {
                const int d = tx + 16 * j;
                if (d < D) {
                    const float v = Vs[k * P + d];
#pragma unroll
                    for (int i = 0; i < TQ; i++) o[i][j] += pf[i] * v;
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < TQ; i++) {
        const int64_t t = t0 + ty * TQ + i;
        if (t >= T) continue;
        const float inv = 1.0f / l[i];
        float *orow = out + (b * T + t) * ldo + (int64_t)h * D;
#pragma unroll
        for (int j = 0; j < ND; j++) {
            const int d = tx + 16 * j;
            if (d < D) orow[d] = o[i][j] * inv * sv;
        }
    }
}

template <int BQ, int BK, int DMAX>
static hb_status launch_tile(hb_backend *be, size_t smem, float *out, int64_t ldo, const float *q,
                             int64_t ldq, const void *kc, const void *vc, hb_dtype kvt,
                             const float *ksc, const float *vsc, int64_t B, int64_t T, int64_t pos0,
                             int Hq, int Hkv, int D, int64_t S, float scale) {
    gpu_ctx *c = ctx_of(be);
#if defined(HB_GPU_CUDA)
    if (smem > 48 * 1024) /* above 48 KiB dynamic shared memory is opt-in on NVIDIA */
        GPU_TRY(be, cudaFuncSetAttribute(attn_tile_kernel<BQ, BK, DMAX>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
#endif
    dim3 grid((unsigned)((T + BQ - 1) / BQ), (unsigned)Hq, (unsigned)B);
    attn_tile_kernel<BQ, BK, DMAX><<<grid, 256, smem, c->stream>>>(out, ldo, q, ldq, kc, vc, kvt, ksc,
                                                                   vsc, T, pos0, Hq, Hkv, D, S, scale);
    LAUNCH_CHECK(be, "attention (tile)");
    return HB_OK;
}

template <int DMAX>
static hb_status attention_tiled(hb_backend *be, float *out, int64_t ldo, const float *q,
                                 int64_t ldq, const void *kc, const void *vc, hb_dtype kvt,
                                 const float *ksc, const float *vsc, int64_t B, int64_t T,
                                 int64_t pos0, int Hq, int Hkv, int D, int64_t S, float scale,
                                 int *done) {
    gpu_ctx *c = ctx_of(be);
    *done = 0;
#define TILE_SMEM(bq, bk) ((size_t)(((bq) + 2 * (bk)) * (D + 1) + (bq) * ((bk) + 1)) * sizeof(float))
    /* The largest tile that leaves room for two blocks per SM (the tiles are loaded, then
     * computed: a second block hides the loads), else the largest that fits at all. */
    const size_t s64 = TILE_SMEM(64, 64), s32 = TILE_SMEM(32, 32), s16 = TILE_SMEM(16, 16);
    const size_t cap = c->smem_optin;
    int bq = 0;
    if (2 * s64 <= cap) bq = 64;
    else if (2 * s32 <= cap) bq = 32;
    else if (s64 <= cap) bq = 64;
    else if (s32 <= cap) bq = 32;
    else if (s16 <= cap) bq = 16;
    *done = bq != 0;
    if (bq == 64)
        return launch_tile<64, 64, DMAX>(be, s64, out, ldo, q, ldq, kc, vc, kvt, ksc, vsc, B, T,
                                         pos0, Hq, Hkv, D, S, scale);
    if (bq == 32)
        return launch_tile<32, 32, DMAX>(be, s32, out, ldo, q, ldq, kc, vc, kvt, ksc, vsc, B, T,
                                         pos0, Hq, Hkv, D, S, scale);
    if (bq == 16)
        return launch_tile<16, 16, DMAX>(be, s16, out, ldo, q, ldq, kc, vc, kvt, ksc, vsc, B, T,
                                         pos0, Hq, Hkv, D, S, scale);
#undef TILE_SMEM
    return HB_OK; /* not enough shared memory: the caller uses the split kernel */
}

#if defined(HB_GPU_CUDA)
/* ---- prefill on the tensor cores (NVIDIA sm_80+) ----
 *
 * mma.sync.m16n8k16 with f32 accumulators (PTX ISA, "Matrix fragments for mma.m16n8k16"): in
 * a warp, lane = 4 g + t holds
 *   A (16 x 16, row-major) a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1],
 *                          a[2] = A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9]
 *   B (16 x 8, "col")      b[0] = B[2t, 2t+1][g],   b[1] = B[2t+8, 2t+9][g]
 *   C, D (16 x 8)          c[0..1] = C[g][2t, 2t+1], c[2..3] = C[g+8][2t, 2t+1]
 * two 16-bit values per register, the lower column (or row) in the low half. The emulator of
 * tests/gpu_emu implements the same contract (hb_emu_mma_16816). */
template <int KT>
static __device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(HB_GPU_EMU)
    hb_emu_mma_16816(d, a, b, KT == HB_F16);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (KT == HB_BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__)
    __trap(); /* never launched below sm_80 (op_attention checks the device) */
#endif
}

enum { MMA_BQ = 64, MMA_BK = 64, MMA_WARPS = 4 };
/* shared memory of attn_mma_kernel<D>: Q (64, D+8), K (64, D+8), V^T (D, 64+8), 16-bit; the
 * +8 pads make the fragment loads of a warp hit 32 different banks */
static constexpr size_t mma_smem(int D) {
    return (size_t)(2 * MMA_BQ * (D + 8) + D * (MMA_BK + 8)) * sizeof(uint16_t);
}

/* One block per (64 queries, head, sequence); warp w owns queries 16w .. 16w+15 of the tile.
 * Scores S = Q K^T (16 x 64 per warp) and the output O (16 x D) live in mma fragments; the
 * softmax numerators P become the A operand of P V without leaving registers. Q is rounded to
 * KT when loaded, P when packed; the row sums l add the unrounded p (backend.h). */
template <int KT, int D>
__global__ void __launch_bounds__(128)
attn_mma_kernel(float *out, int64_t ldo, const float *q, int64_t ldq, const uint16_t *kc,
                const uint16_t *vc, int64_t T, int64_t pos0, int Hq, int Hkv, int64_t S,
                float scale_log2) {
    constexpr int QS = D + 8, VS = MMA_BK + 8, KSTEPS = D / 16, NT_S = MMA_BK / 8, NT_O = D / 8;
    extern __shared__ uint16_t smem16[];
    uint16_t *Qs = smem16, *Ks = Qs + MMA_BQ * QS, *Vt = Ks + MMA_BK * QS;
    const int tid = threadIdx.x, lane = tid % 32, w = tid / 32, g = lane / 4, t4 = lane % 4;
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z, t0 = (int64_t)blockIdx.x * MMA_BQ;
    const int64_t kvw = (int64_t)Hkv * D;
    const int64_t kb = b * S * kvw + (int64_t)(h / (Hq / Hkv)) * D; /* element offset of key 0 */

    /* Q tile, rounded to KT; rows past T are zeros (computed, never stored) */
    for (int idx = tid; idx < MMA_BQ * D / 2; idx += blockDim.x) {
        const int r = idx / (D / 2), d = (idx % (D / 2)) * 2;
        const int64_t tq = t0 + r;
        float x0 = 0.0f, x1 = 0.0f;
        if (tq < T) {
            const float *qr = q + (b * T + tq) * ldq + (int64_t)h * D + d;
            x0 = qr[0];
            x1 = qr[1];
        }
        *(uint32_t *)(Qs + r * QS + d) = pack_half2((hb_dtype)KT, x0, x1);
    }
    __syncthreads();
    uint32_t qa[KSTEPS][4];
    {
        const uint16_t *q0 = Qs + (w * 16 + g) * QS + 2 * t4, *q8 = q0 + 8 * QS;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk++) {
            qa[kk][0] = *(const uint32_t *)(q0 + kk * 16);
            qa[kk][1] = *(const uint32_t *)(q8 + kk * 16);
            qa[kk][2] = *(const uint32_t *)(q0 + kk * 16 + 8);
            qa[kk][3] = *(const uint32_t *)(q8 + kk * 16 + 8);
        }
    }
    float o[NT_O][4];
#pragma unroll
    for (int n = 0; n < NT_O; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int64_t qpos0 = pos0 + t0 + w * 16 + g; /* positions of my rows g and g + 8 */
    const int64_t tend = t0 + MMA_BQ < T ? t0 + MMA_BQ : T;
    const int64_t Lmax = pos0 + tend; /* keys the tile's last query attends */

    for (int64_t k0 = 0; k0 < Lmax; k0 += MMA_BK) {
        __syncthreads(); /* the previous tiles are no longer read */
        /* K rows as they are, 16 bytes per thread and step, consecutive threads along a row */
        for (int idx = tid; idx < MMA_BK * (D / 8); idx += blockDim.x) {
            const int r = idx / (D / 8), d = (idx % (D / 8)) * 8;
            uint4 kx = {0u, 0u, 0u, 0u};
            if (k0 + r < Lmax) kx = *(const uint4 *)(kc + kb + (k0 + r) * kvw + d);
            *(uint4 *)(Ks + r * QS + d) = kx;
        }
        /* V transposed: consecutive threads take consecutive keys, so the 16-bit stores of a
         * warp fall into 16 different banks (along a row they would all hit one) */
        for (int idx = tid; idx < MMA_BK * (D / 8); idx += blockDim.x) {
            const int r = idx % MMA_BK, d = (idx / MMA_BK) * 8;
            uint4 vx = {0u, 0u, 0u, 0u};
            if (k0 + r < Lmax) vx = *(const uint4 *)(vc + kb + (k0 + r) * kvw + d);
            const uint32_t vw[4] = {vx.x, vx.y, vx.z, vx.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                Vt[(d + 2 * e) * VS + r] = (uint16_t)(vw[e] & 0xffffu);
                Vt[(d + 2 * e + 1) * VS + r] = (uint16_t)(vw[e] >> 16);
            }
        }
        __syncthreads();
        /* nothing to do for this warp: its rows are all past T (a partial last query tile), or
         * every key of the tile is past its last row (warp-uniform: shuffles stay whole) */
        if (t0 + w * 16 >= T || k0 > qpos0 - g + 15) continue;
        float sc[NT_S][4];
#pragma unroll
        for (int n = 0; n < NT_S; n++) {
            sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
            const uint16_t *kr = Ks + (n * 8 + g) * QS + 2 * t4;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++) {
                const uint32_t kb2[2] = {*(const uint32_t *)(kr + kk * 16),
                                         *(const uint32_t *)(kr + kk * 16 + 8)};
                mma_16816<KT>(sc[n], qa[kk], kb2);
            }
        }
        /* scale (log2 domain), causal mask, running max per row (r = 0: row g, 1: row g + 8) */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < NT_S; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = e / 2;
                const int64_t key = k0 + n * 8 + 2 * t4 + (e & 1);
                const float x = key <= qpos0 + 8 * r ? sc[n][e] * scale_log2 : -INFINITY;
                sc[n][e] = x;
                mx[r] = fmaxf(mx[r], x);
            }
        float corr[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], hb_shfl_xor(mx[r], 1));
            mx[r] = fmaxf(mx[r], hb_shfl_xor(mx[r], 2));
            const float mn = fmaxf(m[r], mx[r]); /* finite: key 0 is in the first tile */
            corr[r] = exp2f(m[r] - mn);
            m[r] = mn;
            l[r] *= corr[r];
        }
#pragma unroll
        for (int n = 0; n < NT_S; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = exp2f(sc[n][e] - m[e / 2]);
                sc[n][e] = p;
                l[e / 2] += p;
            }
#pragma unroll
        for (int n = 0; n < NT_O; n++) {
            o[n][0] *= corr[0];
            o[n][1] *= corr[0];
            o[n][2] *= corr[1];
            o[n][3] *= corr[1];
        }
        /* O += P V: the scores of key groups 2j and 2j+1 form P's A fragment for k-step j */
#pragma unroll
        for (int j = 0; j < MMA_BK / 16; j++) {
            const uint32_t pa[4] = {pack_half2((hb_dtype)KT, sc[2 * j][0], sc[2 * j][1]),
                                    pack_half2((hb_dtype)KT, sc[2 * j][2], sc[2 * j][3]),
                                    pack_half2((hb_dtype)KT, sc[2 * j + 1][0], sc[2 * j + 1][1]),
                                    pack_half2((hb_dtype)KT, sc[2 * j + 1][2], sc[2 * j + 1][3])};
#pragma unroll
            for (int n = 0; n < NT_O; n++) {
                const uint16_t *vr = Vt + (n * 8 + g) * VS + j * 16 + 2 * t4;
                const uint32_t vb2[2] = {*(const uint32_t *)vr, *(const uint32_t *)(vr + 8)};
                mma_16816<KT>(o[n], pa, vb2);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += hb_shfl_xor(l[r], 1);
        l[r] += hb_shfl_xor(l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int64_t tq = t0 + w * 16 + g + 8 * r;
        if (tq >= T) continue;
        const float inv = 1.0f / l[r];
        float *orow = out + (b * T + tq) * ldo + (int64_t)h * D + 2 * t4;
#pragma unroll
        for (int n = 0; n < NT_O; n++) {
            orow[n * 8] = o[n][2 * r] * inv;
            orow[n * 8 + 1] = o[n][2 * r + 1] * inv;
        }
    }
}

template <int KT, int D>
static hb_status launch_mma(hb_backend *be, float *out, int64_t ldo, const float *q, int64_t ldq,
                            const void *kc, const void *vc, int64_t B, int64_t T, int64_t pos0,
                            int Hq, int Hkv, int64_t S, float scale) {
    gpu_ctx *c = ctx_of(be);
    const size_t smem = mma_smem(D);
    if (smem > 48 * 1024)
        GPU_TRY(be, cudaFuncSetAttribute(attn_mma_kernel<KT, D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid((unsigned)((T + MMA_BQ - 1) / MMA_BQ), (unsigned)Hq, (unsigned)B);
    attn_mma_kernel<KT, D><<<grid, 32 * MMA_WARPS, smem, c->stream>>>(
        out, ldo, q, ldq, (const uint16_t *)kc, (const uint16_t *)vc, T, pos0, Hq, Hkv, S,
        scale * 1.4426950408889634f);
    LAUNCH_CHECK(be, "attention (mma)");
    return HB_OK;
}

/* The tensor-core kernel when it applies: NVIDIA sm_80+, warp 32, a bf16/f16 cache, D 64 or
 * 128, 16-byte aligned rows, the shared memory it needs; HETBENCH_GPU_ATTN=simt (read when the
 * device is opened) turns it off. */
static hb_status attention_mma(hb_backend *be, float *out, int64_t ldo, const float *q,
                               int64_t ldq, const void *kc, const void *vc, hb_dtype kvt,
                               int64_t B, int64_t T, int64_t pos0, int Hq, int Hkv, int D,
                               int64_t S, float scale, int *done) {
    gpu_ctx *c = ctx_of(be);
    *done = 0;
    if (c->attn_simt || c->cc_major < 8 || c->warp_size != 32 || (kvt != HB_BF16 && kvt != HB_F16)) return HB_OK;
    if ((D != 64 && D != 128) || !is_aligned(kc, 16) || !is_aligned(vc, 16) ||
        mma_smem(D) > c->smem_optin)
        return HB_OK;
    *done = 1;
    if (kvt == HB_BF16)
        return D == 64 ? launch_mma<HB_BF16, 64>(be, out, ldo, q, ldq, kc, vc, B, T, pos0, Hq, Hkv, S, scale)
                       : launch_mma<HB_BF16, 128>(be, out, ldo, q, ldq, kc, vc, B, T, pos0, Hq, Hkv, S, scale);
    return D == 64 ? launch_mma<HB_F16, 64>(be, out, ldo, q, ldq, kc, vc, B, T, pos0, Hq, Hkv, S, scale)
                   : launch_mma<HB_F16, 128>(be, out, ldo, q, ldq, kc, vc, B, T, pos0, Hq, Hkv, S, scale);
}
#endif /* HB_GPU_CUDA */

hb_status op_attention(hb_backend *be, const hb_attention_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, S = a->k_cache.ne[1];
    const int64_t Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3];
    const int64_t Hq = D > 0 ? hb_tensor_cols(&a->q) / D : 0;
    const int64_t ldq = hb_tensor_ld(&a->q), ldo = hb_tensor_ld(&a->out);
    const float *q = (const float *)a->q.data;
    float *out = (float *)a->out.data;
    const void *k_cache = a->k_cache.data, *v_cache = a->v_cache.data;
    /* fp8: the static per-tensor scales, applied to the f32 sums (device pointers) */
    const float *ksc = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale : NULL;
    const float *vsc = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale : NULL;
    if (!kv_dtype_ok(kvt))
        return fail(be, HB_ERR_UNSUPPORTED,
                    "%s: attention: KV cache dtype %s (f32, bf16, f16, fp8, e5m2)", HB_GPU_NAME,
                    dtype_name(kvt));
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0 || D <= 0 || pos0 < 0 || pos0 + T > S ||
        ldq < Hq * D || ldo < Hq * D)
        return fail(be, HB_ERR_INPUT,
                    "%s: attention: bad shape Hq=%lld Hkv=%lld D=%lld pos0=%lld T=%lld S=%lld "
                    "ldq=%lld ldo=%lld",
                    HB_GPU_NAME, (long long)Hq, (long long)Hkv, (long long)D, (long long)pos0,
                    (long long)T, (long long)S, (long long)ldq, (long long)ldo);
    if (B <= 0 || T <= 0) return HB_OK;
    gpu_ctx *c = ctx_of(be);
    if (D > ATT_DMAX || D > ATT_DPL * c->warp_size)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention: head dimension %lld > %d", HB_GPU_NAME,
                    (long long)D, ATT_DMAX);
    if (Hq > 65535 || B > 65535)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention: more than 65535 heads or sequences",
                    HB_GPU_NAME);
    GPU_ENTER(be);
    const float scale = (float)(1.0 / sqrt((double)D));
    const int iHq = (int)Hq, iHkv = (int)Hkv, iD = (int)D;

    if (T >= ATT_TILE_MIN_T) {
        int done = 0;
#if defined(HB_GPU_CUDA)
        TRY(attention_mma(be, out, ldo, q, ldq, k_cache, v_cache, kvt, B, T, pos0, iHq, iHkv, iD,
                          S, scale, &done));
        if (done) return HB_OK;
#endif
        if (D <= 64)
            TRY(attention_tiled<64>(be, out, ldo, q, ldq, k_cache, v_cache, kvt, ksc, vsc, B, T,
                                    pos0, iHq, iHkv, iD, S, scale, &done));
        else if (D <= 128)
            TRY(attention_tiled<128>(be, out, ldo, q, ldq, k_cache, v_cache, kvt, ksc, vsc, B, T,
                                     pos0, iHq, iHkv, iD, S, scale, &done));
        else
            TRY(attention_tiled<256>(be, out, ldo, q, ldq, k_cache, v_cache, kvt, ksc, vsc, B, T,
                                     pos0, iHq, iHkv, iD, S, scale, &done));
        if (done) return HB_OK;
    }

    /* split kernel: enough blocks for ~4 per SM, chunks of at least 64 keys */
    const int64_t BT = B * T;
    if (BT > 65535)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: attention: B*T = %lld > 65535 query rows for "
                    "the decode kernel", HB_GPU_NAME, (long long)BT);
    const int64_t Lmax = pos0 + T, queries = BT * Hq;
    int64_t n_split = ((int64_t)c->n_sm * 4 + queries - 1) / queries;
    const int64_t max_split = (Lmax + 63) / 64;
    if (n_split > max_split) n_split = max_split;
    if (n_split < 1) n_split = 1;
    const int64_t chunk = (Lmax + n_split - 1) / n_split;
    n_split = (Lmax + chunk - 1) / chunk;
    float *part = NULL;
    if (n_split > 1) {
        TRY(ensure_buffer(be, (void **)&c->att_part, &c->att_part_bytes,
                             (size_t)(queries * n_split * (D + 2)) * sizeof(float)));
        part = c->att_part;
    }
    const int nw = ATT_THREADS / c->warp_size;
    const size_t smem = (size_t)(nw * (2 + D)) * sizeof(float);
    dim3 grid((unsigned)n_split, (unsigned)Hq, (unsigned)BT);
    auto split = kvt == HB_BF16       ? attn_split_kernel<HB_BF16>
                 : kvt == HB_F16      ? attn_split_kernel<HB_F16>
                 : kvt == HB_FP8_E4M3 ? attn_split_kernel<HB_FP8_E4M3>
                 : kvt == HB_FP8_E5M2 ? attn_split_kernel<HB_FP8_E5M2>
                                      : attn_split_kernel<HB_F32>;
    split<<<grid, ATT_THREADS, smem, c->stream>>>(out, ldo, q, ldq, k_cache, v_cache, ksc, vsc, T,
                                                  pos0, iHq, iHkv, iD, S, chunk, scale, part);
    LAUNCH_CHECK(be, "attention (split)");
    if (part) {
        attn_combine_kernel<<<dim3((unsigned)Hq, (unsigned)BT), 128, 0, c->stream>>>(
            out, ldo, part, vsc, iHq, iD, (int)n_split);
        LAUNCH_CHECK(be, "attention (combine)");
    }
    return HB_OK;
}

/* ==== element-wise ==== */

/* out (N, F) = silu(in[:, :F]) * in[:, F:], in (N, 2F) */
__global__ void swiglu_kernel(float *out, const float *in, int64_t N, int64_t F) {
    GRID_STRIDE(idx, N * F) {
        const int64_t r = idx / F, f = idx % F;
        const float x = in[r * 2 * F + f], g = in[r * 2 * F + F + f];
        out[idx] = x / (1.0f + expf(-x)) * g;
    }
}

hb_status op_swiglu(hb_backend *be, const hb_swiglu_args *a) {
    float *out = (float *)a->out.data;
    const float *in = (const float *)a->in.data;
    const int64_t N = hb_tensor_rows(&a->out), F = hb_tensor_cols(&a->out);
    if (N <= 0 || F <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    swiglu_kernel<<<grid_for(c, N * F, THREADS), THREADS, 0, c->stream>>>(out, in, N, F);
    LAUNCH_CHECK(be, "swiglu");
    return HB_OK;
}

__global__ void gelu_kernel(float *out, const float *in, int64_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    GRID_STRIDE(i, n) {
        const float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
}

hb_status op_gelu(hb_backend *be, const hb_gelu_args *a) {
    float *out = (float *)a->out.data;
    const float *in = (const float *)a->in.data;
    const int64_t n = hb_tensor_numel(&a->out);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    gelu_kernel<<<grid_for(c, n, THREADS), THREADS, 0, c->stream>>>(out, in, n);
    LAUNCH_CHECK(be, "gelu");
    return HB_OK;
}

/* out = a + s * b: the residual add and the STREAM triad, 16-byte loads when aligned. */
__global__ void add_vec4_kernel(float4 *out, const float4 *a, const float4 *b, float s, int64_t n4) {
    GRID_STRIDE(i, n4) {
        const float4 x = a[i], y = b[i];
        out[i] = make_float4(x.x + s * y.x, x.y + s * y.y, x.z + s * y.z, x.w + s * y.w);
    }
}

__global__ void add_kernel(float *out, const float *a, const float *b, float s, int64_t lo,
                           int64_t n) {
    for (int64_t i = lo + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = a[i] + s * b[i];
}

hb_status op_add(hb_backend *be, const hb_add_args *x) {
    float *out = (float *)x->out.data;
    const float *a = (const float *)x->a.data, *b = (const float *)x->b.data, s = x->s;
    const int64_t n = hb_tensor_numel(&x->out);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    int64_t done = 0;
    if (is_aligned(out, 16) && is_aligned(a, 16) && is_aligned(b, 16) && n >= 4) {
        const int64_t n4 = n / 4;
        add_vec4_kernel<<<grid_for(c, n4, THREADS), THREADS, 0, c->stream>>>(
            (float4 *)out, (const float4 *)a, (const float4 *)b, s, n4);
        LAUNCH_CHECK(be, "add");
        done = n4 * 4;
    }
    if (done < n) {
        add_kernel<<<grid_for(c, n - done, THREADS), THREADS, 0, c->stream>>>(out, a, b, s, done, n);
        LAUNCH_CHECK(be, "add");
    }
    return HB_OK;
}

/* ==== row-wise reductions and sampling ==== */

/* (rows, cols): out = exp(x - max) / sum, the sum of the f32 exponentials (as the CPU). */
__global__ void softmax_kernel(float *out, const float *in, int64_t rows, int64_t cols) {
    __shared__ float sh[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *x = in + r * cols;
        float *o = out + r * cols;
        float mx = -INFINITY;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, x[c]);
        mx = block_max(mx, sh);
        float sum = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const float e = expf(x[c] - mx);
            o[c] = e;
            sum += e;
        }
        sum = block_sum(sum, sh);
        const float inv = (float)(1.0 / (double)sum);
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] *= inv;
    }
}

hb_status op_softmax(hb_backend *be, const hb_softmax_args *a) {
    float *out = (float *)a->out.data;
    const float *in = (const float *)a->in.data;
    const int64_t rows = hb_tensor_rows(&a->in), cols = hb_tensor_cols(&a->in);
    if (rows <= 0 || cols <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    softmax_kernel<<<rows_grid(rows), row_threads(cols), 0, c->stream>>>(out, in, rows, cols);
    LAUNCH_CHECK(be, "softmax");
    return HB_OK;
}

static const int ROW_THREADS = 256; /* argmax and sample: a power of two for the tree */

/* Index of the max of x (cols) by the CPU's rule: the first NaN if there is one, else the
 * largest value, the lowest index on ties. sv/si/sn: ROW_THREADS entries of shared memory. */
static __device__ int64_t block_argmax(const float *x, int64_t cols, float *sv, int64_t *si,
                                       int64_t *sn) {
    const int tid = threadIdx.x;
    float best = -INFINITY;
    int64_t bi = -1, nan_i = INT64_MAX;
    for (int64_t c = tid; c < cols; c += blockDim.x) { /* increasing c: the first wins ties */
        const float v = x[c];
        if (isnan(v)) {
            if (c < nan_i) nan_i = c;
        } else if (bi < 0 || v > best) {
            best = v;
            bi = c;
        }
    }
    sv[tid] = best;
    si[tid] = bi;
    sn[tid] = nan_i;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) {
            const int o = tid + s;
            if (sn[o] < sn[tid]) sn[tid] = sn[o];
            if (si[o] >= 0 &&
                (si[tid] < 0 || sv[o] > sv[tid] || (sv[o] == sv[tid] && si[o] < si[tid]))) {
                sv[tid] = sv[o];
                si[tid] = si[o];
            }
        }
        __syncthreads();
    }
    const int64_t r = sn[0] != INT64_MAX ? sn[0] : si[0];
    __syncthreads(); /* the arrays may be reused */
    return r;
}

__global__ void argmax_kernel(int32_t *out, const float *in, int64_t ld, int64_t rows,
                              int64_t cols) {
    __shared__ float sv[ROW_THREADS];
    __shared__ int64_t si[ROW_THREADS], sn[ROW_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t am = block_argmax(in + r * ld, cols, sv, si, sn);
        if (threadIdx.x == 0) out[r] = (int32_t)am;
    }
}

static hb_status gpu_argmax(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
                            int64_t cols) {
    if (cols <= 0 || cols > INT32_MAX || ld < cols)
        return fail(be, HB_ERR_INPUT, "%s: argmax: cols %lld, ld %lld", HB_GPU_NAME,
                    (long long)cols, (long long)ld);
    if (rows <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    argmax_kernel<<<rows_grid(rows), ROW_THREADS, 0, c->stream>>>(out, in, ld, rows, cols);
    LAUNCH_CHECK(be, "argmax");
    return HB_OK;
}

hb_status op_argmax(hb_backend *be, const hb_argmax_args *a) {
    return gpu_argmax(be, a->out, (const float *)a->in.data, hb_tensor_ld(&a->in),
                      hb_tensor_rows(&a->in), hb_tensor_cols(&a->in));
}

/* Temperature sampling by inverse CDF in double, the CPU's rule: w_c = exp((x_c - max) / T),
 * target = u * sum(w), answer = first c whose running sum exceeds target. Thread i sums a
 * contiguous chunk; thread 0 turns the chunk sums into prefix sums (sequentially: monotone), and
 * the one thread whose [prefix_i, prefix_i+1) holds the target walks its chunk. The pick equals
 * the CPU's unless the target lies within a rounding error of a boundary. */
__global__ void sample_kernel(int32_t *out, const float *logits, int64_t ld, int64_t rows,
                              int64_t cols, float temperature, uint64_t seed, uint64_t step) {
    __shared__ float sv[ROW_THREADS];
    __shared__ int64_t si[ROW_THREADS], sn[ROW_THREADS];
    __shared__ double pre[ROW_THREADS + 1];
    const int tid = threadIdx.x, nt = blockDim.x;
    const double inv_t = 1.0 / (double)temperature;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *x = logits + r * ld;
        const int64_t am = block_argmax(x, cols, sv, si, sn);
        const double mx = x[am];
        if (isnan(mx) || isinf(mx)) { /* no distribution: argmax, as the CPU */
            if (tid == 0) out[r] = (int32_t)am;
            continue;
        }
        const int64_t chunk = (cols + nt - 1) / nt, c0 = tid * chunk;
        const int64_t c1 = c0 + chunk < cols ? c0 + chunk : cols;
        double part = 0.0;
        for (int64_t c = c0; c < c1; c++) part += exp(((double)x[c] - mx) * inv_t);
        pre[tid] = part;
        __syncthreads();
        if (tid == 0) {
            double acc = 0.0;
            for (int i = 0; i < nt; i++) {
                const double v = pre[i];
                pre[i] = acc;
                acc += v;
            }
            pre[nt] = acc;
        }
        __syncthreads();
        const double target =
            (double)hb_rng_unit(seed, step * (uint64_t)rows + (uint64_t)r) * pre[nt];
        if (pre[tid] <= target && target < pre[tid + 1]) {
            double cum = pre[tid];
            int64_t pick = -1, last = -1;
            for (int64_t c = c0; c < c1; c++) {
                const double w = exp(((double)x[c] - mx) * inv_t);
                if (w > 0.0) last = c;
                cum += w;
                if (cum > target) {
                    pick = c;
                    break;
                }
            }
            if (pick < 0) pick = last >= 0 ? last : am; /* rounding at the chunk's end */
            out[r] = (int32_t)pick;
        }
        __syncthreads(); /* pre is reused by the next row */
    }
}

hb_status op_sample(hb_backend *be, const hb_sample_args *a) {
    int32_t *out = a->out;
    const float *logits = (const float *)a->logits.data, temperature = a->temperature;
    const int64_t ld = hb_tensor_ld(&a->logits), rows = hb_tensor_rows(&a->logits);
    const int64_t cols = hb_tensor_cols(&a->logits);
    const uint64_t seed = a->seed, step = a->step;
    if (cols <= 0 || cols > INT32_MAX || ld < cols)
        return fail(be, HB_ERR_INPUT, "%s: sample: cols %lld, ld %lld", HB_GPU_NAME,
                    (long long)cols, (long long)ld);
    if (!(temperature > 0.0f)) return gpu_argmax(be, out, logits, ld, rows, cols);
    if (rows <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    sample_kernel<<<rows_grid(rows), ROW_THREADS, 0, c->stream>>>(out, logits, ld, rows, cols,
                                                                  temperature, seed, step);
    LAUNCH_CHECK(be, "sample");
    return HB_OK;
}

} // namespace HB_GPU_NS
