/* measure.h - the measurement protocol (DESIGN.md §6) for one case on one device:
 * warm-up; device sync; energy counter read; iterations timed with device events until both
 * min_iters and min_seconds are met (or max_iters, or a stop request); device sync; energy
 * counter read. */
#ifndef HB_MEASURE_H
#define HB_MEASURE_H

#include <signal.h>
#include <stdatomic.h>

#include "../backends/meter.h"
#include "../results/results.h"

/* Runs the timed window of an already set-up workload and fills rec: n_iters, iter_seconds
 * (owned by rec), window_s, fingerprint, status "ok", and the energy of the window
 * (harness/energy.h): a power sampler thread runs from before the window's first counter read
 * to after its last; the counter delta, the trapezoid integral of the samples over the exact
 * window, their ratio, the headline energy, avg/peak W, energy above idle, host energy, every
 * validity flag, the power trace (owned by rec) and the device state (power limit, clocks,
 * temperature) at window start and end. Everything not measured is NaN (meter NULL or none:
 * HB_ENERGY_NO_METER). mo->stop (may be NULL) is polled between iterations: when set, the
 * window ends after the current iteration and HB_ERR_INTERRUPTED is returned with the
 * iterations so far in rec. mo may be NULL (no sampler, no host meter). */
typedef struct hb_measure_opts {
    double power_hz;               /* power sampler rate (0: no sampler) */
    volatile sig_atomic_t *stop;   /* may be NULL */
    hb_meter *host;                /* host RAPL meter of a GPU rank; NULL: none */
    double idle_w;                 /* the device's idle baseline, W; <= 0 or NaN: unknown */
    _Atomic int64_t *iters;        /* may be NULL: timed iterations so far (the progress line) */
} hb_measure_opts;

hb_status hb_measure_case(hb_backend *be, hb_meter *meter, hb_workload *w, const hb_case *c,
                          const hb_measure_opts *mo, hb_record *rec, hb_err *err);

/* Monotonic clock in seconds. */
double hb_now_s(void);

#endif
