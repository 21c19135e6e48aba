/* report.h - from results files to answers: groups with combined metrics (report), cost per
 * token (prices), claim verdicts (check) and the regression gate (compare).
 *
 * How numbers are combined is written once, in results/REPORT.md; in short:
 *   group     = case signature x device model x backend x configuration (threads, ceilings,
 *               hetbench version, seed, temperature), across ranks and files;
 *   rate      = mean of the per-device rates (every device is one (file, case, rank) row),
 *               unless two files' intervals of the group do not overlap: then NaN, and the
 *               group says so (files_disagree, per_file) instead of averaging;
 *   95% CI    = envelope of the per-device bootstrap CIs: [min ci_lo, max ci_hi];
 *   latency   = p50/p95 of the pooled iteration times of every device in the group;
 *   energy    = over rows with valid energy only: J/token = sum J / sum tokens, W = sum J / sum s.
 * Errors: HB_ERR_INPUT with a one-line message (exit 2); everything else is a bug or no memory. */
#ifndef HB_REPORT_H
#define HB_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "results.h"

/* Token kinds, in this order everywhere: input, output, total. */
enum { HB_TOK_IN = 0, HB_TOK_OUT, HB_TOK_TOTAL, HB_TOK_N };

/* ---------------------------------------------------------------- prices */

typedef struct hb_pvalue {
    double value;              /* NaN when the file does not give it */
    char source[256];
    char date[16];             /* YYYY-MM or YYYY-MM-DD */
} hb_pvalue;

typedef enum hb_price_unit {
    HB_PRICE_PER_DEVICE_HOUR = 0, /* "gpu-hour" (also "device-hour") */
    HB_PRICE_PER_CORE_HOUR,       /* x the device row's n_compute_units (CPU cores) */
    HB_PRICE_PER_NODE_HOUR,       /* the whole node per device: one rank per node */
} hb_price_unit;

typedef struct hb_price_tier {
    char name[64];
    hb_pvalue usd_per_hour;    /* per `unit` */
    int includes_energy;       /* the price already pays for power (cloud rental): no energy term */
} hb_price_tier;

typedef struct hb_price_device {
    char name[128];            /* what the prices file calls it */
    int n_match;
    char match[8][128];        /* case-insensitive substrings of /devices name; "*" = any */
    char backend[16];          /* "" = any backend */
    hb_price_unit unit;
    int n_tiers;
    hb_price_tier tiers[16];
    hb_pvalue all_in_kw;       /* power per device incl. its share of the host; NaN unknown */
    hb_pvalue usd_per_kwh;     /* overrides the file's energy defaults when set */
    hb_pvalue pue;
    int line;
} hb_price_device;

typedef struct hb_prices {
    char path[512];
    char currency[8];
    char default_tier[64];
    hb_pvalue usd_per_kwh;     /* file-wide energy price and PUE */
    hb_pvalue pue;
    int n_devices;
    hb_price_device *devices;
} hb_prices;

hb_status hb_prices_load(const char *path, hb_prices **out, hb_err *err);
void hb_prices_free(hb_prices *p); /* NULL is a no-op */
/* The first device entry (file order) one of whose patterns is a case-insensitive substring of
 * `device` and whose backend (if given) equals `backend`; NULL when none. */
const hb_price_device *hb_prices_match(const hb_prices *p, const char *device, const char *backend);
/* The tier `name` of d (NULL name: the file's default_tier, else d's first tier); NULL if none. */
const hb_price_tier *hb_prices_tier(const hb_prices *p, const hb_price_device *d, const char *name);

/* Cost of one token kind:
 *   usd_per_mtok = usd_per_hour * 1e6 / (tokens_per_s * 3600)
 *                + usd_per_kwh * pue * j_per_token * 1e6 / 3.6e6     (energy term)
 * The energy term is 0 when the tier includes energy, NaN when j_per_token is NaN.
 * Returns NaN when tokens_per_s is not > 0. */
double hb_cost_usd_per_mtok(double usd_per_hour, double tokens_per_s, double energy_usd_per_mtok);
double hb_cost_energy_usd_per_mtok(double usd_per_kwh, double pue, double j_per_token);

/* ---------------------------------------------------------------- report */

