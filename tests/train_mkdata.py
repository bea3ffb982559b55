#!/usr/bin/python3
"""train_mkdata.py: tiny synthetic datasets for the training tests.

usage: train_mkdata.py OUT.h5 --dim D --N N --samples S [--seed X] [--nan SAMPLE]
                       [--no-output] [--dtype f4|f8] [--grid-out N2]

/input is a random negative potential-like field, /output a smooth positive
function of it (a periodic moving average of -input, plus 1), so a small
MNN-H can learn it. Root attributes as the generator writes them: equation,
dim, N, n_e, dx. --nan puts a NaN into /output[SAMPLE]."""
import argparse

import h5py
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--dim", type=int, default=1)
p.add_argument("--N", type=int, default=40)
p.add_argument("--samples", type=int, default=32)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--nan", type=int, default=-1)
p.add_argument("--no-output", action="store_true")
p.add_argument("--grid-out", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
shape = (a.samples,) + (a.N,) * a.dim
x = -rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
y = -x
for ax in range(1, a.dim + 1):
    y = (np.roll(y, 1, axis=ax) + y + np.roll(y, -1, axis=ax)) / 3.0
y = (y + 1.0).astype(np.float32)
if a.nan >= 0:
    y[(a.nan,) + (0,) * a.dim] = np.nan
with h5py.File(a.out, "w") as f:
    f["input"] = x
    if not a.no_output:
        if a.grid_out:
            f["output"] = np.ones((a.samples,) + (a.grid_out,) * a.dim, np.float32)
        else:
            f["output"] = y
    f.attrs["equation"] = "ks"
    f.attrs["dim"] = a.dim
    f.attrs["N"] = a.N
    f.attrs["n_e"] = 2
    f.attrs["dx"] = 2.0 / a.N
