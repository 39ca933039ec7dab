// ed25519 for BEP 44 through Node's own crypto (no native module): bittorrent-dht's `verify` option, and signing from
// a 32-byte seed. Shared by dht-serve.mjs and dht-bep44.mjs.
import crypto from 'crypto'

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

/** bittorrent-dht's verify(signature, message, publicKey); false for malformed keys. */
export function verify (sig, msg, pk) {
  try {
    const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519, pk]), format: 'der', type: 'spki' })
    return crypto.verify(null, msg, key, sig)
  } catch { return false }
}

/** The key pair of a 32-byte seed: { k: raw public key, sign(buffer) }. */
export function fromSeed (seed) {
  const priv = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
  const k = crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length)
  return { k, sign: buf => crypto.sign(null, buf, priv) }
}
