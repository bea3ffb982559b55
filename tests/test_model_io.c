/* test_model_io.c: the model file (model_io.h).
 *
 * - save/load round trip is bit-exact (parameters, architecture, normalisation),
 *   1D cnn and 2D lc, leaves no temporary file behind, and saving the same
 *   model twice gives byte-identical files;
 * - the layout is findable by name: /model/<tensor> datasets with the param
 *   table's shapes, float32, Fletcher32; attributes with the documented types;
 * - every malformed file gives an error naming the file and the attribute or
 *   dataset at fault, never a crash: missing file, not HDF5, missing /model,
 *   missing/invalid attributes, N != 2^L m, missing dataset, wrong shape, wrong
 *   dtype, truncated file, corrupted chunk (checksum), and a sweep of single
 *   corrupted bytes over the whole file;
 * - the prediction loop over an HDF5 /input equals mnnh_model_forward. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "mnnh/model_io.h"

/* HDF5 1.10.8 itself leaks one 456-byte block when an object-header
 * checksum fails (reproduced with a 10-line program: H5Fopen +
 * H5Oget_info_by_name on a corrupted file, everything closed), which the
 * corruption sweep provokes on purpose. LeakSanitizer reads this hook; our
 * own HDF5 handles are checked separately (H5Fget_obj_count == 0). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

static char tmpdir[256];
static mnnh_backend *be;

/* ---------------------------------------------------------------- helpers */

