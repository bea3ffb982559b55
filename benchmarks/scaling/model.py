#!/usr/bin/python3
"""model.py: performance model of data-parallel MNN-H training (docs/scaling.md).

usage: benchmarks/scaling/model.py [--t-sample S] [--t0 S] [--measured strong.csv]
                                   [--png out.png] [--table]

One training step on P workers with a global batch B (per-worker batch b = B/P):

    T_step(P) = t0 + b * t_sample + T_allreduce(P, n)         (no overlap assumed)

t_sample is the compute time of one sample (forward + backward) on one worker,
t0 the per-step fixed cost (kernel launches, optimizer update, host sync), n the
gradient size in bytes. T_allreduce is an alpha-beta model of NCCL's hierarchical
allreduce with g GPUs per node and M = P/g nodes:

    intra-node ring over NVLink (reduce-scatter + all-gather):
        2 (g-1) alpha_nvl + 2 (g-1)/g * n / beta_nvl
    inter-node, one rail per GPU carrying n/g bytes, the better of
        ring: 2 (M-1) alpha_ib + 2 (M-1)/M * (n/g) / beta_ib
        tree: 2 log2(M) alpha_ib + 2 (n/g) / beta_ib

Strong scaling keeps B fixed: speedup S(P) = T(1)/T(P), efficiency S/P.
Weak scaling keeps b fixed: efficiency T(1)/T(P), scaled speedup P * efficiency.
The allreduce overhead stays under a fraction f (5%) of the step once
    b >= ((1-f)/f * T_allreduce(P) - t0) / t_sample.

Every parameter is printed with the table; the network figures are published link
rates derated to what NCCL's bus bandwidth reaches on them (docs/scaling.md).
Run with --table for the markdown tables of docs/scaling.md, --png for the plot.
"""
import argparse
import csv
import math
import sys

# ---- the KS 2D configuration (DESIGN.md, issue 6) ----
KS2D = dict(dim=2, N=64, L=4, m=4, r=10, K=6, variant="cnn")


def nb(l):
    return 2 if l == 2 else 3


def param_count(dim, N, L, m, r, K, variant="cnn", nb_ad=1):
    """Parameters (biases included) of an MNN-H model, layouts of DESIGN.md."""
    if variant != "cnn":
        raise ValueError("only the cnn variant is modelled here")
    total = 0
    for l in range(2, L + 1):
        s = N // 2 ** l
        sd = s ** dim
        w = (2 * nb(l) + 1) ** dim
        total += r * sd + r                 # restrict
        total += K * (r * r * w + r)        # kernel layers
        total += sd * r + sd                # interp
    c = m ** dim                            # adjacent: m^d channels, w = 3 per axis
    w = (2 * nb_ad + 1) ** dim
    total += K * (c * c * w + c)
    return total


def forward_flops(dim, N, L, m, r, K, variant="cnn", nb_ad=1):
    """Multiply-adds x 2 of one sample's forward pass."""
    f = 0
    for l in range(2, L + 1):
        n = 2 ** l
        pos = n ** dim
        w = (2 * nb(l) + 1) ** dim
        f += 2 * r * N ** dim               # restrict (n^d positions x r x s^d)
        f += 2 * K * pos * r * r * w        # kernel layers
        f += 2 * r * N ** dim               # interp
    c = m ** dim
    pos = (2 ** L) ** dim
    f += 2 * K * pos * c * c * (2 * nb_ad + 1) ** dim
    return f


# ---- networks: (alpha [s], beta [bytes/s]) per link class ----
NETWORKS = {
    # NVLink 4 (H100 SXM, NVSwitch): 450 GB/s per direction per GPU; NCCL reaches
    # ~370 GB/s bus bandwidth; ~2 us per ring step (LL protocol).
    "nvlink4": dict(alpha=2e-6, beta=370e9, label="NVLink 4 (H100)"),
    # NVLink 3 (A100 SXM): 300 GB/s per direction, ~230 GB/s NCCL bus bandwidth.
    "nvlink3": dict(alpha=2.5e-6, beta=230e9, label="NVLink 3 (A100)"),
    # InfiniBand HDR 200 Gb/s = 25 GB/s per NIC, ~23 GB/s achieved; ~5 us per
    # step (1 us switch + NIC, the rest NCCL proxy and protocol).
    "ib_hdr": dict(alpha=5e-6, beta=23e9, label="InfiniBand HDR 200 Gb/s"),
    # InfiniBand NDR 400 Gb/s = 50 GB/s per NIC, ~46 GB/s achieved; ~4 us per step.
    "ib_ndr": dict(alpha=4e-6, beta=46e9, label="InfiniBand NDR 400 Gb/s"),
}

