/* gpu_backend.cu - the GPU backend's device: properties, memory, events, the ops table, and the
 * entry points the registry calls (linked in, or exported from libhetbench-<cuda|hip>.so).
 *
 * One backend instance = one device + one non-blocking stream. Ops are queued on that stream and
 * return at once; sync() waits for it; events are recorded on it. upload() and download() wait
 * for their copy (they are setup/verification paths, and a host buffer passed to them may be
 * freed right after the call). */
#include "gpu.cuh"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(HB_GPU_MODULE)
#define HB_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define HB_EXPORT extern "C"
#endif

struct hb_event {
    cudaEvent_t ev;
};

namespace HB_GPU_NS {

/* ---- errors ---- */

hb_status fail(hb_backend *be, hb_status code, const char *fmt, ...) {
    if (be) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(be->err, sizeof be->err, fmt, ap);
        va_end(ap);
    }
    return code;
}

hb_status fail_rt(hb_backend *be, cudaError_t e, const char *what, const char *file, int line) {
    const char *base = strrchr(file, '/');
    (void)cudaGetLastError(); /* clear a non-sticky error so that the next call starts clean */
    return fail(be, e == cudaErrorMemoryAllocation ? HB_ERR_NOMEM : HB_ERR_BACKEND,
                "%s: %s: %s (%s, %d) at %s:%d", HB_GPU_NAME, what, cudaGetErrorString(e),
                cudaGetErrorName(e), (int)e, base ? base + 1 : file, line);
}

const char *dtype_name(hb_dtype dt) {
    switch (dt) {
    case HB_F32: return "f32";
    case HB_BF16: return "bf16";
    case HB_F16: return "f16";
    case HB_FP8_E4M3: return "fp8";
    case HB_FP8_E5M2: return "e5m2";
    default: return "?";
    }
}

hb_status ensure_buffer(hb_backend *be, void **buf, size_t *bytes, size_t need) {
    if (*bytes >= need && *buf) return HB_OK;
    gpu_ctx *c = ctx_of(be);
    GPU_TRY(be, cudaStreamSynchronize(c->stream));
    if (*buf) GPU_TRY(be, cudaFree(*buf));
    *buf = NULL;
    *bytes = 0;
    size_t n = need + need / 4; /* headroom: shapes grow a little from call to call */
    n = (n + 255) & ~(size_t)255;
    GPU_TRY(be, cudaMalloc(buf, n));
    *bytes = n;
    return HB_OK;
}

/* ---- memory ---- */

static hb_status gpu_mem_info(hb_backend *be, int64_t *free_bytes, int64_t *total_bytes) {
    GPU_ENTER(be);
    size_t f = 0, t = 0;
    GPU_TRY(be, cudaMemGetInfo(&f, &t));
    if (free_bytes) *free_bytes = (int64_t)f;
    if (total_bytes) *total_bytes = (int64_t)t;
    return HB_OK;
}

static hb_status gpu_alloc(hb_backend *be, size_t nbytes, void **ptr) {
    *ptr = NULL;
    GPU_ENTER(be);
    /* at least 256 bytes: a valid, freeable, 256-aligned pointer even for 0 bytes */
    cudaError_t e = cudaMalloc(ptr, nbytes ? nbytes : 256);
    if (e != cudaSuccess) {
        *ptr = NULL;
        (void)cudaGetLastError();
        return fail(be, e == cudaErrorMemoryAllocation ? HB_ERR_NOMEM : HB_ERR_BACKEND,
                    "%s: cannot allocate %zu bytes of device memory: %s", HB_GPU_NAME, nbytes,
                    cudaGetErrorString(e));
    }
    return HB_OK;
}

static void gpu_free(hb_backend *be, void *ptr) {
    if (!ptr) return;
    if (cudaSetDevice(ctx_of(be)->device) == cudaSuccess) (void)cudaFree(ptr);
    (void)cudaGetLastError();
}

