/* report_serve.c - the serving section of the Markdown report: one row per serve group with
 * output tokens/s per device against interactivity (1/TPOT), the latency p99s, the SLO verdict,
 * $/M output tokens of the price tier and J per output token with the energy boundary the
 * joules cover. Groups are the report's (REPORT.md); latencies are the mean over the group's
 * devices of each device's last timed stream (/summary), the verdict VALID only when every
 * device's is. The means and the boundary are shared with the HTML report (report_html.c). */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../backends/meter.h" // defines: HB_ENERGY_NO_METER

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

void hb_report_energy_boundary(const hb_report *rep, const hb_rgroup *g, char *buf, size_t len) {
    buf[0] = '\0';
    for (int i = 0; i < g->n_entries; i++) {
        const hb_rentry *e = &rep->entries[g->entries[i]];
        char one[400];
        if (!e->dev || !e->dev->meter[0] || !strcmp(e->dev->meter, "none") || (e->row && (e->row->energy_flags & HB_ENERGY_NO_METER)))
            snprintf(one, sizeof one, "not measured");
        else {
            const char *scope = e->dev->meter_scope[0] ? e->dev->meter_scope : e->dev->meter;
            const int host = e->row && isfinite(e->row->host_energy_j);
            if (!strcmp(e->dev->backend, "cpu")) snprintf(one, sizeof one, "device = host: %.200s", scope);
            else snprintf(one, sizeof one, "device only: %.200s%s", scope, host ? " (host RAPL recorded, not added)" : "");
        }
        if (strstr(buf, one)) continue; /* each distinct boundary once */
        const size_t n = strlen(buf);
        if (n + strlen(one) + 3 < len) snprintf(buf + n, len - n, "%s%s", n ? "; " : "", one);
    }
    if (!buf[0]) snprintf(buf, len, "—");
}

void hb_report_serve_means(const hb_report *rep, const hb_rgroup *g, hb_serve_means *m) {
    memset(m, 0, sizeof *m);
    m->slo = -1;
    double inter = 0, ttft = 0, tpot = 0, itl = 0, rps = 0, rate = 0;
    int slo_ok = 1;
    for (int j = 0; j < g->n_entries && !strcmp(g->sig.workload, "serve"); j++) {
        const hb_summary_row *r = rep->entries[g->entries[j]].row;
        if (strcmp(r->status, "ok")) continue;
        inter += r->interactivity, ttft += r->ttft_p99_s, tpot += r->tpot_p99_s, itl += r->itl_p99_s;
        rps += r->requests_per_s;
        rate += r->arrival_rate; /* Poisson: the rate; rate search: the highest valid one */
        m->preemptions += r->preemptions;
        m->n_ok++;
        if (r->slo_valid >= 0) {
            m->slo = 0;
            slo_ok &= r->slo_valid == 1;
        }
    }
    if (m->slo == 0 && slo_ok) m->slo = 1;
    const double k = m->n_ok ? 1.0 / m->n_ok : NAN;
    m->interactivity = inter * k, m->ttft_p99_s = ttft * k, m->tpot_p99_s = tpot * k, m->itl_p99_s = itl * k;
    m->requests_per_s = rps * k, m->arrival_rate = rate * k;
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
        hb_serve_means sm;
        hb_report_serve_means(rep, g, &sm);
        char b[11][440];
        cell(f, g->label), cell(f, g->device), cell(f, g->backend);
        cell(f, fmt(b[0], sizeof b[0], g->tps[HB_TOK_OUT], "%.1f"));
        cell(f, fmt(b[1], sizeof b[1], sm.interactivity, "%.1f"));
        cell(f, fmt(b[2], sizeof b[2], 1e3 * sm.ttft_p99_s, "%.1f"));
        cell(f, fmt(b[3], sizeof b[3], 1e3 * sm.tpot_p99_s, "%.2f"));
        cell(f, fmt(b[4], sizeof b[4], 1e3 * sm.itl_p99_s, "%.2f"));
        cell(f, fmt(b[5], sizeof b[5], sm.requests_per_s, "%.2f"));
        snprintf(b[6], sizeof b[6], "%lld", sm.preemptions);
        cell(f, b[6]);
        cell(f, fmt(b[10], sizeof b[10], sm.arrival_rate, "%.3g"));
        cell(f, sm.slo < 0 ? "—" : sm.slo ? "VALID" : "**INVALID**");
        cell(f, g->priced ? fmt(b[7], sizeof b[7], g->usd_mtok[HB_TOK_OUT], "%.4g") : "no price");
        cell(f, fmt(b[8], sizeof b[8], g->j_per_tok[HB_TOK_OUT], "%.4g"));
        hb_report_energy_boundary(rep, g, b[9], sizeof b[9]);
        cell(f, b[9]);
        fputs("|\n", f);
    }
}
