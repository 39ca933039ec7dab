#!/usr/bin/env bash
# CPU seconds per GiB of one seeder -> one leecher transfer on 127.0.0.1 (issue 14 item 9): on a shared, CPU-bound
# machine the CPU a client spends per byte moved does not depend on how the scheduler shares the cores, where MB/s does.
# Usage: bench/torrent/throughput-cpu.sh [SIZE_MIB=512] [ROUNDS=3] [PAIR...]
#   PAIR: peerway, libtorrent, aria2, baseline (PW_BASELINE=DIR, an earlier build's .build/cli), alt and alt2 (PW_ALT=DIR,
#   PW_ALT2=DIR: another build, e.g. a differently published CLI, run as DIR/peerway when that exists (self-contained,
#   or a Native AOT executable with no peerway.dll beside it) else with `dotnet DIR/peerway.dll`, with the environment PW_ALT_ENV / PW_ALT2_ENV="NAME=VALUE ..." for its two
#   processes: a runtime-setting experiment), each with -rc4 for
#   MSE/PE RC4 required on both sides. Default: peerway peerway-rc4 libtorrent libtorrent-rc4 aria2 aria2-rc4.
#   Every round runs every pair once, in that order; the summary is each pair's median: CPU seconds per side, both
#   sides per GiB, and the leecher's wall time (process start to exit) with the MB/s (10^6 B/s) it makes.
# Per pair: `peerway tracker` is the only peer source (TCP; no DHT, LSD, PEX or uTP). The seeder's CPU (utime + stime
# of /proc/PID/stat) counts from just before the leecher starts until it exits (its start-up and load check are not
# the transfer); the leecher's from `/usr/bin/time`, process start to exit (its start-up is part of a download). The
# bytes that arrived are compared with the file after each run. Peerway runs `share --transport tcp` and `get` with
# `--encryption off|require`, from a copy of the built CLI (a source edited during the run does not rebuild it);
# libtorrent 2.0 runs bench/torrent/lt_peer.py (tuned for a fast LAN, as in throughput.sh); aria2 as in throughput.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-512}"
rounds="${2:-3}"
if [ $# -gt 2 ]; then pairs=("${@:3}"); else pairs=(peerway peerway-rc4 libtorrent libtorrent-rc4 aria2 aria2-rc4); fi
for p in "${pairs[@]}"; do
  case "${p%-rc4}" in
    peerway|libtorrent|aria2) ;;
    baseline) [ -f "${PW_BASELINE:-}/peerway.dll" ] || { echo "throughput-cpu.sh: $p needs PW_BASELINE=DIR with peerway.dll" >&2; exit 2; } ;;
    alt) [ -f "${PW_ALT:-}/peerway.dll" ] || [ -x "${PW_ALT:-}/peerway" ] || { echo "throughput-cpu.sh: $p needs PW_ALT=DIR with peerway.dll or a native peerway" >&2; exit 2; } ;;
    alt2) [ -f "${PW_ALT2:-}/peerway.dll" ] || [ -x "${PW_ALT2:-}/peerway" ] || { echo "throughput-cpu.sh: $p needs PW_ALT2=DIR with peerway.dll or a native peerway" >&2; exit 2; } ;;
    *) echo "throughput-cpu.sh: unknown pair $p" >&2; exit 2 ;;
  esac
done
for p in aria2c curl python3 /usr/bin/python3 /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "throughput-cpu.sh: $p is not installed" >&2; exit 1; }
done
work="$(mktemp -d /tmp/pw-bench-cpu.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$here/peerway" --version >/dev/null   # builds the CLI if a source changed, then it is copied
cp -r "$here/.build/cli" "$work/cli"
pw=(dotnet "$work/cli/peerway.dll")
head -c $((size_mib * 1048576)) /dev/urandom >"$work/payload.bin"
tport=$((20000 + RANDOM % 20000))
"${pw[@]}" tracker --port "$tport" --bind 127.0.0.1 --interval 2 >/dev/null 2>&1 & pids+=($!)
tck=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The whole machine's busy and iowait ticks (/proc/stat "cpu": user nice system idle iowait irq softirq steal): what
# both processes cost plus what the kernel does for them outside their own accounting (page-cache writeback by
# kworkers, softirqs), and what else ran (compare with the load).
sys_of() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $6}' /proc/stat; }
aria=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --summary-interval=0
  --console-log-level=error --bt-tracker-interval=2)

