#!/usr/bin/python3
"""train_torch.py: mnnh's model and training, a second implementation in PyTorch.

It checks mnnh's numbers on the Kohn-Sham maps (docs/results.md, "Session 6:
the data decide; a second implementation agrees").

Two modes, both on mnnh's own files (datasets of `mnnh generate`, model files
of `mnnh init` / `mnnh train`, docs/formats*.md):

  check   load an mnnh model file into the PyTorch model of mnnh_torch.py
          (weights, normalisation, density layer) and print the mean relative
          error over a dataset: it must equal `mnnh validate` of the same file
          (an independent forward, to float32 rounding).
  train   train the PyTorch model with mnnh's recipe: the normalisation of
          docs/training.md (input x / (2 mean) - 0.5, output minus its mean,
          training-set scalars), the density layer (clip at 0, rescale to
          n_e), loss = mean over the batch of ||rho - rho_NN||^2 / ||rho||^2,
          NAdam as mnnh and torch >= 2.0 do it (class NAdam below: Debian's
          torch 1.13 multiplies mu twice into mu_product_next, pytorch PR
          92699, which changes the first ten or so steps), lr multiplied by
          gamma every lr_step epochs, a reshuffle every epoch. The initial
          weights come from an mnnh model file (--init-from, e.g. `mnnh init
          --init glorot`), so both codes start from the same point. One JSON
          line per validation on stdout (epoch, train_rel_err, valid_rel_err,
          lr, seconds); the last line is the best validation error.

Usage:
  /usr/bin/python3 benchmarks/peer/train_torch.py check --model best.h5 --data test.h5
  mnnh init --dim 1 --L 6 --m 5 --r 6 --K 6 --init glorot --seed 1 --out init.h5
  /usr/bin/python3 benchmarks/peer/train_torch.py train --init-from init.h5
      --train train.h5 --valid test.h5 --batch 80 --epochs 100 --lr 5e-3
      --lr-step 10 --adam-eps 1e-12 --density --threads 1
"""
import argparse
import json
import os
import sys
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnnh_torch  # noqa: E402


def die(msg):
    sys.stderr.write("train_torch.py: " + msg + "\n")
    sys.exit(2)


def attr(group, name, default=None):
    if name not in group.attrs:
        if default is None:
            die("%s: attribute '%s' missing" % (group.file.filename, name))
        return default
    v = group.attrs[name]
    return v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v


def tensor_of(f, path, shape):
    if path not in f:
        die("%s: dataset '%s' missing" % (f.filename, path))
    a = np.asarray(f[path], dtype=np.float32)
    if a.size != int(np.prod(shape)):
        die("%s: dataset '%s' has shape %s, the model wants %s" % (f.filename, path, a.shape, tuple(shape)))
    return torch.from_numpy(a.reshape(shape).copy())


def load_model(path):
    """The PyTorch model and the normalisation of an mnnh model file."""
    with h5py.File(path, "r") as f:
        if "model" not in f:
            die("%s: no /model group (not an mnnh model file)" % path)
        g = f["model"]
        dim, L, m, r, K = (int(attr(g, k)) for k in ("dim", "L", "m", "r", "K"))
        variant = attr(g, "variant")
        nb_ad = int(attr(g, "nb_ad", 1))
        if nb_ad != 1:
            die("%s: nb_ad %d (the PyTorch model has nb_ad = 1)" % (path, nb_ad))
        peer_nb = [mnnh_torch.nb_of(l) for l in range(2, L + 1)]
        nb = [int(x) for x in np.atleast_1d(g.attrs.get("nb", peer_nb))]
        if nb != peer_nb:
            die("%s: kernel half-widths nb %s (the PyTorch model has 2 at level 2, 3 above)" % (path, nb))
        if variant == "lc" and dim != 1:
            die("%s: the PyTorch lc model is 1D only" % path)
        net = mnnh_torch.MNNH(dim, L, m, r, K, variant)
        load_weights(f, net, L, m, r, variant)
        norm = {k: float(attr(g, k, d)) for k, d in
                (("input_scale", 1.0), ("input_shift", 0.0), ("output_shift", 0.0),
                 ("density_ne", 0.0), ("cell_volume", 1.0))}
    return net, norm


def kernel_params(layer):
    """(weight, bias) of a kernel layer: LCKernel1d holds them, PeriodicConv's conv does."""
    return (layer.weight, layer.bias) if isinstance(layer, mnnh_torch.LCKernel1d) else \
        (layer.conv.weight, layer.conv.bias)


