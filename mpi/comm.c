/* comm.c: communicator, collective error agreement, backend selection by
 * local rank, parameter broadcast and the fused gradient allreduce. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "comm.h"

#include "mnnh_nccl.h"

#include <cblas.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

mnnh_status mnnh_mpi_fail(int rc, const char *call, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return mnnh_error_set(MNNH_ERR_INTERNAL, "%s failed (%s) at %s:%d", call, msg, file, line);
}

mnnh_status mnnh_comm_create(mnnh_comm **out, MPI_Comm parent) {
    *out = NULL;
    mnnh_comm *c = calloc(1, sizeof *c);
    if (!c) return mnnh_error_set(MNNH_ERR_NOMEM, "communicator");
    c->world = c->node = MPI_COMM_NULL;
    *out = c;
    MNNH_MPI_CHECK(MPI_Comm_dup(parent, &c->world));
    /* Errors come back as codes so that we can name what failed. */
    MNNH_MPI_CHECK(MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN));
    MNNH_MPI_CHECK(MPI_Comm_rank(c->world, &c->rank));
    MNNH_MPI_CHECK(MPI_Comm_size(c->world, &c->size));
    MNNH_MPI_CHECK(MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                       &c->node));
    MNNH_MPI_CHECK(MPI_Comm_rank(c->node, &c->local_rank));
    MNNH_MPI_CHECK(MPI_Comm_size(c->node, &c->local_size));
    return MNNH_OK;
}

void mnnh_comm_free(mnnh_comm *c) {
    if (!c) return;
#ifdef MNNH_HAVE_NCCL
    if (c->nccl) mnnh_nccl_free(c->nccl);
#endif
    if (c->node != MPI_COMM_NULL) MPI_Comm_free(&c->node);
    if (c->world != MPI_COMM_NULL) MPI_Comm_free(&c->world);
    free(c->stage);
    free(c);
}

mnnh_status mnnh_comm_agree(const mnnh_comm *c, mnnh_status st) {
    /* worst[0]: the worst status; worst[1]: the lowest failing rank */
    int mine[2] = {(int)st, st ? c->rank : c->size}, worst[2];
    int rc = MPI_Allreduce(&mine[0], &worst[0], 1, MPI_INT, MPI_MAX, c->world);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&mine[1], &worst[1], 1, MPI_INT, MPI_MIN, c->world);
    if (rc != MPI_SUCCESS) return mnnh_mpi_fail(rc, "MPI_Allreduce(status)", __FILE__, __LINE__);
    if (worst[0] == MNNH_OK) return MNNH_OK;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", mnnh_error_msg());
    rc = MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, worst[1], c->world);
    int fst = (int)st; /* the lowest failing rank's status decides the exit code */
    if (rc == MPI_SUCCESS) rc = MPI_Bcast(&fst, 1, MPI_INT, worst[1], c->world);
    if (rc != MPI_SUCCESS) return mnnh_mpi_fail(rc, "MPI_Bcast(error message)", __FILE__, __LINE__);
    msg[sizeof msg - 1] = '\0';
    if (worst[1] != c->rank)
        return mnnh_error_set((mnnh_status)fst, "%s (reported by rank %d)", msg, worst[1]);
    return mnnh_error_set(st, "%s", msg);
}

/* Which GPU this rank uses, or an error when the node has too few. */
static mnnh_status comm_pick_device(const mnnh_comm *c, int ngpu, int *device) {
    const char *bound = getenv("CUDA_VISIBLE_DEVICES");
    if (ngpu >= c->local_size) {
        *device = c->local_rank;
    } else if (ngpu == 1 && bound && bound[0]) {
        *device = 0; /* the launcher bound one GPU to each rank (jobs/gpu-bind.sh) */
    } else {
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--backend: %d GPU(s) visible on this node but %d ranks run on it "
                              "(one GPU per rank: start fewer ranks per node, or bind with "
                              "jobs/gpu-bind.sh, or use --backend cpu)",
                              ngpu, c->local_size);
    }
    return MNNH_OK;
}

/* CPU threads for this rank: the cores it may run on, shared with the other
 * ranks of the node when the launcher did not bind ranks to cores (all of a
 * node's ranks would otherwise each start one thread per core). */
static int comm_threads_per_rank(const mnnh_comm *c) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(online > 0 ? online : 1);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        int mine = CPU_COUNT(&set);
        n = mine < n ? mine : n / c->local_size;
    } else {
        n /= c->local_size;
    }
    return n < 1 ? 1 : n;
}

/* Unless the user chose (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS), size the
 * OpenMP and OpenBLAS thread pools to this rank's share of the node. */
static void comm_set_threads(const mnnh_comm *c) {
    int n = comm_threads_per_rank(c);
#ifdef _OPENMP
    if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(n);
#endif
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(n);
}

