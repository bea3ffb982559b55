/* shard.c: collective sharded reading of a dataset with parallel HDF5, and
 * the training-set normalisation statistics reduced across ranks.
 *
 * Every step that can fail on one rank only is followed by mnnh_comm_agree,
 * so a bad file stops every rank with the same message instead of leaving
 * some of them waiting in the next collective. */
#include "shard.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnnh/model_io.h"

/* Record an HDF5 failure with the most specific message of its stack. */
static mnnh_status shard_h5_fail(mnnh_status st, const char *what, const char *path) {
    char detail[512];
    mnnh_h5_error_detail(detail, sizeof detail);
    if (detail[0]) return mnnh_error_set(st, "%s: %s (%s)", path, what, detail);
    return mnnh_error_set(st, "%s: %s", path, what);
}

#define H5_CHECK(call, st, what)                                          \
    do {                                                                  \
        if ((call) < 0) return shard_h5_fail((st), (what), sh->path);     \
    } while (0)

void mnnh_shard_range(int64_t S, int P, int r, int64_t *start, int64_t *count) {
    int64_t a = S * (int64_t)r / P, b = S * (int64_t)(r + 1) / P;
    *start = a;
    *count = b - a;
}

typedef struct {
    hid_t fapl, file, dxpl;
    hid_t dset[2];
} shard_h5;

static void shard_h5_close(shard_h5 *h) {
    for (int i = 0; i < 2; i++)
        if (h->dset[i] >= 0) H5Dclose(h->dset[i]);
    if (h->dxpl >= 0) H5Pclose(h->dxpl);
    if (h->file >= 0) H5Fclose(h->file);
    if (h->fapl >= 0) H5Pclose(h->fapl);
}

/* Open the file with the MPI-IO driver (collective). */
static mnnh_status shard_open(mnnh_shard *sh, const mnnh_comm *c, shard_h5 *h) {
    h->fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK(h->fapl, MNNH_ERR_INTERNAL, "H5Pcreate(file access)");
    H5_CHECK(H5Pset_fapl_mpio(h->fapl, c->world, MPI_INFO_NULL), MNNH_ERR_INTERNAL,
             "H5Pset_fapl_mpio");
    h->file = H5Fopen(sh->path, H5F_ACC_RDONLY, h->fapl);
    H5_CHECK(h->file, MNNH_ERR_FORMAT, "cannot open HDF5 file: truncated or corrupted");
    h->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5_CHECK(h->dxpl, MNNH_ERR_INTERNAL, "H5Pcreate(transfer)");
    H5_CHECK(H5Pset_dxpl_mpio(h->dxpl, H5FD_MPIO_COLLECTIVE), MNNH_ERR_INTERNAL,
             "H5Pset_dxpl_mpio(collective)");
    return MNNH_OK;
}

/* Check one of /input, /output: a float dataset [S][N] or [S][N][N]. */
static mnnh_status shard_check_dataset(mnnh_shard *sh, hid_t file, const char *name,
                                       const mnnh_arch *arch, hid_t *dset, int64_t *S) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no dataset /%s", sh->path, name);
    *dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (*dset < 0) return shard_h5_fail(MNNH_ERR_FORMAT, "cannot open dataset", sh->path);
    hid_t type = H5Dget_type(*dset), space = H5Dget_space(*dset);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    if (nd >= 1 && nd <= 4) H5Sget_simple_extent_dims(space, dims, NULL);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (cls != H5T_FLOAT)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s is not a floating-point dataset", sh->path, name);
    char got[96] = "", want[64];
    for (int d = 0; d < nd && d < 4; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "[%llu]", (unsigned long long)dims[d]);
    snprintf(want, sizeof want, arch->dim == 2 ? "[S][%d][%d]" : "[S][%d]", arch->N, arch->N);
    if (nd != arch->dim + 1)
        return mnnh_error_set(MNNH_ERR_FORMAT,
                              "%s: /%s has shape %s, but the %dD model (N=%d) expects %s",
                              sh->path, name, got, arch->dim, arch->N, want);
    for (int d = 1; d < nd; d++)
        if (dims[d] != (hsize_t)arch->N)
            return mnnh_error_set(MNNH_ERR_ARG,
                                  "%s: /%s has a grid of %llu points per axis (shape %s) but the "
                                  "model has N = 2^L m = 2^%d * %d = %d, shape %s (check --L and --m)",
                                  sh->path, name, (unsigned long long)dims[d], got, arch->L, arch->m,
                                  arch->N, want);
    *S = (int64_t)dims[0];
    return MNNH_OK;
}

/* A numeric root attribute as double; 0 when absent or not numeric. */
static double shard_attr_number(hid_t file, const char *name, int index) {
    if (H5Aexists(file, name) <= 0) return 0;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    double v[16] = {0};
    H5T_class_t cls = H5Tget_class(t);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    double out = 0;
    if ((cls == H5T_FLOAT || cls == H5T_INTEGER) && n >= 1 && n <= 16 && index < n &&
        H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0)
        out = v[index];
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return out;
}

