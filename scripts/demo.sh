#!/usr/bin/env bash
# The main job on the bundled default: set up (idempotent), build, prepare the corpus, train
# the default LLaMA-style decoder for a few minutes, sample text and plot the sink statistics.
# Extra arguments are config overrides for the training run (e.g. train.steps=100).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
scripts/build.sh
build/sinklab prepare-data --out data/cache/default
build/sinklab train configs/default.yaml run.name=demo run.overwrite=true train.steps=300 train.eval_every=50 "$@"
build/sinklab sample runs/demo --count 3 --tokens 60
build/sinklab replay runs/demo --save-maps 0,0
/usr/bin/python3 scripts/plot_sinks.py runs/demo
