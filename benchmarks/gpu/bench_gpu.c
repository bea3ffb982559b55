/* bench_gpu.c: training and inference throughput of one MNN-H configuration on
 * each requested backend (default: KS 2D, N=64, L=4, m=4, r=10, K=6, cnn;
 * training batch 160 with NAdam, inference batch 1000, as in DESIGN.md's
 * PyTorch figures). Random inputs / targets: throughput does not depend on
 * the data. One line per backend and mode, machine-readable:
 *
 *   bench backend=cuda mode=train batch=160 steps=50 seconds=0.41 samples_per_s=19512.2
 *
 * Usage: bench_gpu [--backends cuda,cpu] [--dim 2 --L 4 --m 4 --r 10 --K 6]
 *                  [--variant cnn|lc] [--train-batch 160] [--infer-batch 1000]
 *                  [--seconds 3] [--op-times]
 * --op-times adds lines "op backend=... mode=... op=NAME calls_per_step=...
 * ms_per_step=... share=..." (see op_times_install). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mnnh/arch.h"
#include "mnnh/backend.h"
#include "mnnh/model.h"
#include "mnnh/nadam.h"
#include "mnnh/rng.h"

#ifdef MNNH_HAVE_CUDA
#include "../../src/cuda/cuda_backend.h"
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHECK(call)                                                               \
    do {                                                                          \
        mnnh_status st_ = (call);                                                 \
        if (st_ != MNNH_OK) {                                                     \
            fprintf(stderr, "bench_gpu: %s: %s\n", #call, mnnh_error_msg());      \
            return 1;                                                             \
        }                                                                         \
    } while (0)

typedef struct {
    int dim, L, m, r, K;
    mnnh_variant var;
    int train_batch, infer_batch;
    double seconds;
    int op_times;
} config;

/* ------------------------------------------------------------ --op-times
 * Every op of the backend's table, timed between two syncs of the backend
 * (so on a GPU each time is the op's kernels plus one launch latency, and the
 * step runs slower than without it). Ops that a backend calls from inside
 * another op are counted in the outer one. The model must not run ops
 * concurrently, so concurrent_parts is cleared. A profile that needs no ncu. */
enum {
    OT_RESTRICT_FWD, OT_RESTRICT_BWD, OT_KERNEL_FWD, OT_KERNEL_BWD, OT_INTERP_FWD,
    OT_INTERP_BWD, OT_GATHER, OT_SCATTER_ADD, OT_AFFINE, OT_DENSITY_FWD, OT_DENSITY_BWD,
    OT_RELERR, OT_NADAM, OT_LEVEL_FWD, OT_ADJACENT_FWD, OT_COPY, OT_ZERO, OT_N
};
static const char *const ot_name[OT_N] = {
    "restrict_fwd", "restrict_bwd", "kernel_fwd", "kernel_bwd", "interp_fwd", "interp_bwd",
    "gather", "scatter_add", "affine", "density_fwd", "density_bwd", "relerr", "nadam_update",
    "level_fwd", "adjacent_fwd", "copy", "zero"};
static const mnnh_backend_ops *ot_orig;
static mnnh_backend_ops ot_ops;
static double ot_sec[OT_N];
static long ot_calls[OT_N];
static int ot_depth;

#define OT_TIME(k, call)                                                          \
    do {                                                                          \
        if (ot_depth++ > 0) {                                                     \
            mnnh_status r_ = (call);                                              \
            ot_depth--;                                                           \
            return r_;                                                            \
        }                                                                         \
        mnnh_status r_ = ot_orig->sync(be);                                       \
        double t0_ = now();                                                       \
        if (r_ == MNNH_OK) r_ = (call);                                           \
        if (r_ == MNNH_OK) r_ = ot_orig->sync(be);                                \
        ot_sec[k] += now() - t0_;                                                 \
        ot_calls[k]++;                                                            \
        ot_depth--;                                                               \
        return r_;                                                                \
    } while (0)

