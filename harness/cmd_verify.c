/* cmd_verify.c - `hetbench verify`: every op of each available GPU backend, for every storage
 * dtype and a few shapes (odd sizes, not multiples of any tile), against the CPU reference
 * backend; then a whole `tiny` model's logits on both.
 *
 * Each case builds its inputs on the host, uploads the same bytes to both backends, poisons the
 * outputs (all bits set: NaN for floats, -1 for token ids) so that an element the device does
 * not write fails, runs the op on both, and compares:
 *   float outputs   max |dut - ref| / max |ref|, against a bound per op and dtype;
 *                   a NaN or inf anywhere fails
 *   exact outputs   generators, casts, quantisation (codes and scales), copies, argmax,
 *                   sampling: the fraction of elements that differ (bit for bit), bound 0
 * The CPU computes every dtype, fp8 e4m3/e5m2 with tensor, row and block scales included (it
 * is the specification, ops.h). A case the device reports unsupported is listed as such and
 * does not fail.
 *
 * Output: a '#'-headed table (op, dtype, shape, max rel err, bound, verdict) per device and a
 * summary line. Exit: 0 all passed, 1 a mismatch or a device error (or the requested backend
 * is unavailable), 2 bad flags. With no GPU backend available and no --backend, it prints
 * "no GPU backend available: nothing verified" and exits 0 (the ctest wrapper turns that into
 * a skip). `--backend cpu` checks the CPU against itself: a smoke test of this command. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h" // defines: HB_OP, hb_tensor (with dtype.h's fp8 conversions)
#include "harness/commands.h"
#include "workloads/model.h"
#include "workloads/workload.h"

static const char *const help_verify =
    "usage: hetbench verify [--backend B] [--dtype D[,D...]] [--device N] [--require-device]\n"
    "\n"
    "Runs every op of each available GPU backend (or of --backend) for every storage dtype and\n"
    "a few shapes against the CPU reference backend, then a whole 'tiny' model's logits, and\n"
    "prints a table: op, dtype, shape, max relative error (max |dev - cpu| / max |cpu|), bound,\n"
    "verdict. Outputs are poisoned (NaN) before every run, so an element the device does not\n"
    "write fails; a NaN fails; an op the device does not support is listed, not failed.\n"
    "fp8 rows: quantised fills and casts (tensor, row, block scales), fp8 GEMMs with tensor and\n"
    "128x128 block scales, fp8 KV caches.\n"
    "\n"
    "options:\n"
    "  --backend B   cuda | hip | cpu (cpu: the CPU against itself)    [every GPU backend]\n"
    "  --dtype D     f32, bf16, f16, fp8 (e4m3), e5m2 (comma list): the rows to run   [all]\n"
    "  --device N    device index of each backend                           [0]\n"
    "  --require-device  fail (exit 1) when no backend had a device to verify: for a GPU CI\n"
    "                job, so that a runner without its GPU does not pass\n"
    "\n"
    "exit codes: 0 everything matched (or no GPU backend: nothing verified, unless\n"
    "--require-device), 1 a mismatch or a device error, --backend unavailable, or nothing\n"
    "verified with --require-device, 2 usage error\n";

/* ---- the run ---- */

typedef struct vctx {
    hb_backend *ref; /* the CPU */
    hb_backend *dut; /* the device under test */
    unsigned dtypes; /* bit i: dtype i selected */
    int n_pass, n_fail, n_unsup;
} vctx;

static int want(const vctx *v, hb_dtype dt) { return (v->dtypes >> dt) & 1u; }

static void row(vctx *v, const char *op, hb_dtype dt, const char *shape, double err, double bound,
                const char *verdict, const char *note) {
    char e[32], b[32];
    if (isnan(err)) snprintf(e, sizeof e, "-");
    else snprintf(e, sizeof e, "%.3e", err);
    snprintf(b, sizeof b, "%.1e", bound);
    printf("  %-16s %-5s %-46s %11s %9s  %s%s%s\n", op, hb_dtype_name(dt), shape, e, b, verdict,
           note && *note ? ": " : "", note ? note : "");
    fflush(stdout);
    if (strcmp(verdict, "ok") == 0) v->n_pass++;
    else if (strcmp(verdict, "unsupported") == 0) v->n_unsup++;
    else v->n_fail++;
}

/* Statuses of the two runs: 1 when the outputs are to be compared, else the row is written. */
static int statuses(vctx *v, const char *op, hb_dtype dt, const char *shape, double bound,
                    hb_status sr, hb_status sd) {
    if (sd == HB_ERR_UNSUPPORTED) {
        row(v, op, dt, shape, NAN, bound, "unsupported", v->dut->err);
        return 0;
    }
    if (sd != HB_OK) {
        row(v, op, dt, shape, NAN, bound, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(sd));
        return 0;
    }
    if (sr != HB_OK) { /* the CPU computes every case: its failure is a failure */
        row(v, op, dt, shape, NAN, bound, "FAIL",
            v->ref->err[0] ? v->ref->err : hb_status_str(sr));
        return 0;
    }
    return 1;
}

/* max |d - r| / max |r|; +inf when anything is not finite. */
static double rel_err(const float *r, const float *d, int64_t n) {
    double maxr = 0.0, maxe = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(r[i]) || !isfinite(d[i])) return INFINITY;
        maxr = fmax(maxr, fabs((double)r[i]));
        maxe = fmax(maxe, fabs((double)d[i] - (double)r[i]));
    }
    return maxe == 0.0 ? 0.0 : maxe / (maxr > 0.0 ? maxr : 1e-30);
}

/* Fraction of differing elements of size esz (bit for bit). */
static double diff_frac(const void *r, const void *d, int64_t n, size_t esz) {
    if (n <= 0) return 0.0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += memcmp((const char *)r + i * esz, (const char *)d + i * esz, esz) != 0;
    return (double)bad / (double)n;
}

static void verdict(vctx *v, const char *op, hb_dtype dt, const char *shape, double err,
                    double bound) {
    row(v, op, dt, shape, err, bound, err <= bound ? "ok" : "FAIL", NULL);
}

/* ---- buffers on both backends ---- */

typedef struct vbuf {
    void *r, *d;
    size_t nbytes;
} vbuf;

static void vb_free(vctx *v, vbuf *b) {
    if (b->r) v->ref->ops->free(v->ref, b->r);
    if (b->d) v->dut->ops->free(v->dut, b->d);
    memset(b, 0, sizeof *b);
}

static hb_status vb_alloc(vctx *v, vbuf *b, size_t nbytes) {
    memset(b, 0, sizeof *b);
    b->nbytes = nbytes;
    hb_status s = v->ref->ops->alloc(v->ref, nbytes, &b->r);
    if (s == HB_OK) s = v->dut->ops->alloc(v->dut, nbytes, &b->d);
    if (s != HB_OK) vb_free(v, b);
    return s;
}

static hb_status vb_set(vctx *v, vbuf *b, const void *h) {
    hb_status s = v->ref->ops->upload(v->ref, b->r, h, b->nbytes);
    if (s == HB_OK) s = v->dut->ops->upload(v->dut, b->d, h, b->nbytes);
    return s;
}

/* All bits set: NaN as f32, -1 as int32, 0xff bytes otherwise (an e4m3 NaN). */
static hb_status vb_poison(vctx *v, vbuf *b) {
    void *p = malloc(b->nbytes ? b->nbytes : 1);
    if (!p) return HB_ERR_NOMEM;
    memset(p, 0xff, b->nbytes);
    hb_status s = vb_set(v, b, p);
    free(p);
    return s;
}

/* Host copies of both (after both backends finished); freed by the caller. */
static hb_status vb_get(vctx *v, vbuf *b, void **hr, void **hd) {
    *hr = malloc(b->nbytes ? b->nbytes : 1);
    *hd = malloc(b->nbytes ? b->nbytes : 1);
    if (!*hr || !*hd) return HB_ERR_NOMEM;
    hb_status s = v->ref->ops->sync(v->ref);
    if (s == HB_OK) s = v->dut->ops->sync(v->dut);
    if (s == HB_OK) s = v->ref->ops->download(v->ref, *hr, b->r, b->nbytes);
    if (s == HB_OK) s = v->dut->ops->download(v->dut, *hd, b->d, b->nbytes);
    return s;
}

/* The reference's buffer copied to the device's (inputs made by the CPU: quantised weights). */
static hb_status vb_ref_to_dut(vctx *v, vbuf *b) {
    void *h = malloc(b->nbytes ? b->nbytes : 1);
    if (!h) return HB_ERR_NOMEM;
    hb_status s = v->ref->ops->download(v->ref, h, b->r, b->nbytes);
    if (s == HB_OK) s = v->dut->ops->upload(v->dut, b->d, h, b->nbytes);
    free(h);
    return s;
}

/* Compares the f32 buffer b and writes the row. */
static void check_f32(vctx *v, const char *op, hb_dtype dt, const char *shape, vbuf *b,
                      double bound) {
    void *hr = NULL, *hd = NULL;
    hb_status s = vb_get(v, b, &hr, &hd);
    if (s != HB_OK) row(v, op, dt, shape, NAN, bound, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(s));
    else verdict(v, op, dt, shape, rel_err(hr, hd, (int64_t)(b->nbytes / 4)), bound);
    free(hr);
    free(hd);
}

static void check_exact(vctx *v, const char *op, hb_dtype dt, const char *shape, vbuf *b,
                        size_t esz) {
    void *hr = NULL, *hd = NULL;
    hb_status s = vb_get(v, b, &hr, &hd);
    if (s != HB_OK) row(v, op, dt, shape, NAN, 0.0, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(s));
    else verdict(v, op, dt, shape, diff_frac(hr, hd, (int64_t)(b->nbytes / esz), esz), 0.0);
    free(hr);
    free(hd);
}

/* ---- host data ---- */

static float *hvec(int64_t n, uint64_t seed, float scale, float offset) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x) return NULL;
    for (int64_t i = 0; i < n; i++) x[i] = hb_rng_value(seed, (uint64_t)i, scale, offset);
    return x;
}

/* x stored in dt (round to nearest even; fp8 saturating, no scale): the same bytes go to both
 * backends. */
static void *to_dtype(const float *x, int64_t n, hb_dtype dt) {
    void *d = malloc((size_t)(n > 0 ? n : 1) * (size_t)hb_dtype_size(dt));
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) hb_store_f32(d, dt, i, x[i]);
    return d;
}

/* Values over 2^-30 .. 2^17 in magnitude, and groups of very different magnitudes (so that
 * the scales of a quantisation differ): subnormal in f16/fp8, ordinary, huge. */
static float *hvec_wide(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x) return NULL;
    for (int64_t i = 0; i < n; i++) x[i] = hb_rng_pm1(seed, (uint64_t)i) * ldexpf(1.0f, (int)(i % 48) - 30);
    return x;
}

#define OOM(v, op, dt, shape) row(v, op, dt, shape, NAN, 0.0, "FAIL", "out of memory")

static const hb_dtype fp8_dtypes[] = {HB_FP8_E4M3, HB_FP8_E5M2};

/* The quantisations the rows exercise: a 2-D shape and its scale layout (tensor.h). */
typedef struct qshape {
    int64_t rows, cols;
    hb_qkind kind;
    int64_t bm, bk;
} qshape;

static const qshape qshapes[] = {
    {1, 70001, HB_QUANT_TENSOR, 0, 0},    /* one amax over many blocks of threads */
    {300, 257, HB_QUANT_ROW, 0, 0},
    {130, 200, HB_QUANT_BLOCK, 128, 128}, /* DeepSeek-V3 weight blocks, partial at the edges */
    {7, 300, HB_QUANT_BLOCK, 1, 128},     /* activation tiles */
};

static int64_t qshape_nscales(const qshape *q) {
    const int64_t bm = q->kind == HB_QUANT_TENSOR ? q->rows : q->kind == HB_QUANT_ROW ? 1 : q->bm;
    const int64_t bk = q->kind == HB_QUANT_BLOCK ? q->bk : q->cols;
    return ((q->rows + bm - 1) / bm) * ((q->cols + bk - 1) / bk);
}

static void qshape_str(char *s, size_t n, const qshape *q, const char *what) {
    if (q->kind == HB_QUANT_BLOCK)
        snprintf(s, n, "%lldx%lld block %lldx%lld %s", (long long)q->rows, (long long)q->cols, (long long)q->bm,
                 (long long)q->bk, what);
    else
        snprintf(s, n, "%lldx%lld %s %s", (long long)q->rows, (long long)q->cols, hb_qkind_name(q->kind), what);
}

/* Codes and scales of x (rows, cols) quantised by the CPU (convert), on both backends. */
static hb_status quantise_both(vctx *v, const float *x, int64_t rows, int64_t cols, hb_dtype dt, hb_qkind kind,
                               int64_t bm, int64_t bk, vbuf *codes, vbuf *scales) {
    memset(codes, 0, sizeof *codes), memset(scales, 0, sizeof *scales);
    vbuf src;
    hb_tensor t = hb_t2(NULL, dt, rows, cols, cols);
    t.q.kind = kind, t.q.bm = bm, t.q.bk = bk;
    const int64_t ns = hb_quant_nscales(&t, NULL, NULL);
    hb_status s = vb_alloc(v, &src, (size_t)(rows * cols) * 4);
    if (s == HB_OK) s = vb_alloc(v, codes, (size_t)(rows * cols));
    if (s == HB_OK) s = vb_alloc(v, scales, (size_t)ns * 4);
    if (s == HB_OK) s = vb_set(v, &src, x);
    if (s == HB_OK)
        s = HB_OP(v->ref, convert, .dst = hb_tq(hb_t2(codes->r, dt, rows, cols, cols), kind, bm, bk, scales->r),
                  .src = hb_t2(src.r, HB_F32, rows, cols, cols));
    if (s == HB_OK) s = vb_ref_to_dut(v, codes);
    if (s == HB_OK) s = vb_ref_to_dut(v, scales);
    vb_free(v, &src);
    return s;
}

/* ---- the ops ---- */

