#!/bin/bash
# One device call on the 16-core machine: runs a list of (sweep, run) pairs of experiments/ as
# processes of THREADS threads (default 1), each pinned to its own cores (taskset), as many at a
# time as the cores allow; polls them; stops those still running after LIMIT seconds from the
# start (SIGTERM: each checkpoints, and the same call again on the same warm machine resumes it:
# runs/ and build-device/ are git-ignored, so they stay); then writes each sweep's summary and
# puts summaries and curves (no checkpoints) in $OUT/results.tgz and the runs' logs (their
# stdout and log.h5) in $OUT/logs.tgz. Back here: experiments/device/import.sh FILES_AT/results.tgz.
#
# usage: [THREADS=T] [POLL=S] [MAX=N] [DRY=1] [SINKLAB=BIN] [OVERRIDES="k=v ..."] experiments/device/batch.sh LIMIT ITEM ...
#   ITEM: SWEEP/RUN, SWEEP (its runs not finished yet), or a file of such items (one a line, # comments),
#   e.g.  THREADS=2 MAX=16 experiments/device/batch.sh 1500 experiments/device/batches/calibrated.txt
# Carry .debs (../shared/device/pack-deps.sh) and .sweepwt (experiments/device/pack_corpus.sh puts the
# calibrated corpus there) for the LM runs; for the ViT runs carry .fmnist (Debian's Fashion-MNIST files,
# cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/), which sets data.dir. OVERRIDES apply to every run.
# SINKLAB=BIN uses that binary instead of building one (and no .debs).
set -uo pipefail
LIMIT=$1; shift
T0=$(date +%s)
THREADS=${THREADS:-1}
S=${SINKLAB:-$PWD/build-device/sinklab}  # SINKLAB=path: a binary already built (another machine)
if [ -z "${SINKLAB:-}" ]; then
  [ -d .debs ] && source .debs/use-deps.sh
  cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release >/dev/null && make -C build-device -j"$(nproc)" sinklab >/tmp/build.log 2>&1 ||
    { tail -30 /tmp/build.log; exit 1; }
fi
read -ra EXTRA <<<"${OVERRIDES:-}"  # words, unglobbed
[ -d .fmnist ] && EXTRA+=("data.dir=$PWD/.fmnist")
if [ -d .sweepwt ] && [ ! -f data/cache/bpe1024/train_000.bin ]; then  # the corpus the calibrated config reads
  mkdir -p data/cache/bpe1024
  cp .sweepwt/bpe1024/manifest.txt .sweepwt/bpe1024/tokenizer.txt .sweepwt/bpe1024/val_000.bin data/cache/bpe1024/ &&
    gunzip -c .sweepwt/bpe1024/train_000.bin.gz > data/cache/bpe1024/train_000.bin || { echo "no corpus in .sweepwt/bpe1024"; exit 1; }
fi
export SINKLAB_CACHE=$PWD/.sweepwt/cache

