#!/bin/bash
# One device call (16 cores): build, train the cpu_scale runs (experiments/configs/cpu_scale.yaml)
# of softmax, sigmoid, K/V bias, sink token and headwise gate side by side at THREADS threads each,
# then `sinklab analyze` every checkpoint of each: streaming with caches of W = 64 (the context)
# and 32 tokens keeping k = 0, 1 or 4 sinks, and every intervention. Each run's config, log.h5 and
# analysis.h5 (no checkpoints) come back in $OUT/analysis_runs.tgz, the logs in $OUT/logs.txt.
# Carry .debs (../shared/device/pack-deps.sh) and data/cache/analysis_corpus (truncate_corpus.py).
# usage: [THREADS=3] [STEPS=1800] [TRAIN_LIMIT=400] experiments/device/analysis.sh
source .debs/use-deps.sh
cmake -S . -B /tmp/b -DCMAKE_BUILD_TYPE=Release -DSINKLAB_TESTS=OFF >/dev/null && make -C /tmp/b -j16 sinklab >/tmp/build.log 2>&1 ||
  { tail -30 /tmp/build.log; exit 1; }
S=/tmp/b/sinklab
C=(experiments/configs/cpu_scale.yaml "data.dir=$PWD/data/cache/analysis_corpus" run.dir=/tmp/runs "train.steps=${STEPS:-1800}")
declare -A V=([softmax]="" [sigmoid]="attention.kernel=sigmoid attention.normalize=false"
              [kv_bias]="attention.kv_bias=true" [sink_token]="attention.sink_token=true" [gate]="attention.gate=headwise")
export OMP_NUM_THREADS=${THREADS:-3}
# Stopped after TRAIN_LIMIT seconds (SIGTERM: a run checkpoints and exits), so the analysis fits the call.
for n in "${!V[@]}"; do
  timeout -s TERM "${TRAIN_LIMIT:-400}" $S train "${C[@]}" run.name=$n ${V[$n]} > /tmp/$n.train.log 2>&1 &
done
wait
for n in "${!V[@]}"; do
  $S analyze /tmp/runs/$n --every-checkpoint --streaming "W=64,k=0;W=64,k=1;W=64,k=4;W=32,k=0;W=32,k=1;W=32,k=4" \
    --length 1024 --streams 8 --intervene all > /tmp/$n.analyze.log 2>&1 &
done
wait
for n in "${!V[@]}"; do echo "== $n"; tail -3 /tmp/$n.train.log; tail -4 /tmp/$n.analyze.log; done | tee "$OUT/logs.txt"
tar czf "$OUT/analysis_runs.tgz" --exclude=checkpoints -C /tmp runs
