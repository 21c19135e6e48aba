/* results.h - what a run records, and the HDF5 writer/reader (schema "hetbench/1").
 *
 * results/SCHEMA.md documents every group, attribute and column with its unit. The writer is
 * used by rank 0 only; the file is flushed after every case, so a killed run leaves a valid
 * file whose root attribute status stays "incomplete". */
#ifndef HB_RESULTS_H
#define HB_RESULTS_H

#include <math.h>
#include <stdint.h>

#include "../harness/status.h"
#include "../workloads/workload.h"

#define HB_SCHEMA "hetbench/1"

/* Timing flags (/summary timing_flags; thresholds in harness/timing.h, SCHEMA.md "Timing
 * flags"). The HB_TIMING_INVALID ones make timing_valid 0; the others are notes. */
enum {
    HB_TIMING_INTERFERENCE = 1u << 0,      /* the process lost its CPU (preempted, under half its share) */
    HB_TIMING_STEAL = 1u << 1,             /* the hypervisor stole time from the rank's CPUs */
    HB_TIMING_CPU_CONTENTION = 1u << 2,    /* other processes ran on the rank's CPUs */
    HB_TIMING_HIGH_CV = 1u << 3,           /* iteration times too spread (CV, mean vs median) */
    HB_TIMING_RATE_OVER_CEILING = 1u << 4, /* MFU or bandwidth above the device's ceiling */
    HB_TIMING_FITS_IN_CACHE = 1u << 5,     /* note: the case fits in the LLC; bw_util is not vs DRAM */
    HB_TIMING_SHORT_WINDOW = 1u << 6,      /* window or iteration count too small */
    HB_TIMING_HIGH_LOAD = 1u << 7,         /* note: 1-minute load average above the online CPUs */
    HB_TIMING_NO_EVIDENCE = 1u << 8,       /* note: /proc/stat unreadable, contention unknown */
    HB_TIMING_NOT_MEASURED = 1u << 9,      /* the case did not run (failed, lost) */
};
#define HB_TIMING_INVALID                                                                   \
    (HB_TIMING_INTERFERENCE | HB_TIMING_STEAL | HB_TIMING_CPU_CONTENTION | HB_TIMING_HIGH_CV | \
     HB_TIMING_RATE_OVER_CEILING | HB_TIMING_SHORT_WINDOW | HB_TIMING_NOT_MEASURED)
#define HB_TIMING_N_FLAGS 10
/* "interference,steal" for flags (the names of the set bits, "" for none) into buf. */
const char *hb_timing_flag_names(uint32_t flags, char *buf, int len);

/* Descriptive statistics of a sample (seconds for iteration times). */
typedef struct hb_stats {
    int64_t n;
    double mean, median, p5, p95, min, max, stddev, cv; /* cv = stddev / mean */
} hb_stats;

