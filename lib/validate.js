'use strict'

// Validation of everything a caller passes in, and the errors it throws. Each option is read exactly once
// (a getter runs once), and every mistake becomes a TypeError or RangeError with a Node-style code before
// anything reaches native code. Errors thrown by the caller's own getters or proxies propagate unchanged.
//
// Errors follow Node's own style: the class tells what kind of mistake it is, `code` is stable to branch on,
// and the message names the argument and shows what was received.

const titan = require('../index.js')
const { ShutdownReason, ShutdownPhase, ShutdownPriority } = titan
/**
 * The addon index.js loaded. index.d.ts leaves it out (it is not public), so it is typed here, once, and
 * the other lib/ modules take it from this one.
 * @type {typeof import('../binding')}
 */
const native = /** @type {any} */ (titan).native
// index.js has finished before any lib/ module loads (none is loaded while it runs); if that ever
// changes, this says so here rather than as an undefined addon somewhere later.
if (native === undefined) throw new Error('titan-lifecycle: lib/ was loaded before index.js had finished')

// The defaults and limits of the options checked here (run.js reads the last three too).

const DEFAULT_SIGNALS = Object.freeze(['SIGTERM', 'SIGINT', 'SIGHUP'])

const DEFAULT_EXIT_CODES = Object.freeze({
  success: 0,
  failure: 1,
  error: 1,
  hardExit: 124,
  secondSignal: 'signal',
})

/** The largest delay setTimeout honours; beyond it Node fires after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** The destroy phase's default reserve, as a share of the shutdown's budget (see `destroyReserve`). */
const DEFAULT_DESTROY_RESERVE = 0.1
/** The share of the budget a shutdown delay must leave to the tasks, beyond the destroy phase's reserve. */
const MIN_TASK_SHARE = 0.1
/** How far a limit may be passed by floating-point rounding alone: a nanosecond, the native resolution. */
const LIMIT_ROUNDING_MS = 1e-6
// node:util costs about 0.1 ms to load, and only error messages need it.
const inspect = (value, options) => require('node:util').inspect(value, options)

function withCode(error, code) {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return error
}

/** `inspect(value)`, or the value's type if inspecting it throws (a hostile proxy, say). Never throws. */
function show(value, options) {
  try {
    return inspect(value, options)
  } catch {
    return typeof value
  }
}

/** Describes a received value the way Node's validation errors do, without trusting it. */
function received(value) {
  if (value === null || value === undefined) return `Received ${value}`
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    try {
      const ctor = Object.getPrototypeOf(value)?.constructor?.name
      if (ctor && ctor !== 'Object') return `Received an instance of ${ctor}`
    } catch {
      // A hostile proxy may throw from its traps; fall through to a plain description.
    }
    return 'Received an object'
  }
  return `Received type ${typeof value} (${show(value, { depth: 0, maxStringLength: 40 })})`
}

function invalidArgType(name, expected, value) {
  return withCode(
    new TypeError(`The "${name}" argument must be ${expected}. ${received(value)}`),
    'ERR_INVALID_ARG_TYPE',
  )
}

