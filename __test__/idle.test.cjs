'use strict'
// An idle service pays for the library all its life: the watchdog thread must sleep while nothing happens.
// Its guard checks the signal slots every 4.5 to 5 s (README, "What it costs"), so in 6 s of idleness the thread
// wakes once or twice; the guard that polled every 200 ms woke 30 times. The whole process's wake-ups and
// CPU per minute are measured against the peers by `npm run bench`.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { start, kill, waitFor } = require('./helpers.cjs')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The thread of `pid` named `name` (its `comm`), or undefined. */
function threadNamed(pid, name) {
  return fs.readdirSync(`/proc/${pid}/task`).find((tid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name
    } catch {
      return false
    }
  })
}

/** How often a thread has gone to sleep and been woken: its voluntary context switches. */
function wakeUps(pid, tid) {
  const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1])
}

/**
 * Starts `fixture`, lets start-up settle for `settleMs`, then counts the wake-ups of the thread `pickThread`
 * names (given the pid) over `windowMs`; the service must then shut down gracefully on SIGTERM.
 */
async function idleWakeUps(fixtureName, { settleMs, windowMs, pickThread }) {
  const fixture = start(fixtureName, [], { killAfterMs: 20_000 })
  await fixture.ready
  await sleep(settleMs)
  const pid = fixture.child.pid
  await waitFor(() => pickThread(pid), 2000, 'the thread to watch to exist')
  const tid = pickThread(pid)
  const before = wakeUps(pid, tid)
  await sleep(windowMs)
  const woke = wakeUps(pid, tid) - before
  kill(fixture.child, 'SIGTERM')
  const result = await fixture.exited
  assert.equal(result.code, 0, result.stderr)
  return woke
}

test('the watchdog thread of an idle service wakes once or twice in 6 s: its guard, and nothing else', {
  skip: process.platform !== 'linux',
}, async () => {
  // Start-up settles first (the first loop turn's dry run, the stack capture's symbol lookup).
  const woke = await idleWakeUps('neighbour.cjs', {
    settleMs: 500,
    windowMs: 6000,
    pickThread: (pid) => threadNamed(pid, 'titan-watchdog'),
  })
  assert.ok(woke <= 2, `the watchdog woke ${woke} times in 6 s of idleness`)
  // The window holds the guard's first check (4.5 to 5 s after the manager took the signals): it does run.
  assert.ok(woke >= 1, 'the guard never woke the watchdog')
})

test("an idle service's main thread sleeps: the loop is not woken by the library's own timers", {
  skip: process.platform !== 'linux',
}, async () => {
  // The main thread's id is the process's.
  const woke = await idleWakeUps('idle-service.cjs', { settleMs: 300, windowMs: 2000, pickThread: String })
  // Idle, it has nothing to wake for (the deferred slot check that re-armed itself woke it ~900 times a
  // second); a few wake-ups of Node's own are allowed.
  assert.ok(woke <= 20, `the main thread woke ${woke} times in 2 s of idleness`)
})

/** A thread's timer slack: how late the kernel may wake it from a timed sleep, in nanoseconds. */
function timerSlack(tid) {
  return Number(fs.readFileSync(`/proc/${tid}/timerslack_ns`, 'utf8'))
}

/** Why another process's timer slack cannot be read here, if it cannot (Linux asks for CAP_SYS_NICE). */
function timerSlackUnreadable() {
  if (process.platform !== 'linux') return 'needs /proc, which only Linux has'
  try {
    timerSlack(process.ppid)
    return false
  } catch (error) {
    return `reading another process's timer slack needs CAP_SYS_NICE (${error.code})`
  }
}

test("the watchdog lets only the guard's slow check come late, so the kernel can wake it with another timer", {
  skip: timerSlackUnreadable(),
}, async () => {
  // A shutdown with a task that never settles, 200 ms to its timeout; its stall probes keep the watchdog to
  // the millisecond while it runs.
  const fixture = start('never-settles.cjs', [], { killAfterMs: 15_000 })
  await fixture.ready
  const pid = fixture.child.pid
  // The new thread names itself once it runs, which on a busy machine can be after the fixture said ready.
  await waitFor(() => threadNamed(pid, 'titan-watchdog'), 2000, 'the watchdog thread to be named')
  const tid = threadNamed(pid, 'titan-watchdog')
  // The main thread keeps the process's default (50 µs unless the service manager set another).
  const standard = timerSlack(pid)
  await waitFor(() => timerSlack(tid) !== standard, 2000, "the watchdog's idle slack to be set")
  assert.equal(timerSlack(tid), 500_000_000, 'idle, the slow check may come up to 500 ms late')
  kill(fixture.child, 'SIGTERM')
  let precise = false
  while (!precise && fixture.child.exitCode === null) {
    try {
      precise = timerSlack(tid) === standard
    } catch {
      break // the process has gone
    }
    await sleep(2)
  }
  const result = await fixture.exited
  assert.ok(precise, `the watchdog kept its idle slack while the shutdown ran (stderr: ${result.stderr})`)
  assert.ok(
    result.lines.some((l) => l.kind === 'task-start' && l.id === 'stuck'),
    'the shutdown ran its tasks',
  )
})
