#!/usr/bin/python3
"""plot.py: cost of MNN-H against N (issue 7, "How cost grows").

Reads the JSON lines of `bench_model --scaling` (time per training / inference
sample and parameter count for 1D N = 320..20480 and 2D N = 64..512) and plots
them against N log N, where N is the number of grid points of a sample (N^d in
2D), with a reference line of slope 1.

  /usr/bin/python3 benchmarks/cost_scaling/plot.py scaling.jsonl cost_scaling.png
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/cost_scaling/scaling.jsonl"
    dst = sys.argv[2] if len(sys.argv) > 2 else "benchmarks/cost_scaling/cost_scaling.png"
    rows = [json.loads(l) for l in open(src) if l.startswith("{")]
    rows = [r for r in rows if r.get("config") == "scaling"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for dim, mk in ((1, "o"), (2, "s")):
        rs = sorted((r for r in rows if r["dim"] == dim), key=lambda r: r["grid"])
        if not rs:
            continue
        x = [r["NlogN"] for r in rs]
        key_t = "train_cpu_s_per_sample" if "train_cpu_s_per_sample" in rs[0] else "train_s_per_sample"
        key_i = "infer_cpu_s_per_sample" if "infer_cpu_s_per_sample" in rs[0] else "infer_s_per_sample"
        ax1.loglog(x, [r[key_t] for r in rs], mk + "-", label=f"{dim}D training step")
        ax1.loglog(x, [r[key_i] for r in rs], mk + "--", label=f"{dim}D inference")
        ref = [rs[0][key_t] * xi / x[0] for xi in x]
        ax1.loglog(x, ref, ":", color="gray", label=f"{dim}D slope 1 (from the first point)")
        ax2.loglog(x, [r["params"] for r in rs], mk + "-", label=f"{dim}D parameters")
        for r in rs:
            ax2.annotate(f"N={r['N']}", (r["NlogN"], r["params"]), fontsize=7,
                         textcoords="offset points", xytext=(3, -9))
    thr = rows[0]["threads"] if rows else "?"
    ax1.set_xlabel("N log2 N  (N = grid points per sample)")
    ax1.set_ylabel("CPU seconds per sample")
    ax1.set_title(f"mnnh cpu backend, {thr} thread(s), cnn, K=6 (1D r=6 m=5, 2D r=10 m=4)")
    ax1.legend(fontsize=7)
    ax1.grid(True, which="both", alpha=0.3)
    ax2.set_xlabel("N log2 N")
    ax2.set_ylabel("parameters")
    ax2.set_title("parameter count")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=120)
    print(dst)


if __name__ == "__main__":
    main()