def load_kernels(f, prefix, kernels):
    for k, layer in enumerate(kernels, 1):
        for t, name in zip(kernel_params(layer), ("weight", "bias")):
            t.copy_(tensor_of(f, prefix + "kernel%d/%s" % (k, name), t.shape))


def load_weights(f, net, L, m, r, variant):
    """Copy /model/* into net (shapes of docs/formats-model.md)."""
    N = m << L
    with torch.no_grad():
        for lv, level in zip(net.levels, range(2, L + 1)):
            n, s = 1 << level, N >> level
            p = "model/level%d/" % level
            if variant == "lc":
                lv.rw.copy_(tensor_of(f, p + "restrict/weight", (n, r, s)))
                lv.rb.copy_(tensor_of(f, p + "restrict/bias", (n, r)))
                lv.iw.copy_(tensor_of(f, p + "interp/weight", (n, s, r)))
                lv.ib.copy_(tensor_of(f, p + "interp/bias", (n, s)))
            else:
                for name, part in (("restrict", lv.restrict), ("interp", lv.interp)):
                    part.weight.copy_(tensor_of(f, p + name + "/weight", part.weight.shape))
                    part.bias.copy_(tensor_of(f, p + name + "/bias", part.bias.shape))
            load_kernels(f, p, lv.kernels)
        load_kernels(f, "model/adjacent/", net.adjacent.kernels)


def load_data(path, N, dim):
    with h5py.File(path, "r") as f:
        for k in ("input", "output"):
            if k not in f:
                die("%s: dataset '/%s' missing" % (path, k))
        x = np.asarray(f["input"], dtype=np.float32)
        y = np.asarray(f["output"], dtype=np.float32)
        attrs = {k: attr(f["/"], k, 0) for k in ("n_e", "cell_volume")}
    shape = (N,) if dim == 1 else (N, N)
    if x.shape[1:] != shape or y.shape != x.shape:
        die("%s: /input %s and /output %s, the model wants [S]%s" % (path, x.shape, y.shape, shape))
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        die("%s: NaN or Inf in the data" % path)
    return torch.from_numpy(x), torch.from_numpy(y), attrs


def predict(net, norm, v):
    """u = D(net(v * input_scale + input_shift) + output_shift) (docs/formats-model.md)."""
    u = net(v * norm["input_scale"] + norm["input_shift"]) + norm["output_shift"]
    if norm["density_ne"] > 0:
        a = torch.relu(u)
        s = a.reshape(a.shape[0], -1).sum(1).clamp_min(1e-30)
        k = norm["density_ne"] / norm["cell_volume"]
        u = a * (k / s).view(-1, *([1] * (a.dim() - 1)))
    return u


def rel_errs(pred, target):
    """The relative errors that `mnnh validate` reports, summed in double."""
    return mnnh_torch.relerr_sq(pred.double(), target.double()).sqrt()


def evaluate(net, norm, x, y, batch=1000):
    errs = []
    with torch.no_grad():
        for b0 in range(0, x.shape[0], batch):
            errs.append(rel_errs(predict(net, norm, x[b0:b0 + batch]), y[b0:b0 + batch]))
    return torch.cat(errs)


def cmd_check(a):
    net, norm = load_model(a.model)
    x, y, _ = load_data(a.data, net.N, net.adjacent.dim)
    e = evaluate(net, norm, x, y)
    print(json.dumps({"model": a.model, "data": a.data, "samples": int(e.numel()),
                      "mean_rel_err": float(e.mean()), "median_rel_err": float(e.median()),
                      "max_rel_err": float(e.max())}))
    return 0


def normalisation(x, y, attrs, density):
    """The training-set scalars of docs/training.md (sums in double)."""
    norm = {"input_scale": float(1.0 / (2.0 * x.double().mean())), "input_shift": -0.5,
            "output_shift": float(y.double().mean()), "density_ne": 0.0, "cell_volume": 1.0}
    if density:
        if not attrs["n_e"] or not attrs["cell_volume"]:
            die("--density: the training set has no n_e / cell_volume attributes")
        norm["density_ne"], norm["cell_volume"] = float(attrs["n_e"]), float(attrs["cell_volume"])
    # the model computes in float32: round the scalars as mnnh stores them
    return {k: float(np.float32(v)) for k, v in norm.items()}


