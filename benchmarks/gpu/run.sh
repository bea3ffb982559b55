#!/usr/bin/env bash
# benchmarks/gpu/run.sh: build the CUDA backend, run its tests and the KS 2D
# throughput benchmark on a machine with one GPU and the CUDA toolkit but none
# of mnnh's Debian libraries (no HDF5, OpenBLAS, FFTW, inih, MPI, cmocka,
# Random123, maybe no CMake).
#
# What is built (no CMake): only what the GPU backend, its test and the
# benchmark use: the MPI-free, I/O-free part of the core, the src/NAME.c named
# in benchmarks/gpu/core_sources.txt (gcc -fopenmp, -DMNNH_HAVE_CUDA=1), and
# src/cuda/cuda_backend.cu (nvcc, for the GPU's own architecture), linked
# with cudart and cuBLAS. HDF5/FFTW/LAPACKE/MPI/inih are not needed by these
# files. Two header-only or small pieces are:
#   Random123 (headers, used by rng.c)   - from the system, else the bundle
#   cmocka (header + libcmocka.so.0)     - from the system, else the bundle
# The bundle is made on a Debian build host (the CI image) by
#   benchmarks/gpu/run.sh pack [DIR]     (default DIR: <repo>/build-gpu-bundle)
# and carried to the GPU machine next to the tree (or named by
# MNNH_GPU_BUNDLE). Without cmocka the tests are reported NOT RUN and the
# benchmark still runs; without Random123 nothing can be built.
#
# Then:
#   1. test_cuda (every GPU op vs the CPU reference, GPU training step vs CPU,
#      bit-exact resume), log in $OUT_DIR/test_cuda.log;
#   2. bench_gpu --backends cuda,cpu on KS 2D (N=64, L=4, m=4, r=10, K=6, cnn),
#      training batch 160 (+NAdam) and inference batch 1000;
#   3. benchmarks/gpu/torch_mnnh.py on the same GPU when PyTorch with CUDA is
#      importable;
#   4. a summary: samples/s per backend, GPU vs CPU and GPU vs PyTorch.
#
# Usage: benchmarks/gpu/run.sh [run]            on the GPU machine
#        benchmarks/gpu/run.sh pack [DIR]       on a Debian build host
# Environment: CUDA_HOME (default /usr/local/cuda), MNNH_GPU_BUNDLE,
#   MNNH_CUDA_ARCH (e.g. 90; default: the GPU's compute capability, else 80;90),
#   BENCH_SECONDS (3), BUILD_DIR (default build-gpu), OUT (result directory,
#   default BUILD_DIR/out), BUILD_ONLY=1 (stop after the build: ctest's
#   gpu_script_build checks this way that the script still links),
#   SKIP_TESTS=1 (benchmark only), TEST_TIMEOUT (seconds for test_cuda, 900),
#   BENCH_ARGS (extra bench_gpu / torch_mnnh.py options, e.g.
#   "--train-batch 32 --infer-batch 100"),
#   SWEEP="1000:10000 ..." (more TRAIN:INFER batches, cuda and PyTorch, in
#   sweep.txt), MEMCHECK=1 (compute-sanitizer memcheck of test_cuda, in
#   memcheck.log; MEMCHECK_TIMEOUT seconds, 300), BASELINE_CU=FILE (also time
#   bench_gpu linked against another cuda_backend.cu, e.g. an older commit's,
#   on the same GPU in the same run: lines tagged backend=cuda-baseline),
#   PROFILE=1 (bench_gpu --op-times, then ncu per-kernel GPU time, in profile.txt;
#   PROFILE_BATCH 1000, PROFILE_LAUNCHES 3000, PROFILE_TIMEOUT 180).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:-run}

