#!/usr/bin/env bash
# gpu-bind.sh: run a command that sees only the GPU of its node-local rank.
#
# usage (inside a job step): srun ... jobs/gpu-bind.sh mnnh train ...
#
# Each task keeps entry SLURM_LOCALID (mod the count) of the GPUs the step gives
# it (CUDA_VISIBLE_DEVICES), so with one task per GPU task i of a node owns GPU i
# alone; mnnh, which selects device (local rank mod visible devices), then
# finds exactly one. Without GPUs it changes nothing. Used by jobs/lib.sh when
# MNNH_GPU_BIND=auto.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "gpu-bind.sh: error: no command given" >&2; exit 2; }
lr=${SLURM_LOCALID:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}
visible=${CUDA_VISIBLE_DEVICES:-}
if [[ -z $visible && -n ${SLURM_STEP_GPUS:-${SLURM_JOB_GPUS:-}} ]]; then
  visible=${SLURM_STEP_GPUS:-$SLURM_JOB_GPUS}
fi
if [[ -n $visible && $visible != NoDevFiles ]]; then
  IFS=, read -ra gpus <<<"$visible"
  n=${#gpus[@]}
  if ((lr >= n)) && [[ ${SLURM_PROCID:-0} == 0 ]]; then
    echo "gpu-bind.sh: warning: more tasks per node than GPUs ($n): GPUs are shared" >&2
  fi
  export CUDA_VISIBLE_DEVICES=${gpus[lr % n]}
fi
exec "$@"
