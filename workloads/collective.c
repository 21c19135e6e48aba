/* collective.c - the collective workload: one collective of the case's rank group per
 * iteration, with nccl-tests' definitions (src/common.h and each op's file there):
 *
 *   op              size (coll_bytes)            per rank: send / recv elements   busbw factor
 *   all_reduce      the buffer                   count / count                    2 (n - 1) / n
 *   all_gather      the gathered buffer          count / n, count                 (n - 1) / n
 *   reduce_scatter  the buffer scattered         count, count / n                 (n - 1) / n
 *   all_to_all      the buffer exchanged         count, count                     (n - 1) / n
 *   broadcast       the buffer (root 0)          count (in place)                 1
 *
 * count = coll_bytes / dtype size, rounded down to a multiple of n where the op splits it (as
 * nccl-tests does; the label and the cost use the bytes that move). algbw = size / time is the
 * headline rate (B/s), busbw = algbw x factor a /summary column, the iteration time the
 * latency. In place: all_reduce on one buffer, all_gather from the rank's own slot of the
 * output, reduce_scatter into the rank's own block of the input, all_to_all on one buffer;
 * broadcast always is one.
 *
 * Checked results: after every collective (warm-up ones and timed ones, outside the timed
 * iteration: workload_impl.h after_step) every element of the output is compared exactly with
 * the expected value - the inputs are small integers whose sums are exact in f32, bf16 and
 * f16 for up to 16 ranks - and the output is poisoned (and an in-place input restored) before
 * the next one, so a collective that writes nothing cannot pass. A mismatch fails the case
 * with the first wrong element. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_impl.h"

/* Rank r's input element i: 1..16, distinct across ranks for a given i (r < 16). */
static float value(int64_t r, int64_t i) { return (float)(1 + (i * 7 + r * 3) % 16); }

static hb_cdt cdt_of(hb_dtype t) { return t == HB_BF16 ? HB_CDT_BF16 : t == HB_F16 ? HB_CDT_F16 : HB_CDT_F32; }

/* Elements per rank: per-rank block (0 if the op does not split), send and recv counts. */
typedef struct coll_shape {
    int64_t es, n, count, block, n_send, n_recv, bytes;
} coll_shape;

static void shape_of(const hb_case *c, coll_shape *s) {
    s->es = hb_dtype_size(c->dtype);
    s->n = c->coll_ranks > 0 ? c->coll_ranks : 1;
    s->count = c->coll_bytes / s->es;
    s->block = s->count / s->n;
    switch (c->coll_op) {
    case HB_COMM_ALL_GATHER: s->n_send = s->block, s->n_recv = s->block * s->n; break;
    case HB_COMM_REDUCE_SCATTER: s->n_send = s->block * s->n, s->n_recv = s->block; break;
    case HB_COMM_ALL_TO_ALL: s->n_send = s->n_recv = s->block * s->n; break;
    default: s->n_send = s->n_recv = s->count; break; /* all_reduce, broadcast */
    }
    /* nccl-tests' size: the larger buffer */
    s->bytes = (s->n_send > s->n_recv ? s->n_send : s->n_recv) * s->es;
}

static void coll_label(const hb_case *c, char *buf, int len) {
    coll_shape s;
    shape_of(c, &s);
    const char *place = c->coll_op == HB_COMM_BROADCAST ? "in-place" : c->in_place ? "in-place" : "out-of-place";
    snprintf(buf, len, "collective %s %s %lld B ranks=%lld %s", hb_comm_op_name(c->coll_op), hb_dtype_name(c->dtype),
             (long long)s.bytes, (long long)s.n, place);
}

static hb_status coll_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    (void)err; /* coll_bytes <= 2^62 and the buffers are at most 2 x coll_bytes */
    coll_shape s;
    shape_of(c, &s);
    k->bytes = (double)s.bytes;
    k->mem_bytes = (s.n_send + s.n_recv) * s.es;
    return HB_OK;
}

static double coll_bus_factor(const hb_case *c) {
    const double n = (double)(c->coll_ranks > 0 ? c->coll_ranks : 1);
    switch (c->coll_op) {
    case HB_COMM_ALL_REDUCE: return 2.0 * (n - 1) / n;
    case HB_COMM_BROADCAST: return 1.0;
    default: return (n - 1) / n;
    }
}

