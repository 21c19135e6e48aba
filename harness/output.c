/* run.c - `hetbench run` on one rank (see run.h). */
#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hb_version.h"
#include "measure.h"
#include "stats.h"

#define HB_BOOTSTRAP 2000

static double nan_if_zero(double x) { return x > 0 ? x : NAN; }

void hb_device_row_fill(const hb_backend *be, int rank, hb_device_row *d) {
    memset(d, 0, sizeof *d);
    d->rank = rank;
    gethostname(d->host, sizeof d->host - 1);
    const hb_device_info *i = &be->info;
    snprintf(d->backend, sizeof d->backend, "%s", i->backend);
    snprintf(d->vendor, sizeof d->vendor, "%s", i->vendor);
    snprintf(d->name, sizeof d->name, "%s", i->name);
    snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "%s", i->pci_bus_id);
    snprintf(d->driver, sizeof d->driver, "%s", i->driver);
    snprintf(d->runtime, sizeof d->runtime, "%s", i->runtime);
    snprintf(d->gemm_impl, sizeof d->gemm_impl, "%s", i->gemm_impl);
    d->mem_bytes = i->mem_bytes;
    d->numa_node = -1;
    d->n_compute_units = i->n_compute_units;
    d->n_threads = i->n_threads;
    d->peak_tflops_f32 = d->peak_tflops_bf16 = d->peak_tflops_f16 = d->peak_tflops_fp8 = NAN;
    d->peak_gbps = NAN;
    d->power_limit_w = NAN;
    snprintf(d->meter, sizeof d->meter, "none");
}

static double peak_tflops(const hb_device_row *d, hb_dtype dt) {
    switch (dt) {
    case HB_F32: return d->peak_tflops_f32;
    case HB_BF16: return d->peak_tflops_bf16;
    case HB_F16: return d->peak_tflops_f16;
    case HB_FP8_E4M3: return d->peak_tflops_fp8;
    default: return NAN;
    }
}

