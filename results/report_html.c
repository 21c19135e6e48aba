/* report_html.c - the report as one self-contained HTML file: inline CSS and inline SVG charts,
 * no script, no network, no external font. Every string that comes from a results or prices
 * file goes through esc() (HTML injection from a device name or a host name is not possible).
 *
 * Charts (each labelled so that a screenshot stands alone; one colour per device model and
 * backend): tokens/J; $/M input, output and total tokens (three charts); speedup and J/token
 * relative to --baseline; throughput per device vs interactivity with each device's Pareto
 * front, and beside it $/M output tokens vs interactivity; TTFT and TPOT p99 of Poisson serve
 * cases against their SLOs (VALID/INVALID); decode tokens/s vs batch size against the bandwidth-bound ideal; TTFT vs prompt
 * length; power over time per case; achieved FLOP/s vs the roofline of each device. Labels in a
 * plot go through a placer (no two overlap); a chart with nothing to draw is one line saying
 * why. tests/check_report_layout.py checks the laid-out page in chromium. */
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

/* ---- colours: one per device model and backend, in order of first appearance ---- */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
#define N_PALETTE 10

static int device_index(const hb_report *rep, const char *device, const char *backend) {
    int k = 0;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = strcmp(rep->groups[j].device, g->device) || strcmp(rep->groups[j].backend, g->backend);
        if (!first) continue;
        if (!strcmp(g->device, device) && !strcmp(g->backend, backend)) return k;
        k++;
    }
    return k;
}

static const char *device_colour(const hb_report *rep, const char *device, const char *backend) {
    return palette[device_index(rep, device, backend) % N_PALETTE];
}

/* line styles of a device's second, third ... series; the dotted "1 3" is kept for ideals */
static const char *const dashes[] = {"", "8 3", "8 3 2 3", "4 2", "12 3"};
#define IDEAL_DASH "1 3"

/* ---- label placement: every text drawn inside a plot goes through a placer, which keeps its
 * box (estimated from the character count) clear of the boxes already placed ---- */

#define MAX_LBOX 1024
typedef struct lbox {
    double x0, y0, x1, y1;
} lbox;
typedef struct placer {
    lbox bound;             /* labels stay inside */
    int n;
    lbox b[MAX_LBOX];
} placer;

/* Width of a text in sans-serif at `size` px: ~0.62 em per character (DejaVu Sans, the widest
 * common default), a little generous so that the estimate errs on the side of space. */
static double text_w(const char *s, double size) {
    int n = 0;
    for (; s && *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n * size * 0.62 + 2;
}

static int box_free(const placer *p, lbox b) {
    if (b.x0 < p->bound.x0 || b.x1 > p->bound.x1 || b.y0 < p->bound.y0 || b.y1 > p->bound.y1) return 0;
    for (int i = 0; i < p->n; i++)
        if (b.x0 < p->b[i].x1 && b.x1 > p->b[i].x0 && b.y0 < p->b[i].y1 && b.y1 > p->b[i].y0) return 0;
    return 1;
}

static void reserve(placer *p, lbox b) {
    if (p->n < MAX_LBOX) p->b[p->n++] = b;
}

/* A free place for `text` near (x, y): right or left of it, then further above or below.
 * 1 with the baseline position and anchor (1 = end), 0 when none is free (not drawn). */
static int place(placer *p, double x, double y, const char *text, double size, double *tx, double *ty, int *end) {
    double w = text_w(text, size);
    for (int level = 0; level < 6; level++) {
        double dy[2] = {-5 - 9.0 * level, 9 + 9.0 * level};
        for (int k = 0; k < 4; k++) {
            int right = k < 2;
            double bx = right ? x + 5 : x - 5, by = y + dy[k % 2];
            lbox b = {right ? bx : bx - w, by - 0.8 * size, right ? bx + w : bx, by + 0.25 * size};
            if (!box_free(p, b)) continue;
            reserve(p, b);
            *tx = bx, *ty = by, *end = !right;
            return 1;
        }
    }
    return 0;
}

/* Draws `text` near (x, y) where there is room; returns whether it was drawn. */
static int put_label(FILE *f, placer *p, double x, double y, const char *text, const char *cls, double size) {
    double tx, ty;
    int end;
    if (!place(p, x, y, text, size, &tx, &ty, &end)) return 0;
    if (fabs(ty - y) > 12) /* placed away from its point: a leader line says whose it is */
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"lead\"/>", x, y, tx,
                ty > y ? ty - 0.8 * size : ty);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"%s\"%s>", tx, ty, cls, end ? " text-anchor=\"end\"" : "");
    esc(f, text);
    fputs("</text>\n", f);
    return 1;
}

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
        /* a tick at the bottom edge sits above it, clear of the x axis' first tick label */
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n", fr->x0 - 4,
                fr->y0 - y < 6 ? y - 2 : y + 4, tick_text(b, sizeof b, t[i]));
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

/* ---- bars: the label on its own line above each bar (device names are never cut), the value
 * at the bar's end ---- */

typedef struct bar {
    char label[320];
    const char *colour;
    double light;           /* fill opacity */
    double v, lo, hi;       /* lo/hi NaN: no whisker */
    int has_ref;            /* this bar's own reference line at ref (an SLO bound) */
    double ref;
    char note[48];          /* after the value ("VALID"); bad: drawn as a failure */
    int bad;
} bar;

