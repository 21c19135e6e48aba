/* test_topology.c - hwloc discovery and rank placement (harness/topology.c) on the shipped XML
 * topologies (the XML files in tests/topologies/) and on this machine: the exact rank -> device -> NUMA node
 * -> cpuset mapping for 1, 2, 4 and 8 local ranks on every XML, non-GPU PCI devices ignored,
 * the visibility variables (subsets, reorders, empty, UUIDs, bad entries, ROCR then HIP),
 * device and core sharing, backend preferences, binding, and bad HETBENCH_TOPOLOGY files.
 * argv[1]: the directory of the XML topologies. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/topology.h"
#include "hbtest.h"

static const char *topo_dir = ".";

static void clear_env(void) {
    unsetenv("HETBENCH_TOPOLOGY");
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("HIP_VISIBLE_DEVICES");
    unsetenv("ROCR_VISIBLE_DEVICES");
    unsetenv("HWLOC_XMLFILE");
    unsetenv("HWLOC_SYNTHETIC");
}

/* Loads tests/topologies/<name> through HETBENCH_TOPOLOGY; NULL (and a failure) if it fails. */
static hb_topology *load_xml(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", topo_dir, name);
    setenv("HETBENCH_TOPOLOGY", path, 1);
    hb_topology *t = NULL;
    hb_err e = {{0}};
    hb_status st = hb_topology_load(&t, &e);
    CHECK_MSG(st == HB_OK && t, "%s: status %d: %s", name, (int)st, e.msg);
    unsetenv("HETBENCH_TOPOLOGY");
    return t;
}

/* Number of CPUs in a list-form cpuset ("0-13,112-125" -> 28); -1 if it does not parse. */
static int list_count(const char *s) {
    int n = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s) return -1;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s || b < a) return -1;
        }
        n += (int)(b - a + 1);
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return n;
}

/* The expected placement of one rank; bus NULL for a CPU rank. */
typedef struct want {
    const char *bus, *backend;
    int index, numa;
    const char *cpuset;
    int n_cpus;
} want;

/* Places every rank of `size` and compares with w[rank]. */
static void check_map(const hb_topology *t, const char *what, int size, const char *pref, int share,
                      const want *w) {
    for (int r = 0; r < size; r++) {
        hb_placement p;
        hb_err e = {{0}};
        hb_status st = hb_topology_place(t, r, size, pref, share, &p, &e);
        CHECK_MSG(st == HB_OK, "%s size %d rank %d: status %d: %s", what, size, r, (int)st, e.msg);
        if (st != HB_OK) continue;
        const want *x = &w[r];
        CHECK_MSG(p.has_device == (x->bus != NULL), "%s size %d rank %d: has_device %d", what, size,
                  r, p.has_device);
        if (x->bus)
            CHECK_MSG(strcmp(p.accel.pci_bus_id, x->bus) == 0, "%s size %d rank %d: device %s, want %s",
                      what, size, r, p.accel.pci_bus_id, x->bus);
        CHECK_MSG(strcmp(p.backend, x->backend) == 0, "%s size %d rank %d: backend %s, want %s", what,
                  size, r, p.backend, x->backend);
        CHECK_MSG(p.device_index == x->index, "%s size %d rank %d: device index %d, want %d", what,
                  size, r, p.device_index, x->index);
        CHECK_MSG(p.numa_node == x->numa, "%s size %d rank %d: numa %d, want %d", what, size, r,
                  p.numa_node, x->numa);
        CHECK_MSG(strcmp(p.cpuset, x->cpuset) == 0, "%s size %d rank %d: cpuset %s, want %s", what,
                  size, r, p.cpuset, x->cpuset);
        CHECK_MSG(p.n_cpus == x->n_cpus, "%s size %d rank %d: n_cpus %d, want %d", what, size, r,
                  p.n_cpus, x->n_cpus);
        CHECK_MSG(p.n_pus == list_count(x->cpuset), "%s size %d rank %d: n_pus %d for %s", what, size,
                  r, p.n_pus, x->cpuset);
        CHECK_MSG(p.binding[0] == '\0', "%s size %d rank %d: binding '%s' before bind", what, size, r,
                  p.binding);
    }
}

/* A placement that must fail with HB_ERR_INPUT and a message holding each of want1..want3. */
static void check_place_error(const hb_topology *t, int line, int rank, int size, const char *pref,
                              int share, const char *w1, const char *w2, const char *w3) {
    hb_placement p;
    hb_err e = {{0}};
    hb_status st = hb_topology_place(t, rank, size, pref, share, &p, &e);
    CHECK_MSG(st == HB_ERR_INPUT, "line %d: status %d (%s)", line, (int)st, e.msg);
    const char *w[3] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        if (w[i]) CHECK_MSG(strstr(e.msg, w[i]) != NULL, "line %d: message '%s' lacks '%s'", line, e.msg, w[i]);
    CHECK_MSG(strchr(e.msg, '\n') == NULL, "line %d: message has a newline", line);
    CHECK_MSG(p.has_device == 0 && p.cpuset[0] == '\0' && p.numa_node == -1,
              "line %d: placement not cleared on error", line);
}
#define PLACE_ERROR(t, rank, size, pref, share, w1, w2, w3) \
    check_place_error(t, __LINE__, rank, size, pref, share, w1, w2, w3)

