/* cpu_ops.c - the ops of the CPU reference backend: the specification every backend matches.
 *
 * Element-wise and row-wise ops are plain loops parallelised with OpenMP. matmul is the hot
 * path of decode and prefill:
 *   M <= 8 (decode): a hand-written GEMV-style kernel that streams every weight row once and
 *     computes all M dot products from it, so it runs at memory bandwidth. bf16/f16 weights are
 *     widened to f32 in registers (bf16 -> f32 is a 16-bit shift), so they cost half the bytes.
 *   M > 8 (prefill): OpenBLAS sgemm; bf16/f16 weights are converted a panel of rows at a time
 *     into per-thread f32 scratch that stays in L2, never as a whole matrix.
 * The GEMV kernels exist for AVX-512 (F, BW, VL), AVX2+FMA+F16C and portable C; the binary is built for
 * plain x86-64 and picks one at run time (hb_cpu_ctx.isa). */
#include "cpu_backend.h"
#include "cpu_kv.h"

#include <cblas.h>  // defines: cblas_sgemm
#include <limits.h>
#include <math.h>
#include <omp.h>    // defines: omp_get_thread_num, omp_get_max_threads
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> // defines: the AVX2 / AVX-512 intrinsics, used only under target()
#define HB_X86 1
#endif

/* Below this many elements an OpenMP region costs more than it saves. */
#define PAR_MIN 32768

/* ---- scalar element access in a storage dtype (dtype.h: f32, bf16, f16, fp8) ---- */

#define load_elem hb_load_f32
#define store_elem hb_store_f32

/* ---- quantisation (tensor.h): scales of amax / max(dt) per group, codes x / scale ---- */

/* Where quantise() reads its f32 values: an array in any dtype, or the generator. */
typedef struct qsrc {
    const void *p;
    hb_dtype dt;
    int rng;
    uint64_t seed;
    float scale, offset;
} qsrc;

static inline float qsrc_at(const qsrc *s, int64_t i) {
    return s->rng ? hb_rng_value(s->seed, (uint64_t)i, s->scale, s->offset) : load_elem(s->p, s->dt, i);
}

/* The scale of a group whose largest magnitude is amax: amax / max(dt), 1 for an all-zero or
 * non-finite group (its codes are then 0, or saturate / stay NaN). */
static inline float group_scale(float amax, float qmax) {
    return (amax > 0.0f && amax <= 3.4028235e38f) ? amax / qmax : 1.0f;
}

/* dst (rows, cols), contiguous, quantised per dst->q from src: scales first, then the codes
 * round-to-nearest-even(x / scale) with saturation (hb_store_f32). */
static void quantise(const hb_tensor *dst, const qsrc *src) {
    const int64_t rows = hb_tensor_rows(dst), cols = hb_tensor_cols(dst);
    int64_t bm, bk, sr, sc;
    hb_quant_block(dst, &bm, &bk);
    hb_quant_nscales(dst, &sr, &sc);
    const float qmax = hb_dtype_fp8_max(dst->dt);
    float *scale = dst->q.scale;
    if (sr * sc == 1) {
        float amax = 0.0f;
        const int64_t n = rows * cols;
#pragma omp parallel for reduction(max : amax) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = fabsf(qsrc_at(src, i));
            if (v > amax || isnan(v)) amax = isnan(v) ? INFINITY : v;
        }
        scale[0] = group_scale(amax, qmax);
    } else {
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
        for (int64_t g = 0; g < sr * sc; g++) {
            const int64_t r0 = (g / sc) * bm, c0 = (g % sc) * bk;
            const int64_t r1 = r0 + bm < rows ? r0 + bm : rows, c1 = c0 + bk < cols ? c0 + bk : cols;
            float amax = 0.0f;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) {
                    float v = fabsf(qsrc_at(src, r * cols + c));
                    if (v > amax || isnan(v)) amax = isnan(v) ? INFINITY : v;
                }
            scale[g] = group_scale(amax, qmax);
        }
    }
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *srow = scale + (r / bm) * sc;
        for (int64_t c = 0; c < cols; c++)
            store_elem(dst->data, dst->dt, r * cols + c, qsrc_at(src, r * cols + c) / srow[c / bk]);
    }
}

/* dst[i] (dst_dt) = code[i] * scale of its group, src (rows, cols) contiguous quantised. */
static void dequantise(void *dst, hb_dtype dst_dt, const hb_tensor *src) {
    const int64_t rows = hb_tensor_rows(src), cols = hb_tensor_cols(src);
    int64_t bm, bk, sc;
    hb_quant_block(src, &bm, &bk);
    hb_quant_nscales(src, NULL, &sc);
    const float *scale = src->q.scale;
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *srow = scale + (r / bm) * sc;
        for (int64_t c = 0; c < cols; c++)
            store_elem(dst, dst_dt, r * cols + c, load_elem(src->data, src->dt, r * cols + c) * srow[c / bk]);
    }
}

/* ---- generators and casts ---- */

hb_status hb_cpu_fill_random(hb_backend *be, const hb_fill_random_args *a) {
    (void)be;
    const hb_tensor *d = &a->dst;
    if (d->q.kind != HB_QUANT_NONE) {
        const qsrc src = {NULL, HB_F32, 1, a->seed, a->scale, a->offset};
        quantise(d, &src);
        return HB_OK;
    }
    const int64_t n = hb_tensor_numel(d);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        store_elem(d->data, d->dt, i, hb_rng_value(a->seed, (uint64_t)i, a->scale, a->offset));
    return HB_OK;
}

hb_status hb_cpu_fill_tokens(hb_backend *be, const hb_fill_tokens_args *a) {
    (void)be;
    int32_t *dst = a->dst;
    const int64_t n = a->n;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        dst[i] = (int32_t)(hb_rng_u64(a->seed, (uint64_t)i) % (uint64_t)a->vocab);
    return HB_OK;
}

hb_status hb_cpu_convert(hb_backend *be, const hb_convert_args *a) {
    (void)be;
    const hb_dtype dst_dt = a->dst.dt, src_dt = a->src.dt;
    const int64_t n = hb_tensor_numel(&a->src);
    if (n <= 0) return HB_OK;
    if (a->dst.q.kind != HB_QUANT_NONE) {
        const qsrc src = {a->src.data, src_dt, 0, 0, 0.0f, 0.0f};
        quantise(&a->dst, &src);
        return HB_OK;
    }
    if (a->src.q.kind != HB_QUANT_NONE) {
        dequantise(a->dst.data, dst_dt, &a->src);
        return HB_OK;
    }
    void *dst = a->dst.data;
    const void *src = a->src.data;
    if (dst_dt == src_dt) {
        memmove(dst, src, (size_t)n * (size_t)hb_dtype_size(dst_dt));
        return HB_OK;
    }
    // Every f16, bf16 and fp8 value is exact in f32, so going through f32 rounds once.
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        store_elem(dst, dst_dt, i, load_elem(src, src_dt, i));
    return HB_OK;
}

/* ---- embedding and norms ---- */

hb_status hb_cpu_embedding(hb_backend *be, const hb_embedding_args *a) {
    const hb_dtype wdt = a->wte.dt;
    const void *wte = a->wte.data, *wpe = a->wpe.data;
    const int32_t *tokens = a->tokens;
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, C = hb_tensor_cols(&a->wte);
    const int64_t V = hb_tensor_rows(&a->wte), ldo = hb_tensor_ld(&a->out);
    float *out = a->out.data;
    const int64_t N = B * T;
    for (int64_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: embedding: token %d at %lld outside the vocabulary of %lld",
                               tokens[i], (long long)i, (long long)V);
    // out (B*T, C) = wte (V, C)[token] + wpe (maxT, C)[pos0 + t]
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const int64_t row = (int64_t)tokens[i] * C, prow = (pos0 + i % T) * C;
        float *o = out + i * ldo;
        for (int64_t c = 0; c < C; c++) {
            float v = load_elem(wte, wdt, row + c);
            if (wpe) v += load_elem(wpe, wdt, prow + c);
            o[c] = v;
        }
    }
    return HB_OK;
}

hb_status hb_cpu_rmsnorm(hb_backend *be, const hb_rmsnorm_args *a) {
    const int64_t N = hb_tensor_rows(&a->in), C = hb_tensor_cols(&a->in);
    float *out = a->out.data;
    const float *in = a->in.data, *w = a->w.data, eps = a->eps;
    if (C <= 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: rmsnorm: C = %lld", (long long)C);
    // out (N, C) = in / sqrt(mean(in^2) + eps) * w; the mean in double (C can be 8k+). Rows of
    // a 3-D view (the heads inside qkv rows, Qwen3's q/k norms) are placed by hb_tensor_row_off.
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + hb_tensor_row_off(&a->in, r);
        float *o = out + hb_tensor_row_off(&a->out, r);
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = 0; c < C; c++) ss += (double)x[c] * x[c];
        const float inv = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        for (int64_t c = 0; c < C; c++) o[c] = x[c] * inv * (w ? w[c] : 1.0f);
    }
    return HB_OK;
}

