/* test_train_ops.c - the CPU backend's training ops (ops.h, "training") against references
 * written here: every backward op's gradients against central finite differences of an
 * independent double-precision forward (L = sum(dout * f(inputs)), so dL/dx is the op's
 * vector-Jacobian product), the fused cross-entropy against its double value and finite
 * differences, attention_train against a double forward, AdamW against its formula in double
 * over several steps; the MoE backward ops (router with softmax and sigmoid scores, with and
 * without top-k renormalisation; permutation; grouped GEMM per expert; combine) against
 * central differences of their forwards in double. The accumulate/overwrite contracts (beta, dw +=, zero_grad) are
 * checked too, with garbage in the outputs that must be overwritten. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/dtype.h" // defines: hb_f32_to_bf16, hb_bf16_to_f32
#include "hbtest.h"

/* ---- the test's own random numbers (xorshift64*), independent of hb_rng_* ---- */
static uint64_t rng_s = 0x9E3779B97F4A7C15ull;
static double urand(double lo, double hi) {
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return lo + (hi - lo) * (double)((rng_s * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static float *fvec(int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) exit(1);
    return p;
}
static double *dvec(int64_t n) {
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) exit(1);
    return p;
}
/* x (f32) and its double twin xd, uniform in [lo, hi) */
static void rfill(float *x, double *xd, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)urand(lo, hi);
        if (xd) xd[i] = x[i];
    }
}

/* Central differences of loss(ctx) with respect to x[0..n) (perturbed in place, restored). */
static void fd_grad(double (*loss)(void *), void *ctx, double *x, int64_t n, double *g) {
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i], h = 1e-6 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        const double lp = loss(ctx);
        x[i] = x0 - h;
        const double lm = loss(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * h);
    }
}

/* max |got - ref| <= rtol * max(|ref|) + atol, reported with the worst element */
static void close_all(const char *what, const float *got, const double *ref, int64_t n, double rtol) {
    double amax = 0, emax = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > amax) amax = fabs(ref[i]);
        const double e = fabs((double)got[i] - ref[i]);
        if (!(e <= emax)) emax = e, at = i;
    }
    CHECK_MSG(emax <= rtol * amax + 1e-7, "%s: max error %.3g at %lld (got %.9g, ref %.9g), max |ref| %.3g", what,
              emax, (long long)at, (double)got[at], ref[at], amax);
}

static hb_backend *be;

/* ---- embedding ---- */
typedef struct emb_ctx {
    const double *dout, *wte, *wpe;
    const int32_t *tok;
    int64_t N, T, C, pos0;
} emb_ctx;
static double emb_loss(void *p) {
    const emb_ctx *c = p;
    double L = 0;
    for (int64_t i = 0; i < c->N; i++)
        for (int64_t k = 0; k < c->C; k++)
            L += c->dout[i * c->C + k] * (c->wte[c->tok[i] * c->C + k] + c->wpe[(c->pos0 + i % c->T) * c->C + k]);
    return L;
}
static void test_embedding(void) {
    const int64_t B = 2, T = 5, C = 7, V = 6, S = 9, pos0 = 2, N = B * T;
    int32_t tok[10] = {1, 3, 3, 0, 5, 1, 1, 2, 3, 4}; /* repeats: they must add up */
    float *dout = fvec(N * C), *dwte = fvec(V * C), *dwpe = fvec(S * C);
    double *doutd = dvec(N * C), *wte = dvec(V * C), *wpe = dvec(S * C), *g = dvec(V * C), *gp = dvec(S * C);
    rfill(dout, doutd, N * C, -1, 1);
    float init_wte[6 * 7], init_wpe[9 * 7];
    rfill(dwte, NULL, V * C, -1, 1); /* accumulates onto what is there */
    rfill(dwpe, NULL, S * C, -1, 1);
    memcpy(init_wte, dwte, sizeof init_wte);
    memcpy(init_wpe, dwpe, sizeof init_wpe);
    CHECK(HB_OP(be, embedding_backward, .dwte = hb_t2(dwte, HB_F32, V, C, C), .dwpe = hb_t2(dwpe, HB_F32, S, C, C),
                .dout = hb_t2(dout, HB_F32, N, C, C), .tokens = tok, .B = B, .T = T, .pos0 = pos0) == HB_OK);
    emb_ctx c = {doutd, wte, wpe, tok, N, T, C, pos0};
    fd_grad(emb_loss, &c, wte, V * C, g);
    fd_grad(emb_loss, &c, wpe, S * C, gp);
    for (int64_t i = 0; i < V * C; i++) g[i] += init_wte[i];
    for (int64_t i = 0; i < S * C; i++) gp[i] += init_wpe[i];
    close_all("embedding_backward dwte", dwte, g, V * C, 1e-5);
    close_all("embedding_backward dwpe", dwpe, gp, S * C, 1e-5);
    /* a token outside the vocabulary is refused */
    tok[3] = 6;
    CHECK(HB_OP(be, embedding_backward, .dwte = hb_t2(dwte, HB_F32, V, C, C), .dout = hb_t2(dout, HB_F32, N, C, C),
                .tokens = tok, .B = B, .T = T) == HB_ERR_INPUT);
    free(dout), free(dwte), free(dwpe), free(doutd), free(wte), free(wpe), free(g), free(gp);
}

