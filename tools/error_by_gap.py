#!/usr/bin/python3
"""error_by_gap.py: where a model's error lies, by the spectral gap of the
samples (docs/results.md, "Where the 1D error lies").

The KS map rho(V) changes fastest where the gap eps_{n_e+1} - eps_{n_e} of the
sample is small (near a crossing, the occupied state switches), so a smooth
network errs most there. This splits the samples of a dataset into gap
quantile bins and prints the mean and median relative error in each bin,
with the share of the total error the smallest-gap tenth carries.

Inputs: the dataset (/gap, docs/formats.md) and the per-sample errors that
`mnnh validate --model CKPT --data FILE --out ERR.h5` writes (/rel_err).

usage: tools/error_by_gap.py DATA.h5 ERR.h5 [--bins 0,0.1,0.25,0.5,0.75,1] [--json]
"""
import argparse
import json
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("errors")
    ap.add_argument("--bins", default="0,0.1,0.25,0.5,0.75,1",
                    help="gap quantiles bounding the bins (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="one JSON line per bin")
    a = ap.parse_args()
    try:
        with h5py.File(a.data, "r") as f:
            gap = f["gap"][:]
        with h5py.File(a.errors, "r") as f:
            err = f["rel_err"][:]
    except (OSError, KeyError) as e:
        sys.exit(f"error_by_gap.py: {e}")
    if gap.shape != err.shape:
        sys.exit(f"error_by_gap.py: {a.data} has {gap.size} samples, {a.errors} {err.size}")
    q = [float(x) for x in a.bins.split(",")]
    order = np.argsort(gap, kind="stable")
    n = gap.size
    rows = []
    for lo, hi in zip(q[:-1], q[1:]):
        idx = order[int(round(lo * n)):int(round(hi * n))]
        if idx.size == 0:
            continue
        rows.append({"quantiles": [lo, hi], "samples": int(idx.size),
                     "gap_min": float(gap[idx].min()), "gap_max": float(gap[idx].max()),
                     "mean_rel_err": float(err[idx].mean()),
                     "median_rel_err": float(np.median(err[idx]))})
    tenth = order[: max(1, n // 10)]
    share = float(err[tenth].sum() / err.sum())
    if a.json:
        for r in rows:
            print(json.dumps(r))
        print(json.dumps({"samples": n, "mean_rel_err": float(err.mean()),
                          "smallest_gap_tenth_share": share}))
        return
    print(f"{'gap quantiles':>14} {'gap range':>21} {'mean err':>9} {'median':>9}")
    for r in rows:
        print(f"{r['quantiles'][0]:6.2f}-{r['quantiles'][1]:<6.2f} "
              f"{r['gap_min']:9.3g}-{r['gap_max']:<9.3g} "
              f"{r['mean_rel_err']:9.3e} {r['median_rel_err']:9.3e}")
    print(f"all {n}: mean {err.mean():.3e}; the smallest-gap tenth carries {share:.0%} of the error")


if __name__ == "__main__":
    main()
