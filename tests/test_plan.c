/* test_plan.c - plans: expansion order and counts, defaults, custom models, layers override,
 * command-line keys and overrides, the canonical YAML round trip, and every kind of bad input
 * (status HB_ERR_INPUT, one-line message naming file, line and field).
 * Optional argv[1]: the directory of the shipped plans (workloads/plans). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/plan.h"
#include "hbtest.h"

static char tmpdir[64];

/* Writes text to <tmpdir>/<name>; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static hb_status load(const char *text, hb_plan *p, hb_err *e) {
    e->msg[0] = '\0';
    return hb_plan_from_file(write_file("plan.yaml", text), NULL, 0, p, e);
}

#define MAX_TEST_CASES 100000 /* plan.c's MAX_CASES */

static int plan_is_zero(const hb_plan *p) { return p->n_cases == 0 && !p->cases && !p->yaml; }

/* A bad plan: HB_ERR_INPUT, a one-line message containing `want`, and nothing left in *p. */
#define BAD(text, want) bad_plan(__LINE__, text, NULL, 0, want)
#define BAD_OV(text, ov, n, want) bad_plan(__LINE__, text, ov, n, want)
static void bad_plan(int line, const char *text, const hb_kv *ov, int n, const char *want) {
    hb_plan p;
    hb_err e = {{0}};
    hb_status st = hb_plan_from_file(write_file("plan.yaml", text), ov, n, &p, &e);
    CHECK_MSG(st == HB_ERR_INPUT, "line %d: status %d, msg '%s'", line, (int)st, e.msg);
    CHECK_MSG(strstr(e.msg, want) != NULL, "line %d: message '%s' lacks '%s'", line, e.msg, want);
    CHECK_MSG(strchr(e.msg, '\n') == NULL, "line %d: message has a newline: '%s'", line, e.msg);
    CHECK_MSG(plan_is_zero(&p), "line %d: plan not zeroed on error", line);
    hb_plan_free(&p);
}

#define BAD_ARGS(kv, want) bad_args(__LINE__, kv, HB_ARRAY_LEN(kv), want)
static void bad_args(int line, const hb_kv *kv, int n, const char *want) {
    hb_plan p;
    hb_err e = {{0}};
    hb_status st = hb_plan_from_args(kv, n, &p, &e);
    CHECK_MSG(st == HB_ERR_INPUT, "line %d: status %d, msg '%s'", line, (int)st, e.msg);
    CHECK_MSG(strstr(e.msg, want) != NULL, "line %d: message '%s' lacks '%s'", line, e.msg, want);
    CHECK_MSG(strchr(e.msg, '\n') == NULL, "line %d: message has a newline", line);
    CHECK_MSG(plan_is_zero(&p), "line %d: plan not zeroed on error", line);
    hb_plan_free(&p);
}

static int model_eq(const hb_model *a, const hb_model *b) {
    return !strcmp(a->name, b->name) && a->dim == b->dim && a->n_layers == b->n_layers &&
           a->n_layers_full == b->n_layers_full && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim && a->vocab == b->vocab &&
           a->max_seq == b->max_seq && a->norm == b->norm && a->act == b->act && a->pos == b->pos &&
           a->tied == b->tied && a->bias == b->bias && a->rope_theta == b->rope_theta &&
           a->norm_eps == b->norm_eps && a->head_dim == b->head_dim && a->n_experts == b->n_experts &&
           a->top_k == b->top_k && a->n_shared == b->n_shared && a->moe_ffn_dim == b->moe_ffn_dim &&
           a->first_k_dense == b->first_k_dense && a->router == b->router && a->router_bias == b->router_bias &&
           (a->n_group > 1 ? a->n_group : 1) == (b->n_group > 1 ? b->n_group : 1) &&
           (a->n_group > 1 ? a->topk_group : 1) == (b->n_group > 1 ? b->topk_group : 1) &&
           a->norm_topk == b->norm_topk && a->routed_scale == b->routed_scale && a->dense_twin == b->dense_twin &&
           a->q_lora_rank == b->q_lora_rank && a->kv_lora_rank == b->kv_lora_rank && a->qk_nope_dim == b->qk_nope_dim &&
           a->qk_rope_dim == b->qk_rope_dim && a->v_head_dim == b->v_head_dim;
}

static int case_eq(const hb_case *a, const hb_case *b) {
    return a->id == b->id && a->workload == b->workload && model_eq(&a->model, &b->model) &&
           a->dtype == b->dtype && a->batch == b->batch && a->prompt == b->prompt && a->gen == b->gen &&
           a->seq == b->seq && a->m == b->m && a->n == b->n && a->k == b->k &&
           a->stream_n == b->stream_n && a->stream_op == b->stream_op && a->seed == b->seed &&
           a->temperature == b->temperature && a->warmup_iters == b->warmup_iters &&
           a->min_iters == b->min_iters && a->min_seconds == b->min_seconds &&
           a->max_iters == b->max_iters && a->routing == b->routing && a->zipf_s == b->zipf_s &&
           a->isl == b->isl && a->osl == b->osl && a->range_ratio == b->range_ratio && a->requests == b->requests &&
           a->concurrency == b->concurrency && a->arrival_rate == b->arrival_rate &&
           a->max_batch_tokens == b->max_batch_tokens && a->max_seqs == b->max_seqs && a->kv_blocks == b->kv_blocks &&
           a->kv_block_size == b->kv_block_size && a->slo_ttft_s == b->slo_ttft_s && a->slo_tpot_s == b->slo_tpot_s;
}

/* Every case carries the label and cost of its workload's descriptor (resolved at expansion). */
static void check_resolved(int line, const hb_plan *p) {
    for (int i = 0; i < p->n_cases; i++) {
        const hb_case *c = &p->cases[i];
        char label[HB_CASE_LABEL_LEN];
        hb_cost k;
        hb_case_label(c, label, sizeof label);
        CHECK_MSG(hb_case_cost(c, &k, NULL) == HB_OK, "line %d: case %d: no cost", line, i);
        CHECK_MSG(!strcmp(c->label, label) && label[0], "line %d: case %d: label '%s', expected '%s'", line, i,
                  c->label, label);
        CHECK_MSG(c->cost.flops == k.flops && c->cost.bytes == k.bytes && c->cost.tokens_in == k.tokens_in &&
                  c->cost.tokens_out == k.tokens_out && c->cost.mem_bytes == k.mem_bytes,
                  "line %d: case %d (%s): cost not resolved", line, i, label);
    }
}

/* Every plan key a workload descriptor names is a key of the plan. */
static void test_registry_keys(void) {
    int n_keys;
    const char *const *keys = hb_plan_keys(&n_keys);
    const hb_workload_desc *const *wl;
    int n = hb_workload_descs(&wl);
    for (int w = 0; w < n; w++)
        for (const char *const *k = wl[w]->plan_keys; *k; k++) {
            int found = 0;
            for (int i = 0; i < n_keys; i++) found |= !strcmp(*k, keys[i]);
            CHECK_MSG(found, "workload %s: plan key '%s' is not a key of harness/plan.c", wl[w]->name, *k);
        }
}

/* p->yaml parses back to the same cases and the same text. */
#define ROUNDTRIP(p) roundtrip(__LINE__, p)
static void roundtrip(int line, const hb_plan *p) {
    hb_plan q;
    hb_err e = {{0}};
    check_resolved(line, p);
    hb_status st = hb_plan_from_string(p->yaml, "canonical", NULL, 0, &q, &e);
    CHECK_MSG(st == HB_OK, "line %d: canonical YAML does not parse: %s\n%s", line, e.msg, p->yaml);
    if (st != HB_OK) return;
    CHECK_MSG(q.n_cases == p->n_cases, "line %d: %d cases, then %d", line, p->n_cases, q.n_cases);
    for (int i = 0; i < p->n_cases && i < q.n_cases; i++)
        CHECK_MSG(case_eq(&p->cases[i], &q.cases[i]), "line %d: case %d differs after the round trip", line, i);
    CHECK_MSG(!strcmp(p->yaml, q.yaml), "line %d: canonical text changed:\n%s\n---\n%s", line, p->yaml, q.yaml);
    hb_plan_free(&q);
}

