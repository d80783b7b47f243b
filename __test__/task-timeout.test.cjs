'use strict'
// Acceptance 3: a task that never settles is timed out, its AbortSignal aborts, later tasks still run, and
// the process exits with code 1.

const test = require('node:test')
const assert = require('node:assert/strict')
const { start, kill, find, eventNames } = require('./helpers.cjs')

test('a task that never settles times out, aborts, and the shutdown goes on to exit 1', async () => {
  const fixture = start('never-settles.cjs')
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 1, stderr)

  const started = find(lines, 'task-start', { id: 'stuck' })
  const aborted = find(lines, 'task-abort', { id: 'stuck' })
  assert.ok(aborted, 'the AbortSignal aborted')
  assert.equal(aborted.code, 'ERR_TASK_TIMEOUT')
  assert.match(aborted.message, /'stuck' timed out after 200 ms/)
  const waited = aborted.at - started.at
  assert.ok(waited >= 195 && waited < 450, `aborted ${waited.toFixed(1)} ms after it started`)

  const error = find(lines, 'event', { event: 'shutdown:task:error' })
  assert.equal(error.taskId, 'stuck')
  assert.equal(error.timedOut, true)
  assert.equal(error.error.code, 'ERR_TASK_TIMEOUT')
  assert.ok(error.durationMs >= 195)

  // Later tasks still ran, after the timeout.
  assert.ok(find(lines, 'task-start', { id: 'later' }).at >= aborted.at)
  assert.ok(find(lines, 'task-end', { id: 'destroy' }))
  assert.deepEqual(
    eventNames(lines).filter((e) => e !== 'shutdown:task:complete'),
    ['shutdown:start', 'shutdown:task:error', 'shutdown:complete'],
  )
  const complete = find(lines, 'event', { event: 'shutdown:complete' })
  assert.equal(complete.exitCode, 1)
  assert.equal(complete.hardExit, false)
})