/* One rank's placement (fails the check and returns a zeroed one on error). */
static hb_placement place1(const hb_topology *t, int rank, int size, const char *pref, int share) {
    hb_placement p;
    hb_err e = {{0}};
    hb_status st = hb_topology_place(t, rank, size, pref, share, &p, &e);
    CHECK_MSG(st == HB_OK, "rank %d of %d (%s): status %d: %s", rank, size, pref ? pref : "auto",
              (int)st, e.msg);
    return p;
}

/* ---- the 8x H100 node ----------------------------------------------------------------------- */

static const char *h100_bus[8] = {"0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
                                  "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"};

static void test_h100(void) {
    hb_topology *t = load_xml("h100x8-2socket.xml");
    if (!t) return;
    CHECK(hb_topology_is_synthetic(t) == 1);

    /* discovery: exactly the 8 GPUs, in bus order, with locality; NVSwitches (10de, class 0680),
     * the ASPEED VGA (class 0300, other vendor), ConnectX-7 NICs and NVMe are not accelerators */
    const hb_accel *a;
    int n = hb_topology_accels(t, &a);
    CHECK_MSG(n == 8, "h100: %d accelerators", n);
    for (int i = 0; i < n && i < 8; i++) {
        CHECK_STR(a[i].pci_bus_id, h100_bus[i]);
        CHECK(a[i].vendor == HB_ACCEL_NVIDIA);
        CHECK(a[i].pci_vendor_id == 0x10de && a[i].pci_device_id == 0x2330 && a[i].pci_class == 0x0302);
        CHECK_STR(a[i].name, "GH100 [H100 SXM5 80GB]");
        CHECK(a[i].numa_node == (i < 4 ? 0 : 1));
        CHECK_STR(a[i].cpuset, i < 4 ? "0-55,112-167" : "56-111,168-223");
    }
    CHECK(hb_topology_find_accel(t, "0000:03:00.0") == NULL); /* ASPEED VGA */
    CHECK(hb_topology_find_accel(t, "0000:05:00.0") == NULL); /* NVSwitch */
    CHECK(hb_topology_find_accel(t, "0000:19:00.0") == NULL); /* ConnectX-7 */
    CHECK(hb_topology_find_accel(t, "0000:4e:00.0") == NULL); /* NVMe */
    /* the join with vendor libraries: NVML's 8-digit domain, upper case, lspci's short form */
    const hb_accel *f = hb_topology_find_accel(t, "00000000:5D:00.0");
    CHECK(f && strcmp(f->pci_bus_id, "0000:5d:00.0") == 0);
    CHECK(hb_topology_find_accel(t, "ab:00.0") == &a[5]);

    hb_topology_summary s;
    hb_topology_summarize(t, &s);
    CHECK_STR(s.host, "dgx-h100");
    CHECK_STR(s.cpu_model, "Intel(R) Xeon(R) Platinum 8480C");
    CHECK(s.synthetic == 1 && strstr(s.source, "h100x8-2socket.xml") != NULL);
    CHECK_MSG(s.n_packages == 2 && s.n_numa_nodes == 2 && s.n_cores == 112 && s.n_pus == 224 &&
                  s.n_accels == 8,
              "summary: %d packages %d numa %d cores %d pus %d accels", s.n_packages, s.n_numa_nodes,
              s.n_cores, s.n_pus, s.n_accels);

    /* 1, 2, 4, 8 ranks: rank i -> GPU i; ranks on one socket split its 56 cores (+HT siblings) */
    const want w1[] = {{h100_bus[0], "cuda", 0, 0, "0-55,112-167", 56}};
    check_map(t, "h100", 1, "auto", 0, w1);
    const want w2[] = {{h100_bus[0], "cuda", 0, 0, "0-27,112-139", 28},
                       {h100_bus[1], "cuda", 1, 0, "28-55,140-167", 28}};
    check_map(t, "h100", 2, "auto", 0, w2);
    const want w4[] = {{h100_bus[0], "cuda", 0, 0, "0-13,112-125", 14},
                       {h100_bus[1], "cuda", 1, 0, "14-27,126-139", 14},
                       {h100_bus[2], "cuda", 2, 0, "28-41,140-153", 14},
                       {h100_bus[3], "cuda", 3, 0, "42-55,154-167", 14}};
    check_map(t, "h100", 4, "auto", 0, w4);
    check_map(t, "h100 cuda", 4, "cuda", 0, w4);
    const want w8[] = {{h100_bus[0], "cuda", 0, 0, "0-13,112-125", 14},
                       {h100_bus[1], "cuda", 1, 0, "14-27,126-139", 14},
                       {h100_bus[2], "cuda", 2, 0, "28-41,140-153", 14},
                       {h100_bus[3], "cuda", 3, 0, "42-55,154-167", 14},
                       {h100_bus[4], "cuda", 4, 1, "56-69,168-181", 14},
                       {h100_bus[5], "cuda", 5, 1, "70-83,182-195", 14},
                       {h100_bus[6], "cuda", 6, 1, "84-97,196-209", 14},
                       {h100_bus[7], "cuda", 7, 1, "98-111,210-223", 14}};
    check_map(t, "h100", 8, "auto", 0, w8);
    check_map(t, "h100 share", 8, "auto", 1, w8); /* share changes nothing when devices suffice */
    hb_placement p = place1(t, 3, 8, "auto", 0);
    CHECK(p.shared == 0);

    /* more ranks than devices: the error names the count and --share-devices */
    PLACE_ERROR(t, 0, 9, "auto", 0, "9 local ranks", "only 8 visible accelerators", "--share-devices");
    /* with share: round-robin, and the 8 ranks of each socket split its cores (7 each) */
    p = place1(t, 8, 16, "auto", 1);
    CHECK_STR(p.accel.pci_bus_id, h100_bus[0]);
    CHECK(p.device_index == 0 && p.shared == 1);
    CHECK_STR(p.cpuset, "28-34,140-146"); /* 5th of ranks 0-3,8-11 on socket 0 */
    p = place1(t, 0, 16, "auto", 1);
    CHECK_STR(p.cpuset, "0-6,112-118");
    CHECK(p.shared == 1 && p.n_cpus == 7);
    p = place1(t, 15, 16, "auto", 1);
    CHECK_STR(p.accel.pci_bus_id, h100_bus[7]);
    CHECK_STR(p.cpuset, "105-111,217-223");

    /* backend cpu on a GPU node: CPU placement, one socket per rank */
    const want c2[] = {{NULL, "cpu", -1, 0, "0-55,112-167", 56}, {NULL, "cpu", -1, 1, "56-111,168-223", 56}};
    check_map(t, "h100 cpu", 2, "cpu", 0, c2);
    /* backend hip on an NVIDIA-only node; an unknown backend */
    PLACE_ERROR(t, 0, 1, "hip", 0, "--backend hip", "no AMD accelerator", "0 of 0 AMD");
    PLACE_ERROR(t, 0, 1, "rocm", 0, "rocm", "auto, cpu, cuda, hip", NULL);

    /* CUDA_VISIBLE_DEVICES: reorder "3,1" -> rank 0 gets physical 3 (CUDA device 0) */
    setenv("CUDA_VISIBLE_DEVICES", "3,1", 1);
    const want v31[] = {{h100_bus[3], "cuda", 0, 0, "0-27,112-139", 28},
                        {h100_bus[1], "cuda", 1, 0, "28-55,140-167", 28}};
    check_map(t, "h100 CVD=3,1", 2, "auto", 0, v31);
    PLACE_ERROR(t, 0, 3, "auto", 0, "only 2 visible accelerators", "CUDA_VISIBLE_DEVICES='3,1'", "--share-devices");
    PLACE_ERROR(t, 0, 3, "auto", 0, "2 of 8 NVIDIA", NULL, NULL);
    /* a subset on the second socket, with blanks around the entries */
    setenv("CUDA_VISIBLE_DEVICES", " 4, 5 ,6,7 ", 1);
    const want v47[] = {{h100_bus[4], "cuda", 0, 1, "56-69,168-181", 14},
                        {h100_bus[5], "cuda", 1, 1, "70-83,182-195", 14},
                        {h100_bus[6], "cuda", 2, 1, "84-97,196-209", 14},
                        {h100_bus[7], "cuda", 3, 1, "98-111,210-223", 14}};
    check_map(t, "h100 CVD=4-7", 4, "auto", 0, v47);
    /* a negative index ends the list (CUDA's rule) */
    setenv("CUDA_VISIBLE_DEVICES", "6,-1,2", 1);
    const want v6[] = {{h100_bus[6], "cuda", 0, 1, "56-111,168-223", 56}};
    check_map(t, "h100 CVD=6,-1,2", 1, "auto", 0, v6);
    PLACE_ERROR(t, 0, 2, "auto", 0, "only 1 visible accelerator (", "1 of 8 NVIDIA", "--share-devices");
    /* empty list: no NVIDIA device -> auto places CPU ranks, cuda is an error */
    setenv("CUDA_VISIBLE_DEVICES", "", 1);
    check_map(t, "h100 CVD=''", 2, "auto", 0, c2);
    PLACE_ERROR(t, 0, 1, "cuda", 0, "no NVIDIA accelerator", "0 of 8 NVIDIA", "CUDA_VISIBLE_DEVICES=''");
    setenv("CUDA_VISIBLE_DEVICES", "-1", 1);
    check_map(t, "h100 CVD=-1", 2, "auto", 0, c2);
    /* what cannot be resolved or is wrong */
    setenv("CUDA_VISIBLE_DEVICES", "GPU-8a7b3c2d-1e4f-5a6b-7c8d-9e0f1a2b3c4d", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "UUID", "NVML", "CUDA_VISIBLE_DEVICES='GPU-8a7b");
    setenv("CUDA_VISIBLE_DEVICES", "0,MIG-1", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "UUID", "'MIG-1'", NULL);
    setenv("CUDA_VISIBLE_DEVICES", "0,8", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "index 8 is out of range", "8 NVIDIA devices", NULL);
    setenv("CUDA_VISIBLE_DEVICES", "2,2", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "index 2 appears twice", NULL, NULL);
    setenv("CUDA_VISIBLE_DEVICES", "0,,1", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "empty entry", NULL, NULL);
    setenv("CUDA_VISIBLE_DEVICES", "0,", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "empty entry", NULL, NULL);
    setenv("CUDA_VISIBLE_DEVICES", "one", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "'one' is not a device index", NULL, NULL);
    unsetenv("CUDA_VISIBLE_DEVICES");
    /* the AMD variables are ignored on a node without AMD devices */
    setenv("ROCR_VISIBLE_DEVICES", "0", 1);
    setenv("HIP_VISIBLE_DEVICES", "GPU-x", 1);
    check_map(t, "h100 with ROCR/HIP set", 2, "auto", 0, w2);
    unsetenv("ROCR_VISIBLE_DEVICES");
    unsetenv("HIP_VISIBLE_DEVICES");

    /* binding a synthetic topology: nothing happens to this process, and the placement says so */
    cpu_set_t before, after;
    CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
    p = place1(t, 5, 8, "auto", 0);
    hb_err e = {{0}};
    CHECK(hb_topology_bind(t, &p, &e) == HB_OK);
    CHECK_STR(p.binding, "not bound (synthetic topology)");
    CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_EQUAL(&before, &after));
    hb_topology_free(t);
}

