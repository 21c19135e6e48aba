/* test_transformer.c - whole-model checks of the prefill and decode workloads on the CPU
 * backend against a naive double-precision transformer written here from the spec:
 *  - prefill logits == reference (f32, bf16, f16, fp8 and fp8-block weights, every KV cache
 *    dtype; a llama-like and a gpt2-like model);
 *  - decode with the KV cache == the reference recomputing the whole sequence, at every step
 *    (fp8 with per-tensor activation scales: the reference quantises the same rows together -
 *    the prompt, then one token per step - since a per-tensor scale depends on the rows);
 *  - bf16 and fp8 weights stay within their tolerance of the f32 model.
 * The fp8 reference quantises exactly as ops.h specifies (scale amax/448 of each group of the
 * generated f32 values, codes RNE(x / scale)), embeddings and lm head in bf16, activations
 * quantised per matmul input (per tensor, or in 1 x block tiles), and accumulates in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "hbtest.h"
#include "workloads/transformer.h" // defines: hb_case_kv_dtype
#include "workloads/workload.h"

/* ---- the reference: weights regenerated from the documented init scheme ---- */
typedef struct ref_model {
    hb_model m;
    hb_dtype dt;          /* weight matrices */
    hb_dtype edt;         /* embeddings, lm head */
    hb_qkind wq;          /* fp8: tensor or block */
    int64_t qb;           /* block edge */
    hb_dtype kvt;         /* KV cache */
    uint64_t seed;
    int64_t C, D, Hq, Hkv, F, V, L;
    double *wte, *wpe, *lm, *lnf_w, *lnf_b;
    struct ref_layer {
        double *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fc2_w, *fc2_b;
        int64_t F;                              /* dense FFN / shared experts width (0: none) */
        double *router_w, *router_b, *exp_up, *exp_down; /* MoE layers */
        double *wq_a, *q_norm, *wq, *wkv_a, *kv_norm, *wkv_b;  /* MLA layers (proj_w: the output) */
    } *layer;
} ref_model;

/* e4m3 quantisation of the f32 values v (rows, cols) in groups of bm x bk, per ops.h:
 * scale = amax / 448 (1 for an all-zero group), code = RNE(v / scale); x = code * scale. */
static void ref_quantise(double *x, const float *v, int64_t rows, int64_t cols, int64_t bm, int64_t bk) {
    for (int64_t r0 = 0; r0 < rows; r0 += bm)
        for (int64_t c0 = 0; c0 < cols; c0 += bk) {
            int64_t r1 = r0 + bm < rows ? r0 + bm : rows, c1 = c0 + bk < cols ? c0 + bk : cols;
            float amax = 0;
            for (int64_t i = r0; i < r1; i++)
                for (int64_t j = c0; j < c1; j++) amax = fabsf(v[i * cols + j]) > amax ? fabsf(v[i * cols + j]) : amax;
            float sc = amax > 0 ? amax / 448.0f : 1.0f;
            for (int64_t i = r0; i < r1; i++)
                for (int64_t j = c0; j < c1; j++)
                    x[i * cols + j] = (double)hb_e4m3_to_f32(hb_f32_to_e4m3(v[i * cols + j] / sc)) * (double)sc;
        }
}

/* Same values as the backend's fill_random: offset + scale * pm1, cast to the storage dtype;
 * a quantised matrix (rows x cols, cols > 0) holds their fp8 quantisation. */
static double *gen2(const ref_model *r, uint64_t id, hb_dtype dt, int64_t rows, int64_t cols, float scale,
                    float offset) {
    int64_t n = rows * (cols > 0 ? cols : 1);
    double *x = malloc((size_t)n * sizeof *x);
    float *f = malloc((size_t)n * sizeof *f);
    uint64_t seed = hb_rng_u64(r->seed, id);
    for (int64_t i = 0; i < n; i++) {
        float v = offset + scale * hb_rng_pm1(seed, (uint64_t)i);
        f[i] = v;
        if (dt == HB_BF16) v = hb_bf16_to_f32(hb_f32_to_bf16(v));
        if (dt == HB_F16) v = hb_f16_to_f32(hb_f32_to_f16(v));
        x[i] = v;
    }
    if (dt == HB_FP8_E4M3) {
        int64_t c = cols > 0 ? cols : n, rr = n / c;
        if (r->wq == HB_QUANT_BLOCK) ref_quantise(x, f, rr, c, r->qb, r->qb);
        else ref_quantise(x, f, rr, c, rr, c);
    }
    free(f);
    return x;
}
static double *gen(const ref_model *r, uint64_t id, hb_dtype dt, int64_t n, float scale, float offset) {
    return gen2(r, id, dt, n, 0, scale, offset);
}

/* In place: the activations x (rows, cols) of one matmul input, quantised as the fp8 matmul
 * quantises its f32 A (per tensor, or in 1 x qb tiles); nothing for other dtypes. */
static void ref_quant_act(const ref_model *r, double *x, int64_t rows, int64_t cols) {
    if (r->dt != HB_FP8_E4M3) return;
    float *f = malloc((size_t)(rows * cols) * sizeof *f);
    for (int64_t i = 0; i < rows * cols; i++) f[i] = (float)x[i];
    if (r->wq == HB_QUANT_BLOCK) ref_quantise(x, f, rows, cols, 1, r->qb);
    else ref_quantise(x, f, rows, cols, rows, cols);
    free(f);
}

