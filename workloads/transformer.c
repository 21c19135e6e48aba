/* transformer.c - prefill and decode of a dense decoder-only transformer, written only
 * against the ops table. Fills the descriptors hb_wl_prefill and hb_wl_decode (workload.h);
 * their analytic costs are in cost.c.
 *
 * Read top to bottom: layout (shared with cost.c), weights, state, forward, the two workloads,
 * their descriptors.
 * Weights live in one allocation with a table of offsets (llm.c style); activations in another;
 * the KV cache in a third. Shapes: N = B*T rows, C model width, D head dim. */
#include "transformer.h"

#include "checkpoint.h" // defines: hb_ckpt_open, hb_ckpt_read_f32, hb_tokens_read
#include "serve.h"      // defines: hb_serve_expert_tokens, hb_serve_generated

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workload_impl.h"

/* ---- layout: the tensor table ---- */
static int64_t align256(int64_t x) { return (x + 255) & ~(int64_t)255; }

hb_dtype hb_case_kv_dtype(const hb_case *c) {
    switch (c->kv_dtype) {
    case HB_KV_F32: return HB_F32;
    case HB_KV_BF16: return HB_BF16;
    case HB_KV_F16: return HB_F16;
    case HB_KV_FP8: return HB_FP8_E4M3;
    default: return c->dtype == HB_F32 ? HB_F32 : c->dtype == HB_F16 ? HB_F16 : HB_BF16;
    }
}

