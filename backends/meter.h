/* meter.h - energy/power meter interface (one per device, plus the host's RAPL meter).
 *
 * A meter may have an energy counter (joules since some origin), power readings, or neither.
 * Capabilities it lacks are reported with a reason, never as zero: the `none` meter returns
 * HB_ERR_UNSUPPORTED for every reading and the record stores NaN plus HB_ENERGY_NO_METER.
 *
 * Vendors, one file each, all loaded at run time (no SDK at build time):
 *   backends/cuda/meter_nvml.c  NVML (dlopen libnvidia-ml.so.1, HETBENCH_NVML_LIBRARY)
 *   backends/hip/meter_rsmi.c   ROCm SMI (dlopen librocm_smi64, HETBENCH_RSMI_LIBRARY)
 *   backends/cpu/meter_rapl.c   RAPL through powercap sysfs (HETBENCH_POWERCAP_ROOT)
 * Their open functions return HB_OK with a meter (whose `reason` names any capability that is
 * missing), or an error status with the reason in err when nothing can be measured; the caller
 * (harness/energy.c) then opens the none meter with that reason. They never exit and never
 * print; a vendor library is initialised once per meter, never per reading.
 *
 * Thread safety: while a window is measured the sampler thread calls energy_j/power_w and the
 * measuring thread calls energy_j/state on the same meter. Every implementation is safe for
 * that (the RAPL meter locks its wraparound state, the ROCm SMI meter its library calls). */
#ifndef HB_METER_H
#define HB_METER_H

#include <stdint.h>

#include "../harness/status.h"

typedef struct hb_meter hb_meter;

/* Reasons an energy figure is not valid (bit flags, stored in HDF5 as energy_flags). */
enum {
    HB_ENERGY_NO_METER = 1u << 0,        /* no meter for this device */
    HB_ENERGY_SHORT_WINDOW = 1u << 1,    /* window < 10 x the update period of the figure used */
    HB_ENERGY_SAMPLE_GAP = 1u << 2,      /* power samples more than 3 periods apart */
    HB_ENERGY_COUNTER_STUCK = 1u << 3,   /* counter did not advance */
    HB_ENERGY_COUNTER_BACKWARDS = 1u << 4,
    HB_ENERGY_RATIO_BOUNDS = 1u << 5,    /* counter / integral outside bounds */
    HB_ENERGY_READ_FAILED = 1u << 6,     /* the counter could not be read at a window edge */
};
#define HB_ENERGY_N_FLAGS 7
/* Short name of flag bit i ("no_meter", ...), NULL past the last one. */
const char *hb_energy_flag_name(int bit);

/* Where a meter's figures come from (stored per device in /devices as meter_*). */
typedef struct hb_meter_info {
    char api[32];               /* "NVML", "ROCm SMI", "powercap/RAPL"; "" for none */
    char library[192];          /* library file loaded, or the powercap root */
    char version[64];           /* library version (NVML, ROCm SMI), kernel release (powercap) */
    char driver[64];            /* driver version where the library tells */
    char device[128];           /* what is measured: GPU name, RAPL domain names */
    char pci_bus_id[32];        /* the GPU's PCI bus id, "" for RAPL */
    char energy_fn[96];         /* function/file of the counter; "" without one */
    char power_fn[96];          /* function of power readings; "" without */
    char scope[128];            /* what the figures cover: "GPU board", "CPU package 0 + DRAM 0" */
    double counter_resolution_j; /* smallest counter step, J; NaN unknown or no counter */
    double power_window_s;      /* averaging window of power readings: 0 instantaneous, NaN unknown */
    double power_limit_w;       /* enforced power limit at open, W; NaN unknown */
} hb_meter_info;

/* Readings besides energy (at window start and end). NaN where the meter has no reading. */
typedef struct hb_meter_state {
    double power_w;             /* what power_w() returns now */
    double power_instant_w;     /* instantaneous power, where the device reports it */
    double power_avg_w;         /* the device's averaged power, where it reports it */
    double power_limit_w;       /* enforced power limit */
    double sm_clock_mhz;        /* GPU SM / shader clock */
    double mem_clock_mhz;       /* GPU memory clock */
    double temperature_c;       /* GPU temperature (hotspot/junction where available) */
} hb_meter_state;

typedef struct hb_meter_ops {
    void (*destroy)(hb_meter *m);
    /* Joules since an arbitrary origin (wraparound already corrected); HB_ERR_UNSUPPORTED
     * without a counter, another error when a reading fails. */
    hb_status (*energy_j)(hb_meter *m, double *joules);
    /* Watts (instantaneous, or the device's short average: see info.power_window_s);
     * HB_ERR_UNSUPPORTED without power readings. */
    hb_status (*power_w)(hb_meter *m, double *watts);
    /* Optional (may be NULL): fills what it can of *st, which the wrapper set to NaN. */
    void (*state)(hb_meter *m, hb_meter_state *st);
} hb_meter_ops;

struct hb_meter {
    const hb_meter_ops *ops;
    void *ctx;
    char name[32];              /* "none", "nvml", "rocm-smi", "rapl" */
    char reason[256];           /* why a capability is missing; "" when nothing is */
    double counter_period_s;    /* counter update period (0 if unknown or no counter) */
    int has_counter;            /* energy_j works */
    int has_power;              /* power_w works */
    /* power_w is (counter delta) / (time) since the previous call (RAPL): the sampler derives
     * power from its own counter samples instead, stamped at the middle of each interval. */
    int power_from_counter;
    hb_meter_info info;
};

/* The meter of a device with nothing to read. */
hb_status hb_meter_open_none(hb_meter **out, const char *reason);
void hb_meter_close(hb_meter *m); /* NULL is a no-op */

/* Checked wrappers: a NULL meter is HB_ERR_UNSUPPORTED; state() sets NaN first. */
hb_status hb_meter_energy_j(hb_meter *m, double *joules);
hb_status hb_meter_power_w(hb_meter *m, double *watts);
void hb_meter_read_state(hb_meter *m, hb_meter_state *st);
void hb_meter_state_nan(hb_meter_state *st);
/* A fresh meter struct with NaN info figures (for implementations). */
hb_meter *hb_meter_alloc(const char *name);

/* PCI bus id "[dddd:]bb:dd.f" (hex; NVML's 8-digit domain too) -> numbers; 0 on success. */
int hb_pci_parse(const char *s, unsigned *domain, unsigned *bus, unsigned *dev, unsigned *fn);
/* 1 when two PCI bus ids name the same function (format differences ignored). */
int hb_pci_same(const char *a, const char *b);

/* ---- vendor meters ----
 * pci_bus_id selects the device (NULL: `index`, in the library's own order). */
hb_status hb_meter_open_nvml(const char *pci_bus_id, int index, hb_meter **out, hb_err *err);
int hb_meter_nvml_count(hb_err *err);  /* devices NVML sees, or a negative status + reason */
hb_status hb_meter_open_rsmi(const char *pci_bus_id, int index, hb_meter **out, hb_err *err);
int hb_meter_rsmi_count(hb_err *err);
/* RAPL: domain -1 is the package and DRAM domains of every socket summed (a CPU device, or the
 * host of a GPU rank); domain >= 0 one domain in hb_meter_rapl_count's order. */
hb_status hb_meter_open_rapl(int domain, hb_meter **out, hb_err *err);
int hb_meter_rapl_count(hb_err *err);

#endif
