/* meter_rsmi.c - AMD GPU energy and power through ROCm SMI, loaded with dlopen.
 *
 * rocm_smi.h is not needed at build time: the few types and functions used are declared below
 * with the library's ABI. The library is $HETBENCH_RSMI_LIBRARY, else the first of
 * librocm_smi64.so.1 (Debian), .so.7/.so.6/.so.5 (ROCm), librocm_smi64.so and
 * /opt/rocm/lib/librocm_smi64.so that loads. rsmi_init is called once per meter (it prints
 * noise on stderr on a machine without a GPU: stderr is muted around it).
 *
 * Figures:
 * - counter: rsmi_dev_energy_count_get returns a raw count and its resolution in uJ;
 *   energy = count x resolution (64-bit accumulator: no wraparound in practice).
 * - power (uW) differs by generation; the first getter that gives a non-zero reading is used:
 *   rsmi_dev_power_get (ROCm 6: current socket power where the GPU has it, else average),
 *   rsmi_dev_current_socket_power_get (MI300: instantaneous), rsmi_dev_power_ave_get (MI200
 *   and older: average). The optional ones are found with dlsym (ROCm 5.2 has neither).
 * - MI250/MI250X: the two dies (GCDs) of a package are two devices and only the first reports
 *   power; the odd die reads 0 W. When a device reads 0 W and the device before it (its
 *   partner, same name) reads more, power and energy are read on the partner and the meter
 *   says so: the figures then cover the whole package (both GCDs).
 * - When it opens, the meter checks the counter against power x time over 0.2 s and turns the
 *   counter off, with the reason, when they disagree by more than 2x, or the counter is stuck
 *   or goes backwards (the integral of the power samples is then the energy).
 * - state: power cap, system (shader) and memory clocks, junction (else edge) temperature.
 * Library calls are serialised by a mutex per meter (the sampler and the measuring thread). */
#include "../meter.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the ROCm SMI ABI used (rocm_smi.h) ---- */
typedef int rsmi_status_t;
#define RSMI_STATUS_SUCCESS 0
#define RSMI_STATUS_NOT_SUPPORTED 2
#define RSMI_STATUS_PERMISSION 4
#define RSMI_CLK_TYPE_SYS 0
#define RSMI_CLK_TYPE_MEM 4
#define RSMI_TEMP_TYPE_EDGE 0
#define RSMI_TEMP_TYPE_JUNCTION 1
#define RSMI_TEMP_CURRENT 0
#define RSMI_SW_COMP_DRIVER 0
#define RSMI_CURRENT_POWER 1   /* RSMI_POWER_TYPE: 0 average, 1 current, 0xFFFFFFFF invalid */

typedef struct rsmi_version {
    uint32_t major, minor, patch;
    const char *build;
} rsmi_version;

/* rsmi_frequencies_t: ROCm 5 {u32 num_supported, current; u64 frequency[32]} (264 B);
 * ROCm 6 {bool has_deep_sleep; u32 num_supported, current; u64 frequency[33]} (280 B).
 * The call writes into a larger zeroed buffer and is decoded by the library's major version. */
#define RSMI_FREQ_BUF 512

#define SANITY_S 0.2          /* counter check at open */
#define SANITY_LO 0.5
#define SANITY_HI 2.0

enum { POW_NONE, POW_GENERIC, POW_SOCKET, POW_AVE };

