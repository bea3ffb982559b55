/* cpu_kernels.c: the "cpu" backend's op table (fast CPU kernels).
 *
 * Kernel layers (CK/LCK) are direct convolutions written once in
 * cpu_conv_body.h (compiled once per instruction set and chosen at run time
 * with __builtin_cpu_supports; MNNH_CPU_ISA=avx512|avx2|sse overrides), with
 * two data layouts:
 * - batch-vectorised: a block of VB samples (16 with AVX-512, 8 with AVX2, 4
 *   with SSE2) is transposed into scratch as X[channel][padded
 *   position][VB], the periodic wrap materialised as halo positions; a tile
 *   keeps up to ACC output-channel x position accumulators in registers and
 *   streams the taps. The cnn backward runs block by block (input gradient,
 *   then lane-wise weight / bias gradient sums while the block is hot). Used
 *   when n is not a multiple of VB (but not for the small lc layers of the
 *   dense path below) and by the fused level op.
 * - position-vectorised (n a multiple of VB): each sample stays [C][P]; a
 *   vector is VB consecutive positions of a row and a tile spans a group of
 *   samples. cnn forward; lc forward, input gradient and weight gradient
 *   with per-lane weights and per-position sums (no lane reductions). In 1D
 *   (nb <= VB) the kernels read the caller's rows directly (only the wrapping
 *   taps of a row's first and last vectors are shuffled, see wgeo); in 2D
 *   each sample is copied with its halo. The lc forward is bit-identical to
 *   the batch-vectorised one.
 * - dense (small lc layers, cpu_dense_body.h): an lc layer with few
 *   positions against its taps (KS 1D lc n = 4, 8) as one (OC P) x (CI P)
 *   matrix per sample, applied to the caller's [B][C][P] rows.
 * The input gradient is the same convolution with transposed, flipped
 * weights. Restriction, interpolation, reshapes and the elementwise ops are
 * plain loops split over samples.
 *
 * Threads (OpenMP, inside the rank): batch blocks (or samples) are split with
 * a fixed static partition; parameter gradients are summed per thread and the
 * partial sums added in thread order, except the batch-vectorised lc weight
 * gradient (n not a multiple of VB), which is split over positions (each
 * thread owns its positions). So results are identical from run to run at
 * a given thread count and instruction set (bit-exact resume needs that).
 * (Splitting the lc vectors of positions instead was measured slower at 2
 * threads: see lc_vector_threads.)
 * Scratch grows on first use and is then reused: the step loop does not
 * allocate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnnh/backend.h"
#include "mnnh/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>

/* ---------------------------------------------------------------- scratch */
typedef struct {
    char *buf;
    size_t cap; /* bytes */
} cpu_scratch;

/* One per calling thread: the rank's thread, and the model's part threads
 * when the levels run side by side (parts.h). */
static _Thread_local cpu_scratch scratch;

/* OpenMP ends surplus pool threads when a team shrinks; the key's destructor
 * frees such a thread's scratch as it exits (its static TLS outlives the key
 * destructors). The process's initial thread keeps its scratch to the end. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_key_once = PTHREAD_ONCE_INIT;
static void scratch_release(void *p) {
    cpu_scratch *s = p;
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}
static int scratch_key_made;
static void scratch_key_create(void) {
    /* without a key (EAGAIN), an exiting part thread's scratch is not freed */
    scratch_key_made = !pthread_key_create(&scratch_key, scratch_release);
}

static void *scratch_get(size_t bytes) {
    if (bytes > scratch.cap) {
        if (!scratch.buf) {
            pthread_once(&scratch_key_once, scratch_key_create);
            if (scratch_key_made) pthread_setspecific(scratch_key, &scratch);
        }
        free(scratch.buf);
        size_t sz = (bytes + 4095) & ~(size_t)4095;
        scratch.buf = aligned_alloc(64, sz);
        scratch.cap = scratch.buf ? sz : 0;
    }
    return scratch.buf;
}

/* Bump layout: offsets rounded to 64 bytes. */
static size_t take(size_t *off, size_t bytes) {
    size_t o = *off;
    *off += (bytes + 63) & ~(size_t)63;
    return o;
}

/* Inside an enclosing parallel region (the model running its parts side by
 * side, parts.h) an op runs on its calling thread alone: nested teams would
 * oversubscribe the cores, and every split below is sized by this count. */
static int max_threads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}
static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static int nthreads_for(int work) {
    int t = max_threads();
    return t < work ? t : (work > 0 ? work : 1);
}
/* Range [lo, hi) of part t among nt of n items (fixed, static). */
static void part(int n, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long)n * t / nt);
    *hi = (int)((long)n * (t + 1) / nt);
}

/* ------------------------------------------------- vector kernel tables */
typedef struct {
    const float *X;    /* [CI][Pp][VB] */
    const float *W;    /* packed [pos?][CI][T][OC] (pos through wofs) */
    const float *bias; /* NULL, [OC], or [P][OC] when wofs (lc) */
    float *Y;          /* [OC][P][VB] */
    const int *qb;     /* padded index of output position q */
    const int *toff;   /* padded offset of tap t */
    const int *wofs;   /* [P][T] weight offsets (lc) or NULL (cnn) */
    int P, T, CI, Pp, OC, relu;
    const int *yq, *yo; /* NULL: Y[o][q]; else Y[yq[q] + yo[o]] (a grid) */
} conv_args;

typedef struct {
    const float *X, *D;       /* blocks [blk][CI][Pp][VB], [blk][OC][Pp][VB] */
    size_t xstride, dstride;  /* floats per block */
    const int *qb, *toff;
    int blk0, blk1, CI, OC, T, Pp;
    const int *qbd;           /* D[o][qbd[q]], channel stride Ppd */
    int Ppd;                  /* (position-vectorised path: the centre tap's offset) */
    int nvec;                 /* position-vectorised path: vectors per channel */
} dw_args;

/* Position-vectorised lc convolution over a group of ns padded samples
 * (cpu_conv_body.h, lconv): per-lane weights and biases. */
typedef struct {
    const float *X;           /* padded input [s][CI][Pp] */
    size_t xss;               /* floats per sample */
    int ns, nvec, T, CI, Pp, P, COUT, relu;
    const int *qoff, *toff;
    const float *Wl;          /* [P / VB][CI][T][COUT][VB]: one vector's weights contiguous */
    const float *bl;          /* [COUT][P] or NULL */
    float *Y;                 /* [s][COUT][P] */
    size_t yss;
    int shared;               /* cnn: Wl [CI][T][COUT] and bl [COUT] scalars */
    const int *elo, *ehi;     /* unpadded rows (wgeo): edge vectors, or NULL */
    const int *eidx;
    int q0, q1;               /* the vectors [q0, q1) of each sample (a thread's share) */
} lconv_args;

/* Position-vectorised lc weight / bias gradient over a group of ns samples
 * (padded, each vector holds VB consecutive positions, one position per
 * lane, so each lane has its own gradient sums: no lane reduction), for the
 * vectors [q0, q1) of each sample; the sums hold the lanes of those vectors
 * only (srow = (q1 - q0) VB floats per row). */
typedef struct {
    const float *X, *D;       /* padded [s][CI][Pp], masked padded [s][OC][Pp] */
    size_t xss, dss;          /* floats per sample */
    int ns, nvec, T, CI, OC, Pp, srow, ctr;
    const int *qoff, *toff;   /* as pgeo */
    float *dWt;               /* [OC][CI][T][srow] lane sums */
    float *dbt;               /* [OC][srow] lane sums */
    const int *elo, *ehi;     /* unpadded X rows (wgeo): edge vectors, or NULL */
    const int *eidx;
    int q0, q1;
} lpv_args;

typedef struct {
    const char *name;
    int vb;
    void (*pad_row)(float *restrict d, const float *restrict x, const float *restrict m, int n,
                    int nb);
    void (*pad_rows)(float *restrict d, size_t Pp, const float *restrict x,
                     const float *restrict m, int C, int n, int nb);
    void (*to_block)(const float *in, int nv, int C, int P, const int *qb, int Pp,
                     const int *halo, int nhalo, float *X);
    void (*grad_to_block)(const float *out, const float *dout, int relu, int nv, int C, int P,
                          const int *qb, int Pp, const int *halo, int nhalo, float *D);
    void (*from_block)(const float *Y, int nv, int C, int P, float *out, int add);
    void (*conv)(const conv_args *a);
    void (*dw)(const dw_args *a, int q0, int q1, float *dWp);
    void (*db)(const dw_args *a, int q0, int q1, int lc, float *db);
    void (*dbx)(const dw_args *a, int q0, int q1, int lc, float *db);
    void (*pconv)(const conv_args *a);
    void (*pdw)(const dw_args *a, float *dWp, float *db);
    /* lane-wise weight / bias gradient sums (cnn, block by block), reduced by hsum_add */
    void (*dwv)(const dw_args *a, int q0, int q1, float *accv);
    void (*dbv)(const dw_args *a, int q0, int q1, float *accb);
    void (*hsum_add)(const float *acc, size_t n, float *dst);
    void (*lpv_bwd)(const lpv_args *a);
    void (*lconv)(const lconv_args *a);
    void (*cols_to_rows)(const float *src, size_t sstride, int ncols, const int *dstoff,
                         float *dst);
    void (*add_rows_tr)(const float *src, size_t srow, size_t sthr, int nt, int nk, float *dst,
                        size_t drow);
    void (*lc_bwd_windows)(const float *U, int Pu, int nb, int CI, int T, int OC, float *Wd);
    /* small lc layers as one dense matrix (cpu_dense_body.h) */
    void (*dense_rows)(const float *X, size_t xs, int nk, const float *MT, const float *bias,
                       int J, int relu, float *Y, size_t ys, int ns);
    void (*dense_grad_rows)(const float *out, const float *dout, int relu, int J, int ns,
                            float *D);
    void (*dense_outer)(const float *X, size_t xs, int nk, const float *D, int J, int ns,
                        float *dMT, float *db);
} simd_kernels;

#define CK_STR_(x) #x
#define CK_STR(x) CK_STR_(x)

#if defined(__x86_64__) || defined(__i386__)
#define CK_X86 1
#include <immintrin.h> /* masked partial loads and stores (cpu_dense_body.h) */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
#define ISA avx512
#define VB 16
#define ACC 24
#define DWACC 24
#define COMAX 16
#include "cpu_conv_body.h"
#undef ISA
#undef VB
#undef ACC
#undef DWACC
#undef COMAX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ISA avx2
#define VB 8
#define ACC 12
#define DWACC 10
#define COMAX 12
#include "cpu_conv_body.h"
#undef ISA
#undef VB
#undef ACC
#undef DWACC
#undef COMAX
#pragma GCC pop_options
#endif

/* the portable baseline (SSE2 on x86-64) */
#define ISA sse
#define VB 4
#define ACC 12
#define DWACC 10
#define COMAX 12
#include "cpu_conv_body.h"
#undef ISA
#undef VB
#undef ACC
#undef DWACC
#undef COMAX

static const simd_kernels *isa_forced;

/* Which kernel-layer paths may use the position-vectorised kernels:
 * bit 0 forward, bit 1 backward. Default: forward only (measured: the
 * batch-vectorised backward trains faster). MNNH_CPU_PV=0..3 overrides. */
static int pv_mask(void) {
    static int mask = -1;
    if (mask < 0) {
        const char *e = getenv("MNNH_CPU_PV");
        mask = e && *e ? atoi(e) & 3 : 1;
    }
    return mask;
}

static const simd_kernels *isa_best(void) {
#ifdef CK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return &kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &kernels_avx2;
#endif
    return &kernels_sse;
}

static const simd_kernels *isa_by_name(const char *name) {
    const simd_kernels *best = isa_best();
    if (!strcmp(name, "sse")) return &kernels_sse;
#ifdef CK_X86
    if (!strcmp(name, "avx2") && best != &kernels_sse) return &kernels_avx2;
    if (!strcmp(name, "avx512") && best == &kernels_avx512) return &kernels_avx512;
#endif
    return NULL;
}

static const simd_kernels *kern(void) {
    if (isa_forced) return isa_forced;
    const char *env = getenv("MNNH_CPU_ISA");
    const simd_kernels *k = env && *env ? isa_by_name(env) : NULL;
    return k ? k : isa_best();
}

/* Not in a public header (tests and benchmarks declare them): force the
 * instruction set of the cpu backend ("avx512", "avx2", "sse"; NULL = best).
 * Returns 0, or -1 when this machine cannot run it. */
int mnnh_cpu_kernels_set_isa(const char *name) {
    if (!name) {
        isa_forced = NULL;
        return 0;
    }
    const simd_kernels *k = isa_by_name(name);
    if (!k) return -1;
    isa_forced = k;
    return 0;
}
const char *mnnh_cpu_kernels_isa(void) { return kern()->name; }

static int dense_usable(const mnnh_geom *g, int VBk);
/* Not in a public header (tests declare it): 1 when kernel layer g takes the
 * dense small-layer path with the current instruction set. */
int mnnh_cpu_kernels_dense(const mnnh_geom *g) { return dense_usable(g, kern()->vb); }

/* ------------------------------------------------ kernel-layer geometry */
typedef struct {
    int P, T, Pp, nhalo;
    int *qb, *toff, *toffb, *halo; /* toffb: taps of the transposed convolution */
    int *srcpos;                   /* [P][T]: position read by tap t of q (lc bwd) */
} kgeo;

static int wrapi(int x, int n) { return ((x % n) + n) % n; }

static size_t kgeo_bytes(const mnnh_geom *g, int need_src) {
    int n = g->n, nb = g->nb, w = 2 * nb + 1, Wp = n + 2 * nb;
    size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    size_t Pp = g->dim == 2 ? (size_t)Wp * Wp : (size_t)Wp;
    (void)w;
    size_t off = 0;
    take(&off, P * sizeof(int));
    take(&off, T * sizeof(int));
    take(&off, T * sizeof(int));
    take(&off, 2 * (Pp - P) * sizeof(int));
    if (need_src) take(&off, P * T * sizeof(int));
    return off;
}

