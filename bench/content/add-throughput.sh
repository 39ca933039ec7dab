#!/usr/bin/env bash
# Content benchmark (issue 3 §9, issue 24): CID of a large file — `peerway add` vs ipfs-unixfs-importer 17 (Node),
# against one core's SHA-256 rate (openssl speed, single thread), and peak RSS for 256 MiB / SIZE / 4×SIZE files.
# `peerway add` runs as shipped (PEERWAY_SHA256=auto: the faster SHA-256 path, measured per process) and with each
# path forced (multibuffer: 16 AVX-512 lanes; platform: OpenSSL one leaf at a time), so the choice can be checked.
# usage: bench/content/add-throughput.sh [SIZE_MIB=1024] [RUNS=3]   (RUNS interleaved rounds; medians reported)
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

# Rounds are interleaved: each round runs every command of a pairing once, so load that comes and goes hits all of them
# alike. Each command's figures are the median over RUNS rounds (wall, CPU = user + sys) and its largest max RSS.
run_once() {   # NAME COMMAND... : appends "wall cpu rss" to $work/res-NAME, keeps the CID it printed
  local name=$1; shift
  rm -rf "$work/repo" "$work/js-repo"
  local out; out=$(/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@")
  read -r e u s r < "$work/time"
  echo "$e $(echo "$u + $s" | bc -l) $r" >> "$work/res-$name"
  echo "$out" > "$work/cid-$name"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
result() {     # NAME -> "median_wall median_cpu max_rss cid"
  local f="$work/res-$1"
  echo "$(cut -d' ' -f1 "$f" | median) $(cut -d' ' -f2 "$f" | median) $(cut -d' ' -f3 "$f" | sort -n | tail -1) $(cat "$work/cid-$1")"
}

mib_s() { echo "scale=0; $size_mib / $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
pct() { echo "scale=0; 100 * $1 / $sha_mib" | bc -l; }

sha_rate=$(openssl speed -seconds 3 -bytes 262144 -evp sha256 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
sha_mib=$(echo "scale=0; $sha_rate * 1000 / 1048576" | bc -l)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "one core SHA-256 (openssl speed -evp sha256, 256 KiB blocks): $sha_mib MiB/s"
# The importer times both SHA-256 paths once per process (issue 24); show what this machine picks, three times.
for _ in 1 2 3; do
  echo "PEERWAY_SHA256=auto picks: $(env PEERWAY_SHA256=auto ./peerway add "$small" --only-hash -v 2>&1 >/dev/null | sed -n 's/.*leaf batches: //p')"
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-48s %7s %7s %11s %10s %8s %s\n' "${size_mib} MiB file, median of $runs" "wall s" "CPU s" "MiB/s wall" "MiB/s CPU" "RSS MiB" "CID"
row() { printf '%-48s %7.2f %7.2f %11s %10s %8d %s\n' "$1" "$2" "$3" "$(mib_s "$2")" "$(mib_s "$3")" "$(($4 / 1024))" "$5"; }
for mode in v0 v1; do
  opts=(); [ "$mode" = v1 ] && opts=(--cid-version 1)
  rm -f "$work"/res-* "$work"/cid-*
  for _ in $(seq "$runs"); do
    run_once p env PEERWAY_SHA256=auto ./peerway add "$big" --only-hash "${opts[@]}"
    run_once pm env PEERWAY_SHA256=multibuffer ./peerway add "$big" --only-hash "${opts[@]}"
    run_once pp env PEERWAY_SHA256=platform ./peerway add "$big" --only-hash "${opts[@]}"
    run_once j node tests/interop-peers/unixfs-add.mjs "$big" "${opts[@]}"
    run_once s env PEERWAY_SHA256=auto ./peerway add "$big" --repo "$work/repo" "${opts[@]}"
    run_once k node tests/interop-peers/unixfs-add.mjs "$big" --blockstore "$work/js-repo" "${opts[@]}"
  done
  rm -rf "$work/repo" "$work/js-repo"
  read -r pt pc prss pcid < <(result p)
  read -r mt mc mrss mcid < <(result pm)
  read -r qt qc qrss qcid < <(result pp)
  read -r jt jc jrss jcid < <(result j)
  read -r st sc srss scid < <(result s)
  read -r kt kc krss kcid < <(result k)
  row "peerway add --only-hash ($mode)" "$pt" "$pc" "$prss" "$pcid"
  row "  PEERWAY_SHA256=multibuffer ($mode)" "$mt" "$mc" "$mrss" "$mcid"
  row "  PEERWAY_SHA256=platform ($mode)" "$qt" "$qc" "$qrss" "$qcid"
  row "ipfs-unixfs-importer, black hole ($mode)" "$jt" "$jc" "$jrss" "$jcid"
  row "peerway add, FileBlockStore ($mode)" "$st" "$sc" "$srss" "$scid"
  row "ipfs-unixfs-importer, blockstore-fs ($mode)" "$kt" "$kc" "$krss" "$kcid"
  for c in "$pcid" "$mcid" "$qcid" "$scid" "$kcid"; do
    [ "$c" = "$jcid" ] || { echo "CID MISMATCH ($mode)" >&2; exit 1; }
  done
  echo "  CID only:    peerway/js wall $(ratio "$jt" "$pt")x, CPU $(ratio "$jc" "$pc")x;" \
       "peerway vs one-core SHA-256: wall $(pct "$(mib_s "$pt")")%, CPU $(pct "$(mib_s "$pc")")%"
  echo "               forced paths vs js, wall: multibuffer $(ratio "$jt" "$mt")x, platform $(ratio "$jt" "$qt")x;" \
       "CPU: multibuffer $(ratio "$jc" "$mc")x, platform $(ratio "$jc" "$qc")x"
  echo "  blocks kept: peerway/js wall $(ratio "$kt" "$st")x, CPU $(ratio "$kc" "$sc")x"
done
echo
echo "peak RSS of peerway add --only-hash (one run each):"
for f in "$small" "$big" "$huge"; do
  /usr/bin/time -f '%M' -o "$work/time" ./peerway add "$f" --only-hash >/dev/null
  echo "  $(basename "$f"): $(($(cat "$work/time") / 1024)) MiB"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