typedef struct rsmi_lib {
    void *dl;
    char path[192];
    rsmi_version ver;
    rsmi_status_t (*init)(uint64_t);
    rsmi_status_t (*shut_down)(void);
    rsmi_status_t (*num_devices)(uint32_t *);
    rsmi_status_t (*pci_id)(uint32_t, uint64_t *);
    rsmi_status_t (*name)(uint32_t, char *, size_t);
    rsmi_status_t (*energy)(uint32_t, uint64_t *, float *, uint64_t *);
    rsmi_status_t (*power_generic)(uint32_t, uint64_t *, uint32_t *);
    rsmi_status_t (*power_socket)(uint32_t, uint64_t *);
    rsmi_status_t (*power_ave)(uint32_t, uint32_t, uint64_t *);
    rsmi_status_t (*power_cap)(uint32_t, uint32_t, uint64_t *);
    rsmi_status_t (*clk)(uint32_t, int, void *);
    rsmi_status_t (*temp)(uint32_t, uint32_t, int, int64_t *);
    rsmi_status_t (*version)(rsmi_version *);
    rsmi_status_t (*version_str)(int, char *, uint32_t);
    rsmi_status_t (*status_string)(rsmi_status_t, const char **);
} rsmi_lib;

typedef struct rsmi_ctx {
    rsmi_lib lib;
    pthread_mutex_t lock;
    uint32_t dv;               /* the device */
    uint32_t read_dv;          /* where power and energy are read (partner die on MI250) */
    int power_kind;
    int power_is_current;      /* rsmi_dev_power_get reported current (instant) power */
} rsmi_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *rc_str(const rsmi_lib *l, rsmi_status_t rc) {
    const char *s = NULL;
    if (l->status_string && l->status_string(rc, &s) == RSMI_STATUS_SUCCESS && s) return s;
    return rc == RSMI_STATUS_NOT_SUPPORTED ? "not supported"
           : rc == RSMI_STATUS_PERMISSION  ? "permission denied"
                                           : "ROCm SMI error";
}

static rsmi_status_t quiet_init(rsmi_lib *l) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0) dup2(null, STDERR_FILENO);
    rsmi_status_t rc = l->init(0);
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (null >= 0) close(null);
    return rc;
}

static hb_status lib_open(rsmi_lib *l, hb_err *err) {
    memset(l, 0, sizeof *l);
    static const char *const candidates[] = {
        "librocm_smi64.so.1", "librocm_smi64.so.7", "librocm_smi64.so.6", "librocm_smi64.so.5",
        "librocm_smi64.so", "/opt/rocm/lib/librocm_smi64.so",
    };
    const char *env = getenv("HETBENCH_RSMI_LIBRARY");
    char first_err[256] = "";
    if (env && *env) {
        snprintf(l->path, sizeof l->path, "%s", env);
        l->dl = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!l->dl) snprintf(first_err, sizeof first_err, "%s", dlerror());
    } else {
        for (int i = 0; i < HB_ARRAY_LEN(candidates) && !l->dl; i++) {
            l->dl = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
            if (l->dl) snprintf(l->path, sizeof l->path, "%s", candidates[i]);
            else if (i == 0) snprintf(first_err, sizeof first_err, "%s", dlerror());
        }
    }
    if (!l->dl)
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "ROCm SMI: cannot load %s: %s (no ROCm here, or set HETBENCH_RSMI_LIBRARY "
                       "to the library's path)",
                       env && *env ? env : "librocm_smi64", first_err);
#define SYM(field, name)                          \
    do {                                          \
        void *sym_ = dlsym(l->dl, name);          \
        memcpy(&l->field, &sym_, sizeof sym_);    \
    } while (0)
    SYM(init, "rsmi_init");
    SYM(shut_down, "rsmi_shut_down");
    SYM(num_devices, "rsmi_num_monitor_devices");
    SYM(pci_id, "rsmi_dev_pci_id_get");
    SYM(name, "rsmi_dev_name_get");
    SYM(energy, "rsmi_dev_energy_count_get");
    SYM(power_generic, "rsmi_dev_power_get");
    SYM(power_socket, "rsmi_dev_current_socket_power_get");
    SYM(power_ave, "rsmi_dev_power_ave_get");
    SYM(power_cap, "rsmi_dev_power_cap_get");
    SYM(clk, "rsmi_dev_gpu_clk_freq_get");
    SYM(temp, "rsmi_dev_temp_metric_get");
    SYM(version, "rsmi_version_get");
    SYM(version_str, "rsmi_version_str_get");
    SYM(status_string, "rsmi_status_string");