hb_status hb_cpu_layernorm(hb_backend *be, const hb_layernorm_args *a) {
    const int64_t N = hb_tensor_rows(&a->in), C = hb_tensor_cols(&a->in);
    const int64_t ldi = hb_tensor_ld(&a->in), ldo = hb_tensor_ld(&a->out);
    float *out = a->out.data;
    const float *in = a->in.data, *w = a->w.data, *b = a->b.data, eps = a->eps;
    if (C <= 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: layernorm: C = %lld", (long long)C);
    // out (N, C) = (in - mean) / sqrt(var + eps) * w + b, biased variance, two passes in double.
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * ldi;
        float *o = out + r * ldo;
        double sum = 0.0, ss = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; c++) sum += x[c];
        const double mean = sum / (double)C;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = 0; c < C; c++) ss += ((double)x[c] - mean) * ((double)x[c] - mean);
        const float rstd = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        const float fmean = (float)mean;
        for (int64_t c = 0; c < C; c++)
            o[c] = (x[c] - fmean) * rstd * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
    }
    return HB_OK;
}

/* ---- matmul: shared pieces ---- */

/* The kernels' epilogue: out = beta * out + dot + bias. beta == 0 overwrites, because the
 * output buffer may hold garbage (NaN * 0 is NaN). */
static inline void store_out(float *o, float dot, const float *bias, int64_t n, float beta) {
    float v = dot + (bias ? bias[n] : 0.0f);
    *o = beta == 0.0f ? v : beta * *o + v;
}

/* ---- GEMV kernels (M <= 8): portable, AVX2 + FMA + F16C, AVX-512 F + BW + VL ----
 *
 * One weight row at a time, front to back, so each thread reads one long linear stream (rows
 * interleaved in blocks read ~30% slower from DRAM: the prefetchers restart on every block).
 * Each weight vector is loaded once and used for all M rows of a; U vectors per iteration give
 * M * U independent FMA chains. A software prefetch PF_BYTES ahead keeps enough lines in flight
 * for bf16, which consumes its bytes at half the rate of f32. */

#define INLINE static inline __attribute__((always_inline))

/* Prefetch distance, bytes of weights ahead of the loads (~ DRAM latency x per-core bandwidth). */
#define PF_BYTES 8192

/* Prefetches [off, off + nbytes) + PF_BYTES of w when that lies inside w (total bytes). */
INLINE void prefetch_ahead(const void *w, int64_t off, int nbytes, int64_t total) {
    off += PF_BYTES;
    if (off + nbytes <= total)
        for (int j = 0; j < nbytes; j += 64) __builtin_prefetch((const char *)w + off + j, 0, 3);
}

/* Portable kernel with GCC vector extensions: SSE2 on any x86-64, NEON on aarch64. 4 lanes, the
 * width every 64-bit target has (wider vectors would change the ABI without AVX). */
typedef float v4f __attribute__((vector_size(16)));
typedef uint16_t v4u16 __attribute__((vector_size(8)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));

INLINE v4f load4_generic(const void *w, hb_dtype dt, int64_t i) {
    v4f r;
    if (dt == HB_F32) {
        memcpy(&r, (const float *)w + i, sizeof r);
    } else if (dt == HB_BF16) {
        v4u16 h;
        memcpy(&h, (const uint16_t *)w + i, sizeof h);
        v4u32 u = __builtin_convertvector(h, v4u32) << 16;
        memcpy(&r, &u, sizeof r);
    } else { // no portable half-precision or fp8 instructions
        for (int j = 0; j < 4; j++) r[j] = load_elem(w, dt, i + j);
    }
    return r;
}

