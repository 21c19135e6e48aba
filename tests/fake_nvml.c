/* fake_nvml.c - a scripted libnvidia-ml.so.1 for the meter tests (built as
 * build/tests/libnvidia-ml.so.1; with -DFAKE_NVML_NO_ENERGY as libfake-nvml-noenergy.so, which
 * lacks nvmlDeviceGetTotalEnergyConsumption, for the missing-symbol case).
 *
 * Environment, read at the first nvmlInit_v2 (lists are per device, comma-separated):
 *   HB_FAKE_NVML_DEVICES   PCI bus ids           [00000000:17:00.0]
 *   HB_FAKE_NVML_POWER     W or W+S (S W/s ramp) [300]
 *   HB_FAKE_NVML_MODE      ok | stuck | backwards | skew (counter x1.5) | noenergy | nopower
 *                          (no power at all) | noinstant (no instant field) | slow (power reads
 *                          take HB_FAKE_NVML_SLOW_MS [250] ms)                 [ok]
 *   HB_FAKE_NVML_CC        CUDA compute capability major                        [9]
 *   HB_FAKE_NVML_INIT_RC   what nvmlInit_v2 returns                             [0]
 *   HB_FAKE_NVML_FAIL_AFTER  energy reads fail after this many successful ones [never]
 * Power is P(t) = W + S t and the counter its exact integral in mJ, t measured on
 * CLOCK_MONOTONIC from the first initialisation (hb_fake_nvml_time0() tells when). Test code:
 * file-scope state is fine here. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct fake_dev *nvmlDevice_t;

typedef union {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

struct fake_dev {
    unsigned dom, bus, dev, fn;
    char busid[32];
    double p0, slope;
    char mode[32];
};

#define MAX_DEV 8
static struct fake_dev devs[MAX_DEV];
static int n_devs, refs;
static double time0 = -1;
static int cc_major = 9, slow_ms = 250;
static long fail_after = -1;
static atomic_long energy_reads;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double hb_fake_nvml_time0(void) { return time0; }

/* The i-th comma-separated item of env var `name` (or def), into buf. */
static void item(const char *name, int i, const char *def, char *buf, size_t len) {
    const char *s = getenv(name);
    snprintf(buf, len, "%s", def);
    if (!s || !*s) return;
    for (int k = 0; k < i; k++) {
        s = strchr(s, ',');
        if (!s) return; /* fewer items: the default */
        s++;
    }
    size_t n = strcspn(s, ",");
    if (n >= len) n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

static int has_mode(const struct fake_dev *d, const char *m) {
    return strstr(d->mode, m) != NULL;
}

static void load(void) {
    const char *ids = getenv("HB_FAKE_NVML_DEVICES");
    if (!ids || !*ids) ids = "00000000:17:00.0";
    n_devs = 0;
    for (const char *p = ids; *p && n_devs < MAX_DEV;) {
        struct fake_dev *d = &devs[n_devs];
        memset(d, 0, sizeof *d);
        size_t n = strcspn(p, ",");
        snprintf(d->busid, sizeof d->busid, "%.*s", (int)n, p);
        sscanf(d->busid, "%x:%x:%x.%x", &d->dom, &d->bus, &d->dev, &d->fn);
        char buf[64];
        item("HB_FAKE_NVML_POWER", n_devs, "300", buf, sizeof buf);
        d->p0 = atof(buf);
        char *plus = strchr(buf, '+');
        d->slope = plus ? atof(plus + 1) : 0;
        item("HB_FAKE_NVML_MODE", n_devs, "ok", d->mode, sizeof d->mode);
        n_devs++;
        p += n;
        if (*p == ',') p++;
    }
    const char *cc = getenv("HB_FAKE_NVML_CC");
    cc_major = cc && *cc ? atoi(cc) : 9;
    const char *sl = getenv("HB_FAKE_NVML_SLOW_MS");
    slow_ms = sl && *sl ? atoi(sl) : 250;
    const char *fa = getenv("HB_FAKE_NVML_FAIL_AFTER");
    fail_after = fa && *fa ? atol(fa) : -1;
    atomic_store(&energy_reads, 0);
    time0 = mono();
}

static double power_w(const struct fake_dev *d) { return d->p0 + d->slope * (mono() - time0); }

#ifndef FAKE_NVML_NO_ENERGY
static double energy_j(const struct fake_dev *d) {
    double t = mono() - time0;
    return d->p0 * t + 0.5 * d->slope * t * t;
}
#endif

nvmlReturn_t nvmlInit_v2(void) {
    const char *rc = getenv("HB_FAKE_NVML_INIT_RC");
    if (rc && atoi(rc)) return atoi(rc);
    if (refs++ == 0) load();
    return 0;
}

nvmlReturn_t nvmlShutdown(void) {
    if (refs > 0) refs--;
    return 0;
}

const char *nvmlErrorString(nvmlReturn_t rc) {
    switch (rc) {
    case 0: return "Success";
    case 3: return "Not Supported";
    case 6: return "Not Found";
    case 9: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *buf, unsigned len) {
    snprintf(buf, len, "550.90.07");
    return 0;
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *buf, unsigned len) {
    snprintf(buf, len, "12.550.90.07");
    return 0;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *n) {
    *n = (unsigned)n_devs;
    return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d) {
    if (i >= (unsigned)n_devs) return 2;
    *d = &devs[i];
    return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *id, nvmlDevice_t *d) {
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (sscanf(id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) return 2;
    for (int i = 0; i < n_devs; i++)
        if (devs[i].dom == dom && devs[i].bus == bus && devs[i].dev == dev && devs[i].fn == fn) {
            *d = &devs[i];
            return 0;
        }
    return 6;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->busId, sizeof p->busId, "%s", d->busid);
    snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%04x:%02x:%02x.%x", d->dom, d->bus, d->dev, d->fn);
    p->domain = d->dom;
    p->bus = d->bus;
    p->device = d->dev;
    p->pciDeviceId = 0x233010de;
    return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned len) {
    snprintf(buf, len, "NVIDIA H100 80GB HBM3 (fake %d)", (int)(d - devs));
    return 0;
}

#ifndef FAKE_NVML_NO_ENERGY
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
    if (has_mode(d, "noenergy")) return 3;
    long k = atomic_fetch_add(&energy_reads, 1);
    if (fail_after >= 0 && k >= fail_after) return 999;
    double j = energy_j(d);
    if (has_mode(d, "stuck")) j = 1234.5;
    if (has_mode(d, "backwards")) j = 1e6 - j;
    if (has_mode(d, "skew")) j *= 1.5;
    *mj = (unsigned long long)(j * 1e3);
    return 0;
}
#endif

static void slow(const struct fake_dev *d) {
    if (!has_mode(d, "slow")) return;
    struct timespec ts = {slow_ms / 1000, (long)(slow_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw) {
    if (has_mode(d, "nopower")) return 3;
    slow(d);
    *mw = (unsigned)(power_w(d) * 1e3 + 0.5);
    return 0;
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int n, nvmlFieldValue_t *v) {
    for (int i = 0; i < n; i++) {
        v[i].nvmlReturn = 3;
        if (has_mode(d, "nopower") || has_mode(d, "noinstant")) continue;
        if (v[i].fieldId == 186 || v[i].fieldId == 185) {
            slow(d);
            v[i].valueType = 1;
            v[i].value.uiVal = (unsigned)(power_w(d) * 1e3 + 0.5);
            v[i].nvmlReturn = 0;
        }
    }
    return 0;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned *mw) {
    (void)d;
    *mw = 700000;
    return 0;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned *mhz) {
    (void)d;
    if (type == 1) *mhz = 1980;
    else if (type == 2) *mhz = 2619;
    else return 3;
    return 0;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *c) {
    (void)d;
    if (sensor != 0) return 3;
    *c = 45;
    return 0;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor) {
    (void)d;
    *major = cc_major;
    *minor = 0;
    return 0;
}
