/* plan.c - plan files (YAML, through libyaml's document API) and command-line keys, expanded
 * into cases.
 *
 * Every source becomes the same intermediate form: per key, a "pval" (the scalar items written
 * for it, each already checked and converted, with its line). An entry (one item of `cases:`,
 * or the command line alone) is its pvals in written order; `defaults:` adds the keys the entry
 * does not set, overrides replace or add keys, and the entry then expands into the cartesian
 * product of its lists, first key outermost. A combination whose key does not apply to the
 * combination's workload is kept only with that key's first item, so `workload: [gemm, stream]`
 * with `dtype: [f32, bf16]` gives gemm twice and stream once. Which keys a workload takes, its
 * plan-time check and its label and cost come from its descriptor (workloads/workload.h): the
 * key table below holds each key's type and default only, and every case leaves here resolved.
 *
 * All scratch memory of one call lives in a small arena (ctx) freed in one place, so error
 * paths cannot leak; only the cases and the canonical YAML go to the caller's hb_plan. */
#include "plan.h"

#include "../workloads/checkpoint.h" // defines: hb_ckpt_open, hb_ckpt_model, hb_ckpt_check

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "../backends/dtype.h"

#define MAX_CASES 100000
#define MAX_PLAN_BYTES ((size_t)64 << 20) /* 100000 canonical cases are ~25 MB */
/* every serve case's cost walks its requests at plan time: 100000 cases of a million requests
 * each would take hours to plan (and weeks to run) */
#define MAX_PLAN_REQUESTS 10000000
#define MAX_PLAN_DEPTH 16                 /* a plan nests 5 levels: root, cases, a case, a list, an item */
#define MAX_INT ((int64_t)1 << 62)
#define MAX_INT_TEXT "4611686018427387904"

/* ---- the keys ---- */

enum {
    K_WORKLOAD, K_MODEL, K_DTYPE, K_BATCH, K_PROMPT, K_GEN, K_SEQ, K_LAYERS, K_M, K_N, K_K,
    K_STREAM_N, K_STREAM_OP, K_SEED, K_TEMPERATURE, K_WARMUP, K_MIN_ITERS, K_MIN_SECONDS,
    K_MAX_ITERS, K_KV_DTYPE, K_QUANT_BLOCK, K_REPEAT, K_WEIGHTS, K_PROMPT_TOKENS,
    K_LR, K_BETA1, K_BETA2, K_EPS, K_WEIGHT_DECAY, K_GRAD_ACCUM, K_DATA, K_DP,
    K_DENSE_TWIN, K_ROUTING,
    /* model parallelism and the collective workload (issue 15) */
    K_TP, K_EP, K_COLLECTIVE, K_COLL_BYTES, K_IN_PLACE, K_COLL_RANKS,
    /* serve */
    K_ISL, K_OSL, K_RANGE_RATIO, K_REQUESTS, K_CONCURRENCY, K_ARRIVAL, K_MAX_BATCH_TOKENS, K_MAX_SEQS,
    K_KV_BLOCKS, K_KV_BLOCK_SIZE, K_SLO_TTFT_S, K_SLO_TPOT_S,
    /* train: activation recomputation */
    K_RECOMPUTE,
    N_KEYS
};

static const char *const key_names[N_KEYS] = {
    "workload", "model", "dtype", "batch", "prompt", "gen", "seq", "layers", "m", "n", "k",
    "stream_n", "stream_op", "seed", "temperature", "warmup", "min_iters", "min_seconds",
    "max_iters", "kv_dtype", "quant_block", "repeat", "weights", "prompt_tokens",
    "lr", "beta1", "beta2", "eps", "weight_decay", "grad_accum", "data", "dp",
    "dense_twin", "routing",
    "tp", "ep", "collective", "coll_bytes", "in_place", "coll_ranks",
    "isl", "osl", "range_ratio", "requests", "concurrency", "arrival", "max_batch_tokens", "max_seqs",
    "kv_blocks", "kv_block_size", "slo_ttft_s", "slo_tpot_s",
    "recompute",
};

typedef enum vtype {
    T_WORKLOAD,    /* hb_workload_kind in v.e */
    T_MODEL,       /* name in text, resolved per case */
    T_DTYPE,       /* a weight recipe in v.e: hb_dtype | hb_qkind << 8 (dtype_recipes) */
    T_KV_DTYPE,    /* hb_kvt in v.e */
    T_STREAM_OP,   /* hb_stream_op in v.e */
    T_DATA,        /* hb_train_data in v.e */
    T_POS_INT,     /* 1 .. 2^62 in v.i */
    T_NONNEG_INT,  /* 0 .. 2^62 in v.i */
    T_U64,         /* 0 .. 2^64-1 in v.u */
    T_NONNEG_REAL, /* finite, >= 0 in v.d */
    T_PATH,        /* a file or folder name in text (HB_PATH_LEN - 1 bytes at most, no controls) */
    T_TWIN,        /* HB_TWIN_* in v.e */
    T_ROUTING,     /* v.d: 0 model, -1 balanced, S > 0 zipf:S */
    T_COLL_OP,     /* hb_comm_op in v.e (not barrier) */
    T_ARRIVAL,     /* v.d: 0 closed loop, R > 0 poisson:R (requests/s), -1 search */
    T_RECOMPUTE,   /* hb_recompute in v.e */
} vtype;

/* Sets of workloads are bit masks (bit w: kind w). */
_Static_assert(HB_WL_COUNT <= 32, "workload masks are 32-bit");

#define RECIPE(dt, q) ((int)(dt) | (int)(q) << 8) /* T_DTYPE's value */

/* A converted value (which member: the key's vtype). */
typedef union value { int64_t i; uint64_t u; double d; int e; } value;

/* Value type, whether every workload takes the key (else: the workloads whose descriptor lists
 * it in plan_keys, workload.h; seq: none yet, reserved for training), and the default when a
 * case does not set it (model: "tiny"). */
static const struct { vtype type; int common; value def; } key_info[N_KEYS] = {
    [K_WORKLOAD] = {T_WORKLOAD, 1, {0}},       [K_MODEL] = {T_MODEL, 0, {0}},
    [K_DTYPE] = {T_DTYPE, 0, {.e = RECIPE(HB_F32, HB_QUANT_NONE)}},   [K_BATCH] = {T_POS_INT, 0, {.i = 1}},
    [K_PROMPT] = {T_POS_INT, 0, {.i = 128}},   [K_GEN] = {T_POS_INT, 0, {.i = 32}},
    [K_SEQ] = {T_POS_INT, 0, {.i = 64}},             [K_LAYERS] = {T_POS_INT, 0, {0}},
    [K_M] = {T_POS_INT, 0, {.i = 1024}},       [K_N] = {T_POS_INT, 0, {.i = 1024}},
    [K_K] = {T_POS_INT, 0, {.i = 1024}},       [K_STREAM_N] = {T_POS_INT, 0, {.i = 33554432}},
    [K_STREAM_OP] = {T_STREAM_OP, 0, {.e = HB_STREAM_TRIAD}},
    [K_SEED] = {T_U64, 1, {.u = 1234u}},
    [K_TEMPERATURE] = {T_NONNEG_REAL, 0, {.d = 0.0}},
    [K_WARMUP] = {T_NONNEG_INT, 1, {.i = 2}},  [K_MIN_ITERS] = {T_POS_INT, 1, {.i = 5}},
    [K_MIN_SECONDS] = {T_NONNEG_REAL, 1, {.d = 1.0}},
    [K_MAX_ITERS] = {T_POS_INT, 1, {.i = 100000}},
    [K_KV_DTYPE] = {T_KV_DTYPE, 0, {.e = HB_KV_AUTO}},
    [K_QUANT_BLOCK] = {T_POS_INT, 0, {.i = 128}},
    [K_REPEAT] = {T_POS_INT, 1, {.i = 1}},
    [K_WEIGHTS] = {T_PATH, 0, {0}},            [K_PROMPT_TOKENS] = {T_PATH, 0, {0}},
    /* train: llm.c's AdamW defaults; lr > 0 and betas < 1 are the workload's check */
    [K_LR] = {T_NONNEG_REAL, 0, {.d = 1e-4}},  [K_BETA1] = {T_NONNEG_REAL, 0, {.d = 0.9}},
    [K_BETA2] = {T_NONNEG_REAL, 0, {.d = 0.999}}, [K_EPS] = {T_NONNEG_REAL, 0, {.d = 1e-8}},
    [K_WEIGHT_DECAY] = {T_NONNEG_REAL, 0, {.d = 0.0}},
    [K_GRAD_ACCUM] = {T_POS_INT, 0, {.i = 1}},
    [K_DATA] = {T_DATA, 0, {.e = HB_DATA_SYNTHETIC}},
    [K_DP] = {T_POS_INT, 0, {.i = 1}},
    [K_DENSE_TWIN] = {T_TWIN, 0, {.e = HB_TWIN_NONE}},
    [K_ROUTING] = {T_ROUTING, 0, {.d = 0.0}},
    [K_RECOMPUTE] = {T_RECOMPUTE, 0, {.e = HB_RECOMPUTE_NONE}},
    [K_TP] = {T_POS_INT, 0, {.i = 1}},         [K_EP] = {T_POS_INT, 0, {.i = 1}},
    [K_COLLECTIVE] = {T_COLL_OP, 0, {.e = HB_COMM_ALL_REDUCE}},
    [K_COLL_BYTES] = {T_POS_INT, 0, {.i = 1048576}},
    [K_IN_PLACE] = {T_NONNEG_INT, 0, {.i = 0}},
    [K_COLL_RANKS] = {T_POS_INT, 0, {.i = 2}},
    /* serve: a closed loop of 10 x concurrency requests by default; range_ratio and the
     * SLOs are the workload's check */
    [K_ISL] = {T_POS_INT, 0, {.i = 128}},      [K_OSL] = {T_POS_INT, 0, {.i = 32}},
    [K_RANGE_RATIO] = {T_NONNEG_REAL, 0, {.d = 0.8}},
    [K_REQUESTS] = {T_NONNEG_INT, 0, {.i = 0}}, [K_CONCURRENCY] = {T_POS_INT, 0, {.i = 1}},
    [K_ARRIVAL] = {T_ARRIVAL, 0, {.d = 0.0}},
    [K_MAX_BATCH_TOKENS] = {T_POS_INT, 0, {.i = 2048}}, [K_MAX_SEQS] = {T_POS_INT, 0, {.i = 256}},
    [K_KV_BLOCKS] = {T_NONNEG_INT, 0, {.i = 0}}, [K_KV_BLOCK_SIZE] = {T_POS_INT, 0, {.i = 16}},
    [K_SLO_TTFT_S] = {T_NONNEG_REAL, 0, {.d = 0.0}}, [K_SLO_TPOT_S] = {T_NONNEG_REAL, 0, {.d = 0.0}},
};

