/* test_energy.c - the pure energy computation on synthetic sample arrays (harness/energy.c):
 * trapezoid integration over an exact window with interpolated edges (exact for a linear
 * ramp), skipped NaN samples, held edges, gaps; every validity flag raised by a window made for
 * it and not by a clean one; the headline choice (counter, else an independent integral, else
 * NaN); the /summary energy columns (J/token, tokens/J, energy above idle, NaN never 0); PCI
 * bus id parsing. */
#include "backends/meter.h"
#include "harness/energy.h"
#include "hbtest.h"

#define N_MAX 4096

/* Samples of P(t) = a + b t every dt from t_first, count n. */
static int64_t ramp(double *t, double *w, double t_first, double dt, int64_t n, double a, double b) {
    for (int64_t i = 0; i < n; i++) {
        t[i] = t_first + (double)i * dt;
        w[i] = a + b * t[i];
    }
    return n;
}

static double ramp_energy(double a, double b, double t0, double t1) {
    return a * (t1 - t0) + 0.5 * b * (t1 * t1 - t0 * t0);
}

static void test_integrate(void) {
    static double t[N_MAX], w[N_MAX];
    hb_integral ig;
    /* linear ramp at 20 Hz: trapezoid + linear edges are exact */
    int64_t n = ramp(t, w, -0.03, 0.05, 25, 100, 40);
    double t0 = 0.0123, t1 = 0.9871;
    hb_energy_integrate(t, w, n, t0, t1, &ig);
    CHECK_NEAR(ig.energy_j, ramp_energy(100, 40, t0, t1), 1e-9);
    CHECK_NEAR(ig.peak_w, 100 + 40 * t1, 1e-9);
    CHECK_NEAR(ig.max_gap_s, 0.05, 1e-12);
    CHECK(ig.n_inside == 20);

    /* NaN samples are skipped: the gap widens, the ramp is still exact */
    w[7] = NAN;
    w[8] = NAN;
    hb_energy_integrate(t, w, n, t0, t1, &ig);
    CHECK_NEAR(ig.energy_j, ramp_energy(100, 40, t0, t1), 1e-9);
    CHECK_NEAR(ig.max_gap_s, 0.15, 1e-12);

    /* the window runs past the samples: the nearest value is held */
    n = ramp(t, w, 0.5, 0.1, 3, 10, 0); /* 0.5, 0.6, 0.7 at 10 W */
    hb_energy_integrate(t, w, n, 0.0, 1.0, &ig);
    CHECK_NEAR(ig.energy_j, 10.0, 1e-12);
    CHECK_NEAR(ig.max_gap_s, 0.5, 1e-12);

    /* every sample before the window */
    n = ramp(t, w, -2.0, 0.1, 3, 7, 0);
    hb_energy_integrate(t, w, n, 0.0, 2.0, &ig);
    CHECK_NEAR(ig.energy_j, 14.0, 1e-12);
    CHECK_NEAR(ig.max_gap_s, 2.0, 1e-12);

    /* no usable sample: NaN, never 0 */
    w[0] = w[1] = w[2] = NAN;
    hb_energy_integrate(t, w, 3, 0.0, 1.0, &ig);
    CHECK(isnan(ig.energy_j) && isnan(ig.peak_w));
    hb_energy_integrate(t, w, 0, 0.0, 1.0, &ig);
    CHECK(isnan(ig.energy_j));

    /* a step: peak is the high level, energy the area */
    for (int i = 0; i < 21; i++) {
        t[i] = -0.05 + 0.05 * i;
        w[i] = (t[i] > 0.3 && t[i] < 0.6) ? 300 : 100;
    }
    hb_energy_integrate(t, w, 21, 0.0, 0.9, &ig);
    CHECK_NEAR(ig.peak_w, 300, 1e-12);
    CHECK(ig.energy_j > 100 * 0.9 && ig.energy_j < 300 * 0.9);
}

/* A clean window: 250 W for 2 s, counter and power at 20 Hz, counter period 0.1 s. */
typedef struct scenario {
    double t[N_MAX], w[N_MAX], ct[N_MAX], cj[N_MAX];
    hb_energy_window win;
} scenario;

