/* test_sampler.c - the power sampler thread (harness/energy.c) with meters made here (no
 * library loaded, so that it can run under valgrind): it starts with a first reading already
 * taken, reads at the requested rate on CLOCK_MONOTONIC, stops with a last reading, derives
 * RAPL-style power from its counter samples at interval midpoints, polls a host meter, and
 * starts/stops/frees cleanly many times (valgrind: no leak, no error); bad rates and meters with
 * nothing to read are refused. The idle baseline runs on top of it. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "backends/meter.h"
#include "harness/energy.h"
#include "harness/measure.h"
#include "hbtest.h"

/* Under valgrind (HB_TEST_UNDER_VALGRIND) everything runs ~50x slower: rate and timing checks
 * are skipped there, the structural ones stay. */
static int slow;

/* A meter of constant power W whose counter is W x t (t on CLOCK_MONOTONIC). */
typedef struct test_meter {
    double watts;
    atomic_int energy_reads, power_reads;
} test_meter;

static hb_status tm_energy(hb_meter *m, double *j) {
    test_meter *t = m->ctx;
    atomic_fetch_add(&t->energy_reads, 1);
    *j = t->watts * hb_now_s();
    return HB_OK;
}

static hb_status tm_power(hb_meter *m, double *w) {
    test_meter *t = m->ctx;
    atomic_fetch_add(&t->power_reads, 1);
    *w = t->watts;
    return HB_OK;
}

static void tm_destroy(hb_meter *m) { free(m); }

static const hb_meter_ops tm_ops = {.destroy = tm_destroy, .energy_j = tm_energy, .power_w = tm_power};

static hb_meter *make(test_meter *ctx, int counter, int power, int derived) {
    hb_meter *m = hb_meter_alloc("test");
    if (!m) return NULL;
    m->ops = &tm_ops;
    m->ctx = ctx;
    m->has_counter = counter;
    m->has_power = power;
    m->power_from_counter = derived;
    m->counter_period_s = 0.001;
    return m;
}

static void sleep_s(double s) {
    struct timespec d = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&d, NULL);
}

static void test_rate(void) {
    test_meter ctx = {.watts = 120};
    hb_meter *m = make(&ctx, 1, 1, 0);
    hb_sampler *s = NULL;
    double before = hb_now_s();
    CHECK(hb_sampler_start(m, NULL, 50, &s, NULL) == HB_OK && s);
    if (!s) return;
    /* the first reading exists before start returns */
    CHECK(atomic_load(&ctx.power_reads) >= 1 && atomic_load(&ctx.energy_reads) >= 1);
    double t0 = hb_now_s();
    sleep_s(0.4);
    double t1 = hb_now_s();
    hb_sampler_stop(s);
    double after = hb_now_s();
    hb_sampler_stop(s); /* idempotent */
    const hb_samples *x = hb_sampler_samples(s);
    /* 0.4 s at 50 Hz: ~21 readings (first + 20 + last); a loaded machine may drop a few */
    CHECK_MSG(slow || (x->n_ticks >= 12 && x->n_ticks <= 24), "%lld readings", (long long)x->n_ticks);
    CHECK(x->n_ticks >= 2);
    CHECK(x->n_power == x->n_ticks && x->n_counter == x->n_ticks);
    CHECK(x->power_t[0] >= before && x->power_t[0] <= t0);
    CHECK(x->power_t[x->n_power - 1] >= t1 && x->power_t[x->n_power - 1] <= after);
    for (int64_t i = 1; i < x->n_power; i++) CHECK(x->power_t[i] > x->power_t[i - 1]);
    for (int64_t i = 0; i < x->n_power; i++) CHECK(x->power_w[i] == 120);
    /* fixed rate: the median interval is the period */
    int near = 0;
    for (int64_t i = 1; i + 1 < x->n_power; i++) near += fabs(x->power_t[i] - x->power_t[i - 1] - 0.02) < 0.005;
    CHECK_MSG(slow || near >= (x->n_power - 2) / 2, "%d of %lld intervals near 20 ms", near,
              (long long)x->n_power - 2);
    hb_sampler_free(s);
    hb_meter_close(m);
}