static int64_t numel(const hb_tf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

/* Number of f32 scales of a quantised 2-D tensor (rows, cols). */
static int64_t n_scales(const hb_tf_tensor *t) {
    if (t->q == HB_QUANT_NONE) return 0;
    if (t->q == HB_QUANT_TENSOR) return 1;
    int64_t rows = numel(t) / t->ne[t->ndim - 1], cols = t->ne[t->ndim - 1];
    return ((rows + t->bm - 1) / t->bm) * ((cols + t->bk - 1) / t->bk);
}

/* Appends a tensor to arena a; returns its id, or -1 when out of host memory (the table is
 * then marked broken: n_tensors < 0, reported by hb_tf_layout_init) or when its size or its
 * arena's does not fit in int64_t (y->ovf then names the product; the dimensions come from
 * user numbers: batch, prompt, gen, model fields). */
static int add(hb_tf_layout *y, hb_arena a, const char *name, int layer, hb_dtype dt, hb_qkind q,
               int ndim, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    if (y->n_tensors < 0) return -1;
    const int64_t ne[4] = {n0, n1, n2, n3}, es = hb_dtype_size(dt);
    int64_t n = 1, nb = 0, end = 0;
    int bad = 0;
    for (int i = 0; i < ndim; i++) bad |= hb_mul_ovf(n, ne[i], &n);
    bad = bad || hb_mul_ovf(n, es, &nb) || hb_add_ovf(y->arena_bytes[a], nb, &end) || end > INT64_MAX - 1024;
    if (bad) {
        int o = snprintf(y->ovf, sizeof y->ovf, "tensor %s (", name);
        for (int i = 0; i < ndim && o > 0 && o < (int)sizeof y->ovf; i++)
            o += snprintf(y->ovf + o, sizeof y->ovf - (size_t)o, "%lld x ", (long long)ne[i]);
        if (o > 0 && o < (int)sizeof y->ovf)
            snprintf(y->ovf + o, sizeof y->ovf - (size_t)o, "%lld bytes, after %lld bytes of its arena)",
                     (long long)es, (long long)y->arena_bytes[a]);
        y->n_tensors = -1;
        return -1;
    }
    if (y->n_tensors == y->cap) {
        int cap = y->cap ? 2 * y->cap : 64;
        hb_tf_tensor *t = realloc(y->t, (size_t)cap * sizeof *t);
        if (!t) {
            y->n_tensors = -1;
            return -1;
        }
        y->t = t;
        y->cap = cap;
    }
    hb_tf_tensor *t = &y->t[y->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->layer = layer;
    t->arena = a;
    t->dt = dt;
    t->ndim = ndim;
    t->ne[0] = n0, t->ne[1] = n1, t->ne[2] = n2, t->ne[3] = n3;
    t->q = hb_dtype_is_fp8(dt) ? q : HB_QUANT_NONE;
    t->bm = t->bk = y->qblock;
    t->off = y->arena_bytes[a];
    y->arena_bytes[a] = align256(end); /* end < INT64_MAX - 1024: no wrap */
    t->scale_off = -1;
    if (t->q != HB_QUANT_NONE) {
        /* at most one f32 scale per element: 4 n bytes, checked */
        int64_t sb;
        if (hb_mul_ovf(n_scales(t), 4, &sb) || hb_add_ovf(y->arena_bytes[a], sb, &end) || end > INT64_MAX - 1024) {
            snprintf(y->ovf, sizeof y->ovf, "the scales of tensor %s (%lld x 4 bytes)", name, (long long)n_scales(t));
            y->n_tensors = -1;
            return -1;
        }
        t->scale_off = y->arena_bytes[a];
        y->arena_bytes[a] = align256(end);
    }
    return y->n_tensors++;
}

/* A weight (rows, cols) or, with cols 0, a vector: its init (seed id, scale, offset) and
 * whether a forward step reads all of it. */
static int weight(hb_tf_layout *y, const char *name, int layer, hb_dtype dt, int64_t rows,
                  int64_t cols, uint64_t id, float scale, float offset, int per_step) {
    int i = add(y, HB_ARENA_WEIGHTS, name, layer, dt, y->wq, cols > 0 ? 2 : 1, rows, cols, 0, 0);
    if (i < 0) return -1;
    hb_tf_tensor *t = &y->t[i];
    t->init_id = id;
    t->init_scale = scale;
    t->init_offset = offset;
    t->per_step = per_step;
    if (per_step) y->matrix_bytes += numel(t) * hb_dtype_size(dt) + n_scales(t) * 4;
    return i;
}

/* A stack of E expert matrices (rows, cols) each, in one tensor (E, rows, cols): block scales
 * (when quantised per block) cover each expert's matrix alone, rows being a multiple of the
 * block (checked at plan time). */
static int expert_stack(hb_tf_layout *y, const char *name, int layer, hb_dtype dt, int64_t E, int64_t rows,
                        int64_t cols, uint64_t id, float scale) {
    int i = add(y, HB_ARENA_WEIGHTS, name, layer, dt, y->wq, 3, E, rows, cols, 0);
    if (i < 0) return -1;
    y->t[i].init_id = id;
    y->t[i].init_scale = scale;
    return i;
}

/* Marks tensor i (if any) as the rank's part of a whole (rows, cols) tensor (HB_SHARD_*). */
static void shard(hb_tf_layout *y, int i, int kind, int64_t rows, int64_t cols) {
    if (i < 0) return;
    y->t[i].shard = kind;
    y->t[i].full_rows = rows;
    y->t[i].full_cols = cols;
}

void hb_tf_layout_free(hb_tf_layout *y) {
    free(y->t);
    free(y->blocks);
    y->t = NULL;
    y->blocks = NULL;
    y->n_tensors = y->cap = 0;
}

/* A derived dimension a * b + d, checked: on overflow y->ovf says what and 0 is returned (the
 * layout then fails). */
static int64_t dim_of(hb_tf_layout *y, const char *what, int64_t a, int64_t b, int64_t d) {
    int64_t r;
    if (hb_mul_ovf(a, b, &r) || hb_add_ovf(r, d, &r)) {
        if (y->ovf[0]) return 0;
        if (d) snprintf(y->ovf, sizeof y->ovf, "%s (%lld x %lld + %lld)", what, (long long)a, (long long)b, (long long)d);
        else snprintf(y->ovf, sizeof y->ovf, "%s (%lld x %lld)", what, (long long)a, (long long)b);
        return 0;
    }
    return r;
}

hb_status hb_tf_layout_init(const hb_case *c, int decode, hb_tf_layout *y, hb_err *err) {
    const hb_model *m = &c->model;
    memset(y, 0, sizeof *y);
    if (m->n_layers > HB_MODEL_MAX_LAYERS)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': %lld layers (accepted: 1 to %d)", m->name,
                       (long long)m->n_layers, HB_MODEL_MAX_LAYERS);
    /* tensor parallelism (dense GQA models; tf_check made sure tp divides heads and ffn and
     * that kv heads and tp divide one another): this rank's heads, kv heads and ffn width */
    const int64_t tp = c->tp > 1 ? c->tp : 1;
    y->tp = tp;
    y->C = m->dim;
    y->Hq_full = m->n_heads;
    y->Hkv_full = m->n_kv_heads;
    y->Hq = m->n_heads / tp;
    y->Hkv = m->n_kv_heads >= tp ? m->n_kv_heads / tp : 1;
    y->D = hb_model_head_dim(m);
    y->F = 0;
    for (int64_t l = 0; l < (m->n_layers < HB_MODEL_MAX_LAYERS ? m->n_layers : 0); l++)
        if (hb_model_layer_ffn(m, l) / tp > y->F) y->F = hb_model_layer_ffn(m, l) / tp;
    if (y->F == 0) y->F = 1; /* a MoE model without shared experts: ff/ffa unused */
    if (hb_model_is_mla(m)) {
        y->dn = m->qk_nope_dim, y->dr = m->qk_rope_dim, y->dv = m->v_head_dim;
        y->dc = m->kv_lora_rank, y->dql = m->q_lora_rank;
    }
    y->ep = 1;
    if (hb_model_is_moe(m)) {
        y->E = m->n_experts;
        y->K = m->top_k;
        y->Fe = m->moe_ffn_dim / tp; /* tp: each expert's width split like a dense FFN's */
        /* expert parallelism (mp_check made sure ep divides the experts) */
        y->ep = c->ep > 1 ? c->ep : 1;
    }
    y->El = y->E / y->ep;
    y->V = m->vocab;
    y->Vl = tp > 1 && m->vocab % tp == 0 ? m->vocab / tp : m->vocab;
    y->L = m->n_layers;
    y->d_qkv = dim_of(y, "(heads + 2 kv_heads) x head_dim", dim_of(y, "2 x kv_heads + heads", 2, y->Hkv, y->Hq), y->D, 0);
    y->d_ff = m->act == HB_ACT_SWIGLU ? dim_of(y, "2 x ffn_dim", 2, y->F, 0) : y->F;
    y->B = c->batch;
    y->T_max = c->prompt;
    y->S = decode ? dim_of(y, "prompt + gen", 1, c->prompt, c->gen) : c->prompt;
    const int64_t HqD = dim_of(y, "heads x head_dim", y->Hq, y->D, 0);
    const int64_t N = dim_of(y, "batch x prompt", y->B, y->T_max, 0); /* rows of a forward */
    const int64_t NK = dim_of(y, "batch x prompt x top_k", N, y->K, 0);  /* MoE slots */
    const int64_t d_eup = dim_of(y, "2 x moe_ffn_dim", 2, y->Fe, 0);
    /* ep: the rows the rank's experts may receive (eup/eact hold those, not the rank's own
     * N k slots: R_ep >= N k since ep min(k, El) >= k when El >= k, and = E >= k otherwise) */
    y->R_ep = y->ep > 1 ? dim_of(y, "ep x batch x prompt x min(top_k, experts per rank)",
                                 dim_of(y, "ep x batch x prompt", y->ep, N, 0), y->K < y->El ? y->K : y->El, 0)
                        : NK;
    if (y->ovf[0]) goto overflow;
    y->wdt = c->dtype;
    y->wq = hb_dtype_is_fp8(c->dtype) ? (c->quant == HB_QUANT_BLOCK ? HB_QUANT_BLOCK : HB_QUANT_TENSOR)
                                      : HB_QUANT_NONE;
    y->qblock = c->quant_block > 0 ? c->quant_block : 128;
    y->edt = hb_dtype_is_fp8(c->dtype) ? HB_BF16 : c->dtype;
    y->kvt = hb_case_kv_dtype(c);
    y->blocks = calloc((size_t)(y->L > 0 ? y->L : 1), sizeof *y->blocks);
    if (!y->blocks) return HB_ERR_NOMEM;

    const int64_t C = y->C, ln = m->norm == HB_NORM_LAYERNORM;
    const hb_dtype wdt = y->wdt, edt = y->edt;
    const float r_c = 1.0f / sqrtf((float)C);
    /* Every tensor gets its own seed (case seed, tensor id), so the values do not depend on
     * the layout. Matrices ~ U(-1, 1) / sqrt(fan_in); norm weights 1 + U(-0.1, 0.1); biases
     * U(-0.02, 0.02); embeddings U(-1, 1). */
    const hb_qkind wq = y->wq;
    y->wq = HB_QUANT_NONE; /* embeddings and lm head are never quantised */
    y->wte = weight(y, "wte", -1, edt, y->V, C, 100, 1.0f, 0.0f, 0);
    y->wpe = m->pos == HB_POS_LEARNED ? weight(y, "wpe", -1, edt, m->max_seq, C, 101, 1.0f, 0.0f, 0) : -1;
    const int vocab_par = y->Vl != y->V;
    if (vocab_par) { /* the rank's rows of the head (a tied head: of wte, which stays whole for the embedding) */
        y->lm_w = m->tied ? weight(y, "lm_w", -1, edt, y->Vl, C, 100, 1.0f, 0.0f, 1)
                          : weight(y, "lm_w", -1, edt, y->Vl, C, 102, r_c, 0.0f, 1);
        if (y->lm_w >= 0) shard(y, y->lm_w, HB_SHARD_ROWS, y->V, C);
    } else {
        y->lm_w = m->tied ? -1 : weight(y, "lm_w", -1, edt, y->V, C, 102, r_c, 0.0f, 1);
        if (m->tied) y->matrix_bytes += y->V * C * hb_dtype_size(edt); /* the tied head reads wte */
    }
    y->lnf_w = weight(y, "lnf_w", -1, HB_F32, C, 0, 103, 0.1f, 1.0f, 1);
    y->lnf_b = ln ? weight(y, "lnf_b", -1, HB_F32, C, 0, 104, 0.02f, 0.0f, 1) : -1;
    y->wq = wq;
    for (int64_t l = 0; l < y->L; l++) {
        hb_tf_block *b = &y->blocks[l];
        const uint64_t id = 1000 + (uint64_t)l * 16;
        const int L_ = (int)l;
        b->attn = hb_model_is_mla(m) ? HB_ATTN_MLA : HB_ATTN_GQA;
        b->wq_a = b->q_norm = b->wkv_a = b->kv_norm = b->wkv_b = -1;
        b->qn_w = b->kn_w = -1;
        b->ffn = hb_model_layer_moe(m, l) ? HB_FFN_MOE : HB_FFN_DENSE;
        b->F = hb_model_layer_ffn(m, l) / tp;
        b->router_w = b->router_b = b->exp_up = b->exp_down = -1;
        b->fc_w = b->fc_b = b->fc2_w = b->fc2_b = -1;
        b->moe_index = b->ffn == HB_FFN_MOE ? y->n_moe++ : -1;
        const int64_t Fl = b->F, dffl = m->act == HB_ACT_SWIGLU ? dim_of(y, "2 x ffn_dim", 2, Fl, 0) : Fl;
        b->ln1_w = weight(y, "ln1_w", L_, HB_F32, C, 0, id + 0, 0.1f, 1.0f, 1);
        b->ln1_b = ln ? weight(y, "ln1_b", L_, HB_F32, C, 0, id + 1, 0.02f, 0.0f, 1) : -1;
        if (b->attn == HB_ATTN_MLA) {
            /* init ids 500000 + 8 l + j (the GQA ids of the layer stay unused) */
            const uint64_t mid = 500000 + (uint64_t)l * 8;
            const int64_t dq = dim_of(y, "heads x (qk_nope_dim + qk_rope_dim)", y->Hq, y->dn + y->dr, 0);
            if (y->dql > 0) {
                b->wq_a = weight(y, "wq_a", L_, wdt, y->dql, C, mid + 0, r_c, 0.0f, 1);
                b->q_norm = weight(y, "q_norm", L_, HB_F32, y->dql, 0, mid + 1, 0.1f, 1.0f, 1);
                b->qkv_w = weight(y, "wq_b", L_, wdt, dq, y->dql, mid + 2, 1.0f / sqrtf((float)y->dql), 0.0f, 1);
            } else {
                b->qkv_w = weight(y, "wq", L_, wdt, dq, C, mid + 2, r_c, 0.0f, 1);
            }
            b->wkv_a = weight(y, "wkv_a", L_, wdt, y->dc + y->dr, C, mid + 3, r_c, 0.0f, 1);
            b->kv_norm = weight(y, "kv_norm", L_, HB_F32, y->dc, 0, mid + 4, 0.1f, 1.0f, 1);
            b->wkv_b = weight(y, "wkv_b", L_, wdt, dim_of(y, "heads x (qk_nope_dim + v_head_dim)", y->Hq, y->dn + y->dv, 0),
                              y->dc, mid + 5, 1.0f / sqrtf((float)y->dc), 0.0f, 1);
            const int64_t hdv = dim_of(y, "heads x v_head_dim", y->Hq, y->dv, 0), hdv_full = hdv * tp;
            b->proj_w = weight(y, "proj_w", L_, wdt, C, hdv, mid + 6, 1.0f / sqrtf((float)(hdv_full > 0 ? hdv_full : 1)),
                               0.0f, 1);
            b->qkv_b = b->proj_b = -1;
            if (tp > 1) { /* heads split; the latent (wq_a, wkv_a, norms, cache) replicated */
                shard(y, b->qkv_w, HB_SHARD_MLA_Q, dq * tp, y->dql > 0 ? y->dql : C);
                shard(y, b->wkv_b, HB_SHARD_ROWS, y->Hq_full * (y->dn + y->dv), y->dc);
                shard(y, b->proj_w, HB_SHARD_COLS, C, hdv_full);
            }
        } else {
            const int64_t HqD_full = y->Hq_full * y->D, dqkv_full = (y->Hq_full + 2 * y->Hkv_full) * y->D;
            b->qkv_w = weight(y, "qkv_w", L_, wdt, y->d_qkv, C, id + 2, r_c, 0.0f, 1);
            b->qkv_b = m->bias || m->qkv_bias ? weight(y, "qkv_b", L_, HB_F32, y->d_qkv, 0, id + 3, 0.02f, 0.0f, 1) : -1;
            if (m->qk_norm) { /* init ids 600000 + 2 l + j */
                b->qn_w = weight(y, "q_norm_w", L_, HB_F32, y->D, 0, 600000 + (uint64_t)l * 2, 0.1f, 1.0f, 1);
                b->kn_w = weight(y, "k_norm_w", L_, HB_F32, y->D, 0, 600001 + (uint64_t)l * 2, 0.1f, 1.0f, 1);
            }
            b->proj_w = weight(y, "proj_w", L_, wdt, C, HqD, id + 4, 1.0f / sqrtf((float)HqD_full), 0.0f, 1);
            b->proj_b = m->bias ? weight(y, "proj_b", L_, HB_F32, C, 0, id + 5, 0.02f, 0.0f, 1) : -1;
            if (tp > 1) {
                shard(y, b->qkv_w, HB_SHARD_QKV, dqkv_full, C);
                shard(y, b->qkv_b, HB_SHARD_QKV, dqkv_full, 1);
                shard(y, b->proj_w, HB_SHARD_COLS, C, HqD_full);
            }
        }
        b->ln2_w = weight(y, "ln2_w", L_, HB_F32, C, 0, id + 6, 0.1f, 1.0f, 1);
        b->ln2_b = ln ? weight(y, "ln2_b", L_, HB_F32, C, 0, id + 7, 0.02f, 0.0f, 1) : -1;
        if (Fl > 0) { /* dense FFN, or a MoE block's shared experts */
            const int64_t Ff = Fl * tp, dff_full = dffl * tp;
            b->fc_w = weight(y, "fc_w", L_, wdt, dffl, C, id + 8, r_c, 0.0f, 1);
            b->fc_b = m->bias ? weight(y, "fc_b", L_, HB_F32, dffl, 0, id + 9, 0.02f, 0.0f, 1) : -1;
            b->fc2_w = weight(y, "fc2_w", L_, wdt, C, Fl, id + 10, 1.0f / sqrtf((float)Ff), 0.0f, 1);
            b->fc2_b = m->bias ? weight(y, "fc2_b", L_, HB_F32, C, 0, id + 11, 0.02f, 0.0f, 1) : -1;
            if (tp > 1) {
                const int sk = m->act == HB_ACT_SWIGLU ? HB_SHARD_GATEUP : HB_SHARD_ROWS;
                shard(y, b->fc_w, sk, dff_full, C);
                shard(y, b->fc_b, sk, dff_full, 1);
                shard(y, b->fc2_w, HB_SHARD_COLS, C, Ff);
            }
        }
        if (b->ffn == HB_FFN_MOE) {
            /* the router in the embedding dtype, unquantised (DeepSeek-V3's FP8 checkpoint keeps
             * the gate in bf16); the experts stacked, read only where tokens go (per_step 0) */
            const hb_qkind keep = y->wq;
            y->wq = HB_QUANT_NONE;
            b->router_w = weight(y, "router_w", L_, edt, y->E, C, id + 12, r_c, 0.0f, 1);
            y->wq = keep;
            b->router_b = m->router_bias ? weight(y, "router_b", L_, HB_F32, y->E, 0, id + 13, 0.02f, 0.0f, 1) : -1;
            /* ep: the rank's El experts of the stacks, generated as the ep = 1 model's */
            b->exp_up = expert_stack(y, "exp_up", L_, wdt, y->El, d_eup, C, id + 14, r_c);
            b->exp_down = expert_stack(y, "exp_down", L_, wdt, y->El, C, y->Fe, id + 15,
                                       1.0f / sqrtf((float)(m->moe_ffn_dim > 0 ? m->moe_ffn_dim : 1))); /* the whole expert's fan-in (tp) */
            if (y->ep > 1 || tp > 1) {
                shard(y, b->exp_up, HB_SHARD_EXP_UP, y->E, 0);
                shard(y, b->exp_down, HB_SHARD_EXP_DOWN, y->E, 0);
            }
            if (b->exp_up >= 0 && b->exp_down >= 0 && l == m->first_k_dense)
                y->expert_bytes = (y->t[b->exp_up].ne[1] * C + C * y->Fe) * hb_dtype_size(wdt) +
                                  (n_scales(&y->t[b->exp_up]) + n_scales(&y->t[b->exp_down])) * 4 / y->El;
        }
        /* caches (B, S, Hkv, D); an fp8 cache has one static scale per tensor. MLA: the latent
         * cache (B, S, dc + dr) alone (an fp8 one holds codes with scale 1) */
        const hb_qkind kq = hb_dtype_is_fp8(y->kvt) ? HB_QUANT_TENSOR : HB_QUANT_NONE;
        if (b->attn == HB_ATTN_MLA) {
            b->k_cache = add(y, HB_ARENA_KV, "latent_cache", L_, y->kvt, HB_QUANT_NONE, 3, y->B, y->S, y->dc + y->dr, 0);
            b->v_cache = -1;
        } else {
            b->k_cache = add(y, HB_ARENA_KV, "k_cache", L_, y->kvt, kq, 4, y->B, y->S, y->Hkv, y->D);
            b->v_cache = add(y, HB_ARENA_KV, "v_cache", L_, y->kvt, kq, 4, y->B, y->S, y->Hkv, y->D);
        }
        if (y->n_tensors < 0) break;
    }
    /* activations: x, h (N, C); qkv (N, d_qkv); att (N, Hq D); ff (N, d_ff); ffa (N, F);
     * logits (B, V); tokens (N) and next tokens (B) as int32 (stored as f32-sized slots) */
    {
        y->x = add(y, HB_ARENA_ACT, "x", -1, HB_F32, HB_QUANT_NONE, 2, N, C, 0, 0);
        y->h = add(y, HB_ARENA_ACT, "h", -1, HB_F32, HB_QUANT_NONE, 2, N, C, 0, 0);
        const int gqa = !hb_model_is_mla(m); /* MLA has its own (below) */
        y->qkv = add(y, HB_ARENA_ACT, "qkv", -1, HB_F32, HB_QUANT_NONE, 2, gqa ? N : 1, gqa ? y->d_qkv : 1, 0, 0);
        y->att = add(y, HB_ARENA_ACT, "att", -1, HB_F32, HB_QUANT_NONE, 2, gqa ? N : 1, gqa ? HqD : 1, 0, 0);
        y->ff = add(y, HB_ARENA_ACT, "ff", -1, HB_F32, HB_QUANT_NONE, 2, N, y->d_ff, 0, 0);
        y->ffa = add(y, HB_ARENA_ACT, "ffa", -1, HB_F32, HB_QUANT_NONE, 2, N, y->F, 0, 0);
        y->logits = add(y, HB_ARENA_ACT, "logits", -1, HB_F32, HB_QUANT_NONE, 2, y->B, y->V, 0, 0);
        y->logits_l = vocab_par ? add(y, HB_ARENA_ACT, "logits_l", -1, HB_F32, HB_QUANT_NONE, 2, y->B, y->Vl, 0, 0) : -1;
        y->tokens = add(y, HB_ARENA_ACT, "tokens", -1, HB_F32, HB_QUANT_NONE, 1, N, 0, 0, 0);
        y->next = add(y, HB_ARENA_ACT, "next", -1, HB_F32, HB_QUANT_NONE, 1, y->B, 0, 0, 0);
        /* decode: steps 0 .. G-2 read their input token from row s of hist and write their
         * output to row s+1, so the first pass's tokens stay on the device without a copy */
        y->hist = decode ? add(y, HB_ARENA_ACT, "hist", -1, HB_F32, HB_QUANT_NONE, 2, c->gen, y->B, 0, 0) : -1;
        /* MoE: router logits (N, E); ids, weights, rows (N k) as int32 / f32; offsets (E + 1);
         * permuted rows xp (N k, C), expert up (N k, 2 Fe), activation (N k, Fe), out (N k, C) */
        y->rlog = y->ids = y->rwt = y->rows = y->offs = y->xp = y->eup = y->eact = y->ey = -1;
        y->xr = y->xr2 = y->ids_r = y->rows_r = y->offs_r = y->ones = y->ecnt = -1;
        y->mq = y->mcq = y->mlat = y->matt = -1;
        if (hb_model_is_mla(m)) { /* q (N, H (dn + dr)), q latent (N, q_lora), kv latent (N, dc + dr), out (N, H dv) */
            y->mq = add(y, HB_ARENA_ACT, "mq", -1, HB_F32, HB_QUANT_NONE, 2, N, y->Hq * (y->dn + y->dr), 0, 0);
            y->mcq = y->dql ? add(y, HB_ARENA_ACT, "mcq", -1, HB_F32, HB_QUANT_NONE, 2, N, y->dql, 0, 0) : -1;
            y->mlat = add(y, HB_ARENA_ACT, "mlat", -1, HB_F32, HB_QUANT_NONE, 2, N, y->dc + y->dr, 0, 0);
            y->matt = add(y, HB_ARENA_ACT, "matt", -1, HB_F32, HB_QUANT_NONE, 2, N, y->Hq * y->dv, 0, 0);
        }
        if (y->n_moe > 0) {
            y->rlog = add(y, HB_ARENA_ACT, "rlog", -1, HB_F32, HB_QUANT_NONE, 2, N, y->E, 0, 0);
            y->ids = add(y, HB_ARENA_ACT, "ids", -1, HB_F32, HB_QUANT_NONE, 1, NK, 0, 0, 0);
            y->rwt = add(y, HB_ARENA_ACT, "rwt", -1, HB_F32, HB_QUANT_NONE, 1, NK, 0, 0, 0);
            y->rows = add(y, HB_ARENA_ACT, "rows", -1, HB_F32, HB_QUANT_NONE, 1, NK, 0, 0, 0);
            y->offs = add(y, HB_ARENA_ACT, "offs", -1, HB_F32, HB_QUANT_NONE, 1, y->E + 1, 0, 0, 0);
            y->xp = add(y, HB_ARENA_ACT, "xp", -1, HB_F32, HB_QUANT_NONE, 2, NK, C, 0, 0);
            y->eup = add(y, HB_ARENA_ACT, "eup", -1, HB_F32, HB_QUANT_NONE, 2, y->R_ep, d_eup, 0, 0);
            y->eact = add(y, HB_ARENA_ACT, "eact", -1, HB_F32, HB_QUANT_NONE, 2, y->R_ep, y->Fe, 0, 0);
            y->ey = add(y, HB_ARENA_ACT, "ey", -1, HB_F32, HB_QUANT_NONE, 2, NK, C, 0, 0);
            if (y->ep > 1) { /* xp is the dispatch's send buffer, ey the combine's receive buffer */
                y->xr = add(y, HB_ARENA_ACT, "xr", -1, HB_F32, HB_QUANT_NONE, 2, y->R_ep, C, 0, 0);
                y->xr2 = add(y, HB_ARENA_ACT, "xr2", -1, HB_F32, HB_QUANT_NONE, 2, y->R_ep, C, 0, 0);
                y->ids_r = add(y, HB_ARENA_ACT, "ids_r", -1, HB_F32, HB_QUANT_NONE, 1, y->R_ep, 0, 0, 0);
                y->rows_r = add(y, HB_ARENA_ACT, "rows_r", -1, HB_F32, HB_QUANT_NONE, 1, y->R_ep, 0, 0, 0);
                y->offs_r = add(y, HB_ARENA_ACT, "offs_r", -1, HB_F32, HB_QUANT_NONE, 1, y->El + 1, 0, 0, 0);
                y->ones = add(y, HB_ARENA_ACT, "ones", -1, HB_F32, HB_QUANT_NONE, 1, y->R_ep, 0, 0, 0);
                y->ecnt = add(y, HB_ARENA_ACT, "ecnt", -1, HB_F32, HB_QUANT_NONE, 1, 2 * y->E, 0, 0, 0);
            }
        }
    }
    if (y->ovf[0]) goto overflow;
    if (y->n_tensors < 0) {
        hb_tf_layout_free(y);
        return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    }
    int64_t total; /* what the fit check compares with the device's free memory */
    if (hb_add_ovf(y->arena_bytes[HB_ARENA_WEIGHTS], y->arena_bytes[HB_ARENA_ACT], &total) ||
        hb_add_ovf(total, y->arena_bytes[HB_ARENA_KV], &total)) {
        snprintf(y->ovf, sizeof y->ovf, "weights + activations + KV cache (%lld + %lld + %lld bytes)",
                 (long long)y->arena_bytes[HB_ARENA_WEIGHTS], (long long)y->arena_bytes[HB_ARENA_ACT],
                 (long long)y->arena_bytes[HB_ARENA_KV]);
        goto overflow;
    }
    y->weight_bytes = y->arena_bytes[HB_ARENA_WEIGHTS];
    y->act_bytes = y->arena_bytes[HB_ARENA_ACT];
    y->kv_bytes = y->arena_bytes[HB_ARENA_KV];
    return HB_OK;
overflow:;
    char ovf[sizeof y->ovf];
    memcpy(ovf, y->ovf, sizeof ovf);
    hb_tf_layout_free(y);
    char g[40] = "";
    if (decode) snprintf(g, sizeof g, " gen %lld", (long long)c->gen);
    return hb_errf(err, HB_ERR_INPUT, "%s model '%s' batch %lld prompt %lld%s: the size of %s overflows 64 bits "
                   "(accepted: sizes whose tensors fit in memory)", decode ? "decode" : "prefill", m->name,
                   (long long)c->batch, (long long)c->prompt, g, ovf);
}

/* ---- state ---- */
typedef struct tf_state {
    hb_tf_layout lay;
    char *arena[HB_ARENA_COUNT]; /* one allocation per arena */
    int64_t step;                /* decode: steps taken (position = prompt + step % gen) */
    /* MoE: the case's routing, and the tokens each expert received in the first timed step
     * (n_moe x E; setup's prompt pass excepted) */
    hb_routing routing;
    float zipf_s;
    uint64_t seed;
    int64_t *expert_tokens;
    int have_counts;
    /* tensor or expert parallelism: the group (NULL alone) and this rank's index in it as a
     * tp rank (0 under ep) and as an ep rank (0 under tp) */
    hb_comm *comm;
    int64_t trank, erank;
    /* ep: host copies of the offsets (E + 1), the counts (2 E: sent, received), the received
     * rows' local experts (R_ep), and the all_to_all counts and displacements (6 ep) */
    int32_t *h_offs, *h_cnt, *h_ids;
    int64_t *a2a;
} tf_state;

/* Tensor id i of the table as an op operand (a 2-D view for matrices, 4-D for caches). */
static hb_tensor TT(const tf_state *st, int i) {
    if (i < 0) return (hb_tensor){0};
    const hb_tf_tensor *t = &st->lay.t[i];
    void *p = st->arena[t->arena] + t->off;
    hb_tensor x;
    if (t->ndim == 4) x = hb_t4(p, t->dt, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    else if (t->ndim == 3) x = hb_t3(p, t->dt, t->ne[0], t->ne[1], t->ne[2]);
    else if (t->ndim == 2) x = hb_t2(p, t->dt, t->ne[0], t->ne[1], t->ne[1]);
    else x = hb_t1(p, t->dt, t->ne[0]);
    if (t->q != HB_QUANT_NONE)
        x = hb_tq(x, t->q, t->bm, t->bk, (float *)(void *)(st->arena[t->arena] + t->scale_off));
    return x;
}
static void *P(const tf_state *st, int i) {
    return i < 0 ? NULL : st->arena[st->lay.t[i].arena] + st->lay.t[i].off;
}
/* rows r0..r0+n-1 (row stride ld) of an f32 activation, as an (n, cols) view */
static hb_tensor rows_of(const tf_state *st, int i, int64_t r0, int64_t n, int64_t cols, int64_t ld) {
    return hb_t2((float *)P(st, i) + r0 * ld, HB_F32, n, cols, ld);
}

hb_status hb_tf_qk_norm(hb_backend *be, const hb_model *m, const hb_tf_layout *y, const hb_tf_block *b, float *qkv,
                        hb_tensor qn_w, hb_tensor kn_w, int64_t N) {
    if (b->qn_w < 0) return HB_OK;
    const int64_t D = y->D, ld = y->d_qkv;
    /* the heads of a row as rows of D: (N, H, D) with strides (ld, D, 1), in place */
    hb_tensor q = hb_t3(qkv, HB_F32, N, y->Hq, D), k = hb_t3(qkv + y->Hq * D, HB_F32, N, y->Hkv, D);
    q.st[0] = k.st[0] = ld;
    HB_TRY(HB_OP(be, rmsnorm, .out = q, .in = q, .w = qn_w, .eps = m->norm_eps));
    return HB_OP(be, rmsnorm, .out = k, .in = k, .w = kn_w, .eps = m->norm_eps);
}

static hb_status norm(hb_backend *be, const hb_model *m, hb_tensor out, hb_tensor in, hb_tensor w,
                      hb_tensor b) {
    if (m->norm == HB_NORM_LAYERNORM)
        return HB_OP(be, layernorm, .out = out, .in = in, .w = w, .b = b, .eps = m->norm_eps);
    return HB_OP(be, rmsnorm, .out = out, .in = in, .w = w, .eps = m->norm_eps);
}

static hb_status tp_sum(hb_backend *be, tf_state *st, void *x, int64_t n);

/* MLA attention of block b on h (N, C), added into x: q (through the q_lora bottleneck when
 * there is one), the kv latent (normalised) with its shared rope key, both roped, then
 * mla_attention over the latent cache - materialising K/V for a prompt (T > 1), absorbing the
 * up-projections for a decode step (T = 1) - and the output projection. */
static hb_status mla_block(hb_backend *be, const hb_model *m, tf_state *st, const hb_tf_block *b, int64_t B,
                           int64_t T, int64_t pos0) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, N = B * T, H = y->Hq, dq = H * (y->dn + y->dr), Dl = y->dc + y->dr;
    const hb_tensor h = rows_of(st, y->h, 0, N, C, C), x = rows_of(st, y->x, 0, N, C, C);
    const hb_tensor q = rows_of(st, y->mq, 0, N, dq, dq), lat = rows_of(st, y->mlat, 0, N, Dl, Dl);
    float *qp = P(st, y->mq), *lp = P(st, y->mlat);
    if (y->dql > 0) {
        const hb_tensor cq = rows_of(st, y->mcq, 0, N, y->dql, y->dql);
        HB_TRY(HB_OP(be, matmul, .out = cq, .a = h, .w = TT(st, b->wq_a)));
        HB_TRY(HB_OP(be, rmsnorm, .out = cq, .in = cq, .w = TT(st, b->q_norm), .eps = m->norm_eps));
        HB_TRY(HB_OP(be, matmul, .out = q, .a = cq, .w = TT(st, b->qkv_w)));
    } else {
        HB_TRY(HB_OP(be, matmul, .out = q, .a = h, .w = TT(st, b->qkv_w)));
    }
    HB_TRY(HB_OP(be, matmul, .out = lat, .a = h, .w = TT(st, b->wkv_a)));
    const hb_tensor c = hb_t2(lp, HB_F32, N, y->dc, Dl);
    HB_TRY(HB_OP(be, rmsnorm, .out = c, .in = c, .w = TT(st, b->kv_norm), .eps = m->norm_eps));
    /* rope on every head's rope part (after all heads' nope parts) and on the shared k_pe */
    HB_TRY(HB_OP(be, rope, .x = hb_t2(qp + H * y->dn, HB_F32, N, H * y->dr, dq), .B = B, .T = T, .pos0 = pos0, .H = H,
                 .theta = m->rope_theta, .scaling = m->rope_scaling));
    HB_TRY(HB_OP(be, rope, .x = hb_t2(lp + y->dc, HB_F32, N, y->dr, Dl), .B = B, .T = T, .pos0 = pos0, .H = 1,
                 .theta = m->rope_theta, .scaling = m->rope_scaling));
    const hb_tensor att = rows_of(st, y->matt, 0, N, H * y->dv, H * y->dv);
    HB_TRY(HB_OP(be, mla_attention, .out = att, .q = q, .latent = lat, .cache = TT(st, b->k_cache),
                 .wkv_b = TT(st, b->wkv_b), .B = B, .T = T, .pos0 = pos0, .H = H, .dn = y->dn, .dr = y->dr,
                 .dv = y->dv, .absorb = T == 1));
    /* row parallel under tp (as the GQA block's output): rank 0 adds, the others overwrite */
    HB_TRY(HB_OP(be, matmul, .out = x, .a = att, .w = TT(st, b->proj_w), .beta = st->trank == 0 ? 1.0f : 0.0f));
    return tp_sum(be, st, x.data, N * C);
}

/* Expert parallelism: the routed part of MoE block b after moe_permute (xp: the rank's N k
 * slots grouped by expert, hence by the expert's rank, which holds experts p El .. p El +
 * El - 1). The per-expert counts are exchanged first (an all_to_all of El int32 per pair),
 * then the rows (all_to_all with counts); the received rows - by source rank, within it by
 * expert - are permuted by local expert (moe_permute, top_k 1) for one grouped GEMM pair per
 * expert, put back in received order (moe_combine with weights 1, beta 0), returned (the
 * reverse all_to_all) into ey in xp's order, and combined with the router weights as the
 * ep = 1 path does. An expert sees the same rows in the same order as at ep = 1 on the
 * group's whole batch (sources in rank order, each in slot order). */
static hb_status moe_experts_ep(hb_backend *be, tf_state *st, int64_t N, hb_tensor x, const hb_tf_block *b) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, E = y->E, K = y->K, Fe = y->Fe, NK = N * K, El = y->El, ep = y->ep;
    int32_t *cnt = P(st, y->ecnt), *ho = st->h_offs, *hc = st->h_cnt, *hi = st->h_ids;
    int64_t *sc = st->a2a, *sd = sc + ep, *rc = sd + ep, *rd = rc + ep, *kc = rd + ep, *kd = kc + ep;
    HB_TRY(be->ops->download(be, ho, P(st, y->offs), (size_t)(E + 1) * sizeof *ho));
    HB_TRY(be->ops->sync(be));
    /* counts: hc[0 .. E) this rank's slots per expert, sent El to each rank; hc[E .. 2E) the
     * El counts of each source rank for this rank's experts */
    for (int64_t e = 0; e < E; e++) hc[e] = ho[e + 1] - ho[e];
    for (int64_t p = 0; p < ep; p++) kc[p] = El, kd[p] = p * El;
    HB_TRY(be->ops->upload(be, cnt, hc, (size_t)E * sizeof *hc));
    HB_TRY(be->ops->sync(be));
    HB_TRY(hb_comm_all_to_all(st->comm, cnt, kc, kd, cnt + E, kc, kd, HB_CDT_I32));
    HB_TRY(be->ops->download(be, hc + E, cnt + E, (size_t)E * sizeof *hc));
    HB_TRY(be->ops->sync(be));
    int64_t R = 0;
    for (int64_t e = E; e < 2 * E; e++) R += hc[e] > 0 ? hc[e] : 0;
    if (R > y->R_ep) { /* cannot happen: a token's top_k experts are distinct */
        snprintf(be->err, sizeof be->err, "ep: %lld rows received, more than the %lld bounded", (long long)R,
                 (long long)y->R_ep);
        return HB_ERR_INTERNAL;
    }
    R = 0;
    for (int64_t p = 0; p < ep; p++) {
        sc[p] = (int64_t)(ho[(p + 1) * El] - ho[p * El]) * C; /* xp's rows for rank p's experts */
        sd[p] = (int64_t)ho[p * El] * C;
        int64_t n = 0;
        for (int64_t j = 0; j < El; j++)
            for (int32_t i = 0; i < hc[E + p * El + j]; i++) hi[R + n++] = (int32_t)j;
        rc[p] = n * C, rd[p] = R * C;
        R += n;
    }
    const hb_tensor xr = rows_of(st, y->xr, 0, R, C, C), xr2 = rows_of(st, y->xr2, 0, R, C, C);
    int32_t *rows_r = P(st, y->rows_r), *offs_r = P(st, y->offs_r);
    /* dispatch: the rank's slots to their experts' ranks */
    HB_TRY(hb_comm_all_to_all(st->comm, P(st, y->xp), sc, sd, xr.data, rc, rd, HB_CDT_F32));
    HB_TRY(be->ops->upload(be, P(st, y->ids_r), hi, (size_t)(R > 0 ? R : 0) * sizeof *hi));
    HB_TRY(HB_OP(be, moe_permute, .xp = xr2, .x = xr, .ids = P(st, y->ids_r), .top_k = 1, .n_experts = El,
                 .rows = rows_r, .offsets = offs_r));
    HB_TRY(HB_OP(be, matmul_grouped, .out = rows_of(st, y->eup, 0, R, 2 * Fe, 2 * Fe), .a = xr2,
                 .w = TT(st, b->exp_up), .offsets = offs_r));
    HB_TRY(HB_OP(be, swiglu, .out = rows_of(st, y->eact, 0, R, Fe, Fe), .in = rows_of(st, y->eup, 0, R, 2 * Fe, 2 * Fe)));
    HB_TRY(HB_OP(be, matmul_grouped, .out = xr2, .a = rows_of(st, y->eact, 0, R, Fe, Fe), .w = TT(st, b->exp_down),
                 .offsets = offs_r));
    /* back in received order (xr[i] = xr2[rows_r[i]]) */
    HB_TRY(HB_OP(be, moe_combine, .out = xr, .y = xr2, .rows = rows_r, .weights = P(st, y->ones), .top_k = 1,
                 .beta = 0.0f));
    HB_TRY(be->ops->sync(be));
    /* combine: every expert output back to its slot's rank, in xp's order */
    HB_TRY(hb_comm_all_to_all(st->comm, xr.data, rc, rd, P(st, y->ey), sc, sd, HB_CDT_F32));
    return HB_OP(be, moe_combine, .out = x, .y = rows_of(st, y->ey, 0, NK, C, C), .rows = P(st, y->rows),
                 .weights = P(st, y->rwt), .top_k = K, .beta = 1.0f);
}

