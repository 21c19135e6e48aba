/* test_moe.c - the MoE ops of the CPU backend (backends/ops.h) against references written
 * here from the spec:
 *  - moe_route: softmax top-k with renormalisation, ties to the lowest expert index; sigmoid
 *    scores with the score-correction bias and group-limited selection (DeepSeek-V3), the
 *    weights unbiased, times routed_scaling_factor; balanced and zipf assignments;
 *  - moe_permute: a stable grouping by expert (rows, offsets, the copied rows);
 *  - matmul_grouped: each expert's rows equal one matmul with that expert's matrix (f32, bf16,
 *    fp8 with a tensor scale and with blocks) and a double-precision product;
 *  - a whole MoE layer (route, permute, two grouped GEMMs with SwiGLU, combine) against a
 *    double-precision layer;
 *  - mla_attention: absorbed and materialised paths against each other and a double MLA. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "hbtest.h"

static hb_backend *be;

/* ---- reference router (sorts, not the backend's selection loop) ---- */
typedef struct key { double v; int i; } key;
static int key_cmp(const void *a, const void *b) {
    const key *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}
static void ref_route(const hb_moe_route_args *a, const float *lg, int E, int *ids, double *w) {
    double s[256], mx = -INFINITY, sum = 0;
    for (int e = 0; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
    for (int e = 0; e < E; e++) {
        s[e] = a->kind == HB_ROUTER_SOFTMAX ? exp(lg[e] - mx) : 1 / (1 + exp(-(double)lg[e]));
        sum += s[e];
    }
    if (a->kind == HB_ROUTER_SOFTMAX)
        for (int e = 0; e < E; e++) s[e] /= sum;
    const float *bias = a->bias.data;
    int G = a->n_group > 1 ? (int)a->n_group : 1, per = E / G, n = 0;
    key g[256], k[256];
    for (int gi = 0; gi < G; gi++) {
        for (int i = 0; i < per; i++) k[i] = (key){s[gi * per + i] + (bias ? bias[gi * per + i] : 0), i};
        qsort(k, (size_t)per, sizeof *k, key_cmp);
        g[gi] = (key){per > 1 ? k[0].v + k[1].v : k[0].v, gi};
    }
    qsort(g, (size_t)G, sizeof *g, key_cmp);
    for (int e = 0; e < E; e++) {
        int kept = G == 1;
        for (int j = 0; j < (G > 1 ? a->topk_group : 0); j++) kept |= g[j].i == e / per;
        if (kept) k[n++] = (key){s[e] + (bias ? bias[e] : 0), e};
    }
    qsort(k, (size_t)n, sizeof *k, key_cmp);
    double ws = 0;
    for (int j = 0; j < a->top_k; j++) ws += (w[j] = s[ids[j] = k[j].i]);
    for (int j = 0; j < a->top_k; j++) w[j] = (a->norm ? w[j] / (ws + 1e-20) : w[j]) * a->scale;
}

static void route(hb_moe_route_args a, float *logits, int N, int E, int32_t *ids, float *w) {
    a.logits = hb_t2(logits, HB_F32, N, E, E);
    a.ids = ids, a.weights = w;
    CHECK_MSG(hb_op_moe_route(be, &a) == HB_OK, "%s", be->err);
}

static void check_route_vs_ref(hb_moe_route_args a, int N, int E, const char *what) {
    float *lg = malloc((size_t)N * E * sizeof *lg), *w = malloc((size_t)N * a.top_k * sizeof *w);
    int32_t *ids = malloc((size_t)N * a.top_k * sizeof *ids);
    for (int i = 0; i < N * E; i++) lg[i] = 2.0f * hb_rng_pm1(77, (uint64_t)i);
    route(a, lg, N, E, ids, w);
    int bad_ids = 0;
    double werr = 0;
    for (int n = 0; n < N; n++) {
        int rid[256];
        double rw[256];
        ref_route(&a, lg + n * E, E, rid, rw);
        for (int j = 0; j < a.top_k; j++) {
            bad_ids += ids[n * a.top_k + j] != rid[j];
            werr = fmax(werr, fabs(w[n * a.top_k + j] - rw[j]));
        }
    }
    CHECK_MSG(bad_ids == 0 && werr < 1e-6 * a.scale, "%s: %d ids differ, weight error %.3g", what, bad_ids, werr);
    free(lg), free(w), free(ids);
}

static void test_route(void) {
    /* ties: equal logits pick the lowest indices, in order; the weights renormalise to 1 */
    float lg[2 * 6] = {1, 1, 1, 1, 1, 1, /* row 1: experts 4 and 1 tie at the top, 3 and 5 next */
                       0, 3, 0, 2, 3, 2};
    int32_t ids[4];
    float w[4];
    const hb_moe_route_args soft = {.kind = HB_ROUTER_SOFTMAX, .top_k = 2, .norm = 1, .scale = 1};
    route(soft, lg, 2, 6, ids, w);
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 1 && ids[3] == 4);
    CHECK_NEAR(w[0], 0.5, 1e-7);
    CHECK_NEAR(w[2] + w[3], 1.0, 1e-6);
    hb_moe_route_args three = soft;
    three.top_k = 3;
    int32_t id3[6];
    float w3[6];
    route(three, lg, 2, 6, id3, w3);
    CHECK(id3[3] == 1 && id3[4] == 4 && id3[5] == 3); /* 3 before 5 at 2.0 */
    /* unnormalised softmax weights are the probabilities themselves */
    hb_moe_route_args raw = soft;
    raw.norm = 0, raw.scale = 2;
    route(raw, lg, 2, 6, ids, w);
    CHECK_NEAR(w[0], 2.0 / 6, 1e-6);

    /* group-limited (DeepSeek-V3): 8 experts in 4 groups of 2, 2 groups kept. Choice values
     * = sigmoid + bias; group scores (sum of both) decide, then top-2 within kept groups. The
     * best single expert (7) sits in a weak group and is not chosen. */
    float g[8] = {1.0f, 1.0f, /* group 0: 2 x s(1) */ 0.5f, 0.5f, /* group 1 */ 0.9f, 0.9f, /* 2 */ -3.0f, 4.0f /* 3 */};
    hb_moe_route_args ds = {.kind = HB_ROUTER_SIGMOID, .top_k = 2, .n_group = 4, .topk_group = 2, .norm = 1, .scale = 2.5f};
    route(ds, g, 1, 8, ids, w);
    /* group sums: g0 1.462, g1 1.245, g2 1.422, g3 1.029 -> groups 0 and 2; experts 0, 1 (tie) */
    CHECK_MSG(ids[0] == 0 && ids[1] == 1, "ids %d %d", ids[0], ids[1]);
    CHECK_NEAR(w[0] + w[1], 2.5, 1e-6);
    /* a bias moves the choice (not the weights): +0.5 on expert 5 */
    float bias[8] = {0, 0, 0, 0, 0, 0.5f, 0, 0};
    ds.bias = hb_t1(bias, HB_F32, 8);
    ds.norm = 0;
    route(ds, g, 1, 8, ids, w);
    CHECK_MSG(ids[0] == 5 && ids[1] == 0, "ids %d %d", ids[0], ids[1]);
    CHECK_NEAR(w[0], 2.5 / (1 + exp(-0.9)), 1e-6); /* unbiased score x scale */

    /* random logits against the reference: softmax (Mixtral, Qwen), sigmoid with bias and
     * groups (DeepSeek-V3 shape: 64 experts, 8 groups, 4 kept, top 8) */
    check_route_vs_ref((hb_moe_route_args){.kind = HB_ROUTER_SOFTMAX, .top_k = 8, .norm = 1, .scale = 1}, 200, 128,
                       "softmax top-8 of 128");
    float b64[64];
    for (int e = 0; e < 64; e++) b64[e] = 0.1f * hb_rng_pm1(5, (uint64_t)e);
    check_route_vs_ref((hb_moe_route_args){.kind = HB_ROUTER_SIGMOID, .bias = hb_t1(b64, HB_F32, 64), .top_k = 8,
                                           .n_group = 8, .topk_group = 4, .norm = 1, .scale = 2.5f},
                       300, 64, "sigmoid grouped top-8 of 64");

    /* balanced: every expert the same number of tokens; zipf: distinct, skewed to expert 0 */
    enum { N = 64, E = 16, K = 4 };
    static float L[N * E];
    int32_t bi[N * K];
    float bw[N * K];
    hb_moe_route_args bal = soft;
    bal.top_k = K, bal.mode = HB_ROUTING_BALANCED;
    route(bal, L, N, E, bi, bw);
    int cnt[E] = {0};
    for (int i = 0; i < N * K; i++) cnt[bi[i]]++;
    for (int e = 0; e < E; e++) CHECK(cnt[e] == N * K / E);
    hb_moe_route_args zf = bal;
    zf.mode = HB_ROUTING_ZIPF, zf.zipf_s = 1.2f, zf.seed = 9;
    memset(cnt, 0, sizeof cnt);
    int distinct = 1;
    route(zf, L, N, E, bi, bw);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < K; j++) {
            cnt[bi[n * K + j]]++;
            for (int i = 0; i < j; i++) distinct &= bi[n * K + i] != bi[n * K + j];
        }
    CHECK(distinct && cnt[0] > cnt[E - 1] && cnt[0] > N / 2);
    CHECK_NEAR(bw[0] + bw[1] + bw[2] + bw[3], 1.0, 1e-6);
    /* the same seed and rows: the same draw (backends agree on hb_rng) */
    int32_t bi2[N * K];
    route(zf, L, N, E, bi2, bw);
    CHECK(!memcmp(bi, bi2, sizeof bi));
    /* bad arguments are the caller's error */
    hb_moe_route_args bad = soft;
    bad.top_k = 7;
    bad.logits = hb_t2(lg, HB_F32, 1, 6, 6), bad.ids = ids, bad.weights = w;
    CHECK(hb_op_moe_route(be, &bad) == HB_ERR_INPUT);
    bad.top_k = 2, bad.n_group = 4;
    CHECK(hb_op_moe_route(be, &bad) == HB_ERR_INPUT); /* 4 does not divide 6 */
}

