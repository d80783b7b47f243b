'use strict'
// Acceptance 2: with the event loop stuck in `while (true) {}`, SIGTERM still ends the process at the
// deadline, natively, with exit code 124 and a report on stderr naming what was running.

const test = require('node:test')
const assert = require('node:assert/strict')
const { start, kill, find, needs, waitFor } = require('./helpers.cjs')

const DEADLINE = 300
const SLACK = 250

test('a task that blocks the event loop is ended at the deadline with a report naming it', async () => {
  const fixture = start('blocked.cjs', ['in-task', DEADLINE])
  await fixture.ready
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, signal, stderr, exitedAt, lines } = await fixture.exited
  const elapsed = exitedAt - sentAt
  assert.equal(signal, null, 'exited with a code, not killed by a signal')
  assert.equal(code, 124, stderr)
  assert.ok(elapsed >= DEADLINE - 1, `exited ${elapsed.toFixed(1)} ms after SIGTERM: not before the deadline`)
  assert.ok(elapsed <= DEADLINE + SLACK, `exited ${elapsed.toFixed(1)} ms after SIGTERM (deadline ${DEADLINE} ms)`)
  assert.ok(find(lines, 'task-start', { id: 'spin' }), 'the blocking task had started')
  assert.match(
    stderr,
    /hard exit: the graceful shutdown \(reason SIGTERM\) did not finish within its 300\.0 ms deadline/,
  )
  assert.match(stderr, /running: 'spin' \(CPU-bound cleanup\) for \d+\.\d ms/)
  assert.match(stderr, /pending: 'after'/)
  assert.match(stderr, /event loop: blocked/)
  assert.match(stderr, /exiting with code 124/)
  assert.ok(!find(lines, 'task-start', { id: 'after' }), 'the task after the blocked one never ran')
})

test('a loop blocked before the signal still exits at the deadline, and the report says no task started', async () => {
  const fixture = start('blocked.cjs', ['before-signal', DEADLINE])
  await fixture.ready
  // Signal once the fixture is in its loop: no JavaScript runs from here on.
  await waitFor(() => find(fixture.lines, 'blocking'), 5000, 'the loop to be stuck')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, signal, stderr, exitedAt, lines } = await fixture.exited
  const elapsed = exitedAt - sentAt
  assert.equal(signal, null)
  assert.equal(code, 124, stderr)
  assert.ok(elapsed >= DEADLINE - 1 && elapsed <= DEADLINE + SLACK, `exited after ${elapsed.toFixed(1)} ms`)
  assert.ok(find(lines, 'blocking'))
  assert.ok(!find(lines, 'event'), 'no JavaScript event could run')
  assert.match(stderr, /the shutdown never reached JavaScript, so no task was started/)
  assert.match(stderr, /pending: 'quick', 'spin', 'after'/)
})

test('a loop stuck in the turn that registered the tasks: the report says there are tasks it does not know', async () => {
  const fixture = start('blocked.cjs', ['in-bootstrap', DEADLINE])
  await fixture.ready
  await waitFor(() => find(fixture.lines, 'blocking'), 5000, 'the loop to be stuck')
  kill(fixture.child, 'SIGTERM')
  const { code, stderr } = await fixture.exited
  assert.equal(code, 124, stderr)
  assert.match(stderr, /the shutdown never reached JavaScript, so no task was started/)
  // It counted no task and said nothing more: "(of 0 tasks)" read as a service without any.
  assert.match(stderr, /tasks registered in the turn of JavaScript that was still running are not known here/)
  assert.match(stderr, /last heard from JavaScript [\d.]+ ms ago/)
})

