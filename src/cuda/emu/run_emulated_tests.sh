#!/usr/bin/env bash
# Build test_cuda against a host emulation of the CUDA backend (cuda_emu.h) and
# run it: checks the kernels' index arithmetic and op semantics on a machine
# without a GPU. Needs gcc/g++, cmocka and Random123 (the Debian build deps).
# Usage: src/cuda/emu/run_emulated_tests.sh [BUILD_DIR]   (default build-cuda-emu)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-$root/build-cuda-emu}
mkdir -p "$out"
cd "$root"
core=$(cat "$root/benchmarks/gpu/core_sources.txt") # the list benchmarks/gpu/run.sh builds
flags="-O2 -g -fopenmp -ffp-contract=off -DMNNH_HAVE_CUDA=1 -Iinclude -Wall -Wextra -Wno-unused-parameter"
objs=()
for f in $core; do
  gcc -std=gnu11 $flags -c src/$f.c -o "$out/$f.o"
  objs+=("$out/$f.o")
done
g++ -std=c++17 -x c++ $flags -DMNNH_CUDA_EMULATE -Isrc/cuda -c src/cuda/cuda_backend.cu -o "$out/cuda_backend_emu.o"
gcc -std=gnu11 $flags -c tests/test_cuda.c -o "$out/test_cuda.o" $(pkg-config --cflags cmocka 2>/dev/null || true)
g++ -fopenmp -o "$out/test_cuda_emu" "$out/test_cuda.o" "$out/cuda_backend_emu.o" "${objs[@]}" \
  $(pkg-config --libs cmocka 2>/dev/null || echo -lcmocka) -lm
echo "running $out/test_cuda_emu (host emulation of the CUDA kernels)"
"$out/test_cuda_emu"
