/* cuda_backend.cu: the "cuda" backend: device memory ops and a CUDA kernel for
 * every op of backend.h, with the semantics of the CPU references
 * (layers_ref.c, ops_ref.c), which the tests hold them to.
 *
 * Design (docs/gpu.md):
 * - one stream and one cuBLAS handle per backend; every op is enqueued on the
 *   stream; download and sync wait for it and report any asynchronous error;
 * - forward ops and input gradients: one thread per output element, computing
 *   its value as a gather (transposed convolution for the kernel layer), so
 *   no two threads write the same element;
 * - parameter gradients ACCUMULATE (+=): one warp per parameter element sums
 *   its terms in a fixed lane-strided order and reduces with a fixed shuffle
 *   tree, so results are bit-identical from run to run (no atomics anywhere);
 * - per-sample reductions (loss, density) use one block per sample, double
 *   accumulation and a fixed shared-memory tree, like the reference's double;
 * - cnn restrict and interp forward may use cuBLAS strided-batched SGEMM
 *   (deterministic with one stream; TF32 is never enabled);
 * - element ops (affine, NAdam) use explicitly rounded intrinsics so that nvcc
 *   does not contract them into FMAs: they match the C reference bit for bit.
 * Errors become mnnh_status MNNH_ERR_BACKEND with a message naming the call.
 *
 * Built with -DMNNH_CUDA_EMULATE by a host C++ compiler (src/cuda/emu/), the
 * same kernels run serially on the CPU (one thread per block for the block
 * reductions, an exact replay of the warp shuffle tree) so that test_cuda can
 * check the index arithmetic where no GPU exists. */
#ifdef MNNH_CUDA_EMULATE
/* host emulation for checking the index arithmetic without a GPU (emu/) */
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#include <cublas_v2.h>
#endif

#include <cfloat>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mnnh/backend.h"
#include "mnnh/layers.h"
#include "cuda_backend.h"

/* ------------------------------------------------------------ errors */

static mnnh_status cuda_fail(cudaError_t e, const char *call, const char *file, int line) {
    return mnnh_error_set(MNNH_ERR_BACKEND, "CUDA error %s (%s) in %s at %s:%d",
                          cudaGetErrorName(e), cudaGetErrorString(e), call, file, line);
}
static mnnh_status cublas_fail(cublasStatus_t s, const char *call, const char *file, int line) {
    return mnnh_error_set(MNNH_ERR_BACKEND, "cuBLAS error %s (%d) in %s at %s:%d",
                          cublasGetStatusString(s), (int)s, call, file, line);
}

#define CUDA_CHECK(call)                                                         \
    do {                                                                         \
        cudaError_t cuda_e_ = (call);                                            \
        if (cuda_e_ != cudaSuccess) return cuda_fail(cuda_e_, #call, __FILE__, __LINE__); \
    } while (0)
#define CUBLAS_CHECK(call)                                                       \
    do {                                                                         \
        cublasStatus_t cublas_s_ = (call);                                       \
        if (cublas_s_ != CUBLAS_STATUS_SUCCESS)                                  \
            return cublas_fail(cublas_s_, #call, __FILE__, __LINE__);            \
    } while (0)
/* After a kernel launch: configuration errors are reported at once, execution
 * errors at the next download / sync. */
#define LAUNCH_CHECK(what) CUDA_CHECK(cudaGetLastError())

/* ------------------------------------------------------------ context */

typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
    float *ws[3];      /* scratch: 0 gathered blocks / GEMM out, 1 masked gradients,
                        * 2 the parameter reduction's chunk sums */
    size_t ws_cap[3];  /* floats */
    int use_cublas;
    int wgrad_rows; /* kernel-layer weight gradient by tap rows (1) or per weight (0) */
} cuda_ctx;

static cuda_ctx *CTX(mnnh_backend *be) { return (cuda_ctx *)be->ctx; }

/* Scratch buffer k with room for `floats` floats; grows (never in steady state). */
static mnnh_status ws_get(mnnh_backend *be, int k, size_t floats, float **out) {
    cuda_ctx *c = CTX(be);
    if (floats > c->ws_cap[k]) {
        if (c->ws[k]) {
            CUDA_CHECK(cudaStreamSynchronize(c->stream));
            CUDA_CHECK(cudaFree(c->ws[k]));
            c->ws[k] = NULL;
            c->ws_cap[k] = 0;
        }
        CUDA_CHECK(cudaMalloc((void **)&c->ws[k], floats * sizeof(float)));
        c->ws_cap[k] = floats;
    }
    *out = c->ws[k];
    return MNNH_OK;
}

/* ------------------------------------------------------------ geometry */

typedef long long ll;

/* mnnh_geom plus its derived sizes, passed to kernels by value. */
typedef struct {
    int dim, n, cin, cout, s, nb, local, relu;
    int w;  /* taps per axis */
    int ns; /* grid points per axis, n * s */
    ll P, S, T, G;
} dgeom;

static dgeom make_dgeom(const mnnh_geom *g) {
    dgeom d;
    d.dim = g->dim;
    d.n = g->n;
    d.cin = g->cin;
    d.cout = g->cout;
    d.s = g->s;
    d.nb = g->nb;
    d.local = g->local;
    d.relu = g->relu;
    d.w = 2 * g->nb + 1;
    d.ns = g->n * g->s;
    d.P = (ll)mnnh_geom_positions(g);
    d.S = (ll)mnnh_geom_block(g);
    d.T = (ll)mnnh_geom_taps(g);
    d.G = (ll)mnnh_geom_grid(g);
    return d;
}

/* x mod n in [0, n). A compare and an add or a subtract when x is within one
 * period of [0, n), the usual case (a tap window no wider than the grid); an
 * integer modulo, which costs some twenty instructions, only otherwise. */
__device__ __forceinline__ int wrapi(int x, int n) {
    if (x < 0) {
        x += n;
        if (x >= 0) return x;
    } else if (x >= n) {
        x -= n;
        if (x < n) return x;
    } else {
        return x;
    }
    int r = x % n;
    return r < 0 ? r + n : r;
}

/* Fine-grid index of block offset j inside the block of position i. Within
 * one sample every index is below G < 2^31, so the arithmetic is 32-bit. */
__device__ __forceinline__ int grid_index(const dgeom &g, int i, int j) {
    if (g.dim == 1) return i * g.s + j;
    int i1 = i / g.n, i2 = i % g.n, j1 = j / g.s, j2 = j % g.s;
    return (i1 * g.s + j1) * g.ns + i2 * g.s + j2;
}

/* Inverse of grid_index: grid point x -> (position i, block offset j). */
__device__ __forceinline__ void grid_split(const dgeom &g, int x, ll *i, ll *j) {
    if (g.dim == 1) {
        *i = x / g.s;
        *j = x % g.s;
        return;
    }
    int x1 = x / g.ns, x2 = x % g.ns;
    *i = (x1 / g.s) * g.n + x2 / g.s;
    *j = (x1 % g.s) * g.s + x2 % g.s;
}

/* Position read by tap t of the kernel centred at position i (periodic). */
__device__ __forceinline__ int tap_source(const dgeom &g, int i, int t) {
    if (g.dim == 1) return wrapi(i + t - g.nb, g.n);
    int i1 = i / g.n, i2 = i % g.n, t1 = t / g.w, t2 = t % g.w;
    return wrapi(i1 + t1 - g.nb, g.n) * g.n + wrapi(i2 + t2 - g.nb, g.n);
}

/* Batch index and position of reduction term r of a parameter at position p
 * (lc: the parameter belongs to position p and terms run over the batch;
 * cnn: terms run over batch x positions). */
__device__ __forceinline__ void term_bi(const dgeom &g, ll p, int r, ll *b, int *i) {
    if (g.local) {
        *b = r;
        *i = (int)p;
    } else { /* 32-bit: a 64-bit division costs several times more on a GPU */
        *b = r / (int)g.P;
        *i = r % (int)g.P;
    }
}

#define GRID_LOOP(idx, total)                                                      \
    for (ll idx = (ll)blockIdx.x * blockDim.x + threadIdx.x; idx < (total);        \
         idx += (ll)blockDim.x * gridDim.x)

/* The same with index type I: int when the whole output fits (the host's
 * choice, LAUNCH_I), so that the per-element divisions are 32-bit, which on a
 * GPU cost several times less than 64-bit ones. */
#define GRID_LOOP_I(I, idx, total)                                                 \
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < (total);          \
         idx += (I)blockDim.x * gridDim.x)