/* n_e and the cell volume from the dataset's root attributes: `cell_volume`, or
 * dx^d from `dx`, or
 * `box` (length per axis), or `domain` ([lo, hi] or a length). */
static void shard_read_attrs(mnnh_shard *sh, hid_t file) {
    sh->n_e = shard_attr_number(file, "n_e", 0);
    double dx = shard_attr_number(file, "dx", 0);
    if (!(dx > 0)) {
        double box = shard_attr_number(file, "box", 0);
        if (!(box > 0) && H5Aexists(file, "domain") > 0) {
            double lo = shard_attr_number(file, "domain", 0), hi = shard_attr_number(file, "domain", 1);
            box = hi > lo ? hi - lo : lo;
        }
        if (box > 0) dx = box / sh->N;
    }
    sh->cell_volume = dx > 0 ? pow(dx, sh->dim) : 0;
    double cv = shard_attr_number(file, "cell_volume", 0); /* mnnh generate writes it */
    if (cv > 0) sh->cell_volume = cv;
}

static mnnh_status shard_check(mnnh_shard *sh, const mnnh_comm *c, shard_h5 *h, const char *opt,
                               const mnnh_arch *arch, int with_output) {
    int64_t S_in = 0, S_out = 0;
    MNNH_TRY(shard_check_dataset(sh, h->file, "input", arch, &h->dset[0], &S_in));
    if (with_output) {
        MNNH_TRY(shard_check_dataset(sh, h->file, "output", arch, &h->dset[1], &S_out));
        if (S_in != S_out)
            return mnnh_error_set(MNNH_ERR_FORMAT, "%s: /input holds %lld samples but /output %lld",
                                  sh->path, (long long)S_in, (long long)S_out);
    }
    if (S_in < c->size)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "%s %s: %lld sample(s) for %d ranks: every rank needs at least one "
                              "(use fewer ranks or a larger dataset)",
                              opt, sh->path, (long long)S_in, c->size);
    sh->total = S_in;
    shard_read_attrs(sh, h->file);
    mnnh_shard_range(S_in, c->size, c->rank, &sh->start, &sh->count);
    return MNNH_OK;
}

/* One collective read of rows [start, start+count) of dset into buf. */
static mnnh_status shard_read_rows(mnnh_shard *sh, const shard_h5 *h, hid_t dset, float *buf) {
    hsize_t off[3] = {(hsize_t)sh->start, 0, 0};
    hsize_t cnt[3] = {(hsize_t)sh->count, (hsize_t)sh->N, (hsize_t)sh->N};
    int nd = sh->dim + 1;
    hid_t fs = H5Dget_space(dset);
    H5_CHECK(fs, MNNH_ERR_FORMAT, "H5Dget_space");
    hid_t ms = H5Screate_simple(nd, cnt, NULL);
    herr_t e = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0) e = H5Dread(dset, H5T_NATIVE_FLOAT, ms, fs, h->dxpl, buf);
    mnnh_status st = e < 0 ? shard_h5_fail(MNNH_ERR_FORMAT, "cannot read its shard (corrupted?)",
                                            sh->path)
                           : MNNH_OK;
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return st;
}

/* The first sample of the shard holding a NaN or Inf, named by its global index. */
static mnnh_status shard_check_finite(const mnnh_shard *sh, const float *x, const char *name) {
    for (int64_t i = 0; i < sh->count; i++) {
        const float *row = x + (size_t)i * sh->grid;
        for (size_t j = 0; j < sh->grid; j++)
            if (!isfinite(row[j]))
                return mnnh_error_set(MNNH_ERR_FORMAT,
                                      "%s: /%s sample %lld holds a non-finite value (%s at "
                                      "grid point %zu)",
                                      sh->path, name, (long long)(sh->start + i),
                                      isnan(row[j]) ? "NaN" : "Inf", j);
    }
    return MNNH_OK;
}

static mnnh_status shard_read(mnnh_shard *sh, const shard_h5 *h, int with_output) {
    size_t n = (size_t)sh->count * sh->grid;
    sh->input = malloc(n * sizeof(float));
    if (with_output) sh->output = malloc(n * sizeof(float));
    if (!sh->input || (with_output && !sh->output))
        return mnnh_error_set(MNNH_ERR_NOMEM, "%s: shard of %lld samples (%zu MiB)", sh->path,
                              (long long)sh->count, (n * sizeof(float)) >> 20);
    MNNH_TRY(shard_read_rows(sh, h, h->dset[0], sh->input));
    if (with_output) MNNH_TRY(shard_read_rows(sh, h, h->dset[1], sh->output));
    return MNNH_OK;
}

