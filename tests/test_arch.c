/* test_arch.c: hyperparameters, parameter table layout and parameter counts.
 *
 * Parameter counts (biases included) must equal the paper's tables. With
 * nb(2) = 2, nb(l >= 3) = 3, nb_ad = 1, the cnn count is
 *   sum_{l=2..L} [ (r s^d + r) + K (r^2 w_l^d + r) + (s^d r + s^d) ]
 *   + K (m^{2d} 3^d + m^d),        s = N / 2^l, w_l = 2 nb(l) + 1.
 * Table 8, r = 10 (1D KS, N = 320, L = 6, m = 5, K = 6) prints 33013; this
 * formula gives 23885: with s = 80, 40, 20, 10, 5 (sum 155) the restrictions
 * have 10*155 + 5*10 = 1600, the interpolations 11*155 = 1705, the kernels
 * 6*(100*5 + 10) + 4*6*(100*7 + 10) = 3060 + 17040 = 20100 and the adjacent
 * part 6*(25*3 + 5) = 480 parameters. No consistent reading reproduces 33013: the
 * other four entries of the same table (r = 2, 4, 6, 8: 2117, 5183, 9833,
 * 16067) match the formula exactly, and no (L, m, K) with N = 2^L m, r = 10 in
 * L = 2..7, m = 1..40, K = 1..11 gives 33013 (searched offline). The r = 10
 * entry is taken to be a typo in the paper; we check 23885. */
#include "testutil.h"

#include "mnnh/arch.h"
#include "mnnh/error.h"

static size_t count(int dim, int L, int m, int r, int K, mnnh_variant v) {
    mnnh_arch a;
    mnnh_arch_set(&a, dim, L, m, r, K, v);
    return mnnh_arch_param_count(&a);
}

/* The count formula written out (cnn and lc), with the default bands. */
static size_t formula(int dim, int L, int m, int r, int K, int lc) {
    size_t N = ((size_t)1 << L) * m, tot = 0;
    for (int l = 2; l <= L; l++) {
        size_t n = (size_t)1 << l, s = N / n, nb = l == 2 ? 2 : 3, w = 2 * nb + 1;
        size_t S = dim == 2 ? s * s : s, T = dim == 2 ? w * w : w, P = dim == 2 ? n * n : n;
        size_t loc = lc ? P : 1;
        tot += loc * (r * S + r) + K * loc * (r * r * T + r) + loc * (S * r + S);
    }
    size_t M = dim == 2 ? (size_t)m * m : (size_t)m, n = (size_t)1 << L;
    size_t loc = lc ? (dim == 2 ? n * n : n) : 1, T = dim == 2 ? 9 : 3;
    tot += K * loc * (M * M * T + M);
    return tot;
}

static void test_paper_counts(void **st) {
    (void)st;
    /* DESIGN.md figures */
    assert_int_equal(count(1, 6, 5, 6, 5, MNNH_CNN), 8535);
    assert_int_equal(count(1, 6, 5, 6, 6, MNNH_CNN), 9833);
    assert_int_equal(count(2, 4, 5, 6, 5, MNNH_CNN), 57323);
    assert_int_equal(count(2, 4, 5, 10, 5, MNNH_CNN), 100955);
    /* Table 2: 1D NLSE, N = 320, L = 6, m = 5, K = 5 */
    assert_int_equal(count(1, 6, 5, 2, 5, MNNH_CNN), 1895);
    assert_int_equal(count(1, 6, 5, 4, 5, MNNH_CNN), 4555);
    assert_int_equal(count(1, 6, 5, 6, 5, MNNH_CNN), 8535);
    /* Table 3: 1D NLSE, r = 6 */
    assert_int_equal(count(1, 6, 5, 6, 1, MNNH_CNN), 3343);
    assert_int_equal(count(1, 6, 5, 6, 3, MNNH_CNN), 5939);
    assert_int_equal(count(1, 6, 5, 6, 5, MNNH_CNN), 8535);
    /* Table 5: 2D NLSE, N = 80, L = 4, m = 5, K = 5 */
    assert_int_equal(count(2, 4, 5, 2, 5, MNNH_CNN), 33371);
    assert_int_equal(count(2, 4, 5, 6, 5, MNNH_CNN), 57323);
    assert_int_equal(count(2, 4, 5, 10, 5, MNNH_CNN), 100955);
    /* Table 6: 2D NLSE, r = 6 */
    assert_int_equal(count(2, 4, 5, 6, 1, MNNH_CNN), 16939);
    assert_int_equal(count(2, 4, 5, 6, 3, MNNH_CNN), 37131);
    assert_int_equal(count(2, 4, 5, 6, 5, MNNH_CNN), 57323);
    assert_int_equal(count(2, 4, 5, 6, 7, MNNH_CNN), 77515);
    /* Table 8: 1D KS, N = 320, L = 6, m = 5, K = 6 */
    assert_int_equal(count(1, 6, 5, 2, 6, MNNH_CNN), 2117);
    assert_int_equal(count(1, 6, 5, 4, 6, MNNH_CNN), 5183);
    assert_int_equal(count(1, 6, 5, 6, 6, MNNH_CNN), 9833);
    assert_int_equal(count(1, 6, 5, 8, 6, MNNH_CNN), 16067);
    assert_int_equal(count(1, 6, 5, 10, 6, MNNH_CNN), 23885); /* paper: 33013, see top */
}