static void kgeo_build(const mnnh_geom *g, char *mem, int need_src, kgeo *k) {
    int n = g->n, nb = g->nb, w = 2 * nb + 1, Wp = n + 2 * nb;
    k->P = (int)mnnh_geom_positions(g);
    k->T = (int)mnnh_geom_taps(g);
    k->Pp = g->dim == 2 ? Wp * Wp : Wp;
    k->nhalo = k->Pp - k->P;
    size_t off = 0;
    k->qb = (int *)(mem + take(&off, k->P * sizeof(int)));
    k->toff = (int *)(mem + take(&off, k->T * sizeof(int)));
    k->toffb = (int *)(mem + take(&off, k->T * sizeof(int)));
    k->halo = (int *)(mem + take(&off, 2 * (size_t)k->nhalo * sizeof(int)));
    k->srcpos = need_src ? (int *)(mem + take(&off, (size_t)k->P * k->T * sizeof(int))) : NULL;
    int h = 0;
    if (g->dim == 1) {
        for (int q = 0; q < n; q++) k->qb[q] = q + nb;
        for (int t = 0; t < w; t++) k->toff[t] = t - nb, k->toffb[t] = nb - t;
        for (int u = 0; u < Wp; u++)
            if (u < nb || u >= n + nb) {
                k->halo[2 * h] = u;
                k->halo[2 * h + 1] = wrapi(u - nb, n) + nb;
                h++;
            }
        if (need_src)
            for (int q = 0; q < n; q++)
                for (int t = 0; t < w; t++) k->srcpos[q * w + t] = wrapi(q - (t - nb), n);
    } else {
        for (int q1 = 0; q1 < n; q1++)
            for (int q2 = 0; q2 < n; q2++) k->qb[q1 * n + q2] = (q1 + nb) * Wp + q2 + nb;
        for (int t1 = 0; t1 < w; t1++)
            for (int t2 = 0; t2 < w; t2++) {
                k->toff[t1 * w + t2] = (t1 - nb) * Wp + (t2 - nb);
                k->toffb[t1 * w + t2] = -((t1 - nb) * Wp + (t2 - nb));
            }
        for (int u1 = 0; u1 < Wp; u1++)
            for (int u2 = 0; u2 < Wp; u2++)
                if (u1 < nb || u1 >= n + nb || u2 < nb || u2 >= n + nb) {
                    k->halo[2 * h] = u1 * Wp + u2;
                    k->halo[2 * h + 1] = (wrapi(u1 - nb, n) + nb) * Wp + wrapi(u2 - nb, n) + nb;
                    h++;
                }
        if (need_src)
            for (int q1 = 0; q1 < n; q1++)
                for (int q2 = 0; q2 < n; q2++)
                    for (int t1 = 0; t1 < w; t1++)
                        for (int t2 = 0; t2 < w; t2++)
                            k->srcpos[(size_t)(q1 * n + q2) * k->T + t1 * w + t2] =
                                wrapi(q1 - (t1 - nb), n) * n + wrapi(q2 - (t2 - nb), n);
    }
}

static void add_packed(float *dst, const float *part_, size_t KK, int OC, int transpose);
static void add_thread_parts(float *dW, float *db, const float *parts, int nt, size_t part_floats,
                             size_t KK, int OC, int transpose, size_t nbias);
static size_t part_stride(size_t floats);

/* ------------------------------ position-vectorised kernel layers (cnn) */
/* Used when the variant is cnn and n is a multiple of the vector width: each
 * sample stays in its [C][P] layout (copied with its halo), so there is no
 * transpose; see cpu_conv_body.h. */
typedef struct {
    int nvec, T, Pp, ctr;
    int *qoff, *toff, *toffb;
} pgeo;

static size_t pgeo_bytes(const mnnh_geom *g, int VBk) {
    size_t off = 0;
    take(&off, mnnh_geom_positions(g) / VBk * sizeof(int));
    take(&off, mnnh_geom_taps(g) * sizeof(int));
    take(&off, mnnh_geom_taps(g) * sizeof(int));
    return off;
}
static void pgeo_build(const mnnh_geom *g, int VBk, char *mem, pgeo *k) {
    int n = g->n, nb = g->nb, w = 2 * nb + 1, Wp = n + 2 * nb;
    size_t off = 0;
    k->nvec = (int)(mnnh_geom_positions(g) / VBk);
    k->T = (int)mnnh_geom_taps(g);
    k->Pp = g->dim == 2 ? Wp * Wp : Wp;
    k->ctr = g->dim == 2 ? nb * Wp + nb : nb;
    k->qoff = (int *)(mem + take(&off, k->nvec * sizeof(int)));
    k->toff = (int *)(mem + take(&off, k->T * sizeof(int)));
    k->toffb = (int *)(mem + take(&off, k->T * sizeof(int)));
    if (g->dim == 1) {
        for (int q = 0; q < k->nvec; q++) k->qoff[q] = q * VBk;
        for (int t = 0; t < w; t++) k->toff[t] = t;
    } else {
        int per_row = n / VBk;
        for (int q = 0; q < k->nvec; q++) k->qoff[q] = (q / per_row) * Wp + (q % per_row) * VBk;
        for (int t1 = 0; t1 < w; t1++)
            for (int t2 = 0; t2 < w; t2++) k->toff[t1 * w + t2] = t1 * Wp + t2;
    }
    for (int t = 0; t < k->T; t++) k->toffb[t] = k->toff[k->T - 1 - t];
}

/* ------------------------ unpadded 1D rows (no padded copy; cpu_conv_body.h) */
/* The position-vectorised 1D kernels can read the caller's rows [C][n]
 * directly: vector q's tap t is the VB floats at q VB + toff[t] (toff signed,
 * t - nb) when they lie inside the row; only the first and last vectors of
 * a row wrap around, and for them tap t is a lane shuffle (eidx[t]) of the
 * aligned vectors at elo[e][t] and ehi[e][t] (e = 0 first, 1 last). That
 * needs nb <= VB. The padded copy this replaces cost 15-25% of the KS 1D
 * position-vectorised layers (a store stream per activation and per layer). */
typedef struct {
    int nvec, T;
    int *qoff, *toff, *toffb;       /* toffb: taps of the transposed convolution */
    int *elo, *ehi, *eidx;          /* [2][T], [2][T], [T][VB] for toff */
    int *elob, *ehib, *eidxb;       /* the same for toffb */
} wgeo;

static int wgeo_usable(const mnnh_geom *g, int VBk) {
    return g->dim == 1 && g->n % VBk == 0 && g->nb <= VBk;
}

/* The thread count of an lc layer on unpadded 1D rows that splits the
 * vectors of positions between the threads (thread t takes vectors
 * [q0, q1) of every sample: it would pack and read only its share of the
 * per-position weights and own its positions' weight gradient, no partial
 * sums), or 0 where it splits the samples. */
static int lc_vector_threads(const mnnh_geom *g, int VBk) {
    if (!g->local || !wgeo_usable(g, VBk)) return 0;
    /* Only at 1 thread (where it is the sample split without the barrier).
     * Measured on an idle 2-core machine (docs/performance.md, session 4):
     * at 2 threads the vector split made the KS 1D lc forward 1.5-2.8x
     * slower than the sample split (n = 32, 64, adjacent), the threads
     * spending twice the CPU time: their outputs interleave 64 B apart in
     * every row, and each core's prefetchers pull the other's lines. */
    return max_threads() == 1 ? 1 : 0;
}

/* Vectors [q0, q1) and samples [lo, hi) of thread t among nt: a share of
 * the vectors for all samples (vsplit) or a share of the samples. */
static void lc_share(int vsplit, int nvec, int B, int t, int nt, int *q0, int *q1, int *lo,
                     int *hi) {
    *q0 = 0, *q1 = nvec, *lo = 0, *hi = B;
    if (vsplit) part(nvec, t, nt, q0, q1);
    else part(B, t, nt, lo, hi);
}

static size_t wgeo_bytes(const mnnh_geom *g, int VBk) {
    size_t off = 0, T = mnnh_geom_taps(g);
    take(&off, (size_t)g->n / VBk * sizeof(int));
    for (int k = 0; k < 2; k++) {
        take(&off, T * sizeof(int));
        take(&off, 2 * T * sizeof(int));
        take(&off, 2 * T * sizeof(int));
        take(&off, T * VBk * sizeof(int));
    }
    return off;
}

/* Edge tables of the signed tap offsets off[T] (see wgeo). A tap of an
 * edge vector whose window stays inside the row (the first vector's right
 * taps, the last one's left taps) is marked ehi = -1 and read directly at
 * elo: half the shuffles, which share a port with the multiply-adds. */
static void wgeo_edges(const int *off, int T, int nvec, int VBk, int *elo, int *ehi, int *eidx) {
    const int n = nvec * VBk;
    for (int e = 0; e < 2; e++) {
        int q = e ? nvec - 1 : 0;
        for (int t = 0; t < T; t++) {
            int start = q * VBk + off[t], lo = off[t] < 0 ? (q - 1 + nvec) % nvec : q;
            int inside = start >= 0 && start + VBk <= n;
            elo[e * T + t] = inside ? start : lo * VBk;
            ehi[e * T + t] = inside ? -1 : (lo + 1) % nvec * VBk;
        }
    }
    for (int t = 0; t < T; t++)
        for (int j = 0; j < VBk; j++) eidx[t * VBk + j] = (off[t] < 0 ? VBk + off[t] : off[t]) + j;
}

static void wgeo_build(const mnnh_geom *g, int VBk, char *mem, wgeo *w) {
    size_t off = 0;
    w->nvec = g->n / VBk;
    w->T = (int)mnnh_geom_taps(g);
    int T = w->T;
    w->qoff = (int *)(mem + take(&off, (size_t)w->nvec * sizeof(int)));
    int **tabs[2][4] = {{&w->toff, &w->elo, &w->ehi, &w->eidx},
                        {&w->toffb, &w->elob, &w->ehib, &w->eidxb}};
    for (int k = 0; k < 2; k++) {
        *tabs[k][0] = (int *)(mem + take(&off, (size_t)T * sizeof(int)));
        *tabs[k][1] = (int *)(mem + take(&off, 2 * (size_t)T * sizeof(int)));
        *tabs[k][2] = (int *)(mem + take(&off, 2 * (size_t)T * sizeof(int)));
        *tabs[k][3] = (int *)(mem + take(&off, (size_t)T * VBk * sizeof(int)));
    }
    for (int q = 0; q < w->nvec; q++) w->qoff[q] = q * VBk;
    for (int t = 0; t < T; t++) w->toff[t] = t - g->nb, w->toffb[t] = g->nb - t;
    wgeo_edges(w->toff, T, w->nvec, VBk, w->elo, w->ehi, w->eidx);
    wgeo_edges(w->toffb, T, w->nvec, VBk, w->elob, w->ehib, w->eidxb);
}

/* The periodic halo of a padded row d[0..n+2nb) whose interior d[nb..nb+n)
 * is set: d[u] = d[nb + (u - nb) mod n]. Without a division per element when
 * nb <= n (every model shape): this runs once per sample and channel, where
 * two integer divisions per halo element cost as much as the copy itself. */
static inline void halo_row(float *d, int n, int nb) {
    if (nb <= n) {
        for (int u = 0; u < nb; u++) {
            d[u] = d[u + n];
            d[n + nb + u] = d[nb + u];
        }
        return;
    }
    for (int u = 0; u < nb; u++) d[u] = d[nb + wrapi(u - nb, n)];
    for (int u = n + nb; u < n + 2 * nb; u++) d[u] = d[nb + wrapi(u - nb, n)];
}

/* The periodic halo of a padded sample Xp[C][Pp] whose interior is set. */
static void halo_sample(const mnnh_geom *g, int C, float *Xp, size_t Pp) {
    int n = g->n, nb = g->nb, Wp = n + 2 * nb;
    for (int c = 0; c < C; c++) {
        float *d = Xp + (size_t)c * Pp;
        if (g->dim == 1) {
            halo_row(d, n, nb);
            continue;
        }
        for (int p1 = 0; p1 < n; p1++) halo_row(d + (size_t)(p1 + nb) * Wp, n, nb);
        for (int u = 0; u < Wp; u++)
            if (u < nb || u >= n + nb)
                memcpy(d + (size_t)u * Wp, d + (size_t)(nb + wrapi(u - nb, n)) * Wp,
                       sizeof(float) * Wp);
    }
}

/* d[0..n+2nb) = the padded row of x[0..n) (periodic), masked by m > 0 when
 * m is set (the ISA's pad_row; nb > n, a halo wrapping more than once,
 * completed here). */
static inline void pad_row(const simd_kernels *K, float *restrict d, const float *restrict x,
                           const float *restrict m, int n, int nb) {
    if (nb <= n) {
        K->pad_row(d, x, m, n, nb);
        return;
    }
    K->pad_row(d, x, m, n, 0);
    memmove(d + nb, d, sizeof(float) * n);
    halo_row(d, n, nb);
}

/* Xp[c][padded] = x[c][wrap] of one sample; with mask_out, the ReLU
 * derivative mask (mask_out > 0) is applied (a kernel layer's gradient). */
static void pad_sample(const simd_kernels *K, const mnnh_geom *g, int C, const float *x,
                       const float *mask_out, float *Xp, size_t Pp) {
    int n = g->n, nb = g->nb, Wp = n + 2 * nb;
    size_t P = mnnh_geom_positions(g);
    if (g->dim == 1 && nb <= n) {
        K->pad_rows(Xp, Pp, x, mask_out, C, n, nb);
        return;
    }
    for (int c = 0; c < C; c++) {
        size_t o = (size_t)c * P;
        if (g->dim == 1) {
            pad_row(K, Xp + (size_t)c * Pp, x + o, mask_out ? mask_out + o : NULL, n, nb);
            continue;
        }
        float *d = Xp + (size_t)c * Pp;
        for (int p1 = 0; p1 < n; p1++)
            pad_row(K, d + (size_t)(p1 + nb) * Wp, x + o + (size_t)p1 * n,
                    mask_out ? mask_out + o + (size_t)p1 * n : NULL, n, nb);
        for (int u = 0; u < Wp; u++)
            if (u < nb || u >= n + nb)
                memcpy(d + (size_t)u * Wp, d + (size_t)(nb + wrapi(u - nb, n)) * Wp,
                       sizeof(float) * Wp);
    }
}

/* Samples per tile group of the position-vectorised forward: a tile takes
 * its register block of vectors across the samples of a group, so a small
 * grid (n = 16: one vector per channel) still fills the accumulators. Each
 * output keeps its own accumulation order: same bits as one sample at a time. */
#define PV_GROUP 8