/* Case signature: what must be equal for two measurements to be the same case. */
typedef struct hb_sig {
    char workload[16];
    char model[64];
    char dtype[16];
    char kv_dtype[8];   /* a different KV cache computes a different function */
    char stream_op[8];
    int64_t layers, batch, prompt, gen, seq, m, n, k, stream_n, quant_block;
    /* serve: the stream and the scheduler (0 elsewhere); concurrency 1 and 8 are different cases */
    int64_t isl, osl, requests, concurrency, max_batch_tokens, max_seqs, kv_blocks, kv_block_size;
    double range_ratio, arrival_rate;
    double slo_ttft_s, slo_tpot_s;  /* the verdict's bounds: one row per pair of bounds */
    /* rank groups: tp = 2 and tp = 1 of one model are different deployments (1 in older files) */
    int64_t tp, ep, dp;
    int recompute; /* train: hb_recompute (the same function, other speed and memory) */
} hb_sig;

/* Total order of signatures (workload gemm, stream, prefill, decode, others; then the keys). */
int hb_sig_cmp(const hb_sig *a, const hb_sig *b);

/* One (file, case, rank) measurement. */
typedef struct hb_rentry {
    int file;                       /* index into hb_report.files */
    const hb_result_case *rc;       /* the case (attributes, cost, records) */
    const hb_record *rec;           /* this rank's record, NULL when the file has none */
    const hb_summary_row *row;      /* this rank's /summary row */
    const hb_device_row *dev;       /* /devices row of the rank, NULL when missing */
    int group;                      /* index into hb_report.groups */
} hb_rentry;

typedef enum hb_fp_state { HB_FP_NONE = 0, HB_FP_OK, HB_FP_MISMATCH } hb_fp_state;

typedef struct hb_rgroup {
    hb_sig sig;
    char label[160];                /* hb_case_label of the first entry */
    char device[128], backend[16], vendor[32];
    int n_entries;                  /* rows (ok or not) */
    int *entries;                   /* indices into hb_report.entries */
    int n_ok, n_failed;             /* devices counted = n_ok */

    char rate_unit[16];
    double rate, rate_lo, rate_hi;  /* mean of per-device rates; CI envelope */
    double tps[HB_TOK_N], tps_lo[HB_TOK_N], tps_hi[HB_TOK_N];
    double lat_p50_s, lat_p95_s;    /* pooled iteration times (prefill/decode only) */
    double flops_per_s, bytes_per_s, mfu, bw_util; /* means */
    double mem_bytes;               /* device memory the case allocates */
    double peak_flops, peak_bps;    /* ceilings for the dtype (FLOP/s, B/s), NaN unknown */

    int n_timing_valid, n_timing_invalid, n_timing_unknown; /* ok rows by timing_valid 1 / 0 / -1 */
    uint32_t timing_flags;          /* union over the ok rows (invalidating reasons and notes) */
    int n_energy_valid, n_energy_invalid, n_no_meter;
    uint32_t energy_flags;          /* union over the invalid rows */
    double avg_w;                   /* sum J / sum window s over valid rows */
    double j_per_tok[HB_TOK_N];     /* sum J / sum tokens over valid rows */
    double tok_per_j, tok_per_j_min, tok_per_j_max; /* total tokens per J; per-device range */

    /* cost (hb_report_price) */
    int priced;                     /* 0: no price for this device */
    char price_name[128], tier[64], price_source[320], cost_note[160];
    double usd_per_hour;            /* per device */
    int energy_included;            /* the tier's price pays for power: no energy term */
    int energy_estimated;           /* energy term from all-in kW, not measured */
    double usd_mtok[HB_TOK_N], usd_mtok_lo[HB_TOK_N], usd_mtok_hi[HB_TOK_N];
    double usd_mtok_energy[HB_TOK_N];

    /* numerics */
    hb_fp_state fp;
    double fp_max_rel;              /* largest relative difference seen (sum|x|, L2) */
    double fp_tol;
    char fp_ref[192];               /* reference device of the comparison */

    /* configuration: rows join a group only when it matches (REPORT.md "Groups") */
    char version[32];               /* hetbench version of the files */
    int32_t n_threads;              /* /devices n_threads (0: not recorded) */
    int64_t seed;
    float temperature;              /* the case's (compared as bits) */
    double cfg_peak_flops, cfg_peak_bps; /* the first row's ceilings; others within HB_REPORT_CEILING_TOL */
    char config[160];               /* "2 threads, hetbench 0.4.0, seed 42" for the tables */
    /* agreement between files */
    int n_files_ok;                 /* distinct files among the ok rows */
    int files_disagree;             /* two files' 95% intervals do not overlap: rate family NaN */
    char per_file[320];             /* "file 1: 100 [95, 105]; file 2: 50 [48, 52]" (>= 2 files) */

    /* provenance: distinct values joined by ", " */
    char gemm_impl[96], driver[192], runtime[320], meter[96], versions[192], hosts[320], files[512];
} hb_rgroup;

