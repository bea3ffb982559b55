/* layers_ref.c: plain-loop reference kernels of the MNN-H layers (layers.h).
 * Written for obviousness, not speed: these are the oracle of every other
 * backend. Positions and block offsets are flattened row-major; grid_index()
 * maps (position i, offset j) to the fine-grid point they address. */
#include "mnnh/layers.h"

#include <string.h>

size_t mnnh_geom_positions(const mnnh_geom *g) {
    return g->dim == 2 ? (size_t)g->n * g->n : (size_t)g->n;
}
size_t mnnh_geom_block(const mnnh_geom *g) {
    return g->dim == 2 ? (size_t)g->s * g->s : (size_t)g->s;
}
size_t mnnh_geom_taps(const mnnh_geom *g) {
    size_t w = 2 * (size_t)g->nb + 1;
    return g->dim == 2 ? w * w : w;
}
size_t mnnh_geom_grid(const mnnh_geom *g) {
    size_t ns = (size_t)g->n * g->s;
    return g->dim == 2 ? ns * ns : ns;
}

/* Fine-grid index of offset j inside the block of position i. */
static size_t grid_index(const mnnh_geom *g, size_t i, size_t j) {
    if (g->dim == 1) return i * g->s + j;
    size_t i1 = i / g->n, i2 = i % g->n, j1 = j / g->s, j2 = j % g->s;
    size_t ns = (size_t)g->n * g->s;
    return (i1 * g->s + j1) * ns + i2 * g->s + j2;
}

static int wrap(int x, int n) { return ((x % n) + n) % n; }

/* Position read by tap t of the kernel centred at position i (periodic). */
static size_t tap_source(const mnnh_geom *g, size_t i, size_t t) {
    int w = 2 * g->nb + 1;
    if (g->dim == 1) return (size_t)wrap((int)i + (int)t - g->nb, g->n);
    int i1 = (int)(i / g->n), i2 = (int)(i % g->n);
    int t1 = (int)t / w, t2 = (int)t % w;
    return (size_t)wrap(i1 + t1 - g->nb, g->n) * g->n + (size_t)wrap(i2 + t2 - g->nb, g->n);
}

void mnnh_ref_restrict_fwd(const mnnh_geom *g, int B, const float *v, const float *W,
                           const float *b, float *out) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (int c = 0; c < g->cout; c++) {
                const float *w = W + (g->local ? i * g->cout * S : 0) + (size_t)c * S;
                double acc = b[(g->local ? i * g->cout : 0) + c];
                for (size_t j = 0; j < S; j++) acc += (double)w[j] * v[bi * G + grid_index(g, i, j)];
                out[((size_t)bi * g->cout + c) * P + i] = (float)acc;
            }
}

void mnnh_ref_restrict_bwd(const mnnh_geom *g, int B, const float *v, const float *W,
                           const float *dout, float *dv, float *dW, float *db) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    if (dv) memset(dv, 0, sizeof(float) * G * B);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (int c = 0; c < g->cout; c++) {
                size_t wo = (g->local ? i * g->cout * S : 0) + (size_t)c * S;
                float d = dout[((size_t)bi * g->cout + c) * P + i];
                db[(g->local ? i * g->cout : 0) + c] += d;
                for (size_t j = 0; j < S; j++) {
                    size_t x = bi * G + grid_index(g, i, j);
                    dW[wo + j] += d * v[x];
                    if (dv) dv[x] += d * W[wo + j];
                }
            }
}

void mnnh_ref_kernel_fwd(const mnnh_geom *g, int B, const float *in, const float *W,
                         const float *b, float *out) {
    size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (int co = 0; co < g->cout; co++) {
                double acc = b[(g->local ? i * g->cout : 0) + co];
                const float *w = W + (g->local ? i * g->cout * g->cin * T : 0);
                for (int ci = 0; ci < g->cin; ci++)
                    for (size_t t = 0; t < T; t++)
                        acc += (double)w[((size_t)co * g->cin + ci) * T + t] *
                               in[((size_t)bi * g->cin + ci) * P + tap_source(g, i, t)];
                float y = (float)acc;
                out[((size_t)bi * g->cout + co) * P + i] = (g->relu && y < 0) ? 0.0f : y;
            }
}

void mnnh_ref_kernel_bwd(const mnnh_geom *g, int B, const float *in, const float *W,
                         const float *out, const float *dout, float *din, float *dW,
                         float *db) {
    size_t P = mnnh_geom_positions(g), T = mnnh_geom_taps(g);
    if (din) memset(din, 0, sizeof(float) * P * g->cin * B);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (int co = 0; co < g->cout; co++) {
                size_t o = ((size_t)bi * g->cout + co) * P + i;
                /* ReLU passes the gradient where its output is positive. */
                float d = (g->relu && out[o] <= 0) ? 0.0f : dout[o];
                if (d == 0.0f) continue;
                db[(g->local ? i * g->cout : 0) + co] += d;
                size_t wbase = (g->local ? i * g->cout * g->cin * T : 0);
                for (int ci = 0; ci < g->cin; ci++)
                    for (size_t t = 0; t < T; t++) {
                        size_t wo = wbase + ((size_t)co * g->cin + ci) * T + t;
                        size_t x = ((size_t)bi * g->cin + ci) * P + tap_source(g, i, t);
                        dW[wo] += d * in[x];
                        if (din) din[x] += d * W[wo];
                    }
            }
}

