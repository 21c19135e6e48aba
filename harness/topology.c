/* topology.c - node discovery with hwloc 2.x: accelerators (PCI devices) and their locality,
 * the visibility variables, rank placement and CPU/memory binding. See topology.h for the
 * rules; this file is the only one in hetbench that includes hwloc.h. */
#include "topology.h"

#include <ctype.h>
#include <errno.h>
#include <hwloc.h> // defines: hwloc_topology_*, hwloc_bitmap_*, hwloc_get_*, hwloc_set_*bind
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hb_topology {
    hwloc_topology_t topo;
    int synthetic;                   /* loaded from XML (or not this system): never bind */
    char source[512];                /* the XML path or "this machine" */
    int n_accels;
    hb_accel *accels;                /* sorted by PCI bus id */
    hwloc_bitmap_t *localities;      /* [n_accels] locality cpusets */
};

enum { VENDOR_NVIDIA_ID = 0x10de, VENDOR_AMD_ID = 0x1002 };

/* ---- small helpers ------------------------------------------------------------------------ */

/* Writes set in list form ("0-15,32-47"), or hwloc's "0x..." mask form when the list does not
 * fit. Returns 0, or -1 when neither fits (buf = ""). */
static int set_to_str(hwloc_const_bitmap_t set, char *buf, size_t n) {
    int len = hwloc_bitmap_list_snprintf(buf, n, set);
    if (len >= 0 && (size_t)len < n) return 0;
    len = hwloc_bitmap_snprintf(buf, n, set);
    if (len >= 0 && (size_t)len < n) return 0;
    buf[0] = '\0';
    return -1;
}

/* Parses what set_to_str writes. Returns 0 or -1. */
static int str_to_set(const char *s, hwloc_bitmap_t set) {
    if (!s || !*s) return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return hwloc_bitmap_sscanf(set, s) == 0 ? 0 : -1;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c) && *c != ',' && *c != '-') return -1;
    return hwloc_bitmap_list_sscanf(set, s) == 0 ? 0 : -1;
}

/* "Core" for placement: hwloc's Core objects, or PUs on a platform where hwloc reports none. */
static hwloc_obj_type_t core_type(hwloc_topology_t topo) {
    return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

/* The OS index of the first NUMA node (hwloc logical order) whose cpuset covers all of set, or
 * -1. "First" matters where a memory-only node (HBM, CXL) shares its parent's cpuset with the
 * DDR node: the DDR node, listed first, is the one taken. */
static int numa_of_cpuset(hwloc_topology_t topo, hwloc_const_cpuset_t set) {
    if (hwloc_bitmap_iszero(set)) return -1;
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)))
        if (node->cpuset && hwloc_bitmap_isincluded(set, node->cpuset)) return (int)node->os_index;
    return -1;
}

/* Contiguous block j of n items cut into k blocks; the first n % k blocks have one more. */
static void block_of(int n, int k, int j, int *first, int *count) {
    int base = n / k, rem = n % k;
    *count = base + (j < rem ? 1 : 0);
    *first = j * base + (j < rem ? j : rem);
}

/* The cores (core_type) inside set, in logical order, into out (capacity max). Returns count. */
static int cores_inside(hwloc_topology_t topo, hwloc_const_cpuset_t set, hwloc_obj_t *out, int max) {
    hwloc_obj_type_t type = core_type(topo);
    int n = 0;
    hwloc_obj_t obj = NULL;
    while (n < max && (obj = hwloc_get_next_obj_inside_cpuset_by_type(topo, set, type, obj)))
        out[n++] = obj;
    return n;
}

/* ---- discovery ---------------------------------------------------------------------------- */

static int is_accel_class(unsigned class_id) {
    return class_id == 0x0300 || class_id == 0x0302 || class_id == 0x0380 || class_id == 0x1200;
}

typedef struct found_accel {
    hb_accel pub;
    unsigned domain, bus, dev, func;
    hwloc_bitmap_t locality;
} found_accel;

static int cmp_found(const void *a, const void *b) {
    const found_accel *x = a, *y = b;
    if (x->domain != y->domain) return x->domain < y->domain ? -1 : 1;
    if (x->bus != y->bus) return x->bus < y->bus ? -1 : 1;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->func != y->func) return x->func < y->func ? -1 : 1;
    return 0;
}

/* The GPU name: GPUModel of an OS device below the PCI device (cuda, nvml, rsmi, opencl), else
 * the PCI name from pci.ids, else "". */
