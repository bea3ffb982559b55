/* checkpoint.c: checkpoint write (rank 0, atomic) and verified read, and the
 * choice of the checkpoint to resume from. Every HDF5 call is checked; a
 * failure names the file and the object. */
#include "checkpoint.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mnnh/model_io.h"

const char *const mnnh_metrics_fields[MNNH_METRICS_NFIELDS] = {
    "epoch", "step", "train_loss", "train_rel_err", "valid_rel_err", "lr",
    "samples_per_s", "seconds", "compute_s", "compute_mean_s", "allreduce_s", "allreduce_max_s",
    "io_s", "ckpt_s"};

mnnh_status mnnh_metrics_push(mnnh_metrics *m, const mnnh_metrics_rec *rec) {
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        mnnh_metrics_rec *r = realloc(m->r, (size_t)cap * sizeof *r);
        if (!r) return mnnh_error_set(MNNH_ERR_NOMEM, "metrics history");
        m->r = r;
        m->cap = cap;
    }
    m->r[m->n++] = *rec;
    return MNNH_OK;
}

void mnnh_metrics_free(mnnh_metrics *m) {
    free(m->r);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ HDF5 helpers */

static mnnh_status ck_h5_fail(mnnh_status st, const char *path, const char *what, const char *name) {
    char detail[512];
    mnnh_h5_error_detail(detail, sizeof detail);
    if (detail[0]) return mnnh_error_set(st, "%s: %s %s (%s)", path, what, name, detail);
    return mnnh_error_set(st, "%s: %s %s", path, what, name);
}

static mnnh_status ck_attr_read(hid_t loc, const char *path, const char *group, const char *name,
                                hid_t type, void *v) {
    char full[256];
    snprintf(full, sizeof full, "%s@%s", group, name);
    if (H5Aexists(loc, name) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: missing attribute %s", path, full);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Aread(a, type, v);
    if (a >= 0) H5Aclose(a);
    if (e < 0) return ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot read attribute", full);
    return MNNH_OK;
}
static mnnh_status ck_read_i64(hid_t loc, const char *p, const char *g, const char *n, int64_t *v) {
    return ck_attr_read(loc, p, g, n, H5T_NATIVE_INT64, v);
}
static mnnh_status ck_read_f64(hid_t loc, const char *p, const char *g, const char *n, double *v) {
    return ck_attr_read(loc, p, g, n, H5T_NATIVE_DOUBLE, v);
}

static mnnh_status ck_write_vec(hid_t loc, const char *name, const float *x, size_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t d;
    MNNH_TRY(mnnh_h5_create_f32(loc, name, 1, dims, 0, &d));
    herr_t e = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(d);
    if (e < 0) return ck_h5_fail(MNNH_ERR_IO, "checkpoint", "cannot write dataset", name);
    return MNNH_OK;
}

static mnnh_status ck_write_dvec(hid_t loc, const char *name, const double *x, size_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = s < 0 ? -1 : H5Dcreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : (n ? H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) : 0);
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    if (e < 0) return ck_h5_fail(MNNH_ERR_IO, "checkpoint", "cannot write dataset", name);
    return MNNH_OK;
}

/* Read a 1D dataset of exactly n elements (its checksum verified by HDF5). */
static mnnh_status ck_read_vec(hid_t loc, const char *path, const char *name, hid_t mtype, void *x,
                               size_t n) {
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: missing dataset %s", path, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot open dataset", name);
    hid_t s = H5Dget_space(d);
    hssize_t np = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
    if (s >= 0) H5Sclose(s);
    mnnh_status st = MNNH_OK;
    if (np != (hssize_t)n)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: dataset %s holds %lld values, expected %zu", path,
                            name, (long long)np, n);
    else if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
        st = ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot read dataset (corrupted?)", name);
    H5Dclose(d);
    return st;
}

static hid_t ck_group(hid_t file, const char *name) {
    return H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* ------------------------------------------------------------------ write */

static mnnh_status ck_write_optimizer(hid_t g, const mnnh_nadam *o) {
    size_t n = o->n;
    float *host = malloc((n ? n : 1) * sizeof(float));
    if (!host) return mnnh_error_set(MNNH_ERR_NOMEM, "optimizer state");
    mnnh_status st = mnnh_backend_download(o->be, host, o->m, n * sizeof(float));
    if (!st) st = ck_write_vec(g, "m", host, n);
    if (!st) st = mnnh_backend_download(o->be, host, o->v, n * sizeof(float));
    if (!st) st = ck_write_vec(g, "v", host, n);
    free(host);
    MNNH_TRY(st);
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "step", o->step));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "mu_product", o->mu_product));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "lr", o->h.lr));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "beta1", o->h.beta1));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "beta2", o->h.beta2));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "eps", o->h.eps));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "momentum_decay", o->h.momentum_decay));
    return mnnh_h5_attr_write_string(g, "algorithm", "NAdam (torch.optim.NAdam)");
}

