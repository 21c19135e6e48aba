/* workload.c - workload names, case labels, and the gemm and stream workloads; dispatch of
 * setup/step/teardown to the transformer workloads (transformer.c). The output fingerprint is
 * in fingerprint.c. */
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_impl.h"

static const char *const wl_names[HB_WL_COUNT] = {"gemm", "stream", "prefill", "decode"};

const char *hb_workload_name(hb_workload_kind w) {
    return (w >= 0 && w < HB_WL_COUNT) ? wl_names[w] : "?";
}

int hb_workload_parse(const char *s, hb_workload_kind *out) {
    for (int i = 0; i < HB_WL_COUNT; i++)
        if (strcmp(s, wl_names[i]) == 0) { *out = (hb_workload_kind)i; return 0; }
    return -1;
}

const char *hb_stream_op_name(hb_stream_op op) { return op == HB_STREAM_COPY ? "copy" : "triad"; }

void hb_case_label(const hb_case *c, char *buf, int len) {
    switch (c->workload) {
    case HB_WL_GEMM:
        snprintf(buf, len, "gemm %s M=%lld N=%lld K=%lld", hb_dtype_name(c->dtype), (long long)c->m,
                 (long long)c->n, (long long)c->k);
        break;
    case HB_WL_STREAM:
        snprintf(buf, len, "stream %s n=%lld", hb_stream_op_name(c->stream_op), (long long)c->stream_n);
        break;
    case HB_WL_PREFILL:
    case HB_WL_DECODE: {
        char layers[32] = "";
        if (c->model.n_layers != c->model.n_layers_full)
            snprintf(layers, sizeof layers, "[%lld/%lldL]", (long long)c->model.n_layers,
                     (long long)c->model.n_layers_full);
        if (c->workload == HB_WL_PREFILL)
            snprintf(buf, len, "prefill %s%s %s B=%lld P=%lld", c->model.name, layers,
                     hb_dtype_name(c->dtype), (long long)c->batch, (long long)c->prompt);
        else
            snprintf(buf, len, "decode %s%s %s B=%lld P=%lld G=%lld", c->model.name, layers,
                     hb_dtype_name(c->dtype), (long long)c->batch, (long long)c->prompt,
                     (long long)c->gen);
        break;
    }
    default:
        snprintf(buf, len, "?");
    }
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

/* ---- stream: copy c = a, triad a = b + 3 c (McCalpin's STREAM kernels) ---- */
typedef struct stream_state {
    float *a, *b, *c;
} stream_state;

static hb_status stream_step(hb_workload *w) {
    stream_state *st = w->impl;
    const hb_case *c = &w->c;
    if (c->stream_op == HB_STREAM_COPY)
        HB_TRY(w->be->ops->copy(w->be, st->c, st->a, (size_t)c->stream_n * 4));
    else
        HB_TRY(HB_OP(w->be, add, st->a, st->b, st->c, 3.0f, c->stream_n));
    if (!w->have_fp) {
        float *out = c->stream_op == HB_STREAM_COPY ? st->c : st->a;
        int64_t n = c->stream_n < 4096 ? c->stream_n : 4096;
        HB_TRY(hb_fingerprint_device(w->be, out, n, n, w->fp));
        w->have_fp = 1;
    }
    return HB_OK;
}

static void stream_free(hb_workload *w) {
    stream_state *st = w->impl;
    if (!st) return;
    w->be->ops->free(w->be, st->a);
    w->be->ops->free(w->be, st->b);
    w->be->ops->free(w->be, st->c);
    free(st);
}

static hb_status stream_setup(hb_workload *w, hb_err *err) {
    const hb_case *c = &w->c;
    hb_backend *be = w->be;
    stream_state *st = calloc(1, sizeof *st);
    if (!st) return HB_ERR_NOMEM;
    w->impl = st;
    w->step = stream_step;
    w->free_impl = stream_free;
    size_t nb = (size_t)c->stream_n * 4;
    if (be->ops->alloc(be, nb, (void **)&st->a) || be->ops->alloc(be, nb, (void **)&st->b) ||
        be->ops->alloc(be, nb, (void **)&st->c))
        return hb_errf(err, HB_ERR_NOMEM, "stream: allocation failed: %s", be->err);
    w->out = c->stream_op == HB_STREAM_COPY ? st->c : st->a;
    w->out_n = c->stream_n;
    /* the fill also first-touches the pages in the threads that will use them */
    HB_TRY(HB_OP(be, fill_random, st->a, HB_F32, c->stream_n, hb_rng_u64(c->seed, 1), 1.0f, 0.0f));
    HB_TRY(HB_OP(be, fill_random, st->b, HB_F32, c->stream_n, hb_rng_u64(c->seed, 2), 1.0f, 0.0f));
    HB_TRY(HB_OP(be, fill_random, st->c, HB_F32, c->stream_n, hb_rng_u64(c->seed, 3), 1.0f, 0.0f));
    return HB_OK;
}

/* ---- dispatch ---- */
hb_status hb_workload_setup(hb_backend *be, const hb_case *c, hb_workload **out, hb_err *err) {
    *out = NULL;
    hb_workload *w = calloc(1, sizeof *w);
    if (!w) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    w->be = be;
    w->c = *c;
    hb_status s;
    switch (c->workload) {
    case HB_WL_GEMM: s = gemm_setup(w, err); break;
    case HB_WL_STREAM: s = stream_setup(w, err); break;
    case HB_WL_PREFILL:
    case HB_WL_DECODE: s = hb_transformer_setup(w, err); break;
    default: s = hb_errf(err, HB_ERR_INTERNAL, "unknown workload %d", (int)c->workload);
    }
    if (s == HB_OK) s = be->ops->sync(be);
    if (s != HB_OK) {
        if (err && !err->msg[0]) hb_errf(err, s, "%s: setup failed: %s", hb_workload_name(c->workload),
                                         be->err[0] ? be->err : hb_status_str(s));
        hb_workload_free(w);
        return s;
    }
    *out = w;
    return HB_OK;
}

hb_status hb_workload_step(hb_workload *w) { return w->step(w); }

hb_status hb_workload_output(const hb_workload *w, float **host, int64_t *n) {
    *host = malloc((size_t)w->out_n * sizeof **host);
    if (!*host) return HB_ERR_NOMEM;
    *n = w->out_n;
    hb_status s = w->be->ops->download(w->be, *host, w->out, (size_t)w->out_n * sizeof **host);
    if (s == HB_OK) s = w->be->ops->sync(w->be);
    if (s != HB_OK) {
        free(*host);
        *host = NULL;
        *n = 0;
    }
    return s;
}

hb_status hb_workload_fingerprint(const hb_workload *w, double fp[HB_FP_LEN]) {
    if (!w->have_fp) return HB_ERR_INTERNAL;
    memcpy(fp, w->fp, sizeof w->fp);
    return HB_OK;
}

void hb_workload_free(hb_workload *w) {
    if (!w) return;
    if (w->free_impl) w->free_impl(w);
    free(w);
}