# cluster = GPUs per node, intra-node link, inter-node link (one NIC per GPU)
CLUSTERS = {
    "a100-hdr": dict(g=4, intra="nvlink3", inter="ib_hdr", label="4x A100/node, NVLink 3, IB HDR"),
    "h100-ndr": dict(g=8, intra="nvlink4", inter="ib_ndr", label="8x H100/node, NVLink 4, IB NDR"),
}

# Compute per sample on one GPU: an ESTIMATE until the CUDA backend's benchmark
# measures it (issue 9): training = 3 x forward flops, at 8 TFLOP/s sustained
# float32 (about 15% of an H100's 60 TFLOP/s non-tensor peak: these are skinny
# convolutions); t0 = 0.3 ms of launches and optimizer per step.
GPU_TFLOPS_SUSTAINED = 8e12
GPU_T0 = 3e-4


def t_allreduce(P, n, cluster):
    if P <= 1:
        return 0.0
    c = CLUSTERS[cluster]
    g = min(c["g"], P)
    a1, b1 = NETWORKS[c["intra"]]["alpha"], NETWORKS[c["intra"]]["beta"]
    t = 2 * (g - 1) * a1 + 2 * (g - 1) / g * n / b1 if g > 1 else 0.0
    M = math.ceil(P / c["g"])
    if M > 1:
        a2, b2 = NETWORKS[c["inter"]]["alpha"], NETWORKS[c["inter"]]["beta"]
        chunk = n / g
        ring = 2 * (M - 1) * a2 + 2 * (M - 1) / M * chunk / b2
        tree = 2 * math.log2(M) * a2 + 2 * chunk / b2
        t += min(ring, tree)
    return t


def t_step(P, b, t_sample, t0, n, cluster):
    return t0 + b * t_sample + t_allreduce(P, n, cluster)


def batch_for_overhead(P, t_sample, t0, n, cluster, frac=0.05):
    """Smallest per-worker batch with allreduce <= frac of the step."""
    ta = t_allreduce(P, n, cluster)
    return max(1, math.ceil(((1 - frac) / frac * ta - t0) / t_sample))


def gpu_counts():
    return [2 ** k for k in range(11)]  # 1..1024


def tables(t_sample, t0, n, strong_batches, weak_batch):
    out = []
    out.append("| P | " + " | ".join("T_ar %s [us]" % k for k in CLUSTERS) + " |")
    out.append("|---:|" + "---:|" * len(CLUSTERS))
    for P in gpu_counts():
        out.append("| %d | " % P + " | ".join("%.1f" % (1e6 * t_allreduce(P, n, k)) for k in CLUSTERS) + " |")
    for k, c in CLUSTERS.items():
        out.append("")
        out.append("**%s** (%s)" % (k, c["label"]))
        out.append("")
        hdr = "| P | " + " | ".join("strong B=%d: speedup / eff." % B for B in strong_batches) + \
              " | weak b=%d: eff. | b for allreduce < 5%% |" % weak_batch
        out.append(hdr)
        out.append("|---:|" + "---:|" * (len(strong_batches) + 2))
        for P in gpu_counts():
            cells = []
            for B in strong_batches:
                T1 = t_step(1, B, t_sample, t0, n, k)
                TP = t_step(P, B / P, t_sample, t0, n, k)
                cells.append("%.1f / %.0f%%" % (T1 / TP, 100 * T1 / TP / P))
            w1 = t_step(1, weak_batch, t_sample, t0, n, k)
            wP = t_step(P, weak_batch, t_sample, t0, n, k)
            bmin = batch_for_overhead(P, t_sample, t0, n, k) if P > 1 else 0
            out.append("| %d | %s | %.0f%% | %s |" % (P, " | ".join(cells), 100 * w1 / wP,
                                                    "-" if P == 1 else str(bmin)))
    return "\n".join(out)


