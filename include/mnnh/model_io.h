/* model_io.h: the model file (HDF5), layout in DESIGN.md and docs/formats-model.md.
 *
 * Group /model: attributes dim, N, L, m, r, K, variant ("cnn"|"lc"), nb_ad,
 * nb (int array over levels 2..L), input_scale, input_shift, output_shift,
 * density_ne, cell_volume; one float32 dataset per tensor of the param table
 * (/model/level2/restrict/weight, ...), chunked with the Fletcher32 checksum so
 * that a corrupted file is detected on read. Files are written to a temporary
 * name in the same directory, fsync'ed and renamed, never half-written. */
#ifndef MNNH_MODEL_IO_H
#define MNNH_MODEL_IO_H

#include <hdf5.h>

#include "mnnh/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write /model into an open file (used by checkpoints too). */
mnnh_status mnnh_model_write_h5(hid_t file, mnnh_model *model);
/* Read the architecture and normalisation of /model, validating them. */
mnnh_status mnnh_model_read_arch_h5(hid_t file, mnnh_arch *arch, mnnh_norm *norm);
/* Read the parameters of /model into a model of the same architecture. */
mnnh_status mnnh_model_read_params_h5(hid_t file, mnnh_model *model);

/* Whole-file helpers: atomic save; load = create a model on be and fill it. */
mnnh_status mnnh_model_save(mnnh_model *model, const char *path);
mnnh_status mnnh_model_load(const char *path, mnnh_backend *be, mnnh_model **model);

/* Atomic file creation: open path.tmp.<pid> for writing, and on commit flush,
 * fsync, close and rename it over path (and fsync the directory). abort
 * closes and removes the temporary file. */
typedef struct {
    char path[4096];
    char tmp[4200];
    hid_t file;
} mnnh_h5_atomic;
mnnh_status mnnh_h5_atomic_open(mnnh_h5_atomic *a, const char *path);
mnnh_status mnnh_h5_atomic_commit(mnnh_h5_atomic *a);
void mnnh_h5_atomic_abort(mnnh_h5_atomic *a);

/* Attribute writers shared by the model, dataset and checkpoint files:
 * n values of memory type mtype stored as file type ftype (n = 0: a scalar);
 * the message names the file and the attribute. */
mnnh_status mnnh_h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n,
                               const void *val);
mnnh_status mnnh_h5_attr_write_i64(hid_t loc, const char *name, int64_t v);
mnnh_status mnnh_h5_attr_write_f64(hid_t loc, const char *name, double v);

/* Silence HDF5's own error stack printing (we report errors ourselves). */
void mnnh_h5_quiet(void);

/* ---- helpers shared with the checkpoint writer, info and predict ---- */

/* Open an existing HDF5 file read-only. The message says whether the file is
 * missing (MNNH_ERR_ARG), unreadable (MNNH_ERR_IO), not HDF5 or truncated /
 * corrupted (MNNH_ERR_FORMAT). */
mnnh_status mnnh_h5_open_read(const char *path, hid_t *file);
/* The most specific message on HDF5's error stack, e.g. "truncated file: eof
 * = ..." ("" when none); buf is returned. */
const char *mnnh_h5_error_detail(char *buf, size_t len);
/* Create a float32 dataset (C row-major dims) below loc, intermediate groups
 * included, chunked (chunk_rows leading rows per chunk when > 0, else whole
 * tensor up to a size cap) with the Fletcher32 checksum. */
mnnh_status mnnh_h5_create_f32(hid_t loc, const char *name, int ndims, const hsize_t *dims,
                               hsize_t chunk_rows, hid_t *dset);

/* Write a scalar fixed-length ASCII string attribute (checksummed with the
 * object header, unlike variable-length strings; h5py reads bytes). */
mnnh_status mnnh_h5_attr_write_string(hid_t loc, const char *name, const char *value);

/* Write the hyperparameters (dim, N, L, m, r, K, variant, nb_ad, nb) and, when
 * norm is not NULL, the normalisation attributes on loc (a group or dataset). */
mnnh_status mnnh_model_write_attrs_h5(hid_t loc, const mnnh_arch *arch, const mnnh_norm *norm);
/* Read every tensor of tab from /model into host (tab->total floats), checking
 * that each dataset exists, is float32, has the table's shape and passes its
 * checksum. No backend needed (used by `mnnh info`). */
mnnh_status mnnh_model_read_params_host_h5(hid_t file, const mnnh_param_table *tab,
                                           float *host);

/* ---- prediction over a dataset's /input (reusable per-rank loop) ---- */

/* Check that an /input dataset (float, [S][N] in 1D or [S][N][N] in 2D)
 * matches the model's grid; the message names both (model_name, data_name).
 * On success *nsamples = S. */
mnnh_status mnnh_model_check_input_h5(const mnnh_arch *arch, hid_t input, const char *model_name,
                                      const char *data_name, hsize_t *nsamples);
/* Forward samples [start, start + count) of input in batches of at most
 * batch, writing the same rows of pred (float32, same shape), and of
 * input_copy too when it is >= 0. Independent I/O with H5P_DEFAULT transfers:
 * a rank range of a distributed run passes its own [start, count). */
mnnh_status mnnh_model_predict_h5(mnnh_model *model, hid_t input, hid_t pred, hid_t input_copy,
                                  hsize_t start, hsize_t count, int batch);

#ifdef __cplusplus
}
#endif
#endif