static void ref_build(ref_model *r, const hb_case *c) {
    const hb_model *m = &c->model;
    const hb_dtype dt = c->dtype;
    memset(r, 0, sizeof *r);
    r->m = *m;
    r->dt = dt;
    r->edt = dt == HB_FP8_E4M3 ? HB_BF16 : dt;
    r->wq = dt == HB_FP8_E4M3 ? (c->quant == HB_QUANT_BLOCK ? HB_QUANT_BLOCK : HB_QUANT_TENSOR) : HB_QUANT_NONE;
    r->qb = c->quant_block > 0 ? c->quant_block : 128;
    r->kvt = hb_case_kv_dtype(c);
    r->seed = c->seed;
    r->C = m->dim, r->Hq = m->n_heads, r->Hkv = m->n_kv_heads, r->D = hb_model_head_dim(m);
    r->F = m->ffn_dim, r->V = m->vocab, r->L = m->n_layers;
    int ln = m->norm == HB_NORM_LAYERNORM, sw = m->act == HB_ACT_SWIGLU;
    int64_t C = r->C, dqkv = (r->Hq + 2 * r->Hkv) * r->D, dff = sw ? 2 * r->F : r->F;
    /* tensor ids as in workloads/transformer.c fill_weights() */
    const hb_dtype edt = r->edt;
    r->wte = gen(r, 100, edt, r->V * C, 1.0f, 0.0f);
    r->wpe = m->pos == HB_POS_LEARNED ? gen(r, 101, edt, m->max_seq * C, 1.0f, 0.0f) : NULL;
    r->lm = m->tied ? r->wte : gen(r, 102, edt, r->V * C, 1.0f / sqrtf((float)C), 0.0f);
    r->lnf_w = gen(r, 103, HB_F32, C, 0.1f, 1.0f);
    r->lnf_b = ln ? gen(r, 104, HB_F32, C, 0.02f, 0.0f) : NULL;
    r->layer = calloc((size_t)r->L, sizeof *r->layer);
    for (int64_t l = 0; l < r->L; l++) {
        uint64_t id = 1000 + (uint64_t)l * 16;
        struct ref_layer *y = &r->layer[l];
        y->ln1_w = gen(r, id + 0, HB_F32, C, 0.1f, 1.0f);
        y->ln1_b = ln ? gen(r, id + 1, HB_F32, C, 0.02f, 0.0f) : NULL;
        if (m->kv_lora_rank > 0) { /* MLA, ids 500000 + 8 l + j (workloads/transformer.c) */
            const uint64_t mid = 500000 + (uint64_t)l * 8;
            const int64_t H = m->n_heads, dq = H * (m->qk_nope_dim + m->qk_rope_dim), ql = m->q_lora_rank;
            const int64_t dc = m->kv_lora_rank, hdv = H * m->v_head_dim;
            if (ql) {
                y->wq_a = gen2(r, mid + 0, dt, ql, C, 1.0f / sqrtf((float)C), 0.0f);
                y->q_norm = gen(r, mid + 1, HB_F32, ql, 0.1f, 1.0f);
                y->wq = gen2(r, mid + 2, dt, dq, ql, 1.0f / sqrtf((float)ql), 0.0f);
            } else {
                y->wq = gen2(r, mid + 2, dt, dq, C, 1.0f / sqrtf((float)C), 0.0f);
            }
            y->wkv_a = gen2(r, mid + 3, dt, dc + m->qk_rope_dim, C, 1.0f / sqrtf((float)C), 0.0f);
            y->kv_norm = gen(r, mid + 4, HB_F32, dc, 0.1f, 1.0f);
            y->wkv_b = gen2(r, mid + 5, dt, H * (m->qk_nope_dim + m->v_head_dim), dc, 1.0f / sqrtf((float)dc), 0.0f);
            y->proj_w = gen2(r, mid + 6, dt, C, hdv, 1.0f / sqrtf((float)hdv), 0.0f);
        } else {
        y->qkv_w = gen2(r, id + 2, dt, dqkv, C, 1.0f / sqrtf((float)C), 0.0f);
        y->qkv_b = m->bias ? gen(r, id + 3, HB_F32, dqkv, 0.02f, 0.0f) : NULL;
        y->proj_w = gen2(r, id + 4, dt, C, r->Hq * r->D, 1.0f / sqrtf((float)(r->Hq * r->D)), 0.0f);
        y->proj_b = m->bias ? gen(r, id + 5, HB_F32, C, 0.02f, 0.0f) : NULL;
        }
        y->ln2_w = gen(r, id + 6, HB_F32, C, 0.1f, 1.0f);
        y->ln2_b = ln ? gen(r, id + 7, HB_F32, C, 0.02f, 0.0f) : NULL;
        /* the FFN width of this layer, from the model's own definition (model.h) */
        const int moe = m->n_experts > 0 && !m->dense_twin && l >= m->first_k_dense;
        int64_t Fl = !m->n_experts || l < m->first_k_dense ? m->ffn_dim
                     : m->dense_twin == HB_TWIN_TOTAL    ? (m->n_experts + m->n_shared) * m->moe_ffn_dim
                     : m->dense_twin == HB_TWIN_ACTIVE   ? (m->top_k + m->n_shared) * m->moe_ffn_dim
                                                         : m->n_shared * m->moe_ffn_dim;
        y->F = Fl;
        dff = sw ? 2 * Fl : Fl;
        if (Fl) {
            y->fc_w = gen2(r, id + 8, dt, dff, C, 1.0f / sqrtf((float)C), 0.0f);
            y->fc_b = m->bias ? gen(r, id + 9, HB_F32, dff, 0.02f, 0.0f) : NULL;
            y->fc2_w = gen2(r, id + 10, dt, C, Fl, 1.0f / sqrtf((float)Fl), 0.0f);
            y->fc2_b = m->bias ? gen(r, id + 11, HB_F32, C, 0.02f, 0.0f) : NULL;
        }
        if (moe) {
            const int64_t E = m->n_experts, Fe = m->moe_ffn_dim;
            y->router_w = gen2(r, id + 12, edt, E, C, 1.0f / sqrtf((float)C), 0.0f);
            y->router_b = m->router_bias ? gen(r, id + 13, HB_F32, E, 0.02f, 0.0f) : NULL;
            y->exp_up = gen2(r, id + 14, dt, E * 2 * Fe, C, 1.0f / sqrtf((float)C), 0.0f);
            y->exp_down = gen2(r, id + 15, dt, E * C, Fe, 1.0f / sqrtf((float)Fe), 0.0f);
        }
    }
}