/* ---- the 8x MI300X node --------------------------------------------------------------------- */

static const char *mi_bus[8] = {"0000:0c:00.0", "0000:22:00.0", "0000:38:00.0", "0000:5c:00.0",
                                "0000:9f:00.0", "0000:af:00.0", "0000:bf:00.0", "0000:df:00.0"};

static void test_mi300x(void) {
    hb_topology *t = load_xml("mi300x8.xml");
    if (!t) return;
    const hb_accel *a;
    int n = hb_topology_accels(t, &a);
    CHECK_MSG(n == 8, "mi300x: %d accelerators", n);
    for (int i = 0; i < n && i < 8; i++) {
        CHECK_STR(a[i].pci_bus_id, mi_bus[i]);
        CHECK(a[i].vendor == HB_ACCEL_AMD);
        CHECK(a[i].pci_vendor_id == 0x1002 && a[i].pci_device_id == 0x74a1 && a[i].pci_class == 0x1200);
        CHECK_STR(a[i].name, "Aqua Vanjaram [Instinct MI300X]");
        CHECK(a[i].numa_node == (i < 4 ? 0 : 1));
        CHECK_STR(a[i].cpuset, i < 4 ? "0-95,192-287" : "96-191,288-383");
    }
    CHECK(hb_topology_find_accel(t, "0000:0c:00.1") == NULL); /* AMD HD audio, class 0403 */
    CHECK(hb_topology_find_accel(t, "0000:03:00.0") == NULL); /* ASPEED VGA */
    hb_topology_summary s;
    hb_topology_summarize(t, &s);
    CHECK_STR(s.cpu_model, "AMD EPYC 9654 96-Core Processor");
    CHECK(s.n_packages == 2 && s.n_numa_nodes == 2 && s.n_cores == 192 && s.n_pus == 384);

    const want w1[] = {{mi_bus[0], "hip", 0, 0, "0-95,192-287", 96}};
    check_map(t, "mi300x", 1, "auto", 0, w1);
    const want w2[] = {{mi_bus[0], "hip", 0, 0, "0-47,192-239", 48},
                       {mi_bus[1], "hip", 1, 0, "48-95,240-287", 48}};
    check_map(t, "mi300x", 2, "auto", 0, w2);
    const want w4[] = {{mi_bus[0], "hip", 0, 0, "0-23,192-215", 24},
                       {mi_bus[1], "hip", 1, 0, "24-47,216-239", 24},
                       {mi_bus[2], "hip", 2, 0, "48-71,240-263", 24},
                       {mi_bus[3], "hip", 3, 0, "72-95,264-287", 24}};
    check_map(t, "mi300x", 4, "auto", 0, w4);
    check_map(t, "mi300x hip", 4, "hip", 0, w4);
    const want w8[] = {{mi_bus[0], "hip", 0, 0, "0-23,192-215", 24},
                       {mi_bus[1], "hip", 1, 0, "24-47,216-239", 24},
                       {mi_bus[2], "hip", 2, 0, "48-71,240-263", 24},
                       {mi_bus[3], "hip", 3, 0, "72-95,264-287", 24},
                       {mi_bus[4], "hip", 4, 1, "96-119,288-311", 24},
                       {mi_bus[5], "hip", 5, 1, "120-143,312-335", 24},
                       {mi_bus[6], "hip", 6, 1, "144-167,336-359", 24},
                       {mi_bus[7], "hip", 7, 1, "168-191,360-383", 24}};
    check_map(t, "mi300x", 8, "auto", 0, w8);
    PLACE_ERROR(t, 0, 1, "cuda", 0, "--backend cuda", "no NVIDIA accelerator", NULL);
    PLACE_ERROR(t, 2, 12, "auto", 0, "12 local ranks", "only 8 visible accelerators", "--share-devices");

    /* ROCR first, then HIP on what remains: ROCR 4-7 -> [9f af bf df]; HIP "3,1" -> df, af */
    setenv("ROCR_VISIBLE_DEVICES", "4,5,6,7", 1);
    setenv("HIP_VISIBLE_DEVICES", "3,1", 1);
    const want rh[] = {{mi_bus[7], "hip", 0, 1, "96-143,288-335", 48},
                       {mi_bus[5], "hip", 1, 1, "144-191,336-383", 48}};
    check_map(t, "mi300x ROCR=4-7 HIP=3,1", 2, "auto", 0, rh);
    PLACE_ERROR(t, 0, 4, "auto", 0, "2 of 8 AMD", "ROCR_VISIBLE_DEVICES='4,5,6,7' and HIP_VISIBLE_DEVICES='3,1'",
                "--share-devices");
    setenv("HIP_VISIBLE_DEVICES", "4", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "HIP_VISIBLE_DEVICES='4': index 4 is out of range",
                "4 AMD devices remain after ROCR_VISIBLE_DEVICES='4,5,6,7'", NULL);
    unsetenv("HIP_VISIBLE_DEVICES");
    setenv("ROCR_VISIBLE_DEVICES", "1,0", 1);
    const want r10[] = {{mi_bus[1], "hip", 0, 0, "0-47,192-239", 48},
                        {mi_bus[0], "hip", 1, 0, "48-95,240-287", 48}};
    check_map(t, "mi300x ROCR=1,0", 2, "auto", 0, r10);
    setenv("ROCR_VISIBLE_DEVICES", "0,GPU-4b2c1a9f8d3e6f7a", 1);
    PLACE_ERROR(t, 0, 1, "auto", 0, "UUID", "ROCm SMI", "ROCR_VISIBLE_DEVICES");
    unsetenv("ROCR_VISIBLE_DEVICES");
    setenv("HIP_VISIBLE_DEVICES", "2", 1);
    const want h2[] = {{mi_bus[2], "hip", 0, 0, "0-95,192-287", 96}};
    check_map(t, "mi300x HIP=2", 1, "auto", 0, h2);
    setenv("HIP_VISIBLE_DEVICES", "", 1);
    PLACE_ERROR(t, 0, 1, "hip", 0, "no AMD accelerator", "0 of 8 AMD", "HIP_VISIBLE_DEVICES=''");
    unsetenv("HIP_VISIBLE_DEVICES");
    /* CUDA_VISIBLE_DEVICES is ignored on a node without NVIDIA devices (Slurm may set it) */
    setenv("CUDA_VISIBLE_DEVICES", "0", 1);
    check_map(t, "mi300x with CVD=0", 4, "auto", 0, w4);
    unsetenv("CUDA_VISIBLE_DEVICES");
    hb_topology_free(t);
}

