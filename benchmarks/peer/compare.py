#!/usr/bin/python3
"""compare.py: mnnh's CPU backend against the same MNN-H model in PyTorch,
back to back on the same machine, same batch, float32, thread count, loss
and NAdam (see mnnh_torch.py). Prints one JSON line per configuration:

  config, threads, params (equal in both, checked), mnnh_train_sps,
  torch_train_sps, train_ratio, mnnh_infer_sps, torch_infer_sps, infer_ratio,
  roof_fraction (mnnh kernel-layer GFLOP/s / SGEMM GFLOP/s of the same run,
  each its fastest repetition of at least 50 ms; roof_fraction_mean: the
  means; roof_fraction_mixed: the mean kernel over the fastest SGEMM, the
  figure sessions 1-6 reported),
  and the same ratios per CPU-second (cpu_train_ratio, cpu_infer_ratio),
  which stay meaningful when other jobs load the machine, plus the load.

Usage (run with Debian's python, which has python3-torch):
  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 benchmarks/peer/compare.py \
      --bench build-perf/benchmarks/bench_model --threads 2 --seconds 3
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnnh_torch  # noqa: E402


def run_mnnh(bench, config, threads, seconds, sgemm):
    cmd = [bench, "--backend", "cpu", "--threads", str(threads), "--seconds", str(seconds),
           "--config", config]
    if not sgemm:
        cmd.append("--no-sgemm")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    sys.stderr.write(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description="mnnh vs PyTorch, one JSON line per configuration")
    ap.add_argument("--bench", default="build-perf/benchmarks/bench_model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--config", action="append", choices=sorted(mnnh_torch.CONFIGS))
    a = ap.parse_args()
    ok = True
    for cfg in a.config or ["ks2d", "ks1d", "ks1d_lc"]:
        m = run_mnnh(a.bench, cfg, a.threads, a.seconds, True)
        t = mnnh_torch.bench(cfg, a.threads, a.seconds, m["batch"], m["infer_batch"])
        same = m["params"] == t["params"]
        ok = ok and same
        rec = {
            "config": cfg, "threads": a.threads, "batch": m["batch"], "infer_batch": m["infer_batch"],
            "params": m["params"], "torch_params": t["params"], "params_equal": same,
            "mnnh_train_sps": m["train_samples_per_s"], "torch_train_sps": t["train_samples_per_s"],
            "train_ratio": round(m["train_samples_per_s"] / t["train_samples_per_s"], 2),
            "mnnh_infer_sps": m["infer_samples_per_s"], "torch_infer_sps": t["infer_samples_per_s"],
            "infer_ratio": round(m["infer_samples_per_s"] / t["infer_samples_per_s"], 2),
            "roof_fraction": m["kernel_roof_fraction"],
            "roof_fraction_mean": m["kernel_roof_fraction_mean"],
            "roof_fraction_mixed": m["kernel_roof_fraction_mixed"],
            "mnnh_kernel_gflops_best": m["kernel_gflops_best"], "sgemm_gflops": m["sgemm_gflops"],
            "mnnh_kernel_gflops": m["kernel_gflops"], "sgemm_gflops_mean": m["sgemm_gflops_mean"],
            "mnnh_train_gflops": m["train_gflops"], "mnnh_infer_gflops": m["infer_gflops"],
            "cpu_train_ratio": round(m["train_samples_per_cpu_s"] / t["train_samples_per_cpu_s"], 2),
            "cpu_infer_ratio": round(m["infer_samples_per_cpu_s"] / t["infer_samples_per_cpu_s"], 2),
            "openblas_core": m["openblas_core"], "torch_version": t["torch_version"],
            "loadavg_mnnh": m["loadavg"], "loadavg_torch": t["loadavg"],
        }
        print(json.dumps(rec), flush=True)
    if not ok:
        print("compare.py: parameter counts differ between mnnh and PyTorch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
