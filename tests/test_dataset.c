/* test_dataset.c: the dataset file module (dataset.h), serial: write a file,
 * read it back by hyperslab, the attributes, validation errors that name the
 * file and dataset, NaN/Inf detection naming the sample, describe(). */
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mnnh/dataset.h"

#define T_SAMPLES 6
#define T_GRID 8

static char path[256];

static void fill_meta(mnnh_dataset_meta *m, int dim) {
    memset(m, 0, sizeof *m);
    strcpy(m->equation, "ks");
    strcpy(m->generator, MNNH_GENERATOR_VERSION);
    strcpy(m->preset, "paper");
    m->dim = dim;
    m->N = T_GRID;
    m->samples = T_SAMPLES;
    m->first_sample = 100;
    m->n_g = m->n_e = m->nval = 2;
    m->seed = 12345678901ull;
    m->domain[0] = -1;
    m->domain[1] = 1;
    m->tol = 1e-8;
    m->sigma = 0.2;
    m->box = 2;
    m->separation = 0.4;
    m->depth_min = 0.8;
    m->depth_max = 1.2;
}

/* Write T_SAMPLES samples of value (sample*1000 + point) to `path`, optionally with a
 * NaN in sample `nan_at` of /output. */
static void write_file(int dim, int nan_at) {
    mnnh_dataset_meta m;
    fill_meta(&m, dim);
    int64_t g = dim == 1 ? T_GRID : T_GRID * T_GRID;
    float *in = calloc(T_SAMPLES * g, sizeof(float)), *out = calloc(T_SAMPLES * g, sizeof(float));
    double eig[T_SAMPLES * 2], res[T_SAMPLES * 2], gap[T_SAMPLES];
    int it[T_SAMPLES];
    for (int s = 0; s < T_SAMPLES; s++) {
        for (int64_t i = 0; i < g; i++) {
            in[s * g + i] = (float)(s * 1000 + i);
            out[s * g + i] = -(float)(s * 1000 + i);
        }
        eig[2 * s] = s, eig[2 * s + 1] = s + 0.5, res[2 * s] = res[2 * s + 1] = 1e-9, gap[s] = 0.1, it[s] = s;
    }
    if (nan_at >= 0) out[nan_at * g + 3] = NAN;
    mnnh_dataset_writer *w;
    assert_int_equal(mnnh_dataset_create(path, H5P_DEFAULT, &m, &w), MNNH_OK);
    /* two blocks and an empty one, as ranks do */
    assert_int_equal(mnnh_dataset_write(w, 0, 4, in, out, eig, res, gap, it, H5P_DEFAULT), MNNH_OK);
    assert_int_equal(mnnh_dataset_write(w, 4, 0, NULL, NULL, NULL, NULL, NULL, NULL, H5P_DEFAULT), MNNH_OK);
    assert_int_equal(mnnh_dataset_write(w, 4, 2, in + 4 * g, out + 4 * g, eig + 8, res + 8, gap + 4, it + 4, H5P_DEFAULT), MNNH_OK);
    assert_int_equal(mnnh_dataset_write(w, 5, 2, in, out, eig, res, gap, it, H5P_DEFAULT), MNNH_ERR_ARG);
    assert_int_equal(mnnh_dataset_writer_close(w), MNNH_OK);
    free(in);
    free(out);
}

static void test_roundtrip(void **state) {
    (void)state;
    for (int dim = 1; dim <= 2; dim++) {
        write_file(dim, -1);
        mnnh_dataset *ds;
        assert_int_equal(mnnh_dataset_open(path, 0, &ds), MNNH_OK);
        assert_int_equal(ds->dim, dim);
        assert_int_equal(ds->N, T_GRID);
        assert_int_equal(ds->samples, T_SAMPLES);
        assert_string_equal(ds->meta.equation, "ks");
        assert_string_equal(ds->meta.preset, "paper");
        assert_int_equal(ds->meta.n_e, 2);
        assert_int_equal(ds->meta.first_sample, 100);
        assert_true(ds->meta.seed == 12345678901ull);
        assert_true(ds->meta.domain[0] == -1 && ds->meta.domain[1] == 1);
        assert_true(ds->meta.sigma == 0.2);
        int64_t g = ds->sample_size;
        float *in = calloc(3 * g, sizeof(float)), *out = calloc(3 * g, sizeof(float));
        assert_int_equal(mnnh_dataset_read(ds, 2, 3, in, out), MNNH_OK);
        for (int s = 0; s < 3; s++)
            for (int64_t i = 0; i < g; i++) {
                assert_true(in[s * g + i] == (float)((s + 2) * 1000 + i));
                assert_true(out[s * g + i] == -(float)((s + 2) * 1000 + i));
            }
        assert_int_equal(mnnh_dataset_read(ds, 5, 1, in, NULL), MNNH_OK);
        assert_true(in[0] == 5000.f);
        assert_int_equal(mnnh_dataset_read(ds, 4, 3, in, out), MNNH_ERR_ARG);
        free(in);
        free(out);
        mnnh_dataset_close(ds);
    }
}

