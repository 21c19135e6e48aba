/* test_fp8.c - fp8 (OCP e4m3 "E4M3FN" and e5m2): the conversions of backends/fp8.h checked
 * exhaustively against formulas written here, then the CPU backend's quantised ops against
 * double-precision references of ops.h.
 *
 * Nothing here calls fp8.h to compute an expected value: a code's value comes from its bit
 * fields (code_value), the code an f32 gets from a brute-force search for the nearest finite
 * value of its sign, ties to the even code (ref_encode). The op references follow ops.h:
 *   quantise    scale[g] = amax(g) / max (1 if amax is 0 or not finite), code = RNE(x / scale)
 *               saturating, NaN kept; x / scale is the f32 quotient (see ref_quotient)
 *   dequantise  the f32 product code * scale
 *   matmul      the product of the dequantised operands, A quantised as ops.h says
 *               (f32 A: e4m3, per tensor for tensor/no w scales, 1 x bk tiles for bm x bk
 *               blocks), accumulated in double; bound: f32 accumulation
 *   KV cache    kv_store: codes of k / scale; attention: the bf16 rule with the codes as
 *               values and the scales on the f32 sums
 * The matmul runs every GEMV kernel the CPU can execute (hb_cpu_set_isa), M <= 8 (GEMV) and
 * M > 8 (sgemm on dequantised panels). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/worker.h" // defines: hb_worker_check_support
#include "backends/cpu/cpu_backend.h" // defines: hb_cpu_set_isa (to run every kernel variant)
#include "hbtest.h"

/* ---- the test's own random numbers (xorshift64*), independent of hb_rng_* ---- */

typedef struct trng {
    uint64_t s;
} trng;

static uint64_t trng_u64(trng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi). */
static float trng_f(trng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(trng_u64(r) >> 11) * 0x1p-53);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_fp8: out of memory\n");
        exit(1);
    }
    return p;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- the formats, from their definitions ---- */

typedef struct fmt {
    const char *name;
    hb_dtype dt;
    int ebits, mbits, bias;
    double max;        /* largest finite value */
    unsigned max_code; /* its code (positive) */
    double v[256];     /* code_value of every code, filled once by fmt_init (the brute force
                          search would otherwise evaluate the formula 10^8 times) */
} fmt;

static fmt E4M3 = {"e4m3", HB_FP8_E4M3, 4, 3, 7, 448.0, 0x7e, {0}};
static fmt E5M2 = {"e5m2", HB_FP8_E5M2, 5, 2, 15, 57344.0, 0x7b, {0}};
static const fmt *const fmts[2] = {&E4M3, &E5M2};

/* The value of code c from its fields: sign, exponent e, mantissa m.
 * e4m3: no infinities, e = 15 and m = 7 is NaN; e5m2: e = 31 is inf (m = 0) or NaN.
 * e = 0: subnormal m * 2^(1 - bias - mbits); else (2^mbits + m) * 2^(e - bias - mbits). */
static double code_value(const fmt *f, unsigned c) {
    const int s = (int)(c >> 7) & 1, e = (int)(c >> f->mbits) & ((1 << f->ebits) - 1);
    const int m = (int)c & ((1 << f->mbits) - 1), emax = (1 << f->ebits) - 1;
    double v;
    if (f->dt == HB_FP8_E4M3 && e == emax && m == (1 << f->mbits) - 1) v = NAN;
    else if (f->dt == HB_FP8_E5M2 && e == emax) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, 1 - f->bias - f->mbits);
    else v = ldexp((1 << f->mbits) + m, e - f->bias - f->mbits);
    return s ? -v : v;
}

static void fmt_init(fmt *f) {
    for (unsigned c = 0; c < 256; c++) f->v[c] = code_value(f, c);
}

static int code_is_nan(const fmt *f, unsigned c) { return isnan(f->v[c & 0xffu]); }

/* The code the spec gives x: NaN -> NaN (returned as 0x100); otherwise the finite code of x's
 * sign nearest to x, ties to the even code; +-inf and anything beyond max saturate to +-max
 * (the nearest finite value is max). Brute force over the 128 codes of one sign. */
#define REF_NAN 0x100u
static unsigned ref_encode(const fmt *f, float x) {
    if (isnan(x)) return REF_NAN;
    const unsigned sign = signbit(x) ? 0x80u : 0u;
    const double ax = fabs((double)x);
    if (ax >= f->max) return sign | f->max_code; /* max is nearest (and the distances to the
                                                    codes below would lose their bits) */
    unsigned best = 0;
    double bd = INFINITY;
    for (unsigned c = 0; c < 0x80u; c++) {
        const double v = f->v[c];
        if (!isfinite(v)) continue;
        const double d = fabs(ax - v); /* exact: few bits in v, 24 in x, exponents close */
        if (d < bd || (d == bd && !(c & 1u))) best = c, bd = d;
    }
    return sign | best;
}

/* The library under test. */
static float dec(const fmt *f, unsigned c) {
    return f->dt == HB_FP8_E4M3 ? hb_e4m3_to_f32((uint8_t)c) : hb_e5m2_to_f32((uint8_t)c);
}
static unsigned enc(const fmt *f, float x) {
    return f->dt == HB_FP8_E4M3 ? hb_f32_to_e4m3(x) : hb_f32_to_e5m2(x);
}

/* enc(x) against the reference: a NaN must give a NaN code, anything else exactly ref. */
static int enc_ok(const fmt *f, float x, unsigned got) {
    const unsigned want = ref_encode(f, x);
    return want == REF_NAN ? code_is_nan(f, got) : got == want;
}

/* ---- 1. every code decodes to its value and encodes back to itself ---- */

static void test_decode(const fmt *f) {
    int bad = 0, nans = 0, infs = 0;
    double vmax = 0.0, vmin_sub = INFINITY;
    for (unsigned c = 0; c < 256; c++) {
        const double v = code_value(f, c);
        const float got = dec(f, c);
        if (isnan(v)) {
            nans++;
            if (!isnan(got) || !code_is_nan(f, enc(f, got))) {
                if (bad++ < 5) fprintf(stderr, "%s 0x%02x: NaN decodes to %g / re-encodes to 0x%02x\n",
                                       f->name, c, (double)got, enc(f, got));
            }
            continue;
        }
        int ok = (double)got == v && !signbit(got) == !signbit(v);
        if (isinf(v)) {
            infs++;
            ok = ok && enc(f, got) == ((c & 0x80u) | f->max_code); /* inf saturates to max */
        } else {
            ok = ok && enc(f, got) == c;
            if (v > vmax) vmax = v;
            if (v > 0 && v < vmin_sub) vmin_sub = v;
        }
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s 0x%02x: decodes to %a (expected %a), encodes back to 0x%02x\n", f->name,
                    c, (double)got, v, enc(f, got));
    }
    CHECK_MSG(bad == 0, "%s: %d of 256 codes wrong", f->name, bad);
    CHECK(vmax == f->max);
    CHECK(code_value(f, f->max_code) == f->max && code_value(f, 0x80u | f->max_code) == -f->max);
    CHECK((double)hb_dtype_fp8_max(f->dt) == f->max);
    if (f->dt == HB_FP8_E4M3) {
        CHECK(nans == 2 && infs == 0);
        CHECK(code_is_nan(f, 0x7f) && code_is_nan(f, 0xff));
        CHECK(vmin_sub == 0x1p-9);
        CHECK(HB_E4M3_MAX == 448.0f);
    } else {
        CHECK(nans == 6 && infs == 2);
        CHECK(isinf(code_value(f, 0x7c)) && code_value(f, 0xfc) < 0);
        CHECK(vmin_sub == 0x1p-16);
        CHECK(HB_E5M2_MAX == 57344.0f);
    }
    CHECK(dec(f, 0x00) == 0.0f && !signbit(dec(f, 0x00)));
    CHECK(dec(f, 0x80) == 0.0f && signbit(dec(f, 0x80))); /* -0 */
}