static void ref_free(ref_model *r) {
    free(r->wte), free(r->wpe), free(r->lnf_w), free(r->lnf_b);
    if (!r->m.tied) free(r->lm);
    for (int64_t l = 0; l < r->L; l++) {
        struct ref_layer *y = &r->layer[l];
        double *p[] = {y->ln1_w, y->ln1_b, y->qkv_w, y->qkv_b, y->proj_w, y->proj_b, y->ln2_w, y->ln2_b,
                       y->fc_w,  y->fc_b,  y->fc2_w, y->fc2_b, y->router_w, y->router_b, y->exp_up, y->exp_down,
                       y->wq_a, y->q_norm, y->wq, y->wkv_a, y->kv_norm, y->wkv_b};
        for (int i = 0; i < HB_ARRAY_LEN(p); i++) free(p[i]);
    }
    free(r->layer);
}

static void ref_norm(const ref_model *r, double *out, const double *x, const double *w, const double *b) {
    int64_t C = r->C;
    if (r->m.norm == HB_NORM_LAYERNORM) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < C; i++) mu += x[i];
        mu /= C;
        for (int64_t i = 0; i < C; i++) var += (x[i] - mu) * (x[i] - mu);
        var /= C;
        for (int64_t i = 0; i < C; i++) out[i] = (x[i] - mu) / sqrt(var + r->m.norm_eps) * w[i] + b[i];
    } else {
        double ss = 0;
        for (int64_t i = 0; i < C; i++) ss += x[i] * x[i];
        double s = 1.0 / sqrt(ss / C + r->m.norm_eps);
        for (int64_t i = 0; i < C; i++) out[i] = x[i] * s * w[i];
    }
}

/* y (n_out) = W (n_out, n_in) x + b */
static void ref_linear(double *y, const double *W, const double *b, const double *x, int64_t n_out, int64_t n_in) {
    for (int64_t o = 0; o < n_out; o++) {
        double s = b ? b[o] : 0;
        for (int64_t i = 0; i < n_in; i++) s += W[o * n_in + i] * x[i];
        y[o] = s;
    }
}

static void ref_rope(double *v, int64_t D, int64_t pos, double theta) {
    for (int64_t i = 0; i < D / 2; i++) {
        double a = (double)pos * pow(theta, -2.0 * (double)i / (double)D);
        double x0 = v[i], x1 = v[i + D / 2];
        v[i] = x0 * cos(a) - x1 * sin(a);
        v[i + D / 2] = x0 * sin(a) + x1 * cos(a);
    }
}

/* The attention's operands (ops.h): k and v as the cache stores them (an fp8 cache: e4m3 of
 * x / 1, its static scale), q and p rounded to the cache's compute type (bf16 for fp8). */
static double kv_store_round(const ref_model *r, double x) {
    if (r->kvt == HB_BF16) return hb_bf16_to_f32(hb_f32_to_bf16((float)x));
    if (r->kvt == HB_F16) return hb_f16_to_f32(hb_f32_to_f16((float)x));
    if (r->kvt == HB_FP8_E4M3) return hb_e4m3_to_f32(hb_f32_to_e4m3((float)x));
    return x;
}
static double kv_op_round(const ref_model *r, double x) {
    if (r->kvt == HB_BF16 || r->kvt == HB_FP8_E4M3) return hb_bf16_to_f32(hb_f32_to_bf16((float)x));
    if (r->kvt == HB_F16) return hb_f16_to_f32(hb_f32_to_f16((float)x));
    return x;
}

/* The reference's KV cache of one sequence: (L, S, Hkv*D) as stored (kv_store_round). */
typedef struct ref_cache {
    double *k, *v;
    int64_t S;
} ref_cache;

static void ref_cache_init(const ref_model *r, ref_cache *kc, int64_t S) {
    kc->S = S;
    const int64_t w = r->m.kv_lora_rank > 0 ? r->m.kv_lora_rank + r->m.qk_rope_dim : r->Hkv * r->D;
    kc->k = calloc((size_t)(r->L * S * w), sizeof *kc->k);
    kc->v = calloc((size_t)(r->L * S * w), sizeof *kc->v);
}
static void ref_cache_free(ref_cache *kc) { free(kc->k), free(kc->v); }

/* The experts a token picks (model.h, ops.h): scores softmax / sigmoid, selection by score +
 * bias within the topk_group best groups (a group's score: the sum of its two best), ties to
 * the lowest index; weights the unbiased scores, renormalised if norm_topk, times the scale.
 * Written with sorts, independently of the library's selection loop. */
typedef struct ref_key { double v; int64_t i; } ref_key;
static int ref_key_cmp(const void *a, const void *b) {
    const ref_key *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}
static void ref_route(const hb_model *m, const double *logit, const double *bias, int64_t *ids, double *w) {
    const int64_t E = m->n_experts, k = m->top_k;
    double *s = malloc((size_t)E * sizeof *s), mx = -INFINITY, sum = 0;
    ref_key *key = malloc((size_t)E * sizeof *key);
    for (int64_t e = 0; e < E; e++) mx = logit[e] > mx ? logit[e] : mx;
    for (int64_t e = 0; e < E; e++) {
        s[e] = m->router == HB_ROUTER_SOFTMAX ? exp(logit[e] - mx) : 1 / (1 + exp(-logit[e]));
        sum += s[e];
    }
    if (m->router == HB_ROUTER_SOFTMAX)
        for (int64_t e = 0; e < E; e++) s[e] /= sum;
    int64_t G = m->n_group > 1 ? m->n_group : 1, per = E / G;
    ref_key gk[256];
    for (int64_t g = 0; g < G; g++) {
        for (int64_t i = 0; i < per; i++) key[i] = (ref_key){s[g * per + i] + (bias ? bias[g * per + i] : 0), i};
        qsort(key, (size_t)per, sizeof *key, ref_key_cmp);
        gk[g] = (ref_key){per > 1 ? key[0].v + key[1].v : key[0].v, g};
    }
    qsort(gk, (size_t)G, sizeof *gk, ref_key_cmp);
    int64_t n = 0;
    for (int64_t e = 0; e < E; e++) {
        int kept = G == 1;
        for (int64_t j = 0; j < (G > 1 ? m->topk_group : 0); j++) kept |= gk[j].i == e / per;
        if (kept) key[n++] = (ref_key){s[e] + (bias ? bias[e] : 0), e};
    }
    qsort(key, (size_t)n, sizeof *key, ref_key_cmp);
    double ws = 0;
    for (int64_t j = 0; j < k; j++) ws += (w[j] = s[ids[j] = key[j].i]);
    for (int64_t j = 0; j < k; j++) w[j] = (m->norm_topk ? w[j] / (ws + 1e-20) : w[j]) * m->routed_scale;
    free(s), free(key);
}

