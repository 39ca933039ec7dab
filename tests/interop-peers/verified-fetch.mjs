// Fetches ipfs://CID[/path] through @helia/verified-fetch using ONLY the given trustless gateway (no libp2p, no
// delegated routers, no public gateways) and prints {status, length, sha256, contentType} as JSON.
// usage: node verified-fetch.mjs GATEWAY_URL CID_OR_PATH [--format raw|car]
import { createHash } from 'node:crypto'
import { fallbackRouter } from '@helia/fallback-router'
import { withHTTP } from '@helia/http'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { createHeliaLight } from 'helia'

const [gateway, path] = process.argv.slice(2)
const i = process.argv.indexOf('--format')
const format = i >= 0 ? process.argv[i + 1] : undefined

const light = createHeliaLight({})
// Our gateway is the only content router: a fallback router whose "fallback" capability is dropped so Helia asks it
// first (with no other router, Helia 7 never reaches its fallback routers).
const router = fallbackRouter({ gateways: [gateway], shuffle: false })
router.capabilities = () => []
light.addRouter(router)
const helia = await withHTTP(light, {
  delegatedRouters: [],
  recursiveGateways: [],
  allowInsecure: true,
  allowLocal: true
}).start()
const verifiedFetch = await createVerifiedFetch(helia)
try {
  const headers = format === 'raw' ? { accept: 'application/vnd.ipld.raw' } : format === 'car' ? { accept: 'application/vnd.ipld.car' } : {}
  const res = await verifiedFetch(`ipfs://${path}`, { headers, signal: AbortSignal.timeout(60_000) })
  const body = new Uint8Array(await res.arrayBuffer())
  process.stdout.write(JSON.stringify({
    status: res.status,
    length: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    contentType: res.headers.get('content-type')
  }) + '\n')
} finally {
  await verifiedFetch.stop()
  await helia.stop()
}
