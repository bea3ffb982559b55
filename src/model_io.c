/* model_io.c: the model file (HDF5): /model attributes and float32 datasets,
 * validated reading, atomic save (temp file, flush, fsync, rename, fsync of
 * the directory), and the batched prediction loop over a dataset's /input.
 *
 * Every HDF5 call is checked; HDF5's own error printing is turned off and the
 * most specific message of its error stack is appended to ours, so a user sees
 * "m.h5: cannot read dataset /model/level2/kernel1/weight (data error detected
 * by Fletcher32 checksum)" rather than a trace. */
#include "mnnh/model_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_CAP_BYTES (4u << 20) /* chunks of at most 4 MiB */

/* ---------------------------------------------------------------- errors */

void mnnh_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char *buf;
    size_t len;
} err_walk_ctx;

static herr_t err_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    err_walk_ctx *c = data;
    if (n == 0 && e->desc) snprintf(c->buf, c->len, "%s", e->desc);
    return 0;
}

const char *mnnh_h5_error_detail(char *buf, size_t len) {
    if (!len) return buf;
    buf[0] = '\0';
    err_walk_ctx c = {buf, len};
    /* Walking upward starts at the innermost error: where HDF5 found it. */
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, err_walk_cb, &c) < 0) buf[0] = '\0';
    return buf;
}