static void path_in_tmp(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void arch_1d(mnnh_arch *a) { mnnh_arch_set(a, 1, 3, 2, 3, 2, MNNH_CNN); } /* N = 16 */
static void arch_2d_lc(mnnh_arch *a) { mnnh_arch_set(a, 2, 2, 2, 2, 1, MNNH_LC); } /* N = 8 */

static mnnh_model *make_model(const mnnh_arch *a, uint64_t seed) {
    mnnh_model *m = NULL;
    assert_int_equal(mnnh_model_create(&m, a, be), MNNH_OK);
    assert_int_equal(mnnh_model_init_params(m, seed), MNNH_OK);
    mnnh_norm *n = mnnh_model_norm(m);
    /* values that are not round in binary, to catch any double rounding */
    n->input_scale = 1.0f / 3.0f;
    n->input_shift = -0.1f;
    n->output_shift = 0.7f;
    n->density_ne = 2.0f;
    n->cell_volume = 1.0f / 16.0f;
    return m;
}

/* Write a good 1D model file at path and return its parameters (malloc'd). */
static float *write_good(const char *path) {
    mnnh_arch a;
    arch_1d(&a);
    mnnh_model *m = make_model(&a, 7);
    size_t n = mnnh_model_nparams(m);
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    assert_int_equal(mnnh_model_get_params(m, p), MNNH_OK);
    assert_int_equal(mnnh_model_save(m, path), MNNH_OK);
    mnnh_model_free(m);
    return p;
}

/* Load must fail with status st and a message naming the file and `what`. */
static void expect_load_error(const char *path, mnnh_status st, const char *what) {
    mnnh_model *m = (mnnh_model *)0x1;
    mnnh_error_clear();
    mnnh_status got = mnnh_model_load(path, be, &m);
    const char *msg = mnnh_error_msg();
    if (got != st || !strstr(msg, path) || (what && !strstr(msg, what)))
        fail_msg("load %s: status %d (want %d), message '%s' (want it to name '%s')", path, got, st,
                 msg, what ? what : "");
    assert_null(m);
    /* every HDF5 object of the failed load was closed */
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static int count_tmp_files(void) {
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* Open a saved file read-write for a surgical change. */
static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void write_int_attr(hid_t loc, const char *name, int v) {
    if (H5Aexists(loc, name) > 0) assert_true(H5Adelete(loc, name) >= 0);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(at >= 0);
    assert_true(H5Awrite(at, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(at);
    H5Sclose(sp);
}

static void write_str_attr(hid_t loc, const char *name, const char *s) {
    if (H5Aexists(loc, name) > 0) assert_true(H5Adelete(loc, name) >= 0);
    assert_int_equal(mnnh_h5_attr_write_string(loc, name, s), MNNH_OK);
}

/* Replace dataset /model/<name> by one of the given type and shape. */
static void replace_dataset(const char *path, const char *name, hid_t type, int nd,
                            const hsize_t *dims) {
    hid_t f = open_rw(path);
    char full[128];
    snprintf(full, sizeof full, "/model/%s", name);
    assert_true(H5Ldelete(f, full, H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, full, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    double *zeros = calloc(n, sizeof *zeros);
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) >= 0);
    free(zeros);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

static long file_size(const char *path) {
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (long)sb.st_size;
}

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
    } while (ca == cb && ca != EOF);
    fclose(fa);
    fclose(fb);
    return ca == cb;
}

static void flip_byte(const char *path, long off) {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* ---------------------------------------------------------------- round trip */

static void roundtrip(const mnnh_arch *a, const char *name) {
    char path[512];
    path_in_tmp(path, sizeof path, name);
    mnnh_model *m = make_model(a, 42);
    size_t n = mnnh_model_nparams(m);
    float *p0 = malloc(n * sizeof *p0), *p1 = malloc(n * sizeof *p1);
    assert_int_equal(mnnh_model_get_params(m, p0), MNNH_OK);
    assert_int_equal(mnnh_model_save(m, path), MNNH_OK);
    /* saving again, a second later, replaces the file atomically by a
     * byte-identical one (no modification times in the file) */
    char first[600];
    snprintf(first, sizeof first, "%s.first", path);
    assert_int_equal(rename(path, first), 0);
    usleep(1100000);
    assert_int_equal(mnnh_model_save(m, path), MNNH_OK);
    assert_int_equal(mnnh_model_save(m, path), MNNH_OK);
    assert_int_equal(count_tmp_files(), 0);
    assert_true(files_equal(first, path));

    mnnh_model *l = NULL;
    assert_int_equal(mnnh_model_load(path, be, &l), MNNH_OK);
    const mnnh_arch *b = mnnh_model_arch(l);
    assert_int_equal(b->dim, a->dim);
    assert_int_equal(b->N, a->N);
    assert_int_equal(b->L, a->L);
    assert_int_equal(b->m, a->m);
    assert_int_equal(b->r, a->r);
    assert_int_equal(b->K, a->K);
    assert_int_equal(b->variant, a->variant);
    assert_int_equal(b->nb_ad, a->nb_ad);
    for (int lv = 2; lv <= a->L; lv++) assert_int_equal(b->nb[lv], a->nb[lv]);
    assert_int_equal(mnnh_model_nparams(l), n);
    assert_memory_equal(mnnh_model_norm(l), mnnh_model_norm(m), sizeof(mnnh_norm));
    assert_int_equal(mnnh_model_get_params(l, p1), MNNH_OK);
    assert_memory_equal(p0, p1, n * sizeof *p0);
    mnnh_model_free(l);
    mnnh_model_free(m);
    free(p0);
    free(p1);
}

static void test_roundtrip_1d_cnn(void **state) {
    mnnh_arch a;
    arch_1d(&a);
    roundtrip(&a, "rt1.h5");
}

static void test_roundtrip_2d_lc(void **state) {
    mnnh_arch a;
    arch_2d_lc(&a);
    a.nb_ad = 0; /* a non-default value must survive too */
    roundtrip(&a, "rt2.h5");
}

/* ---------------------------------------------------------------- layout */

static void test_layout_by_name(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "layout.h5");
    mnnh_arch a;
    arch_2d_lc(&a);
    mnnh_model *m = make_model(&a, 3);
    assert_int_equal(mnnh_model_save(m, path), MNNH_OK);
    const mnnh_param_table *tab = mnnh_model_table(m);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    for (int i = 0; i < tab->count; i++) {
        char full[128];
        snprintf(full, sizeof full, "/model/%s", tab->t[i].name);
        hid_t ds = H5Dopen2(f, full, H5P_DEFAULT);
        assert_true(ds >= 0);
        hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds), dcpl = H5Dget_create_plist(ds);
        hsize_t dims[16];
        assert_int_equal(H5Sget_simple_extent_ndims(sp), tab->t[i].ndims);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int d = 0; d < tab->t[i].ndims; d++) assert_int_equal(dims[d], tab->t[i].dims[d]);
        assert_true(H5Tequal(ty, H5T_IEEE_F32LE) > 0);
        unsigned flags;
        size_t nelmts = 0;
        char fname[32];
        assert_true(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelmts, NULL,
                                         sizeof fname, fname, NULL) >= 0);
        H5Pclose(dcpl);
        H5Tclose(ty);
        H5Sclose(sp);
        H5Dclose(ds);
    }
    /* a 2D lc restrict weight is [n][n][r][s][s]: level 2, n = 4, s = 2 */
    hid_t ds = H5Dopen2(f, "/model/level2/restrict/weight", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[8];
    assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), 5);
    assert_true(dims[0] == 4 && dims[1] == 4 && dims[2] == 2 && dims[3] == 2 && dims[4] == 2);
    H5Sclose(sp);
    H5Dclose(ds);
    /* attribute types: ints, a string variant, an nb array of L-1 values */
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    const char *ints[] = {"dim", "N", "L", "m", "r", "K", "nb_ad"};
    for (int i = 0; i < 7; i++) {
        hid_t at = H5Aopen(g, ints[i], H5P_DEFAULT);
        assert_true(at >= 0);
        hid_t ty = H5Aget_type(at);
        assert_int_equal(H5Tget_class(ty), H5T_INTEGER);
        H5Tclose(ty);
        H5Aclose(at);
    }
    hid_t at = H5Aopen(g, "variant", H5P_DEFAULT), ty = H5Aget_type(at);
    assert_int_equal(H5Tget_class(ty), H5T_STRING);
    H5Tclose(ty);
    H5Aclose(at);
    at = H5Aopen(g, "nb", H5P_DEFAULT);
    sp = H5Aget_space(at);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), a.L - 1);
    H5Sclose(sp);
    H5Aclose(at);
    const char *reals[] = {"input_scale", "input_shift", "output_shift", "density_ne", "cell_volume"};
    for (int i = 0; i < 5; i++) assert_true(H5Aexists(g, reals[i]) > 0);
    H5Gclose(g);
    H5Fclose(f);
    mnnh_model_free(m);
}

