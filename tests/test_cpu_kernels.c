/* test_cpu_kernels.c: every fast kernel of the "cpu" backend against its
 * reference (layers.h, ops.h), on the real layer shapes of the KS 1D model
 * (N=320, L=6, m=5, r=6) and the KS 2D model (N=64, L=4, m=4, r=10):
 * restrict, kernel (ReLU and linear), interp, gather and scatter, forward and
 * backward (input and parameter gradients, accumulated into non-zero
 * buffers), cnn and lc, with odd batch sizes (a partial vector block and one
 * smaller than a block), at 1 and 2 threads and on every instruction set this
 * machine runs (avx512, avx2, sse), which also exercises every kernel path
 * (batch-vectorised, position-vectorised cnn and lc, the flattened block
 * transposes for n = 4, 8 and odd n; which one runs depends on n and the
 * vector width). Results at a fixed thread count and
 * instruction set must also be bit-identical from run to run (bit-exact
 * resume depends on it). Then the elementwise ops and the whole model. */
#include "testutil.h"

#include "mnnh/backend.h"
#include "mnnh/model.h"
#include "mnnh/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* cpu_kernels.c (not a public API): force an instruction set; -1 if unsupported. */
int mnnh_cpu_kernels_set_isa(const char *name);
const char *mnnh_cpu_kernels_isa(void);
int mnnh_cpu_kernels_dense(const mnnh_geom *g);

static const char *isas[] = {"avx512", "avx2", "sse"};
static const int thread_counts[] = {1, 2};
#define TOL 2e-5

static mnnh_backend *ref_be, *cpu_be;

static int setup(void **state) {
    (void)state;
    if (mnnh_backend_create(&ref_be, "ref", -1) || mnnh_backend_create(&cpu_be, "cpu", -1)) return -1;
    return 0;
}
static int teardown(void **state) {
    (void)state;
    mnnh_backend_free(ref_be);
    mnnh_backend_free(cpu_be);
    mnnh_cpu_kernels_set_isa(NULL);
    return 0;
}

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

enum { K_RESTRICT, K_KERNEL, K_INTERP, K_GATHER, K_SCATTER };
static const char *kname[] = {"restrict", "kernel", "interp", "gather", "scatter"};

typedef struct {
    size_t nin, nout, nW, nb;
} sizes;

static sizes layer_sizes(int kind, const mnnh_geom *g, int B) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), T = mnnh_geom_taps(g);
    size_t G = mnnh_geom_grid(g), loc = g->local ? P : 1;
    sizes z = {0, 0, 0, 0};
    switch (kind) {
    case K_RESTRICT: z = (sizes){G * B, (size_t)g->cout * P * B, loc * g->cout * S, loc * g->cout}; break;
    case K_KERNEL: z = (sizes){(size_t)g->cin * P * B, (size_t)g->cout * P * B, loc * g->cout * g->cin * T, loc * g->cout}; break;
    case K_INTERP: z = (sizes){(size_t)g->cin * P * B, G * B, loc * S * g->cin, loc * S}; break;
    case K_GATHER: z = (sizes){G * B, S * P * B, 0, 0}; break;
    case K_SCATTER: z = (sizes){S * P * B, G * B, 0, 0}; break;
    }
    return z;
}

typedef struct {
    float *out, *din, *dW, *db;
} results;

/* Run one layer forward and backward on backend be. Accumulated outputs
 * (interp, scatter, parameter gradients) start from the given base values. */
static void run_layer(mnnh_backend *be, int kind, const mnnh_geom *g, int B, const sizes *z,
                      const float *in, const float *W, const float *b, const float *out0,
                      const float *dout, const float *dW0, const float *db0, int with_din,
                      results *r) {
    const mnnh_backend_ops *op = be->ops;
    memcpy(r->out, out0, z->nout * sizeof(float));
    if (z->nW) memcpy(r->dW, dW0, z->nW * sizeof(float));
    if (z->nb) memcpy(r->db, db0, z->nb * sizeof(float));
    memset(r->din, 0x7f, z->nin * sizeof(float)); /* must be overwritten */
    float *din = with_din ? r->din : NULL;
    switch (kind) {
    case K_RESTRICT:
        assert_int_equal(op->restrict_fwd(be, g, B, in, W, b, r->out), MNNH_OK);
        assert_int_equal(op->restrict_bwd(be, g, B, in, W, dout, din, r->dW, r->db), MNNH_OK);
        break;
    case K_KERNEL:
        assert_int_equal(op->kernel_fwd(be, g, B, in, W, b, r->out), MNNH_OK);
        /* the backward reads the forward's (reference) output for the ReLU mask */
        assert_int_equal(op->kernel_bwd(be, g, B, in, W, out0, dout, din, r->dW, r->db), MNNH_OK);
        break;
    case K_INTERP:
        assert_int_equal(op->interp_fwd(be, g, B, in, W, b, r->out), MNNH_OK);
        assert_int_equal(op->interp_bwd(be, g, B, in, W, dout, din, r->dW, r->db), MNNH_OK);
        break;
    case K_GATHER:
        assert_int_equal(op->gather(be, g, B, in, r->out), MNNH_OK);
        break;
    case K_SCATTER:
        assert_int_equal(op->scatter_add(be, g, B, in, r->out), MNNH_OK);
        break;
    }
}

static void results_alloc(results *r, const sizes *z) {
    r->out = TU_NEWF(z->nout);
    r->din = TU_NEWF(z->nin);
    r->dW = TU_NEWF(z->nW + 1);
    r->db = TU_NEWF(z->nb + 1);
}
static void results_free(results *r) {
    free(r->out);
    free(r->din);
    free(r->dW);
    free(r->db);
}

