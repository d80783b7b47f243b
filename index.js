'use strict'

// titan-lifecycle: phased graceful shutdown with native signal ownership and a watchdog hard exit.
// This file is the public facade: it loads the Rust addon (typed by the generated binding.d.ts), defines
// the vocabulary (reasons, priorities, events, phases) and the manager. lib/run.js runs one shutdown,
// lib/validate.js checks input; both are loaded with the first manager.
//
// Everything `require('titan-lifecycle')` runs is in this one file: Node 20's module loader spends about
// 0.15 ms on each file it loads (resolving, reading, wrapping), whatever is in it, so the addon's loader
// and the vocabulary, once files of their own, now sit here (see ARCHITECTURE.md, "Load cost"). lib/
// modules read them from this file's exports, which are complete before any of them loads: nothing here
// loads one while this file runs.

const { EventEmitter } = require('node:events')
const { existsSync, readFileSync, realpathSync } = require('node:fs')
const path = require('node:path')

// ---- the addon ---------------------------------------------------------------------------------------------
//
// The functions that run at every `require` (libc, loadNative, openedOrExplained, openAddon,
// loadNativeAllowed) are written as parenthesized function expressions: V8 then compiles them with this
// file, where a function declaration is only pre-parsed and parsed again when first called. Measured in
// fresh processes (paired, Node 20): `require` 0.07-0.16 ms faster, of about 3 ms. The rare paths
// (libcByReport, the errors) stay declarations, compiled only if they run.

/** The platforms a binary is built for (package.json's napi.targets, by their package suffix). */
const SHIPPED = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64']

/**
 * '-gnu' or '-musl' on Linux: the C library this process runs on. Its dynamic loader answers first (two
 * `stat`s): a glibc system has glibc's at the path the architecture's ABI fixes and no musl one, a musl
 * system the reverse. Where both or neither are there (musl installed beside glibc, gcompat on Alpine,
 * NixOS), `ldd` tells, as napi-rs's loader asks it (reading it cost `require` about 0.05 ms, the reason it
 * is not the first question), and without ldd, Node's own report. Under the permission model with reads
 * allowed only where the service lives, the system's files cannot be looked at (`existsSync` throws
 * ERR_ACCESS_DENIED), and the report answers too.
 */
// biome-ignore format: parenthesized, so V8 compiles it with the file (see above)
const libc = (function libc() {
  if (process.platform !== 'linux') return ''
  try {
    const musl = existsSync(`/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`)
    const glibc = existsSync(process.arch === 'x64' ? '/lib64/ld-linux-x86-64.so.2' : '/lib/ld-linux-aarch64.so.1')
    if (musl !== glibc) return musl ? '-musl' : '-gnu'
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? '-musl' : '-gnu'
  } catch {
    return libcByReport()
  }
})

/**
 * No ldd to read either, or no permission to look: Node's own report names the glibc it runs on, as npm
 * asks it when it picks the platform package to install (it costs about 15 ms, on systems this rare).
 * Without the network part, as npm asks too: it would look up the name of every open socket's peer. A
 * report that cannot be had leaves glibc, the common case: a wrong guess fails to open with an error that
 * says what to install.
 */
function libcByReport() {
  const settings = /** @type {{ excludeNetwork?: boolean }} */ (process.report)
  const excludeNetwork = settings.excludeNetwork
  try {
    settings.excludeNetwork = true
    const report = /** @type {{ header?: { glibcVersionRuntime?: string } }} */ (process.report.getReport())
    return report?.header?.glibcVersionRuntime || !report?.header ? '-gnu' : '-musl'
  } catch {
    return '-gnu'
  } finally {
    settings.excludeNetwork = excludeNetwork
  }
}

/**
 * Node's own `require`, also inside a webpack bundle: webpack swaps `require` for its own, which can neither
 * resolve nor open a file named at run time, and hands Node's over as `__non_webpack_require__`. The addon
 * is looked for and opened with this one. Outside webpack the name is not defined.
 * @type {NodeJS.Require}
 */
// @ts-ignore: webpack's name for Node's require; undefined everywhere else.
const nodeRequire = typeof __non_webpack_require__ === 'function' ? __non_webpack_require__ : require

/**
 * This file's directory. An ES module bundle (esbuild's `--format=esm`, with `require` made by
 * `createRequire(import.meta.url)` in a banner, as its users do for CommonJS inside) holds this file
 * without CommonJS's `__dirname`: then null, and what sits beside the bundle is found through `nodeRequire`,
 * which resolves from the bundle's own place.
 */
const packageDirectory = typeof __dirname === 'string' ? __dirname : null

function unavailable(message, cause) {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code: 'ERR_NATIVE_UNAVAILABLE' })
}

/**
 * Loads the native addon for this platform: a local build next to this file (development), or the
 * platform package npm installed as an optional dependency. napi-rs's generated loader covers every
 * platform and WASI and costs about 1 ms; this one covers the platforms we ship.
 *
 * The platform package is looked for where Node's resolution would find it first: this package's own
 * node_modules, then beside this package when that is a node_modules (where npm, pnpm and yarn put it;
 * a package reached through `npm link` or a workspace has its real path elsewhere, and what sits beside
 * it there is not installed). Resolving the package by name (node_modules directories, its package.json)
 * cost 0.1-0.2 ms more. Any other layout (Yarn Plug'n'Play, one hoisted further up) goes through
 * `require`.
 * @returns {{ native: typeof import('./binding'), file: string }}
 */
// biome-ignore format: parenthesized, so V8 compiles it with the file (see above)
const loadNative = (function loadNative() {
  const platform = `${process.platform}-${process.arch}${libc()}`
  if (!SHIPPED.includes(platform)) {
    throw unavailable(
      `titan-lifecycle does not support ${platform}: its native addon is built for ${SHIPPED.join(', ')} only ` +
        '(it receives signals natively, which Windows does not have).',
    )
  }
  const fileName = `titan-lifecycle.${platform}.node`
  const packageName = `titan-lifecycle-${platform}`
  const here = packageDirectory
  const candidates =
    here === null ? [] : [path.join(here, fileName), path.join(here, 'node_modules', packageName, fileName)]
  if (here !== null && path.basename(path.dirname(here)) === 'node_modules') {
    candidates.push(path.join(here, '..', packageName, fileName))
  }
  const found = candidates.find((file) => existsSync(file)) ?? (here === null ? besideBundle(fileName) : undefined)
  if (found) return openedOrExplained(() => openAddon(realpathSync.native(found)), platform, packageName)
  try {
    const file = nodeRequire.resolve(packageName)
    return openedOrExplained(() => ({ native: nodeRequire(file), file }), platform, packageName)
  } catch (error) {
    if (error?.code !== 'MODULE_NOT_FOUND') throw error
    throw unavailable(
      `titan-lifecycle's native addon for ${platform} is missing: install ${packageName} ` +
        `(npm install ${packageName}@${require('./package.json').version}). npm installs it with titan-lifecycle ` +
        'unless optional dependencies are omitted (--omit=optional, --no-optional) or the lockfile was made on ' +
        `another platform. A bundle that holds titan-lifecycle needs it installed where it runs, or ${fileName} ` +
        'beside it.',
      error,
    )
  }
})

/** `fileName` beside the module `nodeRequire` resolves from (an ES module bundle: see packageDirectory). */
function besideBundle(fileName) {
  try {
    return nodeRequire.resolve(`./${fileName}`)
  } catch {
    return undefined
  }
}

/**
 * Runs `open`; a binary that is there but cannot be opened (a truncated download, a system older than the
 * build supports, a build copied in from another system) is said in our terms, with what to reinstall; the
 * dynamic loader's own words are kept as the message's end and the error as its cause.
 * @param {() => { native: typeof import('./binding'), file: string }} open
 */
// biome-ignore format: parenthesized, so V8 compiles it with the file (see above)
const openedOrExplained = (function openedOrExplained(open, platform, packageName) {
  try {
    return open()
  } catch (error) {
    if (error?.code !== 'ERR_DLOPEN_FAILED') throw error
    throw unavailable(
      `titan-lifecycle's native addon for ${platform} cannot be opened: reinstall ${packageName} where the ` +
        'service runs (a download cut short, a node_modules copied from another system); if it still fails, ' +
        'the system is older than the build supports (glibc 2.17, macOS 10.13 on x64 and 11 on arm64). ' +
        error.message,
      error,
    )
  }
})