# run PAIR ROUND: one transfer; prints "PAIR seeder_s leecher_user_s leecher_sys_s wall_s".
run() {
  local pair=$1 r=$2 client=${1%-rc4} enc=plain
  [ "$pair" != "$client" ] && enc=rc4
  local w="$work/$pair-$r" name="p$r-$pair"
  mkdir -p "$w/src"
  ln "$work/payload.bin" "$w/src/$name.bin"
  "${pw[@]}" create "$w/src/$name.bin" -o "$w/t.torrent" --tracker "http://127.0.0.1:$tport/announce" >/dev/null
  local sport lport
  sport=$((20000 + RANDOM % 20000)); lport=$((20000 + RANDOM % 20000))
  local cli=("${pw[@]}") envs=()
  [ "$client" = baseline ] && cli=(dotnet "$PW_BASELINE/peerway.dll")
  if [ "$client" = alt ] || [ "$client" = alt2 ]; then
    local dir=${PW_ALT:-} env=${PW_ALT_ENV:-}
    [ "$client" = alt2 ] && dir=$PW_ALT2 env=${PW_ALT2_ENV:-}
    cli=(dotnet "$dir/peerway.dll")
    if [ -x "$dir/peerway" ] && { [ -f "$dir/libcoreclr.so" ] || [ ! -f "$dir/peerway.dll" ]; }; then cli=("$dir/peerway"); fi
    read -r -a envs <<<"$env"
  fi
  local pe=(--encryption off) ae=()
  [ "$enc" = rc4 ] && pe=(--encryption require) && ae=(--bt-require-crypto=true --bt-min-crypto-level=arc4)
  local seeder
  case "$client" in
    aria2) aria2c "${aria[@]}" "${ae[@]}" -V --seed-ratio=0.0 --seed-time=900 --listen-port="$sport" --dir="$w/src" "$w/t.torrent" >/dev/null 2>&1 & seeder=$! ;;
    libtorrent) /usr/bin/python3 "$here/bench/torrent/lt_peer.py" seed "$w/t.torrent" "$w/src" 127.0.0.1 "$sport" "$enc" >/dev/null 2>&1 & seeder=$! ;;
    *) env "${envs[@]}" "${cli[@]}" share "$w/t.torrent" --content "$w/src/$name.bin" --port "$sport" --bind 127.0.0.1 --transport tcp "${pe[@]}" >/dev/null 2>&1 & seeder=$! ;;
  esac
  pids+=("$seeder")
  local ih
  ih=$("${pw[@]}" info "$w/t.torrent" | sed -n 's/^info-hash: *//p' | sed 's/../%&/g')
  until curl -s "http://127.0.0.1:$tport/scrape?info_hash=$ih" | grep -q 'completei[1-9]'; do
    kill -0 "$seeder" 2>/dev/null || { echo "throughput-cpu.sh: $pair's seeder exited" >&2; return 1; }
    sleep 0.1
  done
  local s0 t0 t1 s1
  local m0 m1 io0 io1
  read -r m0 io0 < <(sys_of)
  s0=$(cpu_of "$seeder"); t0=$EPOCHREALTIME
  case "$client" in
    aria2) /usr/bin/time -f "%U %S" -o "$w/time" aria2c "${aria[@]}" "${ae[@]}" --seed-time=0 --listen-port="$lport" --dir="$w/out" "$w/t.torrent" >/dev/null 2>&1 ;;
    libtorrent) /usr/bin/time -f "%U %S" -o "$w/time" /usr/bin/python3 "$here/bench/torrent/lt_peer.py" leech "$w/t.torrent" "$w/out" 127.0.0.1 "$lport" "$enc" >/dev/null 2>&1 ;;
    *) /usr/bin/time -f "%U %S" -o "$w/time" env "${envs[@]}" "${cli[@]}" get "$w/t.torrent" -o "$w/out" --port "$lport" --bind 127.0.0.1 --transport tcp "${pe[@]}" >/dev/null 2>&1 ;;
  esac
  t1=$EPOCHREALTIME; s1=$(cpu_of "$seeder")
  read -r m1 io1 < <(sys_of)
  kill "$seeder" 2>/dev/null || true; wait "$seeder" 2>/dev/null || true
  cmp -s "$work/payload.bin" "$w/out/$name.bin" || { echo "throughput-cpu.sh: $pair round $r: wrong content" >&2; return 1; }
  read -r lu ls < <(tail -1 "$w/time")
  echo "$pair $(python3 -c "print(f'{($s1 - $s0) / $tck:.2f} $lu $ls {$t1 - $t0:.2f} {($m1 - $m0) / $tck:.2f} {($io1 - $io0) / $tck:.2f}')")"
  rm -rf "$w"
}

echo "# throughput-cpu.sh $size_mib MiB x $rounds rounds, $(date -u '+%F %T') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
for r in $(seq 1 "$rounds"); do
  for p in "${pairs[@]}"; do
    line=$(run "$p" "$r")
    read -r _ sd lu ls wall mach iow <<<"$line"
    python3 -c "print(f'round $r  {\"$p\":<15} seeder {$sd:.2f} s  leecher {$lu + $ls:.2f} s (user $lu, sys $ls)  both per GiB {($sd + $lu + $ls) * 1024 / $size_mib:.2f} s  machine {$mach} s (iowait {$iow})  wall {$wall} s  load $(cut -d' ' -f1 /proc/loadavg)')"
    echo "$line" >>"$results"
  done
done
echo "# end $(date -u '+%F %T') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$size_mib" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    pair, sd, lu, ls, wall, mach, iow = line.split()
    mib = float(sys.argv[2])
    rows.setdefault(pair, []).append((float(sd), float(lu) + float(ls), (float(sd) + float(lu) + float(ls)) * 1024 / mib,
                                      float(wall), mib * 1048576 / 1e6 / float(wall), float(mach), float(iow)))
print(f"{'median':<15} {'seeder s':>9} {'leecher s':>10} {'both s/GiB':>11} {'machine s':>10} {'iowait s':>9} {'wall s':>7} {'MB/s':>7}  rounds (both s/GiB; MB/s)")
for pair, v in rows.items():
    print(f"{pair:<15} {statistics.median(x[0] for x in v):>9.2f} {statistics.median(x[1] for x in v):>10.2f} "
          f"{statistics.median(x[2] for x in v):>11.2f} {statistics.median(x[5] for x in v):>10.2f} "
          f"{statistics.median(x[6] for x in v):>9.2f} {statistics.median(x[3] for x in v):>7.2f} "
          f"{statistics.median(x[4] for x in v):>7.1f}  {' / '.join(f'{x[2]:.2f}' for x in v)}; {' / '.join(f'{x[4]:.1f}' for x in v)}")
EOF
