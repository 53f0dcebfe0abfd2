#!/usr/bin/python3
"""Plots of attention sinks from sinklab runs (Debian's /usr/bin/python3: h5py, matplotlib).

  /usr/bin/python3 scripts/plot_sinks.py runs/A [runs/B ...] [--eps-index 0] [--steps 100,1000] [--out DIR]
                                         [--sinklab build/sinklab]

Writes PNG files:
  sink_rate.png      Sink_1^eps (percent) vs step for every run on one figure, and the loss curves
  alpha1_heatmap.png layer x head heatmap of alpha_1 at chosen steps (first run; default: last step)
  hidden_norms.png   hidden-state L2 norm by position after each block (last logged step)
  attention_maps.png attention weights saved by `sinklab replay --save-maps` (if replay.h5 has any)
  vit_sinks.png      ViT runs: per-token importance alpha (all queries) by layer, where the sink
                     patches are in the image, token norms by position (last logged step)
  vit_overlays.png   ViT runs with replay maps: each probe image with the attention its patches
                     receive (mean over queries) and the CLS query's attention overlaid
into --out (default: the first run's directory). Runs are read with python/sinklab_log.py; what each
dataset is (shape, unit, doc, and the paper's proxy statistics that supersede the raw ones for
kernels without normalisation) comes from `sinklab stats --list --json` (--sinklab: the binary).
Sink_1 and alpha_1 are the first real token's: position 1 after a sink token.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from sinklab_log import read_log, read_run, read_statistics  # noqa: E402

STATS = None  # the declared datasets (sinklab_log.Statistics), set in main()


def series(run, name):
    """(steps, values) of what a report reads for the declared statistic `name` (its proxy version
    where the run logged one), or None."""
    return run.series.get(STATS.reported(name, run.series))


def is_proxy(run, name):
    return STATS.reported(name, run.series) != name


def first_token(run):
    """The position of the first real token: 1 after a sink token."""
    return 1 if run.config.get("attention", {}).get("sink_token") else 0


def run_label(run):
    return os.path.basename(os.path.normpath(run.path))


def plot_sink_rate(runs, eps_index, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        s = series(run, "attn/sink_rate_k")
        if s is not None and s[1].shape[2] > first_token(run):
            proxy = " (proxy)" if is_proxy(run, "attn/sink_rate_k") else ""
            ax1.plot(s[0], s[1][:, eps_index, first_token(run)], label=run_label(run) + proxy)
        loss = series(run, "train/loss")
        if loss is not None:
            ax2.plot(loss[0], loss[1], label=run_label(run) + " train", alpha=0.7)
        val = series(run, "val/loss")
        if val is not None:
            ax2.plot(val[0], val[1], "o-", label=run_label(run) + " val", markersize=3)
    ax1.set(xlabel="step", ylabel="Sink_1 (%)", title="first-token sink rate", ylim=(-2, 102))
    ax1.set_xscale("symlog", linthresh=10)
    ax2.set(xlabel="step", ylabel=f"loss ({STATS['train/loss']['unit']})", title="loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sink_rate.png"), dpi=110)
    plt.close(fig)


def plot_alpha_heatmap(run, steps, out):
    s = series(run, "attn/alpha")
    if s is None or s[1].shape[3] <= first_token(run):
        return
    all_steps, alpha = s
    chosen = [int(x) for x in steps.split(",")] if steps else [int(all_steps[-1])]
    proxy = " (proxy)" if is_proxy(run, "attn/alpha") else ""
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.5), squeeze=False)
    for ax, step in zip(axes[0], chosen):
        i = int(np.argmin(np.abs(all_steps - step)))
        im = ax.imshow(alpha[i, :, :, first_token(run)], vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(xlabel="head", ylabel="layer", title=f"alpha_1{proxy} at step {int(all_steps[i])}")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "alpha1_heatmap.png"), dpi=110)
    plt.close(fig)


def plot_hidden_norms(run, out):
    s = series(run, "hidden/norm")
    if s is None:
        return
    steps, norms = s
    fig, ax = plt.subplots(figsize=(6, 4))
    for layer in range(norms.shape[1]):
        ax.plot(norms[-1, layer], "o-", label=f"after block {layer}")
    ax.set(xlabel="position", ylabel="||h||", title=f"hidden-state norms at step {int(steps[-1])}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "hidden_norms.png"), dpi=110)
    plt.close(fig)


def replay_maps(run):
    """The attention maps replay.h5 holds: {name: (steps, values)}, and the replay's series."""
    path = os.path.join(run.path, "replay.h5")
    if not os.path.exists(path):
        return {}, {}
    replay = read_log(path)
    maps = {n: s for n, s in replay.items() if STATS.find(n) is STATS["maps/layer{layer}_head{head}"]}
    return maps, replay


