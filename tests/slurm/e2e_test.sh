#!/usr/bin/env bash
# e2e_test.sh: generate -> train -> validate on the local Slurm, with the real job
# scripts: two generate.sbatch jobs (a tiny KS 2D training and validation set,
# N=16, 2 tasks each), train.sbatch after both (afterok, 2 tasks, MNN-H cnn
# L=2 m=4 r=4 K=2: the sizes of common.sh), validate.sbatch after it (2 tasks, best.h5 on the
# validation set). Checks every job completed, the datasets, the run directory
# (last.h5, best.h5, metrics.jsonl with one record per epoch) and the summary.
# The datasets stay in $MNNH_TEST_WORK/data for the other Slurm tests (fixture
# slurm_data).
#
# usage: MNNH_BIN=build/mnnh tests/slurm/e2e_test.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
slurm_test_init e2e
require_mnnh
for c in generate train validate; do require_subcommand "$c"; done

DATA=${MNNH_TEST_WORK:-$PWD/slurm-work}/data
rm -rf "$DATA"
mkdir -p "$DATA"
EPOCHS=3

gt=$(MNNH_OUT=$DATA/train.h5 MNNH_GRID=$TEST_GRID MNNH_SAMPLES=64 MNNH_SEED=11 MNNH_NG=2 \
     submit -n 2 --output="$WORK/generate-train-%j.out" "$JOBS/generate.sbatch")
gv=$(MNNH_OUT=$DATA/valid.h5 MNNH_GRID=$TEST_GRID MNNH_SAMPLES=32 MNNH_SEED=12 MNNH_NG=2 \
     submit -n 2 --output="$WORK/generate-valid-%j.out" "$JOBS/generate.sbatch")
tr=$(MNNH_TRAIN=$DATA/train.h5 MNNH_VALID=$DATA/valid.h5 MNNH_OUT=$WORK/run \
     MNNH_L=$TEST_L MNNH_M=$TEST_M MNNH_R=$TEST_R MNNH_K=$TEST_K MNNH_VARIANT=cnn MNNH_BATCH=16 MNNH_EPOCHS=$EPOCHS MNNH_SEED=3 \
     submit -n 2 --dependency=afterok:$gt:$gv --output="$WORK/train-%j.out" "$JOBS/train.sbatch")
va=$(MNNH_MODEL=$WORK/run/best.h5 MNNH_DATA=$DATA/valid.h5 MNNH_OUT=$WORK/errors.h5 \
     submit -n 2 --dependency=afterok:$tr --output="$WORK/validate-%j.out" "$JOBS/validate.sbatch")
note "submitted generate $gt $gv, train $tr, validate $va"

expect_completed "$gt" 120 "$WORK/generate-train-$gt.out"
expect_completed "$gv" 120 "$WORK/generate-valid-$gv.out"
"$PY" - "$DATA/train.h5" "$DATA/valid.h5" "$TEST_GRID" <<'PY'
import sys, h5py
N = int(sys.argv[3])
for path, n in zip(sys.argv[1:3], (64, 32)):
    with h5py.File(path, "r") as f:
        for d in ("input", "output"):
            assert f[d].shape == (n, N, N), "%s /%s has shape %s" % (path, d, f[d].shape)
        eq = f.attrs["equation"]
        eq = eq.decode() if isinstance(eq, bytes) else str(eq)
        assert eq == "ks" and int(f.attrs["dim"]) == 2 and int(f.attrs["N"]) == N, dict(f.attrs)
        print("%s: /input and /output %s, equation %s" % (path, f["input"].shape, eq))
PY

expect_completed "$tr" 180 "$WORK/train-$tr.out"
for f in last.h5 best.h5 metrics.jsonl; do [[ -s $WORK/run/$f ]] || fail "train left no $WORK/run/$f"; done
"$PY" - "$WORK/run/metrics.jsonl" "$EPOCHS" <<'PY'
import sys, json
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
epochs = [r["epoch"] for r in recs if "epoch" in r]
assert epochs and max(epochs) == int(sys.argv[2]), "metrics epochs %s, expected up to %s" % (epochs, sys.argv[2])
print("metrics.jsonl: %d records, last: %s" % (len(recs), recs[-1]))
PY

expect_completed "$va" 120 "$WORK/validate-$va.out"
cat "$WORK/validate-$va.out"
grep -Eiq 'mean' "$WORK/validate-$va.out" || fail "validate printed no summary (mean relative error) in its log"
[[ -s $WORK/errors.h5 ]] || fail "validate wrote no per-sample errors to $WORK/errors.h5"
echo "PASS: generate -> train -> validate through sbatch on the local Slurm"
