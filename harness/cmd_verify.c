/* cmd_verify.c - `hetbench verify`: every op of each available GPU backend, for every storage
 * dtype and a few shapes (odd sizes, not multiples of any tile), against the CPU reference
 * backend; then a whole `tiny` model's logits on both.
 *
 * Each case builds its inputs on the host, uploads the same bytes to both backends, poisons the
 * outputs (all bits set: NaN for floats, -1 for token ids) so that an element the device does
 * not write fails, runs the op on both, and compares:
 *   float outputs   max |dut - ref| / max |ref|, against a bound per op and dtype;
 *                   a NaN or inf anywhere fails
 *   exact outputs   generators, casts, copies, argmax, sampling: the fraction of elements that
 *                   differ (bit for bit), bound 0
 * A case the device reports unsupported is listed as such and does not fail; fp8 has no CPU
 * reference, so fp8 cases are checked against the host (fill, convert) or against the CPU on the
 * dequantised weights (matmul).
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

#include "backends/backend.h"
#include "backends/gpu/fp8.h" // defines: hb_f32_to_e4m3, hb_e4m3_to_f32 (fp8 has no CPU op)
#include "harness/commands.h"
#include "workloads/model.h"
#include "workloads/workload.h"

static const char *const help_verify =
    "usage: hetbench verify [--backend B] [--dtype D[,D...]] [--device N]\n"
    "\n"
    "Runs every op of each available GPU backend (or of --backend) for every storage dtype and\n"
    "a few shapes against the CPU reference backend, then a whole 'tiny' model's logits, and\n"
    "prints a table: op, dtype, shape, max relative error (max |dev - cpu| / max |cpu|), bound,\n"
    "verdict. Outputs are poisoned (NaN) before every run, so an element the device does not\n"
    "write fails; a NaN fails; an op the device does not support is listed, not failed.\n"
    "\n"
    "options:\n"
    "  --backend B   cuda | hip | cpu (cpu: the CPU against itself)    [every GPU backend]\n"
    "  --dtype D     f32, bf16, f16, fp8 (comma list): the rows to run      [all]\n"
    "  --device N    device index of each backend                           [0]\n"
    "\n"
    "exit codes: 0 everything matched (or no GPU backend: nothing verified), 1 a mismatch or a\n"
    "device error, or --backend unavailable, 2 usage error\n";

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
    if (sr == HB_ERR_UNSUPPORTED) {
        row(v, op, dt, shape, NAN, bound, "unsupported", "no CPU reference");
        return 0;
    }
    if (sd != HB_OK) {
        row(v, op, dt, shape, NAN, bound, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(sd));
        return 0;
    }
    if (sr != HB_OK) {
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
    size_t rbytes, dbytes;
} vbuf;

static void vb_free(vctx *v, vbuf *b) {
    if (b->r) v->ref->ops->free(v->ref, b->r);
    if (b->d) v->dut->ops->free(v->dut, b->d);
    memset(b, 0, sizeof *b);
}

/* ref and dut sizes differ only for fp8 weights (the CPU reference holds them as f32). */
static hb_status vb_alloc2(vctx *v, vbuf *b, size_t rbytes, size_t dbytes) {
    memset(b, 0, sizeof *b);
    b->rbytes = rbytes;
    b->dbytes = dbytes;
    hb_status s = v->ref->ops->alloc(v->ref, rbytes, &b->r);
    if (s == HB_OK) s = v->dut->ops->alloc(v->dut, dbytes, &b->d);
    if (s != HB_OK) vb_free(v, b);
    return s;
}
static hb_status vb_alloc(vctx *v, vbuf *b, size_t nbytes) { return vb_alloc2(v, b, nbytes, nbytes); }

static hb_status vb_set2(vctx *v, vbuf *b, const void *hr, const void *hd) {
    hb_status s = v->ref->ops->upload(v->ref, b->r, hr, b->rbytes);
    if (s == HB_OK) s = v->dut->ops->upload(v->dut, b->d, hd, b->dbytes);
    return s;
}
static hb_status vb_set(vctx *v, vbuf *b, const void *h) { return vb_set2(v, b, h, h); }

/* All bits set: NaN as f32, -1 as int32, 0xff bytes otherwise. */
static hb_status vb_poison(vctx *v, vbuf *b) {
    size_t n = b->rbytes > b->dbytes ? b->rbytes : b->dbytes;
    void *p = malloc(n ? n : 1);
    if (!p) return HB_ERR_NOMEM;
    memset(p, 0xff, n);
    hb_status s = vb_set(v, b, p);
    free(p);
    return s;
}

