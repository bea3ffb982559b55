/* arch.c: hyperparameter validation and the parameter table. */
#include "mnnh/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mnnh_arch_set(mnnh_arch *a, int dim, int L, int m, int r, int K, mnnh_variant v) {
    memset(a, 0, sizeof *a);
    a->dim = dim;
    a->L = L;
    a->m = m;
    a->r = r;
    a->K = K;
    a->variant = v;
    a->N = (L >= 0 && L < 31 && m > 0) ? (1 << L) * m : 0;
    for (int l = 2; l <= MNNH_MAX_L; l++) a->nb[l] = l == 2 ? 2 : 3;
    a->nb_ad = 1;
}

const char *mnnh_variant_name(mnnh_variant v) { return v == MNNH_LC ? "lc" : "cnn"; }

mnnh_status mnnh_variant_parse(const char *s, mnnh_variant *v) {
    if (s && !strcmp(s, "cnn")) *v = MNNH_CNN;
    else if (s && !strcmp(s, "lc")) *v = MNNH_LC;
    else return mnnh_error_set(MNNH_ERR_ARG, "unknown variant '%s' (expected cnn or lc)", s ? s : "");
    return MNNH_OK;
}

mnnh_status mnnh_arch_validate(const mnnh_arch *a) {
    if (a->dim != 1 && a->dim != 2)
        return mnnh_error_set(MNNH_ERR_ARG, "dim=%d: must be 1 or 2", a->dim);
    if (a->L < 2 || a->L > MNNH_MAX_L)
        return mnnh_error_set(MNNH_ERR_ARG, "L=%d: must be between 2 and %d", a->L, MNNH_MAX_L);
    if (a->m < 1) return mnnh_error_set(MNNH_ERR_ARG, "m=%d: must be >= 1", a->m);
    if (a->r < 1) return mnnh_error_set(MNNH_ERR_ARG, "r=%d: must be >= 1", a->r);
    if (a->K < 1) return mnnh_error_set(MNNH_ERR_ARG, "K=%d: must be >= 1", a->K);
    if (a->variant != MNNH_CNN && a->variant != MNNH_LC)
        return mnnh_error_set(MNNH_ERR_ARG, "variant=%d: must be cnn or lc", (int)a->variant);
    if ((long long)a->N != (1LL << a->L) * a->m)
        return mnnh_error_set(MNNH_ERR_ARG, "N=%d does not equal 2^L*m = 2^%d*%d = %lld", a->N,
                              a->L, a->m, (1LL << a->L) * a->m);
    /* A kernel may be wider than its level (the paper's nb = 2 on the 4
     * positions of level 2): periodic taps then read a position twice. */
    if (a->nb_ad < 0 || a->nb_ad > 64)
        return mnnh_error_set(MNNH_ERR_ARG, "nb_ad=%d: must be between 0 and 64", a->nb_ad);
    for (int l = 2; l <= a->L; l++)
        if (a->nb[l] < 0 || a->nb[l] > 64)
            return mnnh_error_set(MNNH_ERR_ARG, "nb at level %d = %d: must be between 0 and 64",
                                  l, a->nb[l]);
    double grid = 1;
    for (int d = 0; d < a->dim; d++) grid *= a->N;
    if (grid > 1e9) return mnnh_error_set(MNNH_ERR_ARG, "N=%d in %dD is too large", a->N, a->dim);
    return MNNH_OK;
}

size_t mnnh_arch_grid_size(const mnnh_arch *a) {
    return a->dim == 2 ? (size_t)a->N * a->N : (size_t)a->N;
}

static size_t ipow(size_t b, int e) {
    size_t p = 1;
    while (e-- > 0) p *= b;
    return p;
}

