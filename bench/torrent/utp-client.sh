#!/usr/bin/env bash
# uTP (BEP 29) through the whole client on loopback, in one run (issue 15 item 7):
#   Peerway -> Peerway over uTP   (`peerway share` seeding; `peerway get --transport utp`)
#   Peerway -> Peerway over TCP   (the same seed; `peerway get --transport tcp`)
#   libtorrent -> libtorrent uTP  (lt-peer.py --utp-only seed; lt-peer.py --utp-only --exit-when-complete)
# encryption off everywhere, interleaved for ROUNDS rounds; each figure is the whole downloading process (start to
# verified last byte; the SHA-256 of each copy is checked); medians and the ratios are reported with the load.
# Each Peerway round also reports CPU seconds per GiB (user + system, from the kernel's accounting): the downloading
# process's (GNU time) and the seeding process's over the same download (/proc/PID/stat before and after), since
# wall time on a shared machine is noisy, and the UDP datagrams the kernel dropped at a full socket receive buffer
# (RcvbufErrors; on loopback the whole host's count) during the uTP download. LT=0 leaves out the libtorrent rounds (for profiling; figures use both).
# BASE_CLI=DIR (a copy of another build's .build/cli, e.g. main's) adds, interleaved in each round, a uTP download by
# that build from a seed of that build (both ends old): the before/after of a change in one run.
# Usage: bench/torrent/utp-client.sh [SIZE_MIB=128] [ROUNDS=3]
# bench/torrent/utp-veth.sh runs the same over a veth pair between two namespaces: it sets SEED_NS/GET_NS (the
# namespaces the seeds and the downloaders run in) and SEED_IP/GET_IP (their addresses); by default both are 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-128}"; rounds="${2:-3}"
lt="$here/tests/interop-peers/lt-peer.py"
pw="$here/peerway"
work="$(mktemp -d /tmp/pw-bench-utpc.XXXXXX)"
pids=()
seed_ip="${SEED_IP:-127.0.0.1}"; get_ip="${GET_IP:-127.0.0.1}"
sx=(); gx=()
[ -z "${SEED_NS:-}" ] || sx=(ip netns exec "$SEED_NS")
[ -z "${GET_NS:-}" ] || gx=(ip netns exec "$GET_NS")
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$pw" --version >/dev/null
free_port() { # $1: the address (in the current namespace) to find a port free for TCP and UDP on
  python3 -c '
import socket, sys
while True:
    s = socket.socket(); s.bind((sys.argv[1], 0)); u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind((sys.argv[1], s.getsockname()[1])); print(s.getsockname()[1]); break
    except OSError:
        pass' "$1"; }
mkdir -p "$work/src"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/src/payload.bin"
/usr/bin/python3 "$lt" create "$work/src/payload.bin" "$work/payload.torrent" --v1-only >/dev/null
want="$(sha256sum < "$work/src/payload.bin" | cut -d' ' -f1)"
pport="$("${sx[@]}" bash -c "$(declare -f free_port); free_port $seed_ip")"
"${sx[@]}" "$pw" share "$work/payload.torrent" --content "$work/src/payload.bin" --bind "$seed_ip" --port "$pport" --encryption off > "$work/share.out" 2> "$work/share.err" &
share_pid=$!; pids+=("$share_pid")
if [ -n "${BASE_CLI:-}" ]; then
  bport="$("${sx[@]}" bash -c "$(declare -f free_port); free_port $seed_ip")"
  "${sx[@]}" dotnet "$BASE_CLI/peerway.dll" share "$work/payload.torrent" --content "$work/src/payload.bin" --bind "$seed_ip" --port "$bport" --encryption off > "$work/bshare.out" 2> "$work/bshare.err" &
  bshare_pid=$!; pids+=("$bshare_pid")
  until grep -qs '^seeding' "$work/bshare.err"; do sleep 0.2; done
fi
lport="$("${sx[@]}" bash -c "$(declare -f free_port); free_port $seed_ip")"
"${sx[@]}" /usr/bin/python3 "$lt" run --listen "$seed_ip:$lport" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/src" --timeout 7200 > "$work/seed.log" 2>&1 &
pids+=($!)
until grep -qs '^finished' "$work/seed.log" && grep -qs '^seeding' "$work/share.err"; do sleep 0.2; done
now() { date +%s.%N; }
check() { [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$want" ] || { echo "utp-client.sh: $2's copy differs" >&2; exit 1; }; }
ticks() { # CPU ticks (utime + stime, all threads) of process $1 and its descendants
  local t=0 c
  [ -r "/proc/$1/stat" ] && t="$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')"
  for c in $(pgrep -P "$1" || true); do t=$((t + $(ticks "$c"))); done
  echo "$t"; }
hz="$(getconf CLK_TCK)"
rcvbuf_errors() { # UDP datagrams the kernel dropped for a full socket receive buffer, in the namespace of "$@" (udp(7))
  "$@" cat /proc/net/snmp | awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }'; }
get() { # $1 transport [$2 base]; prints "seconds getter-cpu-s/GiB seeder-cpu-s/GiB drops-at-getter drops-at-seeder"
  rm -rf "$work/dl"; local t0 t1 s0 s1 gd0 sd0 spid="$share_pid" port="$pport" cli=("$pw")
  [ -z "${2:-}" ] || { spid="$bshare_pid"; port="$bport"; cli=(dotnet "$BASE_CLI/peerway.dll"); }
  gd0="$(rcvbuf_errors "${gx[@]}")"; sd0="$(rcvbuf_errors "${sx[@]}")"
  s0="$(ticks "$spid")"; t0="$(now)"
  "${gx[@]}" /usr/bin/time -f '%U %S' -o "$work/get.time" "${cli[@]}" get "$work/payload.torrent" -o "$work/dl" --bind "$get_ip" --peer "$seed_ip:$port" --transport "$1" --encryption off --timeout 3600 >/dev/null 2>"$work/get.err"
  t1="$(now)"; s1="$(ticks "$spid")"; check "$work/dl/payload.bin" "Peerway ($1)"
  echo "$(echo "$t1 - $t0" | bc) $(awk -v m="$size_mib" '{printf "%.2f", ($1 + $2) * 1024 / m}' "$work/get.time") $(echo "$s0 $s1" | awk -v m="$size_mib" -v hz="$hz" '{printf "%.2f", ($2 - $1) / hz * 1024 / m}') $(($(rcvbuf_errors "${gx[@]}") - gd0)) $(($(rcvbuf_errors "${sx[@]}") - sd0))"
}
utp=(); tcp=(); ltr=(); ucpu=(); tcpu=(); uscpu=(); tscpu=()
base=(); bcpu=()
for r in $(seq 1 "$rounds"); do
  if [ -n "${BASE_CLI:-}" ]; then
    read -r b bg bs bgd bsd <<< "$(get utp base)"; base+=("$b"); bcpu+=("$(echo "$bg + $bs" | bc)")
    echo "round $r: BASE_CLI uTP $b s (CPU/GiB: get $bg s, share $bs s); UDP RcvbufErrors getter side $bgd, seeder side $bsd"
  fi
  read -r u ug us ugd usd <<< "$(get utp)"; utp+=("$u"); ucpu+=("$ug"); uscpu+=("$us")
  read -r t tg ts _ _ <<< "$(get tcp)"; tcp+=("$t"); tcpu+=("$tg"); tscpu+=("$ts")
  drops="UDP RcvbufErrors during uTP: getter side $ugd, seeder side $usd"
  if [ "${LT:-1}" = 0 ]; then
    echo "round $r: Peerway uTP $u s (CPU/GiB: get $ug s, share $us s), Peerway TCP $t s (CPU/GiB: get $tg s, share $ts s); $drops; load $(uptime | sed 's/.*load average: //')"
    ltr+=(0); continue
  fi
  rm -rf "$work/lt"; t0="$(now)"
  "${gx[@]}" /usr/bin/python3 "$lt" run --listen "$get_ip:$("${gx[@]}" bash -c "$(declare -f free_port); free_port $get_ip")" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/lt" --peer "$seed_ip:$lport" --exit-when-complete --timeout 3600 >/dev/null 2>&1
  t1="$(now)"; check "$work/lt/payload.bin" libtorrent; ltr+=("$(echo "$t1 - $t0" | bc)")
  echo "round $r: Peerway uTP $u s (CPU/GiB: get $ug s, share $us s), Peerway TCP $t s (CPU/GiB: get $tg s, share $ts s), libtorrent uTP ${ltr[-1]} s; $drops; load $(uptime | sed 's/.*load average: //')"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
if [ -n "${BASE_CLI:-}" ]; then
  mb="$(median "${base[@]}")"
  echo "median BASE_CLI uTP $mb s ($(echo "scale=1; $size_mib / $mb" | bc) MiB/s), CPU/GiB get + share $(median "${bcpu[@]}") s; vs TCP $(echo "scale=2; $(median "${tcp[@]}") / $mb" | bc)x"
fi
mu="$(median "${utp[@]}")"; mt="$(median "${tcp[@]}")"; ml="$(median "${ltr[@]}")"
echo "median CPU seconds per GiB: Peerway uTP get $(median "${ucpu[@]}") + share $(median "${uscpu[@]}"), Peerway TCP get $(median "${tcpu[@]}") + share $(median "${tscpu[@]}")"
if [ "${LT:-1}" = 0 ]; then
  echo "median over $rounds rounds, $size_mib MiB: Peerway->Peerway uTP $mu s ($(echo "scale=1; $size_mib / $mu" | bc) MiB/s), TCP $mt s ($(echo "scale=1; $size_mib / $mt" | bc) MiB/s); Peerway uTP vs TCP $(echo "scale=2; $mt / $mu" | bc)x; load: $(uptime | sed 's/.*load average: //')"
  exit 0
fi
echo "median over $rounds rounds, $size_mib MiB: Peerway->Peerway uTP $mu s ($(echo "scale=1; $size_mib / $mu" | bc) MiB/s), TCP $mt s ($(echo "scale=1; $size_mib / $mt" | bc) MiB/s), libtorrent->libtorrent uTP $ml s ($(echo "scale=1; $size_mib / $ml" | bc) MiB/s); Peerway uTP vs libtorrent uTP $(echo "scale=2; $ml / $mu" | bc)x, Peerway uTP vs TCP $(echo "scale=2; $mt / $mu" | bc)x; load: $(uptime | sed 's/.*load average: //')"
