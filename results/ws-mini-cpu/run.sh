#!/usr/bin/env bash
# Reproduces results/ws-mini-cpu/: the CPU mini protocol (configs/ws-mini-cpu.toml, one thread per
# run) of the thesis's Table 4.1 for SPOS, FairNAS, MultiPath, Reptile and Metaprox (3 supernet seeds
# each, the same 200 archs), SPOS's supernets finetuned again at lr 0.001 (Table 4.4), then
# `harness ws tables` (Tables 4.1, 4.4, 4.5, Figs. 4.6b, 4.8). Two queues of runs share the 2 cores
# (about 4 hours); a killed run resumes where it stopped (rerun this script). From the repo root:
#   DATA=/path/to/cifar-root bash results/ws-mini-cpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/ws-mini-cpu}
HARNESS=${HARNESS:-harness}
ws() { $HARNESS ws run --config configs/ws-mini-cpu.toml --data-root "$DATA" --no-progress "$@"; }
spos_at_lr_0001() {  # the same supernets (a finished checkpoint is not trained again), finetuned at lr 0.001
  mkdir -p "$OUT/spos-lr0.001"
  for seed in 0 1 2; do
    [ -e "$OUT/spos-lr0.001/supernet-seed$seed.pt" ] || cp "$OUT/spos/supernet-seed$seed.pt" "$OUT/spos-lr0.001/"
  done
  ws --algorithm spos --finetune-lr 0.001 --out "$OUT/spos-lr0.001"
}
( ws --algorithm spos --out "$OUT/spos" && ws --algorithm multipath --out "$OUT/multipath" && spos_at_lr_0001 ) > "$OUT.queue-a.log" 2>&1 &
( ws --algorithm fairnas --out "$OUT/fairnas" && ws --algorithm reptile --out "$OUT/reptile" \
  && ws --algorithm metaprox --out "$OUT/metaprox" ) > "$OUT.queue-b.log" 2>&1 &
wait
$HARNESS ws tables "$OUT"/{spos,fairnas,multipath,reptile,metaprox,spos-lr0.001} --out "$OUT/tables" --label "CPU mini protocol"