/* Record st with "<printf message> (<hdf5 detail>)". */
static mnnh_status h5_fail(mnnh_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static mnnh_status h5_fail(mnnh_status st, const char *fmt, ...) {
    char msg[1024], detail[512];
    mnnh_h5_error_detail(detail, sizeof detail);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (detail[0]) return mnnh_error_set(st, "%s (%s)", msg, detail);
    return mnnh_error_set(st, "%s", msg);
}

/* The file's name, for messages. */
static const char *h5_name(hid_t loc, char *buf, size_t len) {
    ssize_t n = H5Fget_name(loc, buf, len);
    if (n < 0) snprintf(buf, len, "(unnamed HDF5 file)");
    return buf;
}

/* ---------------------------------------------------------------- files */

static hid_t h5_untimed_plist(hid_t cls);

mnnh_status mnnh_h5_open_read(const char *path, hid_t *file) {
    *file = H5I_INVALID_HID;
    mnnh_h5_quiet();
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return mnnh_error_set(e == ENOENT || e == ENOTDIR ? MNNH_ERR_ARG : MNNH_ERR_IO,
                              "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) return mnnh_error_set(MNNH_ERR_ARG, "%s: is a directory", path);
    if (access(path, R_OK) != 0)
        return mnnh_error_set(MNNH_ERR_IO, "%s: %s", path, strerror(errno));
    htri_t is = H5Fis_hdf5(path);
    if (is == 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: not an HDF5 file", path);
    if (is < 0) return h5_fail(MNNH_ERR_FORMAT, "%s: cannot read the HDF5 signature", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return h5_fail(MNNH_ERR_FORMAT, "%s: cannot open HDF5 file: truncated or corrupted", path);
    *file = f;
    return MNNH_OK;
}

static mnnh_status fsync_path(const char *path, int directory) {
    int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
    if (fd < 0) return mnnh_error_set(MNNH_ERR_IO, "%s: cannot open for fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems refuse fsync on directories (EINVAL): nothing to do there. */
    if (rc != 0 && !(directory && (e == EINVAL || e == EBADF)))
        return mnnh_error_set(MNNH_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return MNNH_OK;
}

static void dir_of(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

mnnh_status mnnh_h5_atomic_open(mnnh_h5_atomic *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->file = H5I_INVALID_HID;
    mnnh_h5_quiet();
    if (strlen(path) >= sizeof a->path)
        return mnnh_error_set(MNNH_ERR_ARG, "output path too long (%zu characters)", strlen(path));
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return h5_fail(MNNH_ERR_IO, "H5Pcreate(file access) failed");
    /* Format 1.10 objects carry metadata checksums too; STRONG close makes
     * H5Fclose write everything even if a caller leaked a handle. */
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return h5_fail(MNNH_ERR_INTERNAL, "cannot set HDF5 file access properties");
    }
    /* The file creation list also creates the root group: no times there. */
    hid_t fcpl = h5_untimed_plist(H5P_FILE_CREATE);
    a->file = fcpl < 0 ? H5I_INVALID_HID : H5Fcreate(a->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    mnnh_status st = MNNH_OK;
    if (a->file < 0) /* before H5Pclose, which would clear HDF5's error stack */
        st = h5_fail(MNNH_ERR_IO, "%s: cannot create temporary file %s", path, a->tmp);
    if (fcpl >= 0) H5Pclose(fcpl);
    H5Pclose(fapl);
    return st;
}

mnnh_status mnnh_h5_atomic_commit(mnnh_h5_atomic *a) {
    char dir[4096];
    if (a->file < 0) return mnnh_error_set(MNNH_ERR_INTERNAL, "%s: atomic file not open", a->path);
    herr_t fl = H5Fflush(a->file, H5F_SCOPE_GLOBAL);
    herr_t cl = H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (fl < 0 || cl < 0) {
        mnnh_status st = h5_fail(MNNH_ERR_IO, "%s: cannot flush/close %s", a->path, a->tmp);
        unlink(a->tmp);
        return st;
    }
    mnnh_status st = fsync_path(a->tmp, 0);
    if (st) {
        unlink(a->tmp);
        return st;
    }
    if (rename(a->tmp, a->path) != 0) {
        st = mnnh_error_set(MNNH_ERR_IO, "%s: cannot rename %s over it: %s", a->path, a->tmp,
                            strerror(errno));
        unlink(a->tmp);
        return st;
    }
    /* The rename is durable only once the directory entry is on disk. */
    dir_of(a->path, dir, sizeof dir);
    return fsync_path(dir, 1);
}

void mnnh_h5_atomic_abort(mnnh_h5_atomic *a) {
    if (a->file >= 0) H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (a->tmp[0]) unlink(a->tmp);
}

/* ---------------------------------------------------------------- datasets */

/* Object creation properties without modification times, so that the same
 * model gives a byte-identical file. */
static hid_t h5_untimed_plist(hid_t cls) {
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_obj_track_times(p, 0) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* Create a group without modification times. */
static hid_t h5_group_create(hid_t loc, const char *name) {
    hid_t gcpl = h5_untimed_plist(H5P_GROUP_CREATE);
    if (gcpl < 0) return H5I_INVALID_HID;
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* Create the missing parent groups of a relative path "a/b/name". */
static herr_t h5_make_parents(hid_t loc, const char *name) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        htri_t ex = H5Lexists(loc, buf, H5P_DEFAULT);
        if (ex < 0) return -1;
        if (!ex) {
            hid_t g = h5_group_create(loc, buf);
            if (g < 0) return -1;
            H5Gclose(g);
        }
        *p = '/';
    }
    return 0;
}

mnnh_status mnnh_h5_create_f32(hid_t loc, const char *name, int ndims, const hsize_t *dims,
                               hsize_t chunk_rows, hid_t *dset) {
    hsize_t chunk[MNNH_MAX_DIMS + 1] = {0};
    *dset = H5I_INVALID_HID;
    if (ndims < 1 || ndims > MNNH_MAX_DIMS + 1)
        return mnnh_error_set(MNNH_ERR_INTERNAL, "dataset %s: rank %d", name, ndims);
    /* Whole tensor per chunk, then shrink leading axes under the cap. */
    double bytes = 4;
    for (int i = 0; i < ndims; i++) chunk[i] = dims[i] ? dims[i] : 1, bytes *= (double)chunk[i];
    if (chunk_rows > 0 && chunk_rows < chunk[0]) {
        bytes = bytes / (double)chunk[0] * (double)chunk_rows;
        chunk[0] = chunk_rows;
    }
    for (int i = 0; i < ndims && bytes > CHUNK_CAP_BYTES; i++) {
        double rest = bytes / (double)chunk[i];
        hsize_t c = (hsize_t)(CHUNK_CAP_BYTES / rest);
        chunk[i] = c ? c : 1;
        bytes = rest * (double)chunk[i];
    }
    mnnh_status st = MNNH_OK;
    hid_t space = H5Screate_simple(ndims, dims, NULL);
    hid_t dcpl = h5_untimed_plist(H5P_DATASET_CREATE);
    if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, ndims, chunk) < 0 ||
        H5Pset_fletcher32(dcpl) < 0) {
        st = h5_fail(MNNH_ERR_INTERNAL, "cannot set up dataset creation properties");
    } else {
        if (h5_make_parents(loc, name) >= 0)
            *dset = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (*dset < 0) {
            char fn[1024];
            st = h5_fail(MNNH_ERR_IO, "%s: cannot create dataset %s", h5_name(loc, fn, sizeof fn),
                     name);
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return st;
}

/* ---------------------------------------------------------------- attribute writers */

mnnh_status mnnh_h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n,
                               const void *val) {
    hsize_t dims = (hsize_t)n;
    hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, NULL);
    if (space < 0) return h5_fail(MNNH_ERR_INTERNAL, "H5Screate failed");
    mnnh_status st = MNNH_OK;
    hid_t at = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, mtype, val) < 0) {
        char fn[1024];
        st = h5_fail(MNNH_ERR_IO, "%s: cannot write attribute %s", h5_name(loc, fn, sizeof fn),
                 name);
    }
    if (at >= 0) H5Aclose(at);
    H5Sclose(space);
    return st;
}

static mnnh_status attr_write_int(hid_t loc, const char *name, int v) {
    return mnnh_h5_attr_write(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, 0, &v);
}

mnnh_status mnnh_h5_attr_write_i64(hid_t loc, const char *name, int64_t v) {
    return mnnh_h5_attr_write(loc, name, H5T_NATIVE_INT64, H5T_NATIVE_INT64, 0, &v);
}

mnnh_status mnnh_h5_attr_write_f64(hid_t loc, const char *name, double v) {
    return mnnh_h5_attr_write(loc, name, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* float32 in the file: the model computes in float32, so this is exact. */
static mnnh_status attr_write_float(hid_t loc, const char *name, float v) {
    return mnnh_h5_attr_write(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &v);
}

/* Fixed-length, null-terminated ASCII. Not variable-length: those live in
 * the global heap, which has no checksum, and a corrupted heap entry makes
 * HDF5 1.10 hang or crash on read; a fixed-length value sits in the
 * checksummed object header. (h5py reads it as bytes: .decode().) */
mnnh_status mnnh_h5_attr_write_string(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, strlen(s) + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        if (t >= 0) H5Tclose(t);
        return h5_fail(MNNH_ERR_INTERNAL, "cannot build the string type");
    }
    mnnh_status st = mnnh_h5_attr_write(loc, name, t, t, 0, s);
    H5Tclose(t);
    return st;
}

mnnh_status mnnh_model_write_attrs_h5(hid_t loc, const mnnh_arch *a, const mnnh_norm *norm) {
    int nb[MNNH_MAX_L];
    for (int l = 2; l <= a->L; l++) nb[l - 2] = a->nb[l];
    MNNH_TRY(attr_write_int(loc, "dim", a->dim));
    MNNH_TRY(attr_write_int(loc, "N", a->N));
    MNNH_TRY(attr_write_int(loc, "L", a->L));
    MNNH_TRY(attr_write_int(loc, "m", a->m));
    MNNH_TRY(attr_write_int(loc, "r", a->r));
    MNNH_TRY(attr_write_int(loc, "K", a->K));
    MNNH_TRY(mnnh_h5_attr_write_string(loc, "variant", mnnh_variant_name(a->variant)));
    MNNH_TRY(attr_write_int(loc, "nb_ad", a->nb_ad));
    MNNH_TRY(mnnh_h5_attr_write(loc, "nb", H5T_STD_I32LE, H5T_NATIVE_INT, a->L - 1, nb));
    if (!norm) return MNNH_OK;
    MNNH_TRY(attr_write_float(loc, "input_scale", norm->input_scale));
    MNNH_TRY(attr_write_float(loc, "input_shift", norm->input_shift));
    MNNH_TRY(attr_write_float(loc, "output_shift", norm->output_shift));
    MNNH_TRY(attr_write_float(loc, "density_ne", norm->density_ne));
    MNNH_TRY(attr_write_float(loc, "cell_volume", norm->cell_volume));
    return MNNH_OK;
}

/* ---------------------------------------------------------------- writing /model */

mnnh_status mnnh_model_write_h5(hid_t file, mnnh_model *model) {
    const mnnh_param_table *tab = mnnh_model_table(model);
    char fn[1024];
    mnnh_h5_quiet();
    hid_t g = h5_group_create(file, "model");
    if (g < 0) {
        return h5_fail(MNNH_ERR_IO, "%s: cannot create group /model", h5_name(file, fn, sizeof fn));
    }
    float *host = malloc((tab->total ? tab->total : 1) * sizeof *host);
    mnnh_status st = host ? MNNH_OK
                          : mnnh_error_set(MNNH_ERR_NOMEM, "%zu parameters", tab->total);
    if (!st) st = mnnh_model_get_params(model, host);
    if (!st) st = mnnh_model_write_attrs_h5(g, mnnh_model_arch(model), mnnh_model_norm(model));
    for (int i = 0; i < tab->count && !st; i++) {
        const mnnh_param_tensor *t = &tab->t[i];
        hsize_t dims[MNNH_MAX_DIMS];
        for (int d = 0; d < t->ndims; d++) dims[d] = (hsize_t)t->dims[d];
        hid_t ds;
        st = mnnh_h5_create_f32(g, t->name, t->ndims, dims, 0, &ds);
        if (st) break;
        if (H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + t->offset) < 0) {
            st = h5_fail(MNNH_ERR_IO, "%s: cannot write dataset /model/%s",
                     h5_name(file, fn, sizeof fn), t->name);
        }
        H5Dclose(ds);
    }
    free(host);
    H5Gclose(g);
    return st;
}

/* ---------------------------------------------------------------- attribute readers */

/* An open attribute of group g (named path/name in messages) and its type
 * class and number of elements. */
typedef struct {
    hid_t at, type;
    H5T_class_t cls;
    hssize_t npoints;
} attr_h;

static void attr_close(attr_h *h) {
    if (h->type >= 0) H5Tclose(h->type);
    if (h->at >= 0) H5Aclose(h->at);
}

static mnnh_status attr_open(hid_t g, const char *fn, const char *gpath, const char *name,
                             attr_h *h) {
    h->at = h->type = H5I_INVALID_HID;
    htri_t ex = H5Aexists(g, name);
    if (ex == 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: missing attribute %s/%s", fn, gpath, name);
    if (ex < 0) return h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
    h->at = H5Aopen(g, name, H5P_DEFAULT);
    if (h->at >= 0) h->type = H5Aget_type(h->at);
    hid_t space = h->at >= 0 ? H5Aget_space(h->at) : H5I_INVALID_HID;
    h->npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    h->cls = h->type >= 0 ? H5Tget_class(h->type) : H5T_NO_CLASS;
    if (h->at < 0 || h->type < 0 || h->npoints < 0 || h->cls == H5T_NO_CLASS) {
        mnnh_status st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
        attr_close(h);
        return st;
    }
    return MNNH_OK;
}

/* n integers (n = 1 for a scalar or one-element array). */
static mnnh_status attr_read_ints(hid_t g, const char *fn, const char *gpath, const char *name,
                                  int *out, int n) {
    attr_h h;
    MNNH_TRY(attr_open(g, fn, gpath, name, &h));
    mnnh_status st = MNNH_OK;
    long long v[MNNH_MAX_L + 1];
    if (h.cls != H5T_INTEGER)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s must be an integer%s", fn, gpath,
                            name, n > 1 ? " array" : "");
    else if (h.npoints != n || n > MNNH_MAX_L + 1)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s has %lld values, expected %d", fn,
                            gpath, name, (long long)h.npoints, n);
    else if (H5Aread(h.at, H5T_NATIVE_LLONG, v) < 0) {
        st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
    }
    for (int i = 0; i < n && !st; i++) {
        if (v[i] < -1000000000LL || v[i] > 1000000000LL)
            st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s = %lld is out of range", fn,
                                gpath, name, v[i]);
        else
            out[i] = (int)v[i];
    }
    attr_close(&h);
    return st;
}

/* Optional real number (float or integer type); *present = 0 when absent. */
static mnnh_status attr_read_real(hid_t g, const char *fn, const char *gpath, const char *name,
                                  float *out, int *present) {
    *present = 0;
    htri_t ex = H5Aexists(g, name);
    if (ex == 0) return MNNH_OK;
    attr_h h;
    MNNH_TRY(attr_open(g, fn, gpath, name, &h));
    mnnh_status st = MNNH_OK;
    double v = 0;
    if (h.cls != H5T_FLOAT && h.cls != H5T_INTEGER)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s must be a number", fn, gpath, name);
    else if (h.npoints != 1)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s has %lld values, expected 1", fn,
                            gpath, name, (long long)h.npoints);
    else if (H5Aread(h.at, H5T_NATIVE_DOUBLE, &v) < 0) {
        st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
    } else if (!isfinite(v) || !isfinite((float)v))
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s = %g is not a finite float32",
                            fn, gpath, name, v);
    if (!st) *out = (float)v, *present = 1;
    attr_close(&h);
    return st;
}