/* ---- 2. encoding: a fine sweep of every binade, random f32, ties and their neighbours ---- */

static void test_encode_sweep(const fmt *f) {
    /* binades from 2^-5 below the smallest subnormal to 2^3 above max, 2^13 points each */
    const int lo = 1 - f->bias - f->mbits - 5, hi = (int)log2(f->max) + 4;
    int bad = 0;
    int64_t n = 0;
    for (int e = lo; e <= hi; e++)
        for (int j = 0; j < (1 << 13); j++)
            for (int s = 0; s < 2; s++) {
                const float x = (s ? -1.0f : 1.0f) * ldexpf(1.0f + (float)j * 0x1p-13f, e);
                const unsigned got = enc(f, x);
                n++;
                if (!enc_ok(f, x, got) && bad++ < 5)
                    fprintf(stderr, "%s(%a) = 0x%02x, expected 0x%02x\n", f->name, (double)x, got,
                            ref_encode(f, x));
            }
    /* f32 subnormals and the smallest normals: all round to a signed zero */
    static const uint32_t tiny[] = {0x00000001u, 0x00000123u, 0x007fffffu, 0x00800000u, 0x00800001u};
    for (int i = 0; i < HB_ARRAY_LEN(tiny); i++)
        for (int s = 0; s < 2; s++) {
            const float x = bits_f32(tiny[i] | (s ? 0x80000000u : 0u));
            bad += enc(f, x) != (s ? 0x80u : 0x00u);
            n++;
        }
    /* random bit patterns: every exponent of f32 */
    trng r = {0xf8f8f8f8u + (uint64_t)f->dt};
    for (int i = 0; i < 300000; i++) {
        const float x = bits_f32((uint32_t)trng_u64(&r));
        const unsigned got = enc(f, x);
        n++;
        if (!enc_ok(f, x, got) && bad++ < 5)
            fprintf(stderr, "%s(%a) = 0x%02x, expected 0x%02x\n", f->name, (double)x, got, ref_encode(f, x));
    }
    CHECK_MSG(bad == 0, "%s: %d of %lld encodings not the nearest code (ties to even)", f->name, bad,
              (long long)n);
}

static void test_encode_ties(const fmt *f) {
    int bad = 0, ties = 0;
    for (unsigned c = 0; c < f->max_code; c++) { /* adjacent finite codes c, c + 1 */
        const double a = code_value(f, c), b = code_value(f, c + 1), mid = 0.5 * (a + b);
        const float m = (float)mid;
        if ((double)m != mid) { /* a midpoint has one bit more than the codes: exact in f32 */
            bad++;
            continue;
        }
        const unsigned even = (c & 1u) ? c + 1 : c;
        const float up = nextafterf(m, INFINITY), down = nextafterf(m, 0.0f);
        for (unsigned s = 0; s <= 0x80u; s += 0x80u) {
            const float sg = s ? -1.0f : 1.0f;
            int ok = enc(f, sg * m) == (s | even) && enc(f, sg * up) == (s | (c + 1)) &&
                     enc(f, sg * down) == (s | c);
            /* the reference agrees with the rule it is meant to implement */
            ok = ok && ref_encode(f, sg * m) == (s | even) && ref_encode(f, sg * up) == (s | (c + 1)) &&
                 ref_encode(f, sg * down) == (s | c);
            if (!ok && bad++ < 5)
                fprintf(stderr, "%s: tie %a between 0x%02x and 0x%02x: 0x%02x (+ulp 0x%02x, -ulp 0x%02x)\n",
                        f->name, (double)(sg * m), s | c, s | (c + 1), enc(f, sg * m), enc(f, sg * up),
                        enc(f, sg * down));
            ties++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %d ties (or their neighbours) wrong", f->name, bad, ties);

    /* saturation: beyond max, the midpoint to the next (inf or NaN) code, huge, inf */
    const double ulp_top = ldexp(1.0, (int)floor(log2(f->max)) - f->mbits);
    const float over_mid = (float)(f->max + 0.5 * ulp_top);
    const float sat[] = {nextafterf((float)f->max, INFINITY), over_mid, nextafterf(over_mid, 0.0f),
                         nextafterf(over_mid, INFINITY), (float)(2.0 * f->max), 1e30f, FLT_MAX, INFINITY};
    for (int i = 0; i < HB_ARRAY_LEN(sat); i++) {
        CHECK_MSG(enc(f, sat[i]) == f->max_code, "%s(%a) = 0x%02x", f->name, (double)sat[i], enc(f, sat[i]));
        CHECK_MSG(enc(f, -sat[i]) == (0x80u | f->max_code), "%s(%a) = 0x%02x", f->name, (double)-sat[i],
                  enc(f, -sat[i]));
    }
    CHECK(enc(f, (float)f->max) == f->max_code);
    /* NaN stays NaN, whatever its sign or payload */
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7fa00000u};
    for (int i = 0; i < HB_ARRAY_LEN(nans); i++)
        CHECK_MSG(code_is_nan(f, enc(f, bits_f32(nans[i]))), "%s(NaN 0x%08x) = 0x%02x", f->name, nans[i],
                  enc(f, bits_f32(nans[i])));
    /* signed zeros, and negative values that round to zero keep their sign */
    CHECK(enc(f, 0.0f) == 0x00u);
    CHECK(enc(f, -0.0f) == 0x80u);
    CHECK(enc(f, -(float)ldexp(1.0, -f->bias - f->mbits - 2)) == 0x80u);
}

/* ---- 3. the CPU backend: quantise, dequantise, fill ---- */

/* x / scale as the f32 division: the double quotient of two f32 values rounded to f32 is the
 * correctly rounded f32 quotient (53 >= 2 * 24 + 2). ops.h's "RNE(x / scale)" is read as the
 * fp8 rounding of this f32 quotient - what the CPU and an IEEE f32 division on a GPU compute;
 * test_quotient_rule shows where it differs from rounding the exact quotient. */
static float ref_quotient(float x, float s) { return (float)((double)x / (double)s); }

/* ops.h's scale of a group with largest magnitude amax: amax / max rounded to f32 (exact
 * division of an f32 by a small integer, rounded once), 1 for 0 / inf / NaN. */
static float ref_scale(const fmt *f, double amax) {
    return (amax > 0.0 && amax <= FLT_MAX) ? (float)(amax / f->max) : 1.0f;
}

/* Quantises x (rows, cols) in bm x bk groups: scales (ceil(rows/bm), ceil(cols/bk)) and
 * codes, per ops.h. */
static void ref_quantise(const fmt *f, const float *x, int64_t rows, int64_t cols, int64_t bm, int64_t bk,
                         float *scale, uint8_t *codes) {
    const int64_t sr = (rows + bm - 1) / bm, sc = (cols + bk - 1) / bk;
    for (int64_t g = 0; g < sr * sc; g++) {
        double amax = 0.0;
        for (int64_t r = (g / sc) * bm; r < rows && r < (g / sc + 1) * bm; r++)
            for (int64_t c = (g % sc) * bk; c < cols && c < (g % sc + 1) * bk; c++) {
                const double v = fabs((double)x[r * cols + c]);
                amax = isnan(v) ? INFINITY : v > amax ? v : amax;
            }
        scale[g] = ref_scale(f, amax);
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const unsigned q = ref_encode(f, ref_quotient(x[r * cols + c], scale[(r / bm) * sc + c / bk]));
            codes[r * cols + c] = (uint8_t)(q == REF_NAN ? (0x7fu) : q);
        }
}

/* the dequantised value: code * scale as an f32 product (exact in double, rounded once) */
static float ref_deq(const fmt *f, unsigned code, float scale) { return (float)(f->v[code] * (double)scale); }

/* A test tensor: shape, quantisation, and values with a wide range within and across groups:
 * magnitude 2^-(0..12) per element, 2^(0..6) per row and column band, so scales differ. */
typedef struct qcase {
    int ndim;
    int64_t ne[4];
    hb_qkind kind;
    int64_t bm, bk;
    int special; /* zero group, NaN group, inf group (needs >= 3 groups) */
} qcase;

static hb_tensor qcase_tensor(const qcase *q, void *data, hb_dtype dt) {
    hb_tensor t = q->ndim == 1   ? hb_t1(data, dt, q->ne[0])
                  : q->ndim == 2 ? hb_t2(data, dt, q->ne[0], q->ne[1], q->ne[1])
                                 : hb_t4(data, dt, q->ne[0], q->ne[1], q->ne[2], q->ne[3]);
    return t;
}

static void qcase_values(const qcase *q, trng *r, float *x, int64_t rows, int64_t cols, int64_t bm, int64_t bk) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < cols; c++) {
            const int band = (int)((i / 8 + c / 16) % 7);
            x[i * cols + c] = trng_f(r, -1.0f, 1.0f) * ldexpf(1.0f, band - (int)(trng_u64(r) % 13));
        }
    if (!q->special) return;
    const int64_t sc = (cols + bk - 1) / bk;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < cols; c++) {
            const int64_t g = (i / bm) * sc + c / bk;
            if (g == 0) x[i * cols + c] = (i + c) % 2 ? -0.0f : 0.0f;   /* amax 0: scale 1, zeros */
            if (g == 1 && i % bm == 0 && c % bk == 0) x[i * cols + c] = NAN;      /* scale 1 */
            if (g == 2 && i % bm == 0 && c % bk == 0) x[i * cols + c] = -INFINITY; /* scale 1 */
        }
}

