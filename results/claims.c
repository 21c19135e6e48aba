/* claims.c - claims files (results/claims/NAME.yaml) and their verdicts against a report.
 *
 * A claim selects groups on side a (and b), pairs a-groups with b-groups that agree on the
 * pairing keys, and compares the metric: the ratio a/b (or a's value) with its 95% interval,
 * geometric mean over the pairs, against the threshold of `expect`. Supported: the whole
 * interval satisfies the relation; refuted: the whole interval violates it; inconclusive: it
 * straddles the threshold; untestable: nothing to compare. REPORT.md has the details. */
#include "report.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../backends/dtype.h"
#include "ycfg.h"

/* ---- selection keys ---- */

enum {
    K_WORKLOAD, K_MODEL, K_DTYPE, K_LAYERS, K_BATCH, K_PROMPT, K_GEN, K_SEQ, K_M, K_N, K_K,
    K_STREAM_N, K_STREAM_OP, K_VENDOR, K_DEVICE, K_BACKEND, N_KEYS
};
static const char *const key_names[N_KEYS] = {
    "workload", "model", "dtype", "layers", "batch", "prompt", "gen", "seq", "m", "n", "k",
    "stream_n", "stream_op", "vendor", "device", "backend",
};
static int key_is_int(int k) { return k >= K_LAYERS && k <= K_STREAM_N; }

static int64_t key_int(const hb_rgroup *g, int k) {
    switch (k) {
    case K_LAYERS: return g->sig.layers;
    case K_BATCH: return g->sig.batch;
    case K_PROMPT: return g->sig.prompt;
    case K_GEN: return g->sig.gen;
    case K_SEQ: return g->sig.seq;
    case K_M: return g->sig.m;
    case K_N: return g->sig.n;
    case K_K: return g->sig.k;
    default: return g->sig.stream_n;
    }
}

static const char *key_str(const hb_rgroup *g, int k) {
    switch (k) {
    case K_WORKLOAD: return g->sig.workload;
    case K_MODEL: return g->sig.model;
    case K_DTYPE: return g->sig.dtype;
    case K_STREAM_OP: return g->sig.stream_op;
    case K_VENDOR: return g->vendor;
    case K_DEVICE: return g->device;
    default: return g->backend;
    }
}

/* ---- metrics ---- */

enum {
    M_RATE, M_TPS_IN, M_TPS_OUT, M_TPS_TOTAL, M_LAT_P50, M_LAT_P95, M_MFU, M_BW_UTIL, M_FLOPS,
    M_BYTES, M_AVG_W, M_JPT_OUT, M_JPT_TOTAL, M_TPJ, M_USD_IN, M_USD_OUT, M_USD_TOTAL, M_MEM, M_RUN_HOURS, N_METRICS
};
static const char *const metric_names[N_METRICS] = {
    "rate", "tokens_per_s_in", "tokens_per_s_out", "tokens_per_s_total", "latency_p50_s",
    "latency_p95_s", "mfu", "bw_util", "flops_per_s", "bytes_per_s", "avg_w", "j_per_token_out",
    "j_per_token_total", "tokens_per_j", "usd_per_mtok_in", "usd_per_mtok_out", "usd_per_mtok_total",
    "mem_bytes", "run_device_hours",
};

static int metric_is_cost(int m) { return m >= M_USD_IN && m <= M_USD_TOTAL; }
static int metric_is_energy(int m) { return m >= M_AVG_W && m <= M_TPJ; }

/* A published run (a claim's `run:`): `tokens` trained tokens, each `flops_per_token` FLOPs of
 * the whole model (0: not given), in `device_hours` (0: not given). */
typedef struct run_spec {
    double tokens, flops_per_token, device_hours;
} run_spec;

/* value and 95% interval of metric m for group g; lo = hi = value for point metrics (no CI).
 * run_device_hours: the device-hours the run would take at g's per-device rate - its FLOP/s
 * over the whole model's FLOPs per token when the run gives them (so a model truncated with
 * `layers` still measures the whole one's rate), else its trained tokens/s as measured. */
