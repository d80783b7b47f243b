'use strict'
// Runs fixtures as real child processes and collects what they report.
//
// A fixture writes one JSON object per line to stdout (see fixtures/report.cjs); `{ kind: 'ready' }` means
// it is ready for signals. Times are milliseconds on CLOCK_MONOTONIC (process.hrtime), which parent and
// child share, so the parent can compare "when I sent the signal" with "when the child did something".
// Every child has its own kill timer, so a regression that hangs fails the test instead of stalling CI.

const { spawn, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const FIXTURES = path.join(__dirname, 'fixtures')
const now = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Starts `fixtures/<name>` (or an absolute path) with `args`. Returns { child, ready, exited, lines, output }:
 * - `ready` resolves once the fixture printed its ready line;
 * - `exited` resolves to { code, signal, stdout, stderr, lines, exitedAt, killedByTimer };
 * - `output()` is what it has printed so far, as { stdout, stderr }.
 * `node` runs it with another Node binary; `command` runs it under a wrapper (e.g. unshare), before node.
 * `stallStderr: true` never reads the child's stderr, so a pipe nobody drains fills up (a stalled log
 * collector); `resumeStderr()` starts reading it.
 */
function start(
  name,
  args = [],
  { killAfterMs = 15_000, env = {}, cwd, node = process.execPath, command = [], stallStderr = false } = {},
) {
  const script = path.isAbsolute(name) ? name : path.join(FIXTURES, name)
  return launch([...command, node, script, ...args.map(String)], { killAfterMs, env, cwd, stallStderr })
}

/**
 * Runs any command the way `start` runs a fixture (the same `ready`, `exited`, `lines`). `detached: true`
 * makes it the leader of a new process group, which `process.kill(-child.pid, signal)` signals as a whole.
 */
function launch(argv, { killAfterMs = 15_000, env = {}, cwd, stallStderr = false, detached = false } = {}) {
  const stalled = stallStderr ? stalledPipe() : null
  const child = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', stalled ? stalled.writeEnd : 'pipe'],
    env: { ...process.env, ...env },
    cwd,
    detached,
  })
  let stdout = ''
  let stderr = ''
  const lines = []
  let markReady
  const ready = new Promise((resolve) => {
    markReady = resolve
  })
  child.stdout.setEncoding('utf8')
  let pending = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    pending += chunk
    let newline
    while ((newline = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      let line
      try {
        line = JSON.parse(text)
      } catch {
        continue
      }
      lines.push(line)
      if (line.kind === 'ready') markReady(line)
    }
  })
  let resumeStderr
  if (stalled) {
    fs.closeSync(stalled.writeEnd)
    resumeStderr = () => stalled.startReading((text) => (stderr += text))
  } else {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
  }
  let killedByTimer = false
  const timer = setTimeout(() => {
    killedByTimer = true
    // A command that failed to start has no pid (its 'close' comes with the spawn error).
    if (child.pid === undefined) return
    if (detached) process.kill(-child.pid, 'SIGKILL')
    else child.kill('SIGKILL')
  }, killAfterMs)
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      markReady(null)
      // Whatever a late reader got, then our end closes: a grandchild still writing there ends with EPIPE.
      stalled?.close()
      resolve({ code, signal, stdout, stderr, lines, exitedAt: now(), killedByTimer })
    })
  })
  return { child, ready, exited, lines, output: () => ({ stdout, stderr }), resumeStderr }
}

/**
 * A named pipe for a child's stderr that nobody reads until `startReading` (a stalled log collector): unlike
 * the socket pair Node makes for 'pipe', no stream in this process reads it up to a high-water mark.
 */
