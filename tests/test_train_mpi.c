/* test_train_mpi.c: the distributed pieces of `mnnh train` at 1, 2 and 4 ranks.
 *
 * - the fused allreduce of P ranks' gradients equals the 1-rank gradient of
 *   the same samples to float32 rounding (1D and 2D, density layer and
 *   normalisation on), and carries the loss sums and the stop flag;
 * - parameters broadcast from rank 0 end up identical on every rank;
 * - sharded collective reading: each rank's rows are bitwise the file's rows;
 * - normalisation statistics reduced across ranks equal the serial ones;
 * - distributed validation equals serial validation (mean and per sample);
 * - distributed predict writes one file whose /prediction equals the serial
 *   forward pass row by row;
 * - a NaN in the data and fewer samples than ranks are reported on every rank
 *   (no hang), naming the file, dataset and sample.
 * Every check is reduced over ranks, so a failure on one rank fails all of
 * them instead of leaving the others waiting in a collective. */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "mnnh/model_io.h"
#include "predict_dist.h"
#include "mnnh/rng.h"
#include "shard.h"
#include "validate.h"

static int failures;
static mnnh_comm *C;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "[rank %d] %s:%d: CHECK failed: %s: ", C->rank,   \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            failures++;                                                      \
        }                                                                    \
    } while (0)
#define OK(call) CHECK((call) == MNNH_OK, "%s", mnnh_error_msg())

static void fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng r;
    mnnh_rng_init(&r, seed, 99);
    for (size_t i = 0; i < n; i++) x[i] = (float)mnnh_rng_range(&r, lo, hi);
}

static double reldiff(const float *a, const float *b, size_t n) {
    double s = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > s) s = fabs(b[i]);
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
    }
    return d / (s > 0 ? s : 1);
}

/* ---------------------------------------------------------------- gradient */

static void check_gradient(int dim, int L, int m, int r, int K, int density) {
    mnnh_arch a;
    mnnh_arch_set(&a, dim, L, m, r, K, MNNH_CNN);
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    OK(mnnh_backend_create(&be, "cpu", -1));
    OK(mnnh_model_create(&model, &a, be));
    const int S = 12;
    size_t g = mnnh_arch_grid_size(&a), n = mnnh_model_nparams(model);
    OK(mnnh_model_reserve(model, S));
    mnnh_norm *nm = mnnh_model_norm(model);
    nm->input_scale = 0.7f;
    nm->input_shift = -0.5f;
    nm->output_shift = 0.3f;
    if (density) {
        nm->density_ne = 2.0f;
        nm->cell_volume = 1.0f / (float)g;
    }
    OK(mnnh_model_init_params(model, 7));
    float *v = malloc(S * g * sizeof(float)), *t = malloc(S * g * sizeof(float));
    fill(v, S * g, 1, -1.5, -0.5);
    fill(t, S * g, 2, 0.5, 1.5);
    /* every rank: the whole batch on one "rank" */
    float *g1 = malloc(n * sizeof(float)), *gp = malloc(n * sizeof(float));
    double e2_all = 0, e1_all = 0, e2 = 0, e1 = 0;
    OK(mnnh_model_zero_grads(model));
    OK(mnnh_model_train_batch(model, S, v, t, S, &e2_all, &e1_all));
    OK(mnnh_model_get_grads(model, g1));
    /* distributed: this rank's contiguous share, scaled by the global count */
    int64_t start, count;
    mnnh_shard_range(S, C->size, C->rank, &start, &count);
    OK(mnnh_model_zero_grads(model));
    OK(mnnh_model_train_batch(model, (int)count, v + start * g, t + start * g, S, &e2, &e1));
    float extra[MNNH_STEP_NEXTRA] = {[MNNH_STEP_STOP] = C->rank == C->size - 1,
                                     [MNNH_STEP_ERR2] = (float)e2,
                                     [MNNH_STEP_ERR] = (float)e1,
                                     [MNNH_STEP_COUNT] = (float)count};
    OK(mnnh_comm_allreduce_grads(C, model, 1, extra));
    OK(mnnh_model_get_grads(model, gp));
    double rd = reldiff(gp, g1, n);
    CHECK(rd < 2e-6, "%dD%s: P=%d gradient differs from the 1-rank gradient by %.3e", dim,
          density ? " density" : "", C->size, rd);
    CHECK(fabs(extra[MNNH_STEP_ERR2] - e2_all) <= 1e-5 * e2_all, "loss sum %g vs %g",
          extra[MNNH_STEP_ERR2], e2_all);
    CHECK(extra[MNNH_STEP_COUNT] == S, "sample count %g", extra[MNNH_STEP_COUNT]);
    CHECK(extra[MNNH_STEP_STOP] == 1, "stop flag of the last rank did not reach rank %d", C->rank);
    free(v);
    free(t);
    free(g1);
    free(gp);
    mnnh_model_free(model);
    mnnh_backend_free(be);
}

