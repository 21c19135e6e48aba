/* report.c - results files -> groups with combined metrics, cost and the fingerprint check.
 *
 * Every /summary row of every file is one entry (one device's measurement of one case). Entries
 * with the same case signature, device model (/devices name) and backend form a group; the
 * rules that combine them are in report.h and, with the reasons, in results/REPORT.md. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../backends/dtype.h"
#include "../backends/meter.h"
#include "../harness/stats.h"

static hb_status nomem(hb_err *err) { return hb_errf(err, HB_ERR_NOMEM, "report: out of memory"); }

/* ---- small helpers ---- */

/* Appends s to a ", "-separated list in buf unless it is already there; marks truncation. */
static void add_distinct(char *buf, size_t len, const char *s) {
    if (!s || !*s) return;
    size_t sl = strlen(s);
    for (const char *p = buf; (p = strstr(p, s)) != NULL; p += sl) {
        int start = p == buf || (p >= buf + 2 && p[-2] == ',' && p[-1] == ' ');
        int end = p[sl] == '\0' || (p[sl] == ',' && p[sl + 1] == ' ');
        if (start && end) return;
    }
    size_t l = strlen(buf);
    if (l >= 3 && !strcmp(buf + l - 3, "...")) return;
    if (l + (l ? 2 : 0) + sl + 1 > len) {
        if (l + 4 <= len) memcpy(buf + l, "...", 4);
        else if (len >= 4) memcpy(buf + len - 4, "...", 4);
        return;
    }
    snprintf(buf + l, len - l, "%s%s", l ? ", " : "", s);
}

static int workload_order(const char *w) {
    static const char *const order[] = {"gemm", "stream", "prefill", "decode", "train", "serve"};
    for (int i = 0; i < HB_ARRAY_LEN(order); i++)
        if (!strcmp(w, order[i])) return i;
    return HB_ARRAY_LEN(order);
}

static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }

int hb_sig_cmp(const hb_sig *a, const hb_sig *b) {
    int c;
    if ((c = workload_order(a->workload) - workload_order(b->workload))) return c;
    if ((c = strcmp(a->workload, b->workload))) return c;
    if ((c = strcmp(a->model, b->model))) return c;
    if ((c = cmp_i64(a->layers, b->layers))) return c;
    if ((c = strcmp(a->dtype, b->dtype))) return c;
    if ((c = strcmp(a->kv_dtype, b->kv_dtype))) return c;
    if ((c = cmp_i64(a->quant_block, b->quant_block))) return c;
    if ((c = cmp_i64(a->batch, b->batch))) return c;
    if ((c = cmp_i64(a->prompt, b->prompt))) return c;
    if ((c = cmp_i64(a->gen, b->gen))) return c;
    if ((c = cmp_i64(a->seq, b->seq))) return c;
    if ((c = cmp_i64(a->m, b->m))) return c;
    if ((c = cmp_i64(a->n, b->n))) return c;
    if ((c = cmp_i64(a->k, b->k))) return c;
    if ((c = strcmp(a->stream_op, b->stream_op))) return c;
    if ((c = cmp_i64(a->isl, b->isl))) return c;
    if ((c = cmp_i64(a->osl, b->osl))) return c;
    if ((c = (a->arrival_rate > b->arrival_rate) - (a->arrival_rate < b->arrival_rate))) return c;
    if ((c = cmp_i64(a->concurrency, b->concurrency))) return c;
    if ((c = cmp_i64(a->requests, b->requests))) return c;
    if ((c = (a->range_ratio > b->range_ratio) - (a->range_ratio < b->range_ratio))) return c;
    if ((c = cmp_i64(a->max_batch_tokens, b->max_batch_tokens))) return c;
    if ((c = cmp_i64(a->max_seqs, b->max_seqs))) return c;
    if ((c = cmp_i64(a->kv_blocks, b->kv_blocks))) return c;
    if ((c = cmp_i64(a->kv_block_size, b->kv_block_size))) return c;
    if ((c = (a->slo_ttft_s > b->slo_ttft_s) - (a->slo_ttft_s < b->slo_ttft_s))) return c;
    if ((c = (a->slo_tpot_s > b->slo_tpot_s) - (a->slo_tpot_s < b->slo_tpot_s))) return c;
    if ((c = cmp_i64(a->tp, b->tp))) return c;
    if ((c = cmp_i64(a->ep, b->ep))) return c;
    if ((c = cmp_i64(a->dp, b->dp))) return c;
    if ((c = cmp_i64(a->recompute, b->recompute))) return c;
    return cmp_i64(a->stream_n, b->stream_n);
}

static void sig_of(const hb_result_case *rc, const hb_summary_row *row, hb_sig *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->workload, sizeof s->workload, "%s", row->workload);
    snprintf(s->model, sizeof s->model, "%s", row->model);
    snprintf(s->dtype, sizeof s->dtype, "%s", row->dtype);
    snprintf(s->kv_dtype, sizeof s->kv_dtype, "%s", row->kv_dtype);
    s->quant_block = row->quant_block;
    if (!strcmp(row->workload, "stream"))
        snprintf(s->stream_op, sizeof s->stream_op, "%s", hb_stream_op_name(rc->c.stream_op));
    s->layers = row->layers;
    s->batch = row->batch;
    s->prompt = row->prompt;
    s->gen = row->gen;
    s->seq = row->seq;
    s->m = row->m;
    s->n = row->n;
    s->k = row->k;
    s->stream_n = row->stream_n;
    s->tp = row->tp > 1 ? row->tp : 1;
    s->ep = row->ep > 1 ? row->ep : 1;
    s->dp = row->dp > 1 ? row->dp : 1;
    s->recompute = !strcmp(row->workload, "train") ? (int)rc->c.recompute : 0;
    if (!strcmp(row->workload, "serve")) {
        const hb_case *c = &rc->c;
        s->isl = c->isl, s->osl = c->osl, s->requests = hb_case_serve_requests(c), s->concurrency = c->concurrency;
        s->max_batch_tokens = c->max_batch_tokens, s->max_seqs = c->max_seqs;
        s->kv_blocks = c->kv_blocks, s->kv_block_size = c->kv_block_size;
        s->range_ratio = c->range_ratio, s->arrival_rate = c->arrival_rate;
        s->slo_ttft_s = c->slo_ttft_s, s->slo_tpot_s = c->slo_tpot_s;
        if (c->arrival_rate != 0) s->concurrency = 0; /* unused by Poisson streams and rate searches */
    }
}