mnnh_status mnnh_comm_backend_create(mnnh_comm *c, const char *name, mnnh_backend **be,
                                     char *note, size_t note_len) {
    *be = NULL;
    comm_set_threads(c);
    int ngpu = mnnh_cuda_device_count();
    int want_gpu = !strcmp(name, "cuda") || (!strcmp(name, "auto") && ngpu > 0);
    int device = -1;
    mnnh_status st = MNNH_OK;
    if (want_gpu) st = comm_pick_device(c, ngpu, &device);
    if (!st) st = mnnh_backend_create(be, want_gpu ? "cuda" : (!strcmp(name, "auto") ? "cpu" : name), device);
    st = mnnh_comm_agree(c, st);
    if (st) {
        if (*be) mnnh_backend_free(*be);
        *be = NULL;
        return st;
    }
#ifdef MNNH_HAVE_NCCL
    /* NCCL only when every rank has a GPU: its communicator is collective. */
    int all_gpu = want_gpu;
    MNNH_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all_gpu, 1, MPI_INT, MPI_MIN, c->world));
    if (all_gpu && c->size > 1 && !getenv("MNNH_NO_NCCL")) {
        st = mnnh_nccl_create(&c->nccl, c->world, device);
        if (st) {
            mnnh_backend_free(*be);
            *be = NULL;
            return st;
        }
    }
#endif
    if (note) {
        if (want_gpu)
            snprintf(note, note_len, "backend %s, rank %d -> GPU %d of %d on its node", (*be)->ops->name,
                     c->rank, device, ngpu);
        else
            snprintf(note, note_len, "backend %s (%s), %d thread(s) per rank", (*be)->ops->name,
                     !strcmp(name, "auto") ? "no GPU found at run time" : "as requested",
                     (*be)->threads);
    }
    return MNNH_OK;
}

mnnh_status mnnh_comm_bcast_floats(const mnnh_comm *c, float *host, size_t n) {
    /* chunks below INT_MAX elements */
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        int len = (int)(n - off < chunk ? n - off : chunk);
        MNNH_MPI_CHECK(MPI_Bcast(host + off, len, MPI_FLOAT, 0, c->world));
    }
    return MNNH_OK;
}

static mnnh_status comm_stage_reserve(mnnh_comm *c, size_t n) {
    if (c->stage_n >= n) return MNNH_OK;
    float *p = realloc(c->stage, n * sizeof(float));
    if (!p) return mnnh_error_set(MNNH_ERR_NOMEM, "allreduce staging buffer (%zu floats)", n);
    c->stage = p;
    c->stage_n = n;
    return MNNH_OK;
}

mnnh_status mnnh_comm_bcast_params(mnnh_comm *c, mnnh_model *model) {
    size_t n = mnnh_model_nparams(model);
    MNNH_TRY(comm_stage_reserve(c, n + MNNH_STEP_NEXTRA));
    if (c->rank == 0) MNNH_TRY(mnnh_model_get_params(model, c->stage));
    MNNH_TRY(mnnh_comm_bcast_floats(c, c->stage, n));
    return mnnh_model_set_params(model, c->stage);
}

mnnh_status mnnh_comm_allreduce_grads(mnnh_comm *c, mnnh_model *model, int have_grads,
                                      float extra[MNNH_STEP_NEXTRA]) {
    size_t n = mnnh_model_nparams(model);
    size_t total = n + MNNH_STEP_NEXTRA;
#ifdef MNNH_HAVE_NCCL
    if (c->nccl) {
        if (!have_grads) MNNH_TRY(mnnh_model_zero_grads(model));
        MNNH_TRY(mnnh_nccl_allreduce_sum(c->nccl, mnnh_model_grads(model), n));
        MNNH_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, extra, MNNH_STEP_NEXTRA, MPI_FLOAT, MPI_SUM,
                                     c->world));
        return MNNH_OK;
    }
#endif
    if (total > (size_t)1 << 31)
        return mnnh_error_set(MNNH_ERR_ARG, "%zu parameters: too many for one allreduce", n);
    MNNH_TRY(comm_stage_reserve(c, total));
    if (have_grads) MNNH_TRY(mnnh_model_get_grads(model, c->stage));
    else memset(c->stage, 0, n * sizeof(float));
    memcpy(c->stage + n, extra, MNNH_STEP_NEXTRA * sizeof(float));
    if (c->size > 1)
        MNNH_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, c->stage, (int)total, MPI_FLOAT, MPI_SUM, c->world));
    memcpy(extra, c->stage + n, MNNH_STEP_NEXTRA * sizeof(float));
    return mnnh_backend_upload(mnnh_model_backend(model), mnnh_model_grads(model), c->stage,
                               n * sizeof(float));
}

static mnnh_status comm_reduce_doubles(const mnnh_comm *c, double *x, int n, MPI_Op op) {
    if (c->size > 1) MNNH_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, op, c->world));
    return MNNH_OK;
}
mnnh_status mnnh_comm_sum_doubles(const mnnh_comm *c, double *x, int n) {
    return comm_reduce_doubles(c, x, n, MPI_SUM);
}
mnnh_status mnnh_comm_max_doubles(const mnnh_comm *c, double *x, int n) {
    return comm_reduce_doubles(c, x, n, MPI_MAX);
}
mnnh_status mnnh_comm_min_doubles(const mnnh_comm *c, double *x, int n) {
    return comm_reduce_doubles(c, x, n, MPI_MIN);
}
