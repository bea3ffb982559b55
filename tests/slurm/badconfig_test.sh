#!/usr/bin/env bash
# badconfig_test.sh: jobs with a wrong configuration fail at once, with a clear
# message in their log, a non-zero exit code, and no requeue:
#  1. train.sbatch with MNNH_TRAIN naming a file that does not exist (caught by
#     the script before srun);
#  2. train.sbatch with a model that does not fit the data (L=TEST_L+1 doubles
#     the model's grid N = 2^L m), caught by mnnh train, which must name the
#     grid mismatch;
#  3. generate.sbatch without MNNH_SAMPLES.
#
# usage: MNNH_BIN=build/mnnh MNNH_TEST_WORK=DIR tests/slurm/badconfig_test.sh
#        (case 2 needs the datasets of e2e_test.sh in $MNNH_TEST_WORK/data)
set -euo pipefail
source "$(dirname "$0")/common.sh"
slurm_test_init badconfig
require_mnnh
DATA=${MNNH_TEST_WORK:-$PWD/slurm-work}/data

# expect_failed JOB LOG REGEX WHAT: the job FAILED with a non-zero code, was not
# requeued, and its log matches REGEX
expect_failed() {
  local job=$1 log=$2 re=$3 what=$4 state code
  state=$(wait_job "$job" 120 "$log")
  code=$(job_field "$job" ExitCode)
  note "$what: job $job $state, exit code $code; its log:"
  cat "$log" >&2
  [[ $state == FAILED && $code != 0:0 ]] || fail "$what: job $job ended $state with exit code $code, expected FAILED"
  [[ $(job_field "$job" Restarts) -eq 0 ]] || fail "$what: job $job was requeued"
  grep -Eiq "$re" "$log" || fail "$what: the log of job $job does not explain the error (no match for /$re/)"
}

j1=$(MNNH_TRAIN=$WORK/no-such-train.h5 MNNH_VALID=$WORK/no-such-valid.h5 MNNH_OUT=$WORK/run1 \
     MNNH_L=$TEST_L MNNH_M=$TEST_M MNNH_R=$TEST_R MNNH_K=$TEST_K submit -n 2 --output="$WORK/missing-%j.out" "$JOBS/train.sbatch")
expect_failed "$j1" "$WORK/missing-$j1.out" "error: MNNH_TRAIN=.*no-such-train\.h5: no such readable file" "missing training set"
[[ $(job_field "$j1" ExitCode) == 2:0 ]] || fail "missing training set: exit code $(job_field "$j1" ExitCode), expected 2 (bad input)"

j3=$(MNNH_OUT=$WORK/x.h5 submit -n 1 --output="$WORK/nosamples-%j.out" "$JOBS/generate.sbatch")
expect_failed "$j3" "$WORK/nosamples-$j3.out" "error: MNNH_SAMPLES is not set" "generate without MNNH_SAMPLES"

require_subcommand train
[[ -s $DATA/train.h5 && -s $DATA/valid.h5 ]] || fail "no datasets in $DATA (run the slurm_e2e test first)"
j2=$(MNNH_TRAIN=$DATA/train.h5 MNNH_VALID=$DATA/valid.h5 MNNH_OUT=$WORK/run2 \
     MNNH_L=$((TEST_L + 1)) MNNH_M=$TEST_M MNNH_R=$TEST_R MNNH_K=$TEST_K MNNH_EPOCHS=1 submit -n 2 --output="$WORK/mismatch-%j.out" "$JOBS/train.sbatch")
expect_failed "$j2" "$WORK/mismatch-$j2.out" "error.*(grid|N *=|2\^L|does not match)" "model/grid mismatch"
[[ ! -e $WORK/run2/last.h5 ]] || fail "model/grid mismatch: a checkpoint was written anyway"
echo "PASS: wrong configurations fail with a clear message, a non-zero exit, and no requeue"
