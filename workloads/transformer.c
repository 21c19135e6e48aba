/* transformer.c - prefill and decode of a dense decoder-only transformer, written only
 * against the ops table. Fills the descriptors hb_wl_prefill and hb_wl_decode (workload.h);
 * their analytic costs are in cost.c.
 *
 * Read top to bottom: layout (shared with cost.c), weights, state, forward, the two workloads,
 * their descriptors.
 * Weights live in one allocation with a table of offsets (llm.c style); activations in another;
 * the KV cache in a third. Shapes: N = B*T rows, C model width, D head dim. */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_impl.h"

/* ---- layout ---- */
static int64_t align256(int64_t x) { return (x + 255) & ~(int64_t)255; }

hb_dtype hb_tf_kv_dtype(hb_dtype wdt) {
    return wdt == HB_F32 ? HB_F32 : wdt == HB_F16 ? HB_F16 : HB_BF16;
}

void hb_tf_layout_init(const hb_case *c, int decode, hb_tf_layout *lay) {
    const hb_model *m = &c->model;
    memset(lay, 0, sizeof *lay);
    int64_t ws = hb_dtype_size(c->dtype);
    lay->C = m->dim;
    lay->Hq = m->n_heads;
    lay->Hkv = m->n_kv_heads;
    lay->D = hb_model_head_dim(m);
    lay->F = m->ffn_dim;
    lay->V = m->vocab;
    lay->L = m->n_layers;
    lay->d_qkv = (lay->Hq + 2 * lay->Hkv) * lay->D;
    lay->d_ff = m->act == HB_ACT_SWIGLU ? 2 * lay->F : lay->F;
    lay->B = c->batch;
    lay->T_max = c->prompt;
    lay->S = decode ? c->prompt + c->gen : c->prompt;

    const int64_t C = lay->C, ln = m->norm == HB_NORM_LAYERNORM;
    int64_t off = 0, matrix = 0;
#define PLACE(field, nbytes)            \
    do {                                \
        field = off;                    \
        off = align256(off + (nbytes)); \
    } while (0)
    PLACE(lay->wte, lay->V * C * ws);
    lay->wpe = -1;
    if (m->pos == HB_POS_LEARNED) PLACE(lay->wpe, m->max_seq * C * ws);
    lay->lm_w = -1;
    if (!m->tied) PLACE(lay->lm_w, lay->V * C * ws);
    matrix += lay->V * C * ws;
    PLACE(lay->lnf_w, C * 4);
    lay->lnf_b = -1;
    if (ln) PLACE(lay->lnf_b, C * 4);
    matrix += (1 + ln) * C * 4;

    int64_t start = off;
    hb_layer_offsets *o = &lay->layer0;
    memset(o, 0xff, sizeof *o); /* -1 everywhere: absent */
    int64_t lm = 0;
    PLACE(o->ln1_w, C * 4);
    if (ln) PLACE(o->ln1_b, C * 4);
    PLACE(o->qkv_w, lay->d_qkv * C * ws);
    if (m->bias) PLACE(o->qkv_b, lay->d_qkv * 4);
    PLACE(o->proj_w, C * lay->Hq * lay->D * ws);
    if (m->bias) PLACE(o->proj_b, C * 4);
    PLACE(o->ln2_w, C * 4);
    if (ln) PLACE(o->ln2_b, C * 4);
    PLACE(o->fc_w, lay->d_ff * C * ws);
    if (m->bias) PLACE(o->fc_b, lay->d_ff * 4);
    PLACE(o->fc2_w, C * lay->F * ws);
    if (m->bias) PLACE(o->fc2_b, C * 4);
#undef PLACE
    lm = 2 * (1 + ln) * C * 4 + (lay->d_qkv * C + C * lay->Hq * lay->D + lay->d_ff * C + C * lay->F) * ws;
    if (m->bias) lm += (lay->d_qkv + C + lay->d_ff + C) * 4;
    lay->layer_stride = off - start;
    lay->weight_bytes = start + lay->L * lay->layer_stride;
    lay->matrix_bytes = matrix + lay->L * lm;

    /* activations: x, h (N, C); qkv (N, d_qkv); att (N, Hq D); ff (N, d_ff); ffa (N, F);
     * logits (B, V); tokens (N) and next tokens (B) as int32 */
    int64_t N = lay->B * lay->T_max;
    lay->act_bytes = align256(N * C * 4) * 2 + align256(N * lay->d_qkv * 4) +
                     align256(N * lay->Hq * lay->D * 4) + align256(N * lay->d_ff * 4) +
                     align256(N * lay->F * 4) + align256(lay->B * lay->V * 4) + align256(N * 4) +
                     align256(lay->B * 4);
    lay->kvt = hb_tf_kv_dtype(c->dtype);
    lay->kv_bytes = 2 * lay->L * lay->B * lay->S * lay->Hkv * lay->D * hb_dtype_size(lay->kvt);
}