static void compare(const char *what, const char *isa, int th, const float *a, const float *b,
                    size_t n) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s [%s, %d threads]", what, isa, th);
    TU_CHECK_REL(msg, tu_reldiff_ff(a, b, n, 1e-6), TOL);
}

/* One layer case: reference once, then cpu on every ISA x thread count,
 * twice each (bit-identical). */
static void check_layer(int kind, mnnh_geom g, int B, uint64_t seed) {
    sizes z = layer_sizes(kind, &g, B);
    float *in = TU_NEWF(z.nin), *W = TU_NEWF(z.nW + 1), *b = TU_NEWF(z.nb + 1);
    float *out0 = TU_NEWF(z.nout), *dout = TU_NEWF(z.nout), *dW0 = TU_NEWF(z.nW + 1),
          *db0 = TU_NEWF(z.nb + 1);
    tu_fill(in, z.nin, seed, -1, 1);
    tu_fill(W, z.nW, seed + 1, -0.5, 0.5);
    tu_fill(b, z.nb, seed + 2, -0.5, 0.5);
    tu_fill(dout, z.nout, seed + 3, -1, 1);
    tu_fill(dW0, z.nW, seed + 4, -1, 1);
    tu_fill(db0, z.nb, seed + 5, -1, 1);
    if (kind == K_INTERP || kind == K_SCATTER) tu_fill(out0, z.nout, seed + 6, -1, 1);
    if (kind == K_KERNEL) /* the backward's mask comes from a reference forward */
        mnnh_ref_kernel_fwd(&g, B, in, W, b, out0);
    int with_din = 1 + (int)(seed % 2); /* 2: din = NULL (as the model calls restrict) */
    results ref, got, again;
    results_alloc(&ref, &z);
    results_alloc(&got, &z);
    results_alloc(&again, &z);
    /* for K_KERNEL, out0 is also the forward output's starting content (overwritten) */
    run_layer(ref_be, kind, &g, B, &z, in, W, b, out0, dout, dW0, db0, 1, &ref);
    char what[160];
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        if (mnnh_cpu_kernels_set_isa(isas[ii]) != 0) continue;
        assert_string_equal(mnnh_cpu_kernels_isa(), isas[ii]);
        for (size_t ti = 0; ti < sizeof thread_counts / sizeof thread_counts[0]; ti++) {
            int th = thread_counts[ti];
            set_threads(th);
            for (int pass = 0; pass < 2; pass++)
                run_layer(cpu_be, kind, &g, B, &z, in, W, b, out0, dout, dW0, db0, with_din == 1,
                          pass == 0 ? &got : &again);
            snprintf(what, sizeof what, "%s %dD %s n=%d cin=%d cout=%d s=%d nb=%d relu=%d B=%d",
                     kname[kind], g.dim, g.local ? "lc" : "cnn", g.n, g.cin, g.cout, g.s, g.nb,
                     g.relu, B);
            char w2[220];
            snprintf(w2, sizeof w2, "%s forward", what);
            compare(w2, isas[ii], th, got.out, ref.out, z.nout);
            assert_memory_equal(got.out, again.out, z.nout * sizeof(float));
            if (kind <= K_INTERP) {
                if (with_din == 1) {
                    snprintf(w2, sizeof w2, "%s input gradient", what);
                    compare(w2, isas[ii], th, got.din, ref.din, z.nin);
                }
                snprintf(w2, sizeof w2, "%s weight gradient", what);
                compare(w2, isas[ii], th, got.dW, ref.dW, z.nW);
                snprintf(w2, sizeof w2, "%s bias gradient", what);
                compare(w2, isas[ii], th, got.db, ref.db, z.nb);
                /* deterministic: a second run gives the same bits */
                assert_memory_equal(got.dW, again.dW, z.nW * sizeof(float));
                assert_memory_equal(got.db, again.db, z.nb * sizeof(float));
                if (with_din == 1) assert_memory_equal(got.din, again.din, z.nin * sizeof(float));
            }
        }
    }
    mnnh_cpu_kernels_set_isa(NULL);
    set_threads(1);
    results_free(&ref);
    results_free(&got);
    results_free(&again);
    free(in), free(W), free(b), free(out0), free(dout), free(dW0), free(db0);
}

/* Every layer shape of an MNN-H model (dim, N = 2^L m, r), variant lc or cnn. */
static void check_model_shapes(int dim, int L, int m, int r, int local, const int *batches,
                               int nbatch) {
    int N = m << L;
    uint64_t seed = 100 * dim + 10 * local;
    for (int bi = 0; bi < nbatch; bi++) {
        int B = batches[bi];
        for (int l = 2; l <= L; l++) {
            int n = 1 << l, s = N >> l, nb = l == 2 ? 2 : 3;
            check_layer(K_RESTRICT, (mnnh_geom){dim, n, 1, r, s, 0, local, 0}, B, seed++);
            /* only the finest level's kernel in both activations (the cost) */
            for (int relu = (l == L ? 0 : 1); relu <= 1; relu++)
                check_layer(K_KERNEL, (mnnh_geom){dim, n, r, r, 1, nb, local, relu}, B, seed++);
            check_layer(K_INTERP, (mnnh_geom){dim, n, r, 0, s, 0, local, 0}, B, seed++);
        }
        int mc = dim == 2 ? m * m : m, nL = 1 << L;
        for (int relu = 0; relu <= 1; relu++)
            check_layer(K_KERNEL, (mnnh_geom){dim, nL, mc, mc, 1, 1, local, relu}, B, seed++);
        check_layer(K_GATHER, (mnnh_geom){dim, nL, 0, 0, m, 0, 0, 0}, B, seed++);
        check_layer(K_SCATTER, (mnnh_geom){dim, nL, 0, 0, m, 0, 0, 0}, B, seed++);
    }
}

