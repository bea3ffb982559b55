#!/bin/bash
# train_e2e.sh MNNH MPIEXEC: the demo end to end at a tiny size: mnnh generate
# (KS 2D) -> mnnh train on 2 ranks (density layer) -> mnnh validate -> mnnh
# predict -> tools/plot_metrics.py; every output exists and is consistent.
source "$(dirname "$0")/train_common.sh" "$1" "$2"
ROOT=$(cd "$HERE/.." && pwd)
MNNH=$MNNH MPIEXEC=$MPIEXEC DEMO_TRAIN=48 DEMO_VALID=16 DEMO_EPOCHS=3 \
  bash "$ROOT/scripts/demo.sh" "$WORK/demo" >out.log 2>&1
RC=$?
expect 0 "done in [0-9]+ s" "scripts/demo.sh at a tiny size"
for f in ks2d-train.h5 ks2d-valid.h5 run/best.h5 run/last.h5 run/metrics.jsonl run/metrics.png \
         run/valid-errors.h5 run/prediction.h5; do
  [[ -s $WORK/demo/$f ]] || fail "demo output $f missing"
done
"$PY" - "$WORK/demo" <<'PYEOF' || fail "demo outputs inconsistent"
import json, sys, h5py
d = sys.argv[1]
recs = [json.loads(l) for l in open(d + "/run/metrics.jsonl")]
assert [r["epoch"] for r in recs] == [1, 2, 3], recs
for k in ("epoch", "step", "train_loss", "train_rel_err", "valid_rel_err", "lr", "samples_per_s",
          "seconds", "compute_s", "allreduce_s", "io_s"):
    assert k in recs[-1], k
with h5py.File(d + "/run/best.h5") as f:
    m = f["model"].attrs
    assert m["density_ne"] == 2 and abs(m["cell_volume"] - (2 / 32) ** 2) < 1e-9, dict(m)
    assert f["state"].attrs["world_size"] == 2 and f["config"].attrs["batch"] == 32
with h5py.File(d + "/run/valid-errors.h5") as f:
    assert f["rel_err"].shape == (16,)
with h5py.File(d + "/run/prediction.h5") as f:
    p = f["prediction"][()]
    assert p.shape == (16, 32, 32) and (p >= 0).all()
    s = p.sum(axis=(1, 2)) * (2 / 32) ** 2   # the density layer: sum(rho) dx^2 = n_e
    assert abs(s - 2).max() < 1e-3, s
print("demo outputs consistent")
PYEOF
echo "PASS train_e2e"