static int entry_ok(const hb_rentry *e) { return !strcmp(e->row->status, "ok"); }

/* NaN sorts after every number and equals itself. */
static int cmp_d(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

/* Group order: signature, then vendor, device, backend, then the configuration. */
static int group_cmp(const hb_rgroup *a, const hb_rgroup *b) {
    int c = hb_sig_cmp(&a->sig, &b->sig);
    if (c) return c;
    if ((c = strcasecmp(a->vendor, b->vendor))) return c;
    if ((c = strcmp(a->device, b->device))) return c;
    if ((c = strcmp(a->backend, b->backend))) return c;
    if ((c = (a->n_threads > b->n_threads) - (a->n_threads < b->n_threads))) return c;
    if ((c = strcmp(a->version, b->version))) return c;
    if ((c = cmp_i64(a->seed, b->seed))) return c;
    if ((c = cmp_d(a->temperature, b->temperature))) return c;
    if ((c = cmp_d(a->cfg_peak_bps, b->cfg_peak_bps))) return c;
    return cmp_d(a->cfg_peak_flops, b->cfg_peak_flops);
}

static int group_qcmp(const void *a, const void *b) { return group_cmp(a, b); }

double hb_report_fp_tol(const char *dtype) {
    if (!strcmp(dtype, "bf16") || !strcmp(dtype, "f16")) return 5e-2;
    if (!strcmp(dtype, "fp8")) return 1e-1;
    return 1e-3;
}

const char *hb_report_flag_names(uint32_t flags, char *buf, size_t len) {
    static const char *const names[] = {"no-meter", "short-window", "sample-gap", "counter-stuck",
                                        "counter-backwards", "ratio-bounds"};
    buf[0] = '\0';
    for (int i = 0; i < 32; i++) {
        if (!(flags & (1u << i))) continue;
        char other[24];
        snprintf(other, sizeof other, "bit%d", i);
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", l ? "+" : "", i < HB_ARRAY_LEN(names) ? names[i] : other);
    }
    return buf;
}

void hb_report_timing_note(const hb_rgroup *g, char *buf, size_t len) {
    char fl[160];
    int n = g->n_timing_valid + g->n_timing_invalid;
    hb_timing_flag_names(g->timing_flags & HB_TIMING_INVALID, fl, sizeof fl);
    if (g->n_ok == 0) snprintf(buf, len, "no result");
    else if (n == 0) snprintf(buf, len, "not recorded");
    else if (g->n_timing_valid == 0) snprintf(buf, len, "invalid: %s", fl);
    else if (g->n_timing_invalid)
        snprintf(buf, len, "%d of %d devices valid (others: %s)", g->n_timing_valid, g->n_ok, fl);
    else if (g->n_timing_unknown) snprintf(buf, len, "%d of %d devices valid (others not recorded)", g->n_timing_valid, g->n_ok);
    else snprintf(buf, len, "valid");
    if (g->timing_flags & HB_TIMING_FITS_IN_CACHE) {
        size_t l = strlen(buf);
        snprintf(buf + l, len > l ? len - l : 0, "; fits in LLC");
    }
}

int hb_report_train_cost(const hb_rgroup *g, double hours_per_btok[3], double usd_per_btok[3]) {
    const int k = HB_TOK_TOTAL; /* a train case's tokens are its trained tokens (tokens in) */
    for (int i = 0; i < 3; i++) hours_per_btok[i] = usd_per_btok[i] = NAN;
    if (strcmp(g->sig.workload, "train") != 0) return 0;
    if (g->tps[k] > 0) {
        hours_per_btok[0] = 1e9 / (g->tps[k] * 3600.0);
        hours_per_btok[1] = g->tps_hi[k] > 0 ? 1e9 / (g->tps_hi[k] * 3600.0) : hours_per_btok[0];
        hours_per_btok[2] = g->tps_lo[k] > 0 ? 1e9 / (g->tps_lo[k] * 3600.0) : hours_per_btok[0];
    }
    if (g->priced) {
        usd_per_btok[0] = g->usd_mtok[k] * 1e3;
        usd_per_btok[1] = g->usd_mtok_lo[k] * 1e3;
        usd_per_btok[2] = g->usd_mtok_hi[k] * 1e3;
    }
    return 1;
}

double hb_report_dp_scaling(const hb_report *rep, const hb_rgroup *g) {
    if (strcmp(g->sig.workload, "train") != 0 || g->sig.dp <= 1 || !(g->tps[HB_TOK_TOTAL] > 0)) return NAN;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *o = &rep->groups[i];
        if (o->sig.dp != 1) continue;
        hb_rgroup peer = *o; /* the peer with g's dp compares equal when only dp differs */
        peer.sig.dp = g->sig.dp;
        if (group_cmp(&peer, g) == 0 && o->tps[HB_TOK_TOTAL] > 0) return g->tps[HB_TOK_TOTAL] / o->tps[HB_TOK_TOTAL];
    }
    return NAN;
}