/* Host copies of both (after both backends finished); freed by the caller. */
static hb_status vb_get(vctx *v, vbuf *b, void **hr, void **hd) {
    *hr = malloc(b->rbytes ? b->rbytes : 1);
    *hd = malloc(b->dbytes ? b->dbytes : 1);
    if (!*hr || !*hd) return HB_ERR_NOMEM;
    hb_status s = v->ref->ops->sync(v->ref);
    if (s == HB_OK) s = v->dut->ops->sync(v->dut);
    if (s == HB_OK) s = v->ref->ops->download(v->ref, *hr, b->r, b->rbytes);
    if (s == HB_OK) s = v->dut->ops->download(v->dut, *hd, b->d, b->dbytes);
    return s;
}

/* Compares the f32 buffer b and writes the row. */
static void check_f32(vctx *v, const char *op, hb_dtype dt, const char *shape, vbuf *b,
                      double bound) {
    void *hr = NULL, *hd = NULL;
    hb_status s = vb_get(v, b, &hr, &hd);
    if (s != HB_OK) row(v, op, dt, shape, NAN, bound, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(s));
    else verdict(v, op, dt, shape, rel_err(hr, hd, (int64_t)(b->rbytes / 4)), bound);
    free(hr);
    free(hd);
}

static void check_exact(vctx *v, const char *op, hb_dtype dt, const char *shape, vbuf *b,
                        size_t esz) {
    void *hr = NULL, *hd = NULL;
    hb_status s = vb_get(v, b, &hr, &hd);
    if (s != HB_OK) row(v, op, dt, shape, NAN, 0.0, "FAIL", v->dut->err[0] ? v->dut->err : hb_status_str(s));
    else verdict(v, op, dt, shape, diff_frac(hr, hd, (int64_t)(b->dbytes / esz), esz), 0.0);
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

/* Storage bytes of x in dt (dut), and the reference's copy: the same bytes, or for fp8 the
 * dequantised f32 values (*ref_dt = f32). */
static void *to_dtype(const float *x, int64_t n, hb_dtype dt, void **ref, hb_dtype *ref_dt) {
    void *d = malloc((size_t)(n > 0 ? n : 1) * (size_t)hb_dtype_size(dt));
    *ref = NULL;
    *ref_dt = dt == HB_FP8_E4M3 ? HB_F32 : dt;
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case HB_F32: ((float *)d)[i] = x[i]; break;
        case HB_BF16: ((uint16_t *)d)[i] = hb_f32_to_bf16(x[i]); break;
        case HB_F16: ((uint16_t *)d)[i] = hb_f32_to_f16(x[i]); break;
        default: ((uint8_t *)d)[i] = hb_f32_to_e4m3(x[i]); break;
        }
    }
    if (dt != HB_FP8_E4M3) {
        *ref = d;
        return d;
    }
    float *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) {
        free(d);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) r[i] = hb_e4m3_to_f32(((uint8_t *)d)[i]);
    *ref = r;
    return d;
}

static void free_dtype(void *d, void *r) {
    if (r != d) free(r);
    free(d);
}

#define OOM(v, op, dt, shape) row(v, op, dt, shape, NAN, 0.0, "FAIL", "out of memory")

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
            if (sd == HB_OK) sd = HB_OP(v->dut, fill_random, b.d, (hb_dtype)dt, n, seed, cases[c].scale, cases[c].offset);
            hb_status sr = HB_OP(v->ref, fill_random, b.r, (hb_dtype)dt, n, seed, cases[c].scale, cases[c].offset);
            if (sr == HB_ERR_UNSUPPORTED && sd == HB_OK) {
                /* fp8: the reference is the host applying the same definition */
                float *x = hvec(n, seed, cases[c].scale, cases[c].offset);
                void *r8 = NULL;
                hb_dtype rdt;
                void *d8 = x ? to_dtype(x, n, (hb_dtype)dt, &r8, &rdt) : NULL;
                sr = d8 ? v->ref->ops->upload(v->ref, b.r, d8, (size_t)(n * esz)) : HB_ERR_NOMEM;
                free_dtype(d8, r8);
                free(x);
            }
            if (statuses(v, "fill_random", (hb_dtype)dt, shape, 0.0, sr, sd))
                check_exact(v, "fill_random", (hb_dtype)dt, shape, &b, (size_t)esz);
            vb_free(v, &b);
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
        if (sd == HB_OK) sd = HB_OP(v->dut, fill_tokens, b.d, tk[c].n, 77, tk[c].vocab);
        hb_status sr = HB_OP(v->ref, fill_tokens, b.r, tk[c].n, 77, tk[c].vocab);
        if (statuses(v, "fill_tokens", HB_F32, shape, 0.0, sr, sd))
            check_exact(v, "fill_tokens", HB_F32, shape, &b, 4);
        vb_free(v, &b);
    }
}

