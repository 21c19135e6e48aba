/* serve.c - the `serve` workload: a request stream served by continuous batching over a paged
 * KV cache (the scheduler is serve_sched.c), written only against the ops table. One iteration
 * of the measurement protocol is one whole stream; its requests' arrival, first-token and
 * finish times are real (the monotonic clock after each scheduler iteration's sync).
 *
 * Each scheduler iteration feeds N tokens (the decode token of every running request, chunks
 * of the waiting prompts) as one (N, C) batch through the model: matmuls, norms and the FFN on
 * all rows; rope (or, for learned positions, the embedding) and kv_store per segment (a
 * request's run of consecutive positions) into its
 * KV blocks; attention_paged over the blocks; the final norm and lm head only on the rows that
 * yield a token, then argmax (greedy: a preempted request recomputes the tokens it had).
 *
 * Weights are the prefill/decode ones (same layout, same seeds: hb_tf_layout_init with batch 1
 * and max_batch_tokens rows), so request r of a stream with range_ratio 1 sees exactly the
 * prompt of row r of a prefill of `requests` x isl tokens (tests/test_serve.c). GQA/MHA
 * models with rope or learned positions, dense or MoE (the routed experts as in transformer.c,
 * on the iteration's rows); MLA models are refused at plan time (their latent cache is not
 * paged yet). */
#include "serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends/dtype.h" // defines: hb_rng_u64, hb_dtype_size
#include "checkpoint.h" // defines: hb_tokens_read
#include "serve_sched.h"
#include "transformer.h"
#include "workload_impl.h"

#define DEFAULT_REQ_PER_C 10
/* a stream of more requests is a soak test, not a serving benchmark (vLLM's benchmark_serving
 * defaults to 1000); the bound keeps the plan-time cost and the per-request records finite */
#define HB_SERVE_MAX_REQUESTS 1000000

int64_t hb_case_serve_requests(const hb_case *c) {
    if (c->requests > 0) return c->requests;
    return DEFAULT_REQ_PER_C * (c->concurrency > 0 ? c->concurrency : 1);
}

/* Requests in flight at most: the closed loop's concurrency, every request for Poisson; both
 * within max_seqs. */
static int64_t in_flight(const hb_case *c) {
    int64_t n = c->arrival_rate != 0 ? hb_case_serve_requests(c) : c->concurrency;
    if (n > c->max_seqs) n = c->max_seqs;
    if (n > c->max_batch_tokens) n = c->max_batch_tokens;
    return n > 0 ? n : 1;
}

static int64_t blocks_per_request(const hb_case *c) {
    return (c->isl + c->osl + c->kv_block_size - 1) / c->kv_block_size;
}

/* MLA keeps each request's latents contiguous (mla_attention reads one sequence's cache as a
 * (1, S, dc + dr) tensor): the scheduler's block is then a whole request's footprint, isl +
 * osl rounded up to kv_block_size, taken at admission - an MLA request is never preempted for
 * a block, and kv_blocks (in kv_block_size blocks) holds kv_blocks / blocks_per_request slots. */
static int64_t sched_block(const hb_case *c) {
    return hb_model_is_mla(&c->model) ? blocks_per_request(c) * c->kv_block_size : c->kv_block_size;
}
static int64_t sched_blocks_per_request(const hb_case *c) {
    return hb_model_is_mla(&c->model) ? 1 : blocks_per_request(c);
}

/* kv_blocks, or (auto) enough for every request in flight at its longest (in the scheduler's
 * blocks); setup then caps an auto cache at what the device's free memory holds (size_kv) */
static int64_t kv_blocks_of(const hb_case *c) {
    if (c->kv_blocks > 0) return hb_model_is_mla(&c->model) ? c->kv_blocks / blocks_per_request(c) : c->kv_blocks;
    return in_flight(c) * sched_blocks_per_request(c);
}

/* Bytes of one cached position in one layer's cache, and the caches per layer: k and v
 * (Hkv x D each), or MLA's latent (dc + dr). */
static int64_t kv_row_bytes(const hb_tf_layout *y) {
    return (y->dc > 0 ? y->dc + y->dr : y->Hkv * y->D) * hb_dtype_size(y->kvt);
}
static int64_t kv_caches(const hb_tf_layout *y) { return y->dc > 0 ? 1 : 2; }

static hb_serve_cfg cfg_of(const hb_case *c) {
    return (hb_serve_cfg){.isl = c->isl, .osl = c->osl, .range_ratio = c->range_ratio,
                          .requests = hb_case_serve_requests(c), .concurrency = c->concurrency,
                          .rate = c->arrival_rate > 0 ? c->arrival_rate : c->arrival_rate < 0 ? 1.0 : 0.0, .seed = c->seed, .max_batch_tokens = c->max_batch_tokens,
                          .max_seqs = in_flight(c), .block_size = sched_block(c), .kv_blocks = kv_blocks_of(c)};
}

/* the layout's shadow case: one forward of max_batch_tokens rows (weights as prefill's) */
static hb_case shadow_of(const hb_case *c) {
    hb_case s = *c;
    s.batch = 1;
    s.prompt = c->max_batch_tokens;
    return s;
}

/* ---- state ---- */
typedef struct serve_state {
    hb_tf_layout lay;
    char *weights, *act;         /* the layout's arenas (its KV arena is not used) */
    char *kv;                    /* per layer: k blocks, v blocks (kv_blocks, bs, Hkv, D);
                                    MLA: latent blocks (kv_blocks, bs, dc + dr) */
    int64_t kv_layer_bytes;      /* bytes of one layer's k (= v) blocks */
    float *logits;               /* (max_seqs, V) */
    int32_t *d_tok, *d_seq, *d_pos, *d_table, *d_next; /* device int32 */
    float *d_kv_scale;           /* fp8 cache: its static per-tensor scale 1.0 (device), as
                                    prefill/decode's (transformer.c) */
    int32_t *h_tok, *h_seq, *h_pos, *h_table, *h_next; /* host staging */
    int32_t *tokens;             /* (requests, isl + osl): prompt, then generated tokens */
    int64_t stride;              /* isl + osl */
    hb_serve_cfg cfg;
    int64_t max_blocks, n_seqs_max;
    /* the last stream */
    int have_stats;
    double stats[HB_SERVE_N_STATS];
    double *records;             /* (requests, HB_SERVE_REQ_COLS) */
    /* tests: the logits of each request's first output token (requests, V), when asked */
    float *first_logits;
    int64_t n_preempt_last;
    /* MoE: the tokens each expert received over the first stream (n_moe x E), and the rows
     * fed so far in the current stream (row numbers of synthetic routing) */
    int64_t *expert_tokens;
    int have_counts;
    int64_t rows_fed;
    /* tp > 1: the group (made by the harness), this rank's index in it, the rank's columns of
     * the vocab-parallel head's logits (max_seqs, Vl), and a device double that carries rank
     * 0's clock to the group (Poisson arrivals: every rank schedules at rank 0's time) */
    hb_comm *comm;
    int64_t trank;
    float *logits_l;
    double *d_now;
} serve_state;

