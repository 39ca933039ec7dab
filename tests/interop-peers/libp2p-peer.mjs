// A js-libp2p 3 node (the stack under Helia 7: TCP, Noise, Yamux, identify, ping) for the interop tests.
//   node libp2p-peer.mjs listen            prints "listening <multiaddr>/p2p/<id>", then one line per event:
//                                          "connected <peer>", "identified <peer> <agent> <protocol,...>"
//   node libp2p-peer.mjs dial <multiaddr>  dials, prints "identified …" and "ping <ms>" three times, exits 0
// Exits 1 with a line on stderr on any failure; a hard 60 s timeout keeps a hung run from hanging the test.
import './node20-polyfill.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const [mode, target] = process.argv.slice(2)
setTimeout(() => { console.error('timeout'); process.exit(3) }, 60_000).unref()
const out = (line) => process.stdout.write(line + '\n')

const node = await createLibp2p({
  addresses: { listen: mode === 'listen' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() }
})
node.addEventListener('peer:identify', (e) => {
  const d = e.detail
  out(`identified ${d.peerId} ${d.agentVersion ?? '-'} ${(d.protocols ?? []).join(',')}`)
})
node.addEventListener('peer:connect', (e) => out(`connected ${e.detail}`))

try {
  if (mode === 'listen') {
    for (const a of node.getMultiaddrs()) out(`listening ${a}`)
    process.stdin.resume()
    process.stdin.on('end', async () => { await node.stop(); process.exit(0) })
  } else if (mode === 'dial') {
    const ma = multiaddr(target)
    const identified = new Promise((resolve) => node.addEventListener('peer:identify', resolve, { once: true }))
    await node.dial(ma)
    await identified
    for (let i = 0; i < 3; i++) out(`ping ${await node.services.ping.ping(ma)}`)
    await node.stop()
    process.exit(0)
  } else {
    console.error('usage: libp2p-peer.mjs listen | dial <multiaddr>')
    process.exit(2)
  }
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message}`)
  process.exit(1)
}
