/* test_models.c - presets carry the published parameter counts; validation; analytic costs
 * checked against hand-derived formulas; the workload registry is consistent and resolves a
 * case's label and cost. */
#include "hbtest.h"
#include "workloads/transformer.h"
#include "workloads/workload.h"

/* Every descriptor is complete, sits at its kind's index and is found by its name. */
static void test_registry(void) {
    const hb_workload_desc *const *wl;
    int n = hb_workload_descs(&wl);
    CHECK(n == HB_WL_COUNT);
    for (int i = 0; i < n; i++) {
        const hb_workload_desc *d = wl[i];
        CHECK_MSG(d && d->kind == (hb_workload_kind)i, "registry[%d] holds kind %d", i, d ? (int)d->kind : -1);
        if (!d) continue;
        CHECK_MSG(d->name && d->plan_keys && d->about && d->label && d->cost && d->setup,
                  "descriptor %d (%s) lacks a required member", i, d->name ? d->name : "?");
        CHECK(hb_workload_desc_of((hb_workload_kind)i) == d && hb_workload_find(d->name) == d);
        hb_workload_kind k = HB_WL_COUNT;
        CHECK(hb_workload_parse(d->name, &k) == 0 && k == d->kind);
        CHECK(!strcmp(hb_workload_name(d->kind), d->name));
        for (int j = 0; j < i; j++) CHECK_MSG(strcmp(wl[j]->name, d->name), "two workloads named %s", d->name);
    }
    hb_workload_kind k;
    CHECK(hb_workload_parse("infer", &k) == -1 && !hb_workload_find("infer"));
    CHECK(hb_workload_parse("serve", &k) == 0 && k == HB_WL_SERVE && hb_workload_takes(hb_workload_desc_of(k), "isl") &&
          !hb_workload_takes(hb_workload_desc_of(k), "batch"));
    CHECK(hb_workload_parse("train", &k) == 0 && k == HB_WL_TRAIN && hb_workload_takes(hb_workload_desc_of(k), "seq"));
    CHECK(!strcmp(hb_workload_name(HB_WL_COUNT), "?") && !hb_workload_desc_of(HB_WL_COUNT));
    CHECK(hb_workload_takes(hb_workload_desc_of(HB_WL_DECODE), "gen"));
    CHECK(!hb_workload_takes(hb_workload_desc_of(HB_WL_PREFILL), "gen"));
    CHECK(!hb_workload_takes(hb_workload_desc_of(HB_WL_STREAM), "dtype"));
    CHECK(!strcmp(hb_headline_unit(hb_workload_desc_of(HB_WL_DECODE)->headline), "tokens/s"));

    /* hb_case_resolve: the descriptor's label and cost, into the case */
    hb_case c = {0};
    c.workload = HB_WL_DECODE;
    CHECK(hb_model_find("llama3-8b", &c.model, NULL) == HB_OK);
    c.model.n_layers = 2;
    c.dtype = HB_BF16, c.batch = 1, c.prompt = 128, c.gen = 32;
    CHECK(hb_case_resolve(&c, NULL) == HB_OK);
    CHECK_MSG(!strcmp(c.label, "decode llama3-8b[2/32L] bf16 B=1 P=128 G=32"), "label '%s'", c.label);
    hb_cost k2;
    CHECK(hb_case_cost(&c, &k2, NULL) == HB_OK);
    CHECK(c.cost.flops == k2.flops && c.cost.bytes == k2.bytes && c.cost.tokens_out == 1 &&
          c.cost.mem_bytes == k2.mem_bytes && c.cost.mem_bytes > 0);
    c.workload = HB_WL_STREAM, c.stream_n = 10, c.stream_op = HB_STREAM_COPY;
    CHECK(hb_case_resolve(&c, NULL) == HB_OK && !strcmp(c.label, "stream copy n=10") && c.cost.bytes == 80 &&
          c.cost.flops == 0 && c.cost.tokens_out == 0);
    c.workload = HB_WL_COUNT;
    CHECK(hb_case_resolve(&c, NULL) == HB_ERR_INTERNAL);
}