/* ---- permute, grouped GEMM, combine ---- */

static void test_permute(void) {
    enum { N = 5, K = 2, E = 4, C = 3 };
    const int32_t ids[N * K] = {2, 0, 0, 2, 3, 2, 0, 1, 2, 3};
    float x[N * C], xp[N * K * C];
    for (int i = 0; i < N * C; i++) x[i] = (float)i;
    int32_t rows[N * K], off[E + 1];
    CHECK(HB_OP(be, moe_permute, .xp = hb_t2(xp, HB_F32, N * K, C, C), .x = hb_t2(x, HB_F32, N, C, C), .ids = ids,
                .top_k = K, .n_experts = E, .rows = rows, .offsets = off) == HB_OK);
    /* expert 0: slots 1, 2, 6; expert 1: 7; expert 2: 0, 3, 5, 8; expert 3: 4, 9 */
    const int32_t want_off[E + 1] = {0, 3, 4, 8, 10};
    const int32_t want_rows[N * K] = {4, 0, 1, 5, 8, 6, 2, 3, 7, 9};
    CHECK(!memcmp(off, want_off, sizeof off) && !memcmp(rows, want_rows, sizeof rows));
    for (int s = 0; s < N * K; s++) CHECK(xp[rows[s] * C + 1] == x[(s / K) * C + 1]);
    /* combine: out = 1 * out + sum_j w y[rows] */
    float y[N * K * C], wt[N * K], out[N * C];
    for (int i = 0; i < N * K * C; i++) y[i] = 0.5f * (float)i;
    for (int i = 0; i < N * K; i++) wt[i] = 0.25f * (float)(i + 1);
    for (int i = 0; i < N * C; i++) out[i] = 1.0f;
    CHECK(HB_OP(be, moe_combine, .out = hb_t2(out, HB_F32, N, C, C), .y = hb_t2(y, HB_F32, N * K, C, C), .rows = rows,
                .weights = wt, .top_k = K, .beta = 1.0f) == HB_OK);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double r = 1;
            for (int j = 0; j < K; j++) r += wt[n * K + j] * y[rows[n * K + j] * C + c];
            CHECK_NEAR(out[n * C + c], r, 1e-5);
        }
}

