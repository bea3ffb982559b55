/* cli.c: declarative option parsing with getopt_long and inih. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

mnnh_opt *mnnh_cli_opt(mnnh_cli *cli, const char *name) {
    for (int i = 0; i < cli->nopts; i++)
        if (strcmp(cli->opts[i].name, name) == 0) return &cli->opts[i];
    return NULL;
}

static const char *opt_type_metavar(const mnnh_opt *o) {
    if (o->metavar) return o->metavar;
    switch (o->type) {
    case MNNH_OPT_INT:
    case MNNH_OPT_I64: return "INT";
    case MNNH_OPT_DOUBLE: return "X";
    case MNNH_OPT_STRING: return "VALUE";
    case MNNH_OPT_FLAG: return "";
    }
    return "";
}

static void opt_print_default(const mnnh_opt *o, FILE *out) {
    switch (o->type) {
    case MNNH_OPT_INT: fprintf(out, " (default %d)", *(int *)o->dest); break;
    case MNNH_OPT_I64: fprintf(out, " (default %lld)", (long long)*(int64_t *)o->dest); break;
    case MNNH_OPT_DOUBLE: fprintf(out, " (default %g)", *(double *)o->dest); break;
    case MNNH_OPT_STRING:
        if (*(const char **)o->dest) fprintf(out, " (default %s)", *(const char **)o->dest);
        break;
    case MNNH_OPT_FLAG: break;
    }
}

void mnnh_cli_help(const mnnh_cli *cli, FILE *out) {
    fprintf(out, "usage: mnnh %s %s\n\n%s\n\noptions:\n", cli->cmd, cli->usage, cli->summary);
    for (int i = 0; i < cli->nopts; i++) {
        const mnnh_opt *o = &cli->opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", o->name, opt_type_metavar(o));
        fprintf(out, "  %-24s %s%s", left, o->help, o->required ? " [required]" : "");
        if (!o->required) opt_print_default(o, out);
        fputc('\n', out);
    }
    if (cli->allow_config)
        fprintf(out, "  %-24s INI file of these options (key = value, optional section [%s]);\n"
                     "  %-24s flags override it\n", "--config FILE", cli->cmd, "");
    fprintf(out, "  %-24s %s\n", "--help", "print this help and exit");
    fprintf(out, "\nexit codes: 0 success, 2 bad usage or input, 1 runtime failure");
    fprintf(out, "%s\n", strcmp(cli->cmd, "train") == 0
                             ? ", 75 stopped by a signal after a checkpoint"
                             : "");
}

/* Store text into the option; returns 0 or -1 when the value is malformed. */
static int opt_store(mnnh_opt *o, const char *text) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case MNNH_OPT_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < INT_MIN || v > INT_MAX) return -1;
        *(int *)o->dest = (int)v;
        break;
    }
    case MNNH_OPT_I64: {
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end) return -1;
        *(int64_t *)o->dest = (int64_t)v;
        break;
    }
    case MNNH_OPT_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v)) return -1;
        *(double *)o->dest = v;
        break;
    }
    case MNNH_OPT_STRING: *(const char **)o->dest = text; break;
    case MNNH_OPT_FLAG: {
        if (!text || !strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes"))
            *(int *)o->dest = 1;
        else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no"))
            *(int *)o->dest = 0;
        else
            return -1;
        break;
    }
    }
    o->seen = 1;
    return 0;
}

/* Config values are copied so they outlive the INI parser. Kept for the life
 * of the process (a command runs once). */
typedef struct {
    mnnh_cli *cli;
    const char *path;
    int verbose;
    int bad;
    int from_flags[128]; /* option already given on the command line */
} ini_ctx;

static void key_to_option(const char *key, char *out, size_t len) {
    size_t i = 0;
    for (; key[i] && i + 1 < len; i++) out[i] = key[i] == '_' ? '-' : key[i];
    out[i] = '\0';
}

static int cli_ini_handler(void *user, const char *section, const char *key, const char *value) {
    ini_ctx *c = user;
    if (section[0] && strcmp(section, c->cli->cmd) != 0) return 1; /* other command */
    char name[128];
    key_to_option(key, name, sizeof name);
    mnnh_opt *o = mnnh_cli_opt(c->cli, name);
    if (!o) {
        if (c->verbose)
            fprintf(stderr, "mnnh %s: error: %s: unknown option '%s' in the config file\n",
                    c->cli->cmd, c->path, key);
        c->bad = 1;
        return 1;
    }
    int idx = (int)(o - c->cli->opts);
    if (idx < 128 && c->from_flags[idx]) return 1; /* the flag wins */
    char *copy = strdup(value);
    if (!copy || opt_store(o, copy) != 0) {
        if (c->verbose)
            fprintf(stderr, "mnnh %s: error: %s: bad value '%s' for '%s'\n", c->cli->cmd,
                    c->path, value, key);
        c->bad = 1;
    }
    return 1;
}

