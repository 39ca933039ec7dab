#!/usr/bin/env python3
"""WebTorrent benchmark (issue 16 item 7), on loopback, in interleaved rounds:
  A. `peerway share` seeds a file; webtorrent 2.x in headless Chromium downloads it over WebRTC;
  B. a second headless Chromium running webtorrent seeds the same file; the first browser downloads it;
  C. a headless Chromium running webtorrent seeds the same file; `peerway get <its magnet>` downloads it over WebRTC
     (time from starting `peerway get` to its first verified piece on disk and to its exit, process start included).
All through `peerway tracker` (WebSocket). Per round: seconds for the whole file and milliseconds from `client.add`
to the first verified piece; the downloader's SHA-256 is checked. Prints medians and the ratio B/A (>1: Peerway faster),
then the connection set-up step by step (ms after `client.add`, medians): the pages' RTCPeerConnection/WebSocket events
and getStats(), webtorrent's events, and the set-up line `peerway share -v` logs for each WebRTC peer.
Usage: bench/webtorrent/browser.py [ROUNDS=3] [MIB=64]
Needs /usr/bin/chromium and tests/interop-peers/node_modules (./test.sh installs both).
"""
import datetime, hashlib, http.server, json, os, queue, re, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUNDLE = os.path.join(ROOT, "tests/interop-peers/node_modules/webtorrent/dist/webtorrent.min.js")
CHROMIUM = os.environ.get("PEERWAY_CHROMIUM", "/usr/bin/chromium")

# Set-up profile: a classic script (it runs before the module, so before the bundle captures WebSocket) wraps
# RTCPeerConnection and WebSocket to stamp each step of every connection with the wall clock (performance.timeOrigin +
# performance.now(), comparable with Peerway's log timestamps on this machine), as chrome://webrtc-internals would;
# at the data channel's opening the page also keeps the selected candidate pair's getStats().
TRACE = """<script>
const now = () => performance.timeOrigin + performance.now();
window.marks = {};
window.pcs = [];
window.mark = (name) => { window.marks[name] ??= now(); };
const NativePC = RTCPeerConnection;
window.RTCPeerConnection = class extends NativePC {
  constructor(...args) {
    super(...args);
    const t = { created: now() };
    const at = (name) => { t[name] ??= now(); };
    this.trace = t;
    window.pcs.push(t);
    const hook = () => {
      const sctp = this.sctp;
      if (!sctp || sctp.traced) return;
      sctp.traced = true;
      sctp.addEventListener('statechange', () => at('sctp-' + sctp.state));
      sctp.transport.addEventListener('statechange', () => at('dtls-' + sctp.transport.state));
      sctp.transport.iceTransport.addEventListener('selectedcandidatepairchange', () => at('ice-selected'));
    };
    this.addEventListener('icegatheringstatechange', () => at('gathering-' + this.iceGatheringState));
    this.addEventListener('iceconnectionstatechange', () => at('ice-' + this.iceConnectionState));
    this.addEventListener('connectionstatechange', () => at('pc-' + this.connectionState));
    const opened = (ch) => {
      const done = async () => {
        at('channel-open');
        const stats = await this.getStats();
        stats.forEach(r => {
          if (r.type === 'candidate-pair' && r.nominated) t.pair = { requestsSent: r.requestsSent, responsesReceived: r.responsesReceived, requestsReceived: r.requestsReceived, rtt: r.currentRoundTripTime };
          if (r.type === 'transport') t.dtls = { state: r.dtlsState, role: r.dtlsRole, cipher: r.dtlsCipher };
        });
      };
      if (ch.readyState === 'open') done(); else ch.addEventListener('open', done);
    };
    this.addEventListener('datachannel', e => { at('channel-in'); opened(e.channel); });
    const createDataChannel = this.createDataChannel.bind(this);
    this.createDataChannel = (...a) => { const ch = createDataChannel(...a); opened(ch); return ch; };
    for (const [name, step] of [['createOffer', 'offer-created'], ['createAnswer', 'answer-created']]) {
      const f = this[name].bind(this);
      this[name] = async (...a) => { const r = await f(...a); at(step); return r; };
    }
    for (const [name, step] of [['setLocalDescription', 'local-set'], ['setRemoteDescription', 'remote-set']]) {
      const f = this[name].bind(this);
      this[name] = async (d, ...a) => {
        if (name === 'setRemoteDescription' && d) at(d.type + '-received');
        const r = await f(d, ...a); at(step); hook(); return r;
      };
    }
  }
};
const NativeWS = WebSocket;
window.WebSocket = class extends NativeWS {
  constructor(...args) {
    super(...args);
    this.addEventListener('open', () => mark('ws-open'));
    this.addEventListener('message', e => {
      if (typeof e.data !== 'string') return;
      if (e.data.includes('"offer"')) mark('ws-offer-in');
      if (e.data.includes('"answer"')) mark('ws-answer-in');
    });
  }
  send(data) {
    if (typeof data === 'string' && data.includes('"offers"')) mark('ws-announce');
    if (typeof data === 'string' && data.includes('"answer"')) mark('ws-answer-out');
    super.send(data);
  }
};
</script>"""

