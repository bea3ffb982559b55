#!/usr/bin/env bash
# test.sh: set up (scripts/setup.sh), then run every test: the unit tests,
# MPI tests at 1, 2 and 4 ranks, end-to-end and Slurm tests (ctest), and a
# second build of the unit tests under AddressSanitizer + UBSan.
#
# usage: scripts/test.sh            (what CI runs, see .ci/run)
# env:   MNNH_SKIP_SANITIZE=1  skip the sanitizer build
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader

"$top/scripts/setup.sh" "$top/build"
ctest --test-dir "$top/build" --output-on-failure --timeout 600

if [ "${MNNH_SKIP_SANITIZE:-0}" != 1 ]; then
  # The sanitizer build covers the MPI-free core's unit tests (label "unit");
  # CUDA is off there: nvcc objects are not instrumented anyway.
  cmake -S "$top" -B "$top/build-asan" -DMNNH_SANITIZE=ON -DMNNH_CUDA=OFF \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$top/build-asan" -j"$(nproc)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$top/build-asan" -L unit --output-on-failure --timeout 600
fi
echo "test: all tests passed" >&2
