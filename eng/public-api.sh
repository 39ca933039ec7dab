#!/usr/bin/env bash
# Writes a project's PublicAPI.Unshipped.txt from its current public surface (Microsoft.CodeAnalysis.PublicApiAnalyzers):
# builds it with the declared API emptied, collects every RS0016 "Symbol '…' is not part of the declared public API"
# and writes the sorted symbols. Review the diff: each line is a promise to users.
#   eng/public-api.sh src/Peerway.Core [src/Peerway.Dht ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for dir in "$@"; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  [ -f "$dir/$name.csproj" ] || { echo "public-api.sh: no $dir/$name.csproj" >&2; exit 2; }
  [ -f "$dir/PublicAPI.Shipped.txt" ] || printf '#nullable enable\n' >"$dir/PublicAPI.Shipped.txt"
  printf '#nullable enable\n' >"$dir/PublicAPI.Unshipped.txt"
  log="$(mktemp)"
  # Only this project's symbols; RS0016 as a warning so that one build lists them all.
  dotnet build "$dir/$name.csproj" -c Release --nologo -v q --no-incremental -p:TreatWarningsAsErrors=false \
    -p:WarningsAsErrors= >"$log" 2>&1 || true
  { printf '#nullable enable\n'
    grep -F "$dir/" "$log" | grep -oP "RS0016: Symbol '\K.*(?=' is not part of the declared public API)" \
      | sed "s/''/'/g" | LC_ALL=C sort -u
  } >"$dir/PublicAPI.Unshipped.txt"
  echo "$dir: $(($(wc -l <"$dir/PublicAPI.Unshipped.txt") - 1)) public symbols" >&2
  rm -f "$log"
done