static void accel_name(hwloc_obj_t pci, char *buf, size_t n) {
    for (hwloc_obj_t c = pci->io_first_child; c; c = c->next_sibling) {
        if (c->type != HWLOC_OBJ_OS_DEVICE) continue;
        const char *model = hwloc_obj_get_info_by_name(c, "GPUModel");
        if (model && *model) {
            snprintf(buf, n, "%s", model);
            return;
        }
    }
    const char *pcidev = hwloc_obj_get_info_by_name(pci, "PCIDevice");
    snprintf(buf, n, "%s", pcidev ? pcidev : "");
}

static hb_status find_accels(hb_topology *t, hb_err *err) {
    hwloc_topology_t topo = t->topo;
    int cap = 0;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));) cap++;
    if (cap == 0) return HB_OK;
    found_accel *f = calloc((size_t)cap, sizeof *f);
    if (!f) return hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
    int n = 0;
    hb_status st = HB_OK;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));) {
        const struct hwloc_pcidev_attr_s *pa = &o->attr->pcidev;
        hb_accel_vendor vendor;
        if (pa->vendor_id == VENDOR_NVIDIA_ID) vendor = HB_ACCEL_NVIDIA;
        else if (pa->vendor_id == VENDOR_AMD_ID) vendor = HB_ACCEL_AMD;
        else continue;
        if (!is_accel_class(pa->class_id)) continue; /* NVSwitch, HD audio, ... */
        found_accel *a = &f[n];
        a->domain = pa->domain;
        a->bus = pa->bus;
        a->dev = pa->dev;
        a->func = pa->func;
        a->pub.vendor = vendor;
        snprintf(a->pub.pci_bus_id, sizeof a->pub.pci_bus_id, "%04x:%02x:%02x.%01x", pa->domain,
                 (unsigned)pa->bus, (unsigned)pa->dev, (unsigned)pa->func);
        a->pub.pci_vendor_id = pa->vendor_id;
        a->pub.pci_device_id = pa->device_id;
        a->pub.pci_class = pa->class_id;
        accel_name(o, a->pub.name, sizeof a->pub.name);
        hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, o);
        a->locality = hwloc_bitmap_dup(anc && anc->cpuset ? anc->cpuset
                                                          : hwloc_topology_get_topology_cpuset(topo));
        if (!a->locality) {
            st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
            break;
        }
        n++;
        a->pub.numa_node = numa_of_cpuset(topo, a->locality);
        if (set_to_str(a->locality, a->pub.cpuset, sizeof a->pub.cpuset) != 0) {
            st = hb_errf(err, HB_ERR_UNSUPPORTED,
                         "topology: the locality cpuset of %s does not fit in %zu characters",
                         a->pub.pci_bus_id, sizeof a->pub.cpuset);
            break;
        }
    }
    if (st == HB_OK && n > 0) {
        qsort(f, (size_t)n, sizeof *f, cmp_found);
        t->accels = calloc((size_t)n, sizeof *t->accels);
        t->localities = calloc((size_t)n, sizeof *t->localities);
        if (!t->accels || !t->localities) {
            st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        } else {
            for (int i = 0; i < n; i++) {
                t->accels[i] = f[i].pub;
                t->localities[i] = f[i].locality; /* ownership moves to t */
                f[i].locality = NULL;
            }
            t->n_accels = n;
        }
    }
    for (int i = 0; i < n; i++) hwloc_bitmap_free(f[i].locality); /* NULL-safe */
    free(f);
    return st;
}

/* ---- load / free / queries ---------------------------------------------------------------- */

void hb_topology_free(hb_topology *t) {
    if (!t) return;
    if (t->localities)
        for (int i = 0; i < t->n_accels; i++) hwloc_bitmap_free(t->localities[i]);
    free(t->localities);
    free(t->accels);
    if (t->topo) hwloc_topology_destroy(t->topo);
    free(t);
}

static hb_status bad_xml(const char *xml, hb_err *err) {
    return hb_errf(err, HB_ERR_INPUT, "HETBENCH_TOPOLOGY=%s: not an hwloc XML topology (check it "
                   "with: lstopo-no-graphics -i %s)", xml, xml);
}

