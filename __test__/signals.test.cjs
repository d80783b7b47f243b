'use strict'
// Acceptance 1: SIGTERM, SIGINT and SIGHUP each run the tasks in the documented order, concurrently where
// independent, and the process exits 0 with the events in order.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { start, launch, kill, eventNames, find, scratchDirectory } = require('./helpers.cjs')

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  test(`${signal} runs every task in order and exits 0`, async () => {
    const fixture = start('ordered.cjs')
    await fixture.ready
    const sentAt = kill(fixture.child, signal)
    const { code, signal: killedBy, lines, stderr } = await fixture.exited
    assert.equal(killedBy, null, stderr)
    assert.equal(code, 0, stderr)

    const startOf = (id) => find(lines, 'task-start', { id }).at
    const endOf = (id) => find(lines, 'task-end', { id }).at
    const before = (a, b) => assert.ok(endOf(a) <= startOf(b), `${a} ended before ${b} started`)

    // Priorities: First, then High, then Normal.
    before('readiness', 'http-a')
    before('readiness', 'http-b')
    for (const id of ['http-a', 'http-b']) before(id, 'api')
    // Dependencies: a dependent stops before what it depends on.
    before('api', 'cache')
    before('cache', 'db')
    // Phases: every stop task before any destroy task, whatever their priorities.
    for (const id of ['readiness', 'http-a', 'http-b', 'api', 'cache', 'db']) before(id, 'pool')
    before('pool', 'logs')

    // Concurrency: the two independent 200 ms tasks overlap and finish under the 400 ms they take in turn.
    assert.ok(startOf('http-b') < endOf('http-a') && startOf('http-a') < endOf('http-b'), 'http-a and http-b overlap')
    const bothDone = Math.max(endOf('http-a'), endOf('http-b')) - Math.min(startOf('http-a'), startOf('http-b'))
    assert.ok(bothDone < 400, `two 200 ms tasks took ${bothDone.toFixed(1)} ms together`)

    // Events, in order.
    const events = eventNames(lines)
    assert.equal(events[0], 'shutdown:start')
    assert.equal(events.at(-1), 'shutdown:complete')
    assert.equal(events.filter((e) => e === 'shutdown:task:complete').length, 8)
    assert.ok(!events.includes('shutdown:task:error'))
    const startEvent = find(lines, 'event', { event: 'shutdown:start' })
    assert.equal(startEvent.reason, signal)
    assert.equal(startEvent.signal, signal)
    assert.equal(startEvent.timeoutMs, 5000)
    const complete = find(lines, 'event', { event: 'shutdown:complete' })
    assert.deepEqual(
      { reason: complete.reason, hardExit: complete.hardExit, exitCode: complete.exitCode },
      { reason: signal, hardExit: false, exitCode: 0 },
    )
    // Each task-complete event follows its task's end.
    for (const line of lines.filter((l) => l.event === 'shutdown:task:complete')) {
      assert.ok(line.at >= endOf(line.taskId), `${line.taskId} completed after it ended`)
      assert.ok(line.durationMs > 0)
    }
    // The first task starts promptly after the signal, not by the guard's slow check (seconds later); the
    // latency itself is the bench's (loose for 2 noisy cores).
    assert.ok(startOf('readiness') - sentAt < 1000, 'the shutdown started within 1 s of the signal')
  })
}