/* The routed experts of MoE block b on h (N, C), added into x: router logits, top-k, tokens
 * permuted by expert, the experts' SwiGLU as two grouped GEMMs, the weighted combine (beta 1:
 * the residual). route_row0 numbers the rows for synthetic routing (a decode step's rows
 * differ from the last step's). The first step records the tokens each expert received. */
static hb_status moe_ffn(hb_backend *be, const hb_model *m, tf_state *st, const hb_tf_block *b, int64_t N,
                         int64_t l, int64_t route_row0, float beta) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, E = y->E, K = y->K, Fe = y->Fe, NK = N * K;
    const hb_tensor h = rows_of(st, y->h, 0, N, C, C), x = rows_of(st, y->x, 0, N, C, C);
    const hb_tensor rlog = rows_of(st, y->rlog, 0, N, E, E);
    int32_t *ids = P(st, y->ids), *rows = P(st, y->rows), *offs = P(st, y->offs);
    float *rwt = P(st, y->rwt);
    HB_TRY(HB_OP(be, matmul, .out = rlog, .a = h, .w = TT(st, b->router_w)));
    HB_TRY(HB_OP(be, moe_route, .ids = ids, .weights = rwt, .logits = rlog, .bias = TT(st, b->router_b),
                 .kind = m->router, .top_k = K, .n_group = m->n_group, .topk_group = m->topk_group,
                 .norm = m->norm_topk, .scale = m->routed_scale, .mode = st->routing, .zipf_s = st->zipf_s,
                 .seed = hb_rng_u64(st->seed, 9000 + (uint64_t)l), .row0 = route_row0));
    HB_TRY(HB_OP(be, moe_permute, .xp = rows_of(st, y->xp, 0, NK, C, C), .x = h, .ids = ids, .top_k = K,
                 .n_experts = E, .rows = rows, .offsets = offs));
    if (y->ep > 1) {
        HB_TRY(moe_experts_ep(be, st, N, x, b));
        if (st->expert_tokens && !st->have_counts) /* the rank's own slots per expert (offsets just read) */
            for (int64_t e = 0; e < E; e++) st->expert_tokens[b->moe_index * E + e] = st->h_offs[e + 1] - st->h_offs[e];
        return HB_OK;
    }
    HB_TRY(HB_OP(be, matmul_grouped, .out = rows_of(st, y->eup, 0, NK, 2 * Fe, 2 * Fe),
                 .a = rows_of(st, y->xp, 0, NK, C, C), .w = TT(st, b->exp_up), .offsets = offs));
    HB_TRY(HB_OP(be, swiglu, .out = rows_of(st, y->eact, 0, NK, Fe, Fe), .in = rows_of(st, y->eup, 0, NK, 2 * Fe, 2 * Fe)));
    HB_TRY(HB_OP(be, matmul_grouped, .out = rows_of(st, y->ey, 0, NK, C, C),
                 .a = rows_of(st, y->eact, 0, NK, Fe, Fe), .w = TT(st, b->exp_down), .offsets = offs));
    HB_TRY(HB_OP(be, moe_combine, .out = x, .y = rows_of(st, y->ey, 0, NK, C, C), .rows = rows, .weights = rwt,
                 .top_k = K, .beta = beta));
    if (st->expert_tokens && !st->have_counts) {
        int32_t *o = malloc((size_t)(E + 1) * sizeof *o);
        if (!o) return HB_ERR_NOMEM;
        hb_status s = be->ops->download(be, o, offs, (size_t)(E + 1) * sizeof *o);
        for (int64_t e = 0; s == HB_OK && e < E; e++) st->expert_tokens[b->moe_index * E + e] = o[e + 1] - o[e];
        free(o);
        HB_TRY(s);
    }
    return HB_OK;
}

