/* report_text.c - the report as Markdown (for people), CSV (one row per group, for
 * spreadsheets) and JSON (everything, for pipelines and tests); html is in report_html.c.
 * NaN is written as "—" (md), an empty field (csv) and null (json): never as 0. */
#include "report.h"

#include <math.h>
#include <string.h>

/* ---- number formatting ---- */

const char *hb_report_num(char *buf, size_t len, double v) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, len, "—");
    else if (a >= 1e-3 && a < 1e9) {
        int decimals = 3 - (int)floor(log10(a));
        snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    } else snprintf(buf, len, "%.4g", v);
    return buf;
}

/* fmt NULL: four significant digits (hb_report_num) */
static const char *num(char *buf, size_t len, double v, const char *fmt) {
    if (!fmt) return hb_report_num(buf, len, v);
    if (!isfinite(v)) snprintf(buf, len, "—");
    else snprintf(buf, len, fmt, v);
    return buf;
}

/* v with an SI prefix and unit: 1.234e11 FLOP/s -> "123.4 GFLOP/s" */
static const char *si(char *buf, size_t len, double v, const char *unit) {
    static const char *const pre[] = {"", "k", "M", "G", "T", "P", "E"};
    if (!isfinite(v)) return num(buf, len, v, "%g");
    int p = 0;
    double a = fabs(v);
    while (a >= 1000 && p < 6) a /= 1000, v /= 1000, p++;
    snprintf(buf, len, "%.4g %s%s", v, pre[p], unit);
    return buf;
}

static const char *with_ci(char *buf, size_t len, double v, double lo, double hi, const char *fmt) {
    char a[48], b[48], c[48];
    if (!isfinite(v) || v == 0) return num(buf, len, NAN, "%g");
    if (!isfinite(lo) || !isfinite(hi)) snprintf(buf, len, "%s", num(a, sizeof a, v, fmt));
    else snprintf(buf, len, "%s [%s, %s]", num(a, sizeof a, v, fmt), num(b, sizeof b, lo, fmt), num(c, sizeof c, hi, fmt));
    return buf;
}

static const char *rate_ci(char *buf, size_t len, const hb_rgroup *g) {
    char a[48], b[48], c[48];
    if (!strcmp(g->rate_unit, "tokens/s")) return with_ci(buf, len, g->rate, g->rate_lo, g->rate_hi, NULL);
    if (!isfinite(g->rate)) return num(buf, len, NAN, "%g");
    if (!isfinite(g->rate_lo)) return si(buf, len, g->rate, g->rate_unit);
    snprintf(buf, len, "%s [%s, %s]", si(a, sizeof a, g->rate, g->rate_unit), si(b, sizeof b, g->rate_lo, ""),
             si(c, sizeof c, g->rate_hi, ""));
    return buf;
}

static const char *fp_text(char *buf, size_t len, const hb_rgroup *g) {
    if (g->fp == HB_FP_NONE) snprintf(buf, len, "—");
    else if (g->fp == HB_FP_OK) snprintf(buf, len, "ok (%.2g ≤ %.0e)", g->fp_max_rel, g->fp_tol);
    else snprintf(buf, len, "**MISMATCH** %.2g > %.0e", g->fp_max_rel, g->fp_tol);
    return buf;
}

/* Markdown cell: '|' and newlines would break the table; the text is otherwise as recorded. */
static void md_cell(FILE *f, const char *s) {
    fputs("| ", f);
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
    fputc(' ', f);
}

/* Markdown text outside tables. */
static void md_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

static int same_provenance(const hb_rgroup *a, const hb_rgroup *b) {
    return !strcmp(a->device, b->device) && !strcmp(a->backend, b->backend) && !strcmp(a->gemm_impl, b->gemm_impl) &&
           !strcmp(a->driver, b->driver) && !strcmp(a->runtime, b->runtime) && !strcmp(a->meter, b->meter) &&
           !strcmp(a->versions, b->versions) &&
           !strcmp(a->hosts, b->hosts) && !strcmp(a->files, b->files);
}

/* ---- Markdown ---- */

