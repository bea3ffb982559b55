/* train.c: the distributed training loop (see train.h for the step).
 *
 * Structure: train_setup (collective checks of options, run directory,
 * checkpoint to resume, data, model) -> train_epochs (steps, allreduce,
 * NAdam, end-of-epoch validation, schedule, checkpoints, metrics) ->
 * teardown. Every decision that could differ between ranks is agreed
 * collectively (mnnh_comm_agree) before the next collective call. */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "mnnh/model_io.h"
#include "mnnh/nadam.h"
#include "mnnh/rng.h"
#include "shard.h"
#include "signals.h"
#include "validate.h"

char *openblas_get_corename(void); /* OpenBLAS: the kernel set in use, for the log */

void mnnh_train_config_defaults(mnnh_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = "auto";
    cfg->variant = "cnn";
    cfg->schedule = "constant";
    cfg->init = "he";
    cfg->nb_ad = 1;
    cfg->batch = 64;
    cfg->epochs = 10;
    cfg->valid_every = 1;
    cfg->ckpt_every = 1;
    cfg->lr = 1e-3;
    cfg->lr_gamma = 0.5;
    cfg->lr_min = 0;
    mnnh_nadam_hparams nadam;
    mnnh_nadam_defaults(&nadam);
    cfg->adam_eps = nadam.eps; /* one default, the optimizer's own */
    cfg->lr_step = 10;
    cfg->lr_patience = 5;
    cfg->seed = 1;
    cfg->progress_s = 5;
}

typedef struct {
    const mnnh_train_config *cfg;
    mnnh_comm *c;
    mnnh_lr_schedule schedule;
    mnnh_init init;
    mnnh_arch arch;
    mnnh_shard train, valid;
    mnnh_backend *be;
    mnnh_model *model;
    mnnh_nadam *opt;
    mnnh_train_state state;
    mnnh_metrics metrics;
    int b;                   /* per-rank batch */
    int valid_batch;
    int64_t steps_per_epoch;
    int64_t *perm;           /* epoch order of the local shard */
    float *host_v, *host_t;  /* batch assembled on the host */
    float *dev_v, *dev_t;    /* ... and on the backend */
    char last_path[4200], best_path[4200], metrics_path[4200];
    double t_run0;           /* wall clock at the start of this process's training */
    int64_t step0;           /* global step at the start of this process's training */
    double last_progress;
} trainer;

static double train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define LOG0(t, ...)                                          \
    do {                                                      \
        if ((t)->c->rank == 0) {                              \
            fprintf(stderr, "mnnh train: " __VA_ARGS__);      \
            fflush(stderr);                                   \
        }                                                     \
    } while (0)

/* ----------------------------------------------------------------- setup */

