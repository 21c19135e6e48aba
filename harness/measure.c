/* measure.c - the timed window (see measure.h). The energy arithmetic (integration, flags) and
 * the sampler thread live in energy.c; this file only orders the readings around the window. */
#include "measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "energy.h"
#include "timing.h"

double hb_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static hb_status push_time(hb_record *rec, int64_t *cap, double t) {
    if (rec->n_iters == *cap) {
        int64_t ncap = *cap ? 2 * *cap : 256;
        double *p = realloc(rec->iter_seconds, (size_t)ncap * sizeof *p);
        if (!p) return HB_ERR_NOMEM;
        rec->iter_seconds = p;
        *cap = ncap;
    }
    rec->iter_seconds[rec->n_iters++] = t;
    return HB_OK;
}

/* train: the step's mean loss, after each step (warm-up ones too) */
static hb_status push_loss(hb_record *rec, const hb_workload *w, int64_t *cap) {
    double loss;
    if (!hb_workload_loss(w, &loss)) return HB_OK;
    if (rec->n_loss == *cap) {
        int64_t ncap = *cap ? 2 * *cap : 64;
        double *p = realloc(rec->loss, (size_t)ncap * sizeof *p);
        if (!p) return HB_ERR_NOMEM;
        rec->loss = p;
        *cap = ncap;
    }
    rec->loss[rec->n_loss++] = loss;
    return HB_OK;
}

/* Every energy field "not measured"; the power trace is dropped. */
static void energy_reset(hb_record *rec) {
    free(rec->power);
    rec->power = NULL;
    rec->n_power = 0;
    rec->energy_counter_j = rec->energy_integral_j = rec->energy_j = rec->energy_ratio = NAN;
    rec->avg_w = rec->peak_w = rec->idle_w = rec->energy_net_j = rec->host_energy_j = NAN;
    rec->max_gap_s = NAN;
    rec->power_hz = 0;
    rec->energy_valid = 0;
    rec->energy_flags = 0;
    rec->meter[0] = '\0';
    snprintf(rec->energy_source, sizeof rec->energy_source, "none");
    rec->power_limit_w_start = rec->power_limit_w_end = NAN;
    rec->sm_clock_mhz_start = rec->sm_clock_mhz_end = NAN;
    rec->mem_clock_mhz_start = rec->mem_clock_mhz_end = NAN;
    rec->temperature_c_start = rec->temperature_c_end = NAN;
}

/* Reads the counter around a point in time: *t is the middle of the read, *e NaN on failure. */
static void read_counter(hb_meter *m, double *t, double *e) {
    double ta = hb_now_s(), v = NAN;
    *e = m && m->has_counter && m->ops->energy_j(m, &v) == HB_OK ? v : NAN;
    *t = 0.5 * (ta + hb_now_s());
}

/* The window's energy from its readings, into rec. */
static void finish_energy(hb_meter *meter, const hb_measure_opts *mo, hb_sampler *smp, double t0,
                          double t1, double e0, double e1, double h0, double h1,
                          const hb_meter_state *st0, const hb_meter_state *st1, hb_record *rec) {
    const hb_samples *sm = smp ? hb_sampler_samples(smp) : NULL;
    hb_energy_window win = {
        .t0 = t0, .t1 = t1,
        .has_counter = meter && meter->has_counter,
        .has_power = meter && meter->has_power,
        .e0_j = e0, .e1_j = e1,
        .counter_period_s = meter ? meter->counter_period_s : 0,
        .sample_period_s = smp ? 1.0 / mo->power_hz : 0,
        .power_window_s = meter ? meter->info.power_window_s : NAN,
        .power_from_counter = meter && meter->power_from_counter,
        .pt = sm ? sm->power_t : NULL, .pw = sm ? sm->power_w : NULL,
        .n_power = sm ? sm->n_power : 0,
        .ct = sm ? sm->counter_t : NULL, .cj = sm ? sm->counter_j : NULL,
        .n_counter = sm ? sm->n_counter : 0,
    };
    hb_energy_result r;
    hb_energy_assess(&win, &r);
    rec->energy_counter_j = r.counter_j;
    rec->energy_integral_j = r.integral_j;
    rec->energy_ratio = r.ratio;
    rec->energy_j = r.energy_j;
    rec->avg_w = r.avg_w;
    rec->peak_w = r.peak_w;
    rec->max_gap_s = r.max_gap_s;
    rec->energy_flags = r.flags;
    rec->energy_valid = r.valid;
    snprintf(rec->energy_source, sizeof rec->energy_source, "%s", r.source);
    snprintf(rec->meter, sizeof rec->meter, "%s", meter ? meter->name : "none");
    rec->power_hz = smp ? mo->power_hz : 0;
    double idle = mo && mo->idle_w > 0 ? mo->idle_w : NAN;
    rec->idle_w = idle;
    rec->energy_net_j = r.energy_j - idle * (t1 - t0);
    rec->host_energy_j = h1 - h0;
    rec->power_limit_w_start = st0->power_limit_w;
    rec->power_limit_w_end = st1->power_limit_w;
    rec->sm_clock_mhz_start = st0->sm_clock_mhz;
    rec->sm_clock_mhz_end = st1->sm_clock_mhz;
    rec->mem_clock_mhz_start = st0->mem_clock_mhz;
    rec->mem_clock_mhz_end = st1->mem_clock_mhz;
    rec->temperature_c_start = st0->temperature_c;
    rec->temperature_c_end = st1->temperature_c;
    /* the trace, every sample the sampler took (a first one before t0, a last one after t1),
     * times relative to the window start */
    if (sm && sm->n_power > 0 && (rec->power = malloc((size_t)sm->n_power * 2 * sizeof *rec->power))) {
        for (int64_t i = 0; i < sm->n_power; i++) {
            rec->power[2 * i] = sm->power_t[i] - t0;
            rec->power[2 * i + 1] = sm->power_w[i];
        }
        rec->n_power = sm->n_power;
    }
}

