/* test_ks.c: the Kohn-Sham generator (ks.h, eigensolver.h, spectral.h) against a
 * dense LAPACKE eigensolve of the explicitly assembled pseudo-spectral H, plus
 * the density's invariants, translation equivariance, the well sampler and
 * the parameter checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <lapacke.h>

#include "mnnh/eigensolver.h"
#include "mnnh/ks.h"
#include "mnnh/spectral.h"

static double rel_l2(const double *a, const double *b, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        e += (a[i] - b[i]) * (a[i] - b[i]);
        r += b[i] * b[i];
    }
    return sqrt(e / r);
}

static void *xalloc(size_t n) {
    void *p = calloc(n, 1);
    assert_non_null(p);
    return p;
}

/* The test's own dense reference: H assembled here from the circulant
 * formula, all eigenpairs by LAPACKE_dsyevd, rho from the n_e lowest. */
static void dsyevd_reference(const mnnh_ks_params *p, const double *V, double *rho, double *eig) {
    int N = p->N, n = (int)mnnh_ks_grid_size(p);
    double *H = xalloc((size_t)n * n * sizeof(double)), *w = xalloc(n * sizeof(double));
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double h;
            if (p->dim == 1) {
                h = 0.5 * mnnh_spectral_circulant(N, p->box, (a - b + N) % N);
            } else {
                int a1 = a / N, a2 = a % N, b1 = b / N, b2 = b % N;
                h = (a2 == b2 ? 0.5 * mnnh_spectral_circulant(N, p->box, (a1 - b1 + N) % N) : 0) +
                    (a1 == b1 ? 0.5 * mnnh_spectral_circulant(N, p->box, (a2 - b2 + N) % N) : 0);
            }
            H[(size_t)a * n + b] = h + (a == b ? V[a] : 0);
        }
    assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, H, n, w), 0);
    double cell = pow(p->box / N, p->dim);
    for (int i = 0; i < n; i++) {
        double t = 0;
        for (int j = 0; j < p->n_e; j++) t += H[(size_t)i * n + j] * H[(size_t)i * n + j];
        rho[i] = t / cell;
    }
    for (int j = 0; j < p->n_e; j++) eig[j] = w[j];
    free(H);
    free(w);
}

/* Samples of (preset, dim, N, n_g): LOBPCG density and eigenvalues vs the
 * dense dsyevd reference above and vs mnnh_ks_dense (dsyevr). */
static void check_vs_dense(const char *preset, int dim, int N, int n_g, int nsamples) {
    mnnh_ks_params p;
    assert_int_equal(mnnh_ks_params_preset(&p, preset, dim), MNNH_OK);
    p.N = N;
    p.n_g = p.n_e = n_g;
    mnnh_ks *ks;
    assert_int_equal(mnnh_ks_create(&p, &ks), MNNH_OK);
    int64_t n = mnnh_ks_grid_size(&p);
    double *V = xalloc(n * sizeof(double)), *rho = xalloc(n * sizeof(double)), *rd = xalloc(n * sizeof(double));
    double eig[16], res[16], ed[16], gap;
    int iters;
    for (int s = 0; s < nsamples; s++) {
        assert_int_equal(mnnh_ks_sample(ks, 42, s, V, rho, eig, res, &gap, &iters), MNNH_OK);
        for (int ref = 0; ref < 2; ref++) {
            if (ref == 0)
                dsyevd_reference(&p, V, rd, ed);
            else
                assert_int_equal(mnnh_ks_dense(&p, V, rd, ed), MNNH_OK);
            double e = rel_l2(rho, rd, n);
            if (e > 1e-6) fail_msg("%s %dD N=%d sample %d: density off by %.3g relative (ref %d)", preset, dim, N, s, e, ref);
            for (int j = 0; j < n_g; j++) {
                assert_true(res[j] <= p.tol);
                double de = fabs(eig[j] - ed[j]) / fabs(ed[j]);
                if (de > 1e-6) fail_msg("%s %dD sample %d: eigenvalue %d %.12g vs dense %.12g", preset, dim, s, j, eig[j], ed[j]);
            }
        }
        assert_true(gap > 0);
    }
    free(V); free(rho); free(rd);
    mnnh_ks_free(ks);
}

