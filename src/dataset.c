/* dataset.c: HDF5 dataset files: writer, validating reader, describe (dataset.h). */
#include "mnnh/dataset.h"
#include "mnnh/model_io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DS_MAXRANK 3

struct mnnh_dataset_writer {
    hid_t file, input, output, eig, res, gap, iters;
    mnnh_dataset_meta meta;
    char path[512];
};

/* HDF5 prints its error stack on every failed call; the library reports
 * through mnnh_error_set instead, so printing is off while we call it. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

static void quiet_on(h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_off(const h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* ------------------------------------------------------------ attributes */

/* n = 1 is a scalar, as in h5py's view of these attributes */
static mnnh_status attr_write(hid_t loc, const char *name, hid_t type, int n, const void *v) {
    return mnnh_h5_attr_write(loc, name, type, type, n == 1 ? 0 : n, v);
}

static mnnh_status attr_string(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return mnnh_error_set(MNNH_ERR_IO, "cannot make a string type for '%s'", name);
    H5Tset_size(t, H5T_VARIABLE); /* variable-length UTF-8: h5py reads a str */
    H5Tset_cset(t, H5T_CSET_UTF8);
    mnnh_status st = attr_write(loc, name, t, 1, &value);
    H5Tclose(t);
    return st;
}

static mnnh_status meta_write(hid_t f, const mnnh_dataset_meta *m) {
    uint64_t seed = m->seed;
    MNNH_TRY(attr_string(f, "equation", m->equation));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "dim", m->dim));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "N", m->N));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "samples", m->samples));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "first_sample", m->first_sample));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "n_g", m->n_g));
    MNNH_TRY(mnnh_h5_attr_write_i64(f, "n_e", m->n_e));
    MNNH_TRY(attr_write(f, "seed", H5T_NATIVE_UINT64, 1, &seed));
    MNNH_TRY(attr_write(f, "domain", H5T_NATIVE_DOUBLE, 2, m->domain));
    MNNH_TRY(attr_string(f, "boundary", "periodic"));
    /* Grid spacing and cell volume dx^dim: the density layer's sum(rho) dx^d = n_e. */
    double dx = (m->domain[1] - m->domain[0]) / m->N;
    MNNH_TRY(mnnh_h5_attr_write_f64(f, "dx", dx));
    MNNH_TRY(mnnh_h5_attr_write_f64(f, "cell_volume", m->dim == 1 ? dx : dx * dx));
    MNNH_TRY(mnnh_h5_attr_write_f64(f, "tol", m->tol));
    MNNH_TRY(attr_string(f, "generator", m->generator));
    if (strcmp(m->equation, "ks") == 0) {
        MNNH_TRY(attr_string(f, "preset", m->preset));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "sigma", m->sigma));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "box", m->box));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "separation", m->separation));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "depth_min", m->depth_min));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "depth_max", m->depth_max));
    } else {
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "beta", m->beta));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "rho_min", m->rho_min));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "rho_max", m->rho_max));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "T_min", m->T_min));
        MNNH_TRY(mnnh_h5_attr_write_f64(f, "T_max", m->T_max));
    }
    return MNNH_OK;
}

/* ------------------------------------------------------------ writer */

static hid_t make_dset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || dcpl < 0) return -1;
    /* Every element is written once: no fill pass (it would serialise on rank 0). */
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

static void writer_release(mnnh_dataset_writer *w) {
    hid_t *ids[] = {&w->input, &w->output, &w->eig, &w->res, &w->gap, &w->iters};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] >= 0) H5Dclose(*ids[i]);
}