static mnnh_status ot_restrict_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                   const float *W, const float *b, float *out) {
    OT_TIME(OT_RESTRICT_FWD, ot_orig->restrict_fwd(be, g, B, v, W, b, out));
}
static mnnh_status ot_restrict_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                   const float *W, const float *dout, float *dv, float *dW,
                                   float *db) {
    OT_TIME(OT_RESTRICT_BWD, ot_orig->restrict_bwd(be, g, B, v, W, dout, dv, dW, db));
}
static mnnh_status ot_kernel_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                 const float *W, const float *b, float *out) {
    OT_TIME(OT_KERNEL_FWD, ot_orig->kernel_fwd(be, g, B, in, W, b, out));
}
static mnnh_status ot_kernel_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                 const float *W, const float *out, const float *dout, float *din,
                                 float *dW, float *db) {
    OT_TIME(OT_KERNEL_BWD, ot_orig->kernel_bwd(be, g, B, in, W, out, dout, din, dW, db));
}
static mnnh_status ot_interp_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                 const float *W, const float *b, float *u) {
    OT_TIME(OT_INTERP_FWD, ot_orig->interp_fwd(be, g, B, z, W, b, u));
}
static mnnh_status ot_interp_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                 const float *W, const float *du, float *dz, float *dW,
                                 float *db) {
    OT_TIME(OT_INTERP_BWD, ot_orig->interp_bwd(be, g, B, z, W, du, dz, dW, db));
}
static mnnh_status ot_gather(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                             float *out) {
    OT_TIME(OT_GATHER, ot_orig->gather(be, g, B, v, out));
}
static mnnh_status ot_scatter_add(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  float *u) {
    OT_TIME(OT_SCATTER_ADD, ot_orig->scatter_add(be, g, B, in, u));
}
static mnnh_status ot_affine(mnnh_backend *be, size_t n, const float *x, float scale,
                             float shift, float *y) {
    OT_TIME(OT_AFFINE, ot_orig->affine(be, n, x, scale, shift, y));
}
static mnnh_status ot_density_fwd(mnnh_backend *be, int B, size_t len, const float *y, float ne,
                                  float cv, float *rho, float *sums) {
    OT_TIME(OT_DENSITY_FWD, ot_orig->density_fwd(be, B, len, y, ne, cv, rho, sums));
}
static mnnh_status ot_density_bwd(mnnh_backend *be, int B, size_t len, const float *y,
                                  const float *rho, const float *sums, float ne, float cv,
                                  const float *drho, float *dy) {
    OT_TIME(OT_DENSITY_BWD, ot_orig->density_bwd(be, B, len, y, rho, sums, ne, cv, drho, dy));
}
static mnnh_status ot_relerr(mnnh_backend *be, int B, size_t len, const float *pred,
                             const float *target, float *err2, float *dpred, float gs) {
    OT_TIME(OT_RELERR, ot_orig->relerr(be, B, len, pred, target, err2, dpred, gs));
}
static mnnh_status ot_nadam(mnnh_backend *be, size_t n, float *p, const float *g, float *m,
                            float *v, float b1, float b2, float cg, float cm, float bias2,
                            float eps) {
    OT_TIME(OT_NADAM, ot_orig->nadam_update(be, n, p, g, m, v, b1, b2, cg, cm, bias2, eps));
}
static mnnh_status ot_level_fwd(mnnh_backend *be, const mnnh_level_params *lp, int B,
                                const float *v, float *u, float *w0, float *w1) {
    OT_TIME(OT_LEVEL_FWD, ot_orig->level_fwd(be, lp, B, v, u, w0, w1));
}
static mnnh_status ot_adjacent_fwd(mnnh_backend *be, const mnnh_adjacent_params *ap, int B,
                                   const float *v, float *u, float *w0, float *w1) {
    OT_TIME(OT_ADJACENT_FWD, ot_orig->adjacent_fwd(be, ap, B, v, u, w0, w1));
}
static mnnh_status ot_copy(mnnh_backend *be, void *dst, const void *src, size_t bytes) {
    OT_TIME(OT_COPY, ot_orig->copy(be, dst, src, bytes));
}
static mnnh_status ot_zero(mnnh_backend *be, void *p, size_t bytes) {
    OT_TIME(OT_ZERO, ot_orig->zero(be, p, bytes));
}

/* Puts the timing table in front of be's ops (before the model is created). */
static void op_times_install(mnnh_backend *be) {
    ot_orig = be->ops;
    ot_ops = *be->ops;
    ot_ops.restrict_fwd = ot_restrict_fwd;
    ot_ops.restrict_bwd = ot_restrict_bwd;
    ot_ops.kernel_fwd = ot_kernel_fwd;
    ot_ops.kernel_bwd = ot_kernel_bwd;
    ot_ops.interp_fwd = ot_interp_fwd;
    ot_ops.interp_bwd = ot_interp_bwd;
    ot_ops.gather = ot_gather;
    ot_ops.scatter_add = ot_scatter_add;
    ot_ops.affine = ot_affine;
    ot_ops.density_fwd = ot_density_fwd;
    ot_ops.density_bwd = ot_density_bwd;
    ot_ops.relerr = ot_relerr;
    ot_ops.nadam_update = ot_nadam;
    ot_ops.level_fwd = ot_orig->level_fwd ? ot_level_fwd : NULL;
    ot_ops.adjacent_fwd = ot_orig->adjacent_fwd ? ot_adjacent_fwd : NULL;
    ot_ops.copy = ot_copy;
    ot_ops.zero = ot_zero;
    be->ops = &ot_ops;
    be->concurrent_parts = 0;
}

