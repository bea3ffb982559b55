/* spectral.h: pseudo-spectral operators on a periodic grid (FFTW).
 *
 * Defines mnnh_spectral: the r2c/c2r plans, buffers and |k|^2 table of a
 * periodic grid of N points per axis (dim 1 or 2, box length `box`), and the
 * Fourier multipliers the generators need: y = a (-Laplacian) x and the
 * kinetic preconditioner y = (a (-Laplacian) + s)^{-1} x. Wavenumbers are
 * k = 2 pi q / box with q in (-N/2, N/2]; the Nyquist mode is kept, so the
 * operator is the real symmetric circulant sum_q |k_q|^2 e^{i k_q (x_a - x_b)} / N.
 * Plans are made with FFTW_ESTIMATE: the same algorithm on every rank, so
 * results do not depend on which rank computes a sample. */
#ifndef MNNH_SPECTRAL_H
#define MNNH_SPECTRAL_H

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mnnh_spectral mnnh_spectral;

mnnh_status mnnh_spectral_create(int dim, int N, double box, mnnh_spectral **out);
void mnnh_spectral_free(mnnh_spectral *s);

/* y = a * (-Laplacian) x. x and y may alias. */
void mnnh_spectral_laplace(mnnh_spectral *s, double a, const double *x, double *y);

/* y = (a * (-Laplacian) + shift)^{-1} x, shift > 0. x and y may alias. */
void mnnh_spectral_resolvent(mnnh_spectral *s, double a, double shift, const double *x, double *y);

/* |k|^2 of the lowest non-zero mode, (2 pi / box)^2. */
double mnnh_spectral_kmin2(const mnnh_spectral *s);

/* Entry t(delta) of the 1D circulant (-Laplacian) matrix, delta = a - b mod N,
 * from the closed-form sum (no FFT): the dense references use it. */
double mnnh_spectral_circulant(int N, double box, int delta);

#ifdef __cplusplus
}
#endif
#endif
