/* bench_grouped.c - the grouped GEMM of a MoE layer against one dense GEMM of the same FLOPs
 * (issue 13's GPU figure), through a backend's ops table: a benchmark that prints figures, not
 * a test.
 *
 * For each shape (E experts of N x K weights, R = B x top_k token rows spread evenly over the
 * experts, as balanced routing does) it times
 *   grouped  matmul_grouped: out (R, N) = a (R, K) @ w[e]^T per expert's rows
 *   dense    matmul: out (R, N) = a (R, K) @ w0^T, one N x K weight (the same 2 R N K FLOPs,
 *            1/E of the weight bytes when every expert has rows)
 * with the backend's device events, median of the iterations, and prints a '#'-headed table:
 * TFLOP/s of each, GB/s of the weights each reads, and grouped / dense time.
 *
 * usage: bench_grouped [backend [dtype [min_seconds]]]   (cuda, bf16, 0.5)
 *   dtype: f32 | bf16 | f16 | fp8 (e4m3, per-tensor scale). `cpu` runs it on the CPU backend
 *   (a smoke test of the program: CPU figures are not the issue's).
 * exit: 0 printed, 1 a backend error, 2 bad arguments or the backend has no device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h" // defines: hb_backend, HB_OP, hb_tensor

typedef struct shape {
    const char *what;
    int64_t E, N, K, top_k, B;
} shape;

/* expert up-projections (gate and up fused: N = 2 x expert width) of the models */
static const shape shapes[] = {
    {"deepseek-v2-lite up", 64, 2816, 2048, 6, 1},   {"deepseek-v2-lite up", 64, 2816, 2048, 6, 16},
    {"deepseek-v2-lite up", 64, 2816, 2048, 6, 64},  {"deepseek-v2-lite up", 64, 2816, 2048, 6, 256},
    {"deepseek-v2-lite up", 64, 2816, 2048, 6, 2048}, {"mixtral-8x7b up", 8, 28672, 4096, 2, 1},
    {"mixtral-8x7b up", 8, 28672, 4096, 2, 16},      {"mixtral-8x7b up", 8, 28672, 4096, 2, 64},
    {"mixtral-8x7b up", 8, 28672, 4096, 2, 256},     {"mixtral-8x7b up", 8, 28672, 4096, 2, 2048},
};
/* `cpu`: small shapes only (a smoke test of the program, not the figures) */
static const shape cpu_shapes[] = {{"smoke", 8, 256, 128, 2, 1}, {"smoke", 8, 256, 128, 2, 64}};

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of `iters` runs of grouped (1) or dense (0), each between two events. */
static hb_status time_it(hb_backend *be, int grouped, const hb_matmul_grouped_args *g, const hb_matmul_args *d,
                         double min_s, double *median_s) {
    hb_event *e0 = NULL, *e1 = NULL;
    double t[1000];
    int n = 0;
    hb_status s = be->ops->event_create(be, &e0);
    if (s == HB_OK) s = be->ops->event_create(be, &e1);
    for (int w = 0; s == HB_OK && w < 2; w++) s = grouped ? hb_op_matmul_grouped(be, g) : hb_op_matmul(be, d);
    double total = 0.0;
    while (s == HB_OK && n < 1000 && (total < min_s || n < 5)) {
        s = be->ops->event_record(be, e0);
        if (s == HB_OK) s = grouped ? hb_op_matmul_grouped(be, g) : hb_op_matmul(be, d);
        if (s == HB_OK) s = be->ops->event_record(be, e1);
        if (s == HB_OK) s = be->ops->event_elapsed(be, e0, e1, &t[n]);
        if (s == HB_OK) total += t[n++];
    }
    if (e0) be->ops->event_destroy(be, e0);
    if (e1) be->ops->event_destroy(be, e1);
    if (s == HB_OK) {
        qsort(t, (size_t)n, sizeof t[0], cmp_double);
        *median_s = t[n / 2];
    }
    return s;
}

