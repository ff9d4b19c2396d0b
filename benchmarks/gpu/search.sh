#!/usr/bin/env bash
# The thesis's differentiable-search tables on a lent GPU machine: Table 4.6 (NB201, configs/search-cifar10-gpu.toml),
# Table 4.8 with the S2 run (DARTS space, configs/search-darts-gpu.toml) and Table 4.7 (NAS-Bench-1Shot1 spaces 1-3,
# configs/search-nb1shot1-gpu.toml and its -diff-hparams variant), as many searches as the device time allows, in steps that fit the machine's limits (one command at most 10 minutes; the machine goes back 30 s after
# a command ends). The same start / wait pattern as benchmarks/gpu/table41.sh (read it).
#
# From the repo root, with the CIFAR-10 JPEG zip and cifar10_from_jpeg.py carried in .carry/ (as for
# results/ws-cifar10-gpu/device.sh), tool calls with carry [".carry"]:
#   bash benchmarks/gpu/search.sh start && bash benchmarks/gpu/search.sh wait 540   # first call
#   bash benchmarks/gpu/search.sh wait 560                                          # each later call
# `start` unpacks the data and starts the pipeline detached (setsid). The pipeline first times the search
# steps against a plain PyTorch DARTS loop (benchmarks/search_speed.py --device cuda), then runs the UNITS,
# PARALLEL at a time (several small searches share one GPU). A unit "SPACE:ALGORITHM:SEED[:VARIANT]" searches (or
# resumes: every search checkpoints each epoch) into $RUN/SPACE.ALGORITHM[.VARIANT], with the space's config or, given
# VARIANT, the config of that name beside it (nb1shot1's diff-hparams: configs/search-nb1shot1-gpu-diff-hparams.toml,
# Table 4.7's "diff. hparams" row); a finished one is marked
# done-seed<s> and skipped by a restarted pipeline. `wait` prints progress and, every minute and when it
# returns, writes into $OUT: summary.txt (the pipeline's log, the speed table, the last lines of each search),
# run.tgz (every run folder: config.json and the per-epoch logs, and the checkpoint of each search not yet
# done, so it can be resumed on another machine or on the CPU) and report/ (harness search report of each
# space's folders so far).
#
# Variables: RUN (default .run/search), DATA (default /tmp/data), PARALLEL (default 3), NB201_CONFIG, DARTS_CONFIG
# and NB1SHOT1_CONFIG (the configs of the NB201, DARTS-space and NAS-Bench-1Shot1 units; default the GPU configs),
# UNITS (default: Table 4.6's DARTS 1st order and SoTL-DARTS seeds 0-2 on NB201, then S2's DARTS and SoTL-DARTS
# seed 0, then NB201's DARTS 2nd order, SoVL-DARTS, DrNAS, SoTL-DrNAS, GAEA DARTS and GAEA ERM seeds 0-2, then the DARTS
# space's DARTS 1st order and SoTL-DARTS seeds 0-2, then Table 4.7: per NAS-Bench-1Shot1 space DARTS, SoTL-DARTS and
# SoTL-DARTS with the diff. hparams, seeds 0-2), TRUTH_ROOT (a converted official NB101 store, carried: the NB1Shot1
# units' --truth-root, the test accuracy of every cell as Table 4.7 reports it; default the embedded table, whose
# validation accuracy covers few cells). Not yet timed on a GPU.
set -u
cd "$(dirname "$0")/../.."
RUN=${RUN:-.run/search}
DATA=${DATA:-/tmp/data}
PARALLEL=${PARALLEL:-3}
seeds() { local algo seed out=""; for seed in 0 1 2; do for algo in "${@:2}"; do out+=" $1:$algo:$seed"; done; done; echo "$out"; }
table47() { local n seed out=""; for n in 1 2 3; do out+="$(seeds "nb1shot1-$n" darts-1 sotl-darts)"; for seed in 0 1 2; do out+=" nb1shot1-$n:sotl-darts:$seed:diff-hparams"; done; done; echo "$out"; }
UNITS=${UNITS:-"$(seeds nb201 darts-1 sotl-darts) darts-s2:darts-1:0 darts-s2:sotl-darts:0 $(seeds nb201 darts-2 sovl-darts drnas sotl-drnas gaea-darts gaea-erm) $(seeds darts darts-1 sotl-darts) $(table47)"}
export PYTHONUNBUFFERED=1 PYTHONPATH=.

config() {  # config SPACE [VARIANT]: the config file of a unit ($RUN/SPACE[-VARIANT].toml: the GPU config with its space set)
  local space=$1 variant=${2:-} base
  case "$space" in
  nb201) base=${NB201_CONFIG:-configs/search-cifar10-gpu.toml} ;;
  nb1shot1-*) base=${NB1SHOT1_CONFIG:-configs/search-nb1shot1-gpu.toml} ;;
  *) base=${DARTS_CONFIG:-configs/search-darts-gpu.toml} ;;
  esac
  [ -z "$variant" ] || base=${base%.toml}-$variant.toml
  local file="$RUN/$space${variant:+-$variant}.toml"
  [ -e "$file" ] || sed "s/^space = .*/space = \"$space\"/" "$base" > "$file"
  echo "$file"
}

