'use strict'
// Acceptance 6: an uncaught exception and an unhandled rejection each start a shutdown with their reason,
// are logged with their stack, and the process exits 1 once the tasks have run (it never resumes).

const test = require('node:test')
const assert = require('node:assert/strict')
const { run, start, kill, find, eventNames } = require('./helpers.cjs')

for (const [kind, reason, label] of [
  ['exception', 'uncaughtException', 'uncaught exception'],
  ['rejection', 'unhandledRejection', 'unhandled rejection'],
]) {
  test(`an ${label} shuts down with reason ${reason} and exits 1`, async () => {
    const { code, signal, lines, stderr } = await run('fatal.cjs', [kind])
    assert.equal(signal, null, stderr)
    assert.equal(code, 1, stderr)
    assert.equal(find(lines, 'event', { event: 'shutdown:start' }).reason, reason)
    assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown tasks ran')
    assert.deepEqual(eventNames(lines), ['shutdown:start', 'shutdown:task:complete', 'shutdown:complete'])
    const complete = find(lines, 'event', { event: 'shutdown:complete' })
    assert.equal(complete.exitCode, 1, 'a crash exits non-zero even when every task succeeded')
    // Logged with its stack (to stderr, since the fixture passes no logger).
    assert.match(stderr, new RegExp(`${label}, shutting down: boom: [^\n]+\nError: boom`))
    assert.match(stderr, /at Timeout\._onTimeout .*fatal\.cjs/)
  })
}

test('an error made in another realm (a vm context) is logged with its stack', async () => {
  const { code, stderr } = await run('fatal.cjs', ['other-realm'])
  assert.equal(code, 1, stderr)
  assert.match(
    stderr,
    /uncaught exception, shutting down: boom: from a vm context\nError: boom: from a vm context\n +at /,
  )
})

test('an error is logged as Node prints it: its class, its own properties and its cause', async () => {
  const { code, stderr } = await run('fatal.cjs', ['driver-error'])
  assert.equal(code, 1, stderr)
  // The stack alone said 'Error: duplicate key value' and nothing of what the driver added.
  assert.match(stderr, /\nDatabaseError: duplicate key value\n +at /)
  assert.match(stderr, /code: '23505'/)
  assert.match(stderr, /detail: 'Key \(email\) already exists\.'/)
  assert.match(stderr, /\[cause\]: Error: the index said so/)
})

test('an error holding a large object is printed cut, not whole', async () => {
  const { code, stderr } = await run('fatal.cjs', ['huge-error'])
  assert.equal(code, 1, stderr)
  assert.match(stderr, /Error: the upstream answered 500\n +at /)
  // The response's data is not walked: one level of the error's own properties is shown.
  assert.match(stderr, /response: \{ status: 500, data: \[Object\] \}/)
  // 20 of its 30 long lines, 1000 characters of each, and cut at 8 KiB.
  assert.match(stderr, /\.\.\. \(cut: the error printed as \d+ characters\)/)
  // 8 KiB of it, and the shutdown's own lines: not the 1.7 MB the whole object prints as.
  assert.ok(stderr.length < 16_000, `${stderr.length} characters`)
})

