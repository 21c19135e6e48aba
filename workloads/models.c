/* models.c - model presets with exact public shapes, validation and parameter counts. */
#include "model.h"

#include <stdio.h>
#include <string.h>

/* MoE sources (Hugging Face config.json of each): mistralai/Mixtral-8x7B-v0.1 (hidden 4096, 32
 * layers, 32 heads / 8 kv, intermediate 14336, 8 experts top-2, vocab 32000, rope_theta 1e6,
 * 32768 positions); Qwen/Qwen3-30B-A3B (hidden 2048, 48 layers, 32 heads / 4 kv of head_dim
 * 128, 128 experts top-8 of moe_intermediate 768, norm_topk_prob, vocab 151936, rope_theta 1e6,
 * 40960 positions, per-head q/k RMSNorms of 128 + 128 weights a layer);
 * deepseek-ai/DeepSeek-V2-Lite (hidden 2048, 27 layers, 16 heads, MLA without q_lora, kv_lora
 * 512, nope/rope/v 128/64/128, first layer dense of 10944, then 64 experts top-6 of 1408 + 2
 * shared, softmax, unnormalised, vocab 102400); deepseek-ai/DeepSeek-V3 (hidden 7168, 61
 * layers, 128 heads, q_lora 1536, kv_lora 512, first 3 layers dense of 18432, then 256 experts
 * top-8 of 2048 + 1 shared, sigmoid with e_score_correction_bias, 8 groups / 4 kept, normalised
 * x 2.5, vocab 129280; the MTP module is not counted). Not modelled: YaRN's rope scaling and
 * its softmax mscale (DeepSeek). DeepSeek's interleaved rope is rotate-half here: a checkpoint's
 * rope rows are permuted at load (checkpoint.c), which computes the same function. `tiny-moe` and `tiny-mla` are ours: small enough for the double-precision
 * reference in the tests, with every feature (shared experts, a first dense layer; tiny-mla
 * DeepSeek-V3-shaped routing and MLA with a q_lora bottleneck). */
/* Sources: GPT-2 (Radford et al. 2019, Hugging Face gpt2 / gpt2-xl config.json); Llama 3
 * (Meta, Hugging Face meta-llama/Meta-Llama-3-8B and -70B config.json). `tiny` is ours, with
 * grouped-query attention so the tests exercise it. */
