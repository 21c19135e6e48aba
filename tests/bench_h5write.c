/* bench_h5write.c - time to write one case holding the records of N simulated ranks (default
 * 1024), each with 1000 iteration times and a 200-sample power trace, plus their /summary rows.
 * A benchmark (prints figures), not a test. Usage: bench_h5write FILE.h5 [N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/measure.h"
#include "results/results.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.h5 [ranks]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 1024;
    hb_run_meta meta = {.version = "bench", .plan = "cases: []", .mpi_size = n, .status = "incomplete"};
    hb_device_row *devs = calloc((size_t)n, sizeof *devs);
    double *idle = calloc((size_t)n, sizeof *idle);
    hb_record *recs = calloc((size_t)n, sizeof *recs);
    hb_summary_row *rows = calloc((size_t)n, sizeof *rows);
    for (int r = 0; r < n; r++) {
        devs[r].rank = r;
        snprintf(devs[r].backend, sizeof devs[r].backend, "cuda");
        snprintf(devs[r].name, sizeof devs[r].name, "NVIDIA H100 80GB HBM3");
        idle[r] = 70.0;
        hb_record_init(&recs[r], 0, r);
        snprintf(recs[r].status, sizeof recs[r].status, "ok");
        recs[r].n_iters = 1000;
        recs[r].iter_seconds = malloc(1000 * sizeof(double));
        for (int i = 0; i < 1000; i++) recs[r].iter_seconds[i] = 1e-3 * (1 + 0.01 * sin(i + r));
        recs[r].n_power = 200;
        recs[r].power = malloc(400 * sizeof(double));
        for (int i = 0; i < 200; i++) recs[r].power[2 * i] = 0.05 * i, recs[r].power[2 * i + 1] = 500;
        rows[r].case_id = 0;
        rows[r].rank = r;
        snprintf(rows[r].status, sizeof rows[r].status, "ok");
    }
    hb_case c = {.id = 0, .workload = HB_WL_GEMM, .m = 8, .n = 8, .k = 8, .min_iters = 1};
    hb_case_label(&c, c.label, sizeof c.label);
    hb_cost k = {0};
    hb_err err = {{0}};
    hb_h5 *h = NULL;
    if (hb_h5_create(argv[1], 1, &meta, devs, n, idle, &h, &err) != HB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t0 = hb_now_s();
    if (hb_h5_write_case(h, &c, &k, recs, rows, n, &err) != HB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t1 = hb_now_s();
    hb_h5_close(h, "complete", NULL);
    printf("# write one case with %d ranks (1000 iteration times + 200 power samples each, flushed)\n", n);
    printf("# %8s %12s %8s\n", "ranks", "seconds", "target");
    printf("  %8d %12.4f %8s\n", n, t1 - t0, "< 1");
    for (int r = 0; r < n; r++) hb_record_free(&recs[r]);
    free(recs), free(rows), free(devs), free(idle);
    return 0;
}