/* `dtype` values: a storage type and, for fp8, its scales (workload.h, hb_case.quant). gemm
 * reads fp8 as scale 1. */
static const struct { const char *name; hb_dtype dt; hb_qkind q; } dtype_recipes[] = {
    {"f32", HB_F32, HB_QUANT_NONE},          {"bf16", HB_BF16, HB_QUANT_NONE},
    {"f16", HB_F16, HB_QUANT_NONE},          {"fp8", HB_FP8_E4M3, HB_QUANT_TENSOR},
    {"fp8-block", HB_FP8_E4M3, HB_QUANT_BLOCK}, {"e5m2", HB_FP8_E5M2, HB_QUANT_TENSOR},
};
static int parse_recipe(const char *t, int *e) {
    for (size_t i = 0; i < sizeof dtype_recipes / sizeof dtype_recipes[0]; i++)
        if (!strcmp(t, dtype_recipes[i].name)) {
            *e = RECIPE(dtype_recipes[i].dt, dtype_recipes[i].q);
            return 0;
        }
    hb_dtype d; /* the other spellings hb_dtype_parse knows (fp32, fp16, e4m3, ...) */
    if (hb_dtype_parse(t, &d) != 0) return -1;
    *e = RECIPE(d, hb_dtype_is_fp8(d) ? HB_QUANT_TENSOR : HB_QUANT_NONE);
    return 0;
}

/* Fields of a custom model under `models:`. */
enum {
    MF_DIM, MF_LAYERS, MF_HEADS, MF_KV_HEADS, MF_FFN_DIM, MF_VOCAB, MF_MAX_SEQ, MF_NORM,
    MF_ACTIVATION, MF_POSITIONS, MF_TIED, MF_BIAS, MF_ROPE_THETA, MF_NORM_EPS, MF_BASE,
    MF_HEAD_DIM, MF_EXPERTS, MF_TOP_K, MF_SHARED, MF_MOE_FFN, MF_FIRST_DENSE, MF_ROUTER,
    MF_ROUTER_BIAS, MF_N_GROUP, MF_TOPK_GROUP, MF_NORM_TOPK, MF_ROUTED_SCALE, MF_Q_LORA, MF_KV_LORA,
    MF_QK_NOPE, MF_QK_ROPE, MF_V_HEAD, N_MF
};
static const char *const mf_names[N_MF] = {
    "dim", "layers", "heads", "kv_heads", "ffn_dim", "vocab", "max_seq", "norm", "activation",
    "positions", "tied_embeddings", "bias", "rope_theta", "norm_eps", "base",
    "head_dim", "experts", "top_k", "shared_experts", "moe_ffn_dim", "first_k_dense", "router",
    "router_bias", "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor", "q_lora_rank",
    "kv_lora_rank", "qk_nope_dim", "qk_rope_dim", "v_head_dim",
};
/* Needed when there is no `base:`. */
static const int mf_required[N_MF] = {
    [MF_DIM] = 1, [MF_LAYERS] = 1, [MF_HEADS] = 1, [MF_FFN_DIM] = 1, [MF_VOCAB] = 1,
    [MF_MAX_SEQ] = 1, [MF_NORM] = 1, [MF_ACTIVATION] = 1, [MF_POSITIONS] = 1, [MF_TIED] = 1,
};

/* ---- intermediate form ---- */

typedef struct item {
    const char *text; /* as written (points into the YAML document or the arena) */
    int line;         /* YAML line, 0 on the command line */
    value v;
} item;

typedef struct pval {
    int key;
    int n;               /* >= 1 */
    item *items;
    const char *source;  /* file name; NULL: the command line */
    int line;            /* line of the key */
} pval;

typedef struct entry {
    pval vals[N_KEYS];   /* in written order, each key at most once */
    int n;
    const char *source; /* NULL: the command line */
    int line;
} entry;

typedef struct custom_model {
    hb_model m;
    int line;
    int used;           /* by some case: written into the canonical YAML */
} custom_model;

/* An entry ready to expand: its effective pvals in product order. */
typedef struct slots {
    const pval *v[N_KEYS];
    int n;
    int wl;             /* index of the workload pval in v */
} slots;

typedef struct ctx {
    const char *source; /* plan name, NULL for hb_plan_from_args */
    hb_err *err;
    unsigned applies[N_KEYS]; /* per key, bit w: workload w takes it (ctx_init) */
    unsigned all;             /* every workload's bit */
    void **allocs;
    int n_allocs, cap_allocs;
    custom_model *models;
    int n_models;
    entry *defaults;    /* NULL when none */
    entry *overrides;   /* NULL when none */
    entry *entries;
    int n_entries;
    int64_t serve_requests; /* of the cases built so far (MAX_PLAN_REQUESTS) */
} ctx;

static void *ctx_alloc(ctx *c, size_t n, size_t size) {
    if (c->n_allocs == c->cap_allocs) {
        int cap = c->cap_allocs ? 2 * c->cap_allocs : 32;
        void **p = realloc(c->allocs, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        c->allocs = p;
        c->cap_allocs = cap;
    }
    void *p = calloc(n ? n : 1, size);
    if (p) c->allocs[c->n_allocs++] = p;
    return p;
}

static char *ctx_strdup(ctx *c, const char *s) {
    size_t len = strlen(s);
    char *p = ctx_alloc(c, len + 1, 1);
    if (p) memcpy(p, s, len + 1);
    return p;
}

/* The key -> workloads table, from the registry. */
static void ctx_init(ctx *c, const char *source, hb_err *err) {
    memset(c, 0, sizeof *c);
    c->source = source;
    c->err = err;
    const hb_workload_desc *const *wl;
    int n = hb_workload_descs(&wl);
    for (int w = 0; w < n; w++) c->all |= 1u << w;
    for (int k = 0; k < N_KEYS; k++) {
        if (key_info[k].common) c->applies[k] = c->all;
        else
            for (int w = 0; w < n; w++)
                if (hb_workload_takes(wl[w], key_names[k])) c->applies[k] |= 1u << w;
    }
}

static int applies(const ctx *c, int key, int workload) { return (c->applies[key] >> workload) & 1u; }

static void ctx_free(ctx *c) {
    for (int i = 0; i < c->n_allocs; i++) free(c->allocs[i]);
    free(c->allocs);
}

static hb_status oom(ctx *c) { return hb_errf(c->err, HB_ERR_NOMEM, "plan: out of memory"); }

/* ---- messages ---- */

/* User text as it may appear in a one-line message: at most 60 characters, controls as '?'. */
static const char *shown(const char *s, char buf[72]) {
    int i = 0;
    for (; s[i] && i < 60; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i]) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = '\0';
    return buf;
}

static void cat(char *buf, size_t n, const char *s) {
    size_t len = strlen(buf);
    if (len + 1 < n) snprintf(buf + len, n - len, "%s", s);
}

static void workload_list(unsigned mask, char *buf, size_t n) {
    const hb_workload_desc *const *wl;
    int n_wl = hb_workload_descs(&wl);
    buf[0] = '\0';
    for (int w = 0; w < n_wl; w++) {
        if (!((mask >> w) & 1u)) continue;
        if (buf[0]) cat(buf, n, ", ");
        cat(buf, n, wl[w]->name);
    }
    if (!buf[0]) snprintf(buf, n, "no current workload; reserved for training");
}

static void key_list(char *buf, size_t n, const char *prefix) {
    buf[0] = '\0';
    for (int k = 0; k < N_KEYS; k++) {
        if (k) cat(buf, n, ", ");
        cat(buf, n, prefix);
        cat(buf, n, key_names[k]);
    }
}

/* What a key accepts, for "(accepted: ...)". */
static void accepted(const ctx *c, int key, char *buf, size_t n) {
    const hb_model *presets;
    int np;
    buf[0] = '\0';
    switch (key_info[key].type) {
    case T_WORKLOAD: workload_list(c->all, buf, n); break;
    case T_MODEL:
        np = hb_model_presets(&presets);
        for (int i = 0; i < np; i++) {
            if (i) cat(buf, n, ", ");
            cat(buf, n, presets[i].name);
        }
        for (int i = 0; i < c->n_models; i++) {
            cat(buf, n, ", ");
            cat(buf, n, c->models[i].m.name);
        }
        break;
    case T_DTYPE:
        for (size_t t = 0; t < sizeof dtype_recipes / sizeof dtype_recipes[0]; t++) {
            if (t) cat(buf, n, ", ");
            cat(buf, n, dtype_recipes[t].name);
        }
        break;
    case T_KV_DTYPE:
        for (int t = 0; t < HB_KV_COUNT; t++) {
            if (t) cat(buf, n, ", ");
            cat(buf, n, hb_kvt_name((hb_kvt)t));
        }
        break;
    case T_STREAM_OP:
        snprintf(buf, n, "%s, %s", hb_stream_op_name(HB_STREAM_COPY), hb_stream_op_name(HB_STREAM_TRIAD));
        break;
    case T_DATA:
        snprintf(buf, n, "%s, %s, or an llm.c token file (.bin)", hb_train_data_name(HB_DATA_SYNTHETIC),
                 hb_train_data_name(HB_DATA_REPEAT));
        break;
    case T_TWIN: snprintf(buf, n, "none, total, active"); break;
    case T_RECOMPUTE: snprintf(buf, n, "none, attention, full"); break;
    case T_ROUTING: snprintf(buf, n, "model, balanced, zipf:S with S > 0"); break;
    case T_COLL_OP:
        for (int t = 0; t < HB_COMM_BARRIER; t++) {
            if (t) cat(buf, n, ", ");
            cat(buf, n, hb_comm_op_name((hb_comm_op)t));
        }
        break;
    case T_ARRIVAL:
        snprintf(buf, n, "closed (a closed loop of concurrency requests), poisson:R with R > 0 requests/s, "
                 "search (the highest Poisson rate meeting the SLOs)");
        break;
    case T_POS_INT: snprintf(buf, n, "integers 1 to " MAX_INT_TEXT); break;
    case T_NONNEG_INT: snprintf(buf, n, "integers 0 to " MAX_INT_TEXT); break;
    case T_U64: snprintf(buf, n, "integers 0 to 18446744073709551615"); break;
    case T_NONNEG_REAL:
        /* the temperature is stored as a float: a larger number would become inf */
        snprintf(buf, n, key == K_MIN_SECONDS ? "numbers >= 0" : "numbers 0 to 3.4e38");
        break;
    case T_PATH: snprintf(buf, n, "a path of at most %d bytes", HB_PATH_LEN - 1); break;
    }
}

