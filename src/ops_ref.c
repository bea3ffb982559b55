/* ops_ref.c: reference of the non-layer ops (ops.h): affine input map,
 * density output layer, relative-error loss, NAdam element update. */
#include "mnnh/ops.h"

#include <float.h>
#include <math.h>

void mnnh_ref_affine(size_t n, const float *x, float scale, float shift, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;
}

void mnnh_ref_density_fwd(int B, size_t len, const float *y, float ne, float cell_volume,
                          float *rho, float *sums) {
    for (int b = 0; b < B; b++) {
        const float *yb = y + (size_t)b * len;
        double s = 0;
        for (size_t i = 0; i < len; i++) s += yb[i] > 0 ? yb[i] : 0;
        sums[b] = (float)s;
        float k = s > 0 ? (float)(ne / (cell_volume * s)) : 0.0f;
        for (size_t i = 0; i < len; i++) rho[(size_t)b * len + i] = yb[i] > 0 ? yb[i] * k : 0;
    }
}

/* rho_i = a_i k / S with a = max(y, 0), S = sum a, k = ne / cell_volume:
 * dL/da_j = (k / S) (drho_j - sum_i drho_i a_i / S). */
void mnnh_ref_density_bwd(int B, size_t len, const float *y, const float *rho,
                          const float *sums, float ne, float cell_volume, const float *drho,
                          float *dy) {
    (void)rho;
    for (int b = 0; b < B; b++) {
        const float *yb = y + (size_t)b * len, *db = drho + (size_t)b * len;
        float *dyb = dy + (size_t)b * len;
        double S = sums[b];
        if (!(S > 0)) {
            for (size_t i = 0; i < len; i++) dyb[i] = 0;
            continue;
        }
        double dot = 0;
        for (size_t i = 0; i < len; i++) dot += yb[i] > 0 ? (double)db[i] * yb[i] : 0;
        double k = ne / (cell_volume * S);
        for (size_t i = 0; i < len; i++)
            dyb[i] = yb[i] > 0 ? (float)(k * (db[i] - dot / S)) : 0.0f;
    }
}

void mnnh_ref_relerr(int B, size_t len, const float *pred, const float *target, float *err2,
                     float *dpred, float grad_scale) {
    for (int b = 0; b < B; b++) {
        const float *p = pred + (size_t)b * len, *t = target + (size_t)b * len;
        double num = 0, den = 0;
        for (size_t i = 0; i < len; i++) {
            double d = (double)p[i] - t[i];
            num += d * d;
            den += (double)t[i] * t[i];
        }
        if (den < DBL_MIN) den = DBL_MIN; /* an all-zero target: avoid 0/0 */
        err2[b] = (float)(num / den);
        if (dpred) {
            double k = 2.0 * grad_scale / den;
            for (size_t i = 0; i < len; i++)
                dpred[(size_t)b * len + i] = (float)(k * ((double)p[i] - t[i]));
        }
    }
}

void mnnh_ref_nadam_update(size_t n, float *p, const float *g, float *m, float *v, float beta1,
                           float beta2, float c_grad, float c_mom, float bias2, float eps) {
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float d = sqrtf(v[i] / bias2) + eps;
        /* two separate updates, in torch.optim.NAdam's order */
        p[i] -= c_grad * (g[i] / d);
        p[i] -= c_mom * (m[i] / d);
    }
}