void hb_report_energy_note(const hb_rgroup *g, char *buf, size_t len) {
    char fl[128];
    int measured = g->n_energy_valid + g->n_energy_invalid;
    if (g->n_ok == 0) snprintf(buf, len, "no result");
    else if (measured == 0) snprintf(buf, len, "not measured (no meter)");
    else if (g->n_energy_valid == 0)
        snprintf(buf, len, "invalid: %s", hb_report_flag_names(g->energy_flags, fl, sizeof fl));
    else if (g->n_energy_invalid || g->n_no_meter)
        snprintf(buf, len, "%d of %d devices (others %s)", g->n_energy_valid, g->n_ok,
                 g->n_energy_invalid ? hb_report_flag_names(g->energy_flags, fl, sizeof fl) : "no-meter");
    else snprintf(buf, len, "valid");
}

static double peak_tflops(const hb_device_row *d, const char *dtype) {
    hb_dtype t;
    if (hb_dtype_parse(dtype, &t) != 0) return NAN;
    switch (t) {
    case HB_F32: return d->peak_tflops_f32;
    case HB_BF16: return d->peak_tflops_bf16;
    case HB_F16: return d->peak_tflops_f16;
    case HB_FP8_E4M3: return d->peak_tflops_fp8;
    default: return NAN;
    }
}

/* Running mean over finite values. */
typedef struct mean_acc {
    double sum;
    int n;
} mean_acc;
static void acc_add(mean_acc *a, double v) {
    if (isfinite(v)) {
        a->sum += v;
        a->n++;
    }
}
static double acc_mean(const mean_acc *a) { return a->n ? a->sum / a->n : NAN; }

/* ---- per-group metrics ---- */

/* A row's share of its rate as one device's: every rank of a tp group reports the group's
 * tokens (B per iteration through all tp devices), so a device's share is rate / tp; ep and dp
 * ranks count their own tokens. Per-device tokens/s is what cost and energy per token need. */
static double per_device(const hb_summary_row *s) { return s->tp > 1 ? 1.0 / (double)s->tp : 1.0; }

/* Each file's interval of the group (envelope of its ok rows' CIs, mean rate): when two
 * files' intervals are disjoint the runs disagree beyond their own noise, and a mean of them
 * would describe neither - g->files_disagree is set and per_file lists them. Rows without a CI
 * cannot show a disagreement (their files are averaged as before). */
static hb_status check_files_agree(const hb_report *rep, hb_rgroup *g, hb_err *err) {
    double *lo = malloc(3 * (size_t)rep->n_files * sizeof *lo);
    int *n = calloc((size_t)rep->n_files, sizeof *n);
    if (!lo || !n) {
        free(lo);
        free(n);
        return nomem(err);
    }
    double *hi = lo + rep->n_files, *sum = hi + rep->n_files;
    int no_ci = 0;
    for (int f = 0; f < rep->n_files; f++) lo[f] = INFINITY, hi[f] = -INFINITY, sum[f] = 0;
    for (int i = 0; i < g->n_entries; i++) {
        const hb_rentry *e = &rep->entries[g->entries[i]];
        if (!entry_ok(e) || !isfinite(e->row->rate)) continue;
        if (!isfinite(e->row->rate_ci_lo) || !isfinite(e->row->rate_ci_hi)) no_ci = 1;
        int f = e->file;
        const double pd = per_device(e->row);
        n[f]++;
        sum[f] += e->row->rate * pd;
        lo[f] = fmin(lo[f], (isfinite(e->row->rate_ci_lo) ? e->row->rate_ci_lo : e->row->rate) * pd);
        hi[f] = fmax(hi[f], (isfinite(e->row->rate_ci_hi) ? e->row->rate_ci_hi : e->row->rate) * pd);
    }
    g->n_files_ok = 0;
    for (int f = 0; f < rep->n_files; f++) g->n_files_ok += n[f] > 0;
    g->files_disagree = 0;
    g->per_file[0] = '\0';
    if (g->n_files_ok >= 2) {
        for (int a = 0; a < rep->n_files; a++)
            for (int b = a + 1; b < rep->n_files && !no_ci; b++)
                if (n[a] && n[b] && (hi[a] < lo[b] || hi[b] < lo[a])) g->files_disagree = 1;
        for (int f = 0; f < rep->n_files; f++) {
            if (!n[f]) continue;
            char v[3][32], item[112];
            snprintf(item, sizeof item, "file %d: %s [%s, %s]", f + 1, hb_report_num(v[0], sizeof v[0], sum[f] / n[f]),
                     hb_report_num(v[1], sizeof v[1], lo[f]), hb_report_num(v[2], sizeof v[2], hi[f]));
            size_t l = strlen(g->per_file);
            if (l + strlen(item) + 3 < sizeof g->per_file)
                snprintf(g->per_file + l, sizeof g->per_file - l, "%s%s", l ? "; " : "", item);
        }
    }
    free(lo);
    free(n);
    return HB_OK;
}

