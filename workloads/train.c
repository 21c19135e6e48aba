/* train.c - the train workload: one optimizer step of a decoder-only transformer per iteration
 * (forward, cross-entropy, backward, AdamW), written only against the ops table. A layer's FFN
 * is dense (its own width: dense twins of MoE models too) or Mixture-of-Experts (router,
 * top-k, the experts as grouped GEMMs, shared experts as a dense SwiGLU beside them).
 * Fills the descriptor hb_wl_train (workload.h); the test hooks are in train.h.
 *
 * Read top to bottom: layout (the tensor table, shared by the cost and the allocation), state,
 * init, forward, backward, the step, cost and checks, the descriptor.
 * llm.c's shape: one allocation per kind of state - parameters, gradients, AdamW m and v (the
 * same offsets in all four), the bf16 copy of the GEMM weights (bf16 training), the
 * activations saved for backward, the activation gradients of one layer (reused layer after
 * layer), the token stream. Shapes: N = B*T rows, C model width, D head dim; MoE: E experts,
 * K = top_k, NK = N*K slots, Fe an expert's width. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h" // defines: hb_ckpt_open, hb_ckpt_read_f32, hb_token_shard_open
#include "workload_impl.h"

/* ---- layout ---- */

enum { A_PARAM = 0, A_GRAD, A_M, A_V, A_LP, A_ACT, A_DACT, A_TOK, N_ARENAS };

typedef struct tr_block {
    int ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b; /* -1: absent */
    int qn_w, kn_w;                           /* Qwen3's per-head q/k RMSNorm weights (D); else -1 */
    int router_w, router_b, exp_up, exp_down; /* MoE layers: (E, C), (E), (E 2Fe, C), (E C, Fe); else -1 */
    int64_t F;                                /* the dense FFN's width (a MoE layer's shared experts; 0: none) */
    int moe;
} tr_block;

/* saved activations of one layer: element offsets into A_ACT */
typedef struct tr_saved {
    int64_t x, h1, qkv, att, xm, h2, ff, ffa; /* x: the residual entering the layer; xm: after attention */
    int64_t qkr;                              /* q/k norms: qkv before them (N, d_qkv) */
    /* MoE layers: router logits (N, E); ids, weights (N, K); rows (NK); offsets (E + 1) - the
     * int32 arrays in f32 slots -; xp (NK, C), eup (NK, 2 Fe), eact (NK, Fe), ey (NK, C) */
    int64_t rlog, ids, rwt, rows, offs, xp, eup, eact, ey;
} tr_saved;

typedef struct tr_layout {
    int64_t C, D, Hq, Hkv, F, V, L, d_qkv, d_ff, B, T, N, accum; /* F, d_ff: the widest layer's */
    int64_t E, K, Fe, NK;         /* MoE (0 for a dense model) */
    hb_dtype lpt;                 /* dtype of the GEMM weights' copy: HB_F32 (none) or bf16 */
    hb_recompute rc;              /* what backward recomputes (saved: the layer's shared buffers) */
    int n_t, cap;
    hb_train_tensor *t;
    tr_block *blocks;             /* L */
    int wte, wpe, lm_w, lnf_w, lnf_b;
    int64_t n_param;              /* elements of A_PARAM (= A_GRAD, A_M, A_V; A_LP in lpt) */
    tr_saved *saved;              /* L */
    int64_t x_final, hf, logits, losses; /* A_ACT */
    int64_t dx, dh, dqkv, datt, dff, dffa; /* A_DACT */
    int64_t dqkr;                 /* A_DACT, q/k norms: d loss / d qkv before them (N, d_qkv) */
    int64_t drlog, drwt, dey, deact, deup, dxp; /* A_DACT, MoE: rlog's, rwt's, ey's, eact's, eup's, xp's shapes */
    int64_t n_stream;             /* A_TOK: int32 tokens of one step (accum * dp * N + 1) */
    int64_t bytes[N_ARENAS];
    char ovf[160];
} tr_layout;

static int64_t align64(int64_t n) { return (n + 63) & ~(int64_t)63; } /* elements: 256 bytes of f32 */

/* Appends n elements to an element counter, 64-aligned; on overflow y->ovf names what. */
static int64_t grow(tr_layout *y, int64_t *top, const char *what, int64_t a, int64_t b) {
    int64_t n, end;
    if (hb_mul_ovf(a, b, &n) || hb_add_ovf(*top, n, &end) || end > ((int64_t)1 << 60)) {
        if (!y->ovf[0]) snprintf(y->ovf, sizeof y->ovf, "%s (%lld x %lld elements)", what, (long long)a, (long long)b);
        return 0;
    }
    const int64_t off = *top;
    *top = align64(end);
    return off;
}

static int param(tr_layout *y, const char *name, int layer, int64_t rows, int64_t cols, float std, float cst,
                 int matrix) {
    if (y->n_t == y->cap) {
        int cap = y->cap ? 2 * y->cap : 64;
        hb_train_tensor *t = realloc(y->t, (size_t)cap * sizeof *t);
        if (!t) {
            snprintf(y->ovf, sizeof y->ovf, "the tensor table (out of host memory)");
            return -1;
        }
        y->t = t;
        y->cap = cap;
    }
    hb_train_tensor *t = &y->t[y->n_t];
    *t = (hb_train_tensor){name, layer, grow(y, &y->n_param, name, rows, cols), rows, cols, std, cst, matrix};
    return y->n_t++;
}

static void layout_free(tr_layout *y) {
    free(y->t);
    free(y->blocks);
    free(y->saved);
    memset(y, 0, sizeof *y);
}

/* GPT-2 / llm.c init: matrices and embeddings N(0, 0.02), the projections into the residual
 * stream N(0, 0.02 / sqrt(2 L)), norm weights 1, biases 0. */
