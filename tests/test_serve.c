/* test_serve.c - the serve workload on the CPU backend against independent references:
 *   - attention_paged over a cache scattered in permuted blocks gives the contiguous
 *     attention op's bits (f32, bf16, f16, fp8 e4m3 caches with scales), and matches a double-precision reference;
 *   - a stream's first-token logits equal prefill's logits of the same prompts (another code
 *     path: contiguous cache, one forward per batch), with whole-prompt and chunked prefill;
 *   - chunked prefill and preemption (a KV cache too small for every request in flight)
 *     give the same greedy tokens as an unconstrained run;
 *   - the stream's statistics are consistent with its request records;
 *   - at concurrency 1 a stream's tokens are a decode's greedy tokens of the same prompts;
 *   - all of it for a dense model (tiny) and a MoE model (tiny-moe: shared experts, a first
 *     dense layer), whose expert counts add up to top_k per fed token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/dtype.h"
#include "harness/plan.h"
#include "hbtest.h"
#include "workloads/serve.h"
#include "workloads/workload.h"

/* ---- attention_paged vs attention ---- */
/* fp8 caches carry static per-tensor scales (the values' range +-1 near the top of e4m3's) */
static float fp8_sk = 1.5f / 448.0f, fp8_sv = 1.25f / 448.0f;
static hb_tensor cache4(void *p, hb_dtype kvt, int value, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    hb_tensor t = hb_t4(p, kvt, n0, n1, n2, n3);
    return hb_dtype_is_fp8(kvt) ? hb_tq(t, HB_QUANT_TENSOR, 0, 0, value ? &fp8_sv : &fp8_sk) : t;
}

