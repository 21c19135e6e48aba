/* report_html.c - the report as one self-contained HTML file: inline CSS and inline SVG charts,
 * no script, no network, no external font. Every string that comes from a results or prices
 * file goes through esc() (HTML injection from a device name or a host name is not possible).
 *
 * Charts: tokens/J and $/M tokens per device and case (bars, whiskers = interval), throughput
 * vs per-token latency across decode batch sizes (one line per device and case family), power
 * over time per case (one line per device), achieved FLOP/s vs the roofline of each device. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BARS 60
#define MAX_SERIES 24
#define MAX_POWER_CHARTS 24

/* ---- escaping ---- */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') fputc('?', f);
            else fputc(*s, f);
        }
    }
}

/* Text cut to n characters (at a UTF-8 boundary), with an ellipsis. */
static const char *cut(const char *s, int n, char *buf, size_t len) {
    size_t l = strlen(s);
    if ((int)l <= n || (size_t)n + 4 > len) {
        snprintf(buf, len, "%s", s);
        return buf;
    }
    int i = n;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80) i--;
    snprintf(buf, len, "%.*s…", i, s);
    return buf;
}

/* ---- colours: one per vendor; CPU rows of a vendor are drawn lighter ---- */

static const char *vendor_colour(const char *vendor) {
    if (strcasestr(vendor, "nvidia")) return "#76b900";
    if (strcasestr(vendor, "amd") || strcasestr(vendor, "advanced micro")) return "#d6202a";
    if (strcasestr(vendor, "intel")) return "#0071c5";
    if (strcasestr(vendor, "arm") || strcasestr(vendor, "ampere")) return "#8a4fc9";
    return "#6b6b6b";
}

static const char *const dashes[] = {"", "6 3", "2 3", "8 3 2 3", "1 2"};

/* ---- axes ---- */

typedef struct axis {
    double lo, hi;
    int log;
    char label[96];
} axis;

typedef struct frame {
    double x0, x1, y0, y1; /* plot area: x0 left, x1 right, y0 bottom, y1 top (pixels) */
} frame;

static double ax_pos(const axis *a, double v) {
    if (a->log) return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return (v - a->lo) / (a->hi - a->lo);
}
static double px(const frame *fr, const axis *a, double v) { return fr->x0 + ax_pos(a, v) * (fr->x1 - fr->x0); }
static double py(const frame *fr, const axis *a, double v) { return fr->y0 - ax_pos(a, v) * (fr->y0 - fr->y1); }

/* Compact tick text: SI prefixes above 1000. */
static const char *tick_text(char *b, size_t n, double v) {
    static const char *const pre[] = {"", "k", "M", "G", "T", "P", "E"};
    double a = fabs(v);
    int p = 0;
    if (v == 0) snprintf(b, n, "0");
    else if (a < 1e-3) snprintf(b, n, "%.0e", v);
    else {
        while (a >= 1000 && p < 6) a /= 1000, v /= 1000, p++;
        snprintf(b, n, "%g%s", (double)(float)v, pre[p]);
    }
    return b;
}

/* "989.5 TFLOP/s" */
static const char *si_text(char *b, size_t n, double v, const char *unit) {
    static const char *const pre[] = {"", "k", "M", "G", "T", "P", "E"};
    int p = 0;
    while (fabs(v) >= 1000 && p < 6) v /= 1000, p++;
    snprintf(b, n, "%.4g %s%s", v, pre[p], unit);
    return b;
}

/* Fits a to the finite values (positive ones for a log axis). */
static void axis_fit(axis *a, const double *v, int n, int want_log, int from_zero) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (want_log && v[i] <= 0)) continue;
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    if (!isfinite(lo)) lo = want_log ? 1 : 0, hi = want_log ? 10 : 1;
    a->log = want_log;
    if (want_log) {
        a->lo = pow(10, floor(log10(lo)));
        a->hi = pow(10, ceil(log10(hi)));
        if (a->hi <= a->lo) a->hi = a->lo * 10;
    } else {
        if (from_zero && lo > 0) lo = 0;
        if (hi <= lo) hi = lo + (lo != 0 ? fabs(lo) : 1);
        double span = hi - lo;
        a->lo = lo - (from_zero ? 0 : span * 0.05);
        a->hi = hi + span * 0.08;
    }
}