void hb_summary_fill(const hb_case *c, const hb_cost *k, const hb_record *r, const hb_device_row *d,
                     hb_summary_row *s) {
    memset(s, 0, sizeof *s);
    s->case_id = c->id;
    s->rank = r->rank;
    snprintf(s->workload, sizeof s->workload, "%s", hb_workload_name(c->workload));
    int tf = c->workload == HB_WL_PREFILL || c->workload == HB_WL_DECODE;
    snprintf(s->model, sizeof s->model, "%s", tf ? c->model.name : "");
    snprintf(s->dtype, sizeof s->dtype, "%s", c->workload == HB_WL_STREAM ? "f32" : hb_dtype_name(c->dtype));
    s->batch = tf ? c->batch : 0;
    s->prompt = tf ? c->prompt : 0;
    s->gen = c->workload == HB_WL_DECODE ? c->gen : 0;
    s->seq = c->seq;
    s->layers = tf ? c->model.n_layers : 0;
    s->m = c->m, s->n = c->n, s->k = c->k;
    s->stream_n = c->stream_n;
    snprintf(s->backend, sizeof s->backend, "%s", d->backend);
    snprintf(s->device, sizeof s->device, "%s", d->name);
    snprintf(s->host, sizeof s->host, "%s", d->host);
    snprintf(s->gemm_impl, sizeof s->gemm_impl, "%s", d->gemm_impl);
    snprintf(s->status, sizeof s->status, "%s", r->status);
    s->n_iters = r->n_iters;
    s->window_s = r->window_s;
    s->energy_valid = r->energy_valid;
    s->energy_flags = r->energy_flags;

    hb_stats st;
    hb_stats_compute(r->iter_seconds, r->n_iters, &st);
    s->iter_s_median = st.median;
    s->iter_s_mean = st.mean;
    s->iter_s_p5 = st.p5;
    s->iter_s_p95 = st.p95;
    s->iter_cv = st.cv;
    double per_s = r->n_iters > 0 ? 1.0 / st.mean : NAN; /* iterations per second */
    s->tokens_per_s_in = k->tokens_in * per_s;
    s->tokens_per_s_out = k->tokens_out * per_s;
    s->tokens_per_s_total = (k->tokens_in + k->tokens_out) * per_s;
    s->flops_per_s = k->flops > 0 ? k->flops * per_s : NAN;
    s->bytes_per_s = k->bytes * per_s;
    s->mfu = s->flops_per_s / (peak_tflops(d, c->dtype) * 1e12);
    s->bw_util = s->bytes_per_s / (d->peak_gbps * 1e9);

    double per_iter;
    switch (c->workload) {
    case HB_WL_GEMM: snprintf(s->rate_unit, sizeof s->rate_unit, "FLOP/s"); per_iter = k->flops; break;
    case HB_WL_STREAM: snprintf(s->rate_unit, sizeof s->rate_unit, "B/s"); per_iter = k->bytes; break;
    case HB_WL_PREFILL: snprintf(s->rate_unit, sizeof s->rate_unit, "tokens/s"); per_iter = k->tokens_in; break;
    default: snprintf(s->rate_unit, sizeof s->rate_unit, "tokens/s"); per_iter = k->tokens_out; break;
    }
    s->rate = per_iter * per_s;
    hb_bootstrap_rate_ci(r->iter_seconds, r->n_iters, per_iter, HB_BOOTSTRAP,
                         hb_rng_u64(c->seed, 0xb007), &s->rate_ci_lo, &s->rate_ci_hi);
    s->latency_p50_s = tf ? st.median : NAN;
    s->latency_p95_s = tf ? st.p95 : NAN;

    double e = isfinite(r->energy_counter_j) ? r->energy_counter_j : r->energy_integral_j;
    double n = (double)r->n_iters;
    s->energy_j = e;
    s->avg_w = e / r->window_s;
    s->j_per_token_out = e / nan_if_zero(k->tokens_out * n);
    s->j_per_token_total = e / nan_if_zero((k->tokens_in + k->tokens_out) * n);
    s->tokens_per_j = (k->tokens_in + k->tokens_out) * n / e;
    if (!(k->tokens_in + k->tokens_out > 0)) s->tokens_per_j = NAN;
    if (r->n_iters == 0) s->window_s = r->window_s;
}

/* ---- ceilings: what MFU and bandwidth utilisation divide by ---- */
static hb_status measure_rate(hb_backend *be, hb_case *c, double *rate, hb_err *err) {
    hb_workload *w = NULL;
    hb_record rec = {0};
    hb_cost k;
    HB_TRY(hb_case_cost(c, &k));
    hb_status s = hb_workload_setup(be, c, &w, err);
    if (s == HB_OK) s = hb_measure_case(be, NULL, w, c, NULL, &rec, err);
    if (s == HB_OK) {
        hb_stats st;
        hb_stats_compute(rec.iter_seconds, rec.n_iters, &st);
        /* the best iteration: a ceiling is what the device can do, not its average */
        *rate = (c->workload == HB_WL_STREAM ? k.bytes : k.flops) / st.min;
    }
    hb_record_free(&rec);
    hb_workload_free(w);
    return s;
}