/* "<source>:<line>: field '<key>': <what>" for a plan, "--<key-with-dashes>: <what>" for the
 * command line (source NULL). */
static hb_status loc_err(hb_err *err, const char *source, int line, const char *key,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static hb_status loc_err(hb_err *err, const char *source, int line, const char *key,
                         const char *fmt, ...) {
    char what[800], kbuf[72];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    shown(key, kbuf);
    if (source) return hb_errf(err, HB_ERR_INPUT, "%s:%d: field '%s': %s", source, line, kbuf, what);
    for (char *p = kbuf; *p; p++)
        if (*p == '_') *p = '-';
    return hb_errf(err, HB_ERR_INPUT, "--%s: %s", kbuf, what);
}

/* ---- scalars ---- */

/* 0: ok; -1: not an integer; -2: magnitude above 2^62. */
static int parse_int(const char *s, int64_t *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!*p) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v > MAX_INT || v < -MAX_INT) return -2;
    *out = v;
    return 0;
}

/* 0: ok; -1: not a finite number. */
static int parse_real(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* 0 / 1, or -1 if not a boolean. */
static int parse_bool(const char *s) {
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes")) return 1;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no")) return 0;
    return -1;
}

/* Checks and converts one item of pval pv. */
static hb_status parse_item(const ctx *c, const pval *pv, item *it) {
    const char *key = key_names[pv->key], *t = it->text;
    char acc[512], sb[72];
    accepted(c, pv->key, acc, sizeof acc);
    if (!*t) return loc_err(c->err, pv->source, it->line, key, "missing value (accepted: %s)", acc);
    hb_workload_kind w;
    hb_kvt kv;
    hb_train_data dat;
    int64_t i;
    int r;
    switch (key_info[pv->key].type) {
    case T_WORKLOAD:
        if (hb_workload_parse(t, &w) != 0) break;
        it->v.e = (int)w;
        return HB_OK;
    case T_MODEL: return HB_OK;
    case T_PATH: {
        int ctl = 0;
        for (const char *q = t; *q; q++) ctl |= (unsigned char)*q < 0x20 || *q == 0x7f;
        if (strlen(t) >= HB_PATH_LEN || ctl) break;
        return HB_OK;
    }
    case T_DTYPE:
        if (parse_recipe(t, &it->v.e) != 0) break;
        return HB_OK;
    case T_KV_DTYPE:
        if (hb_kvt_parse(t, &kv) != 0) break;
        it->v.e = (int)kv;
        return HB_OK;
    case T_RECOMPUTE:
        for (int r = 0; r < HB_RECOMPUTE_COUNT; r++)
            if (!strcmp(t, hb_recompute_name((hb_recompute)r))) {
                it->v.e = r;
                return HB_OK;
            }
        break;
    case T_TWIN:
        if (!strcmp(t, "none")) it->v.e = HB_TWIN_NONE;
        else if (!strcmp(t, "total")) it->v.e = HB_TWIN_TOTAL;
        else if (!strcmp(t, "active")) it->v.e = HB_TWIN_ACTIVE;
        else break;
        return HB_OK;
    case T_ROUTING:
        if (!strcmp(t, "model")) it->v.d = 0.0;
        else if (!strcmp(t, "balanced")) it->v.d = -1.0;
        else if (!strncmp(t, "zipf:", 5)) {
            double z;
            if (parse_real(t + 5, &z) != 0 || !(z > 0) || z > 1e6)
                return loc_err(c->err, pv->source, it->line, key, "'%s': the zipf exponent must be a number "
                               "> 0 (accepted: %s)", shown(t, sb), acc);
            it->v.d = z;
        } else break;
        return HB_OK;
    case T_ARRIVAL:
        if (!strcmp(t, "closed")) it->v.d = 0.0;
        else if (!strcmp(t, "search")) it->v.d = HB_SERVE_RATE_SEARCH;
        else if (!strncmp(t, "poisson:", 8)) {
            double r;
            if (parse_real(t + 8, &r) != 0 || !(r > 0) || r > 1e9)
                return loc_err(c->err, pv->source, it->line, key, "'%s': the rate must be a number of requests/s "
                               "> 0 (accepted: %s)", shown(t, sb), acc);
            it->v.d = r;
        } else break;
        return HB_OK;
    case T_STREAM_OP:
        if (!strcmp(t, hb_stream_op_name(HB_STREAM_COPY))) it->v.e = HB_STREAM_COPY;
        else if (!strcmp(t, hb_stream_op_name(HB_STREAM_TRIAD))) it->v.e = HB_STREAM_TRIAD;
        else break;
        return HB_OK;
    case T_DATA: {
        if (hb_train_data_parse(t, &dat) == 0) {
            it->v.e = (int)dat;
            return HB_OK;
        }
        /* otherwise a token file (checked when the case is: train_check) */
        int ctl = 0;
        for (const char *q = t; *q; q++) ctl |= (unsigned char)*q < 0x20 || *q == 0x7f;
        if (strlen(t) >= HB_PATH_LEN || ctl || !*t) break;
        it->v.e = HB_DATA_FILE;
        return HB_OK;
    }
    case T_COLL_OP: {
        hb_comm_op op;
        if (hb_comm_op_parse(t, &op) != 0) break;
        it->v.e = (int)op;
        return HB_OK;
    }
    case T_POS_INT:
    case T_NONNEG_INT:
        r = parse_int(t, &i);
        if (r == -1)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is not an integer (accepted: %s)",
                           shown(t, sb), acc);
        if (t[0] == '-' || (r == 0 && i == 0 && key_info[pv->key].type == T_POS_INT))
            return loc_err(c->err, pv->source, it->line, key, "'%s' is not a %s integer (accepted: %s)",
                           shown(t, sb), key_info[pv->key].type == T_POS_INT ? "positive" : "non-negative",
                           acc);
        if (r == -2)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is too large (accepted: %s)",
                           shown(t, sb), acc);
        it->v.i = i;
        return HB_OK;
    case T_U64: {
        const char *p = t[0] == '+' ? t + 1 : t;
        int digits = *p != '\0';
        for (const char *q = p; *q; q++) digits = digits && *q >= '0' && *q <= '9';
        if (!digits)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is not a non-negative integer (accepted: %s)",
                           shown(t, sb), acc);
        errno = 0;
        unsigned long long u = strtoull(p, NULL, 10);
        if (errno == ERANGE)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is too large (accepted: %s)",
                           shown(t, sb), acc);
        it->v.u = u;
        return HB_OK;
    }
    case T_NONNEG_REAL:
        if (parse_real(t, &it->v.d) != 0)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is not a number (accepted: %s)",
                           shown(t, sb), acc);
        if (it->v.d < 0)
            return loc_err(c->err, pv->source, it->line, key, "'%s' is negative (accepted: %s)",
                           shown(t, sb), acc);
        if (pv->key != K_MIN_SECONDS && it->v.d > 3.4e38) /* stored as a float */
            return loc_err(c->err, pv->source, it->line, key, "'%s' is too large (accepted: %s)",
                           shown(t, sb), acc);
        return HB_OK;
    }
    return loc_err(c->err, pv->source, it->line, key, "unknown value '%s' (accepted: %s)", shown(t, sb), acc);
}

static int lookup_key(const char *name) {
    for (int k = 0; k < N_KEYS; k++)
        if (!strcmp(name, key_names[k])) return k;
    return -1;
}

static const pval *find(const entry *e, int key) {
    if (!e) return NULL;
    for (int i = 0; i < e->n; i++)
        if (e->vals[i].key == key) return &e->vals[i];
    return NULL;
}

/* ---- the command line ---- */

/* kv -> entry; "1,8" is a list. Keys may be written with '_' or '-'. */
static hb_status cli_entry(ctx *c, const hb_kv *kv, int n, entry *e) {
    char name[64], sb[72], acc[512];
    e->source = NULL;
    for (int i = 0; i < n; i++) {
        const char *given = kv[i].key ? kv[i].key : "";
        snprintf(name, sizeof name, "%s", given);
        for (char *p = name; *p; p++)
            if (*p == '-') *p = '_';
        int key = strlen(given) < sizeof name ? lookup_key(name) : -1;
        if (key < 0) {
            key_list(acc, sizeof acc, "--");
            return loc_err(c->err, NULL, 0, given, "unknown option (accepted: %s)", acc);
        }
        if (find(e, key)) return loc_err(c->err, NULL, 0, name, "given twice (accepted: once)");
        pval *pv = &e->vals[e->n];
        pv->key = key;
        pv->source = NULL;
        const char *value = kv[i].value ? kv[i].value : "";
        accepted(c, key, acc, sizeof acc);
        if (!*value) return loc_err(c->err, NULL, 0, name, "missing value (accepted: %s)", acc);
        char *copy = ctx_strdup(c, value);
        if (!copy) return oom(c);
        int n_items = 1;
        for (const char *p = copy; *p; p++) n_items += *p == ',';
        pv->items = ctx_alloc(c, (size_t)n_items, sizeof *pv->items);
        if (!pv->items) return oom(c);
        char *save = copy;
        for (int j = 0; j < n_items; j++) {
            char *comma = strchr(save, ',');
            if (comma) *comma = '\0';
            while (*save == ' ' || *save == '\t') save++;
            char *end = save + strlen(save);
            while (end > save && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
            if (!*save)
                return loc_err(c->err, NULL, 0, name, "empty item in the list '%s' (accepted: %s)",
                               shown(value, sb), acc);
            pv->items[j].text = save;
            save = comma ? comma + 1 : end;
        }
        pv->n = n_items;
        e->n++;
        for (int j = 0; j < n_items; j++) HB_TRY(parse_item(c, pv, &pv->items[j]));
    }
    return HB_OK;
}

/* ---- YAML ---- */

static int node_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }
static int is_null(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (n->data.scalar.length == 0 || !strcmp(scalar(n), "~") || !strcmp(scalar(n), "null"));
}
static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

/* A mapping's key must be a plain name; returns it or NULL with the error set. */
static const char *key_name(ctx *c, const yaml_node_t *k, hb_status *st) {
    if (k && k->type == YAML_SCALAR_NODE) return scalar(k);
    *st = hb_errf(c->err, HB_ERR_INPUT, "%s:%d: a key must be a plain name, not %s", c->source,
                  k ? node_line(k) : 0, k ? node_kind(k) : "nothing");
    return NULL;
}

