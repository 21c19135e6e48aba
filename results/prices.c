/* prices.c - prices files (results/prices/NAME.yaml): $ per device-hour by named tier, energy price,
 * PUE and all-in power, every value with its source and date; and the device-name match rule.
 * The format is documented in results/REPORT.md and by results/prices/default.yaml. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ycfg.h"

static const hb_pvalue no_value = {NAN, "", ""};

/* YYYY, YYYY-MM or YYYY-MM-DD with a plausible month and day: a source is dated as
 * precisely as it is known, no more. */
static int valid_date(const char *s) {
    size_t n = strlen(s);
    if (n == 4) return s[0] >= '1' && s[0] <= '9' && strspn(s, "0123456789") == 4;
    if (n != 7 && n != 10) return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) return 0;
    }
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    if (month < 1 || month > 12) return 0;
    if (n == 10) {
        int day = (s[8] - '0') * 10 + (s[9] - '0');
        if (day < 1 || day > 31) return 0;
    }
    return 1;
}

/* The common part of a sourced value: `source` and `date` in mapping m (field: its name). */
static hb_status sourced(const hb_ycfg *y, const hb_ynode *m, const char *field, hb_pvalue *v) {
    char f[96], sb[72];
    const hb_ynode *src = hb_ycfg_get(m, "source"), *date = hb_ycfg_get(m, "date");
    snprintf(f, sizeof f, "%s.source", field);
    if (!src) return hb_ycfg_errf(y, m->line, f, "missing (accepted: where the value comes from, as text)");
    HB_TRY(hb_ycfg_string(y, src, f, v->source, sizeof v->source));
    snprintf(f, sizeof f, "%s.date", field);
    if (!date) return hb_ycfg_errf(y, m->line, f, "missing (accepted: YYYY, YYYY-MM or YYYY-MM-DD)");
    char d[32];
    HB_TRY(hb_ycfg_string(y, date, f, d, sizeof d));
    if (!valid_date(d))
        return hb_ycfg_errf(y, date->line, f, "'%s' is not a date (accepted: YYYY, YYYY-MM or YYYY-MM-DD)",
                            hb_ycfg_shown(d, sb));
    memcpy(v->date, d, strlen(d) + 1); /* valid_date: at most 10 characters */
    return HB_OK;
}

/* {value: x, source: ..., date: ...} */
static hb_status value_field(const hb_ycfg *y, const hb_ynode *parent, const char *key, double min,
                             int min_exclusive, hb_pvalue *v) {
    static const char *const keys[] = {"value", "source", "date"};
    *v = no_value;
    const hb_ynode *m = hb_ycfg_get(parent, key);
    if (!m) return HB_OK;
    HB_TRY(hb_ycfg_expect(y, m, m->line, key, HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, m, keys, HB_ARRAY_LEN(keys)));
    char f[96];
    snprintf(f, sizeof f, "%s.value", key);
    const hb_ynode *val = hb_ycfg_get(m, "value");
    if (!val) return hb_ycfg_errf(y, m->line, f, "missing (accepted: a number)");
    HB_TRY(hb_ycfg_number(y, val, f, min, min_exclusive, &v->value));
    return sourced(y, m, key, v);
}

static hb_status parse_tier(const hb_ycfg *y, const char *name, int line, const hb_ynode *m,
                            hb_price_tier *t) {
    static const char *const keys[] = {"usd_per_hour", "source", "date", "includes_energy"};
    char f[96];
    snprintf(f, sizeof f, "tiers.%s", name);
    if (strlen(name) >= sizeof t->name)
        return hb_ycfg_errf(y, line, f, "tier name longer than %zu characters", sizeof t->name - 1);
    snprintf(t->name, sizeof t->name, "%s", name);
    HB_TRY(hb_ycfg_expect(y, m, line, f, HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, m, keys, HB_ARRAY_LEN(keys)));
    const hb_ynode *p = hb_ycfg_get(m, "usd_per_hour");
    snprintf(f, sizeof f, "tiers.%s.usd_per_hour", name);
    if (!p) return hb_ycfg_errf(y, m->line, f, "missing (accepted: a number > 0)");
    HB_TRY(hb_ycfg_number(y, p, f, 0, 1, &t->usd_per_hour.value));
    snprintf(f, sizeof f, "tiers.%s", name);
    HB_TRY(sourced(y, m, f, &t->usd_per_hour));
    t->includes_energy = 0;
    const hb_ynode *ie = hb_ycfg_get(m, "includes_energy");
    snprintf(f, sizeof f, "tiers.%s.includes_energy", name);
    if (ie) HB_TRY(hb_ycfg_bool(y, ie, f, &t->includes_energy));
    return HB_OK;
}