static hb_status compute_group(hb_report *rep, hb_rgroup *g, hb_err *err) {
    mean_acc rate = {0}, tps[HB_TOK_N] = {{0}}, flops = {0}, bytes = {0}, mfu = {0}, bw = {0},
             pkf = {0}, pkb = {0}, mem = {0};
    double lo = INFINITY, hi = -INFINITY;
    int have_ci = 0;
    double e_sum = 0, w_sum = 0, tok_sum[HB_TOK_N] = {0};
    int64_t n_lat = 0;
    g->tok_per_j_min = INFINITY;
    g->tok_per_j_max = -INFINITY;
    for (int i = 0; i < g->n_entries; i++) {
        const hb_rentry *e = &rep->entries[g->entries[i]];
        const hb_summary_row *s = e->row;
        const hb_rfile *f = &rep->files[e->file];
        char ver[160];
        snprintf(ver, sizeof ver, "%s (%s)", f->r->meta.version, f->r->meta.git);
        add_distinct(g->versions, sizeof g->versions, ver);
        add_distinct(g->hosts, sizeof g->hosts, s->host);
        add_distinct(g->files, sizeof g->files, f->path);
        add_distinct(g->gemm_impl, sizeof g->gemm_impl, s->gemm_impl);
        if (e->dev) {
            add_distinct(g->driver, sizeof g->driver, e->dev->driver);
            add_distinct(g->runtime, sizeof g->runtime, e->dev->runtime);
            add_distinct(g->meter, sizeof g->meter, e->dev->meter);
            acc_add(&pkf, peak_tflops(e->dev, s->dtype) * 1e12);
            acc_add(&pkb, e->dev->peak_gbps * 1e9);
        }
        if (!entry_ok(e)) {
            g->n_failed++;
            continue;
        }
        g->n_ok++;
        if (s->timing_valid > 0) g->n_timing_valid++;
        else if (s->timing_valid == 0) g->n_timing_invalid++;
        else g->n_timing_unknown++;
        if (s->timing_valid >= 0) g->timing_flags |= s->timing_flags;
        if (!g->rate_unit[0]) snprintf(g->rate_unit, sizeof g->rate_unit, "%s", s->rate_unit);
        const double pd = per_device(s); /* tp: the device's share of the group's tokens */
        acc_add(&rate, s->rate * pd);
        acc_add(&tps[HB_TOK_IN], s->tokens_per_s_in * pd);
        acc_add(&tps[HB_TOK_OUT], s->tokens_per_s_out * pd);
        acc_add(&tps[HB_TOK_TOTAL], s->tokens_per_s_total * pd);
        acc_add(&flops, s->flops_per_s);
        acc_add(&bytes, s->bytes_per_s);
        acc_add(&mfu, s->mfu);
        acc_add(&bw, s->bw_util);
        acc_add(&mem, (double)e->rc->cost.mem_bytes);
        /* envelope of the per-device CIs; a device without a CI contributes its point */
        double l = (isfinite(s->rate_ci_lo) ? s->rate_ci_lo : s->rate) * pd;
        double h = (isfinite(s->rate_ci_hi) ? s->rate_ci_hi : s->rate) * pd;
        if (isfinite(s->rate_ci_lo) && isfinite(s->rate_ci_hi)) have_ci = 1;
        if (isfinite(l) && l < lo) lo = l;
        if (isfinite(h) && h > hi) hi = h;
        if (e->rec) n_lat += e->rec->n_iters;
        /* energy: valid rows only */
        if (s->energy_flags & HB_ENERGY_NO_METER) {
            g->n_no_meter++;
        } else if (!s->energy_valid || !isfinite(s->energy_j) || !isfinite(s->window_s)) {
            g->n_energy_invalid++;
            g->energy_flags |= s->energy_flags;
        } else {
            g->n_energy_valid++;
            double n = (double)s->n_iters;
            double t[HB_TOK_N] = {e->rc->cost.tokens_in * n * pd, e->rc->cost.tokens_out * n * pd,
                                  (e->rc->cost.tokens_in + e->rc->cost.tokens_out) * n * pd};
            e_sum += s->energy_j;
            w_sum += s->window_s;
            for (int k = 0; k < HB_TOK_N; k++) tok_sum[k] += t[k];
            if (s->energy_j > 0 && t[HB_TOK_TOTAL] > 0) {
                double tpj = t[HB_TOK_TOTAL] / s->energy_j;
                if (tpj < g->tok_per_j_min) g->tok_per_j_min = tpj;
                if (tpj > g->tok_per_j_max) g->tok_per_j_max = tpj;
            }
        }
    }
    g->rate = acc_mean(&rate);
    g->rate_lo = have_ci && isfinite(lo) ? lo : NAN;
    g->rate_hi = have_ci && isfinite(hi) ? hi : NAN;
    HB_TRY(check_files_agree(rep, g, err));
    for (int k = 0; k < HB_TOK_N; k++) {
        g->tps[k] = acc_mean(&tps[k]);
        /* tokens/s of every kind is a fixed multiple of the headline rate within a case */
        double scale = g->rate > 0 ? g->tps[k] / g->rate : NAN;
        g->tps_lo[k] = g->tps[k] > 0 ? g->rate_lo * scale : NAN;
        g->tps_hi[k] = g->tps[k] > 0 ? g->rate_hi * scale : NAN;
    }
    g->flops_per_s = acc_mean(&flops);
    g->bytes_per_s = acc_mean(&bytes);
    g->mfu = acc_mean(&mfu);
    g->bw_util = acc_mean(&bw);
    if (g->files_disagree) { /* not one number: the tables show per_file instead */
        g->rate = g->rate_lo = g->rate_hi = NAN;
        for (int k = 0; k < HB_TOK_N; k++) g->tps[k] = g->tps_lo[k] = g->tps_hi[k] = NAN;
        g->flops_per_s = g->bytes_per_s = g->mfu = g->bw_util = NAN;
    }
    g->mem_bytes = acc_mean(&mem);
    g->peak_flops = acc_mean(&pkf);
    g->peak_bps = acc_mean(&pkb);

    g->avg_w = g->n_energy_valid && w_sum > 0 ? e_sum / w_sum : NAN;
    for (int k = 0; k < HB_TOK_N; k++)
        g->j_per_tok[k] = g->n_energy_valid && tok_sum[k] > 0 ? e_sum / tok_sum[k] : NAN;
    g->tok_per_j = g->n_energy_valid && e_sum > 0 && tok_sum[HB_TOK_TOTAL] > 0 ? tok_sum[HB_TOK_TOTAL] / e_sum : NAN;
    if (!isfinite(g->tok_per_j)) g->tok_per_j_min = g->tok_per_j_max = NAN;

    /* latency: percentiles of the pooled iteration times (per token for decode) */
    g->lat_p50_s = g->lat_p95_s = NAN;
    int llm = !strcmp(g->sig.workload, "prefill") || !strcmp(g->sig.workload, "decode");
    if (llm && n_lat > 0) {
        double *pool = malloc((size_t)n_lat * sizeof *pool);
        if (!pool) return nomem(err);
        int64_t n = 0;
        for (int i = 0; i < g->n_entries; i++) {
            const hb_rentry *e = &rep->entries[g->entries[i]];
            if (!entry_ok(e) || !e->rec) continue;
            memcpy(pool + n, e->rec->iter_seconds, (size_t)e->rec->n_iters * sizeof *pool);
            n += e->rec->n_iters;
        }
        hb_stats st;
        hb_stats_compute(pool, n, &st);
        g->lat_p50_s = st.median;
        g->lat_p95_s = st.p95;
        free(pool);
    }
    for (int k = 0; k < HB_TOK_N; k++) g->usd_mtok[k] = g->usd_mtok_lo[k] = g->usd_mtok_hi[k] = g->usd_mtok_energy[k] = NAN;
    g->usd_per_hour = NAN;
    return HB_OK;
}

