'use strict'
// Every write on an exit path has a bounded budget: a stderr that nobody reads (a stalled log collector, a
// terminal paused with Ctrl-S) cannot keep the process from exiting, and the exit code is always the one the
// shutdown reported.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const {
  start,
  launch,
  kill,
  find,
  waitFor,
  now,
  needs,
  onLinux,
  rerunWhileMissed,
  scratchDirectory,
  FIXTURES,
} = require('./helpers.cjs')

const DEADLINE = 400
/** The exit paths' write budget (50 ms) plus a noisy machine's slack. */
const SLACK = 300

async function signalled(mode, { stallStderr = true, extra = [] } = {}) {
  const fixture = start('stalled-stderr.cjs', [mode, DEADLINE, ...extra], { stallStderr, killAfterMs: 8000 })
  await fixture.ready
  return { fixture, sentAt: kill(fixture.child, 'SIGTERM') }
}

test(
  'a blocked loop ends at the deadline with 124 although stderr is a full pipe nobody reads',
  needs('mkfifo'),
  async () => {
    const { fixture, sentAt } = await signalled('blocked')
    const { code, signal, exitedAt, killedByTimer } = await fixture.exited
    assert.equal(killedByTimer, false, 'the process hung writing its report')
    assert.equal(signal, null)
    assert.equal(code, 124)
    const elapsed = exitedAt - sentAt
    assert.ok(elapsed >= DEADLINE - 1 && elapsed <= DEADLINE + SLACK, `exited ${elapsed.toFixed(1)} ms after SIGTERM`)
  },
)

test("diagnosticReport writes Node's report, and the exit is on time, although stderr is a full pipe nobody reads", {
  ...needs('mkfifo'),
  ...onLinux("Node's diagnostic report written from native code"),
}, async (t) => {
  const directory = scratchDirectory(t, 'stalled-report')
  const { fixture, sentAt } = await signalled('blocked-report', { extra: [directory] })
  const { code, exitedAt, killedByTimer } = await fixture.exited
  assert.equal(killedByTimer, false)
  assert.equal(code, 124)
  const elapsed = exitedAt - sentAt
  assert.ok(elapsed <= DEADLINE + SLACK, `exited ${elapsed.toFixed(1)} ms after SIGTERM`)
  // Node announces the report on stderr before it writes the file: held there, it wrote nothing.
  const written = fs.readdirSync(directory)
  assert.equal(written.length, 1, 'one report')
  const report = JSON.parse(fs.readFileSync(path.join(directory, written[0]), 'utf8'))
  assert.equal(report.header.trigger, 'titan-lifecycle')
})

test('a second signal exits at once with 143 although stderr is a full pipe', needs('mkfifo'), async () => {
  const { fixture } = await signalled('second-signal')
  await waitFor(() => find(fixture.lines, 'task-start', { id: 'hang' }), 5000, 'the shutdown to run')
  // Until this process's stream stops reading (at its high-water mark), a small write may still find room.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const secondAt = kill(fixture.child, 'SIGTERM')
  const { code, signal, exitedAt, killedByTimer } = await fixture.exited
  assert.equal(killedByTimer, false, 'the signal handler hung writing its line')
  assert.equal(signal, null)
  assert.equal(code, 143)
  assert.ok(exitedAt - secondAt < SLACK, `exited ${(exitedAt - secondAt).toFixed(1)} ms after the second SIGTERM`)
})

test(
  'a responsive loop that answered the deadline still exits with the code it reported, not 0',
  needs('mkfifo'),
  async (t) => {
    // JavaScript has 20 ms from the deadline to answer it; a run whose fixture was not scheduled for that
    // long ends by the watchdog alone, with no 'shutdown:complete' to check, and is run again.
    const run = async () => {
      const { fixture, sentAt } = await signalled('idle')
      return { sentAt, ...(await fixture.exited) }
    }
    const unanswered = (r) =>
      r.code === 124 &&
      !find(r.lines, 'event', { event: 'shutdown:complete' }) &&
      'JavaScript did not answer the deadline'
    const { code, signal, exitedAt, lines, killedByTimer, sentAt } = await rerunWhileMissed(t, 3, run, unanswered)
    assert.equal(killedByTimer, false)
    assert.equal(signal, null)
    const complete = find(lines, 'event', { event: 'shutdown:complete' })
    assert.equal(complete?.exitCode, 124, 'the shutdown reported a hard exit')
    assert.equal(code, 124, 'and the process exited with it')
    assert.ok(exitedAt - sentAt <= DEADLINE + SLACK)
  },
)

test(
  'an uncaught error while the watchdog writes its report leaves the exit and its code to the watchdog',
  needs('mkfifo'),
  async (t) => {
    // JavaScript answers the deadline and finishes with 124, and the watchdog exits within its write budget;
    // an error thrown then (an aborted operation failing) joined the shutdown with process.exit(1), which
    // won the race against the report stuck on the full pipe.
    const run = async () => {
      const { fixture } = await signalled('error-after-deadline')
      return fixture.exited
    }
    const unanswered = (r) =>
      r.code === 124 &&
      !find(r.lines, 'event', { event: 'shutdown:complete' }) &&
      'JavaScript did not answer the deadline'
    const { code, signal, lines, killedByTimer } = await rerunWhileMissed(t, 3, run, unanswered)
    assert.equal(killedByTimer, false)
    assert.equal(signal, null)
    assert.equal(find(lines, 'event', { event: 'shutdown:complete' })?.exitCode, 124)
    assert.equal(find(lines, 'exit-event'), undefined, 'JavaScript exited, not the watchdog')
    assert.equal(code, 124)
  },
)

