/* dryrun.c - the dry run and the per-case duration estimate (dryrun.h). */
#include "dryrun.h"

#include <math.h>
#include <string.h>

#include "../backends/dtype.h"

#define SETUP_S 0.2        /* allowance per window for setting a case up ... */
#define SETUP_BPS 1e9      /* ... plus filling its memory (weights, caches) at about 1 GB/s */
#define CEILINGS_S 4.0     /* the CPU gemm/stream ceilings (worker.c): 1.5 GiB of stream arrays filled and
                            * a few short windows; a rough figure, the ceilings are what is unknown */

static double peak_flops(const hb_device_row *d, hb_dtype t) {
    double tf = t == HB_F32 ? d->peak_tflops_f32 : t == HB_BF16 ? d->peak_tflops_bf16 : t == HB_F16 ? d->peak_tflops_f16
              : hb_dtype_is_fp8(t) ? d->peak_tflops_fp8 : NAN;
    return tf > 0 ? tf * 1e12 : NAN;
}

double hb_case_estimate_s(const hb_case *c, const hb_device_row *dev, int *lower_bound) {
    double pf = peak_flops(dev, c->dtype), pb = dev->peak_gbps > 0 ? dev->peak_gbps * 1e9 : NAN;
    double t = NAN;
    if (c->cost.flops > 0 && isfinite(pf)) t = c->cost.flops / pf;
    if (c->cost.bytes > 0 && isfinite(pb)) t = isfinite(t) ? fmax(t, c->cost.bytes / pb) : c->cost.bytes / pb;
    const double windows = c->repeat > 1 ? (double)c->repeat : 1;
    const double setup = SETUP_S + (double)c->cost.mem_bytes / SETUP_BPS;
    if (!(t > 0)) {
        *lower_bound = 1;
        return windows * (c->min_seconds + setup);
    }
    double timed = fmax((double)c->min_iters * t, c->min_seconds);
    if (c->max_iters > 0) timed = fmin(timed, fmax((double)c->max_iters * t, (double)c->min_iters * t));
    return windows * (setup + (double)c->warmup_iters * t + timed);
}

static const char *bytes_text(char *b, size_t n, double v) {
    if (v >= 1024.0 * 1024 * 1024) snprintf(b, n, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    else if (v >= 1024.0 * 1024) snprintf(b, n, "%.1f MiB", v / (1024.0 * 1024));
    else snprintf(b, n, "%.0f KiB", v / 1024);
    return b;
}

static const char *secs_text(char *b, size_t n, double s) {
    if (s >= 3600) snprintf(b, n, "%.0fh%02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
    else if (s >= 60) snprintf(b, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(b, n, "%.1f s", s);
    return b;
}

hb_status hb_run_dry(hb_backend *be, const hb_device_row *dev, const hb_plan *plan, int ranks, int serial,
                     double idle_seconds, int calibrate, FILE *out, hb_err *err) {
    /* idle_seconds: 0 when the device has no meter (no baseline is measured then) */
    (void)err;
    int64_t free_b = 0, total_b = 0;
    HB_TRY(be->ops->mem_info(be, &free_b, &total_b));
    char a[32], b[32], t[32];
    fprintf(out, "# dry run: %d case%s on %d rank%s (%s schedule); rank 0: %s (%s), %s free of %s\n", plan->n_cases,
            plan->n_cases == 1 ? "" : "s", ranks, ranks == 1 ? "" : "s", serial ? "serial" : "concurrent", dev->name,
            dev->backend, bytes_text(a, sizeof a, (double)free_b), bytes_text(b, sizeof b, (double)total_b));
    fprintf(out, "# %-4s %-60s %12s %5s %12s\n", "case", "label", "memory", "fits", "est. time");
    double total = 0;
    int any_lower = 0, n_nofit = 0;
    for (int i = 0; i < plan->n_cases; i++) {
        const hb_case *c = &plan->cases[i];
        int lower = 0;
        double s = hb_case_estimate_s(c, dev, &lower) * (serial ? ranks : 1);
        int fits = c->cost.mem_bytes <= free_b;
        n_nofit += !fits;
        any_lower |= lower;
        total += s;
        fprintf(out, "  %-4d %-60.60s %12s %5s %10s%s\n", c->id, c->label, bytes_text(a, sizeof a, (double)c->cost.mem_bytes),
                fits ? "yes" : "NO", secs_text(t, sizeof t, s), lower ? "+" : " ");
    }
    double extra = idle_seconds + (calibrate && !(dev->peak_gbps > 0) ? CEILINGS_S : 0);
    fprintf(out, "# estimated duration: %s%s (cases %s, idle baseline and ceilings %s)%s\n", any_lower ? "at least " : "",
            secs_text(t, sizeof t, total + extra), secs_text(a, sizeof a, total), secs_text(b, sizeof b, extra),
            any_lower ? "; + = no ceilings known for the device, so only min_seconds is counted" : "");
    if (n_nofit)
        fprintf(out, "# %d case%s do not fit rank 0's device: a run would stop before the first case\n", n_nofit,
                n_nofit == 1 ? "" : "s");
    fputs("# nothing was run and nothing was written\n", out);
    return HB_OK;
}
