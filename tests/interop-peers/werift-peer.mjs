// werift (a pure TypeScript WebRTC stack) as a data-channel peer for the interop tests.
//   node werift-peer.mjs offer URL SIZES   offers to `peerway rtc listen --echo` at URL (POST /rtc), sends one
//                                          message per size (comma-separated bytes), checks every echo, prints
//                                          `echoed N of M`, closes the channel and prints `closed <label>`.
//   node werift-peer.mjs answer            reads an offer (one JSON string line) on stdin, prints `answer <JSON>`,
//                                          then echoes every message on every channel the offerer opens, printing
//                                          `open <label> <ordered|unordered>` and `closed <label>`; exits when stdin ends.
import { RTCPeerConnection } from "werift";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";

const [mode, url, sizesArg] = process.argv.slice(2);
// Loopback only: no public STUN server, 127.0.0.1 as an extra host address.
const pc = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ["127.0.0.1"], iceUseIpv6: false });

async function gathered() {
  if (pc.iceGatheringState === "complete") return;
  await pc.iceGatheringStateChange.watch((s) => s === "complete");
}

function fail(message) {
  console.error(message);
  process.exit(1);
}

if (mode === "offer") {
  const sizes = sizesArg.split(",").map(Number);
  const dc = pc.createDataChannel("werift", { ordered: true });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  const answer = await res.text();
  if (res.status !== 201) fail(`POST answered ${res.status}: ${answer}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  if (dc.readyState !== "open") await dc.stateChanged.watch((s) => s === "open", 30000);
  const sent = sizes.map((n, i) => {
    const b = randomBytes(n);
    if (n >= 4) b.writeUInt32BE(i, 0);
    return b;
  });
  const got = new Map();
  const all = new Promise((resolve) => {
    dc.onMessage.subscribe((m) => {
      const b = Buffer.from(m);
      got.set(b.length >= 4 ? b.readUInt32BE(0) : got.size, b);
      if (got.size === sent.length) resolve();
    });
  });
  for (const b of sent) dc.send(b);
  await Promise.race([all, new Promise((r) => setTimeout(r, 60000))]);
  const intact = sent.filter((b, i) => got.get(i)?.equals(b)).length;
  console.log(`echoed ${intact} of ${sent.length}`);
  const closed = dc.stateChanged.watch((s) => s === "closed", 20000).then(() => console.log(`closed ${dc.label}`), () => console.log("close timed out"));
  dc.close();
  await closed;
  await pc.close();
  process.exit(intact === sent.length ? 0 : 1);
} else if (mode === "answer") {
  const lines = createInterface({ input: process.stdin });
  const it = lines[Symbol.asyncIterator]();
  const offer = JSON.parse((await it.next()).value);
  pc.onDataChannel.subscribe((dc) => {
    console.log(`open ${dc.label} ${dc.ordered ? "ordered" : "unordered"}`);
    dc.onMessage.subscribe((m) => dc.send(m));
    dc.stateChanged.subscribe((s) => { if (s === "closed") console.log(`closed ${dc.label}`); });
  });
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  console.log("answer " + JSON.stringify(pc.localDescription.sdp));
  while (!(await it.next()).done) { /* wait for stdin to close */ }
  await pc.close();
  process.exit(0);
} else {
  fail("usage: werift-peer.mjs offer URL SIZES | answer");
}