PAGE = TRACE + """<script type=module>
import WebTorrent from '/webtorrent.min.js';
const post = (path, r) => fetch(path, { method: 'POST', body: JSON.stringify(r) });
const job = await (await fetch('/job' + location.search)).json();
try {
  const client = new WebTorrent();
  if (job.role === 'seed') {
    const bytes = new Uint8Array(await (await fetch('/file')).arrayBuffer());
    const file = new File([bytes], 'payload.bin');
    client.seed(file, { announce: [job.tracker], name: 'payload.bin' }, t => {
      t.on('wire', () => mark('bt-handshake'));
      t.once('upload', () => { mark('first-upload'); post('/seedtrace', { marks, pcs }); });
      post('/seeding', { magnet: t.magnetURI });
    });
  } else {
    const started = performance.now();
    mark('add');
    let first = null;
    const t = client.add(job.magnet, { announce: [job.tracker] });
    t.on('wire', wire => {
      mark('bt-handshake');
      wire.once('unchoke', () => mark('unchoke'));
    });
    t.on('metadata', () => mark('metadata'));
    t.on('ready', () => mark('ready'));
    t.once('download', () => mark('first-block'));
    t.on('download', () => {
      for (const mib of [1, 4, 16]) if (t.received >= mib << 20) mark(mib + '-mib');
    });
    t.on('verified', () => { first ??= performance.now() - started; mark('first-piece'); });
    await new Promise((resolve, reject) => { t.on('done', resolve); t.on('error', reject); client.on('error', reject); });
    const ms = performance.now() - started;
    const bytes = await t.files[0].arrayBuffer();
    const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map(b => b.toString(16).padStart(2, '0')).join('');
    await post('/result', { ms, first, sha, peers: t.numPeers, marks, pcs });
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
    """The next post to `path`; posts to other paths are kept in posts.kept for a later call."""
    for k, (p, body) in enumerate(posts.kept):
        if p == path:
            del posts.kept[k]
            return body
    deadline = time.time() + timeout
    while True:
        p, body = posts.get(timeout=max(0.1, deadline - time.time()))
        if "error" in body:
            raise RuntimeError(body["error"])
        if p == path:
            return body
        posts.kept.append((p, body))


def peerway_get(pw, magnet, out, timeout=300):
    """Runs `peerway get`; returns (ms to exit, ms to the first verified piece, the downloaded file). Peerway writes a
    piece only once it is verified, into a sparse file (ftruncate), so the first allocated block marks the first piece."""
    t0 = time.monotonic()
    p = subprocess.Popen([pw, "get", magnet, "-o", out, "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first, path = None, None
    try:
        while p.poll() is None:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("peerway get did not finish")
            if first is None:
                for dirpath, dirs, files in os.walk(out):
                    dirs[:] = [d for d in dirs if d != ".peerway"]
                    for f in files:
                        try:
                            if os.stat(os.path.join(dirpath, f)).st_blocks > 0 and first is None:
                                first, path = time.monotonic(), os.path.join(dirpath, f)
                        except FileNotFoundError:
                            pass
            time.sleep(0.005)
    finally:
        stop(p)
    done = time.monotonic()
    if p.returncode != 0:
        raise RuntimeError(f"peerway get exited {p.returncode}")
    if path is None:
        path = next(os.path.join(d, f) for d, ds, fs in os.walk(out) if ".peerway" not in d for f in fs)
    return (done - t0) * 1000, (first - t0) * 1000 if first else float("nan"), path


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# The set-up, step by step, in ms after the downloader's `client.add`: (row, side, key). Side "d" is the downloading
# browser; "s" the seeder (Peerway's log line, or the seeding browser's page). Keys name the first time a step happened
# on the connection that opened a data channel first ("pc:" keys) or in the page ("page:" keys).
PHASES = [
    ("tracker socket open", "d", "page:ws-open"),
    ("announce with offers sent", "d", "page:ws-announce"),
    ("offer reaches the seeder", "s", "offer"),
    ("answer made (candidates in it)", "s", "answer"),
    ("answer reaches the downloader", "d", "pc:answer-received"),
    ("seeder: first ICE check received", "s", "ice-request"),
    ("seeder: first ICE check sent", "s", "ice-check"),
    ("seeder: first pair valid", "s", "ice-success"),
    ("seeder: ICE pair selected", "s", "ice-selected"),
    ("downloader: ICE connected", "d", "pc:ice-connected"),
    ("seeder: DTLS done", "s", "dtls"),
    ("downloader: DTLS connected", "d", "pc:dtls-connected"),
    ("seeder: SCTP established", "s", "sctp"),
    ("downloader: SCTP connected", "d", "pc:sctp-connected"),
    ("seeder: data channel open", "s", "channel"),
    ("downloader: data channel open", "d", "pc:channel-open"),
    ("BitTorrent handshake (downloader)", "d", "page:bt-handshake"),
    ("metadata event", "d", "page:metadata"),
    ("unchoked", "d", "page:unchoke"),
    ("first block received", "d", "page:first-block"),
    ("torrent ready (store made)", "d", "page:ready"),
    ("first piece verified", "d", "page:first-piece"),
    ("1 MiB received", "d", "page:1-mib"),
    ("4 MiB received", "d", "page:4-mib"),
    ("16 MiB received", "d", "page:16-mib"),
]

# Peerway's log line: "... set-up: created 2026-12-06T21:00:00.1234567+00:00, remote-description +1.2 ms, ..., channel +9.9 ms"
PEERWAY_STEPS = {"remote-description": "offer", "local-description": "answer", "ice-first-request": "ice-request", "ice-first-check": "ice-check",
                 "ice-first-success": "ice-success", "ice-selected": "ice-selected", "dtls": "dtls", "sctp": "sctp", "channel": "channel"}


def first_pc(pcs):
    """The page's connection whose data channel opened first (WebTorrent keeps one per peer)."""
    opened = [pc for pc in pcs if "channel-open" in pc]
    return min(opened, key=lambda pc: pc["channel-open"]) if opened else {}