#define GUARD 16

static void test_quantise(hb_backend *be) {
    static const qcase cases[] = {
        {2, {130, 200}, HB_QUANT_TENSOR, 0, 0, 0},
        {2, {130, 200}, HB_QUANT_ROW, 0, 0, 0},
        {2, {130, 200}, HB_QUANT_BLOCK, 128, 128, 0}, /* partial edge blocks: 2 rows, 72 cols */
        {2, {7, 5}, HB_QUANT_BLOCK, 3, 2, 1},         /* partial both ways; zero/NaN/inf groups */
        {2, {3, 300}, HB_QUANT_BLOCK, 1, 128, 1},     /* activation tiles */
        {4, {2, 3, 5, 40}, HB_QUANT_BLOCK, 4, 16, 0}, /* the 2-D view: 30 rows x 40 */
        {1, {257}, HB_QUANT_TENSOR, 0, 0, 0},
        {2, {33, 65}, HB_QUANT_ROW, 0, 0, 1},
    };
    trng r = {4711};
    for (int fi = 0; fi < 2; fi++)
        for (int ci = 0; ci < HB_ARRAY_LEN(cases); ci++) {
            const fmt *f = fmts[fi];
            const qcase *q = &cases[ci];
            uint8_t probe;
            hb_tensor t0 = qcase_tensor(q, &probe, f->dt);
            const int64_t rows = hb_tensor_rows(&t0), cols = hb_tensor_cols(&t0), n = rows * cols;
            const int64_t bm = q->kind == HB_QUANT_TENSOR ? rows : q->kind == HB_QUANT_ROW ? 1 : q->bm;
            const int64_t bk = q->kind == HB_QUANT_BLOCK ? q->bk : cols;
            const int64_t ns = ((rows + bm - 1) / bm) * ((cols + bk - 1) / bk);
            float *x = xmalloc((size_t)n * 4), *sref = xmalloc((size_t)ns * 4), *s = xmalloc((size_t)(ns + GUARD) * 4);
            uint8_t *cref = xmalloc((size_t)n), *codes = xmalloc((size_t)(n + GUARD));
            qcase_values(q, &r, x, rows, cols, bm, bk);
            ref_quantise(f, x, rows, cols, bm, bk, sref, cref);
            memset(codes, 0x5a, (size_t)(n + GUARD));
            for (int64_t i = 0; i < ns + GUARD; i++) s[i] = -12345.0f;

            hb_tensor dst = hb_tq(qcase_tensor(q, codes, f->dt), q->kind, q->bm, q->bk, s);
            hb_tensor src = qcase_tensor(q, x, HB_F32);
            hb_status st = HB_OP(be, convert, .dst = dst, .src = src);
            CHECK_MSG(st == HB_OK, "%s", be->err);
            int bad_s = 0, bad_c = 0, bad_g = 0;
            for (int64_t g = 0; g < ns; g++)
                if (f32_bits(s[g]) != f32_bits(sref[g]) && bad_s++ < 3)
                    fprintf(stderr, "quantise %s case %d: scale[%lld] = %a, expected %a\n", f->name, ci,
                            (long long)g, (double)s[g], (double)sref[g]);
            for (int64_t i = 0; i < n; i++) {
                const int ok = code_is_nan(f, cref[i]) ? code_is_nan(f, codes[i]) : codes[i] == cref[i];
                if (!ok && bad_c++ < 3)
                    fprintf(stderr, "quantise %s case %d: code[%lld] of %a = 0x%02x, expected 0x%02x\n",
                            f->name, ci, (long long)i, (double)x[i], codes[i], cref[i]);
            }
            for (int g = 0; g < GUARD; g++) bad_g += codes[n + g] != 0x5a || s[ns + g] != -12345.0f;
            CHECK_MSG(bad_s == 0 && bad_c == 0 && bad_g == 0,
                      "quantise %s %s case %d: %d scales, %d codes wrong, %d guard elements written", f->name,
                      hb_qkind_name(q->kind), ci, bad_s, bad_c, bad_g);

            /* within half a code step of x (relative, or the subnormal step absolute) */
            int far = 0;
            for (int64_t i = 0; i < n && !q->special; i++) {
                const float sg = sref[(i / cols / bm) * ((cols + bk - 1) / bk) + (i % cols) / bk];
                const double d = fabs((double)ref_deq(f, cref[i], sg) - x[i]);
                const double lim = fmax(fabs((double)x[i]) * ldexp(1.0, -f->mbits - 1),
                                        ldexp(1.0, -f->bias - f->mbits) * sg) * (1.0 + 1e-6);
                far += !(d <= lim);
            }
            CHECK_MSG(far == 0, "quantise %s case %d: %d codes more than half a step from x", f->name, ci, far);

            /* dequantise: f32 and bf16 destinations, src.q = the scales */
            float *y = xmalloc((size_t)(n + GUARD) * 4);
            uint16_t *yb = xmalloc((size_t)n * 2);
            for (int64_t i = 0; i < n + GUARD; i++) y[i] = -777.0f;
            hb_tensor qsrc = hb_tq(qcase_tensor(q, cref, f->dt), q->kind, q->bm, q->bk, sref);
            st = HB_OP(be, convert, .dst = qcase_tensor(q, y, HB_F32), .src = qsrc);
            CHECK_MSG(st == HB_OK, "%s", be->err);
            CHECK(HB_OP(be, convert, .dst = qcase_tensor(q, yb, HB_BF16), .src = qsrc) == HB_OK);
            int bad_d = 0;
            for (int64_t i = 0; i < n; i++) {
                const int64_t g = (i / cols / bm) * ((cols + bk - 1) / bk) + (i % cols) / bk;
                const float want = ref_deq(f, cref[i], sref[g]);
                const int ok = isnan(want) ? isnan(y[i]) : f32_bits(y[i]) == f32_bits(want);
                const int okb = isnan(want) ? (yb[i] & 0x7fffu) > 0x7f80u : yb[i] == hb_f32_to_bf16(want);
                if ((!ok || !okb) && bad_d++ < 3)
                    fprintf(stderr, "dequantise %s case %d: [%lld] code 0x%02x scale %a: %a (bf16 0x%04x), expected %a\n",
                            f->name, ci, (long long)i, cref[i], (double)sref[g], (double)y[i], yb[i], (double)want);
            }
            for (int g = 0; g < GUARD; g++) bad_d += y[n + g] != -777.0f;
            CHECK_MSG(bad_d == 0, "dequantise %s %s case %d: %d wrong", f->name, hb_qkind_name(q->kind), ci, bad_d);
            free(x), free(sref), free(s), free(cref), free(codes), free(y), free(yb);
        }
}