static const hb_model presets[] = {
    {.name = "tiny", .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 160,
     .vocab = 256, .max_seq = 256, .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU,
     .pos = HB_POS_ROPE, .tied = 0, .bias = 0, .rope_theta = 10000.0f, .norm_eps = 1e-5f},
    {.name = "gpt2-124m", .dim = 768, .n_layers = 12, .n_heads = 12, .n_kv_heads = 12,
     .ffn_dim = 3072, .vocab = 50257, .max_seq = 1024, .norm = HB_NORM_LAYERNORM,
     .act = HB_ACT_GELU, .pos = HB_POS_LEARNED, .tied = 1, .bias = 1, .rope_theta = 0.0f,
     .norm_eps = 1e-5f},
    {.name = "gpt2-1.5b", .dim = 1600, .n_layers = 48, .n_heads = 25, .n_kv_heads = 25,
     .ffn_dim = 6400, .vocab = 50257, .max_seq = 1024, .norm = HB_NORM_LAYERNORM,
     .act = HB_ACT_GELU, .pos = HB_POS_LEARNED, .tied = 1, .bias = 1, .rope_theta = 0.0f,
     .norm_eps = 1e-5f},
    {.name = "llama3-8b", .dim = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8,
     .ffn_dim = 14336, .vocab = 128256, .max_seq = 8192, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .tied = 0, .bias = 0, .rope_theta = 500000.0f,
     .norm_eps = 1e-5f},
    /* meta-llama/Llama-3.1-8B: Llama 3's shapes, 131072 positions, rope scaling factor 8 (low
     * 1, high 4, original 8192) */
    {.name = "llama3.1-8b", .dim = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8,
     .ffn_dim = 14336, .vocab = 128256, .max_seq = 131072, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .tied = 0, .bias = 0, .rope_theta = 500000.0f,
     .norm_eps = 1e-5f, .rope_scaling = {.factor = 8.0f, .low_freq = 1.0f, .high_freq = 4.0f, .orig_max = 8192}},
    {.name = "llama3-70b", .dim = 8192, .n_layers = 80, .n_heads = 64, .n_kv_heads = 8,
     .ffn_dim = 28672, .vocab = 128256, .max_seq = 8192, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .tied = 0, .bias = 0, .rope_theta = 500000.0f,
     .norm_eps = 1e-5f},
    {.name = "tiny-moe", .dim = 64, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 128,
     .vocab = 256, .max_seq = 256, .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU,
     .pos = HB_POS_ROPE, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .n_experts = 8, .top_k = 2,
     .n_shared = 1, .moe_ffn_dim = 32, .first_k_dense = 1, .router = HB_ROUTER_SOFTMAX,
     .norm_topk = 1, .routed_scale = 1.0f},
    {.name = "mixtral-8x7b", .dim = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8,
     .ffn_dim = 14336, .vocab = 32000, .max_seq = 32768, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .rope_theta = 1000000.0f, .norm_eps = 1e-5f,
     .n_experts = 8, .top_k = 2, .moe_ffn_dim = 14336, .router = HB_ROUTER_SOFTMAX, .norm_topk = 1,
     .routed_scale = 1.0f},
    {.name = "tiny-mla", .dim = 64, .n_layers = 3, .n_heads = 4, .n_kv_heads = 4, .ffn_dim = 128,
     .vocab = 256, .max_seq = 256, .norm = HB_NORM_RMSNORM, .act = HB_ACT_SWIGLU,
     .pos = HB_POS_ROPE, .rope_theta = 10000.0f, .norm_eps = 1e-6f, .q_lora_rank = 24,
     .kv_lora_rank = 32, .qk_nope_dim = 16, .qk_rope_dim = 8, .v_head_dim = 16, .n_experts = 8,
     .top_k = 2, .n_shared = 1, .moe_ffn_dim = 32, .first_k_dense = 1, .router = HB_ROUTER_SIGMOID,
     .router_bias = 1, .n_group = 4, .topk_group = 2, .norm_topk = 1, .routed_scale = 2.5f},
    {.name = "deepseek-v2-lite", .dim = 2048, .n_layers = 27, .n_heads = 16, .n_kv_heads = 16,
     .ffn_dim = 10944, .vocab = 102400, .max_seq = 163840, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
     .kv_lora_rank = 512, .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128,
     .n_experts = 64, .top_k = 6, .n_shared = 2, .moe_ffn_dim = 1408, .first_k_dense = 1,
     .router = HB_ROUTER_SOFTMAX, .norm_topk = 0, .routed_scale = 1.0f},
    {.name = "deepseek-v3", .dim = 7168, .n_layers = 61, .n_heads = 128, .n_kv_heads = 128,
     .ffn_dim = 18432, .vocab = 129280, .max_seq = 163840, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
     .q_lora_rank = 1536, .kv_lora_rank = 512, .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128,
     .n_experts = 256, .top_k = 8, .n_shared = 1, .moe_ffn_dim = 2048, .first_k_dense = 3,
     .router = HB_ROUTER_SIGMOID, .router_bias = 1, .n_group = 8, .topk_group = 4, .norm_topk = 1,
     .routed_scale = 2.5f},
    {.name = "qwen3-30b-a3b", .dim = 2048, .n_layers = 48, .n_heads = 32, .n_kv_heads = 4,
     .head_dim = 128, .ffn_dim = 6144, .vocab = 151936, .max_seq = 40960, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .rope_theta = 1000000.0f, .norm_eps = 1e-6f,
     .n_experts = 128, .top_k = 8, .moe_ffn_dim = 768, .router = HB_ROUTER_SOFTMAX, .norm_topk = 1,
     .routed_scale = 1.0f, .qk_norm = 1},
};

