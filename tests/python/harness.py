"""Shared pieces of the Python tests run by CTest (`/usr/bin/python3 test_X.py PATH/sinklab_tests`):
the sinklab binary beside the test binary, pass/fail bookkeeping ending in 'N passed, M failed',
and readers of a run's checkpoints (h5py and zlib only) and log (python/sinklab_log.py) that are
independent of the C++ loader."""
import os
import subprocess
import sys
import zlib

import h5py
import numpy as np

BIN = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "sinklab")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "configs", "tiny.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
sys.path.insert(0, os.path.join(ROOT, "python"))
import sinklab_log  # noqa: E402
_counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    _counts["passed" if ok else "failed"] += 1


def finish():
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)


def sinklab(*args, expect=0, timeout=120):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    if expect is not None and r.returncode != expect:
        raise SystemExit(f"sinklab {' '.join(args)} exited {r.returncode} (wanted {expect}):\n{r.stdout}\n{r.stderr}")
    return r


def checkpoint_steps(run):
    d = os.path.join(run, "checkpoints")
    if not os.path.isdir(d):  # killed before the run directory was made
        return []
    return sorted(int(n[5:13]) for n in os.listdir(d) if n.startswith("step_") and n.endswith(".h5"))


def verify_checkpoint(path):
    """Reads every dataset of a checkpoint and checks its crc32 (the format of engine/checkpoint.h).
    Returns the step; raises on any problem."""
    with h5py.File(path, "r", locking=False) as f:
        assert f.attrs["format"] == b"sinklab-checkpoint-1", f"{path}: bad format attribute"
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            ds = f[n]
            if n.startswith("strings/"):
                raw = ds[()].rstrip(b"\0")
            else:
                raw = np.ascontiguousarray(ds[()]).astype("<f4" if n.startswith("tensors/") else "<i8").tobytes()
            assert zlib.crc32(raw) == int(ds.attrs["crc32"]), f"{path}: crc mismatch in {n}"
        return int(f["ints/step"][0])


def read_log(run, skip=("train/tokens_per_s",)):
    """Every logged quantity: name -> (steps, values)."""
    return {n: s for n, s in sinklab_log.read_log(os.path.join(run, "log.h5")).items() if n not in skip}
