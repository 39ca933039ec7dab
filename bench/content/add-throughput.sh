#!/usr/bin/env bash
# Content benchmark (issue 3 §9): CID of a large file — `peerway add` vs ipfs-unixfs-importer (Node), against one
# core's SHA-256 rate (openssl speed, single thread), and peak RSS for 64 MiB vs SIZE.
# usage: bench/content/add-throughput.sh [SIZE_MIB=1024] [RUNS=3]
# Both importers run with the same options (CIDv0 defaults, then CIDv1 raw leaves) and must print the same CID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
size_mib="${1:-1024}"
runs="${2:-3}"
work="${TMPDIR:-/tmp}/peerway-bench-content"
mkdir -p "$work"
big="$work/random-${size_mib}MiB"
small="$work/random-64MiB"
[ -f "$big" ] || head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$big"
[ -f "$small" ] || head -c "$((64 * 1024 * 1024))" /dev/urandom > "$small"
./peerway --version >/dev/null          # build once, outside the measurement
cat "$big" "$small" > /dev/null        # page cache: measure hashing/encoding, not the disk

# Runs a command RUNS times; prints "best_wall_s best_cpu_s max_rss_kib stdout" (best of RUNS). CPU = user + sys:
# on a shared machine (load well above the core count) wall time mostly measures the neighbours, CPU time does not.
measure() {
  local best="" cpu="" rss=0 out=""
  for _ in $(seq "$runs"); do
    out=$(/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@")
    read -r e u s r < "$work/time"
    local c; c=$(echo "$u + $s" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$e < $best" | bc -l)" = 1 ]; then best=$e; fi
    if [ -z "$cpu" ] || [ "$(echo "$c < $cpu" | bc -l)" = 1 ]; then cpu=$c; fi
    [ "$r" -gt "$rss" ] && rss=$r
  done
  echo "$best $cpu $rss $out"
}

mib_s() { echo "scale=1; $size_mib / $1" | bc -l; }

sha_rate=$(openssl speed -seconds 3 -bytes 262144 -evp sha256 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
sha_mib=$(echo "scale=1; $sha_rate * 1000 / 1048576" | bc -l)
echo "one core SHA-256 (openssl speed -evp sha256, 256 KiB blocks, CPU time): $sha_mib MiB/s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo
printf '%-36s %8s %8s %10s %10s %8s %s\n' "importer (${size_mib} MiB)" "wall s" "CPU s" "MiB/s wall" "MiB/s CPU" "RSS MiB" "CID"
row() { printf '%-36s %8.2f %8.2f %10s %10s %8d %s\n' "$1" "$2" "$3" "$(mib_s "$2")" "$(mib_s "$3")" "$(($4 / 1024))" "$5"; }
repo="$work/repo"
for mode in "v0" "v1"; do
  opts=(); [ "$mode" = v1 ] && opts=(--cid-version 1)
  read -r pt pc prss pcid < <(measure ./peerway add "$big" --only-hash "${opts[@]}")
  rm -rf "$repo"
  read -r st sc srss scid < <(measure ./peerway add "$big" --repo "$repo" "${opts[@]}")
  rm -rf "$repo"
  read -r jt jc jrss jcid < <(measure node tests/interop-peers/unixfs-add.mjs "$big" "${opts[@]}")
  read -r _ _ small_rss _ < <(measure ./peerway add "$small" --only-hash "${opts[@]}")
  row "peerway add --only-hash ($mode)" "$pt" "$pc" "$prss" "$pcid"
  row "peerway add, blocks to disk ($mode)" "$st" "$sc" "$srss" "$scid"
  row "ipfs-unixfs-importer ($mode)" "$jt" "$jc" "$jrss" "$jcid"
  [ "$pcid" = "$jcid" ] && [ "$scid" = "$jcid" ] || { echo "CID MISMATCH ($mode)" >&2; exit 1; }
  echo "  peerway/js: wall $(echo "scale=2; $jt / $pt" | bc -l)x, CPU $(echo "scale=2; $jc / $pc" | bc -l)x;" \
       "peerway CPU rate vs one-core SHA-256: $(echo "scale=0; 100 * $(mib_s "$pc") / $sha_mib" | bc -l)%"
  echo "  peak RSS of peerway --only-hash: 64 MiB file $((small_rss / 1024)) MiB, ${size_mib} MiB file $((prss / 1024)) MiB"
done