static mnnh_status train_check_options(trainer *t) {
    const mnnh_train_config *cfg = t->cfg;
    int P = t->c->size;
    if (!strcmp(cfg->schedule, "constant")) t->schedule = MNNH_LR_CONSTANT;
    else if (!strcmp(cfg->schedule, "step")) t->schedule = MNNH_LR_STEP;
    else if (!strcmp(cfg->schedule, "plateau")) t->schedule = MNNH_LR_PLATEAU;
    else
        return mnnh_error_set(MNNH_ERR_ARG, "--lr-schedule %s: expected constant, step or plateau",
                              cfg->schedule);
    if (mnnh_init_parse(cfg->init, &t->init))
        return mnnh_error_set(MNNH_ERR_ARG, "--init %s: expected he or glorot", cfg->init);
    if (!(cfg->adam_eps > 0) || !isfinite(cfg->adam_eps))
        return mnnh_error_set(MNNH_ERR_ARG, "--adam-eps %g: must be a finite number > 0", cfg->adam_eps);
    if (!isfinite(cfg->init_bias))
        return mnnh_error_set(MNNH_ERR_ARG, "--init-bias %g: must be finite", cfg->init_bias);
    if (cfg->batch < 1) return mnnh_error_set(MNNH_ERR_ARG, "--batch %d: must be >= 1", cfg->batch);
    if (cfg->batch % P != 0)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--batch %d is not divisible by the %d ranks: the global batch is "
                              "split evenly, batch/P samples per rank (use a multiple of %d)",
                              cfg->batch, P, P);
    if (cfg->epochs < 1) return mnnh_error_set(MNNH_ERR_ARG, "--epochs %d: must be >= 1", cfg->epochs);
    if (cfg->valid_every < 1)
        return mnnh_error_set(MNNH_ERR_ARG, "--valid-every %d: must be >= 1", cfg->valid_every);
    if (cfg->ckpt_every < 1)
        return mnnh_error_set(MNNH_ERR_ARG, "--ckpt-every %d: must be >= 1", cfg->ckpt_every);
    if (!(cfg->lr > 0)) return mnnh_error_set(MNNH_ERR_ARG, "--lr %g: must be > 0", cfg->lr);
    if (!(cfg->lr_gamma > 0 && cfg->lr_gamma <= 1))
        return mnnh_error_set(MNNH_ERR_ARG, "--lr-gamma %g: must be in (0, 1]", cfg->lr_gamma);
    if (cfg->lr_step < 1) return mnnh_error_set(MNNH_ERR_ARG, "--lr-step %d: must be >= 1", cfg->lr_step);
    if (cfg->lr_patience < 1)
        return mnnh_error_set(MNNH_ERR_ARG, "--lr-patience %d: must be >= 1", cfg->lr_patience);
    if (cfg->valid_batch < 0)
        return mnnh_error_set(MNNH_ERR_ARG, "--valid-batch %d: must be >= 0", cfg->valid_batch);
    t->b = cfg->batch / P;
    t->valid_batch = cfg->valid_batch ? cfg->valid_batch : (t->b > 32 ? t->b : 32);
    mnnh_variant v;
    if (mnnh_variant_parse(cfg->variant, &v) != MNNH_OK)
        return mnnh_error_set(MNNH_ERR_ARG, "--variant %s: expected cnn or lc", cfg->variant);
    int dim, N;
    MNNH_TRY(mnnh_shard_probe(cfg->train_path, "--train", &dim, &N));
    mnnh_arch_set(&t->arch, dim, cfg->L, cfg->m, cfg->r, cfg->K, v);
    t->arch.nb_ad = cfg->nb_ad;
    mnnh_status st = mnnh_arch_validate(&t->arch);
    if (st) return mnnh_error_prefix(st, "model (--L %d --m %d --r %d --K %d)", cfg->L, cfg->m, cfg->r, cfg->K);
    if (N != t->arch.N)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--train %s: the grid has N = %d points per axis but the model has "
                              "N = 2^L m = 2^%d * %d = %d (check --L and --m)",
                              cfg->train_path, N, cfg->L, cfg->m, t->arch.N);
    return MNNH_OK;
}

/* Remove temporary files left by a process killed while checkpointing. */
static void train_remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "last.h5.tmp.", 12) || !strncmp(e->d_name, "best.h5.tmp.", 12)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) == 0)
                fprintf(stderr, "mnnh train: removed %s (left by an interrupted checkpoint)\n", p);
        }
    closedir(d);
}

/* Rank 0: create the run directory and check that it is writable. */
static mnnh_status train_prepare_dir(trainer *t) {
    const char *dir = t->cfg->out_dir;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--out %s: cannot create the run directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mnnh_error_set(MNNH_ERR_ARG, "--out %s: not a directory", dir);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.mnnh-write-test.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return mnnh_error_set(MNNH_ERR_ARG, "--out %s: the checkpoint directory is not writable: %s",
                              dir, strerror(errno));
    close(fd);
    unlink(probe);
    train_remove_stale_tmp(dir);
    if (!t->cfg->resume && !t->cfg->force && access(t->last_path, F_OK) == 0)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--out %s already holds last.h5: pass --resume auto to continue that "
                              "run, or --force to start a new one over it",
                              dir);
    return MNNH_OK;
}

/* Rank 0 reads the checkpoint to resume from; every rank learns the outcome. */
static mnnh_status train_resolve_resume(trainer *t, mnnh_ckpt_data *d, int *found) {
    char chosen[4200] = "";
    mnnh_status st = MNNH_OK;
    *found = 0;
    if (t->c->rank == 0 && t->cfg->resume) {
        st = mnnh_ckpt_resolve(t->cfg->out_dir, t->cfg->resume, d, chosen, sizeof chosen, found);
        if (!st && *found) st = mnnh_ckpt_check_arch(chosen, &d->arch, &t->arch);
        if (!st && *found)
            fprintf(stderr, "mnnh train: resuming from %s (epoch %lld, step %lld, saved by %lld ranks)\n",
                    chosen, (long long)d->state.epoch, (long long)d->state.step,
                    (long long)d->state.world_size);
        else if (!st)
            fprintf(stderr, "mnnh train: --resume %s: no checkpoint in %s, starting a new run\n",
                    t->cfg->resume, t->cfg->out_dir);
    }
    MNNH_TRY(mnnh_comm_agree(t->c, st));
    MNNH_MPI_CHECK(MPI_Bcast(found, 1, MPI_INT, 0, t->c->world));
    return MNNH_OK;
}