static void test_nan_named(void **state) {
    (void)state;
    write_file(1, 3);
    mnnh_dataset *ds;
    assert_int_equal(mnnh_dataset_open(path, 0, &ds), MNNH_OK);
    float buf[T_SAMPLES * T_GRID];
    assert_int_equal(mnnh_dataset_read(ds, 0, 3, NULL, buf), MNNH_OK);
    assert_int_equal(mnnh_dataset_read(ds, 1, 4, NULL, buf), MNNH_ERR_NUMERIC);
    assert_non_null(strstr(mnnh_error_msg(), "sample 3"));
    assert_non_null(strstr(mnnh_error_msg(), "/output"));
    mnnh_dataset_close(ds);
}

/* A raw HDF5 file with the given datasets (float or double, rank/shape). */
static void raw_file(const char *in_shape, hid_t in_type, const char *out_shape, int attr_N) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    const char *shapes[2] = {in_shape, out_shape}, *names[2] = {"input", "output"};
    for (int k = 0; k < 2; k++) {
        if (!shapes[k]) continue;
        hsize_t d[3];
        int r = sscanf(shapes[k], "%llux%llux%llu", (unsigned long long *)&d[0], (unsigned long long *)&d[1],
                       (unsigned long long *)&d[2]);
        hid_t sp = H5Screate_simple(r, d, NULL);
        hid_t ds = H5Dcreate2(f, names[k], k == 0 ? in_type : H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(ds >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (attr_N) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "N", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &attr_N);
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

static void expect_format(int flags, const char *word) {
    mnnh_dataset *ds = NULL;
    assert_int_equal(mnnh_dataset_open(path, flags, &ds), MNNH_ERR_FORMAT);
    assert_null(ds);
    if (!strstr(mnnh_error_msg(), word)) fail_msg("'%s' does not name '%s'", mnnh_error_msg(), word);
    assert_non_null(strstr(mnnh_error_msg(), path));
}

static void test_validation(void **state) {
    (void)state;
    mnnh_dataset *ds;
    raw_file("4x8", H5T_IEEE_F32LE, NULL, 0);
    expect_format(0, "/output");
    assert_int_equal(mnnh_dataset_open(path, MNNH_DATASET_INPUT_ONLY, &ds), MNNH_OK);
    assert_int_equal(ds->dim, 1); /* inferred from the shape without attributes */
    assert_int_equal(ds->samples, 4);
    mnnh_dataset_close(ds);
    raw_file("4x8", H5T_IEEE_F64LE, "4x8", 0);
    expect_format(0, "float32");
    raw_file("4x8", H5T_IEEE_F32LE, "4x9", 0);
    expect_format(0, "shapes differ");
    raw_file("4x8x7", H5T_IEEE_F32LE, "4x8x7", 0);
    expect_format(0, "square");
    raw_file("4x8x8", H5T_IEEE_F32LE, "4x8x8", 16);
    expect_format(0, "N=16");
    raw_file(NULL, H5T_IEEE_F32LE, "4x8", 0);
    expect_format(0, "/input");
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    expect_format(0, "not an HDF5 file");
    unlink(path);
    assert_int_equal(mnnh_dataset_open(path, 0, &ds), MNNH_ERR_IO);
    assert_non_null(strstr(mnnh_error_msg(), path));
}

static void test_describe(void **state) {
    (void)state;
    write_file(2, -1);
    char buf[8192];
    FILE *out = fmemopen(buf, sizeof buf, "w");
    assert_int_equal(mnnh_dataset_describe(path, out), MNNH_OK);
    fclose(out);
    const char *want[] = {"kind: dataset", "equation: ks", "dim: 2", "N: 8", "samples: 6",
                          "attr preset: paper", "attr seed: 12345678901", "attr domain: -1 1",
                          "dataset /input: float32 [6][8][8]", "dataset /output: float32 [6][8][8]",
                          "range /input: min 0 max 5063", "dataset /eigenvalues: float64 [6][2]",
                          "range /gap: min 0.1 max 0.1"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(buf, want[i])) fail_msg("describe lacks '%s':\n%s", want[i], buf);
}

int main(void) {
    snprintf(path, sizeof path, "test_dataset_%ld.h5", (long)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_nan_named),
        cmocka_unit_test(test_validation), cmocka_unit_test(test_describe),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
