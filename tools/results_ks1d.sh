#!/bin/bash
# results_ks1d.sh: regenerate the KS 1D result of docs/results.md (paper Table 8, r = 6, K = 6).
#
# usage: tools/results_ks1d.sh [STAGE...]     stages: data sweep train eval plots (plots also copies
#   best.h5, metrics.jsonl and the validate summaries into results/ks1d-r6/) (default: all)
# Environment: MNNH (binary, default build-acc/mnnh), WORK (default results-work),
#   EPOCHS (override the config's 2000), TRAIN_ARGS (more train flags), NP (ranks for generation, default 1).
# One rank, one thread: the machine is shared (OMP_NUM_THREADS=1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MNNH=${MNNH:-$ROOT/build-acc/mnnh}
WORK=${WORK:-$ROOT/results-work}
NP=${NP:-1}
export OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX
PY=/usr/bin/python3
D=$WORK/data
mkdir -p "$D" "$WORK/ks1d"
stages=("$@"); [[ ${#stages[@]} -gt 0 ]] || stages=(data sweep train eval plots)
gen() { if [[ $NP -gt 1 ]]; then mpirun -n "$NP" "$MNNH" generate "$@"; else "$MNNH" generate "$@"; fi; }

for s in "${stages[@]}"; do case $s in
data)  # 16000 training + 4000 test samples: one seed, the test set after the training set
  [[ -f $D/ks1d-train.h5 ]] || gen --equation ks --dim 1 --grid 320 --n-g 2 --preset paper --seed 1 --samples 16000 --out "$D/ks1d-train.h5"
  [[ -f $D/ks1d-test.h5 ]] || gen --equation ks --dim 1 --grid 320 --n-g 2 --preset paper --seed 1 --samples 4000 --first-sample 16000 --out "$D/ks1d-test.h5"
  ;;
sweep)  # the short constant-lr experiments that chose the learning rate (80 epochs each)
  for lr in 1e-3 3e-3 1e-2; do
    "$MNNH" train --train "$D/ks1d-train.h5" --valid "$D/ks1d-test.h5" --L 6 --m 5 --r 6 --K 6 --density \
      --batch 160 --epochs 80 --lr $lr --valid-every 5 --progress 60 --out "$WORK/sweep1d/lr$lr-b160" --force \
      2> "$WORK/sweep1d-lr$lr.log"
  done ;;
train)  # the long run; resumable (--resume auto), stop it with SIGUSR1/SIGTERM
  trap '' USR1  # the shell ignores USR1, mnnh (its own handler) checkpoints and exits 75: timeout -s USR1 T works
  "$MNNH" train --config "$ROOT/configs/ks1d_paper.ini" ${EPOCHS:+--epochs $EPOCHS} ${TRAIN_ARGS:-} \
    --train "$D/ks1d-train.h5" --valid "$D/ks1d-test.h5" --out "$WORK/ks1d/r6" --resume auto \
    2>> "$WORK/ks1d/r6.log" ;;
eval)
  "$MNNH" validate --model "$WORK/ks1d/r6/best.h5" --data "$D/ks1d-test.h5" > "$WORK/ks1d/r6-test.json"
  "$MNNH" validate --model "$WORK/ks1d/r6/best.h5" --data "$D/ks1d-train.h5" > "$WORK/ks1d/r6-train.json"
  cat "$WORK/ks1d/r6-test.json" "$WORK/ks1d/r6-train.json" ;;
plots)
  mkdir -p "$ROOT/results/ks1d-r6"
  cp "$WORK/ks1d/r6/best.h5" "$WORK/ks1d/r6/metrics.jsonl" "$ROOT/results/ks1d-r6/"
  cp "$WORK/ks1d/r6-test.json" "$ROOT/results/ks1d-r6/validate-test.json" 2>/dev/null || true
  cp "$WORK/ks1d/r6-train.json" "$ROOT/results/ks1d-r6/validate-train.json" 2>/dev/null || true
  $PY "$ROOT/tools/plot_metrics.py" "$WORK/ks1d/r6" -o "$ROOT/results/ks1d-r6/metrics.png" --title "KS 1D, r=6, K=6 (16000/4000)"
  $PY "$ROOT/tools/plot_density.py" --mnnh "$MNNH" --model "$WORK/ks1d/r6/best.h5" --data "$D/ks1d-test.h5" --sample 0 \
    -o "$ROOT/results/ks1d-r6/density.png" --title "KS 1D test sample 0, r=6, K=6"
  ;;
*) echo "results_ks1d.sh: unknown stage $s" >&2; exit 2 ;;
esac; done