/* ---- fingerprints: every entry of a signature against one reference ---- */

static int fp_usable(const hb_rentry *e) {
    return entry_ok(e) && e->rec && isfinite(e->rec->fingerprint[1]) && isfinite(e->rec->fingerprint[2]);
}

static double rel_diff(double a, double b) {
    double m = fmax(fabs(a), fabs(b));
    return m > 0 ? fabs(a - b) / m : 0.0;
}

/* Same function computed: same signature, seed and sampling temperature. The temperatures are
 * compared as bits: an entry must match itself even when a file holds a NaN (with ==, it did
 * not, and the set below came out empty). */
static int same_function(const hb_report *rep, const hb_rentry *a, const hb_rentry *b) {
    return hb_sig_cmp(&rep->groups[a->group].sig, &rep->groups[b->group].sig) == 0 &&
           a->rc->c.seed == b->rc->c.seed &&
           memcmp(&a->rc->c.temperature, &b->rc->c.temperature, sizeof a->rc->c.temperature) == 0;
}

static void check_fingerprints(hb_report *rep) {
    int *done = calloc((size_t)rep->n_entries + 1, sizeof *done);
    if (!done) return; /* the check is skipped, every group stays HB_FP_NONE */
    for (int gi = 0; gi < rep->n_groups; gi++) {
        hb_rgroup *g0 = &rep->groups[gi];
        for (int ii = 0; ii < g0->n_entries; ii++) {
            int first = g0->entries[ii];
            if (done[first] || !fp_usable(&rep->entries[first])) continue;
            /* the set: every usable entry computing the same function; reference: the first on
             * the cpu backend (the specification), else the first in group order */
            int ref = -1, n_set = 0;
            for (int gj = gi; gj < rep->n_groups; gj++) {
                const hb_rgroup *g = &rep->groups[gj];
                if (hb_sig_cmp(&g->sig, &g0->sig) != 0) break;
                for (int j = 0; j < g->n_entries; j++) {
                    int x = g->entries[j];
                    if (done[x] || !fp_usable(&rep->entries[x]) ||
                        !same_function(rep, &rep->entries[first], &rep->entries[x]))
                        continue;
                    n_set++;
                    if (ref < 0 || (strcmp(rep->entries[ref].row->backend, "cpu") != 0 &&
                                    !strcmp(rep->entries[x].row->backend, "cpu")))
                        ref = x;
                }
            }
            if (ref < 0) { /* cannot happen (first is in its own set); never index entries[-1] */
                done[first] = 1;
                continue;
            }
            const hb_rentry *r = &rep->entries[ref];
            char refname[192];
            snprintf(refname, sizeof refname, "%.100s (%s, rank %d, file %d)", r->row->device,
                     r->row->backend, r->row->rank, r->file + 1);
            double tol = hb_report_fp_tol(g0->sig.dtype);
            for (int gj = gi; gj < rep->n_groups; gj++) {
                hb_rgroup *g = &rep->groups[gj];
                if (hb_sig_cmp(&g->sig, &g0->sig) != 0) break;
                for (int j = 0; j < g->n_entries; j++) {
                    int x = g->entries[j];
                    const hb_rentry *e = &rep->entries[x];
                    if (done[x] || !fp_usable(e) || !same_function(rep, &rep->entries[first], e)) continue;
                    done[x] = 1;
                    if (n_set < 2) continue; /* nothing to compare with */
                    double d = fmax(rel_diff(e->rec->fingerprint[1], r->rec->fingerprint[1]),
                                    rel_diff(e->rec->fingerprint[2], r->rec->fingerprint[2]));
                    if (g->fp == HB_FP_NONE) {
                        g->fp = HB_FP_OK;
                        g->fp_max_rel = 0;
                        g->fp_tol = tol;
                        snprintf(g->fp_ref, sizeof g->fp_ref, "%s", refname);
                    }
                    if (d > g->fp_max_rel) g->fp_max_rel = d;
                    if (d > tol && g->fp != HB_FP_MISMATCH) {
                        g->fp = HB_FP_MISMATCH;
                        rep->n_fp_mismatch++;
                    }
                }
            }
        }
    }
    free(done);
}

/* ---- loading and grouping ---- */

static hb_status add_entries(hb_report *rep, int fi, hb_err *err) {
    const hb_results *r = rep->files[fi].r;
    for (int i = 0; i < r->n_rows; i++) {
        const hb_summary_row *row = &r->rows[i];
        const hb_result_case *rc = NULL;
        for (int c = 0; c < r->n_cases && !rc; c++)
            if (r->cases[c].id == row->case_id) rc = &r->cases[c];
        if (!rc)
            return hb_errf(err, HB_ERR_INPUT, "%s: /summary row %d names case %d, which is not in /cases (corrupt file?)",
                           rep->files[fi].path, i, row->case_id);
        hb_rentry *e = &rep->entries[rep->n_entries++];
        memset(e, 0, sizeof *e);
        e->file = fi;
        e->rc = rc;
        e->row = row;
        for (int k = 0; k < rc->n_ranks && !e->rec; k++)
            if (rc->recs[k].rank == row->rank) e->rec = &rc->recs[k];
        for (int d = 0; d < r->n_devices && !e->dev; d++)
            if (r->devices[d].rank == row->rank) e->dev = &r->devices[d];
        e->group = -1;
    }
    return HB_OK;
}