/* ---- the mixed node: 2 NVIDIA + 2 AMD -------------------------------------------------------- */

static void test_mixed(void) {
    hb_topology *t = load_xml("mixed-2nv-2amd.xml");
    if (!t) return;
    const hb_accel *a;
    int n = hb_topology_accels(t, &a);
    CHECK_MSG(n == 4, "mixed: %d accelerators", n);
    if (n == 4) {
        /* bus order interleaves the vendors: 17 NV s0, 31 AMD s0, b1 AMD s1, ca NV s1 */
        CHECK_STR(a[0].pci_bus_id, "0000:17:00.0");
        CHECK(a[0].vendor == HB_ACCEL_NVIDIA && a[0].pci_device_id == 0x20b5 && a[0].pci_class == 0x0302);
        CHECK_STR(a[0].name, "NVIDIA A100 80GB PCIe"); /* from the cuda0 OS device */
        CHECK_STR(a[1].pci_bus_id, "0000:31:00.0");
        CHECK(a[1].vendor == HB_ACCEL_AMD && a[1].pci_device_id == 0x740f && a[1].pci_class == 0x0380);
        CHECK_STR(a[1].name, "AMD Instinct MI210"); /* from the rsmi0 OS device */
        CHECK_STR(a[2].pci_bus_id, "0000:b1:00.0");
        CHECK_STR(a[2].name, ""); /* neither an OS device nor a PCI name */
        CHECK_STR(a[3].pci_bus_id, "0000:ca:00.0");
        CHECK_STR(a[3].name, "GA100 [A100 PCIe 80GB]"); /* the PCI name */
        for (int i = 0; i < 4; i++) {
            int s1 = i >= 2;
            CHECK(a[i].numa_node == s1);
            CHECK_STR(a[i].cpuset, s1 ? "16-31,48-63" : "0-15,32-47");
        }
    }
    const want w1[] = {{"0000:17:00.0", "cuda", 0, 0, "0-15,32-47", 16}};
    check_map(t, "mixed", 1, "auto", 0, w1);
    const want w2[] = {{"0000:17:00.0", "cuda", 0, 0, "0-7,32-39", 8},
                       {"0000:31:00.0", "hip", 0, 0, "8-15,40-47", 8}};
    check_map(t, "mixed", 2, "auto", 0, w2);
    const want w4[] = {{"0000:17:00.0", "cuda", 0, 0, "0-7,32-39", 8},
                       {"0000:31:00.0", "hip", 0, 0, "8-15,40-47", 8},
                       {"0000:b1:00.0", "hip", 1, 1, "16-23,48-55", 8},
                       {"0000:ca:00.0", "cuda", 1, 1, "24-31,56-63", 8}};
    check_map(t, "mixed", 4, "auto", 0, w4);
    /* 8 ranks: 4 devices -> error, or shared round-robin with 4 ranks per socket */
    PLACE_ERROR(t, 0, 8, "auto", 0, "only 4 visible accelerators", "(2 of 2 NVIDIA; 2 of 2 AMD)", "--share-devices");
    const want w8[] = {{"0000:17:00.0", "cuda", 0, 0, "0-3,32-35", 4},
                       {"0000:31:00.0", "hip", 0, 0, "4-7,36-39", 4},
                       {"0000:b1:00.0", "hip", 1, 1, "16-19,48-51", 4},
                       {"0000:ca:00.0", "cuda", 1, 1, "20-23,52-55", 4},
                       {"0000:17:00.0", "cuda", 0, 0, "8-11,40-43", 4},
                       {"0000:31:00.0", "hip", 0, 0, "12-15,44-47", 4},
                       {"0000:b1:00.0", "hip", 1, 1, "24-27,56-59", 4},
                       {"0000:ca:00.0", "cuda", 1, 1, "28-31,60-63", 4}};
    check_map(t, "mixed share", 8, "auto", 1, w8);
    /* one vendor only */
    const want nv2[] = {{"0000:17:00.0", "cuda", 0, 0, "0-15,32-47", 16},
                        {"0000:ca:00.0", "cuda", 1, 1, "16-31,48-63", 16}};
    check_map(t, "mixed cuda", 2, "cuda", 0, nv2);
    PLACE_ERROR(t, 0, 3, "cuda", 0, "only 2 visible accelerators", "2 of 2 NVIDIA", "--share-devices");
    const want amd2[] = {{"0000:31:00.0", "hip", 0, 0, "0-15,32-47", 16},
                         {"0000:b1:00.0", "hip", 1, 1, "16-31,48-63", 16}};
    check_map(t, "mixed hip", 2, "hip", 0, amd2);
    /* CPU ranks on the mixed node: 4 ranks -> 2 per socket */
    const want c4[] = {{NULL, "cpu", -1, 0, "0-7,32-39", 8},
                       {NULL, "cpu", -1, 0, "8-15,40-47", 8},
                       {NULL, "cpu", -1, 1, "16-23,48-55", 8},
                       {NULL, "cpu", -1, 1, "24-31,56-63", 8}};
    check_map(t, "mixed cpu", 4, "cpu", 0, c4);

    /* CUDA_VISIBLE_DEVICES="1": slots 31 (AMD), b1 (AMD), ca (NVIDIA, CUDA device 0) */
    setenv("CUDA_VISIBLE_DEVICES", "1", 1);
    const want v1[] = {{"0000:31:00.0", "hip", 0, 0, "0-15,32-47", 16},
                       {"0000:b1:00.0", "hip", 1, 1, "16-23,48-55", 8},
                       {"0000:ca:00.0", "cuda", 0, 1, "24-31,56-63", 8}};
    check_map(t, "mixed CVD=1", 3, "auto", 0, v1);
    /* reorder "1,0": NVIDIA slots (17's and ca's positions) take CUDA devices 0 (ca), 1 (17) */
    setenv("CUDA_VISIBLE_DEVICES", "1,0", 1);
    const want v10[] = {{"0000:ca:00.0", "cuda", 0, 1, "16-23,48-55", 8},
                        {"0000:31:00.0", "hip", 0, 0, "0-7,32-39", 8},
                        {"0000:b1:00.0", "hip", 1, 1, "24-31,56-63", 8},
                        {"0000:17:00.0", "cuda", 1, 0, "8-15,40-47", 8}};
    check_map(t, "mixed CVD=1,0", 4, "auto", 0, v10);
    unsetenv("CUDA_VISIBLE_DEVICES");
    /* ROCR on the mixed node: index 1 of the AMD devices is b1 */
    setenv("ROCR_VISIBLE_DEVICES", "1", 1);
    const want r1[] = {{"0000:17:00.0", "cuda", 0, 0, "0-15,32-47", 16},
                       {"0000:b1:00.0", "hip", 0, 1, "16-23,48-55", 8},
                       {"0000:ca:00.0", "cuda", 1, 1, "24-31,56-63", 8}};
    check_map(t, "mixed ROCR=1", 3, "auto", 0, r1);
    unsetenv("ROCR_VISIBLE_DEVICES");
    hb_topology_free(t);
}