def read_measured(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append(r)
    return rows


def plot(png, t_sample, t0, n, strong_batches, weak_batch, measured):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    Ps = gpu_counts()
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.8))
    styles = {"a100-hdr": "--", "h100-ndr": "-"}
    for k in CLUSTERS:
        for B in strong_batches:
            S = [t_step(1, B, t_sample, t0, n, k) / t_step(P, B / P, t_sample, t0, n, k) for P in Ps]
            ax[0].plot(Ps, S, styles[k], marker=".", label="%s, B=%d" % (k, B))
        E = [t_step(1, weak_batch, t_sample, t0, n, k) / t_step(P, weak_batch, t_sample, t0, n, k) for P in Ps]
        ax[1].plot(Ps, E, styles[k], marker=".", label="%s, b=%d" % (k, weak_batch))
        bmin = [batch_for_overhead(P, t_sample, t0, n, k) for P in Ps[1:]]
        ax[2].plot(Ps[1:], bmin, styles[k], marker=".", label=k)
    ax[0].plot(Ps, Ps, "k:", label="ideal")
    ax[0].set(xscale="log", yscale="log", xlabel="GPUs", ylabel="speedup",
              title="strong scaling (model, KS 2D)")
    ax[1].axhline(1.0, color="k", ls=":", label="ideal")
    ax[1].set(xscale="log", ylim=(0, 1.05), xlabel="GPUs", ylabel="efficiency",
              title="weak scaling (model, KS 2D)")
    ax[2].set(xscale="log", yscale="log", xlabel="GPUs", ylabel="per-GPU batch",
              title="batch for allreduce < 5% of a step")
    for mode, rows in measured.items():
        P = [int(r["tasks"]) for r in rows]
        if mode == "strong":
            ax[0].plot(P, [float(r["speedup"]) for r in rows], "rs", ms=8,
                       label="measured here (local Slurm, 2 shared CPU cores, N=16 test model)")
        else:
            ax[1].plot(P, [float(r["efficiency"]) for r in rows], "rs", ms=8,
                       label="measured here (local Slurm, 2 shared CPU cores, N=16 test model)")
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle("MNN-H KS 2D (N=64, L=4, m=4, r=10, K=6, cnn): %d parameters, %.0f KB gradient; "
                 "t_sample=%.2g s, t0=%.2g s" % (n // 4, n / 1e3, t_sample, t0), fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print("wrote %s" % png)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p = param_count(**KS2D)
    fl = 3 * forward_flops(**KS2D)
    ap.add_argument("--t-sample", type=float, default=fl / GPU_TFLOPS_SUSTAINED,
                    help="compute seconds per training sample per GPU (default: estimate "
                         "3 x forward flops at %.0f TFLOP/s)" % (GPU_TFLOPS_SUSTAINED / 1e12))
    ap.add_argument("--t0", type=float, default=GPU_T0, help="fixed seconds per step (default %(default)s)")
    ap.add_argument("--strong-batch", type=int, nargs="+", default=[1024, 16384],
                    help="global batches of the strong-scaling curves")
    ap.add_argument("--weak-batch", type=int, default=64, help="per-GPU batch of the weak-scaling curve")
    ap.add_argument("--measured-strong", help="CSV of benchmarks/scaling/collect.py (strong) to plot beside")
    ap.add_argument("--measured-weak", help="CSV of benchmarks/scaling/collect.py (weak) to plot beside")
    ap.add_argument("--png", help="write the projection plot here")
    ap.add_argument("--table", action="store_true", help="print the markdown tables")
    a = ap.parse_args(argv)
    n = 4 * p
    print("KS 2D model: %d parameters (%.0f KB float32 gradient), %.1f MFLOP forward, "
          "%.1f MFLOP per training sample" % (p, n / 1e3, fl / 3e6, fl / 1e6))
    print("t_sample = %.3g s, t0 = %.3g s" % (a.t_sample, a.t0))
    for k, v in NETWORKS.items():
        print("network %-8s alpha %.1f us, beta %.0f GB/s  (%s)" % (k, v["alpha"] * 1e6, v["beta"] / 1e9, v["label"]))
    if a.table:
        print(tables(a.t_sample, a.t0, n, a.strong_batch, a.weak_batch))
    if a.png:
        measured = {}
        if a.measured_strong:
            measured["strong"] = read_measured(a.measured_strong)
        if a.measured_weak:
            measured["weak"] = read_measured(a.measured_weak)
        plot(a.png, a.t_sample, a.t0, n, a.strong_batch, a.weak_batch, measured)
    return 0


if __name__ == "__main__":
    # self-check against the paper's parameter counts (DESIGN.md)
    assert param_count(2, 80, 4, 5, 6, 5) == 57323, param_count(2, 80, 4, 5, 6, 5)
    assert param_count(2, 80, 4, 5, 10, 5) == 100955
    assert param_count(1, 320, 6, 5, 6, 5) == 8535, param_count(1, 320, 6, 5, 6, 5)
    sys.exit(main())
