// Imports a file or a directory tree with ipfs-unixfs-importer and writes all its blocks as a CARv1 with @ipld/car's
// CarWriter. Prints the root CID. usage: node car-write.mjs PATH OUT.car [--cid-version 0|1]
// Directories are imported as unixfs-add.mjs does (kubo options: links-bytes shard threshold, 256 KiB).
import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import { importer } from 'ipfs-unixfs-importer'
import { importSource } from './fs-entries.mjs'

const [path, out] = process.argv.slice(2)
const i = process.argv.indexOf('--cid-version')
const cidVersion = i >= 0 ? Number(process.argv[i + 1]) : 0

const source = importSource(path)
// A blockstore that keeps blocks in insertion order (the importer only calls put).
const blocks = []
const store = { put: async (cid, bytes) => { blocks.push({ cid, bytes }); return cid } }
let root
for await (const entry of importer(source, store, {
  cidVersion,
  rawLeaves: cidVersion === 1,
  shardSplitStrategy: 'links-bytes',
  reduceSingleLeafToSelf: true
})) {
  root = entry.cid
}
const { writer, out: carBytes } = CarWriter.create([root])
const done = pipeline(Readable.from(carBytes), createWriteStream(out))
for (const block of blocks) {
  await writer.put(block)
}
await writer.close()
await done
process.stdout.write(`${root}\n`)
