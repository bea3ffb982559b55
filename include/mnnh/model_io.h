/* model_io.h: the model file (HDF5), layout in DESIGN.md and docs/formats.md.
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

/* Silence HDF5's own error stack printing (we report errors ourselves). */
void mnnh_h5_quiet(void);

#ifdef __cplusplus
}
#endif
#endif
