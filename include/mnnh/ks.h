/* ks.h: the Kohn-Sham map V -> rho (paper section 4.3), one sample at a time.
 *
 * Defines mnnh_ks_params (units, wells, solver tolerance) with the two named
 * presets, the random Gaussian-well potential of sample i drawn from the
 * counter-based stream (seed, i), and mnnh_ks (FFTW plans and buffers) that
 * solves H psi = eps psi with H = -1/2 Laplacian + V on the periodic grid
 * x_j = x0 + j * box / N (per axis). The Laplacian is pseudo-spectral
 * (multiplication by |k|^2 after an FFTW r2c transform); the lowest n_e
 * eigenpairs come from LOBPCG (eigensolver.h) with the kinetic preconditioner
 * (1/2 |k|^2 + shift)^{-1}. With discrete eigenvectors psi_j of unit 2-norm,
 * rho = sum_{j < n_e} psi_j^2 / dx^d, so that sum(rho) dx^d = n_e.
 * mnnh_ks_dense is the dense LAPACKE reference on the same discrete H.
 *
 * Presets:
 *   paper    box 2 ([-1,1)^d), sigma 0.05 (1D) / 0.2 (2D), centres more
 *            than 2 sigma apart, depths U[0.8,1.2], N 320 (1D) / 64 (2D)
 *   original the authors' code: box 16 ([0,16)^d), dx = 0.25 (N = 64), sigma 1,
 *            centres more than 6 sigma apart, depths U[0.8,1.2]
 * Plans use FFTW_ESTIMATE so that every rank runs the same algorithm and a
 * sample is bitwise the same whatever rank computes it. */
#ifndef MNNH_KS_H
#define MNNH_KS_H

#include <stdint.h>

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MNNH_KS_MAX_BLOCK 64

typedef struct {
    char preset[16];  /* "paper" or "original" */
    int dim;          /* 1 or 2 */
    int N;            /* grid points per axis */
    int n_g;          /* Gaussian wells */
    int n_e;          /* electrons = eigenpairs summed into rho */
    double box;       /* periodic box length per axis */
    double x0;        /* left end of the box */
    double sigma;     /* well width */
    double sep;       /* centres' periodic distance must exceed this */
    double c_min, c_max; /* well depths c_i ~ U[c_min, c_max] */
    double tol;       /* eigen-residual tolerance ||H psi - eps psi||_2, |psi|_2 = 1 */
    int maxiter;      /* LOBPCG iterations before a sample is declared failed */
    int guard;        /* extra LOBPCG vectors beyond n_e */
} mnnh_ks_params;

/* Fill p from a named preset for dimension dim (n_g = n_e = 2, tol 1e-8,
 * maxiter 1000, guard 3). Unknown preset or dim: MNNH_ERR_ARG. */
mnnh_status mnnh_ks_params_preset(mnnh_ks_params *p, const char *preset, int dim);

/* Validate every field; the message names the bad one (N not positive,
 * n_g too large for the separation constraint, ...). The wells fit when
 * sequential placement can never get stuck, (n_g - 1) * (2 sep in 1D,
 * pi sep^2 in 2D) < box^d, or else when the covered fraction
 * n_g * (sep, pi sep^2 / 4) / box^d stays below random placement's jamming
 * limit (0.74 in 1D, 0.54 in 2D). */
mnnh_status mnnh_ks_params_check(const mnnh_ks_params *p);

/* Grid points of one sample, N^dim. */
int64_t mnnh_ks_grid_size(const mnnh_ks_params *p);

/* Draw sample `sample`'s wells from stream (seed, sample): centres [n_g][dim]
 * by rejection under the separation constraint, then depths [n_g]. */
mnnh_status mnnh_ks_wells(const mnnh_ks_params *p, uint64_t seed, int64_t sample, double *centres,
                          double *depth);

/* V on the grid for the given wells, periodic images included. */
void mnnh_ks_potential(const mnnh_ks_params *p, const double *centres, const double *depth,
                       double *V);

typedef struct mnnh_ks mnnh_ks;

mnnh_status mnnh_ks_create(const mnnh_ks_params *p, mnnh_ks **out);
void mnnh_ks_free(mnnh_ks *ks);

/* Lowest n_e eigenpairs of H = -1/2 Laplacian + V and the density.
 * eig[n_e], res[n_e] (residual norms), gap = eps_{n_e+1} - eps_{n_e} (from the
 * first guard Ritz value), iters: LOBPCG iterations. Any output may be NULL
 * except rho. MNNH_ERR_NUMERIC when LOBPCG does not converge. */
mnnh_status mnnh_ks_solve(mnnh_ks *ks, const double *V, double *rho, double *eig, double *res,
                          double *gap, int *iters);

/* Sample `sample` of the data set keyed by seed: V and rho (both N^dim).
 * Errors name the sample. */
mnnh_status mnnh_ks_sample(mnnh_ks *ks, uint64_t seed, int64_t sample, double *V, double *rho,
                           double *eig, double *res, double *gap, int *iters);

/* Reference: assemble the dense pseudo-spectral H (kinetic part from the
 * circulant formula, not from FFTW) and take its lowest n_e eigenpairs with
 * LAPACKE_dsyevr. eig may be NULL. Cost O(N^{3d}): small grids and baselines. */
mnnh_status mnnh_ks_dense(const mnnh_ks_params *p, const double *V, double *rho, double *eig);

#ifdef __cplusplus
}
#endif
#endif