static void test_dense_1d(void **state) {
    (void)state;
    check_vs_dense("paper", 1, 64, 2, 3);
    check_vs_dense("paper", 1, 80, 5, 2);
    check_vs_dense("original", 1, 64, 2, 2);
}

static void test_dense_2d(void **state) {
    (void)state;
    check_vs_dense("paper", 2, 16, 2, 2);
    check_vs_dense("paper", 2, 20, 3, 1);
    check_vs_dense("original", 2, 16, 2, 2);
}

/* LOBPCG alone on an explicit matrix (no preconditioner, no workspace, a
 * length that is no multiple of the kernels' blocks) against dsyevd. */
typedef struct {
    int n;
    const double *A;
} dense_op;

static void dense_apply(void *ctx, int nvec, const double *X, double *Y) {
    const dense_op *d = ctx;
    for (int j = 0; j < nvec; j++)
        for (int a = 0; a < d->n; a++) {
            double s = 0;
            for (int b = 0; b < d->n; b++) s += d->A[a * d->n + b] * X[j * d->n + b];
            Y[j * d->n + a] = s;
        }
}

static void test_lobpcg_dense(void **state) {
    (void)state;
    enum { n = 61, nev = 3, block = 5 };
    double *A = xalloc(n * n * sizeof(double)), *E = xalloc(n * n * sizeof(double)), w[n];
    for (int a = 0; a < n; a++) {
        A[a * n + a] = 2.0 + 0.3 * sin(a) + (a == 7 ? -1.5 : 0);
        A[a * n + (a + 1) % n] = A[((a + 1) % n) * n + a] = -1.0;
    }
    memcpy(E, A, n * n * sizeof(double));
    assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', n, E, n, w), 0);
    double X[block * n], lambda[block], res[block];
    for (int j = 0; j < block; j++)
        for (int i = 0; i < n; i++) X[j * n + i] = cos(0.37 * (j + 1) * i + j);
    dense_op op = {n, A};
    mnnh_lobpcg_cfg cfg = {.n = n, .nev = nev, .block = block, .maxiter = 500, .tol = 1e-10,
                           .apply = dense_apply, .ctx = &op};
    mnnh_lobpcg_info info;
    assert_int_equal(mnnh_lobpcg_solve(&cfg, X, lambda, res, &info), MNNH_OK);
    for (int j = 0; j < nev; j++) {
        assert_true(res[j] <= 1e-10);
        assert_true(fabs(lambda[j] - w[j]) < 1e-10 * fabs(w[j]) + 1e-12);
    }
    free(A);
    free(E);
}

/* The circulant formula used by the dense reference agrees with FFTW's Laplacian. */
static void test_spectral_circulant(void **state) {
    (void)state;
    for (int N = 7; N <= 8; N++) {
        mnnh_spectral *sp;
        assert_int_equal(mnnh_spectral_create(1, N, 3.0, &sp), MNNH_OK);
        double x[8] = {0}, y[8];
        x[2] = 1;
        mnnh_spectral_laplace(sp, 1.0, x, y);
        for (int a = 0; a < N; a++)
            assert_true(fabs(y[a] - mnnh_spectral_circulant(N, 3.0, (a - 2 + N) % N)) < 1e-12);
        mnnh_spectral_free(sp);
    }
}

/* sum(rho) dx^d = n_e, rho >= 0, for the paper's full-size 1D and 2D grids. */
static void test_density_invariants(void **state) {
    (void)state;
    for (int dim = 1; dim <= 2; dim++) {
        mnnh_ks_params p;
        assert_int_equal(mnnh_ks_params_preset(&p, "paper", dim), MNNH_OK);
        p.n_g = p.n_e = dim == 1 ? 4 : 2;
        mnnh_ks *ks;
        assert_int_equal(mnnh_ks_create(&p, &ks), MNNH_OK);
        int64_t n = mnnh_ks_grid_size(&p);
        double *V = xalloc(n * sizeof(double)), *rho = xalloc(n * sizeof(double));
        double cell = pow(p.box / p.N, dim);
        for (int s = 0; s < 3; s++) {
            assert_int_equal(mnnh_ks_sample(ks, 7, s, V, rho, NULL, NULL, NULL, NULL), MNNH_OK);
            double sum = 0;
            for (int64_t i = 0; i < n; i++) {
                assert_true(rho[i] >= 0);
                sum += rho[i] * cell;
            }
            assert_true(fabs(sum - p.n_e) < 1e-10 * p.n_e);
        }
        free(V); free(rho);
        mnnh_ks_free(ks);
    }
}

