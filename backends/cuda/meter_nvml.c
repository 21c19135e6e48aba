/* meter_nvml.c - NVIDIA GPU energy and power through NVML, loaded with dlopen.
 *
 * There is no nvml.h at build time: the few types and functions used are declared below, with
 * the ABI of the public header (NVML 11+). The library is $HETBENCH_NVML_LIBRARY or
 * libnvidia-ml.so.1. Every meter dlopens it and calls nvmlInit_v2 once (NVML counts
 * initialisations) and nvmlShutdown once when closed; readings never re-initialise.
 *
 * Figures:
 * - counter: nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver was loaded
 *   (Volta and newer), updated every ~20-100 ms; no wraparound in practice (64-bit mJ).
 * - power: the field value NVML_FI_DEV_POWER_INSTANT where the driver has it (instantaneous),
 *   else nvmlDeviceGetPowerUsage (mW), which on Ampere and newer is a 1-second average.
 * - state: enforced power limit, SM and memory clocks, GPU temperature.
 * The device is found by PCI bus id (nvmlDeviceGetHandleByPciBusId_v2, then by comparing each
 * device's nvmlDeviceGetPciInfo_v3 numbers, which tolerates format differences). A missing
 * symbol turns its capability off with a reason; nothing here exits or prints. NVML itself is
 * thread-safe, and this meter keeps no mutable state after open. */
#include "../meter.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the NVML ABI used (values and layouts of nvml.h) ---- */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_TEMPERATURE_GPU 0
#define NVML_FI_DEV_POWER_AVERAGE 185 /* 1 s average, Ampere (except GA100) and newer */
#define NVML_FI_DEV_POWER_INSTANT 186

typedef union nvml_value {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    unsigned short usVal;
} nvml_value;
enum { NVML_VT_DOUBLE, NVML_VT_UINT, NVML_VT_ULONG, NVML_VT_ULL, NVML_VT_SLL, NVML_VT_SINT, NVML_VT_USHORT };

typedef struct nvml_field_value {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvml_value value;
} nvml_field_value;

typedef struct nvml_pci_info { /* nvmlPciInfo_t (v3 layout) */
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
    char pad[64];              /* room should a later layout grow */
} nvml_pci_info;

typedef struct nvml_lib {
    void *dl;
    char path[192];
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    const char *(*error_string)(nvmlReturn_t);
    nvmlReturn_t (*count)(unsigned *);
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *);
    nvmlReturn_t (*by_pci)(const char *, nvmlDevice_t *);
    nvmlReturn_t (*pci_info)(nvmlDevice_t, nvml_pci_info *);
    nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned);
    nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*power)(nvmlDevice_t, unsigned *);
    nvmlReturn_t (*fields)(nvmlDevice_t, int, nvml_field_value *);
    nvmlReturn_t (*limit)(nvmlDevice_t, unsigned *);
    nvmlReturn_t (*clock)(nvmlDevice_t, int, unsigned *);
    nvmlReturn_t (*temp)(nvmlDevice_t, int, unsigned *);
    nvmlReturn_t (*driver)(char *, unsigned);
    nvmlReturn_t (*version)(char *, unsigned);
    nvmlReturn_t (*cc)(nvmlDevice_t, int *, int *);
} nvml_lib;

typedef struct nvml_ctx {
    nvml_lib lib;
    nvmlDevice_t dev;
    int power_field;           /* 0: nvmlDeviceGetPowerUsage, else the field id read */
} nvml_ctx;

static const char *rc_str(const nvml_lib *l, nvmlReturn_t rc) {
    const char *s = l->error_string ? l->error_string(rc) : NULL;
    return s ? s : "unknown NVML error";
}

/* dlopen + symbols + nvmlInit_v2. On failure nothing stays loaded. */
static hb_status lib_open(nvml_lib *l, hb_err *err) {
    memset(l, 0, sizeof *l);
    const char *env = getenv("HETBENCH_NVML_LIBRARY");
    snprintf(l->path, sizeof l->path, "%s", env && *env ? env : "libnvidia-ml.so.1");
    l->dl = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        const char *e = dlerror();
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "NVML: cannot load %s: %s (no NVIDIA driver here, or set "
                       "HETBENCH_NVML_LIBRARY to the library's path)",
                       l->path, e ? e : "dlopen failed");
    }
