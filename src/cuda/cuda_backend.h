/* cuda_backend.h: the CUDA backend's entry points (private to the core, its
 * tests and benchmarks; everything else goes through backend.h).
 *
 * mnnh_backend_create(&be, "cuda", dev) calls mnnh_cuda_backend_create; the
 * op table it installs has the semantics of layers.h / ops.h, with device
 * buffers. Every kernel is deterministic (no atomics; parameter gradients are
 * reduced by one warp per parameter in a fixed order), so two identical
 * sequences of calls give byte-identical results on the same GPU model. */
#ifndef MNNH_CUDA_BACKEND_H
#define MNNH_CUDA_BACKEND_H

#include <stddef.h>

#include "mnnh/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Backend on GPU ordinal `device` (0 <= device < mnnh_cuda_device_count()). */
mnnh_status mnnh_cuda_backend_create(mnnh_backend **be, int device);
void mnnh_cuda_backend_destroy(mnnh_backend *be);

/* Why mnnh_cuda_device_count() returned what it did, e.g. "2 CUDA device(s)"
 * or "cudaGetDeviceCount: cudaErrorInsufficientDriver (CUDA driver version is
 * insufficient for CUDA runtime version)". Static storage. */
const char *mnnh_cuda_probe_message(void);

/* Name and compute capability of a device into buf ("NVIDIA H100 80GB HBM3,
 * sm_90, 79 GiB"); "" when unavailable. */
void mnnh_cuda_device_describe(int device, char *buf, size_t len);

/* cnn restrict / interp forward through cuBLAS strided-batched SGEMM (1, the
 * default, or the environment variable MNNH_CUDA_CUBLAS=0|1) or through the
 * direct kernels (0). Returns the previous setting. Both paths are tested. */
int mnnh_cuda_set_cublas(mnnh_backend *be, int on);

/* Kernel-layer weight gradients by tap rows, one warp summing a row's w
 * weights (1, the default, or MNNH_CUDA_WGRAD_ROWS=0|1), or one warp per
 * weight (0). Both give the same bits. Returns the previous setting. */
int mnnh_cuda_set_wgrad_rows(mnnh_backend *be, int on);

#ifdef __cplusplus
}
#endif
#endif