static void test_paged_op(hb_backend *be, hb_dtype kvt) {
    enum { B = 3, S = 37, Hkv = 2, Hq = 4, D = 8, BS = 5 };
    const int64_t kvw = Hkv * D, nb_seq = (S + BS - 1) / BS, n_blocks = B * nb_seq + 3;
    const size_t es = hb_dtype_size(kvt);
    /* contiguous caches (B, S, Hkv, D), filled through kv_store from random f32 rows */
    float *kf = malloc(sizeof(float) * B * S * kvw), *vf = malloc(sizeof(float) * B * S * kvw);
    for (int64_t i = 0; i < B * S * kvw; i++) {
        kf[i] = hb_rng_pm1(11, (uint64_t)i);
        vf[i] = hb_rng_pm1(12, (uint64_t)i);
    }
    void *kc = calloc((size_t)(B * S * kvw), es), *vc = calloc((size_t)(B * S * kvw), es);
    void *kp = calloc((size_t)(n_blocks * BS * kvw), es), *vp = calloc((size_t)(n_blocks * BS * kvw), es);
    CHECK(HB_OP(be, kv_store, .k_cache = cache4(kc, kvt, 0, B, S, Hkv, D), .v_cache = cache4(vc, kvt, 1, B, S, Hkv, D),
                .k = hb_t2(kf, HB_F32, B * S, kvw, kvw), .v = hb_t2(vf, HB_F32, B * S, kvw, kvw), .B = B, .T = S,
                .pos0 = 0) == HB_OK);
    /* the block table: sequence b's block j is a permutation's entry (never shared) */
    int32_t table[B * ((S + BS - 1) / BS)];
    for (int64_t i = 0; i < B * nb_seq; i++) table[i] = (int32_t)((i * 7 + 2) % n_blocks);
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < S; p++) {
            int32_t blk = table[b * nb_seq + p / BS];
            memcpy((char *)kp + ((int64_t)blk * BS + p % BS) * kvw * es, (char *)kc + (b * S + p) * kvw * es, (size_t)kvw * es);
            memcpy((char *)vp + ((int64_t)blk * BS + p % BS) * kvw * es, (char *)vc + (b * S + p) * kvw * es, (size_t)kvw * es);
        }
    /* queries: sequence b's last T positions, rows of all sequences interleaved as a serve batch */
    enum { T = 6 };
    const int64_t pos0 = S - T, N = B * T;
    float *q = malloc(sizeof(float) * N * Hq * D), *ref = malloc(sizeof(float) * N * Hq * D);
    float *out = malloc(sizeof(float) * N * Hq * D), *qb = malloc(sizeof(float) * N * Hq * D);
    for (int64_t i = 0; i < N * Hq * D; i++) qb[i] = hb_rng_pm1(13, (uint64_t)i);
    CHECK(HB_OP(be, attention, .out = hb_t2(ref, HB_F32, N, Hq * D, Hq * D), .q = hb_t2(qb, HB_F32, N, Hq * D, Hq * D),
                .k_cache = cache4(kc, kvt, 0, B, S, Hkv, D), .v_cache = cache4(vc, kvt, 1, B, S, Hkv, D), .B = B, .T = T,
                .pos0 = pos0) == HB_OK);
    /* paged rows in the order t-major (row i = t * B + b) */
    int32_t seq[N], pos[N];
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = t * B + b;
            seq[i] = (int32_t)b;
            pos[i] = (int32_t)(pos0 + t);
            memcpy(q + i * Hq * D, qb + (b * T + t) * Hq * D, sizeof(float) * Hq * D);
        }
    CHECK(HB_OP(be, attention_paged, .out = hb_t2(out, HB_F32, N, Hq * D, Hq * D), .q = hb_t2(q, HB_F32, N, Hq * D, Hq * D),
                .k_cache = cache4(kp, kvt, 0, n_blocks, BS, Hkv, D), .v_cache = cache4(vp, kvt, 1, n_blocks, BS, Hkv, D),
                .block_table = table, .max_blocks = nb_seq, .n_seqs = B, .seq = seq, .pos = pos) == HB_OK);
    int64_t diff = 0;
    double maxerr = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t e = 0; e < Hq * D; e++) {
                const float o = out[(t * B + b) * Hq * D + e], r = ref[(b * T + t) * Hq * D + e];
                diff += memcmp(&o, &r, sizeof o) != 0;
            }
    CHECK_MSG(diff == 0, "%s: %lld of %lld outputs differ from attention's", hb_dtype_name(kvt), (long long)diff,
              (long long)(N * Hq * D));
    if (kvt == HB_F32) { /* and a double-precision reference of the definition */
        for (int64_t i = 0; i < N; i++)
            for (int64_t h = 0; h < Hq; h++) {
                const int64_t b = seq[i], L = pos[i] + 1, kh = h / (Hq / Hkv);
                double sc[S], mx = -1e300, sum = 0;
                for (int64_t j = 0; j < L; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += (double)q[i * Hq * D + h * D + d] * kf[(b * S + j) * kvw + kh * D + d];
                    sc[j] = s / sqrt((double)D);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t j = 0; j < L; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t d = 0; d < D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < L; j++) o += sc[j] / sum * vf[(b * S + j) * kvw + kh * D + d];
                    double e = fabs(o - out[i * Hq * D + h * D + d]);
                    maxerr = e > maxerr ? e : maxerr;
                }
            }
        CHECK_MSG(maxerr < 1e-5, "f32 paged attention vs double reference: %.3g", maxerr);
    }
    /* a block id outside the cache is refused, not read */
    table[0] = (int32_t)n_blocks;
    CHECK(HB_OP(be, attention_paged, .out = hb_t2(out, HB_F32, N, Hq * D, Hq * D), .q = hb_t2(q, HB_F32, N, Hq * D, Hq * D),
                .k_cache = cache4(kp, kvt, 0, n_blocks, BS, Hkv, D), .v_cache = cache4(vp, kvt, 1, n_blocks, BS, Hkv, D),
                .block_table = table, .max_blocks = nb_seq, .n_seqs = B, .seq = seq, .pos = pos) == HB_ERR_INPUT);
    free(kf), free(vf), free(kc), free(vc), free(kp), free(vp), free(q), free(ref), free(out), free(qb);
}

/* ---- the workload ---- */
static hb_case serve_case(const hb_model *m, int64_t isl, int64_t osl, int64_t requests, int64_t conc) {
    hb_case c = {0};
    c.workload = HB_WL_SERVE;
    c.model = *m;
    c.dtype = HB_F32;
    c.seed = 77;
    c.isl = isl, c.osl = osl, c.range_ratio = 1.0, c.requests = requests, c.concurrency = conc;
    c.max_batch_tokens = 2048, c.max_seqs = 256, c.kv_blocks = 0, c.kv_block_size = 4;
    c.warmup_iters = 0, c.min_iters = 1, c.min_seconds = 0, c.max_iters = 1;
    return c;
}

typedef struct stream {
    int32_t *tokens;   /* (requests, isl + osl) */
    float *logits;     /* (requests, V) first output token */
    double stats[HB_SERVE_N_STATS];
    double *rec;
    int64_t n;
} stream;

