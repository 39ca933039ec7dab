// Imports a file with ipfs-unixfs-importer and writes all its blocks as a CARv1 with @ipld/car's CarWriter.
// Prints the root CID. usage: node car-write.mjs FILE OUT.car [--cid-version 0|1]
import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import { importer } from 'ipfs-unixfs-importer'

const [file, out] = process.argv.slice(2)
const i = process.argv.indexOf('--cid-version')
const cidVersion = i >= 0 ? Number(process.argv[i + 1]) : 0
// A blockstore that keeps blocks in insertion order (the importer only calls put).
const blocks = []
const store = { put: async (cid, bytes) => { blocks.push({ cid, bytes }); return cid } }
let root
for await (const entry of importer([{ content: createReadStream(file) }], store, { cidVersion, rawLeaves: cidVersion === 1 })) {
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
