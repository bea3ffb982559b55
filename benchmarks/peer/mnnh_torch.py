"""mnnh_torch.py: the MNN-H model of mnnh (DESIGN.md, "The model") in PyTorch,
the peer that mnnh's CPU backend is measured against (benchmarks/peer/compare.py).

Same layers and parameter shapes as mnnh (so the parameter counts agree):
  restrict  cnn: Conv{1,2}d(1, r, s, stride s)            lc: weight [P][r][s^d]
  kernel    cnn: circular pad + Conv{1,2}d(r, r, w)        lc: weight [P][r][r][w^d]
  interp    cnn: Conv{1,2}d(r, s^d, 1) + block reshape     lc: weight [P][s^d][r]
  adjacent  block reshape to m^d channels, K kernel layers (w = 3, last linear)
ReLU after every kernel layer except the last adjacent one. Loss: mean over
the batch of ||u - u_NN||^2 / ||u||^2; optimizer torch.optim.NAdam; float32.

Run: /usr/bin/python3 mnnh_torch.py --config ks2d --threads 2  (one JSON line)
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "ks2d": dict(dim=2, L=4, m=4, r=10, K=6, variant="cnn"),
    "ks1d": dict(dim=1, L=6, m=5, r=6, K=6, variant="cnn"),
    "ks1d_lc": dict(dim=1, L=6, m=5, r=6, K=6, variant="lc"),
}


def nb_of(level):
    return 2 if level == 2 else 3


class PeriodicConv(nn.Module):
    """CK: periodic padding then a convolution (cnn)."""

    def __init__(self, dim, cin, cout, nb, relu):
        super().__init__()
        self.nb, self.relu, self.dim = nb, relu, dim
        w = 2 * nb + 1
        self.conv = (nn.Conv1d if dim == 1 else nn.Conv2d)(cin, cout, w)

    def forward(self, x):
        p = (self.nb,) * (2 * self.dim)
        y = self.conv(F.pad(x, p, mode="circular"))
        return F.relu(y) if self.relu else y


class LCKernel1d(nn.Module):
    """LCK (1D): weight [n][cout][cin][w], bias [n][cout], periodic."""

    def __init__(self, n, cin, cout, nb, relu):
        super().__init__()
        w = 2 * nb + 1
        self.nb, self.relu = nb, relu
        self.weight = nn.Parameter(torch.randn(n, cout, cin, w) * math.sqrt(2.0 / (cin * w)))
        self.bias = nn.Parameter(torch.zeros(n, cout))

    def forward(self, x):  # x [B][cin][n]
        xp = F.pad(x, (self.nb, self.nb), mode="circular")
        cols = xp.unfold(2, 2 * self.nb + 1, 1)  # [B][cin][n][w]
        y = torch.einsum("bcnw,nocw->bon", cols, self.weight) + self.bias.t()
        return F.relu(y) if self.relu else y


class Level(nn.Module):
    def __init__(self, dim, N, level, r, K, variant):
        super().__init__()
        self.dim, self.n, self.s, self.r = dim, 1 << level, N >> level, r
        self.lc = variant == "lc"
        n, s = self.n, self.s
        if self.lc:
            assert dim == 1, "the lc peer is 1D only"
            self.rw = nn.Parameter(torch.randn(n, r, s) / math.sqrt(s))
            self.rb = nn.Parameter(torch.zeros(n, r))
            self.kernels = nn.ModuleList(LCKernel1d(n, r, r, nb_of(level), True) for _ in range(K))
            self.iw = nn.Parameter(torch.randn(n, s, r) / math.sqrt(r))
            self.ib = nn.Parameter(torch.zeros(n, s))
        else:
            Conv = nn.Conv1d if dim == 1 else nn.Conv2d
            self.restrict = Conv(1, r, s, stride=s)
            self.kernels = nn.ModuleList(PeriodicConv(dim, r, r, nb_of(level), True) for _ in range(K))
            self.interp = Conv(r, s ** dim, 1)

    def forward(self, v):  # v [B][N] or [B][N][N]
        B, n, s = v.shape[0], self.n, self.s
        if self.lc:
            x = torch.einsum("bns,nrs->brn", v.view(B, n, s), self.rw) + self.rb.t()
            for k in self.kernels:
                x = k(x)
            y = torch.einsum("brn,nsr->bns", x, self.iw) + self.ib
            return y.reshape(B, n * s)
        x = self.restrict(v.unsqueeze(1))
        for k in self.kernels:
            x = k(x)
        y = self.interp(x)  # [B][s^d][n^d]
        if self.dim == 1:
            return y.transpose(1, 2).reshape(B, n * s)
        y = y.view(B, s, s, n, n).permute(0, 3, 1, 4, 2)  # [B][i1][k1][i2][k2]
        return y.reshape(B, n * s, n * s)


class Adjacent(nn.Module):
    def __init__(self, dim, L, m, K, variant, nb_ad=1):
        super().__init__()
        self.dim, self.nL, self.m = dim, 1 << L, m
        mc = m ** dim
        if variant == "lc":
            self.kernels = nn.ModuleList(LCKernel1d(self.nL, mc, mc, nb_ad, k < K - 1) for k in range(K))
        else:
            self.kernels = nn.ModuleList(PeriodicConv(dim, mc, mc, nb_ad, k < K - 1) for k in range(K))

    def forward(self, v):
        B, nL, m = v.shape[0], self.nL, self.m
        if self.dim == 1:
            x = v.view(B, nL, m).transpose(1, 2)
        else:
            x = v.view(B, nL, m, nL, m).permute(0, 2, 4, 1, 3).reshape(B, m * m, nL, nL)
        for k in self.kernels:
            x = k(x)
        if self.dim == 1:
            return x.transpose(1, 2).reshape(B, nL * m)
        return x.view(B, m, m, nL, nL).permute(0, 3, 1, 4, 2).reshape(B, nL * m, nL * m)


class MNNH(nn.Module):
    def __init__(self, dim, L, m, r, K, variant="cnn"):
        super().__init__()
        self.N = m << L
        self.levels = nn.ModuleList(Level(dim, self.N, l, r, K, variant) for l in range(2, L + 1))
        self.adjacent = Adjacent(dim, L, m, K, variant)

    def forward(self, v):
        u = self.adjacent(v)
        for lv in self.levels:
            u = u + lv(v)
        return u


def relerr_sq(pred, target):
    """||u - u_NN||^2 / ||u||^2 per sample."""
    B = pred.shape[0]
    d = (pred - target).reshape(B, -1)
    t = target.reshape(B, -1)
    return (d * d).sum(1) / (t * t).sum(1)


def relerr_loss(pred, target):
    return relerr_sq(pred, target).mean()


def bench(config, threads, seconds, batch=160, infer_batch=1000):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = CONFIGS[config]
    model = MNNH(c["dim"], c["L"], c["m"], c["r"], c["K"], c["variant"])
    N = model.N
    shape = (N,) if c["dim"] == 1 else (N, N)
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.NAdam(model.parameters(), lr=1e-4)
    v = torch.rand(batch, *shape) - 0.5
    u = torch.rand(batch, *shape) * 0.9 + 0.1
    vi = torch.rand(infer_batch, *shape) - 0.5

    def step():
        opt.zero_grad(set_to_none=False)
        loss = relerr_loss(model(v), u)
        loss.backward()
        opt.step()

    def timed(fn, B):
        fn()
        reps, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            reps += 1
            t = time.perf_counter()
            if t - t0 >= seconds and reps >= 3:
                break
        return reps * B / (t - t0), reps * B / (time.process_time() - c0)

    train, train_cpu = timed(step, batch)
    with torch.no_grad():
        infer, infer_cpu = timed(lambda: model(vi), infer_batch)
    return {
        "config": config, "framework": "torch", "torch_version": torch.__version__,
        "threads": threads, "batch": batch, "infer_batch": infer_batch, "params": nparams,
        "train_samples_per_s": round(train, 1), "infer_samples_per_s": round(infer, 1),
        "train_samples_per_cpu_s": round(train_cpu, 1), "infer_samples_per_cpu_s": round(infer_cpu, 1),
        "loadavg": round(os.getloadavg()[0], 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), action="append")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=160)
    ap.add_argument("--infer-batch", type=int, default=1000)
    a = ap.parse_args()
    for cfg in a.config or ["ks2d", "ks1d", "ks1d_lc"]:
        print(json.dumps(bench(cfg, a.threads, a.seconds, a.batch, a.infer_batch)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
