/* checkpoint.h: training checkpoints (HDF5), written by rank 0 only.
 *
 * Layout (DESIGN.md, "The model"; a plain h5py user finds everything by name):
 *   /model       the model file layout (mnnh_model_write_h5), normalisation and
 *                density attributes included
 *   /optimizer   datasets m, v (float32 [nparams], Fletcher32); attributes step,
 *                mu_product, lr, beta1, beta2, eps, momentum_decay
 *   /state       attributes epoch (completed), step (optimizer steps), epoch_step
 *                (steps done in the epoch in progress, 0 at a boundary), seed,
 *                data_order ("philox(seed, epoch, rank) shuffle of the rank's
 *                shard"), best_valid_rel_err, best_epoch, lr, plateau_bad,
 *                world_size (at save), the partial sums of the epoch in progress
 *                and seconds (training time so far)
 *   /config      the run configuration, one attribute per option
 *   /metrics     one 1D dataset per metrics field (epoch, step, train_loss, ...),
 *                one entry per logged epoch
 * Files are written to a temporary name in the same directory, fsync'ed and
 * renamed (mnnh_h5_atomic_*), so a crash never leaves a half-written
 * checkpoint under the final name; reading verifies every dataset's
 * Fletcher32 checksum, so a corrupted file is detected and can be skipped. */
#ifndef MNNH_CHECKPOINT_H
#define MNNH_CHECKPOINT_H

#include <stdint.h>

#include "cli.h"
#include "mnnh/model.h"
#include "mnnh/nadam.h"

typedef struct {
    int64_t epoch;        /* completed epochs */
    int64_t step;         /* optimizer steps taken */
    int64_t epoch_step;   /* steps done in the epoch in progress */
    uint64_t seed;
    double best_valid;    /* best mean validation relative error (INFINITY: none) */
    int64_t best_epoch;
    double lr;            /* learning rate in force */
    int64_t plateau_bad;  /* validations without improvement (plateau schedule) */
    int64_t world_size;   /* ranks of the run that saved */
    double ep_err2, ep_err, ep_count, ep_seconds; /* epoch in progress */
    double seconds;       /* training time so far */
} mnnh_train_state;

/* One record of metrics.jsonl (and of /metrics). Per-step times are averages
 * over the epoch's steps, then reduced over ranks: compute_s is the slowest
 * rank's (what the step waits for), compute_mean_s the mean over ranks;
 * allreduce_s is the least any rank spent in the gradient allreduce (the
 * communication itself), allreduce_max_s the most (communication plus the
 * wait for the slowest rank: load imbalance). */
typedef struct {
    double epoch, step, train_loss, train_rel_err, valid_rel_err, lr, samples_per_s, seconds,
        compute_s, compute_mean_s, allreduce_s, allreduce_max_s, io_s, ckpt_s;
} mnnh_metrics_rec;
#define MNNH_METRICS_NFIELDS 14
extern const char *const mnnh_metrics_fields[MNNH_METRICS_NFIELDS];

typedef struct {
    mnnh_metrics_rec *r;
    int n, cap;
} mnnh_metrics;

mnnh_status mnnh_metrics_push(mnnh_metrics *m, const mnnh_metrics_rec *rec);
void mnnh_metrics_free(mnnh_metrics *m);

/* What a checkpoint holds, as written. */
typedef struct {
    mnnh_model *model;
    const mnnh_nadam *opt;
    const mnnh_train_state *state;
    const mnnh_metrics *metrics;
    const mnnh_opt *config;  /* the run's options (may be NULL) */
    int nconfig;
} mnnh_ckpt;

/* Atomically write path (rank 0). */
mnnh_status mnnh_ckpt_write(const char *path, const mnnh_ckpt *ck);

/* A checkpoint read into host memory. */
typedef struct {
    mnnh_arch arch;
    mnnh_norm norm;
    size_t n;                 /* parameters */
    float *params, *m, *v;
    int64_t opt_step;
    double mu_product;
    mnnh_train_state state;
    mnnh_metrics metrics;
} mnnh_ckpt_data;

/* Read and verify a whole checkpoint (every checksum). */
mnnh_status mnnh_ckpt_read(const char *path, mnnh_ckpt_data *d);
void mnnh_ckpt_data_free(mnnh_ckpt_data *d);

/* Choose the checkpoint to resume from (rank 0). resume is "auto" (the newest
 * valid of DIR/last.h5 and DIR/best.h5 by step, a corrupt one skipped with a
 * warning on stderr; *found = 0 when neither exists) or a path (must be
 * valid). On success with *found, d holds it and chosen its path. */
mnnh_status mnnh_ckpt_resolve(const char *dir, const char *resume, mnnh_ckpt_data *d,
                              char *chosen, size_t chosen_len, int *found);

/* MNNH_OK when the two architectures are the same; else an error naming the
 * checkpoint and the first differing hyperparameter. */
mnnh_status mnnh_ckpt_check_arch(const char *path, const mnnh_arch *ck, const mnnh_arch *run);

#endif
