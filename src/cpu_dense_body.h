/* cpu_dense_body.h: the vector kernels of the dense path for small locally
 * connected kernel layers, included by cpu_conv_body.h once per instruction
 * set (F, vf, vi, VB, ACC, LDA, STA, ldu, stu come from there).
 *
 * A locally connected layer with few positions against its taps (KS 1D lc
 * n = 4 and 8: 4 positions, 5 taps; 8 positions, 7 taps) is, per sample, one
 * small dense matrix: y = act(M x + b) with x the sample's [CI][P] row, y its
 * [OC][P] row and M[co P + p][ci P + src] the sum of the weights of the taps
 * of position p that read position src. Over the batch that is
 * Y[B][J] = act(X[B][K] M^T + b) with the samples as rows, in the caller's
 * own [B][C][P] layout: no transposes into sample-vector blocks, which cost
 * more than the arithmetic at these sizes (docs/performance.md). The host
 * side (cpu_kernels.c, kernel_fwd_dense / kernel_bwd_dense) builds the
 * matrix and splits the samples between threads.
 *
 * Row lengths J = OC P and K = CI P need not be multiples of VB: matrices
 * and the masked output gradient are stored with rows padded to whole
 * vectors (zeros beyond the row), and the caller's rows are read and
 * written with masked partial vectors at their ends (ld_part, st_part), so
 * nothing beyond a row is touched. */

/* The first n lanes of p (0 < n <= VB), the other lanes zero; never reads
 * beyond p + n. */
static inline vf F(ld_part)(const float *p, int n) {
#if defined(CK_X86) && VB == 16
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#elif defined(CK_X86) && VB == 8
    const vi lane = {0, 1, 2, 3, 4, 5, 6, 7};
    return (vf)_mm256_maskload_ps(p, (__m256i)(lane < n));
#else
    vf v = {0};
    for (int i = 0; i < n && i < VB; i++) v[i] = p[i]; /* i < VB: the bound gcc 13 cannot prove */
    return v;
#endif
}

/* Stores the first n lanes of v at p (0 < n <= VB); never writes beyond p + n. */
static inline void F(st_part)(float *p, vf v, int n) {
#if defined(CK_X86) && VB == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#elif defined(CK_X86) && VB == 8
    const vi lane = {0, 1, 2, 3, 4, 5, 6, 7};
    _mm256_maskstore_ps(p, (__m256i)(lane < n), (__m256)v);
#else
    for (int i = 0; i < n && i < VB; i++) p[i] = v[i];
#endif
}

/* Vector v of a caller's row of len floats (a masked partial load at its end). */
static inline __attribute__((always_inline)) vf F(ld_row)(const float *row, int v, int len) {
    return (v + 1) * VB <= len ? F(ldu)(row + v * VB) : F(ld_part)(row + v * VB, len - v * VB);
}

/* Samples per tile (and gradient rows per tile in dense_outer): the
 * accumulators NS x NV within the tile budget ACC, at most 8. */
#define DNS_OF(NV) ((ACC / (NV)) > 8 ? 8 : (ACC / (NV)) < 1 ? 1 : ACC / (NV))

/* Y[s][0..J) = act(bias + sum_k X[s][k] MT[k][0..J)) for NS samples s:
 * X rows xs floats apart (k < nk), MT [nk][NV VB] (zero beyond J), bias NV VB
 * floats or NULL, Y rows ys floats apart. One multiply-add chain per output,
 * k ascending, whatever NS: the same bits for a sample in any tile. */
static inline __attribute__((always_inline)) void F(dense_tile)(const float *X, size_t xs, int nk,
                                                                const float *MT,
                                                                const float *bias, int J,
                                                                int relu, float *Y, size_t ys,
                                                                const int NV, const int NS) {
    vf acc[8][8];
#pragma GCC unroll 8
    for (int s = 0; s < NS; s++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[s][v] = bias ? LDA(bias + v * VB) : (vf){0};
    for (int k = 0; k < nk; k++) {
        vf m[8];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) m[v] = LDA(MT + ((size_t)k * NV + v) * VB);
#pragma GCC unroll 8
        for (int s = 0; s < NS; s++) {
            float x = X[(size_t)s * xs + k];
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[s][v] += x * m[v];
        }
    }
#pragma GCC unroll 8
    for (int s = 0; s < NS; s++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            vf y = acc[s][v];
            if (relu) y = (vf)((vi)y & (y > 0));
            float *yp = Y + (size_t)s * ys + v * VB;
            if ((v + 1) * VB <= J) F(stu)(yp, y);
            else F(st_part)(yp, y, J - v * VB);
        }
}

#define DEF_DENSE_ROWS(NV)                                                                  \
    static void F(dense_rows_##NV)(const float *X, size_t xs, int nk, const float *MT,      \
                                   const float *bias, int J, int relu, float *Y, size_t ys, \
                                   int ns) {                                               \
        enum { NS = DNS_OF(NV) };                                                          \
        int s = 0;                                                                         \
        for (; s + NS <= ns; s += NS)                                                      \
            F(dense_tile)(X + s * xs, xs, nk, MT, bias, J, relu, Y + s * ys, ys, NV, NS);  \
        for (; s < ns; s++)                                                                \
            F(dense_tile)(X + s * xs, xs, nk, MT, bias, J, relu, Y + s * ys, ys, NV, 1);   \
    }
