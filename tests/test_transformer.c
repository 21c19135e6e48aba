/* test_transformer.c - whole-model checks of the prefill and decode workloads on the CPU
 * backend against a naive double-precision transformer written here from the spec:
 *  - prefill logits == reference (f32 and bf16 weights; a llama-like and a gpt2-like model);
 *  - decode with the KV cache == the reference recomputing the whole sequence, at every step;
 *  - bf16 weights stay within bf16 tolerance of the f32 model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "hbtest.h"
#include "workloads/transformer.h" // defines: hb_tf_kv_dtype
#include "workloads/workload.h"

/* ---- the reference: weights regenerated from the documented init scheme ---- */
typedef struct ref_model {
    hb_model m;
    hb_dtype dt;
    uint64_t seed;
    int64_t C, D, Hq, Hkv, F, V, L;
    double *wte, *wpe, *lm, *lnf_w, *lnf_b;
    struct ref_layer {
        double *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fc2_w, *fc2_b;
    } *layer;
} ref_model;

/* Same values as the backend's fill_random: offset + scale * pm1, cast to the storage dtype. */
static double *gen(const ref_model *r, uint64_t id, hb_dtype dt, int64_t n, float scale, float offset) {
    double *x = malloc((size_t)n * sizeof *x);
    uint64_t seed = hb_rng_u64(r->seed, id);
    for (int64_t i = 0; i < n; i++) {
        float v = offset + scale * hb_rng_pm1(seed, (uint64_t)i);
        if (dt == HB_BF16) v = hb_bf16_to_f32(hb_f32_to_bf16(v));
        if (dt == HB_F16) v = hb_f16_to_f32(hb_f32_to_f16(v));
        x[i] = v;
    }
    return x;
}

static void ref_build(ref_model *r, const hb_model *m, hb_dtype dt, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->m = *m;
    r->dt = dt;
    r->seed = seed;
    r->C = m->dim, r->Hq = m->n_heads, r->Hkv = m->n_kv_heads, r->D = m->dim / m->n_heads;
    r->F = m->ffn_dim, r->V = m->vocab, r->L = m->n_layers;
    int ln = m->norm == HB_NORM_LAYERNORM, sw = m->act == HB_ACT_SWIGLU;
    int64_t C = r->C, dqkv = (r->Hq + 2 * r->Hkv) * r->D, dff = sw ? 2 * r->F : r->F;
    /* tensor ids as in workloads/transformer.c fill_weights() */
    r->wte = gen(r, 100, dt, r->V * C, 1.0f, 0.0f);
    r->wpe = m->pos == HB_POS_LEARNED ? gen(r, 101, dt, m->max_seq * C, 1.0f, 0.0f) : NULL;
    r->lm = m->tied ? r->wte : gen(r, 102, dt, r->V * C, 1.0f / sqrtf((float)C), 0.0f);
    r->lnf_w = gen(r, 103, HB_F32, C, 0.1f, 1.0f);
    r->lnf_b = ln ? gen(r, 104, HB_F32, C, 0.02f, 0.0f) : NULL;
    r->layer = calloc((size_t)r->L, sizeof *r->layer);
    for (int64_t l = 0; l < r->L; l++) {
        uint64_t id = 1000 + (uint64_t)l * 16;
        struct ref_layer *y = &r->layer[l];
        y->ln1_w = gen(r, id + 0, HB_F32, C, 0.1f, 1.0f);
        y->ln1_b = ln ? gen(r, id + 1, HB_F32, C, 0.02f, 0.0f) : NULL;
        y->qkv_w = gen(r, id + 2, dt, dqkv * C, 1.0f / sqrtf((float)C), 0.0f);
        y->qkv_b = m->bias ? gen(r, id + 3, HB_F32, dqkv, 0.02f, 0.0f) : NULL;
        y->proj_w = gen(r, id + 4, dt, C * r->Hq * r->D, 1.0f / sqrtf((float)(r->Hq * r->D)), 0.0f);
        y->proj_b = m->bias ? gen(r, id + 5, HB_F32, C, 0.02f, 0.0f) : NULL;
        y->ln2_w = gen(r, id + 6, HB_F32, C, 0.1f, 1.0f);
        y->ln2_b = ln ? gen(r, id + 7, HB_F32, C, 0.02f, 0.0f) : NULL;
        y->fc_w = gen(r, id + 8, dt, dff * C, 1.0f / sqrtf((float)C), 0.0f);
        y->fc_b = m->bias ? gen(r, id + 9, HB_F32, dff, 0.02f, 0.0f) : NULL;
        y->fc2_w = gen(r, id + 10, dt, C * r->F, 1.0f / sqrtf((float)r->F), 0.0f);
        y->fc2_b = m->bias ? gen(r, id + 11, HB_F32, C, 0.02f, 0.0f) : NULL;
    }
}

