/* validate.h: distributed validation. Every rank evaluates its shard of the
 * validation set in batches; the sums of the relative errors are reduced
 * (allreduce, so every rank can act on the result, e.g. the plateau
 * schedule); per-sample errors can be gathered on rank 0 in sample order. */
#ifndef MNNH_VALIDATE_H
#define MNNH_VALIDATE_H

#include "comm.h"
#include "mnnh/model.h"
#include "shard.h"

typedef struct {
    double mean_err;   /* mean over samples of ||u - u_NN|| / ||u|| */
    double mean_err2;  /* mean squared relative error (the training loss) */
    double count;      /* samples */
} mnnh_valid_result;

/* Collective. err (host, sh->count doubles) receives the shard's per-sample
 * errors when not NULL. The model must be reserved for batch. */
mnnh_status mnnh_validate_shard(const mnnh_comm *c, mnnh_model *model, const mnnh_shard *sh,
                                int batch, double *err, mnnh_valid_result *res);

/* Collective: gather every rank's per-sample errors on rank 0 into all
 * (sh->total doubles on rank 0, ignored elsewhere), in sample order. */
mnnh_status mnnh_validate_gather(const mnnh_comm *c, const mnnh_shard *sh, const double *err,
                                 double *all);

#endif
