/* test_train.c - the train workload on the CPU backend against references written here:
 *  - init: GPT-2/llm.c statistics per tensor kind (N(0, 0.02), residual projections
 *    N(0, 0.02 / sqrt(2L)), norms 1, biases 0) and a first loss near ln V;
 *  - gradients: central finite differences of a double-precision forward written here from
 *    the spec, for sampled elements of every parameter tensor of `tiny` (rmsnorm, swiglu,
 *    rope, GQA, untied head) and of a gpt2-like model (layernorm + biases, gelu, learned
 *    positions, tied embeddings);
 *  - a whole training loop: several steps of a small model of each family against the same
 *    double forward with finite-difference gradients and AdamW in double; losses equal within
 *    f32 tolerance;
 *  - determinism (same seed: bit-identical losses), data: repeat makes the loss fall,
 *    data: synthetic keeps it near ln V, grad_accum 2 x B == 1 x 2B, bf16 mixed precision
 *    tracks f32, and the plan-time checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/plan.h"
#include "hbtest.h"
#include "workloads/train.h"
#include "workloads/workload.h"

static hb_backend *be;

/* ---- the reference: a double-precision forward from the spec ---- */

typedef struct ref {
    hb_model m;
    int64_t C, D, Hq, Hkv, F, V, L, dqkv, dff, B, T;
    const hb_train_tensor *t;
    int nt;
    /* MoE: the experts each token of each layer goes to (L, N, top_k). The top-k choice is not
     * differentiated: freeze = 0 chooses (and stores), freeze = 1 reuses the stored choice, so
     * finite differences see the loss of a fixed routing, as the backward does */
    int32_t *ids;
    int freeze;
} ref;

/* parameter `name` of layer l (-1: model level), or NULL */
static const double *RP(const ref *r, const double *p, const char *name, int l) {
    for (int i = 0; i < r->nt; i++)
        if (r->t[i].layer == l && !strcmp(r->t[i].name, name)) return p + r->t[i].off;
    return NULL;
}

static void ref_norm(const ref *r, double *out, const double *x, const double *w, const double *b, int64_t N) {
    for (int64_t i = 0; i < N; i++) {
        const double *xi = x + i * r->C;
        double mu = 0, var = 0;
        if (r->m.norm == HB_NORM_LAYERNORM) {
            for (int64_t c = 0; c < r->C; c++) mu += xi[c];
            mu /= (double)r->C;
        }
        for (int64_t c = 0; c < r->C; c++) var += (xi[c] - mu) * (xi[c] - mu);
        const double rs = 1 / sqrt(var / (double)r->C + r->m.norm_eps);
        for (int64_t c = 0; c < r->C; c++) out[i * r->C + c] = (xi[c] - mu) * rs * w[c] + (b ? b[c] : 0);
    }
}

/* out (N, n) (+)= a (N, k) @ w (n, k)^T + bias */
static void ref_linear(double *out, const double *a, const double *w, const double *bias, int64_t N, int64_t n,
                       int64_t k, int add) {
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = bias ? bias[j] : 0;
            for (int64_t q = 0; q < k; q++) s += a[i * k + q] * w[j * k + q];
            out[i * n + j] = add ? out[i * n + j] + s : s;
        }
}

/* x (N, C) += the routed experts of layer l on h (N, C): router scores (softmax or sigmoid),
 * top-k by score + bias (ties: the lower index), weights renormalised and scaled, each
 * expert's SwiGLU; ops.h's MoE section, in double */
static void ref_moe(const ref *r, const double *p, int l, const double *h, double *x) {
    const int64_t C = r->C, E = r->m.n_experts, K = r->m.top_k, Fe = r->m.moe_ffn_dim, N = r->B * r->T;
    const double *rw = RP(r, p, "router_w", l), *rb = RP(r, p, "router_b", l);
    const double *up = RP(r, p, "exp_up", l), *down = RP(r, p, "exp_down", l);
    double s[64], ch[64], u[128], a[64];
    for (int64_t n = 0; n < N; n++) {
        const double *hn = h + n * C;
        double mx = -INFINITY, sum = 0;
        for (int64_t e = 0; e < E; e++) {
            s[e] = 0;
            for (int64_t c = 0; c < C; c++) s[e] += hn[c] * rw[e * C + c];
            mx = fmax(mx, s[e]);
        }
        if (r->m.router == HB_ROUTER_SOFTMAX) {
            for (int64_t e = 0; e < E; e++) sum += (s[e] = exp(s[e] - mx));
            for (int64_t e = 0; e < E; e++) s[e] /= sum;
        } else {
            for (int64_t e = 0; e < E; e++) s[e] = 1 / (1 + exp(-s[e]));
        }
        int32_t *ids = r->ids + ((int64_t)l * N + n) * K;
        if (!r->freeze) {
            for (int64_t e = 0; e < E; e++) ch[e] = s[e] + (rb ? rb[e] : 0);
            for (int64_t j = 0; j < K; j++) {
                int64_t best = -1;
                for (int64_t e = 0; e < E; e++)
                    if (ch[e] > -INFINITY && (best < 0 || ch[e] > ch[best])) best = e;
                ids[j] = (int32_t)best;
                ch[best] = -INFINITY;
            }
        }
        double Z = 1e-20;
        for (int64_t j = 0; j < K; j++) Z += s[ids[j]];
        for (int64_t j = 0; j < K; j++) {
            const int64_t e = ids[j];
            const double w = s[e] / (r->m.norm_topk ? Z : 1) * r->m.routed_scale;
            for (int64_t f = 0; f < 2 * Fe; f++) {
                u[f] = 0;
                for (int64_t c = 0; c < C; c++) u[f] += hn[c] * up[(e * 2 * Fe + f) * C + c];
            }
            for (int64_t f = 0; f < Fe; f++) a[f] = u[f] / (1 + exp(-u[f])) * u[Fe + f];
            for (int64_t c = 0; c < C; c++) {
                double y = 0;
                for (int64_t f = 0; f < Fe; f++) y += a[f] * down[(e * C + c) * Fe + f];
                x[n * C + c] += w * y;
            }
        }
    }
}