int hb_model_presets(const hb_model **list) {
    *list = presets;
    return HB_ARRAY_LEN(presets);
}

hb_status hb_model_find(const char *name, hb_model *out, hb_err *err) {
    char names[256] = "";
    for (int i = 0; i < HB_ARRAY_LEN(presets); i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i];
            out->n_layers_full = out->n_layers;
            return HB_OK;
        }
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, presets[i].name, sizeof names - strlen(names) - 1);
    }
    return hb_errf(err, HB_ERR_INPUT, "unknown model '%s' (presets: %s; or define it under 'models:' in a plan)",
                   name, names);
}

#define HB_TRY_QUIET_(expr)                \
    do {                                   \
        hb_status q_ = (expr);             \
        if (q_ != HB_OK) return q_;        \
    } while (0)

/* The MoE fields of a model with experts; the message names the field. */
static hb_status moe_validate(const hb_model *m, hb_err *err) {
    if (m->n_experts < 0 || m->n_experts > 65536)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'experts' is %lld (accepted: 0 to 65536)", m->name,
                       (long long)m->n_experts);
    if (m->top_k < 1 || m->top_k > m->n_experts)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'top_k' is %lld (accepted: 1 to experts = %lld)",
                       m->name, (long long)m->top_k, (long long)m->n_experts);
    if (m->moe_ffn_dim < 1)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'moe_ffn_dim' must be a positive integer", m->name);
    if (m->n_shared < 0 || m->first_k_dense < 0)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': fields 'shared_experts' and 'first_k_dense' must be >= 0",
                       m->name);
    if (m->act != HB_ACT_SWIGLU)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'activation' must be swiglu for a MoE model", m->name);
    if (m->n_group > 1) {
        if (m->n_group > 256 || m->n_experts % m->n_group)
            return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'n_group' %lld does not divide experts %lld "
                           "(accepted: a divisor of experts, at most 256)", m->name, (long long)m->n_group,
                           (long long)m->n_experts);
        if (m->topk_group < 1 || m->topk_group > m->n_group)
            return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'topk_group' is %lld (accepted: 1 to n_group = %lld)",
                           m->name, (long long)m->topk_group, (long long)m->n_group);
        if (m->top_k > m->topk_group * (m->n_experts / m->n_group))
            return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'top_k' %lld exceeds the %lld experts of "
                           "topk_group groups", m->name, (long long)m->top_k,
                           (long long)(m->topk_group * (m->n_experts / m->n_group)));
    } else if (m->n_group < 0 || m->topk_group > 1) {
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'topk_group' is %lld without n_group > 1", m->name,
                       (long long)m->topk_group);
    }
    if (!(m->routed_scale > 0))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'routed_scaling_factor' must be positive", m->name);
    if (m->dense_twin < 0 || m->dense_twin > HB_TWIN_ACTIVE)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': unknown dense twin %d", m->name, m->dense_twin);
    return HB_OK;
}

/* MLA fields; learned positions have no rope part to carry. */
static hb_status mla_validate(const hb_model *m, hb_err *err) {
    if (m->kv_lora_rank < 1)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'q_lora_rank' needs MLA: set 'kv_lora_rank' > 0", m->name);
    if (m->pos != HB_POS_ROPE)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'kv_lora_rank' (MLA) needs positions: rope, not %s",
                       m->name, hb_pos_name(m->pos));
    const struct { const char *f; int64_t v; } d[] = {
        {"kv_lora_rank", m->kv_lora_rank}, {"qk_nope_dim", m->qk_nope_dim}, {"qk_rope_dim", m->qk_rope_dim},
        {"v_head_dim", m->v_head_dim}};
    for (int i = 0; i < HB_ARRAY_LEN(d); i++)
        if (d[i].v < 1 || d[i].v > 65536)
            return hb_errf(err, HB_ERR_INPUT, "model '%s': field '%s' is %lld (accepted: 1 to 65536 with MLA)",
                           m->name, d[i].f, (long long)d[i].v);
    if (m->q_lora_rank < 0 || m->q_lora_rank > 65536)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'q_lora_rank' is %lld (accepted: 0 to 65536)", m->name,
                       (long long)m->q_lora_rank);
    if (m->qk_rope_dim % 2)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'qk_rope_dim' must be even (rope rotates pairs)", m->name);
    return HB_OK;
}

