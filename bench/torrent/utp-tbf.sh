#!/usr/bin/env bash
# LEDBAT against TCP at a bottleneck (issue 15 item 7): the share of a 20 Mbit/s link a uTP download takes while an
# iperf3 TCP flow runs over the same link, for Peerway -> Peerway and libtorrent -> libtorrent (uTP only).
# Three namespaces: utp-tbf-s (the seeds and the iperf3 client, 10.78.1.1), a router utp-tbf-r, and utp-tbf-d (the
# downloaders and the iperf3 server, 10.78.2.2). The router's egress towards d is the bottleneck, shaped by
# `tc tbf rate 20mbit` with a queue of up to 400 ms (deep enough that TCP's queue passes LEDBAT's 100 ms target). The
# bottleneck sits on a router, not on the sender's own interface: there, TCP Small Queues would keep a local TCP
# sender from ever filling the qdisc while UDP fills it freely. For each stack: the download starts alone, runs
# WARMUP s, then iperf3 sends for SECONDS s beside it; iptables counters on the router's FORWARD chain count the
# bytes of each (UDP: uTP; TCP to port 5201: iperf3) over exactly that window. RFC 6817: LEDBAT should yield, so
# uTP's share should be small. Needs root, iproute2, iptables, iperf3 (Debian: apt-get install iperf3), python3-libtorrent.
# ROUNDS rounds run interleaved (Peerway, iperf3 alone, libtorrent; then again), and the medians of each are printed.
# Usage: bench/torrent/utp-tbf.sh [SECONDS=30] [WARMUP=5] [RATE=20mbit] [ROUNDS=1]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${1:-30}"; warm="${2:-5}"; rate="${3:-20mbit}"; rounds="${4:-1}"
pw="$here/peerway"; lt="$here/tests/interop-peers/lt-peer.py"
s=utp-tbf-s; r=utp-tbf-r; d=utp-tbf-d; sip=10.78.1.1; dip=10.78.2.2
[ "$(id -u)" -eq 0 ] || { echo "utp-tbf.sh: needs root" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "utp-tbf.sh: needs iperf3 (apt-get install iperf3)" >&2; exit 1; }
work="$(mktemp -d /tmp/utp-tbf.XXXXXX)"
down() {
  for n in "$s" "$d"; do for p in $(ip netns pids "$n" 2>/dev/null || true); do kill "$p" 2>/dev/null || true; done; done
  sleep 0.5
  for n in "$s" "$r" "$d"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap down EXIT
for n in "$s" "$r" "$d"; do ip netns del "$n" 2>/dev/null || true; done
"$pw" --version >/dev/null
for n in "$s" "$r" "$d"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$s" link add name eth0 type veth peer name to-s netns "$r"
ip -n "$d" link add name eth0 type veth peer name to-d netns "$r"
ip -n "$s" addr add "$sip/24" dev eth0; ip -n "$r" addr add 10.78.1.2/24 dev to-s
ip -n "$d" addr add "$dip/24" dev eth0; ip -n "$r" addr add 10.78.2.1/24 dev to-d
for x in "$s eth0" "$d eth0" "$r to-s" "$r to-d"; do set -- $x; ip -n "$1" link set "$2" up; done
ip -n "$s" route add default via 10.78.1.2; ip -n "$d" route add default via 10.78.2.1
ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$r" tc qdisc add dev to-d root tbf rate "$rate" burst 32kbit latency 400ms
ip netns exec "$r" iptables -A FORWARD -o to-d -p udp
ip netns exec "$r" iptables -A FORWARD -o to-d -p tcp --dport 5201
ip netns exec "$d" iperf3 -s -B "$dip" -D --logfile "$work/iperf-server.log"
mkdir -p "$work/src"
head -c $((256 * 1024 * 1024)) /dev/urandom > "$work/src/payload.bin"
/usr/bin/python3 "$lt" create "$work/src/payload.bin" "$work/payload.torrent" --v1-only >/dev/null
# Bytes each counter saw (UDP, then TCP to 5201).
counters() { ip netns exec "$r" iptables -L FORWARD -v -x -n | awk '$3 == "udp" || $3 == "17" {u=$2} $3 == "tcp" || $3 == "6" {t=$2} END {print u+0, t+0}'; }
shares=(); lshares=()
measure() { # $1: label; the download is running
  sleep "$warm"
  ip netns exec "$r" iptables -Z FORWARD
  ip netns exec "$s" iperf3 -c "$dip" -B "$sip" -t "$secs" >"$work/iperf-$1.log" 2>&1
  read -r udp tcp < <(counters)
  share="$(echo "scale=1; 100 * $udp / ($udp + $tcp)" | bc)"
  echo "$1: uTP $(echo "scale=2; $udp * 8 / $secs / 1000000" | bc) Mbit/s, iperf3 TCP $(echo "scale=2; $tcp * 8 / $secs / 1000000" | bc) Mbit/s, uTP share $(echo "scale=1; 100 * $udp / ($udp + $tcp)" | bc) % ($rate, ${secs} s; load $(uptime | sed 's/.*load average: //'))"
}
# The seeds: Peerway (uTP only) and libtorrent (uTP only).
ip netns exec "$s" "$pw" share "$work/payload.torrent" --content "$work/src/payload.bin" --bind "$sip" --port 6881 --encryption off --transport utp >/dev/null 2>"$work/share.err" &
until grep -qs '^seeding' "$work/share.err"; do sleep 0.2; done
ip netns exec "$s" /usr/bin/python3 "$lt" run --listen "$sip:6882" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/src" --timeout 7200 >"$work/seed.log" 2>&1 &
until grep -qs '^finished' "$work/seed.log"; do sleep 0.2; done
for round in $(seq 1 "$rounds"); do
  echo "round $round"
  # Peerway -> Peerway (uTP only), a fresh download each round.
  rm -rf "$work/pw"
  ip netns exec "$d" "$pw" get "$work/payload.torrent" -o "$work/pw" --bind "$dip" --peer "$sip:6881" --transport utp --encryption off --timeout 3600 >/dev/null 2>&1 &
  getpid=$!
  measure "Peerway->Peerway"; shares+=("$share")
  kill "$getpid" 2>/dev/null || true; wait "$getpid" 2>/dev/null || true
  # iperf3 alone, for the link's TCP rate without competition.
  ip netns exec "$r" iptables -Z FORWARD
  ip netns exec "$s" iperf3 -c "$dip" -B "$sip" -t "$secs" >"$work/iperf-alone.log" 2>&1
  read -r _ tcp < <(counters)
  echo "iperf3 alone: TCP $(echo "scale=2; $tcp * 8 / $secs / 1000000" | bc) Mbit/s"
  # libtorrent -> libtorrent (uTP only).
  rm -rf "$work/lt"
  ip netns exec "$d" /usr/bin/python3 "$lt" run --listen "$dip:6883" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/lt" --peer "$sip:6882" --exit-when-complete --timeout 3600 >/dev/null 2>&1 &
  getpid=$!
  measure "libtorrent->libtorrent"; lshares+=("$share")
  kill "$getpid" 2>/dev/null || true; wait "$getpid" 2>/dev/null || true
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median uTP share over $rounds rounds: Peerway $(median "${shares[@]}") % (${shares[*]}), libtorrent $(median "${lshares[@]}") % (${lshares[*]}); load $(uptime | sed 's/.*load average: //')"
