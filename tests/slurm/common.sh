# common.sh: helpers for the Slurm tests (sourced by tests/slurm/*_test.sh).
# shellcheck shell=bash
#
# A test sources this file, calls `slurm_test_init NAME`, which starts the local
# cluster (jobs/localcluster/start.sh, idempotent) unless it runs already, makes a
# fresh work directory, and stops the cluster at exit only if this test started it
# (under ctest the slurm_cluster fixture starts and stops it once for all tests).
#
# Environment:
#   MNNH_BIN         the mnnh program (the tests pass it to the job scripts)
#   MNNH_TEST_WORK   parent of the work directories (default: $PWD/slurm-work)
#   MNNH_SLURM_DIR   the cluster directory (see jobs/localcluster/start.sh)

SLURM_TEST_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SLURM_TEST_SRC/../.." && pwd)
JOBS=$REPO/jobs
# Debian's python3 has h5py and matplotlib; a `python3` earlier on PATH may not.
PY=${MNNH_PYTHON:-/usr/bin/python3}
# The tests' KS 2D problem: a 16 x 16 grid and a small model (N = 2^L m = 16), so
# that the whole Slurm suite stays within a few minutes on 2 shared cores. The
# job scripts and mnnh do the same work for the paper's N = 64 model, only slower.
TEST_GRID=16 TEST_L=2 TEST_M=4 TEST_R=4 TEST_K=2
export TEST_GRID TEST_L TEST_M TEST_R TEST_K
_started_cluster=0

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
note() { echo "--- $*" >&2; }

slurm_test_init() {
  local name=$1
  if [[ $(id -u) -ne 0 ]]; then fail "the Slurm tests start slurmd and munged and must run as root"; fi
  local dir=${MNNH_SLURM_DIR:-/tmp/mnnh-slurm-$(id -u)}
  if ! { [[ -f $dir/env ]] && (source "$dir/env" && scontrol ping 2>/dev/null | grep -q 'is UP'); }; then
    "$JOBS/localcluster/start.sh" || fail "could not start the local Slurm cluster"
    _started_cluster=1
  fi
  # shellcheck disable=SC1091
  source "$dir/env"
  "$JOBS/localcluster/start.sh" >/dev/null 2>&1 || fail "local Slurm cluster is not healthy (jobs/localcluster/start.sh)"
  WORK=${MNNH_TEST_WORK:-$PWD/slurm-work}/$name
  rm -rf "$WORK"
  mkdir -p "$WORK"
  trap _slurm_test_exit EXIT
  note "$name: work directory $WORK, SLURM_CONF=$SLURM_CONF"
}

_slurm_test_exit() {
  local rc=$?
  if ((rc != 0)); then
    note "test failed (status $rc); job logs in ${WORK:-?}; last lines of the Slurm logs:"
    tail -n 15 "$MNNH_SLURM_DIR/log/slurmctld.log" "$MNNH_SLURM_DIR/log/slurmd.log" >&2 2>/dev/null || true
  fi
  if ((_started_cluster)); then "$JOBS/localcluster/stop.sh" || true; fi
  exit "$rc"
}

require_mnnh() {
  [[ -n ${MNNH_BIN:-} && -x $MNNH_BIN ]] || fail "MNNH_BIN='${MNNH_BIN:-}' is not the mnnh program"
  export MNNH_BIN
}

# require_subcommand CMD: the mnnh program has the subcommand (else the test
# cannot run: the message says what is missing)
require_subcommand() {
  local out
  out=$("$MNNH_BIN" "$1" --help 2>&1) && return 0
  fail "mnnh has no working '$1' subcommand yet ('$MNNH_BIN $1 --help' said: $(echo "$out" | head -n 2 | tr '\n' ' '))"
}

# job_field JOB FIELD: a field of `scontrol show job` (JobState, ExitCode, Restarts, Reason)
job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

# submit ARGS...: sbatch --parsable, prints the job id
submit() {
  local id
  id=$(sbatch --parsable "$@") || fail "sbatch $* was refused"
  echo "${id%%;*}"
}

# wait_job JOB TIMEOUT [LOG]: wait until the job ends; prints its final state.
# Fails on timeout, or when the job is left pending by a failed dependency.
wait_job() {
  local job=$1 timeout=$2 log=${3:-} t0=$SECONDS state reason
  while :; do
    state=$(job_field "$job" JobState)
    reason=$(job_field "$job" Reason)
    case $state in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
        echo "$state"; return 0 ;;
      "") fail "job $job is unknown to slurmctld" ;;
    esac
    [[ $reason == DependencyNeverSatisfied ]] && { echo "DEPENDENCY_FAILED"; return 0; }
    if ((SECONDS - t0 > timeout)); then
      [[ -n $log && -f $log ]] && { note "log of job $job ($log):"; tail -n 40 "$log" >&2; }
      fail "job $job still $state (reason $reason) after $timeout s"
    fi
    sleep 1
  done
}

# expect_completed JOB TIMEOUT LOG: wait, and fail with the log unless COMPLETED 0:0
expect_completed() {
  local job=$1 timeout=$2 log=$3 state code
  state=$(wait_job "$job" "$timeout" "$log")
  code=$(job_field "$job" ExitCode)
  if [[ $state != COMPLETED || $code != 0:0 ]]; then
    note "log of job $job ($log):"
    cat "$log" >&2 2>/dev/null || echo "(no log)" >&2
    fail "job $job ended $state with exit code $code"
  fi
  note "job $job COMPLETED"
}

# same_model A.h5 B.h5: every dataset under /model identical, bit for bit
same_model() {
  "$PY" - "$1" "$2" <<'EOF'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a["/model"].visit(lambda n: names.append(n) if isinstance(a["/model"][n], h5py.Dataset) else None)
if not names:
    sys.exit("no datasets under /model in " + sys.argv[1])
bad = 0
for n in sorted(names):
    x = a["/model"][n][()]
    if n not in b["/model"]:
        print("missing in %s: /model/%s" % (sys.argv[2], n)); bad += 1; continue
    y = b["/model"][n][()]
    if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
        d = np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))) if x.shape == y.shape else float("nan")
        print("differs: /model/%s (max abs difference %g)" % (n, d)); bad += 1
print("compared %d datasets under /model: %d differ" % (len(names), bad))
sys.exit(1 if bad else 0)
EOF
}
