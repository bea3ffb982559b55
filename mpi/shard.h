/* shard.h: each rank's contiguous shard of a dataset, read collectively.
 *
 * A dataset file holds /input and /output, float [S][N] (1D) or [S][N][N]
 * (2D) (DESIGN.md, "Datasets"). Rank r of P holds samples [start, start+count)
 * with start = r*S/P rounded down, so the shards differ by at most one sample
 * and their union, in rank order, is the whole file. The shard is read once
 * with parallel HDF5 (MPI-IO driver, one collective H5Dread per dataset of
 * each rank's hyperslab) and validated collectively: a missing or malformed
 * file or dataset, a grid that does not match the model, fewer samples than
 * ranks, or a NaN/Inf in the data is reported with the file, dataset and
 * (global) sample index, on every rank, so that no rank hangs. */
#ifndef MNNH_SHARD_H
#define MNNH_SHARD_H

#include <stdint.h>

#include "comm.h"
#include "mnnh/arch.h"
#include "mnnh/model.h"

typedef struct {
    char path[4096];
    int dim, N;
    int64_t total;          /* samples in the file */
    int64_t start, count;   /* this rank's samples */
    size_t grid;            /* N^dim */
    float *input, *output;  /* host [count][grid]; output NULL when not read */
    double n_e;             /* root attribute n_e, 0 when absent */
    double cell_volume;     /* dx^dim from the root attributes, 0 when unknown */
} mnnh_shard;

/* Contiguous share of S samples for rank r of P. */
void mnnh_shard_range(int64_t S, int P, int r, int64_t *start, int64_t *count);

/* Local: the dimension (1 or 2) and grid N of path's /input, for building
 * the model before the shard is read; errors name opt and the file. */
mnnh_status mnnh_shard_probe(const char *path, const char *opt, int *dim, int *N);

/* Collective. Read this rank's shard of path (opt names the option that gave
 * it, e.g. "--train", for messages); with_output = 0 reads /input only. */
mnnh_status mnnh_shard_load(mnnh_shard *sh, const mnnh_comm *c, const char *path, const char *opt,
                            const mnnh_arch *arch, int with_output);
void mnnh_shard_free(mnnh_shard *sh);

/* Collective. The authors' normalisation from the whole training set:
 * input_scale = 1/(2 mean(input)), input_shift = -0.5 (x/(2 mean) - 0.5),
 * output_shift = mean(output) (the network learns output minus its mean).
 * Sums are in double and reduced across ranks. Other fields of norm are kept. */
mnnh_status mnnh_shard_norm_stats(const mnnh_comm *c, const mnnh_shard *sh, mnnh_norm *norm);

#endif