static void t_fill(vctx *v) {
    static const struct { int64_t n; float scale, offset; } cases[] = {
        {1, 1.0f, 0.0f}, {100003, 0.02f, 0.0f}, {65537, 0.1f, 1.0f}, {4099, 600.0f, 0.0f}};
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt)) continue;
        for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
            char shape[64];
            snprintf(shape, sizeof shape, "n=%lld scale=%g offset=%g", (long long)cases[c].n,
                     (double)cases[c].scale, (double)cases[c].offset);
            const int64_t n = cases[c].n, esz = hb_dtype_size((hb_dtype)dt);
            const uint64_t seed = 1000 + (uint64_t)c;
            vbuf b;
            if (vb_alloc(v, &b, (size_t)(n * esz)) != HB_OK) { OOM(v, "fill_random", dt, shape); continue; }
            hb_status sd = vb_poison(v, &b);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, fill_random, .dst = hb_t1(b.d, (hb_dtype)dt, n), .seed = seed,
                           .scale = cases[c].scale, .offset = cases[c].offset);
            hb_status sr = HB_OP(v->ref, fill_random, .dst = hb_t1(b.r, (hb_dtype)dt, n), .seed = seed,
                                 .scale = cases[c].scale, .offset = cases[c].offset);
            if (statuses(v, "fill_random", (hb_dtype)dt, shape, 0.0, sr, sd))
                check_exact(v, "fill_random", (hb_dtype)dt, shape, &b, (size_t)esz);
            vb_free(v, &b);
        }
    }
    /* into a quantised tensor: the quantisation of the f32 values, codes and scales exact */
    for (int di = 0; di < HB_ARRAY_LEN(fp8_dtypes); di++) {
        const hb_dtype dt = fp8_dtypes[di];
        if (!want(v, dt)) continue;
        for (int c = 0; c < HB_ARRAY_LEN(qshapes); c++) {
            const qshape *q = &qshapes[c];
            const int64_t n = q->rows * q->cols, ns = qshape_nscales(q);
            char sc[80], ss[80];
            qshape_str(sc, sizeof sc, q, "codes");
            qshape_str(ss, sizeof ss, q, "scales");
            vbuf b, s;
            memset(&s, 0, sizeof s);
            if (vb_alloc(v, &b, (size_t)n) != HB_OK || vb_alloc(v, &s, (size_t)ns * 4) != HB_OK) {
                OOM(v, "fill_random", dt, sc);
                vb_free(v, &b), vb_free(v, &s);
                continue;
            }
            hb_status sd = vb_poison(v, &b);
            if (sd == HB_OK) sd = vb_poison(v, &s);
            const uint64_t seed = 2000 + (uint64_t)c;
            const float scale = c % 2 ? 3.0f : 0.05f, offset = c == 2 ? 0.5f : 0.0f;
            if (sd == HB_OK)
                sd = HB_OP(v->dut, fill_random, .dst = hb_tq(hb_t2(b.d, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, s.d),
                           .seed = seed, .scale = scale, .offset = offset);
            hb_status sr = HB_OP(v->ref, fill_random, .dst = hb_tq(hb_t2(b.r, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, s.r),
                                 .seed = seed, .scale = scale, .offset = offset);
            if (statuses(v, "fill_random", dt, sc, 0.0, sr, sd)) {
                check_exact(v, "fill_random", dt, sc, &b, 1);
                check_exact(v, "fill_random", dt, ss, &s, 4);
            }
            vb_free(v, &b), vb_free(v, &s);
        }
    }
    if (!want(v, HB_F32)) return;
    static const struct { int64_t n, vocab; } tk[] = {{1, 2}, {100003, 7}, {4096, 128256}};
    for (int c = 0; c < HB_ARRAY_LEN(tk); c++) {
        char shape[64];
        snprintf(shape, sizeof shape, "n=%lld vocab=%lld", (long long)tk[c].n, (long long)tk[c].vocab);
        vbuf b;
        if (vb_alloc(v, &b, (size_t)tk[c].n * 4) != HB_OK) { OOM(v, "fill_tokens", HB_F32, shape); continue; }
        hb_status sd = vb_poison(v, &b);
        if (sd == HB_OK) sd = HB_OP(v->dut, fill_tokens, .dst = b.d, .n = tk[c].n, .seed = 77, .vocab = tk[c].vocab);
        hb_status sr = HB_OP(v->ref, fill_tokens, .dst = b.r, .n = tk[c].n, .seed = 77, .vocab = tk[c].vocab);
        if (statuses(v, "fill_tokens", HB_F32, shape, 0.0, sr, sd))
            check_exact(v, "fill_tokens", HB_F32, shape, &b, 4);
        vb_free(v, &b);
    }
}

/* dst <- src for every pair of dtypes, then fp8 quantisation (f32 -> codes + scales) and
 * dequantisation (codes + scales -> f32, bf16): bit-exact with the CPU. */
static void t_convert(vctx *v) {
    const int64_t n = 70001;
    for (int sdt = 0; sdt < HB_DTYPE_COUNT; sdt++)
        for (int ddt = 0; ddt < HB_DTYPE_COUNT; ddt++) {
            if (!want(v, (hb_dtype)sdt) && !want(v, (hb_dtype)ddt)) continue;
            char op[32], shape[64];
            snprintf(op, sizeof op, "convert->%s", hb_dtype_name((hb_dtype)ddt));
            snprintf(shape, sizeof shape, "n=%lld from %s", (long long)n, hb_dtype_name((hb_dtype)sdt));
            float *x = hvec_wide(n, 4242);
            void *src = x ? to_dtype(x, n, (hb_dtype)sdt) : NULL;
            const int64_t ses = hb_dtype_size((hb_dtype)sdt), des = hb_dtype_size((hb_dtype)ddt);
            vbuf in, out;
            memset(&in, 0, sizeof in), memset(&out, 0, sizeof out);
            if (!src || vb_alloc(v, &in, (size_t)(n * ses)) != HB_OK || vb_alloc(v, &out, (size_t)(n * des)) != HB_OK) {
                OOM(v, op, ddt, shape);
            } else {
                hb_status sd = vb_set(v, &in, src); /* the same source bytes on both */
                if (sd == HB_OK) sd = vb_poison(v, &out);
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, convert, .dst = hb_t1(out.d, (hb_dtype)ddt, n), .src = hb_t1(in.d, (hb_dtype)sdt, n));
                hb_status sr = HB_OP(v->ref, convert, .dst = hb_t1(out.r, (hb_dtype)ddt, n), .src = hb_t1(in.r, (hb_dtype)sdt, n));
                if (statuses(v, op, (hb_dtype)ddt, shape, 0.0, sr, sd))
                    check_exact(v, op, (hb_dtype)ddt, shape, &out, (size_t)des);
            }
            vb_free(v, &in), vb_free(v, &out);
            free(src), free(x);
        }
    for (int di = 0; di < HB_ARRAY_LEN(fp8_dtypes); di++) {
        const hb_dtype dt = fp8_dtypes[di];
        if (!want(v, dt)) continue;
        for (int c = 0; c < HB_ARRAY_LEN(qshapes); c++) {
            const qshape *q = &qshapes[c];
            const int64_t m = q->rows * q->cols, ns = qshape_nscales(q);
            char sc[80], ss[80], op[32];
            qshape_str(sc, sizeof sc, q, "codes");
            qshape_str(ss, sizeof ss, q, "scales");
            snprintf(op, sizeof op, "convert->%s", hb_dtype_name(dt));
            float *x = hvec_wide(m, 4343 + (uint64_t)c);
            vbuf in, codes, scales;
            memset(&in, 0, sizeof in), memset(&codes, 0, sizeof codes), memset(&scales, 0, sizeof scales);
            if (!x || vb_alloc(v, &in, (size_t)m * 4) || vb_alloc(v, &codes, (size_t)m) ||
                vb_alloc(v, &scales, (size_t)ns * 4)) {
                OOM(v, op, dt, sc);
            } else {
                /* quantise: f32 -> codes with scales computed by the op */
                hb_status sd = vb_set(v, &in, x);
                if (sd == HB_OK) sd = vb_poison(v, &codes);
                if (sd == HB_OK) sd = vb_poison(v, &scales);
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, convert, .dst = hb_tq(hb_t2(codes.d, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, scales.d),
                               .src = hb_t2(in.d, HB_F32, q->rows, q->cols, q->cols));
                hb_status sr = HB_OP(v->ref, convert, .dst = hb_tq(hb_t2(codes.r, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, scales.r),
                                     .src = hb_t2(in.r, HB_F32, q->rows, q->cols, q->cols));
                if (statuses(v, op, dt, sc, 0.0, sr, sd)) {
                    check_exact(v, op, dt, sc, &codes, 1);
                    check_exact(v, op, dt, ss, &scales, 4);
                }
                /* dequantise the CPU's codes and scales on both: to f32 and to bf16 */
                for (int o = 0; o < 2 && sr == HB_OK; o++) {
                    const hb_dtype odt = o ? HB_BF16 : HB_F32;
                    char dop[32], dsh[80];
                    snprintf(dop, sizeof dop, "convert->%s", hb_dtype_name(odt));
                    qshape_str(dsh, sizeof dsh, q, o ? "dequant" : "dequant");
                    vbuf out;
                    if (vb_alloc(v, &out, (size_t)(m * hb_dtype_size(odt))) != HB_OK) {
                        OOM(v, dop, dt, dsh);
                        continue;
                    }
                    sd = vb_ref_to_dut(v, &codes);
                    if (sd == HB_OK) sd = vb_ref_to_dut(v, &scales);
                    if (sd == HB_OK) sd = vb_poison(v, &out);
                    const hb_tensor qd = hb_tq(hb_t2(codes.d, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, scales.d);
                    const hb_tensor qr = hb_tq(hb_t2(codes.r, dt, q->rows, q->cols, q->cols), q->kind, q->bm, q->bk, scales.r);
                    if (sd == HB_OK) sd = HB_OP(v->dut, convert, .dst = hb_t2(out.d, odt, q->rows, q->cols, q->cols), .src = qd);
                    hb_status sr2 = HB_OP(v->ref, convert, .dst = hb_t2(out.r, odt, q->rows, q->cols, q->cols), .src = qr);
                    /* the row carries the fp8 dtype (what --dtype selects) */
                    if (statuses(v, dop, dt, dsh, 0.0, sr2, sd))
                        check_exact(v, dop, dt, dsh, &out, (size_t)hb_dtype_size(odt));
                    vb_free(v, &out);
                }
            }
            vb_free(v, &in), vb_free(v, &codes), vb_free(v, &scales);
            free(x);
        }
    }
}

static void t_embedding(vctx *v) {
    static const struct { int64_t B, T, C, V, pos0; int wpe; } cases[] = {
        {1, 1, 1, 1, 0, 0}, {3, 5, 67, 101, 2, 1}, {2, 33, 768, 1000, 0, 1}, {4, 1, 4096, 3001, 7, 0}};
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt) || hb_dtype_is_fp8((hb_dtype)dt)) continue; /* no fp8 tables in models */
        for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
            const int64_t B = cases[c].B, T = cases[c].T, C = cases[c].C, V = cases[c].V, N = B * T;
            const int64_t maxT = cases[c].pos0 + T;
            char shape[64];
            snprintf(shape, sizeof shape, "B=%lld T=%lld C=%lld V=%lld pos0=%lld%s", (long long)B,
                     (long long)T, (long long)C, (long long)V, (long long)cases[c].pos0,
                     cases[c].wpe ? " +wpe" : "");
            const int64_t es = hb_dtype_size((hb_dtype)dt);
            int32_t *tok = malloc((size_t)N * sizeof *tok);
            float *te = hvec(V * C, 11, 1.0f, 0.0f), *pe = hvec(maxT * C, 12, 1.0f, 0.0f);
            void *ted = te ? to_dtype(te, V * C, (hb_dtype)dt) : NULL;
            void *ped = pe ? to_dtype(pe, maxT * C, (hb_dtype)dt) : NULL;
            vbuf bt, bte, bpe, bo;
            memset(&bt, 0, sizeof bt), memset(&bte, 0, sizeof bte), memset(&bpe, 0, sizeof bpe), memset(&bo, 0, sizeof bo);
            if (!tok || !ted || !ped || vb_alloc(v, &bt, (size_t)N * 4) || vb_alloc(v, &bte, (size_t)(V * C * es)) ||
                vb_alloc(v, &bpe, (size_t)(maxT * C * es)) || vb_alloc(v, &bo, (size_t)(N * C * 4))) {
                OOM(v, "embedding", dt, shape);
            } else {
                for (int64_t i = 0; i < N; i++) tok[i] = (int32_t)(hb_rng_u64(13, (uint64_t)i) % (uint64_t)V);
                hb_status sd = vb_set(v, &bt, tok);
                if (sd == HB_OK) sd = vb_set(v, &bte, ted);
                if (sd == HB_OK) sd = vb_set(v, &bpe, ped);
                if (sd == HB_OK) sd = vb_poison(v, &bo);
                const int w = cases[c].wpe;
                const int64_t p0 = cases[c].pos0;
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, embedding, .out = hb_t2(bo.d, HB_F32, N, C, C), .wte = hb_t2(bte.d, (hb_dtype)dt, V, C, C),
                               .wpe = w ? hb_t2(bpe.d, (hb_dtype)dt, maxT, C, C) : (hb_tensor){0}, .tokens = bt.d,
                               .B = B, .T = T, .pos0 = p0);
                hb_status sr = HB_OP(v->ref, embedding, .out = hb_t2(bo.r, HB_F32, N, C, C), .wte = hb_t2(bte.r, (hb_dtype)dt, V, C, C),
                                     .wpe = w ? hb_t2(bpe.r, (hb_dtype)dt, maxT, C, C) : (hb_tensor){0}, .tokens = bt.r,
                                     .B = B, .T = T, .pos0 = p0);
                if (statuses(v, "embedding", (hb_dtype)dt, shape, 0.0, sr, sd))
                    check_exact(v, "embedding", (hb_dtype)dt, shape, &bo, 4);
            }
            vb_free(v, &bt), vb_free(v, &bte), vb_free(v, &bpe), vb_free(v, &bo);
            free(ted), free(ped);
            free(te), free(pe), free(tok);
        }
    }
}

/* Compares the (M, N) block of an output whose rows are ldo apart; the padding columns must
 * hold what they held before (poison, or values when beta != 0 - then they are compared too). */
static void check_rows(vctx *v, const char *op, hb_dtype dt, const char *shape, vbuf *b, int64_t M, int64_t N,
                       int64_t ldo, double bound) {
    void *hr = NULL, *hd = NULL;
    if (vb_get(v, b, &hr, &hd) != HB_OK) {
        row(v, op, dt, shape, NAN, bound, "FAIL", v->dut->err);
    } else {
        double maxr = 0, maxe = 0;
        int bad = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < ldo; n++) {
                const float r = ((float *)hr)[m * ldo + n], d = ((float *)hd)[m * ldo + n];
                if (n >= N) { bad |= memcmp(&r, &d, 4) != 0; continue; } /* untouched */
                if (!isfinite(r) || !isfinite(d)) bad = 1;
                maxr = fmax(maxr, fabs(r));
                maxe = fmax(maxe, fabs((double)d - r));
            }
        verdict(v, op, dt, shape, bad ? INFINITY : maxe / fmax(maxr, 1e-30), bound);
    }
    free(hr), free(hd);
}

/* rmsnorm and layernorm (ln != 0); rows ld apart in some cases. */
static void t_norm(vctx *v, int ln) {
    if (!want(v, HB_F32)) return;
    static const struct { int64_t N, C, pad; } cases[] = {
        {1, 1, 0}, {7, 67, 3}, {5, 4096, 0}, {2, 12289, 0}, {300, 257, 1}};
    const char *op = ln ? "layernorm" : "rmsnorm";
    const double bound = 2e-5;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t N = cases[c].N, C = cases[c].C, ld = C + cases[c].pad;
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld C=%lld ld=%lld", (long long)N, (long long)C, (long long)ld);
        float *x = hvec(N * ld, 21, 2.0f, 0.5f), *w = hvec(C, 22, 0.1f, 1.0f), *bb = hvec(C, 23, 0.02f, 0.0f);
        vbuf bx, bw, bb2, bo;
        memset(&bx, 0, sizeof bx), memset(&bw, 0, sizeof bw), memset(&bb2, 0, sizeof bb2), memset(&bo, 0, sizeof bo);
        if (!x || !w || !bb || vb_alloc(v, &bx, (size_t)(N * ld * 4)) || vb_alloc(v, &bw, (size_t)C * 4) ||
            vb_alloc(v, &bb2, (size_t)C * 4) || vb_alloc(v, &bo, (size_t)(N * ld * 4))) {
            OOM(v, op, HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bx, x);
            if (sd == HB_OK) sd = vb_set(v, &bw, w);
            if (sd == HB_OK) sd = vb_set(v, &bb2, bb);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            hb_status sr;
            if (ln) {
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, layernorm, .out = hb_t2(bo.d, HB_F32, N, C, ld), .in = hb_t2(bx.d, HB_F32, N, C, ld),
                               .w = hb_t1(bw.d, HB_F32, C), .b = hb_t1(bb2.d, HB_F32, C), .eps = 1e-5f);
                sr = HB_OP(v->ref, layernorm, .out = hb_t2(bo.r, HB_F32, N, C, ld), .in = hb_t2(bx.r, HB_F32, N, C, ld),
                           .w = hb_t1(bw.r, HB_F32, C), .b = hb_t1(bb2.r, HB_F32, C), .eps = 1e-5f);
            } else {
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, rmsnorm, .out = hb_t2(bo.d, HB_F32, N, C, ld), .in = hb_t2(bx.d, HB_F32, N, C, ld),
                               .w = hb_t1(bw.d, HB_F32, C), .eps = 1e-5f);
                sr = HB_OP(v->ref, rmsnorm, .out = hb_t2(bo.r, HB_F32, N, C, ld), .in = hb_t2(bx.r, HB_F32, N, C, ld),
                           .w = hb_t1(bw.r, HB_F32, C), .eps = 1e-5f);
            }
            /* the padding columns keep the poison on both */
            if (statuses(v, op, HB_F32, shape, bound, sr, sd)) check_rows(v, op, HB_F32, shape, &bo, N, C, ld, bound);
        }
        vb_free(v, &bx), vb_free(v, &bw), vb_free(v, &bb2), vb_free(v, &bo);
        free(x), free(w), free(bb);
    }
    if (ln) return;
    /* rows of a 3-D view, in place: the first H heads of D inside rows of ld (Qwen3's q norm
     * inside qkv rows); the other columns must keep their values on both */
    {
        const int64_t N = 5, H = 3, D = 32, ld = 5 * D + 8;
        const char *shape = "N=5 heads=3 D=32 ld=168 (3-D, in place)";
        float *x = hvec(N * ld, 24, 2.0f, 0.5f), *w = hvec(D, 25, 0.1f, 1.0f);
        vbuf bx, bw;
        memset(&bx, 0, sizeof bx), memset(&bw, 0, sizeof bw);
        if (!x || !w || vb_alloc(v, &bx, (size_t)(N * ld * 4)) || vb_alloc(v, &bw, (size_t)D * 4)) {
            OOM(v, op, HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bx, x);
            if (sd == HB_OK) sd = vb_set(v, &bw, w);
            hb_tensor td = hb_t3(bx.d, HB_F32, N, H, D), tr = hb_t3(bx.r, HB_F32, N, H, D);
            td.st[0] = tr.st[0] = ld;
            if (sd == HB_OK) sd = HB_OP(v->dut, rmsnorm, .out = td, .in = td, .w = hb_t1(bw.d, HB_F32, D), .eps = 1e-6f);
            hb_status sr = HB_OP(v->ref, rmsnorm, .out = tr, .in = tr, .w = hb_t1(bw.r, HB_F32, D), .eps = 1e-6f);
            if (statuses(v, op, HB_F32, shape, bound, sr, sd)) check_rows(v, op, HB_F32, shape, &bx, N, ld, ld, bound);
        }
        vb_free(v, &bx), vb_free(v, &bw);
        free(x), free(w);
    }
}

/* Bound of matmul by weight dtype: f32 accumulates in f32 on both; with bf16/f16 weights a
 * vendor GEMM (M > 8) also rounds the activations to the weight dtype (2^-9, 2^-12). */
static double matmul_bound(hb_dtype dt) {
    switch (dt) {
    case HB_F32: return 1e-4;
    case HB_BF16: return 1e-2;
    default: return 2e-3;
    }
}

/* With A stored in the weight dtype (A=w) both sides multiply the same values exactly: only
 * the order of the f32 sums differs. */
static const double matmul_typed_bound = 1e-3;

static const struct mm_shape { int64_t M, N, K, pad_a, pad_o; int bias; float beta; } mm_cases[] = {
    {1, 1, 1, 0, 0, 0, 0.0f},       {1, 67, 129, 0, 0, 1, 0.0f},    {2, 64, 256, 0, 0, 0, 1.0f},
    {3, 50, 33, 5, 3, 1, 0.0f},     {8, 257, 1000, 0, 0, 0, 0.0f},  {9, 65, 70, 2, 1, 1, 1.0f},
    {33, 130, 257, 0, 0, 0, 0.0f},  {100, 96, 64, 0, 0, 1, 0.0f},   {128, 256, 512, 0, 0, 0, 1.0f},
    {257, 129, 96, 4, 7, 1, 0.5f},
};

static void t_matmul(vctx *v) {
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt) || hb_dtype_is_fp8((hb_dtype)dt)) continue; /* fp8: t_matmul_fp8 */
        /* typed = 1: A stored in the weight dtype too (the gemm workload), every other case */
        for (int typed = 0; typed < (dt == HB_F32 ? 1 : 2); typed++)
        for (int c = typed; c < HB_ARRAY_LEN(mm_cases); c += 1 + typed) {
            const struct mm_shape *k = &mm_cases[c];
            const double bound = typed ? matmul_typed_bound : matmul_bound((hb_dtype)dt);
            const int64_t M = k->M, N = k->N, K = k->K, lda = K + k->pad_a, ldo = N + k->pad_o;
            char shape[80];
            snprintf(shape, sizeof shape, "M=%lld N=%lld K=%lld lda=%lld ldo=%lld%s beta=%g%s",
                     (long long)M, (long long)N, (long long)K, (long long)lda, (long long)ldo,
                     k->bias ? " +bias" : "", (double)k->beta, typed ? " A=w" : "");
            float *a = hvec(M * lda, 31, 1.0f, 0.0f), *o = hvec(M * ldo, 32, 1.0f, 0.0f);
            float *bias = hvec(N, 33, 0.5f, 0.0f), *wf = hvec(N * K, 34, 1.0f / sqrtf((float)K), 0.0f);
            const hb_dtype adt = typed ? (hb_dtype)dt : HB_F32;
            void *wd = wf ? to_dtype(wf, N * K, (hb_dtype)dt) : NULL, *ad = a ? to_dtype(a, M * lda, adt) : NULL;
            vbuf ba, bw, bb, bo;
            memset(&ba, 0, sizeof ba), memset(&bw, 0, sizeof bw), memset(&bb, 0, sizeof bb), memset(&bo, 0, sizeof bo);
            if (!ad || !o || !bias || !wd || vb_alloc(v, &ba, (size_t)(M * lda * hb_dtype_size(adt))) ||
                vb_alloc(v, &bw, (size_t)(N * K * hb_dtype_size((hb_dtype)dt))) ||
                vb_alloc(v, &bb, (size_t)N * 4) || vb_alloc(v, &bo, (size_t)(M * ldo * 4))) {
                OOM(v, "matmul", dt, shape);
            } else {
                hb_status sd = vb_set(v, &ba, ad);
                if (sd == HB_OK) sd = vb_set(v, &bw, wd);
                if (sd == HB_OK) sd = vb_set(v, &bb, bias);
                /* beta = 0: out poisoned (must be overwritten); else it holds values */
                if (sd == HB_OK) sd = k->beta == 0.0f ? vb_poison(v, &bo) : vb_set(v, &bo, o);
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, matmul, .out = hb_t2(bo.d, HB_F32, M, N, ldo), .a = hb_t2(ba.d, adt, M, K, lda),
                               .w = hb_t2(bw.d, (hb_dtype)dt, N, K, K),
                               .bias = k->bias ? hb_t1(bb.d, HB_F32, N) : (hb_tensor){0}, .beta = k->beta);
                hb_status sr = HB_OP(v->ref, matmul, .out = hb_t2(bo.r, HB_F32, M, N, ldo), .a = hb_t2(ba.r, adt, M, K, lda),
                                     .w = hb_t2(bw.r, (hb_dtype)dt, N, K, K),
                                     .bias = k->bias ? hb_t1(bb.r, HB_F32, N) : (hb_tensor){0}, .beta = k->beta);
                if (statuses(v, "matmul", (hb_dtype)dt, shape, bound, sr, sd))
                    check_rows(v, "matmul", (hb_dtype)dt, shape, &bo, M, N, ldo, bound);
            }
            vb_free(v, &ba), vb_free(v, &bw), vb_free(v, &bb), vb_free(v, &bo);
            free(wd), free(ad);
            free(a), free(o), free(bias), free(wf);
        }
    }
}

/* fp8 e4m3 weights with per-tensor or 128 x 128 block scales (quantised by the CPU, the same
 * codes and scales uploaded to both). A is f32 (quantised dynamically by the op: per tensor, or
 * in 1 x 128 tiles) or already e4m3 with its own scales (A=fp8). Both sides multiply the same
 * codes; only the accumulation differs (fp8 tensor cores keep fewer accumulator bits than
 * f32 before promotion: DeepSeek-V3 sec. 3.3.2): bound 1e-2. */
static const double matmul_fp8_bound = 1e-2;