/* A string, fixed-length or variable-length (h5py writes the latter). */
static mnnh_status attr_read_string(hid_t g, const char *fn, const char *gpath, const char *name,
                                    char *out, size_t len) {
    attr_h h;
    MNNH_TRY(attr_open(g, fn, gpath, name, &h));
    mnnh_status st = MNNH_OK;
    hid_t mt = H5I_INVALID_HID;
    if (h.cls != H5T_STRING || h.npoints != 1) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s must be a string", fn, gpath, name);
    } else if (H5Tis_variable_str(h.type) > 0) {
        char *s = NULL;
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(h.type)) < 0 ||
            H5Aread(h.at, mt, &s) < 0)
            st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
        else
            snprintf(out, len, "%s", s ? s : "");
        if (s) H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(h.type);
        char *buf = sz ? calloc(1, sz + 1) : NULL;
        mt = H5Tcopy(H5T_C_S1);
        if (!buf) st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute %s/%s: empty string type", fn, gpath, name);
        else if (mt < 0 || H5Tset_size(mt, sz + 1) < 0 || H5Aread(h.at, mt, buf) < 0)
            st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot read attribute %s/%s", fn, gpath, name);
        else
            snprintf(out, len, "%s", buf);
        free(buf);
    }
    if (mt >= 0) H5Tclose(mt);
    attr_close(&h);
    return st;
}

