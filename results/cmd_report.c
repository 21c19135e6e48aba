/* cmd_report.c - the command lines of `hetbench report`, `check` and `compare`: flags, help,
 * output file, exit codes (0 ok; 1 a gate claim refuted / a regression; 2 usage or input
 * error, one line on stderr). The work is in report.c, prices.c, claims.c and compare.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/commands.h"
#include "report.h"

static const char *const help_report =
    "usage: hetbench report FILE.h5... [--prices P.yaml] [--tier NAME] [--baseline DEVICE] [--format md|csv|json|html]\n"
    "                       [-o OUT]\n"
    "\n"
    "Groups every result of the files by case x device model x backend (across ranks and files) and\n"
    "prints per group: devices counted, rate and tokens/s per device (in/out/total) with 95% CIs,\n"
    "decode latency p50/p95, MFU, bandwidth utilisation, W, J/token, tokens/J, $ per million tokens\n"
    "(with --prices), the fingerprint check between devices and the provenance.\n"
    "\n"
    "options:\n"
    "  --prices FILE   prices file (results/prices/*.yaml); without it no cost is computed\n"
    "  --tier NAME     price tier (default: the file's default_tier)\n"
    "  --baseline DEV  reference device (its name, or a unique part of it) of the HTML report's\n"
    "                  speedup and J/token charts: every group of a case relative to DEV's\n"
    "  --format F      md (default), csv, json or html (one self-contained file with SVG charts);\n"
    "                  default from -o's extension (.md .csv .json .html)\n"
    "  -o, --out OUT   write to OUT instead of standard output\n"
    "\n"
    "exit codes: 0 written, 2 usage or input error (unreadable or foreign file, bad prices file)\n";

static const char *const help_check =
    "usage: hetbench check CLAIMS.yaml FILE.h5... [--prices P.yaml] [--tier NAME]\n"
    "\n"
    "Checks each claim of CLAIMS.yaml (results/claims/*.yaml) against the results and prints its\n"
    "verdict with the numbers used: supported, refuted, inconclusive (the 95% interval straddles\n"
    "the threshold) or untestable (no matching results). Cost metrics need --prices.\n"
    "\n"
    "exit codes: 0 no gate claim refuted, 1 a claim marked gate: true is refuted, 2 usage or input error\n";

static const char *const help_compare =
    "usage: hetbench compare BASE.h5 NEW.h5 [--max-regression PCT]\n"
    "\n"
    "Matches the results of NEW with BASE (case, device model, backend, rank) and prints the\n"
    "ratio NEW/BASE of the headline rate with its 95% interval and of J per token. A match is a\n"
    "regression when NEW is slower by more than PCT percent (default 5) beyond the noise: the\n"
    "repetitions' ranges (--repeat on both sides) or else the two 95% CIs do not overlap; a case\n"
    "that failed in NEW is one too. A match with invalid timing (timing_valid 0) on either side\n"
    "is not judged.\n"
    "\n"
    "exit codes: 0 no regression, 1 a regression, 2 usage or input error (also: nothing matched),\n"
    "3 no regression among the judged matches but some were not judged (invalid timing)\n";

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static int usage(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "hetbench %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'hetbench %s --help')\n", cmd);
    return 2;
}

static int fail(const char *cmd, hb_status st, const hb_err *err) {
    fprintf(stderr, "hetbench %s: %s\n", cmd, err->msg[0] ? err->msg : hb_status_str(st));
    return st == HB_ERR_INPUT ? 2 : 1;
}

/* Option `name` with a value, as "--name value" or "--name=value"; advances *i. 1 matched,
 * 0 not this option, -1 missing value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char *alias, const char **out) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (!strncmp(a, name, n) && a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (strcmp(a, name) != 0 && !(alias && !strcmp(a, alias))) return 0;
    if (*i + 1 >= argc) return -1;
    *out = argv[++*i];
    return 1;
}

typedef struct opts {
    const char *prices, *tier, *format, *out, *max_reg, *baseline;
    const char **files;
    int n_files;
} opts;

/* Parses the options a command accepts (allowed: "ptfomb" = prices, tier, format, out, max-reg,
 * baseline). */