static hb_status calibrate(hb_backend *be, const hb_plan *plan, hb_device_row *d, int progress,
                           hb_err *err) {
    int used[HB_DTYPE_COUNT] = {0};
    used[HB_F32] = 1;
    for (int i = 0; i < plan->n_cases; i++)
        if (plan->cases[i].workload != HB_WL_STREAM) used[plan->cases[i].dtype] = 1;
    hb_case c = {.seed = 42, .warmup_iters = 1, .min_iters = 3, .min_seconds = 0.3, .max_iters = 1000};
    if (progress) fprintf(stderr, "hetbench: measuring the %s ceilings (gemm, stream)...\n", be->info.backend);
    char src[128] = "measured:";
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!used[dt]) continue;
        c.workload = HB_WL_GEMM;
        c.dtype = (hb_dtype)dt;
        c.m = c.n = c.k = 1024;
        double r = NAN;
        hb_status s = measure_rate(be, &c, &r, err);
        if (s == HB_ERR_UNSUPPORTED) continue;
        HB_TRY(s);
        double tf = r / 1e12;
        if (dt == HB_F32) d->peak_tflops_f32 = tf;
        if (dt == HB_BF16) d->peak_tflops_bf16 = tf;
        if (dt == HB_F16) d->peak_tflops_f16 = tf;
        if (dt == HB_FP8_E4M3) d->peak_tflops_fp8 = tf;
        strncat(src, dt == HB_F32 ? " gemm 1024^3 " : ",", sizeof src - strlen(src) - 1);
        strncat(src, hb_dtype_name((hb_dtype)dt), sizeof src - strlen(src) - 1);
    }
    c.workload = HB_WL_STREAM;
    c.stream_op = HB_STREAM_TRIAD;
    c.stream_n = 1 << 25;
    double bw = NAN;
    HB_TRY(measure_rate(be, &c, &bw, err));
    d->peak_gbps = bw / 1e9;
    strncat(src, "; stream triad 3x128MiB (best iteration)", sizeof src - strlen(src) - 1);
    snprintf(d->peak_source, sizeof d->peak_source, "%s", src);
    return HB_OK;
}

/* ---- output ---- */
static void print_header(FILE *f, const hb_device_row *d) {
    fprintf(f, "# hetbench %s  backend %s  device %s  threads %d\n", HB_VERSION, d->backend, d->name,
            d->n_threads);
    fprintf(f, "# ceilings: %.3f TFLOP/s f32", d->peak_tflops_f32);
    if (isfinite(d->peak_tflops_bf16)) fprintf(f, ", %.3f TFLOP/s bf16", d->peak_tflops_bf16);
    fprintf(f, ", %.2f GB/s  (%s)\n", d->peak_gbps, d->peak_source);
    fprintf(f, "#\n# %4s  %-44s %6s %10s %10s %12s %-8s %7s %9s %8s %6s %6s %9s  %s\n", "id", "case",
            "iters", "median_ms", "p95_ms", "rate", "unit", "ci95_%", "GFLOP/s", "GB/s", "MFU_%", "BW_%",
            "J/token", "status");
}

static void print_row(FILE *f, const char *label, const hb_summary_row *s) {
    double ci = 100.0 * (s->rate_ci_hi - s->rate_ci_lo) / 2 / s->rate;
    fprintf(f, "  %4d  %-44s %6lld %10.3f %10.3f %12.5g %-8s %7.2f %9.2f %8.2f %6.1f %6.1f %9.3g  %s\n",
            s->case_id, label, (long long)s->n_iters, s->iter_s_median * 1e3, s->iter_s_p95 * 1e3, s->rate,
            s->rate_unit, ci, s->flops_per_s / 1e9, s->bytes_per_s / 1e9, 100 * s->mfu, 100 * s->bw_util,
            s->j_per_token_total, s->status);
}

static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