hb_status hb_topology_load(hb_topology **out, hb_err *err) {
    *out = NULL;
    /* an hwloc 3 library under a binary built for hwloc 2 would misread every structure */
    if ((hwloc_get_api_version() >> 16) != (HWLOC_API_VERSION >> 16))
        return hb_errf(err, HB_ERR_BACKEND, "topology: built for hwloc API 0x%x, running with 0x%x",
                       (unsigned)HWLOC_API_VERSION, hwloc_get_api_version());
    const char *xml = getenv("HETBENCH_TOPOLOGY");
    if (xml && !*xml) xml = NULL;
    if (xml) {
        /* hwloc's own messages for an unreadable file are vague: check it first */
        FILE *f = fopen(xml, "rb");
        if (!f)
            return hb_errf(err, HB_ERR_INPUT, "HETBENCH_TOPOLOGY=%s: cannot open: %s", xml,
                           strerror(errno));
        fclose(f);
    }
    hb_topology *t = calloc(1, sizeof *t);
    if (!t) return hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
    if (hwloc_topology_init(&t->topo) != 0) {
        free(t);
        return hb_errf(err, HB_ERR_NOMEM, "topology: hwloc_topology_init failed");
    }
    hb_status st = HB_OK;
    /* without this hwloc reports no PCI device at all */
    hwloc_topology_set_io_types_filter(t->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (xml) {
        snprintf(t->source, sizeof t->source, "%s", xml);
        if (hwloc_topology_set_xml(t->topo, xml) != 0)
            st = bad_xml(xml, err);
    } else {
        snprintf(t->source, sizeof t->source, "this machine");
    }
    if (st == HB_OK && hwloc_topology_load(t->topo) != 0) {
        if (xml)
            st = bad_xml(xml, err);
        else
            st = hb_errf(err, HB_ERR_BACKEND, "topology: hwloc cannot discover this machine: %s",
                         strerror(errno));
    }
    if (st == HB_OK) {
        /* HWLOC_XMLFILE / HWLOC_SYNTHETIC in the environment also make hwloc read something
         * other than this machine: treat that as synthetic too */
        t->synthetic = xml != NULL || !hwloc_topology_is_thissystem(t->topo);
        st = find_accels(t, err);
    }
    if (st != HB_OK) {
        hb_topology_free(t);
        return st;
    }
    *out = t;
    return HB_OK;
}

int hb_topology_is_synthetic(const hb_topology *t) { return t ? t->synthetic : 0; }

int hb_topology_accels(const hb_topology *t, const hb_accel **list) {
    if (list) *list = t ? t->accels : NULL;
    return t ? t->n_accels : 0;
}

/* Reads 1..max_digits hex digits at *s into *v and advances *s. Returns 0 or -1. */
static int hex_field(const char **s, int max_digits, unsigned long *v) {
    int n = 0;
    *v = 0;
    while (isxdigit((unsigned char)**s) && n < max_digits) {
        char c = (char)tolower((unsigned char)**s);
        *v = *v * 16 + (unsigned long)(c <= '9' ? c - '0' : c - 'a' + 10);
        (*s)++;
        n++;
    }
    return n > 0 && !isxdigit((unsigned char)**s) ? 0 : -1;
}

int hb_pci_bus_id_normalize(const char *in, char out[32]) {
    unsigned long f[4] = {0, 0, 0, 0}; /* domain, bus, device, function */
    out[0] = '\0';
    if (!in) return -1;
    const char *s = in;
    while (isspace((unsigned char)*s)) s++;
    /* "dddd:bb:dd.f", or lspci's "bb:dd.f" (domain 0) */
    int colons = 0;
    for (const char *c = s; *c; c++) colons += *c == ':';
    int k = colons == 2 ? 0 : 1;
    if (colons != 1 && colons != 2) return -1;
    for (; k < 4; k++) {
        static const int digits[4] = {8, 2, 2, 1};
        if (hex_field(&s, digits[k], &f[k]) != 0) return -1;
        char sep = k < 2 ? ':' : k == 2 ? '.' : '\0';
        if (*s != sep) return -1;
        if (sep) s++;
    }
    if (f[2] > 0x1f || f[3] > 7) return -1;
    snprintf(out, 32, "%04lx:%02lx:%02lx.%01lx", f[0], f[1], f[2], f[3]);
    return 0;
}

const hb_accel *hb_topology_find_accel(const hb_topology *t, const char *pci_bus_id) {
    char want[32];
    if (!t || hb_pci_bus_id_normalize(pci_bus_id, want) != 0) return NULL;
    for (int i = 0; i < t->n_accels; i++)
        if (strcmp(t->accels[i].pci_bus_id, want) == 0) return &t->accels[i];
    return NULL;
}

void hb_topology_summarize(const hb_topology *t, hb_topology_summary *s) {
    memset(s, 0, sizeof *s);
    if (!t) return;
    hwloc_topology_t topo = t->topo;
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    const char *host = hwloc_obj_get_info_by_name(root, "HostName");
    if (host && *host) snprintf(s->host, sizeof s->host, "%s", host);
    else if (t->synthetic || gethostname(s->host, sizeof s->host - 1) != 0)
        snprintf(s->host, sizeof s->host, "unknown");
    hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
    const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
    if (!model) model = hwloc_obj_get_info_by_name(root, "CPUModel");
    snprintf(s->cpu_model, sizeof s->cpu_model, "%s", model ? model : "");
    snprintf(s->source, sizeof s->source, "%s", t->source);
    s->synthetic = t->synthetic;
    s->n_packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    s->n_numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    s->n_cores = hwloc_get_nbobjs_by_type(topo, core_type(topo));
    s->n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    s->n_accels = t->n_accels;
}

/* ---- visibility --------------------------------------------------------------------------- */

/* Applies visibility variable `var` to `in` (n_in accelerator indices, in the vendor runtime's
 * current order) and writes the selection, in list order, to out. `ctx` describes `in` for
 * messages ("this node has 8 NVIDIA devices"). Unset: out = in. See topology.h for the rules. */
static hb_status apply_visible(const char *var, const char *ctx, const char *lookup_lib,
                               const int *in, int n_in, int *out, int *n_out, hb_err *err) {
    const char *val = getenv(var);
    *n_out = 0;
    if (!val) {
        memcpy(out, in, sizeof *in * (size_t)n_in);
        *n_out = n_in;
        return HB_OK;
    }
    if (val[strspn(val, " \t")] == '\0') return HB_OK; /* "" or blanks: no device */
    for (const char *p = val;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) p++, len--;
        while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
        char item[64];
        if (len == 0) return hb_errf(err, HB_ERR_INPUT, "%s='%s': empty entry in the list", var, val);
        if (len >= sizeof item) return hb_errf(err, HB_ERR_INPUT, "%s='%s': entry too long", var, val);
        memcpy(item, p, len);
        item[len] = '\0';
        if (strncmp(item, "GPU-", 4) == 0 || strncmp(item, "MIG-", 4) == 0)
            return hb_errf(err, HB_ERR_INPUT,
                           "%s='%s': '%s' is a UUID; hetbench matches devices by PCI bus id and "
                           "cannot resolve UUIDs without %s: use device indices (in PCI bus id "
                           "order)", var, val, item, lookup_lib);
        char *num_end;
        errno = 0;
        long idx = strtol(item, &num_end, 10);
        if (*num_end || errno)
            return hb_errf(err, HB_ERR_INPUT, "%s='%s': '%s' is not a device index", var, val, item);
        if (idx < 0) break; /* CUDA's rule: a negative index ends the list ("-1": no device) */
        if (idx >= n_in)
            return hb_errf(err, HB_ERR_INPUT, "%s='%s': index %ld is out of range: %s", var, val, idx,
                           ctx);
        for (int i = 0; i < *n_out; i++)
            if (out[i] == in[idx])
                return hb_errf(err, HB_ERR_INPUT, "%s='%s': index %ld appears twice", var, val, idx);
        out[(*n_out)++] = in[idx];
        if (!end) break;
        p = end + 1;
    }
    return HB_OK;
}

