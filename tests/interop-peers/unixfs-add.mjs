// Prints the root CID ipfs-unixfs-importer computes for a file or directory (like `ipfs add -Q`).
// usage: node unixfs-add.mjs PATH [--cid-version 0|1] [--raw-leaves true|false] [--chunk-size N] [--blockstore DIR]
// Without --blockstore blocks are discarded (black hole, like --only-hash); with it they are written to DIR by
// blockstore-fs (Helia's on-disk blockstore: one file per block, written atomically).
import { importer } from 'ipfs-unixfs-importer'
import { importSource } from './fs-entries.mjs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { BlackHoleBlockstore } from 'blockstore-core/black-hole'
import { FsBlockstore } from 'blockstore-fs'

const args = process.argv.slice(2)
const path = args[0]
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def }
const cidVersion = Number(opt('--cid-version', '0'))
const rawLeaves = opt('--raw-leaves', cidVersion === 1 ? 'true' : 'false') === 'true'
const chunkSize = Number(opt('--chunk-size', '262144'))
const blockstoreDir = opt('--blockstore', null)
const blockstore = blockstoreDir == null ? new BlackHoleBlockstore() : new FsBlockstore(blockstoreDir)
if (blockstoreDir != null) await blockstore.open()

const source = importSource(path)

let last
for await (const entry of importer(source, blockstore, {
  cidVersion,
  rawLeaves,
  chunker: fixedSize({ chunkSize }),
  shardSplitStrategy: 'links-bytes',
  reduceSingleLeafToSelf: true
})) {
  last = entry
}
if (blockstoreDir != null) await blockstore.close()
process.stdout.write(`${last.cid.toString()}\n`)