/* One (case, rank) measurement as it travels from a worker to the writer. */
typedef struct hb_record {
    int32_t case_id;
    int32_t rank;
    char status[16];           /* "ok" | "failed" | "lost" */
    char error[256];           /* message when not ok */
    int64_t n_iters;
    double *iter_seconds;      /* n_iters device-timed iteration times, owned */
    double window_s;           /* wall time of the timed window (host clock, after syncs) */
    int64_t n_power;
    double *power;             /* n_power x 2: (t_s since window start, watts), owned, may be NULL */
    double energy_counter_j;   /* NaN when not measured */
    double energy_integral_j;  /* NaN when not measured */
    int32_t energy_valid;
    uint32_t energy_flags;     /* HB_ENERGY_* (backends/meter.h) */
    double fingerprint[HB_FP_LEN];
    /* ---- energy detail (harness/energy.c; every double NaN when not measured) ---- */
    double energy_j;           /* gross headline: the counter where usable, else the integral */
    double energy_ratio;       /* energy_counter_j / energy_integral_j */
    double avg_w;              /* energy_j / window_s */
    double peak_w;             /* largest power sample in the window */
    double idle_w;             /* the device's idle baseline used for energy_net_j */
    double energy_net_j;       /* energy above idle: energy_j - idle_w * window_s */
    double host_energy_j;      /* host RAPL package + DRAM over the window (GPU ranks) */
    double power_hz;           /* sampler rate; 0 when the sampler was off */
    double max_gap_s;          /* longest interval between usable power samples in the window */
    char meter[32];            /* meter name (provenance in /devices) */
    char energy_source[16];    /* "counter" | "integral" | "none": what energy_j is */
    /* device state at window start and end */
    double power_limit_w_start, power_limit_w_end;
    double sm_clock_mhz_start, sm_clock_mhz_end;
    double mem_clock_mhz_start, mem_clock_mhz_end;
    double temperature_c_start, temperature_c_end;
    /* ---- timing evidence of the window (harness/timing.c; NaN / 0 when not measured) ---- */
    double cpu_s;              /* process user + system CPU time over the window */
    double cpu_util;           /* cpu_s / (window_s x n_threads) */
    int32_t n_threads;         /* threads cpu_util counts (the backend's) */
    int32_t n_cpus;            /* CPUs of the process's affinity mask */
    int32_t n_online_cpus;     /* CPUs online on the node (what the load average compares with) */
    int64_t ctx_vol, ctx_invol; /* process voluntary / involuntary context switches */
    int64_t thread_ctx_invol;  /* the launch thread's involuntary switches (preemptions) */
    double other_cpu_s;        /* CPU time others used on those CPUs: busy (/proc/stat) - cpu_s */
    double steal_s;            /* steal time of those CPUs */
    double loadavg_1m_start, loadavg_1m_end;
    double cpu_mhz_start, cpu_mhz_end; /* mean scaling_cur_freq of those CPUs */
    double ref_loop_s_end;     /* the reference loop re-run after this window (last case only) */
    /* ---- repetitions (--repeat): iter_seconds is their concatenation ---- */
    int32_t n_reps;            /* timed windows run (0 or 1: one) */
    int64_t rep_iters[HB_MAX_REPEAT]; /* iterations of each window, in order */
    /* ---- train: the mean loss of every step, warm-up steps first ---- */
    int64_t n_loss;            /* 0 for workloads without a loss */
    int64_t n_loss_warmup;     /* the first n_loss_warmup entries are warm-up (untimed) steps */
    double *loss;              /* n_loss, owned */
    /* ---- MoE cases: tokens each expert received in the first timed step ---- */
    int64_t n_moe_layers, n_experts; /* 0 x 0 for a dense case */
    int64_t *expert_tokens;    /* n_moe_layers x n_experts, owned, NULL for a dense case */
    double expert_imbalance;   /* hb_expert_imbalance of them; NaN for a dense case */
    /* ---- prefill/decode: the token ids produced (hb_workload_generated) ---- */
    int64_t gen_rows, gen_cols; /* B x tokens; 0 x 0 elsewhere */
    int32_t *generated;         /* gen_rows x gen_cols, owned, NULL elsewhere */
    /* ---- rank groups (dp, tp, ep, collective): this rank's group and its collectives over the
     * timed window (the workload's own, backends/comm.h; not the harness's barrier and end
     * agreement) ---- */
    int32_t group_id;          /* the group's index among the job's groups of its size; -1 alone */
    int32_t group_size, group_rank; /* 1 and 0 alone */
    int64_t comm_calls;
    double comm_bytes;         /* bytes this rank sent into its collectives */
    double comm_s;             /* seconds inside them (host wall clock) */
    /* ---- serve: the last timed stream (workload.h hb_serve_stat; NaN elsewhere) ---- */
    double serve[HB_SERVE_N_STATS];
    int64_t n_requests;        /* 0 for other workloads */
    double *requests;          /* n_requests x HB_SERVE_REQ_COLS, owned */
} hb_record;

void hb_record_free(hb_record *r); /* frees the owned arrays, not r itself */
/* Expert imbalance of counts (layers x experts): the largest over layers of the busiest
 * expert's tokens over the mean; NaN when there are none (or no tokens). */
double hb_expert_imbalance(const int64_t *counts, int64_t layers, int64_t experts);

/* A record with nothing measured: zeros, every measured double NaN (energy, window, state,
 * fingerprint). Use it for records of cases that failed before their window. */
static inline void hb_record_init(hb_record *r, int32_t case_id, int32_t rank) {
    const double nan = NAN;
    *r = (hb_record){.case_id = case_id, .rank = rank};
    r->window_s = r->energy_counter_j = r->energy_integral_j = nan;
    for (int i = 0; i < HB_FP_LEN; i++) r->fingerprint[i] = nan;
    r->energy_j = r->energy_ratio = r->avg_w = r->peak_w = r->idle_w = nan;
    r->energy_net_j = r->host_energy_j = r->max_gap_s = nan;
    r->power_hz = 0;
    r->power_limit_w_start = r->power_limit_w_end = r->sm_clock_mhz_start = nan;
    r->sm_clock_mhz_end = r->mem_clock_mhz_start = r->mem_clock_mhz_end = nan;
    r->temperature_c_start = r->temperature_c_end = nan;
    r->cpu_s = r->cpu_util = r->other_cpu_s = r->steal_s = nan;
    r->loadavg_1m_start = r->loadavg_1m_end = r->cpu_mhz_start = r->cpu_mhz_end = nan;
    r->ref_loop_s_end = nan;
    r->expert_imbalance = nan;
    r->group_id = -1;
    r->group_size = 1;
    for (int i = 0; i < HB_SERVE_N_STATS; i++) r->serve[i] = nan;
}