static void test_derived_and_host(void) {
    test_meter ctx = {.watts = 65}, host_ctx = {.watts = 10};
    hb_meter *m = make(&ctx, 1, 1, 1), *host = make(&host_ctx, 1, 0, 0);
    hb_sampler *s = NULL;
    CHECK(hb_sampler_start(m, host, 100, &s, NULL) == HB_OK && s);
    if (s) {
        sleep_s(1.2);
        hb_sampler_stop(s);
        const hb_samples *x = hb_sampler_samples(s);
        CHECK(atomic_load(&ctx.power_reads) == 0); /* derived: the counter only */
        CHECK(x->n_power == x->n_counter - 1);
        /* each sample is an interval's counter delta / its length, stamped at its middle: a
         * preempted read moves single samples (jitter), but they add up to the counter exactly */
        double sum = 0, v[4096];
        int64_t nv = 0;
        for (int64_t i = 0; i < x->n_power; i++) {
            CHECK_NEAR(x->power_t[i], 0.5 * (x->counter_t[i] + x->counter_t[i + 1]), 1e-12);
            sum += x->power_w[i] * (x->counter_t[i + 1] - x->counter_t[i]);
            if (nv < 4096) v[nv++] = x->power_w[i];
        }
        if (x->n_counter > 1)
            CHECK_NEAR(sum, x->counter_j[x->n_counter - 1] - x->counter_j[0], 1e-6 * sum);
        int above = 0;
        for (int64_t i = 0; i < nv; i++) above += v[i] > 65 * 1.005;
        CHECK_MSG(slow || above < nv / 4, "%d of %lld samples more than 0.5%% above 65 W", above, (long long)nv);
        int below = 0;
        for (int64_t i = 0; i < nv; i++) below += v[i] < 65 * 0.995;
        CHECK_MSG(slow || below < nv / 4, "%d of %lld samples more than 0.5%% below 65 W", below, (long long)nv);
        /* the host is polled about once a second (first reading, then every 100 ticks) */
        int h = atomic_load(&host_ctx.energy_reads);
        CHECK_MSG(h >= 1 && (slow || h <= 4), "host polled %d times", h);
        CHECK_MSG(slow || h >= 2, "host polled %d times", h);
        hb_sampler_free(s);
    }
    hb_meter_close(m);
    hb_meter_close(host);
}

static void test_refusals_and_churn(void) {
    test_meter ctx = {.watts = 1};
    hb_meter *m = make(&ctx, 1, 1, 0), *empty = make(&ctx, 0, 0, 0);
    hb_sampler *s = (hb_sampler *)&ctx;
    hb_err err = {{0}};
    CHECK(hb_sampler_start(m, NULL, 0, &s, &err) == HB_ERR_INPUT && s == NULL);
    CHECK(hb_sampler_start(m, NULL, -5, &s, &err) == HB_ERR_INPUT);
    CHECK(hb_sampler_start(m, NULL, NAN, &s, &err) == HB_ERR_INPUT);
    CHECK(hb_sampler_start(empty, NULL, 20, &s, &err) == HB_ERR_UNSUPPORTED && s == NULL);
    CHECK(hb_sampler_start(NULL, NULL, 20, &s, &err) == HB_ERR_UNSUPPORTED);
    /* many short lives: start/stop at once, free without stop, stop then free */
    for (int i = 0; i < 30; i++) {
        CHECK(hb_sampler_start(m, NULL, 1000, &s, NULL) == HB_OK);
        if (i % 3 == 0) hb_sampler_stop(s);
        if (i % 3 == 1) sleep_s(0.003);
        hb_sampler_free(s);
    }
    hb_sampler_free(NULL);
    /* a high rate: readings keep up (within what a shared 2-core machine allows) */
    CHECK(hb_sampler_start(m, NULL, 1000, &s, NULL) == HB_OK);
    sleep_s(0.1);
    hb_sampler_stop(s);
    CHECK(hb_sampler_samples(s)->n_ticks > (slow ? 2 : 20));
    hb_sampler_free(s);
    hb_meter_close(m);
    hb_meter_close(empty);
}

static void test_idle(void) {
    test_meter ctx = {.watts = 33};
    hb_meter *m = make(&ctx, 1, 1, 0);
    hb_idle_row idle = {.rank = 1};
    CHECK(hb_idle_baseline(m, 0.3, 50, NULL, &idle, NULL) == HB_OK);
    CHECK_NEAR(idle.idle_w, 33, 0.33);
    CHECK_STR(idle.method, "counter");
    CHECK(idle.rank == 1 && (slow || (idle.flags == 0 && idle.n_samples >= 8)));
    CHECK(slow || fabs(idle.seconds - 0.3) < 0.05);
    /* power only: the integral */
    m->has_counter = 0;
    CHECK(hb_idle_baseline(m, 0.3, 50, NULL, &idle, NULL) == HB_OK);
    CHECK_NEAR(idle.idle_w, 33, 0.33);
    CHECK_STR(idle.method, "integral");
    /* interrupted */
    volatile sig_atomic_t stop = 1;
    hb_err err = {{0}};
    CHECK(hb_idle_baseline(m, 5, 50, &stop, &idle, &err) == HB_ERR_INTERRUPTED);
    CHECK(isnan(idle.idle_w));
    hb_meter_close(m);
}

int main(void) {
    const char *v = getenv("HB_TEST_UNDER_VALGRIND");
    slow = v && *v && strcmp(v, "0") != 0;
    test_rate();
    test_derived_and_host();
    test_refusals_and_churn();
    test_idle();
    HB_TEST_END();
}