static int run_stream(hb_backend *be, hb_case c, stream *out) {
    hb_err err = {{0}};
    hb_workload *w = NULL;
    memset(out, 0, sizeof *out);
    CHECK(hb_case_resolve(&c, &err) == HB_OK);
    if (hb_workload_setup(be, &c, &w, &err) != HB_OK) {
        CHECK_MSG(0, "setup: %s", err.msg);
        return -1;
    }
    CHECK(hb_serve_keep_first_logits(w) == HB_OK);
    hb_status s = hb_workload_step(w);
    CHECK_MSG(s == HB_OK, "step: %s", hb_status_str(s));
    int64_t stride = 0;
    const int32_t *tok = hb_serve_tokens(w, &stride);
    const int64_t R = hb_case_serve_requests(&c), V = c.model.vocab;
    out->tokens = malloc(sizeof(int32_t) * (size_t)(R * stride));
    out->logits = malloc(sizeof(float) * (size_t)(R * V));
    memcpy(out->tokens, tok, sizeof(int32_t) * (size_t)(R * stride));
    memcpy(out->logits, hb_serve_first_logits(w), sizeof(float) * (size_t)(R * V));
    const double *rec = NULL;
    CHECK(hb_workload_serve(w, out->stats, &rec, &out->n) == 1 && out->n == R);
    out->rec = malloc(sizeof(double) * (size_t)(R * HB_SERVE_REQ_COLS));
    memcpy(out->rec, rec, sizeof(double) * (size_t)(R * HB_SERVE_REQ_COLS));
    hb_workload_free(w);
    return s == HB_OK ? 0 : -1;
}

static void stream_free(stream *s) {
    free(s->tokens);
    free(s->logits);
    free(s->rec);
}

static double max_rel(const float *a, const float *b, int64_t n) {
    double mx = 0, sc = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        mx = d > mx ? d : mx;
        sc = fabs((double)b[i]) > sc ? fabs((double)b[i]) : sc;
    }
    return mx / (sc > 0 ? sc : 1);
}

/* The greedy tokens of a decode case of R x isl prompts, osl generated (R, osl): another code
 * path (contiguous cache, every sequence in one batch, one step per token). */
static int32_t *decode_tokens(hb_backend *be, const hb_model *m, int64_t R, int64_t isl, int64_t osl) {
    hb_case d = {0};
    d.workload = HB_WL_DECODE;
    d.model = *m;
    d.dtype = HB_F32;
    d.seed = 77;
    d.batch = R, d.prompt = isl, d.gen = osl;
    d.warmup_iters = 0, d.min_iters = 1, d.max_iters = 1;
    hb_err err = {{0}};
    hb_workload *w = NULL;
    int32_t *ids = NULL;
    int64_t rows = 0, cols = 0;
    CHECK(hb_case_resolve(&d, &err) == HB_OK);
    if (hb_workload_setup(be, &d, &w, &err) != HB_OK) {
        CHECK_MSG(0, "decode setup: %s", err.msg);
        return NULL;
    }
    for (int64_t s = 0; s + 1 < osl; s++) CHECK(hb_workload_step(w) == HB_OK); /* token 0 is the prompt's */
    CHECK(hb_workload_generated(w, &ids, &rows, &cols) == HB_OK && ids && rows == R && cols == osl);
    hb_workload_free(w);
    return ids;
}

/* The logits (R, V) of the last positions of a prefill of R x isl prompts, KV cache kvt. */
static float *prefill_logits(hb_backend *be, const hb_model *m, int64_t R, int64_t isl, hb_kvt kvt) {
    hb_case p = {0};
    p.workload = HB_WL_PREFILL;
    p.model = *m;
    p.dtype = HB_F32;
    p.kv_dtype = kvt;
    p.seed = 77;
    p.batch = R, p.prompt = isl;
    p.warmup_iters = 0, p.min_iters = 1, p.max_iters = 1;
    hb_err err = {{0}};
    CHECK(hb_case_resolve(&p, &err) == HB_OK);
    hb_workload *pw = NULL;
    float *ref = NULL;
    int64_t nref = 0;
    CHECK(hb_workload_setup(be, &p, &pw, &err) == HB_OK);
    CHECK(hb_workload_step(pw) == HB_OK);
    CHECK(hb_workload_output(pw, &ref, &nref) == HB_OK && nref == R * m->vocab);
    hb_workload_free(pw);
    return ref;
}

