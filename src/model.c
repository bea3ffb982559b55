/* model.c: the MNN-H network (Algorithm 3), forward and backward through the
 * backend interface. The network is a list of levels l = 2..L (restrict,
 * K kernel layers, interp) plus the adjacent part (block reshape, K kernel
 * layers, flatten), all summed into the output. These L "parts" are
 * independent until the sum: on a backend with concurrent_parts they may run
 * side by side on the threads (mnnh_model_set_schedule, parts.h). */
#include "mnnh/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnnh/parts.h"
#include "mnnh/rng.h"

#define MAX_K 64
#define MAX_PART_THREADS 8
#define MAX_PARTS (MNNH_MAX_L + 1)
/* Schedule cost of one op call, in forward flops per sample: at batch 160
 * and one thread a KS 1D kernel layer costs about 12 us (forward and
 * backward) on top of its arithmetic, the cost of 2000 flops per sample at
 * the measured ~80 GFLOP/s (docs/performance.md), so the small coarse levels
 * weigh more than their flops. */
#define PART_CALL_FLOPS 2000.0
/* MNNH_SCHED_AUTO runs the parts side by side only when the static schedule
 * keeps the busiest thread within this factor of the mean load, and only for
 * batches whose ops are small: at most this many forward flops per op call on
 * average. Measured on 2 threads (docs/performance.md, session 5): KS 1D
 * training at batch 160 (1.6e6 per call) gained 4-42 % with the parts side by
 * side (two windows); KS 1D lc inference at batch 1000 (fused level ops) and KS 2D (1e8
 * per call) were as fast or faster with every op threaded. */
#define PARTS_MAX_IMBALANCE 1.25
#define PARTS_MAX_CALL_FLOPS 4e6

typedef struct {
    mnnh_geom g_restrict, g_kernel, g_interp; /* g_kernel.relu is per layer */
    int t_restrict, t_kernel[MAX_K], t_interp; /* weight tensor indices (bias = +1) */
    float *act[MAX_K + 1];                     /* act[0] restrict out, act[k] kernel k out */
} level_t;

typedef struct {
    mnnh_geom g_block, g_kernel; /* reshape geometry, kernel geometry */
    int t_kernel[MAX_K];
    float *act[MAX_K + 1];
} adjacent_t;

struct mnnh_model {
    mnnh_arch arch;
    mnnh_norm norm;
    mnnh_param_table tab;
    mnnh_backend *be;
    float *params, *grads;
    int all_linear;
    int max_batch;
    size_t grid;                  /* N^d */
    level_t level[MNNH_MAX_L + 1];
    adjacent_t adj;
    float *vin, *y, *pred, *dy, *dpred, *sums, *err2;
    float *dbuf[MAX_PART_THREADS][2]; /* backward ping-pong buffers of each part thread */
    float *yacc[MAX_PART_THREADS];    /* output accumulator of part thread t >= 1 (t = 0: y) */
    float *err2_host;
    int last_B;                   /* batch of the last forward, -1 if none */
    mnnh_schedule sched;
    int part_threads;             /* threads the parts may run on; 1: in sequence, each op threaded */
    double call_flops;            /* mean forward flops per op call and sample */
    int part_owner[MAX_PARTS];    /* thread of part p (level l: p = l - 2; adjacent: p = L - 1) */
};

void mnnh_norm_default(mnnh_norm *n) {
    n->input_scale = 1.0f;
    n->input_shift = 0.0f;
    n->output_shift = 0.0f;
    n->density_ne = 0.0f;
    n->cell_volume = 1.0f;
}

const mnnh_arch *mnnh_model_arch(const mnnh_model *m) { return &m->arch; }
const mnnh_param_table *mnnh_model_table(const mnnh_model *m) { return &m->tab; }
mnnh_backend *mnnh_model_backend(const mnnh_model *m) { return m->be; }
mnnh_norm *mnnh_model_norm(mnnh_model *m) { return &m->norm; }
size_t mnnh_model_nparams(const mnnh_model *m) { return m->tab.total; }
float *mnnh_model_params(mnnh_model *m) { return m->params; }
float *mnnh_model_grads(mnnh_model *m) { return m->grads; }
int mnnh_model_max_batch(const mnnh_model *m) { return m->max_batch; }
void mnnh_model_set_all_linear(mnnh_model *m, int linear) { m->all_linear = linear; }

static int find_tensor(const mnnh_param_table *tab, const char *fmt, int a, int b) {
    char name[MNNH_NAME_LEN];
    snprintf(name, sizeof name, fmt, a, b);
    return mnnh_param_table_find(tab, name);
}