#undef SYM
    const char *missing = !l->init           ? "rsmi_init"
                          : !l->shut_down    ? "rsmi_shut_down"
                          : !l->num_devices  ? "rsmi_num_monitor_devices"
                          : !l->pci_id       ? "rsmi_dev_pci_id_get"
                                             : NULL;
    if (missing) {
        dlclose(l->dl);
        l->dl = NULL;
        return hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: %s lacks %s", l->path, missing);
    }
    rsmi_status_t rc = quiet_init(l);
    if (rc != RSMI_STATUS_SUCCESS) {
        hb_status s = hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: rsmi_init failed: %s (%d)",
                              rc_str(l, rc), rc);
        dlclose(l->dl);
        l->dl = NULL;
        return s;
    }
    if (l->version) l->version(&l->ver);
    return HB_OK;
}

static void lib_close(rsmi_lib *l) {
    if (!l->dl) return;
    l->shut_down();
    dlclose(l->dl);
    l->dl = NULL;
}

static void bdf_str(uint64_t bdf, char *buf, size_t len) {
    snprintf(buf, len, "%04x:%02x:%02x.%x", (unsigned)(bdf >> 32), (unsigned)((bdf >> 8) & 0xff),
             (unsigned)((bdf >> 3) & 0x1f), (unsigned)(bdf & 0x7));
}

/* Power in W by getter kind on device dv; NaN when the call fails. Caller holds the lock. */
static double read_power(rsmi_ctx *c, uint32_t dv, int kind, int *is_current) {
    rsmi_lib *l = &c->lib;
    uint64_t uw = 0;
    uint32_t type = 0;
    rsmi_status_t rc = -1;
    switch (kind) {
    case POW_GENERIC: if (l->power_generic) rc = l->power_generic(dv, &uw, &type); break;
    case POW_SOCKET: if (l->power_socket) rc = l->power_socket(dv, &uw); break;
    case POW_AVE: if (l->power_ave) rc = l->power_ave(dv, 0, &uw); break;
    default: break;
    }
    if (rc != RSMI_STATUS_SUCCESS) return NAN;
    if (is_current) *is_current = kind == POW_SOCKET || (kind == POW_GENERIC && type == RSMI_CURRENT_POWER);
    return (double)uw * 1e-6;
}

/* Energy in J on device dv; NaN when the call fails. Caller holds the lock. */
static double read_energy(rsmi_ctx *c, uint32_t dv) {
    uint64_t count = 0, ts = 0;
    float res = 0;
    if (!c->lib.energy || c->lib.energy(dv, &count, &res, &ts) != RSMI_STATUS_SUCCESS || !(res > 0))
        return NAN;
    return (double)count * (double)res * 1e-6;
}

static hb_status rsmi_energy(hb_meter *m, double *joules) {
    rsmi_ctx *c = m->ctx;
    if (!m->has_counter) return HB_ERR_UNSUPPORTED;
    pthread_mutex_lock(&c->lock);
    double j = read_energy(c, c->read_dv);
    pthread_mutex_unlock(&c->lock);
    if (!isfinite(j)) return HB_ERR_BACKEND;
    *joules = j;
    return HB_OK;
}

static hb_status rsmi_power(hb_meter *m, double *watts) {
    rsmi_ctx *c = m->ctx;
    if (!m->has_power) return HB_ERR_UNSUPPORTED;
    pthread_mutex_lock(&c->lock);
    double w = read_power(c, c->read_dv, c->power_kind, NULL);
    pthread_mutex_unlock(&c->lock);
    if (!isfinite(w)) return HB_ERR_BACKEND;
    *watts = w;
    return HB_OK;
}