/* Row of /devices (one per rank). */
typedef struct hb_device_row {
    int32_t rank;
    char host[64];
    char backend[16];
    char vendor[32];
    char name[128];
    char pci_bus_id[32];
    char driver[64];
    char runtime[128];
    char gemm_impl[16];
    int64_t mem_bytes;
    int32_t numa_node;         /* -1 unknown */
    char cpuset[256];          /* CPUs the rank is bound to (list form) */
    int32_t n_compute_units;
    int32_t n_threads;
    double peak_tflops_f32;    /* TFLOP/s ceiling per weight dtype (NaN unknown) */
    double peak_tflops_bf16;
    double peak_tflops_f16;
    double peak_tflops_fp8;
    double peak_gbps;          /* GB/s (1e9 B/s) bandwidth ceiling */
    char peak_source[128];     /* "datasheet: ..." or "measured: ..." */
    double power_limit_w;      /* NaN unknown */
    char meter[32];
    /* ---- meter provenance (harness/energy.c hb_energy_device_fill) ---- */
    char meter_api[32];        /* "NVML", "ROCm SMI", "powercap/RAPL", "" */
    char meter_library[128];   /* library loaded / powercap root */
    char meter_version[64];    /* library version (kernel release for powercap) */
    char meter_energy_fn[96];  /* counter function/file, "" without a counter */
    char meter_power_fn[96];   /* power function, "" without power readings */
    char meter_scope[128];     /* what the figures cover */
    double meter_resolution_j; /* counter resolution, J; NaN unknown */
    double meter_counter_period_s; /* counter update period, s; NaN unknown / no counter */
    double meter_power_window_s;   /* averaging window of power readings: 0 instantaneous */
    char meter_reason[256];    /* capabilities missing and why; "" when none */
    char host_meter[32];       /* host energy meter of a GPU rank: "rapl", "none", "" (CPU rank) */
    char host_meter_scope[128];
    char host_meter_reason[256];
    char binding[64];          /* "bound", "not bound: <reason>", ... (harness/topology.h) */
    char slurm_job_id[32];     /* SLURM_JOB_ID ("" outside Slurm) */
    char slurm_step_id[32];    /* SLURM_STEP_ID */
    char slurm_nodelist[256];  /* SLURM_JOB_NODELIST */
    char slurm_partition[64];  /* SLURM_JOB_PARTITION */
    int32_t slurm_het_group;   /* heterogeneous-job component of this rank, -1 if none */
    /* ---- timing (harness/timing.c, worker.c) ---- */
    int64_t llc_bytes;         /* last-level cache of the rank's cores (hwloc); 0 unknown */
    int64_t stream_bytes;      /* bytes of the STREAM arrays the bandwidth ceiling used (0: none) */
    double ref_loop_s;         /* reference loop before the first case (best of 5), s */
    double ref_loop_s_end;     /* the same after the last case; NaN until then */
    double ref_drift;          /* ref_loop_s_end / ref_loop_s - 1 */
    char omp_wait_policy[64];  /* "PASSIVE (hetbench default)", "ACTIVE (user)", "runtime default" */
    char coll_lib[160];        /* rank groups' collective library: "MPI (Open MPI v4.1.2)", "NCCL 2.21.5 (libnccl.so.2)" */
} hb_device_row;

