#!/usr/bin/env bash
# BEP 19 web seed alone: one file served by a local nginx (Debian's nginx, config written here, loopback only), no
# peers at all; `peerway get` vs `aria2c` downloading the same .torrent (made by `peerway create --web-seed`) from the
# same URL, in interleaved rounds (peerway, aria2, peerway, aria2, ...). Each client starts from an empty directory; the
# SHA-256 of what arrived is checked after each download (outside the timing). DHT, LSD/LPD and PEX are off.
# Usage: bench/torrent/webseed.sh [SIZE_MIB=1024] [ROUNDS=3]
# Prints each round's seconds, the medians, the ratio (aria2 median / Peerway median: > 1 means Peerway is faster)
# and the load average.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-1024}"
rounds="${2:-3}"
pw="$here/peerway"
for p in nginx aria2c sha256sum openssl; do
  command -v "$p" >/dev/null || { echo "webseed.sh: $p is not installed (apt-get install nginx aria2)" >&2; exit 1; }
done
work="$(mktemp -d /tmp/pw-bench-webseed.XXXXXX)"
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www" "$work/nginx"
chmod 755 "$work" "$work/www"  # nginx's worker runs as nobody
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 60s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
echo "making a ${size_mib} MiB file..." >&2
openssl rand -out "$work/www/big.bin" $((size_mib * 1024 * 1024))
want="$(sha256sum "$work/www/big.bin" | cut -d' ' -f1)"
"$pw" create "$work/www/big.bin" -o "$work/big.torrent" --web-seed "http://127.0.0.1:$port/big.bin" >/dev/null
chmod 644 "$work/www/big.bin"
ok=""
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/big.bin" && { ok=1; break; }; sleep 0.1; done
[ -n "$ok" ] || { echo "webseed.sh: nginx does not serve the file" >&2; cat "$work/nginx/error.log" >&2; exit 1; }

now() { echo "$EPOCHREALTIME"; }
check() {
  local got; got="$(sha256sum "$1" | cut -d' ' -f1)"
  [ "$got" = "$want" ] || { echo "webseed.sh: $2 downloaded a file whose SHA-256 differs" >&2; exit 1; }
}
declare -a t_pw=() t_aria=()
for r in $(seq "$rounds"); do
  rm -rf "$work/dl"; mkdir -p "$work/dl"
  s="$(now)"
  PEERWAY_LSD=off "$pw" get "$work/big.torrent" -o "$work/dl" --timeout 3600 >/dev/null 2>"$work/pw.err" || { cat "$work/pw.err" >&2; exit 1; }
  e="$(now)"
  t_pw+=("$(echo "$e - $s" | bc)")
  check "$work/dl/big.bin" peerway
  rm -rf "$work/dl"; mkdir -p "$work/dl"
  s="$(now)"
  aria2c -q -d "$work/dl" --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
    --file-allocation=none --bt-hash-check-seed=false --check-integrity=false "$work/big.torrent" >"$work/aria.err" 2>&1 || { cat "$work/aria.err" >&2; exit 1; }
  e="$(now)"
  t_aria+=("$(echo "$e - $s" | bc)")
  check "$work/dl/big.bin" aria2
  echo "round $r: peerway ${t_pw[-1]} s, aria2 ${t_aria[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mp="$(median "${t_pw[@]}")"; ma="$(median "${t_aria[@]}")"
echo "size ${size_mib} MiB, ${rounds} rounds (interleaved), web seed nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1"
echo "peerway rounds: ${t_pw[*]} s; median $mp s ($(echo "scale=1; $size_mib / $mp" | bc) MiB/s)"
echo "aria2   rounds: ${t_aria[*]} s; median $ma s ($(echo "scale=1; $size_mib / $ma" | bc) MiB/s)"
echo "ratio (aria2 median / peerway median): $(echo "scale=2; $ma / $mp" | bc)x"
echo "load: $(uptime | sed 's/.*load average: //')"