static void test_counts_formula(void **st) {
    (void)st;
    int cfg[][5] = {{1, 2, 1, 1, 1}, {1, 3, 2, 3, 2}, {1, 6, 5, 6, 6}, {2, 2, 2, 2, 1},
                    {2, 3, 2, 3, 2}, {2, 4, 4, 10, 6}, {1, 7, 3, 4, 3}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
        for (int lc = 0; lc <= 1; lc++) {
            int *c = cfg[k];
            assert_int_equal(count(c[0], c[1], c[2], c[3], c[4], lc ? MNNH_LC : MNNH_CNN),
                             formula(c[0], c[1], c[2], c[3], c[4], lc));
        }
}

/* Table names, order, shapes and contiguous offsets (DESIGN.md layout). */
static void check_table(int dim, int L, int m, int r, int K, mnnh_variant v) {
    mnnh_arch a;
    mnnh_arch_set(&a, dim, L, m, r, K, v);
    assert_int_equal(a.N, (1 << L) * m);
    mnnh_param_table tab;
    assert_int_equal(mnnh_param_table_build(&a, &tab), MNNH_OK);
    int lc = v == MNNH_LC, idx = 0;
    size_t off = 0;
    char name[64];
    int N = a.N;
#define EXPECT(nm, ...)                                                              \
    do {                                                                             \
        int ex[] = {__VA_ARGS__}, nex = (int)(sizeof ex / sizeof ex[0]);             \
        assert_true(idx < tab.count);                                                \
        const mnnh_param_tensor *t = &tab.t[idx];                                    \
        if (strcmp(t->name, nm)) {                                                   \
            print_error("tensor %d: '%s', expected '%s'\n", idx, t->name, nm);       \
            fail();                                                                  \
        }                                                                            \
        assert_int_equal(t->offset, off);                                            \
        int pre = lc ? dim : 0;                                                      \
        assert_int_equal(t->ndims, pre + nex);                                       \
        size_t sz = 1;                                                               \
        for (int q = 0; q < pre; q++) assert_int_equal(t->dims[q], P1), sz *= P1;    \
        for (int q = 0; q < nex; q++) assert_int_equal(t->dims[pre + q], ex[q]), sz *= ex[q]; \
        assert_int_equal(t->size, sz);                                               \
        assert_int_equal(mnnh_param_table_find(&tab, nm), idx);                      \
        off += sz, idx++;                                                            \
    } while (0)
    for (int l = 2; l <= L; l++) {
        int P1 = 1 << l, s = N >> l, w = 2 * (l == 2 ? 2 : 3) + 1;
        snprintf(name, sizeof name, "level%d/restrict/weight", l);
        if (dim == 1) EXPECT(name, r, s); else EXPECT(name, r, s, s);
        snprintf(name, sizeof name, "level%d/restrict/bias", l);
        EXPECT(name, r);
        for (int k = 1; k <= K; k++) {
            snprintf(name, sizeof name, "level%d/kernel%d/weight", l, k);
            if (dim == 1) EXPECT(name, r, r, w); else EXPECT(name, r, r, w, w);
            snprintf(name, sizeof name, "level%d/kernel%d/bias", l, k);
            EXPECT(name, r);
        }
        snprintf(name, sizeof name, "level%d/interp/weight", l);
        if (dim == 1) EXPECT(name, s, r); else EXPECT(name, s, s, r);
        snprintf(name, sizeof name, "level%d/interp/bias", l);
        if (dim == 1) EXPECT(name, s); else EXPECT(name, s, s);
    }
    {
        int P1 = 1 << L, M = dim == 2 ? m * m : m;
        for (int k = 1; k <= K; k++) {
            snprintf(name, sizeof name, "adjacent/kernel%d/weight", k);
            if (dim == 1) EXPECT(name, M, M, 3); else EXPECT(name, M, M, 3, 3);
            snprintf(name, sizeof name, "adjacent/kernel%d/bias", k);
            EXPECT(name, M);
        }
    }
#undef EXPECT
    assert_int_equal(tab.count, idx);
    assert_int_equal(tab.total, off);
    assert_int_equal(mnnh_arch_param_count(&a), off);
    assert_int_equal(mnnh_param_table_find(&tab, "level1/restrict/weight"), -1);
    mnnh_param_table_free(&tab);
}

static void test_table_layout(void **st) {
    (void)st;
    check_table(1, 3, 2, 3, 2, MNNH_CNN);
    check_table(1, 3, 2, 3, 2, MNNH_LC);
    check_table(2, 3, 2, 2, 1, MNNH_CNN);
    check_table(2, 2, 3, 2, 2, MNNH_LC);
    check_table(1, 6, 5, 6, 6, MNNH_CNN);
}

static void test_defaults(void **st) {
    (void)st;
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 6, 5, 6, 6, MNNH_CNN);
    assert_int_equal(a.N, 320);
    assert_int_equal(a.nb[2], 2);
    for (int l = 3; l <= 6; l++) assert_int_equal(a.nb[l], 3);
    assert_int_equal(a.nb_ad, 1);
    /* the paper's defaults are valid: nb(2) = 2 means w = 5 taps on n = 4
     * positions (the periodic padding wraps), exactly as the paper counts */
    assert_int_equal(mnnh_arch_validate(&a), MNNH_OK);
    mnnh_arch_set(&a, 2, 2, 3, 2, 1, MNNH_LC);
    assert_int_equal(mnnh_arch_validate(&a), MNNH_OK);
    assert_int_equal(mnnh_arch_grid_size(&a), 144);
    mnnh_arch_set(&a, 1, 2, 1, 1, 1, MNNH_CNN);
    assert_int_equal(mnnh_arch_validate(&a), MNNH_OK);
    assert_int_equal(mnnh_arch_grid_size(&a), 4);
}