# The pairs, each checked against its sweep file before anything starts, each once; a run that
# experiments/results/ already holds as finished with the overrides its sweep file gives now (it ran
# elsewhere) or that runs/ holds as finished (an earlier call on this warm machine) is left out, and
# at most MAX pairs are taken (so a list longer than the call's waves is taken from its head).
declare -A RESULTS_DONE  # SWEEP/RUN -> the overrides it finished with
while IFS=$'\t' read -r key overrides; do RESULTS_DONE[$key]=$overrides; done < <(python3 - <<'PY'
import csv, glob, os
for f in glob.glob("experiments/results/*.csv"):
    for r in csv.DictReader(open(f)):
        if r.get("status") == "finished" and r.get("run"):
            print(f"{os.path.basename(f)[:-4]}/{r['run']}\t{r.get('overrides', '')}")
PY
)
PAIRS=()
pair() {  # SWEEP/RUN OVERRIDES: a run finished elsewhere with other overrides (its sweep file changed) runs again
  [[ " ${PAIRS[*]} " == *" $1 "* ]] && return
  if [[ -v RESULTS_DONE[$1] ]]; then
    [[ ${RESULTS_DONE[$1]} == "$2" ]] && return
    echo "batch: $1 finished in experiments/results/ with '${RESULTS_DONE[$1]}', its sweep now gives '$2': running it again" >&2
  fi
  (( ${#PAIRS[@]} < ${MAX:-1000000} )) && PAIRS+=("$1")
}
add() {  # SWEEP or SWEEP/RUN: the runs its dry run lists, i.e. those not finished (here, on a warm machine)
  local sweep=${1%%/*} only=() runs r
  [[ $1 == */* ]] && only=(--only "${1#*/}")
  runs=$($S sweep "experiments/$sweep.yaml" "${only[@]}" --dry-run "${EXTRA[@]}" </dev/null) || exit 1
  local line name words w ov
  while read -r line; do
    name=${line#*] } name=${name%%:*}
    read -ra words <<<"${line#* train }"  # CONFIG, the run's overrides, EXTRA, run.dir=, run.name=
    ov=()
    for w in "${words[@]:1}"; do
      [[ $w == run.dir=* ]] && break
      [[ " ${EXTRA[*]} " == *" $w "* ]] || ov+=("$w")
    done
    pair "$sweep/$name" "${ov[*]}"
  done < <(grep '^\[[a-z]*\] [^:]*:' <<<"$runs")
}
for item in "$@"; do
  if [ -f "$item" ]; then
    while read -r line; do line=${line%%#*}; [ -n "${line// }" ] && add $line; done < "$item"
  else
    add "$item"
  fi
done
if [ -n "${DRY:-}" ]; then printf '%s\n' "${PAIRS[@]}"; exit 0; fi  # DRY=1: the pairs a call would run
(( ${#PAIRS[@]} )) || { echo "batch: nothing left to run"; exit 0; }
SLOTS=$(( $(nproc) / THREADS ))
echo "batch: ${#PAIRS[@]} runs, $SLOTS at a time, $THREADS thread(s) each, until $LIMIT s"
mkdir -p runs/batch_logs

declare -a PID RUN
next=0; done_n=0; failed=(); stopping=0
start() {  # slot $1 takes the next pair
  local p=${PAIRS[$next]} first=$(( $1 * THREADS ))
  next=$((next + 1))
  taskset -c "$first-$((first + THREADS - 1))" $S sweep "experiments/${p%%/*}.yaml" --only "${p#*/}" --threads "$THREADS" "${EXTRA[@]}" \
    > "runs/batch_logs/${p//\//.}.out" 2>&1 &
  PID[$1]=$!; RUN[$1]=$p
}
while true; do
  now=$(date +%s)
  if (( now - T0 >= LIMIT && !stopping )); then
    stopping=1
    for s in "${!PID[@]}"; do kill -TERM "${PID[$s]}" 2>/dev/null; done
    echo "batch: time limit; stopping the running runs (they checkpoint)"
  fi
  for s in $(seq 0 $((SLOTS - 1))); do
    if [ -n "${PID[$s]:-}" ] && ! kill -0 "${PID[$s]}" 2>/dev/null; then
      wait "${PID[$s]}"; rc=$?
      if (( rc == 0 )); then done_n=$((done_n + 1)); elif (( !stopping )); then failed+=("${RUN[$s]} (exit $rc)"); fi
      unset "PID[$s]"
    fi
    if [ -z "${PID[$s]:-}" ] && (( !stopping && next < ${#PAIRS[@]} )); then start "$s"; fi
  done
  status=""
  for s in "${!PID[@]}"; do
    p=${RUN[$s]}
    step=$(grep -o '^step [0-9]*/[0-9]*' "runs/${p%%/*}/logs/${p#*/}.log" 2>/dev/null | tail -1)
    status+=" ${p#*/}:${step#step }"
  done
  echo "[batch $(( now - T0 ))s] ${done_n} done, ${#failed[@]} failed, ${#PID[@]} running, $(( ${#PAIRS[@]} - next )) queued |$status"
  (( ${#PID[@]} == 0 )) && (( stopping || next >= ${#PAIRS[@]} )) && break
  sleep "${POLL:-30}"
done
for f in "${failed[@]}"; do echo "FAILED $f: runs/batch_logs/$(sed 's|/|.|; s| .*||' <<<"$f").out"; done

SWEEPS=$(printf '%s\n' "${PAIRS[@]%%/*}" | sort -u)
files=(); logs=(batch_logs)
for s in $SWEEPS; do
  $S sweep "experiments/$s.yaml" --summary "${EXTRA[@]}" > "runs/batch_logs/$s.summary.out" 2>&1
  for f in summary.csv summary_seeds.csv summary.md curves; do [ -e "runs/$s/$f" ] && files+=("$s/$f"); done
  [ -e "runs/$s/logs" ] && logs+=("$s/logs")
  for f in runs/"$s"/*/log.h5; do [ -e "$f" ] && logs+=("${f#runs/}"); done
done
python3 - $SWEEPS <<'PY' || true
import csv, sys
for s in sys.argv[1:]:
    for r in csv.DictReader(open(f"runs/{s}/summary.csv")):
        if r["status"] != "pending":
            print(f"{s}/{r['run']}: {r['status']}, step {r['steps']}, Sink_1^0.3 {r.get('sink@0.3', '')} %, alpha_1 {r['alpha1']}")
PY
tar czf "$OUT/results.tgz" -C runs "${files[@]}" && tar czf "$OUT/logs.tgz" -C runs "${logs[@]}"
ls -la "$OUT"
