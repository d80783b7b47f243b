'use strict'
// Runs fixtures as real child processes and collects what they report.
//
// A fixture writes one JSON object per line to stdout (see fixtures/report.cjs); `{ kind: 'ready' }` means
// it is ready for signals. Times are milliseconds on CLOCK_MONOTONIC (process.hrtime), which parent and
// child share, so the parent can compare "when I sent the signal" with "when the child did something".
// Every child has its own kill timer, so a regression that hangs fails the test instead of stalling CI.

const { spawn } = require('node:child_process')
const path = require('node:path')

const FIXTURES = path.join(__dirname, 'fixtures')
const now = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Starts `fixtures/<name>` (or an absolute path) with `args`. Returns { child, ready, exited, lines, output }:
 * - `ready` resolves once the fixture printed its ready line;
 * - `exited` resolves to { code, signal, stdout, stderr, lines, exitedAt, killedByTimer };
 * - `output()` is what it has printed so far, as { stdout, stderr }.
 * `node` runs it with another Node binary; `command` runs it under a wrapper (e.g. unshare), before node.
 */
function start(name, args = [], { killAfterMs = 15_000, env = {}, cwd, node = process.execPath, command = [] } = {}) {
  const script = path.isAbsolute(name) ? name : path.join(FIXTURES, name)
  const argv = [...command, node, script, ...args.map(String)]
  const child = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    cwd,
  })
  let stdout = ''
  let stderr = ''
  const lines = []
  let markReady
  const ready = new Promise((resolve) => {
    markReady = resolve
  })
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
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
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  let killedByTimer = false
  const timer = setTimeout(() => {
    killedByTimer = true
    child.kill('SIGKILL')
  }, killAfterMs)
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      markReady(null)
      resolve({ code, signal, stdout, stderr, lines, exitedAt: now(), killedByTimer })
    })
  })
  return { child, ready, exited, lines, output: () => ({ stdout, stderr }) }
}

/** Resolves once `predicate()` holds, polling every 5 ms; rejects after `timeoutMs`. */
async function waitFor(predicate, timeoutMs = 5000, what = 'a condition') {
  const giveUp = now() + timeoutMs
  while (!predicate()) {
    if (now() > giveUp) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
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

module.exports = { start, kill, run, waitFor, eventNames, find, now, FIXTURES }
