#!/usr/bin/python3
"""Crash safety of `sinklab train`, end to end on configs/tiny.yaml:
- KILL_TRIALS times, a run with a checkpoint and an HDF5 log flush at every step (so that much of
  its time is spent writing them) is killed with SIGKILL at a random moment and then continued
  with --resume. After every kill: the newest checkpoint is complete (every checksum verified
  with h5py + zlib), log.h5 opens with h5py, holds every step from 0 up to at least that
  checkpoint without a gap, and every row equals the uninterrupted run's bit for bit. Kills that
  landed while a checkpoint or the log was being written (a *.tmp left behind) are counted.
- At the end the resumed run's whole log and final weights equal the uninterrupted run's.
- SIGTERM and SIGINT stop a run with a checkpoint at the step reached and the log flushed to it.
Run by CTest as: /usr/bin/python3 test_kill_resume.py PATH/TO/sinklab_tests."""
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import h5py
import numpy as np

from harness import BIN, ENV, TINY, check, checkpoint_steps, finish, read_log, sinklab, verify_checkpoint

KILL_TRIALS = 24
STEPS = 800
rng = random.Random(8)

with tempfile.TemporaryDirectory() as tmp:
    common = [f"run.dir={tmp}", f"train.steps={STEPS}", "train.checkpoint_every=1", "stats.every=1",
              "stats.flush_every=1", "train.eval_every=7", "train.log_every=50"]
    t0 = time.time()
    sinklab("train", TINY, "run.name=ref", *common)
    ref_seconds = time.time() - t0
    ref = read_log(f"{tmp}/ref")
    print(f"uninterrupted run: {STEPS} steps in {ref_seconds:.1f} s", flush=True)

    run = f"{tmp}/victim"
    kills = mid_write = 0
    problems = []
    # Kill delays scale with this machine's speed, so the victim is still running when most land.
    pace = min(1.0, max(0.2, ref_seconds / 10))
    trial = -1
    while kills < KILL_TRIALS and trial < 3 * KILL_TRIALS:
        trial += 1
        started = os.path.exists(f"{run}/config.yaml")
        if not started:
            shutil.rmtree(run, ignore_errors=True)  # killed before config.yaml: not a run yet
        args = ["train", "--resume", run] if started else ["train", TINY, "run.name=victim", *common]
        p = subprocess.Popen([BIN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        # Short delays stress start-up (the step-0 checkpoint, resume), longer ones the steady state.
        time.sleep(pace * (rng.uniform(0.05, 0.35) if trial % 3 == 0 else rng.uniform(0.25, 0.9)))
        if p.poll() is not None:
            if p.returncode != 0:
                problems.append(f"trial {trial}: exited {p.returncode} before the kill: {p.stderr.read().decode()}")
                break
            shutil.rmtree(run)  # it finished first: kill a fresh run instead
            continue
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        # A kill during start-up can come before the run directory (or its checkpoints/) exists.
        leftovers = [n for d in (f"{run}/checkpoints", run) if os.path.isdir(d)
                     for n in os.listdir(d) if n.endswith(".tmp")]
        mid_write += bool(leftovers)
        steps = checkpoint_steps(run)
        if not steps and not os.path.exists(f"{run}/log.h5"):
            print(f"trial {trial:2d}: killed during start-up, before the log existed", flush=True)
            continue  # the next trial starts it again
        try:
            newest = verify_checkpoint(f"{run}/checkpoints/step_{steps[-1]:08d}.h5") if steps else -1
            log = read_log(run)
            loss_steps = log["train/loss"][0] if "train/loss" in log else np.zeros(0, np.int64)
            contiguous = np.array_equal(loss_steps, np.arange(1, len(loss_steps) + 1))
            covers = len(loss_steps) >= newest
            same = all(np.array_equal(s, ref[n][0][:len(s)]) and np.array_equal(v, ref[n][1][:len(v)])
                       for n, (s, v) in log.items())
            print(f"trial {trial:2d}: killed at step ~{len(loss_steps)}, newest checkpoint {newest}"
                  f"{', mid-write: ' + ', '.join(leftovers) if leftovers else ''}", flush=True)
            if not (contiguous and covers and same):
                problems.append(f"trial {trial}: log contiguous={contiguous} covers checkpoint={covers} "
                                f"equals reference={same}")
        except Exception as e:  # an unreadable checkpoint or log
            problems.append(f"trial {trial}: {type(e).__name__}: {e}")
    check(f"{kills} SIGKILLs: newest checkpoint loads, log.h5 readable, gap-free and equal to the reference",
          kills >= 20 and not problems, "; ".join(problems))
    print(f"kills that landed during a checkpoint or log write: {mid_write} of {kills}", flush=True)

    r = sinklab("train", "--resume", run, timeout=300)
    final = read_log(run)
    diffs = [n for n in ref if n not in final or not (np.array_equal(ref[n][0], final[n][0])
                                                      and np.array_equal(ref[n][1], final[n][1]))]
    check("after the kills, --resume completes a curve bit-identical to the uninterrupted run",
          not diffs and set(final) == set(ref), f"differs: {diffs}, names {sorted(set(final) ^ set(ref))}")
    with h5py.File(f"{tmp}/ref/checkpoints/step_{STEPS:08d}.h5", "r") as fa, \
            h5py.File(f"{run}/checkpoints/step_{STEPS:08d}.h5", "r") as fb:
        check("final weights bit-identical", all(np.array_equal(fa["tensors/param"][k], fb["tensors/param"][k])
                                                 for k in fa["tensors/param"]))

    for sig, name in [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")]:
        run = f"{tmp}/{name}"
        p = subprocess.Popen([BIN, "train", TINY, f"run.name={name}", *common, "train.checkpoint_every=0",
                              "train.checkpoint_log_spaced=false", "stats.flush_every=1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        # Signal once training is under way (its first progress line), however fast the machine.
        first = p.stdout.readline()
        while first and not first.startswith("step "):
            first = p.stdout.readline()
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        m = re.search(r"stopped at step (\d+) by signal", out)
        step = int(m.group(1)) if m else -1
        ok = p.returncode == 0 and step > 0 and checkpoint_steps(run) == [0, step]
        check(f"{name}: stops with a checkpoint at the step reached", ok,
              f"rc {p.returncode}, step {step}, checkpoints {checkpoint_steps(run)}, {out[-300:]} {err}")
        if ok:
            log = read_log(run)
            check(f"{name}: checkpoint complete, log flushed up to it (flush_every=1000 notwithstanding)",
                  verify_checkpoint(f"{run}/checkpoints/step_{step:08d}.h5") == step
                  and log["train/loss"][0][-1] == step and log["attn/alpha"][0][-1] == step
                  and np.array_equal(log["train/loss"][1], ref["train/loss"][1][:step]))

finish()