/* Tensor parallelism: x (n f32) summed over the group in place (the row-parallel matmuls'
 * partial products); nothing alone. */
static hb_status tp_sum(hb_backend *be, tf_state *st, void *x, int64_t n) {
    if (!st->comm || st->lay.tp <= 1) return HB_OK;
    HB_TRY(be->ops->sync(be));
    return hb_comm_all_reduce(st->comm, x, x, n, HB_CDT_F32, HB_REDOP_SUM);
}

/* B sequences of T tokens at positions pos0..pos0+T-1; logits (B, V) of each last token.
 * route_row0: the first row's number for synthetic routing. */
static hb_status forward(hb_backend *be, const hb_model *m, tf_state *st, const int32_t *tokens,
                         int64_t B, int64_t T, int64_t pos0, int64_t route_row0) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, D = y->D, Hq = y->Hq, Hkv = y->Hkv, N = B * T;
    const int64_t dq = Hq * D, dqkv = y->d_qkv;
    const hb_tensor x = rows_of(st, y->x, 0, N, C, C), h = rows_of(st, y->h, 0, N, C, C);
    const hb_tensor qkv = rows_of(st, y->qkv, 0, N, dqkv, dqkv);
    const hb_tensor att = rows_of(st, y->att, 0, N, dq, dq);
    float *qkvp = P(st, y->qkv);

    HB_TRY(HB_OP(be, embedding, .out = x, .wte = TT(st, y->wte), .wpe = TT(st, y->wpe), .tokens = tokens,
                 .B = B, .T = T, .pos0 = pos0));
    for (int64_t l = 0; l < y->L; l++) {
        const hb_tf_block *b = &y->blocks[l];
        if (b->attn == HB_ATTN_MLA) {
            HB_TRY(norm(be, m, h, x, TT(st, b->ln1_w), TT(st, b->ln1_b)));
            HB_TRY(mla_block(be, m, st, b, B, T, pos0));
        } else {
            const hb_tensor kc = TT(st, b->k_cache), vc = TT(st, b->v_cache);
            /* attention block: x += proj(attention(rope(qkv(norm(x))))) */
            HB_TRY(norm(be, m, h, x, TT(st, b->ln1_w), TT(st, b->ln1_b)));
            HB_TRY(HB_OP(be, matmul, .out = qkv, .a = h, .w = TT(st, b->qkv_w), .bias = TT(st, b->qkv_b))); /* (N, (Hq + 2 Hkv) D) */
            HB_TRY(hb_tf_qk_norm(be, m, y, b, qkvp, TT(st, b->qn_w), TT(st, b->kn_w), N));
            if (m->pos == HB_POS_ROPE) {
                /* q (Hq heads) and k (Hkv heads) are adjacent in a qkv row: one launch for both */
                HB_TRY(HB_OP(be, rope, .x = hb_t2(qkvp, HB_F32, N, (Hq + Hkv) * D, dqkv), .B = B, .T = T,
                             .pos0 = pos0, .H = Hq + Hkv, .theta = m->rope_theta, .scaling = m->rope_scaling));
            }
            HB_TRY(HB_OP(be, kv_store, .k_cache = kc, .v_cache = vc, .k = hb_t2(qkvp + dq, HB_F32, N, Hkv * D, dqkv),
                         .v = hb_t2(qkvp + dq + Hkv * D, HB_F32, N, Hkv * D, dqkv), .B = B, .T = T, .pos0 = pos0));
            HB_TRY(HB_OP(be, attention, .out = att, .q = hb_t2(qkvp, HB_F32, N, dq, dqkv), .k_cache = kc,
                         .v_cache = vc, .B = B, .T = T, .pos0 = pos0));
            /* residual: beta = 1. Row-parallel under tp: rank 0 adds its partial product (and
             * the bias) to x, the others write theirs over x, and the all-reduce sums them */
            const int lead = st->trank == 0;
            HB_TRY(HB_OP(be, matmul, .out = x, .a = att, .w = TT(st, b->proj_w),
                         .bias = lead ? TT(st, b->proj_b) : (hb_tensor){0}, .beta = lead ? 1.0f : 0.0f));
            HB_TRY(tp_sum(be, st, x.data, N * C));
        }
        /* MLP block: x += fc2(act(fc(norm(x)))); MoE: x += shared(h) + combine(experts(h)) */
        HB_TRY(norm(be, m, h, x, TT(st, b->ln2_w), TT(st, b->ln2_b)));
        if (b->F > 0) {
            const int64_t Fl = b->F, dffl = m->act == HB_ACT_SWIGLU ? 2 * Fl : Fl;
            const hb_tensor ff = rows_of(st, y->ff, 0, N, dffl, dffl), ffa = rows_of(st, y->ffa, 0, N, Fl, Fl);
            HB_TRY(HB_OP(be, matmul, .out = ff, .a = h, .w = TT(st, b->fc_w), .bias = TT(st, b->fc_b)));
            if (m->act == HB_ACT_SWIGLU)
                HB_TRY(HB_OP(be, swiglu, .out = ffa, .in = ff));
            else
                HB_TRY(HB_OP(be, gelu, .out = ffa, .in = ff));
            const int lead = st->trank == 0; /* row parallel, as the attention's output */
            HB_TRY(HB_OP(be, matmul, .out = x, .a = ffa, .w = TT(st, b->fc2_w),
                         .bias = lead ? TT(st, b->fc2_b) : (hb_tensor){0}, .beta = lead ? 1.0f : 0.0f));
            if (b->ffn != HB_FFN_MOE) HB_TRY(tp_sum(be, st, x.data, N * C));
        }
        if (b->ffn == HB_FFN_MOE) {
            /* tp: the routed experts' partial products are added to the shared experts' (or,
             * without shared experts, to x on rank 0 and to zero elsewhere), then one all-reduce */
            HB_TRY(moe_ffn(be, m, st, b, N, l, route_row0, b->F > 0 || st->trank == 0 ? 1.0f : 0.0f));
            HB_TRY(tp_sum(be, st, x.data, N * C));
        }
    }
    /* final norm of each sequence's last row only, then the lm head: logits (B, V) */
    for (int64_t b = 0; b < B; b++)
        HB_TRY(norm(be, m, rows_of(st, y->h, b, 1, C, C), rows_of(st, y->x, b * T + T - 1, 1, C, C),
                    TT(st, y->lnf_w), TT(st, y->lnf_b)));
    if (y->logits_l >= 0) { /* vocab parallel: the rank's columns of the logits, then each row gathered */
        const hb_tensor ll = rows_of(st, y->logits_l, 0, B, y->Vl, y->Vl);
        HB_TRY(HB_OP(be, matmul, .out = ll, .a = rows_of(st, y->h, 0, B, C, C), .w = TT(st, y->lm_w)));
        HB_TRY(be->ops->sync(be));
        for (int64_t b = 0; b < B; b++)
            HB_TRY(hb_comm_all_gather(st->comm, (float *)ll.data + b * y->Vl, (float *)P(st, y->logits) + b * y->V, y->Vl,
                                      HB_CDT_F32));
        return HB_OK;
    }
    const hb_tensor lm = TT(st, m->tied ? y->wte : y->lm_w);
    HB_TRY(HB_OP(be, matmul, .out = TT(st, y->logits), .a = rows_of(st, y->h, 0, B, C, C), .w = lm));
    return HB_OK;
}