/* Current clock of a domain in MHz, NaN unknown. Caller holds the lock. */
static double read_clock(rsmi_ctx *c, int type) {
    rsmi_lib *l = &c->lib;
    if (!l->clk) return NAN;
    unsigned char buf[RSMI_FREQ_BUF];
    memset(buf, 0, sizeof buf);
    if (l->clk(c->dv, type, buf) != RSMI_STATUS_SUCCESS) return NAN;
    int v6 = l->ver.major >= 6;
    uint32_t num, cur;
    uint64_t hz;
    size_t off = v6 ? 4 : 0, freq = v6 ? 16 : 8, max = v6 ? 33 : 32;
    memcpy(&num, buf + off, sizeof num);
    memcpy(&cur, buf + off + 4, sizeof cur);
    if (num == 0 || num > max || cur >= num) return NAN;
    memcpy(&hz, buf + freq + 8 * cur, sizeof hz);
    return (double)hz * 1e-6;
}

static void rsmi_state(hb_meter *m, hb_meter_state *st) {
    rsmi_ctx *c = m->ctx;
    rsmi_lib *l = &c->lib;
    pthread_mutex_lock(&c->lock);
    if (m->has_power) {
        int cur = 0;
        double w = read_power(c, c->read_dv, c->power_kind, &cur);
        st->power_w = w;
        if (cur) st->power_instant_w = w;
        else st->power_avg_w = w;
    }
    uint64_t uw;
    if (l->power_cap && l->power_cap(c->read_dv, 0, &uw) == RSMI_STATUS_SUCCESS && uw > 0)
        st->power_limit_w = (double)uw * 1e-6;
    st->sm_clock_mhz = read_clock(c, RSMI_CLK_TYPE_SYS);
    st->mem_clock_mhz = read_clock(c, RSMI_CLK_TYPE_MEM);
    int64_t mc;
    if (l->temp && (l->temp(c->dv, RSMI_TEMP_TYPE_JUNCTION, RSMI_TEMP_CURRENT, &mc) == RSMI_STATUS_SUCCESS ||
                    l->temp(c->dv, RSMI_TEMP_TYPE_EDGE, RSMI_TEMP_CURRENT, &mc) == RSMI_STATUS_SUCCESS))
        st->temperature_c = (double)mc * 1e-3;
    pthread_mutex_unlock(&c->lock);
}

static void rsmi_destroy(hb_meter *m) {
    rsmi_ctx *c = m->ctx;
    if (c) {
        lib_close(&c->lib);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    free(m);
}

static const hb_meter_ops rsmi_ops = {
    .destroy = rsmi_destroy,
    .energy_j = rsmi_energy,
    .power_w = rsmi_power,
    .state = rsmi_state,
};

int hb_meter_rsmi_count(hb_err *err) {
    rsmi_lib l;
    hb_status s = lib_open(&l, err);
    if (s != HB_OK) return (int)s;
    uint32_t n = 0;
    rsmi_status_t rc = l.num_devices(&n);
    int r = rc == RSMI_STATUS_SUCCESS
                ? (int)n
                : (int)hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: rsmi_num_monitor_devices: %s",
                               rc_str(&l, rc));
    lib_close(&l);
    return r;
}

static void add_reason(hb_meter *m, const char *text) {
    size_t n = strlen(m->reason);
    snprintf(m->reason + n, sizeof m->reason - n, "%s%s", n ? "; " : "", text);
}

static void dev_name(rsmi_lib *l, uint32_t dv, char *buf, size_t len) {
    buf[0] = '\0';
    if (l->name && l->name(dv, buf, len) != RSMI_STATUS_SUCCESS) buf[0] = '\0';
    buf[len - 1] = '\0';
}

/* The first getter with a non-zero reading on dv (POW_NONE if none); *any_ok: some getter
 * worked (even with 0 W). */
static int pick_power(rsmi_ctx *c, uint32_t dv, int *any_ok) {
    static const int order[] = {POW_GENERIC, POW_SOCKET, POW_AVE};
    for (int i = 0; i < HB_ARRAY_LEN(order); i++) {
        double w = read_power(c, dv, order[i], NULL);
        if (isfinite(w)) *any_ok = 1;
        if (w > 0) return order[i];
    }
    return POW_NONE;
}

