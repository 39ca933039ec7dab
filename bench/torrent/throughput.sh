#!/usr/bin/env bash
# BitTorrent throughput, one seeder -> one leecher, the same file and .torrent for every pair, in one run:
#   Peerway -> Peerway, transmission -> transmission and aria2 -> aria2; plus one core's SHA-1 speed (the hashing ceiling),
#   and Peerway -> Peerway again with MSE/PE RC4 on both sides (--encryption require): the cost of encryption.
# Usage (root: it creates network namespaces): bench/torrent/throughput.sh [SIZE_MIB=1024]
#
# Same path for all three pairs: the seeder (and `peerway tracker`, 2 s interval) runs in namespace A at 10.77.1.1, the
# leecher in namespace B at 10.77.1.2, joined by a veth pair with a loopback-like MTU (65535). Not 127.0.0.1, and an
# address per side, because transmission ignores 127/8 peers ("martian") and keys peers by IP address alone (two
# transmissions sharing one address handshake but never transfer; see docs/BENCHMARKS.md). Nothing else is
# reachable from either namespace. DHT, LPD, uTP and encryption are off (plaintext TCP for every pair), except in the
# extra RC4 pair.
# "whole download": from the leecher's start (process start, or for transmission-daemon the RPC "add") until the whole
# file is complete on disk, after its seeder is announced as a seed; the SHA-256 of what arrived is checked.
# "data phase": from the moment the seeder's side of the veth has sent 256 KiB of this pair's traffic (piece data is
# flowing) until the same end; it leaves out start-up, tracker round trips and, for transmission, the wait for its
# 10 s rechoke/interest pulse before it requests anything.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-1024}"
pw="$here/peerway"
for p in ip aria2c transmission-daemon transmission-remote curl python3 openssl; do
  command -v "$p" >/dev/null || { echo "throughput.sh: $p is not installed" >&2; exit 1; }
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
# One .torrent per pair (the same bytes, hard-linked under three names, so three info-hashes): no pair sees another's peers.
for c in peerway peerway-rc4 transmission aria2; do
  ln "$work/src/payload.bin" "$work/src/$c.bin"
  "$pw" create "$work/src/$c.bin" -o "$work/$c.torrent" --tracker "http://$ipa:$tport/announce" >/dev/null
done
# The info-hash of a .torrent, percent-encoded for a scrape URL.
hash_of() { "$pw" info "$work/$1.torrent" | sed -n 's/^info-hash: *//p' | sed 's/../%&/g'; }
pieces="$("$pw" info "$work/peerway.torrent" | sed -n 's/^pieces: *//p')"
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

# Peerway -> Peerway
log "peerway"
"${a[@]}" "$pw" share "$work/peerway.torrent" --content "$work/src/peerway.bin" --port 6881 > /dev/null 2>"$work/share.err" & spid=$!; pids+=($spid)
wait_seed peerway
mark_first_data "$work/first.pw" & mpid=$!
t0="$(now)"
"${b[@]}" "$pw" get "$work/peerway.torrent" -o "$work/pw" --port 6882 --timeout 900 >/dev/null 2>"$work/get.err"
t1="$(now)"
stop "$spid"
check "$work/pw/peerway.bin" peerway
wait "$mpid"; peerway="$(mbps "$t0" "$t1")"; peerway_data="$(mbps "$(cat "$work/first.pw")" "$t1")"

# Peerway -> Peerway, RC4 (MSE/PE required on both sides)
log "peerway rc4"
"${a[@]}" "$pw" share "$work/peerway-rc4.torrent" --content "$work/src/peerway-rc4.bin" --port 6885 --encryption require > /dev/null 2>"$work/share-rc4.err" & spid=$!; pids+=($spid)
wait_seed peerway-rc4
mark_first_data "$work/first.rc4" & mpid=$!
t0="$(now)"
"${b[@]}" "$pw" get "$work/peerway-rc4.torrent" -o "$work/rc4" --port 6886 --timeout 900 --encryption require >/dev/null 2>"$work/get-rc4.err"
t1="$(now)"
stop "$spid"
check "$work/rc4/peerway-rc4.bin" peerway-rc4
wait "$mpid"; rc4="$(mbps "$t0" "$t1")"; rc4_data="$(mbps "$(cat "$work/first.rc4")" "$t1")"