static hb_status layout_init(const hb_case *c, tr_layout *y, hb_err *err) {
    const hb_model *m = &c->model;
    memset(y, 0, sizeof *y);
    if (m->n_layers > HB_MODEL_MAX_LAYERS)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': %lld layers (accepted: 1 to %d)", m->name,
                       (long long)m->n_layers, HB_MODEL_MAX_LAYERS);
    y->C = m->dim, y->Hq = m->n_heads, y->Hkv = m->n_kv_heads, y->D = hb_model_head_dim(m);
    y->V = m->vocab, y->L = m->n_layers;
    y->d_qkv = (y->Hq + 2 * y->Hkv) * y->D; /* <= 3 dim: the model is validated */
    y->F = 0; /* the widest dense FFN (a dense twin's; the shared experts'): sizes the gradients of one layer */
    for (int64_t l = 0; l < y->L; l++) y->F = hb_model_layer_ffn(m, l) > y->F ? hb_model_layer_ffn(m, l) : y->F;
    y->d_ff = m->act == HB_ACT_SWIGLU ? 2 * y->F : y->F;
    if (hb_model_is_moe(m)) y->E = m->n_experts, y->K = m->top_k, y->Fe = m->moe_ffn_dim;
    y->B = c->batch, y->T = c->seq, y->accum = c->grad_accum > 0 ? c->grad_accum : 1;
    y->lpt = c->dtype == HB_BF16 ? HB_BF16 : HB_F32;
    y->rc = c->recompute;
    const int64_t dp = c->dp > 0 ? c->dp : 1;
    if (hb_mul_ovf(y->B, y->T, &y->N) || y->N > ((int64_t)1 << 40))
        return hb_errf(err, HB_ERR_INPUT, "train: batch %lld x seq %lld overflows", (long long)y->B, (long long)y->T);
    if (hb_mul_ovf(y->N, y->K, &y->NK) || y->NK > INT32_MAX) /* moe_permute's rows are int32 */
        return hb_errf(err, HB_ERR_INPUT, "train: batch %lld x seq %lld x top_k %lld slots exceed 2^31 (accepted: "
                       "fewer tokens per step)", (long long)y->B, (long long)y->T, (long long)y->K);
    y->blocks = calloc((size_t)(y->L > 0 ? y->L : 1), sizeof *y->blocks);
    y->saved = calloc((size_t)(y->L > 0 ? y->L : 1), sizeof *y->saved);
    if (!y->blocks || !y->saved) {
        layout_free(y);
        return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    }
    const int ln = m->norm == HB_NORM_LAYERNORM, bias = m->bias;
    const int64_t C = y->C, HqD = y->Hq * y->D, N = y->N;
    const float s = 0.02f, sres = 0.02f / sqrtf(2.0f * (float)(y->L > 0 ? y->L : 1));
    y->wte = param(y, "wte", -1, y->V, C, s, 0, m->tied); /* tied: it is the lm head too */
    y->wpe = m->pos == HB_POS_LEARNED ? param(y, "wpe", -1, m->max_seq, C, s, 0, 0) : -1;
    y->lm_w = m->tied ? -1 : param(y, "lm_w", -1, y->V, C, s, 0, 1);
    y->lnf_w = param(y, "lnf_w", -1, C, 1, 0, 1, 0);
    y->lnf_b = ln ? param(y, "lnf_b", -1, C, 1, 0, 0, 0) : -1;
    for (int l = 0; l < y->L; l++) {
        tr_block *b = &y->blocks[l];
        b->ln1_w = param(y, "ln1_w", l, C, 1, 0, 1, 0);
        b->ln1_b = ln ? param(y, "ln1_b", l, C, 1, 0, 0, 0) : -1;
        b->qkv_w = param(y, "qkv_w", l, y->d_qkv, C, s, 0, 1);
        b->qkv_b = bias || m->qkv_bias ? param(y, "qkv_b", l, y->d_qkv, 1, 0, 0, 0) : -1;
        b->qn_w = m->qk_norm ? param(y, "q_norm_w", l, y->D, 1, 0, 1, 0) : -1;
        b->kn_w = m->qk_norm ? param(y, "k_norm_w", l, y->D, 1, 0, 1, 0) : -1;
        b->proj_w = param(y, "proj_w", l, C, HqD, sres, 0, 1);
        b->proj_b = bias ? param(y, "proj_b", l, C, 1, 0, 0, 0) : -1;
        b->ln2_w = param(y, "ln2_w", l, C, 1, 0, 1, 0);
        b->ln2_b = ln ? param(y, "ln2_b", l, C, 1, 0, 0, 0) : -1;
        b->F = hb_model_layer_ffn(m, l);
        b->moe = hb_model_layer_moe(m, l);
        const int64_t dffl = m->act == HB_ACT_SWIGLU ? 2 * b->F : b->F;
        b->fc_w = b->fc_b = b->fc2_w = b->fc2_b = b->router_w = b->router_b = b->exp_up = b->exp_down = -1;
        if (b->F > 0) {
            b->fc_w = param(y, "fc_w", l, dffl, C, s, 0, 1);
            b->fc_b = bias ? param(y, "fc_b", l, dffl, 1, 0, 0, 0) : -1;
            b->fc2_w = param(y, "fc2_w", l, C, b->F, sres, 0, 1);
            b->fc2_b = bias ? param(y, "fc2_b", l, C, 1, 0, 0, 0) : -1;
        }
        if (b->moe) { /* the router as a matrix, the experts as residual projections like fc2 */
            b->router_w = param(y, "router_w", l, y->E, C, s, 0, 1);
            /* DeepSeek-V3's score-correction bias only chooses: no gradient reaches it (its
             * balancing update is not modelled), so it stays at 0 */
            b->router_b = m->router_bias ? param(y, "router_b", l, y->E, 1, 0, 0, 0) : -1;
            int64_t rows_up = 0, rows_down = 0;
            if (hb_mul_ovf(y->E, 2 * y->Fe, &rows_up) || hb_mul_ovf(y->E, C, &rows_down)) {
                snprintf(y->ovf, sizeof y->ovf, "the expert stacks (%lld experts)", (long long)y->E);
                break;
            }
            b->exp_up = param(y, "exp_up", l, rows_up, C, s, 0, 1);
            b->exp_down = param(y, "exp_down", l, rows_down, y->Fe, sres, 0, 1);
        }
        if (y->ovf[0]) break;
    }
    /* saved activations of every layer, then what the head needs. recompute: the recomputed
     * ones (attention: h1, qkv, att; full: all but the layer's input x) live in one set of
     * buffers shared by every layer (the widest layer's), refilled before each layer's backward */
    int64_t act = 0, dact = 0;
    const hb_recompute rc = c->recompute;
    tr_saved sh;
    memset(&sh, 0, sizeof sh);
    int any_moe = 0;
    for (int l = 0; l < y->L; l++) any_moe |= y->blocks[l].moe;
    if (rc != HB_RECOMPUTE_NONE && y->L > 0 && !y->ovf[0]) {
        sh.h1 = grow(y, &act, "h1", N, C);
        sh.qkv = grow(y, &act, "qkv", N, y->d_qkv);
        if (m->qk_norm) sh.qkr = grow(y, &act, "qkv before the q/k norms", N, y->d_qkv);
        sh.att = grow(y, &act, "att", N, HqD);
        if (rc == HB_RECOMPUTE_FULL) {
            sh.xm = grow(y, &act, "xm", N, C);
            sh.h2 = grow(y, &act, "h2", N, C);
            if (y->F > 0) sh.ff = grow(y, &act, "ff", N, y->d_ff), sh.ffa = grow(y, &act, "ffa", N, y->F);
            if (any_moe) {
                sh.rlog = grow(y, &act, "router logits", N, y->E);
                sh.ids = grow(y, &act, "expert ids", N, y->K);
                sh.rwt = grow(y, &act, "routing weights", N, y->K);
                sh.rows = grow(y, &act, "permuted rows", y->NK, 1);
                sh.offs = grow(y, &act, "expert offsets", y->E + 1, 1);
                sh.xp = grow(y, &act, "xp", y->NK, C);
                sh.eup = grow(y, &act, "eup", y->NK, 2 * y->Fe);
                sh.eact = grow(y, &act, "eact", y->NK, y->Fe);
                sh.ey = grow(y, &act, "ey", y->NK, C);
            }
        }
    }
    for (int l = 0; l < y->L && !y->ovf[0]; l++) {
        tr_saved *v = &y->saved[l];
        if (rc == HB_RECOMPUTE_FULL) { /* the layer's input alone */
            *v = sh;
            v->x = grow(y, &act, "x", N, C);
            continue;
        }
        v->x = grow(y, &act, "x", N, C);
        if (rc == HB_RECOMPUTE_ATTENTION) {
            v->h1 = sh.h1, v->qkv = sh.qkv, v->qkr = sh.qkr, v->att = sh.att;
        } else {
            v->h1 = grow(y, &act, "h1", N, C);
            v->qkv = grow(y, &act, "qkv", N, y->d_qkv);
            if (m->qk_norm) v->qkr = grow(y, &act, "qkv before the q/k norms", N, y->d_qkv);
            v->att = grow(y, &act, "att", N, HqD);
        }
        v->xm = grow(y, &act, "xm", N, C);
        v->h2 = grow(y, &act, "h2", N, C);
        const tr_block *b = &y->blocks[l];
        if (b->F > 0) {
            v->ff = grow(y, &act, "ff", N, m->act == HB_ACT_SWIGLU ? 2 * b->F : b->F);
            v->ffa = grow(y, &act, "ffa", N, b->F);
        }
        if (b->moe) {
            v->rlog = grow(y, &act, "router logits", N, y->E);
            v->ids = grow(y, &act, "expert ids", N, y->K);
            v->rwt = grow(y, &act, "routing weights", N, y->K);
            v->rows = grow(y, &act, "permuted rows", y->NK, 1);
            v->offs = grow(y, &act, "expert offsets", y->E + 1, 1);
            v->xp = grow(y, &act, "xp", y->NK, C);
            v->eup = grow(y, &act, "eup", y->NK, 2 * y->Fe);
            v->eact = grow(y, &act, "eact", y->NK, y->Fe);
            v->ey = grow(y, &act, "ey", y->NK, C);
        }
    }
    y->x_final = grow(y, &act, "x", N, C);
    y->hf = grow(y, &act, "hf", N, C);
    y->logits = grow(y, &act, "logits", N, y->V);
    y->losses = grow(y, &act, "losses", N, 1);
    y->dx = grow(y, &dact, "dx", N, C);
    y->dh = grow(y, &dact, "dh", N, C);
    y->dqkv = grow(y, &dact, "dqkv", N, y->d_qkv);
    y->dqkr = m->qk_norm ? grow(y, &dact, "dqkv before the q/k norms", N, y->d_qkv) : y->dqkv;
    y->datt = grow(y, &dact, "datt", N, HqD);
    y->dff = grow(y, &dact, "dff", N, y->d_ff);
    y->dffa = grow(y, &dact, "dffa", N, y->F);
    if (y->E > 0) {
        y->drlog = grow(y, &dact, "drlog", N, y->E);
        y->drwt = grow(y, &dact, "drwt", N, y->K);
        y->dey = grow(y, &dact, "dey", y->NK, C);
        y->deact = grow(y, &dact, "deact", y->NK, y->Fe);
        y->deup = grow(y, &dact, "deup", y->NK, 2 * y->Fe);
        y->dxp = grow(y, &dact, "dxp", y->NK, C);
    }
    int64_t tok = 0, streams;
    if (hb_mul_ovf(y->accum, dp, &streams)) streams = INT64_MAX;
    grow(y, &tok, "token stream", streams, N + 1);
    y->n_stream = y->ovf[0] ? 0 : streams * N + 1;
    int64_t total = 0;
    const int64_t n_el[N_ARENAS] = {y->n_param, y->n_param, y->n_param, y->n_param,
                                    y->lpt == HB_F32 ? 0 : y->n_param, act, dact, tok};
    const int64_t es[N_ARENAS] = {4, 4, 4, 4, hb_dtype_size(y->lpt), 4, 4, 4};
    for (int a = 0; a < N_ARENAS && !y->ovf[0]; a++)
        if (hb_mul_ovf(n_el[a], es[a], &y->bytes[a]) || hb_add_ovf(total, y->bytes[a], &total))
            snprintf(y->ovf, sizeof y->ovf, "the arenas (%lld bytes so far)", (long long)total);
    if (y->ovf[0]) {
        char ovf[sizeof y->ovf];
        memcpy(ovf, y->ovf, sizeof ovf);
        layout_free(y);
        return hb_errf(err, HB_ERR_INPUT, "train model '%s' batch %lld seq %lld: the size of %s overflows 64 bits "
                       "(accepted: sizes whose tensors fit in memory)", m->name, (long long)c->batch,
                       (long long)c->seq, ovf);
    }
    return HB_OK;
}