static const char *power_fn_name(int kind) {
    switch (kind) {
    case POW_GENERIC: return "rsmi_dev_power_get";
    case POW_SOCKET: return "rsmi_dev_current_socket_power_get";
    case POW_AVE: return "rsmi_dev_power_ave_get";
    default: return "";
    }
}

/* The counter against power x time over SANITY_S; 0 when it agrees, else why into buf. */
static int counter_disagrees(rsmi_ctx *c, char *buf, size_t len) {
    double e0 = read_energy(c, c->read_dv), p0 = read_power(c, c->read_dv, c->power_kind, NULL);
    double t0 = now_s();
    struct timespec d = {0, (long)(SANITY_S * 1e9)};
    while (nanosleep(&d, &d) != 0) {}
    double e1 = read_energy(c, c->read_dv), p1 = read_power(c, c->read_dv, c->power_kind, NULL);
    double dt = now_s() - t0, p = 0.5 * (p0 + p1), cw = (e1 - e0) / dt;
    if (!isfinite(e0) || !isfinite(e1)) {
        snprintf(buf, len, "energy counter read failed during the check at open");
        return 1;
    }
    if (e1 < e0) {
        snprintf(buf, len, "energy counter went backwards during the check at open");
        return 1;
    }
    if (!(p > 1.0)) return 0; /* no power to compare with */
    if (e1 == e0) {
        snprintf(buf, len, "energy counter stuck for %.2f s at open while power read %.1f W", dt, p);
        return 1;
    }
    double r = cw / p;
    if (r < SANITY_LO || r > SANITY_HI) {
        snprintf(buf, len,
                 "energy counter disagrees with power x time at open (%.1f W from the counter vs "
                 "%.1f W read over %.2f s)",
                 cw, p, dt);
        return 1;
    }
    return 0;
}