/* Give every rank rank 0's checkpoint (all of it is global state). */
static mnnh_status train_apply_checkpoint(trainer *t, mnnh_ckpt_data *d) {
    mnnh_comm *c = t->c;
    size_t n = mnnh_model_nparams(t->model);
    int ok = 1;
    if (c->rank != 0) {
        d->n = n;
        d->params = malloc(n * sizeof(float));
        d->m = malloc(n * sizeof(float));
        d->v = malloc(n * sizeof(float));
        ok = d->params && d->m && d->v;
    }
    MNNH_TRY(mnnh_comm_agree(c, ok ? MNNH_OK : mnnh_error_set(MNNH_ERR_NOMEM, "checkpoint buffers")));
    MNNH_TRY(mnnh_comm_bcast_floats(c, d->params, n));
    MNNH_TRY(mnnh_comm_bcast_floats(c, d->m, n));
    MNNH_TRY(mnnh_comm_bcast_floats(c, d->v, n));
    MNNH_MPI_CHECK(MPI_Bcast(&d->norm, sizeof d->norm, MPI_BYTE, 0, c->world));
    MNNH_MPI_CHECK(MPI_Bcast(&d->state, sizeof d->state, MPI_BYTE, 0, c->world));
    MNNH_MPI_CHECK(MPI_Bcast(&d->mu_product, 1, MPI_DOUBLE, 0, c->world));
    /* the metrics history matters on rank 0 only (it writes the checkpoints) */
    MNNH_TRY(mnnh_model_set_params(t->model, d->params));
    *mnnh_model_norm(t->model) = d->norm;
    mnnh_backend *be = t->be;
    MNNH_TRY(mnnh_backend_upload(be, t->opt->m, d->m, n * sizeof(float)));
    MNNH_TRY(mnnh_backend_upload(be, t->opt->v, d->v, n * sizeof(float)));
    t->opt->step = d->state.step;
    t->opt->mu_product = d->mu_product;
    t->state = d->state;
    if (c->rank == 0) {
        t->metrics = d->metrics;
        memset(&d->metrics, 0, sizeof d->metrics);
    }
    return MNNH_OK;
}

/* Rank 0: keep the metrics.jsonl records of epochs up to the checkpoint's,
 * so that a resumed run does not repeat the epochs it redoes. */
static void train_trim_metrics(const char *path, int64_t epoch) {
    FILE *in = fopen(path, "r");
    if (!in) return;
    char tmp[4300], line[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return;
    }
    while (fgets(line, sizeof line, in)) {
        const char *e = strstr(line, "\"epoch\":");
        if (e && strtoll(e + 8, NULL, 10) <= epoch) fputs(line, out);
    }
    fclose(in);
    if (fclose(out) == 0) rename(tmp, path);
}

static mnnh_status train_init_fresh(trainer *t) {
    const mnnh_train_config *cfg = t->cfg;
    mnnh_norm *norm = mnnh_model_norm(t->model);
    mnnh_norm_default(norm);
    mnnh_status st = MNNH_OK;
    if (!cfg->no_normalize) st = mnnh_shard_norm_stats(t->c, &t->train, norm);
    if (!st && cfg->density) {
        if (!(t->train.n_e > 0))
            st = mnnh_error_set(MNNH_ERR_FORMAT, "--density: --train %s has no positive root attribute n_e",
                                cfg->train_path);
        else if (!(t->train.cell_volume > 0))
            st = mnnh_error_set(MNNH_ERR_FORMAT,
                                "--density: --train %s has none of the root attributes dx, box or "
                                "domain to give the cell volume",
                                cfg->train_path);
        norm->density_ne = (float)t->train.n_e;
        norm->cell_volume = (float)t->train.cell_volume;
    }
    MNNH_TRY(mnnh_comm_agree(t->c, st));
    if (t->c->rank == 0) st = mnnh_model_init_params_with(t->model, (uint64_t)cfg->seed, t->init);
    if (t->c->rank == 0 && !st && cfg->init_bias != 0)
        st = mnnh_model_set_relu_biases(t->model, (float)cfg->init_bias);
    MNNH_TRY(mnnh_comm_agree(t->c, st));
    MNNH_TRY(mnnh_comm_bcast_params(t->c, t->model));
    memset(&t->state, 0, sizeof t->state);
    t->state.seed = (uint64_t)cfg->seed;
    t->state.best_valid = INFINITY;
    t->state.best_epoch = -1;
    t->state.lr = cfg->lr;
    if (t->c->rank == 0) unlink(t->metrics_path);
    return MNNH_OK;
}