static hb_status parse_device(const hb_ycfg *y, const hb_ynode *m, hb_price_device *d) {
    static const char *const keys[] = {"name", "match", "backend", "unit", "tiers", "all_in_kw",
                                       "usd_per_kwh", "pue"};
    char sb[72];
    memset(d, 0, sizeof *d);
    d->line = m->line;
    HB_TRY(hb_ycfg_expect(y, m, m->line, "devices", HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, m, keys, HB_ARRAY_LEN(keys)));
    const hb_ynode *n = hb_ycfg_get(m, "name");
    if (!n) return hb_ycfg_errf(y, m->line, "name", "missing (accepted: the device model's name, as text)");
    HB_TRY(hb_ycfg_string(y, n, "name", d->name, sizeof d->name));

    const hb_ynode *mt = hb_ycfg_get(m, "match");
    if (!mt) return hb_ycfg_errf(y, m->line, "match", "missing (accepted: a pattern or a list of patterns)");
    if (mt->kind == HB_Y_MAP || (mt->kind == HB_Y_LIST && mt->n == 0))
        return hb_ycfg_errf(y, mt->line, "match", "expected a pattern or a non-empty list of patterns");
    int np = mt->kind == HB_Y_LIST ? mt->n : 1;
    if (np > HB_ARRAY_LEN(d->match))
        return hb_ycfg_errf(y, mt->line, "match", "%d patterns (accepted: at most %d)", np, HB_ARRAY_LEN(d->match));
    for (int i = 0; i < np; i++) {
        const hb_ynode *p = mt->kind == HB_Y_LIST ? mt->items[i] : mt;
        HB_TRY(hb_ycfg_string(y, p, "match", d->match[i], sizeof d->match[i]));
    }
    d->n_match = np;

    const hb_ynode *b = hb_ycfg_get(m, "backend");
    if (b) HB_TRY(hb_ycfg_string(y, b, "backend", d->backend, sizeof d->backend));

    d->unit = HB_PRICE_PER_DEVICE_HOUR;
    const hb_ynode *u = hb_ycfg_get(m, "unit");
    if (u) {
        char s[32];
        HB_TRY(hb_ycfg_string(y, u, "unit", s, sizeof s));
        if (!strcmp(s, "gpu-hour") || !strcmp(s, "device-hour")) d->unit = HB_PRICE_PER_DEVICE_HOUR;
        else if (!strcmp(s, "core-hour")) d->unit = HB_PRICE_PER_CORE_HOUR;
        else if (!strcmp(s, "node-hour")) d->unit = HB_PRICE_PER_NODE_HOUR;
        else
            return hb_ycfg_errf(y, u->line, "unit", "unknown unit '%s' (accepted: gpu-hour, device-hour, core-hour, node-hour)",
                                hb_ycfg_shown(s, sb));
    }

    const hb_ynode *t = hb_ycfg_get(m, "tiers");
    if (!t) return hb_ycfg_errf(y, m->line, "tiers", "missing (accepted: a mapping of tier name to price)");
    HB_TRY(hb_ycfg_expect(y, t, t->line, "tiers", HB_Y_MAP));
    if (t->n == 0) return hb_ycfg_errf(y, t->line, "tiers", "empty (accepted: at least one tier)");
    if (t->n > HB_ARRAY_LEN(d->tiers))
        return hb_ycfg_errf(y, t->line, "tiers", "%d tiers (accepted: at most %d)", t->n, HB_ARRAY_LEN(d->tiers));
    for (int i = 0; i < t->n; i++) {
        for (int k = 0; k < i; k++)
            if (!strcmp(t->keys[i], t->keys[k]))
                return hb_ycfg_errf(y, t->key_lines[i], "tiers", "tier '%s' given twice", hb_ycfg_shown(t->keys[i], sb));
        HB_TRY(parse_tier(y, t->keys[i], t->key_lines[i], t->items[i], &d->tiers[i]));
    }
    d->n_tiers = t->n;
    HB_TRY(value_field(y, m, "all_in_kw", 0, 1, &d->all_in_kw));
    HB_TRY(value_field(y, m, "usd_per_kwh", 0, 0, &d->usd_per_kwh));
    HB_TRY(value_field(y, m, "pue", 1, 0, &d->pue));
    return HB_OK;
}