static int ticks(const axis *a, double *t, int max) {
    int n = 0;
    if (a->log) {
        int d0 = (int)floor(log10(a->lo) + 1e-9), d1 = (int)ceil(log10(a->hi) - 1e-9);
        int dense = d1 - d0 <= 2;
        for (int d = d0; d <= d1 && n < max; d++) {
            double base = pow(10, d);
            if (base >= a->lo * 0.999 && base <= a->hi * 1.001) t[n++] = base;
            if (dense)
                for (int m = 2; m <= 5 && n < max; m += 3)
                    if (base * m > a->lo && base * m < a->hi) t[n++] = base * m;
        }
        return n;
    }
    double raw = (a->hi - a->lo) / 5, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    for (double v = ceil(a->lo / step) * step; v <= a->hi + step * 1e-9 && n < max; v += step)
        t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

static void draw_axes(FILE *f, const frame *fr, const axis *ax, const axis *ay, int y_ticks) {
    double t[32];
    char b[32];
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"plot\"/>\n", fr->x0, fr->y1,
            fr->x1 - fr->x0, fr->y0 - fr->y1);
    int n = ticks(ax, t, 32);
    for (int i = 0; i < n; i++) {
        double x = px(fr, ax, t[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x, fr->y1, x, fr->y0);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>\n", x, fr->y0 + 14,
                tick_text(b, sizeof b, t[i]));
    }
    n = y_ticks ? ticks(ay, t, 32) : 0;
    for (int i = 0; i < n; i++) {
        double y = py(fr, ay, t[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", fr->x0, y, fr->x1, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n", fr->x0 - 4, y + 4,
                tick_text(b, sizeof b, t[i]));
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"middle\">", (fr->x0 + fr->x1) / 2, fr->y0 + 32);
    esc(f, ax->label);
    fprintf(f, "</text>\n<text transform=\"translate(%.1f %.1f) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">",
            fr->x0 - 48, (fr->y0 + fr->y1) / 2);
    esc(f, ay->label);
    fputs("</text>\n", f);
}

static void svg_open(FILE *f, int w, int h, const char *title) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
               "<title>", w, h, w, h);
    esc(f, title);
    fputs("</title>\n", f);
}

/* ---- bars ---- */

typedef struct bar {
    char label[320];
    const char *colour;
    double light;           /* fill opacity */
    double v, lo, hi;       /* lo/hi NaN: no whisker */
    char note[64];          /* shown instead of a bar when v is NaN */
} bar;

static void bar_chart(FILE *f, const char *title, const char *xlabel, const bar *b, int n, const char *whisker_meaning) {
    if (n == 0) {
        fputs("<p class=\"none\">nothing to show</p>\n", f);
        return;
    }
    const int w = 940, ml = 400, mr = 30, mt = 10, row = 22;
    int h = mt + n * row + 50;
    frame fr = {ml, w - mr, mt + n * row, mt};
    double vals[3 * MAX_BARS] = {0};
    int nv = 0;
    for (int i = 0; i < n; i++) vals[nv++] = b[i].v, vals[nv++] = b[i].lo, vals[nv++] = b[i].hi;
    axis ax, ay = {0, 1, 0, ""};
    axis_fit(&ax, vals, nv, 0, 1);
    snprintf(ax.label, sizeof ax.label, "%s", xlabel);
    svg_open(f, w, h, title);
    draw_axes(f, &fr, &ax, &ay, 0);
    for (int i = 0; i < n; i++) {
        double y = mt + i * row + 4, x0 = px(&fr, &ax, 0), hgt = row - 8;
        char lab[160];
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"lab\" text-anchor=\"end\"><title>", ml - 6, y + hgt - 3);
        esc(f, b[i].label);
        fputs("</title>", f);
        esc(f, cut(b[i].label, 60, lab, sizeof lab));
        fputs("</text>\n", f);
        if (!isfinite(b[i].v)) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"na\">", x0 + 4, y + hgt - 3);
            esc(f, b[i].note[0] ? b[i].note : "not measured");
            fputs("</text>\n", f);
            continue;
        }
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"><title>",
                x0, y, fmax(px(&fr, &ax, b[i].v) - x0, 0.5), hgt, b[i].colour, b[i].light);
        esc(f, b[i].label);
        fprintf(f, ": %.4g", b[i].v);
        if (isfinite(b[i].lo) && isfinite(b[i].hi)) fprintf(f, " [%.4g, %.4g]", b[i].lo, b[i].hi);
        fputs("</title></rect>\n", f);
        if (isfinite(b[i].lo) && isfinite(b[i].hi)) {
            double a = px(&fr, &ax, b[i].lo), c = px(&fr, &ax, b[i].hi), ym = y + hgt / 2;
            fprintf(f, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" class=\"whisker\"/>\n", a, ym, c, a,
                    ym - 4, ym + 4, c, ym - 4, ym + 4);
        }
    }
    fputs("</svg>\n", f);
    if (whisker_meaning) {
        fputs("<p class=\"cap\">Whiskers: ", f);
        esc(f, whisker_meaning);
        fputs(".</p>\n", f);
    }
}

