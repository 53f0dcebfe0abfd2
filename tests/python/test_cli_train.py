#!/usr/bin/python3
"""End-to-end checks of the sinklab binary on the tiny synthetic config:
- 2N steps in one go equal N steps + --resume + N steps exactly (loss curve, statistics, weights);
- the same config and seed give bit-identical curves;
- replay reproduces the statistics training logged at the checkpoint step;
- stats.source=train logs the same rows from the training forward without changing training, and
  the default (auto) takes it where the mask allows, the probe where not;
- bad configs, overrides and an existing run directory are refused with clear messages.
Run by CTest as: /usr/bin/python3 test_cli_train.py PATH/TO/sinklab_tests (sinklab is beside it)."""
import os
import tempfile

import h5py
import numpy as np

from harness import TINY, check, checkpoint_steps, finish, read_log, sinklab


def read(run, name):
    return read_log(run)[name]


with tempfile.TemporaryDirectory() as tmp:
    common = [f"run.dir={tmp}", "train.steps=24", "train.checkpoint_every=0", "train.eval_every=8"]
    probe = "stats.source=probe"  # replay reproduces the probe's rows
    sinklab("train", TINY, "run.name=full", *common, probe)
    sinklab("train", TINY, "run.name=split", *common, probe, "--stop-after", "12")
    r = sinklab("train", "--resume", f"{tmp}/split")
    check("resume reports the step it continues from", "resuming at step 12" in r.stdout, r.stdout)
    for name in ["train/loss", "train/grad_norm", "val/loss", "attn/alpha", "attn/sink_rate", "hidden/norm"]:
        (sa, a), (sb, b) = read(f"{tmp}/full", name), read(f"{tmp}/split", name)
        check(f"resume: {name} bit-identical", np.array_equal(sa, sb) and np.array_equal(a, b),
              f"steps {sa[:5]} vs {sb[:5]}, max diff {np.max(np.abs(a - b)) if a.shape == b.shape else a.shape}")
    with h5py.File(f"{tmp}/full/checkpoints/step_00000024.h5", "r") as fa, \
            h5py.File(f"{tmp}/split/checkpoints/step_00000024.h5", "r") as fb:
        same = all(np.array_equal(fa["tensors/param"][k], fb["tensors/param"][k]) for k in fa["tensors/param"])
        check("resume: final weights bit-identical", same)

    r = sinklab("train", "--resume", f"{tmp}/full")
    check("resuming a complete run says so and trains nothing",
          "is complete at step 24 (train.steps = 24); nothing to train" in r.stdout
          and read(f"{tmp}/full", "train/loss")[0][-1] == 24, r.stdout)

    sinklab("train", TINY, "run.name=again", *common, probe)
    check("determinism: same seed, same curve", np.array_equal(read(f"{tmp}/full", "train/loss")[1],
                                                               read(f"{tmp}/again", "train/loss")[1]))
    sinklab("train", TINY, "run.name=seed2", *common, "train.seed=7")
    check("a different seed gives a different curve", not np.array_equal(read(f"{tmp}/full", "train/loss")[1],
                                                                         read(f"{tmp}/seed2", "train/loss")[1]))

    sinklab("replay", f"{tmp}/full", "--every-checkpoint", "--save-maps", "1,1")
    with h5py.File(f"{tmp}/full/replay.h5", "r") as f:
        steps, alpha = np.asarray(f["attn/alpha_step"]), np.asarray(f["attn/alpha"])
        maps = np.asarray(f["maps/layer1_head1"])
    ls, la = read(f"{tmp}/full", "attn/alpha")
    i = list(ls).index(24)
    check("replay reproduces the logged statistics", steps[-1] == 24 and np.allclose(alpha[-1], la[i], atol=1e-6),
          f"{alpha[-1].ravel()[:4]} vs {la[i].ravel()[:4]}")
    check("replay maps are causal attention rows", np.allclose(maps[-1].sum(-1), 1, atol=1e-5)
          and np.all(np.triu(maps[-1][0], 1) == 0))

    # A corrupt checkpoint in the middle is skipped with a warning; the others are replayed.
    sinklab("train", TINY, "run.name=corrupt", *common, probe)
    bad = f"{tmp}/corrupt/checkpoints/step_00000004.h5"
    with open(bad, "r+b") as f:
        f.seek(os.path.getsize(bad) // 2)
        f.write(b"\xff" * 64)
    r = sinklab("replay", f"{tmp}/corrupt", "--every-checkpoint")
    with h5py.File(f"{tmp}/corrupt/replay.h5", "r") as f:
        replayed = list(np.asarray(f["attn/alpha_step"]))
    want = [s for s in checkpoint_steps(f"{tmp}/corrupt") if s != 4]
    check("replay skips a corrupt checkpoint with a warning and replays the rest",
          "warning: skipping unreadable checkpoint" in r.stderr and replayed == want
          and "skipped 1 unreadable: " + bad in r.stdout, f"{replayed} vs {want}\n{r.stdout}\n{r.stderr}")
    bad = f"{tmp}/corrupt/checkpoints/step_00000024.h5"
    with open(bad, "r+b") as f:
        f.seek(os.path.getsize(bad) // 2)
        f.write(b"\xff" * 64)
    r = sinklab("replay", f"{tmp}/corrupt")
    with h5py.File(f"{tmp}/corrupt/replay.h5", "r") as f:
        newest = list(np.asarray(f["attn/alpha_step"]))
    check("replay without --every-checkpoint takes the newest intact checkpoint", newest == [want[-2]], str(newest))

    sinklab("train", TINY, "run.name=extras", *common, "stats.source=both", "stats.maps=true",
            "stats.map_layers=[1]")
    with h5py.File(f"{tmp}/extras/log.h5", "r", locking=False) as f:
        names = set(f["maps"].keys())
        check("stats.maps keeps every head of the chosen layers only",
              names == {"layer1_head0", "layer1_head0_step", "layer1_head1", "layer1_head1_step"}, str(names))
        m = np.asarray(f["maps/layer1_head0"])
        check("probe maps are causal rows summing to one", m.shape[1:] == (2, 32, 32)
              and np.allclose(m[-1].sum(-1), 1, atol=1e-5) and np.all(np.triu(m[-1][0], 1) == 0), str(m.shape))
        ta = np.asarray(f["train_batch/attn/alpha_step"])
        check("stats.source=both logs train_batch/ statistics from step 1", ta[0] == 1 and ta[-1] == 24, str(ta[:3]))

    sinklab("train", TINY, "run.name=from_train", *common, "stats.source=train")
    (fl, fv), (tl, tv) = read(f"{tmp}/full", "train/loss"), read(f"{tmp}/from_train", "train/loss")
    check("stats.source=train leaves training bit-identical", np.array_equal(fv, tv))
    (ps, pa), (ts, ta) = read(f"{tmp}/full", "attn/alpha"), read(f"{tmp}/from_train", "attn/alpha")
    check("stats.source=train logs the probe's rows from step 1 (the weights before its update)",
          ts[0] == 1 and ts[-1] == 24 and pa.shape[1:] == ta.shape[1:] and np.all(np.isfinite(ta)),
          f"steps {ts[:3]}, shapes {pa.shape} {ta.shape}")
    r = sinklab("train", TINY, "run.name=bidir", *common, "stats.source=train", "attention.mask=bidirectional",
                expect=1)
    check("stats.source=train refuses a bidirectional mask", "use stats.source = probe" in r.stderr, r.stderr)
    r = sinklab("train", TINY, "run.name=auto", *common)
    check("stats.source=auto takes the training forward under a causal mask",
          "from the training forward's leading block (stats.source = auto)" in r.stdout
          and np.array_equal(read(f"{tmp}/auto", "attn/alpha")[1], ta), r.stdout)
    r = sinklab("train", TINY, "run.name=auto_bidir", *common, "attention.mask=bidirectional")
    check("stats.source=auto takes the probe under a bidirectional mask",
          "from a forward of the fixed probe batch" in r.stdout and read(f"{tmp}/auto_bidir", "attn/alpha")[0][0] == 0,
          r.stdout)

    r = sinklab("train", TINY, "run.name=full", *common, expect=1)
    check("an existing run is not overwritten", "already exists" in r.stderr, r.stderr)
    r = sinklab("train", TINY, "model.d_modle=64", expect=1)
    check("unknown key suggests the closest", "did you mean 'model.d_model'" in r.stderr, r.stderr)
    r = sinklab("train", TINY, "attention.kernel=softmaxx", f"run.dir={tmp}", expect=1)
    check("bad choice lists the valid ones", "sigmoid" in r.stderr, r.stderr)
    r = sinklab("train", "/nonexistent.yaml", expect=1)
    check("missing config file is named", "/nonexistent.yaml" in r.stderr, r.stderr)
    r = sinklab("train", TINY, "data.source=corpus", "data.dir=/nonexistent", f"run.dir={tmp}", "run.name=nodata",
                expect=1)
    check("missing prepared data says how to make it", "prepare-data" in r.stderr, r.stderr)
    r = sinklab("sample", f"{tmp}/full", "--tokens", "5", "--count", "1")
    check("sample prints text", "--- 1" in r.stdout, r.stdout)

finish()
