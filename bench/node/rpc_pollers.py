#!/usr/bin/env python3
"""N concurrent Transmission RPC clients polling torrent-get, as web UIs and *arr apps do (issue 18 item 8).

Usage: rpc_pollers.py URL CLIENTS INTERVAL_S
  Each client keeps one HTTP/1.1 keep-alive connection, does the X-Transmission-Session-Id handshake (409) once and
  then asks torrent-get (the fields transmission-remote -l and the web UI ask) every INTERVAL_S seconds, starting at a
  random offset. Runs until SIGTERM/SIGINT, then prints one line: requests, errors, latency p50/p99 in ms, and this
  process's own CPU time per request (counted from the moment every client has had an answer). SIGUSR1 prints the same
line for the requests so far (bench/node/rpc-cost.sh reads the count at the start and end of its window).
bench/node/RpcPollers is the same clients in C#, at a fraction of this one's CPU.
Only 127.0.0.1/::1 URLs are accepted.
"""
import asyncio, json, random, signal, sys, time
from urllib.parse import urlsplit

FIELDS = ["id", "name", "status", "percentDone", "rateDownload", "rateUpload", "eta", "peersConnected",
          "totalSize", "uploadedEver", "downloadedEver", "error", "errorString", "addedDate", "doneDate", "leftUntilDone"]
BODY = json.dumps({"method": "torrent-get", "arguments": {"fields": FIELDS}}).encode()


async def client(host, port, path, interval, stop, stats):
    await asyncio.sleep(random.random() * interval)
    session = ""
    reader = writer = None
    while not stop.is_set():
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                    f"X-Transmission-Session-Id: {session}\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()
            t0 = time.perf_counter()
            writer.write(head + BODY)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, chunked = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                elif k.lower() == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif k.lower() == "x-transmission-session-id":
                    session = v.strip()
            if chunked:
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            if status == 409:
                continue
            if status != 200:
                stats["errors"] += 1
            else:
                stats["lat"].append(time.perf_counter() - t0)
                if stats["warm"] is None and len(stats["lat"]) >= stats["clients"]:
                    stats["warm"] = (len(stats["lat"]), time.process_time())
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            stats["errors"] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(1)
            continue
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
    if writer is not None:
        writer.close()


async def main():
    url, clients, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    u = urlsplit(url)
    if u.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("rpc_pollers.py: loopback URLs only")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    stats = {"errors": 0, "lat": [], "clients": clients, "warm": None}
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(summary(stats), flush=True))
    print("pollers started", flush=True)
    await asyncio.gather(*(client(u.hostname, u.port, u.path, interval, stop, stats) for _ in range(clients)))
    print(summary(stats), flush=True)


def summary(stats):
    lat = sorted(stats["lat"])
    pct = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    warm = stats["warm"]
    cpu = 1e6 * (time.process_time() - warm[1]) / (len(lat) - warm[0]) if warm and len(lat) > warm[0] else float("nan")
    return f"requests {len(lat)} errors {stats['errors']} p50_ms {pct(0.5):.1f} p99_ms {pct(0.99):.1f} cpu_us_per_request {cpu:.0f}"


asyncio.run(main())