/* x (n, C) += the routed experts of h (n, C): each token through its top_k SwiGLU experts,
 * weighted. fp8 activations are quantised per expert (each expert's rows are one matmul). */
static void ref_moe(const ref_model *r, const struct ref_layer *y, const double *h, int64_t n, double *x) {
    const hb_model *m = &r->m;
    const int64_t C = r->C, E = m->n_experts, k = m->top_k, Fe = m->moe_ffn_dim;
    int64_t *ids = malloc((size_t)(n * k) * sizeof *ids);
    double *w = malloc((size_t)(n * k) * sizeof *w), *lg = malloc((size_t)E * sizeof *lg);
    double *u = malloc((size_t)(2 * Fe) * sizeof *u), *a = malloc((size_t)Fe * sizeof *a);
    double *o = malloc((size_t)C * sizeof *o);
    for (int64_t t = 0; t < n; t++) {
        ref_linear(lg, y->router_w, NULL, h + t * C, E, C);
        ref_route(m, lg, y->router_b, ids + t * k, w + t * k);
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = ids[t * k + j];
            ref_linear(u, y->exp_up + e * 2 * Fe * C, NULL, h + t * C, 2 * Fe, C);
            for (int64_t i = 0; i < Fe; i++) a[i] = u[i] / (1 + exp(-u[i])) * u[Fe + i];
            ref_linear(o, y->exp_down + e * C * Fe, NULL, a, C, Fe);
            for (int64_t i = 0; i < C; i++) x[t * C + i] += w[t * k + j] * o[i];
        }
    free(ids), free(w), free(lg), free(u), free(a), free(o);
}

/* RMS norm of x (n) with weights w, in place. */
static void ref_rms(double *x, const double *w, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    const double s = 1.0 / sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; i++) x[i] *= s * w[i];
}

/* Naive MLA of rows h (n, C) at positions pos0.., x += its output: the latent (normalised c,
 * roped k_pe) into the cache lat (S, dc + dr) as stored, then for every head K and V
 * materialised from each cached latent (k_nope = W_UK c, v = W_UV c) and plain attention.
 * Queries: all heads' nope parts then all heads' rope parts (workloads/transformer.c). */
static void ref_mla(const ref_model *r, const struct ref_layer *y, double *lat, int64_t S, const double *h,
                    int64_t pos0, int64_t n, double *x) {
    const hb_model *m = &r->m;
    const int64_t C = r->C, H = m->n_heads, dn = m->qk_nope_dim, dr = m->qk_rope_dim, dv = m->v_head_dim;
    const int64_t dc = m->kv_lora_rank, Dl = dc + dr, ql = m->q_lora_rank, dq = H * (dn + dr);
    double *q = malloc((size_t)(n * dq) * sizeof *q), *cq = malloc((size_t)(ql > 0 ? ql : 1) * sizeof *cq);
    double *row = malloc((size_t)Dl * sizeof *row), *att = malloc((size_t)(H * dv) * sizeof *att);
    double *kn = malloc((size_t)dn * sizeof *kn), *v = malloc((size_t)(S * dv) * sizeof *v);
    double *sc = malloc((size_t)S * sizeof *sc), *o = malloc((size_t)C * sizeof *o);
    for (int64_t t = 0; t < n; t++) {
        if (ql) {
            ref_linear(cq, y->wq_a, NULL, h + t * C, ql, C);
            ref_rms(cq, y->q_norm, ql, m->norm_eps);
            ref_linear(q + t * dq, y->wq, NULL, cq, dq, ql);
        } else {
            ref_linear(q + t * dq, y->wq, NULL, h + t * C, dq, C);
        }
        for (int64_t hh = 0; hh < H; hh++) ref_rope(q + t * dq + H * dn + hh * dr, dr, pos0 + t, m->rope_theta);
        ref_linear(row, y->wkv_a, NULL, h + t * C, Dl, C);
        ref_rms(row, y->kv_norm, dc, m->norm_eps);
        ref_rope(row + dc, dr, pos0 + t, m->rope_theta);
        for (int64_t i = 0; i < Dl; i++) lat[(pos0 + t) * Dl + i] = kv_store_round(r, row[i]);
    }
    for (int64_t t = 0; t < n; t++) {
        const int64_t L = pos0 + t + 1;
        for (int64_t hh = 0; hh < H; hh++) {
            const double *Wk = y->wkv_b + hh * (dn + dv) * dc, *Wv = Wk + dn * dc;
            const double *qn = q + t * dq + hh * dn, *qr = q + t * dq + H * dn + hh * dr;
            double mx = -INFINITY, den = 0;
            for (int64_t s = 0; s < L; s++) {
                const double *c = lat + s * Dl;
                ref_linear(kn, Wk, NULL, c, dn, dc);
                ref_linear(v + s * dv, Wv, NULL, c, dv, dc);
                double d = 0;
                for (int64_t i = 0; i < dn; i++) d += qn[i] * kn[i];
                for (int64_t i = 0; i < dr; i++) d += qr[i] * c[dc + i];
                sc[s] = d / sqrt((double)(dn + dr));
                if (sc[s] > mx) mx = sc[s];
            }
            for (int64_t s = 0; s < L; s++) den += (sc[s] = exp(sc[s] - mx));
            for (int64_t j = 0; j < dv; j++) {
                double a = 0;
                for (int64_t s = 0; s < L; s++) a += sc[s] * v[s * dv + j];
                att[hh * dv + j] = a / den;
            }
        }
        ref_quant_act(r, att, 1, H * dv);
        ref_linear(o, y->proj_w, NULL, att, C, H * dv);
        for (int64_t i = 0; i < C; i++) x[t * C + i] += o[i];
    }
    free(q), free(cq), free(row), free(att), free(kn), free(v), free(sc), free(o);
}