function outOfRange(name, range, value) {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${show(value)}`),
    'ERR_OUT_OF_RANGE',
  )
}

function invalidArgValue(name, value, reason) {
  const shown = show(value, { depth: 0, maxStringLength: 40 })
  return withCode(new TypeError(`The argument '${name}' ${reason}. Received ${shown}`), 'ERR_INVALID_ARG_VALUE')
}

/** An error of the library's own, e.g. ERR_SIGNALS_OWNED. */
function lifecycleError(code, message) {
  return withCode(new Error(message), code)
}

// Unknown option names. A typo (`gracefulShutdownTimout`) passes silently in plain JavaScript, so each unknown
// name gets one process warning, naming the closest known option; it never throws.

const KNOWN = {
  processManager: new Set(['claim']),
  options: new Set([
    'gracefulShutdownTimeout',
    'signals',
    'disableGracefulShutdown',
    'handleUncaughtErrors',
    'forceExitOnSecondSignal',
    'exclusiveSignals',
    'hardExit',
    'exitCodes',
    'logger',
    'shutdownDelay',
    'destroyReserve',
    'diagnosticReport',
    'stallThreshold',
    'stillAliveReportDelay',
    'ipcMessage',
  ]),
  trackServer: new Set(['id', 'priority', 'drainTimeout', 'closeUpgraded']),
  trackChild: new Set(['id', 'signal', 'timeout', 'priority', 'group']),
  trackCluster: new Set(['id', 'timeout', 'priority']),
  exitCodes: new Set(['success', 'failure', 'error', 'hardExit', 'secondSignal']),
  task: new Set(['id', 'name', 'priority', 'phase', 'dependsOn', 'timeout', 'handler']),
  stop: new Set(['reason', 'timeout', 'exit']),
}
/** Unknown names already warned about, so registering 10 000 tasks with one typo warns once. */
const warnedUnknown = new Set()

/**
 * Warns about the enumerable keys of `object` that `known` lacks; `path` prefixes them in the message, and
 * `context` tells apart objects that share a path (the manager's options and stop()'s are both 'options').
 */
function warnUnknownKeys(object, known, path, context = path) {
  for (const key in object) {
    if (known.has(key)) continue
    const seen = `${context}:${key}`
    if (warnedUnknown.has(seen)) continue
    warnedUnknown.add(seen)
    const guess = closest(key, known)
    // Escaped as ids are: option names can come from configuration files, and a warning is a line of a log.
    process.emitWarning(
      `unknown option "${path}.${escaped(key, MAX_QUOTED)}"${guess ? `; did you mean "${guess}"?` : ''}`,
      {
        type: 'TitanLifecycleWarning',
        code: 'TITAN_LIFECYCLE_UNKNOWN_OPTION',
      },
    )
  }
}

/**
 * The known name within a small edit distance of `name` (case ignored), if there is one. A candidate whose
 * length differs by the best distance so far or more cannot be closer (the difference is a lower bound on
 * the distance), so a long key (a megabyte of it, from a configuration file) costs nothing to compare.
 */
function closest(name, known) {
  let best
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1
  const lowered = name.toLowerCase()
  for (const candidate of known) {
    if (Math.abs(name.length - candidate.length) >= bestDistance) continue
    const distance = editDistance(lowered, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

function editDistance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}

/** @type {Set<string>} */
const REASONS = new Set(Object.values(ShutdownReason))
/** The signals a manager can own: the native side's list (its handler has a slot for each). */
const OWNABLE_SIGNALS = native.ownableSignals()
const RESERVED_SIGNALS = {
  SIGKILL: 'cannot be caught',
  SIGSTOP: 'cannot be caught',
  SIGUSR1: "is reserved by Node's inspector",
  SIGPIPE: 'is ignored by Node on purpose',
  SIGCHLD: 'drives child processes in libuv',
  SIGWINCH: 'drives terminals in libuv',
  SIGSEGV: 'is a synchronous fault that JavaScript cannot resume from',
  SIGBUS: 'is a synchronous fault that JavaScript cannot resume from',
  SIGFPE: 'is a synchronous fault that JavaScript cannot resume from',
  SIGILL: 'is a synchronous fault that JavaScript cannot resume from',
}

function isPlainObjectLike(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function optionsObject(name, value) {
  if (value === undefined) return {}
  if (!isPlainObjectLike(value)) throw invalidArgType(name, 'of type object', value)
  return value
}

/** processManager()'s options: whether the call claims register's manager (see index.js). */
function validateProcessManagerOptions(value) {
  const options = optionsObject('options', value)
  warnUnknownKeys(options, KNOWN.processManager, 'options', 'processManager')
  return validateBoolean('options.claim', options.claim, true)
}

function validateBoolean(name, value, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
  return value
}

/** A timeout in milliseconds: a finite number from 1 to 2^31-1 (setTimeout's limit). */
function validateTimeout(name, value, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isFinite(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    throw outOfRange(name, `a finite number of milliseconds >= 1 and <= ${MAX_TIMEOUT_MS}`, value)
  }
  return value
}

/** A duration in milliseconds that may be zero: a finite number from 0 to 2^31-1. */
function validateDuration(name, value, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isFinite(value) || value < 0 || value > MAX_TIMEOUT_MS) {
    throw outOfRange(name, `a finite number of milliseconds >= 0 and <= ${MAX_TIMEOUT_MS}`, value)
  }
  return value
}

function validateExitCode(name, value, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value) || value < 0 || value > 255) throw outOfRange(name, 'an integer >= 0 and <= 255', value)
  return value
}

function validateSignals(value) {
  if (value === undefined) return [...DEFAULT_SIGNALS]
  if (!Array.isArray(value)) throw invalidArgType('options.signals', 'an array of signal names', value)
  const signals = []
  for (let i = 0; i < value.length; i++) {
    const signal = value[i]
    const name = `options.signals[${i}]`
    if (typeof signal !== 'string') throw invalidArgType(name, 'of type string', signal)
    if (!OWNABLE_SIGNALS.includes(signal)) {
      // Own names only: 'constructor' or 'toString' must not find Object.prototype's.
      const reserved = Object.hasOwn(RESERVED_SIGNALS, signal) ? RESERVED_SIGNALS[signal] : undefined
      const why = reserved ? `cannot be owned: ${signal} ${reserved}` : `must be one of ${OWNABLE_SIGNALS.join(', ')}`
      throw invalidArgValue(name, signal, why)
    }
    if (!signals.includes(signal)) signals.push(signal)
  }
  return signals
}

function validateExitCodes(value) {
  const codes = optionsObject('options.exitCodes', value)
  warnUnknownKeys(codes, KNOWN.exitCodes, 'options.exitCodes')
  const { success, failure, error, hardExit, secondSignal } = codes
  let second = DEFAULT_EXIT_CODES.secondSignal
  if (typeof secondSignal === 'string' && secondSignal !== 'signal') {
    // A string is allowed here ('signal'), so another one is a wrong value, not a wrong type.
    throw invalidArgValue(
      'options.exitCodes.secondSignal',
      secondSignal,
      "must be 'signal' or an integer from 0 to 255",
    )
  }
  if (secondSignal !== undefined && secondSignal !== 'signal') {
    second = validateExitCode('options.exitCodes.secondSignal', secondSignal)
  }
  return {
    success: validateExitCode('options.exitCodes.success', success, DEFAULT_EXIT_CODES.success),
    failure: validateExitCode('options.exitCodes.failure', failure, DEFAULT_EXIT_CODES.failure),
    error: validateExitCode('options.exitCodes.error', error, DEFAULT_EXIT_CODES.error),
    hardExit: validateExitCode('options.exitCodes.hardExit', hardExit, DEFAULT_EXIT_CODES.hardExit),
    secondSignal: second,
  }
}

/** Whether a write to stderr failed (EPIPE: the reader went away); nothing more is written there then. */
let stderrBroken = false

/** Until when (Date.now()) lines for a terminal that took none in time are dropped: see writeStderr. */
let terminalStalledUntil = 0
/** The last line to the terminal may have been cut mid-way: the next starts on a line of its own. */
let terminalLineCut = false
/** How long a terminal that took nothing of a line for 500 ms (or not all of it in 2 s) is left alone. */
const STALLED_TERMINAL_QUIET_MS = 5000

/**
 * Writes a line to stderr, and never turns a failure into an error event: with no listener on stderr, Node
 * would throw the EPIPE as an uncaught exception, which the manager's hook would log to stderr again, for
 * ever. The write callback runs before the 'error' event, so it can add a listener in time (as Node's own
 * console does).
 *
 * To a terminal, Node writes synchronously, and one paused with Ctrl-S held the event loop, and with it the
 * shutdown, until the watchdog's hard exit. There the line goes to the terminal natively, through a
 * descriptor of its own (Linux), for as long as the terminal takes some of it every 500 ms (2 s at most: a
 * slow console still gets it); the rest of one that stalls is lost (the next line starts on a line of
 * its own), and so are the lines of the next 5 s, so a shutdown with many failures is not held 500 ms for
 * each. Not when something replaced
 * process.stderr.write (a test's spy, a redirect: it must still see the lines), nor in a worker thread
 * (whose stderr is no terminal but a stream to the main thread), nor where the only non-blocking way would
 * set a flag on the terminal's shared description (exit_write::write_line_bounded): Node writes those.
 */
function writeStderr(line) {
  if (stderrBroken) return
  try {
    const stream = process.stderr
    if (stream.isTTY && !Object.hasOwn(stream, 'write')) {
      if (Date.now() < terminalStalledUntil) return
      const written = native.writeStderr(terminalLineCut ? `\n${line}` : line)
      if (written === 1) terminalLineCut = false
      if (written === 0) {
        terminalStalledUntil = Date.now() + STALLED_TERMINAL_QUIET_MS
        terminalLineCut = true
      }
      if (written !== -1) return
    }
    stream.write(line, (error) => {
      if (!error) return
      stderrBroken = true
      if (process.stderr.listenerCount('error') === 0) process.stderr.once('error', () => {})
    })
  } catch {
    stderrBroken = true
  }
}

/**
 * Errors would otherwise vanish, so without a logger they still reach stderr (with the stack of the error
 * they carry, if any); nothing else is printed.
 */
const defaultLogger = Object.freeze({
  info() {},
  warn() {},
  error(message, fields) {
    writeStderr(`titan-lifecycle: ${message}${stackOf(fields?.err)}\n`)
  },
})

/** Whether `logger`'s `level` logs nothing (the default logger's info and warn, a logger's missing method). */
function isSilent(logger, level) {
  if (level === 'error') return false
  const method = logger[level]
  return method === defaultLogger[level] || method.quiet?.() === true
}

/**
 * The stack of what was thrown, on a line of its own, if it is an Error. Anything can be thrown, and this
 * runs inside the uncaughtException hook: `instanceof` itself throws for a revoked Proxy (Node then exits 7,
 * with no shutdown).
 */
function stackOf(thrown) {
  try {
    return isError(thrown) ? `\n${describeStack(thrown)}` : ''
  } catch {
    return ''
  }
}

/**
 * Whether `value` is an Error, of this realm or another: one made in a `vm` context or by a test
 * environment's sandbox is not `instanceof Error` here, and its stack would be lost. May throw (a revoked
 * Proxy); its callers catch.
 */
function isError(value) {
  return value instanceof Error || require('node:util').types.isNativeError(value)
}

/** The most characters of one error the default logger prints. */
const ERROR_PRINT_LIMIT = 8192

/**
 * An error as Node prints an uncaught one: its stack, then its own properties (a database driver's `code`
 * and `detail`), its `cause` chain and an AggregateError's `errors`, which the stack alone left out. The
 * stack alone when inspecting it throws (a getter or a custom inspect method of the error's own). Bounded,
 * in the work and in what is written (ERROR_PRINT_LIMIT): an HTTP client's error that holds the whole
 * response printed megabytes for each task that failed with it, built on the main thread in the shutdown.
 */
function describeStack(error) {
  try {
    // One level of the error's own properties: an object below that (the response an HTTP client's
    // error holds) is shown as [Object], and inspect does not walk its keys (a million took seconds).
    const text = inspect(error, { depth: 1, maxArrayLength: 20, maxStringLength: 1000 })
    if (text.length <= ERROR_PRINT_LIMIT) return text
    return `${text.slice(0, ERROR_PRINT_LIMIT)}\n... (cut: the error printed as ${text.length} characters)`
  } catch {
    try {
      return String(error.stack ?? error.message)
    } catch {
      return 'an error that cannot be printed'
    }
  }
}

/**
 * A caller's logger method, isolated: it is user code, and one that throws (or returns a promise that
 * rejects: an async transport that is down) must neither break the shutdown nor start another one. The
 * first failure of each method is reported on stderr; later ones are dropped. An error record whose call
 * threw is written as the default logger writes it (a rejection came after the logger took the record).
 * The method is looked up at each call, not kept: pino sets a level by swapping the instance's methods, and
 * a service may change its level after making the manager. One no longer there is the default's.
 *
 * Records are pino-style, `method(fields, message)`: an object of fields first (an error under `err`), the
 * message second, which pino, bunyan-style and most structured loggers take as is. `console` gets the
 * message first (`console.warn(message, fields)`), which reads better where nothing parses it.
 */
function isolated(logger, level) {
  let failed = false
  const fail = (error) => {
    if (failed) return
    failed = true
    writeStderr(
      `titan-lifecycle: the logger's ${level} method failed (${describeMessage(error)}); the shutdown goes on\n`,
    )
  }
  const messageFirst = logger === globalThis.console
  const log = (message, fields = {}) => {
    try {
      const method = logger[level]
      if (typeof method !== 'function') return defaultLogger[level](message, fields)
      const args = messageFirst ? (Object.keys(fields).length ? [message, fields] : [message]) : [fields, message]
      const returned = Reflect.apply(method, logger, args)
      if (typeof returned?.then === 'function') returned.then(undefined, fail)
    } catch (error) {
      fail(error)
      // An error record (an uncaught exception, a task that failed) still reaches stderr: a logger that
      // throws must not take the crash it was told of down with it.
      if (level === 'error') defaultLogger.error(message, fields)
    }
  }
  // Whether it logs nothing now: the logger has no such method (see isSilent). A getter that throws is
  // left to the call, which isolates it.
  log.quiet = () => {
    try {
      return typeof logger[level] !== 'function'
    } catch {
      return false
    }
  }
  return log
}

