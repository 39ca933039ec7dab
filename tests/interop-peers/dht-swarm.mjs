// A controllable swarm of bittorrent-dht nodes on loopback for the mixed-network interop test of issue 2.
// Usage: node dht-swarm.mjs --count N --bootstrap HOST:PORT[,HOST:PORT...] [--first-ip 20]
// Each node binds its own loopback address 127.0.0.<first-ip + i> (distinct IPs, as on a real network).
// stdout: one JSON line per event. First {"ready":true,"nodes":[...]}, then one answer per stdin command:
//   {"cmd":"announce","node":I,"infohash":HEX,"port":P}     -> {"cmd":"announce","ok":true,"nodes":N}
//   {"cmd":"lookup","node":I,"infohash":HEX,"timeoutMs":MS}  -> {"cmd":"lookup","peers":["ip:port",...]}
//   {"cmd":"table","node":I}                                 -> {"cmd":"table","nodes":[{"id","host","port"}]}
import DHT from 'bittorrent-dht'
import readline from 'readline'

const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }
const count = Number(opt('--count', '5'))
const firstIp = Number(opt('--first-ip', '20'))
const bootstrap = (opt('--bootstrap', '') || '').split(',').filter(Boolean)
const emit = o => process.stdout.write(JSON.stringify(o) + '\n')

const nodes = []
function startNode (i, boot) {
  return new Promise((resolve, reject) => {
    const host = `127.0.0.${firstIp + i}`
    const dht = new DHT({ bootstrap: boot, host })
    dht.on('error', reject)
    dht.on('warning', () => {})
    dht.listen(0, host, () => {
      dht.once('ready', () => resolve(dht))
    })
  })
}

for (let i = 0; i < count; i++) {
  // Every node bootstraps from the given routers plus the previous bittorrent-dht node.
  const boot = bootstrap.concat(i > 0 ? [`${nodes[i - 1].address().address}:${nodes[i - 1].address().port}`] : [])
  nodes.push(await startNode(i, boot))
}
emit({ ready: true, nodes: nodes.map(d => ({ id: d.nodeId.toString('hex'), host: d.address().address, port: d.address().port })) })

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', line => {
  let c
  try { c = JSON.parse(line) } catch (e) { return emit({ error: 'bad json' }) }
  const dht = nodes[c.node ?? 0]
  if (!dht) return emit({ cmd: c.cmd, error: 'no such node' })
  if (c.cmd === 'announce') {
    dht.announce(c.infohash, c.port, (err, n) => emit({ cmd: 'announce', ok: !err, nodes: n ?? 0, error: err ? String(err.message) : null }))
  } else if (c.cmd === 'lookup') {
    const peers = new Set()
    const onPeer = (peer, infoHash) => { if (infoHash.toString('hex') === c.infohash.toLowerCase()) peers.add(`${peer.host}:${peer.port}`) }
    dht.on('peer', onPeer)
    dht.lookup(c.infohash, (err) => {
      dht.removeListener('peer', onPeer)
      emit({ cmd: 'lookup', peers: [...peers], error: err ? String(err.message) : null })
    })
  } else if (c.cmd === 'table') {
    emit({ cmd: 'table', nodes: dht.toJSON().nodes, ids: dht.nodes.toArray().map(n => ({ id: n.id.toString('hex'), host: n.host, port: n.port })) })
  } else {
    emit({ cmd: c.cmd, error: 'unknown command' })
  }
})
rl.on('close', () => {
  let left = nodes.length
  for (const d of nodes) d.destroy(() => { if (--left === 0) process.exit(0) })
})
