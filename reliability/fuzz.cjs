'use strict'
// Property-based fuzzing of the public API with fast-check. Run as its own process (reliability/run.cjs
// spawns it), so a native abort shows up as a dead process rather than a lost test runner.
//
// Each sequence builds a manager, applies random commands (register, unregister, on, stop in the middle,
// hostile arguments of every kind), then stops it and checks the invariants:
// - every thrown error is documented (class and code), or is the hostile input's own error propagating;
// - registration agrees with an independent oracle: a duplicate is ERR_TASK_EXISTS, a cycle (through
//   dependencies, or dependencies against priorities and phases) is ERR_TASK_CYCLE, anything else succeeds;
// - every registered task runs exactly once, and settles before any task it must precede starts;
// - the result lists every task with a final status.
// A second property shuts down 10 000 tasks with random dependencies and checks the same order.
//
//   node reliability/fuzz.cjs [--runs N] [--seed S]

const fc = require('fast-check')
const { ShutdownManager, ShutdownEvent } = require('..')

const args = process.argv.slice(2)
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback)
const RUNS = option('--runs', 10_000)
const SEED = option('--seed', Date.now() % 2 ** 31)

/** What hostile inputs throw; it must come back out unchanged. */
class HostileError extends Error {}
/** A broken invariant: the fuzzer found a bug. */
class InvariantError extends Error {}

const DOCUMENTED = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
  ERR_TASK_EXISTS: Error,
  ERR_TASK_CYCLE: Error,
  ERR_SHUTDOWN_IN_PROGRESS: Error,
  ERR_SHUTDOWN_COMPLETED: Error,
}

function assertDocumented(error, where) {
  if (error instanceof HostileError) return
  const expected = DOCUMENTED[error?.code]
  if (!expected || !(error instanceof expected)) {
    throw new InvariantError(`${where} threw an undocumented error: ${error?.name} ${error?.code} ${error?.message}`)
  }
}

function check(condition, message) {
  if (!condition) throw new InvariantError(message)
}

// ---- hostile values -----------------------------------------------------------------------------------

const throwingProxy = () =>
  new Proxy(
    {},
    {
      get() {
        throw new HostileError('proxy get')
      },
      has() {
        throw new HostileError('proxy has')
      },
      ownKeys() {
        throw new HostileError('proxy ownKeys')
      },
      getPrototypeOf() {
        throw new HostileError('proxy getPrototypeOf')
      },
    },
  )

// Without a handler, so that it never makes a valid task: a getter on any key but `handler` then leaves a
// TypeError to find, and a getter on `handler` throws its own error.
const withThrowingGetter = (key) =>
  Object.defineProperty({ id: 'hostile' }, key, {
    enumerable: true,
    get() {
      throw new HostileError(`getter ${key}`)
    },
  })

/**
 * A hostile argument, built only when the command runs: fast-check inspects the values it generates, and a
 * throwing proxy would throw at fast-check instead of at the manager.
 */
class Hostile {
  constructor(label, build) {
    this.label = label
    this.build = build
  }
  toString() {
    return this.label
  }
}
function label(value) {
  try {
    return typeof value === 'symbol' ? value.toString() : String(value).slice(0, 40)
  } catch {
    return `a ${typeof value} with no string form`
  }
}
const plainHostile = (value) => new Hostile(`value ${label(value)}`, () => value)

const hostile = fc.oneof(
  fc.anything({ maxDepth: 2 }).map(plainHostile),
  fc
    .constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 31, -1, 0, 1.5, 10n, Symbol('s'), null, undefined)
    .map(plainHostile),
  fc.constant(new Hostile('a proxy whose traps throw', throwingProxy)),
  fc
    .constantFrom('id', 'priority', 'handler', 'dependsOn', 'timeout', 'reason', 'exit')
    .map((key) => new Hostile(`a throwing getter on ${key}`, () => withThrowingGetter(key))),
  fc.nat({ max: 200_000 }).map((n) => new Hostile(`a ${n}-character string`, () => 'x'.repeat(n))),
  fc.constant(new Hostile('a function', () => () => {})),
)

