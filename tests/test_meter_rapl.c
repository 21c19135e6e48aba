/* test_meter_rapl.c - the RAPL meter (backends/cpu/meter_rapl.c) on fake powercap trees built
 * in a temporary directory (HETBENCH_POWERCAP_ROOT):
 * - domains: package and DRAM of two sockets found (DRAM at the top level or only inside its
 *   package), core / psys / intel-rapl-mmio left out, power limits summed;
 * - counter deltas exact, including a wraparound at the real max_energy_range_uj of a domain,
 *   and a decrease no wrap explains kept as a decrease (the window then sees "backwards");
 * - unreadable files: tests run as root, for whom mode bits do not deny a read, so an
 *   unreadable energy_uj is made (a) a directory in place of the file (read fails with EISDIR)
 *   and (b) a 0400 root file read by a child that drops to uid 65534 (EACCES, the real
 *   root-only case: the reason must name the file and the chmod / udev / root fixes). An
 *   unreadable DRAM domain is left out with a reason, an unreadable package fails the meter;
 * - no powercap root, an empty one: HB_ERR_UNSUPPORTED with the reason; the device meter of a
 *   CPU is then the none meter carrying it;
 * - live: a thread rewrites energy_uj at 50 + 10 W (wrapping every 0.4 s); the idle baseline
 *   and a sampled window give the scripted power. Tolerance 3% there: the file is only as fresh
 *   as the writer thread's last turn on a loaded 2-core machine; counter and integral, which see
 *   the same files, agree within 1%. */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/meter.h"
#include "harness/energy.h"
#include "harness/measure.h"
#include "hbtest.h"
#include "powercap_tree.h"

#define MAX_PKG 262143328850ull   /* a real package max_energy_range_uj */
#define MAX_DRAM 65712999613ull   /* a real DRAM one */

static char tmp[1024];

static void use_root(const char *sub) {
    char r[2048];
    snprintf(r, sizeof r, "%s/%s", tmp, sub);
    setenv("HETBENCH_POWERCAP_ROOT", r, 1);
}

static void rm_rf(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: %s\n", cmd);
}

typedef struct tree {
    char root[2048], pkg0[4096], dram0[4096], pkg1[4096], dram1[4096];
} tree;

static int build(tree *t, const char *sub) {
    char junk[4096];
    snprintf(t->root, sizeof t->root, "%s/%s", tmp, sub);
    if (mkdir(t->root, 0755) != 0) return -1;
    int r = 0;
    r |= pc_zone(t->root, "intel-rapl:0", "package-0", 1000000, MAX_PKG, 125000000, t->pkg0, sizeof t->pkg0);
    r |= pc_zone(t->root, "intel-rapl:0:0", "core", 5, MAX_PKG, 0, junk, sizeof junk);
    r |= pc_zone(t->root, "intel-rapl:0:2", "dram", 2000000, MAX_DRAM, 0, t->dram0, sizeof t->dram0);
    r |= pc_zone(t->root, "intel-rapl:1", "package-1", MAX_PKG - 328850, MAX_PKG, 150000000, t->pkg1, sizeof t->pkg1);
    r |= pc_zone(t->pkg1, "intel-rapl:1:0", "dram", 3000000, MAX_DRAM, 0, t->dram1, sizeof t->dram1);
    r |= pc_zone(t->root, "intel-rapl-mmio:0", "package-0", 7, MAX_PKG, 0, junk, sizeof junk);
    r |= pc_zone(t->root, "intel-rapl:2", "psys", 9, MAX_PKG, 0, junk, sizeof junk);
    return r;
}

static void set_uj(const char *dir, uint64_t v) { CHECK(pc_write_u64(dir, "energy_uj", v) == 0); }

/* energy_uj replaced by a directory: reading it fails (EISDIR), even for root */
static void make_unreadable(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/energy_uj", dir);
    CHECK(unlink(p) == 0 && mkdir(p, 0755) == 0);
}

