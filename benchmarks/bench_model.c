/* bench_model.c: throughput of the MNN-H model on the CPU, against the
 * machine's practical roof (a large OpenBLAS SGEMM measured in the same run).
 *
 * Default: one JSON line per configuration (KS 2D cnn, KS 1D cnn, KS 1D lc):
 *   training step (zero grads + train_batch + NAdam step, batch 160) and
 *   inference (forward, batch 1000) samples/s, their GFLOP/s (a training step
 *   counted as 3x the forward), the kernel layers alone (every kernel-layer
 *   shape of the model, forward and backward, batch 160), and the SGEMM roof
 *   timed just before them. Kernel layers and SGEMM are both timed in
 *   repetitions of at least 50 ms: *_best is the fastest repetition, the
 *   others the mean; kernel_roof_fraction = kernel_gflops_best /
 *   sgemm_gflops (fastest SGEMM), kernel_roof_fraction_mean = the means.
 * --memory: peak resident memory (getrusage ru_maxrss) of a training run on a
 *   16000-sample synthetic KS 2D shard (data + model + workspace).
 * --scaling: time per training sample and parameter count against N
 *   (1D N = 320..20480, 2D N = 64..512), one JSON line per size.
 *
 * Options: --backend cpu|ref  --threads T  --seconds S  --config NAME
 *          --train-batch B  --infer-batch B  --no-sgemm
 *          --infer-layers (inference through mnnh_model_forward, not _infer)
 *          --schedule auto|ops|parts (mnnh_model_set_schedule; the kernel
 *          layers are timed as that schedule runs them, and alone per shape
 *          as kernel_ops_* when it runs them side by side)
 *          --shapes (stderr: each kernel-layer shape alone, forward and
 *          backward GFLOP/s and its share of the flops: where the kernel
 *          layers' time goes) */
#define _GNU_SOURCE
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mnnh/arch.h"
#include "mnnh/backend.h"
#include "mnnh/model.h"
#include "mnnh/nadam.h"
#include "mnnh/rng.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* CPU time of the whole process (all threads): on a loaded machine the
 * samples per CPU-second at 1 thread is a load-independent figure. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double last_cpu_rate; /* samples per CPU-second of the last timing */

