/* cmd_predict.c: `mnnh predict`: run a model over a dataset's /input.
 *
 * Writes FILE with /prediction (float32, the shape of /input), a copy of
 * /input, and the model's hyperparameters and normalisation as root
 * attributes (plus `model` and `input`, the paths used). The file appears
 * under its final name only when complete (temp file, fsync, rename). Runs on
 * any number of MPI ranks, each predicting its contiguous share of the
 * samples (predict_dist.h); without mpirun it is a single rank. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "predict_dist.h"

typedef struct {
    const char *model_path, *input_path, *out_path, *backend;
    int batch, force;
} predict_args;

static double predict_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static mnnh_status predict_run(const predict_args *pa, mnnh_comm *c) {
    double t0 = predict_now();
    long long S = 0;
    MNNH_TRY(mnnh_predict_distributed(c, pa->model_path, pa->input_path, pa->out_path, pa->backend,
                                      pa->batch, &S));
    double dt = predict_now() - t0;
    if (c->rank == 0)
        printf("wrote %s: /prediction of %lld samples from %s on %d rank(s), %.0f samples/s\n",
               pa->out_path, S, pa->model_path, c->size, dt > 0 ? (double)S / dt : 0.0);
    return MNNH_OK;
}

int mnnh_cmd_predict(int argc, char **argv) {
    predict_args pa = {.backend = "auto", .batch = 256};
    mnnh_opt opts[] = {
        {"model", MNNH_OPT_STRING, &pa.model_path, "FILE", "model or checkpoint file (/model)", 1, 0},
        {"input", MNNH_OPT_STRING, &pa.input_path, "FILE", "dataset whose /input is predicted", 1, 0},
        {"out", MNNH_OPT_STRING, &pa.out_path, "FILE", "output file (/prediction, /input)", 1, 0},
        {"batch", MNNH_OPT_INT, &pa.batch, "B", "samples per forward pass", 0, 0},
        {"backend", MNNH_OPT_STRING, &pa.backend, "cpu|ref|cuda|auto", "compute backend (auto: cuda when a GPU is present)", 0, 0},
        {"force", MNNH_OPT_FLAG, &pa.force, NULL, "overwrite FILE if it exists", 0, 0},
    };
    mnnh_cli cli = {
        .cmd = "predict",
        .usage = "--model FILE --input FILE --out FILE [--batch B] [--backend cpu|ref|auto]",
        .summary = "Run the model's forward pass (normalisation and density layer included) over\n"
                   "every sample of the dataset's /input and write /prediction, a copy of /input\n"
                   "and the model's hyperparameters (root attributes) to --out, atomically.",
        .opts = opts,
        .nopts = (int)(sizeof opts / sizeof opts[0]),
        .allow_config = 1,
    };
    int own_mpi;
    int rank = mnnh_cli_mpi_begin(&argc, &argv, &own_mpi);
    int rc = mnnh_cli_parse(&cli, argc, argv, rank == 0);
    if (rc == 0 && pa.batch < 1) {
        if (rank == 0) fprintf(stderr, "mnnh predict: error: --batch %d: must be >= 1\n", pa.batch);
        rc = MNNH_EXIT_USAGE;
    }
    if (rc == 0 && !pa.force && access(pa.out_path, F_OK) == 0) {
        if (rank == 0)
            fprintf(stderr, "mnnh predict: error: %s exists (use --force to overwrite)\n", pa.out_path);
        rc = MNNH_EXIT_USAGE;
    }
    if (rc == 0) {
        mnnh_comm *c = NULL;
        mnnh_status st = mnnh_comm_create(&c, MPI_COMM_WORLD);
        if (!st) st = predict_run(&pa, c);
        if (st) rc = mnnh_cli_fail_rank("predict", st, rank);
        mnnh_comm_free(c);
    } else if (rc < 0) {
        rc = MNNH_EXIT_OK;
    }
    mnnh_cli_mpi_end(own_mpi);
    return rc;
}