static void test_domains_and_wrap(void) {
    tree t;
    CHECK(build(&t, "a") == 0);
    use_root("a");
    hb_err err = {{0}};
    CHECK_MSG(hb_meter_rapl_count(&err) == 4, "count %d: %s", hb_meter_rapl_count(&err), err.msg);
    hb_meter *m = NULL;
    CHECK_MSG(hb_meter_open_rapl(-1, &m, &err) == HB_OK && m, "%s", err.msg);
    if (!m) return;
    CHECK_STR(m->name, "rapl");
    CHECK(m->has_counter && m->has_power && m->power_from_counter);
    CHECK_STR(m->info.device, "package-0+dram-0+package-1+dram-1");
    CHECK_STR(m->info.scope, "CPU package 0 + CPU DRAM 0 + CPU package 1 + CPU DRAM 1");
    CHECK_STR(m->info.api, "powercap/RAPL");
    CHECK_STR(m->reason, "");
    CHECK_NEAR(m->info.power_limit_w, 275, 1e-9);
    CHECK_NEAR(m->info.counter_resolution_j, 1e-6, 0);

    double e0 = NAN, e1 = NAN, e2 = NAN;
    CHECK(hb_meter_energy_j(m, &e0) == HB_OK);
    set_uj(t.pkg0, 1000000 + 5000000);  /* +5 J */
    set_uj(t.dram0, 2000000 + 1000000); /* +1 J */
    set_uj(t.pkg1, 500000);             /* wrapped: +328850 + 1 + 500000 uJ */
    set_uj(t.dram1, 3000000 + 2000000); /* +2 J */
    CHECK(hb_meter_energy_j(m, &e1) == HB_OK);
    CHECK_NEAR(e1 - e0, 5 + 1 + 0.828851 + 2, 1e-6);
    /* a drop no wrap explains (3 J down at once): kept as a decrease */
    set_uj(t.pkg0, 1000000 + 2000000);
    CHECK(hb_meter_energy_j(m, &e2) == HB_OK);
    CHECK_NEAR(e2 - e1, -3, 1e-6);
    hb_meter_state st;
    hb_meter_read_state(m, &st);
    CHECK_NEAR(st.power_limit_w, 275, 1e-9);
    CHECK(isnan(st.sm_clock_mhz) && isnan(st.temperature_c));
    hb_meter_close(m);

    /* one domain at a time, in count order */
    static const char *const names[4] = {"package-0", "dram-0", "package-1", "dram-1"};
    for (int i = 0; i < 4; i++) {
        CHECK(hb_meter_open_rapl(i, &m, &err) == HB_OK && m);
        if (m) CHECK_STR(m->info.device, names[i]);
        hb_meter_close(m);
    }
    CHECK(hb_meter_open_rapl(4, &m, &err) != HB_OK && m == NULL);

    /* the CPU's device meter, and no separate host meter for it */
    hb_device_info cpu = {.backend = "cpu"}, gpu = {.backend = "cuda"};
    CHECK(hb_meter_open_for_device(&cpu, &m, &err) == HB_OK && m);
    if (m) CHECK_STR(m->name, "rapl");
    hb_meter_close(m);
    CHECK(hb_meter_open_host(&cpu, &m, &err) == HB_OK && m == NULL);
    CHECK(hb_meter_open_host(&gpu, &m, &err) == HB_OK && m);
    if (m) CHECK_STR(m->name, "rapl");
    hb_device_row d;
    memset(&d, 0, sizeof d);
    hb_meter *none = NULL;
    hb_meter_open_none(&none, "no GPU meter");
    hb_energy_device_fill(none, m, &d);
    CHECK_STR(d.host_meter, "rapl");
    CHECK_STR(d.host_meter_scope, "CPU package 0 + CPU DRAM 0 + CPU package 1 + CPU DRAM 1");
    hb_meter_close(none);
    hb_meter_close(m);
}

static void test_unreadable(void) {
    tree t;
    CHECK(build(&t, "b") == 0);
    use_root("b");
    hb_err err = {{0}};
    hb_meter *m = NULL;
    /* an unreadable DRAM domain: left out, with the reason */
    make_unreadable(t.dram1);
    CHECK_MSG(hb_meter_open_rapl(-1, &m, &err) == HB_OK && m, "%s", err.msg);
    if (m) {
        CHECK_MSG(strstr(m->reason, "dram-1") && strstr(m->reason, "Is a directory"), "%s", m->reason);
        CHECK_STR(m->info.scope, "CPU package 0 + CPU DRAM 0 + CPU package 1");
        double j;
        CHECK(hb_meter_energy_j(m, &j) == HB_OK);
    }
    hb_meter_close(m);
    /* an unreadable package: no meter, the reason names the file */
    make_unreadable(t.pkg0);
    err.msg[0] = '\0';
    CHECK(hb_meter_open_rapl(-1, &m, &err) == HB_ERR_UNSUPPORTED && m == NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/energy_uj", t.pkg0);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "Is a directory"), "%s", err.msg);
    /* the CPU's meter is then the none meter with that reason: NaN, never 0 */
    hb_device_info cpu = {.backend = "cpu"};
    CHECK(hb_meter_open_for_device(&cpu, &m, &err) == HB_OK && m);
    if (m) {
        CHECK_STR(m->name, "none");
        CHECK_MSG(strstr(m->reason, path) != NULL, "%s", m->reason);
        double j = 0;
        CHECK(hb_meter_energy_j(m, &j) == HB_ERR_UNSUPPORTED);
    }
    hb_meter_close(m);
}

/* The root-only energy_uj of Linux >= 5.10: EACCES for an unprivileged reader. */
static int permission_check(void) {
    hb_err err = {{0}};
    hb_meter *m = NULL;
    hb_status s = hb_meter_open_rapl(-1, &m, &err);
    int ok = s == HB_ERR_UNSUPPORTED && !m && strstr(err.msg, "Permission denied") &&
             strstr(err.msg, "energy_uj") && strstr(err.msg, "chmod") && strstr(err.msg, "udev") &&
             strstr(err.msg, "root");
    if (!ok) fprintf(stderr, "permission reason: %s\n", err.msg);
    hb_meter_close(m);
    return ok;
}

static void test_permission(void) {
    tree t;
    CHECK(build(&t, "c") == 0);
    use_root("c");
    char p[4200];
    snprintf(p, sizeof p, "%s/energy_uj", t.pkg0);
    CHECK(chmod(p, 0400) == 0);
    if (geteuid() != 0) {
        CHECK(chmod(p, 0000) == 0);
        CHECK(permission_check());
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(77);
        _exit(permission_check() ? 0 : 1);
    }
    int ws = 0;
    CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 77)
        fprintf(stderr, "note: cannot drop to uid 65534 here: EACCES case checked via EISDIR only\n");
    else
        CHECK_MSG(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "unprivileged child: status %d", ws);
}