test(
  'a non-blocking stderr that fills up delays the report within its budget instead of dropping it',
  needs('mkfifo'),
  async (t) => {
    const run = async () => {
      const { fixture, sentAt } = await signalled('nonblocking')
      // The collector wakes up just after the deadline, while the watchdog is waiting for room to write.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, sentAt + DEADLINE + 10 - now())))
      const resumedAfterDeadline = now() - sentAt - DEADLINE
      fixture.resumeStderr()
      return { resumedAfterDeadline, ...(await fixture.exited) }
    }
    // The watchdog waits 50 ms for room: a collector that woke later than that (this process was not
    // scheduled in time) is not the situation, and the run is made again.
    const late = (r) =>
      r.resumedAfterDeadline > 40 && `the collector woke ${r.resumedAfterDeadline.toFixed(0)} ms after the deadline`
    const { code, stderr, killedByTimer } = await rerunWhileMissed(t, 3, run, late)
    assert.equal(killedByTimer, false)
    assert.equal(code, 124)
    assert.match(stderr, /titan-lifecycle: hard exit: the graceful shutdown \(reason SIGTERM\) did not finish/)
    assert.match(stderr, /running: 'spin'/)
  },
)

/**
 * blocked.cjs in `mode` in a terminal paused with Ctrl-S before its SIGTERM: the service's stderr is the
 * terminal; its own report lines go to a file, since the paused terminal would block Node's synchronous
 * TTY writes too. Resolves with its exit as the terminal's runner saw it, and its lines.
 */
async function inPausedTerminal(t, mode, deadline, how = 'pause') {
  const file = path.join(scratchDirectory(t, 'pause'), 'report.jsonl')
  fs.writeFileSync(file, '')
  const terminal = launch(
    [
      'python3',
      path.join(FIXTURES, 'pty-run.py'),
      how,
      process.execPath,
      path.join(FIXTURES, 'blocked.cjs'),
      mode,
      String(deadline),
    ],
    { env: { TITAN_REPORT_FILE: file } },
  )
  const startedAt = now()
  const result = await terminal.exited
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
  return { ...result, lines, tookMs: result.exitedAt - startedAt }
}

test('a terminal paused with Ctrl-S cannot hold the hard exit', needs('python3'), async (t) => {
  const { code, stdout, lines, tookMs } = await inPausedTerminal(t, 'in-task', DEADLINE)
  assert.ok(find(lines, 'task-start', { id: 'spin' }), 'the shutdown ran into the blocked task')
  assert.equal(code, 124, `the service's exit, as the terminal's runner saw it\n${stdout}`)
  assert.ok(tookMs < 5000, 'it did not wait for the terminal to resume')
})

test(
  "a terminal paused with Ctrl-S cannot hold a shutdown up with the default logger's lines",
  needs('python3'),
  async (t) => {
    // Node writes to a terminal synchronously: the failure's line, written by the default logger, held the
    // event loop until the watchdog's hard exit (124 at the deadline, 3 s here, instead of 1 at once).
    const { code, stdout, lines, tookMs } = await inPausedTerminal(t, 'fails', 3000)
    assert.ok(find(lines, 'task-start', { id: 'after' }), 'the tasks after the failed one ran')
    assert.equal(code, 1, `the shutdown's own code, as the terminal's runner saw it\n${stdout}`)
    // 100 more failures come with it: a line each, which must not cost 500 ms each.
    assert.ok(tookMs < 2500, `it took ${tookMs.toFixed(0)} ms, not the deadline's 3000`)
  },
)

test('a slow terminal still gets every line of the default logger, however long', needs('python3'), async (t) => {
  // 64 bytes every 5 ms: the terminal takes the lines in bursts 300 ms apart, and each 2000-character
  // failure takes longer than that, but none is cut or dropped.
  const { code, stdout } = await inPausedTerminal(t, 'fails-long', 8000, 'slow')
  assert.equal(code, 1, stdout.slice(-2000))
  const whole = stdout
    .split('\n')
    .filter((line) => /^titan-lifecycle: shutdown task 'also-failing-\d+' failed: .*x{2000}$/.test(line))
  assert.equal(whole.length, 10, `${whole.length} of 10 long lines arrived whole`)
  assert.match(stdout, /shutdown complete \(exit code 1/)
})

test(
  "the default logger's lines still go through a process.stderr.write that was replaced",
  needs('python3'),
  async (t) => {
    // A test's spy or a redirect must see them: only Node's own terminal stream is written to natively.
    const { code, stdout, lines } = await inPausedTerminal(t, 'fails-spied', 3000)
    assert.equal(code, 1, stdout)
    const written = lines.filter((line) => line.kind === 'stderr-write').map((line) => line.text)
    assert.ok(
      written.some((text) => text.startsWith("titan-lifecycle: shutdown task 'spin' failed: the cleanup failed")),
      JSON.stringify(written),
    )
  },
)
