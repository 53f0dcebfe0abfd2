#!/usr/bin/python3
"""End-to-end checks of `sinklab analyze` on tiny runs trained here (configs/tiny.yaml, seconds):
- streaming with a window covering the stream is the full forward: on the same validation windows
  its perplexity is exp of the held-out loss the interventions measure through a full forward;
- the rows of every intervention have the documented shapes; every checkpoint is analysed in step
  order; a second analysis keeps the datasets it does not measure again;
- head-domain on a two-source corpus run: one map per source, dormant exactly where the stated
  thresholds put it;
- bad input (k >= W, W beyond the context or the streams, unknown names, interventions that do
  not apply, a ViT, a run without checkpoints) is refused naming what is wrong and what is valid,
  and leaves the run directory as it was;
- the plot script draws the figures.
Run by CTest as: /usr/bin/python3 test_cli_analyze.py PATH/TO/sinklab_tests (sinklab is beside it)."""
import hashlib
import os
import shutil
import subprocess
import tempfile

import h5py
import numpy as np

from harness import ROOT, TINY, check, checkpoint_steps, finish, sinklab, sinklab_log


def train(tmp, name, *overrides):
    sinklab("train", TINY, f"run.dir={tmp}", f"run.name={name}", *overrides)
    return f"{tmp}/{name}"


def snapshot(run):
    """Every file of the run directory with a hash of its bytes."""
    out = {}
    for root, _, files in os.walk(run):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, run)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def analysis(run):
    return sinklab_log.read_log(f"{run}/analysis.h5")


def refused(what, run, args, needle):
    before = snapshot(run)
    r = sinklab("analyze", run, *args, expect=1)
    check(f"refused: {what}", needle in r.stderr and snapshot(run) == before,
          f"stderr: {r.stderr!r}; changed: {set(snapshot(run).items()) ^ set(before.items())}")


