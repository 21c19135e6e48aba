/* fake_rsmi.c - a scripted ROCm SMI library for the meter tests: built as
 * build/tests/librocm_smi64.so.1 (ROCm 6 shape: rsmi_dev_power_get and
 * rsmi_dev_current_socket_power_get exported, 6.x frequency struct) and, with -DFAKE_RSMI_52, as
 * libfake-rsmi52.so (ROCm 5.2 shape: neither getter, 5.x frequency struct).
 *
 * Environment, read at the first rsmi_init (lists are per device, comma-separated):
 *   HB_FAKE_RSMI_DEVICES   PCI bus ids                       [0000:c1:00.0]
 *   HB_FAKE_RSMI_NAME      device name, all devices          [AMD Instinct MI250X]
 *   HB_FAKE_RSMI_POWER     W or W+S (S W/s ramp)             [500]
 *   HB_FAKE_RSMI_MODE      ok (average power, MI200 style) | socket (current socket power only,
 *                          MI300 style) | zero (power and counter read 0: an MI250 odd die) |
 *                          skew (counter x3) | stuck | nocounter                     [ok]
 *   HB_FAKE_RSMI_RES       counter resolution, uJ per count  [15.259]
 *   HB_FAKE_RSMI_INIT_RC   what rsmi_init returns            [0]
 * Power P(t) = W + S t, the counter its integral / resolution, t from the first rsmi_init on
 * CLOCK_MONOTONIC. Test code: file-scope state is fine here. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int rsmi_status_t;
enum { OK = 0, INVALID = 1, NOT_SUPPORTED = 2 };

typedef struct {
    uint32_t major, minor, patch;
    const char *build;
} rsmi_version_t;

#ifdef FAKE_RSMI_52
typedef struct {
    uint32_t num_supported;
    uint32_t current;
    uint64_t frequency[32];
} rsmi_frequencies_t;
#else
typedef struct {
    bool has_deep_sleep;
    uint32_t num_supported;
    uint32_t current;
    uint64_t frequency[33];
} rsmi_frequencies_t;
#endif

struct fake_dev {
    uint64_t bdf;
    double p0, slope;
    char mode[32];
};

#define MAX_DEV 8
static struct fake_dev devs[MAX_DEV];
static int n_devs, refs;
static double time0 = -1, res_uj = 15.259;
static char name[96] = "AMD Instinct MI250X";

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double hb_fake_rsmi_time0(void) { return time0; }

static void item(const char *var, int i, const char *def, char *buf, size_t len) {
    const char *s = getenv(var);
    snprintf(buf, len, "%s", def);
    if (!s || !*s) return;
    for (int k = 0; k < i; k++) {
        s = strchr(s, ',');
        if (!s) return;
        s++;
    }
    size_t n = strcspn(s, ",");
    if (n >= len) n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

static void load(void) {
    const char *ids = getenv("HB_FAKE_RSMI_DEVICES");
    if (!ids || !*ids) ids = "0000:c1:00.0";
    n_devs = 0;
    for (const char *p = ids; *p && n_devs < MAX_DEV;) {
        struct fake_dev *d = &devs[n_devs];
        memset(d, 0, sizeof *d);
        unsigned dom = 0, bus = 0, dev = 0, fn = 0;
        sscanf(p, "%x:%x:%x.%x", &dom, &bus, &dev, &fn);
        d->bdf = ((uint64_t)dom << 32) | ((bus & 0xff) << 8) | ((dev & 0x1f) << 3) | (fn & 7);
        char buf[64];
        item("HB_FAKE_RSMI_POWER", n_devs, "500", buf, sizeof buf);
        d->p0 = atof(buf);
        char *plus = strchr(buf, '+');
        d->slope = plus ? atof(plus + 1) : 0;
        item("HB_FAKE_RSMI_MODE", n_devs, "ok", d->mode, sizeof d->mode);
        n_devs++;
        p += strcspn(p, ",");
        if (*p == ',') p++;
    }
    const char *r = getenv("HB_FAKE_RSMI_RES");
    res_uj = r && *r ? atof(r) : 15.259;
    const char *nm = getenv("HB_FAKE_RSMI_NAME");
    snprintf(name, sizeof name, "%s", nm && *nm ? nm : "AMD Instinct MI250X");
    time0 = mono();
}

static struct fake_dev *dev(uint32_t dv) { return dv < (uint32_t)n_devs ? &devs[dv] : NULL; }
static int is(const struct fake_dev *d, const char *m) { return strcmp(d->mode, m) == 0; }
static double power_w(const struct fake_dev *d) {
    return is(d, "zero") ? 0 : d->p0 + d->slope * (mono() - time0);
}

rsmi_status_t rsmi_init(uint64_t flags) {
    (void)flags;
    const char *rc = getenv("HB_FAKE_RSMI_INIT_RC");
    if (rc && atoi(rc)) {
        fprintf(stderr, "fake rsmi: noise that hetbench must mute\n");
        return atoi(rc);
    }
    if (refs++ == 0) load();
    return OK;
}

rsmi_status_t rsmi_shut_down(void) {
    if (refs > 0) refs--;
    return OK;
}

rsmi_status_t rsmi_status_string(rsmi_status_t s, const char **str) {
    *str = s == OK ? "RSMI_STATUS_SUCCESS" : s == NOT_SUPPORTED ? "RSMI_STATUS_NOT_SUPPORTED"
                                                                : "RSMI_STATUS_INIT_ERROR";
    return OK;
}

rsmi_status_t rsmi_version_get(rsmi_version_t *v) {
#ifdef FAKE_RSMI_52
    *v = (rsmi_version_t){5, 2, 3, "fake"};
#else
    *v = (rsmi_version_t){6, 1, 2, "fake"};
#endif
    return OK;
}

rsmi_status_t rsmi_version_str_get(int comp, char *buf, uint32_t len) {
    if (comp != 0) return INVALID;
    snprintf(buf, len, "6.7.0-fake");
    return OK;
}

rsmi_status_t rsmi_num_monitor_devices(uint32_t *n) {
    *n = (uint32_t)n_devs;
    return OK;
}

rsmi_status_t rsmi_dev_pci_id_get(uint32_t dv, uint64_t *bdf) {
    struct fake_dev *d = dev(dv);
    if (!d) return INVALID;
    *bdf = d->bdf;
    return OK;
}

rsmi_status_t rsmi_dev_name_get(uint32_t dv, char *buf, size_t len) {
    if (!dev(dv)) return INVALID;
    snprintf(buf, len, "%s", name);
    return OK;
}

rsmi_status_t rsmi_dev_energy_count_get(uint32_t dv, uint64_t *count, float *res, uint64_t *ts) {
    struct fake_dev *d = dev(dv);
    if (!d) return INVALID;
    if (is(d, "nocounter")) return NOT_SUPPORTED;
    double t = mono() - time0, uj = (d->p0 * t + 0.5 * d->slope * t * t) * 1e6;
    if (is(d, "zero")) uj = 0;
    if (is(d, "stuck")) uj = 1e9;
    if (is(d, "skew")) uj *= 3;
    *count = (uint64_t)(uj / res_uj);
    *res = (float)res_uj;
    *ts = (uint64_t)(mono() * 1e9);
    return OK;
}

/* MI200 style: average power; MI300 ("socket"): not supported */
rsmi_status_t rsmi_dev_power_ave_get(uint32_t dv, uint32_t sensor, uint64_t *uw) {
    struct fake_dev *d = dev(dv);
    if (!d || sensor != 0) return INVALID;
    if (is(d, "socket")) return NOT_SUPPORTED;
    *uw = (uint64_t)(power_w(d) * 1e6);
    return OK;
}

