/* test_layers.c: the CPU reference layers (layers.h) and non-layer ops (ops.h).
 *
 * For every layer (restrict, kernel with ReLU and linear, interp, gather,
 * scatter), 1D and 2D, cnn and lc, on several small geometries (including
 * n = 2 and n = 3 with wide kernels, so that the periodic wrap reads the same
 * position through several taps, and cin != cout):
 *   1. the forward pass equals an independent naive double evaluation written
 *      from DESIGN.md (testutil.h);
 *   2. input and parameter gradients equal central finite differences of a
 *      random projection loss L = sum_i p_i out_i (accumulated in double);
 *   3. backward overwrites input gradients (din may be NULL) and accumulates
 *      parameter gradients.
 * Then the relative-error loss and the density layer against hand computations
 * and finite differences, and the affine op. */
#include "testutil.h"

#include "mnnh/ops.h"

enum { L_RESTRICT, L_KERNEL, L_INTERP, L_GATHER, L_SCATTER };
static const char *kind_name[] = {"restrict", "kernel", "interp", "gather", "scatter"};

typedef struct {
    int kind;
    mnnh_geom g;
    int B;
    float *x, *W, *b, *u0; /* input, weight, bias, base of accumulated outputs */
    float *p;              /* projection (the loss is sum p_i out_i) */
    size_t nx, nW, nbias, nout;
} lcase;

static void case_sizes(lcase *c) {
    const mnnh_geom *g = &c->g;
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), T = mnnh_geom_taps(g);
    size_t G = mnnh_geom_grid(g), loc = g->local ? P : 1;
    c->nW = c->nbias = 0;
    switch (c->kind) {
    case L_RESTRICT:
        c->nx = G * c->B, c->nout = (size_t)g->cout * P * c->B;
        c->nW = loc * g->cout * S, c->nbias = loc * g->cout;
        break;
    case L_KERNEL:
        c->nx = (size_t)g->cin * P * c->B, c->nout = (size_t)g->cout * P * c->B;
        c->nW = loc * g->cout * g->cin * T, c->nbias = loc * g->cout;
        break;
    case L_INTERP:
        c->nx = (size_t)g->cin * P * c->B, c->nout = G * c->B;
        c->nW = loc * S * g->cin, c->nbias = loc * S;
        break;
    case L_GATHER:
        c->nx = G * c->B, c->nout = S * P * c->B;
        break;
    case L_SCATTER:
        c->nx = S * P * c->B, c->nout = G * c->B;
        break;
    }
}

static void case_init(lcase *c, int kind, mnnh_geom g, int B, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->kind = kind, c->g = g, c->B = B;
    case_sizes(c);
    c->x = TU_NEWF(c->nx), c->W = TU_NEWF(c->nW), c->b = TU_NEWF(c->nbias);
    c->u0 = TU_NEWF(c->nout), c->p = TU_NEWF(c->nout);
    tu_fill(c->x, c->nx, seed * 11 + 1, -1, 1);
    tu_fill(c->W, c->nW, seed * 11 + 2, -1, 1);
    tu_fill(c->b, c->nbias, seed * 11 + 3, -1, 1);
    tu_fill(c->u0, c->nout, seed * 11 + 4, -1, 1);
    tu_fill(c->p, c->nout, seed * 11 + 5, -1, 1);
}

static void case_free(lcase *c) {
    free(c->x), free(c->W), free(c->b), free(c->u0), free(c->p);
}

/* Implementation forward (the accumulating layers start from u0). */
static void impl_fwd(const lcase *c, float *out) {
    const mnnh_geom *g = &c->g;
    switch (c->kind) {
    case L_RESTRICT: mnnh_ref_restrict_fwd(g, c->B, c->x, c->W, c->b, out); break;
    case L_KERNEL: mnnh_ref_kernel_fwd(g, c->B, c->x, c->W, c->b, out); break;
    case L_INTERP:
        memcpy(out, c->u0, sizeof(float) * c->nout);
        mnnh_ref_interp_fwd(g, c->B, c->x, c->W, c->b, out);
        break;
    case L_GATHER: mnnh_ref_gather(g, c->B, c->x, out); break;
    case L_SCATTER:
        memcpy(out, c->u0, sizeof(float) * c->nout);
        mnnh_ref_scatter_add(g, c->B, c->x, out);
        break;
    }
}

