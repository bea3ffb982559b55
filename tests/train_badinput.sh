#!/bin/bash
# train_badinput.sh MNNH MPIEXEC NP: every bad input of `mnnh train` (and
# `mnnh validate`) at NP ranks gets exit 2 and a message naming the file,
# dataset or option, with no crash, no hang (ctest's timeout) and the existing
# checkpoint left byte-identical.
source "$(dirname "$0")/train_common.sh" "$1" "$2"
NP=$3
mkdata train.h5 --samples 16
mkdata valid.h5 --samples 8 --seed 1
mkdata nan.h5 --samples 16 --nan 13
mkdata tiny.h5 --samples 3
mkdata n20.h5 --N 20 --samples 16
mkdata noout.h5 --samples 16 --no-output
mkdata badout.h5 --samples 16 --grid-out 20
echo "not an HDF5 file" >text.h5
GOOD=(--train train.h5 --valid valid.h5 "${MODEL[@]}" --batch 8 --epochs 1 --progress 100)

run "$NP" train "${GOOD[@]}" --out R
expect 0 "" "a good run first"
sum=$(sha256sum <R/last.h5)
intact() { [[ $(sha256sum <R/last.h5) == "$sum" ]] || fail "$1: R/last.h5 was overwritten"; }

# bad ARGS... PATTERN WHAT: resume run R with ARGS replacing the good ones
bad() {
  local what=${*: -1} pat=${*: -2:1}
  run "$NP" train "${@:1:$#-2}"
  expect 2 "$pat" "$what"; grep -m1 "error:" out.log >&2
  intact "$what"
}
bad --train missing.h5 --valid valid.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "--train: missing.h5: No such file" "missing training set"
bad --train text.h5 --valid valid.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "--train: text.h5: not an HDF5 file" "not an HDF5 file"
bad --train noout.h5 --valid valid.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "noout.h5: no dataset /output" "dataset without /output"
bad --train badout.h5 --valid valid.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "badout.h5: /output has a grid of 20" "/output of another grid"
bad --train train.h5 --valid valid.h5 --L 2 --m 5 --r 4 --K 2 --out R --resume auto --epochs 2 "grid has N = 40 .*N = 2\^L m = 2\^2 \* 5 = 20" "grid N != 2^L m"
bad --train train.h5 --valid n20.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "n20.h5: /input has a grid of 20 .* N = 2\^L m" "validation set of another grid than the model"
bad --train nan.h5 --valid valid.h5 "${MODEL[@]}" --out R --resume auto --epochs 2 "nan.h5: /output sample 13 holds a non-finite value \(NaN" "NaN in the data"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --batch 7 "--batch 7 is not divisible by the $NP ranks|--batch 7: each of" "batch not divisible / too large"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --batch 64 "--batch 64: each of the $NP ranks needs" "batch larger than a shard"
bad --train train.h5 --valid valid.h5 --L 3 --m 5 --r 6 --K 2 --out R --resume auto --epochs 2 "--resume R/last.h5: checkpoint of another architecture \(.*r=4.*\) than this run \(.*r=6" "checkpoint of another architecture"
bad "${GOOD[@]}" --out R --resume valid.h5 --epochs 2 "--resume valid.h5: .*no group /model|--resume valid.h5" "--resume of a file that is not a checkpoint"
bad "${GOOD[@]}" --out R --epochs 2 "--out R already holds last.h5" "new run over an existing run"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --lr-schedule cosine "--lr-schedule cosine" "unknown schedule"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --no-such-option "unknown option '--no-such-option'" "unknown option"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --init xavier "--init xavier: expected he or glorot" "unknown initialisation"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --adam-eps 0 "--adam-eps 0: must be a finite number > 0" "NAdam epsilon of 0"
bad "${GOOD[@]}" --out R --resume auto --epochs 2 --init-bias nan "bad value .nan. for --init-bias" "NaN initial bias"
run "$NP" train "${GOOD[@]}" --out /sys
expect 2 "--out /sys: the checkpoint directory is not writable" "unwritable checkpoint directory"
touch afile
run "$NP" train "${GOOD[@]}" --out afile/run
expect 2 "--out afile/run: cannot create the run directory" "run directory below a file"
if ((NP > 3)); then
  run "$NP" train --train tiny.h5 --valid valid.h5 "${MODEL[@]}" --batch "$NP" --out T
  expect 2 "--train tiny.h5: 3 sample\(s\) for $NP ranks" "fewer samples than ranks"
fi
run "$NP" validate --model R/last.h5 --data n20.h5
expect 2 "n20.h5: /input has a grid of 20" "validate: dataset of another grid"
run "$NP" validate --model missing.h5 --data valid.h5
expect 2 "--model: missing.h5" "validate: missing model"
run "$NP" validate --model R/last.h5 --data valid.h5 --out v.h5
expect 0 "mean .* median .* max" "validate: a good run"
echo "PASS train_badinput NP=$NP"
