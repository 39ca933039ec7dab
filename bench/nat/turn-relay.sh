#!/usr/bin/env bash
# TURN ChannelData relay under the same turnutils_uclient load: Peerway's turn-server vs coturn's turnserver on
# loopback, echoed by turnutils_peer, alternating servers RUNS times. Prints packets delivered back per run.
# Usage: bench/nat/turn-relay.sh [RUNS] [SESSIONS] [MESSAGES] [BYTES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
runs="${1:-2}"; sessions="${2:-20}"; messages="${3:-2000}"; bytes="${4:-1000}"
for t in turnserver turnutils_uclient turnutils_peer; do command -v "$t" >/dev/null || { echo "$t (coturn) is not installed" >&2; exit 1; }; done
./peerway --version >/dev/null
port=$((30000 + RANDOM % 10000)); peer_port=$((port + 10))
tmp="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
./peerway turn-server --realm bench --user u:p --port "$port" --allow-peer 127.0.0.0/8 --user-quota 100000 >"$tmp/ours.log" 2>&1 & pids+=($!)
turnserver -n --no-cli --no-tls --no-dtls --listening-ip=127.0.0.1 --listening-port=$((port + 1)) --relay-ip=127.0.0.1 \
  --min-port=40000 --max-port=45000 --lt-cred-mech --user=u:p --realm=bench --allow-loopback-peers \
  --pidfile="$tmp/pid" --db="$tmp/db" --log-file=stdout --simple-log --no-stdout-log >"$tmp/coturn.log" 2>&1 & pids+=($!)
turnutils_peer -p "$peer_port" -L 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q "turn-server: udp" "$tmp/ours.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
total=$((sessions * messages))
for run in $(seq "$runs"); do
  for name in peerway coturn; do
    p=$port; [ "$name" = coturn ] && p=$((port + 1))
    out=$(timeout 300 turnutils_uclient -u u -w p -e 127.0.0.1 -r "$peer_port" -p "$p" -m "$sessions" -n "$messages" -l "$bytes" -z 0 -c 127.0.0.1 2>&1 || true)
    got=$(echo "$out" | sed -n 's/.*start_mclient: tot_send_msgs=[0-9]*, tot_recv_msgs=\([0-9]*\).*/\1/p' | tail -1)
    secs=$(echo "$out" | sed -n 's/.*Total transmit time is \([0-9]*\).*/\1/p' | tail -1)
    echo "run $run $name: ${got:-0}/$total packets echoed in ${secs:-?} s"
  done
done
