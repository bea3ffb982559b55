#!/bin/bash
# train_resume.sh MNNH MPIEXEC NP OTHER: resume tests at NP ranks.
# 1. bit-exact: a run stopped mid-epoch (--stop-after-steps, the same path as a
#    signal: agree, checkpoint, exit 75) and resumed with --resume auto ends
#    with /model and /optimizer byte-identical to an uninterrupted run after
#    the same number of steps;
# 2. a run stopped at NP ranks resumes at OTHER ranks and completes (the state
#    is global); metrics.jsonl holds one record per epoch.
source "$(dirname "$0")/train_common.sh" "$1" "$2"
NP=$3 OTHER=$4
mkdata train.h5 --samples 48
mkdata valid.h5 --samples 12 --seed 1
ARGS=(--train train.h5 --valid valid.h5 "${MODEL[@]}" --batch 8 --epochs 3 --progress 100 --seed 5)

run "$NP" train "${ARGS[@]}" --out A
expect 0 "done: 3 epochs" "uninterrupted run at $NP ranks"

# steps per epoch = 48/8 = 6: stop at global step 8 = epoch 2, step 2
run "$NP" train "${ARGS[@]}" --out B --stop-after-steps 8
expect 75 "checkpoint B/last.h5 written" "stop mid-epoch at $NP ranks exits 75"
[[ $(state B/last.h5 epoch_step) == 2 ]] || fail "checkpoint is not at epoch step 2"
run "$NP" train "${ARGS[@]}" --out B --resume auto
expect 0 "resuming from B/last.h5 \(epoch 1, step 8" "resume at $NP ranks"
same_params A/last.h5 B/last.h5
note "ok: resumed run is bit-identical to the uninterrupted one at $NP ranks"
[[ $(wc -l <B/metrics.jsonl) == 3 ]] || { cat B/metrics.jsonl; fail "metrics.jsonl should hold 3 epochs"; }

run "$NP" train "${ARGS[@]}" --out C --stop-after-steps 4
expect 75 "" "stop at $NP ranks"
run "$OTHER" train "${ARGS[@]}" --out C --resume auto
expect 0 "saved by $NP ranks" "resume of a $NP-rank checkpoint at $OTHER ranks"
[[ $(state C/last.h5 epoch) == 3 && $(state C/last.h5 world_size) == "$OTHER" ]] || fail "C/last.h5 did not reach epoch 3 at $OTHER ranks"
echo "PASS train_resume NP=$NP OTHER=$OTHER"
