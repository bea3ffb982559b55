/* cmd_generate.c: `mnnh generate`: KS or NLSE samples computed across MPI
 * ranks and written collectively into one parallel-HDF5 file.
 *
 * Rank r of P computes rows [S r / P, S (r+1) / P); sample row s is sample
 * first_sample + s of the counter-based stream (seed, .), so the file does not
 * depend on P. Rows go out in blocks with one collective H5Dwrite per dataset
 * (ranks with fewer rows take part with empty selections). Before each write
 * the ranks agree (one allreduce) that every sample of the block succeeded;
 * a failure stops all ranks, the failing rank prints the error that names
 * its sample, and nothing is left under the final name. The file is written
 * as OUT.tmp.<pid>, fsync'ed and renamed to OUT by rank 0 when complete.
 * SIGUSR1, SIGTERM and SIGINT set a flag that the ranks agree on at the next
 * block boundary (in the same allreduce): they stop, remove the temporary file
 * and exit 75 (jobs/generate.sbatch then requeues; generation is reproducible,
 * so the requeued job simply starts again). */
#define _GNU_SOURCE /* fallocate */
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mnnh/dataset.h"
#include "mnnh/ks.h"
#include "mnnh/nlse.h"

typedef struct {
    const char *equation, *preset, *out;
    int dim, grid, n_g, n_e, maxiter, guard, block, force, quiet;
    int64_t samples, first, seed;
    double tol, box, sigma, sep, cmin, cmax, beta, rho_min, rho_max, T_min, T_max;
} gen_opts;

typedef struct {
    int rank, size;
    MPI_Comm comm;
} gen_world;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* ------------------------------------------------------------ parameters */

/* KS parameters: the preset, then every option the user gave. The separation
 * follows sigma (2 or 6 sigma per preset) unless given itself. */
static mnnh_status gen_ks_params(mnnh_cli *cli, const gen_opts *o, mnnh_ks_params *p) {
    MNNH_TRY(mnnh_ks_params_preset(p, o->preset, o->dim));
    double sep_factor = p->sep / p->sigma;
    int centred = p->x0 != 0; /* paper: [-box/2, box/2), original: [0, box) */
    p->N = o->grid;
    p->n_g = o->n_g;
    p->n_e = mnnh_cli_opt(cli, "n-e")->seen ? o->n_e : o->n_g;
    if (mnnh_cli_opt(cli, "box")->seen) p->box = o->box;
    if (mnnh_cli_opt(cli, "sigma")->seen) p->sigma = o->sigma;
    p->sep = mnnh_cli_opt(cli, "separation")->seen ? o->sep : sep_factor * p->sigma;
    p->x0 = centred ? -0.5 * p->box : 0.0;
    if (mnnh_cli_opt(cli, "depth-min")->seen) p->c_min = o->cmin;
    if (mnnh_cli_opt(cli, "depth-max")->seen) p->c_max = o->cmax;
    if (mnnh_cli_opt(cli, "tol")->seen) p->tol = o->tol;
    if (mnnh_cli_opt(cli, "maxiter")->seen) p->maxiter = o->maxiter;
    if (mnnh_cli_opt(cli, "guard")->seen) p->guard = o->guard;
    return mnnh_ks_params_check(p);
}

static mnnh_status gen_nlse_params(mnnh_cli *cli, const gen_opts *o, mnnh_nlse_params *p) {
    MNNH_TRY(mnnh_nlse_params_default(p, o->dim));
    if (mnnh_cli_opt(cli, "preset")->seen && strcmp(o->preset, "paper") != 0)
        return mnnh_error_set(MNNH_ERR_ARG, "--preset %s: NLSE has only the paper's parameters (preset paper)", o->preset);
    if (mnnh_cli_opt(cli, "n-e")->seen) return mnnh_error_set(MNNH_ERR_ARG, "--n-e is for --equation ks only");
    p->N = o->grid;
    p->n_g = o->n_g;
    if (mnnh_cli_opt(cli, "beta")->seen) p->beta = o->beta;
    if (mnnh_cli_opt(cli, "rho-min")->seen) p->rho_min = o->rho_min;
    if (mnnh_cli_opt(cli, "rho-max")->seen) p->rho_max = o->rho_max;
    if (mnnh_cli_opt(cli, "T-min")->seen) p->T_min = o->T_min;
    if (mnnh_cli_opt(cli, "T-max")->seen) p->T_max = o->T_max;
    if (mnnh_cli_opt(cli, "tol")->seen) p->tol = o->tol;
    if (mnnh_cli_opt(cli, "maxiter")->seen) p->maxiter = o->maxiter;
    return mnnh_nlse_params_check(p);
}