static hb_tensor TT(const serve_state *st, int i) {
    if (i < 0) return (hb_tensor){0};
    const hb_tf_tensor *t = &st->lay.t[i];
    char *base = t->arena == HB_ARENA_WEIGHTS ? st->weights : st->act;
    void *p = base + t->off;
    hb_tensor x;
    if (t->ndim == 3) x = hb_t3(p, t->dt, t->ne[0], t->ne[1], t->ne[2]);
    else if (t->ndim == 2) x = hb_t2(p, t->dt, t->ne[0], t->ne[1], t->ne[1]);
    else x = hb_t1(p, t->dt, t->ne[0]);
    if (t->q != HB_QUANT_NONE) x = hb_tq(x, t->q, t->bm, t->bk, (float *)(void *)(base + t->scale_off));
    return x;
}
static float *A(const serve_state *st, int i) { return (float *)(void *)(st->act + st->lay.t[i].off); }
static hb_tensor rows(float *p, int64_t r0, int64_t n, int64_t cols, int64_t ld) {
    return hb_t2(p + r0 * ld, HB_F32, n, cols, ld);
}

static hb_status norm(hb_backend *be, const hb_model *m, hb_tensor out, hb_tensor in, hb_tensor w, hb_tensor b) {
    if (m->norm == HB_NORM_LAYERNORM) return HB_OP(be, layernorm, .out = out, .in = in, .w = w, .b = b, .eps = m->norm_eps);
    return HB_OP(be, rmsnorm, .out = out, .in = in, .w = w, .eps = m->norm_eps);
}

/* tp: x (n f32) summed over the group in place (the row-parallel matmuls' partial products:
 * rank 0 adds its own into x, the others write theirs over x); nothing alone. */
static hb_status tp_sum(hb_backend *be, serve_state *st, float *x, int64_t n) {
    if (!st->comm || st->lay.tp <= 1) return HB_OK;
    HB_TRY(be->ops->sync(be));
    return hb_comm_all_reduce(st->comm, x, x, n, HB_CDT_F32, HB_REDOP_SUM);
}

/* The cache of layer l: k (which 0) or v (1) blocks as one (kv_blocks, bs, Hkv, D) tensor, or
 * block b alone as a (1, bs, Hkv, D) cache (kv_store's view). */
static hb_tensor cache_of(const serve_state *st, int64_t l, int which, int64_t b) {
    const hb_tf_layout *y = &st->lay;
    const int64_t bs = st->cfg.block_size, bw = bs * y->Hkv * y->D * hb_dtype_size(y->kvt);
    char *base = st->kv + (2 * l + which) * st->kv_layer_bytes;
    const hb_tensor t = b < 0 ? hb_t4(base, y->kvt, st->cfg.kv_blocks, bs, y->Hkv, y->D)
                              : hb_t4(base + b * bw, y->kvt, 1, bs, y->Hkv, y->D);
    return hb_dtype_is_fp8(y->kvt) ? hb_tq(t, HB_QUANT_TENSOR, 0, 0, st->d_kv_scale) : t;
}

/* MLA: layer l's latent block b (one request's slot) as a (1, bs, dc + dr) cache. */
static hb_tensor mla_slot(const serve_state *st, int64_t l, int64_t b) {
    const hb_tf_layout *y = &st->lay;
    const int64_t bs = st->cfg.block_size;
    return hb_t3(st->kv + l * st->kv_layer_bytes + b * bs * kv_row_bytes(y), y->kvt, 1, bs, y->dc + y->dr);
}

/* MLA attention of block b on the iteration's rows h (N, C), added into x: transformer.c's
 * mla_block with the projections on all rows and, per segment, rope at its positions and
 * mla_attention over its request's latent slot - materialising K/V for prompt rows, absorbing
 * the up-projections for a decode step (as prefill and decode do, so a request's tokens are
 * theirs). */
static hb_status mla_attn(hb_backend *be, const hb_model *m, serve_state *st, const hb_serve_sched *s,
                          const hb_tf_block *b, int64_t l, int64_t N) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, H = y->Hq, dq = H * (y->dn + y->dr), Dl = y->dc + y->dr, dvo = H * y->dv;
    float *qp = A(st, y->mq), *lp = A(st, y->mlat), *ap = A(st, y->matt);
    const hb_tensor h = rows(A(st, y->h), 0, N, C, C), q = rows(qp, 0, N, dq, dq), lat = rows(lp, 0, N, Dl, Dl);
    if (y->dql > 0) {
        const hb_tensor cq = rows(A(st, y->mcq), 0, N, y->dql, y->dql);
        HB_TRY(HB_OP(be, matmul, .out = cq, .a = h, .w = TT(st, b->wq_a)));
        HB_TRY(HB_OP(be, rmsnorm, .out = cq, .in = cq, .w = TT(st, b->q_norm), .eps = m->norm_eps));
        HB_TRY(HB_OP(be, matmul, .out = q, .a = cq, .w = TT(st, b->qkv_w)));
    } else {
        HB_TRY(HB_OP(be, matmul, .out = q, .a = h, .w = TT(st, b->qkv_w)));
    }
    HB_TRY(HB_OP(be, matmul, .out = lat, .a = h, .w = TT(st, b->wkv_a)));
    const hb_tensor cn = hb_t2(lp, HB_F32, N, y->dc, Dl);
    HB_TRY(HB_OP(be, rmsnorm, .out = cn, .in = cn, .w = TT(st, b->kv_norm), .eps = m->norm_eps));
    /* rope on every row at its own position (one launch each for q's rope parts and k_pe) */
    HB_TRY(HB_OP(be, rope, .x = hb_t2(qp + H * y->dn, HB_F32, N, H * y->dr, dq), .B = 1, .T = N, .pos0 = 0, .H = H,
                 .theta = m->rope_theta, .scaling = m->rope_scaling, .pos = st->d_pos));
    HB_TRY(HB_OP(be, rope, .x = hb_t2(lp + y->dc, HB_F32, N, y->dr, Dl), .B = 1, .T = N, .pos0 = 0, .H = 1,
                 .theta = m->rope_theta, .scaling = m->rope_scaling, .pos = st->d_pos));
    int64_t row = 0;
    for (int64_t j = 0; j < s->n_seg; j++) {
        const hb_serve_seg *g = &s->seg[j];
        const hb_serve_req *r = &s->req[g->req];
        HB_TRY(HB_OP(be, mla_attention, .out = rows(ap, row, g->n, dvo, dvo), .q = rows(qp, row, g->n, dq, dq),
                     .latent = rows(lp, row, g->n, Dl, Dl), .cache = mla_slot(st, l, r->blocks[0]),
                     .wkv_b = TT(st, b->wkv_b), .B = 1, .T = g->n, .pos0 = g->pos0, .H = H, .dn = y->dn, .dr = y->dr,
                     .dv = y->dv, .absorb = g->n == 1 && g->pos0 >= r->n_in));
        row += g->n;
    }
    HB_TRY(HB_OP(be, matmul, .out = rows(A(st, y->x), 0, N, C, C), .a = rows(ap, 0, N, dvo, dvo),
                 .w = TT(st, b->proj_w), .beta = st->trank == 0 ? 1.0f : 0.0f));
    return tp_sum(be, st, A(st, y->x), N * C);
}

/* The routed experts of MoE block b on h (N, C), added into x: transformer.c's moe_ffn on the
 * iteration's rows (router logits, top-k, permutation by expert, two grouped GEMMs, the
 * weighted combine with beta 1). Learned routing depends on the rows alone, so a request's
 * tokens do not depend on what it is batched with; synthetic routing numbers the rows of the
 * stream in feeding order (route_row0). During the first stream each expert's tokens are
 * counted (a download of E + 1 offsets per MoE layer and iteration: that stream only). */
