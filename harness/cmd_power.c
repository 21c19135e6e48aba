/* cmd_power.c - `hetbench power [--seconds S] [--hz H] [--json]`: reads every meter found on
 * this node (GPUs through NVML and ROCm SMI, RAPL domains through powercap) for S seconds, all
 * at once, and prints per meter the average W, the joules from the counter and from the
 * integral of the power samples, their ratio and the validity flags, with where each figure
 * comes from. A quick check of a node's meters, and the way to see its idle power.
 * Needs no MPI. Exit 0 when some meter measured, 1 when none could, 2 on a usage error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "energy.h"
#include "measure.h"

#define MAX_METERS 64

static const char *const help_power =
    "usage: hetbench power [--seconds S] [--hz H] [--json]\n"
    "\n"
    "Reads every meter on this node for S seconds: NVIDIA GPUs (NVML), AMD GPUs (ROCm SMI)\n"
    "and the RAPL package and DRAM domains (powercap). Per meter: average W, joules from the\n"
    "energy counter and from the integral of the power samples, their ratio, peak W, the\n"
    "number of samples and the validity flags; then where each figure comes from, and why a\n"
    "meter is missing. Run it on an idle node to see the idle power.\n"
    "\n"
    "options:\n"
    "  --seconds S   how long to measure                               [3]\n"
    "  --hz H        power sampling rate                               [20]\n"
    "  --json        one JSON object on stdout instead of the table\n"
    "\n"
    "environment: HETBENCH_NVML_LIBRARY, HETBENCH_RSMI_LIBRARY (library paths),\n"
    "HETBENCH_POWERCAP_ROOT (instead of /sys/class/powercap)\n"
    "exit codes: 0 a meter measured, 1 no meter could, 2 usage error\n";

typedef struct pmeter {
    char label[48];
    hb_meter *m;
    hb_sampler *smp;
    double t0, t1, e0, e1;
    hb_energy_result r;
    int64_t ticks;
} pmeter;

typedef struct unavail {
    char source[32];
    char reason[512];
} unavail;

static int usage(const char *fmt, const char *arg) {
    fprintf(stderr, "hetbench power: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'hetbench power --help')\n");
    return 2;
}

/* A positive number no larger than max from s; 0 on success. */
static int parse_pos(const char *s, double max, double *v) {
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || !(x > 0) || x > max) return -1;
    *v = x;
    return 0;
}

static void read_counter(hb_meter *m, double *t, double *e) {
    double ta = hb_now_s(), v = NAN;
    *e = m->has_counter && m->ops->energy_j(m, &v) == HB_OK ? v : NAN;
    *t = 0.5 * (ta + hb_now_s());
}

/* Opens meter `i` of a vendor (open(NULL, i)) or records why not. */
typedef hb_status (*open_fn)(const char *, int, hb_meter **, hb_err *);

static void add_meters(const char *src, int (*count)(hb_err *), open_fn open, pmeter *pm, int *n,
                       unavail *un, int *n_un) {
    hb_err err = {{0}};
    int c = count(&err);
    if (c <= 0 && *n_un < MAX_METERS) {
        unavail *u = &un[(*n_un)++];
        snprintf(u->source, sizeof u->source, "%s", src);
        snprintf(u->reason, sizeof u->reason, "%s", c == 0 ? "no device" : err.msg);
        return;
    }
    for (int i = 0; i < c && *n < MAX_METERS; i++) {
        hb_meter *m = NULL;
        err.msg[0] = '\0';
        if (open(NULL, i, &m, &err) == HB_OK) {
            pmeter *p = &pm[(*n)++];
            memset(p, 0, sizeof *p);
            p->m = m;
            if (strcmp(src, "rapl") == 0)
                snprintf(p->label, sizeof p->label, "rapl:%.40s", m->info.device);
            else
                snprintf(p->label, sizeof p->label, "%s:%d", src, i);
        } else if (*n_un < MAX_METERS) {
            unavail *u = &un[(*n_un)++];
            snprintf(u->source, sizeof u->source, "%s:%d", src, i);
            snprintf(u->reason, sizeof u->reason, "%s", err.msg);
        }
    }
}

static hb_status open_rapl_index(const char *pci, int i, hb_meter **m, hb_err *err) {
    (void)pci;
    return hb_meter_open_rapl(i, m, err);
}