static void gen_meta(const gen_opts *o, const mnnh_ks_params *ks, const mnnh_nlse_params *nl,
                     mnnh_dataset_meta *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->equation, sizeof m->equation, "%s", o->equation);
    snprintf(m->generator, sizeof m->generator, "%s", MNNH_GENERATOR_VERSION);
    m->dim = o->dim;
    m->N = o->grid;
    m->samples = o->samples;
    m->first_sample = o->first;
    m->n_g = o->n_g;
    m->seed = (uint64_t)o->seed;
    if (ks) {
        m->n_e = ks->n_e;
        m->nval = ks->n_e;
        m->domain[0] = ks->x0;
        m->domain[1] = ks->x0 + ks->box;
        m->tol = ks->tol;
        snprintf(m->preset, sizeof m->preset, "%s", ks->preset);
        m->sigma = ks->sigma;
        m->box = ks->box;
        m->separation = ks->sep;
        m->depth_min = ks->c_min;
        m->depth_max = ks->c_max;
    } else {
        m->n_e = 0; /* no density constraint: u is normalised to int u^2 = 1 */
        m->nval = 1;
        m->domain[0] = 0;
        m->domain[1] = 1;
        m->tol = nl->tol;
        m->beta = nl->beta;
        m->rho_min = nl->rho_min;
        m->rho_max = nl->rho_max;
        m->T_min = nl->T_min;
        m->T_max = nl->T_max;
    }
}

/* ------------------------------------------------------------ output file checks (rank 0) */