/* ---- state ---- */

typedef struct tr_state {
    tr_layout lay;
    char *arena[N_ARENAS];
    int64_t step;          /* optimizer steps taken */
    int64_t dp, grank;     /* data parallel: group size and this rank's index in it (1, 0 alone) */
    double *d_loss;        /* dp > 1: the step's loss in device memory, for the group's all-reduce
                              (NCCL/RCCL reduce device buffers; the CPU's are host memory) */
    float *host_losses;    /* (N) */
    hb_token_shard shard;  /* data: PATH - the llm.c token file */
    int32_t *host_stream;  /* (n_stream) its tokens of the current step */
} tr_state;

static float *F32(const tr_state *st, int a, int64_t off) { return (float *)(void *)st->arena[a] + off; }
/* parameter i (or its gradient, moment...) as a (rows, cols) tensor; absent (i < 0): empty */
static hb_tensor PT(const tr_state *st, int a, int i) {
    if (i < 0) return (hb_tensor){0};
    const hb_train_tensor *t = &st->lay.t[i];
    return hb_t2(F32(st, a, t->off), HB_F32, t->rows, t->cols, t->cols);
}
/* the GEMM operand of matrix i: its bf16 copy in bf16 training, else the f32 parameter */
static hb_tensor WT(const tr_state *st, int i) {
    const hb_train_tensor *t = &st->lay.t[i];
    if (st->lay.lpt == HB_F32) return PT(st, A_PARAM, i);
    return hb_t2((uint16_t *)(void *)st->arena[A_LP] + t->off, st->lay.lpt, t->rows, t->cols, t->cols);
}
/* the H heads of D at p in N rows ld apart, as (N, H, D) with strides (ld, D, 1) */
static hb_tensor heads(float *p, int64_t N, int64_t H, int64_t D, int64_t ld) {
    hb_tensor t = hb_t3(p, HB_F32, N, H, D);
    t.st[0] = ld;
    return t;
}
/* an expert stack i (E x rows / E, cols) as matmul_grouped's (E, N, K): its GEMM operand (lp: 1)
 * or, in arena a, its f32 parameter, gradient... */
static hb_tensor ET(const tr_state *st, int a, int i, int lp) {
    const hb_train_tensor *t = &st->lay.t[i];
    const int64_t E = st->lay.E;
    if (lp && st->lay.lpt != HB_F32)
        return hb_t3((uint16_t *)(void *)st->arena[A_LP] + t->off, st->lay.lpt, E, t->rows / E, t->cols);
    return hb_t3(F32(st, lp ? A_PARAM : a, t->off), HB_F32, E, t->rows / E, t->cols);
}
/* the int32 array saved at element off of arena a (ids, rows, offsets) */
static int32_t *I32(const tr_state *st, int a, int64_t off) { return (int32_t *)(void *)st->arena[a] + off; }
/* (rows, cols) f32 at element off of arena a, rows ld apart */
static hb_tensor AT(const tr_state *st, int a, int64_t off, int64_t rows, int64_t cols, int64_t ld) {
    return hb_t2(F32(st, a, off), HB_F32, rows, cols, ld);
}

/* ---- init ---- */

/* Box-Muller on the counter generator: element i of tensor seed s is
 * sqrt(-2 ln u1) cos(2 pi u2), u1 = 1 - unit(s, 2i) in (0, 1], u2 = unit(s, 2i + 1). Computed on
 * the host in double and uploaded, so every backend starts from the same values. */