static void test_missing(void) {
    hb_err err = {{0}};
    hb_meter *m = NULL;
    use_root("nonexistent");
    CHECK(hb_meter_rapl_count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "nonexistent") && strstr(err.msg, "No such file"), "%s", err.msg);
    CHECK(hb_meter_open_rapl(-1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    char empty[2048];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    CHECK(mkdir(empty, 0755) == 0);
    use_root("empty");
    CHECK(hb_meter_open_rapl(-1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "no intel-rapl package domain") != NULL, "%s", err.msg);
}

/* ---- live tree ---- */
typedef struct writer {
    char pkg[4096], dram[4096];
    double t0, w_pkg, w_dram, mod;
    atomic_int stop;
} writer;

static void *write_loop(void *arg) {
    writer *w = arg;
    while (!atomic_load(&w->stop)) {
        double t = hb_now_s() - w->t0;
        pc_write_u64(w->pkg, "energy_uj", (uint64_t)fmod(1e6 + w->w_pkg * 1e6 * t, w->mod));
        pc_write_u64(w->dram, "energy_uj", (uint64_t)fmod(1e6 + w->w_dram * 1e6 * t, w->mod));
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    return NULL;
}

static void test_live(void) {
    char root[2048];
    snprintf(root, sizeof root, "%s/live", tmp);
    CHECK(mkdir(root, 0755) == 0);
    writer w = {.w_pkg = 50, .w_dram = 10, .mod = 20e6 + 1}; /* wraps every 0.4 s */
    CHECK(pc_zone(root, "intel-rapl:0", "package-0", 1000000, 20000000, 95000000, w.pkg, sizeof w.pkg) == 0);
    CHECK(pc_zone(root, "intel-rapl:0:0", "dram", 1000000, 20000000, 0, w.dram, sizeof w.dram) == 0);
    use_root("live");
    w.t0 = hb_now_s();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, write_loop, &w) == 0);
    hb_meter *m = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_meter_open_rapl(-1, &m, &err) == HB_OK && m, "%s", err.msg);
    if (m) {
        hb_idle_row idle = {0};
        CHECK(hb_idle_baseline(m, 1.0, 50, NULL, &idle, &err) == HB_OK);
        CHECK_MSG(fabs(idle.idle_w - 60) < 0.03 * 60, "idle %.3f W", idle.idle_w);
        CHECK_STR(idle.method, "counter");
        CHECK_MSG(idle.flags == 0, "idle flags %#x", idle.flags);

        /* a sampled window, as hb_measure_case takes it */
        hb_sampler *s = NULL;
        CHECK(hb_sampler_start(m, NULL, 50, &s, NULL) == HB_OK);
        double e0 = NAN, e1 = NAN;
        double t0 = hb_now_s();
        hb_meter_energy_j(m, &e0);
        struct timespec d = {1, 200000000};
        nanosleep(&d, NULL);
        hb_meter_energy_j(m, &e1);
        double t1 = hb_now_s();
        hb_sampler_stop(s);
        const hb_samples *x = hb_sampler_samples(s);
        hb_energy_window win = {
            .t0 = t0, .t1 = t1, .has_counter = 1, .has_power = 1, .e0_j = e0, .e1_j = e1,
            .counter_period_s = m->counter_period_s, .sample_period_s = 0.02,
            .power_window_s = NAN, .power_from_counter = 1, .pt = x->power_t, .pw = x->power_w,
            .n_power = x->n_power, .ct = x->counter_t, .cj = x->counter_j, .n_counter = x->n_counter,
        };
        hb_energy_result r;
        hb_energy_assess(&win, &r);
        double want = 60 * (t1 - t0);
        CHECK_MSG(fabs(r.counter_j - want) < 0.03 * want, "counter %.3f J, scripted %.3f J", r.counter_j, want);
        CHECK_MSG(fabs(r.integral_j - want) < 0.03 * want, "integral %.3f J, scripted %.3f J", r.integral_j, want);
        CHECK_MSG(fabs(r.ratio - 1) < 0.01, "ratio %.4f", r.ratio);
        CHECK_MSG(r.flags == 0 && r.valid, "flags %#x", r.flags);
        CHECK_STR(r.source, "counter");
        hb_sampler_free(s);
    }
    hb_meter_close(m);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/hb-test-rapl-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    chmod(tmp, 0755); /* the unprivileged child must reach the tree */
    test_domains_and_wrap();
    test_unreadable();
    test_permission();
    test_missing();
    test_live();
    rm_rf(tmp);
    HB_TEST_END();
}