static void t_matmul_fp8(vctx *v) {
    if (!want(v, HB_FP8_E4M3)) return;
    static const hb_qkind wq[] = {HB_QUANT_TENSOR, HB_QUANT_BLOCK};
    const hb_dtype dt = HB_FP8_E4M3;
    for (int qi = 0; qi < HB_ARRAY_LEN(wq); qi++)
        for (int a8 = 0; a8 < 2; a8++)
            for (int c = a8; c < HB_ARRAY_LEN(mm_cases); c++) {
                const struct mm_shape *k = &mm_cases[c];
                const int blk = wq[qi] == HB_QUANT_BLOCK;
                const int64_t M = k->M, N = k->N, K = k->K, lda = K + k->pad_a, ldo = N + k->pad_o;
                char shape[96];
                snprintf(shape, sizeof shape, "M=%lld N=%lld K=%lld lda=%lld ldo=%lld%s beta=%g w:%s A=%s",
                         (long long)M, (long long)N, (long long)K, (long long)lda, (long long)ldo,
                         k->bias ? " +bias" : "", (double)k->beta, blk ? "128x128" : "tensor", a8 ? "fp8" : "f32");
                /* w with blocks of very different magnitudes; A with tiles that differ too */
                float *wf = hvec(N * K, 35, 1.0f, 0.0f), *a = hvec(M * K, 36, 1.0f, 0.0f);
                float *o = hvec(M * ldo, 32, 1.0f, 0.0f), *bias = hvec(N, 33, 0.5f, 0.0f), *apad = NULL;
                if (wf) for (int64_t i = 0; i < N * K; i++) wf[i] *= ldexpf(1.0f, (int)((i / K / 128) * 3 + (i % K / 128) * 5) % 9 - 4);
                if (a) for (int64_t i = 0; i < M * K; i++) a[i] *= ldexpf(1.0f, (int)((i % K) / 128 * 2 + i / K) % 5 - 2);
                vbuf bw, bws, ba, bas, bo, bb;
                memset(&ba, 0, sizeof ba), memset(&bas, 0, sizeof bas), memset(&bo, 0, sizeof bo), memset(&bb, 0, sizeof bb);
                memset(&bw, 0, sizeof bw), memset(&bws, 0, sizeof bws);
                hb_status sd = !wf || !a || !o || !bias ? HB_ERR_NOMEM
                               : quantise_both(v, wf, N, K, dt, wq[qi], 128, 128, &bw, &bws);
                hb_tensor ta_d, ta_r;
                if (sd == HB_OK && a8) { /* A's codes and scales, rows K apart (padding: a copy) */
                    vbuf codes;
                    sd = quantise_both(v, a, M, K, dt, blk ? HB_QUANT_BLOCK : HB_QUANT_TENSOR, 1, 128, &codes, &bas);
                    uint8_t *hc = malloc((size_t)(M * K)), *hp = calloc((size_t)(M * lda), 1);
                    if (sd == HB_OK) sd = hc && hp ? v->ref->ops->download(v->ref, hc, codes.r, (size_t)(M * K)) : HB_ERR_NOMEM;
                    for (int64_t m = 0; sd == HB_OK && m < M; m++) memcpy(hp + m * lda, hc + m * K, (size_t)K);
                    if (sd == HB_OK) sd = vb_alloc(v, &ba, (size_t)(M * lda));
                    if (sd == HB_OK) sd = vb_set(v, &ba, hp);
                    free(hc), free(hp);
                    vb_free(v, &codes);
                    const hb_qkind ak = blk ? HB_QUANT_BLOCK : HB_QUANT_TENSOR;
                    ta_d = hb_tq(hb_t2(ba.d, dt, M, K, lda), ak, 1, 128, bas.d);
                    ta_r = hb_tq(hb_t2(ba.r, dt, M, K, lda), ak, 1, 128, bas.r);
                } else {
                    apad = a ? malloc((size_t)(M * lda) * 4) : NULL;
                    if (sd == HB_OK && !apad) sd = HB_ERR_NOMEM;
                    for (int64_t m = 0; sd == HB_OK && m < M; m++)
                        for (int64_t j = 0; j < lda; j++) apad[m * lda + j] = j < K ? a[m * K + j] : NAN; /* not read */
                    if (sd == HB_OK) sd = vb_alloc(v, &ba, (size_t)(M * lda) * 4);
                    if (sd == HB_OK) sd = vb_set(v, &ba, apad);
                    ta_d = hb_t2(ba.d, HB_F32, M, K, lda);
                    ta_r = hb_t2(ba.r, HB_F32, M, K, lda);
                }
                if (sd == HB_OK) sd = vb_alloc(v, &bb, (size_t)N * 4);
                if (sd == HB_OK) sd = vb_set(v, &bb, bias);
                if (sd == HB_OK) sd = vb_alloc(v, &bo, (size_t)(M * ldo) * 4);
                if (sd == HB_OK) sd = k->beta == 0.0f ? vb_poison(v, &bo) : vb_set(v, &bo, o);
                if (sd != HB_OK) {
                    row(v, "matmul", dt, shape, NAN, matmul_fp8_bound, "FAIL",
                        sd == HB_ERR_NOMEM ? "out of memory" : v->ref->err);
                } else {
                    const hb_tensor wt_d = hb_tq(hb_t2(bw.d, dt, N, K, K), wq[qi], 128, 128, bws.d);
                    const hb_tensor wt_r = hb_tq(hb_t2(bw.r, dt, N, K, K), wq[qi], 128, 128, bws.r);
                    sd = HB_OP(v->dut, matmul, .out = hb_t2(bo.d, HB_F32, M, N, ldo), .a = ta_d, .w = wt_d,
                               .bias = k->bias ? hb_t1(bb.d, HB_F32, N) : (hb_tensor){0}, .beta = k->beta);
                    hb_status sr = HB_OP(v->ref, matmul, .out = hb_t2(bo.r, HB_F32, M, N, ldo), .a = ta_r, .w = wt_r,
                                         .bias = k->bias ? hb_t1(bb.r, HB_F32, N) : (hb_tensor){0}, .beta = k->beta);
                    if (statuses(v, "matmul", dt, shape, matmul_fp8_bound, sr, sd))
                        check_rows(v, "matmul", dt, shape, &bo, M, N, ldo, matmul_fp8_bound);
                }
                vb_free(v, &bw), vb_free(v, &bws), vb_free(v, &ba), vb_free(v, &bas), vb_free(v, &bo), vb_free(v, &bb);
                free(wf), free(a), free(o), free(bias), free(apad);
            }
}

static void t_matmul_batched(vctx *v) {
    if (!want(v, HB_F32)) return;
    static const struct { int64_t m, n, k, batch; int ta, tb; float alpha, beta; } cases[] = {
        {3, 5, 7, 2, 0, 0, 1.0f, 0.0f},   {17, 33, 9, 3, 1, 0, 0.5f, 0.0f},
        {64, 64, 64, 4, 0, 1, 1.0f, 0.25f}, {65, 31, 129, 2, 1, 1, 1.0f, 0.0f},
        {1, 300, 128, 5, 0, 1, 0.125f, 0.0f}, {4, 4, 0, 2, 0, 0, 1.0f, 0.5f},
    };
    const double bound = 1e-4;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        hb_matmul_batched_args g = {0};
        g.m = cases[c].m, g.n = cases[c].n, g.k = cases[c].k, g.batch = cases[c].batch;
        g.trans_a = cases[c].ta, g.trans_b = cases[c].tb, g.alpha = cases[c].alpha, g.beta = cases[c].beta;
        g.lda = (g.trans_a ? g.m : g.k) + 1;
        g.ldb = (g.trans_b ? g.k : g.n) + 2;
        g.ldc = g.n + 3;
        const int64_t rows_a = g.trans_a ? g.k : g.m, rows_b = g.trans_b ? g.n : g.k;
        g.stride_a = rows_a * g.lda + 5;
        g.stride_b = rows_b * g.ldb + 1;
        g.stride_c = g.m * g.ldc;
        char shape[80];
        snprintf(shape, sizeof shape, "m=%lld n=%lld k=%lld x%lld %c%c a=%g b=%g", (long long)g.m,
                 (long long)g.n, (long long)g.k, (long long)g.batch, g.trans_a ? 'T' : 'N',
                 g.trans_b ? 'T' : 'N', (double)g.alpha, (double)g.beta);
        const int64_t na = g.batch * g.stride_a, nb = g.batch * g.stride_b, nc = g.batch * g.stride_c;
        float *a = hvec(na, 41, 1.0f, 0.0f), *b = hvec(nb, 42, 1.0f, 0.0f), *cc = hvec(nc, 43, 1.0f, 0.0f);
        vbuf ba, bb, bc;
        memset(&ba, 0, sizeof ba), memset(&bb, 0, sizeof bb), memset(&bc, 0, sizeof bc);
        if (!a || !b || !cc || vb_alloc(v, &ba, (size_t)na * 4) || vb_alloc(v, &bb, (size_t)nb * 4) ||
            vb_alloc(v, &bc, (size_t)nc * 4)) {
            OOM(v, "matmul_batched", HB_F32, shape);
        } else {
            /* C's padding columns hold values on both and must come back unchanged */
            hb_status sd = vb_set(v, &ba, a);
            if (sd == HB_OK) sd = vb_set(v, &bb, b);
            if (sd == HB_OK) sd = vb_set(v, &bc, cc);
            hb_matmul_batched_args gd = g, gr = g;
            gd.a = ba.d, gd.b = bb.d, gd.c = bc.d;
            gr.a = ba.r, gr.b = bb.r, gr.c = bc.r;
            if (sd == HB_OK) sd = hb_op_matmul_batched(v->dut, &gd);
            hb_status sr = hb_op_matmul_batched(v->ref, &gr);
            if (statuses(v, "matmul_batched", HB_F32, shape, bound, sr, sd))
                check_f32(v, "matmul_batched", HB_F32, shape, &bc, bound);
        }
        vb_free(v, &ba), vb_free(v, &bb), vb_free(v, &bc);
        free(a), free(b), free(cc);
    }
}

static void t_rope(vctx *v) {
    if (!want(v, HB_F32)) return;
    /* the last two with Llama 3.1's rope scaling (factor 8, low 1, high 4, original 8192), one
     * through the GPU's table path (T >= 16), one through its direct path */
    static const struct { int64_t B, T, H, D, pos0, pad; float theta; int scaled; } cases[] = {
        {1, 1, 1, 2, 0, 0, 10000.0f, 0}, {2, 5, 3, 16, 7, 3, 10000.0f, 0},
        {1, 37, 4, 128, 100, 0, 500000.0f, 0}, {3, 1, 32, 128, 8000, 256, 500000.0f, 0},
        {1, 40, 4, 128, 9000, 0, 500000.0f, 1}, {2, 1, 8, 128, 100000, 8, 500000.0f, 1},
        {1, 33, 16, 64, 5000, 0, 10000.0f, 2}, {2, 1, 128, 64, 150000, 0, 10000.0f, 2}};
    const hb_rope_scaling l31 = {.factor = 8.0f, .low_freq = 1.0f, .high_freq = 4.0f, .orig_max = 8192};
    /* DeepSeek-V3's YaRN (factor 40, beta 32 / 1, original 4096) with a cos/sin factor of 1.2 */
    const hb_rope_scaling yarn = {.factor = 40.0f, .low_freq = 32.0f, .high_freq = 1.0f, .orig_max = 4096,
                                  .kind = HB_ROPE_YARN, .mag = 1.2f};
    const double bound = 2e-5;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, H = cases[c].H, D = cases[c].D;
        const int64_t ldx = H * D + cases[c].pad, n = B * T * ldx;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld H=%lld D=%lld pos0=%lld ldx=%lld%s", (long long)B,
                 (long long)T, (long long)H, (long long)D, (long long)cases[c].pos0, (long long)ldx,
                 cases[c].scaled == 1 ? " llama3.1" : cases[c].scaled == 2 ? " yarn" : "");
        const hb_rope_scaling sc = cases[c].scaled == 1 ? l31 : cases[c].scaled == 2 ? yarn : (hb_rope_scaling){0};
        float *x = hvec(n, 51, 1.0f, 0.0f);
        vbuf bx;
        if (!x || vb_alloc(v, &bx, (size_t)n * 4)) {
            OOM(v, "rope", HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bx, x); /* in place: the padding must come back unchanged */
            if (sd == HB_OK)
                sd = HB_OP(v->dut, rope, .x = hb_t2(bx.d, HB_F32, B * T, H * D, ldx), .B = B, .T = T,
                           .pos0 = cases[c].pos0, .H = H, .theta = cases[c].theta, .scaling = sc);
            hb_status sr = HB_OP(v->ref, rope, .x = hb_t2(bx.r, HB_F32, B * T, H * D, ldx), .B = B, .T = T,
                                 .pos0 = cases[c].pos0, .H = H, .theta = cases[c].theta, .scaling = sc);
            if (statuses(v, "rope", HB_F32, shape, bound, sr, sd)) check_f32(v, "rope", HB_F32, shape, &bx, bound);
            vb_free(v, &bx);
        }
        free(x);
    }
    /* per-row positions (serve: the rows of many requests in one launch), plain and YaRN */
    static const int32_t pos[] = {5, 0, 300, 7, 8000, 9, 1, 131000, 64, 65, 66};
    const int64_t N = HB_ARRAY_LEN(pos), H = 4, D = 128, ldx = H * D + 8, n = N * ldx;
    for (int scaled = 0; scaled < 2; scaled++) {
        char shape[80];
        snprintf(shape, sizeof shape, "N=%lld H=%lld D=%lld pos=per row ldx=%lld%s", (long long)N, (long long)H, (long long)D,
                 (long long)ldx, scaled ? " yarn" : "");
        const hb_rope_scaling sc = scaled ? yarn : (hb_rope_scaling){0};
        float *x = hvec(n, 52, 1.0f, 0.0f);
        vbuf bx, bp;
        memset(&bp, 0, sizeof bp);
        if (!x || vb_alloc(v, &bx, (size_t)n * 4) || vb_alloc(v, &bp, sizeof pos)) {
            OOM(v, "rope(pos)", HB_F32, shape);
            vb_free(v, &bx);
        } else {
            hb_status sd = vb_set(v, &bx, x);
            if (sd == HB_OK) sd = vb_set(v, &bp, pos);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, rope, .x = hb_t2(bx.d, HB_F32, N, H * D, ldx), .B = 1, .T = N, .H = H,
                           .theta = 500000.0f, .scaling = sc, .pos = bp.d);
            hb_status sr = HB_OP(v->ref, rope, .x = hb_t2(bx.r, HB_F32, N, H * D, ldx), .B = 1, .T = N, .H = H,
                                 .theta = 500000.0f, .scaling = sc, .pos = bp.r);
            if (statuses(v, "rope(pos)", HB_F32, shape, bound, sr, sd)) check_f32(v, "rope(pos)", HB_F32, shape, &bx, bound);
            vb_free(v, &bx);
        }
        vb_free(v, &bp);
        free(x);
    }
}

/* KV caches in f32, bf16, f16 and fp8 e4m3 with static per-tensor scales (--dtype selects
 * them by the cache's dtype). The fp8 scales: values of about +-2.5 at the top of the range. */
static const hb_dtype kv_dtypes[] = {HB_F32, HB_BF16, HB_F16, HB_FP8_E4M3};
static const float kv_scale_k = 2.5f / 448.0f, kv_scale_v = 2.0f / 448.0f;

/* Scale buffers on both backends (fp8 caches only); the cache tensors on either side. */
typedef struct kvcache {
    vbuf k, v, sk, sv;
} kvcache;

static hb_status kv_alloc(vctx *v, kvcache *c, hb_dtype kvt, int64_t ncache) {
    memset(c, 0, sizeof *c);
    hb_status s = vb_alloc(v, &c->k, (size_t)(ncache * hb_dtype_size(kvt)));
    if (s == HB_OK) s = vb_alloc(v, &c->v, (size_t)(ncache * hb_dtype_size(kvt)));
    if (s == HB_OK && hb_dtype_is_fp8(kvt)) {
        s = vb_alloc(v, &c->sk, 4);
        if (s == HB_OK) s = vb_alloc(v, &c->sv, 4);
        if (s == HB_OK) s = vb_set(v, &c->sk, &kv_scale_k);
        if (s == HB_OK) s = vb_set(v, &c->sv, &kv_scale_v);
    }
    return s;
}
static void kv_free(vctx *v, kvcache *c) { vb_free(v, &c->k), vb_free(v, &c->v), vb_free(v, &c->sk), vb_free(v, &c->sv); }

/* The cache tensor of side dut (1) or ref (0). */
static hb_tensor kv_tensor(const kvcache *c, int value, int dut, hb_dtype kvt, int64_t B, int64_t S, int64_t Hkv, int64_t D) {
    const vbuf *b = value ? &c->v : &c->k, *s = value ? &c->sv : &c->sk;
    hb_tensor t = hb_t4(dut ? b->d : b->r, kvt, B, S, Hkv, D);
    return hb_dtype_is_fp8(kvt) ? hb_tq(t, HB_QUANT_TENSOR, 0, 0, dut ? s->d : s->r) : t;
}

/* Cache contents in kvt: values x, stored as codes of x / scale for fp8. */
static void *kv_bytes(const float *x, int64_t n, hb_dtype kvt, float scale) {
    if (!hb_dtype_is_fp8(kvt)) return to_dtype(x, n, kvt);
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    if (!y) return NULL;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / scale;
    void *d = to_dtype(y, n, kvt);
    free(y);
    return d;
}

static void t_kv_store(vctx *v) {
    static const struct { int64_t B, T, Hkv, D, pos0, S, pad; } cases[] = {
        {1, 1, 1, 1, 0, 1, 0}, {2, 3, 2, 16, 1, 8, 5}, {1, 17, 8, 128, 0, 32, 0}, {3, 1, 8, 128, 40, 41, 4096},
        {2, 2, 3, 5, 1, 4, 1}};
    for (int ti = 0; ti < HB_ARRAY_LEN(kv_dtypes); ti++) {
    const hb_dtype kvt = kv_dtypes[ti];
    if (!want(v, kvt)) continue;
    const int64_t esz = hb_dtype_size(kvt);
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, Hkv = cases[c].Hkv, D = cases[c].D, w = Hkv * D, S = cases[c].S;
        const int64_t ld = w + cases[c].pad, nin = B * T * ld, ncache = B * S * w;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld Hkv=%lld D=%lld pos0=%lld S=%lld ld=%lld",
                 (long long)B, (long long)T, (long long)Hkv, (long long)D,
                 (long long)cases[c].pos0, (long long)S, (long long)ld);
        /* k, v with a few values beyond the fp8 range (they saturate) */
        float *k = hvec(nin, 61, 1.0f, 0.0f), *vv = hvec(nin, 62, 1.0f, 0.0f), *cache = hvec(ncache, 63, 1.0f, 0.0f);
        if (k && vv) k[0] = 1000.0f, vv[nin - 1] = -1000.0f;
        void *cd = cache ? kv_bytes(cache, ncache, kvt, kv_scale_k) : NULL;
        vbuf bk, bv;
        kvcache kc;
        memset(&bk, 0, sizeof bk), memset(&bv, 0, sizeof bv), memset(&kc, 0, sizeof kc);
        if (!k || !vv || !cd || vb_alloc(v, &bk, (size_t)nin * 4) || vb_alloc(v, &bv, (size_t)nin * 4) ||
            kv_alloc(v, &kc, kvt, ncache)) {
            OOM(v, "kv_store", kvt, shape);
        } else {
            /* the cache holds values: positions outside pos0..pos0+T-1 must not change */
            hb_status sd = vb_set(v, &bk, k);
            if (sd == HB_OK) sd = vb_set(v, &bv, vv);
            if (sd == HB_OK) sd = vb_set(v, &kc.k, cd);
            if (sd == HB_OK) sd = vb_set(v, &kc.v, cd);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, kv_store, .k_cache = kv_tensor(&kc, 0, 1, kvt, B, S, Hkv, D),
                           .v_cache = kv_tensor(&kc, 1, 1, kvt, B, S, Hkv, D), .k = hb_t2(bk.d, HB_F32, B * T, w, ld),
                           .v = hb_t2(bv.d, HB_F32, B * T, w, ld), .B = B, .T = T, .pos0 = cases[c].pos0);
            hb_status sr = HB_OP(v->ref, kv_store, .k_cache = kv_tensor(&kc, 0, 0, kvt, B, S, Hkv, D),
                                 .v_cache = kv_tensor(&kc, 1, 0, kvt, B, S, Hkv, D), .k = hb_t2(bk.r, HB_F32, B * T, w, ld),
                                 .v = hb_t2(bv.r, HB_F32, B * T, w, ld), .B = B, .T = T, .pos0 = cases[c].pos0);
            if (statuses(v, "kv_store", kvt, shape, 0.0, sr, sd)) {
                check_exact(v, "kv_store(k)", kvt, shape, &kc.k, (size_t)esz);
                check_exact(v, "kv_store(v)", kvt, shape, &kc.v, (size_t)esz);
            }
        }
        vb_free(v, &bk), vb_free(v, &bv), kv_free(v, &kc);
        free(cd);
        free(k), free(vv), free(cache);
    }
    /* paged (serve): 7 rows of 3 sequences into 6 blocks of 4 slots, blocks out of order and one
     * sequence crossing a block boundary; the other slots must not change */
    {
        static const int32_t seq[] = {0, 0, 0, 1, 2, 2, 2}, pos[] = {2, 3, 4, 9, 0, 1, 2};
        static const int32_t table[] = {4, 1, 0, 5, 3, 2, 0, 0, 0}; /* (3 sequences, 3 blocks) */
        const int64_t N = HB_ARRAY_LEN(seq), nb = 6, bs = 4, Hkv = 2, D = 16, w = Hkv * D, ld = w + 3;
        const int64_t nin = N * ld, ncache = nb * bs * w;
        const char *shape = "paged N=7 blocks=6x4 Hkv=2 D=16 ld=35";
        float *k = hvec(nin, 64, 1.0f, 0.0f), *vv = hvec(nin, 65, 1.0f, 0.0f), *cache = hvec(ncache, 66, 1.0f, 0.0f);
        void *cd = cache ? kv_bytes(cache, ncache, kvt, kv_scale_k) : NULL;
        vbuf bk, bv, bt, bs_, bp;
        kvcache kc;
        memset(&bk, 0, sizeof bk), memset(&bv, 0, sizeof bv), memset(&kc, 0, sizeof kc);
        memset(&bt, 0, sizeof bt), memset(&bs_, 0, sizeof bs_), memset(&bp, 0, sizeof bp);
        if (!k || !vv || !cd || vb_alloc(v, &bk, (size_t)nin * 4) || vb_alloc(v, &bv, (size_t)nin * 4) ||
            kv_alloc(v, &kc, kvt, ncache) || vb_alloc(v, &bt, sizeof table) || vb_alloc(v, &bs_, sizeof seq) ||
            vb_alloc(v, &bp, sizeof pos)) {
            OOM(v, "kv_store(paged)", kvt, shape);
        } else {
            hb_status sd = vb_set(v, &bk, k);
            if (sd == HB_OK) sd = vb_set(v, &bv, vv);
            if (sd == HB_OK) sd = vb_set(v, &kc.k, cd);
            if (sd == HB_OK) sd = vb_set(v, &kc.v, cd);
            if (sd == HB_OK) sd = vb_set(v, &bt, table);
            if (sd == HB_OK) sd = vb_set(v, &bs_, seq);
            if (sd == HB_OK) sd = vb_set(v, &bp, pos);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, kv_store, .k_cache = kv_tensor(&kc, 0, 1, kvt, nb, bs, Hkv, D),
                           .v_cache = kv_tensor(&kc, 1, 1, kvt, nb, bs, Hkv, D), .k = hb_t2(bk.d, HB_F32, N, w, ld),
                           .v = hb_t2(bv.d, HB_F32, N, w, ld), .B = 1, .T = N, .block_table = bt.d, .seq = bs_.d,
                           .pos = bp.d, .max_blocks = 3);
            hb_status sr = HB_OP(v->ref, kv_store, .k_cache = kv_tensor(&kc, 0, 0, kvt, nb, bs, Hkv, D),
                                 .v_cache = kv_tensor(&kc, 1, 0, kvt, nb, bs, Hkv, D), .k = hb_t2(bk.r, HB_F32, N, w, ld),
                                 .v = hb_t2(bv.r, HB_F32, N, w, ld), .B = 1, .T = N, .block_table = bt.r, .seq = bs_.r,
                                 .pos = bp.r, .max_blocks = 3);
            if (statuses(v, "kv_store(paged)", kvt, shape, 0.0, sr, sd)) {
                check_exact(v, "kv_store(paged k)", kvt, shape, &kc.k, (size_t)esz);
                check_exact(v, "kv_store(paged v)", kvt, shape, &kc.v, (size_t)esz);
            }
        }
        vb_free(v, &bk), vb_free(v, &bv), kv_free(v, &kc), vb_free(v, &bt), vb_free(v, &bs_), vb_free(v, &bp);
        free(cd);
        free(k), free(vv), free(cache);
    }
    }
}

