#!/usr/bin/env bash
# cluster_test.sh: the local Slurm runs MPI: an sbatch job on 4 tasks (more than
# the machine's cores: the node advertises oversubscribed CPUs) runs
# `srun --mpi=pmix -n 4 mpi_hello`; every rank reports and the allreduce agrees.
# Also checks that start.sh is idempotent (a second start keeps the same daemons).
#
# usage: tests/slurm/cluster_test.sh PATH/TO/mpi_hello
set -euo pipefail
source "$(dirname "$0")/common.sh"
HELLO=${1:?usage: cluster_test.sh PATH/TO/mpi_hello}
[[ -x $HELLO ]] || fail "$HELLO is not an executable"
slurm_test_init cluster

pids_before=$(cat "$MNNH_SLURM_DIR"/run/*.pid "$MNNH_SLURM_DIR"/munge/munged.pid)
"$JOBS/localcluster/start.sh"
pids_after=$(cat "$MNNH_SLURM_DIR"/run/*.pid "$MNNH_SLURM_DIR"/munge/munged.pid)
[[ $pids_before == "$pids_after" ]] || fail "start.sh restarted running daemons ($pids_before -> $pids_after)"

[[ $(sinfo -h -n localhost -o '%c') -ge 4 ]] || fail "node localhost advertises fewer than 4 CPUs"

cat >"$WORK/hello.sbatch" <<SCRIPT
#!/bin/bash
#SBATCH --job-name=mnnh-hello
#SBATCH --ntasks=4
#SBATCH --time=00:05:00
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
srun --mpi=pmix -n 4 "$HELLO"
SCRIPT
job=$(submit --output="$WORK/hello-%j.out" "$WORK/hello.sbatch")
log=$WORK/hello-$job.out
expect_completed "$job" 60 "$log"
cat "$log"
n=$(grep -c '^hello from rank [0-3] of 4 ' "$log" || true)
[[ $n -eq 4 ]] || fail "expected 4 ranks to say hello, got $n"
grep -q '^allreduce ok: 4 of 4' "$log" || fail "the allreduce across the 4 ranks did not agree"
echo "PASS: sbatch + srun --mpi=pmix -n 4 on the local cluster"
