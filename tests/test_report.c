/* test_report.c - report, prices, claims and compare on synthetic results files with known
 * numbers: every group value (rates, CI envelopes, pooled latency, energy over valid rows only,
 * $/M tokens with and without the energy term, all-in-kW estimate, "no price"), the fingerprint
 * check, each claim verdict, compare's exit codes (regression, improvement, noise, failed case,
 * nothing matched), every bad input (truncated/foreign/unknown-schema HDF5, malformed prices and
 * claims with file:line:field messages, bad flags) and the md/csv/json/html writers.
 *
 * Usage: test_report [REPORT.html] - with a path, the HTML report of the synthetic files (with a
 * device name that tries HTML injection) is written there for the html parse/render tests. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "backends/dtype.h"
#include "backends/meter.h"
#include "harness/commands.h"
#include "harness/output.h" // defines: hb_summary_fill
#include "hbtest.h"
#include "results/report.h"
#include "results/ycfg.h"

#define REL(a, b) CHECK_NEAR((a), (b), 1e-12 * fabs((double)(b)) + 1e-300)
#define CHECK_NAN(a) CHECK_MSG(isnan((double)(a)), "%s = %.17g, expected NaN", #a, (double)(a))
#define CHECK_CONTAINS(s, frag) CHECK_MSG(strstr((s), (frag)) != NULL, "'%s' lacks '%s'", (s), (frag))

static char g_dir[256];

static const char *path_in(const char *name, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", g_dir, name);
    return buf;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Reads a whole file (or stream rewound) into a malloc'ed string. */
static char *slurp_stream(FILE *f) {
    fflush(f);
    rewind(f);
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) s = realloc(s, cap *= 2);
    }
    if (s) s[n] = '\0';
    return s;
}

/* ---- synthetic files ---- */

static const char *const injected = "Test CPU <script>alert(1)</script> & \"co\"";

static void device(hb_device_row *d, int rank, const char *host, const char *backend, const char *vendor,
                   const char *name, double tf_bf16, double gbps, int cores) {
    memset(d, 0, sizeof *d);
    d->rank = rank;
    snprintf(d->host, sizeof d->host, "%s", host);
    snprintf(d->backend, sizeof d->backend, "%s", backend);
    snprintf(d->vendor, sizeof d->vendor, "%s", vendor);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->driver, sizeof d->driver, "driver-%s", backend);
    snprintf(d->runtime, sizeof d->runtime, "runtime-%s", backend);
    snprintf(d->gemm_impl, sizeof d->gemm_impl, "blas-%s", backend);
    d->numa_node = -1;
    d->n_compute_units = cores;
    d->peak_tflops_f32 = tf_bf16 / 10;
    d->peak_tflops_bf16 = tf_bf16;
    d->peak_tflops_f16 = tf_bf16;
    d->peak_tflops_fp8 = 2 * tf_bf16;
    d->peak_gbps = gbps;
    d->power_limit_w = NAN;
    snprintf(d->meter, sizeof d->meter, "test");
}

/* decode tiny[2L] bf16 B=batch P=16 G=8 (cost: batch output tokens per iteration) */
static void decode_case(hb_case *c, hb_cost *k, int id, int batch) {
    memset(c, 0, sizeof *c);
    c->id = id;
    c->workload = HB_WL_DECODE;
    snprintf(c->model.name, sizeof c->model.name, "tiny");
    c->model.n_layers = c->model.n_layers_full = 2;
    c->dtype = HB_BF16;
    c->batch = batch;
    c->prompt = 16;
    c->gen = 8;
    c->seed = 42;
    c->min_iters = 2;
    c->max_iters = 100;
    *k = (hb_cost){.flops = 1e9 * batch, .bytes = 2e9, .tokens_in = 0, .tokens_out = batch, .mem_bytes = 1000 + batch};
    hb_case_label(c, c->label, sizeof c->label); /* resolved, as the plan does */
}

static void gemm_case(hb_case *c, hb_cost *k, int id) {
    memset(c, 0, sizeof *c);
    c->id = id;
    c->workload = HB_WL_GEMM;
    c->dtype = HB_BF16;
    c->m = c->n = c->k = 64;
    c->seed = 42;
    *k = (hb_cost){.flops = 1e10, .bytes = 1e8, .mem_bytes = 5000};
    hb_case_label(c, c->label, sizeof c->label);
}

typedef struct spec {
    int rank;
    const char *status;
    int n;
    double it[8];
    double energy_j, window_s;     /* energy_j NaN: no meter */
    int valid;
    uint32_t flags;
    double ci_lo, ci_hi, mfu, bw;
    double fp[4];
    int n_power;
    double power[8];
} spec;

static void make(const hb_case *c, const hb_cost *k, const hb_device_row *dev, const spec *s, hb_record *r,
                 hb_summary_row *row) {
    memset(r, 0, sizeof *r);
    r->case_id = c->id;
    r->rank = s->rank;
    snprintf(r->status, sizeof r->status, "%s", s->status);
    r->n_iters = s->n;
    r->iter_seconds = (double *)s->it;
    r->window_s = s->window_s;
    r->n_power = s->n_power;
    r->power = s->n_power ? (double *)s->power : NULL;
    r->energy_counter_j = s->energy_j;
    r->energy_integral_j = NAN;
    r->energy_valid = s->valid;
    r->energy_flags = s->flags;
    r->host_energy_j = NAN; /* no host meter, as the harness records it */
    memcpy(r->fingerprint, s->fp, sizeof r->fingerprint);
    hb_summary_fill(c, k, r, dev, row); /* the harness's own /summary row */
    if (strcmp(s->status, "ok") != 0) return;
    row->rate_ci_lo = s->ci_lo;
    row->rate_ci_hi = s->ci_hi;
    row->mfu = s->mfu;
    row->bw_util = s->bw;
}

static hb_run_meta meta(const char *version, const char *hosts) {
    hb_run_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.git, sizeof m.git, "g%s", version);
    snprintf(m.created_utc, sizeof m.created_utc, "2025-01-02T03:04:05Z");
    snprintf(m.command_line, sizeof m.command_line, "hetbench run (test)");
    m.plan = "cases: []\n";
    m.mpi_size = 2;
    snprintf(m.hosts, sizeof m.hosts, "%s", hosts);
    return m;
}

#define H100 "NVIDIA H100 80GB HBM3"
#define MI300X "AMD Instinct MI300X"

/* file A (version 0.1.0): two H100 ranks; case 0 decode B=1, case 1 decode B=4, case 2 gemm.
 * file B (version 0.2.0-test): rank 0 an MI300X, rank 1 a CPU; cases 0 and 1 (same signatures). */
static const spec A0 = {0, "ok", 4, {0.010, 0.010, 0.012, 0.008}, 20.0, 0.04, 1, 0, 95, 105, 0.3, 0.5,
                        {1.0, 100.5, 10.02, 5}, 3, {0, 400, 0.02, 500, 0.04, 600}};
static const spec A1 = {1, "ok", 4, {0.020, 0.020, 0.020, 0.020}, 10.0, 0.08, 0, HB_ENERGY_SHORT_WINDOW, 48, 52, 0.1, 0.3,
                        {1.0, 100.5, 10.02, 5}, 0, {0}};
static const spec A0b4 = {0, "ok", 4, {0.02, 0.02, 0.02, 0.02}, 40.0, 0.08, 1, 0, 190, 210, 0.4, 0.2, {2, 2, 2, 1}, 0, {0}};
static const spec A1b4 = {1, "failed", 0, {0}, NAN, NAN, 0, HB_ENERGY_NO_METER, NAN, NAN, NAN, NAN, {NAN, NAN, NAN, NAN}, 0, {0}};
static const spec A0g = {0, "ok", 3, {0.01, 0.01, 0.01}, NAN, 0.03, 0, HB_ENERGY_NO_METER, 0.9e12, 1.1e12, 0.5, 0.01,
                         {3, 3, 3, 0}, 0, {0}};
static const spec B0 = {0, "ok", 4, {0.005, 0.005, 0.005, 0.005}, 8.0, 0.02, 1, 0, 190, 210, 0.25, 0.6,
                        {1.0, 110.0, 10.0, 7}, 0, {0}};
static const spec B1 = {1, "ok", 2, {0.1, 0.1}, NAN, 0.2, 0, HB_ENERGY_NO_METER, 9, 11, 0.01, 0.02,
                        {1.0, 100.0, 10.0, 5}, 0, {0}};
static const spec B0b4 = {0, "ok", 4, {0.01, 0.01, 0.01, 0.01}, 16.0, 0.04, 0, HB_ENERGY_RATIO_BOUNDS, 380, 420, 0.5, 0.7,
                          {2, 2, 2, 1}, 0, {0}};

static hb_status write_file_a(const char *path) {
    hb_device_row d[2];
    device(&d[0], 0, "node01", "cuda", "NVIDIA", H100, 989.5, 3350, 132);
    device(&d[1], 1, "node02", "cuda", "NVIDIA", H100, 989.5, 3350, 132);
    hb_run_meta m = meta("0.1.0", "node01,node02");
    double idle[2] = {NAN, NAN};
    hb_h5 *h = NULL;
    hb_err err;
    HB_TRY(hb_h5_create(path, 1, &m, d, 2, idle, &h, &err));
    hb_case c;
    hb_cost k;
    hb_record r[2];
    hb_summary_row row[2];
    decode_case(&c, &k, 0, 1);
    make(&c, &k, &d[0], &A0, &r[0], &row[0]);
    make(&c, &k, &d[1], &A1, &r[1], &row[1]);
    hb_status st = hb_h5_write_case(h, &c, &k, r, row, 2, &err);
    decode_case(&c, &k, 1, 4);
    make(&c, &k, &d[0], &A0b4, &r[0], &row[0]);
    make(&c, &k, &d[1], &A1b4, &r[1], &row[1]);
    if (st == HB_OK) st = hb_h5_write_case(h, &c, &k, r, row, 2, &err);
    gemm_case(&c, &k, 2);
    make(&c, &k, &d[0], &A0g, &r[0], &row[0]);
    if (st == HB_OK) st = hb_h5_write_case(h, &c, &k, r, row, 1, &err);
    hb_status s2 = hb_h5_close(h, "complete", &err);
    if (st != HB_OK || s2 != HB_OK) fprintf(stderr, "write_file_a: %s\n", err.msg);
    return st != HB_OK ? st : s2;
}

static hb_status write_file_b(const char *path) {
    hb_device_row d[2];
    device(&d[0], 0, "amd01", "hip", "AMD", MI300X, 1307.4, 5300, 304);
    device(&d[1], 1, "amd01", "cpu", "Intel", injected, 2.0, 200, 4);
    hb_run_meta m = meta("0.2.0-test", "amd01");
    double idle[2] = {NAN, NAN};
    hb_h5 *h = NULL;
    hb_err err;
    HB_TRY(hb_h5_create(path, 1, &m, d, 2, idle, &h, &err));
    hb_case c;
    hb_cost k;
    hb_record r[2];
    hb_summary_row row[2];
    decode_case(&c, &k, 0, 1);
    make(&c, &k, &d[0], &B0, &r[0], &row[0]);
    make(&c, &k, &d[1], &B1, &r[1], &row[1]);
    hb_status st = hb_h5_write_case(h, &c, &k, r, row, 2, &err);
    decode_case(&c, &k, 1, 4);
    make(&c, &k, &d[0], &B0b4, &r[0], &row[0]);
    if (st == HB_OK) st = hb_h5_write_case(h, &c, &k, r, row, 1, &err);
    hb_status s2 = hb_h5_close(h, "complete", &err);
    if (st != HB_OK || s2 != HB_OK) fprintf(stderr, "write_file_b: %s\n", err.msg);
    return st != HB_OK ? st : s2;
}

/* file C, for the HTML charts (model "small", so no group joins A's or B's): a GPU with a long
 * name and a CPU whose f32 and bf16 peaks are equal, each with a decode batch sweep (B = 1, 8,
 * 16, 32: iteration time t0 + B t1, so tokens/s rises and per-user speed falls), a prefill prompt
 * sweep (P = 64 .. 512) and a gemm in f32 and bf16; energy on the GPU only, a power trace on one
 * case. */
static char *render(const hb_report *rep, const char *format);

/* The serve cases of file C: v = 0, 1, 2 closed loop C = 1, 4, 16 (requests 10 C); v = 3, 4
 * Poisson at 2 and 6 req/s with slo_ttft_s 2, slo_tpot_s 0.2 (requests 40). */
static const int64_t serve_conc[3] = {1, 4, 16};
static void serve_fixture(hb_case *c, hb_cost *k, int id, int v) {
    memset(c, 0, sizeof *c);
    c->id = id;
    c->workload = HB_WL_SERVE;
    snprintf(c->model.name, sizeof c->model.name, "small");
    c->model.n_layers = c->model.n_layers_full = 2;
    c->dtype = HB_BF16;
    c->isl = 128, c->osl = 64, c->range_ratio = 1.0;
    c->max_batch_tokens = 2048, c->max_seqs = 256, c->kv_block_size = 16;
    c->seed = 42;
    c->min_iters = 1, c->max_iters = 1;
    if (v < 3) {
        c->concurrency = serve_conc[v];
        c->requests = 10 * c->concurrency;
    } else {
        c->concurrency = 1;
        c->requests = 40;
        c->arrival_rate = v == 3 ? 2.0 : 6.0;
        c->slo_ttft_s = 2.0, c->slo_tpot_s = 0.2;
    }
    *k = (hb_cost){.flops = 1e12, .bytes = 1e10, .tokens_in = 128.0 * (double)c->requests,
                   .tokens_out = 64.0 * (double)c->requests, .mem_bytes = 6000};
    hb_case_label(c, c->label, sizeof c->label);
}
/* Device q's stream of case v: TPOT p50 t(C) = t0 (1 + C / 8) (GPU t0 10 ms, CPU 40 ms); output
 * tokens/s = C / t(C) (C = 3 for Poisson); the stream lasts tokens_out / that; the GPU draws
 * 400 W, the CPU 100 W (RAPL: device = host). Poisson TTFT p99: GPU 0.5 s (VALID), CPU 3 s
 * (INVALID), TPOT p99 1.5 t. */