/** What `quoted` escapes: as the hard-exit report does (core/src/report.rs, `Escaped`). */
const UNSAFE_IN_TEXT = /[\\'\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const SHORT_ESCAPES = { '\\': '\\\\', "'": "\\'", '\n': '\\n', '\r': '\\r', '\t': '\\t' }
/** How much of an id or a name a line shows: 512 UTF-16 units (the report cuts after 512 escaped bytes). */
const MAX_QUOTED = 512

/**
 * A task's (or a tracked server's) id or name, quoted for a log line or an error message and escaped as
 * the hard-exit report escapes it: a line feed, an escape sequence or a quote in an id can neither forge a
 * `titan-lifecycle:` line on stderr nor drive the terminal, and a very long one is cut (with an ellipsis).
 */
function quoted(text) {
  return `'${escaped(text, MAX_QUOTED)}'`
}

/** `text` escaped as `quoted` escapes it, cut to at most `max` UTF-16 units before escaping (with an ellipsis). */
function escaped(text, max) {
  const shown = text.length > max ? `${cutText(text, max - 1)}\u2026` : text
  return shown.replace(UNSAFE_IN_TEXT, (c) => {
    const code = c.charCodeAt(0)
    return SHORT_ESCAPES[c] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`)
  })
}

/** The first `length` UTF-16 units of `text`, or one fewer rather than half a surrogate pair. */
function cutText(text, length) {
  const code = text.charCodeAt(length - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? length - 1 : length)
}

/** How describeMessage shows a thrown object that is not an Error: on one line, and not too long. */
const DESCRIBED_OBJECT = Object.freeze({
  depth: 2,
  breakLength: Number.POSITIVE_INFINITY,
  maxArrayLength: 10,
  maxStringLength: 200,
})
/** The longest description of a thrown object, in UTF-16 units (an object with thousands of keys). */
const MAX_DESCRIBED = 500

/**
 * `text` on one line (an Error held in the object brings its stack's lines), cut to MAX_DESCRIBED units:
 * it goes into log lines and warnings, each of which must stay one line.
 */
function oneLine(text) {
  const line = text.replace(/\s*\n\s*/g, ' ')
  return line.length > MAX_DESCRIBED ? `${cutText(line, MAX_DESCRIBED - 1)}\u2026` : line
}

/**
 * The message of something user code threw, for a log line or a warning (the whole error, stack and all,
 * goes under `err`). It never throws itself: a Symbol, an object without a prototype or a `message`
 * getter that throws is described by its type.
 */
function describeMessage(error) {
  try {
    if (isError(error)) return String(error.message)
    // Any other object (a rejection with `{ code, detail }`) as Node prints one, on one line and bounded,
    // rather than as '[object Object]'.
    if (typeof error === 'object' && error !== null) return oneLine(inspect(error, DESCRIBED_OBJECT))
    return String(error)
  } catch {
    return `a thrown ${typeof error} that cannot be printed`
  }
}

function validateLogger(value) {
  if (value === undefined || value === null) return defaultLogger
  // A function passes only with methods of its own (a callable logger): `logger: console.log` is a mistake
  // that would log nothing, as an array would.
  const callable = typeof value === 'function'
  if (
    (typeof value !== 'object' && !callable) ||
    Array.isArray(value) ||
    (callable && value.info === undefined && value.warn === undefined && value.error === undefined)
  ) {
    throw invalidArgType('options.logger', 'an object with info, warn and error methods', value)
  }
  const logger = {}
  for (const level of ['info', 'warn', 'error']) {
    const method = value[level]
    if (method !== undefined && typeof method !== 'function') {
      throw invalidArgType(`options.logger.${level}`, 'of type function', method)
    }
    // Each method is looked up at each call, with the logger as `this` (pino and console methods need it):
    // one missing now may be added later, as one present now may be swapped or removed.
    logger[level] = isolated(value, level)
  }
  return logger
}

function validateManagerOptions(value) {
  const options = optionsObject('options', value)
  warnUnknownKeys(options, KNOWN.options, 'options')
  const {
    gracefulShutdownTimeout,
    signals,
    disableGracefulShutdown,
    handleUncaughtErrors,
    forceExitOnSecondSignal,
    exclusiveSignals,
    hardExit,
    exitCodes,
    logger,
    shutdownDelay,
    destroyReserve,
    diagnosticReport,
    stallThreshold,
    stillAliveReportDelay,
    ipcMessage,
  } = options
  const deadline = validateTimeout('options.gracefulShutdownTimeout', gracefulShutdownTimeout, 30_000)
  const reserve = validateDuration('options.destroyReserve', destroyReserve, undefined)
  const longestReserve = deadline * (1 - MIN_TASK_SHARE)
  // The limits are compared give or take a nanosecond (the native resolution): for a fractional reserve at
  // its limit, the arithmetic below can come out a rounding error beyond it (0.9 of 1 ms left -1e-16 ms
  // for a delay nobody set).
  if (reserve !== undefined && reserve > longestReserve + LIMIT_ROUNDING_MS) {
    throw outOfRange(
      'options.destroyReserve',
      `at most ${Math.floor(longestReserve)} ms: it must leave the tasks ${MIN_TASK_SHARE * 100}% of gracefulShutdownTimeout`,
      reserve,
    )
  }
  const delay = validateDuration('options.shutdownDelay', shutdownDelay, 0)
  const longestDelay = deadline - (reserve ?? deadline * DEFAULT_DESTROY_RESERVE) - deadline * MIN_TASK_SHARE
  if (delay > longestDelay + LIMIT_ROUNDING_MS) {
    throw outOfRange(
      'options.shutdownDelay',
      `at most ${Math.max(0, Math.floor(longestDelay))} ms: it must leave the tasks ${MIN_TASK_SHARE * 100}% of ` +
        `gracefulShutdownTimeout besides the destroy phase's reserve`,
      delay,
    )
  }
  return {
    gracefulShutdownTimeout: deadline,
    shutdownDelay: delay,
    destroyReserve: reserve,
    signals: validateSignals(signals),
    disableGracefulShutdown: validateBoolean('options.disableGracefulShutdown', disableGracefulShutdown, false),
    handleUncaughtErrors: validateBoolean('options.handleUncaughtErrors', handleUncaughtErrors, true),
    forceExitOnSecondSignal: validateBoolean('options.forceExitOnSecondSignal', forceExitOnSecondSignal, true),
    exclusiveSignals: validateBoolean('options.exclusiveSignals', exclusiveSignals, false),
    hardExit: validateBoolean('options.hardExit', hardExit, true),
    exitCodes: validateExitCodes(exitCodes),
    logger: validateLogger(logger),
    diagnosticReport: validateDiagnosticReport(diagnosticReport),
    stallThreshold: validateDuration('options.stallThreshold', stallThreshold, 1000),
    stillAliveReportDelay: validateDuration('options.stillAliveReportDelay', stillAliveReportDelay, 5000),
    ipcMessage: validateIpcMessage(ipcMessage),
  }
}

/** `ipcMessage`: the IPC message that starts a shutdown (PM2 sends 'shutdown'), or false for none. */
function validateIpcMessage(value) {
  if (value === undefined) return 'shutdown'
  if (value === false) return false
  if (typeof value !== 'string') throw invalidArgType('options.ipcMessage', 'of type string or false', value)
  if (value === '') throw invalidArgValue('options.ipcMessage', value, 'must not be empty')
  return value
}

/** `diagnosticReport`: false (none), true (the working directory) or a directory; returns a path or null. */
function validateDiagnosticReport(value) {
  if (value === undefined || value === false) return null
  if (value === true) return writableDirectory(value, workingDirectoryFor(value))
  if (typeof value !== 'string') throw invalidArgType('options.diagnosticReport', 'of type boolean or string', value)
  if (value.length === 0 || value.includes('\0') || !value.isWellFormed()) {
    throw invalidArgValue(
      'options.diagnosticReport',
      value,
      'must be a directory path (non-empty, without NUL, well-formed Unicode)',
    )
  }
  const path = require('node:path')
  // resolve() asks for the working directory only for a relative path.
  const base = path.isAbsolute(value) ? '/' : workingDirectoryFor(value)
  return writableDirectory(value, path.resolve(base, value))
}

/**
 * The working directory, which `diagnosticReport: value` names or is relative to: one removed under the
 * process (process.cwd() then throws ENOENT) is refused in the option's terms.
 */
function workingDirectoryFor(value) {
  try {
    return process.cwd()
  } catch {
    throw invalidArgValue(
      'options.diagnosticReport',
      value,
      'must be a directory to write in (the working directory it is relative to no longer exists)',
    )
  }
}

/**
 * `directory` (what `diagnosticReport: value` names), checked now where the report is written (Linux): one
 * that is not there is found out only at the hard exit, the report it was for lost. Elsewhere a warning says
 * there is no report, and a path that only exists in production must not stop the service. A check that
 * cannot be made (the permission model without reads there) is left to that moment.
 */
function writableDirectory(value, directory) {
  if (process.platform !== 'linux') return directory
  const fs = require('node:fs')
  let problem = null
  try {
    if (!fs.statSync(directory).isDirectory()) problem = 'is not a directory'
    else fs.accessSync(directory, fs.constants.W_OK)
  } catch (error) {
    const code = error?.code
    if (code === 'ENOENT' || code === 'ENOTDIR') problem = 'does not exist'
    else if (code === 'EACCES' || code === 'EROFS') problem = 'cannot be written'
    else if (code === 'ELOOP') problem = 'is a loop of symbolic links'
    else if (code === 'ENAMETOOLONG') problem = 'has a name too long for the system'
    // Only a check the permission model forbids is left to the hard exit; anything else would fail there too.
    else if (code !== 'ERR_ACCESS_DENIED') problem = `cannot be used: ${code ?? error}`
  }
  if (problem) {
    throw invalidArgValue('options.diagnosticReport', value, `must be a directory to write in (it ${problem})`)
  }
  return directory
}

/**
 * Ids are compared exactly as given. The native side holds them as UTF-8, which cannot carry a lone UTF-16
 * surrogate (it would become U+FFFD, and two such ids would collide), so those are refused.
 */
function validateTaskId(name, value) {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (value.length === 0) throw invalidArgValue(name, value, 'must be a non-empty string')
  if (!value.isWellFormed()) throw invalidArgValue(name, value, 'must be well-formed Unicode (it has a lone surrogate)')
  return value
}

/** The dependencies of a task that has none: one frozen array shared by all of them (most tasks). */
const NO_DEPENDENCIES = Object.freeze([])

/**
 * The id, priority and dependencies of the task validateTask last found plain, for its caller to read at
 * once (no user code runs in between). Returning them in a new object cost every task 80 B of V8's young
 * generation, and a burst of registrations pays for what it allocates in scavenges.
 */
const plainTask = { id: '', priority: 0, dependsOn: NO_DEPENDENCIES }

/**
 * A task's definition, checked. A plain task (named by its id, in the stop phase, without a timeout: most
 * tasks) gives its handler, with the rest in `plainTask`, and the manager keeps the handler alone (see
 * the task entries in lib/run.js); any other gives its whole spec, which the manager keeps. It runs once per task, and a service may register thousands at start-up, mostly before V8
 * has optimized it, where every call counts: the checks that pass are written out here, and the checking
 * functions are called only to throw.
 */
function validateTask(value) {
  if (!isPlainObjectLike(value)) throw invalidArgType('task', 'of type object', value)
  const { id, name, priority, phase, dependsOn, timeout } = value
  let { handler } = value
  // Unknown keys are looked for only when a plain object has another number of enumerable keys than known
  // fields with a value: a count instead of a walk over the keys (a known field set to undefined makes it
  // look, and finds nothing). `for...in` counts them without making an array (Object.keys made one per
  // task); it counts inherited ones too, so a key someone added to Object.prototype is warned about once,
  // as the options' checks warn about it. An object made with Object.create (or without a prototype) is
  // walked, as its known fields may be inherited and its unknown ones too. A class instance is not looked
  // at: its other fields are its state (see below). Accepted: a plain object whose
  // known field is own but not enumerable (defineProperty) can hide one misspelt key from the count; a
  // warning is all that is lost.
  let keys = 0
  for (const _ in value) keys++
  let known = 0
  if (id !== undefined) known++
  if (name !== undefined) known++
  if (priority !== undefined) known++
  if (phase !== undefined) known++
  if (dependsOn !== undefined) known++
  if (timeout !== undefined) known++
  if (handler !== undefined) known++
  const prototype = Object.getPrototypeOf(value)
  const plain = prototype === Object.prototype
  // A class instance's fields are the state its handler reaches through `this`, not misspelt options (its
  // class's prototype has a constructor of its own; a template's made with Object.create has none, and a
  // plain object made in a vm context has that realm's Object.prototype, whose own prototype is null).
  const classInstance =
    !plain &&
    prototype !== null &&
    Object.getPrototypeOf(prototype) !== null && // not another realm's Object.prototype
    Object.hasOwn(prototype, 'constructor')
  if (!classInstance && (!plain || keys !== known)) warnUnknownKeys(value, KNOWN.task, 'task')
  if (typeof id !== 'string' || id.length === 0 || !id.isWellFormed()) validateTaskId('task.id', id)
  if (name !== undefined && typeof name !== 'string') throw invalidArgType('task.name', 'of type string', name)
  // `x - x` is 0 for a finite number only (NaN and the infinities give NaN).
  if (priority !== undefined && (typeof priority !== 'number' || priority - priority !== 0)) {
    validatePriority('task.priority', priority, undefined)
  }
  if (phase !== undefined && phase !== ShutdownPhase.Stop && phase !== ShutdownPhase.Destroy) {
    if (typeof phase !== 'string') throw invalidArgType('task.phase', 'of type string', phase)
    throw invalidArgValue('task.phase', phase, "must be 'stop' or 'destroy'")
  }
  let dependencies = NO_DEPENDENCIES
  if (dependsOn !== undefined) {
    if (!Array.isArray(dependsOn)) throw invalidArgType('task.dependsOn', 'an array of task ids', dependsOn)
    if (dependsOn.length > 0) {
      dependencies = Array.from(dependsOn, (dep, i) => validateTaskId(`task.dependsOn[${i}]`, dep))
    }
  }
  if (typeof handler !== 'function') throw invalidArgType('task.handler', 'of type function', handler)
  // A class instance's handler is its method: it runs with the task as `this`, as `task.handler(context)`
  // would. A plain object's runs as a function: anything else it holds is warned of as an unknown key, so
  // it has nothing of its own to reach through `this`, and keeping the handler alone keeps tasks small.
  if (!plain) handler = Reflect.apply(Function.prototype.bind, handler, [value])
  if (
    (name === undefined || name === id) &&
    (phase === undefined || phase === ShutdownPhase.Stop) &&
    timeout === undefined
  ) {
    plainTask.id = id
    plainTask.priority = priority ?? ShutdownPriority.Normal
    plainTask.dependsOn = dependencies
    return handler
  }
  return {
    id,
    name: name ?? id,
    priority: priority ?? ShutdownPriority.Normal,
    phase: phase ?? ShutdownPhase.Stop,
    dependsOn: dependencies,
    timeout: timeout === undefined ? undefined : validateTimeout('task.timeout', timeout, undefined),
    handler,
  }
}

/** A task priority: any finite number. */
function validatePriority(name, value, fallback) {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isFinite(value)) throw outOfRange(name, 'a finite number', value)
  return value
}

