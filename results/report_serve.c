/* report_serve.c - the serving section of the Markdown report: one row per serve group with
 * output tokens/s per device against interactivity (1/TPOT), the latency p99s, the SLO verdict,
 * $/M output tokens of the price tier and J per output token with the energy boundary the
 * joules cover. Groups are the report's (REPORT.md); latencies are the mean over the group's
 * devices of each device's last timed stream (/summary), the verdict VALID only when every
 * device's is. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void cell(FILE *f, const char *s) {
    fputs("| ", f);
    for (const char *p = s; *p; p++) {
        if (*p == '|') fputc('\\', f);
        fputc(*p, f);
    }
    fputc(' ', f);
}
static const char *fmt(char *b, size_t n, double v, const char *f) {
    if (!isfinite(v)) snprintf(b, n, "—");
    else snprintf(b, n, f, v);
    return b;
}

/* What the group's joules cover: "device" for a GPU meter, the meter's scope otherwise. */
static void boundary(const hb_report *rep, const hb_rgroup *g, char *b, size_t n) {
    b[0] = '\0';
    for (int i = 0; i < g->n_entries && !b[0]; i++) {
        const hb_rentry *e = &rep->entries[g->entries[i]];
        if (!e->dev) continue;
        const int host = e->row && isfinite(e->row->host_energy_j);
        snprintf(b, n, "%s%s", e->dev->meter_scope[0] ? e->dev->meter_scope : e->dev->meter,
                 host ? " (+ host RAPL recorded separately)" : "");
    }
    if (!b[0]) snprintf(b, n, "—");
}

void hb_report_serve_md(const hb_report *rep, FILE *f) {
    int any = 0;
    for (int i = 0; i < rep->n_groups && !any; i++) any = !strcmp(rep->groups[i].sig.workload, "serve");
    if (!any) return;
    fprintf(f, "\n## Serving\n\nOne row per serve case and device model: output tokens/s per device against "
               "interactivity (tokens/s per user = 1 / TPOT p50), the p99 latencies of each device's last timed "
               "stream (mean over devices), the SLO verdict of Poisson cases (VALID when every device's p99s are "
               "within `slo_ttft_s` / `slo_tpot_s`), $/M output tokens at the price tier above, and J per output "
               "token with what the joules cover.\n\n");
    fprintf(f, "| case | device | backend | out tok/s | tok/s/user | TTFT p99 ms | TPOT p99 ms | ITL p99 ms | "
               "req/s | preemptions | rate req/s | SLO | $/M out | J/token out | energy covers |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (strcmp(g->sig.workload, "serve")) continue;
        double inter = 0, ttft = 0, tpot = 0, itl = 0, rps = 0, rate = 0;
        long long pre = 0;
        int n = 0, slo_any = 0, slo_ok = 1;
        for (int j = 0; j < g->n_entries; j++) {
            const hb_rentry *e = &rep->entries[g->entries[j]];
            const hb_summary_row *r = e->row;
            if (strcmp(r->status, "ok")) continue;
            inter += r->interactivity, ttft += r->ttft_p99_s, tpot += r->tpot_p99_s, itl += r->itl_p99_s;
            rps += r->requests_per_s;
            rate += r->arrival_rate; /* Poisson: the rate; rate search: the highest valid one */
            pre += r->preemptions;
            n++;
            if (r->slo_valid >= 0) {
                slo_any = 1;
                slo_ok &= r->slo_valid == 1;
            }
        }
        char b[11][224];
        const double k = n ? 1.0 / n : NAN;
        cell(f, g->label), cell(f, g->device), cell(f, g->backend);
        cell(f, fmt(b[0], sizeof b[0], g->tps[HB_TOK_OUT], "%.1f"));
        cell(f, fmt(b[1], sizeof b[1], inter * k, "%.1f"));
        cell(f, fmt(b[2], sizeof b[2], 1e3 * ttft * k, "%.1f"));
        cell(f, fmt(b[3], sizeof b[3], 1e3 * tpot * k, "%.2f"));
        cell(f, fmt(b[4], sizeof b[4], 1e3 * itl * k, "%.2f"));
        cell(f, fmt(b[5], sizeof b[5], rps * k, "%.2f"));
        snprintf(b[6], sizeof b[6], "%lld", pre);
        cell(f, b[6]);
        cell(f, fmt(b[10], sizeof b[10], rate * k, "%.3g"));
        cell(f, !slo_any ? "—" : slo_ok ? "VALID" : "**INVALID**");
        cell(f, g->priced ? fmt(b[7], sizeof b[7], g->usd_mtok[HB_TOK_OUT], "%.4g") : "no price");
        cell(f, fmt(b[8], sizeof b[8], g->j_per_tok[HB_TOK_OUT], "%.4g"));
        boundary(rep, g, b[9], sizeof b[9]);
        cell(f, b[9]);
        fputs("|\n", f);
    }
}
