'use strict'
// A plain `node:http` service that shuts down gracefully on SIGTERM or Ctrl-C (SIGINT), as a service behind
// a load balancer should:
//   1. /ready answers 503 at once, so the load balancer stops sending traffic (SHUTDOWN_DELAY_MS to notice,
//      while the service still answers what it sends, each response closing its connection);
//   2. the server drains: stops accepting, closes idle keep-alive connections, finishes what is in flight;
//   3. the background job stops, then the "database" closes (the destroy phase).
// Shutdown code: the five lines marked "shutdown". Everything is bounded by gracefulShutdownTimeout: past
// it, the native watchdog ends the process with a report, even if some code blocks the event loop.
//
//   node examples/01-http.js          then press Ctrl-C (try it during a slow request:
//                                      curl 'http://127.0.0.1:3000/?delay=3000')
//   node examples/01-http.js --demo   drives itself: a slow request, then SIGINT while it runs

const http = require('node:http')
const { ShutdownManager, ShutdownEvent } = require('titan-lifecycle')

const demo = process.argv.includes('--demo')
const port = Number(process.env.PORT ?? (demo ? 0 : 3000))

const database = {
  writes: 0,
  close: () => new Promise((resolve) => setTimeout(resolve, 50)),
}
const job = setInterval(() => database.writes++, 100)

const delay = Number(process.env.SHUTDOWN_DELAY_MS ?? 0)
const manager = new ShutdownManager({ gracefulShutdownTimeout: 10_000, shutdownDelay: delay, logger: console }) // shutdown

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/ready') return manager.readinessHandler()(req, res) // shutdown
  const delay = Math.min(Number(url.searchParams.get('delay') ?? 0), 10_000)
  setTimeout(() => res.end(`hello after ${delay} ms\n`), delay)
})

manager.trackServer(server, { id: 'http' }) // shutdown
manager.registerTask({ id: 'jobs', handler: () => clearInterval(job) }) // shutdown
manager.registerTask({ id: 'database', phase: 'destroy', handler: () => database.close() }) // shutdown

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
