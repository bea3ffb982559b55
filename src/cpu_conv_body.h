/* cpu_conv_body.h: the vector kernels of the "cpu" backend, written once with
 * GCC generic vectors and compiled once per instruction set by cpu_kernels.c,
 * which defines before each inclusion:
 *   ISA    suffix of every name (avx512, avx2, sse)
 *   VB     lanes per vector = samples per batch block (16, 8, 4)
 *   ACC    accumulator budget of the convolution tile, in vectors
 *   DWACC  accumulator budget of the weight-gradient tile
 * and wraps the inclusion in #pragma GCC target(...) for that instruction set.
 *
 * Data layout inside a kernel (scratch): a batch block of VB samples with the
 * samples in the vector lanes, X[channel][padded position][VB]. Periodic
 * padding is materialised as halo positions, so every tap is an aligned
 * vector load and the output channels of a tile stay in registers. Weights
 * are packed as [pos?][in channel][tap][out channel] so that a tile's
 * broadcasts are contiguous. The position-vectorised kernels (pconv, pdw,
 * lconv, lpv_bwd, pad_row) keep each sample's [C][padded P] layout, with VB
 * consecutive positions per vector (per-lane weights for lc). The argument
 * structs are in cpu_kernels.c. */

#define CK_CAT_(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define F(name) CK_CAT(name, ISA)

typedef float F(vf) __attribute__((vector_size(VB * 4)));
typedef int F(vi) __attribute__((vector_size(VB * 4)));
#define vf F(vf)
#define vi F(vi)
#define LDA(p) (*(const vf *)(const void *)(p))
#define STA(p, v) (*(vf *)(void *)(p) = (v))