typedef struct serve_point {
    double tpot_p50_s, tpot_p99_s, ttft_p99_s, out_tps, stream_s, energy_j;
} serve_point;
static serve_point serve_fixture_point(int v, int q) {
    const double C = v < 3 ? (double)serve_conc[v] : 3.0, t0 = q ? 0.040 : 0.010;
    const double R = v < 3 ? 10 * C : 40;
    serve_point p;
    p.tpot_p50_s = t0 * (1 + (v < 3 ? C : 1.0) / 8);
    p.tpot_p99_s = 1.5 * p.tpot_p50_s;
    p.ttft_p99_s = v < 3 ? 0.1 : q ? 3.0 : 0.5;
    p.out_tps = C / p.tpot_p50_s;
    p.stream_s = 64.0 * R / p.out_tps;
    p.energy_j = (q ? 100.0 : 400.0) * p.stream_s;
    return p;
}

#define LONG_GPU "AMD Instinct MI300X OAM 192GB HBM3 (gfx942:sramecc+:xnack-)"
#define LONG_CPU "AMD EPYC 9654 96-Core Processor"
static hb_status write_file_sweeps(const char *path) {
    hb_device_row d[2];
    device(&d[0], 0, "mi01", "hip", "AMD", LONG_GPU, 1307.4, 5300, 304);
    device(&d[1], 1, "mi01", "cpu", "AMD", LONG_CPU, 3.0, 400, 96);
    d[1].peak_tflops_f32 = d[1].peak_tflops_bf16; /* one label for both roofs */
    snprintf(d[0].meter_scope, sizeof d[0].meter_scope, "GPU board (test)");
    snprintf(d[1].meter_scope, sizeof d[1].meter_scope, "CPU package 0 + CPU DRAM 0");
    hb_run_meta m = meta("0.4.0", "mi01");
    double idle[2] = {NAN, NAN};
    hb_h5 *h = NULL;
    hb_err err;
    HB_TRY(hb_h5_create(path, 1, &m, d, 2, idle, &h, &err));
    hb_status st = HB_OK;
    int id = 0;
    for (int kind = 0; kind < 3 && st == HB_OK; kind++) {
        const int n_v = kind == 2 ? 2 : 4;
        for (int v = 0; v < n_v && st == HB_OK; v++) {
            hb_case c;
            hb_cost k;
            if (kind == 0) { /* decode */
                decode_case(&c, &k, id++, (int[]){1, 8, 16, 32}[v]);
                snprintf(c.model.name, sizeof c.model.name, "small");
            } else if (kind == 1) { /* prefill */
                decode_case(&c, &k, id++, 1);
                snprintf(c.model.name, sizeof c.model.name, "small");
                c.workload = HB_WL_PREFILL;
                c.prompt = (int[]){64, 128, 256, 512}[v];
                k = (hb_cost){.flops = 2e9 * c.prompt, .bytes = 2e9, .tokens_in = c.prompt, .mem_bytes = 4000};
            } else {
                gemm_case(&c, &k, id++);
                c.dtype = v ? HB_F32 : HB_BF16;
                c.m = c.n = c.k = 128; /* not A's gemm */
            }
            hb_case_label(&c, c.label, sizeof c.label);
            hb_record r[2];
            hb_summary_row row[2];
            spec sps[2]; /* the records point into these until the case is written */
            for (int q = 0; q < 2; q++) {
                double t = kind == 0 ? (q ? 0.02 : 0.002) + c.batch * (q ? 0.004 : 0.0001)
                         : kind == 1 ? (q ? 0.2 : 0.001) * c.prompt / 64.0 : (q ? 0.05 : 0.0005);
                spec *sp = &sps[q];
                *sp = (spec){q, "ok", 4, {t, t * 1.01, t * 0.99, t}, q ? NAN : 50 * 4 * t, 4 * t, !q,
                             q ? HB_ENERGY_NO_METER : 0, 0, 0, 0.1, 0.2, {1, 1, 1, 1}, 0, {0}};
                if (kind == 0 && v == 1 && q == 0) {
                    sp->n_power = 4;
                    double pw[8] = {0, 300, t, 420, 2 * t, 450, 3 * t, 440};
                    memcpy(sp->power, pw, sizeof pw);
                }
                double rate = (kind == 0 ? c.batch : kind == 1 ? c.prompt : k.flops) / t;
                sp->ci_lo = 0.97 * rate, sp->ci_hi = 1.03 * rate;
                make(&c, &k, &d[q], sp, &r[q], &row[q]);
            }
            st = hb_h5_write_case(h, &c, &k, r, row, 2, &err);
        }
    }
    /* serve small bf16 isl/osl 128/64 on both devices: a closed-loop sweep C = 1, 4, 16 and two
     * Poisson cases with SLOs (2 s / 0.2 s): VALID on the GPU, INVALID on the CPU (TTFT) */
    for (int v = 0; v < 5 && st == HB_OK; v++) {
        hb_case c;
        hb_cost k;
        serve_fixture(&c, &k, id++, v);
        hb_record r[2];
        hb_summary_row row[2];
        spec sps[2];
        for (int q = 0; q < 2; q++) {
            serve_point sp = serve_fixture_point(v, q);
            sps[q] = (spec){q, "ok", 1, {sp.stream_s}, sp.energy_j, sp.stream_s, 1, 0, 0, 0, 0.1, 0.2, {1, 1, 1, 1}, 0, {0}};
            const double rate = k.tokens_out / sp.stream_s;
            sps[q].ci_lo = 0.97 * rate, sps[q].ci_hi = 1.03 * rate;
            hb_record *rr = &r[q];
            make(&c, &k, &d[q], &sps[q], rr, &row[q]);
            for (int j = 0; j < HB_SERVE_N_STATS; j++) rr->serve[j] = NAN;
            rr->serve[HB_SV_TTFT_P99] = sp.ttft_p99_s;
            rr->serve[HB_SV_TPOT_P50] = sp.tpot_p50_s;
            rr->serve[HB_SV_TPOT_P99] = sp.tpot_p99_s;
            rr->serve[HB_SV_INTERACTIVITY] = 1 / sp.tpot_p50_s;
            rr->serve[HB_SV_OUT_TPS] = rate;
            rr->serve[HB_SV_RATE] = c.arrival_rate > 0 ? c.arrival_rate : NAN;
            if (!q) rr->host_energy_j = 50.0 * sp.stream_s; /* a GPU rank's host RAPL beside its board's joules */
            rr->serve[HB_SV_SLO] = c.slo_ttft_s > 0 ? (sp.ttft_p99_s <= c.slo_ttft_s && sp.tpot_p99_s <= c.slo_tpot_s) : NAN;
            hb_summary_row keep = row[q];
            hb_summary_fill(&c, &k, rr, &d[q], &row[q]); /* the serve columns from the record */
            row[q].rate_ci_lo = keep.rate_ci_lo, row[q].rate_ci_hi = keep.rate_ci_hi;
            row[q].mfu = keep.mfu, row[q].bw_util = keep.bw_util;
        }
        st = hb_h5_write_case(h, &c, &k, r, row, 2, &err);
    }
    hb_status s2 = hb_h5_close(h, "complete", &err);
    if (st != HB_OK || s2 != HB_OK) fprintf(stderr, "write_file_sweeps: %s\n", err.msg);
    return st != HB_OK ? st : s2;
}

static double cost(double per_hour, double tps, double kwh, double pue, double j);

/* Whether a line chart (from `sec` to its </svg>) has a point whose data-x and data-y (6
 * significant digits) are within 1e-5 relative of (x, y). */
static int chart_has_point(const char *sec, double x, double y) {
    const char *end = sec ? strstr(sec, "</svg>") : NULL;
    for (const char *p = sec; p && end && (p = strstr(p, "data-x=\"")) && p < end; p++) {
        double a, b;
        if (sscanf(p, "data-x=\"%lf\" data-y=\"%lf\"", &a, &b) == 2 && fabs(a - x) <= 1e-5 * fabs(x) &&
            fabs(b - y) <= 1e-5 * fabs(y))
            return 1;
    }
    return 0;
}

/* The HTML of files A, B and C with prices and --baseline: every chart of the report has data
 * (the parse, render and layout tests read it), and the values drawn are the report's own. */
static void test_html_charts(const char *fa, const char *fb, const char *pp, const char *html_path) {
    char fc[512];
    CHECK(write_file_sweeps(path_in("c.h5", fc, sizeof fc)) == HB_OK);
    const char *files[3] = {fa, fb, fc};
    hb_report *rep = NULL;
    hb_prices *prices = NULL;
    hb_err err = {{0}};
    CHECK(hb_report_load(files, 3, &rep, &err) == HB_OK);
    CHECK(hb_prices_load(pp, &prices, &err) == HB_OK);
    if (!rep || !prices) goto out;
    CHECK(hb_report_price(rep, prices, NULL, &err) == HB_OK);
    /* --baseline: a unique part of a name, an ambiguous one, an unknown one */
    CHECK(hb_report_set_baseline(rep, "AMD Instinct", &err) == HB_ERR_INPUT); /* MI300X and the long MI300X */
    CHECK_CONTAINS(err.msg, "matches more than one device");
    CHECK(hb_report_set_baseline(rep, "Xeon", &err) == HB_ERR_INPUT);
    CHECK_CONTAINS(err.msg, "--baseline 'Xeon': matches no device of the files (devices: ");
    CHECK_CONTAINS(err.msg, "'" LONG_CPU "'");
    CHECK(hb_report_set_baseline(rep, "epyc", &err) == HB_OK);
    CHECK_STR(rep->baseline, LONG_CPU);
    CHECK_STR(rep->baseline_backend, "cpu");
    char *html = render(rep, "html");
    if (html && html_path) write_text(html_path, html);
    if (html) {
        /* speedup of the GPU's decode B=8 over the CPU's: (8 / 0.0028) / (8 / 0.052) = 18.57 */
        CHECK_CONTAINS(html, "decode small bf16 B=8 P=16 G=8 · " LONG_GPU " (hip): 18.57");
        CHECK_CONTAINS(html, "Reference: " LONG_CPU " (cpu)");
        /* interactivity: per-user 1 / t = 1 / 0.0028 = 357.1 tokens/s, per device 8 / 0.0028 */
        CHECK_CONTAINS(html, "Throughput per device vs interactivity");
        CHECK_CONTAINS(html, ">B=32</text>");
        /* the ideal line of the batch sweep and TTFT vs prompt length are drawn */
        CHECK_CONTAINS(html, "ideal of " LONG_GPU " (hip): small[2L] bf16 P=16 G=8");
        CHECK_CONTAINS(html, LONG_CPU " (cpu): small[2L] bf16 B=1");
        CHECK_CONTAINS(html, ">P=512</text>");
        /* one label for the CPU's equal f32 and bf16 peaks; roofline points labelled directly */
        CHECK_CONTAINS(html, "bf16, f32 peak 3 TFLOP/s");
        CHECK_CONTAINS(html, ">gemm 128×128×128 bf16</text>");
        /* three cost charts, never input and output on one axis */
        CHECK_CONTAINS(html, "<h3>US$ per million input tokens</h3>");
        CHECK_CONTAINS(html, "<h3>US$ per million output tokens</h3>");
        CHECK_CONTAINS(html, "<h3>US$ per million total tokens</h3>");
        /* no empty grid: the groups without energy are one line */
        CHECK_MSG(!strstr(html, "class=\"na\""), "a bar without a value is drawn");
        CHECK_CONTAINS(html, "Groups not drawn: ");
        /* $/M output tokens vs interactivity beside the throughput chart: the GPU's serve points
         * (the CPU has no price) at interactivity 1 / TPOT p50 and the tier's cost of its
         * output tokens/s and J/token (400 W / tokens/s), from the fixture's numbers */
        const char *sec = strstr(html, "id=\"chart-cost-interactivity\"");
        CHECK_MSG(sec && strstr(html, "id=\"chart-throughput-interactivity\"") < sec, "no cost chart beside the throughput one");
        CHECK_CONTAINS(html, "US$ per million output tokens vs interactivity");
        for (int v = 0; sec && v < 3; v++) {
            const serve_point p = serve_fixture_point(v, 0);
            const double want_x = 1 / p.tpot_p50_s, want_y = cost(1.8, p.out_tps, 0.10, 1.5, 400.0 / p.out_tps);
            CHECK_MSG(chart_has_point(sec, want_x, want_y), "cost chart: no point (%.4g, %.4g) for C=%lld", want_x, want_y,
                      (long long)serve_conc[v]);
            /* and the same interactivity with the throughput in the chart beside it */
            CHECK_MSG(chart_has_point(strstr(html, "id=\"chart-throughput-interactivity\""), want_x, p.out_tps),
                      "throughput chart: no point (%.4g, %.4g)", want_x, p.out_tps);
        }
        CHECK_MSG(sec && !chart_has_point(sec, 1 / serve_fixture_point(1, 1).tpot_p50_s,
                                          cost(1.8, serve_fixture_point(1, 1).out_tps, 0.1, 1.5, 0)),
                  "an unpriced CPU point is drawn");
        CHECK_CONTAINS(html, "without a price left out of the cost chart");
        /* TTFT/TPOT p99 vs the SLOs: the GPU's Poisson cases are VALID, the CPU's INVALID by TTFT
         * (3 s > 2 s) with its TPOT within its bound; the bounds are the bars' reference lines */
        CHECK_CONTAINS(html, "<h3>TTFT p99 vs its SLO (Poisson arrivals)</h3>");
        CHECK_CONTAINS(html, "<h3>TPOT p99 vs its SLO (Poisson arrivals)</h3>");
        CHECK_CONTAINS(html, LONG_GPU " (hip) · 2 req/s: 500 VALID (within)</title>");
        CHECK_CONTAINS(html, LONG_GPU " (hip) · 6 req/s: 500 VALID (within)</title>");
        CHECK_CONTAINS(html, LONG_CPU " (cpu) · 2 req/s: 3000 INVALID (exceeds)</title>");
        CHECK_CONTAINS(html, LONG_CPU " (cpu) · 6 req/s: 67.5 INVALID (within)</title>");
        CHECK_CONTAINS(html, "<tspan class=\"badv\">INVALID (exceeds)</tspan>");
        CHECK_CONTAINS(html, "<title>reference 2000</title>");
        CHECK_CONTAINS(html, "<title>reference 200</title>");
        /* what the joules cover, per group */
        CHECK_CONTAINS(html, "<th>energy covers</th>");
        CHECK_CONTAINS(html, "<td>device only: GPU board (test)</td>"); /* decode: no host meter */
        CHECK_CONTAINS(html, "<td>device only: GPU board (test) (host RAPL recorded, not added)</td>"); /* serve */
        CHECK_CONTAINS(html, "<td>device = host: CPU package 0 + CPU DRAM 0</td>");
        CHECK_CONTAINS(html, "<td>not measured</td>");
        /* one colour per device: the two AMD devices differ */
        CHECK_MSG(!strstr(html, "#d6202a"), "a vendor colour is used");
    }
    free(html);
out:
    hb_report_free(rep);
    hb_prices_free(prices);
}

