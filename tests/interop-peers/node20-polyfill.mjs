// js-libp2p 3 and Helia 7 use Promise.withResolvers (Node 22); Node 20 lacks it. Imported first by the scripts that
// load them (ES modules evaluate their imports in order, so this runs before libp2p's modules).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