static inline vf F(ldu)(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void F(stu)(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf F(splat)(float x) { return (vf){0} + x; }
static inline float F(hsum)(vf v) {
    /* fixed butterfly tree: deterministic for a given instruction set */
#if VB == 16
    v += __builtin_shuffle(v, (vi){8,9,10,11,12,13,14,15,0,1,2,3,4,5,6,7});
    v += __builtin_shuffle(v, (vi){4,5,6,7,0,1,2,3,12,13,14,15,8,9,10,11});
    v += __builtin_shuffle(v, (vi){2,3,0,1,6,7,4,5,10,11,8,9,14,15,12,13});
    v += __builtin_shuffle(v, (vi){1,0,3,2,5,4,7,6,9,8,11,10,13,12,15,14});
#elif VB == 8
    v += __builtin_shuffle(v, (vi){4,5,6,7,0,1,2,3});
    v += __builtin_shuffle(v, (vi){2,3,0,1,6,7,4,5});
    v += __builtin_shuffle(v, (vi){1,0,3,2,5,4,7,6});
#elif VB == 4
    v += __builtin_shuffle(v, (vi){2,3,0,1});
    v += __builtin_shuffle(v, (vi){1,0,3,2});
#endif
    return v[0];
}

/* ---- VB x VB transpose of r[0..VB-1] in place (block-swap butterflies) ---- */
#define CK_TSTAGE(h, LO, HI)                                \
    for (int i = 0; i < VB; i++)                            \
        if (!(i & (h))) {                                   \
            vf a_ = r[i], b_ = r[i + (h)];                  \
            r[i] = __builtin_shuffle(a_, b_, LO);           \
            r[i + (h)] = __builtin_shuffle(a_, b_, HI);     \
        }
static inline __attribute__((always_inline)) void F(transpose)(vf *r) {
#if VB == 16
    {
        const vi lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
        const vi hi = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
        CK_TSTAGE(8, lo, hi)
    }
    {
        const vi lo = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
        const vi hi = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
        CK_TSTAGE(4, lo, hi)
    }
    {
        const vi lo = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
        const vi hi = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
        CK_TSTAGE(2, lo, hi)
    }
    {
        const vi lo = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
        const vi hi = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};
        CK_TSTAGE(1, lo, hi)
    }
#elif VB == 8
    {
        const vi lo = {0, 1, 2, 3, 8, 9, 10, 11};
        const vi hi = {4, 5, 6, 7, 12, 13, 14, 15};
        CK_TSTAGE(4, lo, hi)
    }
    {
        const vi lo = {0, 1, 8, 9, 4, 5, 12, 13};
        const vi hi = {2, 3, 10, 11, 6, 7, 14, 15};
        CK_TSTAGE(2, lo, hi)
    }
    {
        const vi lo = {0, 8, 2, 10, 4, 12, 6, 14};
        const vi hi = {1, 9, 3, 11, 5, 13, 7, 15};
        CK_TSTAGE(1, lo, hi)
    }
#elif VB == 4
    {
        const vi lo = {0, 1, 4, 5};
        const vi hi = {2, 3, 6, 7};
        CK_TSTAGE(2, lo, hi)
    }
    {
        const vi lo = {0, 4, 2, 6};
        const vi hi = {1, 5, 3, 7};
        CK_TSTAGE(1, lo, hi)
    }
#else
#error "VB must be 4, 8 or 16"
#endif
}
#undef CK_TSTAGE

/* ---- d[0..n+2nb) = the periodic padded row of x[0..n) (masked by m > 0
 * when m is set; nb <= n): the rows of the position-vectorised paths. The
 * halo is read from x, not d (reading d right after the vector stores of
 * the interior stalls on store forwarding). No loop-to-memcpy conversion: a
 * libc call per row of 4..64 floats cost more than the copy. ---- */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static inline void F(pad_row)(float *restrict d, const float *restrict x, const float *restrict m,
                       int n, int nb) {
    float *di = d + nb;
    int p = 0;
    if (m) {
        for (; p + VB <= n; p += VB) {
            vf v = F(ldu)(x + p);
            F(stu)(di + p, (vf)((vi)v & (F(ldu)(m + p) > 0)));
        }
        for (; p < n; p++) di[p] = m[p] > 0 ? x[p] : 0.0f;
        for (int u = 0; u < nb; u++) {
            d[u] = m[n - nb + u] > 0 ? x[n - nb + u] : 0.0f;
            d[n + nb + u] = m[u] > 0 ? x[u] : 0.0f;
        }
        return;
    }
    for (; p + VB <= n; p += VB) F(stu)(di + p, F(ldu)(x + p));
    for (; p < n; p++) di[p] = x[p];
    for (int u = 0; u < nb; u++) {
        d[u] = x[n - nb + u];
        d[n + nb + u] = x[u];
    }
}

/* C rows of n (stride n in x and m, Pp in d): one call per sample, not per
 * row (for n = 16 the calls cost as much as the copies). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void F(pad_rows)(float *restrict d, size_t Pp, const float *restrict x,
                        const float *restrict m, int C, int n, int nb) {
    for (int c = 0; c < C; c++)
        F(pad_row)(d + (size_t)c * Pp, x + (size_t)c * n, m ? m + (size_t)c * n : NULL, n, nb);
}

/* ---- weight layouts of the position-vectorised lc paths ---- */

/* dst[dstoff[k] + l] = src[l sstride + k] for the VB rows l and the ncols
 * columns k of src: per-position weights into vectors of positions, VB x VB
 * register transposes instead of one strided scalar load per weight. */
static void F(cols_to_rows)(const float *src, size_t sstride, int ncols, const int *dstoff,
                            float *dst) {
    int k0 = 0;
    for (; k0 + VB <= ncols; k0 += VB) {
        vf r[VB];
        for (int l = 0; l < VB; l++) r[l] = F(ldu)(src + l * sstride + k0);
        F(transpose)(r);
        for (int j = 0; j < VB; j++) F(stu)(dst + dstoff[k0 + j], r[j]);
    }
    for (int k = k0; k < ncols; k++)
        for (int l = 0; l < VB; l++) dst[dstoff[k] + l] = src[l * sstride + k];
}

/* dst[l drow + k] += the sum over threads th < nt, in thread order, of
 * src[th sthr + k srow + l], for the VB positions l and nk rows k: the lc
 * lane sums [k][P] back into the [P][k] gradients (the same additions, in
 * the same order, as one position at a time). */
static void F(add_rows_tr)(const float *src, size_t srow, size_t sthr, int nt, int nk, float *dst,
                           size_t drow) {
    int k0 = 0;
    for (; k0 + VB <= nk; k0 += VB) {
        vf r[VB];
        for (int j = 0; j < VB; j++) {
            const float *sj = src + (size_t)(k0 + j) * srow;
            vf v = F(ldu)(sj);
            for (int th = 1; th < nt; th++) v += F(ldu)(sj + th * sthr);
            r[j] = v;
        }
        F(transpose)(r);
        for (int l = 0; l < VB; l++) {
            float *d = dst + l * drow + k0;
            F(stu)(d, F(ldu)(d) + r[l]);
        }
    }
    for (int k = k0; k < nk; k++)
        for (int l = 0; l < VB; l++) {
            float v = src[(size_t)k * srow + l];
            for (int th = 1; th < nt; th++) v += src[th * sthr + (size_t)k * srow + l];
            dst[l * drow + k] += v;
        }
}

/* Wd[((o T + t) CI + i) VB + l] = U[((o CI + i) T + t) Pu + 2 nb - t + l]
 * for one vector of positions (U and Wd advanced to it; Wd aligned): the lc
 * input gradient's per-lane weights as windows of the transposed, halo-padded
 * weight rows, one vector copy each (a scalar loop with a division per row
 * was 5% of the KS 1D lc backward). */
static void F(lc_bwd_windows)(const float *U, int Pu, int nb, int CI, int T, int OC, float *Wd) {
    for (int o = 0; o < OC; o++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < CI; i++, Wd += VB)
                STA(Wd, F(ldu)(U + ((size_t)(o * CI + i) * T + t) * Pu + 2 * nb - t));
}

/* ---- layout changes between [B][C][P] and a block's [C][padded P][VB] ---- */

/* Grids whose row P is not a multiple of VB (KS 1D n = 4, 8): transpose
 * the flattened sample [C * P] in chunks of VB (element k = c P + p goes to
 * X[c][qb[p]]) instead of element by element; the tail element-wise.
 * Masked by mask > 0 when mask is set (a ReLU layer's output gradient). */
static void F(flat_to_block)(const float *src, const float *mask, int nv, int C, int P,
                             const int *qb, int Pp, float *X) {
    size_t sstride = (size_t)C * P, K = sstride, k = 0;
    int c = 0, p = 0;
    for (; k + VB <= K; k += VB) {
        vf r[VB];
        for (int l = 0; l < VB; l++) {
            r[l] = l < nv ? F(ldu)(src + l * sstride + k) : (vf){0};
            if (l < nv && mask) r[l] = (vf)((vi)r[l] & (F(ldu)(mask + l * sstride + k) > 0));
        }
        F(transpose)(r);
        for (int j = 0; j < VB; j++) {
            STA(X + ((size_t)c * Pp + (qb ? qb[p] : p)) * VB, r[j]);
            if (++p == P) p = 0, c++;
        }
    }
    for (; k < K; k++) {
        float *dst = X + ((size_t)c * Pp + (qb ? qb[p] : p)) * VB;
        for (int l = 0; l < VB; l++) {
            size_t o = l * sstride + k;
            dst[l] = l < nv && (!mask || mask[o] > 0) ? src[o] : 0.0f;
        }
        if (++p == P) p = 0, c++;
    }
}

static void F(fill_halo)(float *X, int C, int Pp, const int *halo, int nhalo) {
    for (int c = 0; c < C; c++) {
        float *Xc = X + (size_t)c * Pp * VB;
        for (int h = 0; h < nhalo; h++)
            STA(Xc + (size_t)halo[2 * h] * VB, LDA(Xc + (size_t)halo[2 * h + 1] * VB));
    }
}

/* X[c][qb[p]][lane] = in[b0 + lane][c][p] for lanes < nv (zeros above), then
 * the halo positions. in points at sample b0; its per-sample stride is C*P. */
static void F(to_block)(const float *in, int nv, int C, int P, const int *qb, int Pp,
                        const int *halo, int nhalo, float *X) {
    size_t sstride = (size_t)C * P;
    if (P % VB && sstride >= VB) {
        F(flat_to_block)(in, NULL, nv, C, P, qb, Pp, X);
        F(fill_halo)(X, C, Pp, halo, nhalo);
        return;
    }
    for (int c = 0; c < C; c++) {
        float *Xc = X + (size_t)c * Pp * VB;
        int p = 0;
        if (P % VB == 0)
            for (; p < P; p += VB) {
                vf r[VB];
                for (int l = 0; l < VB; l++)
                    r[l] = l < nv ? F(ldu)(in + l * sstride + (size_t)c * P + p) : (vf){0};
                F(transpose)(r);
                for (int k = 0; k < VB; k++) STA(Xc + (size_t)(qb ? qb[p + k] : p + k) * VB, r[k]);
            }
        for (; p < P; p++) {
            float *dst = Xc + (size_t)(qb ? qb[p] : p) * VB;
            for (int l = 0; l < VB; l++) dst[l] = l < nv ? in[l * sstride + (size_t)c * P + p] : 0.0f;
        }
        for (int h = 0; h < nhalo; h++)
            STA(Xc + (size_t)halo[2 * h] * VB, LDA(Xc + (size_t)halo[2 * h + 1] * VB));
    }
}

/* Masked output gradient of a kernel layer into a block:
 * D[c][qb[p]][lane] = relu' (out) * dout, halo included. */
static void F(grad_to_block)(const float *out, const float *dout, int relu, int nv, int C, int P,
                             const int *qb, int Pp, const int *halo, int nhalo, float *D) {
    size_t sstride = (size_t)C * P;
    if (P % VB && sstride >= VB) {
        F(flat_to_block)(dout, relu ? out : NULL, nv, C, P, qb, Pp, D);
        F(fill_halo)(D, C, Pp, halo, nhalo);
        return;
    }
    for (int c = 0; c < C; c++) {
        float *Dc = D + (size_t)c * Pp * VB;
        int p = 0;
        if (P % VB == 0)
            for (; p < P; p += VB) {
                vf r[VB];
                /* mask before the transpose: one transpose instead of two */
                for (int l = 0; l < VB; l++) {
                    size_t o = l * sstride + (size_t)c * P + p;
                    r[l] = l < nv ? F(ldu)(dout + o) : (vf){0};
                    if (l < nv && relu) r[l] = (vf)((vi)r[l] & (F(ldu)(out + o) > 0));
                }
                F(transpose)(r);
                for (int k = 0; k < VB; k++) STA(Dc + (size_t)(qb ? qb[p + k] : p + k) * VB, r[k]);
            }
        for (; p < P; p++) {
            float *dst = Dc + (size_t)(qb ? qb[p] : p) * VB;
            for (int l = 0; l < VB; l++) {
                size_t o = l * sstride + (size_t)c * P + p;
                dst[l] = l < nv && (!relu || out[o] > 0) ? dout[o] : 0.0f;
            }
        }
        for (int h = 0; h < nhalo; h++)
            STA(Dc + (size_t)halo[2 * h] * VB, LDA(Dc + (size_t)halo[2 * h + 1] * VB));
    }
}

/* out[b0 + lane][c][p] (+)= Y[c][p][lane] for lanes < nv (Y unpadded). */
static void F(from_block)(const float *Y, int nv, int C, int P, float *out, int add) {
    size_t sstride = (size_t)C * P;
    if (P % VB && sstride >= VB) {
        /* Y[c][p] is the flattened [C * P] already: transpose chunks of it */
        size_t k = 0;
        for (; k + VB <= sstride; k += VB) {
            vf r[VB];
            for (int j = 0; j < VB; j++) r[j] = LDA(Y + (k + j) * VB);
            F(transpose)(r);
            for (int l = 0; l < nv; l++) {
                float *dst = out + l * sstride + k;
                F(stu)(dst, add ? F(ldu)(dst) + r[l] : r[l]);
            }
        }
        for (; k < sstride; k++)
            for (int l = 0; l < nv; l++) {
                float *dst = out + l * sstride + k;
                *dst = add ? *dst + Y[k * VB + l] : Y[k * VB + l];
            }
        return;
    }
    for (int c = 0; c < C; c++) {
        const float *Yc = Y + (size_t)c * P * VB;
        int p = 0;
        if (P % VB == 0)
            for (; p < P; p += VB) {
                vf r[VB];
                for (int k = 0; k < VB; k++) r[k] = LDA(Yc + (size_t)(p + k) * VB);
                F(transpose)(r);
                for (int l = 0; l < nv; l++) {
                    float *dst = out + l * sstride + (size_t)c * P + p;
                    F(stu)(dst, add ? F(ldu)(dst) + r[l] : r[l]);
                }
            }
        for (; p < P; p++)
            for (int l = 0; l < nv; l++) {
                float *dst = out + l * sstride + (size_t)c * P + p;
                *dst = add ? *dst + Yc[(size_t)p * VB + l] : Yc[(size_t)p * VB + l];
            }
    }
}

/* ---- the convolution tile ----
 * Y[o][q][:] = act(bias + sum_i sum_t Wp[wofs(q,t) + (i T + t) OC + o] X[i][qb[q] + toff[t]][:])
 * for NP positions q.. and CO output channels o0.. (both compile-time after
 * inlining, so acc[][] lives in registers). */
static inline __attribute__((always_inline)) void F(conv_tile)(const conv_args *a, int q, int o0,
                                                               const int CO, const int NP,
                                                               const int LC) {
    vf acc[4][COMAX];
    const int T = a->T, OC = a->OC;
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++)
#pragma GCC unroll 24
        for (int o = 0; o < CO; o++)
            acc[j][o] = a->bias ? F(splat)(a->bias[(LC ? (size_t)(q + j) * OC : 0) + o0 + o])
                                : (vf){0};
    int qbj[4];
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) qbj[j] = a->qb[q + j];
    for (int i = 0; i < a->CI; i++) {
        const float *Xi = a->X + (size_t)i * a->Pp * VB;
        const float *Wi = a->W + (size_t)i * T * OC + o0;
        for (int t = 0; t < T; t++) {
            vf x[4];
            int to = a->toff[t];
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) x[j] = LDA(Xi + (ptrdiff_t)(qbj[j] + to) * VB);
            if (!LC) {
                const float *w = Wi + (size_t)t * OC;
#pragma GCC unroll 24
                for (int o = 0; o < CO; o++) {
                    float wv = w[o];
#pragma GCC unroll 4
                    for (int j = 0; j < NP; j++) acc[j][o] += wv * x[j];
                }
            } else {
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++) {
                    const float *w = Wi + (size_t)t * OC + a->wofs[(size_t)(q + j) * T + t];
#pragma GCC unroll 24
                    for (int o = 0; o < CO; o++) acc[j][o] += w[o] * x[j];
                }
            }
        }
    }
