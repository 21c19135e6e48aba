/* energy.h - the energy half of the measurement protocol (DESIGN.md §6, steps 3-5):
 *
 *   pure computation  hb_energy_integrate, hb_energy_assess: trapezoid integral of power samples
 *                     over the exact window (edges interpolated), counter delta, ratio, every
 *                     validity flag; unit-tested on synthetic arrays (tests/test_energy.c).
 *   sampler           hb_sampler_*: one thread per meter reading power (and the counter) at a
 *                     fixed rate, CLOCK_MONOTONIC timestamps; state in its struct, no globals.
 *   idle baseline     hb_idle_baseline: seconds of idle power -> W, with how and flags.
 *   meters            hb_meter_open_for_device (cuda -> NVML, hip -> ROCm SMI, cpu -> RAPL,
 *                     else the none meter with the reason), hb_meter_open_host (RAPL of a GPU
 *                     rank's host).
 *   results           hb_energy_device_fill (/devices meter columns), hb_energy_summary_fill
 *                     (/summary energy columns from a record).
 *
 * Conventions: "not measured" is NaN, never 0; flags are HB_ENERGY_* (backends/meter.h). */
#ifndef HB_ENERGY_H
#define HB_ENERGY_H

#include <signal.h>
#include <stdint.h>

#include "../backends/backend.h"
#include "../backends/meter.h"
#include "../results/results.h"

/* Bounds of energy_counter_j / energy_integral_j outside which HB_ENERGY_RATIO_BOUNDS is set. */
#define HB_ENERGY_RATIO_LO 0.8
#define HB_ENERGY_RATIO_HI 1.25
/* A window shorter than this many update periods gets HB_ENERGY_SHORT_WINDOW. */
#define HB_ENERGY_SHORT_FACTOR 10.0
/* Power samples further apart than this many sampling periods: HB_ENERGY_SAMPLE_GAP. */
#define HB_ENERGY_GAP_FACTOR 3.0

/* ---- pure computation ---- */

typedef struct hb_integral {
    double energy_j;   /* trapezoid integral over [t0, t1]; NaN without a usable sample */
    double peak_w;     /* largest power in [t0, t1] (samples and interpolated edges); NaN */
    double max_gap_s;  /* longest stretch of [t0, t1] between consecutive usable samples,
                        * the edges included (a window with no sample: t1 - t0) */
    int64_t n_inside;  /* usable samples with t0 <= t <= t1 */
} hb_integral;

/* Integrates samples (t[i] s, w[i] W), t increasing, over [t0, t1]. NaN samples are skipped.
 * Inside, the trapezoid rule; at each edge the power is interpolated linearly between the
 * samples either side, or held at the nearest sample when the window runs past the samples. */
void hb_energy_integrate(const double *t, const double *w, int64_t n, double t0, double t1,
                         hb_integral *out);

/* What hb_energy_assess judges: one window of one meter. */
typedef struct hb_energy_window {
    double t0, t1;               /* window edges, CLOCK_MONOTONIC s */
    int has_counter;             /* the meter has a counter, read at t0 */
    int has_power;               /* the meter has power readings (RAPL: derived) */
    double e0_j, e1_j;           /* counter at t0 and t1 (NaN: read failed) */
    double counter_period_s;     /* the counter's update period (0 unknown) */
    double sample_period_s;      /* 1 / sampler rate; 0 when the sampler was off */
    double power_window_s;       /* averaging window of the power readings (NaN unknown) */
    int power_from_counter;      /* power samples were derived from the counter (RAPL) */
    const double *pt, *pw;       /* power samples */
    int64_t n_power;
    const double *ct, *cj;       /* counter samples taken by the sampler */
    int64_t n_counter;
} hb_energy_window;

typedef struct hb_energy_result {
    double counter_j;            /* e1 - e0 as read (kept when flagged) */
    double integral_j;
    double ratio;                /* counter_j / integral_j */
    double energy_j;             /* headline: counter if usable, else an independent integral */
    double avg_w, peak_w, max_gap_s;
    char source[16];             /* "counter" | "integral" | "none" */
    uint32_t flags;
    int valid;                   /* flags == 0 and energy_j is a number */
} hb_energy_result;

