#!/usr/bin/env bash
# STUN Binding requests/s served by Peerway's stun-server and by coturn (turnserver --stun-only) on loopback, measured
# with the same closed-loop load generator in the same run; prints both rates and the ratio.
# Usage: bench/nat/stun-binding.sh [SECONDS] [CLIENTS] [WINDOW]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-10}"; clients="${2:-4}"; window="${3:-32}"
command -v turnserver >/dev/null || { echo "turnserver (coturn) is not installed" >&2; exit 1; }
./peerway --version >/dev/null
dotnet build bench/Peerway.Benchmarks -c Release --nologo -v quiet >&2
load="bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll"
ours_port=$((20000 + RANDOM % 10000)); coturn_port=$((ours_port + 1))
tmp="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

./peerway stun-server --bind 127.0.0.1 --port "$ours_port" >"$tmp/ours.log" 2>&1 & pids+=($!)
turnserver -n --no-cli --no-tls --no-dtls --stun-only --listening-ip=127.0.0.1 --listening-port="$coturn_port" \
  --pidfile="$tmp/turn.pid" --db="$tmp/turndb" --log-file=stdout --simple-log --no-stdout-log >"$tmp/coturn.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  grep -q "stun-server: udp" "$tmp/ours.log" 2>/dev/null && grep -qi "$(printf '%04X' "$coturn_port")" /proc/net/udp && break
  sleep 0.1
done

ours=$(dotnet "$load" stun-load "127.0.0.1:$ours_port" --seconds "$seconds" --clients "$clients" --window "$window")
coturn=$(dotnet "$load" stun-load "127.0.0.1:$coturn_port" --seconds "$seconds" --clients "$clients" --window "$window")
ratio=$(awk -v a="$ours" -v b="$coturn" 'BEGIN { printf "%.2f", a / b }')
echo "peerway stun-server: $ours Binding responses/s"
echo "coturn turnserver -S: $coturn Binding responses/s"
echo "ratio peerway/coturn: $ratio (load: $clients clients x window $window, ${seconds}s each, $(nproc) cores)"
