#!/usr/bin/python3
"""`sinklab bench` end to end on the small shape, one step: a table row with a plausible speed and
statistics costs, a memory line whose peak resident set is measured per configuration (with the
probe's forward beside it), and a clear
error for an unknown shape."""
import re

from harness import check, finish, sinklab

out = sinklab("bench", "--shapes", "small", "--attn", "softmax", "--precision", "f32,bf16", "--steps", "1",
              "--threads", "1", "--no-torch", "--stats", "--stats-steps", "2", timeout=300).stdout
rows = [l for l in out.splitlines() if l.startswith("| small | softmax |")]
check("one table row per precision", [r.split("|")[3].strip() for r in rows] == ["f32", "bf16"], out)
for r in rows:
    cells = [c.strip() for c in r.strip("|").split("|")]
    tps, gflops = float(cells[3]), float(cells[4])
    check(f"{cells[2]}: tokens/s and GFLOP/s agree with the shape's FLOP count", tps > 0 and
          abs(gflops * 1e9 / tps / 1e6 - 22.9) < 0.5, r)  # 6 * 3.3M params + 12 * layers * d * T = 22.9M FLOP per token
    costs = [float(c.rstrip("%")) for c in cells[8:10]]
    check(f"{cells[2]}: statistics costs are percentages of a step", all(-50 < c < 200 for c in costs), r)
mem = [float(m) for m in re.findall(r"peak resident set \d+ MB = ([\d.]+)x", out)]
check("peak RSS per configuration, above what it needs and not far above", len(mem) == 2 and
      all(0.9 < m < 2.0 for m in mem), out)
both = re.findall(r"peak resident set (\d+) MB = [\d.]+x \((\d+) MB = [\d.]+x with the probe's too\)", out)
check("the probe's peak is printed beside the default run's, and not below it", len(both) == 2 and
      all(int(probe) >= int(default) for default, probe in both), out)
check("the bench names the source the default takes", "stats.source = auto, the default, measures from train" in out,
      out)
err = sinklab("bench", "--shapes", "huge", "--no-torch", expect=1).stderr
check("an unknown shape is named with the valid ones", "unknown shape 'huge'" in err and "small, large" in err, err)
err = sinklab("bench", "--stats-steps", "0", "--no-torch", expect=1).stderr
check("a count that is not a whole number >= 1 is named", "--stats-steps takes a whole number >= 1, got '0'" in err, err)
finish()
