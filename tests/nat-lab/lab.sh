#!/usr/bin/env bash
# NAT lab in network namespaces (issue 5, item 7). Needs root, ip (iproute2) and iptables.
#
#   tests/nat-lab/lab.sh up            build the topology and start the servers (turn-server, stun-server, signal)
#   tests/nat-lab/lab.sh down          stop the servers and remove every namespace named natlab-*
#   tests/nat-lab/lab.sh run           up, every case and probe below with a timing table, down (also on failure)
#   tests/nat-lab/lab.sh connect A B   one `peerway connect` pair between LANs A and B (lab must be up); after
#                                      A B, optional TAG, --no-turn and any `peerway connect` options (--datachannel)
#   tests/nat-lab/lab.sh probe LAN     `peerway nat probe` from LAN against the RFC 5780 server
#   tests/nat-lab/lab.sh loss LAN PCT  drop PCT % of the UDP datagrams each way on LAN's router WAN (0: none)
#   tests/nat-lab/lab.sh exec NS CMD…  run a command in namespace natlab-NS (e.g. `exec cone1 ip addr`)
#
# Topology: namespace natlab-pub is the "internet" (bridge with 203.0.113.0/24, TEST-NET-3). It holds
#   203.0.113.1  peerway turn-server (answers STUN too) :3478, peerway signal :8089
#   203.0.113.2  peerway stun-server --alt 203.0.113.3 (RFC 5780 behaviour discovery, ports 3478/3479)
# Each LAN is a host namespace natlab-LAN (eth0, 10.N.0.2 or 192.168.N.2) behind a router namespace natlab-LAN-r
# (lan 10.N.0.1, wan 203.0.113.X) doing iptables NAT:
#   cone1, cone2  MASQUERADE (Linux keeps the source port and reuses it for every destination: endpoint-independent
#                 mapping) + "home router" filter: NEW inbound UDP on the WAN dropped in INPUT and FORWARD, so only
#                 replies to what the host sent pass (address-and-port-dependent filtering; RFC 4787 "port-restricted")
#   sym1, sym2    MASQUERADE --random-fully (a random port per 5-tuple: address-and-port-dependent mapping,
#                 "symmetric") + the same filter
#   full          MASQUERADE out + static DNAT of all inbound UDP to the host (endpoint-independent filtering:
#                 "full cone"), no filter
# cone2 and sym2 also share a direct "office" link (172.16.0.0/24) beside their NATed uplinks.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix=natlab
state="${NATLAB_STATE:-/tmp/$prefix-state}"
peerway="$root/peerway"

pub_ns="$prefix-pub"
server_ip=203.0.113.1
probe_ip=203.0.113.2
probe_alt=203.0.113.3
signal_url="http://$server_ip:8089/"
turn_user=lab
turn_pass=lab-secret

# LAN name -> "wan-ip lan-prefix nat-kind"
declare -A lans=(
  [cone1]="203.0.113.11 10.1.0 cone"
  [cone2]="203.0.113.12 192.168.2 cone"
  [sym1]="203.0.113.21 10.3.0 symmetric"
  [sym2]="203.0.113.22 192.168.4 symmetric"
  [full]="203.0.113.31 10.5.0 full"
)
lan_order=(cone1 cone2 sym1 sym2 full)

die() { echo "lab: $*" >&2; exit 1; }
ns() { local n="$1"; shift; ip netns exec "$prefix-$n" "$@"; }

require() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and iptables)"
  command -v ip >/dev/null || die "needs ip (apt-get install iproute2)"
  command -v iptables >/dev/null || die "needs iptables (apt-get install iptables)"
}