INLINE v4f loadu4(const float *p) {
    v4f r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* dots[m] = sum_k a[m, k] * w[n, k] for m < M, one row n of w (see the AVX-512 version). */
INLINE void gemv_row_generic(const int M, const int U, const hb_dtype dt, const float *a,
                             int64_t lda, const void *w, int64_t ldw, int64_t n, int64_t N,
                             int64_t K, float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    v4f acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = (v4f){0};
    int64_t k = 0;
    for (; k + 4 * U <= K; k += 4 * U) {
        prefetch_ahead(w, (n * ldw + k) * esz, 4 * U * esz, N * ldw * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const v4f wv = load4_generic(w, dt, n * ldw + k + 4 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++) acc[m][u] += loadu4(a + m * lda + k + 4 * u) * wv;
        }
    }
    for (; k + 4 <= K; k += 4) {
        const v4f wv = load4_generic(w, dt, n * ldw + k);
#pragma GCC unroll 8
        for (int m = 0; m < M; m++) acc[m][0] += loadu4(a + m * lda + k) * wv;
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; m++) {
#pragma GCC unroll 4
        for (int u = 1; u < U; u++) acc[m][0] += acc[m][u];
        const v4f v = acc[m][0];
        dots[m] = (v[0] + v[1]) + (v[2] + v[3]);
    }
    for (; k < K; k++) { // K % 4 tail
        const float wk = load_elem(w, dt, n * ldw + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

INLINE void gemv_rowm_generic(const hb_dtype dt, int64_t M, const float *a, int64_t lda,
                              const void *w, int64_t ldw, int64_t n, int64_t N, int64_t K,
                              float *dots) {
    switch (M) {
    case 1: gemv_row_generic(1, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 2: gemv_row_generic(2, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 3: gemv_row_generic(3, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 4: gemv_row_generic(4, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 5: gemv_row_generic(5, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 6: gemv_row_generic(6, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 7: gemv_row_generic(7, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    default: gemv_row_generic(8, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    }
}

static void gemv_generic(hb_dtype dt, float *out, int64_t ldo, const float *a, int64_t lda,
                         const void *w, const float *bias, int64_t M, int64_t N, int64_t K,
                         float beta) {
    // static schedule: each thread streams one contiguous range of rows
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        float dots[8];
        switch (dt) {
        case HB_F32: gemv_rowm_generic(HB_F32, M, a, lda, w, K, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_generic(HB_BF16, M, a, lda, w, K, n, N, K, dots); break;
        default: gemv_rowm_generic(HB_F16, M, a, lda, w, K, n, N, K, dots); break;
        }
        for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);
    }
}

#ifdef HB_X86
#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* 8 weights at w[i..i+8) widened to f32.
 * fp8 e4m3 codes are widened as code * 2^-8 (E4M3_UNIT: the caller multiplies that back): the
 * sign-extended byte b shifted left by 7 and masked with 0xbf80 is the IEEE half with the code's
 * sign, its exponent field e in the low 4 bits of the half's and its mantissa at the top of the
 * half's, i.e. the code's value times 2^-8 (bias 7 -> 15), normals and subnormals alike; F16C
 * widens that to f32 exactly, with no f32 subnormal anywhere (an f32 subnormal times 2^120, the
 * previous trick, took a microcode assist of ~100 cycles per vector: fp8 weights without
 * scales are mostly subnormal codes). 3 integer ops and one conversion per vector.
 * The NaN codes 0x7f / 0xff become +-1.875 there: callers find them with e4m3_has_nan_*.
 * e5m2 is the top byte of an IEEE half (exact, inf and NaN included): F16C converts it. */
#define E4M3_HALF_MASK ((short)0xbf80)
#define E4M3_UNIT 256.0f

TGT_AVX2 INLINE __m256 load8_avx2(const void *w, hb_dtype dt, int64_t i) {
    if (dt == HB_F32) return _mm256_loadu_ps((const float *)w + i);
    if (dt == HB_FP8_E5M2)
        return _mm256_cvtph_ps(_mm_slli_epi16(
            _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)((const uint8_t *)w + i))), 8));
    if (dt == HB_FP8_E4M3) /* code * 2^-8 */
        return _mm256_cvtph_ps(_mm_and_si128(
            _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)((const uint8_t *)w + i))), 7),
            _mm_set1_epi16(E4M3_HALF_MASK)));
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (dt == HB_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* Whether any of the n e4m3 codes at p is a NaN (0x7f or 0xff): 0x7f is the largest signed
 * byte, 0xff the largest unsigned one, so two running maxima per 32 bytes find both. */
TGT_AVX2 static int e4m3_has_nan_avx2(const uint8_t *p, int64_t n) {
    __m256i smax = _mm256_set1_epi8(-128), umax = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + i));
        smax = _mm256_max_epi8(smax, v);
        umax = _mm256_max_epu8(umax, v);
    }
    int nan = _mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(smax, _mm256_set1_epi8(0x7f)),
                                                   _mm256_cmpeq_epi8(umax, _mm256_set1_epi8(-1)))) != 0;
    for (; i < n; i++) nan |= (p[i] & 0x7f) == 0x7f;
    return nan;
}

TGT_AVX2 INLINE float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* dots[m] = sum_k a[m, k] * w[n, k] for m < M; M, U, dt are constants after inlining, so the
 * M x U accumulators live in registers (<= 8 of the 16 ymm). */
TGT_AVX2 INLINE void gemv_row_avx2(const int M, const int U, const hb_dtype dt, const float *a,
                                   int64_t lda, const void *w, int64_t ldw, int64_t n, int64_t N,
                                   int64_t K, float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    __m256 acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 * U <= K; k += 8 * U) {
        prefetch_ahead(w, (n * ldw + k) * esz, 8 * U * esz, N * ldw * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const __m256 wv = load8_avx2(w, dt, n * ldw + k + 8 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++)
                acc[m][u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + m * lda + k + 8 * u), wv, acc[m][u]);
        }
    }
    for (; k + 8 <= K; k += 8) { // fewer than U vectors left
        const __m256 wv = load8_avx2(w, dt, n * ldw + k);
#pragma GCC unroll 8
        for (int m = 0; m < M; m++)
            acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + m * lda + k), wv, acc[m][0]);
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; m++) {
#pragma GCC unroll 4
        for (int u = 1; u < U; u++) acc[m][0] = _mm256_add_ps(acc[m][0], acc[m][u]);
        dots[m] = hsum_avx2(acc[m][0]);
    }
    for (; k < K; k++) { // K % 8 tail
        const float wk = load_elem(w, dt, n * ldw + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

/* One row for a runtime M: the switch instantiates each (M, U) kernel. */
TGT_AVX2 INLINE void gemv_rowm_avx2(const hb_dtype dt, int64_t M, const float *a, int64_t lda,
                                    const void *w, int64_t ldw, int64_t n, int64_t N, int64_t K,
                                    float *dots) {
    switch (M) {
    case 1: gemv_row_avx2(1, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 2: gemv_row_avx2(2, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 3: gemv_row_avx2(3, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 4: gemv_row_avx2(4, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 5: gemv_row_avx2(5, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 6: gemv_row_avx2(6, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 7: gemv_row_avx2(7, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    default: gemv_row_avx2(8, 1, dt, a, lda, w, ldw, n, N, K, dots); break;
    }
}

TGT_AVX2 static void gemv_avx2(hb_dtype dt, float *out, int64_t ldo, const float *a, int64_t lda,
                               const void *w, const float *bias, int64_t M, int64_t N, int64_t K,
                               float beta) {
    // static schedule: each thread streams one contiguous range of rows
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        float dots[8];
        switch (dt) {
        case HB_F32: gemv_rowm_avx2(HB_F32, M, a, lda, w, K, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_avx2(HB_BF16, M, a, lda, w, K, n, N, K, dots); break;
        default: gemv_rowm_avx2(HB_F16, M, a, lda, w, K, n, N, K, dots); break;
        }
        for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);
    }
}

/* 16 weights at w[i..i+16) widened to f32 (e4m3: code * 2^-8, see load8_avx2). */
TGT_AVX512 INLINE __m512 load16_avx512(const void *w, hb_dtype dt, int64_t i) {
    if (dt == HB_F32) return _mm512_loadu_ps((const float *)w + i);
    if (dt == HB_FP8_E5M2)
        return _mm512_cvtph_ps(_mm256_slli_epi16(
            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)((const uint8_t *)w + i))), 8));
    if (dt == HB_FP8_E4M3)
        return _mm512_cvtph_ps(_mm256_and_si256(
            _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((const uint8_t *)w + i))), 7),
            _mm256_set1_epi16(E4M3_HALF_MASK)));
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
    if (dt == HB_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* U vectors of 16 weights at w[i..i + 16 U): e4m3 two vectors per widening (32 codes in one
 * 512-bit shift and mask), as AVX-512 has only two ports for 512-bit operations. */
TGT_AVX512 INLINE void loadu_avx512(const void *w, hb_dtype dt, int64_t i, const int U, __m512 *v) {
    if (dt == HB_FP8_E4M3 && U % 2 == 0) {
        for (int u = 0; u < U; u += 2) {
            const __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)((const uint8_t *)w + i + 16 * u)));
            const __m512i h = _mm512_and_si512(_mm512_slli_epi16(x, 7), _mm512_set1_epi16(E4M3_HALF_MASK));
            v[u] = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
            v[u + 1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
        }
    } else {
        for (int u = 0; u < U; u++) v[u] = load16_avx512(w, dt, i + 16 * u);
    }
}

/* e4m3_has_nan_avx2 with 64 bytes per step (AVX-512BW) */
TGT_AVX512 static int e4m3_has_nan_avx512(const uint8_t *p, int64_t n) {
    __m512i smax = _mm512_set1_epi8(-128), umax = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i v = _mm512_loadu_si512((const void *)(p + i));
        smax = _mm512_max_epi8(smax, v);
        umax = _mm512_max_epu8(umax, v);
    }
    int nan = (_mm512_cmpeq_epi8_mask(smax, _mm512_set1_epi8(0x7f)) | _mm512_cmpeq_epi8_mask(umax, _mm512_set1_epi8(-1))) != 0;
    for (; i < n; i++) nan |= (p[i] & 0x7f) == 0x7f;
    return nan;
}

/* As gemv_row_avx2 with 16 lanes; M x U <= 16 of the 32 zmm. */
TGT_AVX512 INLINE void gemv_row_avx512(const int M, const int U, const hb_dtype dt,
                                       const float *a, int64_t lda, const void *w, int64_t ldw,
                                       int64_t n, int64_t N, int64_t K, float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 * U <= K; k += 16 * U) {
        prefetch_ahead(w, (n * ldw + k) * esz, 16 * U * esz, N * ldw * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const __m512 wv = load16_avx512(w, dt, n * ldw + k + 16 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++)
                acc[m][u] = _mm512_fmadd_ps(_mm512_loadu_ps(a + m * lda + k + 16 * u), wv, acc[m][u]);
        }
    }
    for (; k + 16 <= K; k += 16) {
        const __m512 wv = load16_avx512(w, dt, n * ldw + k);
#pragma GCC unroll 8
        for (int m = 0; m < M; m++)
            acc[m][0] = _mm512_fmadd_ps(_mm512_loadu_ps(a + m * lda + k), wv, acc[m][0]);
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; m++) {
#pragma GCC unroll 4
        for (int u = 1; u < U; u++) acc[m][0] = _mm512_add_ps(acc[m][0], acc[m][u]);
        dots[m] = _mm512_reduce_add_ps(acc[m][0]);
    }
    for (; k < K; k++) { // K % 16 tail
        const float wk = load_elem(w, dt, n * ldw + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

TGT_AVX512 INLINE void gemv_rowm_avx512(const hb_dtype dt, int64_t M, const float *a,
                                        int64_t lda, const void *w, int64_t ldw, int64_t n,
                                        int64_t N, int64_t K, float *dots) {
    switch (M) {
    case 1: gemv_row_avx512(1, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 2: gemv_row_avx512(2, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 3: gemv_row_avx512(3, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 4: gemv_row_avx512(4, 4, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 5: gemv_row_avx512(5, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 6: gemv_row_avx512(6, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    case 7: gemv_row_avx512(7, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    default: gemv_row_avx512(8, 2, dt, a, lda, w, ldw, n, N, K, dots); break;
    }
}

TGT_AVX512 static void gemv_avx512(hb_dtype dt, float *out, int64_t ldo, const float *a,
                                   int64_t lda, const void *w, const float *bias, int64_t M,
                                   int64_t N, int64_t K, float beta) {
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        float dots[8];
        switch (dt) {
        case HB_F32: gemv_rowm_avx512(HB_F32, M, a, lda, w, K, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_avx512(HB_BF16, M, a, lda, w, K, n, N, K, dots); break;
        default: gemv_rowm_avx512(HB_F16, M, a, lda, w, K, n, N, K, dots); break;
        }
        for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);
    }
}

/* f16 -> f32 for a panel (F16C). */
TGT_AVX2 static void f16_to_f32_avx2(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = hb_f16_to_f32(src[i]);
}
#endif /* HB_X86 */

/* dst (n) = f32 of src (n) in dt: one panel of weight rows. bf16 is a shift the compiler
 * vectorises on its own; f16 needs F16C to be fast. */
static void widen_panel(hb_cpu_isa isa, float *dst, const void *src, hb_dtype dt, int64_t n) {
    if (dt == HB_BF16) {
        const uint16_t *s = src;
        uint32_t *d = (uint32_t *)(void *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)s[i] << 16;
        return;
    }
#ifdef HB_X86
    if (isa != HB_CPU_ISA_GENERIC) {
        f16_to_f32_avx2(dst, src, n);
        return;
    }
#else
    (void)isa;
#endif
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hb_f16_to_f32(s[i]);
}

/* out (M, N) = beta * out + bias, before a GEMM that accumulates with beta = 1. */
static void matmul_prologue(float *out, int64_t ldo, const float *bias, int64_t M, int64_t N,
                            float beta) {
#pragma omp parallel for schedule(static) if (M * N > PAR_MIN)
    for (int64_t m = 0; m < M; m++) {
        float *o = out + m * ldo;
        for (int64_t n = 0; n < N; n++) {
            float b = bias ? bias[n] : 0.0f;
            o[n] = beta == 0.0f ? b : beta * o[n] + b;
        }
    }
}

/* Rows of w per panel in the bf16/f16 prefill path: ~512 KiB of f32 so a panel stays in L2
 * next to OpenBLAS's packed A, and at least as many panels as threads. */
static int64_t panel_rows(int64_t N, int64_t K, int n_threads) {
    int64_t nb = ((int64_t)512 * 1024 / 4) / (K > 0 ? K : 1);
    nb = nb / 16 * 16;
    if (nb < 16) nb = 16;
    if (nb > 256) nb = 256;
    int64_t per_thread = (N + n_threads - 1) / n_threads;
    per_thread = (per_thread + 15) / 16 * 16;
    return nb < per_thread ? nb : per_thread;
}

/* f32/bf16/f16 weights (fp8: matmul_fp8 below). */
static hb_status matmul_plain(hb_backend *be, float *out, int64_t ldo, const void *a_in, int64_t lda,
                              hb_dtype adt, const void *w, hb_dtype wdt, const float *bias, int64_t M,
                              int64_t N, int64_t K, float beta) {
    hb_cpu_ctx *ctx = be->ctx;
    if (adt != HB_F32 && adt != wdt)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: matmul: activations in %s with %s weights (adt must be f32 or "
                           "the weight dtype)",
                           hb_dtype_name(adt), hb_dtype_name(wdt));
    if (M < 0 || N < 0 || K < 0 || lda < K || ldo < N)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: matmul: bad shape M=%lld N=%lld K=%lld lda=%lld ldo=%lld",
                           (long long)M, (long long)N, (long long)K, (long long)lda,
                           (long long)ldo);
    if (M == 0 || N == 0) return HB_OK;
    const float *a = a_in;
    if (adt != HB_F32 && K > 0) { // A in bf16/f16: widen it (exactly) once, rows K apart
        float *a32 = NULL;
        HB_TRY(hb_cpu_scratch(be, 1, (size_t)M * (size_t)K * sizeof(float), &a32));
        const int64_t esz = hb_dtype_size(adt);
#pragma omp parallel for schedule(static) if (M * K > PAR_MIN)
        for (int64_t m = 0; m < M; m++)
            widen_panel(ctx->isa, a32 + m * K, (const char *)a_in + m * lda * esz, adt, K);
        a = a32;
        lda = K;
    }
    if (K == 0) { // nothing to multiply: out = beta * out + bias
        matmul_prologue(out, ldo, bias, M, N, beta);
        return HB_OK;
    }

    if (M <= 8) { // decode: bandwidth-bound GEMV over the weight rows
        switch (ctx->isa) {
#ifdef HB_X86
        case HB_CPU_ISA_AVX512: gemv_avx512(wdt, out, ldo, a, lda, w, bias, M, N, K, beta); break;
        case HB_CPU_ISA_AVX2: gemv_avx2(wdt, out, ldo, a, lda, w, bias, M, N, K, beta); break;
#endif
        default: gemv_generic(wdt, out, ldo, a, lda, w, bias, M, N, K, beta); break;
        }
        return HB_OK;
    }

    // prefill: OpenBLAS takes int dimensions.
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldo > INT_MAX)
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED,
                           "cpu: matmul: a dimension exceeds OpenBLAS's 32-bit int");
    float beta_g = beta;
    if (bias) { // fold bias into out so that one GEMM with beta = 1 finishes the job
        matmul_prologue(out, ldo, bias, M, N, beta);
        beta_g = 1.0f;
    }
    if (wdt == HB_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a,
                    (int)lda, w, (int)K, beta_g, out, (int)ldo);
        return HB_OK;
    }

    // bf16/f16: each thread widens a panel of nb rows (nb, K) into its own f32 scratch and runs
    // a single-threaded sgemm on it (OpenBLAS's OpenMP build goes serial inside a parallel region).
    const int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
    const int64_t nb = panel_rows(N, K, nt), npanel = (N + nb - 1) / nb;
    float *scratch = NULL;
    HB_TRY(hb_cpu_scratch(be, 0, (size_t)nt * (size_t)nb * (size_t)K * sizeof(float), &scratch));
    const hb_cpu_isa isa = ctx->isa;
    const int64_t esz = hb_dtype_size(wdt);
#pragma omp parallel num_threads(nt)
    {
        float *panel = scratch + (int64_t)omp_get_thread_num() * nb * K; // (nb, K)
#pragma omp for schedule(static)
        for (int64_t p = 0; p < npanel; p++) {
            const int64_t n0 = p * nb, rows = N - n0 < nb ? N - n0 : nb;
            widen_panel(isa, panel, (const char *)w + n0 * K * esz, wdt, rows * K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)rows, (int)K, 1.0f,
                        a, (int)lda, panel, (int)K, beta_g, out + n0, (int)ldo);
        }
    }
    return HB_OK;
}

/* ---- fp8 matmul: the product of the dequantised operands, f32 accumulation ----
 *
 * A is dequantised once into f32 scratch (an f32 A is first quantised dynamically, as convert
 * would: per tensor, or in 1 x bk tiles for block-scaled weights). Decode (M <= 8) runs the
 * GEMV kernels on the fp8 codes of each row segment that shares a weight scale and scales the
 * segment's dot products; prefill dequantises panels of weight rows for sgemm. */

/* fp8 rows: dots[m] = sum over the bk-long segments kb of srow[kb] * sum_k a[m, k] w[n, k], the
 * segment sums kept in vector accumulators that are scaled into the row's total at the end of
 * each segment (no horizontal sum per segment). LANES, U: lanes per vector, vectors per step;
 * LOAD, FMA, ...: the ISA's (LOADU: U vectors at once). UNIT: what LOAD's values are multiplied by to be the codes' (E4M3_UNIT
 * for the AVX kernels' e4m3 loads: a power of two, so acc * UNIT is the exact sum of the
 * products of the codes); HASNAN(p, n): whether the row holds a NaN code LOAD does not widen to
 * a NaN (the row's dots are then NaN, as the products' sum would be). */
#define GEMVQ_ROW(SUFFIX, TGT, VT, LANES, ZERO, LOAD, LOADU, LOADA, FMA, ADD, MUL, SET1, HSUM, UNIT, HASNAN)     \
    TGT INLINE void gemvq_row_##SUFFIX(const int M, const int U, const hb_dtype dt, const float *a,   \
                                       int64_t lda, const uint8_t *w, int64_t n, int64_t N, int64_t K, \
                                       int64_t bk, const float *srow, float *dots) {                 \
        VT tot[8], acc[8][4];                                                                        \
        const VT unit = SET1(UNIT(dt));                                                              \
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) tot[m] = ZERO;                            \
        float tail[8] = {0};                                                                         \
        for (int64_t k0 = 0, kb = 0; k0 < K; k0 += bk, kb++) {                                       \
            const int64_t k1 = k0 + bk < K ? k0 + bk : K;                                            \
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)                                       \
                _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) acc[m][u] = ZERO;                 \
            int64_t k = k0;                                                                          \
            for (; k + LANES * U <= k1; k += LANES * U) {                                            \
                prefetch_ahead(w, n * K + k, LANES * U, N * K);                                      \
                VT wv[4];                                                                            \
                LOADU(w, dt, n * K + k, U, wv);                                                      \
                _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) {                                 \
                    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)                               \
                        acc[m][u] = FMA(LOADA(a + m * lda + k + LANES * u), wv[u], acc[m][u]);        \
                }                                                                                    \
            }                                                                                        \
            for (; k + LANES <= k1; k += LANES) {                                                    \
                const VT wv = LOAD(w, dt, n * K + k);                                                \
                _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)                                   \
                    acc[m][0] = FMA(LOADA(a + m * lda + k), wv, acc[m][0]);                          \
            }                                                                                        \
            const VT sv = SET1(srow[kb]);                                                            \
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {                                     \
                _Pragma("GCC unroll 4") for (int u = 1; u < U; u++) acc[m][0] = ADD(acc[m][0], acc[m][u]); \
                tot[m] = FMA(MUL(acc[m][0], unit), sv, tot[m]);                                      \
            }                                                                                        \
            for (; k < k1; k++) { /* segment tail (K % LANES) */                                    \
                const float wk = load_elem(w, dt, n * K + k) * srow[kb];                                \
                for (int m = 0; m < M; m++) tail[m] += a[m * lda + k] * wk;                          \
            }                                                                                        \
        }                                                                                            \
        const int nan = HASNAN(dt, w + n * K, K);                                                     \
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) dots[m] = nan ? NAN : HSUM(tot[m]) + tail[m]; \
    }