/* mean cross-entropy of predicting stream[i + 1] from stream[0..i] within each sequence */
static double ref_loss(const ref *r, const double *p, const int32_t *stream) {
    const int64_t C = r->C, D = r->D, N = r->B * r->T, HqD = r->Hq * r->D, grp = r->Hq / r->Hkv;
    double *x = calloc((size_t)(N * C), sizeof *x), *h = calloc((size_t)(N * C), sizeof *h);
    double *qkv = calloc((size_t)(N * r->dqkv), sizeof *qkv), *att = calloc((size_t)(N * HqD), sizeof *att);
    double *ff = calloc((size_t)(N * r->dff), sizeof *ff), *fa = calloc((size_t)(N * r->F), sizeof *fa);
    double *lg = calloc((size_t)r->V, sizeof *lg), *s = calloc((size_t)r->T, sizeof *s);
    const double *wte = RP(r, p, "wte", -1), *wpe = RP(r, p, "wpe", -1);
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) x[i * C + c] = wte[stream[i] * C + c] + (wpe ? wpe[(i % r->T) * C + c] : 0);
    for (int l = 0; l < r->L; l++) {
        ref_norm(r, h, x, RP(r, p, "ln1_w", l), RP(r, p, "ln1_b", l), N);
        ref_linear(qkv, h, RP(r, p, "qkv_w", l), RP(r, p, "qkv_b", l), N, r->dqkv, C, 0);
        if (r->m.qk_norm) /* Qwen3: every q and k head RMS-normalised (its own D weights) before rope */
            for (int64_t i = 0; i < N; i++)
                for (int64_t hh = 0; hh < r->Hq + r->Hkv; hh++) {
                    double *v = qkv + i * r->dqkv + hh * D, ss = 0;
                    const double *w = RP(r, p, hh < r->Hq ? "q_norm_w" : "k_norm_w", l);
                    for (int64_t d = 0; d < D; d++) ss += v[d] * v[d];
                    const double rs = 1 / sqrt(ss / (double)D + r->m.norm_eps);
                    for (int64_t d = 0; d < D; d++) v[d] *= rs * w[d];
                }
        if (r->m.pos == HB_POS_ROPE) /* rotate-half on the q and k heads at position t */
            for (int64_t i = 0; i < N; i++)
                for (int64_t hh = 0; hh < r->Hq + r->Hkv; hh++)
                    for (int64_t j = 0; j < D / 2; j++) {
                        double *v = qkv + i * r->dqkv + hh * D;
                        const double a = (double)(i % r->T) * pow(r->m.rope_theta, -2.0 * (double)j / (double)D);
                        const double x0 = v[j], x1 = v[j + D / 2];
                        v[j] = x0 * cos(a) - x1 * sin(a);
                        v[j + D / 2] = x0 * sin(a) + x1 * cos(a);
                    }
        for (int64_t b = 0; b < r->B; b++)
            for (int64_t t = 0; t < r->T; t++)
                for (int64_t hq = 0; hq < r->Hq; hq++) {
                    const double *q = qkv + (b * r->T + t) * r->dqkv + hq * D;
                    const int64_t ko = HqD + (hq / grp) * D, vo = HqD + r->Hkv * D + (hq / grp) * D;
                    double mx = -INFINITY, sum = 0;
                    for (int64_t j = 0; j <= t; j++) {
                        s[j] = 0;
                        for (int64_t d = 0; d < D; d++) s[j] += q[d] * qkv[(b * r->T + j) * r->dqkv + ko + d];
                        s[j] /= sqrt((double)D);
                        mx = fmax(mx, s[j]);
                    }
                    for (int64_t j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                    for (int64_t d = 0; d < D; d++) {
                        double o = 0;
                        for (int64_t j = 0; j <= t; j++) o += s[j] / sum * qkv[(b * r->T + j) * r->dqkv + vo + d];
                        att[(b * r->T + t) * HqD + hq * D + d] = o;
                    }
                }
        ref_linear(x, att, RP(r, p, "proj_w", l), RP(r, p, "proj_b", l), N, C, HqD, 1);
        ref_norm(r, h, x, RP(r, p, "ln2_w", l), RP(r, p, "ln2_b", l), N);
        /* the layer's dense FFN (a MoE layer's shared experts, a dense twin's width) */
        const int64_t F = hb_model_layer_ffn(&r->m, l), dff = r->m.act == HB_ACT_SWIGLU ? 2 * F : F;
        if (F > 0) {
            ref_linear(ff, h, RP(r, p, "fc_w", l), RP(r, p, "fc_b", l), N, dff, C, 0);
            for (int64_t i = 0; i < N; i++)
                for (int64_t f = 0; f < F; f++) {
                    if (r->m.act == HB_ACT_SWIGLU) {
                        const double a = ff[i * dff + f], g = ff[i * dff + F + f];
                        fa[i * F + f] = a / (1 + exp(-a)) * g;
                    } else {
                        const double z = ff[i * dff + f];
                        fa[i * F + f] = 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)));
                    }
                }
            ref_linear(x, fa, RP(r, p, "fc2_w", l), RP(r, p, "fc2_b", l), N, C, F, 1);
        }
        if (hb_model_layer_moe(&r->m, l)) ref_moe(r, p, l, h, x);
    }
    ref_norm(r, h, x, RP(r, p, "lnf_w", -1), RP(r, p, "lnf_b", -1), N);
    const double *lm = r->m.tied ? wte : RP(r, p, "lm_w", -1);
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        ref_linear(lg, h + i * C, lm, NULL, 1, r->V, C, 0);
        double mx = -INFINITY, sum = 0;
        for (int64_t v = 0; v < r->V; v++) mx = fmax(mx, lg[v]);
        for (int64_t v = 0; v < r->V; v++) sum += exp(lg[v] - mx);
        loss += log(sum) + mx - lg[stream[i + 1]];
    }
    free(x), free(h), free(qkv), free(att), free(ff), free(fa), free(lg), free(s);
    return loss / (double)N;
}