/* ---------------------------------------------------------------- reading /model */

static mnnh_status open_model_group(hid_t file, const char *fn, hid_t *g) {
    *g = H5I_INVALID_HID;
    htri_t ex = H5Lexists(file, "model", H5P_DEFAULT);
    if (ex == 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no group /model (not a model file)", fn);
    H5O_info_t oi;
    if (ex < 0 || H5Oget_info_by_name(file, "model", &oi, H5P_DEFAULT) < 0)
        return h5_fail(MNNH_ERR_FORMAT, "%s: cannot read /model", fn);
    if (oi.type != H5O_TYPE_GROUP) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: /model is not a group", fn);
    *g = H5Gopen2(file, "model", H5P_DEFAULT);
    if (*g < 0) return h5_fail(MNNH_ERR_FORMAT, "%s: cannot open group /model", fn);
    return MNNH_OK;
}

static mnnh_status read_arch_attrs(hid_t g, const char *fn, mnnh_arch *a) {
    int dim, N, L, m, r, K, nb_ad, nb[MNNH_MAX_L];
    char variant[32];
    mnnh_variant v;
    const char *gp = "/model";
    MNNH_TRY(attr_read_ints(g, fn, gp, "dim", &dim, 1));
    MNNH_TRY(attr_read_ints(g, fn, gp, "N", &N, 1));
    MNNH_TRY(attr_read_ints(g, fn, gp, "L", &L, 1));
    MNNH_TRY(attr_read_ints(g, fn, gp, "m", &m, 1));
    MNNH_TRY(attr_read_ints(g, fn, gp, "r", &r, 1));
    MNNH_TRY(attr_read_ints(g, fn, gp, "K", &K, 1));
    MNNH_TRY(attr_read_string(g, fn, gp, "variant", variant, sizeof variant));
    if (mnnh_variant_parse(variant, &v) != MNNH_OK)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute /model/variant = '%s': expected cnn or lc",
                              fn, variant);
    MNNH_TRY(attr_read_ints(g, fn, gp, "nb_ad", &nb_ad, 1));
    if (L < 2 || L > MNNH_MAX_L)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute /model/L = %d: must be between 2 and %d",
                              fn, L, MNNH_MAX_L);
    if (m < 1) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute /model/m = %d: must be >= 1", fn, m);
    if ((long long)N != (1LL << L) * m)
        return mnnh_error_set(MNNH_ERR_FORMAT,
                              "%s: attribute /model/N = %d does not equal 2^L*m = 2^%d*%d = %lld", fn,
                              N, L, m, (1LL << L) * m);
    MNNH_TRY(attr_read_ints(g, fn, gp, "nb", nb, L - 1));
    mnnh_arch_set(a, dim, L, m, r, K, v);
    a->N = N;
    a->nb_ad = nb_ad;
    for (int l = 2; l <= L; l++) a->nb[l] = nb[l - 2];
    mnnh_status st = mnnh_arch_validate(a);
    if (st) return mnnh_error_prefix(MNNH_ERR_FORMAT, "%s: invalid /model attributes", fn);
    return MNNH_OK;
}

