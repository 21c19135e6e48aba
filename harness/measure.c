/* measure.c - the timed window (see measure.h). */
#include "measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

hb_status hb_measure_case(hb_backend *be, hb_meter *meter, hb_workload *w, const hb_case *c,
                          const hb_measure_opts *mo, hb_record *rec, hb_err *err) {
    volatile sig_atomic_t *stop = mo ? mo->stop : NULL;
    hb_event *ev[2] = {NULL, NULL};
    hb_status s = HB_OK;
    int64_t cap = 0;
    rec->n_iters = 0;
    rec->energy_counter_j = rec->energy_integral_j = NAN;
    rec->energy_valid = 0;
    rec->energy_flags = 0;

    for (int64_t i = 0; i < c->warmup_iters && s == HB_OK; i++) s = hb_workload_step(w);
    if (s == HB_OK) s = be->ops->sync(be);
    if (s != HB_OK) return hb_errf(err, s, "warm-up failed: %s", be->err[0] ? be->err : hb_status_str(s));
    /* the first step computes the fingerprint, also with warmup 0 */
    double fp[HB_FP_LEN];
    if (hb_workload_fingerprint(w, fp) != HB_OK) {
        s = hb_workload_step(w);
        if (s == HB_OK) s = be->ops->sync(be);
        if (s != HB_OK) return hb_errf(err, s, "first step failed: %s", be->err[0] ? be->err : hb_status_str(s));
    }
    HB_TRY(hb_workload_fingerprint(w, rec->fingerprint));

    if ((s = be->ops->event_create(be, &ev[0])) != HB_OK || (s = be->ops->event_create(be, &ev[1])) != HB_OK)
        goto done;

    double e0 = NAN, e1 = NAN;
    int have_counter = meter && meter->ops->energy_j(meter, &e0) == HB_OK;
    double t0 = hb_now_s(), t = t0;
    /* chained events: iteration i runs from ev[i % 2] to ev[(i + 1) % 2], so the time between
     * iterations (host work, launches) is inside the iteration times and sum(iter) ~ window */
    if ((s = be->ops->event_record(be, ev[0])) != HB_OK) goto done;
    for (int64_t i = 0;; i++) {
        if ((s = hb_workload_step(w)) != HB_OK) goto done;
        hb_event *a = ev[i % 2], *b = ev[(i + 1) % 2];
        double dt = 0;
        if ((s = be->ops->event_record(be, b)) != HB_OK) goto done;
        if ((s = be->ops->event_elapsed(be, a, b, &dt)) != HB_OK) goto done;
        if ((s = push_time(rec, &cap, dt)) != HB_OK) goto done;
        t = hb_now_s();
        if (rec->n_iters >= c->max_iters) break;
        if (rec->n_iters >= c->min_iters && t - t0 >= c->min_seconds) break;
        if (stop && *stop) {
            s = HB_ERR_INTERRUPTED;
            break;
        }
    }
    if (s == HB_OK || s == HB_ERR_INTERRUPTED) {
        hb_status s2 = be->ops->sync(be);
        if (s2 != HB_OK) s = s2;
    }
    t = hb_now_s();
    rec->window_s = t - t0;
    if (have_counter && meter->ops->energy_j(meter, &e1) == HB_OK) {
        rec->energy_counter_j = e1 - e0;
    } else {
        rec->energy_flags |= HB_ENERGY_NO_METER;
    }
    rec->energy_valid = 0; /* validity rules arrive with the vendor meters (issue: energy) */

done:
    if (ev[0]) be->ops->event_destroy(be, ev[0]);
    if (ev[1]) be->ops->event_destroy(be, ev[1]);
    if (s != HB_OK && s != HB_ERR_INTERRUPTED)
        return hb_errf(err, s, "timed window failed after %lld iterations: %s", (long long)rec->n_iters,
                       be->err[0] ? be->err : hb_status_str(s));
    if (s == HB_OK) snprintf(rec->status, sizeof rec->status, "ok");
    return s;
}