/* One key's value: a scalar or a flat list of scalars. */
static hb_status yaml_pval(ctx *c, yaml_document_t *doc, int key, int key_line, yaml_node_t *v, pval *pv) {
    const char *name = key_names[key];
    char acc[512];
    accepted(c, key, acc, sizeof acc);
    pv->key = key;
    pv->source = c->source;
    pv->line = key_line;
    if (v->type == YAML_MAPPING_NODE)
        return loc_err(c->err, c->source, node_line(v), name,
                       "expected a value or a list of values, got a mapping (accepted: %s)", acc);
    if (v->type == YAML_SCALAR_NODE) {
        pv->items = ctx_alloc(c, 1, sizeof *pv->items);
        if (!pv->items) return oom(c);
        pv->items[0].text = scalar(v);
        pv->items[0].line = node_line(v);
        pv->n = 1;
    } else {
        int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n == 0) return loc_err(c->err, c->source, node_line(v), name, "empty list (accepted: %s)", acc);
        pv->items = ctx_alloc(c, (size_t)n, sizeof *pv->items);
        if (!pv->items) return oom(c);
        for (int i = 0; i < n; i++) {
            yaml_node_t *it = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
            if (it->type == YAML_SEQUENCE_NODE)
                return loc_err(c->err, c->source, node_line(it), name,
                               "nested lists are not allowed (accepted: %s)", acc);
            if (it->type == YAML_MAPPING_NODE)
                return loc_err(c->err, c->source, node_line(it), name,
                               "expected a value in the list, got a mapping (accepted: %s)", acc);
            pv->items[i].text = scalar(it);
            pv->items[i].line = node_line(it);
        }
        pv->n = n;
    }
    for (int i = 0; i < pv->n; i++) HB_TRY(parse_item(c, pv, &pv->items[i]));
    return HB_OK;
}

/* A mapping of case keys: one item of `cases:` (is_case: `id` is accepted and ignored, it is
 * what the canonical YAML writes) or `defaults:`. */
static hb_status yaml_entry(ctx *c, yaml_document_t *doc, yaml_node_t *map, int is_case, entry *e) {
    char acc[512];
    hb_status st = HB_OK;
    e->source = c->source;
    e->line = node_line(map);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        const char *name = key_name(c, k, &st);
        if (!name) return st;
        if (is_case && !strcmp(name, "id")) {
            int64_t id;
            if (v->type != YAML_SCALAR_NODE || parse_int(scalar(v), &id) != 0 || id < 0)
                return loc_err(c->err, c->source, node_line(v), "id",
                               "expected a non-negative integer (accepted: integers 0 to " MAX_INT_TEXT
                               "; ids are assigned in expansion order)");
            continue;
        }
        int key = lookup_key(name);
        if (key < 0) {
            key_list(acc, sizeof acc, "");
            return loc_err(c->err, c->source, node_line(k), name, "unknown key (accepted: %s)", acc);
        }
        const pval *first = find(e, key);
        if (first)
            return loc_err(c->err, c->source, node_line(k), name, "given twice (first at line %d)",
                           first->line);
        HB_TRY(yaml_pval(c, doc, key, node_line(k), v, &e->vals[e->n]));
        e->n++;
    }
    return HB_OK;
}

/* Custom model names: also YAML-safe as plain scalars in the canonical text. */
static int valid_model_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((hb_model *)0)->name) || !isalnum((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

static hb_status yaml_model(ctx *c, yaml_document_t *doc, yaml_node_t *kn, yaml_node_t *vn, custom_model *cm) {
    char acc[512], sb[72];
    hb_status st = HB_OK;
    const char *name = key_name(c, kn, &st);
    if (!name) return st;
    int line = node_line(kn);
    const hb_model *presets;
    int np = hb_model_presets(&presets);
    if (!valid_model_name(name))
        return loc_err(c->err, c->source, line, "models",
                       "model name '%s' is not valid (accepted: letters, digits, '.', '_', '-', starting "
                       "with a letter or digit, at most 63 characters)", shown(name, sb));
    for (int i = 0; i < np; i++)
        if (!strcmp(presets[i].name, name))
            return loc_err(c->err, c->source, line, "models",
                           "'%s' is a preset name (accepted: a new name, with 'base: %s' to start from the preset)",
                           name, name);
    for (int i = 0; i < c->n_models; i++)
        if (!strcmp(c->models[i].m.name, name))
            return loc_err(c->err, c->source, line, "models", "model '%s' is defined twice (first at line %d)",
                           name, c->models[i].line);
    acc[0] = '\0';
    for (int f = 0; f < N_MF; f++) {
        if (f) cat(acc, sizeof acc, ", ");
        cat(acc, sizeof acc, mf_names[f]);
    }
    if (vn->type != YAML_MAPPING_NODE)
        return loc_err(c->err, c->source, node_line(vn), name, "expected a mapping of model fields, got %s "
                       "(accepted: %s)", node_kind(vn), acc);

    const yaml_node_t *fv[N_MF] = {0};
    int fline[N_MF] = {0};
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        const char *fname = key_name(c, k, &st);
        if (!fname) return st;
        int f = 0;
        while (f < N_MF && strcmp(fname, mf_names[f])) f++;
        if (f == N_MF)
            return loc_err(c->err, c->source, node_line(k), fname, "unknown model field (accepted: %s)", acc);
        if (fv[f])
            return loc_err(c->err, c->source, node_line(k), fname, "given twice (first at line %d)", fline[f]);
        if (v->type != YAML_SCALAR_NODE)
            return loc_err(c->err, c->source, node_line(v), fname, "expected a single value, got %s", node_kind(v));
        fv[f] = v;
        fline[f] = node_line(v);
    }

    hb_model m;
    memset(&m, 0, sizeof m);
    if (fv[MF_BASE]) {
        const char *base = scalar(fv[MF_BASE]);
        if (hb_model_find(base, &m, NULL) != HB_OK) {
            acc[0] = '\0';
            for (int i = 0; i < np; i++) {
                if (i) cat(acc, sizeof acc, ", ");
                cat(acc, sizeof acc, presets[i].name);
            }
            return loc_err(c->err, c->source, fline[MF_BASE], "base", "unknown preset '%s' (accepted: %s)",
                           shown(base, sb), acc);
        }
    } else {
        for (int f = 0; f < N_MF; f++)
            if (mf_required[f] && !fv[f])
                return loc_err(c->err, c->source, line, mf_names[f],
                               "required in model '%s', which has no base (accepted: a value, or "
                               "'base: <preset>' to take the preset's)", name);
        m.bias = 0;
        m.rope_theta = 10000.0f;
        m.norm_eps = 1e-5f;
    }
    int64_t *ints[N_MF] = {[MF_DIM] = &m.dim, [MF_LAYERS] = &m.n_layers, [MF_HEADS] = &m.n_heads,
                           [MF_KV_HEADS] = &m.n_kv_heads, [MF_FFN_DIM] = &m.ffn_dim,
                           [MF_VOCAB] = &m.vocab, [MF_MAX_SEQ] = &m.max_seq, [MF_HEAD_DIM] = &m.head_dim,
                           [MF_EXPERTS] = &m.n_experts, [MF_TOP_K] = &m.top_k, [MF_SHARED] = &m.n_shared,
                           [MF_MOE_FFN] = &m.moe_ffn_dim, [MF_FIRST_DENSE] = &m.first_k_dense,
                           [MF_N_GROUP] = &m.n_group, [MF_TOPK_GROUP] = &m.topk_group,
                           [MF_Q_LORA] = &m.q_lora_rank, [MF_KV_LORA] = &m.kv_lora_rank,
                           [MF_QK_NOPE] = &m.qk_nope_dim, [MF_QK_ROPE] = &m.qk_rope_dim,
                           [MF_V_HEAD] = &m.v_head_dim};
    for (int f = 0; f < N_MF; f++) {
        if (!fv[f] || f == MF_BASE) continue;
        const char *t = scalar(fv[f]), *key = mf_names[f];
        int64_t i;
        double d;
        int b, r;
        /* fields where 0 means "none" */
        const int zero_ok = f == MF_HEAD_DIM || f == MF_EXPERTS || f == MF_SHARED || f == MF_FIRST_DENSE ||
                            f == MF_Q_LORA || f == MF_KV_LORA;
        switch (f) {
        case MF_HEAD_DIM: case MF_EXPERTS: case MF_TOP_K: case MF_SHARED: case MF_MOE_FFN:
        case MF_FIRST_DENSE: case MF_N_GROUP: case MF_TOPK_GROUP: case MF_Q_LORA: case MF_KV_LORA:
        case MF_QK_NOPE: case MF_QK_ROPE: case MF_V_HEAD:
            r = parse_int(t, &i);
            if (r == -1 || !*t || t[0] == '-' || (r == 0 && i == 0 && !zero_ok))
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a %s integer (accepted: "
                               "integers %d to 65536)", shown(t, sb), zero_ok ? "non-negative" : "positive",
                               zero_ok ? 0 : 1);
            if (r == -2 || i > (f == MF_HEAD_DIM || f == MF_MOE_FFN ? ((int64_t)1 << 40) : 65536))
                return loc_err(c->err, c->source, fline[f], key, "'%s' is too large (accepted: at most %s)",
                               shown(t, sb), f == MF_HEAD_DIM || f == MF_MOE_FFN ? "2^40" : "65536");
            *ints[f] = i;
            break;
        case MF_ROUTER:
            if (!strcmp(t, hb_router_name(HB_ROUTER_SOFTMAX))) m.router = HB_ROUTER_SOFTMAX;
            else if (!strcmp(t, hb_router_name(HB_ROUTER_SIGMOID))) m.router = HB_ROUTER_SIGMOID;
            else return loc_err(c->err, c->source, fline[f], key, "unknown value '%s' (accepted: softmax, sigmoid)",
                                shown(t, sb));
            break;
        case MF_ROUTER_BIAS: case MF_NORM_TOPK:
            b = parse_bool(t);
            if (b < 0)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a boolean (accepted: yes, no, "
                               "true, false)", shown(t, sb));
            if (f == MF_ROUTER_BIAS) m.router_bias = b;
            else m.norm_topk = b;
            break;
        case MF_ROUTED_SCALE:
            if (parse_real(t, &d) != 0 || !(d > 0) || (float)d > 3.4e38f)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a number > 0 (accepted: "
                               "numbers > 0)", shown(t, sb));
            m.routed_scale = (float)d;
            break;
        case MF_DIM: case MF_LAYERS: case MF_HEADS: case MF_KV_HEADS: case MF_FFN_DIM: case MF_VOCAB:
        case MF_MAX_SEQ:
            r = parse_int(t, &i);
            if (r == -1 || !*t)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not an integer (accepted: "
                               "integers 1 to " MAX_INT_TEXT ")", shown(t, sb));
            if (t[0] == '-' || (r == 0 && i == 0))
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a positive integer "
                               "(accepted: integers 1 to " MAX_INT_TEXT ")", shown(t, sb));
            if (r == -2)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is too large (accepted: integers "
                               "1 to " MAX_INT_TEXT ")", shown(t, sb));
            *ints[f] = i;
            break;
        case MF_NORM:
            if (!strcmp(t, hb_norm_name(HB_NORM_RMSNORM))) m.norm = HB_NORM_RMSNORM;
            else if (!strcmp(t, hb_norm_name(HB_NORM_LAYERNORM))) m.norm = HB_NORM_LAYERNORM;
            else return loc_err(c->err, c->source, fline[f], key, "unknown value '%s' (accepted: rmsnorm, layernorm)",
                                shown(t, sb));
            break;
        case MF_ACTIVATION:
            if (!strcmp(t, hb_act_name(HB_ACT_SWIGLU))) m.act = HB_ACT_SWIGLU;
            else if (!strcmp(t, hb_act_name(HB_ACT_GELU))) m.act = HB_ACT_GELU;
            else return loc_err(c->err, c->source, fline[f], key, "unknown value '%s' (accepted: swiglu, gelu)",
                                shown(t, sb));
            break;
        case MF_POSITIONS:
            if (!strcmp(t, hb_pos_name(HB_POS_ROPE))) m.pos = HB_POS_ROPE;
            else if (!strcmp(t, hb_pos_name(HB_POS_LEARNED))) m.pos = HB_POS_LEARNED;
            else return loc_err(c->err, c->source, fline[f], key, "unknown value '%s' (accepted: rope, learned)",
                                shown(t, sb));
            break;
        case MF_TIED: case MF_BIAS:
            b = parse_bool(t);
            if (b < 0)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a boolean (accepted: yes, no, "
                               "true, false)", shown(t, sb));
            if (f == MF_TIED) m.tied = b;
            else m.bias = b;
            break;
        case MF_ROPE_THETA: case MF_NORM_EPS:
            if (parse_real(t, &d) != 0 || d < 0 || (float)d > 3.4e38f)
                return loc_err(c->err, c->source, fline[f], key, "'%s' is not a number >= 0 (accepted: "
                               "numbers >= 0)", shown(t, sb));
            if (f == MF_ROPE_THETA) m.rope_theta = (float)d;
            else m.norm_eps = (float)d;
            break;
        }
    }
    if (!fv[MF_BASE] && !fv[MF_KV_HEADS]) m.n_kv_heads = m.n_heads;
    if (!(m.routed_scale > 0) && !fv[MF_ROUTED_SCALE]) m.routed_scale = 1.0f;
    /* A base without rope (gpt2) switched to rope positions: the usual theta. */
    if (m.pos == HB_POS_ROPE && !fv[MF_ROPE_THETA] && !(m.rope_theta > 0)) m.rope_theta = 10000.0f;
    snprintf(m.name, sizeof m.name, "%s", name);
    m.n_layers_full = m.n_layers;
    hb_err e;
    if (hb_model_validate(&m, &e) != HB_OK)
        return hb_errf(c->err, HB_ERR_INPUT, "%s:%d: %s", c->source, line, e.msg);
    cm->m = m;
    cm->line = line;
    return HB_OK;
}