static mnnh_status kernel_fwd_pv(const simd_kernels *K, const mnnh_geom *g, int B,
                                 const float *in, const float *W, const float *b, float *out) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, nt = nthreads_for(B);
    const size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g), wper = (size_t)CI * T * OC;
    const int Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    const int nvec = (int)(P / VBk), nv = PV_GROUP * nvec;
    const size_t xss = ((size_t)CI * Pp + 15) & ~(size_t)15; /* keep every copy 64-byte aligned */
    size_t off = 0;
    size_t o_geo = take(&off, pgeo_bytes(g, VBk));
    size_t o_w = take(&off, wper * sizeof(float));
    size_t o_tab = take(&off, (2 * (size_t)nv + OC) * sizeof(int));
    size_t o_th = take(&off, 0);
    size_t per_thread = (size_t)PV_GROUP * xss * sizeof(float);
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    pgeo pg;
    pgeo_build(g, VBk, mem + o_geo, &pg);
    float *Wpk = (float *)(mem + o_w);
    for (int o = 0; o < OC; o++)
        for (size_t k = 0; k < (size_t)CI * T; k++) Wpk[k * OC + o] = W[(size_t)o * CI * T + k];
    /* vector v of a group = vector q of sample s (v = s nvec + q): input at
     * qv[v] in the group's padded copies, output at yq[v] + yo[o] */
    int *qv = (int *)(mem + o_tab), *yq = qv + nv, *yo = yq + nv;
    for (int v = 0; v < nv; v++) {
        int s = v / nvec, q = v % nvec;
        qv[v] = (int)((size_t)s * xss) + pg.qoff[q];
        yq[v] = (int)((size_t)s * OC * P + (size_t)q * VBk);
    }
    for (int o = 0; o < OC; o++) yo[o] = (int)((size_t)o * P);
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), lo, hi;
        part(B, t, nt, &lo, &hi);
        float *Xp = (float *)(mem + o_th + per_thread * t);
        conv_args a = {Xp, Wpk, b, NULL, qv, pg.toff, NULL, (int)P, (int)T, CI, (int)Pp, OC,
                       g->relu, yq, yo};
        for (int b0 = lo; b0 < hi; b0 += PV_GROUP) {
            int ns = hi - b0 < PV_GROUP ? hi - b0 : PV_GROUP;
            for (int s = 0; s < ns; s++)
                pad_sample(K, g, CI, in + ((size_t)b0 + s) * CI * P, NULL, Xp + (size_t)s * xss, Pp);
            a.P = (int)((size_t)ns * P);
            a.Y = out + (size_t)b0 * OC * P;
            K->pconv(&a);
        }
    }
    return MNNH_OK;
}

static mnnh_status kernel_bwd_pv(const simd_kernels *K, const mnnh_geom *g, int B,
                                 const float *in, const float *W, const float *out,
                                 const float *dout, float *din, float *dW, float *db) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, nt = nthreads_for(B);
    const size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g), wper = (size_t)CI * T * OC;
    const int Wp1 = g->n + 2 * g->nb, Ti = (int)T;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    size_t part_floats = part_stride(wper + OC);
    size_t off = 0;
    size_t o_geo = take(&off, pgeo_bytes(g, VBk));
    size_t o_wb = take(&off, wper * sizeof(float));
    size_t o_X = take(&off, (size_t)B * CI * Pp * sizeof(float));
    size_t o_D = take(&off, (size_t)B * OC * Pp * sizeof(float));
    size_t o_part = take(&off, (size_t)nt * part_floats * sizeof(float));
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    pgeo pg;
    pgeo_build(g, VBk, mem + o_geo, &pg);
    float *Wb = (float *)(mem + o_wb), *Xall = (float *)(mem + o_X), *Dall = (float *)(mem + o_D);
    float *parts = (float *)(mem + o_part);
    for (int co = 0; co < OC; co++)
        for (int ci = 0; ci < CI; ci++)
            for (int tt = 0; tt < Ti; tt++)
                Wb[((size_t)co * Ti + tt) * CI + ci] = W[((size_t)co * CI + ci) * Ti + tt];
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
#pragma omp for schedule(static)
        for (int bi = 0; bi < B; bi++) {
            pad_sample(K, g, CI, in + (size_t)bi * CI * P, NULL, Xall + (size_t)bi * CI * Pp, Pp);
            pad_sample(K, g, OC, dout + (size_t)bi * OC * P, g->relu ? out + (size_t)bi * OC * P : NULL,
                       Dall + (size_t)bi * OC * Pp, Pp);
        }
        if (din) {
            conv_args a = {NULL, Wb, NULL, NULL, pg.qoff, pg.toffb, NULL, (int)P, Ti, OC, (int)Pp,
                           CI, 0, NULL, NULL};
#pragma omp for schedule(static) nowait
            for (int bi = 0; bi < B; bi++) {
                a.X = Dall + (size_t)bi * OC * Pp;
                a.Y = din + (size_t)bi * CI * P;
                K->pconv(&a);
            }
        }
        int lo, hi;
        part(B, t, nt, &lo, &hi);
        float *mine = parts + (size_t)t * part_floats;
        memset(mine, 0, (wper + OC) * sizeof(float));
        dw_args d = {Xall, Dall, (size_t)CI * Pp, (size_t)OC * Pp, pg.qoff, pg.toff, lo, hi, CI, OC,
                     Ti, (int)Pp, NULL, pg.ctr, pg.nvec};
        if (hi > lo) K->pdw(&d, mine, mine + wper);
#pragma omp barrier
#pragma omp master
        add_thread_parts(dW, db, parts, nt, part_floats, (size_t)CI * T, OC, 1, (size_t)OC);
    }
    return MNNH_OK;
}

/* lc forward, position-vectorised (n a multiple of the vector width): the
 * weights are repacked per lane, Wf[q][i][t][o][lane] = W[q VB + lane][o][i][t], and each
 * thread runs groups of PV_GROUP padded samples through lconv (no transposes
 * of the activations; the batch-vectorised path transposes every block in and
 * out). Each output adds bias, then inputs, then taps, as conv_tile does: the
 * same bits as the batch-vectorised path (the fused level op uses that one). */
/* Wf[q][i][t][o][lane] = W[q VB + lane][o][i][t], bl[o][p] = b[p][o] for
 * one vector q of positions: the lc forward's per-lane weights, through
 * register transposes (cols_to_rows; perm = lc_fwd_perm). */
static void pack_lc_fwd_q(const simd_kernels *K, const float *W, const float *b, int q, int CI,
                          int Ti, int OC, size_t P, const int *perm, float *Wf, float *bl) {
    const int VBk = K->vb;
    const size_t wper = (size_t)CI * Ti * OC, p0 = (size_t)q * VBk;
    K->cols_to_rows(W + p0 * wper, wper, (int)wper, perm, Wf + (size_t)q * wper * VBk);
    for (int o = 0; o < OC; o++)
        for (int j = 0; j < VBk; j++) bl[(size_t)o * P + p0 + j] = b[(p0 + j) * OC + o];
}

/* perm[k] = where weight k = (o CI + i) T + t of a position goes in a
 * vector's packed block: ((i T + t) OC + o) VB. */
static void lc_fwd_perm(int CI, int Ti, int OC, int VBk, int *perm) {
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < CI; i++)
            for (int tt = 0; tt < Ti; tt++)
                perm[((size_t)o * CI + i) * Ti + tt] = (((i * Ti + tt) * OC) + o) * VBk;
}

static mnnh_status kernel_fwd_lpv(const simd_kernels *K, const mnnh_geom *g, int B,
                                  const float *in, const float *W, const float *b, float *out) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, Ti = (int)mnnh_geom_taps(g);
    const size_t P = mnnh_geom_positions(g), wper = (size_t)CI * Ti * OC;
    const int nt = nthreads_for(B), Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    const size_t xss = ((size_t)CI * Pp + 15) & ~(size_t)15;
    size_t off = 0;
    size_t o_pg = take(&off, pgeo_bytes(g, VBk));
    size_t o_perm = take(&off, wper * sizeof(int));
    size_t o_wf = take(&off, (wper + OC) * P * sizeof(float));
    size_t o_th = take(&off, 0), per_thread = (size_t)PV_GROUP * xss * sizeof(float);
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    pgeo pg;
    pgeo_build(g, VBk, mem + o_pg, &pg);
    int *perm = (int *)(mem + o_perm);
    lc_fwd_perm(CI, Ti, OC, VBk, perm);
    float *Wf = (float *)(mem + o_wf), *bl = Wf + wper * P;
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int q = 0; q < pg.nvec; q++) pack_lc_fwd_q(K, W, b, q, CI, Ti, OC, P, perm, Wf, bl);
        int t = thread_id(), lo, hi;
        part(B, t, nt, &lo, &hi);
        float *Xp = (float *)(mem + o_th + per_thread * t);
        lconv_args c = {Xp, xss, 0, pg.nvec, Ti, CI, (int)Pp, (int)P, OC, g->relu, pg.qoff,
                        pg.toff, Wf, bl, NULL, (size_t)OC * P, 0, NULL, NULL, NULL, 0, pg.nvec};
        for (int b0 = lo; b0 < hi; b0 += PV_GROUP) {
            int ns = hi - b0 < PV_GROUP ? hi - b0 : PV_GROUP;
            for (int s = 0; s < ns; s++)
                pad_sample(K, g, CI, in + ((size_t)b0 + s) * CI * P, NULL, Xp + (size_t)s * xss, Pp);
            c.ns = ns;
            c.Y = out + (size_t)b0 * OC * P;
            K->lconv(&c);
        }
    }
    return MNNH_OK;
}

/* cnn and lc forward on unpadded 1D rows (wgeo): each thread runs its
 * samples (or its vectors of every sample, see lc_vector_threads) in groups
 * of PV_GROUP straight from the input through lconv (cnn: shared weights);
 * no scratch besides the packed weights and tables. Same accumulation order
 * as kernel_fwd_pv / kernel_fwd_lpv: the same bits, whatever the split. */
static mnnh_status kernel_fwd_wrap(const simd_kernels *K, const mnnh_geom *g, int B,
                                   const float *in, const float *W, const float *b, float *out) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, Ti = (int)mnnh_geom_taps(g), lc = g->local;
    const size_t P = mnnh_geom_positions(g), wper = (size_t)CI * Ti * OC;
    const int vnt = lc_vector_threads(g, VBk), nt = vnt ? vnt : nthreads_for(B);
    size_t off = 0;
    size_t o_wg = take(&off, wgeo_bytes(g, VBk));
    size_t o_perm = take(&off, lc ? wper * sizeof(int) : 0);
    /* lc split over samples: each thread packs its own copy of all the
     * per-lane weights (measured at 2 threads: packing halves written by the
     * other core and read back by both every call cost more than packing all
     * of them twice); split over vectors: one copy, each thread packs the
     * vectors it reads */
    const size_t wfloats = lc ? (wper + OC) * P : wper;
    const size_t wstride = part_stride(wfloats);
    const int copies = lc && !vnt ? nt : 1;
    size_t o_w = take(&off, copies * wstride * sizeof(float));
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    wgeo wg;
    wgeo_build(g, VBk, mem + o_wg, &wg);
    int *perm = (int *)(mem + o_perm);
    if (lc) lc_fwd_perm(CI, Ti, OC, VBk, perm);
    float *Wall = (float *)(mem + o_w);
    if (!lc) /* [o][i][t] -> [i][t][o] (a few hundred floats) */
        for (int o = 0; o < OC; o++)
            for (size_t k = 0; k < (size_t)CI * Ti; k++) Wall[k * OC + o] = W[(size_t)o * CI * Ti + k];
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), q0, q1, lo, hi;
        lc_share(vnt > 0, wg.nvec, B, t, nt, &q0, &q1, &lo, &hi);
        float *Wf = copies > 1 ? Wall + (size_t)t * wstride : Wall, *bl = lc ? Wf + wper * P : NULL;
        for (int q = q0; lc && q < q1; q++) pack_lc_fwd_q(K, W, b, q, CI, Ti, OC, P, perm, Wf, bl);
        lconv_args c = {NULL, (size_t)CI * P, 0, wg.nvec, Ti, CI, (int)P, (int)P, OC, g->relu,
                        wg.qoff, wg.toff, Wf, lc ? bl : b, NULL, (size_t)OC * P, !lc, wg.elo,
                        wg.ehi, wg.eidx, q0, q1};
        for (int b0 = lo; b0 < hi; b0 += PV_GROUP) {
            c.ns = hi - b0 < PV_GROUP ? hi - b0 : PV_GROUP;
            c.X = in + (size_t)b0 * CI * P;
            c.Y = out + (size_t)b0 * OC * P;
            K->lconv(&c);
        }
    }
    return MNNH_OK;
}

/* ------------------------------------------- small lc layers, one dense matrix */
/* An lc kernel layer with few positions against its taps runs as one dense
 * (OC P) x (CI P) matrix per sample, on the caller's rows (cpu_dense_body.h):
 * the dense product does (CI P)(OC P) multiply-adds per sample against the
 * layer's CI OC P T, so it is used where that is at most 1.25x (KS 1D lc
 * n = 4, 5 taps: 0.8x; n = 8, 7 taps: 1.14x), rows of at most DENSE_MAX
 * floats, and n not a multiple of the vector width (those have the
 * position-vectorised kernels). MNNH_CPU_DENSE=0 turns it off (the
 * batch-vectorised path, as before). SSE (4 lanes) never takes it in the KS
 * models: their n are powers of two from 4. */
#define DENSE_MAX 64

static int dense_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("MNNH_CPU_DENSE");
        on = !(e && *e && atoi(e) == 0);
    }
    return on;
}

static int dense_usable(const mnnh_geom *g, int VBk) {
    size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    /* rows of at most 8 vectors: the kernels' templates (cpu_dense_body.h) */
    size_t maxrow = 8 * (size_t)VBk < DENSE_MAX ? 8 * (size_t)VBk : DENSE_MAX;
    return g->local && g->n % VBk != 0 && 4 * P <= 5 * T && (size_t)g->cin * P <= maxrow &&
           (size_t)g->cout * P <= maxrow && dense_enabled();
}

static size_t round_up(size_t x, int m) { return (x + m - 1) / m * m; }

/* src[p][t] = the position read by tap t of output position p (the
 * reference's tap_source), P T ints. */
static void dense_sources(const mnnh_geom *g, int *src) {
    const int n = g->n, nb = g->nb, w = 2 * nb + 1, P = (int)mnnh_geom_positions(g);
    const int T = (int)mnnh_geom_taps(g);
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) {
            if (g->dim == 1) {
                src[p * T + t] = wrapi(p + t - nb, n);
                continue;
            }
            int p1 = p / n, p2 = p % n, t1 = t / w, t2 = t % w;
            src[p * T + t] = wrapi(p1 + t1 - nb, n) * n + wrapi(p2 + t2 - nb, n);
        }
}