#ifdef MNNH_CUDA_EMULATE
enum { THREADS = 256, MAX_BLOCKS = 1 << 20, RED_THREADS = 1 };
#define KLAUNCH(kernel, nblocks, nthreads, stream, ...) \
    emu_launch((nblocks), (nthreads), [&]() { kernel(__VA_ARGS__); })
#else
/* RED_THREADS: block size of the per-sample reductions (a power of two) */
enum { THREADS = 256, MAX_BLOCKS = 1 << 20, RED_THREADS = 256 };
#define KLAUNCH(kernel, nblocks, nthreads, stream, ...) \
    kernel<<<(nblocks), (nthreads), 0, (stream)>>>(__VA_ARGS__)
#endif

static unsigned blocks_for(ll threads_needed) {
    ll b = (threads_needed + THREADS - 1) / THREADS;
    if (b > MAX_BLOCKS) b = MAX_BLOCKS;
    return (unsigned)(b < 1 ? 1 : b);
}

/* ------------------------------------------------------------ deterministic parameter reduction */

/* grad[q] += sum_{r < R} f(q, r) for q < nparam, deterministically.
 *
 * The R terms of a parameter are cut into chunks of PARAM_CHUNK (the last one
 * shorter). One warp sums one chunk: lane l takes the chunk's terms l, l+32,
 * ... in order, then a fixed shuffle tree; a second kernel adds a parameter's
 * chunk sums in chunk order. The order of every addition depends only on R,
 * not on the grid or on scheduling, so repeated steps are bit-identical.
 * One warp per parameter (the first version) did not scale with the batch:
 * a KS 2D cnn kernel layer has 2304-4900 weights, fewer than an H200's
 * 132 x 64 warp slots, each warp summing B x P terms, and the training step
 * ran at 4.3-4.7k samples/s at every batch (docs/gpu.md). With chunks the
 * warps grow with the batch.
 * R < 2^31 (the host checks), so term indices are 32-bit. */
enum { PARAM_CHUNK = 1024 };

/* Work item w of a chunked reduction: item (a parameter, or a tap row)
 * w / nchunk, its chunk c = w % nchunk, whose terms are r0 <= r < r1. */