test('a signal after a stop() that did not exit: the report measures by the deadline the signal set', async () => {
  const fixture = start('blocked.cjs', ['after-stop', DEADLINE])
  await fixture.ready
  await waitFor(() => find(fixture.lines, 'blocking'), 5000, 'the loop to be stuck')
  // Long past the stop()'s own 100 ms deadline.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, stderr, exitedAt, lines } = await fixture.exited
  const elapsed = exitedAt - sentAt
  assert.equal(code, 124, stderr)
  assert.equal(find(lines, 'stopped')?.exitCode, 0)
  assert.ok(elapsed >= DEADLINE - 1 && elapsed <= DEADLINE + SLACK, `exited ${elapsed.toFixed(1)} ms after SIGTERM`)
  assert.match(
    stderr,
    /hard exit: the shutdown \(reason manual\) had finished with exit code 0 without exiting; a signal then asked for the exit/,
  )
  const [, pastDeadline] = /elapsed [\d.]+ ms since it began \(([\d.]+) ms past the deadline\)/.exec(stderr) ?? []
  assert.ok(Number(pastDeadline) < SLACK, `${pastDeadline} ms past the deadline:\n${stderr}`)
  const [, probeBefore] = /no answer to a probe sent ([\d.]+) ms before the deadline/.exec(stderr) ?? []
  assert.ok(Number(probeBefore) >= 0 && Number(probeBefore) <= 50, `probe ${probeBefore} ms before:\n${stderr}`)
})

test('stop() in a loop that was busy when the signal came joins the shutdown the signal began', async () => {
  const fixture = start('blocked.cjs', ['stop-after-signal', '5000'])
  await fixture.ready
  await waitFor(() => find(fixture.lines, 'blocking'), 5000, 'the loop to be busy')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const { code, stderr, lines } = await fixture.exited
  // The loop was busy before the signal came, so JavaScript could not begin the shutdown itself.
  assert.ok(find(lines, 'blocking')?.at < sentAt, 'the loop was busy before the signal')
  // Begun by the signal, not by stop(): its reason and signal are the signal's, in the event and the result.
  assert.ok(find(lines, 'event', { event: 'shutdown:start', reason: 'SIGTERM', signal: 'SIGTERM' }), stderr)
  assert.ok(find(lines, 'stopped', { reason: 'SIGTERM', exitCode: 0 }), stderr)
  // The signal reaches JavaScript after stop(): the shutdown ends by exiting, as a signal's does.
  assert.equal(code, 0, stderr)
})

test(
  'a deadline seconds away is kept in a niced process, where the kernel lets a long wait run 0.5% late',
  needs('nice'),
  async () => {
    // Nothing else wakes the watchdog on the way (no signal owned, so no guard; no stall probes). Asked for
    // the whole 10 s at once, its wait for the probe 20 ms before the deadline may end 50 ms late: it did
    // at the deadline or past it in two runs of four, and 9 and 14 ms before it in the other two (the kernel
    // ends such a wait early when another timer fires on that CPU).
    const fixture = start('unowned-stop.cjs', [10_000], { command: ['nice', '-n', '10'], killAfterMs: 20_000 })
    const r = await fixture.exited
    assert.equal(r.code, 124, r.stderr)
    // Bounds against the 50 ms the slack would add, loose enough for a niced process on two busy cores (the
    // full suite's other files run meanwhile): one CI run saw it miss a 5 ms bound there.
    const past = Number(/\(([\d.]+) ms past the deadline\)/.exec(r.stderr)?.[1])
    assert.ok(past < 20, `the hard exit came ${past} ms past the deadline: ${r.stderr}`)
    const probe = Number(/no answer to a probe sent ([\d.]+) ms before the deadline/.exec(r.stderr)?.[1])
    assert.ok(probe >= 10, `the probe went out ${probe} ms before the deadline (20 planned): ${r.stderr}`)
  },
)

/** Runs guarantee.cjs's `mode` to its hard exit on SIGTERM (exit code 124); what the process wrote. */
async function hardExitOf(mode) {
  const fixture = start('guarantee.cjs', [mode])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const exited = await fixture.exited
  assert.equal(exited.code, 124, exited.stderr)
  return exited
}