mnnh_status mnnh_dataset_create(const char *path, hid_t fapl, const mnnh_dataset_meta *meta,
                                mnnh_dataset_writer **out) {
    *out = NULL;
    if (meta->dim != 1 && meta->dim != 2)
        return mnnh_error_set(MNNH_ERR_ARG, "%s: dim must be 1 or 2", path);
    mnnh_dataset_writer *w = calloc(1, sizeof *w);
    if (!w) return mnnh_error_set(MNNH_ERR_NOMEM, "%s: out of memory", path);
    w->input = w->output = w->eig = w->res = w->gap = w->iters = -1;
    w->meta = *meta;
    snprintf(w->path, sizeof w->path, "%s", path);
    h5_quiet q;
    quiet_on(&q);
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    quiet_off(&q);
    if (w->file < 0) {
        free(w);
        return mnnh_error_set(MNNH_ERR_IO, "cannot create '%s'", path);
    }
    mnnh_status st = meta_write(w->file, meta);
    hsize_t S = (hsize_t)meta->samples, N = (hsize_t)meta->N;
    hsize_t dims[3] = {S, N, N}, vdims[2] = {S, (hsize_t)meta->nval};
    if (st == MNNH_OK) {
        w->input = make_dset(w->file, "input", H5T_IEEE_F32LE, 1 + meta->dim, dims);
        w->output = make_dset(w->file, "output", H5T_IEEE_F32LE, 1 + meta->dim, dims);
        w->eig = make_dset(w->file, "eigenvalues", H5T_IEEE_F64LE, 2, vdims);
        w->res = make_dset(w->file, "residuals", H5T_IEEE_F64LE, 2, vdims);
        w->iters = make_dset(w->file, "iterations", H5T_STD_I32LE, 1, dims);
        if (strcmp(meta->equation, "ks") == 0)
            w->gap = make_dset(w->file, "gap", H5T_IEEE_F64LE, 1, dims);
        if (w->input < 0 || w->output < 0 || w->eig < 0 || w->res < 0 || w->iters < 0 ||
            (strcmp(meta->equation, "ks") == 0 && w->gap < 0))
            st = mnnh_error_set(MNNH_ERR_IO, "cannot create the datasets");
    }
    if (st != MNNH_OK) {
        writer_release(w);
        H5Fclose(w->file);
        free(w);
        return mnnh_error_prefix(st, "%s", path);
    }
    *out = w;
    return MNNH_OK;
}

/* Write rows [start, start+count) of d from buf (row = `row` elements). */
static herr_t write_rows(hid_t d, hid_t type, int64_t start, int64_t count, const void *buf,
                         hid_t dxpl) {
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[DS_MAXRANK], off[DS_MAXRANK] = {0}, cnt[DS_MAXRANK];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 0; i < rank; i++) cnt[i] = dims[i];
    off[0] = (hsize_t)start;
    cnt[0] = (hsize_t)count;
    hid_t ms;
    if (count > 0) {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        ms = H5Screate_simple(rank, cnt, NULL);
    } else { /* empty share: take part in the collective call with nothing selected */
        H5Sselect_none(fs);
        hsize_t one = 1;
        ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_none(ms);
    }
    static const float dummy[1] = {0};
    herr_t e = ms < 0 ? -1 : H5Dwrite(d, type, ms, fs, dxpl, count > 0 ? buf : (const void *)dummy);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return e;
}

mnnh_status mnnh_dataset_write(mnnh_dataset_writer *w, int64_t start, int64_t count,
                               const float *input, const float *output, const double *eig,
                               const double *res, const double *gap, const int *iters, hid_t dxpl) {
    if (start < 0 || count < 0 || start + count > w->meta.samples)
        return mnnh_error_set(MNNH_ERR_ARG, "%s: rows [%lld, %lld) outside [0, %lld)", w->path,
                              (long long)start, (long long)(start + count), (long long)w->meta.samples);
    h5_quiet q;
    quiet_on(&q);
    herr_t e = 0;
    e |= write_rows(w->input, H5T_NATIVE_FLOAT, start, count, input, dxpl) < 0;
    e |= write_rows(w->output, H5T_NATIVE_FLOAT, start, count, output, dxpl) < 0;
    e |= write_rows(w->eig, H5T_NATIVE_DOUBLE, start, count, eig, dxpl) < 0;
    e |= write_rows(w->res, H5T_NATIVE_DOUBLE, start, count, res, dxpl) < 0;
    e |= write_rows(w->iters, H5T_NATIVE_INT, start, count, iters, dxpl) < 0;
    if (w->gap >= 0) e |= write_rows(w->gap, H5T_NATIVE_DOUBLE, start, count, gap, dxpl) < 0;
    quiet_off(&q);
    if (e)
        return mnnh_error_set(MNNH_ERR_IO, "%s: writing samples [%lld, %lld) failed", w->path,
                              (long long)start, (long long)(start + count));
    return MNNH_OK;
}

