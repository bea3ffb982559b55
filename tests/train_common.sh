# train_common.sh: helpers of the end-to-end training tests (sourced).
# usage in a test: source train_common.sh MNNH MPIEXEC
set -u
MNNH=$1
MPIEXEC=${2:-mpirun}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3   # python3 on PATH may lack h5py
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
WORK=$(mktemp -d /tmp/mnnh-train-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

# mkdata FILE [train_mkdata.py options]
mkdata() { "$PY" "$HERE/train_mkdata.py" "$@" || fail "cannot create dataset $1"; }

# run NP mnnh-args...: mpirun with NP ranks; sets RC, output in out.log
run() {
  local np=$1; shift
  "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$MNNH" "$@" >out.log 2>&1
  RC=$?
  return 0
}

# expect RC PATTERN WHAT: the last run exited RC and its output matches PATTERN
expect() {
  [[ $RC == "$1" ]] || { cat out.log >&2; fail "$3: exit code $RC, expected $1"; }
  [[ -z $2 ]] || grep -qE -- "$2" out.log || { cat out.log >&2; fail "$3: output lacks /$2/"; }
  note "ok: $3"
}

# same_params A B: /model and /optimizer datasets byte-identical
same_params() {
  "$PY" - "$1" "$2" <<'PYEOF' || fail "parameters of $1 and $2 differ"
import sys, h5py
def grab(p):
    out = {}
    with h5py.File(p, "r") as f:
        def v(n, o):
            if isinstance(o, h5py.Dataset) and n.split("/")[0] in ("model", "optimizer"):
                out[n] = o[()].tobytes()
        f.visititems(v)
        out["step"] = int(f["state"].attrs["step"])
        out["opt_step"] = int(f["optimizer"].attrs["step"])
        out["mu_product"] = float(f["optimizer"].attrs["mu_product"])
    return out
a, b = grab(sys.argv[1]), grab(sys.argv[2])
bad = [k for k in a if a[k] != b.get(k)]
print("compared %d datasets at step %d: %s" % (len(a) - 3, a["step"], "identical" if not bad else "DIFFERENT: " + ", ".join(bad[:5])))
sys.exit(1 if bad or len(a) != len(b) else 0)
PYEOF
}

# state FILE ATTR: an attribute of /state
state() { "$PY" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['state'].attrs[sys.argv[2]])" "$1" "$2"; }

# valid_ckpt FILE: every dataset readable (checksums verified)
valid_ckpt() {
  "$PY" - "$1" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(lambda n, o: o[()] if isinstance(o, h5py.Dataset) else None)
    assert "state" in f and "optimizer" in f and "model" in f and "config" in f
PYEOF
}

# Model options of the tests: 1D, N = 2^3 * 5 = 40, 703 parameters.
MODEL=(--L 3 --m 5 --r 4 --K 2)

# has PATTERN WHAT: the last run's output matches PATTERN too
has() { grep -qE -- "$1" out.log || { cat out.log >&2; fail "$2: output lacks /$1/"; }; }
