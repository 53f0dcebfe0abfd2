#!/usr/bin/python3
"""End-to-end checks of `sinklab sweep` on the tiny synthetic config:
- a 2x2 grid with --jobs 2 runs all four runs; the summary table matches each run's log.h5;
- a second invocation skips finished runs;
- stopping the sweep mid-way (SIGTERM) leaves finished runs alone and resumes the interrupted one;
- a run that fails is reported with its stderr tail while the others finish;
- --dry-run prints the commands (local and on MPI hosts) and runs nothing; --slurm writes an array script;
- --pin places each run at a time on its own CPUs, and refuses more runs than CPUs;
- `extends:` takes a parent sweep's keys (its base still the parent's file), this file's variants added or
  replaced by name, `exclude:` leaving some out, and scripts/report.py reads the same sweep.
Run by CTest as: /usr/bin/python3 test_sweep.py PATH/TO/sinklab_tests (sinklab is beside it)."""
import csv
import os
import shutil
import sys
import signal
import subprocess
import tempfile
import time

import h5py
import numpy as np

from harness import BIN, ROOT, TINY, check, finish


def sweep(*args, expect=0):
    r = subprocess.run([BIN, "sweep", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != expect:
        raise SystemExit(f"sinklab sweep {' '.join(args)} exited {r.returncode} (wanted {expect}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def read(run, name):
    with h5py.File(os.path.join(run, "log.h5"), "r", locking=False) as f:
        return np.asarray(f[name + "_step"]), np.asarray(f[name])


def summary(sweep_dir):
    with open(os.path.join(sweep_dir, "summary.csv")) as f:
        return {row["run"]: row for row in csv.DictReader(f)}


with tempfile.TemporaryDirectory() as tmp:
    # 1. A 2x2 grid, two runs at a time.
    grid = write(f"{tmp}/grid.yaml", f"""base: {TINY}
claim: "test claim"
overrides: [train.steps=20, train.eval_every=10]
grid:
  attention.kernel: [softmax, sigmoid]
  train.seed: [0, 1]
""")
    out = sweep(grid, "--jobs", "2", f"run.dir={tmp}/runs")
    names = ["kernel-softmax_seed-0", "kernel-softmax_seed-1", "kernel-sigmoid_seed-0", "kernel-sigmoid_seed-1"]
    runs = {n: f"{tmp}/runs/grid/{n}" for n in names}
    check("grid: every run finished",
          all(os.path.exists(f"{d}/checkpoints/step_00000020.h5") for d in runs.values()), os.listdir(f"{tmp}/runs/grid"))
    check("grid: 2 at a time, 1 thread each on 2 cores", "2 at a time" in out, out[:300])
    check("grid: progress line counts the runs", "4/4 done, 0 failed, 0 running, 0 pending" in out, out[-500:])
    table = summary(f"{tmp}/runs/grid")
    check("summary: one row per run", sorted(table) == sorted(names), list(table))
    for n, d in runs.items():
        row = table[n]
        # Sigmoid weights are no distribution: the summary reads their proxy, which its log has.
        proxy = "proxy_" if "sigmoid" in n else ""
        (_, loss), (_, val), (_, sink) = read(d, "train/loss"), read(d, "val/loss"), read(d, f"attn/{proxy}sink_rate")
        _, alpha = read(d, f"attn/{proxy}alpha")
        ok = (row["status"] == "finished" and row["steps"] == "20"
              and row["sink_source"] == ("proxy" if proxy else "weights")
              and abs(float(row["train_loss"]) - loss[-1]) < 1e-3 * abs(loss[-1])
              and abs(float(row["val_loss"]) - val[-1]) < 1e-3 * abs(val[-1])
              and abs(float(row["sink@0.3"]) - sink[-1, 0]) < 0.051
              and abs(float(row["sink@0.3_max"]) - sink[:, 0].max()) < 0.051
              and abs(float(row["alpha1"]) - alpha[-1, :, :, 0].mean()) < 1e-3
              and row["overrides"].startswith("attention.kernel="))
        check(f"summary: {n} matches its log.h5", ok, (row, loss[-1], val[-1], sink[-1], alpha[-1, :, :, 0].mean()))
    md = open(f"{tmp}/runs/grid/summary.md").read()
    check("summary.md: claim and table", "test claim" in md and "| kernel-sigmoid_seed-1 | finished |" in md, md[:600])
    check("plots written", os.path.exists(f"{tmp}/runs/grid/sink_rate.png"))
    out = sweep(grid, "--jobs", "2", f"run.dir={tmp}/runs")
    check("rerun skips finished runs", "(4 finished, 0 to run)" in out and "start" not in out, out[:300])
    # A run brought back from another machine has its log but no checkpoints: finished, not rerun.
    moved = f"{tmp}/runs/grid/kernel-sigmoid_seed-1"
    shutil.rmtree(f"{moved}/checkpoints")
    log_mtime = os.path.getmtime(f"{moved}/log.h5")
    out = sweep(grid, f"run.dir={tmp}/runs")
    check("a run whose log reached its last step counts as finished without checkpoints",
          "(4 finished, 0 to run)" in out and os.path.getmtime(f"{moved}/log.h5") == log_mtime, out[:300])

    # 2. Stop the sweep while a run is in progress, then continue it.
    res = write(f"{tmp}/resume.yaml", f"""base: {TINY}
overrides: [train.steps=200, train.checkpoint_every=40, train.eval_every=100, train.log_every=100, stats.every=5]
variants:
  first: {{}}
  second: {{train.seed: 1}}
  third: {{train.seed: 2}}
""")
    d = f"{tmp}/runs/resume"
    p = subprocess.Popen([BIN, "sweep", res, "--threads", "1", f"run.dir={tmp}/runs"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, cwd=ROOT)
    deadline = time.time() + 50
    while time.time() < deadline:  # until the first run is done and the second has a checkpoint past step 0
        ck = f"{d}/second/checkpoints"
        if os.path.isdir(ck) and any(f.endswith(".h5") and f != "step_00000000.h5" for f in os.listdir(ck)):
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    check("stopped sweep exits 130 and says how to continue", p.returncode == 130 and "rerun" in out, (p.returncode, out))
    first_mtime = os.path.getmtime(f"{d}/first/log.h5")
    interrupted = not os.path.exists(f"{d}/second/checkpoints/step_00000200.h5")
    check("after the stop: first finished, second interrupted, third not started",
          os.path.exists(f"{d}/first/checkpoints/step_00000200.h5") and interrupted and not os.path.exists(f"{d}/third"),
          os.listdir(d))
    out = sweep(res, "--threads", "1", f"run.dir={tmp}/runs")
    check("continue: first skipped, second resumed, third started",
          "start first" not in out and "resume second" in out and "start third" in out, out)
    check("continue: the finished run is untouched", os.path.getmtime(f"{d}/first/log.h5") == first_mtime)
    steps, _ = read(f"{d}/second", "train/loss")
    check("continue: the resumed run logged every step once", np.array_equal(steps, np.arange(1, 201)), steps[:5])
    log = open(f"{d}/logs/second.log").read()
    check("continue: train --resume was used", "resuming at step" in log, log[-300:])

    # 3. A failing run is reported; the others finish.
    bad = write(f"{tmp}/bad.yaml", f"""base: {TINY}
overrides: [train.steps=10]
variants:
  good: {{}}
  broken: {{data.source: corpus, data.dir: {tmp}/no_such_corpus}}
  also_good: {{train.seed: 3}}
""")
    out = sweep(bad, "--jobs", "2", f"run.dir={tmp}/runs", expect=1)
    check("failure reported with its stderr tail", "FAILED broken (exit 1)" in out and "no prepared corpus" in out, out)
    check("the other runs finished", all(os.path.exists(f"{tmp}/runs/bad/{n}/checkpoints/step_00000010.h5")
                                         for n in ["good", "also_good"]))
    table = summary(f"{tmp}/runs/bad")
    check("summary marks the failed run", table["broken"]["status"] == "failed (1)" and
          table["good"]["status"] == "finished", table["broken"])

    # 4. --dry-run and --slurm run nothing.
    out = sweep(grid, "--dry-run", "--jobs", "2", f"run.dir={tmp}/dry")
    lines = [l for l in out.splitlines() if l.startswith("[pending]")]
    check("dry-run: one command per run", len(lines) == 4, out)
    check("dry-run: the train command", lines[0] == f"[pending] kernel-softmax_seed-0: OMP_NUM_THREADS=1 {BIN} train "
          f"{TINY} train.steps=20 train.eval_every=10 run.dir={tmp}/dry attention.kernel=softmax train.seed=0 "
          f"run.dir={tmp}/dry/grid run.name=kernel-softmax_seed-0", lines[0])
    check("dry-run: nothing written", not os.path.exists(f"{tmp}/dry"))
    # extends: the parent's base is relative to the parent's folder.
    parent = write(f"{tmp}/family/parent.yaml", f"base: {os.path.relpath(TINY, f'{tmp}/family')}\nclaim: parent claim\n"
                   "overrides: [train.steps=20]\ncolumns: [alpha1]\nvariants:\n  a: {attention.kernel: sigmoid}\n"
                   "  b: {}\n  c: {train.lr: 1.0e-3}\n")
    child = write(f"{tmp}/child.yaml", "extends: family/parent.yaml\nexclude: [c]\noverrides: [train.steps=30]\n"
                  "variants:\n  b: {train.lr: 2.0e-3}\n  d: {}\n")
    out = sweep(child, "--dry-run", f"run.dir={tmp}/dry")
    lines = [l for l in out.splitlines() if l.startswith("[pending]")]
    check("extends: the parent's variants in order, one replaced, one added, the excluded one left out",
          [l.split(":")[0] for l in lines] == ["[pending] a", "[pending] b", "[pending] d"], out)
    check("extends: the parent's base and claim, this file's overrides and variant",
          "claim: parent claim" in out and all(f" {TINY} train.steps=30 " in l for l in lines) and
          "train.lr=2.0e-3" in lines[1] and "sigmoid" in lines[0], out)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from report import read_spec  # noqa: E402
    spec = read_spec(child)
    check("report.py reads the same sweep", list(spec["variants"]) == ["a", "b", "d"] and
          spec["columns"] == ["alpha1"] and spec["overrides"] == ["train.steps=30"] and
          os.path.normpath(os.path.join(tmp, spec["base"])) == TINY, spec)
    write(f"{tmp}/bad_exclude.yaml", "extends: family/parent.yaml\nexclude: [z]\n")
    err = subprocess.run([BIN, "sweep", f"{tmp}/bad_exclude.yaml", "--dry-run"], capture_output=True, text=True)
    check("exclude: an unknown variant is named", err.returncode != 0 and "exclude: 'z' is no variant of" in err.stderr,
          err.stderr)
    write(f"{tmp}/loop.yaml", "extends: loop.yaml\n")
    err = subprocess.run([BIN, "sweep", f"{tmp}/loop.yaml", "--dry-run"], capture_output=True, text=True)
    check("extends: a file that extends itself is refused", err.returncode != 0 and "extends this file again" in err.stderr,
          err.stderr)
    hosts = write(f"{tmp}/hosts", "# two nodes\nnodeA slots=1\nnodeB slots=1\n")
    out = sweep(grid, "--dry-run", "--hostfile", hosts, f"run.dir={tmp}/dry")
    lines = [l for l in out.splitlines() if l.startswith("[pending]")]
    check("dry-run hostfile: mpirun on alternating hosts",
          len(lines) == 4 and all(f"mpirun --host {h} -np 1 -x OMP_NUM_THREADS=1 {BIN} train" in l
                                  for l, h in zip(lines, ["nodeA", "nodeB", "nodeA", "nodeB"])), out)
    # --pin: each run at a time on its own CPUs, in order from those the sweep may use.
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        out = sweep(grid, "--dry-run", "--jobs", "2", "--threads", "1", "--pin", f"run.dir={tmp}/dry")
        lines = [l for l in out.splitlines() if l.startswith("[pending]")]
        check("dry-run --pin: the runs alternate between the two slots' CPUs",
              [l.split(": ")[1] for l in lines] == [f"CPUs {c}" for c in [cpus[0], cpus[1]] * 2], out)
        out = sweep(grid, "--jobs", "2", "--threads", "1", "--pin", f"run.dir={tmp}/pinned")
        check("--pin: every run finished, each started on one slot's CPU",
              "4/4 done, 0 failed" in out and out.count(f"on CPUs {cpus[0]}\n") + out.count(f"on CPUs {cpus[1]}\n") == 4,
              out)
    err = subprocess.run([BIN, "sweep", grid, "--jobs", str(len(cpus) + 1), "--threads", "1", "--pin",
                          f"run.dir={tmp}/dry"], capture_output=True, text=True, cwd=ROOT)
    check("--pin with more runs at a time than CPUs is refused, naming both counts",
          err.returncode != 0 and f"needs {len(cpus) + 1} CPUs, and this process may use {len(cpus)}" in err.stderr,
          err.stderr)
    out = sweep(grid, "--slurm", f"run.dir={tmp}/dry")
    script = open(f"{tmp}/dry/grid/sweep.slurm").read()
    check("slurm: one array task per run, each a sweep --only",
          "#SBATCH --array=0-3" in script and '--only "$SLURM_ARRAY_TASK_ID"' in script, script)
    out = sweep(grid, "--only", "2", f"run.dir={tmp}/dry")
    check("--only runs just that run", os.listdir(f"{tmp}/dry/grid").count("kernel-sigmoid_seed-0") == 1 and
          not os.path.exists(f"{tmp}/dry/grid/kernel-softmax_seed-0"), os.listdir(f"{tmp}/dry/grid"))

    # 5. A seeds axis: one run per (variant, seed), the aggregate over seeds, per-run curves, and
    # the summary merged into a results directory.
    seeded = write(f"{tmp}/seeded.yaml", f"""base: {TINY}
overrides: [train.steps=10, train.eval_every=5, "stats.eps=[0.1, 0.3]"]
seeds: [1, 2, 3]
rule: {{chains: ["a < b"]}}
variants:
  a: {{}}
  b: {{attention.kernel: sigmoid, seeds: [7]}}
""")
    out = sweep(seeded, "--dry-run", f"run.dir={tmp}/runs")
    check("seeds: a run per variant and seed, train.seed = data.seed = the seed",
          [l.split(":")[0] for l in out.splitlines() if l.startswith("[pending]")] ==
          ["[pending] a_s1", "[pending] a_s2", "[pending] a_s3", "[pending] b_s7"] and
          "attention.kernel=sigmoid train.seed=7 data.seed=7" in out, out)
    out = sweep(seeded, "--only", "a_s2", f"run.dir={tmp}/runs")
    check("--only NAME runs that run", os.listdir(f"{tmp}/runs/seeded") == ["a_s2"] or
          sorted(os.listdir(f"{tmp}/runs/seeded")) == ["a_s2", "logs"], os.listdir(f"{tmp}/runs/seeded"))
    results = f"{tmp}/results"
    os.makedirs(results)
    # A committed row of a run that has no log here survives the merge.
    # So does a pending row of a run that has since run.
    write(f"{results}/seeded.csv", "run,variant,seed,status,steps,sink@0.3\nb_s7,b,7,finished,10,55.5\n"
          "a_s3,a,3,pending,,\n")
    sweep(seeded, "--jobs", "2", f"run.dir={tmp}/runs", "--only", "a_s1")
    sweep(seeded, "--jobs", "2", f"run.dir={tmp}/runs", "--only", "a_s3")
    sweep(seeded, "--summary", "--into", results, f"run.dir={tmp}/runs")
    with open(f"{tmp}/runs/seeded/summary.csv") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    with open(f"{tmp}/runs/seeded/summary_seeds.csv") as f:
        agg = {r["variant"]: r for r in csv.DictReader(f)}
    a = [rows[f"a_s{s}"] for s in (1, 2, 3)]
    ok = agg["a"]["runs"] == "3" and agg["a"]["finished"] == "3" and agg["a"]["seeds"] == "1 2 3"
    for col in ("val_loss", "alpha1", "sink@0.1"):
        x = np.array([float(r[col]) for r in a])
        ok = ok and abs(float(agg["a"][col + "_mean"]) - x.mean()) < 1e-5 * max(1, abs(x.mean()))
        ok = ok and abs(float(agg["a"][col + "_std"] or 0) - x.std(ddof=1)) < 1e-5 * max(1, x.std(ddof=1))
        ok = ok and agg["a"][col + "_n"] == "3"
    check("summary_seeds.csv: mean, sample std and n over the seeds of summary.csv", ok, (agg["a"], a))
    check("summary: the not-yet-run seed is pending", rows["b_s7"]["status"] == "pending" and agg["b"]["finished"] == "0",
          rows["b_s7"])
    curve = list(csv.DictReader(open(f"{tmp}/runs/seeded/curves/a_s1.csv")))
    (cs, cv) = read(f"{tmp}/runs/seeded/a_s1", "attn/sink_rate")
    check("curve: step, tokens (step x batch x context), Sink_1 per eps, at the logged steps",
          [int(r["step"]) for r in curve] == list(cs) and all(int(r["tokens"]) == int(r["step"]) * 4 * 32 for r in curve)
          and all(abs(float(r["sink@0.3"]) - v[1]) < 1e-4 for r, v in zip(curve, cv)) and curve[-1]["val_loss"] != "",
          curve[:3])
    with open(f"{results}/seeded.csv") as f:
        merged = {r["run"]: r for r in csv.DictReader(f)}
    check("--into: the committed row of a run without a log here is kept",
          merged["b_s7"]["sink@0.3"] == "55.5" and merged["b_s7"]["status"] == "finished", merged["b_s7"])
    check("--into: runs with a log here replace or add rows",
          all(merged[f"a_s{s}"] == rows[f"a_s{s}"] for s in (1, 2, 3)), merged)
    with open(f"{results}/seeded_seeds.csv") as f:
        magg = {r["variant"]: r for r in csv.DictReader(f)}
    check("--into: the aggregate is of the merged rows", magg["b"]["sink@0.3_mean"] == "55.5" and
          magg["a"]["sink@0.3_mean"] == agg["a"]["sink@0.3_mean"], magg["b"])
    check("--into: curves of the runs here", sorted(os.listdir(f"{results}/curves/seeded")) ==
          ["a_s1.csv", "a_s2.csv", "a_s3.csv"] and os.path.exists(f"{results}/seeded.md"))
    # --import: another machine's summary merged with no logs here; a committed row that went
    # further (more steps) is kept.
    other = f"{tmp}/other"
    os.makedirs(other)
    for f in ("summary.csv", "curves"):  # what a device batch brings back
        (shutil.copytree if f == "curves" else shutil.copy)(f"{tmp}/runs/seeded/{f}", f"{other}/{f}")
    results2 = f"{tmp}/results2"
    os.makedirs(results2)
    write(f"{results2}/seeded.csv", "run,variant,seed,status,steps,sink@0.3\na_s1,a,1,finished,999,12.5\n")
    sweep(seeded, "--import", other, "--into", results2, f"run.dir={tmp}/nowhere")
    with open(f"{results2}/seeded.csv") as f:
        imported = {r["run"]: r for r in csv.DictReader(f)}
    check("--import: rows of the other machine merged, a row that went further kept",
          imported["a_s1"]["steps"] == "999" and imported["a_s2"] == rows["a_s2"] and
          imported["b_s7"]["status"] == "pending" and not os.path.exists(f"{results2}/curves/seeded/a_s1.csv") and
          os.path.exists(f"{results2}/curves/seeded/a_s3.csv") and not os.path.exists(f"{tmp}/nowhere"), imported)
    bad_seeds = write(f"{tmp}/bad_seeds.yaml", f"base: {TINY}\nseeds: [1]\nvariants:\n  x: {{train.seed: 3}}\n")
    r = subprocess.run([BIN, "sweep", bad_seeds, "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    check("seeds beside an explicit train.seed are refused", r.returncode != 0 and "sets train.seed beside `seeds:`" in r.stderr,
          r.stderr)

finish()
