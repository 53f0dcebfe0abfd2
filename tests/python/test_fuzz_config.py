#!/usr/bin/python3
"""Config fuzzing through the real binary: seeded mutations of the shipped YAML configs (wrong
types, huge, negative and non-finite numbers, missing lines and sections, typos, duplicate keys,
binary garbage, deep nesting, alias bombs, broken `base:` chains, odd encodings) and of
command-line override strings are fed to `sinklab train`, each in a child limited to 4 GB of
address space and a 10 s timeout. Every case must exit non-zero (never by a signal), within the
time, with exactly one line on stderr, "sinklab train: error: ...", and nothing on stdout.

A mutation that leaves a valid config would start training, so every case ends with two guard
overrides: run.overwrite=false and run.dir=<a folder under /proc>, where no run folder can be
created; such cases must then fail naming that folder (and are counted separately).
Run by CTest as: /usr/bin/python3 test_fuzz_config.py PATH/TO/sinklab_tests."""
import concurrent.futures
import os
import random
import re
import resource
import subprocess
import tempfile
import time

from harness import BIN, ENV, ROOT, check, finish

N_FILES, N_OVERRIDES = 1000, 1000
GUARD_DIR = "/proc/sinklab-fuzz-no-runs-here"
GUARD = ["run.overwrite=false", f"run.dir={GUARD_DIR}"]
rng = random.Random(20251123)

KEYS = re.findall(r'\b(?:I|F|F_auto|B|S|Text|FL|IL)\("([a-z_]+\.[a-z_0-9]+)"',
                  open(os.path.join(ROOT, "train", "schema.cpp")).read())
BASES = [open(os.path.join(ROOT, "configs", n)).read() for n in sorted(os.listdir(os.path.join(ROOT, "configs")))
         if n.endswith(".yaml")]
BAD_VALUES = ["-1", "-9999999999999999999999", "99999999999999999999999", "1e308", "1e999", "-1e999", ".nan",
              ".inf", "-.inf", "0", "0x7fffffffffffffff", "18446744073709551616", "9223372036854775807",
              "-9223372036854775808", "4.9e-324", "abc", "[1, 2]", "{a: 1}", "~", "null", "''", "true", "3.5",
              "'32'", "!!binary aGVsbG8=", "*nowhere", "&a 5", '"\\x00"', "ünïcödé", "[[[[", "]", "{", "- 1",
              "1" * 5000, "!!float 1", "!!str", "2:3", "0o17", "+12", "1_000", "[]", "{}", "[.nan]", "[-1, 1e999]",
              "yes", "No", "0.0.1", "'a\nb'"]


def typo(key):
    k = list(key)
    i = rng.randrange(len(k))
    op = rng.randrange(3)
    if op == 0:
        del k[i]
    elif op == 1:
        k.insert(i, rng.choice("abcdefghijklmnopqrstuvwxyz_."))
    elif i + 1 < len(k):
        k[i], k[i + 1] = k[i + 1], k[i]
    return "".join(k)


def garbage(n):
    return bytes(rng.randrange(256) for _ in range(n))


