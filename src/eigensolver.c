/* eigensolver.c: block LOBPCG with SVQB orthonormalisation (eigensolver.h). */
#include "mnnh/eigensolver.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Directions of the scaled Gram matrix below this fraction of its largest
 * eigenvalue are dropped: they carry no new information and would amplify
 * rounding by 1/sqrt(ratio). */
#define SVQB_DROP 1e-10

typedef struct {
    int n, m;          /* vector length, block size */
    double *S, *AS;    /* basis [X; W; P] and its image, 3m rows each */
    double *R;         /* residuals, m rows */
    double *T, *AT;    /* new X and P (2m rows) and their images */
    double *G, *K, *Q, *C, *mu, *coef;
} lobpcg_ws;

static void ws_free(lobpcg_ws *w) {
    free(w->S); free(w->AS); free(w->R); free(w->T); free(w->AT);
    free(w->G); free(w->K); free(w->Q); free(w->C); free(w->mu); free(w->coef);
}

static mnnh_status ws_alloc(lobpcg_ws *w, int n, int m) {
    memset(w, 0, sizeof *w);
    w->n = n;
    w->m = m;
    size_t nb = 3 * (size_t)m, big = nb * (size_t)n;
    w->S = malloc(big * sizeof(double));
    w->AS = malloc(big * sizeof(double));
    w->R = malloc((size_t)m * n * sizeof(double));
    w->T = malloc(2 * (size_t)m * n * sizeof(double));
    w->AT = malloc(2 * (size_t)m * n * sizeof(double));
    w->G = malloc(nb * nb * sizeof(double));
    w->K = malloc(nb * nb * sizeof(double));
    w->Q = malloc(nb * nb * sizeof(double));
    w->C = malloc(nb * nb * sizeof(double));
    w->mu = malloc(nb * sizeof(double));
    w->coef = malloc(nb * nb * sizeof(double));
    if (!w->S || !w->AS || !w->R || !w->T || !w->AT || !w->G || !w->K || !w->Q || !w->C ||
        !w->mu || !w->coef) {
        ws_free(w);
        return mnnh_error_set(MNNH_ERR_NOMEM, "LOBPCG: cannot allocate workspace for %d x %d", m, n);
    }
    return MNNH_OK;
}

/* V -= (V X^T) X and AV -= (V X^T) AX, twice (one pass loses orthogonality
 * when V is nearly in span X). AV may be NULL. */
static void project_out(lobpcg_ws *w, double *V, double *AV, int nv, const double *X,
                        const double *AX) {
    int n = w->n, m = w->m;
    for (int pass = 0; pass < 2; pass++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nv, m, n, 1.0, V, n, X, n, 0.0,
                    w->coef, m);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nv, n, m, -1.0, w->coef, m, X, n,
                    1.0, V, n);
        if (AV)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nv, n, m, -1.0, w->coef, m,
                        AX, n, 1.0, AV, n);
    }
}

/* Rayleigh-Ritz on the nb basis rows of S: returns in w->C the coefficient
 * matrix Cf [nb][m] (column j = Ritz vector j in the original basis) and the
 * Ritz values in lambda[0..m). SVQB first: Q = D U mu^{-1/2} with
 * D = diag(G)^{-1/2}, so Q^T G Q = I on the kept directions. */
