/* test_rng.c: counter-based streams (rng.h). */
#include "testutil.h"

static void test_reproducible(void **st) {
    (void)st;
    mnnh_rng a, b;
    mnnh_rng_init(&a, 1234, 5);
    mnnh_rng_init(&b, 1234, 5);
    for (int i = 0; i < 1000; i++) assert_int_equal(mnnh_rng_u32(&a), mnnh_rng_u32(&b));
    for (int i = 0; i < 100; i++) assert_true(mnnh_rng_normal(&a) == mnnh_rng_normal(&b));
    /* the state is plain data: a copy continues identically (checkpointing) */
    mnnh_rng c = a;
    for (int i = 0; i < 37; i++) assert_true(mnnh_rng_uniform(&a) == mnnh_rng_uniform(&c));
}

static void test_streams_differ(void **st) {
    (void)st;
    mnnh_rng a, b, c;
    mnnh_rng_init(&a, 1234, 5);
    mnnh_rng_init(&b, 1234, 6);
    mnnh_rng_init(&c, 1235, 5);
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < 256; i++) {
        uint32_t x = mnnh_rng_u32(&a), y = mnnh_rng_u32(&b), z = mnnh_rng_u32(&c);
        same_ab += x == y, same_ac += x == z;
    }
    assert_true(same_ab < 3 && same_ac < 3);
}

static void test_uniform_normal_stats(void **st) {
    (void)st;
    mnnh_rng r;
    mnnh_rng_init(&r, 99, 0);
    enum { N = 200000 };
    double s = 0, s2 = 0, mn = 1, mx = 0;
    for (int i = 0; i < N; i++) {
        double u = mnnh_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        s += u, mn = u < mn ? u : mn, mx = u > mx ? u : mx;
    }
    assert_true(fabs(s / N - 0.5) < 0.005 && mn < 1e-3 && mx > 1 - 1e-3);
    for (int i = 0; i < 1000; i++) {
        double x = mnnh_rng_range(&r, -3, 5);
        assert_true(x >= -3 && x < 5);
    }
    s = 0;
    double s3 = 0, s4 = 0;
    for (int i = 0; i < N; i++) {
        double z = mnnh_rng_normal(&r);
        assert_true(isfinite(z));
        s += z, s2 += z * z, s3 += z * z * z, s4 += z * z * z * z;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    assert_true(fabs(mean) < 0.01);      /* sd of the mean: 0.0022 */
    assert_true(fabs(var - 1) < 0.02);   /* sd of the variance: 0.0032 */
    assert_true(fabs(s3 / N) < 0.05);
    assert_true(fabs(s4 / N - 3) < 0.1); /* normal kurtosis */
}

static void test_below_and_shuffle(void **st) {
    (void)st;
    mnnh_rng r;
    mnnh_rng_init(&r, 7, 1);
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t k = mnnh_rng_below(&r, 10);
        assert_true(k < 10);
        hist[k]++;
    }
    for (int k = 0; k < 10; k++) assert_true(abs(hist[k] - 10000) < 500);
    assert_int_equal(mnnh_rng_below(&r, 1), 0);
    enum { N = 1000 };
    int64_t idx[N], idx2[N];
    for (int i = 0; i < N; i++) idx[i] = idx2[i] = i;
    mnnh_rng_shuffle(&r, idx, N);
    int seen[N] = {0}, moved = 0;
    for (int i = 0; i < N; i++) {
        assert_true(idx[i] >= 0 && idx[i] < N);
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1); /* a permutation */
    assert_true(moved > N / 2);
    mnnh_rng a, b;
    mnnh_rng_init(&a, 3, 4), mnnh_rng_init(&b, 3, 4);
    for (int i = 0; i < N; i++) idx[i] = idx2[i] = i;
    mnnh_rng_shuffle(&a, idx, N), mnnh_rng_shuffle(&b, idx2, N);
    assert_memory_equal(idx, idx2, sizeof idx); /* same (seed, stream), same order */
    mnnh_rng_shuffle(&a, idx, 0), mnnh_rng_shuffle(&a, idx, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reproducible), cmocka_unit_test(test_streams_differ),
        cmocka_unit_test(test_uniform_normal_stats), cmocka_unit_test(test_below_and_shuffle),
    };
    return TU_RUN(tests);
}