/* ---- norms ---- */
typedef struct norm_ctx {
    const double *dout;
    double *x, *w, *b;
    int64_t N, C;
    int layer;
    double eps;
} norm_ctx;
static double norm_loss(void *p) {
    const norm_ctx *c = p;
    double L = 0;
    for (int64_t r = 0; r < c->N; r++) {
        const double *x = c->x + r * c->C;
        double mu = 0, var = 0;
        if (c->layer) {
            for (int64_t k = 0; k < c->C; k++) mu += x[k];
            mu /= (double)c->C;
        }
        for (int64_t k = 0; k < c->C; k++) var += (x[k] - mu) * (x[k] - mu);
        const double rs = 1 / sqrt(var / (double)c->C + c->eps);
        for (int64_t k = 0; k < c->C; k++)
            L += c->dout[r * c->C + k] * ((x[k] - mu) * rs * c->w[k] + (c->layer ? c->b[k] : 0));
    }
    return L;
}
static void test_norm(int layer) {
    const int64_t N = 6, C = 37, ld = 40;
    const float eps = 1e-5f;
    float *x = fvec(N * ld), *dout = fvec(N * C), *w = fvec(C), *b = fvec(C), *din = fvec(N * C), *dw = fvec(C),
          *db = fvec(C);
    double *xd = dvec(N * C), *doutd = dvec(N * C), *wd = dvec(C), *bd = dvec(C), *gx = dvec(N * C), *gw = dvec(C),
           *gb = dvec(C);
    for (int64_t r = 0; r < N; r++) rfill(x + r * ld, xd + r * C, C, -2, 2.5);
    rfill(dout, doutd, N * C, -1, 1);
    rfill(w, wd, C, 0.5, 1.5);
    rfill(b, bd, C, -0.2, 0.2);
    for (int64_t i = 0; i < N * C; i++) din[i] = NAN; /* beta 0 overwrites */
    rfill(dw, NULL, C, -1, 1);
    rfill(db, NULL, C, -1, 1);
    float dw0[37], db0[37];
    memcpy(dw0, dw, sizeof dw0);
    memcpy(db0, db, sizeof db0);
    const hb_tensor xin = hb_t2(x, HB_F32, N, C, ld);
    hb_status s = layer ? HB_OP(be, layernorm_backward, .din = hb_t2(din, HB_F32, N, C, C), .dw = hb_t1(dw, HB_F32, C),
                                .db = hb_t1(db, HB_F32, C), .dout = hb_t2(dout, HB_F32, N, C, C), .in = xin,
                                .w = hb_t1(w, HB_F32, C), .eps = eps, .beta = 0)
                        : HB_OP(be, rmsnorm_backward, .din = hb_t2(din, HB_F32, N, C, C), .dw = hb_t1(dw, HB_F32, C),
                                .dout = hb_t2(dout, HB_F32, N, C, C), .in = xin, .w = hb_t1(w, HB_F32, C), .eps = eps,
                                .beta = 0);
    CHECK(s == HB_OK);
    norm_ctx c = {doutd, xd, wd, bd, N, C, layer, eps};
    fd_grad(norm_loss, &c, xd, N * C, gx);
    fd_grad(norm_loss, &c, wd, C, gw);
    for (int64_t i = 0; i < C; i++) gw[i] += dw0[i];
    close_all(layer ? "layernorm_backward din" : "rmsnorm_backward din", din, gx, N * C, 2e-5);
    close_all(layer ? "layernorm_backward dw" : "rmsnorm_backward dw", dw, gw, C, 2e-5);
    if (layer) {
        fd_grad(norm_loss, &c, bd, C, gb);
        for (int64_t i = 0; i < C; i++) gb[i] += db0[i];
        close_all("layernorm_backward db", db, gb, C, 2e-5);
    }
    /* beta 1 adds: a second call doubles din's values */
    float *din1 = fvec(N * C);
    memcpy(din1, din, (size_t)(N * C) * sizeof *din);
    s = layer ? HB_OP(be, layernorm_backward, .din = hb_t2(din, HB_F32, N, C, C), .dw = hb_t1(dw, HB_F32, C),
                      .db = hb_t1(db, HB_F32, C), .dout = hb_t2(dout, HB_F32, N, C, C), .in = xin,
                      .w = hb_t1(w, HB_F32, C), .eps = eps, .beta = 1)
              : HB_OP(be, rmsnorm_backward, .din = hb_t2(din, HB_F32, N, C, C), .dw = hb_t1(dw, HB_F32, C),
                      .dout = hb_t2(dout, HB_F32, N, C, C), .in = xin, .w = hb_t1(w, HB_F32, C), .eps = eps, .beta = 1);
    CHECK(s == HB_OK);
    for (int64_t i = 0; i < N * C; i++) gx[i] = 2.0 * din1[i];
    close_all("norm_backward beta 1", din, gx, N * C, 1e-6);
    /* a wrong shape is refused before the backend runs */
    CHECK(HB_OP(be, rmsnorm_backward, .din = hb_t2(din, HB_F32, N, C - 1, C), .dw = hb_t1(dw, HB_F32, C),
                .dout = hb_t2(dout, HB_F32, N, C, C), .in = xin, .w = hb_t1(w, HB_F32, C), .eps = eps) == HB_ERR_INPUT);
    free(x), free(dout), free(w), free(b), free(din), free(dw), free(db), free(din1);
    free(xd), free(doutd), free(wd), free(bd), free(gx), free(gw), free(gb);
}

/* rmsnorm_backward on 3-D views (N, H, D) inside padded rows (Qwen3's per-head q/k norms in
 * qkv rows) equals it on the same values packed as N H rows of D (the FD-checked case above),
 * bit for bit: same rows, same order */
