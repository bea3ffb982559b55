/* bench_generate.c: throughput of `mnnh generate` (KS 2D 64x64 and KS 1D
 * N=320, the paper's presets, n_g = n_e = 2) on the ranks of this mpirun,
 * next to the dense-eigensolver baseline (LAPACKE_dsyevr on the assembled
 * pseudo-spectral H, the lowest n_e pairs) measured in the same run on the
 * same ranks. One JSON line per configuration on stdout (rank 0).
 *
 *   mpirun -n P bench_generate [S2D [S1D [DENSE2D [DENSE1D]]]]
 *
 * S2D / S1D: samples generated end to end (solver + collective HDF5 write to a
 * temporary file), DENSE2D / DENSE1D: dense solves per rank. See
 * benchmarks/bench_generate.sh for the 1- and 2-rank runs. */
#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mnnh/dataset.h"
#include "mnnh/ks.h"

static int rank, size;

/* CPU seconds of this process: on a shared machine, wall time measures the
 * other users' load too; CPU time per sample projects to idle cores. */
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Samples/s of `mnnh generate` for (dim, N, S); mean solver iterations and
 * CPU milliseconds per sample (summed over ranks) out. */
static double bench_generate(int dim, int N, int64_t S, double *iters, double *cpu_ms) {
    char path[128], grid[16], samples[32], d[8];
    int pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD); /* one name on every rank */
    snprintf(path, sizeof path, "/tmp/mnnh_bench_generate_%d.h5", pid);
    snprintf(grid, sizeof grid, "%d", N);
    snprintf(samples, sizeof samples, "%lld", (long long)S);
    snprintf(d, sizeof d, "%d", dim);
    char *argv[] = {"generate", "--equation", "ks", "--dim", d, "--grid", grid, "--samples", samples,
                    "--n-g", "2", "--seed", "1", "--quiet", "--force", "--out", path, NULL};
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), c0 = cpu_s();
    int rc = mnnh_cmd_generate((int)(sizeof argv / sizeof argv[0]) - 1, argv);
    double c = cpu_s() - c0, csum = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(&c, &csum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *cpu_ms = 1e3 * csum / S;
    *iters = 0;
    if (rc != 0) {
        if (rank == 0) fprintf(stderr, "bench_generate: mnnh generate failed (%d)\n", rc);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t ds = H5Dopen2(f, "iterations", H5P_DEFAULT);
        int *it = malloc(S * sizeof(int));
        H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, it);
        for (int64_t i = 0; i < S; i++) *iters += it[i];
        *iters /= S;
        free(it);
        H5Dclose(ds);
        H5Fclose(f);
        unlink(path);
    }
    return S / t;
}

/* Samples/s of the dense solve, k samples on every rank at once; CPU ms per sample out. */
static double bench_dense(int dim, int N, int k, double *cpu_ms) {
    mnnh_ks_params p;
    mnnh_ks_params_preset(&p, "paper", dim);
    p.N = N;
    int64_t n = mnnh_ks_grid_size(&p);
    double *V = malloc(n * sizeof(double)), *rho = malloc(n * sizeof(double));
    double centres[4], dep[2];
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), c0 = cpu_s();
    for (int i = 0; i < k; i++) {
        mnnh_ks_wells(&p, 1, rank * k + i, centres, dep);
        mnnh_ks_potential(&p, centres, dep, V);
        if (mnnh_ks_dense(&p, V, rho, NULL) != MNNH_OK) {
            fprintf(stderr, "dense: %s\n", mnnh_error_msg());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    double c = cpu_s() - c0, csum = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(&c, &csum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *cpu_ms = 1e3 * csum / ((double)k * size);
    free(V);
    free(rho);
    return (double)k * size / t;
}

static void report(int dim, int N, int64_t S, int dense_k) {
    double iters, cpu, dcpu, load[1] = {0};
    double rate = bench_generate(dim, N, S, &iters, &cpu);
    double dense = bench_dense(dim, N, dense_k, &dcpu);
    if (rank)
        return;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", load) != 1) load[0] = -1;
        fclose(f);
    }
    /* wall: as measured here; cpu: CPU time per sample, which projects the
     * 20000-sample set onto `size` idle cores as 20000 * cpu / size. */
    printf("{\"bench\":\"generate\",\"equation\":\"ks\",\"preset\":\"paper\",\"dim\":%d,\"N\":%d,\"n_g\":2,"
           "\"ranks\":%d,\"samples\":%lld,\"samples_per_s\":%.2f,\"cpu_ms_per_sample\":%.2f,"
           "\"iterations_per_sample\":%.2f,\"dense_samples\":%d,\"dense_samples_per_s\":%.4f,"
           "\"dense_cpu_ms_per_sample\":%.1f,\"speedup_vs_dense\":%.1f,\"cpu_speedup_vs_dense\":%.1f,"
           "\"wall_s_for_20000\":%.1f,\"idle_cores_s_for_20000\":%.1f,\"loadavg\":%.2f,\"blas_core\":\"%s\"}\n",
           dim, N, size, (long long)S, rate, cpu, iters, dense_k * size, dense, dcpu, rate / dense, dcpu / cpu,
           20000.0 / rate, 20000.0 * cpu / 1e3 / size, load[0], openblas_get_corename());
    fflush(stdout);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    openblas_set_num_threads(1);
    int64_t s2 = argc > 1 ? atoll(argv[1]) : 1000, s1 = argc > 2 ? atoll(argv[2]) : 5000;
    int d2 = argc > 3 ? atoi(argv[3]) : 1, d1 = argc > 4 ? atoi(argv[4]) : 20;
    if (rank == 0 && strstr(openblas_get_corename(), "Prescott"))
        fprintf(stderr, "bench_generate: warning: OpenBLAS runs its generic Prescott kernels; on an "
                        "AVX-512 CPU set OPENBLAS_CORETYPE=SkylakeX (docs/generate.md)\n");
    report(2, 64, s2, d2);
    report(1, 320, s1, d1);
    MPI_Finalize();
    return 0;
}
