#!/usr/bin/python3
"""Per sweep, Sink_1^0.3 and alpha_1 against the tokens seen, one line per variant (the mean over its
seeds) with the seeds' range (min to max) as a band, drawn from committed per-run curves only
(experiments/results/curves/SWEEP/RUN.csv, written by `sinklab sweep --summary --into`). ViT runs
(curves with sink_patch@0.3) have no first-token sink to speak of and count images, not tokens: they
get the largest patch sink rate, the high-norm patches and the test accuracy against the step.
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


# (column, y label, title) of each panel
DECODER_PANELS = (("sink@0.3", "Sink_1^0.3 (%)", "first-token sink rate"),
                  ("alpha1", "alpha_1", "attention on the first token"))
VIT_PANELS = (("sink_patch@0.3", "largest patch Sink^0.3 (%)", "sink rate of the likeliest patch"),
              ("high_norm", "high-norm patches (%)", "patches above 2x the median norm"),
              ("test_acc", "test accuracy", "test accuracy"))


def seed_band(curves, column, x):
    """(x, mean, low, high) over the curves at each step any of them logged `column`; x is "tokens"
    (in millions) or "step"."""
    by_step = {}
    for c in curves:
        for step, at, v in zip(c["step"], c[x], c.get(column, [])):
            if not math.isnan(v):
                by_step.setdefault(step, (at, []))[1].append(v)
    steps = sorted(by_step)
    xs = [by_step[s][0] / (1e6 if x == "tokens" else 1) for s in steps]
    values = [by_step[s][1] for s in steps]
    return xs, [sum(v) / len(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def logged(curves, column):
    return any(not math.isnan(v) for c in curves for v in c.get(column, []))


def layout(curves):
    """(panels, x axis) for a sweep's curves: ViT panels where they log a patch sink rate, against the
    step where they log no tokens seen."""
    return (VIT_PANELS if logged(curves, "sink_patch@0.3") else DECODER_PANELS,
            "tokens" if logged(curves, "tokens") else "step")


def draw(title, variants, out):
    """variants: [(label, [curve paths])] in the order to draw; writes the PNG `out`."""
    loaded = [(label, [read_curve(p) for p in paths]) for label, paths in variants]
    panels, x = layout([c for _, curves in loaded for c in curves])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    for (label, curves), color in zip(loaded, plt.cm.tab10.colors * 4):
        for ax, (column, _, _) in zip(axes, panels):
            xs, mean, low, high = seed_band(curves, column, x)
            if not xs:
                continue
            ax.plot(xs, mean, color=color, label=f"{label} ({len(curves)})", linewidth=1.2)
            if len(curves) > 1:
                ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
    for ax, (column, ylabel, what) in zip(axes, panels):
        ax.set(xlabel="tokens seen (M)" if x == "tokens" else "step", ylabel=ylabel, title=f"{title}: {what}")
        if column.startswith("sink"):
            ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="variant (seeds): mean, band min-max", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