def mutate_yaml(text, path):
    """One or more mutations of a YAML text; returns bytes."""
    lines = text.split("\n")
    kind = rng.randrange(14)
    if kind == 0:  # a value replaced
        idx = [i for i, l in enumerate(lines) if re.match(r"\s+\w+:\s*\S", l)]
        if idx:
            i = rng.choice(idx)
            lines[i] = lines[i].split(":")[0] + ": " + rng.choice(BAD_VALUES)
    elif kind == 1:  # lines removed
        for _ in range(rng.randrange(1, 6)):
            if lines:
                del lines[rng.randrange(len(lines))]
    elif kind == 2:  # a section header removed (its keys fall to the top level or the previous section)
        idx = [i for i, l in enumerate(lines) if re.match(r"\w+:\s*$", l)]
        if idx:
            del lines[rng.choice(idx)]
    elif kind == 3:  # a typo in a key or a section
        idx = [i for i, l in enumerate(lines) if re.match(r"\s*\w+:", l)]
        if idx:
            i = rng.choice(idx)
            head, tail = lines[i].split(":", 1)
            lines[i] = re.sub(r"\w+", lambda m: typo(m.group(0)), head, count=1) + ":" + tail
    elif kind == 4:  # unknown or duplicate keys and sections
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(
            ["bogus: 1", "model:\n  d_model: 8\n  d_model: 16", "train:\n  lr: 1\n  nonsense: 2", "  stray: 3",
             "model: 5", "attention: [1, 2]", "stats: ~", "? [a, b]\n: c", "train: {steps: -5}"]))
    elif kind == 5:  # binary garbage replacing, or inserted into, the text
        data = text.encode()
        if rng.random() < 0.3:
            return garbage(rng.randrange(1, 3000))
        at = rng.randrange(len(data) + 1)
        return data[:at] + garbage(rng.randrange(1, 200)) + data[at:]
    elif kind == 6:  # deep nesting
        n = rng.choice([50, 500, 5000, 100000])
        return rng.choice([
            f"model:\n  d_model: {'[' * n}{']' * n}\n",
            f"model: {'{a: ' * n}1{'}' * n}\n",
            "".join(" " * i + f"k{i}:\n" for i in range(min(n, 3000))) + " " * min(n, 3000) + "x: 1\n",
            "- " * n + "1\n"]).encode()
    elif kind == 7:  # alias bomb (billion laughs) in a list value and as a section
        bomb = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
        target = rng.choice(["stats:\n  eps: *a8\n", "train: *a8\n", "model:\n  d_model: *a8\n"])
        return (text + "\n" + bomb + target).encode()
    elif kind == 8:  # broken base chains
        return (rng.choice([f"base: {os.path.basename(path)}\n", "base: /dev/zero\n", "base: /etc/passwd\n",
                            "base: /nonexistent.yaml\n", "base: /\n", "base: [1, 2]\n", "base: ''\n",
                            "base: /proc/self/mem\n", "base: " + "../" * 200 + "x\n"]) + text).encode()
    elif kind == 9:  # encodings and line endings
        return rng.choice([b"\xef\xbb\xbf" + text.encode(), text.replace("\n", "\r\n").encode(),
                           text.replace("  ", "\t").encode(), text.encode("utf-16"), text.encode()[:-1] + b"\0",
                           text.replace("\n", "\r").encode()])
    elif kind == 10:  # degenerate documents
        return rng.choice([b"", b"# only a comment\n", b"5\n", b"- a\n- b\n", b"---\n---\n", b"~\n",
                           b"model:\n", text.encode() + b"\n---\nmodel: {d_model: 8}\n", b"...\n", b"\0" * 100,
                           b"key: value: other\n", b"model: &m {d_model: 8}\nattention: *m\n", b"[" * 20,
                           ("model:\n  d_model: " + "9" * 100000 + "\n").encode()])
    elif kind == 11:  # dependency violations through values that are valid on their own
        extra = rng.choice(["model:\n  d_model: 33\n  n_heads: 2\n", "model:\n  d_model: 30\n  n_heads: 5\n",
                            "train:\n  batch_size: 5\n  micro_batch: 2\n", "moe:\n  experts: 2\n  top_k: 3\n",
                            "stats:\n  probe_len: 100000\n", "attention:\n  mask: sliding\n  window: 0\n",
                            "attention:\n  mask: prefix\n  prefix_len: 999999\n"])
        return (text + "\n" + extra).encode()
    elif kind == 12:  # truncation
        data = text.encode()
        return data[:rng.randrange(len(data) + 1)]
    else:  # several bytes flipped
        data = bytearray(text.encode())
        for _ in range(rng.randrange(1, 10)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    return "\n".join(lines).encode()


def random_override():
    kind = rng.randrange(10)
    key = rng.choice(KEYS)
    if kind < 3:
        return f"{key}={rng.choice(BAD_VALUES)}"
    if kind == 3:
        return f"{typo(key)}={rng.choice(['1', 'x', '[1]'])}"
    if kind == 4:
        return rng.choice([key, "=", "==", f"{key}=", "=1", ".d_model=3", "model..d_model=3", f"{key}.x=1",
                           "model=3", "a.b.c=1", "model.=3", f" {key}=1", f"{key} =1", "ключ.ключ=1",
                           f"{key}=1=2", "run.name=../..", "run.name=.", "run.name=a/b"])
    if kind == 5:  # control characters and invalid UTF-8 (argv cannot carry NUL)
        raw = garbage(rng.randrange(1, 60)).replace(b"\0", b"\1")
        return (f"{key}=".encode() + raw).decode("utf-8", "surrogateescape")
    if kind == 6:
        return f"{key}=" + rng.choice(["[" * 5000, "{a: " * 3000, "x" * 50000, "1" * 50000, "\n".join(["a"] * 100)])
    if kind == 7:  # valid values: the case then depends on the other overrides
        return rng.choice(["train.steps=3", "model.d_model=64", "attention.kernel=sigmoid", "stats.eps=[0.1,0.3]"])
    if kind == 8:
        return f"{key}=" + rng.choice(["*a", "&a", "!!binary x", "? a", "| text", "> text", "%YAML 1.2", "@", "`"])
    return f"{key}={rng.choice(BAD_VALUES)}"


def run_case(case):
    kind, path, args = case
    t = time.time()
    try:
        r = subprocess.run([BIN, "train", *([path] if path else [])] + args + GUARD, capture_output=True, env=ENV,
                           timeout=10, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return kind, "hang", "timed out after 10 s", args
    err = r.stderr.decode("utf-8", "replace")
    elapsed = time.time() - t
    if r.returncode < 0:
        return kind, "crash", f"killed by signal {-r.returncode}: {err[-300:]}", args
    if r.returncode == 0:
        return kind, "accepted", r.stdout.decode("utf-8", "replace")[-300:], args
    one_line = err.endswith("\n") and err.count("\n") == 1 and err.startswith("sinklab train: error: ")
    if not one_line or r.stdout:
        return kind, "message", f"stdout {r.stdout[:200]!r}, stderr {err[:600]!r}", args
    return kind, ("guard" if GUARD_DIR in err else "rejected"), f"{elapsed:.2f}s", args


# The children inherit the limits (set here: preexec_fn is unsafe with the thread pool).
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

with tempfile.TemporaryDirectory() as tmp:
    cases = []
    for i in range(N_FILES):
        path = os.path.join(tmp, f"case_{i:04d}.yaml")
        data = mutate_yaml(rng.choice(BASES), path)
        if rng.random() < 0.25:  # a second mutation on top
            data = mutate_yaml(data.decode("utf-8", "replace"), path)
        with open(path, "wb") as f:
            f.write(data)
        cases.append(("yaml", path, []))
    for i in range(N_OVERRIDES):
        cases.append(("override", os.path.join(ROOT, "configs", rng.choice(["tiny.yaml", "default.yaml"])),
                      [random_override() for _ in range(rng.randrange(1, 4))]))
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run_case, cases))
    seconds = time.time() - t0

    counts = {}
    for kind, outcome, detail, args in results:
        counts[(kind, outcome)] = counts.get((kind, outcome), 0) + 1
    for kind in ["yaml", "override"]:
        print(f"{kind:8s} cases: " + ", ".join(f"{o} {n}" for (k, o), n in sorted(counts.items()) if k == kind))
    print(f"{len(cases)} cases in {seconds:.1f} s")
    bad = [(k, o, d, a) for k, o, d, a in results if o not in ("rejected", "guard")]
    for k, o, d, a in bad[:10]:
        print(f"  {o}: {k} {[x[:80] for x in a]}: {d[:400]}")
    check(f"{len(cases)} mutated configs/overrides: all exit non-zero with one 'error:' line, no crash or hang",
          len(cases) >= 1000 and not bad, f"{len(bad)} bad outcomes")
    check("most mutations are refused by validation, not by the guard",
          sum(n for (k, o), n in counts.items() if o == "rejected") > len(cases) // 2)

finish()
