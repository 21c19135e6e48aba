/* timing.c - interference evidence and the timing verdict (see timing.h). */
/* _GNU_SOURCE (sched_getaffinity, CPU_* macros, RUSAGE_THREAD) comes from the build */
#include "timing.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec; }

/* Busy (user nice system irq softirq) and steal seconds of the CPUs in `set`, from the
 * per-CPU lines of <proc>/stat; -1 when unreadable or no CPU of the set has a line. */
static int read_stat(const char *proc, const cpu_set_t *set, double *busy_s, double *steal_s) {
    char path[512];
    snprintf(path, sizeof path, "%s/stat", proc);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    const double hz = (double)sysconf(_SC_CLK_TCK);
    char line[512];
    unsigned long long busy = 0, steal = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        int cpu = -1, off = 0;
        /* "cpuN ..." lines only: the aggregate "cpu  ..." line has a space after "cpu" */
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9' ||
            sscanf(line, "cpu%d%n", &cpu, &off) != 1 || cpu < 0 ||
            cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set))
            continue;
        unsigned long long v[8] = {0}; /* user nice system idle iowait irq softirq steal */
        int n = sscanf(line + off, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                       &v[4], &v[5], &v[6], &v[7]);
        if (n < 4) continue;
        busy += v[0] + v[1] + v[2] + v[5] + v[6];
        steal += v[7];
        found++;
    }
    fclose(f);
    if (!found || hz <= 0) return -1;
    *busy_s = (double)busy / hz;
    *steal_s = (double)steal / hz;
    return 0;
}

void hb_timing_read(hb_timing_probe *p) {
    memset(p, 0, sizeof *p);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    p->t_s = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        p->cpu_s = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
        p->nvcsw = ru.ru_nvcsw;
        p->nivcsw = ru.ru_nivcsw;
    } else {
        p->cpu_s = NAN;
    }
    if (getrusage(RUSAGE_THREAD, &ru) == 0) p->thread_nivcsw = ru.ru_nivcsw;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) { /* unknown: every CPU */
        for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, &set);
    }
    p->n_cpus = CPU_COUNT(&set);
    const char *proc = env_or("HETBENCH_PROC_ROOT", "/proc");
    if (read_stat(proc, &set, &p->busy_s, &p->steal_s) != 0) p->busy_s = p->steal_s = NAN;
    char path[512];
    snprintf(path, sizeof path, "%s/loadavg", proc);
    FILE *f = fopen(path, "r");
    p->loadavg_1m = NAN;
    if (f) {
        if (fscanf(f, "%lf", &p->loadavg_1m) != 1) p->loadavg_1m = NAN;
        fclose(f);
    }
    /* the clock: the mean over the CPUs of the set that expose it (the first 64 suffice) */
    const char *sys = env_or("HETBENCH_CPUFREQ_ROOT", "/sys/devices/system/cpu");
    double sum = 0;
    int n = 0;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE && seen < 64; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        seen++;
        snprintf(path, sizeof path, "%s/cpu%d/cpufreq/scaling_cur_freq", sys, cpu);
        FILE *q = fopen(path, "r");
        double khz = 0;
        if (q && fscanf(q, "%lf", &khz) == 1 && khz > 0) sum += khz, n++;
        if (q) fclose(q);
    }
    p->cpu_mhz = n ? sum / n / 1e3 : NAN;
}

void hb_timing_window(const hb_timing_probe *a, const hb_timing_probe *b, int n_threads, hb_record *rec) {
    double wall = b->t_s - a->t_s;
    rec->cpu_s = b->cpu_s - a->cpu_s;
    rec->n_threads = n_threads > 0 ? n_threads : 1;
    rec->cpu_util = wall > 0 ? rec->cpu_s / (wall * rec->n_threads) : NAN;
    rec->n_cpus = b->n_cpus;
    rec->n_online_cpus = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    rec->ctx_vol = b->nvcsw - a->nvcsw;
    rec->ctx_invol = b->nivcsw - a->nivcsw;
    rec->thread_ctx_invol = b->thread_nivcsw - a->thread_nivcsw;
    /* others = all busy time of our CPUs minus our own; jiffy resolution, so it may dip below 0 */
    rec->other_cpu_s = (b->busy_s - a->busy_s) - rec->cpu_s;
    if (rec->other_cpu_s < 0) rec->other_cpu_s = 0;
    if (!isfinite(a->busy_s) || !isfinite(b->busy_s)) rec->other_cpu_s = NAN;
    rec->steal_s = b->steal_s - a->steal_s;
    rec->loadavg_1m_start = a->loadavg_1m;
    rec->loadavg_1m_end = b->loadavg_1m;
    rec->cpu_mhz_start = a->cpu_mhz;
    rec->cpu_mhz_end = b->cpu_mhz;
}

