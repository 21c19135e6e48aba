/* bench_cpu_matmul.c - throughput of the CPU backend's matmul next to a STREAM triad.
 *
 * Not a test (no pass/fail): prints a '#'-headed table of GB/s and GFLOP/s for
 * out (M, N) = a (M, K) @ w (N, K)^T at M = 1, 4, 16, 256, f32, bf16 and fp8 e4m3 (scale 1: the
 * kernel an fp8 model's decode runs, without the activation quantisation) weights, on a
 * 2048x2048, a 2048x768 (short rows: qkv/fc of a 768-wide model) and a 32000x768 weight, and a STREAM triad (double, same OpenMP thread count) for scale.
 * Weights are cycled through enough copies (>= 256 MiB) that every call reads them from DRAM,
 * as decode does with a model larger than the last-level cache.
 *
 * usage: bench_cpu_matmul [isa [workset_mib [max_m]]]
 *   isa = avx512 | avx2 | generic | auto (default: the detected one)
 *   workset_mib: size of the weight copies cycled through (default 256; 0 = one copy, which
 *   measures cache-resident weights when they fit); max_m: skip larger M (default 256)
 * threads: OMP_NUM_THREADS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h" // defines: hb_cpu_set_isa, hb_cpu_ctx

#define WORKSET_MIB 256
#define MIN_TIME_S 0.25

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* STREAM triad a = b + s * c on 2^24 doubles per array (3 x 128 MiB, allocated by the backend
 * like the weights, so with the same page size), best of `reps`, counted as STREAM counts it:
 * 3 x 8 bytes per element. */
typedef struct triad {
    int64_t n;
    double *a, *b, *c;
} triad;

static int triad_init(hb_backend *be, triad *t) {
    t->n = (int64_t)1 << 24;
    const size_t nb = (size_t)t->n * sizeof(double);
    if (be->ops->alloc(be, nb, (void **)&t->a) || be->ops->alloc(be, nb, (void **)&t->b) ||
        be->ops->alloc(be, nb, (void **)&t->c))
        return -1;
    double *a = t->a, *b = t->b, *c = t->c;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < t->n; i++) a[i] = 1.0, b[i] = 2.0, c[i] = 0.5;
    return 0;
}

static double triad_gbs(const triad *t, int reps) {
    double *a = t->a, *b = t->b, *c = t->c, best = 1e30;
    const int64_t n = t->n;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_s();
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return 3.0 * 8.0 * (double)n / best * 1e-9;
}