int main(void) {
    test_registry();
    /* Published counts: GPT-2 small 124,439,808 and XL 1,557,611,200 (tied head, learned
     * positions, biases); Llama 3 8B 8,030,261,248 and 70B 70,553,706,496. */
    const struct { const char *name; int64_t params; } want[] = {
        {"gpt2-124m", 124439808LL}, {"gpt2-1.5b", 1557611200LL},
        {"llama3-8b", 8030261248LL}, {"llama3-70b", 70553706496LL},
    };
    for (int i = 0; i < HB_ARRAY_LEN(want); i++) {
        hb_model m;
        CHECK(hb_model_find(want[i].name, &m, NULL) == HB_OK);
        CHECK_MSG(hb_model_n_params(&m) == want[i].params, "%s: %lld params, expected %lld", want[i].name,
                  (long long)hb_model_n_params(&m), (long long)want[i].params);
        CHECK(hb_model_validate(&m, NULL) == HB_OK);
    }
    /* MoE presets: the published totals and active counts (Mixtral 46.7B / 12.9B, Qwen3-30B-A3B
     * 30.5B / 3.3B, both counting the input and output embeddings) within 2% (Qwen's 3.3B
     * is 3.353B counted this way); and the exact counts derived by hand from config.json:
     *   mixtral: 32 x (attention 41,943,040 + 2 norms 8,192 + router 32,768 + 8 x 176,160,768)
     *            + 2 x 131,072,000 embeddings + final norm 4,096
     *   qwen3:   48 x (attention 18,874,368 + q/k norms 256 + norms 4,096 + router 262,144 + 128 x 4,718,592)
     *            + 2 x 311,164,928 + 2,048 */
    const struct { const char *name; double total, active; int64_t exact, exact_active; } moe[] = {
        {"mixtral-8x7b", 46.7e9, 12.9e9,
         32LL * (41943040 + 8192 + 32768 + 8LL * 176160768) + 2LL * 131072000 + 4096,
         32LL * (41943040 + 8192 + 32768 + 2LL * 176160768) + 2LL * 131072000 + 4096},
        {"qwen3-30b-a3b", 30.5e9, 3.3e9,
         48LL * (18874368 + 256 + 4096 + 262144 + 128LL * 4718592) + 2LL * 311164928 + 2048,
         48LL * (18874368 + 256 + 4096 + 262144 + 8LL * 4718592) + 2LL * 311164928 + 2048},
    };
    /* DeepSeek (MLA + MoE), by hand from config.json: attention per layer
     *   V3:   wq_a 7168x1536 + q_norm 1536 + wq_b 1536x(128x192) + wkv_a 7168x576 + kv_norm 512
     *         + wkv_b 512x(128x256) + wo 16384x7168 = 187,107,328
     *   Lite: wq 2048x(16x192) + wkv_a 2048x576 + 512 + wkv_b 512x(16x256) + wo 2048x2048 = 13,763,072
     * dense layers 3 x 7168 x 18432 (V3) / 3 x 2048 x 10944 (Lite); MoE layers: router (+ bias
     * for V3), shared and routed experts of 3 x dim x moe_ffn_dim each. Published: V3 671B total,
     * 37B active (without the MTP module); V2-Lite 15.7B and 2.4B - the latter not counting the
     * embeddings (2.66B with both tables, as counted here). */
    {
        const int64_t v3_attn = 7168LL * 1536 + 1536 + 1536LL * 128 * 192 + 7168LL * 576 + 512 + 512LL * 128 * 256 +
                                16384LL * 7168, v3_norms = 2 * 7168, v3_exp = 3LL * 7168 * 2048;
        const int64_t v3_moe = v3_attn + v3_norms + 256LL * 7168 + 256 + v3_exp, v3_dense = v3_attn + v3_norms + 3LL * 7168 * 18432;
        const int64_t v3_emb = 2LL * 129280 * 7168 + 7168;
        const int64_t lite_attn = 2048LL * 16 * 192 + 2048LL * 576 + 512 + 512LL * 16 * 256 + 2048LL * 2048;
        const int64_t lite_exp = 3LL * 2048 * 1408, lite_norms = 2 * 2048;
        const int64_t lite_moe = lite_attn + lite_norms + 64LL * 2048 + 2 * lite_exp;
        const int64_t lite_dense = lite_attn + lite_norms + 3LL * 2048 * 10944, lite_emb = 2LL * 102400 * 2048 + 2048;
        CHECK(v3_attn == 187107328LL && lite_attn == 13763072LL);
        hb_model mm;
        CHECK(hb_model_find("deepseek-v3", &mm, NULL) == HB_OK && hb_model_validate(&mm, NULL) == HB_OK);
        int64_t t = hb_model_n_params(&mm), a = hb_model_n_active_params(&mm);
        CHECK_MSG(t == 3 * v3_dense + 58 * (v3_moe + 256 * v3_exp) + v3_emb && a == 3 * v3_dense + 58 * (v3_moe + 8 * v3_exp) + v3_emb,
                  "deepseek-v3: %lld / %lld", (long long)t, (long long)a);
        CHECK_MSG(fabs(t / 671e9 - 1) < 0.01 && fabs(a / 37e9 - 1) < 0.02, "deepseek-v3: %.3fB / %.3fB", t / 1e9, a / 1e9);
        /* DeepSeek-V3's latent cache in bf16: (512 + 64) x 61 x 2 = 70,272 bytes per token */
        hb_case c = {0};
        c.workload = HB_WL_DECODE, c.model = mm, c.dtype = HB_BF16, c.batch = 1, c.prompt = 1, c.gen = 1;
        hb_cost k1, k2;
        CHECK(hb_case_cost(&c, &k1, NULL) == HB_OK);
        c.prompt = 2;
        CHECK(hb_case_cost(&c, &k2, NULL) == HB_OK);
        hb_tf_layout y1, y2;
        c.prompt = 1000;
        CHECK(hb_tf_layout_init(&c, 1, &y1, NULL) == HB_OK);
        c.prompt = 2000;
        CHECK(hb_tf_layout_init(&c, 1, &y2, NULL) == HB_OK);
        CHECK_MSG(y2.kv_bytes - y1.kv_bytes >= 70272000 && y2.kv_bytes - y1.kv_bytes <= 70272000 + 61 * 256,
                  "latent cache: %lld bytes per 1000 positions", (long long)(y2.kv_bytes - y1.kv_bytes));
        hb_tf_layout_free(&y1), hb_tf_layout_free(&y2);
        CHECK_NEAR(k2.bytes - k1.bytes, 70272, 1e-3);
        CHECK(hb_model_find("deepseek-v2-lite", &mm, NULL) == HB_OK && hb_model_validate(&mm, NULL) == HB_OK);
        t = hb_model_n_params(&mm), a = hb_model_n_active_params(&mm);
        CHECK_MSG(t == lite_dense + 26 * (lite_moe + 64 * lite_exp) + lite_emb && a == lite_dense + 26 * (lite_moe + 6 * lite_exp) + lite_emb,
                  "deepseek-v2-lite: %lld / %lld", (long long)t, (long long)a);
        CHECK_MSG(fabs(t / 15.7e9 - 1) < 0.01 && fabs((a - 102400.0 * 2048) / 2.4e9 - 1) < 0.03,
                  "deepseek-v2-lite: %.3fB / %.3fB", t / 1e9, a / 1e9);
    }
    for (int i = 0; i < HB_ARRAY_LEN(moe); i++) {
        hb_model mm, tw;
        CHECK(hb_model_find(moe[i].name, &mm, NULL) == HB_OK);
        CHECK(hb_model_validate(&mm, NULL) == HB_OK);
        const int64_t t = hb_model_n_params(&mm), a = hb_model_n_active_params(&mm);
        CHECK_MSG(t == moe[i].exact && a == moe[i].exact_active, "%s: %lld / %lld params", moe[i].name,
                  (long long)t, (long long)a);
        CHECK_MSG(fabs((double)t / moe[i].total - 1) < 0.02 && fabs((double)a / moe[i].active - 1) < 0.02,
                  "%s: %.3fB / %.3fB", moe[i].name, t / 1e9, a / 1e9);
        /* the dense twins: the same totals (less the router), active = the active count */
        CHECK(hb_model_dense_twin(&mm, HB_TWIN_TOTAL, &tw, NULL) == HB_OK);
        CHECK(hb_model_n_params(&tw) == t - mm.n_layers * mm.n_experts * mm.dim);
        CHECK(hb_model_n_active_params(&tw) == hb_model_n_params(&tw));
        CHECK(hb_model_dense_twin(&mm, HB_TWIN_ACTIVE, &tw, NULL) == HB_OK);
        CHECK(hb_model_n_params(&tw) == a - mm.n_layers * mm.n_experts * mm.dim);
        /* layers: N keeps the first N */
        mm.n_layers = 2;
        CHECK(hb_model_n_params(&mm) < t && hb_model_layer_moe(&mm, 1));
    }
    hb_model m;
    hb_err err = {{0}};
    /* MoE validation names the field */
    CHECK(hb_model_find("tiny-moe", &m, NULL) == HB_OK);
    CHECK(hb_model_layer_moe(&m, 1) && !hb_model_layer_moe(&m, 0) && hb_model_layer_ffn(&m, 0) == m.ffn_dim);
    m.top_k = 9;
    CHECK(hb_model_validate(&m, &err) == HB_ERR_INPUT && strstr(err.msg, "'top_k'"));
    m.top_k = 2, m.n_group = 3;
    CHECK(hb_model_validate(&m, &err) == HB_ERR_INPUT && strstr(err.msg, "'n_group'"));
    m.n_group = 4, m.topk_group = 5;
    CHECK(hb_model_validate(&m, &err) == HB_ERR_INPUT && strstr(err.msg, "'topk_group'"));
    m.topk_group = 2;
    CHECK(hb_model_validate(&m, &err) == HB_OK);
    CHECK(hb_model_find("tiny", &m, NULL) == HB_OK);
    CHECK(hb_model_dense_twin(&m, HB_TWIN_TOTAL, &m, &err) == HB_ERR_INPUT && strstr(err.msg, "no experts"));
    CHECK(hb_model_find("gpt5", &m, &err) == HB_ERR_INPUT);
    CHECK(strstr(err.msg, "unknown model 'gpt5'") && strstr(err.msg, "llama3-8b"));
    hb_model_find("tiny", &m, NULL);
    m.n_kv_heads = 3;
    CHECK(hb_model_validate(&m, &err) == HB_ERR_INPUT);
    CHECK(strstr(err.msg, "kv_heads") != NULL);
    m.n_kv_heads = 2;
    m.dim = 0;
    CHECK(hb_model_validate(&m, &err) == HB_ERR_INPUT && strstr(err.msg, "'dim'"));

    /* decode cost of llama3-8b at B=1: 2 * matmul params FLOPs plus attention */
    hb_case c = {0};
    c.workload = HB_WL_DECODE;
    hb_model_find("llama3-8b", &c.model, NULL);
    c.dtype = HB_BF16, c.batch = 1, c.prompt = 1000, c.gen = 1;
    hb_cost k;
    CHECK(hb_case_cost(&c, &k, NULL) == HB_OK);
    double matmul = 32.0 * (4096.0 * 6144 + 4096.0 * 4096 + 3 * 4096.0 * 14336) + 4096.0 * 128256;
    double attn = 4.0 * 32 * 32 * 128 * 1001; /* position 1000 attends 1001 keys */
    CHECK_NEAR(k.flops, 2 * matmul + attn, 1);
    CHECK(k.tokens_out == 1 && k.tokens_in == 0);
    /* bytes: bf16 matrices + f32 norms, embedding row, KV read (1001 positions) + write; the
     * KV cache of a bf16 model is bf16 */
    double kv = 2.0 * 32 * 8 * 128 * 2;
    double want_bytes = 2 * matmul + 4.0 * (65 * 4096) + 2.0 * 4096 + kv * 1001 + kv;
    CHECK_NEAR(k.bytes, want_bytes, 1);
    /* prefill of B=2 P=4: 8 tokens through the blocks, 2 rows through the head, causal keys 1+2+3+4 */
    c.workload = HB_WL_PREFILL, c.batch = 2, c.prompt = 4;
    CHECK(hb_case_cost(&c, &k, NULL) == HB_OK);
    double blocks = 32.0 * (4096.0 * 6144 + 4096.0 * 4096 + 3 * 4096.0 * 14336);
    CHECK_NEAR(k.flops, 8 * 2 * blocks + 2 * (2 * 4096.0 * 128256) + 2 * (4.0 * 32 * 32 * 128 * 10), 1);
    CHECK(k.tokens_in == 8);
    c.workload = HB_WL_GEMM, c.m = 3, c.n = 5, c.k = 7, c.dtype = HB_BF16;
    CHECK(hb_case_cost(&c, &k, NULL) == HB_OK);
    CHECK_NEAR(k.flops, 2 * 3 * 5 * 7, 0);
    CHECK_NEAR(k.bytes, 2 * 21 + 2 * 35 + 4 * 15, 0); /* A and W in bf16, C in f32 */
    c.workload = HB_WL_STREAM, c.stream_n = 100, c.stream_op = HB_STREAM_TRIAD;
    CHECK(hb_case_cost(&c, &k, NULL) == HB_OK);
    CHECK_NEAR(k.bytes, 1200, 0);
    HB_TEST_END();
}
