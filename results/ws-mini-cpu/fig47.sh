#!/usr/bin/env bash
# Fig. 4.7's grid at mini scale, after run.sh: SPOS supernet seed 0 finetuned with batch 128 and 256
# at lr 0.01 (lr 0.001 at batch 64 is run.sh's spos-lr0.001), then the tables again with the grid.
# About 75 minutes on one core. From the repo root: DATA=... bash results/ws-mini-cpu/fig47.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/ws-mini-cpu}
HARNESS=${HARNESS:-harness}
for batch in 128 256; do
  run="$OUT/spos-batch$batch"
  args=(--config configs/ws-mini-cpu.toml --data-root "$DATA" --no-progress --algorithm spos --finetune-batch "$batch" --out "$run")
  $HARNESS ws prepare "${args[@]}"
  [ -e "$run/supernet-seed0.pt" ] || cp "$OUT/spos/supernet-seed0.pt" "$run/"
  $HARNESS ws finetune "${args[@]}" --seed 0
  $HARNESS ws report "${args[@]}" --seeds 0
done
$HARNESS ws tables "$OUT"/{spos,fairnas,multipath,reptile,metaprox,spos-lr0.001,spos-batch128,spos-batch256} --out "$OUT/tables" \
  --label "CPU mini protocol"
