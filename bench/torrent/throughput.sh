#!/usr/bin/env bash
# BitTorrent throughput on loopback, one seeder -> one leecher, the same file and .torrent for every pair, in one run:
#   Peerway -> Peerway and aria2 -> aria2; plus one core's SHA-1 speed (the hashing ceiling).
# transmission -> transmission is not measured: two transmission-cli 3.00 processes on one host never connected to
# each other here (on 127.0.0.1, nor on distinct 10.77.0.x addresses in a namespace); see docs/BENCHMARKS.md.
# Usage: bench/torrent/throughput.sh [SIZE_MIB=1024]
# Every peer finds the other through `peerway tracker` on 127.0.0.1 (2 s interval); DHT and LPD are off.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-1024}"
host=127.0.0.1
pw="$here/peerway"
work="$(mktemp -d /tmp/pw-bench-bt.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$size_mib*1048576/($2-$1)/1e6:.1f}')"; }

"$pw" --version >/dev/null
mkdir -p "$work/src"
head -c "$((size_mib * 1048576))" /dev/urandom > "$work/src/payload.bin"
sum="$(sha256sum < "$work/src/payload.bin")"
tport="$(port)"
"$pw" tracker --port "$tport" --interval 2 > "$work/tracker.out" 2>/dev/null & pids+=($!)
until [ -s "$work/tracker.out" ]; do sleep 0.1; done
"$pw" create "$work/src/payload.bin" -o "$work/payload.torrent" --tracker "http://$host:$tport/announce" >/dev/null
pieces="$("$pw" info "$work/payload.torrent" | sed -n 's/^pieces: *//p')"
# Waits until the tracker counts a seed.
wait_seed() { until curl -s "http://$host:$tport/scrape" | grep -q 'completei[1-9]'; do sleep 0.2; done; }
# Waits until the tracker counts no seed (the previous pair stopped).
wait_no_seed() { while curl -s "http://$host:$tport/scrape" | grep -q 'completei[1-9]'; do sleep 0.2; done; }
check() { [ "$(sha256sum < "$1")" = "$sum" ] || { echo "$2: WRONG CONTENT" >&2; exit 1; }; }

# Peerway -> Peerway (the leecher's time includes its process start and the metadata-free .torrent open).
"$pw" share "$work/payload.torrent" --content "$work/src/payload.bin" --port "$(port)" > "$work/share.out" 2>/dev/null & spid=$!; pids+=($spid)
until [ -s "$work/share.out" ]; do sleep 0.1; done
t0="$(now)"
"$pw" get "$work/payload.torrent" -o "$work/pw" --timeout 900 >/dev/null 2>"$work/get.err"
t1="$(now)"
kill "$spid"; wait "$spid" 2>/dev/null || true
check "$work/pw/payload.bin" peerway
peerway="$(mbps "$t0" "$t1")"
wait_no_seed

# aria2 -> aria2
aria=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --summary-interval=0 --console-log-level=error --bt-tracker-interval=2)
aria2c "${aria[@]}" -V --seed-ratio=0.0 --seed-time=900 --listen-port="$(port)" --dir="$work/src" "$work/payload.torrent" >/dev/null 2>&1 & apid=$!; pids+=($apid)
wait_seed   # aria2 verifies the file (-V), then announces itself as a seed
t0="$(now)"
aria2c "${aria[@]}" --seed-time=0 --listen-port="$(port)" --dir="$work/aria" "$work/payload.torrent" >/dev/null 2>&1
t1="$(now)"
kill "$apid" 2>/dev/null || true
check "$work/aria/payload.bin" aria2
aria2="$(mbps "$t0" "$t1")"

sha1="$(openssl speed -bytes 16384 -seconds 3 sha1 2>/dev/null | awk '/^sha1/ {gsub("k","",$NF); printf "%.0f", $NF*1000/1e6}')"
echo "file: ${size_mib} MiB, pieces: $pieces"
echo "peerway->peerway:           $peerway MB/s"
echo "aria2->aria2:               $aria2 MB/s"
echo "ratio peerway/aria2:        $(python3 -c "print(f'{$peerway/$aria2:.2f}x')")"
echo "one core SHA-1 (openssl):   $sha1 MB/s"