# shellcheck source=benchmarks/gpu/common.sh
. benchmarks/gpu/common.sh  # stamp, start_pipeline, wait_pipeline

unit() {  # unit SPACE ALGORITHM SEED [VARIANT]
  local space=$1 algo=$2 seed=$3 variant=${4:-}
  local name="$space.$algo${variant:+.$variant}" what="search $space $algo${variant:+ ($variant)} seed $seed"
  local out="$RUN/$name" log="$RUN/search-$name-$seed.log" cfg truth=()
  [[ "$space" == nb1shot1-* && -n "${TRUTH_ROOT:-}" ]] && truth=(--truth-root "$TRUTH_ROOT")
  stamp "$what: start"
  if cfg=$(config "$space" "$variant") && [ -s "$cfg" ] && python3 -m harness.cli search run --config "$cfg" --algorithm "$algo" \
      --seed "$seed" --out "$out" --data-root "$DATA" --no-progress ${truth[@]+"${truth[@]}"} > "$log" 2>&1; then
    touch "$out/done-seed$seed"
    stamp "$what: done ($(python3 -c "import json; h = json.load(open('$out/search-seed$seed.json')); print(f'{len(h)} epochs, {sum(e[\"seconds\"] for e in h):.0f} s, final arch {h[-1][\"arch\"]}')"))"
  else
    stamp "$what: FAILED ($(tail -n 2 "$log" 2>/dev/null | tr '\n' ' '))"
  fi
}

snapshot() {  # the outputs so far, into $OUT
  local excludes=() folder space summary="$OUT/summary.txt"
  {
    # `if`, not `[ -e ] && ...`: a missing last file would fail the group and leave summary.txt.tmp unrenamed
    for file in "$RUN"/pipeline.log "$RUN"/speed.txt; do if [ -e "$file" ]; then echo "===== ${file#"$RUN"/}"; cat "$file"; echo; fi; done
    for file in "$RUN"/search-*.log; do if [ -e "$file" ]; then echo "$(basename "$file"): $(tail -c 300 "$file" | tr '\r' '\n' | grep -v '^$' | tail -n 1)"; fi; done
  } > "$summary.tmp" && mv "$summary.tmp" "$summary"
  for folder in "$RUN"/*/; do
    for done_marker in "$folder"done-seed*; do
      [ -e "$done_marker" ] && excludes+=("--exclude=$(basename "$RUN")/$(basename "$folder")/search-seed${done_marker##*done-seed}.pt")
    done
  done
  tar czf "$OUT/run.tgz.tmp" --exclude='*.tmp' ${excludes[@]+"${excludes[@]}"} -C "$(dirname "$RUN")" "$(basename "$RUN")" \
    && mv "$OUT/run.tgz.tmp" "$OUT/run.tgz"
  for space in nb201 darts-s2 darts nb1shot1-1 nb1shot1-2 nb1shot1-3; do
    ls -d "$RUN/$space".*/search-seed*.json > /dev/null 2>&1 || continue
    python3 -m harness.cli search report $(ls -d "$RUN/$space".*/ | while read -r f; do ls "$f"search-seed*.json > /dev/null 2>&1 && echo "$f"; done) \
      --out "$OUT/report/$space" --label "GPU, thesis protocol (runs so far)" > /dev/null 2>&1 || true
  done
}

case "${1:-}" in
start)
  start_pipeline "$0"
  ;;
pipeline)
  T0=$(cat "$RUN/started")
  rm -f "$RUN/DONE"
  stamp "pipeline: RUN=$RUN PARALLEL=$PARALLEL UNITS=$UNITS"
  nvidia-smi -L
  if [ ! -e "$RUN/speed.txt" ]; then
    timeout 150 python3 benchmarks/search_speed.py --device cuda > "$RUN/speed.txt" 2>&1
    stamp "speed: exit $?"
  fi
  for entry in $UNITS; do
    IFS=: read -r space algo seed variant <<< "$entry"
    [ -e "$RUN/$space.$algo${variant:+.$variant}/done-seed$seed" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do sleep 5; done
    unit "$space" "$algo" "$seed" "$variant" &
    sleep 2
  done
  wait
  stamp "pipeline: done"
  touch "$RUN/DONE"
  ;;
wait)
  wait_pipeline "${2:-560}" "$RUN/search-*.log"
  ;;
*)
  echo "usage: $0 start | wait [SECONDS]" >&2
  exit 2
  ;;
esac
