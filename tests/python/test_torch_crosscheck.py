"""Independent PyTorch (float64) check of sinklab's models: forward values and every gradient.

Usage: /usr/bin/python3 test_torch_crosscheck.py PATH_TO_sinklab_tests

Runs `sinklab_tests "[.torch-export]"` with SINKLAB_EXPORT_DIR set to a temporary directory;
each case there holds case.txt (the configuration) and tensors.h5 (parameters, inputs, the
outputs and gradients sinklab computed in float32). The model is rebuilt here from the
equations, not from sinklab's code, and compared tensor by tensor with the norm-wise relative
error ||a - b|| / max(||a||, ||b||).
"""
import math
import os
import subprocess
import sys
import tempfile

import h5py
import torch
import torch.nn.functional as F

TOLERANCE = 1e-4
# Gradients that vanish identically in exact arithmetic (the key bias under softmax without
# RoPE: adding q.b_k to a whole row of scores changes no weight) are pure float32 round-off in
# sinklab, so a relative error is meaningless for them. They are recognised by a float64
# gradient below IS_ZERO times the case's largest gradient norm G, and must instead satisfy
# ||sinklab grad|| <= ZERO_TOLERANCE * G (round-off level, a few float32 epsilons).
IS_ZERO = 1e-12
ZERO_TOLERANCE = 1e-6

# Every case the exporter must produce (the brief's list); more are welcome.
REQUIRED_CASES = [
    "block", "llama", "gpt2", "post_norm", "pos_sinusoidal", "pos_alibi", "pos_relative", "pos_none",
    "ffn_geglu", "ffn_reglu", "ffn_relu", "ffn_silu", "kernel_sigmoid", "kernel_sigmoid_normalized",
    "kernel_elu_plus_one", "kernel_elu_plus_one_normalized", "kernel_linear_normalized", "kernel_mlp",
    "kernel_mlp_normalized", "kernel_relu", "softmax_off_by_one", "sink_logit", "kv_bias", "kv_bias_per_head",
    "value_bias", "kv_bias_value_zero", "sink_token", "gate_elementwise", "gate_headwise", "qk_norm", "mask_prefix",
    "mask_sliding", "mask_bidirectional", "adamw20_llama", "adamw20_gpt2",
]


def read_config(path):
    cfg = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            cfg[key] = value
    return cfg


class Config:
    """Typed access to case.txt."""

    def __init__(self, raw):
        self.raw = raw

    def s(self, key):
        return self.raw[key]

    def i(self, key):
        return int(self.raw[key])

    def f(self, key):
        return float(self.raw[key])

    def b(self, key):
        return self.raw[key] == "1"


class Params:
    """Parameters (name -> array) as float64 leaves; remembers which ones the model read."""

    def __init__(self, arrays):
        self.values = {name: torch.tensor(a, dtype=torch.float64, requires_grad=True) for name, a in arrays.items()}
        self.used = set()

    def __call__(self, name):
        self.used.add(name)
        return self.values[name]

    def has(self, name):
        return name in self.values


# ---- building blocks, from the equations ---------------------------------------------------

def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def norm(cfg, P, name, x):
    if cfg.s("norm") == "rmsnorm":
        return rms_norm(x, P(name + ".weight"), cfg.f("norm_eps"))
    return layer_norm(x, P(name + ".weight"), P(name + ".bias"), cfg.f("norm_eps"))


def dense(P, x, w, b=None):
    y = x @ P(w).t()
    return y + P(b) if b is not None else y


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def silu(x):
    return x / (1 + torch.exp(-x))


def ffn(cfg, P, name, x):
    kind = cfg.s("ffn")
    bias = cfg.b("bias")
    act = {"swiglu": silu, "silu": silu, "geglu": gelu, "gelu": gelu, "reglu": torch.relu, "relu": torch.relu}[kind]
    h = act(dense(P, x, name + ".w1", name + ".b1" if bias else None))
    if kind in ("swiglu", "geglu", "reglu"):
        h = h * dense(P, x, name + ".w3", name + ".b3" if bias else None)
    return dense(P, h, name + ".w2", name + ".b2" if bias else None)


