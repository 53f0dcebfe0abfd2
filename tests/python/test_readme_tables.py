"""The README's generated tables equal what the binary prints from the declarations: every block
between `<!-- sinklab ARGS -->` and `<!-- end -->` is the output of `sinklab ARGS`."""
import os
import re

from harness import ROOT, check, finish, sinklab

readme = open(os.path.join(ROOT, "README.md")).read()
blocks = re.findall(r"<!-- sinklab (.*?) -->\n(.*?)<!-- end -->", readme, re.S)
check("the README has generated tables", len(blocks) >= 1, f"{len(blocks)} blocks")
for args, body in blocks:
    out = sinklab(*args.split()).stdout
    check(f"README block 'sinklab {args}' is current", body == out,
          f"regenerate it with: build/sinklab {args}\n--- README\n{body}--- binary\n{out}")
finish()
