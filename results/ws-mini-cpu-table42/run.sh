#!/usr/bin/env bash
# Reproduces results/ws-mini-cpu-table42/: the CPU mini protocol of the thesis's Table 4.2 (one thread per run, two
# runs at a time on the 2 cores): SPOS, MultiPath and Metaprox (the issue's three) on the spaces SPACES and supernet
# seeds SEEDS, then `harness ws report` of each folder over its finished seeds and `harness ws tables` of all of them
# (Table 4.2's layout, beside the thesis). The runs are queued seed-major, then by algorithm, then by space (every
# space's SPOS seed s before its MultiPath seed s), and the two workers take them in that order, so a run cut short
# still has the cheapest algorithm on every space. Configs: configs/ws-mini-cpu-nb1shot1.toml with its `space` set
# (about 17 minutes per SPOS seed, 25-40 per MultiPath or Metaprox seed on one core beside another run),
# configs/ws-mini-cpu-darts.toml (about 11 and 18-24). A killed run resumes where it stopped (rerun this script; a
# finished seed is marked in $OUT/done/; `run.sh report` reports what has finished). NB1SHOT1_CONFIG and DARTS_CONFIG
# replace the two configs. From the repo root:
#   DATA=/path/to/cifar-root SPACES="nb1shot1-1 nb1shot1-2 nb1shot1-3 darts" SEEDS="0 1 2" bash results/ws-mini-cpu-table42/run.sh
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."
export DATA=${DATA:-data}
export OUT=${OUT:-runs/ws-mini-cpu-table42}
SPACES=${SPACES:-"nb1shot1-1 nb1shot1-2 nb1shot1-3 darts"}
SEEDS=${SEEDS:-"0 1 2"}
export HARNESS=${HARNESS:-harness}
ALGORITHMS="spos multipath metaprox"
mkdir -p "$OUT/done"

config() {  # config SPACE: the space's mini config ($OUT/SPACE.toml: the shipped one with its space set)
  local base=${NB1SHOT1_CONFIG:-configs/ws-mini-cpu-nb1shot1.toml}
  [ "$1" = darts ] && base=${DARTS_CONFIG:-configs/ws-mini-cpu-darts.toml}
  [ -e "$OUT/$1.toml" ] || sed "s/^space = .*/space = \"$1\"/" "$base" > "$OUT/$1.toml"
  echo "$OUT/$1.toml"
}
ws() {  # ws VERB SPACE ALGORITHM [options]: into $OUT/SPACE/ALGORITHM
  local verb=$1 space=$2 algorithm=$3; shift 3
  $HARNESS ws "$verb" --config "$(config "$space")" --data-root "$DATA" --no-progress --algorithm "$algorithm" \
    --out "$OUT/$space/$algorithm" "$@"
}
if [ "${1:-}" = unit ]; then  # unit SPACE ALGORITHM SEED (a worker's job): train (skipped when finished), finetune
  space=$2 algorithm=$3 seed=$4
  if [ -e "$OUT/done/$space-$algorithm-$seed" ]; then exit 0; fi
  {
    ws prepare "$space" "$algorithm" > /dev/null
    ws train "$space" "$algorithm" --seed "$seed"
    ws finetune "$space" "$algorithm" --seed "$seed"
  } >> "$OUT/$space.$algorithm.log" 2>&1
  touch "$OUT/done/$space-$algorithm-$seed"
  echo "$(date -u +%FT%TZ) done: $space $algorithm seed $seed"
  exit 0
fi

for space in $SPACES; do config "$space" > /dev/null; done  # written once, before the workers start
if [ "${1:-}" != report ]; then  # `run.sh report`: only the reports and tables of what has finished
  for seed in $SEEDS; do for algorithm in $ALGORITHMS; do for space in $SPACES; do
    echo "$space $algorithm $seed"
  done; done; done | xargs -P 2 -L 1 bash "$SELF" unit
fi

for space in $SPACES; do for algorithm in $ALGORITHMS; do
  seeds=$(for seed in $SEEDS; do if [ -e "$OUT/done/$space-$algorithm-$seed" ]; then echo "$seed"; fi; done | paste -sd, -)
  if [ -n "$seeds" ]; then ws report "$space" "$algorithm" --seeds "$seeds" > /dev/null; fi
done; done
reported=$(for folder in "$OUT"/*/*/; do if [ -e "$folder/table.md" ]; then echo "${folder%/}"; fi; done)
# shellcheck disable=SC2086  # one folder per line, no spaces in the names
$HARNESS ws tables $reported --out "$OUT/tables" --label "CPU mini protocol, configs/ws-mini-cpu-nb1shot1.toml and -darts.toml"
echo "reported: $OUT/tables/tables.md"
