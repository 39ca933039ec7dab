// ipfs-unixfs-importer input for a path: a file's content, or a directory tree as `${basename}/...` entries (an empty
// directory as a path without content), as `ipfs add -r` walks it.
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'

function * entries (root, rel) {
  const st = statSync(root)
  if (st.isDirectory()) {
    const names = readdirSync(root)
    if (names.length === 0) yield { path: rel }
    for (const name of names) yield * entries(join(root, name), `${rel}/${name}`)
  } else {
    yield { path: rel, content: createReadStream(root, { highWaterMark: 1 << 20 }) }
  }
}

export function importSource (path) {
  return statSync(path).isDirectory()
    ? entries(path, basename(path))
    : [{ content: createReadStream(path, { highWaterMark: 1 << 20 }) }]
}
