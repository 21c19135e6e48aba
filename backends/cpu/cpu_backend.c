/* cpu_backend.c - the CPU reference backend: device description, memory, events, ops table.
 *
 * One device: the host, as many threads as OpenMP gives us (OpenBLAS shares the pool in its
 * OpenMP build). Device memory is host memory, so upload/download/copy are memcpy and every op
 * is synchronous: events read CLOCK_MONOTONIC and sync() has nothing to wait for. */
#include "cpu_backend.h"

#include <cblas.h>     // defines: openblas_get_config, openblas_get_parallel
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>     // defines: __get_cpuid, bit_F16C
#endif
#include <omp.h>       // defines: omp_get_max_threads
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>  // defines: madvise
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Allocations at least this large are 2 MiB aligned and advised as huge pages: matmul streams
 * its weights once per call, and 4 KiB pages would cost a TLB miss every 4 KiB. */
#define HUGE_PAGE_BYTES ((size_t)2 << 20)

struct hb_event {
    struct timespec t;
};

hb_status hb_cpu_fail(hb_backend *be, hb_status code, const char *fmt, ...) {
    if (be) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(be->err, sizeof be->err, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- instruction set ---- */

const char *hb_cpu_isa_name(hb_cpu_isa isa) {
    switch (isa) {
    case HB_CPU_ISA_GENERIC: return "generic";
    case HB_CPU_ISA_AVX2: return "avx2";
    case HB_CPU_ISA_AVX512: return "avx512";
    }
    return "?";
}

static int isa_supported(hb_cpu_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    switch (isa) {
    case HB_CPU_ISA_GENERIC: return 1;
    case HB_CPU_ISA_AVX2: // __builtin_cpu_supports also checks that the OS saves AVX state
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
    case HB_CPU_ISA_AVX512: // the fp8 kernels use byte and word ops (BW, VL): every AVX-512 server CPU
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
    }
    return 0;
#else
    return isa == HB_CPU_ISA_GENERIC;
#endif
}

hb_cpu_isa hb_cpu_isa_detect(void) {
    if (isa_supported(HB_CPU_ISA_AVX512)) return HB_CPU_ISA_AVX512;
    if (isa_supported(HB_CPU_ISA_AVX2)) return HB_CPU_ISA_AVX2;
    return HB_CPU_ISA_GENERIC;
}

hb_status hb_cpu_set_isa(hb_backend *be, hb_cpu_isa isa) {
    hb_cpu_ctx *ctx = be->ctx;
    if (!isa_supported(isa))
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "this CPU cannot run the %s kernels",
                           hb_cpu_isa_name(isa));
    ctx->isa = isa;
    return HB_OK;
}

/* ---- device description (Linux /proc) ---- */

/* Value of the first "key<spaces>: value" line of a /proc file, trailing newline removed. */
static int proc_field(const char *path, const char *key, char *val, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    size_t klen = strlen(key);
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        const char *p = line + klen;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ':') continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        snprintf(val, cap, "%s", p);
        val[strcspn(val, "\n")] = '\0';
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

/* /proc/meminfo "Key: N kB" in bytes, -1 if absent. */
static int64_t meminfo_bytes(const char *key) {
    char val[64];
    if (proc_field("/proc/meminfo", key, val, sizeof val) != 0) return -1;
    return (int64_t)strtoll(val, NULL, 10) * 1024;
}

static void fill_info(hb_device_info *info, int n_threads) {
    memset(info, 0, sizeof *info);
    snprintf(info->backend, sizeof info->backend, "cpu");

    char vendor[64] = "";
    if (proc_field("/proc/cpuinfo", "vendor_id", vendor, sizeof vendor) != 0)
        snprintf(vendor, sizeof vendor, "unknown");
    if (strcmp(vendor, "AuthenticAMD") == 0)
        snprintf(info->vendor, sizeof info->vendor, "AMD");
    else if (strcmp(vendor, "GenuineIntel") == 0)
        snprintf(info->vendor, sizeof info->vendor, "Intel");
    else
        snprintf(info->vendor, sizeof info->vendor, "%.31s", vendor);

    if (proc_field("/proc/cpuinfo", "model name", info->name, sizeof info->name) != 0)
        snprintf(info->name, sizeof info->name, "unknown CPU");
    info->pci_bus_id[0] = '\0'; // the CPU has no PCI identity; the host name identifies it

    struct utsname u;
    if (uname(&u) == 0)
        snprintf(info->driver, sizeof info->driver, "%.63s", u.release);

    // openblas_get_config() already starts with "OpenBLAS <version>".
    const char *cfg = openblas_get_config();
    int par = openblas_get_parallel();
    const char *model = par == 2 ? "openmp" : par == 1 ? "pthread" : "serial";
    /* the kernels hetbench chose when OpenBLAS fell back to its generic ones (harness/main.c) */
    const char *chosen = getenv("HETBENCH_BLAS_CORETYPE_BY") ? "; core set by hetbench" : "";
    if (cfg && strncmp(cfg, "OpenBLAS", 8) == 0)
        snprintf(info->runtime, sizeof info->runtime, "%.90s (%s%s)", cfg, model, chosen);
    else
        snprintf(info->runtime, sizeof info->runtime, "OpenBLAS %.81s (%s%s)", cfg ? cfg : "?",
                 model, chosen);
    snprintf(info->gemm_impl, sizeof info->gemm_impl, "openblas");

    info->mem_bytes = meminfo_bytes("MemTotal");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    info->n_compute_units = ncpu > 0 ? (int)ncpu : 1;
    info->warp_size = 1;
    info->n_threads = n_threads;
}

/* ---- memory ---- */

static hb_status cpu_mem_info(hb_backend *be, int64_t *free_bytes, int64_t *total_bytes) {
    int64_t avail = meminfo_bytes("MemAvailable"), total = meminfo_bytes("MemTotal");
    if (avail < 0 || total < 0)
        return hb_cpu_fail(be, HB_ERR_IO, "cannot read MemAvailable/MemTotal from /proc/meminfo");
    if (free_bytes) *free_bytes = avail;
    if (total_bytes) *total_bytes = total;
    return HB_OK;
}

static hb_status cpu_alloc(hb_backend *be, size_t nbytes, void **ptr) {
    *ptr = NULL;
    size_t align = nbytes >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : 64;
    size_t n = nbytes ? nbytes : 1; // a valid, freeable pointer even for 0 bytes
    void *p = NULL;
    int rc = posix_memalign(&p, align, n);
    if (rc != 0 || !p)
        return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: cannot allocate %zu bytes (%s)", nbytes,
                           strerror(rc));
#ifdef MADV_HUGEPAGE
    if (align == HUGE_PAGE_BYTES) madvise(p, n, MADV_HUGEPAGE); // advice only: ignore failure
#endif
    *ptr = p;
    return HB_OK;
}