/* ---- cases ---- */

static const hb_model gpt2_micro = {.name = "gpt2-micro", .dim = 16, .n_layers = 2, .n_layers_full = 2, .n_heads = 2,
                                    .n_kv_heads = 2, .ffn_dim = 24, .vocab = 40, .max_seq = 16,
                                    .norm = HB_NORM_LAYERNORM, .act = HB_ACT_GELU, .pos = HB_POS_LEARNED, .tied = 1,
                                    .bias = 1, .norm_eps = 1e-5f};
static const hb_model llama_micro = {.name = "llama-micro", .dim = 16, .n_layers = 2, .n_layers_full = 2, .n_heads = 4,
                                     .n_kv_heads = 2, .ffn_dim = 20, .vocab = 40, .max_seq = 16,
                                     .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .tied = 0,
                                     .bias = 0, .rope_theta = 10000.0f, .norm_eps = 1e-5f};

/* MoE: a dense first layer, then 4 experts top-2 of width 8 plus a shared one, softmax router
 * renormalised (Mixtral / Qwen3-MoE / DeepSeek-V2 with first_k_dense); and DeepSeek-V3's
 * sigmoid router with its bias, scaled, no shared expert, every layer MoE */
static const hb_model moe_micro = {.name = "moe-micro", .dim = 16, .n_layers = 2, .n_layers_full = 2, .n_heads = 4,
                                   .n_kv_heads = 2, .ffn_dim = 20, .vocab = 40, .max_seq = 16,
                                   .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE,
                                   .rope_theta = 10000.0f, .norm_eps = 1e-5f, .n_experts = 4, .top_k = 2,
                                   .n_shared = 1, .moe_ffn_dim = 8, .first_k_dense = 1, .router = HB_ROUTER_SOFTMAX,
                                   .norm_topk = 1, .routed_scale = 1.0f};
static const hb_model moe_sigmoid_micro = {.name = "moe-sigmoid-micro", .dim = 16, .n_layers = 2, .n_layers_full = 2,
                                           .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 20, .vocab = 40, .max_seq = 16,
                                           .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE,
                                           .rope_theta = 10000.0f, .norm_eps = 1e-5f, .n_experts = 6, .top_k = 3,
                                           .moe_ffn_dim = 8, .router = HB_ROUTER_SIGMOID, .router_bias = 1,
                                           .norm_topk = 1, .routed_scale = 2.5f};

/* Qwen3-MoE's attention: head_dim 8 (not dim / heads = 4) and per-head q/k norms */
static const hb_model qwen3_moe_micro = {.name = "qwen3-moe-micro", .dim = 16, .n_layers = 2, .n_layers_full = 2,
                                         .n_heads = 4, .n_kv_heads = 2, .head_dim = 8, .qk_norm = 1, .ffn_dim = 20,
                                         .vocab = 40, .max_seq = 16, .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU,
                                         .pos = HB_POS_ROPE, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
                                         .n_experts = 4, .top_k = 2, .moe_ffn_dim = 8, .router = HB_ROUTER_SOFTMAX,
                                         .norm_topk = 1, .routed_scale = 1.0f};

static hb_case train_case(const hb_model *m, int64_t B, int64_t T, hb_train_data data, float lr) {
    hb_case c = {0};
    c.workload = HB_WL_TRAIN;
    c.model = *m;
    c.dtype = HB_F32;
    c.batch = B, c.seq = T, c.data = data;
    c.lr = lr, c.beta1 = 0.9f, c.beta2 = 0.999f, c.eps = 1e-8f, c.weight_decay = 0.0f;
    c.grad_accum = 1, c.dp = 1, c.seed = 1234;
    hb_err err = {0};
    CHECK(hb_case_resolve(&c, &err) == HB_OK);
    return c;
}