struct Chunk {
    ll item;
    int c, r0, r1;
};
__device__ __forceinline__ Chunk chunk_of(ll w, int nchunk, int R) {
    Chunk k;
    k.item = w / nchunk;
    k.c = (int)(w - k.item * nchunk);
    k.r0 = k.c * (int)PARAM_CHUNK;
    k.r1 = R - k.r0 < (int)PARAM_CHUNK ? R : k.r0 + (int)PARAM_CHUNK;
    return k;
}
#ifndef MNNH_CUDA_EMULATE
/* This thread's warp, the number of warps in the grid, and its lane. */
__device__ __forceinline__ void warp_grid(ll *warp, ll *nwarps, int *lane) {
    *warp = ((ll)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    *nwarps = ((ll)gridDim.x * blockDim.x) >> 5;
    *lane = threadIdx.x & 31;
}

/* The warp's sum of a in lane 0, by a fixed shuffle-down tree. */
__device__ __forceinline__ float warp_sum(float a) {
    for (int off = 16; off > 0; off >>= 1) a += __shfl_down_sync(0xffffffffu, a, off);
    return a;
}

template <class F>
__global__ void k_param_partials(F f, ll nparam, int R, int nchunk, float *part, float *grad) {
    ll warp, nwarps;
    int lane;
    warp_grid(&warp, &nwarps, &lane);
    for (ll w = warp; w < nparam * nchunk; w += nwarps) { /* uniform across the warp */
        Chunk k = chunk_of(w, nchunk, R);
        float acc = 0.0f;
        for (int r = k.r0 + lane; r < k.r1; r += 32) acc += f(k.item, r);
        acc = warp_sum(acc);
        if (lane == 0) {
            if (nchunk == 1) grad[k.item] += acc;
            else part[w] = acc;
        }
    }
}
enum { PARAM_THREADS_PER_ITEM = 32 };
#else
/* the same arithmetic, serially: lane partials, then the shuffle-down tree
 * (a lane whose source is out of range reads its own value) */
static float emu_warp_sum(const float *lanes) {
    float a[32], next[32];
    memcpy(a, lanes, sizeof a);
    for (int off = 16; off > 0; off >>= 1) {
        for (int l = 0; l < 32; l++) next[l] = a[l] + (l + off < 32 ? a[l + off] : a[l]);
        memcpy(a, next, sizeof a);
    }
    return a[0];
}

template <class F>
__global__ void k_param_partials(F f, ll nparam, int R, int nchunk, float *part, float *grad) {
    GRID_LOOP(w, nparam * nchunk) {
        Chunk k = chunk_of(w, nchunk, R);
        float lane[32];
        for (int l = 0; l < 32; l++) {
            lane[l] = 0.0f;
            for (int r = k.r0 + l; r < k.r1; r += 32) lane[l] += f(k.item, r);
        }
        float sum = emu_warp_sum(lane);
        if (nchunk == 1) grad[k.item] += sum;
        else part[w] = sum;
    }
}
enum { PARAM_THREADS_PER_ITEM = 1 };
#endif

/* grad[q] += the chunk sums of q, in chunk order. */
__global__ void k_param_chunks_add(ll nparam, int nchunk, const float *part, float *grad) {
    GRID_LOOP(q, nparam) {
        const float *pq = part + q * nchunk;
        float acc = 0.0f;
        for (int c = 0; c < nchunk; c++) acc += pq[c];
        grad[q] += acc;
    }
}

/* Terms per parameter and parameter blocks of a layer (lc: one per position). */
static ll reduce_len(const dgeom &g, int B) { return g.local ? (ll)B : (ll)B * g.P; }
static ll prefix(const dgeom &g) { return g.local ? g.P : 1; }

/* The chunking of a reduction of R terms per parameter: nchunk chunks, and
 * (nchunk > 1) room for nparam x nchunk chunk sums. */
static mnnh_status reduce_chunks(mnnh_backend *be, ll nparam, ll R, int *nchunk, float **part) {
    if (R > INT_MAX - PARAM_CHUNK)
        return mnnh_error_set(MNNH_ERR_ARG, "cuda backend: %lld reduction terms per parameter (batch x "
                         "positions) exceed the 32-bit term index; use a smaller batch", R);
    *nchunk = R > PARAM_CHUNK ? (int)((R + PARAM_CHUNK - 1) / PARAM_CHUNK) : 1;
    *part = NULL;
    if (*nchunk > 1) MNNH_TRY(ws_get(be, 2, (size_t)(nparam * *nchunk), part));
    return MNNH_OK;
}

/* After the partials: grad += the chunk sums (nothing to do with one chunk,
 * whose warp added to grad itself). */
static mnnh_status reduce_finish(mnnh_backend *be, ll nparam, int nchunk, const float *part,
                                 float *grad) {
    if (nchunk == 1) return MNNH_OK;
    KLAUNCH(k_param_chunks_add, blocks_for(nparam), THREADS, CTX(be)->stream, nparam, nchunk, part,
            grad);
    LAUNCH_CHECK("param_reduce (chunk sums)");
    return MNNH_OK;
}

template <class F>
static mnnh_status param_reduce(mnnh_backend *be, F f, ll nparam, ll R, float *grad) {
    if (nparam <= 0) return MNNH_OK;
    int nchunk = 1;
    float *part = NULL;
    MNNH_TRY(reduce_chunks(be, nparam, R, &nchunk, &part));
    KLAUNCH(k_param_partials<F>, blocks_for(nparam * nchunk * PARAM_THREADS_PER_ITEM), THREADS,
            CTX(be)->stream, f, nparam, (int)R, nchunk, part, grad);
    LAUNCH_CHECK("param_reduce");
    return reduce_finish(be, nparam, nchunk, part, grad);
}

/* Bias of a layer whose output gradient is d[B][cout][P]: db[P?][cout]. */
struct BiasTerm {
    dgeom g;
    const float *d;
    __device__ float operator()(ll q, int r) const {
        ll p = g.local ? q / g.cout : 0;
        int c = (int)(g.local ? q % g.cout : q);
        ll b;
        int i;
        term_bi(g, p, r, &b, &i);
        return d[(b * g.cout + c) * g.P + i];
    }
};

/* Kernel layer weight W[P?][cout][cin][T]. */
struct KernelWTerm {
    dgeom g;
    const float *in, *d;
    __device__ float operator()(ll q, int r) const {
        ll per = (ll)g.cout * g.cin * g.T;
        ll p = g.local ? q / per : 0, rem = g.local ? q % per : q;
        int co = (int)(rem / ((ll)g.cin * g.T));
        int ci = (int)((rem / g.T) % g.cin);
        int t = (int)(rem % g.T);
        ll b;
        int i;
        term_bi(g, p, r, &b, &i);
        return d[(b * g.cout + co) * g.P + i] * in[(b * g.cin + ci) * g.P + tap_source(g, i, t)];
    }
};

/* Kernel-layer weight gradient, one tap row at a time. The w weights
 * W[p?][co][ci][t1][0..w-1] of a row share their output gradient d and the
 * batch / position arithmetic of every term, so one warp sums the row's w
 * parameters together (w accumulators per lane; w <= WROW_MAX). Each
 * parameter's terms are added in k_param_partials's order (lane l: the
 * chunk's terms l, l+32, ...; then the same shuffle tree), so the result has
 * the same bits as param_reduce(KernelWTerm), with about w times less index
 * arithmetic and w times fewer loads of d. In the host emulation, which runs
 * the same code serially, KernelWTerm's reduction took 59 % of a KS 2D cnn
 * training step (session 10). Item = (row, chunk); a row is
 * ((p * cout + co) * cin + ci) * rows + t1, rows = w (2D) or 1 (1D). */
enum { WROW_MAX = 8 };
#ifdef __CUDACC__
#define UNROLL _Pragma("unroll")
#define NO_UNROLL _Pragma("unroll 1")
#else
#define UNROLL
#define NO_UNROLL
#endif

struct WRowItem {
    ll p;
    int co, ci, t1;
};
__device__ __forceinline__ WRowItem wrow_item(const dgeom &g, ll row) {
    int rows = g.dim == 1 ? 1 : g.w;
    WRowItem it;
    it.t1 = (int)(row % rows);
    ll rest = row / rows;
    it.ci = (int)(rest % g.cin);
    rest /= g.cin;
    it.co = (int)(rest % g.cout);
    it.p = rest / g.cout;
    return it;
}

/* acc[t2] += d x in[b][ci][tap (t1, t2) of position i] for term r (t2 < w). */
__device__ __forceinline__ void wrow_term(const dgeom &g, const WRowItem &it, int r,
                                          const float *in, const float *d, float *acc) {
    ll b;
    int i;
    term_bi(g, it.p, r, &b, &i);
    float dv = d[(b * g.cout + it.co) * g.P + i];
    const float *x = in + (b * g.cin + it.ci) * g.P;
    int col = i;
    if (g.dim == 2) {
        int i1 = i / g.n;
        col = i - i1 * g.n;
        x += wrapi(i1 + it.t1 - g.nb, g.n) * g.n;
    }
    UNROLL
    for (int t2 = 0; t2 < WROW_MAX; t2++)
        if (t2 < g.w) acc[t2] += dv * x[wrapi(col + t2 - g.nb, g.n)];
}

#ifndef MNNH_CUDA_EMULATE
__global__ void k_kernel_wgrad_rows(dgeom g, const float *in, const float *d, ll nrows, int R,
                                    int nchunk, float *part, float *grad) {
    ll warp, nwarps;
    int lane;
    warp_grid(&warp, &nwarps, &lane);
    for (ll w = warp; w < nrows * nchunk; w += nwarps) { /* uniform across the warp */
        Chunk k = chunk_of(w, nchunk, R);
        WRowItem it = wrow_item(g, k.item);
        float acc[WROW_MAX];
        UNROLL
        for (int t2 = 0; t2 < WROW_MAX; t2++) acc[t2] = 0.0f;
        for (int r = k.r0 + lane; r < k.r1; r += 32) wrow_term(g, it, r, in, d, acc);
        UNROLL
        for (int t2 = 0; t2 < WROW_MAX; t2++) {
            if (t2 >= g.w) break;
            float a = warp_sum(acc[t2]);
            ll q = k.item * g.w + t2;
            if (lane == 0) {
                if (nchunk == 1) grad[q] += a;
                else part[q * nchunk + k.c] = a;
            }
        }
    }
}
#else
__global__ void k_kernel_wgrad_rows(dgeom g, const float *in, const float *d, ll nrows, int R,
                                    int nchunk, float *part, float *grad) {
    GRID_LOOP(w, nrows * nchunk) {
        Chunk k = chunk_of(w, nchunk, R);
        WRowItem it = wrow_item(g, k.item);
        float lane[32][WROW_MAX] = {{0.0f}};
        for (int l = 0; l < 32; l++)
            for (int r = k.r0 + l; r < k.r1; r += 32) wrow_term(g, it, r, in, d, lane[l]);
        for (int t2 = 0; t2 < g.w; t2++) {
            float a[32];
            for (int l = 0; l < 32; l++) a[l] = lane[l][t2];
            float sum = emu_warp_sum(a);
            ll q = k.item * g.w + t2;
            if (nchunk == 1) grad[q] += sum;
            else part[q * nchunk + k.c] = sum;
        }
    }
}
#endif

/* dW += the kernel layer's weight gradient: by tap rows when w <= WROW_MAX
 * (every model here: w = 3, 5, 7), else one parameter per warp. */
static mnnh_status kernel_wgrad(mnnh_backend *be, const dgeom &g, int B, const float *in,
                                const float *d, float *dW) {
    ll nparam = prefix(g) * g.cout * g.cin * g.T;
    if (g.w > WROW_MAX || !CTX(be)->wgrad_rows) {
        KernelWTerm fw = {g, in, d};
        return param_reduce(be, fw, nparam, reduce_len(g, B), dW);
    }
    int nchunk = 1;
    float *part = NULL;
    MNNH_TRY(reduce_chunks(be, nparam, reduce_len(g, B), &nchunk, &part));
    ll nrows = nparam / g.w;
    KLAUNCH(k_kernel_wgrad_rows, blocks_for(nrows * nchunk * PARAM_THREADS_PER_ITEM), THREADS,
            CTX(be)->stream, g, in, d, nrows, (int)reduce_len(g, B), nchunk, part, dW);
    LAUNCH_CHECK("kernel_wgrad_rows");
    return reduce_finish(be, nparam, nchunk, part, dW);
}

/* Restriction weight W[P?][cout][S]. */
struct RestrictWTerm {
    dgeom g;
    const float *v, *d;
    __device__ float operator()(ll q, int r) const {
        ll per = (ll)g.cout * g.S;
        ll p = g.local ? q / per : 0, rem = g.local ? q % per : q;
        int c = (int)(rem / g.S);
        ll j = rem % g.S;
        ll b;
        int i;
        term_bi(g, p, r, &b, &i);
        return d[(b * g.cout + c) * g.P + i] * v[b * g.G + grid_index(g, i, j)];
    }
};

/* Interpolation weight W[P?][S][cin]. */
struct InterpWTerm {
    dgeom g;
    const float *z, *du;
    __device__ float operator()(ll q, int r) const {
        ll per = g.S * g.cin;
        ll p = g.local ? q / per : 0, rem = g.local ? q % per : q;
        ll j = rem / g.cin;
        int c = (int)(rem % g.cin);
        ll b;
        int i;
        term_bi(g, p, r, &b, &i);
        return du[b * g.G + grid_index(g, i, j)] * z[(b * g.cin + c) * g.P + i];
    }
};

/* Interpolation bias b[P?][S]. */
struct InterpBTerm {
    dgeom g;
    const float *du;
    __device__ float operator()(ll q, int r) const {
        ll p = g.local ? q / g.S : 0, j = g.local ? q % g.S : q;
        ll b;
        int i;
        term_bi(g, p, r, &b, &i);
        return du[b * g.G + grid_index(g, i, j)];
    }
};


/* ------------------------------------------------------------ layer kernels */

template <class I>
__global__ void k_restrict_fwd(dgeom g, I total, const float *v, const float *W,
                               const float *bias, float *out) {
    GRID_LOOP_I(I, idx, total) {
        int i = (int)(idx % (I)g.P);
        I bc = idx / (I)g.P;
        int c = (int)(bc % g.cout);
        ll b = bc / g.cout;
        const float *wt = W + (g.local ? (ll)i * g.cout * g.S : 0) + (ll)c * g.S;
        const float *vb = v + b * g.G;
        float acc = bias[(g.local ? (ll)i * g.cout : 0) + c];
        for (ll j = 0; j < g.S; j++) acc += wt[j] * vb[grid_index(g, i, j)];
        out[idx] = acc;
    }
}

/* dv[b][x] = sum_c dout[b][c][i] W[i?][c][j] for the (i, j) of grid point x. */
template <class I>
__global__ void k_restrict_bwd_v(dgeom g, I total, const float *W, const float *dout,
                                 float *dv) {
    GRID_LOOP_I(I, idx, total) {
        ll b = idx / (I)g.G, i, j;
        int x = (int)(idx % (I)g.G);
        grid_split(g, x, &i, &j);
        const float *wt = W + (g.local ? i * g.cout * g.S : 0) + j;
        const float *d = dout + b * g.cout * g.P + i;
        float acc = 0.0f;
        for (int c = 0; c < g.cout; c++) acc += d[(ll)c * g.P] * wt[(ll)c * g.S];
        dv[idx] = acc;
    }
}

/* acc + sum over ci, t of W x for the output at position i, when w <= WROW_MAX:
 * the wrapped columns of the window are computed once, not once per input
 * channel and row, and the loop over a row's taps is unrolled. The additions are in the
 * order of the general loops below (ci, t1, t2). */
__device__ __forceinline__ float kernel_fwd_taps(const dgeom &g, int i, const float *inb,
                                                 const float *wt, float acc) {
    int i1 = g.dim == 1 ? 0 : i / g.n, i2 = g.dim == 1 ? i : i - i1 * g.n;
    int rows = g.dim == 1 ? 1 : g.w;
    int col[WROW_MAX];
    UNROLL
    for (int t = 0; t < WROW_MAX; t++) col[t] = t < g.w ? wrapi(i2 + t - g.nb, g.n) : 0;
    NO_UNROLL
    for (int ci = 0; ci < g.cin; ci++) {
        const float *x = inb + (ll)ci * g.P;
        const float *wc = wt + (ll)ci * g.T;
        NO_UNROLL
        for (int t1 = 0; t1 < rows; t1++) {
            const float *row = g.dim == 1 ? x : x + wrapi(i1 + t1 - g.nb, g.n) * g.n;
            const float *wr = wc + t1 * g.w;
            UNROLL
            for (int t2 = 0; t2 < WROW_MAX; t2++)
                if (t2 < g.w) acc += wr[t2] * row[col[t2]];
        }
    }
    return acc;
}

template <class I>
__global__ void k_kernel_fwd(dgeom g, I total, const float *in, const float *W,
                             const float *bias, float *out) {
    GRID_LOOP_I(I, idx, total) {
        int i = (int)(idx % (I)g.P);
        I bc = idx / (I)g.P;
        int co = (int)(bc % g.cout);
        ll b = bc / g.cout;
        const float *wt = W + (g.local ? (ll)i * g.cout * g.cin * g.T : 0) + (ll)co * g.cin * g.T;
        const float *inb = in + b * g.cin * g.P;
        float acc = bias[(g.local ? (ll)i * g.cout : 0) + co];
        if (g.w <= WROW_MAX) {
            acc = kernel_fwd_taps(g, i, inb, wt, acc);
        } else if (g.dim == 1) {
            for (int ci = 0; ci < g.cin; ci++) {
                const float *x = inb + (ll)ci * g.P;
                const float *wc = wt + (ll)ci * g.T;
                for (int t = 0; t < g.w; t++) acc += wc[t] * x[wrapi(i + t - g.nb, g.n)];
            }
        } else {
            int i1 = i / g.n, i2 = i % g.n;
            for (int ci = 0; ci < g.cin; ci++) {
                const float *x = inb + (ll)ci * g.P;
                const float *wc = wt + (ll)ci * g.T;
                for (int t1 = 0; t1 < g.w; t1++) {
                    const float *row = x + (ll)wrapi(i1 + t1 - g.nb, g.n) * g.n;
                    const float *wr = wc + t1 * g.w;
                    for (int t2 = 0; t2 < g.w; t2++) acc += wr[t2] * row[wrapi(i2 + t2 - g.nb, g.n)];
                }
            }
        }
        out[idx] = (g.relu && acc < 0.0f) ? 0.0f : acc;
    }
}

/* d = dout where the ReLU passed (out > 0), else 0 (the reference's mask). */
__global__ void k_relu_mask(ll total, const float *out, const float *dout, float *d) {
    GRID_LOOP(idx, total) d[idx] = out[idx] <= 0.0f ? 0.0f : dout[idx];
}

/* din[b][ci][x] = sum_co sum_t d[b][co][i] W[i?][co][ci][t] over the i whose
 * tap t reads x (i = x - (t - nb), periodic): a transposed convolution. */
/* din at input position x of channel ci, cnn, w <= WROW_MAX: the columns
 * whose taps read x are wrapped once, not once per output channel and row,
 * and the loop over a row's taps is unrolled; the additions keep the order
 * (co, t1, t2) of the general loops below. (lc keeps the general loops.) */
__device__ __forceinline__ float kernel_bwd_in_taps(const dgeom &g, int x, int ci,
                                                    const float *db, const float *W) {
    int x1 = g.dim == 1 ? 0 : x / g.n, x2 = g.dim == 1 ? x : x - x1 * g.n;
    int rows = g.dim == 1 ? 1 : g.w;
    int col[WROW_MAX];
    UNROLL
    for (int t = 0; t < WROW_MAX; t++) col[t] = t < g.w ? wrapi(x2 - t + g.nb, g.n) : 0;
    float acc = 0.0f;
    NO_UNROLL
    for (int co = 0; co < g.cout; co++) {
        const float *dc = db + (ll)co * g.P;
        const float *wc = W + ((ll)co * g.cin + ci) * g.T;
        NO_UNROLL
        for (int t1 = 0; t1 < rows; t1++) {
            const float *drow = g.dim == 1 ? dc : dc + wrapi(x1 - t1 + g.nb, g.n) * g.n;
            const float *wr = wc + t1 * g.w;
            UNROLL
            for (int t2 = 0; t2 < WROW_MAX; t2++)
                if (t2 < g.w) acc += drow[col[t2]] * wr[t2];
        }
    }
    return acc;
}

template <class I>
__global__ void k_kernel_bwd_in(dgeom g, I total, const float *W, const float *d, float *din) {
    GRID_LOOP_I(I, idx, total) {
        int x = (int)(idx % (I)g.P);
        I bc = idx / (I)g.P;
        int ci = (int)(bc % g.cin);
        ll b = bc / g.cin;
        const float *db = d + b * g.cout * g.P;
        ll wstride_pos = g.local ? (ll)g.cout * g.cin * g.T : 0;
        if (g.w <= WROW_MAX && !g.local) {
            din[idx] = kernel_bwd_in_taps(g, x, ci, db, W);
            continue;
        }
        float acc = 0.0f;
        for (int co = 0; co < g.cout; co++) {
            const float *dc = db + (ll)co * g.P;
            const float *wc = W + ((ll)co * g.cin + ci) * g.T;
            if (g.dim == 1) {
                for (int t = 0; t < g.w; t++) {
                    int i = wrapi(x - t + g.nb, g.n);
                    acc += dc[i] * wc[i * wstride_pos + t];
                }
            } else {
                int x1 = x / g.n, x2 = x % g.n;
                for (int t1 = 0; t1 < g.w; t1++) {
                    int i1 = wrapi(x1 - t1 + g.nb, g.n);
                    for (int t2 = 0; t2 < g.w; t2++) {
                        int i = i1 * g.n + wrapi(x2 - t2 + g.nb, g.n);
                        acc += dc[i] * wc[i * wstride_pos + t1 * g.w + t2];
                    }
                }
            }
        }
        din[idx] = acc;
    }
}

/* u[b][x] += bias[i?][j] + sum_c W[i?][j][c] z[b][c][i] for the (i, j) of x. */
template <class I>
__global__ void k_interp_fwd(dgeom g, I total, const float *z, const float *W,
                             const float *bias, float *u) {
    GRID_LOOP_I(I, idx, total) {
        ll b = idx / (I)g.G, i, j;
        int x = (int)(idx % (I)g.G);
        grid_split(g, x, &i, &j);
        const float *wt = W + (g.local ? i * g.S * g.cin : 0) + j * g.cin;
        const float *zb = z + b * g.cin * g.P + i;
        float acc = bias[(g.local ? i * g.S : 0) + j];
        for (int c = 0; c < g.cin; c++) acc += wt[c] * zb[(ll)c * g.P];
        u[idx] += acc;
    }
}

/* dz[b][c][i] = sum_j du[b][grid(i, j)] W[i?][j][c]. */
template <class I>
__global__ void k_interp_bwd_z(dgeom g, I total, const float *W, const float *du, float *dz) {
    GRID_LOOP_I(I, idx, total) {
        ll i = idx % (I)g.P, bc = idx / (I)g.P;
        int c = (int)(bc % g.cin);
        ll b = bc / g.cin;
        const float *wt = W + (g.local ? i * g.S * g.cin : 0) + c;
        const float *dub = du + b * g.G;
        float acc = 0.0f;
        for (ll j = 0; j < g.S; j++) acc += dub[grid_index(g, i, j)] * wt[j * g.cin];
        dz[idx] = acc;
    }
}

/* out[b][j][i] = v[b][grid(i, j)] (block reshape). */
template <class I>
__global__ void k_gather(dgeom g, I total, const float *v, float *out) {
    GRID_LOOP_I(I, idx, total) {
        I bj = idx / (I)g.P;
        ll i = idx % (I)g.P, j = bj % (I)g.S, b = bj / (I)g.S;
        out[idx] = v[b * g.G + grid_index(g, i, j)];
    }
}

/* u[b][x] += in[b][j][i] + (bias ? bias[j] : 0) for the (i, j) of x. */
template <class I>
__global__ void k_scatter_add(dgeom g, I total, const float *in, const float *bias, float *u) {
    GRID_LOOP_I(I, idx, total) {
        ll b = idx / (I)g.G, i, j;
        int x = (int)(idx % (I)g.G);
        grid_split(g, x, &i, &j);
        float y = in[(b * g.S + j) * g.P + i];
        if (bias) y += bias[j];
        u[idx] += y;
    }
}

/* out[b][c][i] = bias[c] (cnn: the GEMM then accumulates with beta = 1). */
template <class I>
__global__ void k_fill_bias(I total, I P, int C, const float *bias, float *out) {
    GRID_LOOP_I(I, idx, total) out[idx] = bias[(idx / P) % C];
}

/* ------------------------------------------------------------ layer ops */

#define LAUNCH(kernel, total, ...)                                                   \
    do {                                                                             \
        ll total_ = (total);                                                         \
        if (total_ > 0) {                                                            \
            KLAUNCH(kernel, blocks_for(total_), THREADS, CTX(be)->stream, __VA_ARGS__); \
            LAUNCH_CHECK(#kernel);                                                   \
        }                                                                            \
    } while (0)

/* LAUNCH of kernel<int> when total fits an int, else kernel<ll>; the kernel's
 * arguments are (g, total, ...). */
#define LAUNCH_I(kernel, total, g, ...)                                              \
    do {                                                                             \
        ll ti_ = (total);                                                            \
        if (ti_ <= INT_MAX) LAUNCH(kernel<int>, ti_, g, (int)ti_, __VA_ARGS__);      \
        else LAUNCH(kernel<ll>, ti_, g, ti_, __VA_ARGS__);                           \
    } while (0)

/* C[b] = A[b] * Bm (column-major view, Bm shared across the batch):
 * m x n result with k inner, all row-major arrays read as their transposes. */
static mnnh_status sgemm_batched(mnnh_backend *be, int m, int n, int k, const float *A, int lda,
                                 ll strideA, const float *Bm, int ldb, float beta, float *C,
                                 int ldc, ll strideC, int batch) {
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSgemmStridedBatched(CTX(be)->blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one,
                                           A, lda, strideA, Bm, ldb, 0, &beta, C, ldc, strideC,
                                           batch));
    return MNNH_OK;
}

static mnnh_status cu_restrict_fwd(mnnh_backend *be, const mnnh_geom *geom, int B,
                                   const float *v, const float *W, const float *b, float *out) {
    dgeom g = make_dgeom(geom);
    ll total = (ll)B * g.cout * g.P;
    if (!g.local && CTX(be)->use_cublas) {
        /* blocks[b][j][i] = v[b][grid(i,j)]; out_b = W (cout x S) . blocks_b (S x P),
         * i.e. out_b^T (P x cout) = blocks_b^T (P x S) . W^T (S x cout) column-major */
        float *blocks;
        MNNH_TRY(ws_get(be, 0, (size_t)B * g.S * g.P, &blocks));
        LAUNCH_I(k_gather, (ll)B * g.S * g.P, g, v, blocks);
        if (total <= INT_MAX) LAUNCH(k_fill_bias<int>, total, (int)total, (int)g.P, g.cout, b, out);
        else LAUNCH(k_fill_bias<ll>, total, total, g.P, g.cout, b, out);
        return sgemm_batched(be, (int)g.P, g.cout, (int)g.S, blocks, (int)g.P, g.S * g.P, W,
                             (int)g.S, 1.0f, out, (int)g.P, (ll)g.cout * g.P, B);
    }
    LAUNCH_I(k_restrict_fwd, total, g, v, W, b, out);
    return MNNH_OK;
}

static mnnh_status cu_restrict_bwd(mnnh_backend *be, const mnnh_geom *geom, int B,
                                   const float *v, const float *W, const float *dout, float *dv,
                                   float *dW, float *db) {
    dgeom g = make_dgeom(geom);
    if (dv) LAUNCH_I(k_restrict_bwd_v, (ll)B * g.G, g, W, dout, dv);
    RestrictWTerm fw = {g, v, dout};
    MNNH_TRY(param_reduce(be, fw, prefix(g) * g.cout * g.S, reduce_len(g, B), dW));
    BiasTerm fb = {g, dout};
    return param_reduce(be, fb, prefix(g) * g.cout, reduce_len(g, B), db);
}

static mnnh_status cu_kernel_fwd(mnnh_backend *be, const mnnh_geom *geom, int B, const float *in,
                                 const float *W, const float *b, float *out) {
    dgeom g = make_dgeom(geom);
    ll total = (ll)B * g.cout * g.P;
    LAUNCH_I(k_kernel_fwd, total, g, in, W, b, out);
    return MNNH_OK;
}

static mnnh_status cu_kernel_bwd(mnnh_backend *be, const mnnh_geom *geom, int B, const float *in,
                                 const float *W, const float *out, const float *dout, float *din,
                                 float *dW, float *db) {
    dgeom g = make_dgeom(geom);
    ll nout = (ll)B * g.cout * g.P;
    const float *d = dout;
    if (g.relu) {
        float *masked;
        MNNH_TRY(ws_get(be, 1, (size_t)nout, &masked));
        LAUNCH(k_relu_mask, nout, nout, out, dout, masked);
        d = masked;
    }
    if (din) LAUNCH_I(k_kernel_bwd_in, (ll)B * g.cin * g.P, g, W, d, din);
    MNNH_TRY(kernel_wgrad(be, g, B, in, d, dW));
    BiasTerm fb = {g, d};
    return param_reduce(be, fb, prefix(g) * g.cout, reduce_len(g, B), db);
}

static mnnh_status cu_interp_fwd(mnnh_backend *be, const mnnh_geom *geom, int B, const float *z,
                                 const float *W, const float *b, float *u) {
    dgeom g = make_dgeom(geom);
    ll total = (ll)B * g.G;
    if (!g.local && CTX(be)->use_cublas) {
        /* y_b = W (S x cin) . z_b (cin x P): y_b^T (P x S) = z_b^T (P x cin) . W^T (cin x S) */
        float *y;
        MNNH_TRY(ws_get(be, 0, (size_t)B * g.S * g.P, &y));
        MNNH_TRY(sgemm_batched(be, (int)g.P, (int)g.S, g.cin, z, (int)g.P, (ll)g.cin * g.P, W,
                               g.cin, 0.0f, y, (int)g.P, g.S * g.P, B));
        LAUNCH_I(k_scatter_add, total, g, y, b, u);
        return MNNH_OK;
    }
    LAUNCH_I(k_interp_fwd, total, g, z, W, b, u);
    return MNNH_OK;
}

static mnnh_status cu_interp_bwd(mnnh_backend *be, const mnnh_geom *geom, int B, const float *z,
                                 const float *W, const float *du, float *dz, float *dW,
                                 float *db) {
    dgeom g = make_dgeom(geom);
    if (dz) LAUNCH_I(k_interp_bwd_z, (ll)B * g.cin * g.P, g, W, du, dz);
    InterpWTerm fw = {g, z, du};
    MNNH_TRY(param_reduce(be, fw, prefix(g) * g.S * g.cin, reduce_len(g, B), dW));
    InterpBTerm fb = {g, du};
    return param_reduce(be, fb, prefix(g) * g.S, reduce_len(g, B), db);
}

static mnnh_status cu_gather(mnnh_backend *be, const mnnh_geom *geom, int B, const float *v,
                             float *out) {
    dgeom g = make_dgeom(geom);
    LAUNCH_I(k_gather, (ll)B * g.S * g.P, g, v, out);
    return MNNH_OK;
}

static mnnh_status cu_scatter_add(mnnh_backend *be, const mnnh_geom *geom, int B, const float *in,
                                  float *u) {
    dgeom g = make_dgeom(geom);
    LAUNCH_I(k_scatter_add, (ll)B * g.G, g, in, (const float *)NULL, u);
    return MNNH_OK;
}

/* ------------------------------------------------------------ element ops and reductions */

__global__ void k_affine(ll n, const float *x, float scale, float shift, float *y) {
    GRID_LOOP(i, n) y[i] = __fadd_rn(__fmul_rn(x[i], scale), shift);
}

/* Sum of v over the block (blockDim.x == RED_THREADS, a power of two), in a fixed
 * order; every thread gets the result. */
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* One block per sample. */
__global__ void k_density_fwd(ll len, const float *y, float ne, float cell_volume, float *rho,
                              float *sums) {
    __shared__ double sh[RED_THREADS];
    ll b = blockIdx.x;
    const float *yb = y + b * len;
    double s = 0;
    for (ll i = threadIdx.x; i < len; i += blockDim.x) s += yb[i] > 0 ? yb[i] : 0;
    s = block_sum(s, sh);
    if (threadIdx.x == 0) sums[b] = (float)s;
    float k = s > 0 ? (float)(ne / (cell_volume * s)) : 0.0f;
    for (ll i = threadIdx.x; i < len; i += blockDim.x) {
        float yi = yb[i];
        rho[b * len + i] = yi > 0 ? __fmul_rn(yi, k) : 0.0f;
    }
}

__global__ void k_density_bwd(ll len, const float *y, const float *sums, float ne,
                              float cell_volume, const float *drho, float *dy) {
    __shared__ double sh[RED_THREADS];
    ll b = blockIdx.x;
    const float *yb = y + b * len, *db = drho + b * len;
    float *dyb = dy + b * len;
    double S = sums[b];
    if (!(S > 0)) { /* uniform across the block */
        for (ll i = threadIdx.x; i < len; i += blockDim.x) dyb[i] = 0.0f;
        return;
    }
    double dot = 0;
    for (ll i = threadIdx.x; i < len; i += blockDim.x)
        dot += yb[i] > 0 ? (double)db[i] * yb[i] : 0;
    dot = block_sum(dot, sh);
    double k = ne / (cell_volume * S);
    for (ll i = threadIdx.x; i < len; i += blockDim.x)
        dyb[i] = yb[i] > 0 ? (float)(k * (db[i] - dot / S)) : 0.0f;
}

__global__ void k_relerr(ll len, const float *pred, const float *target, float *err2,
                         float *dpred, float grad_scale) {
    __shared__ double sh[RED_THREADS];
    ll b = blockIdx.x;
    const float *p = pred + b * len, *t = target + b * len;
    double num = 0, den = 0;
    for (ll i = threadIdx.x; i < len; i += blockDim.x) {
        double d = (double)p[i] - t[i];
        num += d * d;
        den += (double)t[i] * t[i];
    }
    num = block_sum(num, sh);
    den = block_sum(den, sh);
    if (den < DBL_MIN) den = DBL_MIN;
    if (threadIdx.x == 0) err2[b] = (float)(num / den);
    if (dpred) {
        double k = 2.0 * grad_scale / den;
        for (ll i = threadIdx.x; i < len; i += blockDim.x)
            dpred[b * len + i] = (float)(k * ((double)p[i] - t[i]));
    }
}

/* The reference's float operations, each rounded as in C (no FMA contraction). */
__global__ void k_nadam(ll n, float *p, const float *g, float *m, float *v, float beta1,
                        float beta2, float c_grad, float c_mom, float bias2, float eps) {
    GRID_LOOP(i, n) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(__fsub_rn(1.0f, beta1), gi));
        float vi = __fadd_rn(__fmul_rn(beta2, v[i]),
                             __fmul_rn(__fmul_rn(__fsub_rn(1.0f, beta2), gi), gi));
        float d = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, bias2)), eps);
        float pi = p[i];
        pi = __fsub_rn(pi, __fmul_rn(c_grad, __fdiv_rn(gi, d)));
        pi = __fsub_rn(pi, __fmul_rn(c_mom, __fdiv_rn(mi, d)));
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }
}

