/* serve_sched.c - the serving scheduler (serve_sched.h): request stream, continuous batching,
 * paged KV blocks, preemption by recompute, and the latency statistics of a finished stream. */
#include "serve_sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/dtype.h" // defines: hb_rng_u64, hb_rng_unit

/* seed streams of the scheduler's draws, apart from the model's */
#define LEN_STREAM 0x5e12e001ULL
#define ARRIVAL_STREAM 0x5e12e002ULL

int64_t hb_serve_input_len(const hb_serve_cfg *cfg, int64_t i) {
    int64_t lo = (int64_t)ceil(cfg->range_ratio * (double)cfg->isl - 1e-9);
    if (lo < 1) lo = 1;
    if (lo > cfg->isl) lo = cfg->isl;
    uint64_t span = (uint64_t)(cfg->isl - lo + 1);
    return lo + (int64_t)(hb_rng_u64(cfg->seed ^ LEN_STREAM, (uint64_t)i) % span);
}

int64_t hb_serve_blocks_for(const hb_serve_cfg *cfg, int64_t n) { return (n + cfg->block_size - 1) / cfg->block_size; }

/* exponential inter-arrival gap before request i (mean 1 / rate) */
static double poisson_gap(const hb_serve_cfg *cfg, int64_t i) {
    double u = (double)(hb_rng_u64(cfg->seed ^ ARRIVAL_STREAM, (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);
    return -log1p(-u) / cfg->rate;
}

void hb_serve_sched_free(hb_serve_sched *s) {
    if (!s) return;
    if (s->req)
        for (int64_t i = 0; i < s->cfg.requests; i++) {
            free(s->req[i].t_tokens);
            free(s->req[i].blocks);
        }
    free(s->req);
    free(s->waiting);
    free(s->running);
    free(s->free_blocks);
    free(s->block_owner);
    free(s->seg);
    memset(s, 0, sizeof *s);
}

hb_status hb_serve_sched_init(hb_serve_sched *s, const hb_serve_cfg *cfg, double t0, hb_err *err) {
    memset(s, 0, sizeof *s);
    if (cfg->isl < 1) return hb_errf(err, HB_ERR_INPUT, "isl: expected a positive number of tokens");
    if (cfg->osl < 1) return hb_errf(err, HB_ERR_INPUT, "osl: expected a positive number of tokens");
    if (!(cfg->range_ratio > 0 && cfg->range_ratio <= 1))
        return hb_errf(err, HB_ERR_INPUT, "range_ratio: %g is outside (0, 1]", cfg->range_ratio);
    if (!(cfg->rate >= 0) || isinf(cfg->rate)) return hb_errf(err, HB_ERR_INPUT, "arrival: the rate must be a positive number of requests/s");
    if (cfg->rate == 0 && cfg->concurrency < 1)
        return hb_errf(err, HB_ERR_INPUT, "concurrency: %lld is less than 1", (long long)cfg->concurrency);
    if (cfg->requests < 1) return hb_errf(err, HB_ERR_INPUT, "requests: expected at least 1");
    if (cfg->rate == 0 && cfg->requests < cfg->concurrency)
        return hb_errf(err, HB_ERR_INPUT, "requests: %lld is less than concurrency %lld", (long long)cfg->requests,
                       (long long)cfg->concurrency);
    if (cfg->block_size < 1) return hb_errf(err, HB_ERR_INPUT, "kv_block_size: expected a positive number of tokens");
    if (cfg->max_batch_tokens < 1) return hb_errf(err, HB_ERR_INPUT, "max_batch_tokens: expected at least 1");
    if (cfg->max_seqs < 1) return hb_errf(err, HB_ERR_INPUT, "max_seqs: expected at least 1");
    s->cfg = *cfg;
    if (s->cfg.max_seqs > s->cfg.max_batch_tokens) s->cfg.max_seqs = s->cfg.max_batch_tokens;
    s->max_blocks = hb_serve_blocks_for(cfg, cfg->isl + cfg->osl);
    if (cfg->kv_blocks < s->max_blocks)
        return hb_errf(err, HB_ERR_INPUT,
                       "kv_blocks: %lld blocks of %lld tokens cannot hold one request of isl + osl = %lld tokens "
                       "(%lld blocks)",
                       (long long)cfg->kv_blocks, (long long)cfg->block_size, (long long)(cfg->isl + cfg->osl),
                       (long long)s->max_blocks);
    if (cfg->kv_blocks > INT32_MAX) return hb_errf(err, HB_ERR_INPUT, "kv_blocks: %lld is too many", (long long)cfg->kv_blocks);
    const size_t n = (size_t)cfg->requests;
    s->req = calloc(n, sizeof *s->req);
    s->waiting = malloc(n * sizeof *s->waiting);
    s->running = malloc(n * sizeof *s->running);
    s->free_blocks = malloc((size_t)cfg->kv_blocks * sizeof *s->free_blocks);
    s->block_owner = malloc((size_t)cfg->kv_blocks * sizeof *s->block_owner);
    s->seg = malloc((size_t)s->cfg.max_batch_tokens * sizeof *s->seg);
    if (!s->req || !s->waiting || !s->running || !s->free_blocks || !s->block_owner || !s->seg) {
        hb_serve_sched_free(s);
        return hb_errf(err, HB_ERR_NOMEM, "serve: out of host memory for %lld requests", (long long)cfg->requests);
    }
    double t = t0;
    for (int64_t i = 0; i < cfg->requests; i++) {
        hb_serve_req *r = &s->req[i];
        r->id = i;
        r->n_in = hb_serve_input_len(cfg, i);
        r->state = HB_REQ_PENDING;
        r->t_first = r->t_finish = NAN;
        if (cfg->rate > 0) {
            t += poisson_gap(cfg, i);
            r->t_arrival = t;
        } else {
            r->t_arrival = i < cfg->concurrency ? t0 : INFINITY; /* set when a slot frees */
        }
        r->t_tokens = malloc((size_t)cfg->osl * sizeof *r->t_tokens);
        r->blocks = malloc((size_t)s->max_blocks * sizeof *r->blocks);
        if (!r->t_tokens || !r->blocks) {
            hb_serve_sched_free(s);
            return hb_errf(err, HB_ERR_NOMEM, "serve: out of host memory for %lld requests", (long long)cfg->requests);
        }
    }
    /* the stack pops block 0 first */
    for (int64_t b = 0; b < cfg->kv_blocks; b++) {
        s->free_blocks[b] = (int32_t)(cfg->kv_blocks - 1 - b);
        s->block_owner[b] = -1;
    }
    s->n_free = cfg->kv_blocks;
    return HB_OK;
}

double hb_serve_next_arrival(const hb_serve_sched *s) {
    return s->next_arrival < s->cfg.requests ? s->req[s->next_arrival].t_arrival : INFINITY;
}

int hb_serve_done(const hb_serve_sched *s) { return s->n_done == s->cfg.requests; }

static void free_blocks_of(hb_serve_sched *s, int64_t ri) {
    hb_serve_req *r = &s->req[ri];
    for (int64_t j = r->n_blocks - 1; j >= 0; j--) {
        s->block_owner[r->blocks[j]] = -1;
        s->free_blocks[s->n_free++] = r->blocks[j];
    }
    r->n_blocks = 0;
}

/* gives request ri blocks for its first n tokens; 0 when there are not enough free */
static int grow(hb_serve_sched *s, int64_t ri, int64_t n) {
    hb_serve_req *r = &s->req[ri];
    int64_t need = hb_serve_blocks_for(&s->cfg, n) - r->n_blocks;
    if (need > s->n_free) return 0;
    for (; need > 0; need--) {
        int32_t b = s->free_blocks[--s->n_free];
        s->block_owner[b] = (int32_t)ri;
        r->blocks[r->n_blocks++] = b;
    }
    return 1;
}

static void remove_running(hb_serve_sched *s, int64_t pos) {
    memmove(s->running + pos, s->running + pos + 1, (size_t)(s->n_running - pos - 1) * sizeof *s->running);
    s->n_running--;
}

/* preempts running[pos]: blocks freed, back to the head of the waiting queue, to recompute */
static void preempt(hb_serve_sched *s, int64_t pos) {
    int64_t ri = s->running[pos];
    hb_serve_req *r = &s->req[ri];
    free_blocks_of(s, ri);
    r->computed = 0;
    r->state = HB_REQ_WAITING;
    r->preemptions++;
    s->n_preemptions++;
    remove_running(s, pos);
    memmove(s->waiting + 1, s->waiting, (size_t)s->n_waiting * sizeof *s->waiting);
    s->waiting[0] = ri;
    s->n_waiting++;
}

hb_status hb_serve_plan(hb_serve_sched *s, double now) {
    /* arrivals (in index order: arrival times are non-decreasing in the index) */
    while (s->next_arrival < s->cfg.requests && s->req[s->next_arrival].t_arrival <= now) {
        s->req[s->next_arrival].state = HB_REQ_WAITING;
        s->waiting[s->n_waiting++] = s->next_arrival++;
    }
    s->n_seg = s->n_tokens = 0;
    const int64_t budget = s->cfg.max_batch_tokens;
    /* running requests, oldest admission first; victims come from the tail */
    for (int64_t p = 0; p < s->n_running && s->n_tokens < budget;) {
        int64_t ri = s->running[p];
        hb_serve_req *r = &s->req[ri];
        int64_t known = r->n_in + r->n_out;
        int64_t n = known - r->computed;
        if (n > budget - s->n_tokens) n = budget - s->n_tokens;
        while (!grow(s, ri, r->computed + n)) {
            if (p == s->n_running - 1) break; /* no one after it: it is the victim */
            preempt(s, s->n_running - 1);
        }
        if (s->req[ri].n_blocks < hb_serve_blocks_for(&s->cfg, r->computed + n)) {
            preempt(s, p); /* running[p] is now the next one */
            continue;
        }
        s->seg[s->n_seg++] = (hb_serve_seg){ri, r->computed, n, r->computed + n == known};
        s->n_tokens += n;
        p++;
    }
    /* admission: FCFS while tokens, slots and blocks last (never preempting for a newcomer) */
    while (s->n_waiting > 0 && s->n_tokens < budget && s->n_running < s->cfg.max_seqs) {
        int64_t ri = s->waiting[0];
        hb_serve_req *r = &s->req[ri];
        int64_t known = r->n_in + r->n_out;
        int64_t n = known - r->computed;
        if (n > budget - s->n_tokens) n = budget - s->n_tokens;
        if (!grow(s, ri, r->computed + n)) break;
        memmove(s->waiting, s->waiting + 1, (size_t)(s->n_waiting - 1) * sizeof *s->waiting);
        s->n_waiting--;
        r->state = HB_REQ_RUNNING;
        r->order = s->order_next++;
        s->running[s->n_running++] = ri;
        s->seg[s->n_seg++] = (hb_serve_seg){ri, r->computed, n, r->computed + n == known};
        s->n_tokens += n;
    }
    return HB_OK;
}

hb_status hb_serve_commit(hb_serve_sched *s, double now) {
    if (s->n_seg > 0) s->n_iterations++;
    for (int64_t j = 0; j < s->n_seg; j++) {
        const hb_serve_seg *g = &s->seg[j];
        hb_serve_req *r = &s->req[g->req];
        if (r->state != HB_REQ_RUNNING || g->pos0 != r->computed) return HB_ERR_INTERNAL;
        r->computed += g->n;
        if (!g->emits) continue;
        if (r->n_out == 0) r->t_first = now;
        r->t_tokens[r->n_out++] = now;
        if (r->n_out < s->cfg.osl) continue;
        /* finished */
        r->t_finish = now;
        r->state = HB_REQ_DONE;
        free_blocks_of(s, g->req);
        for (int64_t p = 0; p < s->n_running; p++)
            if (s->running[p] == g->req) {
                remove_running(s, p);
                break;
            }
        s->n_done++;
        /* closed loop: the first request not yet given a time arrives now */
        if (s->cfg.rate == 0)
            for (int64_t i = s->next_arrival; i < s->cfg.requests; i++)
                if (isinf(s->req[i].t_arrival)) {
                    s->req[i].t_arrival = now;
                    break;
                }
    }
    s->n_seg = s->n_tokens = 0;
    return HB_OK;
}

/* ---- statistics ---- */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double hb_serve_percentile(double *x, int64_t n, double q) {
    if (n <= 0) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double h = q * (double)(n - 1);
    int64_t lo = (int64_t)floor(h);
    if (lo >= n - 1) return x[n - 1];
    return x[lo] + (h - (double)lo) * (x[lo + 1] - x[lo]);
}

static void pcts(double *x, int64_t n, double out[3]) {
    out[0] = hb_serve_percentile(x, n, 0.50);
    out[1] = hb_serve_percentile(x, n, 0.90);
    out[2] = hb_serve_percentile(x, n, 0.99);
}

hb_status hb_serve_stats_compute(const hb_serve_req *req, int64_t n, hb_serve_stats *st) {
    memset(st, 0, sizeof *st);
    int64_t n_itl = 0;
    for (int64_t i = 0; i < n; i++) n_itl += req[i].n_out > 1 ? req[i].n_out - 1 : 0;
    double *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a), *itl = malloc((size_t)(n_itl > 0 ? n_itl : 1) * sizeof *itl);
    if (!a || !itl) {
        free(a);
        free(itl);
        return HB_ERR_NOMEM;
    }
    double t0 = INFINITY, t1 = -INFINITY;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const hb_serve_req *r = &req[i];
        a[i] = r->t_first - r->t_arrival;
        if (r->t_arrival < t0) t0 = r->t_arrival;
        if (r->t_finish > t1) t1 = r->t_finish;
        st->tokens_in += r->n_in;
        st->tokens_out += r->n_out;
        st->preemptions += r->preemptions;
        for (int64_t j = 1; j < r->n_out; j++) itl[k++] = r->t_tokens[j] - r->t_tokens[j - 1];
    }
    pcts(a, n, st->ttft_s);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (req[i].n_out > 1) a[m++] = (req[i].t_finish - req[i].t_first) / (double)(req[i].n_out - 1);
    pcts(a, m, st->tpot_s);
    pcts(itl, n_itl, st->itl_s);
    for (int64_t i = 0; i < n; i++) a[i] = req[i].t_finish - req[i].t_arrival;
    pcts(a, n, st->e2e_s);
    st->duration_s = n > 0 ? t1 - t0 : NAN;
    st->out_tokens_per_s = (double)st->tokens_out / st->duration_s;
    st->total_tokens_per_s = (double)(st->tokens_out + st->tokens_in) / st->duration_s;
    st->requests_per_s = (double)n / st->duration_s;
    st->interactivity = 1.0 / st->tpot_s[0];
    free(a);
    free(itl);
    return HB_OK;
}
