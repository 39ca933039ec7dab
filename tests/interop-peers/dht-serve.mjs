// One bittorrent-dht node serving on loopback (the comparison peer of bench/dht/queries-per-second.sh).
// Usage: node dht-serve.mjs [HOST] — prints "node <40 hex> listening <ip>:<port>" (the same line as `peerway dht serve`).
import DHT from 'bittorrent-dht'
import { verify } from './ed25519.mjs'

const host = process.argv[2] || '127.0.0.1'
// verify: BEP 44 mutable puts are stored (tests/Peerway.Interop.Tests/Dht/Bep44InteropTests.cs).
const dht = new DHT({ bootstrap: false, host, verify })
dht.on('warning', () => {})
dht.listen(0, host, () => {
  const a = dht.address()
  console.log(`node ${dht.nodeId.toString('hex')} listening ${a.address}:${a.port}`)
})
const stop = () => dht.destroy(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