#define CHECK(x)                                                                   \
    do {                                                                           \
        mnnh_status st_ = (x);                                                     \
        if (st_) {                                                                 \
            fprintf(stderr, "bench_model: %s: %s\n", #x, mnnh_error_msg());    \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

typedef struct {
    const char *name;
    int dim, L, m, r, K;
    mnnh_variant variant;
} bconfig;

static const bconfig configs[] = {
    {"ks2d", 2, 4, 4, 10, 6, MNNH_CNN},
    {"ks1d", 1, 6, 5, 6, 6, MNNH_CNN},
    {"ks1d_lc", 1, 6, 5, 6, 6, MNNH_LC},
};

static struct {
    const char *backend;
    int threads;
    double seconds;
    const char *config;
    int train_batch, infer_batch;
    int sgemm;
    mnnh_schedule schedule;
} opt = {"cpu", 0, 2.0, NULL, 160, 1000, 1, MNNH_SCHED_AUTO};
static const char *const sched_names[] = {"auto", "ops", "parts"};

/* ---- the roof: a large SGEMM ----
 * Every figure set against it is timed the same way: repetitions of at least
 * REP_SECONDS (one 2048^3 SGEMM takes 55-110 ms here), reporting both the
 * mean and the fastest repetition. On a shared virtual machine the speed of
 * the same code moves by 20-35 % between seconds; a fraction of a mean over
 * a best (sessions 1-6) understated the kernels by that much. */
#define REP_SECONDS 0.05
typedef struct {
    double mean, best; /* GFLOP/s over all repetitions, and of the fastest */
} rate;

static rate sgemm_gflops(int threads, double seconds) {
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return (rate){0, 0};
    mnnh_rng rng;
    mnnh_rng_init(&rng, 1, 2);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)mnnh_rng_range(&rng, -1, 1);
        b[i] = (float)mnnh_rng_range(&rng, -1, 1);
    }
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    const double flops = 2.0 * n * n * (double)n;
    double best = 1e30, t_start = now(), t_end = t_start + seconds;
    int reps = 0;
    do {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
        reps++;
    } while (now() < t_end || reps < 3);
    double total = now() - t_start;
    free(a);
    free(b);
    free(c);
    return (rate){flops * reps / total * 1e-9, flops / best * 1e-9};
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* ---- model set-up ---- */
static void fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    mnnh_rng rng;
    mnnh_rng_init(&rng, seed, 77);
    for (size_t i = 0; i < n; i++) x[i] = (float)mnnh_rng_range(&rng, lo, hi);
}

typedef struct {
    mnnh_arch arch;
    mnnh_backend *be;
    mnnh_model *model;
    mnnh_nadam *opt;
    float *v, *u, *target; /* backend buffers of max_batch samples */
    size_t grid;
    int max_batch;
} bench_model;

static void bm_init(bench_model *bm, const mnnh_arch *a, int max_batch) {
    memset(bm, 0, sizeof *bm);
    bm->arch = *a;
    CHECK(mnnh_arch_validate(a));
    CHECK(mnnh_backend_create(&bm->be, opt.backend, -1));
    CHECK(mnnh_model_create(&bm->model, a, bm->be));
    CHECK(mnnh_model_set_schedule(bm->model, opt.schedule));
    CHECK(mnnh_model_init_params(bm->model, 1234));
    CHECK(mnnh_model_reserve(bm->model, max_batch));
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    h.lr = 1e-4;
    CHECK(mnnh_nadam_create(&bm->opt, bm->be, mnnh_model_nparams(bm->model), &h));
    bm->grid = mnnh_arch_grid_size(a);
    bm->max_batch = max_batch;
    size_t n = bm->grid * max_batch;
    float *host = malloc(sizeof(float) * n);
    if (!host) exit(1);
    CHECK(mnnh_backend_alloc(bm->be, (void **)&bm->v, n * sizeof(float)));
    CHECK(mnnh_backend_alloc(bm->be, (void **)&bm->u, n * sizeof(float)));
    CHECK(mnnh_backend_alloc(bm->be, (void **)&bm->target, n * sizeof(float)));
    fill(host, n, 1, -0.5, 0.5);
    CHECK(mnnh_backend_upload(bm->be, bm->v, host, n * sizeof(float)));
    fill(host, n, 2, 0.1, 1.0);
    CHECK(mnnh_backend_upload(bm->be, bm->target, host, n * sizeof(float)));
    free(host);
}

static void bm_free(bench_model *bm) {
    mnnh_backend_release(bm->be, bm->v);
    mnnh_backend_release(bm->be, bm->u);
    mnnh_backend_release(bm->be, bm->target);
    mnnh_nadam_free(bm->opt);
    mnnh_model_free(bm->model);
    mnnh_backend_free(bm->be);
}

static void train_step(bench_model *bm, int B, const float *v, const float *t) {
    double e2, e1;
    CHECK(mnnh_model_zero_grads(bm->model));
    CHECK(mnnh_model_train_batch(bm->model, B, v, t, B, &e2, &e1));
    CHECK(mnnh_nadam_step(bm->opt, mnnh_model_params(bm->model), mnnh_model_grads(bm->model)));
}

/* Samples/s of repeated calls: one warm-up, then repeat for `seconds`
 * (at least 3 calls); the figure is total samples / total time. */
static double time_train(bench_model *bm, int B, double seconds) {
    train_step(bm, B, bm->v, bm->target);
    int reps = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        train_step(bm, B, bm->v, bm->target);
        reps++;
        t = now();
    } while (t - t0 < seconds || reps < 3);
    last_cpu_rate = (double)reps * B / (cpu_now() - c0);
    return (double)reps * B / (t - t0);
}

/* Inference goes through mnnh_model_infer (the backend's fused level op when
 * it has one); --infer-layers times mnnh_model_forward (per-op, activations
 * kept) instead, for comparison. */
static int infer_layers;
static int print_shapes;
static mnnh_status infer_once(bench_model *bm, int B) {
    return infer_layers ? mnnh_model_forward(bm->model, B, bm->v, bm->u)
                        : mnnh_model_infer(bm->model, B, bm->v, bm->u);
}

