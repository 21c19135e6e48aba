/* dtype.h - storage types, bit-exact conversions and the counter-based generator.
 *
 * Everything here is static inline so that the CPU backend and the GPU kernels (through
 * HB_HOSTDEV) compute bit-identical values: the same seed gives the same weights on every
 * backend, which is what makes "identical workloads" and output fingerprints comparable. */
#ifndef HB_DTYPE_H
#define HB_DTYPE_H

#include <stdint.h>
#include <string.h>

#include "fp8.h" // defines: hb_e4m3_to_f32, hb_f32_to_e4m3, hb_e5m2_to_f32, hb_f32_to_e5m2

#ifndef HB_HOSTDEV
#define HB_HOSTDEV
#endif

typedef enum hb_dtype {
    HB_F32 = 0,
    HB_BF16 = 1,
    HB_F16 = 2,
    HB_FP8_E4M3 = 3,
    HB_FP8_E5M2 = 4,
    HB_DTYPE_COUNT
} hb_dtype;

/* Sizes in bytes per element, names as accepted on the command line. */
static inline HB_HOSTDEV int64_t hb_dtype_size(hb_dtype t) {
    return t == HB_F32 ? 4 : (t == HB_FP8_E4M3 || t == HB_FP8_E5M2) ? 1 : 2;
}
static inline HB_HOSTDEV int hb_dtype_is_fp8(hb_dtype t) { return t == HB_FP8_E4M3 || t == HB_FP8_E5M2; }
/* Largest finite value of an fp8 dtype (the quantisation target of a scale), else 0. */
static inline HB_HOSTDEV float hb_dtype_fp8_max(hb_dtype t) {
    return t == HB_FP8_E4M3 ? HB_E4M3_MAX : t == HB_FP8_E5M2 ? HB_E5M2_MAX : 0.0f;
}
const char *hb_dtype_name(hb_dtype t);           /* "f32", "bf16", "f16", "fp8", "e5m2" */
int hb_dtype_parse(const char *s, hb_dtype *out); /* 0 on success, -1 unknown */

/* ---- bf16: the top 16 bits of an f32, round-to-nearest-even, NaN kept quiet ---- */
static inline HB_HOSTDEV float hb_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline HB_HOSTDEV uint16_t hb_f32_to_bf16(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* NaN */
    uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + rounding) >> 16);
}

/* ---- IEEE half: round-to-nearest-even, subnormals, inf/NaN ---- */
static inline HB_HOSTDEV float hb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 113;
            while (!(man & 0x400u)) { man <<= 1; exp--; }
            man &= 0x3ffu;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v;
    v.u = u;
    return v.f;
}
static inline HB_HOSTDEV uint16_t hb_f32_to_f16(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    uint32_t u = v.u, sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);    /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* overflow (>= 65520) -> inf */
    if (a < 0x38800000u) {                                      /* result is subnormal or zero */
        if (a < 0x33000000u) return (uint16_t)sign;             /* < 2^-25: rounds to zero */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                               /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a >> 13) - (112u << 10));
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

/* Any storage dtype <-> f32 (the scalar reference; kernels specialise). */
static inline HB_HOSTDEV float hb_load_f32(const void *p, hb_dtype t, int64_t i) {
    switch (t) {
    case HB_F32: return ((const float *)p)[i];
    case HB_BF16: return hb_bf16_to_f32(((const uint16_t *)p)[i]);
    case HB_F16: return hb_f16_to_f32(((const uint16_t *)p)[i]);
    case HB_FP8_E4M3: return hb_e4m3_to_f32(((const uint8_t *)p)[i]);
    case HB_FP8_E5M2: return hb_e5m2_to_f32(((const uint8_t *)p)[i]);
    default: return 0.0f;
    }
}
static inline HB_HOSTDEV void hb_store_f32(void *p, hb_dtype t, int64_t i, float v) {
    switch (t) {
    case HB_F32: ((float *)p)[i] = v; break;
    case HB_BF16: ((uint16_t *)p)[i] = hb_f32_to_bf16(v); break;
    case HB_F16: ((uint16_t *)p)[i] = hb_f32_to_f16(v); break;
    case HB_FP8_E4M3: ((uint8_t *)p)[i] = hb_f32_to_e4m3(v); break;
    case HB_FP8_E5M2: ((uint8_t *)p)[i] = hb_f32_to_e5m2(v); break;
    default: break;
    }
}

/* ---- counter-based generator (splitmix64 finaliser of seed and index) ----
 * Value i of stream `seed` depends on (seed, i) only: any backend, any thread layout. */
static inline HB_HOSTDEV uint64_t hb_rng_u64(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i * 0xd1b54a32d192ed03ull + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* In (-1, 1), never 0: (2k+1 - 2^24) / 2^24 with k a 24-bit integer. Exact in f32. */
static inline HB_HOSTDEV float hb_rng_pm1(uint64_t seed, uint64_t i) {
    int32_t k = (int32_t)(hb_rng_u64(seed, i) >> 40);
    return (float)(2 * k + 1 - 16777216) * (1.0f / 16777216.0f);
}
/* In [0, 1): k / 2^24. */
static inline HB_HOSTDEV float hb_rng_unit(uint64_t seed, uint64_t i) {
    return (float)(hb_rng_u64(seed, i) >> 40) * (1.0f / 16777216.0f);
}
/* The value the fill op stores before the cast to the storage dtype: offset + scale * u,
 * two separately rounded operations (no fused multiply-add) so every backend agrees. */
static inline HB_HOSTDEV float hb_rng_value(uint64_t seed, uint64_t i, float scale, float offset) {
    volatile float prod = scale * hb_rng_pm1(seed, i);
    return offset + prod;
}

#endif
