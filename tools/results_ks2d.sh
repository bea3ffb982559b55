#!/bin/bash
# results_ks2d.sh: regenerate the KS 2D results of docs/results.md (paper Table 11, K = 6).
#
# usage: tools/results_ks2d.sh [STAGE...]   stages: data train eval plots (default: all; plots
#   also copies best.h5, metrics.jsonl and the validate summaries into results/ks2d-PRESET-rR/)
# Environment:
#   MNNH   binary (default build-acc/mnnh)      WORK  work directory (default results-work)
#   R      channels: 6, 8 or 10 (default 10; configs/ks2d_r$R.ini)
#   PRESET data preset: paper or original (default paper)
#   EPOCHS override the config's 2000 (the CPU runs here were stopped early, see
#          docs/results.md; training resumes with --resume auto where it stopped)
#   TRAIN_ARGS more `mnnh train` flags (the CPU runs of docs/results.md: "--valid-every 1")
#   NP     ranks for generation (default 1)
# One rank, one thread for training: the machine is shared.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MNNH=${MNNH:-$ROOT/build-acc/mnnh}
WORK=${WORK:-$ROOT/results-work}
R=${R:-10}
PRESET=${PRESET:-paper}
NP=${NP:-1}
export OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX
PY=/usr/bin/python3
D=$WORK/data
RUN=$WORK/ks2d/$PRESET-r$R
mkdir -p "$D" "$WORK/ks2d"
stages=("$@"); [[ ${#stages[@]} -gt 0 ]] || stages=(data train eval plots)
gen() { if [[ $NP -gt 1 ]]; then mpirun -n "$NP" "$MNNH" generate "$@"; else "$MNNH" generate "$@"; fi; }

for s in "${stages[@]}"; do case $s in
data)  # 16000 training + 4000 test samples: one seed, the test set after the training set
  [[ -f $D/ks2d-$PRESET-train.h5 ]] || gen --equation ks --dim 2 --grid 64 --n-g 2 --preset "$PRESET" --seed 1 --samples 16000 --out "$D/ks2d-$PRESET-train.h5"
  [[ -f $D/ks2d-$PRESET-test.h5 ]] || gen --equation ks --dim 2 --grid 64 --n-g 2 --preset "$PRESET" --seed 1 --samples 4000 --first-sample 16000 --out "$D/ks2d-$PRESET-test.h5"
  ;;
train)  # resumable (--resume auto); stop it with SIGUSR1/SIGTERM (checkpoint, exit 75)
  trap '' USR1  # the shell ignores USR1, mnnh (its own handler) checkpoints and exits 75: timeout -s USR1 T works
  "$MNNH" train --config "$ROOT/configs/ks2d_r$R.ini" ${EPOCHS:+--epochs $EPOCHS} ${TRAIN_ARGS:-} \
    --train "$D/ks2d-$PRESET-train.h5" --valid "$D/ks2d-$PRESET-test.h5" --out "$RUN" --resume auto \
    2>> "$RUN.log" ;;
eval)
  "$MNNH" validate --model "$RUN/best.h5" --data "$D/ks2d-$PRESET-test.h5" > "$RUN-test.json"
  "$MNNH" validate --model "$RUN/best.h5" --data "$D/ks2d-$PRESET-train.h5" > "$RUN-train.json"
  cat "$RUN-test.json" "$RUN-train.json" ;;
plots)
  mkdir -p "$ROOT/results/ks2d-$PRESET-r$R"
  cp "$RUN/best.h5" "$RUN/metrics.jsonl" "$ROOT/results/ks2d-$PRESET-r$R/"
  cp "$RUN-test.json" "$ROOT/results/ks2d-$PRESET-r$R/validate-test.json" 2>/dev/null || true
  cp "$RUN-train.json" "$ROOT/results/ks2d-$PRESET-r$R/validate-train.json" 2>/dev/null || true
  $PY "$ROOT/tools/plot_metrics.py" "$RUN" -o "$ROOT/results/ks2d-$PRESET-r$R/metrics.png" --title "KS 2D ($PRESET preset), r=$R, K=6"
  $PY "$ROOT/tools/plot_density.py" --mnnh "$MNNH" --model "$RUN/best.h5" --data "$D/ks2d-$PRESET-test.h5" --sample 0 \
    -o "$ROOT/results/ks2d-$PRESET-r$R/density.png" --title "KS 2D ($PRESET preset) test sample 0, r=$R, K=6"
  ;;
*) echo "results_ks2d.sh: unknown stage $s" >&2; exit 2 ;;
esac; done
