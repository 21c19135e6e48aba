/* test_cpu_ops.c - the CPU backend, op by op, against naive double-precision references.
 *
 * The CPU backend is the specification the GPU backends are tested against, so it is itself
 * checked against code written here, independently: plain loops in double on fresh random
 * inputs from the test's own generator (not the backend's fill), at odd sizes that are not
 * multiples of any vector width. matmul runs every GEMV kernel the CPU can execute (portable,
 * AVX2, AVX-512) on f32, bf16 and f16 weights; the bf16/f16 reference uses the dequantised
 * weights, so the tolerance stays that of f32 accumulation. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
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

static void trng_fill(trng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = trng_f(r, lo, hi);
}

static float *fvec(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_cpu_ops: out of memory\n");
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

/* Independent decoders: the value of a 16-bit pattern from the IEEE definitions, in double. */
static double f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static double bf16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
    return s ? -v : v;
}

/* Stores f32 values as weights of dtype dt (into w) and returns the dequantised values in deq. */
static void make_weights(hb_dtype dt, const float *src, int64_t n, void *w, float *deq) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == HB_F32) {
            ((float *)w)[i] = src[i];
            deq[i] = src[i];
        } else if (dt == HB_BF16) {
            uint16_t h = hb_f32_to_bf16(src[i]);
            ((uint16_t *)w)[i] = h;
            deq[i] = (float)bf16_value(h);
        } else {
            uint16_t h = hb_f32_to_f16(src[i]);
            ((uint16_t *)w)[i] = h;
            deq[i] = (float)f16_value(h);
        }
    }
}

static const hb_dtype wdts[3] = {HB_F32, HB_BF16, HB_F16};

/* ---- registry, device, memory, events ---- */

static void test_registry(void) {
    const hb_backend_desc *list = NULL;
    int n = hb_backend_registry(&list);
    CHECK(n >= 3);
    int seen = 0;
    for (int i = 0; i < n; i++)
        seen |= (strcmp(list[i].name, "cpu") == 0) | (strcmp(list[i].name, "cuda") == 0) << 1 |
                (strcmp(list[i].name, "hip") == 0) << 2;
    CHECK(seen == 7);
    CHECK(hb_backend_find("cpu") != NULL);
    CHECK(hb_backend_find("opencl") == NULL);
    CHECK(hb_backend_find(NULL) == NULL);

    hb_err err = {{0}};
    CHECK(hb_backend_find("cpu")->count(&err) == 1);
#ifndef HB_HAVE_CUDA
    err.msg[0] = '\0';
    CHECK(hb_backend_find("cuda")->count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "module not built (configure with HB_CUDA=ON)") != NULL, "%s", err.msg);
    hb_backend sentinel, *be = &sentinel; // must come back NULL
    CHECK(hb_backend_open("cuda", 0, &be, &err) == HB_ERR_UNSUPPORTED);
    CHECK(be == NULL);
    CHECK_MSG(strstr(err.msg, "cuda") && strstr(err.msg, "HB_CUDA=ON"), "%s", err.msg);
#endif
#ifndef HB_HAVE_HIP
    CHECK(hb_backend_find("hip")->count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "HB_HIP=ON") != NULL, "%s", err.msg);
#endif
    hb_backend *be2 = NULL;
    CHECK(hb_backend_open("nosuch", 0, &be2, &err) == HB_ERR_INPUT);
    CHECK_MSG(strstr(err.msg, "nosuch") != NULL, "%s", err.msg);
    CHECK(hb_backend_open("cpu", 1, &be2, &err) == HB_ERR_INPUT);
    CHECK(be2 == NULL);
    CHECK(hb_backend_open("cpu", -1, &be2, NULL) == HB_ERR_INPUT);
    hb_backend_close(NULL); // no-op
}

static void test_device(hb_backend *be) {
    const hb_device_info *in = &be->info;
    CHECK(be->api_version == HB_BACKEND_API_VERSION);
    CHECK_STR(in->backend, "cpu");
    CHECK_STR(in->gemm_impl, "openblas");
    CHECK_STR(in->pci_bus_id, "");
    CHECK(in->vendor[0] != '\0');
    CHECK(in->name[0] != '\0');
    CHECK(in->driver[0] != '\0');
    CHECK_MSG(strncmp(in->runtime, "OpenBLAS", 8) == 0 && strchr(in->runtime, '('), "%s",
              in->runtime);
    CHECK(in->mem_bytes > ((int64_t)64 << 20));
    CHECK(in->n_compute_units >= 1);
    CHECK(in->warp_size == 1);
    CHECK(in->n_threads >= 1);

    int64_t fr = -1, tot = -1;
    CHECK(be->ops->mem_info(be, &fr, &tot) == HB_OK);
    CHECK(tot == in->mem_bytes);
    CHECK(fr > 0 && fr <= tot);

    // alloc: 64-byte aligned, 0 bytes is a valid pointer, failure is reported
    const size_t sizes[] = {0, 1, 3, 100, 4096, 5 << 20};
    for (int i = 0; i < HB_ARRAY_LEN(sizes); i++) {
        void *p = NULL;
        CHECK(be->ops->alloc(be, sizes[i], &p) == HB_OK);
        CHECK(p != NULL && ((uintptr_t)p % 64) == 0);
        if (p && sizes[i]) memset(p, 0xab, sizes[i]);
        be->ops->free(be, p);
    }
    be->ops->free(be, NULL);
    void *huge = (void *)1;
    be->err[0] = '\0';
    CHECK(be->ops->alloc(be, SIZE_MAX / 2, &huge) == HB_ERR_NOMEM);
    CHECK(huge == NULL);
    CHECK(be->err[0] != '\0');

    // upload / download / copy are byte copies
    char src[37], mid[37], dst[37];
    for (int i = 0; i < 37; i++) src[i] = (char)(i * 7 + 1);
    CHECK(be->ops->upload(be, mid, src, 37) == HB_OK);
    CHECK(be->ops->copy(be, dst, mid, 37) == HB_OK);
    CHECK(memcmp(src, dst, 37) == 0);
    memset(dst, 0, 37);
    CHECK(be->ops->download(be, dst, mid, 37) == HB_OK);
    CHECK(memcmp(src, dst, 37) == 0);
    CHECK(be->ops->sync(be) == HB_OK);

    // events time host intervals
    hb_event *e0 = NULL, *e1 = NULL;
    CHECK(be->ops->event_create(be, &e0) == HB_OK);
    CHECK(be->ops->event_create(be, &e1) == HB_OK);
    CHECK(be->ops->event_record(be, e0) == HB_OK);
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
    CHECK(be->ops->event_record(be, e1) == HB_OK);
    double sec = -1.0;
    CHECK(be->ops->event_elapsed(be, e0, e1, &sec) == HB_OK);
    CHECK_MSG(sec >= 0.0029 && sec < 1.0, "elapsed %g s", sec);
    be->ops->event_destroy(be, e0);
    be->ops->event_destroy(be, e1);

    // a NULL op is reported as unsupported, never faked
    hb_backend_ops ops = *be->ops;
    ops.matmul = NULL;
    hb_backend fake = *be;
    fake.ops = &ops;
    float x = 0.0f;
    CHECK(HB_OP(&fake, matmul, .out = hb_t2(&x, HB_F32, 1, 1, 1), .a = hb_t2(&x, HB_F32, 1, 1, 1),
                .w = hb_t2(&x, HB_F32, 1, 1, 1)) == HB_ERR_UNSUPPORTED);
    CHECK_STR(fake.err, "op 'matmul' is not supported by backend 'cpu'");
}

/* ---- dtypes ---- */

/* bf16 round-to-nearest-even, on hand-picked values (f32 bits in, bf16 bits expected). */
static void test_bf16_cases(void) {
    static const struct { uint32_t in; uint16_t out; } c[] = {
        {0x3f800000u, 0x3f80}, // 1.0
        {0x3f808000u, 0x3f80}, // 1 + 2^-8: tie, even stays
        {0x3f818000u, 0x3f82}, // tie, odd rounds up
        {0x3f808001u, 0x3f81}, // just above the tie
        {0x3f807fffu, 0x3f80}, // just below the tie
        {0x80000000u, 0x8000}, // -0
        {0x7f800000u, 0x7f80}, // inf
        {0xff800000u, 0xff80}, // -inf
        {0x7f7fffffu, 0x7f80}, // FLT_MAX rounds to inf
        {0x7f7f7fffu, 0x7f7f}, // largest that stays finite
        {0x00000001u, 0x0000}, // smallest f32 subnormal
        {0x00008000u, 0x0000}, // subnormal tie to even (0)
        {0x00018000u, 0x0002}, // subnormal tie to even (2)
        {0x007fffffu, 0x0080}, // largest subnormal rounds to the smallest normal
        {0x80010000u, 0x8001}, // negative subnormal, exact
        {0xc0490fdbu, 0xc049}, // -pi
    };
    for (int i = 0; i < HB_ARRAY_LEN(c); i++) {
        uint16_t h = hb_f32_to_bf16(bits_f32(c[i].in));
        CHECK_MSG(h == c[i].out, "bf16(0x%08x) = 0x%04x, expected 0x%04x", c[i].in, h, c[i].out);
    }
    uint16_t n = hb_f32_to_bf16(NAN);
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0); // still a NaN
    n = hb_f32_to_bf16(bits_f32(0x7f800001u));          // NaN whose payload is in the low bits
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
}

