#!/usr/bin/python3
"""Non-finite numbers in training, provoked on configs/tiny.yaml with an absurd learning rate
(SGD at lr 10, no clipping, init std 10: the loss overflows within ten steps):
- train.on_nan=stop (the default): the run stops at the step where the activations (of the
  training batch, or of the probe batch of the statistics after the update) first become
  non-finite, naming that step, the block and the tensor where it first appears; the log holds
  only the steps before it and only finite values; every checkpoint is complete and finite.
- a non-finite parameter after an update (AdamW with eps=0 divides 0 by 0) is named likewise.
- train.on_nan=rollback: the run reloads the newest checkpoint before the fault (an older one
  when the fault recurs right after it), multiplies the lr by train.rollback_lr_factor, and
  finishes; the log is gap-free and finite, the lr rows show the factor, the checkpoints of the
  abandoned trajectory are set aside, and the factor survives --resume (bit-identical curve).
Run by CTest as: /usr/bin/python3 test_reliability_nan.py PATH/TO/sinklab_tests."""
import os
import re
import shutil
import tempfile

import h5py
import numpy as np

from harness import TINY, check, checkpoint_steps, finish, read_log, sinklab, verify_checkpoint

DIVERGE = ["train.lr=9", "train.warmup=0", "train.optimizer=sgd", "train.grad_clip=0", "model.init_std=10",
           "train.steps=20", "train.checkpoint_every=4", "train.eval_every=5", "train.log_every=5"]


def all_finite_checkpoints(run):
    ok = True
    for s in checkpoint_steps(run):
        path = f"{run}/checkpoints/step_{s:08d}.h5"
        verify_checkpoint(path)
        with h5py.File(path, "r") as f:
            ok &= all(np.all(np.isfinite(f["tensors/param"][k][()])) for k in f["tensors/param"])
    return ok


with tempfile.TemporaryDirectory() as tmp:
    run = f"{tmp}/stop"
    r = sinklab("train", TINY, f"run.dir={tmp}", "run.name=stop", *DIVERGE, expect=1)
    # Caught in the training forward (block and tensor named) or, when the update made the weights
    # non-finite first, in the statistics' forward (statistic and its [layer, ...] index named).
    m = re.search(r"non-finite (?:loss|activations) at step (\d+)(?:.*, first in block \d+ (?:hidden state|attention "
                  r"weights)| in the statistics \(stats.source = \w+\): statistic '[\w/]+' at \[\d+)", r.stderr)
    check("stop: the message names the step, the block and the tensor", m is not None and r.stderr.count("\n") == 1,
          r.stderr)
    bad = int(m.group(1)) if m else 0
    log = read_log(run)
    loss_steps, loss = log["train/loss"]
    check("stop: the log ends at the step before the fault, gap-free",
          np.array_equal(loss_steps, np.arange(1, bad)), f"{loss_steps} vs fault at {bad}")
    check("stop: nothing non-finite was logged", all(np.all(np.isfinite(v)) for _, v in log.values()),
          [n for n, (_, v) in log.items() if not np.all(np.isfinite(v))])
    check("stop: the loss was finite but diverging right before (the fault is caught where it appears)",
          len(loss) > 0 and loss[-1] > 1e6, loss)
    check("stop: every checkpoint is complete, finite and before the fault",
          all_finite_checkpoints(run) and max(checkpoint_steps(run)) < bad, checkpoint_steps(run))

    r = sinklab("train", TINY, f"run.dir={tmp}", "run.name=param", "train.lr=10", "train.warmup=0",
                "train.grad_clip=0", "model.init_std=10", "train.eps=0", "train.steps=5", expect=1)
    check("a non-finite parameter after the update is named with its step",
          "non-finite parameter 'wte' after the update at step 1" in r.stderr, r.stderr)
    check("... and neither the log nor a checkpoint holds it", "train/loss" not in read_log(f"{tmp}/param")
          and checkpoint_steps(f"{tmp}/param") == [0] and all_finite_checkpoints(f"{tmp}/param"))

    # Without statistics and evaluation, the weights saved at a checkpoint can already overflow in
    # the next forward: the first rollback then fails at once and the second goes further back.
    # Which lr makes that happen depends on every kernel's rounding, so on the CPU: the first lr
    # of these that does is taken.
    rollback = ["train.on_nan=rollback", "train.rollback_lr_factor=0.01", "stats.every=0", "train.eval_every=0"]
    run = f"{tmp}/rollback"
    for peak in ["9", "9.8", "9.5", "9.7", "9.9", "8.5", "10", "9.3", "8.2", "8", "6.4"]:
        shutil.rmtree(run, ignore_errors=True)
        rollback_lr = ["train.lr=" + peak]
        r = sinklab("train", TINY, f"run.dir={tmp}", "run.name=rollback", *DIVERGE, *rollback, *rollback_lr, expect=None)
        backs = [int(s) for s in re.findall(r"rolled back to step (\d+)", r.stdout)]
        if len(backs) == 2 and backs[1] < backs[0]:
            break
    check("rollback: the run rolls back (past a checkpoint that itself diverges) and finishes",
          len(backs) == 2 and backs[1] < backs[0] == backs[1] + 4 and "done: 20 steps" in r.stdout, r.stdout)
    log = read_log(run)
    check("rollback: the log is gap-free and finite",
          np.array_equal(log["train/loss"][0], np.arange(1, 21))
          and all(np.all(np.isfinite(v)) for _, v in log.values()))
    # the unscaled schedule, steps 1..bad-1, at this run's peak lr (the stop run's is 9)
    ref_lr = read_log(f"{tmp}/stop")["train/lr"][1] * np.float32(float(peak) / 9)
    lr = log["train/lr"][1]
    last = backs[-1]
    check(f"rollback: lr x{0.01 ** len(backs):g} after the last rollback (to step {last}), unchanged before",
          np.allclose(lr[:last], ref_lr[:last], rtol=1e-6)
          and np.allclose(lr[last:len(ref_lr)], ref_lr[last:] * np.float32(0.01 ** len(backs)), rtol=1e-6),
          f"{lr} vs {ref_lr}")
    abandoned = sorted(n for n in os.listdir(f"{run}/checkpoints") if n.endswith(".abandoned"))
    check("rollback: checkpoints of the abandoned trajectory are set aside, the rest are finite",
          len(abandoned) >= 1 and all_finite_checkpoints(run), abandoned)
    with h5py.File(f"{run}/checkpoints/step_00000020.h5", "r") as f:
        check("rollback: the checkpoint records the rollbacks", int(f["ints/rollbacks"][0]) == len(backs))

    sinklab("train", TINY, f"run.dir={tmp}", "run.name=split", *DIVERGE, *rollback, *rollback_lr, "--stop-after", "12")
    sinklab("train", "--resume", f"{tmp}/split")
    split = read_log(f"{tmp}/split")
    check("rollback: the lowered lr survives --resume, the curve is bit-identical",
          all(np.array_equal(split[n][0], log[n][0]) and np.array_equal(split[n][1], log[n][1]) for n in log)
          and set(split) == set(log))

finish()
