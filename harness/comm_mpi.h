/* comm_mpi.h - hb_comm over an MPI communicator: the reference implementation for CPU ranks
 * (host memory). bf16/f16 sums use a user-defined MPI_Op that adds in f32 and rounds to the
 * dtype at each combining step. */
#ifndef HB_COMM_MPI_H
#define HB_COMM_MPI_H

#include <mpi.h>

#include "../backends/comm.h"
#include "../backends/comm_nccl.h"

/* Fills c (impl "mpi", rank and size of comm) over comm, which the caller keeps alive until
 * hb_comm_mpi_free(c) and frees after it. c must not move while in use. */
hb_status hb_comm_mpi_init(hb_comm *c, MPI_Comm comm, int id, hb_err *err);
void hb_comm_mpi_free(hb_comm *c); /* NULL or a freed comm: no-op */

/* A GPU rank group's NCCL/RCCL communicator (backends/comm_nccl.h), bootstrapped over the
 * group's MPI communicator mc: its rank 0 makes the unique id and broadcasts it with its
 * status (a failure there fails every rank of the group with rank 0's message), then every
 * rank joins (ncclCommInitRank). Collective over mc. Free with hb_comm_nccl_free. */
hb_status hb_comm_nccl_bootstrap(hb_comm *c, hb_nccl_lib *lib, hb_backend *be, MPI_Comm mc, int group_id, hb_err *err);

#endif