static hb_workload *setup(const hb_case *c) {
    hb_workload *w = NULL;
    hb_err err = {0};
    hb_status s = hb_workload_setup(be, c, &w, &err);
    CHECK_MSG(s == HB_OK, "setup: %s", err.msg);
    return w;
}

static ref ref_of(const hb_workload *w, const hb_case *c) {
    ref r = {.m = c->model, .C = c->model.dim, .Hq = c->model.n_heads, .Hkv = c->model.n_kv_heads,
             .F = c->model.ffn_dim, .V = c->model.vocab, .L = c->model.n_layers, .B = c->batch, .T = c->seq};
    int64_t n;
    r.D = hb_model_head_dim(&c->model);
    r.dqkv = (r.Hq + 2 * r.Hkv) * r.D;
    for (int64_t l = 0; l < r.L; l++) r.F = hb_model_layer_ffn(&r.m, l) > r.F ? hb_model_layer_ffn(&r.m, l) : r.F;
    r.dff = c->model.act == HB_ACT_SWIGLU ? 2 * r.F : r.F;
    r.nt = hb_train_tensors(w, &r.t, &n);
    r.ids = calloc((size_t)(r.L * r.B * r.T * (r.m.top_k > 0 ? r.m.top_k : 1)), sizeof *r.ids);
    return r;
}

static double *host_params(const hb_workload *w, int which, int64_t *n) {
    const hb_train_tensor *t;
    hb_train_tensors(w, &t, n);
    float *f = malloc((size_t)*n * sizeof *f);
    double *d = malloc((size_t)*n * sizeof *d);
    CHECK(hb_train_download(w, which, f) == HB_OK);
    for (int64_t i = 0; i < *n; i++) d[i] = f[i];
    free(f);
    return d;
}

/* ---- init ---- */
static void test_init(void) {
    const hb_model *m;
    hb_model tiny;
    hb_err err = {0};
    CHECK(hb_model_find("tiny", &tiny, &err) == HB_OK);
    hb_model g = gpt2_micro;
    g.vocab = 2000, g.n_layers = g.n_layers_full = 3; /* enough elements for the statistics */
    const hb_model *models[2] = {&tiny, &g};
    for (int k = 0; k < 2; k++) {
        m = models[k];
        hb_case c = train_case(m, 2, 16, HB_DATA_SYNTHETIC, 1e-4f);
        hb_workload *w = setup(&c);
        if (!w) continue;
        int64_t n;
        double *p = host_params(w, 0, &n);
        const hb_train_tensor *t;
        const int nt = hb_train_tensors(w, &t, &n);
        for (int i = 0; i < nt; i++) {
            const int64_t ne = t[i].rows * t[i].cols;
            double s = 0, s2 = 0;
            for (int64_t j = 0; j < ne; j++) s += p[t[i].off + j], s2 += p[t[i].off + j] * p[t[i].off + j];
            const double mean = s / (double)ne, sd = sqrt(s2 / (double)ne - mean * mean);
            const int resid = !strcmp(t[i].name, "proj_w") || !strcmp(t[i].name, "fc2_w");
            const int one = strstr(t[i].name, "ln") && t[i].name[strlen(t[i].name) - 1] == 'w';
            const int bias = t[i].name[strlen(t[i].name) - 1] == 'b';
            if (one) CHECK_MSG(mean == 1.0 && sd == 0.0, "%s[%d]: mean %g sd %g, expected ones", t[i].name, t[i].layer, mean, sd);
            else if (bias) CHECK_MSG(s2 == 0.0, "%s[%d]: expected zeros", t[i].name, t[i].layer);
            else {
                const double want = resid ? 0.02 / sqrt(2.0 * (double)m->n_layers) : 0.02;
                /* within 5 standard errors of N(0, want) over ne samples */
                const double se_mean = want / sqrt((double)ne), se_sd = want / sqrt(2.0 * (double)ne);
                CHECK_MSG(fabs(sd - want) < 5 * se_sd && fabs(mean) < 5 * se_mean, "%s[%d]: sd %g (want %g) mean %g",
                          t[i].name, t[i].layer, sd, want, mean);
            }
        }
        CHECK(hb_workload_step(w) == HB_OK);
        double loss = 0;
        CHECK(hb_workload_loss(w, &loss) == 1);
        CHECK_MSG(fabs(loss - log((double)m->vocab)) < 0.05, "%s: first loss %g, ln V = %g", m->name, loss,
                  log((double)m->vocab));
        free(p);
        hb_workload_free(w);
    }
}