/* Geometry of every layer and the index of its tensors in the table. */
static mnnh_status model_plan(mnnh_model *m) {
    const mnnh_arch *a = &m->arch;
    int local = a->variant == MNNH_LC;
    if (a->K > MAX_K) return mnnh_error_set(MNNH_ERR_ARG, "K=%d: at most %d", a->K, MAX_K);
    for (int l = 2; l <= a->L; l++) {
        level_t *lv = &m->level[l];
        int n = 1 << l, s = a->N >> l;
        lv->g_restrict = (mnnh_geom){a->dim, n, 1, a->r, s, 0, local, 0};
        lv->g_kernel = (mnnh_geom){a->dim, n, a->r, a->r, 1, a->nb[l], local, 1};
        lv->g_interp = (mnnh_geom){a->dim, n, a->r, 0, s, 0, local, 0};
        lv->t_restrict = find_tensor(&m->tab, "level%d/restrict/weight", l, 0);
        lv->t_interp = find_tensor(&m->tab, "level%d/interp/weight", l, 0);
        for (int k = 1; k <= a->K; k++)
            lv->t_kernel[k - 1] = find_tensor(&m->tab, "level%d/kernel%d/weight", l, k);
    }
    int mc = a->dim == 2 ? a->m * a->m : a->m;
    int nL = 1 << a->L;
    m->adj.g_block = (mnnh_geom){a->dim, nL, 0, 0, a->m, 0, 0, 0};
    m->adj.g_kernel = (mnnh_geom){a->dim, nL, mc, mc, 1, a->nb_ad, local, 1};
    for (int k = 1; k <= a->K; k++)
        m->adj.t_kernel[k - 1] = find_tensor(&m->tab, "adjacent/kernel%d/weight", k, 0);
    return MNNH_OK;
}

mnnh_status mnnh_model_create(mnnh_model **out, const mnnh_arch *arch, mnnh_backend *be) {
    *out = NULL;
    mnnh_model *m = calloc(1, sizeof *m);
    if (!m) return mnnh_error_set(MNNH_ERR_NOMEM, "model");
    m->arch = *arch;
    m->be = be;
    m->last_B = -1;
    mnnh_norm_default(&m->norm);
    mnnh_status st = mnnh_param_table_build(arch, &m->tab);
    if (!st) st = model_plan(m);
    m->grid = mnnh_arch_grid_size(arch);
    size_t bytes = m->tab.total * sizeof(float);
    if (!st) st = mnnh_backend_alloc(be, (void **)&m->params, bytes);
    if (!st) st = mnnh_backend_alloc(be, (void **)&m->grads, bytes);
    if (!st) st = be->ops->zero(be, m->params, bytes);
    if (!st) st = be->ops->zero(be, m->grads, bytes);
    if (st) {
        mnnh_model_free(m);
        return st;
    }
    *out = m;
    return MNNH_OK;
}

static void release_workspace(mnnh_model *m) {
    mnnh_backend *be = m->be;
    for (int l = 2; l <= m->arch.L; l++)
        for (int k = 0; k <= m->arch.K && k <= MAX_K; k++) {
            mnnh_backend_release(be, m->level[l].act[k]);
            m->level[l].act[k] = NULL;
        }
    for (int k = 0; k <= m->arch.K && k <= MAX_K; k++) {
        mnnh_backend_release(be, m->adj.act[k]);
        m->adj.act[k] = NULL;
    }
    float **bufs[] = {&m->vin, &m->y, &m->pred, &m->dy, &m->dpred, &m->sums, &m->err2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        mnnh_backend_release(be, *bufs[i]);
        *bufs[i] = NULL;
    }
    for (int t = 0; t < MAX_PART_THREADS; t++) {
        for (int k = 0; k < 2; k++) {
            mnnh_backend_release(be, m->dbuf[t][k]);
            m->dbuf[t][k] = NULL;
        }
        mnnh_backend_release(be, m->yacc[t]);
        m->yacc[t] = NULL;
    }
    free(m->err2_host);
    m->err2_host = NULL;
    m->max_batch = 0;
    m->last_B = -1;
}

void mnnh_model_free(mnnh_model *m) {
    if (!m) return;
    release_workspace(m);
    mnnh_backend_release(m->be, m->params);
    mnnh_backend_release(m->be, m->grads);
    mnnh_param_table_free(&m->tab);
    free(m);
}

