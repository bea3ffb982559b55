#!/bin/bash
# generate_cli.sh: `mnnh generate` through the real program and mpirun.
#   usage: generate_cli.sh MNNH_BINARY MPIEXEC
# - the same KS 2D file from 1 and from 3 ranks (h5diff: no difference), and
#   a NLSE 1D file from 1 and 2 ranks;
# - `mnnh info FILE` describes the dataset;
# - bad options exit 2 with a message naming the option; a failing sample
#   exits 1 and leaves nothing under the final or a temporary name, and so
#   does an output that cannot fit (file size limit, as a full disk);
# - SIGUSR1 stops the run with exit 75 and no file left.
set -u
MNNH=$1
MPIEXEC=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

run() { # run NP ARGS...: mpirun -n NP mnnh generate ARGS
  local np=$1; shift
  "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$MNNH" generate --quiet "$@"
}

# expect CODE WORD ARGS...: exit code CODE and WORD on stderr
expect() {
  local code=$1 word=$2; shift 2
  local err rc
  err=$("$MNNH" generate --quiet "$@" 2>&1 >/dev/null); rc=$?
  [[ $rc == "$code" ]] || fail "generate $* exited $rc, expected $code ($err)"
  [[ $err == *"$word"* ]] || fail "generate $*: message '$err' does not name '$word'"
}

KS=(--equation ks --dim 2 --grid 32 --samples 9 --n-g 2 --seed 17)
run 1 "${KS[@]}" --out "$WORK/ks1.h5" || fail "KS 2D on 1 rank"
run 3 "${KS[@]}" --block 2 --out "$WORK/ks3.h5" || fail "KS 2D on 3 ranks"
h5diff "$WORK/ks1.h5" "$WORK/ks3.h5" >/dev/null || fail "KS 2D: 1-rank and 3-rank files differ"
NL=(--equation nlse --dim 1 --grid 320 --samples 5 --n-g 2 --seed 3)
run 1 "${NL[@]}" --out "$WORK/nl1.h5" || fail "NLSE 1D on 1 rank"
run 2 "${NL[@]}" --out "$WORK/nl2.h5" || fail "NLSE 1D on 2 ranks"
h5diff "$WORK/nl1.h5" "$WORK/nl2.h5" >/dev/null || fail "NLSE 1D: 1-rank and 2-rank files differ"

info=$("$MNNH" info "$WORK/ks1.h5") || fail "mnnh info on a dataset"
for want in "equation: ks" "dataset /input: float32 [9][32][32]" "attr preset: paper" "range /output"; do
  [[ $info == *"$want"* ]] || fail "mnnh info lacks '$want'"
done

B=(--equation ks --dim 2 --grid 32 --samples 2)
expect 2 "preset" "${B[@]}" --n-g 2 --preset nope --out "$WORK/a.h5"
expect 2 "--grid" --equation ks --dim 2 --grid 0 --samples 2 --n-g 2 --out "$WORK/a.h5"
expect 2 "--grid" --equation ks --dim 2 --grid -5 --samples 2 --n-g 2 --out "$WORK/a.h5"
expect 2 "--n-g" "${B[@]}" --n-g 40 --out "$WORK/a.h5"
expect 2 "--dim" --equation ks --dim 3 --grid 32 --samples 2 --n-g 2 --out "$WORK/a.h5"
expect 2 "--equation" --equation dft --dim 2 --grid 32 --samples 2 --n-g 2 --out "$WORK/a.h5"
expect 2 "--samples" "${B[@]}" --n-g 2 --samples 0 --out "$WORK/a.h5"
expect 2 "/nonexistent-dir" "${B[@]}" --n-g 2 --out /nonexistent-dir/a.h5
expect 2 "--force" "${B[@]}" --n-g 2 --out "$WORK/ks1.h5"
expect 2 "--out" --equation ks --dim 2 --grid 32 --samples 2 --n-g 2
expect 1 "sample 0" "${B[@]}" --n-g 2 --maxiter 1 --force --out "$WORK/ks1.h5"
h5diff "$WORK/ks1.h5" "$WORK/ks3.h5" >/dev/null || fail "a failed run damaged the existing file"
expect 1 "sample 0" "${B[@]}" --n-g 2 --maxiter 1 --out "$WORK/new.h5"
[[ ! -e $WORK/new.h5 ]] || fail "a failed run left its output"
ls "$WORK" | grep -q '\.tmp\.' && fail "temporary files left: $(ls "$WORK")"
"$MNNH" generate "${B[@]}" --n-g 2 --force --out "$WORK/ks1.h5" 2>/dev/null || fail "--force did not overwrite"
"$MNNH" generate --help | grep -q -- "--preset" || fail "--help lacks --preset"

# A write that cannot fit (here a 20 MB file size limit for a 67 MB file, as a
# full disk would) fails before any sample is computed: exit 1, no file left.
err=$( (ulimit -f 20000; "$MNNH" generate --quiet "${B[@]}" --grid 64 --samples 2000 --n-g 2 \
        --out "$WORK/big.h5") 2>&1 >/dev/null); rc=$?
[[ $rc == 1 ]] || fail "file size limit: exit $rc, expected 1 ($err)"
[[ $err == *"no room for"* ]] || fail "file size limit: message '$err'"
ls "$WORK" | grep -q 'big.h5' && fail "file size limit: file left: $(ls "$WORK")"

# SIGUSR1 (Slurm's warning before the time limit): stop at a block boundary,
# exit 75, leave no file.
"$MNNH" generate --quiet --equation ks --dim 2 --grid 64 --samples 100000 --n-g 2 --block 4 \
  --out "$WORK/sig.h5" 2>"$WORK/sig.err" &
pid=$!
for _ in $(seq 100); do ls "$WORK" | grep -q 'sig.h5.tmp' && break; sleep 0.1; done
sleep 0.5
kill -USR1 "$pid"
wait "$pid"; rc=$?
[[ $rc == 75 ]] || fail "SIGUSR1: exit $rc, expected 75 ($(cat "$WORK/sig.err"))"
grep -q "stopped by a signal" "$WORK/sig.err" || fail "SIGUSR1: no message ($(cat "$WORK/sig.err"))"
[[ ! -e $WORK/sig.h5 ]] || fail "SIGUSR1: output left"
ls "$WORK" | grep -q '\.tmp\.' && fail "SIGUSR1: temporary file left"

if ((fails)); then echo "generate_cli: $fails failure(s)"; exit 1; fi
echo "generate_cli: PASS"