#define SYM(field, name)                          \
    do {                                          \
        void *sym_ = dlsym(l->dl, name);          \
        memcpy(&l->field, &sym_, sizeof sym_);    \
    } while (0)
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(error_string, "nvmlErrorString");
    SYM(count, "nvmlDeviceGetCount_v2");
    SYM(by_index, "nvmlDeviceGetHandleByIndex_v2");
    SYM(by_pci, "nvmlDeviceGetHandleByPciBusId_v2");
    SYM(pci_info, "nvmlDeviceGetPciInfo_v3");
    SYM(name, "nvmlDeviceGetName");
    SYM(energy, "nvmlDeviceGetTotalEnergyConsumption");
    SYM(power, "nvmlDeviceGetPowerUsage");
    SYM(fields, "nvmlDeviceGetFieldValues");
    SYM(limit, "nvmlDeviceGetEnforcedPowerLimit");
    SYM(clock, "nvmlDeviceGetClockInfo");
    SYM(temp, "nvmlDeviceGetTemperature");
    SYM(driver, "nvmlSystemGetDriverVersion");
    SYM(version, "nvmlSystemGetNVMLVersion");
    SYM(cc, "nvmlDeviceGetCudaComputeCapability");
#undef SYM
    const char *missing = !l->init ? "nvmlInit_v2" : !l->shutdown ? "nvmlShutdown" : NULL;
    if (missing) {
        dlclose(l->dl);
        l->dl = NULL;
        return hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: %s lacks %s (not an NVML library?)",
                       l->path, missing);
    }
    nvmlReturn_t rc = l->init();
    if (rc != NVML_SUCCESS) {
        hb_status s = hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: nvmlInit_v2 failed: %s (%d)",
                              rc_str(l, rc), rc);
        dlclose(l->dl);
        l->dl = NULL;
        return s;
    }
    return HB_OK;
}

static void lib_close(nvml_lib *l) {
    if (!l->dl) return;
    l->shutdown();
    dlclose(l->dl);
    l->dl = NULL;
}

/* The handle of the device with this PCI bus id. */
static hb_status find_by_pci(nvml_lib *l, const char *pci, nvmlDevice_t *dev, hb_err *err) {
    if (l->by_pci && l->by_pci(pci, dev) == NVML_SUCCESS) return HB_OK;
    unsigned n = 0;
    if (l->count && l->by_index && l->pci_info && l->count(&n) == NVML_SUCCESS) {
        for (unsigned i = 0; i < n; i++) {
            nvml_pci_info p;
            nvmlDevice_t d;
            memset(&p, 0, sizeof p);
            if (l->by_index(i, &d) != NVML_SUCCESS || l->pci_info(d, &p) != NVML_SUCCESS) continue;
            p.busId[sizeof p.busId - 1] = '\0';
            if (hb_pci_same(p.busId, pci)) {
                *dev = d;
                return HB_OK;
            }
        }
    }
    if (!l->by_pci && !(l->count && l->by_index && l->pci_info))
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "NVML: %s lacks nvmlDeviceGetHandleByPciBusId_v2 and the device list", l->path);
    return hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: no device with PCI bus id %s (%u devices seen)",
                   pci, n);
}

/* Power in W from a field value, or NaN. */
static double field_w(nvml_lib *l, nvmlDevice_t dev, unsigned field) {
    if (!l->fields) return NAN;
    nvml_field_value v;
    memset(&v, 0, sizeof v);
    v.fieldId = field;
    if (l->fields(dev, 1, &v) != NVML_SUCCESS || v.nvmlReturn != NVML_SUCCESS) return NAN;
    double mw;
    switch (v.valueType) {
    case NVML_VT_DOUBLE: mw = v.value.dVal; break;
    case NVML_VT_UINT: mw = v.value.uiVal; break;
    case NVML_VT_ULONG: mw = (double)v.value.ulVal; break;
    case NVML_VT_ULL: mw = (double)v.value.ullVal; break;
    case NVML_VT_SLL: mw = (double)v.value.sllVal; break;
    case NVML_VT_SINT: mw = v.value.siVal; break;
    case NVML_VT_USHORT: mw = v.value.usVal; break;
    default: return NAN;
    }
    return mw * 1e-3;
}

