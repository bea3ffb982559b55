/* cmd_validate.c: `mnnh validate`: distributed evaluation of a checkpoint
 * (or model file) on a dataset. Every rank loads the model and its shard of
 * /input, /output, evaluates it, and rank 0 gathers the per-sample relative
 * errors ||u - u_NN|| / ||u|| in sample order: it prints mean / median / max
 * (and a JSON summary line on stdout) and, with --out, writes them to HDF5
 * (/rel_err float64 [S], summary as root attributes), atomically. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "mnnh/model_io.h"
#include "shard.h"
#include "validate.h"

typedef struct {
    const char *model_path, *data_path, *out_path, *backend;
    int batch, force;
} validate_args;

typedef struct {
    double mean, median, max, p90;
    int64_t argmax;
} validate_summary;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static mnnh_status validate_summarise(const double *err, int64_t S, validate_summary *s) {
    double *sorted = malloc((size_t)S * sizeof(double));
    if (!sorted) return mnnh_error_set(MNNH_ERR_NOMEM, "summary");
    memcpy(sorted, err, (size_t)S * sizeof(double));
    qsort(sorted, (size_t)S, sizeof(double), cmp_double);
    double sum = 0;
    s->argmax = 0;
    for (int64_t i = 0; i < S; i++) {
        sum += err[i];
        if (err[i] > err[s->argmax]) s->argmax = i;
    }
    s->mean = sum / (double)S;
    s->median = S % 2 ? sorted[S / 2] : 0.5 * (sorted[S / 2 - 1] + sorted[S / 2]);
    s->p90 = sorted[(int64_t)floor(0.9 * (double)(S - 1))];
    s->max = sorted[S - 1];
    free(sorted);
    return MNNH_OK;
}

static mnnh_status attr_f64(hid_t loc, const char *name, double v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return e < 0 ? mnnh_error_set(MNNH_ERR_IO, "cannot write attribute %s", name) : MNNH_OK;
}

/* Rank 0: the per-sample errors and the summary, atomically. */
static mnnh_status validate_write(const validate_args *va, const double *err, int64_t S,
                                  const validate_summary *s) {
    mnnh_h5_atomic a;
    MNNH_TRY(mnnh_h5_atomic_open(&a, va->out_path));
    hsize_t dims[1] = {(hsize_t)S};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(a.file, "rel_err", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, err);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    mnnh_status st = e < 0 ? mnnh_error_set(MNNH_ERR_IO, "%s: cannot write /rel_err", va->out_path) : MNNH_OK;
    if (!st) st = attr_f64(a.file, "mean_rel_err", s->mean);
    if (!st) st = attr_f64(a.file, "median_rel_err", s->median);
    if (!st) st = attr_f64(a.file, "p90_rel_err", s->p90);
    if (!st) st = attr_f64(a.file, "max_rel_err", s->max);
    if (!st) st = mnnh_h5_attr_write_string(a.file, "model", va->model_path);
    if (!st) st = mnnh_h5_attr_write_string(a.file, "data", va->data_path);
    if (st) {
        mnnh_h5_atomic_abort(&a);
        return st;
    }
    return mnnh_h5_atomic_commit(&a);
}

static mnnh_status validate_model(const validate_args *va, mnnh_comm *c, mnnh_backend **be,
                                  mnnh_model **model) {
    MNNH_TRY(mnnh_comm_backend_create(c, va->backend, be, NULL, 0));
    mnnh_status st = mnnh_model_load(va->model_path, *be, model);
    if (st) st = mnnh_error_prefix(st, "--model");
    if (!st) st = mnnh_model_reserve(*model, va->batch);
    return mnnh_comm_agree(c, st);
}