static void test_workload_of(hb_backend *be, hb_model tiny) {
    const char *model = tiny.name;
    enum { ISL = 21, OSL = 9, R = 4 };
    const int64_t V = tiny.vocab, stride = ISL + OSL;
    /* the reference: prefill of R x ISL tokens, logits (R, V) of the last positions */
    float *ref = prefill_logits(be, &tiny, R, ISL, HB_KV_AUTO);

    /* whole prompts at once (every request admitted in the first iteration) */
    stream whole, chunked, tight, serial;
    CHECK(run_stream(be, serve_case(&tiny, ISL, OSL, R, R), &whole) == 0);
    double e = max_rel(whole.logits, ref, R * V);
    CHECK_MSG(e < 1e-5, "whole-prompt serve first logits vs prefill: rel %.3g", e);
    CHECK(whole.stats[HB_SV_PREEMPTIONS] == 0);
    for (int64_t r = 0; r < R; r++) /* the prompts are prefill's */
        for (int64_t t = 0; t < ISL; t++)
            CHECK(whole.tokens[r * stride + t] == (int32_t)(hb_rng_u64(hb_rng_u64(77, 5), (uint64_t)(r * ISL + t)) % (uint64_t)V));

    /* an fp8 KV cache (e4m3, static scale 1): attention_paged computes attention's bits, so
     * the first logits are those of a prefill with the same cache, and not the f32 cache's */
    {
        float *ref8 = prefill_logits(be, &tiny, R, ISL, HB_KV_FP8);
        hb_case c8 = serve_case(&tiny, ISL, OSL, R, R);
        c8.kv_dtype = HB_KV_FP8;
        stream s8;
        CHECK(run_stream(be, c8, &s8) == 0);
        const double e8 = max_rel(s8.logits, ref8, R * V), e32 = max_rel(s8.logits, ref, R * V);
        CHECK_MSG(e8 < 1e-5 && e32 > 1e-5, "%s: fp8-cache serve first logits vs prefill: rel %.3g (fp8 cache), %.3g "
                  "(f32 cache)", model, e8, e32);
        stream_free(&s8);
        free(ref8);
    }

    /* chunked prefill: 5 tokens per iteration, prompts split across iterations and requests */
    hb_case cc = serve_case(&tiny, ISL, OSL, R, R);
    cc.max_batch_tokens = 5;
    CHECK(run_stream(be, cc, &chunked) == 0);
    e = max_rel(chunked.logits, ref, R * V);
    CHECK_MSG(e < 1e-5, "chunked-prefill serve first logits vs prefill: rel %.3g", e);
    CHECK_MSG(!memcmp(chunked.tokens, whole.tokens, sizeof(int32_t) * R * stride), "chunked prefill changed the tokens");
    CHECK(chunked.stats[HB_SV_ITERATIONS] > whole.stats[HB_SV_ITERATIONS]);

    /* a cache of 13 blocks of 4 tokens: two prompts of 21 tokens (6 blocks each) are
     * admitted, and the first decode step past position 23 finds one free block for two
     * requests (8 each at the end): one is preempted and recomputes */
    hb_case ct = serve_case(&tiny, ISL, OSL, R, R);
    ct.kv_blocks = 13;
    CHECK(run_stream(be, ct, &tight) == 0);
    if (hb_model_is_mla(&tiny)) /* a latent slot per request, taken at admission: they queue instead */
        CHECK_MSG(tight.stats[HB_SV_PREEMPTIONS] == 0 && tight.stats[HB_SV_ITERATIONS] > whole.stats[HB_SV_ITERATIONS],
                  "MLA with 13 blocks of 4 (one slot of 32 tokens): %g preemptions, %g iterations (whole: %g)",
                  tight.stats[HB_SV_PREEMPTIONS], tight.stats[HB_SV_ITERATIONS], whole.stats[HB_SV_ITERATIONS]);
    else CHECK_MSG(tight.stats[HB_SV_PREEMPTIONS] > 0, "no preemption with 13 blocks");
    CHECK_MSG(!memcmp(tight.tokens, whole.tokens, sizeof(int32_t) * R * stride), "preemption changed the tokens");
    double np = 0;
    for (int64_t r = 0; r < R; r++) np += tight.rec[r * HB_SERVE_REQ_COLS + 5];
    CHECK(np == tight.stats[HB_SV_PREEMPTIONS]);

    /* concurrency 1: one request at a time, the same tokens */
    CHECK(run_stream(be, serve_case(&tiny, ISL, OSL, R, 1), &serial) == 0);
    CHECK_MSG(!memcmp(serial.tokens, whole.tokens, sizeof(int32_t) * R * stride), "concurrency changed the tokens");
    /* ... which are a decode's greedy tokens of the same prompts */
    int32_t *dec = decode_tokens(be, &tiny, R, ISL, OSL);
    int64_t ndiff = 0;
    for (int64_t r = 0; dec && r < R; r++)
        for (int64_t t = 0; t < OSL; t++) ndiff += serial.tokens[r * stride + ISL + t] != dec[r * OSL + t];
    CHECK_MSG(dec && ndiff == 0, "%s: %lld of %d serve tokens differ from decode's greedy tokens", model,
              (long long)ndiff, R * OSL);
    free(dec);
    for (int64_t r = 1; r < R; r++) /* closed loop: request r arrives when r - 1 finishes */
        CHECK(serial.rec[r * HB_SERVE_REQ_COLS + 0] == serial.rec[(r - 1) * HB_SERVE_REQ_COLS + 2]);

    /* records vs statistics: every request ISL in, OSL out, in order of time */
    for (int64_t r = 0; r < R; r++) {
        const double *o = &whole.rec[r * HB_SERVE_REQ_COLS];
        CHECK(o[3] == ISL && o[4] == OSL && o[0] >= 0 && o[0] <= o[1] && o[1] <= o[2]);
    }
    double ttft[R];
    for (int64_t r = 0; r < R; r++) ttft[r] = whole.rec[r * HB_SERVE_REQ_COLS + 1] - whole.rec[r * HB_SERVE_REQ_COLS];
    double mx = ttft[0];
    for (int64_t r = 1; r < R; r++) mx = ttft[r] > mx ? ttft[r] : mx;
    CHECK(whole.stats[HB_SV_TTFT_P99] <= mx + 1e-12 && whole.stats[HB_SV_TTFT_P99] > 0);
    CHECK(whole.stats[HB_SV_OUT_TPS] > 0 && whole.stats[HB_SV_INTERACTIVITY] > 0);
    CHECK(isnan(whole.stats[HB_SV_SLO]));
    /* MoE: every fed row reached top_k experts (the first stream's counts; none for dense) */
    {
        hb_case mc = serve_case(&tiny, ISL, OSL, R, R);
        hb_err e2 = {{0}};
        hb_workload *w = NULL;
        CHECK(hb_case_resolve(&mc, &e2) == HB_OK && hb_workload_setup(be, &mc, &w, &e2) == HB_OK);
        if (w) {
            const int64_t *cnt = NULL;
            int64_t nl = -1, ne = -1;
            CHECK(hb_workload_expert_tokens(w, &cnt, &nl, &ne) == HB_OK && !cnt); /* before a stream: none */
            CHECK(hb_workload_step(w) == HB_OK);
            CHECK(hb_workload_expert_tokens(w, &cnt, &nl, &ne) == HB_OK);
            if (hb_model_is_moe(&tiny)) {
                /* rows fed: each prompt once, then osl - 1 decode tokens per request */
                const int64_t fed = R * (ISL + OSL - 1);
                CHECK_MSG(cnt && nl > 0 && ne == tiny.n_experts, "%s: no expert counts", model);
                for (int64_t l = 0; cnt && l < nl; l++) {
                    int64_t sum = 0;
                    for (int64_t e = 0; e < ne; e++) sum += cnt[l * ne + e];
                    CHECK_MSG(sum == fed * tiny.top_k, "%s: MoE layer %lld routed %lld tokens, expected %lld", model,
                              (long long)l, (long long)sum, (long long)(fed * tiny.top_k));
                }
            } else {
                CHECK(!cnt && nl == 0);
            }
            hb_workload_free(w);
        }
    }
    stream_free(&whole), stream_free(&chunked), stream_free(&tight), stream_free(&serial);
    free(ref);
}

