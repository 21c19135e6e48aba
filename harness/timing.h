/* timing.h - interference evidence around a timed window and the timing verdict (DESIGN.md §6,
 * issue 10). A window is honest only if the rank had its CPUs to itself: this module reads, at
 * each edge of the window, what the OS says about that - the process's CPU time and context
 * switches (getrusage), the launch thread's preemptions (RUSAGE_THREAD), the busy and steal
 * time of the CPUs the process may run on (/proc/stat), the load average (/proc/loadavg) and
 * the CPU clock (cpufreq sysfs) - and turns the difference into the evidence columns of a
 * record. hb_timing_assess turns evidence into reasons (HB_TIMING_*, results/results.h), a
 * pure function the tests drive with extreme values.
 *
 * Inputs are read at each call from HETBENCH_PROC_ROOT (instead of /proc: `stat`, `loadavg`)
 * and HETBENCH_CPUFREQ_ROOT (instead of /sys/devices/system/cpu: `cpu<N>/cpufreq/
 * scaling_cur_freq`, kHz), so that tests can feed recorded or extreme files. Whatever cannot
 * be read is NaN, never a guess. */
#ifndef HB_TIMING_H
#define HB_TIMING_H

#include <stdint.h>

#include "../results/results.h"

/* One reading at a window edge. */
typedef struct hb_timing_probe {
    double t_s;                 /* CLOCK_MONOTONIC */
    double cpu_s;               /* process user + system CPU time */
    int64_t nvcsw, nivcsw;      /* process voluntary / involuntary context switches */
    int64_t thread_nivcsw;      /* the calling (launch) thread's involuntary switches */
    int n_cpus;                 /* CPUs of the process's affinity mask */
    double busy_s, steal_s;     /* summed over those CPUs (/proc/stat); NaN unreadable */
    double loadavg_1m;          /* NaN unreadable */
    double cpu_mhz;             /* mean current clock of those CPUs; NaN not exposed */
} hb_timing_probe;

/* Takes a reading now (never fails: what is unreadable is NaN / 0). */
void hb_timing_read(hb_timing_probe *p);

/* The evidence of a window from its two edge readings into rec (cpu_s, cpu_util over
 * n_threads, context switches, other_cpu_s, steal_s, load, clock). */
void hb_timing_window(const hb_timing_probe *a, const hb_timing_probe *b, int n_threads,
                      hb_record *rec);

/* What the verdict looks at (one (case, rank)). */
typedef struct hb_timing_in {
    int cpu_rank;               /* 1: the CPU backend computes on the process's threads */
    double window_s;
    int64_t n_iters;
    double cpu_util;            /* cpu_s / (window_s x n_threads) */
    int32_t n_threads;
    int64_t thread_ctx_invol;   /* launch thread preemptions */
    double other_cpu_s, steal_s;
    int32_t n_cpus;
    double loadavg_1m;          /* at the window's end */
    int32_t n_online_cpus;
    double iter_cv, iter_mean_s, iter_median_s;
    double mfu, bw_util;
    int64_t mem_bytes, llc_bytes; /* the case's allocation; the rank's last-level cache (0: unknown) */
} hb_timing_in;

/* Thresholds (SCHEMA.md, "Timing flags"). */
#define HB_TIMING_MIN_CPU_UTIL 0.5       /* interference: the process got under half its CPU */
#define HB_TIMING_MAX_PREEMPT_HZ 100.0   /* interference (device ranks): launch-thread preemptions/s */
#define HB_TIMING_MIN_PREEMPTS 10
#define HB_TIMING_MAX_STEAL 0.02         /* steal: > 2% of window x CPUs ... */
#define HB_TIMING_STEAL_FLOOR_S 0.02     /* ... and more than 2 jiffies per CPU */
#define HB_TIMING_MAX_OTHER 0.25         /* cpu_contention: others used > 25% of our CPUs ... */
#define HB_TIMING_OTHER_FLOOR_S 0.03     /* ... and more than 3 jiffies per CPU */
#define HB_TIMING_MAX_MEAN_MEDIAN 1.25   /* high_cv: mean / median iteration time, or ... */
#define HB_TIMING_MAX_CV 1.0             /* ... the CV of a window of fewer than ... */
#define HB_TIMING_CV_MAX_ITERS 100       /* ... iterations (with many short iterations a few
                                            preempted ones dominate the CV; the mean/median
                                            ratio says what they do to the headline) */
#define HB_TIMING_MAX_UTIL 1.05          /* rate_over_ceiling: MFU or bandwidth above 105% */
#define HB_TIMING_MIN_WINDOW_S 0.1       /* short_window */
#define HB_TIMING_MIN_ITERS 5

/* The reasons (HB_TIMING_*) and *valid (1 when none of HB_TIMING_INVALID is set). */
uint32_t hb_timing_assess(const hb_timing_in *in, int32_t *valid);

/* The reference speed: seconds of a fixed dependent integer/float loop on the calling thread,
 * the best of `reps` runs (~15 ms each). Used before the first case and after the last one. */
double hb_timing_ref_loop_s(int reps);

#endif