static hb_status init_params(hb_backend *be, const hb_case *c, tr_state *st) {
    const tr_layout *y = &st->lay;
    const int64_t chunk = 1 << 20;
    float *buf = malloc((size_t)chunk * sizeof *buf);
    if (!buf) return HB_ERR_NOMEM;
    hb_status s = HB_OK;
    for (int i = 0; i < y->n_t && s == HB_OK; i++) {
        const hb_train_tensor *t = &y->t[i];
        const uint64_t seed = hb_rng_u64(c->seed, 2000 + (uint64_t)i);
        const int64_t n = t->rows * t->cols;
        for (int64_t o = 0; o < n && s == HB_OK; o += chunk) {
            const int64_t k = n - o < chunk ? n - o : chunk;
            for (int64_t j = 0; j < k; j++) {
                if (t->init_std == 0.0f) {
                    buf[j] = t->init_const;
                    continue;
                }
                const uint64_t e = (uint64_t)(o + j);
                const double u1 = 1.0 - (double)hb_rng_unit(seed, 2 * e), u2 = hb_rng_unit(seed, 2 * e + 1);
                buf[j] = (float)(t->init_std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
            }
            s = be->ops->upload(be, F32(st, A_PARAM, t->off + o), buf, (size_t)k * sizeof *buf);
            if (s == HB_OK) s = be->ops->sync(be); /* buf is reused */
        }
    }
    free(buf);
    return s;
}

/* The parameters from the case's checkpoint (workloads/checkpoint.h maps the names), as f32
 * master weights; setup time, never timed. */
static hb_status load_params(hb_backend *be, const hb_case *c, tr_state *st, hb_err *err) {
    const tr_layout *y = &st->lay;
    hb_ckpt *ck = NULL;
    HB_TRY(hb_ckpt_open(c->weights, &ck, err));
    int64_t maxn = 1;
    for (int i = 0; i < y->n_t; i++) maxn = y->t[i].rows * y->t[i].cols > maxn ? y->t[i].rows * y->t[i].cols : maxn;
    float *host = malloc((size_t)maxn * sizeof *host);
    hb_status s = host ? HB_OK : hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    for (int i = 0; i < y->n_t && s == HB_OK; i++) {
        const hb_train_tensor *t = &y->t[i];
        s = hb_ckpt_read_f32(ck, &c->model, t->name, t->layer, host, t->rows, t->cols, err);
        if (s == HB_OK) s = be->ops->upload(be, F32(st, A_PARAM, t->off), host, (size_t)(t->rows * t->cols) * sizeof *host);
        if (s == HB_OK) s = be->ops->sync(be); /* host is reused */
    }
    free(host);
    hb_ckpt_close(ck);
    return s;
}

/* dst = 0 (n elements of f32 or the lp dtype): fill_random with scale and offset 0 */
static hb_status zero(hb_backend *be, void *p, hb_dtype dt, int64_t n) {
    if (n <= 0) return HB_OK;
    return HB_OP(be, fill_random, .dst = hb_t1(p, dt, n), .seed = 0, .scale = 0.0f, .offset = 0.0f);
}

/* The low-precision copy of the parameters (bf16 training). */
static hb_status refresh_lp(hb_backend *be, tr_state *st) {
    if (st->lay.lpt == HB_F32) return HB_OK;
    return HB_OP(be, convert, .dst = hb_t1(st->arena[A_LP], st->lay.lpt, st->lay.n_param),
                 .src = hb_t1(st->arena[A_PARAM], HB_F32, st->lay.n_param));
}

/* ---- forward ---- */

static hb_status norm_fwd(hb_backend *be, const hb_model *m, hb_tensor out, hb_tensor in, hb_tensor w, hb_tensor b) {
    if (m->norm == HB_NORM_LAYERNORM)
        return HB_OP(be, layernorm, .out = out, .in = in, .w = w, .b = b, .eps = m->norm_eps);
    return HB_OP(be, rmsnorm, .out = out, .in = in, .w = w, .eps = m->norm_eps);
}
static hb_status norm_bwd(hb_backend *be, const hb_model *m, hb_tensor din, hb_tensor dw, hb_tensor db,
                          hb_tensor dout, hb_tensor in, hb_tensor w, float beta) {
    if (m->norm == HB_NORM_LAYERNORM)
        return HB_OP(be, layernorm_backward, .din = din, .dw = dw, .db = db, .dout = dout, .in = in, .w = w,
                     .eps = m->norm_eps, .beta = beta);
    return HB_OP(be, rmsnorm_backward, .din = din, .dw = dw, .dout = dout, .in = in, .w = w, .eps = m->norm_eps,
                 .beta = beta);
}

/* The routed experts of MoE block b on h2 (N, C), added into x (the residual): router logits,
 * the router's own top-k, tokens permuted by expert, each expert's SwiGLU as two grouped GEMMs,
 * the weighted combine. Everything backward needs stays in v's slots. */
static hb_status moe_forward(hb_backend *be, const hb_model *m, tr_state *st, const tr_block *b, const tr_saved *v,
                             hb_tensor x) {
    const tr_layout *y = &st->lay;
    const int64_t C = y->C, E = y->E, K = y->K, Fe = y->Fe, N = y->N, NK = y->NK;
    const hb_tensor h = AT(st, A_ACT, v->h2, N, C, C), rlog = AT(st, A_ACT, v->rlog, N, E, E);
    int32_t *ids = I32(st, A_ACT, v->ids), *rows = I32(st, A_ACT, v->rows), *offs = I32(st, A_ACT, v->offs);
    float *rwt = F32(st, A_ACT, v->rwt);
    HB_TRY(HB_OP(be, matmul, .out = rlog, .a = h, .w = WT(st, b->router_w)));
    HB_TRY(HB_OP(be, moe_route, .ids = ids, .weights = rwt, .logits = rlog, .bias = PT(st, A_PARAM, b->router_b),
                 .kind = m->router, .top_k = K, .n_group = m->n_group, .topk_group = m->topk_group,
                 .norm = m->norm_topk, .scale = m->routed_scale, .mode = HB_ROUTING_MODEL));
    HB_TRY(HB_OP(be, moe_permute, .xp = AT(st, A_ACT, v->xp, NK, C, C), .x = h, .ids = ids, .top_k = K,
                 .n_experts = E, .rows = rows, .offsets = offs));
    HB_TRY(HB_OP(be, matmul_grouped, .out = AT(st, A_ACT, v->eup, NK, 2 * Fe, 2 * Fe),
                 .a = AT(st, A_ACT, v->xp, NK, C, C), .w = ET(st, A_PARAM, b->exp_up, 1), .offsets = offs));
    HB_TRY(HB_OP(be, swiglu, .out = AT(st, A_ACT, v->eact, NK, Fe, Fe), .in = AT(st, A_ACT, v->eup, NK, 2 * Fe, 2 * Fe)));
    HB_TRY(HB_OP(be, matmul_grouped, .out = AT(st, A_ACT, v->ey, NK, C, C), .a = AT(st, A_ACT, v->eact, NK, Fe, Fe),
                 .w = ET(st, A_PARAM, b->exp_down, 1), .offsets = offs));
    return HB_OP(be, moe_combine, .out = x, .y = AT(st, A_ACT, v->ey, NK, C, C), .rows = rows, .weights = rwt,
                 .top_k = K, .beta = 1.0f);
}

/* Its backward: dx (N, C) holds d loss / d x; dh (N, C) gets d loss / d h2 through the routed
 * experts and the router (overwritten); the router's and the experts' gradients accumulate. */
static hb_status moe_backward(hb_backend *be, const hb_model *m, tr_state *st, const tr_block *b, const tr_saved *v,
                              hb_tensor dx, hb_tensor dh) {
    const tr_layout *y = &st->lay;
    const int64_t C = y->C, E = y->E, K = y->K, Fe = y->Fe, N = y->N, NK = y->NK;
    const int32_t *ids = I32(st, A_ACT, v->ids), *rows = I32(st, A_ACT, v->rows), *offs = I32(st, A_ACT, v->offs);
    const hb_tensor dey = AT(st, A_DACT, y->dey, NK, C, C), deact = AT(st, A_DACT, y->deact, NK, Fe, Fe);
    const hb_tensor deup = AT(st, A_DACT, y->deup, NK, 2 * Fe, 2 * Fe), dxp = AT(st, A_DACT, y->dxp, NK, C, C);
    const hb_tensor drlog = AT(st, A_DACT, y->drlog, N, E, E);
    float *drwt = F32(st, A_DACT, y->drwt);
    HB_TRY(HB_OP(be, moe_combine_backward, .dy = dey, .dweights = drwt, .dout = dx, .y = AT(st, A_ACT, v->ey, NK, C, C),
                 .rows = rows, .weights = F32(st, A_ACT, v->rwt), .top_k = K));
    HB_TRY(HB_OP(be, matmul_grouped_backward, .da = deact, .dw = ET(st, A_GRAD, b->exp_down, 0), .dout = dey,
                 .a = AT(st, A_ACT, v->eact, NK, Fe, Fe), .w = ET(st, A_PARAM, b->exp_down, 1), .offsets = offs));
    HB_TRY(HB_OP(be, swiglu_backward, .din = deup, .dout = deact, .in = AT(st, A_ACT, v->eup, NK, 2 * Fe, 2 * Fe)));
    HB_TRY(HB_OP(be, matmul_grouped_backward, .da = dxp, .dw = ET(st, A_GRAD, b->exp_up, 0), .dout = deup,
                 .a = AT(st, A_ACT, v->xp, NK, C, C), .w = ET(st, A_PARAM, b->exp_up, 1), .offsets = offs));
    HB_TRY(HB_OP(be, moe_permute_backward, .dx = dh, .dxp = dxp, .rows = rows, .top_k = K, .beta = 0.0f));
    /* the routing weights' gradient through the router's scores (the top-k choice is not differentiated) */
    HB_TRY(HB_OP(be, moe_route_backward, .dlogits = drlog, .logits = AT(st, A_ACT, v->rlog, N, E, E), .ids = ids,
                 .dweights = drwt, .kind = m->router, .top_k = K, .norm = m->norm_topk, .scale = m->routed_scale));
    return HB_OP(be, matmul_backward, .da = dh, .dw = PT(st, A_GRAD, b->router_w), .dout = drlog,
                 .a = AT(st, A_ACT, v->h2, N, C, C), .w = WT(st, b->router_w), .beta = 1.0f);
}

/* Layer l's forward from its input saved[l].x: the attention half's activations (h1, qkv,
 * att: part & LF_ATTN), xm = x + proj(att) (LF_XM), the FFN's and x_next (LF_FFN). */
enum { LF_ATTN = 1, LF_XM = 2, LF_FFN = 4, LF_ALL = 7 };
static hb_status layer_forward(hb_backend *be, const hb_model *m, tr_state *st, int l, int part) {
    const tr_layout *y = &st->lay;
    const int64_t C = y->C, D = y->D, Hq = y->Hq, Hkv = y->Hkv, N = y->N, dq = Hq * D, dqkv = y->d_qkv;
    const size_t row_bytes = (size_t)(N * C) * sizeof(float);
    {
        const tr_block *b = &y->blocks[l];
        const tr_saved *v = &y->saved[l];
        const int64_t x_next = l + 1 < y->L ? y->saved[l + 1].x : y->x_final;
        float *qkv = F32(st, A_ACT, v->qkv);
        /* attention block: xm = x + proj(attention(rope(qkv(norm(x))))) */
        if (part & LF_ATTN) {
        HB_TRY(norm_fwd(be, m, AT(st, A_ACT, v->h1, N, C, C), AT(st, A_ACT, v->x, N, C, C),
                        PT(st, A_PARAM, b->ln1_w), PT(st, A_PARAM, b->ln1_b)));
        HB_TRY(HB_OP(be, matmul, .out = AT(st, A_ACT, v->qkv, N, dqkv, dqkv), .a = AT(st, A_ACT, v->h1, N, C, C),
                     .w = WT(st, b->qkv_w), .bias = PT(st, A_PARAM, b->qkv_b)));
        if (b->qn_w >= 0) { /* Qwen3: each q and k head RMS-normalised before rope; the input kept */
            HB_TRY(be->ops->copy(be, F32(st, A_ACT, v->qkr), qkv, (size_t)(N * dqkv) * sizeof(float)));
            float *qkr = F32(st, A_ACT, v->qkr);
            HB_TRY(HB_OP(be, rmsnorm, .out = heads(qkv, N, Hq, D, dqkv), .in = heads(qkr, N, Hq, D, dqkv),
                         .w = PT(st, A_PARAM, b->qn_w), .eps = m->norm_eps));
            HB_TRY(HB_OP(be, rmsnorm, .out = heads(qkv + dq, N, Hkv, D, dqkv), .in = heads(qkr + dq, N, Hkv, D, dqkv),
                         .w = PT(st, A_PARAM, b->kn_w), .eps = m->norm_eps));
        }
        if (m->pos == HB_POS_ROPE)
            HB_TRY(HB_OP(be, rope, .x = hb_t2(qkv, HB_F32, N, (Hq + Hkv) * D, dqkv), .B = y->B, .T = y->T, .pos0 = 0,
                         .H = Hq + Hkv, .theta = m->rope_theta, .scaling = m->rope_scaling));
        HB_TRY(HB_OP(be, attention_train, .out = AT(st, A_ACT, v->att, N, dq, dq), .q = hb_t2(qkv, HB_F32, N, dq, dqkv),
                     .k = hb_t2(qkv + dq, HB_F32, N, Hkv * D, dqkv), .v = hb_t2(qkv + dq + Hkv * D, HB_F32, N, Hkv * D, dqkv),
                     .B = y->B, .T = y->T, .Hq = Hq, .Hkv = Hkv));
        }
        if (!(part & LF_XM)) return HB_OK;
        HB_TRY(be->ops->copy(be, F32(st, A_ACT, v->xm), F32(st, A_ACT, v->x), row_bytes));
        HB_TRY(HB_OP(be, matmul, .out = AT(st, A_ACT, v->xm, N, C, C), .a = AT(st, A_ACT, v->att, N, dq, dq),
                     .w = WT(st, b->proj_w), .bias = PT(st, A_PARAM, b->proj_b), .beta = 1.0f));
        if (!(part & LF_FFN)) return HB_OK;
        /* MLP block: x_next = xm + fc2(act(fc(norm(xm)))) (+ the routed experts' combine) */
        HB_TRY(norm_fwd(be, m, AT(st, A_ACT, v->h2, N, C, C), AT(st, A_ACT, v->xm, N, C, C),
                        PT(st, A_PARAM, b->ln2_w), PT(st, A_PARAM, b->ln2_b)));
        HB_TRY(be->ops->copy(be, F32(st, A_ACT, x_next), F32(st, A_ACT, v->xm), row_bytes));
        if (b->F > 0) {
            const int64_t F = b->F, dff = m->act == HB_ACT_SWIGLU ? 2 * F : F;
            HB_TRY(HB_OP(be, matmul, .out = AT(st, A_ACT, v->ff, N, dff, dff), .a = AT(st, A_ACT, v->h2, N, C, C),
                         .w = WT(st, b->fc_w), .bias = PT(st, A_PARAM, b->fc_b)));
            if (m->act == HB_ACT_SWIGLU)
                HB_TRY(HB_OP(be, swiglu, .out = AT(st, A_ACT, v->ffa, N, F, F), .in = AT(st, A_ACT, v->ff, N, dff, dff)));
            else
                HB_TRY(HB_OP(be, gelu, .out = AT(st, A_ACT, v->ffa, N, F, F), .in = AT(st, A_ACT, v->ff, N, dff, dff)));
            HB_TRY(HB_OP(be, matmul, .out = AT(st, A_ACT, x_next, N, C, C), .a = AT(st, A_ACT, v->ffa, N, F, F),
                         .w = WT(st, b->fc2_w), .bias = PT(st, A_PARAM, b->fc2_b), .beta = 1.0f));
        }
        if (b->moe) HB_TRY(moe_forward(be, m, st, b, v, AT(st, A_ACT, x_next, N, C, C)));
    }
    return HB_OK;
}

/* B sequences of T tokens at positions 0..T-1; every activation backward needs is kept (or,
 * with recompute, each layer's input, from which backward recomputes the rest). */
static hb_status forward(hb_backend *be, const hb_model *m, tr_state *st, const int32_t *tokens) {
    const tr_layout *y = &st->lay;
    const int64_t C = y->C, N = y->N;
    HB_TRY(HB_OP(be, embedding, .out = AT(st, A_ACT, y->L > 0 ? y->saved[0].x : y->x_final, N, C, C),
                 .wte = PT(st, A_PARAM, y->wte), .wpe = PT(st, A_PARAM, y->wpe), .tokens = tokens, .B = y->B,
                 .T = y->T, .pos0 = 0));
    for (int l = 0; l < y->L; l++) HB_TRY(layer_forward(be, m, st, l, LF_ALL));
    /* final norm and the lm head over every position: logits (N, V) */
    HB_TRY(norm_fwd(be, m, AT(st, A_ACT, y->hf, N, C, C), AT(st, A_ACT, y->x_final, N, C, C),
                    PT(st, A_PARAM, y->lnf_w), PT(st, A_PARAM, y->lnf_b)));
    HB_TRY(HB_OP(be, matmul, .out = AT(st, A_ACT, y->logits, N, y->V, y->V), .a = AT(st, A_ACT, y->hf, N, C, C),
                 .w = WT(st, m->tied ? y->wte : y->lm_w)));
    return HB_OK;
}

/* ---- backward ---- */

/* From dlogits (in the logits buffer) to every parameter gradient (accumulated). */
static hb_status backward(hb_backend *be, const hb_model *m, tr_state *st, const int32_t *tokens) {
    const tr_layout *y = &st->lay;
    const int64_t C = y->C, D = y->D, Hq = y->Hq, Hkv = y->Hkv, N = y->N, dq = Hq * D, dqkv = y->d_qkv;
    const hb_tensor dx = AT(st, A_DACT, y->dx, N, C, C), dh = AT(st, A_DACT, y->dh, N, C, C);
    const int head = m->tied ? y->wte : y->lm_w;
    HB_TRY(HB_OP(be, matmul_backward, .da = dh, .dw = PT(st, A_GRAD, head),
                 .dout = AT(st, A_ACT, y->logits, N, y->V, y->V), .a = AT(st, A_ACT, y->hf, N, C, C), .w = WT(st, head)));
    HB_TRY(norm_bwd(be, m, dx, PT(st, A_GRAD, y->lnf_w), PT(st, A_GRAD, y->lnf_b), dh,
                    AT(st, A_ACT, y->x_final, N, C, C), PT(st, A_PARAM, y->lnf_w), 0.0f));
    /* g: d loss / d qkv (after the q/k norms); g2: before them (g itself without them), which
     * takes dv directly */
    float *g = F32(st, A_DACT, y->dqkv), *g2 = F32(st, A_DACT, y->dqkr), *qkv;
    for (int l = (int)y->L - 1; l >= 0; l--) {
        const tr_block *b = &y->blocks[l];
        const tr_saved *v = &y->saved[l];
        qkv = F32(st, A_ACT, v->qkv);
        /* recompute full: the layer again from its input (the same ops: the same bits) */
        if (y->rc == HB_RECOMPUTE_FULL) HB_TRY(layer_forward(be, m, st, l, LF_ALL));
        /* dx holds d loss / d x_next; dh gets d loss / d h2 (routed experts and router first) */
        if (b->moe) HB_TRY(moe_backward(be, m, st, b, v, dx, dh));
        if (b->F > 0) {
            const int64_t F = b->F, dF = m->act == HB_ACT_SWIGLU ? 2 * F : F;
            const hb_tensor dffa = AT(st, A_DACT, y->dffa, N, F, F);
            HB_TRY(HB_OP(be, matmul_backward, .da = dffa, .dw = PT(st, A_GRAD, b->fc2_w), .dbias = PT(st, A_GRAD, b->fc2_b),
                         .dout = dx, .a = AT(st, A_ACT, v->ffa, N, F, F), .w = WT(st, b->fc2_w)));
            const hb_tensor dff = AT(st, A_DACT, y->dff, N, dF, dF), ff = AT(st, A_ACT, v->ff, N, dF, dF);
            if (m->act == HB_ACT_SWIGLU) HB_TRY(HB_OP(be, swiglu_backward, .din = dff, .dout = dffa, .in = ff));
            else HB_TRY(HB_OP(be, gelu_backward, .din = dff, .dout = dffa, .in = ff));
            HB_TRY(HB_OP(be, matmul_backward, .da = dh, .dw = PT(st, A_GRAD, b->fc_w), .dbias = PT(st, A_GRAD, b->fc_b),
                         .dout = dff, .a = AT(st, A_ACT, v->h2, N, C, C), .w = WT(st, b->fc_w),
                         .beta = b->moe ? 1.0f : 0.0f));
        }
        HB_TRY(norm_bwd(be, m, dx, PT(st, A_GRAD, b->ln2_w), PT(st, A_GRAD, b->ln2_b), dh,
                        AT(st, A_ACT, v->xm, N, C, C), PT(st, A_PARAM, b->ln2_w), 1.0f)); /* dx: d / d xm */
        const hb_tensor datt = AT(st, A_DACT, y->datt, N, dq, dq);
        if (y->rc == HB_RECOMPUTE_ATTENTION) HB_TRY(layer_forward(be, m, st, l, LF_ATTN)); /* h1, qkv, att again */
        HB_TRY(HB_OP(be, matmul_backward, .da = datt, .dw = PT(st, A_GRAD, b->proj_w), .dbias = PT(st, A_GRAD, b->proj_b),
                     .dout = dx, .a = AT(st, A_ACT, v->att, N, dq, dq), .w = WT(st, b->proj_w)));
        HB_TRY(HB_OP(be, attention_backward, .dq = hb_t2(g, HB_F32, N, dq, dqkv),
                     .dk = hb_t2(g + dq, HB_F32, N, Hkv * D, dqkv), .dv = hb_t2(g2 + dq + Hkv * D, HB_F32, N, Hkv * D, dqkv),
                     .dout = datt, .q = hb_t2(qkv, HB_F32, N, dq, dqkv), .k = hb_t2(qkv + dq, HB_F32, N, Hkv * D, dqkv),
                     .v = hb_t2(qkv + dq + Hkv * D, HB_F32, N, Hkv * D, dqkv), .B = y->B, .T = y->T, .Hq = Hq, .Hkv = Hkv));
        if (m->pos == HB_POS_ROPE)
            HB_TRY(HB_OP(be, rope_backward, .x = hb_t2(g, HB_F32, N, (Hq + Hkv) * D, dqkv), .B = y->B, .T = y->T,
                         .pos0 = 0, .H = Hq + Hkv, .theta = m->rope_theta, .scaling = m->rope_scaling));
        if (b->qn_w >= 0) {
            float *qkr = F32(st, A_ACT, v->qkr);
            HB_TRY(HB_OP(be, rmsnorm_backward, .din = heads(g2, N, Hq, D, dqkv), .dw = PT(st, A_GRAD, b->qn_w),
                         .dout = heads(g, N, Hq, D, dqkv), .in = heads(qkr, N, Hq, D, dqkv), .w = PT(st, A_PARAM, b->qn_w),
                         .eps = m->norm_eps));
            HB_TRY(HB_OP(be, rmsnorm_backward, .din = heads(g2 + dq, N, Hkv, D, dqkv), .dw = PT(st, A_GRAD, b->kn_w),
                         .dout = heads(g + dq, N, Hkv, D, dqkv), .in = heads(qkr + dq, N, Hkv, D, dqkv),
                         .w = PT(st, A_PARAM, b->kn_w), .eps = m->norm_eps));
        }
        HB_TRY(HB_OP(be, matmul_backward, .da = dh, .dw = PT(st, A_GRAD, b->qkv_w), .dbias = PT(st, A_GRAD, b->qkv_b),
                     .dout = AT(st, A_DACT, y->dqkr, N, dqkv, dqkv), .a = AT(st, A_ACT, v->h1, N, C, C),
                     .w = WT(st, b->qkv_w)));
        HB_TRY(norm_bwd(be, m, dx, PT(st, A_GRAD, b->ln1_w), PT(st, A_GRAD, b->ln1_b), dh,
                        AT(st, A_ACT, v->x, N, C, C), PT(st, A_PARAM, b->ln1_w), 1.0f)); /* dx: d / d x */
    }
    HB_TRY(HB_OP(be, embedding_backward, .dwte = PT(st, A_GRAD, y->wte), .dwpe = PT(st, A_GRAD, y->wpe), .dout = dx,
                 .tokens = tokens, .B = y->B, .T = y->T, .pos0 = 0));
    return HB_OK;
}

/* ---- the step ---- */

/* The token stream of step `step`: synthetic draws a fresh one per step, repeat reuses step
 * 0's. One stream covers the step's accum x dp micro-batches of B*T tokens (+1 for the last
 * target), so how the tokens are split over micro-batches and ranks does not change them. */
static hb_status fill_stream(hb_backend *be, const hb_case *c, tr_state *st, int64_t step) {
    if (c->data == HB_DATA_FILE) {
        /* llm.c's loader: step s reads tokens [s (n - 1), s (n - 1) + n) - each step's last
         * target is the next step's first input - and starts over at the file's beginning
         * when the next window would run past its end */
        const int64_t n = st->lay.n_stream, adv = n - 1 > 0 ? n - 1 : 1, fit = (st->shard.n - n) / adv + 1;
        const int64_t off = (step % fit) * adv;
        hb_token_shard_read(&st->shard, off, n, st->host_stream);
        HB_TRY(be->ops->upload(be, st->arena[A_TOK], st->host_stream, (size_t)n * sizeof(int32_t)));
        return be->ops->sync(be); /* host_stream is reused next step */
    }
    const uint64_t s = c->data == HB_DATA_REPEAT ? 0 : (uint64_t)step;
    return HB_OP(be, fill_tokens, .dst = (int32_t *)(void *)st->arena[A_TOK], .n = st->lay.n_stream,
                 .seed = hb_rng_u64(hb_rng_u64(c->seed, 6), s), .vocab = st->lay.V);
}

/* Forward, loss and backward of micro-batch k of the current stream (gradients accumulate);
 * *loss += its mean loss. */
static hb_status micro_step(hb_backend *be, const hb_case *c, tr_state *st, int64_t k, double *loss) {
    const tr_layout *y = &st->lay;
    /* micro-batch k of group rank r reads slice k * dp + r of the step's stream */
    const int32_t *tokens = (const int32_t *)(void *)st->arena[A_TOK] + (k * st->dp + st->grank) * y->N;
    HB_TRY(forward(be, &c->model, st, tokens));
    /* the gradient of the step's mean loss over accum micro-batches of N tokens */
    HB_TRY(HB_OP(be, cross_entropy, .losses = hb_t1(F32(st, A_ACT, y->losses), HB_F32, y->N),
                 .dlogits = AT(st, A_ACT, y->logits, y->N, y->V, y->V), .logits = AT(st, A_ACT, y->logits, y->N, y->V, y->V),
                 .targets = tokens + 1, .dscale = (float)(1.0 / ((double)y->N * (double)y->accum))));
    HB_TRY(backward(be, &c->model, st, tokens));
    HB_TRY(be->ops->download(be, st->host_losses, F32(st, A_ACT, y->losses), (size_t)y->N * sizeof(float)));
    HB_TRY(be->ops->sync(be));
    double sum = 0;
    for (int64_t i = 0; i < y->N; i++) sum += st->host_losses[i];
    *loss += sum / (double)y->N;
    return HB_OK;
}

static hb_status train_step(hb_workload *w) {
    tr_state *st = w->impl;
    const hb_case *c = &w->c;
    hb_backend *be = w->be;
    HB_TRY(fill_stream(be, c, st, st->step));
    double loss = 0;
    for (int64_t k = 0; k < st->lay.accum; k++) HB_TRY(micro_step(be, c, st, k, &loss));
    loss /= (double)st->lay.accum;
    const int64_t n = st->lay.n_param;
    if (st->dp > 1) {
        /* data parallel: the group's gradients summed (then averaged by grad_scale), and its
         * mean loss, so every rank of the group takes the same step and reports the same loss */
        hb_comm *g = w->group;
        HB_TRY(be->ops->sync(be));
        HB_TRY(hb_comm_all_reduce(g, st->arena[A_GRAD], st->arena[A_GRAD], n, HB_CDT_F32, HB_REDOP_SUM));
        HB_TRY(be->ops->upload(be, st->d_loss, &loss, sizeof loss));
        HB_TRY(be->ops->sync(be));
        HB_TRY(hb_comm_all_reduce(g, st->d_loss, st->d_loss, 1, HB_CDT_F64, HB_REDOP_SUM));
        HB_TRY(be->ops->download(be, &loss, st->d_loss, sizeof loss));
        HB_TRY(be->ops->sync(be));
        loss /= (double)st->dp;
    }
    /* one AdamW over the whole arena: padding between tensors is 0 and stays 0 */
    HB_TRY(HB_OP(be, adamw, .param = hb_t1(st->arena[A_PARAM], HB_F32, n), .grad = hb_t1(st->arena[A_GRAD], HB_F32, n),
                 .m = hb_t1(st->arena[A_M], HB_F32, n), .v = hb_t1(st->arena[A_V], HB_F32, n),
                 .param_lp = st->lay.lpt == HB_F32 ? (hb_tensor){0} : hb_t1(st->arena[A_LP], st->lay.lpt, n),
                 .lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .weight_decay = c->weight_decay,
                 .grad_scale = (float)(1.0 / (double)st->dp), .t = st->step + 1, .zero_grad = 1));
    st->step++;
    w->loss = loss;
    w->have_loss = 1;
    if (!w->have_fp) { /* the first step's per-token losses */
        hb_fingerprint_host(st->host_losses, st->lay.N, st->lay.N, w->fp);
        w->have_fp = 1;
    }
    return HB_OK;
}

static void train_free(hb_workload *w) {
    tr_state *st = w->impl;
    if (!st) return;
    for (int a = 0; a < N_ARENAS; a++) w->be->ops->free(w->be, st->arena[a]);
    w->be->ops->free(w->be, st->d_loss);
    layout_free(&st->lay);
    free(st->host_losses);
    free(st->host_stream);
    hb_token_shard_close(&st->shard);
    free(st);
}

/* Every op a step runs, so a backend that lacks one says which before anything is timed. */
static hb_status have_ops(hb_workload *w, hb_err *err) {
    const hb_backend *be = w->be;
    const int moe = hb_model_is_moe(&w->c.model);
    const struct { const char *name; int have; } need[] = {
        {"embedding_backward", HB_HAS_OP(be, embedding_backward)}, {"rmsnorm_backward", HB_HAS_OP(be, rmsnorm_backward)},
        {"layernorm_backward", HB_HAS_OP(be, layernorm_backward)}, {"matmul_backward", HB_HAS_OP(be, matmul_backward)},
        {"rope_backward", HB_HAS_OP(be, rope_backward)}, {"attention_train", HB_HAS_OP(be, attention_train)},
        {"attention_backward", HB_HAS_OP(be, attention_backward)}, {"swiglu_backward", HB_HAS_OP(be, swiglu_backward)},
        {"gelu_backward", HB_HAS_OP(be, gelu_backward)}, {"cross_entropy", HB_HAS_OP(be, cross_entropy)},
        {"adamw", HB_HAS_OP(be, adamw)},
        /* MoE layers: the forward's ops and their backward (HB_OP_LIST_TRAIN_MOE) */
        {"moe_route", !moe || HB_HAS_OP(be, moe_route)}, {"moe_permute", !moe || HB_HAS_OP(be, moe_permute)},
        {"matmul_grouped", !moe || HB_HAS_OP(be, matmul_grouped)}, {"moe_combine", !moe || HB_HAS_OP(be, moe_combine)},
        {"moe_route_backward", !moe || HB_HAS_OP(be, moe_route_backward)},
        {"moe_permute_backward", !moe || HB_HAS_OP(be, moe_permute_backward)},
        {"matmul_grouped_backward", !moe || HB_HAS_OP(be, matmul_grouped_backward)},
        {"moe_combine_backward", !moe || HB_HAS_OP(be, moe_combine_backward)},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!need[i].have)
            return hb_errf(err, HB_ERR_UNSUPPORTED, "train: op '%s' is not supported by backend '%s' (training needs "
                           "the training ops of backends/ops.h)", need[i].name, be->info.backend);
    return HB_OK;
}

static hb_status train_setup(hb_workload *w, hb_err *err) {
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    tr_state *st = calloc(1, sizeof *st);
    if (!st) return HB_ERR_NOMEM;
    w->impl = st;
    w->free_impl = train_free;
    w->step = train_step;
    HB_TRY(have_ops(w, err));
    st->dp = 1;
    if (c->dp > 1) {
        /* the harness made the group before dispatch: hb_comm over MPI for CPU ranks (host
         * memory), NCCL on CUDA ranks and RCCL on HIP ranks (device memory), loaded there */
        if (!w->group || w->group->size != c->dp)
            return hb_errf(err, HB_ERR_INTERNAL, "train: dp %lld without a rank group of %lld ranks", (long long)c->dp,
                           (long long)c->dp);
        st->dp = c->dp;
        st->grank = w->group->rank;
        if (be->ops->alloc(be, sizeof(double), (void **)&st->d_loss))
            return hb_errf(err, HB_ERR_NOMEM, "train: allocation of the loss buffer failed: %s", be->err);
    }
    HB_TRY(layout_init(c, &st->lay, err));
    const tr_layout *y = &st->lay;
    st->host_losses = malloc((size_t)y->N * sizeof *st->host_losses);
    if (!st->host_losses) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    int64_t total = 0;
    for (int a = 0; a < N_ARENAS; a++) total += y->bytes[a];
    for (int a = 0; a < N_ARENAS; a++)
        if (be->ops->alloc(be, (size_t)(y->bytes[a] > 0 ? y->bytes[a] : 256), (void **)&st->arena[a]))
            return hb_errf(err, HB_ERR_NOMEM, "train: allocation of %.2f GiB failed: %s", (double)total / (1 << 30), be->err);
    w->out = F32(st, A_ACT, y->losses);
    w->out_n = y->N;
    /* parameters (padding zeroed first), gradients and moments 0 */
    for (int a = A_PARAM; a <= A_V; a++) HB_TRY(zero(be, st->arena[a], HB_F32, y->n_param));
    HB_TRY(c->weights[0] ? load_params(be, c, st, err) : init_params(be, c, st));
    HB_TRY(refresh_lp(be, st));
    if (c->data == HB_DATA_FILE) {
        HB_TRY(hb_token_shard_open(c->data_path, y->V, y->n_stream, &st->shard, err));
        st->host_stream = malloc((size_t)y->n_stream * sizeof *st->host_stream);
        if (!st->host_stream) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    }
    return HB_OK;
}

/* ---- test hooks (train.h) ---- */

int hb_train_tensors(const hb_workload *w, const hb_train_tensor **t, int64_t *n_floats) {
    const tr_state *st = w->impl;
    *t = st->lay.t;
    *n_floats = st->lay.n_param;
    return st->lay.n_t;
}

hb_status hb_train_download(const hb_workload *w, int which, float *host) {
    const tr_state *st = w->impl;
    HB_TRY(w->be->ops->download(w->be, host, st->arena[which ? A_GRAD : A_PARAM], (size_t)st->lay.n_param * sizeof(float)));
    return w->be->ops->sync(w->be);
}

hb_status hb_train_upload_params(hb_workload *w, const float *host) {
    tr_state *st = w->impl;
    HB_TRY(w->be->ops->upload(w->be, st->arena[A_PARAM], host, (size_t)st->lay.n_param * sizeof(float)));
    HB_TRY(refresh_lp(w->be, st));
    return w->be->ops->sync(w->be);
}

hb_status hb_train_tokens(hb_workload *w, int32_t *host) {
    tr_state *st = w->impl;
    HB_TRY(fill_stream(w->be, &w->c, st, st->step));
    HB_TRY(w->be->ops->download(w->be, host, st->arena[A_TOK], (size_t)(st->lay.N + 1) * sizeof(int32_t)));
    return w->be->ops->sync(w->be);
}

hb_status hb_train_grad(hb_workload *w, double *loss) {
    tr_state *st = w->impl;
    HB_TRY(zero(w->be, st->arena[A_GRAD], HB_F32, st->lay.n_param));
    HB_TRY(fill_stream(w->be, &w->c, st, st->step));
    *loss = 0;
    return micro_step(w->be, &w->c, st, 0, loss);
}

/* ---- cost ---- */

/* FLOPs of one step: 3 forwards (forward, and backward at twice its cost: llm.c's and MLPerf's
 * 6 x parameters per token for the matmuls, the lm head included) plus the causal attention
 * (QK^T and AV: 4 D FLOPs per attended key, T (T + 1) / 2 keys per sequence and head), also
 * x 3. A MoE layer counts its router, its shared experts and the top_k experts a token visits
 * (the active parameters: 6 N_active); the minimum bytes and the memory count every expert. */
static hb_status train_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    tr_layout y;
    HB_TRY(layout_init(c, &y, err));
    const double N = (double)y.N, T = (double)y.T, B = (double)y.B;
    double mm = (double)y.C * y.V; /* matmul parameters a token uses: the head, then each layer's */
    for (int64_t l = 0; l < y.L; l++) {
        const tr_block *b = &y.blocks[l];
        const double dff = c->model.act == HB_ACT_SWIGLU ? 2.0 * (double)b->F : (double)b->F;
        mm += (double)y.C * y.d_qkv + (double)y.Hq * y.D * y.C + (double)y.C * dff + (double)b->F * y.C;
        if (b->moe) mm += (double)y.C * y.E + (double)y.K * 3.0 * (double)y.C * y.Fe;
    }
    const double attn = 4.0 * (double)y.L * y.Hq * y.D * B * T * (T + 1) / 2;
    k->flops = 3.0 * (2.0 * N * mm + attn) * (double)y.accum;
    /* minimum traffic: parameters, gradients and both moments read and written once */
    k->bytes = 8.0 * 4.0 * (double)y.n_param;
    k->tokens_in = N * (double)y.accum;
    k->mem_bytes = 0;
    for (int a = 0; a < N_ARENAS; a++) k->mem_bytes += y.bytes[a];
    layout_free(&y);
    return HB_OK;
}