/* ---- the CPU-only node ---------------------------------------------------------------------- */

static void test_cpu_node(void) {
    hb_topology *t = load_xml("cpu-2socket.xml");
    if (!t) return;
    const hb_accel *a = NULL;
    CHECK(hb_topology_accels(t, &a) == 0); /* the ASPEED VGA (class 0300) is not one */
    hb_topology_summary s;
    hb_topology_summarize(t, &s);
    CHECK_STR(s.host, "cpu-node");
    CHECK(s.n_packages == 2 && s.n_numa_nodes == 2 && s.n_cores == 128 && s.n_pus == 128 &&
          s.n_accels == 0);
    /* 1 rank: fewer ranks than NUMA nodes, the rank takes both (memory: no single node) */
    const want w1[] = {{NULL, "cpu", -1, -1, "0-127", 128}};
    check_map(t, "cpu", 1, "auto", 0, w1);
    const want w2[] = {{NULL, "cpu", -1, 0, "0-63", 64}, {NULL, "cpu", -1, 1, "64-127", 64}};
    check_map(t, "cpu", 2, "auto", 0, w2);
    check_map(t, "cpu cpu", 2, "cpu", 0, w2);
    /* 4 ranks on 2 sockets: 2 per socket, disjoint, covering every core */
    const want w4[] = {{NULL, "cpu", -1, 0, "0-31", 32},
                       {NULL, "cpu", -1, 0, "32-63", 32},
                       {NULL, "cpu", -1, 1, "64-95", 32},
                       {NULL, "cpu", -1, 1, "96-127", 32}};
    check_map(t, "cpu", 4, "auto", 0, w4);
    const want w8[] = {{NULL, "cpu", -1, 0, "0-15", 16},   {NULL, "cpu", -1, 0, "16-31", 16},
                       {NULL, "cpu", -1, 0, "32-47", 16},  {NULL, "cpu", -1, 0, "48-63", 16},
                       {NULL, "cpu", -1, 1, "64-79", 16},  {NULL, "cpu", -1, 1, "80-95", 16},
                       {NULL, "cpu", -1, 1, "96-111", 16}, {NULL, "cpu", -1, 1, "112-127", 16}};
    check_map(t, "cpu", 8, "auto", 0, w8);
    /* 3 ranks: 2 on the first socket, 1 on the second */
    const want w3[] = {{NULL, "cpu", -1, 0, "0-31", 32},
                       {NULL, "cpu", -1, 0, "32-63", 32},
                       {NULL, "cpu", -1, 1, "64-127", 64}};
    check_map(t, "cpu", 3, "auto", 0, w3);
    /* 6 ranks: 3 per socket, 64 cores -> blocks of 22, 21, 21 */
    hb_placement p = place1(t, 4, 6, "auto", 0);
    CHECK_STR(p.cpuset, "86-106");
    p = place1(t, 3, 6, "auto", 0);
    CHECK_STR(p.cpuset, "64-85");
    /* cuda/hip on a CPU node; more ranks than cores, without and with share */
    PLACE_ERROR(t, 0, 1, "cuda", 0, "no NVIDIA accelerator", "0 of 0 NVIDIA", NULL);
    PLACE_ERROR(t, 0, 129, "auto", 0, "129 CPU ranks", "only 128 cores", "--share-devices");
    p = place1(t, 130, 200, "auto", 1);
    CHECK_STR(p.cpuset, "2");
    CHECK(p.n_cpus == 1 && p.numa_node == 0);
    p = place1(t, 127, 200, "auto", 1);
    CHECK_STR(p.cpuset, "127");
    /* bad ranks are programmer errors */
    hb_err e = {{0}};
    CHECK(hb_topology_place(t, 4, 4, "auto", 0, &p, &e) == HB_ERR_INTERNAL);
    CHECK(hb_topology_place(t, 0, 0, "auto", 0, &p, &e) == HB_ERR_INTERNAL);
    hb_topology_free(t);
}

