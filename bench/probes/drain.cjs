'use strict'
// One HTTP server for the draining benchmark, set up the way each library is used:
//   node bench/probes/drain.cjs LIBRARY
// LIBRARY: 'plain' (no tracking), 'titan-lifecycle' (trackServer), 'http-terminator', 'stoppable'.
// Prints {"kind":"ready","port":N}; serves "ok" until a line "drain" arrives on stdin, then drains the way
// the library does and prints {"kind":"drained","ms":...} (from the request to drain to its end).
const http = require('node:http')
const path = require('node:path')

const library = process.argv[2]
const server = http.createServer((req, res) => res.end('ok'))
let drain

if (library === 'plain') {
  drain = () => new Promise((resolve) => server.close(resolve))
} else if (library === 'titan-lifecycle') {
  const { ShutdownManager } = require(path.join(__dirname, '..', '..'))
  // As a service sets it up (README): owning the signals, which adds the main loop's per-turn check of
  // their handlers, a cost of every request a busy server answers.
  const manager = new ShutdownManager()
  manager.trackServer(server)
  drain = () => manager.stop({ timeout: 30_000 })
} else if (library === 'http-terminator') {
  const { createHttpTerminator } = require('http-terminator')
  const terminator = createHttpTerminator({ server })
  drain = () => terminator.terminate()
} else if (library === 'stoppable') {
  const stoppable = require('stoppable')
  stoppable(server)
  drain = () => new Promise((resolve) => server.stop(resolve))
} else {
  throw new Error(`unknown library ${library}`)
}

server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`${JSON.stringify({ kind: 'ready', port: server.address().port })}\n`),
)
process.stdin.setEncoding('utf8').on('data', async (text) => {
  if (!text.includes('drain')) return
  const started = process.hrtime.bigint()
  await drain()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  process.stdout.write(`${JSON.stringify({ kind: 'drained', ms })}\n`)
  // Not exiting: the bench checks that the client saw every connection closed by the drain, which an exit
  // would do for it. It kills this process.
})