#define V4_ZERO ((v4f){0})
#define V4_LOAD(w, dt, i) load4_generic(w, dt, i)
#define V4_FMA(x, y, z) ((x) * (y) + (z))
#define V4_ADD(x, y) ((x) + (y))
#define V4_LOADU(w, dt, i, U, v) for (int u_ = 0; u_ < (U); u_++) (v)[u_] = load4_generic(w, dt, (i) + 4 * u_)
#define V4_MUL(x, y) ((x) * (y))
#define V4_SET1(x) ((v4f){(x), (x), (x), (x)})
#define V4_HSUM(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))
#define UNIT_ONE(dt) 1.0f
#define NO_NAN_CODES(dt, p, n) 0 /* load4_generic widens NaN codes to NaNs */
GEMVQ_ROW(generic, , v4f, 4, V4_ZERO, V4_LOAD, V4_LOADU, loadu4, V4_FMA, V4_ADD, V4_MUL, V4_SET1, V4_HSUM, UNIT_ONE,
          NO_NAN_CODES)
#ifdef HB_X86
#define AVX2_LOADU(w, dt, i, U, v) for (int u_ = 0; u_ < (U); u_++) (v)[u_] = load8_avx2(w, dt, (i) + 8 * u_)
#define UNIT_E4M3(dt) ((dt) == HB_FP8_E4M3 ? E4M3_UNIT : 1.0f)
#define NAN_E4M3_AVX2(dt, p, n) ((dt) == HB_FP8_E4M3 && e4m3_has_nan_avx2(p, n))
#define NAN_E4M3_AVX512(dt, p, n) ((dt) == HB_FP8_E4M3 && e4m3_has_nan_avx512(p, n))
GEMVQ_ROW(avx2, TGT_AVX2, __m256, 8, _mm256_setzero_ps(), load8_avx2, AVX2_LOADU, _mm256_loadu_ps, _mm256_fmadd_ps,
          _mm256_add_ps, _mm256_mul_ps, _mm256_set1_ps, hsum_avx2, UNIT_E4M3, NAN_E4M3_AVX2)
