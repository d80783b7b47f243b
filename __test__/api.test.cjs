'use strict'
// Acceptance 7 (in this process, with no signals or hooks bound): stop() returns the result without
// exiting; concurrent stop() calls run each task once; the result, events and state are as documented.

const test = require('node:test')
const assert = require('node:assert/strict')
const {
  ShutdownManager,
  ShutdownReason,
  ShutdownPriority,
  ShutdownEvent,
  ShutdownPhase,
  ApplicationEvent,
} = require('..')

/** A manager that binds nothing process-wide and never kills this test process. */
function manager(options = {}) {
  return new ShutdownManager({ disableGracefulShutdown: true, hardExit: false, ...options })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('the exported constants match the documented values and cannot be changed', () => {
  assert.deepEqual(ShutdownPriority, {
    First: 0,
    VeryHigh: 10,
    High: 25,
    AboveNormal: 40,
    Normal: 50,
    BelowNormal: 60,
    Low: 75,
    VeryLow: 90,
    Last: 100,
  })
  assert.equal(ShutdownReason.UncaughtException, 'uncaughtException')
  assert.equal(Object.keys(ShutdownReason).length, 12)
  assert.equal(ShutdownEvent.ShutdownTaskError, 'shutdown:task:error')
  assert.equal(ApplicationEvent, ShutdownEvent)
  assert.deepEqual(ShutdownPhase, { Stop: 'stop', Destroy: 'destroy' })
  for (const frozen of [ShutdownReason, ShutdownPriority, ShutdownEvent, ShutdownPhase])
    assert.ok(Object.isFrozen(frozen))
})

test('stop() resolves with the result and the process keeps running', async () => {
  const m = manager()
  const failure = new Error('cache flush failed')
  m.registerTask({ id: 'http', name: 'HTTP server', priority: ShutdownPriority.High, handler: () => sleep(20) })
  m.registerTask({ id: 'cache', handler: () => Promise.reject(failure) })
  m.registerTask({ id: 'db', phase: 'destroy', handler: () => {} })
  assert.equal(m.state, 'running')
  assert.equal(m.isShuttingDown, false)
  const pending = m.stop({ reason: ShutdownReason.Maintenance, timeout: 2000 })
  assert.equal(m.state, 'stopping')
  assert.equal(m.isShuttingDown, true)
  const result = await pending
  assert.equal(m.state, 'stopped')
  assert.equal(result.reason, 'maintenance')
  assert.equal(result.exitCode, 1)
  assert.equal(result.hardExit, false)
  assert.ok(result.totalDurationMs >= 15 && result.totalDurationMs < 1000, `${result.totalDurationMs}`)
  assert.deepEqual(
    result.tasks.map(({ id, name, status }) => ({ id, name, status })),
    [
      { id: 'http', name: 'HTTP server', status: 'succeeded' },
      { id: 'cache', name: 'cache', status: 'failed' },
      { id: 'db', name: 'db', status: 'succeeded' },
    ],
  )
  assert.equal(result.tasks[1].error, failure)
  assert.ok(!('error' in result.tasks[0]))
  assert.ok(result.tasks[0].durationMs >= 15)
})

test('concurrent stop() calls join one shutdown and run each task once', async () => {
  const m = manager()
  let runs = 0
  m.registerTask({
    id: 'once',
    handler: async () => {
      runs++
      await sleep(20)
    },
  })
  const [a, b, c] = await Promise.all([m.stop(), m.stop({ reason: 'upgrade' }), m.stop()])
  assert.equal(runs, 1)
  assert.equal(a, b)
  assert.equal(b, c)
  assert.equal(a.reason, 'manual', 'the first caller decides the reason')
  assert.equal(await m.stop(), a, 'a stop() after the end returns the same result')
  assert.equal(runs, 1)
})

test('each handler gets the reason, an AbortSignal and the deadline', async () => {
  const m = manager({ gracefulShutdownTimeout: 5000 })
  let seen
  m.registerTask({
    id: 'ctx',
    handler: (ctx) => {
      seen = ctx
    },
  })
  const before = Date.now()
  await m.stop({ reason: 'reload' })
  assert.equal(seen.reason, 'reload')
  assert.equal(seen.signal, undefined)
  assert.ok(seen.abortSignal instanceof AbortSignal)
  assert.equal(seen.abortSignal.aborted, false)
  assert.ok(seen.deadline >= before + 4900 && seen.deadline <= Date.now() + 5000)
})

test('events fire in order with their documented payloads', async () => {
  const m = manager({ gracefulShutdownTimeout: 1000 })
  const seen = []
  for (const event of Object.values(ShutdownEvent)) m.on(event, (payload) => seen.push([event, payload]))
  m.registerTask({ id: 'ok', handler: () => {} })
  m.registerTask({
    id: 'bad',
    priority: 60,
    handler: () => {
      throw new TypeError('nope')
    },
  })
  const startedAround = Date.now()
  await m.stop()
  assert.deepEqual(
    seen.map(([e]) => e),
    ['shutdown:start', 'shutdown:task:complete', 'shutdown:task:error', 'shutdown:complete'],
  )
  const [, start] = seen[0]
  assert.equal(start.reason, 'manual')
  assert.equal(start.timeoutMs, 1000)
  assert.ok(Math.abs(start.startedAt - startedAround) < 100)
  assert.deepEqual(Object.keys(seen[1][1]).sort(), ['durationMs', 'name', 'taskId'])
  const [, taskError] = seen[2]
  assert.equal(taskError.taskId, 'bad')
  assert.ok(taskError.error instanceof TypeError)
  assert.equal(taskError.timedOut, false)
  assert.deepEqual(seen[3][1].exitCode, 1)
  assert.deepEqual(Object.keys(seen[3][1]).sort(), ['exitCode', 'hardExit', 'reason', 'summary', 'totalDurationMs'])
})

test('a listener that throws or rejects never breaks the shutdown or the other listeners', async () => {
  const errors = []
  const m = manager({ logger: { error: (fields, message) => errors.push({ fields, message }) } })
  let later = 0
  m.on(ShutdownEvent.ShutdownStart, () => {
    throw new Error('listener bug')
  })
  m.on(ShutdownEvent.ShutdownStart, () => later++)
  m.on(ShutdownEvent.ShutdownTaskComplete, async () => {
    throw new Error('async listener bug')
  })
  m.once(ShutdownEvent.ShutdownComplete, () => later++)
  m.registerTask({ id: 'a', handler: () => {} })
  const result = await m.stop()
  await sleep(0)
  assert.equal(result.exitCode, 0)
  assert.equal(later, 2)
  assert.equal(m.listenerCount(ShutdownEvent.ShutdownComplete), 0, 'once listeners are removed after firing')
  assert.equal(errors.length, 2)
  assert.match(errors[0].message, /'shutdown:start' listener threw; the shutdown goes on: listener bug/)
  assert.equal(errors[0].fields.event, 'shutdown:start')
  assert.equal(errors[0].fields.err.message, 'listener bug')
  assert.match(errors[1].message, /async listener bug/)
})

test('registering or unregistering during a shutdown throws ERR_SHUTDOWN_IN_PROGRESS, and after it ERR_SHUTDOWN_COMPLETED', async () => {
  const m = manager()
  let inside
  m.registerTask({
    id: 'a',
    handler: () => {
      try {
        m.registerTask({ id: 'late', handler: () => {} })
      } catch (error) {
        inside = error
      }
    },
  })
  const stopping = m.stop()
  assert.throws(() => m.registerTask({ id: 'b', handler: () => {} }), { code: 'ERR_SHUTDOWN_IN_PROGRESS' })
  assert.throws(() => m.unregisterTask('a'), { code: 'ERR_SHUTDOWN_IN_PROGRESS' })
  await stopping
  assert.equal(inside.code, 'ERR_SHUTDOWN_IN_PROGRESS')
  assert.throws(() => m.registerTask({ id: 'b', handler: () => {} }), { code: 'ERR_SHUTDOWN_COMPLETED' })
})

test('unregisterTask removes a task and reports whether it existed', async () => {
  const m = manager()
  let ran = false
  const id = m.registerShutdownTask({
    id: 'gone',
    handler: () => {
      ran = true
    },
  })
  assert.equal(id, 'gone')
  assert.equal(m.unregisterShutdownTask('gone'), true)
  assert.equal(m.unregisterTask('gone'), false)
  const result = await m.stop()
  assert.equal(ran, false)
  assert.deepEqual(result.tasks, [])
  assert.equal(result.exitCode, 0)
})

test('a dependency on an unknown task is ignored with a warning', async () => {
  const warnings = []
  const m = manager({ logger: { warn: (fields, message) => warnings.push(message) } })
  m.registerTask({ id: 'api', dependsOn: ['not-registered'], handler: () => {} })
  const result = await m.stop()
  assert.equal(result.exitCode, 0)
  assert.deepEqual(warnings, [
    "shutdown task 'api' depends on unknown task 'not-registered'; the dependency is ignored",
  ])
})

test('without a logger, a dependency on an unknown task is a process warning', async () => {
  const warnings = []
  const onWarning = (warning) => warning.name === 'TitanLifecycleWarning' && warnings.push(warning)
  process.on('warning', onWarning)
  try {
    const m = manager()
    m.registerTask({ id: 'http', dependsOn: ['databse'], handler: () => {} })
    m.registerTask({ id: 'database', handler: () => {} })
    await m.stop()
    // Emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  assert.deepEqual(
    warnings.map((w) => [w.code, w.message]),
    [
      [
        'TITAN_LIFECYCLE_UNKNOWN_DEPENDENCY',
        "shutdown task 'http' depends on unknown task 'databse'; the dependency is ignored",
      ],
    ],
  )
})

test('a cycle is refused at registration, including one made by priorities against dependencies', () => {
  const m = manager()
  m.registerTask({ id: 'a', dependsOn: ['b'], handler: () => {} })
  m.registerTask({ id: 'b', dependsOn: ['c'], handler: () => {} })
  assert.throws(() => m.registerTask({ id: 'c', dependsOn: ['a'], handler: () => {} }), {
    code: 'ERR_TASK_CYCLE',
    message: /'c' -> 'a' -> 'b' -> 'c'/,
  })
  // 'late' depends on 'early', so it must stop before it, but its priority says after.
  m.registerTask({ id: 'early', priority: 10, handler: () => {} })
  assert.throws(() => m.registerTask({ id: 'late', priority: 90, dependsOn: ['early'], handler: () => {} }), {
    code: 'ERR_TASK_CYCLE',
    message: /'late' depends on 'early'/,
  })
  assert.throws(() => m.registerTask({ id: 'self', dependsOn: ['self'], handler: () => {} }), {
    code: 'ERR_TASK_CYCLE',
  })
})

test('registrations batched for the native side keep their order, and every error is still thrown at once', async () => {
  const m = manager()
  const ran = []
  const task = (id, extra = {}) => ({ id, handler: () => ran.push(id), ...extra })
  m.registerTask(task('first'))
  assert.throws(() => m.registerTask(task('first')), { code: 'ERR_TASK_EXISTS' })
  m.registerTask(task('second', { dependsOn: ['first'] }))
  m.registerTask(task('third', { name: 'the third' }))
  // Ids and names that hold the NUL separating a burst's ids make the burst cross one task at a time.
  m.registerTask(task('nul\0in id'))
  m.registerTask(task('fourth', { name: 'nul\0in name', phase: 'destroy' }))
  assert.throws(() => m.registerTask(task('first', { dependsOn: ['second'] })), { code: 'ERR_TASK_EXISTS' })
  // 'first' is depended on now: re-registering it after removal goes through the native checks again.
  assert.equal(m.unregisterTask('first'), true)
  assert.throws(() => m.registerTask(task('first', { dependsOn: ['second'] })), { code: 'ERR_TASK_CYCLE' })
  m.registerTask(task('first'))
  // A task that another waits for is checked natively at once, even with no dependencies of its own.
  m.registerTask(task('late', { priority: 90, dependsOn: ['early'] }))
  assert.throws(() => m.registerTask(task('early', { priority: 10 })), { code: 'ERR_TASK_CYCLE' })
  assert.equal(m.unregisterTask('late'), true)
  const result = await m.stop()
  assert.deepEqual(
    result.tasks.map((t) => [t.id, t.name, t.status]),
    [
      ['second', 'second', 'succeeded'],
      ['third', 'the third', 'succeeded'],
      ['nul\0in id', 'nul\0in id', 'succeeded'],
      ['first', 'first', 'succeeded'],
      ['fourth', 'nul\0in name', 'succeeded'],
    ],
  )
  assert.ok(ran.indexOf('second') < ran.indexOf('first'), `'second' depends on 'first', so it runs first: ${ran}`)
})

test('the deadline with hardExit: false resolves a timed-out result, aborting what still runs', async () => {
  const m = manager({ gracefulShutdownTimeout: 150 })
  let abortReason
  m.registerTask({
    id: 'slow',
    handler: ({ abortSignal }) =>
      new Promise(() =>
        abortSignal.addEventListener('abort', () => {
          abortReason = abortSignal.reason
        }),
      ),
  })
  m.registerTask({ id: 'next', priority: 90, handler: () => {} })
  const errors = []
  m.on(ShutdownEvent.ShutdownError, ({ error }) => errors.push(error))
  const started = performance.now()
  const result = await m.stop()
  const took = performance.now() - started
  assert.ok(took >= 145 && took < 400, `resolved after ${took.toFixed(1)} ms`)
  assert.equal(result.hardExit, true)
  assert.equal(result.exitCode, 124)
  assert.deepEqual(
    result.tasks.map((t) => t.status),
    ['running', 'pending'],
  )
  assert.equal(abortReason.code, 'ERR_SHUTDOWN_TIMEOUT')
  assert.equal(errors.length, 1)
  assert.equal(errors[0], abortReason)
})

test('with hardExit: false a task that blocks the loop past the deadline does not count as done in time', async () => {
  // The deadline is then JavaScript's own timer, which the blocked loop delays: the task's settling comes
  // first, and must not be taken as a success that lets the next task start after the deadline.
  const m = manager({ gracefulShutdownTimeout: 150 })
  m.registerTask({
    id: 'block',
    handler: () => {
      const until = performance.now() + 400
      while (performance.now() < until) {}
    },
  })
  let nextRan = false
  m.registerTask({ id: 'next', priority: 90, handler: () => (nextRan = true) })
  const result = await m.stop()
  assert.equal(result.hardExit, true)
  assert.equal(result.exitCode, 124)
  assert.deepEqual(
    result.tasks.map((t) => `${t.id} ${t.status}`),
    ['block running', 'next pending'],
  )
  assert.equal(nextRan, false, 'nothing started after the deadline')
})

test('a destroyReserve over half the deadline is kept whole; a shorter stop() timeout halves it', async () => {
  // gracefulShutdownTimeout 1000 with a reserve of 700: stop() without a timeout cuts the stop phase 300 ms in,
  // stop({ timeout: 800 }) keeps half of 800 and cuts it 400 ms in.
  for (const { timeout, reserve } of [
    { timeout: undefined, reserve: 700 },
    { timeout: 800, reserve: 400 },
  ]) {
    const m = manager({ gracefulShutdownTimeout: 1000, destroyReserve: 700 })
    m.registerTask({
      id: 'stuck',
      handler: ({ abortSignal }) => new Promise((resolve) => abortSignal.addEventListener('abort', resolve)),
    })
    let destroyStartedAfter
    m.registerTask({
      id: 'flush',
      phase: ShutdownPhase.Destroy,
      handler: () => {
        destroyStartedAfter = performance.now() - started
      },
    })
    const errors = []
    m.on(ShutdownEvent.ShutdownTaskError, ({ taskId, error }) => errors.push({ taskId, error }))
    const started = performance.now()
    const result = await m.stop(timeout === undefined ? undefined : { timeout })
    const cut = (timeout ?? 1000) - reserve
    assert.ok(
      destroyStartedAfter >= cut - 5 && destroyStartedAfter < cut + 200,
      `the destroy task started ${destroyStartedAfter?.toFixed(1)} ms in; the reserve of ${reserve} ms begins at ${cut}`,
    )
    assert.deepEqual(
      errors.map((e) => e.taskId),
      ['stuck'],
    )
    assert.match(errors[0].error.message, new RegExp(`to keep ${reserve} ms for the destroy phase`))
    assert.equal(result.tasks.find((t) => t.id === 'flush').status, 'succeeded')
  }
})

test('a timeout of any whole number of milliseconds keeps its destroyReserve whole and is reported exactly', async () => {
  // The budget crosses to native code and back: 1001 ms came back as 1000.9999999999999, which counted as
  // a shorter stop() timeout and halved the reserve (500 ms kept instead of 800).
  for (const gracefulShutdownTimeout of [1001, 1003, 1999]) {
    const m = manager({ gracefulShutdownTimeout, destroyReserve: 800 })
    m.registerTask({
      id: 'stuck',
      handler: ({ abortSignal }) => new Promise((resolve) => abortSignal.addEventListener('abort', resolve)),
    })
    m.registerTask({ id: 'flush', phase: ShutdownPhase.Destroy, handler: () => {} })
    let timeoutMs
    m.on(ShutdownEvent.ShutdownStart, (event) => {
      timeoutMs = event.timeoutMs
    })
    const errors = []
    m.on(ShutdownEvent.ShutdownTaskError, ({ error }) => errors.push(error.message))
    // The stop phase is cut when the reserve begins, 200 to 1200 ms in.
    const result = await m.stop()
    assert.equal(timeoutMs, gracefulShutdownTimeout)
    assert.equal(result.summary.timeoutMs, gracefulShutdownTimeout)
    assert.match(errors[0] ?? '', /to keep 800 ms for the destroy phase/, `${gracefulShutdownTimeout} ms`)
  }
})

test('a stop task skipped for the destroy reserve is an event and a task error, as every other that did not succeed', async () => {
  const warnings = []
  const m = manager({
    gracefulShutdownTimeout: 400,
    destroyReserve: 200,
    logger: { info() {}, warn: (fields, message) => warnings.push({ message, fields }), error() {} },
  })
  m.registerTask({
    id: 'stuck',
    priority: 0,
    handler: ({ abortSignal }) => new Promise((resolve) => abortSignal.addEventListener('abort', resolve)),
  })
  m.registerTask({ id: 'later', name: 'Later work', priority: 50, handler: () => assert.fail('never starts') })
  m.registerTask({ id: 'flush', phase: ShutdownPhase.Destroy, handler: () => {} })
  const errors = []
  m.on(ShutdownEvent.ShutdownTaskError, (payload) => errors.push(payload))
  const result = await m.stop()
  assert.deepEqual(
    errors.map(({ taskId, name, timedOut, error }) => ({ taskId, name, timedOut, code: error.code })),
    [
      { taskId: 'stuck', name: 'stuck', timedOut: true, code: 'ERR_TASK_TIMEOUT' },
      { taskId: 'later', name: 'Later work', timedOut: false, code: 'ERR_TASK_SKIPPED' },
    ],
  )
  // The stuck task ran until the reserve came, 400 - 200 ms in; the skipped one never ran.
  assert.ok(errors[0].durationMs >= 190 && errors[0].durationMs < 400, `stuck ran ${errors[0].durationMs} ms`)
  assert.equal(errors[1].durationMs, 0)
  assert.match(errors[1].error.message, /^shutdown task 'later' was skipped to keep 200 ms for the destroy phase$/)
  const later = result.tasks.find((t) => t.id === 'later')
  assert.equal(later.status, 'skipped')
  assert.equal(later.error, errors[1].error)
  assert.equal(result.exitCode, 1)
  assert.deepEqual(
    warnings.filter((w) => /were skipped/.test(w.message)).map((w) => w.fields.taskIds),
    [['later']],
  )
})

test("a handler's promise with a throwing then of its own is followed by Promise's own: the others still run", async () => {
  const m = manager()
  const ran = []
  m.registerTask({
    id: 'patched',
    handler: () => {
      ran.push('patched')
      const promise = Promise.resolve()
      // biome-ignore lint/suspicious/noThenProperty: the case under test is exactly such a promise.
      promise.then = () => {
        throw new Error('own then threw')
      }
      return promise
    },
  })
  m.registerTask({ id: 'sibling', handler: () => ran.push('sibling') })
  m.registerTask({ id: 'db', phase: ShutdownPhase.Destroy, handler: () => ran.push('db') })
  const result = await m.stop()
  assert.deepEqual(ran, ['patched', 'sibling', 'db'])
  assert.deepEqual(
    result.tasks.map((t) => `${t.id} ${t.status}`),
    ['patched succeeded', 'sibling succeeded', 'db succeeded'],
  )
  assert.equal(result.exitCode, 0)
})

test('a task that blocks the loop past its own timeout times out; one blocked by others does not', async () => {
  const m = manager()
  const block = (ms) => {
    const until = performance.now() + ms
    while (performance.now() < until) {}
  }
  // One level: 'slow' blocks 300 ms with no timeout of its own, then 'quick' (100 ms) returns at once,
  // then 'overrun' (100 ms) blocks 300 ms itself. The level's timers cannot fire while they block.
  m.registerTask({ id: 'slow', handler: () => block(300) })
  m.registerTask({ id: 'quick', timeout: 100, handler: () => {} })
  let abortReason
  m.registerTask({
    id: 'overrun',
    timeout: 100,
    handler: async ({ abortSignal }) => {
      block(300)
      abortSignal.addEventListener('abort', () => (abortReason = abortSignal.reason))
    },
  })
  // 'hog' blocks the loop 300 ms after its first await, and 'thrower' fails at once: a failure keeps its
  // own error, whatever the loop did after.
  m.registerTask({
    id: 'hog',
    handler: async () => {
      await null
      block(300)
    },
  })
  m.registerTask({
    id: 'thrower',
    timeout: 100,
    handler: () => {
      throw new Error('a real failure')
    },
  })
  let afterStartedWith
  m.registerTask({ id: 'after', priority: 90, handler: () => (afterStartedWith = 'ran') })
  const result = await m.stop()
  assert.deepEqual(
    result.tasks.map((t) => `${t.id} ${t.status}`),
    ['slow succeeded', 'quick succeeded', 'overrun timedOut', 'hog succeeded', 'thrower failed', 'after succeeded'],
  )
  assert.equal(result.tasks.find((t) => t.id === 'thrower').error.message, 'a real failure')
  const overrun = result.tasks.find((t) => t.id === 'overrun')
  assert.equal(overrun.error.code, 'ERR_TASK_TIMEOUT')
  assert.equal(abortReason, overrun.error, 'its AbortSignal aborts with the timeout error')
  assert.equal(afterStartedWith, 'ran')
  assert.equal(result.exitCode, 1)
})

test('exit codes can be chosen', async () => {
  const m = manager({ exitCodes: { success: 7, failure: 9 } })
  m.registerTask({ id: 'a', handler: () => {} })
  assert.equal((await m.stop()).exitCode, 7)
  const n = manager({ exitCodes: { failure: 9 } })
  n.registerTask({
    id: 'a',
    handler: () => {
      throw new Error('x')
    },
  })
  assert.equal((await n.stop()).exitCode, 9)
})

test('a per-task timeout longer than the deadline leaves the deadline in charge', async () => {
  const m = manager({ gracefulShutdownTimeout: 100 })
  m.registerTask({ id: 'a', timeout: 60_000, handler: () => new Promise(() => {}) })
  const result = await m.stop()
  assert.equal(result.hardExit, true)
  assert.equal(result.tasks[0].status, 'running')
})

test('a thousand tasks in one priority run concurrently', async () => {
  const m = manager()
  let active = 0
  let peak = 0
  for (let i = 0; i < 1000; i++) {
    m.registerTask({
      id: `t${i}`,
      handler: async () => {
        active++
        peak = Math.max(peak, active)
        await sleep(5)
        active--
      },
    })
  }
  const result = await m.stop()
  assert.equal(result.exitCode, 0)
  assert.equal(peak, 1000)
})

test('shutdowns of several managers at once settle each its own tasks, in long and short plans', async () => {
  // Each running shutdown is known natively by a handle; tasks settle through it. Interleaved settles of
  // three shutdowns (two of them large enough for the typed-array path) must reach the right one, in order.
  const order = []
  const managers = [3, 200, 150].map((count, m) => {
    const shutdown = manager()
    for (let i = 0; i < count; i++) {
      shutdown.registerTask({
        id: `m${m}-t${i}`,
        priority: i % 2 === 0 ? 10 : 20,
        handler: async () => {
          await sleep((i * 7 + m) % 5)
          order.push(`${m}:${i % 2 === 0 ? 10 : 20}`)
        },
      })
    }
    return shutdown
  })
  const results = await Promise.all(managers.map((shutdown) => shutdown.stop()))
  for (const [m, result] of results.entries()) {
    assert.equal(result.exitCode, 0)
    assert.ok(result.tasks.every((t) => t.status === 'succeeded'))
    // Every priority-10 task of this manager settled before any of its priority-20 tasks.
    const mine = order.filter((entry) => entry.startsWith(`${m}:`))
    assert.equal(mine.lastIndexOf(`${m}:10`) < mine.indexOf(`${m}:20`) || !mine.includes(`${m}:20`), true)
  }
  // A second stop() of a finished shutdown joins its result.
  assert.equal((await managers[1].stop()).exitCode, 0)
})

test("every task runs its own handler when the plan's order differs from the order of registration", async () => {
  // The plan names tasks by their position in registration order, which the manager's Map keeps too:
  // priorities, dependencies, phases, removals and registrations again all move tasks between the two.
  const m = manager()
  // Each handler fails with its own id: the result then says which handler ran for which task.
  const register = (id, extra = {}) => {
    m.registerTask({
      id,
      handler: () => {
        throw new Error(id)
      },
      ...extra,
    })
  }
  const priority = (i) => (i * 37) % 100
  for (let i = 0; i < 300; i++) {
    const extra = { priority: priority(i) }
    if (i % 11 === 5) extra.name = `name of t${i}`
    if (i % 13 === 6 && i > 20 && (i - 20) % 7 !== 3) {
      // A task that depends on another stops before it: same phase, same priority.
      Object.assign(extra, { dependsOn: [`t${i - 20}`], priority: priority(i - 20) })
    } else if (i % 7 === 3) {
      extra.phase = 'destroy'
    }
    register(`t${i}`, extra)
  }
  for (let i = 0; i < 300; i += 17) assert.equal(m.unregisterTask(`t${i}`), true)
  for (let i = 0; i < 300; i += 34) register(`t${i}`, { priority: priority(i) })
  const result = await m.stop()
  const ids = new Set(result.tasks.map((t) => t.id))
  assert.ok(result.tasks.length > 250, `${result.tasks.length} tasks ran`)
  for (const task of result.tasks) {
    assert.equal(task.status, 'failed', task.id)
    assert.equal(task.error.message, task.id, `task '${task.id}' ran the handler of '${task.error.message}'`)
  }
  assert.ok(!ids.has('t17') && ids.has('t34') && ids.has('t0'))
})

test('a burst whose ids or names do not split one per task registers nothing and says so; a count that differs begins nothing', () => {
  const native = require('..').native
  const shutdown = new native.NativeShutdown(null)
  const two = [new Float64Array([50, 50]), new Uint8Array([0, 0])]
  assert.equal(shutdown.registerMany('a\0b\0c', null, ...two), false)
  assert.equal(shutdown.registerMany('a\0b', 'one name', ...two), false)
  assert.equal(shutdown.registerMany('a\0b', null, new Float64Array([50, 50]), new Uint8Array([0])), false)
  assert.equal(shutdown.registerMany('a\0b', null, ...two), true)
  // The plan names tasks by position, so a facade that counts other tasks than the native side begins nothing.
  // `begin` writes 5 doubles, then two 32-bit indexes per task, into the ArrayBuffer it is given.
  const room = (tasks) => new ArrayBuffer(5 * 8 + 2 * tasks * 4)
  assert.throws(() => shutdown.begin('manual', 30_000, null, true, 3, room(3)), { code: 'ERR_INTERNAL_ASSERTION' })
  assert.equal(shutdown.state, 'running')
  // Nor does one that gives begin too little room for what it writes.
  assert.throws(() => shutdown.begin('manual', 30_000, null, true, 2, room(1)), {
    code: 'ERR_INTERNAL_ASSERTION',
    message: /given 48 bytes, and 2 tasks need 56/,
  })
  // Only an ArrayBuffer: no other thread may write what the native side writes.
  for (const other of [new SharedArrayBuffer(56), new Float64Array(7), null]) {
    assert.throws(() => shutdown.begin('manual', 30_000, null, true, 2, other), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  assert.equal(shutdown.state, 'running')
  const buffer = room(2)
  // The reason alone: no signal passed and none began it, and no dependency is missing.
  assert.equal(shutdown.begin('manual', 30_000, null, true, 2, buffer), 'manual')
  const figures = new Float64Array(buffer, 0, 5)
  // elapsed, remaining, budget, handle, ready count; positions [0, 1]; both ready (plan indexes 0 and 1).
  assert.ok(figures[0] >= 0 && figures[0] < 1000, `elapsed ${figures[0]}`)
  assert.ok(figures[1] > 29_000 && figures[1] <= 30_000, `remaining ${figures[1]}`)
  assert.deepEqual([figures[2], figures[4], ...new Uint32Array(buffer, 40)], [30_000, 2, 0, 1, 0, 1])
  shutdown.finish(0, false)
})

test('begin returns the details of a shutdown whose dependency is missing, and writes its plan', () => {
  const native = require('..').native
  const shutdown = new native.NativeShutdown(null)
  shutdown.register('late', 'late', 60, 'stop', [])
  shutdown.register('early', 'early', 10, 'stop', ['ghost'])
  const buffer = new ArrayBuffer(5 * 8 + 4 * 4)
  const details = shutdown.begin('manual', 30_000, null, true, 2, buffer)
  assert.deepEqual(details, { reason: 'manual', missing: [{ taskId: 'early', dependsOn: 'ghost' }] })
  // The plan runs 'early' (registered second) first; only it starts now.
  assert.deepEqual([new Float64Array(buffer, 0, 5)[4], ...new Uint32Array(buffer, 40)], [1, 1, 0, 0, 0])
  shutdown.finish(0, false)
})

test("a finished shutdown's handle settles nothing, even after another shutdown began", () => {
  // settleTask finds a running shutdown by the handle begin gave out; a late settle through an old handle
  // must not reach the task at the same index of whichever shutdown runs now.
  const native = require('..').native
  const begin = () => {
    const shutdown = new native.NativeShutdown(null)
    shutdown.registerMany('only', null, new Float64Array([50]), new Uint8Array([0]))
    const buffer = new ArrayBuffer(5 * 8 + 2 * 4)
    shutdown.begin('manual', 30_000, null, true, 1, buffer)
    return { shutdown, start: { handle: new Float64Array(buffer, 0, 5)[3] } }
  }
  const first = begin()
  assert.equal(native.settleTask(first.start.handle, 0, 0, false), -2) // its last task: finished
  first.shutdown.finish(0, false)
  const second = begin()
  assert.notEqual(second.start.handle, first.start.handle)
  assert.equal(native.settleTask(first.start.handle, 0, 0, false), -1)
  assert.equal(second.shutdown.state, 'stopping')
  assert.equal(native.settleTask(second.start.handle, 0, 0, false), -2)
  second.shutdown.finish(0, false)
  assert.equal(native.settleTask(second.start.handle, 0, 0, false), -1)
})

test('a level of many tasks: every handler is called, a synchronous throw fails only its task, and nothing leaks a rejection', async () => {
  // The tasks of a level are all called before any of their settling is attached (run.js #startTasks);
  // a handler that throws at once must still be a failure of its own task, never an unhandled rejection.
  const unhandled = []
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const m = manager()
    const called = []
    for (let i = 0; i < 200; i++) {
      m.registerTask({
        id: `t${i}`,
        priority: 10,
        handler: () => {
          called.push(i)
          if (i === 7) throw new Error('sync failure')
          if (i === 8) return Promise.reject(new Error('async failure'))
          return i % 2 === 0 ? undefined : Promise.resolve()
        },
      })
    }
    let laterSawAll = false
    m.registerTask({ id: 'later', priority: 20, handler: () => (laterSawAll = called.length === 200) })
    const result = await m.stop()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(called.length, 200)
    assert.equal(laterSawAll, true)
    const status = Object.fromEntries(result.tasks.map((t) => [t.id, t.status]))
    assert.equal(status.t7, 'failed')
    assert.equal(status.t8, 'failed')
    assert.equal(result.tasks.filter((t) => t.status === 'succeeded').length, 199)
    assert.equal(result.exitCode, 1)
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

test("the logger's methods are looked up at each call: a level changed after the manager was made is heard", async () => {
  // As pino sets a level: by swapping the instance's methods for no-ops or real ones.
  const heard = []
  const noop = () => {}
  const logger = { info: noop, warn: noop, error: noop }
  const m = manager({ logger })
  logger.info = (fields, message) => heard.push(message)
  m.registerTask({ id: 'a', handler: () => {} })
  await m.stop()
  assert.ok(
    heard.some((message) => /shutdown/i.test(message)),
    `the info method set after construction got the shutdown's lines: ${JSON.stringify(heard)}`,
  )
  // One removed later is the default's (quiet for info), not a failure.
  const removable = { info: (fields, message) => heard.push(message) }
  const other = manager({ logger: removable })
  delete removable.info
  const before = heard.length
  other.registerTask({ id: 'b', handler: () => {} })
  assert.equal((await other.stop()).exitCode, 0)
  assert.equal(heard.length, before, 'nothing reached the removed method')
  // One missing when the manager is made and added later is heard too.
  const growing = {}
  const third = manager({ logger: growing })
  growing.info = (fields, message) => heard.push(message)
  third.registerTask({ id: 'c', handler: () => {} })
  assert.equal((await third.stop()).exitCode, 0)
  assert.ok(
    heard.length > before,
    `the info method added after construction got the shutdown's lines: ${JSON.stringify(heard)}`,
  )
})

test("a class instance's handler runs with the task as `this`, as a method does", async () => {
  class CacheTask {
    #client = { quit: () => 'closed' }
    id = 'cache'
    closed = null
    handler() {
      this.closed = this.#client.quit()
    }
  }
  const task = new CacheTask()
  const m = manager({ logger: { warn() {} } })
  m.registerTask(task)
  const result = await m.stop()
  assert.equal(result.tasks[0].status, 'succeeded', JSON.stringify(result.tasks[0]))
  assert.equal(task.closed, 'closed')
})

test("a task's abort listeners, wrapped to isolate them, still behave as a signal's do", async () => {
  const calls = []
  let onabortReadBack = null
  let onceResolved = null
  const m = manager()
  m.registerTask({
    id: 'slow',
    timeout: 20,
    handler: ({ abortSignal }) => {
      const a = () => calls.push('a')
      const b = () => calls.push('b')
      abortSignal.addEventListener('abort', a)
      abortSignal.addEventListener('abort', a) // added twice: called once, as Node's EventTarget does
      abortSignal.addEventListener('abort', b)
      abortSignal.removeEventListener('abort', b)
      abortSignal.addEventListener('abort', { handleEvent: (event) => calls.push(`object ${event.type}`) })
      const onabort = function () {
        calls.push(`onabort ${this === abortSignal}`)
      }
      abortSignal.onabort = onabort
      onabortReadBack = abortSignal.onabort === onabort
      onceResolved = require('node:events')
        .once(abortSignal, 'abort')
        .then(() => calls.push('once'))
      return new Promise(() => {})
    },
  })
  const result = await m.stop()
  await onceResolved
  assert.equal(result.tasks[0].status, 'timedOut')
  assert.equal(onabortReadBack, true)
  assert.deepEqual(calls.sort(), ['a', 'object abort', 'onabort true', 'once'])
})
