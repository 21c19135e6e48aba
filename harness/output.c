/* output.c - the /summary row of a record, and what rank 0 prints: the table (nccl-tests
 * style, units in the column names) or one JSON object per (case, rank). */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/peaks.h" // defines: hb_peaks_find
#include "hb_version.h"
#include "energy.h"
#include "measure.h"
#include "stats.h"
#include "timing.h"

#define HB_BOOTSTRAP 2000


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
    hb_peaks pk; /* GPUs: datasheet ceilings; the CPU's are measured (hb_worker_calibrate) */
    if (strcmp(i->backend, "cpu") != 0 && hb_peaks_find(i->name, i->n_compute_units, &pk) == 0) {
        d->peak_tflops_f32 = pk.tflops_f32;
        d->peak_tflops_bf16 = pk.tflops_bf16;
        d->peak_tflops_f16 = pk.tflops_f16;
        d->peak_tflops_fp8 = pk.tflops_fp8;
        d->peak_gbps = pk.gbps;
        snprintf(d->peak_source, sizeof d->peak_source, "datasheet: %s, %s", pk.model, pk.source);
    }
    d->power_limit_w = NAN;
    d->ref_loop_s = d->ref_loop_s_end = d->ref_drift = NAN;
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
    /* the case columns a workload has no plan key for stay empty (a workload without `dtype`
     * computes in f32); seq, m, n, k and stream_n are 0 where unused */
    const hb_workload_desc *wd = hb_workload_desc_of(c->workload);
    snprintf(s->workload, sizeof s->workload, "%s", wd->name);
    char mname[96];
    snprintf(s->model, sizeof s->model, "%s",
             hb_workload_takes(wd, "model") ? hb_model_display_name(&c->model, mname, sizeof mname) : "");
    snprintf(s->dtype, sizeof s->dtype, "%s", hb_workload_takes(wd, "dtype") ? hb_case_dtype_name(c) : "f32");
    snprintf(s->kv_dtype, sizeof s->kv_dtype, "%s",
             hb_workload_takes(wd, "kv_dtype") ? hb_dtype_name(hb_case_kv_dtype(c)) : "");
    s->quant_block = hb_workload_takes(wd, "quant_block") && c->quant == HB_QUANT_BLOCK ? c->quant_block : 0;
    s->mem_bytes = k->mem_bytes;
    s->batch = hb_workload_takes(wd, "batch") ? c->batch : 0;
    s->prompt = hb_workload_takes(wd, "prompt") ? c->prompt : 0;
    s->gen = hb_workload_takes(wd, "gen") ? c->gen : 0;
    s->seq = c->seq;
    s->layers = hb_workload_takes(wd, "layers") ? c->model.n_layers : 0;
    s->m = c->m, s->n = c->n, s->k = c->k;
    if (hb_workload_takes(wd, "model") && hb_model_validate(&c->model, NULL) == HB_OK) {
        s->total_params = hb_model_n_params(&c->model);
        s->active_params = hb_model_n_active_params(&c->model);
    }
    s->expert_imbalance = r->expert_imbalance;
    s->group_id = r->group_id;
    s->group_size = r->group_size;
    s->group_rank = r->group_rank;
    s->tp = hb_workload_takes(wd, "tp") && c->tp > 1 ? c->tp : 1;
    s->ep = hb_workload_takes(wd, "ep") && c->ep > 1 ? c->ep : 1;
    s->dp = hb_workload_takes(wd, "dp") && c->dp > 1 ? c->dp : 1;
    {
        double it = 0;
        for (int64_t i = 0; i < r->n_iters; i++) it += r->iter_seconds[i];
        s->comm_bytes_per_iter = r->n_iters > 0 ? r->comm_bytes / (double)r->n_iters : NAN;
        s->comm_s_per_iter = r->n_iters > 0 ? r->comm_s / (double)r->n_iters : NAN;
        s->comm_frac = it > 0 ? r->comm_s / it : NAN;
    }
    s->busbw = NAN; /* after the rate, below */
    /* serve: the last timed stream's latencies (NaN elsewhere) */
    double *lat[12] = {&s->ttft_p50_s, &s->ttft_p90_s, &s->ttft_p99_s, &s->tpot_p50_s, &s->tpot_p90_s,
                       &s->tpot_p99_s, &s->itl_p50_s, &s->itl_p90_s, &s->itl_p99_s, &s->e2e_p50_s,
                       &s->e2e_p90_s, &s->e2e_p99_s};
    for (int i = 0; i < 12; i++) *lat[i] = r->serve[HB_SV_TTFT_P50 + i];
    s->interactivity = r->serve[HB_SV_INTERACTIVITY];
    s->requests_per_s = r->serve[HB_SV_REQ_PS];
    s->preemptions = isfinite(r->serve[HB_SV_PREEMPTIONS]) ? (int64_t)r->serve[HB_SV_PREEMPTIONS] : 0;
    s->slo_valid = isfinite(r->serve[HB_SV_SLO]) ? (int32_t)r->serve[HB_SV_SLO] : -1;
    s->arrival_rate = r->serve[HB_SV_RATE];
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
    /* --repeat: the headline is the median of the windows' rates, its interval theirs */
    const double per_iter = hb_headline_per_iter(wd->headline, k);
    double rep_med = NAN, rep_lo = NAN, rep_hi = NAN;
    s->n_reps = r->n_reps > 1 ? r->n_reps : 1;
    s->rep_rate_min = s->rep_rate_max = NAN;
    if (r->n_reps > 1 && per_iter > 0) {
        hb_repeat_rate(r->iter_seconds, r->n_iters, r->rep_iters, r->n_reps, per_iter, HB_BOOTSTRAP,
                       hb_rng_u64(c->seed, 0x4e9), &rep_med, &rep_lo, &rep_hi, &s->rep_rate_min, &s->rep_rate_max);
        if (isfinite(rep_med)) per_s = rep_med / per_iter;
    }
    s->tokens_per_s_in = k->tokens_in * per_s;
    s->tokens_per_s_out = k->tokens_out * per_s;
    s->tokens_per_s_total = (k->tokens_in + k->tokens_out) * per_s;
    s->flops_per_s = k->flops > 0 ? k->flops * per_s : NAN;
    s->bytes_per_s = k->bytes * per_s;
    s->mfu = s->flops_per_s / (peak_tflops(d, c->dtype) * 1e12);
    s->bw_util = s->bytes_per_s / (d->peak_gbps * 1e9);

    snprintf(s->rate_unit, sizeof s->rate_unit, "%s", hb_headline_unit(wd->headline));
    s->rate = per_iter * per_s;
    if (isfinite(rep_med)) {
        s->rate_ci_lo = rep_lo;
        s->rate_ci_hi = rep_hi;
    } else {
        hb_bootstrap_rate_ci(r->iter_seconds, r->n_iters, per_iter, HB_BOOTSTRAP,
                             hb_rng_u64(c->seed, 0xb007), &s->rate_ci_lo, &s->rate_ci_hi);
    }
    if (wd->bus_factor) s->busbw = s->rate * wd->bus_factor(c);
    s->loss_first = r->n_loss > 0 ? r->loss[0] : NAN;
    s->loss_last = r->n_loss > 0 ? r->loss[r->n_loss - 1] : NAN;
    s->latency_p50_s = wd->latency ? st.median : NAN;
    s->latency_p95_s = wd->latency ? st.p95 : NAN;

    hb_energy_summary_fill(k, r, s); /* energy_j, avg_w, J/token, tokens/J, flags, detail */
    if (r->serve[HB_SV_SEARCH_STREAMS] > 1) {
        /* serve rate search: an iteration ran several streams at different rates; the rates are
         * the chosen stream's own, and nothing per token can be formed from the window */
        s->tokens_per_s_out = s->rate = r->serve[HB_SV_OUT_TPS];
        s->tokens_per_s_total = r->serve[HB_SV_TOTAL_TPS];
        s->tokens_per_s_in = s->tokens_per_s_total - s->tokens_per_s_out;
        s->rate_ci_lo = s->rate_ci_hi = s->flops_per_s = s->bytes_per_s = s->mfu = s->bw_util = NAN;
        s->j_per_token_out = s->j_per_token_total = s->tokens_per_j = NAN;
    }
    if (r->n_iters == 0) s->window_s = r->window_s;

    /* the plan keys that tell cases apart */
    snprintf(s->stream_op, sizeof s->stream_op, "%s",
             hb_workload_takes(wd, "stream_op") ? hb_stream_op_name(c->stream_op) : "");
    s->seed = (int64_t)c->seed;
    s->temperature = hb_workload_takes(wd, "temperature") ? (double)c->temperature : NAN;

    /* the timing verdict (harness/timing.h) */
    s->cpu_util = r->cpu_util;
    s->other_cpu_s = r->other_cpu_s;
    s->steal_s = r->steal_s;
    s->ctx_vol = r->ctx_vol;
    s->ctx_invol = r->ctx_invol;
    s->thread_ctx_invol = r->thread_ctx_invol;
    s->loadavg_1m = r->loadavg_1m_end;
    s->cpu_mhz = r->cpu_mhz_end;
    hb_timing_in ti = {
        .cpu_rank = strcmp(d->backend, "cpu") == 0,
        .window_s = strcmp(r->status, "ok") == 0 ? r->window_s : NAN,
        .n_iters = r->n_iters,
        .cpu_util = r->cpu_util, .n_threads = r->n_threads, .thread_ctx_invol = r->thread_ctx_invol,
        .other_cpu_s = r->other_cpu_s, .steal_s = r->steal_s, .n_cpus = r->n_cpus,
        .loadavg_1m = r->loadavg_1m_end, .n_online_cpus = r->n_online_cpus,
        .iter_cv = st.cv, .iter_mean_s = st.mean, .iter_median_s = st.median,
        .mfu = s->mfu, .bw_util = s->bw_util,
        .mem_bytes = k->mem_bytes, .llc_bytes = strcmp(d->backend, "cpu") == 0 ? d->llc_bytes : 0,
    };
    s->timing_flags = hb_timing_assess(&ti, &s->timing_valid);
}