static void json_str(FILE *f, const char *key, const char *v) {
    fprintf(f, ",\"%s\":\"", key);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if ((unsigned char)*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const char *label, const hb_summary_row *s, const hb_record *r) {
    fprintf(f, "{\"case\":%d,\"rank\":%d", s->case_id, s->rank);
    json_str(f, "label", label);
    json_str(f, "workload", s->workload);
    json_str(f, "model", s->model);
    json_str(f, "dtype", s->dtype);
    fprintf(f, ",\"batch\":%lld,\"prompt\":%lld,\"gen\":%lld,\"layers\":%lld,\"m\":%lld,\"n\":%lld,\"k\":%lld",
            (long long)s->batch, (long long)s->prompt, (long long)s->gen, (long long)s->layers,
            (long long)s->m, (long long)s->n, (long long)s->k);
    json_str(f, "backend", s->backend);
    json_str(f, "device", s->device);
    json_str(f, "status", s->status);
    json_str(f, "error", r->error);
    fprintf(f, ",\"n_iters\":%lld", (long long)s->n_iters);
    json_num(f, "iter_s_median", s->iter_s_median);
    json_num(f, "iter_s_p95", s->iter_s_p95);
    json_num(f, "iter_cv", s->iter_cv);
    json_num(f, "rate", s->rate);
    json_str(f, "rate_unit", s->rate_unit);
    json_num(f, "rate_ci_lo", s->rate_ci_lo);
    json_num(f, "rate_ci_hi", s->rate_ci_hi);
    json_num(f, "tokens_per_s_in", s->tokens_per_s_in);
    json_num(f, "tokens_per_s_out", s->tokens_per_s_out);
    json_num(f, "tokens_per_s_total", s->tokens_per_s_total);
    json_num(f, "latency_p50_s", s->latency_p50_s);
    json_num(f, "latency_p95_s", s->latency_p95_s);
    json_num(f, "flops_per_s", s->flops_per_s);
    json_num(f, "bytes_per_s", s->bytes_per_s);
    json_num(f, "mfu", s->mfu);
    json_num(f, "bw_util", s->bw_util);
    json_num(f, "energy_j", s->energy_j);
    json_num(f, "j_per_token_total", s->j_per_token_total);
    fprintf(f, ",\"energy_valid\":%d,\"energy_flags\":%u}\n", s->energy_valid, s->energy_flags);
    fflush(f);
}

static void meta_fill(const hb_plan *plan, const hb_run_opts *o, const hb_device_row *d, hb_run_meta *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->version, sizeof m->version, "%s", HB_VERSION);
    snprintf(m->git, sizeof m->git, "%s", HB_GIT);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->created_utc, sizeof m->created_utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(m->command_line, sizeof m->command_line, "%s", o->command_line ? o->command_line : "");
    m->plan = plan->yaml;
    m->mpi_size = 1;
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(m->slurm_job_id, sizeof m->slurm_job_id, "%s", job ? job : "");
    snprintf(m->hosts, sizeof m->hosts, "%s", d->host);
    snprintf(m->status, sizeof m->status, "incomplete");
}

/* Every case must fit before anything runs or is written. */
static hb_status check_fit(hb_backend *be, const hb_plan *plan, hb_err *err) {
    int64_t free_b = 0, total_b = 0;
    HB_TRY(be->ops->mem_info(be, &free_b, &total_b));
    for (int i = 0; i < plan->n_cases; i++) {
        const hb_case *c = &plan->cases[i];
        hb_cost k;
        HB_TRY(hb_case_cost(c, &k));
        if (k.mem_bytes > free_b) {
            char label[160];
            hb_case_label(c, label, sizeof label);
            return hb_errf(err, HB_ERR_TOO_LARGE,
                           "case %d (%s): needs %.2f GiB of memory, the %s device has %.2f GiB available "
                           "(of %.2f GiB); use fewer layers, a smaller batch or shorter sequences",
                           c->id, label, (double)k.mem_bytes / (1 << 30), be->info.backend,
                           (double)free_b / (1 << 30), (double)total_b / (1 << 30));
        }
    }
    return HB_OK;
}

static const char *pick_backend(const char *want) {
    if (want && strcmp(want, "auto") != 0) return want;
    static const char *const order[] = {"cuda", "hip"};
    for (int i = 0; i < HB_ARRAY_LEN(order); i++) {
        const hb_backend_desc *d = hb_backend_find(order[i]);
        if (d && d->count(NULL) > 0) return order[i];
    }
    return "cpu";
}