static void metric_of(const run_spec *run, const hb_rgroup *g, int m, double *v, double *lo, double *hi) {
    double rel_lo = g->rate > 0 ? g->rate_lo / g->rate : NAN, rel_hi = g->rate > 0 ? g->rate_hi / g->rate : NAN;
    int k;
    switch (m) {
    case M_RUN_HOURS:
        if (run->flops_per_token > 0) {
            const double work = run->tokens * run->flops_per_token / 3600.0;
            *v = work / g->flops_per_s, *lo = work / (g->flops_per_s * rel_hi), *hi = work / (g->flops_per_s * rel_lo);
        } else {
            const double work = run->tokens / 3600.0;
            *v = work / g->tps[HB_TOK_TOTAL], *lo = work / g->tps_hi[HB_TOK_TOTAL], *hi = work / g->tps_lo[HB_TOK_TOTAL];
        }
        if (!(g->flops_per_s > 0 || g->tps[HB_TOK_TOTAL] > 0)) *v = NAN;
        break;
    case M_RATE: *v = g->rate, *lo = g->rate_lo, *hi = g->rate_hi; break;
    case M_TPS_IN: case M_TPS_OUT: case M_TPS_TOTAL:
        k = m - M_TPS_IN;
        *v = g->tps[k], *lo = g->tps_lo[k], *hi = g->tps_hi[k];
        break;
    case M_MFU: *v = g->mfu, *lo = g->mfu * rel_lo, *hi = g->mfu * rel_hi; break;
    case M_BW_UTIL: *v = g->bw_util, *lo = g->bw_util * rel_lo, *hi = g->bw_util * rel_hi; break;
    case M_FLOPS: *v = g->flops_per_s, *lo = g->flops_per_s * rel_lo, *hi = g->flops_per_s * rel_hi; break;
    case M_BYTES: *v = g->bytes_per_s, *lo = g->bytes_per_s * rel_lo, *hi = g->bytes_per_s * rel_hi; break;
    case M_USD_IN: case M_USD_OUT: case M_USD_TOTAL:
        k = m - M_USD_IN;
        *v = g->priced ? g->usd_mtok[k] : NAN, *lo = g->usd_mtok_lo[k], *hi = g->usd_mtok_hi[k];
        break;
    case M_LAT_P50: *v = *lo = *hi = g->lat_p50_s; break;
    case M_LAT_P95: *v = *lo = *hi = g->lat_p95_s; break;
    case M_AVG_W: *v = *lo = *hi = g->avg_w; break;
    case M_JPT_OUT: *v = *lo = *hi = g->j_per_tok[HB_TOK_OUT]; break;
    case M_JPT_TOTAL: *v = *lo = *hi = g->j_per_tok[HB_TOK_TOTAL]; break;
    case M_TPJ: *v = *lo = *hi = g->tok_per_j; break;
    default: *v = *lo = *hi = g->mem_bytes; break;
    }
    /* no CI recorded (e.g. a single iteration): the point stands for its interval */
    if (isfinite(*v) && (!isfinite(*lo) || !isfinite(*hi))) *lo = *hi = *v;
}

/* ---- claims ---- */

#define MAX_VALUES 16

typedef struct filter {
    int key;
    int n;
    char text[MAX_VALUES][128];
    int64_t ival[MAX_VALUES];
} filter;

typedef struct side {
    int n;
    filter f[N_KEYS];
} side;

enum { L_RATIO, L_A, L_VALUE };
enum { OP_GE, OP_GT, OP_LE, OP_LT };
static const char *const op_names[] = {">=", ">", "<=", "<"};

typedef struct claim {
    char id[64], text[512], source[512], note[512], tier[64], expect[64];
    int metric;
    side a, b;
    int has_b;
    int lhs, op;
    double threshold;
    int gate;
    run_spec run; /* metric run_device_hours */
    int n_pair_on;
    int pair_on[N_KEYS];
    int line;
} claim;

struct hb_claims {
    int n;
    claim *c;
};

const char *hb_verdict_name(hb_verdict v) {
    static const char *const names[] = {"supported", "refuted", "inconclusive", "untestable"};
    return (unsigned)v < 4 ? names[v] : "?";
}

static void list_names(char *buf, size_t len, const char *const *names, int n) {
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", i ? ", " : "", names[i]);
    }
}