/* ops.h's "RNE(x / scale)" where the f32 quotient and the exact one round differently: x
 * nearest to M * s for an fp8 midpoint M, so that fl(x / s) == M exactly but x / s != M. The
 * CPU (and this test) round the f32 quotient; rounding the exact quotient would give the
 * other code in about half of these cases. */
static void test_quotient_rule(hb_backend *be) {
    enum { n = 64 };
    float x[n], scale = 0.0f;
    uint8_t codes[n];
    int found = 0, differ = 0;
    const float amax = 1.3f; /* sets the tensor scale fl(1.3 / 448) */
    const float s = (float)((double)amax / 448.0);
    x[0] = amax;
    /* midpoints between 1 and 1.125, ..., 1.75 and 1.875 (codes 0x38..0x3e), times 2^-k */
    for (int k = 0; k < 6 && found < n - 1; k++)
        for (int j = 0; j < 7 && found < n - 1; j++) {
            const double M = ldexp(1.0 + (2 * j + 1) / 16.0, -k);
            const float xs = (float)(M * (double)s); /* nearest f32 to M * s */
            for (int d = -2; d <= 2 && found < n - 1; d++) {
                float xi = xs;
                for (int t = 0; t < (d < 0 ? -d : d); t++) xi = nextafterf(xi, d < 0 ? 0.0f : INFINITY);
                if ((double)ref_quotient(xi, s) != M || (double)xi == M * (double)s) continue;
                x[1 + found++] = xi;
                /* rounding the exact quotient: compare x with the midpoint times s, exactly */
                const unsigned lo = ref_encode(&E4M3, (float)(M - ldexp(1.0, -4 - k)));
                const unsigned exact = (double)xi > M * (double)s ? lo + 1 : lo;
                differ += exact != ref_encode(&E4M3, ref_quotient(xi, s));
            }
        }
    CHECK_MSG(found > 10 && differ > 0, "found %d near-ties, %d where the two rules differ", found, differ);
    hb_tensor dst = hb_tq(hb_t1(codes, HB_FP8_E4M3, 1 + found), HB_QUANT_TENSOR, 0, 0, &scale);
    CHECK(HB_OP(be, convert, .dst = dst, .src = hb_t1(x, HB_F32, 1 + found)) == HB_OK);
    CHECK(f32_bits(scale) == f32_bits(s));
    int bad = 0;
    for (int i = 1; i <= found; i++) bad += codes[i] != ref_encode(&E4M3, ref_quotient(x[i], s));
    CHECK_MSG(bad == 0, "%d of %d near-ties not rounded from the f32 quotient", bad, found);
}