/* ---- lines ---- */

typedef struct series {
    char name[240];
    const char *colour;
    int dash;
    int n;
    double x[64], y[64];
    char pt[64][12];        /* point labels (batch sizes), may be empty */
} series;

static void line_chart(FILE *f, const char *title, axis *ax, axis *ay, const series *s, int n, int w, int h, int legend) {
    double xs[MAX_SERIES * 64], ys[MAX_SERIES * 64];
    int nv = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s[i].n; j++) xs[nv] = s[i].x[j], ys[nv++] = s[i].y[j];
    int lx = ax->log, ly = ay->log;
    char lx_label[96], ly_label[96];
    snprintf(lx_label, sizeof lx_label, "%s", ax->label);
    snprintf(ly_label, sizeof ly_label, "%s", ay->label);
    axis_fit(ax, xs, nv, lx, !lx);
    axis_fit(ay, ys, nv, ly, !ly);
    snprintf(ax->label, sizeof ax->label, "%s", lx_label);
    snprintf(ay->label, sizeof ay->label, "%s", ly_label);
    int leg_h = legend ? 18 * n + 6 : 0;
    frame fr = {70, w - 20, h - 46, 10};
    svg_open(f, w, h + leg_h, title);
    draw_axes(f, &fr, ax, ay, 1);
    for (int i = 0; i < n; i++) {
        fprintf(f, "<g><title>");
        esc(f, s[i].name);
        fputs("</title><polyline fill=\"none\" stroke-width=\"2\" ", f);
        fprintf(f, "stroke=\"%s\" stroke-dasharray=\"%s\" points=\"", s[i].colour, dashes[s[i].dash % 5]);
        for (int j = 0; j < s[i].n; j++)
            if (isfinite(s[i].x[j]) && isfinite(s[i].y[j]) && (!lx || s[i].x[j] > 0) && (!ly || s[i].y[j] > 0))
                fprintf(f, "%.1f,%.1f ", px(&fr, ax, s[i].x[j]), py(&fr, ay, s[i].y[j]));
        fputs("\"/>\n", f);
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j]) || (lx && s[i].x[j] <= 0) || (ly && s[i].y[j] <= 0)) continue;
            double x = px(&fr, ax, s[i].x[j]), y = py(&fr, ay, s[i].y[j]);
            if (s[i].pt[j][0]) {
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", x, y, s[i].colour);
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"pt\">", x + 5, y - 5);
                esc(f, s[i].pt[j]);
                fputs("</text>\n", f);
            }
        }
        fputs("</g>\n", f);
    }
    if (legend)
        for (int i = 0; i < n; i++) {
            double y = h + 6 + 18 * i;
            char lab[160];
            fprintf(f, "<line x1=\"70\" y1=\"%.1f\" x2=\"100\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"%s\"/>",
                    y, y, s[i].colour, dashes[s[i].dash % 5]);
            fprintf(f, "<text x=\"106\" y=\"%.1f\" class=\"lab\">", y + 4);
            esc(f, cut(s[i].name, 110, lab, sizeof lab));
            fputs("</text>\n", f);
        }
    fputs("</svg>\n", f);
}

/* ---- sections ---- */

static const char *style =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}"
    "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}"
    "h3{font-size:1em;margin:1em 0 .3em}"
    "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td.n{text-align:right;white-space:nowrap}"
    ".bad{color:#b00;font-weight:bold}.none,.cap{color:#555;font-size:13px}"
    "svg{display:block;margin:.3em 0}svg text{font-family:sans-serif}"
    ".plot{fill:#fff;stroke:#888}.grid{stroke:#e4e4e4}.tick{font-size:10px;fill:#444}"
    ".axis{font-size:12px;fill:#222}.lab{font-size:11px;fill:#222}.pt{font-size:9px;fill:#333}"
    ".na{font-size:11px;fill:#777;font-style:italic}.whisker{stroke:#111;stroke-width:1.2;fill:none}"
    ".legend span{display:inline-block;margin-right:14px;font-size:12px}"
    ".sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}"
    ".grid2{display:flex;flex-wrap:wrap;gap:8px}.grid2>div{border:1px solid #eee;padding:4px}";

static void td(FILE *f, const char *s, int numeric) {
    fputs(numeric ? "<td class=\"n\">" : "<td>", f);
    esc(f, s);
    fputs("</td>", f);
}

static void tdn(FILE *f, double v, const char *fmt) {
    char b[64];
    if (!fmt) hb_report_num(b, sizeof b, v);
    else if (isfinite(v)) snprintf(b, sizeof b, fmt, v);
    else snprintf(b, sizeof b, "—");
    td(f, b, 1);
}

