/* energy.c - integration and validity of a window's energy, the power sampler thread, the
 * idle baseline, opening a device's meters and filling the energy columns (see energy.h). */
#include "energy.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ================================ pure computation ================================ */

/* Power at time x: linear between the usable samples either side, held at the nearest one
 * outside the samples; NaN without a usable sample. */
static double power_at(const double *t, const double *w, int64_t n, double x) {
    double pt = NAN, pw = NAN;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(t[i]) || !isfinite(w[i])) continue;
        if (t[i] >= x) {
            if (!isfinite(pt) || t[i] == pt) return w[i];
            return pw + (w[i] - pw) * (x - pt) / (t[i] - pt);
        }
        pt = t[i];
        pw = w[i];
    }
    return pw;
}

void hb_energy_integrate(const double *t, const double *w, int64_t n, double t0, double t1,
                         hb_integral *out) {
    out->energy_j = out->peak_w = NAN;
    out->max_gap_s = t1 - t0;
    out->n_inside = 0;
    if (!(t1 > t0)) return;
    double w0 = power_at(t, w, n, t0), w1 = power_at(t, w, n, t1);
    if (!isfinite(w0)) return; /* no usable sample */
    /* the curve: (t0, w0), the samples strictly inside, (t1, w1) */
    double e = 0, peak = fmax(w0, w1), pt = t0, pw = w0, gap = 0, prev = NAN;
    for (int64_t i = 0; i < n; i++) {
        double ti = t[i], wi = w[i];
        if (!isfinite(ti) || !isfinite(wi)) continue;
        /* the stretch of [t0, t1] since the previous sample (or since t0 for the first) */
        double a = isfinite(prev) ? fmax(prev, t0) : t0, b = fmin(ti, t1);
        if (b - a > gap) gap = b - a;
        prev = ti;
        if (ti >= t0 && ti <= t1) out->n_inside++;
        if (ti > t0 && ti < t1) {
            e += 0.5 * (pw + wi) * (ti - pt);
            peak = fmax(peak, wi);
            pt = ti;
            pw = wi;
        }
    }
    if (prev < t1 && t1 - fmax(prev, t0) > gap) gap = t1 - fmax(prev, t0);
    e += 0.5 * (pw + w1) * (t1 - pt);
    out->energy_j = e;
    out->peak_w = peak;
    out->max_gap_s = gap;
}

void hb_energy_assess(const hb_energy_window *in, hb_energy_result *o) {
    memset(o, 0, sizeof *o);
    o->counter_j = o->integral_j = o->ratio = o->energy_j = NAN;
    o->avg_w = o->peak_w = o->max_gap_s = NAN;
    snprintf(o->source, sizeof o->source, "none");
    double window = in->t1 - in->t0, sp = in->sample_period_s;

    hb_integral ig = {NAN, NAN, window, 0};
    if (in->n_power > 0) hb_energy_integrate(in->pt, in->pw, in->n_power, in->t0, in->t1, &ig);
    o->integral_j = ig.energy_j;
    o->peak_w = ig.peak_w;
    if (sp > 0 && in->has_power) o->max_gap_s = ig.max_gap_s;

    if (!in->has_counter && !in->has_power) {
        o->flags = HB_ENERGY_NO_METER;
        return;
    }

    int counter_usable = 0;
    if (in->has_counter) {
        if (!isfinite(in->e0_j) || !isfinite(in->e1_j)) {
            o->flags |= HB_ENERGY_READ_FAILED;
        } else {
            o->counter_j = in->e1_j - in->e0_j;
            counter_usable = 1;
            if (o->counter_j < 0) o->flags |= HB_ENERGY_COUNTER_BACKWARDS;
            if (o->counter_j == 0) o->flags |= HB_ENERGY_COUNTER_STUCK;
        }
        /* the sampler's counter readings around the window: any decrease, any long freeze */
        double lo = in->t0 - sp, hi = in->t1 + sp;
        double freeze = fmax(HB_ENERGY_SHORT_FACTOR * in->counter_period_s, HB_ENERGY_GAP_FACTOR * sp);
        double prev = NAN, run_t = NAN;
        for (int64_t i = 0; i < in->n_counter; i++) {
            double ti = in->ct[i], ci = in->cj[i];
            if (ti < lo || ti > hi || !isfinite(ci)) continue;
            if (isfinite(prev)) {
                if (ci < prev) o->flags |= HB_ENERGY_COUNTER_BACKWARDS;
                if (ci == prev) {
                    if (sp > 0 && ti - run_t > freeze) o->flags |= HB_ENERGY_COUNTER_STUCK;
                } else {
                    run_t = ti;
                }
            } else {
                run_t = ti;
            }
            prev = ci;
        }
    }

    const uint32_t bad_counter =
        HB_ENERGY_COUNTER_STUCK | HB_ENERGY_COUNTER_BACKWARDS | HB_ENERGY_READ_FAILED;
    double period = 0;
    if (counter_usable && !(o->flags & bad_counter)) {
        o->energy_j = o->counter_j;
        snprintf(o->source, sizeof o->source, "counter");
        period = in->counter_period_s;
    } else if (isfinite(ig.energy_j) && !in->power_from_counter) {
        o->energy_j = ig.energy_j;
        snprintf(o->source, sizeof o->source, "integral");
        period = fmax(sp, isfinite(in->power_window_s) ? in->power_window_s : 0);
    }
    if (isfinite(o->counter_j) && isfinite(ig.energy_j) && ig.energy_j > 0) {
        o->ratio = o->counter_j / ig.energy_j;
        if (!(o->ratio >= HB_ENERGY_RATIO_LO && o->ratio <= HB_ENERGY_RATIO_HI))
            o->flags |= HB_ENERGY_RATIO_BOUNDS;
    }
    if (period > 0 && window < HB_ENERGY_SHORT_FACTOR * period) o->flags |= HB_ENERGY_SHORT_WINDOW;
    /* the meter has power but some stretch of the window has no sample (or, sampler off and
     * no counter, there is no sample at all) */
    if (in->has_power && (sp > 0 ? !(ig.max_gap_s <= HB_ENERGY_GAP_FACTOR * sp) : !in->has_counter))
        o->flags |= HB_ENERGY_SAMPLE_GAP;
    o->avg_w = o->energy_j / window;
    o->valid = o->flags == 0 && isfinite(o->energy_j);
}