typedef struct visible {
    int n_nv, n_amd;                 /* devices of each vendor on the node */
    int n_vis_nv, n_vis_amd;         /* visible ones */
    int *vis_nv, *vis_amd;           /* accel indices in runtime order */
} visible;

static void visible_free(visible *v) {
    free(v->vis_nv);
    free(v->vis_amd);
}

/* The visible devices of each vendor. A vendor's variables are ignored when the node has none
 * of its devices (Slurm may set CUDA_VISIBLE_DEVICES on an AMD node). */
static hb_status find_visible(const hb_topology *t, visible *v, hb_err *err) {
    memset(v, 0, sizeof *v);
    int n = t->n_accels;
    int *nv = malloc(sizeof(int) * (size_t)(n + 1)), *amd = malloc(sizeof(int) * (size_t)(n + 1));
    int *tmp = malloc(sizeof(int) * (size_t)(n + 1));
    v->vis_nv = malloc(sizeof(int) * (size_t)(n + 1));
    v->vis_amd = malloc(sizeof(int) * (size_t)(n + 1));
    hb_status st = HB_OK;
    if (!nv || !amd || !tmp || !v->vis_nv || !v->vis_amd) {
        st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (t->accels[i].vendor == HB_ACCEL_NVIDIA) nv[v->n_nv++] = i;
        else amd[v->n_amd++] = i;
    }
    char ctx[256];
    if (v->n_nv > 0) {
        snprintf(ctx, sizeof ctx, "this node has %d NVIDIA devices (indices 0-%d)", v->n_nv,
                 v->n_nv - 1);
        st = apply_visible("CUDA_VISIBLE_DEVICES", ctx, "NVML", nv, v->n_nv, v->vis_nv, &v->n_vis_nv,
                           err);
        if (st != HB_OK) goto done;
    }
    if (v->n_amd > 0) {
        /* ROCm: ROCR_VISIBLE_DEVICES selects first, HIP_VISIBLE_DEVICES indexes what remains */
        int n_tmp = 0;
        snprintf(ctx, sizeof ctx, "this node has %d AMD devices (indices 0-%d)", v->n_amd,
                 v->n_amd - 1);
        st = apply_visible("ROCR_VISIBLE_DEVICES", ctx, "ROCm SMI", amd, v->n_amd, tmp, &n_tmp, err);
        if (st != HB_OK) goto done;
        const char *rocr = getenv("ROCR_VISIBLE_DEVICES");
        if (rocr)
            snprintf(ctx, sizeof ctx, "%d AMD devices remain after ROCR_VISIBLE_DEVICES='%.64s'",
                     n_tmp, rocr);
        st = apply_visible("HIP_VISIBLE_DEVICES", ctx, "ROCm SMI", tmp, n_tmp, v->vis_amd,
                           &v->n_vis_amd, err);
        if (st != HB_OK) goto done;
    }
done:
    free(nv);
    free(amd);
    free(tmp);
    if (st != HB_OK) visible_free(v);
    return st;
}

