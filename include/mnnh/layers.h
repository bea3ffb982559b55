/* layers.h: the MNN-H layers' CPU reference kernels (the tests' oracle).
 *
 * These are plain loops, written for clarity, against which every fast or GPU
 * kernel is tested. All tensors are C row-major, batch outermost.
 * With P = n^dim positions, S = s^dim block size and T = w^dim taps:
 *
 *   restrict (CR/LCR): v[B][N^d] -> out[B][cout][P], W [P?][cout][S], b [P?][cout]
 *       out[c][i] = sum_j W[c][j] v[block i, offset j] + b[c]
 *   kernel (CK/LCK):   in[B][cin][P] -> out[B][cout][P], W [P?][cout][cin][T],
 *       b [P?][cout], periodic: out[c'][i] = act(sum W[c'][c][t] in[c][i+t-nb] + b[c'])
 *   interp (CI/LCI):   z[B][cin][P] -> u[B][N^d] (accumulated), W [P?][S][cin], b [P?][S]
 *       u[block i, offset j] += sum_c W[j][c] z[c][i] + b[j]
 *   gather (Reshape):  v[B][N^d] -> out[B][S][P], out[j][i] = v[block i, offset j]
 *   scatter (Flatten): in[B][S][P] -> u[B][N^d] (accumulated), the inverse
 *
 * "[P?]" is present only for the locally connected (lc) variant. In 2D the
 * block offset j = j1*s + j2 addresses v[i1*s + j1][i2*s + j2] (the paper's
 * block Reshape). Backward functions overwrite input gradients (din may be
 * NULL to skip) and ACCUMULATE parameter gradients (dW, db += ...). */
#ifndef MNNH_LAYERS_H
#define MNNH_LAYERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;    /* 1 or 2 */
    int n;      /* positions per axis */
    int cin;    /* input channels (kernel, interp) */
    int cout;   /* output channels (restrict, kernel) */
    int s;      /* block width per axis (restrict, interp, gather, scatter) */
    int nb;     /* kernel half-width: w = 2 nb + 1 taps per axis */
    int local;  /* 1 = locally connected (per-position weights) */
    int relu;   /* 1 = ReLU after the kernel layer, 0 = linear */
} mnnh_geom;

size_t mnnh_geom_positions(const mnnh_geom *g); /* n^dim */
size_t mnnh_geom_block(const mnnh_geom *g);     /* s^dim */
size_t mnnh_geom_taps(const mnnh_geom *g);      /* (2 nb + 1)^dim */
size_t mnnh_geom_grid(const mnnh_geom *g);      /* (n s)^dim */

void mnnh_ref_restrict_fwd(const mnnh_geom *g, int B, const float *v, const float *W,
                           const float *b, float *out);
void mnnh_ref_restrict_bwd(const mnnh_geom *g, int B, const float *v, const float *W,
                           const float *dout, float *dv, float *dW, float *db);

/* out holds the post-activation values; backward reads them for the ReLU mask. */
void mnnh_ref_kernel_fwd(const mnnh_geom *g, int B, const float *in, const float *W,
                         const float *b, float *out);
void mnnh_ref_kernel_bwd(const mnnh_geom *g, int B, const float *in, const float *W,
                         const float *out, const float *dout, float *din, float *dW,
                         float *db);

void mnnh_ref_interp_fwd(const mnnh_geom *g, int B, const float *z, const float *W,
                         const float *b, float *u);
void mnnh_ref_interp_bwd(const mnnh_geom *g, int B, const float *z, const float *W,
                         const float *du, float *dz, float *dW, float *db);

void mnnh_ref_gather(const mnnh_geom *g, int B, const float *v, float *out);
void mnnh_ref_scatter_add(const mnnh_geom *g, int B, const float *in, float *u);

/* One level of the forward (restrict, K kernel layers, interp), used by the
 * optional fused backend op level_fwd (backend.h). The geometries must agree:
 * same dim, n and local everywhere, g_restrict->cout == every kernel's cin ==
 * cout == g_interp->cin, g_restrict->s == g_interp->s; each kernel layer has
 * its own geometry (its relu flag may differ), weights and bias. */
#define MNNH_LEVEL_MAX_K 64
typedef struct {
    const mnnh_geom *g_restrict, *g_interp;
    const mnnh_geom *g_kernel;        /* [K] */
    int K;                            /* 0..MNNH_LEVEL_MAX_K */
    const float *W_restrict, *b_restrict, *W_interp, *b_interp;
    const float *const *W_kernel;     /* [K] */
    const float *const *b_kernel;     /* [K] */
} mnnh_level_params;

/* 0 when the level's geometries agree (above), else -1. */
int mnnh_level_params_check(const mnnh_level_params *lp);

/* The reference semantics of level_fwd: with t_0 .. t_K activations [B][C][P]
 *   restrict_fwd(g_restrict, v -> t_0)
 *   kernel_fwd(g_kernel[k], t_k -> t_{k+1})   k = 0 .. K-1
 *   interp_fwd(g_interp, t_K -> u)            (accumulated into u)
 * work: 2 * B * C * P floats (the ping-pong activations, clobbered). */
void mnnh_ref_level_fwd(const mnnh_level_params *lp, int B, const float *v, float *u,
                        float *work);

/* The adjacent part of the forward (block reshape, K kernel layers, flatten),
 * used by the optional fused backend op adjacent_fwd (backend.h). g_block is
 * the gather / scatter geometry (dim, n, s); every kernel layer has the same
 * dim and n, cin == cout == s^dim, and the same local flag. */
typedef struct {
    const mnnh_geom *g_block;
    const mnnh_geom *g_kernel;        /* [K] */
    int K;                            /* 0..MNNH_LEVEL_MAX_K */
    const float *const *W_kernel;     /* [K] */
    const float *const *b_kernel;     /* [K] */
} mnnh_adjacent_params;

/* 0 when the adjacent part's geometries agree (above), else -1. */
int mnnh_adjacent_params_check(const mnnh_adjacent_params *ap);

/* The reference semantics of adjacent_fwd: with t_0 .. t_K activations [B][S][P]
 *   gather(g_block, v -> t_0)
 *   kernel_fwd(g_kernel[k], t_k -> t_{k+1})   k = 0 .. K-1
 *   scatter_add(g_block, t_K -> u)             (accumulated into u)
 * work: 2 * B * S * P floats (the ping-pong activations, clobbered). */
void mnnh_ref_adjacent_fwd(const mnnh_adjacent_params *ap, int B, const float *v, float *u,
                           float *work);

#ifdef __cplusplus
}
#endif
#endif
