/* bench_step.c: one distributed training step of `mnnh train`, split into
 * its parts, at whatever rank count it is launched with:
 *   io        assembling the rank's batch from its in-memory shard and
 *             uploading it to the backend (the per-step data path)
 *   compute   forward + loss + backward + NAdam update
 *   allreduce the fused gradient allreduce (host-staged), stop flag included
 * plus the checkpoint write of rank 0 (last.h5: model + optimizer + state),
 * the only other I/O of a training run. The global batch is fixed (strong
 * scaling) and split over the ranks as `mnnh train --batch` does.
 *
 * usage: mpirun -n P bench_step [--dim 2] [--L 4] [--m 4] [--r 10] [--K 5]
 *                               [--batch 32] [--steps 20] [--warmup 3] [--dir /tmp]
 * Prints a table on stderr and one JSON line on stdout (rank 0); times are
 * the mean over steps of the slowest rank. Run it at 1 and 2 ranks:
 *   benchmarks/bench_step.sh (see docs/training.md). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "comm.h"
#include "mnnh/nadam.h"
#include "mnnh/rng.h"

char *openblas_get_corename(void);

typedef struct {
    int dim, L, m, r, K, batch, steps, warmup;
    const char *dir;
} bench_args;

static void parse(int argc, char **argv, bench_args *a) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--dim")) a->dim = atoi(v);
        else if (!strcmp(k, "--L")) a->L = atoi(v);
        else if (!strcmp(k, "--m")) a->m = atoi(v);
        else if (!strcmp(k, "--r")) a->r = atoi(v);
        else if (!strcmp(k, "--K")) a->K = atoi(v);
        else if (!strcmp(k, "--batch")) a->batch = atoi(v);
        else if (!strcmp(k, "--steps")) a->steps = atoi(v);
        else if (!strcmp(k, "--warmup")) a->warmup = atoi(v);
        else if (!strcmp(k, "--dir")) a->dir = v;
        else {
            fprintf(stderr, "bench_step: unknown option %s\n", k);
            exit(2);
        }
    }
}

#define DIE_IF(st)                                                               \
    do {                                                                         \
        if (st) {                                                                \
            fprintf(stderr, "bench_step: %s\n", mnnh_error_msg());               \
            MPI_Abort(MPI_COMM_WORLD, 1);                                        \
        }                                                                        \
    } while (0)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    bench_args a = {2, 4, 4, 10, 5, 32, 20, 3, "/tmp"};
    parse(argc, argv, &a);
    mnnh_comm *c;
    DIE_IF(mnnh_comm_create(&c, MPI_COMM_WORLD));
    if (a.batch % c->size) {
        if (!c->rank) fprintf(stderr, "bench_step: --batch %d not divisible by %d ranks\n", a.batch, c->size);
        MPI_Finalize();
        return 2;
    }
    int b = a.batch / c->size;
    mnnh_arch arch;
    mnnh_arch_set(&arch, a.dim, a.L, a.m, a.r, a.K, MNNH_CNN);
    mnnh_backend *be;
    mnnh_model *model;
    mnnh_nadam *opt;
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    DIE_IF(mnnh_comm_backend_create(c, "auto", &be, NULL, 0));
    DIE_IF(mnnh_model_create(&model, &arch, be));
    DIE_IF(mnnh_model_reserve(model, b));
    DIE_IF(mnnh_model_init_params(model, 1));
    DIE_IF(mnnh_comm_bcast_params(c, model));
    DIE_IF(mnnh_nadam_create(&opt, be, mnnh_model_nparams(model), &h));
    size_t g = mnnh_arch_grid_size(&arch);
    int shard = 4 * b; /* samples held by the rank */
    float *in = malloc((size_t)shard * g * sizeof(float)), *out = malloc((size_t)shard * g * sizeof(float));
    float *hv = malloc((size_t)b * g * sizeof(float)), *ht = malloc((size_t)b * g * sizeof(float));
    mnnh_rng rng;
    mnnh_rng_init(&rng, 5, (uint64_t)c->rank);
    for (size_t i = 0; i < (size_t)shard * g; i++) {
        in[i] = (float)mnnh_rng_range(&rng, -1.5, -0.5);
        out[i] = (float)mnnh_rng_range(&rng, 0.5, 1.5);
    }
    float *dv, *dt;
    DIE_IF(mnnh_backend_alloc(be, (void **)&dv, (size_t)b * g * sizeof(float)));
    DIE_IF(mnnh_backend_alloc(be, (void **)&dt, (size_t)b * g * sizeof(float)));
    int64_t *perm = malloc((size_t)shard * sizeof(int64_t));
    for (int i = 0; i < shard; i++) perm[i] = i;
    double t[3] = {0, 0, 0}; /* io, compute, allreduce */
    for (int s = 0; s < a.warmup + a.steps; s++) {
        if (s == a.warmup) t[0] = t[1] = t[2] = 0;
        if (s % 4 == 0) mnnh_rng_shuffle(&rng, perm, shard);
        MPI_Barrier(c->world);
        double t0 = MPI_Wtime();
        for (int k = 0; k < b; k++) {
            int64_t i = perm[(s % 4) * b + k];
            memcpy(hv + (size_t)k * g, in + (size_t)i * g, g * sizeof(float));
            memcpy(ht + (size_t)k * g, out + (size_t)i * g, g * sizeof(float));
        }
        DIE_IF(mnnh_backend_upload(be, dv, hv, (size_t)b * g * sizeof(float)));
        DIE_IF(mnnh_backend_upload(be, dt, ht, (size_t)b * g * sizeof(float)));
        double t1 = MPI_Wtime(), e2, e1;
        DIE_IF(mnnh_model_zero_grads(model));
        DIE_IF(mnnh_model_train_batch(model, b, dv, dt, a.batch, &e2, &e1));
        double t2 = MPI_Wtime();
        float extra[MNNH_STEP_NEXTRA] = {[MNNH_STEP_ERR2] = (float)e2, [MNNH_STEP_ERR] = (float)e1,
                                         [MNNH_STEP_COUNT] = (float)b};
        DIE_IF(mnnh_comm_allreduce_grads(c, model, 1, extra));
        double t3 = MPI_Wtime();
        DIE_IF(mnnh_nadam_step(opt, mnnh_model_params(model), mnnh_model_grads(model)));
        double t4 = MPI_Wtime();
        t[0] += t1 - t0;
        t[1] += (t2 - t1) + (t4 - t3);
        t[2] += t3 - t2;
    }
    double worst[3];
    MPI_Reduce(t, worst, 3, MPI_DOUBLE, MPI_MAX, 0, c->world);
    /* checkpoint write (rank 0 alone, as in training) */
    double ck = 0;
    if (c->rank == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/bench_step-%ld.h5", a.dir, (long)getpid());
        mnnh_train_state st = {.epoch = 1, .step = opt->step, .best_valid = INFINITY, .lr = h.lr,
                               .world_size = c->size};
        mnnh_metrics mt = {0};
        mnnh_ckpt ckp = {.model = model, .opt = opt, .state = &st, .metrics = &mt};
        double c0 = MPI_Wtime();
        DIE_IF(mnnh_ckpt_write(path, &ckp));
        ck = MPI_Wtime() - c0;
        unlink(path);
        double n = a.steps, step = (worst[0] + worst[1] + worst[2]) / n;
        fprintf(stderr,
                "bench_step: %d rank(s), %dD N=%d L=%d m=%d r=%d K=%d (%zu params), global batch %d "
                "(%d per rank), backend %s, OpenBLAS %s, %d steps\n"
                "  per step: io %.3f ms  compute %.3f ms  allreduce %.3f ms  total %.3f ms  "
                "-> %.0f samples/s; checkpoint write %.1f ms\n",
                c->size, arch.dim, arch.N, arch.L, arch.m, arch.r, arch.K, mnnh_model_nparams(model),
                a.batch, b, be->ops->name, openblas_get_corename(), a.steps, 1e3 * worst[0] / n,
                1e3 * worst[1] / n, 1e3 * worst[2] / n, 1e3 * step, a.batch / step, 1e3 * ck);
        printf("{\"ranks\": %d, \"dim\": %d, \"N\": %d, \"params\": %zu, \"global_batch\": %d, "
               "\"io_s\": %.6g, \"compute_s\": %.6g, \"allreduce_s\": %.6g, \"step_s\": %.6g, "
               "\"samples_per_s\": %.6g, \"ckpt_s\": %.6g, \"backend\": \"%s\"}\n",
               c->size, arch.dim, arch.N, mnnh_model_nparams(model), a.batch, worst[0] / n,
               worst[1] / n, worst[2] / n, step, a.batch / step, ck, be->ops->name);
    }
    mnnh_backend_release(be, dv);
    mnnh_backend_release(be, dt);
    free(in);
    free(out);
    free(hv);
    free(ht);
    free(perm);
    mnnh_nadam_free(opt);
    mnnh_model_free(model);
    mnnh_backend_free(be);
    mnnh_comm_free(c);
    MPI_Finalize();
    return 0;
}