/* ---- label and checks ---- */

static void train_label(const hb_case *c, char *buf, int len) {
    char layers[32] = "", extra[64] = "", name[144];
    if (c->model.n_layers != c->model.n_layers_full)
        snprintf(layers, sizeof layers, "[%lld/%lldL]", (long long)c->model.n_layers, (long long)c->model.n_layers_full);
    int o = 0;
    if (c->grad_accum > 1) o += snprintf(extra + o, sizeof extra - (size_t)o, " accum=%lld", (long long)c->grad_accum);
    if (c->dp > 1 && o < (int)sizeof extra) o += snprintf(extra + o, sizeof extra - (size_t)o, " dp=%lld", (long long)c->dp);
    if (c->recompute != HB_RECOMPUTE_NONE && o < (int)sizeof extra)
        o += snprintf(extra + o, sizeof extra - (size_t)o, " recompute=%s", hb_recompute_name(c->recompute));
    if (c->data == HB_DATA_REPEAT && o < (int)sizeof extra) snprintf(extra + o, sizeof extra - (size_t)o, " repeat");
    snprintf(buf, len, "train %s%s %s B=%lld T=%lld%s", hb_case_model_name(c, name, sizeof name), layers,
             hb_case_dtype_name(c),
             (long long)c->batch, (long long)c->seq, extra);
}