#pragma GCC unroll 24
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            vf y = acc[j][o];
            if (a->relu) y = (vf)((vi)y & (y > 0));
            STA(a->Y + (a->yq ? (size_t)a->yq[q + j] + a->yo[o0 + o] : (size_t)(o0 + o) * a->P + q + j) * VB, y);
        }
}

#define NP_OF(CO) ((ACC / (CO)) >= 4 ? 4 : (ACC / (CO)) < 1 ? 1 : ACC / (CO))
#define DEF_CONV(CO)                                                                  \
    static void F(conv_##CO)(const conv_args *a, int o0) {                            \
        enum { NP = NP_OF(CO) };                                                      \
        int q = 0;                                                                    \
        if (a->wofs) {                                                                \
            for (; q + NP <= a->P; q += NP) F(conv_tile)(a, q, o0, CO, NP, 1);        \
            for (; q < a->P; q++) F(conv_tile)(a, q, o0, CO, 1, 1);                   \
        } else {                                                                      \
            for (; q + NP <= a->P; q += NP) F(conv_tile)(a, q, o0, CO, NP, 0);        \
            for (; q < a->P; q++) F(conv_tile)(a, q, o0, CO, 1, 0);                   \
        }                                                                             \
    }
DEF_CONV(1) DEF_CONV(2) DEF_CONV(3) DEF_CONV(4) DEF_CONV(5) DEF_CONV(6) DEF_CONV(7)
DEF_CONV(8) DEF_CONV(9) DEF_CONV(10) DEF_CONV(11) DEF_CONV(12)
#if COMAX > 12
DEF_CONV(13) DEF_CONV(14) DEF_CONV(15) DEF_CONV(16)
#endif