static void test_f16_cases(void) {
    static const struct { float in; uint16_t out; } c[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.1f, 0x2e66},
        {65504.0f, 0x7bff},           // largest finite
        {65519.99f, 0x7bff},          // below the midpoint to inf
        {65520.0f, 0x7c00},           // midpoint: ties to even = inf
        {1e6f, 0x7c00},
        {-1e6f, 0xfc00},
        {0x1p-14f, 0x0400},           // smallest normal
        {0x1p-24f, 0x0001},           // smallest subnormal
        {0x1p-25f, 0x0000},           // half of it: tie to even (0)
        {0x1.000002p-25f, 0x0001},    // just above the tie
        {0x3p-25f, 0x0002},           // 1.5 x smallest: tie to even (2)
        {0x1p-26f, 0x0000},
        {0x1.ffcp-15f, 0x0400},       // largest subnormal + half: rounding carries into the exponent
        {1.0f + 0x1p-11f, 0x3c00},    // tie, even stays
        {1.0f + 0x3p-11f, 0x3c02},    // tie, odd rounds up
        {-0.0f, 0x8000},
    };
    for (int i = 0; i < HB_ARRAY_LEN(c); i++) {
        uint16_t h = hb_f32_to_f16(c[i].in);
        CHECK_MSG(h == c[i].out, "f16(%a) = 0x%04x, expected 0x%04x", (double)c[i].in, h, c[i].out);
    }
    CHECK(hb_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(hb_f32_to_f16(-INFINITY) == 0xfc00);
    uint16_t n = hb_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
}

/* Every 16-bit pattern decodes to the IEEE value, and every non-NaN one round-trips. */
static void test_dtype_exhaustive(void) {
    int bad_f16 = 0, bad_bf16 = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t h = (uint16_t)u;
        double v16 = f16_value(h), vb = bf16_value(h);
        float f16 = hb_f16_to_f32(h), fb = hb_bf16_to_f32(h);
        if (isnan(v16)) {
            bad_f16 += !isnan(f16);
        } else {
            bad_f16 += (double)f16 != v16 || !signbit(f16) != !signbit(v16);
            bad_f16 += hb_f32_to_f16(f16) != h;
        }
        if (isnan(vb)) {
            bad_bf16 += !isnan(fb);
        } else {
            bad_bf16 += (double)fb != vb || !signbit(fb) != !signbit(vb);
            bad_bf16 += hb_f32_to_bf16(fb) != h;
        }
    }
    CHECK_MSG(bad_f16 == 0, "%d f16 patterns wrong", bad_f16);
    CHECK_MSG(bad_bf16 == 0, "%d bf16 patterns wrong", bad_bf16);
}

/* On random f32 of every magnitude, the conversion picks the nearest 16-bit value, ties to even. */
static void test_dtype_nearest(void) {
    trng r = {0x1234567u};
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        // f16: exponents from deep subnormal to overflow; bf16: the whole f32 range
        float x16 = ldexpf(trng_f(&r, 1.0f, 2.0f), (int)(trng_u64(&r) % 48) - 30);
        if (trng_u64(&r) & 1) x16 = -x16;
        uint16_t h = hb_f32_to_f16(x16);
        double v = f16_value(h), d = fabs((double)x16 - v);
        if (isinf(v)) {
            bad += fabs((double)x16) < 65520.0;
        } else {
            for (int s = -1; s <= 1; s += 2) { // neighbours in magnitude
                uint16_t nb = (uint16_t)(h + s);
                if ((h & 0x7fff) == 0 && s < 0) continue;
                double vn = f16_value(nb);
                if (isnan(vn) || isinf(vn)) continue;
                double dn = fabs((double)x16 - vn);
                bad += dn < d || (dn == d && (h & 1));
            }
        }
        uint32_t bits = (uint32_t)trng_u64(&r);
        float xb = bits_f32(bits);
        if (isnan(xb) || isinf(xb)) continue;
        uint16_t b = hb_f32_to_bf16(xb);
        double vb = bf16_value(b), db = fabs((double)xb - vb);
        if (isinf(vb)) {
            bad += (f32_bits(xb) & 0x7fffffffu) < 0x7f7f8000u;
        } else {
            for (int s = -1; s <= 1; s += 2) {
                uint16_t nb = (uint16_t)(b + s);
                if ((b & 0x7fff) == 0 && s < 0) continue;
                double vn = bf16_value(nb);
                if (isnan(vn) || isinf(vn)) continue;
                double dn = fabs((double)xb - vn);
                bad += dn < db || (dn == db && (b & 1));
            }
        }
    }
    CHECK_MSG(bad == 0, "%d conversions not round-to-nearest-even", bad);
}