/* ---- the two workloads ---- */
static hb_status prefill_step(hb_workload *w) {
    tf_state *st = w->impl;
    const hb_case *c = &w->c;
    /* ep: the rank's rows are rows erank N .. of the group's batch (synthetic routing numbers them so) */
    HB_TRY(forward(w->be, &c->model, st, P(st, st->lay.tokens), c->batch, c->prompt, 0,
                   st->erank * c->batch * c->prompt));
    st->have_counts = 1;
    if (!w->have_fp) {
        HB_TRY(hb_fingerprint_device(w->be, P(st, st->lay.logits), c->batch * st->lay.V, st->lay.V, w->fp));
        w->have_fp = 1;
    }
    return HB_OK;
}

/* One generated token per sequence; its input is the previous step's output token. */
static hb_status decode_step(hb_workload *w) {
    tf_state *st = w->impl;
    const hb_case *c = &w->c;
    int64_t pos = c->prompt + st->step % c->gen;
    /* the first pass (steps 0 .. G-1) reads row s of hist and writes row s+1 while there is
     * one; every later step reads and writes next */
    int32_t *hist = P(st, st->lay.hist), *next = P(st, st->lay.next);
    int32_t *in = st->step < c->gen ? hist + st->step * c->batch : next;
    int32_t *out = st->step + 1 < c->gen ? hist + (st->step + 1) * c->batch : next;
    HB_TRY(forward(w->be, &c->model, st, in, c->batch, 1, pos,
                   st->lay.ep * c->batch * (c->prompt + st->step) + st->erank * c->batch));
    st->have_counts = 1;
    if (!w->have_fp) {
        HB_TRY(hb_fingerprint_device(w->be, P(st, st->lay.logits), c->batch * st->lay.V, st->lay.V, w->fp));
        w->have_fp = 1;
    }
    HB_TRY(HB_OP(w->be, sample, .out = out, .logits = TT(st, st->lay.logits),
                 .temperature = c->temperature, .seed = hb_rng_u64(c->seed, 7), .step = (uint64_t)st->step));
    st->step++;
    return HB_OK;
}

static void tf_free(hb_workload *w) {
    tf_state *st = w->impl;
    if (!st) return;
    for (int a = 0; a < HB_ARENA_COUNT; a++) w->be->ops->free(w->be, st->arena[a]);
    hb_tf_layout_free(&st->lay);
    free(st->expert_tokens);
    free(st->h_offs);
    free(st->h_cnt);
    free(st->h_ids);
    free(st->a2a);
    free(st);
}

/* Weights from the table's init (quantised ones hold the quantisation of the generated f32
 * values: fill_random computes their scales); an fp8 KV cache gets the static scale 1.0 (the
 * uncalibrated default of inference engines; |k| and |v| stay far below 448 here). */
/* The rank's part of a sharded weight: the whole tensor made in its dtype in a staging buffer -
 * generated (from = NULL), or converted from the checkpoint's f32 values `from` (R, K) - and its
 * rows (HB_SHARD_*) copied out on the host into the rank's tensor. A per-tensor fp8 weight keeps
 * the whole tensor's scale (each rank's codes are the tp = 1 model's, as inference engines shard
 * FP8 checkpoints); block scales with tp are refused at plan time. Setup time, never timed. */
static hb_status stage_shard(hb_backend *be, const hb_case *c, tf_state *st, const hb_tf_tensor *t, int i,
                             const float *from) {
    const hb_tf_layout *y = &st->lay;
    /* block scales: the part is staged in f32 and quantised on its own - the plan made every
     * shard boundary a block boundary (mp_check), so its blocks are the whole tensor's */
    const int block_q = t->q == HB_QUANT_BLOCK;
    const hb_dtype sdt = block_q ? HB_F32 : t->dt;
    const int64_t es = hb_dtype_size(sdt), R = t->full_rows, K = t->full_cols, r = st->trank;
    const int64_t rows = t->ne[0], cols = t->ndim > 1 ? t->ne[1] : 1;
    const int64_t wb = (R * K * es + 255) / 256 * 256; /* the whole's bytes, then its scale */
    const int tensor_q = t->q == HB_QUANT_TENSOR;
    char *dev = NULL;
    float *devf = NULL, scale = 1.0f;
    char *whole = malloc((size_t)(R * K * es)), *part = malloc((size_t)(rows * cols * es));
    hb_status s = whole && part ? be->ops->alloc(be, (size_t)(wb + 256), (void **)&dev) : HB_ERR_NOMEM;
    hb_tensor dst = t->ndim > 1 ? hb_t2(dev, sdt, R, K, K) : hb_t1(dev, sdt, R);
    if (tensor_q) dst = hb_tq(dst, HB_QUANT_TENSOR, 0, 0, (float *)(void *)(dev + wb));
    if (s == HB_OK && from) {
        s = be->ops->alloc(be, (size_t)(R * K) * sizeof *devf, (void **)&devf);
        if (s == HB_OK) s = be->ops->upload(be, devf, from, (size_t)(R * K) * sizeof *devf);
        if (s == HB_OK) s = HB_OP(be, convert, .dst = dst, .src = hb_t1(devf, HB_F32, R * K));
    } else if (s == HB_OK) {
        s = HB_OP(be, fill_random, .dst = dst, .seed = hb_rng_u64(c->seed, t->init_id), .scale = t->init_scale,
                  .offset = t->init_offset);
    }
    if (s == HB_OK) s = be->ops->download(be, whole, dev, (size_t)(R * K * es));
    if (s == HB_OK && tensor_q) s = be->ops->download(be, &scale, dev + wb, sizeof scale);
    if (s == HB_OK) s = be->ops->sync(be);
    if (s == HB_OK) {
        const size_t rb = (size_t)(K * es); /* a whole row */
        int64_t o = 0;                     /* rows of part written */
        const int64_t D = y->D, hq = y->Hq, hkv = y->Hkv;
        const int64_t kh0 = r * hq * y->Hkv_full / y->Hq_full; /* the first kv head the rank's q heads use */
        switch (t->shard) {
        case HB_SHARD_ROWS:
            memcpy(part, whole + (size_t)(r * rows) * rb, (size_t)rows * rb);
            break;
        case HB_SHARD_COLS:
            for (int64_t j = 0; j < rows; j++)
                memcpy(part + (size_t)(j * cols * es), whole + (size_t)j * rb + (size_t)(r * cols * es), (size_t)(cols * es));
            break;
        case HB_SHARD_QKV: { /* [q heads | k heads | v heads] of the rank */
            const int64_t src[3] = {r * hq * D, (y->Hq_full + kh0) * D, (y->Hq_full + y->Hkv_full + kh0) * D};
            const int64_t n[3] = {hq * D, hkv * D, hkv * D};
            for (int p = 0; p < 3; p++) {
                memcpy(part + (size_t)o * rb, whole + (size_t)src[p] * rb, (size_t)n[p] * rb);
                o += n[p];
            }
            break;
        }
        case HB_SHARD_GATEUP: { /* rows r F.. of the gate half, then of the up half */
            const int64_t F = rows / 2, Ffull = R / 2;
            memcpy(part, whole + (size_t)(r * F) * rb, (size_t)F * rb);
            memcpy(part + (size_t)F * rb, whole + (size_t)(Ffull + r * F) * rb, (size_t)F * rb);
            break;
        }
        case HB_SHARD_MLA_Q: { /* the rank's heads' nope rows, then their rope rows */
            const int64_t nn = hq * y->dn, nr = hq * y->dr;
            memcpy(part, whole + (size_t)(r * nn) * rb, (size_t)nn * rb);
            memcpy(part + (size_t)nn * rb, whole + (size_t)(y->Hq_full * y->dn + r * nr) * rb, (size_t)nr * rb);
            break;
        }
        default: s = HB_ERR_INTERNAL;
        }
    }
    if (s == HB_OK && block_q) { /* the f32 part into the rank's tensor and its block scales */
        s = be->ops->upload(be, dev, part, (size_t)(rows * cols * es));
        if (s == HB_OK) s = HB_OP(be, convert, .dst = TT(st, i), .src = hb_t1(dev, HB_F32, rows * cols));
    } else if (s == HB_OK) {
        s = be->ops->upload(be, P(st, i), part, (size_t)(rows * cols * es));
    }
    if (s == HB_OK && tensor_q) s = be->ops->upload(be, st->arena[t->arena] + t->scale_off, &scale, sizeof scale);
    if (s == HB_OK) s = be->ops->sync(be);
    be->ops->free(be, devf);
    be->ops->free(be, dev);
    free(whole);
    free(part);
    return s;
}

