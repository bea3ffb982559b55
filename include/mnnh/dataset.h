/* dataset.h: the HDF5 dataset files of `mnnh generate` (docs/formats.md).
 *
 * Layout: /input float32 [S][N] (1D) or [S][N][N] (2D), the potential V;
 * /output the same shape, the density rho (KS) or ground state u (NLSE);
 * per-sample /eigenvalues float64 [S][k] (KS: the n_e lowest eps, NLSE: the
 * chemical potential E, k = 1), /residuals float64 [S][k], /iterations int32
 * [S] and for KS /gap float64 [S] (eps_{n_e+1} - eps_{n_e}). Root attributes:
 * equation ("ks"|"nlse"), dim, N, samples, first_sample, n_g, n_e (0 for
 * NLSE), seed, domain [lo, hi] (per axis, periodic), boundary ("periodic"),
 * dx, cell_volume (dx^dim), generator (version
 * string), tol, and the equation's parameters (KS: preset, sigma, box,
 * separation, depth_min, depth_max; NLSE: beta, rho_min, rho_max, T_min,
 * T_max).
 *
 * Defines the writer (create, write a block of samples, close) and a reader
 * (open and validate, read a hyperslab of samples into float buffers with a
 * NaN/Inf check naming the sample, describe). Both take HDF5 property lists so
 * that mpi/ can pass MPI-IO ones (collective writes and reads); this module
 * itself makes no MPI call. With H5P_DEFAULT everything is serial. */
#ifndef MNNH_DATASET_H
#define MNNH_DATASET_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MNNH_GENERATOR_VERSION "mnnh-generate 1 (mnnh 0.1.0)"

typedef struct {
    char equation[8];       /* "ks" or "nlse" */
    int dim, N;
    int64_t samples;        /* S */
    int64_t first_sample;   /* row s holds sample first_sample + s of stream (seed, .) */
    int n_g, n_e;           /* n_e = 0 for NLSE */
    uint64_t seed;
    double domain[2];       /* [lo, hi) per axis */
    double tol;
    int nval;               /* per-sample eigenvalues: n_e (KS) or 1 (NLSE) */
    char generator[64];
    /* KS */
    char preset[16];
    double sigma, box, separation, depth_min, depth_max;
    /* NLSE */
    double beta, rho_min, rho_max, T_min, T_max;
} mnnh_dataset_meta;

/* ---- writing ---- */

typedef struct mnnh_dataset_writer mnnh_dataset_writer;

/* Create (truncate) path with the file-access list fapl (H5P_DEFAULT or an
 * MPI-IO one: then every rank calls with the same meta) and write the
 * attributes and empty datasets. */
mnnh_status mnnh_dataset_create(const char *path, hid_t fapl, const mnnh_dataset_meta *meta,
                                mnnh_dataset_writer **out);

/* Write rows [start, start+count) of every dataset; count may be 0 (a rank
 * with nothing to write still takes part in a collective write). eig, res are
 * [count][nval]; gap is [count] (KS only, else ignored); iters [count]. */
mnnh_status mnnh_dataset_write(mnnh_dataset_writer *w, int64_t start, int64_t count,
                               const float *input, const float *output, const double *eig,
                               const double *res, const double *gap, const int *iters, hid_t dxpl);

/* Close everything; the status of the final flush/close is returned. After a
 * failed close (disk full, file size limit) HDF5 1.10 keeps the file half
 * closed and crashes if it is closed again, including at library shutdown:
 * the caller must then end the process without shutting HDF5 down. */
mnnh_status mnnh_dataset_writer_close(mnnh_dataset_writer *w);

/* ---- reading ---- */

enum { MNNH_DATASET_NEED_OUTPUT = 0, MNNH_DATASET_INPUT_ONLY = 1 };

typedef struct {
    hid_t file, input, output; /* output < 0 when absent (INPUT_ONLY) */
    mnnh_dataset_meta meta;    /* from the attributes; dim/N/samples from the shape */
    int64_t samples;           /* S */
    int dim, N;
    int64_t sample_size;       /* N^dim */
    char path[512];
} mnnh_dataset;

/* Open and validate: /input (and /output unless flags has INPUT_ONLY) exist,
 * are float32 of rank 2 (dim 1) or 3 (dim 2, square), have the same shape, and
 * agree with the dim and N attributes when present. MNNH_ERR_IO when the file
 * cannot be opened, MNNH_ERR_FORMAT (message naming file and dataset) when it
 * is not a valid dataset. */
mnnh_status mnnh_dataset_open(const char *path, int flags, mnnh_dataset **out);
/* Same with a file-access property list (MPI-IO for collective reads). */
mnnh_status mnnh_dataset_open_fapl(const char *path, int flags, hid_t fapl, mnnh_dataset **out);

/* Read samples [start, start+count) of /input and /output into float buffers
 * of count * sample_size values (either may be NULL). Fails with
 * MNNH_ERR_NUMERIC naming the sample and dataset on a NaN or Inf. */
mnnh_status mnnh_dataset_read(mnnh_dataset *ds, int64_t start, int64_t count, float *input,
                              float *output);
/* Same with a transfer property list (collective MPI-IO). count may be 0. */
mnnh_status mnnh_dataset_read_dxpl(mnnh_dataset *ds, int64_t start, int64_t count, float *input,
                                   float *output, hid_t dxpl);

void mnnh_dataset_close(mnnh_dataset *ds);

/* Print "key: value" lines: the attributes, every dataset's shape and type,
 * and min / max / mean of /input and /output (and of the per-sample
 * datasets), reading the file in blocks of samples. */
mnnh_status mnnh_dataset_describe(const char *path, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