test('a rejection with a plain object is logged with its fields, not as [object Object]', async () => {
  const { code, stderr } = await run('fatal.cjs', ['object-rejection'])
  assert.equal(code, 1, stderr)
  // On one line (the Error it holds brings a stack), and cut short.
  const line = stderr.split('\n').find((l) => l.includes('unhandled rejection, shutting down'))
  assert.match(line, /shutting down: \{ code: 'E_UPSTREAM', status: 503, cause: Error: socket hang up at /)
  assert.ok(line.length < 600, `${line.length} characters`)
})

test("a logger whose error method throws does not take the crash's record with it", async () => {
  const { code, lines, stderr } = await run('fatal.cjs', ['logger-throws'])
  assert.equal(code, 1, stderr)
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown tasks ran')
  assert.match(stderr, /the logger's error method failed \(the log transport is down\)/)
  // The record itself, with its stack, as the default logger writes it.
  assert.match(stderr, /uncaught exception, shutting down: boom: the request handler crashed\nError: boom/)
})

test('a thrown value that throws when looked at (a revoked Proxy) still gets its shutdown and exit 1', async () => {
  const { code, lines, stderr } = await run('fatal.cjs', ['revoked-proxy'])
  assert.equal(code, 1, stderr)
  assert.equal(find(lines, 'event', { event: 'shutdown:start' })?.reason, 'uncaughtException')
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown tasks ran')
})

test('an uncaught exception during the shutdown delay ends the delay: the tasks run at once, exit 1', async () => {
  const fixture = start('fatal.cjs', ['during-delay'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, lines, stderr } = await fixture.exited
  assert.equal(code, 1, stderr)
  const thrown = find(lines, 'throwing')
  const started = find(lines, 'task-start', { id: 'drain' })
  assert.ok(thrown && started, stderr)
  // Within a few event-loop turns of the throw, not when the 2 s delay would have ended.
  assert.ok(started.at - thrown.at < 500, `the task started ${(started.at - thrown.at).toFixed(0)} ms after the throw`)
})

test('an error thrown by a nextTick callback on the way from a signal to the tasks is fatal, not lost', async () => {
  // The signal reaches JavaScript through a native call whose scope runs the tick queue after it; the error
  // thrown there must reach 'uncaughtException' as any callback's does, and the signal count once.
  const fixture = start('fatal.cjs', ['tick-on-signal'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 1, stderr)
  assert.match(stderr, /uncaught exception during the shutdown: boom: thrown by a tick/)
  assert.equal(find(lines, 'event', { event: 'shutdown:complete' })?.exitCode, 1)
  assert.equal(eventNames(lines).filter((e) => e === 'shutdown:start').length, 1)
  assert.doesNotMatch(stderr, /received SIGTERM during the shutdown/, 'the one SIGTERM was delivered once')
})

test('a shutdown that a signal or an uncaught error asks for but that cannot begin exits at once with the error code', async () => {
  for (const kind of ['signal', 'exception']) {
    const fixture = start('unbegun.cjs', [kind])
    await fixture.ready
    if (kind === 'signal') fixture.child.kill('SIGTERM')
    const { code, signal, lines, stderr } = await fixture.exited
    assert.equal(signal, null, `${kind}: ${stderr}`)
    assert.equal(code, 7, `${kind}: the configured error code, ${stderr}`)
    assert.match(stderr, /the shutdown could not begin, exiting at once: .*native record 2/, kind)
    assert.equal(find(lines, 'task-start', { id: 'drain' }), undefined, `${kind}: no task ran`)
  }
})

test('listeners saved and put back by other code (a test runner) neither pile up nor answer one error twice', async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['save-restore'])
  assert.equal(code, 1, stderr)
  assert.deepEqual(find(lines, 'ready')?.counts, [1, 1], 'one copy of each hook')
  const errors = lines.filter((l) => l.kind === 'log').map((l) => l.message)
  assert.deepEqual(
    errors.filter((m) => /boom|during the shutdown/.test(m)),
    ['uncaught exception, shutting down: boom: after the test files'],
  )
  assert.equal(find(lines, 'warning', { name: 'MaxListenersExceededWarning' }), undefined)
  assert.deepEqual(
    errors.filter((m) => /as soon as they are back/.test(m)),
    [],
    'a removal per test file, each in a turn of its own, is not a fight',
  )
})

test('hooks removed by a dozen timers due together are all put back, with no fight reported', async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['timers-burst'])
  assert.equal(code, 1, stderr)
  assert.deepEqual(find(lines, 'ready')?.counts, [1, 1])
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown ran')
  const errors = lines.filter((l) => l.kind === 'log').map((l) => l.message)
  assert.deepEqual(
    errors.filter((m) => /as soon as they are back/.test(m)),
    [],
  )
})

test("hooks removed in a 'beforeExit' listener are put back without keeping the process alive", async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['before-exit'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(
    lines.filter((l) => l.kind === 'before-exit').map((l) => l.turns),
    [1],
  )
})

test('dispose() in the tick a copy of the hooks was added leaves none behind', async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['dispose-copy'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(find(lines, 'ready')?.counts, [0, 0])
})

test('hooks removed many times in a row, a turn apart, are put back each time', async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['burst'])
  assert.equal(code, 1, stderr)
  assert.deepEqual(find(lines, 'ready')?.counts, [1, 1])
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown ran')
  assert.ok(lines.some((l) => l.kind === 'log' && /shutting down: boom: after the burst/.test(l.message)))
})

test('a library that removes the hooks as often as they are put back cannot stall the event loop', async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['fight'])
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'timer-ran'), 'a timer ran: the loop was not held in a tick-by-tick fight')
  assert.ok(
    lines.some(
      (l) =>
        l.kind === 'log' &&
        /removes the manager's 'uncaughtException' listeners as soon as they are back/.test(l.message),
    ),
    JSON.stringify(lines),
  )
})

test("under --unhandled-rejections=strict the crash is logged before another library's listener exits", async () => {
  const { code, lines, stderr } = await run('error-hooks.cjs', ['strict-exit'], {
    env: { NODE_OPTIONS: '--unhandled-rejections=strict' },
  })
  assert.equal(code, 5, stderr)
  assert.ok(find(lines, 'library-exits'))
  assert.ok(
    lines.some(
      (l) => l.kind === 'log' && l.message === 'unhandled rejection, shutting down: boom: nobody awaited this',
    ),
    JSON.stringify(lines),
  )
})

test('under --unhandled-rejections=strict a rejection is answered once, and its own reason is logged', async () => {
  for (const [mode, reasonLine] of [
    ['strict', null],
    // Node's wrapper says 'The promise rejected with the reason "#<Object>"': the object itself is logged too.
    ['strict-object', "the unhandled rejection's reason: { code: 'E_BOOM' }"],
  ]) {
    const { code, lines, stderr } = await run('error-hooks.cjs', [mode], {
      env: { NODE_OPTIONS: '--unhandled-rejections=strict' },
    })
    assert.equal(code, 1, stderr)
    const errors = lines.filter((l) => l.kind === 'log').map((l) => l.message)
    assert.equal(errors.filter((m) => /shutting down/.test(m)).length, 1, `${mode}: ${errors}`)
    assert.equal(errors.filter((m) => /during the shutdown/.test(m)).length, 0, `${mode}: ${errors}`)
    if (reasonLine) assert.ok(errors.includes(reasonLine), `${mode}: ${errors}`)
    else assert.ok(errors.includes('unhandled rejection, shutting down: boom: nobody awaited this'), `${errors}`)
    assert.equal(find(lines, 'event', { event: 'shutdown:start' })?.reason, 'unhandledRejection', mode)
  }
})