/* Positions pos0..pos0+n-1 of one sequence (tok: its tokens from position 0) as one forward
 * (the rows of each matmul input quantised together); logits (V) of the last position. */
static void ref_chunk(const ref_model *r, ref_cache *kc, const int32_t *tok, int64_t pos0, int64_t n,
                      double *logits) {
    const int64_t C = r->C, D = r->D, Hq = r->Hq, Hkv = r->Hkv;
    const int64_t dq = Hq * D, dkv = Hkv * D, dqkv = dq + 2 * dkv, S = kc->S;
    const int sw = r->m.act == HB_ACT_SWIGLU;
    double *x = calloc((size_t)(n * C), sizeof *x), *h = malloc((size_t)(n * C) * sizeof *h);
    double *qkv = malloc((size_t)(n * dqkv) * sizeof *qkv), *att = malloc((size_t)(n * dq) * sizeof *att);
    int64_t F = 1;
    for (int64_t l = 0; l < r->L; l++) F = r->layer[l].F > F ? r->layer[l].F : F;
    double *ff = malloc((size_t)(n * 2 * F) * sizeof *ff), *ffa = malloc((size_t)(n * F) * sizeof *ffa);
    double *tmp = malloc((size_t)C * sizeof *tmp), *sc = malloc((size_t)S * sizeof *sc);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < C; i++)
            x[t * C + i] = r->wte[tok[pos0 + t] * C + i] + (r->wpe ? r->wpe[(pos0 + t) * C + i] : 0);
    for (int64_t l = 0; l < r->L; l++) {
        const struct ref_layer *y = &r->layer[l];
        double *kl = kc->k + l * S * dkv, *vl = kc->v + l * S * dkv;
        for (int64_t t = 0; t < n; t++) ref_norm(r, h + t * C, x + t * C, y->ln1_w, y->ln1_b);
        ref_quant_act(r, h, n, C);
        if (y->wkv_b) {
            ref_mla(r, y, kc->k + l * S * (r->m.kv_lora_rank + r->m.qk_rope_dim), S, h, pos0, n, x);
            for (int64_t t = 0; t < n; t++) ref_norm(r, h + t * C, x + t * C, y->ln2_w, y->ln2_b);
            goto ffn;
        }
        for (int64_t t = 0; t < n; t++) {
            double *row = qkv + t * dqkv;
            ref_linear(row, y->qkv_w, y->qkv_b, h + t * C, dqkv, C);
            if (r->m.pos == HB_POS_ROPE) {
                for (int64_t hh = 0; hh < Hq; hh++) ref_rope(row + hh * D, D, pos0 + t, r->m.rope_theta);
                for (int64_t hh = 0; hh < Hkv; hh++) ref_rope(row + dq + hh * D, D, pos0 + t, r->m.rope_theta);
            }
            for (int64_t i = 0; i < dkv; i++) {
                kl[(pos0 + t) * dkv + i] = kv_store_round(r, row[dq + i]);
                vl[(pos0 + t) * dkv + i] = kv_store_round(r, row[dq + dkv + i]);
            }
        }
        for (int64_t t = 0; t < n; t++)
            for (int64_t hh = 0; hh < Hq; hh++) {
                const int64_t g = hh / (Hq / Hkv), L = pos0 + t + 1;
                const double *q = qkv + t * dqkv + hh * D;
                double mx = -INFINITY, den = 0;
                for (int64_t s2 = 0; s2 < L; s2++) {
                    const double *k = kl + s2 * dkv + g * D;
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += kv_op_round(r, q[i]) * k[i];
                    sc[s2] = d / sqrt((double)D);
                    if (sc[s2] > mx) mx = sc[s2];
                }
                for (int64_t s2 = 0; s2 < L; s2++) den += (sc[s2] = exp(sc[s2] - mx));
                double *o = att + t * dq + hh * D;
                for (int64_t i = 0; i < D; i++) o[i] = 0;
                for (int64_t s2 = 0; s2 < L; s2++) {
                    const double *v = vl + s2 * dkv + g * D;
                    for (int64_t i = 0; i < D; i++) o[i] += kv_op_round(r, sc[s2]) / den * v[i];
                }
            }
        ref_quant_act(r, att, n, dq);
        for (int64_t t = 0; t < n; t++) {
            ref_linear(tmp, y->proj_w, y->proj_b, att + t * dq, C, dq);
            for (int64_t i = 0; i < C; i++) x[t * C + i] += tmp[i];
            ref_norm(r, h + t * C, x + t * C, y->ln2_w, y->ln2_b);
        }
    ffn:
        ref_quant_act(r, h, n, C);
        if (y->F) {
            const int64_t Fl = y->F;
            for (int64_t t = 0; t < n; t++) {
                double *f = ff + t * 2 * Fl;
                ref_linear(f, y->fc_w, y->fc_b, h + t * C, sw ? 2 * Fl : Fl, C);
                for (int64_t i = 0; i < Fl; i++) {
                    double a = f[i];
                    ffa[t * Fl + i] = sw ? a / (1 + exp(-a)) * f[Fl + i]
                                         : 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
                }
            }
            ref_quant_act(r, ffa, n, Fl);
            for (int64_t t = 0; t < n; t++) {
                ref_linear(tmp, y->fc2_w, y->fc2_b, ffa + t * Fl, C, Fl);
                for (int64_t i = 0; i < C; i++) x[t * C + i] += tmp[i];
            }
        }
        if (y->router_w) ref_moe(r, y, h, n, x);
    }
    ref_norm(r, h, x + (n - 1) * C, r->lnf_w, r->lnf_b);
    ref_linear(logits, r->lm, NULL, h, r->V, C);
    free(x), free(h), free(qkv), free(att), free(ff), free(ffa), free(tmp), free(sc);
}