function stalledPipe() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-lifecycle-stall-'))
  const fifo = path.join(dir, 'stderr')
  execFileSync('mkfifo', [fifo])
  const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  const writeEnd = fs.openSync(fifo, fs.constants.O_WRONLY)
  let poller = null
  const drain = (onText) => {
    const buffer = Buffer.alloc(1 << 16)
    for (;;) {
      let n
      try {
        n = fs.readSync(readEnd, buffer)
      } catch (error) {
        if (error.code === 'EAGAIN') return
        throw error
      }
      if (n === 0) return
      onText(buffer.toString('utf8', 0, n))
    }
  }
  return {
    writeEnd,
    startReading(onText) {
      drain(onText)
      poller = setInterval(() => drain(onText), 1)
    },
    close() {
      if (poller) {
        clearInterval(poller)
        poller = null
      }
      try {
        fs.closeSync(readEnd)
      } catch {}
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
function within(ms, what, promise) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Runs `scenario()` again, up to `attempts` runs in all, while `missed(result)` says why this run could not
 * show what the test is about: a step the machine had to take within a few milliseconds (a 20 ms grace, a
 * reader waking within a 50 ms budget) came late because the process was not scheduled. Returns the last
 * run's result for the test to assert on as usual, so a regression that makes every run miss still fails.
 * Each retry is said in the test's diagnostics.
 */
async function rerunWhileMissed(t, attempts, scenario, missed) {
  for (let attempt = 1; ; attempt++) {
    const result = await scenario()
    const why = missed(result)
    if (!why || attempt === attempts) return result
    t.diagnostic(`run ${attempt} of ${attempts} missed its timing (${why}); running it again`)
  }
}

/** Resolves once `predicate()` holds, polling every 5 ms; rejects after `timeoutMs`. */
async function waitFor(predicate, timeoutMs = 5000, what = 'a condition') {
  const giveUp = now() + timeoutMs
  while (!predicate()) {
    if (now() > giveUp) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by whoever inherited it) does not. */
function isRunning(pid) {
  if (process.platform !== 'linux') return isRunningByPs(pid)
  try {
    return !/^\S+ \(.*\) [ZX] /s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * isRunning where there is no /proc (macOS): ps exits 1 for no such process; a zombie's state starts with Z.
 * Any other failure (no ps at all) throws, rather than pass for "not running".
 */
function isRunningByPs(pid) {
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8', timeout: 5000 }).trim()
    return state !== '' && !state.startsWith('Z')
  } catch (error) {
    if (error.status === 1) return false
    throw error
  }
}

/** Test options for a test of something only Linux has (a /proc file, an abstract socket). */
function onLinux(what) {
  return process.platform === 'linux' ? {} : { skip: `needs ${what}, which only Linux has` }
}

/** Sends `signal` to the child and returns the monotonic time it was sent. */
function kill(child, signal) {
  const at = now()
  process.kill(child.pid, signal)
  return at
}

/** The names of the shutdown events the fixture reported, in order. */
function eventNames(lines) {
  return lines.filter((l) => l.kind === 'event').map((l) => l.event)
}

/** The reported line of a given kind (and matching `where`), or undefined. */
function find(lines, kind, where = {}) {
  return lines.find((l) => l.kind === kind && Object.entries(where).every(([k, v]) => l[k] === v))
}

/** Runs a fixture to the end with no signal: for scenarios that drive themselves. */
async function run(name, args = [], options = {}) {
  return start(name, args, options).exited
}

/**
 * The environment for a fixture with the native neighbour, which replaces SIGTERM's handler `delayMs` after
 * the fixture makes the file NEIGHBOUR_AFTER_FILE names (see native-neighbour.c and guarantee.cjs).
 */
function neighbourAfterFixture(delayMs) {
  const file = path.join(os.tmpdir(), `titan-lifecycle-neighbour-go-${process.pid}-${++neighbourFiles}`)
  fs.rmSync(file, { force: true })
  return { LD_PRELOAD: neighbourLibrary(), NEIGHBOUR_DELAY_MS: String(delayMs), NEIGHBOUR_AFTER_FILE: file }
}
let neighbourFiles = 0

/** The native neighbour (fixtures/native-neighbour.c), compiled (see compiledLibrary). */
function neighbourLibrary() {
  return compiledLibrary('native-neighbour.c')
}

/**
 * A C fixture compiled as a shared library with the machine's gcc, once per content and flags: the library
 * goes to the temporary directory under their hash, written beside and renamed, so test files running in
 * parallel never see half a file. It is never unmapped once loaded (`-z nodelete`): `process.dlopen()`
 * closes a library that is not an addon, and a signal handler it installed must stay callable.
 */
function compiledLibrary(name) {
  const source = path.join(FIXTURES, name)
  const flags = ['-shared', '-fPIC', '-O2', '-Wall', '-Wl,-z,nodelete']
  const hash = crypto
    .createHash('sha256')
    .update(fs.readFileSync(source))
    .update(flags.join(' '))
    .digest('hex')
    .slice(0, 16)
  const library = path.join(os.tmpdir(), `titan-lifecycle-${path.basename(name, '.c')}-${hash}.so`)
  if (!fs.existsSync(library)) {
    const partial = `${library}.${process.pid}`
    execFileSync('gcc', [...flags, '-o', partial, source, '-lpthread'])
    fs.renameSync(partial, library)
  }
  return library
}

/**
 * Test options for a test that runs the given commands (gcc, openssl, python3...). A test normally runs and
 * fails loudly when one is missing. With TITAN_LIFECYCLE_SKIP_MISSING_TOOLS=1 (the full suite inside the
 * small musl root of `npm run test:cross`, which has a musl Node and nothing else) it is skipped instead, and
 * the skip names the missing command, so the count of skipped tests says what did not run.
 */
function needs(...commands) {
  if (process.env.TITAN_LIFECYCLE_SKIP_MISSING_TOOLS !== '1') return {}
  const onPath = (command) =>
    (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
      try {
        fs.accessSync(path.join(dir, command), fs.constants.X_OK)
        return true
      } catch {
        return false
      }
    })
  const missing = commands.filter((command) => !onPath(command))
  return missing.length ? { skip: `needs ${missing.join(', ')}, which this system does not have` } : {}
}

/** The command line of `npm start` with the given script shell ('sh' or 'bash'). */
function npmStart(shell) {
  return ['npm', 'start', '--silent', `--script-shell=${shell}`]
}

/** A fresh directory (its real path: macOS's temporary directory is behind a symlink), removed after test `t`. */
function scratchDirectory(t, name) {
  const directory = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `titan-lifecycle-${name}-`)))
  t.after(() => fs.rmSync(directory, { recursive: true, force: true }))
  return directory
}

/**
 * Copies the package's JavaScript (index.js, lib/, package.json) from this checkout into `directory`, with
 * `also` (other entries of the checkout, such as its addon files): a copy of the package loaded by path.
 */
function copyPackage(directory, also = []) {
  const root = path.join(__dirname, '..')
  for (const entry of ['index.js', 'lib', 'package.json', ...also]) {
    fs.cpSync(path.join(root, entry), path.join(directory, entry), { recursive: true })
  }
  return directory
}

/**
 * The addon file index.js loads in this process: a checkout may hold several builds (a local musl one
 * beside the glibc one), and the loader picks one for this platform.
 */
function loadedAddonFile() {
  return require('..').nativeFile
}

module.exports = {
  start,
  scratchDirectory,
  copyPackage,
  loadedAddonFile,
  isRunning,
  isRunningByPs,
  onLinux,
  launch,
  npmStart,
  needs,
  kill,
  run,
  waitFor,
  within,
  rerunWhileMissed,
  eventNames,
  find,
  now,
  neighbourLibrary,
  compiledLibrary,
  neighbourAfterFixture,
  FIXTURES,
}
