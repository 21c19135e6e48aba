/* registry.c - the known backends and how one is opened.
 *
 * Each backend is an hb_backend_desc {name, open, count}. The CPU backend is always built in.
 * A GPU backend is one of:
 *   linked in      (HB_HAVE_CUDA / HB_HAVE_HIP without HB_BACKEND_DL): hb_<name>_open/count;
 *   a module       (HB_BACKEND_DL): count()/open() load libhetbench-<name>.so (registry.h says
 *                  where it is looked for) and call the module's own descriptor, so a node
 *                  without the vendor runtime starts normally and says why the backend is not
 *                  there: module not built / not found (paths tried) / runtime library missing
 *                  (dlerror) / no device (the runtime's own error);
 *   not built      (neither): a descriptor whose count() says so.
 * Nothing is cached here: the dynamic loader keeps a loaded module, and dlopen() of a loaded
 * file only bumps its reference count. */
#include "registry.h"

#include <dlfcn.h>  // defines: dlopen, dlsym, dlerror
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> // defines: readlink, access

#include "cpu/cpu_backend.h" // defines: hb_cpu_open, hb_cpu_count
#include "meter.h"           // defines: hb_pci_same

#ifndef HB_MODULE_RELDIR
#define HB_MODULE_RELDIR "../lib/hetbench"
#endif
#ifndef HB_MODULE_BUILD_DIR
#define HB_MODULE_BUILD_DIR ""
#endif

/* ---- loadable modules ---- */
#ifdef HB_BACKEND_DL

#define MAX_CANDIDATES 16

typedef const hb_backend_desc *(*module_entry)(int *api_version);

static int module_built(const char *name) {
#ifdef HB_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return 1;
#endif
#ifdef HB_HAVE_HIP
    if (strcmp(name, "hip") == 0) return 1;
#endif
    (void)name;
    return 0;
}

/* Appends dir/file (or file itself when dir is NULL) unless it is already in the list. */
static void add_candidate(char (*paths)[PATH_MAX], int *n, const char *dir, const char *file) {
    if (*n >= MAX_CANDIDATES) return;
    char p[PATH_MAX];
    int len = dir ? snprintf(p, sizeof p, "%s/%s", dir, file) : snprintf(p, sizeof p, "%s", file);
    if (len <= 0 || len >= (int)sizeof p) return;
    for (int i = 0; i < *n; i++)
        if (strcmp(paths[i], p) == 0) return;
    memcpy(paths[(*n)++], p, (size_t)len + 1);
}

/* The files to try, in search order (see registry.h). */
static int module_candidates(const char *name, char (*paths)[PATH_MAX]) {
    char file[64];
    snprintf(file, sizeof file, "libhetbench-%s.so", name);
    int n = 0;
    const char *env = getenv("HETBENCH_BACKEND_PATH");
    if (env && *env) {
        char *list = strdup(env);
        if (list) {
            char *save = NULL;
            for (char *tok = strtok_r(list, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
                const char *base = strrchr(tok, '/');
                base = base ? base + 1 : tok;
                if (strcmp(base, file) == 0)
                    add_candidate(paths, &n, NULL, tok); /* the module file itself */
                else
                    add_candidate(paths, &n, tok, file);
            }
            free(list);
        }
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char dir[PATH_MAX];
            if (snprintf(dir, sizeof dir, "%s/%s", exe, HB_MODULE_RELDIR) < (int)sizeof dir)
                add_candidate(paths, &n, dir, file);
        }
    }
    if (HB_MODULE_BUILD_DIR[0]) add_candidate(paths, &n, HB_MODULE_BUILD_DIR, file);
    return n;
}

