#!/usr/bin/python3
"""Plots of attention sinks from sinklab runs (Debian's /usr/bin/python3: h5py, matplotlib).

  /usr/bin/python3 scripts/plot_sinks.py runs/A [runs/B ...] [--eps-index 0] [--steps 100,1000] [--out DIR]

Writes PNG files:
  sink_rate.png      Sink_1^eps (percent) vs step for every run on one figure, and the loss curves
  alpha1_heatmap.png layer x head heatmap of alpha_1 at chosen steps (first run; default: last step)
  hidden_norms.png   hidden-state L2 norm by position after each block (last logged step)
  attention_maps.png attention weights saved by `sinklab replay --save-maps` (if replay.h5 has any)
  vit_sinks.png      ViT runs: per-token importance alpha (all queries) by layer, where the sink
                     patches are in the image, token norms by position (last logged step)
  vit_overlays.png   ViT runs with replay maps: each probe image with the attention its patches
                     receive (mean over queries) and the CLS query's attention overlaid
into --out (default: the first run's directory).
"""
import argparse
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def series(f, name):
    """(steps, values) of a logged dataset, or None."""
    if name not in f or name + "_step" not in f:
        return None
    return np.asarray(f[name + "_step"]), np.asarray(f[name])


def run_label(path):
    return os.path.basename(os.path.normpath(path))


def plot_sink_rate(runs, eps_index, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in runs:
        with h5py.File(os.path.join(path, "log.h5"), "r", locking=False) as f:
            s = series(f, "attn/sink_rate")
            if s is not None:
                ax1.plot(s[0], s[1][:, eps_index], label=run_label(path))
            loss = series(f, "train/loss")
            if loss is not None:
                ax2.plot(loss[0], loss[1], label=run_label(path) + " train", alpha=0.7)
            val = series(f, "val/loss")
            if val is not None:
                ax2.plot(val[0], val[1], "o-", label=run_label(path) + " val", markersize=3)
    ax1.set(xlabel="step", ylabel="Sink_1 (%)", title="first-token sink rate", ylim=(-2, 102))
    ax1.set_xscale("symlog", linthresh=10)
    ax2.set(xlabel="step", ylabel="loss", title="loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sink_rate.png"), dpi=110)
    plt.close(fig)


def plot_alpha_heatmap(run, steps, out):
    with h5py.File(os.path.join(run, "log.h5"), "r", locking=False) as f:
        s = series(f, "attn/alpha")
    if s is None:
        return
    all_steps, alpha = s
    chosen = [int(x) for x in steps.split(",")] if steps else [int(all_steps[-1])]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.5), squeeze=False)
    for ax, step in zip(axes[0], chosen):
        i = int(np.argmin(np.abs(all_steps - step)))
        im = ax.imshow(alpha[i, :, :, 0], vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(xlabel="head", ylabel="layer", title=f"alpha_1 at step {int(all_steps[i])}")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "alpha1_heatmap.png"), dpi=110)
    plt.close(fig)


def plot_hidden_norms(run, out):
    with h5py.File(os.path.join(run, "log.h5"), "r", locking=False) as f:
        s = series(f, "hidden/norm")
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


def plot_maps(run, out):
    path = os.path.join(run, "replay.h5")
    if not os.path.exists(path):
        return
    with h5py.File(path, "r", locking=False) as f:
        if "maps" not in f:
            return
        names = [n for n in f["maps"] if not n.endswith("_step")]
        maps = {n: (np.asarray(f["maps"][n + "_step"]), np.asarray(f["maps"][n])) for n in names}
    if not maps:
        return
    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 4), squeeze=False)
    for ax, (name, (steps, m)) in zip(axes[0], maps.items()):
        ax.imshow(m[-1, 0], cmap="magma", vmin=0, vmax=min(1.0, float(m[-1, 0].max())))
        ax.set(xlabel="key", ylabel="query", title=f"{name}, step {int(steps[-1])}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "attention_maps.png"), dpi=110)
    plt.close(fig)


def vit_layout(f):
    """(grid, first_patch) of a ViT run from the config attribute of a log/replay file, or None."""
    text = f.attrs.get("config", "")
    text = text.decode() if isinstance(text, bytes) else str(text)
    section, values = "", {}
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            section = line.strip()[:-1]
        elif section == "vit" and ":" in line:
            key, _, rest = line.strip().partition(":")
            values[key] = rest.split("#")[0].strip()
    try:
        grid = int(values["image_size"]) // int(values["patch"])
        return grid, 1 + int(values["registers"])
    except (KeyError, ValueError):
        return None


def plot_vit(run, eps_index, out):
    with h5py.File(os.path.join(run, "log.h5"), "r", locking=False) as f:
        alpha, rate, norms = series(f, "vit/alpha"), series(f, "vit/sink_rate"), series(f, "vit/token_norm")
        layout = vit_layout(f)
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
    path = os.path.join(run, "replay.h5")
    if not os.path.exists(path):
        return
    with h5py.File(path, "r", locking=False) as f:
        if "maps" not in f or "vit/probe_images" not in f:
            return
        layout = vit_layout(f)
        images = np.asarray(f["vit/probe_images"])[-1]
        maps = {n: np.asarray(f["maps"][n])[-1] for n in f["maps"] if not n.endswith("_step")}
    if layout is None or not maps:
        return
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
    a = ap.parse_args()
    for r in a.runs:
        if not os.path.exists(os.path.join(r, "log.h5")):
            sys.exit(f"plot_sinks: {r} has no log.h5 (is it a sinklab run directory?)")
    out = a.out or a.runs[0]
    os.makedirs(out, exist_ok=True)
    plot_sink_rate(a.runs, a.eps_index, out)
    plot_alpha_heatmap(a.runs[0], a.steps, out)
    plot_hidden_norms(a.runs[0], out)
    plot_maps(a.runs[0], out)
    plot_vit(a.runs[0], a.eps_index, out)
    plot_vit_overlays(a.runs[0], out)
    print("wrote plots to", out)


if __name__ == "__main__":
    main()
