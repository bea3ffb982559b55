/* train.h: the distributed training loop behind `mnnh train`.
 *
 * Every rank holds a contiguous shard of the training and validation sets
 * (shard.h) and a replica of the model; parameters start as rank 0's. A step:
 * each rank takes the next batch/P samples of its shard in the epoch's order
 * (a Philox shuffle keyed by (seed, epoch, rank)), computes its gradient
 * scaled by 1/batch, and one fused allreduce (comm.h) sums the gradients, the
 * loss sums and the stop flag; every rank then applies the same NAdam update.
 * At each epoch end, validation runs on all ranks (every --valid-every
 * epochs), rank 0 logs metrics.jsonl and writes last.h5 (and best.h5 when the
 * validation error improved), atomically. */
#ifndef MNNH_TRAIN_H
#define MNNH_TRAIN_H

#include <stdint.h>

#include "cli.h"
#include "comm.h"

typedef enum { MNNH_LR_CONSTANT = 0, MNNH_LR_STEP, MNNH_LR_PLATEAU } mnnh_lr_schedule;

typedef struct {
    const char *train_path, *valid_path, *out_dir, *resume, *backend, *variant, *schedule;
    const char *init;      /* weight initialisation of a new run: he | glorot */
    int L, m, r, K, nb_ad;
    int batch;             /* global batch = sum of the per-rank batches */
    int epochs;            /* total epochs of the run (a resumed run continues to it) */
    int valid_every;       /* validate every E epochs (and after the last) */
    int ckpt_every;        /* write last.h5 every E epochs (and after the last) */
    int valid_batch;       /* per-rank batch of validation (0: the training one) */
    double lr, lr_gamma, lr_min;
    double adam_eps;       /* NAdam epsilon (torch default 1e-8; see docs/results.md) */
    double init_bias;      /* initial bias of the kernel layers a ReLU follows (new runs) */
    int lr_step, lr_patience;
    int64_t seed;
    int density;           /* KS density output layer (n_e, dx from the training set) */
    int no_normalize;      /* keep input_scale 1, shifts 0 */
    int force;             /* start afresh in a directory holding checkpoints */
    double progress_s;     /* seconds between progress lines on stderr (0: each step) */
    int64_t stop_after;    /* test hook: act as if signalled after this global step */
    const mnnh_opt *opts;  /* the run's options, stored as /config */
    int nopts;
} mnnh_train_config;

void mnnh_train_config_defaults(mnnh_train_config *cfg);

/* Collective. Runs (or resumes) training to cfg->epochs. On return
 * *preempted = 1 when a signal (or stop_after) stopped it after a checkpoint. */
mnnh_status mnnh_train_run(const mnnh_train_config *cfg, mnnh_comm *c, int *preempted);

#endif