mnnh_status mnnh_dataset_writer_close(mnnh_dataset_writer *w) {
    if (!w) return MNNH_OK;
    writer_release(w);
    h5_quiet q;
    quiet_on(&q);
    herr_t e = H5Fclose(w->file);
    quiet_off(&q);
    mnnh_status st = e < 0 ? mnnh_error_set(MNNH_ERR_IO, "%s: finishing the file failed (disk full or file size limit?)", w->path)
                           : MNNH_OK;
    free(w);
    return st;
}

/* ------------------------------------------------------------ reading */

/* Read a numeric scalar attribute as double; 0 when absent. */
static int attr_num(hid_t loc, const char *name, double *v) {
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    int ok = 0;
    if (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) {
        double buf[4];
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        if (n >= 1 && n <= 4 && H5Aread(a, H5T_NATIVE_DOUBLE, buf) >= 0) {
            *v = buf[0];
            ok = 1;
        }
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* Read a string attribute (variable or fixed length) into buf; 0 when absent. */
static int attr_str(hid_t loc, const char *name, char *buf, size_t len) {
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    int ok = 0;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL; /* read with the file's own type: HDF5 does not convert charsets */
            if (H5Aread(a, t, &s) >= 0 && s) {
                snprintf(buf, len, "%s", s);
                H5free_memory(s);
                ok = 1;
            }
        } else {
            size_t sz = H5Tget_size(t);
            char *s = calloc(sz + 1, 1);
            if (s && H5Aread(a, t, s) >= 0) {
                snprintf(buf, len, "%s", s);
                ok = 1;
            }
            free(s);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static void meta_read(hid_t f, mnnh_dataset_meta *m) {
    double v;
    memset(m, 0, sizeof *m);
    attr_str(f, "equation", m->equation, sizeof m->equation);
    attr_str(f, "generator", m->generator, sizeof m->generator);
    attr_str(f, "preset", m->preset, sizeof m->preset);
    if (attr_num(f, "dim", &v)) m->dim = (int)v;
    if (attr_num(f, "N", &v)) m->N = (int)v;
    if (attr_num(f, "samples", &v)) m->samples = (int64_t)v;
    if (attr_num(f, "first_sample", &v)) m->first_sample = (int64_t)v;
    if (attr_num(f, "n_g", &v)) m->n_g = (int)v;
    if (attr_num(f, "n_e", &v)) m->n_e = (int)v;
    if (H5Aexists(f, "seed") > 0) {
        hid_t a = H5Aopen(f, "seed", H5P_DEFAULT);
        if (a >= 0) {
            H5Aread(a, H5T_NATIVE_UINT64, &m->seed);
            H5Aclose(a);
        }
    }
    if (H5Aexists(f, "domain") > 0) {
        hid_t a = H5Aopen(f, "domain", H5P_DEFAULT);
        hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
        if (sp >= 0 && H5Sget_simple_extent_npoints(sp) == 2) H5Aread(a, H5T_NATIVE_DOUBLE, m->domain);
        if (sp >= 0) H5Sclose(sp);
        if (a >= 0) H5Aclose(a);
    }
    attr_num(f, "tol", &m->tol);
    attr_num(f, "sigma", &m->sigma);
    attr_num(f, "box", &m->box);
    attr_num(f, "separation", &m->separation);
    attr_num(f, "depth_min", &m->depth_min);
    attr_num(f, "depth_max", &m->depth_max);
    attr_num(f, "beta", &m->beta);
    attr_num(f, "rho_min", &m->rho_min);
    attr_num(f, "rho_max", &m->rho_max);
    attr_num(f, "T_min", &m->T_min);
    attr_num(f, "T_max", &m->T_max);
}

/* Check one sample dataset: float32, rank 2 or 3 (square); shape out. */
static mnnh_status check_sample_dset(hid_t d, const char *path, const char *name, int *rank,
                                     hsize_t *dims) {
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    mnnh_status st = MNNH_OK;
    if (t < 0 || sp < 0) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s: cannot read its type or shape", path, name);
    } else if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s is not float32", path, name);
    } else {
        *rank = H5Sget_simple_extent_ndims(sp);
        if (*rank != 2 && *rank != 3)
            st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s has rank %d (expected [S][N] or [S][N][N])",
                                path, name, *rank);
        else {
            H5Sget_simple_extent_dims(sp, dims, NULL);
            if (*rank == 3 && dims[1] != dims[2])
                st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s is [%llu][%llu][%llu], not square", path,
                                    name, (unsigned long long)dims[0], (unsigned long long)dims[1],
                                    (unsigned long long)dims[2]);
        }
    }
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static mnnh_status dataset_validate(mnnh_dataset *ds, int flags) {
    const char *path = ds->path;
    if (H5Lexists(ds->file, "input", H5P_DEFAULT) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no /input dataset (not an mnnh dataset file)", path);
    int has_out = H5Lexists(ds->file, "output", H5P_DEFAULT) > 0;
    if (!has_out && !(flags & MNNH_DATASET_INPUT_ONLY))
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no /output dataset", path);
    ds->input = H5Dopen2(ds->file, "input", H5P_DEFAULT);
    if (ds->input < 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: cannot open /input", path);
    int rank, orank;
    hsize_t dims[DS_MAXRANK] = {0}, odims[DS_MAXRANK] = {0};
    MNNH_TRY(check_sample_dset(ds->input, path, "input", &rank, dims));
    if (has_out) {
        ds->output = H5Dopen2(ds->file, "output", H5P_DEFAULT);
        if (ds->output < 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: cannot open /output", path);
        MNNH_TRY(check_sample_dset(ds->output, path, "output", &orank, odims));
        if (orank != rank || memcmp(dims, odims, sizeof dims) != 0)
            return mnnh_error_set(MNNH_ERR_FORMAT, "%s: /input and /output shapes differ", path);
    }
    ds->dim = rank - 1;
    ds->N = (int)dims[1];
    ds->samples = (int64_t)dims[0];
    ds->sample_size = ds->dim == 1 ? ds->N : (int64_t)ds->N * ds->N;
    if (ds->meta.dim && ds->meta.dim != ds->dim)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute dim=%d but /input is %dD", path,
                              ds->meta.dim, ds->dim);
    if (ds->meta.N && ds->meta.N != ds->N)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute N=%d but /input has N=%d", path,
                              ds->meta.N, ds->N);
    if (ds->samples < 1) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: /input holds no samples", path);
    ds->meta.dim = ds->dim;
    ds->meta.N = ds->N;
    ds->meta.samples = ds->samples;
    return MNNH_OK;
}

void mnnh_dataset_close(mnnh_dataset *ds) {
    if (!ds) return;
    if (ds->input >= 0) H5Dclose(ds->input);
    if (ds->output >= 0) H5Dclose(ds->output);
    if (ds->file >= 0) H5Fclose(ds->file);
    free(ds);
}

mnnh_status mnnh_dataset_open_fapl(const char *path, int flags, hid_t fapl, mnnh_dataset **out) {
    *out = NULL;
    mnnh_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return mnnh_error_set(MNNH_ERR_NOMEM, "%s: out of memory", path);
    ds->file = ds->input = ds->output = -1;
    snprintf(ds->path, sizeof ds->path, "%s", path);
    h5_quiet q;
    quiet_on(&q);
    mnnh_status st = MNNH_OK;
    htri_t is = H5Fis_hdf5(path);
    if (is < 0) {
        st = mnnh_error_set(MNNH_ERR_IO, "%s: cannot open (no such file or not readable)", path);
    } else if (is == 0) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: not an HDF5 file", path);
    } else {
        ds->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (ds->file < 0) st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: cannot open as HDF5 (truncated or corrupted?)", path);
    }
    if (st == MNNH_OK) {
        meta_read(ds->file, &ds->meta);
        st = dataset_validate(ds, flags);
    }
    quiet_off(&q);
    if (st != MNNH_OK) {
        mnnh_dataset_close(ds);
        return st;
    }
    *out = ds;
    return MNNH_OK;
}

