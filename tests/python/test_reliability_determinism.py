#!/usr/bin/python3
"""Determinism: the same config and seed give bit-identical runs on the same machine and thread
count: every logged dataset (losses, lr, grad norms, validation, all attention and hidden-state
statistics; only the wall-clock train/tokens_per_s is excluded) and every weight of every
checkpoint. Checked at 1 and 2 threads, with gradient accumulation (micro-batches) on. A
different seed must change the curve (so the comparison can fail).
Run by CTest as: /usr/bin/python3 test_reliability_determinism.py PATH/TO/sinklab_tests."""
import tempfile

import h5py
import numpy as np

from harness import TINY, check, checkpoint_steps, finish, read_log, sinklab


def same_runs(a, b):
    la, lb = read_log(a), read_log(b)
    logs = set(la) == set(lb) and all(np.array_equal(la[n][0], lb[n][0]) and np.array_equal(la[n][1], lb[n][1])
                                      for n in la)
    weights = checkpoint_steps(a) == checkpoint_steps(b)
    for s in checkpoint_steps(a):
        with h5py.File(f"{a}/checkpoints/step_{s:08d}.h5", "r") as fa, \
                h5py.File(f"{b}/checkpoints/step_{s:08d}.h5", "r") as fb:
            weights &= all(np.array_equal(fa["tensors"][k][()], fb["tensors"][k][()])
                           for k in ["param/" + n for n in fa["tensors/param"]] + ["optim/" + n for n in fa["tensors/optim"]])
    return logs, weights, len(la)


with tempfile.TemporaryDirectory() as tmp:
    common = [f"run.dir={tmp}", "train.steps=16", "train.micro_batch=2", "train.eval_every=5",
              "train.checkpoint_every=8"]
    for threads in [1, 2]:
        for name in ["a", "b"]:
            sinklab("train", TINY, f"run.name={name}{threads}", f"train.threads={threads}", *common)
        logs, weights, n = same_runs(f"{tmp}/a{threads}", f"{tmp}/b{threads}")
        check(f"{threads} thread(s): all {n} logged quantities bit-identical", logs)
        check(f"{threads} thread(s): weights and optimiser state of every checkpoint bit-identical", weights)
    sinklab("train", TINY, "run.name=seed", "train.threads=1", "train.seed=5", *common)
    check("a different seed changes the curve", not same_runs(f"{tmp}/a1", f"{tmp}/seed")[0])

finish()