/* 37: several full vector blocks (16) and sample groups (8, 16) per thread plus
 * partial ones, at 1 and 2 threads (the position-vectorised cnn forward, lc
 * forward and lc backward tile across groups of samples); 160: the
 * benchmark's and the training batch */
static const int batches_1d[] = {1, 19, 37, 160};
static const int batches_2d[] = {17};

static void test_ks1d_cnn(void **state) {
    (void)state;
    check_model_shapes(1, 6, 5, 6, 0, batches_1d, 4);
}
static void test_ks1d_lc(void **state) {
    (void)state;
    check_model_shapes(1, 6, 5, 6, 1, batches_1d, 4);
}
static void test_ks2d_cnn(void **state) {
    (void)state;
    check_model_shapes(2, 4, 4, 10, 0, batches_2d, 1);
}
static void test_ks2d_lc(void **state) {
    (void)state;
    static const int b[] = {17};
    check_model_shapes(2, 4, 4, 10, 1, b, 1);
}

/* Small odd geometries: n not a multiple of the vector width, a kernel wider
 * than the grid (wrap through several taps), cin != cout, more output channels
 * than one register tile, 2D with n = 3. */
static void test_odd_shapes(void **state) {
    (void)state;
    const int Bs[] = {1, 33};
    for (int k = 0; k < 2; k++) {
        int B = Bs[k];
        for (int local = 0; local <= 1; local++) {
            check_layer(K_KERNEL, (mnnh_geom){1, 3, 2, 5, 1, 2, local, 1}, B, 7 + k);
            check_layer(K_KERNEL, (mnnh_geom){1, 12, 7, 3, 1, 1, local, 0}, B, 8 + k);
            check_layer(K_KERNEL, (mnnh_geom){1, 20, 3, 25, 1, 1, local, 1}, B, 9 + k);
            /* unpadded rows (n a multiple of the vector width): one or two
             * vectors per row with taps reaching the next-but-one vector
             * (nb up to VB = 16; wider than VB falls back to padded rows) */
            check_layer(K_KERNEL, (mnnh_geom){1, 16, 3, 5, 1, 5, local, 1}, B, 30 + k);
            check_layer(K_KERNEL, (mnnh_geom){1, 32, 4, 6, 1, 9, local, 0}, B, 32 + k);
            check_layer(K_KERNEL, (mnnh_geom){1, 16, 2, 3, 1, 16, local, 1}, B, 34 + k);
            check_layer(K_KERNEL, (mnnh_geom){2, 3, 2, 3, 1, 2, local, 1}, B, 10 + k);
            check_layer(K_KERNEL, (mnnh_geom){2, 6, 4, 19, 1, 1, local, 0}, B, 11 + k);
            check_layer(K_RESTRICT, (mnnh_geom){1, 3, 1, 4, 7, 0, local, 0}, B, 12 + k);
            check_layer(K_RESTRICT, (mnnh_geom){2, 3, 1, 2, 5, 0, local, 0}, B, 13 + k);
            check_layer(K_INTERP, (mnnh_geom){1, 5, 3, 0, 3, 0, local, 0}, B, 14 + k);
            check_layer(K_INTERP, (mnnh_geom){2, 3, 4, 0, 5, 0, local, 0}, B, 15 + k);
        }
        check_layer(K_GATHER, (mnnh_geom){2, 3, 0, 0, 5, 0, 0, 0}, B, 16 + k);
        check_layer(K_SCATTER, (mnnh_geom){1, 7, 0, 0, 3, 0, 0, 0}, B, 17 + k);
    }
}

/* Small lc layers that run as one dense matrix per sample (cpu_kernels.c,
 * dense_usable): KS 1D n = 4 and 8, row lengths that end inside a vector,
 * fill exactly 4 vectors (64), or reach the longest row taken (AVX2: 8
 * vectors), cin != cout, 2D; odd batches split unevenly between threads. */
static void test_dense_shapes(void **state) {
    (void)state;
    const mnnh_geom ks4 = {1, 4, 6, 6, 1, 2, 1, 1}, ks8 = {1, 8, 6, 6, 1, 3, 1, 1};
    const mnnh_geom big = {1, 16, 6, 6, 1, 3, 1, 1}, cnn4 = {1, 4, 6, 6, 1, 2, 0, 1};
    if (mnnh_cpu_kernels_set_isa("avx512") == 0) {
        assert_true(mnnh_cpu_kernels_dense(&ks4));
        assert_true(mnnh_cpu_kernels_dense(&ks8));
    }
    if (mnnh_cpu_kernels_set_isa("avx2") == 0) {
        assert_true(mnnh_cpu_kernels_dense(&ks4));
        assert_false(mnnh_cpu_kernels_dense(&ks8)); /* n = 8 fills a vector: position-vectorised */
    }
    mnnh_cpu_kernels_set_isa(NULL);
    assert_false(mnnh_cpu_kernels_dense(&big)); /* 16 positions, 7 taps: dense would do 2.3x */
    assert_false(mnnh_cpu_kernels_dense(&cnn4)); /* shared weights: not lc */
    const mnnh_geom shapes[] = {
        {1, 5, 12, 12, 1, 2, 1, 1}, /* rows of 60: 4 vectors (AVX-512), 8 (AVX2) */
        {1, 8, 8, 8, 1, 3, 1, 0},   /* rows of 64: whole vectors */
        {1, 4, 3, 7, 1, 2, 1, 1},   /* 28 outputs from 12 inputs */
        {1, 6, 5, 2, 1, 3, 1, 1},   /* 12 outputs from 30 inputs, taps wrap twice */
        {2, 3, 4, 5, 1, 1, 1, 1},   /* 2D: 9 positions, 9 taps */
    };
    const int Bs[] = {1, 9, 33};
    uint64_t seed = 900;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int k = 0; k < 3; k++) {
            if (mnnh_cpu_kernels_set_isa("avx512") == 0)
                assert_true(mnnh_cpu_kernels_dense(&shapes[i]));
            mnnh_cpu_kernels_set_isa(NULL);
            check_layer(K_KERNEL, shapes[i], Bs[k], seed++);
        }
}