/* Append a tensor: an optional position prefix (lc), then the per-axis shape. */
static mnnh_status table_add(mnnh_param_table *tab, int cap, const char *name, int local,
                             int dim, int n, const int *shape, int nshape) {
    if (tab->count >= cap) return mnnh_error_set(MNNH_ERR_INTERNAL, "param table overflow");
    mnnh_param_tensor *t = &tab->t[tab->count++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndims = 0;
    t->size = 1;
    if (local)
        for (int d = 0; d < dim; d++) t->dims[t->ndims++] = n, t->size *= (size_t)n;
    for (int i = 0; i < nshape; i++) t->dims[t->ndims++] = shape[i], t->size *= (size_t)shape[i];
    t->offset = tab->total;
    tab->total += t->size;
    return MNNH_OK;
}

/* Shapes with per-axis extents spelt out: a "block" of s^d is [s] or [s][s]. */
static int shape_block(int *out, int dim, int s) {
    for (int d = 0; d < dim; d++) out[d] = s;
    return dim;
}

static mnnh_status table_add_kernels(mnnh_param_table *tab, int cap, const char *prefix,
                                     const mnnh_arch *a, int n, int c, int nb) {
    char name[MNNH_NAME_LEN];
    int sh[MNNH_MAX_DIMS], k;
    int local = a->variant == MNNH_LC;
    for (k = 1; k <= a->K; k++) {
        sh[0] = c;
        sh[1] = c;
        int ns = 2 + shape_block(sh + 2, a->dim, 2 * nb + 1);
        snprintf(name, sizeof name, "%s/kernel%d/weight", prefix, k);
        MNNH_TRY(table_add(tab, cap, name, local, a->dim, n, sh, ns));
        snprintf(name, sizeof name, "%s/kernel%d/bias", prefix, k);
        MNNH_TRY(table_add(tab, cap, name, local, a->dim, n, sh, 1));
    }
    return MNNH_OK;
}

mnnh_status mnnh_param_table_build(const mnnh_arch *a, mnnh_param_table *tab) {
    memset(tab, 0, sizeof *tab);
    MNNH_TRY(mnnh_arch_validate(a));
    int cap = (a->L + 1) * (2 * a->K + 4) + 2 * a->K + 4;
    tab->t = calloc((size_t)cap, sizeof *tab->t);
    if (!tab->t) return mnnh_error_set(MNNH_ERR_NOMEM, "param table of %d tensors", cap);
    int local = a->variant == MNNH_LC;
    char prefix[32], name[MNNH_NAME_LEN];
    int sh[MNNH_MAX_DIMS], ns;
    mnnh_status st = MNNH_OK;
    for (int l = 2; l <= a->L && st == MNNH_OK; l++) {
        int n = 1 << l, s = a->N >> l;
        snprintf(prefix, sizeof prefix, "level%d", l);
        sh[0] = a->r;
        ns = 1 + shape_block(sh + 1, a->dim, s);
        snprintf(name, sizeof name, "%s/restrict/weight", prefix);
        st = table_add(tab, cap, name, local, a->dim, n, sh, ns);
        snprintf(name, sizeof name, "%s/restrict/bias", prefix);
        if (!st) st = table_add(tab, cap, name, local, a->dim, n, sh, 1);
        if (!st) st = table_add_kernels(tab, cap, prefix, a, n, a->r, a->nb[l]);
        ns = shape_block(sh, a->dim, s);
        sh[ns] = a->r;
        snprintf(name, sizeof name, "%s/interp/weight", prefix);
        if (!st) st = table_add(tab, cap, name, local, a->dim, n, sh, ns + 1);
        snprintf(name, sizeof name, "%s/interp/bias", prefix);
        if (!st) st = table_add(tab, cap, name, local, a->dim, n, sh, ns);
    }
    if (!st) st = table_add_kernels(tab, cap, "adjacent", a, 1 << a->L,
                                    (int)ipow((size_t)a->m, a->dim), a->nb_ad);
    if (st) mnnh_param_table_free(tab);
    return st;
}

void mnnh_param_table_free(mnnh_param_table *tab) {
    free(tab->t);
    memset(tab, 0, sizeof *tab);
}

int mnnh_param_table_find(const mnnh_param_table *tab, const char *name) {
    for (int i = 0; i < tab->count; i++)
        if (!strcmp(tab->t[i].name, name)) return i;
    return -1;
}

size_t mnnh_arch_param_count(const mnnh_arch *a) {
    mnnh_param_table tab;
    if (mnnh_param_table_build(a, &tab) != MNNH_OK) return 0;
    size_t n = tab.total;
    mnnh_param_table_free(&tab);
    return n;
}