static void bar_chart(FILE *f, const char *title, const char *xlabel, const char *unit, const bar *b, int n,
                      const char *whisker_meaning, double ref_line) {
    const int w = 940, ml = 12, mr = 16, mt = 8, row = 34;
    int h = mt + n * row + 46;
    frame fr = {ml, w - mr, mt + n * row, mt};
    double vals[3 * MAX_BARS + 1] = {0};
    int nv = 0;
    double refs[MAX_BARS];
    for (int i = 0; i < n; i++) {
        vals[nv++] = b[i].v, vals[nv++] = b[i].lo, vals[nv++] = b[i].hi;
        refs[i] = b[i].has_ref ? b[i].ref : NAN;
    }
    if (isfinite(ref_line)) vals[nv++] = ref_line;
    axis ax, ay = {0, 1, 0, ""};
    {
        double vr[4 * MAX_BARS + 1];
        memcpy(vr, vals, sizeof(double) * (size_t)nv);
        for (int i = 0; i < n; i++) vr[nv + i] = refs[i];
        axis_fit(&ax, vr, nv + n, 0, 1);
    }
    ax.hi = ax.lo + (ax.hi - ax.lo) * (n && b[0].note[0] ? 1.5 : 1.25); /* room for the value text (and note) */
    snprintf(ax.label, sizeof ax.label, "%s", xlabel);
    svg_open(f, w, h, title);
    draw_axes(f, &fr, &ax, &ay, 0);
    for (int i = 0; i < n; i++) {
        double y = mt + i * row, x0 = px(&fr, &ax, 0), hgt = 13, yb = y + 16;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lab\">", x0 + 2, y + 12);
        esc(f, b[i].label);
        fputs("</text>\n", f);
        const double rl = isfinite(refs[i]) ? refs[i] : ref_line;
        if (isfinite(rl)) /* beside the bar only, never through a label */
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"ref\"><title>reference %.4g</title>"
                       "</line>\n", px(&fr, &ax, rl), yb - 3, px(&fr, &ax, rl), yb + hgt + 3, rl);
        double xe = px(&fr, &ax, b[i].v);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"><title>",
                x0, yb, fmax(xe - x0, 0.5), hgt, b[i].colour, b[i].light);
        esc(f, b[i].label);
        fprintf(f, ": %.4g", b[i].v);
        if (isfinite(b[i].lo) && isfinite(b[i].hi)) fprintf(f, " [%.4g, %.4g]", b[i].lo, b[i].hi);
        if (b[i].note[0]) {
            fputc(' ', f);
            esc(f, b[i].note);
        }
        fputs("</title></rect>\n", f);
        if (isfinite(b[i].lo) && isfinite(b[i].hi)) {
            double a = px(&fr, &ax, b[i].lo), c = px(&fr, &ax, b[i].hi), ym = yb + hgt / 2;
            fprintf(f, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" class=\"whisker\"/>\n", a, ym, c, a,
                    ym - 4, ym + 4, c, ym - 4, ym + 4);
            xe = fmax(xe, c);
        }
        char v[48];
        if (!strcmp(unit, "$")) snprintf(v, sizeof v, "$%.4g", b[i].v);
        else if (!strcmp(unit, "ms")) snprintf(v, sizeof v, "%.4g ms", b[i].v); /* never "3 kms" */
        else si_text(v, sizeof v, b[i].v, unit);
        if (isfinite(refs[i])) xe = fmax(xe, px(&fr, &ax, refs[i]));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"val\">%s", xe + 5, yb + hgt - 3, v);
        if (b[i].note[0]) {
            fprintf(f, " <tspan class=\"%s\">", b[i].bad ? "badv" : "okv");
            esc(f, b[i].note);
            fputs("</tspan>", f);
        }
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (whisker_meaning) {
        fputs("<p class=\"cap\">Whiskers: ", f);
        esc(f, whisker_meaning);
        fputs(".</p>\n", f);
    }
}

/* What was left out of a chart and why, as one line: "Not drawn (reason): 3 groups; ...". */
typedef struct omitted {
    int n;
    char why[8][160];
    int count[8];
    int other;
} omitted;

static void omit(omitted *o, const char *why) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->why[i], why)) {
            o->count[i]++;
            return;
        }
    if (o->n == 8) {
        o->other++;
        return;
    }
    snprintf(o->why[o->n], sizeof o->why[0], "%s", why);
    o->count[o->n++] = 1;
}

static void omitted_line(FILE *f, const omitted *o, const char *what) {
    if (!o->n) return;
    fprintf(f, "<p class=\"none\">%s not drawn: ", what);
    for (int i = 0; i < o->n; i++) {
        fprintf(f, "%s%d (", i ? "; " : "", o->count[i]);
        esc(f, o->why[i]);
        fputs(")", f);
    }
    if (o->other) fprintf(f, "; %d for other reasons", o->other);
    fputs(".</p>\n", f);
}

/* ---- lines ---- */

enum { LINE_POINTS = 0, LINE_IDEAL, LINE_PARETO, LINE_PARETO_LOW };

typedef struct series {
    char name[240];
    const char *colour;
    int dash;
    int style;              /* LINE_POINTS: line through labelled points; LINE_IDEAL: dashed, no points;
                               LINE_PARETO: every point, the line through the non-dominated ones
                               (higher y better); LINE_PARETO_LOW: the same with lower y better
                               (a cost) */
    int n;
    double x[64], y[64];
    char pt[64][16];        /* point labels (batch sizes), may be empty */
} series;

static int drawable(const axis *ax, const axis *ay, double x, double y) {
    return isfinite(x) && isfinite(y) && (!ax->log || x > 0) && (!ay->log || y > 0);
}

/* Indices of the Pareto front of s (higher x better; higher y better, or lower with `low`), by
 * ascending x. */
static int pareto_front(const series *s, int *idx, int low) {
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        int dominated = 0;
        for (int j = 0; j < s->n && !dominated; j++) {
            const double yi = low ? -s->y[i] : s->y[i], yj = low ? -s->y[j] : s->y[j];
            dominated = j != i && s->x[j] >= s->x[i] && yj >= yi && (s->x[j] > s->x[i] || yj > yi);
        }
        if (!dominated) idx[n++] = i;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s->x[idx[j]] < s->x[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    return n;
}

static void polyline(FILE *f, const frame *fr, const axis *ax, const axis *ay, const series *s, const int *idx, int n,
                     const char *dash, double width) {
    fprintf(f, "<polyline fill=\"none\" stroke-width=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"%s\" points=\"", width,
            s->colour, dash);
    for (int k = 0; k < n; k++) {
        int j = idx ? idx[k] : k;
        if (drawable(ax, ay, s->x[j], s->y[j])) fprintf(f, "%.1f,%.1f ", px(fr, ax, s->x[j]), py(fr, ay, s->y[j]));
    }
    fputs("\"/>\n", f);
}

/* Legend rows under the plot, one per series, cut to the chart's width. */
static int legend_rows(int n) { return 18 * n + 6; }

static void line_chart(FILE *f, const char *title, axis *ax, axis *ay, const series *s, int n, int w, int h) {
    const size_t cap = (size_t)(n > 0 ? n : 1) * 64; /* every point of every series */
    double *vx = malloc(sizeof(double) * cap), *vy = malloc(sizeof(double) * cap);
    placer *pl = malloc(sizeof *pl);
    if (!vx || !vy || !pl) {
        free(vx), free(vy), free(pl);
        return;
    }
    int nv = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s[i].n; j++) vx[nv] = s[i].x[j], vy[nv++] = s[i].y[j];
    int lx = ax->log, ly = ay->log;
    char lx_label[96], ly_label[96];
    snprintf(lx_label, sizeof lx_label, "%s", ax->label);
    snprintf(ly_label, sizeof ly_label, "%s", ay->label);
    axis_fit(ax, vx, nv, lx, !lx);
    axis_fit(ay, vy, nv, ly, !ly);
    snprintf(ax->label, sizeof ax->label, "%s", lx_label);
    snprintf(ay->label, sizeof ay->label, "%s", ly_label);
    frame fr = {70, w - 20, h - 46, 10};
    memset(pl, 0, sizeof *pl);
    pl->bound = (lbox){fr.x0 + 1, fr.y1 + 1, fr.x1 - 1, fr.y0 - 1};
    svg_open(f, w, h + legend_rows(n), title);
    draw_axes(f, &fr, ax, ay, 1);
    /* the points first, so that no label covers one */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s[i].n; j++)
            if (s[i].style != LINE_IDEAL && drawable(ax, ay, s[i].x[j], s[i].y[j])) {
                double x = px(&fr, ax, s[i].x[j]), y = py(&fr, ay, s[i].y[j]);
                reserve(pl, (lbox){x - 3.5, y - 3.5, x + 3.5, y + 3.5});
            }
    int hidden = 0;
    for (int i = 0; i < n; i++) {
        fprintf(f, "<g><title>");
        esc(f, s[i].name);
        fputs("</title>\n", f);
        int idx[64], nf = s[i].n;
        for (int j = 0; j < nf; j++) idx[j] = j;
        const int pareto = s[i].style == LINE_PARETO || s[i].style == LINE_PARETO_LOW;
        if (pareto) nf = pareto_front(&s[i], idx, s[i].style == LINE_PARETO_LOW);
        polyline(f, &fr, ax, ay, &s[i], idx, nf, s[i].style == LINE_IDEAL ? IDEAL_DASH : dashes[s[i].dash % 5],
                 s[i].style == LINE_IDEAL ? 1.6 : 2);
        for (int j = 0; j < s[i].n && s[i].style != LINE_IDEAL; j++) {
            if (!drawable(ax, ay, s[i].x[j], s[i].y[j])) continue;
            double x = px(&fr, ax, s[i].x[j]), y = py(&fr, ay, s[i].y[j]);
            int on_front = !pareto;
            for (int k = 0; k < nf && !on_front; k++) on_front = idx[k] == j;
            /* data-x/-y: the point's values (what tests and scrapers read back) */
            if (on_front)
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" data-x=\"%.6g\" data-y=\"%.6g\"/>", x, y,
                        s[i].colour, s[i].x[j], s[i].y[j]);
            else
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#fff\" stroke=\"%s\" data-x=\"%.6g\" data-y=\"%.6g\"/>",
                        x, y, s[i].colour, s[i].x[j], s[i].y[j]);
            if (s[i].pt[j][0] && !put_label(f, pl, x, y, s[i].pt[j], "pt", 9)) hidden++;
        }
        fputs("</g>\n", f);
    }
    for (int i = 0; i < n; i++) {
        double y = h + 6 + 18 * i;
        char lab[256];
        int max_chars = (int)((w - 110) / (11 * 0.62));
        fprintf(f, "<line x1=\"70\" y1=\"%.1f\" x2=\"100\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"%s\"/>",
                y, y, s[i].colour, s[i].style == LINE_IDEAL ? IDEAL_DASH : dashes[s[i].dash % 5]);
        fprintf(f, "<text x=\"106\" y=\"%.1f\" class=\"lab\"><title>", y + 4);
        esc(f, s[i].name);
        fputs("</title>", f);
        esc(f, cut(s[i].name, max_chars, lab, sizeof lab));
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (hidden) fprintf(f, "<p class=\"cap\">%d point label%s left out where %s would overlap another.</p>\n", hidden,
                        hidden > 1 ? "s" : "", hidden > 1 ? "they" : "it");
    free(vx), free(vy), free(pl);
}