/* dst <- src for every pair of dtypes: bit-exact with the CPU (or, for fp8, with the host). */
static void t_convert(vctx *v) {
    const int64_t n = 70001;
    for (int sdt = 0; sdt < HB_DTYPE_COUNT; sdt++)
        for (int ddt = 0; ddt < HB_DTYPE_COUNT; ddt++) {
            if (!want(v, (hb_dtype)sdt) && !want(v, (hb_dtype)ddt)) continue;
            char op[32], shape[64];
            snprintf(op, sizeof op, "convert->%s", hb_dtype_name((hb_dtype)ddt));
            snprintf(shape, sizeof shape, "n=%lld from %s", (long long)n, hb_dtype_name((hb_dtype)sdt));
            /* values over the whole range: tiny (subnormal in f16/fp8), ordinary, huge (inf in
             * f16, saturated in fp8) */
            float *x = malloc((size_t)n * sizeof *x);
            if (!x) { OOM(v, op, ddt, shape); continue; }
            for (int64_t i = 0; i < n; i++) {
                float u = hb_rng_pm1(4242, (uint64_t)i);
                x[i] = u * ldexpf(1.0f, (int)(i % 48) - 30);
            }
            void *src_ref = NULL;
            hb_dtype rdt;
            void *src = to_dtype(x, n, (hb_dtype)sdt, &src_ref, &rdt);
            const int64_t ses = hb_dtype_size((hb_dtype)sdt), des = hb_dtype_size((hb_dtype)ddt);
            vbuf in, out;
            if (!src || vb_alloc(v, &in, (size_t)(n * ses)) != HB_OK) {
                free_dtype(src, src_ref);
                free(x);
                OOM(v, op, ddt, shape);
                continue;
            }
            if (vb_alloc(v, &out, (size_t)(n * des)) != HB_OK) {
                vb_free(v, &in);
                free_dtype(src, src_ref);
                free(x);
                OOM(v, op, ddt, shape);
                continue;
            }
            hb_status sd = vb_set(v, &in, src); /* the same source bytes on both */
            if (sd == HB_OK) sd = vb_poison(v, &out);
            if (sd == HB_OK) sd = HB_OP(v->dut, convert, out.d, (hb_dtype)ddt, in.d, (hb_dtype)sdt, n);
            hb_status sr = HB_OP(v->ref, convert, out.r, (hb_dtype)ddt, in.r, (hb_dtype)sdt, n);
            if (sr == HB_ERR_UNSUPPORTED && sd == HB_OK) {
                /* fp8 on either side: the host does the same (via f32, rounding once) */
                float *f = malloc((size_t)n * sizeof *f);
                if (f) {
                    for (int64_t i = 0; i < n; i++) {
                        const void *p = (const char *)src + i * ses;
                        switch ((hb_dtype)sdt) {
                        case HB_F32: memcpy(&f[i], p, 4); break;
                        case HB_BF16: f[i] = hb_bf16_to_f32(*(const uint16_t *)p); break;
                        case HB_F16: f[i] = hb_f16_to_f32(*(const uint16_t *)p); break;
                        default: f[i] = hb_e4m3_to_f32(*(const uint8_t *)p); break;
                        }
                    }
                    void *r2 = NULL;
                    hb_dtype r2dt;
                    void *d2 = to_dtype(f, n, (hb_dtype)ddt, &r2, &r2dt);
                    sr = d2 ? v->ref->ops->upload(v->ref, out.r, d2, (size_t)(n * des)) : HB_ERR_NOMEM;
                    free_dtype(d2, r2);
                    free(f);
                } else {
                    sr = HB_ERR_NOMEM;
                }
            }
            if (statuses(v, op, (hb_dtype)ddt, shape, 0.0, sr, sd))
                check_exact(v, op, (hb_dtype)ddt, shape, &out, (size_t)des);
            vb_free(v, &in);
            vb_free(v, &out);
            free_dtype(src, src_ref);
            free(x);
        }
}

static void t_embedding(vctx *v) {
    static const struct { int64_t B, T, C, V, pos0; int wpe; } cases[] = {
        {1, 1, 1, 1, 0, 0}, {3, 5, 67, 101, 2, 1}, {2, 33, 768, 1000, 0, 1}, {4, 1, 4096, 3001, 7, 0}};
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt) || dt == HB_FP8_E4M3) continue; /* no fp8 tables in models */
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
            void *ter = NULL, *per = NULL;
            hb_dtype rdt;
            void *ted = te ? to_dtype(te, V * C, (hb_dtype)dt, &ter, &rdt) : NULL;
            void *ped = pe ? to_dtype(pe, maxT * C, (hb_dtype)dt, &per, &rdt) : NULL;
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
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, embedding, bo.d, bt.d, bte.d, cases[c].wpe ? bpe.d : NULL,
                               (hb_dtype)dt, B, T, cases[c].pos0, C);
                hb_status sr = HB_OP(v->ref, embedding, bo.r, bt.r, bte.r, cases[c].wpe ? bpe.r : NULL,
                                     (hb_dtype)dt, B, T, cases[c].pos0, C);
                if (statuses(v, "embedding", (hb_dtype)dt, shape, 0.0, sr, sd))
                    check_exact(v, "embedding", (hb_dtype)dt, shape, &bo, 4);
            }
            vb_free(v, &bt), vb_free(v, &bte), vb_free(v, &bpe), vb_free(v, &bo);
            free_dtype(ted, ter), free_dtype(ped, per);
            free(te), free(pe), free(tok);
        }
    }
}

