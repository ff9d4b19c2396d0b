#!/usr/bin/env bash
# The thesis's Table 4.1 (configs/ws-cifar10-gpu.toml: its protocol, dense supernet updates replayed as
# CUDA graphs) on a lent GPU machine, as much of it as the device time allows, in steps that fit the
# machine's limits (one command at most 10 minutes; the machine goes back 30 s after a command ends).
#
# From the repo root, with the CIFAR-10 JPEG zip and cifar10_from_jpeg.py carried in .carry/ (as for
# results/ws-cifar10-gpu/device.sh), tool calls with carry [".carry"]:
#   bash benchmarks/gpu/table41.sh start && bash benchmarks/gpu/table41.sh wait 540   # first call
#   bash benchmarks/gpu/table41.sh wait 560                                           # each later call
# `start` unpacks the data and starts the pipeline detached (setsid), so it outlives each command;
# keep calling `wait` without a pause to keep the machine. `wait` prints progress and, every minute
# and when it returns, rewrites in $OUT a snapshot of what exists so far (so a command stopped by the
# device-time limit still brings it back): summary.txt (the pipeline's timed log, the dense-update
# check, both speed benchmarks, every report so far), run.tgz (the run folders without checkpoints;
# per-arch finetuning logs only for units not yet reported) and the checkpoint of each supernet whose
# training finished but whose finetuning did not (<algorithm>-supernet-seed<s>.pt).
#
# The pipeline: (1) the dense update's CUDA-graph check (tests/test_supernet_dense.py on the GPU),
# (2) benchmarks/supernet_speed.py --device cuda --full and (3) benchmarks/ws_finetune_speed.py,
# briefly, so their timings come back even if the run is cut short; then (4) the units of UNITS in
# order, each "algorithm:seed": train the supernet, finetune the arch set, report the algorithm's
# finished seeds (run folder $RUN/<algorithm>). The first unit runs alone; after it, a unit's
# finetuning runs beside the next unit's training. If a dense training fails, it is resumed with
# dense_supernet = "off" (a run folder accepts that change) and the rest of the pipeline stays sparse.
# A unit with $RUN/<algorithm>/done-seed<s> is skipped, so a restarted pipeline (same machine) resumes.
# A unit cut short is reported on the CPU from run.tgz: harness ws report --config CFG --out DIR
# --seeds S --partial (its per-arch logs are in run.tgz).
#
# Variables: CFG (default configs/ws-cifar10-gpu.toml), RUN (default .run/table41, inside the checkout
# so it survives between commands), DATA (default /tmp/data), UNITS (default: SPOS seeds 0-2, then
# seed 0 of FairNAS, MultiPath, Reptile, Metaprox, then their seeds 1 and 2), SKIP_CHECKS=1 skips (1)-(3)
# (they time NB201's networks), TRUTH_ROOT (optional: prepare's --truth-root, the space's official truth).
# benchmarks/gpu/table42.sh runs this script on the other spaces (Table 4.2) by setting these.
set -u
cd "$(dirname "$0")/../.."
CFG=${CFG:-configs/ws-cifar10-gpu.toml}
RUN=${RUN:-.run/table41}
DATA=${DATA:-/tmp/data}
UNITS=${UNITS:-"spos:0 spos:1 spos:2 fairnas:0 multipath:0 reptile:0 metaprox:0 fairnas:1 multipath:1 reptile:1 metaprox:1 fairnas:2 multipath:2 reptile:2 metaprox:2"}
export PYTHONUNBUFFERED=1 PYTHONPATH=.  # PYTHONPATH: benchmarks/ scripts import harness from the checkout

ws() {  # ws ALGORITHM VERB ARGS...: one harness ws step in the algorithm's run folder
  local algo=$1 verb=$2
  shift 2
  python3 -m harness.cli ws "$verb" --config "$CFG" --algorithm "$algo" --out "$RUN/$algo" --data-root "$DATA" --no-progress "$@"
}

# shellcheck source=benchmarks/gpu/common.sh
. benchmarks/gpu/common.sh  # stamp, start_pipeline, wait_pipeline

finish() {  # finish ALGORITHM SEED: finetune the trained supernet, mark the unit done, report the algorithm's done seeds
  local algo=$1 seed=$2 seeds
  stamp "finetune $algo seed $seed: start"
  if ! ws "$algo" finetune --seed "$seed" > "$RUN/finetune-$algo-$seed.log" 2>&1; then
    stamp "finetune $algo seed $seed: FAILED (log: finetune-$algo-$seed.log)"
    return 1
  fi
  touch "$RUN/$algo/done-seed$seed"
  seeds=$(ls "$RUN/$algo" | sed -n 's/^done-seed\([0-9]*\)$/\1/p' | sort -n | paste -sd, -)
  stamp "finetune $algo seed $seed: done; report over seeds $seeds"
  ws "$algo" report --seeds "$seeds" > "$RUN/report-$algo.txt" 2>&1 || stamp "report $algo: FAILED (report-$algo.txt)"
}

