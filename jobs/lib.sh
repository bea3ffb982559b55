# lib.sh: shared part of the mnnh sbatch scripts (sourced, never run).
# shellcheck shell=bash
#
# The sbatch scripts in this directory source this file and call
#   mnnh_job_init <name>       site setup (modules, setup file, MPI environment),
#                              finds the mnnh program, prints a job header
#   mnnh_run_step <mnnh args>  runs `srun --mpi=pmix ... mnnh <args>` in the
#                              background, forwards SIGUSR1/SIGTERM received by
#                              the batch script to the step, and when mnnh exits 75
#                              (stopped by a signal after a checkpoint) requeues
#                              the job with `scontrol requeue`
# A batch script is copied by Slurm into its spool directory, so this file is
# found through $MNNH_JOBS_DIR, else through the job's Command (the path that was
# given to sbatch), else next to the script when it runs outside Slurm.
#
# Environment read here (see docs/cluster.md for adapting to a site):
#   MNNH_BIN          the mnnh program (default: `mnnh` on PATH, else
#                     ../build/mnnh next to jobs/)
#   MNNH_MODULES      modules to `module load`, space separated (e.g.
#                     "openmpi/4.1 hdf5/1.12-mpi cuda/12.4")
#   MNNH_SETUP        a file to source before running (conda env, site paths)
#   MNNH_MPI          srun MPI plugin (default pmix; pmi2 does not work with
#                     Debian's Open MPI)
#   MNNH_SRUN_ARGS    extra srun arguments (e.g. "--cpu-bind=cores")
#   MNNH_GPU_BIND     auto (default): when the job has GPUs, each task sees only
#                     the GPU of its node-local rank (CUDA_VISIBLE_DEVICES set by
#                     jobs/gpu-bind.sh); none: every task sees every GPU of its
#                     node and mnnh picks the one of its local rank itself
#   MNNH_REQUEUE      1 (default): requeue after exit code 75; 0: just exit 75
#   MNNH_MAX_RESTARTS stop requeueing after this many restarts (default 20)
#   MNNH_LAUNCH_RETRIES  retries when srun cannot launch the step (default 3,
#                     10 s apart): a failed launch is never reported as success
#   MNNH_THREADS      OpenMP/OpenBLAS threads per task (default: the CPUs per
#                     task of the allocation, else 1)

MNNH_EXIT_SIGNAL=75

mnnh_log() { echo "[mnnh-job $(date '+%F %T')] $*" >&2; }
mnnh_die() {
  # a configuration error: exit 2 like mnnh does for bad usage, never requeued
  echo "[mnnh-job] error: $*" >&2
  exit 2
}

# mnnh_require VAR "what it is": a clear error when a required variable is unset
mnnh_require() {
  local var=$1 what=$2
  [[ -n ${!var:-} ]] || mnnh_die "$var is not set: it must name $what (see the header of ${MNNH_JOB_SCRIPT:-the script} and docs/cluster.md)"
}

# mnnh_require_file VAR "what": set and an existing readable file
mnnh_require_file() {
  local var=$1 what=$2
  mnnh_require "$var" "$what"
  [[ -r ${!var} && -f ${!var} ]] || mnnh_die "$var=${!var}: no such readable file ($what)"
}

mnnh_job_init() {
  MNNH_JOB_NAME=$1
  if [[ -n ${MNNH_MODULES:-} ]]; then
    if ! type module >/dev/null 2>&1; then
      for f in /etc/profile.d/modules.sh /etc/profile.d/lmod.sh /usr/share/lmod/lmod/init/bash; do
        # shellcheck disable=SC1090
        [[ -r $f ]] && { set +u; source "$f"; set -u; break; }
      done
    fi
    type module >/dev/null 2>&1 || mnnh_die "MNNH_MODULES is set but this node has no 'module' command"
    local m
    for m in $MNNH_MODULES; do
      set +u; module load "$m" || mnnh_die "module load $m failed (MNNH_MODULES)"; set -u
    done
  fi
  if [[ -n ${MNNH_SETUP:-} ]]; then
    [[ -r $MNNH_SETUP ]] || mnnh_die "MNNH_SETUP=$MNNH_SETUP: no such file"
    # shellcheck disable=SC1090
    set +u; source "$MNNH_SETUP"; set -u
  fi

  # Open MPI under srun: shared memory + self only on one node is enough for the
  # tests; sites with a fabric unset OMPI_MCA_btl in their setup file. Running as
  # root (containers, CI) needs Open MPI's explicit consent.
  export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
  if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
  fi
  local threads=${MNNH_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads}
  export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$threads}

  if [[ -z ${MNNH_BIN:-} ]]; then
    if command -v mnnh >/dev/null 2>&1; then
      MNNH_BIN=$(command -v mnnh)
    elif [[ -x $MNNH_JOBS_DIR/../build/mnnh ]]; then
      MNNH_BIN=$(cd "$MNNH_JOBS_DIR/../build" && pwd)/mnnh
    else
      mnnh_die "no mnnh program: set MNNH_BIN to its path or put it on PATH"
    fi
  fi
  [[ -x $MNNH_BIN ]] || mnnh_die "MNNH_BIN=$MNNH_BIN is not an executable file"

  mnnh_log "$MNNH_JOB_NAME: job ${SLURM_JOB_ID:-none} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
    "${SLURM_NNODES:-1} node(s), ${SLURM_NTASKS:-1} task(s), GPUs ${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-none}}, mnnh $MNNH_BIN"
}