static void test_convert(hb_backend *be) {
    enum { n = 1003 };
    trng r = {99};
    float *x = fvec(n), *y = fvec(n);
    uint16_t *h = malloc(n * 2), *g = malloc(n * 2);
    trng_fill(&r, x, n, -70000.0f, 70000.0f);
    for (int i = 0; i < n; i += 5) x[i] *= 1e-9f; // small and subnormal f16 values too
    x[1] = INFINITY;
    x[2] = -0.0f;

    CHECK(HB_OP(be, convert, .dst = hb_t1(h, HB_BF16, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += h[i] != hb_f32_to_bf16(x[i]);
    CHECK(HB_OP(be, convert, .dst = hb_t1(y, HB_F32, n), .src = hb_t1(h, HB_BF16, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += f32_bits(y[i]) != f32_bits(hb_bf16_to_f32(h[i]));
    CHECK(HB_OP(be, convert, .dst = hb_t1(g, HB_F16, n), .src = hb_t1(h, HB_BF16, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += g[i] != hb_f32_to_f16(hb_bf16_to_f32(h[i]));
    CHECK(HB_OP(be, convert, .dst = hb_t1(h, HB_F16, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += h[i] != hb_f32_to_f16(x[i]);
    CHECK(HB_OP(be, convert, .dst = hb_t1(y, HB_F32, n), .src = hb_t1(h, HB_F16, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += f32_bits(y[i]) != f32_bits(hb_f16_to_f32(h[i]));
    CHECK(HB_OP(be, convert, .dst = hb_t1(g, HB_BF16, n), .src = hb_t1(h, HB_F16, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += g[i] != hb_f32_to_bf16(hb_f16_to_f32(h[i]));
    CHECK(HB_OP(be, convert, .dst = hb_t1(y, HB_F32, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
    bad += memcmp(x, y, n * sizeof(float)) != 0;
    CHECK_MSG(bad == 0, "%d converted values differ", bad);
    /* fp8 without scales: the saturating cast (the conversions are checked in test_fp8) */
    uint8_t *c8 = malloc(n);
    CHECK(HB_OP(be, convert, .dst = hb_t1(c8, HB_FP8_E4M3, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
    bad = 0;
    for (int i = 0; i < n; i++) bad += c8[i] != hb_f32_to_e4m3(x[i]);
    CHECK(HB_OP(be, convert, .dst = hb_t1(c8, HB_FP8_E5M2, n), .src = hb_t1(x, HB_F32, n)) == HB_OK);
    for (int i = 0; i < n; i++) bad += c8[i] != hb_f32_to_e5m2(x[i]);
    CHECK_MSG(bad == 0, "%d fp8 casts differ", bad);
    /* the shared checks: element counts differ, a strided operand */
    CHECK(HB_OP(be, convert, .dst = hb_t1(y, HB_F32, n - 1), .src = hb_t1(x, HB_F32, n)) == HB_ERR_INPUT);
    CHECK(HB_OP(be, convert, .dst = hb_t2(y, HB_F32, 2, 3, 4), .src = hb_t1(x, HB_F32, 6)) == HB_ERR_INPUT);
    free(c8);
    free(x), free(y), free(h), free(g);
}

/* ---- generators ---- */

static void test_fill(hb_backend *be) {
    enum { n = 1 << 18 }; // above the parallel threshold: thread layout must not matter
    float *a = fvec(n), *b = fvec(n);
    uint16_t *h = malloc(n * 2), *h2 = malloc(n * 2);
    int bad = 0, same = 0, zeros = 0;

    CHECK(HB_OP(be, fill_random, .dst = hb_t1(a, HB_F32, n), .seed = 42, .scale = 0.5f, .offset = 0.25f) == HB_OK);
    for (int i = 0; i < n; i++) bad += a[i] != hb_rng_value(42, (uint64_t)i, 0.5f, 0.25f);
    CHECK_MSG(bad == 0, "%d values differ from hb_rng_value", bad);
    double mean = 0.0;
    float lo = 1e30f, hi = -1e30f;
    for (int i = 0; i < n; i++) {
        mean += a[i];
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    mean /= n;
    CHECK_NEAR(mean, 0.25, 0.005);
    CHECK(lo > -0.25f && lo < -0.24f && hi < 0.75f && hi > 0.74f);

    // same seed, same values; another seed, other values
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(b, HB_F32, n), .seed = 42, .scale = 0.5f, .offset = 0.25f) == HB_OK);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0);
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(b, HB_F32, n), .seed = 43, .scale = 0.5f, .offset = 0.25f) == HB_OK);
    for (int i = 0; i < n; i++) same += a[i] == b[i];
    CHECK_MSG(same < n / 1000, "%d of %d equal across seeds", same, n);

    // never exactly zero (offset 0): f32 and bf16
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(a, HB_F32, n), .seed = 7, .scale = 1.0f) == HB_OK);
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(h, HB_BF16, n), .seed = 7, .scale = 1.0f) == HB_OK);
    for (int i = 0; i < n; i++) zeros += a[i] == 0.0f || (h[i] & 0x7fff) == 0;
    CHECK_MSG(zeros == 0, "%d zeros", zeros);
    // bf16 / f16 values are the cast of the f32 ones
    bad = 0;
    for (int i = 0; i < n; i++) bad += h[i] != hb_f32_to_bf16(a[i]);
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(h2, HB_F16, n), .seed = 7, .scale = 1.0f) == HB_OK);
    for (int i = 0; i < n; i++) bad += h2[i] != hb_f32_to_f16(a[i]);
    CHECK_MSG(bad == 0, "%d 16-bit values are not the cast of the f32 fill", bad);
    /* fp8 without scales: the cast of the f32 values (quantised fills: test_fp8) */
    uint8_t *c8 = (uint8_t *)h;
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(c8, HB_FP8_E4M3, n), .seed = 7, .scale = 1.0f) == HB_OK);
    bad = 0;
    for (int i = 0; i < n; i++) bad += c8[i] != hb_f32_to_e4m3(a[i]);
    CHECK_MSG(bad == 0, "%d fp8 values are not the cast of the f32 fill", bad);
    CHECK(HB_OP(be, fill_random, .dst = hb_t2(a, HB_F32, 4, 4, 8), .seed = 7) == HB_ERR_INPUT); /* strided */

    // tokens: in range, as specified, all values hit
    int32_t *tok = malloc(n * sizeof *tok);
    CHECK(HB_OP(be, fill_tokens, .dst = tok, .n = n, .seed = 5, .vocab = 50257) == HB_OK);
    bad = 0;
    for (int i = 0; i < n; i++)
        bad += tok[i] < 0 || tok[i] >= 50257 || (uint64_t)tok[i] != hb_rng_u64(5, (uint64_t)i) % 50257;
    CHECK(bad == 0);
    int cnt[7] = {0};
    CHECK(HB_OP(be, fill_tokens, .dst = tok, .n = 7000, .seed = 6, .vocab = 7) == HB_OK);
    for (int i = 0; i < 7000; i++) cnt[tok[i]]++;
    for (int v = 0; v < 7; v++) CHECK_MSG(cnt[v] > 850 && cnt[v] < 1150, "token %d: %d", v, cnt[v]);
    CHECK(HB_OP(be, fill_tokens, .dst = tok, .n = 10, .seed = 6, .vocab = 0) == HB_ERR_INPUT);
    free(tok);
    free(a), free(b), free(h), free(h2);
}

/* ---- matmul ---- */

/* out (M, N) rows ldo apart = beta * out + a (M, K; lda) @ w (N, K)^T + bias, in double. */
static void ref_matmul(double *ref, double *mag, const float *out0, int64_t ldo, const float *a,
                       int64_t lda, const float *w, const float *bias, int64_t M, int64_t N,
                       int64_t K, float beta) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0.0, g = 0.0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)a[m * lda + k] * w[n * K + k];
                g += fabs((double)a[m * lda + k] * w[n * K + k]);
            }
            if (bias) s += bias[n], g += fabs(bias[n]);
            if (beta != 0.0f) s += (double)beta * out0[m * ldo + n], g += fabs(beta * out0[m * ldo + n]);
            ref[m * N + n] = s;
            mag[m * N + n] = g;
        }
}

/* One matmul case; returns the number of wrong elements. */
/* typed: A stored in dt too (adt = wdt), the reference on its exact values */
static int check_matmul(hb_backend *be, trng *r, hb_dtype dt, int64_t M, int64_t N, int64_t K,
                        int64_t lda, int64_t ldo, int use_bias, float beta, int typed) {
    float *a = fvec(M * lda), *wsrc = fvec(N * K), *wdeq = fvec(N * K), *bias = fvec(N);
    float *out = fvec(M * ldo), *out0 = fvec(M * ldo);
    void *w = malloc((size_t)(N * K) * 4 + 4), *at = malloc((size_t)(M * lda) * 4 + 4);
    double *ref = malloc((size_t)(M * N) * sizeof(double)), *mag = malloc((size_t)(M * N) * sizeof(double));
    trng_fill(r, a, M * lda, -1.0f, 1.0f);
    if (typed) make_weights(dt, a, M * lda, at, a); /* at in dt, a its exact value */
    trng_fill(r, wsrc, N * K, -1.0f, 1.0f);
    trng_fill(r, bias, N, -1.0f, 1.0f);
    make_weights(dt, wsrc, N * K, w, wdeq);
    for (int64_t i = 0; i < M * ldo; i++)
        out0[i] = (i % ldo) >= N ? 12345.0f           // padding: must stay untouched
                  : beta == 0.0f ? NAN                // poison: beta = 0 must overwrite it
                                 : trng_f(r, -1.0f, 1.0f);
    memcpy(out, out0, (size_t)(M * ldo) * sizeof(float));
    ref_matmul(ref, mag, out0, ldo, a, lda, wdeq, use_bias ? bias : NULL, M, N, K, beta);

    int bad = 0;
    hb_status s = HB_OP(be, matmul, .out = hb_t2(out, HB_F32, M, N, ldo),
                        .a = hb_t2(typed ? at : a, typed ? dt : HB_F32, M, K, lda), .w = hb_t2(w, dt, N, K, K),
                        .bias = use_bias ? hb_t1(bias, HB_F32, N) : (hb_tensor){0}, .beta = beta);
    if (s != HB_OK) {
        fprintf(stderr, "matmul failed: %s\n", be->err);
        bad = 1;
    }
    const double tol = (double)(K + 4) * 1.2e-7; // f32 accumulation bound, relative to sum |a w|
    for (int64_t m = 0; m < M && !bad; m++)
        for (int64_t i = 0; i < ldo; i++) {
            float o = out[m * ldo + i];
            if (i >= N) {
                bad += f32_bits(o) != f32_bits(12345.0f);
                continue;
            }
            double e = fabs((double)o - ref[m * N + i]);
            if (!(e <= tol * mag[m * N + i] + 1e-30)) {
                if (bad < 3)
                    fprintf(stderr,
                            "matmul %s M=%lld N=%lld K=%lld beta=%g bias=%d typed=%d: out[%lld,%lld] = %.9g, "
                            "ref %.9g\n",
                            hb_dtype_name(dt), (long long)M, (long long)N, (long long)K,
                            (double)beta, use_bias, typed, (long long)m, (long long)i, (double)o,
                            ref[m * N + i]);
                bad++;
            }
        }
    free(a), free(wsrc), free(wdeq), free(bias), free(out), free(out0), free(w), free(at), free(ref), free(mag);
    return bad;
}

static void test_matmul(hb_backend *be) {
    static const int64_t Ms[] = {1, 2, 3, 4, 5, 8, 9, 37}, Ns[] = {1, 5, 33, 127},
                         Ks[] = {1, 7, 64, 129};
    static const float betas[] = {0.0f, 1.0f, 0.5f};
    const hb_cpu_ctx *ctx = be->ctx;
    const hb_cpu_isa detected = ctx->isa;
    trng r = {2024};
    for (int isa = HB_CPU_ISA_GENERIC; isa <= HB_CPU_ISA_AVX512; isa++) {
        if (hb_cpu_set_isa(be, (hb_cpu_isa)isa) != HB_OK) {
            fprintf(stderr, "note: %s kernels not testable on this CPU\n",
                    hb_cpu_isa_name((hb_cpu_isa)isa));
            continue;
        }
        int bad = 0, cases = 0;
        for (int d = 0; d < 3; d++)
            for (int mi = 0; mi < HB_ARRAY_LEN(Ms); mi++)
                for (int ni = 0; ni < HB_ARRAY_LEN(Ns); ni++)
                    for (int ki = 0; ki < HB_ARRAY_LEN(Ks); ki++) {
                        const int64_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                        const int v = cases++;
                        // padded leading dimensions on every other case
                        const int64_t lda = K + (v % 2 ? 3 : 0), ldo = N + (v % 4 >= 2 ? 2 : 0);
                        bad += check_matmul(be, &r, wdts[d], M, N, K, lda, ldo, v % 3 != 0,
                                            betas[v % 3], d > 0 && v % 5 == 0) != 0;
                    }
        // larger: many blocks per thread (prefetch), K tails, several f32 panels per thread
        for (int d = 0; d < 3; d++) {
            bad += check_matmul(be, &r, wdts[d], 1, 1000, 1000, 1000, 1000, 1, 0.0f, 0) != 0;
            bad += check_matmul(be, &r, wdts[d], 7, 301, 777, 780, 301, 0, 1.0f, d > 0) != 0;
            bad += check_matmul(be, &r, wdts[d], 20, 600, 1000, 1000, 605, 1, 0.0f, 0) != 0;
            bad += check_matmul(be, &r, wdts[d], 33, 1111, 300, 300, 1111, 0, 0.5f, d > 0) != 0;
            cases += 4;
        }
        CHECK_MSG(bad == 0, "%s: %d of %d matmul cases wrong", hb_cpu_isa_name((hb_cpu_isa)isa),
                  bad, cases);
    }
    CHECK(hb_cpu_set_isa(be, detected) == HB_OK);

    // K = 0: out = beta * out + bias, NaN overwritten when beta = 0
    float out[6] = {NAN, NAN, NAN, 1.0f, 2.0f, 3.0f}, bias[3] = {0.5f, -1.0f, 2.0f}, dummy = 0.0f;
    CHECK_MSG(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 1, 3, 3), .a = hb_t2(&dummy, HB_F32, 1, 0, 0),
                    .w = hb_t2(&dummy, HB_F32, 3, 0, 0), .bias = hb_t1(bias, HB_F32, 3)) == HB_OK, "%s", be->err);
    CHECK(out[0] == 0.5f && out[1] == -1.0f && out[2] == 2.0f);
    CHECK(HB_OP(be, matmul, .out = hb_t2(out + 3, HB_F32, 1, 3, 3), .a = hb_t2(&dummy, HB_F32, 1, 0, 0),
                .w = hb_t2(&dummy, HB_F32, 3, 0, 0), .beta = 2.0f) == HB_OK);
    CHECK(out[3] == 2.0f && out[4] == 4.0f && out[5] == 6.0f);
    // contract violations are reported
    // contract violations are reported (the shared checks of ops.c)
    CHECK(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 1, 3, 3), .a = hb_t2(out, HB_F32, 1, 4, 2),
                .w = hb_t2(out, HB_F32, 3, 4, 4)) == HB_ERR_INPUT); /* lda < K */
    CHECK(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 1, 3, 3), .a = hb_t2(out, HB_F32, 1, 4, 4),
                .w = hb_t2(out, HB_F32, 3, 5, 5)) == HB_ERR_INPUT); /* K differs */
    CHECK(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 2, 3, 3), .a = hb_t2(out, HB_F32, 1, 4, 4),
                .w = hb_t2(out, HB_F32, 3, 4, 4)) == HB_ERR_INPUT); /* out not M x N */
    CHECK(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 1, 3, 3), .a = hb_t2(out, HB_F32, 1, 4, 4),
                .w = hb_t2(out, HB_F32, 3, 4, 4), .bias = hb_t1(bias, HB_F32, 2)) == HB_ERR_INPUT); /* bias */
    CHECK(HB_OP(be, matmul, .out = hb_t2(out, HB_F32, 1, 3, 3), .a = hb_t2(out, HB_F16, 1, 4, 4),
                .w = hb_t2(out, HB_BF16, 3, 4, 4)) == HB_ERR_INPUT);
    CHECK_STR(be->err, "matmul: a is f16: it must be f32 or w's dtype bf16");
}

