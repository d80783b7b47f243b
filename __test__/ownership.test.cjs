'use strict'
// Acceptance 4: SIGTERM starts the graceful shutdown even after other code added its own listener, removed
// every SIGTERM listener, or removed every listener of every event; a foreign listener still gets it once.

const test = require('node:test')
const assert = require('node:assert/strict')
const { start, kill, find, eventNames } = require('./helpers.cjs')

async function sigterm(variant) {
  const fixture = start('foreign-listeners.cjs', [variant])
  const readyLine = await fixture.ready
  if (variant !== 'same-tick') kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  return { ...result, readyLine }
}

function assertGraceful({ code, signal, lines, stderr }) {
  assert.equal(signal, null, `died by ${signal}: the signal reached Node's default action\n${stderr}`)
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown task ran')
  assert.deepEqual(eventNames(lines), ['shutdown:start', 'shutdown:task:complete', 'shutdown:complete'])
  assert.equal(find(lines, 'event', { event: 'shutdown:start' }).reason, 'SIGTERM')
}

test("another library's SIGTERM listener runs once and the shutdown still runs", async () => {
  const result = await sigterm('listener')
  assertGraceful(result)
  assert.equal(result.readyLine.sigtermListeners, 1)
  assert.equal(result.lines.filter((l) => l.kind === 'foreign-listener').length, 1)
})

test("process.removeAllListeners('SIGTERM') does not stop the shutdown", async () => {
  const result = await sigterm('remove-signal')
  assertGraceful(result)
  assert.equal(result.readyLine.sigtermListeners, 0)
  assert.ok(!find(result.lines, 'foreign-listener'))
})

test('process.removeAllListeners() with no argument does not stop the shutdown', async () => {
  const result = await sigterm('remove-all')
  assertGraceful(result)
  assert.ok(!find(result.lines, 'foreign-listener'))
})

test('a self-kill in the same tick as removeAllListeners is still a graceful shutdown', async () => {
  const result = await sigterm('same-tick')
  assertGraceful(result)
  assert.ok(find(result.lines, 'survived-self-kill'), 'process.kill returned: the signal did not kill the process')
})
