#!/usr/bin/python3
"""`sinklab stats --list --json` declares every dataset tiny runs write: each dataset of log.h5
and replay.h5 of a decoder (with stats.source = both and maps), a sigmoid decoder with a kv-bias
slot and a sink token (proxy statistics, Sink_*), an MoE decoder and a ViT is in the listing, with
the declared shape resolved from the run's config. The text and Markdown listings name every
statistic too, and bad options are refused.
Run by CTest as: /usr/bin/python3 test_stats_listing.py PATH/TO/sinklab_tests (sinklab is beside it)."""
import os
import sys
import tempfile

from harness import BIN, ROOT, TINY, check, finish, sinklab

sys.path.insert(0, os.path.join(ROOT, "python"))
from sinklab_log import read_log, read_run, read_statistics  # noqa: E402

stats = read_statistics(BIN)
names = list(stats.by_name)
check("the listing parses and declares the core statistics",
      {"attn/alpha", "attn/sink_rate", "attn/proxy_sink_rate", "attn/slot_sink_rate", "train/loss"} <= set(names))
check("every axis of a shape is described", all(a in stats.axes for s in stats.by_name.values() for a in s["shape"]))
check("supersedes names declared statistics",
      all(s["supersedes"] in stats.by_name for s in stats.by_name.values() if s["supersedes"]))
check("the proxy supersedes the raw Sink_1", stats["attn/proxy_sink_rate"]["supersedes"] == "attn/sink_rate")

text = sinklab("stats", "--list").stdout
markdown = sinklab("stats", "--list", "--markdown").stdout
check("the text listing names every statistic", all(n in text for n in names))
check("the Markdown table has one row per statistic",
      [line.split("`")[1] for line in markdown.splitlines() if line.startswith("| `")] == names, markdown[:300])
r = sinklab("stats", "--list", "--xml", expect=1)
check("an unknown option is refused naming the valid ones", "--xml" in r.stderr and "--json" in r.stderr, r.stderr)
r = sinklab("stats", expect=1)
check("stats without --list says what to do", "--list" in r.stderr, r.stderr)


def axis_sizes(config):
    """The size of each axis in a run, from its config."""
    m, st, attn, vit = config["model"], config["stats"], config["attention"], config["vit"]
    if m["type"] == "vit":
        side = vit["image_size"] // vit["patch"]
        T, slots = 1 + vit["registers"] + side * side, 0
        rows = cols = vit["image_size"]
    else:
        T = min(st["probe_len"], m["context"]) + (1 if attn["sink_token"] else 0)
        slots, rows, cols = (1 if attn["kv_bias"] else 0), None, None
    experts, every = config["moe"]["experts"], config["moe"]["every"]
    return {"layers": m["n_layers"], "heads": m["n_heads"], "first_k": min(st["first_k"], T),
            "eps": len(st["eps"]), "tokens": T, "moe_blocks": m["n_layers"] // every if experts else 0,
            "experts": experts, "sequences": st["probe_batch"], "queries": T, "keys": slots + T,
            "rows": rows, "cols": cols, "top": 3}


def check_declared(label, path, config):
    sizes, undeclared, wrong = axis_sizes(config), [], []
    for name, (steps, values) in read_log(path).items():
        s = stats.find(name)
        if s is None:
            undeclared.append(name)
        elif values.shape[1:] != tuple(sizes[a] for a in s["shape"]):
            wrong.append(f"{name} {values.shape[1:]} vs {s['shape']}")
    check(f"{label}: every dataset of {os.path.basename(path)} is declared", not undeclared, undeclared)
    check(f"{label}: every dataset has its declared shape", not wrong, wrong)


with tempfile.TemporaryDirectory() as tmp:
    common = [f"run.dir={tmp}", "train.steps=4", "train.eval_every=2", "train.log_every=2"]
    variants = {
        "both": ["stats.source=both", "stats.maps=true", "stats.map_layers=[1]", "train.checkpoint_every=4"],
        "slots": ["attention.kernel=sigmoid", "attention.kv_bias=true", "attention.sink_token=true",
                  "stats.eps=[0.1,0.3]", "stats.first_k=40"],
        "moe": ["moe.experts=4", "moe.every=2"],
        "vit": ["model.type=vit", "model.preset=none", "data.source=synthetic_images", "vit.patch=7",
                "vit.registers=2", "stats.probe_batch=3"],
    }
    logged = set()
    for label, overrides in variants.items():
        sinklab("train", TINY, f"run.name={label}", *common, *overrides)
        run = read_run(f"{tmp}/{label}")
        logged |= set(run.series)
        check_declared(label, f"{tmp}/{label}/log.h5", run.config)
    sinklab("replay", f"{tmp}/both", "--save-maps", "0,1")
    check_declared("replay", f"{tmp}/both/replay.h5", read_run(f"{tmp}/both").config)
    check("the runs log the proxy statistics and Sink_*",
          {"attn/proxy_alpha", "attn/proxy_sink_rate", "attn/slot_sink_rate", "attn/proxy_slot_sink_rate",
           "train_batch/attn/alpha", "maps/layer1_head0", "moe/block", "vit/alpha"} <= logged, sorted(logged))
    check("reports read the proxy where it is logged",
          stats.reported("attn/sink_rate", read_run(f"{tmp}/slots").series) == "attn/proxy_sink_rate"
          and stats.reported("attn/sink_rate", read_run(f"{tmp}/both").series) == "attn/sink_rate")
finish()
