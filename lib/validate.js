'use strict'

// Validation of everything a caller passes in, and the errors it throws. Each option is read exactly once
// (a getter runs once), and every mistake becomes a TypeError or RangeError with a Node-style code before
// anything reaches native code. Errors thrown by the caller's own getters or proxies propagate unchanged.
//
// Errors follow Node's own style: the class tells what kind of mistake it is, `code` is stable to branch on,
// and the message names the argument and shows what was received.

const {
  ShutdownReason,
  ShutdownPhase,
  ShutdownPriority,
  DEFAULT_SIGNALS,
  DEFAULT_EXIT_CODES,
  MAX_TIMEOUT_MS,
} = require('./constants')
// node:util costs about 0.1 ms to load, and only error messages need it.
const inspect = (...args) => require('node:util').inspect(...args)

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
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. ${received(value)}`), 'ERR_INVALID_ARG_TYPE')
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

const REASONS = new Set(Object.values(ShutdownReason))
const PHASES = new Set(Object.values(ShutdownPhase))
const OWNABLE_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2']
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
      const reserved = RESERVED_SIGNALS[signal]
      const why = reserved ? `cannot be owned: ${signal} ${reserved}` : `must be one of ${OWNABLE_SIGNALS.join(', ')}`
      throw invalidArgValue(name, signal, why)
    }
    if (!signals.includes(signal)) signals.push(signal)
  }
  return signals
}

function validateExitCodes(value) {
  const codes = optionsObject('options.exitCodes', value)
  const { success, failure, error, hardExit, secondSignal } = codes
  let second = DEFAULT_EXIT_CODES.secondSignal
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

/** Errors would otherwise vanish, so without a logger they still reach stderr; nothing else is printed. */
const defaultLogger = Object.freeze({
  info() {},
  warn() {},
  error(message) {
    process.stderr.write(`titan-lifecycle: ${message}\n`)
  },
})

function validateLogger(value) {
  if (value === undefined || value === null) return defaultLogger
  if (typeof value !== 'object' && typeof value !== 'function') {
    throw invalidArgType('options.logger', 'an object with info, warn and error methods', value)
  }
  const logger = {}
  for (const level of ['info', 'warn', 'error']) {
    const method = value[level]
    if (method === undefined) {
      logger[level] = defaultLogger[level]
    } else if (typeof method !== 'function') {
      throw invalidArgType(`options.logger.${level}`, 'of type function', method)
    } else {
      // Keep the logger as `this`: pino and console methods need it.
      logger[level] = method.bind(value)
    }
  }
  return logger
}

function validateManagerOptions(value) {
  const options = optionsObject('options', value)
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
  } = options
  return {
    gracefulShutdownTimeout: validateTimeout('options.gracefulShutdownTimeout', gracefulShutdownTimeout, 30_000),
    signals: validateSignals(signals),
    disableGracefulShutdown: validateBoolean('options.disableGracefulShutdown', disableGracefulShutdown, false),
    handleUncaughtErrors: validateBoolean('options.handleUncaughtErrors', handleUncaughtErrors, true),
    forceExitOnSecondSignal: validateBoolean('options.forceExitOnSecondSignal', forceExitOnSecondSignal, true),
    exclusiveSignals: validateBoolean('options.exclusiveSignals', exclusiveSignals, false),
    hardExit: validateBoolean('options.hardExit', hardExit, true),
    exitCodes: validateExitCodes(exitCodes),
    logger: validateLogger(logger),
  }
}

function validateTaskId(name, value) {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (value.length === 0) throw invalidArgValue(name, value, 'must be a non-empty string')
  return value
}

function validateTask(value) {
  if (!isPlainObjectLike(value)) throw invalidArgType('task', 'of type object', value)
  const { id, name, priority, phase, dependsOn, timeout, handler } = value
  validateTaskId('task.id', id)
  if (name !== undefined && typeof name !== 'string') throw invalidArgType('task.name', 'of type string', name)
  if (priority !== undefined) {
    if (typeof priority !== 'number') throw invalidArgType('task.priority', 'of type number', priority)
    if (!Number.isFinite(priority)) throw outOfRange('task.priority', 'a finite number', priority)
  }
  if (phase !== undefined && !PHASES.has(phase)) {
    if (typeof phase !== 'string') throw invalidArgType('task.phase', 'of type string', phase)
    throw invalidArgValue('task.phase', phase, "must be 'stop' or 'destroy'")
  }
  let dependencies = []
  if (dependsOn !== undefined) {
    if (!Array.isArray(dependsOn)) throw invalidArgType('task.dependsOn', 'an array of task ids', dependsOn)
    dependencies = Array.from(dependsOn, (dep, i) => validateTaskId(`task.dependsOn[${i}]`, dep))
  }
  if (typeof handler !== 'function') throw invalidArgType('task.handler', 'of type function', handler)
  return {
    id,
    name: name ?? id,
    priority: priority ?? ShutdownPriority.Normal,
    phase: phase ?? ShutdownPhase.Stop,
    dependsOn: dependencies,
    timeout: validateTimeout('task.timeout', timeout, undefined),
    handler,
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
  const { reason, timeout, exit } = options
  return {
    reason: reason === undefined ? ShutdownReason.Manual : validateReason('options.reason', reason),
    timeout: validateTimeout('options.timeout', timeout, defaults.gracefulShutdownTimeout),
    exit: validateBoolean('options.exit', exit, false),
  }
}

module.exports = {
  validateManagerOptions,
  validateTask,
  validateTaskId,
  validateStopOptions,
  lifecycleError,
}
