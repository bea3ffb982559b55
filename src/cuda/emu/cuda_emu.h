/* cuda_emu.h: just enough of the CUDA runtime and cuBLAS, on the host, to run
 * cuda_backend.cu's kernels serially (compiled with -DMNNH_CUDA_EMULATE by a
 * host C++ compiler; see run_emulated_tests.sh).
 *
 * What it checks: every kernel's index arithmetic, the op semantics (+= vs =),
 * the cuBLAS column-major argument mapping (SGEMM is a naive loop with the
 * documented semantics), workspace handling and the op table, through the
 * real test_cuda.c. What it cannot check: concurrency (races, barriers, the
 * real warp shuffle), real cuBLAS, launch limits, device memory errors.
 * Never part of the product build (CMake globs only the top of src/cuda). */
#ifndef MNNH_CUDA_EMU_H
#define MNNH_CUDA_EMU_H

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct emu_dim3 {
    unsigned x, y, z;
};
static emu_dim3 blockIdx, threadIdx, blockDim, gridDim;

template <class K>
static void emu_launch(unsigned nblocks, unsigned nthreads, K k) {
    gridDim = {nblocks, 1, 1};
    blockDim = {nthreads, 1, 1};
    for (unsigned b = 0; b < nblocks; b++)
        for (unsigned t = 0; t < nthreads; t++) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            k();
        }
}
static inline void __syncthreads(void) {}

/* IEEE single operations, rounded one by one (compile with -ffp-contract=off) */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }

/* ---- runtime ---- */
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
typedef struct emu_stream *cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
};

static inline const char *cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }
static inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
static inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
static inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
static inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    strcpy(p->name, "host emulation (no GPU)");
    return cudaSuccess;
}
static inline cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = (cudaStream_t)malloc(1); return cudaSuccess; }
static inline cudaError_t cudaStreamDestroy(cudaStream_t s) { free((void *)s); return cudaSuccess; }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaMalloc(void **p, size_t n) {
    /* garbage, like cudaMalloc: the backend must zero what it promises zeroed */
    *p = malloc(n);
    if (*p) memset(*p, 0xA5, n);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(d, s, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    memset(p, v, n);
    return cudaSuccess;
}

/* ---- cuBLAS ---- */
typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0 };
typedef struct emu_blas *cublasHandle_t;
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH } cublasMath_t;
static inline const char *cublasGetStatusString(cublasStatus_t) { return "emulated"; }
static inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (cublasHandle_t)malloc(1); return 0; }
static inline cublasStatus_t cublasDestroy(cublasHandle_t h) { free((void *)h); return 0; }
static inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return 0; }
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return 0; }
/* Column-major C_b = alpha op(A_b) op(B_b) + beta C_b (beta == 0: C not read). */
static inline cublasStatus_t cublasSgemmStridedBatched(
    cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const float *alpha, const float *A, int lda, long long sA, const float *B, int ldb,
    long long sB, const float *beta, float *C, int ldc, long long sC, int batch) {
    if (ta != CUBLAS_OP_N || tb != CUBLAS_OP_N || lda < m || ldb < k || ldc < m) return 7;
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int l = 0; l < k; l++)
                    acc += (double)A[b * sA + i + (long long)l * lda] * B[b * sB + l + (long long)j * ldb];
                float *c = &C[b * sC + i + (long long)j * ldc];
                *c = (float)(*alpha * acc + (*beta != 0.0f ? *beta * *c : 0.0f));
            }
    return 0;
}

#endif
