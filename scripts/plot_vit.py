#!/usr/bin/python3
"""Pictures of where a ViT's attention and norms sit, from a run's log.h5 (issue 18).

  /usr/bin/python3 scripts/plot_vit.py RUN [--images 0,1,2] [--steps S,S,...] [--layer L] [--out PNG]

For each probe image (vit/probe_images) and each logged step: the image, then over its patch grid
the CLS token's attention (vit/image_cls_attention), the mean attention each token receives
(vit/image_importance) and the token norms (vit/image_token_norm), all of layer L (default: the
last), mean over heads. CLS and registers, which have no place on the grid, are written under
each map. Steps default to four spread over the logged ones (the first, two between, the last).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from sinklab_log import read_run  # noqa: E402

MAPS = (("vit/image_cls_attention", "CLS attention"), ("vit/image_importance", "attention received"),
        ("vit/image_token_norm", "||h||"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run directory (or its log.h5) of a model.type = vit run")
    ap.add_argument("--images", default="0,1,2", help="probe images to draw (indices into vit/probe_images)")
    ap.add_argument("--steps", default="", help="logged steps to draw (default: four spread over the run)")
    ap.add_argument("--layer", type=int, default=-1, help="block whose maps are drawn (default: the last)")
    ap.add_argument("--out", default="", help="PNG to write (default: RUN/vit_maps.png)")
    args = ap.parse_args()

    run = read_run(args.run)
    if run.config.get("model", {}).get("type") != "vit":
        raise SystemExit(f"{args.run}: not a ViT run (model.type is {run.config.get('model', {}).get('type')!r})")
    missing = [n for n, _ in MAPS if n not in run.series] + [n for n in ["vit/probe_images"] if n not in run.series]
    if missing:
        raise SystemExit(f"{args.run}: its log has no {', '.join(missing)} (a run from before these were logged; "
                         f"replaying its checkpoints with `sinklab replay` writes them)")
    images = run.series["vit/probe_images"].values[-1]
    patch = int(run.config["vit"]["patch"])
    grid = images.shape[1] // patch, images.shape[2] // patch
    tokens = run.series[MAPS[0][0]].values.shape[-1]
    first = tokens - grid[0] * grid[1]  # the patches are the last tokens; before them CLS and the registers
    steps_all = run.series[MAPS[0][0]].steps
    if args.steps:
        steps = [int(s) for s in args.steps.split(",")]
        bad = [s for s in steps if s not in steps_all]
        if bad:
            raise SystemExit(f"steps {bad} are not logged; logged: {steps_all[0]} .. {steps_all[-1]} "
                             f"({len(steps_all)} rows)")
    else:
        steps = sorted({int(steps_all[int(round(i))]) for i in np.linspace(0, len(steps_all) - 1, 4)})
    blocks = run.series[MAPS[0][0]].values.shape[1]
    if not -blocks <= args.layer < blocks:
        raise SystemExit(f"--layer {args.layer}: the model has blocks 0 .. {blocks - 1} (negative counts from the last)")
    picks = [int(i) for i in args.images.split(",")]
    if any(i < 0 or i >= images.shape[0] for i in picks):
        raise SystemExit(f"--images: the probe has images 0 .. {images.shape[0] - 1}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 1 + len(steps) * len(MAPS)
    fig, axes = plt.subplots(len(picks), cols, figsize=(1.6 * cols, 1.9 * len(picks)), squeeze=False)
    for r, i in enumerate(picks):
        ax = axes[r][0]
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"image {i}", fontsize=7)
        for k, step in enumerate(steps):
            for m, (name, label) in enumerate(MAPS):
                s = run.series[name]
                row = s.values[list(s.steps).index(step)][args.layer, i]  # [tokens]
                ax = axes[r][1 + k * len(MAPS) + m]
                ax.imshow(images[i], cmap="gray", extent=(0, grid[1], grid[0], 0))
                ax.imshow(row[first:].reshape(grid), cmap="magma", alpha=0.65, extent=(0, grid[1], grid[0], 0),
                          vmin=0, vmax=max(float(row[first:].max()), 1e-9))
                extra = [f"CLS {row[0]:.2f}"] + [f"R{j} {row[1 + j]:.2f}" for j in range(first - 1)]
                ax.set_xlabel(" ".join(extra), fontsize=5)
                if r == 0:
                    ax.set_title(f"{label}\nstep {step}", fontsize=6)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    layer = args.layer if args.layer >= 0 else blocks + args.layer
    fig.suptitle(f"{os.path.basename(os.path.normpath(args.run))}: block {layer}, mean over heads; grid of "
                 f"{grid[0]}x{grid[1]} patches", fontsize=8)
    fig.tight_layout()
    out = args.out or os.path.join(args.run if os.path.isdir(args.run) else os.path.dirname(args.run), "vit_maps.png")
    fig.savefig(out, dpi=130)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