/* rmsnorm and layernorm (ln != 0); w and b absent in some cases. */
static void t_norm(vctx *v, int ln) {
    if (!want(v, HB_F32)) return;
    static const struct { int64_t N, C; int affine; } cases[] = {
        {1, 1, 1}, {7, 67, 1}, {5, 4096, 1}, {2, 12289, 0}, {300, 257, 1}};
    const char *op = ln ? "layernorm" : "rmsnorm";
    const double bound = 2e-5;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t N = cases[c].N, C = cases[c].C;
        char shape[64];
        snprintf(shape, sizeof shape, "N=%lld C=%lld%s", (long long)N, (long long)C,
                 cases[c].affine ? "" : " no w/b");
        float *x = hvec(N * C, 21, 2.0f, 0.5f), *w = hvec(C, 22, 0.1f, 1.0f), *bb = hvec(C, 23, 0.02f, 0.0f);
        vbuf bx, bw, bb2, bo;
        memset(&bx, 0, sizeof bx), memset(&bw, 0, sizeof bw), memset(&bb2, 0, sizeof bb2), memset(&bo, 0, sizeof bo);
        if (!x || !w || !bb || vb_alloc(v, &bx, (size_t)(N * C * 4)) || vb_alloc(v, &bw, (size_t)C * 4) ||
            vb_alloc(v, &bb2, (size_t)C * 4) || vb_alloc(v, &bo, (size_t)(N * C * 4))) {
            OOM(v, op, HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bx, x);
            if (sd == HB_OK) sd = vb_set(v, &bw, w);
            if (sd == HB_OK) sd = vb_set(v, &bb2, bb);
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            const int a = cases[c].affine;
            hb_status sr;
            if (ln) {
                if (sd == HB_OK) sd = HB_OP(v->dut, layernorm, bo.d, bx.d, a ? bw.d : NULL, a ? bb2.d : NULL, N, C, 1e-5f);
                sr = HB_OP(v->ref, layernorm, bo.r, bx.r, a ? bw.r : NULL, a ? bb2.r : NULL, N, C, 1e-5f);
            } else {
                if (sd == HB_OK) sd = HB_OP(v->dut, rmsnorm, bo.d, bx.d, a ? bw.d : NULL, N, C, 1e-5f);
                sr = HB_OP(v->ref, rmsnorm, bo.r, bx.r, a ? bw.r : NULL, N, C, 1e-5f);
            }
            if (statuses(v, op, HB_F32, shape, bound, sr, sd)) check_f32(v, op, HB_F32, shape, &bo, bound);
        }
        vb_free(v, &bx), vb_free(v, &bw), vb_free(v, &bb2), vb_free(v, &bo);
        free(x), free(w), free(bb);
    }
}

/* Bound of matmul by weight dtype: f32 accumulates in f32 on both; with bf16/f16 weights a
 * vendor GEMM (M > 8) also rounds the activations to the weight dtype (2^-9, 2^-12); fp8
 * quantises the activations per tensor to e4m3 (2^-4). */
static double matmul_bound(hb_dtype dt) {
    switch (dt) {
    case HB_F32: return 1e-4;
    case HB_BF16: return 1e-2;
    case HB_F16: return 2e-3;
    default: return 0.1;
    }
}

/* With A stored in the weight dtype (adt = wdt) both sides multiply the same values exactly:
 * only the order of the f32 sums differs (fp8 tensor cores accumulate with fewer bits). */
static double matmul_typed_bound(hb_dtype dt) { return dt == HB_FP8_E4M3 ? 1e-2 : 1e-3; }