typedef struct hb_rfile {
    const char *path;
    hb_results *r;
} hb_rfile;

typedef struct hb_report {
    int n_files;
    hb_rfile *files;
    int n_entries;
    hb_rentry *entries;
    int n_groups;
    hb_rgroup *groups;
    int n_fp_mismatch;              /* groups flagged */
    const hb_prices *prices;        /* borrowed; NULL: no cost */
    char tier[64];                  /* tier asked for ("" = default) */
    char baseline[128];             /* reference device of the normalised charts ("" = none) */
    char baseline_backend[16];
} hb_report;

/* Two rows' ceilings (FLOP/s for the dtype, B/s) match when both are unknown or they differ
 * by at most this fraction: measured CPU ceilings move a few percent from run to run, a
 * 1-thread and a 2-thread ceiling by up to 2x. */
#define HB_REPORT_CEILING_TOL 0.10

/* Reads every file (all must be schema hetbench/1), joins /summary rows with their case,
 * record and /devices row, groups them and computes every metric and the fingerprint check. */
hb_status hb_report_load(const char *const *paths, int n_paths, hb_report **out, hb_err *err);
/* Fills the cost fields of every group from `prices` (tier NULL: the file's default). */
hb_status hb_report_price(hb_report *rep, const hb_prices *prices, const char *tier, hb_err *err);
void hb_report_free(hb_report *rep); /* NULL is a no-op */
/* Chooses the reference device of the speedup and J/token charts (report --baseline): a device
 * model whose name equals `name` or, failing that, the only one containing it (case-insensitive).
 * HB_ERR_INPUT naming the devices of the files when none or several match. */
hb_status hb_report_set_baseline(hb_report *rep, const char *name, hb_err *err);
/* The Markdown "Serving" section (report_serve.c): nothing when no group is a serve case. */
void hb_report_serve_md(const hb_report *rep, FILE *f);
/* A serve group's stream figures: the mean over its ok rows (each device's last timed stream)
 * and the SLO verdict (slo: -1 no SLO, 1 VALID when every ok row's p99s met the bounds, 0
 * INVALID). n_ok 0 (and NaN means) when no row is ok or g is not a serve group. */
typedef struct hb_serve_means {
    int n_ok;
    double interactivity, ttft_p99_s, tpot_p99_s, itl_p99_s, requests_per_s, arrival_rate;
    long long preemptions;          /* summed over the rows */
    int slo;
} hb_serve_means;
void hb_report_serve_means(const hb_report *rep, const hb_rgroup *g, hb_serve_means *m);
/* What a group's joules cover, for the J/token figures: "device only: <meter scope>" for a GPU
 * meter (a host RAPL reading is recorded beside it, never added: said so), "device = host:
 * <scope>" for a CPU rank (RAPL packages and DRAM are the device), "not measured" without a
 * meter; rows that differ are listed with "; ". */
void hb_report_energy_boundary(const hb_report *rep, const hb_rgroup *g, char *buf, size_t len);

/* Relative tolerance of fingerprint comparisons for a dtype name (f32 1e-3, bf16/f16 5e-2,
 * fp8 1e-1; unknown: 1e-3). */
double hb_report_fp_tol(const char *dtype);

/* One roofline: the achieved points of one file's rows on one device model (device, backend)
 * with the ceilings that file recorded for it (mean over its ranks of that model). */
#define HB_ROOF_MAX_PEAKS 8
#define HB_ROOF_MAX_POINTS 256
typedef struct hb_roofline {
    int file;                       /* index into hb_report.files */
    char device[128], backend[16], vendor[32];
    double peak_bps;                /* NaN: not recorded */
    int n_peaks;
    char peak_dtype[HB_ROOF_MAX_PEAKS][16];
    double peak_flops[HB_ROOF_MAX_PEAKS];
    int n_points;                   /* one per group with both FLOP/s and B/s */
    double intensity[HB_ROOF_MAX_POINTS], flops_per_s[HB_ROOF_MAX_POINTS]; /* FLOP/byte, FLOP/s */
    char what[HB_ROOF_MAX_POINTS][12]; /* the point's workload */
    int group[HB_ROOF_MAX_POINTS];  /* the point's group (index into hb_report.groups) */
} hb_roofline;

/* Every (file, device model) of the report in group order of first appearance, into a
 * malloc'ed array (caller frees). */
hb_status hb_report_rooflines(const hb_report *rep, hb_roofline **out, int *n, hb_err *err);

/* Writers: "md", "csv", "json", "html". HB_ERR_INPUT for an unknown format. */
hb_status hb_report_write(const hb_report *rep, const char *format, FILE *f, hb_err *err);
hb_status hb_report_write_html(const hb_report *rep, FILE *f, hb_err *err);