/**
 * The options of trackServer, trackChild or trackCluster (`kind`), with their unknown names warned of and
 * the task id they may give read and checked (each reads the rest itself, every option once).
 */
function trackerOptions(kind, value) {
  const options = optionsObject('options', value)
  warnUnknownKeys(options, KNOWN[kind], 'options', kind)
  const { id } = options
  if (id !== undefined) validateTaskId('options.id', id)
  return { options, id }
}

/** trackServer()'s options, for a server that isServer() accepted. */
function validateTrackServerOptions(value) {
  const { options, id } = trackerOptions('trackServer', value)
  const { drainTimeout, closeUpgraded } = options
  if (closeUpgraded !== undefined && typeof closeUpgraded !== 'function') {
    throw invalidArgType('options.closeUpgraded', 'of type function', closeUpgraded)
  }
  return {
    id: id ?? 'http-server',
    priority: validatePriority('options.priority', options.priority, ShutdownPriority.High),
    drainTimeout: validateTimeout('options.drainTimeout', drainTimeout, undefined),
    closeUpgraded,
  }
}

function validateTrackChildOptions(child, value) {
  const { options, id } = trackerOptions('trackChild', value)
  const { signal, timeout, group } = options
  if (signal !== undefined) {
    if (typeof signal !== 'string') throw invalidArgType('options.signal', 'of type string', signal)
    const { signals } = require('node:os').constants
    if (!Object.hasOwn(signals, signal) || signal === 'SIGKILL' || signal === 'SIGSTOP') {
      throw invalidArgValue('options.signal', signal, 'must be a signal name a child can handle, such as SIGTERM')
    }
  }
  const { pid } = child
  if (typeof pid !== 'number') {
    throw invalidArgValue('child', pid, 'has no pid: it never started (see its error event)')
  }
  // A ChildProcess made by hand (a test's double) with a pid assigned: Node's handle for it has pid 0, and
  // its kill() would signal the whole process group this process is in.
  if (typeof child.spawnfile !== 'string') {
    throw invalidArgValue('child', pid, 'was never spawned (it has a pid but no spawnfile)')
  }
  if (!Number.isInteger(pid) || pid < 2 || pid > 0x7fffffff) {
    throw outOfRange('child.pid', 'an integer >= 2 && <= 2147483647 (a child process)', pid)
  }
  return {
    id: id ?? `child-${child.pid}`,
    signal: signal ?? 'SIGTERM',
    timeout: validateTimeout('options.timeout', timeout, undefined),
    priority: validatePriority('options.priority', options.priority, ShutdownPriority.Normal),
    group: validateBoolean('options.group', group, false),
  }
}