/* The layer's matrix with rows `row` floats apart (zeros beyond the row):
 * transposed = 0: MT[ci P + src][co P + p] (the forward's operand);
 * transposed = 1: M[co P + p][ci P + src] (the input gradient's). An entry
 * sums, in tap order, the weights W[p][co][ci][t] of the taps of p reading
 * src. Built at every call (the weights change every step): a few thousand
 * additions, against the layer's 10^5-10^6 multiply-adds. */
static void dense_build(const mnnh_geom *g, const float *W, const int *src, int transposed,
                        float *Mx, size_t row) {
    const int P = (int)mnnh_geom_positions(g), T = (int)mnnh_geom_taps(g);
    const int CI = g->cin, OC = g->cout;
    memset(Mx, 0, sizeof(float) * (size_t)(transposed ? OC : CI) * P * row);
    /* entry (j, k) of row j = co P + p, column k = ci P + src: j * sj + k * sk */
    const size_t sj = transposed ? row : 1, sk = transposed ? 1 : row;
    for (int p = 0; p < P; p++) {
        const int *sp = src + (size_t)p * T;
        for (int co = 0; co < OC; co++) {
            float *mj = Mx + ((size_t)co * P + p) * sj;
            const float *w = W + ((size_t)p * OC + co) * CI * T;
            for (int ci = 0; ci < CI; ci++, w += T) {
                float *mc = mj + (size_t)ci * P * sk;
                for (int t = 0; t < T; t++) mc[(size_t)sp[t] * sk] += w[t];
            }
        }
    }
}

static mnnh_status kernel_fwd_dense(const simd_kernels *K, const mnnh_geom *g, int B,
                                    const float *in, const float *W, const float *b,
                                    float *out) {
    const int P = (int)mnnh_geom_positions(g), J = g->cout * P, Kd = g->cin * P;
    const size_t JP = round_up((size_t)J, K->vb);
    size_t off = 0;
    size_t o_m = take(&off, (size_t)Kd * JP * sizeof(float));
    size_t o_b = take(&off, JP * sizeof(float));
    size_t o_src = take(&off, (size_t)P * mnnh_geom_taps(g) * sizeof(int));
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    float *MT = (float *)(mem + o_m), *bj = b ? (float *)(mem + o_b) : NULL;
    int *src = (int *)(mem + o_src);
    dense_sources(g, src);
    dense_build(g, W, src, 0, MT, JP);
    if (bj) {
        memset(bj, 0, JP * sizeof(float));
        for (int p = 0; p < P; p++)
            for (int co = 0; co < g->cout; co++) bj[(size_t)co * P + p] = b[(size_t)p * g->cout + co];
    }
    const int nt = nthreads_for(B);
    if (nt == 1) { /* no region: a nested one costs about 0.7 us, a quarter of n = 4 */
        K->dense_rows(in, (size_t)Kd, Kd, MT, bj, J, g->relu, out, (size_t)J, B);
        return MNNH_OK;
    }
#pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        part(B, thread_id(), nt, &lo, &hi);
        if (hi > lo)
            K->dense_rows(in + (size_t)lo * Kd, (size_t)Kd, Kd, MT, bj, J, g->relu,
                          out + (size_t)lo * J, (size_t)J, hi - lo);
    }
    return MNNH_OK;
}

/* dW, db += the dense matrix's gradient folded back onto the taps (each tap
 * gets the entry of the position it reads) and the column sums; the threads'
 * partials [Kd][JP] + [JP] are first added in thread order. */
static void dense_fold(const mnnh_geom *g, const int *src, float *parts, int nt,
                       size_t part_floats, size_t JP, float *dW, float *db) {
    const int P = (int)mnnh_geom_positions(g), T = (int)mnnh_geom_taps(g);
    const int CI = g->cin, OC = g->cout;
    const size_t n = (size_t)CI * P * JP + JP;
    for (int th = 1; th < nt; th++) {
        const float *pt = parts + (size_t)th * part_floats;
        for (size_t i = 0; i < n; i++) parts[i] += pt[i];
    }
    for (int p = 0; p < P; p++) {
        const int *sp = src + (size_t)p * T;
        for (int co = 0; co < OC; co++) {
            const float *m = parts + (size_t)co * P + p;
            float *w = dW + ((size_t)p * OC + co) * CI * T;
            for (int ci = 0; ci < CI; ci++, w += T) {
                const float *mc = m + (size_t)ci * P * JP;
                for (int t = 0; t < T; t++) w[t] += mc[(size_t)sp[t] * JP];
            }
            db[(size_t)p * OC + co] += parts[(size_t)CI * P * JP + (size_t)co * P + p];
        }
    }
}

typedef struct {
    const simd_kernels *K;
    const mnnh_geom *g;
    int B, nt;
    const float *in, *out, *dout;
    float *din;
    const float *M;
    float *Dall, *parts;
    size_t part_floats, JP;
} dense_bwd_args;

/* Thread t's share of the samples: masked gradient rows, input gradient, and
 * the weight and bias gradient partial t (zeroed first). */
static void dense_bwd_share(const dense_bwd_args *a, int t) {
    const int P = (int)mnnh_geom_positions(a->g), J = a->g->cout * P, Kd = a->g->cin * P;
    int lo, hi;
    part(a->B, t, a->nt, &lo, &hi);
    float *D = a->Dall + (size_t)lo * a->JP, *mine = a->parts + (size_t)t * a->part_floats;
    memset(mine, 0, a->part_floats * sizeof(float));
    if (hi == lo) return;
    const simd_kernels *K = a->K;
    K->dense_grad_rows(a->out + (size_t)lo * J, a->dout + (size_t)lo * J, a->g->relu, J, hi - lo, D);
    if (a->din)
        K->dense_rows(D, a->JP, J, a->M, NULL, Kd, 0, a->din + (size_t)lo * Kd, (size_t)Kd, hi - lo);
    K->dense_outer(a->in + (size_t)lo * Kd, (size_t)Kd, Kd, D, J, hi - lo, mine,
                   mine + (size_t)Kd * a->JP);
}

/* Each thread masks its samples' output gradient (rows padded to JP), takes
 * their input gradient through M and their weight gradient as outer
 * products into its partial; the partials are added in thread order. */
static mnnh_status kernel_bwd_dense(const simd_kernels *K, const mnnh_geom *g, int B,
                                    const float *in, const float *W, const float *out,
                                    const float *dout, float *din, float *dW, float *db) {
    const int P = (int)mnnh_geom_positions(g), J = g->cout * P, Kd = g->cin * P;
    const size_t JP = round_up((size_t)J, K->vb), KP = round_up((size_t)Kd, K->vb);
    const int nt = nthreads_for(B);
    const size_t part_floats = round_up((size_t)Kd * JP + JP, 16);
    size_t off = 0;
    size_t o_m = take(&off, din ? (size_t)J * KP * sizeof(float) : 0);
    size_t o_d = take(&off, (size_t)B * JP * sizeof(float));
    size_t o_part = take(&off, (size_t)nt * part_floats * sizeof(float));
    size_t o_src = take(&off, (size_t)P * mnnh_geom_taps(g) * sizeof(int));
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    float *M = (float *)(mem + o_m), *Dall = (float *)(mem + o_d);
    float *parts = (float *)(mem + o_part);
    int *src = (int *)(mem + o_src);
    dense_sources(g, src);
    if (din) dense_build(g, W, src, 1, M, KP);
    dense_bwd_args a = {K, g, B, nt, in, out, dout, din, M, Dall, parts, part_floats, JP};
    if (nt == 1) { /* no region (see kernel_fwd_dense) */
        dense_bwd_share(&a, 0);
    } else {
#pragma omp parallel num_threads(nt)
        dense_bwd_share(&a, thread_id());
    }
    dense_fold(g, src, parts, nt, part_floats, JP, dW, db);
    return MNNH_OK;
}

/* ------------------------------------------------------ kernel forward */
static mnnh_status cpu_kernel_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  const float *W, const float *b, float *out) {
    (void)be;
    const simd_kernels *K = kern();
    if (dense_usable(g, K->vb)) return kernel_fwd_dense(K, g, B, in, W, b, out);
    if (wgeo_usable(g, K->vb) && (pv_mask() & 1)) return kernel_fwd_wrap(K, g, B, in, W, b, out);
    if (g->n % K->vb == 0 && (pv_mask() & 1))
        return g->local ? kernel_fwd_lpv(K, g, B, in, W, b, out)
                        : kernel_fwd_pv(K, g, B, in, W, b, out);
    const int VBk = K->vb, CI = g->cin, OC = g->cout, lc = g->local;
    kgeo kg;
    const size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    const int nblk = (B + VBk - 1) / VBk, nt = nthreads_for(nblk);
    const size_t npos = lc ? P : 1, wper = (size_t)CI * T * OC;
    const int Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    size_t off = 0;
    size_t o_geo = take(&off, kgeo_bytes(g, 0));
    size_t o_wofs = take(&off, lc ? P * T * sizeof(int) : 0);
    size_t o_w = take(&off, npos * wper * sizeof(float));
    size_t xs = (size_t)CI * Pp * VBk, ys = (size_t)OC * P * VBk;
    size_t o_th = take(&off, 0);
    size_t per_thread = ((xs + ys) * sizeof(float) + 63) & ~(size_t)63;
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    kgeo_build(g, mem + o_geo, 0, &kg);
    int *wofs = lc ? (int *)(mem + o_wofs) : NULL;
    float *Wpk = (float *)(mem + o_w);
#pragma omp parallel num_threads(nt)
    {
        /* pack weights [pos][o][i][t] -> [pos][i][t][o] */
#pragma omp for schedule(static)
        for (long pi = 0; pi < (long)npos; pi++) {
            const float *src = W + (size_t)pi * wper;
            float *dst = Wpk + (size_t)pi * wper;
            for (int o = 0; o < OC; o++)
                for (size_t k = 0; k < (size_t)CI * T; k++) dst[k * OC + o] = src[(size_t)o * CI * T + k];
            if (wofs)
                for (size_t t = 0; t < T; t++) wofs[(size_t)pi * T + t] = (int)((size_t)pi * wper);
        }
        int t = thread_id(), lo, hi;
        part(nblk, t, nt, &lo, &hi);
        float *X = (float *)(mem + o_th + per_thread * t), *Y = X + xs;
        conv_args a = {X, Wpk, b, Y, kg.qb, kg.toff, wofs, (int)P, (int)T, CI, (int)Pp, OC,
                       g->relu, NULL, NULL};
        for (int blk = lo; blk < hi; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(in + (size_t)b0 * CI * P, nv, CI, (int)P, kg.qb, (int)Pp, kg.halo,
                        kg.nhalo, X);
            K->conv(&a);
            K->from_block(Y, nv, OC, (int)P, out + (size_t)b0 * OC * P, 0);
        }
    }
    return MNNH_OK;
}

/* dst (+)= packed partial: dst[o][k] += part[k][o] (transpose) or dst[k][o] += part[k][o]. */
static void add_packed(float *dst, const float *part_, size_t KK, int OC, int transpose) {
    if (transpose) {
        for (int o = 0; o < OC; o++)
            for (size_t k = 0; k < KK; k++) dst[(size_t)o * KK + k] += part_[k * OC + o];
    } else {
        for (size_t k = 0; k < KK * OC; k++) dst[k] += part_[k];
    }
}

/* dW, db += the per-thread partials in thread order (a fixed order: the sums
 * do not depend on scheduling). Each partial holds KK*OC packed weight sums
 * (add_packed) followed by nbias bias sums. */
static void add_thread_parts(float *dW, float *db, const float *parts, int nt, size_t part_floats,
                             size_t KK, int OC, int transpose, size_t nbias) {
    size_t wper = KK * (size_t)OC;
    for (int th = 0; th < nt; th++) {
        const float *pt = parts + (size_t)th * part_floats;
        add_packed(dW, pt, KK, OC, transpose);
        for (size_t k = 0; k < nbias; k++) db[k] += pt[wper + k];
    }
}

/* The parameter-gradient phase of a backward, called by every thread of a
 * parallel region. cnn: each thread reduces its blocks into its partial, the
 * partials are added in thread order; lc: each thread owns a range of
 * positions and adds straight into dW, db. The bias gradient is the sum of D
 * (kernel, restrict) or of X (interp, bias_from_x). */
static void dw_phase(const simd_kernels *K, dw_args d, int lc, int P, int nblk, int nt, int t,
                     float *parts, size_t part_floats, int transpose_w, int bias_from_x,
                     float *dW, float *db) {
    size_t KK = (size_t)d.CI * d.T, wper = KK * d.OC;
    size_t nbias = bias_from_x ? (size_t)d.T : (size_t)d.OC;
    int lo, hi;
    if (lc) {
        part(P, t, nt, &lo, &hi);
        d.blk0 = 0;
        d.blk1 = nblk;
        for (int q = lo; q < hi; q++) {
            float *pq = parts + (size_t)q * wper;
            memset(pq, 0, wper * sizeof(float));
            K->dw(&d, q, q + 1, pq);
            if (bias_from_x) K->dbx(&d, q, q + 1, 1, db);
            else K->db(&d, q, q + 1, 1, db);
            add_packed(dW + (size_t)q * wper, pq, KK, d.OC, transpose_w);
        }
        return;
    }
    part(nblk, t, nt, &lo, &hi);
    float *mine = parts + (size_t)t * part_floats;
    memset(mine, 0, (wper + nbias) * sizeof(float));
    d.blk0 = lo;
    d.blk1 = hi;
    if (hi > lo) {
        K->dw(&d, 0, P, mine);
        if (bias_from_x) K->dbx(&d, 0, P, 0, mine + wper);
        else K->db(&d, 0, P, 0, mine + wper);
    }
#pragma omp barrier
#pragma omp master
    add_thread_parts(dW, db, parts, nt, part_floats, KK, d.OC, transpose_w, nbias);
}

