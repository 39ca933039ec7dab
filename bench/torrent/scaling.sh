#!/usr/bin/env bash
# Swarm scaling: the seeder's upload is capped at U (Peerway's token bucket); N = 1, 4, 16 downloaders start together
# from a magnet link (DHT only, loopback) and the slowest one's time is compared with the Kumar-Ross lower bound
#   T_min = max(F/U, N*F/(U + sum u_i))  = F/U here (the downloaders' uploads are not capped),
# and with one HTTP server capped at U serving N clients (N*F/U, computed, not measured).
# Usage: bench/torrent/scaling.sh [SIZE_MIB=16] [U_KIB=2048] [N...=1 4 16]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${1:-16}"; u_kib="${2:-2048}"; shift 2 2>/dev/null || shift $#
ns=("$@"); [ ${#ns[@]} -gt 0 ] || ns=(1 4 16)
"$here/peerway" --version >/dev/null
bound="$(python3 -c "print(f'{$size_mib*1024/$u_kib:.2f}')")"
printf '%-4s %-10s %-10s %-8s %-14s %s\n' N slowest_s bound_s ratio http_N*F/U_s cpu_s/peak_MiB
for n in "${ns[@]}"; do
  out="$(/usr/bin/time -f 'TIME %U %S %M' "$here/peerway" demo --peers "$n" --size-mib "$size_mib" --seeder-upload-limit "$u_kib" --seed 1 --timeout 900 2>&1 >/dev/stdout)"
  slowest="$(printf '%s\n' "$out" | awk '$6 == "MiB" && $3 ~ /^[0-9.]+$/ && $4 == "s" {print $3}' | sort -g | tail -1)"
  cpu="$(printf '%s\n' "$out" | awk '/^TIME/ {printf "%.1f/%.0f", $2+$3, $4/1024}')"
  printf '%-4s %-10s %-10s %-8s %-14s %s\n' "$n" "$slowest" "$bound" "$(python3 -c "print(f'{$slowest/$bound:.2f}')")" \
    "$(python3 -c "print(f'{$n*$size_mib*1024/$u_kib:.1f}')")" "$cpu"
done
