/* fp8.h - bit-exact fp8 e4m3 (OCP "E4M3FN", NVIDIA __nv_fp8_e4m3) conversions, host and device.
 *
 * dtype.h has bf16 and f16; fp8 storage exists only on the GPU backends (the CPU reference does
 * not store fp8), so its conversions live here. C and CUDA/HIP compile the same functions
 * (HB_HOSTDEV), so a test on the host decodes device-written bytes with the same rules.
 *
 * e4m3: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; 0x7f/0xff are NaN;
 * largest finite 448 (0x7e); smallest normal 2^-6; subnormals m * 2^-9.
 * f32 -> e4m3 rounds to nearest even and saturates to +-448 (cuBLASLt's "satfinite"); NaN stays
 * NaN. */
#ifndef HB_GPU_FP8_H
#define HB_GPU_FP8_H

#include <stdint.h>

#ifndef HB_HOSTDEV
#define HB_HOSTDEV
#endif

#define HB_E4M3_MAX 448.0f

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

#endif
