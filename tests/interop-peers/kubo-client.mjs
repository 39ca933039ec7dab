// Drives a kubo RPC API (here: `peerway node`'s /api/v0) with the npm kubo-rpc-client, as IPFS tooling would.
// Usage: node kubo-client.mjs API_URL FILE [DIR_CID]  -> one JSON object on stdout with what each call returned.
// DIR_CID: a directory already in the node's repository, fetched with `get` as a tar stream.
import { readFileSync } from 'node:fs'
import { create } from 'kubo-rpc-client'

const [api, file, dirCid] = process.argv.slice(2)
const client = create({ url: api })
const bytes = readFileSync(file)
// Node 20 has no Array.fromAsync.
const all = async (it) => { const items = []; for await (const x of it) items.push(x); return items }
const concat = async (it) => Buffer.concat((await all(it)).map((c) => Buffer.from(c)))
const out = {}

out.version = (await client.version()).version
out.id = (await client.id()).id?.toString() ?? null
const v0 = await client.add(bytes)
const v1 = await client.add(bytes, { cidVersion: 1, rawLeaves: true })
const hashOnly = await client.add(Buffer.from('only hashed, never stored'), { cidVersion: 1, onlyHash: true })
out.addV0 = v0.cid.toString()
out.addV1 = v1.cid.toString()
out.onlyHash = hashOnly.cid.toString()
out.catEqual = (await concat(client.cat(v1.cid))).equals(bytes)
out.catV0Equal = (await concat(client.cat(v0.cid))).equals(bytes)
let onlyHashStored = true
try { await concat(client.cat(hashOnly.cid, { offline: true })) } catch { onlyHashStored = false }
out.onlyHashStored = onlyHashStored

// `get` returns kubo's tar stream: parse it here (ustar headers, 512-byte blocks; pax 'x' headers skipped).
const untar = (tar) => {
  const entries = []
  for (let at = 0; at + 512 <= tar.length;) {
    const h = tar.subarray(at, at + 512)
    if (h.every((b) => b === 0)) break
    const field = (o, n) => h.subarray(o, o + n).toString('latin1').replace(/\0.*$/s, '')
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1) || '0'
    const prefix = field(345, 155)
    const name = (prefix ? prefix + '/' : '') + field(0, 100)
    const data = tar.subarray(at + 512, at + 512 + size)
    if (type !== 'x' && type !== 'g') entries.push({ name, type, mode: field(100, 8).trim(), data })
    at += 512 + Math.ceil(size / 512) * 512
  }
  return entries
}
const got = untar(await concat(client.get(v1.cid)))
out.getNames = got.map((e) => e.name)
out.getEqual = got.length === 1 && got[0].data.equals(bytes)
if (dirCid) {
  out.getDir = untar(await concat(client.get(dirCid))).map((e) => ({ name: e.name, type: e.type, size: e.data.length }))
  out.getDirSub = untar(await concat(client.get(`/ipfs/${dirCid}/sub`))).map((e) => ({ name: e.name, type: e.type, size: e.data.length }))
}

let getMissingError = null
try { await concat(client.get('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')) } catch (e) { getMissingError = e.message }
out.getMissingError = getMissingError

const provs = await all(client.routing.findProvs(v1.cid))
out.findProvs = provs.filter((e) => e.name === 'PROVIDER').flatMap((e) => e.providers.map((p) => ({ id: p.id.toString(), addrs: p.multiaddrs.map((a) => a.toString()) })))
out.findProvsUnknown = (await all(client.routing.findProvs('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'))).length

const block = Buffer.from('a raw block from kubo-rpc-client')
const put = await client.block.put(block)
out.blockPut = put.toString()
out.blockGetEqual = Buffer.from(await client.block.get(put)).equals(block)

out.pinAdd = (await client.pin.add(put)).toString()
out.pinsAfterAdd = (await all(client.pin.ls())).map((p) => p.cid.toString()).sort()
out.pinRm = (await client.pin.rm(put)).toString()
out.pinsAfterRm = (await all(client.pin.ls())).map((p) => p.cid.toString()).sort()

const car = await concat(client.dag.export(v1.cid))
out.carBytes = car.length
const imported = await all(client.dag.import([car]))
out.dagImportRoots = imported.map((r) => r.root.cid.toString())

const stat = await client.repo.stat()
out.repoObjects = Number(stat.numObjects)
out.repoSize = Number(stat.repoSize)

let unknownError = null
try { await client.key.list() } catch (e) { unknownError = e.message }
out.unknownCommandError = unknownError

console.log(JSON.stringify(out))