/* ---- gradients against finite differences ---- */
static void test_gradients(const hb_model *m, int64_t B, int64_t T, int samples) {
    hb_case c = train_case(m, B, T, HB_DATA_SYNTHETIC, 1e-4f);
    hb_workload *w = setup(&c);
    if (!w) return;
    ref r = ref_of(w, &c);
    int64_t n;
    double *p = host_params(w, 0, &n), loss = 0;
    int32_t *tok = malloc((size_t)(B * T + 1) * sizeof *tok);
    CHECK(hb_train_tokens(w, tok) == HB_OK);
    CHECK(hb_train_grad(w, &loss) == HB_OK);
    double *g = host_params(w, 1, &n);
    const double lref = ref_loss(&r, p, tok);
    CHECK_MSG(fabs(loss - lref) < 1e-5 * lref, "%s: loss %.9g, reference %.9g", m->name, loss, lref);
    r.freeze = 1; /* the routing of the point the gradient is taken at */
    uint64_t rs = 88172645463325252ull;
    for (int i = 0; i < r.nt; i++) {
        const hb_train_tensor *t = &r.t[i];
        const int64_t ne = t->rows * t->cols;
        double gmax = 0, emax = 0;
        for (int64_t j = 0; j < ne; j++) gmax = fmax(gmax, fabs(g[t->off + j]));
        for (int k = 0; k < samples; k++) {
            rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
            int64_t j = (int64_t)(rs % (uint64_t)ne);
            if (!strcmp(t->name, "wte") && k < samples / 2) /* rows of tokens in the batch */
                j = (int64_t)tok[rs % (uint64_t)(B * T)] * t->cols + (int64_t)((rs >> 32) % (uint64_t)t->cols);
            double *x = &p[t->off + j];
            const double x0 = *x, h = 1e-5;
            *x = x0 + h;
            const double lp = ref_loss(&r, p, tok);
            *x = x0 - h;
            const double lm = ref_loss(&r, p, tok);
            *x = x0;
            const double fd = (lp - lm) / (2 * h);
            emax = fmax(emax, fabs(fd - g[t->off + j]));
            gmax = fmax(gmax, fabs(fd));
        }
        CHECK_MSG(emax <= 2e-3 * gmax + 1e-7, "%s: d loss / d %s[%d]: max error %.3g, max |grad| %.3g", m->name, t->name,
                  t->layer, emax, gmax);
        if (!strcmp(t->name, "router_w") || !strcmp(t->name, "exp_up") || !strcmp(t->name, "exp_down"))
            CHECK_MSG(gmax > 1e-6, "%s: d loss / d %s[%d] is 0: nothing reached it", m->name, t->name, t->layer);
    }
    free(p), free(g), free(tok), free(r.ids);
    hb_workload_free(w);
}

/* ---- a whole training loop against the reference ---- */
static void test_training(const hb_model *m, int steps) {
    hb_case c = train_case(m, 2, 6, HB_DATA_REPEAT, 1e-2f);
    c.weight_decay = 0.1f;
    c.beta2 = 0.99f;
    hb_workload *w = setup(&c);
    if (!w) return;
    ref r = ref_of(w, &c);
    int64_t n;
    double *p = host_params(w, 0, &n);
    double *g = calloc((size_t)n, sizeof *g), *mm = calloc((size_t)n, sizeof *mm), *vv = calloc((size_t)n, sizeof *vv);
    int32_t tok[13];
    CHECK(hb_train_tokens(w, tok) == HB_OK);
    double first = 0, last = 0;
    for (int s = 1; s <= steps; s++) {
        double loss = 0;
        CHECK(hb_workload_step(w) == HB_OK);
        CHECK(hb_workload_loss(w, &loss) == 1);
        r.freeze = 0;
        const double lref = ref_loss(&r, p, tok);
        CHECK_MSG(fabs(loss - lref) <= 2e-5 * lref, "%s step %d: loss %.9g, reference %.9g", m->name, s, loss, lref);
        if (s == 1) first = lref;
        last = lref;
        r.freeze = 1;
        /* the reference step: gradients by central differences, AdamW in double */
        for (int64_t i = 0; i < n; i++) {
            const double x0 = p[i], h = 1e-5;
            p[i] = x0 + h;
            const double lp = ref_loss(&r, p, tok);
            p[i] = x0 - h;
            const double lm = ref_loss(&r, p, tok);
            p[i] = x0;
            g[i] = (lp - lm) / (2 * h);
        }
        const double lr = c.lr, b1 = c.beta1, b2 = c.beta2, eps = c.eps, wd = c.weight_decay;
        for (int64_t i = 0; i < n; i++) {
            mm[i] = b1 * mm[i] + (1 - b1) * g[i];
            vv[i] = b2 * vv[i] + (1 - b2) * g[i] * g[i];
            const double mh = mm[i] / (1 - pow(b1, s)), vh = vv[i] / (1 - pow(b2, s));
            p[i] -= lr * (mh / (sqrt(vh) + eps) + wd * p[i]);
        }
    }
    CHECK_MSG(last < first - 0.1, "%s: the loss did not fall (%g -> %g)", m->name, first, last);
    /* the parameters after the last update */
    double *pw = host_params(w, 0, &n), emax = 0;
    for (int64_t i = 0; i < n; i++) emax = fmax(emax, fabs(pw[i] - p[i]));
    CHECK_MSG(emax < 2e-4, "%s: parameters after %d steps differ from the reference by %.3g", m->name, steps, emax);
    free(p), free(g), free(mm), free(vv), free(pw), free(r.ids);
    hb_workload_free(w);
}