static size_t part_stride(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* cnn backward, batch-vectorised, one block at a time: each thread
 * transposes a block's input and masked output gradient into its own
 * scratch, runs the input gradient and adds the block to lane-wise
 * weight / bias gradient sums while the block is still in L1/L2 (instead of
 * all blocks first and one pass over every block per weight tile), then
 * reduces its lanes into its partial; the partials are added in thread
 * order. Same per-lane order as the whole-batch dw: same bits. */
static mnnh_status kernel_bwd_blocks(const simd_kernels *K, const mnnh_geom *g, int B,
                                     const float *in, const float *W, const float *out,
                                     const float *dout, float *din, float *dW, float *db) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, Ti = (int)mnnh_geom_taps(g);
    const size_t P = mnnh_geom_positions(g), wper = (size_t)CI * Ti * OC;
    const int nblk = (B + VBk - 1) / VBk, nt = nthreads_for(nblk);
    const int Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    const size_t xs = (size_t)CI * Pp * VBk, ds = (size_t)OC * Pp * VBk;
    const size_t dxs = (size_t)CI * P * VBk, part_floats = part_stride(wper + OC);
    size_t off = 0;
    size_t o_geo = take(&off, kgeo_bytes(g, 0));
    size_t o_wb = take(&off, wper * sizeof(float));
    size_t o_part = take(&off, (size_t)nt * part_floats * sizeof(float));
    size_t o_th = take(&off, 0);
    size_t per_thread = 0;
    size_t t_x = take(&per_thread, xs * sizeof(float)), t_d = take(&per_thread, ds * sizeof(float));
    size_t t_dx = take(&per_thread, din ? dxs * sizeof(float) : 0);
    size_t t_acc = take(&per_thread, (wper + OC) * VBk * sizeof(float));
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    kgeo kg;
    kgeo_build(g, mem + o_geo, 0, &kg);
    float *Wb = (float *)(mem + o_wb), *parts = (float *)(mem + o_part);
    /* transposed-convolution weights Wb[co][t][ci] = W[co][ci][t] (a few hundred floats) */
    for (int co = 0; co < OC; co++)
        for (int ci = 0; ci < CI; ci++)
            for (int tt = 0; tt < Ti; tt++)
                Wb[((size_t)co * Ti + tt) * CI + ci] = W[((size_t)co * CI + ci) * Ti + tt];
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), lo, hi;
        part(nblk, t, nt, &lo, &hi);
        char *th = mem + o_th + per_thread * t;
        float *X = (float *)(th + t_x), *D = (float *)(th + t_d), *DX = (float *)(th + t_dx);
        float *accv = (float *)(th + t_acc), *accb = accv + wper * VBk;
        memset(accv, 0, (wper + OC) * VBk * sizeof(float));
        conv_args a = {D, Wb, NULL, DX, kg.qb, kg.toffb, NULL, (int)P, Ti, OC, (int)Pp, CI, 0,
                       NULL, NULL};
        dw_args d = {X, D, xs, ds, kg.qb, kg.toff, 0, 1, CI, OC, Ti, (int)Pp, kg.qb, (int)Pp, 0};
        for (int blk = lo; blk < hi; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(in + (size_t)b0 * CI * P, nv, CI, (int)P, kg.qb, (int)Pp, kg.halo,
                        kg.nhalo, X);
            K->grad_to_block(out + (size_t)b0 * OC * P, dout + (size_t)b0 * OC * P, g->relu, nv,
                             OC, (int)P, kg.qb, (int)Pp, kg.halo, kg.nhalo, D);
            if (din) {
                K->conv(&a);
                K->from_block(DX, nv, CI, (int)P, din + (size_t)b0 * CI * P, 0);
            }
            K->dwv(&d, 0, (int)P, accv);
            K->dbv(&d, 0, (int)P, accb);
        }
        float *mine = parts + (size_t)t * part_floats;
        memset(mine, 0, (wper + OC) * sizeof(float));
        K->hsum_add(accv, wper + OC, mine);
#pragma omp barrier
#pragma omp master
        add_thread_parts(dW, db, parts, nt, part_floats, (size_t)CI * Ti, OC, 1, (size_t)OC);
    }
    return MNNH_OK;
}

/* Wd[q][o][t][i][lane] = W[srcpos(p, t)][o][i][t], p = q VB + lane: the
 * weight through which output position srcpos(p, t) read input p at tap t;
 * one vector of positions at a time (their source rows stay in L1, the
 * vector's weights are contiguous). Called by every thread of a parallel
 * region. */
static void pack_lc_bwd(const float *W, const int *srcpos, int nvec, int VBk, int CI, int Ti,
                        int OC, float *Wd) {
    const size_t wper = (size_t)CI * Ti * OC;
#pragma omp for schedule(static)
    for (int q = 0; q < nvec; q++)
        for (int r = 0; r < OC * Ti * CI; r++) {
            int o = r / (Ti * CI), tt = r / CI % Ti, i = r % CI;
            size_t wk = ((size_t)o * CI + i) * Ti + tt, p0 = (size_t)q * VBk;
            float *dst = Wd + ((size_t)q * OC * Ti * CI + r) * VBk;
            for (int j = 0; j < VBk; j++) dst[j] = W[(size_t)srcpos[(p0 + j) * Ti + tt] * wper + wk];
        }
}

/* Wd as pack_lc_bwd for unpadded 1D rows (wgeo), vectors [q0, q1) only:
 * U[k][nb + x] = W[x][k] (register transposes, koff[k] = k Pu, Pu = n + 2 nb)
 * with the periodic halo, then each Wd vector is the window of its weight's
 * row U[k] that starts at the source position of its first lane: an
 * unaligned copy instead of VB strided scalar loads through srcpos. The
 * windows of [q0, q1) reach nb <= VB positions beyond it, so U is filled for
 * the neighbouring vectors too, and its halo only where the range touches an
 * end of the row. Each thread packs its own copy (see kernel_fwd_wrap). */
static void pack_lc_bwd_wrap(const simd_kernels *K, const float *W, const mnnh_geom *g, int CI,
                             int Ti, int OC, const int *koff, int q0, int q1, float *U,
                             float *Wd) {
    const int VBk = K->vb, n = g->n, nb = g->nb, nvec = n / VBk, Pu = n + 2 * nb;
    const size_t wper = (size_t)CI * Ti * OC;
    const int u0 = q0 > 0 ? q0 - 1 : 0, u1 = q1 < nvec ? q1 + 1 : nvec;
    for (int q = u0; q < u1; q++)
        K->cols_to_rows(W + (size_t)q * VBk * wper, wper, (int)wper, koff, U + nb + q * VBk);
    for (size_t k = 0; k < wper; k++)
        for (int u = 0; u < nb; u++) {
            if (q1 == nvec) /* right halo: positions 0 .. nb-1 */
                U[k * Pu + n + nb + u] = W[(size_t)u * wper + k];
            if (q0 == 0) /* left halo: n-nb .. n-1 */
                U[k * Pu + u] = W[(size_t)(n - nb + u) * wper + k];
        }
    /* lane j of tap tt reads source position q VB + j - (tt - nb): U offset nb more */
    for (int q = q0; q < q1; q++)
        K->lc_bwd_windows(U + (size_t)q * VBk, Pu, nb, CI, Ti, OC, Wd + (size_t)q * wper * VBk);
}

/* dW[p][k] += the sum over the nt threads, in thread order, of their lane
 * sums sums_t[k][p] (k = (o CI + i) T + t; db after dW; thread th's sums at
 * sums0 + th * stride floats), one vector of positions at a time through
 * register transposes (add_rows_tr). Called by every thread. */
static void add_lane_sums(const simd_kernels *K, const float *sums0, size_t stride, int nt,
                          size_t P, size_t wper, int OC, float *dW, float *db) {
    const int VBk = K->vb;
#pragma omp for schedule(static)
    for (long p0 = 0; p0 < (long)P; p0 += VBk) {
        K->add_rows_tr(sums0 + p0, P, stride, nt, (int)wper, dW + (size_t)p0 * wper, wper);
        K->add_rows_tr(sums0 + wper * P + p0, P, stride, nt, OC, db + (size_t)p0 * OC,
                       (size_t)OC);
    }
}

/* dW[p][k] += sums[k][p - plo] for the positions [plo, phi) whose lane sums
 * one thread holds alone (lc split over vectors: srow floats per row of
 * sums, db's after dW's), as add_lane_sums does for one thread. */
static void add_own_lane_sums(const simd_kernels *K, const float *sums, size_t srow, int plo,
                              int phi, size_t wper, int OC, float *dW, float *db) {
    const int VBk = K->vb;
    for (int p0 = plo; p0 < phi; p0 += VBk) {
        const float *s = sums + (p0 - plo);
        K->add_rows_tr(s, srow, 0, 1, (int)wper, dW + (size_t)p0 * wper, wper);
        K->add_rows_tr(s + wper * srow, srow, 0, 1, OC, db + (size_t)p0 * OC, (size_t)OC);
    }
}

/* lc backward, position-vectorised (n a multiple of the vector width): each
 * thread takes a static slice of the samples in groups of LPV_GROUP and for
 * each group runs the input gradient (per-lane weights Wd, packed once per
 * call) and adds the weight and bias gradients to lane sums that are
 * already per position, so no lane reduction is needed (the batch-vectorised
 * path reduces 16 lanes per weight: for lc that is one reduction per weight
 * and position, as many as the multiply-adds). 1D (wgeo): the kernels read
 * the input rows directly and the masked output gradient from one flat
 * masked copy of the group (no halo); otherwise both are padded per sample.
 * The per-thread sums are added in thread order: results depend only on the
 * thread count. With the vector split (lc_vector_threads) each thread takes
 * its vectors of every sample instead, packs only their weights and adds its
 * own sums to their positions' gradients (no barrier; every thread masks
 * the whole group: its vectors' input gradient reads the neighbouring
 * vectors too). */
/* 16 samples per group (measured against 8 and 32, KS 1D lc, 1 thread):
 * each vector's weights (16 KB at n = 64) are reused by more samples while
 * in L1; the lane sums and gradient rows of a group still fit L2 */
#define LPV_GROUP 16
static mnnh_status kernel_bwd_lpv(const simd_kernels *K, const mnnh_geom *g, int B,
                                  const float *in, const float *W, const float *out,
                                  const float *dout, float *din, float *dW, float *db) {
    const int VBk = K->vb, CI = g->cin, OC = g->cout, Ti = (int)mnnh_geom_taps(g);
    const size_t P = mnnh_geom_positions(g), wper = (size_t)CI * Ti * OC;
    const int Wp1 = g->n + 2 * g->nb, wrap = wgeo_usable(g, VBk);
    const int vnt = lc_vector_threads(g, VBk), nt = vnt ? vnt : nthreads_for(B);
    const size_t Pp = wrap ? P : g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    size_t off = 0;
    size_t o_pg = take(&off, pgeo_bytes(g, VBk));
    size_t o_wg = take(&off, wrap ? wgeo_bytes(g, VBk) : 0);
    /* srcpos, for pack_lc_bwd only (padded rows): 1D rows skip building it,
     * two integer divisions per position and tap, on one thread */
    size_t o_kg = take(&off, din && !wrap ? kgeo_bytes(g, 1) : 0);
    size_t o_wd = take(&off, din && !wrap ? P * wper * sizeof(float) : 0);
    const size_t Pu = (size_t)g->n + 2 * g->nb;
    size_t o_koff = take(&off, din && wrap ? wper * sizeof(int) : 0);
    size_t o_th = take(&off, 0), per_thread = 0;
    size_t t_u = take(&per_thread, din && wrap ? wper * Pu * sizeof(float) : 0);
    size_t t_wd = take(&per_thread, din && wrap ? P * wper * sizeof(float) : 0);
    size_t t_x = take(&per_thread, wrap ? 0 : (size_t)LPV_GROUP * CI * Pp * sizeof(float));
    size_t t_d = take(&per_thread, (size_t)LPV_GROUP * OC * Pp * sizeof(float));
    size_t t_w = take(&per_thread, (wper + OC) * P * sizeof(float));
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    pgeo pg;
    pgeo_build(g, VBk, mem + o_pg, &pg);
    wgeo wg = {0};
    if (wrap) wgeo_build(g, VBk, mem + o_wg, &wg);
    kgeo kg = {0};
    if (din && !wrap) kgeo_build(g, mem + o_kg, 1, &kg);
    int *koff = (int *)(mem + o_koff);
    if (din && wrap)
        for (size_t k = 0; k < wper; k++) koff[k] = (int)(k * Pu);
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), q0, q1, lo, hi;
        lc_share(vnt > 0, pg.nvec, B, t, nt, &q0, &q1, &lo, &hi);
        char *th = mem + o_th + per_thread * t;
        float *Wd = wrap ? (float *)(th + t_wd) : (float *)(mem + o_wd);
        if (din && wrap)
            pack_lc_bwd_wrap(K, W, g, CI, Ti, OC, koff, q0, q1, (float *)(th + t_u), Wd);
        else if (din) pack_lc_bwd(W, kg.srcpos, pg.nvec, VBk, CI, Ti, OC, Wd);
        float *X = (float *)(th + t_x), *D = (float *)(th + t_d), *dWt = (float *)(th + t_w);
        const size_t srow = (size_t)(q1 - q0) * VBk; /* lanes of this thread's sums */
        memset(dWt, 0, (wper + OC) * srow * sizeof(float));
        lpv_args a = {X, D, (size_t)CI * Pp, (size_t)OC * Pp, 0, pg.nvec, Ti, CI, OC, (int)Pp,
                      (int)srow, wrap ? 0 : pg.ctr, wrap ? wg.qoff : pg.qoff,
                      wrap ? wg.toff : pg.toff, dWt, dWt + wper * srow, wg.elo, wg.ehi, wg.eidx,
                      q0, q1};
        /* the input gradient: the transposed convolution of D (inputs OC, outputs CI) */
        lconv_args c = {D, (size_t)OC * Pp, 0, pg.nvec, Ti, OC, (int)Pp, (int)P, CI, 0,
                        a.qoff, wrap ? wg.toffb : pg.toffb, Wd, NULL, NULL, (size_t)CI * P, 0,
                        wg.elob, wg.ehib, wg.eidxb, q0, q1};
        for (int b0 = lo; b0 < hi; b0 += LPV_GROUP) {
            int ns = hi - b0 < LPV_GROUP ? hi - b0 : LPV_GROUP;
            const float *xg = in + (size_t)b0 * CI * P, *dg = dout + (size_t)b0 * OC * P;
            const float *mg = g->relu ? out + (size_t)b0 * OC * P : NULL;
            if (wrap) {
                a.X = xg;
                /* the ReLU-masked gradient of the whole group in one flat pass */
                if (mg) K->pad_row(D, dg, mg, ns * OC * (int)P, 0);
                a.D = c.X = mg ? D : dg;
            } else
                for (int s = 0; s < ns; s++) {
                    pad_sample(K, g, CI, xg + s * CI * P, NULL, X + s * a.xss, Pp);
                    pad_sample(K, g, OC, dg + s * OC * P, mg ? mg + s * OC * P : NULL,
                               D + s * a.dss, Pp);
                }
            if (din) {
                c.ns = ns;
                c.Y = din + (size_t)b0 * CI * P;
                K->lconv(&c);
            }
            a.ns = ns;
            K->lpv_bwd(&a);
        }
        if (vnt) {
            add_own_lane_sums(K, dWt, srow, q0 * VBk, q1 * VBk, wper, OC, dW, db);
        } else {
#pragma omp barrier
            add_lane_sums(K, (const float *)(mem + o_th + t_w), per_thread / sizeof(float), nt,
                          P, wper, OC, dW, db);
        }
    }
    return MNNH_OK;
}