/* The rank's experts erank El .. of a stack (ep), each the rank's slice of it (tp), one expert at
 * a time: its f32 values computed on the host at the whole stack's element indices (the values
 * fill_random writes at ep = tp = 1), or taken from the whole stack's f32 values `from`
 * (the checkpoint's (E, rows, cols) at ep = tp = 1),
 * uploaded into an f32 staging buffer and converted into the stack's dtype (block-quantised
 * fp8: each expert's own blocks and scales; per-tensor fp8 is refused with ep at plan time).
 * Setup time, never timed; the staging holds one expert. */
static hb_status fill_experts(hb_backend *be, const hb_case *c, tf_state *st, const hb_tf_tensor *t, int i,
                              const float *from) {
    const int64_t El = t->ne[0], rows = t->ne[1], cols = t->ne[2], n = rows * cols, es = hb_dtype_size(t->dt);
    const int64_t nsc = t->q == HB_QUANT_BLOCK ? ((rows + t->bm - 1) / t->bm) * ((cols + t->bk - 1) / t->bk) : 0;
    const uint64_t seed = hb_rng_u64(c->seed, t->init_id);
    const hb_tensor whole = TT(st, i);
    float *host = malloc((size_t)n * sizeof *host), *dev = NULL;
    hb_status s = host ? be->ops->alloc(be, (size_t)n * sizeof *host, (void **)&dev) : HB_ERR_NOMEM;
    if (t->q == HB_QUANT_TENSOR) s = HB_ERR_INTERNAL;
    /* tp: the rank's rows of the gate and up halves (EXP_UP), its columns (EXP_DOWN) of the
     * whole expert's (2 Fe tp, C) / (C, Fe tp) matrix */
    const int64_t tp = st->lay.tp, r = st->trank, up = t->shard == HB_SHARD_EXP_UP;
    const int64_t Fl = up ? rows / 2 : cols, full = n * tp; /* the whole expert's elements */
    for (int64_t e = 0; e < El && s == HB_OK; e++) {
        const uint64_t base = (uint64_t)((st->erank * El + e) * full);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                /* the element's index in the whole expert */
                const int64_t g = up ? ((i < Fl ? r * Fl + i : Fl * tp + r * Fl + (i - Fl)) * cols + j)
                                     : (i * cols * tp + r * Fl + j);
                host[i * cols + j] = from ? from[base + (uint64_t)g]
                                          : hb_rng_value(seed, base + (uint64_t)g, t->init_scale, t->init_offset);
            }
        hb_tensor dst = hb_t2((char *)whole.data + e * n * es, t->dt, rows, cols, cols);
        if (t->q == HB_QUANT_BLOCK) dst = hb_tq(dst, t->q, t->bm, t->bk, whole.q.scale + e * nsc);
        s = be->ops->upload(be, dev, host, (size_t)n * sizeof *host);
        if (s == HB_OK) s = HB_OP(be, convert, .dst = dst, .src = hb_t1(dev, HB_F32, n));
        if (s == HB_OK) s = be->ops->sync(be);
    }
    be->ops->free(be, dev);
    free(host);
    return s;
}

static hb_status fill_weights(hb_backend *be, const hb_case *c, tf_state *st) {
    const hb_tf_layout *y = &st->lay;
    for (int i = 0; i < y->n_tensors; i++) {
        const hb_tf_tensor *t = &y->t[i];
        if (t->arena == HB_ARENA_WEIGHTS && (t->shard == HB_SHARD_EXP_UP || t->shard == HB_SHARD_EXP_DOWN)) {
            HB_TRY(fill_experts(be, c, st, t, i, NULL));
        } else if (t->arena == HB_ARENA_WEIGHTS && t->shard != HB_SHARD_NONE && y->tp > 1) {
            HB_TRY(stage_shard(be, c, st, t, i, NULL));
        } else if (t->arena == HB_ARENA_WEIGHTS) {
            HB_TRY(HB_OP(be, fill_random, .dst = TT(st, i), .seed = hb_rng_u64(c->seed, t->init_id),
                         .scale = t->init_scale, .offset = t->init_offset));
        } else if (t->arena == HB_ARENA_KV && t->q == HB_QUANT_TENSOR && st->arena[t->arena]) {
            const float one = 1.0f;
            HB_TRY(be->ops->upload(be, st->arena[t->arena] + t->scale_off, &one, sizeof one));
        }
    }
    return HB_OK;
}

/* Weights from the case's checkpoint: each weight read as f32 (checkpoint.c maps the names),
 * uploaded into an f32 staging buffer the size of the largest weight and converted into the
 * table's dtype by the backend (quantised ones get their scales as convert computes them).
 * The time it takes is setup time, never timed; it is reported on stderr. */
static hb_status load_weights(hb_backend *be, const hb_case *c, tf_state *st, hb_err *err) {
    const hb_tf_layout *y = &st->lay;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hb_ckpt *ck = NULL;
    HB_TRY(hb_ckpt_open(c->weights, &ck, err));
    int64_t maxn = 1, total = 0;
    for (int i = 0; i < y->n_tensors; i++)
        if (y->t[i].arena == HB_ARENA_WEIGHTS) maxn = numel(&y->t[i]) > maxn ? numel(&y->t[i]) : maxn;
    float *host = malloc((size_t)maxn * sizeof *host), *dev = NULL;
    hb_status s = host ? be->ops->alloc(be, (size_t)maxn * sizeof *host, (void **)&dev) : HB_ERR_NOMEM;
    int64_t n_stored = 0, n_requant = 0;
    char why[1100] = "";
    for (int i = 0; i < y->n_tensors && s == HB_OK; i++) {
        const hb_tf_tensor *t = &y->t[i];
        const int64_t tc = t->ndim > 1 ? t->ne[t->ndim - 1] : 1, tr = numel(t) / tc;
        if (t->arena == HB_ARENA_WEIGHTS && t->shard != HB_SHARD_NONE && (y->tp > 1 || y->ep > 1)) {
            /* the rank's part (tp, ep): the whole tensor read as at tp = ep = 1 - (rows, cols),
             * or an expert stack (E rows, cols) - and the part taken as the generator takes it */
            const int exp = t->shard == HB_SHARD_EXP_UP || t->shard == HB_SHARD_EXP_DOWN;
            int64_t wr = t->full_rows, wc = t->full_cols > 0 ? t->full_cols : 1;
            if (exp) {
                wr = t->full_rows * t->ne[1] * (t->shard == HB_SHARD_EXP_UP ? y->tp : 1);
                wc = t->ne[2] * (t->shard == HB_SHARD_EXP_DOWN ? y->tp : 1);
            }
            float *whole = malloc((size_t)(wr * wc) * sizeof *whole);
            s = whole ? hb_ckpt_read_f32(ck, &c->model, t->name, t->layer, whole, wr, wc, err) : HB_ERR_NOMEM;
            if (s == HB_OK) s = exp ? fill_experts(be, c, st, t, i, whole) : stage_shard(be, c, st, t, i, whole);
            free(whole);
            total += wr * wc * (int64_t)sizeof *whole;
            if (hb_dtype_is_fp8(t->dt)) {
                if (!why[0]) snprintf(why, sizeof why, "tp/ep shards are quantised from the whole tensor's f32 values");
                n_requant++;
            }
            continue;
        }
        if (t->arena == HB_ARENA_WEIGHTS && t->dt == HB_FP8_E4M3 &&
            (t->q == HB_QUANT_TENSOR || (t->q == HB_QUANT_BLOCK && t->bm == t->bk))) {
            /* e4m3 codes and scales as the checkpoint stores them, where its layout is the
             * case's; else (fused pieces with different scales, another block grid, a row
             * permutation, another dtype) re-quantised from f32 below, and counted */
            hb_err e2 = {{0}};
            float *sc = (float *)(void *)(st->arena[t->arena] + t->scale_off);
            const int64_t ns = n_scales(t);
            float *hs = malloc((size_t)ns * sizeof *hs);
            hb_status r = hs ? hb_ckpt_read_fp8(ck, &c->model, t->name, t->layer, (uint8_t *)host, hs, tr, tc,
                                                t->q == HB_QUANT_BLOCK ? t->bm : 0, &e2)
                             : HB_ERR_NOMEM;
            if (r == HB_OK) {
                s = be->ops->upload(be, P(st, i), host, (size_t)(tr * tc));
                if (s == HB_OK) s = be->ops->upload(be, sc, hs, (size_t)ns * sizeof *hs);
                if (s == HB_OK) s = be->ops->sync(be);
                free(hs);
                n_stored++;
                total += tr * tc;
                continue;
            }
            free(hs);
            if (r != HB_ERR_UNSUPPORTED) {
                s = hb_errf(err, r, "%s", e2.msg);
                break;
            }
            if (!why[0]) snprintf(why, sizeof why, "%s", e2.msg);
            n_requant++;
        }
        if (t->arena == HB_ARENA_WEIGHTS) {
            /* matrices (rows, cols); expert stacks (E, rows, cols) read as (E rows, cols) */
            const int64_t cols = t->ndim > 1 ? t->ne[t->ndim - 1] : 1, rows = numel(t) / cols;
            s = hb_ckpt_read_f32(ck, &c->model, t->name, t->layer, host, rows, cols, err);
            if (s == HB_OK) s = be->ops->upload(be, dev, host, (size_t)(rows * cols) * sizeof *host);
            if (s == HB_OK) s = HB_OP(be, convert, .dst = TT(st, i), .src = hb_t1(dev, HB_F32, rows * cols));
            total += rows * cols * (int64_t)sizeof *host;
        } else if (t->arena == HB_ARENA_KV && t->q == HB_QUANT_TENSOR && st->arena[t->arena]) {
            const float one = 1.0f;
            s = be->ops->upload(be, st->arena[t->arena] + t->scale_off, &one, sizeof one);
        }
    }
    if (s == HB_OK) s = be->ops->sync(be);
    be->ops->free(be, dev);
    free(host);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (s == HB_OK && n_stored + n_requant > 0)
        fprintf(stderr, "hetbench: weights of %s from %s: %.3f GB in %.2f s (%.2f GB/s); e4m3 tensors as stored: %lld, "
                "re-quantised from f32: %lld%s%s%s\n", c->model.name, c->weights, (double)total * 1e-9, sec,
                sec > 0 ? (double)total * 1e-9 / sec : 0.0, (long long)n_stored, (long long)n_requant,
                why[0] ? " (first: " : "", why, why[0] ? ")" : "");
    else if (s == HB_OK)
        fprintf(stderr, "hetbench: weights of %s from %s: %.3f GB as f32 in %.2f s (%.2f GB/s), converted to %s\n",
                c->model.name, c->weights, (double)total * 1e-9, sec, sec > 0 ? (double)total * 1e-9 / sec : 0.0,
                hb_case_dtype_name(c));
    hb_ckpt_close(ck);
    return s;
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
    HB_TRY(hb_tf_layout_init(c, decode, &st->lay, err));
    const hb_tf_layout *y = &st->lay;
    st->routing = c->routing;
    st->zipf_s = c->zipf_s;
    st->seed = c->seed;
    if (y->tp > 1) {
        /* the harness made a group of tp ranks before dispatch (hb_comm over MPI, NCCL or RCCL) */
        if (!w->group || w->group->size != y->tp)
            return hb_errf(err, HB_ERR_INTERNAL, "%s: tp %lld without a rank group of %lld ranks", w->desc->name,
                           (long long)y->tp, (long long)y->tp);
        st->comm = w->group;
        st->trank = w->group->rank;
    }
    if (y->ep > 1) {
        /* experts sharded over a group of ep ranks; attention data parallel (each rank its
         * own batch: rows erank B .. of the group's) */
        if (!w->group || w->group->size != y->ep)
            return hb_errf(err, HB_ERR_INTERNAL, "%s: ep %lld without a rank group of %lld ranks", w->desc->name,
                           (long long)y->ep, (long long)y->ep);
        st->comm = w->group;
        st->erank = w->group->rank;
        st->h_offs = malloc((size_t)(y->E + 1) * sizeof *st->h_offs);
        st->h_cnt = malloc((size_t)(2 * y->E) * sizeof *st->h_cnt);
        st->h_ids = malloc((size_t)y->R_ep * sizeof *st->h_ids);
        st->a2a = malloc((size_t)(6 * y->ep) * sizeof *st->a2a);
        if (!st->h_offs || !st->h_cnt || !st->h_ids || !st->a2a) return HB_ERR_NOMEM;
    }
    if (y->n_moe > 0) {
        st->expert_tokens = calloc((size_t)y->n_moe * (size_t)y->E, sizeof *st->expert_tokens);
        if (!st->expert_tokens) return HB_ERR_NOMEM;
    }
    for (int a = 0; a < HB_ARENA_COUNT; a++)
        if (be->ops->alloc(be, (size_t)(y->arena_bytes[a] > 0 ? y->arena_bytes[a] : 256), (void **)&st->arena[a]))
            return hb_errf(err, HB_ERR_NOMEM, "%s: allocation of %.2f GiB failed: %s",
                           w->desc->name,
                           (double)(y->weight_bytes + y->act_bytes + y->kv_bytes) / (1 << 30), be->err);
    w->out = P(st, y->logits);
    w->out_n = y->B * y->V;

    hb_status s = c->weights[0] ? load_weights(be, c, st, err) : fill_weights(be, c, st);
    if (s != HB_OK) {
        if (s == HB_ERR_UNSUPPORTED)
            return hb_errf(err, s, "%s: %s weights: %s", w->desc->name, hb_case_dtype_name(c), be->err);
        return s;
    }
    const int64_t N = y->B * y->T_max;
    if (y->ep > 1) { /* the combine's weights that put the expert outputs back in received order */
        float *one = malloc((size_t)y->R_ep * sizeof *one);
        if (!one) return HB_ERR_NOMEM;
        for (int64_t i = 0; i < y->R_ep; i++) one[i] = 1.0f;
        s = be->ops->upload(be, P(st, y->ones), one, (size_t)y->R_ep * sizeof *one);
        free(one);
        HB_TRY(s);
    }
    if (c->prompt_tokens[0]) { /* B prompts of P ids, in the file's order; ep: the file holds the
                                * group's ep B prompts, the rank takes prompts erank B .. */
        int32_t *tok = malloc((size_t)(N * y->ep) * sizeof *tok);
        if (!tok) return HB_ERR_NOMEM;
        s = hb_tokens_read(c->prompt_tokens, N * y->ep, y->V, tok, NULL, err);
        if (s == HB_OK) s = be->ops->upload(be, P(st, y->tokens), tok + st->erank * N, (size_t)N * sizeof *tok);
        free(tok);
        HB_TRY(s);
    } else if (y->ep > 1) { /* ids erank N .. of the group's ep N (the ep = 1 batch of ep B prompts) */
        int32_t *tok = malloc((size_t)N * sizeof *tok);
        if (!tok) return HB_ERR_NOMEM;
        const uint64_t seed = hb_rng_u64(c->seed, 5);
        for (int64_t i = 0; i < N; i++)
            tok[i] = (int32_t)(hb_rng_u64(seed, (uint64_t)(st->erank * N + i)) % (uint64_t)y->V);
        s = be->ops->upload(be, P(st, y->tokens), tok, (size_t)N * sizeof *tok);
        free(tok);
        HB_TRY(s);
    } else {
        HB_TRY(HB_OP(be, fill_tokens, .dst = P(st, y->tokens), .n = N, .seed = hb_rng_u64(c->seed, 5), .vocab = y->V));
    }
    if (decode) {
        /* the prompt goes through the model once: the KV cache then holds positions 0..P-1 and
         * the first generated token is the argmax of the prompt's last logits */
        HB_TRY(forward(be, &c->model, st, P(st, y->tokens), c->batch, c->prompt, 0, st->erank * N));
        HB_TRY(HB_OP(be, argmax, .out = P(st, y->hist), .in = TT(st, y->logits)));
    }
    return HB_OK;
}

