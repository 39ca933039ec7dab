#!/usr/bin/env bash
# STUN Binding requests/s served by Peerway's stun-server and by coturn (turnserver --stun-only) on loopback, measured
# with the same closed-loop load generator (bench/Peerway.Benchmarks/StunLoad.cs) in the same run; prints both rates
# and the ratio. Fairness: both servers run on the same CPU set (SERVER_CPUS) with the same number of threads (ours:
# --threads, coturn: --relay-threads), the generator on the other CPUs (LOAD_CPUS); a no-op echo on our socket layer
# shows the ceiling the generator and the kernel allow. Servers alternate ROUNDS times. Ours runs with --rate-limit 0:
# the load comes from one address, and coturn has no per-source limit either.
# Usage: bench/nat/stun-binding.sh [SECONDS] [CLIENTS] [WINDOW] [THREADS] [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-3}"; clients="${2:-2}"; window="${3:-64}"; threads="${4:-1}"; rounds="${5:-5}"
if [ "$(nproc)" -ge 2 ]; then server_cpus="${SERVER_CPUS:-1}"; load_cpus="${LOAD_CPUS:-0}"; else server_cpus=0; load_cpus=0; fi
command -v turnserver >/dev/null || { echo "turnserver (coturn) is not installed" >&2; exit 1; }
./peerway --version >/dev/null
dotnet build bench/Peerway.Benchmarks -c Release --nologo -v quiet >&2
load="bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll"
ours_port=$((20000 + RANDOM % 10000)); coturn_port=$((ours_port + 1)); echo_port=$((ours_port + 2))
tmp="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

taskset -c "$server_cpus" ./peerway stun-server --bind 127.0.0.1 --port "$ours_port" --threads "$threads" --rate-limit 0 >"$tmp/ours.log" 2>&1 & pids+=($!)
taskset -c "$server_cpus" turnserver -n --no-cli --no-tls --no-dtls --stun-only --relay-threads="$threads" \
  --listening-ip=127.0.0.1 --listening-port="$coturn_port" --pidfile="$tmp/turn.pid" --db="$tmp/turndb" \
  --log-file=stdout --simple-log --no-stdout-log >"$tmp/coturn.log" 2>&1 & pids+=($!)
taskset -c "$server_cpus" dotnet "$load" stun-echo "127.0.0.1:$echo_port" --threads "$threads" >"$tmp/echo.log" 2>&1 & pids+=($!)
for _ in $(seq 150); do
  grep -q "stun-server: udp" "$tmp/ours.log" 2>/dev/null && grep -q "stun-echo: udp" "$tmp/echo.log" 2>/dev/null \
    && grep -qi ":$(printf '%04X' "$coturn_port") " /proc/net/udp && break
  sleep 0.1
done

measure() { taskset -c "$load_cpus" dotnet "$load" stun-load "127.0.0.1:$1" --seconds "$seconds" --clients "$clients" --window "$window"; }
echo_all=(); ours_all=(); coturn_all=()
for _ in $(seq "$rounds"); do
  echo_all+=("$(measure "$echo_port")")
  ours_all+=("$(measure "$ours_port")")
  coturn_all+=("$(measure "$coturn_port")")
done
best() { printf '%s\n' "$@" | sort -n | tail -1; }
echo_rate=$(best "${echo_all[@]}"); ours=$(best "${ours_all[@]}"); coturn=$(best "${coturn_all[@]}")
ratio=$(awk -v a="$ours" -v b="$coturn" 'BEGIN { printf "%.2f", a / b }')
# Each round measures both servers back to back, so the per-round ratio is the least exposed to other load.
round_ratios=$(for i in "${!ours_all[@]}"; do awk -v a="${ours_all[$i]}" -v b="${coturn_all[$i]}" 'BEGIN { printf "%.2f\n", a / b }'; done | sort -n)
median=$(echo "$round_ratios" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "no-op echo (ceiling):  ${echo_all[*]} responses/s (best $echo_rate)"
echo "peerway stun-server:   ${ours_all[*]} Binding responses/s (best $ours)"
echo "coturn turnserver -S:  ${coturn_all[*]} Binding responses/s (best $coturn)"
echo "ratio per round:       $(echo $round_ratios) (median $median)"
echo "ratio peerway/coturn:  $ratio (best of $rounds; servers on CPU $server_cpus with $threads thread(s) each, load on CPU $load_cpus: $clients clients x window $window, ${seconds}s after 1s warm-up; $(nproc) cores)"
echo "uptime: $(uptime)"