static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static hb_status parse_side(const hb_ycfg *y, const hb_ynode *m, const char *name, side *s) {
    char acc[512], f[64], sb[72];
    list_names(acc, sizeof acc, key_names, N_KEYS);
    HB_TRY(hb_ycfg_expect(y, m, m->line, name, HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, m, key_names, N_KEYS));
    s->n = 0;
    for (int i = 0; i < m->n; i++) {
        filter *fl = &s->f[s->n++];
        fl->key = lookup(m->keys[i], key_names, N_KEYS);
        snprintf(f, sizeof f, "%s.%s", name, m->keys[i]);
        const hb_ynode *v = m->items[i];
        if (v->kind == HB_Y_MAP || (v->kind == HB_Y_LIST && v->n == 0))
            return hb_ycfg_errf(y, v->line, f, "expected a value or a non-empty list of values");
        fl->n = v->kind == HB_Y_LIST ? v->n : 1;
        if (fl->n > MAX_VALUES)
            return hb_ycfg_errf(y, v->line, f, "%d values (accepted: at most %d)", fl->n, MAX_VALUES);
        for (int j = 0; j < fl->n; j++) {
            const hb_ynode *it = v->kind == HB_Y_LIST ? v->items[j] : v;
            if (key_is_int(fl->key)) {
                HB_TRY(hb_ycfg_int(y, it, f, &fl->ival[j]));
            } else {
                HB_TRY(hb_ycfg_string(y, it, f, fl->text[j], sizeof fl->text[j]));
                hb_dtype d;
                if (fl->key == K_DTYPE && hb_dtype_parse(fl->text[j], &d) != 0)
                    return hb_ycfg_errf(y, it->line, f, "unknown dtype '%s' (accepted: f32, bf16, f16, fp8)",
                                        hb_ycfg_shown(fl->text[j], sb));
            }
        }
    }
    return HB_OK;
}

static const filter *find_filter(const side *s, int key) {
    for (int i = 0; i < s->n; i++)
        if (s->f[i].key == key) return &s->f[i];
    return NULL;
}

/* Both sides select key the same way (both not at all, or the same values in the same order). */
static int same_filter(const side *a, const side *b, int key) {
    const filter *x = find_filter(a, key), *y = find_filter(b, key);
    if (!x || !y) return !x && !y;
    if (x->n != y->n) return 0;
    for (int j = 0; j < x->n; j++)
        if (key_is_int(key) ? x->ival[j] != y->ival[j] : strcasecmp(x->text[j], y->text[j]) != 0) return 0;
    return 1;
}

/* "ratio >= 2.3", "a < b", "value <= 0.5" */
static hb_status parse_expect(const hb_ycfg *y, const hb_ynode *n, claim *c) {
    static const char *const accepted = "'ratio OP x', 'a OP b' or 'value OP y' with OP one of >=, >, <=, <";
    char sb[72];
    HB_TRY(hb_ycfg_string(y, n, "expect", c->expect, sizeof c->expect));
    const char *p = c->expect;
    char lhs[16] = "", rhs[48] = "";
    int i = 0;
    while (isspace((unsigned char)*p)) p++;
    while (isalpha((unsigned char)*p) && i < 15) lhs[i++] = *p++;
    lhs[i] = '\0';
    while (isspace((unsigned char)*p)) p++;
    c->op = -1;
    for (int o = 0; o < 4 && c->op < 0; o++) /* two-character operators first */
        if (!strncmp(p, op_names[o], strlen(op_names[o]))) c->op = o;
    if (c->op < 0) goto bad;
    p += strlen(op_names[c->op]);
    while (isspace((unsigned char)*p)) p++;
    snprintf(rhs, sizeof rhs, "%s", p);
    for (i = (int)strlen(rhs); i > 0 && isspace((unsigned char)rhs[i - 1]); i--) rhs[i - 1] = '\0';
    if (!strcmp(lhs, "a") && !strcmp(rhs, "b")) {
        c->lhs = L_A;
        c->threshold = 1.0;
        return HB_OK;
    }
    if (strcmp(lhs, "ratio") && strcmp(lhs, "value")) goto bad;
    c->lhs = !strcmp(lhs, "ratio") ? L_RATIO : L_VALUE;
    char *end;
    c->threshold = strtod(rhs, &end);
    if (!rhs[0] || *end || !isfinite(c->threshold)) goto bad;
    if (c->lhs == L_RATIO && !(c->threshold > 0))
        return hb_ycfg_errf(y, n->line, "expect", "a ratio threshold must be > 0 in '%s'", hb_ycfg_shown(c->expect, sb));
    return HB_OK;
bad:
    return hb_ycfg_errf(y, n->line, "expect", "cannot read '%s' (accepted: %s)", hb_ycfg_shown(c->expect, sb), accepted);
}