static int parse(const char *cmd, int argc, char **argv, const char *allowed, opts *o) {
    static const struct { char c; const char *name, *alias; } table[] = {
        {'p', "--prices", NULL}, {'t', "--tier", NULL}, {'f', "--format", NULL},
        {'o', "--out", "-o"},   {'m', "--max-regression", NULL}, {'b', "--baseline", NULL},
    };
    memset(o, 0, sizeof *o);
    o->files = calloc((size_t)argc + 1, sizeof *o->files);
    if (!o->files) {
        fprintf(stderr, "hetbench %s: out of memory\n", cmd);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !strcmp(a, "-")) {
            o->files[o->n_files++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            while (++i < argc) o->files[o->n_files++] = argv[i];
            break;
        }
        int matched = 0;
        for (int t = 0; t < HB_ARRAY_LEN(table) && !matched; t++) {
            if (!strchr(allowed, table[t].c)) continue;
            const char *v = NULL;
            int r = opt_value(argc, argv, &i, table[t].name, table[t].alias, &v);
            if (r == 0) continue;
            if (r < 0 || !*v) return usage(cmd, "%s: missing value", table[t].name);
            const char **slot = table[t].c == 'p' ? &o->prices : table[t].c == 't' ? &o->tier
                              : table[t].c == 'f' ? &o->format : table[t].c == 'o' ? &o->out
                              : table[t].c == 'b' ? &o->baseline : &o->max_reg;
            if (*slot) return usage(cmd, "%s given twice", table[t].name);
            *slot = v;
            matched = 1;
        }
        if (!matched) return usage(cmd, "unknown option '%s'", a);
    }
    return 0;
}

static hb_status load_prices(const opts *o, hb_prices **p, hb_err *err) {
    *p = NULL;
    if (!o->prices) return HB_OK;
    return hb_prices_load(o->prices, p, err);
}

static const char *format_of(const opts *o) {
    if (o->format) return o->format;
    const char *dot = o->out ? strrchr(o->out, '.') : NULL;
    if (dot && (!strcmp(dot, ".html") || !strcmp(dot, ".htm"))) return "html";
    if (dot && !strcmp(dot, ".csv")) return "csv";
    if (dot && !strcmp(dot, ".json")) return "json";
    return "md";
}

int hb_cmd_report(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(help_report, stdout);
        return 0;
    }
    opts o;
    int rc = parse("report", argc, argv, "ptfob", &o);
    if (rc) {
        free(o.files);
        return rc;
    }
    const char *format = format_of(&o);
    if (strcmp(format, "md") && strcmp(format, "csv") && strcmp(format, "json") && strcmp(format, "html")) {
        free(o.files);
        return usage("report", "--format: unknown format '%s' (accepted: md, csv, json, html)", format);
    }
    if (o.n_files == 0) {
        free(o.files);
        return usage("report", "no results file given%s (accepted: one or more FILE.h5)", "");
    }
    hb_err err = {{0}};
    hb_prices *prices = NULL;
    hb_report *rep = NULL;
    hb_status st = load_prices(&o, &prices, &err);
    if (st == HB_OK) st = hb_report_load(o.files, o.n_files, &rep, &err);
    if (st == HB_OK && o.tier && !prices) st = hb_errf(&err, HB_ERR_INPUT, "--tier needs --prices");
    if (st == HB_OK) st = hb_report_price(rep, prices, o.tier, &err);
    if (st == HB_OK && o.baseline) st = hb_report_set_baseline(rep, o.baseline, &err);
    if (st == HB_OK && prices && o.tier) {
        int found = 0;
        for (int i = 0; i < prices->n_devices && !found; i++) found = hb_prices_tier(prices, &prices->devices[i], o.tier) != NULL;
        if (!found) st = hb_errf(&err, HB_ERR_INPUT, "--tier: no device in %s has a tier '%s'", prices->path, o.tier);
    }
    if (st == HB_OK) {
        FILE *f = o.out ? fopen(o.out, "w") : stdout;
        if (!f) {
            st = hb_errf(&err, HB_ERR_INPUT, "%s: cannot write: %s", o.out, strerror(errno));
        } else {
            st = hb_report_write(rep, format, f, &err);
            int bad = ferror(f);
            if (o.out) bad |= fclose(f) != 0;
            else bad |= fflush(f) != 0;
            if (st == HB_OK && bad) st = hb_errf(&err, HB_ERR_IO, "%s: write failed", o.out ? o.out : "standard output");
            if (st != HB_OK && o.out) unlink(o.out);
        }
    }
    if (st == HB_OK && rep->n_fp_mismatch)
        fprintf(stderr, "hetbench report: warning: %d group%s with a fingerprint mismatch between devices\n",
                rep->n_fp_mismatch, rep->n_fp_mismatch > 1 ? "s" : "");
    hb_report_free(rep);
    hb_prices_free(prices);
    free(o.files);
    return st == HB_OK ? 0 : fail("report", st, &err);
}

