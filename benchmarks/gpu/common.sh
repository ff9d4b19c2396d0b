# Sourced by the GPU pipelines (benchmarks/gpu/table41.sh, benchmarks/gpu/search.sh): their `start` and `wait`
# steps and the pipeline log's time stamps. The caller sets RUN (the run folder), DATA (the CIFAR-10 root), OUT (the
# folder whose files come back from the device) and defines snapshot (what it writes into $OUT).

stamp() { echo "[$(date +%T), +$(( $(date +%s) - T0 )) s] $*"; }  # a log line with the time since the first start

start_pipeline() {  # start_pipeline SCRIPT: unpack the data if needed, start SCRIPT's `pipeline` detached (setsid)
  mkdir -p "$RUN"
  if [ ! -d "$DATA/cifar-10-batches-py" ]; then
    python3 .carry/cifar10_from_jpeg.py "$DATA" --train-only --zips .carry > /dev/null || exit 1
  fi
  [ -e "$RUN/started" ] || date +%s > "$RUN/started"
  setsid nohup bash "$1" pipeline >> "$RUN/pipeline.log" 2>&1 < /dev/null &
  echo "pipeline started (pid $!); log $RUN/pipeline.log"
}

wait_pipeline() {  # wait_pipeline SECONDS LOG...: until $RUN/DONE or SECONDS, each 15 s the last line of each LOG
  # (globs, expanded anew), each minute and at the end snapshot; says whether the pipeline is done
  local deadline=$(( $(date +%s) + $1 )) next=$(( $(date +%s) + 60 )) pattern log
  shift
  while [ ! -e "$RUN/DONE" ] && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 15
    for pattern in "$@"; do
      for log in $pattern; do
        [ -e "$log" ] && echo "$(basename "$log"): $(tail -c 300 "$log" | tr '\r' '\n' | grep -v '^$' | tail -n 1)"
      done
    done
    if [ "$(date +%s)" -ge "$next" ]; then snapshot; next=$(( $(date +%s) + 60 )); fi
  done
  tail -n 8 "$RUN/pipeline.log"
  snapshot
  if [ -e "$RUN/DONE" ]; then echo "pipeline done: outputs in $OUT"; else echo "still running: call wait again"; fi
}