static hb_status run_shape(hb_backend *be, const shape *sh, hb_dtype dt, double min_s) {
    const int64_t E = sh->E, N = sh->N, K = sh->K, R = sh->B * sh->top_k, esz = hb_dtype_size(dt);
    void *w = NULL, *a = NULL, *out = NULL, *off = NULL, *scale = NULL;
    hb_status s = be->ops->alloc(be, (size_t)(E * N * K * esz), &w);
    if (s == HB_OK) s = be->ops->alloc(be, (size_t)(R * K) * 4, &a);
    if (s == HB_OK) s = be->ops->alloc(be, (size_t)(R * N) * 4, &out);
    if (s == HB_OK) s = be->ops->alloc(be, (size_t)(E + 1) * 4, &off);
    if (s == HB_OK) s = be->ops->alloc(be, 4, &scale);
    int32_t *h = malloc((size_t)(E + 1) * sizeof *h);
    if (s == HB_OK && !h) s = HB_ERR_NOMEM;
    if (s == HB_OK) { /* balanced: expert e owns rows e R / E .. (e + 1) R / E - 1 */
        for (int64_t e = 0; e <= E; e++) h[e] = (int32_t)(e * R / E);
        s = be->ops->upload(be, off, h, (size_t)(E + 1) * sizeof *h);
    }
    hb_tensor wt = hb_t3(w, dt, E, N, K);
    if (hb_dtype_is_fp8(dt)) wt = hb_tq(wt, HB_QUANT_TENSOR, 0, 0, scale);
    if (s == HB_OK) s = HB_OP(be, fill_random, .dst = wt, .seed = 1, .scale = 0.02f);
    if (s == HB_OK) s = HB_OP(be, fill_random, .dst = hb_t2(a, HB_F32, R, K, K), .seed = 2, .scale = 1.0f);
    double tg = NAN, td = NAN;
    if (s == HB_OK) {
        const hb_matmul_grouped_args g = {.out = hb_t2(out, HB_F32, R, N, N), .a = hb_t2(a, HB_F32, R, K, K), .w = wt,
                                          .offsets = off};
        hb_matmul_args d = {.out = hb_t2(out, HB_F32, R, N, N), .a = hb_t2(a, HB_F32, R, K, K),
                            .w = hb_t2(w, dt, N, K, K)};
        if (hb_dtype_is_fp8(dt)) d.w = hb_tq(d.w, HB_QUANT_TENSOR, 0, 0, scale);
        s = time_it(be, 1, &g, &d, min_s, &tg);
        if (s == HB_OK) s = time_it(be, 0, &g, &d, min_s, &td);
    }
    if (s == HB_OK) {
        const double flops = 2.0 * (double)R * (double)N * (double)K;
        const int64_t active = R < E ? R : E; /* experts with rows */
        const double wg = (double)(active * N * K * esz), wd = (double)(N * K * esz);
        printf("  %-20s %4lld %6lld %6lld %5lld %6lld %10.4f %9.2f %8.1f %10.4f %9.2f %8.1f %7.2f\n", sh->what,
               (long long)E, (long long)N, (long long)K, (long long)sh->B, (long long)R, tg * 1e3, flops / tg / 1e12,
               wg / tg / 1e9, td * 1e3, flops / td / 1e12, wd / td / 1e9, tg / td);
        fflush(stdout);
    } else {
        printf("  %-20s %4lld %6lld %6lld %5lld: %s\n", sh->what, (long long)E, (long long)N, (long long)K,
               (long long)sh->B, be->err[0] ? be->err : hb_status_str(s));
    }
    free(h);
    if (w) be->ops->free(be, w);
    if (a) be->ops->free(be, a);
    if (out) be->ops->free(be, out);
    if (off) be->ops->free(be, off);
    if (scale) be->ops->free(be, scale);
    return s;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "cuda", *dts = argc > 2 ? argv[2] : "bf16";
    const double min_s = argc > 3 ? atof(argv[3]) : 0.5;
    hb_dtype dt;
    if (!strcmp(dts, "f32")) dt = HB_F32;
    else if (!strcmp(dts, "bf16")) dt = HB_BF16;
    else if (!strcmp(dts, "f16")) dt = HB_F16;
    else if (!strcmp(dts, "fp8")) dt = HB_FP8_E4M3;
    else {
        fprintf(stderr, "bench_grouped: dtype '%s' (accepted: f32, bf16, f16, fp8)\n", dts);
        return 2;
    }
    if (!(min_s >= 0.0)) {
        fprintf(stderr, "bench_grouped: min_seconds '%s' is not a number >= 0\n", argv[3]);
        return 2;
    }
    hb_backend *be = NULL;
    hb_err err = {{0}};
    if (hb_backend_open(name, 0, &be, &err) != HB_OK) {
        fprintf(stderr, "bench_grouped: backend '%s': %s\n", name, err.msg);
        return 2;
    }
    printf("# bench_grouped %s %s on %s, gemm_impl %s; weights %s, a/out f32; balanced rows\n", name, dts,
           be->info.name, be->info.gemm_impl, dts);
    printf("# %-20s %4s %6s %6s %5s %6s %10s %9s %8s %10s %9s %8s %7s\n", "shape", "E", "N", "K", "B", "rows",
           "grp_ms", "grp_TF/s", "grp_GB/s", "dense_ms", "dense_TF/s", "dns_GB/s", "grp/dns");
    int bad = 0;
    const int cpu = strcmp(name, "cpu") == 0;
    const shape *list = cpu ? cpu_shapes : shapes;
    const int n_shapes = cpu ? (int)(sizeof cpu_shapes / sizeof cpu_shapes[0]) : (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < n_shapes; i++) bad |= run_shape(be, &list[i], dt, min_s) != HB_OK;
    printf("# gemm_impl after the runs: %s\n", be->info.gemm_impl);
    hb_backend_close(be);
    return bad ? 1 : 0;
}
