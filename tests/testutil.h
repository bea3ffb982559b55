/* testutil.h: helpers shared by the core's cmocka tests.
 *
 * - random fills keyed by a seed (mnnh_rng, so runs are reproducible);
 * - comparisons with a tolerance relative to the array's scale;
 * - an independent, naive double-precision evaluation of every layer, written
 *   straight from the formulas in DESIGN.md ("The model") and layers.h, with
 *   explicit 1D / 2D index arithmetic (the tests' oracle for the forward pass,
 *   and the building block of the naive whole-model evaluation);
 * - a word-bounded search to check that an error message names something.
 *
 * Everything is static so each test program includes its own copy. */
#ifndef MNNH_TESTUTIL_H
#define MNNH_TESTUTIL_H

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mnnh/layers.h"
#include "mnnh/rng.h"

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif

/* ---------------------------------------------------------------- memory */

static TU_UNUSED void *tu_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    assert_non_null(p);
    return p;
}
#define TU_NEWF(n) ((float *)tu_alloc(sizeof(float) * (size_t)(n)))
#define TU_NEWD(n) ((double *)tu_alloc(sizeof(double) * (size_t)(n)))

/* ---------------------------------------------------------------- random */

static TU_UNUSED void tu_fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng rng;
    mnnh_rng_init(&rng, seed, 0x7e57u);
    for (size_t i = 0; i < n; i++) x[i] = (float)mnnh_rng_range(&rng, lo, hi);
}
static TU_UNUSED void tu_filld(double *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng rng;
    mnnh_rng_init(&rng, seed, 0x7e58u);
    for (size_t i = 0; i < n; i++) x[i] = mnnh_rng_range(&rng, lo, hi);
}

/* ----------------------------------------------------------- comparisons */

static TU_UNUSED double tu_maxabs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}
static TU_UNUSED double tu_maxabsd(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* max_i |a_i - b_i| / max(max_i |b_i|, floor): normwise relative difference. */
static TU_UNUSED double tu_reldiff_fd(const float *a, const double *b, size_t n, double floor_) {
    double s = tu_maxabsd(b, n), d = 0;
    if (s < floor_) s = floor_;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN propagates */
    }
    return d / s;
}
static TU_UNUSED double tu_reldiff_ff(const float *a, const float *b, size_t n, double floor_) {
    double s = tu_maxabs(b, n), d = 0;
    if (s < floor_) s = floor_;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e;
    }
    return d / s;
}

/* Fails (with a message naming what) when the relative difference exceeds tol. */
#define TU_CHECK_REL(what, rel, tol)                                                   \
    do {                                                                               \
        double tu_r_ = (rel);                                                          \
        if (!(tu_r_ <= (tol))) {                                                       \
            print_error("%s: relative difference %.3e > tolerance %.1e\n", (what), tu_r_, \
                        (double)(tol));                                                \
            fail();                                                                    \
        }                                                                              \
    } while (0)

/* 1 when `name` occurs in msg as a whole word (not inside a longer identifier). */
static TU_UNUSED int tu_names(const char *msg, const char *name) {
    size_t len = strlen(name);
    for (const char *p = strstr(msg, name); p; p = strstr(p + 1, name)) {
        int before_ok = p == msg || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after_ok = !(isalnum((unsigned char)p[len]) || p[len] == '_');
        if (before_ok && after_ok) return 1;
    }
    return 0;
}

/* ------------------------------------------------ naive layers (double) */
/* Written from DESIGN.md: C row-major, 0-based, batch outermost.
 * 1D: grid v[x], x = i*s + j for position i, block offset j.
 * 2D: grid v[x1][x2] with x1 = i1*s + j1, x2 = i2*s + j2, position p = i1*n + i2,
 *     block offset jj = j1*s + j2, taps t = t1*w + t2. */

static TU_UNUSED int tu_mod(int x, int n) {
    int r = x % n;
    return r < 0 ? r + n : r;
}