static mnnh_status rayleigh_ritz(lobpcg_ws *w, int nb, double *lambda) {
    int n = w->n, m = w->m;
    double *G = w->G, *K = w->K, *Q = w->Q, *C = w->C, *mu = w->mu;
    double d[3 * 64 + 1];
    if (nb > 3 * 64) return mnnh_error_set(MNNH_ERR_ARG, "LOBPCG: block size above 64");
    /* G = S S^T: only the upper triangle is computed (dsyrk), then mirrored. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, nb, n, 1.0, w->S, n, 0.0, G, nb);
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < i; j++) G[i * nb + j] = G[j * nb + i];
    for (int i = 0; i < nb; i++) d[i] = G[i * nb + i] > 0 ? 1.0 / sqrt(G[i * nb + i]) : 0.0;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nb; j++) G[i * nb + j] *= d[i] * d[j];
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', nb, G, nb, mu) != 0)
        return mnnh_error_set(MNNH_ERR_NUMERIC, "LOBPCG: Gram eigendecomposition failed");
    int q = 0;
    double top = mu[nb - 1];
    for (int j = 0; j < nb; j++) {
        if (!(mu[j] > SVQB_DROP * top)) continue;
        double s = 1.0 / sqrt(mu[j]);
        for (int i = 0; i < nb; i++) Q[i * nb + q] = d[i] * G[i * nb + j] * s;
        q++;
    }
    if (q < m) return mnnh_error_set(MNNH_ERR_NUMERIC, "LOBPCG: basis lost rank (%d < %d)", q, m);
    /* K = S AS^T, symmetrised, then Kq = Q^T K Q (q x q) in C. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nb, n, 1.0, w->S, n, w->AS, n, 0.0,
                K, nb);
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < i; j++) K[i * nb + j] = K[j * nb + i] = 0.5 * (K[i * nb + j] + K[j * nb + i]);
    /* coef = K Q  (nb x q), C = Q^T coef (q x q) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, q, nb, 1.0, K, nb, Q, nb, 0.0,
                w->coef, q);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, q, nb, 1.0, Q, nb, w->coef, q, 0.0, C,
                q);
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', q, C, q, mu) != 0)
        return mnnh_error_set(MNNH_ERR_NUMERIC, "LOBPCG: projected eigendecomposition failed");
    for (int j = 0; j < m; j++) lambda[j] = mu[j];
    /* Cf = Q C[:, 0:m]  (nb x m), stored in K (no longer needed) then copied to C. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, m, q, 1.0, Q, nb, C, q, 0.0, K, m);
    memcpy(C, K, (size_t)nb * m * sizeof(double));
    return MNNH_OK;
}

/* X, AX <- Cf^T S, Cf^T AS; P, AP <- the part of that sum over rows >= m. */
static void update_blocks(lobpcg_ws *w, int nb, int *np) {
    int n = w->n, m = w->m;
    const double *Cf = w->C;
    double *Xn = w->T, *Pn = w->T + (size_t)m * n, *AXn = w->AT, *APn = w->AT + (size_t)m * n;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, nb, 1.0, Cf, m, w->S, n, 0.0, Xn, n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, nb, 1.0, Cf, m, w->AS, n, 0.0, AXn, n);
    if (nb > m) {
        const double *Cp = Cf + (size_t)m * m;
        const double *Sp = w->S + (size_t)m * n, *ASp = w->AS + (size_t)m * n;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, nb - m, 1.0, Cp, m, Sp, n, 0.0, Pn, n);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, nb - m, 1.0, Cp, m, ASp, n, 0.0, APn, n);
        *np = m;
    }
    memcpy(w->S, Xn, (size_t)m * n * sizeof(double));
    memcpy(w->AS, AXn, (size_t)m * n * sizeof(double));
}

/* Residual rows R = AX - lambda X and their norms. */
static void residuals(lobpcg_ws *w, const double *lambda, double *res) {
    int n = w->n;
    for (int j = 0; j < w->m; j++) {
        const double *x = w->S + (size_t)j * n, *ax = w->AS + (size_t)j * n;
        double *r = w->R + (size_t)j * n, s = 0;
        for (int i = 0; i < n; i++) {
            r[i] = ax[i] - lambda[j] * x[i];
            s += r[i] * r[i];
        }
        res[j] = sqrt(s);
    }
}

/* Replace the recurrence-updated AX by A X and lambda by Rayleigh quotients. */
static void refresh(const mnnh_lobpcg_cfg *cfg, lobpcg_ws *w, double *lambda) {
    int n = w->n;
    cfg->apply(cfg->ctx, w->m, w->S, w->AS);
    for (int j = 0; j < w->m; j++) {
        const double *x = w->S + (size_t)j * n, *ax = w->AS + (size_t)j * n;
        lambda[j] = cblas_ddot(n, x, 1, ax, 1) / cblas_ddot(n, x, 1, x, 1);
    }
}

static int all_converged(const double *res, int nev, double tol, double *maxres) {
    double mx = 0;
    for (int j = 0; j < nev; j++) mx = res[j] > mx ? res[j] : mx;
    *maxres = mx;
    return mx <= tol;
}

