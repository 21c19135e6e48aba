/* The KV-cache element helpers of the CPU attention ops (cpu_ops.c attention, cpu_serve.c
 * attention_paged): one definition, inlined in both hot loops. */
#ifndef HB_CPU_KV_H
#define HB_CPU_KV_H

#include <stdint.h>

#include "../dtype.h"

/* x rounded to the operand type of a cache in kvt (bf16/f16: to nearest even; an fp8 cache
 * computes in bf16), as f32 */
static inline float round_to(hb_dtype t, float x) {
    if (t == HB_BF16 || hb_dtype_is_fp8(t)) return hb_bf16_to_f32(hb_f32_to_bf16(x));
    if (t == HB_F16) return hb_f16_to_f32(hb_f32_to_f16(x));
    return x;
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
    } else if (t == HB_F16) {
        const uint16_t *kh = (const uint16_t *)k + off;
        for (int64_t d = 0; d < D; d++) s += q[d] * hb_f16_to_f32(kh[d]);
    } else {
        for (int64_t d = 0; d < D; d++) s += q[d] * hb_load_f32(k, t, off + d);
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
    } else if (t == HB_F16) {
        const uint16_t *vh = (const uint16_t *)v + off;
        for (int64_t d = 0; d < D; d++) o[d] += p * hb_f16_to_f32(vh[d]);
    } else {
        for (int64_t d = 0; d < D; d++) o[d] += p * hb_load_f32(v, t, off + d);
    }
}

#endif