/* C_i = alpha op(A_i) op(B_i) + beta C_i in double, checked against the op. */
static int check_batched(hb_backend *be, trng *r, int ta, int tb, int64_t m, int64_t n, int64_t k,
                         int64_t batch, float alpha, float beta) {
    const int64_t ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
    const int64_t lda = ca + 2, ldb = cb + 1, ldc = n + 3;
    const int64_t sa = ra * lda + 5, sb = rb * ldb + 7, sc = m * ldc + 4;
    float *A = fvec(batch * sa), *B = fvec(batch * sb), *C = fvec(batch * sc), *C0 = fvec(batch * sc);
    trng_fill(r, A, batch * sa, -1.0f, 1.0f);
    trng_fill(r, B, batch * sb, -1.0f, 1.0f);
    for (int64_t i = 0; i < batch * sc; i++) {
        int64_t rem = i % sc;
        int pad = rem >= m * ldc || rem % ldc >= n;
        C0[i] = pad ? -777.0f : beta == 0.0f ? NAN : trng_f(r, -1.0f, 1.0f);
    }
    memcpy(C, C0, (size_t)(batch * sc) * sizeof(float));
    hb_gemm_batched g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .batch = batch,
                         .alpha = alpha, .beta = beta, .a = A, .lda = lda, .stride_a = sa,
                         .b = B, .ldb = ldb, .stride_b = sb, .c = C, .ldc = ldc, .stride_c = sc};
    int bad = hb_op_matmul_batched(be, &g) != HB_OK;
    for (int64_t p = 0; p < batch && !bad; p++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < ldc; j++) {
                const float got = C[p * sc + i * ldc + j];
                if (j >= n) {
                    bad += got != -777.0f;
                    continue;
                }
                double s = 0.0, mag = 0.0;
                for (int64_t q = 0; q < k; q++) {
                    double x = ta ? A[p * sa + q * lda + i] : A[p * sa + i * lda + q];
                    double y = tb ? B[p * sb + j * ldb + q] : B[p * sb + q * ldb + j];
                    s += x * y;
                    mag += fabs(x * y);
                }
                s *= alpha;
                mag *= fabs(alpha);
                if (beta != 0.0f) {
                    s += (double)beta * C0[p * sc + i * ldc + j];
                    mag += fabs((double)beta * C0[p * sc + i * ldc + j]);
                }
                if (!(fabs(got - s) <= (double)(k + 4) * 1.2e-7 * mag + 1e-30)) {
                    if (bad < 3)
                        fprintf(stderr, "batched ta=%d tb=%d m=%lld n=%lld k=%lld: C[%lld][%lld,%lld] = %g, ref %g\n",
                                ta, tb, (long long)m, (long long)n, (long long)k, (long long)p,
                                (long long)i, (long long)j, (double)got, s);
                    bad++;
                }
            }
    // the gaps between batch items are untouched
    for (int64_t p = 0; p < batch; p++)
        for (int64_t i = m * ldc; i < sc; i++) bad += C[p * sc + i] != -777.0f;
    free(A), free(B), free(C), free(C0);
    return bad;
}

static void test_matmul_batched(hb_backend *be) {
    trng r = {77};
    int bad = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            bad += check_batched(be, &r, ta, tb, 5, 7, 9, 3, 1.0f, 0.0f) != 0;
            bad += check_batched(be, &r, ta, tb, 33, 17, 65, 4, 0.7f, 0.5f) != 0;
            bad += check_batched(be, &r, ta, tb, 1, 1, 1, 2, -2.0f, 1.0f) != 0;
        }
    bad += check_batched(be, &r, 0, 1, 130, 128, 129, 2, 0.125f, 0.0f) != 0; // OpenBLAS threads
    bad += check_batched(be, &r, 1, 0, 4, 3, 0, 2, 1.0f, 0.0f) != 0;         // k = 0: C = 0
    bad += check_batched(be, &r, 0, 0, 4, 3, 5, 2, 0.0f, 2.0f) != 0;         // alpha = 0
    CHECK_MSG(bad == 0, "%d batched GEMM cases wrong", bad);
    hb_gemm_batched g = {.m = 4, .n = 4, .k = 4, .batch = 1, .lda = 3, .ldb = 4, .ldc = 4};
    CHECK(hb_op_matmul_batched(be, &g) == HB_ERR_INPUT);
}

/* ---- embedding and norms ---- */

