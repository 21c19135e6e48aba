/* cpu_backend.h - private interface of the CPU reference backend (backends/cpu/).
 *
 * cpu_backend.c owns the device (info, memory, events, the ops table); cpu_ops.c holds the ops.
 * Only the registry and tests include this header; workloads see the ops table only. */
#ifndef HB_CPU_BACKEND_H
#define HB_CPU_BACKEND_H

#include <stddef.h>

#include "../backend.h" // defines: hb_backend, hb_backend_ops, hb_gemm_batched, hb_status

/* Instruction set of the hand-written matmul kernels. Chosen once at open from the running CPU
 * (the binary is built for plain x86-64); tests force each one to check all of them. */
typedef enum hb_cpu_isa {
    HB_CPU_ISA_GENERIC = 0, /* portable C */
    HB_CPU_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C */
    HB_CPU_ISA_AVX512 = 2,  /* AVX-512F */
} hb_cpu_isa;

/* Backend-private state (be->ctx). A backend instance is used by one host thread at a time,
 * like a GPU stream, so the scratch buffer needs no lock. */
typedef struct hb_cpu_ctx {
    hb_cpu_isa isa;
    int n_threads;
    float *scratch[2];      /* [0] f32 panels of converted weights (matmul on bf16/f16, M > 8);
                               [1] f32 copy of a bf16/f16 matmul's A */
    size_t scratch_bytes[2];
} hb_cpu_ctx;

/* ---- registry entry points ---- */
hb_status hb_cpu_open(int index, hb_backend **out, hb_err *err);
int hb_cpu_count(hb_err *err);

/* Forces the matmul kernel ISA; HB_ERR_UNSUPPORTED if this CPU cannot run it. */
hb_status hb_cpu_set_isa(hb_backend *be, hb_cpu_isa isa);
const char *hb_cpu_isa_name(hb_cpu_isa isa);
hb_cpu_isa hb_cpu_isa_detect(void);

/* Writes a message to be->err and returns code (the backend-side twin of hb_errf). */
hb_status hb_cpu_fail(hb_backend *be, hb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes sure ctx->scratch[slot] holds at least nbytes (64-byte aligned). */
hb_status hb_cpu_scratch(hb_backend *be, int slot, size_t nbytes, float **scratch);

/* ---- ops (cpu_ops.c); signatures are those of hb_backend_ops ---- */
hb_status hb_cpu_fill_random(hb_backend *be, void *dst, hb_dtype dt, int64_t n, uint64_t seed,
                             float scale, float offset);
hb_status hb_cpu_fill_tokens(hb_backend *be, int32_t *dst, int64_t n, uint64_t seed, int64_t vocab);
hb_status hb_cpu_convert(hb_backend *be, void *dst, hb_dtype dst_dt, const void *src,
                         hb_dtype src_dt, int64_t n);
hb_status hb_cpu_embedding(hb_backend *be, float *out, const int32_t *tokens, const void *wte,
                           const void *wpe, hb_dtype wdt, int64_t B, int64_t T, int64_t pos0,
                           int64_t C);
hb_status hb_cpu_rmsnorm(hb_backend *be, float *out, const float *in, const float *w, int64_t N,
                         int64_t C, float eps);
hb_status hb_cpu_layernorm(hb_backend *be, float *out, const float *in, const float *w,
                           const float *b, int64_t N, int64_t C, float eps);
hb_status hb_cpu_matmul(hb_backend *be, float *out, int64_t ldo, const void *a, int64_t lda,
                        hb_dtype adt, const void *w, hb_dtype wdt, const float *bias, int64_t M,
                        int64_t N, int64_t K, float beta);
hb_status hb_cpu_matmul_batched(hb_backend *be, const hb_gemm_batched *g);
hb_status hb_cpu_rope(hb_backend *be, float *x, int64_t ldx, int64_t B, int64_t T, int64_t pos0,
                      int64_t H, int64_t D, float theta);
hb_status hb_cpu_kv_store(hb_backend *be, void *k_cache, void *v_cache, hb_dtype kvt,
                          const float *k, const float *v, int64_t ld, int64_t B, int64_t T,
                          int64_t pos0, int64_t Hkv, int64_t D, int64_t S);
hb_status hb_cpu_attention(hb_backend *be, float *out, int64_t ldo, const float *q, int64_t ldq,
                           const void *k_cache, const void *v_cache, hb_dtype kvt, int64_t B,
                           int64_t T, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t D,
                           int64_t S);
hb_status hb_cpu_swiglu(hb_backend *be, float *out, const float *in, int64_t N, int64_t F);
hb_status hb_cpu_gelu(hb_backend *be, float *out, const float *in, int64_t n);
hb_status hb_cpu_add(hb_backend *be, float *out, const float *a, const float *b, float s,
                     int64_t n);
hb_status hb_cpu_softmax(hb_backend *be, float *out, const float *in, int64_t rows, int64_t cols);
hb_status hb_cpu_argmax(hb_backend *be, int32_t *out, const float *in, int64_t ld, int64_t rows,
                        int64_t cols);
hb_status hb_cpu_sample(hb_backend *be, int32_t *out, const float *logits, int64_t ld,
                        int64_t rows, int64_t cols, float temperature, uint64_t seed,
                        uint64_t step);

#endif
