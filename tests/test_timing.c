/* test_timing.c - interference evidence and the timing verdict (harness/timing.h).
 *
 * 1. hb_timing_assess on synthetic evidence: a quiet window is valid; each extreme value
 *    raises exactly its flag.
 * 2. The /proc and cpufreq readers on fake files (HETBENCH_PROC_ROOT, HETBENCH_CPUFREQ_ROOT):
 *    a fake /proc/stat that gains steal and foreign busy time between two readings.
 * 3. Real interference, injected: three busy children pinned (sched_setaffinity) to the CPU
 *    this process is pinned to, started and killed by PID; a 0.3 s compute window must show
 *    cpu_util < 0.5, the interference flag, and foreign busy time in /proc/stat. The control
 *    window without children must get clearly more CPU, and when it is flagged (a loaded CI
 *    machine is a loaded machine) the CPU it lost must be explained by other processes'
 *    measured busy time, not invented. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../harness/stats.h"
#include "../harness/timing.h"
#include "../harness/worker.h" // defines: hb_record_add_window
#include "hbtest.h"

static hb_timing_in quiet(void) {
    return (hb_timing_in){.cpu_rank = 1, .window_s = 1.0, .n_iters = 1000, .cpu_util = 0.98,
                          .n_threads = 2, .thread_ctx_invol = 3, .other_cpu_s = 0.01, .steal_s = 0,
                          .n_cpus = 2, .loadavg_1m = 1.0, .n_online_cpus = 2, .iter_cv = 0.05,
                          .iter_mean_s = 1e-3, .iter_median_s = 0.99e-3, .mfu = 0.5, .bw_util = 0.7,
                          .mem_bytes = 1 << 30, .llc_bytes = 32 << 20};
}

static void test_assess(void) {
    int32_t v = -1;
    hb_timing_in in = quiet();
    CHECK(hb_timing_assess(&in, &v) == 0 && v == 1);
    struct { const char *what; uint32_t want; int valid; } cases[] = {
        {"cpu_util", HB_TIMING_INTERFERENCE, 0},   {"preempt", HB_TIMING_INTERFERENCE, 0},
        {"steal", HB_TIMING_STEAL, 0},             {"other", HB_TIMING_CPU_CONTENTION, 0},
        {"cv", HB_TIMING_HIGH_CV, 0},              {"mean", HB_TIMING_HIGH_CV, 0},
        {"mfu", HB_TIMING_RATE_OVER_CEILING, 0},   {"bw", HB_TIMING_RATE_OVER_CEILING, 0},
        {"cache", HB_TIMING_FITS_IN_CACHE, 1},     {"short", HB_TIMING_SHORT_WINDOW, 0},
        {"iters", HB_TIMING_SHORT_WINDOW, 0},      {"load", HB_TIMING_HIGH_LOAD, 1},
        {"noproc", HB_TIMING_NO_EVIDENCE, 1},      {"failed", HB_TIMING_NOT_MEASURED, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        in = quiet();
        const char *w = cases[i].what;
        if (!strcmp(w, "cpu_util")) in.cpu_util = 0.3;
        if (!strcmp(w, "preempt")) in.cpu_rank = 0, in.cpu_util = 0.01, in.thread_ctx_invol = 500;
        if (!strcmp(w, "steal")) in.steal_s = 0.2;
        if (!strcmp(w, "other")) in.other_cpu_s = 1.0;
        if (!strcmp(w, "cv")) in.iter_cv = 3, in.n_iters = 50;
        if (!strcmp(w, "mean")) in.iter_mean_s = 3.2e-3;
        if (!strcmp(w, "mfu")) in.mfu = 1.5;
        if (!strcmp(w, "bw")) in.bw_util = 1.46;
        if (!strcmp(w, "cache")) in.mem_bytes = 8 << 20, in.bw_util = 1.46; /* no over-ceiling then */
        if (!strcmp(w, "short")) in.window_s = 0.01;
        if (!strcmp(w, "iters")) in.n_iters = 2;
        if (!strcmp(w, "load")) in.loadavg_1m = 5.5;
        if (!strcmp(w, "noproc")) in.other_cpu_s = in.steal_s = NAN;
        if (!strcmp(w, "failed")) in.window_s = NAN;
        uint32_t f = hb_timing_assess(&in, &v);
        CHECK_MSG(f == cases[i].want && v == cases[i].valid, "%s: flags 0x%x valid %d", w, f, v);
    }
    /* many short iterations: a high CV alone (a few preempted iterations) is not high_cv */
    in = quiet();
    in.iter_cv = 3;
    CHECK(hb_timing_assess(&in, &v) == 0 && v == 1);
    /* a device rank: low process CPU is normal (the host waits for the device) */
    in = quiet();
    in.cpu_rank = 0, in.cpu_util = 0.02;
    CHECK(hb_timing_assess(&in, &v) == 0 && v == 1);
    /* jiffy floors: a tiny absolute steal in a tiny window is not a flag */
    in = quiet();
    in.window_s = 0.2, in.steal_s = 0.01;
    CHECK((hb_timing_assess(&in, &v) & HB_TIMING_STEAL) == 0);
    char buf[128];
    CHECK_STR(hb_timing_flag_names(HB_TIMING_STEAL | HB_TIMING_FITS_IN_CACHE, buf, sizeof buf), "steal,fits_in_cache");
    CHECK_STR(hb_timing_flag_names(0, buf, sizeof buf), "");
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "%s: %s", path, strerror(errno));
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A /proc/stat with one line per CPU 0..n-1, each with the given busy (user) and steal jiffies. */
static void fake_stat(const char *dir, int n, long user, long steal) {
    char path[600];
    static char text[1 << 16]; /* 256 lines of < 64 characters */
    int l = snprintf(text, sizeof text, "cpu  1 2 3 4 5 6 7 8 0 0\n");
    for (int i = 0; i < n; i++)
        l += snprintf(text + l, sizeof text - (size_t)l, "cpu%d %ld 0 0 1000 0 0 0 %ld 0 0\n", i, user, steal);
    snprintf(text + l, sizeof text - (size_t)l, "intr 1 2 3\nctxt 5\n");
    snprintf(path, sizeof path, "%s/stat", dir);
    write_file(path, text);
}