static mnnh_status ck_write_state(hid_t g, const mnnh_train_state *s) {
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "epoch", s->epoch));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "step", s->step));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "epoch_step", s->epoch_step));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "seed", (int64_t)s->seed));
    MNNH_TRY(mnnh_h5_attr_write_string(
        g, "data_order", "philox(seed, epoch, rank) Fisher-Yates shuffle of each rank's shard; "
                         "the epoch in progress resumes after epoch_step steps"));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "best_valid_rel_err", s->best_valid));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "best_epoch", s->best_epoch));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "lr", s->lr));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "plateau_bad", s->plateau_bad));
    MNNH_TRY(mnnh_h5_attr_write_i64(g, "world_size", s->world_size));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "epoch_sum_err2", s->ep_err2));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "epoch_sum_err", s->ep_err));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "epoch_samples", s->ep_count));
    MNNH_TRY(mnnh_h5_attr_write_f64(g, "epoch_seconds", s->ep_seconds));
    return mnnh_h5_attr_write_f64(g, "seconds", s->seconds);
}

static mnnh_status ck_write_config(hid_t g, const mnnh_opt *o, int n) {
    for (int i = 0; i < n; i++) {
        switch (o[i].type) {
        case MNNH_OPT_INT:
        case MNNH_OPT_FLAG: MNNH_TRY(mnnh_h5_attr_write_i64(g, o[i].name, *(int *)o[i].dest)); break;
        case MNNH_OPT_I64: MNNH_TRY(mnnh_h5_attr_write_i64(g, o[i].name, *(int64_t *)o[i].dest)); break;
        case MNNH_OPT_DOUBLE: MNNH_TRY(mnnh_h5_attr_write_f64(g, o[i].name, *(double *)o[i].dest)); break;
        case MNNH_OPT_STRING: {
            const char *v = *(const char **)o[i].dest;
            MNNH_TRY(mnnh_h5_attr_write_string(g, o[i].name, v ? v : ""));
            break;
        }
        }
    }
    return MNNH_OK;
}

static mnnh_status ck_write_metrics(hid_t g, const mnnh_metrics *m) {
    double *col = malloc(((size_t)m->n + 1) * sizeof(double));
    if (!col) return mnnh_error_set(MNNH_ERR_NOMEM, "metrics");
    mnnh_status st = MNNH_OK;
    for (int f = 0; f < MNNH_METRICS_NFIELDS && !st; f++) {
        for (int i = 0; i < m->n; i++) col[i] = ((const double *)&m->r[i])[f];
        st = ck_write_dvec(g, mnnh_metrics_fields[f], col, (size_t)m->n);
    }
    free(col);
    return st;
}

static mnnh_status ck_write_groups(hid_t file, const mnnh_ckpt *ck) {
    static const char *names[] = {"optimizer", "state", "config", "metrics"};
    hid_t g[4] = {-1, -1, -1, -1};
    mnnh_status st = mnnh_model_write_h5(file, ck->model);
    for (int i = 0; i < 4 && !st; i++)
        if ((g[i] = ck_group(file, names[i])) < 0)
            st = ck_h5_fail(MNNH_ERR_IO, "checkpoint", "cannot create group", names[i]);
    if (!st) st = ck_write_optimizer(g[0], ck->opt);
    if (!st) st = ck_write_state(g[1], ck->state);
    if (!st) st = ck_write_config(g[2], ck->config, ck->nconfig);
    if (!st && ck->metrics) st = ck_write_metrics(g[3], ck->metrics);
    for (int i = 0; i < 4; i++)
        if (g[i] >= 0) H5Gclose(g[i]);
    return st;
}

mnnh_status mnnh_ckpt_write(const char *path, const mnnh_ckpt *ck) {
    mnnh_h5_atomic a;
    mnnh_status st = mnnh_h5_atomic_open(&a, path);
    if (st) return mnnh_error_prefix(st, "checkpoint %s", path);
    st = ck_write_groups(a.file, ck);
    if (st) {
        mnnh_h5_atomic_abort(&a);
        return mnnh_error_prefix(st, "writing checkpoint %s", path);
    }
    st = mnnh_h5_atomic_commit(&a);
    if (st) return mnnh_error_prefix(st, "committing checkpoint %s", path);
    return MNNH_OK;
}

/* ------------------------------------------------------------------- read */

