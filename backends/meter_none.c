/* meter_none.c - the meter of a device with no energy or power readings, and what every meter
 * shares: allocation with NaN figures, the checked wrappers, flag names, PCI bus id parsing. */
#include "meter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void none_destroy(hb_meter *m) { free(m); }
static hb_status none_energy(hb_meter *m, double *j) { (void)m; (void)j; return HB_ERR_UNSUPPORTED; }
static hb_status none_power(hb_meter *m, double *w) { (void)m; (void)w; return HB_ERR_UNSUPPORTED; }

static const hb_meter_ops none_ops = {
    .destroy = none_destroy,
    .energy_j = none_energy,
    .power_w = none_power,
    .state = NULL,
};

hb_meter *hb_meter_alloc(const char *name) {
    hb_meter *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    m->info.counter_resolution_j = NAN;
    m->info.power_window_s = NAN;
    m->info.power_limit_w = NAN;
    return m;
}

hb_status hb_meter_open_none(hb_meter **out, const char *reason) {
    hb_meter *m = hb_meter_alloc("none");
    if (!m) return HB_ERR_NOMEM;
    m->ops = &none_ops;
    snprintf(m->reason, sizeof m->reason, "%s", reason && *reason ? reason : "no meter");
    *out = m;
    return HB_OK;
}

void hb_meter_close(hb_meter *m) {
    if (m) m->ops->destroy(m);
}

hb_status hb_meter_energy_j(hb_meter *m, double *joules) {
    if (!m) return HB_ERR_UNSUPPORTED;
    return m->ops->energy_j(m, joules);
}

hb_status hb_meter_power_w(hb_meter *m, double *watts) {
    if (!m) return HB_ERR_UNSUPPORTED;
    return m->ops->power_w(m, watts);
}

void hb_meter_state_nan(hb_meter_state *st) {
    st->power_w = st->power_instant_w = st->power_avg_w = st->power_limit_w = NAN;
    st->sm_clock_mhz = st->mem_clock_mhz = st->temperature_c = NAN;
}

void hb_meter_read_state(hb_meter *m, hb_meter_state *st) {
    hb_meter_state_nan(st);
    if (!m) return;
    if (m->ops->state) {
        m->ops->state(m, st);
    } else if (m->has_power) {
        double w;
        if (m->ops->power_w(m, &w) == HB_OK) st->power_w = w;
    }
    if (!isfinite(st->power_limit_w)) st->power_limit_w = m->info.power_limit_w;
}

static const char *const flag_names[HB_ENERGY_N_FLAGS] = {
    "no_meter", "short_window", "sample_gap", "counter_stuck", "counter_backwards",
    "ratio_bounds", "read_failed",
};

const char *hb_energy_flag_name(int bit) {
    return bit >= 0 && bit < HB_ENERGY_N_FLAGS ? flag_names[bit] : NULL;
}

/* Parses one hex field ending at `end` (a char of ":." or NUL); 0 on success. */
static int hex_field(const char **p, char end, unsigned long max, unsigned *v) {
    char *q = NULL;
    if (!**p) return -1;
    unsigned long x = strtoul(*p, &q, 16);
    if (q == *p || *q != end || x > max) return -1;
    *v = (unsigned)x;
    *p = *q ? q + 1 : q;
    return 0;
}

int hb_pci_parse(const char *s, unsigned *domain, unsigned *bus, unsigned *dev, unsigned *fn) {
    if (!s) return -1;
    unsigned d = 0, b = 0, v = 0, f = 0;
    int colons = 0;
    for (const char *c = s; *c; c++) colons += *c == ':';
    const char *p = s;
    if (colons == 2 && hex_field(&p, ':', 0xffffffffUL, &d) != 0) return -1;
    if (colons < 1 || colons > 2) return -1;
    if (hex_field(&p, ':', 0xff, &b) != 0 || hex_field(&p, '.', 0x1f, &v) != 0 ||
        hex_field(&p, '\0', 0x7, &f) != 0)
        return -1;
    if (domain) *domain = d;
    if (bus) *bus = b;
    if (dev) *dev = v;
    if (fn) *fn = f;
    return 0;
}

int hb_pci_same(const char *a, const char *b) {
    unsigned x[4], y[4];
    if (hb_pci_parse(a, &x[0], &x[1], &x[2], &x[3]) != 0) return 0;
    if (hb_pci_parse(b, &y[0], &y[1], &y[2], &y[3]) != 0) return 0;
    return memcmp(x, y, sizeof x) == 0;
}