DEF_DENSE_ROWS(1) DEF_DENSE_ROWS(2) DEF_DENSE_ROWS(3) DEF_DENSE_ROWS(4) DEF_DENSE_ROWS(5)
DEF_DENSE_ROWS(6) DEF_DENSE_ROWS(7) DEF_DENSE_ROWS(8)

/* ns rows: Y = act(X MT + bias) (above), NV = ceil(J / VB) <= 8. */
static void F(dense_rows)(const float *X, size_t xs, int nk, const float *MT, const float *bias,
                          int J, int relu, float *Y, size_t ys, int ns) {
    static void (*const fn[])(const float *, size_t, int, const float *, const float *, int, int,
                              float *, size_t, int) = {
        NULL, F(dense_rows_1), F(dense_rows_2), F(dense_rows_3), F(dense_rows_4),
        F(dense_rows_5), F(dense_rows_6), F(dense_rows_7), F(dense_rows_8)};
    fn[(J + VB - 1) / VB](X, xs, nk, MT, bias, J, relu, Y, ys, ns);
}

/* D[s][0..NV VB) = the output gradient row s where the forward's output is
 * positive (relu) or all of it, zero beyond J; out, dout rows J floats apart. */
static void F(dense_grad_rows)(const float *out, const float *dout, int relu, int J, int ns,
                               float *D) {
    const int NV = (J + VB - 1) / VB;
    for (int s = 0; s < ns; s++) {
        const float *o = out + (size_t)s * J, *d = dout + (size_t)s * J;
        for (int v = 0; v < NV; v++) {
            vf g = F(ld_row)(d, v, J);
            if (relu) g = (vf)((vi)g & (F(ld_row)(o, v, J) > 0));
            STA(D + ((size_t)s * NV + v) * VB, g);
        }
    }
}

/* dMT[k][0..NV VB) += sum_s X[s][k] D[s][0..NV VB) for the KT rows k0..:
 * the weight gradient of the dense matrix as outer products, summed over the
 * ns samples in registers (s ascending). */
static inline __attribute__((always_inline)) void F(dense_outer_tile)(const float *X, size_t xs,
                                                                      int k0, const float *D,
                                                                      int ns, float *dMT,
                                                                      const int NV, const int KT) {
    vf acc[8][8];
#pragma GCC unroll 8
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[k][v] = LDA(dMT + ((size_t)(k0 + k) * NV + v) * VB);
    for (int s = 0; s < ns; s++) {
        vf d[8];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) d[v] = LDA(D + ((size_t)s * NV + v) * VB);
        const float *x = X + (size_t)s * xs + k0;
#pragma GCC unroll 8
        for (int k = 0; k < KT; k++) {
            float xk = x[k];
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[k][v] += xk * d[v];
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) STA(dMT + ((size_t)(k0 + k) * NV + v) * VB, acc[k][v]);
}

#define DEF_DENSE_OUTER(NV)                                                                \
    static void F(dense_outer_##NV)(const float *X, size_t xs, int nk, const float *D,     \
                                    int ns, float *dMT) {                                 \
        enum { KT = DNS_OF(NV) };                                                         \
        int k = 0;                                                                        \
        for (; k + KT <= nk; k += KT) F(dense_outer_tile)(X, xs, k, D, ns, dMT, NV, KT);  \
        for (; k < nk; k++) F(dense_outer_tile)(X, xs, k, D, ns, dMT, NV, 1);             \
    }
DEF_DENSE_OUTER(1) DEF_DENSE_OUTER(2) DEF_DENSE_OUTER(3) DEF_DENSE_OUTER(4) DEF_DENSE_OUTER(5)
DEF_DENSE_OUTER(6) DEF_DENSE_OUTER(7) DEF_DENSE_OUTER(8)

/* dMT[k][..] += sum_s X[s][k] D[s][..] for k < nk, and db[0..NV VB) += the
 * column sums of D; D rows NV VB floats (dense_grad_rows), NV <= 8. */
static void F(dense_outer)(const float *X, size_t xs, int nk, const float *D, int J, int ns,
                           float *dMT, float *db) {
    static void (*const fn[])(const float *, size_t, int, const float *, int, float *) = {
        NULL, F(dense_outer_1), F(dense_outer_2), F(dense_outer_3), F(dense_outer_4),
        F(dense_outer_5), F(dense_outer_6), F(dense_outer_7), F(dense_outer_8)};
    const int NV = (J + VB - 1) / VB;
    fn[NV](X, xs, nk, D, ns, dMT);
    for (int v = 0; v < NV; v++) {
        vf acc = LDA(db + v * VB);
        for (int s = 0; s < ns; s++) acc += LDA(D + ((size_t)s * NV + v) * VB);
        STA(db + v * VB, acc);
    }
}

#undef DNS_OF
#undef DEF_DENSE_ROWS
#undef DEF_DENSE_OUTER
