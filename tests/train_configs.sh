#!/bin/bash
# train_configs.sh MNNH MPIEXEC: every shipped configs/*.ini is accepted by
# `mnnh train` (all keys known, values in range, model matching its data) and
# trains one epoch on a tiny dataset of its grid; the run records the config's
# values in /config (checked for the NAdam epsilon, which the 1D paper config sets).
source "$(dirname "$0")/train_common.sh" "$1" "$2"
CONFIGS=$(cd "$HERE/../configs" && pwd)
mkdata d1.h5 --dim 1 --N 320 --samples 8
mkdata d2.h5 --dim 2 --N 64 --samples 8
n=0
for ini in "$CONFIGS"/*.ini; do
  name=$(basename "$ini" .ini)
  data=d1.h5
  grep -Eq '^L *= *4' "$ini" && data=d2.h5
  run 1 train --config "$ini" --train $data --valid $data --out "R-$name" --epochs 1 --batch 4 --progress 100
  expect 0 "" "configs/$name.ini trains one epoch on $data"
  eps=$("$PY" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['config'].attrs['adam-eps'])" "R-$name/last.h5") ||
    fail "configs/$name.ini: R-$name/last.h5 has no /config@adam-eps"
  want=$(sed -n 's/^adam_eps *= *\([^ ;]*\).*/\1/p' "$ini")
  "$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2] or 1e-8); sys.exit(abs(a - b) > 1e-6 * b)" "$eps" "$want" ||
    fail "configs/$name.ini: /config@adam-eps is $eps, expected ${want:-1e-8}"
  n=$((n + 1))
done
((n >= 6)) || fail "only $n configs found in $CONFIGS"

# tools/ckpt_health.py on one of these checkpoints: every parameter in one part,
# fractions in [0, 1]; a file without NAdam state is refused by name
"$PY" "$HERE/../tools/ckpt_health.py" --json R-ks1d_paper/last.h5 >health.json || fail "ckpt_health.py failed"
"$PY" - health.json <<'PYEOF' || fail "ckpt_health.py: inconsistent output"
import json, sys
j = json.loads(open(sys.argv[1]).read())
parts = j["parts"]
assert [p["part"] for p in parts] == ["level2", "level3", "level4", "level5", "level6", "adjacent"], parts
assert sum(p["params"] for p in parts) == 9833, parts
assert all(0 <= p["dead"] <= 1 and 0 <= p["below_eps"] <= 1 for p in parts), parts
PYEOF
"$PY" "$HERE/../tools/ckpt_health.py" d1.h5 >out.log 2>&1 && fail "ckpt_health.py accepted a dataset"
grep -q "d1.h5: no /optimizer group" out.log || { cat out.log >&2; fail "ckpt_health.py: unclear error for a dataset"; }

# tools/error_by_gap.py on `mnnh validate --out` of generated KS data: the bins
# hold every sample once and their errors average to validate's mean; a dataset
# without /gap is refused by name
run 1 generate --equation ks --dim 1 --grid 320 --n-g 2 --samples 20 --seed 3 --out g1.h5 --quiet
expect 0 "" "generate 20 KS 1D samples"
run 1 validate --model R-ks1d_paper/last.h5 --data g1.h5 --out err.h5
expect 0 "" "validate --out err.h5"
"$PY" "$HERE/../tools/error_by_gap.py" --json g1.h5 err.h5 >gap.json || fail "error_by_gap.py failed"
"$PY" - gap.json <<'PYEOF' || fail "error_by_gap.py: inconsistent output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bins, total = rows[:-1], rows[-1]
assert len(bins) == 5 and sum(b["samples"] for b in bins) == 20 == total["samples"], rows
mean = sum(b["mean_rel_err"] * b["samples"] for b in bins) / 20
assert abs(mean - total["mean_rel_err"]) <= 1e-9 * total["mean_rel_err"], rows
assert all(a["gap_max"] <= b["gap_min"] for a, b in zip(bins, bins[1:])), rows
assert 0 < total["smallest_gap_tenth_share"] <= 1, rows
PYEOF
"$PY" "$HERE/../tools/error_by_gap.py" d1.h5 err.h5 >out.log 2>&1 && fail "error_by_gap.py accepted a dataset without /gap"
grep -q "gap" out.log || { cat out.log >&2; fail "error_by_gap.py: unclear error for a dataset without /gap"; }
echo "PASS train_configs ($n configs)"
