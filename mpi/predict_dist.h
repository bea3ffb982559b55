/* predict_dist.h: distributed `mnnh predict`. Every rank loads the model,
 * reads its contiguous shard of /input (collective parallel-HDF5 read, as
 * for training), runs the forward pass, and all ranks write their rows of
 * /prediction (and of the /input copy) into ONE file with collective MPI-IO
 * writes (chunked, Fletcher32). The file is created under a temporary name
 * and renamed by rank 0 once every rank succeeded, so nothing half-written
 * appears under the final name. The layout is that of the serial
 * `mnnh predict` (cmd_predict.c): /prediction, /input, the model's
 * hyperparameters and normalisation as root attributes, `model`, `input`. */
#ifndef MNNH_PREDICT_DIST_H
#define MNNH_PREDICT_DIST_H

#include "comm.h"

/* Collective over c. backend: auto|cpu|ref|cuda; batch: samples per forward
 * pass on each rank. Prints nothing; *nsamples receives S when not NULL. */
mnnh_status mnnh_predict_distributed(mnnh_comm *c, const char *model_path, const char *input_path,
                                     const char *out_path, const char *backend, int batch,
                                     long long *nsamples);

#endif
