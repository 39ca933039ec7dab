#!/usr/bin/env bash
# The launcher's first run on a fresh clone, its start-up once built, and a rebuild after a source change, for each
# git revision given (interleaved rounds: rev1 rev2 … rev1 rev2 …). Prints one line per run and the medians.
#   bench/launcher/cold-start.sh ROUNDS REV...        e.g. bench/launcher/cold-start.sh 3 main HEAD
# REPO=/path/to/clone picks where the revisions are read from (default: this repository).
# CPU is the whole process tree's (MSBuild nodes, the compiler, crossgen2), read from a cpuacct cgroup of its own when
# the machine lets root make one, else from `time` (which misses build nodes that outlive their parent). MSBuild node
# reuse and the compiler server are off so that no work is done outside the tree. Wall times on a shared machine are
# noisy; CPU times much less so.
set -euo pipefail
rounds=${1:?rounds}; shift
[ $# -gt 0 ] || { echo "usage: $0 ROUNDS REV..." >&2; exit 2; }
repo=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
work=$(mktemp -d /tmp/peerway-cold-start.XXXXXX)
cg=/sys/fs/cgroup/cpuacct/peerway-cold-start.$$
mkdir "$cg" 2>/dev/null || cg=""
cleanup() { rm -rf "$work"; [ -z "$cg" ] || rmdir "$cg" 2>/dev/null || true; }
trap cleanup EXIT
export MSBUILDDISABLENODEREUSE=1 UseSharedCompilation=false DOTNET_CLI_USE_MSBUILD_SERVER=0 DOTNET_CLI_TELEMETRY_OPTOUT=1

# t CMD...: runs CMD (stdout and stderr discarded), prints "WALL CPU" in seconds.
t() {
  if [ -n "$cg" ]; then
    local before after start end
    before=$(cat "$cg/cpuacct.usage"); start=$(date +%s.%N)
    ( echo "$BASHPID" > "$cg/cgroup.procs"; exec "$@" ) >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s.%N)
    while [ -n "$(cat "$cg/cgroup.procs")" ]; do sleep 0.2; done   # build nodes still shutting down
    after=$(cat "$cg/cpuacct.usage")
    awk -v s="$start" -v e="$end" -v b="$before" -v a="$after" 'BEGIN { printf "%.2f %.2f", e - s, (a - b) / 1e9 }'
  else
    /usr/bin/time -o "$work/t" -f "%e %U %S" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    awk '{ printf "%.2f %.2f", $1, $2 + $3 }' "$work/t"
  fi
}

results="$work/results"
for round in $(seq "$rounds"); do
  for rev in "$@"; do
    dir="$work/clone"; rm -rf "$dir"
    git clone -q "$repo" "$dir"; git -C "$dir" checkout -q "$(git -C "$repo" rev-parse "$rev")"
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r bw bc <<<"$(cd "$dir" && t ./peerway --version)"
    read -r sw sc <<<"$(for _ in 1 2 3 4 5 6 7; do (cd "$dir" && t ./peerway --version); echo; done | sort -n -k2 | sed -n 4p)"
    touch "$dir"/src/Peerway.Dht/*.cs
    read -r rw rc <<<"$(cd "$dir" && t ./peerway --version)"
    echo "$rev round $round load $load: cold build ${bw} s wall ${bc} s cpu; start-up (median of 7) ${sw} s wall ${sc} s cpu; rebuild after touching src/Peerway.Dht ${rw} s wall ${rc} s cpu; $(du -sm "$dir/.build/cli" | cut -f1) MiB" | tee -a "$results"
  done
done
echo "medians (wall / cpu, seconds):"
for rev in "$@"; do
  grep "^$rev round" "$results" | awk -v rev="$rev" '
    { bw[NR]=$8; bc[NR]=$11; sw[NR]=$18; sc[NR]=$21; rw[NR]=$28; rc[NR]=$31 }
    function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((n + 1) / 2)] }
    END { n = NR; printf "%s: cold build %s / %s, start-up %s / %s, rebuild %s / %s\n", rev, med(bw, n), med(bc, n), med(sw, n), med(sc, n), med(rw, n), med(rc, n) }'
done
