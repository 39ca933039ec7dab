#!/usr/bin/env bash
# BEP 55 hole punching in network namespaces (issue 15 item 4). Needs root, ip (iproute2) and iptables.
#
#   tests/nat-lab/holepunch.sh run     up, the download, checks, down (also on failure); exit 0 when it passed
#   tests/nat-lab/holepunch.sh down    removes every namespace named utp-hp-* (leftovers of a killed run)
#
# Topology (its own namespaces, all named utp-hp-*, so it runs beside tests/nat-lab/lab.sh):
#   utp-hp-pub   the "internet", a bridge with 203.0.113.1/24; the relay R (`peerway get --only '*small.txt' --seed`)
#   utp-hp-a     leecher A (10.1.0.2) behind router utp-hp-a-r (WAN 203.0.113.11)
#   utp-hp-c     seeder C (10.2.0.2) behind router utp-hp-c-r (WAN 203.0.113.12)
# Each router is a port-restricted cone NAT that does not keep the source port: UDP leaves from WAN:40000 whatever
# the destination (SNAT to one port: endpoint-independent mapping, RFC 4787 §4.1) and new inbound UDP on the WAN is
# dropped (address-and-port-dependent filtering, as a home router; see lab.sh). TCP leaves through MASQUERADE.
#
# A and C know only R (--peer). R's PEX tells each the other's listen endpoint (WAN address, BEP 10 "p" = 6881), which
# no mapping answers to: their direct dials fail. With BEP 55, A (and C) ask R for a rendezvous; R names to each the
# other's uTP mapping (WAN:40000, where their packets reach it from), both dial it at once over uTP, and the NATs let
# the crossing packets in. R fetches only small.txt, so big.bin can reach A from C alone, through the punched path.
# Checks: A exits 0, big.bin's SHA-256 equals the source's, R logged a relayed rendezvous.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix=utp-hp
peerway="$root/peerway"
relay_ip=203.0.113.1
port=6881
timeout_s="${HOLEPUNCH_TIMEOUT:-240}"

die() { echo "holepunch: $*" >&2; exit 1; }
ns() { local n="$1"; shift; ip netns exec "$prefix-$n" "$@"; }

down() {
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null || true); do kill "$pid" 2>/dev/null || true; done
  done
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
}

add_ns() {
  ip netns add "$prefix-$1"
  ns "$1" ip link set lo up
}

# add_lan NAME WAN LAN-PREFIX: host namespace NAME behind router NAME-r on the public bridge.
add_lan() {
  local lan="$1" wan="$2" lanp="$3"
  add_ns "$lan-r"
  add_ns "$lan"
  ip -n "$prefix-pub" link add name "to-$lan" type veth peer name wan netns "$prefix-$lan-r"
  ip -n "$prefix-pub" link set "to-$lan" master hpbr up
  ns "$lan-r" ip addr add "$wan/24" dev wan
  ns "$lan-r" ip link set wan up
  ip -n "$prefix-$lan-r" link add name lan type veth peer name eth0 netns "$prefix-$lan"
  ns "$lan-r" ip addr add "$lanp.1/24" dev lan
  ns "$lan-r" ip link set lan up
  ns "$lan" ip addr add "$lanp.2/24" dev eth0
  ns "$lan" ip link set eth0 up
  ns "$lan" ip route add default via "$lanp.1"
  ns "$lan-r" sysctl -qw net.ipv4.ip_forward=1
  ns "$lan-r" iptables -t nat -A POSTROUTING -o wan -p udp -j SNAT --to-source "$wan:40000"
  ns "$lan-r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  ns "$lan-r" iptables -A INPUT -i wan -p udp -m conntrack --ctstate NEW -j DROP
  ns "$lan-r" iptables -A FORWARD -i wan -p udp -m conntrack --ctstate NEW -j DROP
}

up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and iptables)"
  command -v ip >/dev/null || die "needs ip (apt-get install iproute2)"
  command -v iptables >/dev/null || die "needs iptables (apt-get install iptables)"
  down
  add_ns pub
  ip -n "$prefix-pub" link add name hpbr type bridge
  ip -n "$prefix-pub" link set hpbr up
  ip -n "$prefix-pub" addr add "$relay_ip/24" dev hpbr
  add_lan a 203.0.113.11 10.1.0
  add_lan c 203.0.113.12 10.2.0
}

# Polls (with a deadline) until something in namespace $1 listens on UDP port $2.
wait_udp() {
  local deadline=$((SECONDS + 120))
  until ns "$1" ss -Hlun "sport = :$2" | grep -q .; do
    [ $SECONDS -lt $deadline ] || die "nothing listens on udp $2 in $1"
    sleep 0.1
  done
}

run() {
  work="$(mktemp -d /tmp/utp-hp.XXXXXX)"
  trap 'down; rm -rf "$work"' EXIT
  # Build the CLI once, outside the namespaces.
  "$peerway" --version >/dev/null
  up
  mkdir -p "$work/src/content" "$work/a" "$work/c" "$work/r"
  head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/src/content/big.bin"
  echo "the relay fetches only this file" >"$work/src/content/small.txt"
  "$peerway" create "$work/src/content" -o "$work/t.torrent" --piece-size 262144 >/dev/null
  cp -r "$work/src/content" "$work/c/"
  local started=$SECONDS
  setsid ip netns exec "$prefix-pub" "$peerway" get "$work/t.torrent" -o "$work/r" --only '*small.txt' --seed --port $port -v \
    >"$work/r.out" 2>"$work/r.err" </dev/null &
  wait_udp pub $port
  setsid ip netns exec "$prefix-c" "$peerway" get "$work/t.torrent" -o "$work/c" --seed --port $port --peer "$relay_ip:$port" -v \
    >"$work/c.out" 2>"$work/c.err" </dev/null &
  wait_udp c $port
  local rc=0
  ns a "$peerway" get "$work/t.torrent" -o "$work/a" --only '*big.bin' --port $port --peer "$relay_ip:$port" --timeout "$timeout_s" -v \
    >"$work/a.out" 2>"$work/a.err" </dev/null || rc=$?
  local took=$((SECONDS - started))
  local want got
  want="$(sha256sum <"$work/src/content/big.bin" | cut -d' ' -f1)"
  got="$(sha256sum <"$work/a/content/big.bin" 2>/dev/null | cut -d' ' -f1 || true)"
  local relayed=0 punched=0
  relayed="$(grep -c 'relaying a holepunch' "$work/r.err" || true)"
  punched="$(cat "$work/a.err" "$work/c.err" | grep -c 'holepunch: reached' || true)"
  echo "holepunch: get exit $rc in ${took}s; big.bin sha256 $got (source $want); rendezvous relayed $relayed; punched dials $punched"
  if [ "$rc" != 0 ] || [ "$got" != "$want" ] || [ "$relayed" = 0 ]; then
    for f in a c r; do tail -40 "$work/$f.err" | sed "s/^/[$f stderr] /"; sed "s/^/[$f stdout] /" "$work/$f.out"; done
    exit 1
  fi
  grep '^complete' "$work/a.out" | sed 's/^/[a stdout] /'
}

case "${1:-}" in
  run) run ;;
  down) down ;;
  *) die "usage: holepunch.sh run|down" ;;
esac