/* Rolling V by whole grid steps rolls rho; adding a constant shifts eps only. */
static void test_shift(void **state) {
    (void)state;
    mnnh_ks_params p;
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 2), MNNH_OK);
    p.N = 32;
    mnnh_ks *ks;
    assert_int_equal(mnnh_ks_create(&p, &ks), MNNH_OK);
    int N = p.N, n = N * N, s1 = 5, s2 = 11;
    double *V = xalloc(n * sizeof(double)), *rho = xalloc(n * sizeof(double));
    double *Vs = xalloc(n * sizeof(double)), *rs = xalloc(n * sizeof(double)), *rr = xalloc(n * sizeof(double));
    double eig[2], eigs[2];
    assert_int_equal(mnnh_ks_sample(ks, 3, 0, V, rho, eig, NULL, NULL, NULL), MNNH_OK);
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++) Vs[((a + s1) % N) * N + (b + s2) % N] = V[a * N + b];
    assert_int_equal(mnnh_ks_solve(ks, Vs, rs, eigs, NULL, NULL, NULL), MNNH_OK);
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++) rr[((a + s1) % N) * N + (b + s2) % N] = rho[a * N + b];
    assert_true(rel_l2(rs, rr, n) < 1e-6);
    for (int j = 0; j < 2; j++) assert_true(fabs(eigs[j] - eig[j]) < 1e-7 * fabs(eig[j]));
    for (int i = 0; i < n; i++) Vs[i] = V[i] + 0.75;
    assert_int_equal(mnnh_ks_solve(ks, Vs, rs, eigs, NULL, NULL, NULL), MNNH_OK);
    assert_true(rel_l2(rs, rho, n) < 1e-6);
    for (int j = 0; j < 2; j++) assert_true(fabs(eigs[j] - (eig[j] + 0.75)) < 1e-7);
    free(V); free(rho); free(Vs); free(rs); free(rr);
    mnnh_ks_free(ks);
}

/* Sample i is a function of (seed, i) only: same bits whatever came before. */
static void test_reproducible(void **state) {
    (void)state;
    mnnh_ks_params p;
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 1), MNNH_OK);
    mnnh_ks *a, *b;
    assert_int_equal(mnnh_ks_create(&p, &a), MNNH_OK);
    assert_int_equal(mnnh_ks_create(&p, &b), MNNH_OK);
    int n = p.N;
    double *V1 = xalloc(n * 8), *r1 = xalloc(n * 8), *V2 = xalloc(n * 8), *r2 = xalloc(n * 8);
    assert_int_equal(mnnh_ks_sample(a, 9, 4, V1, r1, NULL, NULL, NULL, NULL), MNNH_OK);
    assert_int_equal(mnnh_ks_sample(b, 9, 1, V2, r2, NULL, NULL, NULL, NULL), MNNH_OK);
    assert_int_equal(mnnh_ks_sample(b, 9, 4, V2, r2, NULL, NULL, NULL, NULL), MNNH_OK);
    assert_memory_equal(V1, V2, n * 8);
    assert_memory_equal(r1, r2, n * 8);
    assert_int_equal(mnnh_ks_sample(b, 10, 4, V2, r2, NULL, NULL, NULL, NULL), MNNH_OK);
    assert_true(memcmp(V1, V2, n * 8) != 0); /* another seed, another sample */
    free(V1); free(r1); free(V2); free(r2);
    mnnh_ks_free(a);
    mnnh_ks_free(b);
}

/* Centres keep their periodic distance, depths stay in range, and V matches
 * the formula (4.8) summed over images directly. */
