#!/usr/bin/python3
"""Plots of `sinklab analyze` results (Debian's /usr/bin/python3: h5py, matplotlib).

  /usr/bin/python3 scripts/plot_analysis.py runs/A [runs/B ...] [--step N] [--out DIR] [--smooth 16]

Writes PNG files, from each run's analysis.h5 (read with python/sinklab_log.py), at --step (default:
the last analysed step of each dataset):
  streaming.png      perplexity against position in the stream, one line per run and W/k setting
                     (a running mean over --smooth positions), the cache size W marked
  interventions.png  per intervention, the held-out loss change [layer x head] of ablating one head
                     at a time (first run), with the change of ablating every head in the title
  first_token.png    attention on the first position (alpha) per layer, before and after the first
                     token is removed or replaced (first run)
  head_domain.png    the active/dormant map: per corpus source, the loss change of zeroing each
                     head, dormant heads marked (first run)
into --out (default: the first run's directory). A figure without data is skipped.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from sinklab_log import read_log  # noqa: E402


def load(run):
    path = os.path.join(run, "analysis.h5")
    if not os.path.exists(path):
        raise SystemExit(f"{run}: no analysis.h5 (run `sinklab analyze {run} ...` first)")
    return read_log(path)


def at_step(series, step):
    """The row of `series` at `step` (the last row when step is None), or None."""
    steps, values = series
    if step is None:
        return values[-1]
    hits = np.nonzero(steps == step)[0]
    return values[hits[0]] if len(hits) else None


def label(run):
    return os.path.basename(os.path.normpath(run))


def plot_streaming(logs, step, smooth, out):
    settings = [(run, name[: -len("/nll")]) for run, log in logs for name in sorted(log)
                if name.startswith("streaming/") and name.endswith("/nll")]
    if not settings:
        return
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run, setting in settings:
        log = dict(logs)[run]
        nll = at_step(log[setting + "/nll"], step)
        if nll is None:
            continue
        kernel = np.ones(smooth) / smooth
        smoothed = np.convolve(nll, kernel, mode="valid")
        name = setting[len("streaming/"):]
        line, = ax.plot(np.arange(len(smoothed)) + smooth // 2, np.exp(smoothed),
                        label=f"{label(run)} {name} (ppl {at_step(log[setting + '/ppl'], step)[()]:.1f})")
        window = int(name.split("_")[0][1:])
        ax.axvline(window, color=line.get_color(), ls=":", lw=0.8)
    ax.set_xlabel("position in the stream")
    ax.set_ylabel(f"perplexity (running mean over {smooth})")
    low, high = ax.get_ylim()
    if high > 3 * low:  # a collapse spans decades
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("streaming: KV cache of W tokens, the first k kept (dotted: W)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "streaming.png"), dpi=110)
    plt.close(fig)


def plot_interventions(log, step, out):
    names = sorted(n[len("intervene/"):-len("/head")] for n in log if n.startswith("intervene/") and n.endswith("/head"))
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False)
    base = at_step(log["intervene/loss"], step)
    for ax, name in zip(axes[0], names):
        m = at_step(log[f"intervene/{name}/head"], step)
        all_heads = at_step(log[f"intervene/{name}/all"], step)
        limit = max(np.abs(m).max(), 1e-6)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_title(f"{name}\nall heads: {all_heads[()]:+.3f}", fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"held-out loss change (nats) of one head ablated; base loss {base[()]:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "interventions.png"), dpi=110)
    plt.close(fig)


def plot_first_token(log, step, out):
    names = [n for n in ("first-token-remove", "first-token-replace") if f"intervene/{n}/first_attention" in log]
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        before = at_step(log[f"intervene/{name}/base_first_attention"], step).mean(axis=1)
        after = at_step(log[f"intervene/{name}/first_attention"], step).mean(axis=1)
        layers = np.arange(len(before))
        ax.bar(layers - 0.2, before, 0.4, label="first token, unmodified")
        ax.bar(layers + 0.2, after, 0.4, label="new first position")
        if f"intervene/{name}/own_sink_attention" in log:
            own = at_step(log[f"intervene/{name}/own_sink_attention"], step).mean(axis=1)
            ax.plot(layers, own, "k.", label="own sink, after")
        change = at_step(log[f"intervene/{name}/loss_change"], step)[()]
        ax.set_title(f"{name}: loss change {change:+.3f} nats", fontsize=10)
        ax.set_xlabel("layer")
        ax.set_ylabel("alpha (mean over heads)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "first_token.png"), dpi=110)
    plt.close(fig)


def plot_head_domain(log, sources, step, out):
    if "intervene/head-domain/loss_change" not in log:
        return
    change = at_step(log["intervene/head-domain/loss_change"], step)
    dormant = at_step(log["intervene/head-domain/dormant"], step)
    fig, axes = plt.subplots(1, len(change), figsize=(3.2 * len(change), 3.6), squeeze=False, constrained_layout=True)
    limit = max(np.abs(change).max(), 1e-6)
    for s, ax in enumerate(axes[0]):
        im = ax.imshow(change[s], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        for layer, head in zip(*np.nonzero(dormant[s])):
            ax.text(head, layer, "D", ha="center", va="center", fontsize=9)
        ax.set_title(sources[s] if s < len(sources) else f"source {s}", fontsize=10)
        ax.set_xlabel("head")
        if s == 0:
            ax.set_ylabel("layer")
    fig.colorbar(im, ax=list(axes[0]), fraction=0.02)
    fig.suptitle("loss change of zeroing a head, per corpus source (D: dormant)", fontsize=10)
    fig.savefig(os.path.join(out, "head_domain.png"), dpi=110)
    plt.close(fig)


def sources_of(run):
    import h5py
    with h5py.File(os.path.join(run, "analysis.h5"), "r", locking=False) as f:
        text = f.attrs.get("head_domain_sources", b"")
    return (text.decode() if isinstance(text, bytes) else str(text)).split(",")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--step", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--smooth", type=int, default=16)
    a = ap.parse_args()
    logs = [(run, load(run)) for run in a.runs]
    out = a.out or a.runs[0]
    os.makedirs(out, exist_ok=True)
    first = logs[0][1]
    plot_streaming(logs, a.step, max(a.smooth, 1), out)
    plot_interventions(first, a.step, out)
    plot_first_token(first, a.step, out)
    plot_head_domain(first, sources_of(a.runs[0]), a.step, out)
    print(f"wrote plots to {out}")


if __name__ == "__main__":
    main()