/* Naive double forward from the formulas (testutil.h); pre gets the kernel's
 * pre-activations (may be NULL). */
static void naive_fwd(const lcase *c, double *out, double *pre) {
    const mnnh_geom *g = &c->g;
    double *x = TU_NEWD(c->nx);
    tu_f2d(c->x, x, c->nx);
    switch (c->kind) {
    case L_RESTRICT: naive_restrict(g, c->B, x, c->W, c->b, out); break;
    case L_KERNEL: naive_kernel(g, c->B, x, c->W, c->b, pre, out); break;
    case L_INTERP:
        tu_f2d(c->u0, out, c->nout);
        naive_interp_add(g, c->B, x, c->W, c->b, out);
        break;
    case L_GATHER: naive_gather(g, c->B, x, out); break;
    case L_SCATTER:
        tu_f2d(c->u0, out, c->nout);
        naive_scatter_add(g, c->B, x, out);
        break;
    }
    free(x);
}

static double impl_loss(const lcase *c, float *scratch, double *noise) {
    impl_fwd(c, scratch);
    double L = 0, a = 0;
    for (size_t i = 0; i < c->nout; i++) {
        L += (double)c->p[i] * scratch[i];
        a += fabs((double)c->p[i] * scratch[i]);
    }
    if (noise) *noise += a * 1.2e-7; /* float32 rounding of each output */
    return L;
}

/* Analytic gradients: dx (overwritten by backward: prefilled with junk to
 * check), dW, db (accumulated: prefilled with acc0, which is subtracted). */
static void impl_grads(const lcase *c, float *dx, float *dW, float *db, int dx_null) {
    const mnnh_geom *g = &c->g;
    float *out = TU_NEWF(c->nout);
    float *W0 = TU_NEWF(c->nW), *b0 = TU_NEWF(c->nbias);
    tu_fill(W0, c->nW, 999, -3, 3);
    tu_fill(b0, c->nbias, 998, -3, 3);
    memcpy(dW, W0, sizeof(float) * c->nW);
    memcpy(db, b0, sizeof(float) * c->nbias);
    for (size_t i = 0; i < c->nx; i++) dx[i] = 12345.0f; /* junk: must be overwritten */
    float *pdx = dx_null ? NULL : dx;
    switch (c->kind) {
    case L_RESTRICT: mnnh_ref_restrict_bwd(g, c->B, c->x, c->W, c->p, pdx, dW, db); break;
    case L_KERNEL:
        mnnh_ref_kernel_fwd(g, c->B, c->x, c->W, c->b, out);
        mnnh_ref_kernel_bwd(g, c->B, c->x, c->W, out, c->p, pdx, dW, db);
        break;
    case L_INTERP: mnnh_ref_interp_bwd(g, c->B, c->x, c->W, c->p, pdx, dW, db); break;
    case L_GATHER: /* d(p . gather(x))/dx = scatter(p) */
        if (pdx) {
            memset(pdx, 0, sizeof(float) * c->nx);
            mnnh_ref_scatter_add(g, c->B, c->p, pdx);
        }
        break;
    case L_SCATTER: /* d(p . scatter(x))/dx = gather(p) */
        if (pdx) mnnh_ref_gather(g, c->B, c->p, pdx);
        break;
    }
    /* parameter gradients were accumulated onto W0, b0 */
    for (size_t i = 0; i < c->nW; i++) dW[i] = (float)((double)dW[i] - (double)W0[i]);
    for (size_t i = 0; i < c->nbias; i++) db[i] = (float)((double)db[i] - (double)b0[i]);
    free(out), free(W0), free(b0);
}

