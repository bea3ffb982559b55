/* test_nadam.c: NAdam (nadam.h, ops.h) against torch.optim.NAdam's formulas
 * evaluated by hand in double:
 *   mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)), mu_product *= mu_t,
 *   m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, bias2 = 1 - b2^t,
 *   denom = sqrt(v / bias2) + eps,
 *   p -= lr (1 - mu_t) / (1 - mu_product) * g / denom
 *      + lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom.
 * Saving and restoring the state (step, mu_product, m, v) continues bit-exactly. */
#include "testutil.h"

#include "mnnh/backend.h"
#include "mnnh/nadam.h"
#include "mnnh/ops.h"

enum { NP = 7, STEPS = 5 };

static void grads_for(int step, float *g) { tu_fill(g, NP, 50 + step, -2, 2); }

static void run_hand(const mnnh_nadam_hparams *h, double *p, int steps) {
    double m[NP] = {0}, v[NP] = {0}, mu_prod = 1;
    for (int t = 1; t <= steps; t++) {
        float g[NP];
        grads_for(t, g);
        double mu = h->beta1 * (1 - 0.5 * pow(0.96, t * h->momentum_decay));
        double mu1 = h->beta1 * (1 - 0.5 * pow(0.96, (t + 1) * h->momentum_decay));
        mu_prod *= mu;
        double bias2 = 1 - pow(h->beta2, t);
        for (int i = 0; i < NP; i++) {
            m[i] = h->beta1 * m[i] + (1 - h->beta1) * g[i];
            v[i] = h->beta2 * v[i] + (1 - h->beta2) * (double)g[i] * g[i];
            double d = sqrt(v[i] / bias2) + h->eps;
            p[i] -= h->lr * (1 - mu) / (1 - mu_prod) * g[i] / d +
                    h->lr * mu1 / (1 - mu_prod * mu1) * m[i] / d;
        }
    }
}

static void check_against_hand(const char *backend, const mnnh_nadam_hparams *h) {
    mnnh_backend *be;
    assert_int_equal(mnnh_backend_create(&be, backend, 0), MNNH_OK);
    mnnh_nadam *opt;
    assert_int_equal(mnnh_nadam_create(&opt, be, NP, h), MNNH_OK);
    float p0[NP], host[NP], g[NP], *bp, *bg;
    tu_fill(p0, NP, 40, -1, 1);
    assert_int_equal(mnnh_backend_alloc(be, (void **)&bp, sizeof p0), MNNH_OK);
    assert_int_equal(mnnh_backend_alloc(be, (void **)&bg, sizeof p0), MNNH_OK);
    assert_int_equal(mnnh_backend_upload(be, bp, p0, sizeof p0), MNNH_OK);
    double mu_prod = 1;
    for (int t = 1; t <= STEPS; t++) {
        grads_for(t, g);
        assert_int_equal(mnnh_backend_upload(be, bg, g, sizeof g), MNNH_OK);
        assert_int_equal(mnnh_nadam_step(opt, bp, bg), MNNH_OK);
        assert_int_equal(opt->step, t);
        mu_prod *= h->beta1 * (1 - 0.5 * pow(0.96, t * h->momentum_decay));
        assert_true(fabs(opt->mu_product - mu_prod) <= 1e-14);
        double ref[NP];
        for (int i = 0; i < NP; i++) ref[i] = p0[i];
        run_hand(h, ref, t);
        assert_int_equal(mnnh_backend_download(be, host, bp, sizeof host), MNNH_OK);
        for (int i = 0; i < NP; i++) {
            double tol = 2e-7 * fabs(ref[i]) + 1e-4 * h->lr * t;
            if (!(fabs(host[i] - ref[i]) <= tol)) {
                print_error("%s step %d param %d: %.9g vs hand %.9g\n", backend, t, i, host[i], ref[i]);
                fail();
            }
        }
    }
    mnnh_backend_release(be, bp), mnnh_backend_release(be, bg);
    mnnh_nadam_free(opt);
    mnnh_backend_free(be);
}

