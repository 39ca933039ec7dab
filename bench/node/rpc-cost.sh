#!/usr/bin/env bash
# What answering 1,000 pollers costs a Transmission RPC server, in CPU per request (issue 18 item 8).
# Usage: bench/node/rpc-cost.sh [CLIENTS=1000] [INTERVAL_S=1] [SECONDS=20] [ROUNDS=3]
#   Each round starts, in turn, a fresh `peerway node` per build and a fresh transmission-daemon 3.00 (RPC on
#   127.0.0.1), adds one 4 MiB torrent paused (nothing downloads), runs bench/node/rpc_pollers.py (CLIENTS keep-alive
#   connections, torrent-get with 16 fields every INTERVAL_S s), lets every poller make its first request, then over
#   SECONDS reads from /proc the CPU time of the server and of the pollers and the pollers' request count. Reported:
#   requests/s, the server's and the pollers' CPU µs per request, and the pollers' p50/p99 latency.
# PEERWAY_BUILDS="label=DIR[,VAR=VALUE…] …" as in rpc-load.sh (default: this tree's build).
# POLLER=dotnet uses bench/node/RpcPollers instead of rpc_pollers.py (POLLER=python, the default).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
clients="${1:-1000}"; interval="${2:-1}"; seconds="${3:-20}"; rounds="${4:-3}"
ulimit -n 8192
"$here/peerway" --help >/dev/null 2>&1 || true
. "$here/bench/node/common.sh"
builds=(${PEERWAY_BUILDS:-$default_builds})
kind="${POLLER:-python}"
build_pollers "$kind"
work="$(mktemp -d /tmp/pw-bench-rpc-cost.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz="$(getconf CLK_TCK)"

head -c $((4 * 1024 * 1024)) /dev/urandom > "$work/payload.bin"
"$here/peerway" create "$work/payload.bin" -o "$work/payload.torrent" >/dev/null

measure() { # measure LABEL URL SERVER_PID -> one line
  python3 "$here/bench/node/rpc_download.py" "$2" --add-paused "$work/payload.torrent"
  (run_pollers "$kind" "$2" "$clients" "$interval") > "$work/pollers" &
  local poller=$!
  until [ -s "$work/pollers" ]; do sleep 0.1; done
  sleep "$(python3 -c "print($interval + 2)")" # every poller connected and made its first request
  local r0 s0 p0 r1 s1 p1
  kill -USR1 "$poller"; until [ "$(wc -l < "$work/pollers")" -ge 2 ]; do sleep 0.05; done
  s0="$(ticks "$3")"; p0="$(ticks "$poller")"; r0="$(sed -n 2p "$work/pollers" | awk '{print $2}')"
  sleep "$seconds"
  kill -USR1 "$poller"; until [ "$(wc -l < "$work/pollers")" -ge 3 ]; do sleep 0.05; done
  s1="$(ticks "$3")"; p1="$(ticks "$poller")"; r1="$(sed -n 3p "$work/pollers" | awk '{print $2}')"
  kill -TERM "$poller"; wait "$poller" || true
  local errors lat; errors="$(tail -1 "$work/pollers" | awk '{print $4}')"; lat="$(tail -1 "$work/pollers" | awk '{print $6 " / " $8}')"
  python3 -c "
n = $r1 - $r0
print(f'$1: {n / $seconds:.0f} req/s, server {1e6 * ($s1 - $s0) / $hz / n:.0f} µs CPU/request, pollers {1e6 * ($p1 - $p0) / $hz / n:.0f} µs CPU/request, errors $errors, p50 / p99 $lat ms')"
}

run_peerway() { # run_peerway BUILD
  local data="$work/pw-data"; rm -rf "$data" "$data.out"; mkdir -p "$data"
  (run_node "$1" --data "$data" --rpc 127.0.0.1:0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 --swarm 127.0.0.1:0 --dht-port 0 --peer-port 0) > "$data.out" 2>"$data.err" &
  local pid=$!; pids+=("$pid")
  until grep -q ' peers tcp ' "$data.out" 2>/dev/null; do sleep 0.1; done # the whole banner line
  echo "  $(measure "peerway node ($(build_label "$1"))" "$(head -1 "$data.out" | awk '{print $3}')" "$pid")"
  kill -TERM "$pid"; wait "$pid" || true
}

run_transmission() {
  local conf="$work/tr-conf"; rm -rf "$conf"; mkdir -p "$conf"
  local port; port="$(free_port)"
  transmission-daemon -f -g "$conf" -p "$port" -r 127.0.0.1 -T -w "$work" -P "$(free_port)" -i 127.0.0.1 -M -O -Y --no-utp \
    --no-incomplete-dir -C > "$conf.out" 2>&1 &
  local pid=$!; pids+=("$pid")
  until curl -s -o /dev/null "http://127.0.0.1:$port/transmission/rpc"; do sleep 0.2; done
  echo "  $(measure "transmission-daemon" "http://127.0.0.1:$port/transmission/rpc" "$pid")"
  kill -TERM "$pid"; wait "$pid" || true
}

echo "load (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $clients $kind pollers every ${interval}s, ${seconds}s windows"
for round in $(seq 1 "$rounds"); do
  echo "round $round:"
  for b in "${builds[@]}"; do run_peerway "$b"; done
  run_transmission
done
echo "load (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