static void clean(scenario *s, double seconds) {
    int64_t n = 0;
    for (double ti = -0.02; ti < seconds + 0.06; ti += 0.05, n++) {
        s->t[n] = s->ct[n] = ti;
        s->w[n] = 250;
        s->cj[n] = 1000 + 250 * ti;
    }
    s->win = (hb_energy_window){
        .t0 = 0, .t1 = seconds, .has_counter = 1, .has_power = 1, .e0_j = 1000,
        .e1_j = 1000 + 250 * seconds, .counter_period_s = 0.1, .sample_period_s = 0.05,
        .power_window_s = 0, .pt = s->t, .pw = s->w, .n_power = n, .ct = s->ct, .cj = s->cj,
        .n_counter = n,
    };
}

static uint32_t assess(const scenario *s, hb_energy_result *r) {
    hb_energy_assess(&s->win, r);
    return r->flags;
}

static void test_flags(void) {
    static scenario s;
    hb_energy_result r;

    clean(&s, 2.0);
    CHECK_MSG(assess(&s, &r) == 0, "clean window: flags %#x", r.flags);
    CHECK(r.valid == 1);
    CHECK_STR(r.source, "counter");
    CHECK_NEAR(r.energy_j, 500, 1e-9);
    CHECK_NEAR(r.integral_j, 500, 1e-9);
    CHECK_NEAR(r.ratio, 1.0, 1e-12);
    CHECK_NEAR(r.avg_w, 250, 1e-9);
    CHECK_NEAR(r.peak_w, 250, 1e-9);

    /* no meter */
    clean(&s, 2.0);
    s.win.has_counter = s.win.has_power = 0;
    s.win.n_power = s.win.n_counter = 0;
    CHECK(assess(&s, &r) == HB_ENERGY_NO_METER);
    CHECK(isnan(r.energy_j) && isnan(r.avg_w) && isnan(r.counter_j) && isnan(r.integral_j));
    CHECK(r.valid == 0);
    CHECK_STR(r.source, "none");

    /* short window: 0.5 s < 10 x 0.1 s */
    clean(&s, 0.5);
    CHECK(assess(&s, &r) == HB_ENERGY_SHORT_WINDOW);
    CHECK(r.valid == 0 && isfinite(r.energy_j));
    /* for an integral, the power averaging window counts: 1 s average, 5 s window */
    clean(&s, 5.0);
    s.win.has_counter = 0;
    s.win.n_counter = 0;
    s.win.power_window_s = 1.0;
    CHECK(assess(&s, &r) == HB_ENERGY_SHORT_WINDOW);
    CHECK_STR(r.source, "integral");
    s.win.power_window_s = 0.1;
    CHECK(assess(&s, &r) == 0);

    /* sample gap: 0.3 s without a power sample at 20 Hz */
    clean(&s, 2.0);
    for (int i = 10; i < 16; i++) s.w[i] = NAN;
    CHECK_MSG(assess(&s, &r) == HB_ENERGY_SAMPLE_GAP, "flags %#x", r.flags);
    CHECK(r.max_gap_s > 0.3);
    /* sampler off and no counter: no sample at all */
    clean(&s, 2.0);
    s.win.has_counter = 0;
    s.win.sample_period_s = 0;
    s.win.n_power = s.win.n_counter = 0;
    CHECK(assess(&s, &r) == HB_ENERGY_SAMPLE_GAP);
    CHECK(isnan(r.energy_j));

    /* stuck: no advance over the window; the integral takes over (independent power) */
    clean(&s, 2.0);
    s.win.e1_j = s.win.e0_j;
    for (int64_t i = 0; i < s.win.n_counter; i++) s.cj[i] = 1000;
    assess(&s, &r);
    CHECK(r.flags & HB_ENERGY_COUNTER_STUCK);
    CHECK_STR(r.source, "integral");
    CHECK_NEAR(r.energy_j, 500, 1e-9);
    /* stuck with power derived from the same counter (RAPL): nothing left, NaN */
    s.win.power_from_counter = 1;
    assess(&s, &r);
    CHECK(r.flags & HB_ENERGY_COUNTER_STUCK);
    CHECK(isnan(r.energy_j) && r.valid == 0);
    /* a freeze inside the window (1.5 s > 10 x 0.1 s) though the ends differ */
    clean(&s, 3.0);
    for (int64_t i = 0; i < s.win.n_counter; i++)
        if (s.ct[i] > 0.5 && s.ct[i] < 2.0) s.cj[i] = 1000 + 250 * 0.5;
    CHECK_MSG(assess(&s, &r) == HB_ENERGY_COUNTER_STUCK, "flags %#x", r.flags);

    /* backwards: end below start, or a dip between samples */
    clean(&s, 2.0);
    s.win.e1_j = s.win.e0_j - 10;
    CHECK(assess(&s, &r) & HB_ENERGY_COUNTER_BACKWARDS);
    CHECK_STR(r.source, "integral");
    clean(&s, 2.0);
    s.cj[20] = s.cj[19] - 1;
    CHECK_MSG(assess(&s, &r) == HB_ENERGY_COUNTER_BACKWARDS, "flags %#x", r.flags);

    /* ratio: counter twice the integral */
    clean(&s, 2.0);
    s.win.e1_j = s.win.e0_j + 1000;
    for (int64_t i = 0; i < s.win.n_counter; i++) s.cj[i] = 1000 + 500 * s.ct[i];
    CHECK(assess(&s, &r) == HB_ENERGY_RATIO_BOUNDS);
    CHECK_NEAR(r.ratio, 2.0, 1e-9);
    CHECK_STR(r.source, "counter"); /* the counter stays the headline, flagged */
    /* just inside the bounds */
    s.win.e1_j = s.win.e0_j + 500 * 1.2;
    for (int64_t i = 0; i < s.win.n_counter; i++) s.cj[i] = 1000 + 300 * s.ct[i];
    CHECK(assess(&s, &r) == 0);

    /* read failed at the end */
    clean(&s, 2.0);
    s.win.e1_j = NAN;
    CHECK(assess(&s, &r) == HB_ENERGY_READ_FAILED);
    CHECK_STR(r.source, "integral");
    CHECK(isnan(r.counter_j) && isnan(r.ratio));

    /* counter only (sampler off): valid with the counter alone */
    clean(&s, 2.0);
    s.win.sample_period_s = 0;
    s.win.n_power = s.win.n_counter = 0;
    CHECK(assess(&s, &r) == 0 && r.valid == 1);
    CHECK(isnan(r.integral_j) && isnan(r.ratio) && isnan(r.max_gap_s));
}