/* The grouped GEMM of an expert stack in dtype dt (fp8: quantisation q) equals, expert by
 * expert, matmul with that expert's matrix (bit for bit), and the double-precision product
 * of the dequantised weights. */
static void check_grouped(hb_dtype dt, hb_qkind q) {
    enum { E = 4, NW = 32, KW = 32, R = 13 };
    const int32_t off[E + 1] = {0, 5, 5, 6, R}; /* expert 1 gets no rows */
    const int64_t bm = 16, bk = 16;
    void *w = malloc((size_t)E * NW * KW * 4);
    float scales[E * (NW / 16) * (KW / 16)];
    hb_tensor wt = hb_t3(w, dt, E, NW, KW);
    if (q != HB_QUANT_NONE) wt = hb_tq(wt, q, bm, bk, scales);
    CHECK(HB_OP(be, fill_random, .dst = wt, .seed = 3, .scale = 0.5f) == HB_OK);
    float a[R * KW], out[R * NW], one[R * NW];
    for (int i = 0; i < R * KW; i++) a[i] = hb_rng_pm1(4, (uint64_t)i);
    CHECK_MSG(HB_OP(be, matmul_grouped, .out = hb_t2(out, HB_F32, R, NW, NW), .a = hb_t2(a, HB_F32, R, KW, KW),
                    .w = wt, .offsets = off) == HB_OK, "%s", be->err);
    /* dequantised weights of the whole stack */
    float *wf = malloc((size_t)E * NW * KW * sizeof *wf);
    CHECK(HB_OP(be, convert, .dst = hb_t3(wf, HB_F32, E, NW, KW), .src = wt) == HB_OK);
    const int64_t es = hb_dtype_size(dt);
    double maxerr = 0;
    for (int e = 0; e < E; e++) {
        const int n = off[e + 1] - off[e];
        if (!n) continue;
        hb_tensor we = hb_t2((char *)w + (int64_t)e * NW * KW * es, dt, NW, KW, KW);
        if (q == HB_QUANT_TENSOR) we = hb_tq(we, q, 0, 0, scales);
        if (q == HB_QUANT_BLOCK) we = hb_tq(we, q, bm, bk, scales + e * (NW / bm) * (KW / bk));
        CHECK(HB_OP(be, matmul, .out = hb_t2(one + off[e] * NW, HB_F32, n, NW, NW),
                    .a = hb_t2(a + off[e] * KW, HB_F32, n, KW, KW), .w = we) == HB_OK);
        for (int r = off[e]; r < off[e + 1]; r++)
            for (int o = 0; o < NW; o++) {
                double s = 0;
                for (int k = 0; k < KW; k++) s += (double)a[r * KW + k] * wf[(e * NW + o) * KW + k];
                maxerr = fmax(maxerr, fabs(out[r * NW + o] - s));
            }
    }
    CHECK_MSG(!memcmp(out, one, sizeof out), "%s: grouped != per-expert matmul", hb_dtype_name(dt));
    /* fp8: the activations are quantised too (per expert's rows), so only f32-ish agreement */
    CHECK_MSG(maxerr < (hb_dtype_is_fp8(dt) ? 0.3 : 1e-4), "%s %s: max error %.3g vs double", hb_dtype_name(dt),
              hb_qkind_name(q), maxerr);
    free(w), free(wf);
}

