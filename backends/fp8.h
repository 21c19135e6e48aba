/* fp8.h - bit-exact OCP FP8 conversions (e4m3 "E4M3FN" = NVIDIA __nv_fp8_e4m3, and e5m2),
 * host and device.
 *
 * Included by dtype.h: the CPU reference backend, the GPU kernels (through HB_HOSTDEV) and the
 * harness compile the same functions, so every backend rounds to fp8 bit-identically and a host
 * test decodes device-written bytes with the same rules.
 *
 * e4m3: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; 0x7f/0xff are NaN;
 * largest finite 448 (0x7e); smallest normal 2^-6; subnormals m * 2^-9.
 * f32 -> e4m3 rounds to nearest even and saturates to +-448 (cuBLASLt's "satfinite"); NaN stays
 * NaN.
 *
 * e5m2: sign, 5 exponent bits (bias 15), 2 mantissa bits: the top byte of an IEEE half, with
 * infinities (0x7c/0xfc) and NaNs (exponent 31, mantissa != 0); largest finite 57344 (0x7b);
 * subnormals m * 2^-16. f32 -> e5m2 rounds to nearest even and saturates finite values and
 * infinities to +-57344 (the "satfinite" conversion of cuBLASLt and Transformer Engine); NaN
 * stays NaN. Decoding 0x7c gives +inf. */
#ifndef HB_FP8_H
#define HB_FP8_H

#include <stdint.h>

#ifndef HB_HOSTDEV
#define HB_HOSTDEV
#endif

#define HB_E4M3_MAX 448.0f
#define HB_E5M2_MAX 57344.0f

static inline HB_HOSTDEV float hb_e4m3_to_f32(uint8_t b) {
    const uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    const uint32_t e = (b >> 3) & 0xfu, m = b & 0x7u;
    union { uint32_t u; float f; } v;
    if (e == 15 && m == 7) {
        v.u = sign | 0x7fc00000u; /* NaN */
    } else if (e == 0) {
        v.f = (float)m * (1.0f / 512.0f); /* subnormal m * 2^-9: exact */
        v.u |= sign;
    } else {
        v.u = sign | ((e + 120u) << 23) | (m << 20);
    }
    return v.f;
}

static inline HB_HOSTDEV uint8_t hb_f32_to_e4m3(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    const uint8_t sign = (uint8_t)((v.u >> 24) & 0x80u);
    const uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu);     /* NaN */
    if (a > 0x43e00000u) return (uint8_t)(sign | 0x7eu);     /* > 448 (and inf): saturate */
    const uint32_t E = a >> 23, mant = a & 0x7fffffu;
    if (E < 121) {                                            /* below 2^-6: subnormal or zero */
        /* q = a * 2^9 = (mant | 1 << 23) * 2^(E - 150 + 9), rounded to an integer 0..8 */
        if (E < 110) return sign;                             /* < 2^-17: far below 2^-10 */
        const uint32_t m24 = mant | 0x800000u, shift = 141u - E; /* 21..31 */
        uint32_t r = m24 >> shift;
        const uint32_t rem = m24 & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint8_t)(sign | r);                           /* r == 8 is 2^-6: 0x08, right */
    }
    uint32_t r = ((E - 120u) << 3) | (mant >> 20);            /* exponent field 1..15, 3 bits */
    const uint32_t rem = mant & 0xfffffu, half = 0x80000u;
    if (rem > half || (rem == half && (r & 1u))) r++;
    if (r > 0x7eu) r = 0x7eu;                                 /* rounding reached 480: saturate */
    return (uint8_t)(sign | r);
}

static inline HB_HOSTDEV float hb_e5m2_to_f32(uint8_t b) {
    const uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    const uint32_t e = (b >> 2) & 0x1fu, m = b & 0x3u;
    union { uint32_t u; float f; } v;
    if (e == 31) {
        v.u = sign | 0x7f800000u | (m ? 0x400000u : 0u); /* inf, or a quiet NaN */
    } else if (e == 0) {
        v.f = (float)m * (1.0f / 65536.0f); /* subnormal m * 2^-16: exact */
        v.u |= sign;
    } else {
        v.u = sign | ((e + 112u) << 23) | (m << 21);
    }
    return v.f;
}

static inline HB_HOSTDEV uint8_t hb_f32_to_e5m2(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    const uint8_t sign = (uint8_t)((v.u >> 24) & 0x80u);
    const uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu);     /* NaN */
    if (a > 0x47600000u) return (uint8_t)(sign | 0x7bu);     /* > 57344 (and inf): saturate */
    const uint32_t E = a >> 23, mant = a & 0x7fffffu;
    if (E < 113) {                                            /* below 2^-14: subnormal or zero */
        /* q = a * 2^16 = (mant | 1 << 23) * 2^(E - 150 + 16), rounded to an integer 0..4 */
        if (E < 110) return sign;                             /* < 2^-17: rounds to zero */
        const uint32_t m24 = mant | 0x800000u, shift = 134u - E; /* 22..24 */
        uint32_t r = m24 >> shift;
        const uint32_t rem = m24 & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint8_t)(sign | r);                           /* r == 4 is 2^-14: 0x04, right */
    }
    uint32_t r = ((E - 112u) << 2) | (mant >> 21);            /* exponent field 1..30, 2 bits */
    const uint32_t rem = mant & 0x1fffffu, half = 0x100000u;
    if (rem > half || (rem == half && (r & 1u))) r++;
    if (r > 0x7bu) r = 0x7bu;                                 /* rounding reached 65536: saturate */
    return (uint8_t)(sign | r);
}

#endif