/* Ceilings match when both are unknown or within HB_REPORT_CEILING_TOL of each other. */
static int ceiling_match(double a, double b) {
    if (!isfinite(a) || !isfinite(b)) return !isfinite(a) && !isfinite(b);
    return fabs(a - b) <= HB_REPORT_CEILING_TOL * fmax(fabs(a), fabs(b));
}

/* The group key of an entry: signature, device, backend and the configuration. */
static void key_of(const hb_report *rep, const hb_rentry *e, hb_rgroup *key) {
    memset(key, 0, sizeof *key);
    sig_of(e->rc, e->row, &key->sig);
    snprintf(key->device, sizeof key->device, "%s", e->row->device);
    snprintf(key->backend, sizeof key->backend, "%s", e->row->backend);
    snprintf(key->vendor, sizeof key->vendor, "%s", e->dev ? e->dev->vendor : "");
    snprintf(key->version, sizeof key->version, "%s", rep->files[e->file].r->meta.version);
    key->n_threads = e->dev ? e->dev->n_threads : 0;
    key->seed = (int64_t)e->rc->c.seed;
    key->temperature = e->rc->c.temperature;
    key->cfg_peak_flops = e->dev ? peak_tflops(e->dev, e->row->dtype) * 1e12 : NAN;
    key->cfg_peak_bps = e->dev ? e->dev->peak_gbps * 1e9 : NAN;
}

static int same_group(const hb_rgroup *g, const hb_rgroup *key) {
    return hb_sig_cmp(&g->sig, &key->sig) == 0 && !strcmp(g->device, key->device) &&
           !strcmp(g->backend, key->backend) && g->n_threads == key->n_threads && !strcmp(g->version, key->version) &&
           g->seed == key->seed && memcmp(&g->temperature, &key->temperature, sizeof g->temperature) == 0 &&
           ceiling_match(g->cfg_peak_flops, key->cfg_peak_flops) && ceiling_match(g->cfg_peak_bps, key->cfg_peak_bps);
}

static void config_text(hb_rgroup *g) {
    char t[24] = "threads ?";
    if (g->n_threads > 0) snprintf(t, sizeof t, "%d thread%s", g->n_threads, g->n_threads == 1 ? "" : "s");
    snprintf(g->config, sizeof g->config, "%s, hetbench %.31s, seed %lld", t, g->version[0] ? g->version : "?",
             (long long)g->seed);
    if (!strcmp(g->sig.workload, "decode")) {
        size_t l = strlen(g->config);
        snprintf(g->config + l, sizeof g->config - l, ", temperature %g", (double)g->temperature);
    }
}

static hb_status build_groups(hb_report *rep, hb_err *err) {
    rep->groups = calloc((size_t)(rep->n_entries ? rep->n_entries : 1), sizeof *rep->groups);
    if (!rep->groups) return nomem(err);
    for (int i = 0; i < rep->n_entries; i++) {
        hb_rentry *e = &rep->entries[i];
        hb_rgroup key;
        key_of(rep, e, &key);
        int gi = -1;
        for (int g = 0; g < rep->n_groups && gi < 0; g++)
            if (same_group(&rep->groups[g], &key)) gi = g;
        if (gi < 0) {
            gi = rep->n_groups++;
            rep->groups[gi] = key;
            config_text(&rep->groups[gi]);
            hb_case_label(&e->rc->c, rep->groups[gi].label, sizeof rep->groups[gi].label);
            rep->groups[gi].entries = malloc((size_t)rep->n_entries * sizeof(int));
            if (!rep->groups[gi].entries) return nomem(err);
        } else if (!rep->groups[gi].vendor[0] && key.vendor[0]) {
            snprintf(rep->groups[gi].vendor, sizeof rep->groups[gi].vendor, "%s", key.vendor);
        }
        rep->groups[gi].entries[rep->groups[gi].n_entries++] = i;
    }
    qsort(rep->groups, (size_t)rep->n_groups, sizeof *rep->groups, group_qcmp);
    for (int g = 0; g < rep->n_groups; g++) {
        for (int j = 0; j < rep->groups[g].n_entries; j++) rep->entries[rep->groups[g].entries[j]].group = g;
        HB_TRY(compute_group(rep, &rep->groups[g], err));
    }
    check_fingerprints(rep);
    return HB_OK;
}

/* Deadline of one file's reading (results/SCHEMA.md, "What a reader guarantees"):
 * HETBENCH_READ_TIMEOUT seconds, default 120; 0 reads in this process without one. */
static hb_status read_timeout_s(double *t, hb_err *err) {
    const char *s = getenv("HETBENCH_READ_TIMEOUT");
    *t = 120.0;
    if (!s || !*s) return HB_OK;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < 0)
        return hb_errf(err, HB_ERR_INPUT, "HETBENCH_READ_TIMEOUT: '%.40s' is not a number of seconds (accepted: "
                       "numbers >= 0; 0: no deadline)", s);
    *t = v;
    return HB_OK;
}