/* Logits (V) of the last token of one sequence of T tokens, recomputed from scratch. */
static void ref_forward(const ref_model *r, const int32_t *tok, int64_t T, double *logits) {
    ref_cache kc;
    ref_cache_init(r, &kc, T);
    ref_chunk(r, &kc, tok, 0, T, logits);
    ref_cache_free(&kc);
}

/* max |a - b| / max |b| over one row */
static double rel_err(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates as failure */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

/* A model recipe: weight dtype, fp8 scales, block edge, KV cache dtype. */
typedef struct recipe {
    hb_dtype dt;
    hb_qkind quant;
    int64_t block;
    hb_kvt kv;
} recipe;

static const char *recipe_name(const recipe *q, char *buf, size_t n) {
    snprintf(buf, n, "%s%s kv=%s", hb_dtype_name(q->dt), q->quant == HB_QUANT_BLOCK ? "-block" : "",
             hb_kvt_name(q->kv));
    return buf;
}

static hb_case make_case(const hb_model *m, hb_workload_kind w, const recipe *q, int64_t B, int64_t P, int64_t G) {
    hb_case c = {0};
    c.workload = w;
    c.model = *m;
    c.model.n_layers_full = m->n_layers;
    c.dtype = q->dt;
    c.quant = q->quant;
    c.quant_block = q->block;
    c.kv_dtype = q->kv;
    c.batch = B, c.prompt = P, c.gen = G;
    c.seed = 77;
    c.warmup_iters = 0, c.min_iters = 1, c.min_seconds = 0, c.max_iters = 10;
    return c;
}

static int32_t *prompt_tokens(const hb_case *c) {
    int64_t n = c->batch * c->prompt;
    int32_t *t = malloc((size_t)n * sizeof *t);
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(hb_rng_u64(hb_rng_u64(c->seed, 5), (uint64_t)i) % (uint64_t)c->model.vocab);
    return t;
}

/* A per-tensor activation scale spans all rows of a matmul: the batch too, which the
 * per-sequence reference does not model; such recipes are checked with B = 1. */
static int rows_coupled(const recipe *q) { return q->dt == HB_FP8_E4M3 && q->quant != HB_QUANT_BLOCK; }

static void check_prefill(hb_backend *be, const hb_model *m, recipe q, double tol) {
    char rn[64];
    recipe_name(&q, rn, sizeof rn);
    hb_case c = make_case(m, HB_WL_PREFILL, &q, rows_coupled(&q) ? 1 : 2, 11, 0);
    hb_workload *w = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_workload_setup(be, &c, &w, &err) == HB_OK, "%s %s: %s", m->name, rn, err.msg);
    if (!w) return;
    CHECK(hb_workload_step(w) == HB_OK);
    float *out = NULL;
    int64_t n = 0;
    CHECK(hb_workload_output(w, &out, &n) == HB_OK);
    CHECK(n == c.batch * m->vocab);
    ref_model r;
    ref_build(&r, &c);
    int32_t *tok = prompt_tokens(&c);
    double *ref = malloc((size_t)m->vocab * sizeof *ref);
    for (int64_t b = 0; b < c.batch; b++) {
        ref_forward(&r, tok + b * c.prompt, c.prompt, ref);
        double e = rel_err(out + b * m->vocab, ref, m->vocab);
        CHECK_MSG(e < tol, "prefill %s %s seq %lld: rel err %.3g >= %.3g", m->name, rn, (long long)b, e, tol);
    }
    /* the fingerprint is the first step's logits */
    double fp[HB_FP_LEN], s = 0;
    CHECK(hb_workload_fingerprint(w, fp) == HB_OK);
    for (int64_t i = 0; i < n; i++) s += out[i];
    CHECK_NEAR(fp[0], s, 1e-6 * (fabs(s) + 1));
    free(ref), free(tok), free(out);
    ref_free(&r);
    hb_workload_free(w);
}

/* Decode: each step's logits equal the reference recomputing prompt + generated tokens
 * (from scratch, or - where a per-tensor activation scale couples the rows of a forward -
 * with its own cache, prompt first and then one token per step, as the workload runs). */
static void check_decode(hb_backend *be, const hb_model *m, recipe q, double tol) {
    char rn[64];
    recipe_name(&q, rn, sizeof rn);
    const int64_t B = rows_coupled(&q) ? 1 : 2, P = 5, G = 6;
    hb_case c = make_case(m, HB_WL_DECODE, &q, B, P, G);
    hb_workload *w = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_workload_setup(be, &c, &w, &err) == HB_OK, "%s %s: %s", m->name, rn, err.msg);
    if (!w) return;
    ref_model r;
    ref_build(&r, &c);
    int32_t *seq = malloc((size_t)(B * (P + G + 1)) * sizeof *seq);
    int32_t *tok = prompt_tokens(&c);
    double *ref = malloc((size_t)m->vocab * sizeof *ref);
    ref_cache *kc = calloc((size_t)B, sizeof *kc);
    for (int64_t b = 0; b < B; b++) {
        memcpy(seq + b * (P + G + 1), tok + b * P, (size_t)P * sizeof *seq);
        ref_cache_init(&r, &kc[b], P + G + 1);
        ref_chunk(&r, &kc[b], seq + b * (P + G + 1), 0, P, ref); /* the first token: argmax of the prompt */
        int64_t best = 0;
        for (int64_t v = 1; v < m->vocab; v++) if (ref[v] > ref[best]) best = v;
        seq[b * (P + G + 1) + P] = (int32_t)best;
    }
    for (int64_t s = 0; s < G; s++) {
        CHECK(hb_workload_step(w) == HB_OK);
        float *out = NULL;
        int64_t n;
        CHECK(hb_workload_output(w, &out, &n) == HB_OK);
        for (int64_t b = 0; b < B; b++) {
            int32_t *sq = seq + b * (P + G + 1);
            if (rows_coupled(&q)) ref_chunk(&r, &kc[b], sq, P + s, 1, ref);
            else ref_forward(&r, sq, P + s + 1, ref);
            double e = rel_err(out + b * m->vocab, ref, m->vocab);
            CHECK_MSG(e < tol, "decode %s %s step %lld seq %lld: rel err %.3g", m->name, rn,
                      (long long)s, (long long)b, e);
            int64_t best = 0; /* next input: argmax of the library's logits (temperature 0) */
            for (int64_t v = 1; v < m->vocab; v++) if (out[b * m->vocab + v] > out[b * m->vocab + best]) best = v;
            sq[P + s + 1] = (int32_t)best;
        }
        free(out);
    }
    for (int64_t b = 0; b < B; b++) ref_cache_free(&kc[b]);
    free(kc), free(seq), free(tok), free(ref);
    ref_free(&r);
    hb_workload_free(w);
}

