#!/usr/bin/python3
"""A full disk during training, on a small tmpfs mounted as run.dir (needs root; skipped with a
message where mounting is not permitted). The disk is filled by the test while the run goes on:
- leaving room for the log but not for a checkpoint: the run stops at once with one message
  naming the checkpoint file and 'disk full'; no partial file is left, every earlier checkpoint
  verifies, log.h5 reads; after space is freed, --resume finishes the run and its curve equals an
  uninterrupted run's, bit for bit;
- leaving no room at all, with checkpoints off: the log flush fails the same way, naming log.h5,
  and the previous log.h5 and the step-0 checkpoint stay intact.
Run by CTest as: /usr/bin/python3 test_reliability_disk.py PATH/TO/sinklab_tests."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from harness import BIN, ENV, TINY, check, checkpoint_steps, finish, read_log, sinklab, verify_checkpoint


def fill(mnt, leave):
    """Fills the file system with a filler file, then gives back `leave` bytes."""
    path = os.path.join(mnt, "filler")
    with open(path, "wb", buffering=0) as f:  # unbuffered: nothing left to flush when the disk is full
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    if leave:
        os.truncate(path, max(0, os.path.getsize(path) - leave))
    return path


def wait_for(path, proc, seconds=60):
    end = time.time() + seconds
    while not os.path.exists(path) and proc.poll() is None and time.time() < end:
        time.sleep(0.005)
    return os.path.exists(path)


with tempfile.TemporaryDirectory() as tmp:
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt], capture_output=True, text=True)
    if m.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs here ({m.stderr.strip()}); the full-disk test needs root")
        sys.exit(0)
    try:
        common = ["train.steps=60", "train.checkpoint_every=1", "stats.flush_every=1000", "train.eval_every=7",
                  "train.checkpoint_log_spaced=false"]
        sinklab("train", TINY, f"run.dir={tmp}", "run.name=ref", *common)

        run = f"{mnt}/ckpt"
        # The disk is filled before the run starts, leaving room for three checkpoints and the log
        # (twice: the new one is written beside the old) but not a fourth checkpoint, so the write
        # fails at the same step however fast the machine is. The reference's sizes bound the run's.
        ref_ckpts = f"{tmp}/ref/checkpoints"
        ckpt = max(os.path.getsize(os.path.join(ref_ckpts, n)) for n in os.listdir(ref_ckpts))
        log_size = os.path.getsize(f"{tmp}/ref/log.h5")
        filler = fill(mnt, leave=3 * ckpt + 2 * log_size + 16 * 1024)
        p = subprocess.Popen([BIN, "train", TINY, f"run.dir={mnt}", "run.name=ckpt", *common],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        out, err = p.communicate(timeout=120)
        failed = max(checkpoint_steps(run)) + 1
        want = f"checkpoints/step_{failed:08d}.h5"
        check("checkpoint on a full disk: one message naming the file and 'disk full'",
              p.returncode == 1 and err.count("\n") == 1 and "disk full" in err and want in err, f"rc {p.returncode}: {err}")
        leftovers = [n for n in os.listdir(f"{run}/checkpoints") if n.endswith(".tmp")]
        check("no partial checkpoint is left, every earlier one verifies",
              not leftovers and all(verify_checkpoint(f"{run}/checkpoints/step_{s:08d}.h5") == s
                                    for s in checkpoint_steps(run)), leftovers)
        log = read_log(run)
        check("log.h5 reads, up to the failed step", log["train/loss"][0][-1] == failed, log["train/loss"][0])
        os.remove(filler)
        sinklab("train", "--resume", run)
        ref, got = read_log(f"{tmp}/ref"), read_log(run)
        check("after freeing space, --resume finishes a bit-identical curve",
              set(ref) == set(got) and all(np.array_equal(ref[n][0], got[n][0]) and np.array_equal(ref[n][1], got[n][1])
                                           for n in ref))

        run = f"{mnt}/log"
        p = subprocess.Popen([BIN, "train", TINY, f"run.dir={mnt}", "run.name=log", "train.steps=100000",
                              "train.checkpoint_every=0", "train.checkpoint_log_spaced=false", "stats.flush_every=1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        wait_for(f"{run}/log.h5", p)
        time.sleep(0.3)
        filler = fill(mnt, leave=0)
        out, err = p.communicate(timeout=120)
        check("log flush on a full disk: one message naming log.h5 and 'disk full'",
              p.returncode == 1 and err.count("\n") == 1 and "disk full" in err and f"{run}/log.h5" in err,
              f"rc {p.returncode}: {err}")
        log = read_log(run)
        steps = log["train/loss"][0]
        check("the previous log.h5 is intact and gap-free, the step-0 checkpoint verifies",
              len(steps) > 0 and np.array_equal(steps, np.arange(1, len(steps) + 1))
              and verify_checkpoint(f"{run}/checkpoints/step_00000000.h5") == 0
              and not [n for n in os.listdir(run) if n.endswith(".tmp")], steps)
        os.remove(filler)
    finally:
        subprocess.run(["umount", "-l", mnt])

finish()
