/* nadam.c: NAdam as in torch.optim.NAdam. The scalar schedule (mu_t,
 * mu_product, bias corrections) is computed here in double; the element
 * update is a backend op. */
#include "mnnh/nadam.h"

#include <math.h>
#include <stdlib.h>

void mnnh_nadam_defaults(mnnh_nadam_hparams *h) {
    h->lr = 2e-3;
    h->beta1 = 0.9;
    h->beta2 = 0.999;
    h->eps = 1e-8;
    h->momentum_decay = 4e-3;
}

mnnh_status mnnh_nadam_create(mnnh_nadam **out, mnnh_backend *be, size_t n,
                              const mnnh_nadam_hparams *h) {
    *out = NULL;
    if (!(h->lr > 0) || !(h->beta1 >= 0 && h->beta1 < 1) || !(h->beta2 >= 0 && h->beta2 < 1) ||
        !(h->eps > 0) || !(h->momentum_decay >= 0))
        return mnnh_error_set(MNNH_ERR_ARG,
                              "NAdam hyperparameters lr=%g beta1=%g beta2=%g eps=%g "
                              "momentum_decay=%g out of range",
                              h->lr, h->beta1, h->beta2, h->eps, h->momentum_decay);
    mnnh_nadam *o = calloc(1, sizeof *o);
    if (!o) return mnnh_error_set(MNNH_ERR_NOMEM, "optimizer");
    o->h = *h;
    o->n = n;
    o->be = be;
    o->mu_product = 1.0;
    mnnh_status st = mnnh_backend_alloc(be, (void **)&o->m, n * sizeof(float));
    if (!st) st = mnnh_backend_alloc(be, (void **)&o->v, n * sizeof(float));
    if (!st) st = be->ops->zero(be, o->m, n * sizeof(float));
    if (!st) st = be->ops->zero(be, o->v, n * sizeof(float));
    if (st) {
        mnnh_nadam_free(o);
        return st;
    }
    *out = o;
    return MNNH_OK;
}

void mnnh_nadam_free(mnnh_nadam *o) {
    if (!o) return;
    mnnh_backend_release(o->be, o->m);
    mnnh_backend_release(o->be, o->v);
    free(o);
}

mnnh_status mnnh_nadam_step(mnnh_nadam *o, float *params, const float *grads) {
    const mnnh_nadam_hparams *h = &o->h;
    int64_t t = ++o->step;
    double mu = h->beta1 * (1.0 - 0.5 * pow(0.96, (double)t * h->momentum_decay));
    double mu_next = h->beta1 * (1.0 - 0.5 * pow(0.96, (double)(t + 1) * h->momentum_decay));
    o->mu_product *= mu;
    double bias2 = 1.0 - pow(h->beta2, (double)t);
    double c_grad = h->lr * (1.0 - mu) / (1.0 - o->mu_product);
    double c_mom = h->lr * mu_next / (1.0 - o->mu_product * mu_next);
    return o->be->ops->nadam_update(o->be, o->n, params, grads, o->m, o->v, (float)h->beta1,
                                    (float)h->beta2, (float)c_grad, (float)c_mom, (float)bias2,
                                    (float)h->eps);
}