/* ---------------------------------------------------------------- malformed files */

static void test_missing_file(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "does-not-exist.h5");
    expect_load_error(path, MNNH_ERR_ARG, "No such file");
}

static void test_not_hdf5(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "text.h5");
    FILE *fp = fopen(path, "w");
    fprintf(fp, "dim = 1\nthis is not HDF5\n");
    fclose(fp);
    expect_load_error(path, MNNH_ERR_FORMAT, "not an HDF5 file");
}

static void test_no_model_group(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "nomodel.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "other", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    expect_load_error(path, MNNH_ERR_FORMAT, "/model");
}

static void test_missing_attribute(void **state) {
    const char *names[] = {"dim", "N", "L", "m", "r", "K", "variant", "nb_ad", "nb"};
    char path[512], want[64];
    path_in_tmp(path, sizeof path, "noattr.h5");
    for (int i = 0; i < 9; i++) {
        free(write_good(path));
        hid_t f = open_rw(path);
        hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
        assert_true(H5Adelete(g, names[i]) >= 0);
        H5Gclose(g);
        H5Fclose(f);
        snprintf(want, sizeof want, "missing attribute /model/%s", names[i]);
        expect_load_error(path, MNNH_ERR_FORMAT, want);
    }
}

typedef enum { SET_INT, SET_STR } set_kind;

static void bad_attr(const char *name, set_kind kind, int iv, const char *sv, const char *want) {
    char path[512];
    path_in_tmp(path, sizeof path, "badattr.h5");
    free(write_good(path));
    hid_t f = open_rw(path);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    if (kind == SET_INT) write_int_attr(g, name, iv);
    else write_str_attr(g, name, sv);
    H5Gclose(g);
    H5Fclose(f);
    expect_load_error(path, MNNH_ERR_FORMAT, want);
}