static int usage_error(const mnnh_cli *cli, int verbose, const char *fmt, const char *arg) {
    if (verbose) {
        fprintf(stderr, "mnnh %s: error: ", cli->cmd);
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n(see 'mnnh %s --help')\n", cli->cmd);
    }
    return MNNH_EXIT_USAGE;
}

int mnnh_cli_parse(mnnh_cli *cli, int argc, char **argv, int verbose) {
    enum { OPT_HELP = 1000, OPT_CONFIG = 1001 };
    struct option lopts[132];
    int n = 0;
    for (int i = 0; i < cli->nopts && n < 128; i++, n++) {
        lopts[n] = (struct option){cli->opts[i].name,
                                   cli->opts[i].type == MNNH_OPT_FLAG ? no_argument
                                                                      : required_argument,
                                   NULL, i};
    }
    lopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    if (cli->allow_config) lopts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    lopts[n] = (struct option){NULL, 0, NULL, 0};

    ini_ctx ictx = {.cli = cli, .verbose = verbose};
    const char *config = NULL;
    opterr = 0;
    optind = 1;
    int c, li;
    while ((c = getopt_long(argc, argv, ":", lopts, &li)) != -1) {
        if (c == OPT_HELP) {
            if (verbose) mnnh_cli_help(cli, stdout);
            return -1;
        } else if (c == OPT_CONFIG) {
            config = optarg;
        } else if (c == '?') {
            return usage_error(cli, verbose, "unknown option '%s'", argv[optind - 1]);
        } else if (c == ':') {
            return usage_error(cli, verbose, "option '%s' needs a value", argv[optind - 1]);
        } else if (c >= 0 && c < cli->nopts) {
            mnnh_opt *o = &cli->opts[c];
            if (opt_store(o, optarg) != 0) {
                if (verbose)
                    fprintf(stderr, "mnnh %s: error: bad value '%s' for --%s (expected %s)\n",
                            cli->cmd, optarg, o->name, opt_type_metavar(o));
                return MNNH_EXIT_USAGE;
            }
            if (c < 128) ictx.from_flags[c] = 1;
        }
    }
    int npos = argc - optind;
    if (npos != cli->npositional) {
        if (npos > cli->npositional)
            return usage_error(cli, verbose, "unexpected argument '%s'",
                               argv[optind + cli->npositional]);
        return usage_error(cli, verbose, "missing argument %s",
                           cli->positional[npos] ? cli->positional[npos] : "");
    }
    if (config) {
        ictx.path = config;
        int rc = ini_parse(config, cli_ini_handler, &ictx);
        if (rc < 0) return usage_error(cli, verbose, "cannot read config file '%s'", config);
        if (rc > 0) {
            if (verbose)
                fprintf(stderr, "mnnh %s: error: %s: syntax error on line %d\n", cli->cmd,
                        config, rc);
            return MNNH_EXIT_USAGE;
        }
        if (ictx.bad) return MNNH_EXIT_USAGE;
    }
    for (int i = 0; i < cli->nopts; i++)
        if (cli->opts[i].required && !cli->opts[i].seen)
            return usage_error(cli, verbose, "missing required option --%s", cli->opts[i].name);
    return 0;
}

int mnnh_cli_fail(const char *cmd, mnnh_status st) {
    fprintf(stderr, "mnnh %s: error: %s\n", cmd,
            mnnh_error_msg()[0] ? mnnh_error_msg() : mnnh_status_str(st));
    return (st == MNNH_ERR_ARG || st == MNNH_ERR_FORMAT) ? MNNH_EXIT_USAGE : MNNH_EXIT_RUNTIME;
}

int mnnh_cli_fail_rank(const char *cmd, mnnh_status st, int rank) {
    if (rank == 0) return mnnh_cli_fail(cmd, st);
    return (st == MNNH_ERR_ARG || st == MNNH_ERR_FORMAT) ? MNNH_EXIT_USAGE : MNNH_EXIT_RUNTIME;
}

int mnnh_cli_mpi_begin(int *argc, char ***argv, int *own) {
    int inited = 0, rank = 0;
    MPI_Initialized(&inited);
    *own = !inited;
    if (!inited) MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

void mnnh_cli_mpi_end(int own) {
    if (own) MPI_Finalize();
}