static mnnh_status cu_affine(mnnh_backend *be, size_t n, const float *x, float scale, float shift,
                             float *y) {
    LAUNCH(k_affine, (ll)n, (ll)n, x, scale, shift, y);
    return MNNH_OK;
}

static mnnh_status cu_density_fwd(mnnh_backend *be, int B, size_t len, const float *y, float ne,
                                  float cell_volume, float *rho, float *sums) {
    if (B <= 0) return MNNH_OK;
    KLAUNCH(k_density_fwd, B, RED_THREADS, CTX(be)->stream, (ll)len, y, ne, cell_volume, rho, sums);
    LAUNCH_CHECK("k_density_fwd");
    return MNNH_OK;
}

static mnnh_status cu_density_bwd(mnnh_backend *be, int B, size_t len, const float *y,
                                  const float *rho, const float *sums, float ne,
                                  float cell_volume, const float *drho, float *dy) {
    (void)rho;
    if (B <= 0) return MNNH_OK;
    KLAUNCH(k_density_bwd, B, RED_THREADS, CTX(be)->stream, (ll)len, y, sums, ne, cell_volume, drho,
            dy);
    LAUNCH_CHECK("k_density_bwd");
    return MNNH_OK;
}

static mnnh_status cu_relerr(mnnh_backend *be, int B, size_t len, const float *pred,
                             const float *target, float *err2, float *dpred, float grad_scale) {
    if (B <= 0) return MNNH_OK;
    KLAUNCH(k_relerr, B, RED_THREADS, CTX(be)->stream, (ll)len, pred, target, err2, dpred, grad_scale);
    LAUNCH_CHECK("k_relerr");
    return MNNH_OK;
}