static double time_infer(bench_model *bm, int B, double seconds) {
    CHECK(infer_once(bm, B));
    int reps = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        CHECK(infer_once(bm, B));
        reps++;
        t = now();
    } while (t - t0 < seconds || reps < 3);
    last_cpu_rate = (double)reps * B / (cpu_now() - c0);
    return (double)reps * B / (t - t0);
}

/* Kernel layers alone: one kernel layer of every part of the model (each
 * level's and the adjacent part's shape), forward and backward (input and
 * parameter gradients), at batch B; GFLOP/s = sum of flops / time. With part
 * threads (owner != NULL, the model's schedule: mnnh_model_part_plan) the
 * shapes run side by side as the model runs its parts, each thread its own
 * shapes, and the time is the wall time of the whole set; else each shape
 * runs alone (its ops threaded) and the times add up. */
typedef struct {
    mnnh_geom g;
    float *in, *out, *dout, *din, *W, *b, *dW, *db;
    double flops;
} kshape;

static void kshape_init(kshape *k, mnnh_backend *be, mnnh_geom g, int B) {
    k->g = g;
    size_t P = mnnh_geom_positions(&g), T = mnnh_geom_taps(&g);
    size_t nin = (size_t)B * g.cin * P, nout = (size_t)B * g.cout * P;
    size_t nW = (size_t)g.cout * g.cin * T * (g.local ? P : 1), nb = (size_t)g.cout * (g.local ? P : 1);
    CHECK(mnnh_backend_alloc(be, (void **)&k->in, nin * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->din, nin * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->out, nout * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->dout, nout * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->W, nW * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->dW, nW * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->b, nb * 4));
    CHECK(mnnh_backend_alloc(be, (void **)&k->db, nb * 4));
    float *h = malloc(4 * (nin > nout ? (nin > nW ? nin : nW) : (nout > nW ? nout : nW)));
    if (!h) exit(1);
    fill(h, nin, 3, -1, 1);
    CHECK(mnnh_backend_upload(be, k->in, h, nin * 4));
    fill(h, nout, 4, -1, 1);
    CHECK(mnnh_backend_upload(be, k->dout, h, nout * 4));
    fill(h, nW, 5, -0.3, 0.3);
    CHECK(mnnh_backend_upload(be, k->W, h, nW * 4));
    fill(h, nb, 6, -0.1, 0.1);
    CHECK(mnnh_backend_upload(be, k->b, h, nb * 4));
    free(h);
    k->flops = 2.0 * B * P * g.cout * g.cin * (double)T;
}

static void kshape_free(kshape *k, mnnh_backend *be) {
    float *bufs[] = {k->in, k->din, k->out, k->dout, k->W, k->dW, k->b, k->db};
    for (int i = 0; i < 8; i++) mnnh_backend_release(be, bufs[i]);
}

static void kshape_run(kshape *k, mnnh_backend *be, int B, int bwd) {
    if (bwd) CHECK(be->ops->kernel_bwd(be, &k->g, B, k->in, k->W, k->out, k->dout, k->din, k->dW, k->db));
    else CHECK(be->ops->kernel_fwd(be, &k->g, B, k->in, k->W, k->b, k->out));
}

/* Seconds per call of the shapes [i0, i1) (alone: i1 = i0 + 1) or of all of
 * them side by side on their owners' threads (T > 1). */
static void run_shapes(kshape *ks, int ns, const int *owner, int T, mnnh_backend *be, int B,
                       int bwd) {
    if (T < 2) {
        for (int i = 0; i < ns; i++) kshape_run(&ks[i], be, B, bwd);
        return;
    }
#pragma omp parallel num_threads(T)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        for (int i = 0; i < ns; i++)
            if (owner[i] == tid) kshape_run(&ks[i], be, B, bwd);
    }
}

/* Seconds per call of the shapes: the mean over repetitions of at least
 * REP_SECONDS each (calls per repetition set from the warm-up call) and the
 * fastest repetition, as the SGEMM roof is timed. */
typedef struct {
    double mean, best;
} secs;