/* A whole MoE FFN through the ops vs a double-precision layer. */
static void test_layer(void) {
    enum { N = 7, C = 16, E = 6, K = 2, FE = 8 };
    float h[N * C], rw[E * C], up[E * 2 * FE * C], dn[E * C * FE], x[N * C];
    for (int i = 0; i < N * C; i++) h[i] = hb_rng_pm1(1, (uint64_t)i), x[i] = 0.1f * hb_rng_pm1(2, (uint64_t)i);
    for (int i = 0; i < E * C; i++) rw[i] = 0.5f * hb_rng_pm1(3, (uint64_t)i);
    for (int i = 0; i < E * 2 * FE * C; i++) up[i] = 0.3f * hb_rng_pm1(4, (uint64_t)i);
    for (int i = 0; i < E * C * FE; i++) dn[i] = 0.3f * hb_rng_pm1(5, (uint64_t)i);
    double ref[N * C];
    for (int i = 0; i < N * C; i++) ref[i] = x[i];
    const hb_moe_route_args ra = {.kind = HB_ROUTER_SOFTMAX, .top_k = K, .norm = 1, .scale = 1};
    for (int n = 0; n < N; n++) {
        float lg[E];
        for (int e = 0; e < E; e++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)h[n * C + c] * rw[e * C + c];
            lg[e] = (float)s;
        }
        int ids[K];
        double w[K];
        ref_route(&ra, lg, E, ids, w);
        for (int j = 0; j < K; j++) {
            double u[2 * FE], a[FE];
            for (int o = 0; o < 2 * FE; o++) {
                u[o] = 0;
                for (int c = 0; c < C; c++) u[o] += (double)h[n * C + c] * up[(ids[j] * 2 * FE + o) * C + c];
            }
            for (int f = 0; f < FE; f++) a[f] = u[f] / (1 + exp(-u[f])) * u[FE + f];
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int f = 0; f < FE; f++) s += a[f] * dn[(ids[j] * C + c) * FE + f];
                ref[n * C + c] += w[j] * s;
            }
        }
    }
    float lg[N * E], wt[N * K], xp[N * K * C], eu[N * K * 2 * FE], ea[N * K * FE], ey[N * K * C];
    int32_t ids[N * K], rows[N * K], off[E + 1];
    CHECK(HB_OP(be, matmul, .out = hb_t2(lg, HB_F32, N, E, E), .a = hb_t2(h, HB_F32, N, C, C),
                .w = hb_t2(rw, HB_F32, E, C, C)) == HB_OK);
    route(ra, lg, N, E, ids, wt);
    CHECK(HB_OP(be, moe_permute, .xp = hb_t2(xp, HB_F32, N * K, C, C), .x = hb_t2(h, HB_F32, N, C, C), .ids = ids,
                .top_k = K, .n_experts = E, .rows = rows, .offsets = off) == HB_OK);
    CHECK(HB_OP(be, matmul_grouped, .out = hb_t2(eu, HB_F32, N * K, 2 * FE, 2 * FE),
                .a = hb_t2(xp, HB_F32, N * K, C, C), .w = hb_t3(up, HB_F32, E, 2 * FE, C), .offsets = off) == HB_OK);
    CHECK(HB_OP(be, swiglu, .out = hb_t2(ea, HB_F32, N * K, FE, FE), .in = hb_t2(eu, HB_F32, N * K, 2 * FE, 2 * FE)) == HB_OK);
    CHECK(HB_OP(be, matmul_grouped, .out = hb_t2(ey, HB_F32, N * K, C, C), .a = hb_t2(ea, HB_F32, N * K, FE, FE),
                .w = hb_t3(dn, HB_F32, E, C, FE), .offsets = off) == HB_OK);
    CHECK(HB_OP(be, moe_combine, .out = hb_t2(x, HB_F32, N, C, C), .y = hb_t2(ey, HB_F32, N * K, C, C), .rows = rows,
                .weights = wt, .top_k = K, .beta = 1.0f) == HB_OK);
    double e = 0;
    for (int i = 0; i < N * C; i++) e = fmax(e, fabs(x[i] - ref[i]));
    CHECK_MSG(e < 1e-5, "MoE layer: max error %.3g vs double", e);
}