static mnnh_status read_norm_attrs(hid_t g, const char *fn, mnnh_norm *n) {
    struct { const char *name; float *dst; } f[] = {
        {"input_scale", &n->input_scale}, {"input_shift", &n->input_shift},
        {"output_shift", &n->output_shift}, {"density_ne", &n->density_ne},
        {"cell_volume", &n->cell_volume}};
    int present;
    mnnh_norm_default(n);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        MNNH_TRY(attr_read_real(g, fn, "/model", f[i].name, f[i].dst, &present));
    if (n->density_ne < 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: attribute /model/density_ne = %g: must be >= 0",
                              fn, n->density_ne);
    if (n->density_ne > 0 && !(n->cell_volume > 0))
        return mnnh_error_set(MNNH_ERR_FORMAT,
                              "%s: attribute /model/cell_volume = %g: must be > 0 when density_ne > 0",
                              fn, n->cell_volume);
    return MNNH_OK;
}

mnnh_status mnnh_model_read_arch_h5(hid_t file, mnnh_arch *arch, mnnh_norm *norm) {
    char fn[1024];
    hid_t g;
    mnnh_h5_quiet();
    h5_name(file, fn, sizeof fn);
    MNNH_TRY(open_model_group(file, fn, &g));
    mnnh_status st = read_arch_attrs(g, fn, arch);
    if (!st && norm) st = read_norm_attrs(g, fn, norm);
    H5Gclose(g);
    return st;
}