/* run: {tokens: T, flops_per_token: F, device_hours: H} - the published run that metric
 * run_device_hours scales a measured rate to; tokens required, the others optional. */
static hb_status parse_run(const hb_ycfg *y, const hb_ynode *r, claim *c, int metric_line) {
    static const char *const keys[] = {"tokens", "flops_per_token", "device_hours"};
    if (!r) {
        if (c->metric == M_RUN_HOURS)
            return hb_ycfg_errf(y, metric_line, "run", "missing: metric run_device_hours needs the published run "
                                "(accepted: run: {tokens: T, flops_per_token: F, device_hours: H}; tokens required)");
        return HB_OK;
    }
    if (c->metric != M_RUN_HOURS)
        return hb_ycfg_errf(y, r->line, "run", "given, but metric is %s (accepted: run: with metric run_device_hours)",
                            metric_names[c->metric]);
    HB_TRY(hb_ycfg_expect(y, r, r->line, "run", HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, r, keys, HB_ARRAY_LEN(keys)));
    double *dst[] = {&c->run.tokens, &c->run.flops_per_token, &c->run.device_hours};
    for (int i = 0; i < HB_ARRAY_LEN(keys); i++) {
        const hb_ynode *v = hb_ycfg_get(r, keys[i]);
        char f[32];
        snprintf(f, sizeof f, "run.%s", keys[i]);
        if (!v) {
            if (i == 0) return hb_ycfg_errf(y, r->line, f, "missing (the run's trained tokens, e.g. 14.8e12)");
            continue;
        }
        HB_TRY(hb_ycfg_number(y, v, f, 0, 1, dst[i])); /* > 0 */
    }
    return HB_OK;
}