GEMVQ_ROW(avx512, TGT_AVX512, __m512, 16, _mm512_setzero_ps(), load16_avx512, loadu_avx512,
          _mm512_loadu_ps,
          _mm512_fmadd_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_reduce_add_ps, UNIT_E4M3,
          NAN_E4M3_AVX512)
#endif

/* One row of out for a runtime M and the fp8 type: instantiates each (M, U, dt) kernel. */
#define GEMVQ_ROWM(SUFFIX, TGT, U1, U2, U5)                                                        \
    TGT INLINE void gemvq_rowm_##SUFFIX(const hb_dtype dt, int64_t M, const float *a, int64_t lda,  \
                                        const uint8_t *w, int64_t n, int64_t N, int64_t K, int64_t bk, \
                                        const float *srow, float *dots) {                            \
        if (dt == HB_FP8_E4M3) {                                                                     \
            switch (M) {                                                                             \
            case 1: gemvq_row_##SUFFIX(1, U1, HB_FP8_E4M3, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 2: gemvq_row_##SUFFIX(2, U1, HB_FP8_E4M3, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 3: gemvq_row_##SUFFIX(3, U2, HB_FP8_E4M3, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 4: gemvq_row_##SUFFIX(4, U2, HB_FP8_E4M3, a, lda, w, n, N, K, bk, srow, dots); break; \
            default: gemvq_row_##SUFFIX(8, U5, HB_FP8_E4M3, a, lda, w, n, N, K, bk, srow, dots); break; \
            }                                                                                        \
        } else {                                                                                     \
            switch (M) {                                                                             \
            case 1: gemvq_row_##SUFFIX(1, U1, HB_FP8_E5M2, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 2: gemvq_row_##SUFFIX(2, U1, HB_FP8_E5M2, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 3: gemvq_row_##SUFFIX(3, U2, HB_FP8_E5M2, a, lda, w, n, N, K, bk, srow, dots); break; \
            case 4: gemvq_row_##SUFFIX(4, U2, HB_FP8_E5M2, a, lda, w, n, N, K, bk, srow, dots); break; \
            default: gemvq_row_##SUFFIX(8, U5, HB_FP8_E5M2, a, lda, w, n, N, K, bk, srow, dots); break; \
            }                                                                                        \
        }                                                                                            \
    }
GEMVQ_ROWM(generic, , 4, 2, 1)
#ifdef HB_X86
GEMVQ_ROWM(avx2, TGT_AVX2, 4, 2, 1)
GEMVQ_ROWM(avx512, TGT_AVX512, 4, 4, 2)
#endif

/* out (M <= 8, N) over fp8 weights: row n's segments share the scales ws[(n / bm) * sc + kb]. A
 * row of M > 4 runs the M = 8 kernel on 8 rows of a: a holds 8 rows (the caller pads). */
#define GEMV_Q_DRIVER(SUFFIX, TGT)                                                              \
    TGT static void gemvq_##SUFFIX(hb_dtype dt, float *out, int64_t ldo, const float *a,         \
                                   int64_t lda, const uint8_t *w, const float *ws, int64_t bm,   \
                                   int64_t bk, int64_t sc, const float *bias, int64_t M,         \
                                   int64_t N, int64_t K, float beta) {                           \
        _Pragma("omp parallel for schedule(static) if (N * K > PAR_MIN)")                        \
        for (int64_t n = 0; n < N; n++) {                                                        \
            float dots[8];                                                                       \
            gemvq_rowm_##SUFFIX(dt, M, a, lda, w, n, N, K, bk, ws + (n / bm) * sc, dots);        \
            for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);        \
        }                                                                                        \
    }
GEMV_Q_DRIVER(generic, )
#ifdef HB_X86
GEMV_Q_DRIVER(avx2, TGT_AVX2)
GEMV_Q_DRIVER(avx512, TGT_AVX512)
#endif

/* amax of n f32 values (a NaN makes it +inf, as quantise() does) */
static float amax_f32(const float *x, int64_t n) {
    float m = 0.0f;
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
        const float v = fabsf(x[i]);
        nan |= isnan(v);
        m = v > m ? v : m;
    }
    return nan ? INFINITY : m;
}

/* y (n) = e4m3(x / s) * s, scalar: quantise()'s code (the f32 quotient, RNE, saturating) and
 * its value; e5m2 likewise. */
static void qdq_scalar(const float *x, float *y, int64_t n, float s, hb_dtype dt) {
    if (dt == HB_FP8_E4M3)
        for (int64_t i = 0; i < n; i++) y[i] = hb_e4m3_to_f32(hb_f32_to_e4m3(x[i] / s)) * s;
    else
        for (int64_t i = 0; i < n; i++) y[i] = hb_e5m2_to_f32(hb_f32_to_e5m2(x[i] / s)) * s;
}

#ifdef HB_X86
/* amax_f32 and the e4m3 round trip of qdq_scalar, 16 lanes at a time, with the same results:
 * q = x / s (IEEE division); |q| >= 2^-6 is rounded to 3 mantissa bits with the integer
 * round-to-nearest-even of its bit pattern, |q| < 2^-6 (e4m3's subnormals, steps of 2^-9) to
 * a multiple of 2^-9 with roundscale (RNE); the magnitude saturates at 448 (inf included, and a
 * rounding up to 480), a NaN stays a NaN; y = sign(q) |code| * s. */
TGT_AVX512 static float amax_f32_avx512(const float *x, int64_t n) {
    __m512 m = _mm512_setzero_ps();
    __mmask16 nan = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(x + i));
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    float r = _mm512_reduce_max_ps(m);
    if (nan) return INFINITY;
    for (; i < n; i++) {
        const float v = fabsf(x[i]);
        if (isnan(v)) return INFINITY;
        r = v > r ? v : r;
    }
    return r;
}

TGT_AVX512 static void qdq_e4m3_avx512(const float *x, float *y, int64_t n, float s) {
    const __m512 sv = _mm512_set1_ps(s), sub = _mm512_set1_ps(0x1p-6f), max = _mm512_set1_ps(448.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 q = _mm512_div_ps(_mm512_loadu_ps(x + i), sv);
        const __m512 aq = _mm512_abs_ps(q);
        const __m512i ai = _mm512_castps_si512(aq);
        const __m512i rn = _mm512_and_si512(
            _mm512_add_epi32(ai, _mm512_add_epi32(_mm512_set1_epi32(0x7ffff),
                                                  _mm512_and_si512(_mm512_srli_epi32(ai, 20), _mm512_set1_epi32(1)))),
            _mm512_set1_epi32((int)0xfff00000u));
        __m512 r = _mm512_castsi512_ps(rn);
        const __m512 rs = _mm512_mul_ps(
            _mm512_roundscale_ps(_mm512_mul_ps(aq, _mm512_set1_ps(512.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
            _mm512_set1_ps(0x1p-9f));
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(aq, sub, _CMP_LT_OQ), rs);
        r = _mm512_min_ps(r, max);
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q), q);
        r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(q), sign)));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(r, sv));
    }
    qdq_scalar(x + i, y + i, n - i, s, HB_FP8_E4M3);
}
#endif

/* a32 (M, K) = dequantise(quantise(a)) for an fp8 matmul's f32 A, exactly as convert's
 * quantise() then dequantise() compute it (scale = amax / max of each group, code = the f32
 * quotient rounded, value = code * scale), in one pass per group without the generic
 * element access: groups are the whole A (per_tensor) or 1 x ka tiles of each row. */