/* Output channels in near-equal chunks of at most COMAX, each run by the
 * tile kernel fn[width] specialised for its width (shared by conv, pconv). */
static void F(conv_chunks)(const conv_args *a, void (*const *fn)(const conv_args *, int)) {
    int nch = (a->OC + COMAX - 1) / COMAX;
    for (int c = 0, o0 = 0; c < nch; c++) {
        int co = (a->OC * (c + 1)) / nch - (a->OC * c) / nch;
        fn[co](a, o0);
        o0 += co;
    }
}

static void F(conv)(const conv_args *a) {
    static void (*const fn[])(const conv_args *, int) = {
        NULL, F(conv_1), F(conv_2), F(conv_3), F(conv_4), F(conv_5), F(conv_6), F(conv_7),
        F(conv_8), F(conv_9), F(conv_10), F(conv_11), F(conv_12),
#if COMAX > 12
        F(conv_13), F(conv_14), F(conv_15), F(conv_16),
#endif
    };
    F(conv_chunks)(a, fn);
}

/* ---- weight gradient accumulation shared by dw_tile and dwv_tile ----
 * acc[k][o] += over blocks [blk0, blk1), positions q in [q0, q1), lane-wise,
 * D[o0 + o][qbd[q]] * X[i][qb[q] + toff[t0 + k]]. */
static inline __attribute__((always_inline)) void F(dw_accumulate)(const dw_args *a, int q0,
                                                                   int q1, int i, int t0, int o0,
                                                                   vf acc[8][8], const int CO,
                                                                   const int TB) {
    int tk[8];
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++) tk[k] = a->toff[t0 + k];
    for (int blk = a->blk0; blk < a->blk1; blk++) {
        const float *Xi = a->X + (size_t)blk * a->xstride + (size_t)i * a->Pp * VB;
        const float *Db = a->D + (size_t)blk * a->dstride + (size_t)o0 * a->Ppd * VB;
        for (int q = q0; q < q1; q++) {
            int qq = a->qb[q], qd = a->qbd[q];
            vf d[8];
#pragma GCC unroll 8
            for (int o = 0; o < CO; o++) d[o] = LDA(Db + ((size_t)o * a->Ppd + qd) * VB);
#pragma GCC unroll 8
            for (int k = 0; k < TB; k++) {
                vf x = LDA(Xi + (ptrdiff_t)(qq + tk[k]) * VB);
#pragma GCC unroll 8
                for (int o = 0; o < CO; o++) acc[k][o] += d[o] * x;
            }
        }
    }
}

/* ---- weight gradient tile ----
 * dWp[(i T + t) OC + o] += sum over blocks, positions q in [q0, q1), lanes of
 * D[o][qb[q]] * X[i][qb[q] + toff[t]], for CO channels o0.. and TB taps t0.. */
static inline __attribute__((always_inline)) void F(dw_tile)(const dw_args *a, int q0, int q1,
                                                             int i, int t0, int o0, float *dWp,
                                                             const int CO, const int TB) {
    vf acc[8][8];
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++) acc[k][o] = (vf){0};
    F(dw_accumulate)(a, q0, q1, i, t0, o0, acc, CO, TB);
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++)
            dWp[((size_t)i * a->T + t0 + k) * a->OC + o0 + o] += F(hsum)(acc[k][o]);
}

#define TB_OF(CO) ((DWACC / (CO)) >= 8 ? 8 : (DWACC / (CO)) < 1 ? 1 : DWACC / (CO))
/* Taps in near-equal chunks of at most TB (T = 7, TB = 4: 4 + 3, not
 * 4 + 1 + 1 + 1): a one-tap tile has too few accumulators to hide the FMA
 * latency, and each chunk is one more pass over X and D. */
#define TAP_CHUNKS(TB, CALL, CO)                                                          \
    {                                                                                 \
        int nch_ = (a->T + (TB) - 1) / (TB);                                          \
        for (int c_ = 0; c_ < nch_; c_++) {                                           \
            int t = a->T * c_ / nch_, tb = a->T * (c_ + 1) / nch_ - t;                \
            switch (tb) {                                                             \
            case 1: CALL(1, CO); break;                                                   \
            case 2: if (2 <= (TB)) CALL(2, CO); break;                                    \
            case 3: if (3 <= (TB)) CALL(3, CO); break;                                    \
            case 4: if (4 <= (TB)) CALL(4, CO); break;                                    \
            case 5: if (5 <= (TB)) CALL(5, CO); break;                                    \
            case 6: if (6 <= (TB)) CALL(6, CO); break;                                    \
            case 7: if (7 <= (TB)) CALL(7, CO); break;                                    \
            default: if (8 <= (TB)) CALL(8, CO); break;                                   \
            }                                                                         \
        }                                                                             \
    }
#define DEF_DW(CO)                                                                    \
    static void F(dw_##CO)(const dw_args *a, int q0, int q1, int o0, float *dWp) {    \
        enum { TB = TB_OF(CO) };                                                      \
        for (int i = 0; i < a->CI; i++) {                                             \
            _Pragma("GCC diagnostic push")                                            \
            _Pragma("GCC diagnostic ignored \"-Warray-bounds\"")                      \
            TAP_CHUNKS(TB, DW_CALL, CO)                                                   \
            _Pragma("GCC diagnostic pop")                                             \
        }                                                                             \
    }