static void check_bcast(void) {
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 3, 5, 4, 2, MNNH_CNN);
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    OK(mnnh_backend_create(&be, "cpu", -1));
    OK(mnnh_model_create(&model, &a, be));
    OK(mnnh_model_init_params(model, 100 + (uint64_t)C->rank)); /* different on each rank */
    OK(mnnh_comm_bcast_params(C, model));
    size_t n = mnnh_model_nparams(model);
    float *p = malloc(n * sizeof(float)), *p0 = malloc(n * sizeof(float));
    OK(mnnh_model_get_params(model, p));
    memcpy(p0, p, n * sizeof(float));
    MPI_Bcast(p0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    CHECK(memcmp(p, p0, n * sizeof(float)) == 0, "parameters differ from rank 0's after broadcast");
    free(p);
    free(p0);
    mnnh_model_free(model);
    mnnh_backend_free(be);
}

/* ------------------------------------------------------------------ data */

static void write_dataset(const char *path, int dim, int N, int S, int nan_sample) {
    size_t g = dim == 1 ? (size_t)N : (size_t)N * N;
    float *x = malloc(S * g * sizeof(float)), *y = malloc(S * g * sizeof(float));
    fill(x, S * g, 11, -1.5, -0.5);
    fill(y, S * g, 12, 0.5, 1.5);
    if (nan_sample >= 0) y[nan_sample * g + 3] = NAN;
    hsize_t dims[3] = {(hsize_t)S, (hsize_t)N, (hsize_t)N};
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s = H5Screate_simple(dim + 1, dims, NULL);
    hid_t d = H5Dcreate2(f, "input", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(d);
    d = H5Dcreate2(f, "output", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
    free(x);
    free(y);
}

static void check_shards_and_validation(const char *path, int S) {
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 3, 5, 4, 2, MNNH_CNN);
    mnnh_comm *self = NULL;
    OK(mnnh_comm_create(&self, MPI_COMM_SELF));
    mnnh_shard dist, all;
    OK(mnnh_shard_load(&dist, C, path, "--valid", &a, 1));
    OK(mnnh_shard_load(&all, self, path, "--valid", &a, 1));
    if (failures) return;
    CHECK(all.count == S && dist.total == S, "sample counts %lld %lld", (long long)all.count,
          (long long)dist.total);
    size_t g = dist.grid, bytes = (size_t)dist.count * g * sizeof(float);
    CHECK(!memcmp(dist.input, all.input + dist.start * g, bytes), "shard /input rows differ from the file");
    CHECK(!memcmp(dist.output, all.output + dist.start * g, bytes), "shard /output rows differ");
    mnnh_norm nd, ns;
    mnnh_norm_default(&nd);
    mnnh_norm_default(&ns);
    OK(mnnh_shard_norm_stats(C, &dist, &nd));
    OK(mnnh_shard_norm_stats(self, &all, &ns));
    CHECK(fabsf(nd.input_scale - ns.input_scale) <= 1e-6f * fabsf(ns.input_scale) &&
              fabsf(nd.output_shift - ns.output_shift) <= 1e-6f * fabsf(ns.output_shift),
          "normalisation %g %g vs serial %g %g", nd.input_scale, nd.output_shift, ns.input_scale,
          ns.output_shift);
    /* validation */
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    OK(mnnh_backend_create(&be, "cpu", -1));
    OK(mnnh_model_create(&model, &a, be));
    OK(mnnh_model_reserve(model, 4));
    OK(mnnh_model_init_params(model, 3));
    *mnnh_model_norm(model) = ns;
    double *ed = malloc(dist.count * sizeof(double)), *es = malloc(S * sizeof(double));
    double *gathered = malloc(S * sizeof(double));
    mnnh_valid_result rd, rs;
    OK(mnnh_validate_shard(C, model, &dist, 3, ed, &rd));
    OK(mnnh_validate_shard(self, model, &all, 4, es, &rs));
    OK(mnnh_validate_gather(C, &dist, ed, gathered));
    CHECK(fabs(rd.mean_err - rs.mean_err) <= 1e-6 * rs.mean_err && rd.count == S,
          "distributed validation %.9g (%g samples) vs serial %.9g", rd.mean_err, rd.count, rs.mean_err);
    if (C->rank == 0)
        for (int i = 0; i < S; i++)
            CHECK(fabs(gathered[i] - es[i]) <= 1e-6 * es[i], "sample %d error %.9g vs serial %.9g", i,
                  gathered[i], es[i]);
    free(ed);
    free(es);
    free(gathered);
    mnnh_model_free(model);
    mnnh_backend_free(be);
    mnnh_shard_free(&dist);
    mnnh_shard_free(&all);
    mnnh_comm_free(self);
}

static void check_predict(const char *data, const char *model_path, const char *out, int S) {
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 3, 5, 4, 2, MNNH_CNN);
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    OK(mnnh_backend_create(&be, "cpu", -1));
    OK(mnnh_model_create(&model, &a, be));
    OK(mnnh_model_init_params(model, 9));
    mnnh_model_norm(model)->input_scale = 0.5f;
    if (C->rank == 0) OK(mnnh_model_save(model, model_path));
    MPI_Barrier(MPI_COMM_WORLD);
    long long n = 0;
    OK(mnnh_predict_distributed(C, model_path, data, out, "cpu", 3, &n));
    CHECK(n == S, "predicted %lld samples", n);
    if (C->rank == 0 && !failures) {
        size_t g = 40;
        float *x = malloc(S * g * sizeof(float)), *p = malloc(S * g * sizeof(float));
        float *u = malloc(S * g * sizeof(float));
        hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "prediction", H5P_DEFAULT);
        CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) >= 0, "read /prediction");
        H5Dclose(d);
        d = H5Dopen2(f, "input", H5P_DEFAULT);
        CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0, "read /input");
        H5Dclose(d);
        H5Fclose(f);
        OK(mnnh_model_reserve(model, S));
        OK(mnnh_model_forward(model, S, x, u));
        CHECK(reldiff(p, u, S * g) < 1e-6, "distributed prediction differs from serial by %.3e",
              reldiff(p, u, S * g));
        free(x);
        free(p);
        free(u);
        unlink(out);
        unlink(model_path);
    }
    mnnh_model_free(model);
    mnnh_backend_free(be);
}

