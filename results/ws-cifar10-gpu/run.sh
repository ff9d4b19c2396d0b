#!/usr/bin/env bash
# The GPU run behind results/ws-cifar10-gpu/, run on the device machine from the repo root with the
# CIFAR-10 JPEG zip carried in .carry/ (see ../shared/tools/README.md). Results go to $OUT.
#   bash results/ws-cifar10-gpu/run.sh SECONDS     # wall-clock budget for the whole script
# Supernet seeds 0 and 1 train and finetune as two concurrent processes on the one GPU. Each stage
# runs under a timeout so that a budget overrun still leaves a partial, reportable run.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.  # PYTHONPATH: benchmarks/ scripts import harness from the checkout
DEADLINE=$(( $(date +%s) + ${1:-420} ))
CFG=configs/ws-cifar10-gpu.toml
RUN=/tmp/ws-run
left() { echo $(( DEADLINE - $(date +%s) )); }
python3 .carry/cifar10_from_jpeg.py /tmp/data --train-only --zips .carry > /dev/null || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 50 python3 benchmarks/ws_finetune_speed.py --data-root /tmp/data --archs 4 --steps 100 --in-flight 4 \
  --json "$OUT/speed.json" > "$OUT/speed.txt" 2>&1
python3 -m harness.cli ws prepare --config $CFG --out $RUN || exit 1
for seed in 0 1; do
  (
    timeout $(( $(left) - 180 )) python3 -m harness.cli ws train --config $CFG --out $RUN --seed $seed --no-progress
    timeout $(( $(left) - 25 )) python3 -m harness.cli ws finetune --config $CFG --out $RUN --seed $seed \
      --unfinished-supernet --no-progress
  ) > "$OUT/log-seed$seed.txt" 2>&1 &
done
wait
python3 -m harness.cli ws report --config $CFG --out $RUN --partial > "$OUT/report.txt" 2>&1
tar czf "$OUT/run.tgz" -C /tmp --exclude='*.pt' --exclude='*.tmp' ws-run