static mnnh_status cpu_kernel_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  const float *W, const float *out, const float *dout,
                                  float *din, float *dW, float *db) {
    (void)be;
    const simd_kernels *K = kern();
    if (dense_usable(g, K->vb)) return kernel_bwd_dense(K, g, B, in, W, out, dout, din, dW, db);
    if (!g->local && g->n % K->vb == 0 && (pv_mask() & 2))
        return kernel_bwd_pv(K, g, B, in, W, out, dout, din, dW, db);
    if (!g->local) return kernel_bwd_blocks(K, g, B, in, W, out, dout, din, dW, db);
    if (g->n % K->vb == 0) return kernel_bwd_lpv(K, g, B, in, W, out, dout, din, dW, db);
    const int VBk = K->vb, CI = g->cin, OC = g->cout, lc = g->local;
    kgeo kg;
    const size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    const int nblk = (B + VBk - 1) / VBk;
    const int nt = lc ? nthreads_for((int)(P > (size_t)nblk ? P : (size_t)nblk))
                      : nthreads_for(nblk);
    const size_t npos = lc ? P : 1, wper = (size_t)CI * T * OC;
    const int Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    const size_t xs = (size_t)CI * Pp * VBk, ds = (size_t)OC * Pp * VBk;
    size_t off = 0;
    size_t o_geo = take(&off, kgeo_bytes(g, lc));
    size_t o_wofs = take(&off, lc ? P * T * sizeof(int) : 0);
    size_t o_wb = take(&off, din ? npos * wper * sizeof(float) : 0);
    size_t o_X = take(&off, (size_t)nblk * xs * sizeof(float));
    size_t o_D = take(&off, (size_t)nblk * ds * sizeof(float));
    /* cnn: per-thread packed partials [CI][T][OC] + [OC]; lc: one [P][CI][T][OC] */
    size_t part_floats = part_stride(wper + OC);
    size_t o_part = take(&off, (lc ? P * wper : (size_t)nt * part_floats) * sizeof(float));
    size_t dxs = (size_t)CI * P * VBk;
    size_t o_dx = take(&off, din ? (size_t)nt * dxs * sizeof(float) : 0);
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    kgeo_build(g, mem + o_geo, lc, &kg);
    int *wofs = lc ? (int *)(mem + o_wofs) : NULL;
    float *Wb = (float *)(mem + o_wb), *Xall = (float *)(mem + o_X), *Dall = (float *)(mem + o_D);
    float *parts = (float *)(mem + o_part), *DXall = (float *)(mem + o_dx);
    const int Ti = (int)T;
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
        /* transposed-convolution weights: Wb[pos][co][t][ci] = W[pos][co][ci][t];
         * lc: the weight of (q, t) belongs to the source position srcpos[q][t] */
        if (din) {
#pragma omp for schedule(static) nowait
            for (long pi = 0; pi < (long)npos; pi++) {
                const float *src = W + (size_t)pi * wper;
                float *dst = Wb + (size_t)pi * wper;
                for (int co = 0; co < OC; co++)
                    for (int ci = 0; ci < CI; ci++)
                        for (int tt = 0; tt < Ti; tt++)
                            dst[((size_t)co * Ti + tt) * CI + ci] = src[((size_t)co * CI + ci) * Ti + tt];
                if (wofs)
                    for (int tt = 0; tt < Ti; tt++)
                        wofs[(size_t)pi * Ti + tt] = (int)((size_t)kg.srcpos[(size_t)pi * Ti + tt] * wper);
            }
        }
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(in + (size_t)b0 * CI * P, nv, CI, (int)P, kg.qb, (int)Pp, kg.halo,
                        kg.nhalo, Xall + (size_t)blk * xs);
            K->grad_to_block(out + (size_t)b0 * OC * P, dout + (size_t)b0 * OC * P, g->relu, nv,
                             OC, (int)P, kg.qb, (int)Pp, kg.halo, kg.nhalo,
                             Dall + (size_t)blk * ds);
        }
        /* (implicit barrier: all blocks and packed weights ready) */
        if (din) {
            float *DX = DXall + (size_t)t * dxs;
            conv_args a = {NULL, Wb, NULL, DX, kg.qb, kg.toffb, wofs, (int)P, Ti, OC, (int)Pp,
                           CI, 0, NULL, NULL};
#pragma omp for schedule(static) nowait
            for (int blk = 0; blk < nblk; blk++) {
                int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
                a.X = Dall + (size_t)blk * ds;
                K->conv(&a);
                K->from_block(DX, nv, CI, (int)P, din + (size_t)b0 * CI * P, 0);
            }
        }
        dw_args d = {Xall, Dall, xs, ds, kg.qb, kg.toff, 0, nblk, CI, OC, Ti, (int)Pp, kg.qb,
                     (int)Pp, 0};
        dw_phase(K, d, lc, (int)P, nblk, nt, t, parts, part_floats, 1, 0, dW, db);
    }
    return MNNH_OK;
}

/* ------------------------------------------- restriction / interpolation */
/* As convolutions over a block of samples: the grid of VB samples is X[G][VB];
 * position q's block starts at grid index qb[q] and offset j is toff[j]. */
typedef struct {
    int *qb, *toff, *ident;
} btab;
static const int zero_tap[1] = {0};

static size_t btab_bytes(const mnnh_geom *g) {
    size_t off = 0, P = mnnh_geom_positions(g), S = mnnh_geom_block(g);
    take(&off, P * sizeof(int));
    take(&off, S * sizeof(int));
    take(&off, P * sizeof(int));
    return off;
}
static void btab_build(const mnnh_geom *g, char *mem, btab *t) {
    size_t off = 0, P = mnnh_geom_positions(g), S = mnnh_geom_block(g);
    t->qb = (int *)(mem + take(&off, P * sizeof(int)));
    t->toff = (int *)(mem + take(&off, S * sizeof(int)));
    t->ident = (int *)(mem + take(&off, P * sizeof(int)));
    int n = g->n, s = g->s, N = n * s;
    if (g->dim == 1) {
        for (int i = 0; i < n; i++) t->qb[i] = i * s;
        for (int j = 0; j < s; j++) t->toff[j] = j;
    } else {
        for (int i1 = 0; i1 < n; i1++)
            for (int i2 = 0; i2 < n; i2++) t->qb[i1 * n + i2] = i1 * s * N + i2 * s;
        for (int j1 = 0; j1 < s; j1++)
            for (int j2 = 0; j2 < s; j2++) t->toff[j1 * s + j2] = j1 * N + j2;
    }
    for (size_t q = 0; q < P; q++) t->ident[q] = (int)q;
}

static mnnh_status cpu_restrict_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                    const float *W, const float *b, float *out) {
    (void)be;
    const simd_kernels *K = kern();
    const int VBk = K->vb, C = g->cout, lc = g->local;
    const size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    const int nblk = (B + VBk - 1) / VBk, nt = nthreads_for(nblk);
    const size_t npos = lc ? P : 1, wper = S * C;
    size_t off = 0;
    size_t o_tab = take(&off, btab_bytes(g));
    size_t o_wofs = take(&off, lc ? P * S * sizeof(int) : 0);
    size_t o_w = take(&off, npos * wper * sizeof(float));
    size_t xs = G * VBk, ys = (size_t)C * P * VBk;
    size_t o_th = take(&off, 0), per_thread = ((xs + ys) * sizeof(float) + 63) & ~(size_t)63;
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    btab bt;
    btab_build(g, mem + o_tab, &bt);
    int *wofs = lc ? (int *)(mem + o_wofs) : NULL;
    float *Wpk = (float *)(mem + o_w);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (long pi = 0; pi < (long)npos; pi++) {
            const float *src = W + (size_t)pi * wper;
            float *dst = Wpk + (size_t)pi * wper;
            for (int c = 0; c < C; c++)
                for (size_t j = 0; j < S; j++) dst[j * C + c] = src[(size_t)c * S + j];
            if (wofs)
                for (size_t j = 0; j < S; j++) wofs[(size_t)pi * S + j] = (int)((size_t)pi * wper);
        }
        int t = thread_id(), lo, hi;
        part(nblk, t, nt, &lo, &hi);
        float *X = (float *)(mem + o_th + per_thread * t), *Y = X + xs;
        conv_args a = {X, Wpk, b, Y, bt.qb, bt.toff, wofs, (int)P, (int)S, 1, (int)G, C, 0,
                       NULL, NULL};
        for (int blk = lo; blk < hi; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(v + (size_t)b0 * G, nv, 1, (int)G, NULL, (int)G, NULL, 0, X);
            K->conv(&a);
            K->from_block(Y, nv, C, (int)P, out + (size_t)b0 * C * P, 0);
        }
    }
    return MNNH_OK;
}

static mnnh_status restrict_bwd_scalar(const mnnh_geom *g, int B, const float *v, const float *W,
                                       const float *dout, float *dv, float *dW, float *db);

static mnnh_status cpu_restrict_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                                    const float *W, const float *dout, float *dv, float *dW,
                                    float *db) {
    (void)be;
    if (dv) return restrict_bwd_scalar(g, B, v, W, dout, dv, dW, db); /* not used by the model */
    const simd_kernels *K = kern();
    const int VBk = K->vb, C = g->cout, lc = g->local;
    const size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    const int nblk = (B + VBk - 1) / VBk;
    const int nt = lc ? nthreads_for((int)(P > (size_t)nblk ? P : (size_t)nblk))
                      : nthreads_for(nblk);
    const size_t wper = S * C, xs = G * VBk, ds = (size_t)C * P * VBk;
    size_t part_floats = part_stride(wper + C);
    size_t off = 0;
    size_t o_tab = take(&off, btab_bytes(g));
    size_t o_X = take(&off, (size_t)nblk * xs * sizeof(float));
    size_t o_D = take(&off, (size_t)nblk * ds * sizeof(float));
    size_t o_part = take(&off, (lc ? P * wper : (size_t)nt * part_floats) * sizeof(float));
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    btab bt;
    btab_build(g, mem + o_tab, &bt);
    float *Xall = (float *)(mem + o_X), *Dall = (float *)(mem + o_D), *parts = (float *)(mem + o_part);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(v + (size_t)b0 * G, nv, 1, (int)G, NULL, (int)G, NULL, 0,
                        Xall + (size_t)blk * xs);
            K->grad_to_block(NULL, dout + (size_t)b0 * C * P, 0, nv, C, (int)P, NULL, (int)P,
                             NULL, 0, Dall + (size_t)blk * ds);
        }
        dw_args d = {Xall, Dall, xs, ds, bt.qb, bt.toff, 0, nblk, 1, C, (int)S, (int)G, bt.ident,
                     (int)P, 0};
        dw_phase(K, d, lc, (int)P, nblk, nt, thread_id(), parts, part_floats, 1, 0, dW, db);
    }
    return MNNH_OK;
}

static mnnh_status cpu_interp_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                  const float *W, const float *b, float *u) {
    (void)be;
    const simd_kernels *K = kern();
    const int VBk = K->vb, C = g->cin, lc = g->local;
    const size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    const int nblk = (B + VBk - 1) / VBk, nt = nthreads_for(nblk);
    const size_t npos = lc ? P : 1, wper = S * C;
    size_t off = 0;
    size_t o_tab = take(&off, btab_bytes(g));
    size_t o_wofs = take(&off, lc ? P * sizeof(int) : 0);
    size_t o_w = take(&off, npos * wper * sizeof(float));
    size_t xs = (size_t)C * P * VBk, ys = G * VBk;
    size_t o_th = take(&off, 0), per_thread = ((xs + ys) * sizeof(float) + 63) & ~(size_t)63;
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    btab bt;
    btab_build(g, mem + o_tab, &bt);
    int *wofs = lc ? (int *)(mem + o_wofs) : NULL;
    float *Wpk = (float *)(mem + o_w);
#pragma omp parallel num_threads(nt)
    {
        /* W[pos][j][c] -> [pos][c][j]: input channel c, output channel j */
#pragma omp for schedule(static)
        for (long pi = 0; pi < (long)npos; pi++) {
            const float *src = W + (size_t)pi * wper;
            float *dst = Wpk + (size_t)pi * wper;
            for (size_t j = 0; j < S; j++)
                for (int c = 0; c < C; c++) dst[(size_t)c * S + j] = src[j * C + c];
            if (wofs) wofs[pi] = (int)((size_t)pi * wper);
        }
        int t = thread_id(), lo, hi;
        part(nblk, t, nt, &lo, &hi);
        float *X = (float *)(mem + o_th + per_thread * t), *Yg = X + xs;
        conv_args a = {X, Wpk, b, Yg, bt.ident, zero_tap, wofs, (int)P, 1, C, (int)P, (int)S, 0,
                       bt.qb, bt.toff};
        for (int blk = lo; blk < hi; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(z + (size_t)b0 * C * P, nv, C, (int)P, NULL, (int)P, NULL, 0, X);
            K->conv(&a);
            K->from_block(Yg, nv, 1, (int)G, u + (size_t)b0 * G, 1);
        }
    }
    return MNNH_OK;
}

