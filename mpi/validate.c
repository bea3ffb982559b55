/* validate.c: evaluation of each rank's shard and the reductions. */
#include "validate.h"

#include <math.h>
#include <stdlib.h>

/* Evaluate the shard locally; sums of err and err^2 into s[0], s[1]. */
static mnnh_status validate_local(mnnh_model *model, const mnnh_shard *sh, int batch, double *err,
                                  double *s) {
    mnnh_backend *be = mnnh_model_backend(model);
    size_t g = sh->grid;
    float *v = NULL, *t = NULL;
    double *e = malloc((size_t)batch * sizeof(double));
    mnnh_status st = e ? MNNH_OK : mnnh_error_set(MNNH_ERR_NOMEM, "validation buffers");
    if (!st) st = mnnh_backend_alloc(be, (void **)&v, (size_t)batch * g * sizeof(float));
    if (!st) st = mnnh_backend_alloc(be, (void **)&t, (size_t)batch * g * sizeof(float));
    for (int64_t i = 0; i < sh->count && !st; i += batch) {
        int b = (int)(sh->count - i < batch ? sh->count - i : batch);
        size_t bytes = (size_t)b * g * sizeof(float);
        st = mnnh_backend_upload(be, v, sh->input + (size_t)i * g, bytes);
        if (!st) st = mnnh_backend_upload(be, t, sh->output + (size_t)i * g, bytes);
        if (!st) st = mnnh_model_eval_batch(model, b, v, t, NULL, e);
        for (int k = 0; k < b && !st; k++) {
            s[0] += e[k];
            s[1] += e[k] * e[k];
            if (err) err[i + k] = e[k];
        }
    }
    mnnh_backend_release(be, v);
    mnnh_backend_release(be, t);
    free(e);
    return st;
}

mnnh_status mnnh_validate_shard(const mnnh_comm *c, mnnh_model *model, const mnnh_shard *sh,
                                int batch, double *err, mnnh_valid_result *res) {
    double s[3] = {0, 0, (double)sh->count};
    if (batch > mnnh_model_max_batch(model)) batch = mnnh_model_max_batch(model);
    MNNH_TRY(mnnh_comm_agree(c, validate_local(model, sh, batch, err, s)));
    MNNH_TRY(mnnh_comm_sum_doubles(c, s, 3));
    res->count = s[2];
    res->mean_err = s[2] > 0 ? s[0] / s[2] : NAN;
    res->mean_err2 = s[2] > 0 ? s[1] / s[2] : NAN;
    return MNNH_OK;
}

mnnh_status mnnh_validate_gather(const mnnh_comm *c, const mnnh_shard *sh, const double *err,
                                 double *all) {
    int *counts = NULL, *displs = NULL;
    if (c->rank == 0) {
        counts = malloc((size_t)c->size * sizeof(int));
        displs = malloc((size_t)c->size * sizeof(int));
        if (!counts || !displs) {
            free(counts);
            free(displs);
            return mnnh_error_set(MNNH_ERR_NOMEM, "gather counts");
        }
        for (int r = 0; r < c->size; r++) {
            int64_t start, count;
            mnnh_shard_range(sh->total, c->size, r, &start, &count);
            counts[r] = (int)count;
            displs[r] = (int)start;
        }
    }
    int rc = MPI_Gatherv(err, (int)sh->count, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0,
                         c->world);
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS) return mnnh_mpi_fail(rc, "MPI_Gatherv(errors)", __FILE__, __LINE__);
    return MNNH_OK;
}