static mnnh_status cu_nadam_update(mnnh_backend *be, size_t n, float *p, const float *g, float *m,
                                   float *v, float beta1, float beta2, float c_grad, float c_mom,
                                   float bias2, float eps) {
    LAUNCH(k_nadam, (ll)n, (ll)n, p, g, m, v, beta1, beta2, c_grad, c_mom, bias2, eps);
    return MNNH_OK;
}

/* ------------------------------------------------------------ memory */

static mnnh_status cu_alloc(mnnh_backend *be, void **p, size_t bytes) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        *p = NULL;
        return mnnh_error_set(e == cudaErrorMemoryAllocation ? MNNH_ERR_NOMEM : MNNH_ERR_BACKEND,
                              "cannot allocate %zu bytes on GPU %d: %s", bytes, be->device,
                              cudaGetErrorString(e));
    }
    /* zeroed, like the host backends' buffers */
    CUDA_CHECK(cudaMemsetAsync(*p, 0, bytes, CTX(be)->stream));
    return MNNH_OK;
}

static void cu_release(mnnh_backend *be, void *p) {
    (void)be;
    if (p) cudaFree(p); /* implicitly synchronising: pending work on p completes first */
}

static mnnh_status cu_upload(mnnh_backend *be, void *dst, const void *host, size_t bytes) {
    if (!bytes) return MNNH_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, CTX(be)->stream));
    CUDA_CHECK(cudaStreamSynchronize(CTX(be)->stream)); /* host may reuse its buffer at once */
    return MNNH_OK;
}