hb_status hb_model_validate(const hb_model *m, hb_err *err) {
    const struct { const char *field; int64_t v; } pos[] = {
        {"dim", m->dim}, {"layers", m->n_layers}, {"heads", m->n_heads},
        {"kv_heads", m->n_kv_heads}, {"ffn_dim", m->ffn_dim}, {"vocab", m->vocab},
        {"max_seq", m->max_seq},
    };
    for (int i = 0; i < HB_ARRAY_LEN(pos); i++)
        if (pos[i].v <= 0)
            return hb_errf(err, HB_ERR_INPUT, "model '%s': field '%s' must be a positive integer (got %lld)",
                           m->name, pos[i].field, (long long)pos[i].v);
    if (m->n_layers > HB_MODEL_MAX_LAYERS)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'layers' is %lld (accepted: 1 to %d)", m->name,
                       (long long)m->n_layers, HB_MODEL_MAX_LAYERS);
    if (m->head_dim < 0)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'head_dim' must be >= 0 (0: dim / heads)", m->name);
    if (m->n_experts) HB_TRY_QUIET_(moe_validate(m, err));
    if (m->kv_lora_rank || m->q_lora_rank) HB_TRY_QUIET_(mla_validate(m, err));
    const int gqa = !hb_model_is_mla(m); /* MLA has its own head shapes (kv_heads, head_dim unused) */
    if (gqa && !m->head_dim && m->dim % m->n_heads)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': dim %lld is not a multiple of heads %lld",
                       m->name, (long long)m->dim, (long long)m->n_heads);
    if (gqa && m->n_heads % m->n_kv_heads)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': heads %lld is not a multiple of kv_heads %lld",
                       m->name, (long long)m->n_heads, (long long)m->n_kv_heads);
    if (gqa && m->pos == HB_POS_ROPE && (hb_model_head_dim(m) % 2))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': rope needs an even head dimension (dim/heads = %lld)",
                       m->name, (long long)hb_model_head_dim(m));
    if (m->pos == HB_POS_ROPE && !(m->rope_theta > 0))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'rope_theta' must be positive", m->name);
    if (!(m->norm_eps > 0))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'norm_eps' must be positive", m->name);
    return HB_OK;
}

/* Attention of one layer: qkv (C x (Hq+2Hkv)D) + out proj (HqD x C), their biases; MLA: the
 * query path (one matrix, or down, norm, up), the KV down projection and its norm, the KV up
 * projection, the output projection. */
static int64_t attn_params(const hb_model *m) {
    if (hb_model_is_mla(m)) {
        const int64_t C = m->dim, H = m->n_heads, dq = H * (m->qk_nope_dim + m->qk_rope_dim);
        int64_t p = m->q_lora_rank ? C * m->q_lora_rank + m->q_lora_rank + m->q_lora_rank * dq : C * dq;
        p += C * (m->kv_lora_rank + m->qk_rope_dim) + m->kv_lora_rank;
        p += m->kv_lora_rank * H * (m->qk_nope_dim + m->v_head_dim) + H * m->v_head_dim * C;
        return p;
    }
    int64_t C = m->dim, D = hb_model_head_dim(m);
    int64_t p = C * (m->n_heads + 2 * m->n_kv_heads) * D + m->n_heads * D * C;
    if (m->bias) p += (m->n_heads + 2 * m->n_kv_heads) * D + C;
    else if (m->qkv_bias) p += (m->n_heads + 2 * m->n_kv_heads) * D;
    if (m->qk_norm) p += 2 * D;
    return p;
}

/* A dense FFN of width F, with its biases. */
static int64_t ffn_params(const hb_model *m, int64_t F) {
    int64_t p = (m->act == HB_ACT_SWIGLU ? 3 : 2) * m->dim * F;
    if (m->bias) p += (m->act == HB_ACT_SWIGLU ? 2 * F : F) + m->dim;
    return p;
}

