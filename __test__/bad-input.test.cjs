'use strict'
// Acceptance 7: every kind of bad input gives the documented error class and code, and never a crash.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ShutdownManager } = require('..')

const ok = { disableGracefulShutdown: true, hardExit: false }

// A loop of symbolic links, which stat() cannot follow (ELOOP): a report directory that cannot exist.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-bad-input-'))
fs.symlinkSync(path.join(scratch, 'b'), path.join(scratch, 'a'))
fs.symlinkSync(path.join(scratch, 'a'), path.join(scratch, 'b'))
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }))
const handler = () => {}

const construct = (options) => () => new ShutdownManager(options)
const register = (task) => () => new ShutdownManager(ok).registerTask(task)

const cases = [
  // [description, thunk, class, code]
  ['options that are not an object', construct('fast'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a string timeout', construct({ ...ok, gracefulShutdownTimeout: '30s' }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a negative timeout', construct({ ...ok, gracefulShutdownTimeout: -1 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a zero timeout', construct({ ...ok, gracefulShutdownTimeout: 0 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a NaN timeout', construct({ ...ok, gracefulShutdownTimeout: NaN }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['an infinite timeout', construct({ ...ok, gracefulShutdownTimeout: Infinity }), RangeError, 'ERR_OUT_OF_RANGE'],
  [
    'a timeout beyond setTimeout',
    construct({ ...ok, gracefulShutdownTimeout: 2 ** 31 }),
    RangeError,
    'ERR_OUT_OF_RANGE',
  ],
  ['signals that are not an array', construct({ ...ok, signals: 'SIGTERM' }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['an unknown signal', construct({ ...ok, signals: ['SIGFOO'] }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['an uncatchable signal', construct({ ...ok, signals: ['SIGKILL'] }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ["the inspector's signal", construct({ ...ok, signals: ['SIGUSR1'] }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['a signal number', construct({ ...ok, signals: [15] }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a non-boolean flag', construct({ ...ok, hardExit: 'yes' }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a fractional exit code', construct({ ...ok, exitCodes: { failure: 1.5 } }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['an exit code above 255', construct({ ...ok, exitCodes: { hardExit: 256 } }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a string exit code', construct({ ...ok, exitCodes: { success: '0' } }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  [
    "a second-signal code that is a string but not 'signal'",
    construct({ ...ok, exitCodes: { secondSignal: 'SIGTERM' } }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  [
    'a second-signal code of another type',
    construct({ ...ok, exitCodes: { secondSignal: true } }),
    TypeError,
    'ERR_INVALID_ARG_TYPE',
  ],
  [
    'a logger method that is not a function',
    construct({ ...ok, logger: { info: 1 } }),
    TypeError,
    'ERR_INVALID_ARG_TYPE',
  ],
  ['a logger that is a bare function', construct({ ...ok, logger: console.log }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a logger that is an array', construct({ ...ok, logger: [console] }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  [
    'a diagnostic report directory that does not exist',
    construct({ ...ok, diagnosticReport: '/nonexistent/titan-lifecycle-reports' }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  [
    'a diagnostic report directory that is a file',
    construct({ ...ok, diagnosticReport: __filename }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  [
    'a diagnostic report directory that is a loop of symbolic links',
    construct({ ...ok, diagnosticReport: path.join(scratch, 'a') }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  [
    'a diagnostic report directory whose name is too long for the system',
    construct({ ...ok, diagnosticReport: path.join(os.tmpdir(), 'x'.repeat(300)) }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  [
    'a diagnostic report directory with a lone surrogate',
    construct({ ...ok, diagnosticReport: '/tmp/\ud800' }),
    TypeError,
    'ERR_INVALID_ARG_VALUE',
  ],
  ['a task that is not an object', register('db'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a task without an id', register({ handler }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['an empty id', register({ id: '', handler }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['a numeric id', register({ id: 7, handler }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a task without a handler', register({ id: 'a' }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a handler that is a promise', register({ id: 'a', handler: Promise.resolve() }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['an infinite priority', register({ id: 'a', priority: Infinity, handler }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a string priority', register({ id: 'a', priority: 'high', handler }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['an unknown phase', register({ id: 'a', phase: 'cleanup', handler }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['dependsOn that is a string', register({ id: 'a', dependsOn: 'b', handler }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a numeric dependency', register({ id: 'a', dependsOn: [1], handler }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a negative task timeout', register({ id: 'a', timeout: -5, handler }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a NaN task timeout', register({ id: 'a', timeout: NaN, handler }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a non-string id to unregister', () => new ShutdownManager(ok).unregisterTask(5), TypeError, 'ERR_INVALID_ARG_TYPE'],
]

for (const [description, thunk, ErrorClass, code] of cases) {
  test(`${description} gives ${ErrorClass.name} ${code}`, () => {
    assert.throws(thunk, (error) => {
      assert.ok(error instanceof ErrorClass, `${error.name}: ${error.message}`)
      assert.equal(error.code, code)
      // In Node's words for the code: the argument named (as the caller wrote it), and what was received.
      const named =
        /^The "([^"]+)" argument must /.exec(error.message) ??
        /^The value of "([^"]+)" is out of range\. /.exec(error.message) ??
        /^The argument '([^']+)' /.exec(error.message)
      assert.match(named?.[1] ?? '', /^(options|task|id)\b/, error.message)
      assert.match(error.message, /\. Received /, error.message)
      return true
    })
  })
}

test('a duplicate id gives ERR_TASK_EXISTS', () => {
  const m = new ShutdownManager(ok)
  m.registerTask({ id: 'db', handler })
  assert.throws(() => m.registerTask({ id: 'db', handler }), { code: 'ERR_TASK_EXISTS', message: /'db'/ })
  // The native side's messages escape ids as every line of ours does: a logged error forges no line.
  const hostile = "x'\ntitan-lifecycle: exiting with code 0\x1b[2J"
  const escapedId = "'x\\'\\ntitan-lifecycle: exiting with code 0\\x1b[2J'"
  m.registerTask({ id: hostile, handler })
  assert.throws(() => m.registerTask({ id: hostile, handler }), {
    code: 'ERR_TASK_EXISTS',
    message: `a shutdown task with id ${escapedId} is already registered`,
  })
  assert.throws(() => m.registerTask({ id: 'loop', dependsOn: ['loop'], handler }), {
    code: 'ERR_TASK_CYCLE',
    message: "cannot register shutdown task 'loop': 'loop' depends on itself",
  })
  m.registerTask({ id: `${hostile}2`, dependsOn: ['c2'], handler })
  assert.throws(() => m.registerTask({ id: 'c2', dependsOn: [`${hostile}2`], handler }), {
    code: 'ERR_TASK_CYCLE',
    message: `cannot register shutdown task 'c2': it would make a dependency cycle: 'c2' -> ${escapedId.slice(0, -1)}2' -> 'c2' (each depends on the next)`,
  })
})

test('messages name the argument and what was received', () => {
  assert.throws(construct({ ...ok, gracefulShutdownTimeout: '30s' }), {
    message: `The "options.gracefulShutdownTimeout" argument must be of type number. Received type string ('30s')`,
  })
  assert.throws(construct({ ...ok, gracefulShutdownTimeout: -1 }), {
    message: /The value of "options.gracefulShutdownTimeout" is out of range\. It must be .*Received -1/,
  })
  assert.throws(construct({ ...ok, signals: ['SIGUSR1'] }), { message: /SIGUSR1 is reserved by Node's inspector/ })
  // A name Object.prototype has is an unknown signal like any other, not a reserved one.
  for (const name of ['constructor', 'toString', '__proto__']) {
    assert.throws(construct({ ...ok, signals: [name] }), {
      code: 'ERR_INVALID_ARG_VALUE',
      message: new RegExp(`The argument 'options\\.signals\\[0\\]' must be one of SIGTERM, .*Received '${name}'`),
    })
  }
})

for (const [description, options, ErrorClass, code] of [
  ['a bad reason', { reason: 'bored' }, TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['a numeric reason', { reason: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a negative timeout', { timeout: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
  ['an infinite timeout', { timeout: Infinity }, RangeError, 'ERR_OUT_OF_RANGE'],
  ['a non-boolean exit', { exit: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['options that are an array', [], TypeError, 'ERR_INVALID_ARG_TYPE'],
]) {
  test(`stop() with ${description} rejects with ${ErrorClass.name} ${code} and does not start a shutdown`, async () => {
    const m = new ShutdownManager(ok)
    await assert.rejects(m.stop(options), (error) => error instanceof ErrorClass && error.code === code)
    assert.equal(m.state, 'running')
  })
}

test('a diagnostic report directory relative to a working directory that was removed is refused in our terms', () => {
  const original = process.cwd()
  const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-cwd-gone-'))
  process.chdir(gone)
  fs.rmdirSync(gone)
  try {
    for (const diagnosticReport of [true, 'reports']) {
      assert.throws(construct({ ...ok, diagnosticReport }), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_VALUE',
        message:
          /^The argument 'options\.diagnosticReport' must be a directory to write in \(the working directory it is relative to no longer exists\)\. Received /,
      })
    }
    // An absolute path does not depend on it.
    assert.equal(new ShutdownManager({ ...ok, diagnosticReport: os.tmpdir() }).state, 'running')
  } finally {
    process.chdir(original)
  }
})

test('a destroy reserve or a shutdown delay at its limit is accepted, fractional or not; beyond it is refused', () => {
  // Each limit computed in floating point lands a rounding error off for these (0.9 of 1 ms left a delay
  // nobody set at -1e-16 ms, which refused it).
  for (const options of [
    { gracefulShutdownTimeout: 1, destroyReserve: 0.9 },
    { gracefulShutdownTimeout: 3, destroyReserve: 2.7 },
    { gracefulShutdownTimeout: 3, shutdownDelay: 2.4 },
    { gracefulShutdownTimeout: 1000, destroyReserve: 900 },
    { gracefulShutdownTimeout: 1000, destroyReserve: 100, shutdownDelay: 800 },
  ]) {
    assert.equal(new ShutdownManager({ ...ok, ...options }).state, 'running', JSON.stringify(options))
  }
  for (const [options, name] of [
    [{ gracefulShutdownTimeout: 1, destroyReserve: 0.91 }, 'options.destroyReserve'],
    [{ gracefulShutdownTimeout: 3, shutdownDelay: 2.41 }, 'options.shutdownDelay'],
    [{ gracefulShutdownTimeout: 1000, destroyReserve: 100, shutdownDelay: 800.01 }, 'options.shutdownDelay'],
  ]) {
    assert.throws(construct({ ...ok, ...options }), { code: 'ERR_OUT_OF_RANGE', message: new RegExp(`"${name}"`) })
  }
})
