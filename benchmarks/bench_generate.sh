#!/bin/bash
# bench_generate.sh: `mnnh generate` throughput (KS 2D 64x64, KS 1D N=320) on 1
# and 2 ranks next to the dense LAPACKE baseline, as JSON lines on stdout.
#   usage: benchmarks/bench_generate.sh [BUILD_DIR] [S2D S1D DENSE2D DENSE1D]
# Set OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines (Debian's OpenBLAS 0.3.21
# does not recognise them and falls back to slow generic kernels).
set -euo pipefail
BUILD=${1:-build}
shift || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for np in 1 2; do
  mpirun -n "$np" --bind-to none "$BUILD/benchmarks/bench_generate" "$@"
done