/* One lc kernel layer at 2 and 3 threads against the reference, twice
 * (bit-identical), and its forward and input gradient bit-identical to the
 * same instruction set at 1 thread (one sum per output, whichever way the
 * work is split between threads: samples, or vectors of positions, see
 * cpu_kernels.c, lc_vector_threads). */
static void check_lc_split(mnnh_geom g, int B, uint64_t seed) {
    sizes z = layer_sizes(K_KERNEL, &g, B);
    float *in = TU_NEWF(z.nin), *W = TU_NEWF(z.nW), *b = TU_NEWF(z.nb), *out0 = TU_NEWF(z.nout);
    float *dout = TU_NEWF(z.nout), *dW0 = TU_NEWF(z.nW), *db0 = TU_NEWF(z.nb);
    tu_fill(in, z.nin, seed, -1, 1);
    tu_fill(W, z.nW, seed + 1, -0.5, 0.5);
    tu_fill(b, z.nb, seed + 2, -0.5, 0.5);
    tu_fill(dout, z.nout, seed + 3, -1, 1);
    tu_fill(dW0, z.nW, seed + 4, -1, 1);
    tu_fill(db0, z.nb, seed + 5, -1, 1);
    mnnh_ref_kernel_fwd(&g, B, in, W, b, out0);
    results ref, one, got, again;
    results_alloc(&ref, &z), results_alloc(&one, &z), results_alloc(&got, &z);
    results_alloc(&again, &z);
    run_layer(ref_be, K_KERNEL, &g, B, &z, in, W, b, out0, dout, dW0, db0, 1, &ref);
    char what[160];
    snprintf(what, sizeof what, "lc split n=%d cin=%d cout=%d nb=%d relu=%d B=%d", g.n, g.cin,
             g.cout, g.nb, g.relu, B);
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        if (mnnh_cpu_kernels_set_isa(isas[ii]) != 0) continue;
        set_threads(1);
        run_layer(cpu_be, K_KERNEL, &g, B, &z, in, W, b, out0, dout, dW0, db0, 1, &one);
        for (int th = 2; th <= 3; th++) {
            set_threads(th);
            run_layer(cpu_be, K_KERNEL, &g, B, &z, in, W, b, out0, dout, dW0, db0, 1, &got);
            run_layer(cpu_be, K_KERNEL, &g, B, &z, in, W, b, out0, dout, dW0, db0, 1, &again);
            const float *gv[] = {got.out, got.din, got.dW, got.db};
            const float *av[] = {again.out, again.din, again.dW, again.db};
            const float *rv[] = {ref.out, ref.din, ref.dW, ref.db};
            const float *ov[] = {one.out, one.din, one.dW, one.db};
            const size_t nv[] = {z.nout, z.nin, z.nW, z.nb};
            const char *part_name[] = {"forward", "input gradient", "weight gradient", "bias gradient"};
            for (int k = 0; k < 4; k++) {
                char w2[220];
                snprintf(w2, sizeof w2, "%s %s", what, part_name[k]);
                compare(w2, isas[ii], th, gv[k], rv[k], nv[k]);
                assert_memory_equal(gv[k], av[k], nv[k] * sizeof(float));
                /* forward and input gradient: one sum per output whatever the split */
                if (k < 2) assert_memory_equal(gv[k], ov[k], nv[k] * sizeof(float));
            }
        }
    }
    mnnh_cpu_kernels_set_isa(NULL);
    set_threads(1);
    results_free(&ref), results_free(&one), results_free(&got), results_free(&again);
    free(in), free(W), free(b), free(out0), free(dout), free(dW0), free(db0);
}

/* lc layers at 2 and 3 threads: batches of 1 and 2 (no more samples than
 * threads), odd batches across several sample groups (16 per group in the
 * backward), vector counts not divisible by the thread count (n = 48: 3, 6,
 * 12 vectors at VB = 16, 8, 4; n = 80: 5, 10, 20; n = 64 at 3 threads),
 * fewer vectors than threads (n = 16 at AVX-512), taps reaching the
 * next-but-one vector (nb = 9), 5 channels. */
static void test_lc_split(void **state) {
    (void)state;
    const int Bs[] = {1, 2, 19, 37};
    for (int k = 0; k < 4; k++) {
        int B = Bs[k];
        check_lc_split((mnnh_geom){1, 48, 6, 6, 1, 3, 1, 1}, B, 900 + k);
        check_lc_split((mnnh_geom){1, 80, 6, 6, 1, 3, 1, 0}, B, 910 + k);
        check_lc_split((mnnh_geom){1, 64, 5, 5, 1, 1, 1, 1}, B, 920 + k);
        check_lc_split((mnnh_geom){1, 16, 6, 6, 1, 3, 1, 1}, B, 930 + k);
        check_lc_split((mnnh_geom){1, 32, 4, 6, 1, 9, 1, 1}, B, 940 + k);
    }
}

