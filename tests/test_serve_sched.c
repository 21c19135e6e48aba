/* test_serve_sched.c - the serving scheduler (workloads/serve_sched.c) with a fake clock:
 * invariants after every iteration (no request lost or duplicated, blocks never shared nor
 * leaked, the token budget held, exactly osl output tokens each), preemption when the cache
 * is small, Poisson arrivals, bad configurations, and the latency statistics of a hand-made
 * trace against hand-computed values. */
#include <math.h>

#include "hbtest.h"
#include "workloads/serve_sched.h"

/* Every invariant the scheduler keeps, checked against an independent recount. */
static int check_invariants(const hb_serve_sched *s) {
    const hb_serve_cfg *c = &s->cfg;
    int bad = 0;
    /* blocks: each held by exactly the request the owner table says, free ones on the stack */
    int *seen = calloc((size_t)c->kv_blocks, sizeof *seen);
    int64_t held = 0;
    for (int64_t i = 0; i < c->requests; i++) {
        const hb_serve_req *r = &s->req[i];
        for (int64_t j = 0; j < r->n_blocks; j++) {
            int32_t b = r->blocks[j];
            if (b < 0 || b >= c->kv_blocks || seen[b]++ || s->block_owner[b] != i) bad |= 1;
            held++;
        }
        /* a request holds blocks for what it computed (and what it is about to), no more than it can need */
        if (r->n_blocks > s->max_blocks) bad |= 2;
        if ((r->state == HB_REQ_DONE || r->state == HB_REQ_PENDING) && r->n_blocks) bad |= 4;
        if (r->state == HB_REQ_WAITING && r->n_blocks) bad |= 4;
        if (r->n_out > c->osl) bad |= 8;
        if (r->computed > r->n_in + r->n_out) bad |= 16;
    }
    for (int64_t k = 0; k < s->n_free; k++) {
        int32_t b = s->free_blocks[k];
        if (b < 0 || b >= c->kv_blocks || seen[b]++ || s->block_owner[b] != -1) bad |= 32;
    }
    if (held + s->n_free != c->kv_blocks) bad |= 64; /* a leak */
    free(seen);
    /* every request in exactly one place */
    int *where = calloc((size_t)c->requests, sizeof *where);
    for (int64_t k = 0; k < s->n_waiting; k++) {
        if (s->req[s->waiting[k]].state != HB_REQ_WAITING) bad |= 128;
        where[s->waiting[k]]++;
    }
    for (int64_t k = 0; k < s->n_running; k++) {
        if (s->req[s->running[k]].state != HB_REQ_RUNNING) bad |= 128;
        where[s->running[k]]++;
    }
    int64_t done = 0;
    for (int64_t i = 0; i < c->requests; i++) {
        hb_serve_state st = s->req[i].state;
        int want = st == HB_REQ_WAITING || st == HB_REQ_RUNNING;
        if (where[i] != want) bad |= 256;
        done += st == HB_REQ_DONE;
    }
    if (done != s->n_done) bad |= 512;
    free(where);
    return bad;
}

/* plan's segments: within budget, one per request at most, contiguous with computed */
static int check_plan(const hb_serve_sched *s) {
    int bad = 0;
    int64_t tok = 0;
    for (int64_t j = 0; j < s->n_seg; j++) {
        const hb_serve_seg *g = &s->seg[j];
        const hb_serve_req *r = &s->req[g->req];
        for (int64_t k = 0; k < j; k++)
            if (s->seg[k].req == g->req) bad |= 1;
        if (g->n < 1 || g->pos0 != r->computed || r->state != HB_REQ_RUNNING) bad |= 2;
        if (g->emits != (g->pos0 + g->n == r->n_in + r->n_out)) bad |= 4;
        if (r->n_blocks * s->cfg.block_size < g->pos0 + g->n) bad |= 8; /* blocks cover the tokens */
        tok += g->n;
    }
    if (tok != s->n_tokens || tok > s->cfg.max_batch_tokens) bad |= 16;
    return bad;
}

typedef struct run_result {
    int64_t iters, preemptions, max_running, bad;
    double t_end;
} run_result;

/* runs the stream to the end on a fake clock: each iteration costs 1 ms + 0.01 ms per token */
static run_result run_stream(hb_serve_sched *s) {
    run_result rr = {0};
    double now = 0;
    for (int64_t guard = 0; !hb_serve_done(s) && guard < 1000000; guard++) {
        hb_serve_plan(s, now);
        rr.bad |= check_plan(s) << 10;
        rr.bad |= check_invariants(s);
        if (s->n_running > rr.max_running) rr.max_running = s->n_running;
        if (s->n_seg == 0) {
            double t = hb_serve_next_arrival(s);
            if (!isfinite(t) || t <= now) {
                rr.bad |= 1 << 20; /* stuck: nothing runs and nothing will arrive */
                break;
            }
            now = t;
            continue;
        }
        now += 1e-3 + 1e-5 * (double)s->n_tokens;
        hb_serve_commit(s, now);
        rr.bad |= check_invariants(s);
        rr.iters++;
    }
    rr.preemptions = s->n_preemptions;
    rr.t_end = now;
    return rr;
}

