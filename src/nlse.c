/* nlse.c: NLSE ground states by a locally optimal normalized gradient flow (nlse.h). */
#include "mnnh/nlse.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnnh/rng.h"
#include "mnnh/spectral.h"

struct mnnh_nlse {
    mnnh_nlse_params p;
    int n;
    double cell;           /* dx^d */
    mnnh_spectral *sp;
    double *w, *Hw, *r, *b1, *Hb1, *b2, *Hb2, *tmp;
};

int64_t mnnh_nlse_grid_size(const mnnh_nlse_params *p) {
    return p->dim == 1 ? (int64_t)p->N : (int64_t)p->N * p->N;
}

mnnh_status mnnh_nlse_params_default(mnnh_nlse_params *p, int dim) {
    memset(p, 0, sizeof *p);
    if (dim != 1 && dim != 2) return mnnh_error_set(MNNH_ERR_ARG, "--dim must be 1 or 2 (got %d)", dim);
    p->dim = dim;
    p->N = dim == 1 ? 320 : 80;
    p->n_g = 2;
    p->beta = 10.0;
    p->rho_min = 1.0;
    p->rho_max = 4.0;
    p->T_min = 2e-3;
    p->T_max = 4e-3;
    p->tol = 1e-8;
    p->maxiter = 2000;
    return MNNH_OK;
}

mnnh_status mnnh_nlse_params_check(const mnnh_nlse_params *p) {
    if (p->dim != 1 && p->dim != 2) return mnnh_error_set(MNNH_ERR_ARG, "--dim must be 1 or 2 (got %d)", p->dim);
    if (p->N < 8 || p->N > 4096) return mnnh_error_set(MNNH_ERR_ARG, "--grid must be in [8, 4096] (got %d)", p->N);
    if (p->n_g < 1) return mnnh_error_set(MNNH_ERR_ARG, "--n-g must be positive (got %d)", p->n_g);
    if (!(p->beta >= 0)) return mnnh_error_set(MNNH_ERR_ARG, "--beta must be >= 0 (got %g): the flow is for the defocusing case", p->beta);
    if (!(p->rho_min <= p->rho_max)) return mnnh_error_set(MNNH_ERR_ARG, "--rho-min %g exceeds --rho-max %g", p->rho_min, p->rho_max);
    if (!(p->T_min > 0 && p->T_min <= p->T_max)) return mnnh_error_set(MNNH_ERR_ARG, "need 0 < --T-min <= --T-max (got %g, %g)", p->T_min, p->T_max);
    if (!(p->tol > 0)) return mnnh_error_set(MNNH_ERR_ARG, "--tol must be positive (got %g)", p->tol);
    if (p->maxiter < 1) return mnnh_error_set(MNNH_ERR_ARG, "--maxiter must be positive (got %d)", p->maxiter);
    return MNNH_OK;
}

/* g[j] = sum_m exp(-(x_j - c - m)^2 / (2T)) on [0,1) with N points. */
static void gauss_periodic(int N, double c, double T, double *g) {
    int images = (int)ceil(12.0 * sqrt(T)) + 1;
    for (int j = 0; j < N; j++) {
        double x = (double)j / N, s = 0;
        for (int m = -images; m <= images; m++) {
            double d = x - c - m;
            s += exp(-d * d / (2.0 * T));
        }
        g[j] = s;
    }
}

void mnnh_nlse_potential(const mnnh_nlse_params *p, uint64_t seed, int64_t sample, double *V) {
    mnnh_rng rng;
    mnnh_rng_init(&rng, seed, (uint64_t)sample);
    int N = p->N;
    double g1[4096], g2[4096];
    double T = mnnh_rng_range(&rng, p->T_min, p->T_max);
    double amp = 1.0 / sqrt(2.0 * M_PI * T);
    memset(V, 0, (size_t)mnnh_nlse_grid_size(p) * sizeof(double));
    for (int i = 0; i < p->n_g; i++) {
        double rho = mnnh_rng_range(&rng, p->rho_min, p->rho_max);
        double c1 = mnnh_rng_uniform(&rng), c2 = p->dim == 2 ? mnnh_rng_uniform(&rng) : 0;
        gauss_periodic(N, c1, T, g1);
        if (p->dim == 1) {
            for (int j = 0; j < N; j++) V[j] -= rho * amp * g1[j];
            continue;
        }
        gauss_periodic(N, c2, T, g2);
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) V[a * N + b] -= rho * amp * g1[a] * g2[b];
    }
}