static mnnh_status train_alloc(trainer *t) {
    size_t g = t->train.grid, n = (size_t)t->b * g;
    t->perm = malloc((size_t)(t->train.count ? t->train.count : 1) * sizeof(int64_t));
    t->host_v = malloc(n * sizeof(float));
    t->host_t = malloc(n * sizeof(float));
    if (!t->perm || !t->host_v || !t->host_t) return mnnh_error_set(MNNH_ERR_NOMEM, "batch buffers");
    MNNH_TRY(mnnh_backend_alloc(t->be, (void **)&t->dev_v, n * sizeof(float)));
    return mnnh_backend_alloc(t->be, (void **)&t->dev_t, n * sizeof(float));
}

/* Steps per epoch: the same on every rank, limited by the smallest shard. */
static mnnh_status train_steps_per_epoch(trainer *t) {
    long long mine = t->train.count, least = 0;
    MNNH_MPI_CHECK(MPI_Allreduce(&mine, &least, 1, MPI_LONG_LONG, MPI_MIN, t->c->world));
    t->steps_per_epoch = least / t->b;
    if (t->steps_per_epoch < 1)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--batch %d: each of the %d ranks needs %d samples per step but the "
                              "smallest training shard of %s holds %lld (use a smaller --batch)",
                              t->cfg->batch, t->c->size, t->b, t->cfg->train_path, least);
    return MNNH_OK;
}

static mnnh_status train_model_create(trainer *t) {
    char note[256];
    MNNH_TRY(mnnh_comm_backend_create(t->c, t->cfg->backend, &t->be, note, sizeof note));
    mnnh_status st = mnnh_model_create(&t->model, &t->arch, t->be);
    int mb = t->b > t->valid_batch ? t->b : t->valid_batch;
    if (!st) st = mnnh_model_reserve(t->model, mb);
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    h.lr = t->cfg->lr;
    h.eps = t->cfg->adam_eps;
    if (!st) st = mnnh_nadam_create(&t->opt, t->be, mnnh_model_nparams(t->model), &h);
    if (!st) st = train_alloc(t);
    MNNH_TRY(mnnh_comm_agree(t->c, st));
    const char *core = openblas_get_corename();
    int pt = st ? 1 : mnnh_model_part_plan(t->model, t->b, NULL);
    LOG0(t, "%s%s; OpenBLAS core %s\n", note,
         pt > 1 ? "; levels and adjacent part side by side on the threads" : "", core);
#if defined(__x86_64__)
    /* Debian's OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs it does not know */
    if (core && !strstr(core, "SkylakeX") && !strstr(core, "Cooperlake") &&
        !strstr(core, "Sapphire") && __builtin_cpu_supports("avx512f"))
        LOG0(t, "warning: OpenBLAS uses its '%s' kernels on an AVX-512 CPU; set "
                "OPENBLAS_CORETYPE=SkylakeX for about 5x faster BLAS (docs/training.md)\n", core);
#endif
    return MNNH_OK;
}

