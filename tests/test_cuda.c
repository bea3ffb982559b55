/* test_cuda.c: the CUDA backend (src/cuda/) against the CPU reference.
 *
 * Wherever a GPU is visible:
 * - every layer op, forward and backward, on the layer shapes of the KS 1D
 *   (N=320, L=6, m=5, r=6, K=6) and KS 2D (N=64, L=4, m=4, r=10, K=6) models,
 *   cnn and lc, against the "ref" backend: restrict, kernel (ReLU and linear),
 *   interp, block gather / scatter; the cnn forwards through both the cuBLAS
 *   and the direct-kernel paths; parameter gradients must ACCUMULATE, input
 *   gradients must be overwritten (buffers start non-zero), interp and scatter
 *   forwards accumulate into u, and din = NULL is accepted; again at batches
 *   where the parameter reductions run in several chunks (33 cnn, 1030 lc); the
 *   kernel-layer weight gradient by tap rows and by single weights give the
 *   same bits;
 * - affine, density forward / backward, relative error, NAdam update;
 * - a whole training step (train_batch + NAdam) on GPU equals the same step on
 *   the CPU reference within float32 tolerance (with and without the density
 *   layer and input / output normalisation);
 * - resume is bit-exact on the GPU: 4 steps in one go and 2 + 2 steps through a
 *   host copy of (params, NAdam moments, step, mu_product) give byte-identical
 *   parameters and moments;
 * - backend selection errors are clear (a device ordinal beyond the count).
 * Without a GPU each of those is skipped with the reason printed, the check
 * that "--backend cuda" fails clearly still runs, and the program exits 77
 * (ctest SKIP_RETURN_CODE) so the skip is visible in the ctest summary. */
#include "testutil.h"

#include "mnnh/arch.h"
#include "mnnh/backend.h"
#include "mnnh/model.h"
#include "mnnh/nadam.h"
#include "mnnh/ops.h"

#ifdef MNNH_HAVE_CUDA
#include "../src/cuda/cuda_backend.h"
#endif

/* Tolerances (normwise: max |gpu - ref| / max |ref|). The reference sums in
 * double, the GPU in float: a few ulps of the largest term. */
#define TOL_FWD 1e-5
#define TOL_BWD 1e-4
#define TOL_OPS 1e-6
/* whole model: relative 2-norm per parameter tensor (a ReLU whose input is
 * within rounding of 0 may switch between the two; that perturbs a few terms,
 * while an indexing error changes the gradient at O(1)) */
#define TOL_MODEL 1e-3

static mnnh_backend *gpu;   /* NULL when no GPU */
static mnnh_backend *ref;   /* the CPU reference backend */
static char skip_reason[512];

#define REQUIRE_GPU()                                                              \
    do {                                                                           \
        if (!gpu) {                                                                \
            print_message("[  SKIPPED ] %s: %s\n", __func__, skip_reason);         \
            skip();                                                                \
        }                                                                          \
    } while (0)

/* ----------------------------------------------------------------- helpers */

static float *dev_new(mnnh_backend *be, const float *host, size_t n) {
    void *d = NULL;
    if (mnnh_backend_alloc(be, &d, sizeof(float) * (n ? n : 1)) != MNNH_OK) {
        print_error("alloc of %zu floats: %s\n", n, mnnh_error_msg());
        fail();
    }
    if (host && n) assert_int_equal(mnnh_backend_upload(be, d, host, sizeof(float) * n), MNNH_OK);
    return d;
}

static void dev_get(mnnh_backend *be, float *host, const float *d, size_t n) {
    if (mnnh_backend_download(be, host, d, sizeof(float) * n) != MNNH_OK) {
        print_error("download: %s\n", mnnh_error_msg());
        fail();
    }
}

