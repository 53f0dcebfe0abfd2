#!/usr/bin/python3
"""scripts/analysis.py --tables and the report's analysis section on hand-made runs:
- each column of analysis.csv is its declared reduction of the run's analysis.h5 and log.h5 rows
  at the checkpoint's step (a largest over blocks, a last block, a difference of two settings);
- analysis_seeds.csv holds the mean and sample standard deviation over a variant's runs;
- streaming NLL is binned by 32 positions;
- scripts/report.py judges a claim on a column with the spread of softmax's seeds.
Run by CTest as: /usr/bin/python3 test_analysis_tables.py PATH/TO/sinklab_tests."""
import csv
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from harness import BIN, ROOT, check, finish

ANALYSIS = os.path.join(ROOT, "scripts", "analysis.py")
REPORT = os.path.join(ROOT, "scripts", "report.py")


def write_log(path, rows):
    """A sinklab-style log: /name [rows, ...] with /name_step beside it."""
    with h5py.File(path, "w") as f:
        for name, (steps, values) in rows.items():
            f[name] = np.asarray(values, dtype=np.float32)
            f[name + "_step"] = np.asarray(steps, dtype=np.int64)


def make_run(d, loss, massive_blocks, cosine, w32):
    os.makedirs(d)
    nll = np.arange(64, dtype=np.float32)  # bins of 32: means 15.5 and 47.5
    write_log(f"{d}/analysis.h5", {
        "intervene/loss": ([6000], [loss]),
        "intervene/massive-zero/block": ([6000], [massive_blocks]),
        "streaming/W32_k0/ppl_beyond": ([6000], [w32[0]]),
        "streaming/W32_k4/ppl_beyond": ([6000], [w32[1]]),
        "streaming/W32_k0/nll": ([6000], [nll]),
    })
    alpha = np.zeros((2, 2, 2, 8), np.float32)
    alpha[1, :, :, 0] = [[0.1, 0.3], [0.5, 0.7]]  # at step 6000: alpha_1 mean 0.4
    write_log(f"{d}/log.h5", {
        "attn/alpha": ([0, 6000], alpha),
        "hidden/cosine": ([0, 6000], [[0.0, 0.0], [0.2, cosine]]),
    })


with tempfile.TemporaryDirectory() as tmp:
    runs, results = f"{tmp}/runs", f"{tmp}/results"
    make_run(f"{runs}/b/s1", 2.0, [0.1, 0.5, 0.2], 0.3, (12.0, 10.0))
    make_run(f"{runs}/b/s2", 2.2, [0.3, 0.1, 0.2], 0.5, (13.0, 10.0))
    make_run(f"{runs}/k/one", 2.5, [0.0, 0.0, 0.1], 0.9, (10.0, 10.0))
    spec = f"{tmp}/analysis.yaml"
    with open(spec, "w") as f:
        f.write("variants:\n  softmax: [b/s1, b/s2]\n  sigmoid: [k/one]\nanalyze: [--intervene, all]\nclaims:\n"
                "  - paper: a claim on the last block's cosine\n    chain: 'cosine_last: softmax < sigmoid'\n"
                "  - paper: keeping sinks helps\n    chain: 'stream_gain_W32: sigmoid < softmax'\n")
    env = {**os.environ, "SINKLAB": os.path.join(os.path.dirname(BIN), "sinklab")}
    r = subprocess.run([sys.executable, ANALYSIS, spec, "--tables", "--runs", runs, "--results", results],
                       capture_output=True, text=True, env=env)
    check("analysis.py --tables runs", r.returncode == 0, r.stdout + r.stderr)
    rows = {row["run"]: row for row in csv.DictReader(open(f"{results}/analysis.csv"))} if r.returncode == 0 else {}
    s1 = rows.get("b/s1", {})
    check("a row per run at the checkpoint's step, the loss as logged",
          s1.get("step") == "6000" and float(s1.get("loss", "nan")) == 2.0, s1)
    check("massive_zero: the largest over blocks", abs(float(s1.get("massive_zero", "nan")) - 0.5) < 1e-6, s1)
    check("cosine_last: the last block, at that step", abs(float(s1.get("cosine_last", "nan")) - 0.3) < 1e-6, s1)
    check("alpha1: position 0 of attn/alpha, mean over layers and heads",
          abs(float(s1.get("alpha1", "nan")) - 0.4) < 1e-6, s1)
    check("stream_gain_W32 = ppl(k=0) - ppl(k=4)", abs(float(s1.get("stream_gain_W32", "nan")) - 2.0) < 1e-6, s1)
    check("a column whose dataset the run lacks is empty", s1.get("sink_attn_kept") == "", s1)
    seeds = {row["variant"]: row for row in csv.DictReader(open(f"{results}/analysis_seeds.csv"))} if rows else {}
    sm = seeds.get("softmax", {})
    check("seeds: mean, sample std and n over the variant's runs",
          abs(float(sm.get("loss_mean", "nan")) - 2.1) < 1e-6 and abs(float(sm.get("loss_std", "nan")) -
                                                                    np.std([2.0, 2.2], ddof=1)) < 1e-6
          and sm.get("loss_n") == "2" and seeds.get("sigmoid", {}).get("loss_std") == "", sm)
    stream = list(csv.DictReader(open(f"{results}/analysis_streaming.csv"))) if rows else []
    b1 = [(x["position"], float(x["nll"])) for x in stream if x["run"] == "b/s1"]
    check("streaming NLL in bins of 32 positions", b1 == [("0", 15.5), ("32", 47.5)], b1)

    # The report's section: spreads from softmax's two seeds (cosine std 0.141, gain std 0.707).
    ex = f"{tmp}/ex"
    os.makedirs(f"{ex}/results")
    os.rename(spec, f"{ex}/analysis.yaml")
    for name in ("analysis_seeds.csv", "analysis.csv", "analysis_streaming.csv"):
        os.rename(f"{results}/{name}", f"{ex}/results/{name}")
    with open(f"{ex}/paper_gu2025.csv", "w") as f:
        f.write("sweep,variant,setting,sink1,sink_slot,proxy,note\n")
    r = subprocess.run([sys.executable, REPORT, "--experiments", ex], capture_output=True, text=True)
    md = open(f"{ex}/REPORT.md").read() if r.returncode == 0 else r.stdout + r.stderr
    check("report: the claim on cosine_last, judged on softmax's spread",
          "`cosine_last: softmax < sigmoid` (cosine_last): **agrees** (softmax < sigmoid: 0.4 vs 0.9, spread 0.141: "
          "holds)" in md, md[-3000:])
    check("report: a side of one run takes softmax's spread",
          "`stream_gain_W32: sigmoid < softmax` (stream_gain_W32): **agrees** (sigmoid < softmax: 0 vs 2.5, "
          "spread 0.707: holds)" in md, md[-3000:])
    check("report: the tables show mean ± std (n)", "| softmax | 2.100 ± 0.141 (2) |" in md, md[-3000:])

finish()
