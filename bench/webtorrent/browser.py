#!/usr/bin/env python3
"""WebTorrent benchmark (issue 16 item 7), on loopback, in interleaved rounds:
  A. `peerway share` seeds a file; webtorrent 2.x in headless Chromium downloads it over WebRTC;
  B. a second headless Chromium running webtorrent seeds the same file; the first browser downloads it.
Both through `peerway tracker` (WebSocket). Per round: seconds for the whole file and milliseconds from `client.add`
to the first verified piece; the downloader's SHA-256 is checked. Prints medians and the ratio B/A (>1: Peerway faster).
Usage: bench/webtorrent/browser.py [ROUNDS=3] [MIB=64]
Needs /usr/bin/chromium and tests/interop-peers/node_modules (./test.sh installs both).
"""
import hashlib, http.server, json, os, queue, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "tests/interop-peers/node_modules/webtorrent/dist/webtorrent.min.js")
CHROMIUM = os.environ.get("PEERWAY_CHROMIUM", "/usr/bin/chromium")

PAGE = """<!doctype html><meta charset=utf-8><script type=module>
import WebTorrent from '/webtorrent.min.js';
const post = (path, r) => fetch(path, { method: 'POST', body: JSON.stringify(r) });
const job = await (await fetch('/job' + location.search)).json();
try {
  const client = new WebTorrent();
  if (job.role === 'seed') {
    const bytes = new Uint8Array(await (await fetch('/file')).arrayBuffer());
    const file = new File([bytes], 'payload.bin');
    client.seed(file, { announce: [job.tracker], name: 'payload.bin' }, t => post('/seeding', { magnet: t.magnetURI }));
  } else {
    const started = performance.now();
    let first = null;
    const t = client.add(job.magnet, { announce: [job.tracker] });
    t.on('verified', () => { first ??= performance.now() - started; });
    await new Promise((resolve, reject) => { t.on('done', resolve); t.on('error', reject); client.on('error', reject); });
    const ms = performance.now() - started;
    const bytes = await t.files[0].arrayBuffer();
    const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map(b => b.toString(16).padStart(2, '0')).join('');
    await post('/result', { ms, first, sha, peers: t.numPeers });
    client.destroy();
  }
} catch (e) { await post('/result', { error: String(e && e.message || e) }); }
</script>"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(jobs, posts, payload):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, body, ctype):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path, _, q = self.path.partition("?")
            if path == "/":
                self.reply(PAGE.encode(), "text/html")
            elif path == "/webtorrent.min.js":
                self.reply(open(BUNDLE, "rb").read(), "text/javascript")
            elif path == "/file":
                self.reply(payload, "application/octet-stream")
            elif path == "/job":
                self.reply(json.dumps(jobs[q]).encode(), "application/json")
            else:
                self.send_response(404)
                self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()
            posts.put((self.path, json.loads(body)))

    srv = Server(("127.0.0.1", free_port()), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def chromium(url, profile):
    return subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                             "--disable-background-networking", "--disable-component-update", "--user-data-dir=" + profile, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_post(posts, path, timeout=300):
    deadline = time.time() + timeout
    while True:
        p, body = posts.get(timeout=max(0.1, deadline - time.time()))
        if p == path or "error" in body:
            if "error" in body:
                raise RuntimeError(body["error"])
            return body


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    tmp = tempfile.mkdtemp(prefix="pw-wt-bench-")
    payload = os.urandom(mib << 20)
    sha = hashlib.sha256(payload).hexdigest()
    src = os.path.join(tmp, "payload.bin")
    with open(src, "wb") as f:
        f.write(payload)
    jobs, posts = {}, queue.Queue()
    srv = serve(jobs, posts, payload)
    base = f"http://127.0.0.1:{srv.server_address[1]}/"
    tport = free_port()
    tracker = f"ws://127.0.0.1:{tport}"
    pw = os.path.join(ROOT, "peerway")
    trk = subprocess.Popen([pw, "tracker", "--port", str(tport), "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    trk.stdout.readline()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; {mib} MiB; {rounds} rounds; load before: {open('/proc/loadavg').read().split()[:3]}")
    results = {"peerway": [], "browser": []}
    try:
        for r in range(rounds):
            for kind in ("peerway", "browser") if r % 2 == 0 else ("browser", "peerway"):
                procs = []
                try:
                    if kind == "peerway":
                        seeder = subprocess.Popen([pw, "share", src, "--tracker", tracker, "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                        procs.append(seeder)
                        magnet = seeder.stdout.readline().strip()
                    else:
                        jobs[f"s{r}"] = {"role": "seed", "tracker": tracker}
                        procs.append(chromium(base + f"?s{r}", os.path.join(tmp, f"seed{r}")))
                        magnet = wait_post(posts, "/seeding")["magnet"]
                    jobs[f"d{r}{kind}"] = {"role": "get", "tracker": tracker, "magnet": magnet}
                    procs.append(chromium(base + f"?d{r}{kind}", os.path.join(tmp, f"get{r}{kind}")))
                    res = wait_post(posts, "/result")
                    if res["sha"] != sha:
                        raise RuntimeError(f"{kind}: SHA-256 mismatch")
                    results[kind].append(res)
                    print(f"round {r + 1} {kind:8} seeds: {res['ms'] / 1000:6.2f} s ({mib / (res['ms'] / 1000):6.1f} MiB/s), first piece {res['first']:6.0f} ms, {res['peers']} peer(s)", flush=True)
                finally:
                    for p in procs:
                        stop(p)
        med = {k: statistics.median(x["ms"] for x in v) for k, v in results.items()}
        first = {k: statistics.median(x["first"] for x in v) for k, v in results.items()}
        print(f"median: Peerway seeds {med['peerway'] / 1000:.2f} s, a browser seeds {med['browser'] / 1000:.2f} s; "
              f"ratio (browser time / Peerway time) {med['browser'] / med['peerway']:.2f}x")
        print(f"median first piece: from Peerway {first['peerway']:.0f} ms, from a browser {first['browser']:.0f} ms")
        print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        stop(trk)
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
