#!/usr/bin/env python3
"""Loads `sinklab export` directories with transformers and compares them with sinklab.

Not part of CTest: it needs transformers, tokenizers and PyTorch 2.x (works with transformers
4.x and 5.x), which the development machine lacks. Make the cases where sinklab is built, then
run this where transformers is installed:

    /usr/bin/python3 tests/python/test_export.py build/sinklab_tests --keep hf_cases
    python3 tests/device/check_transformers.py hf_cases

Each case of hf_cases/ holds export/ (what `sinklab export` wrote), tokens.npy [B, T] and
logits.npy [B, T, V] (sinklab's logits of those tokens), and for a corpus run texts.json
({name: {"text": ..., "ids": [...]}}, sinklab's ids). Checked per case:
  - AutoModelForCausalLM.from_pretrained(export) is the class config.json names and reads every
    tensor of model.safetensors (nothing missing, unexpected or of another shape);
  - its logits equal sinklab's to 1e-5 in float32 and in float64;
  - tokenizers.Tokenizer.from_file(tokenizer.json) and AutoTokenizer.from_pretrained(export)
    give sinklab's ids (BOS first when special tokens are added) and decode them back.
Prints one line per check and exits non-zero if any fails.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

TOLERANCE = 1e-5
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    results["passed" if ok else "failed"] += 1


def check_model(case, export, device):
    import transformers

    with open(os.path.join(export, "config.json")) as f:
        architecture = json.load(f)["architectures"][0]
    model, info = transformers.AutoModelForCausalLM.from_pretrained(export, output_loading_info=True)
    check(f"{case}: loads as {architecture}", type(model).__name__ == architecture, type(model).__name__)
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    check(f"{case}: every tensor read, none missing", not problems, problems)

    tokens = torch.from_numpy(np.load(os.path.join(case, "tokens.npy"))).long().to(device)
    expected = np.load(os.path.join(case, "logits.npy")).astype(np.float64)
    for dtype in (torch.float32, torch.float64):
        m = model.to(device=device, dtype=dtype).eval()
        with torch.no_grad():
            logits = m(input_ids=tokens).logits.double().cpu().numpy()
        diff = float(np.max(np.abs(logits - expected))) if logits.shape == expected.shape else float("inf")
        check(f"{case}: {str(dtype)[6:]} logits equal sinklab's (max |diff| {diff:.1e}, max |logit| "
              f"{np.max(np.abs(expected)):.1f})", diff <= TOLERANCE, f"shapes {logits.shape} vs {expected.shape}")


def check_tokenizer(case, export):
    import tokenizers
    import transformers

    with open(os.path.join(case, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    with open(os.path.join(export, "config.json")) as f:
        bos = json.load(f)["bos_token_id"]
    raw = tokenizers.Tokenizer.from_file(os.path.join(export, "tokenizer.json"))
    auto = transformers.AutoTokenizer.from_pretrained(export)
    check(f"{case}: AutoTokenizer's BOS is the model's", auto.bos_token_id == bos, (auto.bos_token_id, bos))
    for name, t in texts.items():
        text, ids = t["text"], t["ids"]
        got = raw.encode(text, add_special_tokens=False).ids
        check(f"{case}: tokenizers encodes '{name}' as sinklab ({len(ids)} ids)", got == ids,
              f"first difference at {next((i for i, (a, b) in enumerate(zip(got, ids)) if a != b), min(len(got), len(ids)))}")
        check(f"{case}: tokenizers adds BOS in front of '{name}'", raw.encode(text).ids == [bos] + ids)
        check(f"{case}: tokenizers decodes '{name}' back", raw.decode(ids) == text, repr(raw.decode(ids)[:80]))
        got = auto(text, add_special_tokens=False)["input_ids"]
        check(f"{case}: AutoTokenizer encodes '{name}' as sinklab", got == ids)
        check(f"{case}: AutoTokenizer decodes '{name}' back", auto.decode(ids) == text, repr(auto.decode(ids)[:80]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", help="directory written by test_export.py --keep")
    parser.add_argument("--device", default="cpu", help="torch device for the forward passes (default cpu)")
    args = parser.parse_args()
    import tokenizers
    import transformers

    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"tokenizers {tokenizers.__version__}, numpy {np.__version__}")
    cases = sorted(d for d in os.listdir(args.cases) if os.path.isdir(os.path.join(args.cases, d, "export")))
    check("cases found", bool(cases), f"no case directories with export/ in {args.cases}")
    for name in cases:
        case = os.path.join(args.cases, name)
        export = os.path.join(case, "export")
        try:
            check_model(case, export, args.device)
            if os.path.exists(os.path.join(case, "texts.json")):
                check_tokenizer(case, export)
        except Exception as e:  # a case that cannot load is a failure, not an abort
            check(f"{case}: runs", False, f"{type(e).__name__}: {e}")
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