/* A recipe vs f32 weights: the same function within the recipe's tolerance, and not the same
 * numbers (the recipe was applied). */
static void check_vs_f32(hb_backend *be, const hb_model *m, recipe q, double lo, double hi) {
    char rn[64];
    recipe_name(&q, rn, sizeof rn);
    float *o[2] = {NULL, NULL};
    int64_t n = 0;
    const recipe f32 = {HB_F32, HB_QUANT_NONE, 0, HB_KV_AUTO};
    for (int i = 0; i < 2; i++) {
        hb_case c = make_case(m, HB_WL_PREFILL, i ? &q : &f32, 1, 9, 0);
        hb_workload *w = NULL;
        CHECK(hb_workload_setup(be, &c, &w, NULL) == HB_OK);
        if (!w) return;
        CHECK(hb_workload_step(w) == HB_OK);
        CHECK(hb_workload_output(w, &o[i], &n) == HB_OK);
        hb_workload_free(w);
    }
    double *ref = malloc((size_t)n * sizeof *ref);
    for (int64_t i = 0; i < n; i++) ref[i] = o[0][i];
    double e = rel_err(o[1], ref, n);
    CHECK_MSG(e < hi && e > lo, "%s %s vs f32 logits: rel err %.3g (expected %g..%g)", m->name, rn, e, lo, hi);
    free(ref), free(o[0]), free(o[1]);
}

/* Memory: an fp8 model's weights take about half the bytes of bf16 (matrices 1 byte, scales
 * 4 bytes per tensor or block; embeddings stay bf16), an fp8 KV cache half of bf16. */
static void check_bytes(const hb_model *m) {
    const recipe bf = {HB_BF16, HB_QUANT_NONE, 0, HB_KV_AUTO}, f8 = {HB_FP8_E4M3, HB_QUANT_TENSOR, 0, HB_KV_FP8},
                 f8b = {HB_FP8_E4M3, HB_QUANT_BLOCK, 16, HB_KV_AUTO};
    hb_case cb = make_case(m, HB_WL_DECODE, &bf, 2, 64, 8), c8 = make_case(m, HB_WL_DECODE, &f8, 2, 64, 8);
    hb_case c8b = make_case(m, HB_WL_DECODE, &f8b, 2, 64, 8);
    hb_tf_layout yb, y8, y8b;
    CHECK(hb_tf_layout_init(&cb, 1, &yb, NULL) == HB_OK);
    CHECK(hb_tf_layout_init(&c8, 1, &y8, NULL) == HB_OK);
    CHECK(hb_tf_layout_init(&c8b, 1, &y8b, NULL) == HB_OK);
    /* block-matrix bytes: bf16 2 per weight, fp8 1 per weight + scales */
    int64_t mat = 0, n8 = 0, s8 = 0, n8b = 0, s8b = 0;
    for (int i = 0; i < yb.n_tensors; i++)
        if (yb.t[i].layer >= 0 && yb.t[i].ndim == 2 && yb.t[i].arena == HB_ARENA_WEIGHTS) mat += yb.t[i].ne[0] * yb.t[i].ne[1];
    for (int i = 0; i < y8.n_tensors; i++)
        if (y8.t[i].q != HB_QUANT_NONE && y8.t[i].arena == HB_ARENA_WEIGHTS) n8++, s8 += y8.t[i].scale_off >= 0;
    for (int i = 0; i < y8b.n_tensors; i++)
        if (y8b.t[i].q == HB_QUANT_BLOCK) {
            n8b++;
            s8b += ((y8b.t[i].ne[0] + 15) / 16) * ((y8b.t[i].ne[1] + 15) / 16);
        }
    CHECK(n8 == 4 * m->n_layers && s8 == n8 && n8b == n8);
    CHECK_MSG(yb.weight_bytes - y8.weight_bytes >= mat - 4 * 256 * m->n_layers,
              "fp8 weights %lld bytes vs bf16 %lld (matrices %lld)", (long long)y8.weight_bytes,
              (long long)yb.weight_bytes, (long long)mat);
    CHECK(y8b.weight_bytes > y8.weight_bytes && y8b.weight_bytes <= y8.weight_bytes + 4 * s8b + 256 * n8b);
    CHECK(y8.kv_bytes * 2 <= yb.kv_bytes + 2 * 2 * 256 * m->n_layers && y8.kv_bytes * 2 >= yb.kv_bytes);
    hb_tf_layout_free(&yb), hb_tf_layout_free(&y8), hb_tf_layout_free(&y8b);
}