_mnnh_step_pid=
_mnnh_signalled=
_mnnh_forward() {
  local sig=$1
  _mnnh_signalled=$sig
  if [[ -n $_mnnh_step_pid ]] && kill -0 "$_mnnh_step_pid" 2>/dev/null; then
    mnnh_log "received SIG$sig: forwarding it to the job step (srun pid $_mnnh_step_pid) so mnnh checkpoints and stops"
    kill -s "$sig" "$_mnnh_step_pid" 2>/dev/null || true
  else
    mnnh_log "received SIG$sig with no step running"
  fi
}

# mnnh_run_step ARGS...: srun the mnnh program with ARGS on every task of the
# allocation. Returns (exits) with mnnh's exit code; 75 triggers the requeue.
mnnh_run_step() {
  local -a cmd=(srun "--mpi=${MNNH_MPI:-pmix}" --kill-on-bad-exit=1)
  # shellcheck disable=SC2206
  [[ -n ${MNNH_SRUN_ARGS:-} ]] && cmd+=($MNNH_SRUN_ARGS)
  local bind=${MNNH_GPU_BIND:-auto}
  case $bind in
    auto) [[ -n ${SLURM_JOB_GPUS:-}${SLURM_GPUS_ON_NODE:-}${CUDA_VISIBLE_DEVICES:-} ]] \
            && cmd+=("$MNNH_JOBS_DIR/gpu-bind.sh") ;;
    none) ;;
    *) mnnh_die "MNNH_GPU_BIND=$bind: expected auto or none" ;;
  esac
  cmd+=("$MNNH_BIN" "$@")
  mnnh_log "running: ${cmd[*]}"

  trap '_mnnh_forward USR1' USR1
  trap '_mnnh_forward TERM' TERM
  # srun's own messages are copied to a file to tell a failed launch (the step
  # never ran; Slurm 22.05's srun may then even exit 0) from mnnh's exit status.
  # A launch fails transiently when a requeued job restarts before the node has
  # cleaned up the previous run's step (its PMIx socket): wait and try again.
  local rc attempt=0 errf
  errf=$(mktemp "${TMPDIR:-/tmp}/mnnh-srun.XXXXXX")
  while :; do
    : >"$errf"
    "${cmd[@]}" 2> >(tee -a "$errf" >&2) &
    _mnnh_step_pid=$!
    while :; do
      # `wait` returns early (status > 128) when a trapped signal arrives; the
      # trap has then forwarded it, and we wait again for the step to finish.
      rc=0
      wait "$_mnnh_step_pid" || rc=$?
      kill -0 "$_mnnh_step_pid" 2>/dev/null || break
    done
    sleep 0.2  # let tee copy srun's last lines
    if grep -Eq 'launch failed|aborted before step completely launched|Unable to create step' "$errf"; then
      attempt=$((attempt + 1))
      if [[ -n $_mnnh_signalled ]] || ((attempt > ${MNNH_LAUNCH_RETRIES:-3})); then
        mnnh_log "error: the job step could not be launched (srun status $rc, see srun's messages above)"
        rc=1
        break
      fi
      mnnh_log "the job step could not be launched (attempt $attempt, srun status $rc): retrying in 10 s"
      sleep 10
      continue
    fi
    break
  done
  rm -f "$errf"
  _mnnh_step_pid=
  trap - USR1 TERM
  mnnh_log "mnnh exited with status $rc${_mnnh_signalled:+ (after SIG$_mnnh_signalled)}"

  if [[ $rc -eq $MNNH_EXIT_SIGNAL ]]; then
    local restarts=${SLURM_RESTART_COUNT:-0}
    if [[ ${MNNH_REQUEUE:-1} != 1 ]]; then
      mnnh_log "stopped after a checkpoint; MNNH_REQUEUE=0, not requeueing: resubmit with MNNH_RESUME=auto"
    elif [[ -z ${SLURM_JOB_ID:-} ]]; then
      mnnh_log "stopped after a checkpoint outside Slurm: rerun with MNNH_RESUME=auto"
    elif ((restarts >= ${MNNH_MAX_RESTARTS:-20})); then
      mnnh_log "stopped after a checkpoint, but the job already restarted $restarts times (MNNH_MAX_RESTARTS): not requeueing"
    else
      mnnh_log "stopped after a checkpoint: requeueing job $SLURM_JOB_ID (restart $((restarts + 1))); it resumes with --resume auto"
      scontrol requeue "$SLURM_JOB_ID" || mnnh_log "scontrol requeue $SLURM_JOB_ID failed: resubmit with MNNH_RESUME=auto"
    fi
  fi
  return "$rc"
}