static mnnh_status cpu_interp_bwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *z,
                                  const float *W, const float *du, float *dz, float *dW,
                                  float *db) {
    (void)be;
    const simd_kernels *K = kern();
    const int VBk = K->vb, C = g->cin, lc = g->local;
    const size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    const int nblk = (B + VBk - 1) / VBk;
    const int nt = lc ? nthreads_for((int)(P > (size_t)nblk ? P : (size_t)nblk))
                      : nthreads_for(nblk);
    const size_t wper = S * C, xs = G * VBk, zs = (size_t)C * P * VBk;
    size_t part_floats = part_stride(wper + S);
    size_t off = 0;
    size_t o_tab = take(&off, btab_bytes(g));
    size_t o_wofs = take(&off, lc ? P * S * sizeof(int) : 0);
    size_t o_X = take(&off, (size_t)nblk * xs * sizeof(float));
    size_t o_Z = take(&off, (size_t)nblk * zs * sizeof(float));
    size_t o_part = take(&off, (lc ? P * wper : (size_t)nt * part_floats) * sizeof(float));
    size_t o_dz = take(&off, dz ? (size_t)nt * zs * sizeof(float) : 0);
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    btab bt;
    btab_build(g, mem + o_tab, &bt);
    int *wofs = lc ? (int *)(mem + o_wofs) : NULL;
    if (wofs)
        for (size_t q = 0; q < P; q++)
            for (size_t j = 0; j < S; j++) wofs[q * S + j] = (int)(q * wper);
    float *Xall = (float *)(mem + o_X), *Zall = (float *)(mem + o_Z);
    float *parts = (float *)(mem + o_part), *DZall = (float *)(mem + o_dz);
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(du + (size_t)b0 * G, nv, 1, (int)G, NULL, (int)G, NULL, 0,
                        Xall + (size_t)blk * xs);
            K->to_block(z + (size_t)b0 * C * P, nv, C, (int)P, NULL, (int)P, NULL, 0,
                        Zall + (size_t)blk * zs);
        }
        if (dz) {
            /* dz[c][q] = sum_j W[q?][j][c] du[grid(q, j)]: W is already [pos][tap j][out c] */
            float *DZ = DZall + (size_t)t * zs;
            conv_args a = {NULL, W, NULL, DZ, bt.qb, bt.toff, wofs, (int)P, (int)S, 1, (int)G, C,
                           0, NULL, NULL};
#pragma omp for schedule(static) nowait
            for (int blk = 0; blk < nblk; blk++) {
                int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
                a.X = Xall + (size_t)blk * xs;
                K->conv(&a);
                K->from_block(DZ, nv, C, (int)P, dz + (size_t)b0 * C * P, 0);
            }
        }
        dw_args d = {Xall, Zall, xs, zs, bt.qb, bt.toff, 0, nblk, 1, C, (int)S, (int)G, bt.ident,
                     (int)P, 0};
        dw_phase(K, d, lc, (int)P, nblk, nt, t, parts, part_floats, 0, 1, dW, db);
    }
    return MNNH_OK;
}

/* ------------------------------------------------------ fused level forward */
/* One whole level (restrict, K kernel layers, interp) per batch block of VB
 * samples without leaving the block layout: the grid is transposed in once
 * (X[G][VB]), the restriction writes straight into the padded activation
 * A0[C][Pp][VB] (conv_args.yq/yo), each kernel layer reads one padded
 * activation and writes the other (halo refreshed in place), the
 * interpolation reads the last one and writes the grid block, which is added
 * to u with one transpose out. The per-op path instead pays a transpose in
 * and out of [B][C][P] for every one of the K + 2 ops, which is most of the
 * time on small levels (KS 1D: n = 4..64, r = 6). Same arithmetic, same
 * accumulation order as the per-op kernels. */
static void fill_halo(float *A, int C, size_t Pp, const int *halo, int nhalo, int VBk) {
    for (int c = 0; c < C; c++) {
        float *Ac = A + (size_t)c * Pp * VBk;
        for (int h = 0; h < nhalo; h++)
            memcpy(Ac + (size_t)halo[2 * h] * VBk, Ac + (size_t)halo[2 * h + 1] * VBk,
                   sizeof(float) * VBk);
    }
}

/* A level whose kernel layers take the dense path (small lc levels) runs
 * the per-op sequence in work0, work1: the fused block-layout arithmetic
 * would not give the per-op kernels' bits. */
/* NK kernel layers one op at a time, ping-ponging between t[0] (the input)
 * and t[1]; *out = the buffer holding the last layer's output. The per-op
 * fallback of the fused level and adjacent ops. */
static mnnh_status kernel_fwd_chain(mnnh_backend *be, const mnnh_geom *gk, int NK,
                                    const float *const *W, const float *const *b, int B,
                                    float *t[2], float **out) {
    int w = 0;
    for (int k = 0; k < NK; k++, w ^= 1)
        MNNH_TRY(cpu_kernel_fwd(be, &gk[k], B, t[w], W[k], b[k], t[w ^ 1]));
    *out = t[w];
    return MNNH_OK;
}

static mnnh_status level_fwd_ops(mnnh_backend *be, const mnnh_level_params *lp, int B,
                                 const float *v, float *u, float *work0, float *work1) {
    float *t[2] = {work0, work1}, *last;
    MNNH_TRY(cpu_restrict_fwd(be, lp->g_restrict, B, v, lp->W_restrict, lp->b_restrict, t[0]));
    MNNH_TRY(kernel_fwd_chain(be, lp->g_kernel, lp->K, lp->W_kernel, lp->b_kernel, B, t, &last));
    return cpu_interp_fwd(be, lp->g_interp, B, last, lp->W_interp, lp->b_interp, u);
}

static mnnh_status cpu_level_fwd(mnnh_backend *be, const mnnh_level_params *lp, int B,
                                 const float *v, float *u, float *work0, float *work1) {
    if (mnnh_level_params_check(lp))
        return mnnh_error_set(MNNH_ERR_ARG, "level_fwd: inconsistent level geometries");
    const simd_kernels *K = kern();
    if (lp->K && dense_usable(&lp->g_kernel[0], K->vb))
        return level_fwd_ops(be, lp, B, v, u, work0, work1);
    const mnnh_geom *gr = lp->g_restrict;
    /* the kernel-layer geometry (nb, n) of the level; a level with K = 0 has none */
    mnnh_geom gk = lp->K ? lp->g_kernel[0] : *gr;
    if (!lp->K) gk.nb = 0;
    for (int k = 1; k < lp->K; k++)
        if (lp->g_kernel[k].nb != gk.nb)
            return mnnh_error_set(MNNH_ERR_ARG, "level_fwd: kernel half-widths differ");
    const int VBk = K->vb, C = gr->cout, lc = gr->local, NK = lp->K;
    const size_t P = mnnh_geom_positions(gr), S = mnnh_geom_block(gr), G = mnnh_geom_grid(gr);
    const size_t T = mnnh_geom_taps(&gk), npos = lc ? P : 1;
    const size_t wr = S * C, wk = (size_t)C * T * C, wi = S * C;
    const int Wp1 = gk.n + 2 * gk.nb;
    const size_t Pp = gk.dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    const int nblk = (B + VBk - 1) / VBk, nt = nthreads_for(nblk);
    size_t off = 0;
    size_t o_tab = take(&off, btab_bytes(gr));
    size_t o_geo = take(&off, kgeo_bytes(&gk, 0));
    size_t o_yo = take(&off, (size_t)C * sizeof(int));
    size_t o_wofs_r = take(&off, lc ? P * S * sizeof(int) : 0);
    size_t o_wofs_k = take(&off, lc ? P * T * sizeof(int) : 0);
    size_t o_wofs_i = take(&off, lc ? P * sizeof(int) : 0);
    size_t o_wr = take(&off, npos * wr * sizeof(float));
    size_t o_wk = take(&off, (size_t)NK * npos * wk * sizeof(float));
    size_t o_wi = take(&off, npos * wi * sizeof(float));
    size_t xs = G * VBk, as = (size_t)C * Pp * VBk;
    size_t o_th = take(&off, 0), per_thread = ((xs + 2 * as) * sizeof(float) + 63) & ~(size_t)63;
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    btab bt;
    btab_build(gr, mem + o_tab, &bt);
    kgeo kg;
    kgeo_build(&gk, mem + o_geo, 0, &kg);
    int *yo = (int *)(mem + o_yo);
    for (int c = 0; c < C; c++) yo[c] = (int)((size_t)c * Pp);
    int *wofs_r = lc ? (int *)(mem + o_wofs_r) : NULL;
    int *wofs_k = lc ? (int *)(mem + o_wofs_k) : NULL;
    int *wofs_i = lc ? (int *)(mem + o_wofs_i) : NULL;
    float *Wr = (float *)(mem + o_wr), *Wk = (float *)(mem + o_wk), *Wi = (float *)(mem + o_wi);
#pragma omp parallel num_threads(nt)
    {
        /* pack: restrict [pos][c][j] -> [pos][j][c]; kernels [pos][o][i][t] ->
         * [pos][i][t][o]; interp [pos][j][c] -> [pos][c][j] (as the per-op kernels) */
#pragma omp for schedule(static)
        for (long pi = 0; pi < (long)npos; pi++) {
            const float *src = lp->W_restrict + (size_t)pi * wr;
            float *dst = Wr + (size_t)pi * wr;
            for (int c = 0; c < C; c++)
                for (size_t j = 0; j < S; j++) dst[j * C + c] = src[(size_t)c * S + j];
            for (int k = 0; k < NK; k++) {
                const float *sk = lp->W_kernel[k] + (size_t)pi * wk;
                float *dk = Wk + ((size_t)k * npos + pi) * wk;
                for (int o = 0; o < C; o++)
                    for (size_t q = 0; q < (size_t)C * T; q++) dk[q * C + o] = sk[(size_t)o * C * T + q];
            }
            const float *si = lp->W_interp + (size_t)pi * wi;
            float *di = Wi + (size_t)pi * wi;
            for (size_t j = 0; j < S; j++)
                for (int c = 0; c < C; c++) di[(size_t)c * S + j] = si[j * C + c];
            if (lc) {
                for (size_t j = 0; j < S; j++) wofs_r[(size_t)pi * S + j] = (int)((size_t)pi * wr);
                for (size_t t = 0; t < T; t++) wofs_k[(size_t)pi * T + t] = (int)((size_t)pi * wk);
                wofs_i[pi] = (int)((size_t)pi * wi);
            }
        }
        int t = thread_id(), lo, hi;
        part(nblk, t, nt, &lo, &hi);
        float *X = (float *)(mem + o_th + per_thread * t), *A[2] = {X + xs, X + xs + as};
        conv_args ar = {X, Wr, lp->b_restrict, A[0], bt.qb, bt.toff, wofs_r, (int)P, (int)S, 1,
                        (int)G, C, 0, kg.qb, yo};
        conv_args ak = {NULL, NULL, NULL, NULL, kg.qb, kg.toff, wofs_k, (int)P, (int)T, C,
                        (int)Pp, C, 0, kg.qb, yo};
        conv_args ai = {NULL, Wi, lp->b_interp, X, kg.qb, zero_tap, wofs_i, (int)P, 1, C,
                        (int)Pp, (int)S, 0, bt.qb, bt.toff};
        for (int blk = lo; blk < hi; blk++) {
            int b0 = blk * VBk, nv = B - b0 < VBk ? B - b0 : VBk;
            K->to_block(v + (size_t)b0 * G, nv, 1, (int)G, NULL, (int)G, NULL, 0, X);
            K->conv(&ar);
            int w = 0;
            for (int k = 0; k < NK; k++, w ^= 1) {
                fill_halo(A[w], C, Pp, kg.halo, kg.nhalo, VBk);
                ak.X = A[w];
                ak.Y = A[w ^ 1];
                ak.W = Wk + (size_t)k * npos * wk;
                ak.bias = lp->b_kernel[k];
                ak.relu = lp->g_kernel[k].relu;
                K->conv(&ak);
            }
            /* the grid block X is free again: the interpolation writes it whole */
            ai.X = A[w];
            K->conv(&ai);
            K->from_block(X, nv, 1, (int)G, u + (size_t)b0 * G, 1);
        }
    }
    return MNNH_OK;
}

/* --------------------------------------------------- fused adjacent forward */
/* The adjacent part (gather, K kernel layers, scatter_add) one sample at a
 * time with the position-vectorised kernels, without leaving the padded
 * layout: the block reshape writes the padded activation A0[S][Pp] directly,
 * kernel layers ping-pong between two padded activations (pconv writes the
 * interior through conv_args.yq/yo, the halo is refreshed in place), the last
 * layer writes an unpadded [S][P] that is added to u. The per-op path pays a
 * pass over [B][S][P] for the gather, a padded copy per layer and the
 * scatter. Same kernels, same accumulation order as kernel_fwd_pv: the result
 * is bit-identical to the per-op sequence. Other shapes (lc, n not a multiple
 * of the vector width, the position-vectorised forward disabled, K = 0) run
 * the per-op sequence in work0, work1. */
static mnnh_status cpu_kernel_fwd(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                  const float *W, const float *b, float *out);
static mnnh_status cpu_gather(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                              float *out);
static mnnh_status cpu_scatter_add(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                   float *u);

