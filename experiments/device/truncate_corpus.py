#!/usr/bin/python3
"""Copies a prepared corpus directory with its train shard cut to N tokens (the device machine has
no corpora and takes at most 64 MiB of carried files).
  /usr/bin/python3 experiments/device/truncate_corpus.py SRC_DIR DST_DIR TRAIN_TOKENS"""
import os
import shutil
import sys

import numpy as np


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst, exist_ok=True)
lines = []
for line in open(os.path.join(src, "manifest.txt")).read().splitlines():
    if line.startswith("shard: train"):
        _, split, name, tokens, nbytes, _ = line.split()
        token_bytes = int(nbytes) // int(tokens)
        data = open(os.path.join(src, name), "rb").read()[: n * token_bytes]
        open(os.path.join(dst, name), "wb").write(data)
        line = f"shard: {split} {name} {len(data) // token_bytes} {len(data)} {fnv1a64(data):016x}"
    elif line.startswith("shard: val"):
        shutil.copy(os.path.join(src, line.split()[2]), dst)
    elif line.startswith("stat.tokens.train"):
        line = f"stat.tokens.train: {n}"
    lines.append(line)
shutil.copy(os.path.join(src, "tokenizer.txt"), dst)
open(os.path.join(dst, "manifest.txt"), "w").write("\n".join(lines) + "\n")