/* Appends "N of M NVIDIA (CUDA_VISIBLE_DEVICES='...')" and/or the AMD part to buf: which
 * devices are visible and which variables restricted them. */
static void describe_visible(const visible *v, int want_nv, int want_amd, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
#define APPEND(...)                                                                      \
    do {                                                                                 \
        if (len < n) {                                                                   \
            int w_ = snprintf(buf + len, n - len, __VA_ARGS__);                           \
            if (w_ > 0) len += (size_t)w_;                                               \
        }                                                                                \
    } while (0)
    if (want_nv) {
        APPEND("%d of %d NVIDIA", v->n_vis_nv, v->n_nv);
        const char *e = getenv("CUDA_VISIBLE_DEVICES");
        if (e && v->n_nv > 0) APPEND(", restricted by CUDA_VISIBLE_DEVICES='%.64s'", e);
    }
    if (want_amd) {
        APPEND("%s%d of %d AMD", want_nv ? "; " : "", v->n_vis_amd, v->n_amd);
        const char *r = getenv("ROCR_VISIBLE_DEVICES"), *h = getenv("HIP_VISIBLE_DEVICES");
        if (r && v->n_amd > 0) APPEND(", restricted by ROCR_VISIBLE_DEVICES='%.64s'", r);
        if (h && v->n_amd > 0) APPEND("%s HIP_VISIBLE_DEVICES='%.64s'", r ? " and" : ", restricted by", h);
    }
#undef APPEND
}

/* ---- placement ---------------------------------------------------------------------------- */

typedef enum pref { PREF_AUTO, PREF_CPU, PREF_CUDA, PREF_HIP } pref;