/* Attention bound by cache dtype: f32 1e-4 (sums in another order); bf16/f16, and fp8 (which
 * computes as a bf16 cache of codes): the reference rounds p relative to the row's max, a GPU
 * kernel relative to the running max: up to one rounding of the operand type per weight
 * (2^-8 / 2^-11), far less on average. */
static double attention_bound(hb_dtype kvt) {
    return kvt == HB_BF16 || hb_dtype_is_fp8(kvt) ? 1e-2 : kvt == HB_F16 ? 2e-3 : 1e-4;
}

static void t_attention(vctx *v) {
    /* decode (T < 16: the split kernel, several chunks at long contexts) and prefill (the tile
     * kernel; with a bf16/f16 cache on NVIDIA the tensor-core kernel for D = 64/128: several
     * query and key tiles, a partial last tile, grouped-query), odd head dims, padded rows */
    static const struct { int64_t B, T, pos0, Hq, Hkv, D, S, pad; } cases[] = {
        {1, 1, 0, 1, 1, 1, 1, 0},       {1, 1, 0, 4, 2, 16, 8, 0},       {2, 1, 37, 8, 2, 64, 64, 3},
        {1, 1, 300, 32, 8, 128, 512, 0}, {3, 3, 900, 4, 1, 96, 1000, 0}, {1, 17, 0, 4, 4, 16, 17, 0},
        {2, 37, 5, 8, 2, 64, 64, 1},    {1, 70, 0, 4, 1, 128, 80, 0},    {2, 20, 3, 6, 3, 20, 30, 2},
        {1, 129, 0, 2, 2, 256, 129, 0}, {1, 80, 30, 4, 2, 128, 110, 0},
    };
    for (int ti = 0; ti < HB_ARRAY_LEN(kv_dtypes); ti++) {
    const hb_dtype kvt = kv_dtypes[ti];
    if (!want(v, kvt)) continue;
    const double bound = attention_bound(kvt);
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, Hq = cases[c].Hq, Hkv = cases[c].Hkv;
        const int64_t D = cases[c].D, S = cases[c].S, pos0 = cases[c].pos0;
        const int64_t ldq = Hq * D + cases[c].pad, ldo = Hq * D + 2 * cases[c].pad;
        const int64_t nq = B * T * ldq, no = B * T * ldo, ncache = B * S * Hkv * D;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld pos0=%lld Hq=%lld Hkv=%lld D=%lld S=%lld",
                 (long long)B, (long long)T, (long long)pos0, (long long)Hq, (long long)Hkv,
                 (long long)D, (long long)S);
        float *q = hvec(nq, 71, 1.0f, 0.0f), *kf = hvec(ncache, 72, 1.0f, 0.0f), *vf = hvec(ncache, 73, 1.0f, 0.0f);
        void *kd = kf ? kv_bytes(kf, ncache, kvt, kv_scale_k) : NULL, *vd = vf ? kv_bytes(vf, ncache, kvt, kv_scale_v) : NULL;
        vbuf bq, bo;
        kvcache kc;
        memset(&bq, 0, sizeof bq), memset(&bo, 0, sizeof bo), memset(&kc, 0, sizeof kc);
        if (!q || !kd || !vd || vb_alloc(v, &bq, (size_t)nq * 4) || kv_alloc(v, &kc, kvt, ncache) ||
            vb_alloc(v, &bo, (size_t)no * 4)) {
            OOM(v, "attention", kvt, shape);
        } else {
            hb_status sd = vb_set(v, &bq, q);
            if (sd == HB_OK) sd = vb_set(v, &kc.k, kd);
            if (sd == HB_OK) sd = vb_set(v, &kc.v, vd);
            /* out: the Hq*D columns must be written; the padding must keep the poison */
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, attention, .out = hb_t2(bo.d, HB_F32, B * T, Hq * D, ldo),
                           .q = hb_t2(bq.d, HB_F32, B * T, Hq * D, ldq), .k_cache = kv_tensor(&kc, 0, 1, kvt, B, S, Hkv, D),
                           .v_cache = kv_tensor(&kc, 1, 1, kvt, B, S, Hkv, D), .B = B, .T = T, .pos0 = pos0);
            hb_status sr = HB_OP(v->ref, attention, .out = hb_t2(bo.r, HB_F32, B * T, Hq * D, ldo),
                                 .q = hb_t2(bq.r, HB_F32, B * T, Hq * D, ldq), .k_cache = kv_tensor(&kc, 0, 0, kvt, B, S, Hkv, D),
                                 .v_cache = kv_tensor(&kc, 1, 0, kvt, B, S, Hkv, D), .B = B, .T = T, .pos0 = pos0);
            if (statuses(v, "attention", kvt, shape, bound, sr, sd))
                check_rows(v, "attention", kvt, shape, &bo, B * T, Hq * D, ldo, bound);
        }
        vb_free(v, &bq), vb_free(v, &bo), kv_free(v, &kc);
        free(kd), free(vd);
        free(q), free(kf), free(vf);
    }
    }
}

/* attention_paged: sequences whose positions sit in shuffled blocks of a paged cache (block
 * table entries past a sequence's length are -1: never read), rows of several sequences in one
 * batch: decode rows (a sequence's last position), prefill chunks (its last nq positions),
 * sequences listed out of order; block sizes 1, 5 (not a power of two), 8, 16, 32; long
 * contexts (split over key chunks); the bounds of attention. Then a block id outside the cache:
 * the CPU refuses it, a GPU (device-side ids) writes NaN on that row only. */
#define PA_MAXS 4
typedef struct pa_case {
    int64_t bs, Hq, Hkv, D, pad, n_seqs, len[PA_MAXS], nq[PA_MAXS];
} pa_case;

typedef struct pa_data {
    int64_t N, mb, n_blocks, ldq, ldo, ncache;
    int32_t *table, *seq, *pos;
} pa_data;

/* the block table, rows' sequences and positions of case pc (host) */
static int pa_layout(const pa_case *pc, pa_data *d) {
    int64_t need = 0, mb = 0, N = 0;
    for (int64_t s = 0; s < pc->n_seqs; s++) {
        const int64_t nb = (pc->len[s] + pc->bs - 1) / pc->bs;
        need += nb;
        mb = nb > mb ? nb : mb;
        N += pc->nq[s];
    }
    d->mb = mb + 1; /* one more column than any sequence uses: -1, never read */
    d->n_blocks = need + 3;
    d->N = N;
    d->ldq = pc->Hq * pc->D + pc->pad;
    d->ldo = pc->Hq * pc->D + 2 * pc->pad;
    d->ncache = d->n_blocks * pc->bs * pc->Hkv * pc->D;
    d->table = malloc((size_t)(pc->n_seqs * d->mb) * sizeof(int32_t));
    d->seq = malloc((size_t)N * sizeof(int32_t));
    d->pos = malloc((size_t)N * sizeof(int32_t));
    int32_t *perm = malloc((size_t)d->n_blocks * sizeof(int32_t));
    if (!d->table || !d->seq || !d->pos || !perm) {
        free(perm);
        return -1;
    }
    for (int64_t i = 0; i < d->n_blocks; i++) perm[i] = (int32_t)i;
    for (int64_t i = d->n_blocks - 1; i > 0; i--) { /* Fisher-Yates, seeded */
        const int64_t j = (int64_t)(hb_rng_u64(91, (uint64_t)i) % (uint64_t)(i + 1));
        const int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int64_t k = 0, r = 0;
    for (int64_t s = 0; s < pc->n_seqs; s++)
        for (int64_t b = 0; b < d->mb; b++)
            d->table[s * d->mb + b] = b < (pc->len[s] + pc->bs - 1) / pc->bs ? perm[k++] : -1;
    for (int64_t s = pc->n_seqs - 1; s >= 0; s--) /* the last sequence's rows first */
        for (int64_t t = 0; t < pc->nq[s]; t++, r++) {
            d->seq[r] = (int32_t)s;
            d->pos[r] = (int32_t)(pc->len[s] - pc->nq[s] + t);
        }
    free(perm);
    return 0;
}

static void t_attention_paged(vctx *v) {
    static const pa_case cases[] = {
        {16, 1, 1, 16, 0, 1, {1}, {1}},
        {16, 8, 2, 64, 3, 4, {1, 17, 64, 300}, {1, 1, 1, 1}},
        {8, 4, 4, 128, 0, 3, {100, 50, 5}, {1, 20, 5}},
        {32, 32, 8, 128, 0, 1, {1000}, {2}},
        {5, 6, 3, 96, 1, 2, {23, 9}, {3, 9}},
        {16, 2, 1, 256, 0, 2, {70, 33}, {1, 4}},
        {1, 2, 2, 8, 0, 2, {7, 3}, {7, 1}},
    };
    for (int ti = 0; ti < HB_ARRAY_LEN(kv_dtypes); ti++) {
    const hb_dtype kvt = kv_dtypes[ti];
    if (!want(v, kvt)) continue;
    const double bound = attention_bound(kvt);
    for (int c = 0; c < HB_ARRAY_LEN(cases) + 1; c++) {
        const int bad_id = c == HB_ARRAY_LEN(cases); /* the last run: case 2 with a bad block id */
        const pa_case *pc = &cases[bad_id ? 2 : c];
        const int64_t Hq = pc->Hq, Hkv = pc->Hkv, D = pc->D, bs = pc->bs;
        pa_data d = {0};
        char shape[96];
        int n = snprintf(shape, sizeof shape, "bs=%lld Hq=%lld Hkv=%lld D=%lld len=", (long long)bs, (long long)Hq,
                         (long long)Hkv, (long long)D);
        for (int64_t s = 0; s < pc->n_seqs && n > 0 && n < (int)sizeof shape; s++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%lld/%lld", s ? "," : "", (long long)pc->len[s],
                          (long long)pc->nq[s]);
        const char *op = bad_id ? "attn_paged(bad)" : "attention_paged";
        float *q = NULL, *kf = NULL, *vf = NULL;
        void *kd = NULL, *vd = NULL;
        vbuf bq, bo, bt, bsq, bp;
        kvcache kc;
        memset(&bq, 0, sizeof bq), memset(&bo, 0, sizeof bo), memset(&bt, 0, sizeof bt);
        memset(&bsq, 0, sizeof bsq), memset(&bp, 0, sizeof bp), memset(&kc, 0, sizeof kc);
        if (pa_layout(pc, &d) == 0) {
            q = hvec(d.N * d.ldq, 74, 1.0f, 0.0f), kf = hvec(d.ncache, 75, 1.0f, 0.0f), vf = hvec(d.ncache, 76, 1.0f, 0.0f);
            kd = kf ? kv_bytes(kf, d.ncache, kvt, kv_scale_k) : NULL, vd = vf ? kv_bytes(vf, d.ncache, kvt, kv_scale_v) : NULL;
        }
        /* bad_id: the second row's sequence (1, the 20-row chunk) gets a block outside the cache */
        const int64_t bad_seq = 1, bad_rows0 = pc->nq[2], bad_rows1 = bad_rows0 + pc->nq[1];
        if (bad_id && d.table) d.table[bad_seq * d.mb] = (int32_t)d.n_blocks;
        if (!q || !kd || !vd || vb_alloc(v, &bq, (size_t)(d.N * d.ldq) * 4) || kv_alloc(v, &kc, kvt, d.ncache) ||
            vb_alloc(v, &bo, (size_t)(d.N * d.ldo) * 4) || vb_alloc(v, &bt, (size_t)(pc->n_seqs * d.mb) * 4) ||
            vb_alloc(v, &bsq, (size_t)d.N * 4) || vb_alloc(v, &bp, (size_t)d.N * 4)) {
            OOM(v, op, kvt, shape);
        } else {
            hb_status sd = vb_set(v, &bq, q);
            if (sd == HB_OK) sd = vb_set(v, &kc.k, kd);
            if (sd == HB_OK) sd = vb_set(v, &kc.v, vd);
            if (sd == HB_OK) sd = vb_set(v, &bt, d.table);
            if (sd == HB_OK) sd = vb_set(v, &bsq, d.seq);
            if (sd == HB_OK) sd = vb_set(v, &bp, d.pos);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, attention_paged, .out = hb_t2(bo.d, HB_F32, d.N, Hq * D, d.ldo),
                           .q = hb_t2(bq.d, HB_F32, d.N, Hq * D, d.ldq),
                           .k_cache = kv_tensor(&kc, 0, 1, kvt, d.n_blocks, bs, Hkv, D),
                           .v_cache = kv_tensor(&kc, 1, 1, kvt, d.n_blocks, bs, Hkv, D), .block_table = bt.d,
                           .max_blocks = d.mb, .n_seqs = pc->n_seqs, .seq = bsq.d, .pos = bp.d);
            hb_status sr = HB_OP(v->ref, attention_paged, .out = hb_t2(bo.r, HB_F32, d.N, Hq * D, d.ldo),
                                 .q = hb_t2(bq.r, HB_F32, d.N, Hq * D, d.ldq),
                                 .k_cache = kv_tensor(&kc, 0, 0, kvt, d.n_blocks, bs, Hkv, D),
                                 .v_cache = kv_tensor(&kc, 1, 0, kvt, d.n_blocks, bs, Hkv, D), .block_table = bt.r,
                                 .max_blocks = d.mb, .n_seqs = pc->n_seqs, .seq = bsq.r, .pos = bp.r);
            if (!bad_id) {
                if (statuses(v, op, kvt, shape, bound, sr, sd))
                    check_rows(v, op, kvt, shape, &bo, d.N, Hq * D, d.ldo, bound);
            } else if (sr != HB_ERR_INPUT) {
                row(v, op, kvt, shape, NAN, 0.0, "FAIL", "the CPU did not refuse a block id outside the cache");
            } else if (sd == HB_ERR_INPUT) {
                verdict(v, op, kvt, shape, 0.0, 0.0); /* refused (the CPU against itself) */
            } else if (statuses(v, op, kvt, shape, 0.0, HB_OK, sd)) {
                /* NaN exactly on the rows of the sequence with the bad block (rows bad_rows0 ..
                 * bad_rows1 - 1: the rows are listed last sequence first), finite elsewhere */
                void *hr = NULL, *hd = NULL;
                hb_status s = vb_get(v, &bo, &hr, &hd);
                int64_t wrong = 0;
                for (int64_t i = 0; s == HB_OK && i < d.N; i++)
                    for (int64_t e = 0; e < Hq * D; e++) {
                        const float x = ((float *)hd)[i * d.ldo + e];
                        wrong += (i >= bad_rows0 && i < bad_rows1) ? !isnan(x) : !isfinite(x);
                    }
                if (s != HB_OK) row(v, op, kvt, shape, NAN, 0.0, "FAIL", v->dut->err);
                else verdict(v, op, kvt, shape, (double)wrong / (double)(d.N * Hq * D), 0.0);
                free(hr), free(hd);
            }
        }
        vb_free(v, &bq), vb_free(v, &bo), vb_free(v, &bt), vb_free(v, &bsq), vb_free(v, &bp), kv_free(v, &kc);
        free(kd), free(vd), free(q), free(kf), free(vf);
        free(d.table), free(d.seq), free(d.pos);
    }
    }
}