static hb_status yaml_models(ctx *c, yaml_document_t *doc, yaml_node_t *map) {
    int n = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    c->models = ctx_alloc(c, (size_t)n, sizeof *c->models);
    if (!c->models) return oom(c);
    for (int i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        HB_TRY(yaml_model(c, doc, yaml_document_get_node(doc, p->key), yaml_document_get_node(doc, p->value),
                          &c->models[c->n_models]));
        c->n_models++;
    }
    return HB_OK;
}

static hb_status entry_slots(ctx *c, const entry *e, slots *s);
static int64_t slots_count(const ctx *c, const slots *s);

static hb_status yaml_plan(ctx *c, yaml_document_t *doc) {
    static const char *const top[] = {"defaults", "models", "cases"};
    char acc[512];
    hb_status st = HB_OK;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root || is_null(root))
        return loc_err(c->err, c->source, root ? node_line(root) : 1, "cases",
                       "required, and the plan is empty (accepted: a mapping with keys defaults, models, cases)");
    if (root->type != YAML_MAPPING_NODE)
        return hb_errf(c->err, HB_ERR_INPUT, "%s:%d: expected a mapping with keys defaults, models, cases, "
                       "got %s", c->source, node_line(root), node_kind(root));
    yaml_node_t *sec[3] = {0}, *sec_key[3] = {0};
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const char *name = key_name(c, k, &st);
        if (!name) return st;
        int s = 0;
        while (s < 3 && strcmp(name, top[s])) s++;
        if (s == 3)
            return loc_err(c->err, c->source, node_line(k), name,
                           "unknown top-level key (accepted: defaults, models, cases)");
        if (sec[s])
            return loc_err(c->err, c->source, node_line(k), name, "given twice (first at line %d)",
                           node_line(sec_key[s]));
        sec[s] = yaml_document_get_node(doc, p->value);
        sec_key[s] = k;
    }
    key_list(acc, sizeof acc, "");
    if (sec[0] && !is_null(sec[0])) {
        if (sec[0]->type != YAML_MAPPING_NODE)
            return loc_err(c->err, c->source, node_line(sec[0]), "defaults",
                           "expected a mapping of case keys, got %s (accepted: %s)", node_kind(sec[0]), acc);
        c->defaults = ctx_alloc(c, 1, sizeof *c->defaults);
        if (!c->defaults) return oom(c);
        HB_TRY(yaml_entry(c, doc, sec[0], 0, c->defaults));
    }
    if (sec[1] && !is_null(sec[1])) {
        if (sec[1]->type != YAML_MAPPING_NODE)
            return loc_err(c->err, c->source, node_line(sec[1]), "models",
                           "expected a mapping of model names to model fields, got %s", node_kind(sec[1]));
        HB_TRY(yaml_models(c, doc, sec[1]));
    }
    yaml_node_t *cases = sec[2];
    if (!cases)
        return loc_err(c->err, c->source, node_line(root), "cases",
                       "required (accepted: a list of cases, each a mapping with keys %s)", acc);
    if (is_null(cases))
        return loc_err(c->err, c->source, node_line(cases), "cases", "empty (accepted: a non-empty list of cases)");
    if (cases->type != YAML_SEQUENCE_NODE)
        return loc_err(c->err, c->source, node_line(cases), "cases", "expected a list of cases, got %s",
                       node_kind(cases));
    ptrdiff_t n = cases->data.sequence.items.top - cases->data.sequence.items.start;
    if (n == 0)
        return loc_err(c->err, c->source, node_line(cases), "cases", "empty list (accepted: a non-empty list of cases)");
    /* every entry is at least one case: the limit is checked before anything is allocated
     * (an 8 MB list of aliases used to take 1.4 GB before the limit was seen) */
    if (n > MAX_CASES)
        return loc_err(c->err, c->source, node_line(cases), "cases",
                       "%lld entries: the plan expands to more than %d cases (accepted: at most %d)", (long long)n,
                       MAX_CASES, MAX_CASES);
    c->entries = ctx_alloc(c, (size_t)n, sizeof *c->entries);
    if (!c->entries) return oom(c);
    int64_t total = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(doc, cases->data.sequence.items.start[i]);
        if (e->type != YAML_MAPPING_NODE)
            return loc_err(c->err, c->source, node_line(e), "cases",
                           "each case must be a mapping, got %s (accepted keys: %s)", node_kind(e), acc);
        HB_TRY(yaml_entry(c, doc, e, 1, &c->entries[i]));
        c->n_entries++;
        /* the running count, so that aliased lists stop here too (expand() reports any other
         * problem of the entry, in order) */
        slots sl;
        hb_err ignored;
        hb_err *keep = c->err;
        c->err = &ignored;
        hb_status ss = entry_slots(c, &c->entries[i], &sl);
        c->err = keep;
        if (ss == HB_OK && (total += slots_count(c, &sl)) > MAX_CASES)
            return loc_err(c->err, c->source, c->entries[i].line, "cases",
                           "the plan expands to more than %d cases (accepted: at most %d)", MAX_CASES, MAX_CASES);
    }
    return HB_OK;
}

/* ---- expansion ---- */

/* The entry's effective pvals: its own (overridden where an override exists), then defaults and
 * overrides it does not set and that apply to one of its workloads. */
static hb_status entry_slots(ctx *c, const entry *e, slots *s) {
    char wl_names[128], ap_names[128];
    const pval *wl = find(c->overrides, K_WORKLOAD);
    if (!wl) wl = find(e, K_WORKLOAD);
    if (!wl) wl = find(c->defaults, K_WORKLOAD);
    if (!wl) {
        accepted(c, K_WORKLOAD, wl_names, sizeof wl_names);
        return loc_err(c->err, e->source, e->line, "workload", "required (accepted: %s)", wl_names);
    }
    unsigned mask = 0;
    for (int i = 0; i < wl->n; i++) mask |= 1u << wl->items[i].v.e;
    s->n = 0;
    for (int i = 0; i < e->n; i++) {
        const pval *pv = &e->vals[i];
        if (!(c->applies[pv->key] & mask)) {
            workload_list(mask, wl_names, sizeof wl_names);
            workload_list(c->applies[pv->key], ap_names, sizeof ap_names);
            return loc_err(c->err, pv->source, pv->line, key_names[pv->key],
                           "does not apply to workload%s %s (applies to: %s)",
                           (mask & (mask - 1)) ? "s" : "", wl_names, ap_names);
        }
        const pval *o = find(c->overrides, pv->key);
        s->v[s->n++] = o ? o : pv;
    }
    const entry *extra[2] = {c->defaults, c->overrides};
    for (int x = 0; x < 2; x++) {
        if (!extra[x]) continue;
        for (int i = 0; i < extra[x]->n; i++) {
            const pval *pv = &extra[x]->vals[i];
            if (find(e, pv->key) || !(c->applies[pv->key] & mask)) continue;
            if (x == 1 && find(c->defaults, pv->key)) continue; /* took the default's place */
            const pval *o = x == 0 ? find(c->overrides, pv->key) : NULL;
            s->v[s->n++] = o ? o : pv;
        }
    }
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == wl) s->wl = i;
    return HB_OK;
}

