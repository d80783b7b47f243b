'use strict'
// Where the loop was stuck: the hard-exit report names the JavaScript function, file and line a blocked loop
// was in (captured on the main thread by a V8 interrupt), says "outside JavaScript" and what the main thread
// waits in when the loop is blocked in native code, writes Node's diagnostic report on request, and a stall
// during a shutdown is an event naming the task, its length and its stack.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const {
  start,
  kill,
  find,
  needs,
  onLinux,
  waitFor,
  rerunWhileMissed,
  scratchDirectory,
  FIXTURES,
} = require('./helpers.cjs')

const FIXTURE = path.join(FIXTURES, 'stuck.cjs')
/** The line of the fixture that carries `marker` (so the test follows the fixture when it is edited). */
const lineOf = (marker) =>
  fs
    .readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(marker)) + 1
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

async function stuck(mode, deadline, extra = []) {
  const fixture = start('stuck.cjs', [mode, deadline, ...extra], { killAfterMs: 20_000 })
  assert.ok(await fixture.ready, 'the fixture started')
  const sentAt = kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  // How late the exit was by its own report (its clock is the watchdog's): a stack in hand before the deadline
  // leaves the exit as prompt as without one. What this process sees adds its own wake-up, loose below.
  const past = /\(([\d.]+) ms past the deadline\)/.exec(result.stderr)
  return { ...result, afterMs: result.exitedAt - sentAt, pastDeadlineMs: past ? Number(past[1]) : undefined }
}

test('a loop blocked in a named function: the report names it, with its file and line, and exits at the deadline', async () => {
  const r = await stuck('spin', 400)
  assert.equal(r.code, 124, r.stderr)
  // The stack is in hand before the deadline: the exit is as prompt as without it.
  assert.ok(r.pastDeadlineMs < 50, `the report came ${r.pastDeadlineMs} ms past the deadline`)
  assert.ok(r.afterMs >= 395 && r.afterMs < 400 + 250, `exited ${r.afterMs.toFixed(0)} ms after SIGTERM`)
  assert.match(r.stderr, /titan-lifecycle: {3}blocked in JavaScript, at:\n/)
  const frame = new RegExp(
    `titan-lifecycle: {5}at spinForever \\(${escapeRegExp(FIXTURE)}:${lineOf('// spinForever:')}:\\d+\\)\\n`,
  )
  assert.match(r.stderr, frame)
  // The caller is the task's handler, one frame out.
  assert.match(
    r.stderr,
    new RegExp(`at spinForever [^\\n]+\\ntitan-lifecycle: {5}at handler \\(${escapeRegExp(FIXTURE)}:`),
  )
  assert.match(r.stderr, /running: 'stuck' \(the stuck task\)/)
  assert.doesNotMatch(r.stderr, /older frames/, 'the whole stack was shown')
})

test('a stack deeper than the frames kept says that older ones were left out', async () => {
  // 40 calls deep: the 16 frames kept are spinForever and descend, and the task's handler is not among them.
  const r = await stuck('deep', 400)
  assert.equal(r.code, 124, r.stderr)
  assert.match(r.stderr, /at spinForever /)
  assert.match(
    r.stderr,
    /at descend [^\n]+\ntitan-lifecycle: {5}\.\.\. and older frames \(only the innermost 16 are kept\)\n/,
  )
  assert.doesNotMatch(r.stderr, /at handler /)
})

test('the report says when it last heard from JavaScript: a loop that turned until it blocked was probed', async () => {
  // The loop turns for 600 ms of the 1500 ms, then spins: with a stall threshold the loop was probed every
  // 50 ms until it blocked, about 900 ms before the deadline (not 1500 ms: the handler's call).
  const r = await stuck('serve-then-spin', 1500)
  assert.equal(r.code, 124, r.stderr)
  const heard = /last heard from JavaScript ([\d.]+) ms ago/.exec(r.stderr)
  assert.ok(heard, r.stderr)
  assert.ok(Number(heard[1]) >= 850 && Number(heard[1]) < 1200, `last heard ${heard[1]} ms before the report`)
})