static void t_elementwise(vctx *v) {
    if (!want(v, HB_F32)) return;
    const double bound = 2e-5;
    static const int64_t sw[][2] = {{1, 1}, {7, 333}, {64, 1024}, {3, 14336}};
    for (int c = 0; c < HB_ARRAY_LEN(sw); c++) {
        const int64_t N = sw[c][0], F = sw[c][1];
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld F=%lld", (long long)N, (long long)F);
        float *x = hvec(N * 2 * F, 81, 4.0f, 0.0f);
        vbuf bi, bo;
        memset(&bi, 0, sizeof bi), memset(&bo, 0, sizeof bo);
        if (!x || vb_alloc(v, &bi, (size_t)(N * 2 * F * 4)) || vb_alloc(v, &bo, (size_t)(N * F * 4))) {
            OOM(v, "swiglu", HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bi, x);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = HB_OP(v->dut, swiglu, .out = hb_t2(bo.d, HB_F32, N, F, F), .in = hb_t2(bi.d, HB_F32, N, 2 * F, 2 * F));
            hb_status sr = HB_OP(v->ref, swiglu, .out = hb_t2(bo.r, HB_F32, N, F, F), .in = hb_t2(bi.r, HB_F32, N, 2 * F, 2 * F));
            if (statuses(v, "swiglu", HB_F32, shape, bound, sr, sd)) check_f32(v, "swiglu", HB_F32, shape, &bo, bound);
        }
        vb_free(v, &bi), vb_free(v, &bo);
        free(x);
    }
    static const int64_t ns[] = {1, 3, 1001, 100003};
    for (int c = 0; c < HB_ARRAY_LEN(ns); c++) {
        const int64_t n = ns[c];
        char shape[64];
        snprintf(shape, sizeof shape, "n=%lld", (long long)n);
        float *a = hvec(n, 91, 4.0f, 0.0f), *b = hvec(n, 92, 1.0f, 0.0f);
        vbuf ba, bb, bo;
        memset(&ba, 0, sizeof ba), memset(&bb, 0, sizeof bb), memset(&bo, 0, sizeof bo);
        if (!a || !b || vb_alloc(v, &ba, (size_t)n * 4) || vb_alloc(v, &bb, (size_t)n * 4) || vb_alloc(v, &bo, (size_t)n * 4)) {
            OOM(v, "gelu", HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &ba, a);
            if (sd == HB_OK) sd = vb_set(v, &bb, b);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = HB_OP(v->dut, gelu, .out = hb_t1(bo.d, HB_F32, n), .in = hb_t1(ba.d, HB_F32, n));
            hb_status sr = HB_OP(v->ref, gelu, .out = hb_t1(bo.r, HB_F32, n), .in = hb_t1(ba.r, HB_F32, n));
            if (statuses(v, "gelu", HB_F32, shape, bound, sr, sd)) check_f32(v, "gelu", HB_F32, shape, &bo, bound);
            /* add: residual (s = 1) and triad (s = 3), out-of-place and in place */
            sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = HB_OP(v->dut, add, .out = hb_t1(bo.d, HB_F32, n), .a = hb_t1(ba.d, HB_F32, n), .b = hb_t1(bb.d, HB_F32, n), .s = 1.0f);
            sr = HB_OP(v->ref, add, .out = hb_t1(bo.r, HB_F32, n), .a = hb_t1(ba.r, HB_F32, n), .b = hb_t1(bb.r, HB_F32, n), .s = 1.0f);
            if (statuses(v, "add", HB_F32, shape, bound, sr, sd)) check_f32(v, "add", HB_F32, shape, &bo, bound);
            sd = HB_OP(v->dut, add, .out = hb_t1(ba.d, HB_F32, n), .a = hb_t1(ba.d, HB_F32, n), .b = hb_t1(bb.d, HB_F32, n), .s = 3.0f);
            sr = HB_OP(v->ref, add, .out = hb_t1(ba.r, HB_F32, n), .a = hb_t1(ba.r, HB_F32, n), .b = hb_t1(bb.r, HB_F32, n), .s = 3.0f);
            if (statuses(v, "add(inplace,s=3)", HB_F32, shape, bound, sr, sd))
                check_f32(v, "add(inplace,s=3)", HB_F32, shape, &ba, bound);
        }
        vb_free(v, &ba), vb_free(v, &bb), vb_free(v, &bo);
        free(a), free(b);
    }
    static const int64_t sm[][2] = {{1, 1}, {5, 1001}, {2, 128256}, {300, 64}};
    for (int c = 0; c < HB_ARRAY_LEN(sm); c++) {
        const int64_t R = sm[c][0], C = sm[c][1];
        char shape[64];
        snprintf(shape, sizeof shape, "rows=%lld cols=%lld", (long long)R, (long long)C);
        float *x = hvec(R * C, 101, 8.0f, 0.0f);
        vbuf bi, bo;
        memset(&bi, 0, sizeof bi), memset(&bo, 0, sizeof bo);
        if (!x || vb_alloc(v, &bi, (size_t)(R * C * 4)) || vb_alloc(v, &bo, (size_t)(R * C * 4))) {
            OOM(v, "softmax", HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bi, x);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = HB_OP(v->dut, softmax, .out = hb_t2(bo.d, HB_F32, R, C, C), .in = hb_t2(bi.d, HB_F32, R, C, C));
            hb_status sr = HB_OP(v->ref, softmax, .out = hb_t2(bo.r, HB_F32, R, C, C), .in = hb_t2(bi.r, HB_F32, R, C, C));
            if (statuses(v, "softmax", HB_F32, shape, bound, sr, sd)) check_f32(v, "softmax", HB_F32, shape, &bo, bound);
        }
        vb_free(v, &bi), vb_free(v, &bo);
        free(x);
    }
}

/* argmax (ties, NaN rows, -inf rows) and temperature sampling: exact. */
static void t_select(vctx *v) {
    if (!want(v, HB_F32)) return;
    static const struct { int64_t rows, cols, pad; float temp; } cases[] = {
        {1, 1, 0, 0.0f}, {7, 1001, 2, 0.0f}, {2, 128256, 0, 0.0f}, {6, 1001, 0, 0.7f},
        {3, 50257, 5, 1.0f}, {64, 256, 0, 2.0f}};
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t R = cases[c].rows, C = cases[c].cols, ld = C + cases[c].pad;
        const char *op = cases[c].temp > 0 ? "sample" : "argmax";
        char shape[64];
        snprintf(shape, sizeof shape, "rows=%lld cols=%lld ld=%lld T=%g", (long long)R, (long long)C,
                 (long long)ld, (double)cases[c].temp);
        float *x = hvec(R * ld, 111, 4.0f, 0.0f);
        vbuf bi, bo;
        memset(&bi, 0, sizeof bi), memset(&bo, 0, sizeof bo);
        if (!x || vb_alloc(v, &bi, (size_t)(R * ld * 4)) || vb_alloc(v, &bo, (size_t)R * 4)) {
            OOM(v, op, HB_F32, shape);
        } else {
            if (R >= 4 && C >= 10) { /* the rules at the edges */
                x[0 * ld + 3] = x[0 * ld + 7] = 100.0f;          /* tie: the lower index */
                x[1 * ld + 5] = NAN;                             /* NaN: its index */
                x[1 * ld + 9] = NAN;
                for (int64_t j = 0; j < C; j++) x[2 * ld + j] = -INFINITY; /* all -inf: 0 */
                x[3 * ld + C - 1] = INFINITY;                    /* +inf: its index */
            }
            hb_status sd = vb_set(v, &bi, x);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            hb_status sr;
            if (cases[c].temp > 0) {
                if (sd == HB_OK) sd = HB_OP(v->dut, sample, .out = bo.d, .logits = hb_t2(bi.d, HB_F32, R, C, ld), .temperature = cases[c].temp, .seed = 99, .step = 3);
                sr = HB_OP(v->ref, sample, .out = bo.r, .logits = hb_t2(bi.r, HB_F32, R, C, ld), .temperature = cases[c].temp, .seed = 99, .step = 3);
            } else {
                if (sd == HB_OK) sd = HB_OP(v->dut, argmax, .out = bo.d, .in = hb_t2(bi.d, HB_F32, R, C, ld));
                sr = HB_OP(v->ref, argmax, .out = bo.r, .in = hb_t2(bi.r, HB_F32, R, C, ld));
            }
            if (statuses(v, op, HB_F32, shape, 0.0, sr, sd)) check_exact(v, op, HB_F32, shape, &bo, 4);
        }
        vb_free(v, &bi), vb_free(v, &bo);
        free(x);
    }
}

/* ---- the whole model ---- */

/* MoE and MLA ops (ops.h): the router (ids exact, weights f32; softmax top-k, and DeepSeek-V3's
 * sigmoid + bias + groups), the permutation (rows, offsets and the copied rows exact), the
 * grouped GEMM (f32 and bf16 expert stacks, an expert with no rows), the combine, and MLA
 * attention materialised and absorbed. */
static void t_moe(vctx *v) {
    if (!want(v, HB_F32)) return;
    enum { N = 37, E = 16, K = 4, C = 40, F = 24 };
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d E=%d k=%d", N, E, K);
    float *lg = hvec(N * E, 201, 2.0f, 0.0f), *bias = hvec(E, 202, 0.1f, 0.0f), *x = hvec(N * C, 203, 1.0f, 0.0f);
    vbuf bl, bb, bi, bw, bx, bxp, brow, boff;
    memset(&bl, 0, sizeof bl), memset(&bb, 0, sizeof bb), memset(&bi, 0, sizeof bi), memset(&bw, 0, sizeof bw);
    memset(&bx, 0, sizeof bx), memset(&bxp, 0, sizeof bxp), memset(&brow, 0, sizeof brow), memset(&boff, 0, sizeof boff);
    if (!lg || !bias || !x || vb_alloc(v, &bl, N * E * 4) || vb_alloc(v, &bb, E * 4) || vb_alloc(v, &bi, N * K * 4) ||
        vb_alloc(v, &bw, N * K * 4) || vb_alloc(v, &bx, N * C * 4) || vb_alloc(v, &bxp, N * K * C * 4) ||
        vb_alloc(v, &brow, N * K * 4) || vb_alloc(v, &boff, (E + 1) * 4)) {
        OOM(v, "moe_route", HB_F32, shape);
        goto done;
    }
    hb_status sd = vb_set(v, &bl, lg);
    if (sd == HB_OK) sd = vb_set(v, &bb, bias);
    if (sd == HB_OK) sd = vb_set(v, &bx, x);
    for (int kind = 0; kind < 2; kind++) {
        const char *op = kind ? "moe_route(sigmoid,groups)" : "moe_route(softmax)";
        hb_moe_route_args a = {.logits = hb_t2(bl.d, HB_F32, N, E, E), .kind = kind ? HB_ROUTER_SIGMOID : HB_ROUTER_SOFTMAX,
                               .top_k = K, .n_group = kind ? 4 : 1, .topk_group = kind ? 2 : 1, .norm = 1,
                               .scale = kind ? 2.5f : 1.0f, .ids = bi.d, .weights = bw.d};
        if (kind) a.bias = hb_t1(bb.d, HB_F32, E);
        if (sd == HB_OK) sd = vb_poison(v, &bi);
        if (sd == HB_OK) sd = vb_poison(v, &bw);
        hb_status d = sd == HB_OK ? hb_op_moe_route(v->dut, &a) : sd;
        a.logits.data = bl.r, a.bias.data = kind ? bb.r : NULL, a.ids = bi.r, a.weights = bw.r;
        hb_status r = hb_op_moe_route(v->ref, &a);
        if (statuses(v, op, HB_F32, shape, 0.0, r, d)) {
            check_exact(v, op, HB_F32, shape, &bi, 4);
            check_f32(v, op, HB_F32, shape, &bw, 1e-5);
        }
    }
    /* the CPU's ids feed the rest on both */
    if (sd == HB_OK) sd = vb_ref_to_dut(v, &bi);
    if (sd == HB_OK) sd = vb_poison(v, &bxp);
    if (sd == HB_OK) sd = vb_poison(v, &brow);
    if (sd == HB_OK) sd = vb_poison(v, &boff);
    hb_status d = sd == HB_OK ? HB_OP(v->dut, moe_permute, .xp = hb_t2(bxp.d, HB_F32, N * K, C, C), .x = hb_t2(bx.d, HB_F32, N, C, C),
                                      .ids = bi.d, .top_k = K, .n_experts = E, .rows = brow.d, .offsets = boff.d) : sd;
    hb_status r = HB_OP(v->ref, moe_permute, .xp = hb_t2(bxp.r, HB_F32, N * K, C, C), .x = hb_t2(bx.r, HB_F32, N, C, C), .ids = bi.r,
                        .top_k = K, .n_experts = E, .rows = brow.r, .offsets = boff.r);
    if (statuses(v, "moe_permute", HB_F32, shape, 0.0, r, d)) {
        check_exact(v, "moe_permute", HB_F32, shape, &bxp, 4);
        check_exact(v, "moe_permute(rows)", HB_F32, shape, &brow, 4);
        check_exact(v, "moe_permute(offsets)", HB_F32, shape, &boff, 4);
    }
    if (sd == HB_OK) sd = vb_ref_to_dut(v, &brow);
    if (sd == HB_OK) sd = vb_ref_to_dut(v, &boff);
    if (sd == HB_OK) sd = vb_ref_to_dut(v, &bxp);
    for (int di = 0; di < 2; di++) { /* grouped GEMM: f32 and bf16 stacks (E, F, C) */
        const hb_dtype dt = di ? HB_BF16 : HB_F32;
        if (!want(v, dt)) continue;
        float *w = hvec(E * F * C, 204, 0.3f, 0.0f);
        void *wd = w ? to_dtype(w, E * F * C, dt) : NULL;
        vbuf bwt, bo;
        memset(&bwt, 0, sizeof bwt), memset(&bo, 0, sizeof bo);
        if (!wd || vb_alloc(v, &bwt, (size_t)(E * F * C * hb_dtype_size(dt))) || vb_alloc(v, &bo, N * K * F * 4)) {
            OOM(v, "matmul_grouped", dt, shape);
        } else {
            hb_status s2 = vb_set(v, &bwt, wd);
            if (s2 == HB_OK) s2 = vb_poison(v, &bo);
            hb_status d2 = s2 == HB_OK ? HB_OP(v->dut, matmul_grouped, .out = hb_t2(bo.d, HB_F32, N * K, F, F),
                                               .a = hb_t2(bxp.d, HB_F32, N * K, C, C), .w = hb_t3(bwt.d, dt, E, F, C),
                                               .offsets = boff.d) : s2;
            hb_status r2 = HB_OP(v->ref, matmul_grouped, .out = hb_t2(bo.r, HB_F32, N * K, F, F),
                                 .a = hb_t2(bxp.r, HB_F32, N * K, C, C), .w = hb_t3(bwt.r, dt, E, F, C), .offsets = boff.r);
            if (statuses(v, "matmul_grouped", dt, shape, matmul_bound(dt), r2, d2))
                check_f32(v, "matmul_grouped", dt, shape, &bo, matmul_bound(dt));
        }
        vb_free(v, &bwt), vb_free(v, &bo);
        free(w), free(wd);
    }
    { /* combine into x (beta 1) from the permuted rows, the CPU's weights */
        if (sd == HB_OK) sd = vb_ref_to_dut(v, &bw);
        if (sd == HB_OK) sd = vb_set(v, &bx, x);
        hb_status d3 = sd == HB_OK ? HB_OP(v->dut, moe_combine, .out = hb_t2(bx.d, HB_F32, N, C, C), .y = hb_t2(bxp.d, HB_F32, N * K, C, C),
                                           .rows = brow.d, .weights = bw.d, .top_k = K, .beta = 1.0f) : sd;
        hb_status r3 = HB_OP(v->ref, moe_combine, .out = hb_t2(bx.r, HB_F32, N, C, C), .y = hb_t2(bxp.r, HB_F32, N * K, C, C),
                             .rows = brow.r, .weights = bw.r, .top_k = K, .beta = 1.0f);
        if (statuses(v, "moe_combine", HB_F32, shape, 2e-5, r3, d3)) check_f32(v, "moe_combine", HB_F32, shape, &bx, 2e-5);
    }
    { /* MLA: B 2, T 3 new positions after 4 cached, H 3, dn 16, dr 8, dv 12, dc 20 */
        enum { B = 2, T = 3, P0 = 4, S = 9, H = 3, DN = 16, DR = 8, DV = 12, DC = 20, DL = DC + DR };
        float *q = hvec(B * T * H * (DN + DR), 205, 1.0f, 0.0f), *lt = hvec(B * T * DL, 206, 1.0f, 0.0f);
        float *ch = hvec(B * S * DL, 207, 1.0f, 0.0f), *wk = hvec(H * (DN + DV) * DC, 208, 0.3f, 0.0f);
        vbuf bq, blt, bc, bk, bo;
        memset(&bq, 0, sizeof bq), memset(&blt, 0, sizeof blt), memset(&bc, 0, sizeof bc), memset(&bk, 0, sizeof bk);
        memset(&bo, 0, sizeof bo);
        char ms[64];
        snprintf(ms, sizeof ms, "B=%d T=%d pos0=%d H=%d dc=%d", B, T, P0, H, DC);
        if (!q || !lt || !ch || !wk || vb_alloc(v, &bq, sizeof(float) * B * T * H * (DN + DR)) ||
            vb_alloc(v, &blt, sizeof(float) * B * T * DL) || vb_alloc(v, &bc, sizeof(float) * B * S * DL) ||
            vb_alloc(v, &bk, sizeof(float) * H * (DN + DV) * DC) || vb_alloc(v, &bo, sizeof(float) * B * T * H * DV)) {
            OOM(v, "mla_attention", HB_F32, ms);
        } else {
            for (int ab = 0; ab < 2; ab++) {
                const char *op = ab ? "mla_attention(absorbed)" : "mla_attention";
                hb_status s4 = vb_set(v, &bq, q);
                if (s4 == HB_OK) s4 = vb_set(v, &blt, lt);
                if (s4 == HB_OK) s4 = vb_set(v, &bc, ch);
                if (s4 == HB_OK) s4 = vb_set(v, &bk, wk);
                if (s4 == HB_OK) s4 = vb_poison(v, &bo);
                hb_status d4 = s4 == HB_OK ? HB_OP(v->dut, mla_attention, .out = hb_t2(bo.d, HB_F32, B * T, H * DV, H * DV),
                                                   .q = hb_t2(bq.d, HB_F32, B * T, H * (DN + DR), H * (DN + DR)),
                                                   .latent = hb_t2(blt.d, HB_F32, B * T, DL, DL), .cache = hb_t3(bc.d, HB_F32, B, S, DL),
                                                   .wkv_b = hb_t2(bk.d, HB_F32, H * (DN + DV), DC, DC), .B = B, .T = T, .pos0 = P0,
                                                   .H = H, .dn = DN, .dr = DR, .dv = DV, .absorb = ab) : s4;
                hb_status r4 = HB_OP(v->ref, mla_attention, .out = hb_t2(bo.r, HB_F32, B * T, H * DV, H * DV),
                                     .q = hb_t2(bq.r, HB_F32, B * T, H * (DN + DR), H * (DN + DR)),
                                     .latent = hb_t2(blt.r, HB_F32, B * T, DL, DL), .cache = hb_t3(bc.r, HB_F32, B, S, DL),
                                     .wkv_b = hb_t2(bk.r, HB_F32, H * (DN + DV), DC, DC), .B = B, .T = T, .pos0 = P0, .H = H,
                                     .dn = DN, .dr = DR, .dv = DV, .absorb = ab);
                if (statuses(v, op, HB_F32, ms, 1e-4, r4, d4)) {
                    check_f32(v, op, HB_F32, ms, &bo, 1e-4);
                    check_f32(v, ab ? "mla_attention(absorbed,cache)" : "mla_attention(cache)", HB_F32, ms, &bc, 0.0);
                }
            }
        }
        vb_free(v, &bq), vb_free(v, &blt), vb_free(v, &bc), vb_free(v, &bk), vb_free(v, &bo);
        free(q), free(lt), free(ch), free(wk);
    }
done:
    vb_free(v, &bl), vb_free(v, &bb), vb_free(v, &bi), vb_free(v, &bw), vb_free(v, &bx), vb_free(v, &bxp);
    vb_free(v, &brow), vb_free(v, &boff);
    free(lg), free(bias), free(x);
}

/* More router cases (the shapes of the presets, ties, the synthetic routings): ids exact,
 * weights f32. Ties: logits on a coarse grid (many equal values, so equal scores, equal group
 * scores and equal choice values), where the ids must follow the lowest expert index. */