static void test_norm_heads(void) {
    const int64_t N = 5, H = 3, D = 8, ldx = H * D + 7, ldd = H * D + 2, ldo = H * D + 4, R = N * H;
    float *x = fvec(N * ldx), *dout = fvec(N * ldd), *din = fvec(N * ldo), *w = fvec(D), *dw = fvec(D);
    float *xp = fvec(R * D), *dp = fvec(R * D), *dinp = fvec(R * D), *dwp = fvec(D);
    for (int64_t n = 0; n < N; n++) {
        rfill(x + n * ldx, NULL, H * D, -2, 2);
        rfill(dout + n * ldd, NULL, H * D, -1, 1);
        memcpy(xp + n * H * D, x + n * ldx, (size_t)(H * D) * sizeof *x);
        memcpy(dp + n * H * D, dout + n * ldd, (size_t)(H * D) * sizeof *x);
    }
    rfill(w, NULL, D, 0.5, 1.5);
    for (int64_t i = 0; i < N * ldo; i++) din[i] = NAN;
    hb_tensor tx = hb_t3(x, HB_F32, N, H, D), td = hb_t3(dout, HB_F32, N, H, D), to = hb_t3(din, HB_F32, N, H, D);
    tx.st[0] = ldx, td.st[0] = ldd, to.st[0] = ldo;
    CHECK(HB_OP(be, rmsnorm_backward, .din = to, .dw = hb_t1(dw, HB_F32, D), .dout = td, .in = tx,
                .w = hb_t1(w, HB_F32, D), .eps = 1e-6f) == HB_OK);
    CHECK(HB_OP(be, rmsnorm_backward, .din = hb_t2(dinp, HB_F32, R, D, D), .dw = hb_t1(dwp, HB_F32, D),
                .dout = hb_t2(dp, HB_F32, R, D, D), .in = hb_t2(xp, HB_F32, R, D, D), .w = hb_t1(w, HB_F32, D),
                .eps = 1e-6f) == HB_OK);
    int same = memcmp(dw, dwp, (size_t)D * sizeof *dw) == 0;
    for (int64_t n = 0; n < N; n++) same &= memcmp(din + n * ldo, dinp + n * H * D, (size_t)(H * D) * sizeof *din) == 0;
    CHECK_MSG(same, "rmsnorm_backward on (N, H, D) views differs from the packed rows");
    free(x), free(dout), free(din), free(w), free(dw), free(xp), free(dp), free(dinp), free(dwp);
}

/* ---- matmul ---- */
static void test_matmul(hb_dtype wdt) {
    const int64_t M = 9, K = 13, N = 11, lda = 16;
    float *a = fvec(M * lda), *wf = fvec(N * K), *dout = fvec(M * N), *da = fvec(M * K), *dw = fvec(N * K),
          *db = fvec(N);
    uint16_t *w16 = calloc((size_t)(N * K), 2);
    double *ra = dvec(M * K), *rw = dvec(N * K), *rb = dvec(N);
    for (int64_t r = 0; r < M; r++) rfill(a + r * lda, NULL, K, -1, 1);
    rfill(wf, NULL, N * K, -1, 1);
    rfill(dout, NULL, M * N, -1, 1);
    rfill(da, NULL, M * K, -1, 1);
    rfill(dw, NULL, N * K, -1, 1);
    rfill(db, NULL, N, -1, 1);
    /* the reference uses w's values in its dtype (bf16: rounded), double sums */
    for (int64_t i = 0; i < N * K; i++) {
        if (wdt == HB_BF16) {
            w16[i] = hb_f32_to_bf16(wf[i]);
            wf[i] = hb_bf16_to_f32(w16[i]);
        }
    }
    const float beta = 0.5f;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += (double)dout[m * N + n] * wf[n * K + k];
            ra[m * K + k] = beta * (double)da[m * K + k] + s;
        }
    for (int64_t n = 0; n < N; n++) {
        double sb = 0;
        for (int64_t m = 0; m < M; m++) sb += dout[m * N + n];
        rb[n] = db[n] + sb;
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t m = 0; m < M; m++) s += (double)dout[m * N + n] * a[m * lda + k];
            rw[n * K + k] = dw[n * K + k] + s;
        }
    }
    const void *w = wdt == HB_BF16 ? (const void *)w16 : (const void *)wf;
    CHECK(HB_OP(be, matmul_backward, .da = hb_t2(da, HB_F32, M, K, K), .dw = hb_t2(dw, HB_F32, N, K, K),
                .dbias = hb_t1(db, HB_F32, N), .dout = hb_t2(dout, HB_F32, M, N, N), .a = hb_t2(a, HB_F32, M, K, lda),
                .w = hb_t2(w, wdt, N, K, K), .beta = beta) == HB_OK);
    close_all(wdt == HB_BF16 ? "matmul_backward da (bf16 w)" : "matmul_backward da", da, ra, M * K, 1e-5);
    close_all("matmul_backward dw", dw, rw, N * K, 1e-5);
    close_all("matmul_backward dbias", db, rb, N, 1e-5);
    /* the shapes must agree */
    CHECK(HB_OP(be, matmul_backward, .da = hb_t2(da, HB_F32, M, K, K), .dout = hb_t2(dout, HB_F32, M, N - 1, N),
                .a = hb_t2(a, HB_F32, M, K, lda), .w = hb_t2(w, wdt, N, K, K)) == HB_ERR_INPUT);
    free(a), free(wf), free(dout), free(da), free(dw), free(db), free(w16), free(ra), free(rw), free(rb);
}

/* ---- rope ---- */
typedef struct rope_ctx {
    const double *dout;
    double *x;
    int64_t B, T, H, D, pos0;
    double theta;
} rope_ctx;
static double rope_loss(void *p) {
    const rope_ctx *c = p;
    double L = 0;
    const int64_t half = c->D / 2, W = c->H * c->D;
    for (int64_t row = 0; row < c->B * c->T; row++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t i = 0; i < half; i++) {
                const double ang = (double)(c->pos0 + row % c->T) * pow(c->theta, -2.0 * i / (double)c->D);
                const double *v = c->x + row * W + h * c->D;
                const double y0 = v[i] * cos(ang) - v[i + half] * sin(ang);
                const double y1 = v[i] * sin(ang) + v[i + half] * cos(ang);
                L += c->dout[row * W + h * c->D + i] * y0 + c->dout[row * W + h * c->D + i + half] * y1;
            }
    return L;
}
static void test_rope(void) {
    const int64_t B = 2, T = 5, H = 3, D = 6, W = H * D, ld = 23, pos0 = 4;
    float *x = fvec(B * T * ld);
    double *doutd = dvec(B * T * W), *xd = dvec(B * T * W), *g = dvec(B * T * W);
    for (int64_t r = 0; r < B * T; r++) rfill(x + r * ld, doutd + r * W, W, -1, 1);
    CHECK(HB_OP(be, rope_backward, .x = hb_t2(x, HB_F32, B * T, W, ld), .B = B, .T = T, .pos0 = pos0, .H = H,
                .theta = 10000.0f) == HB_OK);
    rope_ctx c = {doutd, xd, B, T, H, D, pos0, 10000.0};
    fd_grad(rope_loss, &c, xd, B * T * W, g);
    float *got = fvec(B * T * W);
    for (int64_t r = 0; r < B * T; r++) memcpy(got + r * W, x + r * ld, (size_t)W * sizeof *got);
    close_all("rope_backward", got, g, B * T * W, 1e-5);
    free(x), free(doutd), free(xd), free(g), free(got);
}

