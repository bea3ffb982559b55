/* ops.h: CPU reference of the non-layer ops: input affine map, the Kohn-Sham
 * density output layer, the relative-error loss, and the NAdam update.
 *
 * density:  rho[b][i] = max(y[b][i], 0) * ne / (cell_volume * sums[b]),
 *           sums[b] = sum_i max(y[b][i], 0) (the layer is D in DESIGN.md);
 *           a sample whose positive part sums to 0 gets rho = 0.
 * relerr:   err2[b] = ||pred_b - target_b||^2 / ||target_b||^2 and, when dpred
 *           is not NULL, dpred = grad_scale * d err2[b] / d pred_b, so with
 *           grad_scale = 1/B_global the gradient is that of the mean loss.
 * nadam:    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *           d = sqrt(v / bias2) + eps;  p -= c_grad (g / d);  p -= c_mom (m / d)
 *           (the scalar coefficients come from nadam.h, as in torch.optim.NAdam). */
#ifndef MNNH_OPS_H
#define MNNH_OPS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void mnnh_ref_affine(size_t n, const float *x, float scale, float shift, float *y);
void mnnh_ref_density_fwd(int B, size_t len, const float *y, float ne, float cell_volume,
                          float *rho, float *sums);
void mnnh_ref_density_bwd(int B, size_t len, const float *y, const float *rho,
                          const float *sums, float ne, float cell_volume, const float *drho,
                          float *dy);
void mnnh_ref_relerr(int B, size_t len, const float *pred, const float *target, float *err2,
                     float *dpred, float grad_scale);
void mnnh_ref_nadam_update(size_t n, float *p, const float *g, float *m, float *v, float beta1,
                           float beta2, float c_grad, float c_mom, float bias2, float eps);

#ifdef __cplusplus
}
#endif
#endif