static hb_status train_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const k_seq[] = {"seq", "model", NULL}, *const k_dtype[] = {"dtype", NULL};
    static const char *const k_lr[] = {"lr", NULL}, *const k_b1[] = {"beta1", NULL}, *const k_b2[] = {"beta2", NULL};
    const hb_model *m = &c->model;
    if (c->seq > m->max_seq) {
        *blame = k_seq;
        return hb_errf(err, HB_ERR_INPUT, "seq %lld exceeds max_seq %lld of model '%s' (accepted: seq <= %lld)",
                       (long long)c->seq, (long long)m->max_seq, m->name, (long long)m->max_seq);
    }
    if (hb_model_is_mla(m)) {
        static const char *const k_model[] = {"model", NULL};
        *blame = k_model;
        return hb_errf(err, HB_ERR_INPUT, "train: model '%s' has MLA attention: training it is not implemented yet "
                       "(accepted: GQA/MHA models, dense or MoE, and dense twins)", m->name);
    }
    if (hb_model_is_moe(m) && c->routing != HB_ROUTING_MODEL) {
        static const char *const k_routing[] = {"routing", NULL};
        *blame = k_routing;
        return hb_errf(err, HB_ERR_INPUT, "train: routing %s: a MoE model trains on its router's own choice "
                       "(accepted: model)", c->routing == HB_ROUTING_BALANCED ? "balanced" : "zipf");
    }
    if (c->dtype != HB_F32 && c->dtype != HB_BF16) {
        *blame = k_dtype;
        return hb_errf(err, HB_ERR_INPUT, "train: dtype %s (accepted: f32, bf16 - bf16 mixed precision: f32 master "
                       "weights, gradients and moments, bf16 copies of the GEMM weights)", hb_case_dtype_name(c));
    }
    if (c->data == HB_DATA_FILE) { /* the header, the size and every token, before anything runs */
        static const char *const k_data[] = {"data", NULL};
        const int64_t dp = c->dp > 0 ? c->dp : 1, accum = c->grad_accum > 0 ? c->grad_accum : 1;
        hb_token_shard sh;
        *blame = k_data;
        const hb_status ds = hb_token_shard_open(c->data_path, m->vocab, accum * dp * c->batch * c->seq + 1, &sh, err);
        if (ds != HB_OK) return ds;
        hb_token_shard_close(&sh);
    }
    if (!(c->lr > 0) || !isfinite(c->lr)) {
        *blame = k_lr;
        return hb_errf(err, HB_ERR_INPUT, "lr %g (accepted: a learning rate > 0)", (double)c->lr);
    }
    if (!(c->beta1 >= 0 && c->beta1 < 1)) {
        *blame = k_b1;
        return hb_errf(err, HB_ERR_INPUT, "beta1 %g (accepted: 0 <= beta1 < 1)", (double)c->beta1);
    }
    if (!(c->beta2 >= 0 && c->beta2 < 1)) {
        *blame = k_b2;
        return hb_errf(err, HB_ERR_INPUT, "beta2 %g (accepted: 0 <= beta2 < 1)", (double)c->beta2);
    }
    return HB_OK;
}