static void tdci(FILE *f, double v, double lo, double hi) {
    char b[128], x[40], y[40], z[40];
    if (!isfinite(v) || v == 0) snprintf(b, sizeof b, "—");
    else if (isfinite(lo) && isfinite(hi))
        snprintf(b, sizeof b, "%s [%s, %s]", hb_report_num(x, sizeof x, v), hb_report_num(y, sizeof y, lo),
                 hb_report_num(z, sizeof z, hi));
    else snprintf(b, sizeof b, "%s", hb_report_num(x, sizeof x, v));
    td(f, b, 1);
}

/* "label · device (backend)", and its configuration when another group of the report has the
 * same three (a 1-thread and a 2-thread run must not look like one bar twice) */
static void group_name(const hb_report *rep, const hb_rgroup *g, char *buf, size_t len) {
    int twin = 0;
    for (int i = 0; i < rep->n_groups && !twin; i++) {
        const hb_rgroup *h = &rep->groups[i];
        twin = h != g && !strcmp(h->label, g->label) && !strcmp(h->device, g->device) && !strcmp(h->backend, g->backend);
    }
    if (twin) snprintf(buf, len, "%.120s · %.100s (%.15s) · %.60s", g->label, g->device, g->backend, g->config);
    else snprintf(buf, len, "%.150s · %.120s (%.15s)", g->label, g->device, g->backend);
}

static int is_cpu(const hb_rgroup *g) { return !strcmp(g->backend, "cpu"); }

static void legend(FILE *f, const hb_report *rep) {
    const char *seen[32];
    int n = 0;
    fputs("<p class=\"legend\">", f);
    for (int i = 0; i < rep->n_groups && n < 32; i++) {
        const char *c = vendor_colour(rep->groups[i].vendor);
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= seen[j] == c;
        if (dup) continue;
        seen[n++] = c;
        fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>", c);
        esc(f, rep->groups[i].vendor[0] ? rep->groups[i].vendor : "unknown vendor");
        fputs("</span>", f);
    }
    fputs("<span>lighter bars: CPU backend</span></p>\n", f);
}

static void section_energy(FILE *f, const hb_report *rep) {
    bar b[MAX_BARS];
    int n = 0, skipped = 0;
    fputs("<h2 id=\"tokens-per-joule\">Tokens per joule</h2>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (!(g->tps[HB_TOK_TOTAL] > 0)) continue;
        if (n == MAX_BARS) {
            skipped++;
            continue;
        }
        bar *x = &b[n++];
        memset(x, 0, sizeof *x);
        group_name(rep, g, x->label, sizeof x->label);
        x->colour = vendor_colour(g->vendor);
        x->light = is_cpu(g) ? 0.5 : 0.9;
        x->v = g->tok_per_j;
        x->lo = g->n_energy_valid > 1 ? g->tok_per_j_min : NAN;
        x->hi = g->n_energy_valid > 1 ? g->tok_per_j_max : NAN;
        hb_report_energy_note(g, x->note, sizeof x->note);
    }
    bar_chart(f, "Tokens per joule per device and case", "tokens per joule (input + output tokens / J, gross)", b, n,
              "range of the per-device values where more than one device has valid energy");
    if (skipped) fprintf(f, "<p class=\"cap\">%d more groups in the table below.</p>\n", skipped);
}

static void section_cost(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"cost\">Cost per million tokens</h2>\n", f);
    if (!rep->prices) {
        fputs("<p class=\"none\">No prices given (hetbench report --prices FILE): cost not computed.</p>\n", f);
        return;
    }
    bar b[MAX_BARS];
    int n = 0;
    for (int i = 0; i < rep->n_groups && n < MAX_BARS; i++) {
        const hb_rgroup *g = &rep->groups[i];
        int k = !strcmp(g->sig.workload, "prefill") ? HB_TOK_IN : !strcmp(g->sig.workload, "decode") ? HB_TOK_OUT : HB_TOK_TOTAL;
        if (!(g->tps[k] > 0)) continue;
        bar *x = &b[n++];
        memset(x, 0, sizeof *x);
        group_name(rep, g, x->label, sizeof x->label);
        x->colour = vendor_colour(g->vendor);
        x->light = is_cpu(g) ? 0.5 : 0.9;
        x->v = g->priced ? g->usd_mtok[k] : NAN;
        x->lo = g->usd_mtok_lo[k];
        x->hi = g->usd_mtok_hi[k];
        snprintf(x->note, sizeof x->note, "%s", g->priced ? "—" : "no price");
    }
    fputs("<p class=\"cap\">Prices: ", f);
    esc(f, rep->prices->path);
    fputs(", tier ", f);
    esc(f, rep->tier[0] ? rep->tier : rep->prices->default_tier[0] ? rep->prices->default_tier : "(first listed)");
    fputs(". Decode: $ per million output tokens; prefill: per million input tokens.</p>\n", f);
    bar_chart(f, "Dollars per million tokens per device and case", "US$ per million tokens (output: decode, input: prefill)",
              b, n, "95% interval from the throughput interval");
}