# Kills the servers this lab started (by the ids recorded at start) and every process still inside a natlab
# namespace, then deletes the namespaces (which deletes their veths, bridge and iptables rules with them).
down() {
  if [ -d "$state" ]; then
    for f in "$state"/*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
    done
  fi
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null || true); do kill "$pid" 2>/dev/null || true; done
  done
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$state"
}

add_ns() {
  ip netns add "$prefix-$1"
  ns "$1" ip link set lo up
}

# One LAN: host namespace behind a router namespace whose WAN port is on the public bridge.
add_lan() {
  local lan="$1" wan lanp kind
  read -r wan lanp kind <<<"${lans[$lan]}"
  add_ns "$lan-r"
  add_ns "$lan"
  # WAN: a veth from the public bridge to the router (created directly inside the namespaces: no name clash in /).
  ip -n "$pub_ns" link add "$prefix-$lan" type veth peer name wan netns "$prefix-$lan-r"
  ip -n "$pub_ns" link set "$prefix-$lan" master "$prefix-br" up
  ns "$lan-r" ip addr add "$wan/24" dev wan
  ns "$lan-r" ip link set wan up
  # LAN: a veth from the router to the host.
  ip -n "$prefix-$lan-r" link add lan type veth peer name eth0 netns "$prefix-$lan"
  ns "$lan-r" ip addr add "$lanp.1/24" dev lan
  ns "$lan-r" ip link set lan up
  ns "$lan" ip addr add "$lanp.2/24" dev eth0
  ns "$lan" ip link set eth0 up
  ns "$lan" ip route add default via "$lanp.1"
  ns "$lan-r" sysctl -qw net.ipv4.ip_forward=1
  case "$kind" in
    cone)
      ns "$lan-r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
      home_filter "$lan"
      ;;
    symmetric)
      ns "$lan-r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
      home_filter "$lan"
      ;;
    full)
      ns "$lan-r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
      ns "$lan-r" iptables -t nat -A PREROUTING -i wan -p udp -j DNAT --to-destination "$lanp.2"
      ;;
    *) die "unknown NAT kind $kind" ;;
  esac
}

# A home router: unsolicited inbound UDP is dropped on the WAN. Without this, plain MASQUERADE lets the peer's first
# (early) check reach the router's own INPUT, where it creates a conntrack entry that clashes with the host's later
# outbound mapping to the same peer, so the NAT picks another port and simultaneous punching fails.
home_filter() {
  ns "$1-r" iptables -A INPUT -i wan -p udp -m conntrack --ctstate NEW -j DROP
  ns "$1-r" iptables -A FORWARD -i wan -p udp -m conntrack --ctstate NEW -j DROP
}

# Starts a long-running peerway command in a namespace (setsid: its own process group), recording its id.
start_server() {
  local name="$1" where="$2"; shift 2
  setsid ip netns exec "$prefix-$where" "$peerway" "$@" >"$state/$name.out" 2>"$state/$name.err" </dev/null &
  echo $! >"$state/$name.pid"
}

# Polls (with a deadline) until a server printed its ready line.
wait_ready() {
  local name="$1" pattern="$2" deadline=$((SECONDS + 120))
  until grep -q "$pattern" "$state/$name.out" 2>/dev/null; do
    if ! kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; then
      die "$name exited: $(cat "$state/$name.err" "$state/$name.out" 2>/dev/null)"
    fi
    [ $SECONDS -lt $deadline ] || die "$name not ready after 120 s: $(cat "$state/$name.err" 2>/dev/null)"
    sleep 0.1
  done
}

up() {
  require
  down
  mkdir -p "$state"
  # Build the CLI once, outside the namespaces.
  "$peerway" --version >/dev/null
  add_ns pub
  ip -n "$pub_ns" link add "$prefix-br" type bridge
  ip -n "$pub_ns" link set "$prefix-br" up
  for a in "$server_ip" "$probe_ip" "$probe_alt"; do ip -n "$pub_ns" addr add "$a/24" dev "$prefix-br"; done
  for lan in "${lan_order[@]}"; do add_lan "$lan"; done
  # A second network that cone2 and sym2 share besides their NATed uplinks (an office LAN, a VPN): ICE should find
  # the host pair over it, with a host candidate per interface (RFC 8445 §5.1.1.1).
  ip -n "$prefix-cone2" link add office type veth peer name office netns "$prefix-sym2"
  ns cone2 ip addr add 172.16.0.1/24 dev office
  ns sym2 ip addr add 172.16.0.2/24 dev office
  ns cone2 ip link set office up
  ns sym2 ip link set office up
  # The routers' WAN addresses are TEST-NET-3, which the TURN server refuses as peers by default (no open relay).
  # A quota of 2 allocations for the lab's user: each case's two peers must delete theirs on exit (RFC 8656 §7.3,
  # Refresh with LIFETIME 0) for the next case to get a relay.
  start_server turn pub turn-server --realm natlab --user "$turn_user:$turn_pass" --bind "$server_ip" --port 3478 \
    --allow-peer 203.0.113.0/24 --user-quota 2
  start_server stun pub stun-server --bind "$probe_ip" --alt "$probe_alt" --port 3478 --threads 1
  start_server signal pub signal --bind "$server_ip" --port 8089
  wait_ready turn "^turn-server: udp"
  wait_ready stun "^stun-server: udp"
  wait_ready signal "^signal: listening"
  echo "lab: up (${lan_order[*]}); state in $state"
}

# connect A B [TAG [--no-turn] [peerway connect options…]]: two `peerway connect` processes, one per LAN, started
# together (ids A-TAG and B-TAG); prints their stdout lines as "[LAN exit CODE] line" (and stderr when one failed).
connect() {
  local a="$1" b="$2" tag="${3:-$RANDOM}" rc_a=0 rc_b=0
  shift 2; shift || true
  local args=(connect --signal "$signal_url" --stun "$server_ip:3478" --timeout 60)
  if [ "${1:-}" = --no-turn ]; then shift; else args+=(--turn "$server_ip:3478" --user "$turn_user" --pass "$turn_pass"); fi
  args+=("$@")
  ns "$a" "$peerway" "${args[@]}" --id "$a-$tag" --peer "$b-$tag" >"$state/c-$tag-$a.out" 2>"$state/c-$tag-$a.err" &
  local pa=$!
  ns "$b" "$peerway" "${args[@]}" --id "$b-$tag" --peer "$a-$tag" >"$state/c-$tag-$b.out" 2>"$state/c-$tag-$b.err" &
  local pb=$!
  wait $pa || rc_a=$?
  wait $pb || rc_b=$?
  for x in "$a:$rc_a" "$b:$rc_b"; do
    local n="${x%%:*}"
    sed "s/^/[$n exit ${x#*:}] /" "$state/c-$tag-$n.out"
    [ "${x#*:}" = 0 ] || tail -20 "$state/c-$tag-$n.err" | sed "s/^/[$n stderr] /"
  done
  [ $rc_a = 0 ] && [ $rc_b = 0 ]
}

# Random loss without netem (absent here): iptables' statistic match drops PCT % of the UDP datagrams entering and
# leaving the router's WAN port, in the mangle table (before NAT and filtering decide anything).
loss() {
  local lan="$1" pct="$2"
  [[ "$pct" =~ ^[0-9]+$ ]] && [ "$pct" -le 100 ] || die "loss: PCT must be 0..100"
  ns "$lan-r" iptables -t mangle -F
  [ "$pct" = 0 ] && return
  local p
  p="$(awk "BEGIN { printf \"%.2f\", $pct / 100 }")"
  ns "$lan-r" iptables -t mangle -A PREROUTING -i wan -p udp -m statistic --mode random --probability "$p" -j DROP
  ns "$lan-r" iptables -t mangle -A POSTROUTING -o wan -p udp -m statistic --mode random --probability "$p" -j DROP
}

probe() {
  ns "$1" "$peerway" nat probe "$probe_ip:3478" --rto 100
}

# Checks one connect case: exit codes, the selected pair type on both sides (none: both must fail), the message both
# ways, and with --hold that the path is still Connected (consent kept fresh) at the end.
check_case() {
  local a="$1" b="$2" want="$3" out ok=1 label="$1 ↔ $2${LABEL:-}"
  shift 3
  [ $# -eq 0 ] || label="$label ($*)"
  out="$(connect "$a" "$b" "$RANDOM" "$@")" || true
  echo "$out" | sed 's/^/  /'
  local n
  for n in "$a" "$b"; do
    if [ "$want" = none ]; then
      grep -q "^\[$n stderr\] peerway: connect: ICE failed" <<<"$out" || ok=0
      continue
    fi
    grep -q "^\[$n exit 0\] connected: $want " <<<"$out" || ok=0
    grep -q "^\[$n exit 0\] received: hello from $([ "$n" = "$a" ] && echo "$b" || echo "$a")-" <<<"$out" || ok=0
    if [[ " $* " == *" --hold "* ]]; then grep -q "^\[$n exit 0\] held: .* state Connected," <<<"$out" || ok=0; fi
  done
  local ta tb
  ta="$(grep -o "^\[$a exit 0\] connected: .* in [0-9]* ms" <<<"$out" | grep -o '[0-9]* ms$' || echo '–')"
  tb="$(grep -o "^\[$b exit 0\] connected: .* in [0-9]* ms" <<<"$out" | grep -o '[0-9]* ms$' || echo '–')"
  if [ $ok = 1 ]; then
    results+=("| $label | $want | $want | $ta / $tb |")
  else
    results+=("| $label | $want | FAILED | $ta / $tb |")
    failed=1
  fi
}

# A WebRTC data channel (DTLS + SCTP + DCEP) over the pair ICE selects: `peerway connect --datachannel` on both sides,
# each sending 1 MiB (64 × 16 KiB) on its own channel and checking every echo from the other.
check_datachannel() {
  local a="$1" b="$2" want="$3" out ok=1 n
  out="$(connect "$a" "$b" "$RANDOM" --datachannel --count 64 --size 16384)" || true
  echo "$out" | sed 's/^/  /'
  for n in "$a" "$b"; do
    grep -q "^\[$n exit 0\] connected: $want " <<<"$out" || ok=0
    grep -q "^\[$n exit 0\] echoed 64 of 64 messages (1048576 bytes) in " <<<"$out" || ok=0
  done
  if [ $ok = 1 ]; then
    results+=("| $a ↔ $b data channel, 1 MiB each way | $want | $want, echoed | |")
  else
    results+=("| $a ↔ $b data channel, 1 MiB each way | $want | FAILED | |")
    failed=1
  fi
}

check_probe() {
  local lan="$1" mapping="$2" filtering="$3" out
  out="$(probe "$lan" 2>&1)" || true
  echo "$out" | sed "s/^/  [$lan] /"
  if grep -q "^mapping: *$mapping\$" <<<"$out" && grep -q "^filtering: *$filtering\$" <<<"$out"; then
    results+=("| probe $lan | $mapping / $filtering | ok | |")
  else
    results+=("| probe $lan | $mapping / $filtering | FAILED | |")
    failed=1
  fi
}

run() {
  trap down EXIT
  up
  failed=0
  results=()
  echo "lab: probes"
  check_probe cone1 endpoint-independent address-and-port-dependent
  check_probe sym1 address-and-port-dependent address-and-port-dependent
  check_probe full endpoint-independent endpoint-independent
  echo "lab: cases"
  check_case cone1 cone2 srflx --hold 15
  check_case cone1 sym1 relay
  check_case sym1 sym2 relay --hold 15
  check_case full sym2 srflx
  check_case cone2 sym2 host
  check_case sym1 sym2 none --no-turn
  check_datachannel sym1 sym2 relay
  loss sym1 10
  loss sym2 10
  LABEL=", 10 % loss each way on both routers" check_case sym1 sym2 relay
  loss sym1 0
  loss sym2 0
  echo
  echo "| case | expected | result | time to connect (each side, from its agent's start) |"
  echo "|---|---|---|---|"
  printf '%s\n' "${results[@]}"
  return $failed
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) up ;;
  down) down ;;
  run) run ;;
  connect) [ $# -ge 2 ] || die "usage: lab.sh connect LAN_A LAN_B"; connect "$@" ;;
  probe) [ $# -eq 1 ] || die "usage: lab.sh probe LAN"; probe "$1" ;;
  loss) [ $# -eq 2 ] || die "usage: lab.sh loss LAN PCT"; loss "$1" "$2" ;;
  exec) [ $# -ge 2 ] || die "usage: lab.sh exec NS CMD..."; ns "$@" ;;
  *) die "usage: lab.sh up|down|run|connect A B|probe LAN|loss LAN PCT|exec NS CMD..." ;;
esac