static mnnh_status shard_precheck(mnnh_shard *sh, const char *path, const char *opt) {
    if (!path || !path[0]) return mnnh_error_set(MNNH_ERR_ARG, "%s: no file given", opt);
    if (strlen(path) >= sizeof sh->path)
        return mnnh_error_set(MNNH_ERR_ARG, "%s: path too long", opt);
    hid_t f;
    /* gives the precise message (missing, unreadable, not HDF5, truncated) */
    mnnh_status st = mnnh_h5_open_read(path, &f);
    if (st) return mnnh_error_prefix(st, "%s", opt);
    H5Fclose(f);
    return MNNH_OK;
}

/* Name the option in a local failure, then agree on it across ranks. */
static mnnh_status shard_agree(const mnnh_comm *c, const char *opt, mnnh_status st) {
    if (st && strncmp(mnnh_error_msg(), opt, strlen(opt)) != 0) mnnh_error_prefix(st, "%s", opt);
    return mnnh_comm_agree(c, st);
}

mnnh_status mnnh_shard_probe(const char *path, const char *opt, int *dim, int *N) {
    mnnh_shard tmp;
    MNNH_TRY(shard_precheck(&tmp, path, opt));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s %s: cannot open HDF5 file", opt, path);
    mnnh_status st = MNNH_OK;
    hid_t d = H5Lexists(f, "input", H5P_DEFAULT) > 0 ? H5Dopen2(f, "input", H5P_DEFAULT) : -1;
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    if (nd >= 1 && nd <= 4) H5Sget_simple_extent_dims(s, dims, NULL);
    if (d < 0)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s %s: no dataset /input", opt, path);
    else if (nd != 2 && nd != 3)
        st = mnnh_error_set(MNNH_ERR_FORMAT,
                            "%s %s: /input has %d dimensions, expected [S][N] (1D) or [S][N][N] (2D)",
                            opt, path, nd);
    else if (nd == 3 && dims[1] != dims[2])
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s %s: /input is %llu x %llu per sample, expected N x N",
                            opt, path, (unsigned long long)dims[1], (unsigned long long)dims[2]);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    *dim = nd - 1;
    *N = (int)dims[1];
    return st;
}

mnnh_status mnnh_shard_load(mnnh_shard *sh, const mnnh_comm *c, const char *path, const char *opt,
                            const mnnh_arch *arch, int with_output) {
    memset(sh, 0, sizeof *sh);
    mnnh_h5_quiet();
    mnnh_status st = shard_precheck(sh, path, opt);
    MNNH_TRY(mnnh_comm_agree(c, st));
    snprintf(sh->path, sizeof sh->path, "%s", path);
    sh->dim = arch->dim;
    sh->N = arch->N;
    sh->grid = mnnh_arch_grid_size(arch);
    shard_h5 h = {.fapl = -1, .file = -1, .dxpl = -1, .dset = {-1, -1}};
    st = shard_agree(c, opt, shard_open(sh, c, &h));
    if (!st) st = shard_agree(c, opt, shard_check(sh, c, &h, opt, arch, with_output));
    /* the read is collective: every rank gets here or none does */
    if (!st) st = shard_agree(c, opt, shard_read(sh, &h, with_output));
    if (!st) {
        st = shard_check_finite(sh, sh->input, "input");
        if (!st && with_output) st = shard_check_finite(sh, sh->output, "output");
        st = shard_agree(c, opt, st);
    }
    shard_h5_close(&h);
    if (st) mnnh_shard_free(sh);
    return st;
}

void mnnh_shard_free(mnnh_shard *sh) {
    free(sh->input);
    free(sh->output);
    sh->input = sh->output = NULL;
    sh->count = 0;
}

mnnh_status mnnh_shard_norm_stats(const mnnh_comm *c, const mnnh_shard *sh, mnnh_norm *norm) {
    double s[3] = {0, 0, (double)sh->count * (double)sh->grid};
    size_t n = (size_t)sh->count * sh->grid;
    for (size_t i = 0; i < n; i++) s[0] += sh->input[i];
    if (sh->output)
        for (size_t i = 0; i < n; i++) s[1] += sh->output[i];
    MNNH_TRY(mnnh_comm_sum_doubles(c, s, 3));
    double mean_in = s[0] / s[2], mean_out = s[1] / s[2];
    if (!(fabs(mean_in) > 1e-30) || !isfinite(mean_in))
        return mnnh_error_set(MNNH_ERR_FORMAT,
                              "%s: the mean of /input is %g: cannot normalise x/(2 mean) - 0.5 "
                              "(use --no-normalize)",
                              sh->path, mean_in);
    norm->input_scale = (float)(1.0 / (2.0 * mean_in));
    norm->input_shift = -0.5f;
    norm->output_shift = (float)mean_out;
    return MNNH_OK;
}