static void test_workload(hb_backend *be, const char *model) {
    hb_model m;
    CHECK(hb_model_find(model, &m, NULL) == HB_OK);
    m.n_layers_full = m.n_layers;
    test_workload_of(be, m);
}

/* GPT-2's layout (learned positions, layernorm, GELU, biases, tied head) at tiny's size: the
 * embedding adds each segment's own positions */
static hb_model gpt2_tiny(void) {
    hb_model m;
    CHECK(hb_model_find("gpt2-124m", &m, NULL) == HB_OK);
    CHECK(m.pos == HB_POS_LEARNED);
    snprintf(m.name, sizeof m.name, "gpt2-tiny");
    m.dim = 64, m.n_layers = m.n_layers_full = 2, m.n_heads = m.n_kv_heads = 4, m.ffn_dim = 256, m.vocab = 256;
    m.max_seq = 64;
    return m;
}

static void test_learned_positions(hb_backend *be) { test_workload_of(be, gpt2_tiny()); }

/* The shipped serve plans expand as documented, and --model overrides their model. */
static void test_plans(const char *src) {
    char path[1024];
    hb_plan p;
    hb_err err = {{0}};
    snprintf(path, sizeof path, "%s/workloads/plans/serve-sweep.yaml", src);
    CHECK_MSG(hb_plan_from_file(path, NULL, 0, &p, &err) == HB_OK, "%s", err.msg);
    if (!err.msg[0]) {
        CHECK(p.n_cases == 24);
        int n118 = 0, n811 = 0;
        for (int i = 0; i < p.n_cases; i++) {
            const hb_case *c = &p.cases[i];
            CHECK(c->workload == HB_WL_SERVE && !strcmp(c->model.name, "llama3.1-8b") && c->dtype == HB_BF16);
            n118 += c->isl == 1024 && c->osl == 8192;
            n811 += c->isl == 8192 && c->osl == 1024;
            CHECK(hb_case_serve_requests(c) == 10 * c->concurrency);
        }
        CHECK(n118 == 8 && n811 == 8 && p.cases[7].concurrency == 128);
        hb_plan_free(&p);
    }
    const hb_kv ov[] = {{"layers", "2"}, {"dtype", "f32"}};
    CHECK_MSG(hb_plan_from_file(path, ov, 2, &p, &err) == HB_OK, "%s", err.msg);
    if (!err.msg[0]) {
        CHECK(p.n_cases == 24 && p.cases[0].model.n_layers == 2 && p.cases[23].dtype == HB_F32);
        hb_plan_free(&p);
    }
    /* a model whose context cannot hold 1k + 8k: refused, naming the plan's line */
    const hb_kv ov70[] = {{"model", "llama3-70b"}};
    memset(&err, 0, sizeof err);
    CHECK(hb_plan_from_file(path, ov70, 1, &p, &err) == HB_ERR_INPUT);
    CHECK_MSG(strstr(err.msg, "serve-sweep.yaml:") && strstr(err.msg, "exceeds max_seq 8192"), "%s", err.msg);
    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "%s/workloads/plans/serve-cpu.yaml", src);
    CHECK_MSG(hb_plan_from_file(path, NULL, 0, &p, &err) == HB_OK, "%s", err.msg);
    if (!err.msg[0]) {
        CHECK(p.n_cases == 7 && p.cases[2].workload == HB_WL_SERVE && p.cases[6].concurrency == 16 && p.cases[6].requests == 32);
        hb_plan_free(&p);
    }
}

