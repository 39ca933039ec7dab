#!/usr/bin/env bash
# libp2p transport benchmark (issue 19 §8): Peerway (`Peerway.Benchmarks libp2p-bench`) against js-libp2p 3, Helia 7's
# stack (tests/interop-peers/libp2p-bench.mjs), two nodes in one process over loopback TCP for each, in interleaved
# rounds; medians of wall time and of process CPU (both nodes), and ratios js / Peerway.
#   handshakes N         N dials one after another, each a new connection (multistream-select, Noise XX with the
#                        libp2p payload, Yamux; identify as for every connection): handshakes/s and CPU ms per handshake
#   stream MIB STREAMS   MIB MiB over 1 and over STREAMS Yamux streams of one connection: MB/s and CPU s per GiB
# usage: bench/content/libp2p.sh [ROUNDS=3] [HANDSHAKES=200] [MIB=256] [STREAMS=16]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
rounds="${1:-3}" n="${2:-200}" mib="${3:-256}" streams="${4:-16}"
work="${TMPDIR:-/tmp}/peerway-bench-libp2p"
rm -rf "$work"; mkdir -p "$work"
dotnet build "$root/bench/Peerway.Benchmarks" -c Release -v q --nologo >&2
pw=(dotnet "$root/bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll" libp2p-bench)
js=(node "$root/tests/interop-peers/libp2p-bench.mjs")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {   # NAME COMMAND... : one JSON line appended to $work/NAME (a failure is recorded as such)
  local name=$1; shift
  if ! timeout 1800 "$@" >> "$work/$name" 2> "$work/$name.err"; then
    echo "{\"failed\":\"$(tail -n 1 "$work/$name.err" | tr -d '"\\' | cut -c1-120)\"}" >> "$work/$name"
  fi
}
for r in $(seq "$rounds"); do
  run pw-hs "${pw[@]}" handshakes "$n";       run js-hs "${js[@]}" handshakes "$n"
  run pw-s1 "${pw[@]}" stream "$mib" 1;       run js-s1 "${js[@]}" stream "$mib" 1
  run pw-sn "${pw[@]}" stream "$mib" "$streams"; run js-sn "${js[@]}" stream "$mib" "$streams"
  echo "round $r done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
python3 - "$work" "$n" "$mib" "$streams" <<'PY'
import json, statistics, sys
work, n, mib, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(name):
    rows = [json.loads(l) for l in open(f"{work}/{name}") if l.strip()]
    ok = [r for r in rows if "failed" not in r]
    failed = [r["failed"] for r in rows if "failed" in r]
    if not ok: return None, failed
    return (statistics.median(r["seconds"] for r in ok), statistics.median(r["cpu"] for r in ok), len(ok)), failed
print(f"{'case':<28} {'impl':<10} {'runs':>4} {'wall':>10} {'rate':>14} {'cpu':>14}")
for key, label in (("hs", f"handshakes x{n}"), ("s1", f"{mib} MiB, 1 stream"), ("sn", f"{mib} MiB, {streams} streams")):
    figures = {}
    for impl in ("pw", "js"):
        m, failed = load(f"{impl}-{key}")
        name = "peerway" if impl == "pw" else "js-libp2p"
        if m is None:
            print(f"{label:<28} {name:<10} {0:>4} failed: {failed[:1]}")
            continue
        wall, cpu, runs = m
        figures[impl] = (wall, cpu)
        if key == "hs":
            rate, per = f"{n / wall:.1f}/s", f"{1000 * cpu / n:.2f} ms/hs"
        else:
            rate, per = f"{mib * 1.048576 / wall:.1f} MB/s", f"{cpu * 1024 / mib:.2f} s/GiB"
        print(f"{label:<28} {name:<10} {runs:>4} {wall:>9.3f}s {rate:>14} {per:>14}" + (f"  ({len(failed)} failed)" if failed else ""))
    if len(figures) == 2:
        print(f"{'':<28} js/peerway: wall {figures['js'][0] / figures['pw'][0]:.2f}x, cpu {figures['js'][1] / figures['pw'][1]:.2f}x")
PY
