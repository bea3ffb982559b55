#!/usr/bin/env bash
# bench_gpu --op-times on the cpu backend (every machine has it): the op lines
# appear for both modes, the kernel layers are among them, and the shares of a
# mode add up to 1. Timings themselves are never asserted.
set -euo pipefail
bench=$1
out=$("$bench" --backends cpu --seconds 0.2 --train-batch 8 --infer-batch 8 --op-times)
echo "$out"
grep -q '^bench backend=cpu mode=train ' <<<"$out"
grep -q '^op backend=cpu mode=train op=kernel_bwd calls_per_step=24.0 ' <<<"$out"
grep -q '^op backend=cpu mode=infer op=kernel_fwd ' <<<"$out"
for mode in train infer; do
  grep "^op backend=cpu mode=$mode op=[a-z]" <<<"$out" | sed 's/.*share=//' |
    awk -v m="$mode" '{ s += $1 } END { if (s < 0.99 || s > 1.01) { print m ": shares add up to " s; exit 1 } }'
done
echo "bench_gpu --op-times: ok"