def plot_maps(run, out):
    maps, _ = replay_maps(run)
    if not maps:
        return
    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 4), squeeze=False)
    for ax, (name, (steps, m)) in zip(axes[0], maps.items()):
        ax.imshow(m[-1, 0], cmap="magma", vmin=0, vmax=min(1.0, float(m[-1, 0].max())))
        ax.set(xlabel="key", ylabel="query", title=f"{name[len('maps/'):]}, step {int(steps[-1])}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "attention_maps.png"), dpi=110)
    plt.close(fig)


def vit_layout(run):
    """(grid, first_patch) of a ViT run from its config, or None."""
    vit = run.config.get("vit")
    if run.config.get("model", {}).get("type") != "vit" or not vit:
        return None
    return vit["image_size"] // vit["patch"], 1 + vit["registers"]


def plot_vit(run, eps_index, out):
    alpha, rate, norms = series(run, "vit/alpha"), series(run, "vit/sink_rate"), series(run, "vit/token_norm")
    layout = vit_layout(run)
    if alpha is None or rate is None or layout is None:
        return
    grid, first = layout
    step = int(alpha[0][-1])
    a = alpha[1][-1].mean(axis=1)  # [L, N], mean over heads
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    for layer in range(a.shape[0]):
        ax1.plot(a[layer], "o-", markersize=3, label=f"layer {layer}")
    ax1.axvspan(-0.5, first - 0.5, color="grey", alpha=0.2, label="CLS + registers")
    ax1.set(xlabel="token", ylabel="alpha (mean over queries and heads)", title=f"importance at step {step}")
    ax1.legend(fontsize=7)
    im = ax2.imshow(rate[1][-1][eps_index][first:].reshape(grid, grid), cmap="viridis", vmin=0)
    ax2.set(title=f"patch sink rate (%), CLS+reg: {np.round(rate[1][-1][eps_index][:first], 1)}")
    fig.colorbar(im, ax=ax2)
    if norms is not None:
        for layer in range(norms[1].shape[1]):
            ax3.plot(norms[1][-1, layer], "o-", markersize=3, label=f"after block {layer}")
        ax3.axvspan(-0.5, first - 0.5, color="grey", alpha=0.2)
        ax3.set(xlabel="token", ylabel="||h||", title="token norms")
        ax3.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "vit_sinks.png"), dpi=110)
    plt.close(fig)


def plot_vit_overlays(run, out, max_images=4):
    maps, replay = replay_maps(run)
    layout, images = vit_layout(run), replay.get(STATS["vit/probe_images"]["name"])
    if layout is None or not maps or images is None:
        return
    images = images.values[-1]
    maps = {n[len("maps/"):]: s.values[-1] for n, s in maps.items()}
    grid, first = layout
    n_img = min(max_images, images.shape[0])
    fig, axes = plt.subplots(2 * len(maps), n_img, figsize=(2.5 * n_img, 5 * len(maps)), squeeze=False)
    side = images.shape[-1]
    for m, (name, w) in enumerate(maps.items()):  # w [B, T, S]
        patches = slice(w.shape[2] - grid * grid, w.shape[2])  # the last grid^2 keys are patches
        for b in range(n_img):
            for row, (weights, what) in enumerate(((w[b].mean(axis=0), "mean over queries"), (w[b][0], "CLS query"))):
                heat = np.kron(weights[patches].reshape(grid, grid), np.ones((side // grid, side // grid)))
                ax = axes[2 * m + row][b]
                ax.imshow(images[b], cmap="gray")
                ax.imshow(heat, cmap="inferno", alpha=0.55)
                specials = weights[: w.shape[2] - grid * grid].sum()
                ax.set_title(f"{name}\n{what}; CLS/reg/slot {specials:.2f}", fontsize=7)
                ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "vit_overlays.png"), dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--eps-index", type=int, default=0, help="which stats.eps threshold to plot")
    ap.add_argument("--steps", default="", help="comma-separated steps for the alpha_1 heatmap")
    ap.add_argument("--out", default=None)
    ap.add_argument("--sinklab", default=None, help="the sinklab binary (default: $SINKLAB, build/sinklab, PATH)")
    a = ap.parse_args()
    for r in a.runs:
        if not os.path.exists(os.path.join(r, "log.h5")):
            sys.exit(f"plot_sinks: {r} has no log.h5 (is it a sinklab run directory?)")
    global STATS
    STATS = read_statistics(a.sinklab)
    runs = [read_run(r) for r in a.runs]
    out = a.out or a.runs[0]
    os.makedirs(out, exist_ok=True)
    plot_sink_rate(runs, a.eps_index, out)
    plot_alpha_heatmap(runs[0], a.steps, out)
    plot_hidden_norms(runs[0], out)
    plot_maps(runs[0], out)
    plot_vit(runs[0], a.eps_index, out)
    plot_vit_overlays(runs[0], out)
    print("wrote plots to", out)


if __name__ == "__main__":
    main()
