/* test_backend.c: the "cpu" backend's ops against the "ref" backend's on the
 * real KS layer shapes (KS 2D: N=64, L=4, m=4, r=10, K=6; KS 1D: N=320, L=6,
 * m=5, r=6, K=6), batch 8, cnn and lc, forward and backward (relative
 * tolerance 1e-5 of each array's scale), plus the elementwise ops, and
 * backend creation. */
#include "testutil.h"

#include "mnnh/backend.h"

enum { B = 8 };

typedef struct {
    mnnh_backend *be;
    const char *name;
} bk;

static float *bnew(mnnh_backend *be, const float *host, size_t n) {
    float *p;
    assert_int_equal(mnnh_backend_alloc(be, (void **)&p, sizeof(float) * (n ? n : 1)), MNNH_OK);
    if (host) assert_int_equal(mnnh_backend_upload(be, p, host, sizeof(float) * n), MNNH_OK);
    return p;
}
static void bget(mnnh_backend *be, float *host, const float *p, size_t n) {
    assert_int_equal(mnnh_backend_download(be, host, p, sizeof(float) * n), MNNH_OK);
}

/* Run one layer (fwd + bwd) on a backend; outputs into host arrays. */
typedef struct {
    int kind; /* 0 restrict, 1 kernel, 2 interp, 3 gather, 4 scatter */
    mnnh_geom g;
    size_t nx, nW, nb, nout;
    float *x, *W, *b, *u0, *dout, *acc0;
} lay;

static void run_layer(mnnh_backend *be, const lay *L, float *out, float *dx, float *dW, float *db) {
    const mnnh_backend_ops *o = be->ops;
    float *x = bnew(be, L->x, L->nx), *W = bnew(be, L->W, L->nW), *b = bnew(be, L->b, L->nb);
    float *y = bnew(be, L->u0, L->nout), *dy = bnew(be, L->dout, L->nout);
    float *gx = bnew(be, NULL, L->nx), *gW = bnew(be, L->acc0, L->nW), *gb = bnew(be, L->acc0, L->nb);
    switch (L->kind) {
    case 0:
        assert_int_equal(o->restrict_fwd(be, &L->g, B, x, W, b, y), MNNH_OK);
        assert_int_equal(o->restrict_bwd(be, &L->g, B, x, W, dy, gx, gW, gb), MNNH_OK);
        break;
    case 1:
        assert_int_equal(o->kernel_fwd(be, &L->g, B, x, W, b, y), MNNH_OK);
        assert_int_equal(o->kernel_bwd(be, &L->g, B, x, W, y, dy, gx, gW, gb), MNNH_OK);
        break;
    case 2:
        assert_int_equal(o->interp_fwd(be, &L->g, B, x, W, b, y), MNNH_OK);
        assert_int_equal(o->interp_bwd(be, &L->g, B, x, W, dy, gx, gW, gb), MNNH_OK);
        break;
    case 3:
        assert_int_equal(o->gather(be, &L->g, B, x, y), MNNH_OK);
        break;
    case 4:
        assert_int_equal(o->scatter_add(be, &L->g, B, x, y), MNNH_OK);
        break;
    }
    if (o->sync) assert_int_equal(o->sync(be), MNNH_OK);
    bget(be, out, y, L->nout);
    if (L->kind <= 2) {
        bget(be, dx, gx, L->nx), bget(be, dW, gW, L->nW), bget(be, db, gb, L->nb);
    }
    float *all[] = {x, W, b, y, dy, gx, gW, gb};
    for (int i = 0; i < 8; i++) mnnh_backend_release(be, all[i]);
}

