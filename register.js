'use strict'

// Zero-code adoption: `node --require titan-lifecycle/register app.js` (or `--import` for ES modules)
// creates the process's ShutdownManager before the application runs, from environment variables:
//
//   TITAN_LIFECYCLE_TIMEOUT          gracefulShutdownTimeout, ms (default 30000)
//   TITAN_LIFECYCLE_SHUTDOWN_DELAY   shutdownDelay, ms (default 0)
//   TITAN_LIFECYCLE_DESTROY_RESERVE  destroyReserve, ms (default 10% of the timeout)
//   TITAN_LIFECYCLE_SIGNALS          comma-separated, e.g. "SIGTERM,SIGINT" (default SIGTERM,SIGINT,SIGHUP)
//   TITAN_LIFECYCLE_LOG              "1" or "true" logs to the console, "0" or "false" does not (default:
//                                    quiet but for errors)
//
// The application reaches it with `require('titan-lifecycle').processManager()` to add its tasks. A bad
// value stops the process at start-up with the variable named, rather than running without the guarantee.

const path = require('node:path')

/**
 * A number of milliseconds for `variable`, written in decimal (a fraction and an exponent allowed); the
 * manager checks its range. `Number()` alone took a blank value for 0 and `0x10` for 16.
 */
const milliseconds = (variable) => (value) => {
  const trimmed = value.trim()
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(trimmed)) {
    throw badVariable(variable, value, 'must be a number of milliseconds, in decimal')
  }
  return Number(trimmed)
}

/** @type {Record<string, [string, (value: string) => unknown]>} */
const ENVIRONMENT = {
  TITAN_LIFECYCLE_TIMEOUT: ['gracefulShutdownTimeout', milliseconds('TITAN_LIFECYCLE_TIMEOUT')],
  TITAN_LIFECYCLE_SHUTDOWN_DELAY: ['shutdownDelay', milliseconds('TITAN_LIFECYCLE_SHUTDOWN_DELAY')],
  TITAN_LIFECYCLE_DESTROY_RESERVE: ['destroyReserve', milliseconds('TITAN_LIFECYCLE_DESTROY_RESERVE')],
  TITAN_LIFECYCLE_SIGNALS: [
    'signals',
    (value) => {
      const signals = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      // Set, but to no signal (","): SIGTERM would then end the process with no shutdown at all.
      if (signals.length === 0) throw badVariable('TITAN_LIFECYCLE_SIGNALS', value, 'names no signal')
      return signals
    },
  ],
  TITAN_LIFECYCLE_LOG: [
    'logger',
    (value) => {
      // Trimmed as the other variables are: a .env file written on Windows leaves a '\r' behind.
      const word = value.trim()
      if (word === '1' || word === 'true') return console
      if (word === '0' || word === 'false') return undefined
      throw badVariable('TITAN_LIFECYCLE_LOG', value, "must be '1', 'true', '0' or 'false'")
    },
  ],
}

/** A variable's value that names no option value, in Node's style (ERR_INVALID_ARG_VALUE). */
function badVariable(variable, value, problem) {
  const error = new TypeError(`The environment variable ${variable} ${problem}. Received ${JSON.stringify(value)}`)
  return Object.assign(error, { code: 'ERR_INVALID_ARG_VALUE' })
}

/**
 * The command-line scripts of the package managers that run a service, by the base name `process.argv[1]`
 * has: the link in PATH that was run (`npm`, `yarnpkg`, corepack's shims) or the file itself (`npm-cli.js`,
 * pnpm's `pnpm.cjs`, a Yarn release that `yarnPath` runs, `yarn-4.5.1.cjs`).
 */
const PACKAGE_MANAGER_SCRIPT =
  /^(?:npm(?:-cli)?|npx(?:-cli)?|yarn(?:pkg)?|yarn-\d[\w.+-]*|pnpm|pnpx|corepack)(?:\.c?js)?$/

/**
 * Whether this process is not a service to make a manager for. `NODE_OPTIONS=--require
 * titan-lifecycle/register` reaches every Node process:
 * - a package manager's own (`npm start`): a manager there would own SIGTERM, run its shutdown of no tasks
 *   and exit at once; npm forwards the signal to the service but no longer waits for it, and a container
 *   whose first process is npm ends in the middle of the service's shutdown;
 * - one without a script file (the REPL, `node -e`, `node -` reading it from stdin, whose `_eval` is set
 *   only after the preloads): its Ctrl-C would start a shutdown.
 */
function isNotAService() {
  const script = process.argv[1]
  if (typeof script !== 'string' || script === '-' || typeof (/** @type {any} */ (process)._eval) === 'string') {
    return true
  }
  return PACKAGE_MANAGER_SCRIPT.test(path.basename(script))
}

/**
 * The process's manager, if a register (of this copy of the package or another) already made one: the key
 * is index.js's PROCESS_MANAGER, spelled here so that a process register leaves alone loads nothing more.
 */
const madeAlready = () => /** @type {any} */ (process)[Symbol.for('titan-lifecycle.process-manager')] !== undefined

// The package itself is loaded only where a manager is made: a package manager's process (npm stays up for
// the whole life of the service it started) then carries neither its JavaScript nor its native addon. A
// platform's copy (NODE_OPTIONS) and the service's own (its command) may both run register: the first
// makes the process's manager, and every copy returns it.
if (!isNotAService() && !madeAlready()) {
  const titan = require('./index.js')
  // Not part of the typed API (index.js defines it for this file only).
  const { makeProcessManager } = /** @type {any} */ (titan)
  const options = {}
  for (const [variable, [option, parse]] of Object.entries(ENVIRONMENT)) {
    const value = process.env[variable]
    if (value !== undefined && value !== '') options[option] = parse(value)
  }
  try {
    makeProcessManager(options)
  } catch (error) {
    // A worker thread started with argv: Node runs the preload there too (argv[1] is then the worker's
    // first argument, which looks like a script). Only the main thread can own the process's signals, and
    // a worker makes a manager of its own, with signals: [], if it wants one. Asked only now: loading
    // node:worker_threads costs a service's start-up about 1.7 ms, and the main thread refused all the same
    // (an embedder whose loop is not recognised) must not run without its manager.
    if (error?.code !== 'ERR_NOT_MAIN_THREAD' || require('node:worker_threads').isMainThread) {
      // Node's messages quote the option "like this" (a wrong type, out of range) or 'like this' (a wrong value).
      const names = (option) => ['"', "'"].some((quote) => error?.message?.includes(`${quote}options.${option}`))
      const variable = Object.keys(ENVIRONMENT).find((v) => names(ENVIRONMENT[v][0]))
      if (variable) error.message = `${error.message} (from ${variable}=${JSON.stringify(process.env[variable])})`
      throw error
    }
  }
}