/* For the ReLU kernel: does changing one float (addr) from its value to xm / xp
 * flip the sign of any pre-activation? (checked with the naive evaluation) */
static int crosses_kink(lcase *c, float *addr, float xm, float xp) {
    if (c->kind != L_KERNEL || !c->g.relu) return 0;
    double *o = TU_NEWD(c->nout), *pm = TU_NEWD(c->nout), *pp = TU_NEWD(c->nout);
    float keep = *addr;
    *addr = xm;
    naive_fwd(c, o, pm);
    *addr = xp;
    naive_fwd(c, o, pp);
    *addr = keep;
    int cross = 0;
    for (size_t i = 0; i < c->nout && !cross; i++)
        if ((pm[i] > 0) != (pp[i] > 0) || pm[i] == 0 || pp[i] == 0) cross = 1;
    free(o), free(pm), free(pp);
    return cross;
}

/* Central differences on (a subset of) the elements of arr, against grad. */
static void fd_check_array(lcase *c, const char *what, float *arr, size_t n, const float *grad) {
    if (n == 0) return;
    float *scratch = TU_NEWF(c->nout);
    double gscale = tu_maxabs(grad, n);
    size_t stride = n > 48 ? n / 48 : 1; /* at most ~48 elements, spread over the array */
    int linear = !(c->kind == L_KERNEL && c->g.relu);
    for (size_t e = (stride > 1 ? 7 % stride : 0); e < n; e += stride) {
        float x0 = arr[e];
        double h = linear ? 0.25 : 1e-2;
        float xm, xp;
        for (;;) {
            xm = (float)(x0 - h), xp = (float)(x0 + h);
            if (!crosses_kink(c, &arr[e], xm, xp)) break;
            h /= 4;
            if (h < 1e-6) {
                print_error("%s: cannot find a kink-free step for element %zu\n", what, e);
                fail();
            }
        }
        double noise = 0;
        arr[e] = xp;
        double Lp = impl_loss(c, scratch, &noise);
        arr[e] = xm;
        double Lm = impl_loss(c, scratch, &noise);
        arr[e] = x0;
        double fd = (Lp - Lm) / ((double)xp - (double)xm);
        double an = grad[e];
        double tol = 1e-4 * (fabs(an) + gscale) + noise / ((double)xp - (double)xm) + 1e-6;
        if (!(fabs(fd - an) <= tol)) {
            print_error("%s %s (dim %d n %d s %d cin %d cout %d nb %d local %d relu %d): "
                        "element %zu: analytic %.8g vs finite difference %.8g (tol %.2g)\n",
                        kind_name[c->kind], what, c->g.dim, c->g.n, c->g.s, c->g.cin, c->g.cout,
                        c->g.nb, c->g.local, c->g.relu, e, an, fd, tol);
            fail();
        }
    }
    free(scratch);
}