/* Elementwise ops: the cpu backend splits them, results equal the reference. */
static void test_elementwise(void **state) {
    (void)state;
    const int B = 13;
    const size_t len = 333, n = B * len;
    float *y = TU_NEWF(n), *t = TU_NEWF(n), *a = TU_NEWF(n), *b = TU_NEWF(n);
    float *e1 = TU_NEWF(B), *e2 = TU_NEWF(B), *s1 = TU_NEWF(B), *s2 = TU_NEWF(B);
    float *d1 = TU_NEWF(n), *d2 = TU_NEWF(n);
    tu_fill(y, n, 1, -1, 1);
    tu_fill(t, n, 2, 0.1, 1);
    for (int th = 1; th <= 2; th++) {
        set_threads(th);
        assert_int_equal(cpu_be->ops->affine(cpu_be, n, y, 1.5f, -0.25f, a), MNNH_OK);
        mnnh_ref_affine(n, y, 1.5f, -0.25f, b);
        assert_memory_equal(a, b, n * sizeof(float));
        assert_int_equal(cpu_be->ops->relerr(cpu_be, B, len, y, t, e1, d1, 0.125f), MNNH_OK);
        mnnh_ref_relerr(B, len, y, t, e2, d2, 0.125f);
        assert_memory_equal(e1, e2, B * sizeof(float));
        assert_memory_equal(d1, d2, n * sizeof(float));
        assert_int_equal(cpu_be->ops->density_fwd(cpu_be, B, len, y, 3.0f, 0.5f, a, s1), MNNH_OK);
        mnnh_ref_density_fwd(B, len, y, 3.0f, 0.5f, b, s2);
        assert_memory_equal(a, b, n * sizeof(float));
        assert_memory_equal(s1, s2, B * sizeof(float));
        assert_int_equal(cpu_be->ops->density_bwd(cpu_be, B, len, y, a, s1, 3.0f, 0.5f, t, d1), MNNH_OK);
        mnnh_ref_density_bwd(B, len, y, b, s2, 3.0f, 0.5f, t, d2);
        assert_memory_equal(d1, d2, n * sizeof(float));
        float *p1 = TU_NEWF(n), *p2 = TU_NEWF(n), *m1 = TU_NEWF(n), *m2 = TU_NEWF(n),
              *v1 = TU_NEWF(n), *v2 = TU_NEWF(n);
        memcpy(p1, y, n * 4), memcpy(p2, y, n * 4);
        assert_int_equal(cpu_be->ops->nadam_update(cpu_be, n, p1, t, m1, v1, 0.9f, 0.999f, 1e-3f, 2e-3f, 0.01f, 1e-8f), MNNH_OK);
        mnnh_ref_nadam_update(n, p2, t, m2, v2, 0.9f, 0.999f, 1e-3f, 2e-3f, 0.01f, 1e-8f);
        assert_memory_equal(p1, p2, n * 4);
        assert_memory_equal(m1, m2, n * 4);
        assert_memory_equal(v1, v2, n * 4);
        free(p1), free(p2), free(m1), free(m2), free(v1), free(v2);
    }
    set_threads(1);
    free(y), free(t), free(a), free(b), free(e1), free(e2), free(s1), free(s2), free(d1), free(d2);
}

/* The fused level op (level_fwd) against the reference sequence
 * restrict_fwd, K x kernel_fwd, interp_fwd (mnnh_ref_level_fwd, and the ref
 * backend's ops called one by one), accumulated into a non-zero u, on every
 * instruction set, 1 and 2 threads, bit-identical from run to run and
 * bit-identical to the cpu backend's own per-op sequence. relu_mask bit k:
 * ReLU after kernel layer k. */
