#!/usr/bin/python3
"""plot.py: speedup and efficiency of a scaling study against ideal (PNG).

usage: benchmarks/scaling/plot.py STUDY.csv [MORE.csv ...] --png OUT.png [--title T]

Reads CSVs of benchmarks/scaling/collect.py (strong or weak, one or several
studies) and draws three panels: speedup vs tasks (with the ideal line),
parallel efficiency vs tasks (ideal = 1), and the per-step time split into
compute and allreduce when the metrics have them (else the step time alone).
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402


def num(x):
    return float(x) if x not in (None, "") else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--png", required=True)
    ap.add_argument("--title", default="mnnh scaling")
    a = ap.parse_args(argv)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    pmax = 1
    for path in a.csv:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise SystemExit("plot.py: %s has no rows" % path)
        mode = rows[0]["mode"]
        label = "%s (%s, global batch %s..%s)" % (os.path.basename(path), mode,
                                                  rows[0]["global_batch"], rows[-1]["global_batch"])
        P = [int(r["tasks"]) for r in rows]
        pmax = max(pmax, max(P))
        ax[0].plot(P, [num(r["speedup"]) for r in rows], "o-", label=label)
        ax[1].plot(P, [num(r["efficiency"]) for r in rows], "o-", label=label)
        comp = [num(r.get("compute_s")) for r in rows]
        ared = [num(r.get("allreduce_s")) for r in rows]
        step = [num(r["step_s"]) for r in rows]
        x = range(len(P))
        if all(v is not None for v in comp + ared):
            ax[2].bar(x, comp, label="compute (%s)" % mode)
            ax[2].bar(x, ared, bottom=comp, label="allreduce (%s)" % mode)
            ax[2].plot(x, step, "k_", ms=20, label="step")
        else:
            ax[2].bar(x, step, label="step (%s; no compute/allreduce split in the metrics)" % mode)
        ax[2].set_xticks(list(x), [str(p) for p in P])
    ideal = [1, pmax]
    ax[0].plot(ideal, ideal, "k:", label="ideal")
    ax[0].set(xscale="log", yscale="log", xlabel="tasks", ylabel="speedup", title="speedup")
    ax[1].axhline(1.0, color="k", ls=":", label="ideal")
    ax[1].set(xscale="log", ylim=(0, 1.1), xlabel="tasks", ylabel="efficiency", title="parallel efficiency")
    ax[2].set(xlabel="tasks", ylabel="seconds per step", title="time per step")
    for x_ in ax:
        x_.grid(True, which="both", alpha=0.3)
        x_.legend(fontsize=7)
    ticks = [2 ** k for k in range(0, pmax.bit_length())]
    for x_ in ax[:2]:
        x_.set_xticks(ticks, [str(t) for t in ticks])
        x_.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax[0].set_yticks(ticks, [str(t) for t in ticks])
    ax[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print("wrote %s" % a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