/* What a compare file's row says about its timing and repetitions (the fixture's 2 iterations
 * alone would make hb_summary_fill call every window short). */
typedef struct timing_spec {
    int valid;
    uint32_t flags;
    int n_reps;
    double rep_min, rep_max;
} timing_spec;

static const timing_spec quiet = {1, 0, 1, NAN, NAN};

/* A one-rank CPU file for compare: decode B=1 at `rate` tokens/s with CI [lo, hi]. */
static hb_status write_compare_file_t(const char *path, const char *status, double rate, double lo, double hi,
                                      int batch, const timing_spec *t);
static hb_status write_compare_file(const char *path, const char *status, double rate, double lo, double hi,
                                    int batch) {
    return write_compare_file_t(path, status, rate, lo, hi, batch, &quiet);
}

static hb_status write_compare_file_t(const char *path, const char *status, double rate, double lo, double hi,
                                      int batch, const timing_spec *t) {
    hb_device_row d;
    device(&d, 0, "ci01", "cpu", "Intel", "Test CPU", 2.0, 200, 4);
    hb_run_meta m = meta("0.1.0", "ci01");
    double idle = NAN;
    hb_h5 *h = NULL;
    hb_err err;
    HB_TRY(hb_h5_create(path, 1, &m, &d, 1, &idle, &h, &err));
    hb_case c;
    hb_cost k;
    decode_case(&c, &k, 0, batch);
    spec s = {0, status, 2, {1.0 / rate, 1.0 / rate}, 2.0, 2.0 / rate, 1, 0, lo, hi, 0.1, 0.1, {1, 1, 1, 1}, 0, {0}};
    hb_record r;
    hb_summary_row row;
    make(&c, &k, &d, &s, &r, &row);
    if (strcmp(status, "ok") != 0) {
        r.n_iters = 0;
        hb_summary_fill(&c, &k, &r, &d, &row);
    } else {
        row.timing_valid = t->valid;
        row.timing_flags = t->flags;
        row.n_reps = t->n_reps;
        row.rep_rate_min = t->rep_min;
        row.rep_rate_max = t->rep_max;
    }
    hb_status st = hb_h5_write_case(h, &c, &k, &r, &row, 1, &err);
    hb_status s2 = hb_h5_close(h, "complete", &err);
    return st != HB_OK ? st : s2;
}

static const hb_rgroup *find_group(const hb_report *rep, const char *workload, int64_t batch, const char *backend) {
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (!strcmp(g->sig.workload, workload) && (g->sig.batch == batch || batch < 0) && !strcmp(g->backend, backend))
            return g;
    }
    return NULL;
}

static double mean_rate(const double *it, int n, double per_iter) {
    double s = 0;
    for (int i = 0; i < n; i++) s += it[i];
    return per_iter / (s / n);
}

/* ---- report values ---- */

static void test_groups(const hb_report *rep) {
    CHECK(rep->n_files == 2);
    CHECK_MSG(rep->n_groups == 6, "%d groups", rep->n_groups);
    /* order: gemm first, then decode B=1 (AMD, Intel, NVIDIA by vendor), then B=4 */
    CHECK_STR(rep->groups[0].sig.workload, "gemm");
    CHECK_STR(rep->groups[1].vendor, "AMD");
    CHECK_STR(rep->groups[2].vendor, "Intel");
    CHECK_STR(rep->groups[3].vendor, "NVIDIA");
    CHECK(rep->groups[4].sig.batch == 4);

    /* H100, decode B=1: two devices from two ranks */
    const hb_rgroup *g = find_group(rep, "decode", 1, "cuda");
    CHECK(g != NULL);
    if (!g) return;
    double r0 = mean_rate(A0.it, 4, 1), r1 = mean_rate(A1.it, 4, 1);
    CHECK(g->n_ok == 2 && g->n_failed == 0);
    REL(g->rate, (r0 + r1) / 2);
    CHECK_NEAR(g->rate, 75.0, 1e-9);
    REL(g->rate_lo, 48.0); /* envelope of [95, 105] and [48, 52] */
    REL(g->rate_hi, 105.0);
    REL(g->tps[HB_TOK_OUT], (r0 + r1) / 2);
    REL(g->tps[HB_TOK_TOTAL], (r0 + r1) / 2);
    CHECK(g->tps[HB_TOK_IN] == 0);
    REL(g->tps_lo[HB_TOK_OUT], 48.0);
    REL(g->tps_hi[HB_TOK_TOTAL], 105.0);
    CHECK_NAN(g->tps_lo[HB_TOK_IN]);
    /* latency: pooled {.008 .010 .010 .012 .020 x4}: p50 = (.012 + .020)/2, p95 = .020 */
    CHECK_NEAR(g->lat_p50_s, 0.016, 1e-15);
    CHECK_NEAR(g->lat_p95_s, 0.020, 1e-15);
    REL(g->mfu, 0.2);
    REL(g->bw_util, 0.4);
    /* energy: rank 1 is invalid (short window) and left out */
    CHECK(g->n_energy_valid == 1 && g->n_energy_invalid == 1 && g->n_no_meter == 0);
    CHECK(g->energy_flags == HB_ENERGY_SHORT_WINDOW);
    REL(g->avg_w, 20.0 / 0.04);
    REL(g->j_per_tok[HB_TOK_OUT], 20.0 / 4);
    REL(g->j_per_tok[HB_TOK_TOTAL], 20.0 / 4);
    CHECK_NAN(g->j_per_tok[HB_TOK_IN]);
    REL(g->tok_per_j, 4 / 20.0);
    char note[192];
    hb_report_energy_note(g, note, sizeof note);
    CHECK_CONTAINS(note, "1 of 2 devices");
    CHECK_CONTAINS(note, "short-window");
    /* timing: 4 iterations of 20 ms per device is a short window (hb_summary_fill's verdict) */
    CHECK(g->n_timing_valid == 0 && g->n_timing_invalid == 2 && g->n_timing_unknown == 0);
    CHECK(g->timing_flags & HB_TIMING_SHORT_WINDOW);
    hb_report_timing_note(g, note, sizeof note);
    CHECK_CONTAINS(note, "invalid: ");
    CHECK_CONTAINS(note, "short_window");
    {
        hb_rgroup h = *g; /* one device valid, one not recorded (an old file) */
        h.n_timing_valid = 1, h.n_timing_invalid = 0, h.n_timing_unknown = 1, h.timing_flags = 0;
        hb_report_timing_note(&h, note, sizeof note);
        CHECK_STR(note, "1 of 2 devices valid (others not recorded)");
        h.n_timing_invalid = 1, h.n_timing_unknown = 0, h.timing_flags = HB_TIMING_INTERFERENCE | HB_TIMING_FITS_IN_CACHE;
        hb_report_timing_note(&h, note, sizeof note);
        CHECK_STR(note, "1 of 2 devices valid (others: interference); fits in LLC");
    }
    CHECK_CONTAINS(g->hosts, "node01");
    CHECK_CONTAINS(g->hosts, "node02");
    CHECK_STR(g->versions, "0.1.0 (g0.1.0)");
    REL(g->mem_bytes, 1001);
    REL(g->peak_flops, 989.5e12);
    REL(g->peak_bps, 3350e9);
    /* fingerprints vs the CPU (reference): 0.5/100.5 on sum|x| <= 5e-2 */
    CHECK(g->fp == HB_FP_OK);
    REL(g->fp_max_rel, 0.5 / 100.5);
    REL(g->fp_tol, 5e-2);
    CHECK_CONTAINS(g->fp_ref, "(cpu, rank 1, file 2)");

    /* MI300X, decode B=1: fingerprint sum|x| 110 vs 100: mismatch */
    g = find_group(rep, "decode", 1, "hip");
    CHECK(g && g->fp == HB_FP_MISMATCH);
    if (g) REL(g->fp_max_rel, 10.0 / 110.0);
    if (g) CHECK_STR(g->versions, "0.2.0-test (g0.2.0-test)");
    CHECK(rep->n_fp_mismatch == 1);

    /* CPU: no meter */
    g = find_group(rep, "decode", 1, "cpu");
    CHECK(g && g->n_no_meter == 1 && g->n_energy_valid == 0);
    if (g) {
        CHECK_NAN(g->tok_per_j);
        CHECK_NAN(g->avg_w);
        hb_report_energy_note(g, note, sizeof note);
        CHECK_STR(note, "not measured (no meter)");
        CHECK(g->fp == HB_FP_OK && g->fp_max_rel == 0);
        REL(g->rate_lo, 9);
    }

    /* H100 B=4: rank 1 failed; one device counted */
    g = find_group(rep, "decode", 4, "cuda");
    CHECK(g && g->n_ok == 1 && g->n_failed == 1);
    if (g) {
        REL(g->rate, mean_rate(A0b4.it, 4, 4));
        REL(g->rate_lo, 190);
        REL(g->j_per_tok[HB_TOK_OUT], 40.0 / 16);
        CHECK(g->n_no_meter == 0 && g->n_energy_valid == 1);
    }
    /* MI300X B=4: energy invalid (ratio bounds): nothing averaged in */
    g = find_group(rep, "decode", 4, "hip");
    CHECK(g && g->n_energy_valid == 0 && g->n_energy_invalid == 1);
    if (g) {
        CHECK_NAN(g->j_per_tok[HB_TOK_OUT]);
        CHECK_NAN(g->tok_per_j);
        hb_report_energy_note(g, note, sizeof note);
        CHECK_STR(note, "invalid: ratio-bounds");
    }
    /* gemm: FLOP/s headline, no latency */
    g = find_group(rep, "gemm", -1, "cuda");
    CHECK(g != NULL);
    if (g) {
        CHECK_STR(g->rate_unit, "FLOP/s");
        REL(g->rate, 1e10 / 0.01);
        REL(g->rate_hi, 1.1e12);
        CHECK_NAN(g->lat_p50_s);
        CHECK(g->tps[HB_TOK_TOTAL] == 0);
        CHECK(g->fp == HB_FP_NONE);
    }
}

static const char *prices_ok =
    "# test prices\n"
    "currency: USD\n"
    "default_tier: on-demand\n"
    "energy:\n"
    "  usd_per_kwh: {value: 0.10, source: test, date: 2025-01}\n"
    "  pue: {value: 1.5, source: test, date: 2025-01}\n"
    "devices:\n"
    "  - name: H100\n"
    "    match: [h100 80gb]\n"
    "    tiers:\n"
    "      on-demand: {usd_per_hour: 3.6, source: test list, date: 2025-01}\n"
    "      rental: {usd_per_hour: 3.6, source: test, date: 2025-01, includes_energy: true}\n"
    "  - name: MI300X\n"
    "    match: MI300X\n"
    "    backend: hip\n"
    "    all_in_kw: {value: 1.0, source: test, date: 2025}\n"
    "    tiers:\n"
    "      on-demand: {usd_per_hour: 1.8, source: test, date: 2025-01-31}\n";

static double cost(double per_hour, double tps, double kwh, double pue, double j) {
    return per_hour * 1e6 / (tps * 3600) + kwh * pue * j * 1e6 / 3.6e6;
}

static void test_prices(hb_report *rep, const hb_prices *p) {
    hb_err err;
    CHECK(hb_report_price(rep, p, NULL, &err) == HB_OK);
    const hb_rgroup *g = find_group(rep, "decode", 1, "cuda");
    CHECK(g && g->priced);
    if (g) {
        CHECK_STR(g->price_name, "H100");
        CHECK_STR(g->tier, "on-demand");
        REL(g->usd_per_hour, 3.6);
        REL(g->usd_mtok[HB_TOK_OUT], cost(3.6, 75, 0.10, 1.5, 5.0));
        CHECK_NEAR(g->usd_mtok[HB_TOK_OUT], 13.3333333333333 + 0.2083333333333, 1e-9);
        REL(g->usd_mtok_lo[HB_TOK_OUT], cost(3.6, 105, 0.10, 1.5, 5.0));
        REL(g->usd_mtok_hi[HB_TOK_OUT], cost(3.6, 48, 0.10, 1.5, 5.0));
        REL(g->usd_mtok_energy[HB_TOK_OUT], 0.10 * 1.5 * 5.0 / 3.6);
        CHECK_NAN(g->usd_mtok[HB_TOK_IN]); /* no input tokens */
        CHECK_CONTAINS(g->cost_note, "measured energy");
        CHECK_CONTAINS(g->price_source, "test list, 2025-01");
    }
    g = find_group(rep, "decode", 1, "hip");
    CHECK(g && g->priced);
    if (g) REL(g->usd_mtok[HB_TOK_OUT], cost(1.8, mean_rate(B0.it, 4, 1), 0.10, 1.5, 8.0 / 4));
    /* MI300X B=4: energy invalid -> all-in kW estimate, which follows the throughput */
    g = find_group(rep, "decode", 4, "hip");
    CHECK(g && g->priced && g->energy_estimated);
    if (g) {
        double t = mean_rate(B0b4.it, 4, 4);
        REL(g->usd_mtok[HB_TOK_OUT], cost(1.8, t, 0.10, 1.5, 1000.0 / t));
        REL(g->usd_mtok_lo[HB_TOK_OUT], cost(1.8, 420, 0.10, 1.5, 1000.0 / 420));
        REL(g->usd_mtok_hi[HB_TOK_OUT], cost(1.8, 380, 0.10, 1.5, 1000.0 / 380));
        CHECK_CONTAINS(g->cost_note, "all_in_kw");
    }
    /* CPU: no entry in the prices file */
    g = find_group(rep, "decode", 1, "cpu");
    CHECK(g && !g->priced);
    if (g) {
        CHECK_STR(g->cost_note, "no price");
        CHECK_NAN(g->usd_mtok[HB_TOK_OUT]);
    }
    /* a tier that includes energy: no energy term */
    CHECK(hb_report_price(rep, p, "rental", &err) == HB_OK);
    g = find_group(rep, "decode", 1, "cuda");
    if (g) {
        REL(g->usd_mtok[HB_TOK_OUT], 3.6e6 / (75 * 3600.0));
        CHECK(g->usd_mtok_energy[HB_TOK_OUT] == 0);
    }
    g = find_group(rep, "decode", 1, "hip"); /* MI300X has no "rental" tier */
    CHECK(g && !g->priced);
    if (g) CHECK_CONTAINS(g->cost_note, "no tier 'rental'");
    /* matching rule */
    CHECK(hb_prices_match(p, "NVIDIA H100 80GB HBM3", "cuda") == &p->devices[0]);
    CHECK(hb_prices_match(p, "NVIDIA H100 PCIe", "cuda") == NULL);
    CHECK(hb_prices_match(p, "AMD Instinct MI300X", "cpu") == NULL); /* backend filter */
    CHECK(hb_cost_usd_per_mtok(2.0, 0, 0) != hb_cost_usd_per_mtok(2.0, 0, 0)); /* NaN */
    CHECK(hb_prices_tier(p, &p->devices[1], NULL) == &p->devices[1].tiers[0]);
    CHECK(hb_report_price(rep, p, NULL, &err) == HB_OK); /* back to the default tier */
}

