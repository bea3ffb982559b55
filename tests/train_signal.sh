#!/bin/bash
# train_signal.sh MNNH MPIEXEC: preemption and faults at 2 ranks.
# 1. SIGUSR1 to mpirun (forwarded to every rank) -> the ranks agree at a step
#    boundary -> rank 0 checkpoints -> exit 75; the run then resumes.
# 2. SIGTERM to ONE rank only: the flag travels in the gradient allreduce, all
#    ranks stop at the same step, exit 75.
# 3. kill -9 of one rank mid-run: the job dies, last.h5 stays valid, and
#    --resume auto continues from it.
source "$(dirname "$0")/train_common.sh" "$1" "$2"
mkdata train.h5 --samples 32
mkdata valid.h5 --samples 8 --seed 1
LONG=(--train train.h5 --valid valid.h5 "${MODEL[@]}" --batch 8 --epochs 100000 --progress 1000 --valid-every 20)

# start_long DIR: a long run in the background; returns when DIR/last.h5 exists
start_long() {
  "$MPIEXEC" -n 2 --oversubscribe --bind-to none "$MNNH" train "${LONG[@]}" --out "$1" "${@:2}" >out.log 2>&1 &
  PID=$!
  for _ in $(seq 300); do
    [[ -s $1/last.h5 ]] && return 0
    sleep 0.1
  done
  kill -9 "$PID"; cat out.log >&2; fail "no checkpoint appeared in $1"
}

start_long S1
kill -USR1 "$PID"
wait "$PID"; RC=$?
expect 75 "stop requested \(signal 10\).*checkpoint S1/last.h5 written" "SIGUSR1 -> checkpoint -> exit 75"
valid_ckpt S1/last.h5 || fail "S1/last.h5 unreadable"
step=$(state S1/last.h5 step)
run 2 train "${LONG[@]}" --out S1 --resume auto --epochs $(( $(state S1/last.h5 epoch) + 1 ))
expect 0 "resuming from S1/last.h5 \(epoch [0-9]+, step $step" "resume after SIGUSR1"

start_long S2
ranks=($(pgrep -P "$PID"))
[[ ${#ranks[@]} == 2 ]] || fail "expected 2 rank processes under mpirun $PID, found ${ranks[*]}"
kill -TERM "${ranks[1]}"
wait "$PID"; RC=$?
expect 75 "stop requested \(signal|stop requested at the end" "SIGTERM to one rank -> all ranks stop, exit 75"

start_long K --ckpt-every 1
sleep 0.5
ranks=($(pgrep -P "$PID"))
kill -9 "${ranks[1]}"
wait "$PID"; RC=$?
[[ $RC != 0 ]] || fail "mpirun exited 0 after kill -9 of a rank"
valid_ckpt K/last.h5 || fail "K/last.h5 is not a valid checkpoint after kill -9"
note "ok: kill -9 of a rank leaves a valid last.h5"
run 2 train "${LONG[@]}" --out K --resume auto --epochs $(( $(state K/last.h5 epoch) + 2 ))
expect 0 "resuming from K/last.h5" "resume after kill -9"
echo "PASS train_signal"