#define DW_CALL(k, CO) F(dw_tile)(a, q0, q1, i, t, o0, dWp, CO, k)
DEF_DW(1) DEF_DW(2) DEF_DW(3) DEF_DW(4) DEF_DW(5) DEF_DW(6) DEF_DW(7) DEF_DW(8)

/* dWp += the weight gradient over positions [q0, q1) and blocks [blk0, blk1). */
static void F(dw)(const dw_args *a, int q0, int q1, float *dWp) {
    static void (*const fn[])(const dw_args *, int, int, int, float *) = {
        NULL, F(dw_1), F(dw_2), F(dw_3), F(dw_4), F(dw_5), F(dw_6), F(dw_7), F(dw_8)};
    int nch = (a->OC + 7) / 8;
    for (int c = 0, o0 = 0; c < nch; c++) {
        int co = (a->OC * (c + 1)) / nch - (a->OC * c) / nch;
        fn[co](a, q0, q1, o0, dWp);
        o0 += co;
    }
}

/* ---- weight gradient into lane-wise sums kept in memory (cnn) ----
 * accv[(i T + t) OC + o][lane] += sum over blocks [blk0, blk1) and positions
 * [q0, q1) of D[o][qbd[q]] * X[i][qb[q] + toff[t]]. The sums stay vectors
 * between calls, so a backward can run one block at a time with that
 * block's X and D hot in cache and reduce the lanes once at the end
 * (hsum_add). Per lane, the order of the additions is the one of dw over
 * the same blocks, so the result has the same bits. */
static inline __attribute__((always_inline)) void F(dwv_tile)(const dw_args *a, int q0, int q1,
                                                              int i, int t0, int o0, float *accv,
                                                              const int CO, const int TB) {
    vf acc[8][8];
    float *base = accv + (((size_t)i * a->T + t0) * a->OC + o0) * VB;
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++) acc[k][o] = LDA(base + ((size_t)k * a->OC + o) * VB);
    F(dw_accumulate)(a, q0, q1, i, t0, o0, acc, CO, TB);
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++) STA(base + ((size_t)k * a->OC + o) * VB, acc[k][o]);
}

#define DEF_DWV(CO)                                                                   \
    static void F(dwv_##CO)(const dw_args *a, int q0, int q1, int o0, float *accv) {  \
        enum { TB = TB_OF(CO) };                                                      \
        for (int i = 0; i < a->CI; i++) TAP_CHUNKS(TB, DWV_CALL, CO)                  \
    }
#define DWV_CALL(k, CO) F(dwv_tile)(a, q0, q1, i, t, o0, accv, CO, k)
DEF_DWV(1) DEF_DWV(2) DEF_DWV(3) DEF_DWV(4) DEF_DWV(5) DEF_DWV(6) DEF_DWV(7) DEF_DWV(8)

static void F(dwv)(const dw_args *a, int q0, int q1, float *accv) {
    static void (*const fn[])(const dw_args *, int, int, int, float *) = {
        NULL, F(dwv_1), F(dwv_2), F(dwv_3), F(dwv_4), F(dwv_5), F(dwv_6), F(dwv_7), F(dwv_8)};
    int nch = (a->OC + 7) / 8;
    for (int c = 0, o0 = 0; c < nch; c++) {
        int co = (a->OC * (c + 1)) / nch - (a->OC * c) / nch;
        fn[co](a, q0, q1, o0, accv);
        o0 += co;
    }
}

/* accb[o][lane] += sum over blocks and positions [q0, q1) of D[o][qbd[q]]
 * (the cnn bias gradient as lane sums; same order as db). */
static void F(dbv)(const dw_args *a, int q0, int q1, float *accb) {
    for (int o = 0; o < a->OC; o++) {
        vf s = LDA(accb + (size_t)o * VB);
        for (int blk = a->blk0; blk < a->blk1; blk++)
            for (int q = q0; q < q1; q++)
                s += LDA(a->D + (size_t)blk * a->dstride + ((size_t)o * a->Ppd + a->qbd[q]) * VB);
        STA(accb + (size_t)o * VB, s);
    }
}

/* dst[k] += the lane sum of acc[k], k < n. */
static void F(hsum_add)(const float *acc, size_t n, float *dst) {
    for (size_t k = 0; k < n; k++) dst[k] += F(hsum)(LDA(acc + k * VB));
}

/* db[(q) OC + o] += sum over blocks, positions, lanes of D[o][qb[q]] (per
 * position when lc, else summed into db[o]). */
static void F(db)(const dw_args *a, int q0, int q1, int lc, float *db) {
    for (int o = 0; o < a->OC; o++) {
        if (lc) {
            for (int q = q0; q < q1; q++) {
                vf s = (vf){0};
                for (int blk = a->blk0; blk < a->blk1; blk++)
                    s += LDA(a->D + (size_t)blk * a->dstride + ((size_t)o * a->Ppd + a->qbd[q]) * VB);
                db[(size_t)q * a->OC + o] += F(hsum)(s);
            }
        } else {
            vf s = (vf){0};
            for (int blk = a->blk0; blk < a->blk1; blk++)
                for (int q = q0; q < q1; q++)
                    s += LDA(a->D + (size_t)blk * a->dstride + ((size_t)o * a->Ppd + a->qbd[q]) * VB);
            db[o] += F(hsum)(s);
        }
    }
}

/* db[(q) T + t] += sum over blocks, positions, lanes of X[qb[q] + toff[t]]
 * (channel 0 of X; per position when lc): the interpolation's bias gradient. */
static void F(dbx)(const dw_args *a, int q0, int q1, int lc, float *db) {
    for (int t = 0; t < a->T; t++) {
        vf s = (vf){0};
        for (int q = q0; q < q1; q++) {
            if (lc) s = (vf){0};
            for (int blk = a->blk0; blk < a->blk1; blk++)
                s += LDA(a->X + (size_t)blk * a->xstride + (ptrdiff_t)(a->qb[q] + a->toff[t]) * VB);
            if (lc) db[(size_t)q * a->T + t] += F(hsum)(s);
        }
        if (!lc) db[t] += F(hsum)(s);
    }
}

/* ================= position-vectorised path (cnn, n a multiple of VB) =================
 * One sample at a time in its natural [C][P] layout: the input is copied with
 * its periodic halo into Xp[c][padded grid] and each vector holds VB
 * consecutive positions of a row (unaligned tap loads); no transposes. Here
 * conv_args.qb[q] is the padded offset (floats) of vector q's tap 0,
 * toff[t] a tap's offset, Pp the padded channel stride, Y the sample's output
 * ([OC][P]; or, with yq, Y[yq[q] + yo[o]] for vector q, channel o: a padded
 * layout, as the fused adjacent forward uses). */
