#!/bin/sh
# Time per sample and parameter count against N (1D N = 320..20480, 2D N = 64..512),
# then the plot. Usage: benchmarks/cost_scaling/run.sh [build dir] [threads]
set -e
here=$(dirname "$0")
build=${1:-build-perf}
threads=${2:-1}
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} "$build/benchmarks/bench_model" --scaling \
    --threads "$threads" --seconds 1 > "$here/scaling.jsonl"
/usr/bin/python3 "$here/plot.py" "$here/scaling.jsonl" "$here/cost_scaling.png"