/* ---- attention ---- */
typedef struct att_ctx {
    const double *dout;
    double *q, *k, *v; /* (N, Hq D), (N, Hkv D) x2, contiguous */
    int64_t B, T, Hq, Hkv, D;
    double *out;       /* if not NULL: the forward's output */
} att_ctx;
static double att_loss(void *p) {
    const att_ctx *c = p;
    const int64_t WQ = c->Hq * c->D, WK = c->Hkv * c->D, grp = c->Hq / c->Hkv;
    double L = 0, s[64];
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t t = 0; t < c->T; t++)
            for (int64_t h = 0; h < c->Hq; h++) {
                const double *qv = c->q + (b * c->T + t) * WQ + h * c->D;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const double *kv = c->k + (b * c->T + j) * WK + (h / grp) * c->D;
                    s[j] = 0;
                    for (int64_t d = 0; d < c->D; d++) s[j] += qv[d] * kv[d];
                    s[j] /= sqrt((double)c->D);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int64_t j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t d = 0; d < c->D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j <= t; j++) o += s[j] / sum * c->v[(b * c->T + j) * WK + (h / grp) * c->D + d];
                    if (c->out) c->out[(b * c->T + t) * WQ + h * c->D + d] = o;
                    L += c->dout[(b * c->T + t) * WQ + h * c->D + d] * o;
                }
            }
    return L;
}
static void test_attention(void) {
    const int64_t B = 2, T = 7, Hq = 4, Hkv = 2, D = 5, WQ = Hq * D, WK = Hkv * D, N = B * T;
    const int64_t ld = WQ + 2 * WK + 3; /* q, k, v side by side in a fused row, padded */
    float *qkv = fvec(N * ld), *dqkv = fvec(N * ld), *dout = fvec(N * WQ), *out = fvec(N * WQ);
    double *q = dvec(N * WQ), *k = dvec(N * WK), *v = dvec(N * WK), *doutd = dvec(N * WQ), *g = dvec(N * WQ),
           *outd = dvec(N * WQ);
    for (int64_t r = 0; r < N; r++) {
        rfill(qkv + r * ld, q + r * WQ, WQ, -1.5, 1.5);
        rfill(qkv + r * ld + WQ, k + r * WK, WK, -1.5, 1.5);
        rfill(qkv + r * ld + WQ + WK, v + r * WK, WK, -1, 1);
    }
    rfill(dout, doutd, N * WQ, -1, 1);
    for (int64_t i = 0; i < N * ld; i++) dqkv[i] = NAN; /* overwritten */
    const hb_tensor tq = hb_t2(qkv, HB_F32, N, WQ, ld), tk = hb_t2(qkv + WQ, HB_F32, N, WK, ld),
                    tv = hb_t2(qkv + WQ + WK, HB_F32, N, WK, ld);
    CHECK(HB_OP(be, attention_train, .out = hb_t2(out, HB_F32, N, WQ, WQ), .q = tq, .k = tk, .v = tv, .B = B, .T = T,
                .Hq = Hq, .Hkv = Hkv) == HB_OK);
    att_ctx c = {doutd, q, k, v, B, T, Hq, Hkv, D, outd};
    att_loss(&c);
    close_all("attention_train out", out, outd, N * WQ, 1e-5);
    c.out = NULL;
    CHECK(HB_OP(be, attention_backward, .dq = hb_t2(dqkv, HB_F32, N, WQ, ld), .dk = hb_t2(dqkv + WQ, HB_F32, N, WK, ld),
                .dv = hb_t2(dqkv + WQ + WK, HB_F32, N, WK, ld), .dout = hb_t2(dout, HB_F32, N, WQ, WQ), .q = tq,
                .k = tk, .v = tv, .B = B, .T = T, .Hq = Hq, .Hkv = Hkv) == HB_OK);
    float *got = fvec(N * WQ);
    const struct { const char *what; double *x; int64_t off, w; } parts[] = {
        {"attention_backward dq", q, 0, WQ}, {"attention_backward dk", k, WQ, WK}, {"attention_backward dv", v, WQ + WK, WK}};
    for (int i = 0; i < 3; i++) {
        fd_grad(att_loss, &c, parts[i].x, N * parts[i].w, g);
        for (int64_t r = 0; r < N; r++)
            memcpy(got + r * parts[i].w, dqkv + r * ld + parts[i].off, (size_t)parts[i].w * sizeof *got);
        close_all(parts[i].what, got, g, N * parts[i].w, 2e-5);
    }
    /* heads that do not group are refused */
    CHECK(HB_OP(be, attention_train, .out = hb_t2(out, HB_F32, N, WQ, WQ), .q = tq, .k = tk, .v = tv, .B = B, .T = T,
                .Hq = Hq, .Hkv = 3) == HB_ERR_INPUT);
    free(qkv), free(dqkv), free(dout), free(out), free(q), free(k), free(v), free(doutd), free(g), free(outd), free(got);
}

