/* meter_window.h - runs one real measurement window (harness/measure.c) of a tiny CPU GEMM
 * with a given meter, for the meter tests: the fakes script the meter, the CPU does the work.
 * Test code only. */
#ifndef HB_METER_WINDOW_H
#define HB_METER_WINDOW_H

#include "backends/backend.h"
#include "backends/meter.h"
#include "harness/measure.h"
#include "hbtest.h"
#include "results/results.h"

/* Measures a 64^3 f32 GEMM for at least min_seconds with the sampler at hz (0: off) into rec
 * (hb_record_free it). Returns the status of hb_measure_case. */
static hb_status run_window(hb_meter *m, double hz, double min_seconds, double idle_w,
                            hb_record *rec) {
    hb_backend *be = NULL;
    hb_workload *w = NULL;
    hb_err err = {{0}};
    hb_record_init(rec, 0, 0);
    hb_case c = {.workload = HB_WL_GEMM, .dtype = HB_F32, .m = 64, .n = 64, .k = 64, .seed = 1,
                 .warmup_iters = 1, .min_iters = 1, .min_seconds = min_seconds,
                 .max_iters = 100000000};
    hb_status s = hb_backend_open("cpu", 0, &be, &err);
    if (s == HB_OK) s = hb_workload_setup(be, &c, &w, &err);
    hb_measure_opts mo = {.power_hz = hz, .idle_w = idle_w};
    if (s == HB_OK) s = hb_measure_case(be, m, w, &c, &mo, rec, &err);
    if (s != HB_OK) fprintf(stderr, "run_window: %s\n", err.msg);
    hb_workload_free(w);
    hb_backend_close(be);
    return s;
}

/* |a - b| within frac of b */
#define CHECK_REL(a, b, frac) \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (frac) * fabs((double)(b)), "%s = %.6g, %s = %.6g", #a, (double)(a), #b, (double)(b))

#endif
