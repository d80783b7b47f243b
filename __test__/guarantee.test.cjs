'use strict'
// Ways the guarantee once broke: a timer that overflowed, Node's own SIGINT handler, a signal during the
// bootstrap or before dispose(), a signal that never reached libuv, a stop() that never settled. Each runs
// fixtures/guarantee.cjs in its own process with real signals.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const {
  start,
  kill,
  run,
  find,
  waitFor,
  eventNames,
  needs,
  onLinux,
  neighbourAfterFixture,
  compiledLibrary,
} = require('./helpers.cjs')

function assertGraceful(result, reason = 'SIGTERM') {
  assert.equal(result.killedByTimer, false, 'the process hung')
  assert.equal(result.signal, null, `killed by ${result.signal}\n${result.stderr}`)
  assert.equal(result.code, 0, result.stderr)
  assert.equal(find(result.lines, 'event', { event: 'shutdown:start' })?.reason, reason, result.stderr)
  assert.equal(find(result.lines, 'event', { event: 'shutdown:complete' })?.exitCode, 0)
}

test('gracefulShutdownTimeout at 2^31-1 ms runs the shutdown instead of exiting 124 at once', async () => {
  const fixture = start('guarantee.cjs', ['longest-timeout'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assertGraceful(result)
  assert.ok(find(result.lines, 'task-end', { id: 'work' }), 'the task ran to its end')
})

test('stop({ timeout: 2^31-1 }) finishes normally and no timer fires early', async () => {
  const result = await run('guarantee.cjs', ['longest-stop-timeout'])
  assert.deepEqual(find(result.lines, 'result'), { ...find(result.lines, 'result'), exitCode: 0, hardExit: false })
  assert.ok(find(result.lines, 'alive'), 'the process was still running 300 ms later')
  assert.equal(result.code, 0, result.stderr)
})

test("Node's SIGINT watchdog (vm breakOnSigint) cannot take SIGINT for the next loop turn", async () => {
  const result = await run('guarantee.cjs', ['break-on-sigint', 'self'])
  assert.equal(find(result.lines, 'after-vm')?.installed, true, 'our handler was back before the next turn')
  assertGraceful(result, 'SIGINT')
})

test("Ctrl-C during a long breakOnSigint evaluation interrupts it: the guard leaves Node's handler there", async () => {
  const fixture = start('guarantee.cjs', ['break-on-sigint-long'])
  await fixture.ready
  await waitFor(() => find(fixture.lines, 'evaluating'), 5000, 'the evaluation')
  // Past three of the guard's checks, which must not have taken the slot from Node's SIGINT watchdog.
  await new Promise((resolve) => setTimeout(resolve, 700))
  kill(fixture.child, 'SIGINT')
  const result = await fixture.exited
  assert.equal(find(result.lines, 'interrupted')?.code, 'ERR_SCRIPT_EXECUTION_INTERRUPTED', result.stderr)
  assert.ok(!find(result.lines, 'event', { event: 'shutdown:start' }), 'no shutdown began')
  assert.equal(result.code, 0, result.stderr)
})

test('a SIGINT sent right after a breakOnSigint evaluation starts the shutdown', async () => {
  const fixture = start('guarantee.cjs', ['break-on-sigint'])
  await fixture.ready
  kill(fixture.child, 'SIGINT')
  const result = await fixture.exited
  assertGraceful(result, 'SIGINT')
})

test('tasks registered during a synchronous bootstrap that a signal interrupted belong to the shutdown', async () => {
  const fixture = start('guarantee.cjs', ['bootstrap'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  const registered = find(result.lines, 'register')
  assert.equal(registered.http, 'ok', JSON.stringify(registered))
  assert.equal(registered.db, 'ok')
  assert.equal(registered.state, 'stopping', 'the shutdown had begun natively')
  assertGraceful(result)
  assert.ok(find(result.lines, 'task-end', { id: 'http' }))
  assert.ok(find(result.lines, 'task-end', { id: 'db' }))
})

test('dispose() in the same tick as a self-kill runs the shutdown the signal began', async () => {
  const result = await run('guarantee.cjs', ['kill-then-dispose'])
  assertGraceful(result)
  assert.ok(find(result.lines, 'task-end', { id: 'work' }))
})

for (const order of ['before', 'after']) {
  test(`a SIGTERM listener (added ${order} the manager) that disposes it cannot orphan the shutdown`, async () => {
    const fixture = start('guarantee.cjs', ['listener-disposes', order])
    await fixture.ready
    kill(fixture.child, 'SIGTERM')
    const result = await fixture.exited
    assert.ok(find(result.lines, 'listener'), 'the listener ran')
    assertGraceful(result)
    assert.ok(find(result.lines, 'task-end', { id: 'work' }))
  })
}

for (const variant of ['default', 'only-sigterm']) {
  test(`a signal that native code kept from libuv still reaches JavaScript, through the watchdog (${variant} signals)`, {
    ...needs('gcc'),
    ...onLinux('LD_PRELOAD'),
  }, async () => {
    const fixture = start('guarantee.cjs', ['libuv-unreachable', variant], {
      env: neighbourAfterFixture(100),
    })
    await fixture.ready
    await waitFor(() => /neighbour: installed/.test(fixture.output().stderr), 2000, 'the neighbour')
    kill(fixture.child, 'SIGTERM')
    const result = await fixture.exited
    assert.match(result.stderr, /neighbour: handler ran/, 'the neighbour, chained, still ran')
    assertGraceful(result)
    assert.ok(find(result.lines, 'task-end', { id: 'work' }))
    // libuv's handler is not put back behind the neighbour (it would run twice behind one that chains to
    // it), so the other library's JavaScript listener does not hear it: the neighbour took it from libuv.
    assert.ok(!find(result.lines, 'foreign-listener'))
  })
}

test('the deadline holds while a dlopen on the main thread runs a slow constructor that displaced our handler', {
  ...needs('gcc'),
  ...onLinux("glibc's loader lock"),
}, async () => {
  // The guard, watching closely after an earlier displacement, finds the new one during the constructor's
  // sleep. Describing the handler asks the loader (dladdr), whose lock the dlopen holds: on the watchdog,
  // that held the hard exit until the constructor returned, 3 s past the deadline.
  const library = compiledLibrary('slow-constructor.c')
  const second = `${library}.${process.pid}.second.so`
  fs.copyFileSync(library, second)
  try {
    const fixture = start('guarantee.cjs', ['slow-constructor', `${library},${second}`])
    await fixture.ready
    const sentAt = kill(fixture.child, 'SIGTERM')
    const r = await fixture.exited
    assert.equal(r.code, 124, r.stderr)
    const afterMs = r.exitedAt - sentAt
    assert.ok(afterMs < 1000 + 500, `exited ${afterMs.toFixed(0)} ms after SIGTERM; the deadline was 1000 ms`)
    assert.match(r.stderr, /did not finish within its 1000\.0 ms deadline/)
  } finally {
    fs.rmSync(second, { force: true })
  }
})

test('a stop() joined by a signal resolves, and its continuation runs before the process exits', async () => {
  const fixture = start('guarantee.cjs', ['stop-joined-continuation'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 0, result.stderr)
  assert.equal(find(result.lines, 'stop-resolved')?.exitCode, 0)
  assert.ok(find(result.lines, 'continuation-done'), 'the continuation ran to its end')
  assert.deepEqual(
    eventNames(result.lines).filter((e) => e === 'shutdown:start'),
    ['shutdown:start'],
  )
})

test('a joined stop() whose continuation never ends still exits at the deadline, with the shutdown code', async () => {
  const fixture = start('guarantee.cjs', ['stop-joined-lingering'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.signal, null)
  assert.equal(result.code, 0, result.stderr)
  assert.ok(find(result.lines, 'stop-resolved'))
  // The deadline is stop()'s, 800 ms from the shutdown's start; a joined stop() gives up waiting for its
  // continuations 50 ms before it (loose for 2 noisy cores).
  const after = result.exitedAt - find(result.lines, 'event', { event: 'shutdown:start' }).at
  assert.ok(after > 740 && after < 800 + 300, `exited ${after.toFixed(0)} ms after the start (deadline 800 ms)`)
})