static inline __attribute__((always_inline)) void F(pconv_tile)(const conv_args *a, int q, int o0,
                                                                const int CO, const int NP) {
    vf acc[4][COMAX];
    const int T = a->T, OC = a->OC;
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++)
#pragma GCC unroll 24
        for (int o = 0; o < CO; o++) acc[j][o] = a->bias ? F(splat)(a->bias[o0 + o]) : (vf){0};
    int qbj[4];
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) qbj[j] = a->qb[q + j];
    for (int i = 0; i < a->CI; i++) {
        const float *Xi = a->X + (size_t)i * a->Pp;
        const float *Wi = a->W + (size_t)i * T * OC + o0;
        for (int t = 0; t < T; t++) {
            vf x[4];
            int to = a->toff[t];
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) x[j] = F(ldu)(Xi + qbj[j] + to);
            const float *w = Wi + (size_t)t * OC;
#pragma GCC unroll 24
            for (int o = 0; o < CO; o++) {
                float wv = w[o];
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++) acc[j][o] += wv * x[j];
            }
        }
    }
#pragma GCC unroll 24
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            vf y = acc[j][o];
            if (a->relu) y = (vf)((vi)y & (y > 0));
            F(stu)(a->Y + (a->yq ? (size_t)a->yq[q + j] + a->yo[o0 + o]
                                 : (size_t)(o0 + o) * a->P + (size_t)(q + j) * VB), y);
        }
}

#define DEF_PCONV(CO)                                                                 \
    static void F(pconv_##CO)(const conv_args *a, int o0) {                           \
        enum { NP = NP_OF(CO) };                                                      \
        int nv = a->P / VB, q = 0;                                                    \
        for (; q + NP <= nv; q += NP) F(pconv_tile)(a, q, o0, CO, NP);                \
        for (; q < nv; q++) F(pconv_tile)(a, q, o0, CO, 1);                           \
    }
DEF_PCONV(1) DEF_PCONV(2) DEF_PCONV(3) DEF_PCONV(4) DEF_PCONV(5) DEF_PCONV(6) DEF_PCONV(7)
DEF_PCONV(8) DEF_PCONV(9) DEF_PCONV(10) DEF_PCONV(11) DEF_PCONV(12)
#if COMAX > 12
DEF_PCONV(13) DEF_PCONV(14) DEF_PCONV(15) DEF_PCONV(16)
#endif

static void F(pconv)(const conv_args *a) {
    static void (*const fn[])(const conv_args *, int) = {
        NULL, F(pconv_1), F(pconv_2), F(pconv_3), F(pconv_4), F(pconv_5), F(pconv_6),
        F(pconv_7), F(pconv_8), F(pconv_9), F(pconv_10), F(pconv_11), F(pconv_12),
#if COMAX > 12
        F(pconv_13), F(pconv_14), F(pconv_15), F(pconv_16),
#endif
    };
    F(conv_chunks)(a, fn);
}

/* Weight gradient, position-vectorised: samples [blk0, blk1) of padded X
 * (stride xstride) and padded D (stride dstride); D's vector q is at
 * qb[q] + Ppd (Ppd = the centre tap's offset). */
static inline __attribute__((always_inline)) void F(pdw_tile)(const dw_args *a, int i, int t0,
                                                              int o0, float *dWp, const int CO,
                                                              const int TB) {
    vf acc[8][8];
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++) acc[k][o] = (vf){0};
    int tk[8];
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++) tk[k] = a->toff[t0 + k];
    for (int blk = a->blk0; blk < a->blk1; blk++) {
        const float *Xi = a->X + (size_t)blk * a->xstride + (size_t)i * a->Pp;
        const float *Db = a->D + (size_t)blk * a->dstride + (size_t)o0 * a->Pp + a->Ppd;
        for (int q = 0; q < a->nvec; q++) {
            int qq = a->qb[q];
            vf d[8];
#pragma GCC unroll 8
            for (int o = 0; o < CO; o++) d[o] = F(ldu)(Db + (size_t)o * a->Pp + qq);
#pragma GCC unroll 8
            for (int k = 0; k < TB; k++) {
                vf x = F(ldu)(Xi + qq + tk[k]);
#pragma GCC unroll 8
                for (int o = 0; o < CO; o++) acc[k][o] += d[o] * x;
            }
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++)
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++)
            dWp[((size_t)i * a->T + t0 + k) * a->OC + o0 + o] += F(hsum)(acc[k][o]);
}

#define DEF_PDW(CO)                                                                   \
    static void F(pdw_##CO)(const dw_args *a, int o0, float *dWp) {                   \
        enum { TB = TB_OF(CO) };                                                      \
        for (int i = 0; i < a->CI; i++) TAP_CHUNKS(TB, PDW_CALL, CO)                      \
    }
#define PDW_CALL(k, CO) F(pdw_tile)(a, i, t, o0, dWp, CO, k)
DEF_PDW(1) DEF_PDW(2) DEF_PDW(3) DEF_PDW(4) DEF_PDW(5) DEF_PDW(6) DEF_PDW(7) DEF_PDW(8)

/* dWp += weight gradient, db += bias gradient (cnn) over samples [blk0, blk1). */
static void F(pdw)(const dw_args *a, float *dWp, float *db) {
    static void (*const fn[])(const dw_args *, int, float *) = {
        NULL, F(pdw_1), F(pdw_2), F(pdw_3), F(pdw_4), F(pdw_5), F(pdw_6), F(pdw_7), F(pdw_8)};
    int nch = (a->OC + 7) / 8;
    for (int c = 0, o0 = 0; c < nch; c++) {
        int co = (a->OC * (c + 1)) / nch - (a->OC * c) / nch;
        fn[co](a, o0, dWp);
        o0 += co;
    }
    for (int o = 0; o < a->OC; o++) {
        vf s = (vf){0};
        for (int blk = a->blk0; blk < a->blk1; blk++) {
            const float *Do = a->D + (size_t)blk * a->dstride + (size_t)o * a->Pp + a->Ppd;
            for (int q = 0; q < a->nvec; q++) s += F(ldu)(Do + a->qb[q]);
        }
        db[o] += F(hsum)(s);
    }
}