static secs time_shapes(kshape *ks, int ns, const int *owner, int T, mnnh_backend *be, int B,
                        int bwd, double seconds) {
    double w0 = now();
    run_shapes(ks, ns, owner, T, be, B, bwd); /* warm-up */
    double w = now() - w0;
    int per = w > 0 ? (int)ceil(REP_SECONDS / w) : 1, reps = 0;
    if (per < 1) per = 1;
    double t0 = now(), t = t0, best = 1e30;
    do {
        double r0 = t;
        for (int k = 0; k < per; k++) run_shapes(ks, ns, owner, T, be, B, bwd);
        t = now();
        if ((t - r0) / per < best) best = (t - r0) / per;
        reps++;
    } while (t - t0 < seconds || reps < 2);
    return (secs){(t - t0) / ((double)reps * per), best};
}

/* Forward and backward GFLOP/s of the kernel layers (mean and fastest
 * repetition; shapes timed alone add up their fastest repetitions), and the
 * two combined: forward + backward, flop-weighted (the backward does twice
 * the forward's flops). */
typedef struct {
    rate fwd, bwd, both;
} kernel_rates;

static double flop_weighted(double fwd, double bwd) { return 3.0 / (1.0 / fwd + 2.0 / bwd); }

static kernel_rates time_kernel_layers(const mnnh_arch *a, mnnh_backend *be, int B,
                                       double seconds, const int *owner, int T) {
    kshape ks[MNNH_MAX_L + 2];
    int ng = 0;
    int local = a->variant == MNNH_LC;
    for (int l = 2; l <= a->L; l++)
        kshape_init(&ks[ng++], be, (mnnh_geom){a->dim, 1 << l, a->r, a->r, 1, a->nb[l], local, 1}, B);
    int mc = a->dim == 2 ? a->m * a->m : a->m;
    kshape_init(&ks[ng++], be, (mnnh_geom){a->dim, 1 << a->L, mc, mc, 1, a->nb_ad, local, 1}, B);
    double flops = 0;
    secs tf = {0, 0}, tb = {0, 0};
    for (int i = 0; i < ng; i++) flops += ks[i].flops;
    if (T > 1) {
        tf = time_shapes(ks, ng, owner, T, be, B, 0, seconds / 2);
        tb = time_shapes(ks, ng, owner, T, be, B, 1, seconds / 2);
    } else {
        double per = seconds / ng / 2;
        for (int i = 0; i < ng; i++) {
            secs f = time_shapes(&ks[i], 1, NULL, 1, be, B, 0, per);
            secs b = time_shapes(&ks[i], 1, NULL, 1, be, B, 1, per);
            tf.mean += f.mean, tf.best += f.best, tb.mean += b.mean, tb.best += b.best;
            if (print_shapes)
                fprintf(stderr,
                        "shape %s n=%d cin=%d cout=%d taps=%zu: %.1f %% of the flops, "
                        "forward %.2f GFLOP/s (fastest repetition %.2f), "
                        "backward %.2f GFLOP/s (fastest %.2f)\n",
                        i == ng - 1 ? "adjacent" : "level", ks[i].g.n, ks[i].g.cin, ks[i].g.cout,
                        mnnh_geom_taps(&ks[i].g), 100 * ks[i].flops / flops,
                        ks[i].flops / f.mean * 1e-9, ks[i].flops / f.best * 1e-9,
                        2 * ks[i].flops / b.mean * 1e-9, 2 * ks[i].flops / b.best * 1e-9);
        }
    }
    for (int i = 0; i < ng; i++) kshape_free(&ks[i], be);
    kernel_rates k;
    k.fwd = (rate){flops / tf.mean * 1e-9, flops / tf.best * 1e-9};
    /* input gradient + weight gradient: twice the forward's flops */
    k.bwd = (rate){2 * flops / tb.mean * 1e-9, 2 * flops / tb.best * 1e-9};
    k.both = (rate){flop_weighted(k.fwd.mean, k.bwd.mean), flop_weighted(k.fwd.best, k.bwd.best)};
    return k;
}