/* Fills out->cpuset / n_cpus / n_pus / numa_node from the cores cores[first .. first+count). */
static hb_status fill_cpus(const hb_topology *t, hwloc_obj_t *cores, int first, int count,
                           hb_placement *out, hb_err *err) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) return hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
    for (int i = first; i < first + count; i++) hwloc_bitmap_or(set, set, cores[i]->cpuset);
    out->n_cpus = count;
    out->n_pus = hwloc_bitmap_weight(set);
    out->llc_bytes = 0; /* the deepest cache level present: its caches that serve these cores */
    for (int lvl = 5; lvl >= 1 && out->llc_bytes == 0; lvl--) {
        hwloc_obj_type_t ct = (hwloc_obj_type_t)(HWLOC_OBJ_L1CACHE + lvl - 1);
        for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(t->topo, ct, o));)
            if (o->cpuset && hwloc_bitmap_intersects(o->cpuset, set) && o->attr)
                out->llc_bytes += (int64_t)o->attr->cache.size;
    }
    int numa = numa_of_cpuset(t->topo, set);
    if (numa >= 0 || !out->has_device) out->numa_node = numa;
    int bad = set_to_str(set, out->cpuset, sizeof out->cpuset);
    hwloc_bitmap_free(set);
    if (bad)
        return hb_errf(err, HB_ERR_UNSUPPORTED, "topology: the cpuset of local rank does not fit in "
                       "%zu characters", sizeof out->cpuset);
    return HB_OK;
}

/* CPU ranks: NUMA-aware blocks of whole cores (topology.h). */
static hb_status place_cpu(const hb_topology *t, int rank, int size, int share, hb_placement *out,
                           hb_err *err) {
    hwloc_topology_t topo = t->topo;
    hwloc_obj_type_t type = core_type(topo);
    int n_all = hwloc_get_nbobjs_by_type(topo, type);
    int n_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    if (n_all <= 0) return hb_errf(err, HB_ERR_BACKEND, "topology: hwloc reports no CPU cores");
    /* order: the cores grouped by NUMA node (each core goes to the first node covering it);
     * count[j] cores for node j; a last pseudo-node j = n_nodes holds any core outside them */
    int n_groups = n_nodes + 1;
    hwloc_obj_t *order = calloc((size_t)n_all, sizeof *order);
    char *taken = calloc((size_t)n_all, 1);
    int *count = calloc((size_t)n_groups, sizeof *count);
    int *quota = calloc((size_t)n_groups, sizeof *quota);
    char *extra = calloc((size_t)n_groups, 1);
    hb_status st = HB_OK;
    if (!order || !taken || !count || !quota || !extra) {
        st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        goto done;
    }
    int n = 0;
    for (int j = 0; j < n_groups; j++) {
        hwloc_obj_t node = j < n_nodes ? hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)j)
                                       : NULL;
        for (hwloc_obj_t c = NULL; (c = hwloc_get_next_obj_by_type(topo, type, c));) {
            if (c->logical_index >= (unsigned)n_all || taken[c->logical_index]) continue;
            if (node && !(node->cpuset && hwloc_bitmap_isincluded(c->cpuset, node->cpuset))) continue;
            taken[c->logical_index] = 1;
            order[n++] = c;
            count[j]++;
        }
    }
    if (size > n) {
        if (!share)
            st = hb_errf(err, HB_ERR_INPUT,
                         "%d CPU ranks on this node but it has only %d cores: start at most %d "
                         "ranks per node, or pass --share-devices to let ranks share cores "
                         "round-robin", size, n, n);
        else
            st = fill_cpus(t, order, rank % n, 1, out, err);
        goto done;
    }
    /* fewer ranks than NUMA nodes with cores: each rank takes a block of whole nodes */
    int n_used = 0;
    for (int j = 0; j < n_groups; j++) n_used += count[j] > 0;
    if (size < n_used) {
        int first, cnt, first_core = 0, n_cores = 0, g = 0;
        block_of(n_used, size, rank, &first, &cnt);
        for (int j = 0; j < n_groups; j++) {
            if (count[j] == 0) continue;
            if (g < first) first_core += count[j];
            else if (g < first + cnt) n_cores += count[j];
            g++;
        }
        st = fill_cpus(t, order, first_core, n_cores, out, err);
        goto done;
    }
    /* ranks per node in proportion to its cores, largest remainder first (ties: first node).
     * A node with a remainder has size*c/n < c, so floor + 1 <= c: never more ranks than cores. */
    int assigned = 0;
    for (int j = 0; j < n_groups; j++) {
        quota[j] = (int)((long long)size * count[j] / n);
        assigned += quota[j];
    }
    for (; assigned < size; assigned++) {
        int best = -1;
        long long best_rem = 0;
        for (int j = 0; j < n_groups; j++) {
            long long rem = (long long)size * count[j] % n;
            if (!extra[j] && rem > best_rem) {
                best = j;
                best_rem = rem;
            }
        }
        if (best < 0) {
            st = hb_errf(err, HB_ERR_INTERNAL, "topology: rank quotas do not add up");
            goto done;
        }
        extra[best] = 1;
        quota[best]++;
    }
    /* rank -> node in blocks, then a block of that node's cores */
    int first_rank = 0, first_core = 0;
    for (int j = 0; j < n_groups; j++) {
        if (rank < first_rank + quota[j]) {
            int first, cnt;
            block_of(count[j], quota[j], rank - first_rank, &first, &cnt);
            st = fill_cpus(t, order, first_core + first, cnt, out, err);
            goto done;
        }
        first_rank += quota[j];
        first_core += count[j];
    }
    st = hb_errf(err, HB_ERR_INTERNAL, "topology: local rank %d not placed", rank);