static mnnh_status alloc_f(mnnh_model *m, float **p, size_t floats) {
    return mnnh_backend_alloc(m->be, (void **)p, floats * sizeof(float));
}

static int nparts(const mnnh_model *m) { return m->arch.L; } /* levels 2..L, adjacent */

static double part_flops(const mnnh_model *m, int p);

/* The part threads and the static schedule, for the threads OpenMP offers
 * now (1 thread, a backend without concurrent_parts, MNNH_SCHED_OPS, or an
 * AUTO schedule too unbalanced: the parts run in sequence). */
static void plan_parts(mnnh_model *m) {
    m->part_threads = 1;
    m->call_flops = mnnh_model_forward_flops(m) / (nparts(m) * (m->arch.K + 2.0));
#ifdef _OPENMP
    int n = nparts(m), T = omp_get_max_threads();
    if (T > n) T = n;
    if (T > MAX_PART_THREADS) T = MAX_PART_THREADS;
    if (m->sched == MNNH_SCHED_OPS || !m->be->concurrent_parts || T < 2) return;
    double cost[MAX_PARTS];
    for (int p = 0; p < n; p++) cost[p] = part_flops(m, p) + PART_CALL_FLOPS * (m->arch.K + 2);
    double imbalance = mnnh_parts_assign(n, cost, T, m->part_owner);
    if (m->sched == MNNH_SCHED_AUTO && imbalance > PARTS_MAX_IMBALANCE) return;
    m->part_threads = T;
#endif
}

mnnh_status mnnh_model_set_schedule(mnnh_model *m, mnnh_schedule s) {
    if (s != MNNH_SCHED_AUTO && s != MNNH_SCHED_OPS && s != MNNH_SCHED_PARTS)
        return mnnh_error_set(MNNH_ERR_ARG, "schedule %d: not auto, ops or parts", (int)s);
    m->sched = s;
    int B = m->max_batch;
    if (B < 1) return MNNH_OK;
    release_workspace(m); /* the part threads' buffers follow the schedule */
    return mnnh_model_reserve(m, B);
}

/* The team that runs the parts of a batch of B side by side; 1: in
 * sequence (also inside someone else's parallel region). */
static int parts_team(const mnnh_model *m, int B) {
    int T = m->part_threads;
    if (m->sched == MNNH_SCHED_AUTO && B * m->call_flops > PARTS_MAX_CALL_FLOPS) T = 1;
#ifdef _OPENMP
    if (T > omp_get_max_threads()) T = omp_get_max_threads();
    if (omp_in_parallel()) T = 1;
#endif
    return T < 2 ? 1 : T;
}

int mnnh_model_part_plan(const mnnh_model *m, int B, int *owner) {
    int T = parts_team(m, B);
    if (owner && T > 1)
        for (int p = 0; p < nparts(m); p++) owner[p] = m->part_owner[p] % T;
    return T;
}

mnnh_status mnnh_model_reserve(mnnh_model *m, int B) {
    if (B < 1) return mnnh_error_set(MNNH_ERR_ARG, "batch size %d: must be >= 1", B);
    if (B <= m->max_batch) return MNNH_OK;
    release_workspace(m);
    plan_parts(m);
    size_t maxact = 0;
    mnnh_status st = MNNH_OK;
    for (int l = 2; l <= m->arch.L && !st; l++) {
        size_t act = (size_t)B * m->arch.r * mnnh_geom_positions(&m->level[l].g_kernel);
        if (act > maxact) maxact = act;
        for (int k = 0; k <= m->arch.K && !st; k++) st = alloc_f(m, &m->level[l].act[k], act);
    }
    size_t adj = (size_t)B * m->grid;
    if (adj > maxact) maxact = adj;
    for (int k = 0; k <= m->arch.K && !st; k++) st = alloc_f(m, &m->adj.act[k], adj);
    size_t G = (size_t)B * m->grid;
    if (!st) st = alloc_f(m, &m->vin, G);
    if (!st) st = alloc_f(m, &m->y, G);
    if (!st) st = alloc_f(m, &m->pred, G);
    if (!st) st = alloc_f(m, &m->dy, G);
    if (!st) st = alloc_f(m, &m->dpred, G);
    if (!st) st = alloc_f(m, &m->sums, (size_t)B);
    if (!st) st = alloc_f(m, &m->err2, (size_t)B);
    for (int t = 0; t < m->part_threads && !st; t++) {
        st = alloc_f(m, &m->dbuf[t][0], maxact);
        if (!st) st = alloc_f(m, &m->dbuf[t][1], maxact);
        if (!st && t > 0) st = alloc_f(m, &m->yacc[t], G);
    }
    if (!st && !(m->err2_host = malloc(sizeof(float) * B)))
        st = mnnh_error_set(MNNH_ERR_NOMEM, "model workspace");
    if (st) {
        release_workspace(m);
        return mnnh_error_prefix(st, "workspace for batch %d", B);
    }
    m->max_batch = B;
    return MNNH_OK;
}