/* ---- claims ---- */

static const char *claims_ok =
    "claims:\n"
    "  - id: amd-cheaper\n"
    "    text: AMD is cheaper per output token\n"
    "    source: test\n"
    "    metric: usd_per_mtok_out\n"
    "    a: {workload: decode, vendor: amd, backend: hip}\n"
    "    b: {workload: decode, vendor: NVIDIA, backend: cuda}\n"
    "    expect: a < b\n"
    "  - id: nvidia-faster\n"
    "    text: NVIDIA decodes faster than AMD\n"
    "    source: test\n"
    "    metric: tokens_per_s_out\n"
    "    a: {workload: decode, vendor: NVIDIA}\n"
    "    b: {workload: decode, vendor: AMD, backend: hip}\n"
    "    expect: ratio >= 1\n"
    "    gate: true\n"
    "  - id: h100-vs-cpu\n"
    "    text: an H100 decodes 8x faster than a CPU at B=1\n"
    "    source: test\n"
    "    metric: tokens_per_s_out\n"
    "    a: {device: h100, batch: 1}\n"
    "    b: {backend: cpu, batch: 1}\n"
    "    pair_on: [workload, model, dtype]\n"
    "    expect: ratio >= 8\n"
    "  - id: train-mfu\n"
    "    text: training reaches MFU 0.3\n"
    "    source: test\n"
    "    metric: mfu\n"
    "    a: {workload: train}\n"
    "    expect: value >= 0.3\n"
    "  - id: h100-mfu\n"
    "    text: H100 decode B=1 MFU at least 0.1\n"
    "    source: test\n"
    "    metric: mfu\n"
    "    a: {workload: decode, device: H100, batch: 1}\n"
    "    expect: value >= 0.1\n"
    "  - id: cpu-energy\n"
    "    text: the CPU does one token per joule\n"
    "    source: test\n"
    "    metric: tokens_per_j\n"
    "    a: {backend: cpu}\n"
    "    expect: value >= 1\n";

static void test_claims(hb_report *rep, const hb_prices *p) {
    char path[512];
    hb_err err;
    hb_claims *cs = NULL;
    write_text(path_in("claims.yaml", path, sizeof path), claims_ok);
    hb_status st = hb_claims_load(path, &cs, &err);
    CHECK_MSG(st == HB_OK, "%s", err.msg);
    if (st != HB_OK) return;
    CHECK(hb_claims_count(cs) == 6);
    CHECK(hb_report_price(rep, p, NULL, &err) == HB_OK);
    hb_claim_result res[6];
    FILE *out = tmpfile();
    for (int i = 0; i < 6; i++) hb_claims_print(cs, i, rep, &res[i], out);
    char *text = slurp_stream(out);
    fclose(out);

    /* supported: pairs (B=1, B=4), geometric mean of a/b with its interval */
    const hb_rgroup *a1 = find_group(rep, "decode", 1, "hip"), *b1 = find_group(rep, "decode", 1, "cuda");
    const hb_rgroup *a4 = find_group(rep, "decode", 4, "hip"), *b4 = find_group(rep, "decode", 4, "cuda");
    CHECK(res[0].verdict == HB_VERDICT_SUPPORTED && res[0].n_pairs == 2);
    if (a1 && b1 && a4 && b4) {
        int k = HB_TOK_OUT;
        REL(res[0].value, sqrt(a1->usd_mtok[k] / b1->usd_mtok[k] * (a4->usd_mtok[k] / b4->usd_mtok[k])));
        REL(res[0].lo, sqrt(a1->usd_mtok_lo[k] / b1->usd_mtok_hi[k] * (a4->usd_mtok_lo[k] / b4->usd_mtok_hi[k])));
        REL(res[0].hi, sqrt(a1->usd_mtok_hi[k] / b1->usd_mtok_lo[k] * (a4->usd_mtok_hi[k] / b4->usd_mtok_lo[k])));
        CHECK(res[0].hi < 1);
    }
    /* refuted: 75/200 [48/210, 105/190] and 200/400 [190/420, 210/380] */
    CHECK(res[1].verdict == HB_VERDICT_REFUTED && res[1].n_pairs == 2);
    REL(res[1].hi, sqrt(105.0 / 190 * (210.0 / 380)));
    REL(res[1].lo, sqrt(48.0 / 210 * (190.0 / 420)));
    /* inconclusive: 75/10 = 7.5 with [48/11, 105/9] straddling 8 */
    CHECK(res[2].verdict == HB_VERDICT_INCONCLUSIVE && res[2].n_pairs == 1);
    CHECK_NEAR(res[2].value, 7.5, 1e-9);
    REL(res[2].lo, 48.0 / 11);
    REL(res[2].hi, 105.0 / 9);
    /* untestable: no train results */
    CHECK(res[3].verdict == HB_VERDICT_UNTESTABLE);
    CHECK_CONTAINS(res[3].why, "no result matches a (workload=train)");
    /* value claim: MFU 0.2 with [0.2 * 48/75, 0.2 * 105/75] */
    CHECK(res[4].verdict == HB_VERDICT_SUPPORTED);
    REL(res[4].value, 0.2);
    REL(res[4].lo, 0.2 * 48 / 75);
    /* untestable: energy not measured */
    CHECK(res[5].verdict == HB_VERDICT_UNTESTABLE);
    CHECK_CONTAINS(res[5].why, "not measured");
    /* the printed evidence */
    if (text) {
        CHECK_CONTAINS(text, "supported     amd-cheaper");
        CHECK_CONTAINS(text, "refuted       nvidia-faster [gate]");
        CHECK_CONTAINS(text, "inconclusive  h100-vs-cpu");
        CHECK_CONTAINS(text, "untestable    train-mfu");
        CHECK_CONTAINS(text, "ratio 7.5 [4.364, 11.67]");
        CHECK_CONTAINS(text, "paired on: workload, model, dtype");
    }
    free(text);

    /* a cost claim without prices is untestable, and says why */
    hb_report_price(rep, NULL, NULL, &err);
    hb_claims_eval(cs, 0, rep, &res[0], NULL);
    CHECK(res[0].verdict == HB_VERDICT_UNTESTABLE);
    CHECK_CONTAINS(res[0].why, "needs prices");
    hb_claims_free(cs);
    hb_report_price(rep, p, NULL, &err);
}

/* ---- writers ---- */

static char *render(const hb_report *rep, const char *format) {
    FILE *f = tmpfile();
    hb_err err;
    CHECK(hb_report_write(rep, format, f, &err) == HB_OK);
    char *s = slurp_stream(f);
    fclose(f);
    return s;
}

static void test_writers(const hb_report *rep, const char *html_path) {
    char *md = render(rep, "md"), *csv = render(rep, "csv"), *json = render(rep, "json"), *html = render(rep, "html");
    if (md) {
        CHECK_CONTAINS(md, "| decode tiny bf16 B=1 P=16 G=8 | NVIDIA H100 80GB HBM3 | cuda | threads ?, hetbench "
                           "0.1.0, seed 42, temperature 0 | 2 | 75.00 [48.00, 105.0] |");
        CHECK_CONTAINS(md, "| decode tiny bf16 B=4 P=16 G=8 | NVIDIA H100 80GB HBM3 | cuda | threads ?, hetbench "
                           "0.1.0, seed 42, temperature 0 | 1 (1 failed) |");
        CHECK_CONTAINS(md, "**MISMATCH**");
        CHECK_CONTAINS(md, "**no price**");
        CHECK_CONTAINS(md, "1 of 2 devices (others short-window)");
        CHECK_CONTAINS(md, "&lt;script&gt;");
        CHECK_MSG(!strstr(md, "<script>"), "markdown carries raw HTML");
    }
    if (csv) {
        CHECK_CONTAINS(csv, "case,workload,model,layers,dtype,batch,");
        CHECK_CONTAINS(csv, ",\"Test CPU <script>alert(1)</script> & \"\"co\"\"\",cpu,Intel,");
        int lines = 0;
        for (const char *p = csv; *p; p++) lines += *p == '\n';
        CHECK_MSG(lines == 7, "%d csv lines", lines);
    }
    if (json) {
        CHECK_CONTAINS(json, "\"rate_ci_lo\": 48, \"rate_ci_hi\": 105");
        CHECK_CONTAINS(json, "\"fingerprint_mismatches\": 1");
        CHECK_CONTAINS(json, "\"j_per_token\": [null, 5, 5]");
        CHECK_CONTAINS(json, "\"Test CPU <script>alert(1)</script> & \\\"co\\\"\"");
        CHECK_CONTAINS(json, "\"version\": \"0.2.0-test\"");
    }
    if (html) {
        CHECK_MSG(!strstr(html, "<script"), "html has a script element");
        CHECK_CONTAINS(html, "Test CPU &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;");
        CHECK_CONTAINS(html, "no power trace");
        CHECK_CONTAINS(html, "How to read this");
        CHECK_CONTAINS(html, ">no price<");
        int svgs = 0;
        for (const char *p = html; (p = strstr(p, "<svg")) != NULL; p++) svgs++;
        CHECK_MSG(svgs >= 5, "%d svg charts", svgs);
        CHECK_MSG(!strstr(html, "https://") && !strstr(html, "src="), "external reference in the html");
        if (html_path) write_text(html_path, html);
    }
    free(md), free(csv), free(json), free(html);
    hb_err err;
    CHECK(hb_report_write(rep, "pdf", stdout, &err) == HB_ERR_INPUT);
    CHECK_CONTAINS(err.msg, "accepted: md, csv, json, html");
}

/* ---- compare ---- */

static int run_cmd(int (*fn)(int, char **), const char *const *args, int n) {
    char *argv[16];
    for (int i = 0; i < n; i++) argv[i] = (char *)args[i];
    argv[n] = NULL;
    fflush(stdout);
    return fn(n, argv);
}