def rope(x, theta):
    """x [B, T, H, Dh]: the pair (x[2i], x[2i+1]) at position t turns by t * theta^(-2i/Dh)."""
    T, Dh = x.shape[1], x.shape[3]
    i = torch.arange(Dh // 2, dtype=torch.float64)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-2 * i / Dh)  # [T, Dh/2]
    c, s = torch.cos(angle)[None, :, None, :], torch.sin(angle)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


def t5_bucket(n, bidirectional, buckets, max_distance):
    """T5's bucket of the relative distance n = query position - key position."""
    offset = 0
    if bidirectional:
        buckets //= 2
        if n < 0:
            offset = buckets
        n = abs(n)
    else:
        n = max(n, 0)
    exact = buckets // 2
    if n < exact:
        return offset + n
    large = exact + int(math.log(n / exact) / math.log(max_distance / exact) * (buckets - exact))
    return offset + min(large, buckets - 1)


def allowed(cfg, T):
    """[T, T] boolean: query i may attend key p."""
    i = torch.arange(T)[:, None]
    p = torch.arange(T)[None, :]
    mask = cfg.s("mask")
    if mask == "causal":
        return p <= i
    if mask == "prefix":
        L = cfg.i("prefix_len")
        return (p <= i) | ((p < L) & (i < L))
    if mask == "sliding":
        return (p <= i) & (i - p < cfg.i("window"))
    assert mask == "bidirectional", mask
    return torch.ones(T, T, dtype=torch.bool)


def attention(cfg, P, name, x):
    B, T, D = x.shape
    H = cfg.i("n_heads")
    Dh = D // H
    bias = cfg.b("bias")
    q = dense(P, x, name + ".wq", name + ".bq" if bias else None).view(B, T, H, Dh)
    k = dense(P, x, name + ".wk", name + ".bk" if bias else None).view(B, T, H, Dh)
    v = dense(P, x, name + ".wv", name + ".bv" if bias else None).view(B, T, H, Dh)
    if cfg.b("qk_norm"):
        q = rms_norm(q, P(name + ".q_norm"), cfg.f("norm_eps"))
        k = rms_norm(k, P(name + ".k_norm"), cfg.f("norm_eps"))
    if cfg.s("pos") == "rope":
        q, k = rope(q, cfg.f("rope_theta")), rope(k, cfg.f("rope_theta"))
    kernel = cfg.s("kernel")
    if kernel == "elu_plus_one":
        q, k = F.elu(q) + 1, F.elu(k) + 1
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, Dh]

    # Scores against the real keys, then an optional bias slot in front of them.
    s = q @ k.transpose(-1, -2) / math.sqrt(Dh)  # [B, H, T, T]
    if cfg.s("pos") == "alibi":
        slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)], dtype=torch.float64)
        dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).abs().double()
        s = s - slopes[:, None, None] * dist
    if cfg.s("pos") == "relative":
        bidirectional = cfg.s("mask") not in ("causal", "sliding")
        ids = torch.tensor([[t5_bucket(i - p, bidirectional, cfg.i("relative_buckets"), cfg.i("relative_max_distance"))
                             for p in range(T)] for i in range(T)])
        s = s + P(name + ".relative_bias")[ids].permute(2, 0, 1)  # table [buckets, H] -> [H, T, T]
    ok = allowed(cfg, T)
    if cfg.b("kv_bias"):
        nh = H if cfg.b("kv_bias_per_head") else 1
        zero = torch.zeros(B, H, 1, Dh, dtype=torch.float64)
        kb = zero + P(name + ".k_bias").view(1, nh, 1, Dh) if cfg.b("kv_bias_key_learnable") else zero
        vb = zero + P(name + ".v_bias").view(1, nh, 1, Dh) if cfg.b("kv_bias_value_learnable") else zero
        s = torch.cat([q @ kb.transpose(-1, -2) / math.sqrt(Dh), s], -1)  # no positional bias on the slot
        v = torch.cat([vb, v], 2)
        ok = torch.cat([torch.ones(T, 1, dtype=torch.bool), ok], 1)

    if kernel == "softmax":
        z = s.masked_fill(~ok, -math.inf)
        extra = None
        if cfg.b("off_by_one"):
            extra = torch.zeros(1, H, 1, 1, dtype=torch.float64)
        if cfg.b("sink_logit"):
            extra = P(name + ".sink_logit").view(1, H, 1, 1)
        if extra is None:
            A = torch.softmax(z, -1)
        else:  # exp(s_ij) / (exp(c) + sum_j exp(s_ij)), stabilised by the larger of the two maxima
            m = torch.maximum(z.amax(-1, keepdim=True), extra).detach()
            e = torch.exp(z - m)
            A = e / (torch.exp(extra - m) + e.sum(-1, keepdim=True))
    else:
        if kernel == "sigmoid":
            b = -math.log(T) if cfg.s("sigmoid_bias") == "nan" else cfg.f("sigmoid_bias")
            w = torch.sigmoid(s + b)
        elif kernel == "relu":
            w = torch.relu(s)
        elif kernel in ("linear", "elu_plus_one"):
            w = s
        elif kernel == "mlp":
            hid = gelu(s.unsqueeze(-1) * P(name + ".mlp_w1")[:, 0] + P(name + ".mlp_b1"))
            w = hid @ P(name + ".mlp_w2")[0] + P(name + ".mlp_b2")[0]
        else:
            raise ValueError(kernel)
        w = torch.where(ok, w, torch.zeros_like(w))
        if cfg.b("normalize"):
            w = w / w.sum(-1, keepdim=True)
        A = w
    o = A @ v
    if cfg.b("value_bias"):
        o = o + P(name + ".value_bias").view(1, -1, 1, Dh)
    o = o.transpose(1, 2).reshape(B, T, D)
    gate = cfg.s("gate")
    if gate == "elementwise":
        o = o * torch.sigmoid(dense(P, x, name + ".wg"))
    elif gate == "headwise":
        o = (o.view(B, T, H, Dh) * torch.sigmoid(dense(P, x, name + ".wg")).unsqueeze(-1)).reshape(B, T, D)
    return dense(P, o, name + ".wo", name + ".bo" if bias else None)