test("a loop blocked while a level's handlers were being called: the report does not call them all running", async () => {
  const { stderr, lines } = await hardExitOf('blocked-in-level')
  assert.ok(find(lines, 'task-start', { id: 'spin' }), 'the blocking handler ran')
  assert.ok(!find(lines, 'task-start', { id: 'never' }), 'the handler after it was never called')
  // 'never' was listed as running for the whole shutdown, though its handler was never called.
  assert.doesNotMatch(stderr, /running: 'never'/)
  assert.match(
    stderr,
    /starting: 'quick', 'spin', 'never' \(handed out to start: their handlers are called in this order/,
  )
  // The next level's one task, handed out and called in the same turn as the settle before it: running.
  const inNext = await hardExitOf('blocked-in-next-level')
  assert.match(inNext.stderr, /running: 'spin' for [\d.]+ ms\n/)
  assert.doesNotMatch(inNext.stderr, /starting:/)
  // One task alone, the loop blocked in a listener before its handler: it is not called running either.
  const inListener = await hardExitOf('blocked-in-start-listener')
  assert.ok(!find(inListener.lines, 'task-start', { id: 'db' }), 'the handler was never called')
  assert.doesNotMatch(inListener.stderr, /running: 'db'/)
  assert.match(
    inListener.stderr,
    /starting: 'db' \(handed out to start: the loop stopped before its handler was called, in a listener/,
  )
  // Once every handler of the level was called, a loop blocked later leaves them all running.
  const blockedLater = await hardExitOf('blocked-after-level')
  assert.ok(find(blockedLater.lines, 'task-start', { id: 'spins-later' }), 'the loop blocked after the handlers')
  assert.match(blockedLater.stderr, /running: 'waits' for [\d.]+ ms\n.*running: 'spins-later' for /)
  assert.doesNotMatch(blockedLater.stderr, /starting:/)
})

test('a last task that settles just after the deadline, ahead of its event, still exits 124', async () => {
  const { stderr, lines } = await hardExitOf('settles-after-deadline')
  const complete = find(lines, 'event', { event: 'shutdown:complete' })
  assert.equal(complete?.exitCode, 124, stderr)
  assert.equal(complete.hardExit, true)
  assert.match(stderr, /did not finish within its 400\.0 ms deadline/)
})

test("the JavaScript side's lines escape task ids as the report does: none can forge a line", async () => {
  const { stderr } = await hardExitOf('hostile-log-lines')
  assert.doesNotMatch(
    stderr,
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/,
    'no raw control character reaches the terminal',
  )
  assert.deepEqual(
    stderr.split('\n').filter((line) => line.startsWith('titan-lifecycle: exiting')),
    ['titan-lifecycle: exiting with code 124'],
    stderr,
  )
  // Each of the three lines names its task, escaped and whole.
  const escapedId = (name) => `'${name}\\'\\ntitan-lifecycle: exiting with code 0\\n\\x1b[31m'`
  assert.ok(stderr.includes(`shutdown task ${escapedId('fails')} failed: no`), stderr)
  assert.ok(stderr.includes(`shutdown task ${escapedId('times-out')} timed out after 50 ms`), stderr)
  assert.ok(stderr.includes(`still running: ${escapedId('hangs')}`), stderr)
})

test('the report escapes control characters in task ids and names, and says when it was cut', async () => {
  const { stderr } = await hardExitOf('hostile-report')
  const report = stderr.slice(stderr.indexOf('titan-lifecycle: hard exit'))
  assert.doesNotMatch(
    report,
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/,
    'no raw control character reaches the terminal',
  )
  assert.doesNotMatch(report, /^titan-lifecycle: forged/m, 'no id can forge a line of the report')
  assert.ok(
    report.includes("running: 'evil\\ntitan-lifecycle: forged line\\x1b[2J\\x07\\x00\\u{9b}'"),
    report.slice(0, 600),
  )
  assert.match(report, /report cut: it did not fit in \d+ bytes/)
  assert.match(report, /\ntitan-lifecycle: exiting with code 124\n$/, 'the exit line ends the report, even a cut one')
})