static void test_compare(void) {
    char base[512], reg[512], imp[512], noise[512], small[512], failed[512], other[512];
    CHECK(write_compare_file(path_in("base.h5", base, sizeof base), "ok", 100, 98, 102, 1) == HB_OK);
    CHECK(write_compare_file(path_in("regress.h5", reg, sizeof reg), "ok", 90, 88, 92, 1) == HB_OK);
    CHECK(write_compare_file(path_in("improve.h5", imp, sizeof imp), "ok", 120, 118, 122, 1) == HB_OK);
    CHECK(write_compare_file(path_in("noise.h5", noise, sizeof noise), "ok", 90, 80, 99, 1) == HB_OK);
    CHECK(write_compare_file(path_in("small.h5", small, sizeof small), "ok", 97, 96, 97.5, 1) == HB_OK);
    CHECK(write_compare_file(path_in("failed.h5", failed, sizeof failed), "failed", 100, 0, 0, 1) == HB_OK);
    CHECK(write_compare_file(path_in("other.h5", other, sizeof other), "ok", 100, 98, 102, 8) == HB_OK);

    hb_compare_summary s;
    hb_err err;
    FILE *out = tmpfile();
    CHECK(hb_compare_files(base, reg, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_matched == 1 && s.n_regressions == 1);
    char *text = slurp_stream(out);
    if (text) {
        CHECK_CONTAINS(text, "0.9000 [0.8627, 0.9388]"); /* 90/100 [88/102, 92/98] */
        CHECK_CONTAINS(text, "REGRESSION");
    }
    free(text);
    fclose(out);
    out = tmpfile();
    CHECK(hb_compare_files(base, noise, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_regressions == 0 && s.n_slower_noise == 1);
    CHECK(hb_compare_files(base, small, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_regressions == 0 && s.n_slower_noise == 1); /* 3% slower, outside noise, inside 5% */
    CHECK(hb_compare_files(base, imp, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_faster == 1 && s.n_improvements == 1 && s.n_regressions == 0);
    fclose(out);

    /* exit codes through the command */
    const char *a1[] = {base, reg};
    CHECK(run_cmd(hb_cmd_compare, a1, 2) == 1);
    const char *a2[] = {base, imp};
    CHECK(run_cmd(hb_cmd_compare, a2, 2) == 0);
    const char *a3[] = {base, noise};
    CHECK(run_cmd(hb_cmd_compare, a3, 2) == 0);
    const char *a4[] = {base, reg, "--max-regression", "15"};
    CHECK(run_cmd(hb_cmd_compare, a4, 4) == 0);
    const char *a5[] = {"--max-regression=5%", base, reg};
    CHECK(run_cmd(hb_cmd_compare, a5, 3) == 1);
    const char *a6[] = {base, failed};
    CHECK(run_cmd(hb_cmd_compare, a6, 2) == 1);
    const char *a7[] = {base, other}; /* nothing in common */
    CHECK(run_cmd(hb_cmd_compare, a7, 2) == 2);
    const char *a8[] = {base, reg, "--max-regression", "lots"};
    CHECK(run_cmd(hb_cmd_compare, a8, 4) == 2);
    const char *a9[] = {base};
    CHECK(run_cmd(hb_cmd_compare, a9, 1) == 2);

    /* invalid timing is never judged: a 10% slowdown measured under interference (or against a
     * base measured under contention) is neither a regression nor a pass - exit 3 */
    char busy_new[512], busy_base[512], reps_base[512], reps_noise[512], reps_slow[512];
    const timing_spec interfered = {0, HB_TIMING_INTERFERENCE | HB_TIMING_FITS_IN_CACHE, 1, NAN, NAN};
    const timing_spec contended = {0, HB_TIMING_CPU_CONTENTION, 1, NAN, NAN};
    CHECK(write_compare_file_t(path_in("busy-new.h5", busy_new, sizeof busy_new), "ok", 90, 88, 92, 1, &interfered) == HB_OK);
    CHECK(write_compare_file_t(path_in("busy-base.h5", busy_base, sizeof busy_base), "ok", 100, 98, 102, 1, &contended) ==
          HB_OK);
    out = tmpfile();
    CHECK(hb_compare_files(base, busy_new, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_matched == 1 && s.n_regressions == 0 && s.n_invalid_timing == 1 && s.n_slower_noise == 0);
    text = slurp_stream(out);
    if (text) {
        CHECK_CONTAINS(text, "NOT JUDGED: invalid timing (new interference)");
        CHECK_MSG(!strstr(text, "REGRESSION"), "a regression called on invalid timing");
    }
    free(text);
    fclose(out);
    out = tmpfile();
    CHECK(hb_compare_files(busy_base, busy_new, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_invalid_timing == 1 && s.n_regressions == 0);
    text = slurp_stream(out);
    if (text) CHECK_CONTAINS(text, "invalid timing (base cpu_contention; new interference)");
    free(text);
    fclose(out);
    const char *b1[] = {base, busy_new};
    CHECK(run_cmd(hb_cmd_compare, b1, 2) == HB_COMPARE_INVALID_TIMING);
    CHECK(HB_COMPARE_INVALID_TIMING == 3);
    const char *b2[] = {busy_base, imp}; /* not even an improvement can pass on it */
    CHECK(run_cmd(hb_cmd_compare, b2, 2) == 3);
    const char *b3[] = {busy_base, failed}; /* a failed case still fails the gate */
    CHECK(run_cmd(hb_cmd_compare, b3, 2) == 1);

    /* with repetitions on both sides the noise is their spread: CIs [98, 102] vs [88, 92] do
     * not overlap, but the windows' ranges [92, 108] and [85, 95] do - within noise; every
     * window of NEW below every window of BASE ([80, 91]) is a regression */
    const timing_spec rb = {1, 0, 5, 92, 108}, rn = {1, 0, 5, 85, 95}, rs = {1, 0, 5, 80, 91};
    CHECK(write_compare_file_t(path_in("reps-base.h5", reps_base, sizeof reps_base), "ok", 100, 98, 102, 1, &rb) == HB_OK);
    CHECK(write_compare_file_t(path_in("reps-noise.h5", reps_noise, sizeof reps_noise), "ok", 90, 88, 92, 1, &rn) ==
          HB_OK);
    CHECK(write_compare_file_t(path_in("reps-slow.h5", reps_slow, sizeof reps_slow), "ok", 90, 88, 92, 1, &rs) == HB_OK);
    out = tmpfile();
    CHECK(hb_compare_files(reps_base, reps_noise, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_regressions == 0 && s.n_slower_noise == 1);
    CHECK(hb_compare_files(reps_base, reps_slow, 5, out, &s, &err) == HB_OK);
    CHECK(s.n_regressions == 1);
    CHECK(hb_compare_files(base, reps_noise, 5, out, &s, &err) == HB_OK); /* one side without: the CIs decide */
    CHECK(s.n_regressions == 1);
    fclose(out);
    const char *b4[] = {reps_base, reps_noise};
    CHECK(run_cmd(hb_cmd_compare, b4, 2) == 0);
    const char *b5[] = {reps_base, reps_slow};
    CHECK(run_cmd(hb_cmd_compare, b5, 2) == 1);
}

/* ---- configurations: grouping, per-file agreement, rooflines ---- */

/* A one-rank CPU file: decode B=1 at `rate` [lo, hi] tokens/s, with this file's thread count,
 * ceilings (bf16 TFLOP/s, GB/s) and hetbench version; its timing is valid. */
static hb_status write_config_file(const char *path, const char *version, int threads, double tf_bf16, double gbps,
                                   double rate, double lo, double hi) {
    hb_device_row d;
    device(&d, 0, "ci01", "cpu", "Intel", "Test CPU", tf_bf16, gbps, 4);
    d.n_threads = threads;
    hb_run_meta m = meta(version, "ci01");
    m.mpi_size = 1;
    double idle = NAN;
    hb_h5 *h = NULL;
    hb_err err;
    HB_TRY(hb_h5_create(path, 1, &m, &d, 1, &idle, &h, &err));
    hb_case c;
    hb_cost k;
    decode_case(&c, &k, 0, 1);
    spec sp = {0, "ok", 2, {1.0 / rate, 1.0 / rate}, NAN, 2.0 / rate, 0, HB_ENERGY_NO_METER, lo, hi, NAN, NAN,
               {1, 1, 1, 1}, 0, {0}};
    hb_record r;
    hb_summary_row row;
    make(&c, &k, &d, &sp, &r, &row);
    row.timing_valid = 1;
    row.timing_flags = 0;
    hb_status st = hb_h5_write_case(h, &c, &k, &r, &row, 1, &err);
    hb_status s2 = hb_h5_close(h, "complete", &err);
    return st != HB_OK ? st : s2;
}

static const hb_roofline *find_roof(const hb_roofline *rl, int n, int file) {
    for (int i = 0; i < n; i++)
        if (rl[i].file == file) return &rl[i];
    return NULL;
}

static void test_configurations(void) {
    char one[512], two[512], two_slow[512], two_same[512], newer[512];
    /* same host, same CPU, same case: 1 thread (ceilings 1 TFLOP/s, 10 GB/s), 2 threads
     * (2 TFLOP/s, 20 GB/s), 2 threads again with ceilings 2.5% higher and a disjoint interval,
     * 2 threads with an overlapping one, and 2 threads written by another hetbench version */
    CHECK(write_config_file(path_in("t1.h5", one, sizeof one), "0.4.0", 1, 1.0, 10, 14000, 13900, 14100) == HB_OK);
    CHECK(write_config_file(path_in("t2.h5", two, sizeof two), "0.4.0", 2, 2.0, 20, 40000, 39000, 41000) == HB_OK);
    CHECK(write_config_file(path_in("t2-slow.h5", two_slow, sizeof two_slow), "0.4.0", 2, 2.05, 20.5, 13000, 12800,
                            13200) == HB_OK);
    CHECK(write_config_file(path_in("t2-same.h5", two_same, sizeof two_same), "0.4.0", 2, 2.0, 19.5, 40400, 39800,
                            41400) == HB_OK);
    CHECK(write_config_file(path_in("t2-newer.h5", newer, sizeof newer), "0.5.0", 2, 2.0, 20, 40000, 39000, 41000) ==
          HB_OK);
    hb_report *rep = NULL;
    hb_err err = {{0}};
    const char *f3[] = {one, two, two_slow};
    CHECK_MSG(hb_report_load(f3, 3, &rep, &err) == HB_OK, "%s", err.msg);
    if (rep) {
        /* never a 1-thread and a 2-thread run in one row */
        CHECK_MSG(rep->n_groups == 2, "%d groups", rep->n_groups);
        const hb_rgroup *g1 = NULL, *g2 = NULL;
        for (int i = 0; i < rep->n_groups; i++) {
            if (rep->groups[i].n_threads == 1) g1 = &rep->groups[i];
            if (rep->groups[i].n_threads == 2) g2 = &rep->groups[i];
        }
        CHECK(g1 && g2);
        if (g1 && g2) {
            CHECK(g1->n_ok == 1 && g2->n_ok == 2);
            REL(g1->rate, 14000);
            REL(g1->peak_bps, 10e9);
            CHECK_CONTAINS(g1->config, "1 thread, hetbench 0.4.0");
            CHECK(!g1->files_disagree);
            /* 2 threads: [39000, 41000] (file 2) and [12800, 13200] (file 3) are disjoint */
            CHECK(g2->n_files_ok == 2 && g2->files_disagree);
            CHECK_NAN(g2->rate);
            CHECK_NAN(g2->rate_lo);
            CHECK_NAN(g2->tps[HB_TOK_OUT]);
            CHECK_CONTAINS(g2->per_file, "file 2: 40000 [39000, 41000]");
            CHECK_CONTAINS(g2->per_file, "file 3: 13000 [12800, 13200]");
        }
        char *md = render(rep, "md");
        if (md) CHECK_CONTAINS(md, "**files disagree, not averaged**: file 2: 40000");
        free(md);
        char *html = render(rep, "html");
        if (html) {
            CHECK_CONTAINS(html, "files disagree, not averaged");
            CHECK_CONTAINS(html, "Test CPU (cpu), file 1</h3>");
            CHECK_CONTAINS(html, "Test CPU (cpu), file 3</h3>");
            /* a sweep of one of two twin groups is named with its configuration (the other one's
             * files disagree: no rate, no point) */
            CHECK_CONTAINS(html, "Test CPU (cpu): tiny[2L] bf16 P=16 G=8 · 1 thread, hetbench 0.4.0");
        }
        free(html);
        /* one roofline per file, each with the ceilings its file recorded */
        hb_roofline *rl = NULL;
        int n_rl = 0;
        CHECK(hb_report_rooflines(rep, &rl, &n_rl, &err) == HB_OK);
        CHECK_MSG(n_rl == 3, "%d rooflines", n_rl);
        const double bps[3] = {10e9, 20e9, 20.5e9}, tf[3] = {1e12, 2e12, 2.05e12}, rate[3] = {14000, 40000, 13000};
        for (int fi = 0; fi < 3 && rl; fi++) {
            const hb_roofline *x = find_roof(rl, n_rl, fi);
            CHECK_MSG(x != NULL, "no roofline for file %d", fi + 1);
            if (!x) continue;
            CHECK_STR(x->device, "Test CPU");
            REL(x->peak_bps, bps[fi]);
            CHECK(x->n_peaks == 1);
            CHECK_STR(x->peak_dtype[0], "bf16");
            REL(x->peak_flops[0], tf[fi]);
            /* the point: the case's 1e9 FLOP and 2e9 bytes per token at the file's own rate */
            CHECK(x->n_points == 1);
            REL(x->flops_per_s[0], 1e9 * rate[fi]);
            REL(x->intensity[0], 0.5);
        }
        free(rl);
    }
    hb_report_free(rep);
    /* overlapping intervals of one configuration are averaged (ceilings within 10%) */
    const char *f2[] = {two, two_same};
    CHECK_MSG(hb_report_load(f2, 2, &rep, &err) == HB_OK, "%s", err.msg);
    if (rep) {
        CHECK_MSG(rep->n_groups == 1, "%d groups", rep->n_groups);
        CHECK(!rep->groups[0].files_disagree && rep->groups[0].n_ok == 2);
        REL(rep->groups[0].rate, (40000 + 40400) / 2.0);
        REL(rep->groups[0].rate_lo, 39000);
        REL(rep->groups[0].rate_hi, 41400);
    }
    hb_report_free(rep);
    /* a claim on a group whose files disagree is untestable, and says why */
    const char *fd[] = {two, two_slow};
    CHECK_MSG(hb_report_load(fd, 2, &rep, &err) == HB_OK, "%s", err.msg);
    char cp[512];
    write_text(path_in("claims-disagree.yaml", cp, sizeof cp),
               "claims:\n  - id: cpu-fast\n    text: the CPU decodes tiny at over 1000 tokens/s\n    source: test\n"
               "    metric: rate\n    a: {workload: decode, backend: cpu}\n    expect: value > 1000\n");
    hb_claims *cs = NULL;
    if (rep && hb_claims_load(cp, &cs, &err) == HB_OK) {
        hb_claim_result res;
        hb_claims_eval(cs, 0, rep, &res, NULL);
        CHECK(res.verdict == HB_VERDICT_UNTESTABLE);
        CHECK_CONTAINS(res.why, "files of a matching result disagree");
    } else {
        CHECK_MSG(0, "claims-disagree: %s", err.msg);
    }
    hb_claims_free(cs);
    hb_report_free(rep);
    /* another hetbench version is another configuration */
    const char *fv[] = {two, newer};
    CHECK_MSG(hb_report_load(fv, 2, &rep, &err) == HB_OK, "%s", err.msg);
    if (rep) CHECK_MSG(rep->n_groups == 2, "%d groups", rep->n_groups);
    hb_report_free(rep);
}

/* ---- bad input ---- */

static void expect_input_error(const char *path, const char *fragment) {
    hb_report *rep = NULL;
    hb_err err = {{0}};
    const char *p[1] = {path};
    hb_status st = hb_report_load(p, 1, &rep, &err);
    CHECK_MSG(st == HB_ERR_INPUT, "%s: status %d", path, (int)st);
    CHECK_CONTAINS(err.msg, fragment);
    CHECK(rep == NULL);
    const char *args[] = {path};
    CHECK(run_cmd(hb_cmd_report, args, 1) == 2);
}

static void h5_with_schema(const char *path, const char *schema) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (schema) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(schema) + 1);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "schema", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, schema);
        H5Aclose(a), H5Sclose(sp), H5Tclose(t);
    }
    H5Fclose(f);
}

static void test_bad_files(const char *good) {
    char p[512], q[512];
    write_text(path_in("text.h5", p, sizeof p), "this is not HDF5\n");
    expect_input_error(p, "not an HDF5 file");
    h5_with_schema(path_in("foreign.h5", p, sizeof p), NULL);
    expect_input_error(p, "not a hetbench results file");
    h5_with_schema(path_in("future.h5", p, sizeof p), "hetbench/9");
    expect_input_error(p, "hetbench/9");
    expect_input_error(path_in("missing.h5", p, sizeof p), "cannot open");
    /* truncated: the first half of a good file */
    FILE *in = fopen(good, "rb");
    path_in("truncated.h5", q, sizeof q);
    FILE *out = fopen(q, "wb");
    if (in && out) {
        fseek(in, 0, SEEK_END);
        long n = ftell(in);
        rewind(in);
        char *buf = malloc((size_t)n);
        if (buf && fread(buf, 1, (size_t)n, in) == (size_t)n) fwrite(buf, 1, (size_t)n / 2, out);
        free(buf);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    expect_input_error(q, "truncated.h5");
    /* one bad file among good ones spoils the report: exit 2, nothing written */
    char html[512];
    path_in("never.html", html, sizeof html);
    const char *args[] = {good, q, "-o", html};
    CHECK(run_cmd(hb_cmd_report, args, 4) == 2);
    CHECK(access(html, F_OK) != 0);
}

/* Replaces (or adds) the double attribute `name` of object `obj` in an existing file. */
static void set_attr_f64(const char *path, const char *obj, const char *name, double v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t o = f >= 0 ? H5Oopen(f, obj, H5P_DEFAULT) : -1;
    if (o >= 0 && H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = o >= 0 ? H5Acreate2(o, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    CHECK_MSG(a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0, "%s: cannot set %s of %s", path, name, obj);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (o >= 0) H5Oclose(o);
    if (f >= 0) H5Fclose(f);
}

/* Values a plan could never produce, in an otherwise good file: report, check and compare
 * refuse the file (exit 2, naming the attribute). A NaN temperature used to crash all three:
 * the "same function" grouping compared temperatures with == and indexed entries[-1]. */
static void test_hostile_values(const char *good) {
    char p[512], claims[512], cmd[1200];
    path_in("claims.yaml", claims, sizeof claims);
    static const struct { const char *obj, *name; double v; const char *want; } cases[] = {
        {"/cases/0000", "temperature", NAN, "/cases/0000: attribute 'temperature' is nan (accepted: finite numbers >= 0)"},
        {"/cases/0000", "temperature", 1e300, "attribute 'temperature' is inf"},
        {"/cases/0001", "tokens_out_per_iter", -1, "/cases/0001: attribute 'tokens_out_per_iter' is -1"},
        {"/cases/0001", "batch", -4, "/cases/0001: attribute 'batch' is -4 (accepted: integers 0 to"},
        {"/cases/0002", "min_seconds", INFINITY, "attribute 'min_seconds' is inf"},
    };
    for (int i = 0; i < HB_ARRAY_LEN(cases); i++) {
        path_in("hostile.h5", p, sizeof p);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", good, p);
        CHECK(system(cmd) == 0);
        set_attr_f64(p, cases[i].obj, cases[i].name, cases[i].v);
        expect_input_error(p, cases[i].want);
        const char *ca[] = {claims, p};
        CHECK(run_cmd(hb_cmd_check, ca, 2) == 2);
        const char *cc[] = {good, p};
        CHECK(run_cmd(hb_cmd_compare, cc, 2) == 2);
    }
}

/* Replaces dataset `name` of group `obj` by a (n, cols) double dataset: written with v, or
 * (write 0) declared only, so that the file stores none of its values. */
static void set_dset(const char *path, const char *obj, const char *name, hsize_t n, hsize_t cols, int write,
                     double v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = f >= 0 ? H5Gopen2(f, obj, H5P_DEFAULT) : -1;
    if (g >= 0 && H5Lexists(g, name, H5P_DEFAULT) > 0) H5Ldelete(g, name, H5P_DEFAULT);
    hsize_t dims[2] = {n, cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t d = g >= 0 ? H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    CHECK_MSG(d >= 0, "%s: cannot create %s/%s", path, obj, name);
    if (d >= 0 && write) {
        double *buf = malloc((size_t)(n * (cols ? cols : 1)) * sizeof *buf);
        for (hsize_t i = 0; buf && i < n * (cols ? cols : 1); i++) buf[i] = i == 1 ? v : 0.01;
        CHECK(buf && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        free(buf);
    }
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
}

/* Datasets as untrusted input: declared sizes must be stored, values finite. */
static void test_hostile_datasets(const char *good) {
    char p[512], cmd[1200];
    path_in("hostile-d.h5", p, sizeof p);
    static const struct { hsize_t n, cols; int write; double v; const char *name, *want; } cases[] = {
        /* 2^27 values declared, none written: 1 GiB that a 20 KB file does not hold */
        {(hsize_t)1 << 27, 0, 0, 0, "iter_seconds", "/cases/0000/rank0/iter_seconds declares 1073741824 bytes but the "
                                                  "file stores 0 of them"},
        {(hsize_t)1 << 40, 0, 0, 0, "iter_seconds", "declares 8796093022208 bytes"}, /* used to exit 1 (malloc) */
        {4, 0, 1, NAN, "iter_seconds", "/cases/0000/rank0/iter_seconds[1] is nan (accepted: finite seconds >= 0)"},
        {4, 0, 1, -1, "iter_seconds", "/cases/0000/rank0/iter_seconds[1] is -1"},
        {3, 2, 1, INFINITY, "power", "/cases/0000/rank0/power[0][1] is inf (accepted: finite t_s and watts)"},
    };
    for (int i = 0; i < HB_ARRAY_LEN(cases); i++) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", good, p);
        CHECK(system(cmd) == 0);
        set_dset(p, "/cases/0000/rank0", cases[i].name, cases[i].n, cases[i].cols, cases[i].write, cases[i].v);
        expect_input_error(p, cases[i].want);
    }
}

/* libhdf5 crashing or looping on a corrupt file (simulated in the reading child): contained,
 * exit 2 naming the file, never a hang. */
static void test_contained_read(const char *good) {
    setenv("HETBENCH_READ_FAULT", "crash", 1);
    expect_input_error(good, "a.h5: corrupt results file: libhdf5 crashed reading it (");
    setenv("HETBENCH_READ_FAULT", "hang", 1);
    setenv("HETBENCH_READ_TIMEOUT", "0.3", 1);
    expect_input_error(good, "a.h5: reading did not finish within 0.3 s");
    unsetenv("HETBENCH_READ_FAULT");
    setenv("HETBENCH_READ_TIMEOUT", "soon", 1);
    expect_input_error(good, "HETBENCH_READ_TIMEOUT: 'soon' is not a number of seconds");
    setenv("HETBENCH_READ_TIMEOUT", "0", 1); /* no child: read in this process */
    hb_report *rep = NULL;
    hb_err err = {{0}};
    const char *p[1] = {good};
    CHECK_MSG(hb_report_load(p, 1, &rep, &err) == HB_OK, "%s", err.msg);
    hb_report_free(rep);
    unsetenv("HETBENCH_READ_TIMEOUT");
}

/* Hostile YAML (issue 19): a 511-byte alias bomb (9 levels x 10 aliases: 10^9 nodes if
 * expanded) and a 200 KB nesting are refused at once with one line; an honest alias is
 * shared, not copied. */
static void test_yaml_bombs(void) {
    char p[512], bomb[1024], *o = bomb;
    o += sprintf(o, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int l = 1; l <= 8; l++) {
        o += sprintf(o, "a%d: &a%d [", l, l);
        for (int i = 0; i < 10; i++) o += sprintf(o, "%s*a%d", i ? "," : "", l - 1);
        o += sprintf(o, "]\n");
    }
    CHECK_MSG(o - bomb <= 511, "the bomb is %d bytes", (int)(o - bomb));
    write_text(path_in("bomb.yaml", p, sizeof p), bomb);
    for (int kind = 0; kind < 3; kind++) {
        hb_err err = {{0}};
        hb_status st;
        if (kind == 0) {
            hb_prices *pr = NULL;
            st = hb_prices_load(p, &pr, &err);
            hb_prices_free(pr);
        } else if (kind == 1) {
            hb_claims *cl = NULL;
            st = hb_claims_load(p, &cl, &err);
            hb_claims_free(cl);
        } else {
            hb_ycfg y;
            st = hb_ycfg_load(&y, p, &err);
            hb_ycfg_free(&y);
        }
        CHECK_MSG(st == HB_ERR_INPUT, "bomb, loader %d: status %d (%s)", kind, (int)st, err.msg);
        CHECK_CONTAINS(err.msg, "bomb.yaml:6: more than 200000 YAML nodes with aliases expanded (accepted: at most 200000");
    }
    /* deep nesting: [[[[...]]]] 100000 levels, 200 KB */
    const int depth = 100000;
    char *deep = malloc(2 * (size_t)depth + 2);
    if (deep) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\n';
        deep[2 * depth + 1] = '\0';
        write_text(path_in("deep.yaml", p, sizeof p), deep);
        free(deep);
        hb_err err = {{0}};
        hb_claims *cl = NULL;
        CHECK(hb_claims_load(p, &cl, &err) == HB_ERR_INPUT);
        CHECK_CONTAINS(err.msg, "deep.yaml:1: nested too deeply (accepted: 64 levels)");
        hb_claims_free(cl);
    }
    /* an honest alias: shared, counted as what it stands for */
    write_text(path_in("alias.yaml", p, sizeof p), "base: &b {price: 2, kw: 0.7}\nother: *b\nlist: [*b, *b]\n");
    hb_ycfg y;
    hb_err err = {{0}};
    CHECK_MSG(hb_ycfg_load(&y, p, &err) == HB_OK, "%s", err.msg);
    if (y.root) {
        const hb_ynode *b = hb_ycfg_get(y.root, "base"), *ot = hb_ycfg_get(y.root, "other");
        const hb_ynode *l = hb_ycfg_get(y.root, "list");
        CHECK(b && b == ot && l && l->n == 2 && l->items[0] == b);
        CHECK(b && b->n_nodes == 5 && y.root->n_nodes == 1 + 3 + 2 * 5 + 1 + 2 * 5);
        const hb_ynode *pr = hb_ycfg_get(ot, "price");
        CHECK(pr && pr->kind == HB_Y_SCALAR && !strcmp(pr->text, "2") && pr->line == 1);
    }
    hb_ycfg_free(&y);
    write_text(path_in("alias.yaml", p, sizeof p), "a: *nope\n");
    CHECK(hb_ycfg_load(&y, p, &err) == HB_ERR_INPUT);
    CHECK_CONTAINS(err.msg, "alias.yaml:1: ");
    hb_ycfg_free(&y);
}

/* Each malformed prices file must give HB_ERR_INPUT with "<path>:<line>: field '<key>'". */
static void expect_yaml_error(int prices, const char *text, int line, const char *field, const char *fragment) {
    char path[512], want[640];
    write_text(path_in(prices ? "bad-prices.yaml" : "bad-claims.yaml", path, sizeof path), text);
    hb_err err = {{0}};
    hb_status st;
    if (prices) {
        hb_prices *p = NULL;
        st = hb_prices_load(path, &p, &err);
        hb_prices_free(p);
    } else {
        hb_claims *c = NULL;
        st = hb_claims_load(path, &c, &err);
        hb_claims_free(c);
    }
    CHECK_MSG(st == HB_ERR_INPUT, "status %d for:\n%s", (int)st, text);
    if (field) snprintf(want, sizeof want, "%s:%d: field '%s': ", path, line, field);
    else snprintf(want, sizeof want, "%s:%d: ", path, line);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, fragment);
    CHECK_MSG(!strchr(err.msg, '\n'), "multi-line message: %s", err.msg);
}

#define DEV "devices:\n  - name: X\n    match: x\n"
static void test_bad_yaml(const char *good_h5) {
    expect_yaml_error(1, "devices: [\n", 2, NULL, "YAML syntax error");
    expect_yaml_error(1, "currency: EUR\n" DEV "    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n", 1, "currency", "accepted: USD");
    expect_yaml_error(1, DEV "    tiers: {a: {usd_per_hour: 1, date: 2025}}\n", 4, "tiers.a.source", "missing");
    expect_yaml_error(1, DEV "    tiers:\n      a: {usd_per_hour: 1, source: s, date: 2025-13}\n", 5, "tiers.a.date", "not a date");
    expect_yaml_error(1, DEV "    tiers:\n      a: {usd_per_hour: -2, source: s, date: 2025}\n", 5, "tiers.a.usd_per_hour", "out of range");
    expect_yaml_error(1, DEV "    tiers:\n      a: {usd_per_hour: cheap, source: s, date: 2025}\n", 5, "tiers.a.usd_per_hour", "not a number");
    expect_yaml_error(1, DEV "    colour: red\n    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n", 4, "colour", "unknown field (accepted: name, match");
    expect_yaml_error(1, DEV "    unit: fortnight\n    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n", 4, "unit", "core-hour");
    expect_yaml_error(1, DEV "    tiers: [1, 2]\n", 4, "tiers", "expected a mapping");
    expect_yaml_error(1, "default_tier: gold\n" DEV "    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n", 1, "default_tier", "no device has a tier 'gold'");
    expect_yaml_error(1, DEV "    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n    pue: {value: 0.5, source: s, date: 2025}\n", 5, "pue.value", "out of range");
    expect_yaml_error(1, "devices:\n  - match: x\n    tiers: {a: {usd_per_hour: 1, source: s, date: 2025}}\n", 2, "name", "missing");

#define CL "claims:\n  - id: c1\n    text: t\n    source: s\n"
    expect_yaml_error(0, CL "    metric: speed\n    a: {}\n    expect: value > 1\n", 5, "metric", "unknown metric 'speed' (accepted: rate,");
    expect_yaml_error(0, CL "    metric: rate\n    a: {}\n    expect: bigger\n", 7, "expect", "cannot read 'bigger'");
    expect_yaml_error(0, CL "    metric: rate\n    a: {colour: red}\n    expect: value > 1\n", 6, "colour", "unknown field (accepted: workload, model");
    expect_yaml_error(0, CL "    metric: rate\n    a: {dtype: fp4}\n    expect: value > 1\n", 6, "a.dtype", "unknown dtype 'fp4'");
    expect_yaml_error(0, CL "    metric: rate\n    a: {batch: many}\n    expect: value > 1\n", 6, "a.batch", "not an integer");
    expect_yaml_error(0, CL "    metric: rate\n    a: {}\n    expect: ratio >= 2\n", 7, "expect", "lacks");
    expect_yaml_error(0, CL "    metric: rate\n    a: {}\n    b: {}\n    expect: value >= 2\n", 8, "expect", "b: is given");
    expect_yaml_error(0, CL "    metric: rate\n    a: {}\n    expect: value > 1\n    gate: sometimes\n", 8, "gate", "not a boolean");
    expect_yaml_error(0, CL "    metric: run_device_hours\n    a: {}\n    expect: value < 1\n", 5, "run", "missing: metric run_device_hours needs");
    expect_yaml_error(0, CL "    metric: rate\n    run: {tokens: 1}\n    a: {}\n    expect: value < 1\n", 6, "run", "given, but metric is rate");
    expect_yaml_error(0, CL "    metric: run_device_hours\n    run: {hours: 1}\n    a: {}\n    expect: value < 1\n", 6, "hours", "unknown field");
    expect_yaml_error(0, CL "    metric: run_device_hours\n    run: {device_hours: 1}\n    a: {}\n    expect: value < 1\n", 6, "run.tokens", "missing");
    expect_yaml_error(0, CL "    metric: run_device_hours\n    run: {tokens: -5}\n    a: {}\n    expect: value < 1\n", 6, "run.tokens", "");
    expect_yaml_error(0, "claims:\n  - text: t\n    source: s\n    metric: rate\n    a: {}\n    expect: value > 1\n", 2, "id", "missing");
    expect_yaml_error(0, CL "    metric: rate\n    a: {}\n    expect: value > 1\n  - id: c1\n    text: t\n    source: s\n    metric: rate\n    a: {}\n    expect: value > 1\n",
                      8, "id", "given twice");
    expect_yaml_error(0, "claim:\n  - id: x\n", 1, "claim", "unknown field (accepted: claims)");

    /* through the commands: exit 2 with the message, nothing else */
    char path[512];
    write_text(path_in("bad-prices.yaml", path, sizeof path), "devices: 3\n");
    const char *a1[] = {good_h5, "--prices", path};
    CHECK(run_cmd(hb_cmd_report, a1, 3) == 2);
    write_text(path_in("bad-claims.yaml", path, sizeof path), "claims: {}\n");
    const char *a2[] = {path, good_h5};
    CHECK(run_cmd(hb_cmd_check, a2, 2) == 2);
    const char *a3[] = {good_h5, "--format", "pdf"};
    CHECK(run_cmd(hb_cmd_report, a3, 3) == 2);
    const char *a4[] = {good_h5, "--frobnicate"};
    CHECK(run_cmd(hb_cmd_report, a4, 2) == 2);
    const char *a5[] = {"--prices"};
    CHECK(run_cmd(hb_cmd_report, a5, 1) == 2);
    const char *a6[] = {good_h5, "--tier", "gold"}; /* --tier without --prices */
    CHECK(run_cmd(hb_cmd_report, a6, 3) == 2);
    char out[512];
    path_in("never-baseline.html", out, sizeof out);
    const char *a7[] = {good_h5, "--baseline", "no such device", "-o", out}; /* nothing written */
    CHECK(run_cmd(hb_cmd_report, a7, 5) == 2);
    CHECK(access(out, F_OK) != 0);
    const char *a8[] = {good_h5, "--baseline", "h100", "-o", out};
    CHECK(run_cmd(hb_cmd_report, a8, 5) == 0);
    CHECK(access(out, F_OK) == 0);
}

/* moe-fraction-of-compute of the shipped claims gets a verdict from a MoE case and its dense
 * twin: mixtral-8x7b decode at 100 tokens/s against mixtral-8x7b-dense (dense_twin: total) at
 * 50 tokens/s is a ratio of 2 < 3.6: refuted; at 20 tokens/s (ratio 5): supported. The same
 * for moe-training-2.3x with train cases (2 < 2.3 refuted, 5 supported). */
static void test_moe_claim(int train) {
    const char *id = train ? "moe-training-2.3x" : "moe-fraction-of-compute";
    for (int pass = 0; pass < 2; pass++) {
        char path[512];
        path_in(train ? (pass ? "moe-train-b.h5" : "moe-train-a.h5") : (pass ? "moe-b.h5" : "moe-a.h5"), path, sizeof path);
        hb_device_row d;
        device(&d, 0, "node01", "cpu", "AMD", "AMD EPYC 9654 96-Core Processor", 10, 400, 96);
        hb_run_meta m = meta("0.5.0", "node01");
        m.mpi_size = 1;
        double idle = NAN;
        hb_h5 *h = NULL;
        hb_err err;
        CHECK(hb_h5_create(path, 1, &m, &d, 1, &idle, &h, &err) == HB_OK);
        if (!h) return;
        for (int twin = 0; twin < 2; twin++) {
            hb_case c = {0};
            c.id = twin, c.workload = HB_WL_DECODE, c.dtype = HB_BF16, c.batch = 1, c.prompt = 16, c.gen = 8;
            c.seed = 1, c.min_iters = 2, c.max_iters = 100;
            if (train) { /* train's own keys and defaults (hb_case_resolve checks them) */
                c.workload = HB_WL_TRAIN, c.prompt = c.gen = 0, c.seq = 16, c.dtype = HB_F32;
                c.lr = 1e-4f, c.beta1 = 0.9f, c.beta2 = 0.999f, c.eps = 1e-8f, c.grad_accum = 1, c.dp = 1;
            }
            CHECK(hb_model_find("mixtral-8x7b", &c.model, NULL) == HB_OK);
            c.model.n_layers = 2;
            if (twin) CHECK(hb_model_dense_twin(&c.model, HB_TWIN_TOTAL, &c.model, NULL) == HB_OK);
            CHECK(hb_case_resolve(&c, &err) == HB_OK);
            const double t = twin ? (pass ? 0.05 : 0.02) : 0.01;
            const spec s = {0, "ok", 4, {t, t, t, t}, NAN, 4 * t, 0, HB_ENERGY_NO_METER, 0.99 / t, 1.01 / t, 0.1, 0.1,
                            {1, 1, 1, 1}, 0, {0}};
            hb_record r;
            hb_summary_row row;
            make(&c, &c.cost, &d, &s, &r, &row);
            CHECK_STR(row.model, twin ? "mixtral-8x7b-dense" : "mixtral-8x7b");
            CHECK(row.total_params > 0 && (twin ? row.active_params == row.total_params : row.active_params < row.total_params));
            CHECK(hb_h5_write_case(h, &c, &c.cost, &r, &row, 1, &err) == HB_OK);
        }
        CHECK(hb_h5_close(h, "complete", &err) == HB_OK);
        hb_report *rep = NULL;
        const char *paths[] = {path};
        CHECK_MSG(hb_report_load(paths, 1, &rep, &err) == HB_OK, "%s", err.msg);
        hb_claims *cs = NULL;
        CHECK(hb_claims_load(HB_SOURCE_DIR "/results/claims/press-2025.yaml", &cs, &err) == HB_OK);
        int found = 0;
        for (int i = 0; rep && cs && i < hb_claims_count(cs); i++) {
            hb_claim_result res;
            if (strcmp(hb_claims_id(cs, i), id) == 0) {
                found = 1;
                hb_claims_eval(cs, i, rep, &res, NULL);
                CHECK_MSG(res.verdict == (pass ? HB_VERDICT_SUPPORTED : HB_VERDICT_REFUTED) && res.n_pairs == 1,
                          "%s: %s (%s)", id, hb_verdict_name(res.verdict), res.why);
                CHECK_NEAR(res.value, pass ? 5.0 : 2.0, 1e-9);
            }
            if (!train && strcmp(hb_claims_id(cs, i), "moe-fraction-of-energy") == 0) { /* no meter: no joules */
                hb_claims_eval(cs, i, rep, &res, NULL);
                CHECK(res.verdict == HB_VERDICT_UNTESTABLE);
            }
        }
        CHECK(found);
        hb_claims_free(cs);
        hb_report_free(rep);
    }
}

/* Training cost (issue 14): a train case of gpt2-124m[2L] on an H100 at 0.25 s per step (B=4,
 * T=64: 1024 tokens/s) gives 1e9 / (1024 x 3600) = 271.3 device-hours per billion trained
 * tokens, and $ per B tokens = the H100's $/device-hour x that; run_device_hours scales the rate
 * to a published run - from trained tokens/s, or from FLOP/s over the run's FLOPs per token. */
/* tp rows: every rank of a tp group reports the group's tokens (B per iteration through both
 * devices); the report counts each device's share (rate / tp) in per-device rates, tokens/s and
 * J per token, and keeps the tp = 2 deployment apart from tp = 1 replicas of the same model */
static void test_tp_rows(void) {
    char path[512];
    path_in("tp-rows.h5", path, sizeof path);
    hb_device_row d[2];
    device(&d[0], 0, "node01", "cuda", "NVIDIA", H100, 989.5, 3350, 132);
    device(&d[1], 1, "node01", "cuda", "NVIDIA", H100, 989.5, 3350, 132);
    hb_run_meta m = meta("0.6.0", "node01");
    double idle[2] = {NAN, NAN};
    hb_h5 *h = NULL;
    hb_err err;
    CHECK(hb_h5_create(path, 1, &m, d, 2, idle, &h, &err) == HB_OK);
    if (!h) return;
    hb_case c;
    hb_cost k;
    hb_record r[2];
    hb_summary_row row[2];
    const spec s0 = {0, "ok", 4, {0.01, 0.01, 0.01, 0.01}, 20.0, 0.04, 1, 0, 95, 105, 0.3, 0.5, {1, 100, 10, 5}, 0, {0}};
    spec s1 = s0;
    s1.rank = 1;
    for (int tp = 2; tp >= 1; tp--) {
        decode_case(&c, &k, 2 - tp, 1);
        c.tp = tp;
        hb_case_label(&c, c.label, sizeof c.label);
        make(&c, &k, &d[0], &s0, &r[0], &row[0]);
        make(&c, &k, &d[1], &s1, &r[1], &row[1]);
        for (int i = 0; i < 2 && tp > 1; i++) row[i].group_id = 0, row[i].group_size = 2, row[i].group_rank = i;
        CHECK(row[0].tp == tp && row[1].tp == tp);
        CHECK(hb_h5_write_case(h, &c, &k, r, row, 2, &err) == HB_OK);
    }
    CHECK(hb_h5_close(h, "complete", &err) == HB_OK);
    hb_report *rep = NULL;
    const char *paths[] = {path};
    CHECK_MSG(hb_report_load(paths, 1, &rep, &err) == HB_OK, "%s", err.msg);
    if (!rep) return;
    CHECK(rep->n_groups == 2);
    const hb_rgroup *g1 = NULL, *g2 = NULL;
    for (int i = 0; i < rep->n_groups; i++) {
        if (rep->groups[i].sig.tp == 1) g1 = &rep->groups[i];
        if (rep->groups[i].sig.tp == 2) g2 = &rep->groups[i];
    }
    CHECK(g1 && g2);
    if (!g1 || !g2) return;
    CHECK(g1->n_ok == 2 && g2->n_ok == 2);
    CHECK_NEAR(g1->rate, 100.0, 1e-9); /* one token per 10 ms iteration on each replica */
    CHECK_NEAR(g2->rate, g1->rate / 2, 1e-9);
    CHECK_NEAR(g2->tps[HB_TOK_TOTAL], g1->tps[HB_TOK_TOTAL] / 2, 1e-9);
    CHECK_NEAR(g2->rate_lo, 95.0 / 2, 1e-9);
    CHECK_NEAR(g2->j_per_tok[HB_TOK_TOTAL], 2 * g1->j_per_tok[HB_TOK_TOTAL], 1e-9 * g1->j_per_tok[HB_TOK_TOTAL]);
    hb_report_free(rep);
}

/* dp scaling: a dp=2 train case (each rank its own B x T tokens, 0.3 s a step) against the dp=1
 * replicas of the same case (0.25 s a step): per device 0.25 / 0.3 of the dp=1 rate */
static void test_dp_scaling(void) {
    char path[512];
    path_in("dp-scaling.h5", path, sizeof path);
    hb_device_row d[2];
    device(&d[0], 0, "node01", "cpu", "AMD", "EPYC", 2, 40, 1);
    device(&d[1], 1, "node01", "cpu", "AMD", "EPYC", 2, 40, 1);
    hb_run_meta m = meta("0.6.0", "node01");
    double idle[2] = {NAN, NAN};
    hb_h5 *h = NULL;
    hb_err err;
    CHECK(hb_h5_create(path, 1, &m, d, 2, idle, &h, &err) == HB_OK);
    if (!h) return;
    for (int dp = 2; dp >= 1; dp--) {
        hb_case c = {0};
        c.id = 2 - dp, c.workload = HB_WL_TRAIN, c.dtype = HB_F32, c.batch = 4, c.seq = 64, c.seed = 1;
        c.min_iters = 2, c.max_iters = 100, c.lr = 1e-4f, c.beta1 = 0.9f, c.beta2 = 0.999f, c.eps = 1e-8f;
        c.grad_accum = 1, c.dp = dp;
        CHECK(hb_model_find("tiny", &c.model, NULL) == HB_OK);
        CHECK_MSG(hb_case_resolve(&c, &err) == HB_OK, "%s", err.msg);
        const double t = dp > 1 ? 0.3 : 0.25, tps = 256 / t;
        const spec sp = {0, "ok", 4, {t, t, t, t}, NAN, 4 * t, 0, HB_ENERGY_NO_METER, 0.9 * tps, 1.1 * tps, 0.3, 0.1,
                         {1, 1, 1, 1}, 0, {0}};
        spec s1 = sp;
        s1.rank = 1;
        hb_record r[2];
        hb_summary_row row[2];
        make(&c, &c.cost, &d[0], &sp, &r[0], &row[0]);
        make(&c, &c.cost, &d[1], &s1, &r[1], &row[1]);
        for (int i = 0; i < 2 && dp > 1; i++) row[i].group_id = 0, row[i].group_size = 2, row[i].group_rank = i;
        CHECK(row[0].dp == dp);
        CHECK(hb_h5_write_case(h, &c, &c.cost, r, row, 2, &err) == HB_OK);
    }
    CHECK(hb_h5_close(h, "complete", &err) == HB_OK);
    hb_report *rep = NULL;
    const char *paths[] = {path};
    CHECK_MSG(hb_report_load(paths, 1, &rep, &err) == HB_OK, "%s", err.msg);
    if (!rep) return;
    CHECK(rep->n_groups == 2);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        const double sc = hb_report_dp_scaling(rep, g);
        if (g->sig.dp == 2) CHECK_NEAR(sc, 0.25 / 0.3, 1e-9);
        else CHECK(g->sig.dp == 1 && isnan(sc));
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(hb_report_write(rep, "md", f, &err) == HB_OK);
    fclose(f);
    CHECK_MSG(buf && strstr(buf, "| 0.833 |") && strstr(buf, "| dp 1 |"), "no dp scaling cells in the training table");
    free(buf);
    hb_report_free(rep);
}

static void test_train_cost(void) {
    char path[512], cp[512];
    path_in("train-cost.h5", path, sizeof path);
    hb_device_row d;
    device(&d, 0, "node01", "cuda", "NVIDIA", H100, 10, 700, 132);
    hb_run_meta m = meta("0.5.0", "node01");
    m.mpi_size = 1;
    double idle = NAN;
    hb_h5 *h = NULL;
    hb_err err;
    CHECK(hb_h5_create(path, 1, &m, &d, 1, &idle, &h, &err) == HB_OK);
    if (!h) return;
    hb_case c = {0};
    c.id = 0, c.workload = HB_WL_TRAIN, c.dtype = HB_BF16, c.batch = 4, c.seq = 64, c.seed = 1;
    c.min_iters = 2, c.max_iters = 100, c.lr = 1e-4f, c.beta1 = 0.9f, c.beta2 = 0.999f, c.eps = 1e-8f;
    c.grad_accum = 1, c.dp = 1;
    CHECK(hb_model_find("gpt2-124m", &c.model, NULL) == HB_OK);
    c.model.n_layers = 2;
    CHECK_MSG(hb_case_resolve(&c, &err) == HB_OK, "%s", err.msg);
    CHECK(c.cost.tokens_in == 256);
    const double t = 0.25, tps = 256 / t, fps = c.cost.flops / t;
    /* a train case's rate is its trained tokens/s (the CI in its unit) */
    const spec sp = {0, "ok", 4, {t, t, t, t}, NAN, 4 * t, 0, HB_ENERGY_NO_METER, 0.9 * tps, 1.1 * tps, 0.3, 0.1,
                     {1, 1, 1, 1}, 0, {0}};
    hb_record r;
    hb_summary_row row;
    make(&c, &c.cost, &d, &sp, &r, &row);
    CHECK(hb_h5_write_case(h, &c, &c.cost, &r, &row, 1, &err) == HB_OK);
    CHECK(hb_h5_close(h, "complete", &err) == HB_OK);
    hb_report *rep = NULL;
    const char *paths[] = {path};
    CHECK_MSG(hb_report_load(paths, 1, &rep, &err) == HB_OK, "%s", err.msg);
    hb_prices *prices = NULL;
    CHECK(hb_prices_load(HB_SOURCE_DIR "/results/prices/default.yaml", &prices, &err) == HB_OK);
    if (!rep || !prices) return;
    CHECK(hb_report_price(rep, prices, NULL, &err) == HB_OK);
    CHECK(rep->n_groups == 1 && rep->groups[0].priced);
    const hb_rgroup *g = &rep->groups[0];
    double hr[3], usd[3];
    CHECK(hb_report_train_cost(g, hr, usd));
    CHECK_NEAR(g->tps[HB_TOK_TOTAL], tps, 1e-9 * tps);
    CHECK_NEAR(hr[0], 1e9 / (tps * 3600), 1e-6);
    CHECK_NEAR(hr[1], 1e9 / (1.1 * tps * 3600), 1e-6); /* the fast end of the interval: fewer hours */
    CHECK_NEAR(hr[2], 1e9 / (0.9 * tps * 3600), 1e-6);
    CHECK_NEAR(usd[0], g->usd_per_hour * hr[0], 1e-6 * usd[0]); /* a rental tier: power included */
    /* the markdown and JSON reports carry it */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(hb_report_write(rep, "md", f, &err) == HB_OK);
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "| %.4g [", hr[0]);
    CHECK_MSG(buf && strstr(buf, "## Training cost") && strstr(buf, want), "no training cost row '%s'", want);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK(hb_report_write(rep, "json", f, &err) == HB_OK);
    fclose(f);
    CHECK(buf && strstr(buf, "\"training\": {\"device_hours_per_btok\": "));
    free(buf);
    /* claims: the run from the rate as measured, and from FLOPs per token of a whole model */
    write_text(path_in("claims-run.yaml", cp, sizeof cp),
               "claims:\n"
               "  - id: run-tokens\n    text: t\n    source: s\n    metric: run_device_hours\n"
               "    run: {tokens: 1.0e9, device_hours: 300}\n    a: {workload: train}\n    expect: value <= 300\n"
               "  - id: run-flops\n    text: t\n    source: s\n    metric: run_device_hours\n"
               "    run: {tokens: 1.0e12, flops_per_token: 2.22e11}\n    a: {workload: train, model: gpt2-124m}\n"
               "    expect: value <= 1.0e3\n");
    hb_claims *cs = NULL;
    CHECK_MSG(hb_claims_load(cp, &cs, &err) == HB_OK, "%s", err.msg);
    if (cs) {
        hb_claim_result res;
        f = open_memstream(&buf, &len);
        hb_claims_print(cs, 0, rep, &res, f);
        fclose(f);
        /* 271 h [247, 301]: the interval straddles 300 */
        CHECK_MSG(res.verdict == HB_VERDICT_INCONCLUSIVE, "%s: %s", hb_verdict_name(res.verdict), res.why);
        CHECK_NEAR(res.value, hr[0], 1e-6);
        CHECK_NEAR(res.hi, hr[2], 1e-6);
        CHECK_MSG(strstr(buf, "need 925.9 tokens/s per device") && strstr(buf, "for the run"), "%s", buf);
        free(buf);
        hb_claims_eval(cs, 1, rep, &res, NULL);
        const double want_h = 1e12 * 2.22e11 / (fps * 3600);
        CHECK_NEAR(res.value, want_h, 1e-6 * want_h);
        CHECK(res.verdict == (want_h * 1.0 / 0.9 <= 1e3 ? HB_VERDICT_SUPPORTED : want_h / 1.1 > 1e3 ? HB_VERDICT_REFUTED
                                                                                                  : HB_VERDICT_INCONCLUSIVE));
    }
    hb_claims_free(cs);
    hb_prices_free(prices);
    hb_report_free(rep);
}

/* The shipped worked example results/claims/demo-bf16.yaml decides on CPU-like data: decode with
 * bf16 weights at 2x the f32 tokens/s (CIs +-3%): ratio 2 [1.88, 2.12] >= 1.2, supported; prefill
 * at the same speed in both: ratio 1 [0.94, 1.06] < 1.5, refuted. */
static void test_demo_claims(void) {
    char path[512];
    path_in("demo-bf16.h5", path, sizeof path);
    hb_device_row d;
    device(&d, 0, "ci01", "cpu", "Intel", "Test CPU", 0.04, 5, 2);
    hb_run_meta m = meta("0.5.0", "ci01");
    m.mpi_size = 1;
    double idle = NAN;
    hb_h5 *h = NULL;
    hb_err err;
    CHECK(hb_h5_create(path, 1, &m, &d, 1, &idle, &h, &err) == HB_OK);
    if (!h) return;
    for (int i = 0; i < 4; i++) {
        hb_case c;
        hb_cost k;
        decode_case(&c, &k, i, 1);
        c.dtype = i % 2 ? HB_BF16 : HB_F32;
        double per_iter = 1; /* tokens per iteration */
        if (i >= 2) {
            c.workload = HB_WL_PREFILL;
            k = (hb_cost){.flops = 1e9, .bytes = 1e8, .tokens_in = 128, .mem_bytes = 1000};
            per_iter = 128;
        }
        hb_case_label(&c, c.label, sizeof c.label);
        const double t = i < 2 ? (c.dtype == HB_BF16 ? 0.05 : 0.1) : 0.3;
        const double rate = per_iter / t;
        const spec sp = {0, "ok", 4, {t, t, t, t}, NAN, 4 * t, 0, HB_ENERGY_NO_METER, 0.97 * rate, 1.03 * rate, 0.1, 0.1,
                         {1, 1, 1, 1}, 0, {0}};
        hb_record r;
        hb_summary_row row;
        make(&c, &k, &d, &sp, &r, &row);
        CHECK(hb_h5_write_case(h, &c, &k, &r, &row, 1, &err) == HB_OK);
    }
    CHECK(hb_h5_close(h, "complete", &err) == HB_OK);
    hb_report *rep = NULL;
    const char *paths[] = {path};
    CHECK_MSG(hb_report_load(paths, 1, &rep, &err) == HB_OK, "%s", err.msg);
    hb_claims *cs = NULL;
    CHECK_MSG(hb_claims_load(HB_SOURCE_DIR "/results/claims/demo-bf16.yaml", &cs, &err) == HB_OK, "%s", err.msg);
    CHECK(cs && hb_claims_count(cs) == 2);
    for (int i = 0; rep && cs && i < hb_claims_count(cs); i++) {
        hb_claim_result res;
        hb_claims_eval(cs, i, rep, &res, NULL);
        int decode = !strcmp(hb_claims_id(cs, i), "bf16-decode-faster");
        CHECK_MSG(res.verdict == (decode ? HB_VERDICT_SUPPORTED : HB_VERDICT_REFUTED) && res.n_pairs == 1, "%s: %s (%s)",
                  hb_claims_id(cs, i), hb_verdict_name(res.verdict), res.why);
        CHECK_NEAR(res.value, decode ? 2.0 : 1.0, 1e-9);
        CHECK_NEAR(res.lo, decode ? 0.97 / 0.515 : 0.97 / 1.03, 1e-9); /* [a_lo / b_hi, a_hi / b_lo] */
    }
    hb_claims_free(cs);
    hb_report_free(rep);
}

/* check's exit code: 1 only for a refuted gate claim */
static void test_check_cmd(const char *fa, const char *fb) {
    char prices[512], claims[512], out[512];
    path_in("prices.yaml", prices, sizeof prices);
    path_in("claims.yaml", claims, sizeof claims);
    path_in("check.out", out, sizeof out);
    int saved = dup(1);
    FILE *redir = freopen(out, "w", stdout);
    const char *a1[] = {claims, fa, fb, "--prices", prices};
    int rc1 = run_cmd(hb_cmd_check, a1, 5);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (!redir) return;
    CHECK_MSG(rc1 == 1, "check with a refuted gate claim: rc %d", rc1);
    FILE *f = fopen(out, "r");
    char *text = f ? slurp_stream(f) : NULL;
    if (f) fclose(f);
    if (text) CHECK_CONTAINS(text, "# 6 claims: 2 supported, 1 refuted, 1 inconclusive, 2 untestable; 1 gate claim refuted");
    free(text);
    /* without the gate claim: exit 0 */
    write_text(claims, "claims:\n  - id: x\n    text: t\n    source: s\n    metric: rate\n    a: {workload: train}\n"
                       "    expect: value > 1\n    gate: true\n");
    const char *a2[] = {claims, fa};
    CHECK(run_cmd(hb_cmd_check, a2, 2) == 0);
    /* the shipped claims file loads and gives a verdict for each claim */
    hb_claims *cs = NULL;
    hb_err err;
    CHECK_MSG(hb_claims_load(HB_SOURCE_DIR "/results/claims/press-2025.yaml", &cs, &err) == HB_OK, "%s", err.msg);
    CHECK(hb_claims_count(cs) >= 6);
    hb_claims_free(cs);
    hb_prices *p = NULL;
    CHECK_MSG(hb_prices_load(HB_SOURCE_DIR "/results/prices/default.yaml", &p, &err) == HB_OK, "%s", err.msg);
    if (p) {
        CHECK(hb_prices_match(p, "NVIDIA H100 80GB HBM3", "cuda") != NULL);
        CHECK(hb_prices_match(p, "NVIDIA H200", "cuda") != NULL);
        CHECK(hb_prices_match(p, "NVIDIA B200", "cuda") != NULL);
        CHECK(hb_prices_match(p, "NVIDIA A100-SXM4-80GB", "cuda") != NULL);
        CHECK(hb_prices_match(p, "AMD Instinct MI300X", "hip") != NULL);
        CHECK(hb_prices_match(p, "AMD Instinct MI325X", "hip") != NULL);
        CHECK(hb_prices_match(p, "AMD Instinct MI250X", "hip") != NULL);
        const hb_price_device *cpu = hb_prices_match(p, "AMD EPYC 9654 96-Core Processor", "cpu");
        CHECK(cpu && cpu->unit == HB_PRICE_PER_CORE_HOUR);
        CHECK(hb_prices_match(p, "NVIDIA GeForce RTX 4090", "cuda") == NULL);
    }
    hb_prices_free(p);
}

int main(int argc, char **argv) {
    const char *html_path = argc > 1 ? argv[1] : NULL;
    snprintf(g_dir, sizeof g_dir, "/tmp/hb_test_report.XXXXXX");
    if (!mkdtemp(g_dir)) HB_TEST_SKIP("no temporary directory");
    char fa[512], fb[512], pp[512];
    CHECK(write_file_a(path_in("a.h5", fa, sizeof fa)) == HB_OK);
    CHECK(write_file_b(path_in("b.h5", fb, sizeof fb)) == HB_OK);
    write_text(path_in("prices.yaml", pp, sizeof pp), prices_ok);

    hb_report *rep = NULL;
    hb_prices *prices = NULL;
    hb_err err = {{0}};
    const char *files[2] = {fa, fb};
    hb_status st = hb_report_load(files, 2, &rep, &err);
    CHECK_MSG(st == HB_OK, "%s", err.msg);
    st = hb_prices_load(pp, &prices, &err);
    CHECK_MSG(st == HB_OK, "%s", err.msg);
    if (rep && prices) {
        test_groups(rep);
        test_prices(rep, prices);
        test_claims(rep, prices);
        test_writers(rep, html_path);
    }
    hb_report_free(rep);
    test_html_charts(fa, fb, pp, html_path);
    test_check_cmd(fa, fb);
    test_moe_claim(0);
    test_moe_claim(1);
    test_train_cost();
    test_tp_rows();
    test_dp_scaling();
    test_demo_claims();
    hb_prices_free(prices);
    test_compare();
    test_configurations();
    test_bad_files(fa);
    test_hostile_values(fa);
    test_yaml_bombs();
    test_hostile_datasets(fa);
    test_contained_read(fa);
    test_bad_yaml(fa);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    HB_TEST_END();
}
