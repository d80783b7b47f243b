'use strict'
// A small round-robin load balancer, as a rolling restart meets one: it health-checks each backend's
// /ready every 100 ms, routes only to backends that answered 200 (marked ready again when they do), keeps
// connections to backends alive, and answers 502 when a backend fails a request (a reset, a refused
// connection) and 503 when none is ready. It does not retry: every failure reaches the client.
//
//   node rolling/proxy.cjs PORT_A PORT_B     prints {"kind":"listening","port":N} and
//                                            {"kind":"backend","port":N,"ready":bool} on stdout

const http = require('node:http')

const HEALTH_EVERY_MS = 100
const backends = process.argv.slice(2).map((port) => ({ port: Number(port), ready: false }))
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 })
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)

function check(backend) {
  const request = http.get(
    { host: '127.0.0.1', port: backend.port, path: '/ready', agent: false, timeout: 300 },
    (res) => {
      res.resume()
      mark(backend, res.statusCode === 200)
    },
  )
  request.on('timeout', () => request.destroy(new Error('health check timed out')))
  request.on('error', () => mark(backend, false))
}

function mark(backend, ready) {
  if (backend.ready !== ready) say({ kind: 'backend', port: backend.port, ready })
  backend.ready = ready
}

setInterval(() => backends.forEach(check), HEALTH_EVERY_MS)
backends.forEach(check)

let next = 0
const server = http.createServer((req, res) => {
  const ready = backends.filter((b) => b.ready)
  if (ready.length === 0) {
    res.writeHead(503).end('no backend ready\n')
    return
  }
  const backend = ready[next++ % ready.length]
  const upstream = http.request(
    { host: '127.0.0.1', port: backend.port, method: req.method, path: req.url, headers: req.headers, agent },
    (response) => {
      res.writeHead(response.statusCode, {
        'x-backend': String(backend.port),
        'content-type': response.headers['content-type'] ?? 'text/plain',
      })
      response.pipe(res)
    },
  )
  upstream.on('error', (error) => {
    if (res.headersSent) res.destroy(error)
    else res.writeHead(502).end(`backend ${backend.port} failed: ${error.code ?? error.message}\n`)
  })
  req.pipe(upstream)
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => say({ kind: 'listening', port: server.address().port }))
