/* cmd_predict.c: `mnnh predict`: run a model over a dataset's /input.
 *
 * Writes FILE with /prediction (float32, the shape of /input), a copy of
 * /input, and the model's hyperparameters and normalisation as root
 * attributes (plus `model` and `input`, the paths used). The file appears
 * under its final name only when complete (temp file, fsync, rename). The
 * batch loop is mnnh_model_predict_h5 (model_io.h), which takes a sample range
 * so that a distributed run can give each rank its own share. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mnnh/model_io.h"

typedef struct {
    const char *model_path, *input_path, *out_path, *backend;
    int batch, force;
} predict_args;

static double predict_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Open input_path's /input and check it against the model's grid. */
static mnnh_status predict_open_input(const predict_args *pa, const mnnh_arch *arch, hid_t *file,
                                      hid_t *input, hsize_t *S) {
    *input = H5I_INVALID_HID;
    MNNH_TRY(mnnh_h5_open_read(pa->input_path, file));
    mnnh_status st = MNNH_OK;
    htri_t ex = H5Lexists(*file, "input", H5P_DEFAULT);
    if (ex <= 0)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: no dataset /input", pa->input_path);
    else if ((*input = H5Dopen2(*file, "input", H5P_DEFAULT)) < 0)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /input is not a readable dataset", pa->input_path);
    if (!st) st = mnnh_model_check_input_h5(arch, *input, pa->model_path, pa->input_path, S);
    if (!st && *S == 0) st = mnnh_error_set(MNNH_ERR_ARG, "%s: /input holds no samples", pa->input_path);
    return st;
}

/* Create the output's datasets and attributes, run the loop, close them. */
static mnnh_status predict_write(const predict_args *pa, mnnh_model *model, hid_t input,
                                 hsize_t S, hid_t out) {
    const mnnh_arch *a = mnnh_model_arch(model);
    hsize_t dims[3] = {S, (hsize_t)a->N, (hsize_t)a->N};
    hid_t pred = H5I_INVALID_HID, copy = H5I_INVALID_HID;
    mnnh_status st = mnnh_model_write_attrs_h5(out, a, mnnh_model_norm(model));
    if (!st) st = mnnh_h5_attr_write_string(out, "model", pa->model_path);
    if (!st) st = mnnh_h5_attr_write_string(out, "input", pa->input_path);
    if (!st) st = mnnh_h5_create_f32(out, "prediction", a->dim + 1, dims, (hsize_t)pa->batch, &pred);
    if (!st) st = mnnh_h5_create_f32(out, "input", a->dim + 1, dims, (hsize_t)pa->batch, &copy);
    if (!st) st = mnnh_model_predict_h5(model, input, pred, copy, 0, S, pa->batch);
    if (copy >= 0) H5Dclose(copy);
    if (pred >= 0) H5Dclose(pred);
    return st;
}

static mnnh_status predict_run(const predict_args *pa) {
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    hid_t file = H5I_INVALID_HID, input = H5I_INVALID_HID;
    hsize_t S = 0;
    int gpu = !strcmp(pa->backend, "auto") || !strcmp(pa->backend, "cuda");
    mnnh_status st = mnnh_backend_create(&be, pa->backend, gpu ? 0 : -1);
    if (!st) fprintf(stderr, "mnnh predict: backend %s\n", be->ops->name);
    if (!st) st = mnnh_model_load(pa->model_path, be, &model);
    if (!st) st = predict_open_input(pa, mnnh_model_arch(model), &file, &input, &S);
    double t0 = predict_now();
    mnnh_h5_atomic out = {.file = H5I_INVALID_HID};
    if (!st) st = mnnh_h5_atomic_open(&out, pa->out_path);
    if (!st) st = predict_write(pa, model, input, S, out.file);
    if (!st) st = mnnh_h5_atomic_commit(&out);
    else if (out.file >= 0) mnnh_h5_atomic_abort(&out);
    if (!st) {
        double dt = predict_now() - t0;
        printf("wrote %s: /prediction of %llu samples (%dD, N=%d) from %s, %.0f samples/s\n",
               pa->out_path, (unsigned long long)S, mnnh_model_arch(model)->dim,
               mnnh_model_arch(model)->N, pa->model_path, dt > 0 ? (double)S / dt : 0.0);
    }
    if (input >= 0) H5Dclose(input);
    if (file >= 0) H5Fclose(file);
    if (model) mnnh_model_free(model);
    if (be) mnnh_backend_free(be);
    return st;
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
    int rc = mnnh_cli_parse(&cli, argc, argv, 1);
    if (rc) return rc < 0 ? MNNH_EXIT_OK : rc;
    if (pa.batch < 1) {
        fprintf(stderr, "mnnh predict: error: --batch %d: must be >= 1\n", pa.batch);
        return MNNH_EXIT_USAGE;
    }
    if (!pa.force && access(pa.out_path, F_OK) == 0) {
        fprintf(stderr, "mnnh predict: error: %s exists (use --force to overwrite)\n", pa.out_path);
        return MNNH_EXIT_USAGE;
    }
    mnnh_status st = predict_run(&pa);
    return st ? mnnh_cli_fail("predict", st) : MNNH_EXIT_OK;
}