static void ref_free(ref_model *r) {
    free(r->wte), free(r->wpe), free(r->lnf_w), free(r->lnf_b);
    if (!r->m.tied) free(r->lm);
    for (int64_t l = 0; l < r->L; l++) {
        struct ref_layer *y = &r->layer[l];
        double *p[] = {y->ln1_w, y->ln1_b, y->qkv_w, y->qkv_b, y->proj_w, y->proj_b,
                       y->ln2_w, y->ln2_b, y->fc_w,  y->fc_b,  y->fc2_w, y->fc2_b};
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

/* x rounded to the KV cache's dtype of a model in dt (transformer.h: hb_tf_kv_dtype): the
 * attention's operands q, k, v and p are in that type (backend.h) */
static double kv_round(hb_dtype dt, double x) {
    hb_dtype kvt = hb_tf_kv_dtype(dt);
    if (kvt == HB_BF16) return hb_bf16_to_f32(hb_f32_to_bf16((float)x));
    if (kvt == HB_F16) return hb_f16_to_f32(hb_f32_to_f16((float)x));
    return x;
}

/* Logits (V) of the last token of one sequence of T tokens. */
static void ref_forward(const ref_model *r, const int32_t *tok, int64_t T, double *logits) {
    int64_t C = r->C, D = r->D, Hq = r->Hq, Hkv = r->Hkv, F = r->F;
    int64_t dq = Hq * D, dkv = Hkv * D, dqkv = dq + 2 * dkv;
    int sw = r->m.act == HB_ACT_SWIGLU;
    double *x = calloc((size_t)(T * C), sizeof *x), *h = malloc((size_t)C * sizeof *h);
    double *qkv = malloc((size_t)(T * dqkv) * sizeof *qkv), *att = malloc((size_t)(T * dq) * sizeof *att);
    double *ff = malloc((size_t)(2 * F) * sizeof *ff), *tmp = malloc((size_t)C * sizeof *tmp);
    double *sc = malloc((size_t)T * sizeof *sc);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < C; i++)
            x[t * C + i] = r->wte[tok[t] * C + i] + (r->wpe ? r->wpe[t * C + i] : 0);
    for (int64_t l = 0; l < r->L; l++) {
        const struct ref_layer *y = &r->layer[l];
        for (int64_t t = 0; t < T; t++) {
            ref_norm(r, h, x + t * C, y->ln1_w, y->ln1_b);
            ref_linear(qkv + t * dqkv, y->qkv_w, y->qkv_b, h, dqkv, C);
            if (r->m.pos == HB_POS_ROPE) {
                for (int64_t hh = 0; hh < Hq; hh++) ref_rope(qkv + t * dqkv + hh * D, D, t, r->m.rope_theta);
                for (int64_t hh = 0; hh < Hkv; hh++) ref_rope(qkv + t * dqkv + dq + hh * D, D, t, r->m.rope_theta);
            }
        }
        for (int64_t t = 0; t < T; t++)
            for (int64_t hh = 0; hh < Hq; hh++) {
                int64_t g = hh / (Hq / Hkv);
                const double *q = qkv + t * dqkv + hh * D;
                double mx = -INFINITY, den = 0;
                for (int64_t s = 0; s <= t; s++) {
                    const double *k = qkv + s * dqkv + dq + g * D;
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += kv_round(r->dt, q[i]) * kv_round(r->dt, k[i]);
                    sc[s] = d / sqrt((double)D);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int64_t s = 0; s <= t; s++) den += (sc[s] = exp(sc[s] - mx));
                double *o = att + t * dq + hh * D;
                for (int64_t i = 0; i < D; i++) o[i] = 0;
                for (int64_t s = 0; s <= t; s++) {
                    const double *v = qkv + s * dqkv + dq + dkv + g * D;
                    for (int64_t i = 0; i < D; i++) o[i] += kv_round(r->dt, sc[s]) / den * kv_round(r->dt, v[i]);
                }
            }
        for (int64_t t = 0; t < T; t++) {
            ref_linear(tmp, y->proj_w, y->proj_b, att + t * dq, C, dq);
            for (int64_t i = 0; i < C; i++) x[t * C + i] += tmp[i];
            ref_norm(r, h, x + t * C, y->ln2_w, y->ln2_b);
            ref_linear(ff, y->fc_w, y->fc_b, h, sw ? 2 * F : F, C);
            for (int64_t i = 0; i < F; i++) {
                double a = ff[i];
                if (sw) ff[i] = a / (1 + exp(-a)) * ff[F + i];
                else ff[i] = 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
            }
            ref_linear(tmp, y->fc2_w, y->fc2_b, ff, C, F);
            for (int64_t i = 0; i < C; i++) x[t * C + i] += tmp[i];
        }
    }
    ref_norm(r, h, x + (T - 1) * C, r->lnf_w, r->lnf_b);
    ref_linear(logits, r->lm, NULL, h, r->V, C);
    free(x), free(h), free(qkv), free(att), free(ff), free(tmp), free(sc);
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

static hb_case make_case(const hb_model *m, hb_workload_kind w, hb_dtype dt, int64_t B, int64_t P, int64_t G) {
    hb_case c = {0};
    c.workload = w;
    c.model = *m;
    c.model.n_layers_full = m->n_layers;
    c.dtype = dt;
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

static void check_prefill(hb_backend *be, const hb_model *m, hb_dtype dt, double tol) {
    hb_case c = make_case(m, HB_WL_PREFILL, dt, 2, 11, 0);
    hb_workload *w = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_workload_setup(be, &c, &w, &err) == HB_OK, "%s", err.msg);
    if (!w) return;
    CHECK(hb_workload_step(w) == HB_OK);
    float *out = NULL;
    int64_t n = 0;
    CHECK(hb_workload_output(w, &out, &n) == HB_OK);
    CHECK(n == c.batch * m->vocab);
    ref_model r;
    ref_build(&r, m, dt, c.seed);
    int32_t *tok = prompt_tokens(&c);
    double *ref = malloc((size_t)m->vocab * sizeof *ref);
    for (int64_t b = 0; b < c.batch; b++) {
        ref_forward(&r, tok + b * c.prompt, c.prompt, ref);
        double e = rel_err(out + b * m->vocab, ref, m->vocab);
        CHECK_MSG(e < tol, "prefill %s %s seq %lld: rel err %.3g >= %.3g", m->name, hb_dtype_name(dt), (long long)b, e, tol);
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

/* Decode: each step's logits equal the reference recomputing prompt + generated tokens. */
static void check_decode(hb_backend *be, const hb_model *m, hb_dtype dt, double tol) {
    const int64_t B = 2, P = 5, G = 6;
    hb_case c = make_case(m, HB_WL_DECODE, dt, B, P, G);
    hb_workload *w = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_workload_setup(be, &c, &w, &err) == HB_OK, "%s", err.msg);
    if (!w) return;
    ref_model r;
    ref_build(&r, m, dt, c.seed);
    int32_t *seq = malloc((size_t)(B * (P + G + 1)) * sizeof *seq);
    int32_t *tok = prompt_tokens(&c);
    double *ref = malloc((size_t)m->vocab * sizeof *ref);
    for (int64_t b = 0; b < B; b++) {
        memcpy(seq + b * (P + G + 1), tok + b * P, (size_t)P * sizeof *seq);
        ref_forward(&r, seq + b * (P + G + 1), P, ref); /* the first token: argmax of the prompt */
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
            ref_forward(&r, sq, P + s + 1, ref);
            double e = rel_err(out + b * m->vocab, ref, m->vocab);
            CHECK_MSG(e < tol, "decode %s %s step %lld seq %lld: rel err %.3g", m->name, hb_dtype_name(dt),
                      (long long)s, (long long)b, e);
            int64_t best = 0; /* next input: argmax of the library's logits (temperature 0) */
            for (int64_t v = 1; v < m->vocab; v++) if (out[b * m->vocab + v] > out[b * m->vocab + best]) best = v;
            sq[P + s + 1] = (int32_t)best;
        }
        free(out);
    }
    free(seq), free(tok), free(ref);
    ref_free(&r);
    hb_workload_free(w);
}

/* bf16 weights vs f32 weights: the same function within bf16 tolerance. */
static void check_bf16_vs_f32(hb_backend *be, const hb_model *m) {
    float *o[2] = {NULL, NULL};
    int64_t n = 0;
    for (int i = 0; i < 2; i++) {
        hb_case c = make_case(m, HB_WL_PREFILL, i ? HB_BF16 : HB_F32, 1, 9, 0);
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
    CHECK_MSG(e < 3e-2 && e > 1e-5, "bf16 vs f32 logits: rel err %.3g (expected bf16-sized, 1e-5..3e-2)", e);
    free(ref), free(o[0]), free(o[1]);
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

    check_prefill(be, &tiny, HB_F32, 1e-4);
    check_prefill(be, &tiny, HB_BF16, 1e-4);
    check_prefill(be, &tiny, HB_F16, 1e-4);
    check_prefill(be, &gpt, HB_F32, 1e-4);
    check_prefill(be, &gpt, HB_BF16, 1e-4);
    check_decode(be, &tiny, HB_F32, 1e-4);
    check_decode(be, &tiny, HB_BF16, 1e-4);
    check_decode(be, &gpt, HB_F32, 1e-4);
    check_bf16_vs_f32(be, &tiny);
    check_bf16_vs_f32(be, &gpt);
    hb_backend_close(be);
    HB_TEST_END();
}