static hb_serve_cfg base_cfg(void) {
    return (hb_serve_cfg){.isl = 40, .osl = 12, .range_ratio = 0.5, .requests = 30, .concurrency = 6, .seed = 7,
                          .max_batch_tokens = 32, .max_seqs = 256, .block_size = 8, .kv_blocks = 1000};
}

static void check_finished(const hb_serve_sched *s) {
    CHECK(hb_serve_done(s));
    CHECK(s->n_free == s->cfg.kv_blocks);
    for (int64_t i = 0; i < s->cfg.requests; i++) {
        const hb_serve_req *r = &s->req[i];
        CHECK_MSG(r->state == HB_REQ_DONE && r->n_out == s->cfg.osl, "request %lld: state %d, %lld tokens",
                  (long long)i, (int)r->state, (long long)r->n_out);
        CHECK(r->t_arrival <= r->t_first && r->t_first <= r->t_finish);
        for (int64_t j = 1; j < r->n_out; j++) CHECK(r->t_tokens[j] > r->t_tokens[j - 1]);
        CHECK(r->computed == r->n_in + r->n_out - 1); /* the last token is never fed */
    }
}

static void test_closed_loop(void) {
    hb_serve_cfg c = base_cfg();
    hb_serve_sched s;
    hb_err err = {0};
    CHECK(hb_serve_sched_init(&s, &c, 0, &err) == HB_OK);
    /* input lengths in [20, 40], not all equal */
    int64_t mn = 1 << 30, mx = 0;
    for (int64_t i = 0; i < c.requests; i++) {
        mn = s.req[i].n_in < mn ? s.req[i].n_in : mn;
        mx = s.req[i].n_in > mx ? s.req[i].n_in : mx;
    }
    CHECK(mn >= 20 && mx <= 40 && mn < mx);
    run_result rr = run_stream(&s);
    CHECK_MSG(rr.bad == 0, "invariant flags %#llx", (long long)rr.bad);
    CHECK(rr.preemptions == 0);
    CHECK(rr.max_running == c.concurrency); /* the closed loop keeps C in flight */
    check_finished(&s);
    /* chunked prefill happened: a 40-token prompt does not fit a 32-token budget */
    hb_serve_stats st;
    CHECK(hb_serve_stats_compute(s.req, c.requests, &st) == HB_OK);
    CHECK(st.tokens_out == c.requests * c.osl);
    hb_serve_sched_free(&s);
}

static void test_preemption(void) {
    hb_serve_cfg c = base_cfg();
    c.kv_blocks = 14; /* one request needs ceil(52 / 8) = 7: two fit at their longest */
    hb_serve_sched s;
    hb_err err = {0};
    CHECK(hb_serve_sched_init(&s, &c, 0, &err) == HB_OK);
    run_result rr = run_stream(&s);
    CHECK_MSG(rr.bad == 0, "invariant flags %#llx", (long long)rr.bad);
    CHECK_MSG(rr.preemptions > 0, "no preemption with 14 blocks");
    check_finished(&s);
    int64_t sum = 0;
    for (int64_t i = 0; i < c.requests; i++) sum += s.req[i].preemptions;
    CHECK(sum == rr.preemptions);
    hb_serve_sched_free(&s);
    /* the smallest cache that holds one request: serial, no deadlock */
    c.kv_blocks = 7;
    CHECK(hb_serve_sched_init(&s, &c, 0, &err) == HB_OK);
    rr = run_stream(&s);
    CHECK_MSG(rr.bad == 0, "invariant flags %#llx", (long long)rr.bad);
    check_finished(&s);
    hb_serve_sched_free(&s);
}

