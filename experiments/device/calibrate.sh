#!/bin/bash
# One device call (16 cores): build, then the natural-text calibration (11 runs) and the longer
# Bigram-Backcopy sweep (5 runs) side by side, one thread per run, stopped (checkpointed) after
# LIMIT seconds; summaries and the logs (no checkpoints) go to $OUT.
# Runs from /work/main with .sweepwt (this worktree's files + corpus + Brown) and .debs carried.
LIMIT=${1:-400}
source .debs/use-deps.sh
cmake -S .sweepwt -B /tmp/b >/dev/null && make -C /tmp/b -j16 sinklab >/tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
cd .sweepwt
export SINKLAB_CACHE=$PWD/cache
S=/tmp/b/sinklab
nproc; lscpu | grep "Model name"
timeout -s TERM $LIMIT $S sweep experiments/calibration.yaml --jobs 11 --threads 1 data.dir=$PWD/corpus run.dir=$PWD/runs > $OUT/calibration.log 2>&1 &
timeout -s TERM $LIMIT $S sweep experiments/backcopy_long.yaml --jobs 5 --threads 1 run.dir=$PWD/runs > $OUT/backcopy_long.log 2>&1 &
wait
sleep 2
$S sweep experiments/calibration.yaml --summary data.dir=$PWD/corpus run.dir=$PWD/runs > /dev/null 2>&1
$S sweep experiments/backcopy_long.yaml --summary run.dir=$PWD/runs > /dev/null 2>&1
cp runs/calibration/summary.md $OUT/calibration_summary.md; cp runs/backcopy_long/summary.md $OUT/backcopy_long_summary.md
tar czf $OUT/runs.tgz --exclude=checkpoints runs
cat $OUT/calibration_summary.md $OUT/backcopy_long_summary.md | grep "^|"
