/* main.c: the `mnnh` program: dispatches to a subcommand (cli.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} mnnh_command;

static const mnnh_command commands[] = {
    {"generate", mnnh_cmd_generate, "generate a KS or NLSE dataset across MPI ranks (one HDF5 file)"},
    {"init", mnnh_cmd_init, "write a freshly initialised model file"},
    {"info", mnnh_cmd_info, "describe a model, checkpoint or dataset file"},
    {"train", mnnh_cmd_train, "train MNN-H across MPI ranks (checkpoints, resume, metrics)"},
    {"validate", mnnh_cmd_validate, "distributed validation of a checkpoint on a dataset"},
    {"predict", mnnh_cmd_predict, "run a model over a dataset's /input, write /prediction"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: mnnh <command> [options]   (mnnh <command> --help for its options)\n\n"
                 "MNN-H: multiscale neural networks based on hierarchical matrices,\n"
                 "trained across MPI ranks.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexit codes: 0 success, 2 bad usage or input, 1 runtime failure,\n"
                 "75 stopped by a signal after a checkpoint (requeue)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return MNNH_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return MNNH_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mnnh 0.1.0\n");
        return MNNH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mnnh: error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return MNNH_EXIT_USAGE;
}
