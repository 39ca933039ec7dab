#!/usr/bin/env bash
# The eventual-consistency sweeps of docs/SIMULATION.md (issue 17 item 7): for a BEP 44 mutable item and for a log's
# signed heads, 1,000 churning readers, replication factor k in {4, 8, 16} (republish 15 min) and republish interval in
# {5, 15, 60} min (k 8); writes consistency.csv/.json/.txt and the consistency-*.svg/.png plots into OUT.
# Usage: bench/simulation/consistency-sweep.sh [OUT] [other `peerway simulate consistency` options, e.g. --poll 2m]
# One update, then 10 minutes of virtual time to measure it. Ten runs, each single-threaded; PARALLEL (default: the
# number of cores) of them at once. On a shared machine run it under `nice` (and a lock when timing matters: the
# figures themselves are virtual time), e.g. `flock /work/bench.lock nice bench/simulation/consistency-sweep.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/simulation}
shift || true
./peerway simulate consistency --readers 1000 --updates 1 --interval 10m --k 8 --republish 15m \
  --churn weibull:0.5,10m --seed 1 --parallel "${PARALLEL:-$(nproc)}" --progress --out "$out" "$@"
