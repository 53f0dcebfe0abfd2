#!/bin/bash
# One device call (16-core host): the host as a sweep machine for the reproduction's runs (issue 20,
# item 3). At the calibrated shape (LLaMA preset, d_model 128, 4 layers, 4 heads, context 64,
# batch 32, vocabulary 1024, random tokens, statistics every 50 steps from the probe), in f32 and
# bf16:
#   alone  one single-thread run by itself (`sinklab sweep --jobs 1 --pin`: on CPU 0);
#   full   16 single-thread runs at once, one per core (`sinklab sweep --jobs 16 --threads 1 --pin`);
#   torch  16 single-thread PyTorch eager processes of the same model at once, one per core
#          (taskset), and one alone;
#   host   bench_host alone and on every core at once: what the host itself keeps per core of
#          arithmetic, an L2 stream and a memory stream when all cores are busy.
# Prints the aggregate tokens/s of each, by wall time and by steps (sweep_rate), full against one
# alone (goal >= 12x of 16) and against torch (goal >= 2x), PyTorch's model GFLOP/s a core at
# once and twice that against oneDNN's f32 matmul peak with every core busy, and the runs per hour
# this gives the reproduction (RUN_STEPS steps of 32 x 64 tokens per run; RUNS runs).
# Carry .debs (../shared/device/pack-deps.sh) and .bench (a copy of ../shared/bench/torch_ref.py,
# the reference; not part of the project).
# EXTRA adds overrides to every sinklab run (e.g. EXTRA=train.micro_batch=8). REPEAT alternates
# alone and full that many times per precision: the host's own noise is larger than most levers.
# usage: [STEPS=200] [TORCH_STEPS=30] [RUN_STEPS=5000] [RUNS=80] [REPEAT=1] [EXTRA=key=value,...]
#        experiments/device/concurrency.sh
source .debs/use-deps.sh
cmake -S . -B /tmp/b -DCMAKE_BUILD_TYPE=Release >/dev/null && make -C /tmp/b -j16 sinklab bench_host >/tmp/build.log 2>&1 ||
  { tail -30 /tmp/build.log; exit 1; }
S=/tmp/b/sinklab
STEPS=${STEPS:-200} TORCH_STEPS=${TORCH_STEPS:-30} RUN_STEPS=${RUN_STEPS:-5000} RUNS=${RUNS:-80} REPEAT=${REPEAT:-1}
N=$(nproc)
W=/tmp/concurrency
rm -rf $W && mkdir -p $W
lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c "import torch; print('torch', torch.__version__)"
echo "$N CPUs; $STEPS steps per sinklab run${EXTRA:+ ($EXTRA)}, $TORCH_STEPS timed steps per PyTorch process"

# A sweep of `runs` seeds of the calibrated shape.
sweep_file() {  # name runs dtype
  local seeds; seeds=$(seq -s, 0 $(($2 - 1)))
  cat > $W/$1.yaml <<EOF
base: $PWD/configs/default.yaml
overrides: [model.d_model=128, model.n_layers=4, model.n_heads=4, model.context=64, data.source=random,
            data.vocab=1023, train.batch_size=32, train.steps=$STEPS, train.dtype=$3, train.eval_every=0,
            train.checkpoint_every=0, train.log_every=50, stats.every=50, stats.source=probe${EXTRA:+, $EXTRA}]
grid:
  train.seed: [$seeds]
EOF
}

# Aggregate tokens/s of a sweep's runs, two ways; they ran side by side, so the rates add:
#   wall  each run's tokens over its wall time (logs/<run>.wall): start, data, statistics, log
#         and checkpoint included, what the reproduction gets;
#   steps each run's rate over its progress lines after the first (train.log_every steps each, the
#         statistics steps among them; the first holds the warm-up), as PyTorch's rate is of its
#         timed steps after a warm-up.
sweep_rate() {  # name jobs
  $S sweep $W/$1.yaml --jobs $2 --threads 1 --pin run.dir=$W/runs > $W/$1.log 2>&1 || { tail -20 $W/$1.log; exit 1; }
  python3 - "$W/runs/$1/logs" $STEPS <<'EOF'
import glob, re, sys
logs, steps = sys.argv[1], int(sys.argv[2])
runs = [f[:-len(".wall")] for f in glob.glob(logs + "/*.wall")]
walls = [float(open(f + ".wall").read()) for f in runs]
rates = []
for f in runs:
    r = [float(x) * 1e3 for x in re.findall(r"\| ([0-9.]+)k tok/s", open(f + ".log").read())][1:]
    rates.append(len(r) / sum(1 / x for x in r))  # equal tokens a line: the harmonic mean
print(sum(steps * 32 * 64 / w for w in walls), sum(rates))
EOF
}

