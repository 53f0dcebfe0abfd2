#!/usr/bin/python3
"""Runs issue 17's analysis of experiments/analysis.yaml and writes its tables.

  /usr/bin/python3 scripts/analysis.py [experiments/analysis.yaml] [--tables] [--runs DIR] [--results DIR]

For each run of the file's variants that has checkpoints under --runs (default runs/), runs
`sinklab analyze RUN <analyze>` unless its analysis.h5 is newer than its newest checkpoint (--tables
runs nothing). Then writes, from every run's analysis.h5 and log.h5, into --results (default
experiments/results/):
  analysis.csv            a row per run and analysed checkpoint: the COLUMNS below
  analysis_seeds.csv      per variant at its runs' last step: mean, std, n of each column
  analysis_streaming.csv  streaming NLL against position, mean over bins of 32 positions
A run without checkpoints or analysis is reported and left out; nothing is filled in by hand.
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from sinklab_log import find_sinklab, read_log, read_run, read_statistics  # noqa: E402

BIN = 32  # positions per bin of analysis_streaming.csv


def stream(setting):
    """ppl over positions t >= W of a streaming setting."""
    return lambda an, log, first: an.get(f"streaming/{setting}/ppl_beyond")


def gain(window, kept=0):
    """How much more the perplexity beyond a window of W tokens is with `kept` sinks than with 4."""
    def f(an, log, first):
        a, b = an.get(f"streaming/W{window}_k{kept}/ppl_beyond"), an.get(f"streaming/W{window}_k4/ppl_beyond")
        return None if a is None or b is None else float(a - b)
    return f


def reduced(name, reduce=np.mean, source="analysis"):
    """A dataset of the analysis (or log) row, reduced to a number."""
    def f(an, log, first):
        v = (an if source == "analysis" else log).get(name)
        return None if v is None else float(reduce(v))
    return f


def first_alpha(an, log, first):
    """alpha of the first real token (after a sink token), mean over layers and heads."""
    v = log.get("attn/alpha")
    return None if v is None else float(np.mean(v[..., first]))


# The tables of REPORT.md's analysis section, in order.
TABLES = {
    "interventions": "Interventions on replay: the change of the held-out loss (nats per token; positive: worse)",
    "streaming": "Streaming with a KV cache of W tokens keeping k sinks: perplexity beyond the window",
    "mechanisms": "Mechanistic statistics of the probe at the same step (log.h5; proxy weights for unnormalised "
                  "kernels)",
}
# Every column of analysis.csv, declared once: (table, name, what it is, its value from the
# analysis row and the log row at the checkpoint's step, each {dataset: array}, and the position
# of the run's first real token).
COLUMNS = [
    ("interventions", "loss", "held-out loss of the unmodified model (nats/token)", reduced("intervene/loss")),
    ("interventions", "sink_attn_kept", "loss change: attention to the sink key set to 0, the rest kept",
     reduced("intervene/sink-attention-kept/all")),
    ("interventions", "sink_attn_rescaled", "loss change: attention to the sink key set to 0, the rest renormalised",
     reduced("intervene/sink-attention-rescaled/all")),
    ("interventions", "sink_value_zero", "loss change: v_0 set to 0", reduced("intervene/sink-value-zero/all")),
    ("interventions", "sink_value_mean", "loss change: v_0 set to the mean of the other values",
     reduced("intervene/sink-value-mean/all")),
    ("interventions", "massive_zero",
     "loss change: the 3 largest |h| of position 0 set to 0, after the block where it hurts most",
     reduced("intervene/massive-zero/block", np.max)),
    ("interventions", "massive_mean", "loss change: ... set to their mean over the other positions (its worst block)",
     reduced("intervene/massive-mean/block", np.max)),
    ("interventions", "first_remove", "loss change: BOS removed at evaluation",
     reduced("intervene/first-token-remove/loss_change")),
    ("interventions", "first_replace", "loss change: BOS replaced by a common token",
     reduced("intervene/first-token-replace/loss_change")),
    ("interventions", "first_alpha_removed",
     "alpha of the new first position after BOS is removed (mean over layers and heads)",
     reduced("intervene/first-token-remove/first_attention")),
    ("interventions", "head_zero_max", "the largest loss change of zeroing one head",
     reduced("intervene/head-zero/head", np.max)),
    ("interventions", "dormant_share", "percent of (source, layer, head) that are dormant (analyze --help: thresholds)",
     reduced("intervene/head-domain/dormant", lambda v: 100 * np.mean(v))),
    ("streaming", "ppl_W64_k0", "streaming perplexity beyond a 64-token window, no sink kept", stream("W64_k0")),
    ("streaming", "ppl_W64_k1", "... keeping 1 sink token", stream("W64_k1")),
    ("streaming", "ppl_W64_k4", "... keeping 4 sink tokens", stream("W64_k4")),
    ("streaming", "ppl_W32_k0", "streaming perplexity beyond a 32-token window, no sink kept", stream("W32_k0")),
    ("streaming", "ppl_W32_k1", "... keeping 1 sink token", stream("W32_k1")),
    ("streaming", "ppl_W32_k4", "... keeping 4 sink tokens", stream("W32_k4")),
    ("streaming", "stream_gain_W64", "ppl_W64_k0 - ppl_W64_k4", gain(64)),
    ("streaming", "stream_gain_W32", "ppl_W32_k0 - ppl_W32_k4: what keeping 4 sinks saves", gain(32)),
    ("streaming", "stream_k1_gap_W32", "ppl_W32_k1 - ppl_W32_k4: what 3 more sinks save beyond the first",
     gain(32, 1)),
    ("mechanisms", "alpha1", "alpha of the first real token, mean over layers and heads", first_alpha),
    ("mechanisms", "diag_mass", "diagonal mass (1/T) sum_t A_tt, mean over layers and heads",
     reduced("attn/diag_mass", source="log")),
    ("mechanisms", "sink_share",
     "the sink's share of the attention output norm (Kobayashi et al.), mean over layers and heads",
     reduced("attn/sink_contribution_share", source="log")),
    ("mechanisms", "centred_sink_logit", "q_t.k_0 - mean_j q_t.k_j, mean over layers and heads",
     reduced("attn/centred_sink_logit", source="log")),
    ("mechanisms", "norm_entropy", "row entropy / log t, mean over layers and heads",
     reduced("attn/normalized_entropy", source="log")),
    ("mechanisms", "cosine_last", "mean pairwise cosine of the tokens after the last block (over-smoothing)",
     reduced("hidden/cosine", lambda v: v[-1], "log")),
    ("mechanisms", "rank_residual_last", "||H - 1 hbar^T|| / ||H|| after the last block (rank collapse)",
     reduced("hidden/rank_residual", lambda v: v[-1], "log")),
    ("mechanisms", "massive_act_ratio",
     "largest over blocks of hidden/massive_activation_ratio, the top |h| over the median |h| (Sun et al.)",
     reduced("hidden/massive_activation_ratio", np.max, "log")),
    ("mechanisms", "kurtosis_max", "largest over blocks of the hidden states' kurtosis",
     reduced("hidden/kurtosis", np.max, "log")),
]


def newest_checkpoint(run):
    d = os.path.join(run, "checkpoints")
    files = sorted(f for f in os.listdir(d) if f.endswith(".h5")) if os.path.isdir(d) else []
    return os.path.join(d, files[-1]) if files else None


def rows_at(series, step, statistics):
    """{dataset: row} of a log at one step (the reported statistic: proxy weights where logged)."""
    out = {}
    for name, s in series.items():
        hit = np.nonzero(s.steps == step)[0]
        if len(hit):
            out[name] = s.values[hit[-1]]
    if statistics is not None:
        for name in list(out):
            if name in statistics.by_name:
                out[name] = out[statistics.reported(name, out)]
    return out


def analyze(sinklab, run, args):
    cmd = [sinklab, "analyze", run, *[str(a) for a in args]]
    print(f"[analysis] {' '.join(cmd)}", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"[analysis] FAILED {run}:\n{r.stderr[-2000:]}", file=sys.stderr)
    return r.returncode == 0


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def fmt(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", nargs="?", default="experiments/analysis.yaml")
    ap.add_argument("--tables", action="store_true", help="only write the tables from the runs' analysis.h5")
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--results", default="experiments/results")
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = yaml.safe_load(f)
    sinklab = find_sinklab()
    statistics = read_statistics(sinklab)
    runs = [(v, r) for v, rs in spec["variants"].items() for r in rs]

    if not args.tables:
        t0 = time.time()
        todo = []
        for v, r in runs:
            d = os.path.join(args.runs, r)
            ck = newest_checkpoint(d)
            an = os.path.join(d, "analysis.h5")
            if ck is None:
                print(f"[analysis] {r}: no checkpoints under {d}; skipped (train it first)")
            elif not os.path.exists(an) or os.path.getmtime(an) < os.path.getmtime(ck):
                todo.append(d)
        for i, d in enumerate(todo):
            analyze(sinklab, d, spec["analyze"])
            done = time.time() - t0
            print(f"[analysis] {i + 1}/{len(todo)} runs | {done / 60:.1f} min | ETA "
                  f"{done / (i + 1) * (len(todo) - i - 1) / 60:.1f} min", flush=True)

    header = ["variant", "run", "step"] + [c[1] for c in COLUMNS]
    table, stream_rows, last_rows = [], [], {}
    for v, r in runs:
        d = os.path.join(args.runs, r)
        an_path, log_path = os.path.join(d, "analysis.h5"), os.path.join(d, "log.h5")
        missing = [p for p in (an_path, log_path) if not os.path.exists(p)]
        if missing:
            print(f"[analysis] {r}: no {' or '.join(os.path.basename(p) for p in missing)}; left out of the tables")
            continue
        run = read_run(d)
        first = 1 if (run.config.get("attention") or {}).get("sink_token") else 0
        an, log = read_log(an_path), run.series
        steps = sorted({int(s) for s in an["intervene/loss"].steps}) if "intervene/loss" in an else []
        for step in steps:
            a_row, l_row = rows_at(an, step, None), rows_at(log, step, statistics)
            row = [v, r, step]
            for *_, f in COLUMNS:
                try:
                    val = f(a_row, l_row, first)
                except (KeyError, IndexError):
                    val = None
                row.append(fmt(val))
            table.append(row)
            last_rows.setdefault(v, {})[r] = row
        for name, s in an.items():
            if name.startswith("streaming/") and name.endswith("/nll"):
                nll = s.values[-1]
                setting = name.split("/")[1]
                for b in range(0, len(nll), BIN):
                    stream_rows.append([v, r, int(s.steps[-1]), setting, b, fmt(float(np.mean(nll[b:b + BIN])))])
    os.makedirs(args.results, exist_ok=True)
    write_csv(os.path.join(args.results, "analysis.csv"), header, table)
    write_csv(os.path.join(args.results, "analysis_streaming.csv"),
              ["variant", "run", "step", "setting", "position", "nll"], stream_rows)
    seeds = []
    for v in spec["variants"]:
        rows = list(last_rows.get(v, {}).values())
        out = [v, len(rows)]
        for k in range(len(COLUMNS)):
            vals = [float(r[3 + k]) for r in rows if r[3 + k] != ""]
            out += [fmt(float(np.mean(vals))) if vals else "", fmt(float(np.std(vals, ddof=1))) if len(vals) > 1 else "",
                    len(vals)]
        seeds.append(out)
    write_csv(os.path.join(args.results, "analysis_seeds.csv"),
              ["variant", "runs"] + [f"{c[1]}_{s}" for c in COLUMNS for s in ("mean", "std", "n")], seeds)
    print(f"[analysis] wrote {args.results}/analysis.csv ({len(table)} rows), analysis_seeds.csv, "
          f"analysis_streaming.csv")


if __name__ == "__main__":
    main()