static hb_status prefill_setup(hb_workload *w, hb_err *err) { return tf_setup(w, 0, err); }
static hb_status decode_setup(hb_workload *w, hb_err *err) { return tf_setup(w, 1, err); }

hb_status hb_workload_expert_tokens(const hb_workload *w, const int64_t **counts, int64_t *n_layers,
                                    int64_t *n_experts) {
    *counts = NULL;
    *n_layers = *n_experts = 0;
    if (w->desc == &hb_wl_serve) return hb_serve_expert_tokens(w, counts, n_layers, n_experts);
    if (w->desc != &hb_wl_prefill && w->desc != &hb_wl_decode) return HB_OK;
    const tf_state *st = w->impl;
    if (!st->expert_tokens || !st->have_counts) return HB_OK;
    *counts = st->expert_tokens;
    *n_layers = st->lay.n_moe;
    *n_experts = st->lay.E;
    return HB_OK;
}

hb_status hb_workload_generated(hb_workload *w, int32_t **ids, int64_t *rows, int64_t *cols) {
    *ids = NULL;
    *rows = *cols = 0;
    if (w->desc == &hb_wl_serve) return hb_serve_generated(w, ids, rows, cols);
    const int decode = w->desc == &hb_wl_decode;
    if (!decode && w->desc != &hb_wl_prefill) return HB_OK;
    tf_state *st = w->impl;
    const int64_t B = w->c.batch;
    if (!st || (decode && st->step < 1) || (!decode && !w->have_fp)) return HB_OK;
    /* decode: hist holds rows 0 .. min(step, G-1) (step s wrote row s+1) */
    const int64_t n = decode ? (st->step + 1 < w->c.gen ? st->step + 1 : w->c.gen) : 1;
    int32_t *dev = P(st, decode ? st->lay.hist : st->lay.next);
    if (!decode) HB_TRY(HB_OP(w->be, argmax, .out = dev, .in = TT(st, st->lay.logits)));
    int32_t *h = malloc((size_t)(n * B) * sizeof *h), *t = malloc((size_t)(n * B) * sizeof *t);
    hb_status s = h && t ? w->be->ops->download(w->be, h, dev, (size_t)(n * B) * sizeof *h) : HB_ERR_NOMEM;
    if (s == HB_OK) /* (n, B) on the device -> (B, n) */
        for (int64_t j = 0; j < n; j++)
            for (int64_t b = 0; b < B; b++) t[b * n + j] = h[j * B + b];
    free(h);
    if (s != HB_OK) {
        free(t);
        return s;
    }
    *ids = t;
    *rows = B;
    *cols = n;
    return HB_OK;
}

/* ---- the descriptors ---- */

#define HB_TRY_QUIET(expr)                   \
    do {                                     \
        hb_status try_q_ = (expr);           \
        if (try_q_ != HB_OK) return try_q_;  \
    } while (0)

/* "prefill llama3-8b[2/32L] bf16 B=1 P=128", "decode ... G=32"; [l/LL] only when truncated,
 * " kv=fp8" only when the KV cache dtype is not auto. */
static void tf_label(const hb_case *c, int decode, char *buf, int len) {
    char layers[96] = "", kv[48] = "";
    if (c->kv_dtype != HB_KV_AUTO) snprintf(kv, sizeof kv, " kv=%s", hb_kvt_name(c->kv_dtype));
    char moe[64] = "", name[144]; /* " routing=zipf:1.2"; a dense twin is named "<model>-dense[-active]" */
    hb_case_model_name(c, name, sizeof name);
    if (hb_model_is_moe(&c->model) && c->routing == HB_ROUTING_BALANCED) snprintf(moe, sizeof moe, " routing=balanced");
    else if (hb_model_is_moe(&c->model) && c->routing == HB_ROUTING_ZIPF)
        snprintf(moe, sizeof moe, " routing=zipf:%g", (double)c->zipf_s);
    if (c->model.n_layers != c->model.n_layers_full)
        snprintf(layers, sizeof layers, "[%lld/%lldL]", (long long)c->model.n_layers,
                 (long long)c->model.n_layers_full);
    if (moe[0]) strncat(layers, moe, sizeof layers - strlen(layers) - 1);
    if (c->tp > 1) snprintf(kv + strlen(kv), sizeof kv - strlen(kv), " tp=%lld", (long long)c->tp);
    if (c->ep > 1) snprintf(kv + strlen(kv), sizeof kv - strlen(kv), " ep=%lld", (long long)c->ep);
    if (!decode)
        snprintf(buf, len, "prefill %s%s %s%s B=%lld P=%lld", name, layers,
                 hb_case_dtype_name(c), kv, (long long)c->batch, (long long)c->prompt);
    else
        snprintf(buf, len, "decode %s%s %s%s B=%lld P=%lld G=%lld", name, layers,
                 hb_case_dtype_name(c), kv, (long long)c->batch, (long long)c->prompt,
                 (long long)c->gen);
}
static void prefill_label(const hb_case *c, char *buf, int len) { tf_label(c, 0, buf, len); }
static void decode_label(const hb_case *c, char *buf, int len) { tf_label(c, 1, buf, len); }

/* fp8-block: every quantised matrix is a whole number of quant_block x quant_block blocks
 * (DeepSeek-V3's 128 x 128 on its 7168-wide model), so no scale covers a partial block or
 * straddles the gate/up halves of the fused SwiGLU matrix. */
static hb_status block_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"quant_block", "dtype", "model", NULL};
    if (c->quant != HB_QUANT_BLOCK) return HB_OK;
    const hb_model *m = &c->model;
    const int64_t b = c->quant_block, D = hb_model_head_dim(m);
    int64_t dqkv = 0, hqd = 0; /* an overflow here is reported by the layout (cost) */
    if (hb_mul_ovf(m->n_heads, D, &hqd)) hqd = 0;
    if (hb_mul_ovf(2, m->n_kv_heads, &dqkv) || hb_add_ovf(dqkv, m->n_heads, &dqkv) || hb_mul_ovf(dqkv, D, &dqkv))
        dqkv = 0;
    const struct { const char *what; int64_t n; } dims[] = {
        {"dim", m->dim}, {"ffn_dim", m->ffn_dim}, {"heads x head_dim", hb_model_is_mla(m) ? b : hqd},
        {"(heads + 2 kv_heads) x head_dim", hb_model_is_mla(m) ? b : dqkv},
        {"moe_ffn_dim", hb_model_is_moe(m) ? m->moe_ffn_dim : b},
        {"kv_lora_rank", hb_model_is_mla(m) ? m->kv_lora_rank : b},
        {"q_lora_rank", hb_model_is_mla(m) && m->q_lora_rank ? m->q_lora_rank : b},
        {"heads x (qk_nope_dim + qk_rope_dim)", hb_model_is_mla(m) ? m->n_heads * (m->qk_nope_dim + m->qk_rope_dim) : b},
        {"heads x (qk_nope_dim + v_head_dim)", hb_model_is_mla(m) ? m->n_heads * (m->qk_nope_dim + m->v_head_dim) : b},
        {"heads x v_head_dim", hb_model_is_mla(m) ? m->n_heads * m->v_head_dim : b},
        {"the dense twin's ffn width", m->dense_twin ? hb_model_layer_ffn(m, m->n_layers - 1) : b},
        {"the shared experts' width", hb_model_is_moe(m) && m->n_shared ? m->n_shared * m->moe_ffn_dim : b},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (b <= 0 || dims[i].n % b) {
            *blame = keys;
            return hb_errf(err, HB_ERR_INPUT, "%lld does not divide %s = %lld of model '%s' (accepted: a "
                           "quant_block that divides dim, ffn_dim, moe_ffn_dim and the attention widths, e.g. 128 or 64)",
                           (long long)b, dims[i].what, (long long)dims[i].n, m->name);
        }
    return HB_OK;
}

/* A prompt token file holds batch x prompt ids below the vocabulary (read at plan time, so a
 * bad file stops the run before anything runs). */
static hb_status tokens_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"prompt_tokens", NULL};
    if (!c->prompt_tokens[0]) return HB_OK;
    *blame = keys;
    /* ep: the group's ep x batch prompts (each rank its batch) */
    const int64_t ep = hb_model_is_moe(&c->model) && c->ep > 1 ? c->ep : 1;
    return hb_tokens_read(c->prompt_tokens, ep * c->batch * c->prompt, c->model.vocab, NULL, NULL, err);
}

/* Model parallelism: tp splits the heads (kv heads split too, or replicated where tp >
 * kv_heads: one of them divides the other), the ffn width of every layer, and the vocabulary
 * where tp divides it (else the head is replicated); dense GQA models in f32/bf16/f16 with
 * generated weights. ep splits the routed experts of a MoE model (GQA or MLA attention,
 * data parallel); not with tp yet, nor per-tensor fp8 or checkpoint weights. */