if [[ $mode == pack ]]; then
  dir=${2:-$root/build-gpu-bundle}
  mkdir -p "$dir/include" "$dir/lib"
  [[ -d /usr/include/Random123 ]] || { echo "pack: /usr/include/Random123 missing (apt install librandom123-dev)" >&2; exit 2; }
  cp -r /usr/include/Random123 "$dir/include/"
  if [[ -f /usr/include/cmocka.h ]]; then
    cp /usr/include/cmocka.h "$dir/include/"
    [[ -f /usr/include/cmocka_pbc.h ]] && cp /usr/include/cmocka_pbc.h "$dir/include/"
    lib=$(ls /usr/lib/*-linux-gnu/libcmocka.so.0 2>/dev/null | head -1)
    [[ -n $lib ]] && cp -L "$lib" "$dir/lib/libcmocka.so.0" && ln -sf libcmocka.so.0 "$dir/lib/libcmocka.so"
  else
    echo "pack: cmocka not installed: the bundle has no test framework" >&2
  fi
  echo "bundle in $dir:"; find "$dir" -maxdepth 2 | sort | sed 's/^/  /'
  exit 0
fi
[[ $mode == run ]] || { echo "usage: $0 [run] | pack [DIR]" >&2; exit 2; }

bld=${BUILD_DIR:-$root/build-gpu}
out=${OUT:-$bld/out}
mkdir -p "$out" "$bld"
log() { echo "[run.sh] $*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"

# ---- toolchain ----
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=$(command -v nvcc || echo "$CUDA_HOME/bin/nvcc")
[[ -x $NVCC ]] || { log "FATAL: nvcc not found (set CUDA_HOME)"; exit 1; }
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
CC=${CC:-gcc}
CXX=${CXX:-g++}
cudalib=""
for d in "$CUDA_HOME/lib64" "$CUDA_HOME/targets/x86_64-linux/lib" "$CUDA_HOME/lib"; do
  [[ -e $d/libcublas.so ]] && { cudalib=$d; break; }
done
[[ -n $cudalib ]] || { log "FATAL: libcublas.so not found under $CUDA_HOME"; exit 1; }
log "nvcc: $("$NVCC" --version | tail -1)"
log "gpu: $(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
log "host: $(nproc) CPUs, $CC $($CC -dumpversion)"

# ---- dependencies ----
bundle=${MNNH_GPU_BUNDLE:-$root/build-gpu-bundle}
inc=(-Iinclude)
libpath=()
if [[ -f /usr/include/Random123/philox.h ]]; then :
elif [[ -f $bundle/include/Random123/philox.h ]]; then inc+=(-I"$bundle/include")
else log "FATAL: Random123 headers missing: run 'benchmarks/gpu/run.sh pack' on a Debian host and carry build-gpu-bundle/"; exit 1; fi
have_cmocka=0
cmocka_inc=() cmocka_lib=()
if [[ -f /usr/include/cmocka.h ]] && ls /usr/lib/*/libcmocka.so* >/dev/null 2>&1; then
  have_cmocka=1; cmocka_lib=(-lcmocka)
elif [[ -f $bundle/include/cmocka.h && -f $bundle/lib/libcmocka.so.0 ]]; then
  have_cmocka=1; cmocka_inc=(-I"$bundle/include")
  cmocka_lib=(-L"$bundle/lib" -l:libcmocka.so.0 -Wl,-rpath,"$bundle/lib")
fi

# ---- architecture: the GPU's own, else the CI list ----
arch=${MNNH_CUDA_ARCH:-}
if [[ -z $arch ]]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  arch=${cc:-80;90}
fi
gencode=()
for a in ${arch//;/ }; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
log "building for sm_${arch//;/, sm_} into $bld"

# ---- build ----
cflags=(-std=gnu11 -O3 -g -fopenmp -DMNNH_HAVE_CUDA=1 -Wall -Wextra -Wno-unused-parameter)
# the MPI-free, I/O-free core files (src/NAME.c), one list for this script and
# src/cuda/emu/run_emulated_tests.sh; ctest gpu_script_build checks it links
core=$(cat "$root/benchmarks/gpu/core_sources.txt")
objs=()
set -e
# nvcc is the slow step: it runs beside the C compiles (device time is scarce).
"$NVCC" -std=c++17 -O3 -lineinfo "${gencode[@]}" -Xcompiler -Wall -Iinclude -c src/cuda/cuda_backend.cu -o "$bld/cuda_backend.o" &
nvcc_pid=$!
for f in $core; do
  $CC "${cflags[@]}" "${inc[@]}" -c "src/$f.c" -o "$bld/$f.o"
  objs+=("$bld/$f.o")
done
wait $nvcc_pid || { log "FATAL: nvcc failed on src/cuda/cuda_backend.cu"; exit 1; }
objs+=("$bld/cuda_backend.o")
ldlibs=(-L"$cudalib" -lcublas -lcudart -Wl,-rpath,"$cudalib" -fopenmp -lm -lstdc++)
$CC "${cflags[@]}" "${inc[@]}" -c benchmarks/gpu/bench_gpu.c -o "$bld/bench_gpu.o"
$CXX -o "$bld/bench_gpu" "$bld/bench_gpu.o" "${objs[@]}" "${ldlibs[@]}"
if [[ -n ${BASELINE_CU:-} ]]; then
  # the same benchmark linked against another cuda_backend.cu (an older one),
  # to time before and after on the same machine in the same run
  "$NVCC" -std=c++17 -O3 "${gencode[@]}" -Iinclude -Isrc/cuda -c "$BASELINE_CU" -o "$bld/cuda_backend_base.o"
  base_objs=("${objs[@]/%cuda_backend.o/cuda_backend_base.o}")
  $CXX -o "$bld/bench_gpu_base" "$bld/bench_gpu.o" "${base_objs[@]}" "${ldlibs[@]}"
fi
if [[ $have_cmocka == 1 ]]; then
  $CC "${cflags[@]}" "${inc[@]}" "${cmocka_inc[@]}" -c tests/test_cuda.c -o "$bld/test_cuda.o"
  $CXX -o "$bld/test_cuda" "$bld/test_cuda.o" "${objs[@]}" "${cmocka_lib[@]}" "${ldlibs[@]}"
fi
set +e
log "build ok"
[[ ${BUILD_ONLY:-0} == 1 ]] && exit 0

status=0
# ---- tests ----
if [[ ${SKIP_TESTS:-0} == 1 ]]; then
  log "tests: SKIPPED (SKIP_TESTS=1)"
elif [[ $have_cmocka == 0 ]]; then
  log "tests: NOT RUN: cmocka missing (no system cmocka, no bundle at $bundle)"; status=1
else
  timeout "${TEST_TIMEOUT:-900}" "$bld/test_cuda" > "$out/test_cuda.log" 2>&1
  rc=$?
  tail -n 40 "$out/test_cuda.log"
  case $rc in
    0) log "tests: PASSED ($(grep -c '^\[       OK \]' "$out/test_cuda.log") cmocka tests, log $out/test_cuda.log)";;
    77) log "tests: SKIPPED: no GPU visible to the test (see $out/test_cuda.log)"; status=1;;
    *) log "tests: FAILED (exit $rc, log $out/test_cuda.log)"; status=1;;
  esac