static void quant_dequant_a(hb_cpu_isa isa, const float *a, int64_t lda, int64_t M, int64_t K, int64_t ka,
                            int per_tensor, hb_dtype dt, float *a32) {
    const float qmax = hb_dtype_fp8_max(dt);
#ifdef HB_X86
    const int v512 = isa == HB_CPU_ISA_AVX512;
#else
    const int v512 = 0;
    (void)isa;
#endif
#define AMAX(x, n) (v512 ? amax_f32_avx512(x, n) : amax_f32(x, n))
    float st = 0.0f;
    if (per_tensor) {
        float m = 0.0f;
        for (int64_t r = 0; r < M; r++) {
            const float v = AMAX(a + r * lda, K);
            m = v > m || isnan(v) ? v : m;
        }
        st = group_scale(m, qmax);
    }
#pragma omp parallel for schedule(static) if (M * K > PAR_MIN)
    for (int64_t r = 0; r < M; r++)
        for (int64_t k0 = 0; k0 < K; k0 += ka) {
            const int64_t n = K - k0 < ka ? K - k0 : ka;
            const float *x = a + r * lda + k0;
            float *y = a32 + r * K + k0;
            const float s = per_tensor ? st : group_scale(AMAX(x, n), qmax);
#ifdef HB_X86
            if (v512 && dt == HB_FP8_E4M3) {
                qdq_e4m3_avx512(x, y, n, s);
                continue;
            }
#endif
            qdq_scalar(x, y, n, s, dt);
        }
#undef AMAX
}

/* dst (n) = code * scale for n fp8 codes: a prefill weight panel (the GEMV kernels' loads).
 * e4m3: (code * 2^-8) * (s * 2^8) is code * s rounded once, as long as s * 2^8 is finite; a
 * run with a NaN code, or a scale that large, takes the element-wise path. */
#ifdef HB_X86
#define DEQUANT_E4M3_OK(src, n, s, HASNAN) (fabsf(s) <= 0x1p100f && !HASNAN(src, n))
TGT_AVX512 static void dequant_fp8_avx512(float *dst, const uint8_t *src, hb_dtype dt, int64_t n, float s) {
    int64_t i = 0;
    if (dt == HB_FP8_E4M3 && DEQUANT_E4M3_OK(src, n, s, e4m3_has_nan_avx512)) {
        const __m512 sv = _mm512_set1_ps(s * E4M3_UNIT);
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_mul_ps(load16_avx512(src, HB_FP8_E4M3, i), sv));
    } else if (dt == HB_FP8_E5M2) {
        const __m512 sv = _mm512_set1_ps(s);
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_mul_ps(load16_avx512(src, HB_FP8_E5M2, i), sv));
    }
    for (; i < n; i++) dst[i] = load_elem(src, dt, i) * s;
}
TGT_AVX2 static void dequant_fp8_avx2(float *dst, const uint8_t *src, hb_dtype dt, int64_t n, float s) {
    int64_t i = 0;
    if (dt == HB_FP8_E4M3 && DEQUANT_E4M3_OK(src, n, s, e4m3_has_nan_avx2)) {
        const __m256 sv = _mm256_set1_ps(s * E4M3_UNIT);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(load8_avx2(src, HB_FP8_E4M3, i), sv));
    } else if (dt == HB_FP8_E5M2) {
        const __m256 sv = _mm256_set1_ps(s);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(load8_avx2(src, HB_FP8_E5M2, i), sv));
    }
    for (; i < n; i++) dst[i] = load_elem(src, dt, i) * s;
}
#endif
static void dequant_fp8_run(hb_cpu_isa isa, float *dst, const uint8_t *src, hb_dtype dt, int64_t n, float s) {
    switch (isa) {
#ifdef HB_X86
    case HB_CPU_ISA_AVX512: dequant_fp8_avx512(dst, src, dt, n, s); return;
    case HB_CPU_ISA_AVX2: dequant_fp8_avx2(dst, src, dt, n, s); return;
#endif
    default:
        if (dt == HB_FP8_E4M3)
            for (int64_t i = 0; i < n; i++) dst[i] = hb_e4m3_to_f32(src[i]) * s;
        else
            for (int64_t i = 0; i < n; i++) dst[i] = hb_e5m2_to_f32(src[i]) * s;
    }
}

static hb_status matmul_fp8(hb_backend *be, const hb_matmul_args *x) {
    hb_cpu_ctx *ctx = be->ctx;
    const int64_t M = hb_tensor_rows(&x->a), K = hb_tensor_cols(&x->a), N = hb_tensor_rows(&x->w);
    const int64_t ldo = hb_tensor_ld(&x->out);
    float *out = x->out.data;
    const float *bias = x->bias.data;
    const hb_dtype wdt = x->w.dt;
    if (M == 0 || N == 0) return HB_OK;
    if (K == 0) {
        matmul_prologue(out, ldo, bias, M, N, x->beta);
        return HB_OK;
    }
    /* weight scales: one (none / tensor) or (ceil(N/bm), ceil(K/bk)) blocks */
    static const float one = 1.0f;
    int64_t bm = N, bk = K, sc = 1;
    const float *ws = x->w.q.kind == HB_QUANT_NONE ? &one : x->w.q.scale;
    if (x->w.q.kind == HB_QUANT_BLOCK) {
        bm = x->w.q.bm;
        bk = x->w.q.bk;
        hb_quant_nscales(&x->w, NULL, &sc);
    }
    /* A dequantised into f32 (M, K) */
    float *a32 = NULL; /* M = 5..7: 8 rows, the M = 8 GEMV kernel runs on zero rows */
    const int64_t Mp = M > 4 && M < 8 ? 8 : M;
    HB_TRY(hb_cpu_scratch(be, 1, (size_t)Mp * (size_t)K * sizeof(float), &a32));
    if (M < Mp) memset(a32 + M * K, 0, (size_t)((Mp - M) * K) * sizeof(float));
    if (x->a.dt == HB_F32) {
        /* the dynamic quantisation convert computes (quantise()), fused with its dequantisation:
         * groups of the whole A (w with tensor scales) or 1 x bk tiles (w with blocks) */
        const int64_t lda = hb_tensor_ld(&x->a);
        const int block = x->w.q.kind == HB_QUANT_BLOCK;
        quant_dequant_a(ctx->isa, x->a.data, lda, M, K, block ? bk : K, !block, wdt, a32);
    } else { // A in fp8 with its own scales, rows lda apart
        const int64_t lda = hb_tensor_ld(&x->a);
        int64_t abm, abk, asc;
        hb_quant_block(&x->a, &abm, &abk);
        hb_quant_nscales(&x->a, NULL, &asc);
        const float *as = x->a.q.kind == HB_QUANT_NONE ? &one : x->a.q.scale;
        if (x->a.q.kind == HB_QUANT_NONE) abm = M, abk = K, asc = 1;
#pragma omp parallel for schedule(static) if (M * K > PAR_MIN)
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++)
                a32[m * K + k] = load_elem(x->a.data, x->a.dt, m * lda + k) * as[(m / abm) * asc + k / abk];
    }

    if (M <= 8) {
        switch (ctx->isa) {
#ifdef HB_X86
        case HB_CPU_ISA_AVX512: gemvq_avx512(wdt, out, ldo, a32, K, x->w.data, ws, bm, bk, sc, bias, M, N, K, x->beta); break;
        case HB_CPU_ISA_AVX2: gemvq_avx2(wdt, out, ldo, a32, K, x->w.data, ws, bm, bk, sc, bias, M, N, K, x->beta); break;
#endif
        default: gemvq_generic(wdt, out, ldo, a32, K, x->w.data, ws, bm, bk, sc, bias, M, N, K, x->beta); break;
        }
        return HB_OK;
    }
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || ldo > INT_MAX)
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "cpu: matmul: a dimension exceeds OpenBLAS's 32-bit int");
    float beta_g = x->beta;
    if (bias) {
        matmul_prologue(out, ldo, bias, M, N, x->beta);
        beta_g = 1.0f;
    }
    /* panels of weight rows, dequantised (code * scale of its block) */
    const int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
    const int64_t nb = panel_rows(N, K, nt), npanel = (N + nb - 1) / nb;
    float *scratch = NULL;
    HB_TRY(hb_cpu_scratch(be, 0, (size_t)nt * (size_t)nb * (size_t)K * sizeof(float), &scratch));
    const uint8_t *w = x->w.data;
    const hb_cpu_isa isa = ctx->isa;
#pragma omp parallel num_threads(nt)
    {
        float *panel = scratch + (int64_t)omp_get_thread_num() * nb * K; // (nb, K)
#pragma omp for schedule(static)
        for (int64_t p = 0; p < npanel; p++) {
            const int64_t n0 = p * nb, rows = N - n0 < nb ? N - n0 : nb;
            for (int64_t r = 0; r < rows; r++) {
                const float *srow = ws + ((n0 + r) / bm) * sc;
                const uint8_t *wr = w + (n0 + r) * K;
                float *pr = panel + r * K;
                for (int64_t k0 = 0; k0 < K; k0 += bk) {
                    const int64_t k1 = k0 + bk < K ? k0 + bk : K;
                    const float sk = srow[k0 / bk];
                    dequant_fp8_run(isa, pr + k0, wr + k0, wdt, k1 - k0, sk);
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)rows, (int)K, 1.0f,
                        a32, (int)K, panel, (int)K, beta_g, out + n0, (int)ldo);
        }
    }
    return HB_OK;
}