/**
 * Opens the addon at `file` (a real path) as `require(file)` does once it has resolved it: through
 * `process.dlopen`, into require.cache under that path, so it is initialized once per process however
 * often this file runs again (a test runner that clears it from the cache). Where the module system is not
 * Node's own (Jest's, a bundler's, a loader hook's: no require.cache, or `module` not Node's Module), or a
 * policy is in force, `require` opens it, as it would have anyway.
 * @returns {{ native: typeof import('./binding'), file: string }}
 */
// biome-ignore format: parenthesized, so V8 compiles it with the file (see above)
const openAddon = (function openAddon(file) {
  // Node's own module system: `module` is one of its Modules, whose cache require.cache is. Requiring
  // node:module to ask would cost `require` 0.2 ms (its first use from user code). Under Node 20's
  // `--experimental-policy`, `module.constructor` is hidden (since the policy bypasses fixed in 20.5.1),
  // and `require` then checks the addon's integrity, which `process.dlopen` would skip.
  const Module = /** @type {any} */ (module.constructor)
  if (typeof Module !== 'function' || nodeRequire.cache === undefined || nodeRequire.cache !== Module._cache) {
    return { native: nodeRequire(file), file }
  }
  const cached = nodeRequire.cache[file]
  if (cached) return { native: cached.exports, file }
  const addon = new Module(file)
  addon.filename = file
  process.dlopen(addon, file)
  addon.loaded = true
  nodeRequire.cache[file] = addon
  return { native: addon.exports, file }
})

/** The addon, with Node's refusal of every addon (`--no-addons`, the permission model) said in our terms. */
// biome-ignore format: parenthesized, so V8 compiles it with the file (see above)
const loadNativeAllowed = (function loadNativeAllowed() {
  try {
    return loadNative()
  } catch (error) {
    if (error?.code !== 'ERR_DLOPEN_DISABLED') throw error
    throw unavailable(
      "titan-lifecycle's native addon cannot be loaded: this node disables native addons (--no-addons, or " +
        'the permission model without --allow-addons).',
      error,
    )
  }
})

const { native, file: nativeFile } = loadNativeAllowed()

// ---- the vocabulary ----------------------------------------------------------------------------------------

/** Why a shutdown started. The values are what events and results report. */
const ShutdownReason = Object.freeze({
  Manual: 'manual',
  SIGTERM: 'SIGTERM',
  SIGINT: 'SIGINT',
  SIGHUP: 'SIGHUP',
  Signal: 'signal',
  UncaughtException: 'uncaughtException',
  UnhandledRejection: 'unhandledRejection',
  Timeout: 'timeout',
  Error: 'error',
  Reload: 'reload',
  Upgrade: 'upgrade',
  Maintenance: 'maintenance',
})

