/* arch.h: MNN-H hyperparameters and the parameter layout.
 *
 * An mnnh_arch names a network (dim, N = 2^L m, r, K, variant, band sizes).
 * mnnh_param_table lists every weight and bias tensor in the order they sit
 * in the model's single contiguous parameter buffer, with the name of its
 * HDF5 dataset below /model and its C row-major shape (DESIGN.md, "The model"):
 *
 *   level{l}/restrict/{weight,bias}    cnn [r][s^d]    [r]      (lc: [n^d] prefix)
 *   level{l}/kernel{k}/{weight,bias}   cnn [r][r][w^d] [r]
 *   level{l}/interp/{weight,bias}      cnn [s^d][r]    [s^d]
 *   adjacent/kernel{k}/{weight,bias}   cnn [m^d][m^d][w_ad^d] [m^d]
 * where per-axis extents are written out (2D restrict is [r][s][s]). */
#ifndef MNNH_ARCH_H
#define MNNH_ARCH_H

#include <stddef.h>

#include "mnnh/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MNNH_MAX_L 16       /* levels are 2..L, L <= MNNH_MAX_L */
#define MNNH_MAX_DIMS 8     /* rank of the largest parameter tensor */
#define MNNH_NAME_LEN 64

typedef enum { MNNH_CNN = 0, MNNH_LC = 1 } mnnh_variant;

typedef struct {
    int dim;                 /* 1 or 2 */
    int N;                   /* grid points per axis, N = 2^L * m */
    int L, m, r, K;
    mnnh_variant variant;
    int nb[MNNH_MAX_L + 1];  /* kernel half-width per level, nb[2..L] used */
    int nb_ad;               /* adjacent kernel half-width */
} mnnh_arch;

/* Fill arch with the paper's defaults: N = 2^L m, nb(2) = 2, nb(l>=3) = 3,
 * nb_ad = 1. */
void mnnh_arch_set(mnnh_arch *a, int dim, int L, int m, int r, int K, mnnh_variant v);

/* Check every hyperparameter; the message names the bad one. */
mnnh_status mnnh_arch_validate(const mnnh_arch *a);

const char *mnnh_variant_name(mnnh_variant v);
mnnh_status mnnh_variant_parse(const char *s, mnnh_variant *v);

/* Grid points of one sample: N^dim. */
size_t mnnh_arch_grid_size(const mnnh_arch *a);

typedef struct {
    char name[MNNH_NAME_LEN]; /* "level2/kernel1/weight" */
    size_t offset;            /* in floats from the start of the buffer */
    size_t size;              /* number of floats */
    int ndims;
    int dims[MNNH_MAX_DIMS];
} mnnh_param_tensor;

typedef struct {
    int count;
    mnnh_param_tensor *t;
    size_t total;             /* total number of floats */
} mnnh_param_table;

mnnh_status mnnh_param_table_build(const mnnh_arch *a, mnnh_param_table *tab);
void mnnh_param_table_free(mnnh_param_table *tab);
/* Index of the tensor with this name, -1 if none. */
int mnnh_param_table_find(const mnnh_param_table *tab, const char *name);

/* Total parameter count (weights and biases) of a valid arch, 0 if invalid. */
size_t mnnh_arch_param_count(const mnnh_arch *a);

#ifdef __cplusplus
}
#endif
#endif