static hb_status parse_claim(const hb_ycfg *y, const hb_ynode *m, claim *c) {
    static const char *const keys[] = {"id", "text", "source", "metric", "a", "b", "expect", "pair_on",
                                       "gate", "tier", "note", "run"};
    char acc[1024], sb[72];
    memset(c, 0, sizeof *c);
    c->line = m->line;
    HB_TRY(hb_ycfg_expect(y, m, m->line, "claims", HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, m, keys, HB_ARRAY_LEN(keys)));
    static const char *const required[] = {"id", "text", "source", "metric", "a", "expect"};
    for (int i = 0; i < HB_ARRAY_LEN(required); i++)
        if (!hb_ycfg_get(m, required[i]))
            return hb_ycfg_errf(y, m->line, required[i], "missing (every claim needs id, text, source, metric, a, expect)");
    HB_TRY(hb_ycfg_string(y, hb_ycfg_get(m, "id"), "id", c->id, sizeof c->id));
    HB_TRY(hb_ycfg_string(y, hb_ycfg_get(m, "text"), "text", c->text, sizeof c->text));
    HB_TRY(hb_ycfg_string(y, hb_ycfg_get(m, "source"), "source", c->source, sizeof c->source));
    if (hb_ycfg_get(m, "note")) HB_TRY(hb_ycfg_string(y, hb_ycfg_get(m, "note"), "note", c->note, sizeof c->note));
    if (hb_ycfg_get(m, "tier")) HB_TRY(hb_ycfg_string(y, hb_ycfg_get(m, "tier"), "tier", c->tier, sizeof c->tier));
    char metric[64];
    const hb_ynode *mn = hb_ycfg_get(m, "metric");
    HB_TRY(hb_ycfg_string(y, mn, "metric", metric, sizeof metric));
    c->metric = lookup(metric, metric_names, N_METRICS);
    if (c->metric < 0) {
        list_names(acc, sizeof acc, metric_names, N_METRICS);
        return hb_ycfg_errf(y, mn->line, "metric", "unknown metric '%s' (accepted: %s)", hb_ycfg_shown(metric, sb), acc);
    }
    HB_TRY(parse_run(y, hb_ycfg_get(m, "run"), c, mn->line));
    HB_TRY(parse_side(y, hb_ycfg_get(m, "a"), "a", &c->a));
    const hb_ynode *b = hb_ycfg_get(m, "b");
    if (b) {
        HB_TRY(parse_side(y, b, "b", &c->b));
        c->has_b = 1;
    }
    const hb_ynode *ex = hb_ycfg_get(m, "expect");
    HB_TRY(parse_expect(y, ex, c));
    if (c->lhs != L_VALUE && !c->has_b)
        return hb_ycfg_errf(y, ex->line, "expect", "'%s' compares with side b, which the claim lacks (accepted: add b:, or 'value OP y')",
                            hb_ycfg_shown(c->expect, sb));
    if (c->lhs == L_VALUE && c->has_b)
        return hb_ycfg_errf(y, ex->line, "expect", "'%s' uses side a only, but b: is given (accepted: 'ratio OP x' or 'a OP b')",
                            hb_ycfg_shown(c->expect, sb));
    if (hb_ycfg_get(m, "gate")) HB_TRY(hb_ycfg_bool(y, hb_ycfg_get(m, "gate"), "gate", &c->gate));

    /* pairing keys: given, or every key that both sides select the same way (a key where they
     * differ is what the claim compares; if that is vendor, device or backend, all three are
     * released: different hardware is the point of such a claim) */
    const hb_ynode *po = hb_ycfg_get(m, "pair_on");
    if (po) {
        if (po->kind == HB_Y_MAP) return hb_ycfg_errf(y, po->line, "pair_on", "expected a list of keys");
        int n = po->kind == HB_Y_LIST ? po->n : 1;
        list_names(acc, sizeof acc, key_names, N_KEYS);
        for (int i = 0; i < n; i++) {
            const hb_ynode *it = po->kind == HB_Y_LIST ? po->items[i] : po;
            char k[32];
            HB_TRY(hb_ycfg_string(y, it, "pair_on", k, sizeof k));
            int key = lookup(k, key_names, N_KEYS);
            if (key < 0) return hb_ycfg_errf(y, it->line, "pair_on", "unknown key '%s' (accepted: %s)", hb_ycfg_shown(k, sb), acc);
            for (int j = 0; j < c->n_pair_on; j++)
                if (c->pair_on[j] == key) return hb_ycfg_errf(y, it->line, "pair_on", "'%s' given twice", k);
            c->pair_on[c->n_pair_on++] = key;
        }
    } else if (c->has_b) {
        int differs[N_KEYS] = {0};
        for (int k = 0; k < N_KEYS; k++) differs[k] = !same_filter(&c->a, &c->b, k);
        if (differs[K_VENDOR] || differs[K_DEVICE] || differs[K_BACKEND])
            differs[K_VENDOR] = differs[K_DEVICE] = differs[K_BACKEND] = 1;
        for (int k = 0; k < N_KEYS; k++)
            if (!differs[k]) c->pair_on[c->n_pair_on++] = k;
    }
    return HB_OK;
}

static hb_status parse_claims(const hb_ycfg *y, hb_claims *cs) {
    static const char *const keys[] = {"claims"};
    if (!y->root) return hb_errf(y->err, HB_ERR_INPUT, "%s:1: empty file (accepted: a mapping with claims:)", y->path);
    HB_TRY(hb_ycfg_expect(y, y->root, 1, "(top level)", HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, y->root, keys, 1));
    const hb_ynode *l = hb_ycfg_get(y->root, "claims");
    if (!l) return hb_ycfg_errf(y, y->root->line, "claims", "missing (accepted: a list of claims)");
    HB_TRY(hb_ycfg_expect(y, l, l->line, "claims", HB_Y_LIST));
    cs->c = calloc((size_t)(l->n ? l->n : 1), sizeof *cs->c);
    if (!cs->c) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    for (int i = 0; i < l->n; i++) {
        HB_TRY(parse_claim(y, l->items[i], &cs->c[i]));
        for (int j = 0; j < i; j++)
            if (!strcmp(cs->c[i].id, cs->c[j].id))
                return hb_ycfg_errf(y, hb_ycfg_key_line(l->items[i], "id"), "id",
                                    "'%s' given twice (first on line %d; accepted: unique ids)", cs->c[i].id,
                                    cs->c[j].line);
        cs->n++;
    }
    return HB_OK;
}