/* Row of /summary (one per (case, rank)). Rates are per device (per rank). */
typedef struct hb_summary_row {
    int32_t case_id;
    int32_t rank;
    char workload[16];
    char model[64];
    char dtype[16];            /* weight recipe: f32 | bf16 | f16 | fp8 | fp8-block | e5m2 */
    char kv_dtype[8];          /* prefill/decode KV cache: f32 | bf16 | f16 | fp8 ("" otherwise) */
    int64_t batch, prompt, gen, seq, layers, m, n, k, stream_n;
    int64_t quant_block;       /* fp8-block: block edge (0 otherwise) */
    int64_t mem_bytes;         /* device memory the case allocates (weights + scales, KV, ...) */
    char backend[16];
    char device[128];
    char host[64];
    char gemm_impl[16];
    char status[16];
    int64_t n_iters;
    double window_s;
    double iter_s_median, iter_s_mean, iter_s_p5, iter_s_p95, iter_cv;
    double tokens_per_s_in, tokens_per_s_out, tokens_per_s_total;
    char rate_unit[16];        /* "tokens/s" | "FLOP/s" | "B/s": the headline rate */
    double rate, rate_ci_lo, rate_ci_hi;
    double latency_p50_s, latency_p95_s;
    double flops_per_s, bytes_per_s, mfu, bw_util;
    double avg_w, energy_j, j_per_token_out, j_per_token_total, tokens_per_j;
    int32_t energy_valid;
    uint32_t energy_flags;
    /* ---- energy detail (harness/energy.c hb_energy_summary_fill) ---- */
    double energy_counter_j, energy_integral_j, energy_ratio, peak_w;
    double idle_w, energy_net_j;   /* secondary figure: energy above idle */
    double host_energy_j, host_avg_w;
    char energy_source[16];        /* "counter" | "integral" | "none" */
    char meter[32];
    /* ---- timing verdict and evidence (harness/timing.c) ---- */
    int32_t timing_valid;          /* 1 valid, 0 not; -1 not recorded (files before 0.4) */
    uint32_t timing_flags;         /* HB_TIMING_* */
    double cpu_util, other_cpu_s, steal_s;
    int64_t ctx_vol, ctx_invol, thread_ctx_invol;
    double loadavg_1m, cpu_mhz;    /* at the window's end */
    /* ---- plan keys that distinguish cases ---- */
    char stream_op[8];             /* stream: copy | triad ("" otherwise) */
    int64_t seed;
    double temperature;            /* decode sampling temperature (NaN where the workload has none) */
    /* ---- repetitions (--repeat) ---- */
    int32_t n_reps;                /* timed windows behind rate (1; 0 not recorded) */
    double rep_rate_min, rep_rate_max; /* the windows' own rates; NaN with one window */
    /* ---- train ---- */
    double loss_first, loss_last;  /* mean loss of the first step (warm-up included) and the last; NaN elsewhere */
    /* ---- model size (prefill/decode; 0 otherwise) and MoE balance ---- */
    int64_t total_params, active_params; /* of the case's model as run (layers, dense twin) */
    double expert_imbalance;       /* MoE: max over layers of max / mean expert tokens; NaN dense */
    /* ---- rank groups and communication (SCHEMA.md "Rank groups") ---- */
    int32_t group_id, group_size, group_rank; /* -1, 1, 0 for a case a rank runs alone */
    int64_t tp, ep;                /* the case's tensor / expert parallelism (1 elsewhere) */
    int64_t dp;                    /* train: data-parallel ranks of the group (1 elsewhere) */
    double comm_bytes_per_iter;    /* bytes this rank sent into collectives per timed iteration */
    double comm_s_per_iter;        /* seconds inside them per iteration */
    double comm_frac;              /* their share of the iteration time */
    double busbw;                  /* collective: bus bandwidth, B/s (nccl-tests); NaN elsewhere */
    /* the group's figures, the same on every row of the group (alone: the rank's own) */
    double group_rate;             /* the slowest rank's rate (the group waits for it); NaN when a rank's row is missing or not ok */
    double group_rate_per_device;  /* group_rate / group_size */
    double group_energy_j;         /* energy_j summed over the group's ranks (NaN when one is not measured) */
    /* ---- serve (NaN / 0 / -1 elsewhere): latencies of the last timed stream, s ---- */
    double ttft_p50_s, ttft_p90_s, ttft_p99_s;  /* time to first token */
    double tpot_p50_s, tpot_p90_s, tpot_p99_s;  /* time per output token after the first */
    double itl_p50_s, itl_p90_s, itl_p99_s;     /* inter-token latency */
    double e2e_p50_s, e2e_p90_s, e2e_p99_s;     /* arrival to last token */
    double interactivity;          /* tokens/s per user: 1 / tpot_p50_s */
    double requests_per_s;         /* requests / (first arrival .. last finish) */
    int64_t preemptions;           /* requests preempted (and recomputed) in the stream */
    int32_t slo_valid;             /* Poisson with an SLO: 1 VALID, 0 INVALID (p99s); -1 none */
    double arrival_rate;           /* the stream's Poisson rate, requests/s; rate search: the highest
                                      valid rate found (NaN: none); NaN for a closed loop */
} hb_summary_row;