static hb_status mp_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const k_tp[] = {"tp", "model", NULL}, *const k_ep[] = {"ep", "model", NULL};
    const hb_model *m = &c->model;
    if (c->ep > 1) {
        *blame = k_ep;
        if (!hb_model_is_moe(m))
            return hb_errf(err, HB_ERR_INPUT, "ep %lld on the dense model '%s' (accepted: ep 1; ep splits the experts "
                           "of a MoE model)", (long long)c->ep, m->name);
        if (m->n_experts % c->ep)
            return hb_errf(err, HB_ERR_INPUT, "ep %lld does not divide the %lld experts of model '%s' (accepted: an ep "
                           "that divides the experts)", (long long)c->ep, (long long)m->n_experts, m->name);
        if (c->ep > 64)
            return hb_errf(err, HB_ERR_INPUT, "ep %lld is above 64 (accepted: 1 to 64)", (long long)c->ep);
        if (c->tp > 1)
            return hb_errf(err, HB_ERR_INPUT, "ep %lld with tp %lld: expert and tensor parallelism together are not "
                           "implemented yet (accepted with ep > 1: tp 1)", (long long)c->ep, (long long)c->tp);
        if (hb_dtype_is_fp8(c->dtype) && c->quant != HB_QUANT_BLOCK) {
            static const char *const k_dt[] = {"dtype", "ep", NULL};
            *blame = k_dt;
            return hb_errf(err, HB_ERR_INPUT, "dtype %s (one scale per tensor) with ep %lld is not implemented yet "
                           "(accepted with ep > 1: f32, bf16, f16, fp8-block)", hb_case_dtype_name(c), (long long)c->ep);
        }
        return HB_OK;
    }
    const int64_t tp = c->tp;
    if (tp <= 1) return HB_OK;
    *blame = k_tp;
    if (m->n_heads % tp)
        return hb_errf(err, HB_ERR_INPUT, "tp %lld does not divide the %lld heads of model '%s' (accepted: a tp that "
                       "divides heads)", (long long)tp, (long long)m->n_heads, m->name);
    if (m->n_kv_heads % tp && tp % m->n_kv_heads)
        return hb_errf(err, HB_ERR_INPUT, "tp %lld and the %lld kv heads of model '%s': neither divides the other "
                       "(accepted: a tp that divides kv_heads, or a multiple of kv_heads: those are replicated)",
                       (long long)tp, (long long)m->n_kv_heads, m->name);
    for (int64_t l = 0; l < m->n_layers && l < HB_MODEL_MAX_LAYERS; l++)
        if (hb_model_layer_ffn(m, l) % tp)
            return hb_errf(err, HB_ERR_INPUT, "tp %lld does not divide ffn_dim %lld of model '%s' (accepted: a tp that "
                           "divides ffn_dim)", (long long)tp, (long long)hb_model_layer_ffn(m, l), m->name);
    if (hb_model_is_moe(m) && m->moe_ffn_dim % tp)
        return hb_errf(err, HB_ERR_INPUT, "tp %lld does not divide moe_ffn_dim %lld of model '%s' (accepted: a tp that "
                       "divides moe_ffn_dim)", (long long)tp, (long long)m->moe_ffn_dim, m->name);
    /* fp8 with one scale per tensor: each rank's codes and the whole tensor's scale (stage_shard);
     * the experts' per-tensor scales are each whole stack's (not implemented) */
    if (hb_dtype_is_fp8(c->dtype) && c->quant != HB_QUANT_BLOCK && hb_model_is_moe(m)) {
        static const char *const k_dt[] = {"dtype", "tp", NULL};
        *blame = k_dt;
        return hb_errf(err, HB_ERR_INPUT, "dtype %s with tp %lld on a MoE model is not implemented yet (accepted with "
                       "tp > 1: f32, bf16, f16, fp8-block, and fp8 for dense models)", hb_case_dtype_name(c), (long long)tp);
    }
    /* fp8-block: every shard boundary must be a block boundary, so that each rank's blocks (and
     * the 1 x quant_block activation tiles of its row-parallel inputs) are the tp = 1 model's */
    if (c->quant == HB_QUANT_BLOCK) {
        static const char *const k_qb[] = {"quant_block", "tp", NULL};
        const int64_t qb = c->quant_block, D = hb_model_head_dim(m), H = m->n_heads / tp;
        const int64_t hkv = m->n_kv_heads >= tp ? m->n_kv_heads / tp : 1;
        const int mla = hb_model_is_mla(m);
        const struct { const char *what; int64_t n; } dims[] = {
            {"heads / tp x head_dim", mla ? qb : H * D},
            {"kv_heads / tp x head_dim", mla ? qb : hkv * D},
            {"heads / tp x qk_nope_dim", mla ? H * m->qk_nope_dim : qb},
            {"heads / tp x qk_rope_dim", mla ? H * m->qk_rope_dim : qb},
            {"heads / tp x (qk_nope_dim + v_head_dim)", mla ? H * (m->qk_nope_dim + m->v_head_dim) : qb},
            {"heads / tp x v_head_dim", mla ? H * m->v_head_dim : qb},
            {"moe_ffn_dim / tp", hb_model_is_moe(m) ? m->moe_ffn_dim / tp : qb},
        };
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
            if (qb <= 0 || dims[i].n % qb) {
                *blame = k_qb;
                return hb_errf(err, HB_ERR_INPUT, "fp8-block with tp %lld: quant_block %lld does not divide %s = %lld "
                               "(each rank's share must be whole blocks; accepted: a tp or quant_block that keeps "
                               "them whole)", (long long)tp, (long long)qb, dims[i].what, (long long)dims[i].n);
            }
        for (int64_t l = 0; l < m->n_layers && l < HB_MODEL_MAX_LAYERS; l++)
            if ((hb_model_layer_ffn(m, l) / tp) % qb) {
                *blame = k_qb;
                return hb_errf(err, HB_ERR_INPUT, "fp8-block with tp %lld: quant_block %lld does not divide ffn_dim / tp = "
                               "%lld (each rank's share must be whole blocks; accepted: a tp or quant_block that keeps "
                               "them whole)", (long long)tp, (long long)qb, (long long)(hb_model_layer_ffn(m, l) / tp));
            }
    }
    return HB_OK;
}

/* The positions a case needs must fit the model's position range. */
static hb_status prefill_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"prompt", "model", NULL};
    const hb_model *m = &c->model;
    HB_TRY_QUIET(block_check(c, blame, err));
    HB_TRY_QUIET(mp_check(c, blame, err));
    *blame = keys;
    if (c->prompt > m->max_seq)
        return hb_errf(err, HB_ERR_INPUT, "prompt %lld exceeds max_seq %lld of model '%s' (accepted: prompt <= %lld)",
                       (long long)c->prompt, (long long)m->max_seq, m->name, (long long)m->max_seq);
    return tokens_check(c, blame, err);
}

static hb_status decode_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"gen", "prompt", "model", NULL};
    const hb_model *m = &c->model;
    HB_TRY_QUIET(block_check(c, blame, err));
    HB_TRY_QUIET(mp_check(c, blame, err));
    *blame = keys;
    if (c->prompt > m->max_seq - c->gen) /* both <= 2^62: the sum might not fit int64_t */
        return hb_errf(err, HB_ERR_INPUT, "prompt %lld + gen %lld = %llu exceeds max_seq %lld of model '%s' "
                       "(accepted: prompt + gen <= %lld)", (long long)c->prompt, (long long)c->gen,
                       (unsigned long long)c->prompt + (unsigned long long)c->gen, (long long)m->max_seq, m->name,
                       (long long)m->max_seq);
    return tokens_check(c, blame, err);
}

static const char *const prefill_keys[] = {"model", "layers", "dense_twin", "routing", "dtype", "kv_dtype",
                                           "quant_block", "batch", "prompt", "weights", "prompt_tokens", "tp", "ep",
                                           NULL};
static const char *const decode_keys[] = {"model", "layers", "dense_twin", "routing", "dtype", "kv_dtype",
                                          "quant_block", "batch", "prompt", "gen", "temperature", "weights",
                                          "prompt_tokens", "tp", "ep", NULL};

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

/* ---- the generated weights as a checkpoint (hetbench weights) ---- */

typedef struct export_ctx {
    hb_backend *be;
    tf_state *st;
} export_ctx;

static hb_status export_get(void *ctx, const char *name, int layer, float *dst, int64_t rows, int64_t cols, hb_err *err) {
    const export_ctx *x = ctx;
    const hb_tf_layout *y = &x->st->lay;
    for (int i = 0; i < y->n_tensors; i++) {
        const hb_tf_tensor *t = &y->t[i];
        if (t->arena != HB_ARENA_WEIGHTS || t->layer != layer || strcmp(t->name, name)) continue;
        if (numel(t) != rows * cols)
            return hb_errf(err, HB_ERR_INTERNAL, "weights: tensor %s of layer %d has %lld elements, the checkpoint %lld", name,
                           layer, (long long)numel(t), (long long)(rows * cols));
        HB_TRY(x->be->ops->download(x->be, dst, P(x->st, i), (size_t)(rows * cols) * sizeof *dst));
        return x->be->ops->sync(x->be);
    }
    return hb_errf(err, HB_ERR_INTERNAL, "weights: no tensor %s of layer %d", name, layer);
}

hb_status hb_tf_export(hb_backend *be, const hb_case *c, const char *dir, hb_err *err) {
    if (c->dtype != HB_F32 || c->tp > 1)
        return hb_errf(err, HB_ERR_INPUT, "weights: dtype %s, tp %lld (accepted: dtype f32, tp 1 - the generator's values "
                       "as f32)", hb_case_dtype_name(c), (long long)c->tp);
    tf_state *st = calloc(1, sizeof *st);
    if (!st) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    hb_status s = hb_tf_layout_init(c, 0, &st->lay, err);
    const hb_tf_layout *y = &st->lay;
    if (s == HB_OK && be->ops->alloc(be, (size_t)(y->arena_bytes[HB_ARENA_WEIGHTS] > 0 ? y->arena_bytes[HB_ARENA_WEIGHTS] : 256),
                                     (void **)&st->arena[HB_ARENA_WEIGHTS]) != HB_OK)
        s = hb_errf(err, HB_ERR_NOMEM, "weights: %.2f GiB of weights do not fit: %s",
                    (double)y->arena_bytes[HB_ARENA_WEIGHTS] / (1 << 30), be->err);
    for (int i = 0; i < y->n_tensors && s == HB_OK; i++) /* fill_weights, the weights alone */
        if (y->t[i].arena == HB_ARENA_WEIGHTS)
            s = HB_OP(be, fill_random, .dst = TT(st, i), .seed = hb_rng_u64(c->seed, y->t[i].init_id),
                      .scale = y->t[i].init_scale, .offset = y->t[i].init_offset);
    if (s == HB_OK) s = be->ops->sync(be);
    export_ctx x = {be, st};
    if (s == HB_OK) s = hb_ckpt_write(dir, &c->model, export_get, &x, err);
    be->ops->free(be, st->arena[HB_ARENA_WEIGHTS]);
    hb_tf_layout_free(&st->lay);
    free(st);
    return s;
}

/* ---- test hook ---- */

hb_status hb_tf_weight(const hb_workload *w, const char *name, int layer, void *dst, size_t bytes, float *scales,
                       int64_t n_scales_cap, hb_err *err) {
    if (w->desc != &hb_wl_prefill && w->desc != &hb_wl_decode)
        return hb_errf(err, HB_ERR_INPUT, "hb_tf_weight: not a prefill/decode workload");
    const tf_state *st = w->impl;
    const hb_tf_layout *y = &st->lay;
    for (int i = 0; i < y->n_tensors; i++) {
        const hb_tf_tensor *t = &y->t[i];
        if (t->arena != HB_ARENA_WEIGHTS || t->layer != layer || strcmp(t->name, name)) continue;
        const size_t nb = (size_t)(numel(t) * hb_dtype_size(t->dt));
        if (bytes != nb || n_scales(t) != n_scales_cap)
            return hb_errf(err, HB_ERR_INPUT, "hb_tf_weight: %s holds %zu bytes and %lld scales", name, nb,
                           (long long)n_scales(t));
        HB_TRY(w->be->ops->download(w->be, dst, P(st, i), nb));
        if (n_scales_cap)
            HB_TRY(w->be->ops->download(w->be, scales, st->arena[t->arena] + t->scale_off, (size_t)n_scales_cap * sizeof *scales));
        return w->be->ops->sync(w->be);
    }
    return hb_errf(err, HB_ERR_INPUT, "hb_tf_weight: no weight %s of layer %d", name, layer);
}

/* A state viewing another workload's table and arenas (not freed), as tp rank trank. */
static tf_state view_state(const hb_tf_layout *y, char *const arena[HB_ARENA_COUNT], int64_t trank) {
    tf_state v;
    memset(&v, 0, sizeof v);
    v.lay = *y;
    v.trank = trank;
    memcpy(v.arena, arena, sizeof v.arena);
    return v;
}

hb_status hb_tf_load_weights(hb_backend *be, const hb_case *c, const hb_tf_layout *y, char *const arena[HB_ARENA_COUNT],
                             int64_t trank, hb_err *err) {
    tf_state v = view_state(y, arena, trank);
    return load_weights(be, c, &v, err);
}

hb_status hb_tf_fill_weights(hb_backend *be, const hb_case *c, const hb_tf_layout *y, char *const arena[HB_ARENA_COUNT],
                             int64_t trank) {
    tf_state v = view_state(y, arena, trank);
    return fill_weights(be, c, &v);
}

hb_status hb_tf_mp_check(const hb_case *c, const char *const **blame, hb_err *err) { return mp_check(c, blame, err); }