/* Full check of one layer case. */
static void check_case(int kind, mnnh_geom g, int B, uint64_t seed) {
    lcase c;
    case_init(&c, kind, g, B, seed);
    char what[160];
    snprintf(what, sizeof what, "%s dim=%d n=%d s=%d cin=%d cout=%d nb=%d local=%d relu=%d",
             kind_name[kind], g.dim, g.n, g.s, g.cin, g.cout, g.nb, g.local, g.relu);

    /* 1. forward against the naive double evaluation */
    float *out = TU_NEWF(c.nout);
    double *ref = TU_NEWD(c.nout);
    impl_fwd(&c, out);
    naive_fwd(&c, ref, NULL);
    TU_CHECK_REL(what, tu_reldiff_fd(out, ref, c.nout, 1e-30), 2e-6);
    /* the naive output is not trivially zero (the test exercises something) */
    assert_true(tu_maxabsd(ref, c.nout) > 0.1);

    /* 2. gradients against finite differences */
    float *dx = TU_NEWF(c.nx), *dW = TU_NEWF(c.nW), *db = TU_NEWF(c.nbias);
    impl_grads(&c, dx, dW, db, 0);
    fd_check_array(&c, "input", c.x, c.nx, dx);
    fd_check_array(&c, "weight", c.W, c.nW, dW);
    fd_check_array(&c, "bias", c.b, c.nbias, db);

    /* 3. din = NULL skips the input gradient, parameter gradients unchanged */
    if (kind == L_RESTRICT || kind == L_KERNEL || kind == L_INTERP) {
        float *dx2 = TU_NEWF(c.nx), *dW2 = TU_NEWF(c.nW), *db2 = TU_NEWF(c.nbias);
        impl_grads(&c, dx2, dW2, db2, 1);
        for (size_t i = 0; i < c.nx; i++) assert_true(dx2[i] == 12345.0f);
        assert_memory_equal(dW, dW2, sizeof(float) * c.nW);
        assert_memory_equal(db, db2, sizeof(float) * c.nbias);
        free(dx2), free(dW2), free(db2);
    }
    free(out), free(ref), free(dx), free(dW), free(db);
    case_free(&c);
}

static mnnh_geom geom(int dim, int n, int s, int cin, int cout, int nb, int local, int relu) {
    mnnh_geom g = {dim, n, cin, cout, s, nb, local, relu};
    return g;
}

static void test_geom_sizes(void **st) {
    (void)st;
    mnnh_geom g1 = geom(1, 8, 5, 2, 3, 3, 0, 1), g2 = geom(2, 4, 3, 2, 3, 2, 1, 0);
    assert_int_equal(mnnh_geom_positions(&g1), 8);
    assert_int_equal(mnnh_geom_block(&g1), 5);
    assert_int_equal(mnnh_geom_taps(&g1), 7);
    assert_int_equal(mnnh_geom_grid(&g1), 40);
    assert_int_equal(mnnh_geom_positions(&g2), 16);
    assert_int_equal(mnnh_geom_block(&g2), 9);
    assert_int_equal(mnnh_geom_taps(&g2), 25);
    assert_int_equal(mnnh_geom_grid(&g2), 144);
}

static void test_restrict(void **st) {
    (void)st;
    for (int local = 0; local <= 1; local++) {
        check_case(L_RESTRICT, geom(1, 4, 3, 0, 2, 0, local, 0), 2, 1);
        check_case(L_RESTRICT, geom(1, 2, 5, 0, 3, 0, local, 0), 3, 2);
        check_case(L_RESTRICT, geom(1, 8, 1, 0, 2, 0, local, 0), 2, 3);
        check_case(L_RESTRICT, geom(2, 2, 3, 0, 2, 0, local, 0), 2, 4);
        check_case(L_RESTRICT, geom(2, 4, 2, 0, 3, 0, local, 0), 2, 5);
        check_case(L_RESTRICT, geom(2, 3, 2, 0, 1, 0, local, 0), 1, 6);
    }
}

static void test_kernel(void **st) {
    (void)st;
    for (int local = 0; local <= 1; local++)
        for (int relu = 0; relu <= 1; relu++) {
            uint64_t sd = 100 + 10 * local + relu;
            /* 1D: n = 2 with w = 5 reads positions several times through the wrap */
            check_case(L_KERNEL, geom(1, 2, 1, 2, 3, 2, local, relu), 2, sd + 1);
            check_case(L_KERNEL, geom(1, 4, 1, 3, 2, 2, local, relu), 2, sd + 2);
            check_case(L_KERNEL, geom(1, 8, 1, 2, 2, 3, local, relu), 2, sd + 3);
            check_case(L_KERNEL, geom(1, 5, 1, 1, 3, 1, local, relu), 2, sd + 4);
            check_case(L_KERNEL, geom(1, 3, 1, 2, 2, 0, local, relu), 2, sd + 5);
            /* 2D */
            check_case(L_KERNEL, geom(2, 2, 1, 2, 3, 2, local, relu), 2, sd + 6);
            check_case(L_KERNEL, geom(2, 4, 1, 3, 2, 2, local, relu), 2, sd + 7);
            check_case(L_KERNEL, geom(2, 3, 1, 2, 2, 1, local, relu), 2, sd + 8);
            check_case(L_KERNEL, geom(2, 8, 1, 2, 1, 3, local, relu), 1, sd + 9);
        }
}