static hb_status moe_ffn(hb_backend *be, const hb_model *m, serve_state *st, const hb_case *c, const hb_tf_block *b,
                         int64_t N, int64_t l, float beta) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, E = y->E, K = y->K, Fe = y->Fe, NK = N * K;
    const hb_tensor h = rows(A(st, y->h), 0, N, C, C), x = rows(A(st, y->x), 0, N, C, C);
    int32_t *ids = (int32_t *)(void *)A(st, y->ids), *rws = (int32_t *)(void *)A(st, y->rows);
    int32_t *offs = (int32_t *)(void *)A(st, y->offs);
    float *rwt = A(st, y->rwt), *xp = A(st, y->xp), *eup = A(st, y->eup), *eact = A(st, y->eact), *ey = A(st, y->ey);
    HB_TRY(HB_OP(be, matmul, .out = rows(A(st, y->rlog), 0, N, E, E), .a = h, .w = TT(st, b->router_w)));
    HB_TRY(HB_OP(be, moe_route, .ids = ids, .weights = rwt, .logits = rows(A(st, y->rlog), 0, N, E, E),
                 .bias = TT(st, b->router_b), .kind = m->router, .top_k = K, .n_group = m->n_group,
                 .topk_group = m->topk_group, .norm = m->norm_topk, .scale = m->routed_scale, .mode = c->routing,
                 .zipf_s = c->zipf_s, .seed = hb_rng_u64(c->seed, 9000 + (uint64_t)l), .row0 = st->rows_fed));
    HB_TRY(HB_OP(be, moe_permute, .xp = rows(xp, 0, NK, C, C), .x = h, .ids = ids, .top_k = K, .n_experts = E,
                 .rows = rws, .offsets = offs));
    HB_TRY(HB_OP(be, matmul_grouped, .out = rows(eup, 0, NK, 2 * Fe, 2 * Fe), .a = rows(xp, 0, NK, C, C),
                 .w = TT(st, b->exp_up), .offsets = offs));
    HB_TRY(HB_OP(be, swiglu, .out = rows(eact, 0, NK, Fe, Fe), .in = rows(eup, 0, NK, 2 * Fe, 2 * Fe)));
    HB_TRY(HB_OP(be, matmul_grouped, .out = rows(ey, 0, NK, C, C), .a = rows(eact, 0, NK, Fe, Fe),
                 .w = TT(st, b->exp_down), .offsets = offs));
    HB_TRY(HB_OP(be, moe_combine, .out = x, .y = rows(ey, 0, NK, C, C), .rows = rws, .weights = rwt, .top_k = K,
                 .beta = beta));
    if (st->expert_tokens && !st->have_counts) {
        int32_t *o = malloc((size_t)(E + 1) * sizeof *o);
        if (!o) return HB_ERR_NOMEM;
        hb_status s = be->ops->download(be, o, offs, (size_t)(E + 1) * sizeof *o);
        for (int64_t e = 0; s == HB_OK && e < E; e++) st->expert_tokens[b->moe_index * E + e] += o[e + 1] - o[e];
        free(o);
        HB_TRY(s);
    }
    return HB_OK;
}

/* GQA attention of block b on the iteration's rows h (N, C), added into x: qkv for all rows;
 * rope of every row at its position (rotary models) and its k, v into its request's blocks;
 * then attention_paged over the blocks and the output projection. */
static hb_status gqa_attn(hb_backend *be, const hb_model *m, serve_state *st, const hb_serve_sched *s,
                          const hb_tf_block *b, int64_t l, int64_t N) {
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, D = y->D, Hq = y->Hq, Hkv = y->Hkv, dq = Hq * D, dqkv = y->d_qkv;
    const int64_t mb = st->max_blocks;
    float *qkvp = A(st, y->qkv), *attp = A(st, y->att);
    const hb_tensor x = rows(A(st, y->x), 0, N, C, C), h = rows(A(st, y->h), 0, N, C, C);
    HB_TRY(HB_OP(be, matmul, .out = rows(qkvp, 0, N, dqkv, dqkv), .a = h, .w = TT(st, b->qkv_w),
                 .bias = TT(st, b->qkv_b))); /* (N, (Hq + 2 Hkv) D) */
    HB_TRY(hb_tf_qk_norm(be, m, y, b, qkvp, TT(st, b->qn_w), TT(st, b->kn_w), N));
    /* every row at its own position (the rows' positions and sequences, and the block table,
     * were uploaded for the iteration): rope, then k and v into their blocks - one launch each
     * for the whole continuous batch, however many requests and blocks it spans */
    if (m->pos == HB_POS_ROPE)
        HB_TRY(HB_OP(be, rope, .x = rows(qkvp, 0, N, (Hq + Hkv) * D, dqkv), .B = 1, .T = N, .pos0 = 0, .H = Hq + Hkv,
                     .theta = m->rope_theta, .scaling = m->rope_scaling, .pos = st->d_pos));
    HB_TRY(HB_OP(be, kv_store, .k_cache = cache_of(st, l, 0, -1), .v_cache = cache_of(st, l, 1, -1),
                 .k = rows(qkvp + dq, 0, N, Hkv * D, dqkv), .v = rows(qkvp + dq + Hkv * D, 0, N, Hkv * D, dqkv), .B = 1,
                 .T = N, .block_table = st->d_table, .seq = st->d_seq, .pos = st->d_pos, .max_blocks = mb));
    HB_TRY(HB_OP(be, attention_paged, .out = rows(attp, 0, N, dq, dq), .q = rows(qkvp, 0, N, dq, dqkv),
                 .k_cache = cache_of(st, l, 0, -1), .v_cache = cache_of(st, l, 1, -1), .block_table = st->d_table,
                 .max_blocks = mb, .n_seqs = s->n_seg, .seq = st->d_seq, .pos = st->d_pos));
    const int lead = st->trank == 0; /* row parallel under tp */
    HB_TRY(HB_OP(be, matmul, .out = x, .a = rows(attp, 0, N, dq, dq), .w = TT(st, b->proj_w),
                 .bias = lead ? TT(st, b->proj_b) : (hb_tensor){0}, .beta = lead ? 1.0f : 0.0f));
    return tp_sum(be, st, x.data, N * C);
}

/* One scheduler iteration through the model: s->seg (n_seg segments, n_tokens rows); the
 * next token of each emitting segment into st->h_next (n_emit of them, in segment order). */