/* ---- losses of a few steps ---- */
static void run_losses(const hb_case *c, int steps, double *loss) {
    hb_workload *w = setup(c);
    for (int s = 0; s < steps; s++) {
        loss[s] = NAN;
        if (!w || hb_workload_step(w) != HB_OK) continue;
        hb_workload_loss(w, &loss[s]);
    }
    hb_workload_free(w);
}

static void test_behaviour(void) {
    hb_model tiny;
    hb_err err = {0};
    CHECK(hb_model_find("tiny", &tiny, &err) == HB_OK);
    double a[12], b[12];
    /* determinism: bit-identical losses for the same seed, different ones for another */
    hb_case c = train_case(&tiny, 2, 16, HB_DATA_SYNTHETIC, 1e-3f);
    run_losses(&c, 3, a);
    run_losses(&c, 3, b);
    CHECK(memcmp(a, b, 3 * sizeof *a) == 0);
    c.seed = 99;
    run_losses(&c, 3, b);
    CHECK(a[0] != b[0]);
    /* synthetic: fresh uniform tokens, nothing to learn - the loss stays near ln V */
    for (int s = 0; s < 3; s++) CHECK_MSG(fabs(a[s] - log(256.0)) < 0.1, "synthetic step %d: loss %g", s, a[s]);
    /* repeat: the same batch every step - the loss falls */
    c = train_case(&tiny, 2, 16, HB_DATA_REPEAT, 1e-3f);
    run_losses(&c, 12, a);
    CHECK_MSG(a[11] < a[0] - 1.0, "repeat: loss %g -> %g", a[0], a[11]);
    for (int s = 1; s < 12; s++) CHECK_MSG(a[s] < a[s - 1], "repeat: step %d loss %g after %g", s, a[s], a[s - 1]);
    /* bf16 mixed precision tracks f32 */
    hb_case cb = c;
    cb.dtype = HB_BF16;
    CHECK(hb_case_resolve(&cb, &err) == HB_OK);
    run_losses(&cb, 12, b);
    for (int s = 0; s < 12; s++) CHECK_MSG(fabs(a[s] - b[s]) < 0.02 * a[0], "bf16 step %d: %g vs f32 %g", s, b[s], a[s]);
    CHECK(b[0] != a[0]); /* the GEMMs did read bf16 weights */
    /* grad_accum 2 of batch 1 == 1 of batch 2 on the same tokens (one stream per step) */
    hb_case c1 = train_case(&tiny, 2, 8, HB_DATA_SYNTHETIC, 1e-3f), c2 = train_case(&tiny, 1, 8, HB_DATA_SYNTHETIC, 1e-3f);
    c2.grad_accum = 2;
    CHECK(hb_case_resolve(&c2, &err) == HB_OK);
    CHECK(c2.cost.tokens_in == c1.cost.tokens_in && fabs(c2.cost.flops - c1.cost.flops) < 1e-6 * c1.cost.flops);
    run_losses(&c1, 3, a);
    run_losses(&c2, 3, b);
    for (int s = 0; s < 3; s++) CHECK_MSG(fabs(a[s] - b[s]) < 1e-5 * a[s], "accum step %d: %.9g vs %.9g", s, b[s], a[s]);
}

/* ---- Mixture-of-Experts and dense twins ---- */
static void test_moe(void) {
    hb_err err = {0};
    /* gradients of every tensor (router, experts, shared expert...) against finite differences
     * of the double forward with the routing held fixed */
    test_gradients(&moe_micro, 2, 8, 8);
    test_gradients(&moe_sigmoid_micro, 2, 6, 8);
    test_gradients(&qwen3_moe_micro, 2, 6, 8);
    hb_model twin;
    CHECK(hb_model_dense_twin(&moe_micro, HB_TWIN_TOTAL, &twin, &err) == HB_OK);
    test_gradients(&twin, 2, 6, 6); /* layer 1 a dense SwiGLU of (4 + 1) x 8 */
    /* several AdamW steps against the reference's, the experts and router included */
    test_training(&moe_micro, 3);

    hb_model tm, tt;
    CHECK(hb_model_find("tiny-moe", &tm, &err) == HB_OK);
    CHECK(hb_model_dense_twin(&tm, HB_TWIN_TOTAL, &tt, &err) == HB_OK);
    /* the cost: 6 x the matmul parameters a token uses (models.c's active count less the
     * embedding and the norms) + attention; the memory holds every expert's gradients and moments */
    hb_case c = train_case(&tm, 2, 16, HB_DATA_REPEAT, 1e-3f), ct = train_case(&tt, 2, 16, HB_DATA_REPEAT, 1e-3f);
    const double N = 32, T = 16, L = (double)tm.n_layers, C = (double)tm.dim;
    const double mm = (double)hb_model_n_active_params(&tm) - (double)tm.vocab * C - (2 * L + 1) * C;
    const double attn = 4.0 * L * (double)tm.n_heads * (C / (double)tm.n_heads) * 2 * T * (T + 1) / 2;
    CHECK_MSG(fabs(c.cost.flops - 3 * (2 * N * mm + attn)) < 1e-9 * c.cost.flops, "tiny-moe flops %g, expected %g",
              c.cost.flops, 3 * (2 * N * mm + attn));
    const double mmt = (double)hb_model_n_active_params(&tt) - (double)tt.vocab * C - (2 * L + 1) * C;
    CHECK_MSG(fabs(ct.cost.flops - 3 * (2 * N * mmt + attn)) < 1e-9 * ct.cost.flops, "twin flops %g, expected %g",
              ct.cost.flops, 3 * (2 * N * mmt + attn));
    CHECK(c.cost.flops < ct.cost.flops);
    CHECK_MSG(c.cost.mem_bytes >= 16 * hb_model_n_params(&tm), "tiny-moe: %lld bytes for %lld parameters x 16",
              (long long)c.cost.mem_bytes, (long long)hb_model_n_params(&tm));
    CHECK(strstr(ct.label, "train tiny-moe-dense f32") == ct.label);

    /* repeat: the loss falls step after step; bit-identical losses for the same seed */
    double a[12], b[12];
    run_losses(&c, 12, a);
    CHECK_MSG(a[11] < a[0] - 1.0, "tiny-moe repeat: loss %g -> %g", a[0], a[11]);
    for (int s = 1; s < 12; s++) CHECK_MSG(a[s] < a[s - 1], "tiny-moe repeat: step %d loss %g after %g", s, a[s], a[s - 1]);
    c = train_case(&tm, 2, 16, HB_DATA_SYNTHETIC, 1e-3f);
    run_losses(&c, 3, a);
    run_losses(&c, 3, b);
    CHECK(memcmp(a, b, 3 * sizeof *a) == 0);
    for (int s = 0; s < 3; s++) CHECK_MSG(fabs(a[s] - log(256.0)) < 0.1, "tiny-moe synthetic step %d: loss %g", s, a[s]);
    ct = train_case(&tt, 2, 16, HB_DATA_REPEAT, 1e-3f);
    run_losses(&ct, 4, b);
    CHECK_MSG(b[3] < b[0], "tiny-moe-dense repeat: loss %g -> %g", b[0], b[3]);
}