/* ---- parameters ---- */
mnnh_status mnnh_model_get_params(mnnh_model *m, float *host) {
    return mnnh_backend_download(m->be, host, m->params, m->tab.total * sizeof(float));
}
mnnh_status mnnh_model_set_params(mnnh_model *m, const float *host) {
    return mnnh_backend_upload(m->be, m->params, host, m->tab.total * sizeof(float));
}
mnnh_status mnnh_model_get_grads(mnnh_model *m, float *host) {
    return mnnh_backend_download(m->be, host, m->grads, m->tab.total * sizeof(float));
}
mnnh_status mnnh_model_zero_grads(mnnh_model *m) {
    return m->be->ops->zero(m->be, m->grads, m->tab.total * sizeof(float));
}

/* Fan-in, fan-out and ReLU gain of a weight tensor, as a convolution sees it:
 * kernel [cout][cin][taps]: fan_in = cin*taps, fan_out = cout*taps;
 * restriction [r][S] (one input channel, S taps): fan_in = S, fan_out = r*S;
 * interpolation [S][r] (S outputs of a 1x1 conv of r channels): fan_in = r,
 * fan_out = S. lc tensors carry a position prefix that is not a fan. Gain 2
 * where a ReLU follows (He), 1 before a linear output. */
static void tensor_fans(const mnnh_model *m, const mnnh_param_tensor *t, double *fan_in,
                        double *fan_out, double *gain) {
    const char *name = t->name;
    int skip = m->arch.variant == MNNH_LC ? m->arch.dim : 0; /* position prefix */
    size_t per_out = 1;
    for (int d = skip + 1; d < t->ndims; d++) per_out *= (size_t)t->dims[d];
    double cout = (double)t->dims[skip];
    *fan_in = (double)per_out;
    *fan_out = *fan_in;
    *gain = 1.0;
    if (strstr(name, "/kernel")) {
        int k = 0;
        sscanf(strstr(name, "/kernel") + 7, "%d", &k);
        int last_adj = !strncmp(name, "adjacent", 8) && k == m->arch.K;
        *gain = last_adj ? 1.0 : 2.0;
        *fan_out = cout * (*fan_in / (double)t->dims[skip + 1]);
    } else if (strstr(name, "/restrict/")) {
        *fan_out = *fan_in * cout;
    } else if (strstr(name, "/interp/")) {
        *fan_in = (double)t->dims[t->ndims - 1];
        *fan_out = (double)per_out / *fan_in * cout;
    }
}

const char *mnnh_init_name(mnnh_init init) { return init == MNNH_INIT_GLOROT ? "glorot" : "he"; }

int mnnh_init_parse(const char *name, mnnh_init *init) {
    if (!strcmp(name, "he")) *init = MNNH_INIT_HE;
    else if (!strcmp(name, "glorot")) *init = MNNH_INIT_GLOROT;
    else return -1;
    return 0;
}

/* Standard deviation of the normal draw of one weight tensor. */
static double tensor_init_sd(const mnnh_model *m, const mnnh_param_tensor *t, mnnh_init init) {
    double fan_in, fan_out, gain;
    tensor_fans(m, t, &fan_in, &fan_out, &gain);
    if (init == MNNH_INIT_GLOROT) return sqrt(2.0 / (fan_in + fan_out));
    return sqrt(gain / fan_in);
}

mnnh_status mnnh_model_init_params_with(mnnh_model *m, uint64_t seed, mnnh_init init) {
    if (init != MNNH_INIT_HE && init != MNNH_INIT_GLOROT)
        return mnnh_error_set(MNNH_ERR_ARG, "unknown weight initialisation %d", (int)init);
    float *host = calloc(m->tab.total ? m->tab.total : 1, sizeof(float));
    if (!host) return mnnh_error_set(MNNH_ERR_NOMEM, "%zu parameters", m->tab.total);
    for (int i = 0; i < m->tab.count; i++) {
        const mnnh_param_tensor *t = &m->tab.t[i];
        if (!strstr(t->name, "/weight")) continue; /* biases start at 0 */
        double sd = tensor_init_sd(m, t, init);
        mnnh_rng rng;
        mnnh_rng_init(&rng, seed, (uint64_t)i); /* one stream per tensor */
        for (size_t j = 0; j < t->size; j++) host[t->offset + j] = (float)(sd * mnnh_rng_normal(&rng));
    }
    mnnh_status st = mnnh_model_set_params(m, host);
    free(host);
    return st;
}