static hb_status iterate(hb_backend *be, const hb_case *c, serve_state *st, const hb_serve_sched *s,
                         int64_t *n_emit_out) {
    const hb_model *m = &c->model;
    const hb_tf_layout *y = &st->lay;
    const int64_t C = y->C, V = y->V, N = s->n_tokens, mb = st->max_blocks;
    /* host: the rows' tokens, sequences (segment index) and positions; the block table */
    int64_t row = 0, n_emit = 0;
    for (int64_t j = 0; j < s->n_seg; j++) {
        const hb_serve_seg *g = &s->seg[j];
        const hb_serve_req *r = &s->req[g->req];
        for (int64_t t = 0; t < g->n; t++, row++) {
            st->h_tok[row] = st->tokens[g->req * st->stride + g->pos0 + t];
            st->h_seq[row] = (int32_t)j;
            st->h_pos[row] = (int32_t)(g->pos0 + t);
        }
        for (int64_t b = 0; b < mb; b++) st->h_table[j * mb + b] = b < r->n_blocks ? r->blocks[b] : 0;
    }
    HB_TRY(be->ops->upload(be, st->d_tok, st->h_tok, (size_t)N * sizeof(int32_t)));
    HB_TRY(be->ops->upload(be, st->d_seq, st->h_seq, (size_t)N * sizeof(int32_t)));
    HB_TRY(be->ops->upload(be, st->d_pos, st->h_pos, (size_t)N * sizeof(int32_t)));
    HB_TRY(be->ops->upload(be, st->d_table, st->h_table, (size_t)(s->n_seg * mb) * sizeof(int32_t)));

    float *xp = A(st, y->x), *hp = A(st, y->h), *ffp = A(st, y->ff), *ffap = A(st, y->ffa);
    const hb_tensor x = rows(xp, 0, N, C, C), h = rows(hp, 0, N, C, C);
    if (y->wpe < 0) {
        HB_TRY(HB_OP(be, embedding, .out = x, .wte = TT(st, y->wte), .tokens = st->d_tok, .B = 1, .T = N, .pos0 = 0));
    } else { /* learned positions (GPT-2): each segment's rows at its own positions */
        row = 0;
        for (int64_t j = 0; j < s->n_seg; j++) {
            const hb_serve_seg *g = &s->seg[j];
            HB_TRY(HB_OP(be, embedding, .out = rows(xp, row, g->n, C, C), .wte = TT(st, y->wte), .wpe = TT(st, y->wpe),
                         .tokens = st->d_tok + row, .B = 1, .T = g->n, .pos0 = g->pos0));
            row += g->n;
        }
    }
    for (int64_t l = 0; l < y->L; l++) {
        const hb_tf_block *b = &y->blocks[l];
        HB_TRY(norm(be, m, h, x, TT(st, b->ln1_w), TT(st, b->ln1_b)));
        HB_TRY(b->attn == HB_ATTN_MLA ? mla_attn(be, m, st, s, b, l, N) : gqa_attn(be, m, st, s, b, l, N));
        /* FFN: x += fc2(act(fc(norm(x)))); MoE: x += shared(h) + combine(experts(h)) */
        HB_TRY(norm(be, m, h, x, TT(st, b->ln2_w), TT(st, b->ln2_b)));
        if (b->F > 0) {
            const int64_t Fl = b->F, dffl = m->act == HB_ACT_SWIGLU ? 2 * Fl : Fl;
            HB_TRY(HB_OP(be, matmul, .out = rows(ffp, 0, N, dffl, dffl), .a = h, .w = TT(st, b->fc_w), .bias = TT(st, b->fc_b)));
            if (m->act == HB_ACT_SWIGLU) HB_TRY(HB_OP(be, swiglu, .out = rows(ffap, 0, N, Fl, Fl), .in = rows(ffp, 0, N, dffl, dffl)));
            else HB_TRY(HB_OP(be, gelu, .out = rows(ffap, 0, N, Fl, Fl), .in = rows(ffp, 0, N, dffl, dffl)));
            const int lead = st->trank == 0; /* row parallel, as the attention's output */
            HB_TRY(HB_OP(be, matmul, .out = x, .a = rows(ffap, 0, N, Fl, Fl), .w = TT(st, b->fc2_w),
                         .bias = lead ? TT(st, b->fc2_b) : (hb_tensor){0}, .beta = lead ? 1.0f : 0.0f));
            if (b->ffn != HB_FFN_MOE) HB_TRY(tp_sum(be, st, xp, N * C));
        }
        if (b->ffn == HB_FFN_MOE) { /* tp: the routed part adds to the shared experts' partial sums */
            HB_TRY(moe_ffn(be, m, st, c, b, N, l, b->F > 0 || st->trank == 0 ? 1.0f : 0.0f));
            HB_TRY(tp_sum(be, st, xp, N * C));
        }
    }
    st->rows_fed += N;
    /* the final norm of each emitting segment's last row into h row k, then the lm head */
    row = 0;
    for (int64_t j = 0; j < s->n_seg; j++) {
        const hb_serve_seg *g = &s->seg[j];
        if (g->emits)
            HB_TRY(norm(be, m, rows(hp, n_emit++, 1, C, C), rows(xp, row + g->n - 1, 1, C, C), TT(st, y->lnf_w),
                        TT(st, y->lnf_b)));
        row += g->n;
    }
    *n_emit_out = n_emit;
    if (n_emit == 0) return HB_OK;
    const hb_tensor lg = hb_t2(st->logits, HB_F32, n_emit, V, V);
    if (st->logits_l) { /* vocab parallel: the rank's columns, then each row gathered (as decode's head) */
        const int64_t Vl = y->Vl;
        HB_TRY(HB_OP(be, matmul, .out = hb_t2(st->logits_l, HB_F32, n_emit, Vl, Vl), .a = rows(hp, 0, n_emit, C, C),
                     .w = TT(st, y->lm_w)));
        HB_TRY(be->ops->sync(be));
        for (int64_t k = 0; k < n_emit; k++)
            HB_TRY(hb_comm_all_gather(st->comm, st->logits_l + k * Vl, st->logits + k * V, Vl, HB_CDT_F32));
    } else {
        HB_TRY(HB_OP(be, matmul, .out = lg, .a = rows(hp, 0, n_emit, C, C), .w = TT(st, m->tied ? y->wte : y->lm_w)));
    }
    HB_TRY(HB_OP(be, argmax, .out = st->d_next, .in = lg));
    HB_TRY(be->ops->download(be, st->h_next, st->d_next, (size_t)n_emit * sizeof(int32_t)));
    return be->ops->sync(be);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double t) {
    double d = t - now_s();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - floor(d)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* One whole stream at st->cfg (its rate, for Poisson), into st->stats and st->records. */
static hb_status run_stream(hb_workload *w) {
    serve_state *st = w->impl;
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    hb_serve_sched s;
    hb_err err = {{0}};
    const double t0 = now_s();
    HB_TRY(hb_serve_sched_init(&s, &st->cfg, t0, &err));
    st->rows_fed = 0;
    hb_status rc = HB_OK;
    while (!hb_serve_done(&s)) {
        double now = now_s();
        if (st->d_now) { /* tp, Poisson: every rank of the group schedules at rank 0's time */
            double el = now - t0;
            if ((rc = be->ops->upload(be, st->d_now, &el, sizeof el)) != HB_OK || (rc = be->ops->sync(be)) != HB_OK ||
                (rc = hb_comm_broadcast(st->comm, st->d_now, 1, HB_CDT_F64, 0)) != HB_OK ||
                (rc = be->ops->download(be, &el, st->d_now, sizeof el)) != HB_OK || (rc = be->ops->sync(be)) != HB_OK)
                break;
            now = t0 + el;
        }
        if ((rc = hb_serve_plan(&s, now)) != HB_OK) break;
        if (s.n_seg == 0) {
            double t = hb_serve_next_arrival(&s);
            if (!isfinite(t)) {
                rc = HB_ERR_INTERNAL; /* nothing runs and nothing will arrive */
                break;
            }
            sleep_until(t);
            continue;
        }
        int64_t n_emit = 0;
        if ((rc = iterate(be, c, st, &s, &n_emit)) != HB_OK) break;
        now = now_s();
        if (!w->have_fp && n_emit > 0) {
            if ((rc = hb_fingerprint_device(be, st->logits, n_emit * st->lay.V, st->lay.V, w->fp)) != HB_OK) break;
            w->have_fp = 1;
        }
        /* the emitted tokens extend their requests (before commit counts them) */
        int64_t k = 0;
        for (int64_t j = 0; j < s.n_seg; j++) {
            const hb_serve_seg *g = &s.seg[j];
            if (!g->emits) continue;
            const hb_serve_req *r = &s.req[g->req];
            if (r->n_in + r->n_out < st->stride) st->tokens[g->req * st->stride + r->n_in + r->n_out] = st->h_next[k];
            if (st->first_logits && r->n_out == 0 &&
                (rc = be->ops->download(be, st->first_logits + g->req * st->lay.V, st->logits + k * st->lay.V,
                                        (size_t)st->lay.V * sizeof(float))) != HB_OK)
                break;
            k++;
        }
        if (rc != HB_OK || (rc = hb_serve_commit(&s, now)) != HB_OK) break;
    }
    if (rc == HB_OK) {
        hb_serve_stats ss;
        rc = hb_serve_stats_compute(s.req, s.cfg.requests, &ss);
        if (rc == HB_OK) {
            double *v = st->stats;
            for (int i = 0; i < 3; i++) {
                v[HB_SV_TTFT_P50 + i] = ss.ttft_s[i];
                v[HB_SV_TPOT_P50 + i] = ss.tpot_s[i];
                v[HB_SV_ITL_P50 + i] = ss.itl_s[i];
                v[HB_SV_E2E_P50 + i] = ss.e2e_s[i];
            }
            v[HB_SV_DURATION] = ss.duration_s;
            v[HB_SV_OUT_TPS] = ss.out_tokens_per_s;
            v[HB_SV_TOTAL_TPS] = ss.total_tokens_per_s;
            v[HB_SV_REQ_PS] = ss.requests_per_s;
            v[HB_SV_INTERACTIVITY] = ss.interactivity;
            v[HB_SV_PREEMPTIONS] = (double)ss.preemptions;
            v[HB_SV_ITERATIONS] = (double)s.n_iterations;
            v[HB_SV_KV_BLOCKS] = (double)s.cfg.kv_blocks;
            v[HB_SV_RATE] = s.cfg.rate > 0 ? s.cfg.rate : NAN;
            v[HB_SV_SEARCH_STREAMS] = 1;
            v[HB_SV_SLO] = NAN;
            if (c->slo_ttft_s > 0 || c->slo_tpot_s > 0)
                v[HB_SV_SLO] = (c->slo_ttft_s <= 0 || ss.ttft_s[2] <= c->slo_ttft_s) &&
                               (c->slo_tpot_s <= 0 || ss.tpot_s[2] <= c->slo_tpot_s);
            for (int64_t i = 0; i < s.cfg.requests; i++) {
                const hb_serve_req *r = &s.req[i];
                double *o = st->records + i * HB_SERVE_REQ_COLS;
                o[0] = r->t_arrival - t0;
                o[1] = r->t_first - t0;
                o[2] = r->t_finish - t0;
                o[3] = (double)r->n_in;
                o[4] = (double)r->n_out;
                o[5] = (double)r->preemptions;
            }
            st->have_stats = 1;
            st->have_counts = 1; /* the first stream's expert counts are complete */
        }
    }
    hb_serve_sched_free(&s);
    return rc;
}

/* arrival: search - the highest Poisson rate whose p99 TTFT and TPOT meet the SLOs (MLPerf's
 * Server scenario): a first stream with every request arriving at once (rate 1e6/s) measures
 * the capacity N / duration; from there the rate doubles (while valid) or halves (while
 * invalid) until a valid and an invalid rate bracket the answer (12 streams at most), then 4
 * geometric bisections narrow it to a factor 2^(1/16) (4.4%). The records and statistics are
 * the highest valid stream's (the last one's when none was valid: rate NaN). */
static hb_status search_rate(hb_workload *w) {
    serve_state *st = w->impl;
    const int64_t R = st->cfg.requests;
    double *saved = malloc((size_t)(R * HB_SERVE_REQ_COLS) * sizeof *saved), stats[HB_SERVE_N_STATS];
    if (!saved) return HB_ERR_NOMEM;
    double lo = NAN, hi = NAN, r;
    int n = 0;
    hb_status s;
#define TRY_RATE(rate_)                                                                                    \
    do {                                                                                                   \
        st->cfg.rate = (rate_);                                                                            \
        if ((s = run_stream(w)) != HB_OK) goto out;                                                        \
        n++;                                                                                               \
        if (st->stats[HB_SV_SLO] == 1) {                                                                   \
            lo = st->cfg.rate;                                                                             \
            memcpy(saved, st->records, (size_t)(R * HB_SERVE_REQ_COLS) * sizeof *saved);                  \
            memcpy(stats, st->stats, sizeof stats);                                                        \
        } else if (isnan(hi) || st->cfg.rate < hi) {                                                       \
            hi = st->cfg.rate;                                                                             \
        }                                                                                                  \
    } while (0)
    TRY_RATE(1e6);
    r = st->stats[HB_SV_DURATION] > 0 ? (double)R / st->stats[HB_SV_DURATION] : 1.0;
    hi = NAN; /* the probe estimates the capacity; it brackets nothing */
    if (!isnan(lo)) r = lo; /* valid even when everything arrives at once: nothing to search */
    else
        for (int k = 0; k < 12 && (isnan(lo) || isnan(hi)); k++) {
            TRY_RATE(r);
            r = isnan(hi) ? 2 * r : r / 2;
        }
    for (int k = 0; k < 4 && !isnan(lo) && !isnan(hi); k++) TRY_RATE(sqrt(lo * hi));
    if (!isnan(lo)) {
        memcpy(st->records, saved, (size_t)(R * HB_SERVE_REQ_COLS) * sizeof *saved);
        memcpy(st->stats, stats, sizeof stats);
    }
    st->stats[HB_SV_RATE] = lo;
    st->stats[HB_SV_SEARCH_STREAMS] = n;
#undef TRY_RATE
out:
    free(saved);
    return s;
}

static hb_status serve_step(hb_workload *w) {
    return w->c.arrival_rate == HB_SERVE_RATE_SEARCH ? search_rate(w) : run_stream(w);
}

static void serve_free(hb_workload *w) {
    serve_state *st = w->impl;
    if (!st) return;
    hb_backend *be = w->be;
    be->ops->free(be, st->weights);
    be->ops->free(be, st->act);
    be->ops->free(be, st->kv);
    be->ops->free(be, st->logits);
    be->ops->free(be, st->d_tok);
    be->ops->free(be, st->d_seq);
    be->ops->free(be, st->d_pos);
    be->ops->free(be, st->d_table);
    be->ops->free(be, st->d_next);
    be->ops->free(be, st->d_kv_scale);
    be->ops->free(be, st->logits_l);
    be->ops->free(be, st->d_now);
    free(st->h_tok);
    free(st->h_seq);
    free(st->h_pos);
    free(st->h_table);
    free(st->h_next);
    free(st->tokens);
    free(st->records);
    free(st->first_logits);
    free(st->expert_tokens);
    hb_tf_layout_free(&st->lay);
    free(st);
}

static hb_status dev_alloc(hb_backend *be, void **p, int64_t nbytes, hb_err *err) {
    if (be->ops->alloc(be, (size_t)(nbytes > 0 ? nbytes : 256), p) != HB_OK)
        return hb_errf(err, HB_ERR_NOMEM, "serve: allocation of %.3f GiB failed: %s", (double)nbytes / (1 << 30), be->err);
    return HB_OK;
}

/* An auto cache (kv_blocks 0): every request in flight at its longest, or what 90% of the
 * device's free memory holds beside weights, activations and logits (vLLM's
 * gpu_memory_utilization), at least one request (the plan's fit check counted that much). */
static hb_status size_kv(hb_backend *be, const hb_case *c, const hb_tf_layout *y, serve_state *st, hb_err *err) {
    int64_t free_b = 0, total_b = 0;
    if (!be->ops->mem_info || be->ops->mem_info(be, &free_b, &total_b) != HB_OK) return HB_OK; /* unknown: as asked */
    const int64_t per_block = kv_caches(y) * y->L * st->cfg.block_size * kv_row_bytes(y);
    const int64_t other = y->weight_bytes + y->act_bytes + st->n_seqs_max * y->V * 4;
    const double budget = 0.9 * (double)free_b - (double)other;
    const int64_t fit = budget > 0 ? (int64_t)(budget / (double)per_block) : 0;
    if (fit < st->max_blocks)
        return hb_errf(err, HB_ERR_TOO_LARGE, "serve: %.2f GiB free hold %lld KV blocks of %lld tokens beside %.2f GiB of "
                       "weights and activations; one request of isl + osl = %lld tokens needs %lld",
                       (double)free_b / (1 << 30), (long long)fit, (long long)st->cfg.block_size,
                       (double)other / (1 << 30), (long long)(c->isl + c->osl), (long long)st->max_blocks);
    if (fit < st->cfg.kv_blocks) st->cfg.kv_blocks = fit;
    return HB_OK;
}

static hb_status serve_setup(hb_workload *w, hb_err *err) {
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    if (!hb_model_is_mla(&c->model) && !be->ops->attention_paged)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "serve: backend %s has no attention_paged op (unsupported, not faked)",
                       be->info.name);
    if (hb_model_is_mla(&c->model) && !be->ops->mla_attention)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "serve: backend %s has no mla_attention op (unsupported, not faked)",
                       be->info.name);
    if (hb_model_is_moe(&c->model) &&
        (!be->ops->moe_route || !be->ops->moe_permute || !be->ops->matmul_grouped || !be->ops->moe_combine))
        return hb_errf(err, HB_ERR_UNSUPPORTED, "serve: backend %s has no MoE ops (moe_route, moe_permute, "
                       "matmul_grouped, moe_combine: unsupported, not faked)", be->info.name);
    serve_state *st = calloc(1, sizeof *st);
    if (!st) return HB_ERR_NOMEM;
    w->impl = st;
    w->free_impl = serve_free;
    w->step = serve_step;
    const hb_case sh = shadow_of(c);
    HB_TRY(hb_tf_layout_init(&sh, 0, &st->lay, err));
    const hb_tf_layout *y = &st->lay;
    if (y->tp > 1) { /* the harness made a group of tp ranks before dispatch */
        if (!w->group || w->group->size != y->tp)
            return hb_errf(err, HB_ERR_INTERNAL, "serve: tp %lld without a rank group of %lld ranks", (long long)y->tp,
                           (long long)y->tp);
        st->comm = w->group;
        st->trank = w->group->rank;
    }
    st->cfg = cfg_of(c);
    st->max_blocks = sched_blocks_per_request(c);
    st->n_seqs_max = st->cfg.max_seqs;
    st->stride = c->isl + c->osl;
    const int64_t R = st->cfg.requests, mbt = c->max_batch_tokens, ns = st->n_seqs_max;
    if (c->kv_blocks == 0) HB_TRY(size_kv(be, c, y, st, err));
    if (st->comm) { /* the group schedules alike: the smallest rank's cache (a max of negated counts) */
        double *d = NULL, v = -(double)st->cfg.kv_blocks;
        HB_TRY(dev_alloc(be, (void **)&d, sizeof v, err));
        hb_status s = be->ops->upload(be, d, &v, sizeof v);
        if (s == HB_OK) s = be->ops->sync(be);
        if (s == HB_OK) s = hb_comm_all_reduce(st->comm, d, d, 1, HB_CDT_F64, HB_REDOP_MAX);
        if (s == HB_OK) s = be->ops->download(be, &v, d, sizeof v);
        if (s == HB_OK) s = be->ops->sync(be);
        be->ops->free(be, d);
        if (s != HB_OK) return hb_errf(err, s, "serve: agreeing on the group's KV blocks: %s", st->comm->err);
        st->cfg.kv_blocks = (int64_t)-v;
        if (y->Vl != y->V) HB_TRY(dev_alloc(be, (void **)&st->logits_l, ns * y->Vl * 4, err));
        if (c->arrival_rate != 0) HB_TRY(dev_alloc(be, (void **)&st->d_now, sizeof(double), err));
    }
    st->kv_layer_bytes = st->cfg.kv_blocks * st->cfg.block_size * kv_row_bytes(y);
    HB_TRY(dev_alloc(be, (void **)&st->weights, y->arena_bytes[HB_ARENA_WEIGHTS], err));
    HB_TRY(dev_alloc(be, (void **)&st->act, y->arena_bytes[HB_ARENA_ACT], err));
    HB_TRY(dev_alloc(be, (void **)&st->kv, kv_caches(y) * y->L * st->kv_layer_bytes, err));
    HB_TRY(dev_alloc(be, (void **)&st->logits, ns * y->V * 4, err));
    HB_TRY(dev_alloc(be, (void **)&st->d_tok, mbt * 4, err));
    HB_TRY(dev_alloc(be, (void **)&st->d_seq, mbt * 4, err));
    HB_TRY(dev_alloc(be, (void **)&st->d_pos, mbt * 4, err));
    HB_TRY(dev_alloc(be, (void **)&st->d_table, mbt * st->max_blocks * 4, err));
    HB_TRY(dev_alloc(be, (void **)&st->d_next, ns * 4, err));
    if (hb_dtype_is_fp8(y->kvt)) {
        const float one = 1.0f;
        HB_TRY(dev_alloc(be, (void **)&st->d_kv_scale, 4, err));
        HB_TRY(be->ops->upload(be, st->d_kv_scale, &one, sizeof one));
    }
    st->h_tok = malloc((size_t)mbt * 4);
    st->h_seq = malloc((size_t)mbt * 4);
    st->h_pos = malloc((size_t)mbt * 4);
    st->h_table = malloc((size_t)(mbt * st->max_blocks) * 4);
    st->h_next = malloc((size_t)ns * 4);
    st->tokens = malloc((size_t)(R * st->stride) * sizeof *st->tokens);
    st->records = calloc((size_t)(R * HB_SERVE_REQ_COLS), sizeof *st->records);
    if (y->n_moe > 0 && !(st->expert_tokens = calloc((size_t)(y->n_moe * y->E), sizeof *st->expert_tokens)))
        return hb_errf(err, HB_ERR_NOMEM, "serve: out of host memory");
    if (!st->h_tok || !st->h_seq || !st->h_pos || !st->h_table || !st->h_next || !st->tokens || !st->records)
        return hb_errf(err, HB_ERR_NOMEM, "serve: out of host memory");
    w->out = st->logits;
    w->out_n = y->V; /* the first emitting row's logits */
    /* weights as prefill/decode make them (same ids, same seeds), or the case's checkpoint */
    char *arena[HB_ARENA_COUNT] = {0};
    arena[HB_ARENA_WEIGHTS] = st->weights;
    if (c->weights[0]) {
        HB_TRY(hb_tf_load_weights(be, c, y, arena, st->trank, err));
    } else { /* under tp each rank its slice of the whole tensors (transformer.c's fill_weights) */
        hb_status s = hb_tf_fill_weights(be, c, y, arena, st->trank);
        if (s == HB_ERR_UNSUPPORTED) return hb_errf(err, s, "serve: %s weights: %s", hb_case_dtype_name(c), be->err);
        HB_TRY(s);
    }
    /* prompts: request r's token t is the counter generator's element r * isl + t, as row r of
     * a prefill of (requests, isl) tokens */
    const uint64_t ts = hb_rng_u64(c->seed, 5);
    for (int64_t r = 0; r < R; r++)
        for (int64_t t = 0; t < st->stride; t++)
            st->tokens[r * st->stride + t] = t < c->isl ? (int32_t)(hb_rng_u64(ts, (uint64_t)(r * c->isl + t)) % (uint64_t)y->V) : 0;
    if (c->prompt_tokens[0]) { /* ... or ids r isl .. r isl + isl - 1 of the file (checked at plan time) */
        int32_t *ids = malloc((size_t)(R * c->isl) * sizeof *ids);
        if (!ids) return hb_errf(err, HB_ERR_NOMEM, "serve: out of host memory");
        hb_status s = hb_tokens_read(c->prompt_tokens, R * c->isl, y->V, ids, NULL, err);
        for (int64_t r = 0; r < R && s == HB_OK; r++)
            memcpy(st->tokens + r * st->stride, ids + r * c->isl, (size_t)c->isl * sizeof *ids);
        free(ids);
        HB_TRY(s);
    }
    return HB_OK;
}

