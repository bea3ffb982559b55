#!/bin/bash
# results_ks.sh: regenerate the Kohn-Sham results of docs/results.md (paper Tables 8 and 11):
# data, training, evaluation and the pictures of one run, 1D or 2D.
#
# usage: tools/results_ks.sh [STAGE...]   stages: data sweep train eval plots (default: data train eval plots)
#   data   the 16000 training + 4000 test samples (seed 1; the test set follows the training set)
#   sweep  (1D only) the short constant-lr runs that chose the learning rate (80 epochs each)
#   train  the run; resumable (--resume auto): stop it with SIGUSR1/SIGTERM (checkpoint, exit 75)
#   eval   `mnnh validate` of best.h5 on the test and on the training set
#   plots  copies best.h5, metrics.jsonl and the validate summaries into results/NAME/ and draws
#          metrics.png (tools/plot_metrics.py) and density.png (tools/plot_density.py, test sample 0)
# Environment:
#   DIM    1 (N = 320) or 2 (64 x 64) (default 1)
#   R      channels per level (default 6 in 1D, 10 in 2D)
#   PRESET data preset: paper or original (default paper; 1D files: ks1d-* for paper, ks1d-original-*)
#   CONFIG training config (default configs/ks1d_paper.ini with --r R in 1D, configs/ks2d_rR.ini in 2D)
#   NAME   run name: WORK/NAME and results/NAME (default ks1d-rR, ks1d-original-rR or ks2d-PRESET-rR)
#   MNNH   binary (default build/mnnh)      WORK  work directory (default results-work)
#   EPOCHS override the config's epochs     TRAIN_ARGS more `mnnh train` flags
#   NP     ranks for generation (default 1)
# Training runs on one rank, one thread (OMP_NUM_THREADS=1), as every number of docs/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIM=${DIM:-1}
PRESET=${PRESET:-paper}
MNNH=${MNNH:-$ROOT/build/mnnh}
WORK=${WORK:-$ROOT/results-work}
NP=${NP:-1}
export OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX
PY=/usr/bin/python3
D=$WORK/data
case $DIM in
1) R=${R:-6}; GRID=320; SET=ks1d; [[ $PRESET == paper ]] || SET=ks1d-$PRESET
   NAME=${NAME:-$SET-r$R}
   CONFIG=${CONFIG:-$ROOT/configs/ks1d_paper.ini}; RFLAG=(--r "$R") ;;
2) R=${R:-10}; GRID=64; SET=ks2d-$PRESET; NAME=${NAME:-ks2d-$PRESET-r$R}
   CONFIG=${CONFIG:-$ROOT/configs/ks2d_r$R.ini}; RFLAG=() ;;
*) echo "results_ks.sh: DIM must be 1 or 2, not '$DIM'" >&2; exit 2 ;;
esac
RUN=$WORK/$NAME
OUT=$ROOT/results/$NAME
mkdir -p "$D"
stages=("$@"); [[ ${#stages[@]} -gt 0 ]] || stages=(data train eval plots)
gen() { if [[ $NP -gt 1 ]]; then mpirun -n "$NP" "$MNNH" generate "$@"; else "$MNNH" generate "$@"; fi; }
gen_set() {  # gen_set FILE SAMPLES FIRST
  [[ -f $1 ]] || gen --equation ks --dim "$DIM" --grid $GRID --n-g 2 --preset "$PRESET" --seed 1 \
    --samples "$2" --first-sample "$3" --out "$1"
}

for s in "${stages[@]}"; do case $s in
data)
  gen_set "$D/$SET-train.h5" 16000 0
  gen_set "$D/$SET-test.h5" 4000 16000 ;;
sweep)
  [[ $DIM == 1 ]] || { echo "results_ks.sh: the sweep stage is 1D only" >&2; exit 2; }
  mkdir -p "$WORK/sweep1d"
  for lr in 1e-3 3e-3 1e-2; do
    "$MNNH" train --train "$D/$SET-train.h5" --valid "$D/$SET-test.h5" --L 6 --m 5 --r 6 --K 6 --density \
      --batch 160 --epochs 80 --lr $lr --valid-every 5 --progress 60 --out "$WORK/sweep1d/lr$lr-b160" --force \
      2> "$WORK/sweep1d-lr$lr.log"
  done ;;
train)
  trap '' USR1  # the shell ignores USR1; mnnh checkpoints and exits 75, so `timeout -s USR1 T` works
  "$MNNH" train --config "$CONFIG" "${RFLAG[@]}" ${EPOCHS:+--epochs $EPOCHS} ${TRAIN_ARGS:-} \
    --train "$D/$SET-train.h5" --valid "$D/$SET-test.h5" --out "$RUN" --resume auto 2>> "$RUN.log" ;;
eval)
  "$MNNH" validate --model "$RUN/best.h5" --data "$D/$SET-test.h5" > "$RUN-test.json"
  "$MNNH" validate --model "$RUN/best.h5" --data "$D/$SET-train.h5" > "$RUN-train.json"
  cat "$RUN-test.json" "$RUN-train.json" ;;
plots)
  mkdir -p "$OUT"
  cp "$RUN/best.h5" "$RUN/metrics.jsonl" "$OUT/"
  cp "$RUN-test.json" "$OUT/validate-test.json" 2>/dev/null || true
  cp "$RUN-train.json" "$OUT/validate-train.json" 2>/dev/null || true
  title="KS ${DIM}D ($PRESET preset), r=$R, K=6"
  $PY "$ROOT/tools/plot_metrics.py" "$RUN" -o "$OUT/metrics.png" --title "$title"
  $PY "$ROOT/tools/plot_density.py" --mnnh "$MNNH" --model "$RUN/best.h5" --data "$D/$SET-test.h5" \
    --sample 0 -o "$OUT/density.png" --title "$title, test sample 0" ;;
*) echo "results_ks.sh: unknown stage '$s' (data sweep train eval plots)" >&2; exit 2 ;;
esac; done
