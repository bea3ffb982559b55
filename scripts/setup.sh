#!/usr/bin/env bash
# setup.sh: install mnnh's Debian dependencies (once) and build it.
#
# usage: scripts/setup.sh [BUILD_DIR]      (default: build)
# env:   MNNH_SKIP_APT=1       do not run apt-get (dependencies already there)
#        MNNH_CMAKE_ARGS="..." extra CMake arguments (e.g. -DMNNH_CUDA=OFF)
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}

DEBS=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libopenblas-dev
      liblapacke-dev libhdf5-openmpi-dev hdf5-tools libfftw3-dev libcmocka-dev
      libinih-dev librandom123-dev python3-matplotlib python3-h5py python3-numpy
      python3-torch slurmctld slurmd slurm-client munge)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "${MNNH_SKIP_APT:-0}" != 1 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's OpenBLAS 0.3.21 mistakes recent Intel AVX-512 CPUs for Prescott (SSE3); it
# detected an AMD Zen 4 correctly (session 10). See docs/performance.md.
if grep -q avx512f /proc/cpuinfo 2>/dev/null && grep -q GenuineIntel /proc/cpuinfo 2>/dev/null &&
   [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  echo "setup: note: export OPENBLAS_CORETYPE=SkylakeX for fast OpenBLAS on this AVX-512 CPU" >&2
fi

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MNNH_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/mnnh" >&2