void mnnh_nlse_free(mnnh_nlse *s) {
    if (!s) return;
    mnnh_spectral_free(s->sp);
    free(s->w);
    free(s);
}

mnnh_status mnnh_nlse_create(const mnnh_nlse_params *p, mnnh_nlse **out) {
    *out = NULL;
    MNNH_TRY(mnnh_nlse_params_check(p));
    mnnh_nlse *s = calloc(1, sizeof *s);
    if (!s) return mnnh_error_set(MNNH_ERR_NOMEM, "NLSE solver: out of memory");
    s->p = *p;
    s->n = (int)mnnh_nlse_grid_size(p);
    s->cell = pow(1.0 / p->N, p->dim);
    s->w = malloc(8 * (size_t)s->n * sizeof(double)); /* one block for all eight vectors */
    if (!s->w) {
        mnnh_nlse_free(s);
        return mnnh_error_set(MNNH_ERR_NOMEM, "NLSE solver: out of memory (N=%d)", p->N);
    }
    double *b = s->w;
    s->Hw = b + s->n; s->r = b + 2 * s->n; s->b1 = b + 3 * s->n; s->Hb1 = b + 4 * s->n;
    s->b2 = b + 5 * s->n; s->Hb2 = b + 6 * s->n; s->tmp = b + 7 * s->n;
    mnnh_status st = mnnh_spectral_create(p->dim, p->N, 1.0, &s->sp);
    if (st != MNNH_OK) {
        mnnh_nlse_free(s);
        return st;
    }
    *out = s;
    return MNNH_OK;
}

