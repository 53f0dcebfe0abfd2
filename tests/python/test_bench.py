#!/usr/bin/python3
"""`sinklab bench` end to end on the small shape, one step: a table row with a plausible speed and
statistics costs, a memory line whose peak resident set is measured per configuration (with the
probe's forward beside it), and a clear
error for an unknown shape."""
import re

from harness import check, finish, sinklab

out = sinklab("bench", "--shapes", "small", "--attn", "softmax", "--precision", "f32,bf16", "--steps", "1",
              "--threads", "1", "--no-torch", "--stats", "--stats-steps", "2", timeout=300).stdout
rows = [l for l in out.splitlines() if l.startswith("| 1 | small | softmax |")]
# A CPU without a bf16 matmul in oneDNN gets the f32 row and a line saying why there is no bf16 one.
want = ["f32"] if "no bf16 rows: oneDNN has no bf16 matmul for this CPU" in out else ["f32", "bf16"]
check("one table row per precision", [r.split("|")[4].strip() for r in rows] == want, out)
for r in rows:
    cells = [c.strip() for c in r.strip("|").split("|")]
    tps, gflops = float(cells[4]), float(cells[5])
    check(f"{cells[3]}: tokens/s and GFLOP/s agree with the shape's FLOP count", tps > 0 and
          abs(gflops - 22.512e-3 * tps) <= 0.05 + 0.5 * 22.512e-3 + 1e-6, r)  # 6 * 3.23M matmul params + 12 L d T
    costs = [re.fullmatch(r"([+-][\d.]+)% \+-([\d.]+)", c) for c in cells[11:13]]
    check(f"{cells[3]}: statistics costs are percentages of a step, each with its standard error",
          all(m and -50 < float(m[1]) < 200 and float(m[2]) >= 0 for m in costs), r)
tps = {r.split("|")[4].strip(): float(r.split("|")[5]) for r in rows}
if len(want) == 2:
    check("bf16's 'vs f32' is its tokens/s over the f32 row's", len(rows) == 2 and
          abs(float(rows[1].split("|")[11].strip().rstrip("x")) - tps["bf16"] / tps["f32"]) < 0.01, out)
mem = [float(m) for m in re.findall(r"peak resident set \d+ MB = ([\d.]+)x", out)]
check("peak RSS per configuration, above what it needs and not far above", len(mem) == len(want) and
      all(0.9 < m < 2.0 for m in mem), out)
both = re.findall(r"peak resident set (\d+) MB = [\d.]+x \([\d.]+x beyond the \d+ MB held before it\) "
                  r"\((\d+) MB = [\d.]+x with the probe's too\)", out)
check("the probe's peak is printed beside the default run's, and not below it", len(both) == len(want) and
      all(int(probe) >= int(default) for default, probe in both), out)
beyond = re.findall(r"= ([\d.]+)x \(([\d.]+)x beyond the (\d+) MB held before it\)", out)
check("the peak beyond the process's starting resident set is below the whole peak's ratio", len(beyond) == len(want) and
      all(0.5 < float(b) < float(w) and int(mb) > 0 for w, b, mb in beyond), out)
check("the bench names the source the default takes", "stats.source = auto, the default, measures from train" in out,
      out)
# The calibrated shape at two thread counts in one invocation, each row against the mean of the
# peak measured just before and just after it at its own thread count, and --vocab: 8.28M FLOP per
# token at the 4096-token vocabulary (GFLOP/s is printed to 0.1, tokens/s and the peaks to 1:
# the checks allow each rounding; a peak measured low under load makes the peak's rounding worth
# more than a point of the percentage).
out = sinklab("bench", "--shapes", "calibrated", "--vocab", "4096", "--attn", "softmax", "--steps", "1", "--threads",
              "1,2", "--no-torch", timeout=300).stdout
peaks = {int(t): float(f) for t, f in re.findall(r"threads (\d+), oneDNN matmul peak .*: f32 (\d+) GFLOP/s", out)}
rows = [[c.strip() for c in l.strip("|").split("|")] for l in out.splitlines() if "| calibrated | softmax | f32 |" in l]
check("a peak and a row per thread count", sorted(peaks) == [1, 2] and [r[0] for r in rows] == ["1", "2"], out)
for r in rows:
    around = re.fullmatch(r"(\d+), (\d+)-(\d+)", r[7])
    check(f"{r[0]} threads: the row's peak is the mean of the one before it and the one after",
          around and abs(float(around[1]) - (float(around[2]) + float(around[3])) / 2) <= 1, r)
    gflops, peak = float(r[5]), float(around[1]) if around else 0
    check(f"{r[0]} threads: 8.28M FLOP per token, % of the peak measured around the row",
          abs(gflops - 8.282e-3 * float(r[4])) <= 0.05 + 0.5 * 8.282e-3 + 1e-6 and
          100 * gflops / (peak + 0.5) - 1 < float(r[6].rstrip("%")) < 100 * gflops / (peak - 0.5) + 1, r)
err = sinklab("bench", "--shapes", "huge", "--no-torch", expect=1).stderr
check("an unknown shape is named with the valid ones", "unknown shape 'huge'" in err and "small, large, calibrated" in err,
      err)
err = sinklab("bench", "--stats-steps", "0", "--no-torch", expect=1).stderr
check("a count that is not a whole number >= 1 is named", "--stats-steps takes a whole number >= 1, got '0'" in err, err)
finish()
