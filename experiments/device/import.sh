#!/bin/bash
# Merges the results a batch.sh call brought back (results.tgz: each sweep's summary.csv and
# curves) into experiments/results/ (sinklab sweep --import: committed rows of runs not in the
# batch are kept), then redraws the plots and experiments/REPORT.md. Run in the repository root
# with build/sinklab built; commit experiments/results, experiments/plots and REPORT.md afterwards.
# usage: experiments/device/import.sh RESULTS_TGZ
set -euo pipefail
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
tar xzf "$1" -C "$d"
for s in "$d"/*/; do
  s=$(basename "$s")
  build/sinklab sweep "experiments/$s.yaml" --import "$d/$s" --into experiments/results
done
/usr/bin/python3 scripts/report.py --plots
