/* cpu_ops.c - the ops of the CPU reference backend: the specification every backend matches.
 *
 * Element-wise and row-wise ops are plain loops parallelised with OpenMP. matmul is the hot
 * path of decode and prefill:
 *   M <= 8 (decode): a hand-written GEMV-style kernel that streams every weight row once and
 *     computes all M dot products from it, so it runs at memory bandwidth. bf16/f16 weights are
 *     widened to f32 in registers (bf16 -> f32 is a 16-bit shift), so they cost half the bytes.
 *   M > 8 (prefill): OpenBLAS sgemm; bf16/f16 weights are converted a panel of rows at a time
 *     into per-thread f32 scratch that stays in L2, never as a whole matrix.
 * The GEMV kernels exist for AVX-512F, AVX2+FMA+F16C and portable C; the binary is built for
 * plain x86-64 and picks one at run time (hb_cpu_ctx.isa). */
#include "cpu_backend.h"

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

/* ---- scalar element access in a storage dtype ---- */

static inline float load_elem(const void *p, hb_dtype dt, int64_t i) {
    switch (dt) {
    case HB_F32: return ((const float *)p)[i];
    case HB_BF16: return hb_bf16_to_f32(((const uint16_t *)p)[i]);
    case HB_F16: return hb_f16_to_f32(((const uint16_t *)p)[i]);
    default: return NAN;
    }
}

static inline void store_elem(void *p, hb_dtype dt, int64_t i, float v) {
    switch (dt) {
    case HB_F32: ((float *)p)[i] = v; break;
    case HB_BF16: ((uint16_t *)p)[i] = hb_f32_to_bf16(v); break;
    case HB_F16: ((uint16_t *)p)[i] = hb_f32_to_f16(v); break;
    default: break;
    }
}

static int dtype_ok(hb_dtype dt) {
    return dt == HB_F32 || dt == HB_BF16 || dt == HB_F16;
}

static hb_status dtype_unsupported(hb_backend *be, const char *op, hb_dtype dt) {
    return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "cpu: op '%s' does not support dtype %s", op,
                       hb_dtype_name(dt));
}

/* ---- generators and casts ---- */

hb_status hb_cpu_fill_random(hb_backend *be, void *dst, hb_dtype dt, int64_t n, uint64_t seed,
                             float scale, float offset) {
    if (!dtype_ok(dt)) return dtype_unsupported(be, "fill_random", dt);
    if (n < 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: fill_random: n = %lld", (long long)n);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        store_elem(dst, dt, i, hb_rng_value(seed, (uint64_t)i, scale, offset));
    return HB_OK;
}

hb_status hb_cpu_fill_tokens(hb_backend *be, int32_t *dst, int64_t n, uint64_t seed,
                             int64_t vocab) {
    if (vocab <= 0 || vocab > INT32_MAX)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: fill_tokens: vocab %lld out of range",
                           (long long)vocab);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        dst[i] = (int32_t)(hb_rng_u64(seed, (uint64_t)i) % (uint64_t)vocab);
    return HB_OK;
}

hb_status hb_cpu_convert(hb_backend *be, void *dst, hb_dtype dst_dt, const void *src,
                         hb_dtype src_dt, int64_t n) {
    if (!dtype_ok(dst_dt)) return dtype_unsupported(be, "convert", dst_dt);
    if (!dtype_ok(src_dt)) return dtype_unsupported(be, "convert", src_dt);
    if (n <= 0) return HB_OK;
    if (dst_dt == src_dt) {
        memmove(dst, src, (size_t)n * (size_t)hb_dtype_size(dst_dt));
        return HB_OK;
    }
    // Every f16 and bf16 value is exact in f32, so going through f32 rounds once.
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        store_elem(dst, dst_dt, i, load_elem(src, src_dt, i));
    return HB_OK;
}

/* ---- embedding and norms ---- */