static void write_md(const hb_report *rep, FILE *f) {
    char b[16][160];
    fprintf(f, "# hetbench report\n\n");
    fprintf(f, "| # | file | hetbench | created (UTC) | status | hosts |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < rep->n_files; i++) {
        const hb_run_meta *m = &rep->files[i].r->meta;
        char n[16], v[128];
        snprintf(n, sizeof n, "%d", i + 1);
        snprintf(v, sizeof v, "%s (%s)", m->version, m->git);
        md_cell(f, n), md_cell(f, rep->files[i].path), md_cell(f, v), md_cell(f, m->created_utc),
            md_cell(f, m->status), md_cell(f, m->hosts);
        fputs("|\n", f);
    }
    fprintf(f, "\n## Results per case and device model\n\n"
               "Rates are per device: the mean over the devices counted; `[lo, hi]` is the 95%% interval (envelope of the "
               "per-device bootstrap CIs). Latency: p50/p95 of the pooled iteration times (decode: per token). "
               "Energy columns use only devices whose energy is valid; the energy column says which.\n\n");
    fprintf(f, "| case | device | backend | configuration | devices | rate [95%% CI] | tokens/s in | tokens/s out | tokens/s total | "
               "p50 ms | p95 ms | MFU | BW util | avg W | J/token out | J/token total | tokens/J | energy | numerics | timing |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        char dev[32], note[192], disagree[360];
        if (g->n_failed) snprintf(dev, sizeof dev, "%d (%d failed)", g->n_ok, g->n_failed);
        else snprintf(dev, sizeof dev, "%d", g->n_ok);
        hb_report_energy_note(g, note, sizeof note);
        md_cell(f, g->label), md_cell(f, g->device), md_cell(f, g->backend), md_cell(f, g->config), md_cell(f, dev);
        snprintf(disagree, sizeof disagree, "**files disagree, not averaged**: %s", g->per_file);
        md_cell(f, g->files_disagree ? disagree : rate_ci(b[0], sizeof b[0], g));
        for (int k = 0; k < HB_TOK_N; k++) md_cell(f, with_ci(b[1 + k], sizeof b[1], g->tps[k], g->tps_lo[k], g->tps_hi[k], NULL));
        md_cell(f, num(b[4], sizeof b[4], g->lat_p50_s * 1e3, NULL));
        md_cell(f, num(b[5], sizeof b[5], g->lat_p95_s * 1e3, NULL));
        md_cell(f, num(b[6], sizeof b[6], g->mfu * 100, "%.3g%%"));
        md_cell(f, num(b[7], sizeof b[7], g->bw_util * 100, "%.3g%%"));
        md_cell(f, num(b[8], sizeof b[8], g->avg_w, NULL));
        md_cell(f, num(b[9], sizeof b[9], g->j_per_tok[HB_TOK_OUT], NULL));
        md_cell(f, num(b[10], sizeof b[10], g->j_per_tok[HB_TOK_TOTAL], NULL));
        md_cell(f, num(b[11], sizeof b[11], g->tok_per_j, NULL));
        md_cell(f, note);
        md_cell(f, fp_text(b[12], sizeof b[12], g));
        char tnote[224];
        hb_report_timing_note(g, tnote, sizeof tnote);
        md_cell(f, tnote);
        fputs("|\n", f);
    }
    if (rep->prices) {
        const char *tier = rep->tier[0] ? rep->tier : rep->prices->default_tier[0] ? rep->prices->default_tier : "(first listed)";
        fprintf(f, "\n## Cost per million tokens\n\nPrices: `%s`, tier `%s`. $/M tokens = $/device-h × 1e6 / (tokens/s × "
                   "3600) + $/kWh × PUE × J/token × 1e6 / 3.6e6 (the energy term is left out when the tier's price includes "
                   "power). `[lo, hi]` follows the throughput interval.\n\n", rep->prices->path, tier);
        fprintf(f, "| case | device | backend | price entry | $/device-h | $/M in | $/M out | $/M total | energy $/M (total) | note |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < rep->n_groups; i++) {
            const hb_rgroup *g = &rep->groups[i];
            md_cell(f, g->label), md_cell(f, g->device), md_cell(f, g->backend);
            if (!g->priced) {
                md_cell(f, "**no price**");
                for (int k = 0; k < 5; k++) md_cell(f, "no price");
                md_cell(f, g->cost_note);
                fputs("|\n", f);
                continue;
            }
            char entry[256];
            snprintf(entry, sizeof entry, "%.120s / %.60s", g->price_name, g->tier);
            md_cell(f, entry);
            md_cell(f, num(b[0], sizeof b[0], g->usd_per_hour, NULL));
            for (int k = 0; k < HB_TOK_N; k++)
                md_cell(f, with_ci(b[1 + k], sizeof b[1], g->usd_mtok[k], g->usd_mtok_lo[k], g->usd_mtok_hi[k], NULL));
            md_cell(f, g->energy_included ? "included" : num(b[4], sizeof b[4], g->usd_mtok_energy[HB_TOK_TOTAL], NULL));
            md_cell(f, g->cost_note);
            fputs("|\n", f);
        }
        fputs("\nPrice sources:\n\n", f);
        for (int i = 0; i < rep->n_groups; i++) {
            const hb_rgroup *g = &rep->groups[i];
            int dup = !g->priced;
            for (int j = 0; j < i && !dup; j++)
                dup = rep->groups[j].priced && !strcmp(rep->groups[j].price_name, g->price_name) &&
                      !strcmp(rep->groups[j].tier, g->tier);
            if (dup) continue;
            fputs("- ", f);
            md_text(f, g->price_name);
            fputs(" / ", f);
            md_text(f, g->tier);
            fputs(": ", f);
            md_text(f, g->price_source);
            fputc('\n', f);
        }
    }
    int n_train = 0;
    for (int i = 0; i < rep->n_groups; i++) n_train += !strcmp(rep->groups[i].sig.workload, "train");
    if (n_train) {
        fprintf(f, "\n## Training cost\n\nDevice-hours per billion trained tokens = 1e9 / (trained tokens/s per device "
                   "× 3600), what a run of 1e9 tokens would take on devices that each train at the measured rate "
                   "(the case's model, layers and batch as measured: a model truncated with `layers` trains faster "
                   "than the whole one)%s. `[lo, hi]` follows the throughput interval. *dp scaling*: a data-parallel "
                   "case's trained tokens/s per device over the dp = 1 case's (same model, batch and device; 1 = "
                   "the all-reduce costs nothing).\n\n",
                rep->prices ? "; $ per billion trained tokens = $/M total × 1e3 (the cost table's formula)" : "");
        fprintf(f, "| case | device | backend | trained tokens/s | MFU | dp scaling | device-h / B tokens | $ / B tokens |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < rep->n_groups; i++) {
            const hb_rgroup *g = &rep->groups[i];
            double h[3], u[3];
            if (!hb_report_train_cost(g, h, u)) continue;
            md_cell(f, g->label), md_cell(f, g->device), md_cell(f, g->backend);
            md_cell(f, with_ci(b[0], sizeof b[0], g->tps[HB_TOK_TOTAL], g->tps_lo[HB_TOK_TOTAL], g->tps_hi[HB_TOK_TOTAL], NULL));
            md_cell(f, num(b[1], sizeof b[1], g->mfu * 100, "%.3g%%"));
            const double sc = hb_report_dp_scaling(rep, g);
            md_cell(f, g->sig.dp <= 1 ? "dp 1" : isfinite(sc) ? num(b[4], sizeof b[4], sc, "%.3g") : "no dp=1 peer");
            md_cell(f, with_ci(b[2], sizeof b[2], h[0], h[1], h[2], NULL));
            md_cell(f, !rep->prices ? "no prices given" : !g->priced ? "no price" : with_ci(b[3], sizeof b[3], u[0], u[1], u[2], NULL));
            fputs("|\n", f);
        }
    }
    hb_report_serve_md(rep, f);
    fprintf(f, "\n## Numerics\n\nOutput fingerprints (Σ|x| and ‖x‖₂ of the first step's output) of every device that ran "
               "the same case with the same seed, against the CPU backend where present (else the first device); "
               "tolerance: f32 1e-3, bf16/f16 5e-2, fp8 1e-1 relative.\n\n");
    int any = 0;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (g->fp == HB_FP_NONE) continue;
        any = 1;
        fprintf(f, "- %s: ", g->fp == HB_FP_MISMATCH ? "**MISMATCH**" : "ok");
        md_text(f, g->label);
        fputs(" on ", f);
        md_text(f, g->device);
        fputs(" (", f);
        md_text(f, g->backend);
        fputs(") vs ", f);
        md_text(f, g->fp_ref);
        fprintf(f, ": max relative difference %.3g (tolerance %.0e)\n", g->fp_max_rel, g->fp_tol);
    }
    if (!any) fprintf(f, "- nothing to compare: every case ran on one device only\n");
    fprintf(f, "\n## Provenance\n\n| device | backend | gemm_impl | driver | runtime | meter | hetbench | hosts | files |\n"
               "|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = same_provenance(g, &rep->groups[j]);
        if (dup) continue;
        md_cell(f, g->device), md_cell(f, g->backend), md_cell(f, g->gemm_impl), md_cell(f, g->driver),
            md_cell(f, g->runtime), md_cell(f, g->meter), md_cell(f, g->versions), md_cell(f, g->hosts), md_cell(f, g->files);
        fputs("|\n", f);
    }
}

