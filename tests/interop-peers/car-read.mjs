// Reads a CARv1 with @ipld/car, checks every block's sha2-256 against its CID, then exports the root's UnixFS file
// with ipfs-unixfs-exporter. Prints {roots, blocks, length, sha256} as JSON; exits 1 on a bad block.
// usage: node car-read.mjs FILE.car
import { createReadStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { CarBlockIterator } from '@ipld/car/iterator'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter } from 'ipfs-unixfs-exporter'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'

const blocks = await CarBlockIterator.fromIterable(createReadStream(process.argv[2]))
const store = new MemoryBlockstore()
let count = 0
for await (const { cid, bytes } of blocks) {
  const digest = await sha256.digest(bytes)
  if (!equals(digest.bytes, cid.multihash.bytes)) {
    process.stderr.write(`block ${cid} does not match its CID\n`)
    process.exit(1)
  }
  await store.put(cid, bytes)
  count++
}
const roots = await blocks.getRoots()
const entry = await exporter(roots[0], store)
const hash = createHash('sha256')
let length = 0
for await (const chunk of entry.content()) {
  hash.update(chunk)
  length += chunk.length
}
process.stdout.write(JSON.stringify({ roots: roots.map(String), blocks: count, length, sha256: hash.digest('hex') }) + '\n')
