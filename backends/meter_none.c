/* meter_none.c - the meter of a device with no energy or power readings. */
#include "meter.h"

#include <stdio.h>
#include <stdlib.h>

static void none_destroy(hb_meter *m) { free(m); }
static hb_status none_energy(hb_meter *m, double *j) { (void)m; (void)j; return HB_ERR_UNSUPPORTED; }
static hb_status none_power(hb_meter *m, double *w) { (void)m; (void)w; return HB_ERR_UNSUPPORTED; }

static const hb_meter_ops none_ops = {
    .destroy = none_destroy,
    .energy_j = none_energy,
    .power_w = none_power,
};

hb_status hb_meter_open_none(hb_meter **out, const char *reason) {
    hb_meter *m = calloc(1, sizeof *m);
    if (!m) return HB_ERR_NOMEM;
    m->ops = &none_ops;
    snprintf(m->name, sizeof m->name, "none");
    snprintf(m->reason, sizeof m->reason, "%s", reason ? reason : "no meter");
    *out = m;
    return HB_OK;
}

void hb_meter_close(hb_meter *m) {
    if (m) m->ops->destroy(m);
}