static double usage_w(nvml_lib *l, nvmlDevice_t dev) {
    unsigned mw;
    if (!l->power || l->power(dev, &mw) != NVML_SUCCESS) return NAN;
    return mw * 1e-3;
}

static hb_status nvml_energy(hb_meter *m, double *joules) {
    nvml_ctx *c = m->ctx;
    if (!m->has_counter) return HB_ERR_UNSUPPORTED;
    unsigned long long mj;
    if (c->lib.energy(c->dev, &mj) != NVML_SUCCESS) return HB_ERR_BACKEND;
    *joules = (double)mj * 1e-3;
    return HB_OK;
}

static hb_status nvml_power(hb_meter *m, double *watts) {
    nvml_ctx *c = m->ctx;
    if (!m->has_power) return HB_ERR_UNSUPPORTED;
    double w = c->power_field ? field_w(&c->lib, c->dev, (unsigned)c->power_field)
                              : usage_w(&c->lib, c->dev);
    if (!isfinite(w)) return HB_ERR_BACKEND;
    *watts = w;
    return HB_OK;
}

static void nvml_state(hb_meter *m, hb_meter_state *st) {
    nvml_ctx *c = m->ctx;
    nvml_lib *l = &c->lib;
    double w;
    if (m->has_power && nvml_power(m, &w) == HB_OK) st->power_w = w;
    st->power_instant_w = field_w(l, c->dev, NVML_FI_DEV_POWER_INSTANT);
    st->power_avg_w = field_w(l, c->dev, NVML_FI_DEV_POWER_AVERAGE);
    if (!isfinite(st->power_avg_w) && m->info.power_window_s > 0) st->power_avg_w = usage_w(l, c->dev);
    unsigned v;
    if (l->limit && l->limit(c->dev, &v) == NVML_SUCCESS) st->power_limit_w = v * 1e-3;
    if (l->clock && l->clock(c->dev, NVML_CLOCK_SM, &v) == NVML_SUCCESS) st->sm_clock_mhz = v;
    if (l->clock && l->clock(c->dev, NVML_CLOCK_MEM, &v) == NVML_SUCCESS) st->mem_clock_mhz = v;
    if (l->temp && l->temp(c->dev, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) st->temperature_c = v;
}

static void nvml_destroy(hb_meter *m) {
    nvml_ctx *c = m->ctx;
    if (c) {
        lib_close(&c->lib);
        free(c);
    }
    free(m);
}

static const hb_meter_ops nvml_ops = {
    .destroy = nvml_destroy,
    .energy_j = nvml_energy,
    .power_w = nvml_power,
    .state = nvml_state,
};

int hb_meter_nvml_count(hb_err *err) {
    nvml_lib l;
    hb_status s = lib_open(&l, err);
    if (s != HB_OK) return (int)s;
    unsigned n = 0;
    nvmlReturn_t rc = l.count ? l.count(&n) : NVML_ERROR_NOT_SUPPORTED;
    int r = rc == NVML_SUCCESS
                ? (int)n
                : (int)hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: nvmlDeviceGetCount_v2: %s",
                               l.count ? rc_str(&l, rc) : "symbol missing");
    lib_close(&l);
    return r;
}

/* Appends "; <text>" (or "<text>") to the meter's reason. */
static void add_reason(hb_meter *m, const char *text) {
    size_t n = strlen(m->reason);
    snprintf(m->reason + n, sizeof m->reason - n, "%s%s", n ? "; " : "", text);
}