/* Does a ReLU follow kernel layer k (1..K) of a level or of the adjacent
 * part? Every one but the last adjacent layer (Algorithm 3); the one rule
 * for the forward/backward geometry and the initial ReLU biases. */
static int kernel_has_relu(const mnnh_model *m, int k, int is_adjacent) {
    return !(is_adjacent && k == m->arch.K);
}

/* host[bias of tensor-table weight ti] = value */
static void fill_bias(const mnnh_model *m, float *host, int ti, float value) {
    const mnnh_param_tensor *t = &m->tab.t[ti + 1];
    for (size_t j = 0; j < t->size; j++) host[t->offset + j] = value;
}

mnnh_status mnnh_model_set_relu_biases(mnnh_model *m, float value) {
    if (!isfinite(value)) return mnnh_error_set(MNNH_ERR_ARG, "initial ReLU bias %g is not finite", value);
    float *host = malloc((m->tab.total ? m->tab.total : 1) * sizeof(float));
    if (!host) return mnnh_error_set(MNNH_ERR_NOMEM, "%zu parameters", m->tab.total);
    mnnh_status st = mnnh_model_get_params(m, host);
    for (int k = 1; k <= m->arch.K && !st; k++) {
        for (int l = 2; l <= m->arch.L; l++)
            if (kernel_has_relu(m, k, 0)) fill_bias(m, host, m->level[l].t_kernel[k - 1], value);
        if (kernel_has_relu(m, k, 1)) fill_bias(m, host, m->adj.t_kernel[k - 1], value);
    }
    if (!st) st = mnnh_model_set_params(m, host);
    free(host);
    return st;
}

mnnh_status mnnh_model_init_params(mnnh_model *m, uint64_t seed) {
    return mnnh_model_init_params_with(m, seed, MNNH_INIT_HE);
}

/* ---- forward / backward ---- */
#define W_OF(m, ti) ((m)->params + (m)->tab.t[(ti)].offset)
#define B_OF(m, ti) ((m)->params + (m)->tab.t[(ti) + 1].offset)
#define DW_OF(m, ti) ((m)->grads + (m)->tab.t[(ti)].offset)
#define DB_OF(m, ti) ((m)->grads + (m)->tab.t[(ti) + 1].offset)

static mnnh_geom kernel_geom(const mnnh_model *m, mnnh_geom g, int k, int is_adjacent) {
    g.relu = !m->all_linear && kernel_has_relu(m, k, is_adjacent);
    return g;
}

static mnnh_status forward_level(mnnh_model *m, level_t *lv, int B, float *y) {
    const mnnh_backend_ops *op = m->be->ops;
    MNNH_TRY(op->restrict_fwd(m->be, &lv->g_restrict, B, m->vin, W_OF(m, lv->t_restrict),
                              B_OF(m, lv->t_restrict), lv->act[0]));
    for (int k = 1; k <= m->arch.K; k++) {
        mnnh_geom g = kernel_geom(m, lv->g_kernel, k, 0);
        int t = lv->t_kernel[k - 1];
        MNNH_TRY(op->kernel_fwd(m->be, &g, B, lv->act[k - 1], W_OF(m, t), B_OF(m, t), lv->act[k]));
    }
    return op->interp_fwd(m->be, &lv->g_interp, B, lv->act[m->arch.K], W_OF(m, lv->t_interp),
                          B_OF(m, lv->t_interp), y);
}

static mnnh_status forward_adjacent(mnnh_model *m, int B, float *y) {
    const mnnh_backend_ops *op = m->be->ops;
    adjacent_t *ad = &m->adj;
    MNNH_TRY(op->gather(m->be, &ad->g_block, B, m->vin, ad->act[0]));
    for (int k = 1; k <= m->arch.K; k++) {
        mnnh_geom g = kernel_geom(m, ad->g_kernel, k, 1);
        int t = ad->t_kernel[k - 1];
        MNNH_TRY(op->kernel_fwd(m->be, &g, B, ad->act[k - 1], W_OF(m, t), B_OF(m, t), ad->act[k]));
    }
    return op->scatter_add(m->be, &ad->g_block, B, ad->act[m->arch.K], y);
}