done:
    free(order);
    free(taken);
    free(count);
    free(quota);
    free(extra);
    return st;
}

/* Device ranks: slot list, sharing check, locality split (topology.h). */
static hb_status place_device(const hb_topology *t, const visible *v, pref pf, int rank, int size,
                              int share, hb_placement *out, hb_err *err) {
    int want_nv = pf != PREF_HIP, want_amd = pf != PREF_CUDA;
    int n_slots = (want_nv ? v->n_vis_nv : 0) + (want_amd ? v->n_vis_amd : 0);
    char why[512];
    if (size > n_slots && !share) {
        describe_visible(v, want_nv && v->n_nv > 0, want_amd && v->n_amd > 0, why, sizeof why);
        return hb_errf(err, HB_ERR_INPUT,
                       "%d local ranks but this node has only %d visible accelerator%s (%s): "
                       "start at most %d ranks per node, or pass --share-devices to let ranks "
                       "share devices round-robin", size, n_slots, n_slots == 1 ? "" : "s", why,
                       n_slots);
    }
    int *slot = malloc(sizeof(int) * (size_t)n_slots);
    int *slot_index = malloc(sizeof(int) * (size_t)n_slots); /* runtime device index */
    hwloc_obj_t *cores = NULL;
    hb_status st = HB_OK;
    if (!slot || !slot_index) {
        st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        goto done;
    }
    /* the slots follow the PCI bus id order of the visible devices; each vendor's slots take
     * that vendor's devices in runtime order */
    int i_nv = 0, i_amd = 0, s = 0;
    for (int a = 0; a < t->n_accels; a++) {
        int is_nv = t->accels[a].vendor == HB_ACCEL_NVIDIA;
        const int *vis = is_nv ? v->vis_nv : v->vis_amd;
        int n_vis = is_nv ? v->n_vis_nv : v->n_vis_amd;
        if (is_nv ? !want_nv : !want_amd) continue;
        int seen = 0;
        for (int k = 0; k < n_vis; k++) seen |= vis[k] == a;
        if (!seen) continue;
        if (is_nv) {
            slot_index[s] = i_nv;
            slot[s++] = v->vis_nv[i_nv++];
        } else {
            slot_index[s] = i_amd;
            slot[s++] = v->vis_amd[i_amd++];
        }
    }
    int my_slot = rank % n_slots;
    int dev = slot[my_slot];
    out->has_device = 1;
    out->accel = t->accels[dev];
    snprintf(out->backend, sizeof out->backend, "%s",
             out->accel.vendor == HB_ACCEL_NVIDIA ? "cuda" : "hip");
    out->device_index = slot_index[my_slot];
    out->shared = size > n_slots && (rank >= n_slots || rank + n_slots < size);
    out->numa_node = out->accel.numa_node;
    /* the local ranks whose devices have the same locality share its cores */
    hwloc_const_cpuset_t loc = t->localities[dev];
    int k = 0, j = 0;
    for (int r = 0; r < size; r++) {
        if (!hwloc_bitmap_isequal(t->localities[slot[r % n_slots]], loc)) continue;
        if (r == rank) j = k;
        k++;
    }
    int n_all = hwloc_get_nbobjs_by_type(t->topo, core_type(t->topo));
    cores = calloc((size_t)(n_all > 0 ? n_all : 1), sizeof *cores);
    if (!cores) {
        st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        goto done;
    }
    int n = cores_inside(t->topo, loc, cores, n_all);
    if (n == 0) {
        st = hb_errf(err, HB_ERR_BACKEND, "topology: the locality of %s (%s) holds no CPU core",
                     out->accel.pci_bus_id, out->accel.cpuset);
        goto done;
    }
    if (k > n) {
        st = fill_cpus(t, cores, j % n, 1, out, err); /* more ranks than cores: share cores */
    } else {
        int first, cnt;
        block_of(n, k, j, &first, &cnt);
        st = fill_cpus(t, cores, first, cnt, out, err);
    }
done:
    free(slot);
    free(slot_index);
    free(cores);
    return st;
}

