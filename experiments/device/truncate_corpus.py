#!/usr/bin/python3
"""Copies a prepared corpus directory with its train shard cut to N tokens (the device machine has
no corpora and takes at most 64 MiB of carried files), and its corpus.txt cut to the validation
documents, which keep their sources (what `sinklab analyze --intervene head-domain` reads).
  /usr/bin/python3 experiments/device/truncate_corpus.py SRC_DIR DST_DIR TRAIN_TOKENS"""
import os
import shutil
import sys

import numpy as np


def fnv1a64(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def validation_corpus(src, dst, val_fraction):
    """corpus.txt (data/corpus_file.h) with only the documents prepare() put in validation
    (data/prepare.cpp: fnv1a64(text) % 10^6 < val_fraction * 10^6), in their order."""
    raw = open(src, "rb").read()
    header, pos = raw[: raw.index(b"\n") + 1], raw.index(b"\n") + 1
    out, count, h = [header], 0, fnv1a64(b"")
    while raw.startswith(b"doc ", pos):
        eol = raw.index(b"\n", pos)
        nbytes = int(raw[pos:eol].split(b" ")[2])
        text = raw[eol + 1: eol + 1 + nbytes]
        if fnv1a64(text) % 1000000 < val_fraction * 1000000:
            out += [raw[pos: eol + 1], text, b"\n"]
            count, h = count + 1, fnv1a64(text, h)
        pos = eol + 1 + nbytes + 1
    out.append(f"end {count} {h:x}\n".encode())
    open(dst, "wb").write(b"".join(out))


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
if os.path.exists(os.path.join(src, "corpus.txt")):
    val_fraction = next(float(l.split(": ")[1]) for l in lines if l.startswith("stat.val_fraction"))
    validation_corpus(os.path.join(src, "corpus.txt"), os.path.join(dst, "corpus.txt"), val_fraction)
open(os.path.join(dst, "manifest.txt"), "w").write("\n".join(lines) + "\n")