static void t_matmul(vctx *v) {
    static const struct { int64_t M, N, K, pad_a, pad_o; int bias; float beta; } cases[] = {
        {1, 1, 1, 0, 0, 0, 0.0f},       {1, 67, 129, 0, 0, 1, 0.0f},    {2, 64, 256, 0, 0, 0, 1.0f},
        {3, 50, 33, 5, 3, 1, 0.0f},     {8, 257, 1000, 0, 0, 0, 0.0f},  {9, 65, 70, 2, 1, 1, 1.0f},
        {33, 130, 257, 0, 0, 0, 0.0f},  {100, 96, 64, 0, 0, 1, 0.0f},   {128, 256, 512, 0, 0, 0, 1.0f},
        {257, 129, 96, 4, 7, 1, 0.5f},
    };
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!want(v, (hb_dtype)dt)) continue;
        /* typed = 1: A stored in the weight dtype too (the gemm workload), every other case */
        for (int typed = 0; typed < (dt == HB_F32 ? 1 : 2); typed++)
        for (int c = typed; c < HB_ARRAY_LEN(cases); c += 1 + typed) {
            const double bound = typed ? matmul_typed_bound((hb_dtype)dt) : matmul_bound((hb_dtype)dt);
            const int64_t M = cases[c].M, N = cases[c].N, K = cases[c].K;
            const int64_t lda = K + cases[c].pad_a, ldo = N + cases[c].pad_o;
            char shape[80];
            snprintf(shape, sizeof shape, "M=%lld N=%lld K=%lld lda=%lld ldo=%lld%s beta=%g%s",
                     (long long)M, (long long)N, (long long)K, (long long)lda, (long long)ldo,
                     cases[c].bias ? " +bias" : "", (double)cases[c].beta, typed ? " A=w" : "");
            float *a = hvec(M * lda, 31, 1.0f, 0.0f), *o = hvec(M * ldo, 32, 1.0f, 0.0f);
            float *bias = hvec(N, 33, 0.5f, 0.0f);
            float *wf = hvec(N * K, 34, dt == HB_FP8_E4M3 ? 1.0f : 1.0f / sqrtf((float)K), 0.0f);
            void *wr = NULL;
            hb_dtype rdt = (hb_dtype)dt;
            void *wd = wf ? to_dtype(wf, N * K, (hb_dtype)dt, &wr, &rdt) : NULL;
            /* A: f32 on both, or in dt on the device and its exact value (rdt) on the reference */
            hb_dtype adt = typed ? (hb_dtype)dt : HB_F32, ardt = HB_F32;
            void *ar = a, *ad = a;
            if (typed && a) ad = to_dtype(a, M * lda, adt, &ar, &ardt);
            vbuf ba, bw, bb, bo;
            memset(&ba, 0, sizeof ba), memset(&bw, 0, sizeof bw), memset(&bb, 0, sizeof bb), memset(&bo, 0, sizeof bo);
            if (!a || !ad || !o || !bias || !wd ||
                vb_alloc2(v, &ba, (size_t)(M * lda * hb_dtype_size(ardt)), (size_t)(M * lda * hb_dtype_size(adt))) ||
                vb_alloc2(v, &bw, (size_t)(N * K * hb_dtype_size(rdt)), (size_t)(N * K * hb_dtype_size((hb_dtype)dt))) ||
                vb_alloc(v, &bb, (size_t)N * 4) || vb_alloc(v, &bo, (size_t)(M * ldo * 4))) {
                OOM(v, "matmul", dt, shape);
            } else {
                hb_status sd = vb_set2(v, &ba, ar, ad);
                if (sd == HB_OK) sd = vb_set2(v, &bw, wr, wd);
                if (sd == HB_OK) sd = vb_set(v, &bb, bias);
                /* beta = 0: out poisoned (must be overwritten); else it holds values */
                if (sd == HB_OK) sd = cases[c].beta == 0.0f ? vb_poison(v, &bo) : vb_set(v, &bo, o);
                const float *bd = cases[c].bias ? bb.d : NULL, *br = cases[c].bias ? bb.r : NULL;
                if (sd == HB_OK)
                    sd = HB_OP(v->dut, matmul, bo.d, ldo, ba.d, lda, adt, bw.d, (hb_dtype)dt, bd, M, N, K, cases[c].beta);
                hb_status sr = HB_OP(v->ref, matmul, bo.r, ldo, ba.r, lda, ardt, bw.r, rdt, br, M, N, K, cases[c].beta);
                if (statuses(v, "matmul", (hb_dtype)dt, shape, bound, sr, sd)) {
                    /* the padding columns of out were poisoned (beta = 0) or hold values: the
                     * comparison covers them too, so a write past N fails */
                    if (cases[c].beta == 0.0f && cases[c].pad_o) {
                        /* padding stays NaN on both: compare only the M x N block */
                        void *hr = NULL, *hd = NULL;
                        hb_status s = vb_get(v, &bo, &hr, &hd);
                        if (s != HB_OK) {
                            row(v, "matmul", (hb_dtype)dt, shape, NAN, bound, "FAIL", v->dut->err);
                        } else {
                            double maxr = 0, maxe = 0;
                            int bad = 0;
                            for (int64_t m = 0; m < M; m++) {
                                for (int64_t n = 0; n < ldo; n++) {
                                    uint32_t ud;
                                    float r = ((float *)hr)[m * ldo + n], d = ((float *)hd)[m * ldo + n];
                                    memcpy(&ud, &d, 4);
                                    if (n >= N) { bad |= ud != 0xffffffffu; continue; } /* untouched */
                                    if (!isfinite(r) || !isfinite(d)) bad = 1;
                                    maxr = fmax(maxr, fabs(r));
                                    maxe = fmax(maxe, fabs((double)d - r));
                                }
                            }
                            verdict(v, "matmul", (hb_dtype)dt, shape, bad ? INFINITY : maxe / fmax(maxr, 1e-30), bound);
                        }
                        free(hr), free(hd);
                    } else {
                        check_f32(v, "matmul", (hb_dtype)dt, shape, &bo, bound);
                    }
                }
            }
            vb_free(v, &ba), vb_free(v, &bw), vb_free(v, &bb), vb_free(v, &bo);
            free_dtype(wd, wr);
            if (ad != a) free_dtype(ad, ar);
            free(a), free(o), free(bias), free(wf);
        }
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
        hb_gemm_batched g = {0};
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
            hb_gemm_batched gd = g, gr = g;
            gd.a = ba.d, gd.b = bb.d, gd.c = bc.d;
            gr.a = ba.r, gr.b = bb.r, gr.c = bc.r;
            if (sd == HB_OK) sd = HB_OP(v->dut, matmul_batched, &gd);
            hb_status sr = HB_OP(v->ref, matmul_batched, &gr);
            if (statuses(v, "matmul_batched", HB_F32, shape, bound, sr, sd))
                check_f32(v, "matmul_batched", HB_F32, shape, &bc, bound);
        }
        vb_free(v, &ba), vb_free(v, &bb), vb_free(v, &bc);
        free(a), free(b), free(cc);
    }
}