static void test_interp(void **st) {
    (void)st;
    for (int local = 0; local <= 1; local++) {
        check_case(L_INTERP, geom(1, 4, 3, 2, 0, 0, local, 0), 2, 201);
        check_case(L_INTERP, geom(1, 2, 4, 3, 0, 0, local, 0), 2, 202);
        check_case(L_INTERP, geom(1, 8, 1, 1, 0, 0, local, 0), 2, 203);
        check_case(L_INTERP, geom(2, 2, 3, 2, 0, 0, local, 0), 2, 204);
        check_case(L_INTERP, geom(2, 4, 2, 3, 0, 0, local, 0), 2, 205);
        check_case(L_INTERP, geom(2, 3, 2, 1, 0, 0, local, 0), 1, 206);
    }
}

static void test_gather_scatter(void **st) {
    (void)st;
    int cfg[][3] = {{1, 4, 3}, {1, 8, 2}, {1, 2, 5}, {2, 3, 2}, {2, 2, 3}, {2, 4, 4}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        mnnh_geom g = geom(cfg[k][0], cfg[k][1], cfg[k][2], 0, 0, 0, 0, 0);
        check_case(L_GATHER, g, 2, 300 + k);
        check_case(L_SCATTER, g, 2, 310 + k);
        /* scatter_add(gather(v)) onto zero is the identity (Flatten inverts Reshape) */
        size_t G = mnnh_geom_grid(&g) * 2;
        float *v = TU_NEWF(G), *t = TU_NEWF(G), *u = TU_NEWF(G);
        tu_fill(v, G, 320 + k, -1, 1);
        mnnh_ref_gather(&g, 2, v, t);
        mnnh_ref_scatter_add(&g, 2, t, u);
        assert_memory_equal(u, v, sizeof(float) * G);
        free(v), free(t), free(u);
    }
}

/* The 2D block Reshape spelled out on one tiny example: N = 4, m = s = 2,
 * v[x1][x2] = 10 x1 + x2, channel k = k1*2 + k2 at position (i1, i2) reads
 * v[2 i1 + k1][2 i2 + k2]. */
static void test_gather_2d_explicit(void **st) {
    (void)st;
    mnnh_geom g = geom(2, 2, 2, 0, 0, 0, 0, 0);
    float v[16], out[16];
    for (int x1 = 0; x1 < 4; x1++)
        for (int x2 = 0; x2 < 4; x2++) v[x1 * 4 + x2] = (float)(10 * x1 + x2);
    mnnh_ref_gather(&g, 1, v, out);
    for (int k1 = 0; k1 < 2; k1++)
        for (int k2 = 0; k2 < 2; k2++)
            for (int i1 = 0; i1 < 2; i1++)
                for (int i2 = 0; i2 < 2; i2++) {
                    float expect = (float)(10 * (2 * i1 + k1) + (2 * i2 + k2));
                    assert_true(out[(k1 * 2 + k2) * 4 + i1 * 2 + i2] == expect);
                }
}

/* ------------------------------------------------------------------ ops */

static void test_affine(void **st) {
    (void)st;
    float x[7], y[7];
    tu_fill(x, 7, 401, -2, 2);
    mnnh_ref_affine(7, x, 0.5f, -0.25f, y);
    for (int i = 0; i < 7; i++) assert_true(fabs(y[i] - (x[i] * 0.5 - 0.25)) <= 1e-6);
}