hb_status hb_cpu_embedding(hb_backend *be, float *out, const int32_t *tokens, const void *wte,
                           const void *wpe, hb_dtype wdt, int64_t B, int64_t T, int64_t pos0,
                           int64_t C) {
    if (!dtype_ok(wdt)) return dtype_unsupported(be, "embedding", wdt);
    const int64_t N = B * T;
    for (int64_t i = 0; i < N; i++)
        if (tokens[i] < 0)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: embedding: token %d at %lld is negative",
                               tokens[i], (long long)i);
    // out (B*T, C) = wte (V, C)[token] + wpe (maxT, C)[pos0 + t]
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const int64_t row = (int64_t)tokens[i] * C, prow = (pos0 + i % T) * C;
        float *o = out + i * C;
        for (int64_t c = 0; c < C; c++) {
            float v = load_elem(wte, wdt, row + c);
            if (wpe) v += load_elem(wpe, wdt, prow + c);
            o[c] = v;
        }
    }
    return HB_OK;
}

hb_status hb_cpu_rmsnorm(hb_backend *be, float *out, const float *in, const float *w, int64_t N,
                         int64_t C, float eps) {
    if (C <= 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: rmsnorm: C = %lld", (long long)C);
    // out (N, C) = in / sqrt(mean(in^2) + eps) * w; the mean in double (C can be 8k+).
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * C;
        float *o = out + r * C;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = 0; c < C; c++) ss += (double)x[c] * x[c];
        const float inv = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        for (int64_t c = 0; c < C; c++) o[c] = x[c] * inv * (w ? w[c] : 1.0f);
    }
    return HB_OK;
}