static void test_fake_proc(void) {
    char dir[] = "/tmp/hb_timing_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    const int ncpu = 256; /* every CPU the affinity mask may hold below 256 */
    fake_stat(dir, ncpu, 100, 0);
    snprintf(path, sizeof path, "%s/loadavg", dir);
    write_file(path, "0.25 0.30 0.35 1/123 4567\n");
    /* cpufreq for CPU 0..255: 2.1 GHz */
    for (int i = 0; i < ncpu; i++) {
        snprintf(path, sizeof path, "%s/cpu%d", dir, i);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/cpu%d/cpufreq", dir, i);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/cpu%d/cpufreq/scaling_cur_freq", dir, i);
        write_file(path, "2100000\n");
    }
    setenv("HETBENCH_PROC_ROOT", dir, 1);
    setenv("HETBENCH_CPUFREQ_ROOT", dir, 1);
    hb_timing_probe a, b;
    hb_timing_read(&a);
    CHECK_NEAR(a.loadavg_1m, 0.25, 1e-12);
    CHECK_NEAR(a.cpu_mhz, 2100, 1e-9);
    CHECK(a.n_cpus >= 1);
    const double hz = (double)sysconf(_SC_CLK_TCK);
    CHECK_NEAR(a.busy_s, a.n_cpus * 100 / hz, 1e-9);
    /* one second later by the fake: each CPU gained 50 jiffies of foreign busy time and 30 of steal */
    fake_stat(dir, ncpu, 100 + (long)(hz / 2), (long)(0.3 * hz));
    hb_timing_read(&b);
    b.t_s = a.t_s + 1.0;
    b.cpu_s = a.cpu_s; /* our own CPU time: none, for the arithmetic */
    hb_record rec;
    hb_record_init(&rec, 0, 0);
    hb_timing_window(&a, &b, 1, &rec);
    CHECK_NEAR(rec.other_cpu_s, 0.5 * b.n_cpus, 0.02 * b.n_cpus);
    CHECK_NEAR(rec.steal_s, 0.3 * b.n_cpus, 0.02 * b.n_cpus);
    CHECK_NEAR(rec.cpu_mhz_end, 2100, 1e-9);
    hb_timing_in in = {.cpu_rank = 1, .window_s = 1.0, .n_iters = 100, .cpu_util = 0.9, .n_threads = 1,
                       .other_cpu_s = rec.other_cpu_s, .steal_s = rec.steal_s, .n_cpus = rec.n_cpus,
                       .iter_cv = 0.01, .iter_mean_s = 0.01, .iter_median_s = 0.01, .mfu = NAN, .bw_util = NAN};
    int32_t v = 1;
    uint32_t f = hb_timing_assess(&in, &v);
    CHECK_MSG(f == (HB_TIMING_STEAL | HB_TIMING_CPU_CONTENTION) && v == 0, "flags 0x%x", f);
    /* unreadable /proc: NaN evidence and the note, never zeros */
    setenv("HETBENCH_PROC_ROOT", "/nonexistent-hb", 1);
    hb_timing_read(&a);
    CHECK(isnan(a.busy_s) && isnan(a.steal_s) && isnan(a.loadavg_1m));
    unsetenv("HETBENCH_PROC_ROOT");
    unsetenv("HETBENCH_CPUFREQ_ROOT");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A compute window of `seconds` on this thread, with its evidence. */
