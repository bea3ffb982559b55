/* eigensolver.c: block LOBPCG with SVQB orthonormalisation (eigensolver.h). */
#include "mnnh/eigensolver.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tall-skinny kernels ----
 * Every product on length-n vectors goes through these two kernels instead of
 * BLAS: they are the hot path of the generator, and Debian's OpenBLAS picks
 * generic SSE3 kernels on CPUs it does not recognise. target_clones compiles
 * them for AVX-512, AVX+FMA and baseline x86-64 and picks at load time. The
 * summation order is fixed (8 lanes, reduced in a fixed tree; combinations
 * summed row by row), so the AVX-512 and AVX+FMA clones give the same bits. */
#pragma GCC diagnostic ignored "-Wpsabi" /* v8d helpers are inlined into each clone */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
/* "fma" is AVX + FMA: it contracts like the AVX-512 clone, so both give the same bits. */
#define TALL_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define TALL_CLONES
#endif

/* Eight doubles: one zmm, two ymm or four xmm registers depending on the clone. */
typedef double v8d __attribute__((vector_size(64)));

static inline v8d v8_load(const double *p) {
    v8d v;
    memcpy(&v, p, sizeof v); /* unaligned */
    return v;
}

static inline double v8_sum(v8d v) {
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* C[i * ldc + j] = sum_k A[i][k] B[j][k], rows of length K, in 4 x 2 blocks of
 * eight-lane accumulators. With sym (A == B) blocks below the diagonal are
 * skipped and mirrored (the products and their order are the same). */
TALL_CLONES
static void tall_abt(int M, int Nn, int K, const double *A, const double *B, double *C, int ldc, int sym) {
    for (int i0 = 0; i0 < M; i0 += 4)
        for (int j0 = 0; j0 < Nn; j0 += 2) {
            if (sym && j0 + 2 <= i0) continue;
            const double *a0 = A + (size_t)(i0 < M ? i0 : M - 1) * K;
            const double *a1 = A + (size_t)(i0 + 1 < M ? i0 + 1 : M - 1) * K;
            const double *a2 = A + (size_t)(i0 + 2 < M ? i0 + 2 : M - 1) * K;
            const double *a3 = A + (size_t)(i0 + 3 < M ? i0 + 3 : M - 1) * K;
            const double *b0 = B + (size_t)j0 * K, *b1 = B + (size_t)(j0 + 1 < Nn ? j0 + 1 : Nn - 1) * K;
            v8d c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                v8d x0 = v8_load(b0 + k), x1 = v8_load(b1 + k), y;
                y = v8_load(a0 + k); c00 += y * x0; c01 += y * x1;
                y = v8_load(a1 + k); c10 += y * x0; c11 += y * x1;
                y = v8_load(a2 + k); c20 += y * x0; c21 += y * x1;
                y = v8_load(a3 + k); c30 += y * x0; c31 += y * x1;
            }
            double t[4][2] = {{v8_sum(c00), v8_sum(c01)}, {v8_sum(c10), v8_sum(c11)},
                              {v8_sum(c20), v8_sum(c21)}, {v8_sum(c30), v8_sum(c31)}};
            const double *a[4] = {a0, a1, a2, a3}, *b[2] = {b0, b1};
            for (int r = 0; r < 4 && i0 + r < M; r++)
                for (int c = 0; c < 2 && j0 + c < Nn; c++) {
                    for (int kk = k; kk < K; kk++) t[r][c] += a[r][kk] * b[c][kk];
                    C[(size_t)(i0 + r) * ldc + j0 + c] = t[r][c];
                }
        }
    if (sym) /* every entry above the diagonal was computed */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < i && j < Nn; j++) C[(size_t)i * ldc + j] = C[(size_t)j * ldc + i];
}

/* Y[o] = beta Y[o] + alpha sum_b W[o * wso + b * wsb] S[b] for rows of length
 * n (beta = 0: Y is not read), nin <= 192. Four outputs by 16 columns of
 * accumulators stay in registers while b runs; each element sums over b in
 * order, whatever the clone. */