static void test_variant_names(void **st) {
    (void)st;
    mnnh_variant v = MNNH_CNN;
    assert_int_equal(mnnh_variant_parse("lc", &v), MNNH_OK);
    assert_int_equal(v, MNNH_LC);
    assert_int_equal(mnnh_variant_parse("cnn", &v), MNNH_OK);
    assert_int_equal(v, MNNH_CNN);
    assert_string_equal(mnnh_variant_name(MNNH_CNN), "cnn");
    assert_string_equal(mnnh_variant_name(MNNH_LC), "lc");
    mnnh_error_clear();
    assert_int_equal(mnnh_variant_parse("resnet", &v), MNNH_ERR_ARG);
    assert_true(strstr(mnnh_error_msg(), "resnet") != NULL);
    assert_true(strstr(mnnh_error_msg(), "variant") != NULL);
    assert_int_equal(mnnh_variant_parse("", &v), MNNH_ERR_ARG);
    assert_int_equal(mnnh_variant_parse(NULL, &v), MNNH_ERR_ARG);
}

/* Invalid arch -> MNNH_ERR_ARG from validate, table build and param count 0,
 * with a message naming the hyperparameter at fault. */
static void expect_bad(const mnnh_arch *a, const char *name) {
    mnnh_error_clear();
    assert_int_equal(mnnh_arch_validate(a), MNNH_ERR_ARG);
    if (!tu_names(mnnh_error_msg(), name)) {
        print_error("message '%s' does not name '%s'\n", mnnh_error_msg(), name);
        fail();
    }
    mnnh_param_table tab;
    mnnh_error_clear();
    assert_int_equal(mnnh_param_table_build(a, &tab), MNNH_ERR_ARG);
    assert_true(tu_names(mnnh_error_msg(), name));
    assert_int_equal(mnnh_arch_param_count(a), 0);
}

