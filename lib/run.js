'use strict'

// One shutdown, from its start to its result.
//
// The native record decides the order (which tasks may start), owns the deadline and remembers which task
// is running since when; this side calls the handlers, enforces per-task timeouts with AbortSignals, emits
// the events and builds the result. See ARCHITECTURE.md for how the two halves split the work.

const { ShutdownEvent, ShutdownReason, ShutdownPhase } = require('../index.js')
const {
  native,
  lifecycleError,
  isSilent,
  describeMessage,
  quoted,
  escaped,
  MAX_TIMEOUT_MS,
  DEFAULT_DESTROY_RESERVE,
  MIN_TASK_SHARE,
} = require('./validate')

/**
 * With a native watchdog the process is gone within milliseconds of the deadline. The JavaScript timer then
 * only keeps the event loop alive until then; if it ever fires, the watchdog failed and JavaScript exits.
 */
const WATCHDOG_FALLBACK_MS = 1000

/** How far a budget that crossed to native code and back may differ from the one configured (1 ns). */
const BUDGET_ROUNDING_MS = 1e-6

const FATAL_REASONS = new Set([ShutdownReason.UncaughtException, ShutdownReason.UnhandledRejection])

/**
 * `setTimeout` for any delay. Node fires a delay above 2^31-1 ms after 1 ms instead (a deadline near the
 * longest allowed timeout, plus a margin, would end the shutdown at once), so a longer one is re-armed.
 */
class LongTimer {
  #timer = null

  constructor(callback, ms, { ref = true } = {}) {
    const arm = (left) => {
      const step = Math.min(left, MAX_TIMEOUT_MS)
      this.#timer = setTimeout(() => (left > step ? arm(left - step) : callback()), Math.max(step, 0))
      if (!ref) this.#timer.unref()
    }
    arm(ms)
  }

  clear() {
    clearTimeout(this.#timer)
  }
}

/** The margin a drain leaves before the stop phase ends: 5% of the budget, and at least 100 ms. */
const DRAIN_MARGIN_SHARE = 0.05
const DRAIN_MARGIN_MIN_MS = 100

/** The still-alive watch of the latest shutdown that did not exit (see #watchStillAlive). */
let stillAliveTimer = null

/** How often a joined stop() checks whether its continuations are done (see #exitAfterContinuations). */
const CONTINUATION_POLL_MS = 5
/** How long before the deadline a joined stop() stops waiting for its continuations and exits. */
const EXIT_BEFORE_DEADLINE_MS = 50

/** Active resources (Node's names: 'Timeout', 'TCPSocketWrap', ...) counted by type. */
function countByType(resources) {
  const counts = new Map()
  for (const type of resources) counts.set(type, (counts.get(type) ?? 0) + 1)
  return counts
}

/**
 * Milliseconds on the monotonic clock. Not `performance.now()`: the first touch of `performance` loads
 * perf_hooks, 0.7 ms spent between a signal and the first task.
 */
const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Promise's own `then`, taken at load: a handler's promise is followed with it, never with a `then` the
 * handler's code put on its promise or on Promise.prototype later, which could throw outside the task's
 * isolation (in the middle of starting a level of tasks).
 */
const promiseThen = Promise.prototype.then

const { addEventListener, removeEventListener } = EventTarget.prototype
const onabortAttribute = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'onabort')

/**
 * Makes the abort listeners of a task's `signal` isolated: Node raises what an event listener throws (or an
 * async one rejects with) as an uncaught exception, which the manager's error hook would take for a fatal
 * error of the process and end it. Listeners added with addEventListener (which events.once and
 * events.addAbortListener use too) or set as `onabort` run wrapped, and their failures go to `failed`, to
 * be logged as the task's. Not covered: listeners of a signal made from this one (AbortSignal.any), which
 * Node aborts and calls itself.
 */
function isolateAbortListeners(signal, failed) {
  const wrappers = new WeakMap()
  const wrap = (listener) => {
    if (typeof listener !== 'function' && (typeof listener !== 'object' || listener === null)) return listener
    let wrapped = wrappers.get(listener)
    if (wrapped === undefined) {
      wrapped = function isolatedAbortListener(event) {
        try {
          const returned =
            typeof listener === 'function' ? Reflect.apply(listener, this, [event]) : listener.handleEvent(event)
          if (typeof returned?.then === 'function') returned.then(undefined, failed)
        } catch (error) {
          failed(error)
        }
      }
      wrappers.set(listener, wrapped)
    }
    return wrapped
  }
  let handler = null
  const onabort = onabortAttribute?.set && {
    get: () => handler,
    set(value) {
      handler = typeof value === 'function' ? value : null
      Reflect.apply(onabortAttribute.set, this, [handler && wrap(handler)])
    },
    configurable: true,
  }
  Object.defineProperties(signal, {
    addEventListener: {
      value(type, listener, options) {
        return Reflect.apply(addEventListener, this, [type, type === 'abort' ? wrap(listener) : listener, options])
      },
      writable: true,
      configurable: true,
    },
    removeEventListener: {
      value(type, listener, options) {
        const target = type === 'abort' ? (wrappers.get(listener) ?? listener) : listener
        return Reflect.apply(removeEventListener, this, [type, target, options])
      },
      writable: true,
      configurable: true,
    },
    ...(onabort && { onabort }),
  })
}

/**
 * What a task's handler receives (`reason`, `signal`, `abortSignal`, `deadline`), and the run's record of
 * it while it runs (its timeout timer, when it started): one object per task, as a class, so a shutdown
 * with thousands of tasks makes one small object each. The run's part is private, reached through the
 * static methods, so the handler sees only its four properties. The AbortSignal is made only if the
 * handler reads `abortSignal`: creating the first AbortController costs 0.2 ms, and most handlers never
 * look. An abort before the read still shows. Its abort listeners are the task's code, and isolated as
 * such (see isolateAbortListeners).
 */
class TaskContext {
  #controller = null
  #abortReason = undefined
  #aborted = false
  #timer = null
  #startedMono
  #ranSyncMs = 0
  #taskId
  /** The run's report of an abort listener of this task that failed: (taskId, error). */
  #listenerFailed