static void t_moe_route_more(vctx *v) {
    if (!want(v, HB_F32)) return;
    static const struct {
        const char *what;
        int64_t N, E, k, G, TG;
        hb_router_kind kind;
        int bias, norm, ties;
        float scale;
        hb_routing mode;
        float zipf_s;
    } cases[] = {
        {"mixtral", 33, 8, 2, 1, 1, HB_ROUTER_SOFTMAX, 0, 1, 0, 1.0f, HB_ROUTING_MODEL, 0},
        {"qwen3", 19, 128, 8, 1, 1, HB_ROUTER_SOFTMAX, 0, 1, 0, 1.0f, HB_ROUTING_MODEL, 0},
        {"v2-lite norm=0", 21, 64, 6, 1, 1, HB_ROUTER_SOFTMAX, 0, 0, 0, 1.0f, HB_ROUTING_MODEL, 0},
        {"v3 groups 8/4", 17, 256, 8, 8, 4, HB_ROUTER_SIGMOID, 1, 1, 0, 2.5f, HB_ROUTING_MODEL, 0},
        {"ties softmax", 29, 16, 4, 1, 1, HB_ROUTER_SOFTMAX, 0, 1, 1, 1.0f, HB_ROUTING_MODEL, 0},
        {"ties groups 4/2", 29, 16, 4, 4, 2, HB_ROUTER_SIGMOID, 0, 1, 1, 2.5f, HB_ROUTING_MODEL, 0},
        {"ties v3 groups 8/4", 13, 256, 8, 8, 4, HB_ROUTER_SIGMOID, 1, 1, 1, 2.5f, HB_ROUTING_MODEL, 0},
        {"balanced", 23, 16, 4, 1, 1, HB_ROUTER_SOFTMAX, 0, 1, 0, 1.0f, HB_ROUTING_BALANCED, 0},
        {"zipf:1.2", 23, 64, 6, 1, 1, HB_ROUTER_SOFTMAX, 0, 1, 0, 1.0f, HB_ROUTING_ZIPF, 1.2f},
    };
    for (int ci = 0; ci < HB_ARRAY_LEN(cases); ci++) {
        const int64_t N = cases[ci].N, E = cases[ci].E, K = cases[ci].k, ld = E + 3;
        char op[48], shape[80];
        snprintf(op, sizeof op, "moe_route(%s)", cases[ci].what);
        snprintf(shape, sizeof shape, "N=%lld E=%lld k=%lld ld=%lld groups=%lld/%lld%s", (long long)N, (long long)E,
                 (long long)K, (long long)ld, (long long)cases[ci].G, (long long)cases[ci].TG, cases[ci].bias ? " +bias" : "");
        float *lg = hvec(N * ld, 301 + (uint64_t)ci, 2.0f, 0.0f), *bias = hvec(E, 320 + (uint64_t)ci, 0.1f, 0.0f);
        if (lg && cases[ci].ties) /* a grid of 5 values: most rows and groups have ties */
            for (int64_t i = 0; i < N * ld; i++) lg[i] = roundf(lg[i]);
        if (bias && cases[ci].ties) /* an equal bias on pairs of experts keeps ties in the choice values */
            for (int64_t e = 0; e < E; e++) bias[e] = 0.05f * (float)((e / 2) % 3);
        vbuf bl, bb, bi, bw;
        memset(&bl, 0, sizeof bl), memset(&bb, 0, sizeof bb), memset(&bi, 0, sizeof bi), memset(&bw, 0, sizeof bw);
        if (!lg || !bias || vb_alloc(v, &bl, (size_t)(N * ld) * 4) || vb_alloc(v, &bb, (size_t)E * 4) ||
            vb_alloc(v, &bi, (size_t)(N * K) * 4) || vb_alloc(v, &bw, (size_t)(N * K) * 4)) {
            OOM(v, op, HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bl, lg);
            if (sd == HB_OK) sd = vb_set(v, &bb, bias);
            if (sd == HB_OK) sd = vb_poison(v, &bi);
            if (sd == HB_OK) sd = vb_poison(v, &bw);
            hb_moe_route_args a = {.logits = hb_t2(bl.d, HB_F32, N, E, ld), .kind = cases[ci].kind, .top_k = K,
                                   .n_group = cases[ci].G, .topk_group = cases[ci].TG, .norm = cases[ci].norm,
                                   .scale = cases[ci].scale, .mode = cases[ci].mode, .zipf_s = cases[ci].zipf_s,
                                   .seed = 99, .row0 = 5, .ids = bi.d, .weights = bw.d};
            if (cases[ci].bias) a.bias = hb_t1(bb.d, HB_F32, E);
            hb_status d = sd == HB_OK ? hb_op_moe_route(v->dut, &a) : sd;
            a.logits.data = bl.r, a.bias.data = cases[ci].bias ? bb.r : NULL, a.ids = bi.r, a.weights = bw.r;
            hb_status r = hb_op_moe_route(v->ref, &a);
            if (statuses(v, op, HB_F32, shape, 0.0, r, d)) {
                check_exact(v, op, HB_F32, shape, &bi, 4);
                check_f32(v, op, HB_F32, shape, &bw, 1e-5);
            }
        }
        vb_free(v, &bl), vb_free(v, &bb), vb_free(v, &bi), vb_free(v, &bw);
        free(lg), free(bias);
    }
}

/* A permutation of many slots (several per thread of a block), skewed (zipf-like: expert e
 * gets ~1/(e+1) of the slots; some experts get none), x rows ld apart; then the combine with
 * beta = 0 into an output with padded rows (the padding must stay poisoned). */
static void t_moe_permute_more(vctx *v) {
    if (!want(v, HB_F32)) return;
    enum { N = 301, E = 64, K = 6, C = 33, LDX = 37, LDO = 35 };
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d E=%d k=%d C=%d ldx=%d skewed", N, E, K, C, LDX);
    int32_t *ids = malloc(sizeof(int32_t) * N * K);
    float *x = hvec(N * LDX, 331, 1.0f, 0.0f), *w = hvec(N * K, 332, 0.5f, 0.5f);
    vbuf bi, bx, bxp, brow, boff, bw, bo;
    memset(&bi, 0, sizeof bi), memset(&bx, 0, sizeof bx), memset(&bxp, 0, sizeof bxp), memset(&brow, 0, sizeof brow);
    memset(&boff, 0, sizeof boff), memset(&bw, 0, sizeof bw), memset(&bo, 0, sizeof bo);
    if (!ids || !x || !w || vb_alloc(v, &bi, sizeof(int32_t) * N * K) || vb_alloc(v, &bx, sizeof(float) * N * LDX) ||
        vb_alloc(v, &bxp, sizeof(float) * N * K * C) || vb_alloc(v, &brow, sizeof(int32_t) * N * K) ||
        vb_alloc(v, &boff, sizeof(int32_t) * (E + 1)) || vb_alloc(v, &bw, sizeof(float) * N * K) ||
        vb_alloc(v, &bo, sizeof(float) * N * LDO)) {
        OOM(v, "moe_permute", HB_F32, shape);
        goto done;
    }
    for (int64_t n = 0; n < N; n++) /* k distinct experts per token, small ones far more often */
        for (int64_t j = 0; j < K; j++) {
            int32_t e;
            for (uint64_t t = 0;; t++) {
                const float u = hb_rng_unit(333, (uint64_t)(n * K + j) * 64 + t);
                e = (int32_t)((float)(E / 2) * u * u * u);
                int dup = 0;
                for (int64_t i = 0; i < j; i++) dup |= ids[n * K + i] == e;
                if (!dup) break;
            }
            ids[n * K + j] = e;
        }
    hb_status sd = vb_set(v, &bi, ids);
    if (sd == HB_OK) sd = vb_set(v, &bx, x);
    if (sd == HB_OK) sd = vb_poison(v, &bxp);
    if (sd == HB_OK) sd = vb_poison(v, &brow);
    if (sd == HB_OK) sd = vb_poison(v, &boff);
    hb_status d = sd == HB_OK ? HB_OP(v->dut, moe_permute, .xp = hb_t2(bxp.d, HB_F32, N * K, C, C), .x = hb_t2(bx.d, HB_F32, N, C, LDX),
                                      .ids = bi.d, .top_k = K, .n_experts = E, .rows = brow.d, .offsets = boff.d) : sd;
    hb_status r = HB_OP(v->ref, moe_permute, .xp = hb_t2(bxp.r, HB_F32, N * K, C, C), .x = hb_t2(bx.r, HB_F32, N, C, LDX),
                        .ids = bi.r, .top_k = K, .n_experts = E, .rows = brow.r, .offsets = boff.r);
    if (statuses(v, "moe_permute", HB_F32, shape, 0.0, r, d)) {
        check_exact(v, "moe_permute", HB_F32, shape, &bxp, 4);
        check_exact(v, "moe_permute(rows)", HB_F32, shape, &brow, 4);
        check_exact(v, "moe_permute(offsets)", HB_F32, shape, &boff, 4);
    }
    { /* combine, beta 0, rows LDO apart */
        char cs[64];
        snprintf(cs, sizeof cs, "N=%d k=%d C=%d ldo=%d beta=0", N, K, C, LDO);
        if (sd == HB_OK) sd = vb_ref_to_dut(v, &brow);
        if (sd == HB_OK) sd = vb_ref_to_dut(v, &bxp);
        if (sd == HB_OK) sd = vb_set(v, &bw, w);
        if (sd == HB_OK) sd = vb_poison(v, &bo);
        hb_status d3 = sd == HB_OK ? HB_OP(v->dut, moe_combine, .out = hb_t2(bo.d, HB_F32, N, C, LDO), .y = hb_t2(bxp.d, HB_F32, N * K, C, C),
                                           .rows = brow.d, .weights = bw.d, .top_k = K, .beta = 0.0f) : sd;
        hb_status r3 = HB_OP(v->ref, moe_combine, .out = hb_t2(bo.r, HB_F32, N, C, LDO), .y = hb_t2(bxp.r, HB_F32, N * K, C, C),
                             .rows = brow.r, .weights = bw.r, .top_k = K, .beta = 0.0f);
        if (statuses(v, "moe_combine", HB_F32, cs, 2e-5, r3, d3)) check_rows(v, "moe_combine", HB_F32, cs, &bo, N, C, LDO, 2e-5);
    }
done:
    vb_free(v, &bi), vb_free(v, &bx), vb_free(v, &bxp), vb_free(v, &brow), vb_free(v, &boff), vb_free(v, &bw), vb_free(v, &bo);
    free(ids), free(x), free(w);
}

/* The grouped GEMM for every weight dtype of the experts (f32, bf16, f16, fp8 e4m3 with a
 * tensor scale and with 128x128 blocks), experts with no rows, with <= 8 rows (the GEMV) and
 * with more (the vendor or the built-in GEMM). Each expert's product is matmul's: the same
 * bounds. */
static void t_matmul_grouped_more(vctx *v) {
    /* rows per expert: some with none, <= 8 and more; and a decode batch (8 rows in all: the
     * GPU's one-launch grouped GEMV) */
    enum { E = 6, F = 256 };
    static const int32_t count_sets[3][E] = {{0, 1, 5, 8, 9, 40}, {0, 1, 2, 0, 3, 2}, {0, 1, 2, 0, 3, 2}};
    static const int64_t kds[3] = {200, 200, 203}; /* 203: rows not a whole number of 16 bytes */
    for (int cs = 0; cs < 3; cs++) {
        const int32_t *counts = count_sets[cs];
        const int64_t KD = kds[cs];
        int32_t off[E + 1];
        off[0] = 0;
        for (int e = 0; e < E; e++) off[e + 1] = off[e] + counts[e];
        const int64_t R = off[E];
        static const struct { hb_dtype dt; hb_qkind q; } cases[] = {
            {HB_F32, HB_QUANT_NONE}, {HB_BF16, HB_QUANT_NONE}, {HB_F16, HB_QUANT_NONE},
            {HB_FP8_E4M3, HB_QUANT_TENSOR}, {HB_FP8_E4M3, HB_QUANT_BLOCK}};
        for (int ci = 0; ci < HB_ARRAY_LEN(cases); ci++) {
            const hb_dtype dt = cases[ci].dt;
            const hb_qkind qk = cases[ci].q;
            if (!want(v, dt)) continue;
            const int fp8 = hb_dtype_is_fp8(dt);
            const double bound = fp8 ? matmul_fp8_bound : matmul_bound(dt);
            char shape[96];
            snprintf(shape, sizeof shape, "E=%d N=%d K=%lld rows %s%s", E, F, (long long)KD, cs ? "0,1,2,0,3,2" : "0,1,5,8,9,40",
                     qk == HB_QUANT_TENSOR ? " w:tensor" : qk == HB_QUANT_BLOCK ? " w:128x128" : "");
            float *wf = hvec(E * F * KD, 341, 1.0f / sqrtf((float)KD), 0.0f), *a = hvec(R * KD, 342, 1.0f, 0.0f);
            if (wf && fp8) /* blocks of different magnitudes, so that the scales differ */
                for (int64_t i = 0; i < E * F * KD; i++) wf[i] *= ldexpf(1.0f, (int)((i / KD / 128) * 3 + (i % KD / 128) * 5) % 9 - 4);
            vbuf bw, bws, ba, bo, boff;
            memset(&bw, 0, sizeof bw), memset(&bws, 0, sizeof bws), memset(&ba, 0, sizeof ba), memset(&bo, 0, sizeof bo);
            memset(&boff, 0, sizeof boff);
            hb_status sd = !wf || !a ? HB_ERR_NOMEM : HB_OK;
            if (sd == HB_OK && fp8) {
                sd = quantise_both(v, wf, E * F, KD, dt, qk, 128, 128, &bw, &bws);
            } else if (sd == HB_OK) {
                void *wd = to_dtype(wf, E * F * KD, dt);
                sd = wd ? vb_alloc(v, &bw, (size_t)(E * F * KD * hb_dtype_size(dt))) : HB_ERR_NOMEM;
                if (sd == HB_OK) sd = vb_set(v, &bw, wd);
                free(wd);
            }
            if (sd == HB_OK) sd = vb_alloc(v, &ba, (size_t)(R * KD) * 4);
            if (sd == HB_OK) sd = vb_set(v, &ba, a);
            if (sd == HB_OK) sd = vb_alloc(v, &bo, (size_t)(R * F) * 4);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = vb_alloc(v, &boff, sizeof off);
            if (sd == HB_OK) sd = vb_set(v, &boff, off);
            if (sd != HB_OK) {
                row(v, "matmul_grouped", dt, shape, NAN, bound, "FAIL", sd == HB_ERR_NOMEM ? "out of memory" : v->ref->err);
            } else {
                hb_tensor wd = hb_t3(bw.d, dt, E, F, KD), wr = hb_t3(bw.r, dt, E, F, KD);
                if (fp8) wd = hb_tq(wd, qk, 128, 128, bws.d), wr = hb_tq(wr, qk, 128, 128, bws.r);
                hb_status d = HB_OP(v->dut, matmul_grouped, .out = hb_t2(bo.d, HB_F32, R, F, F), .a = hb_t2(ba.d, HB_F32, R, KD, KD),
                                    .w = wd, .offsets = boff.d);
                hb_status r = HB_OP(v->ref, matmul_grouped, .out = hb_t2(bo.r, HB_F32, R, F, F), .a = hb_t2(ba.r, HB_F32, R, KD, KD),
                                    .w = wr, .offsets = boff.r);
                if (statuses(v, "matmul_grouped", dt, shape, bound, r, d)) check_f32(v, "matmul_grouped", dt, shape, &bo, bound);
            }
            vb_free(v, &bw), vb_free(v, &bws), vb_free(v, &ba), vb_free(v, &bo), vb_free(v, &boff);
            free(wf), free(a);
        }
    }
}

/* MLA attention for every cache dtype (the row's dtype) and wkv_b in bf16 or fp8 with a tensor
 * scale, prefill (materialised) and decode (absorbed, T = 1 over a longer context), latent
 * and rope widths wider than a warp. Both sides read the same rounded cache and the same
 * dequantised wkv_b: only the f32 order differs (bound 1e-4); the cache rows written are
 * exact. */
static void t_mla_more(vctx *v) {
    static const struct { int64_t B, T, pos0, S, H, dn, dr, dv, dc; hb_dtype ct, wt; } cases[] = {
        {2, 5, 3, 11, 2, 16, 8, 12, 72, HB_BF16, HB_BF16},
        {3, 1, 70, 80, 3, 32, 40, 24, 96, HB_BF16, HB_BF16},
        {1, 4, 0, 6, 4, 8, 8, 8, 20, HB_F16, HB_F32},
        {2, 1, 37, 40, 2, 16, 8, 16, 40, HB_F16, HB_FP8_E4M3},
        {2, 3, 6, 12, 2, 16, 8, 16, 40, HB_FP8_E4M3, HB_FP8_E4M3},
        {1, 2, 50, 60, 3, 12, 16, 20, 68, HB_F32, HB_BF16},
    };
    for (int ci = 0; ci < HB_ARRAY_LEN(cases); ci++) {
        const int64_t B = cases[ci].B, T = cases[ci].T, P0 = cases[ci].pos0, S = cases[ci].S, H = cases[ci].H;
        const int64_t DN = cases[ci].dn, DR = cases[ci].dr, DV = cases[ci].dv, DC = cases[ci].dc, DL = DC + DR, NQ = B * T;
        const int64_t ldq = H * (DN + DR) + 3, ldl = DL + 2;
        const hb_dtype ct = cases[ci].ct, wt = cases[ci].wt;
        if (!want(v, ct)) continue;
        char ms[96];
        snprintf(ms, sizeof ms, "B=%lld T=%lld pos0=%lld H=%lld dc=%lld dr=%lld dn=%lld dv=%lld w:%s", (long long)B,
                 (long long)T, (long long)P0, (long long)H, (long long)DC, (long long)DR, (long long)DN, (long long)DV,
                 hb_dtype_name(wt));
        const int64_t nw = H * (DN + DV) * DC, esz = hb_dtype_size(ct);
        float *q = hvec(NQ * ldq, 351 + (uint64_t)ci, 1.0f, 0.0f), *lt = hvec(NQ * ldl, 352 + (uint64_t)ci, 1.0f, 0.0f);
        float *ch = hvec(B * S * DL, 353 + (uint64_t)ci, 1.0f, 0.0f), *wk = hvec(nw, 354 + (uint64_t)ci, 0.3f, 0.0f);
        void *chd = ch ? to_dtype(ch, B * S * DL, ct) : NULL;
        vbuf bq, blt, bc, bk, bks, bo;
        memset(&bq, 0, sizeof bq), memset(&blt, 0, sizeof blt), memset(&bc, 0, sizeof bc), memset(&bk, 0, sizeof bk);
        memset(&bks, 0, sizeof bks), memset(&bo, 0, sizeof bo);
        hb_status s0 = !q || !lt || !chd || !wk ? HB_ERR_NOMEM : HB_OK;
        if (s0 == HB_OK && hb_dtype_is_fp8(wt)) {
            s0 = quantise_both(v, wk, H * (DN + DV), DC, wt, HB_QUANT_TENSOR, 0, 0, &bk, &bks);
        } else if (s0 == HB_OK) {
            void *wd = to_dtype(wk, nw, wt);
            s0 = wd ? vb_alloc(v, &bk, (size_t)(nw * hb_dtype_size(wt))) : HB_ERR_NOMEM;
            if (s0 == HB_OK) s0 = vb_set(v, &bk, wd);
            free(wd);
        }
        if (s0 == HB_OK) s0 = vb_alloc(v, &bq, sizeof(float) * (size_t)(NQ * ldq));
        if (s0 == HB_OK) s0 = vb_alloc(v, &blt, sizeof(float) * (size_t)(NQ * ldl));
        if (s0 == HB_OK) s0 = vb_alloc(v, &bc, (size_t)(B * S * DL * esz));
        if (s0 == HB_OK) s0 = vb_alloc(v, &bo, sizeof(float) * (size_t)(NQ * H * DV));
        if (s0 != HB_OK) {
            OOM(v, "mla_attention", ct, ms);
        } else {
            hb_tensor wd = hb_t2(bk.d, wt, H * (DN + DV), DC, DC), wr = hb_t2(bk.r, wt, H * (DN + DV), DC, DC);
            if (hb_dtype_is_fp8(wt)) wd = hb_tq(wd, HB_QUANT_TENSOR, 0, 0, bks.d), wr = hb_tq(wr, HB_QUANT_TENSOR, 0, 0, bks.r);
            for (int ab = 0; ab < 2; ab++) {
                const char *op = ab ? "mla_attention(absorbed)" : "mla_attention";
                hb_status s4 = vb_set(v, &bq, q);
                if (s4 == HB_OK) s4 = vb_set(v, &blt, lt);
                if (s4 == HB_OK) s4 = vb_set(v, &bc, chd);
                if (s4 == HB_OK) s4 = vb_poison(v, &bo);
                hb_status d4 = s4 == HB_OK ? HB_OP(v->dut, mla_attention, .out = hb_t2(bo.d, HB_F32, NQ, H * DV, H * DV),
                                                   .q = hb_t2(bq.d, HB_F32, NQ, H * (DN + DR), ldq),
                                                   .latent = hb_t2(blt.d, HB_F32, NQ, DL, ldl), .cache = hb_t3(bc.d, ct, B, S, DL),
                                                   .wkv_b = wd, .B = B, .T = T, .pos0 = P0, .H = H, .dn = DN, .dr = DR,
                                                   .dv = DV, .absorb = ab) : s4;
                hb_status r4 = HB_OP(v->ref, mla_attention, .out = hb_t2(bo.r, HB_F32, NQ, H * DV, H * DV),
                                     .q = hb_t2(bq.r, HB_F32, NQ, H * (DN + DR), ldq),
                                     .latent = hb_t2(blt.r, HB_F32, NQ, DL, ldl), .cache = hb_t3(bc.r, ct, B, S, DL),
                                     .wkv_b = wr, .B = B, .T = T, .pos0 = P0, .H = H, .dn = DN, .dr = DR, .dv = DV,
                                     .absorb = ab);
                if (statuses(v, op, ct, ms, 1e-4, r4, d4)) {
                    check_f32(v, op, ct, ms, &bo, 1e-4);
                    check_exact(v, ab ? "mla_attention(absorbed,cache)" : "mla_attention(cache)", ct, ms, &bc, (size_t)esz);
                }
            }
        }
        vb_free(v, &bq), vb_free(v, &blt), vb_free(v, &bc), vb_free(v, &bk), vb_free(v, &bks), vb_free(v, &bo);
        free(q), free(lt), free(ch), free(chd), free(wk);
    }
}

