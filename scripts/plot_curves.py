#!/usr/bin/python3
"""Per sweep, Sink_1^0.3 and alpha_1 against the tokens seen, one line per variant (the mean over its
seeds) with the seeds' range (min to max) as a band, drawn from committed per-run curves only
(experiments/results/curves/SWEEP/RUN.csv, written by `sinklab sweep --summary --into`).
scripts/report.py --plots calls draw() for every calibrated sweep; the PNGs go to experiments/plots/."""
import csv
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_curve(path):
    """A curve CSV as {column: [float or nan]}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: [float(r[c]) if r[c] != "" else math.nan for r in rows] for c in (rows[0].keys() if rows else [])}


def seed_band(curves, column):
    """(tokens, mean, low, high) over the curves at each step any of them logged `column`."""
    by_step = {}
    for c in curves:
        for step, tok, v in zip(c["step"], c["tokens"], c.get(column, [])):
            if not math.isnan(v):
                by_step.setdefault(step, (tok, []))[1].append(v)
    steps = sorted(by_step)
    tokens = [by_step[s][0] / 1e6 for s in steps]
    values = [by_step[s][1] for s in steps]
    return tokens, [sum(v) / len(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def draw(title, variants, out):
    """variants: [(label, [curve paths])] in the order to draw; writes the PNG `out`."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for (label, paths), color in zip(variants, plt.cm.tab10.colors * 4):
        curves = [read_curve(p) for p in paths]
        for ax, column in zip(axes, ("sink@0.3", "alpha1")):
            tokens, mean, low, high = seed_band(curves, column)
            if not tokens:
                continue
            ax.plot(tokens, mean, color=color, label=f"{label} ({len(curves)})", linewidth=1.2)
            if len(curves) > 1:
                ax.fill_between(tokens, low, high, color=color, alpha=0.2, linewidth=0)
    axes[0].set(xlabel="tokens seen (M)", ylabel="Sink_1^0.3 (%)", title=f"{title}: first-token sink rate", ylim=(-2, 102))
    axes[1].set(xlabel="tokens seen (M)", ylabel="alpha_1", title=f"{title}: attention on the first token")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="variant (seeds): mean, band min-max", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
