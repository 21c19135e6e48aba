/* test_gpu_ops.c - the GPU backends on a machine that has one (label gpu; skips with exit 77
 * and the reason when no CUDA or HIP device is available).
 *
 * For the first available GPU backend: the device description (PCI bus id in the harness's
 * form, warp size, gemm_impl), memory and events, error paths (bad shapes, out of memory),
 * opening by PCI bus id; then every op against the CPU through `hetbench verify` (poisoned
 * outputs, per-dtype bounds, fp8 with scales, the tiny model), once with the vendor GEMM and once with the
 * built-in GEMM forced (HETBENCH_GPU_GEMM=builtin), so both engines are checked. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/registry.h"
#include "harness/commands.h"
#include "hbtest.h"

static int pci_form_ok(const char *s) {
    /* "dddd:bb:dd.f", lower-case hex */
    if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') return 0;
    for (int i = 0; i < 12; i++) {
        if (i == 4 || i == 7 || i == 10) continue;
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    }
    return 1;
}

static void test_device(hb_backend *be, const char *name) {
    const hb_device_info *in = &be->info;
    CHECK(be->api_version == HB_BACKEND_API_VERSION);
    CHECK_STR(in->backend, name);
    CHECK_MSG(pci_form_ok(in->pci_bus_id), "pci_bus_id '%s'", in->pci_bus_id);
    CHECK(in->name[0] != '\0');
    CHECK(in->driver[0] != '\0' && in->runtime[0] != '\0');
    CHECK_MSG(in->warp_size == 32 || in->warp_size == 64, "warp %d", in->warp_size);
    CHECK(in->mem_bytes > ((int64_t)1 << 30));
    CHECK(in->n_compute_units > 0);
    const char *impl = in->gemm_impl;
    CHECK_MSG(strcmp(impl, "cublaslt") == 0 || strcmp(impl, "hipblaslt") == 0 ||
                  strcmp(impl, "rocblas") == 0 || strcmp(impl, "builtin") == 0, "gemm_impl %s", impl);
    printf("# %s: %s %s pci %s, %d units, warp %d, %.1f GiB, gemm %s\n#   %s; %s\n", name, in->vendor,
           in->name, in->pci_bus_id, in->n_compute_units, in->warp_size,
           (double)in->mem_bytes / (1 << 30), impl, in->driver, in->runtime);
}

static void test_memory(hb_backend *be) {
    int64_t fr = 0, tot = 0;
    CHECK(be->ops->mem_info(be, &fr, &tot) == HB_OK && fr > 0 && tot >= fr);
    const int64_t n = 1000003;
    float *h = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
    void *d1 = NULL, *d2 = NULL, *z = NULL;
    CHECK(h && g);
    for (int64_t i = 0; i < n; i++) h[i] = (float)i * 0.5f;
    CHECK(be->ops->alloc(be, (size_t)n * 4, &d1) == HB_OK && d1);
    CHECK(be->ops->alloc(be, (size_t)n * 4, &d2) == HB_OK && d2);
    CHECK(be->ops->alloc(be, 0, &z) == HB_OK && z); /* a freeable pointer */
    CHECK(be->ops->upload(be, d1, h, (size_t)n * 4) == HB_OK);
    CHECK(be->ops->copy(be, d2, d1, (size_t)n * 4) == HB_OK);
    CHECK(be->ops->download(be, g, d2, (size_t)n * 4) == HB_OK && be->ops->sync(be) == HB_OK);
    CHECK(memcmp(h, g, (size_t)n * 4) == 0);
    /* events around a kernel: a positive, plausible time */
    hb_event *e0 = NULL, *e1 = NULL;
    CHECK(be->ops->event_create(be, &e0) == HB_OK && be->ops->event_create(be, &e1) == HB_OK);
    double s = -1;
    CHECK(be->ops->event_record(be, e0) == HB_OK);
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(d1, HB_F32, n), .seed = 1, .scale = 1.0f) == HB_OK);
    CHECK(be->ops->event_record(be, e1) == HB_OK);
    CHECK(be->ops->event_elapsed(be, e0, e1, &s) == HB_OK);
    CHECK_MSG(s > 0 && s < 1.0, "%g s", s);
    be->ops->event_destroy(be, e0);
    be->ops->event_destroy(be, e1);
    be->ops->free(be, d1);
    be->ops->free(be, d2);
    be->ops->free(be, z);
    be->ops->free(be, NULL);
    /* far more than any device has: NOMEM with a message, and the backend still works */
    void *huge = NULL;
    be->err[0] = '\0';
    CHECK(be->ops->alloc(be, (size_t)1 << 52, &huge) == HB_ERR_NOMEM && huge == NULL);
    CHECK(be->err[0] != '\0');
    CHECK(be->ops->alloc(be, 1024, &huge) == HB_OK);
    be->ops->free(be, huge);
    free(h), free(g);
}

