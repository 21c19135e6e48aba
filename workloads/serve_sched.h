/* serve_sched.h - the serving scheduler of the `serve` workload, with no backend dependency:
 * a request stream, continuous batching with chunked prefill, a paged KV block allocator,
 * admission control and preemption by recompute (vLLM's v1 scheduler, in miniature).
 *
 * Time is whatever the caller says it is (hb_serve_plan / hb_serve_commit take `now`): the
 * workload passes the monotonic clock, tests a fake one.
 *
 * One scheduler iteration:
 *   1. requests whose arrival time has come join the waiting queue (closed loop: at t = 0 the
 *      first `concurrency` requests arrive, then one more each time one finishes; Poisson: at
 *      seeded exponential inter-arrival times of mean 1 / rate);
 *   2. hb_serve_plan picks the iteration's segments within max_batch_tokens: first every
 *      running request (its one decode token, or the next chunk of its prefill), in admission
 *      order, then waiting requests (FCFS) as long as tokens, sequence slots and KV blocks last.
 *      A running request that needs a block when none is free preempts the most recently
 *      admitted running request not yet scheduled this iteration (itself if there is none):
 *      the victim's blocks are freed, and it returns to the head of the waiting queue to
 *      recompute its prompt and the tokens it already generated (greedy decoding makes the
 *      resumed output identical);
 *   3. the caller runs the segments through the model and hb_serve_commit records the tokens
 *      of the segments that end at the last known token of their request (`emits`).
 *
 * A request's known tokens are its n_in prompt tokens plus the n_out it generated; `computed`
 * of them have their K/V in the cache. It needs known - computed more tokens fed (1 when
 * decoding); a segment that reaches `known` yields the next token. It finishes at osl output
 * tokens (no EOS): the last generated token is never fed. */
#ifndef HB_SERVE_SCHED_H
#define HB_SERVE_SCHED_H

#include <stdint.h>

#include "../harness/status.h"

typedef struct hb_serve_cfg {
    int64_t isl, osl;          /* nominal input length, output length (tokens) */
    double range_ratio;        /* input lengths uniform in [ceil(ratio * isl), isl], (0, 1] */
    int64_t requests;          /* requests in the stream */
    int64_t concurrency;       /* closed loop: requests in flight (rate == 0) */
    double rate;               /* > 0: Poisson arrivals, requests/s (concurrency unused) */
    uint64_t seed;             /* input lengths, arrival times */
    int64_t max_batch_tokens;  /* tokens fed per iteration (decode + prefill chunks) */
    int64_t max_seqs;          /* running requests at most (<= max_batch_tokens) */
    int64_t block_size;        /* tokens per KV block */
    int64_t kv_blocks;         /* blocks in the cache */
} hb_serve_cfg;

typedef enum hb_serve_state {
    HB_REQ_PENDING = 0, /* not arrived yet */
    HB_REQ_WAITING,     /* arrived, not running (new, or preempted) */
    HB_REQ_RUNNING,
    HB_REQ_DONE,
} hb_serve_state;

typedef struct hb_serve_req {
    int64_t id;
    int64_t n_in;              /* prompt tokens */
    int64_t n_out;             /* tokens generated so far (== osl when done) */
    int64_t computed;          /* tokens with K/V in the cache */
    hb_serve_state state;
    double t_arrival, t_first, t_finish; /* seconds; t_first: first output token */
    double *t_tokens;          /* (osl) time of each output token */
    int32_t *blocks;           /* (max_blocks) block ids, n_blocks of them valid */
    int64_t n_blocks;
    int64_t preemptions;
    int64_t order;             /* admission stamp: larger = admitted later */
} hb_serve_req;

/* A piece of one request fed in one iteration: tokens pos0 .. pos0 + n - 1 of request req. */
typedef struct hb_serve_seg {
    int64_t req;
    int64_t pos0, n;
    int emits;                 /* reaches the request's last known token: yields a token */
} hb_serve_seg;

typedef struct hb_serve_sched {
    hb_serve_cfg cfg;
    int64_t max_blocks;        /* blocks one request can need: ceil((isl + osl) / block_size) */
    hb_serve_req *req;         /* (requests) */
    int64_t *waiting;          /* queue of request indices (head first) */
    int64_t n_waiting;
    int64_t *running;          /* running requests in admission order */
    int64_t n_running;
    int32_t *free_blocks;      /* stack of free block ids */
    int64_t n_free;
    int32_t *block_owner;      /* (kv_blocks) request index holding the block, -1 free */
    hb_serve_seg *seg;         /* the planned iteration (max_batch_tokens at most) */
    int64_t n_seg, n_tokens;   /* segments and tokens planned */
    int64_t next_arrival;      /* index of the next request to arrive */
    int64_t n_done;
    int64_t n_preemptions;
    int64_t n_iterations;
    int64_t order_next;
} hb_serve_sched;

/* Input length of request i of a stream (deterministic in seed): uniform in
 * [ceil(range_ratio * isl), isl]. */
int64_t hb_serve_input_len(const hb_serve_cfg *cfg, int64_t i);
/* Blocks needed for n tokens. */
int64_t hb_serve_blocks_for(const hb_serve_cfg *cfg, int64_t n);

/* Checks cfg (HB_ERR_INPUT naming the field in err) and builds the scheduler with every
 * request pending; the arrivals of the closed loop's first requests (or the first Poisson
 * one) are scheduled at time t0. */
hb_status hb_serve_sched_init(hb_serve_sched *s, const hb_serve_cfg *cfg, double t0, hb_err *err);
void hb_serve_sched_free(hb_serve_sched *s); /* NULL and a zeroed struct are no-ops */

/* Moves the requests that arrived by `now` to the waiting queue and plans the iteration into
 * s->seg / s->n_seg (0 segments: nothing to run now, see hb_serve_next_arrival). Blocks for the
 * planned tokens are allocated. */
hb_status hb_serve_plan(hb_serve_sched *s, double now);
/* Records the iteration: tokens[j] (unused here beyond counting) for each emitting segment in
 * order; the requests' computed counts advance, the emitting ones get an output token at
 * `now`, and the requests that reach osl finish (their blocks freed; closed loop: the next
 * request arrives at `now`). */
hb_status hb_serve_commit(hb_serve_sched *s, double now);
/* The arrival time of the next pending request; INFINITY when none is pending. */
double hb_serve_next_arrival(const hb_serve_sched *s);
int hb_serve_done(const hb_serve_sched *s); /* every request finished */

/* ---- latency statistics (from the per-request times) ---- */
typedef struct hb_serve_stats {
    double ttft_s[3], tpot_s[3], itl_s[3], e2e_s[3]; /* p50, p90, p99 */
    double duration_s;         /* first arrival to last finish */
    double out_tokens_per_s, total_tokens_per_s, requests_per_s;
    double interactivity;      /* 1 / median TPOT: tokens/s per user */
    int64_t tokens_in, tokens_out, preemptions;
} hb_serve_stats;

/* Percentile q in [0, 1] of x (n, sorted in place): linear interpolation between closest
 * ranks (numpy's default); NaN for n = 0. */
double hb_serve_percentile(double *x, int64_t n, double q);
/* TTFT = t_first - t_arrival; TPOT = (t_finish - t_first) / (n_out - 1) (requests with more
 * than one output token); ITL = every gap between consecutive output tokens of a request;
 * e2e = t_finish - t_arrival. */
hb_status hb_serve_stats_compute(const hb_serve_req *req, int64_t n, hb_serve_stats *st);

#endif