/* Plain fp8 casts (no scales), fill_random into fp8, and the argument checks. */
static void test_casts_and_fill(hb_backend *be) {
    enum { n = 40000 };
    trng r = {555};
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4);
    uint8_t *c8 = xmalloc(n), *c8b = xmalloc(n);
    for (int i = 0; i < n; i++) x[i] = trng_f(&r, -1.0f, 1.0f) * ldexpf(1.0f, (int)(trng_u64(&r) % 44) - 26);
    x[0] = NAN, x[1] = INFINITY, x[2] = -INFINITY, x[3] = -0.0f, x[4] = 1e38f;
    for (int fi = 0; fi < 2; fi++) {
        const fmt *f = fmts[fi], *g = fmts[1 - fi];
        int bad = 0;
        CHECK(HB_OP(be, convert, .dst = hb_t1(c8, f->dt, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
        for (int i = 0; i < n; i++) bad += !enc_ok(f, x[i], c8[i]);
        CHECK(HB_OP(be, convert, .dst = hb_t1(y, HB_F32, n), .src = hb_t1(c8, f->dt, n)) == HB_OK);
        for (int i = 0; i < n; i++)
            bad += code_is_nan(f, c8[i]) ? !isnan(y[i]) : (double)y[i] != f->v[c8[i]];
        /* fp8 -> the other fp8: through f32, one rounding */
        CHECK(HB_OP(be, convert, .dst = hb_t1(c8b, g->dt, n), .src = hb_t1(c8, f->dt, n)) == HB_OK);
        for (int i = 0; i < n; i++) bad += !enc_ok(g, (float)f->v[c8[i]], c8b[i]);
        CHECK_MSG(bad == 0, "plain casts to/from %s: %d wrong", f->name, bad);

        /* fill_random, no scales: the cast of hb_rng_value */
        CHECK(HB_OP(be, fill_random, .dst = hb_t1(c8, f->dt, n), .seed = 9, .scale = 2.0f, .offset = 0.25f) == HB_OK);
        bad = 0;
        for (int i = 0; i < n; i++) bad += !enc_ok(f, hb_rng_value(9, (uint64_t)i, 2.0f, 0.25f), c8[i]);
        CHECK_MSG(bad == 0, "fill_random %s: %d codes not the cast of the generator", f->name, bad);
    }

    /* fill_random into a quantised tensor == fill f32 + convert, and == the reference */
    static const qcase qc[] = {
        {2, {130, 200}, HB_QUANT_TENSOR, 0, 0, 0},
        {2, {130, 200}, HB_QUANT_ROW, 0, 0, 0},
        {2, {130, 200}, HB_QUANT_BLOCK, 128, 128, 0},
        {4, {2, 3, 5, 40}, HB_QUANT_BLOCK, 4, 16, 0},
    };
    const float fscale[2] = {3.0f, 0.02f}, foff[2] = {0.5f, 0.0f};
    for (int fi = 0; fi < 2; fi++)
        for (int ci = 0; ci < HB_ARRAY_LEN(qc); ci++)
            for (int v = 0; v < 2; v++) {
                const fmt *f = fmts[fi];
                const qcase *q = &qc[ci];
                uint8_t probe;
                hb_tensor t0 = qcase_tensor(q, &probe, f->dt);
                const int64_t rows = hb_tensor_rows(&t0), cols = hb_tensor_cols(&t0), m = rows * cols;
                const int64_t bm = q->kind == HB_QUANT_TENSOR ? rows : q->kind == HB_QUANT_ROW ? 1 : q->bm;
                const int64_t bk = q->kind == HB_QUANT_BLOCK ? q->bk : cols;
                const int64_t ns = ((rows + bm - 1) / bm) * ((cols + bk - 1) / bk);
                float *xf = xmalloc((size_t)m * 4), *s1 = xmalloc((size_t)ns * 4), *s2 = xmalloc((size_t)ns * 4);
                float *s3 = xmalloc((size_t)ns * 4);
                uint8_t *q1 = xmalloc((size_t)m), *q2 = xmalloc((size_t)m), *q3 = xmalloc((size_t)m);
                const uint64_t seed = 100 + (uint64_t)(ci * 2 + v);
                CHECK(HB_OP(be, fill_random, .dst = qcase_tensor(q, xf, HB_F32), .seed = seed, .scale = fscale[v],
                            .offset = foff[v]) == HB_OK);
                int bad = 0;
                for (int64_t i = 0; i < m; i++) bad += f32_bits(xf[i]) != f32_bits(hb_rng_value(seed, (uint64_t)i, fscale[v], foff[v]));
                CHECK(HB_OP(be, convert, .dst = hb_tq(qcase_tensor(q, q1, f->dt), q->kind, q->bm, q->bk, s1),
                            .src = qcase_tensor(q, xf, HB_F32)) == HB_OK);
                CHECK_MSG(HB_OP(be, fill_random, .dst = hb_tq(qcase_tensor(q, q2, f->dt), q->kind, q->bm, q->bk, s2),
                                .seed = seed, .scale = fscale[v], .offset = foff[v]) == HB_OK, "%s", be->err);
                ref_quantise(f, xf, rows, cols, bm, bk, s3, q3);
                bad += memcmp(q1, q2, (size_t)m) != 0 || memcmp(s1, s2, (size_t)ns * 4) != 0;
                bad += memcmp(q3, q2, (size_t)m) != 0 || memcmp(s3, s2, (size_t)ns * 4) != 0;
                CHECK_MSG(bad == 0, "fill_random %s %s case %d: not fill + convert / the reference", f->name,
                          hb_qkind_name(q->kind), ci);
                free(xf), free(s1), free(s2), free(s3), free(q1), free(q2), free(q3);
            }

    /* the shared argument checks */
    float sc = 1.0f;
    uint16_t h[4];
    CHECK(HB_OP(be, convert, .dst = hb_tq(hb_t1(c8, HB_FP8_E4M3, 4), HB_QUANT_TENSOR, 0, 0, NULL),
                .src = hb_t1(x, HB_F32, 4)) == HB_ERR_INPUT); /* no scales */
    CHECK(HB_OP(be, convert, .dst = hb_tq(hb_t1(h, HB_BF16, 4), HB_QUANT_TENSOR, 0, 0, &sc),
                .src = hb_t1(x, HB_F32, 4)) == HB_ERR_INPUT); /* scales on a bf16 tensor */
    CHECK(HB_OP(be, convert, .dst = hb_tq(hb_t2(c8, HB_FP8_E4M3, 2, 2, 2), HB_QUANT_BLOCK, 0, 2, &sc),
                .src = hb_t1(x, HB_F32, 4)) == HB_ERR_INPUT); /* block 0 x 2 */
    CHECK(HB_OP(be, convert, .dst = hb_tq(hb_t1(c8, HB_FP8_E4M3, 4), HB_QUANT_TENSOR, 0, 0, &sc),
                .src = hb_tq(hb_t1(c8b, HB_FP8_E5M2, 4), HB_QUANT_TENSOR, 0, 0, &sc)) == HB_ERR_INPUT);
    CHECK(HB_OP(be, convert, .dst = hb_t1(c8, HB_FP8_E4M3, 5), .src = hb_t1(x, HB_F32, 4)) == HB_ERR_INPUT);
    CHECK(HB_OP(be, fill_random, .dst = hb_tq(hb_t1(c8, HB_FP8_E5M2, 4), HB_QUANT_ROW, 0, 0, NULL)) == HB_ERR_INPUT);
    free(x), free(y), free(c8), free(c8b);
}

/* ---- 4. fp8 matmul ---- */

typedef struct mm_case {
    int64_t M, N, K;
    hb_qkind wq;   /* none, tensor or block 128 x 128 */
    int a_fp8;     /* A stored in fp8 with its own scales (tensor, or 1 x 128 tiles) */
    int bias, pad;
    float beta;
} mm_case;

/* One case: returns the number of wrong elements. */
static int check_matmul_fp8(hb_backend *be, trng *r, const fmt *f, const mm_case *mc) {
    const int64_t M = mc->M, N = mc->N, K = mc->K, lda = K + (mc->pad ? 3 : 0), ldo = N + (mc->pad ? 2 : 0);
    const int64_t bm = mc->wq == HB_QUANT_BLOCK ? 128 : N, bk = mc->wq == HB_QUANT_BLOCK ? 128 : K;
    const int64_t nsw = ((N + bm - 1) / bm) * ((K + bk - 1) / bk);
    /* A's groups: per tensor with tensor/no w scales, 1 x bk tiles with blocks */
    const int64_t abm = mc->wq == HB_QUANT_BLOCK ? 1 : M, abk = bk;
    const int64_t nsa = ((M + abm - 1) / abm) * ((K + abk - 1) / abk);
    float *wf = xmalloc((size_t)(N * K) * 4), *ws = xmalloc((size_t)nsw * 4);
    float *af = xmalloc((size_t)(M * K) * 4), *a = xmalloc((size_t)(M * lda) * 4), *as = xmalloc((size_t)nsa * 4);
    uint8_t *w8 = xmalloc((size_t)(N * K)), *ac = xmalloc((size_t)(M * K)), *a8 = xmalloc((size_t)(M * lda));
    float *bias = xmalloc((size_t)N * 4), *out = xmalloc((size_t)(M * ldo) * 4), *out0 = xmalloc((size_t)(M * ldo) * 4);
    double *ad = xmalloc((size_t)(M * K) * 8), *wd = xmalloc((size_t)(N * K) * 8);
    /* weights whose blocks differ in magnitude by up to 2^9, a with tiles differing by 2^6 */
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            wf[n * K + k] = trng_f(r, -1.0f, 1.0f) * ldexpf(1.0f, (int)((n / 128) * 5 + (k / 128) * 4) % 10 - 4);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            af[m * K + k] = trng_f(r, -1.0f, 1.0f) * ldexpf(1.0f, (int)((k / 128) * 3 + m) % 7 - 2);
    for (int64_t n = 0; n < N; n++) bias[n] = trng_f(r, -1.0f, 1.0f);
    ref_quantise(f, wf, N, K, bm, bk, ws, w8);
    /* A as ops.h says: quantised to w's fp8 type in A's groups (an fp8 A: the same codes) */
    const fmt *af8 = f;
    ref_quantise(af8, af, M, K, abm, abk, as, ac);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < lda; k++) {
            a[m * lda + k] = k < K ? af[m * K + k] : NAN; /* padding must not be read */
            a8[m * lda + k] = k < K ? ac[m * K + k] : 0x7f;
        }
    const int64_t sca = (K + abk - 1) / abk, scw = (K + bk - 1) / bk;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) ad[m * K + k] = af8->v[ac[m * K + k]] * as[(m / abm) * sca + k / abk];
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            wd[n * K + k] = mc->wq == HB_QUANT_NONE ? f->v[w8[n * K + k]]
                                                    : f->v[w8[n * K + k]] * ws[(n / bm) * scw + k / bk];
    if (mc->wq == HB_QUANT_NONE) /* scale 1: the codes of w as they are (values within max) */
        for (int64_t i = 0; i < nsw; i++) ws[i] = 1.0f;
    for (int64_t i = 0; i < M * ldo; i++)
        out0[i] = (i % ldo) >= N ? 12345.0f : mc->beta == 0.0f ? NAN : trng_f(r, -1.0f, 1.0f);
    memcpy(out, out0, (size_t)(M * ldo) * 4);

    hb_tensor w = hb_t2(w8, f->dt, N, K, K);
    if (mc->wq != HB_QUANT_NONE) w = hb_tq(w, mc->wq, 128, 128, ws);
    hb_tensor at = mc->a_fp8 ? hb_tq(hb_t2(a8, f->dt, M, K, lda), mc->wq == HB_QUANT_BLOCK ? HB_QUANT_BLOCK : HB_QUANT_TENSOR,
                                     1, 128, as)
                             : hb_t2(a, HB_F32, M, K, lda);
    hb_status s = HB_OP(be, matmul, .out = hb_t2(out, HB_F32, M, N, ldo), .a = at, .w = w,
                        .bias = mc->bias ? hb_t1(bias, HB_F32, N) : (hb_tensor){0}, .beta = mc->beta);
    int bad = 0;
    if (s != HB_OK) {
        fprintf(stderr, "matmul %s failed: %s\n", f->name, be->err);
        bad = 1;
    }
    const double tol = (double)(K + 4) * 1.2e-7; /* f32 accumulation, relative to sum |a w| */
    for (int64_t m = 0; m < M && !bad; m++)
        for (int64_t n = 0; n < ldo; n++) {
            const float o = out[m * ldo + n];
            if (n >= N) {
                bad += f32_bits(o) != f32_bits(12345.0f);
                continue;
            }
            double ref = mc->bias ? bias[n] : 0.0, mag = fabs(ref);
            if (mc->beta != 0.0f) ref += (double)mc->beta * out0[m * ldo + n], mag += fabs((double)mc->beta * out0[m * ldo + n]);
            for (int64_t k = 0; k < K; k++) ref += ad[m * K + k] * wd[n * K + k], mag += fabs(ad[m * K + k] * wd[n * K + k]);
            if (!(fabs((double)o - ref) <= tol * mag + 1e-30)) {
                if (bad < 3)
                    fprintf(stderr, "matmul %s M=%lld N=%lld K=%lld w=%s A=%s beta=%g: out[%lld,%lld] = %.9g, ref %.9g\n",
                            f->name, (long long)M, (long long)N, (long long)K, hb_qkind_name(mc->wq),
                            mc->a_fp8 ? "fp8" : "f32", (double)mc->beta, (long long)m, (long long)n, (double)o, ref);
                bad++;
            }
        }
    free(wf), free(ws), free(af), free(a), free(as), free(w8), free(ac), free(a8), free(bias), free(out), free(out0);
    free(ad), free(wd);
    return bad;
}

