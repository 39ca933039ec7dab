// Drives a kubo RPC API (here: `peerway node`'s /api/v0) with the npm kubo-rpc-client, as IPFS tooling would.
// Usage: node kubo-client.mjs API_URL FILE  -> one JSON object on stdout with what each call returned.
import { readFileSync } from 'node:fs'
import { create } from 'kubo-rpc-client'

const [api, file] = process.argv.slice(2)
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
try { await client.swarm.peers() } catch (e) { unknownError = e.message }
out.unknownCommandError = unknownError

console.log(JSON.stringify(out))