/* ---- sections ---- */

static const char *style =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}"
    "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}"
    "h3{font-size:1em;margin:1em 0 .3em}"
    "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td.n{text-align:right;overflow-wrap:normal}"
    ".bad{color:#b00;font-weight:bold}.none,.cap{color:#555;font-size:13px}"
    "svg{display:block;margin:.3em 0}svg text{font-family:sans-serif}"
    ".plot{fill:#fff;stroke:#888}.grid{stroke:#e4e4e4}.tick{font-size:10px;fill:#444}"
    ".axis{font-size:12px;fill:#222}.lab{font-size:11px;fill:#222}.pt{font-size:9px;fill:#333}"
    ".na{font-size:11px;fill:#777;font-style:italic}.whisker{stroke:#111;stroke-width:1.2;fill:none}"
    ".legend span{display:inline-block;margin-right:14px;font-size:12px}.val{font-size:10px;fill:#222}"
    ".badv{fill:#b00;font-weight:bold}.okv{fill:#1a7f37;font-weight:bold}"
    ".ref{stroke:#333;stroke-width:1.5}.lead{stroke:#999;stroke-width:.6}td{overflow-wrap:anywhere}"
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

static void set_bar(const hb_report *rep, const hb_rgroup *g, bar *x) {
    memset(x, 0, sizeof *x);
    group_name(rep, g, x->label, sizeof x->label);
    x->colour = device_colour(rep, g->device, g->backend);
    x->light = is_cpu(g) ? 0.6 : 0.9;
    x->lo = x->hi = NAN;
    x->ref = NAN;
}

static int first_group_of_device(const hb_report *rep, int i) {
    for (int j = 0; j < i; j++)
        if (!strcmp(rep->groups[j].device, rep->groups[i].device) && !strcmp(rep->groups[j].backend, rep->groups[i].backend))
            return j;
    return i;
}

/* one swatch per device model and backend: the colour it has in every chart */
static void legend(FILE *f, const hb_report *rep) {
    fputs("<p class=\"legend\">", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (i != first_group_of_device(rep, i)) continue;
        fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>", device_colour(rep, g->device, g->backend));
        esc(f, g->device);
        fputs(" (", f);
        esc(f, g->backend);
        fputs(")</span>", f);
    }
    fputs("</p>\n", f);
}

static void section_energy(FILE *f, const hb_report *rep) {
    bar b[MAX_BARS];
    int n = 0, skipped = 0;
    omitted om = {0};
    fputs("<h2 id=\"tokens-per-joule\">Tokens per joule</h2>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (!(g->tps[HB_TOK_TOTAL] > 0)) continue;
        if (!isfinite(g->tok_per_j)) {
            char note[128];
            hb_report_energy_note(g, note, sizeof note);
            omit(&om, note);
            continue;
        }
        if (n == MAX_BARS) {
            skipped++;
            continue;
        }
        bar *x = &b[n++];
        set_bar(rep, g, x);
        x->v = g->tok_per_j;
        x->lo = g->n_energy_valid > 1 ? g->tok_per_j_min : NAN;
        x->hi = g->n_energy_valid > 1 ? g->tok_per_j_max : NAN;
    }
    if (n)
        bar_chart(f, "Tokens per joule per device and case", "tokens per joule (input + output tokens / J, gross)", "tok/J",
                  b, n, "range of the per-device values where more than one device has valid energy", NAN);
    else fputs("<p class=\"none\">No group has valid energy, so no tokens per joule to draw.</p>\n", f);
    omitted_line(f, &om, "Groups");
    if (skipped) fprintf(f, "<p class=\"cap\">%d more groups in the table below.</p>\n", skipped);
}

/* $/M tokens of one token kind: input (prefill), output (decode), total; one chart each, so that
 * a price per input token is never read on the axis of a price per output token */