/* mla_attention: the absorbed path equals materialised K/V (both against a double-precision
 * MLA over the same latents), for a prompt and then one more position. */
static void test_mla(void) {
    enum { B = 2, T = 5, S = 8, H = 3, DN = 8, DR = 4, DV = 6, DC = 12, DL = DC + DR };
    static float q[B * T * H * (DN + DR)], lat[B * T * DL], w[H * (DN + DV) * DC], cache[2][B * S * DL];
    static float out[2][B * T * H * DV];
    for (int i = 0; i < (int)(sizeof q / sizeof *q); i++) q[i] = hb_rng_pm1(11, (uint64_t)i);
    for (int i = 0; i < (int)(sizeof lat / sizeof *lat); i++) lat[i] = hb_rng_pm1(12, (uint64_t)i);
    for (int i = 0; i < (int)(sizeof w / sizeof *w); i++) w[i] = 0.4f * hb_rng_pm1(13, (uint64_t)i);
    for (int ab = 0; ab < 2; ab++) {
        hb_status s = HB_OP(be, mla_attention, .out = hb_t2(out[ab], HB_F32, B * T, H * DV, H * DV),
                            .q = hb_t2(q, HB_F32, B * T, H * (DN + DR), H * (DN + DR)),
                            .latent = hb_t2(lat, HB_F32, B * T, DL, DL), .cache = hb_t3(cache[ab], HB_F32, B, S, DL),
                            .wkv_b = hb_t2(w, HB_F32, H * (DN + DV), DC, DC), .B = B, .T = T, .pos0 = 0, .H = H, .dn = DN,
                            .dr = DR, .dv = DV, .absorb = ab);
        CHECK_MSG(s == HB_OK, "%s", be->err);
    }
    double e_ab = 0, e_ref = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const float *qr = q + (b * T + t) * H * (DN + DR);
                double sc[S], mx = -INFINITY, den = 0;
                for (int s = 0; s <= t; s++) {
                    const float *c = lat + (b * T + s) * DL;
                    double d = 0;
                    for (int i = 0; i < DN; i++) {
                        double k = 0;
                        for (int j = 0; j < DC; j++) k += (double)w[(h * (DN + DV) + i) * DC + j] * c[j];
                        d += qr[h * DN + i] * k;
                    }
                    for (int i = 0; i < DR; i++) d += (double)qr[H * DN + h * DR + i] * c[DC + i];
                    sc[s] = d / sqrt((double)(DN + DR));
                    mx = sc[s] > mx ? sc[s] : mx;
                }
                for (int s = 0; s <= t; s++) den += (sc[s] = exp(sc[s] - mx));
                for (int j = 0; j < DV; j++) {
                    double o = 0;
                    for (int s = 0; s <= t; s++) {
                        double v = 0;
                        for (int c = 0; c < DC; c++) v += (double)w[(h * (DN + DV) + DN + j) * DC + c] * lat[(b * T + s) * DL + c];
                        o += sc[s] / den * v;
                    }
                    const int idx = (b * T + t) * H * DV + h * DV + j;
                    e_ref = fmax(e_ref, fmax(fabs(out[0][idx] - o), fabs(out[1][idx] - o)));
                    e_ab = fmax(e_ab, fabs(out[0][idx] - out[1][idx]));
                }
            }
    CHECK_MSG(e_ab < 1e-5 && e_ref < 1e-5, "mla: absorbed vs materialised %.3g, vs double %.3g", e_ab, e_ref);
    CHECK(!memcmp(cache[0], cache[1], sizeof cache[0])); /* both stored the latents */
    /* bad arguments: q of the wrong width */
    CHECK(HB_OP(be, mla_attention, .out = hb_t2(out[0], HB_F32, B * T, H * DV, H * DV),
                .q = hb_t2(q, HB_F32, B * T, H * DN, H * DN), .latent = hb_t2(lat, HB_F32, B * T, DL, DL),
                .cache = hb_t3(cache[0], HB_F32, B, S, DL), .wkv_b = hb_t2(w, HB_F32, H * (DN + DV), DC, DC), .B = B,
                .T = T, .H = H, .dn = DN, .dr = DR, .dv = DV) == HB_ERR_INPUT);
}

int main(void) {
    hb_err err = {{0}};
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open cpu backend: %s\n", err.msg);
        return 1;
    }
    test_route();
    test_permute();
    check_grouped(HB_F32, HB_QUANT_NONE);
    check_grouped(HB_BF16, HB_QUANT_NONE);
    check_grouped(HB_FP8_E4M3, HB_QUANT_TENSOR);
    check_grouped(HB_FP8_E4M3, HB_QUANT_BLOCK);
    test_layer();
    test_mla();
    hb_backend_close(be);
    HB_TEST_END();
}
