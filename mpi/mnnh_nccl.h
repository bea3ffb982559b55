/* mnnh_nccl.h: gradient allreduce between GPUs with NCCL (built when MNNH_HAVE_NCCL).
 *
 * One NCCL communicator per MPI communicator, bootstrapped through MPI: rank 0
 * creates the NCCL unique id and MPI_Bcast's it. Each rank passes the GPU it
 * computes on (the backend's device, chosen from the node-local rank). The
 * allreduce sums n floats of a device buffer in place and returns when the
 * result is in the buffer; it first waits for all work already queued on the
 * device (the backend's stream included), so callers need no extra sync.
 * NCCL's sum is deterministic for a fixed rank count and topology.
 *
 * Without NCCL (or with the cpu backend) mpi/comm.c stages through the host.

 * (Named mnnh_nccl.h so that it does not shadow NCCL's own <nccl.h>.) */
#ifndef MNNH_MPI_NCCL_H
#define MNNH_MPI_NCCL_H

#ifdef MNNH_HAVE_NCCL

#include <mpi.h>
#include <stddef.h>

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective over comm. On failure every rank returns MNNH_ERR_BACKEND with a
 * message (the ranks agree on success before and after ncclCommInitRank). */
mnnh_status mnnh_nccl_create(void **ctx, MPI_Comm comm, int device);
/* In-place sum of devbuf[0..n) over the ranks of the communicator. */
mnnh_status mnnh_nccl_allreduce_sum(void *ctx, float *devbuf, size_t n);
void mnnh_nccl_free(void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* MNNH_HAVE_NCCL */
#endif