static void t_rope(vctx *v) {
    if (!want(v, HB_F32)) return;
    static const struct { int64_t B, T, H, D, pos0, pad; float theta; } cases[] = {
        {1, 1, 1, 2, 0, 0, 10000.0f}, {2, 5, 3, 16, 7, 3, 10000.0f},
        {1, 37, 4, 128, 100, 0, 500000.0f}, {3, 1, 32, 128, 8000, 256, 500000.0f}};
    const double bound = 2e-5;
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, H = cases[c].H, D = cases[c].D;
        const int64_t ldx = H * D + cases[c].pad, n = B * T * ldx;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld H=%lld D=%lld pos0=%lld ldx=%lld", (long long)B,
                 (long long)T, (long long)H, (long long)D, (long long)cases[c].pos0, (long long)ldx);
        float *x = hvec(n, 51, 1.0f, 0.0f);
        vbuf bx;
        if (!x || vb_alloc(v, &bx, (size_t)n * 4)) {
            OOM(v, "rope", HB_F32, shape);
        } else {
            hb_status sd = vb_set(v, &bx, x); /* in place: the padding must come back unchanged */
            if (sd == HB_OK) sd = HB_OP(v->dut, rope, bx.d, ldx, B, T, cases[c].pos0, H, D, cases[c].theta);
            hb_status sr = HB_OP(v->ref, rope, bx.r, ldx, B, T, cases[c].pos0, H, D, cases[c].theta);
            if (statuses(v, "rope", HB_F32, shape, bound, sr, sd)) check_f32(v, "rope", HB_F32, shape, &bx, bound);
            vb_free(v, &bx);
        }
        free(x);
    }
}

/* KV caches in f32, bf16, f16: --dtype selects them by the cache's dtype */
static const hb_dtype kv_dtypes[] = {HB_F32, HB_BF16, HB_F16};

static void t_kv_store(vctx *v) {
    static const struct { int64_t B, T, Hkv, D, pos0, S, pad; } cases[] = {
        {1, 1, 1, 1, 0, 1, 0}, {2, 3, 2, 16, 1, 8, 5}, {1, 17, 8, 128, 0, 32, 0}, {3, 1, 8, 128, 40, 41, 4096},
        {2, 2, 3, 5, 1, 4, 1}};
    for (int ti = 0; ti < HB_ARRAY_LEN(kv_dtypes); ti++) {
    const hb_dtype kvt = kv_dtypes[ti];
    if (!want(v, kvt)) continue;
    const int64_t esz = hb_dtype_size(kvt);
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, w = cases[c].Hkv * cases[c].D, S = cases[c].S;
        const int64_t ld = w + cases[c].pad, nin = B * T * ld, ncache = B * S * w;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld Hkv=%lld D=%lld pos0=%lld S=%lld ld=%lld",
                 (long long)B, (long long)T, (long long)cases[c].Hkv, (long long)cases[c].D,
                 (long long)cases[c].pos0, (long long)S, (long long)ld);
        float *k = hvec(nin, 61, 1.0f, 0.0f), *vv = hvec(nin, 62, 1.0f, 0.0f), *cache = hvec(ncache, 63, 1.0f, 0.0f);
        void *cr = NULL, *cd = NULL;
        hb_dtype crt = kvt;
        if (cache) cd = to_dtype(cache, ncache, kvt, &cr, &crt);
        vbuf bk, bv, bkc, bvc;
        memset(&bk, 0, sizeof bk), memset(&bv, 0, sizeof bv), memset(&bkc, 0, sizeof bkc), memset(&bvc, 0, sizeof bvc);
        if (!k || !vv || !cd || vb_alloc(v, &bk, (size_t)nin * 4) || vb_alloc(v, &bv, (size_t)nin * 4) ||
            vb_alloc(v, &bkc, (size_t)(ncache * esz)) || vb_alloc(v, &bvc, (size_t)(ncache * esz))) {
            OOM(v, "kv_store", kvt, shape);
        } else {
            /* the cache holds values: positions outside pos0..pos0+T-1 must not change */
            hb_status sd = vb_set(v, &bk, k);
            if (sd == HB_OK) sd = vb_set(v, &bv, vv);
            if (sd == HB_OK) sd = vb_set(v, &bkc, cd);
            if (sd == HB_OK) sd = vb_set(v, &bvc, cd);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, kv_store, bkc.d, bvc.d, kvt, bk.d, bv.d, ld, B, T, cases[c].pos0, cases[c].Hkv, cases[c].D, S);
            hb_status sr = HB_OP(v->ref, kv_store, bkc.r, bvc.r, kvt, bk.r, bv.r, ld, B, T, cases[c].pos0, cases[c].Hkv, cases[c].D, S);
            if (statuses(v, "kv_store", kvt, shape, 0.0, sr, sd)) {
                check_exact(v, "kv_store(k)", kvt, shape, &bkc, (int)esz);
                check_exact(v, "kv_store(v)", kvt, shape, &bvc, (int)esz);
            }
        }
        vb_free(v, &bk), vb_free(v, &bv), vb_free(v, &bkc), vb_free(v, &bvc);
        free_dtype(cd, cr);
        free(k), free(vv), free(cache);
    }
    }
}