int hb_workload_serve(const hb_workload *w, double stats[HB_SERVE_N_STATS], const double **requests,
                      int64_t *n_requests) {
    if (w->desc != &hb_wl_serve) return 0;
    const serve_state *st = w->impl;
    if (!st || !st->have_stats) return 0;
    memcpy(stats, st->stats, sizeof st->stats);
    *requests = st->records;
    *n_requests = st->cfg.requests;
    return 1;
}

hb_status hb_serve_keep_first_logits(hb_workload *w) {
    serve_state *st = w->impl;
    if (w->desc != &hb_wl_serve || !st) return HB_ERR_INTERNAL;
    if (!st->first_logits && !(st->first_logits = calloc((size_t)(st->cfg.requests * st->lay.V), sizeof(float))))
        return HB_ERR_NOMEM;
    return HB_OK;
}

hb_status hb_serve_expert_tokens(const hb_workload *w, const int64_t **counts, int64_t *n_layers, int64_t *n_experts) {
    const serve_state *st = w->impl;
    *counts = NULL;
    *n_layers = *n_experts = 0;
    if (w->desc != &hb_wl_serve || !st || !st->expert_tokens || !st->have_counts) return HB_OK;
    *counts = st->expert_tokens;
    *n_layers = st->lay.n_moe;
    *n_experts = st->lay.E;
    return HB_OK;
}

