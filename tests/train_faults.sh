#!/bin/bash
# train_faults.sh MNNH MPIEXEC NP: checkpoints that cannot be trusted, at NP ranks.
# 1. a truncated last.h5 is detected and skipped with a warning: --resume auto
#    takes best.h5;
# 2. flipped bytes inside a checksummed dataset of last.h5 (Fletcher32) are
#    detected and skipped the same way;
# 3. both corrupt: exit 2, naming both, nothing overwritten;
# 4. a non-finite loss (an absurd --lr) stops with exit 1 and a clear message,
#    leaving the last good checkpoint byte-identical.
source "$(dirname "$0")/train_common.sh" "$1" "$2"
NP=$3
mkdata train.h5 --samples 32
mkdata valid.h5 --samples 8 --seed 1
ARGS=(--train train.h5 --valid valid.h5 "${MODEL[@]}" --batch 8 --progress 100)

# a run where last.h5 (epoch 3) is newer than best.h5: plateau of a tiny lr is
# not guaranteed, so force it: best.h5 from a 2-epoch run, last.h5 from 3 epochs
run "$NP" train "${ARGS[@]}" --epochs 2 --out R
expect 0 "" "2-epoch run"
cp R/last.h5 best2.h5
run "$NP" train "${ARGS[@]}" --epochs 3 --out R --resume auto
expect 0 "" "3-epoch run"
cp best2.h5 R/best.h5
cp R/last.h5 last3.h5

truncate -s $(( $(stat -c %s R/last.h5) / 2 )) R/last.h5
run "$NP" train "${ARGS[@]}" --epochs 4 --out R --resume auto
expect 0 "warning: skipping checkpoint R/last.h5: .*truncated" "truncated last.h5 skipped, best.h5 used"
has "resuming from R/best.h5 \(epoch 2" "truncated last.h5 skipped"

cp last3.h5 R/last.h5
cp best2.h5 R/best.h5
# flip bytes in the middle of the chunk of /optimizer/v (Fletcher32-checked)
"$PY" - R/last.h5 <<'PYEOF' || fail "cannot corrupt"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    d = f["optimizer/v"]
    info = d.id.get_chunk_info(0)
    off, size = info.byte_offset, info.size
with open(sys.argv[1], "r+b") as f:
    f.seek(off + size // 2)
    b = bytearray(f.read(8))
    f.seek(off + size // 2)
    f.write(bytes(x ^ 0x5A for x in b))
PYEOF
run "$NP" train "${ARGS[@]}" --epochs 4 --out R --resume auto
expect 0 "warning: skipping checkpoint R/last.h5: .*(checksum|optimizer/v)" "corrupted dataset in last.h5 detected and skipped"
has "resuming from R/best.h5 \(epoch 2" "corrupted last.h5 skipped"

truncate -s 1000 R/last.h5
truncate -s 1000 R/best.h5
sum_before=$(cat R/last.h5 R/best.h5 | sha256sum)
run "$NP" train "${ARGS[@]}" --epochs 4 --out R --resume auto
expect 2 "no valid checkpoint in R" "both checkpoints corrupt: exit 2"
[[ $(cat R/last.h5 R/best.h5 | sha256sum) == "$sum_before" ]] || fail "corrupt checkpoints were overwritten"

cp last3.h5 R/last.h5
rm -f R/best.h5
sum_before=$(sha256sum <R/last.h5)
run "$NP" train "${ARGS[@]}" --epochs 6 --out R --resume auto --lr 1e30
expect 1 "non-finite training loss at epoch 4.*last good checkpoint R/last.h5 is kept" "NaN/Inf loss stops with exit 1"
[[ $(sha256sum <R/last.h5) == "$sum_before" ]] || fail "last.h5 changed after the non-finite loss"
valid_ckpt R/last.h5 || fail "last.h5 invalid after the non-finite loss"
echo "PASS train_faults NP=$NP"