static void test_relerr_hand(void **st) {
    (void)st;
    /* sample 0: pred (1,2,3), target (1,1,1): err2 = (0+1+4)/3 = 5/3
     * sample 1: pred (0,0,2), target (0,0,4): err2 = 4/16 = 1/4 */
    float pred[6] = {1, 2, 3, 0, 0, 2}, tgt[6] = {1, 1, 1, 0, 0, 4}, err2[2], dpred[6];
    mnnh_ref_relerr(2, 3, pred, tgt, err2, dpred, 0.5f);
    assert_true(fabs(err2[0] - 5.0 / 3.0) < 1e-6);
    assert_true(fabs(err2[1] - 0.25) < 1e-7);
    /* dpred = grad_scale * 2 (pred - target) / ||target||^2 */
    double expect[6] = {0, 0.5 * 2 * 1 / 3.0, 0.5 * 2 * 2 / 3.0, 0, 0, 0.5 * 2 * (-2) / 16.0};
    for (int i = 0; i < 6; i++) assert_true(fabs(dpred[i] - expect[i]) < 1e-6);
    /* dpred may be NULL */
    float e2[2];
    mnnh_ref_relerr(2, 3, pred, tgt, e2, NULL, 1.0f);
    assert_memory_equal(e2, err2, sizeof e2);
}

static void test_relerr_fd(void **st) {
    (void)st;
    enum { B = 3, LEN = 17 };
    float pred[B * LEN], tgt[B * LEN], err2[B], dpred[B * LEN];
    tu_fill(pred, B * LEN, 411, -1, 1);
    tu_fill(tgt, B * LEN, 412, -1, 1);
    const float gs = 1.0f / 3.0f;
    mnnh_ref_relerr(B, LEN, pred, tgt, err2, dpred, gs);
    for (int b = 0; b < B; b++) { /* direct sum in double */
        double num = 0, den = 0;
        for (int i = 0; i < LEN; i++) {
            double d = (double)pred[b * LEN + i] - tgt[b * LEN + i];
            num += d * d, den += (double)tgt[b * LEN + i] * tgt[b * LEN + i];
        }
        assert_true(fabs(err2[b] - num / den) <= 1e-6 * (num / den));
    }
    for (int e = 0; e < B * LEN; e += 3) {
        float x0 = pred[e], h = 1.0f / 256;
        float e2p[B], e2m[B];
        pred[e] = x0 + h;
        mnnh_ref_relerr(B, LEN, pred, tgt, e2p, NULL, 1.0f);
        pred[e] = x0 - h;
        mnnh_ref_relerr(B, LEN, pred, tgt, e2m, NULL, 1.0f);
        pred[e] = x0;
        double Lp = 0, Lm = 0;
        for (int b = 0; b < B; b++) Lp += gs * (double)e2p[b], Lm += gs * (double)e2m[b];
        double fd = (Lp - Lm) / (2.0 * h);
        /* quadratic: central differences exact up to float rounding of err2 */
        assert_true(fabs(fd - dpred[e]) <= 1e-4 * (fabs(dpred[e]) + 0.1));
    }
}

