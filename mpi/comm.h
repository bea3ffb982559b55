/* comm.h: the communicator of a distributed run.
 *
 * Defines mnnh_comm (world rank/size, node-local rank from
 * MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), a host staging buffer for the
 * gradient allreduce), the MPI error-check macro used by every file of mpi/,
 * collective error agreement (every rank checks, then one allreduce decides,
 * so that no rank waits in a collective that another rank skipped), backend
 * selection by local rank, the parameter broadcast from rank 0, and the one
 * fused gradient allreduce per step that also carries the stop flag and the
 * loss sums. Device buffers are staged through host memory because Debian's
 * Open MPI is not CUDA-aware. */
#ifndef MNNH_COMM_H
#define MNNH_COMM_H

#include <mpi.h>
#include <stddef.h>

#include "mnnh/backend.h"
#include "mnnh/error.h"
#include "mnnh/model.h"

/* Record a failed MPI call (with MPI's own message) and return its status. */
mnnh_status mnnh_mpi_fail(int rc, const char *call, const char *file, int line);

#define MNNH_MPI_CHECK(call)                                                     \
    do {                                                                         \
        int mnnh_mpi_rc_ = (call);                                               \
        if (mnnh_mpi_rc_ != MPI_SUCCESS)                                         \
            return mnnh_mpi_fail(mnnh_mpi_rc_, #call, __FILE__, __LINE__);      \
    } while (0)

/* Extra floats carried after the gradients in the step's allreduce. */
enum {
    MNNH_STEP_STOP = 0, /* ranks asking to stop (signal or --stop-after) */
    MNNH_STEP_FAIL,     /* ranks whose step failed (they send zero gradients) */
    MNNH_STEP_ERR2,     /* sum of squared relative errors */
    MNNH_STEP_ERR,      /* sum of relative errors */
    MNNH_STEP_COUNT,    /* samples */
    MNNH_STEP_NEXTRA
};

typedef struct {
    MPI_Comm world;      /* a duplicate of the parent, errors returned */
    int rank, size;
    MPI_Comm node;       /* ranks sharing this node's memory */
    int local_rank, local_size;
    float *stage;        /* host staging buffer, stage_n floats */
    size_t stage_n;
    void *nccl;          /* NCCL context when every rank computes on a GPU, else NULL */
} mnnh_comm;

/* Collective over parent. MPI must be initialised. */
mnnh_status mnnh_comm_create(mnnh_comm **c, MPI_Comm parent);
void mnnh_comm_free(mnnh_comm *c);

/* Collective: the worst status over all ranks. When any rank failed, every
 * rank returns that status with the message of the lowest failing rank (so
 * rank 0 can print it). */
mnnh_status mnnh_comm_agree(const mnnh_comm *c, mnnh_status st);

/* Collective: create this rank's backend. name is auto|cpu|ref|cuda; a GPU
 * backend uses device local_rank (or 0 when the launcher left exactly one
 * visible device per rank); fewer GPUs than local ranks is an error naming
 * both counts. *gpu_note receives a one-line description for the log. */
mnnh_status mnnh_comm_backend_create(mnnh_comm *c, const char *name, mnnh_backend **be,
                                     char *note, size_t note_len);

/* Collective: copy rank 0's parameters to every rank. */
mnnh_status mnnh_comm_bcast_params(mnnh_comm *c, mnnh_model *model);
/* Collective: broadcast n floats (host) from rank 0. */
mnnh_status mnnh_comm_bcast_floats(const mnnh_comm *c, float *host, size_t n);

/* Collective, one MPI_Allreduce: sums the model's gradients over ranks
 * (staged on the host) together with extra[0..MNNH_STEP_NEXTRA) (stop flag,
 * loss sums, sample count); on return the model's gradient buffer holds the
 * sum and extra the summed values. When every rank runs on a GPU and NCCL is
 * built in, the gradients are summed in device memory by NCCL instead and
 * the extras by a second, tiny MPI_Allreduce. */
/* A rank whose step failed passes have_grads = 0 and extra[MNNH_STEP_FAIL] = 1:
 * it contributes zeros, so the collective completes on every rank and all
 * ranks see the failure in the same step (no separate status agreement). */
mnnh_status mnnh_comm_allreduce_grads(mnnh_comm *c, mnnh_model *model, int have_grads,
                                      float extra[MNNH_STEP_NEXTRA]);

/* Collective sums, maxima and minima of doubles (in place). */
mnnh_status mnnh_comm_sum_doubles(const mnnh_comm *c, double *x, int n);
mnnh_status mnnh_comm_max_doubles(const mnnh_comm *c, double *x, int n);
mnnh_status mnnh_comm_min_doubles(const mnnh_comm *c, double *x, int n);

#endif