static long maxrss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static double loadavg1(void) {
    double l[1] = {0};
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

static int nthreads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static double ratio(double x, double y) { return y > 0 ? x / y : 0.0; }

/* kernel_roof_fraction compares like with like: the fastest repetition of
 * the kernel layers against the fastest SGEMM repetition; _mean the means;
 * _mixed the mean over the fastest SGEMM (the figure of sessions 1-6). The
 * SGEMM runs just before the kernel layers, so both see the same minute of
 * the machine. */
static void run_config(const bconfig *c, int T, const char *core) {
    mnnh_arch a;
    mnnh_arch_set(&a, c->dim, c->L, c->m, c->r, c->K, c->variant);
    int maxb = opt.train_batch > opt.infer_batch ? opt.train_batch : opt.infer_batch;
    bench_model bm;
    bm_init(&bm, &a, maxb);
    double fl = mnnh_model_forward_flops(bm.model);
    double train = time_train(&bm, opt.train_batch, opt.seconds);
    double train_cpu = last_cpu_rate;
    double infer_b = time_infer(&bm, opt.train_batch, opt.seconds / 2);
    double infer = time_infer(&bm, opt.infer_batch, opt.seconds);
    double infer_cpu = last_cpu_rate;
    int owner[MNNH_MAX_L + 1];
    int pt = mnnh_model_part_plan(bm.model, opt.train_batch, owner);
    rate roof = opt.sgemm ? sgemm_gflops(T, opt.seconds < 1 ? opt.seconds : 1.0) : (rate){0, 0};
    kernel_rates k = time_kernel_layers(&a, bm.be, opt.train_batch, opt.seconds, owner, pt);
    kernel_rates ok = k;
    if (pt > 1) /* the same shapes alone, each op threaded (MNNH_SCHED_OPS) */
        ok = time_kernel_layers(&a, bm.be, opt.train_batch, opt.seconds, NULL, 1);
    double train_gf = 3 * fl * train * 1e-9, infer_gf = fl * infer * 1e-9;
    printf("{\"config\":\"%s\",\"dim\":%d,\"N\":%d,\"L\":%d,\"m\":%d,\"r\":%d,\"K\":%d,"
           "\"variant\":\"%s\",\"params\":%zu,\"backend\":\"%s\",\"threads\":%d,\"batch\":%d,"
           "\"infer_batch\":%d,\"forward_mflop_per_sample\":%.4f,"
           "\"train_samples_per_s\":%.1f,\"infer_samples_per_s\":%.1f,"
           "\"infer_samples_per_s_batch%d\":%.1f,"
           "\"train_gflops\":%.2f,\"infer_gflops\":%.2f,\"gflops\":%.2f,"
           "\"kernel_fwd_gflops\":%.2f,\"kernel_bwd_gflops\":%.2f,\"kernel_gflops\":%.2f,"
           "\"kernel_fwd_gflops_best\":%.2f,\"kernel_bwd_gflops_best\":%.2f,"
           "\"kernel_gflops_best\":%.2f,\"sgemm_gflops\":%.2f,\"sgemm_gflops_mean\":%.2f,"
           "\"kernel_roof_fraction\":%.3f,\"kernel_roof_fraction_mean\":%.3f,"
           "\"kernel_roof_fraction_mixed\":%.3f,\"openblas_core\":\"%s\","
           "\"train_samples_per_cpu_s\":%.1f,\"infer_samples_per_cpu_s\":%.1f,\"loadavg\":%.2f,"
           "\"schedule\":\"%s\",\"part_threads\":%d,\"kernel_ops_gflops\":%.2f,"
           "\"kernel_ops_gflops_best\":%.2f,\"kernel_ops_roof_fraction\":%.3f}\n",
           c->name, a.dim, a.N, a.L, a.m, a.r, a.K, mnnh_variant_name(a.variant),
           mnnh_model_nparams(bm.model), bm.be->ops->name, nthreads(), opt.train_batch,
           opt.infer_batch, fl * 1e-6, train, infer, opt.train_batch, infer_b, train_gf,
           infer_gf, train_gf, k.fwd.mean, k.bwd.mean, k.both.mean, k.fwd.best, k.bwd.best,
           k.both.best, roof.best, roof.mean, ratio(k.both.best, roof.best),
           ratio(k.both.mean, roof.mean), ratio(k.both.mean, roof.best), core, train_cpu,
           infer_cpu, loadavg1(), sched_names[opt.schedule], pt, ok.both.mean, ok.both.best,
           ratio(ok.both.best, roof.best));
    fflush(stdout);
    bm_free(&bm);
}

/* Peak RSS of a training run on a full KS 2D set held in memory. */
static void run_memory(void) {
    const int S = 16000, B = opt.train_batch;
    mnnh_arch a;
    mnnh_arch_set(&a, 2, 4, 4, 10, 6, MNNH_CNN);
    long rss0 = maxrss_kib();
    size_t G = mnnh_arch_grid_size(&a);
    float *data = malloc(sizeof(float) * G * S), *targ = malloc(sizeof(float) * G * S);
    if (!data || !targ) {
        fprintf(stderr, "bench_model: cannot allocate the 16000-sample shard\n");
        exit(1);
    }
    fill(data, G * S, 11, -0.5, 0.5);
    fill(targ, G * S, 12, 0.1, 1.0);
    long rss_data = maxrss_kib();
    bench_model bm;
    bm_init(&bm, &a, B);
    int steps = 0;
    double t0 = now();
    for (int off = 0; off + B <= S && (now() - t0 < opt.seconds || steps < 3); off += B, steps++)
        train_step(&bm, B, data + (size_t)off * G, targ + (size_t)off * G);
    long rss = maxrss_kib();
    printf("{\"config\":\"ks2d_memory\",\"backend\":\"%s\",\"threads\":%d,\"batch\":%d,"
           "\"samples\":%d,\"params\":%zu,\"steps\":%d,\"data_mib\":%.1f,"
           "\"rss_start_mib\":%.1f,\"rss_after_data_mib\":%.1f,\"peak_rss_mib\":%.1f}\n",
           bm.be->ops->name, nthreads(), B, S, mnnh_model_nparams(bm.model), steps,
           2.0 * G * S * 4 / 1048576.0, rss0 / 1024.0, rss_data / 1024.0, rss / 1024.0);
    bm_free(&bm);
    free(data);
    free(targ);
}

/* Time per training sample and parameter count against N. */
static void run_scaling(void) {
    struct { int dim, L, m, r; } sizes[] = {
        {1, 6, 5, 6}, {1, 7, 5, 6}, {1, 8, 5, 6}, {1, 9, 5, 6}, {1, 10, 5, 6}, {1, 11, 5, 6},
        {1, 12, 5, 6}, {2, 4, 4, 10}, {2, 5, 4, 10}, {2, 6, 4, 10}, {2, 7, 4, 10},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mnnh_arch a;
        mnnh_arch_set(&a, sizes[i].dim, sizes[i].L, sizes[i].m, sizes[i].r, 6, MNNH_CNN);
        size_t G = mnnh_arch_grid_size(&a);
        /* about 4 M grid points per batch, between 4 and 160 samples */
        int B = (int)(4194304 / G);
        if (B > 160) B = 160;
        if (B < 4) B = 4;
        bench_model bm;
        bm_init(&bm, &a, B);
        double train = time_train(&bm, B, opt.seconds);
        double train_cpu = last_cpu_rate;
        double infer = time_infer(&bm, B, opt.seconds / 2);
        double infer_cpu = last_cpu_rate;
        double nlogn = (double)G * log2((double)G);
        printf("{\"config\":\"scaling\",\"dim\":%d,\"N\":%d,\"L\":%d,\"m\":%d,\"r\":%d,\"K\":6,"
               "\"grid\":%zu,\"NlogN\":%.0f,\"params\":%zu,\"backend\":\"%s\",\"threads\":%d,"
               "\"batch\":%d,\"train_s_per_sample\":%.4e,\"infer_s_per_sample\":%.4e,"
               "\"forward_mflop_per_sample\":%.3f,\"train_cpu_s_per_sample\":%.4e,"
               "\"infer_cpu_s_per_sample\":%.4e,\"loadavg\":%.2f}\n",
               a.dim, a.N, a.L, a.m, a.r, G, nlogn, mnnh_model_nparams(bm.model),
               bm.be->ops->name, nthreads(), B, 1.0 / train, 1.0 / infer,
               mnnh_model_forward_flops(bm.model) * 1e-6, 1.0 / train_cpu, 1.0 / infer_cpu,
               loadavg1());
        fflush(stdout);
        bm_free(&bm);
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_model [--backend cpu|ref] [--threads T] [--seconds S]\n"
            "                   [--config ks2d|ks1d|ks1d_lc] [--train-batch B] [--infer-batch B]\n"
            "                   [--no-sgemm] [--memory] [--scaling] [--infer-layers]\n"
            "                   [--schedule auto|ops|parts] [--shapes]\n"
            "Prints one JSON line per configuration. Set OPENBLAS_CORETYPE=SkylakeX on\n"
            "AVX-512 machines that OpenBLAS 0.3.21 does not recognise.\n");
}

int main(int argc, char **argv) {
    int mode = 0; /* 0 throughput, 1 memory, 2 scaling */
    static const struct option lo[] = {
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 's'}, {"config", required_argument, 0, 'c'},
        {"train-batch", required_argument, 0, 'B'}, {"infer-batch", required_argument, 0, 'I'},
        {"no-sgemm", no_argument, 0, 'n'}, {"memory", no_argument, 0, 'M'},
        {"scaling", no_argument, 0, 'S'}, {"infer-layers", no_argument, 0, 'L'},
        {"schedule", required_argument, 0, 'P'}, {"shapes", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'b': opt.backend = optarg; break;
        case 't': opt.threads = atoi(optarg); break;
        case 's': opt.seconds = atof(optarg); break;
        case 'c': opt.config = optarg; break;
        case 'B': opt.train_batch = atoi(optarg); break;
        case 'I': opt.infer_batch = atoi(optarg); break;
        case 'n': opt.sgemm = 0; break;
        case 'M': mode = 1; break;
        case 'S': mode = 2; break;
        case 'L': infer_layers = 1; break;
        case 'D': print_shapes = 1; break;
        case 'P': {
            int k = 0;
            while (k < 3 && strcmp(optarg, sched_names[k])) k++;
            if (k == 3) {
                fprintf(stderr, "bench_model: unknown --schedule '%s' (auto, ops, parts)\n", optarg);
                return 2;
            }
            opt.schedule = (mnnh_schedule)k;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (opt.train_batch < 1 || opt.infer_batch < 1 || !(opt.seconds > 0)) {
        usage(stderr);
        return 2;
    }
    if (opt.threads > 0) {
#ifdef _OPENMP
        omp_set_num_threads(opt.threads);
#endif
    }
    int T = nthreads();
    openblas_set_num_threads(T);
    const char *core = openblas_get_corename();
    /* 256-bit kernels understate an Intel AVX-512 core's roof; on AMD Zen 4,
     * which runs 512-bit operations as two 256-bit halves, OpenBLAS's Haswell
     * kernels measured 219 GFLOP/s against SkylakeX's 213 (session 10), so
     * only the SSE-era kernels are a mistake there. */
    int avx2_kernels = core && (!strcasecmp(core, "Sandybridge") || !strcasecmp(core, "Haswell"));
    if (cpu_has_avx512() && core &&
        (!strcasecmp(core, "Prescott") || !strcasecmp(core, "Nehalem") ||
         !strcasecmp(core, "Core2") || !strcasecmp(core, "Katmai") ||
         (avx2_kernels && __builtin_cpu_is("intel"))))
        fprintf(stderr,
                "bench_model: warning: OpenBLAS runs its '%s' kernels on an AVX-512 CPU; "
                "the SGEMM roof is understated. Set OPENBLAS_CORETYPE=SkylakeX.\n",
                core);
    if (mode == 1) {
        run_memory();
        return 0;
    }
    if (mode == 2) {
        run_scaling();
        return 0;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        if (opt.config && strcmp(opt.config, configs[i].name)) continue;
        run_config(&configs[i], T, core ? core : "unknown");
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "bench_model: unknown --config '%s'\n", opt.config);
        return 2;
    }
    return 0;
}