hb_status hb_meter_open_rsmi(const char *pci_bus_id, int index, hb_meter **out, hb_err *err) {
    *out = NULL;
    rsmi_ctx *c = calloc(1, sizeof *c);
    hb_meter *m = hb_meter_alloc("rocm-smi");
    if (!c || !m || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        free(m);
        return hb_errf(err, HB_ERR_NOMEM, "ROCm SMI: out of memory");
    }
    m->ops = &rsmi_ops;
    m->ctx = c;
    hb_status s = lib_open(&c->lib, err);
    if (s != HB_OK) {
        rsmi_destroy(m);
        return s;
    }
    rsmi_lib *l = &c->lib;
    uint32_t n = 0;
    rsmi_status_t rc = l->num_devices(&n);
    if (rc != RSMI_STATUS_SUCCESS) {
        s = hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: rsmi_num_monitor_devices: %s", rc_str(l, rc));
        rsmi_destroy(m);
        return s;
    }
    int found = 0;
    char pci[32] = "";
    for (uint32_t dv = 0; dv < n && !found; dv++) {
        uint64_t bdf;
        if (l->pci_id(dv, &bdf) != RSMI_STATUS_SUCCESS) continue;
        bdf_str(bdf, pci, sizeof pci);
        if (pci_bus_id && *pci_bus_id ? hb_pci_same(pci, pci_bus_id) : (int)dv == index) {
            c->dv = c->read_dv = dv;
            found = 1;
        }
    }
    if (!found) {
        if (pci_bus_id && *pci_bus_id)
            s = hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: no device with PCI bus id %s (%u devices seen)",
                        pci_bus_id, n);
        else
            s = hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: no device %d (%u devices seen)", index, n);
        rsmi_destroy(m);
        return s;
    }
    hb_meter_info *in = &m->info;
    char name[96];
    dev_name(l, c->dv, name, sizeof name);

    /* power: by generation; the MI250 odd-die rule */
    int any_ok = 0;
    c->power_kind = pick_power(c, c->dv, &any_ok);
    char note[200] = "";
    if (c->power_kind == POW_NONE && c->dv % 2 == 1) {
        char pname[96];
        int partner_ok = 0;
        dev_name(l, c->dv - 1, pname, sizeof pname);
        int kind = strcmp(pname, name) == 0 ? pick_power(c, c->dv - 1, &partner_ok) : POW_NONE;
        if (kind != POW_NONE) {
            uint64_t bdf = 0;
            char ppci[32] = "";
            if (l->pci_id(c->dv - 1, &bdf) == RSMI_STATUS_SUCCESS) bdf_str(bdf, ppci, sizeof ppci);
            c->power_kind = kind;
            c->read_dv = c->dv - 1;
            snprintf(note, sizeof note,
                     "this die reads 0 W (MI250 odd die): power and energy are read on its partner "
                     "die %u (%s) and cover the whole package, both GCDs",
                     c->dv - 1, ppci);
            add_reason(m, note);
        }
    }
    if (c->power_kind != POW_NONE) {
        int cur = 0;
        read_power(c, c->read_dv, c->power_kind, &cur);
        m->has_power = 1;
        in->power_window_s = cur ? 0.0 : NAN;
        snprintf(in->power_fn, sizeof in->power_fn, "%s (uW, %s)", power_fn_name(c->power_kind),
                 cur ? "current socket power" : "average");
    } else {
        add_reason(m, any_ok ? "power reads 0 W and no partner die reads more: power left out"
                             : "no power getter works on this device");
    }

    /* counter, checked against power x time */
    double e = read_energy(c, c->read_dv);
    if (e == 0) { /* an accumulator since boot is never 0: not implemented on this device */
        add_reason(m, "no energy counter: rsmi_dev_energy_count_get reads 0");
    } else if (isfinite(e)) {
        m->has_counter = 1;
        char why[200];
        if (m->has_power && counter_disagrees(c, why, sizeof why)) {
            m->has_counter = 0;
            char r[256];
            snprintf(r, sizeof r, "%s: counter disabled, energy is the power integral", why);
            add_reason(m, r);
        }
    } else {
        add_reason(m, l->energy ? "no energy counter: rsmi_dev_energy_count_get failed"
                                : "no energy counter: rsmi_dev_energy_count_get missing");
    }
    if (m->has_counter) {
        uint64_t count, ts;
        float res = 0;
        l->energy(c->read_dv, &count, &res, &ts);
        in->counter_resolution_j = (double)res * 1e-6;
        m->counter_period_s = 0.01; /* conservative: the accumulator updates about every ms */
        snprintf(in->energy_fn, sizeof in->energy_fn,
                 "rsmi_dev_energy_count_get (count x %.4g uJ)", (double)res);
    }
    if (!m->has_counter && !m->has_power) {
        s = hb_errf(err, HB_ERR_UNSUPPORTED, "ROCm SMI: device %u (%s): %s", c->dv, pci, m->reason);
        rsmi_destroy(m);
        return s;
    }

    /* provenance */
    snprintf(in->api, sizeof in->api, "ROCm SMI");
    snprintf(in->library, sizeof in->library, "%s", l->path);
    if (l->version)
        snprintf(in->version, sizeof in->version, "%u.%u.%u", l->ver.major, l->ver.minor, l->ver.patch);
    char drv[64] = "";
    if (l->version_str && l->version_str(RSMI_SW_COMP_DRIVER, drv, sizeof drv) == RSMI_STATUS_SUCCESS) {
        drv[sizeof drv - 1] = '\0';
        snprintf(in->driver, sizeof in->driver, "%s", drv);
    }
    snprintf(in->device, sizeof in->device, "%s", name);
    snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%s", pci);
    if (c->read_dv != c->dv)
        snprintf(in->scope, sizeof in->scope, "GPU package: both GCDs (read on partner die %u)", c->read_dv);
    else
        snprintf(in->scope, sizeof in->scope, "GPU socket (package)");
    uint64_t cap;
    if (l->power_cap && l->power_cap(c->read_dv, 0, &cap) == RSMI_STATUS_SUCCESS && cap > 0)
        in->power_limit_w = (double)cap * 1e-6;
    *out = m;
    return HB_OK;
}