/* Does every component of the relative path exist below g? (H5Lexists on
 * "a/b/c" fails rather than answering when "a" is missing.) */
static htri_t path_exists(hid_t g, const char *path) {
    char buf[MNNH_NAME_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t ex = H5Lexists(g, buf, H5P_DEFAULT);
            if (ex <= 0) return ex;
            if (!c) return 1;
            *p = c;
        }
    }
}

/* Read one tensor, checking type, shape and checksum. */
static mnnh_status read_tensor(hid_t g, const char *fn, const mnnh_param_tensor *t, float *dst) {
    htri_t ex = path_exists(g, t->name);
    if (ex == 0) return mnnh_error_set(MNNH_ERR_FORMAT, "%s: missing dataset /model/%s", fn, t->name);
    hid_t ds = ex > 0 ? H5Dopen2(g, t->name, H5P_DEFAULT) : H5I_INVALID_HID;
    if (ds < 0)
        return h5_fail(MNNH_ERR_FORMAT, "%s: cannot open dataset /model/%s", fn, t->name);
    mnnh_status st = MNNH_OK;
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    hsize_t dims[32];
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (type < 0 || space < 0 || nd < 0 || nd > 32 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot inspect dataset /model/%s", fn, t->name);
    } else if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: dataset /model/%s has a %s%zu-bit element type, expected float32",
                            fn, t->name, H5Tget_class(type) == H5T_FLOAT ? "float, " : "non-float, ",
                            8 * H5Tget_size(type));
    } else {
        int same = nd == t->ndims;
        for (int d = 0; d < nd && same; d++) same = dims[d] == (hsize_t)t->dims[d];
        if (!same) {
            char got[256] = "", want[256] = "";
            for (int d = 0; d < nd && d < 16; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "[%llu]", (unsigned long long)dims[d]);
            if (nd == 0) snprintf(got, sizeof got, "scalar");
            for (int d = 0; d < t->ndims; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "[%d]", t->dims[d]);
            st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: dataset /model/%s has shape %s, expected %s",
                                fn, t->name, got, want);
        } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
            st = h5_fail(MNNH_ERR_FORMAT,
                         "%s: cannot read dataset /model/%s: file corrupted or truncated", fn,
                         t->name);
        }
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return st;
}

