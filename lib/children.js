'use strict'

// Child processes a manager is responsible for (`trackChild`). At shutdown: the signal, a wait for the exit,
// SIGKILL at the timeout. The native side keeps every tracked pid or group too, so the exits that run no
// JavaScript (the watchdog's hard exit, a second signal) kill them before `_exit`; a process 'exit' hook
// covers the exits that do (`process.exit()` anywhere). A child is forgotten once it has exited, so nothing
// is ever sent to a pid the system has given to another process.

const native = require('./native')
const { lifecycleError, invalidArgValue } = require('./validate')

/** How often an emptying process group is checked: a group has no exit event to wait for. */
const GROUP_POLL_MS = 20

/** Whether the process 'exit' hook that kills what is still tracked is installed (once per process). */
let exitHookInstalled = false

function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // SIGKILL: the process is exiting now and cannot wait for a graceful stop. Children already stopped by
  // their task were forgotten, so this only reaches what a shutdown did not (or no shutdown ran).
  process.on('exit', () => native.killTrackedChildren(9))
}

/** Whether a process of group `pgid` still runs; members that exited but were not reaped do not count. */
function groupAlive(pgid) {
  return native.childGroupAlive(pgid)
}

class ChildTracker {
  #child
  #pid
  #group
  #signal
  /** How the child is asked to stop, if not by `#signal` (a cluster worker gets an IPC message). */
  #ask
  #askedWith
  #exited

  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {{ signal?: NodeJS.Signals, group: boolean, ask?: { how: string, send(): void } }} options
   *   `ask`: asks the child to stop instead of sending `signal` (`how` says what it sent, for errors)
   */
  constructor(child, { signal = 'SIGTERM', group, ask }) {
    this.#child = child
    this.#pid = child.pid
    this.#group = group
    this.#signal = signal
    this.#ask = ask?.send
    this.#askedWith = ask?.how ?? signal
    this.#exited = child.exitCode !== null || child.signalCode !== null
    if (this.#exited) return
    if (group && !groupAlive(this.#pid)) {
      throw invalidArgValue(
        'options.group',
        group,
        `needs a child that leads a process group (spawned with detached: true); child ${this.#pid} does not`,
      )
    }
    native.trackChild(this.#pid, group)
    installExitHook()
    child.once('exit', () => {
      this.#exited = true
      // A group's other members may outlive its leader: it stays tracked until it is empty.
      if (!group || !groupAlive(this.#pid)) native.forgetChild(this.#pid, group)
    })
  }

  get pid() {
    return this.#pid
  }

  /** Whether the child has exited (its group may still run). */
  get exited() {
    return this.#exited
  }

  /** Whether nothing tracked is left: the child exited, and with `group`, the group is empty. */
  #gone() {
    if (!this.#exited) return false
    if (!this.#group) return true
    if (groupAlive(this.#pid)) return false
    native.forgetChild(this.#pid, true)
    return true
  }

  #send(signal) {
    try {
      if (this.#group) process.kill(-this.#pid, signal)
      else this.#child.kill(signal)
    } catch {
      // ESRCH: it went meanwhile. Nothing else can fail here: the signal was validated.
    }
  }

  /** Resolves once nothing tracked is left (or `abortSignal` aborts, which gives up the wait). */
  #whenGone(abortSignal) {
    return new Promise((resolve) => {
      if (this.#gone() || abortSignal?.aborted) return resolve()
      let poll = null
      const done = () => {
        if (poll) clearInterval(poll)
        this.#child.removeListener('exit', check)
        abortSignal?.removeEventListener('abort', done)
        resolve()
      }
      const check = () => {
        if (this.#gone()) done()
      }
      this.#child.on('exit', check)
      abortSignal?.addEventListener('abort', done, { once: true })
      // The leader's exit event says nothing of the rest of its group.
      if (this.#group) poll = setInterval(check, GROUP_POLL_MS)
    })
  }

  /**
   * Stops the child: its signal, a wait of `timeoutMs` for it (and with `group`, its whole group) to exit,
   * then SIGKILL and a wait for that. Rejects with ERR_CHILD_KILLED when SIGKILL was needed; an aborted task
   * (its own timeout) sends SIGKILL at once.
   */
  async stop({ timeoutMs, abortSignal }) {
    if (this.#gone()) return
    const sentAt = performance.now()
    if (this.#ask) this.#ask()
    else this.#send(this.#signal)
    const timedOut = new AbortController()
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => timedOut.abort(), timeoutMs) : null
    const gaveUp = AbortSignal.any(abortSignal ? [abortSignal, timedOut.signal] : [timedOut.signal])
    try {
      await this.#whenGone(gaveUp)
    } finally {
      if (timer) clearTimeout(timer)
    }
    if (this.#gone()) return
    this.#send('SIGKILL')
    // SIGKILL cannot be caught: the wait is for the kernel and libuv's reaping, bounded by the task's own
    // timeout through `abortSignal`.
    await this.#whenGone(abortSignal)
    const what = this.#group ? `process group ${this.#pid}` : `child ${this.#pid}`
    throw lifecycleError(
      'ERR_CHILD_KILLED',
      `${what} had not exited ${Math.round(performance.now() - sentAt)} ms after ${this.#askedWith}; it was sent SIGKILL`,
    )
  }
}

module.exports = { ChildTracker }