hb_status hb_claims_load(const char *path, hb_claims **out, hb_err *err) {
    *out = NULL;
    hb_claims *cs = calloc(1, sizeof *cs);
    if (!cs) return hb_errf(err, HB_ERR_NOMEM, "claims: out of memory");
    hb_ycfg y;
    hb_status st = hb_ycfg_load(&y, path, err);
    if (st == HB_OK) st = parse_claims(&y, cs);
    hb_ycfg_free(&y);
    if (st != HB_OK) {
        hb_claims_free(cs);
        return st;
    }
    *out = cs;
    return HB_OK;
}

void hb_claims_free(hb_claims *c) {
    if (!c) return;
    free(c->c);
    free(c);
}

int hb_claims_count(const hb_claims *c) { return c ? c->n : 0; }
const char *hb_claims_id(const hb_claims *c, int i) { return c->c[i].id; }
int hb_claims_gate(const hb_claims *c, int i) { return c->c[i].gate; }
const char *hb_claims_tier(const hb_claims *c, int i) { return c->c[i].tier[0] ? c->c[i].tier : NULL; }

/* ---- evaluation ---- */

static int filter_match(const filter *f, const hb_rgroup *g) {
    for (int j = 0; j < f->n; j++) {
        if (key_is_int(f->key)) {
            if (key_int(g, f->key) == f->ival[j]) return 1;
        } else if (f->key == K_DEVICE) {
            if (strcasestr(g->device, f->text[j])) return 1;
        } else if (!strcasecmp(key_str(g, f->key), f->text[j])) {
            return 1;
        }
    }
    return 0;
}

/* Selected by the filters (whether or not any of its devices succeeded). */
static int side_select(const side *s, const hb_rgroup *g) {
    for (int i = 0; i < s->n; i++)
        if (!filter_match(&s->f[i], g)) return 0;
    return 1;
}

static int side_match(const side *s, const hb_rgroup *g) { return g->n_ok > 0 && side_select(s, g); }

static int paired(const claim *c, const hb_rgroup *a, const hb_rgroup *b) {
    for (int i = 0; i < c->n_pair_on; i++) {
        int k = c->pair_on[i];
        if (key_is_int(k) ? key_int(a, k) != key_int(b, k) : strcasecmp(key_str(a, k), key_str(b, k)) != 0)
            return 0;
    }
    return 1;
}

static void side_text(const side *s, char *buf, size_t len) {
    buf[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s=", i ? ", " : "", key_names[s->f[i].key]);
        for (int j = 0; j < s->f[i].n; j++) {
            l = strlen(buf);
            if (key_is_int(s->f[i].key))
                snprintf(buf + l, len - l, "%s%lld", j ? "|" : "", (long long)s->f[i].ival[j]);
            else snprintf(buf + l, len - l, "%s%s", j ? "|" : "", s->f[i].text[j]);
        }
    }
    if (!buf[0]) snprintf(buf, len, "(everything)");
}

static void group_text(const hb_rgroup *g, char *buf, size_t len) {
    snprintf(buf, len, "%s on %s (%s)", g->label, g->device, g->backend);
}

static void verdict_cmp(int op, double lo, double hi, double x, hb_verdict *v) {
    int sup, ref;
    switch (op) {
    case OP_GE: sup = lo >= x, ref = hi < x; break;
    case OP_GT: sup = lo > x, ref = hi <= x; break;
    case OP_LE: sup = hi <= x, ref = lo > x; break;
    default: sup = hi < x, ref = lo >= x; break;
    }
    *v = sup ? HB_VERDICT_SUPPORTED : ref ? HB_VERDICT_REFUTED : HB_VERDICT_INCONCLUSIVE;
}

#define MAX_SHOWN 12

/* What run_device_hours rests on: the rate the published run implies per device against the
 * measured one, and the run's price at the group's $/device-hour. */
