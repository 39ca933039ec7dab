// js-libp2p 3 nodes running @libp2p/kad-dht (server mode, /ipfs/kad/1.0.0, loopback addresses kept) for the IPFS DHT
// interop tests.
//   node kad-peer.mjs <N>   starts N nodes, each dialling the first; prints {"addrs":["<multiaddr>/p2p/<id>",…],"ids":[…]}
//   then reads commands on stdin, one per line, answering on stdout:
//     connect <multiaddr>   every node dials it              -> "connected"
//     provide <i> <cid>     node i announces itself as provider -> "provided <cid>"
//     find <i> <cid>        node i looks for providers       -> "provider <peer-id> <multiaddr,…>" per provider, then "done"
// Exits when stdin closes. A hard 5-minute timeout keeps a hung run from hanging the test.
import './node20-polyfill.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { createInterface } from 'node:readline'

setTimeout(() => { console.error('timeout'); process.exit(3) }, 300_000).unref()
const out = (line) => process.stdout.write(line + '\n')
const n = Number(process.argv[2] ?? 3)
const nodes = []
try {
  for (let i = 0; i < n; i++) {
    nodes.push(await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: false, peerInfoMapper: removePublicAddressesMapper })
      }
    }))
  }
  for (let i = 1; i < n; i++) await nodes[i].dial(nodes[0].getMultiaddrs()[0])
  out(JSON.stringify({ addrs: nodes.map(x => x.getMultiaddrs()[0].toString()), ids: nodes.map(x => x.peerId.toString()) }))
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    const [cmd, a, b] = line.trim().split(/\s+/)
    try {
      if (cmd === 'connect') {
        for (const x of nodes) await x.dial(multiaddr(a))
        out('connected')
      } else if (cmd === 'provide') {
        await nodes[Number(a)].contentRouting.provide(CID.parse(b), { signal: AbortSignal.timeout(60_000) })
        out(`provided ${b}`)
      } else if (cmd === 'find') {
        for await (const p of nodes[Number(a)].contentRouting.findProviders(CID.parse(b), { signal: AbortSignal.timeout(60_000) })) {
          out(`provider ${p.id} ${p.multiaddrs.map(m => m.toString()).join(',')}`)
        }
        out('done')
      }
    } catch (err) {
      out(`error ${err?.name}: ${err?.message}`)
    }
  }
  for (const x of nodes) await x.stop()
  process.exit(0)
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message}\n${err?.stack}`)
  process.exit(1)
}