def sinusoidal(n, d):
    t = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
    angle = t / 10000.0 ** (i / d)
    table = torch.zeros(n, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table


def decoder_logits(cfg, P, tokens):
    B, T = tokens.shape
    D = cfg.i("d_model")
    h = P("wte")[tokens]
    if cfg.b("sink_token"):
        h = torch.cat([P("sink_token").expand(B, 1, D), h], 1)
    Tp = h.shape[1]
    if cfg.s("pos") == "learned":
        h = h + P("wpe")[:Tp]
    if cfg.s("pos") == "sinusoidal":
        h = h + sinusoidal(Tp, D)
    for l in range(cfg.i("n_layers")):
        n = f"blocks.{l}"
        if cfg.s("norm_placement") == "pre":
            h = h + attention(cfg, P, n + ".attn", norm(cfg, P, n + ".norm1", h))
            h = h + ffn(cfg, P, n + ".ffn", norm(cfg, P, n + ".norm2", h))
        else:
            h = norm(cfg, P, n + ".norm1", h + attention(cfg, P, n + ".attn", h))
            h = norm(cfg, P, n + ".norm2", h + ffn(cfg, P, n + ".ffn", h))
    if cfg.s("norm_placement") == "pre":
        h = norm(cfg, P, "final_norm", h)
    h = h[:, Tp - T:].reshape(B * T, D)
    return h @ P("wte" if cfg.b("tie_embeddings") else "lm_head").t()


# ---- comparison ------------------------------------------------------------------------------

def rel_err(a, b):
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    denom = max(a.norm().item(), b.norm().item())
    return 0.0 if denom == 0 else (a - b).norm().item() / denom


def check_training(cfg, P, ref, ref_final):
    """The same AdamW run in torch: decay on matrices (dim >= 2) only, clipping, fixed batches.
    Compares every step's loss and gradient norm; the final parameters are reported only (a
    structurally zero gradient is float32 noise that Adam amplifies into drift of a parameter
    that does not affect the loss)."""
    decayed = [n for n, t in P.values.items() if t.dim() >= 2]
    assert set(decayed) == set(cfg.s("decayed").split(",")), \
        f"sinklab decays {sorted(cfg.s('decayed').split(','))}, matrices are {sorted(decayed)}"
    groups = [{"params": [P.values[n] for n in decayed], "weight_decay": cfg.f("weight_decay")},
              {"params": [t for n, t in P.values.items() if n not in decayed], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.f("lr"), betas=(cfg.f("beta1"), cfg.f("beta2")), eps=cfg.f("eps"))
    errors = {}
    for s in range(cfg.i("steps")):
        opt.zero_grad()
        logits = decoder_logits(cfg, P, ref["tokens"][s].long())
        loss = F.cross_entropy(logits, ref["targets"][s].long(), ignore_index=-1)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(P.values.values()), cfg.f("max_norm"))
        opt.step()
        errors[f"loss/{s}"] = rel_err(loss, ref["losses"][s])
        errors[f"grad_norm/{s}"] = rel_err(norm, ref["grad_norms"][s])
    final = {n: rel_err(P.values[n], ref_final[n]) for n in P.values}
    drifted = sorted(n for n, e in final.items() if e > TOLERANCE)
    note = (f"loss {ref['losses'][0].item():.3f} -> {ref['losses'][-1].item():.3f}; final params worst "
            f"{max(final.values()):.1e}" + (f", differing (not checked): {','.join(drifted[:4])}{' ...' if len(drifted) > 4 else ''}" if drifted else "")
            + f", others <= {max([e for n, e in final.items() if n not in drifted] or [0]):.1e}")
    return errors, note


def check_case(path):
    cfg = Config(read_config(os.path.join(path, "case.txt")))
    with h5py.File(os.path.join(path, "tensors.h5"), "r") as h5:
        P = Params({name: h5["param"][name][()] for name in h5["param"]})
        groups = ("param", "grad", "final")
        ref = {k: torch.tensor(h5[k][()], dtype=torch.float64) for k in h5 if k not in groups}
        ref_grad = {k: torch.tensor(h5["grad"][k][()], dtype=torch.float64) for k in h5.get("grad", {})}
        ref_final = {k: torch.tensor(h5["final"][k][()], dtype=torch.float64) for k in h5.get("final", {})}

    if cfg.s("model") == "adamw":
        errors, note = check_training(cfg, P, ref, ref_final)
        unused = set(P.values) - P.used
        assert not unused, f"exported parameters the model never read: {sorted(unused)}"
        return errors, {}, note

    errors = {}
    if cfg.s("model") == "block":
        x = ref["x"].clone().requires_grad_(True)
        h = x + attention(cfg, P, "block.attn", norm(cfg, P, "block.norm1", x))
        out = h + ffn(cfg, P, "block.ffn", norm(cfg, P, "block.norm2", h))
        loss = (out * ref["weights"]).sum()
        errors["out"] = rel_err(out, ref["out"])
        leaves = dict(P.values, x=x)
    else:
        tokens = ref["tokens"].long()
        targets = ref["targets"].long()
        logits = decoder_logits(cfg, P, tokens)
        loss = F.cross_entropy(logits, targets, ignore_index=-1)
        errors["logits"] = rel_err(logits, ref["logits"])
        leaves = dict(P.values)
    errors["loss"] = rel_err(loss, ref["loss"])
    unused = set(P.values) - P.used
    assert not unused, f"exported parameters the model never read: {sorted(unused)}"
    assert set(leaves) == set(ref_grad), f"gradient sets differ: {sorted(set(leaves) ^ set(ref_grad))}"

    loss.backward()
    grads = {n: (t.grad if t.grad is not None else torch.zeros_like(t)) for n, t in leaves.items()}
    G = max(g.norm().item() for g in grads.values())
    zeros = {}  # structurally zero gradients: sinklab's norm relative to G
    for n, g in grads.items():
        if g.norm().item() <= IS_ZERO * G:
            zeros["grad/" + n] = ref_grad[n].norm().item() / G
        else:
            errors["grad/" + n] = rel_err(g, ref_grad[n])
    first = "out" if "out" in errors else "logits"
    note = f"{first} {errors[first]:.1e}, loss {errors['loss']:.1e}"
    if zeros:
        note += f"; zero grads {','.join(sorted(zeros))} with |g|/G <= {max(zeros.values()):.1e}"
    return errors, zeros, note


def main():
    tests_binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SINKLAB_EXPORT_DIR=tmp)
        run = subprocess.run([tests_binary, "[.torch-export]"], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:])
            print("0 passed, 1 failed (export)")
            return 1
        cases = sorted(d for d in os.listdir(tmp) if os.path.isfile(os.path.join(tmp, d, "case.txt")))
        passed = failed = 0
        for name in cases:
            try:
                errors, zeros, note = check_case(os.path.join(tmp, name))
            except Exception as e:  # a broken case is a failure, not an abort
                print(f"FAIL {name:34s} error: {e}")
                failed += 1
                continue
            worst = max(errors, key=errors.get)
            ok = errors[worst] <= TOLERANCE and all(z <= ZERO_TOLERANCE for z in zeros.values())
            print(f"{'ok  ' if ok else 'FAIL'} {name:32s} worst {errors[worst]:.2e} ({worst}); {note}")
            if not ok:
                for k, e in sorted(list(errors.items()) + list(zeros.items()), key=lambda kv: -kv[1])[:5]:
                    print(f"       {k}: {e:.3e}")
            passed += ok
            failed += not ok
        missing = sorted(set(REQUIRED_CASES) - set(cases))
        if missing:
            print(f"FAIL missing cases: {missing}")
            failed += len(missing)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    sys.exit(main())
