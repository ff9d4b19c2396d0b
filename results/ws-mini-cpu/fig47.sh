#!/usr/bin/env bash
# Fig. 4.7's grid at mini scale, after run.sh: SPOS supernet seed 0 finetuned with batch 128 and 256 at
# lr 0.01 (lr 0.001 at batch 64 is run.sh's spos-lr0.001), the two side by side (one thread each), then
# the tables again with the grid. About 50 minutes on the two cores (25 + 50 minutes of one core).
# From the repo root: DATA=... bash results/ws-mini-cpu/fig47.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/ws-mini-cpu}
HARNESS=${HARNESS:-harness}
finetune_at_batch() {
  local batch=$1 run="$OUT/spos-batch$1"
  local args=(--config configs/ws-mini-cpu.toml --data-root "$DATA" --no-progress --algorithm spos --finetune-batch "$batch" --out "$run")
  $HARNESS ws prepare "${args[@]}" > /dev/null
  [ -e "$run/supernet-seed0.pt" ] || cp "$OUT/spos/supernet-seed0.pt" "$run/"
  $HARNESS ws finetune "${args[@]}" --seed 0
  $HARNESS ws report "${args[@]}" --seeds 0
}
finetune_at_batch 256 > "$OUT.batch256.log" 2>&1 &
a=$!
finetune_at_batch 128 > "$OUT.batch128.log" 2>&1 &
b=$!
wait $a && wait $b
$HARNESS ws tables "$OUT"/{spos,fairnas,multipath,reptile,metaprox,spos-lr0.001,spos-batch128,spos-batch256} --out "$OUT/tables" \
  --label "CPU mini protocol, supernet seeds 0,1,2 (Fig. 4.7's batch 128 and 256 runs: seed 0)"
