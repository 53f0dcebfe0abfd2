#!/bin/bash
# One device call (16-core Xeon with AMX): build, then `sinklab bench` against PyTorch eager (the
# device's python3) at 16 and 2 threads in f32 and bf16, the 1-16 thread scaling, and which oneDNN
# kernels the bf16 matmuls get. Carry .debs (../shared/device/pack-deps.sh) and .bench (a copy of
# ../shared/bench/torch_ref.py, the reference; not part of the project).
source .debs/use-deps.sh
# sinklab's threads pinned one per CPU (--pin; PIN=0 leaves them floating). The PyTorch reference
# runs with its defaults: under OMP_PROC_BIND=close it ran ten times slower.
[ "${PIN:-1}" = 1 ] && P=--pin || P=
cmake -S . -B /tmp/b >/dev/null && make -C /tmp/b -j16 sinklab >/tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
S=/tmp/b/sinklab
REF=(--python python3 --torch-ref "$PWD/.bench/torch_ref.py")
lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c "import torch; print('torch', torch.__version__)"
echo "== 16 threads"; $S bench --threads 16 --precision f32,bf16 --stats $P --steps ${STEPS:-10} "${REF[@]}"
echo "== 2 threads"; $S bench --threads 2 --precision f32,bf16 $P --steps ${STEPS:-10} "${REF[@]}"
echo "== scaling"
for p in f32 bf16; do $S bench --scaling 1,2,4,8,16 --precision $p --no-torch $P --steps ${STEPS:-10}; done
echo "== oneDNN kernels of a bf16 step (count by implementation)"
ONEDNN_VERBOSE=1 $S bench --shapes small --attn softmax --precision bf16 --threads 16 --steps 1 --no-torch |
  grep ",exec," | grep matmul | cut -d, -f5,6 | sort | uniq -c | sort -rn | head