static mnnh_status check_batch(mnnh_model *m, int B) {
    if (B < 1 || B > m->max_batch)
        return mnnh_error_set(MNNH_ERR_ARG, "batch %d outside 1..%d (call mnnh_model_reserve)", B,
                              m->max_batch);
    return MNNH_OK;
}

/* A level through the backend's fused op (no activations kept). */
static mnnh_status forward_level_fused(mnnh_model *m, level_t *lv, int B, float *y) {
    mnnh_geom gk[MAX_K];
    const float *Wk[MAX_K], *bk[MAX_K];
    for (int k = 1; k <= m->arch.K; k++) {
        gk[k - 1] = kernel_geom(m, lv->g_kernel, k, 0);
        Wk[k - 1] = W_OF(m, lv->t_kernel[k - 1]);
        bk[k - 1] = B_OF(m, lv->t_kernel[k - 1]);
    }
    mnnh_level_params lp = {&lv->g_restrict, &lv->g_interp, gk, m->arch.K,
                            W_OF(m, lv->t_restrict), B_OF(m, lv->t_restrict),
                            W_OF(m, lv->t_interp), B_OF(m, lv->t_interp), Wk, bk};
    return m->be->ops->level_fwd(m->be, &lp, B, m->vin, y, lv->act[0], lv->act[1]);
}

/* The adjacent part through the backend's fused op (no activations kept;
 * act[0], act[1] are its work buffers). */
static mnnh_status forward_adjacent_fused(mnnh_model *m, int B, float *y) {
    adjacent_t *ad = &m->adj;
    mnnh_geom gk[MAX_K];
    const float *Wk[MAX_K], *bk[MAX_K];
    for (int k = 1; k <= m->arch.K; k++) {
        gk[k - 1] = kernel_geom(m, ad->g_kernel, k, 1);
        Wk[k - 1] = W_OF(m, ad->t_kernel[k - 1]);
        bk[k - 1] = B_OF(m, ad->t_kernel[k - 1]);
    }
    mnnh_adjacent_params ap = {&ad->g_block, gk, m->arch.K, Wk, bk};
    return m->be->ops->adjacent_fwd(m->be, &ap, B, m->vin, y, ad->act[0], ad->act[1]);
}

/* ---- running the parts ---- */
/* One part's work on part thread t (its buffers: yacc[t], dbuf[t]). */
typedef mnnh_status (*part_fn)(mnnh_model *m, int p, int t, int B, const void *arg);

/* Runs fn on every part: in order p = 0..L-1 on a team T of 1; else each
 * part on its scheduled thread, a thread's parts in order. A team smaller
 * than planned folds the owners onto its threads (owner mod team size), so a
 * part thread's buffers are still used by one thread at a time. The first
 * failing part's error (by part index, whichever thread ran it) is returned
 * with its message. */
static mnnh_status run_parts(mnnh_model *m, part_fn fn, int B, const void *arg, int T) {
    int n = nparts(m);
    if (T < 2) {
        for (int p = 0; p < n; p++) MNNH_TRY(fn(m, p, 0, B, arg));
        return MNNH_OK;
    }
    mnnh_status st[MAX_PARTS] = {MNNH_OK};
    char msg[MAX_PARTS][512]; /* shared: the error buffers are thread-local */
#ifdef _OPENMP
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads();
        for (int p = 0; p < n; p++) {
            if (m->part_owner[p] % team != t) continue;
            st[p] = fn(m, p, m->part_owner[p], B, arg);
            if (st[p]) snprintf(msg[p], sizeof msg[p], "%s", mnnh_error_msg());
        }
    }
#endif
    for (int p = 0; p < n; p++)
        if (st[p]) return mnnh_error_set(st[p], "%s", msg[p]);
    return MNNH_OK;
}

/* Part p's forward, accumulated into part thread t's output. keep = 1: store
 * every activation for mnnh_model_backward; keep = 0 (inference): the part
 * may go through the backend's fused level_fwd or adjacent_fwd. */
static mnnh_status part_forward(mnnh_model *m, int p, int t, int B, const void *arg) {
    const mnnh_backend_ops *op = m->be->ops;
    int fusable = !*(const int *)arg && m->arch.K <= MNNH_LEVEL_MAX_K;
    float *y = t ? m->yacc[t] : m->y;
    if (p < m->arch.L - 1) {
        level_t *lv = &m->level[p + 2];
        return fusable && op->level_fwd ? forward_level_fused(m, lv, B, y)
                                        : forward_level(m, lv, B, y);
    }
    return fusable && op->adjacent_fwd ? forward_adjacent_fused(m, B, y)
                                       : forward_adjacent(m, B, y);
}

