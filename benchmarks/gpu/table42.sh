#!/usr/bin/env bash
# The thesis's Table 4.2 (NAS-Bench-1Shot1 spaces 1-3 and the DARTS space) on a lent GPU machine: one space
# per pipeline, run by benchmarks/gpu/table41.sh (read it: start, wait, the snapshot in $OUT, resuming, a unit
# cut short) with the space's config, run folder and algorithms. Its NB201 checks (dense CUDA graphs, speed
# benchmarks) are skipped (SKIP_CHECKS=1).
#
# From the repo root, with the CIFAR-10 JPEG zip and cifar10_from_jpeg.py carried in .carry/ as for table41.sh,
# tool calls with carry [".carry"], the same SPACE in every call of a pipeline:
#   SPACE=nb1shot1-1 bash benchmarks/gpu/table42.sh start && SPACE=nb1shot1-1 bash benchmarks/gpu/table42.sh wait 540
#   SPACE=nb1shot1-1 bash benchmarks/gpu/table42.sh wait 560                  # each later call
#
# SPACE (default nb1shot1-1): nb1shot1-1, nb1shot1-2, nb1shot1-3 (configs/ws-nb1shot1-gpu.toml: Table B.1's
# 50-epoch supernets, 200 archs) or darts (configs/ws-darts-gpu.toml: 100 epochs, 350 archs). The run's config is
# $RUN/config.toml, a copy of CFG with its top-level `space` set to SPACE (written at the first call, kept after).
# UNITS (default: SPOS seeds 0-2, then seed 0 of the space's other Table 4.2 algorithms, then their seeds 1 and 2):
# MultiPath, Reptile, Metaprox and, on NB1Shot1, MultiPath + Metaprox (Table 4.2 has no FairNAS there), on DARTS
# FairNAS. TRUTH_ROOT: prepare's --truth-root; on NB1Shot1 a converted NB101 store gives the thesis's truth (test
# accuracy, archs drawn from the whole space; without it the embedded table's validation accuracy, archs drawn
# from the configurations it covers: an arch set that a store cannot relabel later), on DARTS a folder of the
# official nasbench301 models. RUN (default .run/table42/$SPACE), CFG, DATA as table41.sh. Not yet timed on a GPU.
set -u
cd "$(dirname "$0")/../.."
SPACE=${SPACE:-nb1shot1-1}

units() {  # units ALGORITHM...: SPOS seeds 0-2, then seed 0 of each ALGORITHM, then their seeds 1 and 2
  local seed algo out="spos:0 spos:1 spos:2"
  for seed in 0 1 2; do
    for algo in "$@"; do out+=" $algo:$seed"; done
  done
  echo "$out"
}

case "$SPACE" in
nb1shot1-[123])
  CFG=${CFG:-configs/ws-nb1shot1-gpu.toml}
  UNITS=${UNITS:-$(units multipath reptile metaprox multipath-metaprox)}
  ;;
darts)
  CFG=${CFG:-configs/ws-darts-gpu.toml}
  UNITS=${UNITS:-$(units fairnas multipath reptile metaprox)}
  ;;
*)
  echo "SPACE must be nb1shot1-1, nb1shot1-2, nb1shot1-3 or darts (Table 4.2's spaces), got '$SPACE'" >&2
  exit 2
  ;;
esac
RUN=${RUN:-.run/table42/$SPACE}
mkdir -p "$RUN"
if [ ! -e "$RUN/config.toml" ]; then
  grep -q '^space = ' "$CFG" || { echo "$CFG has no top-level 'space = ...' line to set" >&2; exit 2; }
  sed "s/^space = .*/space = \"$SPACE\"/" "$CFG" > "$RUN/config.toml.tmp" && mv "$RUN/config.toml.tmp" "$RUN/config.toml"
fi
export CFG=$RUN/config.toml RUN UNITS SKIP_CHECKS=1
exec bash benchmarks/gpu/table41.sh "$@"