hb_status hb_run(const hb_plan *plan, const hb_run_opts *o, int *n_failed, hb_err *err) {
    hb_backend *be = NULL;
    hb_meter *meter = NULL;
    hb_h5 *h5 = NULL;
    hb_device_row dev;
    hb_run_meta meta;
    hb_status s;
    FILE *out = o->out ? o->out : stdout;
    *n_failed = 0;

    const char *bname = pick_backend(o->backend);
    if (!hb_backend_find(bname))
        return hb_errf(err, HB_ERR_INPUT, "--backend: unknown backend '%s' (accepted: auto, cpu, cuda, hip)", bname);
    if ((s = hb_backend_open(bname, 0, &be, err)) != HB_OK) return s;
    if ((s = check_fit(be, plan, err)) != HB_OK) goto out;
    if ((s = hb_meter_open_none(&meter, "no meter for this device yet")) != HB_OK) goto out;
    hb_device_row_fill(be, 0, &dev);
    snprintf(dev.meter, sizeof dev.meter, "%s", meter->name);
    /* refuse an existing or unwritable output before spending time on calibration */
    if (!o->force && access(o->out_path, F_OK) == 0) {
        s = hb_errf(err, HB_ERR_INPUT, "%s: file exists (use --force to overwrite)", o->out_path);
        goto out;
    }
    if (o->calibrate && !(dev.peak_gbps > 0) && (s = calibrate(be, plan, &dev, o->progress, err)) != HB_OK)
        goto out;
    meta_fill(plan, o, &dev, &meta);
    double idle = NAN; /* idle baseline arrives with the vendor meters */
    if ((s = hb_h5_create(o->out_path, o->force, &meta, &dev, 1, &idle, &h5, err)) != HB_OK) goto out;

    hb_measure_opts mo = {.power_hz = o->power_hz, .stop = o->stop};
    if (!o->json) print_header(out, &dev);
    for (int i = 0; i < plan->n_cases; i++) {
        const hb_case *c = &plan->cases[i];
        char label[160];
        hb_case_label(c, label, sizeof label);
        if (o->progress) fprintf(stderr, "\r\033[K[%d/%d] %s ...", i + 1, plan->n_cases, label);
        hb_cost k;
        hb_record rec = {.case_id = c->id, .rank = 0};
        hb_err werr = {{0}};
        hb_workload *w = NULL;
        hb_case_cost(c, &k);
        be->err[0] = 0;
        hb_status ws = hb_workload_setup(be, c, &w, &werr);
        if (ws == HB_OK) ws = hb_measure_case(be, meter, w, c, &mo, &rec, &werr);
        hb_workload_free(w);
        if (o->progress) fprintf(stderr, "\r\033[K");
        if (ws == HB_ERR_INTERRUPTED) {
            hb_record_free(&rec);
            s = hb_errf(err, HB_ERR_INTERRUPTED, "interrupted during case %d (%s); %d of %d cases are in %s",
                        c->id, label, i, plan->n_cases, o->out_path);
            goto out;
        }
        if (ws != HB_OK) {
            snprintf(rec.status, sizeof rec.status, "failed");
            snprintf(rec.error, sizeof rec.error, "%.255s", werr.msg[0] ? werr.msg : hb_status_str(ws));
            for (int j = 0; j < HB_FP_LEN; j++) rec.fingerprint[j] = NAN;
            rec.energy_counter_j = rec.energy_integral_j = NAN;
            rec.energy_flags |= HB_ENERGY_NO_METER;
            (*n_failed)++;
        }
        hb_summary_row row;
        hb_summary_fill(c, &k, &rec, &dev, &row);
        s = hb_h5_write_case(h5, c, &k, &rec, &row, 1, err);
        if (o->json) print_json(out, label, &row, &rec);
        else {
            print_row(out, label, &row);
            if (ws != HB_OK) fprintf(out, "        ^ %s\n", rec.error);
            fflush(out);
        }
        hb_record_free(&rec);
        if (s != HB_OK) goto out;
        if (o->stop && *o->stop) {
            s = hb_errf(err, HB_ERR_INTERRUPTED, "interrupted after case %d; %d of %d cases are in %s", c->id,
                        i + 1, plan->n_cases, o->out_path);
            goto out;
        }
    }
    s = hb_h5_close(h5, "complete", err);
    h5 = NULL;
    if (s == HB_OK && !o->json) fprintf(out, "# results: %s\n", o->out_path);

out:
    if (h5) hb_h5_close(h5, "incomplete", NULL);
    hb_meter_close(meter);
    hb_backend_close(be);
    return s;
}