static void test_matmul_fp8(hb_backend *be) {
    static const int64_t Ms[] = {1, 3, 8, 17, 64};
    static const struct { int64_t N, K; } NK[] = {{130, 200}, {67, 77}, {256, 300}};
    static const hb_qkind wqs[] = {HB_QUANT_TENSOR, HB_QUANT_BLOCK, HB_QUANT_NONE};
    const hb_cpu_isa detected = ((const hb_cpu_ctx *)be->ctx)->isa;
    trng r = {8088};
    for (int isa = HB_CPU_ISA_GENERIC; isa <= HB_CPU_ISA_AVX512; isa++) {
        if (hb_cpu_set_isa(be, (hb_cpu_isa)isa) != HB_OK) {
            fprintf(stderr, "note: %s kernels not testable on this CPU\n", hb_cpu_isa_name((hb_cpu_isa)isa));
            continue;
        }
        for (int fi = 0; fi < 2; fi++) {
            int bad = 0, cases = 0;
            for (int mi = 0; mi < HB_ARRAY_LEN(Ms); mi++)
                for (int si = 0; si < HB_ARRAY_LEN(NK); si++)
                    for (int qi = 0; qi < HB_ARRAY_LEN(wqs); qi++)
                        for (int a8 = 0; a8 < 2; a8++) {
                            const int v = cases++;
                            const mm_case mc = {Ms[mi], NK[si].N, NK[si].K, wqs[qi], a8, v % 3 == 1, v % 2,
                                                v % 4 == 3 ? 0.5f : 0.0f};
                            const int b = check_matmul_fp8(be, &r, fmts[fi], &mc) != 0;
                            if (b) fprintf(stderr, "  ^ isa %s\n", hb_cpu_isa_name((hb_cpu_isa)isa));
                            bad += b;
                        }
            CHECK_MSG(bad == 0, "%s: %d of %d fp8 %s matmul cases wrong", hb_cpu_isa_name((hb_cpu_isa)isa), bad, cases,
                      fmts[fi]->name);
        }
    }
    CHECK(hb_cpu_set_isa(be, detected) == HB_OK);

    /* NaN codes in w: the rows holding one are NaN, every other row is as it is without them
     * (the AVX kernels widen e4m3 codes through half precision, where a NaN code is a number,
     * and find NaN codes apart: in the main loop, the one-vector loop and the scalar tail) */
    for (int isa = HB_CPU_ISA_GENERIC; isa <= HB_CPU_ISA_AVX512; isa++) {
        if (hb_cpu_set_isa(be, (hb_cpu_isa)isa) != HB_OK) continue;
        for (int fi = 0; fi < 2; fi++)
            for (int qi = 0; qi < 2; qi++)
                for (int64_t M = 1; M <= 17; M += 8) { /* 1, 9 (GEMV), 17 (panels) */
                    enum { N = 6, K = 200 };
                    static const int64_t at[3][2] = {{1, 10}, {3, 150}, {4, 199}}; /* row, k */
                    uint8_t w8[N * K];
                    float ws[4] = {0.01f, 0.02f, 0.03f, 0.04f}, a[17 * K], o0[17 * N], o1[17 * N];
                    for (int64_t i = 0; i < N * K; i++) {
                        w8[i] = (uint8_t)(trng_u64(&r) % 256);
                        if (!isfinite(fmts[fi]->v[w8[i]])) w8[i] = 0x11; /* e5m2: no infinities either */
                    }
                    for (int64_t i = 0; i < M * K; i++) a[i] = trng_f(&r, -1.0f, 1.0f);
                    hb_tensor w = hb_tq(hb_t2(w8, fmts[fi]->dt, N, K, K), qi ? HB_QUANT_BLOCK : HB_QUANT_TENSOR, 128,
                                        128, ws);
                    CHECK(HB_OP(be, matmul, .out = hb_t2(o0, HB_F32, M, N, N), .a = hb_t2(a, HB_F32, M, K, K), .w = w) ==
                          HB_OK);
                    for (int j = 0; j < 3; j++) w8[at[j][0] * K + at[j][1]] = j % 2 ? 0xff : 0x7f;
                    CHECK(HB_OP(be, matmul, .out = hb_t2(o1, HB_F32, M, N, N), .a = hb_t2(a, HB_F32, M, K, K), .w = w) ==
                          HB_OK);
                    int bad = 0;
                    for (int64_t m = 0; m < M; m++)
                        for (int64_t n = 0; n < N; n++) {
                            const int nan_row = n == 1 || n == 3 || n == 4;
                            bad += nan_row ? !isnan(o1[m * N + n])
                                           : f32_bits(o1[m * N + n]) != f32_bits(o0[m * N + n]) || isnan(o0[m * N + n]);
                        }
                    CHECK_MSG(bad == 0, "%s %s %s M=%lld: %d outputs wrong with NaN codes in w",
                              hb_cpu_isa_name((hb_cpu_isa)isa), fmts[fi]->name, qi ? "block" : "tensor", (long long)M,
                              bad);
                }
    }
    CHECK(hb_cpu_set_isa(be, detected) == HB_OK);

    /* the shared checks: per-row w scales, unpaired A scales, A in another fp8 dtype */
    float sc[4] = {1, 1, 1, 1}, o[4];
    uint8_t w8[8] = {0}, a8[8] = {0};
    hb_tensor w = hb_tq(hb_t2(w8, HB_FP8_E4M3, 2, 4, 4), HB_QUANT_ROW, 0, 0, sc);
    CHECK(HB_OP(be, matmul, .out = hb_t2(o, HB_F32, 2, 2, 2), .a = hb_t2(o, HB_F32, 2, 4, 4), .w = w) == HB_ERR_INPUT);
    w = hb_tq(hb_t2(w8, HB_FP8_E4M3, 2, 4, 4), HB_QUANT_BLOCK, 2, 2, sc);
    hb_tensor a = hb_tq(hb_t2(a8, HB_FP8_E4M3, 1, 4, 4), HB_QUANT_TENSOR, 0, 0, sc);
    CHECK(HB_OP(be, matmul, .out = hb_t2(o, HB_F32, 1, 2, 2), .a = a, .w = w) == HB_ERR_INPUT);
    a = hb_tq(hb_t2(a8, HB_FP8_E5M2, 1, 4, 4), HB_QUANT_BLOCK, 1, 2, sc);
    CHECK(HB_OP(be, matmul, .out = hb_t2(o, HB_F32, 1, 2, 2), .a = a, .w = w) == HB_ERR_INPUT);
}

