/* backend.h: the compute backend interface (one op table per backend).
 *
 * The model, loss and optimizer never touch memory or kernels directly: they
 * call through an mnnh_backend, whose buffers live where the backend computes
 * (host memory for "cpu", device memory for "cuda"). Buffers passed to ops
 * are backend buffers; mnnh_backend_upload/download move data to and from the
 * host. Each layer op has the semantics of its reference in layers.h, and the
 * intermediate activation layout is the reference's [B][C][P].
 *
 * Backends: "cpu" (fast CPU kernels, default), "ref" (the plain reference
 * loops), "cuda" (when built with CUDA and a GPU is present). */
#ifndef MNNH_BACKEND_H
#define MNNH_BACKEND_H

#include <stddef.h>

#include "mnnh/error.h"
#include "mnnh/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mnnh_backend mnnh_backend;

typedef struct {
    const char *name;
    /* memory */
    mnnh_status (*alloc)(mnnh_backend *be, void **p, size_t bytes);
    void (*release)(mnnh_backend *be, void *p);
    mnnh_status (*upload)(mnnh_backend *be, void *dst, const void *host, size_t bytes);
    mnnh_status (*download)(mnnh_backend *be, void *host, const void *src, size_t bytes);
    mnnh_status (*copy)(mnnh_backend *be, void *dst, const void *src, size_t bytes);
    mnnh_status (*zero)(mnnh_backend *be, void *p, size_t bytes);
    mnnh_status (*sync)(mnnh_backend *be);
    /* layers (semantics in layers.h) */
    mnnh_status (*restrict_fwd)(mnnh_backend *, const mnnh_geom *, int B, const float *v,
                                const float *W, const float *b, float *out);
    mnnh_status (*restrict_bwd)(mnnh_backend *, const mnnh_geom *, int B, const float *v,
                                const float *W, const float *dout, float *dv, float *dW,
                                float *db);
    mnnh_status (*kernel_fwd)(mnnh_backend *, const mnnh_geom *, int B, const float *in,
                              const float *W, const float *b, float *out);
    mnnh_status (*kernel_bwd)(mnnh_backend *, const mnnh_geom *, int B, const float *in,
                              const float *W, const float *out, const float *dout,
                              float *din, float *dW, float *db);
    mnnh_status (*interp_fwd)(mnnh_backend *, const mnnh_geom *, int B, const float *z,
                              const float *W, const float *b, float *u);
    mnnh_status (*interp_bwd)(mnnh_backend *, const mnnh_geom *, int B, const float *z,
                              const float *W, const float *du, float *dz, float *dW,
                              float *db);
    mnnh_status (*gather)(mnnh_backend *, const mnnh_geom *, int B, const float *v, float *out);
    mnnh_status (*scatter_add)(mnnh_backend *, const mnnh_geom *, int B, const float *in,
                               float *u);
    /* elementwise and reductions (semantics in ops.h) */
    mnnh_status (*affine)(mnnh_backend *, size_t n, const float *x, float scale, float shift,
                          float *y);
    mnnh_status (*density_fwd)(mnnh_backend *, int B, size_t len, const float *y, float ne,
                               float cell_volume, float *rho, float *sums);
    mnnh_status (*density_bwd)(mnnh_backend *, int B, size_t len, const float *y,
                               const float *rho, const float *sums, float ne,
                               float cell_volume, const float *drho, float *dy);
    mnnh_status (*relerr)(mnnh_backend *, int B, size_t len, const float *pred,
                          const float *target, float *err2, float *dpred, float grad_scale);
    mnnh_status (*nadam_update)(mnnh_backend *, size_t n, float *p, const float *g, float *m,
                                float *v, float beta1, float beta2, float c_grad,
                                float c_mom, float bias2, float eps);
    /* ---- optional fused ops: NULL means "not provided" ----
     * They stay NULL after the host backends' reference fill (the "ref" table
     * has none), and the model then calls the ops above in sequence. Keep
     * them at the end of the table.
     *
     * level_fwd: one whole level of the forward, restrict + K kernel layers
     * + interp accumulated into u (u[B][N^d] += level(v)), with exactly the
     * semantics of mnnh_ref_level_fwd (layers.h), i.e. of calling
     * restrict_fwd, kernel_fwd (K times) and interp_fwd in sequence. The
     * intermediate activations are NOT stored anywhere, so the model uses it
     * only for inference (mnnh_model_infer), never before a backward. work0,
     * work1: B * C * P floats each of backend memory the op may clobber (a
     * level it does not fuse runs the per-op sequence in them). Returns
     * MNNH_ERR_ARG when mnnh_level_params_check fails. */
    mnnh_status (*level_fwd)(mnnh_backend *, const mnnh_level_params *lp, int B, const float *v,
                             float *u, float *work0, float *work1);
    /* adjacent_fwd: the adjacent part of the forward, gather + K kernel
     * layers + scatter_add into u, with exactly the semantics of
     * mnnh_ref_adjacent_fwd (layers.h). work0, work1: B * S * P floats each of
     * backend memory the op may clobber (a fallback runs the per-op sequence
     * in them).
     * Inference only, like level_fwd. Returns MNNH_ERR_ARG when
     * mnnh_adjacent_params_check fails. */
    mnnh_status (*adjacent_fwd)(mnnh_backend *, const mnnh_adjacent_params *ap, int B,
                                const float *v, float *u, float *work0, float *work1);
} mnnh_backend_ops;

struct mnnh_backend {
    const mnnh_backend_ops *ops;
    void *ctx;     /* backend-private state (handles, streams) */
    int device;    /* GPU ordinal for cuda, -1 on the CPU */
    int threads;   /* CPU threads used by the cpu backend */
    /* 1 when ops may run concurrently from several OpenMP threads of one
     * parallel region on disjoint outputs, each then running on its calling
     * thread alone (the cpu backend); the model then may run its levels and
     * adjacent part side by side (parts.h). 0: ref (the tests' sequential
     * oracle) and cuda (one stream). */
    int concurrent_parts;
};

/* name: "auto" (cuda when a GPU is present, else cpu), "cpu", "ref", "cuda".
 * device: GPU ordinal for cuda (ignored otherwise). */
mnnh_status mnnh_backend_create(mnnh_backend **be, const char *name, int device);
void mnnh_backend_free(mnnh_backend *be);

/* Number of usable CUDA GPUs (0 when built without CUDA or when none). */
int mnnh_cuda_device_count(void);

/* Convenience wrappers. */
mnnh_status mnnh_backend_alloc(mnnh_backend *be, void **p, size_t bytes);
void mnnh_backend_release(mnnh_backend *be, void *p);
mnnh_status mnnh_backend_upload(mnnh_backend *be, void *dst, const void *host, size_t bytes);
mnnh_status mnnh_backend_download(mnnh_backend *be, void *host, const void *src, size_t bytes);

/* Op tables, for backends to reuse each other's ops. */
extern const mnnh_backend_ops mnnh_backend_ref_ops;
extern const mnnh_backend_ops mnnh_backend_cpu_ops;

#ifdef __cplusplus
}
#endif
#endif
