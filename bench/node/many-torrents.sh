#!/usr/bin/env bash
# `peerway node` vs transmission-daemon holding the same 1,000 torrents, 100 of them started (issue 18 item 9).
# Usage: bench/node/many-torrents.sh [TORRENTS=1000] [ACTIVE=100] [ROUNDS=3] [SECONDS=30] [CALLS=20]
#   Makes TORRENTS single-file torrents of 64 KiB random data (bench/node/many_torrents.py make). Each round starts,
#   in turn, a fresh `peerway node` and a fresh transmission-daemon 3.00 (uTP, DHT, LPD, port mapping off; RPC and
#   peers on 127.0.0.1) with the data directory as their download dir, adds every torrent over Transmission RPC
#   (base64 metainfo; all but ACTIVE paused), waits until the ACTIVE ones have verified their data and seed, then
#   reports the daemon's RSS, its CPU % over SECONDS, and the latency of CALLS `torrent-get` calls asking every
#   torrent for the fields clients ask (bench/node/many_torrents.py measure). Nobody connects to them: this is the
#   cost of holding the torrents and of answering the RPC.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count="${1:-1000}"; active="${2:-100}"; rounds="${3:-3}"; seconds="${4:-30}"; calls="${5:-20}"
peerway="$here/peerway"
"$peerway" --help >/dev/null 2>&1 || true
work="$(mktemp -d /tmp/pw-bench-many.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
python3 "$here/bench/node/many_torrents.py" make "$work" "$count" 64
driver="$here/bench/node/many_torrents.py"

run_peerway() {
  local data="$work/pw-data"; rm -rf "$data" "$work/content/.peerway"; mkdir -p "$data"
  printf '{"download-dir": "%s", "peer-bind": "127.0.0.1"}\n' "$work/content" > "$work/pw.json"
  "$peerway" node --config "$work/pw.json" --data "$data" --rpc 127.0.0.1:0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 --swarm 127.0.0.1:0 --dht-port 0 --peer-port 0 > "$data.out" 2>"$data.err" &
  local pid=$!; pids+=("$pid")
  until [ -s "$data.out" ]; do sleep 0.1; done
  echo "  peerway node:          $(python3 "$driver" measure "$(head -1 "$data.out" | awk '{print $3}')" "$pid" "$work" "$active" "$seconds" "$calls")"
  kill -TERM "$pid"; wait "$pid" || true
}

run_transmission() {
  local conf="$work/tr-conf"; rm -rf "$conf"; mkdir -p "$conf"
  local port; port="$(free_port)"
  transmission-daemon -f -g "$conf" -p "$port" -r 127.0.0.1 -T -w "$work/content" -P "$(free_port)" -i 127.0.0.1 -M -O -Y --no-utp \
    --no-incomplete-dir -C > "$conf.out" 2>&1 &
  local pid=$!; pids+=("$pid")
  until curl -s -o /dev/null "http://127.0.0.1:$port/transmission/rpc"; do sleep 0.2; done
  echo "  transmission-daemon:   $(python3 "$driver" measure "http://127.0.0.1:$port/transmission/rpc" "$pid" "$work" "$active" "$seconds" "$calls")"
  kill -TERM "$pid"; wait "$pid" || true
}

echo "load (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(transmission-daemon -V 2>&1 | head -1)"
for round in $(seq 1 "$rounds"); do
  echo "round $round:"
  run_peerway
  run_transmission
done
echo "load (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