/* One LOBPCG step: W from the unconverged residuals, project, Rayleigh-Ritz. */
static mnnh_status lobpcg_step(const mnnh_lobpcg_cfg *cfg, lobpcg_ws *w, double *lambda,
                               const double *res, int *np) {
    int n = w->n, m = w->m, nw = 0;
    double *W = w->S + (size_t)m * n, *AW = w->AS + (size_t)m * n;
    /* P sits after W; move it up against the active W rows as the basis is packed. */
    double *Pold = w->T, *APold = w->AT;
    if (*np) {
        memcpy(Pold, w->S + 2 * (size_t)m * n, (size_t)*np * n * sizeof(double));
        memcpy(APold, w->AS + 2 * (size_t)m * n, (size_t)*np * n * sizeof(double));
    }
    for (int j = 0; j < m; j++) {
        if (res[j] <= cfg->tol) continue; /* soft locking: converged vectors add no direction */
        memmove(w->R + (size_t)nw * n, w->R + (size_t)j * n, (size_t)n * sizeof(double));
        nw++;
    }
    if (cfg->precond)
        cfg->precond(cfg->ctx, nw, w->R, W);
    else
        memcpy(W, w->R, (size_t)nw * n * sizeof(double));
    project_out(w, W, NULL, nw, w->S, w->AS);
    cfg->apply(cfg->ctx, nw, W, AW);
    double *P = W + (size_t)nw * n, *AP = AW + (size_t)nw * n;
    if (*np) {
        memmove(P, Pold, (size_t)*np * n * sizeof(double));
        memmove(AP, APold, (size_t)*np * n * sizeof(double));
        project_out(w, P, AP, *np, w->S, w->AS);
    }
    int nb = m + nw + *np;
    MNNH_TRY(rayleigh_ritz(w, nb, lambda));
    update_blocks(w, nb, np);
    /* P rows now live in T; put them back at the end of the packed basis. */
    if (*np) {
        memcpy(w->S + 2 * (size_t)m * n, w->T + (size_t)m * n, (size_t)*np * n * sizeof(double));
        memcpy(w->AS + 2 * (size_t)m * n, w->AT + (size_t)m * n, (size_t)*np * n * sizeof(double));
    }
    return MNNH_OK;
}

mnnh_status mnnh_lobpcg_solve(const mnnh_lobpcg_cfg *cfg, double *X, double *lambda, double *res,
                              mnnh_lobpcg_info *info) {
    int n = cfg->n, m = cfg->block;
    if (n < 1 || cfg->nev < 1 || m < cfg->nev || m > 64 || 3 * m > n || !cfg->apply)
        return mnnh_error_set(MNNH_ERR_ARG, "LOBPCG: bad sizes n=%d nev=%d block=%d", n, cfg->nev, m);
    lobpcg_ws w;
    MNNH_TRY(ws_alloc(&w, n, m));
    mnnh_status st = MNNH_OK;
    int np = 0, it = 0;
    double maxres = INFINITY;
    memcpy(w.S, X, (size_t)m * n * sizeof(double));
    cfg->apply(cfg->ctx, m, w.S, w.AS);
    st = rayleigh_ritz(&w, m, lambda);
    if (st == MNNH_OK) update_blocks(&w, m, &np);
    for (; st == MNNH_OK; it++) {
        residuals(&w, lambda, res);
        if (all_converged(res, cfg->nev, cfg->tol, &maxres)) {
            refresh(cfg, &w, lambda); /* certify on A X itself, not on the recurrence */
            residuals(&w, lambda, res);
            if (all_converged(res, cfg->nev, cfg->tol, &maxres)) break;
        }
        if (it >= cfg->maxiter) {
            st = mnnh_error_set(MNNH_ERR_NUMERIC,
                                "LOBPCG did not converge in %d iterations (residual %.3g > tol %.3g)",
                                cfg->maxiter, maxres, cfg->tol);
            break;
        }
        st = lobpcg_step(cfg, &w, lambda, res, &np);
        /* Recurrences drift from A X; refresh now and then so the residual is honest. */
        if (st == MNNH_OK && it % 20 == 19) refresh(cfg, &w, lambda);
    }
    memcpy(X, w.S, (size_t)m * n * sizeof(double));
    if (info) {
        info->iters = it;
        info->maxres = maxres;
    }
    ws_free(&w);
    return st;
}