static hb_status coll_check(const hb_case *c, const char *const **blame, hb_err *err) {
    static const char *const k_dtype[] = {"dtype", NULL}, *const k_ranks[] = {"coll_ranks", NULL},
                             *const k_bytes[] = {"coll_bytes", NULL}, *const k_place[] = {"in_place", NULL};
    if (c->dtype != HB_F32 && c->dtype != HB_BF16 && c->dtype != HB_F16) {
        *blame = k_dtype;
        return hb_errf(err, HB_ERR_INPUT, "collective: dtype %s (accepted: f32, bf16, f16)", hb_case_dtype_name(c));
    }
    if (c->coll_ranks < 2 || c->coll_ranks > 16) {
        *blame = k_ranks;
        return hb_errf(err, HB_ERR_INPUT, "collective: coll_ranks %lld (accepted: 2 to 16 ranks in a group; the "
                       "checked sums are exact up to 16)", (long long)c->coll_ranks);
    }
    if (c->in_place > 1) {
        *blame = k_place;
        return hb_errf(err, HB_ERR_INPUT, "collective %s: in_place %lld (accepted: 0 or 1)",
                       hb_comm_op_name(c->coll_op), (long long)c->in_place);
    }
    coll_shape s;
    shape_of(c, &s);
    if (s.block < 1) {
        *blame = k_bytes;
        return hb_errf(err, HB_ERR_INPUT, "collective %s: coll_bytes %lld is less than one %s element per rank of %lld "
                       "(accepted: coll_bytes >= %lld)", hb_comm_op_name(c->coll_op), (long long)c->coll_bytes,
                       hb_dtype_name(c->dtype), (long long)s.n, (long long)(s.n * s.es));
    }
    return HB_OK;
}

typedef struct coll_state {
    coll_shape s;
    hb_cdt cdt;
    char *send, *recv;        /* device buffers (recv == send in place for all_reduce/broadcast) */
    char *in_dev, *out_dev;   /* where the op reads and writes (views of the buffers above) */
    void *h_in;               /* host: this rank's input, in dtype (the op's input region) */
    void *h_out;              /* host: the output as downloaded */
    float *expect;            /* host: the expected output, f32 */
    void *h_poison;           /* host: the output's poison */
    int64_t n_in, n_out;      /* elements of the input and output regions */
    int64_t checks;
} coll_state;

static void put(hb_dtype t, void *p, int64_t i, float v) {
    if (t == HB_BF16) ((uint16_t *)p)[i] = hb_f32_to_bf16(v);
    else if (t == HB_F16) ((uint16_t *)p)[i] = hb_f32_to_f16(v);
    else ((float *)p)[i] = v;
}
static float get(hb_dtype t, const void *p, int64_t i) {
    if (t == HB_BF16) return hb_bf16_to_f32(((const uint16_t *)p)[i]);
    if (t == HB_F16) return hb_f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* The output restored to poison and an in-place input rewritten: the next collective starts
 * from the same state as the first. */
static hb_status coll_reset(hb_workload *w) {
    coll_state *st = w->impl;
    hb_backend *be = w->be;
    const int64_t es = st->s.es;
    HB_TRY(be->ops->upload(be, st->out_dev, st->h_poison, (size_t)(st->n_out * es)));
    HB_TRY(be->ops->upload(be, st->in_dev, st->h_in, (size_t)(st->n_in * es)));
    return be->ops->sync(be);
}

static hb_status coll_step(hb_workload *w) {
    coll_state *st = w->impl;
    hb_comm *g = w->group;
    const hb_case *c = &w->c;
    const coll_shape *s = &st->s;
    switch (c->coll_op) {
    case HB_COMM_ALL_REDUCE: return hb_comm_all_reduce(g, st->in_dev, st->out_dev, s->count, st->cdt, HB_REDOP_SUM);
    case HB_COMM_ALL_GATHER: return hb_comm_all_gather(g, st->in_dev, st->out_dev, s->block, st->cdt);
    case HB_COMM_REDUCE_SCATTER:
        return hb_comm_reduce_scatter(g, st->in_dev, st->out_dev, s->block, st->cdt, HB_REDOP_SUM);
    case HB_COMM_ALL_TO_ALL: {
        int64_t cnt[16], dsp[16];
        for (int p = 0; p < g->size; p++) cnt[p] = s->block, dsp[p] = p * s->block;
        return hb_comm_all_to_all(g, st->in_dev, cnt, dsp, st->out_dev, cnt, dsp, st->cdt);
    }
    case HB_COMM_BROADCAST: return hb_comm_broadcast(g, st->out_dev, s->count, st->cdt, 0);
    default: return HB_ERR_INTERNAL;
    }
}

/* Every element against the expected value, then the reset; the first check also gives the
 * fingerprint (of this rank's output). */
static hb_status coll_verify(hb_workload *w) {
    coll_state *st = w->impl;
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    HB_TRY(be->ops->download(be, st->h_out, st->out_dev, (size_t)(st->n_out * st->s.es)));
    HB_TRY(be->ops->sync(be));
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < st->n_out; i++)
        if (get(c->dtype, st->h_out, i) != st->expect[i]) {
            if (first < 0) first = i;
            bad++;
        }
    st->checks++;
    if (bad) {
        snprintf(be->err, sizeof be->err, "collective %s check %lld on group rank %d: %lld of %lld elements wrong; "
                 "element %lld is %g, expected %g", hb_comm_op_name(c->coll_op), (long long)st->checks,
                 w->group->rank, (long long)bad, (long long)st->n_out, (long long)first,
                 (double)get(c->dtype, st->h_out, first), (double)st->expect[first]);
        return HB_ERR_BACKEND;
    }
    if (!w->have_fp) {
        float *f = malloc((size_t)st->n_out * sizeof *f);
        if (!f) return HB_ERR_NOMEM;
        for (int64_t i = 0; i < st->n_out; i++) f[i] = get(c->dtype, st->h_out, i);
        hb_fingerprint_host(f, st->n_out, st->n_out, w->fp);
        free(f);
        w->have_fp = 1;
    }
    return coll_reset(w);
}