/* ---- CSV ---- */

static void csv_str(FILE *f, const char *s, int last) {
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    if (quote) fputc('"', f);
    fputc(last ? '\n' : ',', f);
}

static void csv_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    fputc(',', f);
}

static void write_csv(const hb_report *rep, FILE *f) {
    static const char *const tk[HB_TOK_N] = {"in", "out", "total"};
    fputs("case,workload,model,layers,dtype,batch,prompt,gen,seq,m,n,k,stream_n,stream_op,device,backend,vendor,"
          "devices,failed,rate_unit,rate,rate_ci_lo,rate_ci_hi", f);
    for (int k = 0; k < HB_TOK_N; k++) fprintf(f, ",tokens_per_s_%s,tokens_per_s_%s_lo,tokens_per_s_%s_hi", tk[k], tk[k], tk[k]);
    fputs(",latency_p50_s,latency_p95_s,flops_per_s,bytes_per_s,mfu,bw_util,mem_bytes,avg_w", f);
    for (int k = 0; k < HB_TOK_N; k++) fprintf(f, ",j_per_token_%s", tk[k]);
    fputs(",tokens_per_j,energy_valid_devices,energy_invalid_devices,no_meter_devices,energy_note,price_entry,tier,"
          "usd_per_device_hour", f);
    for (int k = 0; k < HB_TOK_N; k++) fprintf(f, ",usd_per_mtok_%s,usd_per_mtok_%s_lo,usd_per_mtok_%s_hi", tk[k], tk[k], tk[k]);
    fputs(",cost_note,fingerprint,fp_max_rel,fp_tol,fp_reference,gemm_impl,driver,runtime,meter,hetbench,hosts,files,"
          "timing_valid_devices,timing_invalid_devices,timing_not_recorded_devices,timing_flags,timing_note,"
          "threads,seed,temperature,configuration,files_disagree,per_file\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        const hb_sig *s = &g->sig;
        char note[192];
        csv_str(f, g->label, 0), csv_str(f, s->workload, 0), csv_str(f, s->model, 0);
        fprintf(f, "%lld,", (long long)s->layers);
        csv_str(f, s->dtype, 0);
        fprintf(f, "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,", (long long)s->batch, (long long)s->prompt,
                (long long)s->gen, (long long)s->seq, (long long)s->m, (long long)s->n, (long long)s->k,
                (long long)s->stream_n);
        csv_str(f, s->stream_op, 0), csv_str(f, g->device, 0), csv_str(f, g->backend, 0), csv_str(f, g->vendor, 0);
        fprintf(f, "%d,%d,", g->n_ok, g->n_failed);
        csv_str(f, g->rate_unit, 0);
        csv_num(f, g->rate), csv_num(f, g->rate_lo), csv_num(f, g->rate_hi);
        for (int k = 0; k < HB_TOK_N; k++) csv_num(f, g->tps[k]), csv_num(f, g->tps_lo[k]), csv_num(f, g->tps_hi[k]);
        csv_num(f, g->lat_p50_s), csv_num(f, g->lat_p95_s), csv_num(f, g->flops_per_s), csv_num(f, g->bytes_per_s);
        csv_num(f, g->mfu), csv_num(f, g->bw_util), csv_num(f, g->mem_bytes), csv_num(f, g->avg_w);
        for (int k = 0; k < HB_TOK_N; k++) csv_num(f, g->j_per_tok[k]);
        csv_num(f, g->tok_per_j);
        fprintf(f, "%d,%d,%d,", g->n_energy_valid, g->n_energy_invalid, g->n_no_meter);
        hb_report_energy_note(g, note, sizeof note);
        csv_str(f, note, 0);
        csv_str(f, g->priced ? g->price_name : rep->prices ? "no price" : "", 0);
        csv_str(f, g->priced ? g->tier : "", 0);
        csv_num(f, g->priced ? g->usd_per_hour : NAN);
        for (int k = 0; k < HB_TOK_N; k++)
            csv_num(f, g->usd_mtok[k]), csv_num(f, g->usd_mtok_lo[k]), csv_num(f, g->usd_mtok_hi[k]);
        csv_str(f, g->cost_note, 0);
        csv_str(f, g->fp == HB_FP_NONE ? "" : g->fp == HB_FP_OK ? "ok" : "mismatch", 0);
        csv_num(f, g->fp == HB_FP_NONE ? NAN : g->fp_max_rel);
        csv_num(f, g->fp == HB_FP_NONE ? NAN : g->fp_tol);
        csv_str(f, g->fp_ref, 0);
        csv_str(f, g->gemm_impl, 0), csv_str(f, g->driver, 0), csv_str(f, g->runtime, 0), csv_str(f, g->meter, 0);
        csv_str(f, g->versions, 0), csv_str(f, g->hosts, 0), csv_str(f, g->files, 0);
        char tnote[224];
        hb_report_timing_note(g, tnote, sizeof tnote);
        fprintf(f, "%d,%d,%d,%u,", g->n_timing_valid, g->n_timing_invalid, g->n_timing_unknown, g->timing_flags);
        csv_str(f, tnote, 0);
        fprintf(f, "%d,%lld,", g->n_threads, (long long)g->seed);
        csv_num(f, g->temperature);
        csv_str(f, g->config, 0);
        fprintf(f, "%d,", g->files_disagree);
        csv_str(f, g->per_file, 1);
    }
}