/* ---- activations ---- */
typedef struct act_ctx {
    const double *dout;
    double *x;
    int64_t N, F;
    int swiglu;
} act_ctx;
static double act_loss(void *p) {
    const act_ctx *c = p;
    double L = 0;
    for (int64_t r = 0; r < c->N; r++)
        for (int64_t f = 0; f < c->F; f++) {
            double y;
            if (c->swiglu) {
                const double a = c->x[r * 2 * c->F + f], g = c->x[r * 2 * c->F + c->F + f];
                y = a / (1 + exp(-a)) * g;
            } else {
                const double x = c->x[r * c->F + f];
                y = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
            }
            L += c->dout[r * c->F + f] * y;
        }
    return L;
}
static void test_act(int swiglu) {
    const int64_t N = 5, F = 19, W = swiglu ? 2 * F : F;
    float *x = fvec(N * W), *dout = fvec(N * F), *din = fvec(N * W);
    double *xd = dvec(N * W), *doutd = dvec(N * F), *g = dvec(N * W);
    rfill(x, xd, N * W, -4, 4);
    rfill(dout, doutd, N * F, -1, 1);
    for (int64_t i = 0; i < N * W; i++) din[i] = NAN;
    hb_status s = swiglu ? HB_OP(be, swiglu_backward, .din = hb_t2(din, HB_F32, N, W, W),
                                 .dout = hb_t2(dout, HB_F32, N, F, F), .in = hb_t2(x, HB_F32, N, W, W))
                         : HB_OP(be, gelu_backward, .din = hb_t2(din, HB_F32, N, W, W),
                                 .dout = hb_t2(dout, HB_F32, N, F, F), .in = hb_t2(x, HB_F32, N, W, W));
    CHECK(s == HB_OK);
    act_ctx c = {doutd, xd, N, F, swiglu};
    fd_grad(act_loss, &c, xd, N * W, g);
    close_all(swiglu ? "swiglu_backward" : "gelu_backward", din, g, N * W, 1e-5);
    free(x), free(dout), free(din), free(xd), free(doutd), free(g);
}

/* ---- cross-entropy ---- */
typedef struct ce_ctx {
    double *l;
    const int32_t *tg;
    int64_t N, V;
    double scale;
} ce_ctx;
static double ce_loss(void *p) {
    const ce_ctx *c = p;
    double L = 0;
    for (int64_t r = 0; r < c->N; r++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < c->V; j++) mx = fmax(mx, c->l[r * c->V + j]);
        for (int64_t j = 0; j < c->V; j++) s += exp(c->l[r * c->V + j] - mx);
        L += c->scale * (log(s) + mx - c->l[r * c->V + c->tg[r]]);
    }
    return L;
}
static void test_cross_entropy(void) {
    const int64_t N = 6, V = 301, ld = 305;
    int32_t tg[6] = {0, 300, 17, 17, 150, 299};
    float *l = fvec(N * ld), *losses = fvec(N), *dl = fvec(N * V);
    double *ld_ = dvec(N * V), *g = dvec(N * V), *rl = dvec(N);
    for (int64_t r = 0; r < N; r++) rfill(l + r * ld, ld_ + r * V, V, -5, 5);
    const float dscale = 1.0f / 6;
    CHECK(HB_OP(be, cross_entropy, .losses = hb_t1(losses, HB_F32, N), .dlogits = hb_t2(dl, HB_F32, N, V, V),
                .logits = hb_t2(l, HB_F32, N, V, ld), .targets = tg, .dscale = dscale) == HB_OK);
    for (int64_t r = 0; r < N; r++) {
        ce_ctx one = {ld_ + r * V, tg + r, 1, V, 1.0};
        rl[r] = ce_loss(&one);
    }
    close_all("cross_entropy losses", losses, rl, N, 1e-6);
    ce_ctx c = {ld_, tg, N, V, dscale};
    fd_grad(ce_loss, &c, ld_, N * V, g);
    close_all("cross_entropy dlogits", dl, g, N * V, 1e-5);
    /* in place: the gradient overwrites the logits */
    CHECK(HB_OP(be, cross_entropy, .losses = hb_t1(losses, HB_F32, N), .dlogits = hb_t2(l, HB_F32, N, V, ld),
                .logits = hb_t2(l, HB_F32, N, V, ld), .targets = tg, .dscale = dscale) == HB_OK);
    float *got = fvec(N * V);
    for (int64_t r = 0; r < N; r++) memcpy(got + r * V, l + r * ld, (size_t)V * sizeof *got);
    close_all("cross_entropy in place", got, g, N * V, 1e-5);
    tg[2] = 301;
    CHECK(HB_OP(be, cross_entropy, .losses = hb_t1(losses, HB_F32, N), .logits = hb_t2(dl, HB_F32, N, V, V),
                .targets = tg, .dscale = dscale) == HB_ERR_INPUT);
    free(l), free(losses), free(dl), free(ld_), free(g), free(rl), free(got);
}

/* ---- AdamW ---- */
static void test_adamw(void) {
    const int64_t n = 1000;
    float *p = fvec(n), *gr = fvec(n), *m = fvec(n), *v = fvec(n);
    uint16_t *lp = calloc((size_t)n, 2);
    double *rp = dvec(n), *rm = dvec(n), *rv = dvec(n);
    rfill(p, rp, n, -1, 1);
    const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, gs = 0.5;
    for (int64_t t = 1; t <= 4; t++) {
        float g0[1000];
        rfill(gr, NULL, n, -2, 2);
        memcpy(g0, gr, sizeof g0);
        CHECK(HB_OP(be, adamw, .param = hb_t1(p, HB_F32, n), .grad = hb_t1(gr, HB_F32, n), .m = hb_t1(m, HB_F32, n),
                    .v = hb_t1(v, HB_F32, n), .param_lp = hb_t1(lp, HB_BF16, n), .lr = (float)lr, .beta1 = (float)b1,
                    .beta2 = (float)b2, .eps = (float)eps, .weight_decay = (float)wd, .grad_scale = (float)gs, .t = t,
                    .zero_grad = 1) == HB_OK);
        int zero = 1, lp_ok = 1;
        for (int64_t i = 0; i < n; i++) {
            const double g = gs * g0[i];
            rm[i] = b1 * rm[i] + (1 - b1) * g;
            rv[i] = b2 * rv[i] + (1 - b2) * g * g;
            const double mh = rm[i] / (1 - pow(b1, (double)t)), vh = rv[i] / (1 - pow(b2, (double)t));
            rp[i] -= lr * (mh / (sqrt(vh) + eps) + wd * rp[i]);
            zero &= gr[i] == 0.0f;
            lp_ok &= lp[i] == hb_f32_to_bf16(p[i]);
        }
        CHECK(zero);
        CHECK(lp_ok);
    }
    close_all("adamw param (4 steps)", p, rp, n, 1e-5);
    close_all("adamw m", m, rm, n, 1e-5);
    close_all("adamw v", v, rv, n, 1e-5);
    /* lr <= 0 and beta outside [0, 1) are refused */
    CHECK(HB_OP(be, adamw, .param = hb_t1(p, HB_F32, n), .grad = hb_t1(gr, HB_F32, n), .m = hb_t1(m, HB_F32, n),
                .v = hb_t1(v, HB_F32, n), .lr = 0, .beta1 = 0.9f, .beta2 = 0.9f, .t = 1) == HB_ERR_INPUT);
    CHECK(HB_OP(be, adamw, .param = hb_t1(p, HB_F32, n), .grad = hb_t1(gr, HB_F32, n), .m = hb_t1(m, HB_F32, n),
                .v = hb_t1(v, HB_F32, n), .lr = 1e-3f, .beta1 = 1.0f, .beta2 = 0.9f, .t = 1) == HB_ERR_INPUT);
    free(p), free(gr), free(m), free(v), free(lp), free(rp), free(rm), free(rv);
}