static void flag_names(uint32_t f, char *buf, size_t len) {
    buf[0] = '\0';
    for (int b = 0; b < HB_ENERGY_N_FLAGS; b++)
        if (f & (1u << b)) {
            size_t l = strlen(buf);
            snprintf(buf + l, len - l, "%s%s", l ? "," : "", hb_energy_flag_name(b));
        }
    if (!buf[0]) snprintf(buf, len, "-");
}

static void num(char *buf, size_t len, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, len, fmt, v);
    else snprintf(buf, len, "-");
}

static void json_str(const char *key, const char *v, int comma) {
    printf("%s\"%s\":\"", comma ? "," : "", key);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void json_num(const char *key, double v) {
    if (isfinite(v)) printf(",\"%s\":%.9g", key, v);
    else printf(",\"%s\":null", key);
}

static void print_table(const pmeter *pm, int n, const unavail *un, int n_un, double seconds,
                        double hz) {
    printf("# hetbench power: %d meter%s, %.2f s at %g Hz\n", n, n == 1 ? "" : "s", seconds, hz);
    if (n > 0)
        printf("# %-22s %9s %12s %12s %7s %9s %7s %5s  %s\n", "meter", "avg_W", "counter_J",
               "integral_J", "ratio", "peak_W", "samples", "valid", "flags");
    for (int i = 0; i < n; i++) {
        const hb_energy_result *r = &pm[i].r;
        char a[32], c[32], g[32], q[32], p[32], f[160];
        num(a, sizeof a, "%.2f", r->avg_w);
        num(c, sizeof c, "%.3f", r->counter_j);
        num(g, sizeof g, "%.3f", r->integral_j);
        num(q, sizeof q, "%.3f", r->ratio);
        num(p, sizeof p, "%.2f", r->peak_w);
        flag_names(r->flags, f, sizeof f);
        printf("  %-22s %9s %12s %12s %7s %9s %7lld %5d  %s\n", pm[i].label, a, c, g, q, p,
               (long long)pm[i].ticks, r->valid, f);
    }
    for (int i = 0; i < n; i++) {
        const hb_meter *m = pm[i].m;
        const hb_meter_info *in = &m->info;
        printf("# %s: %s%s%s | %s | %s %s (%s)\n", pm[i].label, in->device,
               in->pci_bus_id[0] ? " " : "", in->pci_bus_id, in->scope, in->api, in->version,
               in->library);
        printf("#   counter: %s | power: %s | energy from the %s\n",
               in->energy_fn[0] ? in->energy_fn : "none", in->power_fn[0] ? in->power_fn : "none",
               pm[i].r.source);
        if (m->reason[0]) printf("#   note: %s\n", m->reason);
    }
    for (int i = 0; i < n_un; i++) printf("# unavailable: %s: %s\n", un[i].source, un[i].reason);
}

static void print_json(const pmeter *pm, int n, const unavail *un, int n_un, double seconds,
                       double hz) {
    printf("{\"seconds\":%.9g,\"hz\":%.9g,\"meters\":[", seconds, hz);
    for (int i = 0; i < n; i++) {
        const hb_meter *m = pm[i].m;
        const hb_meter_info *in = &m->info;
        const hb_energy_result *r = &pm[i].r;
        printf("%s{", i ? "," : "");
        json_str("meter", pm[i].label, 0);
        json_str("name", m->name, 1);
        json_str("api", in->api, 1);
        json_str("library", in->library, 1);
        json_str("version", in->version, 1);
        json_str("device", in->device, 1);
        json_str("pci_bus_id", in->pci_bus_id, 1);
        json_str("scope", in->scope, 1);
        json_str("energy_fn", in->energy_fn, 1);
        json_str("power_fn", in->power_fn, 1);
        json_num("window_s", pm[i].t1 - pm[i].t0);
        json_num("avg_w", r->avg_w);
        json_num("energy_j", r->energy_j);
        json_num("energy_counter_j", r->counter_j);
        json_num("energy_integral_j", r->integral_j);
        json_num("energy_ratio", r->ratio);
        json_num("peak_w", r->peak_w);
        json_num("power_limit_w", in->power_limit_w);
        json_str("energy_source", r->source, 1);
        printf(",\"samples\":%lld,\"energy_valid\":%d,\"energy_flags\":%u,\"flag_names\":[",
               (long long)pm[i].ticks, r->valid, r->flags);
        for (int b = 0, k = 0; b < HB_ENERGY_N_FLAGS; b++)
            if (r->flags & (1u << b)) printf("%s\"%s\"", k++ ? "," : "", hb_energy_flag_name(b));
        printf("]");
        json_str("reason", m->reason, 1);
        printf("}");
    }
    printf("],\"unavailable\":[");
    for (int i = 0; i < n_un; i++) {
        printf("%s{", i ? "," : "");
        json_str("source", un[i].source, 0);
        json_str("reason", un[i].reason, 1);
        printf("}");
    }
    printf("]}\n");
}

int hb_cmd_power(int argc, char **argv) {
    double seconds = 3, hz = 20;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help_power, stdout);
            return 0;
        }
    }
    for (int i = 0; i < argc; i++) {
        char name[32];
        const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        if (strcmp(name, "--json") == 0 && !eq) {
            json = 1;
            continue;
        }
        if (strcmp(name, "--seconds") != 0 && strcmp(name, "--hz") != 0)
            return usage("unknown option '%s'", a);
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return usage("%s: missing value", name);
        if (strcmp(name, "--seconds") == 0 && parse_pos(val, 86400, &seconds) != 0)
            return usage("--seconds: expected a number of seconds > 0 and <= 86400, got '%s'", val);
        if (strcmp(name, "--hz") == 0 && parse_pos(val, 1000, &hz) != 0)
            return usage("--hz: expected a rate > 0 and <= 1000 Hz, got '%s'", val);
    }

    pmeter pm[MAX_METERS];
    unavail un[MAX_METERS];
    int n = 0, n_un = 0;
    add_meters("nvml", hb_meter_nvml_count, hb_meter_open_nvml, pm, &n, un, &n_un);
    add_meters("rocm-smi", hb_meter_rsmi_count, hb_meter_open_rsmi, pm, &n, un, &n_un);
    add_meters("rapl", hb_meter_rapl_count, open_rapl_index, pm, &n, un, &n_un);

    /* all meters at once: samplers first, then each counter, the wait, each counter again */
    for (int i = 0; i < n; i++)
        if (hb_sampler_start(pm[i].m, NULL, hz, &pm[i].smp, NULL) != HB_OK) pm[i].smp = NULL;
    for (int i = 0; i < n; i++) read_counter(pm[i].m, &pm[i].t0, &pm[i].e0);
    double until = hb_now_s() + seconds;
    for (double left; n > 0 && (left = until - hb_now_s()) > 0;) {
        struct timespec d = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        nanosleep(&d, NULL);
    }
    for (int i = 0; i < n; i++) read_counter(pm[i].m, &pm[i].t1, &pm[i].e1);
    int measured = 0;
    for (int i = 0; i < n; i++) {
        pmeter *p = &pm[i];
        hb_sampler_stop(p->smp);
        const hb_samples *s = p->smp ? hb_sampler_samples(p->smp) : NULL;
        hb_energy_window w = {
            .t0 = p->t0, .t1 = p->t1, .has_counter = p->m->has_counter,
            .has_power = p->m->has_power, .e0_j = p->e0, .e1_j = p->e1,
            .counter_period_s = p->m->counter_period_s, .sample_period_s = p->smp ? 1.0 / hz : 0,
            .power_window_s = p->m->info.power_window_s,
            .power_from_counter = p->m->power_from_counter,
            .pt = s ? s->power_t : NULL, .pw = s ? s->power_w : NULL, .n_power = s ? s->n_power : 0,
            .ct = s ? s->counter_t : NULL, .cj = s ? s->counter_j : NULL,
            .n_counter = s ? s->n_counter : 0,
        };
        hb_energy_assess(&w, &p->r);
        p->ticks = s ? s->n_ticks : 0;
        measured += isfinite(p->r.energy_j);
    }
    if (json) print_json(pm, n, un, n_un, seconds, hz);
    else print_table(pm, n, un, n_un, seconds, hz);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        hb_sampler_free(pm[i].smp);
        hb_meter_close(pm[i].m);
    }
    if (!measured)
        fprintf(stderr, "hetbench power: no meter could measure on this node (see the reasons above)\n");
    return measured ? 0 : 1;
}
