// werift (a pure TypeScript WebRTC stack) as a peer for the WebRTC benchmark (bench/webrtc/throughput.sh, RtcBench.cs).
//   node werift-bench.mjs self COUNT SIZE     werift -> werift in this process: prints `result {json}`
//   node werift-bench.mjs offer send|recv COUNT SIZE
//       offers one reliable ordered channel: prints `offer <JSON sdp>`, reads `answer <JSON sdp>` on stdin, prints
//       `open <ms from createOffer to open>`, then sends COUNT messages of SIZE bytes (send) or receives COUNT messages
//       and prints `result {json}` (recv); exits when stdin ends.
// The receiver times from its first message to its last: bytes after the first message / that time.
import { RTCPeerConnection } from "werift";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";

const [mode, ...rest] = process.argv.slice(2);
const newPc = () => new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ["127.0.0.1"], iceUseIpv6: false });

async function gathered(pc) {
  if (pc.iceGatheringState === "complete") return;
  await pc.iceGatheringStateChange.watch((s) => s === "complete");
}

async function opened(dc) {
  if (dc.readyState !== "open") await dc.stateChanged.watch((s) => s === "open", 30000);
}

// Sends with back-pressure: waits for bufferedAmountLow when more than 256 KiB is queued. (The browser pages and
// Peerway allow 4 MiB; werift 0.25.2 stalls for good with ~1 MiB of 1 KiB messages queued, so it gets less.)
async function sendAll(dc, count, size) {
  const b = randomBytes(size);
  dc.bufferedAmountLowThreshold = 64 << 10;
  for (let i = 0; i < count; i++) {
    if (dc.bufferedAmount > 256 << 10) await dc.bufferedAmountLow.asPromise();
    dc.send(b);
  }
}

function receiveAll(dc, count) {
  return new Promise((resolve) => {
    let n = 0, bytes = 0, first = 0, firstBytes = 0;
    dc.onMessage.subscribe((m) => {
      const now = performance.now();
      if (n === 0) { first = now; firstBytes = m.length; }
      n++; bytes += m.length;
      if (n === count) {
        const ms = now - first;
        resolve({ messages: n, bytes, ms, mbps: (bytes - firstBytes) / ms / 1000, messagesPerSecond: (n - 1) / ms * 1000 });
      }
    });
  });
}

if (mode === "self") {
  const [count, size] = rest.map(Number);
  const a = newPc(), b = newPc();
  const started = performance.now();
  const dc = a.createDataChannel("bench", { ordered: true });
  const remote = new Promise((resolve) => b.onDataChannel.subscribe(resolve));
  await a.setLocalDescription(await a.createOffer());
  await gathered(a);
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await gathered(b);
  await a.setRemoteDescription(b.localDescription);
  await opened(dc);
  const setupMs = performance.now() - started;
  const rx = await remote;
  const result = receiveAll(rx, count);
  await sendAll(dc, count, size);
  console.log("result " + JSON.stringify({ ...(await result), setupMs }));
  await a.close(); await b.close();
  process.exit(0);
} else if (mode === "offer") {
  const [direction, countArg, sizeArg] = rest;
  const count = Number(countArg), size = Number(sizeArg);
  const pc = newPc();
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const started = performance.now();
  const dc = pc.createDataChannel("bench", { ordered: true });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  console.log("offer " + JSON.stringify(pc.localDescription.sdp));
  const line = (await lines.next()).value;
  await pc.setRemoteDescription({ type: "answer", sdp: JSON.parse(line.slice("answer ".length)) });
  await opened(dc);
  console.log(`open ${performance.now() - started}`);
  if (direction === "send") await sendAll(dc, count, size);
  else console.log("result " + JSON.stringify(await receiveAll(dc, count)));
  while (!(await lines.next()).done) { /* until stdin ends */ }
  await pc.close();
  process.exit(0);
} else {
  console.error("usage: werift-bench.mjs self COUNT SIZE | offer send|recv COUNT SIZE");
  process.exit(2);
}
