#!/bin/bash
# bench_model.sh BENCH: the model benchmark runs, its JSON line holds the figures
# docs/performance.md quotes, and they are consistent with each other
# (kernel_roof_fraction = fastest kernel repetition / fastest SGEMM repetition,
# _mean = the means, a mean never above the fastest); a bad option is refused.
set -euo pipefail
BENCH=$1
out=$("$BENCH" --threads 1 --seconds 0.1 --config ks1d)
/usr/bin/python3 - "$out" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
for k in ("train_samples_per_s", "infer_samples_per_s", "kernel_gflops", "kernel_gflops_best",
          "sgemm_gflops", "sgemm_gflops_mean"):
    assert m[k] > 0, (k, m[k])
assert m["kernel_gflops"] <= m["kernel_gflops_best"] * 1.0001, m
assert m["sgemm_gflops_mean"] <= m["sgemm_gflops"] * 1.0001, m
def near(a, b): return abs(a - b) <= 0.002 + 0.01 * abs(b)
assert near(m["kernel_roof_fraction"], m["kernel_gflops_best"] / m["sgemm_gflops"]), m
assert near(m["kernel_roof_fraction_mean"], m["kernel_gflops"] / m["sgemm_gflops_mean"]), m
assert near(m["kernel_roof_fraction_mixed"], m["kernel_gflops"] / m["sgemm_gflops"]), m
print("bench_model JSON consistent:", m["kernel_roof_fraction"], m["kernel_roof_fraction_mean"])
PY
if "$BENCH" --no-such-option 2>/dev/null; then echo "FAIL: unknown option accepted" >&2; exit 1; fi
err=$("$BENCH" --config nope --seconds 0.01 --no-sgemm 2>&1 >/dev/null) && { echo "FAIL: bad config accepted" >&2; exit 1; }
grep -q "unknown --config 'nope'" <<<"$err" || { echo "FAIL: bad config not named: $err" >&2; exit 1; }
echo "bench_model.sh: OK"