/* decode: tokens/s per device vs per-token latency, one line per device and case family */
static void section_latency(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"throughput-latency\">Throughput vs per-token latency (decode)</h2>\n", f);
    series *s = calloc(MAX_SERIES, sizeof *s);
    if (!s) return;
    int n = 0, per_vendor[8] = {0};
    const char *vend[8] = {0};
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (strcmp(g->sig.workload, "decode") != 0 || !isfinite(g->lat_p50_s) || !(g->tps[HB_TOK_OUT] > 0)) continue;
        char name[240], layers[32] = "";
        if (g->sig.layers) snprintf(layers, sizeof layers, "[%lldL]", (long long)g->sig.layers);
        snprintf(name, sizeof name, "%s (%s): %s%s %s P=%lld G=%lld", g->device, g->backend, g->sig.model, layers,
                 g->sig.dtype, (long long)g->sig.prompt, (long long)g->sig.gen);
        int k = 0;
        while (k < n && strcmp(s[k].name, name) != 0) k++;
        if (k == n) {
            if (n == MAX_SERIES) continue;
            snprintf(s[n].name, sizeof s[n].name, "%s", name);
            s[n].colour = vendor_colour(g->vendor);
            int v = 0;
            while (v < 8 && vend[v] && vend[v] != s[n].colour) v++;
            if (v < 8) {
                vend[v] = s[n].colour;
                s[n].dash = per_vendor[v]++;
            }
            n++;
        }
        if (s[k].n < 64) {
            s[k].x[s[k].n] = g->lat_p50_s * 1e3;
            s[k].y[s[k].n] = g->tps[HB_TOK_OUT];
            snprintf(s[k].pt[s[k].n], sizeof s[k].pt[0], "B=%lld", (long long)g->sig.batch);
            s[k].n++;
        }
    }
    if (n == 0) {
        fputs("<p class=\"none\">No decode results.</p>\n", f);
    } else {
        /* a log axis where the values span 10x or more (a CPU next to GPUs) */
        double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s[i].n; j++) {
                xmin = fmin(xmin, s[i].x[j]), xmax = fmax(xmax, s[i].x[j]);
                ymin = fmin(ymin, s[i].y[j]), ymax = fmax(ymax, s[i].y[j]);
            }
        axis ax = {0, 0, xmax >= 10 * xmin, "per-token latency p50 (ms)"};
        axis ay = {0, 0, ymax >= 10 * ymin, "output tokens/s per device"};
        line_chart(f, "Decode throughput vs per-token latency", &ax, &ay, s, n, 900, 380, 1);
        fputs("<p class=\"cap\">Each point is one batch size B (labelled); moving right along a line trades latency for "
              "throughput.</p>\n", f);
    }
    free(s);
}

/* power over time: one chart per case signature, one line per device */
static void section_power(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"power\">Power over time</h2>\n<div class=\"grid2\">\n", f);
    series *s = calloc(MAX_SERIES, sizeof *s);
    if (!s) return;
    int charts = 0, more = 0;
    for (int gi = 0; gi < rep->n_groups; gi++) {
        if (gi > 0 && hb_sig_cmp(&rep->groups[gi].sig, &rep->groups[gi - 1].sig) == 0) continue;
        if (charts == MAX_POWER_CHARTS) {
            more++;
            continue;
        }
        charts++;
        int n = 0;
        for (int gj = gi; gj < rep->n_groups && hb_sig_cmp(&rep->groups[gj].sig, &rep->groups[gi].sig) == 0; gj++) {
            const hb_rgroup *g = &rep->groups[gj];
            for (int j = 0; j < g->n_entries && n < MAX_SERIES; j++) {
                const hb_rentry *e = &rep->entries[g->entries[j]];
                if (!e->rec || e->rec->n_power <= 0 || !e->rec->power) continue;
                series *x = &s[n++];
                memset(x, 0, sizeof *x);
                snprintf(x->name, sizeof x->name, "%s (%s) rank %d, file %d", g->device, g->backend, e->row->rank, e->file + 1);
                x->colour = vendor_colour(g->vendor);
                x->dash = n - 1;
                /* at most 64 points: every k-th sample */
                int64_t step = (e->rec->n_power + 63) / 64;
                for (int64_t p = 0; p < e->rec->n_power && x->n < 64; p += step) {
                    x->x[x->n] = e->rec->power[2 * p];
                    x->y[x->n] = e->rec->power[2 * p + 1];
                    x->pt[x->n][0] = '\0';
                    x->n++;
                }
            }
        }
        fputs("<div><h3>", f);
        esc(f, rep->groups[gi].label);
        fputs("</h3>\n", f);
        if (n == 0) {
            fputs("<p class=\"none\">no power trace</p>\n", f);
        } else {
            axis ax = {0, 0, 0, "time since the window start (s)"}, ay = {0, 0, 0, "power (W)"};
            line_chart(f, rep->groups[gi].label, &ax, &ay, s, n, 440, 220, 1);
        }
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    if (charts == 0) fputs("<p class=\"none\">no results</p>\n", f);
    if (more) fprintf(f, "<p class=\"cap\">%d more cases not drawn.</p>\n", more);
    free(s);
}

