/* test_nlse.c: NLSE ground states (nlse.h): the stationary equation's residual,
 * evaluated independently with the dense circulant Laplacian, the
 * normalisation, positivity, and that u is the lowest eigenvector of the
 * linear operator H(u) (the ground state, not an excited state). */
#include <lapacke.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mnnh/nlse.h"
#include "mnnh/spectral.h"

static void *xalloc(size_t n) {
    void *p = calloc(n, 1);
    assert_non_null(p);
    return p;
}

/* Dense H(u) = -Laplacian + V + beta u^2 on the grid of p (box 1). */
static double *dense_H(const mnnh_nlse_params *p, const double *V, const double *u) {
    int N = p->N, n = (int)mnnh_nlse_grid_size(p);
    double *H = xalloc((size_t)n * n * sizeof(double)), t[64];
    assert_true(N <= 64);
    for (int d = 0; d < N; d++) t[d] = mnnh_spectral_circulant(N, 1.0, d);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double h;
            if (p->dim == 1) {
                h = t[(a - b + N) % N];
            } else {
                int a1 = a / N, a2 = a % N, b1 = b / N, b2 = b % N;
                h = (a2 == b2 ? t[(a1 - b1 + N) % N] : 0) + (a1 == b1 ? t[(a2 - b2 + N) % N] : 0);
            }
            H[(size_t)a * n + b] = h + (a == b ? V[a] + p->beta * u[a] * u[a] : 0);
        }
    return H;
}

static void check_ground_state(int dim, int N, int samples) {
    mnnh_nlse_params p;
    assert_int_equal(mnnh_nlse_params_default(&p, dim), MNNH_OK);
    p.N = N;
    mnnh_nlse *s;
    assert_int_equal(mnnh_nlse_create(&p, &s), MNNH_OK);
    int n = (int)mnnh_nlse_grid_size(&p);
    double cell = pow(1.0 / N, dim);
    double *V = xalloc(n * sizeof(double)), *u = xalloc(n * sizeof(double)), *r = xalloc(n * sizeof(double));
    double *w = xalloc(n * sizeof(double));
    for (int k = 0; k < samples; k++) {
        double mu, res;
        int it;
        assert_int_equal(mnnh_nlse_sample(s, 11, k, V, u, &mu, &res, &it), MNNH_OK);
        assert_true(res <= p.tol);
        double nrm = 0, sum = 0;
        for (int i = 0; i < n; i++) {
            nrm += u[i] * u[i] * cell;
            sum += u[i] * cell;
            assert_true(u[i] > 0); /* a ground state has no node */
        }
        assert_true(fabs(nrm - 1) < 1e-12);
        assert_true(sum > 0);
        /* r = H(u) u - mu u in the L2 norm, with the dense operator */
        double *H = dense_H(&p, V, u), rn = 0;
        for (int a = 0; a < n; a++) {
            double y = 0;
            for (int b = 0; b < n; b++) y += H[(size_t)a * n + b] * u[b];
            r[a] = y - mu * u[a];
            rn += r[a] * r[a] * cell;
        }
        if (sqrt(rn) > 2 * p.tol) fail_msg("%dD sample %d: stationary residual %.3g", dim, k, sqrt(rn));
        /* mu is the lowest eigenvalue of H(u), u its eigenvector */
        if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, H, n, w) != 0) fail_msg("dsyevd failed");
        if (fabs(w[0] - mu) > 1e-8 * fabs(mu)) fail_msg("%dD sample %d: mu %.12g, lowest eigenvalue %.12g", dim, k, mu, w[0]);
        assert_true(w[1] - w[0] > 1e-3);
        free(H);
    }
    free(V); free(u); free(r); free(w);
    mnnh_nlse_free(s);
}

static void test_ground_1d(void **state) {
    (void)state;
    check_ground_state(1, 64, 4);
}

static void test_ground_2d(void **state) {
    (void)state;
    check_ground_state(2, 16, 2);
    check_ground_state(2, 20, 1);
}

/* The paper's grids (1D 320, 2D 80x80) converge to the stated tolerance. */
static void test_paper_grids(void **state) {
    (void)state;
    for (int dim = 1; dim <= 2; dim++) {
        mnnh_nlse_params p;
        assert_int_equal(mnnh_nlse_params_default(&p, dim), MNNH_OK);
        assert_int_equal(p.N, dim == 1 ? 320 : 80);
        assert_true(p.beta == 10.0);
        mnnh_nlse *s;
        assert_int_equal(mnnh_nlse_create(&p, &s), MNNH_OK);
        int n = (int)mnnh_nlse_grid_size(&p);
        double *V = xalloc(n * sizeof(double)), *u = xalloc(n * sizeof(double)), res;
        for (int k = 0; k < (dim == 1 ? 5 : 2); k++) {
            assert_int_equal(mnnh_nlse_sample(s, 1, k, V, u, NULL, &res, NULL), MNNH_OK);
            assert_true(res <= p.tol);
        }
        free(V); free(u);
        mnnh_nlse_free(s);
    }
}

/* Potential (4.4): negative, reproducible per (seed, sample). */
static void test_potential(void **state) {
    (void)state;
    mnnh_nlse_params p;
    assert_int_equal(mnnh_nlse_params_default(&p, 1), MNNH_OK);
    double a[320], b[320];
    mnnh_nlse_potential(&p, 3, 8, a);
    mnnh_nlse_potential(&p, 3, 9, b);
    mnnh_nlse_potential(&p, 3, 8, b);
    assert_memory_equal(a, b, sizeof a);
    double mn = 0;
    for (int i = 0; i < 320; i++) {
        assert_true(a[i] < 0);
        mn = fmin(mn, a[i]);
    }
    /* the deepest point is at most sum rho / sqrt(2 pi T) with rho <= 4, T >= 2e-3 */
    assert_true(mn > -2 * 4 / sqrt(2 * M_PI * 2e-3) * 1.0001);
}

static void test_errors(void **state) {
    (void)state;
    mnnh_nlse_params p;
    assert_int_equal(mnnh_nlse_params_default(&p, 4), MNNH_ERR_ARG);
    assert_int_equal(mnnh_nlse_params_default(&p, 1), MNNH_OK);
    p.N = -3;
    assert_int_equal(mnnh_nlse_params_check(&p), MNNH_ERR_ARG);
    assert_non_null(strstr(mnnh_error_msg(), "--grid"));
    assert_int_equal(mnnh_nlse_params_default(&p, 1), MNNH_OK);
    p.maxiter = 2;
    mnnh_nlse *s;
    assert_int_equal(mnnh_nlse_create(&p, &s), MNNH_OK);
    double V[320], u[320];
    assert_int_equal(mnnh_nlse_sample(s, 1, 31, V, u, NULL, NULL, NULL), MNNH_ERR_NUMERIC);
    assert_non_null(strstr(mnnh_error_msg(), "sample 31"));
    mnnh_nlse_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ground_1d),   cmocka_unit_test(test_ground_2d),
        cmocka_unit_test(test_paper_grids), cmocka_unit_test(test_potential),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