static void test_invalid_attributes(void **state) {
    /* the good file is 1D, L = 3, m = 2, N = 16, r = 3, K = 2 */
    bad_attr("N", SET_INT, 20, NULL, "/model/N = 20 does not equal 2^L*m");
    bad_attr("m", SET_INT, 3, NULL, "/model/N = 16 does not equal 2^L*m");
    bad_attr("L", SET_INT, 1, NULL, "/model/L = 1");
    bad_attr("variant", SET_STR, 0, "transformer", "/model/variant = 'transformer'");
    bad_attr("dim", SET_STR, 0, "1", "attribute /model/dim must be an integer");
    bad_attr("r", SET_STR, 0, "three", "attribute /model/r must be an integer");
    bad_attr("dim", SET_INT, 3, NULL, "dim=3");
    bad_attr("r", SET_INT, 0, NULL, "r=0");
    bad_attr("K", SET_INT, -1, NULL, "K=-1");
    bad_attr("variant", SET_INT, 1, NULL, "attribute /model/variant must be a string");
    bad_attr("input_scale", SET_STR, 0, "big", "attribute /model/input_scale must be a number");
    bad_attr("density_ne", SET_INT, -2, NULL, "/model/density_ne");

    /* nb must have L-1 = 2 values */
    char path[512];
    path_in_tmp(path, sizeof path, "badnb.h5");
    free(write_good(path));
    hid_t f = open_rw(path);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    write_int_attr(g, "nb", 2);
    H5Gclose(g);
    H5Fclose(f);
    expect_load_error(path, MNNH_ERR_FORMAT, "attribute /model/nb has 1 values, expected 2");
}

static void test_missing_dataset(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "nodset.h5");
    const char *names[] = {"level3/kernel2/bias", "adjacent/kernel1/weight", "level2/interp/weight"};
    for (int i = 0; i < 3; i++) {
        free(write_good(path));
        hid_t f = open_rw(path);
        char full[128], want[160];
        snprintf(full, sizeof full, "/model/%s", names[i]);
        assert_true(H5Ldelete(f, full, H5P_DEFAULT) >= 0);
        H5Fclose(f);
        snprintf(want, sizeof want, "missing dataset /model/%s", names[i]);
        expect_load_error(path, MNNH_ERR_FORMAT, want);
    }
    /* a whole missing level group */
    free(write_good(path));
    hid_t f = open_rw(path);
    assert_true(H5Ldelete(f, "/model/level3", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(path, MNNH_ERR_FORMAT, "missing dataset /model/level3/");
}

static void test_wrong_shape(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "shape.h5");
    /* level2: s = 4; restrict weight [r][s] = [3][4]; written transposed */
    free(write_good(path));
    hsize_t t[2] = {4, 3};
    replace_dataset(path, "level2/restrict/weight", H5T_IEEE_F32LE, 2, t);
    expect_load_error(path, MNNH_ERR_FORMAT,
                      "dataset /model/level2/restrict/weight has shape [4][3], expected [3][4]");
    /* right size, wrong rank */
    free(write_good(path));
    hsize_t flat[1] = {12};
    replace_dataset(path, "level2/restrict/weight", H5T_IEEE_F32LE, 1, flat);
    expect_load_error(path, MNNH_ERR_FORMAT, "has shape [12], expected [3][4]");
}

static void test_wrong_dtype(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "dtype.h5");
    hsize_t d[2] = {3, 4};
    free(write_good(path));
    replace_dataset(path, "level2/restrict/weight", H5T_IEEE_F64LE, 2, d);
    expect_load_error(path, MNNH_ERR_FORMAT, "/model/level2/restrict/weight has a float, 64-bit");
    free(write_good(path));
    replace_dataset(path, "level2/restrict/weight", H5T_STD_I32LE, 2, d);
    expect_load_error(path, MNNH_ERR_FORMAT, "expected float32");
}

static void test_truncated(void **state) {
    char good[512], path[512];
    path_in_tmp(good, sizeof good, "good.h5");
    path_in_tmp(path, sizeof path, "trunc.h5");
    free(write_good(good));
    long size = file_size(good);
    long cuts[] = {0, 8, 100, size / 4, size / 2, size - 200, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_file(good, path);
        assert_int_equal(truncate(path, cuts[i]), 0);
        expect_load_error(path, MNNH_ERR_FORMAT, NULL);
    }
}

/* Flip a byte inside the first chunk of a dataset: the Fletcher32 checksum
 * must catch it and the message must name the dataset. */
static void test_corrupted_chunk(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "corrupt.h5");
    free(write_good(path));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/model/level3/kernel1/weight", H5P_DEFAULT);
    assert_true(ds >= 0);
    haddr_t addr = 0;
    hsize_t size = 0;
    unsigned mask = 0;
    hsize_t origin[8] = {0};
    assert_true(H5Dget_chunk_info_by_coord(ds, origin, &mask, &addr, &size) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    assert_true(size > 8);
    flip_byte(path, (long)(addr + size / 2));
    expect_load_error(path, MNNH_ERR_FORMAT, "/model/level3/kernel1/weight");
    assert_non_null(strstr(mnnh_error_msg(), "Fletcher32"));
}

