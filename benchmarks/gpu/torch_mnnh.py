#!/usr/bin/env python3
"""MNN-H 2D (cnn variant) in PyTorch: the peer for bench_gpu's throughput.

Same network as mnnh's (DESIGN.md "The model"): per level l = 2..L a
restriction (conv s x s, stride s), K periodic kernel layers (ReLU) and an
interpolation (1x1 conv to s*s channels + pixel_shuffle, i.e. channel
k1*s+k2 -> u[i1*s+k1][i2*s+k2]); the adjacent part pixel_unshuffle(m), K
periodic 3x3 layers (last linear), pixel_shuffle(m). Float32, TF32 off,
relative-error loss, torch.optim.NAdam. Prints lines in bench_gpu's format:
  bench backend=pytorch-cuda mode=train batch=160 steps=... seconds=... samples_per_s=...
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class PeriodicConv(nn.Module):
    def __init__(self, cin, cout, nb, relu):
        super().__init__()
        self.nb, self.relu = nb, relu
        self.conv = nn.Conv2d(cin, cout, 2 * nb + 1)

    def forward(self, x):
        y = self.conv(F.pad(x, (self.nb,) * 4, mode="circular"))
        return F.relu(y) if self.relu else y


class MNNH2D(nn.Module):
    def __init__(self, L, m, r, K, nb_ad=1):
        super().__init__()
        self.N, self.L, self.m = (2 ** L) * m, L, m
        self.levels = nn.ModuleList()
        for l in range(2, L + 1):
            s = self.N >> l
            nb = 2 if l == 2 else 3
            self.levels.append(nn.ModuleDict({
                "restrict": nn.Conv2d(1, r, s, stride=s),
                "kernels": nn.Sequential(*[PeriodicConv(r, r, nb, True) for _ in range(K)]),
                "interp": nn.Conv2d(r, s * s, 1),
            }))
        mc = m * m
        self.adjacent = nn.Sequential(*[PeriodicConv(mc, mc, nb_ad, k < K - 1) for k in range(K)])

    def forward(self, v):  # v [B, N, N]
        v = v.unsqueeze(1)
        u = F.pixel_shuffle(self.adjacent(F.pixel_unshuffle(v, self.m)), self.m)
        for lv in self.levels:
            s = lv["restrict"].kernel_size[0]
            u = u + F.pixel_shuffle(lv["interp"](lv["kernels"](lv["restrict"](v))), s)
        return u.squeeze(1)


def relerr2(u, t):
    return ((u - t) ** 2).sum(dim=(1, 2)) / (t ** 2).sum(dim=(1, 2))


def timed(fn, seconds, sync):
    for _ in range(3):
        fn()
    sync()
    steps, t0 = 0, time.perf_counter()
    while True:
        fn()
        steps += 1
        if steps % 4 == 0 or steps < 4:
            sync()
            if time.perf_counter() - t0 >= seconds:
                break
    sync()
    return steps, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--L", type=int, default=4)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--r", type=int, default=10)
    ap.add_argument("--K", type=int, default=6)
    ap.add_argument("--train-batch", type=int, default=160)
    ap.add_argument("--infer-batch", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = MNNH2D(a.L, a.m, a.r, a.K).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"# backend=pytorch-{dev.type} device=\"{name}\" torch={torch.__version__} params={nparams}")
    N = model.N
    gen = torch.Generator(device="cpu").manual_seed(1)
    B = max(a.train_batch, a.infer_batch)
    v = torch.rand(B, N, N, generator=gen).to(dev)
    t = (0.1 + 0.9 * torch.rand(B, N, N, generator=gen)).to(dev)
    opt = torch.optim.NAdam(model.parameters(), lr=2e-3)
    vt, tt = v[: a.train_batch], t[: a.train_batch]
    last = {}

    def train_step():
        opt.zero_grad(set_to_none=False)
        loss = relerr2(model(vt), tt).mean()
        loss.backward()
        opt.step()
        last["loss"] = loss

    steps, el = timed(train_step, a.seconds, sync)
    print(f"bench backend=pytorch-{dev.type} mode=train batch={a.train_batch} steps={steps} "
          f"seconds={el:.3f} samples_per_s={steps * a.train_batch / el:.1f} loss={last['loss'].item():.4g}")
    vi = v[: a.infer_batch]

    def infer():
        with torch.no_grad():
            model(vi)

    steps, el = timed(infer, a.seconds, sync)
    print(f"bench backend=pytorch-{dev.type} mode=infer batch={a.infer_batch} steps={steps} "
          f"seconds={el:.3f} samples_per_s={steps * a.infer_batch / el:.1f}")


if __name__ == "__main__":
    main()
