#!/usr/bin/env bash
# stop.sh: stop the single-node Slurm test cluster started by start.sh and remove
# its directory.
#
# usage: jobs/localcluster/stop.sh [--keep-dir]
#
# Cancels every job of the cluster, waits for them to end, stops slurmd, slurmctld
# and munged (by the pids in their pid files, never by name), and removes
# $MNNH_SLURM_DIR (default /tmp/mnnh-slurm-$(id -u)). --keep-dir keeps the
# directory (logs, key, state) for a restart or for reading the logs.
# Idempotent: stopping a cluster that is not running succeeds.
set -euo pipefail

DIR=${MNNH_SLURM_DIR:-/tmp/mnnh-slurm-$(id -u)}
keep=0
for a in "$@"; do
  case $a in
    --keep-dir) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "localcluster/stop.sh: error: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
export PATH=$PATH:/usr/sbin:/sbin
log() { echo "localcluster: $*" >&2; }

pid_of() { # PIDFILE NAME -> pid if alive and running NAME
  local f=$1 name=$2 pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]] || return 1
  echo "$pid"
}
stop_pid() { # PID NAME: TERM, wait up to 15 s, then KILL
  local pid=$1 name=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || { log "$name ($pid) stopped"; return 0; }; sleep 0.2; done
  log "$name ($pid) ignored SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

if [[ -d $DIR ]]; then
  export SLURM_CONF=$DIR/slurm.conf
  if pid_of "$DIR/run/slurmctld.pid" slurmctld >/dev/null && [[ -f $SLURM_CONF ]]; then
    jobs=$(squeue -h -o '%i' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      log "cancelling jobs: $(echo $jobs)"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 100); do [[ -z $(squeue -h -o '%i' 2>/dev/null) ]] && break; sleep 0.2; done
    fi
  fi
  # Job steps (slurmstepd) end with their jobs; give the stragglers of a crashed
  # slurmd a moment: their sockets live in the spool directory.
  for _ in $(seq 50); do compgen -G "$DIR/spool/localhost_*" >/dev/null || break; sleep 0.2; done
  if compgen -G "$DIR/spool/localhost_*" >/dev/null; then
    log "warning: job step sockets remain in $DIR/spool: $(cd "$DIR/spool" && echo localhost_*)"
  fi
  if pid=$(pid_of "$DIR/run/slurmd.pid" slurmd); then stop_pid "$pid" slurmd; fi
  if pid=$(pid_of "$DIR/run/slurmctld.pid" slurmctld); then stop_pid "$pid" slurmctld; fi
  if pid=$(pid_of "$DIR/munge/munged.pid" munged); then stop_pid "$pid" munged; fi
  if ((!keep)); then
    rm -rf "$DIR"
    log "removed $DIR"
  fi
else
  log "no cluster directory $DIR: nothing to stop"
fi