function validateTrackClusterOptions(value) {
  const { options, id } = trackerOptions('trackCluster', value)
  const { timeout } = options
  return {
    id: id ?? 'cluster',
    timeout: validateTimeout('options.timeout', timeout, undefined),
    priority: validatePriority('options.priority', options.priority, ShutdownPriority.High),
  }
}

function validateReason(name, value) {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (!REASONS.has(value)) {
    throw invalidArgValue(name, value, `must be a ShutdownReason (${[...REASONS].map((r) => `'${r}'`).join(', ')})`)
  }
  return value
}

function validateStopOptions(value, defaults) {
  const options = optionsObject('options', value)
  warnUnknownKeys(options, KNOWN.stop, 'options', 'stop')
  const { reason, timeout, exit } = options
  return {
    reason: reason === undefined ? ShutdownReason.Manual : validateReason('options.reason', reason),
    timeout: validateTimeout('options.timeout', timeout, defaults.gracefulShutdownTimeout),
    exit: validateBoolean('options.exit', exit, false),
  }
}

module.exports = {
  native,
  MAX_TIMEOUT_MS,
  DEFAULT_DESTROY_RESERVE,
  MIN_TASK_SHARE,
  describeMessage,
  quoted,
  escaped,
  writeStderr,
  isSilent,
  invalidArgType,
  validateTrackServerOptions,
  validateTrackChildOptions,
  validateTrackClusterOptions,
  invalidArgValue,
  validateManagerOptions,
  validateTask,
  plainTask,
  validateTaskId,
  validateStopOptions,
  validateProcessManagerOptions,
  lifecycleError,
}