mnnh_status mnnh_dataset_open(const char *path, int flags, mnnh_dataset **out) {
    return mnnh_dataset_open_fapl(path, flags, H5P_DEFAULT, out);
}

static herr_t read_rows(hid_t d, int dim, int64_t start, int64_t count, float *buf, hid_t dxpl) {
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    int rank = dim + 1;
    hsize_t dims[DS_MAXRANK], off[DS_MAXRANK] = {0}, cnt[DS_MAXRANK];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 0; i < rank; i++) cnt[i] = dims[i];
    off[0] = (hsize_t)start;
    cnt[0] = (hsize_t)count;
    hid_t ms;
    static float dummy[1];
    if (count > 0) {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        ms = H5Screate_simple(rank, cnt, NULL);
    } else {
        H5Sselect_none(fs);
        hsize_t one = 1;
        ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_none(ms);
        buf = dummy;
    }
    herr_t e = ms < 0 ? -1 : H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return e;
}

/* First non-finite value: its sample index and position, or -1. */
static int64_t find_nonfinite(const float *buf, int64_t count, int64_t size, int64_t *pos) {
    for (int64_t s = 0; s < count; s++)
        for (int64_t i = 0; i < size; i++)
            if (!isfinite(buf[s * size + i])) {
                *pos = i;
                return s;
            }
    return -1;
}