/* Single corrupted bytes anywhere (metadata included): load either fails
 * with a message naming the file, or succeeds with the same parameters
 * (the byte was unused, e.g. free space). Never a crash or silent change. */
static void test_corruption_sweep(void **state) {
    char good[512], path[512];
    path_in_tmp(good, sizeof good, "sweep-good.h5");
    path_in_tmp(path, sizeof path, "sweep.h5");
    float *p0 = write_good(good);
    long size = file_size(good);
    int failed = 0, ok = 0;
    for (long off = 0; off < size; off += 37) {
        copy_file(good, path);
        flip_byte(path, off);
        mnnh_model *m = NULL;
        mnnh_error_clear();
        mnnh_status st = mnnh_model_load(path, be, &m);
        if (st == MNNH_OK) {
            size_t n = mnnh_model_nparams(m);
            float *p1 = malloc(n * sizeof *p1);
            assert_int_equal(mnnh_model_get_params(m, p1), MNNH_OK);
            if (memcmp(p0, p1, n * sizeof *p1) != 0) fail_msg("byte %ld changed a parameter silently", off);
            free(p1);
            mnnh_model_free(m);
            ok++;
        } else {
            if (!strstr(mnnh_error_msg(), path)) fail_msg("byte %ld: message '%s'", off, mnnh_error_msg());
            assert_null(m);
            failed++;
        }
        /* every HDF5 object of the load was closed, on the error paths too */
        ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
        if (open_ids != 0) fail_msg("byte %ld: %zd HDF5 objects left open", off, open_ids);
    }
    assert_true(failed > 0);
    free(p0);
}

/* ---------------------------------------------------------------- atomic writes */

static void test_atomic(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "no-such-dir/model.h5");
    mnnh_arch a;
    arch_1d(&a);
    mnnh_model *m = make_model(&a, 1);
    mnnh_error_clear();
    assert_int_equal(mnnh_model_save(m, path), MNNH_ERR_IO);
    assert_non_null(strstr(mnnh_error_msg(), path));
    /* abort removes the temporary file and leaves no final file */
    path_in_tmp(path, sizeof path, "aborted.h5");
    mnnh_h5_atomic at;
    assert_int_equal(mnnh_h5_atomic_open(&at, path), MNNH_OK);
    assert_int_equal(count_tmp_files(), 1);
    assert_int_equal(mnnh_model_write_h5(at.file, m), MNNH_OK);
    mnnh_h5_atomic_abort(&at);
    assert_int_equal(count_tmp_files(), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    /* writing /model twice into one file is an error, not a crash */
    assert_int_equal(mnnh_h5_atomic_open(&at, path), MNNH_OK);
    assert_int_equal(mnnh_model_write_h5(at.file, m), MNNH_OK);
    assert_int_not_equal(mnnh_model_write_h5(at.file, m), MNNH_OK);
    mnnh_h5_atomic_abort(&at);
    mnnh_model_free(m);
}

/* Reading parameters into a model of another architecture: shape error. */
static void test_params_into_other_arch(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "other.h5");
    free(write_good(path));
    mnnh_arch a;
    arch_1d(&a);
    a.r = 4;
    mnnh_model *m = NULL;
    assert_int_equal(mnnh_model_create(&m, &a, be), MNNH_OK);
    hid_t f;
    assert_int_equal(mnnh_h5_open_read(path, &f), MNNH_OK);
    mnnh_error_clear();
    assert_int_equal(mnnh_model_read_params_h5(f, m), MNNH_ERR_FORMAT);
    assert_non_null(strstr(mnnh_error_msg(), "expected [4]"));
    H5Fclose(f);
    mnnh_model_free(m);
}

/* ---------------------------------------------------------------- prediction */