static void cpu_free(hb_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static hb_status cpu_memcpy(hb_backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    if (nbytes) memmove(dst, src, nbytes);
    return HB_OK;
}

hb_status hb_cpu_scratch(hb_backend *be, int slot, size_t nbytes, float **scratch) {
    hb_cpu_ctx *ctx = be->ctx;
    if (ctx->scratch_bytes[slot] < nbytes) {
        free(ctx->scratch[slot]);
        ctx->scratch[slot] = NULL;
        ctx->scratch_bytes[slot] = 0;
        void *p = NULL;
        if (posix_memalign(&p, 64, nbytes) != 0 || !p)
            return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: cannot allocate %zu bytes of scratch",
                               nbytes);
        ctx->scratch[slot] = p;
        ctx->scratch_bytes[slot] = nbytes;
    }
    *scratch = ctx->scratch[slot];
    return HB_OK;
}

/* ---- ordering and timing: ops are synchronous, so an event is a timestamp ---- */

static hb_status cpu_sync(hb_backend *be) {
    (void)be;
    return HB_OK;
}

static hb_status cpu_event_create(hb_backend *be, hb_event **ev) {
    *ev = calloc(1, sizeof **ev);
    if (!*ev) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: cannot allocate an event");
    return HB_OK;
}

static void cpu_event_destroy(hb_backend *be, hb_event *ev) {
    (void)be;
    free(ev);
}

static hb_status cpu_event_record(hb_backend *be, hb_event *ev) {
    if (clock_gettime(CLOCK_MONOTONIC, &ev->t) != 0)
        return hb_cpu_fail(be, HB_ERR_INTERNAL, "cpu: clock_gettime(CLOCK_MONOTONIC) failed");
    return HB_OK;
}

static hb_status cpu_event_elapsed(hb_backend *be, hb_event *start, hb_event *end,
                                   double *seconds) {
    (void)be;
    *seconds = (double)(end->t.tv_sec - start->t.tv_sec) +
               1e-9 * (double)(end->t.tv_nsec - start->t.tv_nsec);
    return HB_OK;
}

/* ---- lifetime ---- */

static void cpu_destroy(hb_backend *be) {
    if (!be) return;
    hb_cpu_ctx *ctx = be->ctx;
    if (ctx) free(ctx->scratch[0]), free(ctx->scratch[1]), free(ctx->scratch[2]);
    free(ctx);
    free(be);
}

static const hb_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .mem_info = cpu_mem_info,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .sync = cpu_sync,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_record,
    .event_elapsed = cpu_event_elapsed,
#define HB_CPU_MEMBER_(name, req) .name = hb_cpu_##name,
    HB_OP_LIST(HB_CPU_MEMBER_)
#undef HB_CPU_MEMBER_
};

int hb_cpu_count(hb_err *err) {
    (void)err;
    return 1;
}

hb_status hb_cpu_open(int index, hb_backend **out, hb_err *err) {
    *out = NULL;
    if (index != 0) return hb_errf(err, HB_ERR_INPUT, "backend 'cpu' has one device (0), not %d", index);
    hb_backend *be = calloc(1, sizeof *be);
    hb_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return hb_errf(err, HB_ERR_NOMEM, "cpu: cannot allocate the backend");
    }
    ctx->isa = hb_cpu_isa_detect();
    ctx->n_threads = omp_get_max_threads();
    be->api_version = HB_BACKEND_API_VERSION;
    be->ops = &cpu_ops;
    be->ctx = ctx;
    fill_info(&be->info, ctx->n_threads);
    *out = be;
    return HB_OK;
}
