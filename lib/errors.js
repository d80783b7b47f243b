'use strict'

// Errors in Node's own style: the class tells what kind of mistake it is, `code` is stable to branch on,
// and the message names the argument and shows what was received.

const { inspect } = require('node:util')

function withCode(error, code) {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return error
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
  let shown
  try {
    shown = inspect(value, { depth: 0, maxStringLength: 40 })
  } catch {
    shown = typeof value
  }
  return `Received type ${typeof value} (${shown})`
}

function invalidArgType(name, expected, value) {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. ${received(value)}`), 'ERR_INVALID_ARG_TYPE')
}

function outOfRange(name, range, value) {
  let shown
  try {
    shown = inspect(value)
  } catch {
    shown = String(typeof value)
  }
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  )
}

function invalidArgValue(name, value, reason) {
  let shown
  try {
    shown = inspect(value, { depth: 0, maxStringLength: 40 })
  } catch {
    shown = typeof value
  }
  return withCode(new TypeError(`The argument '${name}' ${reason}. Received ${shown}`), 'ERR_INVALID_ARG_VALUE')
}

/** An error of the library's own, e.g. ERR_SIGNALS_OWNED. */
function lifecycleError(code, message) {
  return withCode(new Error(message), code)
}

module.exports = { invalidArgType, outOfRange, invalidArgValue, lifecycleError, withCode }