/* Attention bound by cache dtype: f32 1e-4 (sums in another order); bf16/f16: the reference
 * rounds p relative to the row's max, a GPU kernel relative to the running max: up to one
 * rounding of kvt per weight (2^-8 / 2^-11), far less on average. */
static double attention_bound(hb_dtype kvt) {
    return kvt == HB_BF16 ? 1e-2 : kvt == HB_F16 ? 2e-3 : 1e-4;
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
    const int64_t esz = hb_dtype_size(kvt);
    for (int c = 0; c < HB_ARRAY_LEN(cases); c++) {
        const int64_t B = cases[c].B, T = cases[c].T, Hq = cases[c].Hq, Hkv = cases[c].Hkv;
        const int64_t D = cases[c].D, S = cases[c].S, pos0 = cases[c].pos0;
        const int64_t ldq = Hq * D + cases[c].pad, ldo = Hq * D + 2 * cases[c].pad;
        const int64_t nq = B * T * ldq, no = B * T * ldo, ncache = B * S * Hkv * D;
        char shape[80];
        snprintf(shape, sizeof shape, "B=%lld T=%lld pos0=%lld Hq=%lld Hkv=%lld D=%lld S=%lld",
                 (long long)B, (long long)T, (long long)pos0, (long long)Hq, (long long)Hkv,
                 (long long)D, (long long)S);
        float *q = hvec(nq, 71, 1.0f, 0.0f), *kc = hvec(ncache, 72, 1.0f, 0.0f), *vc = hvec(ncache, 73, 1.0f, 0.0f);
        void *kr = NULL, *kd = NULL, *vr = NULL, *vd = NULL;
        hb_dtype rt = kvt;
        if (kc && vc) {
            kd = to_dtype(kc, ncache, kvt, &kr, &rt);
            vd = to_dtype(vc, ncache, kvt, &vr, &rt);
        }
        vbuf bq, bk, bv, bo;
        memset(&bq, 0, sizeof bq), memset(&bk, 0, sizeof bk), memset(&bv, 0, sizeof bv), memset(&bo, 0, sizeof bo);
        if (!q || !kd || !vd || vb_alloc(v, &bq, (size_t)nq * 4) || vb_alloc(v, &bk, (size_t)(ncache * esz)) ||
            vb_alloc(v, &bv, (size_t)(ncache * esz)) || vb_alloc(v, &bo, (size_t)no * 4)) {
            OOM(v, "attention", kvt, shape);
        } else {
            hb_status sd = vb_set(v, &bq, q);
            if (sd == HB_OK) sd = vb_set(v, &bk, kd);
            if (sd == HB_OK) sd = vb_set(v, &bv, vd);
            /* out: the Hq*D columns must be written; the padding is not compared (both keep
             * the poison), so poison all of it */
            if (sd == HB_OK) sd = vb_poison(v, &bo);
            if (sd == HB_OK)
                sd = HB_OP(v->dut, attention, bo.d, ldo, bq.d, ldq, bk.d, bv.d, kvt, B, T, pos0, Hq, Hkv, D, S);
            hb_status sr = HB_OP(v->ref, attention, bo.r, ldo, bq.r, ldq, bk.r, bv.r, kvt, B, T, pos0, Hq, Hkv, D, S);
            if (statuses(v, "attention", kvt, shape, bound, sr, sd)) {
                void *hr = NULL, *hd = NULL;
                if (vb_get(v, &bo, &hr, &hd) != HB_OK) {
                    row(v, "attention", kvt, shape, NAN, bound, "FAIL", v->dut->err);
                } else {
                    double maxr = 0, maxe = 0;
                    int bad = 0;
                    for (int64_t r = 0; r < B * T; r++)
                        for (int64_t j = 0; j < ldo; j++) {
                            float fr = ((float *)hr)[r * ldo + j], fd = ((float *)hd)[r * ldo + j];
                            if (j >= Hq * D) { /* padding: must still hold the poison */
                                uint32_t u;
                                memcpy(&u, &fd, 4);
                                bad |= u != 0xffffffffu;
                                continue;
                            }
                            if (!isfinite(fr) || !isfinite(fd)) bad = 1;
                            maxr = fmax(maxr, fabs(fr));
                            maxe = fmax(maxe, fabs((double)fd - fr));
                        }
                    verdict(v, "attention", kvt, shape, bad ? INFINITY : maxe / fmax(maxr, 1e-30), bound);
                }
                free(hr), free(hd);
            }
        }
        vb_free(v, &bq), vb_free(v, &bk), vb_free(v, &bv), vb_free(v, &bo);
        if (kd) free_dtype(kd, kr);
        if (vd) free_dtype(vd, vr);
        free(q), free(kc), free(vc);
    }
    }
}