static mnnh_status ck_read_optimizer(hid_t file, const char *path, mnnh_ckpt_data *d) {
    if (H5Lexists(file, "optimizer", H5P_DEFAULT) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no group /optimizer (a model file, not a checkpoint?)", path);
    hid_t g = H5Gopen2(file, "optimizer", H5P_DEFAULT);
    if (g < 0) return ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot open group", "/optimizer");
    mnnh_status st = ck_read_vec(g, path, "m", H5T_NATIVE_FLOAT, d->m, d->n);
    if (!st) st = ck_read_vec(g, path, "v", H5T_NATIVE_FLOAT, d->v, d->n);
    if (!st) st = ck_read_i64(g, path, "/optimizer", "step", &d->opt_step);
    if (!st) st = ck_read_f64(g, path, "/optimizer", "mu_product", &d->mu_product);
    H5Gclose(g);
    return st;
}

static mnnh_status ck_read_state(hid_t file, const char *path, mnnh_train_state *s) {
    if (H5Lexists(file, "state", H5P_DEFAULT) <= 0)
        return mnnh_error_set(MNNH_ERR_FORMAT, "%s: no group /state", path);
    hid_t g = H5Gopen2(file, "state", H5P_DEFAULT);
    if (g < 0) return ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot open group", "/state");
    int64_t seed = 0;
    const char *G = "/state";
    mnnh_status st = ck_read_i64(g, path, G, "epoch", &s->epoch);
    if (!st) st = ck_read_i64(g, path, G, "step", &s->step);
    if (!st) st = ck_read_i64(g, path, G, "epoch_step", &s->epoch_step);
    if (!st) st = ck_read_i64(g, path, G, "seed", &seed);
    if (!st) st = ck_read_f64(g, path, G, "best_valid_rel_err", &s->best_valid);
    if (!st) st = ck_read_i64(g, path, G, "best_epoch", &s->best_epoch);
    if (!st) st = ck_read_f64(g, path, G, "lr", &s->lr);
    if (!st) st = ck_read_i64(g, path, G, "plateau_bad", &s->plateau_bad);
    if (!st) st = ck_read_i64(g, path, G, "world_size", &s->world_size);
    if (!st) st = ck_read_f64(g, path, G, "epoch_sum_err2", &s->ep_err2);
    if (!st) st = ck_read_f64(g, path, G, "epoch_sum_err", &s->ep_err);
    if (!st) st = ck_read_f64(g, path, G, "epoch_samples", &s->ep_count);
    if (!st) st = ck_read_f64(g, path, G, "epoch_seconds", &s->ep_seconds);
    if (!st) st = ck_read_f64(g, path, G, "seconds", &s->seconds);
    s->seed = (uint64_t)seed;
    H5Gclose(g);
    if (!st && (s->epoch < 0 || s->step < 0 || s->epoch_step < 0))
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /state holds a negative epoch or step", path);
    return st;
}

static mnnh_status ck_read_metrics(hid_t file, const char *path, mnnh_metrics *m) {
    if (H5Lexists(file, "metrics", H5P_DEFAULT) <= 0) return MNNH_OK; /* optional */
    hid_t g = H5Gopen2(file, "metrics", H5P_DEFAULT);
    if (g < 0) return ck_h5_fail(MNNH_ERR_FORMAT, path, "cannot open group", "/metrics");
    hid_t d = H5Lexists(g, "epoch", H5P_DEFAULT) > 0 ? H5Dopen2(g, "epoch", H5P_DEFAULT) : -1;
    hssize_t n = 0;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        n = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
        if (s >= 0) H5Sclose(s);
        H5Dclose(d);
    }
    mnnh_status st = n < 0 ? mnnh_error_set(MNNH_ERR_FORMAT, "%s: bad /metrics/epoch", path) : MNNH_OK;
    double *col = st ? NULL : malloc(((size_t)n + 1) * sizeof(double));
    mnnh_metrics_rec *r = st ? NULL : calloc((size_t)n + 1, sizeof *r);
    if (!st && (!col || !r)) st = mnnh_error_set(MNNH_ERR_NOMEM, "metrics");
    for (int f = 0; f < MNNH_METRICS_NFIELDS && !st; f++) {
        st = ck_read_vec(g, path, mnnh_metrics_fields[f], H5T_NATIVE_DOUBLE, col, (size_t)n);
        for (hssize_t i = 0; i < n && !st; i++) ((double *)&r[i])[f] = col[i];
    }
    free(col);
    H5Gclose(g);
    if (st) {
        free(r);
        return st;
    }
    m->r = r;
    m->n = m->cap = (int)n;
    return MNNH_OK;
}