hb_status hb_serve_generated(const hb_workload *w, int32_t **ids, int64_t *rows, int64_t *cols) {
    const serve_state *st = w->impl;
    *ids = NULL;
    *rows = *cols = 0;
    if (w->desc != &hb_wl_serve || !st || !st->have_stats || w->c.osl < 1) return HB_OK;
    const int64_t R = st->cfg.requests, G = w->c.osl, isl = w->c.isl;
    int32_t *t = malloc((size_t)(R * G) * sizeof *t);
    if (!t) return HB_ERR_NOMEM;
    /* request r's outputs follow its input (n_in tokens, at most isl): tokens[r][n_in ..] */
    for (int64_t r = 0; r < R; r++) {
        const int64_t n_in = (int64_t)st->records[r * HB_SERVE_REQ_COLS + 3];
        const int64_t in = n_in > 0 && n_in <= isl ? n_in : isl;
        memcpy(t + r * G, st->tokens + r * st->stride + in, (size_t)G * sizeof *t);
    }
    *ids = t;
    *rows = R;
    *cols = G;
    return HB_OK;
}

const float *hb_serve_first_logits(const hb_workload *w) {
    const serve_state *st = w->impl;
    return w->desc == &hb_wl_serve && st ? st->first_logits : NULL;
}

const int32_t *hb_serve_tokens(const hb_workload *w, int64_t *stride) {
    const serve_state *st = w->impl;
    if (w->desc != &hb_wl_serve || !st) return NULL;
    *stride = st->stride;
    return st->tokens;
}