/* ---- JSON ---- */

static void js(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void jkey(FILE *f, const char *k, int *first) {
    fputs(*first ? "" : ", ", f);
    *first = 0;
    js(f, k);
    fputs(": ", f);
}

static void jnum(FILE *f, const char *k, double v, int *first) {
    jkey(f, k, first);
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

static void jstr(FILE *f, const char *k, const char *v, int *first) {
    jkey(f, k, first);
    js(f, v);
}

static void jint(FILE *f, const char *k, long long v, int *first) {
    jkey(f, k, first);
    fprintf(f, "%lld", v);
}

static void jtriple(FILE *f, const char *k, const double *v, int *first) {
    jkey(f, k, first);
    fputc('[', f);
    for (int i = 0; i < HB_TOK_N; i++) {
        if (i) fputs(", ", f);
        if (isfinite(v[i])) fprintf(f, "%.17g", v[i]);
        else fputs("null", f);
    }
    fputc(']', f);
}

static void write_json(const hb_report *rep, FILE *f) {
    int first = 1;
    fputs("{", f);
    jstr(f, "report", "hetbench-report/1", &first);
    jkey(f, "files", &first);
    fputc('[', f);
    for (int i = 0; i < rep->n_files; i++) {
        const hb_results *r = rep->files[i].r;
        int ff = 1;
        fputs(i ? ", {" : "{", f);
        jstr(f, "path", rep->files[i].path, &ff), jstr(f, "schema", r->schema, &ff);
        jstr(f, "version", r->meta.version, &ff), jstr(f, "git", r->meta.git, &ff);
        jstr(f, "created_utc", r->meta.created_utc, &ff), jstr(f, "status", r->meta.status, &ff);
        jstr(f, "hosts", r->meta.hosts, &ff), jstr(f, "command_line", r->meta.command_line, &ff);
        fputc('}', f);
    }
    fputc(']', f);
    jkey(f, "prices", &first);
    if (rep->prices) {
        int pf = 1;
        fputc('{', f);
        jstr(f, "path", rep->prices->path, &pf);
        jstr(f, "tier", rep->tier[0] ? rep->tier : rep->prices->default_tier, &pf);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    jint(f, "fingerprint_mismatches", rep->n_fp_mismatch, &first);
    jkey(f, "groups", &first);
    fputs("[\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        const hb_sig *s = &g->sig;
        char note[192];
        int gf = 1;
        fputs(i ? ",\n  {" : "  {", f);
        jstr(f, "case", g->label, &gf), jstr(f, "workload", s->workload, &gf), jstr(f, "model", s->model, &gf);
        jint(f, "layers", s->layers, &gf), jstr(f, "dtype", s->dtype, &gf), jint(f, "batch", s->batch, &gf);
        jint(f, "prompt", s->prompt, &gf), jint(f, "gen", s->gen, &gf), jint(f, "seq", s->seq, &gf);
        jint(f, "m", s->m, &gf), jint(f, "n", s->n, &gf), jint(f, "k", s->k, &gf);
        jint(f, "stream_n", s->stream_n, &gf), jstr(f, "stream_op", s->stream_op, &gf);
        jstr(f, "device", g->device, &gf), jstr(f, "backend", g->backend, &gf), jstr(f, "vendor", g->vendor, &gf);
        jint(f, "devices", g->n_ok, &gf), jint(f, "failed", g->n_failed, &gf);
        jstr(f, "rate_unit", g->rate_unit, &gf), jnum(f, "rate", g->rate, &gf);
        jnum(f, "rate_ci_lo", g->rate_lo, &gf), jnum(f, "rate_ci_hi", g->rate_hi, &gf);
        jtriple(f, "tokens_per_s", g->tps, &gf), jtriple(f, "tokens_per_s_lo", g->tps_lo, &gf);
        jtriple(f, "tokens_per_s_hi", g->tps_hi, &gf);
        jnum(f, "latency_p50_s", g->lat_p50_s, &gf), jnum(f, "latency_p95_s", g->lat_p95_s, &gf);
        jnum(f, "flops_per_s", g->flops_per_s, &gf), jnum(f, "bytes_per_s", g->bytes_per_s, &gf);
        jnum(f, "mfu", g->mfu, &gf), jnum(f, "bw_util", g->bw_util, &gf), jnum(f, "mem_bytes", g->mem_bytes, &gf);
        jnum(f, "peak_flops_per_s", g->peak_flops, &gf), jnum(f, "peak_bytes_per_s", g->peak_bps, &gf);
        jnum(f, "avg_w", g->avg_w, &gf), jtriple(f, "j_per_token", g->j_per_tok, &gf);
        jnum(f, "tokens_per_j", g->tok_per_j, &gf);
        jnum(f, "tokens_per_j_min", g->tok_per_j_min, &gf), jnum(f, "tokens_per_j_max", g->tok_per_j_max, &gf);
        jint(f, "energy_valid_devices", g->n_energy_valid, &gf);
        jint(f, "energy_invalid_devices", g->n_energy_invalid, &gf);
        jint(f, "no_meter_devices", g->n_no_meter, &gf);
        jint(f, "energy_flags", g->energy_flags, &gf);
        hb_report_energy_note(g, note, sizeof note);
        jstr(f, "energy_note", note, &gf);
        jint(f, "timing_valid_devices", g->n_timing_valid, &gf);
        jint(f, "timing_invalid_devices", g->n_timing_invalid, &gf);
        jint(f, "timing_not_recorded_devices", g->n_timing_unknown, &gf);
        jint(f, "timing_flags", (int)g->timing_flags, &gf);
        char tnote[224];
        hb_report_timing_note(g, tnote, sizeof tnote);
        jstr(f, "timing_note", tnote, &gf);
        jint(f, "threads", g->n_threads, &gf);
        jnum(f, "seed", (double)g->seed, &gf);
        jnum(f, "temperature", g->temperature, &gf);
        jstr(f, "configuration", g->config, &gf);
        jint(f, "files_disagree", g->files_disagree, &gf);
        jstr(f, "per_file", g->per_file, &gf);
        jkey(f, "cost", &gf);
        if (!rep->prices) {
            fputs("null", f);
        } else {
            int cf = 1;
            fputc('{', f);
            jkey(f, "priced", &cf);
            fputs(g->priced ? "true" : "false", f);
            jstr(f, "price_entry", g->price_name, &cf), jstr(f, "tier", g->tier, &cf);
            jstr(f, "source", g->price_source, &cf), jnum(f, "usd_per_device_hour", g->usd_per_hour, &cf);
            jtriple(f, "usd_per_mtok", g->usd_mtok, &cf), jtriple(f, "usd_per_mtok_lo", g->usd_mtok_lo, &cf);
            jtriple(f, "usd_per_mtok_hi", g->usd_mtok_hi, &cf);
            jtriple(f, "usd_per_mtok_energy", g->usd_mtok_energy, &cf);
            jstr(f, "note", g->cost_note, &cf);
            fputc('}', f);
        }
        double th[3], tu[3];
        if (hb_report_train_cost(g, th, tu)) { /* train groups only */
            int tf = 1;
            jkey(f, "training", &gf);
            fputc('{', f);
            jnum(f, "device_hours_per_btok", th[0], &tf), jnum(f, "device_hours_per_btok_lo", th[1], &tf);
            jnum(f, "device_hours_per_btok_hi", th[2], &tf), jnum(f, "usd_per_btok", tu[0], &tf);
            jnum(f, "usd_per_btok_lo", tu[1], &tf), jnum(f, "usd_per_btok_hi", tu[2], &tf);
            jnum(f, "dp", (double)g->sig.dp, &tf), jnum(f, "dp_scaling", hb_report_dp_scaling(rep, g), &tf);
            fputc('}', f);
        }
        jstr(f, "fingerprint", g->fp == HB_FP_NONE ? "not compared" : g->fp == HB_FP_OK ? "ok" : "mismatch", &gf);
        jnum(f, "fp_max_rel", g->fp == HB_FP_NONE ? NAN : g->fp_max_rel, &gf);
        jnum(f, "fp_tol", g->fp == HB_FP_NONE ? NAN : g->fp_tol, &gf);
        jstr(f, "fp_reference", g->fp_ref, &gf);
        jstr(f, "gemm_impl", g->gemm_impl, &gf), jstr(f, "driver", g->driver, &gf);
        jstr(f, "runtime", g->runtime, &gf), jstr(f, "meter", g->meter, &gf), jstr(f, "hetbench", g->versions, &gf);
        jstr(f, "hosts", g->hosts, &gf), jstr(f, "files", g->files, &gf);
        fputc('}', f);
    }
    fputs("\n]}\n", f);
}

hb_status hb_report_write(const hb_report *rep, const char *format, FILE *f, hb_err *err) {
    if (!strcmp(format, "md")) write_md(rep, f);
    else if (!strcmp(format, "csv")) write_csv(rep, f);
    else if (!strcmp(format, "json")) write_json(rep, f);
    else if (!strcmp(format, "html")) return hb_report_write_html(rep, f, err);
    else return hb_errf(err, HB_ERR_INPUT, "--format: unknown format '%.40s' (accepted: md, csv, json, html)", format);
    return HB_OK;
}
