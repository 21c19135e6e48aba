/* test_models.c - presets carry the published parameter counts; validation; analytic costs
 * checked against hand-derived formulas. */
#include "hbtest.h"
#include "workloads/workload.h"

int main(void) {
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
    hb_model m;
    hb_err err = {{0}};
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
    CHECK(hb_case_cost(&c, &k) == HB_OK);
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
    CHECK(hb_case_cost(&c, &k) == HB_OK);
    double blocks = 32.0 * (4096.0 * 6144 + 4096.0 * 4096 + 3 * 4096.0 * 14336);
    CHECK_NEAR(k.flops, 8 * 2 * blocks + 2 * (2 * 4096.0 * 128256) + 2 * (4.0 * 32 * 32 * 128 * 10), 1);
    CHECK(k.tokens_in == 8);
    c.workload = HB_WL_GEMM, c.m = 3, c.n = 5, c.k = 7, c.dtype = HB_BF16;
    CHECK(hb_case_cost(&c, &k) == HB_OK);
    CHECK_NEAR(k.flops, 2 * 3 * 5 * 7, 0);
    CHECK_NEAR(k.bytes, 2 * 21 + 2 * 35 + 4 * 15, 0); /* A and W in bf16, C in f32 */
    c.workload = HB_WL_STREAM, c.stream_n = 100, c.stream_op = HB_STREAM_TRIAD;
    CHECK(hb_case_cost(&c, &k) == HB_OK);
    CHECK_NEAR(k.bytes, 1200, 0);
    HB_TEST_END();
}