/**
 * Hostile stop() options, minus the valid ones that would end this process (`exit: true`) or bring a
 * deadline into a sequence that must not have one (`timeout`).
 */
const hostileStopOptions = hostile.filter((recipe) => {
  try {
    const value = recipe.build()
    return !(typeof value === 'object' && value !== null && (value.exit === true || value.timeout !== undefined))
  } catch {
    return true // a throwing proxy or getter: the interesting case, kept
  }
})

// ---- valid tasks, drawn from a small pool of ids so that duplicates and cycles happen --------------------

const IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
const handlerKind = fc.constantFrom('sync', 'async', 'throw', 'reject', 'hang', 'bad-thenable', 'throw-proxy')
const validTask = fc.record({
  id: fc.constantFrom(...IDS),
  priority: fc.oneof(
    fc.constantFrom(0, 10, 25, 50, 75, 100, -0),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
  ),
  phase: fc.constantFrom('stop', 'destroy'),
  dependsOn: fc.uniqueArray(fc.constantFrom(...IDS, 'unknown'), { maxLength: 3 }),
  kind: handlerKind,
})

const command = fc.oneof(
  { weight: 6, arbitrary: validTask.map((task) => ({ type: 'register', task })) },
  { weight: 2, arbitrary: hostile.map((value) => ({ type: 'register-hostile', value })) },
  { weight: 2, arbitrary: fc.constantFrom(...IDS, 'unknown').map((id) => ({ type: 'unregister', id })) },
  { weight: 1, arbitrary: hostile.map((value) => ({ type: 'unregister-hostile', value })) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        event: fc.constantFrom(...Object.values(ShutdownEvent)),
        listener: fc.constantFrom('ok', 'throws', 'rejects'),
      })
      .map((c) => ({ type: 'on', ...c })),
  },
  { weight: 1, arbitrary: hostileStopOptions.map((value) => ({ type: 'stop-hostile', value })) },
  { weight: 1, arbitrary: fc.constant({ type: 'stop-midway' }) },
)

const managerOptions = fc.oneof(
  { weight: 9, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: hostile.map((value) => ({ hostile: value })) },
)

// ---- the oracle --------------------------------------------------------------------------------------

const levelOf = (task) => [task.phase === 'destroy' ? 1 : 0, task.priority + 0]
const compareLevels = (a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)

/** Whether adding `task` to `tasks` (id -> task) makes the order impossible. */
function wouldCycle(tasks, task) {
  const all = new Map(tasks).set(task.id, task)
  for (const t of all.values()) {
    for (const dep of t.dependsOn) {
      if (dep === t.id) return true
      const target = all.get(dep)
      if (target && compareLevels(levelOf(target), levelOf(t)) < 0) return true
    }
  }
  const state = new Map() // id -> 'visiting' | 'done'
  const visit = (id) => {
    if (state.get(id) === 'visiting') return true
    if (state.get(id) === 'done') return false
    state.set(id, 'visiting')
    for (const dep of all.get(id).dependsOn) if (all.has(dep) && visit(dep)) return true
    state.set(id, 'done')
    return false
  }
  return [...all.keys()].some((id) => visit(id))
}

/** Whether `a` must settle before `b` starts. */
function mustPrecede(a, b) {
  return compareLevels(levelOf(a), levelOf(b)) < 0 || a.dependsOn.includes(b.id)
}

// ---- one sequence ------------------------------------------------------------------------------------

function makeHandler(kind, trace, id) {
  return ({ abortSignal }) => {
    trace.start(id)
    switch (kind) {
      case 'sync':
        return undefined
      case 'async':
        return Promise.resolve().then(() => undefined)
      case 'throw':
        throw new Error(`task ${id} failed`)
      case 'reject':
        return Promise.reject(Object.assign(new Error('rejected'), { code: 'EBAD' }))
      case 'hang':
        return new Promise((resolve) => abortSignal.addEventListener('abort', resolve))
      case 'bad-thenable':
        return {
          // biome-ignore lint/suspicious/noThenProperty: a thenable that throws is the hostile input tested here.
          then() {
            throw new HostileError('then')
          },
        }
      case 'throw-proxy':
        throw throwingProxy()
    }
    return undefined
  }
}

