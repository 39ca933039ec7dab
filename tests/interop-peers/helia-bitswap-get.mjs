// Helia 7 with a minimal js-libp2p (TCP, Noise, Yamux, identify) and Bitswap as its only block broker: dials the
// given peer and fetches a CID from it. Prints one JSON line {"cid","bytes","sha256","blocks"}; for a raw block the
// bytes are the block, otherwise the UnixFS file's content (@helia/unixfs cat). With --dir the CID is a UnixFS
// directory: prints {"cid","files":{"<path>":"<sha256>",…}} for every file below it (@helia/unixfs ls, recursively).
//   node helia-bitswap-get.mjs <multiaddr> <cid> [--dir]
import './node20-polyfill.mjs'
import { createHeliaLight } from 'helia'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { createHash } from 'node:crypto'

const [target, cidText, dirFlag] = process.argv.slice(2)
// HELIA_GET_TIMEOUT_MS: the fetch's limit (benchmarks of large files raise it); the process gets 20 s more.
const limit = Number(process.env.HELIA_GET_TIMEOUT_MS ?? 100_000)
setTimeout(() => { console.error('timeout'); process.exit(3) }, limit + 20_000).unref()
try {
  // Bitswap is the only block broker; no routers, no HTTP gateways: the blocks can only come from the dialled peer.
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [] }), {
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }))
  await helia.start()
  await helia.libp2p.dial(multiaddr(target))
  const cid = CID.parse(cidText)
  const hash = createHash('sha256')
  let bytes = 0
  const signal = AbortSignal.timeout(limit)
  if (dirFlag === '--dir') {
    const fs = unixfs(helia)
    const files = {}
    const walk = async (at, prefix) => {
      for await (const entry of fs.ls(at, { signal })) {
        const path = prefix + entry.name
        // ls's entries may not carry their type (ipfs-unixfs-exporter's lazy directory entries): stat says it.
        const { type } = await fs.stat(entry.cid, { signal })
        if (type === 'directory') await walk(entry.cid, path + '/')
        else {
          const h = createHash('sha256')
          for await (const chunk of fs.cat(entry.cid, { signal })) h.update(chunk)
          files[path] = h.digest('hex')
        }
      }
    }
    await walk(cid, '')
    process.stdout.write(JSON.stringify({ cid: cid.toString(), files }) + '\n')
    await helia.stop()
    process.exit(0)
  }
  if (cid.code === 0x55) {
    // blockstore-core 7 may hand the block back as chunks (an async iterable) rather than one Uint8Array.
    const block = await helia.blockstore.get(cid, { signal })
    for await (const chunk of (block?.[Symbol.asyncIterator] ? block : [block])) {
      hash.update(chunk)
      bytes += chunk.length
    }
  } else {
    for await (const chunk of unixfs(helia).cat(cid, { signal })) {
      hash.update(chunk)
      bytes += chunk.length
    }
  }
  process.stdout.write(JSON.stringify({ cid: cid.toString(), bytes, sha256: hash.digest('hex') }) + '\n')
  await helia.stop()
  process.exit(0)
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message}\n${err?.stack}`)
  process.exit(1)
}
