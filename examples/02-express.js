'use strict'
// An Express service, graceful under SIGTERM: readiness for the load balancer, a drained server, then the
// database. Shutdown code: the four lines marked "shutdown".
//
//   node examples/02-express.js       (PORT, SHUTDOWN_DELAY_MS from the environment)

const express = require('express')
const { ShutdownManager } = require('titan-lifecycle')

const db = { close: () => new Promise((resolve) => setTimeout(resolve, 50)) }
const delay = Number(process.env.SHUTDOWN_DELAY_MS ?? 0)
const manager = new ShutdownManager({ gracefulShutdownTimeout: 10_000, shutdownDelay: delay }) // shutdown

const app = express()
app.get('/ready', manager.readinessHandler()) // shutdown
app.get('/', (req, res) =>
  setTimeout(() => res.send(`hello after ${Number(req.query.delay ?? 0)} ms\n`), Number(req.query.delay ?? 0)),
)

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () =>
  console.log(`listening on http://127.0.0.1:${server.address().port}`),
)
manager.trackServer(server) // shutdown
manager.registerTask({ id: 'db', phase: 'destroy', handler: () => db.close() }) // shutdown
manager.on('shutdown:complete', ({ exitCode }) => console.log(`exiting with code ${exitCode}`))
