/* mpi_hello.c: the smallest MPI program, run under `srun --mpi=pmix` by
 * tests/slurm/cluster_test.sh to prove the local Slurm launches MPI jobs.
 * Prints one line per rank: rank, size, local rank (shared-memory split, as
 * mnnh binds GPUs) and host; rank 0 checks the allreduce of 1 equals size. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, lrank, one = 1, sum = 0, len;
    char host[MPI_MAX_PROCESSOR_NAME];
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &lrank);
    MPI_Get_processor_name(host, &len);
    MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("hello from rank %d of %d (local rank %d) on %s\n", rank, size, lrank, host);
    fflush(stdout);
    int rc = sum == size ? 0 : 1;
    if (rank == 0) printf("allreduce %s: %d of %d\n", rc ? "FAILED" : "ok", sum, size);
    MPI_Comm_free(&local);
    MPI_Finalize();
    return rc;
}