/* ---- activation recomputation: the same ops again, so the same bits in less memory ---- */
static void test_recompute(void) {
    hb_model tiny, tm, q3;
    hb_err err = {0};
    CHECK(hb_model_find("tiny", &tiny, &err) == HB_OK);
    CHECK(hb_model_find("tiny-moe", &tm, &err) == HB_OK);
    q3 = qwen3_moe_micro; /* q/k norms: the saved qkv before them is recomputed too */
    const hb_model *models[3] = {&tiny, &tm, &q3};
    for (int k = 0; k < 3; k++) {
        double loss[3][4];
        double *params[3] = {NULL, NULL, NULL};
        int64_t mem[3] = {0}, n = 0;
        double flops[3] = {0};
        for (int r = 0; r < 3; r++) {
            hb_case c = train_case(models[k], 2, 16, HB_DATA_REPEAT, 1e-3f);
            c.recompute = (hb_recompute)r;
            CHECK(hb_case_resolve(&c, &err) == HB_OK);
            mem[r] = c.cost.mem_bytes, flops[r] = c.cost.flops;
            CHECK(r == 0 || strstr(c.label, r == 1 ? " recompute=attention" : " recompute=full"));
            hb_workload *w = setup(&c);
            for (int s = 0; s < 4; s++) {
                loss[r][s] = NAN;
                if (w && hb_workload_step(w) == HB_OK) hb_workload_loss(w, &loss[r][s]);
            }
            if (w) params[r] = host_params(w, 0, &n);
            hb_workload_free(w);
        }
        for (int r = 1; r < 3; r++) {
            CHECK_MSG(memcmp(loss[r], loss[0], sizeof loss[0]) == 0, "%s recompute %s: losses %.9g.. vs %.9g..",
                      models[k]->name, hb_recompute_name((hb_recompute)r), loss[r][3], loss[0][3]);
            CHECK_MSG(params[r] && params[0] && memcmp(params[r], params[0], (size_t)n * sizeof *params[0]) == 0,
                      "%s recompute %s: parameters after 4 steps differ", models[k]->name, hb_recompute_name((hb_recompute)r));
            CHECK(flops[r] == flops[0]); /* model FLOPs: MFU does not count the recomputation */
        }
        CHECK_MSG(mem[2] < mem[1] && mem[1] < mem[0], "%s memory none %lld attention %lld full %lld", models[k]->name,
                  (long long)mem[0], (long long)mem[1], (long long)mem[2]);
        CHECK(loss[0][3] < loss[0][0]);
        for (int r = 0; r < 3; r++) free(params[r]);
    }
}

/* ---- plan-time checks: one message naming the key ---- */
static void expect_plan_error(const char *const *kv_pairs, int n, const char *needle) {
    hb_kv kv[8];
    for (int i = 0; i < n; i++) kv[i].key = kv_pairs[2 * i], kv[i].value = kv_pairs[2 * i + 1];
    hb_plan p;
    hb_err err = {0};
    hb_status s = hb_plan_from_args(kv, n, &p, &err);
    CHECK_MSG(s == HB_ERR_INPUT && strstr(err.msg, needle), "%s: status %d, message '%s'", needle, (int)s, err.msg);
    if (s == HB_OK) hb_plan_free(&p);
}