/* ---- bad HETBENCH_TOPOLOGY files -------------------------------------------------------------- */

static void check_bad_file(int line, const char *path) {
    setenv("HETBENCH_TOPOLOGY", path, 1);
    hb_topology *t = (hb_topology *)1;
    hb_err e = {{0}};
    hb_status st = hb_topology_load(&t, &e);
    CHECK_MSG(st == HB_ERR_INPUT, "line %d: %s: status %d (%s)", line, path, (int)st, e.msg);
    CHECK_MSG(t == NULL, "line %d: topology not NULL on error", line);
    CHECK_MSG(strstr(e.msg, path) != NULL, "line %d: message '%s' does not name %s", line, e.msg, path);
    CHECK_MSG(strstr(e.msg, "HETBENCH_TOPOLOGY") != NULL, "line %d: message '%s'", line, e.msg);
    hb_topology_free(t == (hb_topology *)1 ? NULL : t);
    unsetenv("HETBENCH_TOPOLOGY");
}

static void test_bad_files(void) {
    char dir[] = "/tmp/hb_topo_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    char missing[128], garbage[128], notopo[128], truncated[128];
    snprintf(missing, sizeof missing, "%s/missing.xml", dir);
    check_bad_file(__LINE__, missing);
    snprintf(garbage, sizeof garbage, "%s/garbage.xml", dir);
    FILE *f = fopen(garbage, "w");
    if (f) {
        fputs("this is not XML at all\n\x01\x02", f);
        fclose(f);
    }
    check_bad_file(__LINE__, garbage);
    snprintf(notopo, sizeof notopo, "%s/notopo.xml", dir);
    f = fopen(notopo, "w");
    if (f) {
        fputs("<?xml version=\"1.0\"?>\n<plan><batch>1</batch></plan>\n", f);
        fclose(f);
    }
    check_bad_file(__LINE__, notopo);
    /* the first half of a real topology */
    snprintf(truncated, sizeof truncated, "%s/truncated.xml", dir);
    char src[1024];
    snprintf(src, sizeof src, "%s/cpu-2socket.xml", topo_dir);
    FILE *in = fopen(src, "rb");
    f = fopen(truncated, "wb");
    if (in && f) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, in);
        fwrite(buf, 1, n, f);
    }
    if (in) fclose(in);
    if (f) fclose(f);
    check_bad_file(__LINE__, truncated);
    check_bad_file(__LINE__, dir); /* a directory */
    unlink(missing);
    unlink(garbage);
    unlink(notopo);
    unlink(truncated);
    rmdir(dir);
}