static mnnh_status cpu_adjacent_fwd(mnnh_backend *be, const mnnh_adjacent_params *ap, int B,
                                    const float *v, float *u, float *work0,
                                    float *work1) {
    if (mnnh_adjacent_params_check(ap))
        return mnnh_error_set(MNNH_ERR_ARG, "adjacent_fwd: inconsistent geometries");
    const simd_kernels *K = kern();
    const mnnh_geom *gb = ap->g_block;
    const int NK = ap->K, VBk = K->vb;
    int fast = NK > 0 && !ap->g_kernel[0].local && gb->n % VBk == 0 && (pv_mask() & 1);
    for (int k = 1; k < NK && fast; k++)
        if (ap->g_kernel[k].nb != ap->g_kernel[0].nb) fast = 0;
    if (!fast) {
        float *t[2] = {work0, work1}, *last;
        MNNH_TRY(cpu_gather(be, gb, B, v, t[0]));
        MNNH_TRY(kernel_fwd_chain(be, ap->g_kernel, NK, ap->W_kernel, ap->b_kernel, B, t, &last));
        return cpu_scatter_add(be, gb, B, last, u);
    }
    const mnnh_geom *g = &ap->g_kernel[0];
    const int C = g->cin, nt = nthreads_for(B);
    const size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g), G = mnnh_geom_grid(gb);
    const size_t wper = (size_t)C * T * C;
    const int Wp1 = g->n + 2 * g->nb;
    const size_t Pp = g->dim == 2 ? (size_t)Wp1 * Wp1 : (size_t)Wp1;
    size_t off = 0;
    size_t o_geo = take(&off, pgeo_bytes(g, VBk));
    size_t o_yq = take(&off, P / VBk * sizeof(int));
    size_t o_yo = take(&off, (size_t)C * sizeof(int));
    size_t o_w = take(&off, (size_t)NK * wper * sizeof(float));
    size_t o_th = take(&off, 0);
    size_t per_thread = ((2 * (size_t)C * Pp + (size_t)C * P) * sizeof(float) + 63) & ~(size_t)63;
    off += per_thread * nt;
    char *mem = scratch_get(off);
    if (!mem) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch (%zu bytes)", off);
    pgeo pg;
    pgeo_build(g, VBk, mem + o_geo, &pg);
    int *yq = (int *)(mem + o_yq), *yo = (int *)(mem + o_yo);
    for (int q = 0; q < pg.nvec; q++) yq[q] = pg.qoff[q] + pg.ctr;
    for (int c = 0; c < C; c++) yo[c] = (int)((size_t)c * Pp);
    float *Wpk = (float *)(mem + o_w);
    for (int k = 0; k < NK; k++) {
        const float *src = ap->W_kernel[k];
        float *dst = Wpk + (size_t)k * wper;
        for (int o = 0; o < C; o++)
            for (size_t kk = 0; kk < (size_t)C * T; kk++) dst[kk * C + o] = src[(size_t)o * C * T + kk];
    }
    const int n = gb->n, s = gb->s, nb = g->nb, Wp = Wp1;
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), lo, hi;
        part(B, t, nt, &lo, &hi);
        float *A[2], *Yl;
        A[0] = (float *)(mem + o_th + per_thread * t);
        A[1] = A[0] + (size_t)C * Pp;
        Yl = A[1] + (size_t)C * Pp;
        conv_args a = {NULL, NULL, NULL, NULL, pg.qoff, pg.toff, NULL, (int)P, (int)T, C,
                       (int)Pp, C, 0, NULL, NULL};
        for (int bi = lo; bi < hi; bi++) {
            const float *vb = v + (size_t)bi * G;
            float *ub = u + (size_t)bi * G;
            /* block reshape: channel j = (k1 s + k2) at position (i1, i2) */
            if (g->dim == 1) {
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < s; j++) A[0][(size_t)j * Pp + nb + i] = vb[i * s + j];
            } else {
                size_t ns = (size_t)n * s;
                for (int k1 = 0; k1 < s; k1++)
                    for (int i1 = 0; i1 < n; i1++) {
                        const float *row = vb + ((size_t)i1 * s + k1) * ns;
                        for (int k2 = 0; k2 < s; k2++) {
                            float *dst = A[0] + (size_t)(k1 * s + k2) * Pp + (size_t)(i1 + nb) * Wp + nb;
                            for (int i2 = 0; i2 < n; i2++) dst[i2] = row[i2 * s + k2];
                        }
                    }
            }
            halo_sample(g, C, A[0], Pp);
            int w = 0;
            for (int k = 0; k < NK; k++, w ^= 1) {
                int last = k == NK - 1;
                a.X = A[w];
                a.W = Wpk + (size_t)k * wper;
                a.bias = ap->b_kernel[k];
                a.relu = ap->g_kernel[k].relu;
                a.Y = last ? Yl : A[w ^ 1];
                a.yq = last ? NULL : yq;
                a.yo = last ? NULL : yo;
                K->pconv(&a);
                if (!last) halo_sample(g, C, A[w ^ 1], Pp);
            }
            /* flatten: u += Yl (channel j, position i) */
            if (g->dim == 1) {
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < s; j++) ub[i * s + j] += Yl[(size_t)j * P + i];
            } else {
                size_t ns = (size_t)n * s;
                for (int k1 = 0; k1 < s; k1++)
                    for (int i1 = 0; i1 < n; i1++) {
                        float *row = ub + ((size_t)i1 * s + k1) * ns;
                        for (int k2 = 0; k2 < s; k2++) {
                            const float *src = Yl + (size_t)(k1 * s + k2) * P + (size_t)i1 * n;
                            for (int i2 = 0; i2 < n; i2++) row[i2 * s + k2] += src[i2];
                        }
                    }
            }
        }
    }
    return MNNH_OK;
}

/* ------------------------------------------- per-sample split with partials */
/* Run body over sample slices with private parameter-gradient partials
 * (zeroed), then add the partials to the outputs in thread order. */
typedef void (*slice_fn)(void *ctx, int lo, int hi, float *part);

static mnnh_status split_samples(int B, size_t npart, slice_fn body, void *ctx,
                                 void (*reduce)(void *ctx, const float *part)) {
    int nt = nthreads_for(B);
    size_t off = 0;
    size_t stride = take(&off, npart * sizeof(float));
    (void)stride;
    size_t per = off;
    float *s = scratch_get(per * nt + 64);
    if (!s) return mnnh_error_set(MNNH_ERR_NOMEM, "cpu backend scratch");
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id(), lo, hi;
        part(B, t, nt, &lo, &hi);
        float *mine = (float *)((char *)s + per * t);
        if (npart) memset(mine, 0, npart * sizeof(float));
        if (hi > lo) body(ctx, lo, hi, mine);
    }
    if (reduce)
        for (int t = 0; t < nt; t++) reduce(ctx, (const float *)((char *)s + per * t));
    return MNNH_OK;
}

/* Offset of block position i, offset row j1 in a sample's grid (2D: rows of s). */
typedef struct {
    const mnnh_geom *g;
    const float *a, *W, *b, *d;
    float *o1, *o2, *dW, *db;
    size_t P, S, G, nW, nB;
} lay_ctx;

/* Copy the s^d values of block i of grid v into blk[S]. */
static inline void block_get(const mnnh_geom *g, const float *v, size_t i, float *blk) {
    int s = g->s;
    if (g->dim == 1) {
        memcpy(blk, v + i * s, sizeof(float) * s);
    } else {
        size_t n = g->n, ns = n * s, i1 = i / n, i2 = i % n;
        for (int j1 = 0; j1 < s; j1++) memcpy(blk + (size_t)j1 * s, v + (i1 * s + j1) * ns + i2 * s, sizeof(float) * s);
    }
}
static inline float *block_ptr_row(const mnnh_geom *g, float *v, size_t i, int j1) {
    int s = g->s;
    if (g->dim == 1) return v + i * s;
    size_t n = g->n, ns = n * s, i1 = i / n, i2 = i % n;
    return v + (i1 * s + j1) * ns + i2 * s;
}
/* u[block i] += blk (op 0) or = blk (op 1) */
static inline void block_put(const mnnh_geom *g, float *u, size_t i, const float *blk, int set) {
    int s = g->s, rows = g->dim == 1 ? 1 : s;
    for (int j1 = 0; j1 < rows; j1++) {
        float *dst = block_ptr_row(g, u, i, j1);
        const float *src = blk + (size_t)j1 * s;
        if (set) memcpy(dst, src, sizeof(float) * s);
        else
            for (int j2 = 0; j2 < s; j2++) dst[j2] += src[j2];
    }
}

#define MAX_BLOCK_STACK 4096 /* s^d up to this uses the stack */

/* ------------------------------------ restrict backward with dv (scalar) */
static void restrict_bwd_slice(void *vc, int lo, int hi, float *partial) {
    lay_ctx *c = vc;
    const mnnh_geom *g = c->g;
    size_t P = c->P, S = c->S, G = c->G, C = g->cout;
    float *pdW = partial, *pdb = partial + c->nW;
    float stackbuf[2 * MAX_BLOCK_STACK], *blk = S <= MAX_BLOCK_STACK ? stackbuf : malloc(2 * S * sizeof(float));
    if (!blk) return;
    float *dblk = blk + S;
    for (int bi = lo; bi < hi; bi++)
        for (size_t i = 0; i < P; i++) {
            block_get(g, c->a + bi * G, i, blk);
            size_t wo = g->local ? i * C * S : 0, bo = g->local ? i * C : 0;
            if (c->o1) memset(dblk, 0, S * sizeof(float));
            for (size_t o = 0; o < C; o++) {
                float d = c->d[((size_t)bi * C + o) * P + i];
                pdb[bo + o] += d;
                float *w = pdW + wo + o * S;
                for (size_t j = 0; j < S; j++) w[j] += d * blk[j];
                if (c->o1) {
                    const float *Wo = c->W + wo + o * S;
                    for (size_t j = 0; j < S; j++) dblk[j] += d * Wo[j];
                }
            }
            if (c->o1) block_put(g, c->o1 + bi * G, i, dblk, 1);
        }
    if (blk != stackbuf) free(blk);
}
static void add_partial(void *vc, const float *partial) {
    lay_ctx *c = vc;
    for (size_t k = 0; k < c->nW; k++) c->dW[k] += partial[k];
    for (size_t k = 0; k < c->nB; k++) c->db[k] += partial[c->nW + k];
}
static mnnh_status restrict_bwd_scalar(const mnnh_geom *g, int B, const float *v, const float *W,
                                       const float *dout, float *dv, float *dW, float *db) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), loc = g->local ? P : 1;
    lay_ctx c = {g, v, W, NULL, dout, dv, NULL, dW, db, P, S, mnnh_geom_grid(g),
                 loc * g->cout * S, loc * g->cout};
    return split_samples(B, c.nW + c.nB, restrict_bwd_slice, &c, add_partial);
}

/* -------------------------------------------------- gather / scatter */
static void gather_slice(void *vc, int lo, int hi, float *unused) {
    (void)unused;
    lay_ctx *c = vc;
    const mnnh_geom *g = c->g;
    size_t P = c->P, S = c->S, G = c->G;
    int s = g->s;
    for (int bi = lo; bi < hi; bi++) {
        const float *v = c->a + bi * G;
        float *o = c->o1 + bi * G;
        if (g->dim == 1) {
            for (size_t i = 0; i < P; i++)
                for (int j = 0; j < s; j++) o[(size_t)j * P + i] = v[i * s + j];
        } else {
            size_t n = g->n, ns = n * s;
            for (size_t k1 = 0; k1 < (size_t)s; k1++)
                for (size_t i1 = 0; i1 < n; i1++) {
                    const float *row = v + (i1 * s + k1) * ns;
                    for (size_t i2 = 0; i2 < n; i2++)
                        for (size_t k2 = 0; k2 < (size_t)s; k2++)
                            o[(k1 * s + k2) * P + i1 * n + i2] = row[i2 * s + k2];
                }
        }
    }
    (void)S;
}
static mnnh_status cpu_gather(mnnh_backend *be, const mnnh_geom *g, int B, const float *v,
                              float *out) {
    (void)be;
    lay_ctx c = {g, v, NULL, NULL, NULL, out, NULL, NULL, NULL, mnnh_geom_positions(g),
                 mnnh_geom_block(g), mnnh_geom_grid(g), 0, 0};
    return split_samples(B, 0, gather_slice, &c, NULL);
}
static void scatter_slice(void *vc, int lo, int hi, float *unused) {
    (void)unused;
    lay_ctx *c = vc;
    const mnnh_geom *g = c->g;
    size_t P = c->P, G = c->G;
    int s = g->s;
    for (int bi = lo; bi < hi; bi++) {
        const float *in = c->a + bi * G;
        float *u = c->o1 + bi * G;
        if (g->dim == 1) {
            for (size_t i = 0; i < P; i++)
                for (int j = 0; j < s; j++) u[i * s + j] += in[(size_t)j * P + i];
        } else {
            size_t n = g->n, ns = n * s;
            for (size_t k1 = 0; k1 < (size_t)s; k1++)
                for (size_t i1 = 0; i1 < n; i1++) {
                    float *row = u + (i1 * s + k1) * ns;
                    for (size_t i2 = 0; i2 < n; i2++)
                        for (size_t k2 = 0; k2 < (size_t)s; k2++)
                            row[i2 * s + k2] += in[(k1 * s + k2) * P + i1 * n + i2];
                }
        }
    }
}
static mnnh_status cpu_scatter_add(mnnh_backend *be, const mnnh_geom *g, int B, const float *in,
                                   float *u) {
    (void)be;
    lay_ctx c = {g, in, NULL, NULL, NULL, u, NULL, NULL, NULL, mnnh_geom_positions(g),
                 mnnh_geom_block(g), mnnh_geom_grid(g), 0, 0};
    return split_samples(B, 0, scatter_slice, &c, NULL);
}

/* ------------------------------------------------------ elementwise ops */
/* Each sample (or element chunk) is independent: split, same results for
 * any thread count. */
static mnnh_status cpu_affine(mnnh_backend *be, size_t n, const float *x, float scale,
                              float shift, float *y) {
    (void)be;
    int nt = nthreads_for((int)(n / 65536 + 1));
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        mnnh_ref_affine(hi - lo, x + lo, scale, shift, y + lo);
    }
    return MNNH_OK;
}
static mnnh_status cpu_density_fwd(mnnh_backend *be, int B, size_t len, const float *y,
                                   float ne, float cv, float *rho, float *sums) {
    (void)be;
    int nt = nthreads_for(B);
#pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        part(B, thread_id(), nt, &lo, &hi);
        if (hi > lo) mnnh_ref_density_fwd(hi - lo, len, y + lo * len, ne, cv, rho + lo * len, sums + lo);
    }
    return MNNH_OK;
}
static mnnh_status cpu_density_bwd(mnnh_backend *be, int B, size_t len, const float *y,
                                   const float *rho, const float *sums, float ne, float cv,
                                   const float *drho, float *dy) {
    (void)be;
    int nt = nthreads_for(B);
#pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        part(B, thread_id(), nt, &lo, &hi);
        if (hi > lo)
            mnnh_ref_density_bwd(hi - lo, len, y + lo * len, rho + lo * len, sums + lo, ne, cv,
                                 drho + lo * len, dy + lo * len);
    }
    return MNNH_OK;
}
static mnnh_status cpu_relerr(mnnh_backend *be, int B, size_t len, const float *pred,
                              const float *target, float *err2, float *dpred, float gs) {
    (void)be;
    int nt = nthreads_for(B);
#pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        part(B, thread_id(), nt, &lo, &hi);
        if (hi > lo)
            mnnh_ref_relerr(hi - lo, len, pred + lo * len, target + lo * len, err2 + lo,
                            dpred ? dpred + lo * len : NULL, gs);
    }
    return MNNH_OK;
}
static mnnh_status cpu_nadam_update(mnnh_backend *be, size_t n, float *p, const float *g,
                                    float *m, float *v, float b1, float b2, float cg, float cm,
                                    float bias2, float eps) {
    (void)be;
    int nt = nthreads_for((int)(n / 16384 + 1));
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        mnnh_ref_nadam_update(hi - lo, p + lo, g + lo, m + lo, v + lo, b1, b2, cg, cm, bias2, eps);
    }
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
    .level_fwd = cpu_level_fwd,
    .adjacent_fwd = cpu_adjacent_fwd,
};