static void section_cost(FILE *f, const hb_report *rep) {
    static const char *const kind[HB_TOK_N] = {"input", "output", "total"};
    fputs("<h2 id=\"cost\">Cost per million tokens</h2>\n", f);
    if (!rep->prices) {
        fputs("<p class=\"none\">No prices given (hetbench report --prices FILE): cost not computed.</p>\n", f);
        return;
    }
    fputs("<p class=\"cap\">Prices: ", f);
    esc(f, rep->prices->path);
    fputs(", tier ", f);
    esc(f, rep->tier[0] ? rep->tier : rep->prices->default_tier[0] ? rep->prices->default_tier : "(first listed)");
    fputs(". Input tokens are the prompt (prefill), output tokens the generated ones (decode); total counts both.</p>\n", f);
    bar b[MAX_BARS];
    for (int k = 0; k < HB_TOK_N; k++) {
        int n = 0;
        omitted om = {0};
        char title[96], xl[96];
        snprintf(title, sizeof title, "US$ per million %s tokens", kind[k]);
        fprintf(f, "<h3>%s</h3>\n", title);
        for (int i = 0; i < rep->n_groups && n < MAX_BARS; i++) {
            const hb_rgroup *g = &rep->groups[i];
            if (!(g->tps[k] > 0)) continue;
            if (!g->priced || !isfinite(g->usd_mtok[k])) {
                omit(&om, g->priced ? "no cost" : "no price");
                continue;
            }
            set_bar(rep, g, &b[n]);
            b[n].v = g->usd_mtok[k], b[n].lo = g->usd_mtok_lo[k], b[n].hi = g->usd_mtok_hi[k];
            n++;
        }
        snprintf(xl, sizeof xl, "US$ per million %s tokens", kind[k]);
        if (n) bar_chart(f, title, xl, "$", b, n, "95% interval from the throughput interval", NAN);
        else if (!om.n) fprintf(f, "<p class=\"none\">No result with %s tokens.</p>\n", kind[k]);
        omitted_line(f, &om, "Groups");
    }
}

/* The series key of a sweep: one device and case family (everything but the swept key), with
 * the configuration when the report has the same device and case family in another one. */
static void family(const hb_report *rep, const hb_rgroup *g, const char *swept, char *buf, size_t len) {
    char layers[32] = "", cfg[80] = "";
    int by_prompt = !strcmp(swept, "prompt");
    if (g->sig.layers) snprintf(layers, sizeof layers, "[%lldL]", (long long)g->sig.layers);
    for (int i = 0; i < rep->n_groups && !cfg[0]; i++) {
        const hb_rgroup *h = &rep->groups[i];
        if (h != g && !strcmp(h->device, g->device) && !strcmp(h->backend, g->backend) && strcmp(h->config, g->config) != 0 &&
            !strcmp(h->sig.workload, g->sig.workload) && !strcmp(h->sig.model, g->sig.model) &&
            !strcmp(h->sig.dtype, g->sig.dtype))
            snprintf(cfg, sizeof cfg, " · %.60s", g->config);
    }
    if (by_prompt)
        snprintf(buf, len, "%.100s (%.15s): %.60s%s %s B=%lld%s", g->device, g->backend, g->sig.model, layers, g->sig.dtype,
                 (long long)g->sig.batch, cfg);
    else
        snprintf(buf, len, "%.100s (%.15s): %.60s%s %s P=%lld G=%lld%s", g->device, g->backend, g->sig.model, layers,
                 g->sig.dtype, (long long)g->sig.prompt, (long long)g->sig.gen, cfg);
}

/* Adds (x, y, label) to the series named `name` (created with the device's colour). */
static void add_point(const hb_report *rep, const hb_rgroup *g, series *s, int *n, const char *name, int style,
                      double x, double y, const char *pt) {
    int k = 0;
    while (k < *n && strcmp(s[k].name, name) != 0) k++;
    if (k == *n) {
        if (*n == MAX_SERIES) return;
        memset(&s[k], 0, sizeof s[k]);
        snprintf(s[k].name, sizeof s[k].name, "%s", name);
        s[k].colour = device_colour(rep, g->device, g->backend);
        s[k].style = style;
        int same = 0; /* a second family on one device gets a second dash */
        for (int j = 0; j < k; j++) same += s[j].colour == s[k].colour && s[j].style == style;
        s[k].dash = same;
        (*n)++;
    }
    if (s[k].n < 64) {
        s[k].x[s[k].n] = x, s[k].y[s[k].n] = y;
        snprintf(s[k].pt[s[k].n], sizeof s[k].pt[0], "%s", pt ? pt : "");
        s[k].n++;
    }
}

static int spans_decade(const series *s, int n, int on_y) {
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s[i].n; j++) {
            double v = on_y ? s[i].y[j] : s[i].x[j];
            if (v > 0) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    return hi >= 10 * lo;
}

/* One point of the throughput-vs-interactivity chart: tokens/s per user (1 / time per output
 * token) and output tokens/s per device. Decode rows now: one decode iteration gives each of the
 * B sequences one token, so per-user speed is 1 / p50 iteration time. A serve workload feeds the
 * chart by answering here from its TPOT (1 / TPOT p50) and its output tokens/s. */
static int interactivity_point(const hb_report *rep, const hb_rgroup *g, double *per_user, double *per_device, char *pt,
                               size_t len) {
    if (!strcmp(g->sig.workload, "decode") && isfinite(g->lat_p50_s) && g->lat_p50_s > 0 && g->tps[HB_TOK_OUT] > 0) {
        *per_user = 1 / g->lat_p50_s;
        *per_device = g->tps[HB_TOK_OUT];
        snprintf(pt, len, "B=%lld", (long long)g->sig.batch);
        return 1;
    }
    /* serve: the stream's output tokens/s per device against its interactivity (1 / TPOT p50),
     * the mean over the group's ok rows; one point per concurrency (or Poisson rate) */
    if (!strcmp(g->sig.workload, "serve") && g->tps[HB_TOK_OUT] > 0) {
        double u = 0, rate = 0;
        int n = 0;
        for (int j = 0; j < g->n_entries; j++) {
            const hb_summary_row *r = rep->entries[g->entries[j]].row;
            if (strcmp(r->status, "ok") || !(r->interactivity > 0) || !isfinite(r->interactivity)) continue;
            u += r->interactivity, rate += r->arrival_rate, n++;
        }
        if (!n) return 0;
        *per_user = u / n;
        *per_device = g->tps[HB_TOK_OUT];
        if (g->sig.concurrency > 0) snprintf(pt, len, "C=%lld", (long long)g->sig.concurrency);
        else snprintf(pt, len, "%.3g req/s", rate / n);
        return 1;
    }
    return 0;
}

/* The series of a group on the interactivity charts: one curve per device and ISL/OSL (serve)
 * or per device and case family (decode). */
static void interactivity_series(const hb_report *rep, const hb_rgroup *g, char *name, size_t len) {
    if (!strcmp(g->sig.workload, "serve"))
        snprintf(name, len, "%.100s (%.15s): %.60s %s serve %lld/%lld", g->device, g->backend, g->sig.model,
                 g->sig.dtype, (long long)g->sig.isl, (long long)g->sig.osl);
    else
        family(rep, g, "batch", name, len);
}

/* Throughput per device vs interactivity, and beside it $/M output tokens vs interactivity
 * (the same points priced at the report's tier: lower and to the right is better). */
