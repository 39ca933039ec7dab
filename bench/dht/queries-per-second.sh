#!/usr/bin/env bash
# System benchmark (issue 2 item 13): KRPC queries answered per second by ONE `peerway dht serve` node on loopback vs
# ONE bittorrent-dht node (npm, tests/interop-peers), driven by the same closed-loop load generator (bench/dht/DhtLoad:
# a mix of ping, find_node and get_peers). Reports both rates and the ratio.
# Usage: bench/dht/queries-per-second.sh [SECONDS=10] [SOCKETS=4] [WINDOW=64]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
seconds="${1:-10}"; sockets="${2:-4}"; window="${3:-64}"

[ -d tests/interop-peers/node_modules/bittorrent-dht ] || (cd tests/interop-peers && npm ci --no-audit --no-fund --ignore-scripts >&2)
dotnet build bench/dht/DhtLoad -c Release --nologo -v quiet >&2
load="$root/bench/dht/DhtLoad/bin/Release/net10.0/DhtLoad.dll"
./peerway --version >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a server command in the background and waits for its "node <id> listening <ip>:<port>" line;
# sets $ep (ip:port) and $pid.
serve() {
  local out; out="$(mktemp)"
  "$@" >"$out" 2>/dev/null &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 600); do
    if line="$(grep -m1 '^node [0-9a-f]\{40\} listening ' "$out")"; then ep="${line##* }"; rm -f "$out"; return 0; fi
    sleep 0.1
  done
  echo "server did not start: $*" >&2; return 1
}

# Measures the server at $ep (process $pid): prints "<queries/s> <queries per server CPU-second>".
measure() { # name
  echo "== $1 at $ep ($seconds s, $sockets sockets x $window in flight)" >&2
  local out; out="$(dotnet "$load" "$ep" --seconds "$seconds" --sockets "$sockets" --window "$window" --cpu-pid "$pid")"
  echo "$out" >&2
  echo "$(echo "$out" | sed -nE 's/.*: ([0-9]+) queries\/s.*/\1/p') $(echo "$out" | sed -nE 's/.*: ([0-9]+) queries per CPU-second.*/\1/p')"
}

# The per-IP rate limit (50/s by default, an abuse defence) is lifted: the load generator is one IP.
serve ./peerway dht serve --bind 127.0.0.1 --port 0 --rate-limit 1000000000
read -r ours ours_cpu <<<"$(measure "peerway dht serve")"
kill "$pid"; wait "$pid" 2>/dev/null || true

serve node tests/interop-peers/dht-serve.mjs 127.0.0.1
read -r theirs theirs_cpu <<<"$(measure "bittorrent-dht $(node -p "require('./tests/interop-peers/node_modules/bittorrent-dht/package.json').version")")"
kill "$pid"; wait "$pid" 2>/dev/null || true

# Calibration: a trivial responder (no DHT logic) shows the ceiling of this machine and generator.
serve dotnet "$load" --echo
read -r ceiling _ <<<"$(measure "calibration: trivial KRPC responder (bench/dht/DhtLoad --echo)")"
kill "$pid"; wait "$pid" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
echo "throughput: peerway ${ours} q/s, bittorrent-dht ${theirs} q/s, ratio $(ratio "$ours" "$theirs")x (ceiling of this machine + generator: ${ceiling} q/s)"
echo "efficiency: peerway ${ours_cpu} q/CPU-s, bittorrent-dht ${theirs_cpu} q/CPU-s, ratio $(ratio "$ours_cpu" "$theirs_cpu")x"
