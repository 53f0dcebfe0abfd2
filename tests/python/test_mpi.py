#!/usr/bin/python3
"""Data-parallel training: `mpirun -np 2 sinklab train` gives the loss curve of one process with
the same global batch and micro-batch (within 1e-5 relative; without train.micro_batch each rank
takes its even share of the batch), only rank 0 writes the run, and a data-parallel run resumes.
`sinklab bench` under mpirun trains its rows data-parallel and rank 0 alone prints them. Gradients are summed in buckets during the backward: many small buckets
give the same curve as one, bit for bit. A non-finite loss on any rank stops every rank at that
step (no rank hangs in a collective). Run by CTest as: /usr/bin/python3 test_mpi.py PATH/TO/sinklab_tests."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from harness import BIN, TINY, check, finish

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
       "OMPI_MCA_rmaps_base_oversubscribe": "1"}
def run(cmd, expect=0):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    if expect is not None and (r.returncode != 0) != (expect != 0):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def losses(run_dir):
    with h5py.File(os.path.join(run_dir, "log.h5"), "r", locking=False) as f:
        return np.asarray(f["train/loss"]), np.asarray(f["train/grad_norm"])


if shutil.which("mpirun") is None:
    print("SKIP: mpirun not installed (scripts/setup.sh installs openmpi-bin)")
    finish()

r = run(["mpirun", "-np", "2", os.path.abspath(sys.argv[1]), "[mpi]"], expect=None)
check("GradientReducer: ranks reporting gradients in different orders, or none, sum every bucket",
      r.returncode == 0 and r.stdout.count("All tests passed") == 2, r.stdout + r.stderr)

with tempfile.TemporaryDirectory() as tmp:
    common = [TINY, f"run.dir={tmp}", "train.steps=16", "train.batch_size=8", "train.micro_batch=2",
              "train.checkpoint_every=8", "train.eval_every=8"]
    run([BIN, "train", *common, "run.name=single"])
    mpi = ["mpirun", "-np", "2", BIN]
    run([*mpi, "train", *common, "run.name=mpi"])
    (l1, g1), (l2, g2) = losses(f"{tmp}/single"), losses(f"{tmp}/mpi")
    rel = np.max(np.abs(l1 - l2) / np.abs(l1))
    check("mpirun -np 2 loss curve equals one process within 1e-5", l1.shape == l2.shape and rel < 1e-5, f"{rel}")
    check("gradient norms agree too", np.max(np.abs(g1 - g2) / np.abs(g1)) < 1e-4)
    check("only rank 0 wrote the run", sorted(os.listdir(f"{tmp}/mpi")) == sorted(os.listdir(f"{tmp}/single")),
          str(os.listdir(f"{tmp}/mpi")))

    # train.micro_batch 0: each of the 2 ranks takes 4 of the 8 sequences, as one process does with 4.
    even = [c for c in common if not c.startswith("train.micro_batch")]
    run([BIN, "train", *even, "train.micro_batch=4", "run.name=single4"])
    run([*mpi, "train", *even, "run.name=even"])
    (l5, _), (l6, _) = losses(f"{tmp}/single4"), losses(f"{tmp}/even")
    check("no train.micro_batch: each rank an even share, the curve of one process with that micro-batch",
          l5.shape == l6.shape and np.max(np.abs(l5 - l6) / np.abs(l5)) < 1e-5)

    r = run([*mpi, "train", *common, "run.name=buckets", "train.allreduce_bucket_kb=4"])
    m = re.search(r"gradients summed in (\d+) buckets", r.stdout)
    check("4 KiB buckets: the tiny model's gradients go in many buckets", m is not None and int(m.group(1)) > 8,
          r.stdout)
    l4, g4 = losses(f"{tmp}/buckets")
    check("... and the curve is the one-bucket curve, bit for bit", np.array_equal(l2, l4) and np.array_equal(g2, g4))

    # SGD at lr 10 from init std 10 overflows within a few steps (as in test_reliability_nan.py); without
    # statistics and evaluation (rank 0's alone) the first fault is a loss, on one rank or both.
    diverge = ["train.lr=10", "train.warmup=0", "train.optimizer=sgd", "train.grad_clip=0", "model.init_std=10",
               "stats.every=0", "train.eval_every=0", "train.allreduce_bucket_kb=4"]
    r = run([*mpi, "train", *common, *diverge, "run.name=nan"], expect=1)
    m = re.search(r"non-finite loss at step (\d+)", r.stderr)
    check("a non-finite loss stops every rank, naming the step", m is not None, r.stderr)
    nan_loss, _ = losses(f"{tmp}/nan")
    check("... and the log ends finite at the step before", m is not None and len(nan_loss) == int(m.group(1)) - 1
          and np.all(np.isfinite(nan_loss)), nan_loss)

    run([*mpi, "train", *common, "run.name=split", "--stop-after", "8"])
    run([*mpi, "train", "--resume", f"{tmp}/split"])
    l3, _ = losses(f"{tmp}/split")
    check("a data-parallel run resumes onto the same curve", np.array_equal(l2, l3),
          f"{np.max(np.abs(l2 - l3)) if l2.shape == l3.shape else (l2.shape, l3.shape)}")

out = run(["mpirun", "-np", "2", "--bind-to", "none", BIN, "bench", "--shapes", "calibrated", "--attn", "softmax",
           "--steps", "1", "--threads", "1", "--no-torch"]).stdout
rows = [l for l in out.splitlines() if "| calibrated | softmax | f32 |" in l]
peaks = re.findall(r"threads 2x1, oneDNN matmul peak \(2048\^3, fp32 result, summed over the processes\): f32 (\d+)", out)
# The row is against the mean of the summed peaks measured just before and just after it.
around = re.fullmatch(r"(\d+), (\d+)-(\d+)", rows[0].split("|")[8].strip()) if len(rows) == 1 else None
check("bench under mpirun: one table from rank 0, its row labelled 2x1 against the summed peak",
      len(rows) == 1 and rows[0].startswith("| 2x1 |") and len(peaks) == 1 and int(peaks[0]) > 0 and around and
      abs(float(rows[0].split("|")[7].strip().rstrip("%")) - 100 * float(rows[0].split("|")[6]) / int(around[1])) < 1,
      out)

finish()