static void section_interactivity(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"throughput-interactivity\">Throughput vs interactivity</h2>\n", f);
    series *s = calloc(2 * MAX_SERIES, sizeof *s);
    if (!s) return;
    series *c = s + MAX_SERIES;
    int n = 0, nc = 0, unpriced = 0;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        double u, d;
        char pt[32], name[240];
        if (!interactivity_point(rep, g, &u, &d, pt, sizeof pt)) continue;
        interactivity_series(rep, g, name, sizeof name);
        add_point(rep, g, s, &n, name, LINE_PARETO, u, d, pt);
        if (g->priced && isfinite(g->usd_mtok[HB_TOK_OUT]) && g->usd_mtok[HB_TOK_OUT] > 0)
            add_point(rep, g, c, &nc, name, LINE_PARETO_LOW, u, g->usd_mtok[HB_TOK_OUT], pt);
        else unpriced++;
    }
    if (n == 0) {
        fputs("<p class=\"none\">No decode or serve results: this chart needs decode cases (a batch sweep, e.g. --batch "
              "1,8,32) or serve cases (a concurrency sweep, e.g. --concurrency 1,4,16).</p>\n", f);
        free(s);
        return;
    }
    fputs("<div class=\"grid2\">\n<div id=\"chart-throughput-interactivity\">\n", f);
    axis ax = {0, 0, spans_decade(s, n, 0), "interactivity: output tokens/s per user"};
    axis ay = {0, 0, spans_decade(s, n, 1), "output tokens/s per device"};
    line_chart(f, "Throughput per device vs interactivity", &ax, &ay, s, n, 600, 380);
    fputs("</div>\n<div id=\"chart-cost-interactivity\">\n", f);
    if (!rep->prices) {
        fputs("<p class=\"none\">$/M output tokens vs interactivity: no prices given (hetbench report --prices FILE).</p>\n",
              f);
    } else if (nc == 0) {
        fputs("<p class=\"none\">$/M output tokens vs interactivity: no price for any of these devices.</p>\n", f);
    } else {
        axis cx = {0, 0, spans_decade(c, nc, 0), "interactivity: output tokens/s per user"};
        axis cy = {0, 0, spans_decade(c, nc, 1), "US$ per million output tokens"};
        line_chart(f, "US$ per million output tokens vs interactivity", &cx, &cy, c, nc, 600, 380);
    }
    fputs("</div>\n</div>\n", f);
    fputs("<p class=\"cap\">Each point is one decode batch size B (interactivity 1 / time per token) or one serve "
          "concurrency C or Poisson rate (interactivity 1 / TPOT p50, throughput the stream's output tokens/s per "
          "device; one curve per device and ISL/OSL). Left: the line joins each device's Pareto front (no other point of "
          "that device is better on both axes); hollow points are dominated; up and to the right is better. Right: the "
          "same points at US$ per million output tokens of the price tier above (device-hour price ÷ output tokens per "
          "hour, plus the energy term unless the tier includes power); the line joins the cheapest-at-each-speed front; "
          "down and to the right is better.</p>\n", f);
    if (rep->prices && unpriced && nc)
        fprintf(f, "<p class=\"none\">%d point%s without a price left out of the cost chart.</p>\n", unpriced,
                unpriced > 1 ? "s" : "");
    free(s);
}

/* Poisson serve cases with SLOs: TTFT p99 and TPOT p99 of each (mean over its devices) as bars,
 * each with its SLO bound as a line and the verdict beside the value (VALID when every device's
 * p99s met both bounds, MLPerf Server's rule). */
static void section_slo(FILE *f, const hb_report *rep) {
    int any = 0;
    for (int i = 0; i < rep->n_groups && !any; i++)
        any = !strcmp(rep->groups[i].sig.workload, "serve") && (rep->groups[i].sig.slo_ttft_s > 0 || rep->groups[i].sig.slo_tpot_s > 0);
    if (!any) return; /* no section for reports without SLO cases */
    fputs("<h2 id=\"serve-slo\">Serving latency p99 vs the SLOs</h2>\n", f);
    static const char *const what[2] = {"TTFT", "TPOT"};
    bar *b = calloc(MAX_BARS, sizeof *b);
    if (!b) return;
    for (int k = 0; k < 2; k++) {
        int n = 0;
        omitted om = {0};
        for (int i = 0; i < rep->n_groups && n < MAX_BARS; i++) {
            const hb_rgroup *g = &rep->groups[i];
            if (strcmp(g->sig.workload, "serve") || !(g->sig.slo_ttft_s > 0 || g->sig.slo_tpot_s > 0)) continue;
            hb_serve_means m;
            hb_report_serve_means(rep, g, &m);
            const double v = k ? m.tpot_p99_s : m.ttft_p99_s, bound = k ? g->sig.slo_tpot_s : g->sig.slo_ttft_s;
            if (!m.n_ok || !isfinite(v)) {
                omit(&om, "no ok stream");
                continue;
            }
            set_bar(rep, g, &b[n]);
            char rate[48];
            if (g->sig.arrival_rate > 0) snprintf(rate, sizeof rate, "%.4g req/s", g->sig.arrival_rate);
            else snprintf(rate, sizeof rate, "search: %.4g req/s", m.arrival_rate);
            const size_t l = strlen(b[n].label);
            snprintf(b[n].label + l, sizeof b[n].label - l, " · %s", rate);
            b[n].v = 1e3 * v;
            if (bound > 0) b[n].has_ref = 1, b[n].ref = 1e3 * bound;
            /* the case's verdict covers both bounds; this bar's own bound is marked too */
            const int met = !(bound > 0) || v <= bound;
            snprintf(b[n].note, sizeof b[n].note, "%s%s", m.slo == 1 ? "VALID" : m.slo == 0 ? "INVALID" : "no verdict",
                     bound > 0 ? (met ? " (within)" : " (exceeds)") : " (no bound)");
            b[n].bad = m.slo == 0;
            n++;
        }
        char title[96], xl[96];
        snprintf(title, sizeof title, "%s p99 vs its SLO (Poisson arrivals)", what[k]);
        snprintf(xl, sizeof xl, "%s p99, ms (line: the case's slo_%s_s)", what[k], k ? "tpot" : "ttft");
        fprintf(f, "<h3>%s</h3>\n", title);
        if (n) bar_chart(f, title, xl, "ms", b, n, NULL, NAN);
        else fprintf(f, "<p class=\"none\">No %s p99 to draw.</p>\n", what[k]);
        omitted_line(f, &om, "Groups");
    }
    free(b);
    fputs("<p class=\"cap\">Each bar is one Poisson serve case on one device model (mean over its devices of each "
          "device's last timed stream); the vertical line is the case's bound. VALID: every device's TTFT p99 and TPOT "
          "p99 were within slo_ttft_s and slo_tpot_s (both bounds: a bar within its own bound can belong to an INVALID "
          "case); (within)/(exceeds) compares this bar with its own bound.</p>\n", f);
}

/* decode tokens/s vs B with the bandwidth-bound ideal: every decode step reads the weights and the
 * KV cache, so tokens/s <= peak bandwidth / bytes per token (bytes per token = B/s / tokens/s) */