static void test_embedding(hb_backend *be) {
    enum { V = 11, C = 13, B = 2, T = 3, P = 9 };
    trng r = {5};
    float src[V * C], wte_deq[V * C], psrc[P * C], wpe_deq[P * C], out[B * T * C];
    uint16_t wte[V * C * 2], wpe[P * C * 2]; // room for f32
    int32_t tokens[B * T] = {3, 0, 10, 10, 7, 1};
    for (int d = 0; d < 3; d++)
        for (int with_pe = 0; with_pe < 2; with_pe++) {
            trng_fill(&r, src, V * C, -2.0f, 2.0f);
            trng_fill(&r, psrc, P * C, -2.0f, 2.0f);
            make_weights(wdts[d], src, V * C, wte, wte_deq);
            make_weights(wdts[d], psrc, P * C, wpe, wpe_deq);
            const int64_t pos0 = 4;
            CHECK(HB_OP(be, embedding, .out = hb_t2(out, HB_F32, B * T, C, C), .wte = hb_t2(wte, wdts[d], V, C, C),
                        .wpe = with_pe ? hb_t2(wpe, wdts[d], P, C, C) : (hb_tensor){0}, .tokens = tokens, .B = B,
                        .T = T, .pos0 = pos0) == HB_OK);
            int bad = 0;
            for (int i = 0; i < B * T; i++)
                for (int c = 0; c < C; c++) {
                    double ref = wte_deq[tokens[i] * C + c];
                    if (with_pe) ref += wpe_deq[(pos0 + i % T) * C + c];
                    bad += fabs(out[i * C + c] - ref) > 1e-6 * fabs(ref) + 1e-30;
                }
            CHECK_MSG(bad == 0, "embedding %s pe=%d: %d wrong", hb_dtype_name(wdts[d]), with_pe, bad);
        }
    tokens[2] = -1;
    CHECK(HB_OP(be, embedding, .out = hb_t2(out, HB_F32, B * T, C, C), .wte = hb_t2(wte, HB_F32, V, C, C),
                .tokens = tokens, .B = B, .T = T) == HB_ERR_INPUT);
    tokens[2] = 1; /* the shared checks: positions past the learned ones, out of the wrong shape */
    CHECK(HB_OP(be, embedding, .out = hb_t2(out, HB_F32, B * T, C, C), .wte = hb_t2(wte, HB_F32, V, C, C),
                .wpe = hb_t2(wpe, HB_F32, P, C, C), .tokens = tokens, .B = B, .T = T, .pos0 = P - T + 1) == HB_ERR_INPUT);
    CHECK(HB_OP(be, embedding, .out = hb_t2(out, HB_F32, B * T, C - 1, C), .wte = hb_t2(wte, HB_F32, V, C, C),
                .tokens = tokens, .B = B, .T = T) == HB_ERR_INPUT);
}

static void test_norms(hb_backend *be) {
    static const int64_t Cs[] = {1, 7, 33, 768, 5000};
    trng r = {11};
    for (int ci = 0; ci < HB_ARRAY_LEN(Cs); ci++) {
        const int64_t N = 5, C = Cs[ci];
        float *x = fvec(N * C), *w = fvec(C), *b = fvec(C), *o = fvec(N * C);
        trng_fill(&r, x, N * C, -1.0f, 1.0f);
        for (int64_t i = 0; i < N * C; i++) x[i] = x[i] * 2.0f + 3.0f; // mean 3: tests the centring
        trng_fill(&r, w, C, 0.5f, 1.5f);
        trng_fill(&r, b, C, -0.5f, 0.5f);
        const float eps = 1e-5f;

        CHECK(HB_OP(be, rmsnorm, .out = hb_t2(o, HB_F32, N, C, C), .in = hb_t2(x, HB_F32, N, C, C), .w = hb_t1(w, HB_F32, C), .eps = eps) == HB_OK);
        int bad = 0;
        for (int64_t n = 0; n < N; n++) {
            double ss = 0.0;
            for (int64_t c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
            double inv = 1.0 / sqrt(ss / C + eps);
            for (int64_t c = 0; c < C; c++) {
                double ref = x[n * C + c] * inv * w[c];
                bad += fabs(o[n * C + c] - ref) > 2e-6 * (fabs(ref) + 1.0);
            }
        }
        CHECK_MSG(bad == 0, "rmsnorm C=%lld: %d wrong", (long long)C, bad);

        CHECK(HB_OP(be, layernorm, .out = hb_t2(o, HB_F32, N, C, C), .in = hb_t2(x, HB_F32, N, C, C), .w = hb_t1(w, HB_F32, C),
                    .b = hb_t1(b, HB_F32, C), .eps = eps) == HB_OK);
        bad = 0;
        for (int64_t n = 0; n < N; n++) {
            double mean = 0.0, var = 0.0;
            for (int64_t c = 0; c < C; c++) mean += x[n * C + c];
            mean /= C;
            for (int64_t c = 0; c < C; c++) var += (x[n * C + c] - mean) * (x[n * C + c] - mean);
            var /= C; // biased
            for (int64_t c = 0; c < C; c++) {
                double ref = (x[n * C + c] - mean) / sqrt(var + eps) * w[c] + b[c];
                bad += fabs(o[n * C + c] - ref) > 1e-5 * (fabs(ref) + 1.0);
            }
        }
        CHECK_MSG(bad == 0, "layernorm C=%lld: %d wrong", (long long)C, bad);
        free(x), free(w), free(b), free(o);
    }
    // a constant row: layernorm gives b (variance 0, eps keeps it finite)
    float x[4] = {2, 2, 2, 2}, w[4] = {1, 1, 1, 1}, b[4] = {0.1f, 0.2f, 0.3f, 0.4f}, o[4];
    CHECK(HB_OP(be, layernorm, .out = hb_t2(o, HB_F32, 1, 4, 4), .in = hb_t2(x, HB_F32, 1, 4, 4), .w = hb_t1(w, HB_F32, 4),
                .b = hb_t1(b, HB_F32, 4), .eps = 1e-5f) == HB_OK);
    for (int c = 0; c < 4; c++) CHECK_NEAR(o[c], b[c], 1e-6);
}

/* ---- rope, kv cache, attention ---- */

static void test_rope(hb_backend *be) {
    static const int64_t Ds[] = {2, 8, 64, 128};
    static const int64_t pos0s[] = {0, 7, 7990};
    static const float thetas[] = {10000.0f, 500000.0f};
    trng r = {13};
    for (int di = 0; di < HB_ARRAY_LEN(Ds); di++)
        for (int pi = 0; pi < HB_ARRAY_LEN(pos0s); pi++)
            for (int ti = 0; ti < 2; ti++) {
                const int64_t B = 2, T = 3, H = 3, D = Ds[di], ldx = H * D + 5, pos0 = pos0s[pi];
                float *x = fvec(B * T * ldx), *x0 = fvec(B * T * ldx);
                trng_fill(&r, x0, B * T * ldx, -1.0f, 1.0f);
                memcpy(x, x0, (size_t)(B * T * ldx) * sizeof(float));
                CHECK(HB_OP(be, rope, .x = hb_t2(x, HB_F32, B * T, H * D, ldx), .B = B, .T = T, .pos0 = pos0, .H = H,
                            .theta = thetas[ti]) == HB_OK);
                int bad = 0;
                for (int64_t row = 0; row < B * T; row++) {
                    const int64_t pos = pos0 + row % T;
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t i = 0; i < D / 2; i++) {
                            const float *v0 = x0 + row * ldx + h * D;
                            const float *v = x + row * ldx + h * D;
                            double ang = (double)pos * pow((double)thetas[ti], -2.0 * (double)i / (double)D);
                            double a = v0[i], b = v0[i + D / 2];
                            double r0 = a * cos(ang) - b * sin(ang), r1 = a * sin(ang) + b * cos(ang);
                            double tol = 2e-6 * (fabs(a) + fabs(b)) + 1e-30;
                            bad += fabs(v[i] - r0) > tol || fabs(v[i + D / 2] - r1) > tol;
                        }
                    for (int64_t c = H * D; c < ldx; c++) // padding untouched
                        bad += x[row * ldx + c] != x0[row * ldx + c];
                }
                CHECK_MSG(bad == 0, "rope D=%lld pos0=%lld theta=%g: %d wrong", (long long)D,
                          (long long)pos0, (double)thetas[ti], bad);
                free(x), free(x0);
            }
    float x[6] = {0};
    CHECK(HB_OP(be, rope, .x = hb_t2(x, HB_F32, 1, 3, 3), .B = 1, .T = 1, .H = 1, .theta = 10000.0f) == HB_ERR_INPUT); // odd D
    /* per-row positions: each row bit for bit as a rope of that row alone at its position */
    {
        static const int32_t pos[] = {3, 0, 17, 3, 1000, 65535};
        const int64_t N = HB_ARRAY_LEN(pos), H = 2, D = 64, ldx = H * D + 3;
        float *y = fvec(N * ldx), *y0 = fvec(N * ldx);
        trng_fill(&r, y0, N * ldx, -1.0f, 1.0f);
        memcpy(y, y0, (size_t)(N * ldx) * sizeof(float));
        const hb_rope_scaling yarn = {.factor = 40.0f, .low_freq = 32.0f, .high_freq = 1.0f, .orig_max = 4096,
                                      .kind = HB_ROPE_YARN, .mag = 1.2f};
        CHECK(HB_OP(be, rope, .x = hb_t2(y, HB_F32, N, H * D, ldx), .B = 1, .T = N, .H = H, .theta = 500000.0f,
                    .scaling = yarn, .pos = pos) == HB_OK);
        int bad = 0;
        for (int64_t row = 0; row < N; row++) {
            CHECK(HB_OP(be, rope, .x = hb_t2(y0 + row * ldx, HB_F32, 1, H * D, ldx), .B = 1, .T = 1, .pos0 = pos[row],
                        .H = H, .theta = 500000.0f, .scaling = yarn) == HB_OK);
            bad += memcmp(y + row * ldx, y0 + row * ldx, (size_t)ldx * sizeof(float)) != 0;
        }
        CHECK_MSG(bad == 0, "rope with per-row positions: %d rows differ from rope at pos0", bad);
        free(y), free(y0);
        const int32_t neg[] = {1, -1};
        float z[8] = {0};
        CHECK(HB_OP(be, rope, .x = hb_t2(z, HB_F32, 2, 4, 4), .B = 1, .T = 2, .H = 1, .theta = 10000.0f, .pos = neg) ==
              HB_ERR_INPUT);
    }
}