static mnnh_status validate_run(const validate_args *va, mnnh_comm *c) {
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    mnnh_shard sh;
    memset(&sh, 0, sizeof sh);
    double *err = NULL, *all = NULL;
    mnnh_status st = validate_model(va, c, &be, &model);
    if (!st) st = mnnh_shard_load(&sh, c, va->data_path, "--data", mnnh_model_arch(model), 1);
    if (!st) {
        err = malloc((size_t)sh.count * sizeof(double));
        if (c->rank == 0) all = malloc((size_t)sh.total * sizeof(double));
        st = mnnh_comm_agree(c, (!err || (c->rank == 0 && !all))
                                    ? mnnh_error_set(MNNH_ERR_NOMEM, "error buffers")
                                    : MNNH_OK);
    }
    mnnh_valid_result vr;
    double t0 = MPI_Wtime();
    if (!st) st = mnnh_validate_shard(c, model, &sh, va->batch, err, &vr);
    if (!st) st = mnnh_validate_gather(c, &sh, err, all);
    double dt = MPI_Wtime() - t0;
    validate_summary s = {0};
    if (!st) { /* every rank is here (st was agreed); rank 0 alone summarises and writes */
        mnnh_status st0 = MNNH_OK;
        if (c->rank == 0) {
            st0 = validate_summarise(all, sh.total, &s);
            if (!st0 && va->out_path) st0 = validate_write(va, all, sh.total, &s);
        }
        st = mnnh_comm_agree(c, st0);
    }
    if (!st && c->rank == 0) {
        fprintf(stderr,
                "mnnh validate: %s on %s: %lld samples on %d rank(s), %.0f samples/s\n"
                "  relative error ||u - u_NN|| / ||u||: mean %.4e  median %.4e  p90 %.4e  max %.4e "
                "(sample %lld)\n",
                va->model_path, va->data_path, (long long)sh.total, c->size,
                dt > 0 ? (double)sh.total / dt : 0.0, s.mean, s.median, s.p90, s.max,
                (long long)s.argmax);
        if (va->out_path) fprintf(stderr, "  per-sample errors: %s (/rel_err)\n", va->out_path);
        printf("{\"samples\": %lld, \"mean_rel_err\": %.9g, \"median_rel_err\": %.9g, "
               "\"p90_rel_err\": %.9g, \"max_rel_err\": %.9g, \"mean_sq_rel_err\": %.9g}\n",
               (long long)sh.total, s.mean, s.median, s.p90, s.max, vr.mean_err2);
        fflush(stdout);
    }
    free(err);
    free(all);
    mnnh_shard_free(&sh);
    mnnh_model_free(model);
    if (be) mnnh_backend_free(be);
    return st;
}

int mnnh_cmd_validate(int argc, char **argv) {
    validate_args va = {.backend = "auto", .batch = 64};
    int own_mpi;
    int rank = mnnh_cli_mpi_begin(&argc, &argv, &own_mpi);
    mnnh_opt opts[] = {
        {"model", MNNH_OPT_STRING, &va.model_path, "CKPT", "checkpoint or model file (/model)", 1, 0},
        {"data", MNNH_OPT_STRING, &va.data_path, "FILE", "dataset (/input, /output)", 1, 0},
        {"out", MNNH_OPT_STRING, &va.out_path, "FILE", "write per-sample errors (/rel_err) here", 0, 0},
        {"batch", MNNH_OPT_INT, &va.batch, "B", "samples per forward pass on each rank", 0, 0},
        {"backend", MNNH_OPT_STRING, &va.backend, "auto|cpu|ref|cuda", "compute backend", 0, 0},
        {"force", MNNH_OPT_FLAG, &va.force, NULL, "overwrite --out if it exists", 0, 0},
    };
    mnnh_cli cli = {
        .cmd = "validate",
        .usage = "--model CKPT --data FILE [--out FILE] [--batch B] [--backend B]",
        .summary = "Evaluate a trained model on a dataset across MPI ranks (each rank its shard)\n"
                   "and report the relative error ||u - u_NN|| / ||u||: mean, median, p90, max\n"
                   "(stderr, and one JSON line on stdout); --out keeps every sample's error.",
        .opts = opts,
        .nopts = (int)(sizeof opts / sizeof opts[0]),
        .allow_config = 1,
    };
    int rc = mnnh_cli_parse(&cli, argc, argv, rank == 0);
    if (rc == 0 && va.batch < 1) {
        if (rank == 0) fprintf(stderr, "mnnh validate: error: --batch %d: must be >= 1\n", va.batch);
        rc = MNNH_EXIT_USAGE;
    }
    if (rc == 0 && va.out_path && !va.force && access(va.out_path, F_OK) == 0) {
        if (rank == 0)
            fprintf(stderr, "mnnh validate: error: --out %s exists (use --force to overwrite)\n", va.out_path);
        rc = MNNH_EXIT_USAGE;
    }
    if (rc == 0) {
        mnnh_comm *c = NULL;
        mnnh_status st = mnnh_comm_create(&c, MPI_COMM_WORLD);
        if (!st) st = validate_run(&va, c);
        if (st) rc = mnnh_cli_fail_rank("validate", st, rank);
        mnnh_comm_free(c);
    } else if (rc < 0) {
        rc = MNNH_EXIT_OK;
    }
    mnnh_cli_mpi_end(own_mpi);
    return rc;
}