static void section_batch(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"batch-sweep\">Decode batch sweep vs the bandwidth-bound ideal</h2>\n", f);
    series *s = calloc(2 * MAX_SERIES, sizeof *s);
    if (!s) return;
    int n = 0, n_ideal = 0;
    series *ideal = s + MAX_SERIES;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (strcmp(g->sig.workload, "decode") != 0 || !(g->tps[HB_TOK_OUT] > 0)) continue;
        char name[240], pt[16];
        family(rep, g, "batch", name, sizeof name);
        snprintf(pt, sizeof pt, "B=%lld", (long long)g->sig.batch);
        add_point(rep, g, s, &n, name, LINE_POINTS, (double)g->sig.batch, g->tps[HB_TOK_OUT], pt);
        double bytes_per_tok = g->bytes_per_s / g->tps[HB_TOK_OUT];
        if (isfinite(g->peak_bps) && g->peak_bps > 0 && bytes_per_tok > 0) {
            char iname[260];
            snprintf(iname, sizeof iname, "ideal of %.200s", name);
            add_point(rep, g, ideal, &n_ideal, iname, LINE_IDEAL, (double)g->sig.batch, g->peak_bps / bytes_per_tok, NULL);
        }
    }
    if (n == 0) {
        fputs("<p class=\"none\">No decode results: this chart needs decode cases at several batch sizes.</p>\n", f);
    } else {
        for (int i = 0; i < n_ideal && n < 2 * MAX_SERIES; i++) s[n++] = ideal[i];
        axis ax = {0, 0, spans_decade(s, n, 0), "decode batch size B (sequences)"};
        axis ay = {0, 0, spans_decade(s, n, 1), "output tokens/s per device"};
        line_chart(f, "Decode tokens/s vs batch size", &ax, &ay, s, n, 900, 380);
        fputs("<p class=\"cap\">Lines with points: measured; dotted: the bandwidth-bound ideal of the same device and case "
              "family (peak memory bandwidth ÷ bytes moved per output token). The gap is what the implementation leaves; "
              "where the measured line flattens below the dotted one, compute or overheads bind. A case that fits in the "
              "last-level cache can beat the DRAM ideal.</p>\n", f);
        if (n_ideal == 0) fputs("<p class=\"none\">No ideal drawn: no device recorded its memory bandwidth ceiling.</p>\n", f);
    }
    free(s);
}

/* time to first token vs prompt length: a prefill iteration is the TTFT of its B prompts */
static void section_ttft(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"ttft\">Time to first token vs prompt length</h2>\n", f);
    series *s = calloc(MAX_SERIES, sizeof *s);
    if (!s) return;
    int n = 0;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        if (strcmp(g->sig.workload, "prefill") != 0 || !isfinite(g->lat_p50_s)) continue;
        char name[240], pt[24];
        family(rep, g, "prompt", name, sizeof name);
        snprintf(pt, sizeof pt, "P=%lld", (long long)g->sig.prompt);
        add_point(rep, g, s, &n, name, LINE_POINTS, (double)g->sig.prompt, g->lat_p50_s * 1e3, pt);
    }
    if (n == 0) {
        fputs("<p class=\"none\">No prefill results: this chart needs prefill cases at several prompt lengths "
              "(e.g. --workload prefill --prompt 128,512).</p>\n", f);
    } else {
        axis ax = {0, 0, spans_decade(s, n, 0), "prompt length P (tokens)"};
        axis ay = {0, 0, spans_decade(s, n, 1), "time to first token, p50 (ms)"};
        line_chart(f, "Time to first token vs prompt length", &ax, &ay, s, n, 900, 340);
        fputs("<p class=\"cap\">TTFT = the p50 time of one prefill iteration over B prompts of P tokens (no queueing). "
              "Lower is better.</p>\n", f);
    }
    free(s);
}

/* speedup and J/token of each group relative to the baseline device's group of the same case */
static void section_baseline(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"baseline\">Relative to a reference device</h2>\n", f);
    if (!rep->baseline[0]) {
        fputs("<p class=\"none\">No reference device chosen (hetbench report --baseline DEVICE): speedup and energy ratios "
              "not drawn.</p>\n", f);
        return;
    }
    bar sp[MAX_BARS], en[MAX_BARS];
    int ns = 0, ne = 0;
    omitted os = {0}, oe = {0};
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i], *base = NULL;
        for (int j = 0; j < rep->n_groups && !base; j++) {
            const hb_rgroup *h = &rep->groups[j];
            if (!strcmp(h->device, rep->baseline) && !strcmp(h->backend, rep->baseline_backend) &&
                hb_sig_cmp(&h->sig, &g->sig) == 0)
                base = h;
        }
        if (!base) {
            omit(&os, "the reference device did not run the case");
            continue;
        }
        if (base == g) continue; /* 1x by definition: the line */
        if (ns < MAX_BARS && isfinite(g->rate) && base->rate > 0) {
            set_bar(rep, g, &sp[ns]);
            sp[ns].v = g->rate / base->rate;
            if (g->rate_lo > 0 && base->rate_lo > 0) sp[ns].lo = g->rate_lo / base->rate_hi, sp[ns].hi = g->rate_hi / base->rate_lo;
            ns++;
        } else if (!isfinite(g->rate) || !(base->rate > 0)) {
            omit(&os, "no rate");
        }
        double ja = g->j_per_tok[HB_TOK_TOTAL], jb = base->j_per_tok[HB_TOK_TOTAL];
        if (ne < MAX_BARS && isfinite(ja) && jb > 0) {
            set_bar(rep, g, &en[ne]);
            en[ne++].v = ja / jb;
        } else if (g->tps[HB_TOK_TOTAL] > 0) {
            omit(&oe, !isfinite(jb) ? "no valid energy on the reference device" : "no valid energy");
        }
    }
    fputs("<p class=\"cap\">Reference: ", f);
    esc(f, rep->baseline);
    fputs(" (", f);
    esc(f, rep->baseline_backend);
    fputs("), drawn as 1× (the vertical line).</p>\n<h3>Speedup (headline rate ÷ reference's, same case)</h3>\n", f);
    if (ns) bar_chart(f, "Speedup relative to the reference device", "speedup over the reference device (×)", "×", sp, ns,
                      "the ratio's bounds from both 95% intervals", 1.0);
    omitted_line(f, &os, "Groups");
    fputs("<h3>Energy per token relative to the reference (lower is better)</h3>\n", f);
    if (ne) bar_chart(f, "J per token relative to the reference device", "J per token ÷ the reference device's J per token (×)",
                      "×", en, ne, NULL, 1.0);
    else if (!oe.n) fputs("<p class=\"none\">No result with tokens.</p>\n", f);
    omitted_line(f, &oe, "Groups");
}