hb_status hb_cpu_matmul(hb_backend *be, const hb_matmul_args *x) {
    if (hb_dtype_is_fp8(x->w.dt)) return matmul_fp8(be, x);
    return matmul_plain(be, x->out.data, hb_tensor_ld(&x->out), x->a.data, hb_tensor_ld(&x->a), x->a.dt,
                        x->w.data, x->w.dt, x->bias.data, hb_tensor_rows(&x->a), hb_tensor_rows(&x->w),
                        hb_tensor_cols(&x->a), x->beta);
}

/* ---- strided batched GEMM ---- */

hb_status hb_cpu_matmul_batched(hb_backend *be, const hb_matmul_batched_args *g) {
    const int64_t m = g->m, n = g->n, k = g->k;
    // row-major storage: A is (k, m) when transposed, else (m, k); B is (n, k) or (k, n)
    const int64_t cols_a = g->trans_a ? m : k, cols_b = g->trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0 || g->batch < 0 || g->lda < (cols_a > 1 ? cols_a : 1) ||
        g->ldb < (cols_b > 1 ? cols_b : 1) || g->ldc < (n > 1 ? n : 1))
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: matmul_batched: bad shape m=%lld n=%lld k=%lld lda=%lld "
                           "ldb=%lld ldc=%lld batch=%lld",
                           (long long)m, (long long)n, (long long)k, (long long)g->lda,
                           (long long)g->ldb, (long long)g->ldc, (long long)g->batch);
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || g->lda > INT_MAX || g->ldb > INT_MAX ||
        g->ldc > INT_MAX)
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED,
                           "cpu: matmul_batched: a dimension exceeds OpenBLAS's 32-bit int");
    if (m == 0 || n == 0 || g->batch == 0) return HB_OK;

    const enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    // Many small GEMMs (attention heads): one per thread. Few large ones: OpenBLAS's threads.
    const int per_item = m * n * k < (int64_t)1 << 21 && g->batch > 1;
#pragma omp parallel for schedule(static) if (per_item)
    for (int64_t i = 0; i < g->batch; i++) {
        float *c = g->c + i * g->stride_c;
        if (k == 0 || g->alpha == 0.0f) { // C = beta * C, with beta = 0 overwriting garbage
            for (int64_t r = 0; r < m; r++)
                for (int64_t j = 0; j < n; j++)
                    c[r * g->ldc + j] = g->beta == 0.0f ? 0.0f : g->beta * c[r * g->ldc + j];
            continue;
        }
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, g->alpha,
                    g->a + i * g->stride_a, (int)g->lda, g->b + i * g->stride_b, (int)g->ldb,
                    g->beta, c, (int)g->ldc);
    }
    return HB_OK;
}

/* ---- positions and attention ---- */

/* Rotates each head's pairs (i, i + D/2) of the B x T rows of x (row stride ldx) by the angle
 * (pos0 + t) * theta^(-2i/D), or by its opposite with sign -1 (the transpose: rope_backward).
 * The angles are formed in double: at pos ~ 8k an f32 angle would be off by ~1e-3 rad; the
 * table (T, D) holds their f32 cos, then their sin, shared by all batches and heads.
 * Returns 0 when the table cannot be allocated. */
int hb_cpu_rope_rotate(float *x, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D,
                       int64_t pos0, float theta, hb_rope_scaling sc, float sign) {
    const int64_t half = D / 2;
    float *tab = malloc((size_t)(T * D) * sizeof(float));
    if (!tab) return 0;
#pragma omp parallel for schedule(static) if (T * half > 4096)
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            double freq = hb_rope_freq(i, D, (double)theta, sc);
            double ang = (double)(pos0 + t) * freq;
            tab[t * D + i] = (float)cos(ang) * hb_rope_mag(sc);
            tab[t * D + half + i] = sign * ((float)sin(ang) * hb_rope_mag(sc));
        }
#pragma omp parallel for schedule(static) if (B * T * H * D > PAR_MIN)
    for (int64_t row = 0; row < B * T; row++) {
        const float *cs = tab + (row % T) * D, *sn = cs + half;
        for (int64_t h = 0; h < H; h++) {
            float *v = x + row * ldx + h * D; // (D): pairs (i, i + D/2)
            for (int64_t i = 0; i < half; i++) {
                float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * cs[i] - x1 * sn[i];
                v[i + half] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
    free(tab);
    return 1;
}

hb_status hb_cpu_rope(hb_backend *be, const hb_rope_args *a) {
    float *x = a->x.data;
    const int64_t ldx = hb_tensor_ld(&a->x), B = a->B, T = a->T, pos0 = a->pos0, H = a->H;
    const int64_t D = hb_tensor_cols(&a->x) / (H > 0 ? H : 1);
    const float theta = a->theta;
    if (D <= 0 || D % 2 != 0 || ldx < H * D || !(theta > 0.0f) || pos0 < 0)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: rope: need even D > 0, ldx >= H*D, theta > 0, pos0 >= 0 "
                           "(D=%lld H=%lld ldx=%lld theta=%g pos0=%lld)",
                           (long long)D, (long long)H, (long long)ldx, (double)theta,
                           (long long)pos0);
    if (B <= 0 || T <= 0 || H <= 0) return HB_OK;
    if (a->pos) { /* per-row positions: each row's angles as the table computes them */
        const int32_t *pos = a->pos;
        const int64_t half = D / 2;
        for (int64_t r = 0; r < B * T; r++)
            if (pos[r] < 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: rope: pos[%lld] = %d < 0", (long long)r, pos[r]);
        double *freq = malloc((size_t)half * sizeof *freq);
        if (!freq) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: rope: cannot allocate the frequencies");
        for (int64_t i = 0; i < half; i++) freq[i] = hb_rope_freq(i, D, (double)theta, a->scaling);
        const float mag = hb_rope_mag(a->scaling);
#pragma omp parallel for schedule(static) if (B * T * H * D > PAR_MIN)
        for (int64_t row = 0; row < B * T; row++)
            for (int64_t i = 0; i < half; i++) {
                const double ang = (double)pos[row] * freq[i];
                const float cs = (float)cos(ang) * mag, sn = (float)sin(ang) * mag;
                for (int64_t h = 0; h < H; h++) {
                    float *v = x + row * ldx + h * D;
                    const float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cs - x1 * sn;
                    v[i + half] = x0 * sn + x1 * cs;
                }
            }
        free(freq);
        return HB_OK;
    }
    return hb_cpu_rope_rotate(x, ldx, B, T, H, D, pos0, theta, a->scaling, 1.0f)
               ? HB_OK
               : hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: rope: cannot allocate the table");
}

hb_status hb_cpu_kv_store(hb_backend *be, const hb_kv_store_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, S = a->k_cache.ne[1];
    const int32_t *table = a->block_table, *seq = a->seq, *pos = a->pos;
    const int64_t nblk = a->k_cache.ne[0], mb = a->max_blocks;
    if (table) /* paged: every row's block and slot in range */
        for (int64_t r = 0; r < B * T; r++) {
            const int64_t blk = pos[r] >= 0 && seq[r] >= 0 && pos[r] / S < mb ? table[seq[r] * mb + pos[r] / S] : -1;
            if (blk < 0 || blk >= nblk)
                return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: kv_store: row %lld (sequence %d, position %d) has no block "
                                   "of the %lld", (long long)r, seq[r], pos[r], (long long)nblk);
        }
    const int64_t w = a->k_cache.ne[2] * a->k_cache.ne[3];
    const int64_t ldk = hb_tensor_ld(&a->k), ldv = hb_tensor_ld(&a->v);
    const float *k = a->k.data, *v = a->v.data;
    void *k_cache = a->k_cache.data, *v_cache = a->v_cache.data;
    /* fp8: codes of x / scale (static per-tensor scales) */
    const float sk = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale[0] : 1.0f;
    const float sv = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale[0] : 1.0f;
    // (B*T, ld) rows -> caches (B, S, Hkv, D) at position pos0 + t
#pragma omp parallel for schedule(static) if (B * T * w > PAR_MIN)
    for (int64_t row = 0; row < B * T; row++) {
        const int64_t b = row / T, t = row % T;
        const int64_t dst = table ? ((int64_t)table[seq[row] * mb + pos[row] / S] * S + pos[row] % S) * w
                                  : (b * S + pos0 + t) * w;
        const float *ks = k + row * ldk, *vs = v + row * ldv;
        if (kvt == HB_F32) {
            memcpy((float *)k_cache + dst, ks, (size_t)w * sizeof(float));
            memcpy((float *)v_cache + dst, vs, (size_t)w * sizeof(float));
        } else if (hb_dtype_is_fp8(kvt)) {
            for (int64_t i = 0; i < w; i++) {
                store_elem(k_cache, kvt, dst + i, ks[i] / sk);
                store_elem(v_cache, kvt, dst + i, vs[i] / sv);
            }
        } else {
            uint16_t *kd = (uint16_t *)k_cache + dst, *vd = (uint16_t *)v_cache + dst;
            for (int64_t i = 0; i < w; i++) {
                kd[i] = kvt == HB_BF16 ? hb_f32_to_bf16(ks[i]) : hb_f32_to_f16(ks[i]);
                vd[i] = kvt == HB_BF16 ? hb_f32_to_bf16(vs[i]) : hb_f32_to_f16(vs[i]);
            }
        }
    }
    return HB_OK;
}

hb_status hb_cpu_attention(hb_backend *be, const hb_attention_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, S = a->k_cache.ne[1];
    const int64_t Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3], Hq = hb_tensor_cols(&a->q) / D;
    const int64_t ldq = hb_tensor_ld(&a->q), ldo = hb_tensor_ld(&a->out);
    const float *q = a->q.data;
    float *out = a->out.data;
    const void *k_cache = a->k_cache.data, *v_cache = a->v_cache.data;
    /* fp8: scales applied to the f32 sums */
    const float sk = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale[0] : 1.0f;
    const float sv = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale[0] : 1.0f;
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0 || D <= 0 || pos0 < 0 || pos0 + T > S ||
        ldq < Hq * D || ldo < Hq * D)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: attention: bad shape Hq=%lld Hkv=%lld D=%lld pos0=%lld T=%lld "
                           "S=%lld ldq=%lld ldo=%lld",
                           (long long)Hq, (long long)Hkv, (long long)D, (long long)pos0,
                           (long long)T, (long long)S, (long long)ldq, (long long)ldo);
    if (B <= 0 || T <= 0) return HB_OK;
    const int64_t group = Hq / Hkv, kvw = Hkv * D;
    const float scale = (float)(1.0 / sqrt((double)D));
    int nomem = 0;
