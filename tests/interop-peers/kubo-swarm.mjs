// `peerway node`'s libp2p/IPFS peer seen through kubo-rpc-client (issues 18/19).
//   node kubo-swarm.mjs API_URL FILE
//     id; FILE added through the API (CIDv1, raw leaves); routing/findprovs for it. Prints one JSON object
//     {"id","publicKey","addresses","agentVersion","protocols","added","providers"}; Helia then fetches "added" from
//     the first address (helia-bitswap-get.mjs).
//   node kubo-swarm.mjs API_URL --findprovs CID [CONNECT_MULTIADDR]
//     swarm/connect to CONNECT_MULTIADDR (if given), then prints {"connect":[…],"providers":[{"id","addrs"}…],
//     "swarmPeers":[…]} from swarm/connect, routing/findprovs and swarm/peers.
import { readFileSync } from 'node:fs'
import { create } from 'kubo-rpc-client'

setTimeout(() => { console.error('timeout'); process.exit(3) }, 180_000).unref()
const [api, file, cidArg, connectArg] = process.argv.slice(2)
const client = create({ url: api })
const all = async (it) => { const items = []; for await (const x of it) items.push(x); return items }
const providers = async (cid) => (await all(client.routing.findProvs(cid)))
  .filter((e) => e.name === 'PROVIDER')
  .flatMap((e) => e.providers.map((p) => ({ id: p.id.toString(), addrs: p.multiaddrs.map((a) => a.toString()) })))

try {
  if (file === '--findprovs') {
    const connect = connectArg ? await client.swarm.connect(connectArg) : []
    const found = await providers(cidArg)
    const swarmPeers = (await client.swarm.peers()).map((p) => p.peer.toString())
    process.stdout.write(JSON.stringify({ connect, providers: found, swarmPeers }) + '\n')
    process.exit(0)
  }
  const id = await client.id()
  const added = await client.add(readFileSync(file), { cidVersion: 1, rawLeaves: true })
  process.stdout.write(JSON.stringify({
    id: id.id.toString(),
    publicKey: id.publicKey,
    addresses: id.addresses.map((a) => a.toString()),
    agentVersion: id.agentVersion,
    protocols: id.protocols,
    added: added.cid.toString(),
    providers: await providers(added.cid)
  }) + '\n')
  process.exit(0)
} catch (err) {
  console.error(`error ${err?.name}: ${err?.message}\n${err?.stack}`)
  process.exit(1)
}