hb_status hb_topology_place(const hb_topology *t, int local_rank, int local_size,
                            const char *backend_pref, int share, hb_placement *out, hb_err *err) {
    memset(out, 0, sizeof *out);
    out->numa_node = -1;
    out->device_index = -1;
    if (!t || local_size < 1 || local_rank < 0 || local_rank >= local_size)
        return hb_errf(err, HB_ERR_INTERNAL, "topology: bad local rank %d of %d", local_rank,
                       local_size);
    pref pf;
    if (!backend_pref || strcmp(backend_pref, "auto") == 0) pf = PREF_AUTO;
    else if (strcmp(backend_pref, "cpu") == 0) pf = PREF_CPU;
    else if (strcmp(backend_pref, "cuda") == 0) pf = PREF_CUDA;
    else if (strcmp(backend_pref, "hip") == 0) pf = PREF_HIP;
    else
        return hb_errf(err, HB_ERR_INPUT, "--backend %s: unknown backend (accepted: auto, cpu, cuda, hip)",
                       backend_pref);
    hb_status st = HB_OK;
    if (pf != PREF_CPU) {
        visible v;
        HB_TRY(find_visible(t, &v, err));
        int n_want = (pf != PREF_HIP ? v.n_vis_nv : 0) + (pf != PREF_CUDA ? v.n_vis_amd : 0);
        if (n_want > 0) {
            st = place_device(t, &v, pf, local_rank, local_size, share, out, err);
        } else if (pf != PREF_AUTO) {
            char why[512];
            describe_visible(&v, pf == PREF_CUDA, pf == PREF_HIP, why, sizeof why);
            st = hb_errf(err, HB_ERR_INPUT, "--backend %s: no %s accelerator is visible on this node "
                         "(%s)", backend_pref, pf == PREF_CUDA ? "NVIDIA" : "AMD", why);
        } else {
            pf = PREF_CPU; /* auto with nothing visible: a CPU rank */
        }
        visible_free(&v);
    }
    if (st == HB_OK && pf == PREF_CPU) {
        snprintf(out->backend, sizeof out->backend, "cpu");
        st = place_cpu(t, local_rank, local_size, share, out, err);
    }
    if (st != HB_OK) {
        memset(out, 0, sizeof *out);
        out->numa_node = -1;
        out->device_index = -1;
    }
    return st;
}

/* ---- binding ------------------------------------------------------------------------------ */

hb_status hb_topology_bind(const hb_topology *t, hb_placement *p, hb_err *err) {
    if (!t || !p) return hb_errf(err, HB_ERR_INTERNAL, "topology: bind without a placement");
    if (t->synthetic) {
        snprintf(p->binding, sizeof p->binding, "not bound (synthetic topology)");
        return HB_OK;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc(), nodes = hwloc_bitmap_alloc();
    hb_status st = HB_OK;
    if (!set || !nodes) {
        st = hb_errf(err, HB_ERR_NOMEM, "topology: out of memory");
        goto done;
    }
    if (str_to_set(p->cpuset, set) != 0 || hwloc_bitmap_iszero(set)) {
        st = hb_errf(err, HB_ERR_INPUT, "topology: cannot bind to cpuset '%s'", p->cpuset);
        goto done;
    }
    /* PROCESS: every thread of the process, not only the caller */
    if (hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_PROCESS) != 0) {
        snprintf(p->binding, sizeof p->binding, "not bound: %s", strerror(errno));
        goto done;
    }
    /* memory: the rank's NUMA node, or the nodes of its cpuset when it spans several */
    if (p->numa_node >= 0) hwloc_bitmap_only(nodes, (unsigned)p->numa_node);
    else hwloc_cpuset_to_nodeset(t->topo, set, nodes);
    if (hwloc_set_membind(t->topo, nodes, HWLOC_MEMBIND_BIND,
                          HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET) != 0)
        snprintf(p->binding, sizeof p->binding, "bound (memory not bound: %s)", strerror(errno));
    else
        snprintf(p->binding, sizeof p->binding, "bound");
done:
    hwloc_bitmap_free(set);
    hwloc_bitmap_free(nodes);
    return st;
}
