#!/usr/bin/python3
"""The analysis section's plots (scripts/report.py --plots), drawn from committed CSVs only:
streaming() from analysis_seeds.csv and analysis_streaming.csv (perplexity against the sinks kept;
what keeping them saves at each position), training() from analysis.csv (interventions
and mechanistic statistics at every analysed checkpoint, a line per variant, its runs' range as a
band). scripts/plot_analysis.py draws one run's analysis.h5 instead."""
import math
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import BIN  # noqa: E402  (its import puts python/ on the path)
from sinklab_log import read_sweep  # noqa: E402

# The analysis.csv columns drawn against the training step.
TRAINING = ("sink_attn_rescaled", "massive_zero", "first_remove", "stream_gain_W32", "diag_mass", "cosine_last")


def streaming(results, png):
    """Top: perplexity beyond the window against the sinks kept, per window size (analysis_seeds.csv).
    Bottom: NLL without sinks minus NLL with 4, against position (analysis_streaming.csv)."""
    seeds = read_sweep(os.path.join(results, "analysis_seeds.csv"))
    nll = defaultdict(lambda: defaultdict(list))  # (setting, variant) -> position -> [nll per run]
    for r in read_sweep(os.path.join(results, "analysis_streaming.csv")):
        nll[(r["setting"], r["variant"])][int(r["position"])].append(r["nll"])
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    for col, w in enumerate((32, 64)):
        ax = axes[0][col]
        for r in seeds:
            ks = [k for k in (0, 1, 4) if not math.isnan(r.get(f"ppl_W{w}_k{k}_mean", math.nan))]
            if not ks:
                continue
            mean = [r[f"ppl_W{w}_k{k}_mean"] for k in ks]
            std = [0.0 if math.isnan(r[f"ppl_W{w}_k{k}_std"]) else r[f"ppl_W{w}_k{k}_std"] for k in ks]
            ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=f"{r['variant']} ({r['runs']:.0f})")
        ax.set_xticks([0, 1, 4])
        ax.set_xlabel("sink tokens kept (k)")
        ax.set_ylabel(f"perplexity beyond W = {w}")
        ax.set_title(f"a KV cache of {w} tokens (each run's last checkpoint; bars: std over runs)", fontsize=9)
        ax = axes[1][col]
        variants = list(dict.fromkeys(v for (st, v) in nll if st == f"W{w}_k0"))
        for v in variants:
            a, b = nll[(f"W{w}_k0", v)], nll[(f"W{w}_k4", v)]
            pos = sorted(set(a) & set(b))
            ax.plot(pos, [sum(a[p]) / len(a[p]) - sum(b[p]) / len(b[p]) for p in pos], label=v)
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(w, color="grey", lw=0.6, ls=":")
        ax.set_xlabel(f"position in the stream (bins of {BIN})")
        ax.set_ylabel("NLL(k = 0) - NLL(k = 4), nats")
    axes[0][1].legend(fontsize=7)
    axes[1][1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def training(results, png):
    data = defaultdict(lambda: defaultdict(list))  # (column, variant) -> step -> [value per run]
    for r in read_sweep(os.path.join(results, "analysis.csv")):
        for c in TRAINING:
            data[(c, r["variant"])][int(r["step"])].append(r[c])
    variants = list(dict.fromkeys(v for _, v in data))
    fig, axes = plt.subplots(1, len(TRAINING), figsize=(3.4 * len(TRAINING), 3.0))
    for ax, c in zip(axes, TRAINING):
        for v in variants:
            steps = sorted(data[(c, v)])
            vals = [[x for x in data[(c, v)][s] if not math.isnan(x)] for s in steps]
            keep = [(s, x) for s, x in zip(steps, vals) if x]
            if not keep:
                continue
            line, = ax.plot([s for s, _ in keep], [sum(x) / len(x) for _, x in keep], marker=".", label=v)
            ax.fill_between([s for s, _ in keep], [min(x) for _, x in keep], [max(x) for _, x in keep],
                            color=line.get_color(), alpha=0.15)
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("training step")
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