static void check_level(int dim, int n, int s, int r, int nb, int local, int K,
                        unsigned relu_mask, int B, uint64_t seed) {
    mnnh_geom gr = {dim, n, 1, r, s, 0, local, 0}, gi = {dim, n, r, 0, s, 0, local, 0};
    mnnh_geom gk[8];
    assert_true(K <= 8);
    size_t P = mnnh_geom_positions(&gr), S = mnnh_geom_block(&gr), G = mnnh_geom_grid(&gr);
    size_t loc = local ? P : 1, T = 0, act = (size_t)B * r * P;
    float *Wk[8], *bk[8];
    for (int k = 0; k < K; k++) {
        gk[k] = (mnnh_geom){dim, n, r, r, 1, nb, local, (int)((relu_mask >> k) & 1)};
        T = mnnh_geom_taps(&gk[k]);
        Wk[k] = TU_NEWF(loc * r * r * T);
        bk[k] = TU_NEWF(loc * r);
        tu_fill(Wk[k], loc * r * r * T, seed + 10 + k, -0.4, 0.4);
        tu_fill(bk[k], loc * r, seed + 20 + k, -0.2, 0.3);
    }
    float *v = TU_NEWF((size_t)B * G), *u0 = TU_NEWF((size_t)B * G);
    float *Wr = TU_NEWF(loc * r * S), *br = TU_NEWF(loc * r);
    float *Wi = TU_NEWF(loc * S * r), *bi = TU_NEWF(loc * S);
    tu_fill(v, (size_t)B * G, seed, -1, 1);
    tu_fill(u0, (size_t)B * G, seed + 1, -1, 1);
    tu_fill(Wr, loc * r * S, seed + 2, -0.3, 0.3);
    tu_fill(br, loc * r, seed + 3, -0.2, 0.2);
    tu_fill(Wi, loc * S * r, seed + 4, -0.5, 0.5);
    tu_fill(bi, loc * S, seed + 5, -0.2, 0.2);
    mnnh_level_params lp = {&gr, &gi, gk, K, Wr, br, Wi, bi,
                            (const float *const *)Wk, (const float *const *)bk};
    assert_int_equal(mnnh_level_params_check(&lp), 0);
    /* the reference, twice: mnnh_ref_level_fwd and the ref backend's ops */
    float *ref = TU_NEWF((size_t)B * G), *ref2 = TU_NEWF((size_t)B * G);
    float *work = TU_NEWF(2 * act), *t0 = TU_NEWF(act), *t1 = TU_NEWF(act);
    memcpy(ref, u0, sizeof(float) * B * G);
    mnnh_ref_level_fwd(&lp, B, v, ref, work);
    memcpy(ref2, u0, sizeof(float) * B * G);
    const mnnh_backend_ops *ro = ref_be->ops, *co = cpu_be->ops;
    assert_null(ro->level_fwd); /* optional: not filled in for "ref" */
    assert_non_null(co->level_fwd);
    assert_int_equal(ro->restrict_fwd(ref_be, &gr, B, v, Wr, br, t0), MNNH_OK);
    for (int k = 0; k < K; k++) {
        assert_int_equal(ro->kernel_fwd(ref_be, &gk[k], B, t0, Wk[k], bk[k], t1), MNNH_OK);
        float *x = t0;
        t0 = t1, t1 = x;
    }
    assert_int_equal(ro->interp_fwd(ref_be, &gi, B, t0, Wi, bi, ref2), MNNH_OK);
    assert_memory_equal(ref, ref2, sizeof(float) * B * G);
    float *got = TU_NEWF((size_t)B * G), *again = TU_NEWF((size_t)B * G);
    float *seq = TU_NEWF((size_t)B * G);
    char what[200];
    snprintf(what, sizeof what, "level_fwd %dD %s n=%d s=%d r=%d nb=%d K=%d relu=%#x B=%d", dim,
             local ? "lc" : "cnn", n, s, r, nb, K, relu_mask, B);
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        if (mnnh_cpu_kernels_set_isa(isas[ii]) != 0) continue;
        for (size_t ti = 0; ti < sizeof thread_counts / sizeof thread_counts[0]; ti++) {
            int th = thread_counts[ti];
            set_threads(th);
            memcpy(got, u0, sizeof(float) * B * G);
            memcpy(again, u0, sizeof(float) * B * G);
            assert_int_equal(co->level_fwd(cpu_be, &lp, B, v, got, work, work + act), MNNH_OK);
            assert_int_equal(co->level_fwd(cpu_be, &lp, B, v, again, work, work + act), MNNH_OK);
            compare(what, isas[ii], th, got, ref, (size_t)B * G);
            assert_memory_equal(got, again, sizeof(float) * B * G);
            /* the cpu backend's per-op sequence: same arithmetic, same bits */
            memcpy(seq, u0, sizeof(float) * B * G);
            assert_int_equal(co->restrict_fwd(cpu_be, &gr, B, v, Wr, br, t0), MNNH_OK);
            for (int k = 0; k < K; k++) {
                assert_int_equal(co->kernel_fwd(cpu_be, &gk[k], B, t0, Wk[k], bk[k], t1), MNNH_OK);
                float *x = t0;
                t0 = t1, t1 = x;
            }
            assert_int_equal(co->interp_fwd(cpu_be, &gi, B, t0, Wi, bi, seq), MNNH_OK);
            assert_memory_equal(got, seq, sizeof(float) * B * G);
        }
    }
    mnnh_cpu_kernels_set_isa(NULL);
    set_threads(1);
    /* inconsistent geometries are refused */
    if (K > 0) {
        gk[0].cin = r + 1;
        assert_int_equal(mnnh_level_params_check(&lp), -1);
        assert_int_equal(co->level_fwd(cpu_be, &lp, B, v, got, work, work + act), MNNH_ERR_ARG);
        gk[0].cin = r;
    }
    for (int k = 0; k < K; k++) free(Wk[k]), free(bk[k]);
    free(v), free(u0), free(Wr), free(br), free(Wi), free(bi), free(ref), free(ref2);
    free(work), free(t0), free(t1), free(got), free(again), free(seq);
}

/* Every level of KS 1D (N=320, L=6, r=6, K=6) and KS 2D (N=64, L=4, r=10),
 * cnn and lc, ReLU and linear layers, plus K = 0 and odd shapes. */
static void test_level_fwd(void **state) {
    (void)state;
    for (int local = 0; local <= 1; local++) {
        for (int l = 2; l <= 6; l++) {
            int nb = l == 2 ? 2 : 3;
            check_level(1, 1 << l, 320 >> l, 6, nb, local, 6, 0x3f, 19, 500 + l);
            if (l == 6) check_level(1, 1 << l, 320 >> l, 6, nb, local, 6, 0x15, 1, 510 + l);
            if (l == 4) check_level(1, 1 << l, 320 >> l, 6, nb, local, 6, 0x3f, 33, 520 + l);
        }
        for (int l = 2; l <= 4; l++) /* the finest level with one (partial) block: the cost */
            check_level(2, 1 << l, 64 >> l, 10, l == 2 ? 2 : 3, local, 6, 0x3f, l < 4 ? 17 : 5,
                        600 + l);
        check_level(1, 5, 3, 4, 1, local, 0, 0, 7, 700);   /* no kernel layers */
        check_level(1, 6, 7, 5, 4, local, 2, 0x1, 18, 710); /* nb > n/2: halo wraps twice */
        check_level(2, 3, 2, 3, 1, local, 3, 0x5, 5, 720);
    }
}

