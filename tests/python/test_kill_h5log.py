#!/usr/bin/python3
"""The HDF5 log under SIGKILL, in isolation: a writer that does nothing but append rows and flush
(so that most kills land inside HDF5 or inside a flush) is killed at random moments, 25 times,
each time resuming the same file from its last complete step. After every kill log.h5 must open
with h5py, every dataset must hold the same gap-free steps 1..N, and every value must be the one
written (no garbage rows, no torn chunks). HDF5 updates files in place, so before the log was held
in memory and published atomically (engine/h5_image.h) most of these files were unreadable
("inflate() failed", "addr overflow"). Run by CTest as:
/usr/bin/python3 test_kill_h5log.py PATH/TO/sinklab_tests."""
import os
import random
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

from harness import ENV, check, finish

TRIALS = 25
rng = random.Random(25)
problems, rows_seen, mid_flush = [], [], 0
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "log.h5")
    last = 0
    for trial in range(TRIALS):
        env = {**ENV, "SINKLAB_KILL_LOG": path, "SINKLAB_KILL_FROM": str(last)}
        p = subprocess.Popen([sys.argv[1], "[.h5log-kill-writer]"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.6))
        if p.poll() is not None:
            problems.append(f"trial {trial}: the writer exited {p.returncode}: {p.stderr.read().decode()[-500:]}")
            break
        p.kill()
        p.wait()
        mid_flush += os.path.exists(path + ".tmp")
        if not os.path.exists(path):
            continue
        try:
            with h5py.File(path, "r", locking=False) as f:
                steps = np.asarray(f["train/scalar0_step"])
                for d in range(12):
                    for name, want in [(f"attn/stat{d}", steps[:, None, None] * np.float32(0.001) + np.float32(d)
                                        + np.arange(128, dtype=np.float32).reshape(4, 32) * np.float32(1e-6)),
                                       (f"train/scalar{d}", steps.astype(np.float32) + np.float32(d))]:
                        s, v = np.asarray(f[name + "_step"]), np.asarray(f[name])
                        assert np.array_equal(s, np.arange(1, len(s) + 1)), f"{name}: steps not 1..N"
                        assert np.array_equal(s, steps), f"{name}: other steps than train/scalar0"
                        assert np.allclose(v, want, rtol=1e-6), f"{name}: values differ from those written"
            last = len(steps)
            rows_seen.append(last)
        except Exception as e:
            problems.append(f"trial {trial}: {type(e).__name__}: {e}")
    print(f"rows after each kill: {rows_seen}; {mid_flush} kills left a log.h5.tmp (killed mid-flush)")
    check(f"{TRIALS} SIGKILLs of a log writer: log.h5 always opens, gap-free, every value as written",
          not problems and len(rows_seen) == TRIALS and rows_seen == sorted(rows_seen), "; ".join(problems))

finish()