def peerway_steps(log):
    """Epoch-ms of each step of the first WebRTC connection Peerway handed to its session, from its stderr."""
    for line in log.splitlines():
        m = re.search(r"connected \((our|their) offer\); set-up: created (\S+), (.*)$", line)
        if not m:
            continue
        created = datetime.datetime.fromisoformat(m.group(2).rstrip(",")).timestamp() * 1000
        steps = {"direction": m.group(1)}
        for name, ms in re.findall(r"([a-z-]+) \+([0-9.]+) ms", m.group(3)):
            if name in PEERWAY_STEPS:
                steps[PEERWAY_STEPS[name]] = created + float(ms)
        return steps
    return {}


def browser_seed_steps(trace):
    pc = first_pc(trace.get("pcs", []))
    marks = trace.get("marks", {})
    return {"offer": pc.get("offer-received"), "answer": marks.get("ws-answer-out"), "ice-selected": pc.get("ice-selected"),
            "dtls": pc.get("dtls-connected"), "sctp": pc.get("sctp-connected"), "channel": pc.get("channel-open")}


def phases(res, seeder):
    """Row -> ms after client.add, for one round."""
    add = res["marks"]["add"]
    pc = first_pc(res.get("pcs", []))
    out = {}
    for row, side, key in PHASES:
        if side == "s":
            v = seeder.get(key)
        elif key.startswith("pc:"):
            v = pc.get(key[3:])
        else:
            v = res["marks"].get(key[5:])
        if v is not None:
            out[row] = v - add
    return out


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
    posts.kept = []
    srv = serve(jobs, posts, payload)
    base = f"http://127.0.0.1:{srv.server_address[1]}/"
    tport = free_port()
    tracker = f"ws://127.0.0.1:{tport}"
    pw = os.path.join(ROOT, "peerway")
    trk = subprocess.Popen([pw, "tracker", "--port", str(tport), "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    trk.stdout.readline()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; {mib} MiB; {rounds} rounds; load before: {open('/proc/loadavg').read().split()[:3]}")
    results = {"peerway": [], "browser": [], "get": []}
    profile = {"peerway": [], "browser": []}
    try:
        for r in range(rounds):
            kinds = ("peerway", "browser", "get")
            for kind in kinds[r % 3:] + kinds[:r % 3]:
                procs = []
                seed_log = os.path.join(tmp, f"share{r}.log")
                try:
                    if kind == "peerway":
                        # -v: the set-up line ("WebRTC peer … connected … set-up: …") is logged at Information.
                        with open(seed_log, "w") as err:
                            seeder = subprocess.Popen([pw, "share", src, "--tracker", tracker, "--bind", "127.0.0.1", "-v"], stdout=subprocess.PIPE, stderr=err, text=True)
                        procs.append(seeder)
                        magnet = seeder.stdout.readline().strip()
                    else:
                        jobs[f"s{r}"] = {"role": "seed", "tracker": tracker}
                        procs.append(chromium(base + f"?s{r}", os.path.join(tmp, f"seed{r}")))
                        magnet = wait_post(posts, "/seeding")["magnet"]
                    if kind == "get":
                        ms, first_ms, path = peerway_get(pw, magnet, os.path.join(tmp, f"pwget{r}"))
                        with open(path, "rb") as f:
                            if hashlib.sha256(f.read()).hexdigest() != sha:
                                raise RuntimeError("peerway get: SHA-256 mismatch")
                        results["get"].append({"ms": ms, "first": first_ms})
                        wait_post(posts, "/seedtrace", timeout=10)  # the seeding page's trace, not needed here
                        print(f"round {r + 1} a browser seeds, peerway get: {ms / 1000:6.2f} s ({mib / (ms / 1000):6.1f} MiB/s), first piece {first_ms:6.0f} ms after the command started", flush=True)
                        continue
                    jobs[f"d{r}{kind}"] = {"role": "get", "tracker": tracker, "magnet": magnet}
                    procs.append(chromium(base + f"?d{r}{kind}", os.path.join(tmp, f"get{r}{kind}")))
                    res = wait_post(posts, "/result")
                    if res["sha"] != sha:
                        raise RuntimeError(f"{kind}: SHA-256 mismatch")
                    results[kind].append(res)
                    if kind == "peerway":
                        stop(procs.pop(0))
                        seeder_steps = peerway_steps(open(seed_log).read())
                    else:
                        seeder_steps = browser_seed_steps(wait_post(posts, "/seedtrace", timeout=10))
                    ph = phases(res, seeder_steps)
                    profile[kind].append(ph)
                    print(f"round {r + 1} {kind:8} seeds: {res['ms'] / 1000:6.2f} s ({mib / (res['ms'] / 1000):6.1f} MiB/s), first piece {res['first']:6.0f} ms, {res['peers']} peer(s); "
                          + ", ".join(f"{k} {v:.0f}" for k, v in ph.items()), flush=True)
                finally:
                    for p in procs:
                        stop(p)
        med = {k: statistics.median(x["ms"] for x in v) for k, v in results.items()}
        first = {k: statistics.median(x["first"] for x in v) for k, v in results.items()}
        print(f"median: Peerway seeds {med['peerway'] / 1000:.2f} s, a browser seeds {med['browser'] / 1000:.2f} s; "
              f"ratio (browser time / Peerway time) {med['browser'] / med['peerway']:.2f}x")
        print(f"median first piece: from Peerway {first['peerway']:.0f} ms, from a browser {first['browser']:.0f} ms")
        print(f"median `peerway get` from a browser seeder: {med['get'] / 1000:.2f} s, first piece {first['get']:.0f} ms after the command started")
        print("\nset-up, ms after client.add (median of the rounds that saw the step):\n")
        print("| step | Peerway seeds | a browser seeds |\n| --- | ---: | ---: |")
        for row, _, _ in PHASES:
            cells = []
            for kind in ("peerway", "browser"):
                xs = [ph[row] for ph in profile[kind] if row in ph]
                cells.append(f"{statistics.median(xs):,.0f}" if xs else "–")
            print(f"| {row} | {cells[0]} | {cells[1]} |")
        print(f"\nload after: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        stop(trk)
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
