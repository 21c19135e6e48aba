/* bench_sampler.c - the power sampler's cost to a CPU-bound case (scripts/bench-sampler.sh):
 *
 *   bench_sampler [--rounds R] [--seconds S] [--size N] [--hz 0,20,100]
 *
 * Opens the CPU backend and its meter as `hetbench run` does (RAPL through powercap;
 * HETBENCH_POWERCAP_ROOT points it at a fake tree on machines without RAPL), sets up an
 * N x N x N f32 GEMM, and runs R rounds; each round measures one timed window of S seconds per
 * sampler rate (hb_measure_case, the same window as a run), the order of the rates rotated from
 * round to round so that drift hits them alike. Prints, per rate, the median GFLOP/s over the
 * rounds, the loss against the sampler being off, and the readings taken. A benchmark: figures,
 * no assertion. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "harness/energy.h"
#include "harness/measure.h"

#define MAX_RATES 8
#define MAX_ROUNDS 64

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int rounds = 5, size = 512, n_rates = 0;
    double seconds = 2, rates[MAX_RATES];
    const char *hz_list = "0,20,100";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0) size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--hz") == 0) hz_list = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_sampler [--rounds R] [--seconds S] [--size N] [--hz 0,20,100]\n");
            return 2;
        }
    }
    for (const char *p = hz_list; *p && n_rates < MAX_RATES;) {
        rates[n_rates++] = atof(p);
        p += strcspn(p, ",");
        if (*p == ',') p++;
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || size < 1 || !(seconds > 0) || n_rates < 1) return 2;

    hb_err err = {{0}};
    hb_backend *be = NULL;
    hb_meter *meter = NULL;
    hb_workload *w = NULL;
    hb_case c = {.workload = HB_WL_GEMM, .dtype = HB_F32, .m = size, .n = size, .k = size, .seed = 1,
                 .warmup_iters = 2, .min_iters = 3, .min_seconds = seconds, .max_iters = 100000000};
    hb_cost k;
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK || hb_meter_open_for_device(&be->info, &meter, &err) != HB_OK ||
        hb_case_cost(&c, &k, NULL) != HB_OK || hb_workload_setup(be, &c, &w, &err) != HB_OK) {
        fprintf(stderr, "bench_sampler: %s\n", err.msg);
        return 1;
    }
    printf("# bench_sampler: %s, %d threads; gemm %d^3 f32; %d rounds x %.1f s per rate; meter %s (%s)\n",
           be->info.name, be->info.n_threads, size, rounds, seconds, meter->name,
           meter->reason[0] ? meter->reason : meter->info.scope);
    static double gflops[MAX_RATES][MAX_ROUNDS];
    static int64_t readings[MAX_RATES][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < n_rates; j++) {
            int q = (j + r) % n_rates; /* rotated order */
            hb_record rec;
            hb_record_init(&rec, 0, 0);
            hb_measure_opts mo = {.power_hz = rates[q]};
            if (hb_measure_case(be, meter, w, &c, &mo, &rec, &err) != HB_OK) {
                fprintf(stderr, "bench_sampler: %s\n", err.msg);
                return 1;
            }
            double sum = 0;
            for (int64_t i = 0; i < rec.n_iters; i++) sum += rec.iter_seconds[i];
            gflops[q][r] = k.flops * (double)rec.n_iters / sum / 1e9;
            readings[q][r] = rec.n_power;
            fprintf(stderr, "  round %d  %5.0f Hz  %8.2f GFLOP/s  %lld power samples  energy %.2f J (%s)\n",
                    r + 1, rates[q], gflops[q][r], (long long)rec.n_power, rec.energy_j, rec.energy_source);
            hb_record_free(&rec);
        }
    }
    /* the sampler's own cost, free of the machine's noise: CPU time of its thread per second,
     * reading this meter while the process idles */
    printf("# sampler thread CPU time, meter %s (%s), 3 s per rate:\n", meter->name, meter->info.scope);
    printf("# %8s %16s %18s\n", "rate_Hz", "cpu_ms_per_s", "us_per_reading");
    for (int q = 0; q < n_rates; q++) {
        if (!(rates[q] > 0)) continue;
        hb_sampler *smp = NULL;
        if (hb_sampler_start(meter, NULL, rates[q], &smp, &err) != HB_OK) {
            fprintf(stderr, "bench_sampler: %s\n", err.msg);
            break;
        }
        double t0 = hb_now_s();
        struct timespec d = {3, 0};
        nanosleep(&d, NULL);
        hb_sampler_stop(smp);
        double wall = hb_now_s() - t0;
        const hb_samples *x = hb_sampler_samples(smp);
        printf("  %8g %16.3f %18.1f\n", rates[q], 1e3 * x->cpu_s / wall, 1e6 * x->cpu_s / (double)x->n_ticks);
        hb_sampler_free(smp);
    }
    double base = NAN;
    printf("# %8s %14s %10s %14s %14s\n", "rate_Hz", "GFLOP/s_med", "loss_%", "min..max", "samples/round");
    for (int q = 0; q < n_rates; q++) {
        double v[MAX_ROUNDS], lo = INFINITY, hi = -INFINITY, smp = 0;
        for (int r = 0; r < rounds; r++) {
            v[r] = gflops[q][r];
            lo = fmin(lo, v[r]);
            hi = fmax(hi, v[r]);
            smp += (double)readings[q][r] / rounds;
        }
        double med = median(v, rounds);
        if (rates[q] == 0) base = med;
        char range[32];
        snprintf(range, sizeof range, "%.1f..%.1f", lo, hi);
        printf("  %8g %14.2f %10.2f %14s %14.0f\n", rates[q], med, 100 * (base - med) / base, range, smp);
    }
    hb_workload_free(w);
    hb_meter_close(meter);
    hb_backend_close(be);
    return 0;
}
