'use strict'
// Acceptance 7 and the ownership rules, where they touch the whole process: stop() without exiting leaves
// nothing behind; only one manager (in any copy of the package) owns the signals; dispose() gives them
// back; a worker cannot own them.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { start, kill, run, find, eventNames, now, waitFor, scratchDirectory, copyPackage } = require('./helpers.cjs')

test('stop() does not exit, and leaves nothing that keeps the process alive', async () => {
  const began = now()
  const { code, signal, lines, exitedAt, stderr } = await run('process-api.cjs', ['stop-then-idle'])
  assert.equal(signal, null)
  assert.equal(code, 0, stderr)
  assert.deepEqual(find(lines, 'result'), { ...find(lines, 'result'), exitCode: 0, state: 'stopped' })
  // A 60 s deadline was armed; had any timer or handle survived the shutdown, the process would linger.
  assert.ok(exitedAt - began < 5000, `the process lived ${(exitedAt - began).toFixed(0)} ms`)
})

test("the signal dispatch's async resource says it keeps nothing alive (jest --detectOpenHandles)", async () => {
  // Made once, when a manager first owns the signals, and never destroyed: tools that list what may keep a
  // process alive (jest --detectOpenHandles, why-is-node-running) listed it for ever, even after dispose(),
  // unless it answers hasRef() as Node's unref'd handles do.
  const { code, lines, stderr } = await run('process-api.cjs', ['async-resources'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(find(lines, 'owning')?.resources, [{ type: 'titan-lifecycle:signal', hasRef: false }])
  assert.deepEqual(find(lines, 'disposed')?.hasRef, [false])
})

test('a SIGTERM in the last turn of the event loop still runs the shutdown', async () => {
  // The pin's callback (unref'd) was never polled again: the shutdown began natively, no task ran, and the
  // process exited 0, as though no signal had come.
  for (const busyMs of ['0', '100']) {
    const { code, signal, lines, stderr } = await run('process-api.cjs', ['signal-in-last-turn', busyMs])
    assert.equal(signal, null, stderr)
    assert.equal(code, 0, stderr)
    assert.equal(find(lines, 'event', { event: 'shutdown:start' })?.reason, 'SIGTERM', `busy ${busyMs} ms`)
    assert.ok(find(lines, 'task-start', { id: 'flush' }), `the task ran (busy ${busyMs} ms)`)
    assert.equal(find(lines, 'event', { event: 'shutdown:complete' })?.exitCode, 0)
  }
  // After a stop() that did not exit, a signal exits with that shutdown's code (a task failed: 1).
  const { code, lines, stderr } = await run('process-api.cjs', ['signal-in-last-turn', 'after-stop'])
  assert.equal(find(lines, 'result')?.exitCode, 1)
  assert.equal(code, 1, stderr)
  assert.equal(find(lines, 'exit-event')?.code, 1)
})

test("a signal's shutdown runs in the manager's AsyncLocalStorage context, also after a garbage collection", async () => {
  // napi holds an async resource it is given only weakly: collected, it was swapped for an empty object,
  // and the store (and the resource's hasRef) were gone.
  const { code, lines, stderr } = await run('process-api.cjs', ['context-after-gc'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(find(lines, 'start'), { ...find(lines, 'start'), store: 'bootstrap', hasRef: 'function' })
  assert.equal(find(lines, 'task')?.store, 'bootstrap')
})

test('stop({ exit: true }) exits with the shutdown exit code', async () => {
  const { code, signal, lines } = await run('process-api.cjs', ['stop-exit'])
  assert.equal(signal, null)
  assert.equal(code, 1)
  assert.ok(!find(lines, 'not-reached'))
})

test("an exiting shutdown does not wait for what an async 'shutdown:complete' listener awaits", async () => {
  const { code, signal, lines, stderr } = await run('process-api.cjs', ['async-complete-listener'])
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.ok(find(lines, 'listener-called'), 'the listener was called')
  assert.ok(!find(lines, 'listener-after-await'), 'the exit came before what the listener awaited')
  assert.ok(!find(lines, 'listener-timer'), "the listener's timer never fired")
  assert.ok(!find(lines, 'not-reached'))
})

test('an exit code the application set is kept by a shutdown that succeeds, and reported', async () => {
  for (const how of ['stop', 'signal', 'after-stop', 'failing']) {
    const fixture = start('process-api.cjs', ['own-exit-code', how])
    if (how === 'signal' || how === 'after-stop') {
      await fixture.ready
      kill(fixture.child, 'SIGTERM')
    }
    const { code, signal, lines, stderr } = await fixture.exited
    assert.equal(signal, null, stderr)
    // A failed task is the shutdown's own failure, which it reports with its own code.
    const expected = how === 'failing' ? 1 : 3
    assert.equal(code, expected, `${how}: ${stderr}`)
    // A stop() that did not exit reported its own outcome.
    const reported = how === 'after-stop' ? 0 : expected
    assert.equal(find(lines, 'event', { event: 'shutdown:complete' })?.exitCode, reported, how)
  }
  // A shutdown that does not exit reports its own outcome; the process then exits with the application's.
  const { code, lines } = await run('process-api.cjs', ['own-exit-code', 'no-exit'])
  assert.equal(find(lines, 'result')?.exitCode, 0)
  assert.equal(code, 3)
})

test('a signal after a stop() that did not exit ends the process with that shutdown code', async () => {
  const fixture = start('process-api.cjs', ['signal-after-stop'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines } = await fixture.exited
  assert.equal(signal, null)
  assert.equal(code, 1)
  assert.equal(eventNames(lines).filter((e) => e === 'shutdown:start').length, 1, 'the tasks did not run again')
})

test('a signal during a stop() joins it, and the process exits when the shutdown ends', async () => {
  const fixture = start('process-api.cjs', ['stop-joined', 300])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 0)
  const starts = lines.filter((l) => l.event === 'shutdown:start')
  assert.equal(starts.length, 1, 'the signal joined; the tasks ran once')
  assert.equal(starts[0].reason, 'manual', 'the joined shutdown keeps its reason')
  assert.ok(find(lines, 'event', { event: 'shutdown:complete' }))
})

test("a stop() that joins a signal's shutdown resolves, and what its caller chained runs before the exit", async () => {
  const fixture = start('process-api.cjs', ['joined-by-stop'], { env: { TITAN_REPORT_FD1: '1' } })
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr, exitedAt } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.deepEqual(
    [find(lines, 'stop-resolved')?.exitCode, find(lines, 'stop-resolved')?.reason],
    [0, 'SIGTERM'],
    'the joined stop() resolved with the shutdown result',
  )
  const done = find(lines, 'continuation-done')
  assert.ok(done, 'its continuation ran to its end before the exit')
  // Once it is done, not 50 ms before the 30 s deadline: making process.stdout is not work it started.
  assert.ok(exitedAt - done.at < 1000, `exited ${(exitedAt - done.at).toFixed(0)} ms after the continuation`)
})

test("stop({ exit: true }) from a 'shutdown:complete' listener lets the caller's continuation and the watchdog's report finish", async () => {
  // The listener runs while the shutdown finishes: the exit it asks for is the one the shutdown then makes,
  // after what the first stop() caller chained to its promise.
  const joined = await run('process-api.cjs', ['exit-from-complete', 'continuation'])
  assert.equal(joined.code, 0, joined.stderr)
  assert.equal(find(joined.lines, 'stop-resolved')?.exitCode, 0)
  assert.ok(find(joined.lines, 'continuation-done'), "the caller's continuation ran before the exit")
  // At a hard exit, the watchdog exits, its report whole: JavaScript does not exit ahead of it.
  const hard = await run('process-api.cjs', ['exit-from-complete', 'hard-exit'])
  assert.equal(hard.code, 124, hard.stderr)
  assert.equal(find(hard.lines, 'event', { event: 'shutdown:complete' })?.exitCode, 124)
  assert.match(hard.stderr, /hard exit: the graceful shutdown .* did not finish/)
  assert.match(hard.stderr, /running: 'task'/)
  assert.match(hard.stderr, /exiting with code 124/)
  // The watchdog stays armed for that exit: a continuation that blocks the loop is ended at the deadline.
  const blocked = await run('process-api.cjs', ['exit-from-complete', 'blocked'], { killAfterMs: 10_000 })
  assert.equal(find(blocked.lines, 'stop-resolved')?.exitCode, 0)
  assert.equal(blocked.signal, null, blocked.stderr)
  assert.equal(blocked.code, 124, blocked.stderr)
  // An error a listener raises as uncaught is fatal, as it is after the shutdown.
  const fatal = await run('process-api.cjs', ['exit-from-complete', 'fatal'])
  assert.equal(fatal.code, 1, fatal.stderr)
  assert.match(fatal.stderr, /reported by a listener/)
  // A listener's own process.exit() with no code ("to be sure") exits with the shutdown's code, and at a
  // hard exit after the watchdog's report.
  for (const how of ['bare-exit-hard', 'bare-exit-on-error', 'bare-exit-on-abort']) {
    const bareHard = await run('process-api.cjs', ['exit-from-complete', how])
    assert.equal(bareHard.code, 124, `${how}: ${bareHard.stderr}`)
    assert.match(bareHard.stderr, /running: 'task'/, how)
    assert.match(bareHard.stderr, /exiting with code 124/, how)
  }
  const bareFailed = await run('process-api.cjs', ['exit-from-complete', 'bare-exit-failed'])
  assert.equal(find(bareFailed.lines, 'event', { event: 'shutdown:complete' })?.exitCode, 1)
  assert.equal(bareFailed.code, 1, bareFailed.stderr)
  // Listeners that ask for no exit leave a shutdown that does not exit alone, however long they run.
  const slow = await run('process-api.cjs', ['exit-from-complete', 'slow-no-exit'])
  assert.equal(slow.code, 0, slow.stderr)
  assert.ok(find(slow.lines, 'alive-after-deadline'), 'the process carried on past the deadline')
})

test("a task's abort listeners that throw or reject are that task's failure, logged, not a fatal error", async () => {
  const fixture = start('process-api.cjs', ['abort-listener-throws'])
  const { code, lines, stderr } = await fixture.exited
  assert.equal(code, 0, `the process ended on its own, not by an exit for an uncaught error\n${stderr}`)
  const resolved = find(lines, 'stop-resolved')
  assert.deepEqual([resolved?.exitCode, resolved?.status], [1, 'timedOut'])
  assert.ok(find(lines, 'still-running'), 'the process kept running after the stop(), as asked')
  const logged = lines.filter(
    (l) => l.kind === 'error-log' && /abort listener of shutdown task 'cleanup' threw/.test(l.message),
  )
  const messages = logged.map((l) => l.message.replace(/.*: /, '')).sort()
  assert.deepEqual(messages, ['async cleanup listener failed', 'cleanup listener failed', 'onabort failed'])
  assert.ok(logged.every((l) => l.taskId === 'cleanup'))
  assert.ok(!find(lines, 'event', { event: 'shutdown:start', reason: 'uncaughtException' }))
})

test('an uncaught error of other code, thrown just after a task was aborted, is still fatal', async () => {
  const fixture = start('process-api.cjs', ['abort-listener-throws', 'and-a-real-error'])
  const { code, lines, stderr } = await fixture.exited
  assert.equal(code, 1, stderr)
  const fatal = lines.find((l) => l.kind === 'error-log' && /a real uncaught error/.test(l.message))
  assert.match(fatal?.message ?? '', /^uncaught exception during the shutdown/, JSON.stringify(lines))
  // It joined the shutdown as an error: the process exits at its end (after the stop()'s continuation).
  assert.ok(find(lines, 'stop-resolved'))
})

test('a signal joining a stop() is the first signal; the next one exits at once', async () => {
  const fixture = start('process-api.cjs', ['stop-joined', 60_000])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  // The second signal once the first has been heard: pending at once, SIGINT would be delivered first.
  const heard = () =>
    fixture.lines.some((l) => l.kind === 'info' && /received SIGTERM during the shutdown/.test(l.message))
  await waitFor(heard, 5000, 'the SIGTERM to join the stop()')
  assert.equal(fixture.child.exitCode, null, 'the first signal only joined')
  const sentAt = kill(fixture.child, 'SIGINT')
  const { code, signal, exitedAt } = await fixture.exited
  assert.equal(signal, null)
  assert.equal(code, 130)
  assert.ok(exitedAt - sentAt < 250)
})

test('only one manager owns the signals, and dispose() gives them to another', async () => {
  const fixture = start('process-api.cjs', ['two-owners'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(find(lines, 'second').outcome.code, 'ERR_SIGNALS_OWNED')
  assert.equal(find(lines, 'no-signals').outcome, 'ok')
  assert.equal(find(lines, 'disabled').outcome, 'ok')
  assert.equal(find(lines, 'after-dispose').outcome, 'ok')
  assert.equal(signal, null, stderr)
  assert.equal(code, 0)
  assert.equal(find(lines, 'event', { event: 'shutdown:start' }).reason, 'SIGTERM', 'the new owner got SIGTERM')
})

test('a manager made while a signal-begun shutdown runs does not hear that signal again', async () => {
  const fixture = start('process-api.cjs', ['handed-over-mid-shutdown'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, lines, stderr } = await fixture.exited
  assert.equal(find(lines, 'first-start')?.reason, 'SIGTERM')
  assert.equal(find(lines, 'second-start'), undefined, 'the new owner began no shutdown of its own')
  assert.equal(code, 1, `the first shutdown's failed task decides the exit code: ${stderr}`)
})

test("an uncaught error is answered by the signal owner's shutdown, not by a library's manager made first", async () => {
  const { code, lines, stderr } = await run('process-api.cjs', ['library-manager-first'])
  assert.equal(code, 1, stderr)
  assert.equal(find(lines, 'service-start')?.reason, 'uncaughtException')
  assert.ok(find(lines, 'db-closed'), "the service's tasks ran before the exit")
  assert.equal(find(lines, 'library-start'), undefined, "the library's manager began no shutdown")
  assert.equal(stderr.match(/uncaught exception, shutting down/g)?.length, 1, 'logged once')
})

test('owning and giving back the signals 300 times leaves signal delivery whole', async () => {
  // Each ownership published a new chain of handlers, and past 256 the signal could no longer be passed on:
  // a foreign listener stopped hearing it, and after dispose() it killed a process that listened for it.
  const fixture = start('process-api.cjs', ['owned-many-times'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.equal(find(lines, 'heard')?.heard, 1, 'the foreign listener heard SIGTERM while the manager owned it')
})

/** A second copy of the package, laid out as node_modules would hold a bundled duplicate; its path. */
function secondCopy(t) {
  const root = path.join(__dirname, '..')
  return copyPackage(
    scratchDirectory(t, 'copy'),
    fs.readdirSync(root).filter((f) => f.endsWith('.node')),
  )
}

test('an uncaught error is answered by a manager whose shutdown has not ended, not one whose has', async () => {
  const { code, lines, stderr } = await run('process-api.cjs', ['finished-then-error'])
  assert.equal(code, 1, stderr)
  assert.ok(find(lines, 'event', { event: 'shutdown:start', reason: 'uncaughtException' }), stderr)
  assert.ok(find(lines, 'second-task-ran'), "the second manager's task ran")
  assert.doesNotMatch(stderr, /during the shutdown/)
})

test('with two copies of the package, one manager answers an uncaught error: the first made', async (t) => {
  const copy = secondCopy(t)
  const { code, lines, stderr } = await run('process-api.cjs', ['two-copies-uncaught', copy])
  assert.equal(code, 1, stderr)
  assert.deepEqual(
    lines.filter((l) => l.kind === 'start').map((l) => `${l.name} ${l.reason}`),
    ['first uncaughtException'],
  )
})

test('with two copies, one of them older, an uncaught error after the first manager stopped is still answered', async (t) => {
  // Of the same version: the second, whose shutdown has not run, answers.
  const same = await run('process-api.cjs', ['two-copies-ended-first', secondCopy(t)], { killAfterMs: 8000 })
  assert.equal(same.code, 1, same.stderr)
  assert.ok(find(same.lines, 'start', { name: 'second', reason: 'uncaughtException' }), same.stderr)
  // An older copy answers by the first made alone, whatever its state: this copy then does so too, or
  // each would leave the error to the other and the process would run on.
  const older = secondCopy(t)
  const indexFile = path.join(older, 'index.js')
  const current = fs.readFileSync(indexFile, 'utf8')
  const method = /\n {2}#answersErrors\(\) \{\n[\s\S]*?\n {2}\}\n/
  assert.match(current, method, "the copy's #answersErrors, to make it an older one")
  const asOlder = current
    .replace(
      method,
      '\n  #answersErrors() {\n    const owner = process[SIGNAL_OWNER]\n' +
        '    if (owner?.handlesErrors) return owner.manager === this\n' +
        '    return errorHooked().values().next().value === this\n  }\n',
    )
    .replace('    skipsEndedShutdowns().add(this)\n', '')
  assert.notEqual(asOlder.includes('skipsEndedShutdowns().add(this)'), true)
  fs.writeFileSync(indexFile, asOlder)
  const mixed = await run('process-api.cjs', ['two-copies-ended-first', older], { killAfterMs: 8000 })
  assert.equal(mixed.killedByTimer, false, 'the error was answered by no manager, and the process ran on')
  assert.equal(mixed.code, 1, mixed.stderr)
  assert.match(mixed.stderr, /boom/)
})

test('a second copy of the package cannot own the signals while the first does', async (t) => {
  const copy = secondCopy(t)
  const { code, lines, stderr } = await run('process-api.cjs', ['two-copies', copy])
  assert.equal(code, 0, stderr)
  const refused = find(lines, 'copy').outcome
  assert.equal(refused.code, 'ERR_SIGNALS_OWNED')
  assert.match(
    refused.message,
    /already owns the process signals; dispose\(\) it first or pass signals: \[\] \(owned by titan-lifecycle \d+\.\d+\.\d+ loaded from /,
  )
  assert.equal(find(lines, 'copy-after-dispose').outcome, 'ok')
  assert.equal(find(lines, 'mine-now').outcome.code, 'ERR_SIGNALS_OWNED', 'and the other way round')
})

test('after dispose() SIGTERM has its default effect again and no hook is left', async () => {
  const fixture = start('process-api.cjs', ['disposed'])
  const readyLine = await fixture.ready
  assert.equal(readyLine.uncaughtListeners, 0)
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines } = await fixture.exited
  assert.equal(signal, 'SIGTERM', `exited with code ${code}`)
  assert.ok(!find(lines, 'task-ran'))
})

test('a worker cannot own the signals, but a manager without them works there', async () => {
  const fixture = start('process-api.cjs', ['worker'])
  await fixture.ready
  kill(fixture.child, 'SIGTERM')
  const { code, signal, lines, stderr } = await fixture.exited
  const worker = find(lines, 'worker')
  assert.equal(worker.owned, 'ERR_NOT_MAIN_THREAD')
  assert.equal(worker.exitCode, 0)
  assert.equal(worker.tasks, 1)
  // The worker came and went without breaking the main thread's ownership.
  assert.equal(signal, null, stderr)
  assert.equal(code, 0)
  assert.equal(find(lines, 'event', { event: 'shutdown:start' }).reason, 'SIGTERM')
})