static void check_bad_data(const char *nanpath, const char *tinypath) {
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 3, 5, 4, 2, MNNH_CNN);
    mnnh_shard sh;
    mnnh_status st = mnnh_shard_load(&sh, C, nanpath, "--train", &a, 1);
    CHECK(st == MNNH_ERR_FORMAT && strstr(mnnh_error_msg(), "/output sample 9") &&
              strstr(mnnh_error_msg(), nanpath),
          "NaN not reported as expected: %s", mnnh_error_msg());
    st = mnnh_shard_load(&sh, C, tinypath, "--train", &a, 1);
    if (C->size > 2)
        CHECK(st == MNNH_ERR_ARG && strstr(mnnh_error_msg(), "2 sample(s) for"),
              "fewer samples than ranks: %s", mnnh_error_msg());
    else {
        CHECK(st == MNNH_OK, "%s", mnnh_error_msg());
        if (!st) mnnh_shard_free(&sh);
    }
    mnnh_arch b;
    mnnh_arch_set(&b, 1, 2, 5, 4, 2, MNNH_CNN); /* N = 20, file has 40 */
    st = mnnh_shard_load(&sh, C, nanpath, "--train", &b, 1);
    CHECK(st == MNNH_ERR_ARG && strstr(mnnh_error_msg(), "N = 2^L m"), "grid mismatch: %s",
          mnnh_error_msg());
    st = mnnh_shard_load(&sh, C, "/nonexistent/x.h5", "--train", &a, 1);
    CHECK(st == MNNH_ERR_ARG && strstr(mnnh_error_msg(), "/nonexistent/x.h5"), "missing file: %s",
          mnnh_error_msg());
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (mnnh_comm_create(&C, MPI_COMM_WORLD)) {
        fprintf(stderr, "comm: %s\n", mnnh_error_msg());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char dir[] = "/tmp/mnnh-train-mpi-XXXXXX", good[128], nan[128], tiny[128];
    if (C->rank == 0 && !mkdtemp(dir)) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(nan, sizeof nan, "%s/nan.h5", dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.h5", dir);
    if (C->rank == 0) {
        write_dataset(good, 1, 40, 13, -1);
        write_dataset(nan, 1, 40, 13, 9);
        write_dataset(tiny, 1, 40, 2, -1);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    check_gradient(1, 3, 5, 4, 2, 0);
    check_gradient(1, 3, 5, 4, 2, 1);
    check_gradient(2, 2, 3, 3, 2, 1);
    check_bcast();
    check_shards_and_validation(good, 13);
    char mpath[160], ppath[160];
    snprintf(mpath, sizeof mpath, "%s/model.h5", dir);
    snprintf(ppath, sizeof ppath, "%s/pred.h5", dir);
    check_predict(good, mpath, ppath, 13);
    check_bad_data(nan, tiny);

    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    if (C->rank == 0) {
        unlink(good);
        unlink(nan);
        unlink(tiny);
        rmdir(dir);
        printf("test_train_mpi on %d rank(s): %s (%d failed check(s))\n", C->size,
               total ? "FAILED" : "ok", total);
    }
    mnnh_comm_free(C);
    MPI_Finalize();
    return total ? 1 : 0;
}