static mnnh_status train_setup(trainer *t, mnnh_ckpt_data *ck, int *resumed) {
    const mnnh_train_config *cfg = t->cfg;
    snprintf(t->last_path, sizeof t->last_path, "%s/last.h5", cfg->out_dir);
    snprintf(t->best_path, sizeof t->best_path, "%s/best.h5", cfg->out_dir);
    snprintf(t->metrics_path, sizeof t->metrics_path, "%s/metrics.jsonl", cfg->out_dir);
    MNNH_TRY(mnnh_comm_agree(t->c, train_check_options(t)));
    MNNH_TRY(mnnh_comm_agree(t->c, t->c->rank == 0 ? train_prepare_dir(t) : MNNH_OK));
    MNNH_TRY(train_resolve_resume(t, ck, resumed));
    MNNH_TRY(mnnh_shard_load(&t->train, t->c, cfg->train_path, "--train", &t->arch, 1));
    MNNH_TRY(mnnh_shard_load(&t->valid, t->c, cfg->valid_path, "--valid", &t->arch, 1));
    MNNH_TRY(mnnh_comm_agree(t->c, train_steps_per_epoch(t)));
    MNNH_TRY(train_model_create(t));
    if (*resumed) {
        MNNH_TRY(train_apply_checkpoint(t, ck));
        if (t->c->rank == 0) train_trim_metrics(t->metrics_path, t->state.epoch);
    } else {
        MNNH_TRY(train_init_fresh(t));
        LOG0(t, "new run: %s initialisation, ReLU biases %g, seed %lld\n", mnnh_init_name(t->init),
             cfg->init_bias, (long long)cfg->seed);
    }
    const mnnh_norm *nm = mnnh_model_norm(t->model);
    LOG0(t, "%d rank(s), %dD N=%d L=%d m=%d r=%d K=%d %s, %zu parameters; train %lld samples "
            "(%s), valid %lld (%s); batch %d = %d x %d per rank, %lld steps/epoch; "
            "normalisation x*%g%+g, output %+g%s\n",
         t->c->size, t->arch.dim, t->arch.N, t->arch.L, t->arch.m, t->arch.r, t->arch.K,
         mnnh_variant_name(t->arch.variant), mnnh_model_nparams(t->model),
         (long long)t->train.total, cfg->train_path, (long long)t->valid.total, cfg->valid_path,
         cfg->batch, t->c->size, t->b, (long long)t->steps_per_epoch, nm->input_scale,
         nm->input_shift, nm->output_shift, nm->density_ne > 0 ? ", density layer on" : "");
    return MNNH_OK;
}

/* ------------------------------------------------------------------ steps */

static void train_shuffle(trainer *t, int64_t epoch) {
    for (int64_t i = 0; i < t->train.count; i++) t->perm[i] = i;
    mnnh_rng rng;
    /* stream keyed by (epoch, rank): the order is a function of the seed,
     * the epoch and the rank only, so a resumed run replays it */
    mnnh_rng_init(&rng, t->state.seed, ((uint64_t)epoch << 24) ^ (uint64_t)t->c->rank ^ ((uint64_t)5 << 60));
    mnnh_rng_shuffle(&rng, t->perm, t->train.count);
}

typedef struct {
    double compute, allreduce, io;  /* sums over the steps of the epoch */
    int64_t steps;
    double loop_s;
} step_times;

static mnnh_status train_load_batch(trainer *t, int64_t s) {
    size_t g = t->train.grid;
    for (int k = 0; k < t->b; k++) {
        int64_t i = t->perm[s * t->b + k];
        memcpy(t->host_v + (size_t)k * g, t->train.input + (size_t)i * g, g * sizeof(float));
        memcpy(t->host_t + (size_t)k * g, t->train.output + (size_t)i * g, g * sizeof(float));
    }
    size_t bytes = (size_t)t->b * g * sizeof(float);
    MNNH_TRY(mnnh_backend_upload(t->be, t->dev_v, t->host_v, bytes));
    return mnnh_backend_upload(t->be, t->dev_t, t->host_t, bytes);
}

/* One step; *stop = 1 when any rank asked to stop. */
static mnnh_status train_step(trainer *t, int64_t s, step_times *tm, int *stop) {
    double t0 = train_now();
    mnnh_status st = train_load_batch(t, s);
    double t1 = train_now();
    double e2 = 0, e1 = 0;
    if (!st) st = mnnh_model_zero_grads(t->model);
    if (!st) st = mnnh_model_train_batch(t->model, t->b, t->dev_v, t->dev_t, t->cfg->batch, &e2, &e1);
    double t2 = train_now();
    int want_stop = mnnh_signals_pending() ||
                    (t->cfg->stop_after > 0 && t->state.step + 1 >= t->cfg->stop_after);
    /* the stop flag and a local failure ride on the gradient allreduce, so a
     * failed rank never leaves the others waiting in a collective */
    float extra[MNNH_STEP_NEXTRA] = {[MNNH_STEP_STOP] = (float)want_stop,
                                     [MNNH_STEP_FAIL] = st ? 1.0f : 0.0f,
                                     [MNNH_STEP_ERR2] = (float)e2,
                                     [MNNH_STEP_ERR] = (float)e1,
                                     [MNNH_STEP_COUNT] = (float)t->b};
    MNNH_TRY(mnnh_comm_allreduce_grads(t->c, t->model, st == MNNH_OK, extra));
    if (extra[MNNH_STEP_FAIL] > 0) return mnnh_comm_agree(t->c, st);
    double t3 = train_now();
    if (!isfinite(extra[MNNH_STEP_ERR2]))
        return mnnh_error_set(MNNH_ERR_NUMERIC,
                              "non-finite training loss at epoch %lld, step %lld (global step "
                              "%lld): training stopped; the last good checkpoint %s is kept "
                              "(try a lower --lr)",
                              (long long)t->state.epoch + 1, (long long)s + 1,
                              (long long)t->state.step + 1, t->last_path);
    MNNH_TRY(mnnh_nadam_step(t->opt, mnnh_model_params(t->model), mnnh_model_grads(t->model)));
    double t4 = train_now();
    tm->io += t1 - t0;
    tm->compute += (t2 - t1) + (t4 - t3);
    tm->allreduce += t3 - t2;
    tm->steps++;
    t->state.step++;
    t->state.epoch_step++;
    t->state.ep_err2 += extra[MNNH_STEP_ERR2];
    t->state.ep_err += extra[MNNH_STEP_ERR];
    t->state.ep_count += extra[MNNH_STEP_COUNT];
    *stop = extra[MNNH_STEP_STOP] > 0;
    return MNNH_OK;
}

