#!/usr/bin/env bash
# Time to first frame when streaming a video from a seeder capped at 2 MiB/s: `peerway stream` vs webtorrent-cli 4
# (issue 21, item 7). Usage (root: everything runs in a network namespace with loopback only, since WebTorrent's CLI
# always starts a DHT): bench/torrent/stream-ttff.sh [ROUNDS=5] [CAP_KIB=2048]
#   Makes a 12 s, ~30 MiB H.264 MP4 (ffmpeg testsrc + noise, +faststart, 32 KiB pieces) and a .torrent naming a
#   `peerway tracker`; one `peerway share --upload-limit CAP_KIB` seeds it for every run. Each round runs both clients,
#   interleaved, each from an empty directory: the client is started, and TTFF is the time from its start until
#   `ffmpeg -i URL -frames:v 1 -f null -` against its HTTP server has decoded a frame (retried while the server is not
#   up yet or the file is not known). Prints each run and the median of each client.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-5}"
cap="${2:-2048}"
ns="stream-bench-$$"
work="$(mktemp -d /tmp/stream-ttff.XXXXXX)"
webtorrent="$here/tests/interop-peers/node_modules/.bin/webtorrent"
[ -x "$webtorrent" ] || { echo "webtorrent-cli not installed: cd tests/interop-peers && npm install" >&2; exit 1; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }
"$here/peerway" --help >/dev/null   # builds the CLI once, outside the timings

ffmpeg -v error -y -f lavfi -i testsrc=size=640x360:rate=25 -t 12 -vf noise=alls=30:allf=t -c:v libx264 -preset ultrafast \
  -pix_fmt yuv420p -g 25 -movflags +faststart "$work/clip.mp4"
ip netns exec "$ns" "$here/peerway" tracker --port 6969 --bind 127.0.0.1 --interval 5 > "$work/tracker.out" 2>&1 & pids+=($!)
"$here/peerway" create "$work/clip.mp4" -o "$work/clip.torrent" --piece-size 32768 --tracker http://127.0.0.1:6969/announce > /dev/null
hash="$("$here/peerway" info "$work/clip.torrent" | awk '/^info-hash:/ {print $2}')"
ip netns exec "$ns" "$here/peerway" share "$work/clip.torrent" --content "$work/clip.mp4" --bind 127.0.0.1 --port 7001 --transport tcp \
  --upload-limit "$cap" > "$work/share.out" 2> "$work/share.err" & pids+=($!)
until [ -s "$work/share.out" ]; do sleep 0.1; done

now() { date +%s.%N; }
# Retries ffmpeg until it decodes one frame from $1; prints the seconds since $2.
first_frame() {
  local url="$1" t0="$2"
  until inns ffmpeg -v quiet -i "$url" -frames:v 1 -f null - 2>/dev/null; do
    sleep 0.05
    if (( $(echo "$(now) - $t0 > 120" | bc) )); then echo "timeout"; return; fi
  done
  echo "$(now) - $t0" | bc
}

run_peerway() {
  local dir="$work/pw-$1"; mkdir -p "$dir"
  local t0; t0="$(now)"
  ip netns exec "$ns" "$here/peerway" stream "$work/clip.torrent" -o "$dir" --bind 127.0.0.1 --port 0 --transport tcp --http 127.0.0.1:8100 \
    > "$dir.out" 2> "$dir.err" & local pid=$!
  until grep -q '^stream 0 ' "$dir.out" 2>/dev/null; do sleep 0.02; done
  local url; url="$(awk '/^stream 0 / {print $3}' "$dir.out")"
  first_frame "$url" "$t0"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_webtorrent() {
  local dir="$work/wt-$1"; mkdir -p "$dir"
  local t0; t0="$(now)"
  ip netns exec "$ns" "$webtorrent" download "$work/clip.torrent" -o "$dir" -p 8200 --torrent-port 7200 -q > "$dir.out" 2> "$dir.err" & local pid=$!
  first_frame "http://127.0.0.1:8200/0/clip.mp4" "$t0"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "load (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg)"
pw=(); wt=()
for round in $(seq 1 "$rounds"); do
  a="$(run_peerway "$round")"; pw+=("$a")
  b="$(run_webtorrent "$round")"; wt+=("$b")
  echo "round $round: peerway ${a} s, webtorrent ${b} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mp="$(median "${pw[@]}")"; mw="$(median "${wt[@]}")"
echo "median time to first frame: peerway ${mp} s, webtorrent-cli ${mw} s, ratio webtorrent/peerway $(echo "scale=2; $mw / $mp" | bc)"
echo "load (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