mnnh_status mnnh_model_read_params_host_h5(hid_t file, const mnnh_param_table *tab, float *host) {
    char fn[1024];
    hid_t g;
    mnnh_h5_quiet();
    h5_name(file, fn, sizeof fn);
    MNNH_TRY(open_model_group(file, fn, &g));
    mnnh_status st = MNNH_OK;
    for (int i = 0; i < tab->count && !st; i++)
        st = read_tensor(g, fn, &tab->t[i], host + tab->t[i].offset);
    H5Gclose(g);
    return st;
}

mnnh_status mnnh_model_read_params_h5(hid_t file, mnnh_model *model) {
    const mnnh_param_table *tab = mnnh_model_table(model);
    float *host = malloc((tab->total ? tab->total : 1) * sizeof *host);
    if (!host) return mnnh_error_set(MNNH_ERR_NOMEM, "%zu parameters", tab->total);
    mnnh_status st = mnnh_model_read_params_host_h5(file, tab, host);
    if (!st) st = mnnh_model_set_params(model, host);
    free(host);
    return st;
}

/* ---------------------------------------------------------------- whole files */

mnnh_status mnnh_model_save(mnnh_model *model, const char *path) {
    mnnh_h5_atomic a;
    MNNH_TRY(mnnh_h5_atomic_open(&a, path));
    mnnh_status st = mnnh_model_write_h5(a.file, model);
    if (!st) return mnnh_h5_atomic_commit(&a);
    mnnh_h5_atomic_abort(&a);
    return st;
}

mnnh_status mnnh_model_load(const char *path, mnnh_backend *be, mnnh_model **model) {
    hid_t file;
    mnnh_arch arch;
    mnnh_norm norm;
    *model = NULL;
    MNNH_TRY(mnnh_h5_open_read(path, &file));
    mnnh_status st = mnnh_model_read_arch_h5(file, &arch, &norm);
    if (!st) st = mnnh_model_create(model, &arch, be);
    if (!st) {
        *mnnh_model_norm(*model) = norm;
        st = mnnh_model_read_params_h5(file, *model);
    }
    if (st && *model) {
        mnnh_model_free(*model);
        *model = NULL;
    }
    H5Fclose(file);
    return st;
}

/* ---------------------------------------------------------------- prediction */

