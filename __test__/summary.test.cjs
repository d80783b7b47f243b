'use strict'
// A shutdown explains itself: the summary (in the result and in shutdown:complete, and logged as a waterfall),
// structured log records at honest levels, and, when a shutdown that did not exit leaves the process alive,
// what keeps it so (also manager.activeHandles()).

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { ShutdownManager, ShutdownEvent } = require('..')
const { start, find } = require('./helpers.cjs')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A logger that keeps every record as pino would receive it: (fields, message). */
function recorder() {
  const records = []
  const at = (level) => (fields, message) => records.push({ level, fields, message })
  return { records, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

function manager(options = {}) {
  return new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, ...options })
}

test("a task's time counts from its handler's call, not from the listeners that ran before it", async () => {
  const m = manager({ gracefulShutdownTimeout: 5000 })
  const busy = (ms) => {
    const until = performance.now() + ms
    while (performance.now() < until) {}
  }
  m.on(ShutdownEvent.ShutdownStart, () => busy(150))
  m.on(ShutdownEvent.ShutdownTaskComplete, ({ taskId }) => taskId === 'first' && busy(100))
  m.registerTask({ id: 'first', priority: 10, timeout: 1000, handler: () => {} })
  m.registerTask({ id: 'second', priority: 20, timeout: 1000, handler: () => {} })
  const { summary } = await m.stop()
  const [first, second] = summary.tasks
  // Both return at once; the 150 and 100 ms were the listeners', which ran between each task's hand-out and
  // its call.
  assert.ok(first.durationMs < 50, `first: ${first.durationMs} ms`)
  assert.ok(second.durationMs < 50, `second: ${second.durationMs} ms`)
  assert.ok(first.startMs >= 140, `first started at ${first.startMs} ms, after the start listener`)
  assert.ok(second.startMs >= first.startMs + first.durationMs + 90, JSON.stringify(summary.tasks))
})