/* ---- Mixture-of-Experts ---- */

/* Top-k ids of N rows of E experts, k distinct per row (the test's own draw), for the
 * permute/combine tests: moe_permute then gives the rows. */
static void draw_ids(int32_t *ids, int64_t N, int64_t E, int64_t k) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < k; j++) {
            int32_t e;
            int dup;
            do {
                e = (int32_t)urand(0, (double)E);
                dup = 0;
                for (int64_t i = 0; i < j; i++) dup |= ids[n * k + i] == e;
            } while (dup);
            ids[n * k + j] = e;
        }
}

/* the router's weights of fixed ids as ops.h defines them, in double */
typedef struct route_ctx {
    double *logits;
    const double *dw;
    const int32_t *ids;
    int64_t N, E, k;
    int sigmoid, norm;
    double scale;
    double *w; /* if not NULL: the weights */
} route_ctx;
static double route_loss(void *p) {
    const route_ctx *c = p;
    double L = 0, s[16];
    for (int64_t n = 0; n < c->N; n++) {
        const double *l = c->logits + n * c->E;
        double mx = -INFINITY, sum = 0, Z = 0;
        for (int64_t e = 0; e < c->E; e++) mx = fmax(mx, l[e]);
        for (int64_t e = 0; e < c->E; e++) sum += exp(l[e] - mx);
        for (int64_t e = 0; e < c->E; e++) s[e] = c->sigmoid ? 1 / (1 + exp(-l[e])) : exp(l[e] - mx) / sum;
        for (int64_t j = 0; j < c->k; j++) Z += s[c->ids[n * c->k + j]];
        for (int64_t j = 0; j < c->k; j++) {
            const double w = c->scale * s[c->ids[n * c->k + j]] / (c->norm ? Z + 1e-20 : 1);
            if (c->w) c->w[n * c->k + j] = w;
            L += c->dw[n * c->k + j] * w;
        }
    }
    return L;
}
static void test_moe_route_backward(hb_router_kind kind, int norm, float scale) {
    const int64_t N = 7, E = 6, k = 3, ld = 9;
    float *logits = fvec(N * ld), *dlog = fvec(N * ld), *w = fvec(N * k), *dw = fvec(N * k), *bias = fvec(E);
    int32_t ids[7 * 3];
    double *ld_ = dvec(N * E), *dwd = dvec(N * k), *g = dvec(N * E), *wref = dvec(N * k);
    for (int64_t n = 0; n < N; n++) rfill(logits + n * ld, ld_ + n * E, E, -2, 2);
    rfill(dw, dwd, N * k, -1, 1);
    rfill(bias, NULL, E, -0.3, 0.3);
    for (int64_t i = 0; i < N * ld; i++) dlog[i] = NAN; /* overwritten (its padding is not touched) */
    /* the forward's choice and weights (with DeepSeek's bias for the sigmoid router: it only chooses) */
    CHECK(HB_OP(be, moe_route, .ids = ids, .weights = w, .logits = hb_t2(logits, HB_F32, N, E, ld),
                .bias = kind == HB_ROUTER_SIGMOID ? hb_t1(bias, HB_F32, E) : (hb_tensor){0}, .kind = kind,
                .top_k = k, .norm = norm, .scale = scale) == HB_OK);
    route_ctx c = {ld_, dwd, ids, N, E, k, kind == HB_ROUTER_SIGMOID, norm, scale, wref};
    route_loss(&c);
    close_all("moe_route weights (the forward, for the reference's formula)", w, wref, N * k, 1e-6);
    c.w = NULL;
    CHECK(HB_OP(be, moe_route_backward, .dlogits = hb_t2(dlog, HB_F32, N, E, ld), .logits = hb_t2(logits, HB_F32, N, E, ld),
                .ids = ids, .dweights = dw, .kind = kind, .top_k = k, .norm = norm, .scale = scale) == HB_OK);
    fd_grad(route_loss, &c, ld_, N * E, g);
    float *got = fvec(N * E);
    for (int64_t n = 0; n < N; n++) memcpy(got + n * E, dlog + n * ld, (size_t)E * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "moe_route_backward %s norm %d scale %g", kind == HB_ROUTER_SIGMOID ? "sigmoid" : "softmax",
             norm, (double)scale);
    close_all(what, got, g, N * E, 1e-5);
    if (kind == HB_ROUTER_SOFTMAX) /* softmax is shift invariant: a row's gradients sum to 0 */
        for (int64_t n = 0; n < N; n++) {
            double sum = 0, amax = 0;
            for (int64_t e = 0; e < E; e++) sum += got[n * E + e], amax = fmax(amax, fabs(got[n * E + e]));
            CHECK_MSG(fabs(sum) <= 1e-6 * amax + 1e-9, "%s: row %lld sums to %g", what, (long long)n, sum);
        }
    ids[4] = (int32_t)E; /* an id outside the experts is refused */
    CHECK(HB_OP(be, moe_route_backward, .dlogits = hb_t2(dlog, HB_F32, N, E, ld), .logits = hb_t2(logits, HB_F32, N, E, ld),
                .ids = ids, .dweights = dw, .kind = kind, .top_k = k, .norm = norm, .scale = scale) == HB_ERR_INPUT);
    CHECK(HB_OP(be, moe_route_backward, .dlogits = hb_t2(dlog, HB_F32, N, E - 1, ld), .logits = hb_t2(logits, HB_F32, N, E, ld),
                .ids = ids, .dweights = dw, .kind = kind, .top_k = k, .norm = norm, .scale = scale) == HB_ERR_INPUT);
    free(logits), free(dlog), free(w), free(dw), free(bias), free(ld_), free(dwd), free(g), free(wref), free(got);
}