/* A paged store: rows to (block_table[seq * max_blocks + pos / bs], pos % bs), written by hand;
 * every other slot keeps its value; a row without a block is refused. */
static void test_kv_store_paged(hb_backend *be) {
    enum { NB = 3, BS = 2, W = 4, N = 4 };
    static const int32_t seq[N] = {0, 0, 1, 1}, pos[N] = {1, 2, 0, 1}, table[4] = {2, 0, 1, 0};
    float k[N * W], v[N * W], kc[NB * BS * W], vc[NB * BS * W], want_k[NB * BS * W], want_v[NB * BS * W];
    for (int i = 0; i < N * W; i++) k[i] = (float)(i + 1), v[i] = -(float)(i + 1);
    for (int i = 0; i < NB * BS * W; i++) kc[i] = vc[i] = want_k[i] = want_v[i] = 1000.0f + (float)i;
    for (int r = 0; r < N; r++) {
        const int cell = table[seq[r] * 2 + pos[r] / BS] * BS + pos[r] % BS;
        for (int j = 0; j < W; j++) want_k[cell * W + j] = k[r * W + j], want_v[cell * W + j] = v[r * W + j];
    }
    CHECK(HB_OP(be, kv_store, .k_cache = hb_t4(kc, HB_F32, NB, BS, 1, W), .v_cache = hb_t4(vc, HB_F32, NB, BS, 1, W),
                .k = hb_t2(k, HB_F32, N, W, W), .v = hb_t2(v, HB_F32, N, W, W), .B = 1, .T = N, .block_table = table,
                .seq = seq, .pos = pos, .max_blocks = 2) == HB_OK);
    CHECK(memcmp(kc, want_k, sizeof kc) == 0 && memcmp(vc, want_v, sizeof vc) == 0);
    static const int32_t far[N] = {1, 2, 0, 4}; /* position 4: block 2 of a 2-block table */
    CHECK(HB_OP(be, kv_store, .k_cache = hb_t4(kc, HB_F32, NB, BS, 1, W), .v_cache = hb_t4(vc, HB_F32, NB, BS, 1, W),
                .k = hb_t2(k, HB_F32, N, W, W), .v = hb_t2(v, HB_F32, N, W, W), .B = 1, .T = N, .block_table = table,
                .seq = seq, .pos = far, .max_blocks = 2) == HB_ERR_INPUT);
}

/* A cache element as f32, and x rounded to the cache dtype. */
static double kv_get(const void *c, hb_dtype t, int64_t i) {
    if (t == HB_F32) return ((const float *)c)[i];
    const uint16_t h = ((const uint16_t *)c)[i];
    return t == HB_BF16 ? bf16_value(h) : f16_value(h);
}
static void kv_put(void *c, hb_dtype t, int64_t i, float x) {
    if (t == HB_F32) ((float *)c)[i] = x;
    else ((uint16_t *)c)[i] = t == HB_BF16 ? hb_f32_to_bf16(x) : hb_f32_to_f16(x);
}
static double kv_round(hb_dtype t, double x) {
    if (t == HB_F32) return x;
    return t == HB_BF16 ? bf16_value(hb_f32_to_bf16((float)x)) : f16_value(hb_f32_to_f16((float)x));
}

/* Attention reference for one (b, t, h): causal softmax over cache positions 0..pos0+t, in
 * double, with backend.h's rounding for a bf16/f16 cache (q and the numerators p in kvt). */
static void ref_attention(double *o, const float *q, const void *kc, const void *vc, hb_dtype kvt,
                          int64_t b, int64_t pos, int64_t kvh, int64_t Hkv, int64_t D, int64_t S) {
    double *p = malloc((size_t)(pos + 1) * sizeof(double)), mx = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j <= pos; j++) {
        const int64_t k = ((b * S + j) * Hkv + kvh) * D;
        double s = 0.0;
        for (int64_t d = 0; d < D; d++) s += kv_round(kvt, q[d]) * kv_get(kc, kvt, k + d);
        p[j] = s / sqrt((double)D);
        mx = p[j] > mx ? p[j] : mx;
    }
    for (int64_t j = 0; j <= pos; j++) sum += p[j] = exp(p[j] - mx);
    for (int64_t d = 0; d < D; d++) o[d] = 0.0;
    for (int64_t j = 0; j <= pos; j++)
        for (int64_t d = 0; d < D; d++)
            o[d] += kv_round(kvt, p[j]) / sum * kv_get(vc, kvt, ((b * S + j) * Hkv + kvh) * D + d);
    free(p);
}