/* The fused adjacent op (adjacent_fwd) against the reference sequence
 * gather, K x kernel_fwd, scatter_add (mnnh_ref_adjacent_fwd, and the ref
 * backend's ops called one by one), accumulated into a non-zero u, on every
 * instruction set, 1 and 2 threads, bit-identical from run to run and to the
 * cpu backend's own per-op sequence. relu_mask bit k: ReLU after layer k. */
static void check_adjacent(int dim, int n, int s, int nb, int local, int K, unsigned relu_mask,
                           int B, uint64_t seed) {
    mnnh_geom gb = {dim, n, 0, 0, s, 0, 0, 0};
    mnnh_geom gk[8];
    assert_true(K <= 8);
    size_t P = mnnh_geom_positions(&gb), S = mnnh_geom_block(&gb), G = mnnh_geom_grid(&gb);
    size_t loc = local ? P : 1, T = 0, act = (size_t)B * G;
    int C = (int)S;
    float *Wk[8], *bk[8];
    for (int k = 0; k < K; k++) {
        gk[k] = (mnnh_geom){dim, n, C, C, 1, nb, local, (int)((relu_mask >> k) & 1)};
        T = mnnh_geom_taps(&gk[k]);
        Wk[k] = TU_NEWF(loc * C * C * T);
        bk[k] = TU_NEWF(loc * C);
        tu_fill(Wk[k], loc * C * C * T, seed + 10 + k, -0.3, 0.3);
        tu_fill(bk[k], loc * C, seed + 20 + k, -0.2, 0.3);
    }
    float *v = TU_NEWF((size_t)B * G), *u0 = TU_NEWF((size_t)B * G);
    tu_fill(v, (size_t)B * G, seed, -1, 1);
    tu_fill(u0, (size_t)B * G, seed + 1, -1, 1);
    mnnh_adjacent_params ap = {&gb, gk, K, (const float *const *)Wk, (const float *const *)bk};
    assert_int_equal(mnnh_adjacent_params_check(&ap), 0);
    float *ref = TU_NEWF((size_t)B * G), *ref2 = TU_NEWF((size_t)B * G);
    float *work = TU_NEWF(2 * act), *t0 = TU_NEWF(act), *t1 = TU_NEWF(act);
    float *w0 = TU_NEWF(act), *w1 = TU_NEWF(act);
    memcpy(ref, u0, sizeof(float) * B * G);
    mnnh_ref_adjacent_fwd(&ap, B, v, ref, work);
    memcpy(ref2, u0, sizeof(float) * B * G);
    const mnnh_backend_ops *ro = ref_be->ops, *co = cpu_be->ops;
    assert_null(ro->adjacent_fwd); /* optional: not filled in for "ref" */
    assert_non_null(co->adjacent_fwd);
    assert_int_equal(ro->gather(ref_be, &gb, B, v, t0), MNNH_OK);
    for (int k = 0; k < K; k++) {
        assert_int_equal(ro->kernel_fwd(ref_be, &gk[k], B, t0, Wk[k], bk[k], t1), MNNH_OK);
        float *x = t0;
        t0 = t1, t1 = x;
    }
    assert_int_equal(ro->scatter_add(ref_be, &gb, B, t0, ref2), MNNH_OK);
    assert_memory_equal(ref, ref2, sizeof(float) * B * G);
    float *got = TU_NEWF((size_t)B * G), *again = TU_NEWF((size_t)B * G);
    float *seq = TU_NEWF((size_t)B * G);
    char what[200];
    snprintf(what, sizeof what, "adjacent_fwd %dD %s n=%d s=%d nb=%d K=%d relu=%#x B=%d", dim,
             local ? "lc" : "cnn", n, s, nb, K, relu_mask, B);
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        if (mnnh_cpu_kernels_set_isa(isas[ii]) != 0) continue;
        for (size_t ti = 0; ti < sizeof thread_counts / sizeof thread_counts[0]; ti++) {
            int th = thread_counts[ti];
            set_threads(th);
            memcpy(got, u0, sizeof(float) * B * G);
            memcpy(again, u0, sizeof(float) * B * G);
            assert_int_equal(co->adjacent_fwd(cpu_be, &ap, B, v, got, w0, w1), MNNH_OK);
            assert_int_equal(co->adjacent_fwd(cpu_be, &ap, B, v, again, w0, w1), MNNH_OK);
            compare(what, isas[ii], th, got, ref, (size_t)B * G);
            assert_memory_equal(got, again, sizeof(float) * B * G);
            /* the cpu backend's per-op sequence: same arithmetic, same bits */
            memcpy(seq, u0, sizeof(float) * B * G);
            assert_int_equal(co->gather(cpu_be, &gb, B, v, t0), MNNH_OK);
            for (int k = 0; k < K; k++) {
                assert_int_equal(co->kernel_fwd(cpu_be, &gk[k], B, t0, Wk[k], bk[k], t1), MNNH_OK);
                float *x = t0;
                t0 = t1, t1 = x;
            }
            assert_int_equal(co->scatter_add(cpu_be, &gb, B, t0, seq), MNNH_OK);
            assert_memory_equal(got, seq, sizeof(float) * B * G);
        }
    }
    mnnh_cpu_kernels_set_isa(NULL);
    set_threads(1);
    if (K > 0) { /* inconsistent geometries are refused */
        gk[0].cin = C + 1;
        assert_int_equal(mnnh_adjacent_params_check(&ap), -1);
        assert_int_equal(co->adjacent_fwd(cpu_be, &ap, B, v, got, w0, w1), MNNH_ERR_ARG);
        gk[0].cin = C;
    }
    for (int k = 0; k < K; k++) free(Wk[k]), free(bk[k]);
    free(v), free(u0), free(ref), free(ref2), free(work), free(t0), free(t1), free(w0), free(w1);
    free(got), free(again), free(seq);
}

