"""Reads sinklab runs and sweeps into numpy (Debian's /usr/bin/python3: numpy, h5py, yaml).

    import sys; sys.path.insert(0, "python")
    from sinklab_log import read_run, read_sweep
    run = read_run("runs/tiny")
    steps, sink = run.series["attn/sink_rate"]       # int64 [rows], float32 [rows, eps]
    print(run.config["stats"]["eps"], sink[-1])
    for row in read_sweep("runs/sweeps/wd"):          # summary.csv as dicts
        print(row["run"], row["sink@0.3"])

    stats = read_statistics()                         # what each dataset is: `sinklab stats --list --json`
    print(stats["attn/alpha"]["shape"], stats.reported("attn/alpha", run.series))

A log.h5 holds, for each logged name, /<name> [rows, ...] and /<name>_step [rows] (engine/h5log.h).
Files are opened without HDF5 locking, so a run still being written can be read.
"""
import csv
import json
import os
import re
import shutil
import subprocess
from collections import namedtuple

import h5py
import numpy as np
import yaml

Series = namedtuple("Series", "steps values")
Run = namedtuple("Run", "path config series")


def read_log(path):
    """Every dataset of a sinklab HDF5 log (log.h5, replay.h5): {name: Series(steps, values)}."""
    out = {}
    with h5py.File(path, "r", locking=False) as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            if n.endswith("_step"):
                continue
            if n + "_step" not in f:
                raise ValueError(f"{path}: dataset {n} has no {n}_step beside it (not a sinklab log?)")
            steps, values = np.asarray(f[n + "_step"]), np.asarray(f[n])
            rows = min(len(steps), len(values))  # a writer between the two appends of a row
            out[n] = Series(steps[:rows], values[:rows])
    return out


def _log_config(path):
    with h5py.File(path, "r", locking=False) as f:
        text = f.attrs.get("config", "")
    return text.decode() if isinstance(text, bytes) else str(text)


def read_run(path):
    """A run directory (or its log.h5): Run(path, config as a dict, {name: Series(steps, values)}).
    The config comes from the run's config.yaml, else from the log's "config" attribute."""
    log = path if os.path.isfile(path) else os.path.join(path, "log.h5")
    run_dir = os.path.dirname(log)
    if not os.path.exists(log):
        raise FileNotFoundError(f"{path}: no log.h5 (is it a sinklab run directory?)")
    config_path = os.path.join(run_dir, "config.yaml")
    if os.path.exists(config_path):
        with open(config_path) as f:
            config = yaml.safe_load(f)
    else:
        config = yaml.safe_load(_log_config(log))
    return Run(run_dir, config or {}, read_log(log))


def _number(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def read_sweep(path):
    """A sweep directory's summary.csv (or the file itself) as a list of {column: value} rows.
    A column whose non-empty cells are all numbers holds floats (nan where empty); others strings."""
    csv_path = path if os.path.isfile(path) else os.path.join(path, "summary.csv")
    if not os.path.exists(csv_path):
        raise FileNotFoundError(f"{path}: no summary.csv (has `sinklab sweep` summarised it yet?)")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else []
    numeric = [c for c in columns
               if all(r[c] == "" or _number(r[c]) is not None for r in rows) and any(r[c] != "" for r in rows)]
    for r in rows:
        for c in numeric:
            r[c] = float(r[c]) if r[c] != "" else float("nan")
    return rows


class Statistics:
    """The declared datasets (models/statistics.cpp) as `sinklab stats --list --json` prints them."""

    def __init__(self, listing):
        self.axes = listing["axes"]
        self.prefixes = listing["prefixes"]
        self.by_name = {s["name"]: s for s in listing["statistics"]}
        # "maps/layer{layer}_head{head}" matches maps/layer0_head1
        self._patterns = [(re.compile("^" + re.sub(r"\\\{\w+\\\}", r"\\d+", re.escape(n)) + "$"), s)
                          for n, s in self.by_name.items() if "{" in n]

    def find(self, dataset):
        """The declaration of a logged dataset (a train_batch/ prefix and per-head names resolved), or None."""
        for prefix in self.prefixes:
            if dataset.startswith(prefix):
                dataset = dataset[len(prefix):]
        if dataset in self.by_name:
            return self.by_name[dataset]
        return next((s for pattern, s in self._patterns if pattern.match(dataset)), None)

    def __getitem__(self, name):
        if name not in self.by_name:
            raise KeyError(f"no statistic named {name!r}; `sinklab stats --list` names them all")
        return self.by_name[name]

    def reported(self, name, logged):
        """What a report reads for `name`: the statistic superseding it (the paper's proxy) where
        `logged` (a run's series, or any container of names) has it, else `name`."""
        self[name]
        return next((s["name"] for s in self.by_name.values() if s["supersedes"] == name and s["name"] in logged), name)


def find_sinklab():
    """The sinklab binary: $SINKLAB, else build/sinklab of this checkout, else `sinklab` on PATH."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "sinklab")
    for candidate in (os.environ.get("SINKLAB"), here, shutil.which("sinklab")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("no sinklab binary: build it (scripts/build.sh) or set SINKLAB=/path/to/sinklab")


def read_statistics(sinklab=None):
    """The declared datasets, from `sinklab stats --list --json` of the given (or found) binary."""
    out = subprocess.run([sinklab or find_sinklab(), "stats", "--list", "--json"], capture_output=True, text=True,
                         check=True).stdout
    return Statistics(json.loads(out))
