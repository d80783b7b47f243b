'use strict'
// A small HTTP service that shuts down gracefully on Ctrl-C (SIGINT) or SIGTERM.
//
// Order of the shutdown:
//   1. readiness (First):   /health starts answering 503, so a load balancer stops sending traffic;
//   2. http (High):         stop accepting connections, let in-flight requests finish, close idle keep-alive;
//   3. jobs (Normal):       stop the background job that writes to the "database";
//   4. database (destroy):  close the pool once nothing uses it.
// Everything is bounded by gracefulShutdownTimeout: past it, the native watchdog ends the process with a
// report, even if some code blocks the event loop.
//
//   node examples/01-http-service.js          then press Ctrl-C (try it during a slow request:
//                                              curl 'http://127.0.0.1:3000/?delay=3000')
//   node examples/01-http-service.js --demo   drives itself: a slow request, then SIGINT while it runs

const http = require('node:http')
const { ShutdownManager, ShutdownPriority, ShutdownEvent } = require('titan-lifecycle')

const demo = process.argv.includes('--demo')
const port = Number(process.env.PORT ?? (demo ? 0 : 3000))

let ready = true
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/health') {
    res.writeHead(ready ? 200 : 503).end(ready ? 'ok\n' : 'shutting down\n')
    return
  }
  const delay = Math.min(Number(url.searchParams.get('delay') ?? 0), 10_000)
  setTimeout(() => {
    // A response finished during the shutdown closes its connection, or the client's keep-alive would
    // hold server.close() open until the keep-alive timeout.
    if (!ready) res.setHeader('connection', 'close')
    res.end(`hello after ${delay} ms\n`)
  }, delay)
})

const database = {
  open: true,
  writes: 0,
  async close() {
    await new Promise((resolve) => setTimeout(resolve, 50))
    this.open = false
  },
}
const job = setInterval(() => database.writes++, 100)

const manager = new ShutdownManager({ gracefulShutdownTimeout: 10_000, logger: console })

manager.registerTask({
  id: 'readiness',
  priority: ShutdownPriority.First,
  handler: () => {
    ready = false
  },
})
manager.registerTask({
  id: 'http',
  name: 'HTTP server',
  priority: ShutdownPriority.High,
  handler: ({ abortSignal }) =>
    new Promise((resolve, reject) => {
      // close() stops accepting and resolves once in-flight requests have finished; idle keep-alive
      // connections would hold it open, so close them now. If the deadline aborts us, cut the rest.
      server.close((error) => (error ? reject(error) : resolve()))
      server.closeIdleConnections()
      abortSignal.addEventListener('abort', () => server.closeAllConnections())
    }),
})
manager.registerTask({ id: 'jobs', dependsOn: ['database'], handler: () => clearInterval(job) })
manager.registerTask({ id: 'database', phase: 'destroy', handler: () => database.close() })

manager.on(ShutdownEvent.ShutdownTaskComplete, ({ taskId, durationMs }) =>
  console.log(`  ✓ ${taskId} (${durationMs.toFixed(1)} ms)`),
)
manager.on(ShutdownEvent.ShutdownComplete, ({ exitCode, totalDurationMs }) =>
  console.log(`shut down in ${totalDurationMs.toFixed(1)} ms, exiting with code ${exitCode}`),
)

server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address()
  console.log(`listening on http://127.0.0.1:${actual} (pid ${process.pid}); press Ctrl-C to shut down gracefully`)
  if (demo) runDemo(actual)
})

/** A request that takes 500 ms, and a Ctrl-C (SIGINT) 100 ms into it: the request still completes. */
function runDemo(actual) {
  http.get(`http://127.0.0.1:${actual}/?delay=500`, (res) => {
    let body = ''
    res.on('data', (chunk) => (body += chunk))
    res.on('end', () => console.log(`in-flight request finished during the shutdown: ${res.statusCode} ${body.trim()}`))
  })
  setTimeout(() => {
    console.log('sending SIGINT, as Ctrl-C would')
    process.kill(process.pid, 'SIGINT')
  }, 100)
}
