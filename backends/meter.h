/* meter.h - energy/power meter interface (one per device).
 *
 * A meter may have an energy counter (joules since some origin), instantaneous/average power,
 * or neither. Capabilities it lacks are reported with a reason, never as zero: the `none`
 * meter returns HB_ERR_UNSUPPORTED for every reading and the record stores NaN plus the
 * HB_ENERGY_NO_METER flag. Vendor meters (NVML, ROCm SMI, RAPL) fill the same table. */
#ifndef HB_METER_H
#define HB_METER_H

#include <stdint.h>

#include "../harness/status.h"

typedef struct hb_meter hb_meter;

/* Reasons an energy figure is not valid (bit flags, stored in HDF5 as energy_flags). */
enum {
    HB_ENERGY_NO_METER = 1u << 0,        /* no meter for this device */
    HB_ENERGY_SHORT_WINDOW = 1u << 1,    /* window < 10 x the counter's update period */
    HB_ENERGY_SAMPLE_GAP = 1u << 2,      /* power samples more than 3 periods apart */
    HB_ENERGY_COUNTER_STUCK = 1u << 3,   /* counter did not advance */
    HB_ENERGY_COUNTER_BACKWARDS = 1u << 4,
    HB_ENERGY_RATIO_BOUNDS = 1u << 5,    /* counter / integral outside bounds */
};

typedef struct hb_meter_ops {
    void (*destroy)(hb_meter *m);
    /* Joules since an arbitrary origin; HB_ERR_UNSUPPORTED without a counter. */
    hb_status (*energy_j)(hb_meter *m, double *joules);
    /* Watts now (or the device's short average); HB_ERR_UNSUPPORTED without power readings. */
    hb_status (*power_w)(hb_meter *m, double *watts);
} hb_meter_ops;

struct hb_meter {
    const hb_meter_ops *ops;
    void *ctx;
    char name[32];              /* "none", "nvml", "rocm-smi", "rapl" */
    char reason[256];           /* why a capability is missing */
    double counter_period_s;    /* counter update period (0 if unknown or no counter) */
};

/* The meter of a device with nothing to read. */
hb_status hb_meter_open_none(hb_meter **out, const char *reason);
void hb_meter_close(hb_meter *m); /* NULL is a no-op */

#endif