/* ---- state ---- */
typedef struct tf_state {
    hb_tf_layout lay;
    char *wts;            /* weight block */
    char *act;            /* activation block */
    char *kv;             /* (2, L, B, S, Hkv, D) in lay.kvt */
    float *x, *h, *qkv, *att, *ff, *ffa, *logits;
    int32_t *tokens, *next;
    int64_t step;         /* decode: steps taken (position = prompt + step % gen) */
    hb_dtype dt;          /* storage type of the weight matrices */
} tf_state;

#define W(st, off) ((off) < 0 ? NULL : (void *)((st)->wts + (off)))
#define WL(st, l, field) \
    ((st)->lay.layer0.field < 0 ? NULL : (void *)((st)->wts + (st)->lay.layer0.field + (l) * (st)->lay.layer_stride))

static hb_status norm(hb_backend *be, const hb_model *m, float *out, const float *in, const void *w,
                      const void *b, int64_t N, int64_t C) {
    if (m->norm == HB_NORM_LAYERNORM) return HB_OP(be, layernorm, out, in, w, b, N, C, m->norm_eps);
    return HB_OP(be, rmsnorm, out, in, w, N, C, m->norm_eps);
}

/* B sequences of T tokens at positions pos0..pos0+T-1; logits (B, V) of each last token. */
static hb_status forward(hb_backend *be, const hb_model *m, tf_state *st, const int32_t *tokens,
                         int64_t B, int64_t T, int64_t pos0) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, D = y->D, Hq = y->Hq, Hkv = y->Hkv, F = y->F, N = B * T;
    const int64_t dq = Hq * D, dqkv = y->d_qkv, S = y->S;
    const hb_dtype dt = st->dt;
    const int64_t kv_layer = B * S * Hkv * D * hb_dtype_size(y->kvt); /* bytes per layer per cache */

    HB_TRY(HB_OP(be, embedding, st->x, tokens, W(st, y->wte), W(st, y->wpe), dt, B, T, pos0, C));
    for (int64_t l = 0; l < y->L; l++) {
        void *kc = st->kv + (2 * l) * kv_layer, *vc = st->kv + (2 * l + 1) * kv_layer;
        /* attention block: x += proj(attention(rope(qkv(norm(x))))) */
        HB_TRY(norm(be, m, st->h, st->x, WL(st, l, ln1_w), WL(st, l, ln1_b), N, C));
        HB_TRY(HB_OP(be, matmul, st->qkv, dqkv, st->h, C, HB_F32, WL(st, l, qkv_w), dt, WL(st, l, qkv_b), N,
                     dqkv, C, 0.0f)); /* (N, (Hq + 2 Hkv) D) */
        if (m->pos == HB_POS_ROPE) {
            /* q (Hq heads) and k (Hkv heads) are adjacent in a qkv row: one launch for both */
            HB_TRY(HB_OP(be, rope, st->qkv, dqkv, B, T, pos0, Hq + Hkv, D, m->rope_theta));
        }
        HB_TRY(HB_OP(be, kv_store, kc, vc, y->kvt, st->qkv + dq, st->qkv + dq + Hkv * D, dqkv, B,
                     T, pos0, Hkv, D, S));
        HB_TRY(HB_OP(be, attention, st->att, dq, st->qkv, dqkv, kc, vc, y->kvt, B, T, pos0, Hq, Hkv,
                     D, S));
        HB_TRY(HB_OP(be, matmul, st->x, C, st->att, dq, HB_F32, WL(st, l, proj_w), dt, WL(st, l, proj_b), N,
                     C, dq, 1.0f)); /* residual: beta = 1 */
        /* MLP block: x += fc2(act(fc(norm(x)))) */
        HB_TRY(norm(be, m, st->h, st->x, WL(st, l, ln2_w), WL(st, l, ln2_b), N, C));
        HB_TRY(HB_OP(be, matmul, st->ff, y->d_ff, st->h, C, HB_F32, WL(st, l, fc_w), dt, WL(st, l, fc_b), N,
                     y->d_ff, C, 0.0f));
        if (m->act == HB_ACT_SWIGLU)
            HB_TRY(HB_OP(be, swiglu, st->ffa, st->ff, N, F));
        else
            HB_TRY(HB_OP(be, gelu, st->ffa, st->ff, N * F));
        HB_TRY(HB_OP(be, matmul, st->x, C, st->ffa, F, HB_F32, WL(st, l, fc2_w), dt, WL(st, l, fc2_b), N, C, F,
                     1.0f));
    }
    /* final norm of each sequence's last row only, then the lm head: logits (B, V) */
    for (int64_t b = 0; b < B; b++)
        HB_TRY(norm(be, m, st->h + b * C, st->x + (b * T + T - 1) * C, W(st, y->lnf_w),
                    W(st, y->lnf_b), 1, C));
    const void *lm = m->tied ? W(st, y->wte) : W(st, y->lm_w);
    HB_TRY(HB_OP(be, matmul, st->logits, y->V, st->h, C, HB_F32, lm, dt, NULL, B, y->V, C, 0.0f));
    return HB_OK;
}

