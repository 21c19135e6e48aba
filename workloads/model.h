/* model.h - decoder-only transformer shapes: presets with exact public architectures and
 * fully custom models from a plan. */
#ifndef HB_MODEL_H
#define HB_MODEL_H

#include <stdint.h>

#include "../backends/ops.h" // defines: hb_router_kind
#include "../harness/status.h"

typedef enum hb_norm { HB_NORM_RMSNORM = 0, HB_NORM_LAYERNORM = 1 } hb_norm;
typedef enum hb_act { HB_ACT_SWIGLU = 0, HB_ACT_GELU = 1 } hb_act;
typedef enum hb_pos { HB_POS_ROPE = 0, HB_POS_LEARNED = 1 } hb_pos;

typedef struct hb_model {
    char name[64];
    int64_t dim;          /* C: model width */
    int64_t n_layers;     /* L (after any `layers` override) */
    int64_t n_layers_full;/* L of the full model (for labelling truncated runs) */
    int64_t n_heads;      /* Hq */
    int64_t n_kv_heads;   /* Hkv (grouped-query attention when < Hq) */
    int64_t ffn_dim;      /* F: hidden width of the MLP */
    int64_t vocab;        /* V */
    int64_t max_seq;      /* longest sequence (size of the learned position table) */
    hb_norm norm;
    hb_act act;
    hb_pos pos;
    int tied;             /* lm head shares the embedding matrix */
    int bias;             /* linear layers carry biases (GPT-2) */
    float rope_theta;
    float norm_eps;
    int64_t head_dim;     /* D when it is not dim / heads (Qwen3); 0 = dim / heads */
    int qkv_bias;         /* q/k/v projections carry biases, nothing else does (Qwen2) */
    int qk_norm;          /* per-head RMSNorm of q and k (D weights each) before RoPE (Qwen3) */
    hb_rope_scaling rope_scaling; /* Llama 3.1's or YaRN (factor 0: none; ops.h) */
    float q_scale;        /* DeepSeek's YaRN softmax factor mscale(factor, mscale_all_dim)^2, folded
                             into the query weights when a checkpoint loads (0: none) */
    /* Mixture-of-Experts FFN (n_experts = 0: every layer dense). Layers 0 .. first_k_dense-1
     * are dense with ffn_dim; the others route each token to top_k of n_experts SwiGLU experts
     * of width moe_ffn_dim, plus n_shared shared experts of that width (one dense SwiGLU of
     * n_shared x moe_ffn_dim, as DeepSeek implements them). */
    int64_t n_experts, top_k, n_shared, moe_ffn_dim, first_k_dense;
    hb_router_kind router;
    int router_bias;      /* DeepSeek-V3's score-correction bias (E) */
    int64_t n_group, topk_group; /* group-limited routing; n_group <= 1: none */
    int norm_topk;        /* renormalise the top-k weights */
    float routed_scale;   /* routed_scaling_factor (1 when not given) */
    /* Multi-head latent attention (DeepSeek-V2/V3) when kv_lora_rank > 0: queries through a
     * q_lora_rank bottleneck (0: one matrix), keys and values from a kv_lora_rank latent plus
     * a shared qk_rope_dim key part; heads of qk_nope_dim + qk_rope_dim (q, k) and v_head_dim
     * (v). kv_heads and head_dim are then unused. */
    int64_t q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
    /* dense twin (hb_model_dense_twin): the MoE layers replaced by one dense SwiGLU of the
     * total (1) or active (2) expert width; the MoE fields are kept for labels and counts */
    int dense_twin;
} hb_model;

#define HB_TWIN_NONE 0
#define HB_TWIN_TOTAL 1
#define HB_TWIN_ACTIVE 2
static inline int hb_model_is_mla(const hb_model *m) { return m->kv_lora_rank > 0; }
static inline int hb_model_is_moe(const hb_model *m) { return m->n_experts > 0 && !m->dense_twin; }
/* Whether layer l has a MoE FFN (a dense twin has none). */
static inline int hb_model_layer_moe(const hb_model *m, int64_t l) { return hb_model_is_moe(m) && l >= m->first_k_dense; }
/* FFN width of layer l's dense FFN (a dense twin's MoE layers: the twin's width). */
int64_t hb_model_layer_ffn(const hb_model *m, int64_t l);
/* The dense twin of a MoE model: HB_ERR_INPUT for a dense model or an unknown kind. */
hb_status hb_model_dense_twin(const hb_model *m, int kind, hb_model *out, hb_err *err);
const char *hb_twin_name(int kind); /* "none", "total", "active" */
/* The name results show: the model's, or for a dense twin "<name>-dense" (total: the equal-
 * total-parameters model press-2025.yaml calls e.g. mixtral-8x7b-dense) or
 * "<name>-dense-active". */
const char *hb_model_display_name(const hb_model *m, char *buf, int len);
const char *hb_router_name(hb_router_kind k); /* "softmax", "sigmoid" */
/* Parameters a token uses: the total less the routed experts it does not visit. */
int64_t hb_model_n_active_params(const hb_model *m);

/* The most layers a model may have (real models have under 200): the tensor table holds ~14
 * entries per layer and is built at plan time for every case. */
#define HB_MODEL_MAX_LAYERS 4096

static inline int64_t hb_model_head_dim(const hb_model *m) {
    return m->head_dim > 0 ? m->head_dim : m->n_heads > 0 ? m->dim / m->n_heads : 0;
}

/* Presets: tiny, gpt2-124m, gpt2-1.5b, llama3-8b, llama3-70b. */
int hb_model_presets(const hb_model **list);
/* Copies the preset `name` into out; HB_ERR_INPUT if unknown (message lists the presets). */
hb_status hb_model_find(const char *name, hb_model *out, hb_err *err);
/* Checks positivity, layers <= HB_MODEL_MAX_LAYERS and divisibility (dim % heads,
 * heads % kv_heads, even head_dim for rope). */
hb_status hb_model_validate(const hb_model *m, hb_err *err);
/* Parameter count (exact, includes embeddings; tied head counted once). */
int64_t hb_model_n_params(const hb_model *m);
/* Parameters in the transformer blocks + final norm + lm head (what a decode step reads),
 * i.e. all parameters except embedding-table rows not touched. */
int64_t hb_model_n_matmul_params(const hb_model *m);
/* The first architecture field in which a and b differ, as "dim 4096 vs 2048" ("" if none):
 * shapes, norm, activation, positions, tied embeddings, biases, rope_theta, norm_eps. */
void hb_model_diff(const hb_model *a, const hb_model *b, char *buf, int len);
const char *hb_norm_name(hb_norm n);
const char *hb_act_name(hb_act a);
const char *hb_pos_name(hb_pos p);

#endif
