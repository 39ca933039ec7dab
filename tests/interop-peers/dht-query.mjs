// Queries one DHT node (ours) with bittorrent-dht's own KRPC stack and prints the raw answers as one JSON line.
// Usage: node dht-query.mjs HOST:PORT [INFOHASH_HEX]
// Interop test (a) of issue 2: ping, find_node and get_peers, answered by a real third-party implementation's parser.
import DHT from 'bittorrent-dht'
import crypto from 'crypto'

const [target, infoHashHex] = process.argv.slice(2)
if (!target) {
  console.error('usage: node dht-query.mjs HOST:PORT [INFOHASH_HEX]')
  process.exit(2)
}
const [host, portText] = target.split(':')
const peer = { host, port: Number(portText) }
const infoHash = infoHashHex ? Buffer.from(infoHashHex, 'hex') : crypto.randomBytes(20)

const dht = new DHT({ bootstrap: false, host: '127.0.0.1' })
const hex = b => (Buffer.isBuffer(b) ? b.toString('hex') : null)

function query (q, a) {
  return new Promise((resolve) => {
    dht._rpc.query(peer, { q, a: Object.assign({ id: dht.nodeId }, a) }, (err, res) => {
      if (err) return resolve({ error: String(err.message || err), code: err.code ?? null })
      resolve(res)
    })
  })
}

function decodeNodes (buf) {
  const nodes = []
  if (!Buffer.isBuffer(buf)) return null
  for (let i = 0; i + 26 <= buf.length; i += 26) {
    nodes.push({ id: buf.subarray(i, i + 20).toString('hex'), host: `${buf[i + 20]}.${buf[i + 21]}.${buf[i + 22]}.${buf[i + 23]}`, port: buf.readUInt16BE(i + 24) })
  }
  return { nodes, trailingBytes: buf.length % 26 }
}

function describe (res) {
  if (res.error) return res
  const r = res.r || {}
  return {
    y: res.y ? res.y.toString() : null,
    t: hex(res.t),
    id: hex(r.id),
    token: hex(r.token),
    nodes: r.nodes ? decodeNodes(r.nodes) : null,
    values: Array.isArray(r.values) ? r.values.map(v => `${v[0]}.${v[1]}.${v[2]}.${v[3]}:${v.readUInt16BE(4)}`) : null,
    ip: r.ip || res.ip ? hex(res.ip || r.ip) : null
  }
}

dht.listen(0, '127.0.0.1', async () => {
  const out = { self: dht.nodeId.toString('hex') }
  out.ping = describe(await query('ping', {}))
  out.find_node = describe(await query('find_node', { target: crypto.randomBytes(20) }))
  out.get_peers = describe(await query('get_peers', { info_hash: infoHash }))
  if (out.get_peers.token) {
    // Announce ourselves with the token just received (BEP 5 announce_peer), then read it back.
    const ann = await query('announce_peer', { info_hash: infoHash, port: 6999, token: Buffer.from(out.get_peers.token, 'hex'), implied_port: 0 })
    out.announce_peer = describe(ann)
    out.get_peers_after = describe(await query('get_peers', { info_hash: infoHash }))
  }
  console.log(JSON.stringify(out))
  dht.destroy(() => process.exit(0))
})
