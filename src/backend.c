/* backend.c: backend selection and the host-memory backends.
 *   "ref": every op is the plain reference loop (layers.h, ops.h);
 *   "cpu": the fast CPU kernels (cpu_kernels.c), same semantics;
 *   "cuda": src/cuda/, when compiled in and a GPU is present. */
#include "mnnh/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnnh/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- host memory ---- */
static mnnh_status host_alloc(mnnh_backend *be, void **p, size_t bytes) {
    (void)be;
    /* 64-byte alignment for AVX-512 loads; never zero bytes */
    size_t sz = (bytes + 63) & ~(size_t)63;
    *p = aligned_alloc(64, sz ? sz : 64);
    if (!*p) return mnnh_error_set(MNNH_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    memset(*p, 0, sz ? sz : 64);
    return MNNH_OK;
}
static void host_release(mnnh_backend *be, void *p) { (void)be; free(p); }
static mnnh_status host_copy(mnnh_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes && dst != src) memmove(dst, src, bytes);
    return MNNH_OK;
}
static mnnh_status host_zero(mnnh_backend *be, void *p, size_t bytes) {
    (void)be;
    memset(p, 0, bytes);
    return MNNH_OK;
}
static mnnh_status host_sync(mnnh_backend *be) { (void)be; return MNNH_OK; }

/* ---- reference ops wrapped into the table ---- */
#define REF_OP(name, args, call)               \
    static mnnh_status ref_##name args {       \
        (void)be;                              \
        call;                                  \
        return MNNH_OK;                        \
    }
REF_OP(restrict_fwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *v, const float *W, const float *b, float *out),
       mnnh_ref_restrict_fwd(g, B, v, W, b, out))
REF_OP(restrict_bwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *v, const float *W, const float *dout, float *dv, float *dW, float *db),
       mnnh_ref_restrict_bwd(g, B, v, W, dout, dv, dW, db))
REF_OP(kernel_fwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *in, const float *W, const float *b, float *out),
       mnnh_ref_kernel_fwd(g, B, in, W, b, out))
REF_OP(kernel_bwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *in, const float *W, const float *out, const float *dout, float *din, float *dW, float *db),
       mnnh_ref_kernel_bwd(g, B, in, W, out, dout, din, dW, db))
REF_OP(interp_fwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *z, const float *W, const float *b, float *u),
       mnnh_ref_interp_fwd(g, B, z, W, b, u))
REF_OP(interp_bwd, (mnnh_backend *be, const mnnh_geom *g, int B, const float *z, const float *W, const float *du, float *dz, float *dW, float *db),
       mnnh_ref_interp_bwd(g, B, z, W, du, dz, dW, db))
REF_OP(gather, (mnnh_backend *be, const mnnh_geom *g, int B, const float *v, float *out),
       mnnh_ref_gather(g, B, v, out))
REF_OP(scatter_add, (mnnh_backend *be, const mnnh_geom *g, int B, const float *in, float *u),
       mnnh_ref_scatter_add(g, B, in, u))
REF_OP(affine, (mnnh_backend *be, size_t n, const float *x, float scale, float shift, float *y),
       mnnh_ref_affine(n, x, scale, shift, y))
REF_OP(density_fwd, (mnnh_backend *be, int B, size_t len, const float *y, float ne, float cv, float *rho, float *sums),
       mnnh_ref_density_fwd(B, len, y, ne, cv, rho, sums))
REF_OP(density_bwd, (mnnh_backend *be, int B, size_t len, const float *y, const float *rho, const float *sums, float ne, float cv, const float *drho, float *dy),
       mnnh_ref_density_bwd(B, len, y, rho, sums, ne, cv, drho, dy))
REF_OP(relerr, (mnnh_backend *be, int B, size_t len, const float *pred, const float *target, float *err2, float *dpred, float gs),
       mnnh_ref_relerr(B, len, pred, target, err2, dpred, gs))
REF_OP(nadam_update, (mnnh_backend *be, size_t n, float *p, const float *g, float *m, float *v, float b1, float b2, float cg, float cm, float bias2, float eps),
       mnnh_ref_nadam_update(n, p, g, m, v, b1, b2, cg, cm, bias2, eps))