/* ---- this machine --------------------------------------------------------------------------- */

/* Parses a list-form cpuset into a cpu_set_t; 0 or -1. */
static int list_to_cpu_set(const char *s, cpu_set_t *set) {
    CPU_ZERO(set);
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s) return -1;
        if (*end == '-') b = strtol(end + 1, &end, 10);
        for (long i = a; i <= b && i < CPU_SETSIZE; i++) CPU_SET((int)i, set);
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return 0;
}

static void test_this_machine(void) {
    hb_topology *t = NULL;
    hb_err e = {{0}};
    hb_status st = hb_topology_load(&t, &e);
    CHECK_MSG(st == HB_OK && t, "this machine: status %d: %s", (int)st, e.msg);
    if (!t) return;
    CHECK(hb_topology_is_synthetic(t) == 0);
    hb_topology_summary s;
    hb_topology_summarize(t, &s);
    CHECK(s.n_cores >= 1 && s.n_pus >= s.n_cores && s.n_numa_nodes >= 1);
    CHECK(s.host[0] != '\0');
    CHECK_STR(s.source, "this machine");
    fprintf(stderr, "this machine: %s, '%s', %d packages, %d NUMA nodes, %d cores, %d PUs, %d accelerators\n",
            s.host, s.cpu_model, s.n_packages, s.n_numa_nodes, s.n_cores, s.n_pus, s.n_accels);
    const hb_accel *a;
    int n = hb_topology_accels(t, &a);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "  accelerator %s %04x:%04x class %04x '%s' numa %d cpus %s\n", a[i].pci_bus_id,
                a[i].pci_vendor_id, a[i].pci_device_id, a[i].pci_class, a[i].name, a[i].numa_node,
                a[i].cpuset);
    /* one CPU rank takes every core */
    hb_placement p = place1(t, 0, 1, "cpu", 0);
    CHECK_STR(p.backend, "cpu");
    CHECK(p.has_device == 0 && p.device_index == -1);
    CHECK_MSG(p.n_cpus == s.n_cores && p.n_pus == s.n_pus, "n_cpus %d n_pus %d", p.n_cpus, p.n_pus);
    CHECK(list_count(p.cpuset) == s.n_pus);
    if (n == 0) {
        hb_placement q = place1(t, 0, 1, "auto", 0);
        CHECK_STR(q.backend, "cpu");
    }
    /* more ranks than cores: error, or shared */
    PLACE_ERROR(t, 0, s.n_cores + 1, "cpu", 0, "CPU ranks", "cores", "--share-devices");
    hb_placement q = place1(t, s.n_cores, s.n_cores + 1, "cpu", 1);
    CHECK(q.n_cpus == 1);

    /* binding this process: bound (then the affinity is the cpuset) or a reason */
    cpu_set_t saved, now, want;
    CHECK(sched_getaffinity(0, sizeof saved, &saved) == 0);
    CHECK(hb_topology_bind(t, &p, &e) == HB_OK);
    fprintf(stderr, "this machine: rank 0 of 1: cpuset %s numa %d: %s\n", p.cpuset, p.numa_node, p.binding);
    CHECK_MSG(strcmp(p.binding, "bound") == 0 || strncmp(p.binding, "bound (memory not bound: ", 25) == 0 ||
                  strncmp(p.binding, "not bound: ", 11) == 0,
              "binding '%s'", p.binding);
    if (strncmp(p.binding, "bound", 5) == 0) {
        CHECK(sched_getaffinity(0, sizeof now, &now) == 0);
        CHECK(list_to_cpu_set(p.cpuset, &want) == 0);
        CHECK_MSG(CPU_EQUAL(&now, &want), "affinity is not cpuset %s", p.cpuset);
    }
    /* a single-core binding takes effect too */
    if (s.n_cores > 1) {
        hb_placement one = place1(t, 1, s.n_cores, "cpu", 0);
        CHECK(hb_topology_bind(t, &one, &e) == HB_OK);
        if (strncmp(one.binding, "bound", 5) == 0) {
            CHECK(sched_getaffinity(0, sizeof now, &now) == 0);
            CHECK(list_to_cpu_set(one.cpuset, &want) == 0);
            CHECK_MSG(CPU_EQUAL(&now, &want), "affinity is not cpuset %s", one.cpuset);
        }
    }
    hb_placement bad = p;
    snprintf(bad.cpuset, sizeof bad.cpuset, "zero-three");
    CHECK(hb_topology_bind(t, &bad, &e) == HB_ERR_INPUT);
    sched_setaffinity(0, sizeof saved, &saved);
    hb_topology_free(t);

    /* hwloc's own HWLOC_XMLFILE (which Open MPI also reads) must not make hetbench bind this
     * process to another machine's CPUs */
    char path[1024];
    snprintf(path, sizeof path, "%s/cpu-2socket.xml", topo_dir);
    setenv("HWLOC_XMLFILE", path, 1);
    st = hb_topology_load(&t, &e);
    if (st == HB_OK) {
        hb_topology_summarize(t, &s);
        if (s.n_cores == 128) { /* hwloc honoured the variable */
            CHECK(hb_topology_is_synthetic(t) == 1);
            p = place1(t, 0, 1, "cpu", 0);
            CHECK(hb_topology_bind(t, &p, &e) == HB_OK);
            CHECK_STR(p.binding, "not bound (synthetic topology)");
        }
        hb_topology_free(t);
    }
    unsetenv("HWLOC_XMLFILE");
}