static int check_attention(hb_backend *be, trng *r, hb_dtype kvt, int64_t B, int64_t T,
                           int64_t pos0, int64_t Hq, int64_t Hkv, int64_t D, int64_t S) {
    // qkv rows as a fused projection would produce them: [q (Hq*D) | k (Hkv*D) | v (Hkv*D) | pad]
    const int64_t ld = (Hq + 2 * Hkv) * D + 3, ldo = Hq * D + 2, cw = Hkv * D, nc = B * S * cw;
    const size_t cbytes = (size_t)nc * (size_t)hb_dtype_size(kvt);
    float *qkv = fvec(B * T * ld), *ksrc = fvec(nc), *vsrc = fvec(nc);
    void *kc = malloc(cbytes), *vc = malloc(cbytes), *kc0 = malloc(cbytes);
    float *out = fvec(B * T * ldo), *out2 = fvec(B * T * ldo);
    double *o = malloc((size_t)D * sizeof(double));
    trng_fill(r, qkv, B * T * ld, -2.0f, 2.0f);
    trng_fill(r, ksrc, nc, -2.0f, 2.0f); // positions < pos0: earlier context
    trng_fill(r, vsrc, nc, -2.0f, 2.0f);
    for (int64_t i = 0; i < nc; i++) kv_put(kc, kvt, i, ksrc[i]), kv_put(vc, kvt, i, vsrc[i]);
    memcpy(kc0, kc, cbytes);
    for (int64_t i = 0; i < B * T * ldo; i++) out[i] = -5.0f;
    int bad = 0;

    const hb_tensor kt = hb_t4(kc, kvt, B, S, Hkv, D), vt = hb_t4(vc, kvt, B, S, Hkv, D);
    bad += HB_OP(be, kv_store, .k_cache = kt, .v_cache = vt, .k = hb_t2(qkv + Hq * D, HB_F32, B * T, cw, ld),
                 .v = hb_t2(qkv + (Hq + Hkv) * D, HB_F32, B * T, cw, ld), .B = B, .T = T, .pos0 = pos0) != HB_OK;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t c = 0; c < cw; c++) {
                const int64_t ci = (b * S + s) * cw + c;
                if (s >= pos0 && s < pos0 + T) { // the row's value rounded to kvt (nearest even)
                    const float *row = qkv + (b * T + s - pos0) * ld;
                    bad += kv_get(kc, kvt, ci) != kv_round(kvt, row[Hq * D + c]) ||
                           kv_get(vc, kvt, ci) != kv_round(kvt, row[(Hq + Hkv) * D + c]);
                } else {
                    bad += kv_get(kc, kvt, ci) != kv_get(kc0, kvt, ci); // other positions untouched
                }
            }
    if (bad) fprintf(stderr, "kv_store %s wrong\n", hb_dtype_name(kvt));

    /* Within f32 rounding of the reference; with a bf16/f16 cache a numerator p computed in
     * f32 may round to the other neighbour in kvt than the double reference's: at most 2% of
     * the (query, head) rows (or one) may be off by that one rounding (2^-8 / 2^-11 of max |v|). */
    const double flip = kvt == HB_BF16 ? 2.0 * 0x1p-8 : kvt == HB_F16 ? 2.0 * 0x1p-11 : 0.0;
    int rows = 0, flipped = 0;
    bad += HB_OP(be, attention, .out = hb_t2(out, HB_F32, B * T, Hq * D, ldo), .q = hb_t2(qkv, HB_F32, B * T, Hq * D, ld),
                 .k_cache = kt, .v_cache = vt, .B = B, .T = T, .pos0 = pos0) != HB_OK;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < Hq; h++) {
                ref_attention(o, qkv + (b * T + t) * ld + h * D, kc, vc, kvt, b, pos0 + t,
                              h / (Hq / Hkv), Hkv, D, S);
                int tight = 0, loose = 0;
                for (int64_t d = 0; d < D; d++) {
                    double got = out[(b * T + t) * ldo + h * D + d], e = fabs(got - o[d]);
                    tight += !(e <= 2e-6 * (fabs(o[d]) + 1.0));
                    loose += !(e <= 2e-6 * (fabs(o[d]) + 1.0) + flip);
                    if (!(e <= 2e-6 * (fabs(o[d]) + 1.0) + flip) && loose <= 1 && bad < 3)
                        fprintf(stderr, "attention %s b=%lld t=%lld h=%lld d=%lld: %.9g vs %.9g\n",
                                hb_dtype_name(kvt), (long long)b, (long long)t, (long long)h,
                                (long long)d, got, o[d]);
                }
                bad += loose;
                rows++;
                flipped += tight > 0;
                for (int64_t c = Hq * D; c < ldo; c++) bad += out[(b * T + t) * ldo + c] != -5.0f;
            }
    if (flipped > 1 && flipped * 50 > rows) {
        fprintf(stderr, "attention %s: %d of %d rows off by more than f32 rounding\n",
                hb_dtype_name(kvt), flipped, rows);
        bad++;
    }

    // causality: changing key/value t = T-1 changes only query T-1; positions past every query
    // change nothing
    memcpy(out2, out, (size_t)(B * T * ldo) * sizeof(float));
    for (int64_t c = 0; c < cw; c++) {
        const int64_t last = ((B - 1) * S + pos0 + T - 1) * cw + c;
        kv_put(kc, kvt, last, (float)kv_get(kc, kvt, last) + 3.0f);
        kv_put(vc, kvt, last, (float)kv_get(vc, kvt, last) - 3.0f);
        if (pos0 + T < S) kv_put(kc, kvt, last + cw, NAN);
    }
    bad += HB_OP(be, attention, .out = hb_t2(out2, HB_F32, B * T, Hq * D, ldo), .q = hb_t2(qkv, HB_F32, B * T, Hq * D, ld),
                 .k_cache = kt, .v_cache = vt, .B = B, .T = T, .pos0 = pos0) != HB_OK;
    int changed_last = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < Hq * D; c++) {
                const int64_t i = (b * T + t) * ldo + c;
                if (b == B - 1 && t == T - 1)
                    changed_last += out2[i] != out[i];
                else
                    bad += f32_bits(out2[i]) != f32_bits(out[i]);
            }
    if (!changed_last) fprintf(stderr, "attention: the last query ignored its own key\n");
    bad += !changed_last;
    free(qkv), free(ksrc), free(vsrc), free(kc), free(vc), free(kc0), free(out), free(out2), free(o);
    return bad;
}

static void test_attention(hb_backend *be) {
    trng r = {17};
    int bad = 0;
    for (int d = 0; d < 3; d++) { // f32, bf16, f16 caches
        bad += check_attention(be, &r, wdts[d], 2, 3, 5, 4, 2, 8, 10) != 0;   // GQA, KV cache with context
        bad += check_attention(be, &r, wdts[d], 1, 5, 0, 3, 3, 7, 5) != 0;    // MHA prefill, odd D, S full
        bad += check_attention(be, &r, wdts[d], 3, 1, 40, 8, 1, 64, 64) != 0; // MQA decode
        bad += check_attention(be, &r, wdts[d], 2, 17, 3, 6, 2, 33, 21) != 0; // odd everything
    }
    CHECK_MSG(bad == 0, "%d attention/kv_store cases wrong", bad);
    float x[64] = {0};
    const hb_tensor c = hb_t4(x, HB_F32, 1, 4, 2, 4), c8 = hb_t4(x, HB_FP8_E4M3, 1, 4, 2, 4);
    CHECK(HB_OP(be, attention, .out = hb_t2(x, HB_F32, 1, 12, 12), .q = hb_t2(x, HB_F32, 1, 12, 12), .k_cache = c,
                .v_cache = c, .B = 1, .T = 1) == HB_ERR_INPUT); // 3 query heads, 2 kv heads
    CHECK(HB_OP(be, attention, .out = hb_t2(x, HB_F32, 2, 8, 8), .q = hb_t2(x, HB_F32, 2, 8, 8), .k_cache = c,
                .v_cache = c, .B = 1, .T = 2, .pos0 = 3) == HB_ERR_INPUT); // past S
    CHECK(HB_OP(be, kv_store, .k_cache = c, .v_cache = c, .k = hb_t2(x, HB_F32, 2, 8, 8), .v = hb_t2(x, HB_F32, 2, 8, 8),
                .B = 1, .T = 2, .pos0 = 3) == HB_ERR_INPUT); // past S
    CHECK(HB_OP(be, kv_store, .k_cache = c, .v_cache = hb_t4(x, HB_BF16, 1, 4, 2, 4), .k = hb_t2(x, HB_F32, 1, 8, 8),
                .v = hb_t2(x, HB_F32, 1, 8, 8), .B = 1, .T = 1) == HB_ERR_INPUT); // caches differ
    // an fp8 cache needs its per-tensor scale (fp8 caches: test_fp8)
    CHECK(HB_OP(be, attention, .out = hb_t2(x, HB_F32, 1, 8, 8), .q = hb_t2(x, HB_F32, 1, 8, 8), .k_cache = c8,
                .v_cache = c8, .B = 1, .T = 1) == HB_ERR_INPUT);
    CHECK(HB_OP(be, kv_store, .k_cache = c8, .v_cache = c8, .k = hb_t2(x, HB_F32, 1, 8, 8), .v = hb_t2(x, HB_F32, 1, 8, 8),
                .B = 1, .T = 1) == HB_ERR_INPUT);
}

/* ---- element-wise, softmax, argmax, sampling ---- */

static void test_elementwise(hb_backend *be) {
    static const int64_t ns[] = {1, 1001, 40001};
    trng r = {23};
    for (int i = 0; i < HB_ARRAY_LEN(ns); i++) {
        const int64_t n = ns[i], N = 3, F = n;
        float *x = fvec(2 * N * F), *y = fvec(n), *o = fvec(N * F);
        trng_fill(&r, x, 2 * N * F, -8.0f, 8.0f);
        trng_fill(&r, y, n, -8.0f, 8.0f);
        x[0] = -100.0f; // saturated ends
        if (n > 1) x[1] = 100.0f;
        int bad = 0;

        CHECK(HB_OP(be, swiglu, .out = hb_t2(o, HB_F32, N, F, F), .in = hb_t2(x, HB_F32, N, 2 * F, 2 * F)) == HB_OK);
        for (int64_t rr = 0; rr < N; rr++)
            for (int64_t f = 0; f < F; f++) {
                double a = x[rr * 2 * F + f], g = x[rr * 2 * F + F + f];
                double ref = a / (1.0 + exp(-a)) * g;
                bad += fabs(o[rr * F + f] - ref) > 1e-6 * fabs(ref) + 1e-6;
            }
        CHECK_MSG(bad == 0, "swiglu n=%lld: %d wrong", (long long)n, bad);

        CHECK(HB_OP(be, gelu, .out = hb_t1(o, HB_F32, n), .in = hb_t1(x, HB_F32, n)) == HB_OK);
        bad = 0;
        for (int64_t j = 0; j < n; j++) {
            double v = x[j];
            double ref = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
            bad += fabs(o[j] - ref) > 1e-6 * fabs(ref) + 1e-6;
        }
        CHECK_MSG(bad == 0, "gelu n=%lld: %d wrong", (long long)n, bad);

        CHECK(HB_OP(be, add, .out = hb_t1(o, HB_F32, n), .a = hb_t1(x, HB_F32, n), .b = hb_t1(y, HB_F32, n), .s = 0.75f) == HB_OK);
        bad = 0;
        for (int64_t j = 0; j < n; j++) {
            double ref = (double)x[j] + 0.75 * y[j];
            bad += fabs(o[j] - ref) > 2e-7 * (fabs(x[j]) + fabs(y[j]));
        }
        memcpy(o, x, (size_t)n * sizeof(float));
        CHECK(HB_OP(be, add, .out = hb_t1(x, HB_F32, n), .a = hb_t1(x, HB_F32, n), .b = hb_t1(y, HB_F32, n), .s = 1.0f) == HB_OK); // in place (residual), s = 1 is exact
        for (int64_t j = 0; j < n; j++) bad += x[j] != o[j] + y[j];
        CHECK_MSG(bad == 0, "add n=%lld: %d wrong", (long long)n, bad);
        free(x), free(y), free(o);
    }
}

