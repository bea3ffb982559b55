/* nlse.h: NLSE ground states V -> u_G (paper section 4.2), one sample at a time.
 *
 * Defines mnnh_nlse_params, the random potential of sample i drawn from the
 * counter-based stream (seed, i),
 *   V(x) = - sum_i sum_{j in Z^d} rho_i / sqrt(2 pi T) exp(-|x - j - c_i|^2 / (2T)),
 *   rho_i ~ U[rho_min, rho_max], c_i ~ U[0,1)^d, T ~ U[T_min, T_max] (one per sample),
 * and mnnh_nlse, which finds the ground state of
 *   -Laplacian u + V u + beta u^3 = E u on [0,1)^d periodic, int u^2 = 1, int u > 0
 * with a pseudo-spectral Laplacian (spectral.h) on N points per axis.
 *
 * Method: the normalized gradient flow, discretised as a preconditioned
 * (Sobolev) gradient step on the unit sphere, u <- (u - tau T r) / |.|, with
 * r = H(u) u - mu u, H(u) = -Laplacian + V + beta u^2, mu = <u, H(u) u> and
 * T = (-Laplacian + shift)^{-1}; tau is the locally optimal step from a
 * Rayleigh-Ritz on span{u, T r, previous step} of the frozen H(u) (the
 * three-term recurrence of LOBPCG), so the flow reaches its steady state in
 * tens of steps instead of thousands. A steady state has r = 0 exactly, i.e.
 * it solves the stationary equation; convergence means
 * ||r||_{L2} <= tol with ||u||_{L2} = 1. Non-convergence is an error that names
 * the sample. */
#ifndef MNNH_NLSE_H
#define MNNH_NLSE_H

#include <stdint.h>

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;                 /* 1 or 2 */
    int N;                   /* grid points per axis (paper: 320 in 1D, 80 in 2D) */
    int n_g;                 /* Gaussian wells (paper: 2) */
    double beta;             /* cubic coefficient (paper: 10) */
    double rho_min, rho_max; /* well weights (paper: U[1,4]) */
    double T_min, T_max;     /* well variance (paper: U[2,4] x 1e-3) */
    double tol;              /* ||r||_{L2} of the stationary equation */
    int maxiter;
} mnnh_nlse_params;

/* The paper's parameters for dimension dim (N 320 / 80, n_g 2, beta 10, tol 1e-8,
 * maxiter 2000). */
mnnh_status mnnh_nlse_params_default(mnnh_nlse_params *p, int dim);
mnnh_status mnnh_nlse_params_check(const mnnh_nlse_params *p);
int64_t mnnh_nlse_grid_size(const mnnh_nlse_params *p);

/* V of sample `sample` from stream (seed, sample). */
void mnnh_nlse_potential(const mnnh_nlse_params *p, uint64_t seed, int64_t sample, double *V);

typedef struct mnnh_nlse mnnh_nlse;
mnnh_status mnnh_nlse_create(const mnnh_nlse_params *p, mnnh_nlse **out);
void mnnh_nlse_free(mnnh_nlse *s);

/* Ground state u (N^dim values, continuous normalisation sum u^2 dx^d = 1,
 * sum u > 0) for potential V. mu (chemical potential E), res (final
 * ||r||_{L2}) and iters may be NULL. */
mnnh_status mnnh_nlse_solve(mnnh_nlse *s, const double *V, double *u, double *mu, double *res,
                            int *iters);

/* Sample `sample` of the data set keyed by seed: V and u. Errors name the sample. */
mnnh_status mnnh_nlse_sample(mnnh_nlse *s, uint64_t seed, int64_t sample, double *V, double *u,
                             double *mu, double *res, int *iters);

#ifdef __cplusplus
}
#endif
#endif