int main(void) {
    hb_backend *be = NULL;
    hb_err err = {{0}};
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open cpu backend: %s\n", err.msg);
        return 1;
    }
    hb_model tiny, gpt;
    CHECK(hb_model_find("tiny", &tiny, NULL) == HB_OK);
    /* a gpt2-shaped model small enough for a naive reference: layernorm, gelu, learned
     * positions, tied embeddings, biases */
    CHECK(hb_model_find("gpt2-124m", &gpt, NULL) == HB_OK);
    snprintf(gpt.name, sizeof gpt.name, "gpt2-mini");
    gpt.dim = 48, gpt.n_layers = 2, gpt.n_heads = 3, gpt.n_kv_heads = 3, gpt.ffn_dim = 96;
    gpt.vocab = 301, gpt.max_seq = 64;

    const recipe f32 = {HB_F32, HB_QUANT_NONE, 0, HB_KV_AUTO}, bf16 = {HB_BF16, HB_QUANT_NONE, 0, HB_KV_AUTO};
    const recipe f16 = {HB_F16, HB_QUANT_NONE, 0, HB_KV_AUTO};
    const recipe fp8 = {HB_FP8_E4M3, HB_QUANT_TENSOR, 0, HB_KV_AUTO};
    const recipe fp8b = {HB_FP8_E4M3, HB_QUANT_BLOCK, 16, HB_KV_AUTO};    /* tiny: 64 = 4 x 16 */
    const recipe fp8b_g = {HB_FP8_E4M3, HB_QUANT_BLOCK, 16, HB_KV_AUTO};  /* gpt2-mini: 48 = 3 x 16 */
    const recipe f32_kv8 = {HB_F32, HB_QUANT_NONE, 0, HB_KV_FP8}, bf16_kvf32 = {HB_BF16, HB_QUANT_NONE, 0, HB_KV_F32};
    const recipe fp8_kv8 = {HB_FP8_E4M3, HB_QUANT_TENSOR, 0, HB_KV_FP8};
    /* fp8 tolerances: the reference computes in double from the same quantised values; a code
     * can still round the other way when an activation lies within f32 noise of a rounding
     * boundary (~1e-5 per element), which moves a logit by ~1e-3 */
    check_prefill(be, &tiny, f32, 1e-4);
    check_prefill(be, &tiny, bf16, 1e-4);
    check_prefill(be, &tiny, f16, 1e-4);
    check_prefill(be, &tiny, fp8, 5e-3);
    check_prefill(be, &tiny, fp8b, 5e-3);
    check_prefill(be, &tiny, f32_kv8, 1e-4);
    check_prefill(be, &tiny, bf16_kvf32, 1e-4);
    check_prefill(be, &gpt, f32, 1e-4);
    check_prefill(be, &gpt, bf16, 1e-4);
    check_prefill(be, &gpt, fp8, 5e-3);
    check_prefill(be, &gpt, fp8b_g, 5e-3);
    check_decode(be, &tiny, f32, 1e-4);
    check_decode(be, &tiny, bf16, 1e-4);
    check_decode(be, &tiny, fp8, 5e-3);
    check_decode(be, &tiny, fp8b, 5e-3);
    check_decode(be, &tiny, fp8_kv8, 5e-3);
    check_decode(be, &gpt, f32, 1e-4);
    check_decode(be, &gpt, fp8b_g, 5e-3);
    check_vs_f32(be, &tiny, bf16, 1e-5, 3e-2);
    check_vs_f32(be, &gpt, bf16, 1e-5, 3e-2);
    check_vs_f32(be, &tiny, fp8, 1e-3, 0.25);
    check_vs_f32(be, &tiny, fp8b, 1e-3, 0.25);
    check_bytes(&tiny);

    /* MoE: tiny-moe is Mixtral/Qwen-shaped (softmax top-2 of 8, renormalised) with a shared
     * expert and a first dense layer; ds-mini is DeepSeek-V3-shaped routing (sigmoid scores,
     * score-correction bias, 4 groups of 4 with 2 kept, top-3, unnormalised x 2.5, two
     * shared experts); and the two dense twins of tiny-moe */
    hb_model moe, ds, twin_t, twin_a;
    CHECK(hb_model_find("tiny-moe", &moe, NULL) == HB_OK);
    ds = moe;
    snprintf(ds.name, sizeof ds.name, "ds-mini");
    ds.n_experts = 16, ds.top_k = 3, ds.n_shared = 2, ds.moe_ffn_dim = 16, ds.router = HB_ROUTER_SIGMOID;
    ds.router_bias = 1, ds.n_group = 4, ds.topk_group = 2, ds.norm_topk = 0, ds.routed_scale = 2.5f;
    CHECK(hb_model_validate(&ds, NULL) == HB_OK);
    CHECK(hb_model_dense_twin(&moe, HB_TWIN_TOTAL, &twin_t, NULL) == HB_OK);
    CHECK(hb_model_dense_twin(&moe, HB_TWIN_ACTIVE, &twin_a, NULL) == HB_OK);
    CHECK(hb_model_dense_twin(&tiny, HB_TWIN_TOTAL, &twin_a, NULL) == HB_ERR_INPUT); /* dense: no twin */
    CHECK(hb_model_dense_twin(&moe, HB_TWIN_ACTIVE, &twin_a, NULL) == HB_OK);
    check_prefill(be, &moe, f32, 1e-4);
    check_prefill(be, &moe, bf16, 1e-4);
    check_prefill(be, &ds, f32, 1e-4);
    check_prefill(be, &twin_t, f32, 1e-4);
    check_prefill(be, &twin_a, f32, 1e-4);
    check_decode(be, &moe, f32, 1e-4);
    check_decode(be, &moe, bf16, 1e-4);
    check_decode(be, &ds, f32, 1e-4);

    /* MLA: tiny-mla (q_lora bottleneck, DeepSeek-V3 routing, a dense first layer) and a
     * DeepSeek-V2-Lite-shaped variant without q_lora; decode runs the absorbed path against
     * the reference's materialised K/V recomputed from scratch at every step */
    hb_model mla, mla2;
    CHECK(hb_model_find("tiny-mla", &mla, NULL) == HB_OK);
    mla2 = mla;
    snprintf(mla2.name, sizeof mla2.name, "mla-nolora");
    mla2.q_lora_rank = 0, mla2.router = HB_ROUTER_SOFTMAX, mla2.router_bias = 0, mla2.n_group = 0;
    mla2.topk_group = 0, mla2.norm_topk = 0, mla2.routed_scale = 1.0f;
    CHECK(hb_model_validate(&mla2, NULL) == HB_OK);
    check_prefill(be, &mla, f32, 1e-4);
    check_prefill(be, &mla, bf16, 1e-4);
    check_prefill(be, &mla2, f32, 1e-4);
    check_decode(be, &mla, f32, 1e-4);
    check_decode(be, &mla, bf16, 1e-4);
    check_decode(be, &mla2, f32, 1e-4);
    hb_backend_close(be);
    HB_TEST_END();
}