hb_status hb_meter_open_nvml(const char *pci_bus_id, int index, hb_meter **out, hb_err *err) {
    *out = NULL;
    nvml_ctx *c = calloc(1, sizeof *c);
    hb_meter *m = hb_meter_alloc("nvml");
    if (!c || !m) {
        free(c);
        free(m);
        return hb_errf(err, HB_ERR_NOMEM, "NVML: out of memory");
    }
    hb_status s = lib_open(&c->lib, err);
    if (s != HB_OK) {
        free(c);
        free(m);
        return s;
    }
    nvml_lib *l = &c->lib;
    if (pci_bus_id && *pci_bus_id) {
        s = find_by_pci(l, pci_bus_id, &c->dev, err);
    } else {
        nvmlReturn_t rc = l->by_index ? l->by_index((unsigned)index, &c->dev) : NVML_ERROR_NOT_SUPPORTED;
        if (rc != NVML_SUCCESS)
            s = hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: device %d: %s", index,
                        l->by_index ? rc_str(l, rc) : "nvmlDeviceGetHandleByIndex_v2 missing");
    }
    if (s != HB_OK) {
        lib_close(l);
        free(c);
        free(m);
        return s;
    }
    m->ops = &nvml_ops;
    m->ctx = c;
    hb_meter_info *in = &m->info;

    /* counter */
    unsigned long long mj;
    nvmlReturn_t rc = l->energy ? l->energy(c->dev, &mj) : NVML_ERROR_NOT_SUPPORTED;
    if (l->energy && rc == NVML_SUCCESS) {
        m->has_counter = 1;
        m->counter_period_s = 0.1; /* updated every ~20-100 ms: the slow end */
        in->counter_resolution_j = 1e-3;
        snprintf(in->energy_fn, sizeof in->energy_fn,
                 "nvmlDeviceGetTotalEnergyConsumption (mJ since driver load)");
    } else {
        char why[160];
        snprintf(why, sizeof why, "no energy counter: nvmlDeviceGetTotalEnergyConsumption %s",
                 l->energy ? rc_str(l, rc) : "missing from the library");
        add_reason(m, why);
    }

    /* power: instantaneous field first, else the (averaged) usage */
    int major = 0, minor = 0;
    if (l->cc) l->cc(c->dev, &major, &minor);
    if (isfinite(field_w(l, c->dev, NVML_FI_DEV_POWER_INSTANT))) {
        m->has_power = 1;
        c->power_field = NVML_FI_DEV_POWER_INSTANT;
        in->power_window_s = 0;
        snprintf(in->power_fn, sizeof in->power_fn,
                 "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT) (mW, instantaneous)");
    } else if (isfinite(usage_w(l, c->dev))) {
        m->has_power = 1;
        in->power_window_s = major >= 8 ? 1.0 : major > 0 ? 0.0 : NAN;
        snprintf(in->power_fn, sizeof in->power_fn, "nvmlDeviceGetPowerUsage (mW, %s)",
                 major >= 8 ? "1 s average on Ampere and newer" : "current draw");
    } else {
        add_reason(m, "no power readings: nvmlDeviceGetPowerUsage and the instant power field "
                      "are not supported");
    }
    if (!m->has_counter && !m->has_power) {
        s = hb_errf(err, HB_ERR_UNSUPPORTED, "NVML: %s", m->reason);
        nvml_destroy(m);
        return s;
    }

    /* provenance */
    snprintf(in->api, sizeof in->api, "NVML");
    snprintf(in->library, sizeof in->library, "%s", l->path);
    char buf[96] = "";
    if (l->version && l->version(buf, sizeof buf) == NVML_SUCCESS)
        snprintf(in->version, sizeof in->version, "%s", buf);
    buf[0] = '\0';
    if (l->driver && l->driver(buf, sizeof buf) == NVML_SUCCESS)
        snprintf(in->driver, sizeof in->driver, "%s", buf);
    char name[96] = "";
    if (l->name) l->name(c->dev, name, sizeof name);
    name[sizeof name - 1] = '\0';
    snprintf(in->device, sizeof in->device, "%s", name);
    nvml_pci_info p;
    memset(&p, 0, sizeof p);
    if (l->pci_info && l->pci_info(c->dev, &p) == NVML_SUCCESS) {
        p.busId[sizeof p.busId - 1] = '\0';
        snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%s", p.busId);
    } else if (pci_bus_id) {
        snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%s", pci_bus_id);
    }
    snprintf(in->scope, sizeof in->scope, "GPU board (the whole card, memory included)");
    unsigned lim;
    if (l->limit && l->limit(c->dev, &lim) == NVML_SUCCESS) in->power_limit_w = lim * 1e-3;
    *out = m;
    return HB_OK;
}