static void test_summary(void) {
    hb_record r;
    hb_record_init(&r, 3, 1);
    snprintf(r.status, sizeof r.status, "ok");
    r.n_iters = 10;
    r.window_s = 2.0;
    r.energy_j = 400;
    r.energy_counter_j = 400;
    r.energy_integral_j = 398;
    r.energy_ratio = 400.0 / 398;
    r.peak_w = 230;
    r.idle_w = 50;
    r.host_energy_j = 90;
    r.energy_valid = 1;
    snprintf(r.energy_source, sizeof r.energy_source, "counter");
    snprintf(r.meter, sizeof r.meter, "nvml");
    hb_cost k = {.flops = 1e9, .bytes = 1e6, .tokens_in = 0, .tokens_out = 8};
    hb_summary_row s;
    memset(&s, 0, sizeof s);
    hb_energy_summary_fill(&k, &r, &s);
    CHECK_NEAR(s.energy_j, 400, 1e-12);
    CHECK_NEAR(s.avg_w, 200, 1e-12);
    CHECK_NEAR(s.j_per_token_out, 5.0, 1e-12);    /* 400 J / (8 x 10) tokens */
    CHECK_NEAR(s.j_per_token_total, 5.0, 1e-12);
    CHECK_NEAR(s.tokens_per_j, 0.2, 1e-12);
    CHECK_NEAR(s.energy_net_j, 300, 1e-12);       /* 400 - 50 W x 2 s */
    CHECK_NEAR(s.host_avg_w, 45, 1e-12);
    CHECK_NEAR(s.peak_w, 230, 1e-12);
    CHECK(s.energy_valid == 1 && s.energy_flags == 0);
    CHECK_STR(s.energy_source, "counter");
    CHECK_STR(s.meter, "nvml");

    /* GEMM: no tokens -> J/token and tokens/J NaN, energy still there */
    hb_cost g = {.flops = 1e9, .bytes = 1e6};
    hb_energy_summary_fill(&g, &r, &s);
    CHECK(isnan(s.j_per_token_out) && isnan(s.j_per_token_total) && isnan(s.tokens_per_j));
    CHECK_NEAR(s.energy_j, 400, 1e-12);

    /* not measured: NaN everywhere, never 0 */
    hb_record none;
    hb_record_init(&none, 3, 1);
    snprintf(none.status, sizeof none.status, "ok");
    none.n_iters = 10;
    none.window_s = 2.0;
    none.energy_flags = HB_ENERGY_NO_METER;
    snprintf(none.energy_source, sizeof none.energy_source, "none");
    hb_energy_summary_fill(&k, &none, &s);
    CHECK(isnan(s.energy_j) && isnan(s.avg_w) && isnan(s.j_per_token_out) && isnan(s.tokens_per_j));
    CHECK(isnan(s.energy_net_j) && isnan(s.host_energy_j) && isnan(s.energy_counter_j));
    CHECK(s.energy_flags == HB_ENERGY_NO_METER && s.energy_valid == 0);

    /* failed rank: measured columns NaN even if the record had numbers */
    snprintf(r.status, sizeof r.status, "failed");
    hb_energy_summary_fill(&k, &r, &s);
    CHECK(isnan(s.energy_j) && isnan(s.energy_counter_j) && isnan(s.host_energy_j));
    CHECK(s.energy_valid == 0);

    /* a record from before the energy detail (no source): counter, else integral */
    hb_record old;
    hb_record_init(&old, 0, 0);
    snprintf(old.status, sizeof old.status, "ok");
    old.n_iters = 1;
    old.window_s = 1;
    old.energy_source[0] = '\0';
    old.energy_integral_j = 7;
    hb_energy_summary_fill(&k, &old, &s);
    CHECK_NEAR(s.energy_j, 7, 1e-12);
}