/* achieved FLOP/s vs arithmetic intensity: one chart per (file, device model), each with the
 * ceilings that file recorded (two runs with different ceilings never share a roof) */
static void section_roofline(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"roofline\">Achieved vs ceilings (roofline)</h2>\n<div class=\"grid2\">\n", f);
    hb_roofline *rl = NULL;
    int n_rl = 0, drawn = 0;
    hb_err err;
    if (hb_report_rooflines(rep, &rl, &n_rl, &err) != HB_OK) n_rl = 0;
    for (int r = 0; r < n_rl; r++) {
        const hb_roofline *x = &rl[r];
        const int n = x->n_points, np = x->n_peaks;
        const double bw = x->peak_bps;
        if (n == 0) continue;
        drawn++;
        /* axis ranges cover the points, the ridge points and the peaks */
        double ax_v[HB_ROOF_MAX_POINTS + HB_ROOF_MAX_PEAKS], ay_v[HB_ROOF_MAX_POINTS + HB_ROOF_MAX_PEAKS];
        int na = 0;
        for (int i = 0; i < n; i++) ax_v[na] = x->intensity[i], ay_v[na++] = x->flops_per_s[i];
        for (int i = 0; i < np; i++) {
            ay_v[na] = x->peak_flops[i];
            ax_v[na++] = isfinite(bw) ? x->peak_flops[i] / bw : x->intensity[0];
        }
        axis ax = {0, 0, 1, "arithmetic intensity (FLOP/byte)"}, ay = {0, 0, 1, "achieved FLOP/s"};
        axis_fit(&ax, ax_v, na, 1, 0);
        axis_fit(&ay, ay_v, na, 1, 0);
        ax.lo /= 2, ax.hi *= 2;
        const int w = 440, h = 300;
        frame fr = {70, w - 20, h - 46, 10};
        const char *colour = vendor_colour(x->vendor);
        fputs("<div><h3>", f);
        esc(f, x->device);
        fputs(" (", f);
        esc(f, x->backend);
        fprintf(f, "), file %d</h3>\n", x->file + 1);
        char title[200];
        snprintf(title, sizeof title, "Roofline of %.150s, file %d", x->device, x->file + 1);
        svg_open(f, w, h, title);
        draw_axes(f, &fr, &ax, &ay, 1);
        for (int i = 0; i < np; i++) {
            double pk = x->peak_flops[i];
            double ridge = isfinite(bw) ? pk / bw : ax.lo;
            double xa = fmax(ax.lo, ay.lo / (isfinite(bw) ? bw : 1));
            fprintf(f, "<path fill=\"none\" stroke=\"#333\" stroke-width=\"1.3\" stroke-dasharray=\"%s\" d=\"", dashes[i % 5]);
            if (isfinite(bw) && ridge > ax.lo)
                fprintf(f, "M%.1f %.1fL%.1f %.1f", px(&fr, &ax, xa), py(&fr, &ay, xa * bw), px(&fr, &ax, ridge), py(&fr, &ay, pk));
            else fprintf(f, "M%.1f %.1f", px(&fr, &ax, ax.lo), py(&fr, &ay, pk));
            fprintf(f, "H%.1f\"/>\n<text x=\"%.1f\" y=\"%.1f\" class=\"pt\" text-anchor=\"end\">", px(&fr, &ax, ax.hi),
                    px(&fr, &ax, ax.hi) - 4, py(&fr, &ay, pk) - 4);
            char b[32];
            esc(f, x->peak_dtype[i]);
            fprintf(f, " peak %s</text>\n", si_text(b, sizeof b, pk, "FLOP/s"));
        }
        if (isfinite(bw)) {
            char b[32];
            double xl = fmax(ax.lo, ay.lo / bw) * 1.5;
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"pt\">%s</text>\n", px(&fr, &ax, xl) + 4,
                    py(&fr, &ay, xl * bw) - 6, si_text(b, sizeof b, bw, "B/s"));
        }
        for (int i = 0; i < n; i++) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.8\"><title>",
                    px(&fr, &ax, x->intensity[i]), py(&fr, &ay, x->flops_per_s[i]), colour);
            esc(f, x->what[i]);
            fprintf(f, ": %.4g FLOP/byte, %.4g FLOP/s</title></circle>\n", x->intensity[i], x->flops_per_s[i]);
        }
        fputs("</svg>\n", f);
        if (np == 0 || !isfinite(bw)) fputs("<p class=\"cap\">ceilings not recorded for this device</p>\n", f);
        fputs("</div>\n", f);
    }
    free(rl);
    fputs("</div>\n", f);
    if (!drawn) fputs("<p class=\"none\">No result with both FLOP/s and bytes/s.</p>\n", f);
}