/* ---- output ---- */
void hb_print_header(FILE *f, const hb_device_row *d, int n_ranks) {
    fprintf(f, "# hetbench %s  ranks %d  rank 0: backend %s  device %s  threads %d\n", HB_VERSION, n_ranks,
            d->backend, d->name, d->n_threads);
    fprintf(f, "# ceilings: %.3f TFLOP/s f32", d->peak_tflops_f32);
    if (isfinite(d->peak_tflops_bf16)) fprintf(f, ", %.3f TFLOP/s bf16", d->peak_tflops_bf16);
    fprintf(f, ", %.2f GB/s  (%s)\n", d->peak_gbps, d->peak_source);
    fprintf(f, "# rows: one per case and rank; rates are per device\n");
    fprintf(f, "# timing: valid, or the reasons it is not (SCHEMA.md \"Timing flags\"); BW_%% llc: the case fits in "
               "the last-level cache, no DRAM ceiling applies\n");
    fprintf(f, "#\n# %4s %4s  %-44s %6s %10s %10s %12s %-8s %7s %9s %8s %6s %6s %9s  %-26s %s\n", "id", "rank",
            "case", "iters", "median_ms", "p95_ms", "rate", "unit", "ci95_%", "GFLOP/s", "GB/s", "MFU_%", "BW_%",
            "J/token", "timing", "status");
}

