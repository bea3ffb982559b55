/* cmd_info.c: `mnnh info FILE`: describe a model, checkpoint or dataset file.
 *
 * Model and checkpoint files (group /model): hyperparameters, parameter count
 * (every dataset is read, so shapes, dtypes and checksums are verified),
 * normalisation, and for checkpoints the /state group. Dataset files (/input):
 * mnnh_dataset_describe() from the dataset module when it is built in, else a
 * generic listing of the root attributes and datasets. Output is "key: value"
 * lines so that scripts can grep it. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mnnh/model_io.h"

#if defined(__has_include)
#if __has_include("mnnh/dataset.h")
#include "mnnh/dataset.h"
#define MNNH_INFO_HAVE_DATASET 1
#endif
#endif

/* ---------------------------------------------------------------- generic listing */

/* Print at most 16 values of an attribute or small dataset read as
 * long long / double / string. */
static void info_print_values(hid_t obj, int is_attr, FILE *out) {
    hid_t type = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (n < 0 || cls == H5T_NO_CLASS) {
        fprintf(out, "(unreadable)");
    } else if (cls == H5T_STRING && n == 1) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *s = NULL;
        /* HDF5 will not convert between character sets: read in the file's. */
        if (mt >= 0 && H5Tset_cset(mt, H5Tget_cset(type)) < 0) {
            H5Tclose(mt);
            mt = H5I_INVALID_HID;
        }
        if (H5Tis_variable_str(type) > 0) {
            herr_t rc = mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0
                            ? -1
                            : (is_attr ? H5Aread(obj, mt, &s) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s));
            fprintf(out, "%s", rc < 0 ? "(unreadable string)" : s ? s : "");
            if (s) H5free_memory(s);
        } else {
            size_t sz = H5Tget_size(type);
            char *buf = calloc(1, sz + 1);
            herr_t rc = !buf || mt < 0 || H5Tset_size(mt, sz + 1) < 0
                            ? -1
                            : (is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
            fprintf(out, "%s", rc < 0 ? "(unreadable string)" : buf);
            free(buf);
        }
        if (mt >= 0) H5Tclose(mt);
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n <= 16) {
        long long iv[16];
        double dv[16];
        int isint = cls == H5T_INTEGER;
        hid_t mt = isint ? H5T_NATIVE_LLONG : H5T_NATIVE_DOUBLE;
        void *buf = isint ? (void *)iv : (void *)dv;
        herr_t rc = is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        if (rc < 0) fprintf(out, "(unreadable)");
        for (hssize_t i = 0; rc >= 0 && i < n; i++) {
            if (isint) fprintf(out, "%s%lld", i ? " " : "", iv[i]);
            else fprintf(out, "%s%.9g", i ? " " : "", dv[i]);
        }
    } else {
        fprintf(out, "(%lld values)", (long long)n);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
}

typedef struct {
    FILE *out;
    const char *indent;
} info_ctx;

static herr_t info_attr_cb(hid_t loc, const char *name, const H5A_info_t *ai, void *data) {
    info_ctx *c = data;
    hid_t at = H5Aopen(loc, name, H5P_DEFAULT);
    fprintf(c->out, "%s%s: ", c->indent, name);
    if (at < 0) fprintf(c->out, "(unreadable)");
    else info_print_values(at, 1, c->out);
    fputc('\n', c->out);
    if (at >= 0) H5Aclose(at);
    return 0;
}

static void info_print_attrs(hid_t loc, const char *indent, FILE *out) {
    info_ctx c = {out, indent};
    hsize_t idx = 0;
    if (H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, info_attr_cb, &c) < 0)
        fprintf(out, "%s(attributes unreadable)\n", indent);
}

static void info_print_shape(hid_t ds, FILE *out) {
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    hsize_t dims[32];
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (nd < 0 || nd > 32 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        fprintf(out, "(unreadable shape)");
    } else {
        for (int d = 0; d < nd; d++) fprintf(out, "[%llu]", (unsigned long long)dims[d]);
        if (nd == 0) fprintf(out, "scalar");
        H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
        size_t bits = type >= 0 ? 8 * H5Tget_size(type) : 0;
        fprintf(out, " %s%zu", cls == H5T_FLOAT ? "float" : cls == H5T_INTEGER ? "int" : "type", bits);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
}

/* Datasets (shape, small values) and attributes of a group, one level deep. */
static herr_t info_member_cb(hid_t g, const char *name, const H5L_info_t *li, void *data) {
    info_ctx *c = data;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) {
        fprintf(c->out, "%s%s: (unreadable)\n", c->indent, name);
        return 0;
    }
    if (oi.type == H5O_TYPE_GROUP) {
        fprintf(c->out, "%s%s/ (group)\n", c->indent, name);
        return 0;
    }
    if (oi.type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    fprintf(c->out, "%s%s: ", c->indent, name);
    if (ds < 0) {
        fprintf(c->out, "(unreadable)\n");
        return 0;
    }
    info_print_shape(ds, c->out);
    hid_t space = H5Dget_space(ds);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    if (n > 0 && n <= 8) {
        fprintf(c->out, " = ");
        info_print_values(ds, 0, c->out);
    }
    fputc('\n', c->out);
    H5Dclose(ds);
    return 0;
}

static void info_print_group(hid_t g, const char *indent, FILE *out) {
    info_ctx c = {out, indent};
    info_print_attrs(g, indent, out);
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, info_member_cb, &c) < 0)
        fprintf(out, "%s(members unreadable)\n", indent);
}

