#!/bin/bash
# demo.sh: the whole product in a few minutes on 2 cores.
#   1. generate a small Kohn-Sham 2D dataset (mnnh generate, 2 MPI ranks):
#      32 x 32 grid, 2 wells, training and validation sets (same seed, disjoint samples)
#   2. train MNN-H on 2 MPI ranks (mnnh train, density layer on), a few minutes
#   3. validate the best checkpoint on the validation set (mnnh validate, 2 ranks)
#   4. predict the validation set with it (mnnh predict)
#   5. plot the metrics (tools/plot_metrics.py)
# and print where each output is.
#
# usage: scripts/demo.sh [OUT_DIR]      (default ./demo-out)
# On a fresh Debian machine it first installs the dependencies and builds
# (scripts/setup.sh). Environment: MNNH (the mnnh binary; default: build/mnnh),
#   DEMO_TRAIN (training samples, default 2048), DEMO_EPOCHS (default 200),
#   DEMO_RANKS (default 2), MPIEXEC (default mpirun).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(realpath -m "${1:-demo-out}")
NTRAIN=${DEMO_TRAIN:-2048}
NVALID=${DEMO_VALID:-128}
EPOCHS=${DEMO_EPOCHS:-200}
P=${DEMO_RANKS:-2}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3   # Debian's python with h5py and matplotlib (a pyenv python3 may lack them)
say() { printf '\n[demo] %s\n' "$*" >&2; }

if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MPIRUN=("$MPIEXEC" -n "$P" --oversubscribe --bind-to none)

if [[ -z ${MNNH:-} ]]; then
  say "set-up: dependencies and build (scripts/setup.sh)"
  "$ROOT/scripts/setup.sh" "$ROOT/build"
  MNNH=$ROOT/build/mnnh
fi
mkdir -p "$OUT"
cd "$OUT"
t0=$SECONDS

say "1/5 generating $NTRAIN + $NVALID Kohn-Sham 2D samples (32 x 32, 2 wells) on $P ranks"
"${MPIRUN[@]}" "$MNNH" generate --equation ks --dim 2 --grid 32 --n-g 2 --samples "$NTRAIN" \
  --seed 1 --out ks2d-train.h5 --force
"${MPIRUN[@]}" "$MNNH" generate --equation ks --dim 2 --grid 32 --n-g 2 --samples "$NVALID" \
  --seed 1 --first-sample "$NTRAIN" --out ks2d-valid.h5 --force

say "2/5 training MNN-H (L=3, m=4, r=6, K=3, density layer) on $P ranks for $EPOCHS epochs"
"${MPIRUN[@]}" "$MNNH" train --train ks2d-train.h5 --valid ks2d-valid.h5 \
  --L 3 --m 4 --r 6 --K 3 --density --batch 32 --epochs "$EPOCHS" --lr 2e-3 \
  --lr-schedule plateau --lr-patience 5 --valid-every 2 --seed 1 --out run --force --progress 10

say "3/5 validating run/best.h5 on the validation set on $P ranks"
"${MPIRUN[@]}" "$MNNH" validate --model run/best.h5 --data ks2d-valid.h5 --out run/valid-errors.h5 --force

say "4/5 predicting the validation set with run/best.h5"
"$MNNH" predict --model run/best.h5 --input ks2d-valid.h5 --out run/prediction.h5 --force

say "5/5 plotting run/metrics.jsonl"
"$PY" "$ROOT/tools/plot_metrics.py" run --title "MNN-H, KS 2D 32x32" >/dev/null

cat >&2 <<MSG

[demo] done in $((SECONDS - t0)) s. Outputs:
  training set        $OUT/ks2d-train.h5   (/input V, /output rho)
  validation set      $OUT/ks2d-valid.h5
  best checkpoint     $OUT/run/best.h5     (/model, /optimizer, /state, /config, /metrics)
  last checkpoint     $OUT/run/last.h5     (resume: mnnh train ... --out $OUT/run --resume auto)
  metrics             $OUT/run/metrics.jsonl
  plot                $OUT/run/metrics.png
  per-sample errors   $OUT/run/valid-errors.h5   (/rel_err)
  prediction          $OUT/run/prediction.h5     (/prediction, /input)
MSG
