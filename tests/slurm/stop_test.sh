#!/usr/bin/env bash
# stop_test.sh: stops the local Slurm cluster (jobs/localcluster/stop.sh) and
# checks that nothing is left: the daemons' processes are gone and the cluster
# directory is removed. A second stop must succeed too (idempotent).
# ctest runs it last (cleanup of the slurm_cluster fixture).
#
# usage: tests/slurm/stop_test.sh
set -euo pipefail
JOBS=$(cd "$(dirname "$0")/../../jobs" && pwd)
DIR=${MNNH_SLURM_DIR:-/tmp/mnnh-slurm-$(id -u)}
pids=$(cat "$DIR"/run/*.pid "$DIR"/munge/munged.pid 2>/dev/null || true)
"$JOBS/localcluster/stop.sh"
"$JOBS/localcluster/stop.sh"
for p in $pids; do
  if kill -0 "$p" 2>/dev/null; then
    echo "FAIL: daemon pid $p ($(cat /proc/"$p"/comm 2>/dev/null)) still running after stop.sh" >&2
    exit 1
  fi
done
[[ ! -e $DIR ]] || { echo "FAIL: $DIR still exists after stop.sh" >&2; exit 1; }
echo "PASS: cluster stopped (pids: ${pids:-none were running}), $DIR removed"