static void coll_free(hb_workload *w) {
    coll_state *st = w->impl;
    if (!st) return;
    w->be->ops->free(w->be, st->send);
    if (st->recv != st->send) w->be->ops->free(w->be, st->recv);
    free(st->h_in);
    free(st->h_out);
    free(st->expect);
    free(st->h_poison);
    free(st);
}

static hb_status coll_setup(hb_workload *w, hb_err *err) {
    hb_backend *be = w->be;
    const hb_case *c = &w->c;
    coll_state *st = calloc(1, sizeof *st);
    if (!st) return HB_ERR_NOMEM;
    w->impl = st;
    w->free_impl = coll_free;
    w->step = coll_step;
    w->after_step = coll_verify;
    shape_of(c, &st->s);
    const coll_shape *s = &st->s;
    st->cdt = cdt_of(c->dtype);
    hb_comm *g = w->group;
    /* the harness made a group of coll_ranks ranks on host-memory backends before dispatch */
    if (!g || g->size != s->n || strcmp(be->info.backend, "cpu") != 0)
        return hb_errf(err, HB_ERR_INTERNAL, "collective: coll_ranks %lld without a rank group of %lld CPU ranks",
                       (long long)s->n, (long long)s->n);
    const int64_t r = g->rank, B = s->block, es = s->es;
    const int in_place = c->in_place || c->coll_op == HB_COMM_BROADCAST;
    const int64_t n_send = s->n_send, n_recv = s->n_recv;
    /* buffers: in place, one buffer the size of the larger one */
    if (be->ops->alloc(be, (size_t)((in_place ? (n_send > n_recv ? n_send : n_recv) : n_send) * es), (void **)&st->send))
        return hb_errf(err, HB_ERR_NOMEM, "collective: allocation failed: %s", be->err);
    if (in_place) st->recv = st->send;
    else if (be->ops->alloc(be, (size_t)(n_recv * es), (void **)&st->recv))
        return hb_errf(err, HB_ERR_NOMEM, "collective: allocation failed: %s", be->err);
    /* the op's input and output regions */
    st->in_dev = st->send, st->out_dev = st->recv, st->n_in = n_send, st->n_out = n_recv;
    if (in_place && c->coll_op == HB_COMM_ALL_GATHER) st->in_dev = st->recv + (size_t)(r * B * es);
    if (in_place && c->coll_op == HB_COMM_REDUCE_SCATTER) st->out_dev = st->send + (size_t)(r * B * es);
    if (c->coll_op == HB_COMM_BROADCAST && r != 0) st->n_in = 0; /* only the root's input matters */
    st->h_in = malloc((size_t)((st->n_in > 0 ? st->n_in : 1) * es));
    st->h_out = malloc((size_t)(st->n_out * es));
    st->h_poison = malloc((size_t)(st->n_out * es));
    st->expect = malloc((size_t)st->n_out * sizeof *st->expect);
    if (!st->h_in || !st->h_out || !st->h_poison || !st->expect) return HB_ERR_NOMEM;
    for (int64_t i = 0; i < st->n_in; i++) put(c->dtype, st->h_in, i, value(r, i));
    for (int64_t i = 0; i < st->n_out; i++) put(c->dtype, st->h_poison, i, -1000.0f); /* never a result */
    /* the expected output, from the definitions */
    for (int64_t i = 0; i < st->n_out; i++) {
        double e = 0;
        switch (c->coll_op) {
        case HB_COMM_ALL_REDUCE:
            for (int64_t q = 0; q < s->n; q++) e += value(q, i);
            break;
        case HB_COMM_ALL_GATHER: e = value(i / B, i % B); break;
        case HB_COMM_REDUCE_SCATTER:
            for (int64_t q = 0; q < s->n; q++) e += value(q, r * B + i);
            break;
        case HB_COMM_ALL_TO_ALL: e = value(i / B, r * B + i % B); break;
        case HB_COMM_BROADCAST: e = value(0, i); break;
        default: break;
        }
        st->expect[i] = (float)e;
    }
    /* in-place all_gather: the rank's own slot holds its input, the rest is poisoned; the
     * in-place input region lies inside the output, so the reset writes the poison first */
    HB_TRY(coll_reset(w));
    w->out = NULL; /* the output is checked here, not handed out (it may be bf16) */
    w->out_n = 0;
    return HB_OK;
}

static const char *const coll_keys[] = {"collective", "dtype", "coll_bytes", "in_place", "coll_ranks", NULL};

const hb_workload_desc hb_wl_collective = {
    .name = "collective",
    .kind = HB_WL_COLLECTIVE,
    .plan_keys = coll_keys,
    .about = "one collective of a rank group (collective, coll_bytes, coll_ranks); nccl-tests' algbw, busbw",
    .headline = HB_HEADLINE_BYTES,
    .latency = 1,
    .label = coll_label,
    .cost = coll_cost,
    .check = coll_check,
    .setup = coll_setup,
    .bus_factor = coll_bus_factor,
};
