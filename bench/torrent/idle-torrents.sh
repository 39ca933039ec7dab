#!/usr/bin/env bash
# 100 torrents in one TorrentClient, no peers: what holding them costs while idle (issue 14, item 9).
# Usage: bench/torrent/idle-torrents.sh [TORRENTS=100] [SECONDS=60] [ROUNDS=3]
#   Runs `Peerway.Benchmarks idle-torrents` (one TorrentClient on 127.0.0.1 seeding TORRENTS files of 256 KiB from a
#   temp directory, nobody connecting; bench/Peerway.Benchmarks/IdleTorrents.cs) and, as the yardstick, the same
#   program with 0 torrents, in ROUNDS interleaved rounds. Each run reports process CPU % over SECONDS of idling (after
#   every torrent is seeding and a full GC), RSS, managed heap, bytes allocated and gen0 GCs while idle, threads.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
torrents="${1:-100}"
seconds="${2:-60}"
rounds="${3:-3}"
dotnet build "$here/bench/Peerway.Benchmarks" -c Release -v q --nologo >/dev/null
bench="$here/bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks"
echo "load (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for n in 0 "$torrents"; do
    echo "round $round: $("$bench" idle-torrents --torrents "$n" --seconds "$seconds")"
  done
done
echo "load (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