static hb_status gpu_upload(hb_backend *be, void *dst, const void *host_src, size_t nbytes) {
    if (!nbytes) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    GPU_TRY(be, cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, c->stream));
    GPU_TRY(be, cudaStreamSynchronize(c->stream));
    return HB_OK;
}

static hb_status gpu_download(hb_backend *be, void *host_dst, const void *src, size_t nbytes) {
    if (!nbytes) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    GPU_TRY(be, cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, c->stream));
    GPU_TRY(be, cudaStreamSynchronize(c->stream));
    return HB_OK;
}

static hb_status gpu_copy(hb_backend *be, void *dst, const void *src, size_t nbytes) {
    if (!nbytes) return HB_OK;
    GPU_ENTER(be);
    GPU_TRY(be, cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, ctx_of(be)->stream));
    return HB_OK;
}

/* ---- ordering and timing ---- */

static hb_status gpu_sync(hb_backend *be) {
    GPU_ENTER(be);
    GPU_TRY(be, cudaStreamSynchronize(ctx_of(be)->stream));
    return HB_OK;
}

static hb_status gpu_event_create(hb_backend *be, hb_event **ev) {
    *ev = NULL;
    GPU_ENTER(be);
    hb_event *e = (hb_event *)calloc(1, sizeof *e);
    if (!e) return fail(be, HB_ERR_NOMEM, "%s: cannot allocate an event", HB_GPU_NAME);
    cudaError_t r = cudaEventCreate(&e->ev);
    if (r != cudaSuccess) {
        free(e);
        return fail_rt(be, r, "cudaEventCreate", __FILE__, __LINE__);
    }
    *ev = e;
    return HB_OK;
}

static void gpu_event_destroy(hb_backend *be, hb_event *ev) {
    if (!ev) return;
    if (cudaSetDevice(ctx_of(be)->device) == cudaSuccess) (void)cudaEventDestroy(ev->ev);
    (void)cudaGetLastError();
    free(ev);
}

static hb_status gpu_event_record(hb_backend *be, hb_event *ev) {
    GPU_ENTER(be);
    GPU_TRY(be, cudaEventRecord(ev->ev, ctx_of(be)->stream));
    return HB_OK;
}

static hb_status gpu_event_elapsed(hb_backend *be, hb_event *start, hb_event *end,
                                   double *seconds) {
    GPU_ENTER(be);
    GPU_TRY(be, cudaEventSynchronize(end->ev));
    float ms = 0.0f;
    GPU_TRY(be, cudaEventElapsedTime(&ms, start->ev, end->ev));
    *seconds = (double)ms * 1e-3;
    return HB_OK;
}

/* ---- lifetime ---- */

static void gpu_destroy(hb_backend *be) {
    if (!be) return;
    gpu_ctx *c = ctx_of(be);
    if (c) {
        if (cudaSetDevice(c->device) == cudaSuccess) {
            if (c->stream) (void)cudaStreamSynchronize(c->stream);
            gemm_fini(c);
            if (c->scratch) (void)cudaFree(c->scratch);
            if (c->a32) (void)cudaFree(c->a32);
            if (c->att_part) (void)cudaFree(c->att_part);
            if (c->rope_tab) (void)cudaFree(c->rope_tab);
            if (c->qscale) (void)cudaFree(c->qscale);
            if (c->mla_buf) (void)cudaFree(c->mla_buf);
            if (c->train_buf) (void)cudaFree(c->train_buf);
            if (c->stream) (void)cudaStreamDestroy(c->stream);
        }
        (void)cudaGetLastError();
        free(c);
    }
    free(be);
}

/* the stream NCCL / RCCL enqueue on (backends/comm_nccl.c), so collectives follow the ops */
static void *gpu_native_stream(hb_backend *be) { return (void *)ctx_of(be)->stream; }