/** Lower numbers run first. Any finite number is allowed; these are the names for the usual steps. */
const ShutdownPriority = Object.freeze({
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

/** Every step of a shutdown is observable as one of these events on the manager. */
const ShutdownEvent = Object.freeze({
  ShutdownStart: 'shutdown:start',
  ShutdownTaskComplete: 'shutdown:task:complete',
  ShutdownTaskError: 'shutdown:task:error',
  ShutdownComplete: 'shutdown:complete',
  ShutdownError: 'shutdown:error',
  /** The event loop did not answer for `stallThreshold` or more while the shutdown ran. */
  ShutdownStall: 'shutdown:stall',
  /** A shutdown that did not exit finished `stillAliveReportDelay` ago, and the process is still alive. */
  ShutdownStillAlive: 'shutdown:still-alive',
})

/** Every 'stop' task settles before any 'destroy' task starts. */
const ShutdownPhase = Object.freeze({
  Stop: 'stop',
  Destroy: 'destroy',
})

// ---- the manager -------------------------------------------------------------------------------------------

// lib/validate.js and lib/run.js are loaded with the first manager, not by `require`: compiling them was
// most of what requiring the package cost, and code that only reads the constants (a CLI sharing the
// service's modules, a test) should not pay for it. Every use below is inside a manager's methods.
let ShutdownRun
let validateManagerOptions, validateTask, plainTask, validateTaskId, validateStopOptions, validateTrackServerOptions
let validateTrackChildOptions, validateTrackClusterOptions
let invalidArgType, lifecycleError, describeMessage, quoted, validateProcessManagerOptions
function loadInternals() {
  if (ShutdownRun) return
  ;({ ShutdownRun } = require('./lib/run'))
  ;({
    describeMessage,
    quoted,
    validateManagerOptions,
    validateTask,
    plainTask,
    validateTaskId,
    validateStopOptions,
    validateTrackServerOptions,
    validateTrackChildOptions,
    validateTrackClusterOptions,
    invalidArgType,
    lifecycleError,
    validateProcessManagerOptions,
  } = require('./lib/validate'))
}

/**
 * Marks which copy of the package owns the process signals. It lives on `process`, which every copy of the
 * package loaded in the main thread shares, so two copies (a dependency bundling its own) cannot both own
 * them. Within one copy the native side refuses a second owner too.
 */
const SIGNAL_OWNER = Symbol.for('titan-lifecycle.signal-owner')
/**
 * What every copy of the package in the process shares: a value on `process` under `Symbol.for(name)`,
 * made by `make` on first use (hidden from enumeration, never replaced).
 */
function processWide(name, make) {
  const key = Symbol.for(name)
  const processRecord = /** @type {any} */ (process)
  if (!processRecord[key]) {
    Object.defineProperty(process, key, { value: make(), configurable: true, enumerable: false, writable: false })
  }
  return processRecord[key]
}

/**
 * The managers whose error hooks are on, in the order they were made, of every copy of the package in the
 * process (hence on `process`, as the signal owner is): one of them answers an uncaught error when no
 * signal owner does (see #answersErrors).
 * @returns {Set<object>}
 */
const errorHooked = () => processWide('titan-lifecycle.error-hooked', () => new Set())

/**
 * The managers of errorHooked() whose copy of the package leaves an uncaught error to a manager whose
 * shutdown has not ended (see #answersErrors). A copy older than that rule answers by the first made alone:
 * while one of its managers is hooked, every copy does too, or each could leave the error to the other and
 * none answer it.
 * @returns {WeakSet<object>}
 */
const skipsEndedShutdowns = () => processWide('titan-lifecycle.error-hooked-skipping-ended', () => new WeakSet())

/**
 * Says, in the environment children inherit, that this process speaks to systemd for the service, once
 * the native side does: a manager in a child or a cluster worker then keeps quiet (the native side's
 * SPEAKER_VARIABLE, core/src/systemd.rs). systemd's own variables stay: the service's code may speak to
 * systemd itself (the sd-notify package), and its children as they would without this package.
 */
function speakForServiceToSystemd() {
  if (process.env.NOTIFY_SOCKET !== undefined && native.systemdListening()) {
    process.env.TITAN_LIFECYCLE_NOTIFY_PID = String(process.pid)
  }
}

/** What `native.notifyReady()` answers: READY=1 went out, or systemd's queue had no room for it. */
const READY_SENT = 1
const READY_QUEUE_FULL = -1
/** READY=1's first retry after a full queue, and for how long it is retried (systemd's own start timeout). */
const READY_FIRST_RETRY_MS = 20
const READY_RETRY_FOR_MS = 90_000

/** Whether the shutdown path has been (or is about to be) warmed up in this process; see #warmUp. */
let warmUpScheduled = false
/** Whether the native side knows this package's own files (stacks sum up the frames in them). */
let packagePathsSet = false

/**
 * The IPC channel's control, with the listener count Node keeps on it (`refCounted` / `unrefCounted`, on
 * Node 20, 22, 24 and 26; not in Node's typings).
 * @returns {{ refCounted?(): void, unrefCounted?(): void } | undefined}
 */
const ipcChannel = () => /** @type {any} */ (process.channel)

/** What the error hooks were last given in this tick: nothing yet (see #hookErrors). */
const NOTHING_DELIVERED = Symbol('nothing delivered')

/** A listener another library removed is put back on the next tick at most this many times in a turn of the loop. */
const MAX_RESTORES_PER_TURN = 10
/** How many turns in a row that went past MAX_RESTORES_PER_TURN make a fight (see restorePacer). */
const FIGHT_TURNS = 3

/**
 * When a listener another library removed is put back (see #hookErrors, #hookIpc). 'now', on the next
 * tick, at most MAX_RESTORES_PER_TURN times in one turn of the event loop; after that 'next-turn': from an
 * immediate, at the end of this turn. A library that removes it as soon as it is added would otherwise
 * trade removals with the manager from tick to tick for ever, and no timer or I/O would run again; now
 * each turn of the loop sees that many rounds at most. Many independent removals in one turn (a dozen
 * timers due together) are all put back by the end of that turn. When FIGHT_TURNS turns in a row went past
 * the limit: 'fight' once (the caller says so), then, for the rest of it, 'quietly' (at once, with no
 * warning each round) and 'wait' past the limit: such restores wait for the loop to wake for something
 * else (an unref'd immediate: the loop does not spin for the fight, which holds the listener anyway).
 * `settled()`: a restore found the listener back, so a fight, if any, is over.
 */
function restorePacer() {
  let thisTurn = 0
  let fullTurns = 0
  let turnEnding = false
  let fighting = false
  const endTurn = () => {
    turnEnding = false
    fullTurns = thisTurn > MAX_RESTORES_PER_TURN ? fullTurns + 1 : 0
    thisTurn = 0
  }
  const pace = () => {
    if (!turnEnding) {
      turnEnding = true
      // Unref'd: counting turns must not keep the process alive, nor make 'beforeExit' come again.
      setImmediate(endTurn).unref()
    }
    if (++thisTurn <= MAX_RESTORES_PER_TURN) return fighting ? 'quietly' : 'now'
    if (fighting) return 'wait'
    if (fullTurns + 1 < FIGHT_TURNS) return 'next-turn'
    fighting = true
    return 'fight'
  }
  pace.settled = () => {
    fullTurns = 0
    fighting = false
  }
  return pace
}

/**
 * Puts `restore` off as restorePacer's verdict `when` says; returns whether it did ('now' and 'quietly'
 * restore at once). 'next-turn' from a ref'd immediate, which runs at the end of this very turn; 'fight'
 * (after `reportFight()`) and 'wait' from an unref'd one, which waits for the loop to wake for something else.
 */
function putOff(when, restore, reportFight) {
  if (when === 'now' || when === 'quietly') return false
  if (when === 'fight') reportFight()
  const immediate = setImmediate(restore)
  if (when !== 'next-turn') immediate.unref()
  return true
}

/** How many uncaught errors during one shutdown are logged; the rest are counted once. */
const MAX_ERRORS_LOGGED = 3

/**
 * Set while `titan-lifecycle/register` makes the process's manager (see makeProcessManager): that manager
 * starts unclaimed (see #unclaimed).
 */
let makingProcessManager = false

/**
 * The method by which processManager() claims register's manager for the application. On the manager, by
 * a key every copy of the package shares: the application's copy may not be the one register ran from.
 */
const CLAIM = Symbol.for('titan-lifecycle.claim')

class ShutdownManager extends EventEmitter {
  /** The manager of this copy of the package that owns the signals, if any. */
  static #signalOwner = null

  /**
   * Called straight from the main loop when an owned signal arrives (see DirectCaller in src/binding.rs).
   * One function for the whole process, so the native side can hold it forever without holding a manager.
   */
  static #dispatchSignal = (event) => {
    const owner = ShutdownManager.#signalOwner
    if (owner) owner.#onNativeEvent(event)
  }

  #config
  #native
  /** id -> what the facade keeps of the task: its handler, or its spec (see the task entries in lib/run.js). */
  #tasks = new Map()
  /**
   * Tasks registered since the native side last heard, sent in one call (see #flushRegistrations): a
   * native call per task cost 2.5 µs of the 3.3 µs a registration took.
   */
  #pending = null
  /** Ids that some registered task depends on: registering one of them may close a loop (checked natively). */
  #dependedOn = new Set()
  #run = null
  /**
   * The run of this manager's shutdown, made when the manager is built so the way from a signal to the first
   * task does not construct it: on that way, cold after an idle period, constructing it cost 15-35 µs.
   */
  #preparedRun = null
  #ownsSignals = false
  #errorListeners = null
  /** Uncaught errors seen while a shutdown runs; only the first few are logged (see #hookErrors). */
  #errorsDuringShutdown = 0
  /** The trackers of trackServer(), trackChild() and trackCluster(), by their task's id: unregistering the task untracks. */
  #trackers = new Map()
  /** The servers trackServer() drains (lib/drain.js ServerTracker). */
  #servers = new Set()
  /** trackCluster()'s trackers (lib/cluster.js), which dispose() stops from tracking new workers. */
  #clusterTrackers = new Set()
  /** The IPC hook's listeners while it is on: the one that hears the supervisor's message, and its watcher. */
  #ipcListener = null
  /** The timer of READY=1's next try while systemd's queue is full (see #notifyReady). */
  #readyRetry = undefined
  /** dispose() was called: the manager no longer speaks for the service (ready() sends nothing). */
  #disposed = false
  /**
   * Made by `titan-lifecycle/register` and not yet handed to the application by processManager().
   * `NODE_OPTIONS` puts register in every Node process, and most never ask for the manager (a migration
   * script, a build tool, a test runner): those must be as they would be without it. Until it is claimed,
   * it takes nothing of the process: the signals are only reserved (another manager is refused them, with
   * the way to processManager() said), and the signal handlers, systemd's notifications, the IPC message
   * and the error hooks wait for the claim (see [CLAIM]). A signal before then has Node's own effect.
   */
  #unclaimed = false
  /** ready() was called while the manager was unclaimed: the claim says it. */
  #readyWhenClaimed = false
  /**
   * The signal owner's 'beforeExit' listener: a signal that came in the event loop's last turn was
   * recorded by the handler, and the watchdog began its shutdown, but the pin's callback (unref'd) is never
   * polled again to tell JavaScript, and the process would exit 0 with no task run. It is told here, as
   * the pin would have: the shutdown it begins keeps the loop alive, and after a stop() that did not exit
   * it exits with that shutdown's code.
   */
  #deliverLateSignal = () => {
    if (!this.#ownsSignals) return
    const signal = native.takeUndeliveredSignal()
    if (signal) this.#onNativeEvent({ kind: 'signal', signal })
  }

  /** @param {import('./index').ShutdownManagerOptions} [options] */
  constructor(options) {
    loadInternals()
    super()
    this.#config = validateManagerOptions(options)
    this.#unclaimed = makingProcessManager
    const { hardExit, exitCodes, disableGracefulShutdown } = this.#config
    // Bun and Deno load the addon, but give it no working libuv, which the native side is built on: Bun
    // exports libuv's functions as stubs that abort the process when called, so it must be refused before
    // the native side is made. Deno does not export them, and the binding would refuse it itself; by name,
    // the refusal says why.
    const { bun, deno } = process.versions
    const otherRuntime = bun ? `Bun ${bun}` : deno ? `Deno ${deno}` : null
    if (otherRuntime) {
      throw unavailable(
        `titan-lifecycle runs on Node.js: ${otherRuntime} loads its addon, but not the libuv that the manager ` +
          'is built on.',
      )
    }
    this.#native = new native.NativeShutdown(hardExit ? exitCodes.hardExit : null)
    if (this.#config.diagnosticReport !== null) this.#setDiagnosticReport(this.#config.diagnosticReport)
    if (this.#config.stallThreshold > 0) this.#native.setStallThreshold(this.#config.stallThreshold)
    if (!packagePathsSet) {
      packagePathsSet = true
      // Only where the package's files are its own: a bundle holds the package and the service in one file
      // (often named index.js too), and summing that up would hide the service's frames. Node's own
      // require.cache holds lib/run.js (loaded just now) only when it ran from that file.
      if (packageDirectory !== null && require.cache?.[path.join(packageDirectory, 'lib', 'run.js')]) {
        native.setPackagePaths([path.join(packageDirectory, 'lib') + path.sep, path.join(packageDirectory, 'index.js')])
      }
    }
    this.#preparedRun = this.#makeRun()
    if (this.#unclaimed) {
      // Nothing to prepare or take yet: the claim does both (see [CLAIM]).
      if (!disableGracefulShutdown) this.#reserveSignals()
      return
    }
    this.#scheduleWarmUp()
    if (disableGracefulShutdown) return
    this.#actForProcess()
  }

  #scheduleWarmUp() {
    if (warmUpScheduled) return
    warmUpScheduled = true
    // In the first turn of the event loop. Ref'd on purpose: an unref'd immediate waits for the loop's
    // next wake-up, which may be the very signal it should have prepared for.
    setImmediate(() => this.#warmUp())
  }

  /**
   * Takes what the manager answers for the process: its signals (and, for their owner, systemd and the
   * supervisor's IPC message) and uncaught errors.
   */
  #actForProcess() {
    const { signals, handleUncaughtErrors } = this.#config
    if (signals.length > 0) {
      this.#ownSignals()
      // The signal owner speaks to systemd for the service (its native side has read NOTIFY_SOCKET and
      // WATCHDOG_USEC by now).
      speakForServiceToSystemd()
      // The supervisor's message is its signal (PM2 sends one instead of SIGINT, and on Windows it has
      // nothing else): heard by the manager that owns the signals, when there is an IPC channel.
      if (this.#config.ipcMessage !== false && typeof process.send === 'function') this.#hookIpc()
    }
    if (handleUncaughtErrors) this.#hookErrors()
  }

  /**
   * register's manager, unclaimed: its signals are held for it (see #unclaimed), in the main thread only,
   * as owning them would be (a worker started with argv runs the preload too, and gets no manager).
   */
  #reserveSignals() {
    if (this.#config.signals.length === 0) return
    if (!this.#native.mainThread)
      throw lifecycleError('ERR_NOT_MAIN_THREAD', native.errorMessage('ERR_NOT_MAIN_THREAD'))
    this.#refuseIfSignalsOwned()
    this.#markSignalOwner()
  }

  /** processManager() hands register's manager to the application: from now on it acts for the process. */
  [CLAIM]() {
    if (!this.#unclaimed || this.#disposed) return
    // Claimed once this has worked: a claim that throws (no watchdog thread could start) leaves the manager
    // unclaimed, so the next processManager() throws the same, rather than hand out one that owns nothing.
    if (!this.#config.disableGracefulShutdown) this.#actForProcess()
    this.#unclaimed = false
    this.#scheduleWarmUp()
    if (this.#readyWhenClaimed) this.ready()
  }

  /**
   * Tells the supervisor the service is ready: PM2's `wait_ready` (an IPC 'ready' message, when PM2 runs
   * the process) and systemd's `Type=notify` (READY=1, when NOTIFY_SOCKET is set). Does nothing elsewhere,
   * and nothing once a shutdown has begun: a `listen` callback that comes after an early SIGTERM would undo
   * systemd's STOPPING=1 (a unit still starting goes to running) and make PM2's reload stop the old
   * instance for one that is going away.
   */
  ready() {
    if (this.#native.state !== 'running' || this.#disposed) return
    // register's manager that the application has not claimed speaks to no supervisor (a launcher would
    // speak for the service it starts): the claim sends it (see [CLAIM]).
    if (this.#unclaimed) {
      this.#readyWhenClaimed = true
      return
    }
    // Nor once the manager that owns the process's signals (of any copy) is shutting down: the service is
    // going away, whichever of its managers the callback belongs to.
    if (process[SIGNAL_OWNER]?.manager?.isShuttingDown === true) return
    // A retry still waiting (an earlier ready()) is replaced: this one sends now.
    clearTimeout(this.#readyRetry)
    this.#notifyReady(READY_FIRST_RETRY_MS, performance.now())
    if (process.env.pm_id !== undefined && typeof process.send === 'function' && process.connected) {
      // With a callback, a send that fails (the supervisor closed the channel and the loop has not heard
      // yet) reports there instead of as an 'error' event on process, which would be an uncaught error.
      process.send('ready', undefined, undefined, () => {})
    }
  }

  /**
   * READY=1 to systemd. Natively, once sent, this starts the watchdog's pings too where no signal owner
   * has (a manager with no signals then speaks for the service, and its children must not). systemd
   * waits for it to finish starting the unit: when its queue is full it is sent again, `retryMs` later
   * and then at longer intervals, until it goes out, a shutdown begins or the manager is disposed (for
   * READY_RETRY_FOR_MS at most, from `since`, on the monotonic clock).
   */
  #notifyReady(retryMs, since) {
    this.#readyRetry = undefined
    const outcome = native.notifyReady()
    if (outcome === READY_SENT) speakForServiceToSystemd()
    if (outcome !== READY_QUEUE_FULL || performance.now() - since > READY_RETRY_FOR_MS) return
    // Unref'd: a service waiting to be ready is kept alive by what it serves, not by this.
    this.#readyRetry = setTimeout(() => {
      if (this.#native.state === 'running' && !this.#disposed) this.#notifyReady(Math.min(retryMs * 2, 1000), since)
    }, retryMs).unref()
  }

  /** 'running' | 'stopping' | 'stopped' */
  get state() {
    return this.#native.state
  }

  get isShuttingDown() {
    return this.#native.state !== 'running'
  }

  /** False from the instant a shutdown starts, before any task runs (and during `shutdownDelay`). */
  get isReady() {
    return this.#native.state === 'running'
  }

  /**
   * A request handler for a readiness probe: 200 while ready, 503 from the instant a shutdown starts, so a
   * load balancer stops sending traffic while the service still serves what it sent.
   */
  readinessHandler() {
    return (req, res) => {
      const ready = this.isReady
      res.statusCode = ready ? 200 : 503
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      res.setHeader('cache-control', 'no-store')
      res.end(ready ? 'ready\n' : 'shutting down\n')
    }
  }

  /**
   * Drains `server` (http, https, http2 or net) at shutdown, in a stop-phase task that it registers and
   * returns the id of. See lib/drain.js for what draining does.
   */
  trackServer(server, options) {
    const { ServerTracker, isServer } = require('./lib/drain')
    if (!isServer(server)) {
      throw invalidArgType('server', 'an instance of http.Server, https.Server, an HTTP/2 server or net.Server', server)
    }
    const { id, priority, drainTimeout, closeUpgraded } = validateTrackServerOptions(options)
    const tracker = this.#registerTracker(
      { id, priority, timeout: drainTimeout },
      () => new ServerTracker(server, { id, closeUpgraded }),
      (drainer, stopOptions) => drainer.drain(stopOptions),
    )
    if (this.#trackers.has(id)) this.#servers.add(tracker)
    return id
  }

  /**
   * Registers the stop task of a tracker (trackServer, trackChild, trackCluster), then makes the tracker
   * with `make`. The task comes first, so tracking during or after a shutdown fails with the usual codes
   * and tracks nothing; a tracker that cannot be made leaves no task behind. At shutdown the task calls
   * `stop(tracker, { timeoutMs, abortSignal, signal })`: `timeoutMs` is what remains before the destroy
   * phase's reserve (less a margin), or `timeout` if that is shorter; `signal` the one that began the
   * shutdown, if one did.
   */
  #registerTracker({ id, priority, timeout }, make, stop) {
    let tracker
    this.registerTask({
      id,
      priority,
      handler: ({ abortSignal, signal }) => {
        const left = this.#run?.drainTimeLeftMs() ?? Infinity
        return stop(tracker, { timeoutMs: Math.min(timeout ?? Infinity, left), abortSignal, signal })
      },
    })
    try {
      tracker = make()
    } catch (error) {
      this.unregisterTask(id)
      throw error
    }
    // Unless making it unregistered the task already (a child that had exited: see trackChild).
    if (this.#tasks.has(id)) this.#trackers.set(id, tracker)
    return tracker
  }

  /**
   * Stops `child` (a `child_process` child) at shutdown, in a task that it registers and returns the id of:
   * its signal, a wait for the exit, SIGKILL at the timeout. Every other exit (the hard exit, a second
   * signal, `process.exit()`) kills it too. See lib/children.js.
   */
  trackChild(child, options) {
    const { ChildProcess } = require('node:child_process')
    if (!(child instanceof ChildProcess)) {
      throw invalidArgType('child', 'an instance of ChildProcess', child)
    }
    const { id, signal, timeout, priority, group } = validateTrackChildOptions(child, options)
    const { ChildTracker } = require('./lib/children')
    this.#registerTracker(
      { id, priority, timeout },
      () =>
        new ChildTracker(child, {
          signal,
          group,
          // A child gone before any shutdown leaves no task behind (a service that spawns many children
          // would pile them up, and a reused pid would find its default id taken).
          onGone: () => {
            if (!this.isShuttingDown) this.unregisterTask(id)
          },
        }),
      (tracker, stopOptions) => tracker.stop(stopOptions),
    )
    return id
  }

  /**
   * In a cluster primary: at shutdown, asks every worker to shut down (the IPC message their managers hear,
   * `ipcMessage`), all at once, waits for them, and sends SIGKILL to any left at the timeout; in a task
   * that it registers and returns the id of. Workers forked later are tracked too. See lib/cluster.js.
   */
  trackCluster(options) {
    const cluster = /** @type {import('node:cluster').Cluster} */ (/** @type {unknown} */ (require('node:cluster')))
    if (!cluster.isPrimary) {
      throw lifecycleError(
        'ERR_NOT_CLUSTER_PRIMARY',
        "trackCluster() is for a cluster primary; a worker's manager already shuts down when the primary asks (ipcMessage)",
      )
    }
    const { id, timeout, priority } = validateTrackClusterOptions(options)
    const { ClusterTracker } = require('./lib/cluster')
    const tracker = this.#registerTracker(
      { id, priority, timeout },
      () =>
        new ClusterTracker({
          message: this.#config.ipcMessage || 'shutdown',
          onError: (error) => this.#config.logger.error(`cluster worker: ${describeMessage(error)}`, { err: error }),
        }),
      (workers, stopOptions) => workers.stop(stopOptions),
    )
    if (this.#trackers.has(id)) this.#clusterTrackers.add(tracker)
    return id
  }

  /**
   * What keeps the event loop alive right now: `[{ type, detail }]` for each handle (a server, a socket, a
   * timer, a child process) and request still holding it. Handles let go of with `unref()` are not listed.
   */
  activeHandles() {
    return require('./lib/handles').activeHandles()
  }

  /** Registers a shutdown task; returns its id. */
  registerTask(task) {
    const checked = validateTask(task)
    if (typeof checked === 'function') {
      // A plain task (see validateTask): kept as its handler alone.
      const { id, priority, dependsOn } = plainTask
      return this.#register(id, id, priority, ShutdownPhase.Stop, dependsOn, checked)
    }
    return this.#register(checked.id, checked.name, checked.priority, checked.phase, checked.dependsOn, checked)
  }

  /**
   * Registers a checked task, kept in `#tasks` as `entry`. Its fields come one by one rather than in an
   * object, which a plain task would have to make for this call alone.
   */
  #register(id, name, priority, phase, dependsOn, entry) {
    // Most tasks reach the native side later, in one burst: those that cannot fail to register. Such a
    // task depends on nothing and nothing waits for it (so it closes no loop and breaks no level rule), its
    // id is new, and no shutdown has been taken over by JavaScript (which would refuse it). This runs once
    // per task, mostly before V8 has optimized anything, so it is written out here rather than in methods.
    if (
      this.#run === null &&
      dependsOn.length === 0 &&
      !this.#tasks.has(id) &&
      (this.#dependedOn.size === 0 || !this.#dependedOn.has(id))
    ) {
      let pending = this.#pending
      if (pending === null) {
        // `names` stays null while every name is its task's id and `phases` while every task is in the
        // stop phase (most tasks): the burst then crosses with less, and registering pushes less.
        pending = this.#pending = { ids: [], names: null, priorities: [], phases: null }
        // Until then a hard-exit report (a turn that never ends) says there are tasks it does not know.
        this.#native.noteUnsentTasks()
        // The native record (what the watchdog's report lists) is current by the end of this turn of
        // JavaScript, or earlier if anything native needs it.
        queueMicrotask(() => this.#flushRegistrations())
      }
      if (pending.names === null && name !== id) pending.names = pending.ids.slice()
      if (pending.phases === null && phase !== ShutdownPhase.Stop) pending.phases = pending.ids.map(() => 0)
      pending.ids.push(id)
      pending.names?.push(name)
      pending.phases?.push(phase === ShutdownPhase.Stop ? 0 : 1)
      pending.priorities.push(priority)
    } else {
      // The native graph decides (a duplicate id, a loop, a level rule, a shutdown under way), in order.
      this.#flushRegistrations()
      this.#native.register(id, name, priority, phase, dependsOn)
      for (const dependency of dependsOn) this.#dependedOn.add(dependency)
    }
    this.#tasks.set(id, entry)
    return id
  }

  /** Sends the deferred registrations to the native side, in their order. They cannot fail (registerTask). */
  #flushRegistrations() {
    const pending = this.#pending
    if (pending === null) return
    this.#pending = null
    const { ids, names, priorities, phases } = pending
    const sent = this.#native.registerMany(
      ids.join('\0'),
      names?.join('\0') ?? null,
      Float64Array.from(priorities),
      phases === null ? new Uint8Array(ids.length) : Uint8Array.from(phases),
    )
    if (sent) return
    // An id or a name holds the NUL that separates them in a burst: one at a time, in the same order.
    for (let i = 0; i < ids.length; i++) {
      const phase = phases?.[i] === 1 ? ShutdownPhase.Destroy : ShutdownPhase.Stop
      this.#native.register(ids[i], names?.[i] ?? ids[i], priorities[i], phase, [])
    }
  }

  /** Removes a task; returns whether it was registered. */
  unregisterTask(id) {
    validateTaskId('id', id)
    this.#flushRegistrations()
    const removed = this.#native.unregister(id)
    this.#tasks.delete(id)
    if (removed) this.#untrack(id)
    return removed
  }

  /** The task of a tracker was unregistered: the server, child or cluster is left alone from now on. */
  #untrack(id) {
    const tracker = this.#trackers.get(id)
    if (tracker === undefined) return
    this.#trackers.delete(id)
    this.#servers.delete(tracker)
    this.#clusterTrackers.delete(tracker)
    tracker.untrack()
  }

  /**
   * Shuts down: runs every task in order and resolves with the result. A second call, or a signal during the
   * shutdown, joins it and gets the same result. The process keeps running unless `exit: true`, or a signal,
   * the supervisor's message or an error began or joins the shutdown (then it exits once what the caller
   * chained to the promise is done).
   */
  stop(options) {
    let opts
    try {
      opts = validateStopOptions(options, this.#config)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#run) {
      if (opts.exit) this.#joinWithExit()
      else this.#run.joinedByStop()
      return this.#run.promise
    }
    try {
      return this.#begin(opts.reason, opts.timeout, { exit: opts.exit, byStop: true })
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Gives the signals and the error hooks back. A running shutdown carries on, and `stop()` still works. A
   * signal that arrived before, and that JavaScript had not heard of yet, is not lost: its shutdown runs.
   */
  dispose() {
    // The process's manager no longer is one: processManager() says so, rather than hand libraries a
    // manager that hears no signal.
    if (process[PROCESS_MANAGER] === this) delete process[PROCESS_MANAGER]
    this.#disposed = true
    clearTimeout(this.#readyRetry)
    this.#readyRetry = undefined
    let undelivered = null
    if (this.#ownsSignals) {
      undelivered = this.#native.releaseSignals()
      if (process[SIGNAL_OWNER]?.manager === this) delete process[SIGNAL_OWNER]
      if (ShutdownManager.#signalOwner === this) ShutdownManager.#signalOwner = null
      this.#ownsSignals = false
      process.removeListener('beforeExit', this.#deliverLateSignal)
    } else if (process[SIGNAL_OWNER]?.manager === this) {
      // Held for an unclaimed manager (see #reserveSignals).
      delete process[SIGNAL_OWNER]
    }
    for (const tracker of this.#clusterTrackers) tracker.dispose()
    this.#clusterTrackers.clear()
    if (this.#ipcListener) {
      const { onMessage, onRemoved } = this.#ipcListener
      this.#ipcListener = null // first: onRemoved then leaves the count to this
      process.removeListener('removeListener', onRemoved)
      // Removing the listener takes a reference off the channel that #hookIpc had already given back: given
      // again, unless another library had removed it (onRemoved mended the count then) and it is not back.
      if (process.listeners('message').includes(onMessage)) {
        process.removeListener('message', onMessage)
        ipcChannel()?.refCounted?.()
      }
    }
    if (this.#errorListeners) {
      const hooks = this.#errorListeners
      this.#errorListeners = null
      errorHooked().delete(this)
      for (const [event, listener] of Object.entries(hooks)) process.removeListener(event, listener)
    }
    if (undelivered) this.#onNativeEvent({ kind: 'signal', signal: undelivered })
  }

  /**
   * Creates the run and starts it; returns its promise. Throws if the shutdown cannot begin (it is already
   * being run elsewhere): stop() turns that into a rejection its caller sees, and internal callers log it.
   * Once the run has begun, nothing it does throws: handlers, listeners and the logger are isolated.
   */
  #begin(reason, timeout, runOptions, signal = undefined) {
    this.#flushRegistrations()
    this.#listen()
    // The run made ahead (#preparedRun), or a new one if an earlier begin took it and then refused.
    const run = this.#preparedRun ?? this.#makeRun()
    this.#preparedRun = null
    this.#run = run
    try {
      return run.start(reason, timeout, signal, runOptions)
    } catch (error) {
      if (!run.reason) this.#run = null // it never began
      throw error
    }
  }

  #makeRun() {
    return new ShutdownRun({
      native: this.#native,
      tasks: this.#tasks,
      emit: (event, payload) => this.#safeEmit(event, payload),
      listens: (event) => this.listenerCount(event) > 0,
      logger: this.#config.logger,
      exitCodes: this.#config.exitCodes,
      shutdownDelay: this.#config.shutdownDelay,
      destroyReserve: this.#config.destroyReserve,
      gracefulShutdownTimeout: this.#config.gracefulShutdownTimeout,
      stillAliveReportDelay: this.#config.stillAliveReportDelay,
      // Each server on its own: beginning to close adds listeners to the server, which runs the application's
      // 'newListener' listeners; one that throws must neither stop a shutdown that has begun nor keep the
      // other servers from closing. Its drain still runs: its responses in flight and its idle connections
      // close; requests that arrive during the delay may keep their connections open.
      onStart: () => {
        for (const server of this.#servers) {
          try {
            server.beginClosing()
          } catch (error) {
            this.#config.logger.error(
              `server ${quoted(server.id)} could not begin closing its connections; its drain goes on: ${describeMessage(error)}`,
              { taskId: server.id, err: error },
            )
          }
        }
      },
      onStillAlive: (afterMs) => this.#reportStillAlive(afterMs),
    })
  }

  /**
   * A shutdown that did not exit finished `afterMs` ago and the process is still alive: says what keeps it
   * so, in the log and as an event.
   */
  #reportStillAlive(afterMs) {
    const handles = this.activeHandles()
    const list = handles.map((h) => `${h.type}: ${h.detail}`)
    this.#config.logger.warn(
      `the process is still alive ${afterMs} ms after the shutdown finished; ` +
        (list.length ? `it is kept alive by ${list.join('; ')}` : 'nothing Node reports keeps it alive'),
      { afterMs, handles },
    )
    this.#safeEmit(ShutdownEvent.ShutdownStillAlive, { afterMs, handles })
  }

  /**
   * The hard exit also writes Node's diagnostic report into `directory`. Node puts a report under
   * `process.report.directory` when one is set, so the path it is given is then relative to that.
   */
  #setDiagnosticReport(directory) {
    const support = this.#native.stackSupport()
    if (!support.diagnosticReport) {
      process.emitWarning(
        `diagnosticReport is not supported here (${support.reason ?? `not on ${process.platform} yet`}); the hard exit ` +
          'writes no diagnostic report',
        { type: 'TitanLifecycleWarning', code: 'TITAN_LIFECYCLE_DIAGNOSTIC_REPORT_UNAVAILABLE' },
      )
      return
    }
    // Read once, here: a process.report.directory set later is not followed. Relative between real paths:
    // the kernel follows `..` from where a symbolic link leads, not from the link.
    const reportDirectory = process.report?.directory
    const real = (dir) => {
      try {
        return realpathSync.native(dir)
      } catch {
        return path.resolve(dir)
      }
    }
    const forNode = reportDirectory ? path.relative(real(reportDirectory), real(directory)) || '.' : directory
    this.#native.setDiagnosticReport({ forNode, shown: directory })
  }

  #joinWithExit(fatal = false) {
    // An error, a signal or a message that comes while the watchdog writes its report and exits (a loop that
    // answered the deadline): the process is already ending with the code the shutdown reported.
    if (this.#run.exitsByWatchdog) return
    if (this.#run.concluded) {
      // The shutdown already ran without exiting; what is asked now is the exit it did not do. The native
      // side hears of it first: a signal during 'exit' listeners then exits with the same code, and the
      // shutdown's deadline, if still ahead, bounds those listeners.
      const code = this.#run.exitCodeNow(fatal)
      this.#native.exitAfterFinish(code)
      process.exit(code)
    }
    this.#run.requestExit({ fatal })
  }

  /**
   * Compiles the shutdown path before a signal needs it: the first shutdown of a process otherwise spends
   * about 0.3 ms compiling its own code between the signal and the first task. It passes a no-op event
   * the way a signal comes, through #dispatchSignal (to the owner of the signals, if any) and
   * #onNativeEvent, and runs one real shutdown of one no-op task on a throwaway manager that binds nothing
   * process-wide and never exits. Once per process is enough: compiled code is shared.
   */
  #warmUp() {
    // The dispatcher too: the first signal compiled it, 30-90 µs on the way to the first task.
    const owner = ShutdownManager.#signalOwner
    ShutdownManager.#dispatchSignal({ kind: 'warm-up' })
    if (owner !== this) this.#onNativeEvent({ kind: 'warm-up' })
    const quiet = { info() {}, warn() {}, error() {} }
    const throwaway = new ShutdownManager({
      disableGracefulShutdown: true,
      hardExit: false,
      stallThreshold: 0,
      stillAliveReportDelay: 0,
      logger: quiet,
    })
    throwaway.registerTask({ id: 'titan-lifecycle:warm-up', handler: ({ abortSignal }) => abortSignal })
    throwaway.stop()
  }

  /**
   * The watchdog's events arrive at #onNativeEvent through a weak threadsafe function, which the native
   * side keeps only while it may need it (it would otherwise keep this manager alive forever): this sets it
   * again before each need. An owner sets it when it takes the signals and keeps it until it gives them
   * back, so the way from a signal to the first task makes no call here.
   */
  #listen() {
    if (this.#ownsSignals) return
    if (this.#native.enforced || this.#config.stallThreshold > 0) this.#setListener()
  }

  #setListener() {
    this.#native.listen((event) => this.#onNativeEvent(event))
  }

  #onNativeEvent(event) {
    try {
      switch (event.kind) {
        case 'signal':
          // Handled here rather than in a method of its own: the warm-up event compiles this whole function.
          if (this.#run) {
            this.#config.logger.info(
              `received ${event.signal} during the shutdown; the process will exit when it ends`,
              {
                signal: event.signal,
              },
            )
            this.#joinWithExit()
          } else {
            // The native side begins this shutdown (if the watchdog has not already), with its reason and
            // its deadline counted from the instant the signal handler ran.
            try {
              this.#begin(ShutdownReason.Signal, this.#config.gracefulShutdownTimeout, { exit: true }, event.signal)
            } catch (error) {
              this.#exitUnbegun(error)
            }
          }
          return
        case 'probe':
          // The watchdog asks, shortly before a deadline, whether this loop is free: answering is the answer.
          this.#native.answerProbe()
          return
        case 'stall-probe': {
          // While a shutdown runs: answering measures how long the loop took; a stall comes back to report.
          const stall = this.#native.answerStallProbe()
          if (stall) this.#run?.onStall(stall)
          return
        }
        case 'deadline':
          // A finished run answers, or exits if it is waiting for a stop() caller's continuations.
          if (this.#run) this.#run.onDeadline()
          else this.#native.answerDeadline()
          return
        case 'displaced':
          this.#config.logger.warn(event.detail, { signal: event.signal })
          return
        case 'warm-up':
          // Compiles this function and the emitter ahead of a real event (see #warmUp).
          this.#safeEmit('titan-lifecycle:warm-up', undefined)
          return
      }
    } catch (error) {
      this.#config.logger.error(`internal error handling a native ${event.kind} event: ${describeMessage(error)}`, {
        err: error,
      })
    }
  }

  /** Refuses the signals to this manager if another one, of any copy of the package, owns or holds them. */
  #refuseIfSignalsOwned() {
    const owner = process[SIGNAL_OWNER]
    if (owner && owner.manager !== this) {
      // The native side's words for the condition, and which copy of the package owns them.
      const byRegister = owner.manager !== undefined && owner.manager === process[PROCESS_MANAGER]
      throw lifecycleError(
        'ERR_SIGNALS_OWNED',
        `${native.errorMessage('ERR_SIGNALS_OWNED')} (owned by titan-lifecycle ${owner.version} loaded from ${owner.path}` +
          `${byRegister ? ', the manager titan-lifecycle/register made: add tasks to processManager()' : ''})`,
      )
    }
  }

  #ownSignals() {
    // A worker thread is refused natively (ERR_NOT_MAIN_THREAD): the native side compares this thread's
    // event loop with the process's main loop, which costs nothing at load, unlike node:worker_threads.
    this.#refuseIfSignalsOwned()
    const { signals, gracefulShutdownTimeout, forceExitOnSecondSignal, exitCodes, exclusiveSignals } = this.#config
    const numbers = signals.map((name) => native.ownableSignalNumber(name))
    const secondSignalCode = exitCodes.secondSignal === 'signal' ? undefined : exitCodes.secondSignal
    this.#native.ownSignals(
      {
        signals: numbers,
        budgetMs: gracefulShutdownTimeout,
        escalate: forceExitOnSecondSignal,
        secondSignalCode,
        exclusive: exclusiveSignals,
      },
      ShutdownManager.#dispatchSignal,
    )
    this.#ownsSignals = true
    ShutdownManager.#signalOwner = this
    this.#setListener()
    process.on('beforeExit', this.#deliverLateSignal)
    this.#markSignalOwner()
  }

  /** Marks this manager as the one that owns (or, unclaimed, holds) the signals, for every copy to see. */
  #markSignalOwner() {
    const manager = this
    Object.defineProperty(process, SIGNAL_OWNER, {
      value: {
        manager: this,
        path: packageDirectory ?? 'a bundle (an ES module)',
        /** Whether the owner answers uncaught errors: asked by the other managers, of any copy. */
        get handlesErrors() {
          return manager.#errorListeners !== null
        },
        get version() {
          return require('./package.json').version
        },
      },
      configurable: true,
      enumerable: false,
      writable: false,
    })
  }

  #hookIpc() {
    const onMessage = (message) => {
      if (message !== this.#config.ipcMessage) return
      if (this.#run) {
        this.#config.logger.info(
          `received the '${message}' message during the shutdown; the process will exit when it ends`,
          {
            message,
          },
        )
        this.#joinWithExit()
        return
      }
      try {
        this.#begin(ShutdownReason.Signal, this.#config.gracefulShutdownTimeout, { exit: true, message })
      } catch (error) {
        this.#exitUnbegun(error)
      }
    }
    const listen = () => {
      process.on('message', onMessage)
      // A 'message' listener keeps the IPC channel, and so the process, alive: ours must not. Node counts
      // those listeners; this takes ours off the count (a listener of the service's own still counts).
      ipcChannel()?.unrefCounted?.()
    }
    // Another library removing ours (`process.removeAllListeners('message')`) takes it off Node's count a
    // second time: the count goes below zero, and a 'message' listener the service adds later no longer
    // keeps the channel alive. The count is mended at once, and ours put back on the next tick (as the
    // error hooks are), so the supervisor's message is still heard. `removeAllListeners()` with no argument
    // also takes this watcher (after it has seen ours go, so it is put back too) and Node's own listeners
    // that keep the count: the count cannot be kept right after that, and ours is put back all the same.
    let restoreScheduled = false
    const pace = restorePacer()
    const restore = () => {
      restoreScheduled = false
      if (this.#ipcListener?.onMessage !== onMessage) return
      // (Node's types list this event for `on` but not for `listeners`.)
      const watching = process.listeners(/** @type {any} */ ('removeListener')).includes(onRemoved)
      if (!watching) process.on('removeListener', onRemoved)
      if (process.listeners('message').includes(onMessage)) {
        pace.settled()
        return
      }
      const when = pace()
      const reportFight = () =>
        this.#config.logger.error(
          "another library removes the manager's 'message' listener as soon as it is back; it is put back in " +
            'each turn of the event loop',
          { events: ['message'] },
        )
      if (putOff(when, restore, reportFight)) {
        restoreScheduled = true
        return
      }
      listen()
      if (when !== 'now') return
      this.#config.logger.warn("another library removed the manager's 'message' listener; it is back", {
        event: 'message',
      })
    }
    const onRemoved = (event, listener) => {
      if (this.#ipcListener?.onMessage !== onMessage) return // disposed
      if (event !== 'message' || listener !== onMessage) return
      ipcChannel()?.refCounted?.()
      if (restoreScheduled) return
      restoreScheduled = true
      process.nextTick(restore)
    }
    listen()
    process.on('removeListener', onRemoved)
    this.#ipcListener = { onMessage, onRemoved }
  }

  /**
   * Whether this manager answers an uncaught error for the process. One does, as one answers its signals:
   * the signal owner if it handles errors, else the first made of those that do whose shutdown has not
   * ended (the first made, once every one's has). Each would otherwise begin a shutdown that exits: a
   * manager of a library (`signals: []`, with no tasks) finished its own at once and exited 1 before the
   * service's tasks had run; and a manager whose stop() had ended took the error for one during its shutdown
   * and exited, while another's tasks never ran. `state` is read, not a private field: the managers may be
   * of other copies of the package.
   */
  #answersErrors() {
    const owner = process[SIGNAL_OWNER]
    if (owner?.handlesErrors) return owner.manager === this
    const hooked = errorHooked()
    const first = hooked.values().next().value
    const skipping = skipsEndedShutdowns()
    let live = null
    for (const manager of hooked) {
      if (!skipping.has(manager)) return first === this // an older copy's manager: its rule (see skipsEndedShutdowns)
      if (live === null && manager.state !== 'stopped') live = manager
    }
    return (live ?? first) === this
  }

  #hookErrors() {
    const onFatal = (reason, error) => {
      if (!this.#answersErrors()) return
      const kind = reason === ShutdownReason.UncaughtException ? 'uncaught exception' : 'unhandled rejection'
      if (this.#run) {
        // Errors keep coming while a shutdown runs (some from the shutdown's own output, such as a write to
        // a broken stderr): each joins it, but only the first few are logged, so none can feed a loop.
        this.#errorsDuringShutdown++
        if (this.#errorsDuringShutdown <= MAX_ERRORS_LOGGED) {
          this.#config.logger.error(`${kind} during the shutdown: ${describeMessage(error)}`, { err: error })
        } else if (this.#errorsDuringShutdown === MAX_ERRORS_LOGGED + 1) {
          this.#config.logger.error('more uncaught errors during the shutdown; they are not logged')
        }
        this.#joinWithExit(true)
        return
      }
      this.#config.logger.error(`${kind}, shutting down: ${describeMessage(error)}`, { err: error })
      try {
        this.#begin(reason, this.#config.gracefulShutdownTimeout, { exit: true, fatal: true })
      } catch (beginError) {
        this.#exitUnbegun(beginError)
      }
    }
    // One error reaches the hooks once. Node delivers an error to every copy of a listener: code that saved
    // the process's listeners and put them back after ours had been put back holds a second copy (taken off
    // on the next tick, below). Until then the same value is answered once in a tick; for rejections only an
    // object is compared (two rejections with `undefined` are two; copies are gone before rejections come).
    let delivered = NOTHING_DELIVERED
    const answeredThisTick = (error, anyValue) => {
      if (!anyValue && ((typeof error !== 'object' && typeof error !== 'function') || error === null)) return false
      if (delivered === NOTHING_DELIVERED) process.nextTick(() => (delivered = NOTHING_DELIVERED))
      const seen = delivered !== NOTHING_DELIVERED && Object.is(delivered, error)
      delivered = error
      return seen
    }
    // Under --unhandled-rejections=strict, Node raises a rejection as an uncaught exception (with a wrapper
    // when its reason is not an Error: its message says little of an object), answered at once, then emits
    // 'unhandledRejection' with the reason itself in the same tick: not answered again, but its reason is
    // logged where the wrapper hid it.
    let raisedRejections = 0
    const hooks = {
      uncaughtException: (error, origin) => {
        if (answeredThisTick(error, true)) return
        if (origin === 'unhandledRejection') {
          if (raisedRejections++ === 0) process.nextTick(() => (raisedRejections = 0))
          onFatal(ShutdownReason.UnhandledRejection, error)
        } else {
          onFatal(ShutdownReason.UncaughtException, error)
        }
      },
      unhandledRejection: (reason) => {
        const seen = answeredThisTick(reason, false)
        if (raisedRejections > 0) {
          raisedRejections--
          // Within the cap on errors logged during a shutdown (see onFatal): a logger that fails by
          // rejecting would otherwise feed a loop here.
          if (!seen && this.#answersErrors() && this.#errorsDuringShutdown <= MAX_ERRORS_LOGGED) {
            this.#config.logger.error(`the unhandled rejection's reason: ${describeMessage(reason)}`, { err: reason })
          }
          return
        }
        if (!seen) onFatal(ShutdownReason.UnhandledRejection, reason)
      },
      // Libraries do remove these (`process.removeAllListeners()` takes every listener of every event). Put
      // ours back on the next tick: during removeAllListeners Node is still walking the listener array, and
      // re-adding inside it is unsafe. An exception thrown in the same tick as the removal finds no hook.
      removeListener: (event, listener) => {
        if (listener !== hooks[event] || this.#errorListeners !== hooks || restoreScheduled) return
        restoreScheduled = true
        process.nextTick(restore)
      },
      // Code that saved the listeners before ours were put back, and puts its copy back later (a test
      // runner's), adds a second copy: taken off on the next tick, so copies do not pile up (every copy,
      // once the manager is disposed).
      newListener: (event, listener) => {
        if (listener !== hooks[event] || !process.listeners(event).includes(listener)) return
        process.nextTick(() => {
          const keep = this.#errorListeners === hooks ? 1 : 0
          while (process.listeners(event).filter((l) => l === listener).length > keep) {
            process.removeListener(event, listener)
          }
        })
      },
    }
    let restoreScheduled = false
    const pace = restorePacer()
    const restore = () => {
      restoreScheduled = false
      if (this.#errorListeners !== hooks) return // disposed meanwhile
      // The hooks' names are process events ('uncaughtException', ...), which Object.entries widens.
      const entries = /** @type {[any, (...args: any[]) => void][]} */ (Object.entries(hooks))
      const missing = entries.filter(([event, listener]) => !process.listeners(event).includes(listener))
      if (missing.length === 0) {
        pace.settled()
        return
      }
      const when = pace()
      const reportFight = () =>
        this.#config.logger.error(
          `another library removes the manager's ${missing.map(([event]) => `'${event}'`).join(', ')} ` +
            'listeners as soon as they are back; they are put back in each turn of the event loop',
          { events: missing.map(([event]) => event) },
        )
      if (putOff(when, restore, reportFight)) {
        restoreScheduled = true
        return
      }
      for (const [event, listener] of missing) {
        process.on(event, listener)
        if (when === 'now' && event !== 'removeListener' && event !== 'newListener') {
          this.#config.logger.warn(`another library removed the manager's '${event}' listener; it is back`, { event })
        }
      }
    }
    this.#errorListeners = hooks
    errorHooked().add(this)
    skipsEndedShutdowns().add(this)
    for (const [event, listener] of Object.entries(hooks)) process.on(event, listener)
  }

  /**
   * A shutdown the process was told to make (a signal, the supervisor's message, an uncaught error) could
   * not begin: only a bug of ours can do that (ERR_INTERNAL_ASSERTION, refused before anything began). The
   * process was told to stop and must not run on, after an uncaught error least of all: it exits at once
   * with the error code, its tasks not run. (`stop()` instead rejects, and its caller decides.)
   */
  #exitUnbegun(error) {
    this.#config.logger.error(`the shutdown could not begin, exiting at once: ${describeMessage(error)}`, {
      err: error,
    })
    process.exit(this.#config.exitCodes.error)
  }

  /** Calls each listener on its own, so one that throws (or rejects) neither breaks the shutdown nor the rest. */
  #safeEmit(event, payload) {
    // Most events of a large shutdown have no listener: no copy of an empty listener list for them.
    if (this.listenerCount(event) === 0) return
    for (const listener of this.rawListeners(event)) {
      try {
        const returned = Reflect.apply(listener, this, [payload])
        if (typeof returned?.then === 'function') {
          returned.then(undefined, (error) => this.#listenerFailed(event, error))
        }
      } catch (error) {
        this.#listenerFailed(event, error)
      }
    }
  }

  #listenerFailed(event, error) {
    this.#config.logger.error(`a '${event}' listener threw; the shutdown goes on: ${describeMessage(error)}`, {
      event,
      err: error,
    })
  }
}