/* Row of /idle_info: how each rank's idle baseline was measured. */
typedef struct hb_idle_row {
    int32_t rank;
    double idle_w;             /* NaN when not measured */
    double seconds;            /* length of the idle measurement, s (0: skipped) */
    char method[16];           /* "counter" | "integral" | "none" | "skipped" */
    uint32_t flags;            /* HB_ENERGY_* of the idle measurement */
    int64_t n_samples;         /* power samples taken */
    char meter[32];
} hb_idle_row;

/* Root attributes. */
typedef struct hb_run_meta {
    char version[32];
    char git[64];
    char created_utc[32];
    char command_line[1024];
    char *plan;                /* resolved plan as YAML text, owned by the caller */
    int32_t mpi_size;
    char slurm_job_id[32];
    char hosts[256];
    char status[16];           /* "complete" | "incomplete" */
} hb_run_meta;

/* ---- writer ---- */
typedef struct hb_h5 hb_h5;

/* Creates `path` (refuses an existing file unless force). Writes root attributes with
 * status "incomplete", /devices and /idle (idle_w[rank], NaN when not measured). */
hb_status hb_h5_create(const char *path, int force, const hb_run_meta *meta,
                       const hb_device_row *devices, int n_devices, const double *idle_w,
                       hb_h5 **out, hb_err *err);
/* Writes /cases/<id> (attrs from the case, its resolved label (hb_case_resolve) and cost, which
 * is normally &c->cost), /cases/<id>/rank<r> for every record, appends the summary rows, then
 * flushes the file. */
hb_status hb_h5_write_case(hb_h5 *h, const hb_case *c, const hb_cost *cost, const hb_record *recs,
                           const hb_summary_row *rows, int n, hb_err *err);
/* Writes /idle_info (one row per rank, replacing an earlier one) and sets /idle[rank] from
 * the rows' idle_w; for a baseline measured after hb_h5_create. Flushes. */
hb_status hb_h5_write_idle(hb_h5 *h, const hb_idle_row *rows, int n, hb_err *err);
/* Replaces /devices with these rows (the end-of-run reference re-check); flushes. */
hb_status hb_h5_write_devices(hb_h5 *h, const hb_device_row *devices, int n, hb_err *err);
/* Sets the root status attribute ("complete" or "incomplete") and closes. NULL is a no-op. */
hb_status hb_h5_close(hb_h5 *h, const char *status, hb_err *err);
/* Opens an existing results file to finish it (--resume): hb_h5_write_case then replaces the
 * rank groups and /summary rows of the (case, rank) pairs it writes again. Sets the status to
 * "incomplete" until closed and appends "<UTC time> <command_line>" to the root attribute
 * `resumed`. */
hb_status hb_h5_open_resume(const char *path, const char *command_line, hb_h5 **out, hb_err *err);

/* ---- reader (tests, report, compare) ---- */
typedef struct hb_result_case {
    int32_t id;
    hb_case c;                 /* as far as the attributes describe it */
    hb_cost cost;
    int n_ranks;
    hb_record *recs;           /* n_ranks, owned */
} hb_result_case;

typedef struct hb_results {
    char schema[32];
    hb_run_meta meta;          /* meta.plan owned */
    int n_devices;
    hb_device_row *devices;
    double *idle_w;            /* n_devices */
    hb_idle_row *idle;         /* n_devices; method "" and NaN where the file has no /idle_info */
    int n_cases;
    hb_result_case *cases;
    int n_rows;
    hb_summary_row *rows;
} hb_results;

/* Opens and reads everything; HB_ERR_INPUT with a message for a file that is missing, not
 * HDF5, not hetbench, or of an unknown schema version. */
hb_status hb_results_read(const char *path, hb_results **out, hb_err *err);
/* hb_results_read with the file's decoding first tried in a child process (fork) under a
 * deadline of timeout_s seconds (<= 0: no child, no deadline): libhdf5 1.10 can crash or loop
 * forever on a corrupt file, and that must neither take the caller down nor hang it. A child
 * killed by a signal or past the deadline is HB_ERR_INPUT naming the file; a child's own error
 * is returned as it is. Only after the child read the file cleanly does this process read it.
 * Not for callers that have initialised MPI. Testing aid: HETBENCH_READ_FAULT=hang|crash makes
 * the child hang or crash. */
hb_status hb_results_read_contained(const char *path, double timeout_s, hb_results **out, hb_err *err);
void hb_results_free(hb_results *r); /* NULL is a no-op */

#endif