/* ==================================== sampler ==================================== */

struct hb_sampler {
    hb_meter *dev, *host;
    double period_s;
    int read_counter, read_power, derive;
    int64_t host_every;          /* ticks between host polls */
    pthread_t thread;
    int running;                 /* thread created and not joined */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, first_done;
    /* raw readings: written by the thread only, read after the join */
    int64_t n, cap;
    double *t, *w, *e;
    int oom;
    double cpu_s;                /* the thread's CPU time, set when it ends */
    /* traces built at stop */
    double *pt, *pw, *ct, *cj;
    hb_samples out;
};

static void take(hb_sampler *s, int64_t tick) {
    double ta = mono_s(), e = NAN, w = NAN, v;
    if (s->read_counter && s->dev->ops->energy_j(s->dev, &v) == HB_OK) e = v;
    if (s->read_power && s->dev->ops->power_w(s->dev, &v) == HB_OK) w = v;
    double tb = mono_s();
    if (s->host && tick % s->host_every == 0) hb_meter_energy_j(s->host, &v); /* wrap tracking */
    if (s->oom) return;
    if (s->n == s->cap) {
        int64_t cap = 2 * s->cap;
        double *t = realloc(s->t, (size_t)cap * sizeof *t);
        if (t) s->t = t;
        double *ww = t ? realloc(s->w, (size_t)cap * sizeof *ww) : NULL;
        if (ww) s->w = ww;
        double *ee = ww ? realloc(s->e, (size_t)cap * sizeof *ee) : NULL;
        if (ee) s->e = ee;
        if (!ee) { /* keep what we have; the gap shows in the flags */
            s->oom = 1;
            return;
        }
        s->cap = cap;
    }
    s->t[s->n] = 0.5 * (ta + tb);
    s->w[s->n] = w;
    s->e[s->n] = e;
    s->n++;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return NAN;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *sampler_main(void *arg) {
    hb_sampler *s = arg;
    double cpu0 = thread_cpu_s();
    int64_t tick = 0;
    double start = mono_s();
    take(s, tick++);
    pthread_mutex_lock(&s->lock);
    s->first_done = 1;
    pthread_cond_broadcast(&s->cond);
    while (!s->stop) {
        double due = start + (double)tick * s->period_s;
        struct timespec ts;
        ts.tv_sec = (time_t)due;
        ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stop) break;
        pthread_mutex_unlock(&s->lock);
        take(s, tick);
        /* fixed rate: a late reading skips the deadlines it missed instead of bunching up */
        int64_t next = (int64_t)floor((mono_s() - start) / s->period_s) + 1;
        tick = next > tick + 1 ? next : tick + 1;
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    take(s, tick); /* the last reading, after the window's end */
    s->cpu_s = thread_cpu_s() - cpu0;
    return NULL;
}

hb_status hb_sampler_start(hb_meter *dev, hb_meter *host, double hz, hb_sampler **out,
                           hb_err *err) {
    *out = NULL;
    if (!(hz > 0) || !isfinite(hz))
        return hb_errf(err, HB_ERR_INPUT, "power sampler: rate must be > 0 Hz (got %g)", hz);
    if (!dev || (!dev->has_counter && !dev->has_power))
        return hb_errf(err, HB_ERR_UNSUPPORTED, "power sampler: meter '%s' has nothing to read",
                       dev ? dev->name : "(null)");
    hb_sampler *s = calloc(1, sizeof *s);
    if (!s) return hb_errf(err, HB_ERR_NOMEM, "power sampler: out of memory");
    s->dev = dev;
    s->host = host && host->has_counter ? host : NULL;
    s->period_s = 1.0 / hz;
    s->derive = dev->power_from_counter && dev->has_counter;
    s->read_counter = dev->has_counter;
    s->read_power = dev->has_power && !s->derive;
    s->host_every = hz > 1 ? (int64_t)ceil(hz) : 1;
    s->cap = (int64_t)fmin(hz * 30.0, 1e6) + 16;
    s->t = malloc((size_t)s->cap * sizeof *s->t);
    s->w = malloc((size_t)s->cap * sizeof *s->w);
    s->e = malloc((size_t)s->cap * sizeof *s->e);
    pthread_condattr_t ca;
    int ok = s->t && s->w && s->e;
    int have_lock = ok && pthread_mutex_init(&s->lock, NULL) == 0;
    int have_cond = 0;
    if (have_lock && pthread_condattr_init(&ca) == 0) {
        have_cond = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                    pthread_cond_init(&s->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (have_cond) {
        /* signals go to the other threads: the sampler never runs a handler */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        s->running = pthread_create(&s->thread, NULL, sampler_main, s) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (!s->running) {
        if (have_cond) pthread_cond_destroy(&s->cond);
        if (have_lock) pthread_mutex_destroy(&s->lock);
        free(s->t);
        free(s->w);
        free(s->e);
        free(s);
        return hb_errf(err, ok ? HB_ERR_INTERNAL : HB_ERR_NOMEM,
                       "power sampler: cannot start the thread");
    }
    pthread_mutex_lock(&s->lock);
    while (!s->first_done) pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    *out = s;
    return HB_OK;
}

void hb_sampler_stop(hb_sampler *s) {
    if (!s || !s->running) return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = 0;

    int64_t n = s->n;
    s->pt = malloc((size_t)(n ? n : 1) * sizeof *s->pt);
    s->pw = malloc((size_t)(n ? n : 1) * sizeof *s->pw);
    s->ct = malloc((size_t)(n ? n : 1) * sizeof *s->ct);
    s->cj = malloc((size_t)(n ? n : 1) * sizeof *s->cj);
    s->out.n_ticks = n;
    s->out.cpu_s = s->cpu_s;
    if (!s->pt || !s->pw || !s->ct || !s->cj) return; /* empty traces: flagged as a gap */
    int64_t np = 0, nc = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(s->e[i])) {
            s->ct[nc] = s->t[i];
            s->cj[nc++] = s->e[i];
        }
        if (!s->derive && isfinite(s->w[i])) {
            s->pt[np] = s->t[i];
            s->pw[np++] = s->w[i];
        }
    }
    if (s->derive) /* average power of each interval, at its middle */
        for (int64_t i = 1; i < nc; i++) {
            double dt = s->ct[i] - s->ct[i - 1];
            if (!(dt > 0)) continue;
            s->pt[np] = 0.5 * (s->ct[i] + s->ct[i - 1]);
            s->pw[np++] = (s->cj[i] - s->cj[i - 1]) / dt;
        }
    s->out.n_power = np;
    s->out.power_t = s->pt;
    s->out.power_w = s->pw;
    s->out.n_counter = nc;
    s->out.counter_t = s->ct;
    s->out.counter_j = s->cj;
}

const hb_samples *hb_sampler_samples(const hb_sampler *s) { return &s->out; }

void hb_sampler_free(hb_sampler *s) {
    if (!s) return;
    hb_sampler_stop(s);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->t);
    free(s->w);
    free(s->e);
    free(s->pt);
    free(s->pw);
    free(s->ct);
    free(s->cj);
    free(s);
}

/* ================================= idle baseline ================================= */

/* Sleeps until mono_s() >= until, in slices, unless *stop; 1 when stopped. */
static int sleep_until(double until, volatile sig_atomic_t *stop) {
    for (;;) {
        if (stop && *stop) return 1;
        double left = until - mono_s();
        if (left <= 0) return 0;
        double slice = fmin(left, 0.05);
        struct timespec d = {(time_t)slice, (long)((slice - floor(slice)) * 1e9)};
        nanosleep(&d, NULL);
    }
}

hb_status hb_idle_baseline(hb_meter *m, double seconds, double hz, volatile sig_atomic_t *stop,
                           hb_idle_row *out, hb_err *err) {
    int32_t rank = out->rank;
    memset(out, 0, sizeof *out);
    out->rank = rank;
    out->idle_w = NAN;
    out->seconds = seconds > 0 ? seconds : 0;
    snprintf(out->meter, sizeof out->meter, "%s", m ? m->name : "none");
    if (!(seconds > 0)) {
        snprintf(out->method, sizeof out->method, "skipped");
        return HB_OK;
    }
    if (!m || (!m->has_counter && !m->has_power)) {
        snprintf(out->method, sizeof out->method, "none");
        out->flags = HB_ENERGY_NO_METER;
        return HB_OK;
    }
    hb_sampler *smp = NULL;
    if (hz > 0) HB_TRY(hb_sampler_start(m, NULL, hz, &smp, err));
    double e0 = NAN, e1 = NAN, v;
    if (m->has_counter && m->ops->energy_j(m, &v) == HB_OK) e0 = v;
    double t0 = mono_s();
    int stopped = sleep_until(t0 + seconds, stop);
    if (m->has_counter && m->ops->energy_j(m, &v) == HB_OK) e1 = v;
    double t1 = mono_s();
    hb_sampler_stop(smp);
    if (stopped) {
        hb_sampler_free(smp);
        return hb_errf(err, HB_ERR_INTERRUPTED, "interrupted during the idle baseline");
    }
    const hb_samples *sm = smp ? hb_sampler_samples(smp) : NULL;
    hb_energy_window win = {
        .t0 = t0, .t1 = t1, .has_counter = m->has_counter, .has_power = m->has_power,
        .e0_j = e0, .e1_j = e1,
        .counter_period_s = m->counter_period_s, .sample_period_s = hz > 0 ? 1.0 / hz : 0,
        .power_window_s = m->info.power_window_s, .power_from_counter = m->power_from_counter,
        .pt = sm ? sm->power_t : NULL, .pw = sm ? sm->power_w : NULL,
        .n_power = sm ? sm->n_power : 0, .ct = sm ? sm->counter_t : NULL,
        .cj = sm ? sm->counter_j : NULL, .n_counter = sm ? sm->n_counter : 0,
    };
    hb_energy_result r;
    hb_energy_assess(&win, &r);
    out->idle_w = r.avg_w;
    out->seconds = t1 - t0;
    out->flags = r.flags;
    out->n_samples = sm ? sm->n_ticks : 0;
    snprintf(out->method, sizeof out->method, "%s", r.source);
    hb_sampler_free(smp);
    return HB_OK;
}

/* ================================ meters of a device ================================ */

hb_status hb_meter_open_for_device(const hb_device_info *dev, hb_meter **out, hb_err *err) {
    *out = NULL;
    hb_err why = {{0}};
    hb_status s;
    const char *b = dev ? dev->backend : "";
    if (strcmp(b, "cuda") == 0 || strcmp(b, "hip") == 0) {
        int nv = strcmp(b, "cuda") == 0;
        if (!dev->pci_bus_id[0])
            s = hb_errf(&why, HB_ERR_UNSUPPORTED, "%s: the device has no PCI bus id to find its meter by",
                        nv ? "NVML" : "ROCm SMI");
        else
            s = nv ? hb_meter_open_nvml(dev->pci_bus_id, -1, out, &why)
                   : hb_meter_open_rsmi(dev->pci_bus_id, -1, out, &why);
    } else if (strcmp(b, "cpu") == 0) {
        s = hb_meter_open_rapl(-1, out, &why);
    } else {
        s = hb_errf(&why, HB_ERR_UNSUPPORTED, "no meter for backend '%s'", b);
    }
    if (s == HB_OK) return HB_OK;
    if (s == HB_ERR_NOMEM) return hb_errf(err, s, "%s", why.msg);
    if (hb_meter_open_none(out, why.msg) != HB_OK) return hb_errf(err, HB_ERR_NOMEM, "out of memory");
    return HB_OK;
}

hb_status hb_meter_open_host(const hb_device_info *dev, hb_meter **out, hb_err *err) {
    *out = NULL;
    if (dev && strcmp(dev->backend, "cpu") == 0) return HB_OK;
    hb_err why = {{0}};
    hb_status s = hb_meter_open_rapl(-1, out, &why);
    if (s == HB_OK) return HB_OK;
    if (s == HB_ERR_NOMEM) return hb_errf(err, s, "%s", why.msg);
    if (hb_meter_open_none(out, why.msg) != HB_OK) return hb_errf(err, HB_ERR_NOMEM, "out of memory");
    return HB_OK;
}

/* ===================================== results ===================================== */

void hb_energy_device_fill(const hb_meter *m, const hb_meter *host, hb_device_row *d) {
    if (m) {
        const hb_meter_info *in = &m->info;
        snprintf(d->meter, sizeof d->meter, "%s", m->name);
        snprintf(d->meter_api, sizeof d->meter_api, "%s", in->api);
        snprintf(d->meter_library, sizeof d->meter_library, "%.*s", (int)sizeof d->meter_library - 1, in->library);
        snprintf(d->meter_version, sizeof d->meter_version, "%s", in->version);
        snprintf(d->meter_energy_fn, sizeof d->meter_energy_fn, "%s", in->energy_fn);
        snprintf(d->meter_power_fn, sizeof d->meter_power_fn, "%s", in->power_fn);
        snprintf(d->meter_scope, sizeof d->meter_scope, "%s", in->scope);
        snprintf(d->meter_reason, sizeof d->meter_reason, "%s", m->reason);
        d->meter_resolution_j = in->counter_resolution_j;
        d->meter_counter_period_s = m->has_counter && m->counter_period_s > 0 ? m->counter_period_s : NAN;
        d->meter_power_window_s = m->has_power ? in->power_window_s : NAN;
        if (isfinite(in->power_limit_w)) d->power_limit_w = in->power_limit_w;
    } else {
        d->meter_resolution_j = d->meter_counter_period_s = d->meter_power_window_s = NAN;
    }
    snprintf(d->host_meter, sizeof d->host_meter, "%s", host ? host->name : "");
    snprintf(d->host_meter_scope, sizeof d->host_meter_scope, "%s", host ? host->info.scope : "");
    snprintf(d->host_meter_reason, sizeof d->host_meter_reason, "%s", host ? host->reason : "");
}

static double nan_unless_positive(double x) { return x > 0 ? x : NAN; }

void hb_energy_summary_fill(const hb_cost *k, const hb_record *r, hb_summary_row *s) {
    int ok = strcmp(r->status, "ok") == 0;
    double e = NAN;
    if (ok) /* a record from before the energy detail existed has no source: take the counter */
        e = r->energy_source[0] ? r->energy_j
                                : isfinite(r->energy_counter_j) ? r->energy_counter_j : r->energy_integral_j;
    double n = (double)r->n_iters, window = r->window_s;
    double tok_out = k->tokens_out * n, tok_all = (k->tokens_in + k->tokens_out) * n;
    s->energy_j = e;
    s->avg_w = e / window;
    s->j_per_token_out = e / nan_unless_positive(tok_out);
    s->j_per_token_total = e / nan_unless_positive(tok_all);
    s->tokens_per_j = tok_all > 0 ? tok_all / e : NAN;
    s->energy_valid = ok ? r->energy_valid : 0;
    s->energy_flags = r->energy_flags;
    s->energy_counter_j = ok ? r->energy_counter_j : NAN;
    s->energy_integral_j = ok ? r->energy_integral_j : NAN;
    s->energy_ratio = ok ? r->energy_ratio : NAN;
    s->peak_w = ok ? r->peak_w : NAN;
    s->idle_w = r->idle_w;
    s->energy_net_j = ok ? e - r->idle_w * window : NAN;
    s->host_energy_j = ok ? r->host_energy_j : NAN;
    s->host_avg_w = s->host_energy_j / window;
    snprintf(s->energy_source, sizeof s->energy_source, "%s", ok && r->energy_source[0] ? r->energy_source : "none");
    snprintf(s->meter, sizeof s->meter, "%s", r->meter);
}