mnnh_status mnnh_dataset_read_dxpl(mnnh_dataset *ds, int64_t start, int64_t count, float *input,
                                   float *output, hid_t dxpl) {
    if (start < 0 || count < 0 || start + count > ds->samples)
        return mnnh_error_set(MNNH_ERR_ARG, "%s: samples [%lld, %lld) outside [0, %lld)", ds->path,
                              (long long)start, (long long)(start + count), (long long)ds->samples);
    if (output && ds->output < 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no /output dataset", ds->path);
    const char *names[2] = {"input", "output"};
    hid_t ids[2] = {ds->input, ds->output};
    float *bufs[2] = {input, output};
    for (int k = 0; k < 2; k++) {
        if (!bufs[k]) continue;
        h5_quiet q;
        quiet_on(&q);
        herr_t e = read_rows(ids[k], ds->dim, start, count, bufs[k], dxpl);
        quiet_off(&q);
        if (e < 0)
            return mnnh_error_set(MNNH_ERR_IO, "%s: reading /%s samples [%lld, %lld) failed", ds->path,
                                  names[k], (long long)start, (long long)(start + count));
        int64_t pos, bad = find_nonfinite(bufs[k], count, ds->sample_size, &pos);
        if (bad >= 0)
            return mnnh_error_set(MNNH_ERR_NUMERIC, "%s: /%s sample %lld holds a NaN or Inf (at point %lld)",
                                  ds->path, names[k], (long long)(start + bad), (long long)pos);
    }
    return MNNH_OK;
}

mnnh_status mnnh_dataset_read(mnnh_dataset *ds, int64_t start, int64_t count, float *input,
                              float *output) {
    return mnnh_dataset_read_dxpl(ds, start, count, input, output, H5P_DEFAULT);
}

/* ------------------------------------------------------------ describe */

static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    FILE *out = op;
    char s[256];
    if (attr_str(loc, name, s, sizeof s)) {
        fprintf(out, "attr %s: %s\n", name, s);
        return 0;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
    double v[16];
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    int is_int = t >= 0 && H5Tget_class(t) == H5T_INTEGER, is_unsigned = is_int && H5Tget_sign(t) == H5T_SGN_NONE;
    if (t >= 0) H5Tclose(t);
    if (is_int && n >= 1 && n <= 16) { /* integers exactly (a 64-bit seed does not fit a double) */
        unsigned long long u[16];
        long long *l = (long long *)u;
        if (H5Aread(a, is_unsigned ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG, u) >= 0) {
            fprintf(out, "attr %s:", name);
            for (hssize_t i = 0; i < n; i++)
                is_unsigned ? fprintf(out, " %llu", u[i]) : fprintf(out, " %lld", l[i]);
            fputc('\n', out);
        }
    } else if (n >= 1 && n <= 16 && H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0) {
        fprintf(out, "attr %s:", name);
        for (hssize_t i = 0; i < n; i++) fprintf(out, " %.10g", v[i]);
        fputc('\n', out);
    } else {
        fprintf(out, "attr %s: (%lld values)\n", name, (long long)n);
    }
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return 0;
}

typedef struct {
    double min, max, sum;
    int64_t n;
} range_acc;

static void range_add(range_acc *r, const double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < r->min) r->min = v[i];
        if (v[i] > r->max) r->max = v[i];
        r->sum += v[i];
    }
    r->n += n;
}