/* ================= lc, position-vectorised =================
 * Convolution with per-lane (per-position) weights over a group of ns padded
 * samples: Y[s][c][lanes of q] = act(bl[c][lanes] + sum_k sum_t
 * Wl[q][k][t][c][lanes] X[s][k][qoff[q] + toff[t] + lane]) for CO outputs c0..
 * and NS samples s0.. (both compile-time: NS x CO accumulators). The lc
 * forward (the accumulation order of conv_tile: bias, then inputs, then taps:
 * the same bits) and the lc input gradient (flipped taps, weights of the
 * source positions). With shared (cnn) weights Wl is [k][t][c] scalars and bl
 * [c] (the order of pconv_tile: the same bits).
 *
 * Unpadded rows (eidx set, 1D): X is the caller's [s][k][P] itself, toff
 * the signed tap offsets; a vector whose taps stay inside the row is one
 * unaligned load; the taps of the first and last vectors of the row (EDGE)
 * that wrap around are a lane shuffle of the two aligned vectors whose
 * concatenation holds the periodic window (needs nb <= VB). No padded copy
 * of the activations is made. */
static inline __attribute__((always_inline)) vf F(edge_tap)(const float *row, const int *elo,
                                                            const int *ehi, const int *eidx,
                                                            int t) {
    if (ehi[t] < 0) return F(ldu)(row + elo[t]); /* this tap does not wrap */
    vi ix;
    memcpy(&ix, eidx + (size_t)t * VB, sizeof ix);
    return __builtin_shuffle(F(ldu)(row + elo[t]), F(ldu)(row + ehi[t]), ix);
}

/* whether vector q of an unpadded row (eidx set) is an edge vector, the first
 * or the last: its tiles read the edge tables (e = 0 first, 1 last) */
static inline int F(is_edge)(const int *eidx, int q, int nvec) {
    return eidx && (q == 0 || q == nvec - 1);
}

static inline __attribute__((always_inline)) void F(lconv_tile)(const lconv_args *a, int s0, int q,
                                                                int c0, const int CO,
                                                                const int NS, const int SHARED,
                                                                const int EDGE) {
    vf acc[4][8];
    const float *bq = a->bl ? a->bl + (SHARED ? (size_t)c0 : (size_t)c0 * a->P + (size_t)q * VB)
                            : NULL;
#pragma GCC unroll 4
    for (int s = 0; s < NS; s++)
#pragma GCC unroll 8
        for (int c = 0; c < CO; c++)
            acc[s][c] = !bq ? (vf){0} : SHARED ? F(splat)(bq[c]) : LDA(bq + (size_t)c * a->P);
    const float *Xs = a->X + (size_t)s0 * a->xss + (EDGE ? 0 : a->qoff[q]);
    const int e = EDGE ? (q == 0 ? 0 : 1) : 0;
    const int *elo = EDGE ? a->elo + (size_t)e * a->T : NULL;
    const int *ehi = EDGE ? a->ehi + (size_t)e * a->T : NULL;
    /* vector q's weights are one contiguous [CI][T][COUT][VB] block: as a
     * [..][P] layout their rows were P floats apart and mapped to a quarter
     * of the L1 sets (n = 64), evicting each other between samples */
    const float *Wq = SHARED ? a->Wl + c0 : a->Wl + ((size_t)q * a->CI * a->T * a->COUT + c0) * VB;
    for (int k = 0; k < a->CI; k++)
        for (int t = 0; t < a->T; t++) {
            vf xv[4];
            const float *Xk = Xs + (size_t)k * a->Pp;
#pragma GCC unroll 4
            for (int s = 0; s < NS; s++)
                xv[s] = EDGE ? F(edge_tap)(Xk + (size_t)s * a->xss, elo, ehi, a->eidx, t)
                             : F(ldu)(Xk + a->toff[t] + (size_t)s * a->xss);
            const float *w = Wq + ((size_t)k * a->T + t) * a->COUT * (SHARED ? 1 : VB);
#pragma GCC unroll 8
            for (int c = 0; c < CO; c++) {
                if (SHARED) { /* a scalar operand: a broadcast load, not splat's add */
                    float wv = w[c];
#pragma GCC unroll 4
                    for (int s = 0; s < NS; s++) acc[s][c] += wv * xv[s];
                    continue;
                }
                vf wv = LDA(w + (size_t)c * VB);
#pragma GCC unroll 4
                for (int s = 0; s < NS; s++) acc[s][c] += wv * xv[s];
            }
        }
#pragma GCC unroll 4
    for (int s = 0; s < NS; s++)
#pragma GCC unroll 8
        for (int c = 0; c < CO; c++) {
            vf y = acc[s][c];
            if (a->relu) y = (vf)((vi)y & (y > 0));
            F(stu)(a->Y + (size_t)(s0 + s) * a->yss + (size_t)(c0 + c) * a->P + (size_t)q * VB, y);
        }
}

/* The samples of the group in tiles of NS (then single samples) at vector q. */
#define LCONV_SAMPLES(SH, ED)                                                         \
    {                                                                                 \
        int s = 0;                                                                    \
        for (; s + NS <= a->ns; s += NS) F(lconv_tile)(a, s, q, c0, CW, NS, SH, ED);  \
        for (; s < a->ns; s++) F(lconv_tile)(a, s, q, c0, CW, 1, SH, ED);             \
    }
#define NS_OF(CO) ((ACC / (CO)) >= 4 ? 4 : (ACC / (CO)) < 1 ? 1 : ACC / (CO))
#define DEF_LCONV(CO)                                                                 \
    static void F(lconv_##CO)(const lconv_args *a, int c0) {                          \
        enum { NS = NS_OF(CO), CW = CO };                                             \
        for (int q = a->q0; q < a->q1; q++) {                                         \
            int edge = F(is_edge)(a->eidx, q, a->nvec);                               \
            if (a->shared) {                                                          \
                if (edge) LCONV_SAMPLES(1, 1) else LCONV_SAMPLES(1, 0)                \
            } else {                                                                  \
                if (edge) LCONV_SAMPLES(0, 1) else LCONV_SAMPLES(0, 0)                \
            }                                                                         \
        }                                                                             \
    }
DEF_LCONV(1) DEF_LCONV(2) DEF_LCONV(3) DEF_LCONV(4) DEF_LCONV(5) DEF_LCONV(6) DEF_LCONV(7)
DEF_LCONV(8)

static void F(lconv)(const lconv_args *a) {
    static void (*const fn[])(const lconv_args *, int) = {
        NULL, F(lconv_1), F(lconv_2), F(lconv_3), F(lconv_4), F(lconv_5), F(lconv_6),
        F(lconv_7), F(lconv_8)};
    int nch = (a->COUT + 7) / 8;
    for (int c = 0, c0 = 0; c < nch; c++) {
        int co = (a->COUT * (c + 1)) / nch - (a->COUT * c) / nch;
        fn[co](a, c0);
        c0 += co;
    }
}

