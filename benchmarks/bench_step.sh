#!/bin/bash
# bench_step.sh [BUILD_DIR] [bench_step options]: one training step of the
# KS 2D model (N=64, L=4, m=4, r=10, K=5, global batch 32 by default) at 1
# and 2 MPI ranks; a table on stderr, JSON lines on stdout.
set -euo pipefail
BUILD=${1:-build}; shift || true
BIN=$BUILD/benchmarks/bench_step
[[ -x $BIN ]] || { echo "bench_step.sh: $BIN not built (cmake --build $BUILD --target bench_step)" >&2; exit 2; }
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for np in 1 2; do
  ${MPIEXEC:-mpirun} -n "$np" --oversubscribe --bind-to none "$BIN" "$@"
done
