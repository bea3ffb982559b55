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
 *                  [--seconds 3] */
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
} config;

static void fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng r;
    mnnh_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)mnnh_rng_range(&r, lo, hi);
}

static int bench_backend(const char *name, const config *c) {
    mnnh_backend *be = NULL;
    CHECK(mnnh_backend_create(&be, name, 0));
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

    /* inference: forward only */
    B = c->infer_batch;
    CHECK(mnnh_model_forward(m, B, v, u));
    CHECK(be->ops->sync(be));
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
    config c = {2, 4, 4, 10, 6, MNNH_CNN, 160, 1000, 3.0};
    char backends[256] = "cuda,cpu";
    static const struct option opts[] = {
        {"backends", required_argument, 0, 'b'}, {"dim", required_argument, 0, 'd'},
        {"L", required_argument, 0, 'L'},        {"m", required_argument, 0, 'm'},
        {"r", required_argument, 0, 'r'},        {"K", required_argument, 0, 'K'},
        {"variant", required_argument, 0, 'v'},  {"train-batch", required_argument, 0, 't'},
        {"infer-batch", required_argument, 0, 'i'}, {"seconds", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
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
        case 'h':
            printf("usage: bench_gpu [--backends cuda,cpu] [--dim D --L L --m M --r R --K K]\n"
                   "                 [--variant cnn|lc] [--train-batch B] [--infer-batch B]\n"
                   "                 [--seconds S]\n");
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
