/* cmd_init.c: `mnnh init`: write a freshly initialised model file.
 *
 * The weights are drawn from the seed alone (mnnh_model_init_params_with), so the
 * same options give a bit-identical file on any machine; normalisation is left
 * at its defaults (training sets it from the training set). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mnnh/model_io.h"

/* Refuse to replace an existing file unless --force: a trained model is
 * expensive and `init` is cheap to rerun. */
static int init_check_out(const char *out, int force) {
    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr, "mnnh init: error: %s exists (use --force to overwrite)\n", out);
        return MNNH_EXIT_USAGE;
    }
    return 0;
}

static mnnh_status init_write(const mnnh_arch *arch, uint64_t seed, mnnh_init init,
                              const char *out) {
    mnnh_backend *be = NULL;
    mnnh_model *model = NULL;
    mnnh_status st = mnnh_backend_create(&be, "cpu", -1);
    if (!st) st = mnnh_model_create(&model, arch, be);
    if (!st) st = mnnh_model_init_params_with(model, seed, init);
    if (!st) st = mnnh_model_save(model, out);
    if (!st)
        printf("wrote %s: %dD %s N=%d L=%d m=%d r=%d K=%d nb_ad=%d, %zu parameters, %s init, seed %llu\n",
               out, arch->dim, mnnh_variant_name(arch->variant), arch->N, arch->L, arch->m,
               arch->r, arch->K, arch->nb_ad, mnnh_model_nparams(model), mnnh_init_name(init),
               (unsigned long long)seed);
    if (model) mnnh_model_free(model);
    if (be) mnnh_backend_free(be);
    return st;
}

int mnnh_cmd_init(int argc, char **argv) {
    int dim = 0, L = 0, m = 0, r = 0, K = 0, nb_ad = 1, force = 0;
    int64_t seed = 1;
    const char *variant = "cnn", *out = NULL, *init_name = "he";
    mnnh_opt opts[] = {
        {"dim", MNNH_OPT_INT, &dim, "D", "spatial dimension, 1 or 2", 1, 0},
        {"L", MNNH_OPT_INT, &L, "L", "number of levels (N = 2^L m)", 1, 0},
        {"m", MNNH_OPT_INT, &m, "M", "grid points per finest block", 1, 0},
        {"r", MNNH_OPT_INT, &r, "R", "channels (rank) of the far-field part", 1, 0},
        {"K", MNNH_OPT_INT, &K, "K", "kernel layers per level", 1, 0},
        {"variant", MNNH_OPT_STRING, &variant, "cnn|lc", "shared (cnn) or locally connected (lc) weights", 0, 0},
        {"nb-ad", MNNH_OPT_INT, &nb_ad, "X", "half-width of the adjacent kernels", 0, 0},
        {"seed", MNNH_OPT_I64, &seed, "X", "seed of the normal weight initialisation", 0, 0},
        {"init", MNNH_OPT_STRING, &init_name, "he|glorot", "weight variance: he (gain/fan_in) or glorot (2/(fan_in+fan_out))", 0, 0},
        {"out", MNNH_OPT_STRING, &out, "FILE", "model file to write (HDF5)", 1, 0},
        {"force", MNNH_OPT_FLAG, &force, NULL, "overwrite FILE if it exists", 0, 0},
    };
    mnnh_cli cli = {
        .cmd = "init",
        .usage = "--dim D --L L --m M --r R --K K [--variant cnn|lc] [--seed X] [--init he|glorot] --out FILE",
        .summary = "Write a freshly initialised MNN-H model file (N = 2^L m grid points per axis;\n"
                   "nb = 2 at level 2 and 3 above; weights normal, biases zero).",
        .opts = opts,
        .nopts = (int)(sizeof opts / sizeof opts[0]),
        .allow_config = 1,
    };
    int rc = mnnh_cli_parse(&cli, argc, argv, 1);
    if (rc) return rc < 0 ? MNNH_EXIT_OK : rc;
    if (seed < 0) {
        fprintf(stderr, "mnnh init: error: --seed %lld: must be >= 0\n", (long long)seed);
        return MNNH_EXIT_USAGE;
    }
    mnnh_init init;
    if (mnnh_init_parse(init_name, &init)) {
        fprintf(stderr, "mnnh init: error: --init %s: expected he or glorot\n", init_name);
        return MNNH_EXIT_USAGE;
    }
    mnnh_arch arch;
    mnnh_variant v;
    mnnh_status st = mnnh_variant_parse(variant, &v);
    if (st) return mnnh_cli_fail("init", st);
    mnnh_arch_set(&arch, dim, L, m, r, K, v);
    arch.nb_ad = nb_ad;
    st = mnnh_arch_validate(&arch);
    if (st) return mnnh_cli_fail("init", st);
    if ((rc = init_check_out(out, force))) return rc;
    st = init_write(&arch, (uint64_t)seed, init, out);
    return st ? mnnh_cli_fail("init", st) : MNNH_EXIT_OK;
}