# Aggregate tokens/s of `n` single-thread PyTorch processes at once, one per core.
torch_rate() {  # n
  for k in $(seq 0 $(($1 - 1))); do
    OMP_NUM_THREADS=1 taskset -c $k python3 .bench/torch_ref.py --d 128 --layers 4 --heads 4 --ffn 344 --seq 64 \
      --batch 32 --vocab 1024 --steps $TORCH_STEPS > $W/torch_$1_$k.log 2>&1 &
  done
  wait
  cat $W/torch_$1_*.log | sed -n 's/.*tokens\/s=\([0-9.]*\) GFLOP\/s=\([0-9.]*\).*/\1 \2/p' |
    awk '{t += $1; g += $2} END {print t, g / t * 1e9}'  # tokens/s in all, FLOP a token
}

# bench_host on CPU 0 alone, then on every CPU at once: each measure's mean per core at once over
# its value alone.
taskset -c 0 /tmp/b/bench_host > $W/host_alone.txt
for k in $(seq 0 $(($N - 1))); do taskset -c $k /tmp/b/bench_host > $W/host_full_$k.txt & done; wait
python3 - $W $N <<'EOF'
import glob, sys
read = lambda f: {l.split()[0]: float(l.split()[1]) for l in open(f)}
alone = read(sys.argv[1] + "/host_alone.txt")
full = [read(f) for f in glob.glob(sys.argv[1] + "/host_full_*.txt")]
for k, unit in (("fma", "GFLOP/s"), ("l2", "GB/s"), ("memory", "GB/s")):
    each = sum(f[k] for f in full) / len(full)
    print(f"host {k}: alone {alone[k]:.1f} {unit}; {sys.argv[2]} at once {each:.1f} each = {each / alone[k]:.2f} of alone")
EOF

# oneDNN's f32 matmul peak (2048^3, as sinklab bench measures it) on CPU 0 alone, then on every CPU
# at once: the ceiling of a core's f32 products when every core trains.
peak() { OMP_NUM_THREADS=1 taskset -c $1 $S bench --shapes calibrated --precision f32 --threads 1 --steps 1 --no-torch |
  sed -n 's/.*: f32 \([0-9.]*\) GFLOP\/s.*/\1/p' | head -1; }
peak_alone=$(peak 0)
for k in $(seq 0 $(($N - 1))); do peak $k > $W/peak_$k.txt & done; wait
peak_full=$(cat $W/peak_*.txt | awk '{s += $1} END {print s / NR}')
echo "f32 matmul peak: alone $peak_alone GFLOP/s; $N at once $peak_full each"

# Each repeat measures PyTorch too, so that each ratio has a denominator of its own time.
for rep in $(seq $REPEAT); do
  read t1 flop < <(torch_rate 1); read tn flop < <(torch_rate $N)
  echo "PyTorch eager, 1 thread: alone $t1 tokens/s; $N at once $tn tokens/s in all," \
    "$(python3 -c "g = $tn * $flop / $N / 1e9; print(f'{g:.1f} GFLOP/s a core; 2x that needs {2 * g:.1f}, {2 * g / $peak_full:.2f} of the f32 peak at once')")"
  for dtype in f32 bf16; do
    sweep_file alone_$dtype 1 $dtype; sweep_file full_$dtype $N $dtype
    rm -rf $W/runs  # a sweep skips the finished runs it finds; each repeat trains its own
    read a a_steps < <(sweep_rate alone_$dtype 1); read f f_steps < <(sweep_rate full_$dtype $N)
    python3 - $dtype $N $a $f $a_steps $f_steps $tn $flop $peak_full $RUN_STEPS $RUNS <<'EOF'
import sys
dtype, n = sys.argv[1], int(sys.argv[2])
alone, full, alone_steps, full_steps, torch, flop, peak = map(float, sys.argv[3:10])
run_steps, runs = int(sys.argv[10]), int(sys.argv[11])
per_hour = full * 3600 / (run_steps * 32 * 64)
print(f"sinklab {dtype}: by wall time alone {alone:.0f} tokens/s; {n} at once {full:.0f} tokens/s in all = "
      f"{full / alone:.1f}x one alone (goal >= {0.75 * n:.0f}x) = {full / torch:.2f}x PyTorch's {n} (goal >= 2x); "
      f"{per_hour:.1f} runs of {run_steps} steps per hour, {runs} runs in {runs / per_hour:.1f} h")
print(f"sinklab {dtype}: by steps alone {alone_steps:.0f} tokens/s; {n} at once {full_steps:.0f} tokens/s in all "
      f"({full_steps * flop / n / 1e9:.1f} GFLOP/s a core, {full_steps * flop / n / 1e9 / peak:.2f} of the f32 peak at once) = {full_steps / alone_steps:.1f}x one alone = "
      f"{full_steps / torch:.2f}x PyTorch's {n}")
EOF
  done
  for f in $W/alone_*.log $W/full_*.log; do cp $f "$OUT/$(basename $f .log)_$rep.log"; done
done
cat $W/host_*.txt > "$OUT/host.txt"