static void busy_window(double seconds, hb_record *rec) {
    hb_timing_probe a, b;
    hb_record_init(rec, 0, 0);
    hb_timing_read(&a);
    volatile double x = 1;
    struct timespec ts;
    double t = 0;
    do {
        for (int i = 0; i < 100000; i++) x = x * 1.0000001 + 1e-9;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    } while (t - a.t_s < seconds);
    hb_timing_read(&b);
    hb_timing_window(&a, &b, 1, rec);
    rec->window_s = b.t_s - a.t_s;
}

static uint32_t verdict(const hb_record *r, int32_t *valid) {
    hb_timing_in in = {.cpu_rank = 1, .window_s = r->window_s, .n_iters = 100, .cpu_util = r->cpu_util,
                       .n_threads = 1, .thread_ctx_invol = r->thread_ctx_invol, .other_cpu_s = r->other_cpu_s,
                       .steal_s = r->steal_s, .n_cpus = r->n_cpus, .iter_cv = 0, .iter_mean_s = 1,
                       .iter_median_s = 1, .mfu = NAN, .bw_util = NAN};
    return hb_timing_assess(&in, valid);
}

static void test_injected(void) {
    cpu_set_t all, one;
    CPU_ZERO(&all);
    if (sched_getaffinity(0, sizeof all, &all) != 0) return;
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &all)) cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    char buf[256];

    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) { /* a competitor on our CPU, until killed */
            sched_setaffinity(0, sizeof one, &one);
            for (volatile unsigned long x = 0;; x++) {}
        }
        CHECK(kids[i] > 0);
    }
    usleep(50000);
    hb_record hot;
    busy_window(0.3, &hot);
    for (int i = 0; i < 3; i++)
        if (kids[i] > 0) kill(kids[i], SIGKILL), waitpid(kids[i], NULL, 0);
    int32_t v = 1;
    uint32_t f = verdict(&hot, &v);
    fprintf(stderr, "injected: window %.3f s cpu_util %.3f other_cpu_s %.3f ctx_invol %lld flags %s\n",
            hot.window_s, hot.cpu_util, hot.other_cpu_s, (long long)hot.ctx_invol,
            hb_timing_flag_names(f, buf, sizeof buf));
    CHECK_MSG(hot.cpu_util < 0.5, "cpu_util %.3f with 3 competitors on our CPU", hot.cpu_util);
    CHECK(f & HB_TIMING_INTERFERENCE);
    CHECK(v == 0);
    CHECK(hot.ctx_invol >= 10);
    if (isfinite(hot.other_cpu_s)) {
        CHECK_MSG(hot.other_cpu_s > 0.15, "other_cpu_s %.3f", hot.other_cpu_s);
        CHECK(f & HB_TIMING_CPU_CONTENTION);
    }

    hb_record calm;
    busy_window(0.3, &calm);
    f = verdict(&calm, &v);
    fprintf(stderr, "control:  window %.3f s cpu_util %.3f other_cpu_s %.3f ctx_invol %lld flags %s\n",
            calm.window_s, calm.cpu_util, calm.other_cpu_s, (long long)calm.ctx_invol,
            hb_timing_flag_names(f, buf, sizeof buf));
    CHECK_MSG(calm.cpu_util > hot.cpu_util + 0.1, "control %.3f vs injected %.3f", calm.cpu_util, hot.cpu_util);
    if (f & HB_TIMING_INTERFERENCE) { /* lost CPU must have gone to someone we measured */
        double lost = (1 - calm.cpu_util) * calm.window_s;
        CHECK_MSG(isfinite(calm.other_cpu_s) && calm.other_cpu_s > 0.5 * lost - 0.03,
                  "control flagged, lost %.3f s, others measured %.3f s", lost, calm.other_cpu_s);
    }
    sched_setaffinity(0, sizeof all, &all);
}