static void test_density_hand(void **st) {
    (void)st;
    /* y = (1, -1, 3, -0.5), ne = 2, cell_volume = 0.5: positive part (1,0,3,0),
     * sum 4, rho = y+ * 2 / (0.5 * 4) = (1, 0, 3, 0). Sample 2 is all <= 0. */
    float y[8] = {1, -1, 3, -0.5f, -1, -2, 0, -0.5f}, rho[8], sums[2];
    mnnh_ref_density_fwd(2, 4, y, 2.0f, 0.5f, rho, sums);
    assert_true(sums[0] == 4.0f);
    float expect[4] = {1, 0, 3, 0};
    for (int i = 0; i < 4; i++) assert_true(fabs(rho[i] - expect[i]) < 1e-6);
    for (int i = 4; i < 8; i++) assert_true(rho[i] == 0.0f);
    /* sum(rho) * cell_volume = ne */
    assert_true(fabs((rho[0] + rho[1] + rho[2] + rho[3]) * 0.5 - 2.0) < 1e-6);
    float drho[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dy[8];
    mnnh_ref_density_bwd(2, 4, y, rho, sums, 2.0f, 0.5f, drho, dy);
    /* L = drho . rho, rho_i = y+_i c / S (c = ne/cv = 4, S = sum y+):
     * dL/dy_i = [y_i > 0] (c/S) (drho_i - sum_k drho_k rho_k / c)
     * sample 0: c/S = 1, sum drho rho / c = (1*1 + 3*3)/4 = 2.5 -> (1-2.5, 0, 3-2.5, 0) */
    float e0[4] = {-1.5f, 0, 0.5f, 0};
    for (int i = 0; i < 4; i++) assert_true(fabs(dy[i] - e0[i]) < 1e-6);
    for (int i = 4; i < 8; i++) assert_true(dy[i] == 0.0f); /* no NaN from 0/0 */
}

static void test_density_fd(void **st) {
    (void)st;
    enum { B = 2, LEN = 23 };
    float y[B * LEN], rho[B * LEN], sums[B], drho[B * LEN], dy[B * LEN];
    tu_fill(y, B * LEN, 421, -1, 1);
    for (int i = 0; i < B * LEN; i++) /* keep |y| >= 0.1, away from the kink */
        y[i] = y[i] < 0 ? y[i] - 0.1f : y[i] + 0.1f;
    tu_fill(drho, B * LEN, 422, -1, 1);
    const float ne = 3.0f, cv = 0.125f;
    mnnh_ref_density_fwd(B, LEN, y, ne, cv, rho, sums);
    for (int b = 0; b < B; b++) {
        double S = 0, tot = 0;
        for (int i = 0; i < LEN; i++) S += y[b * LEN + i] > 0 ? y[b * LEN + i] : 0;
        assert_true(fabs(sums[b] - S) <= 1e-6 * S);
        for (int i = 0; i < LEN; i++) {
            double yi = y[b * LEN + i] > 0 ? y[b * LEN + i] : 0;
            assert_true(fabs(rho[b * LEN + i] - yi * ne / (cv * S)) <= 1e-6 * ne / (cv * S));
            tot += rho[b * LEN + i];
        }
        assert_true(fabs(tot * cv - ne) < 1e-5 * ne);
    }
    mnnh_ref_density_bwd(B, LEN, y, rho, sums, ne, cv, drho, dy);
    for (int e = 0; e < B * LEN; e++) {
        float x0 = y[e], h = 1.0f / 256;
        float r2[B * LEN], s2[B];
        double L[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            y[e] = sgn ? x0 - h : x0 + h;
            mnnh_ref_density_fwd(B, LEN, y, ne, cv, r2, s2);
            L[sgn] = 0;
            for (int i = 0; i < B * LEN; i++) L[sgn] += (double)drho[i] * r2[i];
        }
        y[e] = x0;
        double fd = (L[0] - L[1]) / (2.0 * h);
        assert_true(fabs(fd - dy[e]) <= 2e-3 * (fabs(dy[e]) + 1.0));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geom_sizes),
        cmocka_unit_test(test_restrict),
        cmocka_unit_test(test_kernel),
        cmocka_unit_test(test_interp),
        cmocka_unit_test(test_gather_scatter),
        cmocka_unit_test(test_gather_2d_explicit),
        cmocka_unit_test(test_affine),
        cmocka_unit_test(test_relerr_hand),
        cmocka_unit_test(test_relerr_fd),
        cmocka_unit_test(test_density_hand),
        cmocka_unit_test(test_density_fd),
    };
    return TU_RUN(tests);
}
