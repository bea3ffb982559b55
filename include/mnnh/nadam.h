/* nadam.h: the NAdam optimizer, the same update as torch.optim.NAdam
 * (no weight decay): mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)).
 * The state (step, mu_product, first and second moments) is all a resumed run
 * needs to continue bit-exactly. */
#ifndef MNNH_NADAM_H
#define MNNH_NADAM_H

#include <stdint.h>

#include "mnnh/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double lr;              /* default 2e-3 as in torch */
    double beta1, beta2;    /* 0.9, 0.999 */
    double eps;             /* 1e-8 */
    double momentum_decay;  /* 0.004 */
} mnnh_nadam_hparams;

void mnnh_nadam_defaults(mnnh_nadam_hparams *h);

typedef struct {
    mnnh_nadam_hparams h;
    int64_t step;
    double mu_product;
    size_t n;
    float *m, *v;           /* backend buffers */
    mnnh_backend *be;
} mnnh_nadam;

mnnh_status mnnh_nadam_create(mnnh_nadam **opt, mnnh_backend *be, size_t n,
                              const mnnh_nadam_hparams *h);
void mnnh_nadam_free(mnnh_nadam *opt);
/* One update of params (backend buffer, n floats) with grads. */
mnnh_status mnnh_nadam_step(mnnh_nadam *opt, float *params, const float *grads);

#ifdef __cplusplus
}
#endif
#endif
