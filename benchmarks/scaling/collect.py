#!/usr/bin/python3
"""collect.py: gather the runs of a scaling study into one CSV.

usage: benchmarks/scaling/collect.py STUDY_DIR [--mode strong|weak] [--csv OUT.csv]

STUDY_DIR holds one directory per point, <mode>-n<tasks>/, written by
jobs/scaling-<mode>.sbatch: scaling.json (mode, tasks, nodes, global batch) and
mnnh train's metrics.jsonl (one JSON record per epoch). Per point, over the epochs
after the first (warm-up; all epochs when there is only one), the medians of:

  samples_per_s   training samples per second (whole job)
  step_s          seconds per optimizer step
  compute_s       seconds of forward + backward per step (slowest rank)
  allreduce_s     seconds of the gradient allreduce per step
  io_s            seconds of data loading per step (when logged)

and, relative to the smallest point P0 (normally 1 task):
  strong: speedup = step_s(P0) / step_s(P) * ... i.e. the samples/s ratio
          (the global batch is fixed), efficiency = speedup * P0 / P
  weak:   efficiency = step_s(P0) / step_s(P) (the per-task batch is fixed),
          speedup = efficiency * P / P0 (scaled speedup, = the samples/s ratio)

The metric names are read as mnnh train writes them (docs/cli.md); a few aliases
are accepted. A value the metrics lack is left empty and named in a warning.
"""
import argparse
import csv
import glob
import json
import os
import statistics
import sys

ALIASES = {
    "samples_per_s": ["samples_per_s", "samples_per_sec", "samples_s", "throughput"],
    "step_s": ["step_s", "step_time_s", "time_per_step_s", "seconds_per_step"],
    "compute_s": ["compute_s", "step_compute_s", "compute_per_step_s", "time_compute_s"],
    "allreduce_s": ["allreduce_s", "step_allreduce_s", "allreduce_per_step_s", "time_allreduce_s", "comm_s"],
    "io_s": ["io_s", "step_io_s", "io_per_step_s", "time_io_s", "data_s"],
    "seconds": ["seconds", "epoch_s", "epoch_seconds", "time_s", "elapsed_s"],
    "steps": ["steps", "steps_in_epoch", "epoch_steps"],
}
NESTED = ("timing", "times", "timings", "perf")


def lookup(rec, key):
    """The value of metric `key` in a record (top level, or one nested dict)."""
    for src in [rec] + [rec[n] for n in NESTED if isinstance(rec.get(n), dict)]:
        for k in ALIASES[key]:
            v = src.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
    return None


def median_of(recs, key):
    vals = [v for v in (lookup(r, key) for r in recs) if v is not None]
    return statistics.median(vals) if vals else None


def read_point(d):
    with open(os.path.join(d, "scaling.json")) as f:
        info = json.load(f)
    mpath = os.path.join(d, "metrics.jsonl")
    if not os.path.exists(mpath):
        raise SystemExit("collect.py: %s has no metrics.jsonl (did the job fail? see %s.out)" % (d, d))
    recs = []
    with open(mpath) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if "epoch" in r:
                    recs.append(r)
    if not recs:
        raise SystemExit("collect.py: %s has no per-epoch records" % mpath)
    # a resumed run logs an epoch again: keep the last record of each epoch
    by_epoch = {}
    for r in recs:
        by_epoch[r["epoch"]] = r
    recs = [by_epoch[e] for e in sorted(by_epoch)]
    use = recs[1:] if len(recs) > 1 else recs
    row = dict(mode=info["mode"], tasks=int(info["tasks"]), nodes=int(info.get("nodes", 1)),
               global_batch=int(info["global_batch"]), epochs=len(recs))
    row["batch_per_task"] = row["global_batch"] // row["tasks"]
    for key in ("samples_per_s", "step_s", "compute_s", "allreduce_s", "io_s"):
        row[key] = median_of(use, key)
    if row["step_s"] is None:
        secs, steps = median_of(use, "seconds"), median_of(use, "steps")
        if secs is not None and steps:
            row["step_s"] = secs / steps
        elif row["samples_per_s"]:
            row["step_s"] = row["global_batch"] / row["samples_per_s"]
    if row["samples_per_s"] is None and row["step_s"]:
        row["samples_per_s"] = row["global_batch"] / row["step_s"]
    row["allreduce_fraction"] = (row["allreduce_s"] / row["step_s"]
                                 if row["allreduce_s"] is not None and row["step_s"] else None)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study")
    ap.add_argument("--mode", choices=["strong", "weak"])
    ap.add_argument("--csv", help="output CSV (default STUDY/<mode>.csv)")
    a = ap.parse_args(argv)
    dirs = sorted(glob.glob(os.path.join(a.study, "%s-n*" % (a.mode or "*"))))
    dirs = [d for d in dirs if os.path.isdir(d) and os.path.exists(os.path.join(d, "scaling.json"))]
    if not dirs:
        raise SystemExit("collect.py: no scaling points (<mode>-n<tasks>/scaling.json) in %s" % a.study)
    rows = sorted((read_point(d) for d in dirs), key=lambda r: r["tasks"])
    modes = {r["mode"] for r in rows}
    if len(modes) != 1:
        raise SystemExit("collect.py: mixed modes %s in %s: pass --mode" % (sorted(modes), a.study))
    mode = modes.pop()
    base = rows[0]
    for r in rows:
        ratio = r["tasks"] / base["tasks"]
        if mode == "strong":
            r["speedup"] = r["samples_per_s"] / base["samples_per_s"]
            r["efficiency"] = r["speedup"] / ratio
        else:
            r["efficiency"] = base["step_s"] / r["step_s"]
            r["speedup"] = r["efficiency"] * ratio
        r["ideal_speedup"] = ratio
    missing = [k for k in ("compute_s", "allreduce_s") if all(r[k] is None for r in rows)]
    if missing:
        print("collect.py: warning: the metrics carry no per-step %s (mnnh train does not log them); "
              "those columns are empty" % " / ".join(missing), file=sys.stderr)
    cols = ["mode", "tasks", "nodes", "global_batch", "batch_per_task", "epochs", "samples_per_s",
            "step_s", "compute_s", "allreduce_s", "io_s", "allreduce_fraction", "speedup",
            "efficiency", "ideal_speedup"]
    out = a.csv or os.path.join(a.study, "%s.csv" % mode)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else
                            ("%.6g" % r[k] if isinstance(r[k], float) else r[k])) for k in cols})
    print("wrote %s:" % out)
    with open(out) as f:
        sys.stdout.write(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
