'use strict'
// User code that throws (a logger) or a stderr that fails (EPIPE) is isolated: it never turns into an
// endless loop of errors that starves the event loop until the deadline.

const test = require('node:test')
const assert = require('node:assert/strict')
const { start, kill, find } = require('./helpers.cjs')
const { ShutdownManager } = require('..')

const DEADLINE = 3000

test('a logger whose info throws does not stop the shutdown, and it exits 0 long before the deadline', async () => {
  const fixture = start('error-loops.cjs', ['logger-info-throws'])
  await fixture.ready
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, signal, stderr, lines, exitedAt } = await fixture.exited
  assert.equal(signal, null)
  assert.equal(code, 0, stderr.slice(0, 2000))
  assert.ok(find(lines, 'task-end', { id: 'drain' }))
  assert.ok(find(lines, 'task-end', { id: 'db' }))
  assert.ok(exitedAt - sentAt < DEADLINE / 2, `exited ${(exitedAt - sentAt).toFixed(0)} ms after SIGTERM`)
  assert.ok(stderr.length < 4000, `no flood on stderr (${stderr.length} bytes)`)
})

test('a logger whose info returns a rejected promise does not turn a clean shutdown into exit 1', async () => {
  const fixture = start('error-loops.cjs', ['logger-rejects'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, stderr, lines } = await fixture.exited
  assert.equal(code, 0, stderr.slice(0, 2000))
  assert.equal(find(lines, 'event', { event: 'shutdown:start' })?.reason, 'SIGTERM')
  assert.match(stderr, /the logger's info method failed \(the logger is broken\); the shutdown goes on/)
})

test('a logger whose warn throws does not keep the destroy phase from running', async () => {
  const fixture = start('error-loops.cjs', ['logger-warn-throws'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, stderr, lines } = await fixture.exited
  assert.equal(code, 1, stderr.slice(0, 2000))
  assert.ok(find(lines, 'event', { event: 'shutdown:task:error' }))
  assert.ok(find(lines, 'task-end', { id: 'db' }), 'the destroy phase ran')
  assert.equal(find(lines, 'event', { event: 'shutdown:complete' })?.exitCode, 1)
})

test('an uncaught exception with a broken stderr (EPIPE) exits 1, not 124 after a flood of errors', async () => {
  const fixture = start('error-loops.cjs', ['broken-stderr'])
  // The collector goes away before anything is written.
  fixture.child.stderr.destroy()
  const { code, signal, lines, killedByTimer } = await fixture.exited
  assert.equal(killedByTimer, false)
  assert.equal(signal, null)
  assert.equal(code, 1)
  const start_ = find(lines, 'event', { event: 'shutdown:start' })
  assert.equal(start_?.reason, 'uncaughtException')
  assert.ok(find(lines, 'task-end', { id: 'db' }), 'every task ran')
  const complete = find(lines, 'event', { event: 'shutdown:complete' })
  assert.equal(complete?.exitCode, 1)
  assert.ok(complete.totalDurationMs < DEADLINE / 2, `took ${complete.totalDurationMs} ms`)
})

test('task ids are compared exactly: an id that is not well-formed Unicode is refused, not mangled', () => {
  const manager = new ShutdownManager({ disableGracefulShutdown: true })
  for (const id of ['a\uD800', '\uDC00b', 'c\uD800\uD800']) {
    assert.throws(
      () => manager.registerTask({ id, handler() {} }),
      (error) =>
        error instanceof TypeError && error.code === 'ERR_INVALID_ARG_VALUE' && /lone surrogate/.test(error.message),
      JSON.stringify(id),
    )
    assert.throws(() => manager.registerTask({ id: 'ok', dependsOn: [id], handler() {} }), {
      code: 'ERR_INVALID_ARG_VALUE',
    })
  }
  // Well-formed strings of any script, astral characters included, round-trip exactly.
  const ids = ['日本', '🦀', 'e\u0301', 'ﬁ']
  for (const id of ids) manager.registerTask({ id, handler() {} })
  return manager.stop().then((result) => assert.deepEqual(result.tasks.map((t) => t.id).sort(), [...ids].sort()))
})