static void test_softmax(hb_backend *be) {
    static const int64_t cols_list[] = {1, 5, 1000, 50257};
    trng r = {29};
    for (int i = 0; i < HB_ARRAY_LEN(cols_list); i++) {
        const int64_t rows = 3, cols = cols_list[i];
        float *x = fvec(rows * cols), *o = fvec(rows * cols);
        trng_fill(&r, x, rows * cols, -30.0f, 30.0f);
        for (int64_t j = 0; j < cols; j++) x[j] += 1000.0f; // row 0: exp would overflow unshifted
        CHECK(HB_OP(be, softmax, .out = hb_t2(o, HB_F32, rows, cols, cols), .in = hb_t2(x, HB_F32, rows, cols, cols)) == HB_OK);
        int bad = 0;
        for (int64_t rr = 0; rr < rows; rr++) {
            double mx = -INFINITY, sum = 0.0, tot = 0.0;
            for (int64_t j = 0; j < cols; j++) mx = x[rr * cols + j] > mx ? x[rr * cols + j] : mx;
            for (int64_t j = 0; j < cols; j++) sum += exp((double)x[rr * cols + j] - mx);
            for (int64_t j = 0; j < cols; j++) {
                double ref = exp((double)x[rr * cols + j] - mx) / sum;
                bad += !(fabs(o[rr * cols + j] - ref) <= 1e-5 * ref + 1e-12);
                tot += o[rr * cols + j];
            }
            bad += fabs(tot - 1.0) > 1e-5;
        }
        CHECK_MSG(bad == 0, "softmax cols=%lld: %d wrong", (long long)cols, bad);
        free(x), free(o);
    }
}

static void test_argmax(hb_backend *be) {
    // rows 6 apart; the 2 padding columns hold huge values that must not be read
    const float X[] = {
        1, 3, 3, 2, 1e30f, 1e30f,                  // tie: lowest index (1)
        -INFINITY, -INFINITY, -INFINITY, -INFINITY, 1e30f, 1e30f, // all -inf: 0
        0, NAN, 5, NAN, 1e30f, 1e30f,              // NaN: first NaN (1)
        -1, -2, -3, -0.5f, 1e30f, 1e30f,           // last (3)
    };
    int32_t out[4] = {-1, -1, -1, -1};
    CHECK(HB_OP(be, argmax, .out = out, .in = hb_t2(X, HB_F32, 4, 4, 6)) == HB_OK);
    CHECK(out[0] == 1);
    CHECK(out[1] == 0);
    CHECK(out[2] == 1);
    CHECK(out[3] == 3);

    trng r = {31};
    const int64_t rows = 7, cols = 3001;
    float *x = fvec(rows * cols);
    int32_t idx[7];
    trng_fill(&r, x, rows * cols, -5.0f, 5.0f);
    CHECK(HB_OP(be, argmax, .out = idx, .in = hb_t2(x, HB_F32, rows, cols, cols)) == HB_OK);
    for (int64_t rr = 0; rr < rows; rr++) {
        int64_t best = 0;
        for (int64_t j = 1; j < cols; j++)
            if (x[rr * cols + j] > x[rr * cols + best]) best = j;
        CHECK(idx[rr] == best);
    }
    free(x);
}

/* The documented sampling rule, in double: first i with cumsum(exp((x - max) / T)) > u * sum. */
static int32_t ref_sample(const float *x, int64_t cols, float temp, double u) {
    double mx = -INFINITY, tot = 0.0, cum = 0.0;
    for (int64_t j = 0; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < cols; j++) tot += exp(((double)x[j] - mx) * (1.0 / (double)temp));
    for (int64_t j = 0; j < cols; j++) {
        cum += exp(((double)x[j] - mx) * (1.0 / (double)temp));
        if (cum > u * tot) return (int32_t)j;
    }
    return -1;
}

static void test_sample(hb_backend *be) {
    trng r = {37};
    const int64_t rows = 5, cols = 257, ld = 260;
    float *x = fvec(rows * ld);
    int32_t am[5], s0[5], s1[5], s2[5];
    trng_fill(&r, x, rows * ld, -4.0f, 4.0f);

    // temperature <= 0 is argmax
    CHECK(HB_OP(be, argmax, .out = am, .in = hb_t2(x, HB_F32, rows, cols, ld)) == HB_OK);
    CHECK(HB_OP(be, sample, .out = s0, .logits = hb_t2(x, HB_F32, rows, cols, ld), .seed = 1) == HB_OK);
    CHECK(HB_OP(be, sample, .out = s1, .logits = hb_t2(x, HB_F32, rows, cols, ld), .temperature = -1.0f, .seed = 1, .step = 9) == HB_OK);
    CHECK(memcmp(am, s0, sizeof am) == 0 && memcmp(am, s1, sizeof am) == 0);

    // deterministic per (seed, step), and the rule as documented
    int differ = 0, bad = 0;
    for (uint64_t step = 0; step < 50; step++) {
        CHECK(HB_OP(be, sample, .out = s0, .logits = hb_t2(x, HB_F32, rows, cols, ld), .temperature = 1.0f, .seed = 99, .step = step) == HB_OK);
        CHECK(HB_OP(be, sample, .out = s1, .logits = hb_t2(x, HB_F32, rows, cols, ld), .temperature = 1.0f, .seed = 99, .step = step) == HB_OK);
        CHECK(HB_OP(be, sample, .out = s2, .logits = hb_t2(x, HB_F32, rows, cols, ld), .temperature = 1.0f, .seed = 98, .step = step) == HB_OK);
        bad += memcmp(s0, s1, sizeof s0) != 0;
        differ += memcmp(s0, s2, sizeof s0) != 0;
        for (int64_t rr = 0; rr < rows; rr++) {
            double u = hb_rng_unit(99, step * (uint64_t)rows + (uint64_t)rr);
            bad += s0[rr] != ref_sample(x + rr * ld, cols, 1.0f, u);
        }
    }
    CHECK_MSG(bad == 0, "%d sampling mismatches", bad);
    CHECK(differ > 40);

    // a tiny vocabulary: frequencies over many steps follow softmax(x / T)
    const float logits[4] = {0.0f, 1.0f, 2.0f, 0.5f};
    const float temps[2] = {0.7f, 3.0f};
    for (int ti = 0; ti < 2; ti++) {
        enum { steps = 20000 };
        int cnt[4] = {0};
        int32_t pick;
        for (uint64_t step = 0; step < steps; step++) {
            CHECK(HB_OP(be, sample, .out = &pick, .logits = hb_t2(logits, HB_F32, 1, 4, 4), .temperature = temps[ti],
                        .seed = 2024, .step = step) == HB_OK);
            if (pick >= 0 && pick < 4) cnt[pick]++;
        }
        double z = 0.0, p[4];
        for (int j = 0; j < 4; j++) z += p[j] = exp(logits[j] / temps[ti]);
        for (int j = 0; j < 4; j++) // ~5 standard deviations at n = 20000
            CHECK_MSG(fabs(cnt[j] / (double)steps - p[j] / z) < 0.018, "T=%g token %d: %.4f vs %.4f",
                      (double)temps[ti], j, cnt[j] / (double)steps, p[j] / z);
    }
    // a very low temperature is argmax
    int32_t pick = -1;
    CHECK(HB_OP(be, sample, .out = &pick, .logits = hb_t2(logits, HB_F32, 1, 4, 4), .temperature = 1e-3f, .seed = 5, .step = 5) == HB_OK);
    CHECK(pick == 2);
    free(x);
}

int main(void) {
    hb_err err = {{0}};
    hb_backend *be = NULL;
    test_registry();
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "cpu: %s, %d threads, %s kernels\n", be->info.name, be->info.n_threads,
            hb_cpu_isa_name(((const hb_cpu_ctx *)be->ctx)->isa));
    test_device(be);
    test_bf16_cases();
    test_f16_cases();
    test_dtype_exhaustive();
    test_dtype_nearest();
    test_convert(be);
    test_fill(be);
    test_matmul(be);
    test_matmul_batched(be);
    test_embedding(be);
    test_norms(be);
    test_rope(be);
    test_kv_store_paged(be);
    test_attention(be);
    test_elementwise(be);
    test_softmax(be);
    test_argmax(be);
    test_sample(be);
    hb_backend_close(be);
    HB_TEST_END();
}
