/* cmd_train.c: `mnnh train`: options (flags and an INI file, section
 * [train]) -> mnnh_train_run on every rank -> exit code (0 done, 2 bad usage
 * or input, 1 runtime failure, 75 stopped by a signal after a checkpoint).
 * Only rank 0 prints. */
#include <mpi.h>
#include <stdio.h>

#include "cli.h"
#include "comm.h"
#include "train.h"

static const char *train_summary =
    "Train MNN-H on every MPI rank: each rank reads its contiguous shard of --train\n"
    "and --valid (parallel HDF5), gradients are summed over ranks every step (one\n"
    "fused allreduce) and all ranks apply the same NAdam update. The global batch\n"
    "--batch is split evenly: each rank takes batch/P samples per step, and a batch\n"
    "not divisible by the rank count P is an error. Each epoch every rank shuffles\n"
    "its own shard (keyed by seed, epoch, rank). Rank 0 writes DIR/last.h5 (every\n"
    "--ckpt-every epochs), DIR/best.h5 (best validation error) and DIR/metrics.jsonl.\n"
    "SIGUSR1/SIGTERM: the ranks stop at the next step, rank 0 checkpoints, exit 75;\n"
    "rerun with --resume auto to continue (any rank count).";

int mnnh_cmd_train(int argc, char **argv) {
    mnnh_train_config cfg;
    mnnh_train_config_defaults(&cfg);
    int own_mpi;
    int rank = mnnh_cli_mpi_begin(&argc, &argv, &own_mpi);
    mnnh_opt opts[] = {
        {"train", MNNH_OPT_STRING, &cfg.train_path, "FILE", "training set (HDF5 /input, /output)", 1, 0},
        {"valid", MNNH_OPT_STRING, &cfg.valid_path, "FILE", "validation set (HDF5)", 1, 0},
        {"out", MNNH_OPT_STRING, &cfg.out_dir, "DIR", "run directory (last.h5, best.h5, metrics.jsonl)", 1, 0},
        {"L", MNNH_OPT_INT, &cfg.L, "L", "levels: N = 2^L m", 1, 0},
        {"m", MNNH_OPT_INT, &cfg.m, "M", "points per finest-level box", 1, 0},
        {"r", MNNH_OPT_INT, &cfg.r, "R", "channels (rank) per level", 1, 0},
        {"K", MNNH_OPT_INT, &cfg.K, "K", "kernel layers per level", 1, 0},
        {"variant", MNNH_OPT_STRING, &cfg.variant, "cnn|lc", "shared (cnn) or locally connected (lc) weights", 0, 0},
        {"nb-ad", MNNH_OPT_INT, &cfg.nb_ad, "NB", "adjacent kernel half-width", 0, 0},
        {"batch", MNNH_OPT_INT, &cfg.batch, "B", "global batch (sum over ranks; divisible by the rank count)", 0, 0},
        {"epochs", MNNH_OPT_INT, &cfg.epochs, "E", "total epochs (a resumed run continues to E)", 0, 0},
        {"lr", MNNH_OPT_DOUBLE, &cfg.lr, "X", "NAdam learning rate", 0, 0},
        {"lr-schedule", MNNH_OPT_STRING, &cfg.schedule, "constant|step|plateau", "learning-rate schedule", 0, 0},
        {"lr-gamma", MNNH_OPT_DOUBLE, &cfg.lr_gamma, "G", "step/plateau: factor applied to the lr", 0, 0},
        {"lr-step", MNNH_OPT_INT, &cfg.lr_step, "E", "step: multiply the lr by gamma every E epochs", 0, 0},
        {"lr-patience", MNNH_OPT_INT, &cfg.lr_patience, "V", "plateau: validations without improvement before a cut", 0, 0},
        {"lr-min", MNNH_OPT_DOUBLE, &cfg.lr_min, "X", "lower bound of the lr", 0, 0},
        {"adam-eps", MNNH_OPT_DOUBLE, &cfg.adam_eps, "X", "NAdam epsilon, added to sqrt(v) (> 0)", 0, 0},
        {"seed", MNNH_OPT_I64, &cfg.seed, "X", "seed of the initial weights and the shuffles", 0, 0},
        {"init", MNNH_OPT_STRING, &cfg.init, "he|glorot", "initial weights of a new run: he (N(0, gain/fan_in)) or glorot (N(0, 2/(fan_in+fan_out)), as the paper's Keras code)", 0, 0},
        {"init-bias", MNNH_OPT_DOUBLE, &cfg.init_bias, "X", "initial bias of every kernel layer a ReLU follows, new runs (0 as Keras; > 0 keeps ReLUs alive)", 0, 0},
        {"valid-every", MNNH_OPT_INT, &cfg.valid_every, "E", "validate every E epochs (and after the last)", 0, 0},
        {"valid-batch", MNNH_OPT_INT, &cfg.valid_batch, "B", "per-rank validation batch (0: max(batch/P, 32))", 0, 0},
        {"ckpt-every", MNNH_OPT_INT, &cfg.ckpt_every, "E", "write last.h5 every E epochs (and after the last)", 0, 0},
        {"density", MNNH_OPT_FLAG, &cfg.density, NULL, "KS density output layer: clip at 0, rescale to n_e (dataset attributes)", 0, 0},
        {"no-normalize", MNNH_OPT_FLAG, &cfg.no_normalize, NULL, "do not normalise inputs/outputs with training-set statistics", 0, 0},
        {"resume", MNNH_OPT_STRING, &cfg.resume, "auto|PATH", "continue from the newest valid checkpoint of DIR (auto) or from PATH", 0, 0},
        {"force", MNNH_OPT_FLAG, &cfg.force, NULL, "start a new run in a DIR that holds checkpoints", 0, 0},
        {"backend", MNNH_OPT_STRING, &cfg.backend, "auto|cpu|ref|cuda", "compute backend (auto: a GPU per rank when present)", 0, 0},
        {"progress", MNNH_OPT_DOUBLE, &cfg.progress_s, "S", "seconds between progress lines on stderr", 0, 0},
        {"stop-after-steps", MNNH_OPT_I64, &cfg.stop_after, "N", "testing: behave as if signalled after global step N", 0, 0},
    };
    mnnh_cli cli = {
        .cmd = "train",
        .usage = "[--config FILE] --train FILE --valid FILE --L L --m M --r R --K K --out DIR "
                 "[--batch B] [--epochs E] [--lr X] [--resume auto|PATH] ...",
        .summary = train_summary,
        .opts = opts,
        .nopts = (int)(sizeof opts / sizeof opts[0]),
        .allow_config = 1,
    };
    int rc = mnnh_cli_parse(&cli, argc, argv, rank == 0);
    if (rc == 0) {
        cfg.opts = opts;
        cfg.nopts = cli.nopts;
        mnnh_comm *c = NULL;
        int preempted = 0;
        mnnh_status st = mnnh_comm_create(&c, MPI_COMM_WORLD);
        if (!st) st = mnnh_train_run(&cfg, c, &preempted);
        if (st) rc = mnnh_cli_fail_rank("train", st, rank);
        else rc = preempted ? MNNH_EXIT_PREEMPTED : MNNH_EXIT_OK;
        mnnh_comm_free(c);
    } else if (rc < 0) {
        rc = MNNH_EXIT_OK;
    }
    mnnh_cli_mpi_end(own_mpi);
    return rc;
}