static mnnh_status cu_download(mnnh_backend *be, void *host, const void *src, size_t bytes) {
    if (!bytes) return MNNH_OK;
    CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, CTX(be)->stream));
    CUDA_CHECK(cudaStreamSynchronize(CTX(be)->stream));
    return MNNH_OK;
}

static mnnh_status cu_copy(mnnh_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return MNNH_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, CTX(be)->stream));
    return MNNH_OK;
}

static mnnh_status cu_zero(mnnh_backend *be, void *p, size_t bytes) {
    if (!bytes) return MNNH_OK;
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, CTX(be)->stream));
    return MNNH_OK;
}

static mnnh_status cu_sync(mnnh_backend *be) {
    CUDA_CHECK(cudaStreamSynchronize(CTX(be)->stream));
    return MNNH_OK;
}

static mnnh_backend_ops make_ops(void) {
    mnnh_backend_ops o;
    memset(&o, 0, sizeof o);
    o.name = "cuda";
    o.alloc = cu_alloc;
    o.release = cu_release;
    o.upload = cu_upload;
    o.download = cu_download;
    o.copy = cu_copy;
    o.zero = cu_zero;
    o.sync = cu_sync;
    o.restrict_fwd = cu_restrict_fwd;
    o.restrict_bwd = cu_restrict_bwd;
    o.kernel_fwd = cu_kernel_fwd;
    o.kernel_bwd = cu_kernel_bwd;
    o.interp_fwd = cu_interp_fwd;
    o.interp_bwd = cu_interp_bwd;
    o.gather = cu_gather;
    o.scatter_add = cu_scatter_add;
    o.affine = cu_affine;
    o.density_fwd = cu_density_fwd;
    o.density_bwd = cu_density_bwd;
    o.relerr = cu_relerr;
    o.nadam_update = cu_nadam_update;
    return o;
}
static const mnnh_backend_ops cuda_ops = make_ops();