/* ---- the automatic KV cache (kv_blocks 0): sized from the device's free memory ----
 * The CPU backend with its mem_info replaced by one reporting `fake_free` bytes. With room for
 * every request in flight at its longest, the cache holds exactly that (concurrency x
 * ceil((isl + osl) / block)); with less, what 90% of the free memory holds beside the rest of
 * the case (vLLM's gpu_memory_utilization): the free memory that the plan's own estimate of the
 * case with kv_blocks K needs (mem_bytes(K) / 0.9, half a block more) gives exactly K blocks;
 * fewer blocks than one request needs fails setup (too large), naming the sizes. The capped
 * cache (12 blocks: preempting) still gives the unconstrained stream's greedy tokens. */
static int64_t fake_free;
static hb_status fake_mem_info(hb_backend *be, int64_t *free_bytes, int64_t *total_bytes) {
    (void)be;
    *free_bytes = fake_free;
    *total_bytes = fake_free;
    return HB_OK;
}

static void test_kv_sizing(hb_backend *be) {
    hb_model tiny;
    CHECK(hb_model_find("tiny", &tiny, NULL) == HB_OK);
    tiny.n_layers_full = tiny.n_layers;
    enum { ISL = 21, OSL = 9, R = 8, C = 4, BS = 4 };
    const int64_t bpr = (ISL + OSL + BS - 1) / BS; /* 8 blocks per request */
    /* bytes of one block over every layer, k and v, f32: from the model, not the workload */
    const int64_t per_block = 2 * tiny.n_layers * BS * tiny.n_kv_heads * (tiny.dim / tiny.n_heads) * 4;
    const hb_backend_ops *real = be->ops;
    hb_backend_ops ops = *real;
    ops.mem_info = fake_mem_info;
    be->ops = &ops;
    stream ref, capped;
    /* ample memory: the whole in-flight demand */
    fake_free = (int64_t)1 << 40;
    CHECK(run_stream(be, serve_case(&tiny, ISL, OSL, R, C), &ref) == 0);
    CHECK_MSG(ref.stats[HB_SV_KV_BLOCKS] == C * bpr, "auto cache with ample memory: %g blocks, expected %lld",
              ref.stats[HB_SV_KV_BLOCKS], (long long)(C * bpr));
    CHECK(ref.stats[HB_SV_PREEMPTIONS] == 0);
    for (int64_t K = bpr; K <= bpr + 4; K += 4) { /* 8 (one request) and 12 blocks */
        hb_case ck = serve_case(&tiny, ISL, OSL, R, C);
        ck.kv_blocks = K;
        hb_err err = {{0}};
        CHECK(hb_case_resolve(&ck, &err) == HB_OK);
        fake_free = (int64_t)ceil(((double)ck.cost.mem_bytes + 0.5 * (double)per_block) / 0.9);
        if (run_stream(be, serve_case(&tiny, ISL, OSL, R, C), &capped) != 0) {
            CHECK_MSG(0, "auto cache in %lld free bytes: the stream failed", (long long)fake_free);
            stream_free(&capped);
            continue;
        }
        CHECK_MSG(capped.stats[HB_SV_KV_BLOCKS] == K, "auto cache in %lld free bytes: %g blocks, expected %lld",
                  (long long)fake_free, capped.stats[HB_SV_KV_BLOCKS], (long long)K);
        if (K > bpr) /* 12 blocks: two requests admitted, one preempted when both grow */
            CHECK_MSG(capped.stats[HB_SV_PREEMPTIONS] > 0, "%lld blocks for 4 requests of 8: no preemption", (long long)K);
        CHECK_MSG(!memcmp(capped.tokens, ref.tokens, sizeof(int32_t) * R * (ISL + OSL)), "a capped cache changed the tokens");
        for (int64_t r = 0; r < R; r++) CHECK(capped.rec[r * HB_SERVE_REQ_COLS + 4] == OSL);
        stream_free(&capped);
        if (K == bpr) { /* half a block less than one request: refused at setup */
            fake_free = (int64_t)(((double)ck.cost.mem_bytes - 0.5 * (double)per_block) / 0.9);
            hb_case c = serve_case(&tiny, ISL, OSL, R, C);
            hb_workload *w = NULL;
            memset(&err, 0, sizeof err);
            CHECK(hb_case_resolve(&c, &err) == HB_OK);
            CHECK(hb_workload_setup(be, &c, &w, &err) == HB_ERR_TOO_LARGE);
            CHECK_MSG(strstr(err.msg, "hold 7 KV blocks of 4 tokens"), "%s", err.msg);
            CHECK_MSG(strstr(err.msg, "one request of isl + osl = 30 tokens needs 8"), "%s", err.msg);
            hb_workload_free(w);
        }
    }
    stream_free(&ref);
    be->ops = real;
}