static mnnh_status gen_check_out(const gen_opts *o) {
    struct stat sb;
    if (stat(o->out, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return mnnh_error_set(MNNH_ERR_ARG, "--out %s is a directory", o->out);
        if (!o->force)
            return mnnh_error_set(MNNH_ERR_ARG, "--out %s exists (pass --force to overwrite it)", o->out);
    }
    char *copy = strdup(o->out);
    if (!copy) return mnnh_error_set(MNNH_ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy);
    mnnh_status st = MNNH_OK;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = mnnh_error_set(MNNH_ERR_ARG, "--out %s: directory '%s' does not exist", o->out, dir);
    else if (access(dir, W_OK) != 0)
        st = mnnh_error_set(MNNH_ERR_ARG, "--out %s: directory '%s' is not writable", o->out, dir);
    free(copy);
    return st;
}

/* Rank 0, before HDF5 touches the file: check that the file's final size fits
 * (free space, quota, file size limit) by reserving it with fallocate under
 * the temporary name. HDF5 1.10 cannot recover from a failed collective write
 * or a failed final truncate: its ranks can deadlock in H5Fclose. H5Fcreate
 * truncates the file again, so this is a check, not a reservation held for
 * the whole run. fallocate (not posix_fallocate, which would write zeros) is
 * skipped where the file system does not support it. */
static mnnh_status gen_check_space(const char *tmp, const mnnh_dataset_meta *m) {
    int64_t grid = m->dim == 1 ? m->N : (int64_t)m->N * m->N;
    off_t bytes = (off_t)m->samples * (off_t)(grid * 2 * sizeof(float) + m->nval * 2 * sizeof(double) +
                                              sizeof(double) + sizeof(int)) + (1 << 20);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return mnnh_error_set(MNNH_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    mnnh_status st = MNNH_OK;
    if (fallocate(fd, 0, 0, bytes) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
        st = mnnh_error_set(MNNH_ERR_IO, "no room for %s (%.1f MB): %s", tmp, bytes / 1e6, strerror(errno));
    close(fd);
    if (st != MNNH_OK) unlink(tmp);
    return st;
}

/* fsync the finished file, then rename it over the final name. */
static mnnh_status gen_publish(const char *tmp, const char *out) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return mnnh_error_set(MNNH_ERR_IO, "cannot flush %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, out) != 0)
        return mnnh_error_set(MNNH_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    return MNNH_OK;
}

/* ------------------------------------------------------------ the sample loop */

typedef struct {
    mnnh_ks *ks;
    mnnh_nlse *nl;
    int64_t grid;      /* N^dim */
    int nval;
    double *V, *U;     /* one sample in double */
    float *in, *outp;  /* a block of samples in float32 */
    double *eig, *res, *gap;
    int *iters;
    int64_t iters_total;
} gen_work;

static void gen_work_free(gen_work *w) {
    mnnh_ks_free(w->ks);
    mnnh_nlse_free(w->nl);
    free(w->V); free(w->U); free(w->in); free(w->outp);
    free(w->eig); free(w->res); free(w->gap); free(w->iters);
}

static mnnh_status gen_work_init(gen_work *w, const mnnh_ks_params *ks, const mnnh_nlse_params *nl,
                                 int block) {
    memset(w, 0, sizeof *w);
    if (ks) {
        MNNH_TRY(mnnh_ks_create(ks, &w->ks));
        w->grid = mnnh_ks_grid_size(ks);
        w->nval = ks->n_e;
    } else {
        MNNH_TRY(mnnh_nlse_create(nl, &w->nl));
        w->grid = mnnh_nlse_grid_size(nl);
        w->nval = 1;
    }
    size_t g = (size_t)w->grid, b = (size_t)block;
    w->V = malloc(g * sizeof(double));
    w->U = malloc(g * sizeof(double));
    w->in = malloc(b * g * sizeof(float));
    w->outp = malloc(b * g * sizeof(float));
    w->eig = malloc(b * w->nval * sizeof(double));
    w->res = malloc(b * w->nval * sizeof(double));
    w->gap = malloc(b * sizeof(double));
    w->iters = malloc(b * sizeof(int));
    if (!w->V || !w->U || !w->in || !w->outp || !w->eig || !w->res || !w->gap || !w->iters)
        return mnnh_error_set(MNNH_ERR_NOMEM, "out of memory for a block of %d samples", block);
    return MNNH_OK;
}

/* Compute sample `sample` into row j of the block buffers. */
static mnnh_status gen_one(gen_work *w, uint64_t seed, int64_t sample, int j) {
    int it = 0;
    double *eig = w->eig + (size_t)j * w->nval, *res = w->res + (size_t)j * w->nval;
    if (w->ks)
        MNNH_TRY(mnnh_ks_sample(w->ks, seed, sample, w->V, w->U, eig, res, &w->gap[j], &it));
    else
        MNNH_TRY(mnnh_nlse_sample(w->nl, seed, sample, w->V, w->U, eig, res, &it));
    if (!w->ks) w->gap[j] = 0;
    w->iters[j] = it;
    w->iters_total += it;
    float *in = w->in + (size_t)j * w->grid, *out = w->outp + (size_t)j * w->grid;
    for (int64_t i = 0; i < w->grid; i++) {
        in[i] = (float)w->V[i];
        out[i] = (float)w->U[i];
        if (!isfinite(in[i]) || !isfinite(out[i]))
            return mnnh_error_set(MNNH_ERR_NUMERIC, "sample %lld: NaN or Inf at point %lld", (long long)sample, (long long)i);
    }
    return MNNH_OK;
}

static volatile sig_atomic_t gen_signalled;

static void gen_on_signal(int sig) { gen_signalled = sig; }

/* Status meaning "stopped by a signal": above every mnnh_status. */
#define GEN_STOPPED 1000

/* Agree on the worst status of all ranks (MNNH_OK = 0 is the best); a signal
 * seen by any rank is worse than any failure. */
static mnnh_status gen_agree(const gen_world *g, mnnh_status mine) {
    int v = gen_signalled ? GEN_STOPPED : (int)mine, worst = 0;
    MPI_Allreduce(&v, &worst, 1, MPI_INT, MPI_MAX, g->comm);
    return (mnnh_status)worst;
}

static void gen_progress(const gen_world *g, const gen_opts *o, int64_t done, int64_t mine, double t0, double *last) {
    double t = now_s();
    if (o->quiet || g->rank != 0 || t - *last < 5.0 || done >= mine) return;
    *last = t;
    double rate = done / (t - t0 + 1e-9);
    fprintf(stderr, "mnnh generate: rank 0 %lld/%lld samples, %.1f samples/s per rank, ETA %.0f s\n",
            (long long)done, (long long)mine, rate, rate > 0 ? (mine - done) / rate : 0.0);
}

/* Every rank: compute its rows block by block and write them collectively.
 * *failed is set when this rank's own sample failed (it prints the message). */
static mnnh_status gen_loop(const gen_world *g, const gen_opts *o, gen_work *w,
                            mnnh_dataset_writer *wr, hid_t dxpl, int *failed) {
    int64_t S = o->samples, lo = S * g->rank / g->size, hi = S * (g->rank + 1) / g->size;
    int64_t most = (S + g->size - 1) / g->size; /* rows of the largest share */
    int64_t nblocks = (most + o->block - 1) / o->block;
    double t0 = now_s(), last = t0;
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t start = lo + b * o->block, count = hi - start;
        if (count > o->block) count = o->block;
        if (count < 0) count = 0;
        mnnh_status st = MNNH_OK;
        for (int64_t j = 0; j < count && st == MNNH_OK; j++)
            st = gen_one(w, (uint64_t)o->seed, o->first + start + j, (int)j);
        if (st != MNNH_OK) *failed = 1;
        mnnh_status all = gen_agree(g, st);
        if (all != MNNH_OK) return st != MNNH_OK ? st : all;
        st = mnnh_dataset_write(wr, start, count, w->in, w->outp, w->eig, w->res, w->gap, w->iters, dxpl);
        if (st != MNNH_OK) *failed = 1;
        all = gen_agree(g, st);
        if (all != MNNH_OK) return st != MNNH_OK ? st : all;
        gen_progress(g, o, start + count - lo, hi - lo, t0, &last);
    }
    return MNNH_OK;
}

/* ------------------------------------------------------------ the command */

static int gen_fail(const gen_world *g, mnnh_status st, int print) {
    if (print) return mnnh_cli_fail("generate", st);
    return (st == MNNH_ERR_ARG || st == MNNH_ERR_FORMAT) ? MNNH_EXIT_USAGE : MNNH_EXIT_RUNTIME;
}

/* Create the file collectively, run the loop, close, publish. */
static int gen_write(const gen_world *g, const gen_opts *o, const mnnh_dataset_meta *meta, gen_work *w,
                     int *wedged) {
    char tmp[4200] = {0};
    if (g->rank == 0) snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->out, (long)getpid());
    MPI_Bcast(tmp, sizeof tmp, MPI_CHAR, 0, g->comm);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_fapl_mpio(fapl, g->comm, MPI_INFO_NULL);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    mnnh_dataset_writer *wr = NULL;
    mnnh_status st = g->rank == 0 ? gen_check_space(tmp, meta) : MNNH_OK;
    mnnh_status all = gen_agree(g, st);
    if (all == MNNH_OK) {
        st = mnnh_dataset_create(tmp, fapl, meta, &wr);
        all = gen_agree(g, st);
    }
    int failed = 0;
    if (all == MNNH_OK) {
        double t0 = now_s();
        all = gen_loop(g, o, w, wr, dxpl, &failed);
        mnnh_status cst = mnnh_dataset_writer_close(wr);
        wr = NULL;
        *wedged = cst != MNNH_OK;
        if (all == MNNH_OK) {
            all = gen_agree(g, cst);
            failed = cst != MNNH_OK;
            if ((int)all == GEN_STOPPED) failed = 0;
        }
        double dt = now_s() - t0;
        long long it = w->iters_total, itsum = 0;
        MPI_Reduce(&it, &itsum, 1, MPI_LONG_LONG, MPI_SUM, 0, g->comm);
        if (all == MNNH_OK && g->rank == 0) {
            all = gen_publish(tmp, o->out);
            failed = all != MNNH_OK;
            if (all == MNNH_OK && !o->quiet)
                fprintf(stderr, "mnnh generate: %lld %s %dD samples on %d rank%s in %.2f s (%.1f samples/s, "
                                "%.1f solver iterations per sample) -> %s\n",
                        (long long)o->samples, o->equation, o->dim, g->size, g->size > 1 ? "s" : "", dt,
                        o->samples / dt, (double)itsum / o->samples, o->out);
        }
        MPI_Bcast(&all, 1, MPI_INT, 0, g->comm);
    } else {
        /* H5Fcreate is collective and fails on every rank alike; a rank that
         * did open the file would have to close it collectively, which the
         * others cannot join, so its handle is left to the library's exit. */
        failed = st != MNNH_OK;
    }
    if (all != MNNH_OK && g->rank == 0) unlink(tmp); /* nothing half-written is left */
    H5Pclose(fapl);
    H5Pclose(dxpl);
    if (all == MNNH_OK) return MNNH_EXIT_OK;
    if ((int)all == GEN_STOPPED) {
        if (g->rank == 0)
            fprintf(stderr, "mnnh generate: stopped by a signal; %s not written (rerun to generate it)\n", o->out);
        return MNNH_EXIT_PREEMPTED;
    }
    /* The rank that failed prints its own message (it names the sample); if
     * only another rank knows, rank 0 says that the run stopped. */
    if (failed) return mnnh_cli_fail("generate", all);
    if (g->rank == 0) fprintf(stderr, "mnnh generate: stopped (see the error from another rank); %s not written\n", o->out);
    return gen_fail(g, all, 0);
}

static int gen_main(const gen_world *g, int argc, char **argv, int *wedged) {
    gen_opts o = {.preset = "paper", .seed = 1, .n_g = 2, .n_e = 0, .block = 64, .tol = 0,
                  .maxiter = 0, .guard = 3};
    mnnh_opt opts[] = {
        {"equation", MNNH_OPT_STRING, &o.equation, "ks|nlse", "Kohn-Sham map (4.3) or NLSE ground state (4.2)", 1, 0},
        {"dim", MNNH_OPT_INT, &o.dim, "1|2", "spatial dimension", 1, 0},
        {"grid", MNNH_OPT_INT, &o.grid, "N", "grid points per axis (paper: KS 320 / 64, NLSE 320 / 80)", 1, 0},
        {"samples", MNNH_OPT_I64, &o.samples, "S", "number of samples", 1, 0},
        {"n-g", MNNH_OPT_INT, &o.n_g, "G", "Gaussian wells per sample", 1, 0},
        {"out", MNNH_OPT_STRING, &o.out, "FILE", "dataset file to write (HDF5)", 1, 0},
        {"preset", MNNH_OPT_STRING, &o.preset, "paper|original", "KS units: the paper's or the authors' code's (docs/generate.md)", 0, 0},
        {"seed", MNNH_OPT_I64, &o.seed, "X", "seed: sample i depends on (seed, i) only", 0, 0},
        {"first-sample", MNNH_OPT_I64, &o.first, "I", "index of the first sample (a test set: same seed, after the training set)", 0, 0},
        {"force", MNNH_OPT_FLAG, &o.force, NULL, "overwrite an existing --out", 0, 0},
        {"n-e", MNNH_OPT_INT, &o.n_e, "E", "KS electrons (default n_g)", 0, 0},
        {"tol", MNNH_OPT_DOUBLE, &o.tol, "X", "solver residual tolerance (default 1e-8)", 0, 0},
        {"maxiter", MNNH_OPT_INT, &o.maxiter, "K", "solver iterations before a sample fails (default KS 1000, NLSE 2000)", 0, 0},
        {"guard", MNNH_OPT_INT, &o.guard, "K", "KS: extra LOBPCG vectors beyond n_e", 0, 0},
        {"box", MNNH_OPT_DOUBLE, &o.box, "L", "KS: periodic box length (preset: 2 / 16)", 0, 0},
        {"sigma", MNNH_OPT_DOUBLE, &o.sigma, "X", "KS: well width (preset: 0.05 1D, 0.2 2D / 1)", 0, 0},
        {"separation", MNNH_OPT_DOUBLE, &o.sep, "X", "KS: minimum centre distance (preset: 2 sigma / 6 sigma)", 0, 0},
        {"depth-min", MNNH_OPT_DOUBLE, &o.cmin, "X", "KS: smallest well depth c_i (default 0.8)", 0, 0},
        {"depth-max", MNNH_OPT_DOUBLE, &o.cmax, "X", "KS: largest well depth c_i (default 1.2)", 0, 0},
        {"beta", MNNH_OPT_DOUBLE, &o.beta, "X", "NLSE: cubic coefficient (default 10)", 0, 0},
        {"rho-min", MNNH_OPT_DOUBLE, &o.rho_min, "X", "NLSE: smallest well weight (default 1)", 0, 0},
        {"rho-max", MNNH_OPT_DOUBLE, &o.rho_max, "X", "NLSE: largest well weight (default 4)", 0, 0},
        {"T-min", MNNH_OPT_DOUBLE, &o.T_min, "X", "NLSE: smallest well variance (default 2e-3)", 0, 0},
        {"T-max", MNNH_OPT_DOUBLE, &o.T_max, "X", "NLSE: largest well variance (default 4e-3)", 0, 0},
        {"block", MNNH_OPT_INT, &o.block, "B", "samples per rank between collective writes", 0, 0},
        {"quiet", MNNH_OPT_FLAG, &o.quiet, NULL, "no progress or summary on stderr", 0, 0},
    };
    mnnh_cli cli = {
        .cmd = "generate",
        .usage = "--equation ks|nlse --dim 1|2 --grid N --samples S --n-g G [--preset paper|original] "
                 "[--seed X] --out FILE [--force]",
        .summary = "Generate a Kohn-Sham (V -> rho) or NLSE (V -> u) dataset, splitting the samples\n"
                   "across the MPI ranks and writing one parallel-HDF5 file (docs/formats.md).\n"
                   "Sample i depends only on (seed, i): the file is the same on any number of ranks.\n"
                   "The file is written under a temporary name and renamed when complete.",
        .opts = opts,
        .nopts = (int)(sizeof opts / sizeof opts[0]),
        .allow_config = 1,
    };
    int rc = mnnh_cli_parse(&cli, argc, argv, g->rank == 0);
    if (rc) return rc < 0 ? MNNH_EXIT_OK : rc;
    mnnh_status st = MNNH_OK;
    mnnh_ks_params ks;
    mnnh_nlse_params nl;
    int is_ks = strcmp(o.equation, "ks") == 0;
    if (!is_ks && strcmp(o.equation, "nlse") != 0)
        st = mnnh_error_set(MNNH_ERR_ARG, "--equation must be ks or nlse (got '%s')", o.equation);
    else if (o.grid < 1)
        st = mnnh_error_set(MNNH_ERR_ARG, "--grid must be positive (got %d)", o.grid);
    else if (o.samples < 1)
        st = mnnh_error_set(MNNH_ERR_ARG, "--samples must be positive (got %lld)", (long long)o.samples);
    else if (o.first < 0 || o.seed < 0)
        st = mnnh_error_set(MNNH_ERR_ARG, "--seed and --first-sample must be >= 0");
    else if (o.block < 1)
        st = mnnh_error_set(MNNH_ERR_ARG, "--block must be positive (got %d)", o.block);
    else
        st = is_ks ? gen_ks_params(&cli, &o, &ks) : gen_nlse_params(&cli, &o, &nl);
    if (st != MNNH_OK) return gen_fail(g, st, g->rank == 0); /* every rank saw the same options */
    if (g->rank == 0) st = gen_check_out(&o);
    int code = (int)st;
    MPI_Bcast(&code, 1, MPI_INT, 0, g->comm);
    if (code != MNNH_OK) return gen_fail(g, (mnnh_status)code, g->rank == 0);
    mnnh_dataset_meta meta;
    gen_meta(&o, is_ks ? &ks : NULL, is_ks ? NULL : &nl, &meta);
    gen_work w;
    st = gen_work_init(&w, is_ks ? &ks : NULL, is_ks ? NULL : &nl, o.block);
    mnnh_status all = gen_agree(g, st);
    if (all != MNNH_OK) {
        gen_work_free(&w);
        return gen_fail(g, all, st != MNNH_OK);
    }
    rc = gen_write(g, &o, &meta, &w, wedged);
    gen_work_free(&w);
    return rc;
}

int mnnh_cmd_generate(int argc, char **argv) {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(&argc, &argv);
    /* One rank per core: BLAS threads would only oversubscribe the cores. */
    openblas_set_num_threads(1);
    gen_world g = {.comm = MPI_COMM_WORLD};
    MPI_Comm_rank(g.comm, &g.rank);
    MPI_Comm_size(g.comm, &g.size);
    struct sigaction sa = {.sa_handler = gen_on_signal}, old[3];
    const int sigs[3] = {SIGUSR1, SIGTERM, SIGINT};
    sigemptyset(&sa.sa_mask);
    gen_signalled = 0;
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    /* A file size limit then fails the write (EFBIG), reported and cleaned
     * up like a full disk, instead of killing the rank mid-write. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_xfsz;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGXFSZ, &ign, &old_xfsz);
    int wedged = 0;
    int rc = gen_main(&g, argc, argv, &wedged);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    sigaction(SIGXFSZ, &old_xfsz, NULL);
    /* Ranks may disagree on the code only in its kind (2 vs 1); take the worst. */
    int mine[2] = {rc, wedged}, worst[2] = {rc, wedged};
    MPI_Allreduce(mine, worst, 2, MPI_INT, MPI_MAX, g.comm);
    if (worst[1]) {
        /* The file could not be closed (write failure): HDF5 would crash
         * closing it again in MPI_Finalize. The temporary file is already
         * removed and the error printed; end here with the exit code. */
        MPI_Barrier(g.comm);
        fflush(NULL);
        _exit(worst[0]);
    }
    MPI_Finalized(&finalized);
    if (!inited && !finalized) MPI_Finalize();
    return worst[0];
}