/* ------------------------------------------------------------ devices and lifetime */

static char probe_msg[256] = "CUDA not probed yet";

extern "C" int mnnh_cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        /* no driver, no device, driver too old, ...: not an error, just no GPU */
        snprintf(probe_msg, sizeof probe_msg, "cudaGetDeviceCount: %s (%s)", cudaGetErrorName(e),
                 cudaGetErrorString(e));
        (void)cudaGetLastError();
        return 0;
    }
    if (n < 0) n = 0;
    snprintf(probe_msg, sizeof probe_msg, "%d CUDA device(s) visible", n);
    return n;
}

extern "C" const char *mnnh_cuda_probe_message(void) { return probe_msg; }

extern "C" void mnnh_cuda_device_describe(int device, char *buf, size_t len) {
    if (!buf || !len) return;
    buf[0] = 0;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    snprintf(buf, len, "%s, sm_%d%d, %.0f GiB, %d SMs", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount);
}

extern "C" int mnnh_cuda_set_cublas(mnnh_backend *be, int on) {
    int old = CTX(be)->use_cublas;
    CTX(be)->use_cublas = on ? 1 : 0;
    return old;
}

extern "C" int mnnh_cuda_set_wgrad_rows(mnnh_backend *be, int on) {
    int old = CTX(be)->wgrad_rows;
    CTX(be)->wgrad_rows = on ? 1 : 0;
    return old;
}

