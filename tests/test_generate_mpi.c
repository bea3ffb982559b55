/* test_generate_mpi.c: `mnnh generate` on P ranks (ctest runs P = 1, 2, 3).
 *
 * Every row of the file written collectively must equal, bit for bit, the
 * sample computed serially from (seed, first_sample + row) by the core, so
 * files made on any rank counts are equal sample by sample. Also: an existing
 * file is refused without --force (exit 2) and left intact, a sample that
 * fails (exit 1) leaves neither the final nor a temporary file, bad options
 * exit 2 on every rank. */
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mnnh/dataset.h"
#include "mnnh/ks.h"
#include "mnnh/nlse.h"

static int rank, size, failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "[rank %d] %s:%d: CHECK(%s) failed: ", rank, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            failures++;                                                   \
        }                                                                 \
    } while (0)

/* Run `mnnh generate` with a NULL-terminated argument list. */
static int generate(const char *first, ...) {
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    argv[argc++] = "generate";
    for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return mnnh_cmd_generate(argc, argv);
}

static void read_f64(hid_t f, const char *name, double *buf) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    CHECK(d >= 0, "no /%s", name);
    if (d < 0) return;
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
}

/* Rank 0: compare every row of path with the serial computation (n_g wells). */
static void compare_serial_ng(const char *path, int is_ks, int dim, int N, int64_t S, int64_t first,
                              uint64_t seed, int n_g) {
    mnnh_dataset *ds;
    mnnh_status st = mnnh_dataset_open(path, 0, &ds);
    CHECK(st == MNNH_OK, "%s", mnnh_error_msg());
    if (st != MNNH_OK) return;
    CHECK(ds->samples == S && ds->dim == dim && ds->N == N, "shape");
    CHECK(strcmp(ds->meta.equation, is_ks ? "ks" : "nlse") == 0, "equation %s", ds->meta.equation);
    CHECK(ds->meta.seed == seed && ds->meta.first_sample == first, "seed/first_sample attributes");
    int64_t g = ds->sample_size;
    float *in = malloc(S * g * sizeof(float)), *out = malloc(S * g * sizeof(float));
    double *V = malloc(g * sizeof(double)), *U = malloc(g * sizeof(double)), eig[8], *feig = malloc(S * 8 * sizeof(double));
    CHECK(mnnh_dataset_read(ds, 0, S, in, out) == MNNH_OK, "%s", mnnh_error_msg());
    read_f64(ds->file, "eigenvalues", feig);
    mnnh_ks_params kp;
    mnnh_nlse_params np;
    mnnh_ks *ks = NULL;
    mnnh_nlse *nl = NULL;
    int nval = 1;
    if (is_ks) {
        mnnh_ks_params_preset(&kp, "paper", dim);
        kp.N = N;
        kp.n_g = kp.n_e = n_g;
        nval = kp.n_e;
        CHECK(mnnh_ks_create(&kp, &ks) == MNNH_OK, "%s", mnnh_error_msg());
    } else {
        mnnh_nlse_params_default(&np, dim);
        np.N = N;
        np.n_g = n_g;
        CHECK(mnnh_nlse_create(&np, &nl) == MNNH_OK, "%s", mnnh_error_msg());
    }
    for (int64_t s = 0; s < S; s++) {
        st = is_ks ? mnnh_ks_sample(ks, seed, first + s, V, U, eig, NULL, NULL, NULL)
                   : mnnh_nlse_sample(nl, seed, first + s, V, U, eig, NULL, NULL);
        CHECK(st == MNNH_OK, "%s", mnnh_error_msg());
        int same = 1;
        for (int64_t i = 0; i < g; i++)
            same &= in[s * g + i] == (float)V[i] && out[s * g + i] == (float)U[i];
        CHECK(same, "%s row %lld differs from serial sample %lld", path, (long long)s, (long long)(first + s));
        for (int j = 0; j < nval; j++)
            CHECK(feig[s * nval + j] == eig[j], "%s row %lld eigenvalue %d", path, (long long)s, j);
    }
    mnnh_ks_free(ks);
    mnnh_nlse_free(nl);
    free(in); free(out); free(V); free(U); free(feig);
    mnnh_dataset_close(ds);
}

