#!/usr/bin/env bash
# Copies the reported run folders of run.sh (and fig47.sh) into results/ws-mini-cpu/: what a reader
# needs to check and recompute the tables (settings, arch set and truth, supernet histories, the
# merged per-step logs of the reported seeds, tables, correlations, quality gate, figures), not the
# checkpoints or the per-arch log files. From the repo root: OUT=runs/ws-mini-cpu bash results/ws-mini-cpu/publish.sh
# DEST (default results/ws-mini-cpu) and TABLES (default $OUT/tables, copied to $DEST/tables) serve other mini runs,
# e.g. OUT=runs/ws-mini-cpu-table42/nb1shot1-1 DEST=results/ws-mini-cpu-table42/nb1shot1-1 TABLES=none.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ws-mini-cpu}
DEST=${DEST:-results/ws-mini-cpu}
TABLES=${TABLES:-$OUT/tables}
for run in "$OUT"/*/; do
  name=$(basename "$run")
  [ -e "$run/table.md" ] || continue  # not reported (tables/ and unreported folders)
  seeds=$(python3 -c "import pandas as pd,sys; print(' '.join(str(s) for s in sorted(pd.read_csv(sys.argv[1]).seed.unique())))" "$run/correlations.csv")
  rm -rf "$DEST/$name.tmp" && mkdir -p "$DEST/$name.tmp"
  cp "$run"/{config.json,archs.csv,truth.json,table.md,table.csv,correlations.csv,quality.csv,curves.png,curves.pdf} "$DEST/$name.tmp/"
  for seed in $seeds; do
    cp "$run/supernet-seed$seed.json" "$run/logs-seed$seed.parquet" "$DEST/$name.tmp/"
  done
  rm -rf "$DEST/$name" && mv "$DEST/$name.tmp" "$DEST/$name"
done
if [ -d "$TABLES" ]; then rm -rf "$DEST/tables" && cp -r "$TABLES" "$DEST/tables"; fi
echo "published: $(ls "$DEST")"
