#!/usr/bin/env bash
# preempt_test.sh: a training job that is preempted resumes and ends where an
# uninterrupted one does. Two train.sbatch jobs with the same configuration on 2
# tasks: the reference runs through; the other gets SIGUSR1 in its batch script
# once its first epoch is logged (`scancel --signal=USR1 --batch`, what Slurm does
# at --signal=B:USR1@<s> before the time limit). The script forwards the signal,
# mnnh checkpoints and exits 75, the script requeues the job, the test makes the
# requeued job eligible at once (`scontrol update StartTime=now`, else Slurm waits
# about 121 s), the job restarts with --resume auto and completes. The final
# checkpoints' /model datasets must be identical bit for bit (same rank count).
#
# usage: MNNH_BIN=build/mnnh MNNH_TEST_WORK=DIR tests/slurm/preempt_test.sh
#        (needs the datasets of e2e_test.sh in $MNNH_TEST_WORK/data)
set -euo pipefail
source "$(dirname "$0")/common.sh"
slurm_test_init preempt
require_mnnh
require_subcommand train
DATA=${MNNH_TEST_WORK:-$PWD/slurm-work}/data
[[ -s $DATA/train.h5 && -s $DATA/valid.h5 ]] || fail "no datasets in $DATA (run the slurm_e2e test first)"
EPOCHS=${PREEMPT_EPOCHS:-60}  # long enough that the signal lands mid-run with the fast CPU kernels

train() { # NAME: submit train.sbatch writing to $WORK/NAME
  MNNH_TRAIN=$DATA/train.h5 MNNH_VALID=$DATA/valid.h5 MNNH_OUT=$WORK/$1 \
  MNNH_L=$TEST_L MNNH_M=$TEST_M MNNH_R=$TEST_R MNNH_K=$TEST_K MNNH_VARIANT=cnn MNNH_BATCH=8 MNNH_EPOCHS=$EPOCHS MNNH_SEED=5 \
    submit -n 2 --job-name="mnnh-$1" --output="$WORK/$1-%j.out" "$JOBS/train.sbatch"
}
ref=$(train ref)
job=$(train preempted)
log=$WORK/preempted-$job.out
note "reference job $ref, job to preempt $job ($EPOCHS epochs each)"

# wait for the first epoch of the job to preempt, then signal its batch script
t0=$SECONDS
until [[ -s $WORK/preempted/metrics.jsonl ]]; do
  state=$(job_field "$job" JobState)
  [[ $state == PENDING || $state == RUNNING ]] || { cat "$log" >&2; fail "job $job ended ($state) before its first epoch"; }
  ((SECONDS - t0 < 120)) || fail "no epoch logged by job $job after 120 s"
  sleep 0.5
done
done_epochs=$(wc -l <"$WORK/preempted/metrics.jsonl")
((done_epochs < EPOCHS)) || fail "job $job finished all $EPOCHS epochs before the signal: make the run longer (PREEMPT_EPOCHS)"
note "job $job logged $done_epochs epoch(s): sending SIGUSR1 to its batch script"
scancel --signal=USR1 --batch "$job"

# the script requeues the job: wait for the restart count, then start it now
t0=$SECONDS
until [[ $(job_field "$job" Restarts) -ge 1 ]]; do
  state=$(job_field "$job" JobState)
  case $state in COMPLETED|FAILED|CANCELLED|TIMEOUT) cat "$log" >&2; fail "job $job ended $state instead of being requeued" ;; esac
  ((SECONDS - t0 < 90)) || { cat "$log" >&2; fail "job $job was not requeued within 90 s of SIGUSR1"; }
  sleep 0.5
done
# Released at once (instead of Slurm's ~121 s), the job could restart before the
# node has finished its previous step: wait for the step's sockets to go.
t0=$SECONDS
while compgen -G "$MNNH_SLURM_DIR/spool/*[_.]$job.[0-9]*" >/dev/null; do
  ((SECONDS - t0 < 30)) || fail "the requeued job's old step is still on the node after 30 s: $(ls "$MNNH_SLURM_DIR/spool")"
  sleep 0.5
done
# slurmd refuses a batch credential issued in the same second as the job's
# revocation ("Job credential revoked"): that is what Slurm's own ~121 s
# delay avoids. Step into the next second before releasing the job.
sleep 2
note "job $job requeued ($(job_field "$job" JobState), reason $(job_field "$job" Reason)): releasing it now"
scontrol update JobId="$job" StartTime=now

expect_completed "$ref" 300 "$WORK/ref-$ref.out"
expect_completed "$job" 300 "$log"
cat "$log"
[[ $(job_field "$job" Restarts) -eq 1 ]] || fail "job $job restarted $(job_field "$job" Restarts) times, expected 1"
grep -q 'received SIGUSR1' "$log" || fail "the batch script did not log the SIGUSR1"
grep -q 'mnnh exited with status 75' "$log" || fail "mnnh did not exit 75 after the signal"
grep -q 'requeueing job' "$log" || fail "the batch script did not requeue the job"
grep -q -- '--resume auto' "$log" || fail "the restarted job did not pass --resume auto"
n=$(wc -l <"$WORK/preempted/metrics.jsonl")
note "metrics records: reference $(wc -l <"$WORK/ref/metrics.jsonl"), preempted run $n"
same_model "$WORK/ref/last.h5" "$WORK/preempted/last.h5" \
  || fail "the resumed run's final parameters differ from the uninterrupted run's"
echo "PASS: SIGUSR1 -> checkpoint -> exit 75 -> requeue -> --resume auto -> same final parameters"