static void run_evidence(const claim *c, const hb_rgroup *g, double hours, FILE *out) {
    const run_spec *r = &c->run;
    if (r->flops_per_token > 0)
        fprintf(out, "      measured %.4g FLOP/s per device = %.4g tokens/s of the whole model (%.4g FLOPs per token)",
                g->flops_per_s, g->flops_per_s / r->flops_per_token, r->flops_per_token);
    else fprintf(out, "      measured %.4g trained tokens/s per device (the case's model as measured)", g->tps[HB_TOK_TOTAL]);
    if (r->device_hours > 0)
        fprintf(out, "; the published %.4g device-hours for %.4g tokens need %.4g tokens/s per device", r->device_hours,
                r->tokens, r->tokens / (r->device_hours * 3600.0));
    fputc('\n', out);
    if (g->priced)
        fprintf(out, "      at %.4g $/device-hour (%s / %s): $%.4g for the run\n", g->usd_per_hour, g->price_name, g->tier,
                hours * g->usd_per_hour);
}

void hb_claims_eval(const hb_claims *cs, int ci, const hb_report *rep, hb_claim_result *res, FILE *out) {
    const claim *c = &cs->c[ci];
    memset(res, 0, sizeof *res);
    res->verdict = HB_VERDICT_UNTESTABLE;
    res->value = res->lo = res->hi = NAN;
    res->threshold = c->threshold;
    char sa[512], sb[512], ga[320], gb[320];
    side_text(&c->a, sa, sizeof sa);
    side_text(&c->b, sb, sizeof sb);
    double slog = 0, slo = 0, shi = 0;
    int n = 0, n_a = 0, n_b = 0, n_nan = 0, n_disagree = 0, shown = 0;
    int cost_without_prices = metric_is_cost(c->metric) && !rep->prices;
    for (int i = 0; i < rep->n_groups; i++) {
        const hb_rgroup *a = &rep->groups[i];
        if (!side_match(&c->a, a)) continue;
        n_a++;
        double va, la, ha;
        metric_of(&c->run, a, c->metric, &va, &la, &ha);
        if (c->lhs == L_VALUE) {
            if (!(va > 0 && la > 0 && ha > 0)) {
                n_nan++;
                n_disagree += a->files_disagree;
                continue;
            }
            slog += log(va), slo += log(la), shi += log(ha), n++;
            if (out && shown++ < MAX_SHOWN) {
                group_text(a, ga, sizeof ga);
                fprintf(out, "    a: %s: %s %.4g [%.4g, %.4g]\n", ga, metric_names[c->metric], va, la, ha);
                if (c->metric == M_RUN_HOURS) run_evidence(c, a, va, out);
            }
            continue;
        }
        for (int j = 0; j < rep->n_groups; j++) {
            const hb_rgroup *b = &rep->groups[j];
            if (j == i || !side_match(&c->b, b)) continue;
            if (!paired(c, a, b)) continue;
            double vb, lb, hb;
            metric_of(&c->run, b, c->metric, &vb, &lb, &hb);
            if (!(va > 0 && la > 0 && ha > 0 && vb > 0 && lb > 0 && hb > 0)) {
                n_nan++;
                n_disagree += a->files_disagree || b->files_disagree;
                continue;
            }
            /* interval of a/b: the extremes of the two intervals */
            double r = va / vb, rl = la / hb, rh = ha / lb;
            slog += log(r), slo += log(rl), shi += log(rh), n++;
            if (out && shown++ < MAX_SHOWN) {
                group_text(a, ga, sizeof ga);
                group_text(b, gb, sizeof gb);
                fprintf(out, "    a: %s: %.4g [%.4g, %.4g]\n    b: %s: %.4g [%.4g, %.4g]\n      ratio %.4g [%.4g, %.4g]\n",
                        ga, va, la, ha, gb, vb, lb, hb, r, rl, rh);
            }
        }
    }
    int n_a_failed = 0, n_b_failed = 0;
    for (int j = 0; j < rep->n_groups; j++) {
        const hb_rgroup *g = &rep->groups[j];
        if (c->has_b) n_b += side_match(&c->b, g);
        n_a_failed += g->n_ok == 0 && side_select(&c->a, g);
        n_b_failed += c->has_b && g->n_ok == 0 && side_select(&c->b, g);
    }
    if (out && shown > MAX_SHOWN) fprintf(out, "    ... and %d more\n", shown - MAX_SHOWN);
    res->n_pairs = n;
    if (n == 0) {
        if (cost_without_prices) snprintf(res->why, sizeof res->why, "metric %s needs prices (--prices FILE)", metric_names[c->metric]);
        else if (n_a == 0 && n_a_failed)
            snprintf(res->why, sizeof res->why, "every result matching a (%.180s) failed", sa);
        else if (n_a == 0) snprintf(res->why, sizeof res->why, "no result matches a (%.200s)", sa);
        else if (c->has_b && n_b == 0 && n_b_failed)
            snprintf(res->why, sizeof res->why, "every result matching b (%.180s) failed", sb);
        else if (c->has_b && n_b == 0) snprintf(res->why, sizeof res->why, "no result matches b (%.200s)", sb);
        else if (n_disagree)
            snprintf(res->why, sizeof res->why, "%s: the files of a matching result disagree beyond their intervals "
                     "(not averaged; see the report's per-file values)", metric_names[c->metric]);
        else if (n_nan)
            snprintf(res->why, sizeof res->why, "%s %s in the matching results", metric_names[c->metric],
                     metric_is_energy(c->metric) ? "not measured (no valid energy)"
                     : metric_is_cost(c->metric) ? "has no price" : "not recorded");
        else snprintf(res->why, sizeof res->why, "no a-result pairs with a b-result on the pairing keys");
        return;
    }
    res->value = exp(slog / n);
    res->lo = exp(slo / n);
    res->hi = exp(shi / n);
    verdict_cmp(c->op, res->lo, res->hi, c->threshold, &res->verdict);
    snprintf(res->why, sizeof res->why, "%s %.4g [%.4g, %.4g]%s over %d %s", c->lhs == L_VALUE ? "value" : "ratio a/b",
             res->value, res->lo, res->hi, n > 1 ? " (geometric mean)" : "", n,
             c->lhs == L_VALUE ? (n > 1 ? "results" : "result") : (n > 1 ? "pairs" : "pair"));
}

