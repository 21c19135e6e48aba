/* gemm.c - the gemm workload: one M x N x K GEMM per iteration, the compute ceiling. Fills the
 * descriptor hb_wl_gemm (workload.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload_impl.h"

static void gemm_label(const hb_case *c, char *buf, int len) {
    snprintf(buf, len, "gemm %s M=%lld N=%lld K=%lld", hb_case_dtype_name(c), (long long)c->m,
             (long long)c->n, (long long)c->k);
}

/* f32 scales of fp8-block operands: A in 1 x qb tiles, W in qb x qb blocks */
static int64_t scales_a(const hb_case *c) {
    return c->quant == HB_QUANT_BLOCK ? c->m * ((c->k + c->quant_block - 1) / c->quant_block) : 0;
}
static int64_t scales_w(const hb_case *c) {
    int64_t b = c->quant_block;
    return c->quant == HB_QUANT_BLOCK ? ((c->n + b - 1) / b) * ((c->k + b - 1) / b) : 0;
}

static hb_status gemm_cost(const hb_case *c, hb_cost *k) {
    double ws = (double)hb_dtype_size(c->dtype);
    k->flops = 2.0 * c->m * c->n * c->k;
    /* A and W in dtype (and their scales), C f32 */
    k->bytes = ws * c->m * c->k + ws * c->n * c->k + 4.0 * c->m * c->n + 4.0 * (scales_a(c) + scales_w(c));
    k->mem_bytes = (int64_t)k->bytes;
    return HB_OK;
}

/* ---- gemm: c (M, N) = a (M, K) @ w (N, K)^T ---- */
/* A (M, K) and W (N, K) both in the case's dtype, C (M, N) f32: the GEMM alone, as a vendor
 * GEMM benchmark measures it (no activation cast). fp8: scale 1 (quant none), or fp8-block:
 * A in 1 x qb tiles and W in qb x qb blocks with their scales (DeepSeek-V3's GEMM). */
typedef struct gemm_state {
    float *c;
    void *a, *w;
    float *sa, *sw; /* fp8-block scales */
} gemm_state;

static hb_tensor gemm_a(const gemm_state *g, const hb_case *c) {
    hb_tensor t = hb_t2(g->a, c->dtype, c->m, c->k, c->k);
    return c->quant == HB_QUANT_BLOCK ? hb_tq(t, HB_QUANT_BLOCK, 1, c->quant_block, g->sa) : t;
}
static hb_tensor gemm_w(const gemm_state *g, const hb_case *c) {
    hb_tensor t = hb_t2(g->w, c->dtype, c->n, c->k, c->k);
    return c->quant == HB_QUANT_BLOCK ? hb_tq(t, HB_QUANT_BLOCK, c->quant_block, c->quant_block, g->sw) : t;
}

static hb_status gemm_step(hb_workload *w) {
    gemm_state *g = w->impl;
    const hb_case *c = &w->c;
    HB_TRY(HB_OP(w->be, matmul, .out = hb_t2(g->c, HB_F32, c->m, c->n, c->n), .a = gemm_a(g, c), .w = gemm_w(g, c)));
    if (!w->have_fp) {
        HB_TRY(hb_fingerprint_device(w->be, g->c, c->m * c->n, c->n, w->fp));
        w->have_fp = 1;
    }
    return HB_OK;
}

static void gemm_free(hb_workload *w) {
    gemm_state *g = w->impl;
    if (!g) return;
    w->be->ops->free(w->be, g->a);
    w->be->ops->free(w->be, g->w);
    w->be->ops->free(w->be, g->c);
    w->be->ops->free(w->be, g->sa);
    w->be->ops->free(w->be, g->sw);
    free(g);
}

static hb_status gemm_setup(hb_workload *w, hb_err *err) {
    const hb_case *c = &w->c;
    hb_backend *be = w->be;
    gemm_state *g = calloc(1, sizeof *g);
    if (!g) return HB_ERR_NOMEM;
    w->impl = g;
    w->step = gemm_step;
    w->free_impl = gemm_free;
    if (be->ops->alloc(be, (size_t)(c->m * c->k * hb_dtype_size(c->dtype)), &g->a) ||
        be->ops->alloc(be, (size_t)(c->n * c->k * hb_dtype_size(c->dtype)), &g->w) ||
        be->ops->alloc(be, (size_t)(c->m * c->n * 4), (void **)&g->c) ||
        (c->quant == HB_QUANT_BLOCK && (be->ops->alloc(be, (size_t)(scales_a(c) * 4), (void **)&g->sa) ||
                                        be->ops->alloc(be, (size_t)(scales_w(c) * 4), (void **)&g->sw))))
        return hb_errf(err, HB_ERR_NOMEM, "gemm: allocation failed: %s", be->err);
    w->out = g->c;
    w->out_n = c->m * c->n;
    /* fp8-block: the fills quantise the generated values and write their scales */
    HB_TRY(HB_OP(be, fill_random, .dst = gemm_a(g, c), .seed = hb_rng_u64(c->seed, 1), .scale = 1.0f));
    HB_TRY(HB_OP(be, fill_random, .dst = gemm_w(g, c), .seed = hb_rng_u64(c->seed, 2),
                 .scale = 1.0f / sqrtf((float)c->k)));
    return HB_OK;
}

/* fp8-block: N and K whole numbers of blocks. */
static hb_status gemm_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const keys[] = {"quant_block", "n", "k", NULL};
    if (c->quant != HB_QUANT_BLOCK) return HB_OK;
    *blame = keys;
    if (c->n % c->quant_block || c->k % c->quant_block)
        return hb_errf(err, HB_ERR_INPUT, "%lld does not divide n = %lld and k = %lld (accepted: a quant_block "
                       "that divides n and k)", (long long)c->quant_block, (long long)c->n, (long long)c->k);
    return HB_OK;
}

static const char *const gemm_keys[] = {"dtype", "m", "n", "k", "quant_block", NULL};

const hb_workload_desc hb_wl_gemm = {
    .name = "gemm",
    .kind = HB_WL_GEMM,
    .plan_keys = gemm_keys,
    .about = "M x N x K GEMM (m, n, k, dtype)",
    .headline = HB_HEADLINE_FLOPS,
    .label = gemm_label,
    .cost = gemm_cost,
    .check = gemm_check,
    .setup = gemm_setup,
};
