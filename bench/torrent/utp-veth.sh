#!/usr/bin/env bash
# uTP (BEP 29) over a veth pair between two network namespaces (issue 15 item 7): bench/torrent/utp-client.sh with
# the seeds (`peerway share`, libtorrent 2.0.8 --utp-only) in namespace utpveth-s (10.77.0.1) and the downloaders
# in utpveth-d (10.77.0.2), so every packet crosses a real link (veth: MTU 1500, no loopback shortcuts).
# Needs root and iproute2; the namespaces are deleted on exit, also on failure.
# Usage: bench/torrent/utp-veth.sh [SIZE_MIB=1024] [ROUNDS=3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "utp-veth.sh: needs root (network namespaces)" >&2; exit 1; }
s=utpveth-s; d=utpveth-d
down() { ip netns del "$s" 2>/dev/null || true; ip netns del "$d" 2>/dev/null || true; }
trap down EXIT
down
"$here/../../peerway" --version >/dev/null
ip netns add "$s"; ip netns add "$d"
ip -n "$s" link set lo up; ip -n "$d" link set lo up
ip -n "$s" link add name veth-s type veth peer name veth-d netns "$d"
ip -n "$s" addr add 10.77.0.1/24 dev veth-s; ip -n "$d" addr add 10.77.0.2/24 dev veth-d
ip -n "$s" link set veth-s up; ip -n "$d" link set veth-d up
SEED_NS="$s" GET_NS="$d" SEED_IP=10.77.0.1 GET_IP=10.77.0.2 "$here/utp-client.sh" "${1:-1024}" "${2:-3}"