static void triad_free(hb_backend *be, triad *t) {
    be->ops->free(be, t->a);
    be->ops->free(be, t->b);
    be->ops->free(be, t->c);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Seconds per call: best and median over >= MIN_TIME_S of calls cycling through the weight
 * copies. The best is what the hardware can do (a shared VM preempts threads now and then: a
 * stalled OpenMP barrier costs milliseconds); the median shows how noisy the machine was. */
static int time_matmul(hb_backend *be, float *out, const float *a, void **w, int ncopy,
                       hb_dtype dt, int64_t M, int64_t N, int64_t K, double *best,
                       double *median) {
    const hb_tensor to = hb_t2(out, HB_F32, M, N, N), ta = hb_t2(a, HB_F32, M, K, K);
    if (HB_OP(be, matmul, .out = to, .a = ta, .w = hb_t2(w[0], dt, N, K, K)) != HB_OK) return -1;
    enum { MAX_CALLS = 100000 };
    double *t = malloc(MAX_CALLS * sizeof *t);
    if (!t) return -1;
    int64_t calls = 0;
    double start = now_s(), t1 = start;
    do {
        double t0 = t1;
        if (HB_OP(be, matmul, .out = to, .a = ta, .w = hb_t2(w[calls % ncopy], dt, N, K, K))) {
            free(t);
            return -1;
        }
        t1 = now_s();
        t[calls++] = t1 - t0;
    } while ((t1 - start < MIN_TIME_S || calls < 2 * ncopy || calls < 20) && calls < MAX_CALLS);
    qsort(t, (size_t)calls, sizeof *t, cmp_double);
    *best = t[0];
    *median = t[calls / 2];
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    hb_err err = {{0}};
    hb_backend *be = NULL;
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "bench_cpu_matmul: %s\n", err.msg);
        return 1;
    }
    const int64_t workset = (argc > 2 ? atoll(argv[2]) : WORKSET_MIB) << 20;
    const int64_t max_m = argc > 3 ? atoll(argv[3]) : 256;
    if (argc > 1 && strcmp(argv[1], "auto") != 0) {
        static const hb_cpu_isa isas[] = {HB_CPU_ISA_GENERIC, HB_CPU_ISA_AVX2, HB_CPU_ISA_AVX512};
        int found = 0;
        for (int i = 0; i < 3; i++)
            if (strcmp(argv[1], hb_cpu_isa_name(isas[i])) == 0) {
                found = 1;
                if (hb_cpu_set_isa(be, isas[i]) != HB_OK) {
                    fprintf(stderr, "bench_cpu_matmul: %s\n", be->err);
                    hb_backend_close(be);
                    return 1;
                }
            }
        if (!found) {
            fprintf(stderr, "usage: bench_cpu_matmul [avx512|avx2|generic|auto [workset_mib [max_m]]]\n");
            hb_backend_close(be);
            return 2;
        }
    }
    const hb_cpu_ctx *ctx = be->ctx;
    triad tr = {0};
    if (triad_init(be, &tr) != 0) {
        fprintf(stderr, "bench_cpu_matmul: %s\n", be->err);
        triad_free(be, &tr);
        hb_backend_close(be);
        return 1;
    }
    printf("# cpu: %s, %d threads, GEMV kernels: %s\n# runtime: %s\n", be->info.name,
           be->info.n_threads, hb_cpu_isa_name(ctx->isa), be->info.runtime);
    printf("# weights cycled through >= %lld MiB of copies (read from DRAM); bytes = w + a + out\n",
           (long long)(workset >> 20));
    printf("# GB/s and GFLOP/s from the best call (median_us shows the noise); triad_GB/s is a\n"
           "# STREAM triad with the same threads measured just before the row; x_f32 = f32 time /"
           " bf16 (fp8) time\n");
    printf("# %6s %6s %5s %5s %10s %10s %9s %9s %10s %7s %6s\n", "N", "K", "M", "wdt",
           "best_us", "median_us", "GB/s", "GFLOP/s", "triad_GB/s", "%triad", "x_f32");

    const int64_t shapes[3][2] = {{2048, 2048}, {2048, 768}, {32000, 768}};
    const int64_t ms[4] = {1, 4, 16, 256};
    const hb_dtype dts[3] = {HB_F32, HB_BF16, HB_FP8_E4M3};
    double f32_sec[4] = {0};
    int rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int d = 0; d < 3 && !rc; d++) {
            const int64_t N = shapes[s][0], K = shapes[s][1];
            const int64_t wbytes = N * K * hb_dtype_size(dts[d]);
            int ncopy = workset > wbytes ? (int)((workset + wbytes - 1) / wbytes) : 1;
            void **w = calloc((size_t)ncopy, sizeof *w);
            float *a = NULL, *out = NULL;
            rc = !w || be->ops->alloc(be, (size_t)(256 * K * 4), (void **)&a) ||
                 be->ops->alloc(be, (size_t)(256 * N * 4), (void **)&out) ||
                 HB_OP(be, fill_random, .dst = hb_t1(a, HB_F32, 256 * K), .seed = 1, .scale = 1.0f);
            for (int c = 0; c < ncopy && !rc; c++)
                rc = be->ops->alloc(be, (size_t)wbytes, &w[c]) ||
                     HB_OP(be, fill_random, .dst = hb_t1(w[c], dts[d], N * K), .seed = 100 + (uint64_t)c,
                            /* fp8 codes over their normal range, as a scaled weight's are */
                            .scale = hb_dtype_is_fp8(dts[d]) ? 0.5f * hb_dtype_fp8_max(dts[d]) : 0.05f);
            for (int mi = 0; mi < 4 && !rc; mi++) {
                const int64_t M = ms[mi];
                if (M > max_m) continue;
                const double triad_now = triad_gbs(&tr, 8);
                double sec = 0.0, med = 0.0;
                rc = time_matmul(be, out, a, w, ncopy, dts[d], M, N, K, &sec, &med);
                if (rc) break;
                const double bytes = (double)wbytes + 4.0 * (double)(M * K + M * N);
                const double gbs = bytes / sec * 1e-9;
                if (dts[d] == HB_F32) f32_sec[mi] = sec;
                char ratio[16] = "-";
                if (dts[d] != HB_F32) snprintf(ratio, sizeof ratio, "%.2f", f32_sec[mi] / sec);
                printf("  %6lld %6lld %5lld %5s %10.1f %10.1f %9.1f %9.1f %10.1f %7.1f %6s\n",
                       (long long)N, (long long)K, (long long)M, hb_dtype_name(dts[d]),
                       sec * 1e6, med * 1e6, gbs, 2.0 * (double)(M * N * K) / sec * 1e-9,
                       triad_now, 100.0 * gbs / triad_now, ratio);
                fflush(stdout);
            }
            for (int c = 0; w && c < ncopy; c++) be->ops->free(be, w[c]);
            free(w);
            be->ops->free(be, a);
            be->ops->free(be, out);
        }
    triad_free(be, &tr);
    if (rc) fprintf(stderr, "bench_cpu_matmul: %s\n", be->err);
    hb_backend_close(be);
    return rc ? 1 : 0;
}