static int info_has(hid_t file, const char *name) { return H5Lexists(file, name, H5P_DEFAULT) > 0; }

/* ---------------------------------------------------------------- model / checkpoint */

static mnnh_status info_model(hid_t file, const char *path, FILE *out) {
    mnnh_arch a;
    mnnh_norm n;
    mnnh_param_table tab;
    MNNH_TRY(mnnh_model_read_arch_h5(file, &a, &n));
    MNNH_TRY(mnnh_param_table_build(&a, &tab));
    float *host = malloc((tab.total ? tab.total : 1) * sizeof *host);
    mnnh_status st = host ? mnnh_model_read_params_host_h5(file, &tab, host)
                          : mnnh_error_set(MNNH_ERR_NOMEM, "%zu parameters", tab.total);
    int ckpt = info_has(file, "state") || info_has(file, "optimizer");
    if (!st) {
        fprintf(out, "file: %s\nkind: %s\n", path, ckpt ? "checkpoint" : "model");
        fprintf(out, "dim: %d\nN: %d\nL: %d\nm: %d\nr: %d\nK: %d\nvariant: %s\nnb_ad: %d\nnb:",
                a.dim, a.N, a.L, a.m, a.r, a.K, mnnh_variant_name(a.variant), a.nb_ad);
        for (int l = 2; l <= a.L; l++) fprintf(out, " %d", a.nb[l]);
        fprintf(out, "   (levels 2..%d)\n", a.L);
        fprintf(out, "parameters: %zu (%d float32 tensors, checksums verified)\n", tab.total,
                tab.count);
        fprintf(out, "input_scale: %.9g\ninput_shift: %.9g\noutput_shift: %.9g\n",
                n.input_scale, n.input_shift, n.output_shift);
        fprintf(out, "density_ne: %.9g%s\ncell_volume: %.9g\n", n.density_ne,
                n.density_ne > 0 ? "" : "   (density layer off)", n.cell_volume);
    }
    if (!st && ckpt) {
        const char *groups[] = {"state", "optimizer", "config", "metrics"};
        fprintf(out, "checkpoint groups:");
        for (int i = 0; i < 4; i++)
            if (info_has(file, groups[i])) fprintf(out, " /%s", groups[i]);
        fputc('\n', out);
        hid_t g = info_has(file, "state") ? H5Gopen2(file, "state", H5P_DEFAULT) : H5I_INVALID_HID;
        if (g >= 0) {
            fprintf(out, "state:\n");
            info_print_group(g, "  ", out);
            H5Gclose(g);
        }
    }
    free(host);
    mnnh_param_table_free(&tab);
    return st;
}

/* ---------------------------------------------------------------- dataset */

static mnnh_status info_dataset(hid_t file, const char *path, FILE *out) {
#ifdef MNNH_INFO_HAVE_DATASET
    (void)file;
    return mnnh_dataset_describe(path, out);
#else
    /* The dataset module is not built in: list what the file holds. */
    fprintf(out, "file: %s\nkind: dataset\n", path);
    info_print_group(file, "", out);
    return MNNH_OK;
#endif
}

int mnnh_cmd_info(int argc, char **argv) {
    mnnh_opt opts[1];
    mnnh_cli cli = {
        .cmd = "info",
        .usage = "FILE",
        .summary = "Describe an mnnh file: for a model or checkpoint (/model) the hyperparameters,\n"
                   "parameter count (all datasets are read and their checksums verified),\n"
                   "normalisation and, for checkpoints, /state; for a dataset (/input) its\n"
                   "shapes and attributes.",
        .opts = opts,
        .nopts = 0,
        .npositional = 1,
        .positional = {"FILE"},
    };
    int rc = mnnh_cli_parse(&cli, argc, argv, 1);
    if (rc) return rc < 0 ? MNNH_EXIT_OK : rc;
    const char *path = argv[argc - 1];
    hid_t file;
    mnnh_status st = mnnh_h5_open_read(path, &file);
    if (st) return mnnh_cli_fail("info", st);
    if (info_has(file, "model")) {
        st = info_model(file, path, stdout);
    } else if (info_has(file, "input")) {
        st = info_dataset(file, path, stdout);
    } else {
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: neither a model/checkpoint (/model) nor a dataset (/input)", path);
    }
    if (file >= 0) H5Fclose(file);
    return st ? mnnh_cli_fail("info", st) : MNNH_EXIT_OK;
}