void mnnh_ref_interp_fwd(const mnnh_geom *g, int B, const float *z, const float *W,
                         const float *b, float *u) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (size_t j = 0; j < S; j++) {
                const float *w = W + (g->local ? i * S * g->cin : 0) + j * g->cin;
                double acc = b[(g->local ? i * S : 0) + j];
                for (int c = 0; c < g->cin; c++)
                    acc += (double)w[c] * z[((size_t)bi * g->cin + c) * P + i];
                u[bi * G + grid_index(g, i, j)] += (float)acc;
            }
}

void mnnh_ref_interp_bwd(const mnnh_geom *g, int B, const float *z, const float *W,
                         const float *du, float *dz, float *dW, float *db) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    if (dz) memset(dz, 0, sizeof(float) * P * g->cin * B);
    for (int bi = 0; bi < B; bi++)
        for (size_t i = 0; i < P; i++)
            for (size_t j = 0; j < S; j++) {
                size_t wo = (g->local ? i * S * g->cin : 0) + j * g->cin;
                float d = du[bi * G + grid_index(g, i, j)];
                db[(g->local ? i * S : 0) + j] += d;
                for (int c = 0; c < g->cin; c++) {
                    size_t x = ((size_t)bi * g->cin + c) * P + i;
                    dW[wo + c] += d * z[x];
                    if (dz) dz[x] += d * W[wo + c];
                }
            }
}

void mnnh_ref_gather(const mnnh_geom *g, int B, const float *v, float *out) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    for (int bi = 0; bi < B; bi++)
        for (size_t j = 0; j < S; j++)
            for (size_t i = 0; i < P; i++)
                out[((size_t)bi * S + j) * P + i] = v[bi * G + grid_index(g, i, j)];
}

void mnnh_ref_scatter_add(const mnnh_geom *g, int B, const float *in, float *u) {
    size_t P = mnnh_geom_positions(g), S = mnnh_geom_block(g), G = mnnh_geom_grid(g);
    for (int bi = 0; bi < B; bi++)
        for (size_t j = 0; j < S; j++)
            for (size_t i = 0; i < P; i++)
                u[bi * G + grid_index(g, i, j)] += in[((size_t)bi * S + j) * P + i];
}

int mnnh_level_params_check(const mnnh_level_params *lp) {
    const mnnh_geom *r = lp->g_restrict, *in = lp->g_interp;
    if (!r || !in || lp->K < 0 || lp->K > MNNH_LEVEL_MAX_K || (lp->K && !lp->g_kernel)) return -1;
    if (r->dim != in->dim || r->n != in->n || r->local != in->local || r->s != in->s ||
        r->cout != in->cin)
        return -1;
    for (int k = 0; k < lp->K; k++) {
        const mnnh_geom *g = &lp->g_kernel[k];
        if (g->dim != r->dim || g->n != r->n || g->local != r->local || g->cin != r->cout ||
            g->cout != r->cout)
            return -1;
    }
    return 0;
}

void mnnh_ref_level_fwd(const mnnh_level_params *lp, int B, const float *v, float *u,
                        float *work) {
    size_t act = (size_t)B * lp->g_restrict->cout * mnnh_geom_positions(lp->g_restrict);
    float *t[2] = {work, work + act};
    mnnh_ref_restrict_fwd(lp->g_restrict, B, v, lp->W_restrict, lp->b_restrict, t[0]);
    int w = 0;
    for (int k = 0; k < lp->K; k++, w ^= 1)
        mnnh_ref_kernel_fwd(&lp->g_kernel[k], B, t[w], lp->W_kernel[k], lp->b_kernel[k], t[w ^ 1]);
    mnnh_ref_interp_fwd(lp->g_interp, B, t[w], lp->W_interp, lp->b_interp, u);
}

int mnnh_adjacent_params_check(const mnnh_adjacent_params *ap) {
    const mnnh_geom *g = ap->g_block;
    if (!g || ap->K < 0 || ap->K > MNNH_LEVEL_MAX_K || (ap->K && !ap->g_kernel)) return -1;
    int S = (int)mnnh_geom_block(g);
    for (int k = 0; k < ap->K; k++) {
        const mnnh_geom *gk = &ap->g_kernel[k];
        if (gk->dim != g->dim || gk->n != g->n || gk->cin != S || gk->cout != S ||
            gk->local != ap->g_kernel[0].local)
            return -1;
    }
    return 0;
}

void mnnh_ref_adjacent_fwd(const mnnh_adjacent_params *ap, int B, const float *v, float *u,
                           float *work) {
    size_t act = (size_t)B * mnnh_geom_grid(ap->g_block);
    float *t[2] = {work, work + act};
    mnnh_ref_gather(ap->g_block, B, v, t[0]);
    int w = 0;
    for (int k = 0; k < ap->K; k++, w ^= 1)
        mnnh_ref_kernel_fwd(&ap->g_kernel[k], B, t[w], ap->W_kernel[k], ap->b_kernel[k], t[w ^ 1]);
    mnnh_ref_scatter_add(ap->g_block, B, t[w], u);
}
