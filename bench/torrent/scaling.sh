#!/usr/bin/env bash
# Swarm scaling: the seeder's upload is capped at U (Peerway's token bucket); N = 1, 4, 16 downloaders start together
# from a magnet link (DHT only, loopback) and the slowest one's time is compared with the Kumar-Ross lower bound
#   T_min = max(F/U, N*F/(U + sum u_i))  = F/U here (the downloaders' uploads are not capped),
# and with N HTTP clients fetching the same file from one HTTP server whose upload is capped at U, MEASURED in the same
# run: python3 -m http.server in a network namespace behind a veth whose egress is shaped by `tc tbf` at U, N curl
# clients in parallel from the root namespace. (tbf counts IP+TCP headers too, ~3% of a 1500-byte frame, so HTTP's
# payload rate is slightly below U; Peerway's bucket counts block payload only.)
# Needs root (ip netns, tc). Everything created is named tperf-* and removed on exit.
# Usage: bench/torrent/scaling.sh [SIZE_MIB=16] [U_KIB=2048] [N...=1 4 16]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-16}"; u_kib="${2:-2048}"; shift 2 2>/dev/null || shift $#
ns=("$@"); [ ${#ns[@]} -gt 0 ] || ns=(1 4 16)
"$here/peerway" --version >/dev/null
work="$(mktemp -d /tmp/tperf-scaling.XXXXXX)"
netns=tperf-http; host_if=tperf-h0; ns_if=tperf-h1; server_ip=10.213.0.2
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  ip netns del "$netns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The HTTP side: one server in a namespace, its egress shaped to U.
head -c "$((size_mib * 1048576))" /dev/urandom > "$work/file.bin"
ip netns add "$netns"
ip link add "$host_if" type veth peer name "$ns_if"
ip link set "$ns_if" netns "$netns"
ip addr add 10.213.0.1/24 dev "$host_if"; ip link set "$host_if" up
ip netns exec "$netns" ip addr add "$server_ip/24" dev "$ns_if"
ip netns exec "$netns" ip link set "$ns_if" up
ip netns exec "$netns" ip link set lo up
ip netns exec "$netns" tc qdisc add dev "$ns_if" root tbf rate "$((u_kib * 1024 * 8))bit" burst 64kb latency 100ms
ip netns exec "$netns" python3 -m http.server 8000 --bind "$server_ip" --directory "$work" >/dev/null 2>&1 & server_pid=$!
until curl -s -o /dev/null "http://$server_ip:8000/"; do sleep 0.1; done
# cpu seconds (user+sys) of a process from /proc
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{printf "%.1f", ($14+$15)/t}' "/proc/$1/stat"; }
http_run() { # N -> "slowest_s cpu_s"
  local n="$1" start end i
  local server_before; server_before="$(cpu_of "$server_pid")"
  start="$(date +%s.%N)"
  /usr/bin/time -f '%U %S' -o "$work/curl.time" bash -c '
    for i in $(seq 1 '"$n"'); do curl -s -o "'"$work"'/got.$i" -w "%{time_total}\n" "http://'"$server_ip"':8000/file.bin" > "'"$work"'/t.$i" & done; wait'
  for i in $(seq 1 "$n"); do cmp -s "$work/got.$i" "$work/file.bin" || { echo "HTTP client $i: WRONG CONTENT" >&2; exit 1; }; done
  local slowest; slowest="$(cat "$work"/t.* | sort -g | tail -1)"
  rm -f "$work"/t.* "$work"/got.*
  local hwm; hwm="$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$server_pid/status")"
  python3 -c "print(f'{$slowest:.2f}', f'{$(cpu_of "$server_pid")-$server_before+sum(map(float,open(\"$work/curl.time\").read().split())):.1f}/$hwm')"
}

bound="$(python3 -c "print(f'{$size_mib*1024/$u_kib:.2f}')")"
printf '%-4s %-10s %-8s %-7s %-15s %-10s %-15s %s\n' N peerway_s bound_s ratio cpu_s/peak_MiB http_s http_cpu/srv_MiB http/peerway
for n in "${ns[@]}"; do
  out="$(/usr/bin/time -f 'TIME %U %S %M' "$here/peerway" demo --peers "$n" --size-mib "$size_mib" --seeder-upload-limit "$u_kib" --seed 1 --timeout 900 2>&1 >/dev/stdout)"
  slowest="$(printf '%s\n' "$out" | awk '$6 == "MiB" && $3 ~ /^[0-9.]+$/ && $4 == "s" {print $3}' | sort -g | tail -1)"
  cpu="$(printf '%s\n' "$out" | awk '/^TIME/ {printf "%.1f/%.0f", $2+$3, $4/1024}')"
  read -r http http_cpu < <(http_run "$n")
  printf '%-4s %-10s %-8s %-7s %-15s %-10s %-15s %s\n' "$n" "$slowest" "$bound" "$(python3 -c "print(f'{$slowest/$bound:.2f}')")" "$cpu" \
    "$http" "$http_cpu" "$(python3 -c "print(f'{$http/$slowest:.1f}x')")"
done