class NAdam:
    """torch.optim.NAdam of torch >= 2.0 (= src/nadam.c): the schedule in
    double, the element update in float32. torch 1.13's own NAdam computes
    mu_product_next = mu_product * mu * mu_next after mu_product *= mu, one
    mu too many (fixed by pytorch PR 92699)."""

    def __init__(self, params, lr, eps, beta1=0.9, beta2=0.999, momentum_decay=4e-3):
        self.params = list(params)
        self.lr, self.eps, self.beta1, self.beta2, self.decay = lr, eps, beta1, beta2, momentum_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t, self.mu_product = 0, 1.0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.t += 1
        t, b1, b2 = self.t, self.beta1, self.beta2
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * self.decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.decay))
        self.mu_product *= mu
        bias2 = 1.0 - b2 ** t
        c_grad = self.lr * (1.0 - mu) / (1.0 - self.mu_product)
        c_mom = self.lr * mu_next / (1.0 - self.mu_product * mu_next)
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / bias2).sqrt_().add_(self.eps)
            p.addcdiv_(g, denom, value=-c_grad)
            p.addcdiv_(m, denom, value=-c_mom)


def cmd_train(a):
    for name in ("epochs", "lr_step", "valid_every", "threads"):
        if getattr(a, name) < 1:
            die("--%s %s: must be at least 1" % (name.replace("_", "-"), getattr(a, name)))
    for name in ("lr", "lr_gamma", "adam_eps"):
        if not getattr(a, name) > 0:
            die("--%s %s: must be positive" % (name.replace("_", "-"), getattr(a, name)))
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    net, _ = load_model(a.init_from)
    dim = net.adjacent.dim
    x, y, attrs = load_data(a.train, net.N, dim)
    vx, vy, _ = load_data(a.valid, net.N, dim)
    if a.batch <= 0 or x.shape[0] < a.batch:
        die("--batch %d: must be in 1..%d (the training samples)" % (a.batch, x.shape[0]))
    norm = normalisation(x, y, attrs, a.density)
    opt = NAdam(net.parameters(), lr=a.lr, eps=a.adam_eps)
    steps = x.shape[0] // a.batch  # full batches, as mnnh (a partial last batch is dropped)
    best, t0 = float("inf"), time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        lr = opt.lr = a.lr * a.lr_gamma ** ((epoch - 1) // a.lr_step)
        perm = torch.randperm(x.shape[0])
        sum_err = 0.0
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            opt.zero_grad()
            e2 = mnnh_torch.relerr_sq(predict(net, norm, x[idx]), y[idx])
            loss = e2.mean()
            loss.backward()
            opt.step()
            sum_err += float(e2.detach().sqrt().sum())
        if epoch % a.valid_every == 0 or epoch == a.epochs:
            ve = float(evaluate(net, norm, vx, vy).mean())
            best = min(best, ve)
            print(json.dumps({"epoch": epoch, "train_rel_err": sum_err / (steps * a.batch),
                              "valid_rel_err": ve, "best_valid_rel_err": best, "lr": lr,
                              "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    print(json.dumps({"final": True, "best_valid_rel_err": best, "epochs": a.epochs,
                      "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return 0



def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="evaluate an mnnh model file in PyTorch")
    c.add_argument("--model", required=True, help="mnnh model file or checkpoint")
    c.add_argument("--data", required=True, help="dataset (HDF5 /input, /output)")
    t = sub.add_parser("train", help="train the PyTorch model with mnnh's recipe")
    t.add_argument("--init-from", required=True, help="mnnh model file of the initial weights")
    t.add_argument("--train", required=True, help="training set (HDF5 /input, /output)")
    t.add_argument("--valid", required=True, help="validation set")
    t.add_argument("--batch", type=int, default=80, help="batch (default 80)")
    t.add_argument("--epochs", type=int, default=100, help="epochs (default 100)")
    t.add_argument("--lr", type=float, default=5e-3, help="NAdam learning rate (default 5e-3)")
    t.add_argument("--lr-step", type=int, default=10, help="multiply the lr by gamma every E epochs (default 10)")
    t.add_argument("--lr-gamma", type=float, default=0.5, help="(default 0.5)")
    t.add_argument("--adam-eps", type=float, default=1e-8, help="NAdam epsilon (default 1e-8)")
    t.add_argument("--seed", type=int, default=1, help="seed of the shuffles (default 1)")
    t.add_argument("--valid-every", type=int, default=10, help="validate every E epochs and after the last (default 10)")
    t.add_argument("--density", action="store_true", help="density layer (clip at 0, rescale to n_e)")
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    a = ap.parse_args()
    for path in [getattr(a, k) for k in ("model", "data", "init_from", "train", "valid") if hasattr(a, k)]:
        if not os.path.isfile(path):
            die("%s: no such file" % path)
    return cmd_check(a) if a.cmd == "check" else cmd_train(a)


if __name__ == "__main__":
    sys.exit(main())