fi

# ---- benchmarks ----
secs=${BENCH_SECONDS:-3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export OMP_PROC_BIND=${OMP_PROC_BIND:-close}
"$bld/bench_gpu" --backends cuda,cpu --seconds "$secs" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench_mnnh.txt"
[[ ${PIPESTATUS[0]} == 0 ]] || { log "bench_gpu failed"; status=1; }
bench_base() { # TRAIN INFER: the baseline backend, its lines tagged cuda-baseline
  [[ -n ${BASELINE_CU:-} ]] || return 0
  "$bld/bench_gpu_base" --backends cuda --seconds "$secs" --train-batch "$1" --infer-batch "$2" 2>&1 |
    sed 's/backend=cuda /backend=cuda-baseline /'
}
bench_base 160 1000 | tee "$out/bench_base.txt"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  python3 benchmarks/gpu/torch_mnnh.py --seconds "$secs" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench_torch.txt"
else
  log "PyTorch with CUDA not importable: no PyTorch comparison"
  : > "$out/bench_torch.txt"
fi

# ---- summary ----
python3 - "$out/bench_mnnh.txt" "$out/bench_base.txt" "$out/bench_torch.txt" <<'EOF' 2>/dev/null | tee -a "$out/summary.txt" || awk '/^bench /' "$out"/bench_*.txt
import re, sys
r = {}
for f in sys.argv[1:]:
    for line in open(f):
        if line.startswith("bench "):
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            r[(kv["backend"], kv["mode"])] = (float(kv["samples_per_s"]), kv["batch"])
print("KS 2D (N=64, L=4, m=4, r=10, K=6, cnn), samples/s:")
for mode in ("train", "infer"):
    row = {b: v for (b, m), v in r.items() if m == mode}
    print("  %-6s " % mode + "  ".join("%s %.0f (batch %s)" % (b, v[0], v[1]) for b, v in sorted(row.items())))
    g = row.get("cuda", (None,))[0]
    for peer in ("cpu", "cuda-baseline", "pytorch-cuda"):
        if g and peer in row:
            print("         cuda / %s = %.2fx" % (peer, g / row[peer][0]))
EOF
# ---- optional: larger batches (SWEEP="TRAIN:INFER ..."), cuda and PyTorch ----
for pair in ${SWEEP:-}; do
  tb=${pair%%:*} ib=${pair##*:}
  "$bld/bench_gpu" --backends cuda --seconds "$secs" --train-batch "$tb" --infer-batch "$ib" 2>&1 | tee -a "$out/sweep.txt"
  bench_base "$tb" "$ib" | grep '^bench' | tee -a "$out/sweep.txt"
  python3 benchmarks/gpu/torch_mnnh.py --seconds "$secs" --train-batch "$tb" --infer-batch "$ib" 2>&1 | grep '^bench' | tee -a "$out/sweep.txt"
done

# ---- optional: compute-sanitizer memcheck over test_cuda (MEMCHECK=1) ----
if [[ ${MEMCHECK:-0} == 1 && $have_cmocka == 1 ]]; then
  cs=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
  if [[ -x $cs ]]; then
    timeout "${MEMCHECK_TIMEOUT:-300}" "$cs" --tool memcheck --error-exitcode 3 "$bld/test_cuda" > "$out/memcheck.log" 2>&1
    rc=$?
    log "memcheck: exit $rc ($(grep -c '^\[       OK \]' "$out/memcheck.log") tests OK; 124 = stopped by MEMCHECK_TIMEOUT, 3 = errors found); $(grep 'ERROR SUMMARY' "$out/memcheck.log" | tail -1)"
    [[ $rc == 0 || $rc == 124 ]] || status=1
  else
    log "memcheck: no compute-sanitizer on PATH or in $CUDA_HOME/bin"
  fi
fi
# ---- optional: per-op and per-kernel GPU time (PROFILE=1) ----
# bench_gpu --op-times times every backend op between two syncs; then ncu times the first PROFILE_LAUNCHES kernel launches of a cuda-only
# bench_gpu run (training at PROFILE_BATCH, then inference) and sums them per
# kernel name: where a step's GPU time goes. Clocks are left alone
# (--clock-control none), as the device notes ask.
if [[ ${PROFILE:-0} == 1 ]]; then
  pb=${PROFILE_BATCH:-1000}
  # first the op table timed between syncs (needs no profiler), then ncu
  "$bld/bench_gpu" --backends cuda --seconds "$secs" --train-batch "$pb" --infer-batch "$pb" \
    --op-times > "$out/profile.txt" 2>&1
  log "profile: op times exit $? (op lines in $out/profile.txt)"
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu "$CUDA_HOME"/bin/ncu 2>/dev/null | head -1)
  if [[ -n $ncu && -x $ncu ]]; then
    timeout "${PROFILE_TIMEOUT:-180}" "$ncu" --clock-control none --metrics gpu__time_duration.sum \
      --print-summary per-kernel -c "${PROFILE_LAUNCHES:-3000}" \
      "$bld/bench_gpu" --backends cuda --seconds 0.5 --train-batch "$pb" --infer-batch "$pb" \
      >> "$out/profile.txt" 2>&1
    log "profile: ncu exit $? (per-kernel gpu__time_duration in $out/profile.txt)"
  else
    log "profile: ncu not found"
  fi
fi

log "done (status $status); results in $out"
exit $status