/* ---- the descriptor ---- */

static void serve_label(const hb_case *c, char *buf, int len) {
    char layers[48] = "", name[144], load[48], kv[24] = "";
    hb_case_model_name(c, name, sizeof name);
    if (c->model.n_layers != c->model.n_layers_full)
        snprintf(layers, sizeof layers, "[%lld/%lldL]", (long long)c->model.n_layers, (long long)c->model.n_layers_full);
    if (c->kv_dtype != HB_KV_AUTO) snprintf(kv, sizeof kv, " kv=%s", hb_kvt_name(c->kv_dtype));
    if (c->arrival_rate > 0) snprintf(load, sizeof load, "poisson:%g", c->arrival_rate);
    else if (c->arrival_rate == HB_SERVE_RATE_SEARCH) snprintf(load, sizeof load, "rate=search");
    else snprintf(load, sizeof load, "C=%lld", (long long)c->concurrency);
    snprintf(buf, len, "serve %s%s %s%s isl=%lld osl=%lld %s N=%lld", name, layers, hb_case_dtype_name(c), kv,
             (long long)c->isl, (long long)c->osl, load, (long long)hb_case_serve_requests(c));
}

/* One stream: the forward FLOPs of every fed token (matmuls; attention 4 Hq D per query-key
 * pair; MoE: the router and top_k routed experts per token; the lm head once per output
 * token), tokens_in the prompts' tokens, tokens_out requests x osl. bytes: a lower bound, every
 * weight read once per decode round (osl rounds per wave of `concurrency` requests; MoE: the
 * experts the round's tokens are expected to touch). Recomputation after a preemption is not
 * counted. */