/* ---- training ops (ops.h "training", HB_OP_LIST_TRAIN and HB_OP_LIST_TRAIN_MOE) ----
 * f32 rows. Parameter gradients accumulate, so they start from values (not poison) and are
 * compared after the op adds to them; activation gradients start poisoned (beta 0) or from
 * values (beta 1). Each output is its own row: `op(output)`. */

#define TRB_MAX 12

typedef struct trb {
    vbuf b[TRB_MAX];
    int n, oom;
} trb;

/* A new f32 buffer of n values (seeded; poison with seed 0), on both backends. */
static vbuf *trb_f32(vctx *v, trb *t, int64_t n, uint64_t seed, float scale, float offset) {
    vbuf *b = &t->b[t->n++];
    memset(b, 0, sizeof *b);
    if (t->oom || vb_alloc(v, b, (size_t)(n > 0 ? n : 1) * 4) != HB_OK) {
        t->oom = 1;
        return b;
    }
    if (seed == 0) {
        if (vb_poison(v, b) != HB_OK) t->oom = 1;
        return b;
    }
    float *x = hvec(n, seed, scale, offset);
    if (!x || vb_set(v, b, x) != HB_OK) t->oom = 1;
    free(x);
    return b;
}

/* A new buffer of n bytes holding h (int32 ids, a bf16 weight). */
static vbuf *trb_raw(vctx *v, trb *t, const void *h, size_t nbytes) {
    vbuf *b = &t->b[t->n++];
    memset(b, 0, sizeof *b);
    if (t->oom || !h || vb_alloc(v, b, nbytes ? nbytes : 1) != HB_OK || vb_set(v, b, h) != HB_OK) t->oom = 1;
    return b;
}

static void trb_free(vctx *v, trb *t) {
    for (int i = 0; i < t->n; i++) vb_free(v, &t->b[i]);
    t->n = 0;
}

/* The device's pointer of b when dut, else the CPU's. */
#define TP(b) (dut ? (b)->d : (b)->r)

/* Runs the op (a statement using TP and assigning st[dut], hb_status st[2] declared) on the
 * device, then the CPU. */
#define TR_RUN(stmt)                                         \
    st[0] = st[1] = HB_OK;                                   \
    for (int dut = 1; dut >= 0; dut--) {                     \
        hb_backend *be = dut ? v->dut : v->ref;              \
        stmt;                                                \
    }

/* The outputs' rows after both ran: names[i] for bufs[i]. */
static void tr_check(vctx *v, const char *op, const char *shape, double bound, hb_status sr, hb_status sd,
                     int n, const char *const *names, vbuf *const *bufs) {
    char name[40];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s(%s)", op, names[i]);
        if (statuses(v, name, HB_F32, shape, bound, sr, sd)) check_f32(v, name, HB_F32, shape, bufs[i], bound);
    }
}

static int32_t *tokens_mod(int64_t n, uint64_t seed, int64_t V) {
    int32_t *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (t)
        for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(hb_rng_u64(seed, (uint64_t)i) % (uint64_t)V);
    return t;
}

static void t_train_embedding(vctx *v) {
    static const struct { int64_t B, T, C, V, pos0; int wpe; } cases[] = {{3, 5, 67, 11, 2, 1}, {2, 33, 300, 1000, 0, 0}};
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, C = cases[c].C, V = cases[c].V, N = B * T, S = cases[c].pos0 + T;
        char shape[64];
        snprintf(shape, sizeof shape, "B=%lld T=%lld C=%lld V=%lld pos0=%lld%s", (long long)B, (long long)T,
                 (long long)C, (long long)V, (long long)cases[c].pos0, cases[c].wpe ? " +wpe" : "");
        trb t = {0};
        int32_t *tok = tokens_mod(N, 201, V);
        vbuf *bt = trb_raw(v, &t, tok, (size_t)N * 4), *dwte = trb_f32(v, &t, V * C, 202, 0.1f, 0.0f);
        vbuf *dwpe = trb_f32(v, &t, S * C, 203, 0.1f, 0.0f), *dout = trb_f32(v, &t, N * C, 204, 1.0f, 0.0f);
        const int w = cases[c].wpe;
        if (t.oom) OOM(v, "embedding_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, embedding_backward, .dwte = hb_t2(TP(dwte), HB_F32, V, C, C),
                                   .dwpe = w ? hb_t2(TP(dwpe), HB_F32, S, C, C) : (hb_tensor){0},
                                   .dout = hb_t2(TP(dout), HB_F32, N, C, C), .tokens = TP(bt), .B = B, .T = T,
                                   .pos0 = cases[c].pos0));
            const char *names[] = {"dwte", "dwpe"};
            vbuf *bufs[] = {dwte, dwpe};
            tr_check(v, "embedding_backward", shape, 1e-6, st[0], st[1], w ? 2 : 1, names, bufs);
        }
        trb_free(v, &t);
        free(tok);
    }
}

static void t_train_norm(vctx *v, int ln) {
    /* the last: rows of a 3-D view (N, H, D) with strides (ld, D, 1), the heads inside qkv rows */
    static const struct { int64_t N, C, pad, H; float beta; } cases[] = {
        {7, 67, 3, 0, 0.0f}, {5, 4096, 0, 0, 1.0f}, {300, 257, 1, 0, 0.0f}, {5, 32, 0, 3, 0.0f}};
    const char *op = ln ? "layernorm_backward" : "rmsnorm_backward";
    const double bound = 1e-4;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int three = cases[c].H > 0;
        if (three && ln) continue;
        const int64_t N = cases[c].N, C = cases[c].C, H = three ? cases[c].H : 1;
        const int64_t ld = three ? 5 * C + 8 : C + cases[c].pad, n = N * ld;
        char shape[64];
        if (three) snprintf(shape, sizeof shape, "N=%lld heads=%lld D=%lld ld=%lld (3-D)", (long long)N, (long long)H, (long long)C, (long long)ld);
        else snprintf(shape, sizeof shape, "N=%lld C=%lld ld=%lld beta=%g", (long long)N, (long long)C, (long long)ld, (double)cases[c].beta);
        trb t = {0};
        vbuf *x = trb_f32(v, &t, n, 211, 2.0f, 0.5f), *w = trb_f32(v, &t, C, 212, 0.1f, 1.0f);
        vbuf *dout = trb_f32(v, &t, n, 213, 1.0f, 0.0f), *din = trb_f32(v, &t, n, cases[c].beta != 0.0f ? 214 : 0, 1.0f, 0.0f);
        vbuf *dw = trb_f32(v, &t, C, 215, 0.1f, 0.0f), *db = trb_f32(v, &t, C, 216, 0.1f, 0.0f);
        if (t.oom) OOM(v, op, HB_F32, shape);
        else {
            hb_status st[2];
            hb_tensor tx[2], to[2], ti[2];
            for (int d = 0; d < 2; d++) {
                const vbuf *bx = x, *bo = dout, *bi = din;
                void *px = d ? bx->d : bx->r, *po = d ? bo->d : bo->r, *pi = d ? bi->d : bi->r;
                if (three) {
                    tx[d] = hb_t3(px, HB_F32, N, H, C), to[d] = hb_t3(po, HB_F32, N, H, C), ti[d] = hb_t3(pi, HB_F32, N, H, C);
                    tx[d].st[0] = to[d].st[0] = ti[d].st[0] = ld;
                } else {
                    tx[d] = hb_t2(px, HB_F32, N, C, ld), to[d] = hb_t2(po, HB_F32, N, C, ld), ti[d] = hb_t2(pi, HB_F32, N, C, ld);
                }
            }
            const float beta = cases[c].beta;
            if (ln) {
                TR_RUN(st[dut] = HB_OP(be, layernorm_backward, .din = ti[dut], .dw = hb_t1(TP(dw), HB_F32, C),
                                       .db = hb_t1(TP(db), HB_F32, C), .dout = to[dut], .in = tx[dut],
                                       .w = hb_t1(TP(w), HB_F32, C), .eps = 1e-5f, .beta = beta));
                char name[40];
                snprintf(name, sizeof name, "%s(din)", op);
                if (statuses(v, name, HB_F32, shape, bound, st[0], st[1]))
                    check_rows(v, name, HB_F32, shape, din, N, C, ld, bound);
                const char *names[] = {"dw", "db"};
                vbuf *bufs[] = {dw, db};
                tr_check(v, op, shape, bound, st[0], st[1], 2, names, bufs);
            } else {
                hb_status st[2];
                TR_RUN(st[dut] = HB_OP(be, rmsnorm_backward, .din = ti[dut], .dw = hb_t1(TP(dw), HB_F32, C),
                                       .dout = to[dut], .in = tx[dut], .w = hb_t1(TP(w), HB_F32, C), .eps = 1e-6f,
                                       .beta = beta));
                char name[40];
                snprintf(name, sizeof name, "%s(din)", op);
                /* 3-D: the columns outside the heads keep the poison on both */
                if (statuses(v, name, HB_F32, shape, bound, st[0], st[1]))
                    check_rows(v, name, HB_F32, shape, din, N, three ? H * C : C, ld, bound);
                const char *names[] = {"dw"};
                vbuf *bufs[] = {dw};
                tr_check(v, op, shape, bound, st[0], st[1], 1, names, bufs);
            }
        }
        trb_free(v, &t);
    }
}

static void t_train_matmul(vctx *v) {
    static const struct { int64_t M, N, K, pad; float beta; int bias; } cases[] = {
        {1, 1, 1, 0, 0.0f, 0}, {33, 130, 257, 3, 0.0f, 1}, {64, 64, 64, 0, 1.0f, 0}, {150, 200, 48, 0, 1.0f, 1}};
    static const hb_dtype wdts[] = {HB_F32, HB_BF16, HB_F16};
    const double bound = 1e-4; /* both sides widen w and multiply in f32 */
    for (int di = 0; di < HB_ARRAY_LEN(wdts); di++) {
        const hb_dtype wdt = wdts[di];
        if (!want(v, wdt)) continue;
        for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
            const int64_t M = cases[c].M, N = cases[c].N, K = cases[c].K, ldk = K + cases[c].pad, ldn = N + cases[c].pad;
            char shape[80];
            snprintf(shape, sizeof shape, "M=%lld N=%lld K=%lld lda=%lld ldo=%lld beta=%g%s", (long long)M,
                     (long long)N, (long long)K, (long long)ldk, (long long)ldn, (double)cases[c].beta,
                     cases[c].bias ? " +dbias" : "");
            float *wf = hvec(N * K, 221, 0.5f, 0.0f);
            void *wb = wf ? to_dtype(wf, N * K, wdt) : NULL;
            trb t = {0};
            vbuf *w = trb_raw(v, &t, wb, (size_t)(N * K * hb_dtype_size(wdt)));
            vbuf *a = trb_f32(v, &t, M * ldk, 222, 1.0f, 0.0f), *dout = trb_f32(v, &t, M * ldn, 223, 1.0f, 0.0f);
            vbuf *da = trb_f32(v, &t, M * ldk, cases[c].beta != 0.0f ? 224 : 0, 1.0f, 0.0f);
            vbuf *dw = trb_f32(v, &t, N * K, 225, 0.1f, 0.0f), *db = trb_f32(v, &t, N, 226, 0.1f, 0.0f);
            const int bias = cases[c].bias;
            if (t.oom) OOM(v, "matmul_backward", wdt, shape);
            else {
                hb_status st[2];
                TR_RUN(st[dut] = HB_OP(be, matmul_backward, .da = hb_t2(TP(da), HB_F32, M, K, ldk),
                                       .dw = hb_t2(TP(dw), HB_F32, N, K, K),
                                       .dbias = bias ? hb_t1(TP(db), HB_F32, N) : (hb_tensor){0},
                                       .dout = hb_t2(TP(dout), HB_F32, M, N, ldn), .a = hb_t2(TP(a), HB_F32, M, K, ldk),
                                       .w = hb_t2(TP(w), wdt, N, K, K), .beta = cases[c].beta));
                if (statuses(v, "matmul_backward(da)", wdt, shape, bound, st[0], st[1]))
                    check_rows(v, "matmul_backward(da)", wdt, shape, da, M, K, ldk, bound);
                if (statuses(v, "matmul_backward(dw)", wdt, shape, bound, st[0], st[1]))
                    check_f32(v, "matmul_backward(dw)", wdt, shape, dw, bound);
                if (bias && statuses(v, "matmul_backward(dbias)", wdt, shape, bound, st[0], st[1]))
                    check_f32(v, "matmul_backward(dbias)", wdt, shape, db, bound);
            }
            trb_free(v, &t);
            free(wf), free(wb);
        }
    }
}

static void t_train_rope(vctx *v) {
    static const struct { int64_t B, T, H, D, pos0, pad; int scaled; } cases[] = {
        {2, 17, 3, 64, 0, 3, 0}, {1, 5, 4, 128, 9000, 0, 1}};
    const hb_rope_scaling l31 = {.factor = 8.0f, .low_freq = 1.0f, .high_freq = 4.0f, .orig_max = 8192};
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, H = cases[c].H, D = cases[c].D, ldx = H * D + cases[c].pad;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld H=%lld D=%lld pos0=%lld ldx=%lld%s", (long long)B, (long long)T,
                 (long long)H, (long long)D, (long long)cases[c].pos0, (long long)ldx, cases[c].scaled ? " llama3.1" : "");
        trb t = {0};
        vbuf *x = trb_f32(v, &t, B * T * ldx, 231, 1.0f, 0.0f);
        const hb_rope_scaling sc = cases[c].scaled ? l31 : (hb_rope_scaling){0};
        if (t.oom) OOM(v, "rope_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, rope_backward, .x = hb_t2(TP(x), HB_F32, B * T, H * D, ldx), .B = B, .T = T,
                                   .pos0 = cases[c].pos0, .H = H, .theta = 10000.0f, .scaling = sc));
            const char *names[] = {"x"};
            vbuf *bufs[] = {x};
            tr_check(v, "rope_backward", shape, 2e-5, st[0], st[1], 1, names, bufs);
        }
        trb_free(v, &t);
    }
}

/* q, k, v as views into fused qkv rows ((Hq + 2 Hkv) D wide), as the train workload lays them;
 * T = 150 is longer than a block of threads. */
static void t_train_attention(vctx *v) {
    static const struct { int64_t B, T, Hq, Hkv, D; } cases[] = {{2, 17, 4, 2, 32}, {1, 150, 2, 1, 16}, {1, 3, 1, 1, 64}};
    const double bound = 1e-4;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, Hq = cases[c].Hq, Hkv = cases[c].Hkv, D = cases[c].D;
        const int64_t ld = (Hq + 2 * Hkv) * D, N = B * T, ldo = Hq * D;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld Hq=%lld Hkv=%lld D=%lld (qkv rows)", (long long)B, (long long)T,
                 (long long)Hq, (long long)Hkv, (long long)D);
        trb t = {0};
        vbuf *qkv = trb_f32(v, &t, N * ld, 241, 1.0f, 0.0f), *out = trb_f32(v, &t, N * ldo, 0, 0, 0);
        vbuf *dout = trb_f32(v, &t, N * ldo, 242, 1.0f, 0.0f), *dqkv = trb_f32(v, &t, N * ld, 0, 0, 0);
        if (t.oom) OOM(v, "attention_train", HB_F32, shape);
        else {
            hb_status st[2];
#define QKV_T(p, off, w) hb_t2((float *)(p) + (off), HB_F32, N, (w), ld)
            TR_RUN(st[dut] = HB_OP(be, attention_train, .out = hb_t2(TP(out), HB_F32, N, ldo, ldo),
                                   .q = QKV_T(TP(qkv), 0, Hq * D), .k = QKV_T(TP(qkv), Hq * D, Hkv * D),
                                   .v = QKV_T(TP(qkv), (Hq + Hkv) * D, Hkv * D), .B = B, .T = T, .Hq = Hq, .Hkv = Hkv));
            const char *names[] = {"out"};
            vbuf *bufs[] = {out};
            tr_check(v, "attention_train", shape, bound, st[0], st[1], 1, names, bufs);
            TR_RUN(st[dut] = HB_OP(be, attention_backward, .dq = QKV_T(TP(dqkv), 0, Hq * D),
                                   .dk = QKV_T(TP(dqkv), Hq * D, Hkv * D), .dv = QKV_T(TP(dqkv), (Hq + Hkv) * D, Hkv * D),
                                   .dout = hb_t2(TP(dout), HB_F32, N, ldo, ldo), .q = QKV_T(TP(qkv), 0, Hq * D),
                                   .k = QKV_T(TP(qkv), Hq * D, Hkv * D), .v = QKV_T(TP(qkv), (Hq + Hkv) * D, Hkv * D),
                                   .B = B, .T = T, .Hq = Hq, .Hkv = Hkv));
#undef QKV_T
            const char *names2[] = {"dq,dk,dv"};
            vbuf *bufs2[] = {dqkv};
            tr_check(v, "attention_backward", shape, bound, st[0], st[1], 1, names2, bufs2);
        }
        trb_free(v, &t);
    }
}

static void t_train_elementwise(vctx *v) {
    static const int64_t sw[][2] = {{7, 333}, {3, 1000}};
    for (int c = 0; c < HB_ARRAY_LEN(sw); c++) {
        const int64_t N = sw[c][0], F = sw[c][1];
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld F=%lld", (long long)N, (long long)F);
        trb t = {0};
        vbuf *in = trb_f32(v, &t, N * 2 * F, 251, 4.0f, 0.0f), *dout = trb_f32(v, &t, N * F, 252, 1.0f, 0.0f);
        vbuf *din = trb_f32(v, &t, N * 2 * F, 0, 0, 0);
        if (t.oom) OOM(v, "swiglu_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, swiglu_backward, .din = hb_t2(TP(din), HB_F32, N, 2 * F, 2 * F),
                                   .dout = hb_t2(TP(dout), HB_F32, N, F, F), .in = hb_t2(TP(in), HB_F32, N, 2 * F, 2 * F)));
            const char *names[] = {"din"};
            vbuf *bufs[] = {din};
            tr_check(v, "swiglu_backward", shape, 2e-5, st[0], st[1], 1, names, bufs);
        }
        trb_free(v, &t);
    }
    static const int64_t ns[] = {1, 1001, 100003};
    for (int c = 0; c < HB_ARRAY_LEN(ns); c++) {
        const int64_t n = ns[c];
        char shape[64];
        snprintf(shape, sizeof shape, "n=%lld", (long long)n);
        trb t = {0};
        vbuf *in = trb_f32(v, &t, n, 253, 4.0f, 0.0f), *dout = trb_f32(v, &t, n, 254, 1.0f, 0.0f);
        vbuf *din = trb_f32(v, &t, n, 0, 0, 0);
        if (t.oom) OOM(v, "gelu_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, gelu_backward, .din = hb_t1(TP(din), HB_F32, n), .dout = hb_t1(TP(dout), HB_F32, n),
                                   .in = hb_t1(TP(in), HB_F32, n)));
            const char *names[] = {"din"};
            vbuf *bufs[] = {din};
            tr_check(v, "gelu_backward", shape, 2e-5, st[0], st[1], 1, names, bufs);
        }
        trb_free(v, &t);
    }
}

static void t_train_cross_entropy(vctx *v) {
    /* the last in place (dlogits = logits), a GPT-2-wide vocabulary */
    static const struct { int64_t N, V, pad; int inplace; } cases[] = {{1, 1, 0, 0}, {5, 1001, 3, 0}, {3, 50257, 0, 1}};
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t N = cases[c].N, V = cases[c].V, ld = V + cases[c].pad;
        const int inplace = cases[c].inplace;
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld V=%lld ld=%lld%s", (long long)N, (long long)V, (long long)ld,
                 inplace ? " in place" : "");
        int32_t *tg = tokens_mod(N, 261, V);
        trb t = {0};
        vbuf *tgt = trb_raw(v, &t, tg, (size_t)N * 4), *lg = trb_f32(v, &t, N * ld, 262, 6.0f, 0.0f);
        vbuf *loss = trb_f32(v, &t, N, 0, 0, 0), *dl = inplace ? lg : trb_f32(v, &t, N * ld, 0, 0, 0);
        const float ds = 1.0f / (float)N;
        if (t.oom) OOM(v, "cross_entropy", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, cross_entropy, .losses = hb_t1(TP(loss), HB_F32, N),
                                   .dlogits = hb_t2(TP(dl), HB_F32, N, V, ld), .logits = hb_t2(TP(lg), HB_F32, N, V, ld),
                                   .targets = TP(tgt), .dscale = ds));
            const char *names[] = {"losses"};
            vbuf *bufs[] = {loss};
            tr_check(v, "cross_entropy", shape, 1e-5, st[0], st[1], 1, names, bufs);
            if (statuses(v, "cross_entropy(dlogits)", HB_F32, shape, 1e-5, st[0], st[1]))
                check_rows(v, "cross_entropy(dlogits)", HB_F32, shape, dl, N, V, ld, 1e-5);
        }
        trb_free(v, &t);
        free(tg);
    }
}

