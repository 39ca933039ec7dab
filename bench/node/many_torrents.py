#!/usr/bin/env python3
"""Drives a Transmission-RPC daemon holding many torrents and measures it (issue 18 item 9).

Usage: many_torrents.py make DIR COUNT SIZE_KIB
         writes DIR/content/tNNNN.bin (random) and DIR/torrents/tNNNN.torrent (single file, 16 KiB pieces).
       many_torrents.py measure RPC_URL PID DIR ACTIVE SECONDS CALLS
         adds every torrent of DIR/torrents over RPC (metainfo, download-dir DIR/content: the data is there, so each is
         verified and seeds), all but ACTIVE paused; waits until the ACTIVE ones are complete; then reports the
         daemon's RSS and CPU % over SECONDS (from /proc/PID) and the latency of CALLS torrent-get calls over all
         torrents with the fields clients ask (median and p90, ms).
Only loopback URLs are accepted.
"""
import base64, hashlib, json, os, sys, time, urllib.request, urllib.error
from urllib.parse import urlsplit

FIELDS = ["id", "hashString", "name", "status", "percentDone", "totalSize", "rateDownload", "rateUpload", "eta",
          "peersConnected", "uploadedEver", "downloadedEver", "error", "errorString", "addedDate", "doneDate",
          "leftUntilDone", "sizeWhenDone", "uploadRatio", "downloadDir", "isFinished", "queuePosition", "trackers",
          "files"]


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, str):
        return bencode(v.encode())
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


def make(root, count, size_kib):
    os.makedirs(f"{root}/content", exist_ok=True)
    os.makedirs(f"{root}/torrents", exist_ok=True)
    piece = 16 * 1024
    for i in range(count):
        name = f"t{i:04d}.bin"
        data = os.urandom(size_kib * 1024)
        with open(f"{root}/content/{name}", "wb") as f:
            f.write(data)
        pieces = b"".join(hashlib.sha1(data[o:o + piece]).digest() for o in range(0, len(data), piece))
        meta = {"info": {"name": name, "length": len(data), "piece length": piece, "pieces": pieces}}
        with open(f"{root}/torrents/t{i:04d}.torrent", "wb") as f:
            f.write(bencode(meta))


class Rpc:
    def __init__(self, url):
        if urlsplit(url).hostname not in ("127.0.0.1", "::1", "localhost"):
            sys.exit("loopback URLs only")
        self.url, self.sid = url, ""

    def call(self, method, **args):
        body = json.dumps({"method": method, "arguments": args}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.url, body, {"X-Transmission-Session-Id": self.sid, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.sid = e.headers["X-Transmission-Session-Id"]
        raise RuntimeError("no session id")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(url, pid, root, active, seconds, calls):
    rpc = Rpc(url)
    names = sorted(os.listdir(f"{root}/torrents"))
    t0 = time.time()
    for i, n in enumerate(names):
        meta = base64.b64encode(open(f"{root}/torrents/{n}", "rb").read()).decode()
        r = rpc.call("torrent-add", metainfo=meta, paused=i >= active, **{"download-dir": f"{root}/content"})
        if r["result"] != "success":
            sys.exit(f"torrent-add {n}: {r['result']}")
    added = time.time() - t0
    while True:
        ts = rpc.call("torrent-get", fields=["id", "percentDone", "status"])["arguments"]["torrents"]
        done = sum(1 for t in ts if t["percentDone"] >= 1 and t["status"] != 0)
        if len(ts) == len(names) and done >= active:
            break
        time.sleep(0.5)
    settled = time.time() - t0
    time.sleep(5)
    c0, w0 = cpu_seconds(pid), time.time()
    time.sleep(seconds)
    cpu = 100 * (cpu_seconds(pid) - c0) / (time.time() - w0)
    lat = []
    size = 0
    for _ in range(calls):
        s = time.perf_counter()
        r = rpc.call("torrent-get", fields=FIELDS)
        lat.append(1000 * (time.perf_counter() - s))
        size = len(json.dumps(r))
        assert len(r["arguments"]["torrents"]) == len(names)
    lat.sort()
    print(f"torrents {len(names)} active {active}: added in {added:.1f} s, settled in {settled:.1f} s; "
          f"idle-ish CPU {cpu:.1f} % over {seconds} s; RSS {rss_mib(pid):.0f} MiB; "
          f"torrent-get ({len(FIELDS)} fields, {size // 1024} KiB) median {lat[len(lat) // 2]:.1f} ms p90 {lat[int(len(lat) * 0.9)]:.1f} ms", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        measure(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