/* out[B][cout][P] = restrict(v) */
static TU_UNUSED void naive_restrict(const mnnh_geom *g, int B, const double *v, const float *W,
                                     const float *b, double *out) {
    int n = g->n, s = g->s, N = n * s, C = g->cout;
    if (g->dim == 1) {
        for (int bi = 0; bi < B; bi++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < n; i++) {
                    const float *Wi = g->local ? W + (size_t)i * C * s : W;
                    const float *bb = g->local ? b + (size_t)i * C : b;
                    double acc = bb[c];
                    for (int j = 0; j < s; j++) acc += (double)Wi[c * s + j] * v[(size_t)bi * N + i * s + j];
                    out[((size_t)bi * C + c) * n + i] = acc;
                }
    } else {
        size_t G = (size_t)N * N, S = (size_t)s * s, P = (size_t)n * n;
        for (int bi = 0; bi < B; bi++)
            for (int c = 0; c < C; c++)
                for (int i1 = 0; i1 < n; i1++)
                    for (int i2 = 0; i2 < n; i2++) {
                        size_t p = (size_t)i1 * n + i2;
                        const float *Wi = g->local ? W + p * C * S : W;
                        const float *bb = g->local ? b + p * C : b;
                        double acc = bb[c];
                        for (int j1 = 0; j1 < s; j1++)
                            for (int j2 = 0; j2 < s; j2++)
                                acc += (double)Wi[(size_t)c * S + (size_t)j1 * s + j2] *
                                       v[bi * G + (size_t)(i1 * s + j1) * N + (i2 * s + j2)];
                        out[((size_t)bi * C + c) * P + p] = acc;
                    }
    }
}

/* pre[B][cout][P] = sum W in(shifted) + b (before the activation); out = act(pre). */
static TU_UNUSED void naive_kernel(const mnnh_geom *g, int B, const double *in, const float *W,
                                   const float *b, double *pre, double *out) {
    int n = g->n, nb = g->nb, w = 2 * nb + 1, Ci = g->cin, Co = g->cout;
    if (g->dim == 1) {
        for (int bi = 0; bi < B; bi++)
            for (int co = 0; co < Co; co++)
                for (int i = 0; i < n; i++) {
                    const float *Wi = g->local ? W + (size_t)i * Co * Ci * w : W;
                    const float *bb = g->local ? b + (size_t)i * Co : b;
                    double acc = bb[co];
                    for (int ci = 0; ci < Ci; ci++)
                        for (int t = 0; t < w; t++)
                            acc += (double)Wi[((size_t)co * Ci + ci) * w + t] *
                                   in[((size_t)bi * Ci + ci) * n + tu_mod(i + t - nb, n)];
                    size_t o = ((size_t)bi * Co + co) * n + i;
                    if (pre) pre[o] = acc;
                    out[o] = g->relu && acc < 0 ? 0 : acc;
                }
    } else {
        size_t P = (size_t)n * n, T = (size_t)w * w;
        for (int bi = 0; bi < B; bi++)
            for (int co = 0; co < Co; co++)
                for (int i1 = 0; i1 < n; i1++)
                    for (int i2 = 0; i2 < n; i2++) {
                        size_t p = (size_t)i1 * n + i2;
                        const float *Wi = g->local ? W + p * Co * Ci * T : W;
                        const float *bb = g->local ? b + p * Co : b;
                        double acc = bb[co];
                        for (int ci = 0; ci < Ci; ci++)
                            for (int t1 = 0; t1 < w; t1++)
                                for (int t2 = 0; t2 < w; t2++) {
                                    int x1 = tu_mod(i1 + t1 - nb, n), x2 = tu_mod(i2 + t2 - nb, n);
                                    acc += (double)Wi[((size_t)co * Ci + ci) * T + (size_t)t1 * w + t2] *
                                           in[((size_t)bi * Ci + ci) * P + (size_t)x1 * n + x2];
                                }
                        size_t o = ((size_t)bi * Co + co) * P + p;
                        if (pre) pre[o] = acc;
                        out[o] = g->relu && acc < 0 ? 0 : acc;
                    }
    }
}

