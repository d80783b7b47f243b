'use strict'
// trackChild: a child (or a detached child's whole process group) is stopped at shutdown, and no exit path
// leaves one behind: a graceful SIGTERM, SIGKILL at the timeout, the watchdog's hard exit with the loop
// blocked, a second signal, process.exit(). Children that exited earlier are forgotten.

const fs = require('node:fs')
const { spawn } = require('node:child_process')
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { start, launch, needs, onLinux, kill, find, isRunning, waitFor, FIXTURES } = require('./helpers.cjs')
const { ShutdownManager } = require('..')

/** The pids still running within 2 s: SIGKILL lands at once, so anything left then survived. */
async function survivors(pids) {
  const until = Date.now() + 2000
  let left = pids.filter(isRunning)
  while (left.length > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    left = left.filter(isRunning)
  }
  for (const pid of left) process.kill(pid, 'SIGKILL') // leave nothing behind for the next test
  return left
}

async function runFixture(mode, { deadline = 3000, end = 'SIGTERM' } = {}) {
  const fixture = start('children.cjs', [mode, deadline])
  const ready = await fixture.ready
  const pids = [ready.child, ready.grandchild].filter(Boolean)
  if (!['exited-early', 'exit-listener-throws'].includes(mode))
    assert.ok(pids.every(isRunning), 'the children run before the shutdown')
  if (end === 'SIGTERM' || end === 'SIGINT') kill(fixture.child, end)
  if (end === 'SIGINT twice') {
    kill(fixture.child, 'SIGINT')
    // The second once the first has begun the shutdown: two SIGINTs pending at once are one.
    await waitFor(() => find(fixture.lines, 'event', { event: 'shutdown:start' }), 5000, 'the shutdown to start')
    kill(fixture.child, 'SIGINT')
  }
  const result = await fixture.exited
  return { ...result, ready, pids, left: await survivors(pids) }
}

test('SIGTERM: the child gets SIGTERM, exits, and the task completes', async () => {
  const { code, lines, left, ready, stderr } = await runFixture('graceful')
  assert.equal(code, 0, stderr)
  assert.deepEqual(left, [])
  assert.ok(find(lines, 'event', { event: 'shutdown:task:complete', taskId: ready.task }))
})

for (const mode of ['managed', 'managed-late']) {
  test(`Ctrl-C to the whole group: a child with a manager of its own finishes its shutdown (${mode})`, async () => {
    // The child got the group's SIGINT as well; the SIGTERM its parent's task sends it then (1.5 s later in
    // 'managed-late') was a second signal to it and ended it at once (143), its task cut short. A signal
    // from the parent joins the shutdown a signal from elsewhere began.
    // A 6 s deadline: the child's own shutdown takes 2.5 s in 'managed-late'.
    const fixture = launch([process.execPath, path.join(FIXTURES, 'children.cjs'), mode, '6000'], { detached: true })
    const ready = await fixture.ready
    process.kill(-fixture.child.pid, 'SIGINT')
    const { code, lines, stderr } = await fixture.exited
    assert.deepEqual(await survivors([ready.child]), [])
    assert.equal(code, 0, stderr)
    const exit = find(lines, 'child-exit')
    assert.deepEqual([exit?.code, exit?.signal], [0, null], stderr)
    assert.ok(find(lines, 'event', { event: 'shutdown:task:complete', taskId: ready.task }), stderr)
  })
}

test('SIGINT to the parent alone: its child with a manager gets SIGTERM, and finishes its shutdown', async () => {
  const { code, lines, left, stderr } = await runFixture('managed', { end: 'SIGINT' })
  assert.equal(code, 0, stderr)
  assert.deepEqual(left, [])
  assert.equal(find(lines, 'child-exit')?.code, 0, stderr)
})

test('a child that ignores SIGTERM gets SIGKILL at the timeout, and the task fails with ERR_CHILD_KILLED', async () => {
  const { code, lines, left, ready, stderr } = await runFixture('stubborn')
  assert.equal(code, 1, stderr)
  assert.deepEqual(left, [])
  const failed = find(lines, 'event', { event: 'shutdown:task:error', taskId: ready.task })
  assert.equal(failed.error.code, 'ERR_CHILD_KILLED')
  assert.match(failed.error.message, /^child \d+ had not exited \d+ ms after SIGTERM; it was sent SIGKILL$/)
  // 300 ms timeout: SIGKILL neither before it nor long after.
  assert.ok(failed.durationMs >= 290 && failed.durationMs < 1500, `${failed.durationMs} ms`)
})

