/* model.h: the MNN-H network (Algorithm 3 of the paper), forward and backward.
 *
 * One contiguous parameter buffer and one gradient buffer (backend memory),
 * laid out by mnnh_param_table. The prediction of a batch v[B][N^d] is
 *     u = D(net(v * input_scale + input_shift) + output_shift)
 * where D is the optional density layer (density_ne > 0). Forward keeps the
 * activations of the last batch so that backward can follow it. Workspaces
 * are sized once by mnnh_model_reserve(): the step loop does not allocate. */
#ifndef MNNH_MODEL_H
#define MNNH_MODEL_H

#include <stdint.h>

#include "mnnh/arch.h"
#include "mnnh/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float input_scale;   /* default 1 */
    float input_shift;   /* default 0 */
    float output_shift;  /* default 0 */
    float density_ne;    /* 0 = no density layer */
    float cell_volume;   /* dx^d, used by the density layer */
} mnnh_norm;

void mnnh_norm_default(mnnh_norm *n);

typedef struct mnnh_model mnnh_model;

mnnh_status mnnh_model_create(mnnh_model **model, const mnnh_arch *arch, mnnh_backend *be);
void mnnh_model_free(mnnh_model *model);

const mnnh_arch *mnnh_model_arch(const mnnh_model *model);
const mnnh_param_table *mnnh_model_table(const mnnh_model *model);
mnnh_backend *mnnh_model_backend(const mnnh_model *model);
mnnh_norm *mnnh_model_norm(mnnh_model *model);
size_t mnnh_model_nparams(const mnnh_model *model);
/* Backend buffers of all parameters and of all gradients. */
float *mnnh_model_params(mnnh_model *model);
float *mnnh_model_grads(mnnh_model *model);

/* Weight initialisation: normal draws, biases 0, keyed by seed only
 * (identical on every rank). HE: N(0, 2/fan_in) before a ReLU and
 * N(0, 1/fan_in) before a linear output. GLOROT: N(0, 2/(fan_in + fan_out))
 * for every weight (the variance of Keras' default glorot_uniform, which the
 * paper's authors' code used). Fans as a convolution sees them (model.c). */
typedef enum { MNNH_INIT_HE = 0, MNNH_INIT_GLOROT = 1 } mnnh_init;
const char *mnnh_init_name(mnnh_init init);
int mnnh_init_parse(const char *name, mnnh_init *init); /* "he" | "glorot"; -1 otherwise */
mnnh_status mnnh_model_init_params_with(mnnh_model *model, uint64_t seed, mnnh_init init);
mnnh_status mnnh_model_init_params(mnnh_model *model, uint64_t seed); /* HE */
/* Set the bias of every kernel layer that a ReLU follows (all but the last
 * adjacent layer) to value: a small positive start keeps ReLUs from dying
 * early in training (docs/results.md, "Dead ReLUs"). */
mnnh_status mnnh_model_set_relu_biases(mnnh_model *model, float value);

/* Host copies of parameters / gradients (nparams floats). */
mnnh_status mnnh_model_get_params(mnnh_model *model, float *host);
mnnh_status mnnh_model_set_params(mnnh_model *model, const float *host);
mnnh_status mnnh_model_get_grads(mnnh_model *model, float *host);
mnnh_status mnnh_model_zero_grads(mnnh_model *model);

/* Size the activation workspace for batches up to max_batch. */
mnnh_status mnnh_model_reserve(mnnh_model *model, int max_batch);

/* How a host backend's OpenMP threads share the work. The levels and the
 * adjacent part ("parts") are independent until their outputs are summed.
 * MNNH_SCHED_OPS: the parts run in sequence and every op splits its samples
 * between the threads (a fork/join per op: good for large ops).
 * MNNH_SCHED_PARTS: the parts run side by side, a fixed schedule of parts
 * per thread (parts.h), each op on its thread alone (good when the ops are
 * small, as in KS 1D training). MNNH_SCHED_AUTO (default): PARTS where the
 * schedule balances the threads' estimated loads within 25 % and the batch's
 * ops are small (at most 4e6 forward flops per op call on average: KS 1D at
 * batch 160, not KS 1D at batch 1000 nor KS 2D), else OPS; decided per call
 * from the batch size. Only on backends with concurrent_parts (the cpu
 * backend), with more than one thread; the thread count is read at
 * mnnh_model_reserve (and here when a workspace exists, which is then
 * rebuilt). With the parts side by side their outputs are summed in another
 * order, so results differ from OPS in the last bits (and repeat exactly). */
typedef enum { MNNH_SCHED_AUTO = 0, MNNH_SCHED_OPS = 1, MNNH_SCHED_PARTS = 2 } mnnh_schedule;
mnnh_status mnnh_model_set_schedule(mnnh_model *model, mnnh_schedule schedule);
/* Threads the parts of a batch of B run on side by side (1: in sequence),
 * and when more than 1, the thread of part p in owner[p] (owner: L entries;
 * level l is part l - 2, the adjacent part is part L - 1). */
int mnnh_model_part_plan(const mnnh_model *model, int B, int *owner);
int mnnh_model_max_batch(const mnnh_model *model);

/* Forward a batch; v and u are backend buffers of B * N^d floats. */
mnnh_status mnnh_model_forward(mnnh_model *model, int B, const float *v, float *u);
/* Inference: the same result as mnnh_model_forward, but the activations
 * backward needs are not kept, so the backend's fused level op (level_fwd in
 * backend.h) may be used; a following mnnh_model_backward fails until the
 * next mnnh_model_forward. For predict, validate and benchmarks. */
mnnh_status mnnh_model_infer(mnnh_model *model, int B, const float *v, float *u);
/* Backward of the last forward: grads += d(loss)/d(params) given du = dloss/du. */
mnnh_status mnnh_model_backward(mnnh_model *model, int B, const float *du);

/* One training evaluation: forward, relative-error loss against target,
 * backward (grads += ...). The loss gradient is scaled by 1/grad_count so that
 * ranks holding parts of a global batch of grad_count samples produce gradients
 * that sum to the global mean's gradient. On return sum_err2 holds the sum over
 * the B samples of the squared relative error, sum_err the sum of the relative
 * error (host doubles). v, target are backend buffers. */
mnnh_status mnnh_model_train_batch(mnnh_model *model, int B, const float *v,
                                   const float *target, int grad_count, double *sum_err2,
                                   double *sum_err);

/* Forward (mnnh_model_infer: no backward may follow) and per-sample relative
 * errors (host array err[B], may be NULL); pred may be NULL to use an internal
 * buffer. */
mnnh_status mnnh_model_eval_batch(mnnh_model *model, int B, const float *v,
                                  const float *target, float *pred, double *err);

/* Test hook: with linear = 1 every kernel layer is linear (no ReLU), which
 * makes the whole network an affine map (used to check the H-matrix structure). */
void mnnh_model_set_all_linear(mnnh_model *model, int linear);

/* Floating-point operations of one forward pass of one sample (multiply-add = 2). */
double mnnh_model_forward_flops(const mnnh_model *model);

#ifdef __cplusplus
}
#endif
#endif