/**
 * Where the manager `titan-lifecycle/register` made for the process is kept: on `process`, as the signal
 * owner is, so that every copy of the package finds it (a platform's `NODE_OPTIONS` loads register from
 * one copy, the application requires its own; a copy-local variable left the application no manager, and
 * no way to make one, as register's owns the signals).
 */
const PROCESS_MANAGER = Symbol.for('titan-lifecycle.process-manager')

/**
 * The process's manager, made by `node --require titan-lifecycle/register` (or `--import`) from the
 * environment; undefined without it, where register leaves the process alone (a package manager's own,
 * the REPL, `node -e`, worker threads: see register.js), and once that manager is disposed. Asking for it
 * claims it (see #unclaimed), unless `claim: false`: a library adds its tasks that way, and they run if the
 * application claims the manager, while a script that never does stays as it would be without register.
 */
function processManager(options) {
  let claim = true
  if (options !== undefined) {
    loadInternals()
    claim = validateProcessManagerOptions(options)
  }
  const manager = /** @type {any} */ (process)[PROCESS_MANAGER]
  // An older copy's manager has no claim to make.
  if (claim) manager?.[CLAIM]?.()
  return manager
}

ShutdownManager.prototype.registerShutdownTask = ShutdownManager.prototype.registerTask
ShutdownManager.prototype.unregisterShutdownTask = ShutdownManager.prototype.unregisterTask

module.exports = {
  ShutdownManager,
  ShutdownReason,
  ShutdownPriority,
  ShutdownEvent,
  ShutdownPhase,
  /** Titan's name for ShutdownEvent. */
  ApplicationEvent: ShutdownEvent,
  processManager,
}
// Not part of the documented API (non-enumerable, untyped in index.d.ts): `makeProcessManager` for
// register.js; `native` (the addon's exports) and `nativeFile` (the file they came from) for lib/ and the
// tests.
Object.defineProperties(module.exports, {
  makeProcessManager: {
    value: (options) => {
      makingProcessManager = true
      let manager
      try {
        manager = new ShutdownManager(options)
      } finally {
        makingProcessManager = false
      }
      // Not enumerable: nothing that lists `process`'s keys sees it.
      // Configurable, so that its dispose() can take it back (see dispose).
      if (process[PROCESS_MANAGER] === undefined) {
        Object.defineProperty(process, PROCESS_MANAGER, { value: manager, configurable: true })
      }
    },
  },
  native: { value: native },
  nativeFile: { value: nativeFile },
})
