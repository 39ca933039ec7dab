#!/usr/bin/env bash
# Installs what the tests need (Debian packages, npm peers) when missing, then runs every test.
# Under CI=true the interop tests treat a missing peer as a failure, so installation errors are fatal here too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ci="${CI:-false}"

# Third-party programs the interop tests drive (package -> a command it provides, or a probe command that succeeds
# once it is installed, such as a Python module's import).
declare -A apt_peers=(
  [aria2]=aria2c
  [transmission-cli]=transmission-cli
  [transmission-daemon]=transmission-daemon
  [coturn]=turnutils_stunclient
  [chromium]=chromium
  [iproute2]=ip
  [iptables]=iptables
  [ffmpeg]=ffprobe
  [python3-libtorrent]="tests/interop-peers/lt-peer.py probe"
  [microsocks]=microsocks
  [dante-server]=danted
)

missing=()
for pkg in "${!apt_peers[@]}"; do
  probe="${apt_peers[$pkg]}"
  if [[ "$probe" == *" "* ]]; then $probe >/dev/null 2>&1 || missing+=("$pkg")
  else command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 \
      || { echo "test.sh: apt-get install failed" >&2; [ "$ci" = true ] && exit 1; }
  else
    echo "test.sh: not root; cannot install ${missing[*]} (interop tests needing them will fail under CI=true)" >&2
    [ "$ci" = true ] && exit 1
  fi
fi
# coturn's package starts a server by default; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop coturn >/dev/null 2>&1 || true; fi

# npm peers (bittorrent-dht, webtorrent-cli@4, ipfs-unixfs-importer, Helia ...), pinned by package-lock.json.
peers=tests/interop-peers
if [ ! -d "$peers/node_modules" ] || [ "$peers/package.json" -nt "$peers/node_modules/.installed" ]; then
  echo "test.sh: installing npm peers" >&2
  # `npm install` (not `npm ci`): webtorrent-cli@4 has an optional dependency (airplay-js) that the registry does not
  # resolve, so the lock file cannot list it and `npm ci` refuses; `npm install` follows the lock for everything else.
  ( cd "$peers" && npm install --no-audit --no-fund --ignore-scripts >&2 ) \
    || { echo "test.sh: npm install failed" >&2; [ "$ci" = true ] && exit 1; }
  touch "$peers/node_modules/.installed"
fi

export PEERWAY_ROOT="$PWD"
# BEP 14 multicast would leave the machine on its default interface: off unless a test turns it on (in namespaces).
export PEERWAY_LSD=off
# One build of everything (analyzers on, warnings are errors), then the tests without building again. The interop
# tests call ./peerway; it runs the CLI this build just made (PEERWAY_CLI_BUILD) instead of compiling every src/
# project a second time in its own ReadyToRun publish (docs/BENCHMARKS.md, "CI duration").
echo "test.sh: building the solution ($(date -u +%T) UTC)" >&2
dotnet build Peerway.sln -c Release --nologo -v quiet
export PEERWAY_CLI_BUILD="$PWD/src/Peerway.Cli/bin/Release/net10.0"
./peerway --version >/dev/null

# Issue 14: the virtual-time swarms (100 and 1,000 clients) append their completion time against the Kumar–Ross bound
# here; it is printed after the tests, since `dotnet test` shows a passing test's output only at higher verbosity.
export PEERWAY_SWARM_REPORT="$(mktemp /tmp/peerway-swarm-report.XXXXXX)"
trap 'rm -f "$PEERWAY_SWARM_REPORT"' EXIT
echo "test.sh: running the tests ($(date -u +%T) UTC)" >&2
dotnet test Peerway.sln -c Release --nologo --no-build "$@"
echo "test.sh: tests done ($(date -u +%T) UTC)" >&2
sed 's/^/test.sh: Kumar–Ross swarm, /' "$PEERWAY_SWARM_REPORT" >&2

# The NuGet packages (every library under src/, the CLI as a dotnet tool) from the build the tests just used.
rm -rf artifacts/packages
dotnet pack Peerway.sln -c Release --nologo -v quiet --no-build
echo "test.sh: packages in artifacts/packages: $(ls artifacts/packages | tr '\n' ' ')" >&2