async function runSequence(options, commands) {
  if (options) {
    // Only the constructor is under test: options that happen to be valid may own signals or set a 1 ms
    // deadline with a native hard exit, so such a manager is given straight back.
    try {
      new ShutdownManager(options.hostile.build()).dispose()
    } catch (error) {
      assertDocumented(error, 'the constructor')
    }
    return
  }
  const quiet = { info() {}, warn() {}, error() {} }
  const manager = new ShutdownManager({
    disableGracefulShutdown: true,
    hardExit: false,
    gracefulShutdownTimeout: 5000,
    logger: quiet,
  })

  let clock = 0
  const starts = new Map()
  const settles = new Map()
  const runs = new Map()
  const trace = {
    start(id) {
      runs.set(id, (runs.get(id) ?? 0) + 1)
      starts.set(id, ++clock)
    },
  }
  manager.on(ShutdownEvent.ShutdownTaskComplete, ({ taskId }) => settles.set(taskId, ++clock))
  manager.on(ShutdownEvent.ShutdownTaskError, ({ taskId }) => settles.set(taskId, ++clock))

  const model = new Map()
  let stopping = null
  let frozen = null // the model when the shutdown began
  for (const c of commands) {
    try {
      switch (c.type) {
        case 'register': {
          const expected = stopping
            ? manager.state === 'stopped'
              ? 'ERR_SHUTDOWN_COMPLETED'
              : 'ERR_SHUTDOWN_IN_PROGRESS'
            : model.has(c.task.id)
              ? 'ERR_TASK_EXISTS'
              : wouldCycle(model, c.task)
                ? 'ERR_TASK_CYCLE'
                : 'ok'
          let actual = 'ok'
          try {
            const { kind, ...spec } = c.task
            const timeout = kind === 'hang' ? 2 : undefined
            manager.registerTask({ ...spec, timeout, handler: makeHandler(kind, trace, c.task.id) })
          } catch (error) {
            assertDocumented(error, 'registerTask')
            actual = error.code
          }
          check(actual === expected, `registering ${JSON.stringify(c.task)}: expected ${expected}, got ${actual}`)
          if (actual === 'ok') model.set(c.task.id, c.task)
          break
        }
        case 'register-hostile':
          manager.registerTask(c.value.build())
          break
        case 'unregister': {
          const removed = manager.unregisterTask(c.id)
          check(!stopping, 'unregister during a shutdown did not throw')
          check(removed === model.delete(c.id), `unregisterTask('${c.id}') returned ${removed}`)
          break
        }
        case 'unregister-hostile': {
          const value = c.value.build()
          const removed = manager.unregisterTask(value)
          // A "hostile" value may be a plain id string that names a task: then it really goes.
          check(removed === model.delete(value), `unregisterTask(${c.value}) returned ${removed}`)
          break
        }
        case 'on':
          manager.on(c.event, () => {
            if (c.listener === 'throws') throw new Error('listener')
            if (c.listener === 'rejects') return Promise.reject(new Error('listener'))
            return undefined
          })
          break
        case 'stop-hostile':
          await manager.stop(c.value.build()).then(
            () => {
              stopping ??= manager.stop()
              frozen ??= new Map(model)
            },
            (error) => assertDocumented(error, 'stop()'),
          )
          break
        case 'stop-midway':
          stopping ??= manager.stop()
          frozen ??= new Map(model)
          break
      }
    } catch (error) {
      if (error instanceof InvariantError) throw error
      assertDocumented(error, c.type)
    }
  }
  stopping ??= manager.stop()
  frozen ??= new Map(model)
  const result = await stopping

  check(!result.hardExit, 'no deadline should pass in a sequence')
  check(result.tasks.length === frozen.size, `result has ${result.tasks.length} tasks, expected ${frozen.size}`)
  for (const t of result.tasks) {
    check(['succeeded', 'failed', 'timedOut'].includes(t.status), `task ${t.id} ended as ${t.status}`)
  }
  for (const [id] of frozen) check(runs.get(id) === 1, `task ${id} ran ${runs.get(id) ?? 0} times`)
  for (const [id, n] of runs) check(n === 1 && frozen.has(id), `task ${id} ran ${n} times`)
  for (const a of frozen.values()) {
    for (const b of frozen.values()) {
      if (a !== b && mustPrecede(a, b)) {
        check(settles.get(a.id) < starts.get(b.id), `${a.id} must settle before ${b.id} starts`)
      }
    }
  }
}

