/* gemm.c - the gemm workload: one M x N x K GEMM per iteration, the compute ceiling. Fills the
 * descriptor hb_wl_gemm (workload.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload_impl.h"

static void gemm_label(const hb_case *c, char *buf, int len) {
    snprintf(buf, len, "gemm %s M=%lld N=%lld K=%lld", hb_dtype_name(c->dtype), (long long)c->m,
             (long long)c->n, (long long)c->k);
}

static hb_status gemm_cost(const hb_case *c, hb_cost *k) {
    double ws = (double)hb_dtype_size(c->dtype);
    k->flops = 2.0 * c->m * c->n * c->k;
    k->bytes = ws * c->m * c->k + ws * c->n * c->k + 4.0 * c->m * c->n; /* A and W in dtype, C f32 */
    k->mem_bytes = (int64_t)k->bytes;
    return HB_OK;
}

/* ---- gemm: c (M, N) = a (M, K) @ w (N, K)^T ---- */
/* A (M, K) and W (N, K) both in the case's dtype, C (M, N) f32: the GEMM alone, as a vendor
 * GEMM benchmark measures it (no activation cast). */
typedef struct gemm_state {
    float *c;
    void *a, *w;
} gemm_state;

static hb_status gemm_step(hb_workload *w) {
    gemm_state *g = w->impl;
    const hb_case *c = &w->c;
    HB_TRY(HB_OP(w->be, matmul, g->c, c->n, g->a, c->k, c->dtype, g->w, c->dtype, NULL, c->m, c->n, c->k, 0.0f));
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
        be->ops->alloc(be, (size_t)(c->m * c->n * 4), (void **)&g->c))
        return hb_errf(err, HB_ERR_NOMEM, "gemm: allocation failed: %s", be->err);
    w->out = g->c;
    w->out_n = c->m * c->n;
    HB_TRY(HB_OP(be, fill_random, g->a, c->dtype, c->m * c->k, hb_rng_u64(c->seed, 1), 1.0f, 0.0f));
    HB_TRY(HB_OP(be, fill_random, g->w, c->dtype, c->n * c->k, hb_rng_u64(c->seed, 2),
                 1.0f / sqrtf((float)c->k), 0.0f));
    return HB_OK;
}

static const char *const gemm_keys[] = {"dtype", "m", "n", "k", NULL};

const hb_workload_desc hb_wl_gemm = {
    .name = "gemm",
    .kind = HB_WL_GEMM,
    .plan_keys = gemm_keys,
    .about = "M x N x K GEMM (m, n, k, dtype)",
    .headline = HB_HEADLINE_FLOPS,
    .label = gemm_label,
    .cost = gemm_cost,
    .setup = gemm_setup,
};
