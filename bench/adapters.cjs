'use strict'
// Each library expresses the same shutdown tasks the way its users would, in its own model:
// - titan-lifecycle: one task each, with priority and dependencies; concurrent where independent.
// - close-with-grace, @godaddy/terminus: one user callback; users await their steps one after another.
// - lightship: one handler per task, run one after another in registration order.
// - exit-hook, async-exit-hook: one hook per task, all started at once; no order between them.
// - plain: `process.on('SIGTERM')`, the floor for signal latency; it calls independent tasks all at once.
// Each sets the deadline it offers to `deadlineMs` (where it offers one) and, where it exits by itself,
// exits 0 after success.
//
// setup({ tasks, deadlineMs }) with tasks = [{ id, priority, dependsOn, run }], `run` returning a promise.

const http = require('node:http')
const path = require('node:path')
const { sequentialOrder } = require('./reference-tasks.cjs')

const runSequentially = (tasks) => async () => {
  for (const task of sequentialOrder(tasks)) await task.run()
}

/** A server for the libraries that decorate one. */
function listeningServer() {
  const server = http.createServer((req, res) => res.end('ok'))
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

const adapters = {
  'titan-lifecycle': {
    async setup({ tasks, deadlineMs }) {
      const { ShutdownManager } = require(path.join(__dirname, '..'))
      const manager = new ShutdownManager({ gracefulShutdownTimeout: deadlineMs })
      for (const t of tasks)
        manager.registerTask({ id: t.id, priority: t.priority, dependsOn: t.dependsOn, handler: t.run })
    },
  },
  'close-with-grace': {
    async setup({ tasks, deadlineMs }) {
      const closeWithGrace = require('close-with-grace')
      closeWithGrace({ delay: deadlineMs, logger: false }, runSequentially(tasks))
    },
  },
  '@godaddy/terminus': {
    async setup({ tasks, deadlineMs }) {
      const { createTerminus } = require('@godaddy/terminus')
      // `timeout` is only the socket drain; terminus has no process deadline.
      createTerminus(await listeningServer(), {
        signals: ['SIGTERM', 'SIGINT'],
        timeout: deadlineMs,
        useExit0: true,
        onSignal: runSequentially(tasks),
      })
    },
  },
  lightship: {
    async setup({ tasks, deadlineMs }) {
      const { createLightship } = await import('lightship')
      const lightship = await createLightship({
        detectKubernetes: false,
        shutdownDelay: 0,
        port: 0,
        gracefulShutdownTimeout: deadlineMs,
        shutdownHandlerTimeout: deadlineMs,
        signals: ['SIGTERM', 'SIGINT'],
      })
      for (const task of sequentialOrder(tasks)) lightship.registerShutdownHandler(task.run)
      lightship.signalReady()
    },
  },
  'exit-hook': {
    async setup({ tasks, deadlineMs }) {
      const { asyncExitHook } = require('exit-hook')
      for (const task of tasks) asyncExitHook(task.run, { wait: deadlineMs })
    },
  },
  'async-exit-hook': {
    async setup({ tasks, deadlineMs }) {
      const exitHook = require('async-exit-hook')
      exitHook.forceExitTimeout(deadlineMs)
      for (const task of tasks) exitHook((done) => task.run().then(done, done))
    },
  },
  plain: {
    async setup({ tasks }) {
      // Independent tasks (the scale scenario) are all called at once, as a hand-written listener would.
      const independent = tasks.every((t) => t.dependsOn.length === 0)
      process.on('SIGTERM', async () => {
        if (independent) await Promise.all(tasks.map((t) => t.run()))
        else await runSequentially(tasks)()
        process.exit(0)
      })
    },
  },
}

module.exports = {
  adapters,
  PEERS: Object.keys(adapters).filter((name) => name !== 'titan-lifecycle' && name !== 'plain'),
}