/* Text helpers shared by the writers. hb_report_num: four significant digits, no exponent
 * between 1e-3 and 1e9, "—" for NaN. */
const char *hb_report_num(char *buf, size_t len, double v);
const char *hb_report_flag_names(uint32_t flags, char *buf, size_t len);
void hb_report_energy_note(const hb_rgroup *g, char *buf, size_t len);
/* "valid", "invalid: interference,high_cv", "1 of 2 devices valid (others: ...)" or "not
 * recorded" (files before 0.4): whether the group's rates can be trusted (SCHEMA.md, "Timing
 * flags"). The rate is the mean over every ok device either way; this note says when some of
 * them were measured under interference, so that they are never averaged in silently. */
void hb_report_timing_note(const hb_rgroup *g, char *buf, size_t len);
/* Training cost of a train group (issue 14): device-hours per billion trained tokens at the
 * group's per-device trained tokens/s, and (priced groups) dollars per billion trained tokens,
 * each as value, lo, hi (lo from the throughput interval's top). 0 for groups of other
 * workloads (outputs NaN). */
int hb_report_train_cost(const hb_rgroup *g, double hours_per_btok[3], double usd_per_btok[3]);
/* Data-parallel scaling of a train group with dp > 1: its per-device trained tokens/s over the
 * per-device rate of the dp = 1 group of the same case (signature but dp), device, backend and
 * configuration; 1 = perfect scaling (the all-reduce costs nothing). NaN without such a peer. */
double hb_report_dp_scaling(const hb_report *rep, const hb_rgroup *g);

/* ---------------------------------------------------------------- claims */

typedef enum hb_verdict {
    HB_VERDICT_SUPPORTED = 0,
    HB_VERDICT_REFUTED,
    HB_VERDICT_INCONCLUSIVE,
    HB_VERDICT_UNTESTABLE,
} hb_verdict;
const char *hb_verdict_name(hb_verdict v);

typedef struct hb_claims hb_claims;

typedef struct hb_claim_result {
    hb_verdict verdict;
    double value, lo, hi;           /* the compared quantity (ratio a/b, or a's value) and CI */
    double threshold;
    int n_pairs;                    /* pairs (ratio) or groups (value) used */
    char why[256];                  /* untestable: why; otherwise a summary */
} hb_claim_result;

hb_status hb_claims_load(const char *path, hb_claims **out, hb_err *err);
void hb_claims_free(hb_claims *c); /* NULL is a no-op */
int hb_claims_count(const hb_claims *c);
const char *hb_claims_id(const hb_claims *c, int i);
int hb_claims_gate(const hb_claims *c, int i);
const char *hb_claims_tier(const hb_claims *c, int i); /* the claim's price tier, NULL: default */
/* Needs a priced report for cost metrics (untestable otherwise). `out` gets the evidence. */
void hb_claims_eval(const hb_claims *c, int i, const hb_report *rep, hb_claim_result *res,
                    FILE *out);
/* The verdict line, text, source, selections and the numbers used, then hb_claims_eval's. */
void hb_claims_print(const hb_claims *c, int i, const hb_report *rep, hb_claim_result *res,
                     FILE *out);

/* ---------------------------------------------------------------- compare */

typedef struct hb_compare_summary {
    int n_matched, n_regressions, n_slower_noise, n_faster, n_improvements, n_failed_new;
    int n_only_base, n_only_new;
    int n_invalid_timing;           /* matches not judged: timing_valid 0 on either side */
} hb_compare_summary;

/* `hetbench compare` exit codes (REPORT.md): no regression; a regression or a case failed in
 * NEW; usage or input error; no regression among the judged matches but at least one match
 * not judged because its timing was invalid (a gate must not pass or fail on such numbers). */
enum { HB_COMPARE_OK = 0, HB_COMPARE_REGRESSION = 1, HB_COMPARE_INPUT = 2, HB_COMPARE_INVALID_TIMING = 3 };

/* Matches (signature, device, backend, rank) of base and new; writes the table to out. A match
 * with timing_valid 0 on either side is "not judged" (n_invalid_timing), whatever its ratio.
 * Noise: where both rows have repetitions (n_reps > 1) a difference counts only when every
 * window of one side is slower than every window of the other (the repetitions' range); else
 * the two 95% CIs must not overlap. */
hb_status hb_compare_files(const char *base, const char *new_path, double max_regression_pct,
                           FILE *out, hb_compare_summary *sum, hb_err *err);

#endif