static void compare_layer(mnnh_backend *cpu, mnnh_backend *ref, int kind, mnnh_geom g, uint64_t seed) {
    lay L;
    memset(&L, 0, sizeof L);
    L.kind = kind, L.g = g;
    size_t P = mnnh_geom_positions(&g), S = mnnh_geom_block(&g), T = mnnh_geom_taps(&g);
    size_t G = mnnh_geom_grid(&g), loc = g.local ? P : 1;
    switch (kind) {
    case 0: L.nx = G * B, L.nout = (size_t)g.cout * P * B, L.nW = loc * g.cout * S, L.nb = loc * g.cout; break;
    case 1: L.nx = (size_t)g.cin * P * B, L.nout = (size_t)g.cout * P * B;
            L.nW = loc * g.cout * g.cin * T, L.nb = loc * g.cout; break;
    case 2: L.nx = (size_t)g.cin * P * B, L.nout = G * B, L.nW = loc * S * g.cin, L.nb = loc * S; break;
    case 3: L.nx = G * B, L.nout = S * P * B; break;
    case 4: L.nx = S * P * B, L.nout = G * B; break;
    }
    size_t nacc = L.nW > L.nb ? L.nW : L.nb;
    L.x = TU_NEWF(L.nx), L.W = TU_NEWF(L.nW), L.b = TU_NEWF(L.nb), L.u0 = TU_NEWF(L.nout);
    L.dout = TU_NEWF(L.nout), L.acc0 = TU_NEWF(nacc);
    tu_fill(L.x, L.nx, seed, -1, 1), tu_fill(L.W, L.nW, seed + 1, -0.3, 0.3);
    tu_fill(L.b, L.nb, seed + 2, -0.5, 0.5), tu_fill(L.u0, L.nout, seed + 3, -1, 1);
    tu_fill(L.dout, L.nout, seed + 4, -1, 1), tu_fill(L.acc0, nacc, seed + 5, -0.1, 0.1);
    float *o1 = TU_NEWF(L.nout), *o2 = TU_NEWF(L.nout), *x1 = TU_NEWF(L.nx), *x2 = TU_NEWF(L.nx);
    float *w1 = TU_NEWF(L.nW), *w2 = TU_NEWF(L.nW), *b1 = TU_NEWF(L.nb), *b2 = TU_NEWF(L.nb);
    run_layer(cpu, &L, o1, x1, w1, b1);
    run_layer(ref, &L, o2, x2, w2, b2);
    char what[160];
    const char *kn[] = {"restrict", "kernel", "interp", "gather", "scatter"};
    snprintf(what, sizeof what, "%s dim=%d n=%d s=%d cin=%d cout=%d nb=%d local=%d relu=%d", kn[kind],
             g.dim, g.n, g.s, g.cin, g.cout, g.nb, g.local, g.relu);
    char w2s[200];
    snprintf(w2s, sizeof w2s, "%s forward", what);
    TU_CHECK_REL(w2s, tu_reldiff_ff(o1, o2, L.nout, 1e-30), 1e-5);
    if (kind <= 2) {
        snprintf(w2s, sizeof w2s, "%s input gradient", what);
        TU_CHECK_REL(w2s, tu_reldiff_ff(x1, x2, L.nx, 1e-30), 1e-5);
        snprintf(w2s, sizeof w2s, "%s weight gradient", what);
        TU_CHECK_REL(w2s, tu_reldiff_ff(w1, w2, L.nW, 1e-30), 1e-5);
        snprintf(w2s, sizeof w2s, "%s bias gradient", what);
        TU_CHECK_REL(w2s, tu_reldiff_ff(b1, b2, L.nb, 1e-30), 1e-5);
    }
    free(L.x), free(L.W), free(L.b), free(L.u0), free(L.dout), free(L.acc0);
    free(o1), free(o2), free(x1), free(x2), free(w1), free(w2), free(b1), free(b2);
}

static void compare_config(int dim, int L, int m, int r, int local) {
    mnnh_backend *cpu, *ref;
    assert_int_equal(mnnh_backend_create(&cpu, "cpu", 0), MNNH_OK);
    assert_int_equal(mnnh_backend_create(&ref, "ref", 0), MNNH_OK);
    int N = (1 << L) * m;
    uint64_t sd = 1000 * dim + 10 * local;
    for (int l = 2; l <= L; l++) {
        int n = 1 << l, s = N >> l, nb = l == 2 ? 2 : 3;
        mnnh_geom gr = {dim, n, 0, r, s, 0, local, 0};
        compare_layer(cpu, ref, 0, gr, sd += 7);
        for (int relu = 0; relu <= 1; relu++) {
            mnnh_geom gk = {dim, n, r, r, 1, nb, local, relu};
            compare_layer(cpu, ref, 1, gk, sd += 7);
        }
        mnnh_geom gi = {dim, n, r, 0, s, 0, local, 0};
        compare_layer(cpu, ref, 2, gi, sd += 7);
    }
    int n = 1 << L, M = dim == 2 ? m * m : m;
    mnnh_geom gg = {dim, n, 0, 0, m, 0, 0, 0};
    compare_layer(cpu, ref, 3, gg, sd += 7);
    compare_layer(cpu, ref, 4, gg, sd += 7);
    for (int relu = 0; relu <= 1; relu++) {
        mnnh_geom gk = {dim, n, M, M, 1, 1, local, relu};
        compare_layer(cpu, ref, 1, gk, sd += 7);
    }
    mnnh_backend_free(cpu);
    mnnh_backend_free(ref);
}

static void test_ks2d_cnn(void **st) { (void)st; compare_config(2, 4, 4, 10, 0); }
static void test_ks2d_lc(void **st) { (void)st; compare_config(2, 4, 4, 10, 1); }
static void test_ks1d_cnn(void **st) { (void)st; compare_config(1, 6, 5, 6, 0); }
static void test_ks1d_lc(void **st) { (void)st; compare_config(1, 6, 5, 6, 1); }