int64_t hb_model_layer_ffn(const hb_model *m, int64_t l) {
    if (!m->n_experts || l < m->first_k_dense) return m->ffn_dim;
    switch (m->dense_twin) {
    case HB_TWIN_TOTAL: return (m->n_experts + m->n_shared) * m->moe_ffn_dim;
    case HB_TWIN_ACTIVE: return (m->top_k + m->n_shared) * m->moe_ffn_dim;
    default: return m->n_shared * m->moe_ffn_dim; /* the shared experts' */
    }
}

/* Layer l: its attention, norms and FFN; a MoE layer's routed experts counted `experts` times
 * (all of them for the total, top_k for the active count). */
static int64_t layer_params(const hb_model *m, int64_t l, int active) {
    int64_t norms = (m->norm == HB_NORM_LAYERNORM ? 2 : 1) * 2 * m->dim;
    int64_t p = attn_params(m) + norms;
    if (!hb_model_layer_moe(m, l)) return p + ffn_params(m, hb_model_layer_ffn(m, l));
    const int64_t expert = 3 * m->dim * m->moe_ffn_dim;
    p += m->n_experts * m->dim + (m->router_bias ? m->n_experts : 0);       /* router */
    p += m->n_shared ? ffn_params(m, m->n_shared * m->moe_ffn_dim) : 0;     /* shared */
    return p + (active ? m->top_k : m->n_experts) * expert;
}

static int64_t matmul_params(const hb_model *m, int active) {
    int64_t n = (m->norm == HB_NORM_LAYERNORM ? 2 : 1) * m->dim + m->vocab * m->dim; /* final norm, head */
    for (int64_t l = 0; l < m->n_layers; l++) n += layer_params(m, l, active);
    return n;
}

int64_t hb_model_n_matmul_params(const hb_model *m) { return matmul_params(m, 0); }

static int64_t embedding_params(const hb_model *m) {
    int64_t n = m->tied ? 0 : m->vocab * m->dim; /* separate input embedding */
    if (m->pos == HB_POS_LEARNED) n += m->max_seq * m->dim;
    return n;
}

int64_t hb_model_n_params(const hb_model *m) { return matmul_params(m, 0) + embedding_params(m); }
int64_t hb_model_n_active_params(const hb_model *m) { return matmul_params(m, 1) + embedding_params(m); }

hb_status hb_model_dense_twin(const hb_model *m, int kind, hb_model *out, hb_err *err) {
    if (kind != HB_TWIN_TOTAL && kind != HB_TWIN_ACTIVE)
        return hb_errf(err, HB_ERR_INPUT, "unknown dense twin %d (accepted: total, active)", kind);
    if (m->n_experts <= 0 || m->dense_twin)
        return hb_errf(err, HB_ERR_INPUT, "model '%s' has no experts: a dense twin is for MoE models", m->name);
    *out = *m;
    out->dense_twin = kind;
    return HB_OK;
}

const char *hb_model_display_name(const hb_model *m, char *buf, int len) {
    snprintf(buf, (size_t)len, "%s%s", m->name,
             m->dense_twin == HB_TWIN_TOTAL ? "-dense" : m->dense_twin == HB_TWIN_ACTIVE ? "-dense-active" : "");
    return buf;
}

const char *hb_twin_name(int kind) { return kind == HB_TWIN_TOTAL ? "total" : kind == HB_TWIN_ACTIVE ? "active" : "none"; }
const char *hb_router_name(hb_router_kind k) { return k == HB_ROUTER_SIGMOID ? "sigmoid" : "softmax"; }

const char *hb_norm_name(hb_norm n) { return n == HB_NORM_LAYERNORM ? "layernorm" : "rmsnorm"; }
const char *hb_act_name(hb_act a) { return a == HB_ACT_GELU ? "gelu" : "swiglu"; }
const char *hb_pos_name(hb_pos p) { return p == HB_POS_LEARNED ? "learned" : "rope"; }

