/* comm_nccl.h - hb_comm (comm.h) over NCCL (CUDA ranks) or RCCL (HIP ranks), both loaded with
 * dlopen: no SDK at build time, and a node without the library runs everything else.
 *
 * Library: cuda -> HETBENCH_NCCL_LIBRARY, else libnccl.so.2; hip -> HETBENCH_RCCL_LIBRARY,
 * else librccl.so.1 (RCCL exports NCCL's names). The declarations of the API subset used
 * (ncclGetVersion, ncclGetUniqueId, ncclCommInitRank, ncclCommDestroy, ncclGetErrorString,
 * ncclAllReduce, ncclAllGather, ncclReduceScatter, ncclBroadcast, ncclSend, ncclRecv,
 * ncclGroupStart, ncclGroupEnd) are in comm_nccl.c, from NCCL's nccl.h (2.x ABI).
 *
 * Bootstrapping (harness/run.c, before dispatch): group rank 0 calls hb_nccl_unique_id, the
 * caller broadcasts the 128 bytes over the group's MPI communicator, every rank of the group
 * calls hb_comm_nccl_init. Collectives are enqueued on the backend's stream (native_stream in
 * backend.h) after a sync of it and waited for (another sync) before returning, so that the
 * comm columns time the collective alone, as for MPI. The per-case deadline of comm.h is not
 * enforced here (a rank lost inside an NCCL collective leaves its group to the watchdogs). */
#ifndef HB_COMM_NCCL_H
#define HB_COMM_NCCL_H

#include "backend.h"
#include "comm.h"

enum { HB_NCCL_ID_BYTES = 128 };

typedef struct hb_nccl_lib hb_nccl_lib;

/* Loads the collective library of backend ("cuda" or "hip"; others: HB_ERR_UNSUPPORTED).
 * HB_ERR_UNSUPPORTED with the path and dlerror() when it cannot be loaded or lacks a symbol. */
hb_status hb_nccl_load(const char *backend, hb_nccl_lib **lib, hb_err *err);
void hb_nccl_unload(hb_nccl_lib *lib); /* NULL is a no-op; after every comm of it is freed (the library stays mapped) */
/* "NCCL 2.21.5" / "RCCL 2.18.3" (ncclGetVersion), with the library's path: "... (libnccl.so.2)" */
const char *hb_nccl_version(const hb_nccl_lib *lib);
const char *hb_nccl_impl(const hb_nccl_lib *lib); /* "nccl", "rccl" */

/* ncclGetUniqueId: the group's id, made by its rank 0 (id: HB_NCCL_ID_BYTES bytes). */
hb_status hb_nccl_unique_id(hb_nccl_lib *lib, void *id, hb_err *err);

/* ncclCommInitRank on the backend's current device; c is initialised as comm_mpi does (impl,
 * id, rank, size, ops). be must have native_stream. */
hb_status hb_comm_nccl_init(hb_comm *c, hb_nccl_lib *lib, hb_backend *be, const void *id, int nranks, int rank,
                            int group_id, hb_err *err);
void hb_comm_nccl_free(hb_comm *c); /* ncclCommDestroy; NULL ctx is a no-op */

#endif