/* Elementwise ops and reductions: cpu vs ref. */
static void test_ops(void **st) {
    (void)st;
    mnnh_backend *be[2];
    assert_int_equal(mnnh_backend_create(&be[0], "cpu", 0), MNNH_OK);
    assert_int_equal(mnnh_backend_create(&be[1], "ref", 0), MNNH_OK);
    enum { LEN = 4096 };
    size_t n = (size_t)B * LEN;
    float *x = TU_NEWF(n), *t = TU_NEWF(n), *d = TU_NEWF(n), *res[2][8];
    tu_fill(x, n, 1, -0.5, 1), tu_fill(t, n, 2, 0.1, 1), tu_fill(d, n, 3, -1, 1);
    for (int k = 0; k < 2; k++) {
        mnnh_backend *b = be[k];
        const mnnh_backend_ops *o = b->ops;
        float *bx = bnew(b, x, n), *bt = bnew(b, t, n), *bd = bnew(b, d, n), *by = bnew(b, NULL, n);
        float *brho = bnew(b, NULL, n), *bs = bnew(b, NULL, B), *bdy = bnew(b, NULL, n);
        float *be2 = bnew(b, NULL, B), *bdp = bnew(b, NULL, n);
        for (int j = 0; j < 8; j++) res[k][j] = TU_NEWF(n);
        assert_int_equal(o->affine(b, n, bx, 0.7f, -0.2f, by), MNNH_OK);
        assert_int_equal(o->density_fwd(b, B, LEN, bx, 3.0f, 0.01f, brho, bs), MNNH_OK);
        assert_int_equal(o->density_bwd(b, B, LEN, bx, brho, bs, 3.0f, 0.01f, bd, bdy), MNNH_OK);
        assert_int_equal(o->relerr(b, B, LEN, bx, bt, be2, bdp, 0.125f), MNNH_OK);
        if (o->sync) assert_int_equal(o->sync(b), MNNH_OK);
        bget(b, res[k][0], by, n), bget(b, res[k][1], brho, n), bget(b, res[k][2], bs, B);
        bget(b, res[k][3], bdy, n), bget(b, res[k][4], be2, B), bget(b, res[k][5], bdp, n);
        /* NAdam update on (x as params, d as grads, t as m, t as v) */
        float *bm = bnew(b, t, n), *bv = bnew(b, t, n);
        assert_int_equal(o->nadam_update(b, n, bx, bd, bm, bv, 0.9f, 0.999f, 1e-3f, 2e-3f, 0.2f, 1e-8f), MNNH_OK);
        if (o->sync) assert_int_equal(o->sync(b), MNNH_OK);
        bget(b, res[k][6], bx, n), bget(b, res[k][7], bm, n);
        float *all[] = {bx, bt, bd, by, brho, bs, bdy, be2, bdp, bm, bv};
        for (int j = 0; j < 11; j++) mnnh_backend_release(b, all[j]);
    }
    const char *names[] = {"affine", "density_fwd", "density sums", "density_bwd", "relerr err2",
                           "relerr dpred", "nadam params", "nadam m"};
    size_t lens[] = {n, n, B, n, B, n, n, n};
    for (int j = 0; j < 8; j++) TU_CHECK_REL(names[j], tu_reldiff_ff(res[0][j], res[1][j], lens[j], 1e-30), 1e-5);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 8; j++) free(res[k][j]);
    free(x), free(t), free(d);
    mnnh_backend_free(be[0]), mnnh_backend_free(be[1]);
}

static void test_create(void **st) {
    (void)st;
    mnnh_backend *be = NULL;
    assert_int_equal(mnnh_backend_create(&be, "ref", 0), MNNH_OK);
    assert_string_equal(be->ops->name, "ref");
    assert_int_equal(be->device, -1);
    mnnh_backend_free(be);
    assert_int_equal(mnnh_backend_create(&be, "cpu", 0), MNNH_OK);
    assert_string_equal(be->ops->name, "cpu");
    assert_true(be->threads >= 1);
    mnnh_backend_free(be);
    assert_int_equal(mnnh_backend_create(&be, "auto", 0), MNNH_OK);
    if (mnnh_cuda_device_count() == 0) assert_string_equal(be->ops->name, "cpu");
    mnnh_backend_free(be);
    mnnh_error_clear();
    assert_int_equal(mnnh_backend_create(&be, "quantum", 0), MNNH_ERR_ARG);
    assert_true(strstr(mnnh_error_msg(), "quantum") != NULL);
    /* round trip through backend memory */
    assert_int_equal(mnnh_backend_create(&be, "cpu", 0), MNNH_OK);
    float h[5] = {1, 2, 3, 4, 5}, g[5], *p, *q;
    p = bnew(be, h, 5), q = bnew(be, NULL, 5);
    assert_int_equal(be->ops->copy(be, q, p, sizeof h), MNNH_OK);
    bget(be, g, q, 5);
    assert_memory_equal(g, h, sizeof h);
    assert_int_equal(be->ops->zero(be, q, sizeof h), MNNH_OK);
    bget(be, g, q, 5);
    for (int i = 0; i < 5; i++) assert_true(g[i] == 0.0f);
    mnnh_backend_release(be, p), mnnh_backend_release(be, q);
    mnnh_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),   cmocka_unit_test(test_ops),
        cmocka_unit_test(test_ks2d_cnn), cmocka_unit_test(test_ks2d_lc),
        cmocka_unit_test(test_ks1d_cnn), cmocka_unit_test(test_ks1d_lc),
    };
    return TU_RUN(tests);
}
