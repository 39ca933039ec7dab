#!/usr/bin/env bash
# Does polling the node's Transmission RPC slow its downloads? (issue 18 item 8: 1,000 concurrent RPC clients polling
# torrent-get must not slow a download by more than 10 %.)
# Usage: bench/node/rpc-load.sh [SIZE_MIB=256] [ROUNDS=5] [CLIENTS=1000] [INTERVAL_S=1]
#   A `peerway share` seeder on 127.0.0.1 serves a SIZE_MIB random file. Each round runs two downloads, in turn: a
#   fresh `peerway node` adds the magnet over RPC and downloads it, once alone and once while CLIENTS pollers
#   (bench/node/rpc_pollers.py: keep-alive connections, each asking torrent-get every INTERVAL_S s) poll it. Reported:
#   each download's MiB/s (bench/node/rpc_download.py: time from torrent-add to percentDone 1, asked every 20 ms on one
#   keep-alive connection), the medians of both sets and their ratio, the pollers' request count and latency, and the
#   load before and after.
# SEED_LIMIT_KIB=N caps the seeder's upload (KiB/s), so the download is bound by the link, not by the two cores.
# POLLERS="python dotnet" runs a polled download per poller kind after each download alone (default: python):
#   `python` is rpc_pollers.py, `dotnet` bench/node/RpcPollers (the same requests, a fraction of the CPU). Each polled
#   line also gives the pollers' own CPU µs per request, which comes out of the same two cores. The order of a
#   build's downloads in a round turns from round to round.
# KIND@decoy (e.g. POLLERS="python python@decoy") is the control: the same pollers poll a second, idle node holding the
#   same torrent paused (the same answers), while the first downloads unpolled; the download then loses only what the
#   pollers (and the idle second node) take of the two cores, none of the downloading node's own RPC work.
# PEERWAY_BUILDS="label=DIR[,VAR=VALUE…] …" compares published CLI builds (DIR/peerway.dll, e.g. a copy of .build/cli
#   made before a change), each run with its environment (bench/node/common.sh), in the same run: each round runs every
#   build's downloads in turn. Default: this tree's build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size="${1:-256}"; rounds="${2:-5}"; clients="${3:-1000}"; interval="${4:-1}"
ulimit -n 8192
"$here/peerway" --help >/dev/null 2>&1 || true
. "$here/bench/node/common.sh"
builds=(${PEERWAY_BUILDS:-$default_builds})
kinds=(${POLLERS:-python})
build_pollers "${kinds[@]}"
peerway="$here/peerway"
work="$(mktemp -d /tmp/pw-bench-rpc-load.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

head -c "$((size * 1024 * 1024))" /dev/urandom > "$work/payload.bin"
"$peerway" create "$work/payload.bin" -o "$work/payload.torrent" >/dev/null
seed_port="$(free_port)"
"$peerway" share "$work/payload.torrent" --content "$work/payload.bin" --port "$seed_port" ${SEED_LIMIT_KIB:+--upload-limit "$SEED_LIMIT_KIB"} > "$work/share.out" 2>"$work/share.err" &
pids+=($!)
until [ -s "$work/share.out" ]; do sleep 0.2; done
magnet="$(head -1 "$work/share.out")&x.pe=127.0.0.1:$seed_port"

one_download() { # one_download BUILD POLLERS(none|python|dotnet) -> prints MiB/s (and the pollers' line on stderr)
  local data="$work/node-$RANDOM$RANDOM" out poller=""
  mkdir -p "$data"
  (run_node "$1" --data "$data" --rpc 127.0.0.1:0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 --swarm 127.0.0.1:0 --dht-port 0 --peer-port 0) > "$data/out" 2>"$data/err" &
  local node=$!
  until grep -q ' peers tcp ' "$data/out" 2>/dev/null; do sleep 0.1; done # the whole banner line
  local url; url="$(head -1 "$data/out" | awk '{print $3}')"
  local target="$url" decoy=""
  if [ "${2#*@}" = decoy ]; then
    # The control: the same pollers, polling a second node that holds the same torrent, paused (the same answers),
    # while the first downloads unpolled. What the download loses then is the pollers' own CPU, not the node's RPC.
    mkdir -p "$data/decoy"
    (run_node "$1" --data "$data/decoy" --rpc 127.0.0.1:0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 --swarm 127.0.0.1:0 --dht-port 0 --peer-port 0) > "$data/decoy/out" 2>"$data/decoy/err" &
    decoy=$!
    until grep -q ' peers tcp ' "$data/decoy/out" 2>/dev/null; do sleep 0.1; done
    target="$(head -1 "$data/decoy/out" | awk '{print $3}')"
    python3 "$here/bench/node/rpc_download.py" "$target" --add-paused "$work/payload.torrent"
  fi
  if [ "$2" != none ]; then
    (run_pollers "${2%@decoy}" "$target" "$clients" "$interval") > "$data/pollers" &
    poller=$!
    until [ -s "$data/pollers" ]; do sleep 0.1; done
    sleep "$interval" # every poller has made its first request
  fi
  local seconds
  seconds="$(python3 "$here/bench/node/rpc_download.py" "$url" "$magnet")"
  if [ -n "$poller" ]; then kill -TERM "$poller"; wait "$poller" || true; echo "    $2 pollers: $(tail -1 "$data/pollers")" >&2; fi
  if [ -n "$decoy" ]; then kill -TERM "$decoy"; wait "$decoy" || true; fi
  kill -TERM "$node"; wait "$node" || true
  cmp -s "$data/downloads/payload.bin" "$work/payload.bin" || { echo "downloaded file differs" >&2; exit 1; }
  rm -rf "$data"
  python3 -c "print(f'{$size/$seconds:.1f}')"
}

echo "load (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $size MiB; $clients pollers every ${interval}s"
declare -A alone polled speed
modes=(none "${kinds[@]}")
for round in $(seq 1 "$rounds"); do
  for b in "${builds[@]}"; do
    label="$(build_label "$b")"
    # The downloads' order turns each round (alone first, then second, …), so no mode always runs first.
    for i in "${!modes[@]}"; do
      m="${modes[$(((i + round - 1) % ${#modes[@]}))]}"
      speed[$m]="$(one_download "$b" "$m")"
    done
    a="${speed[none]}"; alone[$label]+=" $a"; line="alone $a MiB/s"
    for k in "${kinds[@]}"; do
      p="${speed[$k]}"; polled[$label/$k]+=" $p"; line+=", with $clients $k pollers $p MiB/s"
    done
    echo "round $round, $label: $line"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for b in "${builds[@]}"; do
  label="$(build_label "$b")"
  ma="$(median ${alone[$label]})"; line="alone $ma MiB/s"
  for k in "${kinds[@]}"; do
    mp="$(median ${polled[$label/$k]})"; line+=", with $k pollers $mp MiB/s, ratio $(python3 -c "print(f'{$mp/$ma:.3f}')")"
  done
  echo "median, $label: $line"
done
echo "load (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
