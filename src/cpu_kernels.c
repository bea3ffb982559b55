/* cpu_kernels.c: the "cpu" backend's op table.
 *
 * Layers are split over the batch across OpenMP threads with a fixed, static
 * partition; each thread accumulates parameter gradients into its own scratch
 * slice, and the slices are summed in thread order, so results are identical
 * from run to run at a given thread count (bit-exact resume needs that).
 * The scratch grows on first use and is then reused: no allocation per step. */
#include <stdlib.h>
#include <string.h>

#include "mnnh/backend.h"
#include "mnnh/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    float *buf;
    size_t cap; /* floats */
} cpu_scratch;

static _Thread_local cpu_scratch scratch; /* per calling (MPI rank) thread */

static int nthreads_for(int B) {
#ifdef _OPENMP
    int t = omp_get_max_threads();
    return t < B ? t : (B > 0 ? B : 1);
#else
    (void)B;
    return 1;
#endif
}

static float *scratch_get(size_t floats) {
    if (floats > scratch.cap) {
        free(scratch.buf);
        scratch.buf = aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
        scratch.cap = scratch.buf ? floats : 0;
    }
    return scratch.buf;
}

/* Sample range [lo, hi) of thread t among nt for a batch of B. */
static void slice(int B, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long)B * t / nt);
    *hi = (int)((long)B * (t + 1) / nt);
}

typedef void (*bwd_fn)(const mnnh_geom *, int B, const float *a, const float *W,
                       const float *c, const float *d, float *din, float *dW, float *db,
                       size_t a_stride, size_t c_stride, size_t d_stride, size_t din_stride);

/* Run a backward over batch slices with private dW/db, then reduce. */
static mnnh_status parallel_param_grads(int B, size_t nW, size_t nb, float *dW, float *db,
                                        void (*body)(void *ctx, int lo, int hi, float *dW,
                                                     float *db),
                                        void *ctx) {
    int nt = nthreads_for(B);
    if (nt <= 1) {
        body(ctx, 0, B, dW, db);
        return MNNH_OK;
    }
    float *s = scratch_get((nW + nb) * (size_t)nt);
    if (!s) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch");
    memset(s, 0, sizeof(float) * (nW + nb) * nt);
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        int lo, hi;
        slice(B, t, nt, &lo, &hi);
        float *mine = s + (nW + nb) * (size_t)t;
        body(ctx, lo, hi, mine, mine + nW);
    }
    for (int t = 0; t < nt; t++) {
        const float *mine = s + (nW + nb) * (size_t)t;
        for (size_t i = 0; i < nW; i++) dW[i] += mine[i];
        for (size_t i = 0; i < nb; i++) db[i] += mine[nW + i];
    }
    return MNNH_OK;
}

/* ---- layer ops: forward splits the batch, backward uses private grads ---- */
typedef struct {
    const mnnh_geom *g;
    const float *a, *W, *c, *d;
    float *din;
    size_t sa, sc, sd, sdin; /* per-sample strides of a, c, d, din */
    int kind;                /* 0 restrict, 1 kernel, 2 interp */
} bwd_ctx;

static void bwd_body(void *vctx, int lo, int hi, float *dW, float *db) {
    bwd_ctx *x = vctx;
    int n = hi - lo;
    if (n <= 0) return;
    const float *a = x->a + x->sa * lo, *c = x->c ? x->c + x->sc * lo : NULL;
    const float *d = x->d + x->sd * lo;
    float *din = x->din ? x->din + x->sdin * lo : NULL;
    if (x->kind == 0) mnnh_ref_restrict_bwd(x->g, n, a, x->W, d, din, dW, db);
    else if (x->kind == 1) mnnh_ref_kernel_bwd(x->g, n, a, x->W, c, d, din, dW, db);
    else mnnh_ref_interp_bwd(x->g, n, a, x->W, d, din, dW, db);
}

static size_t param_w(const mnnh_geom *g, int kind) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), T = mnnh_geom_taps(g);
    size_t per = kind == 0 ? (size_t)g->cout * S
                 : kind == 1 ? (size_t)g->cout * g->cin * T
                             : S * g->cin;
    return g->local ? per * P : per;
}
static size_t param_b(const mnnh_geom *g, int kind) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g);
    size_t per = kind == 2 ? S : (size_t)g->cout;
    return g->local ? per * P : per;
}

#define FWD_SPLIT(call_with_lo_n)                         \
    do {                                                  \
        int nt = nthreads_for(B);                         \
        _Pragma("omp parallel for num_threads(nt) schedule(static)") \
        for (int t = 0; t < nt; t++) {                    \
            int lo, hi;                                   \
            slice(B, t, nt, &lo, &hi);                    \
            if (hi > lo) { int n = hi - lo; call_with_lo_n; } \
        }                                                 \
    } while (0)