void hb_model_diff(const hb_model *a, const hb_model *b, char *buf, int len) {
    const struct { const char *field; int64_t x, y; } f[] = {
        {"dim", a->dim, b->dim},           {"layers", a->n_layers_full, b->n_layers_full},
        {"heads", a->n_heads, b->n_heads}, {"kv_heads", a->n_kv_heads, b->n_kv_heads},
        {"ffn_dim", a->ffn_dim, b->ffn_dim}, {"vocab", a->vocab, b->vocab},
        {"max_seq", a->max_seq, b->max_seq}, {"tied_embeddings", a->tied, b->tied},
        {"bias", a->bias, b->bias},        {"qkv_bias", a->qkv_bias, b->qkv_bias},
        {"qk_norm", a->qk_norm, b->qk_norm}, {"head_dim", hb_model_head_dim(a), hb_model_head_dim(b)},
        {"experts", a->n_experts, b->n_experts}, {"top_k", a->top_k, b->top_k},
        {"shared_experts", a->n_shared, b->n_shared}, {"moe_ffn_dim", a->moe_ffn_dim, b->moe_ffn_dim},
        {"first_k_dense", a->first_k_dense, b->first_k_dense}, {"n_group", a->n_group, b->n_group},
        {"topk_group", a->topk_group, b->topk_group}, {"router_bias", a->router_bias, b->router_bias},
        {"norm_topk", a->norm_topk, b->norm_topk}, {"q_lora_rank", a->q_lora_rank, b->q_lora_rank},
        {"kv_lora_rank", a->kv_lora_rank, b->kv_lora_rank}, {"qk_nope_dim", a->qk_nope_dim, b->qk_nope_dim},
        {"qk_rope_dim", a->qk_rope_dim, b->qk_rope_dim}, {"v_head_dim", a->v_head_dim, b->v_head_dim},
    };
    buf[0] = '\0';
    for (int i = 0; i < HB_ARRAY_LEN(f); i++)
        if (f[i].x != f[i].y) {
            snprintf(buf, (size_t)len, "%s %lld vs %lld", f[i].field, (long long)f[i].x, (long long)f[i].y);
            return;
        }
    if (a->norm != b->norm) snprintf(buf, (size_t)len, "norm %s vs %s", hb_norm_name(a->norm), hb_norm_name(b->norm));
    else if (a->act != b->act) snprintf(buf, (size_t)len, "activation %s vs %s", hb_act_name(a->act), hb_act_name(b->act));
    else if (a->pos != b->pos) snprintf(buf, (size_t)len, "positions %s vs %s", hb_pos_name(a->pos), hb_pos_name(b->pos));
    else if (a->pos == HB_POS_ROPE && a->rope_theta != b->rope_theta)
        snprintf(buf, (size_t)len, "rope_theta %g vs %g", (double)a->rope_theta, (double)b->rope_theta);
    else if (a->rope_scaling.factor != b->rope_scaling.factor || a->rope_scaling.orig_max != b->rope_scaling.orig_max ||
             a->rope_scaling.low_freq != b->rope_scaling.low_freq || a->rope_scaling.high_freq != b->rope_scaling.high_freq ||
             (a->rope_scaling.factor > 0 && a->rope_scaling.kind != b->rope_scaling.kind) || a->q_scale != b->q_scale)
        snprintf(buf, (size_t)len, "rope_scaling factor %g vs %g", (double)a->rope_scaling.factor, (double)b->rope_scaling.factor);
    else if (a->n_experts && a->router != b->router)
        snprintf(buf, (size_t)len, "router %s vs %s", hb_router_name(a->router), hb_router_name(b->router));
    else if (a->n_experts && a->routed_scale != b->routed_scale)
        snprintf(buf, (size_t)len, "routed_scaling_factor %g vs %g", (double)a->routed_scale, (double)b->routed_scale);
    else if (a->norm_eps != b->norm_eps)
        snprintf(buf, (size_t)len, "norm_eps %g vs %g", (double)a->norm_eps, (double)b->norm_eps);
}
