#!/bin/bash
# train_torch.sh MNNH MPIEXEC: benchmarks/peer/train_torch.py, the second
# implementation of mnnh's model and training in PyTorch (docs/results.md,
# "Session 6: the data decide; a second implementation agrees"), agrees with mnnh:
#  - check: its forward of mnnh model files (1D cnn, 1D lc, 2D cnn; normalisation
#    and density layer on) gives `mnnh validate`'s mean relative error;
#  - train: with the whole training set as the batch (so the shuffle order does
#    not matter) and the same initial weights, both codes take the same NAdam
#    steps: the per-epoch training and validation errors agree to 1e-5
#    (measured: 7e-7 after 4 steps; torch 1.13's own NAdam, one mu too many in
#    mu_product_next, differed by 3e-4 after one step);
#  - bad input: a missing file, a dataset given as the model, a model of the
#    wrong grid, a wrong-shaped weight, a zero --valid-every are refused by name (exit 2).
# Needs /usr/bin/python3 with torch (Debian python3-torch, installed by scripts/setup.sh).
source "$(dirname "$0")/train_common.sh" "$1" "$2"
TT="$HERE/../benchmarks/peer/train_torch.py"
"$PY" -c 'import torch' || fail "$PY has no torch (apt-get install python3-torch; scripts/setup.sh does)"

run 1 generate --equation ks --dim 1 --grid 320 --n-g 2 --samples 24 --seed 5 --out k1.h5 --quiet
expect 0 "" "generate 24 KS 1D samples"
run 1 generate --equation ks --dim 2 --grid 32 --n-g 2 --samples 12 --seed 5 --out k2.h5 --quiet
expect 0 "" "generate 12 KS 2D samples (32 x 32)"

# close A B TOL WHAT: |A - B| <= TOL |B|
close() {
  "$PY" -c "import sys; a, b, t = map(float, sys.argv[1:4]); sys.exit(not abs(a - b) <= t * abs(b))" "$1" "$2" "$3" ||
    fail "$4: $1 against $2 (relative tolerance $3)"
  note "ok: $4 ($1 against $2)"
}
json_field() { "$PY" -c "import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])[sys.argv[2]])" "$1" "$2"; }

# check: three model kinds, each trained a few steps by mnnh so no weight is at its initial value
check_forward() {  # check_forward NAME DATA mnnh-train-args...
  local name=$1 data=$2; shift 2
  run 1 train --train $data --valid $data --out "R-$name" --epochs 2 --batch 4 --lr 1e-3 --init glorot \
    --density --progress 100 "$@"
  expect 0 "" "mnnh trains the $name model"
  run 1 validate --model "R-$name/last.h5" --data $data
  expect 0 "" "mnnh validate, $name"
  grep '^{' out.log >"mnnh-$name.json"
  "$PY" "$TT" check --model "R-$name/last.h5" --data $data >"torch-$name.json" || fail "train_torch.py check, $name"
  close "$(json_field "torch-$name.json" mean_rel_err)" "$(json_field "mnnh-$name.json" mean_rel_err)" 1e-5 \
    "PyTorch forward of the $name model = mnnh validate"
}
check_forward cnn1d k1.h5 --L 6 --m 5 --r 4 --K 2
check_forward lc1d k1.h5 --L 6 --m 5 --r 2 --K 2 --variant lc
check_forward cnn2d k2.h5 --L 3 --m 4 --r 3 --K 2

# train: full batch, same initial weights (mnnh init = mnnh train's initialisation of the same seed)
run 1 init --dim 1 --L 6 --m 5 --r 4 --K 2 --init glorot --seed 7 --out init.h5
expect 0 "" "mnnh init"
run 1 train --train k1.h5 --valid k1.h5 --out R-full --L 6 --m 5 --r 4 --K 2 --init glorot --seed 7 \
  --density --batch 24 --epochs 4 --lr 2e-3 --lr-schedule step --lr-step 2 --progress 100
expect 0 "" "mnnh trains 4 full-batch steps"
"$PY" "$TT" train --init-from init.h5 --train k1.h5 --valid k1.h5 --density --batch 24 --epochs 4 \
  --lr 2e-3 --lr-step 2 --valid-every 1 >torch-full.jsonl || fail "train_torch.py train"
"$PY" - R-full/metrics.jsonl torch-full.jsonl <<'PYEOF' || fail "mnnh and PyTorch full-batch trajectories differ"
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
t = [json.loads(l) for l in open(sys.argv[2])][:-1]
m = [r for r in m if "train_rel_err" in r]
assert len(m) == len(t) == 4, (len(m), len(t))
for a, b in zip(m, t):
    assert a["epoch"] == b["epoch"], (a, b)
    assert abs(a["lr"] - b["lr"]) <= 1e-9, (a["lr"], b["lr"])
    for k in ("train_rel_err", "valid_rel_err"):
        assert abs(a[k] - b[k]) <= 1e-5 * abs(a[k]), (a["epoch"], k, a[k], b[k])
    print("epoch %d: train %.7e / %.7e, valid %.7e / %.7e (mnnh / torch)" % (
        a["epoch"], a["train_rel_err"], b["train_rel_err"], a["valid_rel_err"], b["valid_rel_err"]))
# the steps moved the model: the last validation is below the first training error (the initial model)
assert m[-1]["valid_rel_err"] < m[0]["train_rel_err"], m
PYEOF
note "ok: four full-batch NAdam steps agree"

# bad input, refused by name
"$PY" "$TT" check --model nosuch.h5 --data k1.h5 >out.log 2>&1 && fail "check accepted a missing model"
grep -q "nosuch.h5: no such file" out.log || { cat out.log >&2; fail "unclear error for a missing model"; }
"$PY" "$TT" check --model k1.h5 --data k1.h5 >out.log 2>&1 && fail "check accepted a dataset as the model"
grep -q "k1.h5: no /model group" out.log || { cat out.log >&2; fail "unclear error for a dataset as the model"; }
"$PY" "$TT" check --model R-cnn2d/last.h5 --data k1.h5 >out.log 2>&1 && fail "check accepted a model of another grid"
grep -q "k1.h5: /input" out.log || { cat out.log >&2; fail "unclear error for a model of another grid"; }
"$PY" - <<'PYEOF' || fail "cannot write a model file with a wrong-shaped tensor"
import h5py, shutil
shutil.copy("init.h5", "badshape.h5")
with h5py.File("badshape.h5", "a") as f:
    del f["model/level3/kernel1/weight"]
    f["model/level3/kernel1/weight"] = [1.0, 2.0]
PYEOF
"$PY" "$TT" check --model badshape.h5 --data k1.h5 >out.log 2>&1 && fail "check accepted a wrong-shaped tensor"
grep -q "badshape.h5: dataset 'model/level3/kernel1/weight' has shape (2,)" out.log ||
  { cat out.log >&2; fail "unclear error for a wrong-shaped tensor"; }
"$PY" "$TT" train --init-from init.h5 --train k1.h5 --valid k1.h5 --valid-every 0 >out.log 2>&1 &&
  fail "train accepted --valid-every 0"
grep -q -- "--valid-every 0: must be at least 1" out.log || { cat out.log >&2; fail "unclear error for --valid-every 0"; }
note "ok: bad inputs refused by name"
echo "PASS train_torch"
