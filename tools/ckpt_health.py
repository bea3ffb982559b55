#!/usr/bin/python3
"""ckpt_health.py: how alive a training run's parameters are, read from the
NAdam state of its checkpoints (docs/results.md, "Dead ReLUs and NAdam's
epsilon").

For each part of the model (levels 2..L, the adjacent part) it prints:
  dead   the fraction of parameters whose sqrt(v) (the running RMS of their
         gradient, time constant 1/(1-beta2) = 1000 steps) is below 1e-12:
         no gradient reaches them, i.e. the ReLU channels they feed or read
         from are off for every sample;
  sqrt_v the median sqrt(v) of the live ones, against NAdam's epsilon: where
         it is below epsilon, epsilon and not the gradient sets the step.

The parameters are flat in the order of src/arch.c's table: per level
restrict (weight, bias), kernel1..K (weight, bias), interp (weight, bias);
then adjacent kernel1..K (weight, bias).

usage: tools/ckpt_health.py CKPT.h5 [CKPT.h5 ...] [--eps 1e-8] [--json]
"""
import argparse
import json
import sys

import h5py
import numpy as np


def parts(model, K):
    """[(part name, [tensor names in flat order])]"""
    levels = sorted(int(k[5:]) for k in model.keys() if k.startswith("level"))
    out = []
    for lv in levels:
        p = f"level{lv}"
        names = [f"{p}/restrict/weight", f"{p}/restrict/bias"]
        for k in range(1, K + 1):
            names += [f"{p}/kernel{k}/weight", f"{p}/kernel{k}/bias"]
        names += [f"{p}/interp/weight", f"{p}/interp/bias"]
        out.append((p, names))
    adj = []
    for k in range(1, K + 1):
        adj += [f"adjacent/kernel{k}/weight", f"adjacent/kernel{k}/bias"]
    out.append(("adjacent", adj))
    return out


def health(path, eps):
    with h5py.File(path, "r") as f:
        if "optimizer" not in f:
            sys.exit(f"ckpt_health.py: {path}: no /optimizer group (a model file, not a checkpoint?)")
        model = f["model"]
        K = int(model.attrs["K"])
        sv = np.sqrt(f["optimizer/v"][...].astype(np.float64))
        epoch = int(f["state"].attrs["epoch"])
        rows, off = [], 0
        for name, tensors in parts(model, K):
            n = sum(model[t].size for t in tensors)
            if off + n > sv.size:
                sys.exit(f"ckpt_health.py: {path}: /optimizer/v has {sv.size} values, the model more")
            part = sv[off:off + n]
            off += n
            live = part[part >= 1e-12]
            rows.append({"part": name, "params": int(n), "dead": float(np.mean(part < 1e-12)),
                         "sqrt_v_median": float(np.median(live)) if live.size else 0.0,
                         "below_eps": float(np.mean(live < eps)) if live.size else 0.0})
        if off != sv.size:
            sys.exit(f"ckpt_health.py: {path}: the model has {off} parameters, /optimizer/v {sv.size}")
    return epoch, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", nargs="+")
    ap.add_argument("--eps", type=float, default=1e-8, help="NAdam epsilon to compare sqrt(v) with")
    ap.add_argument("--json", action="store_true", help="one JSON line per checkpoint")
    a = ap.parse_args()
    for path in a.ckpt:
        epoch, rows = health(path, a.eps)
        if a.json:
            print(json.dumps({"ckpt": path, "epoch": epoch, "parts": rows}))
            continue
        print(f"{path} (epoch {epoch})")
        print(f"  {'part':9s} {'params':>6s} {'dead':>5s} {'median sqrt(v) of live':>23s} {'live below eps':>15s}")
        for r in rows:
            print(f"  {r['part']:9s} {r['params']:6d} {r['dead']:5.2f} {r['sqrt_v_median']:23.1e} "
                  f"{r['below_eps']:15.2f}")


if __name__ == "__main__":
    main()