/* --repeat: the median of the windows' rates and an interval from the windows */
static void test_repeat_rate(void) {
    /* windows of 2, 3, 1, 2, 2 iterations at 10, 20, 40, 10, 12.5 iterations/s */
    const double x[10] = {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.1, 0.1, 0.08, 0.08};
    const int64_t w[5] = {2, 3, 1, 2, 2};
    double med, lo, hi, mn, mx;
    hb_repeat_rate(x, 10, w, 5, 2.0, 2000, 7, &med, &lo, &hi, &mn, &mx);
    CHECK_NEAR(med, 2.0 * 12.5, 1e-9);
    CHECK_NEAR(mn, 20, 1e-9);
    CHECK_NEAR(mx, 80, 1e-9);
    CHECK(lo >= mn && lo <= med && hi >= med && hi <= mx && hi > lo);
    /* the outlier window moves the mean-based rate, not the median */
    hb_stats st;
    hb_stats_compute(x, 10, &st);
    CHECK(fabs(2.0 / st.mean - med) > 1);
    const int64_t bad[5] = {2, 3, 1, 2, 1}; /* does not add up to 10 */
    hb_repeat_rate(x, 10, bad, 5, 2.0, 2000, 7, &med, &lo, &hi, &mn, &mx);
    CHECK(isnan(med) && isnan(lo) && isnan(mx));
    hb_repeat_rate(x, 10, w, 1, 2.0, 2000, 7, &med, &lo, &hi, &mn, &mx);
    CHECK(isnan(med));
}

/* --interleave: windows of one case gathered across rounds into one record */
static hb_record window_rec(int n, double dt, double cpu_s, const char *status) {
    hb_record r;
    hb_record_init(&r, 3, 0);
    snprintf(r.status, sizeof r.status, "%s", status);
    snprintf(r.error, sizeof r.error, "%s", strcmp(status, "ok") ? "boom" : "");
    r.n_iters = n;
    r.iter_seconds = malloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) r.iter_seconds[i] = dt;
    r.window_s = n * dt;
    r.n_threads = 2;
    r.cpu_s = cpu_s;
    r.cpu_util = cpu_s / (r.window_s * 2);
    r.ctx_invol = 10;
    r.other_cpu_s = 0.25;
    r.energy_j = 2.0;
    r.energy_valid = 1;
    r.n_reps = 1;
    r.rep_iters[0] = n;
    r.loadavg_1m_end = n;
    return r;
}

static void test_add_window(void) {
    hb_record acc;
    memset(&acc, 0, sizeof acc);
    hb_record a = window_rec(4, 0.25, 2.0, "ok"), b = window_rec(2, 0.5, 0.5, "ok"), c = window_rec(1, 1, 2, "failed");
    /* serve: each window's request records are its own array; the merged record keeps the last
     * window's (a shared pointer was freed twice) */
    a.n_requests = b.n_requests = 1;
    a.requests = calloc(HB_SERVE_REQ_COLS, sizeof(double));
    b.requests = calloc(HB_SERVE_REQ_COLS, sizeof(double));
    a.requests[0] = 1.0, b.requests[0] = 2.0;
    a.serve[HB_SV_TTFT_P99] = 1.0, b.serve[HB_SV_TTFT_P99] = 2.0;
    CHECK(hb_record_add_window(&acc, &a) == HB_OK);
    CHECK(acc.iter_seconds != a.iter_seconds); /* a copy: a's arrays stay a's */
    CHECK(acc.requests && acc.requests != a.requests && acc.requests[0] == 1.0);
    CHECK(hb_record_add_window(&acc, &b) == HB_OK);
    CHECK(acc.requests && acc.requests != b.requests && acc.requests[0] == 2.0 && acc.serve[HB_SV_TTFT_P99] == 2.0);
    CHECK(acc.n_reps == 2 && acc.rep_iters[0] == 4 && acc.rep_iters[1] == 2 && acc.n_iters == 6);
    CHECK(acc.iter_seconds[3] == 0.25 && acc.iter_seconds[4] == 0.5 && acc.iter_seconds[5] == 0.5);
    CHECK_NEAR(acc.window_s, 2.0, 1e-12);
    CHECK_NEAR(acc.cpu_s, 2.5, 1e-12);
    CHECK_NEAR(acc.cpu_util, 2.5 / (2.0 * 2), 1e-12); /* over the sum, not a mean of utilisations */
    CHECK(acc.ctx_invol == 20);
    CHECK_NEAR(acc.other_cpu_s, 0.5, 1e-12);
    CHECK_NEAR(acc.energy_j, 4.0, 1e-12);
    CHECK(isnan(acc.energy_counter_j)); /* not measured stays not measured */
    CHECK(acc.loadavg_1m_end == 2);     /* the last window's end */
    CHECK(!strcmp(acc.status, "ok"));
    /* the median of the windows' rates from the merged record */
    double med, lo, hi, mn, mx;
    hb_repeat_rate(acc.iter_seconds, acc.n_iters, acc.rep_iters, acc.n_reps, 1.0, 100, 1, &med, &lo, &hi, &mn, &mx);
    CHECK_NEAR(mn, 2, 1e-12);
    CHECK_NEAR(mx, 4, 1e-12);
    CHECK(hb_record_add_window(&acc, &c) == HB_OK);
    CHECK(!strcmp(acc.status, "failed") && strstr(acc.error, "window 3: boom"));
    CHECK(acc.n_reps == 2);
    hb_record_free(&a), hb_record_free(&b), hb_record_free(&c), hb_record_free(&acc);
}