void hb_claims_print(const hb_claims *cs, int ci, const hb_report *rep, hb_claim_result *res, FILE *out) {
    const claim *c = &cs->c[ci];
    char sa[512], sb[512], pk[256] = "";
    side_text(&c->a, sa, sizeof sa);
    side_text(&c->b, sb, sizeof sb);
    for (int i = 0; i < c->n_pair_on; i++) {
        size_t l = strlen(pk);
        snprintf(pk + l, sizeof pk - l, "%s%s", i ? ", " : "", key_names[c->pair_on[i]]);
    }
    /* evaluate into a buffer first so the verdict line comes before its evidence */
    char *ev = NULL;
    size_t ev_len = 0;
    FILE *mem = open_memstream(&ev, &ev_len);
    hb_claims_eval(cs, ci, rep, res, mem);
    if (mem) fclose(mem);
    fprintf(out, "%-13s %s%s: %s\n", hb_verdict_name(res->verdict), c->id, c->gate ? " [gate]" : "", c->text);
    fprintf(out, "    source: %s\n", c->source);
    if (c->note[0]) fprintf(out, "    note: %s\n", c->note);
    fprintf(out, "    metric %s, expect %s; a: %s", metric_names[c->metric], c->expect, sa);
    if (c->has_b) fprintf(out, "; b: %s; paired on: %s", sb, pk[0] ? pk : "(nothing)");
    if (metric_is_cost(c->metric) && rep->prices)
        fprintf(out, "; prices: %s tier %s", rep->prices->path, rep->tier[0] ? rep->tier : (rep->prices->default_tier[0] ? rep->prices->default_tier : "(first)"));
    fputc('\n', out);
    if (ev && ev_len) fputs(ev, out);
    if (res->verdict == HB_VERDICT_UNTESTABLE) fprintf(out, "    untestable: %s\n", res->why);
    else fprintf(out, "    %s -> %s %s %g: %s\n", res->why, c->lhs == L_VALUE ? "value" : "ratio", op_names[c->op],
                 c->threshold, hb_verdict_name(res->verdict));
    free(ev);
}