/* ---- the two workloads ---- */
static hb_status prefill_step(hb_workload *w) {
    tf_state *st = w->impl;
    const hb_case *c = &w->c;
    HB_TRY(forward(w->be, &c->model, st, st->tokens, c->batch, c->prompt, 0));
    if (!w->have_fp) {
        HB_TRY(hb_fingerprint_device(w->be, st->logits, c->batch * st->lay.V, st->lay.V, w->fp));
        w->have_fp = 1;
    }
    return HB_OK;
}

/* One generated token per sequence; its input is the previous step's output token. */
static hb_status decode_step(hb_workload *w) {
    tf_state *st = w->impl;
    const hb_case *c = &w->c;
    int64_t pos = c->prompt + st->step % c->gen;
    HB_TRY(forward(w->be, &c->model, st, st->next, c->batch, 1, pos));
    if (!w->have_fp) {
        HB_TRY(hb_fingerprint_device(w->be, st->logits, c->batch * st->lay.V, st->lay.V, w->fp));
        w->have_fp = 1;
    }
    HB_TRY(HB_OP(w->be, sample, st->next, st->logits, st->lay.V, c->batch, st->lay.V, c->temperature,
                 hb_rng_u64(c->seed, 7), (uint64_t)st->step));
    st->step++;
    return HB_OK;
}

static void tf_free(hb_workload *w) {
    tf_state *st = w->impl;
    if (!st) return;
    w->be->ops->free(w->be, st->wts);
    w->be->ops->free(w->be, st->act);
    w->be->ops->free(w->be, st->kv);
    free(st);
}

/* Every tensor gets its own seed (case seed, tensor index), so the values do not depend on the
 * layout. Matrices ~ U(-1, 1) / sqrt(fan_in); norm weights 1 + U(-0.1, 0.1); biases
 * U(-0.02, 0.02); embeddings U(-1, 1). */
