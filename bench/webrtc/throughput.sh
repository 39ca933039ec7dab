#!/usr/bin/env bash
# WebRTC data channels on loopback, one reliable ordered channel, in interleaved rounds (issue 13 item 10):
#   Chromium -> Chromium (two RTCPeerConnections in one page), Peerway <-> Chromium, Peerway -> Peerway (one process),
#   werift -> werift (one process), Peerway <-> werift: bulk MB/s (64 KiB messages), 1 KiB messages/s, offer -> open;
#   then memory per idle Peerway connection; then SCTP goodput over the virtual network at 0 % and 1 % loss.
# Usage: bench/webrtc/throughput.sh [ROUNDS=3] [MIB=16] [SMALL=3000]
# Needs /usr/bin/chromium (Debian's; Playwright drives it, nothing downloaded) and node with werift resolvable from
# tests/interop-peers (npm install there; WERIFT_BENCH=path/to/werift-bench.mjs for a copy next to another install).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-3}"; mib="${2:-16}"; small="${3:-3000}"
werift="${WERIFT_BENCH:-$here/tests/interop-peers/werift-bench.mjs}"
for p in node /usr/bin/chromium dotnet; do
  command -v "$p" >/dev/null || { echo "throughput.sh: $p is not installed" >&2; exit 1; }
done
dotnet build "$here/bench/Peerway.Benchmarks" -c Release -v q --nologo >&2
bench=("dotnet" "$here/bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll")
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"${bench[@]}" rtc-bench --rounds "$rounds" --mib "$mib" --small "$small" --werift "$werift"
"${bench[@]}" sctp-loss --mib 32 --rounds "$rounds"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