/* A rank group's verdict on a step: a rank that failed alone would leave the others waiting
 * inside their next collective, so every rank of the group learns that one failed (an int32
 * MAX over the group; the harness's own collective, not counted in the comm stats) and fails
 * too. The failing rank keeps its message; the others say whose failure it was. */
static hb_status group_verdict(hb_backend *be, hb_comm *comm, hb_status s) {
    if (!comm || comm->size <= 1) return s;
    int32_t f[2] = {s != HB_OK, s != HB_OK ? comm->rank : -1};
    hb_status r = comm->ops->all_reduce(comm->ctx, f, f, 2, HB_CDT_I32, HB_REDOP_MAX);
    if (r != HB_OK) return r;
    if (s == HB_OK && f[0]) {
        snprintf(be->err, sizeof be->err, "rank %d of this rank's group (group %d of %d ranks) failed the step; its "
                 "row has the message", (int)f[1], comm->id, comm->size);
        return HB_ERR_BACKEND;
    }
    return s;
}

hb_status hb_measure_case(hb_backend *be, hb_meter *meter, hb_workload *w, const hb_case *c,
                          const hb_measure_opts *mo, hb_record *rec, hb_err *err) {
    volatile sig_atomic_t *stop = mo ? mo->stop : NULL;
    hb_event *ev[2] = {NULL, NULL};
    hb_sampler *smp = NULL;
    hb_status s = HB_OK;
    int64_t cap = 0;
    rec->n_iters = 0;
    energy_reset(rec);
    rec->energy_flags = HB_ENERGY_NO_METER; /* until a window says otherwise */

    int64_t lcap = 0;
    free(rec->loss);
    rec->loss = NULL;
    rec->n_loss = rec->n_loss_warmup = 0;
    /* after_step (collective: check and reset) follows every step, warm-up ones too; a group
     * agrees on each step's outcome */
    hb_comm *comm = hb_workload_comm(w);
    const int grouped = comm && comm->size > 1;
    for (int64_t i = 0; i < c->warmup_iters && s == HB_OK; i++) {
        if ((s = hb_workload_step(w)) == HB_OK && (s = push_loss(rec, w, &lcap)) == HB_OK)
            s = hb_workload_after_step(w);
        s = group_verdict(be, comm, s);
    }
    if (s == HB_OK) s = be->ops->sync(be);
    if (s != HB_OK) return hb_errf(err, s, "warm-up failed: %s", be->err[0] ? be->err : hb_status_str(s));
    /* the first step computes the fingerprint, also with warmup 0 */
    double fp[HB_FP_LEN];
    if (hb_workload_fingerprint(w, fp) != HB_OK) {
        s = hb_workload_step(w);
        if (s == HB_OK) s = push_loss(rec, w, &lcap);
        if (s == HB_OK) s = be->ops->sync(be);
        if (s == HB_OK) s = hb_workload_after_step(w);
        s = group_verdict(be, comm, s);
        if (s != HB_OK) return hb_errf(err, s, "first step failed: %s", be->err[0] ? be->err : hb_status_str(s));
    }
    HB_TRY(hb_workload_fingerprint(w, rec->fingerprint));
    rec->n_loss_warmup = rec->n_loss; /* the steps before the timed window */

    if ((s = be->ops->event_create(be, &ev[0])) != HB_OK || (s = be->ops->event_create(be, &ev[1])) != HB_OK)
        goto done;

    /* before the window: device state, the sampler (its first reading precedes t0), the host */
    hb_meter_state st0, st1;
    hb_meter_read_state(meter, &st0);
    if (mo && mo->power_hz > 0 && meter && (meter->has_counter || meter->has_power) &&
        hb_sampler_start(meter, mo->host, mo->power_hz, &smp, NULL) != HB_OK)
        smp = NULL; /* no sampler: the window still has its counter; the flags say the rest */
    double h0 = NAN, h1 = NAN, e0, e1, t0, t1;
    hb_meter *host = mo ? mo->host : NULL;
    if (host && host->has_counter && host->ops->energy_j(host, &h0) != HB_OK) h0 = NAN;
    hb_timing_probe tp0, tp1; /* interference evidence at the window's edges (timing.h) */
    hb_timing_read(&tp0);
    read_counter(meter, &t0, &e0);
    double t = t0;
    /* a rank group (dp, tp, ep, collective): every rank of the group starts its window together
     * (a barrier, not counted in the comm stats, which start here) */
    if (grouped) {
        if ((s = comm->ops->barrier(comm->ctx)) != HB_OK) goto done;
        t0 = t = hb_now_s();
    }
    if (comm) memset(&comm->stats, 0, sizeof comm->stats);
    /* chained events: iteration i runs from ev[i % 2] to ev[(i + 1) % 2], so the time between
     * iterations (host work, launches) is inside the iteration times and sum(iter) ~ window */
    if ((s = be->ops->event_record(be, ev[0])) != HB_OK) goto done;
    /* --repeat: `reps` consecutive windows, each until its own min_iters and min_seconds (or
     * max_iters); their iterations are concatenated in iter_seconds, rep_iters splits them */
    const int reps = c->repeat > 1 ? (int)(c->repeat < HB_MAX_REPEAT ? c->repeat : HB_MAX_REPEAT) : 1;
    double t_rep = t0;
    int64_t rep_base = 0;
    rec->n_reps = 0;
    for (int64_t i = 0;; i++) {
        hb_event *a = ev[i % 2], *b = ev[(i + 1) % 2];
        double dt = 0;
        if ((s = hb_workload_step(w)) == HB_OK && (s = push_loss(rec, w, &lcap)) == HB_OK &&
            (s = be->ops->event_record(be, b)) == HB_OK && (s = be->ops->event_elapsed(be, a, b, &dt)) == HB_OK &&
            (s = push_time(rec, &cap, dt)) == HB_OK && hb_workload_has_after_step(w)) {
            /* untimed: the next iteration starts after it */
            if ((s = hb_workload_after_step(w)) == HB_OK) s = be->ops->event_record(be, b);
        }
        if (s == HB_OK && mo && mo->iters) atomic_store_explicit(mo->iters, rec->n_iters, memory_order_relaxed);
        if (s != HB_OK && !grouped) goto done;
        t = hb_now_s();
        const int64_t in_rep = rec->n_iters - rep_base;
        int32_t flags[4] = {in_rep >= c->max_iters || (in_rep >= c->min_iters && t - t_rep >= c->min_seconds),
                            stop && *stop, s != HB_OK, s != HB_OK ? comm->rank : -1};
        if (grouped) {
            /* the group ends its window (and each --repeat window) at the same iteration, and
             * fails together: a rank that stopped alone would leave the others waiting inside
             * their next collective. Any rank's end (or stop request) ends the window for all:
             * their iteration counts are equal, so min_iters holds on every rank */
            hb_status r = comm->ops->all_reduce(comm->ctx, flags, flags, 4, HB_CDT_I32, HB_REDOP_MAX);
            if (s == HB_OK && r != HB_OK) s = r;
            if (s == HB_OK && flags[2]) {
                snprintf(be->err, sizeof be->err, "rank %d of this rank's group (group %d of %d ranks) failed iteration "
                         "%lld; its row has the message", (int)flags[3], comm->id, comm->size, (long long)i + 1);
                s = HB_ERR_BACKEND;
            }
            if (s != HB_OK) goto done;
        }
        if (flags[0]) {
            rec->rep_iters[rec->n_reps++] = in_rep;
            rep_base = rec->n_iters;
            t_rep = t;
            if (rec->n_reps >= reps) break;
        }
        if (flags[1]) {
            s = HB_ERR_INTERRUPTED;
            break;
        }
    }
    if (s == HB_OK || s == HB_ERR_INTERRUPTED) {
        hb_status s2 = be->ops->sync(be);
        if (s2 != HB_OK) s = s2;
    }
    /* after the window: counter, host, the sampler's last reading, device state */
    read_counter(meter, &t1, &e1);
    hb_timing_read(&tp1);
    hb_timing_window(&tp0, &tp1, be->info.n_threads, rec);
    if (host && host->has_counter && host->ops->energy_j(host, &h1) != HB_OK) h1 = NAN;
    hb_sampler_stop(smp);
    hb_meter_read_state(meter, &st1);
    rec->window_s = t1 - t0;
    if (comm) { /* the window's collectives (the workload's; not the harness's own) */
        hb_comm_stats_total(&comm->stats, &rec->comm_calls, &rec->comm_bytes, &rec->comm_s);
        rec->group_size = comm->size;
        rec->group_rank = comm->rank;
        rec->group_id = comm->id;
    }
    finish_energy(meter, mo, smp, t0, t1, e0, e1, h0, h1, &st0, &st1, rec);

done:
    hb_sampler_free(smp);
    if (ev[0]) be->ops->event_destroy(be, ev[0]);
    if (ev[1]) be->ops->event_destroy(be, ev[1]);
    if (s != HB_OK && s != HB_ERR_INTERRUPTED)
        return hb_errf(err, s, "timed window failed after %lld iterations: %s", (long long)rec->n_iters,
                       be->err[0] ? be->err : hb_status_str(s));
    if (s == HB_OK) snprintf(rec->status, sizeof rec->status, "ok");
    return s;
}