/* power over time: one chart per case signature with a trace, one line per device */
static void section_power(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"power\">Power over time</h2>\n", f);
    series *s = calloc(MAX_SERIES, sizeof *s);
    if (!s) return;
    int charts = 0, more = 0, without = 0;
    fputs("<div class=\"grid2\">\n", f);
    for (int gi = 0; gi < rep->n_groups; gi++) {
        if (gi > 0 && hb_sig_cmp(&rep->groups[gi].sig, &rep->groups[gi - 1].sig) == 0) continue;
        int n = 0;
        for (int gj = gi; gj < rep->n_groups && hb_sig_cmp(&rep->groups[gj].sig, &rep->groups[gi].sig) == 0; gj++) {
            const hb_rgroup *g = &rep->groups[gj];
            for (int j = 0; j < g->n_entries && n < MAX_SERIES; j++) {
                const hb_rentry *e = &rep->entries[g->entries[j]];
                if (!e->rec || e->rec->n_power <= 0 || !e->rec->power) continue;
                series *x = &s[n++];
                memset(x, 0, sizeof *x);
                snprintf(x->name, sizeof x->name, "%s (%s) rank %d, file %d", g->device, g->backend, e->row->rank, e->file + 1);
                x->colour = device_colour(rep, g->device, g->backend);
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
        if (n == 0) {
            without++;
            continue;
        }
        if (charts == MAX_POWER_CHARTS) {
            more++;
            continue;
        }
        charts++;
        fputs("<div><h3>", f);
        esc(f, rep->groups[gi].label);
        fputs("</h3>\n", f);
        axis ax = {0, 0, 0, "time since the window start (s)"}, ay = {0, 0, 0, "power (W)"};
        line_chart(f, rep->groups[gi].label, &ax, &ay, s, n, 440, 220);
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    if (charts == 0 && without == 0) fputs("<p class=\"none\">No results.</p>\n", f);
    else if (charts == 0) fprintf(f, "<p class=\"none\">No power trace in any of the %d cases (no sampling meter).</p>\n", without);
    else if (without) fprintf(f, "<p class=\"none\">%d case%s with no power trace not drawn.</p>\n", without, without > 1 ? "s" : "");
    if (more) fprintf(f, "<p class=\"cap\">%d more cases not drawn.</p>\n", more);
    free(s);
}

/* "decode B=4 bf16", "gemm 64×64×64 bf16": a roofline point's direct label */
static void short_tag(const hb_rgroup *g, char *buf, size_t len) {
    const hb_sig *s = &g->sig;
    if (!strcmp(s->workload, "gemm"))
        snprintf(buf, len, "gemm %lld×%lld×%lld %s", (long long)s->m, (long long)s->n, (long long)s->k, s->dtype);
    else if (!strcmp(s->workload, "stream")) snprintf(buf, len, "stream %s", s->stream_op);
    else if (!strcmp(s->workload, "prefill"))
        snprintf(buf, len, "prefill %.20s P=%lld %s", s->model, (long long)s->prompt, s->dtype);
    else if (!strcmp(s->workload, "decode"))
        snprintf(buf, len, "decode %.20s B=%lld %s", s->model, (long long)s->batch, s->dtype);
    else snprintf(buf, len, "%.15s %.20s %s", s->workload, s->model, s->dtype);
}

/* achieved FLOP/s vs arithmetic intensity: one chart per (file, device model), each with the
 * ceilings that file recorded (two runs with different ceilings never share a roof) */
static void section_roofline(FILE *f, const hb_report *rep) {
    fputs("<h2 id=\"roofline\">Achieved vs ceilings (roofline)</h2>\n<div class=\"grid2\">\n", f);
    hb_roofline *rl = NULL;
    int n_rl = 0, drawn = 0;
    hb_err err;
    placer *pl = malloc(sizeof *pl);
    if (!pl || hb_report_rooflines(rep, &rl, &n_rl, &err) != HB_OK) n_rl = 0;
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
        ay.hi *= 3; /* room for the peak labels above the highest roof */
        const int w = 440, h = 300;
        frame fr = {70, w - 20, h - 46, 10};
        memset(pl, 0, sizeof *pl);
        pl->bound = (lbox){fr.x0 + 1, fr.y1 + 1, fr.x1 - 1, fr.y0 - 1};
        const char *colour = device_colour(rep, x->device, x->backend);
        fputs("<div><h3>", f);
        esc(f, x->device);
        fputs(" (", f);
        esc(f, x->backend);
        fprintf(f, "), file %d</h3>\n", x->file + 1);
        char title[200];
        snprintf(title, sizeof title, "Roofline of %.150s, file %d", x->device, x->file + 1);
        svg_open(f, w, h, title);
        draw_axes(f, &fr, &ax, &ay, 1);
        for (int i = 0; i < n; i++) {
            double cx = px(&fr, &ax, x->intensity[i]), cy = py(&fr, &ay, x->flops_per_s[i]);
            reserve(pl, (lbox){cx - 4, cy - 4, cx + 4, cy + 4});
        }
        int hidden = 0;
        for (int i = 0; i < np; i++) {
            double pk = x->peak_flops[i];
            double ridge = isfinite(bw) ? pk / bw : ax.lo;
            double xa = fmax(ax.lo, ay.lo / (isfinite(bw) ? bw : 1));
            fprintf(f, "<path fill=\"none\" stroke=\"#333\" stroke-width=\"1.3\" stroke-dasharray=\"%s\" d=\"", dashes[i % 5]);
            if (isfinite(bw) && ridge > ax.lo)
                fprintf(f, "M%.1f %.1fL%.1f %.1f", px(&fr, &ax, xa), py(&fr, &ay, xa * bw), px(&fr, &ax, ridge), py(&fr, &ay, pk));
            else fprintf(f, "M%.1f %.1f", px(&fr, &ax, ax.lo), py(&fr, &ay, pk));
            fprintf(f, "H%.1f\"/>\n", px(&fr, &ax, ax.hi));
        }
        /* peak labels: dtypes with the same peak share one label; each goes where it is free, at
         * the right end above its roof, else below it */
        for (int i = 0; i < np; i++) {
            int dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = fabs(x->peak_flops[j] - x->peak_flops[i]) <= 1e-6 * x->peak_flops[i];
            if (dup) continue;
            char lab[160] = "", b[32];
            for (int j = i; j < np; j++)
                if (fabs(x->peak_flops[j] - x->peak_flops[i]) <= 1e-6 * x->peak_flops[i]) {
                    size_t l = strlen(lab);
                    snprintf(lab + l, sizeof lab - l, "%s%s", l ? ", " : "", x->peak_dtype[j]);
                }
            size_t l = strlen(lab);
            snprintf(lab + l, sizeof lab - l, " peak %s", si_text(b, sizeof b, x->peak_flops[i], "FLOP/s"));
            double y = py(&fr, &ay, x->peak_flops[i]);
            if (!put_label(f, pl, fr.x1 - 2, y, lab, "pt", 9)) hidden++;
        }
        if (isfinite(bw)) {
            char b[32];
            double xl = fmax(ax.lo, ay.lo / bw) * 1.5;
            if (!put_label(f, pl, px(&fr, &ax, xl), py(&fr, &ay, xl * bw), si_text(b, sizeof b, bw, "B/s"), "pt", 9)) hidden++;
        }
        for (int i = 0; i < n; i++) {
            double cx = px(&fr, &ax, x->intensity[i]), cy = py(&fr, &ay, x->flops_per_s[i]);
            char tag[96];
            short_tag(&rep->groups[x->group[i]], tag, sizeof tag);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.85\"><title>", cx, cy, colour);
            esc(f, tag);
            fprintf(f, ": %.4g FLOP/byte, %.4g FLOP/s</title></circle>\n", x->intensity[i], x->flops_per_s[i]);
            if (!put_label(f, pl, cx, cy, tag, "pt", 9)) hidden++;
        }
        fputs("</svg>\n", f);
        if (np == 0 || !isfinite(bw)) fputs("<p class=\"cap\">ceilings not recorded for this device</p>\n", f);
        if (hidden) fprintf(f, "<p class=\"cap\">%d label%s left out for lack of room (hover the points).</p>\n", hidden,
                            hidden > 1 ? "s" : "");
        fputs("</div>\n", f);
    }
    free(rl);
    free(pl);
    fputs("</div>\n", f);
    if (!drawn) fputs("<p class=\"none\">No result with both FLOP/s and bytes/s.</p>\n", f);
}

