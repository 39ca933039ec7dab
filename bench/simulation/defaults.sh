#!/usr/bin/env bash
# Compares DHT engine settings in the simulator over several seeds (the evidence behind DhtOptions' lookup defaults,
# docs/SIMULATION.md). Usage: bench/simulation/defaults.sh [SEEDS] — prints one line per (scenario, setting): mean
# success, latency p50/p90/p99 (mean over seeds) and messages per lookup.
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${1:-5}
# Explicit values for every setting, so the comparison does not depend on the engine's current defaults.
settings=(
  "2s+1retry,a3|--timeout 2s --retries 1 --alpha 3"
  "1s+0retry,a3|--timeout 1s --retries 0 --alpha 3"
  "2s+1retry,a5|--timeout 2s --retries 1 --alpha 5"
  "1s+0retry,a5|--timeout 1s --retries 0 --alpha 5"
  "1s+1retry,a5|--timeout 1s --retries 1 --alpha 5"
)
scenarios=(
  "churn 10m, 1000 nodes|--nodes 1000 --lookups 400 --churn weibull:0.5,10m"
  "churn 30m, 1000 nodes|--nodes 1000 --lookups 400 --churn weibull:0.5,30m"
  "no churn, 5% loss, 2000 nodes|--nodes 2000 --lookups 400 --loss 0.05"
  "no churn, 2500 nodes|--nodes 2500 --lookups 400"
)
for sc in "${scenarios[@]}"; do
  for st in "${settings[@]}"; do
    for seed in $(seq 1 "$seeds"); do
      # shellcheck disable=SC2086
      ./peerway simulate ${sc#*|} ${st#*|} --seed "$seed" --maintenance 0 --json
    done | python3 bench/simulation/mean.py "${sc%%|*}" "${st%%|*}"
  done
done