static void test_bus_ids(void) {
    char out[32];
    CHECK(hb_pci_bus_id_normalize("0000:17:00.0", out) == 0 && strcmp(out, "0000:17:00.0") == 0);
    CHECK(hb_pci_bus_id_normalize("00000000:AB:1F.7", out) == 0 && strcmp(out, "0000:ab:1f.7") == 0);
    CHECK(hb_pci_bus_id_normalize("10000:01:00.0", out) == 0 && strcmp(out, "10000:01:00.0") == 0);
    CHECK(hb_pci_bus_id_normalize("3b:00.0", out) == 0 && strcmp(out, "0000:3b:00.0") == 0);
    CHECK(hb_pci_bus_id_normalize("0000:17:00.0x", out) == -1 && out[0] == '\0');
    CHECK(hb_pci_bus_id_normalize("0000:17:20.0", out) == -1); /* device > 0x1f */
    CHECK(hb_pci_bus_id_normalize("gpu0", out) == -1);
    CHECK(hb_pci_bus_id_normalize(NULL, out) == -1);
    hb_topology_free(NULL);
    CHECK(hb_topology_accels(NULL, NULL) == 0);
}

int main(int argc, char **argv) {
    if (argc > 1) topo_dir = argv[1];
    clear_env();
    test_bus_ids();
    test_h100();
    test_mi300x();
    test_mixed();
    test_cpu_node();
    test_bad_files();
    test_this_machine();
    HB_TEST_END();
}
