// js-libp2p 3 (Helia 7's stack: TCP, Noise, Yamux, identify) transport benchmark, two nodes in this process over
// loopback TCP, the counterpart of `Peerway.Benchmarks libp2p-bench` (bench/content/libp2p.sh runs both):
//   node libp2p-bench.mjs handshakes N        N dials one after another, each a new connection, upgraded and closed
//   node libp2p-bench.mjs stream MIB STREAMS  MIB MiB over STREAMS Yamux streams of one connection, read to the end
// After a warm-up pass, one JSON line: wall seconds and process CPU seconds (both nodes). Exits 1 on any failure.
import './node20-polyfill.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'

const [op, a1, a2] = process.argv.slice(2)
const PROTOCOL = '/peerway/bench/sink/1.0.0'
setTimeout(() => { console.error('timeout'); process.exit(3) }, 30 * 60_000).unref()

const make = (listen) => createLibp2p({
  addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  // js-libp2p resets a stream whose unread data passes 4 MiB (its window grows past the reader): 16 streams on a
  // loaded machine hit that, so the bound is lifted for the benchmark.
  streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: 256 * 1024 * 1024 } })],
  services: { identify: identify() },
  connectionManager: { maxConnections: 1024 }
})

let expected = 0
let received = 0
let done = () => {}
const expect = (bytes) => {
  expected = bytes
  received = 0
  return new Promise((resolve) => { done = resolve })
}

const cpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

try {
  const server = await make(true)
  const client = await make(false)
  await server.handle(PROTOCOL, async (stream) => {
    for await (const chunk of stream) {
      received += chunk.byteLength
      if (received === expected) done()
    }
  }, { maxInboundStreams: 64 })
  const addr = server.getMultiaddrs()[0]

  // A graceful close waits on the remote's side of every stream (identify's too): the dials alone are timed; the
  // CPU counts everything.
  const closes = []
  let dialing = 0
  const handshakes = async (n) => {
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint()
      const conn = await client.dial(addr)
      dialing += Number(process.hrtime.bigint() - t) / 1e9
      await conn.close()
    }
  }
  const send = async (mib, streams) => {
    const total = mib * 1024 * 1024
    const finished = expect(total)
    const conn = await client.dial(addr)
    const chunk = new Uint8Array(64 * 1024).map(() => Math.floor(Math.random() * 256))
    const per = Math.floor(total / streams)
    await Promise.all(Array.from({ length: streams }, async (_, i) => {
      const stream = await conn.newStream(PROTOCOL)
      let left = i === streams - 1 ? total - per * (streams - 1) : per
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        if (!stream.send(n === chunk.length ? chunk : chunk.subarray(0, n))) await stream.onDrain()
        left -= n
      }
      closes.push(stream.close())
    }))
    await finished
  }

  const n = Number(a1)
  let label
  let measure
  if (op === 'handshakes') {
    await handshakes(Math.max(1, Math.floor(n / 10)))
    dialing = 0
    label = { op, n }
    measure = () => handshakes(n)
  } else if (op === 'stream') {
    const streams = Number(a2 ?? 1)
    await send(Math.max(1, Math.floor(n / 8)), streams)
    label = { op, mib: n, streams }
    measure = () => send(n, streams)
  } else {
    console.error('usage: libp2p-bench.mjs handshakes N | stream MIB STREAMS')
    process.exit(2)
  }

  const cpu = cpuSeconds()
  const start = process.hrtime.bigint()
  await measure()
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  const seconds = op === 'handshakes' ? dialing : elapsed
  await Promise.allSettled(closes)
  console.log(JSON.stringify({ impl: 'js-libp2p', ...label, seconds: Number(seconds.toFixed(4)), cpu: Number((cpuSeconds() - cpu).toFixed(4)) }))
  await client.stop()
  await server.stop()
  process.exit(0)
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message} ${err?.stack}`)
  process.exit(1)
}