/* y = H(w) x = -Laplacian x + (V + beta w^2 / cell) x for the unit vector w. */
static void nlse_apply(mnnh_nlse *s, const double *V, const double *w, const double *x, double *y) {
    mnnh_spectral_laplace(s->sp, 1.0, x, y);
    double b = s->p.beta / s->cell;
    for (int i = 0; i < s->n; i++) y[i] += (V[i] + b * w[i] * w[i]) * x[i];
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* x -= (x.q) q, qx -= (x.q) hq for unit q; returns nothing. */
static void orth_against(double *x, double *hx, const double *q, const double *hq, int n) {
    double c = dot(x, q, n);
    for (int i = 0; i < n; i++) {
        x[i] -= c * q[i];
        hx[i] -= c * hq[i];
    }
}

/* Normalise x (and hx alike); returns 0 when x is numerically zero. */
static int normalise(double *x, double *hx, int n, double ref) {
    double nr = sqrt(dot(x, x, n));
    if (!(nr > 1e-14 * ref)) return 0;
    for (int i = 0; i < n; i++) {
        x[i] /= nr;
        hx[i] /= nr;
    }
    return 1;
}

/* One locally optimal step: Rayleigh-Ritz of the frozen H(w) on
 * span{w, b1 = T r, b2 = previous step}; w and the step b2 are replaced. */
static mnnh_status nlse_step(mnnh_nlse *s, const double *V, double shift, int *have_prev) {
    int n = s->n;
    double *w = s->w, *Hw = s->Hw, *b1 = s->b1, *Hb1 = s->Hb1, *b2 = s->b2, *Hb2 = s->Hb2;
    mnnh_spectral_resolvent(s->sp, 1.0, shift, s->r, b1);
    nlse_apply(s, V, w, b1, Hb1);
    orth_against(b1, Hb1, w, Hw, n);
    int k = 1;
    if (normalise(b1, Hb1, n, 1.0)) k = 2;
    int use_prev = *have_prev && k == 2;
    if (use_prev) {
        nlse_apply(s, V, w, b2, Hb2); /* H changed with w: recompute H b2 */
        orth_against(b2, Hb2, w, Hw, n);
        orth_against(b2, Hb2, b1, Hb1, n);
        if (normalise(b2, Hb2, n, 1.0)) k = 3;
    }
    const double *B[3] = {w, b1, b2}, *HB[3] = {Hw, Hb1, Hb2};
    double A[9], lam[3];
    for (int i = 0; i < k; i++)
        for (int j = i; j < k; j++) A[i * k + j] = A[j * k + i] = 0.5 * (dot(B[i], HB[j], n) + dot(B[j], HB[i], n));
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', k, A, k, lam) != 0)
        return mnnh_error_set(MNNH_ERR_NUMERIC, "NLSE: 3x3 Rayleigh-Ritz failed");
    double c[3] = {A[0], k > 1 ? A[k] : 0, k > 2 ? A[2 * k] : 0};
    if (c[0] < 0) c[0] = -c[0], c[1] = -c[1], c[2] = -c[2];
    /* new step = c1 b1 + c2 b2 (kept in b2), new w = c0 w + step */
    for (int i = 0; i < n; i++) {
        double step = c[1] * b1[i] + (k > 2 ? c[2] * b2[i] : 0);
        s->tmp[i] = step;
        w[i] = c[0] * w[i] + step;
    }
    memcpy(b2, s->tmp, (size_t)n * sizeof(double));
    *have_prev = 1;
    double nr = sqrt(dot(w, w, n));
    for (int i = 0; i < n; i++) w[i] /= nr;
    return MNNH_OK;
}

mnnh_status mnnh_nlse_solve(mnnh_nlse *s, const double *V, double *u, double *mu, double *res,
                            int *iters) {
    int n = s->n, have_prev = 0, it = 0;
    double *w = s->w, *Hw = s->Hw, *r = s->r, m = 0, rn = INFINITY;
    double vmin = 0;
    for (int i = 0; i < n; i++) {
        w[i] = 1.0 / sqrt((double)n); /* the ground state is positive: start from the constant */
        vmin = V[i] < vmin ? V[i] : vmin;
    }
    double shift = mnnh_spectral_kmin2(s->sp) - vmin;
    for (;; it++) {
        nlse_apply(s, V, w, w, Hw);
        m = dot(w, Hw, n);
        for (int i = 0; i < n; i++) r[i] = Hw[i] - m * w[i];
        rn = sqrt(dot(r, r, n));
        if (rn <= s->p.tol) break;
        if (it >= s->p.maxiter)
            return mnnh_error_set(MNNH_ERR_NUMERIC,
                                  "NLSE gradient flow did not converge in %d steps (residual %.3g > tol %.3g)",
                                  s->p.maxiter, rn, s->p.tol);
        MNNH_TRY(nlse_step(s, V, shift, &have_prev));
    }
    double sum = 0, scale = 1.0 / sqrt(s->cell);
    for (int i = 0; i < n; i++) sum += w[i];
    if (sum < 0) scale = -scale; /* int u > 0 fixes the sign */
    for (int i = 0; i < n; i++) u[i] = w[i] * scale;
    if (mu) *mu = m;
    if (res) *res = rn;
    if (iters) *iters = it;
    return MNNH_OK;
}

mnnh_status mnnh_nlse_sample(mnnh_nlse *s, uint64_t seed, int64_t sample, double *V, double *u,
                             double *mu, double *res, int *iters) {
    mnnh_nlse_potential(&s->p, seed, sample, V);
    mnnh_status st = mnnh_nlse_solve(s, V, u, mu, res, iters);
    if (st != MNNH_OK)
        return mnnh_error_prefix(st, "NLSE sample %lld (seed %llu)", (long long)sample, (unsigned long long)seed);
    return MNNH_OK;
}