static void fmt_hms(double s, char *buf, size_t len) {
    if (!(s >= 0) || s > 1e7) s = 0;
    long v = (long)(s + 0.5);
    snprintf(buf, len, "%02ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
}

static void train_progress(trainer *t, int force) {
    double now = train_now();
    if (t->c->rank != 0 || (!force && now - t->last_progress < t->cfg->progress_s)) return;
    t->last_progress = now;
    int64_t total = (int64_t)t->cfg->epochs * t->steps_per_epoch;
    int64_t done = t->state.step - t->step0;
    double per = done > 0 ? (now - t->t_run0) / (double)done : 0;
    char eta[32];
    fmt_hms(per * (double)(total - t->state.step), eta, sizeof eta);
    double n = t->state.ep_count > 0 ? t->state.ep_count : 1;
    fprintf(stderr,
            "[epoch %lld/%d step %lld/%lld] loss %.4e rel_err %.4e lr %.3g | %.0f samples/s | "
            "ETA %s\n",
            (long long)t->state.epoch + 1, t->cfg->epochs, (long long)t->state.epoch_step,
            (long long)t->steps_per_epoch, t->state.ep_err2 / n, t->state.ep_err / n, t->opt->h.lr,
            per > 0 ? t->cfg->batch / per : 0.0, eta);
    fflush(stderr);
}

/* ---------------------------------------------------------- epoch end */

/* constant and step follow --lr (so a resumed run may change it); plateau
 * keeps its reduced lr in the checkpoint's state. */
static void train_schedule_epoch(trainer *t) {
    if (t->schedule == MNNH_LR_CONSTANT) t->state.lr = t->cfg->lr;
    else if (t->schedule == MNNH_LR_STEP)
        t->state.lr = t->cfg->lr * pow(t->cfg->lr_gamma, (double)(t->state.epoch / t->cfg->lr_step));
    if (t->state.lr < t->cfg->lr_min) t->state.lr = t->cfg->lr_min;
    t->opt->h.lr = t->state.lr;
}

/* After a validation: best tracking and the plateau schedule; returns 1
 * when the validation error improved. */
static int train_after_validation(trainer *t, double err) {
    int improved = err < t->state.best_valid;
    if (improved) {
        t->state.best_valid = err;
        t->state.best_epoch = t->state.epoch;
        t->state.plateau_bad = 0;
    } else if (t->schedule == MNNH_LR_PLATEAU && ++t->state.plateau_bad >= t->cfg->lr_patience) {
        t->state.lr *= t->cfg->lr_gamma;
        if (t->state.lr < t->cfg->lr_min) t->state.lr = t->cfg->lr_min;
        t->state.plateau_bad = 0;
        LOG0(t, "plateau: no improvement for %d validations, lr -> %g\n", t->cfg->lr_patience,
             t->state.lr);
    }
    return improved;
}

/* Rank 0 writes path; all ranks learn whether it worked. */
static mnnh_status train_checkpoint(trainer *t, const char *path) {
    mnnh_status st = MNNH_OK;
    t->state.world_size = t->c->size;
    if (t->c->rank == 0) {
        mnnh_ckpt ck = {.model = t->model, .opt = t->opt, .state = &t->state,
                        .metrics = &t->metrics, .config = t->cfg->opts, .nconfig = t->cfg->nopts};
        st = mnnh_ckpt_write(path, &ck);
    }
    return mnnh_comm_agree(t->c, st);
}

static void json_num(FILE *f, const char *key, double v, int last) {
    if (isfinite(v)) fprintf(f, "\"%s\": %.9g%s", key, v, last ? "" : ", ");
    else fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

static void train_write_metrics_line(trainer *t, const mnnh_metrics_rec *r) {
    FILE *f = fopen(t->metrics_path, "a");
    if (!f) {
        fprintf(stderr, "mnnh train: warning: cannot append to %s: %s\n", t->metrics_path, strerror(errno));
        return;
    }
    fprintf(f, "{\"epoch\": %lld, \"step\": %lld, ", (long long)r->epoch, (long long)r->step);
    const double *v = &r->train_loss;
    for (int i = 2; i < MNNH_METRICS_NFIELDS; i++) json_num(f, mnnh_metrics_fields[i], v[i - 2], 0);
    fprintf(f, "\"ranks\": %d, \"global_batch\": %d, \"per_rank_batch\": %d}\n", t->c->size,
            t->cfg->batch, t->b);
    fclose(f);
}

/* Per-step times of this epoch, reduced over ranks (see mnnh_metrics_rec). */
static mnnh_status train_reduce_times(trainer *t, const step_times *tm, mnnh_metrics_rec *r) {
    double steps = tm->steps > 0 ? (double)tm->steps : 1;
    double mine[3] = {tm->compute / steps, tm->allreduce / steps, tm->io / steps};
    double hi[3] = {mine[0], mine[1], mine[2]}, lo = mine[1], sum = mine[0];
    MNNH_TRY(mnnh_comm_max_doubles(t->c, hi, 3));
    MNNH_TRY(mnnh_comm_min_doubles(t->c, &lo, 1));
    MNNH_TRY(mnnh_comm_sum_doubles(t->c, &sum, 1));
    r->compute_s = hi[0];
    r->compute_mean_s = sum / t->c->size;
    r->allreduce_s = lo;
    r->allreduce_max_s = hi[1];
    r->io_s = hi[2];
    return MNNH_OK;
}

static mnnh_status train_end_epoch(trainer *t, const step_times *tm, double epoch_t0) {
    const mnnh_train_config *cfg = t->cfg;
    t->state.epoch++;
    double n = t->state.ep_count > 0 ? t->state.ep_count : 1;
    mnnh_metrics_rec r = {.epoch = (double)t->state.epoch, .step = (double)t->state.step,
                          .train_loss = t->state.ep_err2 / n, .train_rel_err = t->state.ep_err / n,
                          .valid_rel_err = NAN, .lr = t->opt->h.lr};
    MNNH_TRY(train_reduce_times(t, tm, &r));
    r.samples_per_s = tm->loop_s > 0 ? (double)tm->steps * cfg->batch / tm->loop_s : 0;
    int last_epoch = t->state.epoch >= cfg->epochs, improved = 0;
    if (t->state.epoch % cfg->valid_every == 0 || last_epoch) {
        mnnh_valid_result vr;
        MNNH_TRY(mnnh_validate_shard(t->c, t->model, &t->valid, t->valid_batch, NULL, &vr));
        r.valid_rel_err = vr.mean_err;
        improved = train_after_validation(t, vr.mean_err);
    }
    t->state.ep_seconds += train_now() - epoch_t0;
    t->state.seconds += t->state.ep_seconds;
    r.seconds = t->state.ep_seconds;
    t->state.epoch_step = 0;
    t->state.ep_err2 = t->state.ep_err = t->state.ep_count = t->state.ep_seconds = 0;
    if (t->c->rank == 0) MNNH_TRY(mnnh_metrics_push(&t->metrics, &r));
    double c0 = train_now();
    if (t->state.epoch % cfg->ckpt_every == 0 || last_epoch || improved)
        MNNH_TRY(train_checkpoint(t, t->last_path));
    if (improved) MNNH_TRY(train_checkpoint(t, t->best_path));
    r.ckpt_s = train_now() - c0;
    if (t->c->rank == 0) {
        t->metrics.r[t->metrics.n - 1].ckpt_s = r.ckpt_s;
        train_write_metrics_line(t, &r);
        char valid[64] = "not run this epoch";
        if (isfinite(r.valid_rel_err))
            snprintf(valid, sizeof valid, "%.4e%s", r.valid_rel_err, improved ? " (best)" : "");
        fprintf(stderr,
                "mnnh train: epoch %lld/%d: train loss %.4e rel_err %.4e | valid rel_err %s | "
                "lr %.3g | %.0f samples/s | %.1f s\n",
                (long long)r.epoch, cfg->epochs, r.train_loss, r.train_rel_err, valid, r.lr,
                r.samples_per_s, r.seconds);
        fflush(stderr);
    }
    return MNNH_OK;
}

/* ----------------------------------------------------------------- epochs */

/* Why the run stops: this rank's signal, or another rank's, or --stop-after-steps. */
static void train_stop_reason(const trainer *t, char *buf, size_t len) {
    int sig = mnnh_signals_pending();
    if (sig) snprintf(buf, len, "signal %d", sig);
    else if (t->cfg->stop_after > 0 && t->state.step >= t->cfg->stop_after)
        snprintf(buf, len, "--stop-after-steps %lld", (long long)t->cfg->stop_after);
    else snprintf(buf, len, "signal on another rank");
}

static mnnh_status train_epochs(trainer *t, int *preempted) {
    const mnnh_train_config *cfg = t->cfg;
    t->t_run0 = t->last_progress = train_now();
    t->step0 = t->state.step;
    while (t->state.epoch < cfg->epochs) {
        double epoch_t0 = train_now();
        step_times tm = {0};
        train_schedule_epoch(t);
        train_shuffle(t, t->state.epoch);
        int stop = 0;
        double l0 = train_now();
        /* a run resumed mid-epoch skips the steps already done */
        for (int64_t s = t->state.epoch_step; s < t->steps_per_epoch && !stop; s++) {
            MNNH_TRY(train_step(t, s, &tm, &stop));
            train_progress(t, 0);
        }
        tm.loop_s = train_now() - l0;
        if (stop && t->state.epoch_step < t->steps_per_epoch) {
            t->state.ep_seconds += train_now() - epoch_t0;
            MNNH_TRY(train_checkpoint(t, t->last_path));
            char why[64];
            train_stop_reason(t, why, sizeof why);
            LOG0(t, "stop requested (%s) at epoch %lld step %lld: checkpoint %s written; "
                    "exiting with code 75\n",
                 why, (long long)t->state.epoch + 1, (long long)t->state.epoch_step, t->last_path);
            *preempted = 1;
            return MNNH_OK;
        }
        train_progress(t, 1);
        MNNH_TRY(train_end_epoch(t, &tm, epoch_t0));
        if (stop && t->state.epoch < cfg->epochs) {
            /* the signal came during the epoch's last step; the epoch end may
             * not have written last.h5 (--ckpt-every), so write it now */
            MNNH_TRY(train_checkpoint(t, t->last_path));
            char why[64];
            train_stop_reason(t, why, sizeof why);
            LOG0(t, "stop requested (%s) at the end of epoch %lld: checkpoint %s written; "
                    "exiting with code 75\n",
                 why, (long long)t->state.epoch, t->last_path);
            *preempted = 1;
            return MNNH_OK;
        }
    }
    return MNNH_OK;
}

static void train_teardown(trainer *t) {
    mnnh_backend *be = t->be;
    if (be) {
        mnnh_backend_release(be, t->dev_v);
        mnnh_backend_release(be, t->dev_t);
    }
    free(t->perm);
    free(t->host_v);
    free(t->host_t);
    mnnh_nadam_free(t->opt);
    mnnh_model_free(t->model);
    if (be) mnnh_backend_free(be);
    mnnh_shard_free(&t->train);
    mnnh_shard_free(&t->valid);
    mnnh_metrics_free(&t->metrics);
}

mnnh_status mnnh_train_run(const mnnh_train_config *cfg, mnnh_comm *c, int *preempted) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.c = c;
    *preempted = 0;
    mnnh_ckpt_data ck;
    memset(&ck, 0, sizeof ck);
    int resumed = 0;
    mnnh_status st = mnnh_signals_install();
    if (!st) st = train_setup(&t, &ck, &resumed);
    mnnh_ckpt_data_free(&ck);
    if (!st && t.state.epoch >= cfg->epochs)
        LOG0(&t, "the checkpoint has already reached epoch %lld of --epochs %d: nothing to do\n",
             (long long)t.state.epoch, cfg->epochs);
    if (!st) st = train_epochs(&t, preempted);
    if (!st && !*preempted)
        LOG0(&t, "done: %lld epochs, %lld steps; best valid rel_err %.4e (epoch %lld)\n"
                 "  last checkpoint  %s\n  best checkpoint  %s\n  metrics          %s\n",
             (long long)t.state.epoch, (long long)t.state.step, t.state.best_valid,
             (long long)t.state.best_epoch, t.last_path, t.best_path, t.metrics_path);
    mnnh_signals_restore();
    train_teardown(&t);
    return st;
}