/* xp[rows[s]] = x[s / k]: L = sum dxp . xp */
typedef struct perm_ctx {
    const double *dxp;
    double *x;
    const int32_t *rows;
    int64_t N, C, k;
} perm_ctx;
static double perm_loss(void *p) {
    const perm_ctx *c = p;
    double L = 0;
    for (int64_t s = 0; s < c->N * c->k; s++)
        for (int64_t q = 0; q < c->C; q++) L += c->dxp[(int64_t)c->rows[s] * c->C + q] * c->x[(s / c->k) * c->C + q];
    return L;
}
static void test_moe_permute_backward(void) {
    const int64_t N = 9, C = 5, E = 4, k = 2, ld = 8, S = N * k;
    int32_t ids[18], rows[18], offs[5];
    float *x = fvec(N * ld), *xp = fvec(S * C), *dxp = fvec(S * C), *dx = fvec(N * ld);
    double *xd = dvec(N * C), *dxpd = dvec(S * C), *g = dvec(N * C);
    draw_ids(ids, N, E, k);
    for (int64_t n = 0; n < N; n++) rfill(x + n * ld, xd + n * C, C, -1, 1);
    rfill(dxp, dxpd, S * C, -1, 1);
    CHECK(HB_OP(be, moe_permute, .xp = hb_t2(xp, HB_F32, S, C, C), .x = hb_t2(x, HB_F32, N, C, ld), .ids = ids, .top_k = k,
                .n_experts = E, .rows = rows, .offsets = offs) == HB_OK);
    for (int64_t i = 0; i < N * ld; i++) dx[i] = NAN; /* beta 0 overwrites */
    CHECK(HB_OP(be, moe_permute_backward, .dx = hb_t2(dx, HB_F32, N, C, ld), .dxp = hb_t2(dxp, HB_F32, S, C, C),
                .rows = rows, .top_k = k, .beta = 0) == HB_OK);
    perm_ctx c = {dxpd, xd, rows, N, C, k};
    fd_grad(perm_loss, &c, xd, N * C, g);
    float *got = fvec(N * C);
    for (int64_t n = 0; n < N; n++) memcpy(got + n * C, dx + n * ld, (size_t)C * sizeof *got);
    close_all("moe_permute_backward dx", got, g, N * C, 1e-6);
    /* beta 1 adds */
    CHECK(HB_OP(be, moe_permute_backward, .dx = hb_t2(dx, HB_F32, N, C, ld), .dxp = hb_t2(dxp, HB_F32, S, C, C),
                .rows = rows, .top_k = k, .beta = 1) == HB_OK);
    for (int64_t n = 0; n < N; n++) memcpy(got + n * C, dx + n * ld, (size_t)C * sizeof *got);
    for (int64_t i = 0; i < N * C; i++) g[i] *= 2;
    close_all("moe_permute_backward beta 1", got, g, N * C, 1e-6);
    CHECK(HB_OP(be, moe_permute_backward, .dx = hb_t2(dx, HB_F32, N, C, ld), .dxp = hb_t2(dxp, HB_F32, S - 1, C, C),
                .rows = rows, .top_k = k) == HB_ERR_INPUT);
    free(x), free(xp), free(dxp), free(dx), free(xd), free(dxpd), free(g), free(got);
}

/* out rows of expert e = a rows @ w[e]^T: L = sum dout . out */
typedef struct grp_ctx {
    const double *dout;
    double *a, *w;
    const int32_t *offs;
    int64_t E, N, K;
} grp_ctx;
static double grp_loss(void *p) {
    const grp_ctx *c = p;
    double L = 0;
    for (int64_t e = 0; e < c->E; e++)
        for (int64_t r = c->offs[e]; r < c->offs[e + 1]; r++)
            for (int64_t n = 0; n < c->N; n++) {
                double s = 0;
                for (int64_t q = 0; q < c->K; q++) s += c->a[r * c->K + q] * c->w[(e * c->N + n) * c->K + q];
                L += c->dout[r * c->N + n] * s;
            }
    return L;
}
static void test_matmul_grouped_backward(hb_dtype wdt) {
    const int64_t E = 4, N = 6, K = 5, R = 11;
    const int32_t offs[5] = {0, 4, 4, 9, 11}; /* expert 1 receives no rows */
    float *a = fvec(R * K), *wf = fvec(E * N * K), *dout = fvec(R * N), *da = fvec(R * K), *dw = fvec(E * N * K);
    uint16_t *w16 = calloc((size_t)(E * N * K), 2);
    double *ad = dvec(R * K), *wd = dvec(E * N * K), *doutd = dvec(R * N), *ga = dvec(R * K), *gw = dvec(E * N * K);
    rfill(a, ad, R * K, -1, 1);
    rfill(wf, NULL, E * N * K, -1, 1);
    rfill(dout, doutd, R * N, -1, 1);
    rfill(da, NULL, R * K, -1, 1);
    rfill(dw, NULL, E * N * K, -1, 1); /* accumulates */
    for (int64_t i = 0; i < E * N * K; i++) { /* the reference uses w's values in its dtype */
        if (wdt == HB_BF16) w16[i] = hb_f32_to_bf16(wf[i]), wf[i] = hb_bf16_to_f32(w16[i]);
        wd[i] = wf[i];
    }
    float *da0 = fvec(R * K), *dw0 = fvec(E * N * K);
    memcpy(da0, da, (size_t)(R * K) * sizeof *da);
    memcpy(dw0, dw, (size_t)(E * N * K) * sizeof *dw);
    const float beta = 0.5f;
    const void *w = wdt == HB_BF16 ? (const void *)w16 : (const void *)wf;
    CHECK(HB_OP(be, matmul_grouped_backward, .da = hb_t2(da, HB_F32, R, K, K), .dw = hb_t3(dw, HB_F32, E, N, K),
                .dout = hb_t2(dout, HB_F32, R, N, N), .a = hb_t2(a, HB_F32, R, K, K), .w = hb_t3(w, wdt, E, N, K),
                .offsets = offs, .beta = beta) == HB_OK);
    grp_ctx c = {doutd, ad, wd, offs, E, N, K};
    fd_grad(grp_loss, &c, ad, R * K, ga);
    fd_grad(grp_loss, &c, wd, E * N * K, gw);
    for (int64_t i = 0; i < R * K; i++) ga[i] += beta * (double)da0[i];
    for (int64_t i = 0; i < E * N * K; i++) gw[i] += dw0[i];
    close_all(wdt == HB_BF16 ? "matmul_grouped_backward da (bf16 w)" : "matmul_grouped_backward da", da, ga, R * K, 1e-5);
    close_all("matmul_grouped_backward dw", dw, gw, E * N * K, 1e-5);
    /* the empty expert's gradient is what it was */
    CHECK(memcmp(dw + N * K, dw0 + N * K, (size_t)(N * K) * sizeof *dw) == 0);
    /* shapes: dw must be w's */
    CHECK(HB_OP(be, matmul_grouped_backward, .dw = hb_t3(dw, HB_F32, E, N, K - 1), .dout = hb_t2(dout, HB_F32, R, N, N),
                .a = hb_t2(a, HB_F32, R, K, K), .w = hb_t3(w, wdt, E, N, K), .offsets = offs) == HB_ERR_INPUT);
    free(a), free(wf), free(dout), free(da), free(dw), free(w16), free(ad), free(wd), free(doutd), free(ga), free(gw);
    free(da0), free(dw0);
}

