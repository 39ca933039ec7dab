// Prints, one per line, the hex of ipfs-unixfs's marshal() of a UnixFS File node with the given filesize as its only
// blocksize (ipfs-unixfs writes filesize = sum of blocksizes): `node unixfs-marshal.mjs 2147483648 4294967296 ...`.
import { UnixFS } from 'ipfs-unixfs'

for (const arg of process.argv.slice(2)) {
  const node = new UnixFS({ type: 'file' })
  node.addBlockSize(BigInt(arg))
  process.stdout.write(`${Buffer.from(node.marshal()).toString('hex')}\n`)
}