/* swiglu, gelu, add, softmax: f32 in, f32 out. */
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
            if (sd == HB_OK) sd = HB_OP(v->dut, swiglu, bo.d, bi.d, N, F);
            hb_status sr = HB_OP(v->ref, swiglu, bo.r, bi.r, N, F);
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
            if (sd == HB_OK) sd = HB_OP(v->dut, gelu, bo.d, ba.d, n);
            hb_status sr = HB_OP(v->ref, gelu, bo.r, ba.r, n);
            if (statuses(v, "gelu", HB_F32, shape, bound, sr, sd)) check_f32(v, "gelu", HB_F32, shape, &bo, bound);
            /* add: residual (s = 1) and triad (s = 3), out-of-place and in place */
            sd = vb_poison(v, &bo);
            if (sd == HB_OK) sd = HB_OP(v->dut, add, bo.d, ba.d, bb.d, 1.0f, n);
            sr = HB_OP(v->ref, add, bo.r, ba.r, bb.r, 1.0f, n);
            if (statuses(v, "add", HB_F32, shape, bound, sr, sd)) check_f32(v, "add", HB_F32, shape, &bo, bound);
            sd = HB_OP(v->dut, add, ba.d, ba.d, bb.d, 3.0f, n);
            sr = HB_OP(v->ref, add, ba.r, ba.r, bb.r, 3.0f, n);
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
            if (sd == HB_OK) sd = HB_OP(v->dut, softmax, bo.d, bi.d, R, C);
            hb_status sr = HB_OP(v->ref, softmax, bo.r, bi.r, R, C);
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
                if (sd == HB_OK) sd = HB_OP(v->dut, sample, bo.d, bi.d, ld, R, C, cases[c].temp, 99, 3);
                sr = HB_OP(v->ref, sample, bo.r, bi.r, ld, R, C, cases[c].temp, 99, 3);
            } else {
                if (sd == HB_OK) sd = HB_OP(v->dut, argmax, bo.d, bi.d, ld, R, C);
                sr = HB_OP(v->ref, argmax, bo.r, bi.r, ld, R, C);
            }
            if (statuses(v, op, HB_F32, shape, 0.0, sr, sd)) check_exact(v, op, HB_F32, shape, &bo, 4);
        }
        vb_free(v, &bi), vb_free(v, &bo);
        free(x);
    }
}

/* ---- the whole model ---- */

static void t_model(vctx *v) {
    hb_model m;
    if (hb_model_find("tiny", &m, NULL) != HB_OK) {
        row(v, "model", HB_F32, "tiny", NAN, 0.0, "FAIL", "no 'tiny' preset");
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
            char op[32], shape[64];
            snprintf(op, sizeof op, "model %s", hb_workload_name(k.workload));
            snprintf(shape, sizeof shape, "tiny B=%lld P=%lld%s logits", (long long)k.batch,
                     (long long)k.prompt, cases[c].step);
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
    t_matmul_batched(&v);
    t_rope(&v);
    t_kv_store(&v);
    t_attention(&v);
    t_elementwise(&v);
    t_select(&v);
    t_model(&v);
    printf("# %s:%d: %d passed, %d failed, %d unsupported\n", name, index, v.n_pass, v.n_fail,
           v.n_unsup);
    hb_backend_close(dut);
    return v.n_fail ? 1 : 0;
}

int hb_cmd_verify(int argc, char **argv) {
    const char *backend = NULL;
    unsigned dtypes = 0;
    int device = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help_verify, stdout);
            return 0;
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
                    fprintf(stderr, "hetbench verify: --dtype: unknown dtype '%s' (accepted: f32, bf16, f16, fp8)\n", t);
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
    return rc;
}