/* u[B][N^d] += interp(z) */
static TU_UNUSED void naive_interp_add(const mnnh_geom *g, int B, const double *z, const float *W,
                                       const float *b, double *u) {
    int n = g->n, s = g->s, N = n * s, C = g->cin;
    if (g->dim == 1) {
        for (int bi = 0; bi < B; bi++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < s; j++) {
                    const float *Wi = g->local ? W + (size_t)i * s * C : W;
                    const float *bb = g->local ? b + (size_t)i * s : b;
                    double acc = bb[j];
                    for (int c = 0; c < C; c++)
                        acc += (double)Wi[(size_t)j * C + c] * z[((size_t)bi * C + c) * n + i];
                    u[(size_t)bi * N + i * s + j] += acc;
                }
    } else {
        size_t G = (size_t)N * N, S = (size_t)s * s, P = (size_t)n * n;
        for (int bi = 0; bi < B; bi++)
            for (int i1 = 0; i1 < n; i1++)
                for (int i2 = 0; i2 < n; i2++)
                    for (int j1 = 0; j1 < s; j1++)
                        for (int j2 = 0; j2 < s; j2++) {
                            size_t p = (size_t)i1 * n + i2, jj = (size_t)j1 * s + j2;
                            const float *Wi = g->local ? W + p * S * C : W;
                            const float *bb = g->local ? b + p * S : b;
                            double acc = bb[jj];
                            for (int c = 0; c < C; c++)
                                acc += (double)Wi[jj * C + c] * z[((size_t)bi * C + c) * P + p];
                            u[bi * G + (size_t)(i1 * s + j1) * N + (i2 * s + j2)] += acc;
                        }
    }
}

/* out[B][S][P]: out[j][i] = v[block i, offset j] (the paper's block Reshape). */
static TU_UNUSED void naive_gather(const mnnh_geom *g, int B, const double *v, double *out) {
    int n = g->n, s = g->s, N = n * s;
    if (g->dim == 1) {
        for (int bi = 0; bi < B; bi++)
            for (int j = 0; j < s; j++)
                for (int i = 0; i < n; i++)
                    out[((size_t)bi * s + j) * n + i] = v[(size_t)bi * N + i * s + j];
    } else {
        size_t G = (size_t)N * N, S = (size_t)s * s, P = (size_t)n * n;
        for (int bi = 0; bi < B; bi++)
            for (int k1 = 0; k1 < s; k1++)
                for (int k2 = 0; k2 < s; k2++)
                    for (int i1 = 0; i1 < n; i1++)
                        for (int i2 = 0; i2 < n; i2++)
                            out[(bi * S + (size_t)k1 * s + k2) * P + (size_t)i1 * n + i2] =
                                v[bi * G + (size_t)(i1 * s + k1) * N + (i2 * s + k2)];
    }
}

/* u[block i, offset j] += in[j][i] (Flatten, accumulated). */
static TU_UNUSED void naive_scatter_add(const mnnh_geom *g, int B, const double *in, double *u) {
    int n = g->n, s = g->s, N = n * s;
    if (g->dim == 1) {
        for (int bi = 0; bi < B; bi++)
            for (int j = 0; j < s; j++)
                for (int i = 0; i < n; i++)
                    u[(size_t)bi * N + i * s + j] += in[((size_t)bi * s + j) * n + i];
    } else {
        size_t G = (size_t)N * N, S = (size_t)s * s, P = (size_t)n * n;
        for (int bi = 0; bi < B; bi++)
            for (int k1 = 0; k1 < s; k1++)
                for (int k2 = 0; k2 < s; k2++)
                    for (int i1 = 0; i1 < n; i1++)
                        for (int i2 = 0; i2 < n; i2++)
                            u[bi * G + (size_t)(i1 * s + k1) * N + (i2 * s + k2)] +=
                                in[(bi * S + (size_t)k1 * s + k2) * P + (size_t)i1 * n + i2];
    }
}

/* Run a group; TU_FILTER=pattern selects tests by name (cmocka's filter). */
#define TU_RUN(tests)                                                   \
    (getenv("TU_FILTER") ? cmocka_set_test_filter(getenv("TU_FILTER")) : (void)0, \
     cmocka_run_group_tests(tests, NULL, NULL))

static TU_UNUSED void tu_f2d(const float *x, double *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}

#endif