static void section_tables(FILE *f, const hb_report *rep) {
    char b[640];
    fputs("<h2 id=\"table\">Results per case and device model</h2>\n<table>\n<tr><th>case</th><th>device</th><th>backend</th>"
          "<th>configuration</th><th>devices</th><th>rate [95% CI]</th><th>unit</th><th>tokens/s in</th><th>tokens/s out</th><th>tokens/s total</th>"
          "<th>p50 ms</th><th>p95 ms</th><th>MFU</th><th>BW util</th><th>avg W</th><th>J/token out</th><th>J/token total</th>"
          "<th>tokens/J</th><th>energy</th><th>timing</th><th>numerics</th></tr>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        fputs("<tr>", f);
        td(f, g->label, 0), td(f, g->device, 0), td(f, g->backend, 0), td(f, g->config, 0);
        snprintf(b, sizeof b, g->n_failed ? "%d (%d failed)" : "%d", g->n_ok, g->n_failed);
        td(f, b, 1);
        if (g->files_disagree) { /* not averaged: each file's value instead */
            snprintf(b, sizeof b, "files disagree, not averaged: %s", g->per_file);
            fputs("<td class=\"bad\">", f);
            esc(f, b);
            fputs("</td>", f);
        } else {
            tdci(f, g->rate, g->rate_lo, g->rate_hi);
        }
        td(f, g->rate_unit, 0);
        for (int k = 0; k < HB_TOK_N; k++) tdci(f, g->tps[k], g->tps_lo[k], g->tps_hi[k]);
        tdn(f, g->lat_p50_s * 1e3, NULL), tdn(f, g->lat_p95_s * 1e3, NULL);
        tdn(f, g->mfu * 100, "%.3g%%"), tdn(f, g->bw_util * 100, "%.3g%%"), tdn(f, g->avg_w, NULL);
        tdn(f, g->j_per_tok[HB_TOK_OUT], NULL), tdn(f, g->j_per_tok[HB_TOK_TOTAL], NULL), tdn(f, g->tok_per_j, NULL);
        hb_report_energy_note(g, b, sizeof b);
        fputs(g->n_energy_invalid ? "<td class=\"bad\">" : "<td>", f);
        esc(f, b);
        fputs("</td>", f);
        hb_report_timing_note(g, b, sizeof b);
        fputs(g->n_timing_invalid ? "<td class=\"bad\">" : "<td>", f);
        esc(f, b);
        fputs("</td>", f);
        if (g->fp == HB_FP_MISMATCH) {
            snprintf(b, sizeof b, "MISMATCH %.2g > %.0e vs %s", g->fp_max_rel, g->fp_tol, g->fp_ref);
            fputs("<td class=\"bad\">", f);
            esc(f, b);
            fputs("</td>", f);
        } else {
            if (g->fp == HB_FP_OK) snprintf(b, sizeof b, "ok %.2g ≤ %.0e", g->fp_max_rel, g->fp_tol);
            else snprintf(b, sizeof b, "—");
            td(f, b, 0);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    if (rep->prices) {
        fputs("<h2 id=\"cost-table\">Cost table</h2>\n<table>\n<tr><th>case</th><th>device</th><th>price entry · tier · source"
              "</th><th>$/device-h</th><th>$/M in</th><th>$/M out</th><th>$/M total</th><th>energy $/M total</th><th>note</th></tr>\n", f);
        for (int i = 0; i < rep->n_groups; i++) {
            const hb_rgroup *g = &rep->groups[i];
            fputs("<tr>", f);
            td(f, g->label, 0), td(f, g->device, 0);
            if (!g->priced) {
                fputs("<td class=\"bad\">no price</td><td>no price</td><td>no price</td><td>no price</td><td>no price</td><td></td>", f);
            } else {
                snprintf(b, sizeof b, "%.127s · %.63s · %.319s", g->price_name, g->tier, g->price_source);
                td(f, b, 0);
                tdn(f, g->usd_per_hour, NULL);
                for (int k = 0; k < HB_TOK_N; k++) tdci(f, g->usd_mtok[k], g->usd_mtok_lo[k], g->usd_mtok_hi[k]);
                tdn(f, g->usd_mtok_energy[HB_TOK_TOTAL], NULL);
            }
            td(f, g->cost_note, 0);
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    fputs("<h2 id=\"provenance\">Provenance</h2>\n<table>\n<tr><th>device</th><th>backend</th><th>vendor</th><th>gemm_impl</th>"
          "<th>driver</th><th>runtime</th><th>meter</th><th>hetbench</th><th>hosts</th><th>files</th></tr>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) {
            const hb_rgroup *h = &rep->groups[j];
            dup = !strcmp(g->device, h->device) && !strcmp(g->backend, h->backend) && !strcmp(g->gemm_impl, h->gemm_impl) &&
                  !strcmp(g->driver, h->driver) && !strcmp(g->runtime, h->runtime) && !strcmp(g->meter, h->meter) &&
                  !strcmp(g->versions, h->versions) &&
                  !strcmp(g->hosts, h->hosts) && !strcmp(g->files, h->files);
        }
        if (dup) continue;
        fputs("<tr>", f);
        td(f, g->device, 0), td(f, g->backend, 0), td(f, g->vendor, 0), td(f, g->gemm_impl, 0), td(f, g->driver, 0);
        td(f, g->runtime, 0), td(f, g->meter, 0), td(f, g->versions, 0), td(f, g->hosts, 0), td(f, g->files, 0);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static const char *howto =
    "<h2 id=\"how-to-read\">How to read this</h2>\n<ul>\n"
    "<li>A <b>group</b> is one case (workload, model, dtype, shapes) on one device model and backend, across every rank "
    "and file. <i>Devices</i> counts the measurements combined; rates are <b>per device</b> (the mean of the devices), "
    "never summed.</li>\n"
    "<li><b>[lo, hi]</b> and the bar whiskers are 95% intervals: for rates the envelope of the per-device bootstrap "
    "intervals (2000 resamples of the iteration times), so they also cover the spread between devices.</li>\n"
    "<li><b>Energy</b> is gross (idle power included) over the timed window. Only devices whose energy passed every "
    "check are used; the energy column says when some were left out and why. <i>not measured</i> means no meter.</li>\n"
    "<li><b>$ per million tokens</b> = price per device-hour ÷ tokens per hour × 10⁶, plus electricity × PUE × J per token "
    "unless the price tier already includes power. <i>no price</i>: the prices file has no entry for the device.</li>\n"
    "<li><b>Throughput vs latency</b>: one line per device and model; each point a decode batch size. Up and to the left is "
    "better.</li>\n"
    "<li><b>Roofline</b>: a point under the slanted line is limited by memory bandwidth, under the flat line by compute; "
    "the distance to the line is the headroom. Ceilings are datasheet peaks (GPUs) or measured (CPU).</li>\n"
    "<li><b>Numerics</b>: output fingerprints of the same case and seed on different devices must agree within the "
    "dtype's tolerance; a mismatch means the devices did not compute the same function.</li>\n"
    "<li>Colours: one per vendor (lighter bars: CPU backend).</li>\n</ul>\n";

hb_status hb_report_write_html(const hb_report *rep, FILE *f, hb_err *err) {
    (void)err;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>hetbench report</title>\n<style>%s</style>\n</head>\n<body>\n<h1>hetbench report</h1>\n", style);
    fputs("<table>\n<tr><th>#</th><th>file</th><th>hetbench</th><th>created (UTC)</th><th>status</th><th>hosts</th></tr>\n", f);
    for (int i = 0; i < rep->n_files; i++) {
        const hb_run_meta *m = &rep->files[i].r->meta;
        char n[16], v[128];
        snprintf(n, sizeof n, "%d", i + 1);
        snprintf(v, sizeof v, "%s (%s)", m->version, m->git);
        fputs("<tr>", f);
        td(f, n, 1), td(f, rep->files[i].path, 0), td(f, v, 0), td(f, m->created_utc, 0), td(f, m->status, 0), td(f, m->hosts, 0);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    if (rep->n_fp_mismatch)
        fprintf(f, "<p class=\"bad\">%d group%s with a numerical mismatch between devices: see the numerics column.</p>\n",
                rep->n_fp_mismatch, rep->n_fp_mismatch > 1 ? "s" : "");
    fputs(howto, f);
    legend(f, rep);
    section_energy(f, rep);
    section_cost(f, rep);
    section_latency(f, rep);
    section_power(f, rep);
    section_roofline(f, rep);
    section_tables(f, rep);
    fputs("</body>\n</html>\n", f);
    return HB_OK;
}