snapshot() {  # the outputs so far, into $OUT
  local excludes=() marker trained algo seed summary="$OUT/summary.txt"
  {
    # `if`, not `[ -e ] && ...`: a missing last file would fail the group and leave summary.txt.tmp unrenamed
    for file in pipeline.log check-dense.txt speed-supernet.txt speed-finetune.txt "$RUN"/report-*.txt; do
      file=$RUN/${file#"$RUN"/}
      if [ -e "$file" ]; then echo "===== ${file#"$RUN"/}"; cat "$file"; echo; fi
    done
  } > "$summary.tmp" && mv "$summary.tmp" "$summary"
  for marker in "$RUN"/*/done-seed*; do  # reported units: their logs are merged into logs-seed<s>.parquet
    [ -e "$marker" ] && excludes+=("--exclude=$(basename "$RUN")/$(basename "$(dirname "$marker")")/logs/seed${marker##*done-seed}")
  done
  tar czf "$OUT/run.tgz.tmp" --exclude='*.pt' --exclude='*.tmp' ${excludes[@]+"${excludes[@]}"} -C "$(dirname "$RUN")" "$(basename "$RUN")" \
    && mv "$OUT/run.tgz.tmp" "$OUT/run.tgz"
  for trained in "$RUN"/*/trained-seed*; do
    [ -e "$trained" ] || continue
    algo=$(basename "$(dirname "$trained")") seed=${trained##*trained-seed}
    if [ -e "$RUN/$algo/done-seed$seed" ]; then
      rm -f "$OUT/$algo-supernet-seed$seed.pt"
    elif [ ! -e "$OUT/$algo-supernet-seed$seed.pt" ]; then
      cp "$RUN/$algo/supernet-seed$seed.pt" "$OUT/$algo-supernet-seed$seed.pt"
    fi
  done
}

case "${1:-}" in
start)
  start_pipeline "$0"
  ;;
pipeline)
  T0=$(cat "$RUN/started")
  rm -f "$RUN/DONE"
  stamp "pipeline: CFG=$CFG RUN=$RUN UNITS=$UNITS"
  nvidia-smi -L
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  if [ -z "${SKIP_CHECKS:-}" ]; then
    stamp "check: CUDA-graph replays against the eager dense update"
    timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_supernet_dense.py -k cuda > "$RUN/check-dense.txt" 2>&1
    stamp "check: exit $? ($(tail -n 1 "$RUN/check-dense.txt"))"
    stamp "speed: supernet updates (sparse and dense)"
    timeout 150 python3 benchmarks/supernet_speed.py --data-root "$DATA" --device cuda --full --steps 20 --repeats 2 \
      --algorithms spos,fairnas,reptile > "$RUN/speed-supernet.txt" 2>&1
    stamp "speed: finetuning"
    timeout 120 python3 benchmarks/ws_finetune_speed.py --data-root "$DATA" --archs 8 --steps 30 --in-flight 4,8 --groups 4,8 \
      --out /tmp/ws-speed --json "$RUN/speed-finetune.json" > "$RUN/speed-finetune.txt" 2>&1
    stamp "speed: done"
  fi
  first=1
  for unit in $UNITS; do
    algo=${unit%:*} seed=${unit#*:}
    [ -e "$RUN/$algo/done-seed$seed" ] && continue
    if [ ! -e "$RUN/$algo/config.json" ]; then
      ws "$algo" prepare ${TRUTH_ROOT:+--truth-root "$TRUTH_ROOT"} > "$RUN/prepare-$algo.log" 2>&1 \
        || { stamp "prepare $algo: FAILED"; cat "$RUN/prepare-$algo.log"; break; }
    fi
    stamp "train $algo seed $seed: start"
    if ! ws "$algo" train --seed "$seed" > "$RUN/train-$algo-$seed.log" 2>&1; then
      stamp "train $algo seed $seed: FAILED with $CFG: $(tail -n 3 "$RUN/train-$algo-$seed.log" | tr '\n' ' ')"
      [ "$CFG" = "$RUN/sparse.toml" ] && break  # already sparse: nothing left to fall back to
      sed 's/^dense_supernet = .*/dense_supernet = "off"/' "$CFG" > "$RUN/sparse.toml"
      CFG=$RUN/sparse.toml
      stamp "train $algo seed $seed: resumed with dense_supernet = off (sparse, eager) for the rest of the pipeline"
      ws "$algo" train --seed "$seed" >> "$RUN/train-$algo-$seed.log" 2>&1 || { stamp "train $algo seed $seed: FAILED again"; break; }
    fi
    touch "$RUN/$algo/trained-seed$seed"
    stamp "train $algo seed $seed: done; $(python3 -c "import json, torch; h = json.loads(torch.load('$RUN/$algo/supernet-seed$seed.pt', weights_only=True)['history']); s = [e['seconds'] for e in h]; print(f'{len(h)} epochs, {sum(s):.0f} s, {sum(s[1:]) / max(len(s) - 1, 1):.2f} s per epoch after the first ({s[0]:.1f} s), final train loss {h[-1][\"train_loss\"]:.3f}')")"
    wait  # the previous unit's finetuning
    if [ "$first" = 1 ]; then
      finish "$algo" "$seed"
      first=0
    else
      finish "$algo" "$seed" &
    fi
  done
  wait
  stamp "pipeline: done"
  touch "$RUN/DONE"
  ;;
wait)
  wait_pipeline "${2:-560}" "$RUN/train-*.log" "$RUN/finetune-*.log"
  ;;
*)
  echo "usage: $0 start | wait [SECONDS]" >&2
  exit 2
  ;;
esac
