/* transformer.h - private to workloads/: a decoder model as a list of blocks over a tensor
 * table, shared by the cost model (cost.c) and the forward pass (transformer.c) so that the
 * memory estimate is exactly what setup allocates; and the costs the prefill/decode descriptors
 * point at.
 *
 * The tensor table lays out every arena: weights, activations and the KV cache today; the
 * training and MoE issues add gradients, optimizer state, saved activations and expert
 * tensors as further arenas and block kinds, not as new layouts. Each block has an attention
 * kind and an FFN kind (DeepSeek-V3 picks MLP or MoE per block); dense GQA is the first. */
#ifndef HB_TRANSFORMER_H
#define HB_TRANSFORMER_H

#include "workload.h"

typedef enum hb_arena {
    HB_ARENA_WEIGHTS = 0,
    HB_ARENA_ACT,
    HB_ARENA_KV,
    HB_ARENA_COUNT
} hb_arena;

typedef enum hb_attn_kind { HB_ATTN_GQA = 0, HB_ATTN_MLA = 1 } hb_attn_kind;
typedef enum hb_ffn_kind { HB_FFN_DENSE = 0, HB_FFN_MOE = 1 } hb_ffn_kind;

/* One tensor of the table: where it lives, what it is, how it is initialised. */
typedef struct hb_tf_tensor {
    const char *name;     /* "qkv_w", ... (static) */
    int layer;            /* block index, -1 for model-level tensors */
    hb_arena arena;
    int64_t off;          /* bytes into its arena (256-byte aligned) */
    int64_t scale_off;    /* bytes into its arena of its f32 scales; -1 if none */
    hb_dtype dt;
    int ndim;
    int64_t ne[4];
    hb_qkind q;           /* quantisation of fp8 tensors */
    int64_t bm, bk;       /* HB_QUANT_BLOCK */
    /* weights: fill_random(hb_rng_u64(seed, init_id), init_scale, init_offset) */
    uint64_t init_id;
    float init_scale, init_offset;
    int per_step;         /* a forward step reads all of it (counts in matrix_bytes) */
    /* tensor parallelism: which part of the whole (full_rows, full_cols) tensor a rank holds
     * (HB_SHARD_*); the whole tensor is generated and the rank's part copied, so that tp
     * ranks hold exactly the values of the tp = 1 model */
    int shard;
    int64_t full_rows, full_cols;
} hb_tf_tensor;

/* How a weight is split over tp ranks (rank r of tp):
 *   ROWS    rows r R .. r R + R - 1 (column-parallel output features; the vocab-parallel head)
 *   COLS    columns r K .. (row-parallel input features: proj, fc2)
 *   QKV     the rank's q heads, and the kv heads they use (replicated where tp > kv_heads)
 *   GATEUP  rows r F .. of the gate half and of the up half (fused SwiGLU fc)
 *   MLA_Q   an MLA query matrix (all heads' nope rows H dn, then their rope rows H dr): the
 *           rank's heads' rows of each part (MLA's wkv_b is ROWS: each head's dn + dv rows
 *           are adjacent; its output projection COLS; the latent projections replicated)
 * and the routed experts' stacks over ep ranks (rank e of ep: experts e El .. e El + El - 1 of
 * full_rows = E) and, within each expert, over tp ranks (rank r of tp: Fe = moe_ffn_dim / tp):
 *   EXP_UP   rows r Fe .. of the gate half and of the up half of each expert's (2 Fe tp, C)
 *   EXP_DOWN columns r Fe .. of each expert's (C, Fe tp) */
enum { HB_SHARD_NONE = 0, HB_SHARD_ROWS, HB_SHARD_COLS, HB_SHARD_QKV, HB_SHARD_GATEUP, HB_SHARD_EXP_UP, HB_SHARD_EXP_DOWN,
       HB_SHARD_MLA_Q };

/* Tensor ids (indices into the table) of one block; -1 = absent. */
typedef struct hb_tf_block {
    hb_attn_kind attn;
    hb_ffn_kind ffn;
    int ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
    int ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b; /* dense FFN; MoE: the shared experts (or -1) */
    int router_w, router_b, exp_up, exp_down;  /* MoE: router (E, C), bias (E), experts
                                                  (E, 2 Fe, C) and (E, C, Fe) */
    int64_t F;                                 /* width of fc/fc2 (0: none) */
    int moe_index;                             /* MoE: 0, 1, ... among the MoE blocks; -1 */
    int wq_a, q_norm, wkv_a, kv_norm, wkv_b;   /* MLA: q down (q_lora, C) and its norm (or -1:
                                                  qkv_w is the one q matrix), kv down
                                                  (dc + dr, C), its norm (dc), kv up
                                                  (H (dn + dv), dc); qkv_w is q up, proj_w the
                                                  output (C, H dv); k_cache the latent cache
                                                  (B, S, dc + dr), v_cache -1 */
    int qn_w, kn_w;                            /* per-head q and k RMSNorm weights (D) before
                                                  rope (Qwen3), or -1 */
    int k_cache, v_cache;
} hb_tf_block;