mnnh_status mnnh_model_check_input_h5(const mnnh_arch *a, hid_t input, const char *model_name,
                                      const char *data_name, hsize_t *nsamples) {
    hid_t type = H5Dget_type(input), space = H5Dget_space(input);
    hsize_t dims[32];
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    mnnh_status st = MNNH_OK;
    if (type < 0 || space < 0 || nd < 0 || nd > 32 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        st = h5_fail(MNNH_ERR_FORMAT, "%s: cannot inspect /input", data_name);
    } else if (H5Tget_class(type) != H5T_FLOAT) {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /input must hold floating-point numbers", data_name);
    } else {
        int ok = nd == a->dim + 1;
        for (int d = 1; d < nd && ok; d++) ok = dims[d] == (hsize_t)a->N;
        if (!ok) {
            char got[256] = "";
            for (int d = 0; d < nd && d < 16; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "[%llu]", (unsigned long long)dims[d]);
            char want[64];
            snprintf(want, sizeof want, a->dim == 2 ? "[S][%d][%d]" : "[S][%d]", a->N, a->N);
            st = mnnh_error_set(MNNH_ERR_ARG,
                                "model %s (dim=%d, N=%d) expects /input of shape %s, but %s "
                                "/input has shape %s",
                                model_name, a->dim, a->N, want, data_name, nd ? got : "scalar");
        } else {
            *nsamples = dims[0];
        }
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return st;
}

/* Select rows [row, row + b) of a [S][grid] dataset; returns the file space. */
static hid_t select_rows(hid_t dset, int nd, hsize_t row, hsize_t b, hid_t *mem) {
    hsize_t start[3] = {row, 0, 0}, count[3];
    hid_t fs = H5Dget_space(dset);
    if (fs < 0 || H5Sget_simple_extent_dims(fs, count, NULL) < 0) {
        if (fs >= 0) H5Sclose(fs);
        return H5I_INVALID_HID;
    }
    count[0] = b;
    *mem = H5Screate_simple(nd, count, NULL);
    if (*mem < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        if (*mem >= 0) H5Sclose(*mem);
        H5Sclose(fs);
        return H5I_INVALID_HID;
    }
    return fs;
}

static mnnh_status rows_io(hid_t dset, int nd, hsize_t row, hsize_t b, float *buf, int write) {
    hid_t mem = H5I_INVALID_HID;
    hid_t fs = select_rows(dset, nd, row, b, &mem);
    if (fs < 0) return h5_fail(MNNH_ERR_INTERNAL, "cannot select dataset rows");
    herr_t rc = write ? H5Dwrite(dset, H5T_NATIVE_FLOAT, mem, fs, H5P_DEFAULT, buf)
                      : H5Dread(dset, H5T_NATIVE_FLOAT, mem, fs, H5P_DEFAULT, buf);
    mnnh_status st = MNNH_OK;
    if (rc < 0) { /* report before any other HDF5 call clears the error stack */
        char detail[512], fn[1024], dn[128] = "";
        mnnh_h5_error_detail(detail, sizeof detail);
        if (H5Iget_name(dset, dn, sizeof dn) <= 0) snprintf(dn, sizeof dn, "(dataset)");
        st = mnnh_error_set(write ? MNNH_ERR_IO : MNNH_ERR_FORMAT,
                            "%s: cannot %s %s rows %llu..%llu (%s)", h5_name(dset, fn, sizeof fn),
                            write ? "write" : "read", dn, (unsigned long long)row,
                            (unsigned long long)(row + b - 1), detail);
    }
    H5Sclose(mem);
    H5Sclose(fs);
    return st;
}

mnnh_status mnnh_model_predict_h5(mnnh_model *model, hid_t input, hid_t pred, hid_t input_copy,
                                  hsize_t start, hsize_t count, int batch) {
    const mnnh_arch *a = mnnh_model_arch(model);
    mnnh_backend *be = mnnh_model_backend(model);
    size_t grid = mnnh_arch_grid_size(a);
    int nd = a->dim + 1;
    if (batch < 1) return mnnh_error_set(MNNH_ERR_ARG, "batch=%d: must be >= 1", batch);
    if ((hsize_t)batch > count) batch = count ? (int)count : 1;
    if (mnnh_model_max_batch(model) < batch) MNNH_TRY(mnnh_model_reserve(model, batch));
    size_t bytes = (size_t)batch * grid * sizeof(float);
    float *hin = malloc(bytes), *hout = malloc(bytes);
    void *din = NULL, *dout = NULL;
    mnnh_status st = (hin && hout) ? MNNH_OK
                                   : mnnh_error_set(MNNH_ERR_NOMEM, "prediction buffers of %zu bytes", bytes);
    if (!st) st = mnnh_backend_alloc(be, &din, bytes);
    if (!st) st = mnnh_backend_alloc(be, &dout, bytes);
    for (hsize_t row = start; row < start + count && !st; row += (hsize_t)batch) {
        hsize_t b = start + count - row < (hsize_t)batch ? start + count - row : (hsize_t)batch;
        size_t nb = (size_t)b * grid * sizeof(float);
        st = rows_io(input, nd, row, b, hin, 0);
        if (!st && input_copy >= 0) st = rows_io(input_copy, nd, row, b, hin, 1);
        if (!st) st = mnnh_backend_upload(be, din, hin, nb);
        if (!st) st = mnnh_model_infer(model, (int)b, din, dout);
        if (!st) st = mnnh_backend_download(be, hout, dout, nb);
        if (!st) st = rows_io(pred, nd, row, b, hout, 1);
    }
    if (dout) mnnh_backend_release(be, dout);
    if (din) mnnh_backend_release(be, din);
    free(hout);
    free(hin);
    return st;
}
