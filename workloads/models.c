/* models.c - model presets with exact public shapes, validation and parameter counts. */
#include "model.h"

#include <stdio.h>
#include <string.h>

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
    {.name = "llama3-70b", .dim = 8192, .n_layers = 80, .n_heads = 64, .n_kv_heads = 8,
     .ffn_dim = 28672, .vocab = 128256, .max_seq = 8192, .norm = HB_NORM_RMSNORM,
     .act = HB_ACT_SWIGLU, .pos = HB_POS_ROPE, .tied = 0, .bias = 0, .rope_theta = 500000.0f,
     .norm_eps = 1e-5f},
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
    if (m->dim % m->n_heads)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': dim %lld is not a multiple of heads %lld",
                       m->name, (long long)m->dim, (long long)m->n_heads);
    if (m->n_heads % m->n_kv_heads)
        return hb_errf(err, HB_ERR_INPUT, "model '%s': heads %lld is not a multiple of kv_heads %lld",
                       m->name, (long long)m->n_heads, (long long)m->n_kv_heads);
    if (m->pos == HB_POS_ROPE && (hb_model_head_dim(m) % 2))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': rope needs an even head dimension (dim/heads = %lld)",
                       m->name, (long long)hb_model_head_dim(m));
    if (m->pos == HB_POS_ROPE && !(m->rope_theta > 0))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'rope_theta' must be positive", m->name);
    if (!(m->norm_eps > 0))
        return hb_errf(err, HB_ERR_INPUT, "model '%s': field 'norm_eps' must be positive", m->name);
    return HB_OK;
}

/* Per layer: attention qkv (C x (Hq+2Hkv)D) + out proj (HqD x C), MLP, two norms. */
static int64_t layer_params(const hb_model *m) {
    int64_t C = m->dim, D = hb_model_head_dim(m), F = m->ffn_dim;
    int64_t qkv = C * (m->n_heads + 2 * m->n_kv_heads) * D;
    int64_t proj = m->n_heads * D * C;
    int64_t mlp = (m->act == HB_ACT_SWIGLU ? 3 : 2) * C * F;
    int64_t norms = (m->norm == HB_NORM_LAYERNORM ? 2 : 1) * 2 * C;
    int64_t bias = 0;
    if (m->bias)
        bias = (m->n_heads + 2 * m->n_kv_heads) * D + C +
               (m->act == HB_ACT_SWIGLU ? 2 * F : F) + C;
    return qkv + proj + mlp + norms + bias;
}

int64_t hb_model_n_matmul_params(const hb_model *m) {
    int64_t final_norm = (m->norm == HB_NORM_LAYERNORM ? 2 : 1) * m->dim;
    return m->n_layers * layer_params(m) + final_norm + m->vocab * m->dim;
}

int64_t hb_model_n_params(const hb_model *m) {
    int64_t n = hb_model_n_matmul_params(m);
    if (!m->tied) n += m->vocab * m->dim;  /* separate input embedding */
    if (m->pos == HB_POS_LEARNED) n += m->max_seq * m->dim;
    return n;
}

const char *hb_norm_name(hb_norm n) { return n == HB_NORM_LAYERNORM ? "layernorm" : "rmsnorm"; }
const char *hb_act_name(hb_act a) { return a == HB_ACT_GELU ? "gelu" : "swiglu"; }
const char *hb_pos_name(hb_pos p) { return p == HB_POS_LEARNED ? "learned" : "rope"; }

void hb_model_diff(const hb_model *a, const hb_model *b, char *buf, int len) {
    const struct { const char *field; int64_t x, y; } f[] = {
        {"dim", a->dim, b->dim},           {"layers", a->n_layers_full, b->n_layers_full},
        {"heads", a->n_heads, b->n_heads}, {"kv_heads", a->n_kv_heads, b->n_kv_heads},
        {"ffn_dim", a->ffn_dim, b->ffn_dim}, {"vocab", a->vocab, b->vocab},
        {"max_seq", a->max_seq, b->max_seq}, {"tied_embeddings", a->tied, b->tied},
        {"bias", a->bias, b->bias},
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
    else if (a->norm_eps != b->norm_eps)
        snprintf(buf, (size_t)len, "norm_eps %g vs %g", (double)a->norm_eps, (double)b->norm_eps);
}