/* Number of cases of an entry (MAX_CASES + 1 if more). */
static int64_t slots_count(const ctx *c, const slots *s) {
    const pval *wl = s->v[s->wl];
    int64_t total = 0;
    for (int i = 0; i < wl->n; i++) {
        int64_t cnt = 1;
        for (int j = 0; j < s->n; j++) {
            if (j == s->wl || !applies(c, s->v[j]->key, wl->items[i].v.e)) continue;
            cnt *= s->v[j]->n;
            if (cnt > MAX_CASES) return MAX_CASES + 1;
        }
        total += cnt;
        if (total > MAX_CASES) return MAX_CASES + 1;
    }
    return total;
}

static hb_status resolve_model(ctx *c, const char *name, hb_model *m) {
    for (int i = 0; i < c->n_models; i++)
        if (!strcmp(c->models[i].m.name, name)) {
            *m = c->models[i].m;
            c->models[i].used = 1;
            return HB_OK;
        }
    return hb_model_find(name, m, NULL);
}

/* Stores key's value into the case field it sets (workload, model and layers: build_case). */
static void set_field(hb_case *k, int key, const value *v) {
    switch (key) {
    case K_DTYPE:
        k->dtype = (hb_dtype)(v->e & 0xff);
        k->quant = (hb_qkind)(v->e >> 8);
        break;
    case K_KV_DTYPE: k->kv_dtype = (hb_kvt)v->e; break;
    case K_QUANT_BLOCK: k->quant_block = v->i; break;
    case K_BATCH: k->batch = v->i; break;
    case K_PROMPT: k->prompt = v->i; break;
    case K_GEN: k->gen = v->i; break;
    case K_SEQ: k->seq = v->i; break;
    case K_M: k->m = v->i; break;
    case K_N: k->n = v->i; break;
    case K_K: k->k = v->i; break;
    case K_STREAM_N: k->stream_n = v->i; break;
    case K_STREAM_OP: k->stream_op = (hb_stream_op)v->e; break;
    case K_SEED: k->seed = v->u; break;
    case K_TEMPERATURE: k->temperature = (float)v->d; break;
    case K_WARMUP: k->warmup_iters = v->i; break;
    case K_MIN_ITERS: k->min_iters = v->i; break;
    case K_MIN_SECONDS: k->min_seconds = v->d; break;
    case K_MAX_ITERS: k->max_iters = v->i; break;
    case K_REPEAT: k->repeat = v->i; break;
    case K_LR: k->lr = (float)v->d; break;
    case K_BETA1: k->beta1 = (float)v->d; break;
    case K_BETA2: k->beta2 = (float)v->d; break;
    case K_EPS: k->eps = (float)v->d; break;
    case K_WEIGHT_DECAY: k->weight_decay = (float)v->d; break;
    case K_GRAD_ACCUM: k->grad_accum = v->i; break;
    case K_DATA: k->data = (hb_train_data)v->e; break;
    case K_DP: k->dp = v->i; break;
    case K_RECOMPUTE: k->recompute = (hb_recompute)v->e; break;
    case K_TP: k->tp = v->i; break;
    case K_EP: k->ep = v->i; break;
    case K_COLLECTIVE: k->coll_op = (hb_comm_op)v->e; break;
    case K_COLL_BYTES: k->coll_bytes = v->i; break;
    case K_IN_PLACE: k->in_place = v->i; break;
    case K_COLL_RANKS: k->coll_ranks = v->i; break;
    case K_ROUTING:
        k->routing = v->d == 0.0 ? HB_ROUTING_MODEL : v->d < 0 ? HB_ROUTING_BALANCED : HB_ROUTING_ZIPF;
        k->zipf_s = v->d > 0 ? (float)v->d : 0.0f;
        break;
    case K_ISL: k->isl = v->i; break;
    case K_OSL: k->osl = v->i; break;
    case K_RANGE_RATIO: k->range_ratio = v->d; break;
    case K_REQUESTS: k->requests = v->i; break;
    case K_CONCURRENCY: k->concurrency = v->i; break;
    case K_ARRIVAL: k->arrival_rate = v->d; break;
    case K_MAX_BATCH_TOKENS: k->max_batch_tokens = v->i; break;
    case K_MAX_SEQS: k->max_seqs = v->i; break;
    case K_KV_BLOCKS: k->kv_blocks = v->i; break;
    case K_KV_BLOCK_SIZE: k->kv_block_size = v->i; break;
    case K_SLO_TTFT_S: k->slo_ttft_s = v->d; break;
    case K_SLO_TPOT_S: k->slo_tpot_s = v->d; break;
    default: break;
    }
}

/* One case from the combination idx of the entry's slots: every key its workload takes, as
 * written or by default (the others stay 0), the model resolved, the workload's own check,
 * then its cost and label (hb_case_resolve). */
static hb_status build_case(ctx *c, const slots *s, const int *idx, hb_case *k) {
    const item *val[N_KEYS] = {0};
    const pval *src[N_KEYS] = {0};
    int w = s->v[s->wl]->items[idx[s->wl]].v.e;
    for (int d = 0; d < s->n; d++) {
        int key = s->v[d]->key;
        if (!applies(c, key, w)) continue;
        val[key] = &s->v[d]->items[idx[d]];
        src[key] = s->v[d];
    }
#define FAIL(key, ...) loc_err(c->err, src[key]->source, val[key]->line, key_names[key], __VA_ARGS__)
    memset(k, 0, sizeof *k);
    k->workload = (hb_workload_kind)w;
    const hb_workload_desc *wd = hb_workload_desc_of(k->workload);
    if (!wd) return hb_errf(c->err, HB_ERR_INTERNAL, "plan: workload %d", w);
    for (int key = 0; key < N_KEYS; key++)
        if (key != K_WORKLOAD && key != K_MODEL && key != K_LAYERS && key != K_DENSE_TWIN && applies(c, key, w))
            set_field(k, key, val[key] ? &val[key]->v : &key_info[key].def);
    if (val[K_WEIGHTS]) snprintf(k->weights, sizeof k->weights, "%s", val[K_WEIGHTS]->text);
    if (val[K_PROMPT_TOKENS]) snprintf(k->prompt_tokens, sizeof k->prompt_tokens, "%s", val[K_PROMPT_TOKENS]->text);
    if (val[K_DATA] && val[K_DATA]->v.e == HB_DATA_FILE && applies(c, K_DATA, w))
        snprintf(k->data_path, sizeof k->data_path, "%s", val[K_DATA]->text);
    hb_ckpt *ck = NULL;
    if (k->weights[0]) { /* the architecture comes from config.json; a model the plan names must match it */
        hb_err why = {{0}};
        hb_model cm;
        int has_config = 0;
        if (hb_ckpt_open(k->weights, &ck, &why) != HB_OK || hb_ckpt_model(ck, &cm, &has_config, &why) != HB_OK) {
            hb_ckpt_close(ck);
            return FAIL(K_WEIGHTS, "%s", why.msg);
        }
        if (!val[K_MODEL]) {
            if (!has_config) {
                hb_ckpt_close(ck);
                return FAIL(K_WEIGHTS, "%s: no config.json beside it: name the architecture with 'model:'", k->weights);
            }
            k->model = cm;
            k->weights_model = 1;
        } else if (has_config) {
            hb_model pm;
            if (resolve_model(c, val[K_MODEL]->text, &pm) == HB_OK) {
                char diff[160] = "";
                /* a checkpoint of the preset's first N layers (`hetbench weights --layers N`, or
                 * a truncated export) is the preset with layers: N or fewer */
                const int64_t full = pm.n_layers_full, want = val[K_LAYERS] ? val[K_LAYERS]->v.i : full;
                if (cm.n_layers_full < full) pm.n_layers_full = cm.n_layers_full;
                hb_model_diff(&pm, &cm, diff, sizeof diff);
                if (!diff[0] && want > cm.n_layers_full) {
                    hb_ckpt_close(ck);
                    return FAIL(val[K_LAYERS] ? K_LAYERS : K_WEIGHTS,
                                "%s/config.json holds only the first %lld layers of model '%s' (%lld): %s %lld or fewer",
                                k->weights, (long long)cm.n_layers_full, pm.name, (long long)full,
                                val[K_LAYERS] ? "accepted: layers" : "add layers:", (long long)cm.n_layers_full);
                }
                if (diff[0]) {
                    hb_ckpt_close(ck);
                    return FAIL(K_MODEL, "model '%s' is not the architecture of %s/config.json: %s", pm.name, k->weights, diff);
                }
            }
        }
    }
    if (applies(c, K_MODEL, w) && !k->weights_model) {
        const char *name = val[K_MODEL] ? val[K_MODEL]->text : "tiny";
        char sb[72], acc[512];
        if (resolve_model(c, name, &k->model) != HB_OK) {
            hb_ckpt_close(ck);
            accepted(c, K_MODEL, acc, sizeof acc);
            return FAIL(K_MODEL, "unknown model '%s' (accepted: %s)", shown(name, sb), acc);
        }
    }
    if (applies(c, K_MODEL, w)) {
        const hb_model *m = &k->model;
        if (val[K_LAYERS]) {
            int64_t l = val[K_LAYERS]->v.i;
            if (l > m->n_layers_full)
                return FAIL(K_LAYERS, "%lld is more than the %lld layers of model '%s' (accepted: 1 to %lld)",
                            (long long)l, (long long)m->n_layers_full, m->name, (long long)m->n_layers_full);
            k->model.n_layers = l;
        }
        if (val[K_DENSE_TWIN] && val[K_DENSE_TWIN]->v.e != HB_TWIN_NONE) {
            hb_err e = {{0}};
            hb_model twin;
            if (hb_model_dense_twin(&k->model, val[K_DENSE_TWIN]->v.e, &twin, &e) != HB_OK)
                return FAIL(K_DENSE_TWIN, "%s (accepted: none for a dense model)", e.msg);
            k->model = twin;
        }
    }
    if (ck) { /* every weight of the (truncated) model, in a shape and dtype that loads */
        hb_err why = {{0}};
        hb_ckpt_dtypes(ck, k->weights_stored, sizeof k->weights_stored);
        hb_status cs = hb_ckpt_check(ck, &k->model, &why);
        hb_ckpt_close(ck);
        if (cs != HB_OK) return FAIL(K_WEIGHTS, "%s", why.msg);
    }
    if (wd->check) {
        const char *const *blame = NULL;
        hb_err what = {{0}};
        if (wd->check(k, &blame, &what) != HB_OK) {
            /* located at the first of the blamed keys the entry wrote; none written: no location */
            int key = -1;
            for (int i = 0; blame && blame[i]; i++) {
                key = lookup_key(blame[i]);
                if (key >= 0 && val[key]) break;
            }
            if (key < 0 || !val[key]) return hb_errf(c->err, HB_ERR_INPUT, "plan: %s", what.msg);
            return FAIL(key, "%s", what.msg);
        }
    }
    if (k->repeat > HB_MAX_REPEAT)
        return FAIL(K_REPEAT, "%lld is more than %d (accepted: 1 to %d timed windows per case)", (long long)k->repeat,
                    HB_MAX_REPEAT, HB_MAX_REPEAT);
    if (k->max_iters < k->min_iters) {
        if (val[K_MAX_ITERS])
            return FAIL(K_MAX_ITERS, "%lld is less than min_iters %lld (accepted: max_iters >= min_iters)",
                        (long long)k->max_iters, (long long)k->min_iters);
        return FAIL(K_MIN_ITERS, "%lld is more than max_iters %lld (accepted: min_iters <= max_iters)",
                    (long long)k->min_iters, (long long)k->max_iters);
    }
    if (k->workload == HB_WL_SERVE && (c->serve_requests += hb_case_serve_requests(k)) > MAX_PLAN_REQUESTS) {
        const int key = val[K_REQUESTS] ? K_REQUESTS : K_CONCURRENCY;
        if (!val[key])
            return hb_errf(c->err, HB_ERR_INPUT, "plan: the serve cases hold more than %d requests in all",
                           MAX_PLAN_REQUESTS);
        return FAIL(key, "the plan's serve cases hold more than %d requests in all (accepted: at most %d, "
                    "requests or 10 x concurrency summed over the cases)", MAX_PLAN_REQUESTS, MAX_PLAN_REQUESTS);
    }
    hb_err why = {{0}};
    hb_status rs = hb_case_resolve(k, &why);
    if (rs == HB_ERR_INPUT) {
        /* a size overflows: located at the largest integer the entry wrote (the likely culprit;
         * the message names the whole product) */
        int key = -1;
        for (int i = 0; i < N_KEYS; i++)
            if (val[i] && key_info[i].type == T_POS_INT && (key < 0 || val[i]->v.i > val[key]->v.i)) key = i;
        if (key < 0) return hb_errf(c->err, HB_ERR_INPUT, "plan: %s", why.msg);
        return FAIL(key, "%s", why.msg);
    }
#undef FAIL
    if (rs != HB_OK)
        return hb_errf(c->err, rs, "plan: no cost for workload %s: %s", wd->name, why.msg[0] ? why.msg : hb_status_str(rs));
    return HB_OK;
}

