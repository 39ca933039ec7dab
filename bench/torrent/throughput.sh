#!/usr/bin/env bash
# BitTorrent throughput, one seeder -> one leecher, the same file for every pair, in one run of interleaved rounds:
#   Peerway -> Peerway, transmission -> transmission, aria2 -> aria2 and libtorrent 2.0 -> libtorrent (python3-libtorrent,
#   tuned for a fast LAN: bench/torrent/lt_peer.py), each in plaintext and again with MSE/PE RC4 required on both sides
#   (Peerway --encryption require, transmission "encryption": 2, aria2 --bt-require-crypto --bt-min-crypto-level=arc4,
#   libtorrent pe_forced in and out with allowed_enc_level rc4); plus one core's SHA-1 speed (the hashing ceiling).
# Usage (root: it creates network namespaces): bench/torrent/throughput.sh [SIZE_MIB=1024] [ROUNDS=3] [PAIR...]
#   PAIR defaults to all eight: peerway peerway-rc4 transmission transmission-rc4 aria2 aria2-rc4 libtorrent
#   libtorrent-rc4; also baseline and baseline-rc4 with PW_BASELINE=DIR (an earlier build's .build/cli, see below). Every round runs every pair once, in that order; the report gives each pair's median over the
#   rounds and the ratios of Peerway's medians to the fastest other client's, plaintext and RC4.
#
# Same path for all pairs: the seeder (and `peerway tracker`, 2 s interval) runs in namespace A at 10.77.1.1, the
# leecher in namespace B at 10.77.1.2, joined by a veth pair with a loopback-like MTU (65535). Not 127.0.0.1, and an
# address per side, because transmission ignores 127/8 peers ("martian") and keys peers by IP address alone (two
# transmissions sharing one address handshake but never transfer; see docs/BENCHMARKS.md). Nothing else is
# reachable from either namespace. DHT, LPD, PEX and uTP are off (TCP for every pair). One .torrent per pair and round
# (the same bytes hard-linked under one name per run), so no run sees another's peers.
# "whole download": from the leecher's start (process start, or for transmission-daemon the RPC "add") until the whole
# file is complete on disk, after its seeder is announced as a seed; the SHA-256 of what arrived is checked.
# "data phase": from the moment the seeder's side of the veth has sent 256 KiB of this pair's traffic (piece data is
# flowing) until the same end; it leaves out start-up, tracker round trips and, for transmission, the wait for its
# 10 s rechoke/interest pulse before it requests anything.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-1024}"
rounds="${2:-3}"
all_pairs=(peerway peerway-rc4 transmission transmission-rc4 aria2 aria2-rc4 libtorrent libtorrent-rc4 baseline baseline-rc4)
if [ $# -gt 2 ]; then pairs=("${@:3}"); else pairs=("${all_pairs[@]:0:8}"); fi
pw="$here/peerway"
# PW_BASELINE=DIR (a copy of an earlier build's .build/cli): the pairs "baseline" and "baseline-rc4" run that build's
# `share`/`get` exactly as the peerway pairs do, for a before/after in the same run.
baseline="${PW_BASELINE:-}"
lt_peer="$here/bench/torrent/lt_peer.py"
for p in ip aria2c transmission-daemon transmission-remote curl python3 openssl /usr/bin/python3; do
  command -v "$p" >/dev/null || { echo "throughput.sh: $p is not installed" >&2; exit 1; }
done
/usr/bin/python3 -c "import libtorrent" 2>/dev/null || { echo "throughput.sh: python3-libtorrent is not installed" >&2; exit 1; }
for p in "${pairs[@]}"; do
  [[ " ${all_pairs[*]} " == *" $p "* ]] || { echo "throughput.sh: unknown pair $p (one of: ${all_pairs[*]})" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "throughput.sh: needs root (network namespaces)" >&2; exit 1; }
work="$(mktemp -d /tmp/pw-bench-bt.XXXXXX)"
tag="tint$$"; nsa="$tag-a"; nsb="$tag-b"
a=(ip netns exec "$nsa"); b=(ip netns exec "$nsb")
ipa=10.77.1.1; ipb=10.77.1.2
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns delete "$nsa" 2>/dev/null || true; ip netns delete "$nsb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$nsa"; ip netns add "$nsb"
ip link add "${tag}a" netns "$nsa" mtu 65535 type veth peer name "${tag}b" netns "$nsb" mtu 65535
ip -n "$nsa" addr add "$ipa/24" dev "${tag}a"; ip -n "$nsb" addr add "$ipb/24" dev "${tag}b"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set "${tag}a" up; ip -n "$nsb" link set "${tag}b" up

now() { echo "$EPOCHREALTIME"; }
log() { echo "[$(date +%T)] $*" >&2; }
# Polls a condition (a command) every 0.05 s; gives up after 900 s.
wait_for() { local what=$1 end=$((SECONDS + 900)); shift; until "$@"; do [ $SECONDS -lt $end ] || { echo "timed out waiting for $what" >&2; exit 1; }; sleep 0.05; done; }
mbps() { python3 -c "print(f'{$size_mib*1048576/($2-$1)/1e6:.1f}')"; }
"$pw" --version >/dev/null
mkdir -p "$work/src"
head -c "$((size_mib * 1048576))" /dev/urandom > "$work/src/payload.bin"
sum="$(sha256sum < "$work/src/payload.bin")"
tport=6969
"${a[@]}" "$pw" tracker --port "$tport" --interval 2 > "$work/tracker.out" 2>/dev/null & trackerpid=$!; pids+=($trackerpid)
wait_for "the tracker" test -s "$work/tracker.out"
# One .torrent per pair and round (the same bytes hard-linked under its own name, so its own info-hash): no run sees
# another's peers, nor a seed the tracker still counts from an earlier run.
new_torrent() {
  ln "$work/src/payload.bin" "$work/src/$1.bin"
  "$pw" create "$work/src/$1.bin" -o "$work/$1.torrent" --tracker "http://$ipa:$tport/announce" >/dev/null
}
# The info-hash of a .torrent, percent-encoded for a scrape URL.
hash_of() { "$pw" info "$work/$1.torrent" | sed -n 's/^info-hash: *//p' | sed 's/../%&/g'; }
# Waits until the tracker counts a seed of torrent $1.
has_seed() { "${a[@]}" curl -s "http://$ipa:$tport/scrape?info_hash=$1" | grep -q 'completei[1-9]'; }
wait_seed() { wait_for "a seed" has_seed "$(hash_of "$1")"; log "$1 seed announced"; }
# Bytes sent by namespace A's veth (seeder -> leecher), read from /proc/<a process in A>/net/dev without forking.
tx_a() {
  local line f
  while read -r line; do
    [ "${line%%:*}" = "${tag}a" ] || continue
    read -ra f <<< "${line#*:}"; tx=${f[8]}; return
  done < "/proc/$trackerpid/net/dev"
}
mkfifo "$work/never"; exec {never}<>"$work/never"
# In the background: writes to $1 the time at which A has sent 256 KiB more than now (piece data is flowing).
mark_first_data() {
  local tx; tx_a; local base=$tx
  while tx_a; [ "$tx" -lt $((base + 262144)) ]; do read -t 0.01 -u "$never" || true; done
  echo "$EPOCHREALTIME" > "$1"
}
# Checks, then deletes, what a leecher wrote.
check() { [ "$(sha256sum < "$1")" = "$sum" ] || { echo "$2: WRONG CONTENT" >&2; exit 1; }; rm -rf "$(dirname "$1")"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Each run_CLIENT runs one pair once: $1 names the run's .torrent and file, $2 is "plain" or "rc4". The seeder listens
# on port+1, the leecher on port+2 and writes into $work/out. Sets t0 (leecher start) and t1 (file complete), and
# starts mark_first_data ($mpid).

# Peerway -> Peerway
run_baseline() {
  [ -f "$baseline/peerway.dll" ] || { echo "throughput.sh: the baseline pairs need PW_BASELINE=DIR (a copy of .build/cli)" >&2; exit 2; }
  pw_run=(dotnet "$baseline/peerway.dll"); run_peerway_with "$@"
}
run_peerway() { pw_run=("$pw"); run_peerway_with "$@"; }
run_peerway_with() {
  local enc=(--encryption off); [ "$2" = rc4 ] && enc=(--encryption require)
  "${a[@]}" "${pw_run[@]}" share "$work/$1.torrent" --content "$work/src/$1.bin" --port "$((port + 1))" "${enc[@]}" > /dev/null 2>"$work/share.err" & spid=$!; pids+=($spid)
  wait_seed "$1"
  mark_first_data "$work/first" & mpid=$!
  t0="$(now)"
  "${b[@]}" "${pw_run[@]}" get "$work/$1.torrent" -o "$work/out" --port "$((port + 2))" --timeout 900 "${enc[@]}" >/dev/null 2>"$work/get.err"
  t1="$(now)"
  stop "$spid"
  check "$work/out/$1.bin" "$1"
}

# transmission -> transmission: one transmission-daemon per namespace, driven over RPC on each namespace's loopback.
# "encryption": 0 prefers plaintext (and no peer here offers RC4), 2 requires encryption.
tr_config() { # DIR DOWNLOAD_DIR BIND_ADDRESS ENCRYPTION PEER_PORT
  rm -rf "$1"; mkdir -p "$1" "$2"
  cat > "$1/settings.json" <<EOF
{"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false,
 "encryption": $4, "bind-address-ipv4": "$3", "peer-port": $5, "peer-port-random-on-start": false,
 "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": 9091, "rpc-authentication-required": false,
 "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false, "download-dir": "$2", "incomplete-dir-enabled": false,
 "start-added-torrents": true, "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "message-level": 1}
EOF
}
rpc() { local ns=$1; shift; ip netns exec "$ns" transmission-remote 127.0.0.1:9091 "$@" 2>/dev/null | grep -q success; }
rpc_up() { ip netns exec "$1" transmission-remote 127.0.0.1:9091 -l >/dev/null 2>&1; }
remote() { wait_for "transmission-remote $*" rpc "$@"; }
run_transmission() {
  local enc=0; [ "$2" = rc4 ] && enc=2
  tr_config "$work/tra" "$work/src" "$ipa" "$enc" "$((port + 1))"; tr_config "$work/trb" "$work/out" "$ipb" "$enc" "$((port + 2))"
  "${a[@]}" transmission-daemon -f -g "$work/tra" 2>"$work/tra.err" & tapid=$!; pids+=($tapid)
  "${b[@]}" transmission-daemon -f -g "$work/trb" 2>"$work/trb.err" & tbpid=$!; pids+=($tbpid)
  remote "$nsa" -a "$work/$1.torrent"
  remote "$nsa" -t 1 -v     # verifies the file, then seeds and announces itself as a seed
  wait_for "the leecher's transmission-daemon" rpc_up "$nsb"
  wait_seed "$1"
  mark_first_data "$work/first" & mpid=$!
  t0="$(now)"
  remote "$nsb" -a "$work/$1.torrent"
  # transmission renames NAME.bin.part to NAME.bin when the file's last piece has verified.
  wait_for "transmission's download" test -f "$work/out/$1.bin"
  t1="$(now)"
  stop "$tbpid"; stop "$tapid"
  check "$work/out/$1.bin" "$1"
}

# aria2 -> aria2
aria=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --summary-interval=0 --console-log-level=error --bt-tracker-interval=2)
run_aria2() {
  local enc=(); [ "$2" = rc4 ] && enc=(--bt-require-crypto=true --bt-min-crypto-level=arc4)
  "${a[@]}" aria2c "${aria[@]}" "${enc[@]}" -V --seed-ratio=0.0 --seed-time=900 --listen-port="$((port + 1))" --dir="$work/src" "$work/$1.torrent" >/dev/null 2>&1 & apid=$!; pids+=($apid)
  wait_seed "$1"   # aria2 verifies the file (-V), then announces itself as a seed
  mark_first_data "$work/first" & mpid=$!
  t0="$(now)"
  "${b[@]}" aria2c "${aria[@]}" "${enc[@]}" --seed-time=0 --listen-port="$((port + 2))" --dir="$work/out" "$work/$1.torrent" >/dev/null 2>&1
  t1="$(now)"
  stop "$apid"
  check "$work/out/$1.bin" "$1"
}

# libtorrent -> libtorrent (python3-libtorrent 2.0.8; its settings are in lt_peer.py)
run_libtorrent() {
  mkdir -p "$work/out"
  "${a[@]}" /usr/bin/python3 "$lt_peer" seed "$work/$1.torrent" "$work/src" "$ipa" "$((port + 1))" "$2" >/dev/null 2>"$work/lta.err" & lpid=$!; pids+=($lpid)
  wait_seed "$1"   # libtorrent checks the file when it is added, then announces itself as a seed
  mark_first_data "$work/first" & mpid=$!
  t0="$(now)"
  "${b[@]}" /usr/bin/python3 "$lt_peer" leech "$work/$1.torrent" "$work/out" "$ipb" "$((port + 2))" "$2" >/dev/null 2>"$work/ltb.err"
  t1="$(now)"
  stop "$lpid"
  check "$work/out/$1.bin" "$1"
}

results="$work/results"
port=20000
: > "$results"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for pair in "${pairs[@]}"; do
    client="${pair%-rc4}"; enc=plain; [ "$client" != "$pair" ] && enc=rc4
    log "round $round/$rounds: $pair (load $(cut -d' ' -f1-3 /proc/loadavg))"
    rm -rf "$work/out" "$work/first"
    name="$pair-r$round"; new_torrent "$name"
    pieces="$("$pw" info "$work/$name.torrent" | sed -n 's/^pieces: *//p')"
    port=$((port + 10))   # fresh listening ports for every run: no bind races with the previous run's closing sockets
    "run_$client" "$name" "$enc"
    wait "$mpid"
    rm -f "$work/src/$name.bin" "$work/$name.torrent"
    echo "$pair $round $(mbps "$t0" "$t1") $(mbps "$(cat "$work/first")" "$t1")" | tee -a "$results" >&2
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

sha1="$(openssl speed -bytes 16384 -seconds 3 sha1 2>/dev/null | awk '/^sha1/ {gsub("k","",$NF); printf "%.0f", $NF*1000/1e6}')"
echo "file: ${size_mib} MiB, pieces: $pieces; $rounds interleaved rounds; load (1/5/15 min) at start $load_start, at end $load_end"
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    pair, _, whole, data = line.split()
    runs.setdefault(pair, []).append((float(whole), float(data)))
med = {p: (statistics.median(w for w, _ in r), statistics.median(d for _, d in r)) for p, r in runs.items()}
print(f"{'MB/s (10^6 B/s), median':<32} {'whole download':<16} {'data phase':<12} every round (whole / data)")
for p, (w, d) in med.items():
    print(f"{p.replace('-rc4', ' RC4'):<32} {w:<16.1f} {d:<12.1f} {'  '.join(f'{x:.1f}/{y:.1f}' for x, y in runs[p])}")
for suffix, name in (("", "plaintext"), ("-rc4", "RC4")):
    mine = "peerway" + suffix
    others = [p for p in med if p not in (mine, "baseline" + suffix) and p.endswith("-rc4") == (suffix == "-rc4")]
    if mine not in med or not others:
        continue
    bw = max(others, key=lambda p: med[p][0])
    bd = max(others, key=lambda p: med[p][1])
    print(f"{'ratio vs the fastest, ' + name:<32} {f'{med[mine][0] / med[bw][0]:.2f}x ({bw})':<16} {med[mine][1] / med[bd][1]:.2f}x ({bd})")
for suffix, name in (("", "plaintext"), ("-rc4", "RC4")):
    if "peerway" + suffix in med and "baseline" + suffix in med:
        w = med["peerway" + suffix][0] / med["baseline" + suffix][0]
        d = med["peerway" + suffix][1] / med["baseline" + suffix][1]
        print(f"{'Peerway vs baseline, ' + name:<32} {f'{w:.2f}x':<16} {d:.2f}x")
if "peerway" in med and "peerway-rc4" in med:
    w = med["peerway-rc4"][0] / med["peerway"][0]
    d = med["peerway-rc4"][1] / med["peerway"][1]
    print(f"{'Peerway RC4 vs plaintext':<32} {f'{w:.2f}x':<16} {d:.2f}x")
PY
echo "one core SHA-1 (openssl):   $sha1 MB/s"
