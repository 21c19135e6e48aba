/* topology.h - what is on this node (hwloc 2.x): accelerators as PCI devices with their NUMA
 * locality, and which of them, and which CPUs, a local rank takes.
 *
 * Source: the real machine, or an hwloc XML file named by HETBENCH_TOPOLOGY (for tests and for
 * planning a node you are not on; such a topology is "synthetic": nothing is ever bound).
 * hwloc.h is included only by topology.c; this module knows nothing of MPI: the caller passes
 * the rank's index among the ranks of its node (local_rank) and their number (local_size).
 *
 * Accelerators: PCI devices of vendor 0x10de (NVIDIA) or 0x1002 (AMD) whose class is display
 * 0x0300, 3D 0x0302, other display 0x0380 or processing accelerator 0x1200 (not NVSwitches,
 * HD-audio functions, NICs...). Sorted by PCI bus id (domain, bus, device, function). The name
 * comes from an OS device below the PCI device where hwloc has one (GPUModel of cuda/nvml/rsmi/
 * opencl OS devices; Debian's hwloc has none of these plugins), else from the PCI name
 * (PCIDevice info, from pci.ids), else "". Locality: hwloc_get_non_io_ancestor_obj().
 *
 * Visibility (applied in hb_topology_place, read from the environment at each call):
 *   CUDA_VISIBLE_DEVICES  NVIDIA devices; HIP_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES  AMD devices.
 *   Unset: all of that vendor. Empty: none. Else a comma list of indices into that vendor's
 *   devices sorted by PCI bus id. That is CUDA's order only with CUDA_DEVICE_ORDER=PCI_BUS_ID
 *   (its default, FASTEST_FIRST, usually agrees on a node of identical GPUs but need not), and
 *   ROCm's enumeration order, which is normally PCI order. Order matters: "3,1" makes physical
 *   device 3 the runtime's device 0. A negative index ends the list (CUDA's rule, so "-1" hides
 *   every device). UUID entries ("GPU-...", "MIG-...") cannot be resolved without NVML / ROCm
 *   SMI and give HB_ERR_INPUT; so do out-of-range, duplicate, empty or malformed entries. With
 *   both ROCR_ and HIP_VISIBLE_DEVICES set, ROCR applies first and HIP indexes into what remains
 *   (as ROCm does). A vendor's variables are ignored on a node without devices of that vendor
 *   (Slurm may export CUDA_VISIBLE_DEVICES on AMD nodes). Not modelled: GPU_DEVICE_ORDINAL, and
 *   HIP's use of CUDA_VISIBLE_DEVICES for AMD devices when HIP_VISIBLE_DEVICES is unset.
 *   Slurm's GPU binding (--gpus-per-task, --gpu-bind) arrives through the same variables: Slurm
 *   sets CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES per task. Caveat (verify on the cluster):
 *   with cgroup device constraints (ConstrainDevices=yes) Slurm's indices can be relative to the
 *   devices the cgroup lets the runtime see, while hwloc (sysfs) still lists every device of the
 *   node; so the worker must confirm the placement by PCI bus id with the backend
 *   (hb_topology_find_accel / hb_pci_bus_id_normalize), never trust an ordinal alone.
 *
 * Error contract: fallible functions return hb_status and put a one-line message in err
 * (HB_ERR_INPUT for anything the user can fix: XML file, visibility variables, rank counts,
 * backend choice). Every object made by a function is freed by its *_free pair. */
#ifndef HB_TOPOLOGY_H
#define HB_TOPOLOGY_H

#include <stdint.h>

#include "status.h"

typedef enum hb_accel_vendor { HB_ACCEL_NVIDIA, HB_ACCEL_AMD } hb_accel_vendor;

/* One accelerator found on the node. */
typedef struct hb_accel {
    hb_accel_vendor vendor;
    char pci_bus_id[32];             /* "0000:17:00.0": lower-case hex, domain:bus:dev.fn */
    uint16_t pci_vendor_id, pci_device_id, pci_class;
    char name[128];                  /* OS device GPUModel, else PCIDevice info, else "" */
    int numa_node;                   /* OS index of the NUMA node of its locality; -1 when the
                                        locality holds several nodes or none (unknown) */
    char cpuset[256];                /* locality cpuset, list form "0-15,32-47" (hwloc's "0x..."
                                        mask form if the list does not fit) */
} hb_accel;

typedef struct hb_topology hb_topology; /* opaque: the loaded hwloc topology + accel list */

/* Loads the topology: the XML file named by HETBENCH_TOPOLOGY if set and non-empty (missing or
 * unreadable file: HB_ERR_INPUT naming the file), else this machine. I/O filter KEEP_IMPORTANT
 * (without it hwloc reports no PCI device). On error *out is NULL. */
hb_status hb_topology_load(hb_topology **out, hb_err *err);
void hb_topology_free(hb_topology *t); /* NULL-safe */

/* 1 when not read from this machine (HETBENCH_TOPOLOGY, or hwloc's own HWLOC_XMLFILE /
 * HWLOC_SYNTHETIC, which Open MPI may also set): never bind the real process to it. */
int hb_topology_is_synthetic(const hb_topology *t);

/* All accelerators of the node (visibility variables not applied), sorted by PCI bus id.
 * Returns their number; *list stays valid until hb_topology_free. */
int hb_topology_accels(const hb_topology *t, const hb_accel **list);

