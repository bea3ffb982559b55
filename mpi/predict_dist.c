/* predict_dist.c: distributed prediction into one parallel-HDF5 file. */
#include "predict_dist.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnnh/model_io.h"
#include "shard.h"

/* Forward the shard in batches into pred (host, count x grid). */
static mnnh_status pd_forward(mnnh_model *model, const mnnh_shard *sh, int batch, float *pred) {
    mnnh_backend *be = mnnh_model_backend(model);
    size_t g = sh->grid;
    float *v = NULL, *u = NULL;
    mnnh_status st = mnnh_backend_alloc(be, (void **)&v, (size_t)batch * g * sizeof(float));
    if (!st) st = mnnh_backend_alloc(be, (void **)&u, (size_t)batch * g * sizeof(float));
    for (int64_t i = 0; i < sh->count && !st; i += batch) {
        int b = (int)(sh->count - i < batch ? sh->count - i : batch);
        size_t bytes = (size_t)b * g * sizeof(float);
        st = mnnh_backend_upload(be, v, sh->input + (size_t)i * g, bytes);
        if (!st) st = mnnh_model_infer(model, b, v, u);
        if (!st) st = mnnh_backend_download(be, pred + (size_t)i * g, u, bytes);
    }
    mnnh_backend_release(be, v);
    mnnh_backend_release(be, u);
    return st;
}

/* Collective write of this rank's rows into a dataset of the open file. */
static mnnh_status pd_write_rows(hid_t file, const char *name, const mnnh_shard *sh, int chunk,
                                 const float *rows) {
    hsize_t dims[3] = {(hsize_t)sh->total, (hsize_t)sh->N, (hsize_t)sh->N};
    hsize_t off[3] = {(hsize_t)sh->start, 0, 0}, cnt[3] = {(hsize_t)sh->count, dims[1], dims[2]};
    int nd = sh->dim + 1;
    hid_t d;
    MNNH_TRY(mnnh_h5_create_f32(file, name, nd, dims, (hsize_t)chunk, &d));
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(nd, cnt, NULL), x = H5Pcreate(H5P_DATASET_XFER);
    herr_t e = (fs < 0 || ms < 0 || x < 0) ? -1 : H5Pset_dxpl_mpio(x, H5FD_MPIO_COLLECTIVE);
    if (e >= 0) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0) e = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, x, rows);
    if (x >= 0) H5Pclose(x);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    if (e < 0) {
        char detail[256];
        return mnnh_error_set(MNNH_ERR_IO, "cannot write /%s (%s)", name,
                              mnnh_h5_error_detail(detail, sizeof detail));
    }
    return MNNH_OK;
}

/* Create tmp collectively, write attributes and both datasets, close. */
static mnnh_status pd_write_file(mnnh_comm *c, const char *tmp, mnnh_model *model,
                                 const char *model_path, const char *input_path,
                                 const mnnh_shard *sh, int batch, const float *pred) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, c->world, MPI_INFO_NULL) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return mnnh_error_set(MNNH_ERR_INTERNAL, "cannot set up parallel HDF5 file access");
    }
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return mnnh_error_set(MNNH_ERR_IO, "%s: cannot create the output file", tmp);
    /* attribute and dataset creation are collective: same values on every rank */
    mnnh_status st = mnnh_model_write_attrs_h5(f, mnnh_model_arch(model), mnnh_model_norm(model));
    if (!st) st = mnnh_h5_attr_write_string(f, "model", model_path);
    if (!st) st = mnnh_h5_attr_write_string(f, "input", input_path);
    if (!st) st = pd_write_rows(f, "prediction", sh, batch, pred);
    if (!st) st = pd_write_rows(f, "input", sh, batch, sh->input);
    if (H5Fclose(f) < 0 && !st) st = mnnh_error_set(MNNH_ERR_IO, "%s: cannot close", tmp);
    return st;
}

/* Rank 0: fsync the finished temporary file and rename it into place. */
static mnnh_status pd_commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return mnnh_error_set(MNNH_ERR_IO, "%s: fsync failed", tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0) return mnnh_error_set(MNNH_ERR_IO, "%s: cannot rename %s over it", path, tmp);
    return MNNH_OK;
}

mnnh_status mnnh_predict_distributed(mnnh_comm *c, const char *model_path, const char *input_path,
                                     const char *out_path, const char *backend, int batch,
                                     long long *nsamples) {
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    mnnh_shard sh;
    memset(&sh, 0, sizeof sh);
    float *pred = NULL;
    char tmp[4200];
    long pid = (long)getpid();
    MNNH_MPI_CHECK(MPI_Bcast(&pid, 1, MPI_LONG, 0, c->world));
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out_path, pid);
    mnnh_h5_quiet();
    mnnh_status st = mnnh_comm_backend_create(c, backend, &be, NULL, 0);
    if (!st) {
        st = mnnh_model_load(model_path, be, &model);
        if (st) mnnh_error_prefix(st, "--model");
        if (!st) st = mnnh_model_reserve(model, batch);
        st = mnnh_comm_agree(c, st);
    }
    if (!st) {
        st = mnnh_shard_load(&sh, c, input_path, "--input", mnnh_model_arch(model), 0);
        if (st) mnnh_error_prefix(st, "model %s", model_path);
    }
    if (!st) {
        pred = malloc((size_t)sh.count * sh.grid * sizeof(float));
        st = mnnh_comm_agree(c, pred ? pd_forward(model, &sh, batch, pred)
                                     : mnnh_error_set(MNNH_ERR_NOMEM, "predictions"));
    }
    if (!st) st = mnnh_comm_agree(c, pd_write_file(c, tmp, model, model_path, input_path, &sh, batch, pred));
    if (!st) st = mnnh_comm_agree(c, c->rank == 0 ? pd_commit(tmp, out_path) : MNNH_OK);
    if (st && c->rank == 0) unlink(tmp);
    if (!st && nsamples) *nsamples = sh.total;
    free(pred);
    mnnh_shard_free(&sh);
    mnnh_model_free(model);
    if (be) mnnh_backend_free(be);
    return st;
}
