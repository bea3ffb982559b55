#!/usr/bin/python3
"""plot_density.py: a predicted density next to the reference and their difference (PNG).

usage: /usr/bin/python3 tools/plot_density.py --model CKPT --data DATA.h5 [--sample I]
           [--mnnh BUILD/mnnh] [--prediction PRED.h5] [-o OUT.png] [--title T]

Takes sample I (default 0) of DATA.h5 (/input = V, /output = rho, as written by
`mnnh generate`), predicts it with `mnnh predict --model CKPT` (normalisation and
density layer of the checkpoint included) on a one-sample copy of the dataset,
and draws
  1D: V (top); rho and rho_NN (middle); rho_NN - rho (bottom);
  2D: rho, rho_NN and rho_NN - rho as images (shared colour scale for the first two).
The title gives the sample's relative error ||rho_NN - rho|| / ||rho||, the
paper's figure of merit. With --prediction PRED.h5 (the output of a previous
`mnnh predict` over DATA.h5) the stored /prediction row I is used instead and
mnnh is not run. Needs h5py and matplotlib: run it with /usr/bin/python3.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def find_mnnh(given):
    if given:
        return given
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    for b in ("build-acc", "build", "build-train"):
        p = os.path.join(root, b, "mnnh")
        if os.access(p, os.X_OK):
            return p
    p = shutil.which("mnnh")
    if p:
        return p
    sys.exit("plot_density: cannot find the mnnh binary; pass --mnnh PATH")


def predict_one(mnnh, model, data, i):
    """Copy sample i of data into a temporary dataset, run mnnh predict, return the row."""
    tmp = tempfile.mkdtemp(prefix="plot_density.")
    try:
        one = os.path.join(tmp, "one.h5")
        pred = os.path.join(tmp, "pred.h5")
        with h5py.File(data, "r") as src, h5py.File(one, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for name in ("input", "output"):
                dst.create_dataset(name, data=src[name][i:i + 1])
        cmd = [mnnh, "predict", "--model", model, "--input", one, "--out", pred, "--backend", "cpu"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"plot_density: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
        with h5py.File(pred, "r") as f:
            return np.asarray(f["prediction"][0], dtype=np.float64)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint or model file (best.h5)")
    ap.add_argument("--data", required=True, help="dataset with /input and /output")
    ap.add_argument("--sample", type=int, default=0, help="sample index (default 0)")
    ap.add_argument("--mnnh", default=None, help="mnnh binary (default: build-acc/mnnh, build/mnnh, PATH)")
    ap.add_argument("--prediction", default=None, help="use /prediction of this mnnh predict output")
    ap.add_argument("-o", "--out", default=None, help="PNG (default: density-SAMPLE.png beside the model)")
    ap.add_argument("--title", default=None)
    a = ap.parse_args()

    for p in (a.model, a.data) + ((a.prediction,) if a.prediction else ()):
        if not os.path.exists(p):
            sys.exit(f"plot_density: {p}: no such file")
    with h5py.File(a.data, "r") as f:
        S = f["input"].shape[0]
        if not 0 <= a.sample < S:
            sys.exit(f"plot_density: --sample {a.sample} outside [0, {S}) of {a.data}")
        V = np.asarray(f["input"][a.sample], dtype=np.float64)
        rho = np.asarray(f["output"][a.sample], dtype=np.float64)
        attrs = dict(f.attrs)
    if a.prediction:
        with h5py.File(a.prediction, "r") as f:
            nn = np.asarray(f["prediction"][a.sample], dtype=np.float64)
    else:
        nn = predict_one(find_mnnh(a.mnnh), a.model, a.data, a.sample)
    if nn.shape != rho.shape:
        sys.exit(f"plot_density: prediction shape {nn.shape} != reference shape {rho.shape}")
    diff = nn - rho
    rel = np.linalg.norm(diff) / np.linalg.norm(rho)
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.model)), f"density-{a.sample}.png")
    preset = attrs.get("preset", b"")
    if isinstance(preset, bytes):
        preset = preset.decode()
    title = a.title or f"{os.path.basename(a.data)} sample {a.sample}"
    title += f"  (rel. error {rel:.2e})"

    if rho.ndim == 1:
        N = rho.shape[0]
        dom = attrs.get("domain")
        try:
            x0, x1 = float(dom[0]), float(dom[1])
        except Exception:  # noqa: BLE001 - domain attribute missing or in another form
            x0, x1 = 0.0, float(N)
        x = x0 + (x1 - x0) * np.arange(N) / N
        fig, ax = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True,
                               gridspec_kw={"height_ratios": [1, 2, 1.2]})
        ax[0].plot(x, V, color="0.3")
        ax[0].set_ylabel("V")
        ax[1].plot(x, rho, label="reference rho", lw=2.2, color="C0")
        ax[1].plot(x, nn, label="MNN-H rho_NN", lw=1.0, ls="--", color="C3")
        ax[1].set_ylabel("density")
        ax[1].legend(loc="upper right")
        ax[2].plot(x, diff, color="C2")
        ax[2].axhline(0, color="0.6", lw=0.5)
        ax[2].set_ylabel("rho_NN - rho")
        ax[2].set_xlabel("x")
        ax[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        fig.suptitle(title, fontsize=10)
    elif rho.ndim == 2:
        fig, ax = plt.subplots(1, 3, figsize=(13, 4))
        lo, hi = min(rho.min(), nn.min()), max(rho.max(), nn.max())
        for k, (img, name) in enumerate(((rho, "reference rho"), (nn, "MNN-H rho_NN"))):
            im = ax[k].imshow(img.T, origin="lower", vmin=lo, vmax=hi, cmap="viridis")
            ax[k].set_title(name)
            fig.colorbar(im, ax=ax[k], shrink=0.85)
        m = np.abs(diff).max() or 1.0
        im = ax[2].imshow(diff.T, origin="lower", vmin=-m, vmax=m, cmap="RdBu_r")
        ax[2].set_title("rho_NN - rho")
        fig.colorbar(im, ax=ax[2], shrink=0.85, format="%.1e")
        for axx in ax:
            axx.set_xlabel("i1")
            axx.set_ylabel("i2")
        fig.suptitle(title, fontsize=10)
    else:
        sys.exit(f"plot_density: sample of shape {rho.shape}: expected 1D or 2D")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot_density: {out} (sample {a.sample}, rel. error {rel:.3e})")


if __name__ == "__main__":
    main()