log "transmission"
# transmission -> transmission: one transmission-daemon per namespace, driven over RPC on each namespace's loopback.
tr_config() { # DIR DOWNLOAD_DIR BIND_ADDRESS
  mkdir -p "$1" "$2"
  cat > "$1/settings.json" <<EOF
{"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false,
 "encryption": 0, "bind-address-ipv4": "$3", "peer-port": 51413, "peer-port-random-on-start": false,
 "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": 9091, "rpc-authentication-required": false,
 "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false, "download-dir": "$2", "incomplete-dir-enabled": false,
 "start-added-torrents": true, "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "message-level": 1}
EOF
}
rpc() { local ns=$1; shift; ip netns exec "$ns" transmission-remote 127.0.0.1:9091 "$@" 2>/dev/null | grep -q success; }
rpc_up() { ip netns exec "$1" transmission-remote 127.0.0.1:9091 -l >/dev/null 2>&1; }
remote() { wait_for "transmission-remote $*" rpc "$@"; }
tr_config "$work/tra" "$work/src" "$ipa"; tr_config "$work/trb" "$work/tr" "$ipb"
"${a[@]}" transmission-daemon -f -g "$work/tra" 2>"$work/tra.err" & tapid=$!; pids+=($tapid)
"${b[@]}" transmission-daemon -f -g "$work/trb" 2>"$work/trb.err" & tbpid=$!; pids+=($tbpid)
remote "$nsa" -a "$work/transmission.torrent"
remote "$nsa" -t 1 -v     # verifies the file, then seeds and announces itself as a seed
wait_for "the leecher's transmission-daemon" rpc_up "$nsb"
wait_seed transmission
mark_first_data "$work/first.tr" & mpid=$!
t0="$(now)"
remote "$nsb" -a "$work/transmission.torrent"
# transmission renames transmission.bin.part to transmission.bin when the file's last piece has verified.
wait_for "transmission's download" test -f "$work/tr/transmission.bin"
t1="$(now)"
stop "$tbpid"; stop "$tapid"
check "$work/tr/transmission.bin" transmission
wait "$mpid"; transmission="$(mbps "$t0" "$t1")"; transmission_data="$(mbps "$(cat "$work/first.tr")" "$t1")"

log "aria2"
# aria2 -> aria2
aria=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --summary-interval=0 --console-log-level=error --bt-tracker-interval=2)
"${a[@]}" aria2c "${aria[@]}" -V --seed-ratio=0.0 --seed-time=900 --listen-port=6883 --dir="$work/src" "$work/aria2.torrent" >/dev/null 2>&1 & apid=$!; pids+=($apid)
wait_seed aria2   # aria2 verifies the file (-V), then announces itself as a seed
mark_first_data "$work/first.aria" & mpid=$!
t0="$(now)"
"${b[@]}" aria2c "${aria[@]}" --seed-time=0 --listen-port=6884 --dir="$work/aria" "$work/aria2.torrent" >/dev/null 2>&1
t1="$(now)"
stop "$apid"
check "$work/aria/aria2.bin" aria2
wait "$mpid"; aria2="$(mbps "$t0" "$t1")"; aria2_data="$(mbps "$(cat "$work/first.aria")" "$t1")"

best="$(python3 -c "print(max($transmission, $aria2))")"
best_data="$(python3 -c "print(max($transmission_data, $aria2_data))")"
sha1="$(openssl speed -bytes 16384 -seconds 3 sha1 2>/dev/null | awk '/^sha1/ {gsub("k","",$NF); printf "%.0f", $NF*1000/1e6}')"
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
echo "file: ${size_mib} MiB, pieces: $pieces"
echo "MB/s (10^6 B/s)             whole download   data phase"
printf '%-28s %-16s %s\n' "peerway->peerway" "$peerway" "$peerway_data"
printf '%-28s %-16s %s\n' "transmission->transmission" "$transmission" "$transmission_data"
printf '%-28s %-16s %s\n' "aria2->aria2" "$aria2" "$aria2_data"
printf '%-28s %-16s %s\n' "ratio vs the faster" "$(ratio "$peerway" "$best")" "$(ratio "$peerway_data" "$best_data")"
printf '%-28s %-16s %s\n' "peerway->peerway RC4" "$rc4" "$rc4_data"
printf '%-28s %-16s %s\n' "RC4 vs plaintext" "$(ratio "$rc4" "$peerway")" "$(ratio "$rc4_data" "$peerway_data")"
echo "one core SHA-1 (openssl):   $sha1 MB/s"