static void test_errors(hb_backend *be) {
    float *d = NULL;
    CHECK(be->ops->alloc(be, 4096, (void **)&d) == HB_OK);
    /* the shared checks (ops.c) answer before the device is asked */
    CHECK(HB_OP(be, matmul, .out = hb_t2(d, HB_F32, 2, 4, 4), .a = hb_t2(d, HB_F32, 2, 3, 2),
                .w = hb_t2(d, HB_F32, 4, 3, 3)) == HB_ERR_INPUT); /* lda < K */
    CHECK(HB_OP(be, matmul, .out = hb_t2(d, HB_F32, 2, 4, 4), .a = hb_t2(d, HB_F16, 2, 3, 3),
                .w = hb_t2(d, HB_BF16, 4, 3, 3)) == HB_ERR_INPUT); /* a's dtype */
    CHECK(HB_OP(be, rope, .x = hb_t2(d, HB_F32, 1, 7, 8), .B = 1, .T = 1, .H = 1, .theta = 10000.0f) == HB_ERR_INPUT); /* odd D */
    const hb_tensor c16 = hb_t4(d, HB_BF16, 1, 6, 2, 4), c8 = hb_t4(d, HB_FP8_E4M3, 1, 6, 2, 4);
    CHECK(HB_OP(be, attention, .out = hb_t2(d, HB_F32, 2, 8, 8), .q = hb_t2(d, HB_F32, 2, 8, 8), .k_cache = c16,
                .v_cache = c16, .B = 1, .T = 2, .pos0 = 5) == HB_ERR_INPUT); /* past S */
    CHECK(HB_OP(be, attention, .out = hb_t2(d, HB_F32, 1, 8, 8), .q = hb_t2(d, HB_F32, 1, 8, 8), .k_cache = c8,
                .v_cache = c8, .B = 1, .T = 1) == HB_ERR_INPUT); /* fp8 cache without its scale */
    CHECK(HB_OP(be, argmax, .out = (int32_t *)d, .in = hb_t2(d, HB_F32, 1, 4, 3)) == HB_ERR_INPUT); /* ld < cols */
    CHECK(HB_OP(be, fill_tokens, .dst = (int32_t *)d, .n = 4, .seed = 1, .vocab = 0) == HB_ERR_INPUT); /* vocab 0 */
    CHECK(HB_OP(be, fill_random, .dst = hb_t1(d, HB_DTYPE_COUNT, 4), .seed = 1) == HB_ERR_INPUT); /* dtype */
    CHECK(HB_OP(be, fill_random, .dst = hb_tq(hb_t1(d, HB_FP8_E4M3, 4), HB_QUANT_TENSOR, 0, 0, NULL), .seed = 1) ==
          HB_ERR_INPUT); /* scales missing */
    CHECK(be->ops->sync(be) == HB_OK); /* none of that broke the stream */
    be->ops->free(be, d);
}

static void test_open_pci(const char *name, const hb_backend *be) {
    hb_backend *b2 = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_backend_open_pci(name, be->info.pci_bus_id, 0, &b2, &err) == HB_OK, "%s", err.msg);
    CHECK(b2 && strcmp(b2->info.pci_bus_id, be->info.pci_bus_id) == 0);
    hb_backend_close(b2);
    b2 = NULL;
    CHECK(hb_backend_open_pci(name, "ffff:ff:1f.7", 0, &b2, &err) == HB_ERR_INPUT && b2 == NULL);
}

int main(void) {
    const char *names[] = {"cuda", "hip"};
    const char *name = NULL;
    char why[2048] = "";
    for (int i = 0; i < 2 && !name; i++) {
        hb_err err = {{0}};
        int n = hb_backend_find(names[i])->count(&err);
        if (n > 0) name = names[i];
        else {
            size_t u = strlen(why);
            snprintf(why + u, sizeof why - u, "%s%s: %s", u ? "; " : "", names[i], n == 0 ? "no device" : err.msg);
        }
    }
    if (!name) HB_TEST_SKIP("no GPU backend available (%s)", why);

    hb_backend *be = NULL;
    hb_err err = {{0}};
    CHECK_MSG(hb_backend_open(name, 0, &be, &err) == HB_OK, "%s", err.msg);
    if (!be) HB_TEST_END();
    test_device(be, name);
    test_memory(be);
    test_errors(be);
    test_open_pci(name, be);
    hb_backend_close(be);

    /* every op against the CPU: the vendor GEMM, then the built-in one */
    char *argv1[] = {"--backend", (char *)name};
    CHECK_MSG(hb_cmd_verify(2, argv1) == 0, "hetbench verify --backend %s failed (see the table)", name);
    setenv("HETBENCH_GPU_GEMM", "builtin", 1);
    be = NULL;
    if (hb_backend_open(name, 0, &be, &err) == HB_OK) {
        CHECK_STR(be->info.gemm_impl, "builtin");
        hb_backend_close(be);
    }
    char *argv2[] = {"--backend", (char *)name, "--dtype", "f32,bf16,f16,fp8"};
    CHECK_MSG(hb_cmd_verify(4, argv2) == 0, "verify with the built-in GEMM failed (see the table)");
    unsetenv("HETBENCH_GPU_GEMM");
    HB_TEST_END();
}
