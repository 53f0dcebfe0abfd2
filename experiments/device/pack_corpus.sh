#!/bin/bash
# Packs the calibrated corpus (build/sinklab prepare-data --vocab 1024 --out data/cache/bpe1024) for
# a device call: .sweepwt/bpe1024/ with the training shard gzipped (96 MB -> about 35 MB, which with
# .debs fits the 64 MiB a call carries). experiments/device/batch.sh unpacks it there.
# usage: experiments/device/pack_corpus.sh [SRC_DIR]     (.sweepwt must be git-ignored: .git/info/exclude)
set -euo pipefail
src=${1:-data/cache/bpe1024}
mkdir -p .sweepwt/bpe1024
cp "$src/manifest.txt" "$src/tokenizer.txt" "$src/val_000.bin" .sweepwt/bpe1024/
gzip -c "$src/train_000.bin" > .sweepwt/bpe1024/train_000.bin.gz
du -sh .sweepwt/bpe1024
