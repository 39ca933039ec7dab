#!/usr/bin/env python3
"""Adds a magnet to a Transmission RPC endpoint and times its download (bench/node/rpc-load.sh).

Usage: rpc_download.py URL MAGNET
       rpc_download.py URL --add-paused FILE.torrent
  One keep-alive connection: the X-Transmission-Session-Id handshake (409), torrent-add, then torrent-get
  percentDone every 20 ms until it is 1. Prints the seconds from torrent-add to the first answer saying 1.
  With --add-paused: adds FILE.torrent (base64 metainfo) paused and returns (bench/node/rpc-cost.sh).
Only 127.0.0.1/::1 URLs are accepted.
"""
import base64, http.client, json, sys, time
from urllib.parse import urlsplit


def main():
    url, magnet = sys.argv[1], sys.argv[2]
    u = urlsplit(url)
    if u.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("rpc_download.py: loopback URLs only")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    session = ""

    def rpc(method, arguments):
        nonlocal session
        body = json.dumps({"method": method, "arguments": arguments})
        while True:
            conn.request("POST", u.path, body, {"X-Transmission-Session-Id": session, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status == 409:
                session = r.getheader("X-Transmission-Session-Id")
                continue
            if r.status != 200:
                sys.exit(f"rpc_download.py: {method}: HTTP {r.status}")
            answer = json.loads(data)
            if answer["result"] != "success":
                sys.exit(f"rpc_download.py: {method}: {answer['result']}")
            return answer["arguments"]

    rpc("session-get", {"fields": ["version"]})  # the handshake, before the clock starts
    if magnet == "--add-paused":
        with open(sys.argv[3], "rb") as f:
            rpc("torrent-add", {"metainfo": base64.b64encode(f.read()).decode(), "paused": True})
        return
    t0 = time.perf_counter()
    rpc("torrent-add", {"filename": magnet})
    while True:
        torrents = rpc("torrent-get", {"fields": ["percentDone"]})["torrents"]
        if torrents and torrents[0]["percentDone"] == 1:
            break
        time.sleep(0.02)
    print(f"{time.perf_counter() - t0:.3f}")


main()