hb_status hb_cpu_layernorm(hb_backend *be, float *out, const float *in, const float *w,
                           const float *b, int64_t N, int64_t C, float eps) {
    if (C <= 0) return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: layernorm: C = %lld", (long long)C);
    // out (N, C) = (in - mean) / sqrt(var + eps) * w + b, biased variance, two passes in double.
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * C;
        float *o = out + r * C;
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

/* ---- GEMV kernels (M <= 8): portable, AVX2 + FMA (+ F16C for f16), AVX-512F ----
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
    } else { // no portable half-precision instructions
        for (int j = 0; j < 4; j++) r[j] = hb_f16_to_f32(((const uint16_t *)w)[i + j]);
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
                             int64_t lda, const void *w, int64_t n, int64_t N, int64_t K,
                             float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    v4f acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = (v4f){0};
    int64_t k = 0;
    for (; k + 4 * U <= K; k += 4 * U) {
        prefetch_ahead(w, (n * K + k) * esz, 4 * U * esz, N * K * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const v4f wv = load4_generic(w, dt, n * K + k + 4 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++) acc[m][u] += loadu4(a + m * lda + k + 4 * u) * wv;
        }
    }
    for (; k + 4 <= K; k += 4) {
        const v4f wv = load4_generic(w, dt, n * K + k);
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
        const float wk = load_elem(w, dt, n * K + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

INLINE void gemv_rowm_generic(const hb_dtype dt, int64_t M, const float *a, int64_t lda,
                              const void *w, int64_t n, int64_t N, int64_t K, float *dots) {
    switch (M) {
    case 1: gemv_row_generic(1, 4, dt, a, lda, w, n, N, K, dots); break;
    case 2: gemv_row_generic(2, 4, dt, a, lda, w, n, N, K, dots); break;
    case 3: gemv_row_generic(3, 2, dt, a, lda, w, n, N, K, dots); break;
    case 4: gemv_row_generic(4, 2, dt, a, lda, w, n, N, K, dots); break;
    case 5: gemv_row_generic(5, 1, dt, a, lda, w, n, N, K, dots); break;
    case 6: gemv_row_generic(6, 1, dt, a, lda, w, n, N, K, dots); break;
    case 7: gemv_row_generic(7, 1, dt, a, lda, w, n, N, K, dots); break;
    default: gemv_row_generic(8, 1, dt, a, lda, w, n, N, K, dots); break;
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
        case HB_F32: gemv_rowm_generic(HB_F32, M, a, lda, w, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_generic(HB_BF16, M, a, lda, w, n, N, K, dots); break;
        default: gemv_rowm_generic(HB_F16, M, a, lda, w, n, N, K, dots); break;
        }
        for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);
    }
}

#ifdef HB_X86
#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx512f")))

/* 8 weights at w[i..i+8) widened to f32. */
TGT_AVX2 INLINE __m256 load8_avx2(const void *w, hb_dtype dt, int64_t i) {
    if (dt == HB_F32) return _mm256_loadu_ps((const float *)w + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (dt == HB_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
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
                                   int64_t lda, const void *w, int64_t n, int64_t N, int64_t K,
                                   float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    __m256 acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 * U <= K; k += 8 * U) {
        prefetch_ahead(w, (n * K + k) * esz, 8 * U * esz, N * K * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const __m256 wv = load8_avx2(w, dt, n * K + k + 8 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++)
                acc[m][u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + m * lda + k + 8 * u), wv, acc[m][u]);
        }
    }
    for (; k + 8 <= K; k += 8) { // fewer than U vectors left
        const __m256 wv = load8_avx2(w, dt, n * K + k);
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
        const float wk = load_elem(w, dt, n * K + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

/* One row for a runtime M: the switch instantiates each (M, U) kernel. */
TGT_AVX2 INLINE void gemv_rowm_avx2(const hb_dtype dt, int64_t M, const float *a, int64_t lda,
                                    const void *w, int64_t n, int64_t N, int64_t K, float *dots) {
    switch (M) {
    case 1: gemv_row_avx2(1, 4, dt, a, lda, w, n, N, K, dots); break;
    case 2: gemv_row_avx2(2, 4, dt, a, lda, w, n, N, K, dots); break;
    case 3: gemv_row_avx2(3, 2, dt, a, lda, w, n, N, K, dots); break;
    case 4: gemv_row_avx2(4, 2, dt, a, lda, w, n, N, K, dots); break;
    case 5: gemv_row_avx2(5, 1, dt, a, lda, w, n, N, K, dots); break;
    case 6: gemv_row_avx2(6, 1, dt, a, lda, w, n, N, K, dots); break;
    case 7: gemv_row_avx2(7, 1, dt, a, lda, w, n, N, K, dots); break;
    default: gemv_row_avx2(8, 1, dt, a, lda, w, n, N, K, dots); break;
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
        case HB_F32: gemv_rowm_avx2(HB_F32, M, a, lda, w, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_avx2(HB_BF16, M, a, lda, w, n, N, K, dots); break;
        default: gemv_rowm_avx2(HB_F16, M, a, lda, w, n, N, K, dots); break;
        }
        for (int64_t m = 0; m < M; m++) store_out(out + m * ldo + n, dots[m], bias, n, beta);
    }
}

/* 16 weights at w[i..i+16) widened to f32. */
TGT_AVX512 INLINE __m512 load16_avx512(const void *w, hb_dtype dt, int64_t i) {
    if (dt == HB_F32) return _mm512_loadu_ps((const float *)w + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
    if (dt == HB_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* As gemv_row_avx2 with 16 lanes; M x U <= 16 of the 32 zmm. */
TGT_AVX512 INLINE void gemv_row_avx512(const int M, const int U, const hb_dtype dt,
                                       const float *a, int64_t lda, const void *w, int64_t n,
                                       int64_t N, int64_t K, float *dots) {
    const int esz = (int)hb_dtype_size(dt);
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int m = 0; m < M; m++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[m][u] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 * U <= K; k += 16 * U) {
        prefetch_ahead(w, (n * K + k) * esz, 16 * U * esz, N * K * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const __m512 wv = load16_avx512(w, dt, n * K + k + 16 * u);
#pragma GCC unroll 8
            for (int m = 0; m < M; m++)
                acc[m][u] = _mm512_fmadd_ps(_mm512_loadu_ps(a + m * lda + k + 16 * u), wv, acc[m][u]);
        }
    }
    for (; k + 16 <= K; k += 16) {
        const __m512 wv = load16_avx512(w, dt, n * K + k);
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
        const float wk = load_elem(w, dt, n * K + k);
        for (int m = 0; m < M; m++) dots[m] += a[m * lda + k] * wk;
    }
}

TGT_AVX512 INLINE void gemv_rowm_avx512(const hb_dtype dt, int64_t M, const float *a,
                                        int64_t lda, const void *w, int64_t n, int64_t N,
                                        int64_t K, float *dots) {
    switch (M) {
    case 1: gemv_row_avx512(1, 4, dt, a, lda, w, n, N, K, dots); break;
    case 2: gemv_row_avx512(2, 4, dt, a, lda, w, n, N, K, dots); break;
    case 3: gemv_row_avx512(3, 4, dt, a, lda, w, n, N, K, dots); break;
    case 4: gemv_row_avx512(4, 4, dt, a, lda, w, n, N, K, dots); break;
    case 5: gemv_row_avx512(5, 2, dt, a, lda, w, n, N, K, dots); break;
    case 6: gemv_row_avx512(6, 2, dt, a, lda, w, n, N, K, dots); break;
    case 7: gemv_row_avx512(7, 2, dt, a, lda, w, n, N, K, dots); break;
    default: gemv_row_avx512(8, 2, dt, a, lda, w, n, N, K, dots); break;
    }
}

TGT_AVX512 static void gemv_avx512(hb_dtype dt, float *out, int64_t ldo, const float *a,
                                   int64_t lda, const void *w, const float *bias, int64_t M,
                                   int64_t N, int64_t K, float beta) {
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        float dots[8];
        switch (dt) {
        case HB_F32: gemv_rowm_avx512(HB_F32, M, a, lda, w, n, N, K, dots); break;
        case HB_BF16: gemv_rowm_avx512(HB_BF16, M, a, lda, w, n, N, K, dots); break;
        default: gemv_rowm_avx512(HB_F16, M, a, lda, w, n, N, K, dots); break;
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

hb_status hb_cpu_matmul(hb_backend *be, float *out, int64_t ldo, const void *a_in, int64_t lda,
                        hb_dtype adt, const void *w, hb_dtype wdt, const float *bias, int64_t M,
                        int64_t N, int64_t K, float beta) {
    hb_cpu_ctx *ctx = be->ctx;
    if (!dtype_ok(wdt)) return dtype_unsupported(be, "matmul", wdt);
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

/* ---- strided batched GEMM ---- */

hb_status hb_cpu_matmul_batched(hb_backend *be, const hb_gemm_batched *g) {
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

hb_status hb_cpu_rope(hb_backend *be, float *x, int64_t ldx, int64_t B, int64_t T, int64_t pos0,
                      int64_t H, int64_t D, float theta) {
    if (D <= 0 || D % 2 != 0 || ldx < H * D || !(theta > 0.0f) || pos0 < 0)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: rope: need even D > 0, ldx >= H*D, theta > 0, pos0 >= 0 "
                           "(D=%lld H=%lld ldx=%lld theta=%g pos0=%lld)",
                           (long long)D, (long long)H, (long long)ldx, (double)theta,
                           (long long)pos0);
    if (B <= 0 || T <= 0 || H <= 0) return HB_OK;
    const int64_t half = D / 2;
    // table (T, D): cos of the D/2 angles, then their sin; shared by all batches and heads.
    // The angle pos * theta^(-2i/D) is
    // formed in double: at pos ~ 8k an f32 angle would be off by ~1e-3 rad.
    float *tab = malloc((size_t)(T * D) * sizeof(float));
    if (!tab) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: rope: cannot allocate the table");
#pragma omp parallel for schedule(static) if (T * half > 4096)
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            double freq = pow((double)theta, -2.0 * (double)i / (double)D);
            double ang = (double)(pos0 + t) * freq;
            tab[t * D + i] = (float)cos(ang);
            tab[t * D + half + i] = (float)sin(ang);
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
    return HB_OK;
}

static int kv_dtype_ok(hb_dtype t) { return t == HB_F32 || t == HB_BF16 || t == HB_F16; }

/* x rounded to kvt (bf16/f16: to nearest even), as f32 */
static inline float round_to(hb_dtype t, float x) {
    if (t == HB_BF16) return hb_bf16_to_f32(hb_f32_to_bf16(x));
    if (t == HB_F16) return hb_f16_to_f32(hb_f32_to_f16(x));
    return x;
}

hb_status hb_cpu_kv_store(hb_backend *be, void *k_cache, void *v_cache, hb_dtype kvt,
                          const float *k, const float *v, int64_t ld, int64_t B, int64_t T,
                          int64_t pos0, int64_t Hkv, int64_t D, int64_t S) {
    const int64_t w = Hkv * D;
    if (!kv_dtype_ok(kvt))
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "cpu: kv_store: KV cache dtype %s (f32, bf16, f16)",
                           hb_dtype_name(kvt));
    if (pos0 < 0 || pos0 + T > S || ld < w)
        return hb_cpu_fail(be, HB_ERR_INPUT,
                           "cpu: kv_store: positions %lld..%lld outside the cache (S=%lld) or "
                           "ld %lld < Hkv*D %lld",
                           (long long)pos0, (long long)(pos0 + T - 1), (long long)S,
                           (long long)ld, (long long)w);
    // (B*T, ld) rows -> caches (B, S, Hkv, D) at position pos0 + t
#pragma omp parallel for schedule(static) if (B * T * w > PAR_MIN)
    for (int64_t row = 0; row < B * T; row++) {
        const int64_t b = row / T, t = row % T, dst = (b * S + pos0 + t) * w;
        const float *ks = k + row * ld, *vs = v + row * ld;
        if (kvt == HB_F32) {
            memcpy((float *)k_cache + dst, ks, (size_t)w * sizeof(float));
            memcpy((float *)v_cache + dst, vs, (size_t)w * sizeof(float));
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

/* q . k[off .. off + D) with k in kvt */
static inline float kv_dot(const float *q, const void *k, hb_dtype t, int64_t off, int64_t D) {
    float s = 0.0f;
    if (t == HB_F32) {
        const float *kf = (const float *)k + off;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < D; d++) s += q[d] * kf[d];
    } else if (t == HB_BF16) {
        const uint16_t *kh = (const uint16_t *)k + off;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < D; d++) s += q[d] * hb_bf16_to_f32(kh[d]);
    } else {
        const uint16_t *kh = (const uint16_t *)k + off;
        for (int64_t d = 0; d < D; d++) s += q[d] * hb_f16_to_f32(kh[d]);
    }
    return s;
}

/* o += p * v[off .. off + D) with v in kvt */
static inline void kv_axpy(float *o, float p, const void *v, hb_dtype t, int64_t off, int64_t D) {
    if (t == HB_F32) {
        const float *vf = (const float *)v + off;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] += p * vf[d];
    } else if (t == HB_BF16) {
        const uint16_t *vh = (const uint16_t *)v + off;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] += p * hb_bf16_to_f32(vh[d]);
    } else {
        const uint16_t *vh = (const uint16_t *)v + off;
        for (int64_t d = 0; d < D; d++) o[d] += p * hb_f16_to_f32(vh[d]);
    }
}

hb_status hb_cpu_attention(hb_backend *be, float *out, int64_t ldo, const float *q, int64_t ldq,
                           const void *k_cache, const void *v_cache, hb_dtype kvt, int64_t B,
                           int64_t T, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t D,
                           int64_t S) {
    if (!kv_dtype_ok(kvt))
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "cpu: attention: KV cache dtype %s (f32, bf16, f16)",
                           hb_dtype_name(kvt));
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
                        const float s = kv_dot(qv, k_cache, kvt, kb + j * kvw, D) * scale;
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
                        for (int64_t d = 0; d < D; d++) o[d] *= inv;
                    }
                }
        free(p);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: attention: cannot allocate scores");
    return HB_OK;
}

/* ---- element-wise ---- */

hb_status hb_cpu_swiglu(hb_backend *be, float *out, const float *in, int64_t N, int64_t F) {
    (void)be;
    // out (N, F) = silu(in[:, :F]) * in[:, F:], in (N, 2F)
#pragma omp parallel for schedule(static) if (N * F > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * 2 * F, *g = x + F;
        float *o = out + r * F;
        for (int64_t f = 0; f < F; f++) o[f] = x[f] / (1.0f + expf(-x[f])) * g[f];
    }
    return HB_OK;
}

hb_status hb_cpu_gelu(hb_backend *be, float *out, const float *in, int64_t n) {
    (void)be;
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
    }
    return HB_OK;
}

hb_status hb_cpu_add(hb_backend *be, float *out, const float *a, const float *b, float s,
                     int64_t n) {
    (void)be;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + s * b[i];
    return HB_OK;
}

/* ---- row-wise reductions and sampling ---- */

hb_status hb_cpu_softmax(hb_backend *be, float *out, const float *in, int64_t rows,
                         int64_t cols) {
    (void)be;
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

hb_status hb_cpu_argmax(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
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
hb_status hb_cpu_sample(hb_backend *be, int32_t *out, const float *logits, int64_t ld,
                        int64_t rows, int64_t cols, float temperature, uint64_t seed,
                        uint64_t step) {
    if (cols <= 0 || cols > INT32_MAX || ld < cols)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: sample: cols %lld, ld %lld", (long long)cols,
                           (long long)ld);
    if (!(temperature > 0.0f)) return hb_cpu_argmax(be, out, logits, ld, rows, cols);
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