static hb_status serve_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    const hb_case sh = shadow_of(c);
    hb_tf_layout y;
    HB_TRY(hb_tf_layout_init(&sh, 0, &y, err));
    const hb_serve_cfg cfg = cfg_of(c);
    /* MLA (cost.c's forward_flops): a prompt materialises K_nope and V of its positions once
     * (chunks that re-materialise the cached ones are not counted), a decode step is absorbed */
    const double H = (double)y.Hq, dn = (double)y.dn, dr = (double)y.dr, dv = (double)y.dv, dc = (double)y.dc;
    const double G1 = (double)c->osl - 1;
    double tin = 0, pairs = 0, mla = 0;
    for (int64_t i = 0; i < cfg.requests; i++) {
        const double n_in = (double)hb_serve_input_len(&cfg, i), fed = n_in + G1;
        tin += n_in;
        pairs += fed * (fed + 1) / 2;
        if (y.dc > 0)
            mla += 2.0 * n_in * dc * H * (dn + dv) + 2.0 * H * (dn + dr + dv) * n_in * (n_in + 1) / 2 +
                   G1 * H * (2.0 * dn * dc + 2.0 * dc * dv) + 2.0 * H * (2.0 * dc + dr) * (G1 * n_in + G1 * (G1 + 1) / 2);
    }
    double per_tok = 0;
    for (int64_t l = 0; l < y.L; l++) {
        const hb_tf_block *b = &y.blocks[l];
        const double Fl = (double)b->F, dff = c->model.act == HB_ACT_SWIGLU ? 2 * Fl : Fl, C = (double)y.C;
        if (b->attn == HB_ATTN_MLA) { /* q (down, up or one matrix), kv down, output */
            const double dq = H * (dn + dr);
            per_tok += 2.0 * ((y.dql ? C * (double)y.dql + (double)y.dql * dq : C * dq) + C * (dc + dr) + H * dv * C);
        } else {
            per_tok += 2.0 * C * ((double)y.d_qkv + (double)(y.Hq * y.D));
        }
        per_tok += 2.0 * C * (dff + Fl);
        if (b->ffn == HB_FFN_MOE) /* the router, and K routed experts' SwiGLU per token */
            per_tok += 2.0 * C * (double)y.E + (double)y.K * 6.0 * C * (double)y.Fe;
    }
    const double tout = (double)cfg.requests * (double)c->osl, fed = tin + tout - (double)cfg.requests;
    const double attn = y.dc > 0 ? (double)y.L * mla : 4.0 * (double)(y.Hq * y.D) * (double)y.L * pairs;
    k->flops = per_tok * fed + attn + 2.0 * (double)(y.Vl * y.C) * tout; /* tp: the rank's head rows */
    k->tokens_in = tin;
    k->tokens_out = tout;
    const double waves = ceil((double)cfg.requests / (double)cfg.max_seqs);
    k->bytes = (double)y.matrix_bytes * (double)c->osl * waves;
    if (y.n_moe > 0) /* each decode round reads the experts its in-flight tokens are routed to */
        k->bytes += (double)y.n_moe * hb_tf_expected_experts(c, (double)cfg.max_seqs) * (double)y.expert_bytes *
                    (double)c->osl * waves;
    /* an auto cache counts one request here: setup sizes it to the free memory (size_kv) */
    const int64_t kv = kv_caches(&y) * y.L * (c->kv_blocks > 0 ? cfg.kv_blocks : sched_blocks_per_request(c)) *
                       cfg.block_size * kv_row_bytes(&y);
    k->mem_bytes = y.weight_bytes + y.act_bytes + kv + in_flight(c) * y.V * 4;
    hb_tf_layout_free(&y);
    return HB_OK;
}

static hb_status serve_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const k_model[] = {"model", NULL}, *const k_len[] = {"osl", "isl", "model", NULL};
    static const char *const k_ratio[] = {"range_ratio", NULL}, *const k_req[] = {"requests", "concurrency", NULL};
    static const char *const k_kv[] = {"kv_blocks", "kv_block_size", NULL};
    static const char *const k_slo[] = {"slo_ttft_s", "slo_tpot_s", "arrival", NULL};
    static const char *const k_mbt[] = {"max_batch_tokens", NULL}, *const k_q[] = {"dtype", NULL};
    const hb_model *m = &c->model;
    /* first: the cost and the scheduler walk every request (10 x concurrency by default) */
    *blame = k_req;
    if (c->requests > HB_SERVE_MAX_REQUESTS || c->concurrency > HB_SERVE_MAX_REQUESTS / DEFAULT_REQ_PER_C)
        return hb_errf(err, HB_ERR_INPUT, "%s %lld is too many (accepted: requests 0 to %d, concurrency 1 to %d)",
                       c->requests > HB_SERVE_MAX_REQUESTS ? "requests" : "concurrency",
                       (long long)(c->requests > HB_SERVE_MAX_REQUESTS ? c->requests : c->concurrency),
                       HB_SERVE_MAX_REQUESTS, HB_SERVE_MAX_REQUESTS / DEFAULT_REQ_PER_C);
    *blame = k_model;
    if (hb_tf_mp_check(c, blame, err) != HB_OK) return HB_ERR_INPUT; /* tp: as prefill/decode's */
    *blame = k_q;
    if (c->quant == HB_QUANT_BLOCK)
        return hb_errf(err, HB_ERR_INPUT, "serve: fp8-block weights are not supported yet (accepted: f32, bf16, f16, fp8)");
    *blame = k_len;
    if (c->isl > m->max_seq - c->osl)
        return hb_errf(err, HB_ERR_INPUT, "isl %lld + osl %lld exceeds max_seq %lld of model '%s' (accepted: isl + osl <= %lld)",
                       (long long)c->isl, (long long)c->osl, (long long)m->max_seq, m->name, (long long)m->max_seq);
    *blame = k_ratio;
    if (!(c->range_ratio > 0 && c->range_ratio <= 1))
        return hb_errf(err, HB_ERR_INPUT, "range_ratio %g is outside (0, 1] (input lengths are uniform in "
                       "[range_ratio x isl, isl])", c->range_ratio);
    *blame = k_req;
    if (c->arrival_rate == 0 && c->requests > 0 && c->requests < c->concurrency)
        return hb_errf(err, HB_ERR_INPUT, "requests %lld is less than concurrency %lld (accepted: requests >= "
                       "concurrency, or 0 for 10 x concurrency)", (long long)c->requests, (long long)c->concurrency);
    *blame = k_kv;
    if (c->kv_blocks > 0 && c->kv_blocks < blocks_per_request(c))
        return hb_errf(err, HB_ERR_INPUT, "kv_blocks %lld of %lld tokens cannot hold one request of isl + osl = %lld "
                       "tokens (accepted: kv_blocks >= %lld, or 0 for auto)", (long long)c->kv_blocks,
                       (long long)c->kv_block_size, (long long)(c->isl + c->osl), (long long)blocks_per_request(c));
    *blame = k_mbt;
    if (c->max_batch_tokens > (int64_t)1 << 24)
        return hb_errf(err, HB_ERR_INPUT, "max_batch_tokens %lld is too large (accepted: 1 to 16777216)",
                       (long long)c->max_batch_tokens);
    *blame = k_slo;
    if (c->arrival_rate == HB_SERVE_RATE_SEARCH && !(c->slo_ttft_s > 0 || c->slo_tpot_s > 0)) {
        static const char *const k_arr[] = {"arrival", NULL};
        *blame = k_arr;
        return hb_errf(err, HB_ERR_INPUT, "arrival: search needs an SLO to search against (slo_ttft_s, slo_tpot_s)");
    }
    if ((c->slo_ttft_s > 0 || c->slo_tpot_s > 0) && c->arrival_rate == 0)
        return hb_errf(err, HB_ERR_INPUT, "an SLO (slo_ttft_s, slo_tpot_s) needs Poisson arrivals (arrival: poisson:R); "
                       "a closed loop has no offered rate to judge");
    if (c->prompt_tokens[0]) { /* request r's ids: isl of them from r isl on (its input length's first ones) */
        static const char *const k_pt[] = {"prompt_tokens", "requests", "isl", NULL};
        *blame = k_pt;
        return hb_tokens_read(c->prompt_tokens, hb_case_serve_requests(c) * c->isl, m->vocab, NULL, NULL, err);
    }
    return HB_OK;
}

static const char *const serve_keys[] = {"model", "layers", "dense_twin", "routing", "dtype", "kv_dtype", "isl", "osl",
                                         "range_ratio", "requests", "concurrency", "arrival", "max_batch_tokens",
                                         "max_seqs", "kv_blocks", "kv_block_size", "slo_ttft_s", "slo_tpot_s", "weights",
                                         "prompt_tokens", "tp", NULL};

const hb_workload_desc hb_wl_serve = {
    .name = "serve",
    .kind = HB_WL_SERVE,
    .plan_keys = serve_keys,
    .about = "a request stream, continuous batching (isl, osl, concurrency | arrival)",
    .headline = HB_HEADLINE_TOKENS_OUT,
    .latency = 0,
    .label = serve_label,
    .cost = serve_cost,
    .check = serve_check,
    .setup = serve_setup,
};