static void op_times_reset(void) {
    memset(ot_sec, 0, sizeof ot_sec);
    memset(ot_calls, 0, sizeof ot_calls);
}

/* One line per op that ran: calls and milliseconds per step, share of the
 * timed total; then the untimed remainder of the loop's wall time. */
static void op_times_print(const char *backend, const char *mode, int steps, double wall) {
    double total = 0;
    for (int k = 0; k < OT_N; k++) total += ot_sec[k];
    for (int k = 0; k < OT_N; k++)
        if (ot_calls[k])
            printf("op backend=%s mode=%s op=%s calls_per_step=%.1f ms_per_step=%.4f share=%.3f\n",
                   backend, mode, ot_name[k], (double)ot_calls[k] / steps,
                   1e3 * ot_sec[k] / steps, total > 0 ? ot_sec[k] / total : 0.0);
    printf("op backend=%s mode=%s op=(outside ops) ms_per_step=%.4f\n", backend, mode,
           1e3 * (wall - total) / steps);
}

static void fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng r;
    mnnh_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)mnnh_rng_range(&r, lo, hi);
}

static int bench_backend(const char *name, const config *c) {
    mnnh_backend *be = NULL;
    CHECK(mnnh_backend_create(&be, name, 0));
    if (c->op_times) op_times_install(be);
    char desc[256] = "";
#ifdef MNNH_HAVE_CUDA
    if (!strcmp(be->ops->name, "cuda")) mnnh_cuda_device_describe(be->device, desc, sizeof desc);
#endif
    if (!desc[0]) snprintf(desc, sizeof desc, "%d CPU thread(s)", be->threads);
    mnnh_arch a;
    mnnh_arch_set(&a, c->dim, c->L, c->m, c->r, c->K, c->var);
    CHECK(mnnh_arch_validate(&a));
    mnnh_model *m = NULL;
    CHECK(mnnh_model_create(&m, &a, be));
    int maxB = c->train_batch > c->infer_batch ? c->train_batch : c->infer_batch;
    CHECK(mnnh_model_reserve(m, maxB));
    CHECK(mnnh_model_init_params(m, 1));
    size_t G = mnnh_arch_grid_size(&a), n = (size_t)maxB * G;
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    mnnh_nadam *opt = NULL;
    CHECK(mnnh_nadam_create(&opt, be, mnnh_model_nparams(m), &h));
    float *hv = malloc(sizeof(float) * n), *ht = malloc(sizeof(float) * n);
    if (!hv || !ht) return 1;
    fill(hv, n, 1, 0, 1);
    fill(ht, n, 2, 0.1, 1);
    float *v, *t, *u;
    CHECK(mnnh_backend_alloc(be, (void **)&v, sizeof(float) * n));
    CHECK(mnnh_backend_alloc(be, (void **)&t, sizeof(float) * n));
    CHECK(mnnh_backend_alloc(be, (void **)&u, sizeof(float) * n));
    CHECK(mnnh_backend_upload(be, v, hv, sizeof(float) * n));
    CHECK(mnnh_backend_upload(be, t, ht, sizeof(float) * n));
    printf("# backend=%s device=\"%s\" params=%zu forward_GFLOP_per_sample=%.4f\n", be->ops->name,
           desc, mnnh_model_nparams(m), mnnh_model_forward_flops(m) * 1e-9);

    /* training: zero grads, forward + loss + backward, NAdam (the loss download syncs) */
    int B = c->train_batch;
    double e2, e1;
    for (int w = 0; w < 2; w++) { /* warm-up: workspaces, cuBLAS, caches */
        CHECK(mnnh_model_zero_grads(m));
        CHECK(mnnh_model_train_batch(m, B, v, t, B, &e2, &e1));
        CHECK(mnnh_nadam_step(opt, mnnh_model_params(m), mnnh_model_grads(m)));
    }
    CHECK(be->ops->sync(be));
    op_times_reset();
    int steps = 0;
    double t0 = now(), el = 0;
    do {
        CHECK(mnnh_model_zero_grads(m));
        CHECK(mnnh_model_train_batch(m, B, v, t, B, &e2, &e1));
        CHECK(mnnh_nadam_step(opt, mnnh_model_params(m), mnnh_model_grads(m)));
        steps++;
        if (steps % 4 == 0 || steps < 4) {
            CHECK(be->ops->sync(be));
            el = now() - t0;
        }
    } while (el < c->seconds);
    CHECK(be->ops->sync(be));
    el = now() - t0;
    printf("bench backend=%s mode=train batch=%d steps=%d seconds=%.3f samples_per_s=%.1f loss=%.4g\n",
           be->ops->name, B, steps, el, steps * (double)B / el, e2 / B);
    if (c->op_times) op_times_print(be->ops->name, "train", steps, el);

    /* inference: forward only */
    B = c->infer_batch;
    CHECK(mnnh_model_forward(m, B, v, u));
    CHECK(be->ops->sync(be));
    op_times_reset();
    steps = 0;
    t0 = now();
    el = 0;
    do {
        CHECK(mnnh_model_forward(m, B, v, u));
        steps++;
        if (steps % 4 == 0 || steps < 4) {
            CHECK(be->ops->sync(be));
            el = now() - t0;
        }
    } while (el < c->seconds);
    CHECK(be->ops->sync(be));
    el = now() - t0;
    printf("bench backend=%s mode=infer batch=%d steps=%d seconds=%.3f samples_per_s=%.1f\n",
           be->ops->name, B, steps, el, steps * (double)B / el);
    if (c->op_times) op_times_print(be->ops->name, "infer", steps, el);
    fflush(stdout);

    mnnh_backend_release(be, v);
    mnnh_backend_release(be, t);
    mnnh_backend_release(be, u);
    mnnh_nadam_free(opt);
    mnnh_model_free(m);
    mnnh_backend_free(be);
    free(hv);
    free(ht);
    return 0;
}

