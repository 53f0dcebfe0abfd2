"""Independent PyTorch (float64) check of sinklab's MoE layer: outputs, aux/z losses, gradients.

Usage: /usr/bin/python3 test_moe_torch.py PATH_TO_sinklab_tests

Runs `sinklab_tests "[.moe-export]"` with SINKLAB_EXPORT_DIR set to a temporary directory; each
case there holds case.txt and tensors.h5 (x, loss weights w, parameters, y, aux, z and every
gradient of loss = sum(w * y) + 0.3 aux + 0.7 z, computed by sinklab in float32). The layer is
rebuilt here from the equations (router scores, top-k, renormalised gates, per-expert dispatch
with capacity, Switch aux loss, router z-loss), and compared with the norm-wise relative error.
The expert choice is discrete, so it is taken from the float64 scores here; the export's seeds
keep every top-k gap far above float32 round-off.
"""
import math
import os
import subprocess
import sys
import tempfile

import h5py
import torch

TOLERANCE = 1e-4


def rel_err(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return float((a - b).norm() / max(a.norm(), b.norm(), 1e-30))


def swiglu(x, P, name):
    w1, w2, w3 = P[name + ".w1"], P[name + ".w2"], P[name + ".w3"]
    h = x @ w1.t()
    return (h * torch.sigmoid(h) * (x @ w3.t())) @ w2.t()


def moe(cfg, P, x):
    E, k = int(cfg["experts"]), int(cfg["top_k"])
    N = x.shape[0]
    z = x @ P["moe.router"].t()
    p = torch.softmax(z, -1) if cfg["router"] == "softmax" else torch.sigmoid(z)
    vals, idx = torch.topk(p, k, dim=-1)
    g = vals / vals.sum(-1, keepdim=True) if cfg["renormalize"] == "1" else vals
    # Priority per expert: all first choices in token order, then second choices, ...
    cf = float(cfg["capacity_factor"])
    capacity = math.ceil(cf * N * k / E) if cf > 0 else N * k
    taken = [0] * E
    dropped = 0
    y = torch.zeros_like(x)
    counts = torch.zeros(E, dtype=torch.float64)
    for j in range(k):
        for n in range(N):
            e = int(idx[n, j])
            counts[e] += 1
            if taken[e] < capacity:
                taken[e] += 1
                y[n] = y[n] + g[n, j] * swiglu(x[n:n + 1], P, f"moe.experts.{e}")[0]
            else:
                dropped += 1
    for s in range(int(cfg["shared"])):
        y = y + swiglu(x, P, f"moe.shared.{s}")
    q = p if cfg["router"] == "softmax" else p / p.sum(-1, keepdim=True)
    aux = E * (counts / (N * k) * q.mean(0)).sum()
    zl = (torch.logsumexp(z, -1) ** 2).mean()
    return y, aux, zl, dropped


def check_case(path):
    cfg = dict(line.strip().split("=", 1) for line in open(os.path.join(path, "case.txt")) if "=" in line)
    with h5py.File(os.path.join(path, "tensors.h5"), "r") as f:
        t = {name: torch.tensor(f[name][()], dtype=torch.float64) for name in ("x", "w", "y", "aux", "z")}
        params = {name: torch.tensor(f["param"][name][()], dtype=torch.float64, requires_grad=True) for name in f["param"]}
        grads = {name: torch.tensor(f["grad"][name][()], dtype=torch.float64) for name in f["grad"]}
    x = t["x"].clone().requires_grad_(True)
    y, aux, zl, dropped = moe(cfg, params, x)
    if float(cfg["capacity_factor"]) > 0 and dropped == 0:
        return {"capacity case drops nothing": 1.0}
    loss = (y * t["w"]).sum() + 0.3 * aux + 0.7 * zl
    loss.backward()
    errors = {"y": rel_err(y.detach(), t["y"]), "aux": rel_err(aux.detach(), t["aux"]),
              "z": rel_err(zl.detach(), t["z"]), "grad/x": rel_err(x.grad, grads["x"])}
    for name, p in params.items():
        errors["grad/" + name] = rel_err(p.grad if p.grad is not None else torch.zeros_like(p), grads[name])
    return errors


def main():
    tests_binary = os.path.abspath(sys.argv[1])
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([tests_binary, "[.moe-export]"], env=dict(os.environ, SINKLAB_EXPORT_DIR=tmp),
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:])
            print("0 passed, 1 failed (export)")
            sys.exit(1)
        cases = sorted(os.listdir(tmp))
        if len(cases) < 4:
            print(f"expected 4 exported cases, got {cases}")
            sys.exit(1)
        for case in cases:
            errors = check_case(os.path.join(tmp, case))
            worst = max(errors, key=errors.get)
            ok = errors[worst] < TOLERANCE
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {case}: worst {worst} {errors[worst]:.2e} over {len(errors)} tensors")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
