#!/usr/bin/python3
"""python/sinklab_log.py reads what sinklab writes:
- read_run on a tiny run returns its config (from config.yaml, or from the log's attribute when
  the run directory has none) and every dataset of log.h5 with its steps, equal to h5py's reads;
- it reads a log while another process holds it open for writing;
- read_sweep types a hand-made summary.csv column by column.
Run by CTest as: /usr/bin/python3 test_sinklab_log.py PATH/TO/sinklab_tests (sinklab is beside it)."""
import math
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from harness import ROOT, TINY, check, finish, sinklab

sys.path.insert(0, os.path.join(ROOT, "python"))
from sinklab_log import read_run, read_sweep  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    sinklab("train", TINY, f"run.dir={tmp}", "run.name=tiny", "train.steps=10", "train.checkpoint_every=0",
            "stats.first_k=3")
    run = read_run(f"{tmp}/tiny")
    check("config from config.yaml", run.config["stats"]["first_k"] == 3 and run.config["train"]["steps"] == 10,
          str(run.config.get("stats")))
    with h5py.File(f"{tmp}/tiny/log.h5", "r", locking=False) as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and not n.endswith("_step") else None)
        check("every dataset is read", sorted(run.series) == sorted(names), f"{sorted(run.series)} vs {sorted(names)}")
        same = all(np.array_equal(run.series[n].steps, f[n + "_step"][()]) and
                   np.array_equal(run.series[n].values, f[n][()]) for n in names)
        check("steps and values equal h5py's", same)
    # A writer in another process holds the file open for writing (and locked).
    writer = subprocess.Popen([sys.executable, "-c", "import h5py, sys\nf = h5py.File(sys.argv[1], 'r+')\n"
                               "print('open', flush=True)\nsys.stdin.read()", f"{tmp}/tiny/log.h5"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        writer.stdout.readline()
        check("reads a log a writer holds open", len(read_run(f"{tmp}/tiny").series) == len(names))
    finally:
        writer.stdin.close()
        writer.wait()
    steps, alpha = run.series["attn/alpha"]
    check("attn/alpha rows [layers, heads, first_k] at the logged steps",
          alpha.shape == (len(steps), 2, 2, 3) and steps[-1] == 10 and alpha.dtype == np.float32, str(alpha.shape))

    os.makedirs(f"{tmp}/bare")
    shutil.copy(f"{tmp}/tiny/log.h5", f"{tmp}/bare/log.h5")
    check("config from the log's attribute without config.yaml", read_run(f"{tmp}/bare").config == run.config)
    try:
        read_run(f"{tmp}/nothing")
        check("a directory without log.h5 is refused", False)
    except FileNotFoundError as e:
        check("a directory without log.h5 is refused", "no log.h5" in str(e), str(e))

    os.makedirs(f"{tmp}/sweep")
    with open(f"{tmp}/sweep/summary.csv", "w") as f:
        f.write('run,status,overrides,steps,sink@0.3\na,finished,"x=1 y=2",20,12.5\nb,failed (1),,0,\n')
    rows = read_sweep(f"{tmp}/sweep")
    check("read_sweep: one dict per run", [r["run"] for r in rows] == ["a", "b"] and rows[0]["overrides"] == "x=1 y=2")
    check("read_sweep: numeric columns are floats, empty cells nan",
          rows[0]["steps"] == 20.0 and rows[0]["sink@0.3"] == 12.5 and math.isnan(rows[1]["sink@0.3"]), str(rows))
    check("read_sweep: text columns stay text", rows[1]["status"] == "failed (1)" and rows[1]["overrides"] == "")
finish()