static void test_poisson(void) {
    hb_serve_cfg c = base_cfg();
    c.rate = 50; /* requests/s; mean gap 20 ms */
    c.requests = 200;
    c.concurrency = 0;
    hb_serve_sched s;
    hb_err err = {0};
    CHECK(hb_serve_sched_init(&s, &c, 10.0, &err) == HB_OK);
    double prev = 10.0, sum = 0;
    for (int64_t i = 0; i < c.requests; i++) {
        CHECK(s.req[i].t_arrival > prev - 1e-15);
        sum += s.req[i].t_arrival - prev;
        prev = s.req[i].t_arrival;
    }
    /* mean gap 1/R within 4 standard errors (sd of an exponential = mean) */
    CHECK_NEAR(sum / (double)c.requests, 1.0 / c.rate, 4.0 / c.rate / sqrt((double)c.requests));
    hb_serve_sched_free(&s);
    CHECK(hb_serve_sched_init(&s, &c, 0, &err) == HB_OK);
    run_result rr = run_stream(&s);
    CHECK_MSG(rr.bad == 0, "invariant flags %#llx", (long long)rr.bad);
    check_finished(&s);
    for (int64_t i = 0; i < c.requests; i++) CHECK(s.req[i].t_first > s.req[i].t_arrival);
    hb_serve_sched_free(&s);
}

static void test_bad(void) {
    hb_serve_cfg c;
    hb_serve_sched s;
    hb_err err;
#define BAD(stmt, key)                                                                        \
    do {                                                                                      \
        c = base_cfg();                                                                       \
        stmt;                                                                                 \
        memset(&err, 0, sizeof err);                                                          \
        CHECK(hb_serve_sched_init(&s, &c, 0, &err) == HB_ERR_INPUT);                          \
        CHECK_MSG(strncmp(err.msg, key, strlen(key)) == 0, "message \"%s\", wanted %s", err.msg, key); \
    } while (0)
    BAD(c.concurrency = 0, "concurrency");
    BAD(c.requests = 5, "requests");
    BAD(c.range_ratio = 0, "range_ratio");
    BAD(c.range_ratio = 1.5, "range_ratio");
    BAD(c.kv_blocks = 6, "kv_blocks");
    BAD(c.max_batch_tokens = 0, "max_batch_tokens");
#undef BAD
}

/* A hand-made trace of two requests, the statistics computed by hand. */
static void test_stats(void) {
    double t0[3] = {1.0, 1.5, 2.5}, t1[4] = {3.0, 3.2, 3.6, 4.2};
    hb_serve_req r[2] = {
        {.n_in = 10, .n_out = 3, .t_arrival = 0.0, .t_first = 1.0, .t_finish = 2.5, .t_tokens = t0},
        {.n_in = 20, .n_out = 4, .t_arrival = 2.0, .t_first = 3.0, .t_finish = 4.2, .t_tokens = t1, .preemptions = 2},
    };
    hb_serve_stats st;
    CHECK(hb_serve_stats_compute(r, 2, &st) == HB_OK);
    /* TTFT 1.0, 1.0; TPOT (2.5-1)/2 = 0.75, (4.2-3)/3 = 0.4; ITL 0.5 1.0 0.2 0.4 0.6;
     * e2e 2.5, 2.2; duration 0 .. 4.2 */
    CHECK_NEAR(st.ttft_s[0], 1.0, 1e-12);
    CHECK_NEAR(st.ttft_s[2], 1.0, 1e-12);
    CHECK_NEAR(st.tpot_s[0], 0.575, 1e-12);           /* midpoint of 0.4 and 0.75 */
    CHECK_NEAR(st.tpot_s[1], 0.4 + 0.9 * 0.35, 1e-12);
    CHECK_NEAR(st.tpot_s[2], 0.4 + 0.99 * 0.35, 1e-12);
    /* ITL sorted 0.2 0.4 0.5 0.6 1.0: p50 = 0.5, p90 = 0.6 + 0.6 * 0.4 = 0.84, p99 = 0.6 + 0.96 * 0.4 */
    CHECK_NEAR(st.itl_s[0], 0.5, 1e-12);
    CHECK_NEAR(st.itl_s[1], 0.84, 1e-12);
    CHECK_NEAR(st.itl_s[2], 0.984, 1e-12);
    CHECK_NEAR(st.e2e_s[0], 2.35, 1e-12);
    CHECK_NEAR(st.duration_s, 4.2, 1e-12);
    CHECK_NEAR(st.out_tokens_per_s, 7 / 4.2, 1e-12);
    CHECK_NEAR(st.total_tokens_per_s, 37 / 4.2, 1e-12);
    CHECK_NEAR(st.requests_per_s, 2 / 4.2, 1e-12);
    CHECK_NEAR(st.interactivity, 1 / 0.575, 1e-12);
    CHECK(st.tokens_in == 30 && st.tokens_out == 7 && st.preemptions == 2);
    double one[1] = {3.0};
    CHECK_NEAR(hb_serve_percentile(one, 1, 0.99), 3.0, 0);
    CHECK(isnan(hb_serve_percentile(one, 0, 0.5)));
}

int main(void) {
    test_closed_loop();
    test_preemption();
    test_poisson();
    test_bad();
    test_stats();
    HB_TEST_END();
}