#pragma omp parallel
    {
        // scores of one query (L), then its q rounded to kvt (D)
        float *p = malloc((size_t)(pos0 + T + D) * sizeof(float));
        if (!p) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for collapse(3) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < Hq; h++) {
                    if (!p) continue;
                    const int64_t L = pos0 + t + 1; // causal: keys 0..pos0+t
                    const float *qv = q + (b * T + t) * ldq + h * D; // (D)
                    if (kvt != HB_F32) { // the product's operands in kvt
                        float *qr = p + pos0 + T;
                        for (int64_t d = 0; d < D; d++) qr[d] = round_to(kvt, qv[d]);
                        qv = qr;
                    }
                    // cache (B, S, Hkv, D): element offset of key j is kb + j * kvw
                    const int64_t kb = b * S * kvw + (h / group) * D;
                    float mx = -INFINITY;
                    for (int64_t j = 0; j < L; j++) {
                        const float s = kv_dot(qv, k_cache, kvt, kb + j * kvw, D) * sk * scale;
                        p[j] = s;
                        if (s > mx) mx = s;
                    }
                    float sum = 0.0f;
                    for (int64_t j = 0; j < L; j++) {
                        p[j] = expf(p[j] - mx);
                        sum += p[j];
                    }
                    const float inv = 1.0f / sum;
                    float *o = out + (b * T + t) * ldo + h * D; // (D)
                    for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                    if (kvt == HB_F32) {
                        for (int64_t j = 0; j < L; j++) kv_axpy(o, p[j] * inv, v_cache, kvt, kb + j * kvw, D);
                    } else { // p rounded to kvt (relative to the max), normalised at the end
                        for (int64_t j = 0; j < L; j++)
                            kv_axpy(o, round_to(kvt, p[j]), v_cache, kvt, kb + j * kvw, D);
                        for (int64_t d = 0; d < D; d++) o[d] *= sv * inv;
                    }
                }
        free(p);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: attention: cannot allocate scores");
    return HB_OK;
}

/* ---- element-wise ---- */

hb_status hb_cpu_swiglu(hb_backend *be, const hb_swiglu_args *a) {
    (void)be;
    float *out = a->out.data;
    const float *in = a->in.data;
    const int64_t N = hb_tensor_rows(&a->out), F = hb_tensor_cols(&a->out);
    // out (N, F) = silu(in[:, :F]) * in[:, F:], in (N, 2F)
#pragma omp parallel for schedule(static) if (N * F > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * 2 * F, *g = x + F;
        float *o = out + r * F;
        for (int64_t f = 0; f < F; f++) o[f] = x[f] / (1.0f + expf(-x[f])) * g[f];
    }
    return HB_OK;
}

hb_status hb_cpu_gelu(hb_backend *be, const hb_gelu_args *a) {
    (void)be;
    float *out = a->out.data;
    const float *in = a->in.data;
    const int64_t n = hb_tensor_numel(&a->out);
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
    }
    return HB_OK;
}

hb_status hb_cpu_add(hb_backend *be, const hb_add_args *x) {
    (void)be;
    float *out = x->out.data;
    const float *a = x->a.data, *b = x->b.data, s = x->s;
    const int64_t n = hb_tensor_numel(&x->out);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + s * b[i];
    return HB_OK;
}

/* ---- row-wise reductions and sampling ---- */

hb_status hb_cpu_softmax(hb_backend *be, const hb_softmax_args *a) {
    (void)be;
    float *out = a->out.data;
    const float *in = a->in.data;
    const int64_t rows = hb_tensor_rows(&a->in), cols = hb_tensor_cols(&a->in);
    // (rows, cols): subtract the row max so that exp never overflows.
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *o = out + r * cols;
        float mx = -INFINITY;
        for (int64_t c = 0; c < cols; c++) mx = x[c] > mx ? x[c] : mx;
        double sum = 0.0;
        for (int64_t c = 0; c < cols; c++) {
            o[c] = expf(x[c] - mx);
            sum += o[c];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t c = 0; c < cols; c++) o[c] *= inv;
    }
    return HB_OK;
}

/* Index of the max of x (cols); the lowest index on ties. A row with a NaN gives the index of
 * its first NaN (a NaN is "larger" than everything, so a broken row is visible, not hidden). */
static int64_t row_argmax(const float *x, int64_t cols) {
    int64_t best = 0;
    float bv = x[0];
    if (isnan(bv)) return 0;
    for (int64_t c = 1; c < cols; c++) {
        if (isnan(x[c])) return c;
        if (x[c] > bv) {
            bv = x[c];
            best = c;
        }
    }
    return best;
}

static hb_status cpu_argmax(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
                           int64_t cols) {
    if (cols <= 0 || cols > INT32_MAX || ld < cols)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: argmax: cols %lld, ld %lld", (long long)cols,
                           (long long)ld);
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) out[r] = (int32_t)row_argmax(in + r * ld, cols);
    return HB_OK;
}

/* Temperature sampling by inverse CDF, in double:
 *   w_i = exp((x_i - max) / T), target = u * sum(w), answer = first i with w_0 + .. + w_i > target
 * with u = hb_rng_unit(seed, step * rows + r). The weights are recomputed in the same order in
 * both passes, so the running sum ends exactly at sum(w) > target. Rows whose max is NaN or
 * +-inf have no distribution and fall back to argmax. */
hb_status hb_cpu_argmax(hb_backend *be, const hb_argmax_args *a) {
    return cpu_argmax(be, a->out, a->in.data, hb_tensor_ld(&a->in), hb_tensor_rows(&a->in),
                      hb_tensor_cols(&a->in));
}

hb_status hb_cpu_sample(hb_backend *be, const hb_sample_args *a) {
    int32_t *out = a->out;
    const float *logits = a->logits.data, temperature = a->temperature;
    const int64_t ld = hb_tensor_ld(&a->logits), rows = hb_tensor_rows(&a->logits);
    const int64_t cols = hb_tensor_cols(&a->logits);
    const uint64_t seed = a->seed, step = a->step;
    if (cols <= 0 || cols > INT32_MAX || ld < cols)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: sample: cols %lld, ld %lld", (long long)cols,
                           (long long)ld);
    if (!(temperature > 0.0f)) return cpu_argmax(be, out, logits, ld, rows, cols);
    const double inv_t = 1.0 / (double)temperature;
#pragma omp parallel for schedule(static) if (rows * cols > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * ld;
        const int64_t am = row_argmax(x, cols);
        const double mx = x[am];
        if (isnan(mx) || isinf(mx)) {
            out[r] = (int32_t)am;
            continue;
        }
        double total = 0.0;
        for (int64_t c = 0; c < cols; c++) total += exp(((double)x[c] - mx) * inv_t);
        const double target =
            (double)hb_rng_unit(seed, step * (uint64_t)rows + (uint64_t)r) * total;
        double cum = 0.0;
        int64_t pick = am;
        for (int64_t c = 0; c < cols; c++) {
            cum += exp(((double)x[c] - mx) * inv_t);
            if (cum > target) {
                pick = c;
                break;
            }
        }
        out[r] = (int32_t)pick;
    }
    return HB_OK;
}