/* y += the other part threads' outputs, in thread order. Host memory: only
 * backends with concurrent_parts (host backends) have part threads. */
static void sum_part_outputs(mnnh_model *m, size_t G) {
    for (int t = 1; t < m->part_threads; t++) {
        float *restrict y = m->y;
        const float *restrict x = m->yacc[t];
#pragma omp parallel for schedule(static) if (G > 65536)
        for (size_t i = 0; i < G; i++) y[i] += x[i];
    }
}

static mnnh_status forward_impl(mnnh_model *m, int B, const float *v, float *u, int keep) {
    MNNH_TRY(check_batch(m, B));
    const mnnh_backend_ops *op = m->be->ops;
    size_t G = (size_t)B * m->grid;
    m->last_B = -1; /* until this forward has completed with its activations */
    MNNH_TRY(op->affine(m->be, G, v, m->norm.input_scale, m->norm.input_shift, m->vin));
    MNNH_TRY(op->zero(m->be, m->y, G * sizeof(float)));
    int team = parts_team(m, B);
    for (int t = 1; team > 1 && t < m->part_threads; t++)
        MNNH_TRY(op->zero(m->be, m->yacc[t], G * sizeof(float)));
    MNNH_TRY(run_parts(m, part_forward, B, &keep, team));
    if (team > 1) sum_part_outputs(m, G);
    if (m->norm.output_shift != 0.0f)
        MNNH_TRY(op->affine(m->be, G, m->y, 1.0f, m->norm.output_shift, m->y));
    if (m->norm.density_ne > 0) {
        /* kept in pred: the density backward reads its output */
        MNNH_TRY(op->density_fwd(m->be, B, m->grid, m->y, m->norm.density_ne,
                                 m->norm.cell_volume, m->pred, m->sums));
        MNNH_TRY(op->copy(m->be, u, m->pred, G * sizeof(float)));
    } else {
        MNNH_TRY(op->copy(m->be, u, m->y, G * sizeof(float)));
    }
    m->last_B = keep ? B : -1;
    return MNNH_OK;
}

mnnh_status mnnh_model_forward(mnnh_model *m, int B, const float *v, float *u) {
    return forward_impl(m, B, v, u, 1);
}

mnnh_status mnnh_model_infer(mnnh_model *m, int B, const float *v, float *u) {
    return forward_impl(m, B, v, u, 0);
}

/* Backward through the K kernel layers of one part. The gradient of act[K]
 * is in dbuf[0] on entry; layers ping-pong between dbuf[0] and dbuf[1].
 * Returns in *where the buffer holding the gradient of act[0], or NULL when
 * need_d0 is 0 (the adjacent part: act[0] is a reshape of the data). */
static mnnh_status backward_kernels(mnnh_model *m, const mnnh_geom *gk, float **act,
                                    const int *tk, int is_adjacent, int need_d0, int B,
                                    float **dbuf, float **where) {
    const mnnh_backend_ops *op = m->be->ops;
    int w = 0;
    for (int k = m->arch.K; k >= 1; k--) {
        mnnh_geom g = kernel_geom(m, *gk, k, is_adjacent);
        float *din = (k > 1 || need_d0) ? dbuf[w ^ 1] : NULL;
        int t = tk[k - 1];
        MNNH_TRY(op->kernel_bwd(m->be, &g, B, act[k - 1], W_OF(m, t), act[k], dbuf[w], din,
                                DW_OF(m, t), DB_OF(m, t)));
        w ^= 1;
    }
    *where = need_d0 ? dbuf[w] : NULL;
    return MNNH_OK;
}

static mnnh_status backward_level(mnnh_model *m, level_t *lv, const float *dy, int B,
                                  float **dbuf) {
    const mnnh_backend_ops *op = m->be->ops;
    float *d0;
    MNNH_TRY(op->interp_bwd(m->be, &lv->g_interp, B, lv->act[m->arch.K], W_OF(m, lv->t_interp),
                            dy, dbuf[0], DW_OF(m, lv->t_interp), DB_OF(m, lv->t_interp)));
    MNNH_TRY(backward_kernels(m, &lv->g_kernel, lv->act, lv->t_kernel, 0, 1, B, dbuf, &d0));
    return op->restrict_bwd(m->be, &lv->g_restrict, B, m->vin, W_OF(m, lv->t_restrict), d0, NULL,
                            DW_OF(m, lv->t_restrict), DB_OF(m, lv->t_restrict));
}

