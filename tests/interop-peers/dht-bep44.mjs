// BEP 44 with bittorrent-dht (npm, which implements get/put), for tests/Peerway.Interop.Tests/Dht/Bep44InteropTests.cs.
// (A bittorrent-dht storing node that accepts mutable items: dht-serve.mjs.)
//   node dht-bep44.mjs put HOST:PORT VALUE [SEEDHEX SALT SEQ]   immutable, or mutable signed with the 32-byte seed;
//                                                              prints {"target","k","n"} (n: nodes that stored it)
//   node dht-bep44.mjs get HOST:PORT TARGET [SALT]             prints {"v" (UTF-8),"seq","k"} or {"v":null}
//   node dht-bep44.mjs put-torrent HOST:PORT INFOHASHHEX SEEDHEX SALT SEQ
//                                                              BEP 46: the mutable item {ih: <20 bytes>} a
//                                                              magnet:?xs=urn:btpk: names; prints as put
import DHT from 'bittorrent-dht'
import { verify, fromSeed } from './ed25519.mjs'

const [mode, boot, ...rest] = process.argv.slice(2)
const host = '127.0.0.1'
if (mode === 'put' || mode === 'get' || mode === 'put-torrent') {
  const dht = new DHT({ bootstrap: [boot], host, verify })
  dht.on('warning', () => {})
  const finish = (out, code) => { console.log(JSON.stringify(out)); dht.destroy(() => process.exit(code)) }
  setTimeout(() => finish({ error: 'timeout' }, 1), 60000).unref()
  dht.listen(0, host)
  dht.once('ready', () => {
    if (mode === 'put' || mode === 'put-torrent') {
      const [value, seedHex, salt, seq] = rest
      // BEP 46: "The value of the payload v contains a dictionary with key ih (info hash)".
      const opts = { v: mode === 'put' ? Buffer.from(value) : { ih: Buffer.from(value, 'hex') } }
      let k = null
      if (seedHex) {
        const key = fromSeed(Buffer.from(seedHex, 'hex'))
        k = key.k
        Object.assign(opts, { k, seq: Number(seq), sign: key.sign })
        if (salt) opts.salt = Buffer.from(salt)
      }
      dht.put(opts, (err, target, n) => finish({ target: target?.toString('hex') ?? null, k: k?.toString('hex') ?? null, n: n ?? 0, error: err ? String(err.message || err) : null }, err ? 1 : 0))
    } else {
      const [target, salt] = rest
      dht.get(target, salt ? { salt: Buffer.from(salt) } : {}, (err, res) => {
        if (err) return finish({ error: String(err.message || err) }, 1)
        finish(res ? { v: Buffer.from(res.v).toString('utf8'), seq: res.seq ?? null, k: res.k ? Buffer.from(res.k).toString('hex') : null } : { v: null }, 0)
      })
    }
  })
} else {
  console.error('usage: node dht-bep44.mjs put HOST:PORT VALUE [SEEDHEX SALT SEQ] | get HOST:PORT TARGET [SALT] | put-torrent HOST:PORT INFOHASHHEX SEEDHEX SALT SEQ')
  process.exit(2)
}
