#!/usr/bin/python3
"""scripts/report.py:
- on the repository's tracked files alone (a fresh clone) it writes the committed experiments/REPORT.md,
  and --check says so;
- on a hand-made experiments tree, its verdicts follow the rules on known means and spreads, the paper's
  numbers stand beside ours, cells without finished runs read pending, --plots draws the seed band
  from the committed curves and the report links it, and --check catches a stale report;
- the sweep plot draws a decoder's curves against tokens seen and a ViT's against the step.
Run by CTest as: /usr/bin/python3 test_report.py PATH/TO/sinklab_tests."""
import os
import shutil
import subprocess
import sys
import tempfile

from harness import ROOT, check, finish

REPORT = os.path.join(ROOT, "scripts", "report.py")


def report(*args, cwd=ROOT):
    return subprocess.run([sys.executable, REPORT, *args], capture_output=True, text=True, cwd=cwd)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


with tempfile.TemporaryDirectory() as tmp:
    # 1. A fresh clone: only the files git tracks (as they are in the working tree).
    tracked = subprocess.run(["git", "ls-files", "experiments", "scripts", "python"], capture_output=True, text=True,
                             cwd=ROOT)
    if tracked.returncode == 0 and tracked.stdout:
        clone = os.path.join(tmp, "clone")
        for f in tracked.stdout.split("\n"):
            if f and os.path.exists(os.path.join(ROOT, f)):
                os.makedirs(os.path.dirname(os.path.join(clone, f)), exist_ok=True)
                shutil.copy(os.path.join(ROOT, f), os.path.join(clone, f))
        # written where it lives, so that its plot links are the committed ones
        fresh = os.path.join(clone, "experiments", "REPORT.md")
        os.remove(fresh)
        r = subprocess.run([sys.executable, os.path.join(clone, "scripts", "report.py")], capture_output=True, text=True,
                           cwd=clone)
        committed = open(os.path.join(ROOT, "experiments", "REPORT.md")).read()
        check("a fresh clone writes the committed REPORT.md", r.returncode == 0 and os.path.exists(fresh) and
              open(fresh).read() == committed, r.stdout + r.stderr)
    r = report("--check")
    check("--check: the committed REPORT.md is up to date", r.returncode == 0 and "up to date" in r.stdout,
          r.stdout + r.stderr)

    # 2. A hand-made tree: a baseline of three seeds (Sink 30 +- 2), a sweep with judged and pending chains.
    ex = os.path.join(tmp, "ex")
    write(f"{ex}/paper_gu2025.csv", "# a source note\nsweep,variant,setting,sink1,sink_slot,proxy,note\n"
          "baseline,baseline,default,18.18,,,\ntoy,a,setting a,2.90,,,\ntoy,c,,,,,the figure shows a rise\n"
          "toy,e,setting e,0.44,,yes,\ntoy,,setting only the paper has,11.21,,,\n")
    write(f"{ex}/baseline.yaml", "base: x.yaml\nclaim: base claim\nseeds: [1, 2, 3]\nvariants:\n  baseline: {}\n")
    write(f"{ex}/toy.yaml", """base: x.yaml
claim: toy claim
seeds: [1, 2, 3]
rule:
  baseline: b
  chains:
    - "a < b"
    - "b ~ c"
    - "a < c < b"
    - "b < a"
    - "e < b"
    - "slot_sink@0.3: 0 < d"
variants:
  a: {train.lr: 1.0e-4}
  c: {train.lr: 2.0e-3, seeds: [1]}
  d: {attention.kv_bias: true}
  e: {attention.kernel: sigmoid}
""")
    cols = "variant,runs,finished,seeds,sink@0.3_mean,sink@0.3_std,sink@0.3_n,alpha1_mean,alpha1_std,alpha1_n,"
    cols += "onset_sink_step_mean,onset_sink_step_std,onset_sink_step_n,onset_sink_tokens_mean,onset_sink_tokens_std,"
    cols += "onset_sink_tokens_n\n"
    write(f"{ex}/results/baseline_seeds.csv", cols + "baseline,3,3,1 2 3,30,2,3,0.2,0.01,3,2000,100,3,4096000,204800,3\n")
    write(f"{ex}/results/baseline.csv", "run,variant,seed,status,sink@0.3,sink_source\n"
          "baseline_s1,baseline,1,finished,28,weights\nbaseline_s2,baseline,2,finished,30,weights\n"
          "baseline_s3,baseline,3,finished,32,weights\n")
    # e is an unnormalised kernel: its runs' Sink_1 is on proxy weights.
    write(f"{ex}/results/toy_seeds.csv", cols + "a,3,3,1 2 3,10,1,3,0.1,0.01,3,,,0,,,0\nc,1,1,1,31,,1,0.21,,1,,,0,,,0\n"
          "d,3,0,,,,0,,,0,,,0,,,0\ne,3,3,1 2 3,0.5,0.5,3,0.01,0.001,3,,,0,,,0\n")
    for run, values in (("a_s1", (0, 5, 9)), ("a_s2", (0, 6, 10)), ("a_s3", (0, 7, 11))):
        write(f"{ex}/results/curves/toy/{run}.csv", "step,tokens,sink@0.3,alpha1\n" +
              "".join(f"{s},{s * 2048},{v},0.1\n" for s, v in zip((0, 50, 100), values)))
    write(f"{ex}/results/toy.csv", "run,variant,seed,status,sink@0.3,sink_source\n"
          "a_s1,a,1,finished,9,weights\na_s2,a,2,finished,10,weights\na_s3,a,3,finished,11,weights\n"
          "c_s1,c,1,finished,31,weights\ne_s1,e,1,finished,0.5,proxy\n")
    out = f"{ex}/REPORT.md"
    r = report("--experiments", ex, "--plots")
    md = open(out).read() if r.returncode == 0 else r.stdout + r.stderr
    check("a < b: 10 vs 30, spread max(1, 2) = 2: agrees",
          "`a < b`: **agrees** (a < b: 10.0 vs 30.0, spread 2.0: holds)" in md, md)
    check("b ~ c: c has one seed and takes the baseline's spread 2: |30 - 31| <= 2 agrees",
          "`b ~ c`: **agrees** (b ~ c: 30.0 vs 31.0, spread 2.0: holds)" in md, md)
    check("a monotone range: a step within the spread, the ends an effect: agrees",
          "`a < c < b`: **agrees** (a < c: 10.0 vs 31.0, spread 2.0: holds; c < b: 31.0 vs 30.0, spread 2.0: no effect; "
          "a < b: 10.0 vs 30.0, spread 2.0: holds)" in md, md)
    check("b < a: an effect the other way: disagrees", "`b < a`: **disagrees**" in md, md)
    check("a kernel scored on proxy weights is marked * and judged on them",
          "`e < b`: **agrees** (e < b: 0.5 vs 30.0, spread 2.0: holds)" in md and "| 0.5 ± 0.5 (3)* |" in md, md)
    check("a variant without finished runs is pending, on its own measure",
          "`slot_sink@0.3: 0 < d` (slot_sink@0.3): **pending**" in md and "| d | attention.kv_bias=true | — | pending |" in md,
          md)
    check("the sweep's verdict counts its chains",
          "Verdict: **pending (1 of 6 chains; so far 4 agrees, 1 disagrees)**" in md, md)
    check("ours as mean ± std (n) beside the paper's number; the baseline row under this sweep's name",
          "| a | train.lr=1.0e-4 | setting a: 2.90 | 10.0 ± 1.0 (3) |" in md and
          "| b | the baseline (experiments/baseline.yaml) | — | 30.0 ± 2.0 (3) |" in md, md)
    check("the paper's figure where it has no number, its proxy mark, its settings we lack",
          "*the figure shows a rise*" in md and "setting e: 0.44*" in md and
          "The paper also reports: setting only the paper has: 11.21." in md, md)
    check("onsets: reached by every seed / by none", "2000 ± 100 (4.1M tokens; 3 of 3)" in md and
          "not reached (0 of 3)" in md, md)
    check("the calibration target over three seeds, and the seed spread",
          "Calibration target: met: mean Sink_1^0.3 30.0 % over 3 seeds" in md and
          "Per seed: baseline_s1 28; baseline_s2 30; baseline_s3 32." in md and "2.0 points" in md, md)
    check("--plots drew the sweep's seed band from the committed curves, and the report links it",
          os.path.getsize(f"{ex}/plots/toy.png") > 1000 and "![toy](plots/toy.png)" in md and
          "Plot: none yet" in md.split("### toy")[0], md)
    r = report("--experiments", ex, "--check")
    check("--check on the report just written", r.returncode == 0, r.stdout + r.stderr)
    write(f"{ex}/results/toy_seeds.csv", open(f"{ex}/results/toy_seeds.csv").read().replace("a,3,3,1 2 3,10,", "a,3,3,1 2 3,12,"))
    r = report("--experiments", ex, "--check")
    check("--check catches a result the report does not show", r.returncode == 1 and "first difference" in r.stdout,
          r.stdout + r.stderr)
    write(f"{ex}/bad.yaml", "base: x.yaml\nrule:\n  chains: ['a < nosuch']\nvariants:\n  a: {}\n")
    r = report("--experiments", ex, "--out", f"{tmp}/bad.md")
    check("a rule naming no variant is refused with the names", r.returncode != 0 and "'nosuch'" in r.stderr +
          r.stdout, r.stdout + r.stderr)
    os.remove(f"{ex}/bad.yaml")

    # 3. A sweep's extra summary columns (`columns:`) as a table, and a chain on one of them.
    write(f"{ex}/cols.yaml", "base: x.yaml\ncolumns: [router_H]\nrule:\n  chains: ['router_H: a < 1.5', "
          "'router_H: b < a']\nvariants:\n  a: {}\n  b: {seeds: [1]}\n")
    write(f"{ex}/results/cols_seeds.csv", "variant,runs,finished,seeds,router_H_mean,router_H_std,router_H_n\n"
          "a,2,2,1 2,1.25,0.0125,2\nb,1,1,1,1.2,,1\n")
    write(f"{ex}/results/cols.csv", "run,variant,seed,status,router_H\na_s1,a,1,finished,1.24\na_s2,a,2,finished,1.26\n")
    r = report("--experiments", ex, "--out", f"{tmp}/cols.md")
    md = open(f"{tmp}/cols.md").read() if r.returncode == 0 else r.stdout + r.stderr
    check("columns: a table of the sweep's extra summary columns, mean ± std (n)",
          "| variant | router_H |" in md and "| a | 1.250 ± 0.013 (2) |" in md, md)
    check("a chain on another measure than Sink_1 is shown to 3 significant digits",
          "`router_H: a < 1.5` (router_H): **agrees** (a < 1.5: 1.25 vs 1.5, spread 0.0125: holds)" in md, md)
    check("a one-seed side of a chain on another column takes that column's spread, not Sink_1's",
          "`router_H: b < a` (router_H): **agrees** (b < a: 1.2 vs 1.25, spread 0.0125: holds)" in md, md)
    write(f"{ex}/cols.yaml", "base: x.yaml\ncolumns: [nosuch]\nrule:\n  chains: ['a < 2']\nvariants:\n  a: {}\n")
    r = report("--experiments", ex, "--out", f"{tmp}/cols.md")
    check("a column the results do not have is refused with the ones they have",
          r.returncode != 0 and "nosuch" in r.stdout + r.stderr and "router_H" in r.stdout + r.stderr,
          r.stdout + r.stderr)

# The sweep plot's panels: a decoder's curves against tokens seen, a ViT's (no tokens, a patch sink
# rate) against the step, each seed band over the seeds that logged the step.
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import plot_curves  # noqa: E402

nan = float("nan")
decoder = {"step": [0, 50], "tokens": [0, 102400], "sink@0.3": [0, 20], "alpha1": [0.07, 0.2]}
vit = [{"step": [0, 250], "tokens": [nan, nan], "sink@0.3": [0, 0], "sink_patch@0.3": [1, v], "high_norm": [0, 2],
        "test_acc": [nan, 0.9]} for v in (4, 6)]
check("a decoder's curves plot the first-token sink against tokens seen",
      plot_curves.layout([decoder]) == (plot_curves.DECODER_PANELS, "tokens"))
check("a ViT's curves plot the patch sink rate, high-norm patches and accuracy against the step",
      plot_curves.layout(vit) == (plot_curves.VIT_PANELS, "step"))
check("the seed band of a ViT column: mean, min and max at each step",
      plot_curves.seed_band(vit, "sink_patch@0.3", "step") == ([0, 250], [1, 5], [1, 4], [1, 6]))

finish()