static void test_pci(void) {
    unsigned d, b, v, f;
    CHECK(hb_pci_parse("0000:17:00.0", &d, &b, &v, &f) == 0 && d == 0 && b == 0x17 && v == 0 && f == 0);
    CHECK(hb_pci_parse("00000001:C1:1f.7", &d, &b, &v, &f) == 0 && d == 1 && b == 0xc1 && v == 0x1f && f == 7);
    CHECK(hb_pci_parse("65:00.0", &d, &b, &v, &f) == 0 && d == 0 && b == 0x65);
    CHECK(hb_pci_parse("", NULL, NULL, NULL, NULL) != 0);
    CHECK(hb_pci_parse("0000:17:00", NULL, NULL, NULL, NULL) != 0);
    CHECK(hb_pci_parse("0000:17:20.0", NULL, NULL, NULL, NULL) != 0); /* device > 0x1f */
    CHECK(hb_pci_parse("zz:00.0", NULL, NULL, NULL, NULL) != 0);
    CHECK(hb_pci_same("00000000:17:00.0", "0000:17:00.0"));
    CHECK(hb_pci_same("0000:C1:00.0", "0000:c1:00.0"));
    CHECK(!hb_pci_same("0000:17:00.0", "0000:18:00.0"));
    CHECK(!hb_pci_same("garbage", "garbage"));
    CHECK_STR(hb_energy_flag_name(0), "no_meter");
    CHECK_STR(hb_energy_flag_name(HB_ENERGY_N_FLAGS - 1), "read_failed");
    CHECK(hb_energy_flag_name(HB_ENERGY_N_FLAGS) == NULL);
}

/* The none meter: every reading unsupported, a reason, NaN state. */
static void test_none(void) {
    hb_meter *m = NULL;
    CHECK(hb_meter_open_none(&m, "because") == HB_OK && m);
    if (!m) return;
    double v = 42;
    CHECK(hb_meter_energy_j(m, &v) == HB_ERR_UNSUPPORTED && v == 42);
    CHECK(hb_meter_power_w(m, &v) == HB_ERR_UNSUPPORTED);
    CHECK(!m->has_counter && !m->has_power);
    CHECK_STR(m->reason, "because");
    hb_meter_state st;
    hb_meter_read_state(m, &st);
    CHECK(isnan(st.power_w) && isnan(st.sm_clock_mhz) && isnan(st.power_limit_w));
    hb_device_row d;
    memset(&d, 0, sizeof d);
    d.power_limit_w = NAN;
    hb_energy_device_fill(m, NULL, &d);
    CHECK_STR(d.meter, "none");
    CHECK_STR(d.meter_reason, "because");
    CHECK(isnan(d.power_limit_w) && isnan(d.meter_resolution_j));
    CHECK_STR(d.host_meter, "");
    hb_meter_close(m);
    hb_meter_close(NULL);
    hb_idle_row idle = {.rank = 2};
    CHECK(hb_idle_baseline(NULL, 1.0, 20, NULL, &idle, NULL) == HB_OK);
    CHECK(idle.rank == 2 && isnan(idle.idle_w) && idle.flags == HB_ENERGY_NO_METER);
    CHECK_STR(idle.method, "none");
    CHECK(hb_idle_baseline(NULL, 0, 20, NULL, &idle, NULL) == HB_OK);
    CHECK_STR(idle.method, "skipped");
}

int main(void) {
    test_integrate();
    test_flags();
    test_summary();
    test_pci();
    test_none();
    HB_TEST_END();
}