hb_status hb_backend_module_load(const char *name, const hb_backend_desc **desc, char *path,
                                 size_t path_len, hb_err *err) {
    *desc = NULL;
    if (path && path_len) path[0] = '\0';
    char paths[MAX_CANDIDATES][PATH_MAX];
    const int n = module_candidates(name, paths);
    for (int i = 0; i < n; i++) {
        if (access(paths[i], F_OK) != 0) continue;
        dlerror();
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            if (!why) why = paths[i];
            /* a vendor library the module needs is absent: the usual case on a node of the
             * other vendor; anything else (an undefined symbol) is a broken module */
            if (strstr(why, "cannot open shared object file"))
                return hb_errf(err, HB_ERR_UNSUPPORTED, "runtime library missing: %s", why);
            return hb_errf(err, HB_ERR_BACKEND, "cannot load the module: %s", why);
        }
        char sym[64];
        snprintf(sym, sizeof sym, "hb_%s_module", name);
        module_entry entry;
        void *p = dlsym(h, sym);
        memcpy(&entry, &p, sizeof entry); /* object pointer -> function pointer, POSIX style */
        if (!p) {
            dlclose(h);
            return hb_errf(err, HB_ERR_BACKEND, "%s is not a hetbench backend module (no %s)",
                           paths[i], sym);
        }
        int version = -1;
        const hb_backend_desc *d = entry(&version);
        if (!d || version != HB_BACKEND_API_VERSION || !d->open || !d->count) {
            dlclose(h);
            return hb_errf(err, HB_ERR_BACKEND,
                           "%s has backend API version %d, this hetbench expects %d (rebuild the "
                           "module)", paths[i], version, HB_BACKEND_API_VERSION);
        }
        /* the handle is kept on purpose: see the top of the file */
        *desc = d;
        if (path && path_len) snprintf(path, path_len, "%s", paths[i]);
        return HB_OK;
    }
    char tried[768] = "";
    for (int i = 0; i < n; i++) {
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s%s", i ? ", " : "", paths[i]);
    }
    if (!module_built(name))
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "module not built (configure with HB_%s=ON); not found in: %s",
                       strcmp(name, "cuda") == 0 ? "CUDA" : "HIP", n ? tried : "(no path)");
    return hb_errf(err, HB_ERR_UNSUPPORTED,
                   "module not found (tried: %s; set HETBENCH_BACKEND_PATH)", n ? tried : "(no path)");
}

static int module_count(const char *name, hb_err *err) {
    const hb_backend_desc *d = NULL;
    hb_status s = hb_backend_module_load(name, &d, NULL, 0, err);
    if (s != HB_OK) return (int)s;
    return d->count(err);
}

static hb_status module_open(const char *name, int index, hb_backend **out, hb_err *err) {
    if (out) *out = NULL;
    const hb_backend_desc *d = NULL;
    HB_TRY(hb_backend_module_load(name, &d, NULL, 0, err));
    return d->open(index, out, err);
}

#else /* !HB_BACKEND_DL */

hb_status hb_backend_module_load(const char *name, const hb_backend_desc **desc, char *path,
                                 size_t path_len, hb_err *err) {
    *desc = NULL;
    if (path && path_len) path[0] = '\0';
    return hb_errf(err, HB_ERR_UNSUPPORTED,
                   "backend '%s': built without loadable modules (HB_BACKEND_DL=OFF)", name);
}

#endif /* HB_BACKEND_DL */

/* ---- the GPU descriptors: linked in, loaded, or not built ---- */

#if defined(HB_BACKEND_DL)
static hb_status cuda_open(int index, hb_backend **out, hb_err *err) {
    return module_open("cuda", index, out, err);
}
static int cuda_count(hb_err *err) { return module_count("cuda", err); }
static hb_status hip_open(int index, hb_backend **out, hb_err *err) {
    return module_open("hip", index, out, err);
}
static int hip_count(hb_err *err) { return module_count("hip", err); }
#define CUDA_OPEN cuda_open
#define CUDA_COUNT cuda_count
#define HIP_OPEN hip_open
#define HIP_COUNT hip_count
#else

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

#endif /* HB_BACKEND_DL */

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

hb_status hb_backend_open_pci(const char *name, const char *pci_bus_id, int index_hint,
                              hb_backend **out, hb_err *err) {
    if (!out) return hb_errf(err, HB_ERR_INTERNAL, "hb_backend_open_pci: out is NULL");
    *out = NULL;
    const hb_backend_desc *d = hb_backend_find(name);
    if (!d)
        return hb_errf(err, HB_ERR_INPUT, "unknown backend '%s' (known: cpu, cuda, hip)",
                       name ? name : "(null)");
    hb_err why = {{0}};
    int n = d->count(&why);
    if (n < 0) return hb_errf(err, (hb_status)n, "backend '%s': %s", d->name, why.msg);
    char seen[512] = "";
    for (int k = -1; k < n; k++) {
        const int i = k < 0 ? index_hint : k; /* the hint first, then every device in order */
        if (i < 0 || i >= n || (k >= 0 && k == index_hint)) continue;
        hb_backend *be = NULL;
        HB_TRY(hb_backend_open(name, i, &be, err));
        if (hb_pci_same(be->info.pci_bus_id, pci_bus_id)) {
            *out = be;
            return HB_OK;
        }
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s%d=%s", used ? ", " : "", i,
                 be->info.pci_bus_id[0] ? be->info.pci_bus_id : "?");
        hb_backend_close(be);
    }
    return hb_errf(err, HB_ERR_INPUT, "backend '%s': no device has PCI bus id %s (devices: %s)",
                   d->name, pci_bus_id ? pci_bus_id : "(null)", seen[0] ? seen : "none");
}

/* destroy() releases the context and the hb_backend itself: whoever created it frees it. */
void hb_backend_close(hb_backend *be) {
    if (!be) return;
    if (be->ops && be->ops->destroy)
        be->ops->destroy(be);
    else
        free(be);
}
