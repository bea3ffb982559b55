#!/bin/bash
# cli_roundtrip: mnnh init -> info -> predict on small 1D and 2D datasets made
# with h5py; the files are checked with h5py by name (a plain user's view);
# existing outputs are refused without --force; mismatched grids and bad
# files exit 2 naming the files; nothing is left under a temporary name.
# usage: cli_roundtrip.sh PATH/TO/mnnh   (exit 77 = skipped: no h5py)
set -u
MNNH=${1:?usage: cli_roundtrip.sh PATH/TO/mnnh}
PY=/usr/bin/python3   # Debian's python3-h5py; `python3` on PATH may lack h5py
"$PY" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: $PY has no h5py"; exit 77; }
work=$(mktemp -d /tmp/mnnh_cli_roundtrip.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { # run CODE ARGS...: mnnh ARGS must exit CODE; output in $out
    local code=$1; shift
    out=$("$MNNH" "$@" 2>&1); local rc=$?
    [ "$rc" -eq "$code" ] || fail "mnnh $*: exit $rc, expected $code; output: $out"
}
has() { grep -qF -- "$1" <<<"$out" || fail "output lacks '$1': $out"; }

# ---- init and info (1D cnn, N = 2^4 * 4 = 64)
run 0 init --dim 1 --L 4 --m 4 --r 3 --K 2 --seed 5 --out m1.h5
run 0 info m1.h5
for kv in "kind: model" "dim: 1" "N: 64" "L: 4" "m: 4" "r: 3" "K: 2" "variant: cnn" \
          "nb_ad: 1" "nb: 2 3 3" "input_scale: 1" "density_ne: 0"; do has "$kv"; done
info_count=$(sed -n 's/^parameters: \([0-9]*\).*/\1/p' <<<"$out")

# the same seed gives the same weights; another seed others
run 0 init --dim 1 --L 4 --m 4 --r 3 --K 2 --seed 5 --out m1b.h5
run 0 init --dim 1 --L 4 --m 4 --r 3 --K 2 --seed 6 --out m1c.h5
# the Glorot variance: said in the output; an unknown name is a usage error naming it
run 0 init --dim 1 --L 4 --m 4 --r 3 --K 2 --seed 5 --init glorot --out m1g.h5
has "glorot init"
cmp -s m1.h5 m1g.h5 && fail "--init glorot wrote the same weights as he"
run 2 init --dim 1 --L 4 --m 4 --r 3 --K 2 --init xavier --out m1x.h5
has "--init xavier: expected he or glorot"
[[ -e m1x.h5 ]] && fail "a refused init wrote m1x.h5"

# ---- refusing to overwrite
cp m1.h5 m1.keep
run 2 init --dim 1 --L 4 --m 4 --r 3 --K 2 --seed 9 --out m1.h5
has "m1.h5 exists (use --force to overwrite)"
cmp -s m1.h5 m1.keep || fail "a refused init changed m1.h5"

# ---- 2D lc model (N = 2^2 * 2 = 8)
run 0 init --dim 2 --L 2 --m 2 --r 2 --K 1 --variant lc --nb-ad 0 --out m2.h5
run 0 info m2.h5
has "variant: lc"; has "nb_ad: 0"; has "N: 8"

# ---- datasets
"$PY" - <<'PY' || fail "could not write the datasets"
import h5py, numpy as np
rng = np.random.default_rng(1)
for name, shape in (("d1.h5", (13, 64)), ("d2.h5", (5, 8, 8))):
    with h5py.File(name, "w") as f:
        f["input"] = rng.standard_normal(shape).astype("f4")
        f["output"] = np.zeros(shape, "f4")
        f.attrs["equation"] = "ks"; f.attrs["dim"] = len(shape) - 1; f.attrs["N"] = shape[1]
with h5py.File("d1.h5") as f, h5py.File("d1one.h5", "w") as g:
    g["input"] = f["input"][7:8]
# the model's normalisation is applied by predict: an output shift, a density layer
for name, attrs in (("m1s.h5", {"output_shift": 2.0}),
                    ("m1d.h5", {"density_ne": 3.0, "cell_volume": 1.0 / 64})):
    with h5py.File("m1.h5") as f, h5py.File(name, "w") as g:
        f.copy("model", g)
        for k, v in attrs.items():
            g["model"].attrs[k] = np.float32(v)
PY

# ---- predict (two backends, batch sizes that do not divide S)
run 0 predict --model m1.h5 --input d1.h5 --out p1.h5 --batch 4 --backend cpu
run 0 predict --model m1.h5 --input d1.h5 --out p1ref.h5 --batch 13 --backend ref
run 0 predict --model m2.h5 --input d2.h5 --out p2.h5 --batch 2
run 0 predict --model m1.h5 --input d1one.h5 --out p1one.h5
run 0 predict --model m1s.h5 --input d1.h5 --out p1s.h5
run 0 predict --model m1d.h5 --input d1.h5 --out p1d.h5
run 2 predict --model m1.h5 --input d1.h5 --out p1.h5
has "p1.h5 exists (use --force to overwrite)"
run 0 predict --model m1.h5 --input d1.h5 --out p1.h5 --batch 5 --force

# ---- mismatched grid, bad files: exit 2, the files named
run 2 predict --model m2.h5 --input d1.h5 --out bad.h5
has "m2.h5"; has "d1.h5"; has "[13][64]"; has "[S][8][8]"
run 2 predict --model missing.h5 --input d1.h5 --out bad.h5
has "missing.h5"
run 2 predict --model m1.h5 --input m1.h5 --out bad.h5
has "m1.h5: no dataset /input"
echo "not hdf5" > junk.h5
run 2 info junk.h5
has "junk.h5: not an HDF5 file"
run 2 predict --model junk.h5 --input d1.h5 --out bad.h5
has "junk.h5: not an HDF5 file"
[ -e bad.h5 ] && fail "a failed predict left bad.h5"

# ---- info on a dataset and on a checkpoint-like file with /state
run 0 info d1.h5
has "d1.h5"; has "[13][64]"
"$PY" - <<'PY' || fail "could not write the checkpoint-like file"
import h5py, numpy as np
with h5py.File("m1.h5", "r") as src, h5py.File("ck.h5", "w") as dst:
    src.copy("model", dst)
    s = dst.create_group("state")
    s.attrs["epoch"] = 3; s.attrs["step"] = 120; s.attrs["best_valid_error"] = 0.25
    s["rng"] = np.array([1, 2, 3, 4], "u8")
    dst.create_group("optimizer")
PY
run 0 info ck.h5
has "kind: checkpoint"; has "epoch: 3"; has "step: 120"; has "best_valid_error: 0.25"; has "rng: [4]"

# ---- everything checked with h5py, by name
"$PY" - "$info_count" <<'PY' || fail "h5py checks failed"
import sys, h5py, numpy as np
info_count = int(sys.argv[1])
def check(c, msg):
    if not c: sys.exit("h5py check failed: " + msg)
with h5py.File("m1.h5", "r") as f:
    g = f["model"]
    check([int(g.attrs[k]) for k in ("dim", "N", "L", "m", "r", "K", "nb_ad")] == [1, 64, 4, 4, 3, 2, 1], "ints")
    check(g.attrs["variant"].decode() == "cnn", "variant")
    check(list(g.attrs["nb"]) == [2, 3, 3], "nb")
    check(float(g.attrs["input_scale"]) == 1.0 and float(g.attrs["cell_volume"]) > 0, "norm")
    # level 2: s = N/4 = 16; restrict [r][s], kernel [r][r][2nb+1], interp [s][r]
    check(g["level2/restrict/weight"].shape == (3, 16), "restrict shape")
    check(g["level2/kernel1/weight"].shape == (3, 3, 5), "level-2 kernel shape")
    check(g["level4/kernel2/weight"].shape == (3, 3, 7), "level-4 kernel shape")
    check(g["level3/interp/weight"].shape == (8, 3) and g["level3/interp/bias"].shape == (8,), "interp")
    check(g["adjacent/kernel2/weight"].shape == (4, 4, 3), "adjacent shape")
    check(g["level2/restrict/weight"].dtype == np.float32, "dtype")
    check(g["level2/restrict/weight"].fletcher32, "fletcher32")
    total = []
    g.visititems(lambda n, o: total.append(o.size) if isinstance(o, h5py.Dataset) else None)
    check(sum(total) == info_count, f"h5py counts {sum(total)} parameters, info {info_count}")
    w = g["level2/restrict/weight"][:]
    check(np.isfinite(w).all() and w.std() > 0, "weights initialised")
with h5py.File("m1.h5") as a, h5py.File("m1b.h5") as b, h5py.File("m1c.h5") as c:
    wa, wb, wc = (x["model/level3/kernel1/weight"][:] for x in (a, b, c))
    check(np.array_equal(wa, wb), "same seed, same weights")
    check(not np.array_equal(wa, wc), "other seed, other weights")
with h5py.File("m2.h5", "r") as f:
    # 2D lc level 2: n = 4 positions per axis, s = 2: restrict [n][n][r][s][s]
    check(f["model/level2/restrict/weight"].shape == (4, 4, 2, 2, 2), "2D lc restrict")
    check(f["model/adjacent/kernel1/weight"].shape == (4, 4, 4, 4, 1, 1), "2D lc adjacent, nb_ad 0")
with h5py.File("d1.h5") as d, h5py.File("p1.h5") as p, h5py.File("p1ref.h5") as q:
    check(p["prediction"].shape == (13, 64) and p["prediction"].dtype == np.float32, "prediction shape")
    check(np.array_equal(p["input"][:], d["input"][:]), "input copied")
    pr, qr = p["prediction"][:], q["prediction"][:]
    check(np.isfinite(pr).all() and np.abs(pr).max() > 0, "prediction finite, non-zero")
    check(np.allclose(pr, qr, rtol=1e-4, atol=1e-5 * np.abs(qr).max()), "cpu (batch 5) vs ref (batch 13)")
    check(int(p.attrs["N"]) == 64 and p.attrs["variant"].decode() == "cnn", "hyperparameters on the prediction")
    check(p.attrs["model"].decode() == "m1.h5" and p.attrs["input"].decode() == "d1.h5", "provenance")
    with h5py.File("p1one.h5") as one:  # a sample does not depend on its batch mates
        check(np.allclose(one["prediction"][0], pr[7], rtol=1e-5, atol=1e-6 * np.abs(pr).max()), "sample 7 alone")
    with h5py.File("p1s.h5") as s:
        check(np.allclose(s["prediction"][:] - pr, 2.0, atol=1e-5), "output_shift applied")
    with h5py.File("p1d.h5") as s:
        rho = s["prediction"][:]
        check((rho >= 0).all(), "density layer clips at 0")
        check(np.allclose(rho.sum(axis=1) / 64, 3.0, rtol=1e-5), "density layer: sum * cell_volume = density_ne")
with h5py.File("p2.h5") as p:
    check(p["prediction"].shape == (5, 8, 8) and np.isfinite(p["prediction"][:]).all(), "2D prediction")
PY

ls | grep -q '\.tmp\.' && fail "temporary files left: $(ls | grep '\.tmp\.')"
[ "$fails" -eq 0 ] && echo "cli_roundtrip: all checks passed"
exit $((fails > 0))
