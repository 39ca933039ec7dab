#!/usr/bin/env bash
# uTP (BEP 29) throughput on loopback, one libtorrent 2.0.8 seed with TCP off (lt-peer.py --utp-only), in one run:
#   libtorrent -> Peerway (`Peerway.Benchmarks utp-get`: UtpTransport + a plain BEP 3 downloader, 64 requests in flight)
#   libtorrent -> libtorrent (lt-peer.py --utp-only --exit-when-complete)
# interleaved for ROUNDS rounds; each figure is the whole process (start to the last byte; the SHA-256 is checked) and the
# median is reported with the ratio. Usage: bench/torrent/utp.sh [SIZE_MIB=256] [ROUNDS=3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-256}"; rounds="${2:-3}"
lt="$here/tests/interop-peers/lt-peer.py"
work="$(mktemp -d /tmp/pw-bench-utp.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
dotnet build "$here/bench/Peerway.Benchmarks" -c Release -v q --nologo >/dev/null
bench="$here/bench/Peerway.Benchmarks/bin/Release/net10.0/Peerway.Benchmarks"
mkdir -p "$work/src"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/src/payload.bin"
/usr/bin/python3 "$lt" create "$work/src/payload.bin" "$work/payload.torrent" --v1-only >/dev/null
want="$(sha256sum < "$work/src/payload.bin" | cut -d' ' -f1)"
port="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
/usr/bin/python3 "$lt" run --listen "127.0.0.1:$port" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/src" --timeout 3600 > "$work/seed.log" 2>&1 &
pids+=($!)
until grep -q '^finished' "$work/seed.log"; do sleep 0.2; done
now() { date +%s.%N; }
pw=(); ltr=()
for r in $(seq 1 "$rounds"); do
  t0="$(now)"; "$bench" utp-get "127.0.0.1:$port" "$work/payload.torrent" "$work/pw.bin" >/dev/null; t1="$(now)"
  [ "$(sha256sum < "$work/pw.bin" | cut -d' ' -f1)" = "$want" ] || { echo "utp.sh: Peerway's copy differs" >&2; exit 1; }
  pw+=("$(echo "$t1 - $t0" | bc)"); rm -f "$work/pw.bin"
  rm -rf "$work/lt"; lport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  t0="$(now)"; /usr/bin/python3 "$lt" run --listen "127.0.0.1:$lport" --utp-only --enc disabled --torrent "$work/payload.torrent" --save "$work/lt" --peer "127.0.0.1:$port" --exit-when-complete --timeout 3600 >/dev/null 2>&1; t1="$(now)"
  [ "$(sha256sum < "$work/lt/payload.bin" | cut -d' ' -f1)" = "$want" ] || { echo "utp.sh: libtorrent's copy differs" >&2; exit 1; }
  ltr+=("$(echo "$t1 - $t0" | bc)")
  echo "round $r: Peerway ${pw[-1]} s, libtorrent ${ltr[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mp="$(median "${pw[@]}")"; ml="$(median "${ltr[@]}")"
echo "median over $rounds rounds, $size_mib MiB from a libtorrent uTP seed: Peerway $mp s ($(echo "scale=1; $size_mib / $mp" | bc) MiB/s), libtorrent $ml s ($(echo "scale=1; $size_mib / $ml" | bc) MiB/s), ratio $(echo "scale=2; $ml / $mp" | bc)x; load: $(uptime | sed 's/.*load average: //')"