/* Weight gradient: dWt[o][i][t][lanes of q - q0] += sum_s D[s][o][qoff[q] + ctr + lane]
 * X[s][i][qoff[q] + toff[t] + lane] for CO channels o0.. and TB taps t0... */
static inline __attribute__((always_inline)) void F(lpv_dw_tile)(const lpv_args *a, int q, int i,
                                                                 int t0, int o0, const int CO,
                                                                 const int TB, const int EDGE) {
    vf acc[8][8];
    const size_t P = (size_t)a->srow, T = (size_t)a->T;
    float *base = a->dWt + (((size_t)o0 * a->CI + i) * T + t0) * P + (size_t)(q - a->q0) * VB;
#pragma GCC unroll 8
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 8
        for (int k = 0; k < TB; k++) acc[o][k] = LDA(base + ((size_t)o * a->CI * T + k) * P);
    int tk[8];
#pragma GCC unroll 8
    for (int k = 0; k < TB; k++) tk[k] = a->toff[t0 + k];
    const int e = EDGE ? (q == 0 ? 0 : 1) : 0;
    const int *elo = EDGE ? a->elo + (size_t)e * T : NULL, *ehi = EDGE ? a->ehi + (size_t)e * T : NULL;
    const float *Xi = a->X + (size_t)i * a->Pp, *Xq = Xi + a->qoff[q];
    const float *Dq = a->D + (size_t)o0 * a->Pp + a->qoff[q] + a->ctr;
    for (int s = 0; s < a->ns; s++) {
        /* TB tap vectors in registers, one gradient vector at a time
         * (TB + 1 live operands besides the accumulators) */
        vf x[8];
#pragma GCC unroll 8
        for (int k = 0; k < TB; k++)
            x[k] = EDGE ? F(edge_tap)(Xi + (size_t)s * a->xss, elo, ehi, a->eidx, t0 + k)
                        : F(ldu)(Xq + (size_t)s * a->xss + tk[k]);
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++) {
            vf d = F(ldu)(Dq + (size_t)s * a->dss + (size_t)o * a->Pp);
            /* keep d in a register: GCC otherwise folds this unaligned load
             * into each of the TB multiply-adds (TB loads instead of one) */
            __asm__("" : "+x"(d));
#pragma GCC unroll 8
            for (int k = 0; k < TB; k++) acc[o][k] += d * x[k];
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 8
        for (int k = 0; k < TB; k++) STA(base + ((size_t)o * a->CI * T + k) * P, acc[o][k]);
}

/* As many taps per tile as dw (TB_OF): one fewer (to leave a register for
 * the gradient operand) measured no faster (KS 1D lc, 1 thread), since the
 * operand is pinned in a register by the asm barrier in lpv_dw_tile. */
#define DEF_LDW(CO)                                                                   \
    static void F(lpv_dw_##CO)(const lpv_args *a, int o0) {                           \
        enum { TB = TB_OF(CO) };                                                      \
        for (int q = a->q0; q < a->q1; q++) {                                         \
            if (F(is_edge)(a->eidx, q, a->nvec))                                      \
                for (int i = 0; i < a->CI; i++) TAP_CHUNKS(TB, LDW_EDGE, CO)          \
            else                                                                      \
                for (int i = 0; i < a->CI; i++) TAP_CHUNKS(TB, LDW_CALL, CO)          \
        }                                                                             \
    }
#define LDW_CALL(k, CO) F(lpv_dw_tile)(a, q, i, t, o0, CO, k, 0)
#define LDW_EDGE(k, CO) F(lpv_dw_tile)(a, q, i, t, o0, CO, k, 1)
DEF_LDW(1) DEF_LDW(2) DEF_LDW(3) DEF_LDW(4) DEF_LDW(5) DEF_LDW(6) DEF_LDW(7) DEF_LDW(8)

/* The group's weight and bias gradient lane sums of the vectors [q0, q1). */
static void F(lpv_bwd)(const lpv_args *a) {
    static void (*const fw[])(const lpv_args *, int) = {
        NULL, F(lpv_dw_1), F(lpv_dw_2), F(lpv_dw_3), F(lpv_dw_4), F(lpv_dw_5),
        F(lpv_dw_6), F(lpv_dw_7), F(lpv_dw_8)};
    int nch = (a->OC + 7) / 8;
    for (int c = 0, o0 = 0; c < nch; c++) {
        int co = (a->OC * (c + 1)) / nch - (a->OC * c) / nch;
        fw[co](a, o0);
        o0 += co;
    }
    for (int o = 0; o < a->OC; o++)
        for (int q = a->q0; q < a->q1; q++) {
            float *bq = a->dbt + (size_t)o * a->srow + (size_t)(q - a->q0) * VB;
            vf sacc = LDA(bq);
            const float *Dq = a->D + (size_t)o * a->Pp + a->qoff[q] + a->ctr;
            for (int s = 0; s < a->ns; s++) sacc += F(ldu)(Dq + (size_t)s * a->dss);
            STA(bq, sacc);
        }
}

#include "cpu_dense_body.h"

static const simd_kernels F(kernels) = {
    .name = CK_STR(ISA), .vb = VB, .pad_row = F(pad_row), .pad_rows = F(pad_rows),
    .to_block = F(to_block), .grad_to_block = F(grad_to_block), .from_block = F(from_block),
    .conv = F(conv), .dw = F(dw), .db = F(db), .dbx = F(dbx),
    .pconv = F(pconv), .pdw = F(pdw),
    .dwv = F(dwv), .dbv = F(dbv), .hsum_add = F(hsum_add), .lpv_bwd = F(lpv_bwd), .lconv = F(lconv),
    .cols_to_rows = F(cols_to_rows), .add_rows_tr = F(add_rows_tr),
    .lc_bwd_windows = F(lc_bwd_windows),
    .dense_rows = F(dense_rows), .dense_grad_rows = F(dense_grad_rows),
    .dense_outer = F(dense_outer),
};

#undef vf
#undef vi
#undef LDA
#undef STA
#undef NP_OF
#undef TB_OF
#undef DEF_CONV
#undef DEF_DW
#undef DEF_PCONV
#undef DEF_PDW
#undef DEF_DWV
#undef DEF_LCONV
#undef DEF_LDW
#undef LDW_CALL
#undef LDW_EDGE
#undef LCONV_SAMPLES
#undef NS_OF
#undef DWV_CALL
#undef TAP_CHUNKS
#undef DW_CALL
#undef PDW_CALL
#undef F
