'use strict'
// A Fastify service, graceful under SIGTERM: readiness for the load balancer, a drained server (Fastify's
// own `fastify.server`), then the database. Shutdown code: the four lines marked "shutdown".
//
//   node examples/03-fastify.js       (PORT, SHUTDOWN_DELAY_MS from the environment)

const Fastify = require('fastify')
const { ShutdownManager } = require('titan-lifecycle')

const db = { close: () => new Promise((resolve) => setTimeout(resolve, 50)) }
const delay = Number(process.env.SHUTDOWN_DELAY_MS ?? 0)
const manager = new ShutdownManager({ gracefulShutdownTimeout: 10_000, shutdownDelay: delay }) // shutdown

const fastify = Fastify()
fastify.get('/ready', (request, reply) =>
  reply.code(manager.isReady ? 200 : 503).send(manager.isReady ? 'ready\n' : 'shutting down\n'),
) // shutdown
fastify.get('/', async (request) => {
  const delay = Number(request.query.delay ?? 0)
  await new Promise((resolve) => setTimeout(resolve, delay))
  return `hello after ${delay} ms\n`
})

manager.trackServer(fastify.server) // shutdown
manager.registerTask({ id: 'db', phase: 'destroy', handler: () => db.close() }) // shutdown
manager.on('shutdown:complete', ({ exitCode }) => console.log(`exiting with code ${exitCode}`))
fastify
  .listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
  .then((address) => console.log(`listening on ${address}`))
