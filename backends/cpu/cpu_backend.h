/* cpu_backend.h - private interface of the CPU reference backend (backends/cpu/).
 *
 * cpu_backend.c owns the device (info, memory, events, the ops table); cpu_ops.c holds the ops.
 * Only the registry and tests include this header; workloads see the ops table only. */
#ifndef HB_CPU_BACKEND_H
#define HB_CPU_BACKEND_H

#include <stddef.h>

#include "../backend.h" // defines: hb_backend, hb_backend_ops, the op argument structs, hb_status

/* Instruction set of the hand-written matmul kernels. Chosen once at open from the running CPU
 * (the binary is built for plain x86-64); tests force each one to check all of them. */
typedef enum hb_cpu_isa {
    HB_CPU_ISA_GENERIC = 0, /* portable C */
    HB_CPU_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C */
    HB_CPU_ISA_AVX512 = 2,  /* AVX-512 F, BW and VL (Skylake-SP and later, Zen 4) */
} hb_cpu_isa;

/* Backend-private state (be->ctx). A backend instance is used by one host thread at a time,
 * like a GPU stream, so the scratch buffer needs no lock. */
typedef struct hb_cpu_ctx {
    hb_cpu_isa isa;
    int n_threads;
    float *scratch[3];      /* [0] f32 panels of converted weights (matmul on bf16/f16/fp8, M > 8);
                               [1] f32 copy of a bf16/f16/fp8 matmul's A (dequantised);
                               [2] an fp8 matmul's A scales */
    size_t scratch_bytes[3];
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

/* RoPE rotation of x's B x T rows of H heads of D (sign -1: the transpose), shared by rope and
 * rope_backward (cpu_ops.c); 0 when its table cannot be allocated. */
int hb_cpu_rope_rotate(float *x, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D, int64_t pos0, float theta,
                       hb_rope_scaling scaling, float sign);

/* ---- ops (cpu_ops.c): hb_cpu_<name> for every op of the catalogue (ops.h) ---- */
#define HB_CPU_DECL_(name, req) HB_OP_DECLARE(hb_cpu_, name)
HB_OP_LIST(HB_CPU_DECL_)
#undef HB_CPU_DECL_

#endif
