#!/usr/bin/env bash
# scaling_test.sh: the scaling harness runs for real on the local Slurm: a strong-
# and a weak-scaling series at 1, 2 and 4 tasks (benchmarks/scaling/submit.sh
# --wait: jobs/scaling-<mode>.sbatch one after another, collect.py, plot.py).
# Checks each CSV has the three points with positive throughput, speedup 1 and
# efficiency 1 at one task, and that the PNG was written.
#
# usage: MNNH_BIN=build/mnnh MNNH_TEST_WORK=DIR tests/slurm/scaling_test.sh
#        (needs the datasets of e2e_test.sh in $MNNH_TEST_WORK/data)
set -euo pipefail
source "$(dirname "$0")/common.sh"
slurm_test_init scaling
require_mnnh
require_subcommand train
DATA=${MNNH_TEST_WORK:-$PWD/slurm-work}/data
[[ -s $DATA/train.h5 && -s $DATA/valid.h5 ]] || fail "no datasets in $DATA (run the slurm_e2e test first)"

for mode in ${SCALING_MODES:-strong weak}; do
  MNNH_EPOCHS=2 MNNH_GLOBAL_BATCH=16 MNNH_BATCH_PER_TASK=8 \
  MNNH_L=$TEST_L MNNH_M=$TEST_M MNNH_R=$TEST_R MNNH_K=$TEST_K \
    "$REPO/benchmarks/scaling/submit.sh" --mode "$mode" --tasks "1 2 4" --wait --timeout 240 \
      --train "$DATA/train.h5" --valid "$DATA/valid.h5" --out "$WORK/study" \
    || { tail -n 30 "$WORK"/study/*.out >&2; fail "the $mode-scaling series failed"; }
  [[ -s $WORK/study/$mode.png ]] || fail "no plot $WORK/study/$mode.png"
  "$PY" - "$WORK/study/$mode.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [int(r["tasks"]) for r in rows] == [1, 2, 4], [r["tasks"] for r in rows]
for r in rows:
    assert float(r["samples_per_s"]) > 0 and float(r["step_s"]) > 0, r
assert abs(float(rows[0]["speedup"]) - 1) < 1e-9 and abs(float(rows[0]["efficiency"]) - 1) < 1e-9, rows[0]
print("%s: %s" % (sys.argv[1], ", ".join("%s tasks %.0f samples/s (eff. %.2f)" % (
    r["tasks"], float(r["samples_per_s"]), float(r["efficiency"])) for r in rows)))
PY
done
echo "PASS: scaling series submitted, collected into CSV and plotted"