static void t_train_adamw(vctx *v) {
    static const struct { int64_t n, t; hb_dtype lp; int zero_grad; } cases[] = {
        {1001, 1, HB_BF16, 1}, {100003, 3, HB_F16, 0}, {7, 10, HB_F32, 1}};
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t n = cases[c].n;
        const hb_dtype lpt = cases[c].lp;
        char shape[64];
        snprintf(shape, sizeof shape, "n=%lld t=%lld%s%s%s", (long long)n, (long long)cases[c].t,
                 lpt != HB_F32 ? " lp=" : "", lpt != HB_F32 ? hb_dtype_name(lpt) : "", cases[c].zero_grad ? " zero_grad" : "");
        trb t = {0};
        vbuf *p = trb_f32(v, &t, n, 271, 1.0f, 0.0f), *g = trb_f32(v, &t, n, 272, 0.1f, 0.0f);
        vbuf *m = trb_f32(v, &t, n, 273, 0.01f, 0.0f), *vv = trb_f32(v, &t, n, 274, 0.001f, 0.002f);
        vbuf *lp = trb_f32(v, &t, n, 0, 0, 0); /* bf16/f16 use the first half */
        if (t.oom) OOM(v, "adamw", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, adamw, .param = hb_t1(TP(p), HB_F32, n), .grad = hb_t1(TP(g), HB_F32, n),
                                   .m = hb_t1(TP(m), HB_F32, n), .v = hb_t1(TP(vv), HB_F32, n),
                                   .param_lp = lpt != HB_F32 ? hb_t1(TP(lp), lpt, n) : (hb_tensor){0}, .lr = 1e-3f,
                                   .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
                                   .grad_scale = 0.5f, .t = cases[c].t, .zero_grad = cases[c].zero_grad));
            const char *names[] = {"param", "grad", "m", "v"};
            vbuf *bufs[] = {p, g, m, vv};
            tr_check(v, "adamw", shape, 1e-6, st[0], st[1], 4, names, bufs);
            if (lpt != HB_F32 && statuses(v, "adamw(param_lp)", lpt, shape, 0.0, st[0], st[1])) {
                /* the rounding of (nearly) the same f32: the fraction of codes that differ */
                void *hr = NULL, *hd = NULL;
                if (vb_get(v, lp, &hr, &hd) != HB_OK) row(v, "adamw(param_lp)", lpt, shape, NAN, 0.0, "FAIL", v->dut->err);
                else verdict(v, "adamw(param_lp)", lpt, shape, diff_frac(hr, hd, n, 2), 1e-3);
                free(hr), free(hd);
            }
        }
        trb_free(v, &t);
    }
}

/* ids (N, k) of distinct experts: (3 n + 5 j) mod E, E coprime with 5 */
static int32_t *moe_ids(int64_t N, int64_t k, int64_t E) {
    int32_t *id = malloc((size_t)(N * k) * sizeof *id);
    if (id)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < k; j++) id[n * k + j] = (int32_t)((3 * n + 5 * j) % E);
    return id;
}

/* rows: a permutation of the N k slots, s -> (7 s + 3) mod (N k), N k coprime with 7 */
static int32_t *moe_rows(int64_t S) {
    int32_t *r = malloc((size_t)S * sizeof *r);
    if (r)
        for (int64_t s = 0; s < S; s++) r[s] = (int32_t)((7 * s + 3) % S);
    return r;
}

static void t_train_moe(vctx *v) {
    static const struct { int64_t N, E, k; int kind, norm; float scale; } rc[] = {
        {9, 8, 2, HB_ROUTER_SOFTMAX, 1, 1.0f}, {5, 64, 6, HB_ROUTER_SOFTMAX, 0, 1.0f}, {7, 256, 8, HB_ROUTER_SIGMOID, 1, 2.5f}};
    for (int c = 0; c < HB_ARRAY_LEN(rc); c++) {
        const int64_t N = rc[c].N, E = rc[c].E, k = rc[c].k, ld = E + 1;
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld E=%lld k=%lld %s%s scale=%g", (long long)N, (long long)E, (long long)k,
                 rc[c].kind == HB_ROUTER_SOFTMAX ? "softmax" : "sigmoid", rc[c].norm ? " norm" : "", (double)rc[c].scale);
        int32_t *id = moe_ids(N, k, E);
        trb t = {0};
        vbuf *ids = trb_raw(v, &t, id, (size_t)(N * k) * 4), *lg = trb_f32(v, &t, N * ld, 281, 3.0f, 0.0f);
        vbuf *dw = trb_f32(v, &t, N * k, 282, 1.0f, 0.0f), *dl = trb_f32(v, &t, N * ld, 0, 0, 0);
        if (t.oom) OOM(v, "moe_route_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, moe_route_backward, .dlogits = hb_t2(TP(dl), HB_F32, N, E, ld),
                                   .logits = hb_t2(TP(lg), HB_F32, N, E, ld), .ids = TP(ids), .dweights = TP(dw),
                                   .kind = (hb_router_kind)rc[c].kind, .top_k = k, .norm = rc[c].norm, .scale = rc[c].scale));
            if (statuses(v, "moe_route_backward(dlogits)", HB_F32, shape, 1e-5, st[0], st[1]))
                check_rows(v, "moe_route_backward(dlogits)", HB_F32, shape, dl, N, E, ld, 1e-5);
        }
        trb_free(v, &t);
        free(id);
    }
    static const struct { int64_t N, k, C; float beta; } pc[] = {{9, 2, 67, 0.0f}, {33, 4, 130, 1.0f}};
    for (int c = 0; c < HB_ARRAY_LEN(pc); c++) {
        const int64_t N = pc[c].N, k = pc[c].k, C = pc[c].C, S = N * k, ld = C + 2;
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld k=%lld C=%lld ld=%lld beta=%g", (long long)N, (long long)k, (long long)C,
                 (long long)ld, (double)pc[c].beta);
        int32_t *rw = moe_rows(S);
        trb t = {0};
        vbuf *rows = trb_raw(v, &t, rw, (size_t)S * 4), *dxp = trb_f32(v, &t, S * C, 291, 1.0f, 0.0f);
        vbuf *dx = trb_f32(v, &t, N * ld, pc[c].beta != 0.0f ? 292 : 0, 1.0f, 0.0f);
        vbuf *dout = trb_f32(v, &t, N * ld, 293, 1.0f, 0.0f), *y = trb_f32(v, &t, S * C, 294, 1.0f, 0.0f);
        vbuf *wts = trb_f32(v, &t, S, 295, 0.5f, 0.5f), *dy = trb_f32(v, &t, S * C, 0, 0, 0);
        vbuf *dws = trb_f32(v, &t, S, 0, 0, 0);
        if (t.oom) OOM(v, "moe_permute_backward", HB_F32, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, moe_permute_backward, .dx = hb_t2(TP(dx), HB_F32, N, C, ld),
                                   .dxp = hb_t2(TP(dxp), HB_F32, S, C, C), .rows = TP(rows), .top_k = k, .beta = pc[c].beta));
            if (statuses(v, "moe_permute_backward(dx)", HB_F32, shape, 1e-6, st[0], st[1]))
                check_rows(v, "moe_permute_backward(dx)", HB_F32, shape, dx, N, C, ld, 1e-6);
            TR_RUN(st[dut] = HB_OP(be, moe_combine_backward, .dy = hb_t2(TP(dy), HB_F32, S, C, C),
                                   .dout = hb_t2(TP(dout), HB_F32, N, C, ld), .y = hb_t2(TP(y), HB_F32, S, C, C),
                                   .dweights = TP(dws), .rows = TP(rows), .weights = TP(wts), .top_k = k));
            const char *names[] = {"dy", "dweights"};
            vbuf *bufs[] = {dy, dws};
            tr_check(v, "moe_combine_backward", shape, 1e-6, st[0], st[1], 2, names, bufs);
        }
        trb_free(v, &t);
        free(rw);
    }
    /* experts with 3, 0, 9, 1 and 20 rows (R = 33) */
    static const hb_dtype wdts[] = {HB_F32, HB_BF16, HB_F16};
    const int32_t off[] = {0, 3, 3, 12, 13, 33};
    const int64_t E = 5, R = 33, Nw = 40, K = 67;
    for (int di = 0; di < HB_ARRAY_LEN(wdts); di++) {
        const hb_dtype wdt = wdts[di];
        if (!want(v, wdt)) continue;
        const char *shape = "E=5 N=40 K=67 rows 3,0,9,1,20";
        float *wf = hvec(E * Nw * K, 301, 0.5f, 0.0f);
        void *wb = wf ? to_dtype(wf, E * Nw * K, wdt) : NULL;
        trb t = {0};
        vbuf *w = trb_raw(v, &t, wb, (size_t)(E * Nw * K * hb_dtype_size(wdt))), *bo = trb_raw(v, &t, off, sizeof off);
        vbuf *a = trb_f32(v, &t, R * K, 302, 1.0f, 0.0f), *dout = trb_f32(v, &t, R * Nw, 303, 1.0f, 0.0f);
        vbuf *da = trb_f32(v, &t, R * K, 0, 0, 0), *dw = trb_f32(v, &t, E * Nw * K, 304, 0.1f, 0.0f);
        if (t.oom) OOM(v, "matmul_grouped_backward", wdt, shape);
        else {
            hb_status st[2];
            TR_RUN(st[dut] = HB_OP(be, matmul_grouped_backward, .da = hb_t2(TP(da), HB_F32, R, K, K),
                                   .dw = hb_t3(TP(dw), HB_F32, E, Nw, K), .dout = hb_t2(TP(dout), HB_F32, R, Nw, Nw),
                                   .a = hb_t2(TP(a), HB_F32, R, K, K), .w = hb_t3(TP(w), wdt, E, Nw, K),
                                   .offsets = TP(bo), .beta = 0.0f));
            if (statuses(v, "matmul_grouped_backward(da)", wdt, shape, 1e-4, st[0], st[1]))
                check_f32(v, "matmul_grouped_backward(da)", wdt, shape, da, 1e-4);
            if (statuses(v, "matmul_grouped_backward(dw)", wdt, shape, 1e-4, st[0], st[1]))
                check_f32(v, "matmul_grouped_backward(dw)", wdt, shape, dw, 1e-4);
        }
        trb_free(v, &t);
        free(wf), free(wb);
    }
}

static void t_train(vctx *v) {
    if (want(v, HB_F32)) {
        t_train_embedding(v);
        t_train_norm(v, 0);
        t_train_norm(v, 1);
    }
    t_train_matmul(v);
    if (want(v, HB_F32)) {
        t_train_rope(v);
        t_train_attention(v);
        t_train_elementwise(v);
        t_train_cross_entropy(v);
        t_train_adamw(v);
    }
    t_train_moe(v);
}

/* One model's prefill logits and one decode step's, on both: `tiny` (dense), `tiny-moe`
 * (softmax router, a shared expert, a first dense layer) and `tiny-mla` (MLA attention with
 * the absorbed decode, DeepSeek-V3's sigmoid router with groups and bias). */
static void t_model_one(vctx *v, const char *name);

static void t_model(vctx *v) {
    t_model_one(v, "tiny");
    t_model_one(v, "tiny-moe");
    t_model_one(v, "tiny-mla");
}

static void t_model_one(vctx *v, const char *name) {
    hb_model m;
    if (hb_model_find(name, &m, NULL) != HB_OK) {
        row(v, "model", HB_F32, name, NAN, 0.0, "FAIL", "no such preset");
        return;
    }
    static const struct { hb_workload_kind w; int64_t B, P, G; const char *step; } cases[] = {
        {HB_WL_PREFILL, 2, 17, 0, ""}, {HB_WL_DECODE, 3, 9, 4, " step 1"}};
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt)) continue;
        /* logits after two layers: bf16/f16 vendor GEMMs round the activations too */
        const double bound = dt == HB_F32 ? 1e-3 : dt == HB_F16 ? 1e-2 : 3e-2;
        for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
            hb_case k;
            memset(&k, 0, sizeof k);
            k.workload = cases[c].w;
            k.model = m;
            k.dtype = (hb_dtype)dt;
            k.batch = cases[c].B, k.prompt = cases[c].P, k.gen = cases[c].G;
            k.seed = 1234;
            k.warmup_iters = 0, k.min_iters = 1, k.max_iters = 1;
            /* fp8 models (per-tensor scales) with an f32 KV cache: a bf16 cache's p rounding,
             * relative to a running max on the GPU (ops.h), moves the prompt's logits by ~4e-4,
             * which the activation quantisation amplifies to a different argmax - and then the
             * decode step's input token differs. The fp8 cache has its own op rows. */
            const int fp8 = hb_dtype_is_fp8((hb_dtype)dt);
            if (fp8) k.kv_dtype = HB_KV_F32;
            char op[32], shape[64];
            snprintf(op, sizeof op, "model %s", hb_workload_name(k.workload));
            snprintf(shape, sizeof shape, "%s B=%lld P=%lld%s%s logits", name, (long long)k.batch,
                     (long long)k.prompt, cases[c].step, fp8 ? " kv=f32" : "");
            hb_workload *wr = NULL, *wd = NULL;
            hb_err er = {{0}}, ed = {{0}};
            hb_status sd = hb_workload_setup(v->dut, &k, &wd, &ed);
            if (sd == HB_OK) sd = hb_workload_step(wd);
            hb_status sr = hb_workload_setup(v->ref, &k, &wr, &er);
            if (sr == HB_OK) sr = hb_workload_step(wr);
            if (sd == HB_ERR_UNSUPPORTED) {
                row(v, op, (hb_dtype)dt, shape, NAN, bound, "unsupported", ed.msg[0] ? ed.msg : v->dut->err);
            } else if (sr == HB_ERR_UNSUPPORTED) {
                row(v, op, (hb_dtype)dt, shape, NAN, bound, "unsupported", "no CPU reference");
            } else if (sd != HB_OK || sr != HB_OK) {
                row(v, op, (hb_dtype)dt, shape, NAN, bound, "FAIL",
                    sd != HB_OK ? (ed.msg[0] ? ed.msg : v->dut->err) : (er.msg[0] ? er.msg : v->ref->err));
            } else {
                float *lr = NULL, *ld = NULL;
                int64_t nr = 0, nd = 0;
                hb_status s = hb_workload_output(wr, &lr, &nr);
                if (s == HB_OK) s = hb_workload_output(wd, &ld, &nd);
                if (s != HB_OK || nr != nd)
                    row(v, op, (hb_dtype)dt, shape, NAN, bound, "FAIL", "cannot read the logits");
                else
                    verdict(v, op, (hb_dtype)dt, shape, rel_err(lr, ld, nr), bound);
                free(lr), free(ld);
            }
            hb_workload_free(wr);
            hb_workload_free(wd);
        }
    }
}

/* ---- one device ---- */

static int verify_device(hb_backend *ref, const char *name, int index, unsigned dtypes) {
    hb_backend *dut = NULL;
    hb_err err = {{0}};
    if (hb_backend_open(name, index, &dut, &err) != HB_OK) {
        printf("# %s:%d: cannot open: %s\n", name, index, err.msg);
        return 1;
    }
    const hb_device_info *in = &dut->info;
    printf("# verify %s:%d  %s %s  pci %s  gemm %s  (%s)\n", name, index, in->vendor, in->name,
           in->pci_bus_id[0] ? in->pci_bus_id : "-", in->gemm_impl, in->runtime);
    printf("# %-16s %-5s %-46s %11s %9s  %s\n", "op", "dtype", "shape", "max_rel_err", "bound",
           "verdict");
    vctx v = {.ref = ref, .dut = dut, .dtypes = dtypes};
    t_fill(&v);
    t_convert(&v);
    t_embedding(&v);
    t_norm(&v, 0);
    t_norm(&v, 1);
    t_matmul(&v);
    t_matmul_fp8(&v);
    t_matmul_batched(&v);
    t_rope(&v);
    t_kv_store(&v);
    t_attention(&v);
    t_attention_paged(&v);
    t_elementwise(&v);
    t_select(&v);
    t_moe(&v);
    t_moe_route_more(&v);
    t_moe_permute_more(&v);
    t_matmul_grouped_more(&v);
    t_mla_more(&v);
    t_train(&v);
    t_model(&v);
    printf("# %s:%d: %d passed, %d failed, %d unsupported\n", name, index, v.n_pass, v.n_fail,
           v.n_unsup);
    hb_backend_close(dut);
    return v.n_fail ? 1 : 0;
}

int hb_cmd_verify(int argc, char **argv) {
    const char *backend = NULL;
    unsigned dtypes = 0;
    int device = 0, require = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help_verify, stdout);
            return 0;
        }
        if (strcmp(a, "--require-device") == 0) {
            require = 1;
            continue;
        }
        const char *val = NULL;
        char name[32];
        snprintf(name, sizeof name, "%s", a);
        char *eq = strchr(name, '=');
        if (eq) {
            *eq = '\0';
            val = strchr(a, '=') + 1;
        }
        if (strcmp(name, "--backend") != 0 && strcmp(name, "--dtype") != 0 && strcmp(name, "--device") != 0) {
            fprintf(stderr, "hetbench verify: unknown option '%s' (see 'hetbench verify --help')\n", a);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hetbench verify: %s: missing value\n", name);
                return 2;
            }
            val = argv[++i];
        }
        if (strcmp(name, "--backend") == 0) {
            if (!hb_backend_find(val)) {
                fprintf(stderr, "hetbench verify: --backend: unknown backend '%s' (accepted: cuda, hip, cpu)\n", val);
                return 2;
            }
            backend = val;
        } else if (strcmp(name, "--device") == 0) {
            char *end = NULL;
            long d = strtol(val, &end, 10);
            if (!*val || *end || d < 0 || d > 1024) {
                fprintf(stderr, "hetbench verify: --device: '%s' is not a device index\n", val);
                return 2;
            }
            device = (int)d;
        } else {
            char list[128];
            snprintf(list, sizeof list, "%s", val);
            char *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                hb_dtype dt;
                if (hb_dtype_parse(t, &dt) != 0) {
                    fprintf(stderr, "hetbench verify: --dtype: unknown dtype '%s' (accepted: f32, bf16, f16, fp8, e5m2)\n", t);
                    return 2;
                }
                dtypes |= 1u << dt;
            }
        }
    }
    if (!dtypes) dtypes = (1u << HB_DTYPE_COUNT) - 1;

    hb_backend *ref = NULL;
    hb_err err = {{0}};
    if (hb_backend_open("cpu", 0, &ref, &err) != HB_OK) {
        fprintf(stderr, "hetbench verify: cannot open the CPU reference: %s\n", err.msg);
        return 1;
    }
    int rc = 0, verified = 0;
    const hb_backend_desc *d;
    const int n = hb_backend_registry(&d);
    for (int i = 0; i < n; i++) {
        if (backend ? strcmp(d[i].name, backend) != 0 : strcmp(d[i].name, "cpu") == 0) continue;
        hb_err why = {{0}};
        const int count = d[i].count(&why);
        if (count <= device) {
            const char *reason = count < 0 ? why.msg : count == 0 ? "no device" : "no such device index";
            printf("# %s: unavailable: %s\n", d[i].name, reason);
            if (backend) rc = 1; /* asked for explicitly: not verifying it is a failure */
            continue;
        }
        rc |= verify_device(ref, d[i].name, device, dtypes);
        verified++;
    }
    if (!verified && !backend) printf("no GPU backend available: nothing verified\n");
    hb_backend_close(ref);
    if (!verified && require) {
        fprintf(stderr, "hetbench verify: --require-device: no %s device to verify (see the lines above)\n",
                backend ? backend : "GPU backend has a");
        return 1;
    }
    return rc;
}
