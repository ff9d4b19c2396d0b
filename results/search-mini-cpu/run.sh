#!/usr/bin/env bash
# Reproduces results/search-mini-cpu/: the CPU mini protocol of the thesis's differentiable search
# (configs/search-mini-cpu.toml on NB201, configs/search-mini-cpu-s2.toml on the DARTS space's S2; one thread
# per search, two searches side by side on the 2 cores, about 25 minutes each): DARTS (first order) against
# SoTL-DARTS on NB201 with seeds 0-2 (Table 4.6's rows, Figs. 4.12-4.13), then both on S2 with seed 0 (the
# eigenvalue trajectory, Figs. 4.14-4.16), then `harness search report` of each space. A killed run resumes
# where it stopped (every search checkpoints each epoch; rerun this script). From the repo root:
#   DATA=/path/to/cifar-root bash results/search-mini-cpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/search-mini-cpu}
SEEDS=${SEEDS:-"0 1 2"}
HARNESS=${HARNESS:-harness}
search() {  # search CONFIG ALGORITHM FOLDER SEED
  $HARNESS search run --config "$1" --data-root "$DATA" --no-progress --algorithm "$2" --out "$OUT/$3" --seed "$4"
}
mkdir -p "$OUT"
queue() {  # queue ALGORITHM: NB201 seeds, then S2 seed 0
  local seed
  for seed in $SEEDS; do search configs/search-mini-cpu.toml "$1" "nb201-$1" "$seed"; done
  search configs/search-mini-cpu-s2.toml "$1" "s2-$1" 0
}
queue darts-1 >> "$OUT/queue-darts-1.log" 2>&1 &
a=$!
queue sotl-darts >> "$OUT/queue-sotl-darts.log" 2>&1 &
b=$!
wait $a && wait $b
$HARNESS search report "$OUT"/nb201-darts-1 "$OUT"/nb201-sotl-darts --out "$OUT/report-nb201" --label "CPU mini protocol (configs/search-mini-cpu.toml)"
$HARNESS search report "$OUT"/s2-darts-1 "$OUT"/s2-sotl-darts --out "$OUT/report-s2" --label "CPU mini protocol (configs/search-mini-cpu-s2.toml)"
echo "reported: $OUT/report-nb201/table.md, $OUT/report-s2/table.md"
