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

/* Bytes of the five buffers setup allocates: A (M, K) and W (N, K) in dtype, C (M, N) f32 and,
 * for fp8-block, the f32 scales of A in 1 x qb tiles and of W in qb x qb blocks. Checked: a
 * product that does not fit int64_t is an input error naming it, so the memory estimate and
 * the allocations can never wrap. */
enum { GA, GW, GC, GSA, GSW, G_BUFS };
static hb_status gemm_sizes(const hb_case *c, int64_t nb[G_BUFS], int64_t *total, hb_err *err) {
    const int64_t ws = hb_dtype_size(c->dtype), qb = c->quant_block > 0 ? c->quant_block : 1;
    const int blk = c->quant == HB_QUANT_BLOCK;
    const int64_t kb = c->k / qb + (c->k % qb != 0), nbk = c->n / qb + (c->n % qb != 0);
    const struct { const char *what; int64_t a, b, s; } p[G_BUFS] = {
        [GA] = {"A (m x k x dtype bytes)", c->m, c->k, ws},
        [GW] = {"W (n x k x dtype bytes)", c->n, c->k, ws},
        [GC] = {"C (m x n x 4 bytes)", c->m, c->n, 4},
        [GSA] = {"A's scales (m x k/quant_block x 4 bytes)", blk ? c->m : 0, kb, 4},
        [GSW] = {"W's scales (n/quant_block x k/quant_block x 4 bytes)", blk ? nbk : 0, kb, 4},
    };
    *total = 0;
    for (int i = 0; i < G_BUFS; i++) {
        int64_t ab;
        if (hb_mul_ovf(p[i].a, p[i].b, &ab) || hb_mul_ovf(ab, p[i].s, &nb[i]) || hb_add_ovf(*total, nb[i], total))
            return hb_errf(err, HB_ERR_INPUT, "gemm M=%lld N=%lld K=%lld: the size of %s = %lld x %lld x %lld "
                           "overflows 64 bits (accepted: m, n, k whose buffers fit in memory)", (long long)c->m,
                           (long long)c->n, (long long)c->k, p[i].what, (long long)p[i].a, (long long)p[i].b,
                           (long long)p[i].s);
    }
    return HB_OK;
}

static hb_status gemm_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    int64_t nb[G_BUFS], total;
    HB_TRY(gemm_sizes(c, nb, &total, err));
    k->flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
    /* A and W in dtype (and their scales), C f32: each once */
    k->bytes = (double)total;
    k->mem_bytes = total;
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
    int64_t nb[G_BUFS], total;
    HB_TRY(gemm_sizes(c, nb, &total, err));
    if (be->ops->alloc(be, (size_t)nb[GA], &g->a) || be->ops->alloc(be, (size_t)nb[GW], &g->w) ||
        be->ops->alloc(be, (size_t)nb[GC], (void **)&g->c) ||
        (c->quant == HB_QUANT_BLOCK && (be->ops->alloc(be, (size_t)nb[GSA], (void **)&g->sa) ||
                                        be->ops->alloc(be, (size_t)nb[GSW], (void **)&g->sw))))
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
