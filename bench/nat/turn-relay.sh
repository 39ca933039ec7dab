#!/usr/bin/env bash
# TURN relay, Peerway's turn-server vs coturn's turnserver on loopback, in the same run, under the same load:
#  1. peak ChannelData relay: `turn-load` (bench/Peerway.Benchmarks/TurnLoad.cs) runs SESSIONS allocations, each with a
#     channel to an echo peer and WINDOW messages of BYTES in flight (closed loop); echoed messages/s and payload
#     Mbit/s each way, best of ROUNDS alternating runs;
#  2. the paced uclient load of the interop suite (turnutils_uclient + turnutils_peer, -z 0): delivered packets;
#  3. cost of 1,000 allocations: server CPU time (utime+stime) and resident memory before/after `turn-alloc`.
# Both servers run on SERVER_CPUS with one relay thread (coturn --relay-threads=1); load and echo peer on LOAD_CPUS.
# Ours runs with --rate-limit 0: every allocation comes from one address, and coturn has no per-source limit either.
# Usage: bench/nat/turn-relay.sh [SECONDS] [SESSIONS] [WINDOW] [BYTES] [ROUNDS] [ALLOCATIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-3}"; sessions="${2:-8}"; window="${3:-32}"; bytes="${4:-1000}"; rounds="${5:-5}"; allocations="${6:-1000}"
if [ "$(nproc)" -ge 2 ]; then server_cpus="${SERVER_CPUS:-1}"; load_cpus="${LOAD_CPUS:-0}"; else server_cpus=0; load_cpus=0; fi
for t in turnserver turnutils_uclient turnutils_peer; do command -v "$t" >/dev/null || { echo "$t (coturn) is not installed" >&2; exit 1; }; done
./peerway --version >/dev/null
dotnet build bench/Peerway.Benchmarks -c Release --nologo -v quiet >&2
load="bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll"
port=$((30000 + RANDOM % 10000)); coturn_port=$((port + 1)); echo_port=$((port + 10)); peer_port=$((port + 11))
tmp="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
taskset -c "$server_cpus" ./peerway turn-server --realm bench --user u:p --port "$port" --allow-peer 127.0.0.0/8 \
  --user-quota 100000 --total-quota 100000 --rate-limit 0 >"$tmp/ours.log" 2>&1 & pids+=($!); ours_pid=$!
taskset -c "$server_cpus" turnserver -n --no-cli --no-tls --no-dtls --relay-threads=1 --listening-ip=127.0.0.1 \
  --listening-port="$coturn_port" --relay-ip=127.0.0.1 --min-port=40000 --max-port=49999 --lt-cred-mech --user=u:p \
  --realm=bench --allow-loopback-peers --pidfile="$tmp/pid" --db="$tmp/db" --log-file=stdout --simple-log \
  --no-stdout-log >"$tmp/coturn.log" 2>&1 & pids+=($!); coturn_pid=$!
taskset -c "$load_cpus" dotnet "$load" udp-echo "127.0.0.1:$echo_port" >"$tmp/echo.log" 2>&1 & pids+=($!)
taskset -c "$load_cpus" turnutils_peer -p "$peer_port" -L 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 150); do
  grep -q "turn-server: udp" "$tmp/ours.log" 2>/dev/null && grep -q "udp-echo" "$tmp/echo.log" 2>/dev/null \
    && grep -qi ":$(printf '%04X' "$coturn_port") " /proc/net/udp && break
  sleep 0.1
done

relay() { taskset -c "$load_cpus" dotnet "$load" turn-load "127.0.0.1:$1" --peer "127.0.0.1:$echo_port" --user u --pass p \
  --sessions "$sessions" --window "$window" --bytes "$bytes" --seconds "$seconds"; }
ours_all=(); coturn_all=()
for _ in $(seq "$rounds"); do
  ours_all+=("$(relay "$port")")
  coturn_all+=("$(relay "$coturn_port")")
done
best() { printf '%s\n' "$@" | sort -n | tail -1; }
ours=$(best "${ours_all[@]}"); coturn=$(best "${coturn_all[@]}")
show() { for r in "$@"; do set -- $r; printf '%s msg/s (%s Mbit/s); ' "$1" "$2"; done; }
echo "peak relay, peerway: $(show "${ours_all[@]}")"
echo "peak relay, coturn:  $(show "${coturn_all[@]}")"
round_ratios=$(for i in "${!ours_all[@]}"; do awk -v a="${ours_all[$i]%% *}" -v b="${coturn_all[$i]%% *}" 'BEGIN { printf "%.2f\n", a / b }'; done | sort -n)
median=$(echo "$round_ratios" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "peak relay ratio per round: $(echo $round_ratios) (median $median)"
echo "peak relay ratio peerway/coturn: $(awk -v a="${ours%% *}" -v b="${coturn%% *}" 'BEGIN { printf "%.2f", a / b }') (best of $rounds; $sessions sessions x window $window x $bytes B, ${seconds}s after 1s warm-up)"

for name in peerway coturn; do
  p=$port; [ "$name" = coturn ] && p=$coturn_port
  out=$(timeout 120 taskset -c "$load_cpus" turnutils_uclient -u u -w p -e 127.0.0.1 -r "$peer_port" -p "$p" -m 20 -n 2000 -l 1000 -z 0 -c 127.0.0.1 2>&1 || true)
  got=$(echo "$out" | sed -n 's/.*start_mclient: tot_send_msgs=[0-9]*, tot_recv_msgs=\([0-9]*\).*/\1/p' | tail -1)
  secs=$(echo "$out" | sed -n 's/.*Total transmit time is \([0-9]*\).*/\1/p' | tail -1)
  echo "uclient (20 sessions x 2000 x 1000 B, -z 0), $name: ${got:-0}/40000 echoed in ${secs:-?} s"
done

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
tick=$(getconf CLK_TCK)
for name in peerway coturn; do
  p=$port; pid=$ours_pid; [ "$name" = coturn ] && { p=$coturn_port; pid=$coturn_pid; }
  c0=$(cpu "$pid"); m0=$(rss "$pid")
  exec {feed}> >(taskset -c "$load_cpus" dotnet "$load" turn-alloc "127.0.0.1:$p" --user u --pass p --count "$allocations" >"$tmp/alloc.out" 2>"$tmp/alloc.err")
  for _ in $(seq 600); do grep -q "^ready" "$tmp/alloc.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  c1=$(cpu "$pid"); m1=$(rss "$pid")
  exec {feed}>&-
  echo "$allocations allocations, $name: $(grep -a "^ready" "$tmp/alloc.out" || head -c 200 "$tmp/alloc.err"); server CPU $(awk -v a="$c0" -v b="$c1" -v t="$tick" 'BEGIN { printf "%.0f ms", (b - a) * 1000 / t }'), RSS +$(( (m1 - m0) / 1024 )) MB (from $((m0 / 1024)) MB)"
  sleep 2
done
echo "uptime: $(uptime)"