/* The rules (SCHEMA.md "Energy flags"):
 * - a meter with neither counter nor power: NO_METER, everything NaN;
 * - counter unreadable at t1: READ_FAILED; e1 < e0 or a decrease between counter samples:
 *   COUNTER_BACKWARDS; e1 == e0, or equal counter samples spanning more than
 *   max(10 counter periods, 3 sampling periods): COUNTER_STUCK;
 * - window < 10 x the update period of the figure used (the counter's; for an integral, the
 *   larger of the sampling period and the power averaging window): SHORT_WINDOW;
 * - a meter with power, and a stretch of the window between usable samples > 3 sampling
 *   periods (or no sample at all: sampler off and no counter): SAMPLE_GAP;
 * - counter / integral outside [HB_ENERGY_RATIO_LO, HB_ENERGY_RATIO_HI]: RATIO_BOUNDS.
 * The headline is the counter delta unless it is stuck, backwards or unread; then the integral
 * when the power does not come from that same counter; else NaN. */
void hb_energy_assess(const hb_energy_window *in, hb_energy_result *out);

/* ---- sampler ---- */

typedef struct hb_sampler hb_sampler;

typedef struct hb_samples {
    int64_t n_power;             /* usable power samples: (power_t[i] s, power_w[i] W) */
    const double *power_t, *power_w;
    int64_t n_counter;           /* counter samples: (counter_t[i] s, counter_j[i] J) */
    const double *counter_t, *counter_j;
    int64_t n_ticks;             /* readings taken */
    double cpu_s;                /* CPU time the sampler thread used (its cost), s */
} hb_samples;

/* Starts a thread reading `dev` at `hz` (power, and the counter when it has one; RAPL: the
 * counter only, power derived from consecutive samples and stamped at their midpoint) and
 * polling `host` (may be NULL) about once a second so that its wraparound is tracked. The
 * first reading is taken before this returns; stop takes a last one. HB_ERR_UNSUPPORTED when
 * dev has neither counter nor power; HB_ERR_INPUT for hz <= 0. */
hb_status hb_sampler_start(hb_meter *dev, hb_meter *host, double hz, hb_sampler **out,
                           hb_err *err);
/* Stops and joins the thread (idempotent), then builds the traces. */
void hb_sampler_stop(hb_sampler *s);
/* The traces; valid after hb_sampler_stop until hb_sampler_free. */
const hb_samples *hb_sampler_samples(const hb_sampler *s);
void hb_sampler_free(hb_sampler *s); /* stops first if needed; NULL is a no-op */

/* ---- idle baseline ---- */

/* Measures `seconds` of idle power of meter m (sampler at hz) into *out (rank not set):
 * idle_w = energy / time, from the counter where usable, else the power integral; method says
 * which ("none" without a meter, "skipped" for seconds <= 0) and flags why it is not valid.
 * Returns HB_ERR_INTERRUPTED if *stop becomes set (out holds NaN). */
hb_status hb_idle_baseline(hb_meter *m, double seconds, double hz, volatile sig_atomic_t *stop,
                           hb_idle_row *out, hb_err *err);

/* ---- meters of a device ---- */

/* cuda -> NVML by PCI bus id; hip -> ROCm SMI by PCI bus id; cpu -> RAPL package + DRAM of
 * every socket. Anything missing opens the none meter with the reason (meter->reason). Fails
 * only when out of memory. */
hb_status hb_meter_open_for_device(const hb_device_info *dev, hb_meter **out, hb_err *err);
/* Host energy of a GPU rank: RAPL package + DRAM of every socket, or the none meter with the
 * reason. For a CPU rank *out = NULL (its device meter already is the host's RAPL). */
hb_status hb_meter_open_host(const hb_device_info *dev, hb_meter **out, hb_err *err);

/* ---- results ---- */

/* /devices columns of the meters: meter, meter_*, power_limit_w (when the meter knows it),
 * host_meter* (host may be NULL). */
void hb_energy_device_fill(const hb_meter *m, const hb_meter *host, hb_device_row *d);

/* /summary energy columns of one record: energy_j (gross: counter where usable, else the
 * integral), avg_w, j_per_token_out/_total, tokens_per_j, energy_valid, energy_flags, and the
 * detail columns (counter, integral, ratio, peak, idle, energy above idle, host). Measured
 * columns are NaN for a record whose status is not "ok". */
void hb_energy_summary_fill(const hb_cost *cost, const hb_record *r, hb_summary_row *s);

#endif