/* ---- 5. fp8 KV cache ---- */

static double bf16_round(double x) { return (double)hb_bf16_to_f32(hb_f32_to_bf16((float)x)); }

/* kv_store then attention with an fp8 cache (B, S, Hkv, D) and static scales sk, sv. */
static int check_kv_fp8(hb_backend *be, trng *r, const fmt *f, int64_t B, int64_t T, int64_t pos0, int64_t Hq,
                        int64_t Hkv, int64_t D, int64_t S) {
    const int64_t ld = (Hq + 2 * Hkv) * D + 3, ldo = Hq * D + 2, cw = Hkv * D, nc = B * S * cw;
    float *qkv = xmalloc((size_t)(B * T * ld) * 4), *out = xmalloc((size_t)(B * T * ldo) * 4);
    uint8_t *kc = xmalloc((size_t)nc), *vc = xmalloc((size_t)nc), *kc0 = xmalloc((size_t)nc), *vc0 = xmalloc((size_t)nc);
    double *p = xmalloc((size_t)S * 8), *o = xmalloc((size_t)D * 8);
    /* static scales: values of +-2 use most of the range (e5m2's max is far above) */
    float sk = 2.0f / 448.0f * 1.25f, sv = 2.0f / 448.0f;
    for (int64_t i = 0; i < B * T * ld; i++) qkv[i] = trng_f(r, -2.0f, 2.0f);
    qkv[Hq * D] = 1000.0f; /* saturates: +max */
    for (int64_t i = 0; i < nc; i++) { /* earlier context: any codes but NaN */
        kc[i] = (uint8_t)(trng_u64(r) % 256);
        vc[i] = (uint8_t)(trng_u64(r) % 256);
        if (code_is_nan(f, kc[i]) || fabs(f->v[kc[i]] * sk) > 4.0) kc[i] = 0x30;
        if (code_is_nan(f, vc[i]) || fabs(f->v[vc[i]] * sv) > 4.0) vc[i] = 0xb1;
    }
    memcpy(kc0, kc, (size_t)nc), memcpy(vc0, vc, (size_t)nc);
    for (int64_t i = 0; i < B * T * ldo; i++) out[i] = -5.0f;
    hb_tensor kt = hb_tq(hb_t4(kc, f->dt, B, S, Hkv, D), HB_QUANT_TENSOR, 0, 0, &sk);
    hb_tensor vt = hb_tq(hb_t4(vc, f->dt, B, S, Hkv, D), HB_QUANT_TENSOR, 0, 0, &sv);
    int bad = 0;
    hb_status s = HB_OP(be, kv_store, .k_cache = kt, .v_cache = vt, .k = hb_t2(qkv + Hq * D, HB_F32, B * T, cw, ld),
                        .v = hb_t2(qkv + (Hq + Hkv) * D, HB_F32, B * T, cw, ld), .B = B, .T = T, .pos0 = pos0);
    if (s != HB_OK) fprintf(stderr, "kv_store %s: %s\n", f->name, be->err), bad++;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < S; j++)
            for (int64_t c = 0; c < cw; c++) {
                const int64_t ci = (b * S + j) * cw + c;
                if (j >= pos0 && j < pos0 + T) { /* the code of x / scale */
                    const float *row = qkv + (b * T + j - pos0) * ld;
                    bad += kc[ci] != ref_encode(f, ref_quotient(row[Hq * D + c], sk)) ||
                           vc[ci] != ref_encode(f, ref_quotient(row[(Hq + Hkv) * D + c], sv));
                } else {
                    bad += kc[ci] != kc0[ci] || vc[ci] != vc0[ci];
                }
            }
    if (bad) fprintf(stderr, "kv_store %s B=%lld T=%lld pos0=%lld: %d wrong\n", f->name, (long long)B, (long long)T,
                     (long long)pos0, bad);

    s = HB_OP(be, attention, .out = hb_t2(out, HB_F32, B * T, Hq * D, ldo), .q = hb_t2(qkv, HB_F32, B * T, Hq * D, ld),
              .k_cache = kt, .v_cache = vt, .B = B, .T = T, .pos0 = pos0);
    if (s != HB_OK) fprintf(stderr, "attention %s: %s\n", f->name, be->err), bad++;
    /* the reference: s_j = sk (q_bf16 . k_code) / sqrt(D), p = exp(s - max),
     * o = sv (bf16(p) . v_code) / sum(p); tight: f32 rounding of the sums; a numerator p
     * computed in f32 may round to the other bf16 neighbour: at most 2% of rows (or one)
     * may be off by that (2^-8 of max |v|) */
    double vmax = 0.0;
    for (int64_t i = 0; i < nc; i++) vmax = fmax(vmax, fabs(f->v[vc[i]] * sv));
    int rows = 0, flipped = 0;
    for (int64_t b = 0; b < B && !bad; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < Hq; h++) {
                const int64_t kvh = h / (Hq / Hkv), L = pos0 + t + 1;
                const float *q = qkv + (b * T + t) * ld + h * D;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < L; j++) {
                    double dot = 0.0;
                    for (int64_t d = 0; d < D; d++) dot += bf16_round(q[d]) * f->v[kc[((b * S + j) * Hkv + kvh) * D + d]];
                    p[j] = (double)sk * dot / sqrt((double)D);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j < L; j++) sum += p[j] = exp(p[j] - mx);
                for (int64_t d = 0; d < D; d++) {
                    o[d] = 0.0;
                    for (int64_t j = 0; j < L; j++) o[d] += bf16_round(p[j]) * f->v[vc[((b * S + j) * Hkv + kvh) * D + d]];
                    o[d] *= (double)sv / sum;
                }
                int tight = 0, loose = 0;
                for (int64_t d = 0; d < D; d++) {
                    const double got = out[(b * T + t) * ldo + h * D + d], e = fabs(got - o[d]);
                    const double tt = 2e-5 * vmax + 2e-6 * fabs(o[d]);
                    tight += !(e <= tt);
                    loose += !(e <= tt + 2.0 * 0x1p-8 * vmax);
                    if (!(e <= tt + 2.0 * 0x1p-8 * vmax) && loose <= 1)
                        fprintf(stderr, "attention %s b=%lld t=%lld h=%lld d=%lld: %.9g vs %.9g\n", f->name, (long long)b,
                                (long long)t, (long long)h, (long long)d, got, o[d]);
                }
                bad += loose;
                rows++;
                flipped += tight > 0;
                for (int64_t c = Hq * D; c < ldo; c++) bad += out[(b * T + t) * ldo + c] != -5.0f;
            }
    if (flipped > 1 && flipped * 50 > rows) {
        fprintf(stderr, "attention %s: %d of %d rows off by more than f32 rounding\n", f->name, flipped, rows);
        bad++;
    }
    free(qkv), free(out), free(kc), free(vc), free(kc0), free(vc0), free(p), free(o);
    return bad;
}