static mnnh_status backward_adjacent(mnnh_model *m, const float *dy, int B, float **dbuf) {
    float *unused;
    /* flatten's backward is the block gather */
    MNNH_TRY(m->be->ops->gather(m->be, &m->adj.g_block, B, dy, dbuf[0]));
    return backward_kernels(m, &m->adj.g_kernel, m->adj.act, m->adj.t_kernel, 1, 0, B, dbuf,
                            &unused);
}

/* Part p's backward on part thread t's buffers (the parts' parameter
 * gradients are disjoint). */
static mnnh_status part_backward(mnnh_model *m, int p, int t, int B, const void *dy) {
    if (p < m->arch.L - 1) return backward_level(m, &m->level[p + 2], dy, B, m->dbuf[t]);
    return backward_adjacent(m, dy, B, m->dbuf[t]);
}

mnnh_status mnnh_model_backward(mnnh_model *m, int B, const float *du) {
    MNNH_TRY(check_batch(m, B));
    if (m->last_B != B)
        return mnnh_error_set(MNNH_ERR_INTERNAL, "backward of batch %d without its forward", B);
    const float *dy = du;
    if (m->norm.density_ne > 0) {
        MNNH_TRY(m->be->ops->density_bwd(m->be, B, m->grid, m->y, m->pred, m->sums,
                                         m->norm.density_ne, m->norm.cell_volume, du, m->dy));
        dy = m->dy;
    }
    return run_parts(m, part_backward, B, dy, parts_team(m, B));
}

/* ---- loss ---- */
static void sum_errors(const float *err2, int B, double *sum_err2, double *sum_err) {
    double s2 = 0, s1 = 0;
    for (int b = 0; b < B; b++) {
        s2 += err2[b];
        s1 += sqrt((double)err2[b]);
    }
    if (sum_err2) *sum_err2 = s2;
    if (sum_err) *sum_err = s1;
}

mnnh_status mnnh_model_train_batch(mnnh_model *m, int B, const float *v, const float *target,
                                   int grad_count, double *sum_err2, double *sum_err) {
    if (grad_count < 1) return mnnh_error_set(MNNH_ERR_ARG, "grad_count %d", grad_count);
    MNNH_TRY(mnnh_model_forward(m, B, v, m->pred));
    MNNH_TRY(m->be->ops->relerr(m->be, B, m->grid, m->pred, target, m->err2, m->dpred,
                                1.0f / (float)grad_count));
    MNNH_TRY(mnnh_backend_download(m->be, m->err2_host, m->err2, sizeof(float) * B));
    sum_errors(m->err2_host, B, sum_err2, sum_err);
    return mnnh_model_backward(m, B, m->dpred);
}

mnnh_status mnnh_model_eval_batch(mnnh_model *m, int B, const float *v, const float *target,
                                  float *pred, double *err) {
    float *u = pred ? pred : m->pred;
    MNNH_TRY(mnnh_model_infer(m, B, v, u));
    MNNH_TRY(m->be->ops->relerr(m->be, B, m->grid, u, target, m->err2, NULL, 1.0f));
    MNNH_TRY(mnnh_backend_download(m->be, m->err2_host, m->err2, sizeof(float) * B));
    if (err)
        for (int b = 0; b < B; b++) err[b] = sqrt((double)m->err2_host[b]);
    return MNNH_OK;
}

/* Forward flops per sample of part p (level p + 2, or the adjacent part). */
static double part_flops(const mnnh_model *m, int p) {
    if (p < m->arch.L - 1) {
        const level_t *lv = &m->level[p + 2];
        double P = (double)mnnh_geom_positions(&lv->g_kernel);
        double S = (double)mnnh_geom_block(&lv->g_restrict);
        double T = (double)mnnh_geom_taps(&lv->g_kernel);
        return 2.0 * P * m->arch.r * S                           /* restrict */
               + 2.0 * P * m->arch.r * m->arch.r * T * m->arch.K /* kernels */
               + 2.0 * P * S * m->arch.r;                        /* interp */
    }
    const mnnh_geom *g = &m->adj.g_kernel;
    return 2.0 * (double)mnnh_geom_positions(g) * g->cin * g->cout * (double)mnnh_geom_taps(g) *
           m->arch.K;
}

double mnnh_model_forward_flops(const mnnh_model *m) {
    double f = 0;
    for (int p = 0; p < nparts(m); p++) f += part_flops(m, p);
    return f;
}
