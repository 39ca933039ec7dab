#!/usr/bin/env bash
# libp2p transport benchmark (issue 19 §8): Peerway (`Peerway.Benchmarks libp2p-bench`) against js-libp2p 3, Helia 7's
# stack (tests/interop-peers/libp2p-bench.mjs), two nodes in one process over loopback TCP for each, in interleaved
# rounds (the order of the two alternates from round to round); medians of wall time and of process CPU (both nodes),
# and ratios js / Peerway. Every case of a round runs before the next round starts.
#   handshakes N         N dials one after another, each a new connection (multistream-select, Noise XX with the
#                        libp2p payload, Yamux; identify as for every connection): handshakes per wall second and per
#                        CPU second (both sides' CPU, closes included)
#   stream MIB S         MIB MiB over S Yamux streams of one connection, for each S in STREAMS: MB/s and CPU s per GiB
# A case that fails is reported as such with its error (js-libp2p resets streams at 12-16 streams in this harness).
# With BENCH_LOCK=FILE the run holds flock(FILE) from the build to the last round, so no other benchmark that takes
# the same lock overlaps it (the shared machine's convention: BENCH_LOCK=/work/bench.lock).
# usage: [BENCH_LOCK=FILE] bench/content/libp2p.sh [ROUNDS=3] [HANDSHAKES=200] [MIB=256] [STREAMS="1 8 16"]
set -euo pipefail
if [ -n "${BENCH_LOCK:-}" ] && [ -z "${PEERWAY_BENCH_LOCKED:-}" ]; then
  echo "waiting for $BENCH_LOCK…" >&2
  PEERWAY_BENCH_LOCKED=1 exec flock "$BENCH_LOCK" "$0" "$@"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
rounds="${1:-3}" n="${2:-200}" mib="${3:-256}" streams="${4:-1 8 16}"
work="${TMPDIR:-/tmp}/peerway-bench-libp2p"
rm -rf "$work"; mkdir -p "$work"
dotnet build "$root/bench/Peerway.Benchmarks" -c Release -v q --nologo >&2
pw=(dotnet "$root/bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks.dll" libp2p-bench)
js=(node "$root/tests/interop-peers/libp2p-bench.mjs")
echo "$(date -u '+%F %T') UTC; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {   # NAME COMMAND... : one JSON line appended to $work/NAME (a failure is recorded as such)
  local name=$1; shift
  if ! timeout 1800 "$@" >> "$work/$name" 2> "$work/$name.err"; then
    echo "{\"failed\":\"$(tail -n 1 "$work/$name.err" | tr -d '"\\' | cut -c1-120)\"}" >> "$work/$name"
  fi
}
pair() {   # KEY ARGS... : one Peerway and one js-libp2p run of a case, in the round's order
  local key=$1; shift
  if [ $((r % 2)) -eq 1 ]; then run "pw-$key" "${pw[@]}" "$@"; run "js-$key" "${js[@]}" "$@"
  else run "js-$key" "${js[@]}" "$@"; run "pw-$key" "${pw[@]}" "$@"; fi
}
for r in $(seq "$rounds"); do
  pair hs handshakes "$n"
  for s in $streams; do pair "s$s" stream "$mib" "$s"; done
  echo "round $r done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
python3 - "$work" "$n" "$mib" "$streams" <<'PY'
import json, statistics, sys
work, n, mib, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(x) for x in sys.argv[4].split()]
def load(name):
    rows = [json.loads(l) for l in open(f"{work}/{name}") if l.strip()]
    ok = [r for r in rows if "failed" not in r]
    failed = [r["failed"] for r in rows if "failed" in r]
    if not ok: return None, failed
    return (statistics.median(r["seconds"] for r in ok), statistics.median(r["cpu"] for r in ok), len(ok)), failed
print(f"{'case':<28} {'impl':<10} {'runs':>4} {'wall':>10} {'rate':>14} {'per cpu':>16}")
cases = [("hs", f"handshakes x{n}")] + [(f"s{s}", f"{mib} MiB, {s} stream{'s' if s > 1 else ''}") for s in streams]
for key, label in cases:
    figures = {}
    for impl in ("pw", "js"):
        m, failed = load(f"{impl}-{key}")
        name = "peerway" if impl == "pw" else "js-libp2p"
        if m is None:
            print(f"{label:<28} {name:<10} {0:>4} failed in every round: {failed[:1]}")
            continue
        wall, cpu, runs = m
        if key == "hs":
            rate, per = n / wall, n / cpu
            shown = (f"{rate:.1f}/s", f"{per:.1f} hs/cpu-s")
        else:
            rate, per = mib * 1.048576 / wall, cpu * 1024 / mib
            shown = (f"{rate:.1f} MB/s", f"{per:.2f} cpu-s/GiB")
        figures[impl] = (rate, per)
        print(f"{label:<28} {name:<10} {runs:>4} {wall:>9.3f}s {shown[0]:>14} {shown[1]:>16}" + (f"  ({len(failed)} failed: {failed[0]})" if failed else ""))
    if len(figures) == 2:
        (pr, pc), (jr, jc) = figures["pw"], figures["js"]
        cpu_ratio = pc / jc if key == "hs" else jc / pc
        print(f"{'':<28} peerway / js-libp2p: {pr / jr:.2f}x the rate, {cpu_ratio:.2f}x the work per CPU second")
PY