static hb_status fill_weights(hb_backend *be, const hb_case *c, tf_state *st) {
    const hb_tf_layout *y = &st->lay;
    const hb_model *m = &c->model;
    uint64_t id = 100;
    const hb_dtype dt = st->dt;
#define FILL(ptr, dtype, n, scale, offset)                                                         \
    do {                                                                                           \
        if (ptr) HB_TRY(HB_OP(be, fill_random, ptr, dtype, n, hb_rng_u64(c->seed, id), scale, offset)); \
        id++;                                                                                      \
    } while (0)
    FILL(W(st, y->wte), dt, y->V * y->C, 1.0f, 0.0f);
    FILL(W(st, y->wpe), dt, m->max_seq * y->C, 1.0f, 0.0f);
    FILL(W(st, y->lm_w), dt, y->V * y->C, 1.0f / sqrtf((float)y->C), 0.0f);
    FILL(W(st, y->lnf_w), HB_F32, y->C, 0.1f, 1.0f);
    FILL(W(st, y->lnf_b), HB_F32, y->C, 0.02f, 0.0f);
    for (int64_t l = 0; l < y->L; l++) {
        id = 1000 + (uint64_t)l * 16;
        FILL(WL(st, l, ln1_w), HB_F32, y->C, 0.1f, 1.0f);
        FILL(WL(st, l, ln1_b), HB_F32, y->C, 0.02f, 0.0f);
        FILL(WL(st, l, qkv_w), dt, y->d_qkv * y->C, 1.0f / sqrtf((float)y->C), 0.0f);
        FILL(WL(st, l, qkv_b), HB_F32, y->d_qkv, 0.02f, 0.0f);
        FILL(WL(st, l, proj_w), dt, y->C * y->Hq * y->D, 1.0f / sqrtf((float)(y->Hq * y->D)), 0.0f);
        FILL(WL(st, l, proj_b), HB_F32, y->C, 0.02f, 0.0f);
        FILL(WL(st, l, ln2_w), HB_F32, y->C, 0.1f, 1.0f);
        FILL(WL(st, l, ln2_b), HB_F32, y->C, 0.02f, 0.0f);
        FILL(WL(st, l, fc_w), dt, y->d_ff * y->C, 1.0f / sqrtf((float)y->C), 0.0f);
        FILL(WL(st, l, fc_b), HB_F32, y->d_ff, 0.02f, 0.0f);
        FILL(WL(st, l, fc2_w), dt, y->C * y->F, 1.0f / sqrtf((float)y->F), 0.0f);
        FILL(WL(st, l, fc2_b), HB_F32, y->C, 0.02f, 0.0f);
    }
#undef FILL
    return HB_OK;
}

/* decode: the KV cache also holds the G generated positions, and setup prefills the prompt. */
static hb_status tf_setup(hb_workload *w, int decode, hb_err *err) {
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    tf_state *st = calloc(1, sizeof *st);
    if (!st) return HB_ERR_NOMEM;
    w->impl = st;
    w->free_impl = tf_free;
    w->step = decode ? decode_step : prefill_step;
    st->dt = c->dtype;
    if (c->dtype == HB_FP8_E4M3)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "%s: dtype fp8 is not supported for model weights by "
                       "backend '%s' yet", w->desc->name, be->info.backend);
    hb_tf_layout_init(c, decode, &st->lay);
    const hb_tf_layout *y = &st->lay;
    if (be->ops->alloc(be, (size_t)y->weight_bytes, (void **)&st->wts) ||
        be->ops->alloc(be, (size_t)y->act_bytes, (void **)&st->act) ||
        be->ops->alloc(be, (size_t)y->kv_bytes, (void **)&st->kv))
        return hb_errf(err, HB_ERR_NOMEM, "%s: allocation of %.2f GiB failed: %s",
                       w->desc->name,
                       (double)(y->weight_bytes + y->act_bytes + y->kv_bytes) / (1 << 30), be->err);
    /* carve the activation block (sizes as in hb_tf_layout_init) */
    int64_t N = y->B * y->T_max, off = 0;
#define CARVE(ptr, type, nbytes)                  \
    do {                                          \
        ptr = (type *)(st->act + off);            \
        off = align256(off + (nbytes));           \
    } while (0)
    CARVE(st->x, float, N * y->C * 4);
    CARVE(st->h, float, N * y->C * 4);
    CARVE(st->qkv, float, N * y->d_qkv * 4);
    CARVE(st->att, float, N * y->Hq * y->D * 4);
    CARVE(st->ff, float, N * y->d_ff * 4);
    CARVE(st->ffa, float, N * y->F * 4);
    CARVE(st->logits, float, y->B * y->V * 4);
    CARVE(st->tokens, int32_t, N * 4);
    CARVE(st->next, int32_t, y->B * 4);
