#!/usr/bin/env bash
# Reproduces results/ws-mini-cpu/: the CPU mini protocol (configs/ws-mini-cpu.toml, one thread per
# run) of the thesis's Table 4.1 for SPOS, FairNAS, MultiPath, Reptile and Metaprox (the same 200
# archs), SPOS's supernets finetuned again at lr 0.001 (Table 4.4), then `harness ws tables`.
# Seed-major: supernet seed s is trained and finetuned for every algorithm before seed s+1 starts,
# so a run cut short still compares all algorithms at the same seeds (SEEDS="0 1 2" is the thesis's
# 3; each seed is about 100 minutes on two queues sharing the 2 cores). A killed run resumes where
# it stopped (rerun this script). From the repo root:
#   DATA=/path/to/cifar-root SEEDS="0 1 2" bash results/ws-mini-cpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/ws-mini-cpu}
SEEDS=${SEEDS:-"0 1 2"}
HARNESS=${HARNESS:-harness}
ws() {  # ws VERB ALGORITHM FOLDER [options]
  local verb=$1 algorithm=$2 folder=$3; shift 3
  $HARNESS ws "$verb" --config configs/ws-mini-cpu.toml --data-root "$DATA" --no-progress \
    --algorithm "$algorithm" --out "$OUT/$folder" "$@"
}
one_seed() {  # one_seed ALGORITHM FOLDER SEED [options]: train (skipped when finished) and finetune
  local algorithm=$1 folder=$2 seed=$3; shift 3
  ws prepare "$algorithm" "$folder" "$@" > /dev/null
  ws train "$algorithm" "$folder" --seed "$seed" "$@"
  ws finetune "$algorithm" "$folder" --seed "$seed" "$@"
}
spos_at_lr_0001() {  # SPOS's supernet of this seed (not trained again), finetuned at lr 0.001
  local seed=$1
  mkdir -p "$OUT/spos-lr0.001"
  [ -e "$OUT/spos-lr0.001/supernet-seed$seed.pt" ] || cp "$OUT/spos/supernet-seed$seed.pt" "$OUT/spos-lr0.001/"
  one_seed spos spos-lr0.001 "$seed" --finetune-lr 0.001
}
done_seeds=""
for seed in $SEEDS; do
  ( one_seed spos spos "$seed" && one_seed multipath multipath "$seed" && one_seed reptile reptile "$seed" ) \
    >> "$OUT.queue-a.log" 2>&1 &
  a=$!
  ( one_seed fairnas fairnas "$seed" && one_seed metaprox metaprox "$seed" && spos_at_lr_0001 "$seed" ) \
    >> "$OUT.queue-b.log" 2>&1 &
  b=$!
  wait $a && wait $b
  done_seeds="${done_seeds:+$done_seeds,}$seed"
  for algorithm in spos fairnas multipath reptile metaprox; do
    ws report "$algorithm" "$algorithm" --seeds "$done_seeds" > /dev/null
  done
  ws report spos spos-lr0.001 --seeds "$done_seeds" --finetune-lr 0.001 > /dev/null
  $HARNESS ws tables "$OUT"/{spos,fairnas,multipath,reptile,metaprox,spos-lr0.001} --out "$OUT/tables" \
    --label "CPU mini protocol, supernet seeds $done_seeds"
  echo "seeds $done_seeds reported: $OUT/tables/tables.md"
done