static const hb_backend_ops gpu_ops = {
    .destroy = gpu_destroy,
    .mem_info = gpu_mem_info,
    .alloc = gpu_alloc,
    .free = gpu_free,
    .upload = gpu_upload,
    .download = gpu_download,
    .copy = gpu_copy,
    .sync = gpu_sync,
    .event_create = gpu_event_create,
    .event_destroy = gpu_event_destroy,
    .event_record = gpu_event_record,
    .event_elapsed = gpu_event_elapsed,
    /* every op of the catalogue (ops.h), in HB_OP_LIST order: inference, then the training
     * ops (gpu_train.cu) */
#define GPU_OP_MEMBER_(name, req) .name = op_##name,
    HB_OP_LIST(GPU_OP_MEMBER_)
#undef GPU_OP_MEMBER_
    .native_stream = gpu_native_stream,
};

/* ---- device description ---- */

/* "0000:17:00.0": lower-case hex, 4-digit domain (the form hwloc and the harness compare). */
static void normalize_pci(const char *in, char *out, size_t cap) {
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (sscanf(in, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4)
        snprintf(out, cap, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    else if (sscanf(in, "%x:%x.%x", &bus, &dev, &fn) == 3)
        snprintf(out, cap, "0000:%02x:%02x.%x", bus, dev, fn);
    else {
        snprintf(out, cap, "%.31s", in);
        for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
}

static void version_str(int v, char *out, size_t cap) {
    /* CUDA: 1000 * major + 10 * minor; HIP: 10000000 * major + 100000 * minor + patch */
#if defined(HB_GPU_HIP)
    snprintf(out, cap, "%d.%d.%d", v / 10000000, (v / 100000) % 100, v % 100000);
#else
    snprintf(out, cap, "%d.%d", v / 1000, (v % 1000) / 10);
#endif
}

static hb_status describe(hb_backend *be, const char *gemm_lib) {
    gpu_ctx *c = ctx_of(be);
    hb_device_info *info = &be->info;
    cudaDeviceProp prop;
    GPU_TRY(be, cudaGetDeviceProperties(&prop, c->device));
    memset(info, 0, sizeof *info);
    snprintf(info->backend, sizeof info->backend, "%s", HB_GPU_NAME);
    snprintf(info->vendor, sizeof info->vendor, "%s", HB_GPU_VENDOR);
    snprintf(info->name, sizeof info->name, "%.127s", prop.name);
#if defined(HB_GPU_HIP)
    if (!info->name[0]) snprintf(info->name, sizeof info->name, "%.127s", prop.gcnArchName);
#endif
    char pci[64] = "";
    if (cudaDeviceGetPCIBusId(pci, (int)sizeof pci, c->device) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(pci, sizeof pci, "%04x:%02x:%02x.0", (unsigned)prop.pciDomainID,
                 (unsigned)prop.pciBusID, (unsigned)prop.pciDeviceID);
    }
    normalize_pci(pci, info->pci_bus_id, sizeof info->pci_bus_id);

    int drv = 0, rt = 0, clk_khz = 0, mclk_khz = 0, bus_bits = 0;
    (void)cudaDriverGetVersion(&drv);
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, c->device);
    (void)cudaDeviceGetAttribute(&mclk_khz, cudaDevAttrMemoryClockRate, c->device);
    (void)cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, c->device);
    (void)cudaGetLastError();
    char vd[32], vr[32];
    version_str(drv, vd, sizeof vd);
    version_str(rt, vr, sizeof vr);
    snprintf(info->driver, sizeof info->driver, "%s driver API %s", HB_GPU_RUNTIME_NAME, vd);
    /* no room for these in hb_device_info yet: arch, clocks and memory bus go in `runtime` */
#if defined(HB_GPU_HIP)
    char arch[32];
    snprintf(arch, sizeof arch, "%.31s", prop.gcnArchName);
    arch[strcspn(arch, ":")] = '\0';
#else
    char arch[32];
    snprintf(arch, sizeof arch, "sm_%d%d", prop.major, prop.minor);
#endif
    snprintf(info->runtime, sizeof info->runtime, "%s %.15s, %.40s; %.16s %d MHz, mem %d MHz x %d bit",
             HB_GPU_RUNTIME_NAME, vr, gemm_lib, arch, clk_khz / 1000, mclk_khz / 1000, bus_bits);
    const char *impl = c->gemm == GEMM_BUILTIN ? "builtin" : HB_GEMM_VENDOR;
    snprintf(info->gemm_impl, sizeof info->gemm_impl, "%s", impl);
    info->mem_bytes = (int64_t)prop.totalGlobalMem;
    info->n_compute_units = prop.multiProcessorCount;
    info->warp_size = prop.warpSize;
    info->n_threads = 1;
    return HB_OK;
}

static hb_status setup(hb_backend *be, int index) {
    gpu_ctx *c = ctx_of(be);
    c->device = index;
    GPU_TRY(be, cudaSetDevice(index));
    cudaDeviceProp prop;
    GPU_TRY(be, cudaGetDeviceProperties(&prop, index));
    c->warp_size = prop.warpSize;
    c->n_sm = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
#if defined(HB_GPU_HIP)
    c->smem_optin = prop.sharedMemPerBlock; /* LDS per workgroup: no opt-in on AMD */
#else
    c->smem_optin = prop.sharedMemPerBlockOptin > prop.sharedMemPerBlock
                        ? prop.sharedMemPerBlockOptin
                        : prop.sharedMemPerBlock;
#endif
    GPU_TRY(be, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    const char *attn = getenv("HETBENCH_GPU_ATTN"); /* simt: no tensor-core attention */
    c->attn_simt = attn && strcmp(attn, "simt") == 0;
    char lib[64] = "";
    TRY(gemm_init(be, lib, sizeof lib));
    return describe(be, lib);
}

} // namespace HB_GPU_NS

using namespace HB_GPU_NS;

/* ---- entry points ---- */

/* Number of devices, or a negative status with the reason: a node without a driver or without
 * a device is not an error for hetbench, just a backend that is unavailable. */
HB_EXPORT int HB_GPU_SYM(count)(hb_err *err) {
#if defined(HB_GPU_CUDA)
    /* Ordinals in PCI bus order, as hwloc enumerates devices (the user's choice wins). */
    setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0);
#endif
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (err)
            snprintf(err->msg, sizeof err->msg, "no device (%sGetDeviceCount: %s, %s = %d)",
                     HB_GPU_API, cudaGetErrorString(e), cudaGetErrorName(e), (int)e);
        return HB_ERR_UNSUPPORTED;
    }
    return n;
}