#undef CARVE
    w->out = st->logits;
    w->out_n = y->B * y->V;
    if (off != y->act_bytes) return hb_errf(err, HB_ERR_INTERNAL, "activation layout mismatch");

    HB_TRY(fill_weights(be, c, st));
    HB_TRY(HB_OP(be, fill_tokens, st->tokens, N, hb_rng_u64(c->seed, 5), y->V));
    if (decode) {
        /* the prompt goes through the model once: the KV cache then holds positions 0..P-1 and
         * the first generated token is the argmax of the prompt's last logits */
        HB_TRY(forward(be, &c->model, st, st->tokens, c->batch, c->prompt, 0));
        HB_TRY(HB_OP(be, argmax, st->next, st->logits, y->V, c->batch, y->V));
    }
    return HB_OK;
}

static hb_status prefill_setup(hb_workload *w, hb_err *err) { return tf_setup(w, 0, err); }
static hb_status decode_setup(hb_workload *w, hb_err *err) { return tf_setup(w, 1, err); }

/* ---- the descriptors ---- */

/* "prefill llama3-8b[2/32L] bf16 B=1 P=128", "decode ... G=32"; [l/LL] only when truncated. */
static void tf_label(const hb_case *c, int decode, char *buf, int len) {
    char layers[32] = "";
    if (c->model.n_layers != c->model.n_layers_full)
        snprintf(layers, sizeof layers, "[%lld/%lldL]", (long long)c->model.n_layers,
                 (long long)c->model.n_layers_full);
    if (!decode)
        snprintf(buf, len, "prefill %s%s %s B=%lld P=%lld", c->model.name, layers,
                 hb_dtype_name(c->dtype), (long long)c->batch, (long long)c->prompt);
    else
        snprintf(buf, len, "decode %s%s %s B=%lld P=%lld G=%lld", c->model.name, layers,
                 hb_dtype_name(c->dtype), (long long)c->batch, (long long)c->prompt,
                 (long long)c->gen);
}
static void prefill_label(const hb_case *c, char *buf, int len) { tf_label(c, 0, buf, len); }
static void decode_label(const hb_case *c, char *buf, int len) { tf_label(c, 1, buf, len); }

/* The positions a case needs must fit the model's position range. */
static hb_status prefill_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"prompt", "model", NULL};
    const hb_model *m = &c->model;
    *blame = keys;
    if (c->prompt > m->max_seq)
        return hb_errf(err, HB_ERR_INPUT, "prompt %lld exceeds max_seq %lld of model '%s' (accepted: prompt <= %lld)",
                       (long long)c->prompt, (long long)m->max_seq, m->name, (long long)m->max_seq);
    return HB_OK;
}

static hb_status decode_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"gen", "prompt", "model", NULL};
    const hb_model *m = &c->model;
    *blame = keys;
    if (c->prompt + c->gen > m->max_seq)
        return hb_errf(err, HB_ERR_INPUT, "prompt %lld + gen %lld = %lld exceeds max_seq %lld of model '%s' "
                       "(accepted: prompt + gen <= %lld)", (long long)c->prompt, (long long)c->gen,
                       (long long)(c->prompt + c->gen), (long long)m->max_seq, m->name,
                       (long long)m->max_seq);
    return HB_OK;
}

static const char *const prefill_keys[] = {"model", "layers", "dtype", "batch", "prompt", NULL};
static const char *const decode_keys[] = {"model", "layers", "dtype", "batch", "prompt", "gen",
                                          "temperature", NULL};

const hb_workload_desc hb_wl_prefill = {
    .name = "prefill",
    .kind = HB_WL_PREFILL,
    .plan_keys = prefill_keys,
    .about = "B prompts of P tokens (model, batch, prompt)",
    .headline = HB_HEADLINE_TOKENS_IN,
    .latency = 1,
    .label = prefill_label,
    .cost = hb_tf_prefill_cost,
    .check = prefill_check,
    .setup = prefill_setup,
};

const hb_workload_desc hb_wl_decode = {
    .name = "decode",
    .kind = HB_WL_DECODE,
    .plan_keys = decode_keys,
    .about = "1 token for B sequences (prompt, gen)",
    .headline = HB_HEADLINE_TOKENS_OUT,
    .latency = 1,
    .label = decode_label,
    .cost = hb_tf_decode_cost,
    .check = decode_check,
    .setup = decode_setup,
};