/* "269 GFLOP/s [267, 271]": the value's SI prefix for all three, three significant digits */
static void si_ci(char *b, size_t len, double v, double lo, double hi, const char *unit) {
    static const char *const pre[] = {"", "k", "M", "G", "T", "P", "E"};
    if (!isfinite(v) || v == 0) {
        snprintf(b, len, "—");
        return;
    }
    int p = 0;
    double scale = 1;
    while (fabs(v) / scale >= 1000 && p < 6) scale *= 1000, p++;
    if (isfinite(lo) && isfinite(hi))
        snprintf(b, len, "%.3g %s%s [%.3g, %.3g]", v / scale, pre[p], unit, lo / scale, hi / scale);
    else snprintf(b, len, "%.3g %s%s", v / scale, pre[p], unit);
}

static void td_ci(FILE *f, double v, double lo, double hi, const char *unit) {
    char b[128];
    si_ci(b, sizeof b, v, lo, hi, unit);
    td(f, b, 1);
}

static void td_note(FILE *f, const char *s, int bad) {
    fputs(bad ? "<td class=\"bad\">" : "<td>", f);
    esc(f, s);
    fputs("</td>", f);
}

/* Two tables (throughput; energy, numerics and configuration) so that each fits the page. */
static void section_tables(FILE *f, const hb_report *rep) {
    char b[640];
    fputs("<h2 id=\"table\">Results per case and device model</h2>\n<h3>Throughput</h3>\n<table>\n<tr><th>case</th>"
          "<th>device (backend)</th><th>devices</th><th>rate per device [95% CI]</th><th>tokens/s in</th><th>tokens/s out</th>"
          "<th>tokens/s total</th><th>p50 ms</th><th>p95 ms</th><th>MFU</th><th>BW util</th><th>timing</th></tr>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        fputs("<tr>", f);
        td(f, g->label, 0);
        snprintf(b, sizeof b, "%s (%s)", g->device, g->backend);
        td(f, b, 0);
        snprintf(b, sizeof b, g->n_failed ? "%d (%d failed)" : "%d", g->n_ok, g->n_failed);
        td(f, b, 1);
        if (g->files_disagree) { /* not averaged: each file's value instead */
            snprintf(b, sizeof b, "files disagree, not averaged: %s", g->per_file);
            td_note(f, b, 1);
        } else {
            td_ci(f, g->rate, g->rate_lo, g->rate_hi, g->rate_unit);
        }
        for (int k = 0; k < HB_TOK_N; k++) td_ci(f, g->tps[k], g->tps_lo[k], g->tps_hi[k], "");
        tdn(f, g->lat_p50_s * 1e3, NULL), tdn(f, g->lat_p95_s * 1e3, NULL);
        tdn(f, g->mfu * 100, "%.3g%%"), tdn(f, g->bw_util * 100, "%.3g%%");
        hb_report_timing_note(g, b, sizeof b);
        td_note(f, b, g->n_timing_invalid);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<h3>Energy, numerics and configuration</h3>\n<table>\n<tr><th>case</th><th>device (backend)</th>"
          "<th>configuration</th><th>avg W</th><th>J/token out</th><th>J/token total</th><th>tokens/J</th><th>energy</th>"
          "<th>energy covers</th><th>numerics</th></tr>\n", f);
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *g = &rep->groups[i];
        fputs("<tr>", f);
        td(f, g->label, 0);
        snprintf(b, sizeof b, "%s (%s)", g->device, g->backend);
        td(f, b, 0);
        td(f, g->config, 0);
        tdn(f, g->avg_w, NULL);
        tdn(f, g->j_per_tok[HB_TOK_OUT], NULL), tdn(f, g->j_per_tok[HB_TOK_TOTAL], NULL), tdn(f, g->tok_per_j, NULL);
        hb_report_energy_note(g, b, sizeof b);
        td_note(f, b, g->n_energy_invalid);
        hb_report_energy_boundary(rep, g, b, sizeof b);
        td(f, b, 0);
        if (g->fp == HB_FP_MISMATCH) {
            snprintf(b, sizeof b, "MISMATCH %.2g > %.0e vs %s", g->fp_max_rel, g->fp_tol, g->fp_ref);
            td_note(f, b, 1);
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
    "check are used; the energy column says when some were left out and why. <i>not measured</i> means no meter. "
    "<i>Energy covers</i> says where the boundary of the joules lies: <i>device only</i> for a GPU (its board or "
    "package meter; the host's CPUs, memory and power supply are outside it, and a host RAPL reading is recorded "
    "beside it, never added), <i>device = host</i> for a CPU rank (RAPL: its packages and DRAM). J per output token "
    "of a GPU and of a CPU therefore cover different boundaries.</li>\n"
    "<li><b>$ per million tokens</b> = price per device-hour ÷ tokens per hour × 10⁶, plus electricity × PUE × J per token "
    "unless the price tier already includes power. <i>no price</i>: the prices file has no entry for the device.</li>\n"
    "<li><b>Throughput vs interactivity</b>: one line per device and model (serve: and ISL/OSL) through its Pareto "
    "front; each point a decode batch size or a serve concurrency. Up and to the right is better. Beside it, the same "
    "points in US$ per million output tokens: down and to the right is better.</li>\n"
    "<li><b>Serving latency p99 vs the SLOs</b>: Poisson serve cases with slo_ttft_s / slo_tpot_s, each p99 against its "
    "bound, VALID or INVALID (both bounds met by every device).</li>\n"
    "<li><b>Roofline</b>: a point under the slanted line is limited by memory bandwidth, under the flat line by compute; "
    "the distance to the line is the headroom. Ceilings are datasheet peaks (GPUs) or measured (CPU).</li>\n"
    "<li><b>Numerics</b>: output fingerprints of the same case and seed on different devices must agree within the "
    "dtype's tolerance; a mismatch means the devices did not compute the same function.</li>\n"
    "<li>Colours: one per device model and backend, the same in every chart (legend above; lighter bars: CPU backend). "
    "A chart with nothing to draw says why in one line.</li>\n</ul>\n";

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
    section_baseline(f, rep);
    section_interactivity(f, rep);
    section_slo(f, rep);
    section_batch(f, rep);
    section_ttft(f, rep);
    section_power(f, rep);
    section_roofline(f, rep);
    section_tables(f, rep);
    fputs("</body>\n</html>\n", f);
    return HB_OK;
}