/* Odometer over the slots, first slot outermost; a combination is kept only if every slot
 * that does not apply to its workload sits at its first item. */
static hb_status enumerate(ctx *c, const slots *s, int depth, int *idx, hb_plan *out) {
    if (depth == s->n) {
        hb_case *k = &out->cases[out->n_cases];
        HB_TRY(build_case(c, s, idx, k));
        k->id = out->n_cases++;
        return HB_OK;
    }
    const pval *pv = s->v[depth];
    for (int j = 0; j < pv->n; j++) {
        idx[depth] = j;
        if (depth == s->wl) {
            int w = pv->items[j].v.e, ok = 1;
            for (int d = 0; d < depth && ok; d++) ok = idx[d] == 0 || applies(c, s->v[d]->key, w);
            if (!ok) continue;
        } else if (j > 0 && s->wl >= 0 && s->wl < depth && !applies(c, pv->key, s->v[s->wl]->items[idx[s->wl]].v.e)) {
            break;
        }
        HB_TRY(enumerate(c, s, depth + 1, idx, out));
    }
    return HB_OK;
}

/* ---- canonical YAML ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if (b->p && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
}

/* Shortest text that reads back to the same value. */
static const char *fmt_double(double v, char buf[40]) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, 40, "%.0f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}
static const char *fmt_float(float v, char buf[40]) {
    if (v == floorf(v) && fabsf(v) < 1e15f) {
        snprintf(buf, 40, "%.0f", (double)v);
        return buf;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, 40, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* ", key: "path"" as a YAML double-quoted scalar (parse_item refused control characters). */
static void emit_path(sbuf *b, const char *key, const char *path) {
    sb_printf(b, ", %s: \"", key);
    for (const char *q = path; *q; q++) sb_printf(b, "%s%c", *q == '"' || *q == '\\' ? "\\" : "", *q);
    sb_printf(b, "\"");
}

/* ", <key>: <value>" of one of a workload's own keys, as the case holds it. */
static void emit_key(sbuf *b, const hb_case *k, int key) {
    char f[40];
    switch (key) {
    case K_MODEL: /* a model read from the checkpoint's config.json is read from it again */
        if (!k->weights_model) sb_printf(b, ", model: %s", k->model.name);
        break;
    case K_WEIGHTS:
        if (k->weights[0]) emit_path(b, "weights", k->weights);
        break;
    case K_PROMPT_TOKENS:
        if (k->prompt_tokens[0]) emit_path(b, "prompt_tokens", k->prompt_tokens);
        break;
    case K_LAYERS: sb_printf(b, ", layers: %lld", (long long)k->model.n_layers); break;
    case K_DTYPE: sb_printf(b, ", dtype: %s", hb_case_dtype_name(k)); break;
    case K_KV_DTYPE: /* only where they matter: a plan written before them reads the same */
        if (k->kv_dtype != HB_KV_AUTO) sb_printf(b, ", kv_dtype: %s", hb_kvt_name(k->kv_dtype));
        break;
    case K_QUANT_BLOCK:
        if (k->quant == HB_QUANT_BLOCK) sb_printf(b, ", quant_block: %lld", (long long)k->quant_block);
        break;
    case K_BATCH: sb_printf(b, ", batch: %lld", (long long)k->batch); break;
    case K_PROMPT: sb_printf(b, ", prompt: %lld", (long long)k->prompt); break;
    case K_GEN: sb_printf(b, ", gen: %lld", (long long)k->gen); break;
    case K_SEQ: sb_printf(b, ", seq: %lld", (long long)k->seq); break;
    case K_M: sb_printf(b, ", m: %lld", (long long)k->m); break;
    case K_N: sb_printf(b, ", n: %lld", (long long)k->n); break;
    case K_K: sb_printf(b, ", k: %lld", (long long)k->k); break;
    case K_STREAM_N: sb_printf(b, ", stream_n: %lld", (long long)k->stream_n); break;
    case K_STREAM_OP: sb_printf(b, ", stream_op: %s", hb_stream_op_name(k->stream_op)); break;
    case K_TEMPERATURE: sb_printf(b, ", temperature: %s", fmt_float(k->temperature, f)); break;
    case K_LR: sb_printf(b, ", lr: %s", fmt_float(k->lr, f)); break;
    case K_BETA1: sb_printf(b, ", beta1: %s", fmt_float(k->beta1, f)); break;
    case K_BETA2: sb_printf(b, ", beta2: %s", fmt_float(k->beta2, f)); break;
    case K_EPS: sb_printf(b, ", eps: %s", fmt_float(k->eps, f)); break;
    case K_WEIGHT_DECAY: sb_printf(b, ", weight_decay: %s", fmt_float(k->weight_decay, f)); break;
    case K_GRAD_ACCUM: sb_printf(b, ", grad_accum: %lld", (long long)k->grad_accum); break;
    case K_DATA:
        if (k->data == HB_DATA_FILE) emit_path(b, "data", k->data_path);
        else sb_printf(b, ", data: %s", hb_train_data_name(k->data));
        break;
    case K_DP: sb_printf(b, ", dp: %lld", (long long)k->dp); break;
    case K_RECOMPUTE: /* only where set: plans without it read as before */
        if (k->recompute != HB_RECOMPUTE_NONE) sb_printf(b, ", recompute: %s", hb_recompute_name(k->recompute));
        break;
    case K_TP: /* only where set: plans without model parallelism read as before */
        if (k->tp > 1) sb_printf(b, ", tp: %lld", (long long)k->tp);
        break;
    case K_EP:
        if (k->ep > 1) sb_printf(b, ", ep: %lld", (long long)k->ep);
        break;
    case K_COLLECTIVE: sb_printf(b, ", collective: %s", hb_comm_op_name(k->coll_op)); break;
    case K_COLL_BYTES: sb_printf(b, ", coll_bytes: %lld", (long long)k->coll_bytes); break;
    case K_IN_PLACE: sb_printf(b, ", in_place: %lld", (long long)k->in_place); break;
    case K_COLL_RANKS: sb_printf(b, ", coll_ranks: %lld", (long long)k->coll_ranks); break;
    case K_DENSE_TWIN: /* only where set: dense plans read as before */
        if (k->model.dense_twin) sb_printf(b, ", dense_twin: %s", hb_twin_name(k->model.dense_twin));
        break;
    case K_ROUTING:
        if (k->routing == HB_ROUTING_BALANCED) sb_printf(b, ", routing: balanced");
        else if (k->routing == HB_ROUTING_ZIPF) sb_printf(b, ", routing: zipf:%s", fmt_float(k->zipf_s, f));
        break;
    case K_ISL: sb_printf(b, ", isl: %lld", (long long)k->isl); break;
    case K_OSL: sb_printf(b, ", osl: %lld", (long long)k->osl); break;
    case K_RANGE_RATIO: sb_printf(b, ", range_ratio: %.17g", k->range_ratio); break;
    case K_REQUESTS: sb_printf(b, ", requests: %lld", (long long)k->requests); break;
    case K_CONCURRENCY: sb_printf(b, ", concurrency: %lld", (long long)k->concurrency); break;
    case K_ARRIVAL:
        if (k->arrival_rate > 0) sb_printf(b, ", arrival: poisson:%.17g", k->arrival_rate);
        else if (k->arrival_rate == HB_SERVE_RATE_SEARCH) sb_printf(b, ", arrival: search");
        else sb_printf(b, ", arrival: closed");
        break;
    case K_MAX_BATCH_TOKENS: sb_printf(b, ", max_batch_tokens: %lld", (long long)k->max_batch_tokens); break;
    case K_MAX_SEQS: sb_printf(b, ", max_seqs: %lld", (long long)k->max_seqs); break;
    case K_KV_BLOCKS: sb_printf(b, ", kv_blocks: %lld", (long long)k->kv_blocks); break;
    case K_KV_BLOCK_SIZE: sb_printf(b, ", kv_block_size: %lld", (long long)k->kv_block_size); break;
    case K_SLO_TTFT_S: sb_printf(b, ", slo_ttft_s: %.17g", k->slo_ttft_s); break;
    case K_SLO_TPOT_S: sb_printf(b, ", slo_tpot_s: %.17g", k->slo_tpot_s); break;
    default: break; /* the keys every workload takes are written after these */
    }
}

static char *emit_yaml(const ctx *c, const hb_plan *p) {
    sbuf b = {0};
    char f1[40], f2[40];
    sb_printf(&b, "# hetbench plan, expanded: %d case%s\n", p->n_cases, p->n_cases == 1 ? "" : "s");
    int any = 0;
    for (int i = 0; i < c->n_models; i++) {
        const hb_model *m = &c->models[i].m;
        if (!c->models[i].used) continue;
        if (!any++) sb_printf(&b, "models:\n");
        sb_printf(&b, "  %s: {dim: %lld, layers: %lld, heads: %lld, kv_heads: %lld, ffn_dim: %lld, "
                  "vocab: %lld, max_seq: %lld, norm: %s, activation: %s, positions: %s, "
                  "tied_embeddings: %s, bias: %s, rope_theta: %s, norm_eps: %s",
                  m->name, (long long)m->dim, (long long)m->n_layers_full, (long long)m->n_heads,
                  (long long)m->n_kv_heads, (long long)m->ffn_dim, (long long)m->vocab,
                  (long long)m->max_seq, hb_norm_name(m->norm), hb_act_name(m->act), hb_pos_name(m->pos),
                  m->tied ? "true" : "false", m->bias ? "true" : "false", fmt_float(m->rope_theta, f1),
                  fmt_float(m->norm_eps, f2));
        if (m->head_dim) sb_printf(&b, ", head_dim: %lld", (long long)m->head_dim);
        if (m->n_experts)
            sb_printf(&b, ", experts: %lld, top_k: %lld, shared_experts: %lld, moe_ffn_dim: %lld, "
                      "first_k_dense: %lld, router: %s, router_bias: %s, n_group: %lld, topk_group: %lld, "
                      "norm_topk_prob: %s, routed_scaling_factor: %s", (long long)m->n_experts,
                      (long long)m->top_k, (long long)m->n_shared, (long long)m->moe_ffn_dim,
                      (long long)m->first_k_dense, hb_router_name(m->router), m->router_bias ? "true" : "false",
                      (long long)(m->n_group > 0 ? m->n_group : 1), (long long)(m->topk_group > 0 ? m->topk_group : 1),
                      m->norm_topk ? "true" : "false", fmt_float(m->routed_scale, f1));
        if (m->kv_lora_rank)
            sb_printf(&b, ", q_lora_rank: %lld, kv_lora_rank: %lld, qk_nope_dim: %lld, qk_rope_dim: %lld, "
                      "v_head_dim: %lld", (long long)m->q_lora_rank, (long long)m->kv_lora_rank,
                      (long long)m->qk_nope_dim, (long long)m->qk_rope_dim, (long long)m->v_head_dim);
        sb_printf(&b, "}\n");
    }
    sb_printf(&b, "cases:\n");
    for (int i = 0; i < p->n_cases; i++) {
        const hb_case *k = &p->cases[i];
        const hb_workload_desc *wd = hb_workload_desc_of(k->workload);
        sb_printf(&b, "  - {id: %d, workload: %s", (int)k->id, wd->name);
        for (const char *const *name = wd->plan_keys; *name; name++) emit_key(&b, k, lookup_key(*name));
        sb_printf(&b, ", seed: %llu, warmup: %lld, min_iters: %lld, min_seconds: %s, max_iters: %lld",
                  (unsigned long long)k->seed, (long long)k->warmup_iters, (long long)k->min_iters,
                  fmt_double(k->min_seconds, f1), (long long)k->max_iters);
        if (k->repeat > 1) sb_printf(&b, ", repeat: %lld", (long long)k->repeat);
        sb_printf(&b, "}\n");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Entries (with defaults and overrides) -> out. */
static hb_status expand(ctx *c, hb_plan *out) {
    slots *s = ctx_alloc(c, (size_t)c->n_entries, sizeof *s);
    if (!s) return oom(c);
    int64_t total = 0;
    for (int i = 0; i < c->n_entries; i++) {
        HB_TRY(entry_slots(c, &c->entries[i], &s[i]));
        total += slots_count(c, &s[i]);
        if (total > MAX_CASES) {
            if (c->source)
                return loc_err(c->err, c->source, c->entries[i].line, "cases",
                               "the plan expands to more than %d cases (accepted: at most %d)", MAX_CASES,
                               MAX_CASES);
            int longest = 0;
            for (int j = 1; j < s[i].n; j++)
                if (s[i].v[j]->n > s[i].v[longest]->n) longest = j;
            return loc_err(c->err, NULL, 0, key_names[s[i].v[longest]->key],
                           "the lists expand to more than %d cases (accepted: at most %d)", MAX_CASES, MAX_CASES);
        }
    }
    out->cases = calloc((size_t)(total ? total : 1), sizeof *out->cases);
    if (!out->cases) return oom(c);
    for (int i = 0; i < c->n_entries; i++) {
        int idx[N_KEYS] = {0};
        HB_TRY(enumerate(c, &s[i], 0, idx, out));
    }
    if (out->n_cases != total) return hb_errf(c->err, HB_ERR_INTERNAL, "plan: expanded %d cases, counted %lld",
                                              out->n_cases, (long long)total);
    out->yaml = emit_yaml(c, out);
    if (!out->yaml) return oom(c);
    return HB_OK;
}

/* ---- entry points ---- */

static hb_status parse_overrides(ctx *c, const hb_kv *kv, int n) {
    if (n <= 0) return HB_OK;
    c->overrides = ctx_alloc(c, 1, sizeof *c->overrides);
    if (!c->overrides) return oom(c);
    return cli_entry(c, kv, n, c->overrides);
}

hb_status hb_plan_from_args(const hb_kv *kv, int n, hb_plan *out, hb_err *err) {
    memset(out, 0, sizeof *out);
    ctx c;
    ctx_init(&c, NULL, err);
    hb_status st = HB_OK;
    c.entries = ctx_alloc(&c, 1, sizeof *c.entries);
    if (!c.entries) st = oom(&c);
    if (st == HB_OK) {
        c.n_entries = 1;
        st = cli_entry(&c, kv, n > 0 ? n : 0, &c.entries[0]);
    }
    if (st == HB_OK) st = expand(&c, out);
    ctx_free(&c);
    if (st != HB_OK) hb_plan_free(out);
    return st;
}

static hb_status syntax_error(ctx *c, const yaml_parser_t *parser) {
    if (parser->error == YAML_MEMORY_ERROR) return oom(c);
    char ctxt[160] = "";
    if (parser->context)
        snprintf(ctxt, sizeof ctxt, " %s (line %d)", parser->context, (int)parser->context_mark.line + 1);
    return hb_errf(c->err, HB_ERR_INPUT, "%s:%d: YAML syntax error: %s%s", c->source,
                   (int)parser->problem_mark.line + 1, parser->problem ? parser->problem : "invalid YAML", ctxt);
}

/* Nesting checked with libyaml's event API before the document is loaded: the scanner's time
 * is quadratic in the depth, so the document API spent seconds on a deep file before anything
 * here could refuse it; events stop at the first level too many. */
static hb_status check_depth(ctx *c, const char *text, size_t len) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return oom(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    hb_status st = HB_OK;
    for (int depth = 0, done = 0; st == HB_OK && !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) break; /* the syntax error is reported by the real load */
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > MAX_PLAN_DEPTH)
                st = hb_errf(c->err, HB_ERR_INPUT, "%s:%d: nested too deeply (accepted: %d levels)", c->source,
                             (int)ev.start_mark.line + 1, MAX_PLAN_DEPTH);
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (ev.type == YAML_STREAM_END_EVENT) {
            done = 1;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return st;
}

static hb_status from_text(const char *text, size_t len, const char *source, const hb_kv *overrides,
                           int n_overrides, hb_plan *out, hb_err *err) {
    memset(out, 0, sizeof *out);
    ctx c;
    ctx_init(&c, source ? source : "<string>", err);
    if (len > MAX_PLAN_BYTES) {
        ctx_free(&c);
        return hb_errf(err, HB_ERR_INPUT, "%s: larger than %zu MiB (accepted: a plan of at most %d cases)",
                       source ? source : "<string>", MAX_PLAN_BYTES >> 20, MAX_CASES);
    }
    yaml_parser_t parser;
    yaml_document_t doc, next;
    int have_parser = 0, have_doc = 0;
    hb_status st = parse_overrides(&c, overrides, n_overrides);
    if (st == HB_OK) st = check_depth(&c, text, len);
    if (st == HB_OK) {
        if (!yaml_parser_initialize(&parser)) st = oom(&c);
        else have_parser = 1;
    }
    if (st == HB_OK) {
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) st = syntax_error(&c, &parser);
        else have_doc = 1;
    }
    if (st == HB_OK) {
        /* One document per plan: a second one would be silently ignored otherwise. */
        if (!yaml_parser_load(&parser, &next)) {
            st = syntax_error(&c, &parser);
        } else {
            yaml_node_t *r = yaml_document_get_root_node(&next);
            if (r)
                st = hb_errf(err, HB_ERR_INPUT, "%s:%d: a second YAML document (accepted: one plan per file)",
                             c.source, node_line(r));
            yaml_document_delete(&next);
        }
    }
    if (st == HB_OK) st = yaml_plan(&c, &doc);
    if (st == HB_OK) st = expand(&c, out); /* item texts point into doc: expand before deleting it */
    if (have_doc) yaml_document_delete(&doc);
    if (have_parser) yaml_parser_delete(&parser);
    ctx_free(&c);
    if (st != HB_OK) hb_plan_free(out);
    return st;
}

hb_status hb_plan_from_string(const char *text, const char *source, const hb_kv *overrides,
                              int n_overrides, hb_plan *out, hb_err *err) {
    return from_text(text ? text : "", text ? strlen(text) : 0, source, overrides, n_overrides, out, err);
}

hb_status hb_plan_from_file(const char *path, const hb_kv *overrides, int n_overrides, hb_plan *out,
                            hb_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return hb_errf(err, HB_ERR_INPUT, "%s: cannot read: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    int e = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? 2 * cap : 16384;
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                fclose(f);
                return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", path);
            }
            text = p;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) e = errno ? errno : EIO;
            break;
        }
        if (len > MAX_PLAN_BYTES) break; /* refused by from_text, without reading the rest */
    }
    fclose(f);
    if (e) {
        free(text);
        return hb_errf(err, HB_ERR_INPUT, "%s: cannot read: %s", path, strerror(e));
    }
    hb_status st = from_text(text, len, path, overrides, n_overrides, out, err);
    free(text);
    return st;
}

void hb_plan_free(hb_plan *p) {
    if (!p) return;
    free(p->cases);
    free(p->yaml);
    memset(p, 0, sizeof *p);
}

const char *const *hb_plan_keys(int *n) {
    if (n) *n = N_KEYS;
    return key_names;
}