test('group: a grandchild that ignores SIGTERM in the tracked group is killed too', async () => {
  const { code, lines, left, ready, pids, stderr } = await runFixture('group')
  assert.equal(pids.length, 2, 'a child and a grandchild')
  assert.equal(code, 1, stderr)
  assert.deepEqual(left, [])
  const failed = find(lines, 'event', { event: 'shutdown:task:error', taskId: ready.task })
  assert.match(failed.error.message, /^process group \d+ had not exited/)
})

test('the hard exit with the loop blocked kills the tracked group before it exits, and says so', async () => {
  const { code, left, stderr } = await runFixture('blocked', { deadline: 300 })
  assert.equal(code, 124, stderr)
  assert.deepEqual(left, [], 'no child or grandchild outlives the hard exit')
  assert.match(stderr, /sent SIGKILL to 1 tracked child process or group, so none outlives this exit\n/)
})

test('a second SIGINT exits at once and kills the tracked group first', async () => {
  const { code, left, stderr } = await runFixture('second-signal', { end: 'SIGINT twice' })
  assert.equal(code, 130, stderr)
  assert.match(stderr, /second SIGINT during shutdown, exiting now with code 130/)
  assert.deepEqual(left, [])
})

test('process.exit() without a shutdown kills the tracked group', async () => {
  const { code, left, stderr } = await runFixture('exit-call', { end: 'none' })
  assert.equal(code, 0, stderr)
  assert.deepEqual(left, [])
})

test('process.exit() kills the tracked group even when an exit listener added before it throws', async () => {
  // A throwing 'exit' listener ends the event: the listeners after it never run.
  const { left, stderr } = await runFixture('exit-call-listener-throws', { end: 'none' })
  assert.match(stderr, /an exit listener added first failed/, 'the scenario happened')
  assert.deepEqual(left, [])
})

test("an unregistered child's task untracks it: process.exit() leaves the group running", async () => {
  const { code, lines, ready, pids, left, stderr } = await runFixture('unregistered', { end: 'none' })
  assert.equal(code, 0, stderr)
  assert.equal(find(lines, 'unregistered').removed, true)
  assert.equal(ready.tracked, 0, 'forgotten natively')
  assert.equal(pids.length, 2)
  assert.deepEqual(left, pids, 'the child and its grandchild outlived the exit (the test kills them now)')
})

test('a child that exited earlier is forgotten: nothing is tracked, the hard exit kills nothing', async () => {
  const { code, lines, ready, stderr } = await runFixture('exited-early', { deadline: 300, end: 'SIGTERM' })
  assert.equal(code, 124, stderr)
  assert.equal(ready.tracked, 0, 'forgotten natively once it exited')
  assert.equal(find(lines, 'child-exited').tracked, 0)
  assert.equal(find(lines, 'child-exited').taskLeft, false, 'its task was unregistered when it exited')
  assert.doesNotMatch(stderr, /sent SIGKILL/)
})

test('a child tracked by two tasks stays tracked when one is unregistered: process.exit() kills its group', async () => {
  const { code, lines, ready, pids, left, stderr } = await runFixture('tracked-twice', { end: 'none' })
  assert.equal(code, 0, stderr)
  assert.equal(find(lines, 'unregistered').removed, true)
  assert.equal(ready.tracked, 1, 'the other task still tracks it natively')
  assert.equal(pids.length, 2)
  assert.deepEqual(left, [])
})

test('an earlier exit listener that throws does not leave the reaped child tracked natively', async () => {
  const { code, lines, stderr } = await runFixture('exit-listener-throws', { deadline: 300, end: 'SIGTERM' })
  assert.equal(code, 124, stderr)
  assert.equal(find(lines, 'uncaught')?.message, 'an earlier exit listener failed', 'the scenario happened')
  assert.equal(find(lines, 'child-exited').tracked, 0, 'forgotten natively once it exited')
  // Nothing is sent to the reaped pid, which the system may have given to another process.
  assert.doesNotMatch(stderr, /sent SIGKILL/)
})