test("the summary's offsets add up: tasks in order, each starting after what it waited for, within the total", async () => {
  const { records, logger } = recorder()
  const m = manager({ logger, gracefulShutdownTimeout: 5000 })
  m.registerTask({ id: 'http', priority: 10, handler: () => sleep(60) })
  m.registerTask({ id: 'queue', priority: 20, dependsOn: [], handler: () => sleep(40) })
  m.registerTask({ id: 'cache', priority: 20, handler: () => sleep(30) })
  m.registerTask({ id: 'db', phase: 'destroy', handler: () => sleep(20) })
  let completed
  m.on(ShutdownEvent.ShutdownComplete, (payload) => (completed = payload))
  const result = await m.stop()
  const { summary } = result
  assert.deepEqual(completed.summary, summary)
  assert.equal(summary.reason, 'manual')
  assert.equal(summary.timeoutMs, 5000)
  assert.equal(summary.exitCode, 0)
  assert.equal(summary.hardExit, false)
  assert.ok(Math.abs(summary.startedAt - (Date.now() - summary.totalDurationMs)) < 100)
  const byId = Object.fromEntries(summary.tasks.map((t) => [t.id, t]))
  assert.deepEqual(Object.keys(byId), ['http', 'queue', 'cache', 'db'])
  const end = (t) => t.startMs + t.durationMs
  const slack = 2 // ms: timer and clock granularity
  assert.ok(byId.http.startMs >= 0 && byId.http.startMs < 20, `http started at ${byId.http.startMs}`)
  // Priority 20 waits for priority 10; the two of priority 20 run together; the destroy phase waits for all.
  for (const id of ['queue', 'cache']) assert.ok(byId[id].startMs >= end(byId.http) - slack, `${id} after http`)
  assert.ok(Math.abs(byId.queue.startMs - byId.cache.startMs) < 5, 'queue and cache together')
  assert.ok(byId.db.startMs >= Math.max(end(byId.queue), end(byId.cache)) - slack, 'db after the stop phase')
  assert.ok(byId.db.phase === 'destroy' && byId.http.phase === 'stop')
  assert.ok(end(byId.db) <= summary.totalDurationMs + slack, 'every task ends within the total')
  for (const t of summary.tasks) {
    assert.equal(t.status, 'succeeded')
    assert.ok(t.durationMs >= 15, `${t.id} took ${t.durationMs} ms`)
  }
  // The waterfall, logged at info with the summary as a field.
  const done = records.find((r) => r.message.startsWith('shutdown complete'))
  assert.equal(done.level, 'info')
  assert.deepEqual(done.fields.summary, summary)
  const lines = done.message.split('\n')
  assert.match(lines[1], /reason manual, deadline 5000 ms, exit code 0/)
  for (const [i, id] of ['http', 'queue', 'cache', 'db'].entries()) {
    assert.match(lines[i + 2], new RegExp(`^ +\\+\\d+\\.\\d ms \\|[ #]{24}\\| ${id} +succeeded \\d+\\.\\d ms$`))
  }
  // http's bar starts at the left edge; db's ends at the right one.
  assert.match(lines[2], /\|#/)
  assert.match(lines[5], /#\|/)
})

test('the waterfall cuts an id longer than its column with an ellipsis, and the summary keeps it whole', async () => {
  const { records, logger } = recorder()
  const m = manager({ logger })
  const long = 'a-task-whose-id-is-longer-than-the-column'
  m.registerTask({ id: long, handler: () => {} })
  const { summary } = await m.stop()
  assert.equal(summary.tasks[0].id, long)
  const done = records.find((r) => r.message.startsWith('shutdown complete'))
  assert.match(done.message.split('\n')[2], / a-task-whose-id-is-long\u2026 succeeded /)
})

test('records are pino-style (fields, then message), with errors under err, at honest levels', async () => {
  const { records, logger } = recorder()
  const m = manager({ logger })
  const failure = new Error('flush failed')
  m.registerTask({ id: 'cache', handler: () => Promise.reject(failure) })
  const result = await m.stop()
  assert.equal(result.exitCode, 1)
  assert.equal(result.summary.tasks[0].error, failure)
  const failed = records.find((r) => r.message.startsWith("shutdown task 'cache' failed"))
  // A failure that makes the exit code 1 is an error, not a warning.
  assert.equal(failed.level, 'error')
  assert.equal(failed.message, "shutdown task 'cache' failed: flush failed")
  assert.equal(failed.fields.err, failure)
  assert.equal(failed.fields.taskId, 'cache')
  const started = records.find((r) => r.message.startsWith('shutdown started'))
  assert.deepEqual(started.fields, { reason: 'manual', signal: undefined, tasks: 1, timeoutMs: 30_000 })
  // The summary of a shutdown that exits 1 is logged as an error, its waterfall naming the failure.
  const done = records.find((r) => r.message.startsWith('shutdown complete'))
  assert.equal(done.level, 'error')
  assert.match(done.message, /cache +failed \d+\.\d ms: flush failed/)

  // With exitCodes.failure 0, the same failure is only a warning.
  const quiet = recorder()
  const lenient = manager({ logger: quiet.logger, exitCodes: { failure: 0 } })
  lenient.registerTask({ id: 'cache', handler: () => Promise.reject(failure) })
  await lenient.stop()
  assert.equal(quiet.records.find((r) => r.message.startsWith("shutdown task 'cache' failed")).level, 'warn')
})

test('the waterfall names what a task threw even when it is null, 0 or an empty string', async () => {
  const { records, logger } = recorder()
  const m = manager({ logger })
  m.registerTask({ id: 'null', handler: () => Promise.reject(null) })
  m.registerTask({ id: 'zero', handler: () => Promise.reject(0) })
  m.registerTask({ id: 'empty', handler: () => Promise.reject('') })
  await m.stop()
  const done = records.find((r) => r.message.startsWith('shutdown complete'))
  assert.match(done.message, /null +failed \d+\.\d ms: null\n/)
  assert.match(done.message, /zero +failed \d+\.\d ms: 0\n/)
  assert.match(done.message, /empty +failed \d+\.\d ms: (''|"")?$/m)
  assert.doesNotMatch(done.message, /empty +failed \d+\.\d ms$/m)
})

test('console as the logger gets the message first, readable where nothing parses it', async () => {
  const calls = []
  const original = console.info
  console.info = (...args) => calls.push(args)
  try {
    const m = manager({ logger: console })
    m.registerTask({ id: 'a', handler: () => {} })
    await m.stop()
  } finally {
    console.info = original
  }
  const started = calls.find(([message]) => typeof message === 'string' && message.startsWith('shutdown started'))
  assert.ok(started, JSON.stringify(calls))
  assert.equal(started[1].tasks, 1)
})

test("activeHandles() names a child's stdio pipes, also of a child that was unref()'d", async (t) => {
  const m = manager()
  const { spawn } = require('node:child_process')
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'])
  const unrefed = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'])
  unrefed.unref()
  t.after(() => {
    child.kill('SIGKILL')
    unrefed.kill('SIGKILL')
  })
  const details = m.activeHandles().map((h) => h.detail)
  const named = ['stdin', 'stdout', 'stderr'].map((fd) => `${fd} of child process ${child.pid} (${process.execPath})`)
  for (const pipe of named) assert.ok(details.includes(pipe), JSON.stringify(details))
  // An unref()'d child is not listed, but its pipes still hold the loop open: said to be pipes, by fd.
  const fds = [0, 1, 2].map((fd) => unrefed.stdio[fd]._handle.fd)
  for (const fd of fds) {
    const pipe = `pipe or Unix socket, fd ${fd} (a child process's stdio, a socket path's connection)`
    assert.ok(details.includes(pipe), JSON.stringify(details))
  }
})

test('activeHandles() lists what keeps the loop alive: a server with its address, a connection, timers', async (t) => {
  const m = manager()
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = require('node:net').connect(server.address().port, '127.0.0.1')
  await new Promise((resolve) => client.once('connect', resolve))
  const before = m.activeHandles().find((h) => h.type === 'Timeout')
  const timers = [setInterval(() => {}, 60_000), setTimeout(() => {}, 60_000)]
  const unrefed = setInterval(() => {}, 60_000).unref()
  t.after(() => {
    client.destroy()
    server.close()
    for (const timer of [...timers, unrefed]) clearTimeout(timer)
  })
  const handles = m.activeHandles()
  const details = handles.map((h) => h.detail)
  const port = server.address().port
  assert.ok(details.includes(`server listening on 127.0.0.1:${port}`), JSON.stringify(handles))
  assert.ok(details.includes(`connection 127.0.0.1:${client.localPort} -> 127.0.0.1:${port}`), JSON.stringify(handles))
  // Two more timers than before; the unref()'d one is not counted.
  const count = (entry) => Number(/^(\d+) /.exec(entry?.detail ?? '0 ')[1])
  assert.equal(count(handles.find((h) => h.type === 'Timeout')), count(before) + 2, JSON.stringify(handles))
})

test('a stop() that does not exit, in a process something keeps alive, is told what keeps it alive', async () => {
  const fixture = start('still-alive.cjs', [], { killAfterMs: 15_000 })
  const r = await fixture.exited
  assert.equal(r.code, 0, r.stderr)
  const alive = find(r.lines, 'event', { event: 'shutdown:still-alive' })
  assert.ok(alive, JSON.stringify(r.lines))
  assert.equal(alive.afterMs, 300)
  const port = find(r.lines, 'listening').port
  const details = alive.handles.map((h) => h.detail)
  assert.ok(details.includes("1 setTimeout or setInterval timer not unref()'d"), JSON.stringify(alive.handles))
  assert.ok(details.includes(`server listening on 127.0.0.1:${port}`), JSON.stringify(alive.handles))
  const warned = r.lines.find(
    (l) => l.kind === 'log' && /still alive 300 ms after the shutdown finished/.test(l.message),
  )
  assert.ok(warned, 'logged as a warning')
  assert.match(warned.message, new RegExp(`Server: server listening on 127\\.0\\.0\\.1:${port}`))
  // A process that ends on its own in time is never told.
  const quick = start('still-alive.cjs', ['ends-in-time'], { killAfterMs: 15_000 })
  const q = await quick.exited
  assert.equal(q.code, 0, q.stderr)
  assert.equal(find(q.lines, 'event', { event: 'shutdown:still-alive' }), undefined)
})
