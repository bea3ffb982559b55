/* cli.h: the `mnnh` command line: subcommand entry points, a declarative
 * option parser (getopt_long + an optional INI file given by --config, flags
 * override the file), and the exit-code convention.
 *
 * Exit codes: 0 success, 2 bad usage or bad input, 1 runtime failure,
 * 75 (EX_TEMPFAIL) stopped by a signal after a checkpoint. */
#ifndef MNNH_CLI_H
#define MNNH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "mnnh/error.h"

#define MNNH_EXIT_OK 0
#define MNNH_EXIT_RUNTIME 1
#define MNNH_EXIT_USAGE 2
#define MNNH_EXIT_PREEMPTED 75

typedef enum {
    MNNH_OPT_INT,     /* int */
    MNNH_OPT_I64,     /* int64_t */
    MNNH_OPT_DOUBLE,  /* double */
    MNNH_OPT_STRING,  /* const char * (points into argv or a kept copy) */
    MNNH_OPT_FLAG     /* int set to 1, takes no argument */
} mnnh_opt_type;

typedef struct {
    const char *name;     /* long option name, "grid" for --grid */
    mnnh_opt_type type;
    void *dest;           /* where the value goes; holds the default on entry */
    const char *metavar;  /* "N" in "--grid N" */
    const char *help;
    int required;
    int seen;             /* set by the parser when given (flag or config) */
} mnnh_opt;

typedef struct {
    const char *cmd;      /* "generate" */
    const char *usage;    /* one-line synopsis after "mnnh <cmd>" */
    const char *summary;  /* paragraph shown by --help */
    mnnh_opt *opts;
    int nopts;
    int allow_config;     /* accept --config FILE (INI, section [cmd] or none) */
    int npositional;      /* number of positional arguments expected */
    const char *positional[4];
} mnnh_cli;

/* Parse argv. Returns 0 to go on, -1 when --help was printed (exit 0), or
 * MNNH_EXIT_USAGE after printing an error naming the option (only when
 * verbose, so that MPI ranks other than 0 stay quiet). */
int mnnh_cli_parse(mnnh_cli *cli, int argc, char **argv, int verbose);
void mnnh_cli_help(const mnnh_cli *cli, FILE *out);
/* The option with this name, NULL if none. */
mnnh_opt *mnnh_cli_opt(mnnh_cli *cli, const char *name);

/* Print "mnnh <cmd>: error: <message>" and return the exit code of st:
 * ARG and FORMAT map to 2, everything else to 1. */
int mnnh_cli_fail(const char *cmd, mnnh_status st);
/* The same under MPI: only rank 0 prints; every rank returns the exit code. */
int mnnh_cli_fail_rank(const char *cmd, mnnh_status st, int rank);

/* MPI around a command: initialise MPI unless the caller already did (then
 * *own = 1 and mnnh_cli_mpi_end finalises it); returns this rank. */
int mnnh_cli_mpi_begin(int *argc, char ***argv, int *own);
void mnnh_cli_mpi_end(int own);

/* Subcommands: int mnnh_cmd_<name>(int argc, char **argv), argv[0] is the name. */
int mnnh_cmd_init(int argc, char **argv);
int mnnh_cmd_info(int argc, char **argv);
int mnnh_cmd_predict(int argc, char **argv);
int mnnh_cmd_train(int argc, char **argv);
int mnnh_cmd_validate(int argc, char **argv);
int mnnh_cmd_generate(int argc, char **argv);

#endif
