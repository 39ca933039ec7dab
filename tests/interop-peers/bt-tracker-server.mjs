// bittorrent-tracker's own server (npm), HTTP + WebSocket on one port, on loopback: prints "listening PORT" once up.
// Usage: node bt-tracker-server.mjs PORT
// The server module, not the package root (which pulls in a native module for the UDP client).
import Server from 'bittorrent-tracker/server'

const port = Number(process.argv[2])
const server = new Server({ udp: false, http: true, ws: true, stats: false, interval: 60000 })
server.on('error', err => { console.error('error', err.message); process.exitCode = 1 })
server.on('warning', err => console.error('warning', err.message))
server.on('start', peerId => console.log('start', peerId))
server.listen(port, '127.0.0.1', () => console.log('listening', port))
process.stdin.resume()
process.stdin.on('end', () => server.close(() => process.exit(0)))