test("an earlier exit listener that throws does not make the stop wait for the child's timeout", async () => {
  const { code, lines, left, stderr } = await runFixture('exit-listener-throws-at-stop', { end: 'SIGTERM' })
  assert.equal(code, 0, stderr)
  assert.equal(find(lines, 'uncaught')?.message, 'an earlier exit listener failed', 'the scenario happened')
  const complete = find(lines, 'event', { event: 'shutdown:task:complete' })
  assert.ok(complete, 'the child exited on SIGTERM, in time')
  assert.ok(complete.durationMs < 2000, `the stop heard the exit, not its 2.5 s timeout (${complete.durationMs} ms)`)
  assert.deepEqual(left, [])
})

test('group: a group whose leader exited before it was tracked is tracked until empty', async () => {
  const { code, ready, left, stderr } = await runFixture('leader-gone', { end: 'none' })
  assert.equal(code, 0, stderr)
  assert.equal(ready.tracked, 1, 'the group is tracked: its grandchild still runs')
  assert.deepEqual(await survivors([ready.grandchild]), [], 'process.exit() killed the grandchild')
  assert.deepEqual(left, [])
})

test('group: a detached child that exited but was not reaped yet is accepted', async () => {
  const { code, ready, stderr } = await runFixture('zombie-leader', { end: 'none' })
  assert.equal(code, 0, stderr)
  assert.equal(ready.exitCodeWhenTracked, null, 'Node had not reaped it when it was tracked (the scenario)')
  assert.equal(ready.refused, null)
})

test("a worker thread's manager ending with its thread kills its own child, not the main thread's", async () => {
  const fixture = start('children.cjs', ['worker-thread'])
  const ready = await fixture.ready
  const workerChildLeft = await survivors([ready.workerChild])
  const mainChildRunning = isRunning(ready.child)
  kill(fixture.child, 'SIGTERM')
  const { code, stderr } = await fixture.exited
  assert.equal(code, 0, stderr)
  assert.deepEqual(workerChildLeft, [], "the worker's child was killed when the worker thread exited")
  assert.equal(ready.tracked, 1, "and forgotten natively: only the main thread's child is tracked")
  assert.ok(mainChildRunning, "the main thread's child was left alone")
  assert.deepEqual(await survivors([ready.child]), [], 'and stopped by the main shutdown')
})

test("process.exit() on the main thread kills a worker thread's tracked child too", async () => {
  const fixture = start('children.cjs', ['worker-thread-main-exit'])
  const ready = await fixture.ready
  assert.equal(ready.tracked, 2, 'both children tracked')
  const { code, stderr } = await fixture.exited
  assert.equal(code, 0, stderr)
  // The main thread's 'exit' hook kills its own child; the worker thread's 'exit' event never came.
  assert.deepEqual(await survivors([ready.child, ready.workerChild]), [], 'no tracked child outlived the process')
})

test('an explicit timeout is kept whole when no destroy phase needs a reserve', async () => {
  // A child that ignores SIGTERM, so the timeout ends it; 1850 ms of a 2000 ms shutdown with no destroy task
  // (the default reserve, 200 ms, and the drain margin, 100 ms, would cut it to 1700).
  const child = spawn(
    process.execPath,
    ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  await new Promise((resolve) => child.stdout.once('data', resolve))
  const manager = new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, gracefulShutdownTimeout: 2000 })
  const id = manager.trackChild(child, { timeout: 1850 })
  const result = await manager.stop()
  const task = result.tasks.find((t) => t.id === id)
  assert.equal(task.error?.code, 'ERR_CHILD_KILLED', JSON.stringify(task))
  assert.ok(task.durationMs >= 1800, `SIGKILL came after ${task.durationMs.toFixed(0)} ms of the 1850 asked for`)
  assert.equal(isRunning(child.pid), false)
})

