/* mnnh_nccl.c: NCCL communicator bootstrapped through MPI, in-place float sum
 * (mnnh_nccl.h). Compiled to nothing without MNNH_HAVE_NCCL. */
#include "mnnh_nccl.h"

#ifdef MNNH_HAVE_NCCL

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    int device;
    int rank, size;
} nccl_ctx;

/* All ranks agree: returns 1 when ok is true on every rank. */
static int all_ok(MPI_Comm comm, int ok) {
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) return 0;
    return all;
}

mnnh_status mnnh_nccl_create(void **out, MPI_Comm comm, int device) {
    *out = NULL;
    nccl_ctx *c = calloc(1, sizeof *c);
    char why[256] = "";
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);

    /* 1. every rank can use its GPU */
    int ok = c != NULL;
    if (!ok) snprintf(why, sizeof why, "out of memory");
    cudaError_t ce = cudaSuccess;
    if (ok && (ce = cudaSetDevice(device)) != cudaSuccess) {
        snprintf(why, sizeof why, "cudaSetDevice(%d): %s", device, cudaGetErrorString(ce));
        ok = 0;
    }
    if (ok && (ce = cudaStreamCreate(&c->stream)) != cudaSuccess) {
        snprintf(why, sizeof why, "cudaStreamCreate: %s", cudaGetErrorString(ce));
        c->stream = NULL;
        ok = 0;
    }
    /* 2. rank 0 makes the id and broadcasts it with its status */
    struct {
        int ok;
        ncclUniqueId id;
    } boot;
    memset(&boot, 0, sizeof boot);
    if (rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&boot.id);
        boot.ok = r == ncclSuccess;
        if (!boot.ok) snprintf(why, sizeof why, "ncclGetUniqueId: %s", ncclGetErrorString(r));
    }
    MPI_Bcast(&boot, (int)sizeof boot, MPI_BYTE, 0, comm);
    if (!boot.ok && ok) {
        if (!why[0]) snprintf(why, sizeof why, "rank 0 could not create the NCCL id");
        ok = 0;
    }
    if (!all_ok(comm, ok)) goto fail;
    /* 3. the communicator */
    ncclResult_t r = ncclCommInitRank(&c->comm, size, boot.id, rank);
    ok = r == ncclSuccess;
    if (!ok) {
        snprintf(why, sizeof why, "ncclCommInitRank(%d of %d, GPU %d): %s", rank, size, device,
                 ncclGetErrorString(r));
        c->comm = NULL;
    }
    if (!all_ok(comm, ok)) goto fail;
    c->device = device;
    c->rank = rank;
    c->size = size;
    *out = c;
    return MNNH_OK;
fail:
    mnnh_nccl_free(c);
    return mnnh_error_set(MNNH_ERR_BACKEND, "NCCL setup on rank %d (GPU %d) failed: %s", rank,
                          device, why[0] ? why : "another rank failed");
}

mnnh_status mnnh_nccl_allreduce_sum(void *ctx, float *devbuf, size_t n) {
    nccl_ctx *c = ctx;
    if (!c) return mnnh_error_set(MNNH_ERR_INTERNAL, "NCCL allreduce without a communicator");
    if (!n || c->size == 1) return MNNH_OK;
    /* the gradients were produced on the backend's stream: wait for them */
    cudaError_t ce = cudaDeviceSynchronize();
    if (ce != cudaSuccess)
        return mnnh_error_set(MNNH_ERR_BACKEND, "before NCCL allreduce: %s", cudaGetErrorString(ce));
    ncclResult_t r = ncclAllReduce(devbuf, devbuf, n, ncclFloat, ncclSum, c->comm, c->stream);
    if (r != ncclSuccess)
        return mnnh_error_set(MNNH_ERR_BACKEND, "ncclAllReduce of %zu floats (rank %d of %d): %s", n,
                              c->rank, c->size, ncclGetErrorString(r));
    ce = cudaStreamSynchronize(c->stream);
    if (ce != cudaSuccess)
        return mnnh_error_set(MNNH_ERR_BACKEND, "NCCL allreduce of %zu floats: %s", n,
                              cudaGetErrorString(ce));
    return MNNH_OK;
}

void mnnh_nccl_free(void *ctx) {
    nccl_ctx *c = ctx;
    if (!c) return;
    if (c->comm) ncclCommDestroy(c->comm);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

#else
typedef int mnnh_nccl_unused; /* ISO C: a translation unit is not empty */
#endif