  constructor(reason, signal, deadline, startedMono, taskId, listenerFailed) {
    this.reason = reason
    this.signal = signal
    this.deadline = deadline
    this.#startedMono = startedMono
    this.#taskId = taskId
    this.#listenerFailed = listenerFailed
  }

  get abortSignal() {
    if (!this.#controller) {
      this.#controller = new AbortController()
      const taskId = this.#taskId
      const failed = this.#listenerFailed
      isolateAbortListeners(this.#controller.signal, (error) => failed(taskId, error))
      if (this.#aborted) this.#controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  static abort(context, reason) {
    if (context.#aborted) return
    context.#aborted = true
    context.#abortReason = reason
    context.#controller?.abort(reason)
  }

  static setTimer(context, timer) {
    context.#timer = timer
  }

  static clearTimer(context) {
    if (context.#timer !== null) clearTimeout(context.#timer)
  }

  /** Whether the task has a timeout timer of its own (a timeout shorter than what the deadline left). */
  static hasTimer(context) {
    return context.#timer !== null
  }

  /** Its handler has returned (for a task with a timer: see `overran`; a throw is a failure either way). */
  static returned(context) {
    context.#ranSyncMs = monotonicMs() - context.#startedMono
  }

  /**
   * Whether its handler ran `timeout` ms or more synchronously, the loop blocked all along, so its timer
   * could not fire. Only its own synchronous time counts: a task kept waiting by others' blocking (before
   * its settling could run) is left to its timer, which fires once the loop turns.
   */
  static overran(context, timeout) {
    return context.#ranSyncMs >= timeout
  }

  /** Milliseconds since the task started. */
  static runningFor(context) {
    return monotonicMs() - context.#startedMono
  }
}

/**
 * The native side's codes for a task's end (`settleTask`) and its status (`taskStates`). A task times out
 * with its handler still running (`timedOut`) or, when the handler kept the loop busy past its timeout so
 * that the timer could not fire first, with its handler ended (`endedLate`).
 */
const OUTCOME_CODES = { succeeded: 0, failed: 1, timedOut: 2, endedLate: 3 }
const STATUS_NAMES = ['pending', 'running', 'succeeded', 'failed', 'timedOut', 'skipped']
/** What `settleTask` answers when no task starts because of it. */
const SETTLE_NOT_RUNNING = -1
const SETTLE_FINISHED = -2
/**
 * Where `begin` writes what starting a shutdown needs, as the native side lays it out: figures (doubles),
 * then from byte START_INDEXES_AT the plan's indexes (32-bit): the plan, then the tasks that start now.
 */
const {
  elapsedMs: START_ELAPSED_MS,
  remainingMs: START_REMAINING_MS,
  budgetMs: START_BUDGET_MS,
  handle: START_HANDLE,
  readyCount: START_READY_COUNT,
  figures: START_FIGURES,
  indexesAt: START_INDEXES_AT,
} = native.startBufferLayout()
/**
 * The room for the plan's indexes a run makes ahead (two per task): a service with up to this many tasks
 * makes none on the way from a signal, a larger one makes it there (for 10 000 tasks, 6 to 12 µs), and
 * nothing is kept per task before.
 */
const START_TASKS_AHEAD = 16

/** A buffer for `begin` with room for `taskCount` tasks, and the views the facade reads it through. */
function startBuffer(taskCount) {
  const buffer = new ArrayBuffer(START_INDEXES_AT + 2 * taskCount * Uint32Array.BYTES_PER_ELEMENT)
  return {
    buffer,
    figures: new Float64Array(buffer, 0, START_FIGURES),
    indexes: new Uint32Array(buffer, START_INDEXES_AT),
  }
}

function taskTimeoutError(id, timeout) {
  return lifecycleError('ERR_TASK_TIMEOUT', `shutdown task ${quoted(id)} timed out after ${timeout} ms`)
}

// A registered task as the manager keeps it (index.js `#tasks`, by id): for a task named by its id, in the
// stop phase, without a timeout (most tasks: a plain task, as validateTask in validate.js decides), its
// handler alone; otherwise the whole spec from validate.js. The facade needs nothing else of a task once
// the native side has its priority and dependencies, and a function per task instead of a spec object is
// about 95 B less heap per task. Read entries only through these (a handler is a function, which has a
// `name` of its own).
const handlerOf = (entry) => (typeof entry === 'function' ? entry : entry.handler)
const nameOf = (entry, id) => (typeof entry === 'object' ? entry.name : id)
const phaseOf = (entry) => (typeof entry === 'object' ? entry.phase : ShutdownPhase.Stop)
const timeoutOf = (entry) => (typeof entry === 'object' ? entry.timeout : undefined)

class ShutdownRun {
  #native
  #tasks
  #emit
  /** An abort listener of a task failed (see isolateAbortListeners): the task's, logged; the shutdown goes on. */
  #abortListenerFailed = (taskId, error) => {
    this.#logger.error(
      `an abort listener of shutdown task ${quoted(taskId)} threw; the shutdown goes on: ${describeMessage(error)}`,
      { taskId, err: error },
    )
  }
  /** Whether an event has listeners: a large shutdown skips building payloads nobody reads. */
  #listens
  #logger
  #exitCodes
  #exit
  /** Whether a stop() caller without `exit` waits for this run's result, having begun or joined it: an
   * exit then lets what it chained to the promise run first (see #exitAfterContinuations). */
  #awaitedByStop
  /** Finished, and exiting once the stop() caller's continuations are done (or at the deadline). */
  #exitPending = false
  /** Finished at a hard exit that the watchdog carries out: nothing in JavaScript may exit instead. */
  #exitsByWatchdog = false
  /** The process 'exit' hook that lets the watchdog exit first (see #awaitWatchdogOnExit), once added. */
  #waitForWatchdog = null
  #fatal = false
  #finished = false
  /** Finished, and past the point where #finish reads whether to exit (see `concluded`). */
  #concluded = false
  #destroyPhaseBegun = false
  /** The plan's task ids, and the manager's entries for them, in plan order (see #placeTasks). */
  #ids = []
  #entries = []
  /** What the native side names this shutdown by in `settleTask`. */
  #handle = -1
  /** Plan index -> its TaskContext while the task runs (an array: a shutdown looks these up once per task). */
  #running = []
  #errors = new Map() // plan index -> what the handler threw, or its timeout error
  /** Plan indexes of the tasks that timed out while their handlers still ran, until those handlers end. */
  #overrunning = new Set()
  #deadlineTimer = null
  /** The shutdown delay, then the moment the stop phase gives way to the destroy phase's reserve. */
  #delayTimer = null
  #reserveTimer = null
  #shutdownDelay
  #destroyReserve
  /** The manager's gracefulShutdownTimeout: a configured reserve is checked against it, not a stop() timeout. */
  #configuredBudgetMs
  /** This run's reserve for the destroy phase, in ms (0 when nothing is reserved). */
  #reserveMs = 0
  /** Whether the plan has destroy tasks, for which the stop phase gives way to the reserve. */
  #hasDestroyPhase = false
  #onStart
  #onStillAlive
  #stillAliveReportDelay
  #resolve
  #startedMono = 0
  /** The deadline on the monotonic clock, for timeouts (the wall clock of `deadline` can jump). */
  #deadlineMono = 0
  #budgetMs = 0
  /** Where `begin` writes (see START_FIGURES), made ahead. */
  #start = startBuffer(START_TASKS_AHEAD)

  /**
   * Made ahead of the shutdown (the manager prepares its run when it is built); `start` begins it.
   * @param {object} host what the manager lends the run: its native half, its tasks by id, its safe emit,
   *   its logger and exit codes.
   */
  constructor(host) {
    this.#native = host.native
    this.#tasks = host.tasks
    this.#emit = host.emit
    this.#listens = host.listens
    this.#logger = host.logger
    this.#exitCodes = host.exitCodes
    this.#shutdownDelay = host.shutdownDelay ?? 0
    this.#destroyReserve = host.destroyReserve
    this.#configuredBudgetMs = host.gracefulShutdownTimeout
    this.#stillAliveReportDelay = host.stillAliveReportDelay ?? 0
    this.#onStart = host.onStart
    this.#onStillAlive = host.onStillAlive
    this.reason = undefined
    this.signal = undefined
    this.message = undefined
    this.deadline = undefined
    this.result = undefined
    this.promise = new Promise((resolve) => {
      this.#resolve = resolve
    })
  }

  /**
   * Whether this run has finished and made its own choice of exit: its promise has resolved and it exited,
   * or will not. An exit asked for now is one it did not make. One asked while it finishes (from a
   * 'shutdown:complete' listener) is still its own to make (see #finish).
   */
  get concluded() {
    return this.#concluded
  }

  /**
   * Whether this run finished at a hard exit that the watchdog is carrying out (its report, then `_exit` with
   * the code the shutdown reported, within its write budget): an exit asked for now would race it, with
   * another code and the report cut.
   */
  get exitsByWatchdog() {
    return this.#exitsByWatchdog
  }

  /**
   * Begins the shutdown natively (or picks up the one a signal began) and starts its first tasks. `signal`
   * names the owned signal that started it, if one did.
   * @param {{ exit: boolean, fatal?: boolean, byStop?: boolean, message?: string }} options `message`: the
   *   supervisor's IPC message that started it, if one did
   */
  start(reason, budgetMs, signal, options) {
    const { exit, fatal = false, byStop = false, message = undefined } = options
    this.#exit = exit
    this.#awaitedByStop = byStop && !exit
    this.#fatal = fatal
    // Whether the first tasks start within begin: when no delay can apply. No delay after an uncaught error:
    // the process should not keep serving in a state nobody planned for.
    const startNow = this.#shutdownDelay === 0 || this.#fatal || FATAL_REASONS.has(reason)
    // Throws ERR_SHUTDOWN_IN_PROGRESS if JavaScript already runs (or ran) this shutdown.
    // The task count lets the native side check that positions in its plan name the tasks of this Map.
    const taskCount = this.#tasks.size
    if (this.#start.indexes.length < 2 * taskCount) this.#start = startBuffer(taskCount)
    const { buffer, figures, indexes } = this.#start
    const trigger = this.#native.begin(reason, budgetMs, signal, startNow, taskCount, buffer)
    // The reason alone, unless another signal began this shutdown or a dependency is missing.
    const details = typeof trigger === 'string' ? null : trigger
    const now = Date.now()
    const elapsedMs = figures[START_ELAPSED_MS]
    const remainingMs = figures[START_REMAINING_MS]
    this.reason = details === null ? trigger : details.reason
    this.signal = details === null ? (signal ?? undefined) : (details.signal ?? undefined)
    // The supervisor's message is what began it only if no signal did first (the watchdog begins a shutdown
    // at the signal, natively, while a blocked loop has yet to hear either).
    this.message = this.signal === undefined ? message : undefined
    this.#fatal ||= FATAL_REASONS.has(this.reason)
    this.deadline = now + remainingMs
    // The budget begin reports, not the one asked for: a signal the watchdog took first began this shutdown
    // with gracefulShutdownTimeout, whatever a stop() joining it asked.
    this.#budgetMs = figures[START_BUDGET_MS]
    this.#reserveMs = this.#reserveFor(this.#budgetMs)
    const delayMs = startNow || this.#fatal ? 0 : this.#delayFor(this.#budgetMs, this.#reserveMs)
    const mono = monotonicMs()
    this.#startedMono = mono - elapsedMs
    this.#deadlineMono = mono + remainingMs
    this.#handle = figures[START_HANDLE]
    this.#placeTasks(indexes, taskCount)
    // The plan orders every stop task before every destroy task: the last one tells whether there are any.
    // Known before any task starts: a drain's default time depends on it (stopPhaseLeftMs).
    this.#hasDestroyPhase = phaseOf(this.#entries.at(-1)) === ShutdownPhase.Destroy
    this.#running = new Array(this.#ids.length).fill(undefined)
    this.startedAt = now - elapsedMs
    // The payload is built only for a listener: this is the way from a signal to the first task.
    if (this.#listens(ShutdownEvent.ShutdownStart)) {
      this.#emit(ShutdownEvent.ShutdownStart, {
        reason: this.reason,
        signal: this.signal,
        ...(this.message !== undefined && { message: this.message }),
        timeoutMs: this.#budgetMs,
        startedAt: this.startedAt,
      })
    }
    // The shutdown has begun natively: from here nothing may throw out of start(), or the run would stay
    // begun with no task started and no deadline timer (a later stop() would wait on it for ever).
    try {
      this.#onStart?.()
    } catch (error) {
      this.#logger.error(`internal error beginning the shutdown: ${describeMessage(error)}`, { err: error })
    }
    // The delay counts from the shutdown's start (the signal handler's timestamp for a signal).
    const delayLeft = delayMs - elapsedMs
    if (startNow) {
      this.#startFirstTasks(indexes.subarray(taskCount, taskCount + figures[START_READY_COUNT]))
    } else if (delayLeft > 0) {
      // Ref'd: the process must stay up (and keep serving) while the load balancer notices.
      this.#delayTimer = setTimeout(() => this.#startFirstTasks(this.#native.startTasks()), delayLeft)
    } else {
      this.#startFirstTasks(this.#native.startTasks())
    }

    // Everything below can wait until the first tasks run: it is bookkeeping, not part of the order.
    if (this.#finished) return this.promise
    const fallback = this.#native.enforced ? WATCHDOG_FALLBACK_MS : 0
    // Ref'd on purpose: a task that never settles must not let the process drift out of the event loop
    // before its shutdown has finished. From now, not from the start: a first task that ran synchronously
    // for a while has used some of the time left.
    this.#deadlineTimer = new LongTimer(
      () => this.onDeadline(fallback > 0),
      Math.max(0, this.#deadlineMono - monotonicMs()) + fallback,
    )
    if (this.#hasDestroyPhase && this.#reserveMs > 0) {
      // From now too, as the deadline's timer (stopPhaseLeftMs).
      this.#reserveTimer = new LongTimer(() => this.#cutStopPhase(), this.stopPhaseLeftMs())
    }
    for (const { taskId, dependsOn } of details?.missing ?? []) {
      const message = `shutdown task ${quoted(taskId)} depends on unknown task ${quoted(dependsOn)}; the dependency is ignored`
      // Most likely a misspelt id, which reorders the shutdown: said even without a logger, as a process
      // warning (as an unknown option name is), when the logger would drop it.
      if (isSilent(this.#logger, 'warn')) {
        process.emitWarning(message, { type: 'TitanLifecycleWarning', code: 'TITAN_LIFECYCLE_UNKNOWN_DEPENDENCY' })
      } else {
        this.#logger.warn(message, { taskId, dependsOn })
      }
    }
    this.#logger.info(
      `shutdown started (reason ${this.reason}${this.signal ? `, signal ${this.signal}` : ''}, ` +
        `${this.#ids.length} tasks, timeout ${this.#budgetMs} ms)`,
      { reason: this.reason, signal: this.signal, tasks: this.#ids.length, timeoutMs: this.#budgetMs },
    )
    return this.promise
  }

  /**
   * The destroy phase's reserve in a shutdown of `budgetMs`: by default a share of the budget; as configured
   * (up to 90% of gracefulShutdownTimeout, checked at construction) when the budget is that timeout or
   * longer, and at most half of a shorter stop() timeout.
   */
  #reserveFor(budgetMs) {
    if (this.#destroyReserve === undefined) return budgetMs * DEFAULT_DESTROY_RESERVE
    // The budget has made a trip through native nanoseconds: a fractional timeout may come back a rounding
    // below the one configured, which is still the configured timeout, not a shorter one.
    const shorter = budgetMs < this.#configuredBudgetMs - BUDGET_ROUNDING_MS
    return shorter ? Math.min(this.#destroyReserve, budgetMs / 2) : this.#destroyReserve
  }

  /** The shutdown delay in a shutdown of `budgetMs`: it leaves the tasks their share besides the reserve. */
  #delayFor(budgetMs, reserveMs) {
    return Math.min(this.#shutdownDelay, Math.max(0, budgetMs - reserveMs - budgetMs * MIN_TASK_SHARE))
  }

  #startFirstTasks(ready) {
    this.#delayTimer = null
    if (this.#finished) return
    if (this.#ids.length === 0) {
      this.#finish(false)
      return
    }
    this.#startTasks(ready, monotonicMs())
  }

  /** Milliseconds until the stop phase gives way to the destroy phase's reserve (the deadline, if none). */
  stopPhaseLeftMs() {
    const reserveMs = this.#hasDestroyPhase ? this.#reserveMs : 0
    return Math.max(0, this.#deadlineMono - reserveMs - monotonicMs())
  }

  /**
   * The default time for a server's drain: what remains of the stop phase, less a margin, so the drain
   * reports what it cut (ERR_DRAIN_TIMEOUT) before the reserve cuts it, and later stop tasks get a moment.
   */
  drainTimeLeftMs() {
    return Math.max(0, this.stopPhaseLeftMs() - Math.max(DRAIN_MARGIN_MIN_MS, this.#budgetMs * DRAIN_MARGIN_SHARE))
  }

  /**
   * The destroy phase's reserve has come: stop tasks still running time out (their AbortSignals abort),
   * those not started are skipped, and the destroy phase starts, so it always gets the reserve.
   */
  #cutStopPhase() {
    this.#reserveTimer = null
    if (this.#finished) return
    if (this.#delayTimer) {
      clearTimeout(this.#delayTimer)
      this.#delayTimer = null
    }
    const cut = this.#native.cutStopPhase()
    if (!cut) return
    for (const index of cut.timedOut) {
      const taskId = this.#ids[index]
      const entry = this.#running[index]
      this.#running[index] = undefined
      if (entry) {
        TaskContext.clearTimer(entry)
        this.#overrunning.add(index)
      }
      const error = lifecycleError(
        'ERR_TASK_TIMEOUT',
        `shutdown task ${quoted(taskId)} was stopped to keep ${Math.round(this.#reserveMs)} ms for the destroy phase`,
      )
      if (entry) TaskContext.abort(entry, error)
      this.#errors.set(index, error)
      this.#logFailure(error.message, { taskId, err: error })
      this.#emit(ShutdownEvent.ShutdownTaskError, {
        taskId,
        name: nameOf(this.#entries[index], taskId),
        error,
        durationMs: entry ? TaskContext.runningFor(entry) : 0,
        timedOut: true,
      })
    }
    // The destroy phase first: the skipped tasks' errors (and their events) come after its tasks started.
    this.#startTasks(cut.ready, monotonicMs())
    if (cut.skipped.length > 0) {
      const ids = cut.skipped.map((i) => this.#ids[i])
      // One log line for them all; an event for each, as for every other task that did not succeed.
      this.#logger.warn(
        `shutdown tasks ${ids.map(quoted).join(', ')} were skipped to keep ${Math.round(this.#reserveMs)} ms ` +
          'for the destroy phase',
        { taskIds: ids },
      )
      for (const index of cut.skipped) {
        const taskId = this.#ids[index]
        const error = lifecycleError(
          'ERR_TASK_SKIPPED',
          `shutdown task ${quoted(taskId)} was skipped to keep ${Math.round(this.#reserveMs)} ms for the destroy phase`,
        )
        this.#errors.set(index, error)
        this.#emit(ShutdownEvent.ShutdownTaskError, {
          taskId,
          name: nameOf(this.#entries[index], taskId),
          error,
          durationMs: 0,
          timedOut: false,
        })
      }
    }
    if (cut.finished) this.#finish(false)
  }

  /** A stop() call without `exit` joined this run: its caller waits for the result (see #exitAfterContinuations). */
  joinedByStop() {
    this.#awaitedByStop = true
  }

  /**
   * A signal or an error joined this shutdown: the process exits when it ends. An uncaught error also ends
   * a shutdown delay still running: the process must not keep serving in a state nobody planned for, as a
   * shutdown begun by such an error has no delay.
   */
  requestExit({ fatal = false } = {}) {
    this.#exit = true
    this.#fatal ||= fatal
    if (fatal && this.#delayTimer !== null) {
      clearTimeout(this.#delayTimer)
      this.#startFirstTasks(this.#native.startTasks())
    }
  }

  /**
   * Takes the plan's ids and entries from the manager's tasks, by the registration positions `begin` wrote
   * (the first `taskCount` of its indexes). The plan names each task by its position in the order of
   * registration, which is the order the manager's Map keeps (a task registered again after its removal
   * goes last in both; a registration the native side refused is in neither): one pass over the Map, where
   * sending the ids and looking each up again cost a shutdown of 10 000 tasks 2 ms. `begin` refused to start
   * if the native side counted a different number of tasks than the Map holds.
   */
  #placeTasks(positions, taskCount) {
    const ids = Array.from(this.#tasks.keys())
    const entries = Array.from(this.#tasks.values())
    this.#ids = new Array(taskCount)
    this.#entries = new Array(taskCount)
    for (let i = 0; i < taskCount; i++) {
      this.#ids[i] = ids[positions[i]]
      this.#entries[i] = entries[positions[i]]
    }
  }

  /**
   * Starts the tasks at these plan indexes: every handler is called first, and only then is each one's
   * settling attached (all within this synchronous call, so nothing can settle in between). A large level
   * gets all its work going before the bookkeeping of any of it. `markedCalling`: the record already takes
   * them as being called (settleTask was told nothing would run in between).
   */
  #startTasks(indexes, now, markedCalling = false) {
    const outcomes = []
    // The listeners of what came before have run: the record counts these tasks' time from here, and a
    // hard-exit report from now on knows the loop is in their handlers (in the handler, for one alone).
    if (!markedCalling) native.handlersCalling(this.#handle)
    try {
      for (const index of indexes) outcomes.push(this.#callHandler(index, now))
    } finally {
      // Until now a hard-exit report could not tell which of these handlers were called (a loop blocked in
      // one of them stops here): it lists them as starting. From now on they are running.
      if (indexes.length > 1) native.handlersCalled(this.#handle)
      // Even if starting one threw (an internal error: a handler's own throw is its outcome), the tasks
      // already started settle: no outcome is left without its reaction.
      for (let i = 0; i < outcomes.length; i++) this.#settleWhenDone(indexes[i], outcomes[i])
    }
  }

  /**
   * Calls the handler of the task at plan `index` and returns its outcome as a promise. The handler is
   * called synchronously; a synchronous throw is a failure, a returned promise or thenable is adopted.
   */
  #callHandler(index, now) {
    const id = this.#ids[index]
    const task = this.#entries[index]
    const timeout = timeoutOf(task)
    // A task with a timeout counts from its own call, not the level's: a handler before it in the level
    // that ran long synchronously must not count against it (see #settle's check of an overrun timeout).
    if (timeout !== undefined) now = monotonicMs()
    const context = new TaskContext(
      this.reason,
      this.signal,
      this.deadline,
      now,
      this.#ids[index],
      this.#abortListenerFailed,
    )
    this.#running[index] = context
    if (!this.#destroyPhaseBegun && phaseOf(task) === ShutdownPhase.Destroy) {
      this.#destroyPhaseBegun = true
      // systemd's status line follows the phase (nothing is sent unless NOTIFY_SOCKET is set).
      this.#native.notifyStatus(`shutting down (${this.reason}): destroy phase`)
    }
    if (timeout !== undefined && timeout < this.#deadlineMono - now) {
      TaskContext.setTimer(
        context,
        setTimeout(() => this.#settle(index, 'timedOut', taskTimeoutError(id, timeout)), timeout),
      )
    }
    try {
      const value = handlerOf(task)(context)
      if (TaskContext.hasTimer(context)) TaskContext.returned(context)
      return Promise.resolve(value)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Settles the task at plan `index` when `outcome` does: always in a later microtask, never at once. */
  #settleWhenDone(index, outcome) {
    try {
      Reflect.apply(promiseThen, outcome, [
        () => this.#settle(index, 'succeeded'),
        (error) => this.#settle(index, 'failed', error),
      ])
    } catch (error) {
      // Only the promise's own `constructor` (a getter, read for its species) can throw here.
      queueMicrotask(() => this.#settle(index, 'failed', error))
    }
  }

  #settle(index, outcome, error) {
    const entry = this.#running[index]
    if (this.#finished) return
    if (!entry) {
      // The handler of a task that timed out has ended (its promise settles once, and a task's timer is
      // cleared when it settles, so nothing else comes here): neither the deadline's line nor the
      // hard-exit report lists it as still at work any more. Its outcome comes too late to count.
      if (this.#overrunning.delete(index)) native.taskHandlerEnded(this.#handle, index)
      return
    }
    // Without the watchdog (hardExit: false, a worker thread) the deadline is this run's own timer, which a
    // task that blocked the loop past it delays: its settling comes first. The deadline still decides.
    if (!this.#native.enforced && monotonicMs() >= this.#deadlineMono) {
      this.onDeadline()
      return
    }
    // Likewise a task's own timeout, whose timer the task's own handler kept from firing by blocking the
    // loop past it: it took longer than it may, and what waits for it must not take it as done in time.
    // A failure keeps its own error.
    let code = OUTCOME_CODES[outcome]
    if (outcome === 'succeeded' && TaskContext.hasTimer(entry)) {
      const timeout = timeoutOf(this.#entries[index])
      if (TaskContext.overran(entry, timeout)) {
        outcome = 'timedOut'
        code = OUTCOME_CODES.endedLate
        error = taskTimeoutError(this.#ids[index], timeout)
      }
    }
    this.#running[index] = undefined
    TaskContext.clearTimer(entry)
    if (outcome === 'timedOut') TaskContext.abort(entry, error)
    if (code === OUTCOME_CODES.timedOut) this.#overrunning.add(index)
    // Whether anything runs between this and the calls of the next tasks' handlers (the event, a failure's
    // log line). If not, the record takes them as being called from now, in this same crossing.
    const reports = outcome !== 'succeeded' || this.#listens(ShutdownEvent.ShutdownTaskComplete)
    const next = native.settleTask(this.#handle, index, code, !reports)
    if (next === SETTLE_NOT_RUNNING) return
    if (reports) this.#reportSettled(index, entry, outcome, error)
    if (typeof next === 'object') this.#startTasks(next, monotonicMs(), !reports)
    else if (next === SETTLE_FINISHED) {
      // The deadline decides, whichever side sees it first: a last task that settled after it (its callback
      // queued behind a busy turn, ahead of the deadline's event) did not finish in time, and the exit code
      // (124, with the watchdog's report) says so rather than 0.
      if (monotonicMs() >= this.#deadlineMono) this.onDeadline()
      else this.#finish(false)
    }
  }

  /** The event (and for a failure, the log line) of a task that settled. Skipped for a success nobody hears. */
  #reportSettled(index, entry, outcome, error) {
    // Timed here rather than natively, so the common case is a number crossing the boundary, not an object;
    // the native record keeps its own times for the hard-exit report.
    const durationMs = TaskContext.runningFor(entry)
    // The plan's id, and the facade's task for it.
    const taskId = this.#ids[index]
    const task = this.#entries[index]
    const name = nameOf(task, taskId)
    if (outcome === 'succeeded') {
      this.#emit(ShutdownEvent.ShutdownTaskComplete, { taskId, name, durationMs })
    } else {
      this.#errors.set(index, error)
      this.#logFailure(
        // A timeout's error is taskTimeoutError's, whose message says it all.
        outcome === 'timedOut' ? error.message : `shutdown task ${quoted(taskId)} failed: ${describeMessage(error)}`,
        { taskId, durationMs, err: error },
      )
      this.#emit(ShutdownEvent.ShutdownTaskError, {
        taskId,
        name,
        error,
        durationMs,
        timedOut: outcome === 'timedOut',
      })
    }
  }

  /**
   * A task's failure, at an honest level: an error when it makes the exit code non-zero (as it does by
   * default), a warning when `exitCodes.failure` is 0.
   */
  #logFailure(message, fields) {
    if (this.#exitCodes.failure === 0) this.#logger.warn(message, fields)
    else this.#logger.error(message, fields)
  }

  /**
   * The event loop did not answer the watchdog for `stallThreshold` or more (the native side measured it,
   * and captured the stack if the loop was in JavaScript). The task is named when one task alone was
   * running through the stall.
   */
  onStall(stall) {
    if (!this.#finished) this.#reportStall(stall)
  }

  #reportStall(stall) {
    const runningId = stall.running.length === 1 ? stall.running[0] : undefined
    const entry = runningId === undefined ? undefined : this.#tasks.get(runningId)
    const task = entry === undefined ? undefined : { id: runningId, name: nameOf(entry, runningId) }
    const blockedMs = Math.round(stall.blockedMs * 10) / 10
    const stack = stall.stack ?? null
    this.#logger.warn(
      `the event loop was blocked for ${blockedMs} ms during the shutdown` +
        (task ? ` (task ${quoted(task.id)} was running)` : '') +
        (stack ? `, at:\n${stack}` : ' (outside JavaScript, or no stack to capture)'),
      { taskId: task?.id, blockedMs, stack },
    )
    this.#emit(ShutdownEvent.ShutdownStall, { taskId: task?.id, name: task?.name, blockedMs, stack })
  }

  /** The deadline passed: abort what still runs, report, and end (natively, when the watchdog is armed). */
  onDeadline(watchdogFailed = false) {
    if (this.#finished) {
      if (this.#exitPending) process.exit(this.result.exitCode)
      if (this.#native.enforced) this.#native.answerDeadline()
      return
    }
    const runningIndices = this.#runningIndices()
    const runningIds = runningIndices.map((i) => this.#ids[i])
    const running = runningIds.map(quoted)
    // In plan order, as the report lists them.
    const overrunning = Array.from(this.#overrunning)
      .sort((a, b) => a - b)
      .map((i) => quoted(this.#ids[i]))
    const error = lifecycleError(
      'ERR_SHUTDOWN_TIMEOUT',
      `the shutdown did not finish within its ${this.#budgetMs} ms deadline` +
        (running.length ? `; still running: ${running.join(', ')}` : '') +
        (overrunning.length ? `; timed out, still running: ${overrunning.join(', ')}` : ''),
    )
    // Abort listeners, the logger and the error's listeners run next: any of them may exit itself.
    if (this.#native.enforced && !watchdogFailed) this.#awaitWatchdogOnExit(this.#exitCodes.hardExit)
    for (const index of runningIndices) TaskContext.abort(this.#running[index], error)
    this.#logger.error(error.message, { err: error, running: runningIds })
    this.#emit(ShutdownEvent.ShutdownError, { error })
    this.#finish(true, watchdogFailed)
  }

  /**
   * At a hard exit the watchdog carries out, user code that runs first (an abort listener, the logger, a
   * 'shutdown:error' or 'shutdown:complete' listener) may call `process.exit()` itself, "to be sure": it
   * exits with the hard exit's code (set now), and after the watchdog's report. The 'exit' hook answers
   * the deadline and waits for the watchdog's `_exit` (natively, 400 ms at most); the watchdog's code wins
   * over one such a call names.
   */
  #awaitWatchdogOnExit(exitCode) {
    process.exitCode = exitCode
    if (this.#waitForWatchdog !== null) return
    this.#waitForWatchdog = () => this.#native.waitForHardExit()
    process.once('exit', this.#waitForWatchdog)
  }

  /** The plan indices of the tasks running now, in plan order. */
  #runningIndices() {
    const indices = []
    this.#running.forEach((context, index) => {
      if (context !== undefined) indices.push(index)
    })
    return indices
  }

  #finish(hardExit, watchdogFailed = false) {
    if (this.#finished) return
    this.#finished = true
    this.#deadlineTimer?.clear()
    this.#reserveTimer?.clear()
    clearTimeout(this.#delayTimer)
    const { statuses, durationsMs, startsMs } = this.#native.taskStates()
    const tasks = this.#ids.map((id, index) => {
      const task = this.#entries[index]
      const startMs = startsMs[index]
      const record = {
        id,
        name: nameOf(task, id),
        phase: phaseOf(task),
        status: STATUS_NAMES[statuses[index]],
        startMs: Number.isNaN(startMs) ? null : startMs,
        durationMs: durationsMs[index],
      }
      if (this.#errors.has(index)) record.error = this.#errors.get(index)
      return record
    })
    const exitCode = this.#exitCode(hardExit, tasks)
    const totalDurationMs = monotonicMs() - this.#startedMono
    // The shutdown's record: what ran when, for how long, how it ended. `startMs` counts from the start.
    const summary = {
      reason: this.reason,
      signal: this.signal,
      startedAt: this.startedAt,
      timeoutMs: this.#budgetMs,
      totalDurationMs,
      exitCode,
      hardExit,
      tasks,
    }
    this.result = { reason: this.reason, exitCode, totalDurationMs, hardExit, tasks, summary }
    // At an enforced hard exit the record stays open, so the watchdog's report still shows what was running.
    const watchdogExits = hardExit && this.#native.enforced && !watchdogFailed
    if (!watchdogExits) {
      const stall = this.#native.finish(exitCode, this.#exit)
      if (stall) this.#reportStall(stall)
    }
    const level = exitCode === this.#exitCodes.success ? 'info' : 'error'
    // The waterfall is text for people: not built for a level nobody logs (the default logger's info).
    if (!isSilent(this.#logger, level)) {
      const done = `shutdown complete (exit code ${exitCode}, ${totalDurationMs.toFixed(1)} ms)`
      this.#logger[level](`${done}\n${waterfall(summary)}`, { summary })
    }
    // Before the listeners run: an exit one of them asks for (stop({ exit: true }), "to be sure") must not
    // race the watchdog's report.
    if (watchdogExits) this.#exitsByWatchdog = true
    const exitAskedBefore = this.#exit
    const fatalBefore = this.#fatal
    // A listener of a shutdown that exits may exit itself, with no code ("to be sure"): it exits with the
    // shutdown's. At a hard exit, the watchdog's report and exit come first.
    if (watchdogExits) this.#awaitWatchdogOnExit(exitCode)
    else if (exitAskedBefore) process.exitCode = exitCode
    this.#emit(ShutdownEvent.ShutdownComplete, { reason: this.reason, totalDurationMs, hardExit, exitCode, summary })
    if (watchdogExits) {
      // The watchdog ends the process within its bounded write budget. Until then the loop must not drain
      // and exit on its own with another code: the exit code is set, and a ref'd timer keeps the loop
      // alive (and exits with the same code, should the watchdog ever fail: without waiting for it again,
      // so without the 'exit' hook #awaitWatchdogOnExit added just now).
      this.#deadlineTimer = new LongTimer(() => {
        process.removeListener('exit', this.#waitForWatchdog)
        process.exit(exitCode)
      }, WATCHDOG_FALLBACK_MS)
      this.#native.answerDeadline()
      return
    }
    this.#resolve(this.result)
    this.#concluded = true
    if (watchdogFailed) process.exit(exitCode)
    if (!this.#exit) {
      this.#watchStillAlive()
      return
    }
    // An uncaught error raised during the listeners exits at once with the error code, as one raised after
    // the finish would.
    if (this.#fatal && !fatalBefore) process.exit(this.exitCodeNow(true))
    // An exit a listener asked for is the one it would have made after the finish (see exitCodeNow). It too
    // lets a stop() caller's continuations run first, with the deadline armed again behind them (the native
    // side stood down at the finish); past the deadline, it exits at once.
    const code = exitAskedBefore ? exitCode : this.exitCodeNow(false)
    if (!exitAskedBefore && !this.#native.exitAfterFinish(code)) process.exit(code)
    if (this.#awaitedByStop) this.#exitAfterContinuations(code)
    else process.exit(code)
  }

  /**
   * A stop() caller waits for the result (it began the shutdown, or joined one that a signal, the
   * supervisor's message or an error began), and the shutdown exits: its promise has resolved, and what it
   * chained to it gets to run before the exit. The process exits with the shutdown's
   * code once the continuations are done, which is taken to be when no more resources are active than when
   * the promise resolved (timers, sockets, file requests a continuation started have ended; what the
   * service held before, such as a metrics interval, is not waited for), or when the event loop empties, or
   * just before the deadline at the latest.
   */
  #exitAfterContinuations(exitCode) {
    this.#exitPending = true
    process.exitCode = exitCode
    // The standard streams are made on first use, each with a handle Node counts as active: made now, so a
    // continuation's first console.log is not taken for work it started (which would hold the exit until
    // just before the deadline).
    Reflect.get(process, 'stdout')
    Reflect.get(process, 'stderr')
    const before = countByType(process.getActiveResourcesInfo())
    const done = () => {
      const now = countByType(process.getActiveResourcesInfo())
      return [...now].every(([type, count]) => count <= (before.get(type) ?? 0))
    }
    // First in the next turn, after the continuations' synchronous parts and microtasks (a ref'd immediate:
    // an unref'd one would wait for something else to wake the loop), then every few milliseconds (unref'd:
    // it never keeps the process alive itself).
    setImmediate(() => done() && process.exit(exitCode))
    setInterval(() => done() && process.exit(exitCode), CONTINUATION_POLL_MS).unref()
    // A little before the deadline: at the deadline itself the watchdog would take an unexited process as
    // stuck and end it with the hard-exit code.
    const left = Math.max(0, this.#deadlineMono - monotonicMs() - EXIT_BEFORE_DEADLINE_MS)
    this.#deadlineTimer = new LongTimer(() => process.exit(exitCode), left, { ref: false })
  }

  /**
   * A shutdown that does not exit leaves the process to end on its own once nothing keeps it alive. If it
   * is still alive `stillAliveReportDelay` later, something does: the manager says what. Unref'd, the timer
   * never keeps the process alive itself; a process that ends in time never hears of it.
   */
  #watchStillAlive() {
    if (this.#stillAliveReportDelay <= 0 || !this.#onStillAlive) return
    // One watch per process, for the latest such shutdown: a harness running a thousand shutdowns keeps one
    // timer (and one manager) for it, not a thousand.
    stillAliveTimer?.clear()
    const report = this.#onStillAlive
    const delay = this.#stillAliveReportDelay
    stillAliveTimer = new LongTimer(
      () => {
        stillAliveTimer = null
        report(delay)
      },
      delay,
      { ref: false },
    )
  }

  #exitCode(hardExit, tasks) {
    if (hardExit) return this.#exitCodes.hardExit
    if (this.#fatal) return this.#exitCodes.error
    if (tasks.some((t) => t.status !== 'succeeded')) return this.#exitCodes.failure
    // A code the application set for its own exit (a job that found errors) outlives a shutdown that exits
    // the process with nothing to report: Node would have exited with it. Only then: a shutdown that does
    // not exit (a test's stop(), under node:test, which sets process.exitCode when a test fails) reports
    // its own outcome.
    return (this.#exit && applicationExitCode()) || this.#exitCodes.success
  }

  /**
   * The code to exit with now, for a finished run that did not exit (a signal or an error came after
   * it): its own, or the application's in place of a success (see #exitCode).
   */
  exitCodeNow(fatal) {
    if (fatal) return this.#exitCodes.error
    const { exitCode } = this.result
    return (exitCode === this.#exitCodes.success && applicationExitCode()) || exitCode
  }
}

/** A non-zero `process.exitCode` the application set, as the process would exit with it (-1 is 255), or 0. */
function applicationExitCode() {
  const own = process.exitCode
  if (own == null || own === '' || !Number.isInteger(Number(own))) return 0
  return Number(own) & 0xff
}

/** How wide the waterfall's bars are, in characters, and how many tasks it shows. */
const WATERFALL_WIDTH = 24
const WATERFALL_MAX_TASKS = 40

/**
 * The summary as a compact waterfall, one line per task: its start offset, a bar placed on the shutdown's
 * time line, its id, status and duration. For logs read by people; the summary object is for machines.
 */
function waterfall(summary) {
  const total = Math.max(summary.totalDurationMs, 1e-3)
  const lines = [
    `  reason ${summary.reason}${summary.signal ? ` (${summary.signal})` : ''}, deadline ${summary.timeoutMs} ms, ` +
      `exit code ${summary.exitCode}${summary.hardExit ? ', hard exit' : ''}`,
  ]
  const shown = summary.tasks.slice(0, WATERFALL_MAX_TASKS)
  const idWidth = Math.min(24, Math.max(4, ...shown.map((t) => t.id.length)))
  for (const task of shown) {
    const started = task.startMs !== null
    const from = started ? Math.min(WATERFALL_WIDTH - 1, Math.floor((task.startMs / total) * WATERFALL_WIDTH)) : 0
    const to = started ? Math.round(((task.startMs + task.durationMs) / total) * WATERFALL_WIDTH) : 0
    const length = started ? Math.max(1, to - from) : 0
    const bar = started
      ? ' '.repeat(from) +
        '#'.repeat(Math.min(length, WATERFALL_WIDTH - from)) +
        ' '.repeat(Math.max(0, WATERFALL_WIDTH - from - length))
      : ' '.repeat(WATERFALL_WIDTH)
    const offset = started ? `+${task.startMs.toFixed(1)} ms` : 'not run'
    // Escaped as every line of ours shows ids (a line feed in one must not start a line of its own), after
    // the cut, so the cut never splits an escape.
    const id = escaped(task.id, idWidth).padEnd(idWidth)
    // Anything can be thrown: `null`, 0 or '' is shown too (`failed: null`), as the task's log line shows it.
    const error = 'error' in task ? `: ${describeMessage(task.error)}` : ''
    lines.push(`  ${offset.padStart(12)} |${bar}| ${id} ${task.status} ${task.durationMs.toFixed(1)} ms${error}`)
  }
  if (summary.tasks.length > shown.length)
    lines.push(`  and ${summary.tasks.length - shown.length} more tasks (see the summary)`)
  return lines.join('\n')
}

module.exports = { ShutdownRun, monotonicMs }