test('bad input: Node-style errors, and nothing is registered or tracked', async (t) => {
  const manager = new ShutdownManager({ signals: [], handleUncaughtErrors: false })
  t.after(() => manager.dispose())
  assert.throws(() => manager.trackChild(process.pid), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => manager.trackChild({ pid: 5 }), { code: 'ERR_INVALID_ARG_TYPE' })
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' })
  t.after(() => child.kill('SIGKILL'))
  assert.throws(() => manager.trackChild(child, { signal: 'SIGFOO' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => manager.trackChild(child, { signal: 'SIGKILL' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => manager.trackChild(child, { signal: 15 }), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => manager.trackChild(child, { timeout: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => manager.trackChild(child, { group: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
  // Not spawned detached: it leads no group, so group: true could not reach it.
  assert.throws(() => manager.trackChild(child, { group: true }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /spawned with detached: true/,
  })
  assert.equal(manager.unregisterTask(`child-${child.pid}`), false, 'the refused child left no task')
  const failed = spawn('/nonexistent/command', { stdio: 'ignore' })
  failed.on('error', () => {})
  assert.throws(() => manager.trackChild(failed), { code: 'ERR_INVALID_ARG_VALUE', message: /never started/ })
  assert.equal(manager.trackChild(child, { id: 'worker' }), 'worker')
  assert.throws(() => manager.trackChild(child, { id: 'worker' }), { code: 'ERR_TASK_EXISTS' })
})

// A ChildProcess made by hand with a pid (a test's double): Node's handle for it has pid 0, so its kill()
// signals the whole process group. Tracked, the process's exit sent SIGKILL to its own group. Tried in a
// process that leads a group of its own, so a regression kills that group, not the test runner's.
test('a ChildProcess that was never spawned, or a pid no child has, is refused, not tracked', async () => {
  const script = `
    const { ShutdownManager } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const { ChildProcess } = require('node:child_process')
    const manager = new ShutdownManager({ signals: [], handleUncaughtErrors: false })
    const refusal = (fields) => {
      try {
        manager.trackChild(Object.assign(new ChildProcess(), fields))
        return 'tracked'
      } catch (error) {
        return [error.name, error.code, error.message].join(' ')
      }
    }
    // Never spawned; then pids no child can have, named as given (cut to 32 bits before, and one tracked
    // as another child's pid).
    const fakes = [{ pid: 424242 }, ...[-1, 1, 1.5, NaN, 2 ** 32 + 424242].map((pid) => ({ pid, spawnfile: 'x' }))]
    console.log(JSON.stringify(fakes.map(refusal)))`
  const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  const [code, signal] = await new Promise((resolve) => child.on('exit', (...args) => resolve(args)))
  assert.equal(signal, null, 'its exit signalled its own group')
  assert.equal(code, 0)
  const [neverSpawned, ...badPids] = JSON.parse(out)
  assert.match(neverSpawned, /^TypeError ERR_INVALID_ARG_VALUE .*was never spawned/)
  assert.equal(badPids.length, 5)
  for (const [i, shown] of ['-1', '1', '1.5', 'NaN', '4295391538'].entries()) {
    assert.equal(
      badPids[i],
      `RangeError ERR_OUT_OF_RANGE The value of "child.pid" is out of range. It must be an integer >= 2 && <= 2147483647 (a child process). Received ${shown}`,
    )
  }
})

// The one exit no library sees is its own SIGKILL. On Linux the README's way out is util-linux's setpriv,
// which sets the parent-death signal and then execs the command: this checks that recipe as documented.
test('README recipe: a child spawned through setpriv --pdeathsig dies when its parent is SIGKILLed', {
  ...needs('setpriv'),
  ...onLinux('setpriv and /proc'),
}, async () => {
  const parent = launch([
    process.execPath,
    '-e',
    `const { spawn } = require('node:child_process')
     const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'sleep', '60'], { stdio: 'ignore' })
     console.log(JSON.stringify({ kind: 'ready', child: child.pid }))
     setInterval(() => {}, 60000)`,
  ])
  const { child } = await parent.ready
  // setpriv execs sleep in place (same pid), once it has set the signal.
  const until = Date.now() + 2000
  while (!fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith('sleep') && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.ok(isRunning(child))
  kill(parent.child, 'SIGKILL')
  await parent.exited
  assert.deepEqual(await survivors([child]), [], 'the child died with its parent')
})
