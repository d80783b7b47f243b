'use strict'
// Acceptance 5: a second owned signal during a hanging shutdown exits at once, from native code, with
// 128 + the signal number; and the options that change that.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { start, kill, find, eventNames, waitFor, rerunWhileMissed, needs } = require('./helpers.cjs')

const AT_ONCE_MS = 250

async function secondSignal({ first, second, options = {} }) {
  const fixture = start('hang.cjs', [JSON.stringify(options)])
  await fixture.ready
  kill(fixture.child, first)
  // Wait until the shutdown is really running before the second signal.
  await waitFor(() => find(fixture.lines, 'task-start', { id: 'hang' }), 5000, "the 'hang' task's start")
  const sentAt = kill(fixture.child, second)
  const result = await fixture.exited
  return { ...result, afterSecond: result.exitedAt - sentAt }
}

test('a second SIGINT during a hanging shutdown exits with 130 at once', async () => {
  const { code, signal, stderr, afterSecond } = await secondSignal({ first: 'SIGINT', second: 'SIGINT' })
  assert.equal(signal, null)
  assert.equal(code, 130, stderr)
  assert.ok(afterSecond < AT_ONCE_MS, `exited ${afterSecond.toFixed(1)} ms after the second SIGINT`)
  assert.match(stderr, /second SIGINT during shutdown, exiting now with code 130/)
})

test('SIGTERM then SIGINT exits with 130, the code of the second signal', async () => {
  const { code, afterSecond } = await secondSignal({ first: 'SIGTERM', second: 'SIGINT' })
  assert.equal(code, 130)
  assert.ok(afterSecond < AT_ONCE_MS)
})

test('SIGINT then SIGTERM exits with 143', async () => {
  const { code } = await secondSignal({ first: 'SIGINT', second: 'SIGTERM' })
  assert.equal(code, 143)
})

test('exitCodes.secondSignal sets a fixed code', async () => {
  const { code } = await secondSignal({
    first: 'SIGTERM',
    second: 'SIGTERM',
    options: { exitCodes: { secondSignal: 3 } },
  })
  assert.equal(code, 3)
})

/** Sends `signal` to `pid` from another process than this one (the fixture's parent): a shell's kill. */
function killFromElsewhere(pid, signal) {
  const { status } = spawnSync('sh', ['-c', `kill -${signal.replace(/^SIG/, '')} ${pid}`])
  assert.equal(status, 0, 'the shell sent the signal')
}

test('a library relaying the signal to its own process (signal-exit) joins the shutdown', needs('sh'), async () => {
  // From elsewhere than the parent, as a supervisor that is not the parent (kubelet, `docker stop` to
  // PID 1) or a terminal sends it.
  const fixture = start('late-signals.cjs', ['relay'])
  await fixture.ready
  killFromElsewhere(fixture.child.pid, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.ok(find(lines, 'relayed'), 'the library relayed the signal')
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'task-end', { id: 'drain' }), 'the shutdown ran its task')
  assert.deepEqual(eventNames(lines), ['shutdown:start', 'shutdown:task:complete', 'shutdown:complete'])
  assert.doesNotMatch(stderr, /second SIGTERM/)
})

test("a signal after the shutdown finished exits at once with the shutdown's code", async () => {
  const fixture = start('late-signals.cjs', ['after-finish'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  await waitFor(() => find(fixture.lines, 'event', { event: 'shutdown:complete' }), 5000, 'the shutdown')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr, exitedAt } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.ok(!find(lines, 'listener-done'), 'the signal cut the busy listener short')
  assert.ok(exitedAt - sentAt < 1000, `exited ${(exitedAt - sentAt).toFixed(0)} ms after the signal`)
  assert.match(stderr, /SIGTERM after the shutdown finished, exiting now with its code 0/)
  // The first signal too, in the 'exit' listeners of a shutdown that stop({ exit: true }) began.
  const exiting = start('late-signals.cjs', ['exit-listener'])
  await waitFor(() => find(exiting.lines, 'exit-listener'), 5000, "the 'exit' listener")
  const firstAt = kill(exiting.child, 'SIGTERM')
  const first = await exiting.exited
  assert.equal(first.code, 0, first.stderr)
  assert.ok(first.exitedAt - firstAt < 1000, `exited ${(first.exitedAt - firstAt).toFixed(0)} ms after the signal`)
  assert.match(first.stderr, /SIGTERM after the shutdown finished, exiting now with its code 0/)
  // And in the 'exit' listeners of an exit asked of a shutdown that finished without one, its deadline past.
  const late = start('late-signals.cjs', ['exit-after-deadline'])
  await waitFor(() => find(late.lines, 'exit-listener'), 5000, "the late exit's 'exit' listener")
  const lateAt = kill(late.child, 'SIGTERM')
  const afterDeadline = await late.exited
  assert.equal(afterDeadline.code, 0, afterDeadline.stderr)
  assert.ok(
    afterDeadline.exitedAt - lateAt < 1000,
    `exited ${(afterDeadline.exitedAt - lateAt).toFixed(0)} ms after the signal`,
  )
  assert.match(afterDeadline.stderr, /SIGTERM after the shutdown finished, exiting now with its code 0/)
})

test('with forceExitOnSecondSignal: false a second signal joins, and the deadline ends the shutdown', async (t) => {
  // JavaScript has 20 ms from the deadline to answer it; a fixture not scheduled for that long (it answered
  // the probe 20 ms before, so its loop was free) is run again.
  const { code, signal, stderr, afterSecond, lines } = await rerunWhileMissed(
    t,
    3,
    () =>
      secondSignal({
        first: 'SIGTERM',
        second: 'SIGINT',
        options: { forceExitOnSecondSignal: false, gracefulShutdownTimeout: 400 },
      }),
    (r) =>
      /event loop: stopped answering \(it answered a probe/.test(r.stderr) &&
      'JavaScript answered the probe, not the deadline',
  )
  assert.equal(signal, null)
  assert.equal(code, 124, stderr)
  assert.ok(afterSecond > 100, 'the second signal did not end the process')
  assert.match(stderr, /running: 'hang'/)
  assert.match(stderr, /event loop: responsive/, 'the loop was free, so JavaScript answered the deadline')
  // The loop was responsive, so JavaScript reported the hard exit before the watchdog took the process.
  const error = find(lines, 'event', { event: 'shutdown:error' })
  assert.equal(error.error.code, 'ERR_SHUTDOWN_TIMEOUT')
  assert.match(error.error.message, /still running: 'hang'/)
  const complete = find(lines, 'event', { event: 'shutdown:complete' })
  assert.equal(complete.hardExit, true)
  assert.equal(complete.exitCode, 124)
})