/* The accelerator with this PCI bus id, or NULL. Accepts any domain width and case, as the
 * vendor libraries print them ("00000000:17:00.0" from NVML, "0000:17:00.0" from CUDA/HIP). */
const hb_accel *hb_topology_find_accel(const hb_topology *t, const char *pci_bus_id);

/* Normalises a PCI bus id to "dddd:bb:dd.f" (lower case, domain at least 4 digits) in out.
 * Returns 0, or -1 (out = "") when `in` is not a bus id. */
int hb_pci_bus_id_normalize(const char *in, char out[32]);

/* What `hetbench info` shows about the node. */
typedef struct hb_topology_summary {
    char host[256];                  /* Machine's HostName info (the XML's), else gethostname();
                                        "unknown" for a synthetic topology without one */
    char cpu_model[128];             /* first package's CPUModel info, "" if unknown */
    char source[512];                /* the XML file, or "this machine" */
    int synthetic;
    int n_packages, n_numa_nodes, n_cores, n_pus, n_accels;
} hb_topology_summary;
void hb_topology_summarize(const hb_topology *t, hb_topology_summary *out);

/* Where one local rank runs. A plain value (no pointers): it may be copied or sent as bytes. */
typedef struct hb_placement {
    int has_device;                  /* 1: an accelerator; 0: a CPU rank */
    hb_accel accel;                  /* when has_device */
    char backend[8];                 /* "cuda" (NVIDIA), "hip" (AMD), "cpu" */
    int device_index;                /* index among the vendor's *visible* devices, i.e. what the
                                        vendor runtime calls it (cudaSetDevice / hipSetDevice);
                                        -1 for a CPU rank */
    int shared;                      /* 1: other local ranks use the same device (--share-devices) */
    int numa_node;                   /* the NUMA node of cpuset when it lies in one, else the
                                        device's; -1 unknown */
    char cpuset[256];                /* CPUs this rank binds to, whole cores (all PUs of each);
                                        list form, or "0x..." as hb_accel.cpuset */
    int n_cpus;                      /* cores in cpuset (one OpenMP thread per core) */
    int n_pus;                       /* PUs (hardware threads) in cpuset */
    int64_t llc_bytes;               /* the last-level caches (deepest cache level) that the
                                        cpuset's cores use, summed; 0 when hwloc knows none */
    char binding[64];                /* set by hb_topology_bind: "bound", "bound (memory not
                                        bound: <reason>)", "not bound (synthetic topology)",
                                        "not bound: <reason>"; "" until then */
} hb_placement;

/* Places local rank local_rank of local_size ranks on this node.
 *
 * backend_pref: "auto" (or NULL) | "cpu" | "cuda" | "hip". cpu: CPU placement even on a GPU
 * node; cuda / hip: only that vendor's visible devices (HB_ERR_INPUT when there are none).
 * share: allow more ranks than visible devices (ranks take them round-robin), or more CPU ranks
 * than cores (ranks share single cores round-robin).
 *
 * Device ranks: the visible devices, in PCI bus id order of the devices, are the rank slots;
 * each vendor's slots are filled with that vendor's visible devices in runtime order (device
 * index 0, 1, ...), so "CUDA_VISIBLE_DEVICES=3,1" gives rank 0 physical NVIDIA device 3 (CUDA
 * device 0). Local rank i takes slot i (i mod n with share). On a mixed node each rank's backend
 * follows its device's vendor. The rank's cpuset is its device's locality, split when several
 * local ranks have devices of the same locality: its cores are cut into contiguous blocks, one
 * per such rank in local-rank order (8 GPUs on 2 sockets, 8 ranks: each rank gets a quarter of
 * its socket's cores). Block sizes differ by at most one core, the first blocks being larger.
 *
 * CPU ranks (no visible device with "auto", or "cpu"): ranks are spread over the NUMA nodes
 * that have cores, in blocks (rank 0.. on the first node), in proportion to their core counts
 * (equal nodes: 4 ranks on 2 nodes -> 2 per node; remainders go to the first nodes); each
 * node's cores are cut into contiguous blocks among its ranks. Fewer ranks than such nodes:
 * each rank takes a block of whole nodes (1 rank on 2 sockets: every core, numa_node -1). A
 * core belongs to the first NUMA node (hwloc logical order) covering it, so a memory-only node
 * (HBM, CXL) sharing a socket's cpuset takes no ranks. More ranks than cores: HB_ERR_INPUT
 * naming the core count, unless share (then rank i takes core i mod n_cores).
 * Platforms where hwloc reports no Core objects use PUs as cores.
 *
 * *out is fully written on success (binding ""); on error it is zeroed with numa_node and
 * device_index -1. local_rank outside [0, local_size) is HB_ERR_INTERNAL (a caller bug). */
hb_status hb_topology_place(const hb_topology *t, int local_rank, int local_size,
                            const char *backend_pref, int share, hb_placement *out, hb_err *err);

/* Binds the calling process (all its threads) to p->cpuset and its memory to p->numa_node, or to
 * the NUMA nodes of the cpuset when that is -1 (hwloc_set_cpubind PROCESS + hwloc_set_membind
 * BIND, PROCESS|BYNODESET). A no-op on a synthetic topology. A refused binding is not an
 * error: p->binding says what happened. Call it before starting threads (OpenMP pools,
 * samplers): threads created later inherit the binding. Returns HB_ERR_INPUT only for a
 * p->cpuset that does not parse. */
hb_status hb_topology_bind(const hb_topology *t, hb_placement *p, hb_err *err);

#endif