// ---- 10 000 tasks ------------------------------------------------------------------------------------

async function tenThousand(seed) {
  let state = seed
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  const manager = new ShutdownManager({
    disableGracefulShutdown: true,
    hardExit: false,
    gracefulShutdownTimeout: 60_000,
  })
  const n = 10_000
  const tasks = []
  let clock = 0
  const start = new Int32Array(n)
  const settle = new Int32Array(n)
  const index = new Map()
  manager.on(ShutdownEvent.ShutdownTaskComplete, ({ taskId }) => (settle[index.get(taskId)] = ++clock))
  for (let i = 0; i < n; i++) {
    const priority = [10, 50, 90][Math.floor(random() * 3)]
    // Depend only on later-registered tasks of the same or a later priority: never a cycle.
    const dependsOn = []
    for (let k = 0; k < 2; k++) {
      const j = i + 1 + Math.floor(random() * 50)
      if (j < n) dependsOn.push(`t${j}`)
    }
    tasks.push({ id: `t${i}`, priority, dependsOn })
  }
  // Priorities must not contradict dependencies: a dependency gets at least its dependent's priority. In
  // ascending order every dependent of task j (all lower indexes) is final before j passes its own on.
  for (let i = 0; i < n; i++) {
    for (const dep of tasks[i].dependsOn) {
      const j = Number(dep.slice(1))
      tasks[j].priority = Math.max(tasks[j].priority, tasks[i].priority)
    }
  }
  tasks.forEach((t, i) => {
    index.set(t.id, i)
    manager.registerTask({ ...t, handler: () => (start[i] = ++clock) && undefined })
  })
  const result = await manager.stop()
  check(result.exitCode === 0 && result.tasks.length === n, `10 000 tasks: exit ${result.exitCode}`)
  // Order: within a priority, dependencies; across priorities, every lower one settled first.
  const byPriority = new Map()
  tasks.forEach((t, i) => {
    const p = byPriority.get(t.priority) ?? { maxSettle: 0, minStart: Infinity }
    p.maxSettle = Math.max(p.maxSettle, settle[i])
    p.minStart = Math.min(p.minStart, start[i])
    byPriority.set(t.priority, p)
    for (const dep of t.dependsOn) {
      const j = index.get(dep)
      check(settle[i] < start[j], `${t.id} must settle before ${dep} starts`)
    }
  })
  const levels = [...byPriority.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v)
  for (let k = 1; k < levels.length; k++) check(levels[k - 1].maxSettle < levels[k].minStart, 'priority order broken')
  return n
}

async function main() {
  let sequences = 0
  await fc.assert(
    fc.asyncProperty(managerOptions, fc.array(command, { maxLength: 25 }), async (options, commands) => {
      sequences++
      await runSequence(options, commands)
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true, errorWithCause: true },
  )
  const largest = await tenThousand(SEED)
  process.stdout.write(JSON.stringify({ kind: 'summary', sequences, largest, seed: SEED }) + '\n')
}

main().catch((error) => {
  const cause = error?.cause ? ` (cause: ${error.cause.message ?? error.cause})` : ''
  process.stdout.write(
    JSON.stringify({ kind: 'failure', seed: SEED, message: String(error?.message ?? error) + cause }) + '\n',
  )
  console.error(error)
  process.exitCode = 1
})