/* The adjacent part of KS 1D (n=64, m=5) and KS 2D (n=16, m=4: 16 channels),
 * cnn (fused) and lc (the per-op fallback), the last layer linear, plus
 * K = 0, odd shapes (n not a multiple of the vector width) and nb = 2. */
static void test_adjacent_fwd(void **state) {
    (void)state;
    for (int local = 0; local <= 1; local++) {
        check_adjacent(1, 64, 5, 1, local, 6, 0x1f, 19, 800);
        check_adjacent(1, 64, 5, 1, local, 6, 0x1f, 1, 801);
        check_adjacent(2, 16, 4, 1, local, 6, 0x1f, 17, 810);
        check_adjacent(2, 16, 4, 1, local, 6, 0x1f, 2, 811);
        check_adjacent(2, 16, 4, 2, local, 2, 0x1, 3, 812);
        check_adjacent(1, 32, 3, 1, local, 0, 0, 5, 820);
        check_adjacent(2, 6, 3, 1, local, 3, 0x5, 4, 821);
        check_adjacent(1, 48, 2, 3, local, 2, 0x2, 3, 822);
    }
}

/* The model's inference entry point (fused levels on "cpu") gives the same
 * bits as mnnh_model_forward, and a backward may not follow it. */
static void test_model_infer(void **state) {
    (void)state;
    for (int local = 0; local <= 1; local++)
        for (int th = 1; th <= 2; th++) {
            mnnh_arch a;
            mnnh_arch_set(&a, 1, 6, 5, 6, 6, local ? MNNH_LC : MNNH_CNN);
            mnnh_model *mc;
            assert_int_equal(mnnh_model_create(&mc, &a, cpu_be), MNNH_OK);
            assert_int_equal(mnnh_model_init_params(mc, 7), MNNH_OK);
            const int B = 37;
            assert_int_equal(mnnh_model_reserve(mc, B), MNNH_OK);
            size_t G = 320 * B;
            float *v = TU_NEWF(G), *u1 = TU_NEWF(G), *u2 = TU_NEWF(G);
            tu_fill(v, G, 8, -0.5, 0.5);
            set_threads(th);
            assert_int_equal(mnnh_model_infer(mc, B, v, u2), MNNH_OK);
            assert_int_not_equal(mnnh_model_backward(mc, B, u2), MNNH_OK);
            assert_int_equal(mnnh_model_forward(mc, B, v, u1), MNNH_OK);
            assert_memory_equal(u1, u2, sizeof(float) * G);
            set_threads(1);
            free(v), free(u1), free(u2);
            mnnh_model_free(mc);
        }
}

/* The whole KS 1D model: a training evaluation on "cpu" equals "ref". */
static void test_model_train_batch(void **state) {
    (void)state;
    for (int local = 0; local <= 1; local++) {
        mnnh_arch a;
        mnnh_arch_set(&a, 1, 6, 5, 6, 6, local ? MNNH_LC : MNNH_CNN);
        mnnh_model *mr, *mc;
        assert_int_equal(mnnh_model_create(&mr, &a, ref_be), MNNH_OK);
        assert_int_equal(mnnh_model_create(&mc, &a, cpu_be), MNNH_OK);
        assert_int_equal(mnnh_model_init_params(mr, 5), MNNH_OK);
        assert_int_equal(mnnh_model_init_params(mc, 5), MNNH_OK);
        const int B = 21;
        assert_int_equal(mnnh_model_reserve(mr, B), MNNH_OK);
        assert_int_equal(mnnh_model_reserve(mc, B), MNNH_OK);
        size_t G = 320 * B, np = mnnh_model_nparams(mr);
        float *v = TU_NEWF(G), *t = TU_NEWF(G), *g1 = TU_NEWF(np), *g2 = TU_NEWF(np);
        tu_fill(v, G, 3, -0.5, 0.5);
        tu_fill(t, G, 4, 0.1, 1.0);
        double e2r, e1r, e2c, e1c;
        set_threads(2);
        assert_int_equal(mnnh_model_train_batch(mr, B, v, t, B, &e2r, &e1r), MNNH_OK);
        assert_int_equal(mnnh_model_train_batch(mc, B, v, t, B, &e2c, &e1c), MNNH_OK);
        set_threads(1);
        assert_true(fabs(e2r - e2c) <= 1e-4 * fabs(e2r));
        assert_int_equal(mnnh_model_get_grads(mr, g1), MNNH_OK);
        assert_int_equal(mnnh_model_get_grads(mc, g2), MNNH_OK);
        TU_CHECK_REL(local ? "lc model gradient" : "cnn model gradient",
                     tu_reldiff_ff(g2, g1, np, 1e-6), 1e-4);
        free(v), free(t), free(g1), free(g2);
        mnnh_model_free(mr);
        mnnh_model_free(mc);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ks1d_cnn),     cmocka_unit_test(test_ks1d_lc),
        cmocka_unit_test(test_ks2d_cnn),     cmocka_unit_test(test_ks2d_lc),
        cmocka_unit_test(test_odd_shapes),   cmocka_unit_test(test_lc_split),
        cmocka_unit_test(test_dense_shapes),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_model_train_batch), cmocka_unit_test(test_level_fwd),
        cmocka_unit_test(test_model_infer), cmocka_unit_test(test_adjacent_fwd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