/* "valid", or the invalidating reasons followed by the notes in brackets: "interference,high_cv" */
static const char *timing_word(const hb_summary_row *s, char *buf, int len) {
    char notes[160];
    if (s->timing_valid < 0) return snprintf(buf, (size_t)len, "not-recorded"), buf;
    hb_timing_flag_names(s->timing_flags & HB_TIMING_INVALID, buf, len);
    if (!buf[0]) snprintf(buf, (size_t)len, "valid");
    hb_timing_flag_names(s->timing_flags & ~(uint32_t)HB_TIMING_INVALID, notes, sizeof notes);
    if (notes[0]) {
        size_t l = strlen(buf);
        snprintf(buf + l, (size_t)len - l, " (%s)", notes);
    }
    return buf;
}

void hb_print_row(FILE *f, const char *label, const hb_summary_row *s) {
    double ci = 100.0 * (s->rate_ci_hi - s->rate_ci_lo) / 2 / s->rate;
    char bw[16], tw[256];
    if (s->timing_flags & HB_TIMING_FITS_IN_CACHE) snprintf(bw, sizeof bw, "llc");
    else snprintf(bw, sizeof bw, "%.1f", 100 * s->bw_util);
    fprintf(f, "  %4d %4d  %-44s %6lld %10.3f %10.3f %12.5g %-8s %7.2f %9.2f %8.2f %6.1f %6s %9.3g  %-26s %s\n",
            s->case_id, s->rank, label, (long long)s->n_iters, s->iter_s_median * 1e3, s->iter_s_p95 * 1e3, s->rate,
            s->rate_unit, ci, s->flops_per_s / 1e9, s->bytes_per_s / 1e9, 100 * s->mfu, bw,
            s->j_per_token_total, timing_word(s, tw, sizeof tw), s->status);
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

void hb_print_json(FILE *f, const char *label, const hb_summary_row *s, const hb_record *r) {
    fprintf(f, "{\"case\":%d,\"rank\":%d", s->case_id, s->rank);
    json_str(f, "label", label);
    json_str(f, "workload", s->workload);
    json_str(f, "model", s->model);
    json_str(f, "dtype", s->dtype);
    json_str(f, "kv_dtype", s->kv_dtype);
    fprintf(f, ",\"batch\":%lld,\"prompt\":%lld,\"gen\":%lld,\"layers\":%lld,\"m\":%lld,\"n\":%lld,\"k\":%lld",
            (long long)s->batch, (long long)s->prompt, (long long)s->gen, (long long)s->layers,
            (long long)s->m, (long long)s->n, (long long)s->k);
    json_str(f, "backend", s->backend);
    json_str(f, "device", s->device);
    json_str(f, "status", s->status);
    json_str(f, "error", r->error);
    fprintf(f, ",\"n_iters\":%lld", (long long)s->n_iters);
    json_num(f, "iter_s_median", s->iter_s_median);
    json_num(f, "iter_s_mean", s->iter_s_mean);
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
    fprintf(f, ",\"mem_bytes\":%lld", (long long)s->mem_bytes);
    json_num(f, "loss_first", s->loss_first);
    json_num(f, "loss_last", s->loss_last);
    fprintf(f, ",\"energy_valid\":%d,\"energy_flags\":%u", s->energy_valid, s->energy_flags);
    char names[256];
    fprintf(f, ",\"timing_valid\":%d,\"timing_flags\":%u", s->timing_valid, s->timing_flags);
    json_str(f, "timing_reasons", hb_timing_flag_names(s->timing_flags, names, sizeof names));
    json_num(f, "cpu_util", s->cpu_util);
    json_num(f, "other_cpu_s", s->other_cpu_s);
    json_num(f, "steal_s", s->steal_s);
    fprintf(f, ",\"ctx_vol\":%lld,\"ctx_invol\":%lld,\"thread_ctx_invol\":%lld", (long long)s->ctx_vol,
            (long long)s->ctx_invol, (long long)s->thread_ctx_invol);
    json_num(f, "loadavg_1m", s->loadavg_1m);
    json_num(f, "cpu_mhz", s->cpu_mhz);
    json_str(f, "stream_op", s->stream_op);
    fprintf(f, ",\"seed\":%lld", (long long)s->seed);
    json_num(f, "temperature", s->temperature);
    fprintf(f, ",\"n_reps\":%d", s->n_reps);
    json_num(f, "rep_rate_min", s->rep_rate_min);
    json_num(f, "rep_rate_max", s->rep_rate_max);
    if (!strcmp(s->workload, "serve")) { /* the last timed stream's latencies (SCHEMA.md) */
        const struct { const char *k; double v; } sv[] = {
            {"ttft_p50_s", s->ttft_p50_s}, {"ttft_p90_s", s->ttft_p90_s}, {"ttft_p99_s", s->ttft_p99_s},
            {"tpot_p50_s", s->tpot_p50_s}, {"tpot_p90_s", s->tpot_p90_s}, {"tpot_p99_s", s->tpot_p99_s},
            {"itl_p50_s", s->itl_p50_s}, {"itl_p90_s", s->itl_p90_s}, {"itl_p99_s", s->itl_p99_s},
            {"e2e_p50_s", s->e2e_p50_s}, {"e2e_p90_s", s->e2e_p90_s}, {"e2e_p99_s", s->e2e_p99_s},
            {"interactivity", s->interactivity}, {"requests_per_s", s->requests_per_s}};
        for (size_t i = 0; i < sizeof sv / sizeof sv[0]; i++) json_num(f, sv[i].k, sv[i].v);
        fprintf(f, ",\"preemptions\":%lld,\"slo_valid\":%d", (long long)s->preemptions, (int)s->slo_valid);
        json_num(f, "arrival_rate", s->arrival_rate);
    }
    fputs("}\n", f);
    fflush(f);
}