/* ---- a GPU backend against the CPU (tests/test_gpu_emu.sh: the emulated cuda module) ----
 * The same streams of tiny on both: whole prompts, chunked prefill (5 tokens per iteration)
 * with preemption (13 blocks of 4). f32: the same greedy tokens, first-token
 * logits within verify's model bound (1e-3); bf16 and fp8 caches: the first-token logits
 * within 3e-2 (verify's bf16 model bound: the attention rows' rounding through two layers). */
static void test_device(hb_backend *cpu, const char *name) {
    hb_backend *dev = NULL;
    hb_err err = {{0}};
    if (hb_backend_open(name, 0, &dev, &err) != HB_OK) {
        CHECK_MSG(0, "cannot open %s: %s", name, err.msg);
        return;
    }
    printf("# %s: %s %s\n", name, dev->info.vendor, dev->info.name);
    hb_model models[3];
    CHECK(hb_model_find("tiny", &models[0], NULL) == HB_OK);
    models[0].n_layers_full = models[0].n_layers;
    models[1] = gpt2_tiny(); /* learned positions: the embedding per segment */
    CHECK(hb_model_find("tiny-mla", &models[2], NULL) == HB_OK); /* latent slots, mla_attention per request */
    models[2].n_layers_full = models[2].n_layers;
    enum { ISL = 21, OSL = 9, R = 4 };
    const int64_t stride = ISL + OSL;
    static const struct { const char *what; int model; int64_t conc, mbt, kv_blocks; hb_kvt kvt; double bound; int tokens; } runs[] = {
        {"whole prompts", 0, R, 2048, 0, HB_KV_AUTO, 1e-3, 1}, {"chunked+preempt", 0, R, 5, 13, HB_KV_AUTO, 1e-3, 1},
        {"bf16 cache", 0, R, 5, 0, HB_KV_BF16, 3e-2, 0},       {"fp8 cache", 0, R, 5, 0, HB_KV_FP8, 3e-2, 0},
        {"gpt2 chunked", 1, R, 5, 13, HB_KV_AUTO, 1e-3, 1},    {"mla chunked", 2, R, 5, 0, HB_KV_AUTO, 1e-3, 1},
    };
    for (int i = 0; i < (int)(sizeof runs / sizeof runs[0]); i++) {
        const hb_model tiny = models[runs[i].model];
        const int64_t V = tiny.vocab;
        hb_case c = serve_case(&tiny, ISL, OSL, R, runs[i].conc);
        c.max_batch_tokens = runs[i].mbt, c.kv_blocks = runs[i].kv_blocks, c.kv_dtype = runs[i].kvt;
        stream a, b;
        if (run_stream(cpu, c, &a) != 0) continue;
        if (run_stream(dev, c, &b) != 0) {
            CHECK_MSG(0, "%s: %s: the stream failed: %s", name, runs[i].what, dev->err);
            stream_free(&a);
            continue;
        }
        const double e = max_rel(b.logits, a.logits, R * V);
        int64_t nd = 0;
        for (int64_t k = 0; k < R * stride; k++) nd += a.tokens[k] != b.tokens[k];
        printf("# %s %-16s first-token logits rel %.3e (bound %.0e), %lld of %d tokens differ, preemptions %g / %g\n",
               name, runs[i].what, e, runs[i].bound, (long long)nd, R * OSL, a.stats[HB_SV_PREEMPTIONS],
               b.stats[HB_SV_PREEMPTIONS]);
        CHECK_MSG(e < runs[i].bound, "%s: %s: first-token logits rel %.3g vs the CPU", name, runs[i].what, e);
        if (runs[i].tokens) CHECK_MSG(nd == 0, "%s: %s: %lld tokens differ from the CPU's", name, runs[i].what, (long long)nd);
        for (int64_t r = 0; r < R; r++) /* every request: its input, then osl tokens */
            CHECK(b.rec[r * HB_SERVE_REQ_COLS + 3] == ISL && b.rec[r * HB_SERVE_REQ_COLS + 4] == OSL);
        if (runs[i].kv_blocks) CHECK(b.stats[HB_SV_PREEMPTIONS] > 0 || hb_model_is_mla(&tiny));
        stream_free(&a), stream_free(&b);
    }
    hb_backend_close(dev);
}

int main(int argc, char **argv) {
    hb_backend *be = NULL;
    hb_err err = {{0}};
    if (argc > 3 && !strcmp(argv[2], "--device")) { /* test_serve SRC --device NAME */
        if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
            fprintf(stderr, "cannot open cpu backend: %s\n", err.msg);
            return 1;
        }
        test_device(be, argv[3]);
        hb_backend_close(be);
        HB_TEST_END();
    }
    if (argc > 1) test_plans(argv[1]);
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cannot open cpu backend: %s\n", err.msg);
        return 1;
    }
    test_paged_op(be, HB_F32);
    test_paged_op(be, HB_BF16);
    test_paged_op(be, HB_F16);
    test_paged_op(be, HB_FP8_E4M3);
    test_workload(be, "tiny");
    test_workload(be, "tiny-moe");
    test_workload(be, "tiny-mla"); /* MLA: latent slots, mla_attention per request */
    test_learned_positions(be);
    test_kv_sizing(be);
    hb_backend_close(be);
    HB_TEST_END();
}
