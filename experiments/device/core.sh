#!/bin/bash
# One device call (16 cores): the kernel (5), K/V-bias (4), LR x WD (4) and prefix/window (3)
# sweeps at the CPU scale, one thread per run, stopped (checkpointed) after LIMIT seconds.
LIMIT=${1:-300}
source .debs/use-deps.sh
cmake -S .sweepwt -B /tmp/b >/dev/null && make -C /tmp/b -j16 sinklab >/tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
cd .sweepwt
S=/tmp/b/sinklab
for s in kernels kv_bias lr_wd prefix_window; do
  timeout -s TERM $LIMIT $S sweep experiments/$s.yaml --jobs 5 --threads 1 data.dir=$PWD/corpus run.dir=$PWD/runs > $OUT/$s.log 2>&1 &
done
wait; sleep 2
for s in kernels kv_bias lr_wd prefix_window; do
  $S sweep experiments/$s.yaml --summary data.dir=$PWD/corpus run.dir=$PWD/runs > /dev/null 2>&1
  grep "^|" runs/$s/summary.md
done
tar czf $OUT/core_runs.tgz --exclude=checkpoints runs