static mnnh_status ck_read_all(hid_t file, const char *path, mnnh_ckpt_data *d) {
    MNNH_TRY(mnnh_model_read_arch_h5(file, &d->arch, &d->norm));
    mnnh_param_table tab;
    MNNH_TRY(mnnh_param_table_build(&d->arch, &tab));
    d->n = tab.total;
    d->params = malloc(d->n * sizeof(float));
    d->m = malloc(d->n * sizeof(float));
    d->v = malloc(d->n * sizeof(float));
    mnnh_status st = (!d->params || !d->m || !d->v)
                         ? mnnh_error_set(MNNH_ERR_NOMEM, "%s: checkpoint buffers", path)
                         : MNNH_OK;
    if (!st) st = mnnh_model_read_params_host_h5(file, &tab, d->params);
    mnnh_param_table_free(&tab);
    if (!st) st = ck_read_optimizer(file, path, d);
    if (!st) st = ck_read_state(file, path, &d->state);
    if (!st) st = ck_read_metrics(file, path, &d->metrics);
    if (!st && d->opt_step != d->state.step)
        st = mnnh_error_set(MNNH_ERR_FORMAT, "%s: /optimizer@step %lld differs from /state@step %lld",
                            path, (long long)d->opt_step, (long long)d->state.step);
    return st;
}

mnnh_status mnnh_ckpt_read(const char *path, mnnh_ckpt_data *d) {
    memset(d, 0, sizeof *d);
    hid_t file;
    MNNH_TRY(mnnh_h5_open_read(path, &file));
    mnnh_status st = ck_read_all(file, path, d);
    H5Fclose(file);
    if (st) mnnh_ckpt_data_free(d);
    return st;
}

void mnnh_ckpt_data_free(mnnh_ckpt_data *d) {
    free(d->params);
    free(d->m);
    free(d->v);
    mnnh_metrics_free(&d->metrics);
    d->params = d->m = d->v = NULL;
}

mnnh_status mnnh_ckpt_check_arch(const char *path, const mnnh_arch *c, const mnnh_arch *r) {
    char have[128], want[128];
    snprintf(have, sizeof have, "dim=%d N=%d L=%d m=%d r=%d K=%d variant=%s nb_ad=%d", c->dim, c->N,
             c->L, c->m, c->r, c->K, mnnh_variant_name(c->variant), c->nb_ad);
    snprintf(want, sizeof want, "dim=%d N=%d L=%d m=%d r=%d K=%d variant=%s nb_ad=%d", r->dim, r->N,
             r->L, r->m, r->r, r->K, mnnh_variant_name(r->variant), r->nb_ad);
    int same = !strcmp(have, want);
    for (int l = 2; same && l <= r->L; l++) same = c->nb[l] == r->nb[l];
    if (!same)
        return mnnh_error_set(MNNH_ERR_ARG,
                              "--resume %s: checkpoint of another architecture (%s) than this run "
                              "(%s)",
                              path, have, want);
    return MNNH_OK;
}

/* ----------------------------------------------------------------- resume */

static int ck_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

mnnh_status mnnh_ckpt_resolve(const char *dir, const char *resume, mnnh_ckpt_data *d,
                              char *chosen, size_t chosen_len, int *found) {
    *found = 0;
    if (strcmp(resume, "auto") != 0) {
        mnnh_status st = mnnh_ckpt_read(resume, d);
        if (st) return mnnh_error_prefix(st == MNNH_ERR_IO ? st : MNNH_ERR_ARG, "--resume %s", resume);
        snprintf(chosen, chosen_len, "%s", resume);
        *found = 1;
        return MNNH_OK;
    }
    static const char *names[2] = {"last.h5", "best.h5"};
    char path[2][4200], why[2][1024];
    mnnh_ckpt_data cand[2];
    int ok[2] = {0, 0}, present = 0;
    for (int i = 0; i < 2; i++) {
        memset(&cand[i], 0, sizeof cand[i]);
        why[i][0] = '\0';
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
        if (!ck_exists(path[i])) continue;
        present++;
        if (mnnh_ckpt_read(path[i], &cand[i]) == MNNH_OK) ok[i] = 1;
        else {
            snprintf(why[i], sizeof why[i], "%s", mnnh_error_msg());
            fprintf(stderr, "mnnh train: warning: skipping checkpoint %s: %s\n", path[i], why[i]);
        }
    }
    if (!present) return MNNH_OK; /* a fresh run */
    if (!ok[0] && !ok[1])
        return mnnh_error_set(MNNH_ERR_FORMAT,
                              "--resume auto: no valid checkpoint in %s (%s%s%s); remove the "
                              "corrupt file(s) to start over",
                              dir, why[0], why[0][0] && why[1][0] ? "; " : "", why[1]);
    /* newest = most optimizer steps; last.h5 wins a tie */
    int pick = ok[0] && (!ok[1] || cand[0].state.step >= cand[1].state.step) ? 0 : 1;
    *d = cand[pick];
    mnnh_ckpt_data_free(&cand[1 - pick]);
    snprintf(chosen, chosen_len, "%s", path[pick]);
    *found = 1;
    return MNNH_OK;
}
