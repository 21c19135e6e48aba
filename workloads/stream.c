/* stream.c - the stream workload: McCalpin's copy or triad over f32 arrays, the bandwidth
 * ceiling. Fills the descriptor hb_wl_stream (workload.h). */
#include <stdio.h>
#include <stdlib.h>

#include "workload_impl.h"

const char *hb_stream_op_name(hb_stream_op op) { return op == HB_STREAM_COPY ? "copy" : "triad"; }

static void stream_label(const hb_case *c, char *buf, int len) {
    snprintf(buf, len, "stream %s n=%lld", hb_stream_op_name(c->stream_op), (long long)c->stream_n);
}

/* Bytes of one of the three f32 arrays, checked (an overflow is an input error naming it). */
static hb_status stream_array_bytes(const hb_case *c, int64_t *nb, hb_err *err) {
    int64_t all;
    if (hb_mul_ovf(c->stream_n, 4, nb) || hb_mul_ovf(*nb, 3, &all))
        return hb_errf(err, HB_ERR_INPUT, "stream n=%lld: the size of 3 arrays x n x 4 bytes = 3 x %lld x 4 "
                       "overflows 64 bits (accepted: stream_n whose arrays fit in memory)", (long long)c->stream_n,
                       (long long)c->stream_n);
    return HB_OK;
}

static hb_status stream_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    int64_t nb;
    HB_TRY(stream_array_bytes(c, &nb, err));
    k->bytes = (c->stream_op == HB_STREAM_COPY ? 2.0 : 3.0) * (double)nb;
    k->mem_bytes = 3 * nb;
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
        HB_TRY(HB_OP(w->be, add, .out = hb_t1(st->a, HB_F32, c->stream_n), .a = hb_t1(st->b, HB_F32, c->stream_n),
                     .b = hb_t1(st->c, HB_F32, c->stream_n), .s = 3.0f));
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
    int64_t nb64;
    HB_TRY(stream_array_bytes(c, &nb64, err));
    const size_t nb = (size_t)nb64;
    if (be->ops->alloc(be, nb, (void **)&st->a) || be->ops->alloc(be, nb, (void **)&st->b) ||
        be->ops->alloc(be, nb, (void **)&st->c))
        return hb_errf(err, HB_ERR_NOMEM, "stream: allocation failed: %s", be->err);
    w->out = c->stream_op == HB_STREAM_COPY ? st->c : st->a;
    w->out_n = c->stream_n;
    /* the fill also first-touches the pages in the threads that will use them */
    HB_TRY(HB_OP(be, fill_random, .dst = hb_t1(st->a, HB_F32, c->stream_n), .seed = hb_rng_u64(c->seed, 1), .scale = 1.0f));
    HB_TRY(HB_OP(be, fill_random, .dst = hb_t1(st->b, HB_F32, c->stream_n), .seed = hb_rng_u64(c->seed, 2), .scale = 1.0f));
    HB_TRY(HB_OP(be, fill_random, .dst = hb_t1(st->c, HB_F32, c->stream_n), .seed = hb_rng_u64(c->seed, 3), .scale = 1.0f));
    return HB_OK;
}

static const char *const stream_keys[] = {"stream_n", "stream_op", NULL};

const hb_workload_desc hb_wl_stream = {
    .name = "stream",
    .kind = HB_WL_STREAM,
    .plan_keys = stream_keys,
    .about = "copy or triad over stream_n f32",
    .headline = HB_HEADLINE_BYTES,
    .label = stream_label,
    .cost = stream_cost,
    .setup = stream_setup,
};