int hb_cmd_check(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(help_check, stdout);
        return 0;
    }
    opts o;
    int rc = parse("check", argc, argv, "pt", &o);
    if (rc) {
        free(o.files);
        return rc;
    }
    if (o.n_files < 2) {
        free(o.files);
        return usage("check", "expected CLAIMS.yaml and at least one results file%s", "");
    }
    hb_err err = {{0}};
    hb_prices *prices = NULL;
    hb_claims *claims = NULL;
    hb_report *rep = NULL;
    hb_status st = hb_claims_load(o.files[0], &claims, &err);
    if (st == HB_OK) st = load_prices(&o, &prices, &err);
    if (st == HB_OK && o.tier && !prices) st = hb_errf(&err, HB_ERR_INPUT, "--tier needs --prices");
    if (st == HB_OK) st = hb_report_load(o.files + 1, o.n_files - 1, &rep, &err);
    int counts[4] = {0}, gate_refuted = 0;
    for (int i = 0; st == HB_OK && i < hb_claims_count(claims); i++) {
        const char *tier = hb_claims_tier(claims, i);
        st = hb_report_price(rep, prices, tier ? tier : o.tier, &err);
        if (st != HB_OK) break;
        hb_claim_result res;
        hb_claims_print(claims, i, rep, &res, stdout);
        fputc('\n', stdout);
        counts[res.verdict]++;
        if (res.verdict == HB_VERDICT_REFUTED && hb_claims_gate(claims, i)) gate_refuted++;
    }
    if (st == HB_OK) {
        printf("# %d claims: %d supported, %d refuted, %d inconclusive, %d untestable; %d gate claim%s refuted\n",
               hb_claims_count(claims), counts[HB_VERDICT_SUPPORTED], counts[HB_VERDICT_REFUTED],
               counts[HB_VERDICT_INCONCLUSIVE], counts[HB_VERDICT_UNTESTABLE], gate_refuted, gate_refuted == 1 ? "" : "s");
        fflush(stdout);
    }
    hb_report_free(rep);
    hb_prices_free(prices);
    hb_claims_free(claims);
    free(o.files);
    if (st != HB_OK) return fail("check", st, &err);
    return gate_refuted ? 1 : 0;
}

int hb_cmd_compare(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(help_compare, stdout);
        return 0;
    }
    opts o;
    int rc = parse("compare", argc, argv, "m", &o);
    if (rc) {
        free(o.files);
        return rc;
    }
    double pct = 5.0;
    if (o.max_reg) {
        char *end;
        errno = 0;
        pct = strtod(o.max_reg, &end);
        if (*end == '%') end++;
        if (end == o.max_reg || *end || !isfinite(pct) || pct < 0 || pct >= 100) {
            free(o.files);
            return usage("compare", "--max-regression: '%s' is not a percentage (accepted: numbers 0 to <100)", o.max_reg);
        }
    }
    if (o.n_files != 2) {
        free(o.files);
        return usage("compare", "expected BASE.h5 and NEW.h5%s", "");
    }
    hb_err err = {{0}};
    hb_compare_summary sum;
    hb_status st = hb_compare_files(o.files[0], o.files[1], pct, stdout, &sum, &err);
    fflush(stdout);
    free(o.files);
    if (st != HB_OK) return fail("compare", st, &err);
    if (sum.n_regressions || sum.n_failed_new) {
        fprintf(stderr, "hetbench compare: %d regression%s beyond %g%%, %d case%s failed in NEW\n", sum.n_regressions,
                sum.n_regressions == 1 ? "" : "s", pct, sum.n_failed_new, sum.n_failed_new == 1 ? "" : "s");
        return HB_COMPARE_REGRESSION;
    }
    if (sum.n_invalid_timing) {
        fprintf(stderr, "hetbench compare: %d of %d matched case%s not judged: invalid timing on a busy machine "
                        "(timing_flags); rerun on a quiet one\n", sum.n_invalid_timing, sum.n_matched,
                sum.n_matched == 1 ? "" : "s");
        return HB_COMPARE_INVALID_TIMING;
    }
    return HB_COMPARE_OK;
}