static void test_defaults(void **st) {
    (void)st;
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    assert_true(h.lr == 2e-3 && h.beta1 == 0.9 && h.beta2 == 0.999 && h.eps == 1e-8 &&
                h.momentum_decay == 0.004);
}

static void test_hand_steps(void **st) {
    (void)st;
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    check_against_hand("ref", &h);
    check_against_hand("cpu", &h);
    /* non-default hyperparameters (large lr so that the steps are visible) */
    h.lr = 0.05, h.beta1 = 0.8, h.beta2 = 0.99, h.eps = 1e-3, h.momentum_decay = 0.01;
    check_against_hand("ref", &h);
    check_against_hand("cpu", &h);
}

/* The first step by hand, spelled out for one parameter (defaults):
 * g = 0.5: m = 0.05, v = 0.00025, bias2 = 0.001, denom = 0.5 + 1e-8,
 * mu1 = 0.9 (1 - 0.5 * 0.96^0.004), mu2 = 0.9 (1 - 0.5 * 0.96^0.008). */
static void test_first_step_explicit(void **st) {
    (void)st;
    mnnh_backend *be;
    assert_int_equal(mnnh_backend_create(&be, "ref", 0), MNNH_OK);
    mnnh_nadam_hparams h;
    mnnh_nadam_defaults(&h);
    mnnh_nadam *opt;
    assert_int_equal(mnnh_nadam_create(&opt, be, 1, &h), MNNH_OK);
    float *bp, *bg, p = 1.0f, g = 0.5f;
    assert_int_equal(mnnh_backend_alloc(be, (void **)&bp, 4), MNNH_OK);
    assert_int_equal(mnnh_backend_alloc(be, (void **)&bg, 4), MNNH_OK);
    mnnh_backend_upload(be, bp, &p, 4), mnnh_backend_upload(be, bg, &g, 4);
    assert_int_equal(mnnh_nadam_step(opt, bp, bg), MNNH_OK);
    mnnh_backend_download(be, &p, bp, 4);
    double mu1 = 0.9 * (1 - 0.5 * pow(0.96, 0.004)), mu2 = 0.9 * (1 - 0.5 * pow(0.96, 0.008));
    double d = 0.5 + 1e-8;
    double expect = 1.0 - 2e-3 * (1 - mu1) / (1 - mu1) * 0.5 / d - 2e-3 * mu2 / (1 - mu1 * mu2) * 0.05 / d;
    if (!(fabs(p - expect) <= 1e-7)) {
        print_error("first step: %.9g vs hand %.9g\n", p, expect);
        fail();
    }
    float mh, vh;
    mnnh_backend_download(be, &mh, opt->m, 4), mnnh_backend_download(be, &vh, opt->v, 4);
    /* v: 1 - beta2 evaluated in float32 from 0.999f is 0.00100004673 (4.7e-5
     * relative off 0.001), so allow 1e-4 relative */
    assert_true(fabs(mh - 0.05) < 1e-6 * 0.05 && fabs(vh - 0.00025) < 1e-4 * 0.00025);
    mnnh_backend_release(be, bp), mnnh_backend_release(be, bg);
    mnnh_nadam_free(opt);
    mnnh_backend_free(be);
}

/* Save (step, mu_product, m, v) after 3 steps, restore into a fresh optimizer,
 * continue both: bit-identical parameters and state. */