hb_status hb_report_load(const char *const *paths, int n_paths, hb_report **out, hb_err *err) {
    *out = NULL;
    if (n_paths < 1) return hb_errf(err, HB_ERR_INPUT, "no results file given (accepted: one or more FILE.h5)");
    double timeout_s;
    HB_TRY(read_timeout_s(&timeout_s, err));
    hb_report *rep = calloc(1, sizeof *rep);
    if (!rep) return nomem(err);
    rep->files = calloc((size_t)n_paths, sizeof *rep->files);
    hb_status st = rep->files ? HB_OK : nomem(err);
    int64_t n_rows = 0;
    for (int i = 0; i < n_paths && st == HB_OK; i++) {
        rep->files[i].path = paths[i];
        st = hb_results_read_contained(paths[i], timeout_s, &rep->files[i].r, err);
        if (st == HB_OK) rep->n_files++;
        /* Combining files needs one schema: the reader accepts hetbench/1 only, so any two
         * files it returns are compatible whatever hetbench version wrote them. */
        if (st == HB_OK && strcmp(rep->files[i].r->schema, rep->files[0].r->schema) != 0)
            st = hb_errf(err, HB_ERR_INPUT, "%s: schema '%s' cannot be combined with %s's '%s'", paths[i],
                         rep->files[i].r->schema, paths[0], rep->files[0].r->schema);
        if (st == HB_OK) n_rows += rep->files[i].r->n_rows;
    }
    if (st == HB_OK) {
        rep->entries = calloc((size_t)(n_rows ? n_rows : 1), sizeof *rep->entries);
        if (!rep->entries) st = nomem(err);
    }
    for (int i = 0; i < rep->n_files && st == HB_OK; i++) st = add_entries(rep, i, err);
    if (st == HB_OK) st = build_groups(rep, err);
    if (st != HB_OK) {
        hb_report_free(rep);
        return st;
    }
    *out = rep;
    return HB_OK;
}

void hb_report_free(hb_report *rep) {
    if (!rep) return;
    for (int i = 0; i < rep->n_groups; i++) free(rep->groups[i].entries);
    free(rep->groups);
    free(rep->entries);
    for (int i = 0; i < rep->n_files; i++) hb_results_free(rep->files[i].r);
    free(rep->files);
    free(rep);
}

/* ---- cost ---- */

static double pick(const hb_pvalue *dev, const hb_pvalue *file) {
    return isfinite(dev->value) ? dev->value : file->value;
}

/* $/M tokens of kind k at tokens/s `tps` (energy estimated from all-in kW follows tps). */
static double group_cost(const hb_rgroup *g, int k, double tps, double kwh, double pue, double all_in_kw,
                         int incl_energy, double *energy_part) {
    double e = 0;
    if (!incl_energy) {
        double j = g->j_per_tok[k];
        if (!isfinite(j) && isfinite(all_in_kw) && tps > 0) j = all_in_kw * 1e3 / tps;
        e = hb_cost_energy_usd_per_mtok(kwh, pue, j);
    }
    if (energy_part) *energy_part = e;
    return hb_cost_usd_per_mtok(g->usd_per_hour, tps, isfinite(e) ? e : 0.0);
}

hb_status hb_report_price(hb_report *rep, const hb_prices *prices, const char *tier, hb_err *err) {
    (void)err;
    rep->prices = prices;
    snprintf(rep->tier, sizeof rep->tier, "%s", tier ? tier : "");
    for (int gi = 0; gi < rep->n_groups; gi++) { /* forget any earlier pricing */
        hb_rgroup *g = &rep->groups[gi];
        g->priced = g->energy_included = g->energy_estimated = 0;
        g->usd_per_hour = NAN;
        g->price_name[0] = g->tier[0] = g->price_source[0] = g->cost_note[0] = '\0';
        for (int k = 0; k < HB_TOK_N; k++)
            g->usd_mtok[k] = g->usd_mtok_lo[k] = g->usd_mtok_hi[k] = g->usd_mtok_energy[k] = NAN;
    }
    if (!prices) return HB_OK;
    for (int gi = 0; gi < rep->n_groups; gi++) {
        hb_rgroup *g = &rep->groups[gi];
        const hb_price_device *d = hb_prices_match(prices, g->device, g->backend);
        if (!d) {
            snprintf(g->cost_note, sizeof g->cost_note, "no price");
            continue;
        }
        const hb_price_tier *t = hb_prices_tier(prices, d, tier && *tier ? tier : NULL);
        if (!t) {
            snprintf(g->cost_note, sizeof g->cost_note, "no price (no tier '%.60s' for %.60s)",
                     tier && *tier ? tier : prices->default_tier, d->name);
            continue;
        }
        double per_hour = t->usd_per_hour.value;
        if (d->unit == HB_PRICE_PER_CORE_HOUR) {
            mean_acc cores = {0};
            for (int j = 0; j < g->n_entries; j++) {
                const hb_rentry *e = &rep->entries[g->entries[j]];
                if (e->dev && e->dev->n_compute_units > 0) acc_add(&cores, e->dev->n_compute_units);
            }
            if (!cores.n) {
                snprintf(g->cost_note, sizeof g->cost_note, "no price (priced per core-hour, core count not recorded)");
                continue;
            }
            per_hour *= acc_mean(&cores);
        }
        g->priced = 1;
        g->usd_per_hour = per_hour;
        snprintf(g->price_name, sizeof g->price_name, "%s", d->name);
        snprintf(g->tier, sizeof g->tier, "%s", t->name);
        snprintf(g->price_source, sizeof g->price_source, "%.240s, %s", t->usd_per_hour.source,
                 t->usd_per_hour.date);
        double kwh = pick(&d->usd_per_kwh, &prices->usd_per_kwh);
        double pue = pick(&d->pue, &prices->pue);
        int missing_energy = 0;
        g->energy_estimated = 0;
        g->energy_included = t->includes_energy;
        for (int k = 0; k < HB_TOK_N; k++) {
            if (!(g->tps[k] > 0)) continue;
            double ep;
            g->usd_mtok[k] = group_cost(g, k, g->tps[k], kwh, pue, d->all_in_kw.value, t->includes_energy, &ep);
            g->usd_mtok_energy[k] = ep;
            if (!isfinite(ep)) missing_energy = 1;
            if (!t->includes_energy && !isfinite(g->j_per_tok[k]) && isfinite(ep)) g->energy_estimated = 1;
            /* the CI follows the throughput CI: more tokens/s, fewer dollars */
            g->usd_mtok_lo[k] = group_cost(g, k, g->tps_hi[k], kwh, pue, d->all_in_kw.value, t->includes_energy, NULL);
            g->usd_mtok_hi[k] = group_cost(g, k, g->tps_lo[k], kwh, pue, d->all_in_kw.value, t->includes_energy, NULL);
        }
        if (t->includes_energy) snprintf(g->cost_note, sizeof g->cost_note, "energy included in the price");
        else if (missing_energy)
            snprintf(g->cost_note, sizeof g->cost_note, "excl. energy (%s)",
                     !isfinite(kwh) || !isfinite(pue) ? "no usd_per_kwh/pue" : "not measured, no all_in_kw");
        else if (g->energy_estimated)
            snprintf(g->cost_note, sizeof g->cost_note, "energy estimated from all_in_kw %.3g kW", d->all_in_kw.value);
        else snprintf(g->cost_note, sizeof g->cost_note, "incl. measured energy x PUE %.3g", pue);
    }
    return HB_OK;
}

