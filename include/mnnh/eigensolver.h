/* eigensolver.h: LOBPCG for the lowest eigenpairs of a real symmetric operator.
 *
 * Defines mnnh_lobpcg_cfg (operator, preconditioner, block size, tolerance)
 * and mnnh_lobpcg_solve(). The operator is only applied to blocks of vectors,
 * so a pseudo-spectral Hamiltonian (FFTW) never has to be assembled.
 * Vectors are stored as rows: block[j * n + i] is entry i of vector j.
 *
 * Method: block LOBPCG (Knyazev 2001) with the basis [X, W, P]; W and P are
 * projected out of X twice and the whole basis is orthonormalised by SVQB
 * (eigendecomposition of its scaled Gram matrix, dropping directions below
 * 1e-10 of the largest) before the Rayleigh-Ritz step, which keeps it stable
 * when residuals become tiny. Guard vectors (block > nev) make the rate depend
 * on the gap to eigenvalue block+1 instead of nev+1. Convergence means every
 * one of the nev lowest residuals ||A x - lambda x||_2 (x of unit 2-norm) is
 * <= tol, checked on an explicitly recomputed A X, never on recurrences. */
#ifndef MNNH_EIGENSOLVER_H
#define MNNH_EIGENSOLVER_H

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Y = op(X) for nvec vectors of length n stored as rows. */
typedef void (*mnnh_eig_op)(void *ctx, int nvec, const double *X, double *Y);

/* Workspace for repeated solves of one size (optional). */
typedef struct mnnh_lobpcg_work mnnh_lobpcg_work;
mnnh_status mnnh_lobpcg_work_create(int n, int block, mnnh_lobpcg_work **out);
void mnnh_lobpcg_work_free(mnnh_lobpcg_work *w);

typedef struct {
    int n;             /* vector length */
    int nev;           /* eigenpairs that must converge (the lowest nev) */
    int block;         /* vectors iterated, >= nev */
    int maxiter;
    double tol;        /* residual 2-norm for unit vectors */
    mnnh_eig_op apply; /* the symmetric operator A */
    mnnh_eig_op precond; /* symmetric positive definite preconditioner, or NULL */
    void *ctx;
    mnnh_lobpcg_work *work; /* made for (n, block), or NULL: allocated per call */
} mnnh_lobpcg_cfg;

typedef struct {
    int iters;      /* iterations done */
    double maxres;  /* largest residual among the nev lowest */
} mnnh_lobpcg_info;

/* X [block][n]: initial guess in (need not be orthonormal, must have full
 * rank), orthonormal Ritz vectors out, ascending. lambda[block] and
 * res[block] receive Ritz values and residual norms. Returns MNNH_ERR_NUMERIC
 * when the nev lowest have not converged after maxiter iterations (X, lambda,
 * res then hold the last iterate), MNNH_ERR_NOMEM, or MNNH_ERR_ARG. */
mnnh_status mnnh_lobpcg_solve(const mnnh_lobpcg_cfg *cfg, double *X, double *lambda, double *res,
                              mnnh_lobpcg_info *info);

#ifdef __cplusplus
}
#endif
#endif
