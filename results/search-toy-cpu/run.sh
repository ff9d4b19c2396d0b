#!/usr/bin/env bash
# Every differentiable-search algorithm end to end on every kind of space, at toy scale on the CPU (seconds per
# search): configs/search-toy-cpu.toml (C=4, N=1, 8x8 images, 256 training images, 2 epochs, T=4) with its `space`
# set to nb201, darts, darts-s2 and nb1shot1-1, each algorithm into its own folder, then `harness search report` per
# space. It shows that the pieces run and log what the tables need, not what the algorithms find: at this scale the
# derived archs carry no signal. Publishes the configs, per-epoch logs and reports (not the checkpoints) into
# results/search-toy-cpu/. From the repo root:
#   DATA=/path/to/cifar-root bash results/search-toy-cpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data}
OUT=${OUT:-runs/search-toy-cpu}
DEST=results/search-toy-cpu
HARNESS=${HARNESS:-harness}
SPACES=${SPACES:-"nb201 darts darts-s2 nb1shot1-1"}
ALGORITHMS=${ALGORITHMS:-$(python3 -c "from harness.search.config import ALGORITHMS; print(' '.join(ALGORITHMS))")}
mkdir -p "$OUT"
for space in $SPACES; do
  config="$OUT/$space.toml"
  sed "s/^name = .*/name = \"search-toy-cpu\"\nspace = \"$space\"/" configs/search-toy-cpu.toml > "$config"
  folders=()
  for algorithm in $ALGORITHMS; do
    $HARNESS search run --config "$config" --data-root "$DATA" --algorithm "$algorithm" --out "$OUT/$space/$algorithm" \
      --no-progress > /dev/null
    folders+=("$OUT/$space/$algorithm")
  done
  $HARNESS search report "${folders[@]}" --out "$OUT/$space/report" --label "CPU toy scale (configs/search-toy-cpu.toml): no signal, a run-through" > /dev/null
  rm -rf "$DEST/$space.tmp" && mkdir -p "$DEST/$space.tmp"
  for folder in "${folders[@]}"; do
    mkdir -p "$DEST/$space.tmp/$(basename "$folder")"
    cp "$folder"/config.json "$folder"/search-seed*.json "$DEST/$space.tmp/$(basename "$folder")/"
  done
  cp -r "$OUT/$space/report" "$DEST/$space.tmp/report"
  rm -rf "${DEST:?}/$space" && mv "$DEST/$space.tmp" "$DEST/$space"
  echo "$space: $(ls "$DEST/$space" | tr '\n' ' ')"
done