typedef struct hb_tf_layout {
    /* shapes */
    int64_t C, D, Hq, Hkv, F, V, L; /* tp > 1: Hq, Hkv, F (and block F) are this rank's */
    int64_t tp;          /* tensor-parallel ranks (1 alone) */
    int64_t Hq_full, Hkv_full;
    int64_t Vl;          /* rows of the lm head this rank computes: V / tp when tp divides V
                            (vocab parallel, logits all-gathered), else V (replicated head) */
    int logits_l;        /* activation (B, Vl) of the vocab-parallel head; -1 otherwise */
    int64_t d_qkv;       /* (Hq + 2 Hkv) D */
    int64_t d_ff;        /* 2F for swiglu (gate and up fused), F for gelu; F the widest
                            dense FFN of any block */
    int64_t E, K, Fe;    /* MoE: experts, active per token, expert width (0: dense model; tp > 1:
                            the rank's moe_ffn_dim / tp) */
    int64_t ep, El;      /* expert parallelism: ranks of the group (1 alone) and the experts
                            each holds (E / ep): the stacks exp_up/exp_down are (El, ., .) */
    int64_t R_ep;        /* ep > 1: the most rows a rank's experts can receive in one forward,
                            ep N min(top_k, El) (every token of the group routed to it) */
    int n_moe;           /* MoE blocks */
    int64_t B, T_max, S; /* batch, longest forward (prompt), KV cache length */
    /* dtypes */
    hb_dtype wdt;        /* the blocks' weight matrices */
    hb_qkind wq;         /* their quantisation (fp8: tensor or block) */
    int64_t qblock;      /* block edge of HB_QUANT_BLOCK */
    hb_dtype edt;        /* embedding table and lm head (bf16 in an fp8 model, as the FP8
                            checkpoints of Llama 3 and DeepSeek-V3 keep them) */
    hb_dtype kvt;        /* KV cache */
    /* the table */
    int n_tensors, cap;
    hb_tf_tensor *t;
    hb_tf_block *blocks; /* L */
    int wte, wpe, lm_w, lnf_w, lnf_b;                     /* model-level weights */
    int x, h, qkv, att, ff, ffa, logits, tokens, next;    /* activations */
    int hist; /* decode: the tokens at positions P .. P+G-1 of the first pass, G x B int32 (else -1) */
    int rlog, ids, rwt, rows, offs, xp, eup, eact, ey;    /* MoE activations (or -1) */
    int xr, xr2, ids_r, rows_r, offs_r, ones, ecnt;       /* ep > 1: received rows (R_ep, C) and
                                                             their permuted copy, their local
                                                             expert, rows and offsets (El + 1),
                                                             1.0 weights (R_ep), the counts
                                                             exchanged (2 E int32); else -1 */
    int mq, mcq, mlat, matt;                              /* MLA activations (or -1) */
    int64_t dn, dr, dv, dc, dql;                          /* MLA: head parts, kv and q lora ranks */
    int64_t arena_bytes[HB_ARENA_COUNT];
    int64_t weight_bytes, act_bytes, kv_bytes;            /* = arena_bytes[...] */
    int64_t matrix_bytes; /* bytes of weights (scales included) a forward step reads, the
                             routed experts excepted (the cost model adds those touched) */
    int64_t expert_bytes; /* bytes of one routed expert (both matrices, scales included) */
    char ovf[200];        /* set when a size overflowed int64_t: the product that did */
} hb_tf_layout;


/* Builds the table of case c (allocates; free with hb_tf_layout_free); decode: the KV cache
 * holds P + G positions (else P). */
hb_status hb_tf_layout_init(const hb_case *c, int decode, hb_tf_layout *lay, hb_err *err);
void hb_tf_layout_free(hb_tf_layout *lay);

/* Analytic cost of one prefill / decode iteration (cost.c), for the descriptors. */
hb_status hb_tf_prefill_cost(const hb_case *c, hb_cost *cost, hb_err *err);
hb_status hb_tf_decode_cost(const hb_case *c, hb_cost *cost, hb_err *err);
/* Expected distinct experts of one MoE layer touched by n tokens under the case's routing. */
double hb_tf_expected_experts(const hb_case *c, double n);

/* Qwen3's per-head RMSNorm of q and k inside the qkv rows (N rows of d_qkv), in place, before
 * rope; nothing when block b has none (qn_w < 0). Shared by the prefill/decode and serve
 * forwards. */
hb_status hb_tf_qk_norm(hb_backend *be, const hb_model *m, const hb_tf_layout *y, const hb_tf_block *b, float *qkv,
                        hb_tensor qn_w, hb_tensor kn_w, int64_t N);

/* Writes the weights case c generates (dtype f32, tp 1) as a Hugging Face checkpoint in dir
 * (hb_ckpt_write): a run with `weights: dir` then computes exactly what the generated run does.
 * Generated on backend be (the CPU: every backend generates the same values). */
hb_status hb_tf_export(hb_backend *be, const hb_case *c, const char *dir, hb_err *err);

/* Test hook: weight `name` of layer `layer` (-1: model level) of a prefill/decode workload as
 * stored on the device (bytes: its size in its dtype) and its scales (n_scales_cap: how many it
 * has, 0 when unquantised); HB_ERR_INPUT when the sizes differ. */
hb_status hb_tf_weight(const hb_workload *w, const char *name, int layer, void *dst, size_t bytes, float *scales,
                       int64_t n_scales_cap, hb_err *err);

/* The weights of table y from case c's checkpoint into arena[HB_ARENA_WEIGHTS] (the other
 * arenas may be NULL), as tp rank trank (0 alone) holds them: what prefill/decode's setup does,
 * for the serve workload. hb_tf_fill_weights: the generated weights likewise (a quantised
 * tensor's scales as fill_random computes them). */
hb_status hb_tf_load_weights(hb_backend *be, const hb_case *c, const hb_tf_layout *y, char *const arena[HB_ARENA_COUNT],
                             int64_t trank, hb_err *err);
hb_status hb_tf_fill_weights(hb_backend *be, const hb_case *c, const hb_tf_layout *y, char *const arena[HB_ARENA_COUNT],
                             int64_t trank);
/* prefill/decode's plan-time checks of tp and ep (exit 2 naming the key), for serve's tp */
hb_status hb_tf_mp_check(const hb_case *c, const char *const **blame, hb_err *err);

#endif