static void test_predict_h5(void **state) {
    char path[512];
    path_in_tmp(path, sizeof path, "pred.h5");
    mnnh_arch a;
    arch_1d(&a);
    mnnh_model *m = make_model(&a, 11);
    const int S = 11, N = a.N;
    float *v = malloc((size_t)S * N * sizeof *v), *u = malloc((size_t)S * N * sizeof *u);
    float *got = malloc((size_t)S * N * sizeof *got), *cp = malloc((size_t)S * N * sizeof *cp);
    for (int i = 0; i < S * N; i++) v[i] = (float)((i * 7919) % 101) / 50.0f - 0.3f;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {(hsize_t)S, (hsize_t)N};
    hid_t in, pred, copy;
    assert_int_equal(mnnh_h5_create_f32(f, "input", 2, dims, 4, &in), MNNH_OK);
    assert_true(H5Dwrite(in, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    assert_int_equal(mnnh_h5_create_f32(f, "prediction", 2, dims, 4, &pred), MNNH_OK);
    assert_int_equal(mnnh_h5_create_f32(f, "copy", 2, dims, 0, &copy), MNNH_OK);
    hsize_t S_got = 0;
    assert_int_equal(mnnh_model_check_input_h5(&a, in, "m.h5", "d.h5", &S_got), MNNH_OK);
    assert_int_equal(S_got, S);
    /* two ranges with different batch sizes, as two ranks would */
    assert_int_equal(mnnh_model_predict_h5(m, in, pred, copy, 0, 5, 2), MNNH_OK);
    assert_int_equal(mnnh_model_predict_h5(m, in, pred, copy, 5, 6, 4), MNNH_OK);
    assert_true(H5Dread(pred, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
    assert_true(H5Dread(copy, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, cp) >= 0);
    assert_memory_equal(cp, v, (size_t)S * N * sizeof *v);
    /* the same samples through mnnh_model_forward in one batch */
    assert_int_equal(mnnh_model_reserve(m, S), MNNH_OK);
    void *dv, *du;
    assert_int_equal(mnnh_backend_alloc(be, &dv, (size_t)S * N * sizeof(float)), MNNH_OK);
    assert_int_equal(mnnh_backend_alloc(be, &du, (size_t)S * N * sizeof(float)), MNNH_OK);
    assert_int_equal(mnnh_backend_upload(be, dv, v, (size_t)S * N * sizeof(float)), MNNH_OK);
    assert_int_equal(mnnh_model_forward(m, S, dv, du), MNNH_OK);
    assert_int_equal(mnnh_backend_download(be, u, du, (size_t)S * N * sizeof(float)), MNNH_OK);
    double scale = 0;
    for (int i = 0; i < S * N; i++) scale = fmax(scale, fabs(u[i]));
    assert_true(scale > 0);
    for (int i = 0; i < S * N; i++)
        if (fabs(u[i] - got[i]) > 1e-5 * scale) fail_msg("prediction %d: %g vs forward %g", i, got[i], u[i]);
    mnnh_backend_release(be, dv);
    mnnh_backend_release(be, du);

    /* a 2D model on this 1D input: the message names both files and shapes */
    mnnh_arch b;
    arch_2d_lc(&b);
    mnnh_error_clear();
    assert_int_equal(mnnh_model_check_input_h5(&b, in, "m2.h5", "d.h5", &S_got), MNNH_ERR_ARG);
    const char *msg = mnnh_error_msg();
    assert_non_null(strstr(msg, "m2.h5"));
    assert_non_null(strstr(msg, "d.h5"));
    assert_non_null(strstr(msg, "[11][16]"));
    assert_non_null(strstr(msg, "[S][8][8]"));
    H5Dclose(copy);
    H5Dclose(pred);
    H5Dclose(in);
    H5Fclose(f);
    free(v);
    free(u);
    free(got);
    free(cp);
    mnnh_model_free(m);
}

/* ---------------------------------------------------------------- main */

static int setup(void **state) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mnnh_test_model_io_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    mnnh_h5_quiet();
    return mnnh_backend_create(&be, "cpu", -1) == MNNH_OK ? 0 : -1;
}

static int teardown(void **state) {
    mnnh_backend_free(be);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_1d_cnn),
        cmocka_unit_test(test_roundtrip_2d_lc),
        cmocka_unit_test(test_layout_by_name),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_not_hdf5),
        cmocka_unit_test(test_no_model_group),
        cmocka_unit_test(test_missing_attribute),
        cmocka_unit_test(test_invalid_attributes),
        cmocka_unit_test(test_missing_dataset),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_wrong_dtype),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupted_chunk),
        cmocka_unit_test(test_corruption_sweep),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_params_into_other_arch),
        cmocka_unit_test(test_predict_h5),
    };
    /* MNNH_TEST_FILTER=test_truncated runs one test (cmocka >= 1.1.5) */
    if (getenv("MNNH_TEST_FILTER")) cmocka_set_test_filter(getenv("MNNH_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
