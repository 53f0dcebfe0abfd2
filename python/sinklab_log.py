"""Reads sinklab runs and sweeps into numpy (Debian's /usr/bin/python3: numpy, h5py, yaml).

    import sys; sys.path.insert(0, "python")
    from sinklab_log import read_run, read_sweep
    run = read_run("runs/tiny")
    steps, sink = run.series["attn/sink_rate"]       # int64 [rows], float32 [rows, eps]
    print(run.config["stats"]["eps"], sink[-1])
    for row in read_sweep("runs/sweeps/wd"):          # summary.csv as dicts
        print(row["run"], row["sink@0.3"])

A log.h5 holds, for each logged name, /<name> [rows, ...] and /<name>_step [rows] (engine/h5log.h).
Files are opened without HDF5 locking, so a run still being written can be read.
"""
import csv
import os
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