test('a loop that answered the probe and then blocked (a deadline listener) is named too', async (t) => {
  // The stack is asked for 10 ms after the deadline: a fixture not scheduled by then to run its deadline
  // listener is interrupted where it begins to handle the event, not in the listener, and is run again.
  const r = await rerunWhileMissed(
    t,
    3,
    () => stuck('at-deadline', 400),
    (r) => !/ at onDeadline /.test(r.stderr) && 'the stack was asked for before the deadline listener ran',
  )
  assert.equal(r.code, 124, r.stderr)
  assert.match(r.stderr, /event loop: stopped answering \(it answered a probe/)
  assert.match(r.stderr, new RegExp(`at onDeadline \\(${escapeRegExp(FIXTURE)}:${lineOf('// onDeadline:')}:\\d+\\)`))
  // The deadline, its grace, and the 5 ms the frames may take.
  assert.ok(r.pastDeadlineMs < 20 + 50, `the report came ${r.pastDeadlineMs} ms past the deadline`)
  assert.ok(r.afterMs >= 395 && r.afterMs < 400 + 20 + 250, `exited ${r.afterMs.toFixed(0)} ms after SIGTERM`)
})

test('a regular expression that backtracks for ever is named, with the function that ran it', async () => {
  const r = await stuck('regex', 400)
  assert.equal(r.code, 124, r.stderr)
  assert.ok(r.pastDeadlineMs < 50, `the report came ${r.pastDeadlineMs} ms past the deadline`)
  assert.ok(r.afterMs < 400 + 250, `exited ${r.afterMs.toFixed(0)} ms after SIGTERM`)
  assert.match(
    r.stderr,
    new RegExp(`at validateHeader \\(${escapeRegExp(FIXTURE)}:${lineOf('// validateHeader:')}:\\d+\\)`),
  )
})

test(
  'a loop blocked in execSync is "outside JavaScript", says what the main thread waits in, and still exits at the deadline',
  needs('sleep'),
  async () => {
    const r = await stuck('exec', 400)
    assert.equal(r.code, 124, r.stderr)
    assert.ok(r.pastDeadlineMs < 50, `the report came ${r.pastDeadlineMs} ms past the deadline`)
    assert.ok(r.afterMs >= 395 && r.afterMs < 400 + 250, `exited ${r.afterMs.toFixed(0)} ms after SIGTERM`)
    const line =
      /titan-lifecycle: {3}blocked outside JavaScript \(in native code, a system call or a garbage collection\): (.*)\n/.exec(
        r.stderr,
      )
    assert.ok(line, r.stderr)
    if (process.platform === 'linux') {
      // spawnSync waits for its child in a loop of its own: epoll, on Linux.
      assert.match(line[1], /^the main thread is blocked in the system call epoll_\w+( \(kernel: \w+\))?$/)
    }
    assert.doesNotMatch(r.stderr, /blocked in JavaScript/)
  },
)

/** Node's diagnostic report is written from native code on Linux only (core/src/v8.rs). */
const REPORT_WRITTEN_NATIVELY = onLinux("Node's diagnostic report written from native code")

test(
  "diagnosticReport: the hard exit writes Node's report, names it, and its JavaScript stack shows the function",
  REPORT_WRITTEN_NATIVELY,
  async (t) => {
    const directory = scratchDirectory(t, 'reports')
    const r = await stuck('spin', 600, ['--report', directory])
    assert.equal(r.code, 124, r.stderr)
    // The report is written at the deadline, once the exit is certain (5 to 10 ms; at most 250 are waited).
    assert.ok(r.afterMs < 600 + 250, `exited ${r.afterMs.toFixed(0)} ms after SIGTERM`)
    const late = Number(/\(([\d.]+) ms past the deadline\)/.exec(r.stderr)[1])
    assert.ok(late < 250, `the report took the exit ${late} ms past the deadline`)
    const named = /titan-lifecycle: {3}diagnostic report: (.+)\n/.exec(r.stderr)
    assert.ok(named, r.stderr)
    assert.equal(path.dirname(named[1]), directory)
    assert.match(
      path.basename(named[1]),
      new RegExp(`^report\\.\\d{8}\\.\\d{6}\\.${r.lines[0].pid}\\.titan-lifecycle\\.json$`),
    )
    const report = JSON.parse(fs.readFileSync(named[1], 'utf8'))
    assert.equal(report.header.trigger, 'titan-lifecycle')
    assert.ok(
      report.javascriptStack.stack.some((frame) => frame.includes('spinForever') && frame.includes(FIXTURE)),
      JSON.stringify(report.javascriptStack),
    )
    assert.ok(Array.isArray(report.libuv) && report.libuv.length > 0)
  },
)

test(
  'diagnosticReport under a --report-directory that is a symbolic link lands in the directory asked for',
  REPORT_WRITTEN_NATIVELY,
  async (t) => {
    // Node puts the report under its report directory; the path it is given climbs out of that directory
    // from where the link leads (a/b), not from the link.
    const base = scratchDirectory(t, 'report-link')
    fs.mkdirSync(path.join(base, 'a', 'b'), { recursive: true })
    fs.mkdirSync(path.join(base, 'out'))
    fs.symlinkSync(path.join(base, 'a', 'b'), path.join(base, 'link'))
    const fixture = start('stuck.cjs', ['spin', 400, '--report', path.join(base, 'out')], {
      killAfterMs: 20_000,
      env: { NODE_OPTIONS: `--report-directory=${path.join(base, 'link')}` },
    })
    await fixture.ready
    kill(fixture.child, 'SIGTERM')
    const r = await fixture.exited
    assert.equal(r.code, 124, r.stderr)
    assert.doesNotMatch(r.stderr, /could not write/)
    const written = fs.readdirSync(path.join(base, 'out'))
    assert.equal(written.length, 1, r.stderr)
    assert.match(written[0], /\.titan-lifecycle\.json$/)
    assert.ok(fs.statSync(path.join(base, 'out', written[0])).size > 0)
  },
)

/** Runs the fixture's stall `mode` (a 1.5 s stall in a task, 10 s deadline) to a graceful end: its result and stall event. */
async function stallDuringShutdown(mode, extra = []) {
  const fixture = start('stuck.cjs', [mode, 10_000, 1500, ...extra], { killAfterMs: 20_000 })
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const r = await fixture.exited
  assert.equal(r.code, 0, r.stderr)
  const stall = find(r.lines, 'event', { event: 'shutdown:stall' })?.payload
  assert.ok(stall, JSON.stringify(r.lines))
  return { r, stall }
}

test('a stall during the shutdown is an event naming the task, how long, and where; then the shutdown ends well', async () => {
  const { r, stall } = await stallDuringShutdown('stall')
  assert.equal(stall.taskId, 'stuck')
  assert.equal(stall.name, 'the stuck task')
  // 1500 ms of blocking, measured from the probe before it (at most 50 ms short) to the loop's answer.
  assert.ok(stall.blockedMs >= 1400 && stall.blockedMs < 2200, `blockedMs ${stall.blockedMs}`)
  assert.match(
    stall.stack,
    new RegExp(`^ {4}at busyFor \\(${escapeRegExp(FIXTURE)}:${lineOf('// busyFor:')}:\\d+\\)\\n {4}at handler `),
  )
  const log = r.lines.find((l) => l.kind === 'log' && l.level === 'warn' && /blocked for/.test(l.message))
  assert.ok(log, 'logged')
  assert.equal(log.fields.taskId, 'stuck')
  // Reported once, and before the shutdown completed.
  assert.equal(r.lines.filter((l) => l.event === 'shutdown:stall').length, 1)
  const order = r.lines.filter((l) => l.kind === 'event').map((l) => l.event)
  assert.deepEqual(order, ['shutdown:stall', 'shutdown:complete'])
})

test('a stall names the task it was in, not one that started once the loop was back', async () => {
  const { stall } = await stallDuringShutdown('stall', ['--then-task'])
  assert.equal(stall.taskId, 'stuck')
})

test('a task that timed out and then blocked the loop: the report says it is still running, not only the next one', async () => {
  const r = await stuck('overrun-spin', 800)
  assert.equal(r.code, 124, r.stderr)
  assert.ok(find(r.lines, 'overrunning'), 'the handler went on past its timeout')
  assert.match(r.stderr, /at spinForever [^\n]+\ntitan-lifecycle: {5}at overrunThen /)
  assert.match(r.stderr, /running: 'after' for [\d.]+ ms\n/)
  assert.match(r.stderr, /timed out, still running: 'stuck' \(the stuck task\) for [\d.]+ ms\n/)
  // 'late' timed out too, but its handler has ended since.
  assert.doesNotMatch(r.stderr, /still running: 'late'/)
  assert.match(r.stderr, /settled: 0 succeeded, 0 failed, 2 timed out \(of 3 tasks\)/)
})

test("the deadline's line names the tasks that timed out and whose handlers still run", async () => {
  const r = await stuck('overrun-wait', 800)
  assert.equal(r.code, 124, r.stderr)
  const deadline = r.lines.find((l) => l.kind === 'log' && /did not finish within/.test(l.message))
  assert.equal(
    deadline?.message,
    "the shutdown did not finish within its 800 ms deadline; still running: 'after'; timed out, still running: 'stuck'",
  )
})

test('a stall in a task that timed out names no task, not the one that started after it', async () => {
  const fixture = start('stuck.cjs', ['overrun-stall', 10_000, 1500], { killAfterMs: 20_000 })
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const r = await fixture.exited
  assert.equal(r.code, 1, r.stderr) // two tasks timed out
  const stall = find(r.lines, 'event', { event: 'shutdown:stall' })?.payload
  assert.ok(stall, JSON.stringify(r.lines))
  assert.match(stall.stack, /^ {4}at busyFor [^\n]+\n {4}at overrunThen /)
  // 'after' ran through the stall, and so did the handler of 'stuck', which caused it.
  assert.equal(stall.taskId, undefined)
  const log = r.lines.find((l) => l.kind === 'log' && /blocked for/.test(l.message))
  assert.doesNotMatch(log.message, /was running/)
})

test('a stall is watched for in a shutdown that JavaScript took up long after the signal, its loop busy', async () => {
  // The watchdog began this shutdown for the signal and armed its deadline; JavaScript, busy for 400 ms,
  // joins it well after the watchdog's last wake-up (the signal's fallback, 5 ms after it), and must wake it
  // to start the stall probes: the watchdog would not wake again by itself before the guard's next check.
  const fixture = start('stuck.cjs', ['stall', 10_000, 1500, '--busy-at-signal', 400], { killAfterMs: 20_000 })
  await fixture.ready
  await waitFor(() => find(fixture.lines, 'blocking'), 2000, 'the loop to be busy')
  kill(fixture.child, 'SIGTERM')
  const r = await fixture.exited
  assert.equal(r.code, 0, r.stderr)
  const stall = find(r.lines, 'event', { event: 'shutdown:stall' })?.payload
  assert.ok(stall, `no stall event: ${JSON.stringify(r.lines)}`)
  assert.equal(stall.taskId, 'stuck')
})

test('a stall is watched for with exclusive signals, where the watchdog itself tells JavaScript of the signal', async () => {
  // The watchdog begins the shutdown, arms its deadline and tells JavaScript in one turn, with no fallback
  // left to wake it for: it looks again 5 ms after the signal, which sees the stall watch that begin registered.
  const { stall } = await stallDuringShutdown('stall', ['--exclusive'])
  assert.equal(stall.taskId, 'stuck')
})

test('no stall event for a loop that is only busy for less than the threshold', async () => {
  const fixture = start('stuck.cjs', ['stall', 10_000, 300], { killAfterMs: 20_000 })
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const r = await fixture.exited
  assert.equal(r.code, 0, r.stderr)
  assert.equal(find(r.lines, 'event', { event: 'shutdown:stall' }), undefined)
})

test(
  'a shutdown that finishes in time writes no diagnostic report, although its loop was busy when the stack was asked for',
  REPORT_WRITTEN_NATIVELY,
  async (t) => {
    // The task ends 8 ms before the deadline, 2 ms after the stack was asked for: a fixture not scheduled
    // for those 8 ms misses the deadline, which is not this case, and is run again. Every run that finishes
    // in time is checked.
    const run = async () => {
      const directory = scratchDirectory(t, 'reports')
      const r = await stuck('almost', 1000, ['--report', directory])
      if (r.code === 0) {
        assert.doesNotMatch(r.stderr, /hard exit|Writing Node\.js report/)
        assert.deepEqual(fs.readdirSync(directory), [])
      }
      return r
    }
    const missed = (r) => r.code === 124 && /did not finish/.test(r.stderr) && 'the task ended past the deadline'
    const r = await rerunWhileMissed(t, 3, run, missed)
    assert.equal(r.code, 0, r.stderr)
  },
)

test('a stall in native code (execSync) is reported with its length and no stack', needs('sleep'), async () => {
  const { stall } = await stallDuringShutdown('stall-native')
  assert.equal(stall.taskId, 'stuck')
  assert.ok(stall.blockedMs >= 1400 && stall.blockedMs < 2200, `blockedMs ${stall.blockedMs}`)
  // V8 ran the interrupt only when execSync returned, half a second after it was asked for: not the stall's.
  assert.equal(stall.stack, null)
})