test("a stop() joining a shutdown a signal began natively keeps that shutdown's budget for the reserve and the delay", async () => {
  // The watchdog begins a SIGTERM's shutdown with gracefulShutdownTimeout (2000 ms) while JavaScript is
  // busy; a stop() in that turn asks for another timeout. The reserve and the delay come from the budget
  // the shutdown has: with stop()'s 60 s, the reserve was 6 s, more than the whole shutdown, and the stop
  // phase was cut at once; with stop()'s 100 ms, the 250 ms delay was cut to nothing.
  for (const { stopTimeout, delay } of [
    { stopTimeout: 60_000, delay: 0 },
    { stopTimeout: 100, delay: 250 },
  ]) {
    const result = await start('signal-then-stop.cjs', [stopTimeout, delay]).exited
    const label = `stop({ timeout: ${stopTimeout} }), shutdownDelay ${delay}`
    assert.equal(result.code, 0, `${label}\n${result.stderr}`)
    assert.equal(find(result.lines, 'state').state, 'stopping', `${label}: the watchdog began it first`)
    assert.equal(find(result.lines, 'event', { event: 'shutdown:start' }).timeoutMs, 2000, label)
    assert.equal(find(result.lines, 'event', { event: 'shutdown:task:error' }), undefined, label)
    assert.ok(find(result.lines, 'task-end', { id: 'work' }), `${label}: the stop task ran to its end`)
    assert.ok(find(result.lines, 'task-end', { id: 'db' }), `${label}: the destroy task ran`)
    const sent = find(result.lines, 'signal-sent').at
    const workStarted = find(result.lines, 'task-start', { id: 'work' }).at - sent
    assert.ok(workStarted >= delay - 5, `${label}: the stop task started ${workStarted.toFixed(0)} ms after the signal`)
    assert.equal(find(result.lines, 'stopped')?.exitCode, 0, label)
  }
})

test('the way from a signal to the first task compiles none of the package: the warm-up compiled it', async (t) => {
  // V8 logs each function's compilation and first run; a function of index.js or lib/ compiled after the
  // process went idle and before the task's handler ran was compiled on the signal's way (tens of µs each
  // on a cold CPU: the dispatcher the native side calls was, until the warm-up went through it).
  const logFile = path.join(scratchDirectory(t, 'warm-path'), 'v8.log')
  const traced = launch([
    process.execPath,
    '--log-function-events',
    '--no-logfile-per-isolate',
    `--logfile=${logFile}`,
    path.join(__dirname, 'fixtures', 'warm-path.cjs'),
  ])
  await traced.ready
  kill(traced.child, 'SIGTERM')
  const { code, lines, stderr } = await traced.exited
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'task-start', { id: 'first' }), 'the task ran')

  // Parsing and making bytecode. Not 'first-execution': newer V8 logs it when a function gets its feedback
  // vector, which can come on a later call, after any compilation.
  const FIRST_COMPILE = new Set(['full-parse', 'parse-function', 'interpreter'])
  const root = path.join(__dirname, '..')
  const ours = (url) => url === path.join(root, 'index.js') || url.startsWith(path.join(root, 'lib') + path.sep)
  const scripts = new Map() // script id -> url
  const events = [] // { kind, script, name } in the order V8 logged them
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    const fields = line.split(',')
    if (fields[0] === 'script-details') scripts.set(fields[1], fields[2])
    // function,<event>,<script>,<start>,<end>,<ms>,<timestamp>,<name>
    else if (fields[0] === 'function')
      events.push({ kind: fields[1], script: fields[2], name: fields.slice(7).join(',') })
  }
  // A function is compiled to bytecode ('interpreter') on its first call: that marks each moment.
  const from = events.findIndex((e) => e.kind === 'interpreter' && e.name === 'idleUntilTheSignal')
  const to = events.findIndex((e) => e.kind === 'interpreter' && e.name === 'firstTaskHandler')
  assert.ok(from >= 0 && to > from, `the log marks the idle moment and the handler (${from}, ${to})`)
  // The log names the package's scripts (the check below could not fail without them).
  assert.ok([...scripts.values()].some(ours), 'the log names index.js and lib/')
  const compiledOnTheWay = events
    .slice(from + 1, to)
    // A first compilation; optimizing tiers that V8 versions time differently are not what this is about.
    .filter((e) => FIRST_COMPILE.has(e.kind) && ours(scripts.get(e.script) ?? ''))
    .map((e) => `${e.kind} ${e.name}`)
  assert.deepEqual(compiledOnTheWay, [])
})