double hb_cost_energy_usd_per_mtok(double usd_per_kwh, double pue, double j_per_token) {
    return usd_per_kwh * pue * j_per_token * 1e6 / 3.6e6;
}

double hb_cost_usd_per_mtok(double usd_per_hour, double tokens_per_s, double energy_usd_per_mtok) {
    if (!(tokens_per_s > 0)) return NAN;
    return usd_per_hour * 1e6 / (tokens_per_s * 3600.0) + energy_usd_per_mtok;
}

/* ---- rooflines: one per (file, device model), with that file's ceilings ---- */

hb_status hb_report_rooflines(const hb_report *rep, hb_roofline **out, int *n_out, hb_err *err) {
    *out = NULL;
    *n_out = 0;
    hb_roofline *rl = NULL; /* grown as (file, device) pairs appear: a few per report */
    int n = 0, cap = 0;
    for (int gi = 0; gi < rep->n_groups; gi++) {
        const hb_rgroup *g = &rep->groups[gi];
        for (int j = 0; j < g->n_entries; j++) {
            const hb_rentry *e = &rep->entries[g->entries[j]];
            int r = 0;
            while (r < n && !(rl[r].file == e->file && !strcmp(rl[r].device, g->device) &&
                              !strcmp(rl[r].backend, g->backend)))
                r++;
            if (r < n) continue;
            if (n == cap) {
                hb_roofline *p = realloc(rl, (size_t)(cap = cap ? 2 * cap : 4) * sizeof *rl);
                if (!p) {
                    free(rl);
                    return nomem(err);
                }
                rl = p;
            }
            hb_roofline *x = &rl[n++];
            memset(x, 0, sizeof *x);
            x->file = e->file;
            snprintf(x->device, sizeof x->device, "%s", g->device);
            snprintf(x->backend, sizeof x->backend, "%s", g->backend);
            snprintf(x->vendor, sizeof x->vendor, "%s", g->vendor);
        }
    }
    for (int r = 0; r < n; r++) {
        hb_roofline *x = &rl[r];
        mean_acc bw = {0};
        for (int gi = 0; gi < rep->n_groups; gi++) {
            const hb_rgroup *g = &rep->groups[gi];
            if (strcmp(g->device, x->device) || strcmp(g->backend, x->backend)) continue;
            mean_acc pk = {0}, fl = {0}, by = {0};
            for (int j = 0; j < g->n_entries; j++) {
                const hb_rentry *e = &rep->entries[g->entries[j]];
                if (e->file != x->file) continue;
                if (e->dev) {
                    acc_add(&bw, e->dev->peak_gbps * 1e9);
                    acc_add(&pk, peak_tflops(e->dev, g->sig.dtype) * 1e12);
                }
                if (!entry_ok(e)) continue;
                acc_add(&fl, e->row->flops_per_s);
                acc_add(&by, e->row->bytes_per_s);
            }
            /* a compute ceiling per dtype (stream has none to draw) */
            if (pk.n && strcmp(g->sig.workload, "stream") != 0) {
                int k = 0;
                while (k < x->n_peaks && strcmp(x->peak_dtype[k], g->sig.dtype)) k++;
                if (k == x->n_peaks && k < HB_ROOF_MAX_PEAKS) {
                    snprintf(x->peak_dtype[k], sizeof x->peak_dtype[k], "%s", g->sig.dtype);
                    x->peak_flops[k] = acc_mean(&pk);
                    x->n_peaks++;
                }
            }
            double f = acc_mean(&fl), b = acc_mean(&by);
            if (f > 0 && b > 0 && x->n_points < HB_ROOF_MAX_POINTS) {
                x->intensity[x->n_points] = f / b;
                x->flops_per_s[x->n_points] = f;
                snprintf(x->what[x->n_points], sizeof x->what[0], "%.11s", g->sig.workload);
                x->group[x->n_points] = gi;
                x->n_points++;
            }
        }
        x->peak_bps = acc_mean(&bw);
    }
    *out = rl;
    *n_out = n;
    return HB_OK;
}

hb_status hb_report_set_baseline(hb_report *rep, const char *name, hb_err *err) {
    int exact = -1, sub = -1, n_sub = 0;
    char devices[512] = "";
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        int seen = 0; /* a device model counts once however many cases it ran */
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(rep->groups[j].device, g->device);
        if (seen) continue;
        size_t l = strlen(devices);
        snprintf(devices + l, sizeof devices - l, "%s'%s'", l ? ", " : "", g->device);
        if (!strcasecmp(g->device, name)) exact = i;
        else if (strcasestr(g->device, name)) sub = i, n_sub++;
    }
    int pick = exact >= 0 ? exact : n_sub == 1 ? sub : -1;
    if (pick < 0)
        return hb_errf(err, HB_ERR_INPUT, "--baseline '%s': %s device of the files (devices: %s)", name,
                       n_sub > 1 ? "matches more than one" : "matches no", devices[0] ? devices : "none");
    snprintf(rep->baseline, sizeof rep->baseline, "%s", rep->groups[pick].device);
    snprintf(rep->baseline_backend, sizeof rep->baseline_backend, "%s", rep->groups[pick].backend);
    return HB_OK;
}