static mnnh_status cpu_restrict_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                    const float *W, const float *b, float *out) {
    size_t G = mnnh_geom_grid(g), O = (size_t)g->cout * mnnh_geom_positions(g);
    FWD_SPLIT(mnnh_ref_restrict_fwd(g, n, v + G * lo, W, b, out + O * lo));
    return MNNH_OK;
}
static mnnh_status cpu_kernel_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  const float *W, const float *b, float *out) {
    size_t P = mnnh_geom_positions(g), I = (size_t)g->cin * P, O = (size_t)g->cout * P;
    FWD_SPLIT(mnnh_ref_kernel_fwd(g, n, in + I * lo, W, b, out + O * lo));
    return MNNH_OK;
}
static mnnh_status cpu_interp_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                  const float *W, const float *b, float *u) {
    size_t G = mnnh_geom_grid(g), I = (size_t)g->cin * mnnh_geom_positions(g);
    FWD_SPLIT(mnnh_ref_interp_fwd(g, n, z + I * lo, W, b, u + G * lo));
    return MNNH_OK;
}
static mnnh_status cpu_gather(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                              float *out) {
    size_t G = mnnh_geom_grid(g);
    FWD_SPLIT(mnnh_ref_gather(g, n, v + G * lo, out + G * lo));
    return MNNH_OK;
}
static mnnh_status cpu_scatter_add(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                   float *u) {
    size_t G = mnnh_geom_grid(g);
    FWD_SPLIT(mnnh_ref_scatter_add(g, n, in + G * lo, u + G * lo));
    return MNNH_OK;
}

static mnnh_status cpu_restrict_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                    const float *W, const float *dout, float *dv, float *dW,
                                    float *db) {
    size_t G = mnnh_geom_grid(g), O = (size_t)g->cout * mnnh_geom_positions(g);
    bwd_ctx x = {g, v, W, NULL, dout, dv, G, 0, O, G, 0};
    return parallel_param_grads(B, param_w(g, 0), param_b(g, 0), dW, db, bwd_body, &x);
}
static mnnh_status cpu_kernel_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  const float *W, const float *out, const float *dout,
                                  float *din, float *dW, float *db) {
    size_t P = mnnh_geom_positions(g), I = (size_t)g->cin * P, O = (size_t)g->cout * P;
    bwd_ctx x = {g, in, W, out, dout, din, I, O, O, I, 1};
    return parallel_param_grads(B, param_w(g, 1), param_b(g, 1), dW, db, bwd_body, &x);
}
static mnnh_status cpu_interp_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                  const float *W, const float *du, float *dz, float *dW,
                                  float *db) {
    size_t G = mnnh_geom_grid(g), I = (size_t)g->cin * mnnh_geom_positions(g);
    bwd_ctx x = {g, z, W, NULL, du, dz, I, 0, G, I, 2};
    return parallel_param_grads(B, param_w(g, 2), param_b(g, 2), dW, db, bwd_body, &x);
}

/* ---- elementwise ops: the reference is already memory bound ---- */
static mnnh_status cpu_affine(mnnh_backend *be, size_t n, const float *x, float scale,
                              float shift, float *y) {
    mnnh_ref_affine(n, x, scale, shift, y);
    return MNNH_OK;
}
static mnnh_status cpu_density_fwd(mnnh_backend *be, int B, size_t len, const float *y,
                                   float ne, float cv, float *rho, float *sums) {
    mnnh_ref_density_fwd(B, len, y, ne, cv, rho, sums);
    return MNNH_OK;
}
static mnnh_status cpu_density_bwd(mnnh_backend *be, int B, size_t len, const float *y,
                                   const float *rho, const float *sums, float ne, float cv,
                                   const float *drho, float *dy) {
    mnnh_ref_density_bwd(B, len, y, rho, sums, ne, cv, drho, dy);
    return MNNH_OK;
}
static mnnh_status cpu_relerr(mnnh_backend *be, int B, size_t len, const float *pred,
                              const float *target, float *err2, float *dpred, float gs) {
    mnnh_ref_relerr(B, len, pred, target, err2, dpred, gs);
    return MNNH_OK;
}
static mnnh_status cpu_nadam_update(mnnh_backend *be, size_t n, float *p, const float *g,
                                    float *m, float *v, float b1, float b2, float cg, float cm,
                                    float bias2, float eps) {
    mnnh_ref_nadam_update(n, p, g, m, v, b1, b2, cg, cm, bias2, eps);
    return MNNH_OK;
}

const mnnh_backend_ops mnnh_backend_cpu_ops = {
    .name = "cpu",
    .restrict_fwd = cpu_restrict_fwd, .restrict_bwd = cpu_restrict_bwd,
    .kernel_fwd = cpu_kernel_fwd, .kernel_bwd = cpu_kernel_bwd,
    .interp_fwd = cpu_interp_fwd, .interp_bwd = cpu_interp_bwd,
    .gather = cpu_gather, .scatter_add = cpu_scatter_add,
    .affine = cpu_affine, .density_fwd = cpu_density_fwd, .density_bwd = cpu_density_bwd,
    .relerr = cpu_relerr, .nadam_update = cpu_nadam_update,
};