static hb_status parse_prices(const hb_ycfg *y, hb_prices *p) {
    static const char *const keys[] = {"currency", "default_tier", "energy", "devices"};
    static const char *const energy_keys[] = {"usd_per_kwh", "pue"};
    char sb[72];
    const hb_ynode *root = y->root;
    if (!root) return hb_errf(y->err, HB_ERR_INPUT, "%s:1: empty file (accepted: a prices mapping with devices:)", y->path);
    HB_TRY(hb_ycfg_expect(y, root, 1, "(top level)", HB_Y_MAP));
    HB_TRY(hb_ycfg_check_keys(y, root, keys, HB_ARRAY_LEN(keys)));

    snprintf(p->currency, sizeof p->currency, "USD");
    const hb_ynode *c = hb_ycfg_get(root, "currency");
    if (c) {
        char s[16];
        HB_TRY(hb_ycfg_string(y, c, "currency", s, sizeof s));
        if (strcmp(s, "USD") != 0)
            return hb_ycfg_errf(y, c->line, "currency", "'%s' is not supported (accepted: USD)", hb_ycfg_shown(s, sb));
    }
    p->usd_per_kwh = p->pue = no_value;
    const hb_ynode *e = hb_ycfg_get(root, "energy");
    if (e) {
        HB_TRY(hb_ycfg_expect(y, e, e->line, "energy", HB_Y_MAP));
        HB_TRY(hb_ycfg_check_keys(y, e, energy_keys, HB_ARRAY_LEN(energy_keys)));
        HB_TRY(value_field(y, e, "usd_per_kwh", 0, 0, &p->usd_per_kwh));
        HB_TRY(value_field(y, e, "pue", 1, 0, &p->pue));
    }
    const hb_ynode *ds = hb_ycfg_get(root, "devices");
    if (!ds) return hb_ycfg_errf(y, root->line, "devices", "missing (accepted: a list of devices)");
    HB_TRY(hb_ycfg_expect(y, ds, ds->line, "devices", HB_Y_LIST));
    p->devices = calloc((size_t)(ds->n ? ds->n : 1), sizeof *p->devices);
    if (!p->devices) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    for (int i = 0; i < ds->n; i++) {
        HB_TRY(parse_device(y, ds->items[i], &p->devices[i]));
        p->n_devices++;
    }
    const hb_ynode *dt = hb_ycfg_get(root, "default_tier");
    if (dt) {
        HB_TRY(hb_ycfg_string(y, dt, "default_tier", p->default_tier, sizeof p->default_tier));
        int found = 0;
        for (int i = 0; i < p->n_devices && !found; i++)
            for (int t = 0; t < p->devices[i].n_tiers && !found; t++)
                found = !strcmp(p->devices[i].tiers[t].name, p->default_tier);
        if (!found)
            return hb_ycfg_errf(y, dt->line, "default_tier", "no device has a tier '%s' (accepted: a tier name used under devices)",
                                hb_ycfg_shown(p->default_tier, sb));
    }
    return HB_OK;
}

hb_status hb_prices_load(const char *path, hb_prices **out, hb_err *err) {
    *out = NULL;
    hb_prices *p = calloc(1, sizeof *p);
    if (!p) return hb_errf(err, HB_ERR_NOMEM, "prices: out of memory");
    snprintf(p->path, sizeof p->path, "%s", path);
    hb_ycfg y;
    hb_status st = hb_ycfg_load(&y, path, err);
    if (st == HB_OK) st = parse_prices(&y, p);
    hb_ycfg_free(&y);
    if (st != HB_OK) {
        hb_prices_free(p);
        return st;
    }
    *out = p;
    return HB_OK;
}

void hb_prices_free(hb_prices *p) {
    if (!p) return;
    free(p->devices);
    free(p);
}

const hb_price_device *hb_prices_match(const hb_prices *p, const char *device, const char *backend) {
    if (!p) return NULL;
    for (int i = 0; i < p->n_devices; i++) {
        const hb_price_device *d = &p->devices[i];
        if (d->backend[0] && strcmp(d->backend, backend ? backend : "") != 0) continue;
        for (int k = 0; k < d->n_match; k++)
            if (!strcmp(d->match[k], "*") || strcasestr(device ? device : "", d->match[k])) return d;
    }
    return NULL;
}

const hb_price_tier *hb_prices_tier(const hb_prices *p, const hb_price_device *d, const char *name) {
    if (!d) return NULL;
    if (!name && p && p->default_tier[0]) name = p->default_tier;
    if (!name) return d->n_tiers ? &d->tiers[0] : NULL;
    for (int i = 0; i < d->n_tiers; i++)
        if (!strcmp(d->tiers[i].name, name)) return &d->tiers[i];
    return NULL;
}