/* The interval also sees the noise inside the windows, in blocks of consecutive iterations. */
static void test_repeat_block_bootstrap(void) {
    CHECK(hb_block_len(1) == 1 && hb_block_len(8) == 2 && hb_block_len(27) == 3);
    CHECK(hb_block_len(1000) == 10 && hb_block_len(1001) == 11 && hb_block_len(2) == 2);
    enum { W = 1000, R = 5 };
    static double flat[R * W], blocky[R * W], alt[R * W];
    int64_t w[R];
    for (int r = 0; r < R; r++) {
        w[r] = W;
        for (int i = 0; i < W; i++) {
            flat[r * W + i] = 1e-3;
            blocky[r * W + i] = i < W / 2 ? 2e-3 : 1e-3; /* a stall of half the window */
            alt[r * W + i] = i % 2 ? 1e-3 : 2e-3;          /* the same times, interleaved */
        }
    }
    double med, lo, hi, mn, mx;
    /* no noise anywhere: a point */
    hb_repeat_rate(flat, R * W, w, R, 1.0, 500, 3, &med, &lo, &hi, &mn, &mx);
    CHECK_NEAR(med, 1000, 1e-6);
    CHECK_NEAR(lo, 1000, 1e-6);
    CHECK_NEAR(hi, 1000, 1e-6);
    /* five identical windows: resampling windows alone gives a zero-width interval; the
     * blocks inside them do not */
    double med_b, lo_b, hi_b, med_a, lo_a, hi_a;
    hb_repeat_rate(blocky, R * W, w, R, 1.0, 500, 3, &med_b, &lo_b, &hi_b, &mn, &mx);
    hb_repeat_rate(alt, R * W, w, R, 1.0, 500, 3, &med_a, &lo_a, &hi_a, &mn, &mx);
    CHECK_NEAR(med_b, 1000 / 1.5, 1e-6);
    CHECK_NEAR(med_a, 1000 / 1.5, 1e-6);
    CHECK_NEAR(mn, mx, 1e-9);
    CHECK_MSG(lo_b < med_b - 5 && hi_b > med_b + 5, "blocky [%g, %g] around %g", lo_b, hi_b, med_b);
    /* a block of 10 always holds 5 slow and 5 fast alternating iterations: the same times in
     * one stretch (a stall) must widen the interval far more - an i.i.d. bootstrap of the
     * iterations cannot tell the two apart */
    CHECK_MSG(hi_b - lo_b > 10 * (hi_a - lo_a) + 1, "blocky width %g vs alternating %g", hi_b - lo_b, hi_a - lo_a);
    double ilo_b, ihi_b, ilo_a, ihi_a;
    hb_bootstrap_rate_ci(blocky, W, 1.0, 500, 3, &ilo_b, &ihi_b);
    hb_bootstrap_rate_ci(alt, W, 1.0, 500, 3, &ilo_a, &ihi_a);
    CHECK_NEAR(ihi_b - ilo_b, ihi_a - ilo_a, 1e-9 + 0.5 * (ihi_a - ilo_a));
}

int main(void) {
    test_assess();
    test_repeat_rate();
    test_repeat_block_bootstrap();
    test_add_window();
    test_fake_proc();
    test_injected();
    double r = hb_timing_ref_loop_s(3);
    CHECK(r > 1e-4 && r < 5);
    HB_TEST_END();
}