static void test_wells(void **state) {
    (void)state;
    for (int dim = 1; dim <= 2; dim++) {
        mnnh_ks_params p;
        assert_int_equal(mnnh_ks_params_preset(&p, dim == 1 ? "paper" : "original", dim), MNNH_OK);
        p.n_g = 4;
        assert_int_equal(mnnh_ks_params_check(&p), MNNH_OK);
        double c[8], d[4];
        for (int s = 0; s < 200; s++) {
            assert_int_equal(mnnh_ks_wells(&p, 5, s, c, d), MNNH_OK);
            for (int i = 0; i < p.n_g; i++) {
                assert_true(d[i] >= p.c_min && d[i] <= p.c_max);
                for (int k = 0; k < dim; k++) assert_true(c[i * dim + k] >= p.x0 && c[i * dim + k] < p.x0 + p.box);
                for (int j = 0; j < i; j++) {
                    double s2 = 0;
                    for (int k = 0; k < dim; k++) {
                        double t = fabs(c[i * dim + k] - c[j * dim + k]);
                        t = fmin(t, p.box - t);
                        s2 += t * t;
                    }
                    assert_true(sqrt(s2) > p.sep);
                }
            }
        }
        int64_t n = mnnh_ks_grid_size(&p);
        double *V = xalloc(n * sizeof(double));
        mnnh_ks_potential(&p, c, d, V);
        int64_t idx = n / 3;
        double x[2] = {p.x0 + (dim == 1 ? idx : idx / p.N) * p.box / p.N, p.x0 + (idx % p.N) * p.box / p.N};
        double v = 0;
        for (int i = 0; i < p.n_g; i++)
            for (int m1 = -3; m1 <= 3; m1++)
                for (int m2 = (dim == 1 ? 0 : -3); m2 <= (dim == 1 ? 0 : 3); m2++) {
                    double a = x[0] - c[i * dim] - m1 * p.box, r2 = a * a;
                    if (dim == 2) {
                        double b = x[1] - c[i * dim + 1] - m2 * p.box;
                        r2 += b * b;
                    }
                    v -= d[i] * exp(-r2 / (2 * p.sigma * p.sigma));
                }
        assert_true(fabs(V[idx] - v) < 1e-12);
        free(V);
    }
}

static void expect_arg(const mnnh_ks_params *p, const char *word) {
    assert_int_equal(mnnh_ks_params_check(p), MNNH_ERR_ARG);
    if (!strstr(mnnh_error_msg(), word)) fail_msg("message '%s' does not name '%s'", mnnh_error_msg(), word);
}

static void test_bad_params(void **state) {
    (void)state;
    mnnh_ks_params p;
    assert_int_equal(mnnh_ks_params_preset(&p, "papr", 2), MNNH_ERR_ARG);
    assert_non_null(strstr(mnnh_error_msg(), "papr"));
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 3), MNNH_ERR_ARG);
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 2), MNNH_OK);
    p.N = 0;
    expect_arg(&p, "--grid");
    p.N = 64;
    p.n_g = 12; /* 12 disks of diameter 0.4 cover 0.38 of [-1,1)^2: fine */
    p.n_e = 2;
    assert_int_equal(mnnh_ks_params_check(&p), MNNH_OK);
    p.n_g = 20; /* 0.63: random placement would jam */
    expect_arg(&p, "--n-g");
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 1), MNNH_OK);
    p.n_g = 15; /* 15 * 0.1 / 2 = 0.75 */
    expect_arg(&p, "separation");
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 1), MNNH_OK);
    p.sigma = -1;
    expect_arg(&p, "--sigma");
}

/* A sample that does not converge is an error naming it. */
static void test_not_converged(void **state) {
    (void)state;
    mnnh_ks_params p;
    assert_int_equal(mnnh_ks_params_preset(&p, "paper", 1), MNNH_OK);
    p.maxiter = 1;
    mnnh_ks *ks;
    assert_int_equal(mnnh_ks_create(&p, &ks), MNNH_OK);
    double V[320], rho[320];
    assert_int_equal(mnnh_ks_sample(ks, 1, 77, V, rho, NULL, NULL, NULL, NULL), MNNH_ERR_NUMERIC);
    assert_non_null(strstr(mnnh_error_msg(), "sample 77"));
    mnnh_ks_free(ks);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lobpcg_dense),
        cmocka_unit_test(test_spectral_circulant), cmocka_unit_test(test_dense_1d),
        cmocka_unit_test(test_dense_2d),           cmocka_unit_test(test_density_invariants),
        cmocka_unit_test(test_shift),              cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_wells),              cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_not_converged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
