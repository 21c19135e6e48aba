/* test_dryrun.c - the duration estimate of `run --dry-run` and of the progress line's ETA
 * (harness/dryrun.c) against values worked out by hand, and the output-path helpers
 * (harness/outpath.c): the room left with HETBENCH_FREE_BYTES counts the results file and the
 * writer's work file, and each refusal of hb_out_check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/dryrun.h"
#include "harness/outpath.h"
#include "hbtest.h"

static hb_device_row gpu(void) {
    hb_device_row d;
    memset(&d, 0, sizeof d);
    d.peak_tflops_f32 = 10, d.peak_tflops_bf16 = 100, d.peak_tflops_f16 = 100, d.peak_tflops_fp8 = 200;
    d.peak_gbps = 1000;
    return d;
}

static void write_bytes(const char *path, size_t n) {
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < n; i++) fputc('x', f);
    if (f) fclose(f);
}

static void test_outpath(void) {
    char dir[] = "/tmp/hb_test_outpath.XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[256], work[256];
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(work, sizeof work, "%s/.r.h5.partial", dir);
    hb_err err = {{0}};
    /* nothing there yet: every check passes; a folder, an existing file, a missing resume fail */
    CHECK(hb_out_check(path, "--out", 0, 0, &err) == HB_OK);
    CHECK(hb_out_check(dir, "--out", 0, 0, &err) == HB_ERR_INPUT && strstr(err.msg, "is a folder"));
    CHECK(hb_out_check(path, "--resume", 0, 1, &err) == HB_ERR_INPUT && strstr(err.msg, "no such file"));
    write_bytes(path, 1000);
    write_bytes(work, 500);
    CHECK(hb_out_check(path, "--out", 0, 0, &err) == HB_ERR_INPUT && strstr(err.msg, "file exists"));
    CHECK(hb_out_check(path, "--out", 1, 0, &err) == HB_OK);
    CHECK(hb_out_check(path, "--resume", 0, 1, &err) == HB_OK);
    /* room: N - (1000 + 500) bytes, when the disk itself has more */
    setenv("HETBENCH_FREE_BYTES", "2000000", 1);
    int64_t room = hb_out_free_bytes(path);
    CHECK_MSG(room == 1998500, "room %lld", (long long)room);
    CHECK(hb_out_room(path, 1998500 - HB_OUT_MIN_FREE_BYTES, &err) == HB_OK);
    CHECK(hb_out_room(path, 1998500 - HB_OUT_MIN_FREE_BYTES + 1, &err) == HB_ERR_IO && strstr(err.msg, "disk full"));
    setenv("HETBENCH_FREE_BYTES", "1000000", 1); /* under the 1 MiB a run needs to start */
    CHECK(hb_out_check(path, "--out", 1, 0, &err) == HB_ERR_INPUT && strstr(err.msg, "at least 1.0 MiB needed"));
    unsetenv("HETBENCH_FREE_BYTES");
    remove(path), remove(work), remove(dir);
}

int main(void) {
    test_outpath();
    hb_device_row d = gpu();
    hb_case c;
    memset(&c, 0, sizeof c);
    c.dtype = HB_BF16;
    c.warmup_iters = 2, c.min_iters = 5, c.min_seconds = 1, c.max_iters = 100000, c.repeat = 1;
    /* memory-bound: 2e9 B / 1e12 B/s = 2 ms an iteration (1e9 FLOP / 1e14 = 0.01 ms);
     * timed max(5 x 2 ms, 1 s) = 1 s; + 0.2 s set-up + 2 x 2 ms warm-up = 1.204 s */
    c.cost.flops = 1e9, c.cost.bytes = 2e9;
    int lower = 0;
    CHECK_NEAR(hb_case_estimate_s(&c, &d, &lower), 1.204, 1e-12);
    CHECK(!lower);
    /* compute-bound in f32: 1e13 FLOP / 1e13 FLOP/s = 1 s an iteration; timed 5 x 1 s = 5 s;
     * + 0.2 + 2 x 1 = 7.2 s; three windows (repeat 3) = 21.6 s */
    c.dtype = HB_F32, c.cost.flops = 1e13, c.repeat = 3;
    CHECK_NEAR(hb_case_estimate_s(&c, &d, &lower), 21.6, 1e-9);
    /* max_iters caps the timed part: 5 iterations at most of 1 ms = 5 ms < min_seconds */
    c.repeat = 1, c.dtype = HB_BF16, c.cost.flops = 1e11, c.cost.bytes = 0, c.max_iters = 5;
    CHECK_NEAR(hb_case_estimate_s(&c, &d, &lower), 0.2 + 2e-3 + 5e-3, 1e-12);
    /* no ceilings (a CPU before its calibration): min_seconds per window, a lower bound */
    hb_device_row cpu;
    memset(&cpu, 0, sizeof cpu);
    cpu.peak_tflops_f32 = cpu.peak_tflops_bf16 = cpu.peak_gbps = NAN;
    c.repeat = 2, c.max_iters = 100000;
    lower = 0;
    CHECK_NEAR(hb_case_estimate_s(&c, &cpu, &lower), 2 * (1 + 0.2), 1e-12);
    CHECK(lower);
    /* set-up grows with the case's memory: 1.5e9 bytes filled at 1 GB/s = 1.5 s a window */
    c.cost.mem_bytes = 1500000000;
    CHECK_NEAR(hb_case_estimate_s(&c, &cpu, &lower), 2 * (1 + 0.2 + 1.5), 1e-12);
    HB_TEST_END();
}