/* out[n] = sum_j weights[n k + j] y[rows[n k + j]]: L = sum dout . out */
typedef struct comb_ctx {
    const double *dout;
    double *y, *w;
    const int32_t *rows;
    int64_t N, C, k;
} comb_ctx;
static double comb_loss(void *p) {
    const comb_ctx *c = p;
    double L = 0;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t j = 0; j < c->k; j++)
            for (int64_t q = 0; q < c->C; q++)
                L += c->dout[n * c->C + q] * c->w[n * c->k + j] * c->y[(int64_t)c->rows[n * c->k + j] * c->C + q];
    return L;
}
static void test_moe_combine_backward(void) {
    const int64_t N = 8, C = 6, E = 5, k = 3, ld = 7, S = N * k;
    int32_t ids[24], rows[24], offs[6];
    float *x = fvec(N * C), *xp = fvec(S * C), *y = fvec(S * C), *dy = fvec(S * C), *w = fvec(S), *dw = fvec(S),
          *dout = fvec(N * ld);
    double *yd = dvec(S * C), *wd = dvec(S), *doutd = dvec(N * C), *gy = dvec(S * C), *gw = dvec(S);
    draw_ids(ids, N, E, k);
    CHECK(HB_OP(be, moe_permute, .xp = hb_t2(xp, HB_F32, S, C, C), .x = hb_t2(x, HB_F32, N, C, C), .ids = ids, .top_k = k,
                .n_experts = E, .rows = rows, .offsets = offs) == HB_OK);
    rfill(y, yd, S * C, -1, 1);
    rfill(w, wd, S, 0, 1);
    for (int64_t n = 0; n < N; n++) rfill(dout + n * ld, doutd + n * C, C, -1, 1);
    for (int64_t i = 0; i < S * C; i++) dy[i] = NAN;
    for (int64_t i = 0; i < S; i++) dw[i] = NAN;
    CHECK(HB_OP(be, moe_combine_backward, .dy = hb_t2(dy, HB_F32, S, C, C), .dout = hb_t2(dout, HB_F32, N, C, ld),
                .y = hb_t2(y, HB_F32, S, C, C), .dweights = dw, .rows = rows, .weights = w, .top_k = k) == HB_OK);
    comb_ctx c = {doutd, yd, wd, rows, N, C, k};
    fd_grad(comb_loss, &c, yd, S * C, gy);
    fd_grad(comb_loss, &c, wd, S, gw);
    close_all("moe_combine_backward dy", dy, gy, S * C, 1e-6);
    close_all("moe_combine_backward dweights", dw, gw, S, 1e-6);
    CHECK(HB_OP(be, moe_combine_backward, .dy = hb_t2(dy, HB_F32, S - 1, C, C), .dout = hb_t2(dout, HB_F32, N, C, ld),
                .y = hb_t2(y, HB_F32, S, C, C), .dweights = dw, .rows = rows, .weights = w, .top_k = k) == HB_ERR_INPUT);
    free(x), free(xp), free(y), free(dy), free(w), free(dw), free(dout), free(yd), free(wd), free(doutd), free(gy), free(gw);
}

int main(void) {
    hb_err err = {0};
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", err.msg);
        return 1;
    }
    test_embedding();
    test_norm(0);
    test_norm(1);
    test_norm_heads();
    test_matmul(HB_F32);
    test_matmul(HB_BF16);
    test_rope();
    test_attention();
    test_act(0);
    test_act(1);
    test_cross_entropy();
    test_adamw();
    test_moe_route_backward(HB_ROUTER_SOFTMAX, 1, 1.0f); /* Mixtral, Qwen3-MoE */
    test_moe_route_backward(HB_ROUTER_SOFTMAX, 0, 1.0f); /* DeepSeek-V2 */
    test_moe_route_backward(HB_ROUTER_SIGMOID, 1, 2.5f); /* DeepSeek-V3 */
    test_moe_route_backward(HB_ROUTER_SIGMOID, 0, 1.0f);
    test_moe_permute_backward();
    test_matmul_grouped_backward(HB_F32);
    test_matmul_grouped_backward(HB_BF16);
    test_moe_combine_backward();
    hb_backend_close(be);
    HB_TEST_END();
}
