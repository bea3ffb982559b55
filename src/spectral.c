/* spectral.c: FFTW-based periodic Laplacian and kinetic resolvent (spectral.h). */
#include "mnnh/spectral.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mnnh_spectral {
    int dim, N, n, nc;   /* n = N^dim real points, nc complex coefficients */
    double box;
    double *k2;          /* |k|^2 per complex coefficient */
    double *in;
    fftw_complex *out;
    fftw_plan fwd, bwd;
};

/* Signed frequency index of FFT bin i: (-N/2, N/2]. */
static int freq(int i, int N) { return 2 * i <= N ? i : i - N; }

void mnnh_spectral_free(mnnh_spectral *s) {
    if (!s) return;
    if (s->fwd) fftw_destroy_plan(s->fwd);
    if (s->bwd) fftw_destroy_plan(s->bwd);
    fftw_free(s->in);
    fftw_free(s->out);
    free(s->k2);
    free(s);
}

mnnh_status mnnh_spectral_create(int dim, int N, double box, mnnh_spectral **out) {
    *out = NULL;
    if ((dim != 1 && dim != 2) || N < 2 || !(box > 0))
        return mnnh_error_set(MNNH_ERR_ARG, "spectral grid: bad dim=%d N=%d box=%g", dim, N, box);
    mnnh_spectral *s = calloc(1, sizeof *s);
    if (!s) return mnnh_error_set(MNNH_ERR_NOMEM, "spectral grid: out of memory");
    s->dim = dim;
    s->N = N;
    s->box = box;
    int h = N / 2 + 1;
    s->n = dim == 1 ? N : N * N;
    s->nc = dim == 1 ? h : N * h;
    s->k2 = malloc((size_t)s->nc * sizeof(double));
    s->in = fftw_malloc((size_t)s->n * sizeof(double));
    s->out = fftw_malloc((size_t)s->nc * sizeof(fftw_complex));
    if (!s->k2 || !s->in || !s->out) {
        mnnh_spectral_free(s);
        return mnnh_error_set(MNNH_ERR_NOMEM, "spectral grid: out of memory (N=%d)", N);
    }
    double k0 = 2.0 * M_PI / box;
    if (dim == 1) {
        s->fwd = fftw_plan_dft_r2c_1d(N, s->in, s->out, FFTW_ESTIMATE);
        s->bwd = fftw_plan_dft_c2r_1d(N, s->out, s->in, FFTW_ESTIMATE);
        for (int i = 0; i < h; i++) s->k2[i] = (k0 * i) * (k0 * i);
    } else {
        s->fwd = fftw_plan_dft_r2c_2d(N, N, s->in, s->out, FFTW_ESTIMATE);
        s->bwd = fftw_plan_dft_c2r_2d(N, N, s->out, s->in, FFTW_ESTIMATE);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < h; j++) {
                double a = k0 * freq(i, N), b = k0 * j;
                s->k2[i * h + j] = a * a + b * b;
            }
    }
    if (!s->fwd || !s->bwd) {
        mnnh_spectral_free(s);
        return mnnh_error_set(MNNH_ERR_BACKEND, "FFTW could not plan a %dD transform of N=%d", dim, N);
    }
    *out = s;
    return MNNH_OK;
}

/* y = F^{-1} diag(f(k2)) F x with f = a k2 + shift or its inverse. The 1/n of
 * the unnormalised c2r transform is folded into the multiplier. */
static void multiply(mnnh_spectral *s, double a, double shift, int invert, const double *x, double *y) {
    memcpy(s->in, x, (size_t)s->n * sizeof(double));
    fftw_execute(s->fwd);
    double scale = 1.0 / s->n;
    for (int c = 0; c < s->nc; c++) {
        double f = a * s->k2[c] + shift;
        double m = (invert ? 1.0 / f : f) * scale;
        s->out[c][0] *= m;
        s->out[c][1] *= m;
    }
    fftw_execute(s->bwd);
    memcpy(y, s->in, (size_t)s->n * sizeof(double));
}

void mnnh_spectral_laplace(mnnh_spectral *s, double a, const double *x, double *y) {
    multiply(s, a, 0.0, 0, x, y);
}

void mnnh_spectral_resolvent(mnnh_spectral *s, double a, double shift, const double *x, double *y) {
    multiply(s, a, shift, 1, x, y);
}

double mnnh_spectral_kmin2(const mnnh_spectral *s) {
    double k0 = 2.0 * M_PI / s->box;
    return k0 * k0;
}

double mnnh_spectral_circulant(int N, double box, int delta) {
    double k0 = 2.0 * M_PI / box, t = 0;
    for (int q = -((N - 1) / 2); q <= N / 2; q++) {
        double k = k0 * q;
        t += k * k * cos(2.0 * M_PI * q * delta / N);
    }
    return t / N;
}