/* ---- the descriptor ---- */

static const char *const train_keys[] = {"model", "layers", "dense_twin", "routing", "recompute", "dtype", "batch", "seq", "lr",
                                         "beta1", "beta2", "eps", "weight_decay", "grad_accum", "data", "dp",
                                         "weights", NULL};

const hb_workload_desc hb_wl_train = {
    .name = "train",
    .kind = HB_WL_TRAIN,
    .plan_keys = train_keys,
    .about = "1 AdamW step on B x T tokens (seq, lr)",
    .headline = HB_HEADLINE_TOKENS_TRAINED,
    .latency = 0,
    .label = train_label,
    .cost = train_cost,
    .check = train_check,
    .setup = train_setup,
};

static const char *const data_names[HB_DATA_COUNT] = {"synthetic", "repeat", "file"};
static const char *const recompute_names[HB_RECOMPUTE_COUNT] = {"none", "attention", "full"};
const char *hb_recompute_name(hb_recompute r) { return r >= 0 && r < HB_RECOMPUTE_COUNT ? recompute_names[r] : "?"; }
const char *hb_train_data_name(hb_train_data d) { return d >= 0 && d < HB_DATA_COUNT ? data_names[d] : "?"; }
int hb_train_data_parse(const char *s, hb_train_data *out) {
    for (int i = 0; i < HB_DATA_FILE; i++)
        if (!strcmp(s, data_names[i])) {
            *out = (hb_train_data)i;
            return 0;
        }
    return -1;
}
