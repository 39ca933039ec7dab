#!/usr/bin/env bash
# Content benchmark (issue 3 §9): CID of a large file — `peerway add` vs ipfs-unixfs-importer 17 (Node), against one
# core's SHA-256 rate (openssl speed, single thread), and peak RSS for 256 MiB / SIZE / 4×SIZE files.
# usage: bench/content/add-throughput.sh [SIZE_MIB=1024] [RUNS=3]
#
# Two fair pairings, same options on both sides (CIDv0 defaults, then CIDv1 raw leaves), same CID required:
#   CID only:    `peerway add --only-hash`           vs ipfs-unixfs-importer with a black-hole blockstore
#   blocks kept: `peerway add --repo R` (FileBlockStore) vs ipfs-unixfs-importer with blockstore-fs (Helia's on-disk
#                blockstore); both write one file per block, atomically (temp file + rename), without fsync.
# `peerway` is the repository's launcher, as a user runs it (dotnet start-up included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
size_mib="${1:-1024}"
runs="${2:-3}"
work="${TMPDIR:-/tmp}/peerway-bench-content"
mkdir -p "$work"
big="$work/random-${size_mib}MiB"
small="$work/random-256MiB"
huge="$work/random-$((4 * size_mib))MiB"
[ -f "$big" ] || head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$big"
[ -f "$small" ] || head -c "$((256 * 1024 * 1024))" "$big" > "$small"
[ -f "$huge" ] || cat "$big" "$big" "$big" "$big" > "$huge"   # only its peak RSS is reported
./peerway --version >/dev/null          # build once, outside the measurement
cat "$big" "$small" > /dev/null        # page cache: measure hashing/encoding, not the disk

# Runs a command RUNS times; prints "best_wall_s best_cpu_s max_rss_kib stdout" (best of RUNS). CPU = user + sys.
measure() {
  local best="" cpu="" rss=0 out=""
  for _ in $(seq "$runs"); do
    rm -rf "$work/repo" "$work/js-repo"
    out=$(/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@")
    read -r e u s r < "$work/time"
    local c; c=$(echo "$u + $s" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$e < $best" | bc -l)" = 1 ]; then best=$e; fi
    if [ -z "$cpu" ] || [ "$(echo "$c < $cpu" | bc -l)" = 1 ]; then cpu=$c; fi
    [ "$r" -gt "$rss" ] && rss=$r
  done
  rm -rf "$work/repo" "$work/js-repo"
  echo "$best $cpu $rss $out"
}

mib_s() { echo "scale=0; $size_mib / $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
pct() { echo "scale=0; 100 * $1 / $sha_mib" | bc -l; }

sha_rate=$(openssl speed -seconds 3 -bytes 262144 -evp sha256 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
sha_mib=$(echo "scale=0; $sha_rate * 1000 / 1048576" | bc -l)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "one core SHA-256 (openssl speed -evp sha256, 256 KiB blocks): $sha_mib MiB/s"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-44s %7s %7s %11s %10s %8s %s\n' "${size_mib} MiB file" "wall s" "CPU s" "MiB/s wall" "MiB/s CPU" "RSS MiB" "CID"
row() { printf '%-44s %7.2f %7.2f %11s %10s %8d %s\n' "$1" "$2" "$3" "$(mib_s "$2")" "$(mib_s "$3")" "$(($4 / 1024))" "$5"; }
for mode in v0 v1; do
  opts=(); [ "$mode" = v1 ] && opts=(--cid-version 1)
  read -r pt pc prss pcid < <(measure ./peerway add "$big" --only-hash "${opts[@]}")
  read -r jt jc jrss jcid < <(measure node tests/interop-peers/unixfs-add.mjs "$big" "${opts[@]}")
  read -r st sc srss scid < <(measure ./peerway add "$big" --repo "$work/repo" "${opts[@]}")
  read -r kt kc krss kcid < <(measure node tests/interop-peers/unixfs-add.mjs "$big" --blockstore "$work/js-repo" "${opts[@]}")
  row "peerway add --only-hash ($mode)" "$pt" "$pc" "$prss" "$pcid"
  row "ipfs-unixfs-importer, black hole ($mode)" "$jt" "$jc" "$jrss" "$jcid"
  row "peerway add, FileBlockStore ($mode)" "$st" "$sc" "$srss" "$scid"
  row "ipfs-unixfs-importer, blockstore-fs ($mode)" "$kt" "$kc" "$krss" "$kcid"
  [ "$pcid" = "$jcid" ] && [ "$scid" = "$jcid" ] && [ "$kcid" = "$jcid" ] || { echo "CID MISMATCH ($mode)" >&2; exit 1; }
  echo "  CID only:    peerway/js wall $(ratio "$jt" "$pt")x, CPU $(ratio "$jc" "$pc")x;" \
       "peerway vs one-core SHA-256: wall $(pct "$(mib_s "$pt")")%, CPU $(pct "$(mib_s "$pc")")%"
  echo "  blocks kept: peerway/js wall $(ratio "$kt" "$st")x, CPU $(ratio "$kc" "$sc")x"
done
echo
echo "peak RSS of peerway add --only-hash (one run each):"
for f in "$small" "$big" "$huge"; do
  /usr/bin/time -f '%M' -o "$work/time" ./peerway add "$f" --only-hash >/dev/null
  echo "  $(basename "$f"): $(($(cat "$work/time") / 1024)) MiB"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
