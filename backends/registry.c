/* registry.c - the known backends and how one is opened.
 *
 * Each backend is an hb_backend_desc {name, open, count}. The CPU backend is always built in.
 * The GPU backends are linked in (HB_HAVE_CUDA / HB_HAVE_HIP) or, when they are not, keep a
 * descriptor whose count() says why, so that `hetbench list` can show every backend. A module
 * loaded with dlopen (HB_BACKEND_DL) fills the same descriptor from the symbols it exports; only
 * the desc's open/count change, not the callers. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h" // defines: hb_cpu_open, hb_cpu_count

/* GPU backends: linked in when built, otherwise a stub whose count() says why. */
#ifdef HB_HAVE_CUDA
hb_status hb_cuda_open(int index, hb_backend **out, hb_err *err);
int hb_cuda_count(hb_err *err);
#define CUDA_OPEN hb_cuda_open
#define CUDA_COUNT hb_cuda_count
#else
static hb_status cuda_open_missing(int index, hb_backend **out, hb_err *err) {
    (void)index;
    if (out) *out = NULL;
    return hb_errf(err, HB_ERR_UNSUPPORTED, "module not built (configure with HB_CUDA=ON)");
}
static int cuda_count_missing(hb_err *err) {
    return (int)hb_errf(err, HB_ERR_UNSUPPORTED, "module not built (configure with HB_CUDA=ON)");
}
#define CUDA_OPEN cuda_open_missing
#define CUDA_COUNT cuda_count_missing
#endif

#ifdef HB_HAVE_HIP
hb_status hb_hip_open(int index, hb_backend **out, hb_err *err);
int hb_hip_count(hb_err *err);
#define HIP_OPEN hb_hip_open
#define HIP_COUNT hb_hip_count
#else
static hb_status hip_open_missing(int index, hb_backend **out, hb_err *err) {
    (void)index;
    if (out) *out = NULL;
    return hb_errf(err, HB_ERR_UNSUPPORTED, "module not built (configure with HB_HIP=ON)");
}
static int hip_count_missing(hb_err *err) {
    return (int)hb_errf(err, HB_ERR_UNSUPPORTED, "module not built (configure with HB_HIP=ON)");
}
#define HIP_OPEN hip_open_missing
#define HIP_COUNT hip_count_missing
#endif

/* Read-only table: the order is the order `hetbench list` prints. */
static const hb_backend_desc backends[] = {
    {.name = "cpu", .open = hb_cpu_open, .count = hb_cpu_count},
    {.name = "cuda", .open = CUDA_OPEN, .count = CUDA_COUNT},
    {.name = "hip", .open = HIP_OPEN, .count = HIP_COUNT},
};

int hb_backend_registry(const hb_backend_desc **list) {
    if (list) *list = backends;
    return HB_ARRAY_LEN(backends);
}

const hb_backend_desc *hb_backend_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < HB_ARRAY_LEN(backends); i++)
        if (strcmp(backends[i].name, name) == 0) return &backends[i];
    return NULL;
}

hb_status hb_backend_open(const char *name, int index, hb_backend **out, hb_err *err) {
    if (!out) return hb_errf(err, HB_ERR_INTERNAL, "hb_backend_open: out is NULL");
    *out = NULL;
    const hb_backend_desc *d = hb_backend_find(name);
    if (!d)
        return hb_errf(err, HB_ERR_INPUT, "unknown backend '%s' (known: cpu, cuda, hip)",
                       name ? name : "(null)");
    hb_err why = {{0}};
    int n = d->count(&why); // a negative count is a status, with its reason in `why`
    if (n < 0) return hb_errf(err, (hb_status)n, "backend '%s': %s", d->name, why.msg);
    if (index < 0 || index >= n)
        return hb_errf(err, HB_ERR_INPUT, "backend '%s' has %d device(s); device %d requested",
                       d->name, n, index);

    hb_backend *be = NULL;
    HB_TRY(d->open(index, &be, err));
    if (!be || !be->ops) {
        free(be);
        return hb_errf(err, HB_ERR_INTERNAL, "backend '%s' opened without an ops table", d->name);
    }
    // A module built against another version of backend.h would call ops with the wrong
    // signatures: refuse it before any op runs.
    if (be->api_version != HB_BACKEND_API_VERSION) {
        int v = be->api_version;
        hb_backend_close(be);
        return hb_errf(err, HB_ERR_BACKEND,
                       "backend '%s' has API version %d, this hetbench expects %d (rebuild the module)",
                       d->name, v, HB_BACKEND_API_VERSION);
    }
    *out = be;
    return HB_OK;
}

/* destroy() releases the context and the hb_backend itself: whoever created it frees it. */
void hb_backend_close(hb_backend *be) {
    if (!be) return;
    if (be->ops && be->ops->destroy)
        be->ops->destroy(be);
    else
        free(be);
}
