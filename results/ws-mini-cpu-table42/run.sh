#!/usr/bin/env bash
# Reproduces results/ws-mini-cpu-table42/: the CPU mini protocol of the thesis's Table 4.2 (one thread per run, two
# queues on the 2 cores): SPOS, MultiPath and Metaprox (the issue's three) on the spaces SPACES, seed-major (supernet
# seed s of every algorithm of a space before seed s+1, so a run cut short still compares the algorithms at the same
# seeds), then `harness ws report` of each folder and `harness ws tables` of all of them (Table 4.2's layout, beside
# the thesis). Configs: configs/ws-mini-cpu-nb1shot1.toml with its `space` set (about 17 minutes per SPOS seed, 30 per
# MultiPath or Metaprox seed on one core), configs/ws-mini-cpu-darts.toml (about 40 and 75). A killed run resumes where
# it stopped (rerun this script). NB1SHOT1_CONFIG and DARTS_CONFIG replace the two configs. From the repo root:
#   DATA=/path/to/cifar-root SPACES="nb1shot1-1 nb1shot1-2 nb1shot1-3 darts" SEEDS="0 1 2" bash results/ws-mini-cpu-table42/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/ws-mini-cpu-table42}
SPACES=${SPACES:-"nb1shot1-1 nb1shot1-2 nb1shot1-3 darts"}
SEEDS=${SEEDS:-"0 1 2"}
HARNESS=${HARNESS:-harness}
mkdir -p "$OUT"

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
one_seed() {  # one_seed SPACE ALGORITHM SEED: train (skipped when finished) and finetune
  ws prepare "$1" "$2" > /dev/null
  ws train "$1" "$2" --seed "$3"
  ws finetune "$1" "$2" --seed "$3"
}
for space in $SPACES; do
  done_seeds=""
  for seed in $SEEDS; do
    ( one_seed "$space" spos "$seed" && one_seed "$space" metaprox "$seed" ) >> "$OUT/$space.queue-a.log" 2>&1 &
    a=$!
    one_seed "$space" multipath "$seed" >> "$OUT/$space.queue-b.log" 2>&1 &
    b=$!
    wait $a && wait $b
    done_seeds="${done_seeds:+$done_seeds,}$seed"
    for algorithm in spos multipath metaprox; do ws report "$space" "$algorithm" --seeds "$done_seeds" > /dev/null; done
    reported=$(for folder in "$OUT"/*/*/; do [ -e "$folder/table.md" ] && echo "${folder%/}"; done)
    # shellcheck disable=SC2086  # one folder per line, no spaces in the names
    $HARNESS ws tables $reported --out "$OUT/tables" --label "CPU mini protocol, configs/ws-mini-cpu-nb1shot1.toml and -darts.toml"
    echo "$space seeds $done_seeds reported: $OUT/tables/tables.md"
  done
done