# mnnh_opt ARRAY FLAG VAR: append "FLAG value" to ARRAY when VAR is set
mnnh_opt() {
  local -n _arr=$1
  local flag=$2 var=$3
  [[ -n ${!var:-} ]] && _arr+=("$flag" "${!var}")
  return 0
}

# mnnh_resume_args ARRAY: --resume auto after a requeue, or $MNNH_RESUME
mnnh_resume_args() {
  local -n _ra=$1
  if [[ -n ${MNNH_RESUME:-} ]]; then
    _ra+=(--resume "$MNNH_RESUME")
  elif ((${SLURM_RESTART_COUNT:-0} > 0)); then
    mnnh_log "restart ${SLURM_RESTART_COUNT} of job ${SLURM_JOB_ID}: resuming from the newest valid checkpoint"
    _ra+=(--resume auto)
  fi
  return 0
}

# mnnh_scaling_run strong|weak [mnnh train options]: one point of a scaling study,
# at the task count of the allocation (used by scaling-strong.sbatch and
# scaling-weak.sbatch; benchmarks/scaling/submit.sh submits the series).
#   strong: the global batch MNNH_GLOBAL_BATCH (default 64) is split over the tasks
#   weak:   every task keeps MNNH_BATCH_PER_TASK samples (default 16), the global
#           batch grows with the task count
# `mnnh train --batch` takes the global batch (the sum of the per-rank batches).
# The run goes to $MNNH_OUT/<mode>-n<tasks>; its metrics.jsonl is what
# benchmarks/scaling/collect.py reads. Model defaults: the KS 2D configuration
# (L=4, m=4, r=10, K=6, cnn), 2 epochs.
mnnh_scaling_run() {
  local mode=$1; shift
  local P=${SLURM_NTASKS:-1} batch
  mnnh_job_init "scaling-$mode"
  mnnh_require MNNH_OUT "the study directory (one run directory per task count is made in it)"
  mnnh_require_file MNNH_TRAIN "the training set (HDF5)"
  mnnh_require_file MNNH_VALID "the validation set (HDF5)"
  case $mode in
    strong)
      batch=${MNNH_GLOBAL_BATCH:-64}
      ((batch % P == 0)) || mnnh_die "MNNH_GLOBAL_BATCH=$batch is not divisible by the $P tasks of a strong-scaling point"
      ;;
    weak) batch=$(( ${MNNH_BATCH_PER_TASK:-16} * P )) ;;
    *) mnnh_die "scaling mode '$mode': expected strong or weak" ;;
  esac
  local dir=$MNNH_OUT/$mode-n$P
  mkdir -p "$dir" || mnnh_die "cannot create $dir"
  local -a args=(train --train "$MNNH_TRAIN" --valid "$MNNH_VALID"
    --L "${MNNH_L:-4}" --m "${MNNH_M:-4}" --r "${MNNH_R:-10}" --K "${MNNH_K:-6}"
    --variant "${MNNH_VARIANT:-cnn}" --batch "$batch" --epochs "${MNNH_EPOCHS:-2}"
    --seed "${MNNH_SEED:-1}")
  mnnh_opt args --lr MNNH_LR
  mnnh_opt args --backend MNNH_BACKEND
  args+=(--out "$dir")
  mnnh_resume_args args
  # what the collector needs besides the metrics
  printf '{"mode": "%s", "tasks": %d, "nodes": %d, "global_batch": %d, "job": "%s", "gpus": "%s"}\n' \
    "$mode" "$P" "${SLURM_NNODES:-1}" "$batch" "${SLURM_JOB_ID:-}" "${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}" >"$dir/scaling.json"
  mnnh_run_step "${args[@]}" "$@"
}