HB_EXPORT hb_status HB_GPU_SYM(open)(int index, hb_backend **out, hb_err *err) {
    *out = NULL;
    hb_err why = {{0}};
    int n = HB_GPU_SYM(count)(&why);
    if (n < 0) {
        if (err) snprintf(err->msg, sizeof err->msg, "%s", why.msg);
        return (hb_status)n;
    }
    if (index < 0 || index >= n) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "backend '%s' has %d device(s); device %d requested",
                     HB_GPU_NAME, n, index);
        return HB_ERR_INPUT;
    }
    hb_backend *be = (hb_backend *)calloc(1, sizeof *be);
    gpu_ctx *c = (gpu_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        if (err) snprintf(err->msg, sizeof err->msg, "%s: out of host memory", HB_GPU_NAME);
        return HB_ERR_NOMEM;
    }
    be->api_version = HB_BACKEND_API_VERSION;
    be->ops = &gpu_ops;
    be->ctx = c;
    hb_status s = setup(be, index);
    if (s != HB_OK) {
        if (err) snprintf(err->msg, sizeof err->msg, "%s", be->err);
        gpu_destroy(be);
        return s;
    }
    *out = be;
    return HB_OK;
}

/* The module's one exported symbol besides open/count: the registry dlsym()s it, checks the
 * API version the module was compiled against, and uses the descriptor. */
HB_EXPORT const hb_backend_desc *HB_GPU_SYM(module)(int *api_version) {
    static const hb_backend_desc desc = {HB_GPU_NAME, HB_GPU_SYM(open), HB_GPU_SYM(count)};
    if (api_version) *api_version = HB_BACKEND_API_VERSION;
    return &desc;
}