static void test_plan(void) {
    const char *ok[] = {"workload", "train", "model", "tiny", "seq", "32", "lr", "3e-4", "data", "repeat"};
    hb_kv kv[5];
    for (int i = 0; i < 5; i++) kv[i].key = ok[2 * i], kv[i].value = ok[2 * i + 1];
    hb_plan p;
    hb_err err = {0};
    CHECK_MSG(hb_plan_from_args(kv, 5, &p, &err) == HB_OK, "%s", err.msg);
    if (p.n_cases == 1) {
        const hb_case *c = &p.cases[0];
        CHECK(c->workload == HB_WL_TRAIN && c->seq == 32 && c->data == HB_DATA_REPEAT && c->batch == 1);
        CHECK(fabsf(c->lr - 3e-4f) < 1e-10f && c->beta1 == 0.9f && c->beta2 == 0.999f && c->eps == 1e-8f);
        CHECK(c->weight_decay == 0.0f && c->grad_accum == 1 && c->dp == 1);
        CHECK(c->cost.tokens_in == 32 && c->cost.mem_bytes > 0);
        CHECK(strstr(p.yaml, "lr: 0.0003") && strstr(p.yaml, "data: repeat"));
        hb_plan_free(&p);
    }
    const char *a[] = {"workload", "train", "seq", "257"};
    expect_plan_error(a, 2, "--seq: seq 257 exceeds max_seq 256");
    const char *b[] = {"workload", "train", "lr", "0"};
    expect_plan_error(b, 2, "--lr: lr 0");
    const char *d[] = {"workload", "train", "beta1", "1"};
    expect_plan_error(d, 2, "--beta1: beta1 1");
    const char *e[] = {"workload", "train", "beta2", "1.5"};
    expect_plan_error(e, 2, "--beta2: beta2 1.5");
    const char *rc[] = {"workload", "train", "recompute", "partial"};
    expect_plan_error(rc, 2, "--recompute: unknown value 'partial' (accepted: none, attention, full)");
    const char *rcp[] = {"workload", "train", "recompute", "full"};
    hb_kv kr[2] = {{rcp[0], rcp[1]}, {rcp[2], rcp[3]}};
    CHECK(hb_plan_from_args(kr, 2, &p, &err) == HB_OK && p.n_cases == 1 && p.cases[0].recompute == HB_RECOMPUTE_FULL &&
          strstr(p.yaml, "recompute: full"));
    hb_plan_free(&p);
    const char *f[] = {"workload", "train", "dp", "0"};
    expect_plan_error(f, 2, "--dp: '0' is not a positive integer"); /* dp vs the ranks: at run time (test_train_dp.sh) */
    /* a value that is not synthetic or repeat is an llm.c token file: checked at plan time */
    const char *g[] = {"workload", "train", "data", "no-such-file"};
    expect_plan_error(g, 2, "--data: no-such-file: No such file or directory");
    const char *h[] = {"workload", "train", "dtype", "fp8"};
    expect_plan_error(h, 2, "--dtype: train: dtype fp8");
    /* MoE: the router's own routing only; MLA is not trained yet; a twin needs experts */
    const char *i[] = {"workload", "train", "model", "tiny-moe", "routing", "balanced"};
    expect_plan_error(i, 3, "--routing: train: routing balanced");
    const char *j[] = {"workload", "train", "model", "tiny-mla"};
    expect_plan_error(j, 2, "--model: train: model 'tiny-mla' has MLA attention");
    const char *okq[] = {"workload", "train", "model", "qwen3-30b-a3b", "layers", "1"};
    for (int q = 0; q < 3; q++) kv[q].key = okq[2 * q], kv[q].value = okq[2 * q + 1];
    CHECK_MSG(hb_plan_from_args(kv, 3, &p, &err) == HB_OK, "%s", err.msg); /* q/k norms and head_dim 128 train */
    if (p.n_cases == 1) hb_plan_free(&p);
    const char *k[] = {"workload", "train", "model", "tiny", "dense_twin", "total"};
    expect_plan_error(k, 3, "--dense-twin: model 'tiny' has no experts");
    const char *okm[] = {"workload", "train", "model", "tiny-moe", "dense_twin", "total"};
    for (int q = 0; q < 3; q++) kv[q].key = okm[2 * q], kv[q].value = okm[2 * q + 1];
    CHECK_MSG(hb_plan_from_args(kv, 3, &p, &err) == HB_OK, "%s", err.msg);
    if (p.n_cases == 1) {
        CHECK(p.cases[0].model.dense_twin == HB_TWIN_TOTAL && strstr(p.yaml, "dense_twin: total"));
        hb_plan_free(&p);
    }
}

int main(void) {
    hb_err err = {0};
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", err.msg);
        return 1;
    }
    hb_model tiny;
    CHECK(hb_model_find("tiny", &tiny, &err) == HB_OK);
    test_plan();
    test_init();
    test_gradients(&tiny, 2, 8, 6);
    test_gradients(&gpt2_micro, 2, 7, 6);
    test_training(&llama_micro, 4);
    test_training(&gpt2_micro, 4);
    test_moe();
    test_recompute();
    test_behaviour();
    hb_backend_close(be);
    HB_TEST_END();
}