static void test_resume_bit_exact(void **st) {
    (void)st;
    const char *bes[] = {"ref", "cpu"};
    for (int bi = 0; bi < 2; bi++) {
        mnnh_backend *be;
        assert_int_equal(mnnh_backend_create(&be, bes[bi], 0), MNNH_OK);
        mnnh_nadam_hparams h;
        mnnh_nadam_defaults(&h);
        mnnh_nadam *a, *b;
        assert_int_equal(mnnh_nadam_create(&a, be, NP, &h), MNNH_OK);
        assert_int_equal(mnnh_nadam_create(&b, be, NP, &h), MNNH_OK);
        float p[NP], g[NP], *pa, *pb, *bg;
        tu_fill(p, NP, 60, -1, 1);
        mnnh_backend_alloc(be, (void **)&pa, sizeof p), mnnh_backend_alloc(be, (void **)&pb, sizeof p);
        mnnh_backend_alloc(be, (void **)&bg, sizeof p);
        mnnh_backend_upload(be, pa, p, sizeof p);
        for (int t = 1; t <= 3; t++) {
            grads_for(t, g);
            mnnh_backend_upload(be, bg, g, sizeof g);
            assert_int_equal(mnnh_nadam_step(a, pa, bg), MNNH_OK);
        }
        /* "save": host copies of the whole state; "restore" into b */
        float m[NP], v[NP], ps[NP];
        mnnh_backend_download(be, m, a->m, sizeof m), mnnh_backend_download(be, v, a->v, sizeof v);
        mnnh_backend_download(be, ps, pa, sizeof ps);
        b->step = a->step, b->mu_product = a->mu_product;
        mnnh_backend_upload(be, b->m, m, sizeof m), mnnh_backend_upload(be, b->v, v, sizeof v);
        mnnh_backend_upload(be, pb, ps, sizeof ps);
        for (int t = 4; t <= 6; t++) {
            grads_for(t, g);
            mnnh_backend_upload(be, bg, g, sizeof g);
            assert_int_equal(mnnh_nadam_step(a, pa, bg), MNNH_OK);
            assert_int_equal(mnnh_nadam_step(b, pb, bg), MNNH_OK);
        }
        float ra[NP], rb[NP];
        mnnh_backend_download(be, ra, pa, sizeof ra), mnnh_backend_download(be, rb, pb, sizeof rb);
        assert_memory_equal(ra, rb, sizeof ra);
        assert_true(a->step == b->step && a->mu_product == b->mu_product);
        mnnh_backend_download(be, ra, a->m, sizeof ra), mnnh_backend_download(be, rb, b->m, sizeof rb);
        assert_memory_equal(ra, rb, sizeof ra);
        mnnh_backend_download(be, ra, a->v, sizeof ra), mnnh_backend_download(be, rb, b->v, sizeof rb);
        assert_memory_equal(ra, rb, sizeof ra);
        mnnh_backend_release(be, pa), mnnh_backend_release(be, pb), mnnh_backend_release(be, bg);
        mnnh_nadam_free(a), mnnh_nadam_free(b);
        mnnh_backend_free(be);
    }
}

/* ops.h's update with given coefficients, against the formula in double. */
static void test_ref_update(void **st) {
    (void)st;
    float p[NP], g[NP], m[NP], v[NP], p0[NP], m0[NP], v0[NP];
    tu_fill(p, NP, 70, -1, 1), tu_fill(g, NP, 71, -1, 1), tu_fill(m, NP, 72, -1, 1);
    tu_fill(v, NP, 73, 0, 1);
    memcpy(p0, p, sizeof p), memcpy(m0, m, sizeof m), memcpy(v0, v, sizeof v);
    const float b1 = 0.9f, b2 = 0.99f, cg = 0.01f, cm = 0.02f, bias2 = 0.3f, eps = 1e-3f;
    mnnh_ref_nadam_update(NP, p, g, m, v, b1, b2, cg, cm, bias2, eps);
    for (int i = 0; i < NP; i++) {
        double mm = b1 * (double)m0[i] + (1 - (double)b1) * g[i];
        double vv = b2 * (double)v0[i] + (1 - (double)b2) * (double)g[i] * g[i];
        double d = sqrt(vv / bias2) + eps;
        double pp = p0[i] - cg * g[i] / d - cm * mm / d;
        assert_true(fabs(m[i] - mm) <= 1e-6 && fabs(v[i] - vv) <= 1e-6);
        assert_true(fabs(p[i] - pp) <= 1e-6);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_hand_steps),
        cmocka_unit_test(test_first_step_explicit), cmocka_unit_test(test_resume_bit_exact),
        cmocka_unit_test(test_ref_update),
    };
    return TU_RUN(tests);
}
