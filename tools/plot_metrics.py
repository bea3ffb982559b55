#!/usr/bin/python3
"""plot_metrics.py: turn a training run's metrics.jsonl into a PNG.

usage: /usr/bin/python3 tools/plot_metrics.py RUN_DIR_OR_METRICS.jsonl [-o OUT.png] [--title T]

Left: the training loss (mean squared relative error) per epoch. Right: the
mean relative error ||u - u_NN|| / ||u|| on the training set (running mean over
the epoch) and on the validation set (at the epochs it was computed), the
paper's figure of merit. Log scales. Default output: metrics.png next to the
metrics file. Needs matplotlib (Debian: python3-matplotlib); the pyenv python3
on PATH may lack it, hence /usr/bin/python3."""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{n}: not a JSON line ({e})")
    if not recs:
        sys.exit(f"plot_metrics: {path}: no records")
    return recs


def series(recs, key):
    xs, ys = [], []
    for r in recs:
        v = r.get(key)
        if v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
            xs.append(r["epoch"])
            ys.append(v)
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("metrics", help="run directory or metrics.jsonl")
    ap.add_argument("-o", "--out", help="PNG to write (default: metrics.png beside the metrics)")
    ap.add_argument("--title", default=None)
    a = ap.parse_args()
    path = os.path.join(a.metrics, "metrics.jsonl") if os.path.isdir(a.metrics) else a.metrics
    if not os.path.exists(path):
        sys.exit(f"plot_metrics: {path}: no such file")
    recs = load(path)
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(path)), "metrics.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.semilogy(*series(recs, "train_loss"), "-", color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("mean squared relative error")
    ax1.set_title("training loss")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend()
    ax2.semilogy(*series(recs, "train_rel_err"), "-", color="tab:blue", label="train")
    vx, vy = series(recs, "valid_rel_err")
    ax2.semilogy(vx, vy, "o-", color="tab:orange", ms=3, label="validation")
    if vy:
        i = min(range(len(vy)), key=vy.__getitem__)
        ax2.annotate(f"best {vy[i]:.3g} (epoch {vx[i]})", (vx[i], vy[i]), textcoords="offset points",
                     xytext=(-10, 12), ha="right", fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("mean ||u - u_NN|| / ||u||")
    ax2.set_title("relative error")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    last = recs[-1]
    sub = (f"{last.get('ranks', '?')} rank(s), global batch {last.get('global_batch', '?')}, "
           f"{last.get('samples_per_s', 0):.0f} samples/s, step {last.get('step')}")
    fig.suptitle((a.title + " - " if a.title else "") + sub, fontsize=10)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