static void test_expansion_order(void) {
    hb_plan p;
    hb_err e;
    hb_status st = load("cases:\n"
                        "  - workload: decode\n"
                        "    model: llama3-8b\n"
                        "    layers: 2\n"
                        "    dtype: [f32, bf16]\n"
                        "    batch: [1, 8]\n"
                        "    prompt: 128\n"
                        "    gen: 32\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 4);
    const hb_dtype dt[4] = {HB_F32, HB_F32, HB_BF16, HB_BF16};
    const int64_t b[4] = {1, 8, 1, 8};
    for (int i = 0; i < p.n_cases && i < 4; i++) {
        const hb_case *c = &p.cases[i];
        CHECK(c->id == i);
        CHECK(c->workload == HB_WL_DECODE);
        CHECK(c->dtype == dt[i]);
        CHECK(c->batch == b[i]);
        CHECK(c->prompt == 128 && c->gen == 32);
        CHECK_STR(c->model.name, "llama3-8b");
        CHECK(c->model.n_layers == 2 && c->model.n_layers_full == 32);
        CHECK(c->model.dim == 4096 && c->model.n_kv_heads == 8);
        CHECK(c->seed == 1234 && c->warmup_iters == 2 && c->min_iters == 5 && c->max_iters == 100000);
        CHECK(c->min_seconds == 1.0 && c->temperature == 0.0f);
        CHECK(c->m == 0 && c->n == 0 && c->k == 0 && c->stream_n == 0 && c->seq == 0);
    }
    if (p.yaml) {
        CHECK(strstr(p.yaml, "{id: 0, workload: decode, model: llama3-8b, layers: 2, dtype: f32, batch: 1, "
                             "prompt: 128, gen: 32") != NULL);
        CHECK(strstr(p.yaml, "models:") == NULL); /* presets only */
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);
    CHECK(plan_is_zero(&p));
    hb_plan_free(&p); /* twice is fine */
    hb_plan_free(NULL);

    /* key order decides nesting: batch first is outermost */
    st = load("cases:\n  - {workload: prefill, batch: [1, 8], dtype: [f32, bf16]}\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 4);
    if (p.n_cases == 4) {
        CHECK(p.cases[0].batch == 1 && p.cases[0].dtype == HB_F32);
        CHECK(p.cases[1].batch == 1 && p.cases[1].dtype == HB_BF16);
        CHECK(p.cases[2].batch == 8 && p.cases[2].dtype == HB_F32);
        CHECK(p.cases[3].batch == 8 && p.cases[3].dtype == HB_BF16);
        CHECK_STR(p.cases[0].model.name, "tiny"); /* default model */
        CHECK(p.cases[0].gen == 0);               /* prefill does not use gen */
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    /* several entries: ids continue; duplicates are kept */
    st = load("cases:\n"
              "  - workload: gemm\n"
              "    m: [64, 64]\n"
              "  - workload: stream\n"
              "  - workload: [gemm, stream]\n"
              "    dtype: [f32, bf16]\n"
              "    stream_op: [copy, triad]\n"
              "  - dtype: [f16, bf16]\n"
              "    workload: [gemm, stream]\n"
              "    stream_op: [copy, triad]\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 3 + 4 + 4);
    if (p.n_cases == 11) {
        for (int i = 0; i < 11; i++) CHECK(p.cases[i].id == i);
        CHECK(p.cases[0].workload == HB_WL_GEMM && p.cases[0].m == 64 && p.cases[0].n == 1024 &&
              p.cases[0].k == 1024 && p.cases[0].dtype == HB_F32);
        CHECK(p.cases[1].m == 64);
        CHECK(p.cases[2].workload == HB_WL_STREAM && p.cases[2].stream_n == 33554432 &&
              p.cases[2].stream_op == HB_STREAM_TRIAD && p.cases[2].m == 0);
        /* workload outermost: gemm f32, gemm bf16 (stream_op does not apply), stream copy, triad */
        CHECK(p.cases[3].workload == HB_WL_GEMM && p.cases[3].dtype == HB_F32);
        CHECK(p.cases[4].workload == HB_WL_GEMM && p.cases[4].dtype == HB_BF16);
        CHECK(p.cases[5].workload == HB_WL_STREAM && p.cases[5].stream_op == HB_STREAM_COPY);
        CHECK(p.cases[6].workload == HB_WL_STREAM && p.cases[6].stream_op == HB_STREAM_TRIAD);
        /* dtype outermost: f16 gemm, stream copy, stream triad, then bf16 gemm only */
        CHECK(p.cases[7].workload == HB_WL_GEMM && p.cases[7].dtype == HB_F16);
        CHECK(p.cases[8].workload == HB_WL_STREAM && p.cases[8].stream_op == HB_STREAM_COPY);
        CHECK(p.cases[9].workload == HB_WL_STREAM && p.cases[9].stream_op == HB_STREAM_TRIAD);
        CHECK(p.cases[10].workload == HB_WL_GEMM && p.cases[10].dtype == HB_BF16);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    /* every key at once, odd-but-valid values */
    st = load("cases:\n"
              "  - workload: decode\n"
              "    model: gpt2-124m\n"
              "    dtype: fp16\n"             /* alias */
              "    batch: 3\n"
              "    prompt: 17\n"
              "    gen: 5\n"
              "    layers: 12\n"
              "    seed: 18446744073709551615\n"
              "    temperature: 0.7\n"
              "    warmup: 0\n"
              "    min_iters: 1\n"
              "    min_seconds: 0.3\n"
              "    max_iters: 1\n"
              /* 2^62, the largest a key takes (as max_iters); m = 2^56 keeps every buffer of the
               * gemm under 2^63 bytes (2^62 would overflow, checked in test_size_overflow) */
              "  - {workload: gemm, m: 72057594037927936, n: '7', k: +9, seed: 0, max_iters: 4611686018427387904}\n",
              &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 2);
    if (p.n_cases == 2) {
        const hb_case *c = &p.cases[0];
        CHECK(c->dtype == HB_F16 && c->batch == 3 && c->prompt == 17 && c->gen == 5);
        CHECK(c->model.n_layers == 12 && c->model.n_layers_full == 12);
        CHECK(c->seed == UINT64_MAX);
        CHECK(c->temperature == 0.7f);
        CHECK(c->warmup_iters == 0 && c->min_iters == 1 && c->max_iters == 1);
        CHECK(c->min_seconds == 0.3);
        CHECK(p.cases[1].m == ((int64_t)1 << 56) && p.cases[1].n == 7 && p.cases[1].k == 9);
        CHECK(p.cases[1].max_iters == ((int64_t)1 << 62));
        CHECK(p.cases[1].cost.mem_bytes == ((int64_t)1 << 56) * (9 * 4 + 7 * 4) + 7 * 9 * 4);
        CHECK(p.cases[1].seed == 0);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);
}

static void test_defaults(void) {
    hb_plan p;
    hb_err e;
    /* m and stream_n in defaults do not apply to decode: no error, used where they apply */
    hb_status st = load("defaults:\n"
                        "  min_seconds: 0.25\n"
                        "  warmup: 3\n"
                        "  dtype: bf16\n"
                        "  gen: 8\n"
                        "  m: 256\n"
                        "  seq: 64\n"
                        "  batch: [1, 2]\n"
                        "cases:\n"
                        "  - workload: gemm\n"
                        "    n: 128\n"
                        "  - workload: decode\n"
                        "    warmup: 7\n"
                        "  - workload: stream\n"
                        "    stream_n: 1000\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 + 2 + 1);
    if (p.n_cases == 4) {
        const hb_case *g = &p.cases[0], *d1 = &p.cases[1], *d2 = &p.cases[2], *s = &p.cases[3];
        CHECK(g->workload == HB_WL_GEMM && g->m == 256 && g->n == 128 && g->k == 1024);
        CHECK(g->dtype == HB_BF16 && g->min_seconds == 0.25 && g->warmup_iters == 3);
        CHECK(g->gen == 0 && g->batch == 0);
        CHECK(d1->workload == HB_WL_DECODE && d1->batch == 1 && d2->batch == 2);
        CHECK(d1->gen == 8 && d1->dtype == HB_BF16 && d1->warmup_iters == 7 && d1->m == 0);
        CHECK(d1->min_seconds == 0.25);
        CHECK(s->workload == HB_WL_STREAM && s->stream_n == 1000 && s->dtype == HB_F32 && s->warmup_iters == 3);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    /* workload in defaults; empty defaults and models sections */
    st = load("models:\ndefaults:\n  workload: stream\ncases:\n  - stream_op: copy\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 && p.cases && p.cases[0].workload == HB_WL_STREAM &&
          p.cases[0].stream_op == HB_STREAM_COPY);
    hb_plan_free(&p);
}

static void test_custom_models(void) {
    hb_plan p;
    hb_err e;
    hb_status st = load("models:\n"
                        "  my-110m:\n"
                        "    dim: 768\n"
                        "    layers: 12\n"
                        "    heads: 12\n"
                        "    ffn_dim: 2048\n"
                        "    vocab: 32000\n"
                        "    max_seq: 1024\n"
                        "    norm: rmsnorm\n"
                        "    activation: swiglu\n"
                        "    positions: rope\n"
                        "    tied_embeddings: no\n"
                        "  short-llama:\n"
                        "    base: llama3-8b\n"
                        "    layers: 4\n"
                        "    max_seq: 512\n"
                        "    norm_eps: 1e-6\n"
                        "  gpt-ish:\n"
                        "    dim: 96\n"
                        "    layers: 3\n"
                        "    heads: 6\n"
                        "    kv_heads: 2\n"
                        "    ffn_dim: 384\n"
                        "    vocab: 500\n"
                        "    max_seq: 300\n"
                        "    norm: layernorm\n"
                        "    activation: gelu\n"
                        "    positions: learned\n"
                        "    tied_embeddings: true\n"
                        "    bias: yes\n"
                        "    rope_theta: 0\n"
                        "    norm_eps: 0.001\n"
                        "  unused-one: {base: tiny}\n"
                        "cases:\n"
                        "  - workload: prefill\n"
                        "    model: [my-110m, short-llama, gpt-ish]\n"
                        "    prompt: 200\n"
                        "  - workload: decode\n"
                        "    model: short-llama\n"
                        "    layers: 2\n"
                        "    prompt: 500\n"
                        "    gen: 12\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 4);
    if (p.n_cases == 4) {
        const hb_model *a = &p.cases[0].model, *b = &p.cases[1].model, *g = &p.cases[2].model,
                       *d = &p.cases[3].model;
        CHECK_STR(a->name, "my-110m");
        CHECK(a->dim == 768 && a->n_layers == 12 && a->n_layers_full == 12 && a->n_heads == 12);
        CHECK(a->n_kv_heads == 12); /* default: heads */
        CHECK(a->ffn_dim == 2048 && a->vocab == 32000 && a->max_seq == 1024);
        CHECK(a->norm == HB_NORM_RMSNORM && a->act == HB_ACT_SWIGLU && a->pos == HB_POS_ROPE);
        CHECK(a->tied == 0 && a->bias == 0 && a->rope_theta == 10000.0f && a->norm_eps == 1e-5f);
        CHECK_STR(b->name, "short-llama");
        CHECK(b->dim == 4096 && b->n_heads == 32 && b->n_kv_heads == 8 && b->ffn_dim == 14336);
        CHECK(b->n_layers == 4 && b->n_layers_full == 4 && b->max_seq == 512);
        CHECK(b->rope_theta == 500000.0f && b->norm_eps == 1e-6f);
        CHECK_STR(g->name, "gpt-ish");
        CHECK(g->n_kv_heads == 2 && g->norm == HB_NORM_LAYERNORM && g->act == HB_ACT_GELU);
        CHECK(g->pos == HB_POS_LEARNED && g->tied == 1 && g->bias == 1 && g->norm_eps == 0.001f);
        CHECK_STR(d->name, "short-llama");
        CHECK(d->n_layers == 2 && d->n_layers_full == 4);
        CHECK(p.cases[3].prompt + p.cases[3].gen == 512); /* exactly max_seq is fine */
    }
    if (p.yaml) {
        CHECK(strstr(p.yaml, "models:\n") != NULL);
        CHECK(strstr(p.yaml, "  short-llama: {dim: 4096, layers: 4,") != NULL);
        CHECK(strstr(p.yaml, "my-110m:") != NULL && strstr(p.yaml, "gpt-ish:") != NULL);
        CHECK(strstr(p.yaml, "unused-one") == NULL);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);
}

/* MoE: a custom MoE model, the dense twins, the routing key; their bad input. */
/* serve: its keys, defaults, the canonical YAML, and every bad input naming its key. */
static void test_serve(void) {
    hb_plan p;
    hb_err e = {{0}};
    hb_status st = load("cases:\n"
                        "  - workload: serve\n"
                        "    model: tiny\n"
                        "    isl: 64\n"
                        "    osl: 16\n"
                        "    concurrency: [1, 4]\n"
                        "  - workload: serve\n"
                        "    isl: 32\n"
                        "    arrival: poisson:2.5\n"
                        "    slo_ttft_s: 2\n"
                        "    slo_tpot_s: 0.2\n"
                        "    range_ratio: 1\n"
                        "    kv_blocks: 40\n"
                        "  - workload: serve\n"
                        "    arrival: search\n"
                        "    slo_tpot_s: 0.1\n",
                        &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    if (st == HB_OK) {
        CHECK(p.n_cases == 4);
        CHECK(p.cases[3].arrival_rate == HB_SERVE_RATE_SEARCH && strstr(p.cases[3].label, "rate=search"));
        const hb_case *a = &p.cases[0], *b = &p.cases[1], *c = &p.cases[2];
        CHECK(a->isl == 64 && a->osl == 16 && a->concurrency == 1 && b->concurrency == 4);
        CHECK(a->range_ratio == 0.8 && a->requests == 0 && hb_case_serve_requests(b) == 40);
        CHECK(a->max_batch_tokens == 2048 && a->max_seqs == 256 && a->kv_blocks == 0 && a->kv_block_size == 16);
        CHECK(a->arrival_rate == 0 && c->arrival_rate == 2.5 && c->slo_ttft_s == 2 && c->slo_tpot_s == 0.2);
        CHECK(c->osl == 32 && c->kv_blocks == 40 && c->range_ratio == 1);
        CHECK_MSG(!strcmp(b->label, "serve tiny f32 isl=64 osl=16 C=4 N=40"), "%s", b->label);
        CHECK_MSG(strstr(c->label, "poisson:2.5"), "%s", c->label);
        /* requests x osl output tokens; the inputs drawn in [0.8 isl, isl] */
        CHECK(a->cost.tokens_out == 10 * 16 && a->cost.tokens_in >= 10 * 52 && a->cost.tokens_in <= 10 * 64);
        CHECK(c->cost.tokens_in == 10 * 32); /* range_ratio 1: every input isl long */
        ROUNDTRIP(&p);
        hb_plan_free(&p);
    }
    const char *h = "cases:\n  - workload: serve\n    model: tiny\n";
    char buf[512];
#define SERVE_BAD(extra, want)                         \
    do {                                               \
        snprintf(buf, sizeof buf, "%s%s", h, extra);   \
        BAD(buf, want);                                \
    } while (0)
    SERVE_BAD("    isl: 250\n    osl: 7\n", "plan.yaml:5: field 'osl': isl 250 + osl 7 exceeds max_seq 256");
    SERVE_BAD("    concurrency: 0\n", "plan.yaml:4: field 'concurrency': '0' is not a positive integer");
    SERVE_BAD("    concurrency: 8\n    requests: 4\n", "plan.yaml:5: field 'requests': requests 4 is less than concurrency 8");
    /* bounded before the cost walks the requests (a fuzzer's plan of requests: 1e10 ran for minutes) */
    SERVE_BAD("    requests: 10000000000\n", "plan.yaml:4: field 'requests': requests 10000000000 is too many "
              "(accepted: requests 0 to 1000000, concurrency 1 to 100000)");
    SERVE_BAD("    concurrency: 4611686018427387904\n", "plan.yaml:4: field 'concurrency': concurrency "
              "4611686018427387904 is too many");
    SERVE_BAD("    requests: 1000000\n    seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n",
              "plan.yaml:4: field 'requests': the plan's serve cases hold more than 10000000 requests in all");
    SERVE_BAD("    range_ratio: 0\n", "plan.yaml:4: field 'range_ratio': range_ratio 0 is outside (0, 1]");
    SERVE_BAD("    range_ratio: 1.5\n", "plan.yaml:4: field 'range_ratio': range_ratio 1.5 is outside (0, 1]");
    SERVE_BAD("    kv_blocks: 3\n", "plan.yaml:4: field 'kv_blocks': kv_blocks 3 of 16 tokens cannot hold one request");
    SERVE_BAD("    slo_ttft_s: 2\n", "plan.yaml:4: field 'slo_ttft_s': an SLO (slo_ttft_s, slo_tpot_s) needs Poisson arrivals");
    SERVE_BAD("    arrival: poisson:0\n", "plan.yaml:4: field 'arrival': 'poisson:0': the rate must be a number");
    SERVE_BAD("    arrival: open\n", "plan.yaml:4: field 'arrival'");
    SERVE_BAD("    arrival: search\n", "plan.yaml:4: field 'arrival': arrival: search needs an SLO");
    BAD("cases:\n  - workload: serve\n    model: tiny-mla\n    dtype: fp8-block\n",
        "plan.yaml:4: field 'dtype': serve: fp8-block weights are not supported yet");
#undef SERVE_BAD
    { /* learned positions serve (each segment embedded at its own positions) */
        hb_plan q;
        hb_err qe = {{0}};
        CHECK_MSG(load("cases:\n  - workload: serve\n    model: gpt2-124m\n    layers: 1\n", &q, &qe) == HB_OK, "%s", qe.msg);
        if (q.n_cases == 1) CHECK(q.cases[0].model.pos == HB_POS_LEARNED && q.cases[0].cost.flops > 0);
        hb_plan_free(&q);
    }
    const hb_kv kv[] = {{"workload", "serve"}, {"concurrency", "2"}, {"requests", "1"}};
    BAD_ARGS(kv, "--requests: requests 1 is less than concurrency 2");
}

static void test_moe(void) {
    hb_plan p;
    hb_err e = {{0}};
    hb_status st = load("models:\n"
                        "  ds-like:\n"
                        "    base: tiny\n"
                        "    head_dim: 32\n"
                        "    experts: 16\n"
                        "    top_k: 4\n"
                        "    shared_experts: 1\n"
                        "    moe_ffn_dim: 32\n"
                        "    first_k_dense: 1\n"
                        "    router: sigmoid\n"
                        "    router_bias: yes\n"
                        "    n_group: 4\n"
                        "    topk_group: 2\n"
                        "    norm_topk_prob: yes\n"
                        "    routed_scaling_factor: 2.5\n"
                        "cases:\n"
                        "  - workload: decode\n"
                        "    model: [ds-like, qwen3-30b-a3b]\n"
                        "    layers: 2\n"
                        "    dense_twin: [none, total, active]\n"
                        "    routing: [model, balanced, zipf:1.2]\n"
                        "    prompt: 8\n"
                        "    gen: 2\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 18);
    if (p.n_cases == 18) {
        const hb_model *m = &p.cases[0].model;
        CHECK(m->n_experts == 16 && m->top_k == 4 && m->n_shared == 1 && m->moe_ffn_dim == 32 &&
              m->first_k_dense == 1 && m->router == HB_ROUTER_SIGMOID && m->router_bias == 1 && m->n_group == 4 &&
              m->topk_group == 2 && m->norm_topk == 1 && m->routed_scale == 2.5f && m->head_dim == 32);
        CHECK(p.cases[0].routing == HB_ROUTING_MODEL && p.cases[1].routing == HB_ROUTING_BALANCED);
        CHECK(p.cases[2].routing == HB_ROUTING_ZIPF && p.cases[2].zipf_s == 1.2f);
        CHECK(p.cases[3].model.dense_twin == HB_TWIN_TOTAL && p.cases[6].model.dense_twin == HB_TWIN_ACTIVE);
        CHECK_MSG(strstr(p.cases[11].label, "qwen3-30b-a3b[2/48L] routing=zipf:1.2"), "%s", p.cases[11].label);
        CHECK_MSG(strstr(p.cases[12].label, "decode qwen3-30b-a3b-dense[2/48L] f32"), "%s", p.cases[12].label);
        CHECK_MSG(strstr(p.cases[15].label, "decode qwen3-30b-a3b-dense-active[2/48L] f32"), "%s", p.cases[15].label);
        /* the active twin costs what the MoE model costs per token (FLOPs: 2 x active
         * parameters, less the router) and the total twin E / k times the experts' share */
        CHECK(p.cases[15].cost.flops < p.cases[9].cost.flops && p.cases[12].cost.flops > 3 * p.cases[9].cost.flops);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    BAD("cases:\n  - workload: decode\n    model: tiny\n    dense_twin: total\n",
        "plan.yaml:4: field 'dense_twin': model 'tiny' has no experts");
    BAD("cases:\n  - workload: decode\n    model: tiny-moe\n    dense_twin: half\n",
        "plan.yaml:4: field 'dense_twin': unknown value 'half' (accepted: none, total, active)");
    BAD("cases:\n  - workload: decode\n    model: tiny-moe\n    routing: zipf:0\n",
        "plan.yaml:4: field 'routing': 'zipf:0': the zipf exponent must be a number > 0");
    BAD("cases:\n  - workload: decode\n    model: tiny-moe\n    routing: zipf:-1\n",
        "plan.yaml:4: field 'routing': 'zipf:-1': the zipf exponent must be a number > 0");
    BAD("cases:\n  - workload: decode\n    model: tiny-moe\n    routing: hot\n",
        "plan.yaml:4: field 'routing': unknown value 'hot' (accepted: model, balanced, zipf:S with S > 0)");
    BAD("models:\n  x: {base: tiny-moe, top_k: 9}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'top_k' is 9 (accepted: 1 to experts = 8)");
    BAD("models:\n  x: {base: tiny-moe, n_group: 3, topk_group: 1}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'n_group' 3 does not divide experts 8");
    BAD("models:\n  x: {base: tiny-moe, n_group: 4, topk_group: 5}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'topk_group' is 5 (accepted: 1 to n_group = 4)");
    BAD("models:\n  x: {base: tiny-moe, router: relu}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: field 'router': unknown value 'relu' (accepted: softmax, sigmoid)");
    BAD("models:\n  x: {base: tiny-mla, positions: learned}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'kv_lora_rank' (MLA) needs positions: rope, not learned");
    BAD("models:\n  x: {base: tiny-mla, qk_rope_dim: 7}\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'qk_rope_dim' must be even");
    /* a custom MLA model round-trips */
    st = load("models:\n  m2: {base: tiny-mla, q_lora_rank: 0, kv_lora_rank: 16}\ncases:\n"
              "  - {workload: prefill, model: m2, prompt: 8}\n", &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 && p.cases[0].model.kv_lora_rank == 16 && p.cases[0].model.q_lora_rank == 0);
    ROUNDTRIP(&p);
    hb_plan_free(&p);
    const hb_kv tw[] = {{"workload", "prefill"}, {"model", "tiny"}, {"dense_twin", "active"}};
    BAD_ARGS(tw, "--dense-twin: model 'tiny' has no experts");
    const hb_kv zr[] = {{"workload", "decode"}, {"model", "tiny-moe"}, {"routing", "zipf:abc"}};
    BAD_ARGS(zr, "--routing: 'zipf:abc': the zipf exponent must be a number > 0");
}

static void test_args(void) {
    hb_plan p;
    hb_err e = {{0}};
    const hb_kv kv[] = {{"workload", "decode"}, {"model", "gpt2-124m"}, {"batch", "1,8"},
                        {"dtype", "f32, bf16"}, {"min_seconds", "0.1"}, {"layers", "2"},
                        {"max-iters", "50"}};
    hb_status st = hb_plan_from_args(kv, HB_ARRAY_LEN(kv), &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 4);
    if (p.n_cases == 4) {
        CHECK(p.cases[0].batch == 1 && p.cases[0].dtype == HB_F32);
        CHECK(p.cases[1].batch == 1 && p.cases[1].dtype == HB_BF16);
        CHECK(p.cases[2].batch == 8 && p.cases[2].dtype == HB_F32);
        CHECK(p.cases[3].batch == 8 && p.cases[3].dtype == HB_BF16);
        for (int i = 0; i < 4; i++) {
            CHECK(p.cases[i].min_seconds == 0.1 && p.cases[i].max_iters == 50);
            CHECK(p.cases[i].model.n_layers == 2 && p.cases[i].model.n_layers_full == 12);
            CHECK(p.cases[i].prompt == 128 && p.cases[i].gen == 32);
        }
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    const hb_kv kv2[] = {{"workload", "gemm,stream"}, {"m", "64"}, {"stream_n", "100"}};
    st = hb_plan_from_args(kv2, HB_ARRAY_LEN(kv2), &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 2 && p.cases && p.cases[0].m == 64 && p.cases[1].stream_n == 100);
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    /* issue 15: collective sweeps and tp round-trip through the canonical YAML (the other ranks
     * of a job read the plan from it) */
    const hb_kv kv3[] = {{"workload", "collective"}, {"collective", "all_gather,all_to_all"}, {"coll_bytes", "1024,4096"},
                         {"in_place", "1"}, {"coll_ranks", "4"}, {"dtype", "bf16"}};
    st = hb_plan_from_args(kv3, HB_ARRAY_LEN(kv3), &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 4 && p.cases && p.cases[0].coll_op == HB_COMM_ALL_GATHER && p.cases[1].coll_bytes == 4096 &&
          p.cases[3].coll_op == HB_COMM_ALL_TO_ALL && p.cases[2].in_place == 1 && p.cases[2].coll_ranks == 4 &&
          p.cases[0].dtype == HB_BF16 && hb_case_group_size(&p.cases[0]) == 4 && p.cases[0].cost.bytes == 1024);
    ROUNDTRIP(&p);
    hb_plan_free(&p);
    const hb_kv kv4[] = {{"workload", "decode"}, {"model", "tiny"}, {"tp", "1,2"}};
    st = hb_plan_from_args(kv4, HB_ARRAY_LEN(kv4), &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 2 && p.cases && p.cases[0].tp == 1 && p.cases[1].tp == 2 && hb_case_group_size(&p.cases[1]) == 2 &&
          hb_case_group_size(&p.cases[0]) == 1 && strstr(p.cases[1].label, " tp=2") != NULL &&
          p.cases[1].cost.flops < p.cases[0].cost.flops);
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    int n = 0;
    const char *const *keys = hb_plan_keys(&n);
    CHECK(n == 53); /* 0.4: repeat; weights, prompt_tokens; train: lr, beta1, beta2, eps, weight_decay, grad_accum, data, dp; MoE: dense_twin, routing; tp/ep/collective: 6; serve: 12; train: recompute */
    CHECK(n == 53 && !strcmp(keys[52], "recompute"));
    /* model parallelism and collective (issue 15), a contiguous block at the end */
    CHECK(n >= 40 && !strcmp(keys[34], "tp") && !strcmp(keys[35], "ep") && !strcmp(keys[36], "collective") &&
          !strcmp(keys[37], "coll_bytes") && !strcmp(keys[38], "in_place") && !strcmp(keys[39], "coll_ranks"));
    /* the serve block, in order, after the issue-15 block */
    static const char *const serve_keys[] = {"isl", "osl", "range_ratio", "requests", "concurrency", "arrival",
                                             "max_batch_tokens", "max_seqs", "kv_blocks", "kv_block_size",
                                             "slo_ttft_s", "slo_tpot_s"};
    int at = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], "coll_ranks")) at = i + 1;
    for (int i = 0; i < 12; i++) CHECK_MSG(at >= 0 && at + i < n && !strcmp(keys[at + i], serve_keys[i]), "serve key %d", i);
    int found = 0;
    for (int i = 0; i < n; i++) found += !strcmp(keys[i], "min_seconds") || !strcmp(keys[i], "workload");
    CHECK(found == 2);
}

static void test_overrides(void) {
    hb_plan p;
    hb_err e = {{0}};
    const char *text = "defaults:\n"
                       "  min_seconds: 2\n"
                       "cases:\n"
                       "  - workload: gemm\n"
                       "    dtype: [f32, bf16]\n"
                       "  - workload: decode\n"
                       "    model: llama3-8b\n"
                       "    dtype: [f32, bf16]\n"
                       "    gen: 16\n";
    const hb_kv ov[] = {{"layers", "1"}, {"min-seconds", "0.05"}, {"batch", "2,4"}, {"dtype", "f16"},
                        {"seq", "99"}, {"m", "32"}};
    hb_status st = hb_plan_from_file(write_file("plan.yaml", text), ov, HB_ARRAY_LEN(ov), &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 + 2);
    if (p.n_cases == 3) {
        CHECK(p.cases[0].workload == HB_WL_GEMM && p.cases[0].dtype == HB_F16 && p.cases[0].m == 32);
        CHECK(p.cases[0].batch == 0 && p.cases[0].min_seconds == 0.05);
        for (int i = 1; i < 3; i++) {
            CHECK(p.cases[i].workload == HB_WL_DECODE && p.cases[i].dtype == HB_F16);
            CHECK(p.cases[i].model.n_layers == 1 && p.cases[i].model.n_layers_full == 32);
            CHECK(p.cases[i].min_seconds == 0.05 && p.cases[i].gen == 16 && p.cases[i].m == 0);
        }
        CHECK(p.cases[1].batch == 2 && p.cases[2].batch == 4);
    }
    ROUNDTRIP(&p);
    hb_plan_free(&p);

    /* overrides on a canonical plan (resume with a shorter time) */
    st = hb_plan_from_string("cases:\n  - {id: 0, workload: stream, stream_n: 64}\n", "mem", ov + 1, 1, &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 && p.cases && p.cases[0].min_seconds == 0.05 && p.cases[0].stream_n == 64);
    hb_plan_free(&p);
}

static void test_shipped(const char *dir) {
    char path[512];
    hb_plan p;
    hb_err e = {{0}};
    snprintf(path, sizeof path, "%s/default.yaml", dir);
    hb_status st = hb_plan_from_file(path, NULL, 0, &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 2 + 2 + 2 + 4);
    ROUNDTRIP(&p);
    hb_plan_free(&p);
    /* MoE against its dense twins: decode 3 x 5 batches, prefill 3 x 2; each case fits 24 GB */
    snprintf(path, sizeof path, "%s/moe-vs-dense.yaml", dir);
    st = hb_plan_from_file(path, NULL, 0, &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 15 + 6);
    int twins = 0;
    for (int i = 0; i < p.n_cases; i++) {
        twins += p.cases[i].model.dense_twin != HB_TWIN_NONE;
        CHECK_MSG(p.cases[i].cost.mem_bytes < ((int64_t)24 << 30), "%s: %lld bytes", p.cases[i].label,
                  (long long)p.cases[i].cost.mem_bytes);
    }
    CHECK(twins == 14);
    ROUNDTRIP(&p);
    hb_plan_free(&p);
}

static void test_cap(void) {
    /* 100 x 100 x 10 = 100000 cases: the limit itself is fine; one more entry is not */
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    if (!text) return;
    size_t len = (size_t)snprintf(text, cap, "defaults: {min_seconds: 0}\ncases:\n  - workload: gemm\n    m: [");
    for (int i = 1; i <= 100; i++) len += (size_t)snprintf(text + len, cap - len, "%s%d", i > 1 ? ", " : "", i);
    len += (size_t)snprintf(text + len, cap - len, "]\n    n: [");
    for (int i = 1; i <= 100; i++) len += (size_t)snprintf(text + len, cap - len, "%s%d", i > 1 ? ", " : "", i);
    len += (size_t)snprintf(text + len, cap - len, "]\n    k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
    hb_plan p;
    hb_err e;
    hb_status st = load(text, &p, &e);
    CHECK_MSG(st == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 100000);
    if (p.n_cases == 100000) {
        CHECK(p.cases[99999].m == 100 && p.cases[99999].n == 100 && p.cases[99999].k == 10);
        CHECK(p.cases[1].m == 1 && p.cases[1].n == 1 && p.cases[1].k == 2);
        CHECK(p.cases[99999].id == 99999);
    }
    hb_plan_free(&p);
    snprintf(text + len, cap - len, "  - workload: stream\n");
    BAD(text, "plan.yaml:7: field 'cases': the plan expands to more than 100000 cases");

    char m[400] = "", nn[400] = "";
    for (int i = 1; i <= 100; i++) {
        snprintf(m + strlen(m), sizeof m - strlen(m), "%s%d", i > 1 ? "," : "", i);
        snprintf(nn + strlen(nn), sizeof nn - strlen(nn), "%s%d", i > 1 ? "," : "", i);
    }
    const hb_kv kv[] = {{"workload", "gemm"}, {"m", m}, {"n", nn}, {"k", "1,2,3,4,5,6,7,8,9,10,11"}};
    BAD_ARGS(kv, "--m: the lists expand to more than 100000 cases");
    free(text);
}

static void test_bad_files(void) {
    char msg[512];
    /* files */
    hb_plan p;
    hb_err e = {{0}};
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope.yaml", tmpdir);
    CHECK(hb_plan_from_file(missing, NULL, 0, &p, &e) == HB_ERR_INPUT);
    snprintf(msg, sizeof msg, "%s: cannot read: No such file or directory", missing);
    CHECK_STR(e.msg, msg);
    CHECK(plan_is_zero(&p));
    CHECK(hb_plan_from_file(tmpdir, NULL, 0, &p, &e) == HB_ERR_INPUT);
    snprintf(msg, sizeof msg, "%s: cannot read: Is a directory", tmpdir);
    CHECK_STR(e.msg, msg);

    /* document structure */
    BAD("", "plan.yaml:1: field 'cases': required, and the plan is empty");
    BAD("# only a comment\n", "plan.yaml:1: field 'cases': required, and the plan is empty");
    BAD("- workload: gemm\n", "plan.yaml:1: expected a mapping with keys defaults, models, cases, got a list");
    BAD("defaults:\n  warmup: 1\n", "plan.yaml:1: field 'cases': required (accepted: a list of cases");
    BAD("cases:\n", "plan.yaml:1: field 'cases': empty");
    BAD("cases: []\n", "plan.yaml:1: field 'cases': empty list");
    BAD("cases: {workload: gemm}\n", "plan.yaml:1: field 'cases': expected a list of cases, got a mapping");
    BAD("cases:\n  - gemm\n", "plan.yaml:2: field 'cases': each case must be a mapping, got a value (accepted keys: workload,");
    BAD("case:\n  - workload: gemm\n", "plan.yaml:1: field 'case': unknown top-level key (accepted: defaults, models, cases)");
    BAD("cases:\n  - workload: gemm\ncases:\n  - workload: gemm\n", "plan.yaml:3: field 'cases': given twice (first at line 1)");
    BAD("defaults: [1]\ncases:\n  - workload: gemm\n", "plan.yaml:1: field 'defaults': expected a mapping of case keys");
    BAD("models: [a]\ncases:\n  - workload: gemm\n", "plan.yaml:1: field 'models': expected a mapping");
    BAD("cases:\n  - workload: gemm\n---\ncases:\n  - workload: stream\n", "plan.yaml:4: a second YAML document");
    BAD("cases:\n  - ? [a, b]\n    : 1\n", "plan.yaml:2: a key must be a plain name, not a list");

    /* YAML syntax */
    BAD("cases:\n  - workload: gemm\n    m: [1, 2\n", "plan.yaml:4: YAML syntax error: ");
    BAD("cases:\n  - workload: gemm\n   m: 1\n", "plan.yaml:3: YAML syntax error: ");
    BAD("cases:\n  - workload: \"gemm\n", "plan.yaml:3: YAML syntax error: found unexpected end of stream");

    /* keys */
    BAD("cases:\n  - workload: gemm\n    batchsize: 2\n",
        "plan.yaml:3: field 'batchsize': unknown key (accepted: workload, model, dtype, batch, prompt, gen, seq, "
        "layers, m, n, k, stream_n, stream_op, seed, temperature, warmup, min_iters, min_seconds, max_iters, kv_dtype, quant_block, "
        "repeat, weights, prompt_tokens, lr, beta1, beta2, eps, weight_decay, grad_accum, data, dp, dense_twin, routing, tp, ep, collective, coll_bytes, in_place, coll_ranks, isl, osl, range_ratio, requests, concurrency, arrival, max_batch_tokens, max_seqs, kv_blocks, kv_block_size, slo_ttft_s, slo_tpot_s, recompute)");
    BAD("defaults:\n  min-seconds: 1\ncases:\n  - workload: gemm\n", "plan.yaml:2: field 'min-seconds': unknown key");
    BAD("cases:\n  - workload: gemm\n    m: 1\n    m: 2\n", "plan.yaml:4: field 'm': given twice (first at line 3)");
    BAD("cases:\n  - model: tiny\n    batch: 2\n", "plan.yaml:2: field 'workload': required (accepted: gemm, stream, prefill, decode, train, collective, serve)");
    BAD("cases:\n  - workload: gemm\n  - batch: 2\n", "plan.yaml:3: field 'workload': required");
    BAD("cases:\n  - workload: gemm\n    id: -1\n", "plan.yaml:3: field 'id': expected a non-negative integer");

    /* enumerations */
    BAD("cases:\n"
        "  - workload: gemm\n"
        "    m: 64\n"
        "    n: 64\n"
        "    k: 64\n"
        "    seed: 7\n"
        "    dtype: fp64\n",
        "plan.yaml:7: field 'dtype': unknown value 'fp64' (accepted: f32, bf16, f16, fp8, fp8-block, e5m2)");
    BAD("cases:\n  - workload: [gemm, infer]\n",
        "plan.yaml:2: field 'workload': unknown value 'infer' (accepted: gemm, stream, prefill, decode, train, collective, serve)");
    BAD("cases:\n  - workload: stream\n    stream_op: add\n",
        "plan.yaml:3: field 'stream_op': unknown value 'add' (accepted: copy, triad)");
    BAD("cases:\n  - workload: decode\n    model: llama9\n",
        "plan.yaml:3: field 'model': unknown model 'llama9' (accepted: tiny, gpt2-124m, gpt2-1.5b, llama3-8b, llama3.1-8b, llama3-70b, "
        "tiny-moe, mixtral-8x7b, tiny-mla, deepseek-v2-lite, deepseek-v3, qwen3-30b-a3b)");
    BAD("models:\n  mine: {base: tiny}\ncases:\n  - workload: decode\n    model: [mine,\n      other]\n",
        "plan.yaml:6: field 'model': unknown model 'other' (accepted: tiny, gpt2-124m, gpt2-1.5b, llama3-8b, "
        "llama3.1-8b, llama3-70b, tiny-moe, mixtral-8x7b, tiny-mla, deepseek-v2-lite, deepseek-v3, qwen3-30b-a3b, mine)");
    BAD("cases:\n  - workload: gemm\n    dtype:\n", "plan.yaml:3: field 'dtype': missing value (accepted: f32");

    /* types */
    BAD("cases:\n  - workload: prefill\n    batch: {a: 1}\n",
        "plan.yaml:3: field 'batch': expected a value or a list of values, got a mapping (accepted: integers 1 to");
    BAD("cases:\n  - workload: prefill\n    batch: [1, {a: 1}]\n", "plan.yaml:3: field 'batch': expected a value in the list, got a mapping");
    BAD("cases:\n  - workload: prefill\n    batch: abc\n", "plan.yaml:3: field 'batch': 'abc' is not an integer (accepted: integers 1 to 4611686018427387904)");
    BAD("cases:\n  - workload: prefill\n    batch: 1.5\n", "plan.yaml:3: field 'batch': '1.5' is not an integer");
    BAD("cases:\n  - workload: prefill\n    batch: 8x\n", "plan.yaml:3: field 'batch': '8x' is not an integer");
    BAD("cases:\n  - workload: prefill\n    batch: ' 8'\n", "plan.yaml:3: field 'batch': ' 8' is not an integer");
    BAD("cases:\n  - workload: prefill\n    prompt: 0\n", "plan.yaml:3: field 'prompt': '0' is not a positive integer");
    BAD("cases:\n  - workload: gemm\n    m: -64\n", "plan.yaml:3: field 'm': '-64' is not a positive integer");
    BAD("cases:\n  - workload: gemm\n    k: 4611686018427387905\n",
        "plan.yaml:3: field 'k': '4611686018427387905' is too large (accepted: integers 1 to 4611686018427387904)");
    BAD("cases:\n  - workload: stream\n    stream_n: 99999999999999999999999\n", "plan.yaml:3: field 'stream_n': '99999999999999999999999' is too large");
    BAD("cases:\n  - workload: gemm\n    warmup: -1\n", "plan.yaml:3: field 'warmup': '-1' is not a non-negative integer (accepted: integers 0 to");
    BAD("cases:\n  - workload: gemm\n    min_iters: 0\n", "plan.yaml:3: field 'min_iters': '0' is not a positive integer");
    BAD("cases:\n  - workload: gemm\n    seed: -1\n", "plan.yaml:3: field 'seed': '-1' is not a non-negative integer (accepted: integers 0 to 18446744073709551615)");
    BAD("cases:\n  - workload: gemm\n    seed: 18446744073709551616\n", "plan.yaml:3: field 'seed': '18446744073709551616' is too large");
    BAD("cases:\n  - workload: gemm\n    seed: 12ab\n", "plan.yaml:3: field 'seed': '12ab' is not a non-negative integer");
    BAD("cases:\n  - workload: gemm\n    min_seconds: fast\n", "plan.yaml:3: field 'min_seconds': 'fast' is not a number (accepted: numbers >= 0)");
    BAD("cases:\n  - workload: gemm\n    min_seconds: nan\n", "plan.yaml:3: field 'min_seconds': 'nan' is not a number");
    BAD("cases:\n  - workload: gemm\n    min_seconds: 1s\n", "plan.yaml:3: field 'min_seconds': '1s' is not a number");
    BAD("cases:\n  - workload: gemm\n    min_seconds: -0.5\n", "plan.yaml:3: field 'min_seconds': '-0.5' is negative");
    BAD("cases:\n  - workload: decode\n    temperature: -1\n", "plan.yaml:3: field 'temperature': '-1' is negative (accepted: numbers 0 to 3.4e38)");
    BAD("cases:\n  - workload: gemm\n    m: \"64\\n\"\n", "plan.yaml:3: field 'm': '64?' is not an integer");

    /* lists */
    BAD("cases:\n  - workload: decode\n    batch: []\n", "plan.yaml:3: field 'batch': empty list (accepted: integers 1 to");
    BAD("cases:\n  - workload: decode\n    batch: [[1, 2]]\n", "plan.yaml:3: field 'batch': nested lists are not allowed");
    BAD("cases:\n  - workload: decode\n    batch:\n      - 1\n      -\n        - 2\n",
        "plan.yaml:6: field 'batch': nested lists are not allowed");
    BAD("cases:\n  - workload: decode\n    batch:\n      - 1\n      - 0\n", "plan.yaml:5: field 'batch': '0' is not a positive integer");

    /* applicability */
    BAD("cases:\n  - workload: gemm\n    m: 64\n    gen: 32\n",
        "plan.yaml:4: field 'gen': does not apply to workload gemm (applies to: decode)");
    BAD("cases:\n  - workload: decode\n    seq: 512\n", "plan.yaml:3: field 'seq': does not apply to workload decode");
    BAD("cases:\n  - workload: [gemm, stream]\n    model: tiny\n",
        "plan.yaml:3: field 'model': does not apply to workloads gemm, stream (applies to: prefill, decode, train, serve)");
    BAD("cases:\n  - workload: prefill\n    temperature: 0.5\n",
        "plan.yaml:3: field 'temperature': does not apply to workload prefill (applies to: decode)");
    BAD("cases:\n  - workload: stream\n    dtype: bf16\n",
        "plan.yaml:3: field 'dtype': does not apply to workload stream (applies to: gemm, prefill, decode, train, collective, serve)");

    /* model-dependent limits */
    BAD("cases:\n  - workload: decode\n    model: llama3-8b\n    layers: 40\n",
        "plan.yaml:4: field 'layers': 40 is more than the 32 layers of model 'llama3-8b' (accepted: 1 to 32)");
    BAD("cases:\n  - workload: decode\n    layers: 0\n", "plan.yaml:3: field 'layers': '0' is not a positive integer");
    BAD("cases:\n  - workload: decode\n    model: gpt2-124m\n    prompt: 1000\n    gen: 100\n",
        "plan.yaml:5: field 'gen': prompt 1000 + gen 100 = 1100 exceeds max_seq 1024 of model 'gpt2-124m' "
        "(accepted: prompt + gen <= 1024)");
    BAD("cases:\n  - workload: decode\n    prompt: [8, 250]\n",
        "plan.yaml:3: field 'prompt': prompt 250 + gen 32 = 282 exceeds max_seq 256 of model 'tiny'");
    BAD("cases:\n  - workload: prefill\n    model: gpt2-124m\n    prompt: 2000\n",
        "plan.yaml:4: field 'prompt': prompt 2000 exceeds max_seq 1024 of model 'gpt2-124m' (accepted: prompt <= 1024)");
    BAD("models:\n  small: {base: tiny, max_seq: 64}\ncases:\n  - workload: decode\n    model: small\n",
        "plan.yaml:5: field 'model': prompt 128 + gen 32 = 160 exceeds max_seq 64 of model 'small'");
    BAD("cases:\n  - workload: gemm\n    min_iters: 10\n    max_iters: 3\n",
        "plan.yaml:4: field 'max_iters': 3 is less than min_iters 10 (accepted: max_iters >= min_iters)");
    BAD("cases:\n  - workload: gemm\n    min_iters: 200000\n",
        "plan.yaml:3: field 'min_iters': 200000 is more than max_iters 100000");

    /* defaults are checked too */
    BAD("defaults:\n  dtype: fp64\ncases:\n  - workload: gemm\n", "plan.yaml:2: field 'dtype': unknown value 'fp64'");
    BAD("defaults:\n  layers: 40\ncases:\n  - workload: gemm\n  - workload: prefill\n    model: llama3-8b\n",
        "plan.yaml:2: field 'layers': 40 is more than the 32 layers of model 'llama3-8b'");

    /* custom models */
    BAD("models:\n  x:\n    dim: 64\n    layers: 2\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: field 'heads': required in model 'x', which has no base");
    BAD("models:\n  x:\n    base: tiny\n    depth: 3\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'depth': unknown model field (accepted: dim, layers, heads, kv_heads, ffn_dim, vocab, "
        "max_seq, norm, activation, positions, tied_embeddings, bias, rope_theta, norm_eps, base, head_dim, experts, "
        "top_k, shared_experts, moe_ffn_dim, first_k_dense, router, router_bias, n_group, topk_group, norm_topk_prob, "
        "routed_scaling_factor, q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim)");
    BAD("models:\n  x:\n    base: tiny\n    norm: batchnorm\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'norm': unknown value 'batchnorm' (accepted: rmsnorm, layernorm)");
    BAD("models:\n  x:\n    base: tiny\n    activation: relu\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'activation': unknown value 'relu' (accepted: swiglu, gelu)");
    BAD("models:\n  x:\n    base: tiny\n    positions: alibi\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'positions': unknown value 'alibi' (accepted: rope, learned)");
    BAD("models:\n  x:\n    base: tiny\n    tied_embeddings: maybe\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'tied_embeddings': 'maybe' is not a boolean (accepted: yes, no, true, false)");
    BAD("models:\n  x:\n    base: llama9\ncases:\n  - workload: gemm\n",
        "plan.yaml:3: field 'base': unknown preset 'llama9' (accepted: tiny, gpt2-124m");
    BAD("models:\n  x:\n    base: tiny\n    dim: 0\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'dim': '0' is not a positive integer");
    BAD("models:\n  x:\n    base: tiny\n    vocab: 1.5\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'vocab': '1.5' is not an integer");
    BAD("models:\n  x:\n    base: tiny\n    dim: [64, 128]\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'dim': expected a single value, got a list");
    BAD("models:\n  x:\n    base: tiny\n    norm_eps: tiny\ncases:\n  - workload: gemm\n",
        "plan.yaml:4: field 'norm_eps': 'tiny' is not a number >= 0");
    BAD("models:\n  x:\n    base: tiny\n    dim: 100\n    heads: 3\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': dim 100 is not a multiple of heads 3");
    BAD("models:\n  x:\n    base: tiny\n    norm_eps: 0\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: model 'x': field 'norm_eps' must be positive");
    BAD("models:\n  tiny:\n    base: tiny\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: field 'models': 'tiny' is a preset name");
    BAD("models:\n  my model:\n    base: tiny\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: field 'models': model name 'my model' is not valid");
    BAD("models:\n  x: 12\ncases:\n  - workload: gemm\n",
        "plan.yaml:2: field 'x': expected a mapping of model fields, got a value");
    BAD("models:\n  x: {base: tiny}\n  x: {base: tiny}\ncases:\n  - workload: gemm\n",
        "plan.yaml:3: field 'models': model 'x' is defined twice (first at line 2)");
    BAD("models:\n  x:\n    base: tiny\n    dim: 64\n    dim: 64\ncases:\n  - workload: gemm\n",
        "plan.yaml:5: field 'dim': given twice (first at line 4)");

    /* overrides: command-line messages; inapplicable overrides are fine (tested above) */
    const hb_kv ov1[] = {{"warmup", "-1"}};
    BAD_OV("cases:\n  - workload: gemm\n", ov1, 1, "--warmup: '-1' is not a non-negative integer");
    const hb_kv ov2[] = {{"gen", "5000"}};
    BAD_OV("cases:\n  - workload: decode\n    model: gpt2-124m\n", ov2, 1,
           "--gen: prompt 128 + gen 5000 = 5128 exceeds max_seq 1024 of model 'gpt2-124m'");
    const hb_kv ov3[] = {{"layers", "13"}};
    BAD_OV("cases:\n  - workload: decode\n    model: gpt2-124m\n", ov3, 1,
           "--layers: 13 is more than the 12 layers of model 'gpt2-124m'");
    const hb_kv ov4[] = {{"bogus", "1"}};
    BAD_OV("cases:\n  - workload: gemm\n", ov4, 1, "--bogus: unknown option (accepted: --workload, --model,");
    const hb_kv ov5[] = {{"model", "nope"}};
    BAD_OV("models:\n  mine: {base: tiny}\ncases:\n  - workload: decode\n", ov5, 1,
           "--model: unknown model 'nope' (accepted: tiny, gpt2-124m, gpt2-1.5b, llama3-8b, llama3.1-8b, llama3-70b, tiny-moe, "
           "mixtral-8x7b, tiny-mla, deepseek-v2-lite, deepseek-v3, qwen3-30b-a3b, mine)");
}

static void test_bad_args(void) {
    const hb_kv none[] = {{"batch", "1"}};
    bad_args(__LINE__, none, 0, "--workload: required (accepted: gemm, stream, prefill, decode, train, collective, serve)");
    BAD_ARGS(none, "--workload: required (accepted: gemm, stream, prefill, decode, train, collective, serve)");
    const hb_kv a1[] = {{"workload", "prefill"}, {"batch", "0"}};
    BAD_ARGS(a1, "--batch: '0' is not a positive integer (accepted: integers 1 to 4611686018427387904)");
    const hb_kv a2[] = {{"workload", "gemm"}, {"dtype", "f32,fp64"}};
    BAD_ARGS(a2, "--dtype: unknown value 'fp64' (accepted: f32, bf16, f16, fp8, fp8-block, e5m2)");
    const hb_kv a3[] = {{"workload", "prefill"}, {"batch", "1,,8"}};
    BAD_ARGS(a3, "--batch: empty item in the list '1,,8'");
    const hb_kv a4[] = {{"workload", "prefill"}, {"batch", "1,8,"}};
    BAD_ARGS(a4, "--batch: empty item in the list '1,8,'");
    const hb_kv a5[] = {{"workload", "gemm"}, {"min_seconds", "x"}};
    BAD_ARGS(a5, "--min-seconds: 'x' is not a number (accepted: numbers >= 0)");
    const hb_kv a6[] = {{"workload", "gemm"}, {"foo-bar", "1"}};
    BAD_ARGS(a6, "--foo-bar: unknown option (accepted: --workload, --model, --dtype");
    const hb_kv a7[] = {{"workload", "gemm"}, {"gen", "4"}};
    BAD_ARGS(a7, "--gen: does not apply to workload gemm (applies to: decode)");
    const hb_kv a8[] = {{"workload", "decode"}, {"seq", "4"}};
    BAD_ARGS(a8, "--seq: does not apply to workload decode");
    const hb_kv a9[] = {{"workload", "prefill"}, {"batch", "1"}, {"batch", "2"}};
    BAD_ARGS(a9, "--batch: given twice");
    const hb_kv a10[] = {{"workload", "prefill"}, {"batch", ""}};
    BAD_ARGS(a10, "--batch: missing value (accepted: integers 1 to");
    const hb_kv a11[] = {{"workload", "decode"}, {"model", "llama3-8b"}, {"layers", "2,40"}};
    BAD_ARGS(a11, "--layers: 40 is more than the 32 layers of model 'llama3-8b' (accepted: 1 to 32)");
    const hb_kv a12[] = {{"workload", "gemm"}, {"m", "8x"}};
    BAD_ARGS(a12, "--m: '8x' is not an integer");
    const hb_kv a13[] = {{"workload", "gemm"}, {"max_iters", "99999999999999999999"}};
    BAD_ARGS(a13, "--max-iters: '99999999999999999999' is too large");
    const hb_kv a14[] = {{"workload", "infer"}};
    BAD_ARGS(a14, "--workload: unknown value 'infer' (accepted: gemm, stream, prefill, decode, train, collective, serve)");
    const hb_kv a15[] = {{"workload", "gemm"}, {"stream_op", "copy"}};
    BAD_ARGS(a15, "--stream-op: does not apply to workload gemm (applies to: stream)");
    const hb_kv a16[] = {{"workload", "decode"}, {"model", "tiny"}, {"prompt", "300"}};
    BAD_ARGS(a16, "--prompt: prompt 300 + gen 32 = 332 exceeds max_seq 256 of model 'tiny'");
    const hb_kv a17[] = {{"workload", "decode"}, {"temperature", "-1"}};
    BAD_ARGS(a17, "--temperature: '-1' is negative");
    /* stored as a float: 1e300 used to become inf, and the stored plan then failed to parse */
    const hb_kv a18[] = {{"workload", "decode"}, {"temperature", "1e300"}};
    BAD_ARGS(a18, "--temperature: '1e300' is too large (accepted: numbers 0 to 3.4e38)");
    BAD("cases:\n  - {workload: decode, temperature: 3.5e38}\n",
        "plan.yaml:2: field 'temperature': '3.5e38' is too large (accepted: numbers 0 to 3.4e38)");
}

/* Issue 19: every size derived from user numbers is checked at plan time; a product that does
 * not fit int64_t is an input error naming it (before: the sizes wrapped, the fit check was
 * bypassed and setup wrote past a heap buffer). */
static void test_size_overflow(void) {
    const hb_kv s1[] = {{"workload", "stream"}, {"stream_n", "4611686018427387904"}};
    BAD_ARGS(s1, "--stream-n: stream n=4611686018427387904: the size of 3 arrays x n x 4 bytes = 3 x "
                 "4611686018427387904 x 4 overflows 64 bits");
    const hb_kv g1[] = {{"workload", "gemm"}, {"m", "4611686018427387904"}, {"n", "1"}, {"k", "1"}};
    BAD_ARGS(g1, "--m: gemm M=4611686018427387904 N=1 K=1: the size of A (m x k x dtype bytes) = "
                 "4611686018427387904 x 1 x 4 overflows 64 bits");
    const hb_kv g2[] = {{"workload", "gemm"}, {"m", "3037000500"}, {"n", "3037000500"}, {"k", "3037000500"}};
    BAD_ARGS(g2, "the size of A (m x k x dtype bytes) = 3037000500 x 3037000500 x 4 overflows 64 bits");
    /* C = m x n x 4 overflows although A and W fit */
    const hb_kv g3[] = {{"workload", "gemm"}, {"m", "2147483648"}, {"n", "2147483648"}, {"k", "1"}};
    BAD_ARGS(g3, "the size of C (m x n x 4 bytes) = 2147483648 x 2147483648 x 4 overflows");
    const hb_kv g4[] = {{"workload", "gemm"}, {"dtype", "fp8-block"}, {"m", "1"}, {"n", "128"}, {"k", "128"},
                        {"quant_block", "4611686018427387904"}};
    BAD_ARGS(g4, "does not divide"); /* a block larger than n never reaches the size arithmetic */
    const hb_kv d1[] = {{"workload", "decode"}, {"model", "tiny"}, {"batch", "4611686018427387904"}};
    BAD_ARGS(d1, "--batch: decode model 'tiny' batch 4611686018427387904 prompt 128 gen 32: the size of batch x "
                 "prompt (4611686018427387904 x 128) overflows 64 bits");
    const hb_kv d2[] = {{"workload", "decode"}, {"model", "tiny"}, {"batch", "4611686018427387904"},
                        {"prompt", "1"}, {"gen", "1"}};
    BAD_ARGS(d2, "the size of tensor k_cache (4611686018427387904 x 2 x 2 x 16 x 4 bytes, after 0 bytes of its "
                 "arena) overflows 64 bits");
    const hb_kv d3[] = {{"workload", "prefill"}, {"model", "llama3-8b"}, {"batch", "1099511627776"},
                        {"prompt", "8192"}};
    BAD_ARGS(d3, "--batch: prefill model 'llama3-8b' batch 1099511627776 prompt 8192: the size of tensor k_cache (1099511627776 x 8192 x 8 x 128 x 4 bytes");
    const hb_kv d4[] = {{"workload", "decode"}, {"model", "tiny"}, {"prompt", "4611686018427387904"},
                        {"gen", "4611686018427387904"}};
    BAD_ARGS(d4, "prompt 4611686018427387904 + gen 4611686018427387904 = 9223372036854775808 exceeds max_seq 256");
    BAD("cases:\n  - workload: decode\n    model: tiny\n    batch: [1, 4611686018427387904]\n",
        "plan.yaml:4: field 'batch': decode model 'tiny' batch 4611686018427387904 prompt 128 gen 32: the size of");
    BAD("cases:\n  - {workload: stream, stream_n: 4611686018427387904}\n",
        "plan.yaml:2: field 'stream_n': stream n=4611686018427387904: the size of 3 arrays");
    BAD("cases:\n  - {workload: gemm, m: 4611686018427387904, n: 1, k: 1}\n",
        "plan.yaml:2: field 'm': gemm M=4611686018427387904 N=1 K=1: the size of A");
    BAD("models:\n  wide:\n    base: tiny\n    vocab: 4611686018427387904\ncases:\n  - {workload: prefill, "
        "model: wide, prompt: 1}\n", "the size of tensor wte (4611686018427387904 x 64 x 4 bytes");
    BAD("models:\n  deep:\n    base: tiny\n    layers: 100000\ncases:\n  - {workload: prefill, model: deep}\n",
        "model 'deep': field 'layers' is 100000 (accepted: 1 to 4096)");
    /* the largest sizes that fit stay accepted, with exact memory figures */
    hb_plan p;
    hb_err e = {{0}};
    const hb_kv ok1[] = {{"workload", "stream"}, {"stream_n", "768614336404564650"}}; /* 12 n < 2^63 */
    CHECK_MSG(hb_plan_from_args(ok1, HB_ARRAY_LEN(ok1), &p, &e) == HB_OK, "%s", e.msg);
    CHECK(p.n_cases == 1 && p.cases[0].cost.mem_bytes == 12 * (int64_t)768614336404564650);
    hb_plan_free(&p);
    const hb_kv bad1[] = {{"workload", "stream"}, {"stream_n", "768614336404564651"}}; /* 12 n > 2^63 - 1 */
    BAD_ARGS(bad1, "--stream-n: stream n=768614336404564651");
    /* the cost of a case built by hand (not through a plan) is checked too */
    hb_case c = {.workload = HB_WL_GEMM, .dtype = HB_F32, .m = (int64_t)1 << 40, .n = (int64_t)1 << 40, .k = 1};
    hb_cost k;
    e.msg[0] = '\0';
    CHECK(hb_case_cost(&c, &k, &e) == HB_ERR_INPUT && strstr(e.msg, "the size of C"));
}

/* Hostile plans (issue 19): the case limit is checked before anything is allocated per entry,
 * the nesting while parsing, the size before parsing. */
static void test_hostile_plans(void) {
    /* 100001 entries, all one aliased case: refused before the entries are built */
    const int n = MAX_TEST_CASES + 1;
    char *text = malloc((size_t)n * 8 + 64), *o = text;
    if (text) {
        o += sprintf(o, "cases:\n  - &a {workload: stream, stream_n: 64}\n");
        for (int i = 1; i < n; i++) o += sprintf(o, "  - *a\n");
        BAD(text, "plan.yaml:2: field 'cases': 100001 entries: the plan expands to more than 100000 cases");
        free(text);
    }
    /* two entries whose aliased lists multiply to 10^6 cases: stopped at the second entry */
    char lst[8192], *q = lst;
    q += sprintf(q, "cases:\n  - {workload: gemm, m: &l [");
    for (int i = 1; i <= 1000; i++) q += sprintf(q, "%s%d", i > 1 ? ", " : "", i);
    q += sprintf(q, "]}\n  - {workload: gemm, m: *l, n: *l}\n");
    BAD(lst, "plan.yaml:3: field 'cases': the plan expands to more than 100000 cases (accepted: at most 100000)");
    /* 100000 levels of [: refused at level 17, without the scanner's quadratic time */
    const int depth = 100000;
    char *deep = malloc((size_t)depth + 16);
    if (deep) {
        memcpy(deep, "cases: ", 7);
        memset(deep + 7, '[', (size_t)depth);
        deep[7 + depth] = '\0';
        BAD(deep, "plan.yaml:1: nested too deeply (accepted: 16 levels)");
        free(deep);
    }
    /* a file over the size cap (sparse: no disk used) is refused before it is parsed */
    char path[600];
    snprintf(path, sizeof path, "%s/huge.yaml", tmpdir);
    FILE *f = fopen(path, "wb");
    if (f) {
        CHECK(fseek(f, (64L << 20) + 1, SEEK_SET) == 0 && fputc('\n', f) != EOF);
        fclose(f);
        hb_plan p;
        hb_err e = {{0}};
        CHECK(hb_plan_from_file(path, NULL, 0, &p, &e) == HB_ERR_INPUT);
        CHECK_MSG(strstr(e.msg, "huge.yaml: larger than 64 MiB (accepted: a plan of at most 100000 cases)"), "%s", e.msg);
        hb_plan_free(&p);
        remove(path);
    }
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hb_test_plan_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_registry_keys();
    test_serve();
    test_expansion_order();
    test_defaults();
    test_custom_models();
    test_args();
    test_moe();
    test_overrides();
    if (argc > 1) test_shipped(argv[1]);
    test_cap();
    test_bad_files();
    test_bad_args();
    test_size_overflow();
    test_hostile_plans();

    char path[128];
    snprintf(path, sizeof path, "%s/plan.yaml", tmpdir);
    unlink(path);
    CHECK(rmdir(tmpdir) == 0);
    HB_TEST_END();
}
