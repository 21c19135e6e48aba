/* model.h - decoder-only transformer shapes: presets with exact public architectures and
 * fully custom models from a plan. */
#ifndef HB_MODEL_H
#define HB_MODEL_H

#include <stdint.h>

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
} hb_model;

/* The most layers a model may have (real models have under 200): the tensor table holds ~14
 * entries per layer and is built at plan time for every case. */
#define HB_MODEL_MAX_LAYERS 4096

static inline int64_t hb_model_head_dim(const hb_model *m) { return m->dim / m->n_heads; }

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