#define OK(call)                                                                   \
    do {                                                                           \
        mnnh_status st_ = (call);                                                  \
        if (st_ != MNNH_OK) {                                                      \
            print_error("%s failed: %s\n", #call, mnnh_error_msg());               \
            fail();                                                                \
        }                                                                          \
    } while (0)

static float *rnd(size_t n, uint64_t seed, double lo, double hi) {
    float *x = TU_NEWF(n ? n : 1);
    tu_fill(x, n, seed, lo, hi);
    return x;
}
static float *dupf(const float *x, size_t n) {
    float *y = TU_NEWF(n ? n : 1);
    memcpy(y, x, sizeof(float) * n);
    return y;
}

/* Downloads the GPU buffer and compares it with the reference's host array. */
static void cmp_dev(const char *tag, const char *what, const float *d, const float *expect,
                    size_t n, double tol) {
    float *h = TU_NEWF(n);
    dev_get(gpu, h, d, n);
    char name[256];
    snprintf(name, sizeof name, "%s: %s", tag, what);
    TU_CHECK_REL(name, tu_reldiff_ff(h, expect, n, 1e-30), tol);
    free(h);
}
static void cmp_host_exact(const char *tag, const char *what, const float *h, const float *expect,
                           size_t n) {
    if (memcmp(h, expect, sizeof(float) * n)) {
        size_t k = 0;
        while (k < n && !memcmp(&h[k], &expect[k], sizeof(float))) k++;
        print_error("%s: %s differs at element %zu: %.9g vs %.9g\n", tag, what, k, (double)h[k],
                    (double)expect[k]);
        fail();
    }
}
static void cmp_dev_exact(const char *tag, const char *what, const float *d, const float *expect,
                          size_t n) {
    float *h = TU_NEWF(n);
    dev_get(gpu, h, d, n);
    cmp_host_exact(tag, what, h, expect, n);
    free(h);
}

/* ------------------------------------------------------------ layer shapes */

typedef struct {
    const char *name;
    int dim, L, m, r, K;
} shape;
static const shape KS1D = {"KS 1D", 1, 6, 5, 6, 6}; /* N = 320 */
static const shape KS2D = {"KS 2D", 2, 4, 4, 10, 6}; /* N = 64 */

typedef enum { L_RESTRICT, L_KERNEL, L_INTERP, L_BLOCK } lkind;
typedef struct {
    char name[128];
    lkind kind;
    mnnh_geom g;
} lcase;

/* Every layer of the model (as model.c builds them), kernels with and without ReLU. */
static int make_cases(const shape *sh, mnnh_variant var, lcase *c, int max) {
    mnnh_arch a;
    mnnh_arch_set(&a, sh->dim, sh->L, sh->m, sh->r, sh->K, var);
    int local = var == MNNH_LC, k = 0;
    const char *vn = mnnh_variant_name(var);
    for (int l = 2; l <= a.L; l++) {
        int n = 1 << l, s = a.N >> l;
        assert_true(k + 4 <= max);
        c[k] = (lcase){"", L_RESTRICT, {a.dim, n, 1, a.r, s, 0, local, 0}};
        snprintf(c[k].name, sizeof c[k].name, "%s %s level%d restrict", sh->name, vn, l), k++;
        c[k] = (lcase){"", L_KERNEL, {a.dim, n, a.r, a.r, 1, a.nb[l], local, 1}};
        snprintf(c[k].name, sizeof c[k].name, "%s %s level%d kernel relu", sh->name, vn, l), k++;
        c[k] = (lcase){"", L_KERNEL, {a.dim, n, a.r, a.r, 1, a.nb[l], local, 0}};
        snprintf(c[k].name, sizeof c[k].name, "%s %s level%d kernel linear", sh->name, vn, l), k++;
        c[k] = (lcase){"", L_INTERP, {a.dim, n, a.r, 0, s, 0, local, 0}};
        snprintf(c[k].name, sizeof c[k].name, "%s %s level%d interp", sh->name, vn, l), k++;
    }
    int mc = a.dim == 2 ? a.m * a.m : a.m, nL = 1 << a.L;
    assert_true(k + 3 <= max);
    c[k] = (lcase){"", L_BLOCK, {a.dim, nL, 0, 0, a.m, 0, 0, 0}};
    snprintf(c[k].name, sizeof c[k].name, "%s %s adjacent gather/scatter", sh->name, vn), k++;
    c[k] = (lcase){"", L_KERNEL, {a.dim, nL, mc, mc, 1, a.nb_ad, local, 1}};
    snprintf(c[k].name, sizeof c[k].name, "%s %s adjacent kernel relu", sh->name, vn), k++;
    c[k] = (lcase){"", L_KERNEL, {a.dim, nL, mc, mc, 1, a.nb_ad, local, 0}};
    snprintf(c[k].name, sizeof c[k].name, "%s %s adjacent kernel linear", sh->name, vn), k++;
    return k;
}

/* Batch of the layer tests. test_layers_chunked raises it so that the
 * parameter reductions (R = batch terms, lc; batch x positions, cnn) run in
 * several chunks of 1024 terms with a short last one. */
static int LB = 3;

static void check_restrict(const lcase *lc, uint64_t seed) {
    const mnnh_geom *g = &lc->g;
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    size_t pre = g->local ? P : 1, nW = pre * g->cout * S, nb = pre * g->cout;
    size_t nv = (size_t)LB * G, no = (size_t)LB * g->cout * P;
    float *v = rnd(nv, seed, -1, 1), *W = rnd(nW, seed + 1, -0.5, 0.5), *b = rnd(nb, seed + 2, -1, 1);
    float *out = TU_NEWF(no);
    mnnh_ref_restrict_fwd(g, LB, v, W, b, out);
    float *dv_ = dev_new(gpu, v, nv), *dW_ = dev_new(gpu, W, nW), *db_ = dev_new(gpu, b, nb);
    float *dout_ = dev_new(gpu, NULL, no);
    int paths = 1;
#ifdef MNNH_HAVE_CUDA
    paths = g->local ? 1 : 2;
#endif
    for (int p = 0; p < paths; p++) {
#ifdef MNNH_HAVE_CUDA
        int old = mnnh_cuda_set_cublas(gpu, p == 0);
#endif
        OK(gpu->ops->restrict_fwd(gpu, g, LB, dv_, dW_, db_, dout_));
        cmp_dev(lc->name, p == 0 && paths == 2 ? "forward (cuBLAS)" : "forward", dout_, out, no,
                TOL_FWD);
#ifdef MNNH_HAVE_CUDA
        mnnh_cuda_set_cublas(gpu, old);
#endif
    }
    /* backward: dv overwritten, dW / db accumulated */
    float *gout = rnd(no, seed + 3, -1, 1), *gW0 = rnd(nW, seed + 4, -1, 1), *gb0 = rnd(nb, seed + 5, -1, 1);
    float *gv = TU_NEWF(nv), *gW = dupf(gW0, nW), *gb = dupf(gb0, nb);
    mnnh_ref_restrict_bwd(g, LB, v, W, gout, gv, gW, gb);
    float *junk = rnd(nv, seed + 6, 5, 6);
    float *d_gout = dev_new(gpu, gout, no), *d_gv = dev_new(gpu, junk, nv);
    float *d_gW = dev_new(gpu, gW0, nW), *d_gb = dev_new(gpu, gb0, nb);
    OK(gpu->ops->restrict_bwd(gpu, g, LB, dv_, dW_, d_gout, d_gv, d_gW, d_gb));
    cmp_dev(lc->name, "backward dv", d_gv, gv, nv, TOL_BWD);
    cmp_dev(lc->name, "backward dW (accumulated)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (accumulated)", d_gb, gb, nb, TOL_BWD);
    /* again without dv: accumulates a second time */
    mnnh_ref_restrict_bwd(g, LB, v, W, gout, NULL, gW, gb);
    OK(gpu->ops->restrict_bwd(gpu, g, LB, dv_, dW_, d_gout, NULL, d_gW, d_gb));
    cmp_dev(lc->name, "backward dW (dv NULL, twice)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (dv NULL, twice)", d_gb, gb, nb, TOL_BWD);
    void *bufs[] = {dv_, dW_, db_, dout_, d_gout, d_gv, d_gW, d_gb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) mnnh_backend_release(gpu, bufs[i]);
    float *hb[] = {v, W, b, out, gout, gW0, gb0, gv, gW, gb, junk};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void check_kernel(const lcase *lc, uint64_t seed) {
    const mnnh_geom *g = &lc->g;
    size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    size_t pre = g->local ? P : 1, nW = pre * g->cout * g->cin * T, nb = pre * g->cout;
    size_t ni = (size_t)LB * g->cin * P, no = (size_t)LB * g->cout * P;
    float *in = rnd(ni, seed, -1, 1), *W = rnd(nW, seed + 1, -0.3, 0.3), *b = rnd(nb, seed + 2, -0.5, 0.5);
    float *out = TU_NEWF(no);
    mnnh_ref_kernel_fwd(g, LB, in, W, b, out);
    float *d_in = dev_new(gpu, in, ni), *d_W = dev_new(gpu, W, nW), *d_b = dev_new(gpu, b, nb);
    float *d_out = dev_new(gpu, NULL, no);
    OK(gpu->ops->kernel_fwd(gpu, g, LB, d_in, d_W, d_b, d_out));
    cmp_dev(lc->name, "forward", d_out, out, no, TOL_FWD);
    /* backward from the reference's out (same ReLU mask on both sides) */
    OK(mnnh_backend_upload(gpu, d_out, out, sizeof(float) * no));
    float *gout = rnd(no, seed + 3, -1, 1), *gW0 = rnd(nW, seed + 4, -1, 1), *gb0 = rnd(nb, seed + 5, -1, 1);
    float *gin = TU_NEWF(ni), *gW = dupf(gW0, nW), *gb = dupf(gb0, nb);
    mnnh_ref_kernel_bwd(g, LB, in, W, out, gout, gin, gW, gb);
    float *junk = rnd(ni, seed + 6, 5, 6);
    float *d_gout = dev_new(gpu, gout, no), *d_gin = dev_new(gpu, junk, ni);
    float *d_gW = dev_new(gpu, gW0, nW), *d_gb = dev_new(gpu, gb0, nb);
    OK(gpu->ops->kernel_bwd(gpu, g, LB, d_in, d_W, d_out, d_gout, d_gin, d_gW, d_gb));
    cmp_dev(lc->name, "backward din", d_gin, gin, ni, TOL_BWD);
    cmp_dev(lc->name, "backward dW (accumulated)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (accumulated)", d_gb, gb, nb, TOL_BWD);
    mnnh_ref_kernel_bwd(g, LB, in, W, out, gout, NULL, gW, gb);
    OK(gpu->ops->kernel_bwd(gpu, g, LB, d_in, d_W, d_out, d_gout, NULL, d_gW, d_gb));
    cmp_dev(lc->name, "backward dW (din NULL, twice)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (din NULL, twice)", d_gb, gb, nb, TOL_BWD);
#ifdef MNNH_HAVE_CUDA
    /* the weight gradient by tap rows and by single weights: the same bits */
    float *by_path[2];
    for (int rows = 0; rows < 2; rows++) {
        int old = mnnh_cuda_set_wgrad_rows(gpu, rows);
        OK(mnnh_backend_upload(gpu, d_gW, gW0, sizeof(float) * nW));
        OK(gpu->ops->kernel_bwd(gpu, g, LB, d_in, d_W, d_out, d_gout, NULL, d_gW, d_gb));
        by_path[rows] = TU_NEWF(nW);
        dev_get(gpu, by_path[rows], d_gW, nW);
        mnnh_cuda_set_wgrad_rows(gpu, old);
    }
    cmp_host_exact(lc->name, "dW by tap rows vs by weights", by_path[1], by_path[0], nW);
    free(by_path[0]);
    free(by_path[1]);
#endif
    void *bufs[] = {d_in, d_W, d_b, d_out, d_gout, d_gin, d_gW, d_gb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) mnnh_backend_release(gpu, bufs[i]);
    float *hb[] = {in, W, b, out, gout, gW0, gb0, gin, gW, gb, junk};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void check_interp(const lcase *lc, uint64_t seed) {
    const mnnh_geom *g = &lc->g;
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    size_t pre = g->local ? P : 1, nW = pre * S * g->cin, nb = pre * S;
    size_t nz = (size_t)LB * g->cin * P, nu = (size_t)LB * G;
    float *z = rnd(nz, seed, -1, 1), *W = rnd(nW, seed + 1, -0.5, 0.5), *b = rnd(nb, seed + 2, -1, 1);
    float *u0 = rnd(nu, seed + 3, -1, 1), *u = dupf(u0, nu);
    mnnh_ref_interp_fwd(g, LB, z, W, b, u);
    float *d_z = dev_new(gpu, z, nz), *d_W = dev_new(gpu, W, nW), *d_b = dev_new(gpu, b, nb);
    float *d_u = dev_new(gpu, NULL, nu);
    int paths = 1;
#ifdef MNNH_HAVE_CUDA
    paths = g->local ? 1 : 2;
#endif
    for (int p = 0; p < paths; p++) {
#ifdef MNNH_HAVE_CUDA
        int old = mnnh_cuda_set_cublas(gpu, p == 0);
#endif
        OK(mnnh_backend_upload(gpu, d_u, u0, sizeof(float) * nu));
        OK(gpu->ops->interp_fwd(gpu, g, LB, d_z, d_W, d_b, d_u));
        cmp_dev(lc->name, p == 0 && paths == 2 ? "forward, accumulated (cuBLAS)" : "forward, accumulated",
                d_u, u, nu, TOL_FWD);
#ifdef MNNH_HAVE_CUDA
        mnnh_cuda_set_cublas(gpu, old);
#endif
    }
    float *du = rnd(nu, seed + 4, -1, 1), *gW0 = rnd(nW, seed + 5, -1, 1), *gb0 = rnd(nb, seed + 6, -1, 1);
    float *gz = TU_NEWF(nz), *gW = dupf(gW0, nW), *gb = dupf(gb0, nb);
    mnnh_ref_interp_bwd(g, LB, z, W, du, gz, gW, gb);
    float *junk = rnd(nz, seed + 7, 5, 6);
    float *d_du = dev_new(gpu, du, nu), *d_gz = dev_new(gpu, junk, nz);
    float *d_gW = dev_new(gpu, gW0, nW), *d_gb = dev_new(gpu, gb0, nb);
    OK(gpu->ops->interp_bwd(gpu, g, LB, d_z, d_W, d_du, d_gz, d_gW, d_gb));
    cmp_dev(lc->name, "backward dz", d_gz, gz, nz, TOL_BWD);
    cmp_dev(lc->name, "backward dW (accumulated)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (accumulated)", d_gb, gb, nb, TOL_BWD);
    mnnh_ref_interp_bwd(g, LB, z, W, du, NULL, gW, gb);
    OK(gpu->ops->interp_bwd(gpu, g, LB, d_z, d_W, d_du, NULL, d_gW, d_gb));
    cmp_dev(lc->name, "backward dW (dz NULL, twice)", d_gW, gW, nW, TOL_BWD);
    cmp_dev(lc->name, "backward db (dz NULL, twice)", d_gb, gb, nb, TOL_BWD);
    void *bufs[] = {d_z, d_W, d_b, d_u, d_du, d_gz, d_gW, d_gb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) mnnh_backend_release(gpu, bufs[i]);
    float *hb[] = {z, W, b, u0, u, du, gW0, gb0, gz, gW, gb, junk};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void check_block(const lcase *lc, uint64_t seed) {
    const mnnh_geom *g = &lc->g;
    size_t n = (size_t)LB * mnnh_geom_grid(g); /* S * P == grid */
    float *v = rnd(n, seed, -1, 1), *out = TU_NEWF(n);
    mnnh_ref_gather(g, LB, v, out);
    float *d_v = dev_new(gpu, v, n), *d_out = dev_new(gpu, NULL, n);
    OK(gpu->ops->gather(gpu, g, LB, d_v, d_out));
    cmp_dev_exact(lc->name, "gather", d_out, out, n);
    float *u = rnd(n, seed + 1, -1, 1);
    OK(mnnh_backend_upload(gpu, d_v, u, sizeof(float) * n));
    mnnh_ref_scatter_add(g, LB, out, u);
    OK(gpu->ops->scatter_add(gpu, g, LB, d_out, d_v));
    cmp_dev_exact(lc->name, "scatter_add (accumulated)", d_v, u, n);
    mnnh_backend_release(gpu, d_v);
    mnnh_backend_release(gpu, d_out);
    free(v);
    free(out);
    free(u);
}

static void check_layers(const shape *sh, mnnh_variant var) {
    lcase cases[128];
    int nc = make_cases(sh, var, cases, 128);
    for (int k = 0; k < nc; k++) {
        uint64_t seed = 1000 + 17 * (uint64_t)k + (var == MNNH_LC ? 500 : 0) + (uint64_t)sh->dim * 7000;
        switch (cases[k].kind) {
        case L_RESTRICT: check_restrict(&cases[k], seed); break;
        case L_KERNEL: check_kernel(&cases[k], seed); break;
        case L_INTERP: check_interp(&cases[k], seed); break;
        case L_BLOCK: check_block(&cases[k], seed); break;
        }
    }
    print_message("    %s %s: %d layer cases checked\n", sh->name, mnnh_variant_name(var), nc);
}

static void test_layers_ks1d_cnn(void **st) { (void)st; REQUIRE_GPU(); check_layers(&KS1D, MNNH_CNN); }
static void test_layers_ks1d_lc(void **st) { (void)st; REQUIRE_GPU(); check_layers(&KS1D, MNNH_LC); }
static void test_layers_ks2d_cnn(void **st) { (void)st; REQUIRE_GPU(); check_layers(&KS2D, MNNH_CNN); }
static void test_layers_ks2d_lc(void **st) { (void)st; REQUIRE_GPU(); check_layers(&KS2D, MNNH_LC); }

/* The parameter gradients in several chunks: cnn reductions at a batch of 33
 * (33 x positions terms: several chunks, a short last one), lc ones at a
 * batch of 1030 (a chunk of 1024 and one of 6). Every op against the
 * reference, as above, then the backward of the cnn kernel layer with the
 * most positions twice from the same state: byte-identical gradients. */
static void check_chunked_repeat(void) {
    lcase cases[128];
    int nc = make_cases(&KS2D, MNNH_CNN, cases, 128);
    const lcase *lc = NULL;
    for (int k = 0; k < nc; k++)
        if (cases[k].kind == L_KERNEL &&
            (!lc || mnnh_geom_positions(&cases[k].g) > mnnh_geom_positions(&lc->g)))
            lc = &cases[k];
    assert_non_null(lc);
    const mnnh_geom *g = &lc->g;
    size_t P = mnnh_geom_positions(g), nW = (size_t)g->cout * g->cin * mnnh_geom_taps(g);
    size_t ni = (size_t)LB * g->cin * P, no = (size_t)LB * g->cout * P;
    float *in = rnd(ni, 91, -1, 1), *W = rnd(nW, 92, -0.3, 0.3), *gout = rnd(no, 93, -1, 1);
    float *out = rnd(no, 94, -1, 1), *gW0 = rnd(nW, 95, -1, 1);
    float *d_in = dev_new(gpu, in, ni), *d_W = dev_new(gpu, W, nW), *d_out = dev_new(gpu, out, no);
    float *d_gout = dev_new(gpu, gout, no), *d_gW = dev_new(gpu, NULL, nW);
    float *d_gb = dev_new(gpu, NULL, (size_t)g->cout);
    float *h[2] = {TU_NEWF(nW), TU_NEWF(nW)};
    for (int rep = 0; rep < 2; rep++) {
        OK(mnnh_backend_upload(gpu, d_gW, gW0, sizeof(float) * nW));
        OK(gpu->ops->kernel_bwd(gpu, g, LB, d_in, d_W, d_out, d_gout, NULL, d_gW, d_gb));
        dev_get(gpu, h[rep], d_gW, nW);
    }
    assert_memory_equal(h[0], h[1], sizeof(float) * nW);
    print_message("    %s (batch %d): dW of two backward calls byte-identical\n", lc->name, LB);
    void *bufs[] = {d_in, d_W, d_out, d_gout, d_gW, d_gb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) mnnh_backend_release(gpu, bufs[i]);
    float *hb[] = {in, W, gout, out, gW0, h[0], h[1]};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void test_layers_chunked(void **st) {
    (void)st;
    REQUIRE_GPU();
    LB = 33; /* cnn: R = 33 x positions, up to 8448 = 8 x 1024 + 256 */
    check_layers(&KS1D, MNNH_CNN);
    check_layers(&KS2D, MNNH_CNN);
    check_chunked_repeat();
    LB = 1030; /* lc: R = batch = 1024 + 6 (the CPU reference's cost grows with it) */
    check_layers(&KS1D, MNNH_LC);
    LB = 3;
}

/* ------------------------------------------------------------ element ops */

static void test_ops(void **st) {
    (void)st;
    REQUIRE_GPU();
    const int B = 4;
    const size_t len = 64 * 64;
    const size_t n = (size_t)B * len;
    /* affine, out of place and in place: bit-exact */
    float *x = rnd(n, 1, -2, 2), *y = TU_NEWF(n);
    mnnh_ref_affine(n, x, 0.37f, -0.21f, y);
    float *dx = dev_new(gpu, x, n), *dy = dev_new(gpu, NULL, n);
    OK(gpu->ops->affine(gpu, n, dx, 0.37f, -0.21f, dy));
    cmp_dev_exact("affine", "y", dy, y, n);
    OK(gpu->ops->affine(gpu, n, dx, 0.37f, -0.21f, dx));
    cmp_dev_exact("affine", "in place", dx, y, n);

    /* density: sample 2 entirely non-positive (rho = 0, dy = 0) */
    float *yy = rnd(n, 2, -0.3, 1);
    for (size_t i = 0; i < len; i++) yy[2 * len + i] = -fabsf(yy[2 * len + i]);
    float *rho = TU_NEWF(n), *sums = TU_NEWF(B), *drho = rnd(n, 3, -1, 1), *gy = TU_NEWF(n);
    const float ne = 3.0f, cv = 1.0f / 1024;
    mnnh_ref_density_fwd(B, len, yy, ne, cv, rho, sums);
    mnnh_ref_density_bwd(B, len, yy, rho, sums, ne, cv, drho, gy);
    float *d_y = dev_new(gpu, yy, n), *d_rho = dev_new(gpu, NULL, n), *d_sums = dev_new(gpu, NULL, B);
    float *d_drho = dev_new(gpu, drho, n), *d_gy = dev_new(gpu, x, n);
    OK(gpu->ops->density_fwd(gpu, B, len, d_y, ne, cv, d_rho, d_sums));
    cmp_dev("density", "rho", d_rho, rho, n, TOL_OPS);
    cmp_dev("density", "sums", d_sums, sums, B, TOL_OPS);
    OK(gpu->ops->density_bwd(gpu, B, len, d_y, d_rho, d_sums, ne, cv, d_drho, d_gy));
    cmp_dev("density", "backward dy", d_gy, gy, n, TOL_OPS);

    /* relative error: sample 1 has an all-zero target */
    float *pred = rnd(n, 4, -1, 1), *tgt = rnd(n, 5, -1, 1);
    for (size_t i = 0; i < len; i++) tgt[len + i] = 0;
    float *err2 = TU_NEWF(B), *dpred = TU_NEWF(n);
    mnnh_ref_relerr(B, len, pred, tgt, err2, dpred, 0.25f);
    float *d_p = dev_new(gpu, pred, n), *d_t = dev_new(gpu, tgt, n), *d_e = dev_new(gpu, NULL, B);
    float *d_dp = dev_new(gpu, NULL, n);
    OK(gpu->ops->relerr(gpu, B, len, d_p, d_t, d_e, d_dp, 0.25f));
    /* sample 1's err2 is huge (0/DBL_MIN guard): compare the others normwise */
    float e_gpu[4];
    dev_get(gpu, e_gpu, d_e, B);
    for (int b = 0; b < B; b++) /* sample 1: both +inf */
        if (!(e_gpu[b] == err2[b] || fabs((double)e_gpu[b] - err2[b]) <= TOL_OPS * fabs((double)err2[b]))) {
            print_error("relerr: err2[%d] %.9g vs %.9g\n", b, (double)e_gpu[b], (double)err2[b]);
            fail();
        }
    float *dp_gpu = TU_NEWF(n);
    dev_get(gpu, dp_gpu, d_dp, n);
    if (memcmp(dp_gpu + len, dpred + len, sizeof(float) * len)) { /* +-inf and 0: exact */
        print_error("relerr: dpred of the zero-target sample differs\n");
        fail();
    }
    for (int b = 0; b < B; b++) {
        if (b == 1) continue;
        char what[64];
        snprintf(what, sizeof what, "relerr: dpred of sample %d", b);
        TU_CHECK_REL(what, tu_reldiff_ff(dp_gpu + b * len, dpred + b * len, len, 1e-30), TOL_OPS);
    }
    OK(gpu->ops->relerr(gpu, B, len, d_p, d_t, d_e, NULL, 1.0f));

    /* NAdam: three updates with torch-like coefficients */
    const size_t np = 10007;
    float *p = rnd(np, 6, -1, 1), *m = TU_NEWF(np), *v = TU_NEWF(np);
    float *d_pp = dev_new(gpu, p, np), *d_m = dev_new(gpu, NULL, np), *d_v = dev_new(gpu, NULL, np);
    float *gg = TU_NEWF(np), *d_g = dev_new(gpu, NULL, np);
    for (int t = 1; t <= 3; t++) {
        tu_fill(gg, np, 100 + t, -1e-2, 1e-2);
        gg[t] = 0.0f; /* a zero gradient: d = eps */
        OK(mnnh_backend_upload(gpu, d_g, gg, sizeof(float) * np));
        float bias2 = 1.0f - powf(0.999f, (float)t), cg = 2e-3f * 0.1f / t, cm = 2e-3f * 0.9f / t;
        mnnh_ref_nadam_update(np, p, gg, m, v, 0.9f, 0.999f, cg, cm, bias2, 1e-8f);
        OK(gpu->ops->nadam_update(gpu, np, d_pp, d_g, d_m, d_v, 0.9f, 0.999f, cg, cm, bias2, 1e-8f));
    }
    cmp_dev("nadam", "params", d_pp, p, np, TOL_OPS);
    cmp_dev("nadam", "first moment", d_m, m, np, TOL_OPS);
    cmp_dev("nadam", "second moment", d_v, v, np, TOL_OPS);

    void *bufs[] = {dx, dy, d_y, d_rho, d_sums, d_drho, d_gy, d_p, d_t, d_e, d_dp, d_pp, d_m, d_v, d_g};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) mnnh_backend_release(gpu, bufs[i]);
    float *hb[] = {x, y, yy, rho, sums, drho, gy, pred, tgt, err2, dpred, dp_gpu, p, m, v, gg};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

/* ------------------------------------------------------------ whole model */

typedef struct {
    mnnh_backend *be;
    mnnh_model *model;
    mnnh_nadam *opt;
    float *v, *t, *pred; /* backend buffers */
    size_t np, G;
} run_t;

static void run_open(run_t *r, mnnh_backend *be, const shape *sh, mnnh_variant var, int density,
                     int B) {
    memset(r, 0, sizeof *r);
    mnnh_arch a;
    mnnh_arch_set(&a, sh->dim, sh->L, sh->m, sh->r, sh->K, var);
    r->be = be;
    OK(mnnh_model_create(&r->model, &a, be));
    OK(mnnh_model_reserve(r->model, B));
    mnnh_norm *nm = mnnh_model_norm(r->model);
    nm->input_scale = 0.5f;
    nm->input_shift = -0.25f;
    nm->output_shift = density ? 0.05f : 0.1f;
    if (density) {
        nm->density_ne = 4.0f;
        nm->cell_volume = (float)pow(2.0 / a.N, a.dim);
    }
    r->np = mnnh_model_nparams(r->model);
    r->G = mnnh_arch_grid_size(&a);
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    OK(mnnh_nadam_create(&r->opt, be, r->np, &h));
    r->v = dev_new(be, NULL, (size_t)B * r->G);
    r->t = dev_new(be, NULL, (size_t)B * r->G);
    r->pred = dev_new(be, NULL, (size_t)B * r->G);
}

static void run_close(run_t *r) {
    mnnh_backend_release(r->be, r->v);
    mnnh_backend_release(r->be, r->t);
    mnnh_backend_release(r->be, r->pred);
    mnnh_nadam_free(r->opt);
    mnnh_model_free(r->model);
}

/* Batch k of a deterministic data stream: inputs in [0,1), targets positive
 * (densities) or signed. */
static void batch_data(int k, int B, size_t G, int positive, float *v, float *t) {
    tu_fill(v, (size_t)B * G, 5000 + 2 * (uint64_t)k, 0, 1);
    tu_fill(t, (size_t)B * G, 5001 + 2 * (uint64_t)k, positive ? 0.1 : -1, 1);
}

/* One training step: zero grads, train_batch, NAdam. */
static void run_step(run_t *r, int B, const float *hv, const float *ht, double *err2) {
    OK(mnnh_backend_upload(r->be, r->v, hv, sizeof(float) * B * r->G));
    OK(mnnh_backend_upload(r->be, r->t, ht, sizeof(float) * B * r->G));
    OK(mnnh_model_zero_grads(r->model));
    double e2 = 0, e1 = 0;
    OK(mnnh_model_train_batch(r->model, B, r->v, r->t, B, &e2, &e1));
    if (err2) *err2 = e2;
    OK(mnnh_nadam_step(r->opt, mnnh_model_params(r->model), mnnh_model_grads(r->model)));
}

static double rel2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (num != num) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void check_model_step(const shape *sh, mnnh_variant var, int density) {
    const int B = 4;
    char tag[128];
    snprintf(tag, sizeof tag, "%s %s%s", sh->name, mnnh_variant_name(var),
             density ? " +density" : "");
    run_t rc, rg;
    run_open(&rc, ref, sh, var, density, B);
    run_open(&rg, gpu, sh, var, density, B);
    size_t np = rc.np, G = rc.G;
    assert_int_equal(np, rg.np);
    OK(mnnh_model_init_params(rc.model, 42));
    float *p0 = TU_NEWF(np);
    OK(mnnh_model_get_params(rc.model, p0));
    OK(mnnh_model_set_params(rg.model, p0));

    float *hv = TU_NEWF((size_t)B * G), *ht = TU_NEWF((size_t)B * G);
    batch_data(0, B, G, density, hv, ht);

    /* forward */
    float *pc = TU_NEWF((size_t)B * G), *pg = TU_NEWF((size_t)B * G);
    double ec[8], eg[8];
    OK(mnnh_backend_upload(ref, rc.v, hv, sizeof(float) * B * G));
    OK(mnnh_backend_upload(ref, rc.t, ht, sizeof(float) * B * G));
    OK(mnnh_backend_upload(gpu, rg.v, hv, sizeof(float) * B * G));
    OK(mnnh_backend_upload(gpu, rg.t, ht, sizeof(float) * B * G));
    OK(mnnh_model_eval_batch(rc.model, B, rc.v, rc.t, rc.pred, ec));
    OK(mnnh_model_eval_batch(rg.model, B, rg.v, rg.t, rg.pred, eg));
    dev_get(ref, pc, rc.pred, (size_t)B * G);
    dev_get(gpu, pg, rg.pred, (size_t)B * G);
    char what[320];
    snprintf(what, sizeof what, "%s: model forward", tag);
    TU_CHECK_REL(what, rel2(pg, pc, (size_t)B * G), TOL_MODEL * 0.1);
    for (int b = 0; b < B; b++)
        if (!(fabs(eg[b] - ec[b]) <= 1e-4 * ec[b] + 1e-7)) {
            print_error("%s: relative error of sample %d: GPU %.9g CPU %.9g\n", tag, b, eg[b], ec[b]);
            fail();
        }

    /* gradients of one train_batch, tensor by tensor */
    OK(mnnh_model_zero_grads(rc.model));
    OK(mnnh_model_zero_grads(rg.model));
    double e2c = 0, e1c = 0, e2g = 0, e1g = 0;
    OK(mnnh_model_train_batch(rc.model, B, rc.v, rc.t, B, &e2c, &e1c));
    OK(mnnh_model_train_batch(rg.model, B, rg.v, rg.t, B, &e2g, &e1g));
    if (!(fabs(e2g - e2c) <= 1e-4 * e2c)) {
        print_error("%s: loss GPU %.9g CPU %.9g\n", tag, e2g, e2c);
        fail();
    }
    float *gc = TU_NEWF(np), *gg = TU_NEWF(np);
    OK(mnnh_model_get_grads(rc.model, gc));
    OK(mnnh_model_get_grads(rg.model, gg));
    const mnnh_param_table *tab = mnnh_model_table(rc.model);
    double worst = 0;
    for (int k = 0; k < tab->count; k++) {
        const mnnh_param_tensor *t = &tab->t[k];
        double e = rel2(gg + t->offset, gc + t->offset, t->size);
        if (e > worst) worst = e;
        snprintf(what, sizeof what, "%s: gradient of %s", tag, t->name);
        TU_CHECK_REL(what, e, TOL_MODEL);
    }

    /* the NAdam step: the update (p1 - p0) agrees */
    OK(mnnh_nadam_step(rc.opt, mnnh_model_params(rc.model), mnnh_model_grads(rc.model)));
    OK(mnnh_nadam_step(rg.opt, mnnh_model_params(rg.model), mnnh_model_grads(rg.model)));
    float *pc1 = TU_NEWF(np), *pg1 = TU_NEWF(np);
    OK(mnnh_model_get_params(rc.model, pc1));
    OK(mnnh_model_get_params(rg.model, pg1));
    for (size_t i = 0; i < np; i++) {
        pc1[i] -= p0[i];
        pg1[i] -= p0[i];
    }
    snprintf(what, sizeof what, "%s: NAdam update after one step", tag);
    TU_CHECK_REL(what, rel2(pg1, pc1, np), 10 * TOL_MODEL);
    print_message("    %s: %zu params, loss %.6g (GPU %.6g), worst gradient rel. diff %.2e\n", tag,
                  np, e2c / B, e2g / B, worst);

    run_close(&rc);
    run_close(&rg);
    float *hb[] = {p0, hv, ht, pc, pg, gc, gg, pc1, pg1};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void test_step_ks1d_cnn(void **st) { (void)st; REQUIRE_GPU(); check_model_step(&KS1D, MNNH_CNN, 0); check_model_step(&KS1D, MNNH_CNN, 1); }
static void test_step_ks1d_lc(void **st) { (void)st; REQUIRE_GPU(); check_model_step(&KS1D, MNNH_LC, 0); }
static void test_step_ks2d_cnn(void **st) { (void)st; REQUIRE_GPU(); check_model_step(&KS2D, MNNH_CNN, 0); check_model_step(&KS2D, MNNH_CNN, 1); }
static void test_step_ks2d_lc(void **st) { (void)st; REQUIRE_GPU(); check_model_step(&KS2D, MNNH_LC, 1); }

/* ------------------------------------------------------------ bit-exact resume */

static void check_resume(const shape *sh, mnnh_variant var) {
    const int B = 4, steps = 4, cut = 2;
    char tag[96];
    snprintf(tag, sizeof tag, "%s %s", sh->name, mnnh_variant_name(var));
    run_t a;
    run_open(&a, gpu, sh, var, 0, B);
    size_t np = a.np, G = a.G;
    float *hv = TU_NEWF((size_t)B * G), *ht = TU_NEWF((size_t)B * G);
    OK(mnnh_model_init_params(a.model, 7));
    for (int k = 0; k < steps; k++) {
        batch_data(k, B, G, 0, hv, ht);
        run_step(&a, B, hv, ht, NULL);
    }
    float *pa = TU_NEWF(np), *ma = TU_NEWF(np), *va = TU_NEWF(np);
    OK(mnnh_model_get_params(a.model, pa));
    dev_get(gpu, ma, a.opt->m, np);
    dev_get(gpu, va, a.opt->v, np);
    run_close(&a);

    /* 2 steps, state to the host (as a checkpoint would), a fresh model, 2 more */
    run_t b;
    run_open(&b, gpu, sh, var, 0, B);
    OK(mnnh_model_init_params(b.model, 7));
    for (int k = 0; k < cut; k++) {
        batch_data(k, B, G, 0, hv, ht);
        run_step(&b, B, hv, ht, NULL);
    }
    float *ps = TU_NEWF(np), *ms = TU_NEWF(np), *vs = TU_NEWF(np);
    OK(mnnh_model_get_params(b.model, ps));
    dev_get(gpu, ms, b.opt->m, np);
    dev_get(gpu, vs, b.opt->v, np);
    int64_t step = b.opt->step;
    double mu_product = b.opt->mu_product;
    run_close(&b);

    run_t c;
    run_open(&c, gpu, sh, var, 0, B);
    OK(mnnh_model_set_params(c.model, ps));
    OK(mnnh_backend_upload(gpu, c.opt->m, ms, sizeof(float) * np));
    OK(mnnh_backend_upload(gpu, c.opt->v, vs, sizeof(float) * np));
    c.opt->step = step;
    c.opt->mu_product = mu_product;
    for (int k = cut; k < steps; k++) {
        batch_data(k, B, G, 0, hv, ht);
        run_step(&c, B, hv, ht, NULL);
    }
    float *pc = TU_NEWF(np), *mc = TU_NEWF(np), *vc = TU_NEWF(np);
    OK(mnnh_model_get_params(c.model, pc));
    dev_get(gpu, mc, c.opt->m, np);
    dev_get(gpu, vc, c.opt->v, np);
    run_close(&c);

    const char *names[] = {"parameters", "first moments", "second moments"};
    const float *x[] = {pa, ma, va}, *y[] = {pc, mc, vc};
    for (int k = 0; k < 3; k++)
        if (memcmp(x[k], y[k], sizeof(float) * np)) {
            size_t i = 0;
            while (i < np && !memcmp(&x[k][i], &y[k][i], sizeof(float))) i++;
            print_error("%s: resumed %s differ from the uninterrupted run at %zu: %.9g vs %.9g\n",
                        tag, names[k], i, (double)y[k][i], (double)x[k][i]);
            fail();
        }
    /* and the run changed something */
    assert_true(memcmp(pa, ps, sizeof(float) * np) != 0);
    print_message("    %s: %d steps, resumed after %d: byte-identical\n", tag, steps, cut);
    float *hb[] = {hv, ht, pa, ma, va, ps, ms, vs, pc, mc, vc};
    for (size_t i = 0; i < sizeof hb / sizeof *hb; i++) free(hb[i]);
}

static void test_resume_bitexact(void **st) {
    (void)st;
    REQUIRE_GPU();
    check_resume(&KS1D, MNNH_CNN);
    check_resume(&KS1D, MNNH_LC);
    check_resume(&KS2D, MNNH_CNN);
    check_resume(&KS2D, MNNH_LC);
}

/* Two train_batch calls from the same state: byte-identical gradients (no
 * atomics, fixed reduction order). */
static void test_gradients_deterministic(void **st) {
    (void)st;
    REQUIRE_GPU();
    const int B = 8;
    const shape *shapes[] = {&KS1D, &KS2D};
    for (int s = 0; s < 2; s++)
        for (int vv = 0; vv < 2; vv++) {
            run_t r;
            run_open(&r, gpu, shapes[s], vv ? MNNH_LC : MNNH_CNN, 1, B);
            OK(mnnh_model_init_params(r.model, 3));
            float *hv = TU_NEWF((size_t)B * r.G), *ht = TU_NEWF((size_t)B * r.G);
            batch_data(9, B, r.G, 1, hv, ht);
            OK(mnnh_backend_upload(gpu, r.v, hv, sizeof(float) * B * r.G));
            OK(mnnh_backend_upload(gpu, r.t, ht, sizeof(float) * B * r.G));
            float *g1 = TU_NEWF(r.np), *g2 = TU_NEWF(r.np);
            double e2, e1;
            OK(mnnh_model_zero_grads(r.model));
            OK(mnnh_model_train_batch(r.model, B, r.v, r.t, B, &e2, &e1));
            OK(mnnh_model_get_grads(r.model, g1));
            OK(mnnh_model_zero_grads(r.model));
            OK(mnnh_model_train_batch(r.model, B, r.v, r.t, B, &e2, &e1));
            OK(mnnh_model_get_grads(r.model, g2));
            if (memcmp(g1, g2, sizeof(float) * r.np)) {
                print_error("%s %s: two identical train_batch calls gave different gradients\n",
                            shapes[s]->name, vv ? "lc" : "cnn");
                fail();
            }
            run_close(&r);
            free(hv);
            free(ht);
            free(g1);
            free(g2);
        }
}

/* ------------------------------------------------------------ selection */

static void test_selection_errors(void **st) {
    (void)st;
    mnnh_backend *be = NULL;
    int count = mnnh_cuda_device_count();
    if (count <= 0) {
        /* no GPU: --backend cuda is a clear error, auto falls back to the CPU */
        assert_int_equal(mnnh_backend_create(&be, "cuda", 0), MNNH_ERR_BACKEND);
        assert_null(be);
        const char *msg = mnnh_error_msg();
        print_message("    --backend cuda without a GPU: \"%s\"\n", msg);
        assert_true(strstr(msg, "CUDA") != NULL || strstr(msg, "cuda") != NULL);
        OK(mnnh_backend_create(&be, "auto", 0));
        assert_string_equal(be->ops->name, "cpu");
        mnnh_backend_free(be);
        return;
    }
    /* a device ordinal beyond the count names it and the count */
    mnnh_status s = mnnh_backend_create(&be, "cuda", count);
    assert_int_equal(s, MNNH_ERR_BACKEND);
    assert_null(be);
    char num[16];
    snprintf(num, sizeof num, "%d", count);
    print_message("    device %d of %d: \"%s\"\n", count, count, mnnh_error_msg());
    assert_true(tu_names(mnnh_error_msg(), num));
    OK(mnnh_backend_create(&be, "auto", 0));
    assert_string_equal(be->ops->name, "cuda");
    mnnh_backend_free(be);
}

/* ------------------------------------------------------------ main */

static int group_setup(void **st) {
    (void)st;
    if (mnnh_backend_create(&ref, "ref", -1) != MNNH_OK) return -1;
    int count = mnnh_cuda_device_count();
#ifdef MNNH_HAVE_CUDA
    if (count <= 0) {
        snprintf(skip_reason, sizeof skip_reason, "no CUDA GPU visible (%s)", mnnh_cuda_probe_message());
        return 0;
    }
    if (mnnh_backend_create(&gpu, "cuda", 0) != MNNH_OK) {
        fprintf(stderr, "test_cuda: %d GPU(s) visible but the CUDA backend failed: %s\n", count,
                mnnh_error_msg());
        return -1; /* a GPU that cannot be used is a failure, not a skip */
    }
    char desc[256];
    mnnh_cuda_device_describe(0, desc, sizeof desc);
    print_message("test_cuda: GPU 0 of %d: %s\n", count, desc);
#else
    (void)count;
    snprintf(skip_reason, sizeof skip_reason, "this build has no CUDA backend (nvcc not found at configure time)");
#endif
    return 0;
}

static int group_teardown(void **st) {
    (void)st;
    if (gpu) mnnh_backend_free(gpu);
    if (ref) mnnh_backend_free(ref);
    gpu = ref = NULL;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection_errors),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_layers_ks1d_cnn),
        cmocka_unit_test(test_layers_ks1d_lc),
        cmocka_unit_test(test_layers_ks2d_cnn),
        cmocka_unit_test(test_layers_ks2d_lc),
        cmocka_unit_test(test_layers_chunked),
        cmocka_unit_test(test_step_ks1d_cnn),
        cmocka_unit_test(test_step_ks1d_lc),
        cmocka_unit_test(test_step_ks2d_cnn),
        cmocka_unit_test(test_step_ks2d_lc),
        cmocka_unit_test(test_gradients_deterministic),
        cmocka_unit_test(test_resume_bitexact),
    };
    int failed = cmocka_run_group_tests_name("cuda", tests, group_setup, group_teardown);
    if (failed) return failed;
    if (mnnh_cuda_device_count() <= 0) {
        fprintf(stderr, "test_cuda: GPU tests SKIPPED: %s\n", skip_reason);
        return 77; /* ctest SKIP_RETURN_CODE: shown as skipped, not passed */
    }
    return 0;
}
