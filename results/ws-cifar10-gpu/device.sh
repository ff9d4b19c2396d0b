#!/usr/bin/env bash
# The full weight-sharing GPU run on a lent device machine, in steps that fit its limits: one command
# runs at most 10 minutes, and the machine is given back 30 s after a command ends. The pipeline runs
# detached (setsid), so it outlives each command; keep calling `wait` without a pause to keep the
# machine, and it copies the outputs to $OUT when the pipeline is done (a snapshot of the run folder,
# partial.tgz, after each wait that ends before then). From the repo root, with the
# CIFAR-10 JPEG zip and ../shared/tools/cifar10_from_jpeg.py carried in .carry/:
#   bash results/ws-cifar10-gpu/device.sh start       # unpack the data, start the pipeline; returns at once
#   bash results/ws-cifar10-gpu/device.sh wait 560    # poll up to 560 s; when done, outputs go to $OUT
# Variables: CFG (default results/ws-cifar10-gpu/config.toml, the legacy run: check out commit 7f4fd38 to rerun it), RUN (run folder, default .run/ws-cifar10,
# inside the checkout so that it survives between commands), DATA (default /tmp/data).
set -u
cd "$(dirname "$0")/../.."
CFG=${CFG:-results/ws-cifar10-gpu/config.toml}
RUN=${RUN:-.run/ws-cifar10}
DATA=${DATA:-/tmp/data}
export PYTHONUNBUFFERED=1 PYTHONPATH=.  # PYTHONPATH: benchmarks/ scripts import harness from the checkout
ws() { python3 -m harness.cli ws "$@" --config "$CFG" --out "$RUN" --data-root "$DATA" --no-progress; }

case "${1:-}" in
start)
  mkdir -p "$RUN"
  if [ ! -d "$DATA/cifar-10-batches-py" ]; then
    python3 .carry/cifar10_from_jpeg.py "$DATA" --train-only --zips .carry > /dev/null || exit 1
  fi
  setsid nohup bash "$0" pipeline > "$RUN/pipeline.log" 2>&1 < /dev/null &
  echo "pipeline started (pid $!); log $RUN/pipeline.log"
  ;;
pipeline)
  date
  ws prepare || exit 1
  seeds=$(python3 -c "from harness.supernet.config import load_config; print(*load_config('$CFG').supernet.seeds)")
  for seed in $seeds; do ws train --seed "$seed" > "$RUN/train-$seed.log" 2>&1 & done
  wait
  for seed in $seeds; do ws finetune --seed "$seed" > "$RUN/finetune-$seed.log" 2>&1 & done
  wait
  ws report > "$RUN/report.txt" 2>&1
  if python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    timeout 420 python3 benchmarks/ws_finetune_speed.py --data-root "$DATA" --archs 16 --steps 100 --in-flight 4,8 \
      --json "$RUN/speed.json" > "$RUN/speed.txt" 2>&1
  fi
  date
  touch "$RUN/DONE"
  ;;
wait)
  deadline=$(( $(date +%s) + ${2:-560} ))
  while [ ! -e "$RUN/DONE" ] && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 15
    for log in "$RUN"/train-*.log "$RUN"/finetune-*.log; do [ -e "$log" ] && echo "$log: $(tail -c 200 "$log" | tr '\r' '\n' | tail -n 1)"; done
  done
  tail -n 5 "$RUN/pipeline.log"
  if [ -e "$RUN/DONE" ]; then
    cp "$RUN"/table.md "$RUN"/report.txt "$RUN"/pipeline.log "$OUT"/ 2>/dev/null
    [ -e "$RUN/speed.txt" ] && cp "$RUN/speed.txt" "$RUN/speed.json" "$OUT"/
    tar czf "$OUT/run.tgz" --exclude='*.pt' --exclude='*.tmp' -C "$(dirname "$RUN")" "$(basename "$RUN")"
    echo "done: outputs in $OUT"
  else
    # a snapshot of everything so far (no checkpoints), in case the device time runs out before DONE
    tar czf "$OUT/partial.tgz" --exclude='*.pt' --exclude='*.tmp' -C "$(dirname "$RUN")" "$(basename "$RUN")"
    echo "still running: call wait again"
  fi
  ;;
*)
  echo "usage: $0 start | wait [SECONDS]" >&2
  exit 2
  ;;
esac
