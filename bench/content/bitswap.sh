#!/usr/bin/env bash
# Bitswap benchmark (issue 19 §8): one file fetched over Bitswap on loopback, every block verified, four pairings in
# interleaved rounds (medians of wall time and of the fetcher's CPU):
#   P←P  `peerway ipfs get` from `peerway ipfs serve`          H←P  Helia 7 (helia-bitswap-get.mjs) from `peerway ipfs serve`
#   P←H  `peerway ipfs get` from Helia (helia-bitswap-serve.mjs) H←H  Helia from Helia
# Both servers hold the file as CIDv1 with raw leaves (each side's own import). Each fetch starts with an empty
# store; process start-up (dotnet, node) is included, as a user runs them. Ratios: H←H time / P←P time (the issue's
# goal: ≥ 2×) and H←H / H←P (what a Helia user gains by fetching from Peerway).
# A Helia fetch that gives no result within HELIA_ROUND_TIMEOUT_S (default 1200) is stopped and reported as a stall
# (Helia←Helia stalled once at high load); the medians are over the rounds that finished.
# PAIRS="PH HH" runs only the pairings named (default: PP HP PH HH, in that order within each round). PW_BASELINE=DIR
# (a CLI directory with peerway.dll, e.g. another tree's .build/cli) adds the pairings BP and BH: that build's
# `peerway ipfs get` from `peerway ipfs serve` and from Helia, interleaved with the others in the same run (both servers
# stay this tree's and Helia). Example: PW_BASELINE=/tmp/main/.build/cli PAIRS="BH PH HH" bench/content/bitswap.sh 256 5
# usage: bench/content/bitswap.sh [SIZE_MIB=256] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
size_mib="${1:-256}"
rounds="${2:-3}"
helia_timeout="${HELIA_ROUND_TIMEOUT_S:-1200}"
work="${TMPDIR:-/tmp}/peerway-bench-bitswap"
rm -rf "$work"; mkdir -p "$work/empty"
file="$work/random-${size_mib}MiB"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
peers="$root/tests/interop-peers"
./peerway --version >/dev/null   # build once, outside the measurement
export HELIA_GET_TIMEOUT_MS=$((1000 * 60 * 30)) HELIA_SERVE_TIMEOUT_MS=$((1000 * 60 * 180))

pcid=$(./peerway add "$file" --cid-version 1 --repo "$work/srv")
./peerway ipfs serve --listen /ip4/127.0.0.1/tcp/0 --repo "$work/srv" > "$work/pserve.out" 2> "$work/pserve.err" &
pserve=$!
exec 3< <(tail -f /dev/null)
node "$peers/helia-bitswap-serve.mjs" "$file" "$work/empty" <&3 > "$work/hserve.out" 2> "$work/hserve.err" &
hserve=$!
trap 'kill $pserve $hserve 2>/dev/null || true' EXIT
until grep -q '^ipfs: peer' "$work/pserve.out" 2>/dev/null; do kill -0 $pserve; sleep 0.2; done
until grep -q '^{' "$work/hserve.out" 2>/dev/null; do kill -0 $hserve; sleep 0.5; done
paddr=$(awk '/^ipfs: peer/ { print $5; exit }' "$work/pserve.out")
haddr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["addrs"][0])' "$work/hserve.out")
hcid=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["v1"])' "$work/hserve.out")
want=$(sha256sum < "$file" | cut -d' ' -f1)
echo "file ${size_mib} MiB; peerway CIDv1 $pcid; helia CIDv1 $hcid; load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {   # NAME COMMAND... : appends "wall cpu" to $work/res-NAME and checks the bytes
  local name=$1; shift
  rm -rf "$work/out" "$work/repo"
  local out rc=0; out=$(/usr/bin/time -f '%e %U %S' -o "$work/time" "$@") || rc=$?
  if [ "$rc" -eq 124 ]; then
    echo "$name: stalled (no result in ${helia_timeout} s); this round is reported as a stall" >&2
    echo stalled >> "$work/stalls-$name"
    return 0
  fi
  [ "$rc" -eq 0 ] || { echo "$name: failed (exit $rc)" >&2; exit 1; }
  read -r e u s < "$work/time"
  echo "$e $(echo "$u + $s" | bc -l)" >> "$work/res-$name"
  if [ -f "$work/out" ]; then
    [ "$(sha256sum < "$work/out" | cut -d' ' -f1)" = "$want" ] || { echo "$name: wrong bytes" >&2; exit 1; }
  else
    echo "$out" | grep -q "\"sha256\":\"$want\"" || { echo "$name: wrong bytes: $out" >&2; exit 1; }
  fi
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pairs="${PAIRS:-PP HP PH HH}"
baseline="${PW_BASELINE:-}"
case " $pairs " in *" BP "*|*" BH "*) [ -f "$baseline/peerway.dll" ] || { echo "PAIRS has BP or BH: set PW_BASELINE to a CLI directory with peerway.dll" >&2; exit 2; } ;; esac
for r in $(seq "$rounds"); do
  for n in $pairs; do
    case $n in
      PP) run PP ./peerway ipfs get "$pcid" -o "$work/out" --peer "$paddr" --repo "$work/repo" --timeout 3600 ;;
      HP) run HP timeout "$helia_timeout" node "$peers/helia-bitswap-get.mjs" "$paddr" "$pcid" ;;
      PH) run PH ./peerway ipfs get "$hcid" -o "$work/out" --peer "$haddr" --repo "$work/repo" --timeout 3600 ;;
      HH) run HH timeout "$helia_timeout" node "$peers/helia-bitswap-get.mjs" "$haddr" "$hcid" ;;
      BP) run BP dotnet "$baseline/peerway.dll" ipfs get "$pcid" -o "$work/out" --peer "$paddr" --repo "$work/repo" --timeout 3600 ;;
      BH) run BH dotnet "$baseline/peerway.dll" ipfs get "$hcid" -o "$work/out" --peer "$haddr" --repo "$work/repo" --timeout 3600 ;;
      *) echo "unknown pairing $n (PP HP PH HH BP BH)" >&2; exit 2 ;;
    esac
  done
  echo "round $r done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
printf '%-6s %10s %10s %12s\n' pair wall_s cpu_s MiB/s
for n in $pairs; do
  stalls=0; [ ! -f "$work/stalls-$n" ] || stalls=$(wc -l < "$work/stalls-$n")   # (a failing cat in a pipeline ended the script under pipefail)
  if [ ! -s "$work/res-$n" ]; then printf '%-6s stalled in all %s rounds\n' "$n" "$stalls"; continue; fi
  [ "$stalls" -eq 0 ] || echo "$n: $stalls of $rounds rounds stalled (medians over the others)"
  w=$(cut -d' ' -f1 "$work/res-$n" | median); c=$(cut -d' ' -f2 "$work/res-$n" | median)
  printf '%-6s %10s %10s %12.1f\n' "$n" "$w" "$c" "$(echo "$size_mib / $w" | bc -l)"
  eval "w_$n=$w"
done
if [ -n "${w_HH:-}" ]; then
  for n in PP HP PH BP BH; do
    eval "w=\${w_$n:-}"
    [ -z "$w" ] || echo "H←H / ${n:0:1}←${n:1:1}: $(echo "$w_HH / $w" | bc -l | cut -c1-5)×"
  done
else
  echo "no ratio: H←H did not run or stalled in every round"
fi