static void ctx_destroy(cuda_ctx *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (size_t k = 0; k < sizeof c->ws / sizeof c->ws[0]; k++)
        if (c->ws[k]) cudaFree(c->ws[k]);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static mnnh_status ctx_init(cuda_ctx *c, int device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreate(&c->stream)); /* blocking: ordered with the legacy default stream */
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)); /* FP32, no TF32 */
    const char *env = getenv("MNNH_CUDA_CUBLAS");
    c->use_cublas = !(env && !strcmp(env, "0"));
    env = getenv("MNNH_CUDA_WGRAD_ROWS");
    c->wgrad_rows = !(env && !strcmp(env, "0"));
    return MNNH_OK;
}

extern "C" mnnh_status mnnh_cuda_backend_create(mnnh_backend **out, int device) {
    *out = NULL;
    int count = mnnh_cuda_device_count();
    if (count <= 0)
        return mnnh_error_set(MNNH_ERR_BACKEND, "no CUDA GPU is usable: %s", probe_msg);
    if (device < 0 || device >= count) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        return mnnh_error_set(MNNH_ERR_BACKEND,
                              "CUDA device %d requested but only %d GPU(s) are visible "
                              "(CUDA_VISIBLE_DEVICES=%s)",
                              device, count, vis ? vis : "unset");
    }
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    mnnh_backend *be = (mnnh_backend *)calloc(1, sizeof *be);
    if (!c || !be) {
        free(c);
        free(be);
        return mnnh_error_set(MNNH_ERR_NOMEM, "CUDA backend");
    }
    mnnh_status st = ctx_init(c, device);
    if (st != MNNH_OK) {
        ctx_destroy(c);
        free(be);
        return mnnh_error_prefix(st, "CUDA backend on GPU %d", device);
    }
    be->ops = &cuda_ops;
    be->ctx = c;
    be->device = device;
    be->threads = 1;
    *out = be;
    return MNNH_OK;
}

extern "C" void mnnh_cuda_backend_destroy(mnnh_backend *be) {
    if (!be) return;
    ctx_destroy(CTX(be));
    free(be);
}
