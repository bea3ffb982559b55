#!/usr/bin/env bash
# start.sh: start (or find running) a single-node Slurm test cluster on this machine.
#
# usage: jobs/localcluster/start.sh [--print-env]
#
# Everything lives under one directory, $MNNH_SLURM_DIR (default
# /tmp/mnnh-slurm-$(id -u)): a munge key and socket, slurm.conf, state, spool, logs
# and pid files. Nothing under /etc or /run is touched, so stop.sh can remove it all.
# Idempotent: when the daemons of this directory are already up, it checks them and
# returns. Clients find the cluster through SLURM_CONF; source "$MNNH_SLURM_DIR/env"
# (or eval the output of --print-env) before calling sbatch/squeue/scontrol.
#
# Environment (all optional):
#   MNNH_SLURM_DIR        cluster directory (keep the path short: unix socket limit)
#   MNNH_SLURM_CPUS       CPUs the node advertises (default 4, oversubscribing this
#                         machine: jobs of 4 tasks must fit on one node)
#   MNNH_SLURM_PARTITION  partition name (default "local")
#   MNNH_SLURM_CTLD_PORT  slurmctld port (default 16817)
#   MNNH_SLURM_SLURMD_PORT slurmd port (default 16818)
#   MNNH_SLURM_INSTALL    1 (default when root): apt-get install the Debian packages
#                         slurmctld slurmd slurm-client munge if a binary is missing
#
# Needs root: slurmd runs jobs as their owner, munged is started as the munge user.
# Exit codes: 0 up and idle, 1 failure (the message names the log to read).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${MNNH_SLURM_DIR:-/tmp/mnnh-slurm-$(id -u)}
CPUS=${MNNH_SLURM_CPUS:-4}
PARTITION=${MNNH_SLURM_PARTITION:-local}
CTLD_PORT=${MNNH_SLURM_CTLD_PORT:-16817}
SLURMD_PORT=${MNNH_SLURM_SLURMD_PORT:-16818}
print_env=0

die() { echo "localcluster/start.sh: error: $*" >&2; exit 1; }
log() { echo "localcluster: $*" >&2; }

for a in "$@"; do
  case $a in
    --print-env) print_env=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$a' (see --help)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (slurmd and munged need it); this is a test cluster for CI machines"
[[ ${#DIR} -le 60 ]] || die "MNNH_SLURM_DIR '$DIR' is too long for unix socket paths; use a short path"

# ---- packages ----
need=(munged munge unmunge slurmctld slurmd sbatch srun squeue scontrol sinfo)
missing=()
for b in "${need[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || missing+=("$b")
done
if ((${#missing[@]})); then
  if [[ ${MNNH_SLURM_INSTALL:-1} == 1 ]] && command -v apt-get >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      slurmctld slurmd slurm-client munge >"${TMPDIR:-/tmp}/mnnh-slurm-apt.log" 2>&1 \
      || die "apt-get install failed; see ${TMPDIR:-/tmp}/mnnh-slurm-apt.log"
  else
    die "missing programs: ${missing[*]} (Debian: apt-get install slurmctld slurmd slurm-client munge)"
  fi
fi
export PATH=$PATH:/usr/sbin:/sbin
id munge >/dev/null 2>&1 || die "no 'munge' user (the Debian munge package creates it)"

# pid_alive PIDFILE NAME: the pid in PIDFILE is alive and runs program NAME
pid_alive() {
  local f=$1 name=$2 pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]]
}

# ---- directory layout ----
mkdir -p "$DIR"/{state,spool,log,run,munge,pmix}
chmod 0755 "$DIR"
chown munge:munge "$DIR/munge"
chmod 0711 "$DIR/munge"   # clients need x on the socket directory
SOCK=$DIR/munge/munge.socket
KEY=$DIR/munge/munge.key
MEM_MB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))

# ---- munge ----
if ! pid_alive "$DIR/munge/munged.pid" munged; then
  if [[ ! -s $KEY ]]; then
    dd if=/dev/urandom of="$KEY" bs=1 count=1024 status=none
    chown munge:munge "$KEY"
    chmod 0600 "$KEY"
  fi
  rm -f "$SOCK" "$SOCK.lock"
  runuser -u munge -- munged --socket="$SOCK" --key-file="$KEY" \
    --log-file="$DIR/munge/munged.log" --pid-file="$DIR/munge/munged.pid" \
    --seed-file="$DIR/munge/munged.seed" \
    || die "munged did not start; see $DIR/munge/munged.log"
  log "munged started (socket $SOCK)"
fi
for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
munge -n -S "$SOCK" | unmunge -S "$SOCK" >/dev/null \
  || die "munge round trip failed on $SOCK; see $DIR/munge/munged.log"

# ---- slurm.conf ----
conf_new=$DIR/slurm.conf.new
sed -e "s|@DIR@|$DIR|g" -e "s|@CPUS@|$CPUS|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
    -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@MUNGE_SOCKET@|$SOCK|g" \
    -e "s|@PARTITION@|$PARTITION|g" -e "s|@MEMORY_MB@|$MEM_MB|g" \
    "$here/slurm.conf.in" >"$conf_new"
CONF=$DIR/slurm.conf
changed=0
if ! cmp -s "$conf_new" "$CONF"; then changed=1; mv "$conf_new" "$CONF"; else rm -f "$conf_new"; fi
sed -e "s|@DIR@|$DIR|g" "$here/mpi.conf.in" >"$DIR/mpi.conf.new"
if ! cmp -s "$DIR/mpi.conf.new" "$DIR/mpi.conf"; then changed=1; mv "$DIR/mpi.conf.new" "$DIR/mpi.conf"; else rm -f "$DIR/mpi.conf.new"; fi
export SLURM_CONF=$CONF
cat >"$DIR/env" <<ENV
export SLURM_CONF=$CONF
export MNNH_SLURM_DIR=$DIR
export MNNH_SLURM_PARTITION=$PARTITION
export PATH=\$PATH:/usr/sbin
ENV

# ---- daemons ----
ctld_up=0; slurmd_up=0
pid_alive "$DIR/run/slurmctld.pid" slurmctld && ctld_up=1
pid_alive "$DIR/run/slurmd.pid" slurmd && slurmd_up=1
if ((changed && (ctld_up || slurmd_up))); then
  log "slurm.conf changed: restarting the daemons"
  "$here/stop.sh" --keep-dir
  exec "$0" "$@"
fi
if ((!ctld_up)); then
  # -i: ignore state from an earlier run that stop.sh did not clean (a crash).
  slurmctld -f "$CONF" -i || die "slurmctld did not start; see $DIR/log/slurmctld.log"
  log "slurmctld started (port $CTLD_PORT)"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer; see $DIR/log/slurmctld.log"
if ((!slurmd_up)); then
  slurmd -f "$CONF" -N localhost || die "slurmd did not start; see $DIR/log/slurmd.log"
  log "slurmd started (node localhost, $CPUS CPUs)"
fi

# ---- wait for the node ----
state=
for i in $(seq 150); do
  state=$(sinfo -h -n localhost -o '%T' 2>/dev/null | head -n1 || true)
  case $state in
    idle|mixed|allocated|completing) break ;;
    down*|drain*|fail*) ((i % 10 == 1)) && scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
case $state in
  idle|mixed|allocated|completing) ;;
  *) die "node localhost is '${state:-unknown}' after 30 s; see $DIR/log/slurmd.log and $DIR/log/slurmctld.log" ;;
esac
log "up: partition $PARTITION, node localhost ($CPUS CPUs, state $state); SLURM_CONF=$CONF"
if ((print_env)); then cat "$DIR/env"; fi