#ifndef FAKE_RSMI_52
rsmi_status_t rsmi_dev_current_socket_power_get(uint32_t dv, uint64_t *uw) {
    struct fake_dev *d = dev(dv);
    if (!d) return INVALID;
    if (!is(d, "socket")) return NOT_SUPPORTED;
    *uw = (uint64_t)(power_w(d) * 1e6);
    return OK;
}

rsmi_status_t rsmi_dev_power_get(uint32_t dv, uint64_t *uw, uint32_t *type) {
    struct fake_dev *d = dev(dv);
    if (!d) return INVALID;
    *uw = (uint64_t)(power_w(d) * 1e6);
    *type = is(d, "socket") ? 1 : 0; /* RSMI_CURRENT_POWER : RSMI_AVERAGE_POWER */
    return OK;
}
#endif

rsmi_status_t rsmi_dev_power_cap_get(uint32_t dv, uint32_t sensor, uint64_t *uw) {
    if (!dev(dv) || sensor != 0) return INVALID;
    *uw = 560000000ull;
    return OK;
}

rsmi_status_t rsmi_dev_gpu_clk_freq_get(uint32_t dv, int type, rsmi_frequencies_t *f) {
    if (!dev(dv)) return INVALID;
    memset(f, 0, sizeof *f);
    if (type == 0) { /* sys: 500, 1700 MHz, current 1700 */
        f->num_supported = 2;
        f->current = 1;
        f->frequency[0] = 500000000ull;
        f->frequency[1] = 1700000000ull;
    } else if (type == 4) { /* mem: 1600 MHz */
        f->num_supported = 1;
        f->current = 0;
        f->frequency[0] = 1600000000ull;
    } else {
        return NOT_SUPPORTED;
    }
    return OK;
}

rsmi_status_t rsmi_dev_temp_metric_get(uint32_t dv, uint32_t sensor, int metric, int64_t *mc) {
    if (!dev(dv) || metric != 0) return INVALID;
    if (sensor == 1) { /* junction */
        *mc = 55000;
        return OK;
    }
    return NOT_SUPPORTED;
}