TALL_CLONES
static void tall_comb(int nout, int nin, int n, const double *W, int wso, int wsb, const double *S,
                      double *Y, double alpha, double beta) {
    double wt[4 * 192];
    for (int o0 = 0; o0 < nout; o0 += 4) {
        int no = nout - o0 < 4 ? nout - o0 : 4;
        for (int b = 0; b < nin; b++)
            for (int r = 0; r < 4; r++) wt[4 * b + r] = r < no ? W[(size_t)(o0 + r) * wso + (size_t)b * wsb] : 0;
        int k = 0;
        for (; k + 16 <= n; k += 16) {
            v8d c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            for (int b = 0; b < nin; b++) {
                const double *src = S + (size_t)b * n + k, *w = wt + 4 * b;
                v8d x0 = v8_load(src), x1 = v8_load(src + 8);
                c00 += w[0] * x0; c01 += w[0] * x1;
                c10 += w[1] * x0; c11 += w[1] * x1;
                c20 += w[2] * x0; c21 += w[2] * x1;
                c30 += w[3] * x0; c31 += w[3] * x1;
            }
            v8d c[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
            for (int r = 0; r < no; r++)
                for (int h = 0; h < 2; h++) {
                    double *y = Y + (size_t)(o0 + r) * n + k + 8 * h;
                    v8d v = alpha * c[r][h];
                    if (beta != 0) v += beta * v8_load(y);
                    memcpy(y, &v, sizeof v);
                }
        }
        for (; k < n; k++)
            for (int r = 0; r < no; r++) {
                double t = 0;
                for (int b = 0; b < nin; b++) t += wt[4 * b + r] * S[(size_t)b * n + k];
                double *y = Y + (size_t)(o0 + r) * n + k;
                *y = beta != 0 ? beta * *y + alpha * t : alpha * t;
            }
    }
}

/* Directions of the scaled Gram matrix below this fraction of its largest
 * eigenvalue are dropped: they carry no new information and would amplify
 * rounding by 1/sqrt(ratio). */
#define SVQB_DROP 1e-10

struct mnnh_lobpcg_work {
    int n, m;          /* vector length, block size */
    double *S, *AS;    /* basis [X; W; P] and its image, 3m rows each */
    double *R;         /* residuals, m rows */
    double *T, *AT;    /* new X and P (2m rows) and their images */
    double *G, *K, *Q, *C, *mu, *coef;
};
typedef struct mnnh_lobpcg_work lobpcg_ws;

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
        tall_abt(nv, m, n, V, X, w->coef, m, 0);
        tall_comb(nv, m, n, w->coef, m, 1, X, V, -1.0, 1.0);
        if (AV) tall_comb(nv, m, n, w->coef, m, 1, AX, AV, -1.0, 1.0);
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
    tall_abt(nb, nb, n, w->S, w->S, G, nb, 1); /* G = S S^T */
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
    tall_abt(nb, nb, n, w->S, w->AS, K, nb, 0);
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
    /* row j of the result = sum_b Cf[b][j] row b: weights W[o][b] = Cf[b * m + o] */
    tall_comb(m, nb, n, Cf, 1, m, w->S, Xn, 1.0, 0.0);
    tall_comb(m, nb, n, Cf, 1, m, w->AS, AXn, 1.0, 0.0);
    if (nb > m) {
        const double *Cp = Cf + (size_t)m * m;
        const double *Sp = w->S + (size_t)m * n, *ASp = w->AS + (size_t)m * n;
        tall_comb(m, nb - m, n, Cp, 1, m, Sp, Pn, 1.0, 0.0);
        tall_comb(m, nb - m, n, Cp, 1, m, ASp, APn, 1.0, 0.0);
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
        double xax = 0, xx = 0;
        for (int i = 0; i < n; i++) {
            xax += x[i] * ax[i];
            xx += x[i] * x[i];
        }
        lambda[j] = xax / xx;
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

mnnh_status mnnh_lobpcg_work_create(int n, int block, mnnh_lobpcg_work **out) {
    *out = NULL;
    if (n < 1 || block < 1 || block > 64)
        return mnnh_error_set(MNNH_ERR_ARG, "LOBPCG: bad sizes n=%d block=%d", n, block);
    mnnh_lobpcg_work *w = malloc(sizeof *w);
    if (!w) return mnnh_error_set(MNNH_ERR_NOMEM, "LOBPCG: out of memory");
    mnnh_status st = ws_alloc(w, n, block);
    if (st != MNNH_OK) {
        free(w);
        return st;
    }
    *out = w;
    return MNNH_OK;
}

void mnnh_lobpcg_work_free(mnnh_lobpcg_work *w) {
    if (!w) return;
    ws_free(w);
    free(w);
}

mnnh_status mnnh_lobpcg_solve(const mnnh_lobpcg_cfg *cfg, double *X, double *lambda, double *res,
                              mnnh_lobpcg_info *info) {
    int n = cfg->n, m = cfg->block;
    if (n < 1 || cfg->nev < 1 || m < cfg->nev || m > 64 || 3 * m > n || !cfg->apply)
        return mnnh_error_set(MNNH_ERR_ARG, "LOBPCG: bad sizes n=%d nev=%d block=%d", n, cfg->nev, m);
    if (cfg->work && (cfg->work->n != n || cfg->work->m != m))
        return mnnh_error_set(MNNH_ERR_ARG, "LOBPCG: workspace made for n=%d block=%d", cfg->work->n, cfg->work->m);
    /* A reused workspace saves mapping and faulting in ~1 MB per solve. */
    lobpcg_ws local, *wp = cfg->work;
    if (!wp) {
        MNNH_TRY(ws_alloc(&local, n, m));
        wp = &local;
    }
    mnnh_status st = MNNH_OK;
    int np = 0, it = 0;
    double maxres = INFINITY;
    memcpy(wp->S, X, (size_t)m * n * sizeof(double));
    cfg->apply(cfg->ctx, m, wp->S, wp->AS);
    st = rayleigh_ritz(wp, m, lambda);
    if (st == MNNH_OK) update_blocks(wp, m, &np);
    for (; st == MNNH_OK; it++) {
        residuals(wp, lambda, res);
        if (all_converged(res, cfg->nev, cfg->tol, &maxres)) {
            refresh(cfg, wp, lambda); /* certify on A X itself, not on the recurrence */
            residuals(wp, lambda, res);
            if (all_converged(res, cfg->nev, cfg->tol, &maxres)) break;
        }
        if (it >= cfg->maxiter) {
            st = mnnh_error_set(MNNH_ERR_NUMERIC,
                                "LOBPCG did not converge in %d iterations (residual %.3g > tol %.3g)",
                                cfg->maxiter, maxres, cfg->tol);
            break;
        }
        st = lobpcg_step(cfg, wp, lambda, res, &np);
        /* Recurrences drift from A X; refresh now and then so the residual is honest. */
        if (st == MNNH_OK && it % 20 == 19) refresh(cfg, wp, lambda);
    }
    memcpy(X, wp->S, (size_t)m * n * sizeof(double));
    if (info) {
        info->iters = it;
        info->maxres = maxres;
    }
    if (wp == &local) ws_free(&local);
    return st;
}