static void test_kv_fp8(hb_backend *be) {
    trng r = {1717};
    for (int fi = 0; fi < 2; fi++) {
        const fmt *f = fmts[fi];
        int bad = 0;
        bad += check_kv_fp8(be, &r, f, 2, 3, 5, 4, 2, 8, 10) != 0;    /* GQA, context before */
        bad += check_kv_fp8(be, &r, f, 1, 5, 0, 3, 3, 7, 5) != 0;     /* prefill, odd D, S full */
        bad += check_kv_fp8(be, &r, f, 3, 1, 40, 8, 1, 64, 64) != 0;  /* MQA decode */
        bad += check_kv_fp8(be, &r, f, 2, 17, 3, 6, 2, 33, 21) != 0;  /* odd everything */
        CHECK_MSG(bad == 0, "%s: %d fp8 kv_store/attention cases wrong", f->name, bad);
    }
    /* an fp8 cache needs a per-tensor scale: none, or per row, is an input error */
    uint8_t c[64] = {0};
    float x[64] = {0}, sc = 1.0f;
    hb_tensor k = hb_t4(c, HB_FP8_E4M3, 1, 4, 2, 4);
    CHECK(HB_OP(be, kv_store, .k_cache = k, .v_cache = k, .k = hb_t2(x, HB_F32, 1, 8, 8), .v = hb_t2(x, HB_F32, 1, 8, 8),
                .B = 1, .T = 1, .pos0 = 0) == HB_ERR_INPUT);
    hb_tensor kr = hb_tq(k, HB_QUANT_ROW, 0, 0, &sc);
    CHECK(HB_OP(be, attention, .out = hb_t2(x, HB_F32, 1, 8, 8), .q = hb_t2(x, HB_F32, 1, 8, 8), .k_cache = kr,
                .v_cache = kr, .B = 1, .T = 1, .pos0 = 0) == HB_ERR_INPUT);
}

/* ---- the pre-dispatch probe (harness/worker.c): a device without an fp8 matmul or an fp8 KV
 * cache refuses the case with an input error that names it, before anything runs ---- */
static hb_status (*cpu_matmul)(hb_backend *, const hb_matmul_args *);
static hb_status (*cpu_kv_store)(hb_backend *, const hb_kv_store_args *);
static hb_status no_fp8_matmul(hb_backend *be, const hb_matmul_args *a) {
    if (hb_dtype_is_fp8(a->w.dt)) {
        snprintf(be->err, sizeof be->err, "test: no fp8 tensor cores");
        return HB_ERR_UNSUPPORTED;
    }
    return cpu_matmul(be, a);
}
static hb_status no_block_matmul(hb_backend *be, const hb_matmul_args *a) {
    if (a->w.q.kind == HB_QUANT_BLOCK) {
        snprintf(be->err, sizeof be->err, "test: no block-scaled GEMM");
        return HB_ERR_UNSUPPORTED;
    }
    return cpu_matmul(be, a);
}
static hb_status no_fp8_kv(hb_backend *be, const hb_kv_store_args *a) {
    if (hb_dtype_is_fp8(a->k_cache.dt)) {
        snprintf(be->err, sizeof be->err, "test: no fp8 KV cache");
        return HB_ERR_UNSUPPORTED;
    }
    return cpu_kv_store(be, a);
}

static void test_support_probe(hb_backend *be) {
    const hb_backend_ops *orig = be->ops;
    hb_backend_ops ops = *orig;
    cpu_matmul = orig->matmul;
    cpu_kv_store = orig->kv_store;
    hb_worker w = {.be = be};
    hb_model tiny;
    CHECK(hb_model_find("tiny", &tiny, NULL) == HB_OK);
    hb_case c[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        c[i].id = i;
        c[i].model = tiny;
        c[i].batch = 1, c[i].prompt = 4, c[i].gen = 2, c[i].quant_block = 32;
    }
    c[0].workload = HB_WL_DECODE, c[0].dtype = HB_BF16;                              /* no fp8 */
    c[1].workload = HB_WL_DECODE, c[1].dtype = HB_FP8_E4M3, c[1].quant = HB_QUANT_BLOCK;
    c[2].workload = HB_WL_PREFILL, c[2].dtype = HB_BF16, c[2].kv_dtype = HB_KV_FP8;
    for (int i = 0; i < 3; i++) CHECK(hb_case_resolve(&c[i], NULL) == HB_OK);
    hb_err err = {{0}};
    CHECK(hb_worker_check_support(&w, c, 3, &err) == HB_OK); /* the CPU has everything */
    const struct { hb_status (*mm)(hb_backend *, const hb_matmul_args *);
                   hb_status (*kv)(hb_backend *, const hb_kv_store_args *); int bad_case; const char *why; } t[] = {
        {no_fp8_matmul, NULL, 1, "test: no fp8 tensor cores"},
        {no_block_matmul, NULL, 1, "test: no block-scaled GEMM"},
        {NULL, no_fp8_kv, 2, "test: no fp8 KV cache"},
    };
    for (int i = 0; i < HB_ARRAY_LEN(t); i++) {
        ops.matmul = t[i].mm ? t[i].mm : orig->matmul;
        ops.kv_store = t[i].kv ? t[i].kv : orig->kv_store;
        be->ops = &ops;
        memset(&err, 0, sizeof err);
        hb_status st = hb_worker_check_support(&w, c, 3, &err);
        char want[64];
        snprintf(want, sizeof want, "case %d (", t[i].bad_case);
        CHECK_MSG(st == HB_ERR_INPUT && strstr(err.msg, want) && strstr(err.msg, t[i].why) &&
                      strstr(err.msg, "does not support"),
                  "probe %d: status %d, '%s'", i, (int)st, err.msg);
        CHECK(hb_worker_check_support(&w, c, 1, &err) == HB_OK); /* the bf16 case alone is fine */
    }
    be->ops = orig;
}

int main(void) {
    fmt_init(&E4M3);
    fmt_init(&E5M2);
    for (int fi = 0; fi < 2; fi++) {
        test_decode(fmts[fi]);
        test_encode_sweep(fmts[fi]);
        test_encode_ties(fmts[fi]);
    }
    hb_err err = {{0}};
    hb_backend *be = NULL;
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", err.msg);
        return 1;
    }
    test_quantise(be);
    test_quotient_rule(be);
    test_casts_and_fill(be);
    test_matmul_fp8(be);
    test_kv_fp8(be);
    test_support_probe(be);
    hb_backend_close(be);
    HB_TEST_END();
}
