// Helia 7 as a Bitswap server for the interop tests: a minimal js-libp2p (TCP, Noise, Yamux, identify) listening on
// loopback, Bitswap as its only block broker. Adds FILE as CIDv0 (dag-pb leaves) and as CIDv1 (raw leaves), and the
// directory DIR (its files, recursively, CIDv1) with @helia/unixfs, then prints one JSON line
// {"addrs":[…],"v0":"…","v1":"…","dir":"…"} and serves until its stdin closes.
//   node helia-bitswap-serve.mjs <file> <dir>
import './node20-polyfill.mjs'
import { createHeliaLight } from 'helia'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { readFile, readdir } from 'node:fs/promises'
import { join, relative, basename } from 'node:path'

const [file, dir] = process.argv.slice(2)
// HELIA_SERVE_TIMEOUT_MS: a hard limit so a forgotten server ends (benchmarks raise it).
setTimeout(() => { console.error('timeout'); process.exit(3) }, Number(process.env.HELIA_SERVE_TIMEOUT_MS ?? 600_000)).unref()

async function * entries (root, at) {
  for (const e of await readdir(at, { withFileTypes: true })) {
    const full = join(at, e.name)
    if (e.isDirectory()) yield * entries(root, full)
    else yield { path: join(basename(root), relative(root, full)), content: await readFile(full) }
  }
}

try {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [] }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }))
  await helia.start()
  const fs = unixfs(helia)
  const bytes = await readFile(file)
  const v0 = await fs.addBytes(bytes, { cidVersion: 0, rawLeaves: false })
  const v1 = await fs.addBytes(bytes, { cidVersion: 1, rawLeaves: true })
  let dirCid
  for await (const entry of fs.addAll(entries(dir, dir), { cidVersion: 1, rawLeaves: true })) {
    if (entry.path === basename(dir)) dirCid = entry.cid
  }
  const addrs = helia.libp2p.getMultiaddrs().map(a => a.toString())
  process.stdout.write(JSON.stringify({ addrs, v0: v0.toString(), v1: v1.toString(), dir: dirCid?.toString() }) + '\n')
  process.stdin.resume()
  process.stdin.on('end', async () => { await helia.stop(); process.exit(0) })
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message}\n${err?.stack}`)
  process.exit(1)
}