static void compare_serial(const char *path, int is_ks, int dim, int N, int64_t S, int64_t first, uint64_t seed) {
    compare_serial_ng(path, is_ks, dim, N, S, first, seed, 2);
}

static int count_tmp(const char *prefix) {
    DIR *d = opendir(".");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char ks1[64], ks2[64], nl2[64], prefix[32];
    snprintf(prefix, sizeof prefix, "gen_mpi_np%d_", size);
    snprintf(ks1, sizeof ks1, "%sks1.h5", prefix);
    snprintf(ks2, sizeof ks2, "%sks2.h5", prefix);
    snprintf(nl2, sizeof nl2, "%snlse2.h5", prefix);
    if (rank == 0) unlink(ks1), unlink(ks2), unlink(nl2);
    MPI_Barrier(MPI_COMM_WORLD);

    int rc = generate("--equation", "ks", "--dim", "1", "--grid", "64", "--samples", "7", "--n-g", "2",
                      "--seed", "5", "--first-sample", "3", "--block", "2", "--quiet", "--out", ks1, NULL);
    CHECK(rc == 0, "KS 1D rc %d", rc);
    rc = generate("--equation", "ks", "--dim", "2", "--grid", "16", "--samples", "5", "--n-g", "2",
                  "--seed", "6", "--quiet", "--out", ks2, NULL);
    CHECK(rc == 0, "KS 2D rc %d", rc);
    rc = generate("--equation", "nlse", "--dim", "2", "--grid", "16", "--samples", "4", "--n-g", "2",
                  "--seed", "7", "--block", "1", "--quiet", "--out", nl2, NULL);
    CHECK(rc == 0, "NLSE 2D rc %d", rc);
    /* fewer samples than ranks: the empty ranks take part with empty selections */
    char few[64];
    snprintf(few, sizeof few, "%sfew.h5", prefix);
    if (rank == 0) unlink(few);
    MPI_Barrier(MPI_COMM_WORLD);
    rc = generate("--equation", "ks", "--dim", "1", "--grid", "64", "--samples", "2", "--n-g", "3",
                  "--seed", "8", "--quiet", "--out", few, NULL);
    CHECK(rc == 0, "KS 1D, 2 samples: rc %d", rc);
    if (rank == 0) {
        compare_serial_ng(few, 1, 1, 64, 2, 0, 8, 3);
        unlink(few);
    }
    if (rank == 0) {
        compare_serial(ks1, 1, 1, 64, 7, 3, 5);
        compare_serial(ks2, 1, 2, 16, 5, 0, 6);
        compare_serial(nl2, 0, 2, 16, 4, 0, 7);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    struct stat before, after;
    stat(ks1, &before);
    rc = generate("--equation", "ks", "--dim", "1", "--grid", "64", "--samples", "3", "--n-g", "2",
                  "--quiet", "--out", ks1, NULL);
    CHECK(rc == 2, "existing file without --force: rc %d", rc);
    rc = generate("--equation", "ks", "--dim", "1", "--grid", "64", "--samples", "3", "--n-g", "2",
                  "--maxiter", "1", "--force", "--quiet", "--out", ks1, NULL);
    CHECK(rc == 1, "failing sample: rc %d", rc);
    MPI_Barrier(MPI_COMM_WORLD);
    stat(ks1, &after);
    CHECK(before.st_size == after.st_size && before.st_mtime == after.st_mtime && before.st_ino == after.st_ino,
          "a failed run replaced %s", ks1);
    rc = generate("--equation", "ks", "--dim", "2", "--grid", "16", "--samples", "3", "--n-g", "2",
                  "--preset", "nope", "--out", "x.h5", NULL);
    CHECK(rc == 2, "unknown preset: rc %d", rc);
    rc = generate("--equation", "ks", "--dim", "2", "--grid", "16", "--samples", "3", "--n-g", "2",
                  "--out", "/nonexistent-dir/x.h5", NULL);
    CHECK(rc == 2, "unwritable path: rc %d", rc);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK(count_tmp(prefix) == 0, "temporary files left behind");
        unlink(ks1), unlink(ks2), unlink(nl2);
    }
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("test_generate_mpi on %d ranks: %s (%d failures)\n", size, all ? "FAIL" : "PASS", all);
    MPI_Finalize();
    return all ? 1 : 0;
}