/* Shape, type and min/max/mean of any numeric dataset, read in blocks of rows. */
static mnnh_status describe_dset(hid_t f, const char *name, const char *path, FILE *out) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return MNNH_OK;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: cannot open /%s", path, name);
    hid_t t = H5Dget_type(d), fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[DS_MAXRANK] = {0};
    mnnh_status st = MNNH_OK;
    if (rank < 1 || rank > DS_MAXRANK) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /%s has rank %d", path, name, rank);
        goto done;
    }
    H5Sget_simple_extent_dims(fs, dims, NULL);
    const char *tn = H5Tget_class(t) == H5T_FLOAT ? (H5Tget_size(t) == 4 ? "float32" : "float64")
                                                  : (H5Tget_class(t) == H5T_INTEGER ? "int" : "other");
    fprintf(out, "dataset /%s: %s [", name, tn);
    for (int i = 0; i < rank; i++) fprintf(out, "%s%llu", i ? "][" : "", (unsigned long long)dims[i]);
    fprintf(out, "]\n");
    hsize_t row = 1;
    for (int i = 1; i < rank; i++) row *= dims[i];
    hsize_t block = row > (1u << 20) ? 1 : (1u << 20) / row; /* about 8 MB of doubles at a time */
    double *buf = malloc(block * row * sizeof(double));
    if (!buf) {
        st = mnnh_error_set(MNNH_ERR_NOMEM, "%s: out of memory describing /%s", path, name);
        goto done;
    }
    range_acc r = {INFINITY, -INFINITY, 0, 0};
    int64_t nonfinite = -1;
    for (hsize_t s = 0; s < dims[0] && st == MNNH_OK; s += block) {
        hsize_t cnt[DS_MAXRANK], off[DS_MAXRANK] = {s, 0, 0};
        for (int i = 0; i < rank; i++) cnt[i] = dims[i];
        cnt[0] = dims[0] - s < block ? dims[0] - s : block;
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        hid_t ms = H5Screate_simple(rank, cnt, NULL);
        if (H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf) < 0)
            st = mnnh_error_set(MNNH_ERR_IO, "%s: reading /%s failed", path, name);
        H5Sclose(ms);
        for (hsize_t i = 0; st == MNNH_OK && i < cnt[0] * row && nonfinite < 0; i++)
            if (!isfinite(buf[i])) nonfinite = (int64_t)(s + i / row);
        if (st == MNNH_OK) range_add(&r, buf, (int64_t)(cnt[0] * row));
    }
    free(buf);
    if (st == MNNH_OK) {
        fprintf(out, "range /%s: min %.6g max %.6g mean %.6g\n", name, r.min, r.max,
                r.n ? r.sum / r.n : 0.0);
        if (nonfinite >= 0) fprintf(out, "warning /%s: sample %lld holds a NaN or Inf\n", name, (long long)nonfinite);
    }
done:
    H5Tclose(t);
    H5Sclose(fs);
    H5Dclose(d);
    return st;
}

mnnh_status mnnh_dataset_describe(const char *path, FILE *out) {
    mnnh_dataset *ds;
    MNNH_TRY(mnnh_dataset_open(path, MNNH_DATASET_INPUT_ONLY, &ds));
    fprintf(out, "file: %s\nkind: dataset\n", path);
    fprintf(out, "equation: %s\n", ds->meta.equation[0] ? ds->meta.equation : "(unknown)");
    fprintf(out, "dim: %d\nN: %d\nsamples: %lld\n", ds->dim, ds->N, (long long)ds->samples);
    h5_quiet q;
    quiet_on(&q);
    hsize_t idx = 0;
    H5Aiterate2(ds->file, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, out);
    static const char *names[] = {"input", "output", "eigenvalues", "residuals", "gap", "iterations", "prediction"};
    mnnh_status st = MNNH_OK;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && st == MNNH_OK; i++)
        st = describe_dset(ds->file, names[i], path, out);
    quiet_off(&q);
    mnnh_dataset_close(ds);
    return st;
}