static void test_invalid(void **st) {
    (void)st;
    mnnh_arch a;
    mnnh_arch_set(&a, 1, 4, 3, 2, 2, MNNH_CNN);
    a.N = 50; /* != 2^4 * 3 = 48 */
    expect_bad(&a, "N");
    mnnh_arch_set(&a, 2, 4, 3, 2, 2, MNNH_CNN);
    a.N = 47;
    expect_bad(&a, "N");
    mnnh_arch_set(&a, 1, 1, 3, 2, 2, MNNH_CNN);
    expect_bad(&a, "L");
    mnnh_arch_set(&a, 1, 0, 3, 2, 2, MNNH_CNN);
    expect_bad(&a, "L");
    mnnh_arch_set(&a, 1, -3, 3, 2, 2, MNNH_CNN);
    expect_bad(&a, "L");
    mnnh_arch_set(&a, 1, 4, 3, 0, 2, MNNH_CNN);
    expect_bad(&a, "r");
    mnnh_arch_set(&a, 1, 4, 3, -1, 2, MNNH_CNN);
    expect_bad(&a, "r");
    mnnh_arch_set(&a, 1, 4, 3, 2, 0, MNNH_CNN);
    expect_bad(&a, "K");
    mnnh_arch_set(&a, 2, 4, 3, 2, -5, MNNH_CNN);
    expect_bad(&a, "K");
    mnnh_arch_set(&a, 1, 4, 0, 2, 2, MNNH_CNN);
    expect_bad(&a, "m");
    mnnh_arch_set(&a, 1, 4, 3, 2, 2, MNNH_CNN);
    a.variant = (mnnh_variant)7;
    expect_bad(&a, "variant");
    mnnh_arch_set(&a, 3, 4, 3, 2, 2, MNNH_CNN);
    expect_bad(&a, "dim");
    mnnh_arch_set(&a, 0, 4, 3, 2, 2, MNNH_CNN);
    expect_bad(&a, "dim");
    /* bands far wider than any level's positions (a band wider than its level is
     * legal: the paper's nb(2) = 2 gives 5 taps on 4 positions) */
    mnnh_arch_set(&a, 1, 4, 3, 2, 2, MNNH_CNN);
    a.nb[3] = 1000; /* "too wide" is not pinned down by DESIGN.md; 1000 is under any reading */
    expect_bad(&a, "nb");
    mnnh_arch_set(&a, 1, 4, 3, 2, 2, MNNH_CNN);
    a.nb[2] = -1;
    expect_bad(&a, "nb");
    mnnh_arch_set(&a, 2, 4, 3, 2, 2, MNNH_CNN);
    a.nb_ad = 1000;
    expect_bad(&a, "nb_ad");
    mnnh_arch_set(&a, 1, 4, 3, 2, 2, MNNH_CNN);
    a.nb_ad = -1;
    expect_bad(&a, "nb_ad");
    /* L above the supported maximum: error, not an overflow */
    mnnh_arch_set(&a, 1, MNNH_MAX_L + 1, 1, 2, 2, MNNH_CNN);
    expect_bad(&a, "L");
    mnnh_arch_set(&a, 1, 40, 1, 2, 2, MNNH_CNN);
    expect_bad(&a, "L");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_counts), cmocka_unit_test(test_counts_formula),
        cmocka_unit_test(test_table_layout), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_variant_names), cmocka_unit_test(test_invalid),
    };
    return TU_RUN(tests);
}