with tempfile.TemporaryDirectory() as tmp:
    run = train(tmp, "tiny")
    before = snapshot(run)
    r = sinklab("analyze", run, "--streaming", "W=32,k=0;W=32,k=4", "--length", "32", "--streams", "4",
                "--windows", "4", "--intervene", "all")
    after = snapshot(run)
    check("analyze adds analysis.h5 and changes nothing else",
          set(after) - set(before) == {"analysis.h5"} and all(after[k] == before[k] for k in before),
          f"{sorted(set(after) ^ set(before))}")
    check("head-domain is skipped under 'all' on a synthetic run, saying why",
          "skipping head-domain: it needs a run on the prepared corpus" in r.stdout, r.stdout)
    a = analysis(run)
    last = checkpoint_steps(run)[-1]
    loss = a["intervene/loss"]
    check("the newest checkpoint is analysed", list(loss.steps) == [last], loss.steps)
    full, sinks = a["streaming/W32_k0/nll"].values[0], a["streaming/W32_k4/nll"].values[0]
    ppl = a["streaming/W32_k0/ppl"].values[0]
    check("streaming with W covering the stream equals the full forward (exp held-out loss)",
          np.isclose(ppl, np.exp(loss.values[0]), rtol=1e-5) and full.shape == (32,), f"{ppl} vs {np.exp(loss.values[0])}")
    check("keeping sinks changes nothing while W covers the stream", np.allclose(full, sinks, atol=1e-6))
    check("ppl_beyond is NaN when no position is beyond W", np.isnan(a["streaming/W32_k0/ppl_beyond"].values[0]))
    L, H = 2, 2
    shapes = {"sink-attention-kept/head": (L, H), "sink-attention-rescaled/layer": (L,), "sink-value-zero/all": (),
              "sink-value-mean/head": (L, H), "head-zero/head": (L, H), "massive-zero/block": (L,),
              "massive-mean/block": (L,), "first-token-remove/loss_change": (), "first-token-remove/first_attention": (L, H),
              "first-token-replace/base_first_attention": (L, H)}
    bad = {n: a.get("intervene/" + n) for n in shapes
           if "intervene/" + n not in a or a["intervene/" + n].values.shape[1:] != shapes[n]}
    check("every intervention writes rows of the documented shapes", not bad, bad)
    check("interventions measure finite loss changes",
          all(np.isfinite(a["intervene/" + n].values).all() for n in shapes), "")
    with h5py.File(f"{run}/analysis.h5", "r") as f:
        replacement = int(f.attrs["first_token_replacement"])
    check("the replacement token is named in the file", 0 <= replacement < 64, replacement)

    # Every checkpoint, in step order; the datasets of the first analysis stay.
    r = sinklab("analyze", run, "--every-checkpoint", "--streaming", "W=8,k=2", "--length", "64", "--streams", "2")
    a = analysis(run)
    steps = checkpoint_steps(run)
    s = a["streaming/W8_k2/ppl_beyond"]
    check("--every-checkpoint analyses every checkpoint in step order",
          list(s.steps) == steps and np.isfinite(s.values).all() and a["streaming/W8_k2/nll"].values.shape == (len(steps), 64),
          f"{list(s.steps)} vs {steps}")
    check("datasets not measured again are kept", "intervene/loss" in a and list(a["intervene/loss"].steps) == [last])
    check("the progress line has an ETA", "ETA" in r.stdout, r.stdout[-300:])
    r = sinklab("analyze", run, "--step", str(steps[0]), "--intervene", "sink-attention")
    a = analysis(run)
    check("--step N analyses that checkpoint and a group names its variants",
          list(a["intervene/sink-attention-kept/head"].steps) == [steps[0]]
          and list(a["intervene/sink-attention-rescaled/head"].steps) == [steps[0]]
          and list(a["intervene/sink-value-zero/head"].steps) == [last], "")

    # Bad input.
    refused("k >= W", run, ["--streaming", "W=4,k=4"], "k must be smaller than W")
    refused("a window beyond the context", run, ["--streaming", "W=64"], "valid: W <= 32")
    refused("a window longer than the streams", run, ["--streaming", "W=32", "--length", "16"],
            "the window is longer than the streams (--length 16 tokens); valid: W <= 16")
    refused("a malformed streaming setting", run, ["--streaming", "W=8,sinks=2"], "--streaming wants W=SIZE,k=SINKS")
    refused("an unknown intervention", run, ["--intervene", "sink-foo"],
            "no intervention 'sink-foo'; valid: sink-attention-kept, sink-attention-rescaled")
    refused("head-domain without corpus sources", run, ["--intervene", "head-domain"],
            "--intervene head-domain does not apply to " + run + ": it needs a run on the prepared corpus")
    refused("too many massive channels", run, ["--intervene", "massive", "--massive-k", "99"],
            "valid: 1 to d_model = 32")
    refused("a block beyond the model", run, ["--intervene", "massive-zero", "--massive-block", "2"],
            "the model has blocks 0 to 1")
    refused("a replacement beyond the vocabulary", run, ["--intervene", "first-token-replace", "--replacement", "999"],
            "is not a token; valid: 0 to")
    refused("a missing checkpoint step", run, ["--step", "3", "--intervene", "head-zero"], "has no checkpoint of step 3")
    refused("nothing asked", run, [], "nothing to analyze: give --streaming and/or --intervene")
    refused("an unknown option", run, ["--streams", "2", "--frobnicate", "1"], "unknown option '--frobnicate'")

    kv_zero = train(tmp, "kv_zero", "attention.kv_bias=true", "attention.kv_bias_value=zero")
    refused("a kv-bias slot whose value is fixed at zero", kv_zero, ["--intervene", "sink-value"],
            "no value vector to ablate")
    r = sinklab("analyze", kv_zero, "--intervene", "sink-value-mean,first-token-remove", "--windows", "4")
    a = analysis(kv_zero)
    check("with a kv-bias slot the first-token change reports the slot's attention",
          a["intervene/first-token-remove/own_sink_attention"].values.shape == (1, L, H)
          and (a["intervene/first-token-remove/own_sink_attention"].values > 0).all(), "")
    prefix = train(tmp, "prefix", "attention.mask=prefix", "attention.prefix_len=4")
    refused("streaming a model whose queries see later keys", prefix, ["--streaming", "W=8"],
            "--streaming needs a causal or sliding mask")
    empty = f"{tmp}/empty"
    os.makedirs(empty)
    shutil.copy(f"{run}/config.yaml", empty)
    refused("a run without checkpoints", empty, ["--intervene", "all"], "has no checkpoints")
    vit = f"{tmp}/vit"
    os.makedirs(f"{vit}/checkpoints")
    shutil.copy(os.path.join(ROOT, "configs", "vit.yaml"), f"{vit}/config.yaml")
    open(f"{vit}/checkpoints/step_00000001.h5", "w").close()
    refused("a ViT", vit, ["--intervene", "sink-attention"], "analyze needs a language model (model.type = decoder)")

    # head-domain on a corpus of two sources.
    corpus = f"{tmp}/corpus"
    sinklab("prepare-data", "--out", corpus, "--vocab", "300", "--sources", "brown,kjv", "--val-fraction", "0.1",
            timeout=300)
    text = train(tmp, "text", "data.source=corpus", f"data.dir={corpus}", "model.vocab_size=0")
    sinklab("analyze", text, "--intervene", "head-domain", "--windows", "3", "--dormant-loss", "0.02",
            "--dormant-sink", "0.3")
    a = analysis(text)
    with h5py.File(f"{text}/analysis.h5", "r") as f:
        sources = f.attrs["head_domain_sources"].decode().split(",")
    change, sink = a["intervene/head-domain/loss_change"].values[0], a["intervene/head-domain/sink_attention"].values[0]
    dormant = a["intervene/head-domain/dormant"].values[0]
    check("head-domain maps every head of every source", sources == ["brown", "kjv"] and change.shape == (2, L, H)
          and a["intervene/head-domain/loss"].values.shape == (1, 2), f"{sources} {change.shape}")
    check("dormant exactly where |loss change| < X and the sink's attention > Y",
          np.array_equal(dormant, ((np.abs(change) < 0.02) & (sink > 0.3)).astype(np.float32)), f"{dormant} {change} {sink}")
    check("attention on the sink is a share of the row", ((sink > 0) & (sink <= 1 + 1e-6)).all(), sink)

    # The plots, into another directory.
    plots = f"{tmp}/plots"
    p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "plot_analysis.py"), run, "--out", plots],
                       capture_output=True, text=True)
    p2 = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "plot_analysis.py"), text, "--out", plots],
                        capture_output=True, text=True)
    want = {"streaming.png", "interventions.png", "first_token.png", "head_domain.png"}
    check("the plot script draws the figures", p.returncode == 0 and p2.returncode == 0
          and want <= set(os.listdir(plots)), p.stderr + p2.stderr)
finish()
