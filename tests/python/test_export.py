#!/usr/bin/python3
"""Checks of `sinklab export` on tiny runs it trains here (a corpus run with a BPE tokenizer, the
two presets with their options, a model transformers cannot express):
- model.safetensors read by the few lines of numpy below (not by sinklab or the safetensors
  package): header, dtypes, offsets that tile the data;
- its tensors, read with the conventions of their names (transformers' Llama: nn.Linear and
  rotate_half RoPE; GPT-2: Conv1D [in, out] and a fused c_attn; sinklab's own names otherwise),
  and config.json's or sinklab_config.json's values drive the PyTorch reference decoder of
  test_torch_crosscheck.py; its logits equal sinklab's (tests/test_export_reference.cpp) to 1e-5;
- tokenizer.json applied as `tokenizers` applies it (ByteLevel symbols, the Split regex, BPE by
  merge rank, the BOS template) gives sinklab's ids for awkward texts, and decodes back;
- bad input (no checkpoints, a step without one, an existing --out, a corrupted checkpoint, ...)
  exits non-zero with a message naming the problem, and leaves neither DIR nor DIR.tmp.
Run by CTest as: /usr/bin/python3 test_export.py PATH/TO/sinklab_tests [--keep DIR]
--keep DIR also writes the transformers cases for tests/device/check_transformers.py into DIR."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

from harness import ENV, TINY, check, finish, sinklab
import test_torch_crosscheck as ref

TOLERANCE = 1e-5  # max |logit difference|
TESTS = os.path.abspath(sys.argv[1])
KEEP = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None


def read_safetensors(path):
    """name -> float32 array, and the metadata; asserts the format's rules."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    assert (8 + n) % 8 == 0, "data not 8-byte aligned"
    meta = header.pop("__metadata__", {})
    spans, arrays = [], {}
    for name, t in header.items():
        assert t["dtype"] == "F32", f"{name}: dtype {t['dtype']}"
        begin, end = t["data_offsets"]
        assert end - begin == 4 * int(np.prod(t["shape"], dtype=np.int64)), f"{name}: offsets do not fit its shape"
        arrays[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(t["shape"])
        spans.append((begin, end))
    spans.sort()
    assert spans[0][0] == 0 and spans[-1][1] == len(data), "data not covered exactly"
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "gaps or overlaps between tensors"
    return arrays, meta


def hf_rope(x, theta):
    """transformers' Llama RoPE: (x[i], x[i + Dh/2]) turns by t * theta^(-2i/Dh) (rotate_half)."""
    T, Dh = x.shape[1], x.shape[3]
    i = torch.arange(Dh // 2, dtype=torch.float64)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-2 * i / Dh)
    angle = torch.cat([angle, angle], -1)[None, :, None, :]
    rotated = torch.cat([-x[..., Dh // 2:], x[..., :Dh // 2]], -1)
    return x * torch.cos(angle) + rotated * torch.sin(angle)


DEFAULTS = {"kernel": "softmax", "mask": "causal", "norm_placement": "pre", "qk_norm": "0", "kv_bias": "0",
            "value_bias": "0", "gate": "none", "off_by_one": "0", "sink_logit": "0", "sink_token": "0"}


def flag(v):
    return "1" if v else "0"


def from_llama(c, t):
    """The reference decoder's config and parameters from transformers' Llama names."""
    cfg = dict(DEFAULTS, norm="rmsnorm", pos="rope", ffn="swiglu", d_model=c["hidden_size"], n_heads=c["num_attention_heads"],
               norm_eps=c["rms_norm_eps"], rope_theta=c["rope_theta"], bias=flag(c["attention_bias"]),
               tie_embeddings=flag(c["tie_word_embeddings"]), n_layers=c["num_hidden_layers"])
    assert c["mlp_bias"] == c["attention_bias"] and c["num_key_value_heads"] == c["num_attention_heads"]
    P = {"wte": t["model.embed_tokens.weight"], "final_norm.weight": t["model.norm.weight"]}
    names = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2", "self_attn.q_proj": "attn.wq",
             "self_attn.k_proj": "attn.wk", "self_attn.v_proj": "attn.wv", "self_attn.o_proj": "attn.wo",
             "mlp.gate_proj": "ffn.w1", "mlp.up_proj": "ffn.w3", "mlp.down_proj": "ffn.w2"}
    for l in range(c["num_hidden_layers"]):
        for hf, ours in names.items():
            stem = f"model.layers.{l}.{hf}"
            if ours.startswith("norm"):
                P[f"blocks.{l}.{ours}.weight"] = t[stem + ".weight"]
                continue
            P[f"blocks.{l}.{ours}"] = t[stem + ".weight"]
            if c["attention_bias"]:
                P[f"blocks.{l}.{ours[:-2]}{ours[-2:].replace('w', 'b')}"] = t[stem + ".bias"]
    if not c["tie_word_embeddings"]:
        P["lm_head"] = t["lm_head.weight"]
    return cfg, P, hf_rope


def from_gpt2(c, t):
    """The same from transformers' GPT-2 names: Conv1D weights are [in, out], c_attn is q | k | v."""
    D = c["n_embd"]
    cfg = dict(DEFAULTS, norm="layernorm", pos="learned", ffn="gelu", d_model=D, n_heads=c["n_head"], bias="1",
               norm_eps=c["layer_norm_epsilon"], tie_embeddings=flag(c["tie_word_embeddings"]), n_layers=c["n_layer"])
    assert c["activation_function"] == "gelu" and c["scale_attn_weights"] and c["n_positions"] == t["transformer.wpe.weight"].shape[0]
    P = {"wte": t["transformer.wte.weight"], "wpe": t["transformer.wpe.weight"],
         "final_norm.weight": t["transformer.ln_f.weight"], "final_norm.bias": t["transformer.ln_f.bias"]}
    for l in range(c["n_layer"]):
        h, b = f"transformer.h.{l}.", f"blocks.{l}."
        for hf, ours in (("ln_1", "norm1"), ("ln_2", "norm2")):
            P[b + ours + ".weight"], P[b + ours + ".bias"] = t[h + hf + ".weight"], t[h + hf + ".bias"]
        w, bias = t[h + "attn.c_attn.weight"], t[h + "attn.c_attn.bias"]
        for n, x in enumerate("qkv"):
            P[b + "attn.w" + x] = w[:, n * D:(n + 1) * D].T
            P[b + "attn.b" + x] = bias[n * D:(n + 1) * D]
        for hf, ours in (("attn.c_proj", "attn.wo"), ("mlp.c_fc", "ffn.w1"), ("mlp.c_proj", "ffn.w2")):
            P[b + ours] = t[h + hf + ".weight"].T
            P[b + ours[:-2] + ours[-2:].replace("w", "b")] = t[h + hf + ".bias"]
    if not c["tie_word_embeddings"]:
        P["lm_head"] = t["lm_head.weight"]
    return cfg, P, ref.rope


def from_sinklab(s, t):
    """sinklab's own names, and the reference's keys from sinklab_config.json."""
    m, a = s["config"]["model"], s["config"]["attention"]
    cfg = dict(d_model=m["d_model"], n_heads=m["n_heads"], n_layers=m["n_layers"], norm=m["norm"], norm_eps=m["norm_eps"],
               norm_placement=m["norm_placement"], pos=m["pos"], ffn=m["ffn"], bias=flag(m["bias"]),
               tie_embeddings=flag(m["tie_embeddings"]), rope_theta=m["rope_theta"], sink_token=flag(a["sink_token"]),
               sigmoid_bias=s["resolved"]["attention.sigmoid_bias"], kv_bias_key_learnable=flag(a["kv_bias_key"] == "learnable"),
               kv_bias_value_learnable=flag(a["kv_bias_value"] == "learnable"), relative_buckets=m["relative_buckets"],
               relative_max_distance=m["relative_max_distance"],
               **{k: (flag(v) if isinstance(v, bool) else v) for k, v in a.items()
                  if k in ("kernel", "normalize", "off_by_one", "sink_logit", "kv_bias", "kv_bias_per_head", "value_bias",
                           "gate", "qk_norm", "mask", "prefix_len", "window")})
    return cfg, dict(t), ref.rope


def reference_logits(cfg, arrays, rope, tokens):
    """Logits of the reference decoder (float64) and the names it did not read."""
    P = ref.Params(arrays)
    saved, ref.rope = ref.rope, rope
    try:
        with torch.no_grad():
            logits = ref.decoder_logits(ref.Config({k: str(v) for k, v in cfg.items()}), P, torch.tensor(tokens).long())
    finally:
        ref.rope = saved
    return logits.numpy(), set(P.values) - P.used


# ---- the tokenizer, as `tokenizers` runs tokenizer.json --------------------------------------

def byte_symbols():
    """GPT-2's bytes_to_unicode, written out from its definition."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return table


class HFTokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.spec = json.load(f)
        pre = self.spec["pre_tokenizer"]
        assert pre["type"] == "Sequence" and [p["type"] for p in pre["pretokenizers"]] == ["ByteLevel", "Split"]
        assert pre["pretokenizers"][0]["use_regex"] is False and pre["pretokenizers"][1]["behavior"] == "Isolated"
        self.split = re.compile(pre["pretokenizers"][1]["pattern"]["Regex"])
        model = self.spec["model"]
        assert model["type"] == "BPE" and self.spec["normalizer"] is None
        self.vocab = model["vocab"]
        self.rank = {tuple(m.split(" ")): r for r, m in enumerate(model["merges"])}
        self.symbol = byte_symbols()
        self.byte_of = {s: b for b, s in self.symbol.items()}
        self.token_of = {i: s for s, i in self.vocab.items()}
        self.special = {t["content"]: t["id"] for t in self.spec["added_tokens"] if t["special"]}

    def bpe(self, word):
        """Lowest rank first, leftmost first, one merge at a time."""
        parts = list(word)
        while len(parts) > 1:
            ranks = [(self.rank.get((a, b), len(self.rank)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            r, i = min(ranks)
            if r == len(self.rank):
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.vocab[p] for p in parts]

    def words(self, text):
        """The pre-tokenizers' pieces: one symbol per byte of the UTF-8 text."""
        symbols = "".join(self.symbol[b] for b in text.encode("utf-8"))
        pieces = [m.group(0) for m in self.split.finditer(symbols)]
        assert "".join(pieces) == symbols, "the Split regex leaves gaps"
        return pieces

    def encode(self, text):
        return [i for p in self.words(text) for i in self.bpe(p)]

    def with_template(self, ids):
        out = []
        for item in self.spec["post_processor"]["single"]:
            if "SpecialToken" in item:
                out += self.spec["post_processor"]["special_tokens"][item["SpecialToken"]["id"]]["ids"]
            else:
                out += ids
        return out

    def decode(self, ids):
        return bytes(self.byte_of[c] for i in ids for c in self.token_of[i]).decode("utf-8")


TEXTS = {
    "spaces": "  two spaces,\n\n  then\ttabs \t x, spaces before a newline   \nand trailing   ",
    "long_word": "a" * 100 + " " + "b" * 70 + " " + "c" * 63 + " " + "d" * 64 + " " + "the" * 40 + " " + "and" * 21,
    "long_space": " " * 70 + "z" + "\n" * 63 + " w" + "\n" * 64 + " v" + " " * 65 + "u",
    "digits": "1234567890" * 8 + " 3.14159, 2718!",
    "punct": "!!!???..." * 12 + " --- ((x)) [y] {z} \\ ^ & && ~",
    "utf8": "naïve café — 日本語 text, ünïcödé: Grüße «quotes»",
    "crlf": "\r\n\r\nCRLF lines\r\n \r\n\f\v end",
    "control": "\x7f\x01\x02 control \x1b[0m bytes\x00",
}


def check_tokenizer(name, export_dir, reference, corpus_text):
    tok = HFTokenizer(os.path.join(export_dir, "tokenizer.json"))
    bos = len(tok.vocab) - 1
    check(f"{name}: BOS is the special token {bos}, the template puts it first",
          tok.special == {"<|bos|>": bos} and tok.with_template([5, 6]) == [bos, 5, 6], (tok.special, tok.with_template([5, 6])))
    for key, text in dict(TEXTS, corpus=corpus_text).items():
        words = [len(w) for w in tok.words(text)]
        check(f"{name}: the Split regex cuts '{key}' into sinklab's words", words == list(reference[f"words/{key}"]),
              f"{words[:12]} vs {list(reference[f'words/{key}'][:12])}")
        ours = [int(i) for i in reference[f"ids/{key}"]]
        theirs = tok.encode(text)
        check(f"{name}: tokenizer.json encodes '{key}' as sinklab does ({len(ours)} ids)", theirs == ours,
              f"first difference at {next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))}")
        check(f"{name}: tokenizer.json decodes '{key}' back", tok.decode(ours) == text)
    cfg = json.load(open(os.path.join(export_dir, "tokenizer_config.json")))
    check(f"{name}: tokenizer_config.json names BOS and keeps spaces",
          cfg["bos_token"] == "<|bos|>" and cfg["clean_up_tokenization_spaces"] is False, cfg)


# ---- the runs ------------------------------------------------------------------------------

def train(tmp, name, *overrides):
    sinklab("train", TINY, f"run.dir={tmp}/runs", f"run.name={name}", "train.lr=0.01", *overrides)
    return f"{tmp}/runs/{name}"


def sinklab_reference(run, step, work, tokens, texts):
    os.makedirs(f"{work}/texts", exist_ok=True)
    for key, text in texts.items():
        with open(f"{work}/texts/{key}.txt", "wb") as f:
            f.write(text.encode("utf-8"))
    with h5py.File(f"{work}/tokens.h5", "w") as f:
        f["tokens"] = tokens.astype(np.float32)
    env = dict(ENV, SINKLAB_RUN=run, SINKLAB_STEP=str(step), SINKLAB_EXPORT_DIR=work)
    r = subprocess.run([TESTS, "[.export-reference]"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"sinklab_tests [.export-reference] failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    with h5py.File(f"{work}/reference.h5", "r") as f:
        out = {"logits": f["logits"][()]}
        for group in ("ids", "words"):
            for key in f.get(group, {}):
                out[f"{group}/{key}"] = f[group][key][()].astype(int)
    return out


def check_export(tmp, name, run, expect_class, corpus_text=None):
    out = f"{tmp}/out/{name}"
    r = sinklab("export", run, "--out", out)
    cls = json.load(open(f"{out}/sinklab_config.json"))["transformers_class"]
    check(f"{name}: class {expect_class}", cls == expect_class, r.stdout)
    if expect_class is None:
        check(f"{name}: says plainly there is no transformers class, and why",
              "no transformers class" in r.stdout and "attention.kernel = sigmoid" in r.stdout, r.stdout)
    arrays, meta = read_safetensors(f"{out}/model.safetensors")
    check(f"{name}: safetensors metadata format pt", meta == {"format": "pt"}, meta)

    s = json.load(open(f"{out}/sinklab_config.json"))
    T, V = s["config"]["model"]["context"], s["resolved"]["model.vocab_size"]
    tokens = np.random.default_rng(7).integers(0, V, size=(2, T))
    texts = dict(TEXTS, corpus=corpus_text) if corpus_text else {}
    reference = sinklab_reference(run, s["step"], f"{tmp}/ref/{name}", tokens, texts)
    if expect_class == "LlamaForCausalLM":
        cfg, P, rope = from_llama(json.load(open(f"{out}/config.json")), arrays)
    elif expect_class == "GPT2LMHeadModel":
        cfg, P, rope = from_gpt2(json.load(open(f"{out}/config.json")), arrays)
    else:
        cfg, P, rope = from_sinklab(s, arrays)
    logits, unused = reference_logits(cfg, P, rope, tokens)
    diff = float(np.max(np.abs(logits - reference["logits"])))
    scale = float(np.max(np.abs(reference["logits"])))
    check(f"{name}: logits from the export equal sinklab's (max |diff| {diff:.1e}, max |logit| {scale:.1f})",
          diff <= TOLERANCE and not unused, f"unused tensors {sorted(unused)}")
    if corpus_text:
        check_tokenizer(name, out, reference, corpus_text)
    else:
        check(f"{name}: no tokenizer.json without a text tokenizer, and says why",
              not os.path.exists(f"{out}/tokenizer.json") and "no tokenizer.json: data.source = random" in r.stdout, r.stdout)
    if KEEP and expect_class:
        case = os.path.join(KEEP, name)
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(out, f"{case}/export")
        np.save(f"{case}/tokens.npy", tokens)
        np.save(f"{case}/logits.npy", reference["logits"].reshape(tokens.shape + (-1,)))
        if corpus_text:
            with open(f"{case}/texts.json", "w", encoding="utf-8") as f:
                json.dump({k: {"text": t, "ids": [int(i) for i in reference[f"ids/{k}"]]} for k, t in texts.items()}, f)
    return out


def refused(what, args, needle, out):
    r = sinklab("export", *args, expect=None)
    check(f"refused: {what} (exit {r.returncode}: {r.stderr.strip()[:150]})",
          r.returncode != 0 and needle in r.stderr and not os.path.exists(out + ".tmp"), r.stdout + r.stderr)
    return r


def check_bad_input(tmp, run, export):
    out = f"{tmp}/out/bad"
    empty = f"{tmp}/runs/empty"
    os.makedirs(f"{empty}/checkpoints")
    shutil.copy(f"{run}/config.yaml", empty)
    refused("a run without checkpoints", [empty, "--out", out], "has no checkpoints", out)
    check("nothing written for a run without checkpoints", not os.path.exists(out))
    refused("not a run directory", [f"{tmp}/out", "--out", out], "not a run directory", out)
    r = refused("a step without a checkpoint", [run, "--step", "7", "--out", out], "no checkpoint of step 7", out)
    check("the missing step's error lists the steps that exist", "0, 1, 2, 4, 8, 10, 16, 20" in r.stderr, r.stderr)
    refused("a step that is no number", [run, "--step", "ten", "--out", out], "--step wants", out)
    refused("no --out", [run], "missing --out", out)
    refused("an unknown option", [run, "--out", out, "--format", "gguf"], "unknown option '--format'", out)

    before = {f: os.path.getmtime(f"{export}/{f}") for f in os.listdir(export)}
    refused("an existing --out", [run, "--out", export], "already exists; pass --overwrite", export)
    check("the existing export is untouched", {f: os.path.getmtime(f"{export}/{f}") for f in os.listdir(export)} == before)
    sinklab("export", run, "--step", "10", "--out", export, "--overwrite")
    step = json.load(open(f"{export}/sinklab_config.json"))["step"]
    check("--overwrite replaces an earlier export", step == 10 and not os.path.exists(export + ".tmp"), step)
    other = f"{tmp}/out/notes"
    os.makedirs(other)
    open(f"{other}/keep.txt", "w").write("mine")
    refused("--overwrite of a directory that is no export", [run, "--out", other, "--overwrite"], "not one", other)
    check("that directory is untouched", os.listdir(other) == ["keep.txt"])

    corrupt = f"{tmp}/runs/corrupt"
    shutil.copytree(run, corrupt)
    path = f"{corrupt}/checkpoints/step_00000020.h5"
    with h5py.File(path, "r") as f:
        offset = f["tensors/param/wte"].id.get_offset()
    with open(path, "r+b") as f:  # one flipped bit in the embedding's data
        f.seek(offset + 100)
        byte = f.read(1)[0]
        f.seek(offset + 100)
        f.write(bytes([byte ^ 0x10]))
    r = refused("a corrupted checkpoint", [corrupt, "--out", out], "checksum mismatch", out)
    check("the corrupted checkpoint's error names the file and the dataset",
          "step_00000020.h5" in r.stderr and "wte" in r.stderr and not os.path.exists(out), r.stderr)


def main():
    torch.set_default_dtype(torch.float64)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = f"{tmp}/corpus"
        sinklab("prepare-data", "--out", corpus, "--vocab", "400", "--sources", "kjv", timeout=300)
        with open(f"{corpus}/corpus.txt", encoding="utf-8", newline="") as f:
            corpus_text = f.read(3000)
        llama = train(tmp, "llama", "data.source=corpus", f"data.dir={corpus}")
        export = check_export(tmp, "llama", llama, "LlamaForCausalLM", corpus_text)
        check_export(tmp, "llama_bias_tied", train(tmp, "llama_bias_tied", "model.bias=true", "model.tie_embeddings=true",
                                                   "model.rope_theta=500", "model.norm_eps=1e-4", "model.d_ff=40"),
                     "LlamaForCausalLM")
        check_export(tmp, "gpt2", train(tmp, "gpt2", "model.preset=gpt2", "model.norm_eps=1e-4"), "GPT2LMHeadModel")
        check_export(tmp, "gpt2_nobias_untied", train(tmp, "gpt2_nobias_untied", "model.preset=gpt2", "model.bias=false",
                                                      "model.tie_embeddings=false"), "GPT2LMHeadModel")
        check_export(tmp, "sigmoid_kv_bias_sink_token",
                     train(tmp, "sigmoid_kv_bias_sink_token", "attention.kernel=sigmoid", "attention.kv_bias=true",
                           "attention.sink_token=true"), None)
        check_bad_input(tmp, llama, export)
    finish()


main()