const mnnh_backend_ops mnnh_backend_ref_ops = {
    .name = "ref",
    .alloc = host_alloc, .release = host_release, .upload = host_copy,
    .download = host_copy, .copy = host_copy, .zero = host_zero, .sync = host_sync,
    .restrict_fwd = ref_restrict_fwd, .restrict_bwd = ref_restrict_bwd,
    .kernel_fwd = ref_kernel_fwd, .kernel_bwd = ref_kernel_bwd,
    .interp_fwd = ref_interp_fwd, .interp_bwd = ref_interp_bwd,
    .gather = ref_gather, .scatter_add = ref_scatter_add,
    .affine = ref_affine, .density_fwd = ref_density_fwd, .density_bwd = ref_density_bwd,
    .relerr = ref_relerr, .nadam_update = ref_nadam_update,
};

/* ---- selection ---- */
#ifdef MNNH_HAVE_CUDA
mnnh_status mnnh_cuda_backend_create(mnnh_backend **be, int device);
#endif

/* A host backend's table: its own ops, and the reference for any op it
 * leaves NULL (memory management included), so fast kernels can be added
 * one at a time. The optional fused ops at the end of the table (level_fwd)
 * have no entry in the reference table, so they stay NULL unless the backend
 * provides them, and the model then takes the per-op path. The merged table
 * lives in ctx. */
static mnnh_status host_backend_create(mnnh_backend **be, const mnnh_backend_ops *ops) {
    *be = calloc(1, sizeof **be);
    mnnh_backend_ops *merged = malloc(sizeof *merged);
    if (!*be || !merged) {
        free(*be);
        free(merged);
        *be = NULL;
        return mnnh_error_set(MNNH_ERR_NOMEM, "backend");
    }
    *merged = *ops;
    const void *const *ref = (const void *const *)&mnnh_backend_ref_ops;
    const void **dst = (const void **)merged;
    for (size_t i = 1; i < sizeof *merged / sizeof(void *); i++)
        if (!dst[i]) dst[i] = ref[i];
    (*be)->ops = merged;
    (*be)->ctx = merged;
    (*be)->device = -1;
    (*be)->concurrent_parts = ops == &mnnh_backend_cpu_ops;
#ifdef _OPENMP
    (*be)->threads = omp_get_max_threads();
#else
    (*be)->threads = 1;
#endif
    return MNNH_OK;
}

mnnh_status mnnh_backend_create(mnnh_backend **be, const char *name, int device) {
    *be = NULL;
    if (!name || !strcmp(name, "auto")) {
        if (mnnh_cuda_device_count() > 0) name = "cuda";
        else name = "cpu";
    }
    if (!strcmp(name, "ref")) return host_backend_create(be, &mnnh_backend_ref_ops);
    if (!strcmp(name, "cpu")) return host_backend_create(be, &mnnh_backend_cpu_ops);
    if (!strcmp(name, "cuda")) {
#ifdef MNNH_HAVE_CUDA
        if (mnnh_cuda_device_count() <= 0)
            return mnnh_error_set(MNNH_ERR_BACKEND, "--backend cuda: no CUDA GPU is visible on this machine");
        return mnnh_cuda_backend_create(be, device < 0 ? 0 : device);
#else
        return mnnh_error_set(MNNH_ERR_BACKEND, "--backend cuda: this mnnh was built without CUDA");
#endif
    }
    return mnnh_error_set(MNNH_ERR_ARG, "unknown backend '%s' (expected auto, cpu, ref or cuda)", name);
}

void mnnh_backend_free(mnnh_backend *be) {
    if (!be) return;
    if (be->ops->name && !strcmp(be->ops->name, "cuda")) {
#ifdef MNNH_HAVE_CUDA
        void mnnh_cuda_backend_destroy(mnnh_backend *);
        mnnh_cuda_backend_destroy(be);
        return;
#endif
    }
    free(be->ctx);
    free(be);
}

#ifndef MNNH_HAVE_CUDA
int mnnh_cuda_device_count(void) { return 0; }
#endif

mnnh_status mnnh_backend_alloc(mnnh_backend *be, void **p, size_t bytes) {
    return be->ops->alloc(be, p, bytes);
}
void mnnh_backend_release(mnnh_backend *be, void *p) {
    if (p) be->ops->release(be, p);
}
mnnh_status mnnh_backend_upload(mnnh_backend *be, void *dst, const void *host, size_t bytes) {
    return be->ops->upload(be, dst, host, bytes);
}
mnnh_status mnnh_backend_download(mnnh_backend *be, void *host, const void *src, size_t bytes) {
    return be->ops->download(be, host, src, bytes);
}