int main(int argc, char **argv) {
    config c = {2, 4, 4, 10, 6, MNNH_CNN, 160, 1000, 3.0, 0};
    char backends[256] = "cuda,cpu";
    static const struct option opts[] = {
        {"backends", required_argument, 0, 'b'}, {"dim", required_argument, 0, 'd'},
        {"L", required_argument, 0, 'L'},        {"m", required_argument, 0, 'm'},
        {"r", required_argument, 0, 'r'},        {"K", required_argument, 0, 'K'},
        {"variant", required_argument, 0, 'v'},  {"train-batch", required_argument, 0, 't'},
        {"infer-batch", required_argument, 0, 'i'}, {"seconds", required_argument, 0, 's'},
        {"op-times", no_argument, 0, 'o'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'b': snprintf(backends, sizeof backends, "%s", optarg); break;
        case 'd': c.dim = atoi(optarg); break;
        case 'L': c.L = atoi(optarg); break;
        case 'm': c.m = atoi(optarg); break;
        case 'r': c.r = atoi(optarg); break;
        case 'K': c.K = atoi(optarg); break;
        case 'v':
            if (mnnh_variant_parse(optarg, &c.var) != MNNH_OK) {
                fprintf(stderr, "bench_gpu: --variant %s: %s\n", optarg, mnnh_error_msg());
                return 2;
            }
            break;
        case 't': c.train_batch = atoi(optarg); break;
        case 'i': c.infer_batch = atoi(optarg); break;
        case 's': c.seconds = atof(optarg); break;
        case 'o': c.op_times = 1; break;
        case 'h':
            printf("usage: bench_gpu [--backends cuda,cpu] [--dim D --L L --m M --r R --K K]\n"
                   "                 [--variant cnn|lc] [--train-batch B] [--infer-batch B]\n"
                   "                 [--seconds S] [--op-times]\n"
                   "--op-times: also time every backend op between two syncs (op lines)\n");
            return 0;
        default: return 2;
        }
    }
    if (c.train_batch < 1 || c.infer_batch < 1 || !(c.seconds > 0)) {
        fprintf(stderr, "bench_gpu: batches must be >= 1 and --seconds > 0\n");
        return 2;
    }
    printf("# MNN-H dim=%d L=%d m=%d N=%d r=%d K=%d variant=%s train_batch=%d infer_batch=%d\n",
           c.dim, c.L, c.m, (1 << c.L) * c.m, c.r, c.K, mnnh_variant_name(c.var), c.train_batch,
           c.infer_batch);
    int rc = 0;
    for (char *save = NULL, *b = strtok_r(backends, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
        if (!strcmp(b, "cuda") && mnnh_cuda_device_count() <= 0) {
            printf("# backend=cuda skipped: no CUDA GPU visible\n");
            continue;
        }
        if (bench_backend(b, &c)) rc = 1;
    }
    return rc;
}