uint32_t hb_timing_assess(const hb_timing_in *in, int32_t *valid) {
    uint32_t f = 0;
    const double w = in->window_s;
    if (!(w > 0) || in->n_iters <= 0) {
        *valid = 0;
        return HB_TIMING_NOT_MEASURED;
    }
    const int ncpu = in->n_cpus > 0 ? in->n_cpus : 1;
    /* the process itself lost its CPU: the CPU backend's threads got under half of it, or a
     * device rank's launch thread was preempted often */
    if (in->cpu_rank && isfinite(in->cpu_util) && in->cpu_util < HB_TIMING_MIN_CPU_UTIL) f |= HB_TIMING_INTERFERENCE;
    if (!in->cpu_rank && in->thread_ctx_invol >= HB_TIMING_MIN_PREEMPTS &&
        (double)in->thread_ctx_invol / w > HB_TIMING_MAX_PREEMPT_HZ)
        f |= HB_TIMING_INTERFERENCE;
    if (isfinite(in->steal_s) && in->steal_s > HB_TIMING_MAX_STEAL * w * ncpu &&
        in->steal_s > HB_TIMING_STEAL_FLOOR_S * ncpu)
        f |= HB_TIMING_STEAL;
    if (isfinite(in->other_cpu_s) && in->other_cpu_s > HB_TIMING_MAX_OTHER * w * ncpu &&
        in->other_cpu_s > HB_TIMING_OTHER_FLOOR_S * ncpu)
        f |= HB_TIMING_CPU_CONTENTION;
    if (!isfinite(in->other_cpu_s)) f |= HB_TIMING_NO_EVIDENCE;
    if ((isfinite(in->iter_cv) && in->iter_cv > HB_TIMING_MAX_CV && in->n_iters < HB_TIMING_CV_MAX_ITERS) ||
        (in->iter_median_s > 0 && in->iter_mean_s / in->iter_median_s > HB_TIMING_MAX_MEAN_MEDIAN))
        f |= HB_TIMING_HIGH_CV;
    const int fits = in->llc_bytes > 0 && in->mem_bytes > 0 && in->mem_bytes <= in->llc_bytes;
    if (fits) f |= HB_TIMING_FITS_IN_CACHE;
    /* a bandwidth above the DRAM ceiling is expected from a case that lives in the cache */
    if ((isfinite(in->mfu) && in->mfu > HB_TIMING_MAX_UTIL) ||
        (!fits && isfinite(in->bw_util) && in->bw_util > HB_TIMING_MAX_UTIL))
        f |= HB_TIMING_RATE_OVER_CEILING;
    if (w < HB_TIMING_MIN_WINDOW_S || in->n_iters < HB_TIMING_MIN_ITERS) f |= HB_TIMING_SHORT_WINDOW;
    if (in->n_online_cpus > 0 && isfinite(in->loadavg_1m) && in->loadavg_1m > in->n_online_cpus)
        f |= HB_TIMING_HIGH_LOAD;
    *valid = (f & HB_TIMING_INVALID) == 0;
    return f;
}

/* ~15 ms of dependent work: an xorshift chain feeding a float recurrence, so neither the
 * compiler nor the core can shorten it; the result is returned through a volatile sink. */
static double ref_loop_once(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t x = 88172645463325252ull;
    double y = 0.5;
    for (int i = 0; i < (1 << 23); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        y = y * 0.999999 + (double)(x & 0xff) * 1e-9;
    }
    volatile double sink = y + (double)(x & 1);
    (void)sink;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
}

double hb_timing_ref_loop_s(int reps) {
    double best = INFINITY;
    for (int i = 0; i < (reps > 0 ? reps : 1); i++) {
        double t = ref_loop_once();
        if (t < best) best = t;
    }
    return best;
}
